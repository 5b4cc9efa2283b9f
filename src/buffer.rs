//! Large in-memory buffers.
//!
//! A buffer comes from the kernel's pool of reserved huge pages (`vm.nr_hugepages`, the
//! setup SupraSeal requires too) when the pool has room for all of it, else from ordinary
//! memory on transparent huge pages. The pool matters for the batch PC1's layer buffers
//! (8 GiB for 16 × 512MiB): a page the process touches for the first time must be found,
//! zeroed and, in a virtual machine, backed by the host, which measured 2.4–2.6 s per GiB
//! on our 2-core test VMs (a fifth of a batch's time), while pool pages stay backed from one
//! batch to the next (0.16 s per GiB measured there). `SEALKIT_HUGETLB=0` leaves the pool
//! alone, for hosts that keep it for something else.

use std::sync::OnceLock;

use anyhow::{Context, Result};
use memmap2::{MmapMut, MmapOptions};

/// Where a buffer's pages came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pages {
    /// The kernel's reserved huge-page pool (`MAP_HUGETLB`).
    Reserved,
    /// Ordinary memory, transparent huge pages advised.
    Transparent,
}

impl Pages {
    /// For messages.
    pub fn describe(self) -> &'static str {
        match self {
            Pages::Reserved => "reserved huge pages (vm.nr_hugepages)",
            Pages::Transparent => "transparent huge pages",
        }
    }
}

/// Anonymous memory of `len` bytes (see the module's doc for where from).
pub fn anon_buffer(len: usize) -> Result<MmapMut> {
    Ok(anon_buffer_on(len)?.0)
}

/// A buffer of at least `len` bytes: rounded up to whole pages of the reserved pool when the
/// pool has free pages, so that a buffer of any length can come from it (the caller uses
/// the first `len` bytes).
pub fn anon_buffer_at_least(len: usize) -> Result<MmapMut> {
    let len = pool_page_size().map_or(len, |page| len.next_multiple_of(page));
    anon_buffer(len)
}

/// [`anon_buffer`], and where its pages came from.
pub fn anon_buffer_on(len: usize) -> Result<(MmapMut, Pages)> {
    if let Some(page) = pool_page_size() {
        if len > 0 && len.is_multiple_of(page) {
            // The kernel reserves the pool's pages at mmap, so a pool too small fails here
            // (ENOMEM) rather than at a later page fault; then ordinary memory serves.
            if let Ok(map) = MmapOptions::new().len(len).huge(None).map_anon() {
                return Ok((map, Pages::Reserved));
            }
        }
    }
    let map = MmapMut::map_anon(len).context("allocating a buffer")?;
    #[cfg(target_os = "linux")]
    let _ = map.advise(memmap2::Advice::HugePage);
    Ok((map, Pages::Transparent))
}

/// The pool's page size when it has free pages and `SEALKIT_HUGETLB` does not forbid it.
fn pool_page_size() -> Option<usize> {
    static SIZE: OnceLock<Option<usize>> = OnceLock::new();
    if std::env::var("SEALKIT_HUGETLB").is_ok_and(|v| v == "0") {
        return None;
    }
    let size = *SIZE.get_or_init(|| {
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        meminfo_kib(&info, "Hugepagesize:").map(|k| k as usize * 1024)
    });
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    (meminfo_kib(&info, "HugePages_Free:")? > 0).then_some(size?)
}

/// The number after `key` in /proc/meminfo's text.
fn meminfo_kib(info: &str, key: &str) -> Option<u64> {
    info.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_meminfo() {
        let info = "MemTotal: 100 kB\nHugePages_Free:       7\nHugepagesize:       2048 kB\n";
        assert_eq!(meminfo_kib(info, "HugePages_Free:"), Some(7));
        assert_eq!(meminfo_kib(info, "Hugepagesize:"), Some(2048));
        assert_eq!(meminfo_kib(info, "Nope:"), None);
    }

    /// A buffer of one pool page comes from the pool exactly when it has a page free (the
    /// test machine's pool is usually empty: then ordinary memory), one of odd length never
    /// does, and either is zeroed and writable to its end.
    #[test]
    fn from_the_pool_when_it_has_room() {
        let page = pool_page_size();
        let len = page.unwrap_or(2 << 20);
        let (mut map, pages) = anon_buffer_on(len).unwrap();
        let want = if page.is_some() {
            Pages::Reserved
        } else {
            Pages::Transparent
        };
        assert_eq!(pages, want);
        assert_eq!(map.len(), len);
        assert!(map.iter().all(|&b| b == 0));
        map[len - 1] = 1;
        let (odd, pages) = anon_buffer_on(len + 32).unwrap();
        assert_eq!((odd.len(), pages), (len + 32, Pages::Transparent));
        let rounded = anon_buffer_at_least(len + 32).unwrap();
        assert_eq!(
            rounded.len(),
            if page.is_some() { 2 * len } else { len + 32 }
        );
    }
}
