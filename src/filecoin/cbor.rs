//! The part of CBOR (RFC 8949) Filecoin messages and actor parameters use, as DAG-CBOR
//! writes it: minimal-length heads, definite lengths, tag 42 for CIDs. Every parameter
//! struct of the miner actor is a CBOR *array* of its fields in order (Rust's
//! `Serialize_tuple`, Go's cbor-gen tuple encoding).

use anyhow::{bail, ensure, Result};

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

/// Reads one value that must fill `bytes` (an actor's return value, a node's raw CBOR):
/// the same subset as [`Cbor`] writes; maps, floats, other tags and indefinite lengths are
/// refused, as is nesting deeper than [`MAX_DEPTH`] (the bytes come from a node).
pub fn decode(bytes: &[u8]) -> Result<Cbor> {
    let mut r = Reader { bytes, at: 0 };
    let v = r.value(0)?;
    ensure!(
        r.at == bytes.len(),
        "CBOR: {} bytes left after the value",
        bytes.len() - r.at
    );
    Ok(v)
}

/// How deeply arrays may nest in [`decode`]d input.
pub const MAX_DEPTH: usize = 32;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: u64) -> Result<&[u8]> {
        let left = (self.bytes.len() - self.at) as u64;
        ensure!(n <= left, "CBOR: truncated at byte {}", self.at);
        let s = &self.bytes[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(s)
    }

    /// A head: its major type and argument.
    fn head(&mut self) -> Result<(u8, u64)> {
        let b = self.take(1)?[0];
        let (major, info) = (b >> 5, b & 0x1f);
        let arg = match info {
            0..=23 => info as u64,
            24..=27 => {
                let n = 1u64 << (info - 24);
                self.take(n)?
                    .iter()
                    .fold(0u64, |acc, &x| (acc << 8) | x as u64)
            }
            _ => bail!(
                "CBOR: byte {} uses an indefinite length or a reserved form (0x{b:02x})",
                self.at - 1
            ),
        };
        Ok((major, arg))
    }

    fn value(&mut self, depth: usize) -> Result<Cbor> {
        ensure!(depth <= MAX_DEPTH, "CBOR: nested deeper than {MAX_DEPTH}");
        let at = self.at;
        let (major, arg) = self.head()?;
        Ok(match major {
            0 => Cbor::Uint(arg),
            1 => Cbor::Neg(arg),
            2 => Cbor::Bytes(self.take(arg)?.to_vec()),
            3 => Cbor::Text(
                String::from_utf8(self.take(arg)?.to_vec())
                    .map_err(|_| anyhow::anyhow!("CBOR: text at byte {at} is not UTF-8"))?,
            ),
            4 => {
                // Every item takes at least a byte: a length beyond what is left is a lie.
                ensure!(
                    arg <= (self.bytes.len() - self.at) as u64,
                    "CBOR: array at byte {at} claims {arg} items"
                );
                let mut items = Vec::with_capacity(arg as usize);
                for _ in 0..arg {
                    items.push(self.value(depth + 1)?);
                }
                Cbor::Array(items)
            }
            6 if arg == 42 => {
                let (m, n) = self.head()?;
                ensure!(
                    m == 2,
                    "CBOR: tag 42 at byte {at} does not wrap a byte string"
                );
                let b = self.take(n)?;
                ensure!(
                    b.first() == Some(&0),
                    "CBOR: the CID at byte {at} lacks its 0x00 prefix"
                );
                Cbor::Cid(b[1..].to_vec())
            }
            7 if arg == 20 => Cbor::Bool(false),
            7 if arg == 21 => Cbor::Bool(true),
            7 if arg == 22 => Cbor::Null,
            _ => bail!("CBOR: unsupported item at byte {at} (major type {major}, argument {arg})"),
        })
    }
}

impl Cbor {
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Cbor::Uint(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Cbor]> {
        match self {
            Cbor::Array(a) => Some(a),
            _ => None,
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
    fn what_is_written_reads_back_and_garbage_is_refused() {
        let v = Cbor::Array(vec![
            Cbor::Uint(1000000000000),
            Cbor::int(-1000),
            Cbor::Bytes(vec![0xde, 0xad]),
            Cbor::Text("IETF".into()),
            Cbor::Cid(vec![1, 0x71, 0]),
            Cbor::Array(vec![Cbor::Bool(true), Cbor::Bool(false), Cbor::Null]),
        ]);
        assert_eq!(decode(&v.encode()).unwrap(), v);
        let err = |hex: &str| {
            format!(
                "{:#}",
                decode(&crate::hex::decode(hex).unwrap()).unwrap_err()
            )
        };
        assert!(err("4401").contains("truncated"));
        assert!(err("8301").contains("claims"));
        assert!(err("0000").contains("left after"));
        assert!(err("9f01ff").contains("indefinite"));
        assert!(err("a0").contains("unsupported"), "maps");
        assert!(err("9bffffffffffffffff").contains("claims"));
        assert!(err("d82a4101").contains("0x00 prefix"));
        assert!(err(&"81".repeat(40)).contains("deeper"));
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
