//! Prover ids. Lotus derives a miner's prover id from its ID address: the payload of
//! `f0<N>` is the unsigned LEB128 encoding of N, right-padded with zeros to 32 bytes.

use anyhow::{bail, Context, Result};

/// The prover id of miner actor `actor_id`.
pub fn prover_id_from_actor(actor_id: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut v = actor_id;
    let mut i = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out[i] = byte;
            break;
        }
        out[i] = byte | 0x80;
        i += 1;
    }
    out
}

/// Parses a miner given as a number or as an ID address (`f01000`, `t01000`).
pub fn parse_miner(s: &str) -> Result<u64> {
    let digits = match s.as_bytes() {
        [b'f' | b't', b'0', ..] => &s[2..],
        [b'f' | b't', ..] => bail!("miner {s:?} is not an ID address (f0…)"),
        _ => s,
    };
    digits
        .parse::<u64>()
        .with_context(|| format!("miner {s:?} is not an actor id or f0 address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128() {
        assert_eq!(prover_id_from_actor(1000)[..3], [0xe8, 0x07, 0x00]);
        assert_eq!(prover_id_from_actor(0)[..2], [0, 0]);
        assert_eq!(prover_id_from_actor(127)[..2], [0x7f, 0]);
        assert_eq!(prover_id_from_actor(128)[..3], [0x80, 0x01, 0]);
        assert_eq!(prover_id_from_actor(u64::MAX)[9], 0x01);
        assert_eq!(parse_miner("f01000").unwrap(), 1000);
        assert_eq!(parse_miner("1000").unwrap(), 1000);
        assert!(parse_miner("f3abc").is_err());
    }
}
