//! Large in-memory buffers.

use anyhow::{Context, Result};
use memmap2::MmapMut;

/// Anonymous memory on transparent huge pages where the kernel allows: labeling and tree
/// building touch these buffers at random or sweep them whole, and 4 KiB pages would cost a
/// TLB miss or a page fault every 4 KiB.
pub fn anon_buffer(len: usize) -> Result<MmapMut> {
    let map = MmapMut::map_anon(len).context("allocating a buffer")?;
    #[cfg(target_os = "linux")]
    let _ = map.advise(memmap2::Advice::HugePage);
    Ok(map)
}
