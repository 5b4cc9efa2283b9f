//! The PC1 journal: which outputs are complete, with a checksum of each.
//!
//! The reference resumes PC1 by trusting any layer file of the right size, so a truncated or
//! corrupted layer silently poisons the sector. Ours records every finished file (layers,
//! tree_d) with its xxh3 checksum in `sealkit-pc1.json` in the cache directory, written
//! atomically after the file itself is durable. On a re-run a file is reused only if the
//! journal lists it for the same replica and its bytes still match; anything else is
//! recomputed. The journal itself (format, loading, recording) is [`crate::journal`].

use std::path::Path;

use anyhow::{Context, Result};
use memmap2::Mmap;

use crate::checksum::of as checksum;

/// File name of the journal in the cache directory.
pub const JOURNAL_FILE: &str = "sealkit-pc1.json";

/// PC1 as a [`crate::journal::Phase`]: its journal is [`JOURNAL_FILE`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pc1;

impl crate::journal::Phase for Pc1 {
    const FILE: &'static str = JOURNAL_FILE;
}

/// The PC1 journal of a sector's cache directory.
pub type Journal = crate::journal::Journal<Pc1>;

impl Journal {
    /// Whether `name` in `cache` is complete: listed, and its length and checksum match.
    pub fn verify(&self, cache: &Path, name: &str) -> Result<bool> {
        let Some((len, sum)) = self.files.get(name) else {
            return Ok(false);
        };
        let path = cache.join(name);
        let f = match crate::fsutil::open_regular_read(&path) {
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
}
