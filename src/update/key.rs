//! The sector key: a CC sector's replica and cache, as the update reads them.
//!
//! The update trusts nothing it has not checked against the document's comm_r: p_aux's
//! comm_c and comm_r_last must give it, the stored tree_r_last files must have that root, and
//! sampled spans of the key file must rebuild the stored rows above them (a whole-file check
//! would cost a second tree_r_last build; the samples catch a wrong or swapped file).

use std::fs::File;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use memmap2::Mmap;
use sha2::{Digest, Sha256};

use crate::commit::openings::SectorTrees;
use crate::fsutil::open_regular_read;
use crate::hash::poseidon::{hash2, hash_children};
use crate::pc2::{P_AUX_FILE, T_AUX_FILE};
use crate::sector::proof::SealProof;

/// Spans of the key rebuilt and compared with the stored tree_r_last rows.
const SAMPLES: u64 = 64;

/// An opened, checked sector key.
pub struct SectorKey {
    pub comm_c: [u8; 32],
    pub comm_r_last: [u8; 32],
    pub comm_r: [u8; 32],
    /// The key cache's t_aux, byte for byte (the update cache gets a copy, as the reference's).
    pub t_aux: Vec<u8>,
    pub map: Mmap,
    trees: SectorTrees,
}

/// Reads p_aux of a cache: (comm_c, comm_r_last).
pub fn read_p_aux(cache: &Path) -> Result<([u8; 32], [u8; 32])> {
    let path = cache.join(P_AUX_FILE);
    let b = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    ensure!(
        b.len() == 64,
        "{} has {} bytes, expected 64 (comm_c and comm_r_last)",
        path.display(),
        b.len()
    );
    Ok((
        b[..32].try_into().expect("32"),
        b[32..].try_into().expect("32"),
    ))
}

impl SectorKey {
    /// Opens the key `key` with its cache `cache` and checks them against `comm_r`.
    pub fn open(
        proof: SealProof,
        key: &Path,
        cache: &Path,
        comm_r: &[u8; 32],
    ) -> Result<SectorKey> {
        let (comm_c, comm_r_last) = read_p_aux(cache)?;
        ensure!(
            hash2(&comm_c, &comm_r_last) == *comm_r,
            "the sector key cache {} (p_aux) does not belong to comm_r {}",
            cache.display(),
            crate::hex::encode(comm_r)
        );
        let t_aux_path = cache.join(T_AUX_FILE);
        let t_aux = std::fs::read(&t_aux_path)
            .with_context(|| format!("cannot read {}", t_aux_path.display()))?;
        let trees = SectorTrees::open(proof, cache, key, false)
            .with_context(|| format!("sector key cache {}", cache.display()))?;
        ensure!(
            trees.comm_r_last() == comm_r_last,
            "the tree_r_last files in {} do not have the root p_aux records",
            cache.display()
        );
        let file: File = open_regular_read(key)
            .with_context(|| format!("cannot open the sector key {}", key.display()))?;
        let map = super::encode::map_key(&file, key)?;
        Ok(SectorKey {
            comm_c,
            comm_r_last,
            comm_r: *comm_r,
            t_aux,
            map,
            trees,
        })
    }

    /// rows_to_discard of the key's tree_r_last (the update's tree inherits it).
    pub fn rows_to_discard(&self) -> Option<usize> {
        Some(self.trees.tree_r_rows_to_discard())
    }

    /// Rebuilds [`SAMPLES`] spans of the key (chosen from comm_r, so a re-run checks the
    /// same ones) up to the stored rows and compares.
    pub fn spot_check(&self) -> Result<()> {
        let nodes = self.map.len() as u64 / 32;
        for s in 0..SAMPLES {
            let mut h = Sha256::new();
            h.update(self.comm_r);
            h.update(s.to_le_bytes());
            let d = h.finalize();
            let node = u64::from_le_bytes(d[..8].try_into().expect("8")) % nodes;
            let path = self.trees.tree_r_path(node)?;
            if path.computed_root(hash_children) != path.root {
                bail!(
                    "the sector key does not match its tree_r_last: node {node} leads to another \
                     root (wrong or damaged sealed file)"
                );
            }
        }
        Ok(())
    }
}
