//! The unsealed sector file as AddPiece writes it: locked, appended in place, rolled back on
//! error, fsynced before success is reported.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::piece::commp::{PieceCommitted, PieceStreamer};

/// Bytes moved per read/write when a piece is shifted into alignment.
const MOVE_CHUNK: u64 = 1 << 20;

pub struct UnsealedFile {
    file: File,
    path: PathBuf,
}

impl UnsealedFile {
    /// Opens (creating it and its directory if needed) and locks the unsealed file, so two
    /// AddPiece runs cannot interleave their appends.
    pub fn open(path: &Path) -> Result<UnsealedFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .with_context(|| format!("creating directory {}", dir.display()))?;
        }
        crate::fsutil::remove_dead_temps_beside(path);
        let file = crate::fsutil::open_regular(
            path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )
        .with_context(|| format!("opening unsealed file {}", path.display()))?;
        // A process forked by another thread of ours holds a copy of the descriptor (and so
        // the lock) until it execs; only a lock held for a while means another writer.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(TryLockError::WouldBlock) => {
                    bail!(
                        "unsealed file {} is in use by another process",
                        path.display()
                    )
                }
                Err(TryLockError::Error(e)) => {
                    return Err(e)
                        .with_context(|| format!("locking unsealed file {}", path.display()))
                }
            }
        }
        Ok(UnsealedFile {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn len(&self) -> Result<u64> {
        Ok(self
            .file
            .metadata()
            .with_context(|| format!("reading unsealed file {}", self.path.display()))?
            .len())
    }

    /// Cuts back the bytes an interrupted run left past `end`.
    pub fn discard_interrupted(&mut self, end: u64) -> Result<()> {
        let len = self.len()?;
        eprintln!(
            "seal-ap: discarding {} bytes an interrupted run left in {}",
            len - end,
            self.path.display()
        );
        self.rollback(end)
    }

    /// Streams a piece's padded bytes to offset `at`; returns its commitment.
    pub fn write_piece(
        &mut self,
        at: u64,
        source: &mut dyn std::io::Read,
        limit: u64,
        padded_size: Option<u64>,
        progress: &dyn Fn(u64),
    ) -> Result<PieceCommitted> {
        self.file.seek(SeekFrom::Start(at))?;
        let mut w = BufWriter::with_capacity(1 << 20, &self.file);
        let mut streamer = PieceStreamer::new(Some(&mut w), limit);
        streamer.read_all(source, progress)?;
        let committed = streamer.finish(padded_size)?;
        w.flush()
            .with_context(|| format!("writing unsealed file {}", self.path.display()))?;
        Ok(committed)
    }

    /// Moves `len` bytes from `from` to a later offset `to`, then zeros what the move exposed.
    pub fn move_piece(&mut self, from: u64, to: u64, len: u64) -> Result<()> {
        debug_assert!(to > from);
        let mut buf = vec![0u8; MOVE_CHUNK as usize];
        let mut remaining = len;
        // Back to front, since the ranges may overlap.
        while remaining > 0 {
            let n = remaining.min(MOVE_CHUNK);
            remaining -= n;
            let b = &mut buf[..n as usize];
            self.file.read_exact_at(b, from + remaining)?;
            self.file.write_all_at(b, to + remaining)?;
        }
        let zero_end = to.min(from + len);
        buf.fill(0);
        let mut pos = from;
        while pos < zero_end {
            let n = (zero_end - pos).min(MOVE_CHUNK);
            self.file.write_all_at(&buf[..n as usize], pos)?;
            pos += n;
        }
        Ok(())
    }

    /// Extends the file with zeros (a hole) to `end` and makes everything durable.
    pub fn finish(&mut self, end: u64) -> Result<()> {
        if self.len()? < end {
            self.file.set_len(end)?;
        }
        self.file
            .sync_all()
            .with_context(|| format!("syncing unsealed file {}", self.path.display()))
    }

    /// Cuts the file back to `end` bytes, durably.
    pub fn rollback(&mut self, end: u64) -> Result<()> {
        self.file.set_len(end)?;
        self.file
            .sync_all()
            .with_context(|| format!("syncing unsealed file {}", self.path.display()))
    }
}
