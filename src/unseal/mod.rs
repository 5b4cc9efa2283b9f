//! Unseal: recover the unsealed data from a sealed replica whose layers are gone.
//!
//! The key is the last SDR layer, so every layer is labeled again (as PC1 does, into
//! temporary files in the cache directory, deleted afterwards); then `data = replica − key` in
//! the field, node by node, for the nodes the request covers. Output is the padded sector (the
//! unsealed file Lotus keeps) or any range of unpadded bytes. The reference converts ranges only
//! when they start on a 127-byte boundary (docs/sdr-porep.md#unseal); ranges here are exact for
//! every offset and length, by unpadding the whole 127-byte blocks that cover them.
//!
//! A document that does not belong to the replica (another ticket, another sector's replica)
//! decodes to noise, so nothing is written before what was decoded is checked against the
//! document's commitments: a piece against its `comm_p`, the padded sector against `comm_d`,
//! and a range against every piece it touches (whole pieces are decoded and hashed; a range
//! in a sector whose pieces do not cover it is checked against `comm_d`, the whole sector).
//! Only checked bytes are written: decoding runs twice, once to check and once to write.
//!
//! A snapped sector (its document's `update` has a `comm_r`) holds the update's data: the
//! request then names the update's pieces, the replica is the update replica, and
//! `data = (replica − key)·rho⁻¹` (docs/snap-deals.md#decode). The key is the sealed file
//! while it is kept, or else regenerated: a CC sector's key is its last layer.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use memmap2::Mmap;
use rayon::prelude::*;

use crate::durable::NewFile;
use crate::hash::poseidon;
use crate::merkle::stack::SubtreeStack;
use crate::piece::fr32::{self, PADDED_BLOCK, UNPADDED_BLOCK};
use crate::progress::step;
use crate::sdr::graph::SdrGraph;
use crate::sdr::labeler::{label_layer, LayerJob};
use crate::sdr::parent_cache::ParentCache;
use crate::sector::document::SectorDoc;
use crate::sector::lock::SectorLock;
use crate::sector::replica_id::replica_id;
use crate::update::params::UpdateShape;
use crate::update::rho::Rhos;

/// What to recover.
#[derive(Debug, Clone, Copy)]
pub enum Request {
    /// The whole sector, fr32-padded (Lotus's unsealed file).
    Padded,
    /// Unpadded bytes `[offset, offset + len)` of the sector.
    Range { offset: u64, len: u64 },
    /// The payload of the piece at this index of `pieces`.
    Piece(usize),
}

/// Blocks decoded per output step.
const BLOCKS_PER_STEP: u64 = 8192;

/// A request resolved against a document: the unpadded range it covers, and the spans whose
/// recorded roots the decoded bytes must match before anything is written.
struct Resolved {
    size: u64,
    offset: u64,
    len: u64,
    spans: Vec<Span>,
}

/// Checks `request` against `data_doc` (the sector's, or a snapped sector's update).
fn resolve(data_doc: &SectorDoc, request: Request, size: u64) -> Result<Resolved> {
    let capacity = size / 128 * 127;
    let (offset, len) = match request {
        Request::Padded => (0, 0),
        Request::Range { offset, len } => (offset, len),
        Request::Piece(i) => {
            let pieces = data_doc.pieces()?;
            let p = pieces.get(i).with_context(|| {
                format!("the document has {} pieces, no piece {i}", pieces.len())
            })?;
            ensure!(!p.filler, "piece {i} is a zero filler: it holds no data");
            (p.offset / 128 * 127, p.payload_size)
        }
    };
    if !matches!(request, Request::Padded) {
        ensure!(len > 0, "nothing to unseal: the length is 0");
        ensure!(
            offset.checked_add(len).is_some_and(|e| e <= capacity),
            "range {offset}+{len} runs past the sector's {capacity} unpadded bytes"
        );
    }
    let spans = spans_to_check(data_doc, request, size, offset, len)?;
    Ok(Resolved {
        size,
        offset,
        len,
        spans,
    })
}

/// The update of a snapped sector (its `update` has a comm_r), whose data the sector holds.
pub fn snapped_update(doc: &SectorDoc) -> Result<Option<SectorDoc>> {
    Ok(match doc.get("update") {
        Some(_) => Some(doc.update_doc()?).filter(|u| u.get("comm_r").is_some()),
        None => None,
    })
}

/// Writes the requested bytes to `out`; returns how many were written.
pub fn unseal(
    doc: &SectorDoc,
    request: Request,
    cpus: &[usize],
    verbose: bool,
    out: &mut dyn Write,
) -> Result<u64> {
    let proof = doc.seal_proof()?;
    let paths = doc.paths()?;
    let sealed = paths
        .sealed
        .context("sector document has no \"paths.sealed\"")?;
    let cache = paths
        .cache
        .context("sector document has no \"paths.cache\"")?;
    let _lock = SectorLock::acquire(&cache)?;
    let comm_d = doc.hex32("comm_d")?;
    // A snapped sector's data is the update's: its pieces, comm_d and replica.
    let snapped = snapped_update(doc)?;
    let data_doc = snapped.as_ref().unwrap_or(doc);
    let rid = replica_id(
        &doc.prover_id()?,
        doc.sector()?,
        &doc.ticket()?,
        &comm_d,
        &proof.porep_id(),
    );
    let size = proof.sector_size();
    let resolved = resolve(data_doc, request, size)?;

    let replica_path = match &snapped {
        Some(u) => u.path("sealed").context("update")?,
        None => sealed.clone(),
    };
    let replica = map_sized(&replica_path, size, "replica")?;
    fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;

    let key = match &snapped {
        // The sector key, while it is kept (it is only read).
        Some(_) if sealed.exists() => map_sized(&sealed, size, "sector key")?,
        _ => step(verbose, "regenerating the layers", || {
            last_layer(&cache, proof, rid, cpus)
        })?,
    };
    let rho_inv = match &snapped {
        Some(u) => {
            let comm_r_old = doc.hex32("comm_r")?;
            let phi = crate::update::rho::phi(&u.hex32("comm_d")?, &comm_r_old)?;
            Some(Rhos::inverses(&phi, &UpdateShape::of(proof)?))
        }
        None => None,
    };
    let decode = |first_node: u64, nodes: u64| -> Vec<u8> {
        let mut buf = vec![0u8; nodes as usize * 32];
        buf.par_chunks_mut(32 * 4096)
            .enumerate()
            .for_each(|(c, chunk)| {
                for (j, node) in chunk.chunks_exact_mut(32).enumerate() {
                    let i = first_node as usize + c * 4096 + j;
                    let at = i * 32;
                    let d = poseidon::sub(&replica[at..at + 32], &key[at..at + 32]);
                    match &rho_inv {
                        None => node.copy_from_slice(&d),
                        Some(inv) => node.copy_from_slice(&crate::update::rho::bytes(
                            &(poseidon::fr(&d) * inv.of_node(i as u64)),
                        )),
                    }
                }
            });
        buf
    };
    check_and_write(&decode, request, &resolved, verbose, out)
}

/// Writes the requested bytes from the sector's kept unsealed copy (the padded file Lotus
/// keeps, or one an unseal regenerated): the same request, the same checks against the
/// document's commitments before a byte is written, no labeling. For a snapped sector the
/// copy is the update's data.
pub fn read_unsealed_copy(
    doc: &SectorDoc,
    request: Request,
    verbose: bool,
    out: &mut dyn Write,
) -> Result<u64> {
    let proof = doc.seal_proof()?;
    let paths = doc.paths()?;
    let cache = paths
        .cache
        .context("sector document has no \"paths.cache\"")?;
    let _lock = SectorLock::acquire(&cache)?;
    let snapped = snapped_update(doc)?;
    let data_doc = snapped.as_ref().unwrap_or(doc);
    let unsealed = data_doc
        .paths()?
        .unsealed
        .context("sector document has no \"paths.unsealed\"")?;
    let size = proof.sector_size();
    let resolved = resolve(data_doc, request, size)?;
    let copy = map_sized(&unsealed, size, "unsealed copy")?;
    let read = |first_node: u64, nodes: u64| -> Vec<u8> {
        copy[(first_node * 32) as usize..((first_node + nodes) * 32) as usize].to_vec()
    };
    check_and_write(&read, request, &resolved, verbose, out)
}

/// Checks the spans, then writes the request: `decode(first_node, nodes)` gives padded
/// sector bytes.
fn check_and_write(
    decode: &(dyn Fn(u64, u64) -> Vec<u8> + Sync),
    request: Request,
    r: &Resolved,
    verbose: bool,
    out: &mut dyn Write,
) -> Result<u64> {
    let (size, offset, len) = (r.size, r.offset, r.len);
    step(verbose, "checking the decoded data", || {
        for span in &r.spans {
            span.check(decode)?;
        }
        Ok(())
    })?;

    let mut written = 0u64;
    match request {
        Request::Padded => {
            let step_nodes = BLOCKS_PER_STEP * 4;
            for first in (0..size / 32).step_by(step_nodes as usize) {
                let buf = decode(first, step_nodes.min(size / 32 - first));
                out.write_all(&buf)?;
                written += buf.len() as u64;
            }
        }
        _ => {
            let (first_block, last_block) = (offset / 127, (offset + len - 1) / 127);
            let mut block = first_block;
            while block <= last_block {
                let blocks = BLOCKS_PER_STEP.min(last_block + 1 - block);
                let padded = decode(block * 4, blocks * 4);
                let mut raw = vec![0u8; blocks as usize * UNPADDED_BLOCK];
                fr32::unpad(&padded[..blocks as usize * PADDED_BLOCK], &mut raw);
                let start = offset.max(block * 127) - block * 127;
                let end = (offset + len).min((block + blocks) * 127) - block * 127;
                out.write_all(&raw[start as usize..end as usize])?;
                written += end - start;
                block += blocks;
            }
        }
    }
    out.flush()?;
    Ok(written)
}

/// Maps a file that must be `size` bytes, for reading.
fn map_sized(path: &Path, size: u64, what: &str) -> Result<Mmap> {
    let f = crate::fsutil::open_regular_read(path)
        .with_context(|| format!("opening {what} {}", path.display()))?;
    ensure!(
        f.metadata()?.len() == size,
        "{what} {} is not {size} bytes",
        path.display()
    );
    // SAFETY: the file is only read, under the sector lock, which every phase that writes
    // the sector's files holds.
    unsafe { Mmap::map(&f) }.with_context(|| format!("mapping {what} {}", path.display()))
}

/// A run of padded sector bytes whose root the document records.
struct Span {
    /// Padded byte offset and size (a power of two).
    offset: u64,
    size: u64,
    root: [u8; 32],
    /// What the root is, for the error.
    what: String,
}

impl Span {
    /// Decodes the span (`decode(first_node, nodes)`) a chunk at a time and compares its
    /// root with the recorded one.
    fn check(&self, decode: &(dyn Fn(u64, u64) -> Vec<u8> + Sync)) -> Result<()> {
        const CHUNK_NODES: u64 = 1 << 15;
        let nodes = self.size / 32;
        let chunk = CHUNK_NODES.min(nodes);
        let mut stack = SubtreeStack::new();
        for first in (0..nodes).step_by(chunk as usize) {
            let buf = decode(self.offset / 32 + first, chunk);
            stack.push(chunk * 32, crate::merkle::binary::root(&buf))?;
        }
        let got = stack.finish(self.size)?;
        ensure!(
            got == self.root,
            "the data decoded from the replica does not match {} ({}, decoded {}): the document does not belong to this replica (wrong ticket, replica or sector)",
            self.what,
            crate::hex::encode(&self.root),
            crate::hex::encode(&got)
        );
        Ok(())
    }
}

/// What is checked before `request` is written: the requested piece, the pieces an unpadded
/// range `[offset, offset + len)` touches, or (for the padded sector, or a range the pieces
/// do not cover) the whole sector against comm_d.
fn spans_to_check(
    doc: &SectorDoc,
    request: Request,
    size: u64,
    offset: u64,
    len: u64,
) -> Result<Vec<Span>> {
    let whole = || -> Result<Vec<Span>> {
        Ok(vec![Span {
            offset: 0,
            size,
            root: doc.hex32("comm_d")?,
            what: "the document's comm_d".into(),
        }])
    };
    let pieces = doc.pieces()?;
    let span_of = |i: usize, p: &crate::sector::document::PieceRecord| Span {
        offset: p.offset,
        size: p.padded_size,
        root: p.comm_p,
        what: format!("the comm_p of piece {i}"),
    };
    match request {
        Request::Padded => whole(),
        Request::Piece(i) => Ok(vec![span_of(i, &pieces[i])]),
        Request::Range { .. } => {
            // Padded bytes of the 127-byte blocks that hold the range.
            let start = offset / 127 * 128;
            let end = (offset + len).div_ceil(127) * 128;
            let touched: Vec<Span> = pieces
                .iter()
                .enumerate()
                .filter(|(_, p)| p.offset < end && p.offset + p.padded_size > start)
                .map(|(i, p)| span_of(i, p))
                .collect();
            let mut pos = start;
            for s in &touched {
                if s.offset > pos {
                    break;
                }
                pos = pos.max(s.offset + s.size);
            }
            if pos >= end {
                Ok(touched)
            } else {
                whole()
            }
        }
    }
}

fn remove_prefixed(dir: &Path, prefix: &str) {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with(prefix) {
            fs::remove_file(e.path()).ok();
        }
    }
}

/// Labels every layer again and returns the last one. Layers live in unlinked temp files in
/// the cache directory, so a 32 GiB sector does not need its layers in RAM.
fn last_layer(
    cache: &Path,
    proof: crate::sector::proof::SealProof,
    rid: [u8; 32],
    cpus: &[usize],
) -> Result<Mmap> {
    let graph = SdrGraph::new(proof.nodes(), proof.porep_id(), proof.api_version());
    let parents = ParentCache::open_or_generate(&graph)?;
    let nodes = proof.nodes();
    let mut prev: Option<Mmap> = None;
    for layer in 1..=proof.layers() {
        let name = format!("sealkit-unseal-layer-{layer}");
        let mut f = NewFile::create(cache.join(&name), nodes * 32)?;
        // Unlink it at once: the map keeps the pages, and a kill leaves nothing behind.
        remove_prefixed(cache, &name);
        let bar = crate::progress::bytes(
            Some(nodes),
            &format!("unseal layer {layer}/{}", proof.layers()),
        );
        let job = LayerJob {
            replica_id: rid,
            layer: layer as u32,
            parents: &parents,
            prev: prev.as_deref(),
            cpus,
            progress: &|n| bar.set_position(n),
        };
        label_layer(&job, &mut f.map);
        bar.finish_and_clear();
        prev = Some(f.map.make_read_only()?);
    }
    match prev {
        Some(m) => Ok(m),
        None => bail!("a proof without layers"),
    }
}
