//! The shape of a Commit1 output, checked before it is proven.
//!
//! The prover takes tens of seconds (minutes for 32 GiB) before it finds that an output has
//! the wrong number of partitions or challenges, or proofs of another tree shape, and then
//! reports it as a failed proof. The shape follows from the proof type alone, so it is
//! checked here first, with an error naming the field.

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::Value;

use crate::sector::proof::SealProof;

/// Checks `v` (the reference's `SealCommitPhase1Output` JSON, already unwrapped from
/// filecoin-proofs-api's form) against `proof`: partitions, challenges per partition, the
/// Merkle proof variant of the tree shape, and the layers of every column and labeling proof.
pub fn check_structure(v: &Value, proof: SealProof, file: &Path) -> Result<()> {
    let file = file.display();
    let Some(parts) = v.get("vanilla_proofs").and_then(Value::as_array) else {
        bail!("{file}: field \"vanilla_proofs\" is missing or not a list");
    };
    if parts.len() != proof.partitions() {
        bail!(
            "{file}: field \"vanilla_proofs\" has {} partitions, {} has {}",
            parts.len(),
            proof.name(),
            proof.partitions()
        );
    }
    let per_part = proof.challenges_per_partition();
    let shape = proof.tree_shape();
    let variant = match (shape.sub > 0, shape.top > 0) {
        (_, true) => "Top",
        (true, false) => "Sub",
        _ => "Single",
    };
    let layers = proof.layers();
    for (k, part) in parts.iter().enumerate() {
        let field = format!("vanilla_proofs[{k}]");
        let Some(challenges) = part.as_array() else {
            bail!("{file}: field \"{field}\" is not a list");
        };
        if challenges.len() != per_part {
            bail!(
                "{file}: field \"{field}\" has {} challenge proofs, {} has {per_part} per partition",
                challenges.len(),
                proof.name()
            );
        }
        for (i, c) in challenges.iter().enumerate() {
            check_challenge(c, &format!("{field}[{i}]"), variant, layers)
                .map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
        }
    }
    Ok(())
}

/// The variant (`Single`, `Sub`, `Top`) of a serialised Merkle proof.
fn proof_variant(p: Option<&Value>) -> Option<&str> {
    let data = p?.get("data")?.as_object()?;
    if data.len() != 1 {
        return None;
    }
    data.keys().next().map(String::as_str)
}

fn check_challenge(c: &Value, field: &str, variant: &str, layers: usize) -> Result<()> {
    match proof_variant(c.get("comm_d_proofs")) {
        Some("Single") => {}
        _ => bail!("field \"{field}.comm_d_proofs\" is not a Single Merkle proof"),
    }
    let r = proof_variant(c.get("comm_r_last_proof"));
    if r != Some(variant) {
        bail!(
            "field \"{field}.comm_r_last_proof\" is not a {variant} Merkle proof (this proof type's tree shape)"
        );
    }
    let Some(cols) = c.get("replica_column_proofs") else {
        bail!("field \"{field}.replica_column_proofs\" is missing");
    };
    let mut columns = vec![("c_x".to_string(), cols.get("c_x"))];
    for (key, n) in [("drg_parents", 6), ("exp_parents", 8)] {
        match cols.get(key).and_then(Value::as_array) {
            Some(list) if list.len() == n => columns.extend(
                list.iter()
                    .enumerate()
                    .map(|(j, p)| (format!("{key}[{j}]"), Some(p))),
            ),
            _ => bail!(
                "field \"{field}.replica_column_proofs.{key}\" is not a list of {n} column proofs"
            ),
        }
    }
    for (name, col) in columns {
        let rows = col
            .and_then(|c| c.get("column"))
            .and_then(|c| c.get("rows"))
            .and_then(Value::as_array)
            .map(Vec::len);
        if rows != Some(layers) {
            bail!("field \"{field}.replica_column_proofs.{name}.column.rows\" does not hold {layers} layers");
        }
        if proof_variant(col.and_then(|c| c.get("inclusion_proof"))) != Some(variant) {
            bail!("field \"{field}.replica_column_proofs.{name}.inclusion_proof\" is not a {variant} Merkle proof");
        }
    }
    match c.get("labeling_proofs").and_then(Value::as_array) {
        Some(l) if l.len() == layers => {}
        _ => bail!("field \"{field}.labeling_proofs\" does not hold {layers} layers"),
    }
    if c.get("encoding_proof").is_none_or(|e| !e.is_object()) {
        bail!("field \"{field}.encoding_proof\" is missing");
    }
    Ok(())
}
