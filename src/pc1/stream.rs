//! Batches larger than memory: labeling a group's layer with its previous layer read from the
//! sectors' layer files instead of held in memory.
//!
//! A layer's expander parents are known in advance from the parent cache, so a reader thread
//! gathers them window by window ahead of the hashing thread, from the files (mapped: the
//! page cache, or the disk when the page cache cannot hold them), into a few fixed buffers
//! that circulate between the two threads. The memory this takes is [`RING`] windows,
//! whatever the sector size; the hashing thread never waits on the disk while the reader
//! keeps ahead.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use crate::sdr::batch::{ExpanderFeed, EXP_ROW};
use crate::sdr::parent_cache::ParentCache;
use crate::sdr::{prefetch, BASE_DEGREE, EXP_DEGREE};

/// Nodes per window of gathered parents.
pub const WINDOW: usize = 2048;

/// Windows in circulation: one being hashed, the others being filled or waiting.
pub const RING: usize = 3;

/// Nodes ahead whose parent labels the reader asks the CPU for.
const AHEAD: usize = 4;

/// Bytes the reader's buffers take for a group of `lanes` sectors of `nodes` nodes.
pub fn ring_bytes(nodes: usize, lanes: usize) -> u64 {
    (RING * WINDOW.min(nodes) * lanes * EXP_ROW) as u64
}

/// The hashing thread's end: windows arrive in node order and go back when passed.
pub struct ChannelFeed {
    full: Receiver<Vec<u8>>,
    free: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    /// First node of `current`, and its number of nodes.
    start: usize,
    len: usize,
    row: usize,
}

impl ExpanderFeed for ChannelFeed {
    fn expanders(&mut self, v: usize) -> &[u8] {
        while v >= self.start + self.len {
            let done = std::mem::take(&mut self.current);
            if !done.is_empty() {
                // The reader may have finished; then nobody needs the buffer back.
                self.free.send(done).ok();
            }
            self.start += self.len;
            self.current = self
                .full
                .recv()
                .expect("the reader sends every window before it ends");
            self.len = self.current.len() / self.row;
        }
        let at = (v - self.start) * self.row;
        &self.current[at..at + self.row]
    }
}

/// Sets up a feed for nodes `1..nodes` of a group whose previous layer is `prev` (one
/// mapped file per lane). Returns the hashing thread's end and the reader, to be run on its
/// own thread while the group is labeled.
pub fn feed<'a>(
    prev: &'a [&'a [u8]],
    parents: &'a ParentCache,
    nodes: usize,
) -> (ChannelFeed, impl FnOnce() + Send + 'a) {
    let lanes = prev.len();
    let row = lanes * EXP_ROW;
    let window = WINDOW.min(nodes);
    let (free_tx, free_rx) = sync_channel::<Vec<u8>>(RING);
    let (full_tx, full_rx) = sync_channel::<Vec<u8>>(RING);
    for _ in 0..RING {
        free_tx
            .send(Vec::with_capacity(window * row))
            .expect("the channel holds RING buffers");
    }
    let reader = move || {
        let mut start = 1;
        while start < nodes {
            let end = (start + window).min(nodes);
            let Ok(mut buf) = free_rx.recv() else { return };
            buf.resize((end - start) * row, 0);
            gather(prev, parents, start..end, &mut buf);
            if full_tx.send(buf).is_err() {
                return;
            }
            start = end;
        }
    };
    let feed = ChannelFeed {
        full: full_rx,
        free: free_tx,
        current: Vec::new(),
        start: 1,
        len: 0,
        row,
    };
    (feed, reader)
}

/// Copies the expander parents of `nodes` from every lane's previous layer into `out`
/// (`[node][lane][parent][32 bytes]`).
fn gather(prev: &[&[u8]], parents: &ParentCache, nodes: std::ops::Range<usize>, out: &mut [u8]) {
    let row = prev.len() * EXP_ROW;
    let end = nodes.end;
    for (k, v) in nodes.enumerate() {
        if v + AHEAD < end {
            let p = parents.parents((v + AHEAD) as u64);
            for &e in &p[BASE_DEGREE..] {
                for lane in prev {
                    prefetch(lane.as_ptr().wrapping_add(e as usize * 32));
                }
            }
        }
        let p = parents.parents(v as u64);
        let dst = &mut out[k * row..(k + 1) * row];
        for (l, lane) in prev.iter().enumerate() {
            for j in 0..EXP_DEGREE {
                let e = p[BASE_DEGREE + j] as usize * 32;
                let at = l * EXP_ROW + j * 32;
                dst[at..at + 32].copy_from_slice(&lane[e..e + 32]);
            }
        }
    }
}
