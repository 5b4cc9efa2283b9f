//! Synthetic PoRep after PC2 (docs/sdr-porep.md#synthetic-porep): prove every synthetic challenge
//! while the layers exist, check each proof, and store them all, so the layers, tree_d and tree_c
//! can be deleted long before the seed arrives.
//!
//! Proofs are produced in chunks in parallel and appended in order to a temp file that is
//! fsynced and renamed into place: a kill leaves either no file or the whole file. A re-run
//! finds a complete file for the same trees (size and roots) and keeps it.

use std::io::{BufWriter, Read, Write};

use anyhow::{Context, Result};
use rayon::prelude::*;

use super::openings::SectorTrees;
use super::synth_file::{encode, file_size, record_size, write_header, SYNTH_FILE};
use super::{challenges, vanilla, SealedSector};
use crate::fsutil::{sync_parent, temp_path};

/// Challenges proven per parallel chunk.
const CHUNK: usize = 4096;

/// Writes `syn-porep-vanilla-proofs.dat` for a synthetic sector after PC2. Returns whether a
/// new file was written (false: a complete one was already there).
pub fn generate(s: &SealedSector, verbose: bool) -> Result<bool> {
    let path = s.cache.join(SYNTH_FILE);
    let set = challenges::synthetic(s.proof.nodes(), &s.replica_id, &s.comm_r);
    let want_len = file_size(s.proof, set.len());
    if complete(&path, want_len, s)? {
        return Ok(false);
    }
    crate::progress::step(verbose, "synthetic proofs", || {
        write_file(s, &set, want_len)
    })?;
    Ok(true)
}

fn write_file(s: &SealedSector, set: &[u64], want_len: u64) -> Result<()> {
    let path = s.cache.join(SYNTH_FILE);
    let trees = SectorTrees::open(s.proof, &s.cache, &s.sealed, true)?;
    let graph = s.graph();
    crate::fsutil::check_replaceable(&path)?;
    crate::fsutil::remove_dead_temps(&s.cache);
    let tmp = temp_path(&path);
    let file = crate::fsutil::create_temp(&tmp)?;
    crate::fsutil::reserve(&file, want_len)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    write_header(&mut w, [&s.comm_d, &s.comm_c, &s.comm_r_last])?;
    let bar = crate::progress::count(set.len() as u64, "synthetic proofs");
    let mut buf = Vec::with_capacity(CHUNK * record_size(s.proof));
    for chunk in set.chunks(CHUNK) {
        let proofs = chunk
            .par_iter()
            .map(|&c| vanilla::prove(&trees, &graph, c))
            .collect::<Result<Vec<_>>>()?;
        s.check_all(&proofs)?;
        buf.clear();
        for p in &proofs {
            encode(p, &mut buf);
        }
        w.write_all(&buf)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    crate::fsutil::rename_into_place(&tmp, &path)?;
    sync_parent(&path)
}

/// Whether `path` is already a whole synthetic proofs file for these trees.
fn complete(path: &std::path::Path, len: u64, s: &SealedSector) -> Result<bool> {
    let Ok(mut f) = crate::fsutil::open_regular_read(path) else {
        return Ok(false);
    };
    if f.metadata()?.len() != len {
        return Ok(false);
    }
    let mut roots = [0u8; 96];
    f.read_exact(&mut roots)?;
    Ok(roots[..32] == s.comm_d && roots[32..64] == s.comm_c && roots[64..] == s.comm_r_last)
}
