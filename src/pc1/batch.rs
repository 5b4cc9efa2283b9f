//! PC1 for several sectors at once: groups of interleaved sectors, one hashing thread per
//! group, each on its own CPU (see [`crate::sdr::batch`]). Layers are written to each
//! sector's own files and journal exactly as the single-sector path writes them.

use std::sync::Arc;

use anyhow::{Context, Result};
use memmap2::{Mmap, MmapMut};

use super::{layer_file, prepare_sector, reuse, write_later, Pc1Options, Pc1Sector, SharedJournal};
use crate::buffer::anon_buffer;
use crate::durable::Syncer;
use crate::progress::step;
use crate::sdr::batch::{deinterleave, interleave, label_group, GroupJob, MAX_GROUP};
use crate::sdr::parent_cache::ParentCache;

/// Whether what a batch holds in memory (two interleaved layers per sector, and tree_d
/// buffers on their way to disk) fits in 70% of the memory available now.
pub fn fits_in_memory(sectors: &[Pc1Sector]) -> bool {
    // Two interleaved layers, and tree_d buffers (2× the sector) waiting to be written.
    let need: u64 = sectors.iter().map(|s| 4 * s.proof.sector_size()).sum();
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024);
    let fits = need <= available / 10 * 7;
    if !fits {
        eprintln!(
            "{}: a batch of {} sectors needs {} MiB of memory, {} MiB are available; sealing them one after another",
            crate::cli::tool_name(),
            sectors.len(),
            need >> 20,
            available >> 20
        );
    }
    fits
}

/// Splits `n` sectors into groups for `threads` hashing threads: at least one group per
/// thread, at most [`MAX_GROUP`] sectors per group, sizes as even as possible.
pub fn group_sizes(n: usize, threads: usize) -> Vec<usize> {
    let groups = n.div_ceil(MAX_GROUP).max(threads.min(n)).max(1);
    (0..groups)
        .map(|g| n / groups + usize::from(g < n % groups))
        .collect()
}

pub fn seal_batch(sectors: &[Pc1Sector], parents: &ParentCache, opts: &Pc1Options) -> Result<()> {
    let syncer = Syncer::new();
    let journals: Vec<SharedJournal> = sectors
        .iter()
        .map(|s| prepare_sector(s, opts, &syncer))
        .collect::<Result<_>>()?;
    let proof = sectors[0].proof;
    let nodes = proof.nodes() as usize;
    let threads = opts.cpus.len().max(1);
    let sizes = group_sizes(sectors.len(), threads);
    let mut starts = vec![0usize];
    for s in &sizes {
        starts.push(starts.last().expect("non-empty") + s);
    }
    let groups: Vec<std::ops::Range<usize>> = starts.windows(2).map(|w| w[0]..w[1]).collect();

    let mut prev: Vec<Arc<Mmap>> = Vec::new();
    for layer in 1..=proof.layers() {
        let name = layer_file(layer);
        let mut outs: Vec<MmapMut> = Vec::with_capacity(groups.len());
        let mut computed = vec![false; groups.len()];
        for (g, range) in groups.iter().enumerate() {
            let lanes = range.len();
            let mut reusable = true;
            for i in range.clone() {
                reusable &= reuse(
                    &journals[i].lock().expect("journal lock"),
                    &sectors[i].cache,
                    &name,
                )?;
            }
            let mut buf = anon_buffer(nodes * lanes * 32)?;
            if reusable {
                for (lane, i) in range.clone().enumerate() {
                    let path = sectors[i].cache.join(&name);
                    let f = crate::fsutil::open_regular_read(&path)
                        .with_context(|| format!("opening {}", path.display()))?;
                    interleave(&unsafe { Mmap::map(&f)? }, lanes, lane, &mut buf);
                }
            } else {
                computed[g] = true;
            }
            outs.push(buf);
        }

        let bar = crate::progress::bytes(
            Some(nodes as u64),
            &format!("PC1 batch layer {layer}/{}", proof.layers()),
        );
        step(
            opts.verbose,
            &format!("batch layer {layer} ({} groups: {sizes:?})", groups.len()),
            || {
                // Groups run `threads` at a time, each pinned to its own CPU.
                let pending: Vec<usize> = (0..groups.len()).filter(|&g| computed[g]).collect();
                let mut outs_iter: Vec<Option<&mut MmapMut>> = outs.iter_mut().map(Some).collect();
                for round in pending.chunks(threads) {
                    std::thread::scope(|scope| {
                        for (k, &g) in round.iter().enumerate() {
                            let out = outs_iter[g].take().expect("each group once");
                            let rids: Vec<[u8; 32]> =
                                groups[g].clone().map(|i| sectors[i].replica_id).collect();
                            let prev_g = prev.get(g).map(|m| &m[..]);
                            let cpu = opts.cpus.get(k).copied();
                            let bar = &bar;
                            scope.spawn(move || {
                                let job = GroupJob {
                                    replica_ids: &rids,
                                    layer: layer as u32,
                                    parents,
                                    prev: prev_g,
                                    cpu,
                                    progress: &|n| {
                                        if k == 0 {
                                            bar.set_position(n)
                                        }
                                    },
                                };
                                label_group(&job, out);
                            });
                        }
                    });
                }
                Ok(())
            },
        )?;
        bar.finish_and_clear();

        // The files are written by the syncer while the next layer is labeled.
        let done: Vec<Arc<Mmap>> = outs
            .into_iter()
            .map(|m| m.make_read_only().map(Arc::new))
            .collect::<std::io::Result<_>>()?;
        step(
            opts.verbose,
            &format!("batch layer {layer}: queueing files"),
            || {
                for (g, range) in groups.iter().enumerate() {
                    if !computed[g] {
                        continue;
                    }
                    for (lane, i) in range.clone().enumerate() {
                        let s = &sectors[i];
                        journals[i].lock().expect("journal lock").forget(&name);
                        let group = Arc::clone(&done[g]);
                        let lanes = range.len();
                        let fill = move |chunk: &mut [u8], off: u64| {
                            let first = off as usize / 32 * lanes * 32;
                            deinterleave(
                                &group[first..first + chunk.len() * lanes],
                                lanes,
                                lane,
                                chunk,
                            )
                        };
                        let path = s.cache.join(&name);
                        write_later(
                            &syncer,
                            path,
                            nodes as u64 * 32,
                            fill,
                            &journals[i],
                            &s.cache,
                        );
                    }
                }
                Ok(())
            },
        )?;
        prev = done;
    }
    step(opts.verbose, "waiting for files to reach the disk", || {
        syncer.finish()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups() {
        assert_eq!(super::group_sizes(4, 2), vec![2, 2]);
        assert_eq!(super::group_sizes(2, 2), vec![1, 1]);
        assert_eq!(super::group_sizes(3, 2), vec![2, 1]);
        assert_eq!(super::group_sizes(9, 2), vec![3, 3, 3]);
        assert_eq!(super::group_sizes(4, 8), vec![1, 1, 1, 1]);
        assert_eq!(super::group_sizes(5, 1), vec![3, 2]);
    }
}
