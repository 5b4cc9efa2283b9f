//! The sector lock every phase tool holds while it works on a sector's files.
//!
//! Two processes must never work on one sector at once: an orphaned PC1 that finishes after
//! a retry's PC2 replaces the encoded replica with a plain copy. The scheduler serializes its
//! own tasks, but a phase can also be started by hand, by cron, or survive the process that
//! started it. So each phase (AddPiece, PC1, PC2, C1, unseal) takes an exclusive `flock` on
//! the sector's cache directory itself before it reads or writes anything, and refuses to run
//! when another live process holds it. The lock lives in the kernel: a killed holder releases
//! it at once, there is no stale lock file to clean, and nothing is added to the cache
//! layout the reference expects. A rename of the directory (a move within a filesystem)
//! keeps the lock with it.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

/// Held for as long as the phase works on the sector; released when dropped or when the
/// process dies.
pub struct SectorLock {
    _held: Flock<File>,
    pub cache: PathBuf,
}

impl SectorLock {
    /// Locks the sector whose cache directory is `cache`, creating the directory if needed.
    pub fn acquire(cache: &Path) -> Result<SectorLock> {
        std::fs::create_dir_all(cache)
            .with_context(|| format!("cannot create the sector cache {}", cache.display()))?;
        let md = std::fs::symlink_metadata(cache)
            .with_context(|| format!("cannot read the sector cache {}", cache.display()))?;
        anyhow::ensure!(
            md.is_dir(),
            "the sector cache {} is not a directory",
            cache.display()
        );
        let dir = File::open(cache)
            .with_context(|| format!("cannot open the sector cache {}", cache.display()))?;
        match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
            Ok(held) => Ok(SectorLock {
                _held: held,
                cache: cache.to_path_buf(),
            }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => anyhow::bail!(
                "sector {} is in use by another live process (a phase or seal-sched holds its \
                 lock): refusing to run beside it",
                cache.display()
            ),
            Err((_, e)) => anyhow::bail!("cannot lock the sector cache {}: {e}", cache.display()),
        }
    }

    /// Locks each sector of a batch, all or none.
    pub fn acquire_all<'a>(caches: impl IntoIterator<Item = &'a Path>) -> Result<Vec<SectorLock>> {
        caches.into_iter().map(SectorLock::acquire).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let d = tempfile::tempdir().unwrap();
        let cache = d.path().join("cache/s-t01000-1");
        let first = SectorLock::acquire(&cache).unwrap();
        let err = SectorLock::acquire(&cache).err().unwrap();
        assert!(
            format!("{err:#}").contains("in use by another live process"),
            "{err:#}"
        );
        drop(first);
        SectorLock::acquire(&cache).unwrap();
        // Renamed (moved within a filesystem), the directory keeps its lock.
        let held = SectorLock::acquire(&cache).unwrap();
        let moved = d.path().join("moved");
        std::fs::rename(&cache, &moved).unwrap();
        assert!(SectorLock::acquire(&moved).is_err());
        drop(held);
        std::fs::write(d.path().join("file"), b"x").unwrap();
        assert!(SectorLock::acquire(&d.path().join("file")).is_err());
    }
}
