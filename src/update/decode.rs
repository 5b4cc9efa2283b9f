//! Decoding an updated sector, and regenerating its sector key (docs/snap-deals.md#decode,
//! docs/snap-deals.md#remove-encoded-data).
//!
//! `data[i] = (replica[i] − key[i])·rho⁻¹` gives the new data back (unsealing a snapped
//! sector); `key[i] = replica[i] − data[i]·rho` gives the sector key back from the update and
//! its data (Lotus's GSK task, after the key was released). phi always uses the sector's own
//! comm_r (the document's), never a p_aux that may belong to the update (the trap Lotus's GSK
//! falls into, docs/snap-deals.md#traps, trap 14), and a regenerated key is only put in place
//! once its tree_r_last gives that comm_r again.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use rayon::prelude::*;

use super::encode::read_data;
use super::key::read_p_aux;
use super::params::UpdateShape;
use super::rho::{bytes, phi, Rhos};
use super::UpdateFiles;
use crate::buffer::anon_buffer;
use crate::commit::openings::SectorTrees;
use crate::durable::{NewFile, PendingFile};
use crate::fsutil::{open_regular_read, remove_dead_temps, remove_dead_temps_beside};
use crate::hash::poseidon::{hash2, to_fr};
use crate::pc2::{TreeBuilder, P_AUX_FILE, T_AUX_FILE};
use crate::progress::step;
use crate::sector::proof::SealProof;

/// Nodes decoded per parallel task.
const TASK_NODES: usize = 4096;

fn open_sized(path: &Path, len: u64, what: &str) -> Result<File> {
    let f = open_regular_read(path)
        .with_context(|| format!("cannot open the {what} {}", path.display()))?;
    let got = f.metadata()?.len();
    ensure!(
        got == len,
        "the {what} {} has {got} bytes, expected {len}",
        path.display()
    );
    Ok(f)
}

/// The new data of nodes `first .. first + count` (fr32-padded bytes) of the update of
/// `replica` over `key`, whose data commits to `comm_d_new` and whose sector key to
/// `comm_r_old`.
pub fn decode_range(
    proof: SealProof,
    replica: &Path,
    key: &Path,
    comm_d_new: &[u8; 32],
    comm_r_old: &[u8; 32],
    first: u64,
    count: u64,
) -> Result<Vec<u8>> {
    let shape = UpdateShape::of(proof)?;
    ensure!(
        first
            .checked_add(count)
            .is_some_and(|end| end <= shape.nodes),
        "nodes {first}..{} are outside the sector's {} nodes",
        first.saturating_add(count),
        shape.nodes
    );
    let r = open_sized(replica, shape.nodes * 32, "update replica")?;
    let k = open_sized(key, shape.nodes * 32, "sector key")?;
    let inv = Rhos::inverses(&phi(comm_d_new, comm_r_old)?, &shape);
    let mut out = vec![0u8; (count * 32) as usize];
    let mut kbuf = vec![0u8; out.len()];
    r.read_exact_at(&mut out, first * 32)
        .with_context(|| format!("cannot read {}", replica.display()))?;
    k.read_exact_at(&mut kbuf, first * 32)
        .with_context(|| format!("cannot read {}", key.display()))?;
    out.par_chunks_mut(32 * TASK_NODES)
        .zip(kbuf.par_chunks(32 * TASK_NODES))
        .enumerate()
        .try_for_each(|(t, (o, k))| -> Result<()> {
            for (j, (on, kn)) in o.chunks_exact_mut(32).zip(k.chunks_exact(32)).enumerate() {
                let i = first + (t * TASK_NODES + j) as u64;
                let rv = to_fr(on).with_context(|| format!("node {i} of the update replica"))?;
                let kv = to_fr(kn).with_context(|| format!("node {i} of the sector key"))?;
                on.copy_from_slice(&bytes(&((rv - kv) * inv.of_node(i))));
            }
            Ok(())
        })?;
    Ok(out)
}

/// Regenerates the sector key (`f.key`) and its tree_r_last, p_aux and t_aux (in
/// `f.key_cache`) from the update replica and its data. Nothing is put in place unless the
/// regenerated tree_r_last gives `comm_r_old` with the update's comm_c.
pub fn remove_data(
    f: &UpdateFiles,
    comm_d_new: &[u8; 32],
    comm_r_old: &[u8; 32],
    verbose: bool,
    builder: &dyn TreeBuilder,
) -> Result<()> {
    let proof = f.proof;
    let shape = UpdateShape::of(proof)?;
    let nodes = shape.nodes as usize;
    f.check_distinct()?;
    let (comm_c, _) =
        read_p_aux(&f.cache).with_context(|| format!("update cache {}", f.cache.display()))?;
    let t_aux_path = f.cache.join(T_AUX_FILE);
    let t_aux =
        fs::read(&t_aux_path).with_context(|| format!("cannot read {}", t_aux_path.display()))?;
    let update_trees = SectorTrees::open(proof, &f.cache, &f.replica, false)
        .with_context(|| format!("update cache {}", f.cache.display()))?;
    let rtd = update_trees.tree_r_rows_to_discard();
    drop(update_trees);
    let replica = open_sized(&f.replica, shape.nodes * 32, "update replica")?;
    let mut data = anon_buffer(nodes * 32)?;
    read_data(&f.data, &mut data)?;
    let rhos = Rhos::new(&phi(comm_d_new, comm_r_old)?, &shape);

    fs::create_dir_all(&f.key_cache)
        .with_context(|| format!("creating {}", f.key_cache.display()))?;
    remove_dead_temps(&f.key_cache);
    remove_dead_temps_beside(&f.key);
    let mut pending: Vec<PendingFile> = Vec::new();
    let result = (|| -> Result<[u8; 32]> {
        let mut key = NewFile::create(f.key.clone(), shape.nodes * 32)?;
        step(verbose, "removing the data", || {
            key.map
                .par_chunks_mut(32 * TASK_NODES)
                .enumerate()
                .try_for_each(|(t, out)| -> Result<()> {
                    let first = t * TASK_NODES;
                    let mut r = vec![0u8; out.len()];
                    replica
                        .read_exact_at(&mut r, (first * 32) as u64)
                        .context("cannot read the update replica")?;
                    for (j, (o, rn)) in out.chunks_exact_mut(32).zip(r.chunks_exact(32)).enumerate()
                    {
                        let i = first + j;
                        let rv =
                            to_fr(rn).with_context(|| format!("node {i} of the update replica"))?;
                        let d = to_fr(&data[32 * i..32 * i + 32]).expect("checked when read");
                        o.copy_from_slice(&bytes(&(rv - d * rhos.of_node(i as u64))));
                    }
                    Ok(())
                })
        })?;
        let key = key.finished()?;
        let map = key.map().expect("a finished file keeps its map");
        let root = super::tree_r_last_pending(
            proof,
            &map,
            &f.key_cache,
            rtd,
            verbose,
            builder,
            &mut pending,
        )?;
        if hash2(&comm_c, &root) != *comm_r_old {
            key.discard();
            bail!(
                "the regenerated sector key does not give the sector's comm_r {} (wrong data, \
                 update or comm_d): nothing was written",
                crate::hex::encode(comm_r_old)
            );
        }
        pending.push(key);
        Ok(root)
    })();
    let root = super::commit_all(result, pending)?;
    crate::fsutil::write_atomic(&f.key_cache.join(T_AUX_FILE), &t_aux)?;
    let mut p_aux = comm_c.to_vec();
    p_aux.extend_from_slice(&root);
    crate::fsutil::write_atomic(&f.key_cache.join(P_AUX_FILE), &p_aux)
}
