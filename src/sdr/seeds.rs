//! Graph seeds derived from the porep_id (docs/sdr-porep.md#graph-seeds).

use sha2::{Digest, Sha256};

/// `SHA256("Filecoin_DRSample" || porep_id)[..28]`: the DRG's ChaCha8 seed prefix.
pub fn drg_seed(porep_id: &[u8; 32]) -> [u8; 28] {
    let h = Sha256::new()
        .chain_update(b"Filecoin_DRSample")
        .chain_update(porep_id)
        .finalize();
    h[..28].try_into().expect("28 bytes")
}

/// `K = SHA256("Filecoin_Feistel" || porep_id)`, key i = `u64_le(K[8i..8i+8])`.
pub fn feistel_keys(porep_id: &[u8; 32]) -> [u64; 4] {
    let h = Sha256::new()
        .chain_update(b"Filecoin_Feistel")
        .chain_update(porep_id)
        .finalize();
    std::array::from_fn(|i| u64::from_le_bytes(h[8 * i..8 * i + 8].try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_seeds() {
        let mut id = [0u8; 32];
        id[0] = 5;
        assert_eq!(
            crate::hex::encode(&drg_seed(&id)),
            "3be68542ec229705b99be29c2106b0e4222ccd1d0311398ea4d22d7d"
        );
        assert_eq!(
            crate::hex::encode(&drg_seed(&[0u8; 32])),
            "623f03efd4cbc4f029203ee913d026a4e2d9913025a8aed04fec97a0"
        );
    }
}
