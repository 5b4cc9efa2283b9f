//! The PC2 journal: which tree files are finished, with a checksum of each.
//!
//! A kill during PC2 used to cost every tree again on the re-run. Now each tree_c and
//! tree_r_last file, once durable, is recorded with its length and xxh3 checksum in
//! `sealkit-pc2.json` in the cache directory (written atomically after the file). On a
//! re-run a file is reused only if the journal lists it for the same replica and its bytes
//! still match; its root is its last 32 bytes (both file forms end with the root). Anything
//! else — a missing, short, corrupted or unlisted file, or another replica's journal — is
//! recomputed, so the outputs are the same bytes as a clean run. The replica id commits to
//! the sector's data (comm_d) and, through SDR, to every layer, so it names the trees' inputs.
//! The journal itself (format, loading, recording) is [`crate::journal`].

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};

/// File name of the journal in the cache directory.
pub const JOURNAL_FILE: &str = "sealkit-pc2.json";

/// PC2 as a [`crate::journal::Phase`]: its journal is [`JOURNAL_FILE`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pc2;

impl crate::journal::Phase for Pc2 {
    const FILE: &'static str = JOURNAL_FILE;
}

/// The PC2 journal of a sector's cache directory.
pub type Journal = crate::journal::Journal<Pc2>;

impl Journal {
    /// The root of `name` in `cache` if the file is finished: listed, and its length and
    /// checksum match. Reads the file in 4 MiB pieces (never mapped: a map would count the
    /// whole tree in PC2's resident memory).
    pub fn finished(&self, cache: &Path, name: &str) -> Result<Option<[u8; 32]>> {
        let Some((len, sum)) = self.files.get(name) else {
            return Ok(None);
        };
        let path = cache.join(name);
        let Ok(mut f) = crate::fsutil::open_regular_read(&path) else {
            return Ok(None);
        };
        if f.metadata()?.len() != *len || *len < 32 {
            return Ok(None);
        }
        let mut hasher = crate::checksum::Checksum::new();
        let mut buf = vec![0u8; (4 << 20).min(*len as usize)];
        let mut tail = Vec::with_capacity(64);
        loop {
            let n = f
                .read(&mut buf)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            tail.extend_from_slice(&buf[n.saturating_sub(32)..n]);
            tail.drain(..tail.len().saturating_sub(32));
        }
        if hasher.hex() != *sum {
            return Ok(None);
        }
        Ok(Some(tail[..].try_into().expect("32-byte root")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::of as checksum;

    #[test]
    fn reuses_only_matching_files_of_the_same_replica() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path();
        let bytes: Vec<u8> = (0..(5u32 << 20) + 96)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        std::fs::write(cache.join("t.dat"), &bytes).unwrap();
        let mut j = Journal::load(cache, "aa");
        assert_eq!(j.finished(cache, "t.dat").unwrap(), None, "unlisted");
        j.record(cache, "t.dat", bytes.len() as u64, checksum(&bytes))
            .unwrap();
        let j = Journal::load(cache, "aa");
        let root: [u8; 32] = bytes[bytes.len() - 32..].try_into().unwrap();
        assert_eq!(j.finished(cache, "t.dat").unwrap(), Some(root));
        assert!(
            Journal::load(cache, "bb").files.is_empty(),
            "another replica"
        );
        let mut bad = bytes.clone();
        bad[1 << 20] ^= 1;
        std::fs::write(cache.join("t.dat"), &bad).unwrap();
        assert_eq!(j.finished(cache, "t.dat").unwrap(), None, "corrupted");
        std::fs::write(cache.join("t.dat"), &bytes[..bytes.len() - 32]).unwrap();
        assert_eq!(j.finished(cache, "t.dat").unwrap(), None, "short");
        std::fs::remove_file(cache.join("t.dat")).unwrap();
        assert_eq!(j.finished(cache, "t.dat").unwrap(), None, "missing");
    }
}
