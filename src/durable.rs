//! Making finished files durable off the critical path.
//!
//! A result file must be fsynced, renamed from its temp name and its directory fsynced before
//! a journal may claim it exists. Done inline, that stalls the hashing threads for seconds per
//! file while the disk catches up. A [`PendingFile`] holds a finished temp file and its map;
//! a [`Syncer`] thread commits pending files (and then runs the journal update that follows
//! each) in submission order, while the caller goes on with the next layer. The caller
//! collects the outcome with [`Syncer::finish`] before it reports success.

use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context, Result};
use memmap2::{Mmap, MmapMut};

use crate::direct_io::{ChunkWriter, ALIGN};
use crate::fsutil::{
    check_replaceable, create_preallocated, rename_into_place, sync_parent, temp_path,
};

/// A fully written file still under its temp name, with its checksum.
pub struct PendingFile {
    tmp: PathBuf,
    path: PathBuf,
    file: File,
    len: u64,
    checksum: String,
    map: Option<Arc<Mmap>>,
}

/// A file being written through a map: preallocated under a temp name, mapped read-write.
/// For content produced in place (labels written as they are hashed).
pub struct NewFile {
    tmp: PathBuf,
    path: PathBuf,
    file: File,
    pub map: MmapMut,
}

impl NewFile {
    /// Creates `path`'s temp file with `len` bytes reserved, mapped.
    pub fn create(path: PathBuf, len: u64) -> Result<NewFile> {
        check_replaceable(&path)?;
        let tmp = temp_path(&path);
        let file = create_preallocated(&tmp, len)?;
        let map = unsafe { MmapMut::map_mut(&file) }
            .with_context(|| format!("mapping {}", tmp.display()))?;
        Ok(NewFile {
            tmp,
            path,
            file,
            map,
        })
    }

    /// The content is complete: it may be read (through [`PendingFile::map`]) and committed.
    pub fn finished(self) -> Result<PendingFile> {
        self.map.flush_async()?;
        let map = self.map.make_read_only()?;
        Ok(PendingFile {
            len: map.len() as u64,
            checksum: crate::checksum::of(&map),
            tmp: self.tmp,
            path: self.path,
            file: self.file,
            map: Some(Arc::new(map)),
        })
    }

    /// Removes the temp file (on error paths).
    pub fn discard(self) {
        fs::remove_file(&self.tmp).ok();
    }
}

/// Bytes written per `write` call when streaming a file out.
const STREAM_CHUNK: usize = 4 << 20;

/// Chunk buffers of a set of files streamed out together, in all.
const SET_BUFFERS: usize = 64 << 20;

/// Bytes of each file produced and checksummed at a time, within a chunk: a set of 16 files'
/// pieces (256 KiB, and as much of the rows they are cut from) is checksummed while it is
/// still in L2, not read back from memory once the whole 64 MiB of chunks is filled (16 GiB
/// of a batch's layers per run), and leaves most of L2 to the labeler on the same core.
const FILL_PIECE: usize = 16 << 10;

impl PendingFile {
    /// Writes `len` bytes to `path`'s temp file with plain writes (no page fault per page, as
    /// a fresh map would take), direct where the file system allows ([`ChunkWriter`]: the
    /// page cache costs more CPU than the hashing can spare), `fill(chunk, offset)` producing
    /// each chunk, and checksums them on the way.
    pub fn write_streamed(
        path: PathBuf,
        len: u64,
        mut fill: impl FnMut(&mut [u8], u64),
    ) -> Result<PendingFile> {
        let mut files = Self::write_streamed_set(vec![path], len, |chunks, off| {
            fill(chunks[0], off);
            Ok(())
        })?;
        Ok(files.pop().expect("one file"))
    }

    /// [`PendingFile::write_streamed`] for several files of `len` bytes each, written side by
    /// side: `fill(chunks, offset)` produces the piece at `offset` of every file at once
    /// (`chunks[i]` for `paths[i]`; pieces of up to [`FILL_PIECE`] bytes, whole 4 KiB
    /// blocks but at the file's tail), so a producer that holds the files' content interleaved
    /// (a batch's layers) makes one pass over it, and one that is still producing it (the
    /// labels of a layer) can be followed closely. An error from `fill` stops the writing;
    /// every temp file is then removed.
    pub fn write_streamed_set(
        paths: Vec<PathBuf>,
        len: u64,
        mut fill: impl FnMut(&mut [&mut [u8]], u64) -> Result<()>,
    ) -> Result<Vec<PendingFile>> {
        for path in &paths {
            check_replaceable(path)?;
        }
        // Chunks of up to STREAM_CHUNK, smaller with many files: SET_BUFFERS in all.
        let chunk = (SET_BUFFERS / paths.len().max(1) / ALIGN * ALIGN).clamp(ALIGN, STREAM_CHUNK);
        let mut created: Vec<PathBuf> = Vec::with_capacity(paths.len());
        let r = (|| -> Result<Vec<(File, String)>> {
            let mut files = Vec::with_capacity(paths.len());
            let mut writers = Vec::with_capacity(paths.len());
            for path in &paths {
                let tmp = temp_path(path);
                let file = create_preallocated(&tmp, len)
                    .with_context(|| format!("writing {}", path.display()))?;
                created.push(tmp);
                writers.push(ChunkWriter::new(&file, chunk, true)?);
                files.push(file);
            }
            let mut hashers: Vec<_> = paths
                .iter()
                .map(|_| crate::checksum::Checksum::new())
                .collect();
            let mut off = 0u64;
            while off < len {
                let n = (len - off).min(chunk as u64) as usize;
                let mut chunks: Vec<&mut [u8]> = writers.iter_mut().map(|w| w.chunk(n)).collect();
                let mut done = 0;
                while done < n {
                    let m = (n - done).min(FILL_PIECE);
                    let mut pieces: Vec<&mut [u8]> =
                        chunks.iter_mut().map(|c| &mut c[done..done + m]).collect();
                    fill(&mut pieces, off + done as u64)?;
                    for (h, p) in hashers.iter_mut().zip(&pieces) {
                        h.update(p);
                    }
                    done += m;
                }
                for ((w, file), path) in writers.iter_mut().zip(&mut files).zip(&paths) {
                    w.write(file, n)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                off += n as u64;
            }
            Ok(files
                .into_iter()
                .zip(hashers)
                .map(|(f, h)| (f, h.hex()))
                .collect())
        })();
        match r {
            Ok(files) => Ok(paths
                .into_iter()
                .zip(created)
                .zip(files)
                .map(|((path, tmp), (file, checksum))| PendingFile {
                    tmp,
                    path,
                    file,
                    len,
                    checksum,
                    map: None,
                })
                .collect()),
            Err(e) => {
                for tmp in &created {
                    fs::remove_file(tmp).ok();
                }
                Err(e)
            }
        }
    }

    /// Writes `bytes` to `path`'s temp file straight from the caller's memory (direct where
    /// it is aligned and the file system allows: [`crate::direct_io::write_all_from`]), for
    /// content already whole in a buffer (a sector's tree_d and replica), with no copy
    /// through a chunk; checksums it on the way.
    /// Content that does not start on an [`ALIGN`] boundary is copied through an aligned
    /// chunk instead ([`PendingFile::write_streamed`]), which can still be written directly.
    pub fn write_from(path: PathBuf, bytes: &[u8]) -> Result<PendingFile> {
        if !(bytes.as_ptr() as usize).is_multiple_of(ALIGN) {
            return Self::write_streamed(path, bytes.len() as u64, |chunk, off| {
                chunk.copy_from_slice(&bytes[off as usize..off as usize + chunk.len()])
            });
        }
        check_replaceable(&path)?;
        let tmp = temp_path(&path);
        let len = bytes.len() as u64;
        let r = (|| -> Result<(File, String)> {
            let mut file = create_preallocated(&tmp, len)?;
            let mut hasher = crate::checksum::Checksum::new();
            crate::direct_io::write_all_from(&mut file, bytes, |p| hasher.update(p))?;
            Ok((file, hasher.hex()))
        })();
        match r {
            Ok((file, checksum)) => Ok(PendingFile {
                tmp,
                path,
                file,
                len,
                checksum,
                map: None,
            }),
            Err(e) => {
                fs::remove_file(&tmp).ok();
                Err(e).with_context(|| format!("writing {}", path.display()))
            }
        }
    }

    /// The content, for readers that need it before it is committed (files made by
    /// [`NewFile`]).
    pub fn map(&self) -> Option<Arc<Mmap>> {
        self.map.clone()
    }

    pub fn name(&self) -> String {
        self.path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    }

    /// Length and xxh3 checksum of the content, for the journal.
    pub fn summary(&self) -> (u64, String) {
        (self.len, self.checksum.clone())
    }

    /// Removes the temp file instead of committing it (on error paths).
    pub fn discard(self) {
        fs::remove_file(&self.tmp).ok();
    }

    /// fsync, rename into place, fsync the directory.
    pub fn commit(self) -> Result<()> {
        let r = (|| -> Result<()> {
            self.file.sync_all()?;
            rename_into_place(&self.tmp, &self.path)?;
            sync_parent(&self.path)
        })();
        if let Err(e) = r {
            fs::remove_file(&self.tmp).ok();
            return Err(e).with_context(|| format!("writing {}", self.path.display()));
        }
        Ok(())
    }
}

type Job = Box<dyn FnOnce() -> Result<()> + Send>;

/// A thread that runs commit jobs in order and remembers the first failure.
pub struct Syncer {
    tx: Option<mpsc::Sender<Job>>,
    worker: Option<JoinHandle<Result<()>>>,
}

impl Syncer {
    pub fn new() -> Syncer {
        let (tx, rx) = mpsc::channel::<Job>();
        let worker = std::thread::spawn(move || {
            for job in rx {
                // After a failure the later jobs (which may depend on it) are dropped.
                job()?;
            }
            Ok(())
        });
        Syncer {
            tx: Some(tx),
            worker: Some(worker),
        }
    }

    /// Queues a job. If the worker already failed, the job is dropped and the failure is
    /// reported by [`Syncer::finish`].
    pub fn submit(&self, job: impl FnOnce() -> Result<()> + Send + 'static) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Box::new(job));
        }
    }

    /// A receiver that gets a message once every job queued before this call has run
    /// (it is closed instead if the worker failed: [`Syncer::finish`] then has the error).
    /// Lets a producer bound what waits in memory to be written.
    pub fn marker(&self) -> mpsc::Receiver<()> {
        let (tx, rx) = mpsc::channel();
        self.submit(move || {
            tx.send(()).ok();
            Ok(())
        });
        rx
    }

    /// Waits for every queued job; the first error, if any.
    pub fn finish(mut self) -> Result<()> {
        self.join()
    }

    fn join(&mut self) -> Result<()> {
        drop(self.tx.take());
        match self.worker.take() {
            Some(w) => w
                .join()
                .map_err(|_| anyhow!("the file syncing thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Default for Syncer {
    fn default() -> Self {
        Syncer::new()
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        // Never leave a commit half done behind a caller that bailed out early.
        let _ = self.join();
    }
}
