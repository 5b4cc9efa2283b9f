//! The sector update's parameters per sector size (docs/snap-deals.md#parameters).
//!
//! Everything here depends on the sector size alone: the update proof does not depend on the
//! seal proof's version or features, only on the sector's tree shape (which the size fixes).

use anyhow::{bail, Result};

use crate::sector::proof::{SealProof, SECTOR_SIZES};

/// Challenge bits per digest: Fr has 255 bits, the top one is never used.
const DIGEST_BITS: u32 = 254;

/// The update's shape for one sector size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateShape {
    /// Nodes in the sector (N).
    pub nodes: u64,
    /// Partitions (one Groth16 proof each): 1, 2, 4 or 16.
    pub partitions: usize,
    /// Challenges per partition.
    pub challenges: usize,
    /// Bits of a node index that pick its rho (h): 10 for production sizes, 1 for test sizes.
    pub h: u32,
    /// The circuit's h selector: bit i set for the first i with `hs[i] == h`.
    pub h_select: u64,
    /// Apex leaves per partition (tree_d nodes of one row the circuit witnesses).
    pub apex_leaves: usize,
}

/// Sector sizes the reference's update proofs accept (`ALLOWED_SECTOR_SIZES`, less the 1KiB
/// and 8KiB ones no seal proof has).
pub const UPDATE_SECTOR_SIZES: [u64; 9] = [
    2 << 10,
    4 << 10,
    16 << 10,
    32 << 10,
    8 << 20,
    16 << 20,
    512 << 20,
    32 << 30,
    64 << 30,
];

impl UpdateShape {
    /// The shape for `proof`'s sector size; an error for sizes the update proof lacks (1GiB).
    pub fn of(proof: SealProof) -> Result<UpdateShape> {
        let size = proof.sector_size();
        if !UPDATE_SECTOR_SIZES.contains(&size) {
            bail!(
                "sector size {size} has no sector-update proof (snap deals support 2KiB, 8MiB, \
                 512MiB, 32GiB, 64GiB and the test sizes 4KiB, 16KiB, 32KiB, 16MiB)"
            );
        }
        let nodes = size / 32;
        let small = nodes <= 1 << 10;
        let hs: [u32; 6] = if small { [1; 6] } else { [7, 8, 9, 10, 11, 12] };
        let h = hs[3];
        let first = hs.iter().position(|&x| x == h).expect("h is one of hs");
        Ok(UpdateShape {
            nodes,
            partitions: match nodes {
                n if n <= 1 << 8 => 1,
                n if n <= 1 << 10 => 2,
                n if n <= 1 << 19 => 4,
                _ => 16,
            },
            challenges: if nodes <= 1 << 19 { 10 } else { 86 },
            h,
            h_select: 1 << first,
            apex_leaves: if nodes <= 1 << 8 { 8 } else { 128 },
        })
    }

    /// log2 of the node count (n): bits of a challenge.
    pub fn node_bits(&self) -> u32 {
        self.nodes.trailing_zeros()
    }

    /// log2 of the partition count (p).
    pub fn partition_bits(&self) -> u32 {
        self.partitions.trailing_zeros()
    }

    /// Random bits per challenge (n − p): the partition index fills the top p bits.
    pub fn random_bits(&self) -> u32 {
        self.node_bits() - self.partition_bits()
    }

    /// Challenges drawn from one digest.
    pub fn challenges_per_digest(&self) -> usize {
        (DIGEST_BITS / self.random_bits()) as usize
    }

    /// Digests per partition.
    pub fn digests_per_partition(&self) -> usize {
        self.challenges.div_ceil(self.challenges_per_digest())
    }

    /// Nodes per partition: partition k covers `[k·N/P, (k+1)·N/P)`.
    pub fn nodes_per_partition(&self) -> u64 {
        self.nodes / self.partitions as u64
    }

    /// Height in tree_d of the row that holds the apex leaves: n − p − log2(A).
    pub fn apex_row(&self) -> u32 {
        self.random_bits() - self.apex_leaves.trailing_zeros()
    }

    /// The circuit's first public input for partition k: `k | h_select << p`.
    pub fn k_and_h_select(&self, k: usize) -> u64 {
        k as u64 | self.h_select << self.partition_bits()
    }

    /// The node index bits below the rho selector: `rho` of node i is `rho[i >> shift]`.
    pub fn rho_shift(&self) -> u32 {
        self.node_bits() - self.h
    }

    /// The registered update proof id (0–4) of a production size; `None` for test sizes.
    pub fn registered_id(&self) -> Option<u64> {
        SECTOR_SIZES
            .iter()
            .position(|&s| s == self.nodes * 32)
            .map(|i| i as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(size: u64) -> UpdateShape {
        let p = SealProof::from_id(5).unwrap();
        let p = if SECTOR_SIZES.contains(&size) {
            SealProof::all().find(|q| q.sector_size() == size).unwrap()
        } else {
            p.with_test_size(size).unwrap()
        };
        UpdateShape::of(p).unwrap()
    }

    /// docs/snap-deals.md#parameters: the per-size table (P, C/part, rb, cpd, dpp, A, a, h,
    /// h_select, k_and_h_select of partition 0).
    #[test]
    fn per_size_table() {
        for (size, p, c, rb, cpd, dpp, a_leaves, a, h, hsel, khs0) in [
            (2u64 << 10, 1, 10, 6, 42, 1, 8, 3, 1, 1, 1),
            (32 << 10, 2, 10, 9, 28, 1, 128, 2, 1, 1, 2),
            (8 << 20, 4, 10, 16, 15, 1, 128, 9, 10, 8, 32),
            (512 << 20, 16, 86, 20, 12, 8, 128, 13, 10, 8, 128),
            (32 << 30, 16, 86, 26, 9, 10, 128, 19, 10, 8, 128),
            (64 << 30, 16, 86, 27, 9, 10, 128, 20, 10, 8, 128),
        ] {
            let s = shape(size);
            assert_eq!(s.partitions, p, "{size}");
            assert_eq!(s.challenges, c, "{size}");
            assert_eq!(s.random_bits(), rb, "{size}");
            assert_eq!(s.challenges_per_digest(), cpd, "{size}");
            assert_eq!(s.digests_per_partition(), dpp, "{size}");
            assert_eq!(s.apex_leaves, a_leaves, "{size}");
            assert_eq!(s.apex_row(), a, "{size}");
            assert_eq!(s.h, h, "{size}");
            assert_eq!(s.h_select, hsel, "{size}");
            assert_eq!(s.k_and_h_select(0), khs0, "{size}");
        }
        assert_eq!(shape(8 << 20).k_and_h_select(3), 35);
        assert_eq!(shape(2 << 10).registered_id(), Some(0));
        assert_eq!(shape(64 << 30).registered_id(), Some(4));
        assert_eq!(shape(16 << 10).registered_id(), None);
        let gib = SealProof::from_id(5)
            .unwrap()
            .with_test_size(1 << 30)
            .unwrap();
        assert!(UpdateShape::of(gib).is_err());
    }
}
