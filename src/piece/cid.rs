//! Commitment CIDs, as Lotus and Boost print them.
//!
//! CIDv1 = uvarint(1) || uvarint(codec) || multihash, where multihash =
//! uvarint(hash code) || uvarint(32) || commitment, written in multibase base32 (prefix `b`,
//! RFC 4648 lowercase alphabet, no padding). Codes are from the multicodec table:
//! fil-commitment-unsealed 0xf101 with sha2-256-trunc254-padded 0x1012 (CommP, CommD), and
//! fil-commitment-sealed 0xf102 with poseidon-bls12_381-a2-fc1 0xb401 (CommR).

use anyhow::{ensure, Context, Result};

use crate::filecoin::multiformats::{base32_decode, base32_encode, get_uvarint, put_uvarint};

/// Which commitment a CID carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitmentKind {
    /// CommP or CommD: `baga6ea4sea…`.
    Unsealed,
    /// CommR: `bagboea4b5abc…`.
    Sealed,
}

impl CommitmentKind {
    fn codes(self) -> (u64, u64) {
        match self {
            CommitmentKind::Unsealed => (0xf101, 0x1012),
            CommitmentKind::Sealed => (0xf102, 0xb401),
        }
    }
}

/// The CID string of a commitment.
pub fn commitment_to_cid(kind: CommitmentKind, commitment: &[u8; 32]) -> String {
    format!(
        "b{}",
        base32_encode(&commitment_cid_bytes(kind, commitment))
    )
}

/// The binary CID of a commitment (what CBOR's tag 42 carries in actor parameters).
pub fn commitment_cid_bytes(kind: CommitmentKind, commitment: &[u8; 32]) -> Vec<u8> {
    let (codec, mh) = kind.codes();
    let mut bin = Vec::with_capacity(40);
    put_uvarint(&mut bin, 1);
    put_uvarint(&mut bin, codec);
    put_uvarint(&mut bin, mh);
    put_uvarint(&mut bin, 32);
    bin.extend_from_slice(commitment);
    bin
}

/// Parses a commitment CID of the given kind back into its 32 bytes.
pub fn cid_to_commitment(kind: CommitmentKind, cid: &str) -> Result<[u8; 32]> {
    let body = cid
        .strip_prefix('b')
        .with_context(|| format!("CID {cid:?} is not base32 (must start with 'b')"))?;
    let bin = base32_decode(body).with_context(|| format!("CID {cid:?}"))?;
    let mut rest = bin.as_slice();
    let (codec, mh) = kind.codes();
    ensure!(get_uvarint(&mut rest)? == 1, "CID {cid:?} is not CIDv1");
    ensure!(
        get_uvarint(&mut rest)? == codec,
        "CID {cid:?} is not a {kind:?} commitment CID"
    );
    ensure!(
        get_uvarint(&mut rest)? == mh,
        "CID {cid:?} has the wrong multihash"
    );
    ensure!(
        get_uvarint(&mut rest)? == 32,
        "CID {cid:?} digest is not 32 bytes"
    );
    <[u8; 32]>::try_from(rest).with_context(|| format!("CID {cid:?} digest is not 32 bytes"))
}

/// Accepts a commitment as 64 hex digits or as a CID of the given kind.
pub fn parse_commitment(kind: CommitmentKind, s: &str) -> Result<[u8; 32]> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        crate::hex::decode32(s)
    } else {
        cid_to_commitment(kind, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::zero::zero_root;

    /// go-fil-commcid's fixtures: the CommD of an empty 32 GiB / 64 GiB sector, as Lotus shows
    /// for every committed-capacity sector of that size.
    #[test]
    fn empty_sector_cids() {
        assert_eq!(
            commitment_to_cid(CommitmentKind::Unsealed, &zero_root(32 << 30)),
            "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
        );
        assert_eq!(
            commitment_to_cid(CommitmentKind::Unsealed, &zero_root(64 << 30)),
            "baga6ea4seaqomqafu276g53zko4k23xzh4h4uecjwicbmvhsuqi7o4bhthhm4aq"
        );
    }

    #[test]
    fn round_trips() {
        let c: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        for kind in [CommitmentKind::Unsealed, CommitmentKind::Sealed] {
            let s = commitment_to_cid(kind, &c);
            assert_eq!(cid_to_commitment(kind, &s).unwrap(), c);
        }
        let sealed = commitment_to_cid(CommitmentKind::Sealed, &c);
        assert!(sealed.starts_with("bagboea4b5abc"), "{sealed}");
        assert!(cid_to_commitment(CommitmentKind::Unsealed, &sealed).is_err());
    }
}
