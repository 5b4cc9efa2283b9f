//! Commit1: the vanilla proofs a sector's SNARK proves
//! (docs/sdr-porep.md#commit1-inputs-and-checks, docs/sdr-porep.md#vanilla-proof,
//! docs/sdr-porep.md#synthetic-porep).
//!
//! [`commit1`] derives the challenges (interactive from the seed, non-interactive from
//! comm_r, synthetic by selecting from the proofs stored after PC2), opens them in the
//! sector's files ([`openings`]), checks every opening as the reference's verifier would
//! ([`vanilla::check`]) and writes the reference's Commit1 JSON ([`output`]) to the cache
//! directory. [`synthetic::generate`] writes the synthetic proofs file after PC2.

pub mod challenges;
pub mod openings;
pub mod output;
pub mod synth_file;
pub mod synthetic;
pub mod vanilla;

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use rayon::prelude::*;

use crate::fsutil::write_atomic;
use crate::hash::poseidon::hash2;
use crate::piece::comm_d::{self as piece_comm_d, PieceCommitment};
use crate::progress::step;
use crate::sdr::graph::SdrGraph;
use crate::sector::document::SectorDoc;
use crate::sector::lock::SectorLock;
use crate::sector::proof::SealProof;
use crate::sector::replica_id::replica_id;
use challenges::Kind;
use output::{commit1_json, Commit1Header};
use vanilla::{check, ChallengeProof, Expected};

/// The Commit1 output's name in the cache directory.
pub const C1_FILE: &str = "commit1-output.json";

/// A sector after PC2, its public values checked against each other.
pub struct SealedSector {
    pub proof: SealProof,
    pub cache: PathBuf,
    pub sealed: PathBuf,
    pub ticket: [u8; 32],
    pub replica_id: [u8; 32],
    pub comm_d: [u8; 32],
    pub comm_c: [u8; 32],
    pub comm_r_last: [u8; 32],
    pub comm_r: [u8; 32],
}

impl SealedSector {
    /// Reads and cross-checks a document after seal-pc2: comm_d against the pieces,
    /// replica_id against the ids, comm_r against `p_aux`.
    pub fn from_doc(doc: &SectorDoc) -> Result<SealedSector> {
        let proof = doc.seal_proof()?;
        let cache = doc.path("cache")?;
        let sealed = doc.path("sealed")?;
        let comm_d = doc.hex32_after("comm_d", "run seal-ap and seal-pc1 first")?;
        let comm_r = doc.hex32_after("comm_r", "run seal-pc2 first")?;
        ensure!(comm_d != [0; 32], "field \"comm_d\" is all zeros");
        ensure!(comm_r != [0; 32], "field \"comm_r\" is all zeros");
        let pieces: Vec<PieceCommitment> = doc
            .pieces()?
            .iter()
            .map(|p| PieceCommitment {
                padded_size: p.padded_size,
                comm_p: p.comm_p,
            })
            .collect();
        if !pieces.is_empty() {
            ensure!(
                piece_comm_d::comm_d(proof.sector_size(), &pieces)? == comm_d,
                "field \"comm_d\" does not match the document's pieces"
            );
        }
        let ticket = doc.ticket()?;
        let rid = replica_id(
            &doc.prover_id()?,
            doc.sector()?,
            &ticket,
            &comm_d,
            &proof.porep_id(),
        );
        if let Some(r) = doc.hex32_opt("replica_id")? {
            ensure!(
                r == rid,
                "field \"replica_id\" does not match the document's prover, sector, ticket and comm_d"
            );
        }
        let p_aux_path = cache.join(crate::pc2::P_AUX_FILE);
        let p_aux = std::fs::read(&p_aux_path)
            .with_context(|| format!("{} is missing (run seal-pc2 first)", p_aux_path.display()))?;
        ensure!(
            p_aux.len() == 64,
            "{} has {} bytes, expected 64",
            p_aux_path.display(),
            p_aux.len()
        );
        let comm_c: [u8; 32] = p_aux[..32].try_into().expect("32 bytes");
        let comm_r_last: [u8; 32] = p_aux[32..].try_into().expect("32 bytes");
        ensure!(
            hash2(&comm_c, &comm_r_last) == comm_r,
            "field \"comm_r\" does not match {} (comm_c, comm_r_last): the document belongs to another sector or PC2",
            p_aux_path.display()
        );
        Ok(SealedSector {
            proof,
            cache,
            sealed,
            ticket,
            replica_id: rid,
            comm_d,
            comm_c,
            comm_r_last,
            comm_r,
        })
    }

    pub fn graph(&self) -> SdrGraph {
        SdrGraph::new(
            self.proof.nodes(),
            self.proof.porep_id(),
            self.proof.api_version(),
        )
    }

    /// Checks proofs as the reference's `verify_all_partitions` does.
    pub fn check_all<'a>(
        &self,
        proofs: impl IntoParallelIterator<Item = &'a ChallengeProof>,
    ) -> Result<()> {
        let graph = self.graph();
        let e = Expected {
            graph: &graph,
            replica_id: self.replica_id,
            comm_d: self.comm_d,
            comm_c: self.comm_c,
            comm_r_last: self.comm_r_last,
        };
        proofs.into_par_iter().try_for_each(|p| {
            check(p, &e).context(
                "self-check of the vanilla proofs failed: the sector's files are inconsistent",
            )
        })
    }
}

/// How C1 runs.
#[derive(Debug, Clone, Default)]
pub struct Commit1Options {
    pub verbose: bool,
}

/// Runs C1 for a document holding `seed`: writes the Commit1 output into the cache directory
/// and records `c1_output` (its path) in the document.
pub fn commit1(doc: &mut SectorDoc, opts: &Commit1Options) -> Result<PathBuf> {
    let s = SealedSector::from_doc(doc)?;
    let _lock = SectorLock::acquire(&s.cache)?;
    let seed = doc.hex32_after(
        "seed",
        "give --seed (the chain randomness at the seed epoch)",
    )?;
    ensure!(seed != [0; 32], "field \"seed\" is all zeros");
    let proofs = step(opts.verbose, "vanilla proofs", || vanilla_proofs(&s, &seed))?;
    step(opts.verbose, "self-check", || {
        s.check_all(proofs.par_iter().flatten())
    })?;
    let json = commit1_json(
        s.proof.tree_shape(),
        &proofs,
        &Commit1Header {
            comm_r: s.comm_r,
            comm_d: s.comm_d,
            replica_id: s.replica_id,
            seed,
            ticket: s.ticket,
        },
    );
    let path = s.cache.join(C1_FILE);
    write_atomic(&path, json.as_bytes())?;
    doc.set("c1_output", path.display().to_string());
    Ok(path)
}

/// The proofs of every partition, `[partition][challenge]`.
pub fn vanilla_proofs(s: &SealedSector, seed: &[u8; 32]) -> Result<Vec<Vec<ChallengeProof>>> {
    match Kind::of(s.proof) {
        Kind::Synthetic => {
            let path = s.cache.join(synth_file::SYNTH_FILE);
            let set = challenges::synthetic(s.proof.nodes(), &s.replica_id, &s.comm_r);
            (0..s.proof.partitions())
                .map(|k| {
                    let picks = challenges::synthetic_selection(s.proof, &s.replica_id, seed, k);
                    let proofs = synth_file::read(&path, s.proof, &picks)?;
                    for (p, &i) in proofs.iter().zip(&picks) {
                        if p.challenge != set[i] {
                            bail!(
                                "{} holds node {} as synthetic challenge {i}, expected {}: it belongs to another sector",
                                path.display(),
                                p.challenge,
                                set[i]
                            );
                        }
                    }
                    Ok(proofs)
                })
                .collect()
        }
        _ => {
            let trees = openings::SectorTrees::open(s.proof, &s.cache, &s.sealed, true)?;
            let graph = s.graph();
            challenges::partitions(s.proof, &s.replica_id, &s.comm_r, seed)
                .into_iter()
                .map(|part| {
                    part.into_par_iter()
                        .map(|c| vanilla::prove(&trees, &graph, c))
                        .collect()
                })
                .collect()
        }
    }
}

/// Path of the Commit1 output a document records.
pub fn c1_output_path(doc: &SectorDoc) -> Result<PathBuf> {
    match doc.get("c1_output").and_then(|v| v.as_str()) {
        Some(p) => Ok(Path::new(p).to_path_buf()),
        None => Ok(doc.path("cache")?.join(C1_FILE)),
    }
}
