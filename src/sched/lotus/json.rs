//! The JSON shapes of Lotus's API that are not plain JSON: `[]byte` as standard base64 with
//! padding, CIDs as `{"/": "bafy…"}`, tipset keys as lists of CIDs (`null` = the head).

use anyhow::{Context, Result};
use serde_json::Value;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Standard base64 (RFC 4648 §4) with padding, as Go's `encoding/json` writes `[]byte`.
pub fn base64_encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

pub fn base64_decode(text: &str) -> Result<Vec<u8>> {
    STANDARD
        .decode(text)
        .with_context(|| format!("{text:?} is not base64"))
}

/// A 32-byte value the node sends as base64 (randomness, digests).
pub fn bytes32(v: &Value, what: &str) -> Result<[u8; 32]> {
    let s = v
        .as_str()
        .with_context(|| format!("{what}: expected base64 text, got {v}"))?;
    base64_decode(s)?
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("{what}: expected 32 bytes, got {}", b.len()))
}

/// The text of a CID object `{"/": "…"}`.
pub fn cid(v: &Value, what: &str) -> Result<String> {
    v.get("/")
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("{what}: expected a CID object {{\"/\": …}}, got {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        // RFC 4648 §10 test vectors.
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes());
        }
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9*", "Zm=v"] {
            assert!(base64_decode(bad).is_err(), "{bad:?}");
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&all)).unwrap(), all);
    }
}
