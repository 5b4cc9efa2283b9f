//! Durable file operations: temp-then-rename writes, fsync of files and their directories.
//!
//! A crash must never leave a half-written file under a final name, and what a phase reports
//! as done must survive a power cut, so every result file goes through here.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// fsyncs the directory holding `path`, making a rename or create in it durable.
pub fn sync_parent(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

/// The temp name a file is written under before it is renamed into place.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Creates (truncating) `path` with `len` bytes of disk space reserved.
///
/// Output files are written through memory maps; a write to a mapped page the filesystem
/// cannot back kills the process with SIGBUS. Reserving the space first turns a full disk
/// into an ordinary error here, before any work is done.
pub fn create_preallocated(path: &Path, len: u64) -> Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    reserve(&f, len).with_context(|| format!("creating {}", path.display()))?;
    Ok(f)
}

/// Reserves disk blocks for the first `len` bytes of `f` (extending it if needed).
pub fn reserve(f: &File, len: u64) -> Result<()> {
    use std::os::fd::AsRawFd;
    if len > 0 {
        nix::fcntl::posix_fallocate(f.as_raw_fd(), 0, len as i64)
            .map_err(|e| anyhow::anyhow!("reserving {len} bytes: {}", e.desc()))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Renames `from` to `to` unless `to` exists (`RENAME_NOREPLACE`): a move never replaces a
/// file it did not create. Filesystems without the flag (EINVAL) get a check-then-rename,
/// which is as good as the platform allows. The error keeps its errno, so callers can tell
/// EXDEV (another filesystem: copy instead) and EEXIST apart.
pub fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use nix::fcntl::{renameat2, RenameFlags};
    match renameat2(None, from, None, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(std::io::Error::from_raw_os_error(nix::libc::EEXIST));
            }
            fs::rename(from, to)
        }
        Err(e) => Err(std::io::Error::from_raw_os_error(e as i32)),
    }
}
