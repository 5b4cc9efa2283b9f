//! replica_id (docs/sdr-porep.md#replica-id): ties the labels to the prover, sector, ticket, data
//! and proof type.

use sha2::{Digest, Sha256};

use crate::hash::sha256::trunc254;

/// `trunc254(SHA256(prover_id || u64_be(sector) || ticket || comm_d || porep_id))`.
pub fn replica_id(
    prover_id: &[u8; 32],
    sector: u64,
    ticket: &[u8; 32],
    comm_d: &[u8; 32],
    porep_id: &[u8; 32],
) -> [u8; 32] {
    let h = Sha256::new()
        .chain_update(prover_id)
        .chain_update(sector.to_be_bytes())
        .chain_update(ticket)
        .chain_update(comm_d)
        .chain_update(porep_id)
        .finalize();
    trunc254(h.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec Appendix A.4 (a): zero 2KiB sector, V1_1.
    #[test]
    fn known_answer() {
        let comm_d = crate::merkle::zero::zero_root(2048);
        let mut porep_id = [0u8; 32];
        porep_id[0] = 5;
        assert_eq!(
            crate::hex::encode(&replica_id(&[1; 32], 42, &[2; 32], &comm_d, &porep_id)),
            "0fb44e824d4ee361824f036216ac72efb642cdb02ce14ac56f90fc27d2467b38"
        );
    }
}
