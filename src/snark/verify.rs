//! Verifying a sealed sector's proof with the reference's verifier and the parameter
//! cache's verifying key.

use anyhow::{Context, Result};
use filecoin_proofs::verify_seal;
use storage_proofs_core::sector::SectorId;

use super::config::porep_config;
use super::params::check_present;
use crate::commit::challenges::Kind;
use crate::hex;
use crate::sector::document::SectorDoc;
use crate::with_tree_shape;

/// The answer for one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub valid: bool,
    /// Why the reference's verifier rejected the proof outright, when it did.
    pub reason: Option<String>,
}

/// Whether the document's `proof` proves its sector (comm_r, comm_d, ids, ticket, seed).
/// Errors are for documents that cannot be checked at all (fields or parameters missing).
pub fn verify(doc: &SectorDoc) -> Result<Verdict> {
    let proof = doc.seal_proof()?;
    let field = |k: &str| doc.hex32_after(k, "it is not a proven sector (run seal-c2)");
    let (comm_r, comm_d, seed, ticket) = (
        field("comm_r")?,
        field("comm_d")?,
        field("seed")?,
        doc.ticket()?,
    );
    let bytes = hex::decode(
        doc.get("proof")
            .and_then(|v| v.as_str())
            .context("sector document has no \"proof\": run seal-c2 first")?,
    )
    .context("field \"proof\"")?;
    check_present(proof, false, Kind::of(proof) == Kind::NonInteractive)?;
    let config = porep_config(proof)?;
    let sector = SectorId::from(doc.sector()?);
    let prover_id = doc.prover_id()?;
    with_tree_shape!(proof, Tree => {
        // The reference errors (rather than answering false) on some malformed inputs, such
        // as a proof of the wrong length or zero commitments: those are invalid proofs too.
        Ok(
            match verify_seal::<Tree>(&config, comm_r, comm_d, prover_id, sector, ticket, seed, &bytes) {
                Ok(valid) => Verdict { valid, reason: None },
                Err(e) => Verdict {
                    valid: false,
                    reason: Some(format!("{e:#}")),
                },
            },
        )
    })
}
