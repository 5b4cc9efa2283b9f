//! Checking the layers PC2 reads against the checksums PC1 recorded.
//!
//! PC1 records each finished layer's xxh3 in its journal (`sealkit-pc1.json`). A layer
//! damaged since then would give a replica and comm_r that no proof can open, and PC2 would
//! record its trees as good. PC2 reads every layer once, front to back, for tree_c; the
//! hashes are taken on that pass (one layer per thread, at memory speed) and compared before
//! anything is committed. Layers the journal does not list (PC1 run by another program, or a
//! journal of another replica) cannot be checked and are read as they are.

use std::path::PathBuf;

use crate::checksum::Checksum;
use anyhow::{bail, Result};
use rayon::prelude::*;

/// One layer under check: its file, the recorded checksum, the running hash.
struct Checked {
    path: PathBuf,
    want: String,
    hasher: Checksum,
}

/// The running checks of a sector's layers, in layer order (`None`: not recorded).
pub struct LayerCheck {
    layers: Vec<Option<Checked>>,
}

impl LayerCheck {
    /// Checks for `paths` (layer 1 first) of `len` bytes each, from `journal`'s records.
    pub fn new(journal: Option<&crate::pc1::Journal>, paths: &[PathBuf], len: u64) -> Self {
        let layers = paths
            .iter()
            .map(|p| {
                let name = p.file_name()?.to_str()?;
                let (l, sum) = journal?.files.get(name)?;
                (*l == len).then(|| Checked {
                    path: p.clone(),
                    want: sum.clone(),
                    hasher: Checksum::new(),
                })
            })
            .collect();
        LayerCheck { layers }
    }

    /// Whether any layer is checked.
    pub fn active(&self) -> bool {
        self.layers.iter().any(Option::is_some)
    }

    /// Feeds the next `n` bytes of every layer (`bufs[l]` holds layer `l + 1`'s).
    pub fn update(&mut self, bufs: &[Vec<u8>], n: usize) {
        self.layers
            .par_iter_mut()
            .zip(bufs.par_iter())
            .for_each(|(c, b)| {
                if let Some(c) = c {
                    c.hasher.update(&b[..n]);
                }
            });
    }

    /// After every byte of every layer was fed: an error naming the first layer whose bytes
    /// are not the ones PC1 recorded.
    pub fn finish(&self) -> Result<()> {
        for c in self.layers.iter().flatten() {
            let got = c.hasher.hex();
            if got != c.want {
                bail!(
                    "layer file {} does not match the checksum seal-pc1 recorded for it in {} (xxh3 {got}, recorded {}): it is corrupted; re-run seal-pc1",
                    c.path.display(),
                    crate::pc1::JOURNAL_FILE,
                    c.want
                );
            }
        }
        Ok(())
    }
}
