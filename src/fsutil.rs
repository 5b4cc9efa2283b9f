//! Durable file operations: temp-then-rename writes, fsync of files and their directories.
//!
//! A crash must never leave a half-written file under a final name, and what a phase reports
//! as done must survive a power cut, so every result file goes through here.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

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
    let f = create_temp(path)?;
    reserve(&f, len).with_context(|| format!("creating {}", path.display()))?;
    Ok(f)
}

/// Creates (truncating) a temp file for writing and reading; a symlink or another special
/// file at that name is refused (O_NOFOLLOW, then the type of the open descriptor), so a
/// stale or planted entry is never written through.
pub fn create_temp(path: &Path) -> Result<File> {
    open_with(
        path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true),
        nix::fcntl::OFlag::O_NOFOLLOW,
    )
    .with_context(|| format!("creating {}", path.display()))
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

/// Appends `line` and a newline to a file opened for appending, in one `write`: a log that
/// several processes append to keeps every line whole (O_APPEND makes each write land at the
/// end as a unit; `writeln!` would issue one write per formatted piece, and pieces of
/// concurrent lines interleave).
pub fn append_line(f: &mut File, line: &str) -> std::io::Result<()> {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    f.write_all(buf.as_bytes())
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync of the directory.
/// Refuses a `path` that exists and is not a regular file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    check_replaceable(path)?;
    let tmp = temp_path(path);
    let result = (|| -> Result<()> {
        let mut f = create_temp(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        rename_into_place(&tmp, path)?;
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

/// What a file system entry is, in words, for errors about entries that are not regular files.
fn kind_of(ft: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a named pipe"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_char_device() {
        "a character device"
    } else {
        "not a regular file"
    }
}

/// Refuses to replace `path` unless it is absent or a regular file of its own (looked at with
/// lstat, so a symlink is refused rather than followed): a rename must never swallow a device
/// node, a pipe or a link someone else owns.
pub fn check_replaceable(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(m) => bail!(
            "refusing to replace {}: it is {}, not a regular file",
            path.display(),
            kind_of(m.file_type())
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("looking at {}", path.display())),
    }
}

/// Renames `tmp` over `path` after [`check_replaceable`].
pub fn rename_into_place(tmp: &Path, path: &Path) -> Result<()> {
    check_replaceable(path)?;
    fs::rename(tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Opens a sector file (replica, unsealed file, cache file) that must be a regular file.
///
/// The open itself is non-blocking, so a named pipe given as a sector path fails here at once
/// instead of hanging the phase; the type is then checked on the open descriptor (fstat), so
/// nothing can swap the entry between the check and the use. Symlinks to regular files are
/// fine (storage layouts use them).
pub fn open_regular(path: &Path, opts: &mut OpenOptions) -> std::io::Result<File> {
    open_with(path, opts, nix::fcntl::OFlag::empty())
}

/// [`open_regular`] with extra open flags.
fn open_with(
    path: &Path,
    opts: &mut OpenOptions,
    flags: nix::fcntl::OFlag,
) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = opts
        .custom_flags((flags | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(path)?;
    let ft = f.metadata()?.file_type();
    if !ft.is_file() {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            format!("{} is {}", path.display(), kind_of(ft)),
        ));
    }
    Ok(f)
}

/// [`open_regular`] for reading.
pub fn open_regular_read(path: &Path) -> std::io::Result<File> {
    open_regular(path, OpenOptions::new().read(true))
}

/// Whether two paths name the same file: same device and inode when both exist (so hard
/// links, symlinks and `..` detours are seen through), else the same canonical location.
pub fn same_file(a: &Path, b: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => Ok(x.dev() == y.dev() && x.ino() == y.ino()),
        _ => Ok(canonical_location(a)? == canonical_location(b)?),
    }
}

/// The canonical form of a path that may not exist yet: its deepest existing ancestor
/// canonicalized, the rest appended.
fn canonical_location(p: &Path) -> Result<PathBuf> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .context("reading the current directory")?
            .join(p)
    };
    let mut rest = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(c) = fs::canonicalize(cur) {
            let mut out = c;
            for part in rest.iter().rev() {
                match part {
                    std::path::Component::ParentDir => {
                        out.pop();
                    }
                    std::path::Component::CurDir => {}
                    c => out.push(c.as_os_str()),
                }
            }
            return Ok(out);
        }
        match (cur.parent(), cur.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                cur = parent;
            }
            _ => return Ok(abs),
        }
    }
}

/// Refuses a sector whose `paths.unsealed` and `paths.sealed` are one file: writing the
/// replica would destroy the deal data it is made from.
pub fn check_distinct_unsealed_sealed(unsealed: &Path, sealed: &Path) -> Result<()> {
    if same_file(unsealed, sealed)? {
        bail!(
            "fields \"paths.unsealed\" ({}) and \"paths.sealed\" ({}) name the same file: the replica would overwrite the deal data",
            unsealed.display(),
            sealed.display()
        );
    }
    Ok(())
}

/// The pid a temp name of ours ends in (`<name>.tmp-<pid>`, see [`temp_path`]).
fn temp_owner(name: &str) -> Option<i32> {
    let (stem, pid) = name.rsplit_once(".tmp-")?;
    if stem.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` exists (on this machine).
fn pid_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        Err(_) => true, // EPERM: it exists, owned by someone else.
    }
}

/// Removes the temp files of killed runs in `dir`: regular files named by [`temp_path`]
/// (`<name>.tmp-<pid>`) whose pid is not a live process. A live pid's temp may be a running
/// phase's work in progress and is left alone; other names are never touched. Returns the
/// names removed.
pub fn remove_dead_temps(dir: &Path) -> Vec<String> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut removed = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_owner(&name) else {
            continue;
        };
        if pid == std::process::id() as i32 || pid_alive(pid) {
            continue;
        }
        if e.file_type().is_ok_and(|t| t.is_file()) && fs::remove_file(e.path()).is_ok() {
            removed.push(name);
        }
    }
    removed
}

/// [`remove_dead_temps`] in the directory holding `path`.
pub fn remove_dead_temps_beside(path: &Path) -> Vec<String> {
    match path.parent() {
        Some(d) => remove_dead_temps(d),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// write_atomic (and so every journal) refuses to rename over a symlink, a FIFO or a
    /// directory, naming it, and leaves what the link points to alone.
    #[test]
    fn atomic_writes_refuse_special_destinations() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("target"), b"keep").unwrap();
        symlink(d.join("target"), d.join("link")).unwrap();
        nix::unistd::mkfifo(
            &d.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        fs::create_dir(d.join("dir")).unwrap();
        for (name, kind) in [
            ("link", "a symbolic link"),
            ("fifo", "a named pipe"),
            ("dir", "a directory"),
        ] {
            let p = d.join(name);
            let e = format!("{:#}", write_atomic(&p, b"new").unwrap_err());
            assert_eq!(
                e,
                format!(
                    "refusing to replace {}: it is {kind}, not a regular file",
                    p.display()
                )
            );
        }
        assert_eq!(fs::read(d.join("target")).unwrap(), b"keep");
        write_atomic(&d.join("target"), b"new").unwrap();
        assert_eq!(fs::read(d.join("target")).unwrap(), b"new");
        assert!(fs::read_dir(d).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp-")));
    }

    #[test]
    fn regular_opens_refuse_a_fifo_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = open_regular_read(&fifo).unwrap_err();
        assert_eq!(e.to_string(), format!("{} is a named pipe", fifo.display()));
        // A planted symlink at a temp name is not written through.
        fs::write(dir.path().join("t"), b"keep").unwrap();
        symlink(dir.path().join("t"), dir.path().join("tmp")).unwrap();
        assert!(create_temp(&dir.path().join("tmp")).is_err());
        assert_eq!(fs::read(dir.path().join("t")).unwrap(), b"keep");
    }

    #[test]
    fn same_file_sees_through_names() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("a"), b"x").unwrap();
        fs::create_dir(d.join("sub")).unwrap();
        symlink(d.join("a"), d.join("l")).unwrap();
        fs::hard_link(d.join("a"), d.join("h")).unwrap();
        for other in ["a", "sub/../a", "l", "h", "nodir/../a"] {
            assert!(same_file(&d.join("a"), &d.join(other)).unwrap(), "{other}");
        }
        assert!(!same_file(&d.join("a"), &d.join("b")).unwrap());
        assert!(same_file(&d.join("x/../b"), &d.join("b")).unwrap());
        assert!(!same_file(&d.join("sub/a"), &d.join("a")).unwrap());
    }

    #[test]
    fn temp_owner_parses_only_our_names() {
        assert_eq!(temp_owner("p_aux.tmp-123"), Some(123));
        assert_eq!(temp_owner("sc-02-data-layer-1.dat.tmp-7"), Some(7));
        assert_eq!(temp_owner(".tmp-7"), None);
        assert_eq!(temp_owner("x.tmp-"), None);
        assert_eq!(temp_owner("x.tmp-12a"), None);
        assert_eq!(temp_owner("x.tmp"), None);
    }
}
