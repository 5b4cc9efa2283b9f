//! The journal a sealing phase keeps in the sector's cache directory: which of its output
//! files are finished, with the length and xxh3 checksum of each.
//!
//! A phase writes a file durably first and records it here afterwards, so a file the journal
//! lists was complete when it was recorded. On a re-run the phase reuses a file only if the
//! journal lists it for the same replica and its bytes still match; anything else is
//! recomputed. The journal is written atomically, so a kill leaves the old one or the new one.
//!
//! PC1 ([`crate::pc1::Journal`]) and PC2 ([`crate::pc2::Journal`]) keep one each, in
//! separate files of the same format; a [`Phase`] names the file. How a listed file is
//! checked differs by phase and lives with the phase.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;

/// A phase that keeps a journal: the journal's file name in the cache directory. The phase's
/// marker type derives what [`Journal`] derives (`Debug`, `Clone`, `Default`, `PartialEq`).
pub trait Phase {
    /// File name of the journal in the cache directory.
    const FILE: &'static str;
}

/// The journal of phase `P`. On disk: `{"replica_id": …, "files": {name: [len, xxh3]}}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Journal<P> {
    /// The replica the recorded files belong to (hex); files of another replica are void.
    pub replica_id: String,
    /// File name → (length, xxh3-64 in hex).
    pub files: BTreeMap<String, (u64, String)>,
    #[serde(skip)]
    phase: PhantomData<P>,
}

impl<P: Phase> Journal<P> {
    fn path(cache: &Path) -> PathBuf {
        cache.join(P::FILE)
    }

    /// The journal of `cache` for `replica_id`: empty if absent, unreadable or for another
    /// replica.
    pub fn load(cache: &Path, replica_id: &str) -> Self {
        let fresh = Journal {
            replica_id: replica_id.to_string(),
            files: BTreeMap::new(),
            phase: PhantomData,
        };
        let Ok(text) = std::fs::read_to_string(Self::path(cache)) else {
            return fresh;
        };
        match serde_json::from_str::<Self>(&text) {
            Ok(j) if j.replica_id == replica_id => j,
            _ => fresh,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Default, PartialEq)]
    struct Test;
    impl Phase for Test {
        const FILE: &'static str = "test-journal.json";
    }

    /// A journal as earlier versions wrote it (`to_string_pretty` of the same two fields).
    const ON_DISK: &str = r#"{
  "replica_id": "aa",
  "files": {
    "sc-02-data-layer-1.dat": [
      2048,
      "0123456789abcdef"
    ]
  }
}"#;

    #[test]
    fn format_and_file_name_are_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path();
        std::fs::write(cache.join("test-journal.json"), ON_DISK).unwrap();
        let j = Journal::<Test>::load(cache, "aa");
        assert_eq!(
            j.files["sc-02-data-layer-1.dat"],
            (2048, "0123456789abcdef".to_string())
        );
        assert!(Journal::<Test>::load(cache, "bb").files.is_empty());
        j.save(cache).unwrap();
        let saved = std::fs::read_to_string(cache.join("test-journal.json")).unwrap();
        assert_eq!(saved, ON_DISK);
    }

    #[test]
    fn record_saves_and_forget_drops() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path();
        let mut j = Journal::<Test>::load(cache, "aa");
        assert_eq!(j, Journal::<Test>::load(cache, "aa"), "absent: empty");
        j.record(cache, "a.dat", 5, "00000000000000ff".into())
            .unwrap();
        assert_eq!(Journal::<Test>::load(cache, "aa"), j);
        j.forget("a.dat");
        assert!(j.files.is_empty());
        assert_eq!(Journal::<Test>::load(cache, "aa").files.len(), 1);
    }
}
