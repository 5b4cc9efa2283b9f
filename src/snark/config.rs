//! The reference's `PoRepConfig` for one of our seal proof types.

use anyhow::{Context, Result};
use filecoin_proofs::PoRepConfig;
use storage_proofs_core::api_version::{ApiFeature, ApiVersion};

use crate::sector::proof::{self, Feature, SealProof};

/// The reference's configuration of `p` (sector size, partitions, porep_id, version, features).
pub fn porep_config(p: SealProof) -> Result<PoRepConfig> {
    let api = match p.api_version() {
        proof::ApiVersion::V1_0_0 => ApiVersion::V1_0_0,
        proof::ApiVersion::V1_1_0 => ApiVersion::V1_1_0,
        proof::ApiVersion::V1_2_0 => ApiVersion::V1_2_0,
    };
    let features = match p.feature() {
        Some(Feature::SyntheticPoRep) => vec![ApiFeature::SyntheticPoRep],
        Some(Feature::NonInteractivePoRep) => vec![ApiFeature::NonInteractivePoRep],
        None => vec![],
    };
    PoRepConfig::new_groth16_with_features(p.sector_size(), p.porep_id(), api, features)
        .with_context(|| format!("no reference configuration for {p}"))
}
