//! PreCommit1: SDR labeling of all layers, tree_d, and the replica file.
//!
//! For each sector: check the document (comm_d must be the pieces' CommD), copy the unsealed
//! data into the replica file (`paths.sealed`) extended to the sector size, build tree_d and
//! check its root against comm_d, compute replica_id, then label every layer into
//! `sc-02-data-layer-<ℓ>.dat`. Each finished file is recorded in the journal; a re-run after a
//! kill resumes from the first file that is missing or does not verify.

mod batch;
mod journal;
pub mod stream;

pub use journal::{Journal, Pc1, JOURNAL_FILE};

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, ensure, Context, Result};
use memmap2::{Mmap, MmapMut};

use crate::buffer::anon_buffer_at_least;
use crate::durable::{NewFile, PendingFile, Syncer};
use crate::fsutil::{open_regular_read, remove_dead_temps, remove_dead_temps_beside};
use crate::merkle::tree_d::{build_tree_d_in_place, TREE_D_FILE};
use crate::piece::comm_d::{comm_d as comm_d_of, PieceCommitment};
use crate::progress::step;
use crate::sdr::graph::SdrGraph;
use crate::sdr::labeler::{label_layer, LayerJob};
use crate::sdr::parent_cache::ParentCache;
use crate::sector::document::SectorDoc;
use crate::sector::lock::SectorLock;
use crate::sector::proof::SealProof;
use crate::sector::replica_id::replica_id;

/// Name of layer `layer` (1-based) in the cache directory.
pub fn layer_file(layer: usize) -> String {
    format!("sc-02-data-layer-{layer}.dat")
}

/// The reference's `SealPreCommitPhase1Output` for a finished PC1 in `cache`, as the JSON
/// filecoin-proofs serialises it (labels, tree_d config, comm_d as 32 numbers): what its
/// `seal_pre_commit_phase2` takes to continue a sector we began.
pub fn reference_pc1_output_json(
    cache: &Path,
    proof: SealProof,
    comm_d: &[u8; 32],
) -> Result<String> {
    let path = cache
        .to_str()
        .with_context(|| format!("cache path {} is not UTF-8", cache.display()))?;
    let nodes = proof.nodes();
    let config = |id: String, size: u64| serde_json::json!({"path": path, "id": id, "size": size, "rows_to_discard": 0});
    let labels: Vec<serde_json::Value> = (1..=proof.layers())
        .map(|l| config(format!("layer-{l}"), nodes))
        .collect();
    Ok(serde_json::json!({
        "labels": {"labels": labels, "_h": null},
        "config": config("tree-d".into(), 2 * nodes - 1),
        "comm_d": comm_d.to_vec(),
    })
    .to_string())
}

/// How PC1 runs.
#[derive(Debug, Clone, Default)]
pub struct Pc1Options {
    /// CPUs to place the hashing and prefetch threads on (ordered, hasher first).
    pub cpus: Vec<usize>,
    /// Report each step's time on stderr.
    pub verbose: bool,
    /// Memory budget of a batch in bytes (`--memory`); `None`: 70% of the memory available.
    pub memory: Option<u64>,
}

/// What PC1 needs from a document, checked.
pub struct Pc1Sector {
    pub proof: SealProof,
    pub replica_id: [u8; 32],
    pub comm_d: [u8; 32],
    pub unsealed: PathBuf,
    pub sealed: PathBuf,
    pub cache: PathBuf,
}

impl Pc1Sector {
    /// Reads and checks the fields PC1 uses.
    pub fn from_doc(doc: &SectorDoc) -> Result<Pc1Sector> {
        let proof = doc.seal_proof()?;
        let prover_id = doc.prover_id()?;
        let sector = doc.sector()?;
        let ticket = doc.ticket()?;
        let unsealed = doc.path("unsealed")?;
        let sealed = doc.path("sealed")?;
        let cache = doc.path("cache")?;
        crate::fsutil::check_distinct_unsealed_sealed(&unsealed, &sealed)?;
        let comm_d = doc
            .hex32_opt("comm_d")?
            .context("sector document has no \"comm_d\": run seal-ap (with --fill) first")?;
        let pieces = doc.pieces()?;
        if !pieces.is_empty() {
            let list: Vec<PieceCommitment> = pieces
                .iter()
                .map(|p| PieceCommitment {
                    padded_size: p.padded_size,
                    comm_p: p.comm_p,
                })
                .collect();
            let from_pieces = comm_d_of(proof.sector_size(), &list)?;
            ensure!(
                from_pieces == comm_d,
                "field \"comm_d\" ({}) is not the CommD of the document's pieces ({})",
                crate::hex::encode(&comm_d),
                crate::hex::encode(&from_pieces)
            );
        }
        let replica_id = replica_id(&prover_id, sector, &ticket, &comm_d, &proof.porep_id());
        Ok(Pc1Sector {
            proof,
            replica_id,
            comm_d,
            unsealed,
            sealed,
            cache,
        })
    }
}

/// Runs PC1 for sector documents of one proof type and adds `replica_id` to each. One
/// sector is labeled by the pipelined single-sector labeler; several are labeled together
/// (see [`crate::sdr::batch`]): with their layers in memory when they fit in the memory
/// budget, else as a streamed batch that reads previous layers back from the files
/// ([`stream`]), and one after another when not even that fits the default budget. A budget
/// given (`opts.memory`) below what one sector needs is an error.
pub fn precommit1(docs: &mut [SectorDoc], opts: &Pc1Options) -> Result<()> {
    let sectors = docs
        .iter()
        .map(Pc1Sector::from_doc)
        .collect::<Result<Vec<_>>>()?;
    let Some(first) = sectors.first() else {
        return Ok(());
    };
    if let Some(other) = sectors.iter().find(|s| s.proof != first.proof) {
        bail!(
            "a batch must have one proof type: {} and {} are mixed",
            first.proof,
            other.proof
        );
    }
    for (i, a) in sectors.iter().enumerate() {
        if let Some(b) = sectors[i + 1..]
            .iter()
            .find(|b| b.cache == a.cache || b.sealed == a.sealed)
        {
            bail!(
                "two documents of the batch name the same sector files ({} / {})",
                b.cache.display(),
                b.sealed.display()
            );
        }
    }
    let budget = opts.memory.unwrap_or_else(batch::default_budget);
    let streamed = batch::streamed_at_once(first.proof, sectors.len(), budget);
    if opts.memory.is_some() {
        streamed
            .as_ref()
            .map_err(|e| anyhow::anyhow!("--memory: {e}"))?;
    }
    // Every sector of the batch is ours alone until the layers are written.
    let _locks = SectorLock::acquire_all(sectors.iter().map(|s| s.cache.as_path()))?;
    let graph = SdrGraph::new(
        first.proof.nodes(),
        first.proof.porep_id(),
        first.proof.api_version(),
    );
    let parents = step(opts.verbose, "parent cache", || {
        ParentCache::open_or_generate(&graph)
    })?;
    let need = batch::in_memory_need(&sectors);
    if sectors.len() > 1 && need <= budget {
        batch::seal_batch(&sectors, &parents, opts)?;
    } else if let (true, Ok(at_once)) = (sectors.len() > 1, streamed) {
        batch::seal_batch_streamed(&sectors, &parents, opts, at_once)?;
    } else {
        if sectors.len() > 1 {
            eprintln!(
                "{}: a batch of {} sectors needs {} MiB of memory, {} MiB are available; sealing them one after another",
                crate::cli::tool_name(),
                sectors.len(),
                need >> 20,
                budget >> 20
            );
        }
        for s in &sectors {
            seal_layers(s, &parents, opts)?;
        }
    }
    for (doc, s) in docs.iter_mut().zip(&sectors) {
        doc.set_hex("replica_id", &s.replica_id);
    }
    Ok(())
}

/// A sector's journal, shared with the syncer thread that records committed files.
pub type SharedJournal = Arc<Mutex<Journal>>;

/// Queues `file` to be committed and then recorded in `journal`.
pub(crate) fn commit_later(
    syncer: &Syncer,
    file: PendingFile,
    journal: &SharedJournal,
    cache: &Path,
) {
    let (journal, cache) = (Arc::clone(journal), cache.to_path_buf());
    syncer.submit(move || record_committed(file, &journal, &cache));
}

/// Commits `file` and records it in the sector's journal.
pub(crate) fn record_committed(
    file: PendingFile,
    journal: &SharedJournal,
    cache: &Path,
) -> Result<()> {
    let (name, (len, sum)) = (file.name(), file.summary());
    file.commit()?;
    journal
        .lock()
        .expect("journal lock")
        .record(cache, &name, len, sum)
}

/// Prepares a sector for labeling: its cache directory, its journal, the replica file and
/// tree_d (checked against comm_d). Files are committed by `syncer`. Returns the journal.
pub fn prepare_sector(s: &Pc1Sector, opts: &Pc1Options, syncer: &Syncer) -> Result<SharedJournal> {
    let journal = open_sector(s)?;
    prepare_data(s, opts, syncer, &journal, None)?;
    Ok(journal)
}

/// A sector's cache directory (created, dead temp files removed) and its journal.
pub fn open_sector(s: &Pc1Sector) -> Result<SharedJournal> {
    fs::create_dir_all(&s.cache)
        .with_context(|| format!("creating cache directory {}", s.cache.display()))?;
    remove_dead_temps(&s.cache);
    remove_dead_temps_beside(&s.sealed);
    let rid = crate::hex::encode(&s.replica_id);
    Ok(Arc::new(Mutex::new(Journal::load(&s.cache, &rid))))
}

/// The part of a sector's preparation that reads its data: the replica file and tree_d
/// (checked against comm_d), queued on `syncer`. Labels do not depend on the data, so a
/// batch runs this beside its first layer's labeling.
///
/// The data is read once, into the leaf row of the tree_d buffer (zeros past the data fill
/// the sector); the replica file is written from those leaves and tree_d from the whole
/// buffer, both with [`PendingFile::write_from`] (straight from the buffer, around the page
/// cache where the file system allows). The buffer is returned (shared with those writes): once they are done,
/// a batch hands it back as `spare` for a later sector, since fresh memory costs a page
/// fault per page (and on a VM often a trip to the host).
pub fn prepare_data(
    s: &Pc1Sector,
    opts: &Pc1Options,
    syncer: &Syncer,
    journal: &SharedJournal,
    spare: Option<MmapMut>,
) -> Result<Arc<Mmap>> {
    let size = s.proof.sector_size() as usize;
    let nodes = s.proof.nodes() as usize;
    let tree_d_done = reuse(
        &journal.lock().expect("journal lock"),
        &s.cache,
        TREE_D_FILE,
    )?;
    let want = if tree_d_done {
        size
    } else {
        (2 * nodes - 1) * 32
    };
    // Rounded up to whole pages of the reserved huge-page pool when there is one (the tail
    // is unused).
    let mut tree = match spare {
        Some(b) if b.len() >= want => b,
        _ => anon_buffer_at_least(want)?,
    };
    step(opts.verbose, "reading the data", || {
        read_data(&s.unsealed, &mut tree[..size])
    })?;
    if !tree_d_done {
        let engine = crate::hash::sha256_engine::active();
        let started = std::time::Instant::now();
        let root = step(
            opts.verbose,
            &format!("tree_d (SHA-256 engine {})", engine.describe()),
            || Ok(build_tree_d_in_place(&mut tree[..want])),
        )?;
        if opts.verbose {
            // Every internal node is two compressions (its pair, then the padding block).
            let compressions = 2.0 * (nodes - 1) as f64;
            eprintln!(
                "{}: tree_d: {:.1} M SHA-256 compressions/s",
                crate::cli::tool_name(),
                compressions / started.elapsed().as_secs_f64() / 1e6
            );
        }
        if root != s.comm_d {
            bail!(
                "the unsealed data in {} has CommD {}, but the document says {}",
                s.unsealed.display(),
                crate::hex::encode(&root),
                crate::hex::encode(&s.comm_d)
            );
        }
    }
    let tree = Arc::new(tree.make_read_only()?);
    if let Some(dir) = s.sealed.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating directory {}", dir.display()))?;
    }
    let (leaves, sealed) = (Arc::clone(&tree), s.sealed.clone());
    // Both written straight from the buffer (no copy through a chunk: 1.5 × the sector of
    // memory traffic saved on the core that labels).
    syncer.submit(move || PendingFile::write_from(sealed, &leaves[..size])?.commit());
    if !tree_d_done {
        let (whole, cache) = (Arc::clone(&tree), s.cache.clone());
        let journal = Arc::clone(journal);
        syncer.submit(move || {
            let file = PendingFile::write_from(cache.join(TREE_D_FILE), &whole[..want])?;
            record_committed(file, &journal, &cache)
        });
    }
    Ok(tree)
}

/// Reads the unsealed file (a regular file of at most the sector's size) into the start of
/// `out` and zeroes the rest.
fn read_data(unsealed: &Path, out: &mut [u8]) -> Result<()> {
    let mut f = open_regular_read(unsealed)
        .with_context(|| format!("unsealed file {}", unsealed.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("unsealed file {}", unsealed.display()))?
        .len();
    ensure!(
        len <= out.len() as u64,
        "unsealed file {} has {len} bytes, more than the {}-byte sector",
        unsealed.display(),
        out.len()
    );
    crate::direct_io::read_exact(&mut f, &mut out[..len as usize])
        .with_context(|| format!("reading unsealed file {}", unsealed.display()))?;
    // A reused buffer holds an earlier sector's bytes past the data.
    out[len as usize..].fill(0);
    Ok(())
}

/// Replica, tree_d and layers for one sector, resuming from its journal.
pub fn seal_layers(s: &Pc1Sector, parents: &ParentCache, opts: &Pc1Options) -> Result<()> {
    let syncer = Syncer::new();
    let journal = prepare_sector(s, opts, &syncer)?;
    let nodes = s.proof.nodes();
    let layers = s.proof.layers();
    let mut prev: Option<Arc<Mmap>> = None;
    for layer in 1..=layers {
        let name = layer_file(layer);
        let path = s.cache.join(&name);
        if reuse(&journal.lock().expect("journal lock"), &s.cache, &name)? {
            let f =
                open_regular_read(&path).with_context(|| format!("opening {}", path.display()))?;
            prev = Some(Arc::new(
                unsafe { Mmap::map(&f) }.with_context(|| format!("mapping {}", path.display()))?,
            ));
            continue;
        }
        journal.lock().expect("journal lock").forget(&name);
        let bar = crate::progress::bytes(Some(nodes), &format!("PC1 layer {layer}/{layers}"));
        let mut out = NewFile::create(path, nodes * 32)?;
        step(opts.verbose, &format!("layer {layer}"), || {
            let job = LayerJob {
                replica_id: s.replica_id,
                layer: layer as u32,
                parents,
                prev: prev.as_deref().map(|m| &m[..]),
                cpus: &opts.cpus,
                progress: &|n| bar.set_position(n),
            };
            label_layer(&job, &mut out.map);
            Ok(())
        })?;
        bar.finish_and_clear();
        let done = out.finished()?;
        prev = done.map();
        commit_later(&syncer, done, &journal, &s.cache);
    }
    step(opts.verbose, "waiting for files to reach the disk", || {
        syncer.finish()
    })
}

/// Whether a file from an earlier run can be reused; says so on stderr, and says when a
/// recorded file no longer matches its checksum.
pub(crate) fn reuse(journal: &Journal, cache: &Path, name: &str) -> Result<bool> {
    if !journal.files.contains_key(name) {
        return Ok(false);
    }
    let ok = journal.verify(cache, name)?;
    if ok {
        eprintln!(
            "{}: {name}: complete and verified, reused",
            crate::cli::tool_name()
        );
    } else {
        eprintln!(
            "{}: {name}: does not match the checksum recorded when it was written; recomputing",
            crate::cli::tool_name()
        );
    }
    Ok(ok)
}
