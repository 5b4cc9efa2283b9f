//! Writing large files around the page cache (O_DIRECT).
//!
//! PC1 writes about 2.5 times the sector size per sector (the replica, tree_d, the layers),
//! and nothing reads those bytes back soon enough for the page cache to help: the next
//! phase runs later, often on another machine. A buffered write copies every byte into
//! freshly allocated cache pages and then writes them back; on the VMs we measure on that
//! costs about 3 CPU-seconds per GiB in the kernel (buffered `dd`: 12.7 s of system time for
//! 4 GiB; with O_DIRECT 0.4 s), time taken from the hashing cores. A direct write hands the
//! aligned buffer to the device instead.
//!
//! Direct I/O needs the buffer, the file offset and the length aligned to the device's
//! block; [`ChunkWriter`] writes whole aligned chunks directly and the unaligned tail (and
//! everything, on a file system that refuses O_DIRECT) through the page cache, so the bytes
//! on disk are the same either way.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;

use memmap2::MmapMut;
use nix::fcntl::{fcntl, FcntlArg, OFlag};

/// Alignment of direct writes: buffer address, file offset and length. 4 KiB covers the
/// logical block of every disk we target; a device needing more refuses the write (EINVAL)
/// and the writer falls back to the page cache.
pub const ALIGN: usize = 4096;

/// Writes a file front to back in chunks produced into a page-aligned buffer, directly
/// where the file system allows.
pub struct ChunkWriter {
    buf: MmapMut,
    direct: bool,
}

impl ChunkWriter {
    /// A writer for `file` with chunks of up to `chunk` bytes (a multiple of [`ALIGN`]);
    /// `direct`: try O_DIRECT (false: the page cache, as a plain writer).
    pub fn new(file: &File, chunk: usize, direct: bool) -> io::Result<ChunkWriter> {
        assert!(
            chunk > 0 && chunk.is_multiple_of(ALIGN),
            "chunks are whole aligned blocks"
        );
        let buf = MmapMut::map_anon(chunk)?;
        let direct = direct && set_direct(file, true).is_ok();
        Ok(ChunkWriter { buf, direct })
    }

    /// Whether writes still bypass the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// The buffer to fill with the next `n` bytes (at most the chunk size).
    pub fn chunk(&mut self, n: usize) -> &mut [u8] {
        &mut self.buf[..n]
    }

    /// Appends the first `n` bytes of the buffer to `file` (at its current position, which
    /// must be a multiple of [`ALIGN`] while writes are direct).
    pub fn write(&mut self, file: &mut File, n: usize) -> io::Result<()> {
        let mut done = 0;
        while done < n {
            let aligned = (n - done) / ALIGN * ALIGN;
            if self.direct && aligned == 0 {
                // The tail of the file: through the page cache from here on.
                self.buffered(file)?;
            }
            let end = if self.direct { done + aligned } else { n };
            match file.write(&self.buf[done..end]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) if self.direct && k % ALIGN != 0 => {
                    // A short direct write leaves an unaligned offset: go on buffered.
                    done += k;
                    self.buffered(file)?;
                }
                Ok(k) => done += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.direct && e.raw_os_error() == Some(nix::libc::EINVAL) => {
                    // The device's block is larger than ALIGN.
                    self.buffered(file)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn buffered(&mut self, file: &File) -> io::Result<()> {
        set_direct(file, false)?;
        self.direct = false;
        Ok(())
    }
}

/// Fills `out` from the start of `file` (which has at least `out.len()` bytes): directly
/// where the file system allows and `out` starts on an [`ALIGN`] boundary, the unaligned
/// tail through the page cache.
pub fn read_exact(file: &mut File, out: &mut [u8]) -> io::Result<()> {
    let aligned = (out.as_ptr() as usize).is_multiple_of(ALIGN);
    // Large reads, whole blocks each.
    let done = direct_pieces(
        file,
        aligned,
        out.len(),
        64 << 20,
        io::ErrorKind::UnexpectedEof,
        |f, r| f.read(&mut out[r]),
    )?;
    file.read_exact(&mut out[done..])
}

/// Bytes per direct write from a caller's buffer.
const PIECE: usize = 8 << 20;

/// Writes all of `bytes` at `file`'s current position (which must be a multiple of
/// [`ALIGN`]): straight from `bytes`, with no copy through a buffer, where `bytes` starts on
/// an [`ALIGN`] boundary and the file system allows direct I/O; the unaligned tail (or all of
/// it, otherwise) through the page cache. `written(piece)` sees each piece once it is
/// written, in order (for a checksum).
pub fn write_all_from(
    file: &mut File,
    bytes: &[u8],
    mut written: impl FnMut(&[u8]),
) -> io::Result<()> {
    let aligned = (bytes.as_ptr() as usize).is_multiple_of(ALIGN);
    let done = direct_pieces(
        file,
        aligned,
        bytes.len(),
        PIECE,
        io::ErrorKind::WriteZero,
        |f, r| {
            let k = f.write(&bytes[r.clone()])?;
            written(&bytes[r.start..r.start + k]);
            Ok(k)
        },
    )?;
    file.write_all(&bytes[done..])?;
    written(&bytes[done..]);
    Ok(())
}

/// Runs one direct transfer `op(file, range)` after another over the whole blocks of `len`
/// bytes (pieces of at most `piece`), with O_DIRECT set for them, when the caller's memory
/// is `aligned` and the file system allows direct I/O; returns how many bytes went directly,
/// so the caller moves the rest through the page cache. It stops early, without an error,
/// at a short transfer (the file offset is no longer aligned) or EINVAL (the device's block
/// is larger than [`ALIGN`]); a transfer of nothing is `zero`.
fn direct_pieces(
    file: &mut File,
    aligned: bool,
    len: usize,
    piece: usize,
    zero: io::ErrorKind,
    mut op: impl FnMut(&mut File, std::ops::Range<usize>) -> io::Result<usize>,
) -> io::Result<usize> {
    if !aligned || set_direct(file, true).is_err() {
        return Ok(0);
    }
    let whole = len / ALIGN * ALIGN;
    let mut done = 0;
    while done < whole {
        match op(file, done..whole.min(done + piece)) {
            Ok(0) => return Err(zero.into()),
            Ok(k) => {
                done += k;
                if k % ALIGN != 0 {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => break,
            Err(e) => return Err(e),
        }
    }
    set_direct(file, false)?;
    Ok(done)
}

/// Sets or clears O_DIRECT on an open file (Linux allows it through F_SETFL; a file system
/// without direct I/O refuses with EINVAL).
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let fd = file.as_raw_fd();
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?);
    let flags = if on {
        flags | OFlag::O_DIRECT
    } else {
        flags - OFlag::O_DIRECT
    };
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct and buffered writers leave the same bytes: whole chunks, a chunk that is not a
    /// multiple of the block, and a tail shorter than one block; in a file system directory
    /// of the machine and in /dev/shm (tmpfs) where there is one. Reading them back gives
    /// the same bytes, into aligned and unaligned buffers.
    #[test]
    fn direct_and_buffered_files_are_equal() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dirs = vec![tmp.path().to_path_buf()];
        let shm = tempfile::tempdir_in("/dev/shm");
        if let Ok(d) = &shm {
            dirs.push(d.path().to_path_buf());
        }
        let len = 3 * 16384 + 5000 + 32;
        let content: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        for dir in &dirs {
            for direct in [true, false] {
                let path = dir.join(format!("f{direct}"));
                let mut f = File::create(&path).unwrap();
                let mut w = ChunkWriter::new(&f, 16384, direct).unwrap();
                let mut off = 0;
                for n in [16384, 16384, 9000, 16384 - 9000 + 5000, 32] {
                    w.chunk(n).copy_from_slice(&content[off..off + n]);
                    w.write(&mut f, n).unwrap();
                    off += n;
                }
                assert_eq!(off, len);
                // The 9000-byte chunk ends unaligned: the rest went through the page cache.
                assert!(!w.is_direct());
                drop(f);
                let mut got = Vec::new();
                File::open(&path).unwrap().read_to_end(&mut got).unwrap();
                assert!(got == content, "{} direct={direct}", dir.display());
                // Read back into an aligned buffer (the aligned part directly), and into
                // one that is not aligned.
                let mut map = MmapMut::map_anon(len + 1).unwrap();
                for at in [0, 1] {
                    map.fill(0);
                    let mut f = File::open(&path).unwrap();
                    read_exact(&mut f, &mut map[at..at + len]).unwrap();
                    assert!(map[at..at + len] == content[..], "read at {at}");
                }
            }
        }
    }

    /// Writing straight from a buffer leaves its bytes, from an aligned start (direct, then
    /// a tail shorter than a block) and an unaligned one (buffered), and hands every byte to
    /// the callback once, in order.
    #[test]
    fn writes_from_a_buffer_are_exact() {
        let tmp = tempfile::tempdir().unwrap();
        let len = 2 * PIECE + 3 * ALIGN + 100;
        let mut map = MmapMut::map_anon(len + 1).unwrap();
        for (i, b) in map.iter_mut().enumerate() {
            *b = (i * 13 + i / 4093) as u8;
        }
        for at in [0, 1] {
            let path = tmp.path().join(format!("from{at}"));
            let mut f = File::create(&path).unwrap();
            let mut seen = Vec::new();
            write_all_from(&mut f, &map[at..at + len], |p| seen.extend_from_slice(p)).unwrap();
            drop(f);
            assert!(seen[..] == map[at..at + len], "callback, start {at}");
            let mut got = Vec::new();
            File::open(&path).unwrap().read_to_end(&mut got).unwrap();
            assert!(got[..] == map[at..at + len], "file, start {at}");
        }
    }
}
