//! The PC1 journal: which outputs are complete, with a checksum of each.
//!
//! The reference resumes PC1 by trusting any layer file of the right size, so a truncated or
//! corrupted layer silently poisons the sector. Ours records every finished file (layers,
//! tree_d) with its xxh3 checksum in `sealkit-pc1.json` in the cache directory, written
//! atomically after the file itself is durable. On a re-run a file is reused only if the
//! journal lists it for the same replica and its bytes still match; anything else is
//! recomputed.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use crate::durable::checksum;
use crate::fsutil::write_atomic;

/// File name of the journal in the cache directory.
pub const JOURNAL_FILE: &str = "sealkit-pc1.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Journal {
    /// The replica the recorded files belong to (hex); files of another replica are void.
    pub replica_id: String,
    /// File name → (length, xxh3-64 in hex).
    pub files: BTreeMap<String, (u64, String)>,
}

impl Journal {
    fn path(cache: &Path) -> PathBuf {
        cache.join(JOURNAL_FILE)
    }

    /// The journal of `cache` for `replica_id`: empty if absent, unreadable or for another
    /// replica.
    pub fn load(cache: &Path, replica_id: &str) -> Journal {
        let fresh = Journal {
            replica_id: replica_id.to_string(),
            files: BTreeMap::new(),
        };
        let Ok(text) = std::fs::read_to_string(Self::path(cache)) else {
            return fresh;
        };
        match serde_json::from_str::<Journal>(&text) {
            Ok(j) if j.replica_id == replica_id => j,
            _ => fresh,
        }
    }

    /// Whether `name` in `cache` is complete: listed, and its length and checksum match.
    pub fn verify(&self, cache: &Path, name: &str) -> Result<bool> {
        let Some((len, sum)) = self.files.get(name) else {
            return Ok(false);
        };
        let path = cache.join(name);
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(_) => return Ok(false),
        };
        if f.metadata()?.len() != *len {
            return Ok(false);
        }
        let map =
            unsafe { Mmap::map(&f) }.with_context(|| format!("mapping {}", path.display()))?;
        Ok(checksum(&map) == *sum)
    }

    /// Records a durable file (its length and checksum) and saves the journal atomically.
    pub fn record(&mut self, cache: &Path, name: &str, len: u64, checksum: String) -> Result<()> {
        self.files.insert(name.to_string(), (len, checksum));
        self.save(cache)
    }

    pub fn forget(&mut self, name: &str) {
        self.files.remove(name);
    }

    pub fn save(&self, cache: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("journal serialises");
        write_atomic(&Self::path(cache), text.as_bytes())
    }
}
