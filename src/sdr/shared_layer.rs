//! A batch group's layer buffer, shared between the thread that labels it and the thread
//! that writes the sectors' layer files from it.
//!
//! Labels are final once hashed, and a layer is labeled from its first row to its last, so
//! the rows below the labeler's position can be written to the files while it labels the
//! rest. A batch writes its last layer that way: the files follow the labeling a few
//! megabytes behind, instead of all being written after it (on one core, 16 × 512MiB: 9.5 s
//! mostly waiting on the disk, measured). The labeler publishes how many rows are final
//! ([`Release`](Ordering::Release)); a reader sees only those rows
//! ([`Acquire`](Ordering::Acquire)), never the row being written, so the two never touch
//! the same bytes at the same time.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{bail, Result};
use memmap2::MmapMut;

/// One layer of a group: `rows` rows of `stride` bytes (a node of every lane).
pub struct SharedLayer {
    /// The memory. Only reached through `ptr` once the layer is built.
    _map: MmapMut,
    ptr: *mut u8,
    stride: usize,
    rows: usize,
    /// Rows `0..done` are final.
    done: AtomicUsize,
    /// The labeler stopped before the last row (readers then fail instead of waiting).
    abandoned: AtomicBool,
    /// A labeler holds the rows past `done` ([`SharedLayer::rows_mut`]).
    taken: AtomicBool,
}

// SAFETY: the rows past `done` are written by the one labeler that took them
// (`rows_mut`), the rows below `done` are only read; `done` is published with Release after
// the rows it covers were written, and read with Acquire before they are read.
unsafe impl Send for SharedLayer {}
unsafe impl Sync for SharedLayer {}

/// Rows a labeler writes: a [`SharedLayer`]'s memory past its published rows, or a plain
/// buffer of its own.
pub struct RowsMut<'a> {
    ptr: *mut u8,
    rows: usize,
    stride: usize,
    /// Rows below are published: read only.
    published: usize,
    shared: Option<&'a SharedLayer>,
    _borrow: std::marker::PhantomData<&'a mut [u8]>,
}

impl SharedLayer {
    /// A layer still to be labeled in `map` (rows of `stride` bytes).
    pub fn new(mut map: MmapMut, stride: usize) -> SharedLayer {
        assert!(
            stride > 0 && map.len().is_multiple_of(stride),
            "a layer is whole rows"
        );
        let ptr = map.as_mut_ptr();
        SharedLayer {
            rows: map.len() / stride,
            _map: map,
            ptr,
            stride,
            done: AtomicUsize::new(0),
            abandoned: AtomicBool::new(false),
            taken: AtomicBool::new(false),
        }
    }

    /// A layer whose content is already final (read back from its files).
    pub fn complete(map: MmapMut, stride: usize) -> SharedLayer {
        let layer = SharedLayer::new(map, stride);
        layer.taken.store(true, Ordering::Relaxed);
        layer.done.store(layer.rows, Ordering::Release);
        layer
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Whether every row is final.
    pub fn is_complete(&self) -> bool {
        self.done.load(Ordering::Acquire) == self.rows
    }

    /// The whole layer, once every row is final.
    pub fn all(&self) -> Option<&[u8]> {
        // SAFETY: every row is final: nothing writes the memory any more.
        self.is_complete()
            .then(|| unsafe { std::slice::from_raw_parts(self.ptr, self.rows * self.stride) })
    }

    /// Rows `0..end`, once they are final: waits for the labeler, fails if it stopped
    /// before them.
    pub fn wait_rows(&self, end: usize) -> Result<&[u8]> {
        assert!(end <= self.rows, "row {end} past the layer's {}", self.rows);
        while self.done.load(Ordering::Acquire) < end {
            if self.abandoned.load(Ordering::Acquire) && self.done.load(Ordering::Acquire) < end {
                bail!("the layer's labeling stopped before row {end}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: rows below `done` are final (published with Release, read with Acquire).
        Ok(unsafe { std::slice::from_raw_parts(self.ptr, end * self.stride) })
    }

    /// Readers waiting for rows that will not come fail (the labeler stopped early or
    /// failed). Does nothing to a complete layer.
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
    }

    /// The rows to label. Panics if the layer was taken before (one labeler per layer).
    pub fn rows_mut(&self) -> RowsMut<'_> {
        assert!(
            !self.taken.swap(true, Ordering::AcqRel),
            "a layer is labeled once"
        );
        RowsMut {
            ptr: self.ptr,
            rows: self.rows,
            stride: self.stride,
            published: 0,
            shared: Some(self),
            _borrow: std::marker::PhantomData,
        }
    }
}

impl<'a> RowsMut<'a> {
    /// The rows of a buffer no one else reads while it is labeled.
    pub fn of_slice(out: &'a mut [u8], stride: usize) -> RowsMut<'a> {
        assert!(
            stride > 0 && out.len().is_multiple_of(stride),
            "a layer is whole rows"
        );
        RowsMut {
            ptr: out.as_mut_ptr(),
            rows: out.len() / stride,
            stride,
            published: 0,
            shared: None,
            _borrow: std::marker::PhantomData,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The start of the memory, for a labeler that reads rows it wrote and writes rows past
    /// the published ones through pointers.
    pub fn base(&self) -> *mut u8 {
        self.ptr
    }

    /// Rows before this one are published: writes must be at or past it.
    pub fn published(&self) -> usize {
        self.published
    }

    /// Row `r` (not yet published), to write.
    pub fn row_mut(&mut self, r: usize) -> &mut [u8] {
        assert!(
            r >= self.published && r < self.rows,
            "row {r} is published or past the layer"
        );
        // SAFETY: the row is within the memory and not published, so no reader sees it; the
        // borrow holds `self` mutably, so there is one at a time.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r * self.stride), self.stride) }
    }

    /// Row `r`, to read.
    pub fn row(&self, r: usize) -> &[u8] {
        assert!(r < self.rows, "row {r} past the layer");
        // SAFETY: within the memory; nothing writes it while `self` is borrowed (only
        // `row_mut`, which needs `self` mutably, and readers never write).
        unsafe { std::slice::from_raw_parts(self.ptr.add(r * self.stride), self.stride) }
    }

    /// Rows `0..end` are final: readers may have them.
    pub fn publish(&mut self, end: usize) {
        assert!(end <= self.rows, "row {end} past the layer");
        self.published = self.published.max(end);
        if let Some(layer) = self.shared {
            layer.done.fetch_max(end, Ordering::Release);
        }
    }
}

impl Drop for RowsMut<'_> {
    /// A labeler that ends (or unwinds) before the last row lets its readers go.
    fn drop(&mut self) {
        if let Some(layer) = self.shared {
            if !layer.is_complete() {
                layer.abandon();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SharedLayer;

    #[test]
    fn readers_get_published_rows_and_fail_when_abandoned() {
        let map = memmap2::MmapMut::map_anon(4 * 8).unwrap();
        let layer = SharedLayer::new(map, 8);
        std::thread::scope(|s| {
            let reader = s.spawn(|| layer.wait_rows(3).map(|r| r.to_vec()));
            let mut rows = layer.rows_mut();
            for r in 0..3 {
                rows.row_mut(r).fill(r as u8 + 1);
            }
            rows.publish(3);
            let got = reader.join().unwrap().unwrap();
            assert_eq!(got, [[1u8; 8], [2; 8], [3; 8]].concat());
            assert!(layer.all().is_none(), "row 3 is not final");
            // The labeler stops before row 4: a reader waiting for it fails.
            drop(rows);
            let err = layer.wait_rows(4).unwrap_err();
            assert!(err.to_string().contains("stopped before row 4"), "{err}");
        });
        // Published rows stay readable.
        assert_eq!(layer.wait_rows(2).unwrap(), [[1u8; 8], [2; 8]].concat());
    }

    #[test]
    fn one_labeler_and_complete_layers() {
        let map = memmap2::MmapMut::map_anon(64).unwrap();
        let layer = SharedLayer::complete(map, 32);
        assert_eq!(layer.all().map(|a| a.len()), Some(64));
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            layer.rows_mut();
        }))
        .is_err());
        let layer = SharedLayer::new(memmap2::MmapMut::map_anon(64).unwrap(), 32);
        let mut rows = layer.rows_mut();
        rows.row_mut(0).fill(9);
        rows.row_mut(1).fill(7);
        rows.publish(2);
        drop(rows);
        assert_eq!(layer.all().unwrap()[31..33], [9, 7]);
    }
}
