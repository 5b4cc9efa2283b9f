//! The parent cache file: every node's 14 parents, shared with rust-fil-proofs.
//!
//! Same directory rule, file name and bytes as the reference
//! (docs/sdr-porep.md#parent-cache-file): a cache written by Lotus is used as is, and ours is
//! used by Lotus. The file is N entries of 14 little-endian u32 (56 bytes per node). It is
//! generated when missing, under a lock so that concurrent processes generate it once, into a
//! temp name that is renamed into place when complete. Files of the production graphs (ids 0–9)
//! are checked against the reference's published digests after generation, and on open when
//! `FIL_PROOFS_VERIFY_CACHE=1`.
//!
//! Every open also checks every entry's range (one parallel pass at memory speed, far cheaper
//! than the digest): the labelers index label buffers with these numbers, and a corrupted
//! file must be an error (and is regenerated under the lock), never a wild read.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use memmap2::{Mmap, MmapMut, MmapOptions};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::graph::SdrGraph;
use super::{BASE_DEGREE, DEGREE, EXP_DEGREE};
use crate::fsutil::{
    create_preallocated, open_regular_read, remove_dead_temps, rename_into_place, sync_parent,
    temp_path,
};

/// `storage-proofs-core` parameter_cache VERSION.
const VERSION: u32 = 28;
/// Bytes per node in the file.
pub const ENTRY_BYTES: usize = DEGREE * 4;

/// The reference's manifest (`storage-proofs-porep/parent_cache.json`): file stem → digest.
const MANIFEST: [(&str, &str); 10] = [
    (
        "v28-sdr-parent-21981246c370f9d76c7a77ab273d94bde0ceb4e938292334960bce05585dc117",
        "93deeac5e3052b6927467d4b2641bb782f05491de18d510147c93eeedd8672da",
    ),
    (
        "v28-sdr-parent-2aa9c77c3e58259481351cc4be2079cc71e1c9af39700866545c043bfa30fb42",
        "3adcc092423aa76d6a7184016893406da44dd974b219a89cd3ece25e4e3018f5",
    ),
    (
        "v28-sdr-parent-3f0eef38bb48af1f48ad65e14eb85b4ebfc167cec18cd81764f6d998836c9899",
        "3da49221e2ed55371b86d0bf3d6526fcf128af61bed904f966428db1b531750d",
    ),
    (
        "v28-sdr-parent-4905486b7af19558ac3649bc6261411858b6add534438878c4ee3b29d8b9de0b",
        "2698b74eb2606b55b98d8b095e18b6320b47f46e00075956d48640ccd1641b03",
    ),
    (
        "v28-sdr-parent-494d91dc80f2df5272c4b9e129bc7ade9405225993af9fe34e6542a39a47554b",
        "840057702eea7652cf97e04306c30fe57174714d90de156a25eddd6075c25b97",
    ),
    (
        "v28-sdr-parent-5eed212119fd91aa6220a27f31a8966444a9381842bceb3a1ea61525bd47a5b5",
        "03cd13565ded97c240a5f52e54295ad127bd0461b57904cb3a4d79b097bbecab",
    ),
    (
        "v28-sdr-parent-7ba215a1d2345774ab90b8cb1158d296e409d6068819d7b8c7baf0b25d63dc34",
        "b5877d1963793efebc261fd8fde4dd6bc59e6b5c7abf52617a4ee023b8dc173a",
    ),
    (
        "v28-sdr-parent-8a99e8d6b6be7ab87a56b632e6739ff201c23ea14e99737c74690f0e265574d6",
        "2778a732ad46a7dc18e0564dfdf59fd321dcde74ab476fd6d3c4e6735d7cd89c",
    ),
    (
        "v28-sdr-parent-dcdabb0fbe4364bf0ac28b6a18c66de246409fa1a9020a00f33fb3e3053da6dc",
        "a76604f2f59f2744c7151653bbb1d8596b6b57d295e6fa6c1f0c41d725b502ce",
    ),
    (
        "v28-sdr-parent-e1fa5d5b811ddbd118be3412c4a8c329156b8b8acc72632bca459455b5a05a13",
        "3c4f9841fcc75aed8c695800e58d08480629f25af3a2aefd81904181d75cc0b6",
    ),
];

/// The parent cache directory: `FIL_PROOFS_PARENT_CACHE`, else
/// `${FIL_PROOFS_CACHE_DIR:-/var/tmp/}filecoin-parents` (plain string concatenation, as the
/// reference does it).
pub fn cache_dir() -> PathBuf {
    if let Ok(d) = std::env::var("FIL_PROOFS_PARENT_CACHE") {
        return PathBuf::from(d);
    }
    let base = std::env::var("FIL_PROOFS_CACHE_DIR").unwrap_or_else(|_| "/var/tmp/".into());
    PathBuf::from(format!("{base}filecoin-parents"))
}

/// `v28-sdr-parent-<hex(SHA256(D))>.cache` (docs/sdr-porep.md#parent-cache-file).
pub fn file_name(graph: &SdrGraph) -> String {
    let id = format!(
        "stacked_graph::StackedGraph{{expansion_degree: {EXP_DEGREE} base_graph: drgraph::BucketGraph{{size: {}; degree: {BASE_DEGREE}; hasher: poseidon_hasher}} }}",
        graph.nodes
    );
    let mut h = Sha256::new();
    h.update(b"poseidon_hasher");
    h.update(id.as_bytes());
    for k in graph.feistel_keys() {
        h.update(k.to_le_bytes());
    }
    h.update((graph.nodes as u32).to_le_bytes());
    format!(
        "v{VERSION}-sdr-parent-{}.cache",
        crate::hex::encode(&h.finalize())
    )
}

/// The published digest of a production cache file, if this is one.
pub fn manifest_digest(file_name: &str) -> Option<&'static str> {
    let stem = file_name.strip_suffix(".cache")?;
    MANIFEST.iter().find(|(n, _)| *n == stem).map(|(_, d)| *d)
}

/// A parent cache, memory-mapped read-only.
pub struct ParentCache {
    map: Mmap,
    nodes: u64,
    path: PathBuf,
}

impl ParentCache {
    /// Opens the cache for `graph` in [`cache_dir`], generating it first if needed.
    pub fn open_or_generate(graph: &SdrGraph) -> Result<ParentCache> {
        Self::open_or_generate_in(&cache_dir(), graph)
    }

    pub fn open_or_generate_in(dir: &Path, graph: &SdrGraph) -> Result<ParentCache> {
        let name = file_name(graph);
        let path = dir.join(&name);
        let want_len = graph.nodes * ENTRY_BYTES as u64;
        let verify_existing =
            std::env::var("FIL_PROOFS_VERIFY_CACHE").is_ok_and(|v| v == "1" || v == "true");

        if dir.is_dir() {
            remove_dead_temps(dir);
        }
        if let Some(c) = Self::try_open(&path, graph.nodes, want_len, verify_existing)? {
            return Ok(c);
        }
        fs::create_dir_all(dir)
            .with_context(|| format!("creating parent cache directory {}", dir.display()))?;
        // One generator at a time; the others wait here and then find the finished file.
        let lock_path = dir.join(format!("{name}.lock"));
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("locking {}", lock_path.display()))?;
        if let Some(c) = Self::try_open(&path, graph.nodes, want_len, false)? {
            return Ok(c);
        }
        // Holding the lock, no one else is generating this file: any temp of its name is
        // left over from a killed generator (a full-size file), as are dead processes' temps.
        remove_dead_temps(dir);
        let prefix = format!("{name}.tmp-");
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix)
                && e.file_type().is_ok_and(|t| t.is_file())
            {
                fs::remove_file(e.path()).ok();
            }
        }
        generate(&path, graph)?;
        Self::try_open(&path, graph.nodes, want_len, false)?
            .with_context(|| format!("parent cache {} vanished after generation", path.display()))
    }

    /// Opens an existing, complete cache file; `None` if it is missing or has the wrong size
    /// (an interrupted copy), or fails verification.
    fn try_open(
        path: &Path,
        nodes: u64,
        want_len: u64,
        verify: bool,
    ) -> Result<Option<ParentCache>> {
        let f = match open_regular_read(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("opening parent cache {}", path.display()))
            }
        };
        let len = f.metadata()?.len();
        if len != want_len {
            eprintln!(
                "{}: parent cache {} has {len} bytes, expected {want_len}; regenerating",
                crate::cli::tool_name(),
                path.display()
            );
            return Ok(None);
        }
        let map = unsafe { MmapOptions::new().map(&f) }
            .with_context(|| format!("mapping parent cache {}", path.display()))?;
        if let Err(e) = check_entries(&map, nodes) {
            eprintln!(
                "{}: parent cache {} is corrupt ({e}); regenerating",
                crate::cli::tool_name(),
                path.display()
            );
            return Ok(None);
        }
        if verify {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if let Some(want) = manifest_digest(name) {
                if crate::hex::encode(&Sha256::digest(&map[..])) != want {
                    eprintln!(
                        "{}: parent cache {} fails its digest; regenerating",
                        crate::cli::tool_name(),
                        path.display()
                    );
                    drop(map);
                    fs::remove_file(path).ok();
                    return Ok(None);
                }
            }
        }
        Ok(Some(ParentCache {
            map,
            nodes,
            path: path.to_path_buf(),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn nodes(&self) -> u64 {
        self.nodes
    }

    /// The raw entries: 14 little-endian u32 per node.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Parents of `node`. Checked on open ([`check_entries`]): for every node `v ≥ 1` its
    /// base parents are `< v` and its expander parents `< nodes`, so a labeler may index
    /// labels with them.
    #[inline]
    pub fn parents(&self, node: u64) -> [u32; DEGREE] {
        let at = node as usize * ENTRY_BYTES;
        let e = &self.map[at..at + ENTRY_BYTES];
        std::array::from_fn(|i| {
            u32::from_le_bytes(e[4 * i..4 * i + 4].try_into().expect("4 bytes"))
        })
    }
}

/// Checks that `bytes` hold `nodes` entries whose parents a labeler may use: for node `v ≥ 1`
/// the base parents are `< v` (labels already written in this layer), the expander parents
/// `< nodes` (the previous layer). Node 0 has no parents that are read. One parallel pass.
pub fn check_entries(bytes: &[u8], nodes: u64) -> Result<()> {
    ensure!(
        bytes.len() as u64 == nodes * ENTRY_BYTES as u64,
        "{} bytes, expected {}",
        bytes.len(),
        nodes * ENTRY_BYTES as u64
    );
    const NODES_PER_TASK: usize = 1 << 16;
    let bad = bytes
        .par_chunks(NODES_PER_TASK * ENTRY_BYTES)
        .enumerate()
        .find_map_first(|(chunk, entries)| {
            let first = (chunk * NODES_PER_TASK) as u64;
            entries
                .chunks_exact(ENTRY_BYTES)
                .enumerate()
                .find_map(|(i, e)| {
                    let v = first + i as u64;
                    let p = |k: usize| {
                        u64::from(u32::from_le_bytes(
                            e[4 * k..4 * k + 4].try_into().expect("4 bytes"),
                        ))
                    };
                    let base_ok = v == 0 || (0..BASE_DEGREE).all(|k| p(k) < v);
                    let exp_ok = (BASE_DEGREE..DEGREE).all(|k| p(k) < nodes);
                    (!(base_ok && exp_ok)).then_some(v)
                })
        });
    match bad {
        None => Ok(()),
        Some(v) => bail!("node {v} has a parent out of range"),
    }
}

/// Writes the cache file for `graph` at `path` (temp name, fsync, rename).
fn generate(path: &Path, graph: &SdrGraph) -> Result<()> {
    let len = graph.nodes as usize * ENTRY_BYTES;
    let tmp = temp_path(path);
    let bar = crate::progress::bytes(Some(len as u64), "generating parent cache");
    let result = (|| -> Result<()> {
        let f = create_preallocated(&tmp, len as u64)?;
        let mut map = unsafe { MmapMut::map_mut(&f)? };
        const NODES_PER_TASK: usize = 1 << 14;
        map.par_chunks_mut(NODES_PER_TASK * ENTRY_BYTES)
            .enumerate()
            .for_each(|(chunk, out)| {
                let first = (chunk * NODES_PER_TASK) as u32;
                for (i, e) in out.chunks_exact_mut(ENTRY_BYTES).enumerate() {
                    let p = graph.parents(first + i as u32);
                    for (j, v) in p.iter().enumerate() {
                        e[4 * j..4 * j + 4].copy_from_slice(&v.to_le_bytes());
                    }
                }
                bar.inc(out.len() as u64);
            });
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if let Some(want) = manifest_digest(name) {
            let got = crate::hex::encode(&Sha256::digest(&map[..]));
            ensure!(
                got == want,
                "generated parent cache {} has digest {got}, the reference publishes {want}",
                path.display()
            );
        }
        map.flush()?;
        drop(map);
        f.sync_all()?;
        rename_into_place(&tmp, path)?;
        sync_parent(path)
    })();
    bar.finish_and_clear();
    if let Err(e) = result {
        fs::remove_file(&tmp).ok();
        return Err(e).with_context(|| format!("generating parent cache {}", path.display()));
    }
    Ok(())
}

/// Writes a cache file's bytes for `graph` into `out` without touching the disk (tests).
pub fn generate_bytes(graph: &SdrGraph) -> Vec<u8> {
    let mut out = Vec::with_capacity(graph.nodes as usize * ENTRY_BYTES);
    for v in 0..graph.nodes as u32 {
        for p in graph.parents(v) {
            out.write_all(&p.to_le_bytes()).expect("vec write");
        }
    }
    out
}

/// Checks that the graph's nodes fit the cache format's u32 indices.
pub fn check_graph(graph: &SdrGraph) -> Result<()> {
    if graph.nodes > u64::from(u32::MAX) + 1 {
        bail!(
            "graph of {} nodes is too large for a parent cache",
            graph.nodes
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sector::proof::SealProof;

    /// Spec Appendix A.3: 2KiB V1_1 file name and digest; all ten manifest names reproduce.
    #[test]
    fn names_and_digest() {
        let p = SealProof::from_id(5).unwrap();
        let g = SdrGraph::new(p.nodes(), p.porep_id(), p.api_version());
        assert_eq!(
            file_name(&g),
            "v28-sdr-parent-494d91dc80f2df5272c4b9e129bc7ade9405225993af9fe34e6542a39a47554b.cache"
        );
        assert_eq!(
            crate::hex::encode(&Sha256::digest(generate_bytes(&g))),
            "840057702eea7652cf97e04306c30fe57174714d90de156a25eddd6075c25b97"
        );
        let mut names: Vec<String> = (0..10)
            .map(|id| {
                let p = SealProof::from_id(id).unwrap();
                file_name(&SdrGraph::new(p.nodes(), p.porep_id(), p.api_version()))
            })
            .collect();
        names.sort();
        let mut want: Vec<String> = MANIFEST.iter().map(|(n, _)| format!("{n}.cache")).collect();
        want.sort();
        assert_eq!(names, want);
    }

    /// Every generated cache passes the range check; a base parent at or past its node, or
    /// an expander parent past the end, is caught; a corrupted file is regenerated.
    #[test]
    fn entries_are_range_checked_and_corruption_regenerated() {
        for id in [0, 5] {
            let p = SealProof::from_id(id).unwrap();
            let g = SdrGraph::new(p.nodes(), p.porep_id(), p.api_version());
            let good = generate_bytes(&g);
            check_entries(&good, g.nodes).unwrap();
            for (node, k, v, want) in [
                (3u64, 0usize, 3u32, "node 3 has a parent out of range"),
                (9, 5, u32::MAX, "node 9 has a parent out of range"),
                (0, 6, 64, "node 0 has a parent out of range"),
            ] {
                let mut bad = good.clone();
                let at = node as usize * ENTRY_BYTES + 4 * k;
                bad[at..at + 4].copy_from_slice(&v.to_le_bytes());
                assert_eq!(check_entries(&bad, g.nodes).unwrap_err().to_string(), want);
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(file_name(&g));
            let mut bad = good.clone();
            bad[40 * ENTRY_BYTES..40 * ENTRY_BYTES + 4].copy_from_slice(&[0xff; 4]);
            std::fs::write(&path, &bad).unwrap();
            let c = ParentCache::open_or_generate_in(dir.path(), &g).unwrap();
            assert_eq!(c.bytes(), &good[..]);
            assert_eq!(std::fs::read(&path).unwrap(), good);
        }
    }
}
