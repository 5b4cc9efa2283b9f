//! The registered seal proofs (ids 0–19) and every parameter derived from them.
//!
//! Sources: rust-filecoin-proofs-api `registry.rs` for ids, names and versions;
//! filecoin-proofs `constants.rs` / `parameters.rs` for layers, partitions, challenges and
//! tree shapes (docs/sdr-porep.md#registered-proofs, docs/sdr-porep.md#per-size-parameters).

use std::fmt;

use anyhow::{bail, Result};

/// The proof API version. It changes the DRG parent order and the expander u32 conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ApiVersion {
    V1_0_0,
    V1_1_0,
    V1_2_0,
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiVersion::V1_0_0 => "1.0.0",
            ApiVersion::V1_1_0 => "1.1.0",
            ApiVersion::V1_2_0 => "1.2.0",
        })
    }
}

/// Optional PoRep features (ids 10–19).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    SyntheticPoRep,
    NonInteractivePoRep,
}

/// Merkle tree shape of tree_c and tree_r_last: base arity 8, then sub and top arities
/// (0 when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeShape {
    pub base: usize,
    pub sub: usize,
    pub top: usize,
}

impl TreeShape {
    /// Number of base trees the leaves are split into.
    pub fn base_trees(&self) -> usize {
        self.sub.max(1) * self.top.max(1)
    }
}

impl fmt::Display for TreeShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.base, self.sub, self.top)
    }
}

/// The sector sizes of the registered proofs, in id order within each group of five.
pub const SECTOR_SIZES: [u64; 5] = [2 << 10, 8 << 20, 512 << 20, 32 << 30, 64 << 30];

/// Sector sizes the reference supports for its own tests only (all 2 layers, 1 partition):
/// 4KiB, 16MiB and 1GiB are shaped 8-2-0, 16KiB 8-8-0, 32KiB 8-8-2. They exist so the
/// compound tree shapes of 32/64GiB sectors can be checked on tiny sectors.
pub const TEST_SECTOR_SIZES: [u64; 5] = [4 << 10, 16 << 10, 32 << 10, 16 << 20, 1 << 30];

/// A registered seal proof (optionally at one of the reference's test sector sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SealProof {
    id: u8,
    /// Set only for [`TEST_SECTOR_SIZES`].
    test_size: Option<u64>,
}

/// The largest registered id.
pub const MAX_SEAL_PROOF_ID: u64 = 19;

impl SealProof {
    /// Looks a proof up by its numeric id (0–19).
    pub fn from_id(id: u64) -> Result<SealProof> {
        if id > MAX_SEAL_PROOF_ID {
            bail!("unknown seal proof id {id} (registered ids are 0 to {MAX_SEAL_PROOF_ID})");
        }
        Ok(SealProof {
            id: id as u8,
            test_size: None,
        })
    }

    /// The same proof (porep_id, API version, features) at one of [`TEST_SECTOR_SIZES`].
    pub fn with_test_size(self, size: u64) -> Result<SealProof> {
        if !TEST_SECTOR_SIZES.contains(&size) {
            bail!("{size} is not one of the reference's test sector sizes (4KiB, 16KiB, 32KiB, 16MiB, 1GiB)");
        }
        Ok(SealProof {
            test_size: Some(size),
            ..self
        })
    }

    /// Whether this is a test-only size.
    pub fn is_test_size(self) -> bool {
        self.test_size.is_some()
    }

    /// Looks a proof up by name (`StackedDrg32GiBV1_1`, …), case-insensitively; go-state-types'
    /// spelling `…V1_2_Feat_NiPoRep` is accepted too.
    pub fn from_name(name: &str) -> Result<SealProof> {
        let want = name
            .trim()
            .to_ascii_lowercase()
            .replace("_feat_niporep", "_feat_noninteractiveporep");
        for id in 0..=MAX_SEAL_PROOF_ID {
            let p = SealProof {
                id: id as u8,
                test_size: None,
            };
            if p.name().to_ascii_lowercase() == want {
                return Ok(p);
            }
        }
        bail!("unknown seal proof {name:?} (expected a name such as StackedDrg32GiBV1_1, or an id 0 to {MAX_SEAL_PROOF_ID})")
    }

    /// Every registered proof, by id.
    pub fn all() -> impl Iterator<Item = SealProof> {
        (0..=MAX_SEAL_PROOF_ID as u8).map(|id| SealProof {
            id,
            test_size: None,
        })
    }

    pub fn id(self) -> u64 {
        u64::from(self.id)
    }

    fn group(self) -> u8 {
        self.id / 5
    }

    pub fn sector_size(self) -> u64 {
        self.test_size
            .unwrap_or(SECTOR_SIZES[(self.id % 5) as usize])
    }

    /// The registry's name (of the registered size, also for a test size).
    pub fn name(self) -> String {
        let size = crate::piece::size::format_size(SECTOR_SIZES[(self.id % 5) as usize]);
        match self.group() {
            0 => format!("StackedDrg{size}V1"),
            1 => format!("StackedDrg{size}V1_1"),
            2 => format!("StackedDrg{size}V1_1_Feat_SyntheticPoRep"),
            _ => format!("StackedDrg{size}V1_2_Feat_NonInteractivePoRep"),
        }
    }

    /// Synthetic proofs report V1_2_0 although their name says V1_1.
    pub fn api_version(self) -> ApiVersion {
        match self.group() {
            0 => ApiVersion::V1_0_0,
            1 => ApiVersion::V1_1_0,
            _ => ApiVersion::V1_2_0,
        }
    }

    pub fn feature(self) -> Option<Feature> {
        match self.group() {
            2 => Some(Feature::SyntheticPoRep),
            3 => Some(Feature::NonInteractivePoRep),
            _ => None,
        }
    }

    /// NI-PoRep (FIP-0092): no precommit and no interactive seed; the chain takes the
    /// sector's proof only inside an aggregate (`ProveCommitSectorsNI`).
    pub fn is_non_interactive(self) -> bool {
        self.feature() == Some(Feature::NonInteractivePoRep)
    }

    /// `u64_le(id) || u64_le(nonce = 0) || 16 zero bytes`.
    pub fn porep_id(self) -> [u8; 32] {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&self.id().to_le_bytes());
        id
    }

    fn is_large(self) -> bool {
        self.sector_size() >= 32 << 30
    }

    /// Number of 32-byte nodes.
    pub fn nodes(self) -> u64 {
        self.sector_size() / 32
    }

    /// SDR layers: 11 for 32/64 GiB, 2 for the small sizes.
    pub fn layers(self) -> usize {
        if self.is_large() {
            11
        } else {
            2
        }
    }

    /// Groth16 partitions of the commit proof.
    pub fn partitions(self) -> usize {
        match (self.feature(), self.is_large()) {
            (Some(Feature::NonInteractivePoRep), true) => 126,
            (Some(Feature::NonInteractivePoRep), false) => 13,
            (_, true) => 10,
            (_, false) => 1,
        }
    }

    /// Minimum number of challenges over all partitions.
    pub fn minimum_challenges(self) -> usize {
        match (self.feature(), self.is_large()) {
            (Some(Feature::NonInteractivePoRep), true) => 2253,
            (Some(Feature::NonInteractivePoRep), false) => 26,
            (_, true) => 176,
            (_, false) => 2,
        }
    }

    /// `ceil(minimum_challenges / partitions)`.
    pub fn challenges_per_partition(self) -> usize {
        self.minimum_challenges().div_ceil(self.partitions())
    }

    pub fn tree_shape(self) -> TreeShape {
        let (sub, top) = match self.sector_size() {
            s if s == 32 << 30 || s == 16 << 10 => (8, 0),
            s if s == 64 << 30 || s == 32 << 10 => (8, 2),
            s if s == 4 << 10 || s == 16 << 20 || s == 1 << 30 => (2, 0),
            _ => (0, 0),
        };
        TreeShape { base: 8, sub, top }
    }
}

impl fmt::Display for SealProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.test_size {
            None => f.write_str(&self.name()),
            Some(s) => write!(
                f,
                "{} at test size {}",
                self.name(),
                crate::piece::size::format_size(s)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_spec() {
        let p = SealProof::from_name("StackedDrg32GiBV1_1").unwrap();
        assert_eq!(p.id(), 8);
        assert_eq!(
            (p.layers(), p.partitions(), p.challenges_per_partition()),
            (11, 10, 18)
        );
        assert_eq!(p.tree_shape().to_string(), "8-8-0");
        let ni = SealProof::from_id(18).unwrap();
        assert_eq!(ni.name(), "StackedDrg32GiBV1_2_Feat_NonInteractivePoRep");
        assert_eq!((ni.partitions(), ni.challenges_per_partition()), (126, 18));
        let syn = SealProof::from_id(10).unwrap();
        assert_eq!(syn.name(), "StackedDrg2KiBV1_1_Feat_SyntheticPoRep");
        assert_eq!(syn.api_version(), ApiVersion::V1_2_0);
        assert_eq!(
            SealProof::from_id(4).unwrap().tree_shape().to_string(),
            "8-8-2"
        );
        assert_eq!(
            SealProof::from_id(19).unwrap().tree_shape().base_trees(),
            16
        );
        assert_eq!(SealProof::from_id(5).unwrap().porep_id()[0], 5);
        assert_eq!(
            SealProof::from_name("StackedDrg8MiBV1_2_Feat_NiPoRep")
                .unwrap()
                .id(),
            16
        );
        assert!(SealProof::from_id(20).is_err());
        let t = SealProof::from_id(5)
            .unwrap()
            .with_test_size(32 << 10)
            .unwrap();
        assert_eq!(
            (t.tree_shape().to_string(), t.layers(), t.nodes()),
            ("8-8-2".into(), 2, 1024)
        );
        assert_eq!(t.porep_id()[0], 5);
        assert!(SealProof::from_id(5)
            .unwrap()
            .with_test_size(8 << 10)
            .is_err());
        assert!(SealProof::from_name("StackedDrg1KiBV1").is_err());
        for p in SealProof::all() {
            assert_eq!(SealProof::from_name(&p.name()).unwrap(), p);
        }
    }
}
