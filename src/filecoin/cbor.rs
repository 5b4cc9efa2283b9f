//! The part of CBOR (RFC 8949) Filecoin messages and actor parameters use, as DAG-CBOR
//! writes it: minimal-length heads, definite lengths, tag 42 for CIDs. Every parameter
//! struct of the miner actor is a CBOR *array* of its fields in order (Rust's
//! `Serialize_tuple`, Go's cbor-gen tuple encoding).

/// A CBOR value to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Cbor {
    Uint(u64),
    /// A negative integer `-1 - n`.
    Neg(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Cbor>),
    Bool(bool),
    Null,
    /// A CID (its binary form, without the multibase prefix): tag 42 over `0x00 ‖ cid`.
    Cid(Vec<u8>),
}

impl Cbor {
    pub fn int(v: i64) -> Cbor {
        if v >= 0 {
            Cbor::Uint(v as u64)
        } else {
            Cbor::Neg((-1 - v) as u64)
        }
    }

    /// A token amount or big integer: a byte string, empty for zero, else a sign byte
    /// (`0x00` positive) and the big-endian magnitude.
    pub fn big(v: u128) -> Cbor {
        if v == 0 {
            return Cbor::Bytes(Vec::new());
        }
        let be = v.to_be_bytes();
        let first = be.iter().position(|&b| b != 0).unwrap_or(be.len() - 1);
        let mut out = vec![0u8];
        out.extend_from_slice(&be[first..]);
        Cbor::Bytes(out)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Cbor::Uint(v) => head(out, 0, *v),
            Cbor::Neg(v) => head(out, 1, *v),
            Cbor::Bytes(b) => {
                head(out, 2, b.len() as u64);
                out.extend_from_slice(b);
            }
            Cbor::Text(t) => {
                head(out, 3, t.len() as u64);
                out.extend_from_slice(t.as_bytes());
            }
            Cbor::Array(items) => {
                head(out, 4, items.len() as u64);
                for i in items {
                    i.write(out);
                }
            }
            Cbor::Cid(cid) => {
                head(out, 6, 42);
                head(out, 2, cid.len() as u64 + 1);
                out.push(0x00); // the multibase "identity" prefix DAG-CBOR requires
                out.extend_from_slice(cid);
            }
            Cbor::Bool(false) => out.push(0xf4),
            Cbor::Bool(true) => out.push(0xf5),
            Cbor::Null => out.push(0xf6),
        }
    }
}

/// A major type and its argument, in the shortest form (RFC 8949 §4.2.1).
fn head(out: &mut Vec<u8>, major: u8, v: u64) {
    let m = major << 5;
    match v {
        0..=23 => out.push(m | v as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, v as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_8949_appendix_a_examples() {
        let hex = |c: Cbor| crate::hex::encode(&c.encode());
        assert_eq!(hex(Cbor::Uint(0)), "00");
        assert_eq!(hex(Cbor::Uint(23)), "17");
        assert_eq!(hex(Cbor::Uint(24)), "1818");
        assert_eq!(hex(Cbor::Uint(1000)), "1903e8");
        assert_eq!(hex(Cbor::Uint(1000000)), "1a000f4240");
        assert_eq!(hex(Cbor::Uint(1000000000000)), "1b000000e8d4a51000");
        assert_eq!(hex(Cbor::int(-1)), "20");
        assert_eq!(hex(Cbor::int(-1000)), "3903e7");
        assert_eq!(hex(Cbor::Bytes(vec![1, 2, 3, 4])), "4401020304");
        assert_eq!(hex(Cbor::Text("IETF".into())), "6449455446");
        assert_eq!(
            hex(Cbor::Array(vec![
                Cbor::Uint(1),
                Cbor::Array(vec![Cbor::Uint(2), Cbor::Uint(3)]),
                Cbor::Array(vec![Cbor::Uint(4), Cbor::Uint(5)])
            ])),
            "8301820203820405"
        );
        assert_eq!(hex(Cbor::Bool(false)), "f4");
        assert_eq!(hex(Cbor::Bool(true)), "f5");
        assert_eq!(hex(Cbor::Null), "f6");
    }

    #[test]
    fn big_integers_are_sign_and_magnitude_bytes() {
        assert_eq!(Cbor::big(0).encode(), [0x40]);
        assert_eq!(Cbor::big(1).encode(), [0x42, 0x00, 0x01]);
        // 1 FIL = 10^18 attoFIL = 0x0de0b6b3a7640000.
        assert_eq!(
            crate::hex::encode(&Cbor::big(1_000_000_000_000_000_000).encode()),
            "49000de0b6b3a7640000"
        );
    }
}
