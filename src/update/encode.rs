//! ReplicaUpdate: the new data encoded into a CC sector's replica (docs/snap-deals.md#encode-into).
//!
//! Inputs are only read: the sector key (the sector's replica) and its cache, and the new
//! data. Every output is written under a temp name and renamed into place, p_aux last (an
//! earlier update's p_aux is removed first), so a re-run after a kill at any point computes
//! and writes the same bytes again, and a cache with p_aux is always one update's. Unlike the
//! reference, nothing is reused from an earlier run: a stale tree_d in the update cache would
//! give a wrong phi (docs/snap-deals.md#traps, trap 11).
//!
//! Before a byte is written the inputs are checked: the key cache's roots give the comm_r of
//! the document, spans of the key rebuild the stored tree_r_last rows, the new data's tree_d
//! root is the comm_d of its pieces, and every data node is a field element.

use std::fs::{self, File};
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use blstrs::Scalar as Fr;
use memmap2::Mmap;
use rayon::prelude::*;

use super::key::SectorKey;
use super::params::UpdateShape;
use super::rho::{phi, Rhos};
use super::UpdateFiles;
use crate::buffer::anon_buffer;
use crate::durable::{NewFile, PendingFile};
use crate::fsutil::{open_regular_read, remove_dead_temps, remove_dead_temps_beside};
use crate::hash::poseidon::{hash2, to_fr};
use crate::merkle::poseidon_tree::default_rows_to_discard;
use crate::merkle::tree_d::{build_tree_d_in_place, TREE_D_FILE};
use crate::pc2::{TreeBuilder, P_AUX_FILE, T_AUX_FILE};
use crate::progress::step;

/// What an update's encoding produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    pub comm_d_new: [u8; 32],
    pub comm_r_last_new: [u8; 32],
    pub comm_r_new: [u8; 32],
}

/// Nodes encoded per parallel task.
const TASK_NODES: usize = 4096;

/// Encodes `f.data` into the sector key `f.key`, writing the update replica and the update
/// cache. `comm_d_new` is what the new data's pieces commit to; `comm_r_old` what the sector
/// was sealed to (both from the document).
pub fn encode_into(
    f: &UpdateFiles,
    comm_d_new: &[u8; 32],
    comm_r_old: &[u8; 32],
    verbose: bool,
    builder: &dyn TreeBuilder,
) -> Result<Encoded> {
    let proof = f.proof;
    let shape = UpdateShape::of(proof)?;
    let nodes = shape.nodes as usize;
    f.check_distinct()?;
    let key = SectorKey::open(proof, &f.key, &f.key_cache, comm_r_old)?;
    step(verbose, "sector key check", || key.spot_check())?;

    // The new data as tree_d's leaves; tree_d's root must be the pieces' comm_d.
    let mut tree = anon_buffer((2 * nodes - 1) * 32)?;
    read_data(&f.data, &mut tree[..nodes * 32])?;
    let root = step(verbose, "tree_d", || Ok(build_tree_d_in_place(&mut tree)))?;
    if root != *comm_d_new {
        bail!(
            "the new data in {} has comm_d {}, but its pieces in the document commit to {}",
            f.data.display(),
            crate::hex::encode(&root),
            crate::hex::encode(comm_d_new)
        );
    }

    fs::create_dir_all(&f.cache)
        .with_context(|| format!("creating update cache {}", f.cache.display()))?;
    remove_dead_temps(&f.cache);
    remove_dead_temps_beside(&f.replica);
    let phi = phi(comm_d_new, comm_r_old)?;
    let rhos = Rhos::new(&phi, &shape);

    let mut pending: Vec<PendingFile> = Vec::new();
    let result = (|| -> Result<Encoded> {
        pending.push(PendingFile::write_from(f.cache.join(TREE_D_FILE), &tree)?);
        let mut replica = NewFile::create(f.replica.clone(), shape.nodes * 32)?;
        step(verbose, "encoding", || {
            encode(&key.map, &tree[..nodes * 32], &rhos, &mut replica.map)
        })?;
        let replica = replica.finished()?;
        let map = replica.map().expect("a finished file keeps its map");
        let per_tree = nodes / proof.tree_shape().base_trees();
        let rtd = key
            .rows_to_discard()
            .unwrap_or_else(|| default_rows_to_discard(per_tree, proof.tree_shape().base));
        let comm_r_last_new =
            super::tree_r_last_pending(proof, &map, &f.cache, rtd, verbose, builder, &mut pending)?;
        pending.push(replica);
        Ok(Encoded {
            comm_d_new: *comm_d_new,
            comm_r_last_new,
            comm_r_new: hash2(&key.comm_c, &comm_r_last_new),
        })
    })();
    // A re-run replaces a complete update (other data, after a fall-back): its p_aux (the
    // mark of a complete cache) and the vanilla proofs of the old update go before a new file
    // is committed, so that a failure from here on leaves an incomplete cache, never old
    // p_aux and proofs beside new trees.
    let result = result.and_then(|enc| {
        for stale in [P_AUX_FILE, super::phase::VANILLA_FILE] {
            remove_if_present(&f.cache.join(stale))?;
        }
        crate::fsutil::sync_parent(&f.cache.join(P_AUX_FILE))?;
        Ok(enc)
    });
    let out = super::commit_all(result, pending)?;
    // p_aux last: an update cache with p_aux is complete.
    crate::fsutil::write_atomic(&f.cache.join(T_AUX_FILE), &key.t_aux)?;
    let mut p_aux = key.comm_c.to_vec();
    p_aux.extend_from_slice(&out.comm_r_last_new);
    crate::fsutil::write_atomic(&f.cache.join(P_AUX_FILE), &p_aux)?;
    Ok(out)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Reads the new data into `out` (zeros past the file's end; a longer file, such as Lotus's
/// unsealed file with its trailer, is read up to the sector size) and checks that every node
/// is a field element.
pub(super) fn read_data(path: &Path, out: &mut [u8]) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let file = open_regular_read(path)
        .with_context(|| format!("cannot open the new data {}", path.display()))?;
    let len = file.metadata()?.len().min(out.len() as u64) as usize;
    file.read_exact_at(&mut out[..len], 0)
        .with_context(|| format!("cannot read the new data {}", path.display()))?;
    out[len..].fill(0);
    check_field_elements(out)
        .with_context(|| format!("new data {} is not fr32-padded", path.display()))
}

/// Fails naming the first node that is not a canonical field element (≥ the modulus).
pub fn check_field_elements(nodes: &[u8]) -> Result<()> {
    // The modulus's top byte is 0x73: a node below that is canonical without a full check.
    let bad = nodes
        .par_chunks(32 * TASK_NODES)
        .enumerate()
        .find_map_first(|(t, chunk)| {
            chunk.chunks_exact(32).enumerate().find_map(|(i, n)| {
                (n[31] >= 0x73 && to_fr(n).is_err()).then_some(t * TASK_NODES + i)
            })
        });
    match bad {
        None => Ok(()),
        Some(i) => bail!("node {i} is not below the field modulus"),
    }
}

/// `out[i] = key[i] + data[i]·rho(i)` for every node.
fn encode(key: &Mmap, data: &[u8], rhos: &Rhos, out: &mut [u8]) -> Result<()> {
    ensure!(key.len() == out.len() && data.len() == out.len(), "sizes");
    out.par_chunks_mut(32 * TASK_NODES)
        .enumerate()
        .try_for_each(|(t, chunk)| {
            let first = t * TASK_NODES;
            for (j, o) in chunk.chunks_exact_mut(32).enumerate() {
                let i = first + j;
                let at = 32 * i;
                let k = to_fr(&key[at..at + 32])
                    .with_context(|| format!("node {i} of the sector key"))?;
                let d: Fr = to_fr(&data[at..at + 32]).expect("checked when read");
                let e = k + d * rhos.of_node(i as u64);
                o.copy_from_slice(&super::rho::bytes(&e));
            }
            Ok(())
        })
}

/// The sector key mapped for reading (private to the module's users through [`SectorKey`]).
pub(super) fn map_key(file: &File, path: &Path) -> Result<Mmap> {
    // SAFETY: the sector key is only read here, and it is not written while the sector lock
    // is held (every phase that writes a sector's files holds its lock).
    unsafe { Mmap::map(file) }
        .with_context(|| format!("cannot map the sector key {}", path.display()))
}
