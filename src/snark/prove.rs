//! Commit2: the SNARK from a Commit1 output (ours, the reference's, or Lotus's Commit1Out).

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use bellperson::groth16::aggregate::AggregateVersion;
use filecoin_proofs::{
    aggregate_seal_commit_proofs, seal_commit_phase2, seal_commit_phase2_circuit_proofs,
    verify_seal, PoRepConfig, SealCommitPhase1Output,
};
use serde_json::Value;
use storage_proofs_core::merkle::MerkleTreeTrait;
use storage_proofs_core::sector::SectorId;

use super::aggregate::CIRCUIT_PROOFS;
use super::config::porep_config;
use super::params::check_present;
use crate::commit::challenges::Kind;
use crate::hex;
use crate::sector::document::SectorDoc;
use crate::sector::proof::SealProof;
use crate::with_tree_shape;

/// A Commit1 output's public fields, as 32-byte values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct C1Fields {
    pub comm_r: [u8; 32],
    pub comm_d: [u8; 32],
    pub replica_id: [u8; 32],
    pub seed: [u8; 32],
    pub ticket: [u8; 32],
}

fn bytes32(v: &Value, key: &str, file: &Path) -> Result<[u8; 32]> {
    let a = v
        .get(key)
        .and_then(Value::as_array)
        .filter(|a| a.len() == 32)
        .with_context(|| format!("{}: field \"{key}\" is not 32 bytes", file.display()))?;
    let mut out = [0u8; 32];
    for (o, x) in out.iter_mut().zip(a) {
        *o = x
            .as_u64()
            .filter(|&b| b < 256)
            .with_context(|| format!("{}: field \"{key}\" holds a non-byte", file.display()))?
            as u8;
    }
    Ok(out)
}

/// The most bytes read as a Commit1 output. The largest real ones are NI-PoRep outputs of
/// 32/64 GiB sectors: about 2,250 challenges of roughly 180 KB of JSON each (tree_d path,
/// 15 label columns with their tree_c paths, tree_r_last path, labeling proofs), some
/// 400 MB; interactive 32 GiB outputs are near 32 MB. 1 GiB leaves room and still stops a
/// wrong file before it exhausts memory.
pub const MAX_C1_BYTES: u64 = 1 << 30;

/// Reads a Commit1 output for `proof`: the reference's `SealCommitPhase1Output` JSON, or
/// filecoin-proofs-api's form that filecoin-ffi hands to Lotus (`registered_proof` plus the
/// proofs under a per-size variant), which is unwrapped to the former.
pub fn read_c1(path: &Path, proof: SealProof) -> Result<(Value, C1Fields)> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read Commit1 output {}", path.display()))?;
    let text = crate::cli::read_capped(
        file,
        MAX_C1_BYTES,
        &format!("Commit1 output {}", path.display()),
    )?;
    let mut v: Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a Commit1 output (truncated or not JSON)",
            path.display()
        )
    })?;
    ensure!(v.is_object(), "{} is not a Commit1 output", path.display());
    if let Some(rp) = v.get("registered_proof").cloned() {
        let name = rp.as_str().unwrap_or_default();
        ensure!(
            name == proof.name(),
            "{}: registered_proof is {rp}, but the document's seal_proof is {}",
            path.display(),
            proof.name()
        );
        let inner = v
            .get("vanilla_proofs")
            .and_then(Value::as_object)
            .filter(|m| m.len() == 1)
            .and_then(|m| m.values().next().cloned())
            .with_context(|| {
                format!(
                    "{}: vanilla_proofs is not a per-size variant",
                    path.display()
                )
            })?;
        let m = v.as_object_mut().expect("an object");
        m.remove("registered_proof");
        m.insert("vanilla_proofs".into(), inner);
    }
    let fields = C1Fields {
        comm_r: bytes32(&v, "comm_r", path)?,
        comm_d: bytes32(&v, "comm_d", path)?,
        replica_id: bytes32(&v, "replica_id", path)?,
        seed: bytes32(&v, "seed", path)?,
        ticket: bytes32(&v, "ticket", path)?,
    };
    Ok((v, fields))
}

/// Cross-checks a Commit1 output against the document it is proven for; fills the
/// document's missing public fields from it (so `seal-verify` can check the proof later).
fn reconcile(doc: &mut SectorDoc, f: &C1Fields, path: &Path) -> Result<()> {
    ensure!(
        f.seed != [0; 32],
        "{}: the seed is all zeros",
        path.display()
    );
    ensure!(
        f.comm_d != [0; 32],
        "{}: comm_d is all zeros",
        path.display()
    );
    ensure!(
        f.comm_r != [0; 32],
        "{}: comm_r is all zeros",
        path.display()
    );
    for (key, val) in [
        ("comm_r", &f.comm_r),
        ("comm_d", &f.comm_d),
        ("seed", &f.seed),
        ("ticket", &f.ticket),
    ] {
        match doc.hex32_opt(key)? {
            Some(d) if d != *val => bail!(
                "{} was made for another {key} ({}) than the document's ({})",
                path.display(),
                hex::encode(val),
                hex::encode(&d)
            ),
            Some(_) => {}
            None => doc.set_hex(key, val),
        }
    }
    let rid = crate::sector::replica_id::replica_id(
        &doc.prover_id()?,
        doc.sector()?,
        &f.ticket,
        &f.comm_d,
        &doc.seal_proof()?.porep_id(),
    );
    ensure!(
        rid == f.replica_id,
        "{} was made for another prover, sector or proof type than the document's",
        path.display()
    );
    Ok(())
}

/// NI-PoRep Commit2 as the reference's `seal_commit_phase2` does it (partition proofs, their
/// aggregate, a check with `verify_seal`), in its three steps so that the partition proofs
/// are kept too: a message of several NI sectors aggregates all their partitions at once
/// ([`super::aggregate`]), which the one-sector aggregate cannot be part of. Returns the
/// one-sector aggregate and the partition proofs.
fn ni_commit2<Tree: 'static + MerkleTreeTrait>(
    config: &PoRepConfig,
    out: SealCommitPhase1Output<Tree>,
    prover_id: [u8; 32],
    sector: SectorId,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let (comm_r, comm_d, seed, ticket) = (out.comm_r, out.comm_d, out.seed, out.ticket);
    let circuit =
        seal_commit_phase2_circuit_proofs::<Tree>(config, out, sector).context("commit2 failed")?;
    let partitions = circuit.proof.clone();
    let agg = aggregate_seal_commit_proofs::<Tree>(
        config,
        &[comm_r],
        &[seed],
        &[circuit],
        AggregateVersion::V2,
    )
    .context("commit2: aggregating the partition proofs failed")?;
    let valid = verify_seal::<Tree>(
        config, comm_r, comm_d, prover_id, sector, ticket, seed, &agg,
    )
    .context("commit2: checking the proof failed")?;
    ensure!(valid, "commit2 made a proof that does not verify");
    Ok((agg, partitions))
}

/// Runs C2 for a document from the Commit1 output at `c1`; adds `proof` (hex) to the
/// document, and for NI-PoRep also `circuit_proofs`, the partition proofs that a
/// several-sector aggregate needs. The proof is verified before it is returned.
pub fn commit2(doc: &mut SectorDoc, c1: &Path) -> Result<Vec<u8>> {
    let proof = doc.seal_proof()?;
    let prover_id = doc.prover_id()?;
    let sector = doc.sector()?;
    let (value, fields) = read_c1(c1, proof)?;
    reconcile(doc, &fields, c1)?;
    super::c1_check::check_structure(&value, proof, c1)?;
    check_present(proof, true, Kind::of(proof) == Kind::NonInteractive)?;
    let config = porep_config(proof)?;
    let bytes = with_tree_shape!(proof, Tree => {
        let out: SealCommitPhase1Output<Tree> = serde_json::from_value(value).with_context(|| {
            format!("{} is not a Commit1 output for {}", c1.display(), proof.name())
        })?;
        if Kind::of(proof) == Kind::NonInteractive {
            let circuit = ni_commit2::<Tree>(&config, out, prover_id, SectorId::from(sector))?;
            doc.set(CIRCUIT_PROOFS, hex::encode(&circuit.1));
            circuit.0
        } else {
            seal_commit_phase2::<Tree>(&config, out, prover_id, SectorId::from(sector))
                .context("commit2 failed")?
                .proof
        }
    });
    doc.set("proof", hex::encode(&bytes));
    Ok(bytes)
}
