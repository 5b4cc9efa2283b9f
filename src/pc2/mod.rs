//! PreCommit2: column hashes and tree_c, encoding, tree_r_last, comm_r, p_aux and t_aux.
//!
//! Encoding is `replica[v] = data[v] + label[L][v]` in the field. The reference adds the key
//! to the replica file in place, so running its PC2 twice (or after a kill mid-encoding)
//! corrupts the sector. Here the data always comes from the unsealed file, never from the
//! replica: encoding is a pure function of (unsealed data, last layer) written over the
//! replica, so a re-run after a kill at any point writes the same bytes again. The unsealed
//! file is only read.
//!
//! Finished tree files are recorded in a journal ([`journal`]) so a re-run after a kill
//! reuses them instead of hashing them again.
//!
//! For synthetic proof types PC2 ends by proving every synthetic challenge
//! ([`crate::commit::synthetic`]), as Lotus does, so the layers may go before the seed comes.

mod aux;
mod builder;
mod journal;
mod layer_check;

pub use aux::{t_aux_bytes, write_aux, TreeSizes, P_AUX_FILE, T_AUX_FILE};
pub use builder::{select as select_builder, CpuBuilder, TreeBuilder};
pub use journal::{Journal, Pc2, JOURNAL_FILE};
use layer_check::LayerCheck;

use std::fs::{File, OpenOptions};
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use rayon::prelude::*;

use crate::buffer::anon_buffer;
use crate::commit::challenges::Kind;
use crate::commit::synth_file::SYNTH_FILE;
use crate::commit::{synthetic, SealedSector};
use crate::durable::PendingFile;
use crate::fsutil::{open_regular, open_regular_read};
use crate::hash::poseidon::{self, hash2};
use crate::merkle::poseidon_tree::{
    base_tree_file, cached_rows_offset, combine_roots, default_rows_to_discard, tree_len,
};
use crate::merkle::tree_d::TREE_D_FILE;
use crate::pc1::layer_file;
use crate::piece::cid::{commitment_to_cid, CommitmentKind};
use crate::progress::step;
use crate::sector::document::SectorDoc;
use crate::sector::lock::SectorLock;
use crate::sector::proof::SealProof;
use crate::sector::replica_id::replica_id;

/// How PC2 runs.
#[derive(Debug, Clone, Default)]
pub struct Pc2Options {
    pub verbose: bool,
    /// Column hashes and tree rows on the GPU, or an error (`seal-pc2 --gpu`).
    pub gpu: bool,
}

/// What PC2 produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pc2Output {
    pub comm_c: [u8; 32],
    pub comm_r_last: [u8; 32],
    pub comm_r: [u8; 32],
}

/// Runs PC2 for one document and adds `comm_c`, `comm_r_last`, `comm_r` and `sealed_cid`.
pub fn precommit2(doc: &mut SectorDoc, opts: &Pc2Options) -> Result<Pc2Output> {
    let proof = doc.seal_proof()?;
    let unsealed = doc.path("unsealed")?;
    let sealed = doc.path("sealed")?;
    let cache = doc.path("cache")?;
    let _lock = SectorLock::acquire(&cache)?;
    let comm_d = doc.hex32_after("comm_d", "run seal-ap and seal-pc1 first")?;
    let rid = doc.hex32_after("replica_id", "run seal-pc1 first")?;
    let want = replica_id(
        &doc.prover_id()?,
        doc.sector()?,
        &doc.ticket()?,
        &comm_d,
        &proof.porep_id(),
    );
    ensure!(
        rid == want,
        "field \"replica_id\" does not match the document's prover, sector, ticket and comm_d"
    );
    let mut journal = Journal::load(&cache, &crate::hex::encode(&rid));
    let pc1 = crate::pc1::Journal::load(&cache, &crate::hex::encode(&rid));
    let builder = builder::select(opts.gpu, opts.verbose)?;
    let out = seal_trees_resumable(
        proof,
        &unsealed,
        &sealed,
        &cache,
        opts,
        &builder,
        Some(&mut journal),
        Some(&pc1),
    )?;
    doc.set_hex("comm_c", &out.comm_c);
    doc.set_hex("comm_r_last", &out.comm_r_last);
    doc.set_hex("comm_r", &out.comm_r);
    doc.set(
        "sealed_cid",
        commitment_to_cid(CommitmentKind::Sealed, &out.comm_r),
    );
    if Kind::of(proof) == Kind::Synthetic {
        let sector = SealedSector::from_doc(doc)?;
        synthetic::generate(&sector, opts.verbose)?;
        doc.set(
            "synthetic_proofs",
            cache.join(SYNTH_FILE).display().to_string(),
        );
    }
    Ok(out)
}

/// Nodes per chunk of the sequential passes: 2 MiB of each input at a time, so the process
/// never holds whole layers or the replica (as a map would, counted in its resident memory).
const CHUNK_NODES: usize = 1 << 16;

/// Opens a PC1 output, checking its size.
fn open_exact(path: &Path, len: u64, what: &str) -> Result<File> {
    let f = open_regular_read(path)
        .with_context(|| format!("{what} {} is missing (run seal-pc1 first)", path.display()))?;
    let got = f.metadata()?.len();
    ensure!(
        got == len,
        "{what} {} has {got} bytes, expected {len}: PC1 did not finish (re-run seal-pc1)",
        path.display()
    );
    Ok(f)
}

/// Reads `buf.len()` bytes at `offset`; past the end of the file reads as zeros.
fn read_padded(f: &File, offset: u64, buf: &mut [u8]) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let len = f.metadata()?.len();
    let have = len.saturating_sub(offset).min(buf.len() as u64) as usize;
    f.read_exact_at(&mut buf[..have], offset)?;
    buf[have..].fill(0);
    Ok(())
}

/// tree_c, encoding and tree_r_last for a sector whose PC1 files are in `cache`, every tree
/// computed.
pub fn seal_trees(
    proof: SealProof,
    unsealed: &Path,
    sealed: &Path,
    cache: &Path,
    opts: &Pc2Options,
    builder: &dyn TreeBuilder,
) -> Result<Pc2Output> {
    seal_trees_resumable(proof, unsealed, sealed, cache, opts, builder, None, None)
}

/// [`seal_trees`] reusing the tree files `journal` lists as finished (and still matching),
/// and recording each tree file it writes. Layers `pc1` (the sector's PC1 journal) lists are
/// checked against their recorded checksums as they are read.
#[allow(clippy::too_many_arguments)]
pub fn seal_trees_resumable(
    proof: SealProof,
    unsealed: &Path,
    sealed: &Path,
    cache: &Path,
    opts: &Pc2Options,
    builder: &dyn TreeBuilder,
    mut journal: Option<&mut Journal>,
    pc1: Option<&crate::pc1::Journal>,
) -> Result<Pc2Output> {
    // The root of a finished tree file, if the journal vouches for it.
    let finished = |journal: &Option<&mut Journal>, name: &str| -> Result<Option<[u8; 32]>> {
        let Some(j) = journal else { return Ok(None) };
        if !j.files.contains_key(name) {
            return Ok(None);
        }
        let root = j.finished(cache, name)?;
        let tool = crate::cli::tool_name();
        match root {
            Some(_) => eprintln!("{tool}: {name}: complete and verified, reused"),
            None => eprintln!(
                "{tool}: {name}: does not match the checksum recorded when it was written; recomputing"
            ),
        }
        Ok(root)
    };
    crate::fsutil::check_distinct_unsealed_sealed(unsealed, sealed)?;
    crate::fsutil::remove_dead_temps(cache);
    crate::fsutil::remove_dead_temps_beside(sealed);
    let nodes = proof.nodes() as usize;
    let shape = proof.tree_shape();
    let base_trees = shape.base_trees();
    let per_tree = nodes / base_trees;
    let layer_paths: Vec<_> = (1..=proof.layers())
        .map(|l| cache.join(layer_file(l)))
        .collect();
    let layers: Vec<File> = layer_paths
        .iter()
        .map(|p| open_exact(p, nodes as u64 * 32, "layer file"))
        .collect::<Result<_>>()?;
    open_exact(
        &cache.join(TREE_D_FILE),
        (2 * nodes as u64 - 1) * 32,
        "tree_d file",
    )?;
    let base_len = tree_len(per_tree, shape.base);
    let mut check = LayerCheck::new(pc1, &layer_paths, nodes as u64 * 32);

    // tree_c: one file per base tree, every row. Every layer byte passes through `check`
    // (read for the tree, or just for the check where a finished tree is reused), and no
    // tree_c file is committed, nor the replica encoded, until every layer matched.
    let mut c_roots = Vec::with_capacity(base_trees);
    let mut pending = Vec::new();
    let mut bufs = vec![vec![0u8; CHUNK_NODES.min(per_tree) * 32]; layers.len()];
    let outcome = (|| -> Result<()> {
        for t in 0..base_trees {
            let name = base_tree_file("tree-c", t, base_trees);
            let reused = finished(&journal, &name)?;
            if let Some(root) = reused {
                if check.active() {
                    for first in (0..per_tree).step_by(CHUNK_NODES) {
                        let n = CHUNK_NODES.min(per_tree - first);
                        let at = ((t * per_tree + first) * 32) as u64;
                        read_layers(&layers, at, n, &mut bufs, &mut check)?;
                    }
                }
                c_roots.push(root);
                continue;
            }
            let mut rows = anon_buffer(base_len * 32)?;
            let root = step(
                opts.verbose,
                &format!("tree_c {}/{base_trees}", t + 1),
                || {
                    for first in (0..per_tree).step_by(CHUNK_NODES) {
                        let n = CHUNK_NODES.min(per_tree - first);
                        let at = ((t * per_tree + first) * 32) as u64;
                        read_layers(&layers, at, n, &mut bufs, &mut check)?;
                        let columns: Vec<&[u8]> = bufs.iter().map(|b| &b[..n * 32]).collect();
                        builder.column_hashes(&columns, &mut rows[first * 32..(first + n) * 32])?;
                    }
                    builder.build_rows(&mut rows, per_tree, shape.base)
                },
            )?;
            pending.push((
                name.clone(),
                PendingFile::write_from(cache.join(&name), &rows)?,
            ));
            c_roots.push(root);
        }
        check.finish()
    })();
    if let Err(e) = outcome {
        for (_, f) in pending {
            f.discard();
        }
        return Err(e);
    }
    for (name, f) in pending {
        commit_recorded(cache, &name, f, journal.as_deref_mut())?;
    }
    let comm_c = combine_roots(&c_roots, shape);

    // Encoding, from the unsealed data (never from the replica).
    step(opts.verbose, "encoding", || {
        encode(unsealed, sealed, &layers[layers.len() - 1], nodes)
    })?;
    drop(layers);

    // tree_r_last: one file per base tree, only the rows above the discarded ones.
    let rtd = default_rows_to_discard(per_tree, shape.base);
    let replica = open_exact(sealed, nodes as u64 * 32, "replica file")?;
    let reused = (0..base_trees)
        .map(|t| finished(&journal, &base_tree_file("tree-r-last", t, base_trees)))
        .collect::<Result<Vec<_>>>()?;
    let comm_r_last = tree_r_last(
        proof,
        &|at, buf| read_padded(&replica, at, buf),
        cache,
        rtd,
        opts.verbose,
        builder,
        &reused,
        &mut |name, f| commit_recorded(cache, name, f, journal.as_deref_mut()),
    )?;
    let comm_r = hash2(&comm_c, &comm_r_last);

    let sizes = TreeSizes {
        nodes: nodes as u64,
        layers: proof.layers(),
        base_tree_len: base_len as u64,
        rows_to_discard: rtd as u64,
    };
    write_aux(cache, &comm_c, &comm_r_last, &sizes)?;
    Ok(Pc2Output {
        comm_c,
        comm_r_last,
        comm_r,
    })
}

/// Builds tree_r_last over the replica (`replica(offset, buf)` reads its bytes) into `dir`: per base tree, every row is computed and
/// the rows above the `rows_to_discard` lowest internal ones are written to a temp file that
/// goes to `commit` with its name. Base tree `t` is skipped when `reused[t]` holds its root
/// (a finished file). Returns the compound root. PC2 and the sector update's encoding share
/// it.
#[allow(clippy::too_many_arguments)]
pub fn tree_r_last(
    proof: SealProof,
    replica: &dyn Fn(u64, &mut [u8]) -> Result<()>,
    dir: &Path,
    rows_to_discard: usize,
    verbose: bool,
    builder: &dyn TreeBuilder,
    reused: &[Option<[u8; 32]>],
    commit: &mut dyn FnMut(&str, PendingFile) -> Result<()>,
) -> Result<[u8; 32]> {
    let nodes = proof.nodes() as usize;
    let shape = proof.tree_shape();
    let base_trees = shape.base_trees();
    let per_tree = nodes / base_trees;
    let base_len = tree_len(per_tree, shape.base);
    let mut roots = Vec::with_capacity(base_trees);
    for t in 0..base_trees {
        let name = base_tree_file("tree-r-last", t, base_trees);
        if let Some(&Some(root)) = reused.get(t) {
            roots.push(root);
            continue;
        }
        let mut rows = anon_buffer(base_len * 32)?;
        let root = step(
            verbose,
            &format!("tree_r_last {}/{base_trees}", t + 1),
            || {
                replica((t * per_tree * 32) as u64, &mut rows[..per_tree * 32])?;
                builder.build_rows(&mut rows, per_tree, shape.base)
            },
        )?;
        let keep = &rows[cached_rows_offset(per_tree, shape.base, rows_to_discard)..];
        commit(&name, PendingFile::write_from(dir.join(&name), keep)?)?;
        roots.push(root);
    }
    Ok(combine_roots(&roots, shape))
}

/// Makes a written file durable under its name (fsync, rename), then records it in the
/// journal.
fn commit_recorded(
    cache: &Path,
    name: &str,
    f: PendingFile,
    journal: Option<&mut Journal>,
) -> Result<()> {
    let (len, sum) = f.summary();
    f.commit()?;
    match journal {
        Some(j) => j.record(cache, name, len, sum),
        None => Ok(()),
    }
}

/// Reads `n` nodes at byte `at` of every layer into `bufs`, feeding them to `check`.
fn read_layers(
    layers: &[File],
    at: u64,
    n: usize,
    bufs: &mut [Vec<u8>],
    check: &mut LayerCheck,
) -> Result<()> {
    for (f, b) in layers.iter().zip(bufs.iter_mut()) {
        read_padded(f, at, &mut b[..n * 32])?;
    }
    check.update(bufs, n * 32);
    Ok(())
}

/// `replica[v] = data[v] + key[v]` for every node, `data` read from the unsealed file (zeros
/// past its end), written over the replica file, then made durable.
fn encode(unsealed: &Path, sealed: &Path, key: &File, nodes: usize) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let data = open_regular_read(unsealed).with_context(|| {
        format!(
            "PC2 encodes from the unsealed file, and {} cannot be read",
            unsealed.display()
        )
    })?;
    let data_len = data.metadata()?.len() as usize;
    ensure!(
        data_len <= nodes * 32 && data_len.is_multiple_of(32),
        "unsealed file {} has {data_len} bytes: not whole nodes of this sector",
        unsealed.display()
    );
    let f = open_regular(sealed, OpenOptions::new().read(true).write(true))
        .with_context(|| format!("opening replica {}", sealed.display()))?;
    if f.metadata()?.len() != nodes as u64 * 32 {
        bail!(
            "replica {} is not {} bytes: PC1 did not finish",
            sealed.display(),
            nodes * 32
        );
    }
    let mut d = vec![0u8; CHUNK_NODES * 32];
    let mut k = vec![0u8; CHUNK_NODES * 32];
    for first in (0..nodes).step_by(CHUNK_NODES) {
        let n = CHUNK_NODES.min(nodes - first);
        let at = (first * 32) as u64;
        read_padded(&data, at, &mut d[..n * 32])?;
        read_padded(key, at, &mut k[..n * 32])?;
        d[..n * 32]
            .par_chunks_mut(32 * 1024)
            .zip(k[..n * 32].par_chunks(32 * 1024))
            .for_each(|(d, k)| {
                for (dn, kn) in d.chunks_exact_mut(32).zip(k.chunks_exact(32)) {
                    let e = poseidon::add(dn, kn);
                    dn.copy_from_slice(&e);
                }
            });
        f.write_all_at(&d[..n * 32], at)
            .with_context(|| format!("writing replica {}", sealed.display()))?;
    }
    f.sync_all()
        .with_context(|| format!("syncing replica {}", sealed.display()))
}
