//! The two encodings Filecoin's identifiers share: unsigned LEB128 varints (CIDs, multihash
//! codes, ID-address payloads) and lowercase RFC 4648 base32 without padding (CID multibase
//! `b`, address text).

use anyhow::{bail, Context, Result};

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint from the front of `bytes`, advancing it.
pub fn get_uvarint(bytes: &mut &[u8]) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().context("ends inside a varint")?;
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    bail!("varint is too long")
}

pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes base32 (either case); the trailing bits of the last character are dropped.
pub fn base32_decode(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = BASE32
            .iter()
            .position(|&d| d == c.to_ascii_lowercase())
            .with_context(|| format!("{:?} is not a base32 character", c as char))?;
        acc = (acc << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4648_base32_vectors_lowercase_unpadded() {
        // RFC 4648 §10, lower case and without the padding.
        for (plain, enc) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), enc);
            assert_eq!(base32_decode(enc).unwrap(), plain.as_bytes());
            assert_eq!(
                base32_decode(&enc.to_uppercase()).unwrap(),
                plain.as_bytes()
            );
        }
        assert!(base32_decode("my1").is_err());
    }

    #[test]
    fn varints_are_leb128() {
        for (v, b) in [
            (0u64, vec![0x00]),
            (5, vec![0x05]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (1000, vec![0xe8, 0x07]),
            (
                u64::MAX,
                vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ] {
            let mut out = Vec::new();
            put_uvarint(&mut out, v);
            assert_eq!(out, b);
            let mut r = b.as_slice();
            assert_eq!(get_uvarint(&mut r).unwrap(), v);
            assert!(r.is_empty());
        }
        assert!(get_uvarint(&mut [0x80u8].as_slice()).is_err());
    }
}
