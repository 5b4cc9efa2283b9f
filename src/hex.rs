//! Lowercase hex for 32-byte values, the form every commitment, id and ticket takes in the
//! sector document.

use anyhow::{bail, Result};

pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Decodes hex of any length (upper or lower case, optional `0x`).
pub fn decode(s: &str) -> Result<Vec<u8>> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if !s.len().is_multiple_of(2) {
        bail!("hex string has an odd number of digits ({})", s.len());
    }
    let digit = |c: u8| -> Result<u8> {
        Ok(match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => bail!("{:?} is not a hex digit", c as char),
        })
    };
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// Decodes exactly 32 bytes (64 hex digits).
pub fn decode32(s: &str) -> Result<[u8; 32]> {
    let v = decode(s)?;
    match <[u8; 32]>::try_from(v.as_slice()) {
        Ok(a) => Ok(a),
        Err(_) => bail!(
            "expected 64 hex digits (32 bytes), got {} digits",
            v.len() * 2
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let b: Vec<u8> = (0..=255).collect();
        assert_eq!(super::decode(&super::encode(&b)).unwrap(), b);
        assert!(super::decode32("00").is_err());
        assert!(super::decode("zz").is_err());
    }
}
