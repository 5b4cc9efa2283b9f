//! CommP: the piece commitment, streamed in constant memory.
//!
//! Raw payload bytes are cut into chunks of 127·2^13 bytes (1 MiB once padded). Each batch of
//! chunks is fr32-padded and reduced to per-chunk subtree roots on all rayon threads; the roots
//! are folded by a [`SubtreeStack`]. The zero tail of the piece (up to its power-of-two size)
//! is never hashed: zero subtree roots stand in for it. Memory stays at two batch buffers
//! (at most 32 MiB) whatever the piece size.

use std::io::{Read, Write};

use anyhow::{bail, ensure, Context, Result};
use rayon::prelude::*;

use crate::merkle::binary::root;
use crate::merkle::stack::SubtreeStack;
use crate::piece::fr32::{self, PADDED_BLOCK, UNPADDED_BLOCK};
use crate::piece::size::{padded_piece_size, unpadded_piece_size};

/// Raw bytes of one chunk: 8192 fr32 blocks.
pub const RAW_CHUNK: usize = UNPADDED_BLOCK * 8192;
/// Padded bytes of one chunk (1 MiB, a power of two, so a chunk is a whole subtree).
pub const PADDED_CHUNK: usize = PADDED_BLOCK * 8192;
/// Chunks processed together, split across threads: two per thread, at most 16, so a batch
/// keeps every thread busy while a slow stream still reaches the file in small steps.
fn batch_chunks() -> usize {
    (2 * rayon::current_num_threads()).clamp(2, 16)
}

/// What a piece turned out to be once streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceCommitted {
    pub comm_p: [u8; 32],
    /// Payload bytes read.
    pub payload_size: u64,
    /// Padded piece size (power of two).
    pub padded_size: u64,
    /// Unpadded piece size (`padded * 127 / 128`).
    pub unpadded_size: u64,
    /// Padded bytes of real data written to the sink; the rest of the piece is zeros the
    /// caller may leave as a hole.
    pub padded_written: u64,
}

/// Streams a payload, computing CommP and optionally writing the fr32-padded bytes to a sink.
pub struct PieceStreamer<'w> {
    raw: Vec<u8>,
    raw_len: usize,
    padded: Vec<u8>,
    stack: SubtreeStack,
    payload: u64,
    padded_written: u64,
    sink: Option<&'w mut dyn Write>,
    /// Largest padded piece the caller will accept; reading stops with an error past it.
    limit: u64,
}

impl<'w> PieceStreamer<'w> {
    /// `limit`: the largest padded piece size acceptable (for AddPiece, the space left).
    pub fn new(sink: Option<&'w mut dyn Write>, limit: u64) -> Self {
        PieceStreamer {
            raw: vec![0u8; RAW_CHUNK * batch_chunks()],
            raw_len: 0,
            padded: vec![0u8; PADDED_CHUNK * batch_chunks()],
            stack: SubtreeStack::new(),
            payload: 0,
            padded_written: 0,
            sink,
            limit,
        }
    }

    /// Reads `source` to its end. `progress` is told about every block of bytes read.
    pub fn read_all(&mut self, source: &mut dyn Read, progress: &dyn Fn(u64)) -> Result<()> {
        loop {
            let n = match source.read(&mut self.raw[self.raw_len..]) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            self.raw_len += n;
            self.payload += n as u64;
            progress(n as u64);
            if self.payload > unpadded_piece_size(self.limit) {
                bail!(
                    "piece is larger than the {} bytes of space left (at least {} bytes read)",
                    unpadded_piece_size(self.limit),
                    self.payload
                );
            }
            if self.raw_len == self.raw.len() {
                self.flush_batch(self.raw_len / RAW_CHUNK)?;
            }
        }
    }

    /// Pads and hashes the first `chunks` full chunks of the raw buffer.
    fn flush_batch(&mut self, chunks: usize) -> Result<()> {
        let raw = &self.raw[..chunks * RAW_CHUNK];
        let padded = &mut self.padded[..chunks * PADDED_CHUNK];
        let roots: Vec<[u8; 32]> = raw
            .par_chunks(RAW_CHUNK)
            .zip(padded.par_chunks_mut(PADDED_CHUNK))
            .map(|(r, p)| {
                fr32::pad(r, p);
                root(p)
            })
            .collect();
        if let Some(sink) = self.sink.as_mut() {
            sink.write_all(padded)
                .context("writing padded piece data")?;
        }
        self.padded_written += padded.len() as u64;
        for root in roots {
            self.stack.push(PADDED_CHUNK as u64, root)?;
        }
        self.raw_len = 0;
        Ok(())
    }

    /// Finishes the piece: pads the payload to `padded_size` (or, if `None`, to the smallest
    /// piece that holds it) and returns the commitment.
    pub fn finish(mut self, padded_size: Option<u64>) -> Result<PieceCommitted> {
        let natural = padded_piece_size(self.payload)?;
        let padded_size = padded_size.unwrap_or(natural);
        ensure!(
            padded_size >= natural,
            "piece of {} bytes needs {natural} padded bytes, more than the {padded_size} given",
            self.payload
        );
        let full = self.raw_len / RAW_CHUNK;
        if full > 0 {
            // Move the trailing partial chunk to the front after flushing the full ones.
            let rest = self.raw_len - full * RAW_CHUNK;
            self.flush_batch(full)?;
            self.raw
                .copy_within(full * RAW_CHUNK..full * RAW_CHUNK + rest, 0);
            self.raw_len = rest;
        }
        if self.raw_len > 0 {
            // The last partial chunk becomes a zero-extended subtree: a whole chunk, or the
            // whole piece when the piece is smaller than a chunk.
            let blocks = self.raw_len.div_ceil(UNPADDED_BLOCK);
            let subtree = (padded_size as usize).min(PADDED_CHUNK);
            self.raw[self.raw_len..blocks * UNPADDED_BLOCK].fill(0);
            let data = &mut self.padded[..subtree];
            fr32::pad(
                &self.raw[..blocks * UNPADDED_BLOCK],
                &mut data[..blocks * PADDED_BLOCK],
            );
            data[blocks * PADDED_BLOCK..].fill(0);
            if let Some(sink) = self.sink.as_mut() {
                sink.write_all(&data[..blocks * PADDED_BLOCK])
                    .context("writing padded piece data")?;
            }
            self.padded_written += (blocks * PADDED_BLOCK) as u64;
            self.stack.push(subtree as u64, root(data))?;
        }
        let comm_p = self.stack.finish(padded_size)?;
        Ok(PieceCommitted {
            comm_p,
            payload_size: self.payload,
            padded_size,
            unpadded_size: unpadded_piece_size(padded_size),
            padded_written: self.padded_written,
        })
    }
}

/// CommP of everything `source` yields, zero-padded to the smallest piece that holds it.
pub fn commp_of_reader(source: &mut dyn Read, progress: &dyn Fn(u64)) -> Result<PieceCommitted> {
    let mut s = PieceStreamer::new(None, u64::MAX / 2);
    s.read_all(source, progress)?;
    s.finish(None)
}

/// CommP of an in-memory payload.
pub fn commp_of_bytes(payload: &[u8]) -> Result<PieceCommitted> {
    commp_of_reader(&mut &payload[..], &|_| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec Appendix A.2.
    #[test]
    fn known_answers() {
        let counting: Vec<u8> = (0..127u8).collect();
        assert_eq!(
            crate::hex::encode(&commp_of_bytes(&counting).unwrap().comm_p),
            "b817099547b8c59060fede17e8fef01cd2e5871fcc83cb2cf492000001a97216"
        );
        assert_eq!(
            crate::hex::encode(&commp_of_bytes(&[0u8; 127]).unwrap().comm_p),
            "3731bb99ac689f66eef5973e4a94da188f4ddcae580724fc6f3fd60dfd488333"
        );
    }

    /// Chunk boundaries must not change the result: hashing the padded bytes flat must agree.
    #[test]
    fn streaming_equals_flat_tree() {
        for len in [RAW_CHUNK - 1, RAW_CHUNK, RAW_CHUNK + 1, 3 * RAW_CHUNK + 500] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
            let got = commp_of_bytes(&payload).unwrap();
            let mut flat = fr32::pad_to_vec(&payload);
            flat.resize(got.padded_size as usize, 0);
            assert_eq!(
                got.comm_p,
                crate::merkle::binary::root_in_place(&mut flat),
                "len {len}"
            );
        }
    }
}
