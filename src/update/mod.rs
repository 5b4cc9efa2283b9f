//! Snap deals: the empty-sector update (docs/snap-deals.md).
//!
//! A committed-capacity sector's replica (the *sector key*) is re-encoded with new deal data
//! without sealing again: `new_replica[i] = key[i] + data[i]·rho(i)` in the field, with a new
//! tree_d over the data and a new tree_r_last over the new replica; comm_c stays. The update
//! cache (`update-cache/`) then holds tree_d, tree_r_last, p_aux and t_aux of the update, the
//! update replica (`update/`) the new replica. The vanilla proofs (ProveReplicaUpdate1) open
//! the three trees at challenges drawn from comm_r_new; the SNARK (ProveReplicaUpdate2) is the
//! reference's ([`crate::snark::update`]).

pub mod challenges;
pub mod decode;
pub mod encode;
pub mod key;
pub mod params;
pub mod phase;
pub mod rho;
pub mod vanilla;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::durable::PendingFile;
use crate::pc2::TreeBuilder;

use crate::sector::document::SectorDoc;
use crate::sector::proof::SealProof;

/// The files of one sector update.
#[derive(Debug, Clone)]
pub struct UpdateFiles {
    pub proof: SealProof,
    /// The sector key: the sector's sealed file (`paths.sealed`).
    pub key: PathBuf,
    /// The sector key's cache (`paths.cache`).
    pub key_cache: PathBuf,
    /// The new data, fr32-padded in sector layout (`update.paths.unsealed`).
    pub data: PathBuf,
    /// The update replica (`update.paths.sealed`).
    pub replica: PathBuf,
    /// The update cache (`update.paths.cache`).
    pub cache: PathBuf,
}

impl UpdateFiles {
    /// The files a sector document names.
    pub fn of(doc: &SectorDoc) -> Result<UpdateFiles> {
        let u = doc.update_doc()?;
        Ok(UpdateFiles {
            proof: doc.seal_proof()?,
            key: doc.path("sealed")?,
            key_cache: doc.path("cache")?,
            data: u
                .path("unsealed")
                .map_err(|e| anyhow::anyhow!("update: {e}"))?,
            replica: u
                .path("sealed")
                .map_err(|e| anyhow::anyhow!("update: {e}"))?,
            cache: u
                .path("cache")
                .map_err(|e| anyhow::anyhow!("update: {e}"))?,
        })
    }

    /// Refuses an update whose outputs are its inputs (or each other).
    pub fn check_distinct(&self) -> Result<()> {
        use crate::fsutil::same_file;
        let named = [
            ("sector key", &self.key),
            ("new data", &self.data),
            ("update replica", &self.replica),
        ];
        for (i, (a, pa)) in named.iter().enumerate() {
            for (b, pb) in &named[i + 1..] {
                anyhow::ensure!(
                    pa != pb && !same_file(pa, pb)?,
                    "the {a} and the {b} are the same file {}",
                    pa.display()
                );
            }
        }
        anyhow::ensure!(
            self.cache != self.key_cache && !same_file(&self.cache, &self.key_cache)?,
            "the update cache and the sector's cache are the same directory {}",
            self.cache.display()
        );
        Ok(())
    }
}

/// Builds tree_r_last over `replica` (a finished replica-shaped file's bytes) into `dir`,
/// adding its files to `pending`: they are committed with the rest of a phase's outputs
/// ([`commit_all`]). Returns the root.
fn tree_r_last_pending(
    proof: SealProof,
    replica: &[u8],
    dir: &Path,
    rows_to_discard: usize,
    verbose: bool,
    builder: &dyn TreeBuilder,
    pending: &mut Vec<PendingFile>,
) -> Result<[u8; 32]> {
    crate::pc2::tree_r_last(
        proof,
        &|at, buf| {
            buf.copy_from_slice(&replica[at as usize..at as usize + buf.len()]);
            Ok(())
        },
        dir,
        rows_to_discard,
        verbose,
        builder,
        &[],
        &mut |_, file| {
            pending.push(file);
            Ok(())
        },
    )
}

/// Puts every file of `pending` in place when `result` is a success; otherwise removes them
/// all, so a failed phase leaves nothing half written.
fn commit_all<T>(result: Result<T>, pending: Vec<PendingFile>) -> Result<T> {
    match result {
        Ok(v) => {
            for p in pending {
                p.commit()?;
            }
            Ok(v)
        }
        Err(e) => {
            for p in pending {
                p.discard();
            }
            Err(e)
        }
    }
}
