//! PC1 for several sectors at once: groups of interleaved sectors, one hashing thread per
//! group, each on its own CPU (see [`crate::sdr::batch`]). Layers are written to each
//! sector's own files and journal exactly as the single-sector path writes them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, ensure, Context, Result};
use memmap2::Mmap;

use super::{
    layer_file, open_sector, prepare_data, prepare_sector, record_committed, reuse, stream,
    Pc1Options, Pc1Sector, SharedJournal,
};
use crate::buffer::{anon_buffer, anon_buffer_on, Pages};
use crate::durable::{PendingFile, Syncer};
use crate::hash::sha256_engine::Engine;
use crate::progress::step;
use crate::sdr::batch::{
    deinterleave_lanes, group_engine, interleave, label_group, label_group_fed, label_group_shared,
    max_group, GroupJob, MAX_CHAINS,
};
use crate::sdr::parent_cache::ParentCache;
use crate::sdr::shared_layer::SharedLayer;
use crate::sector::proof::SealProof;

/// What the in-memory batch holds at its peak: two interleaved layers per sector while the
/// last layer is labeled; while the first layer is labeled, its buffers and at most two tree_d
/// buffers (2× the sector each: one being written, one just built; [`prepare_all`] waits for
/// the one before), so `sectors + 4` sectors' worth with few sectors.
pub fn in_memory_need(sectors: &[Pc1Sector]) -> u64 {
    let n = sectors.len() as u64;
    let size = sectors.first().map_or(0, |s| s.proof.sector_size());
    size * (2 * n).max(n + 4)
}

/// The default memory budget: 70% of the memory available now.
pub fn default_budget() -> u64 {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024);
    available / 10 * 7
}

/// Memory one sector takes while a streamed batch labels it: its layer being labeled
/// (interleaved with its group's) and its share of the reader's buffers.
pub fn streamed_lane_bytes(proof: SealProof) -> u64 {
    proof.sector_size() + stream::ring_bytes(proof.nodes() as usize, 1)
}

/// The least budget a streamed batch of `proof` sectors runs in: one sector labeling, or
/// one sector's tree_d buffer (2× the sector) while it is prepared, whichever is larger.
pub fn streamed_minimum(proof: SealProof) -> u64 {
    streamed_lane_bytes(proof).max((2 * proof.nodes() - 1) * 32)
}

/// How many sectors of `proof` a streamed batch labels at once within `budget`, or why it
/// cannot run.
pub fn streamed_at_once(proof: SealProof, n: usize, budget: u64) -> Result<usize> {
    let min = streamed_minimum(proof);
    ensure!(
        budget >= min,
        "a memory budget of {} is below the {} that PC1 of a {} sector needs at least",
        show(budget),
        show(min),
        proof
    );
    Ok(((budget / streamed_lane_bytes(proof)) as usize).clamp(1, n))
}

/// Splits `n` sectors into groups for `threads` hashing threads: at least one group per
/// thread, at most `max` sectors per group ([`max_group`]: 16 with AVX-512, 4 on SHA-NI),
/// sizes as even as possible.
pub fn group_sizes(n: usize, threads: usize, max: usize) -> Vec<usize> {
    let groups = n.div_ceil(max).max(threads.min(n)).max(1);
    (0..groups)
        .map(|g| n / groups + usize::from(g < n % groups))
        .collect()
}

/// The group sizes of a batch of `n` on `threads` hashing threads: groups as wide as the
/// vector engine when every such group is wide enough to run on it ([`group_engine`]), else
/// groups of SHA-NI chains.
pub fn plan_groups(n: usize, threads: usize) -> Vec<usize> {
    let wide = group_sizes(n, threads, max_group());
    if wide
        .iter()
        .all(|&g| g <= MAX_CHAINS || group_engine(g) != Engine::ShaNi)
    {
        wide
    } else {
        group_sizes(n, threads, MAX_CHAINS)
    }
}

/// Seals a batch whose layers fit in memory. Labels do not depend on the sectors' data, so
/// the replica copies and tree_d ([`prepare_all`]) run on a thread beside the first layer's
/// labeling, where their reads and writes wait on the disk rather than on the hashing cores.
/// Layer files have a writer of their own (`layer_writer`) that follows each layer's
/// labeling as it goes, the first layer's too: queued behind the data's files on one
/// writer, the first layer's files would be written during the second layer's labeling,
/// whose expander gathers over the whole previous layer suffer most from a writer's
/// streaming beside them.
pub fn seal_batch(sectors: &[Pc1Sector], parents: &ParentCache, opts: &Pc1Options) -> Result<()> {
    let syncer = Syncer::new();
    let layer_writer = Syncer::new();
    let journals: Vec<SharedJournal> = sectors.iter().map(open_sector).collect::<Result<_>>()?;
    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let preparing = scope.spawn(|| {
            let r = prepare_all(sectors, &journals, opts, &syncer);
            if r.is_err() {
                // The labeling stops early: its output is thrown away.
                failed.store(true, Ordering::Relaxed);
            }
            r
        });
        label_layers(
            sectors,
            &journals,
            parents,
            opts,
            &layer_writer,
            &failed,
            preparing,
        )
    })?;
    step(opts.verbose, "waiting for files to reach the disk", || {
        syncer.finish().and(layer_writer.finish())
    })
}

/// Each sector's replica file and tree_d, one sector after another. At most two tree_d
/// buffers are in use, one being built and one being written: each sector's files are
/// queued, then the previous sector's are waited for, and its buffer serves the next.
fn prepare_all(
    sectors: &[Pc1Sector],
    journals: &[SharedJournal],
    opts: &Pc1Options,
    syncer: &Syncer,
) -> Result<()> {
    let mut previous: Option<(std::sync::mpsc::Receiver<()>, Arc<Mmap>)> = None;
    let mut spare = None;
    for (s, journal) in sectors.iter().zip(journals) {
        let buffer = prepare_data(s, opts, syncer, journal, spare.take())?;
        if let Some((written, before)) = previous.take() {
            // Closed if the writer failed; `syncer.finish()` reports why.
            written.recv().ok();
            // The writers are done with the earlier sector's buffer: the next one reuses it.
            spare = Arc::try_unwrap(before).ok().and_then(|m| m.make_mut().ok());
        }
        previous = Some((syncer.marker(), buffer));
    }
    Ok(())
}

/// The layers of an in-memory batch, each layer's files written by `layer_writer` behind
/// its labeling; `preparing` (the [`prepare_all`] thread, which sets `failed` when it
/// fails, and the labeling and the writing of its layer then stop) is joined once the first
/// layer is labeled. The first layer's files are committed only once every sector's data
/// checked out: a batch whose data fails keeps no layer of any sector.
fn label_layers(
    sectors: &[Pc1Sector],
    journals: &[SharedJournal],
    parents: &ParentCache,
    opts: &Pc1Options,
    layer_writer: &Syncer,
    failed: &AtomicBool,
    preparing: std::thread::ScopedJoinHandle<'_, Result<()>>,
) -> Result<()> {
    let mut preparing = Some(preparing);
    let proof = sectors[0].proof;
    let nodes = proof.nodes() as usize;
    let threads = opts.cpus.len().max(1);
    let sizes = plan_groups(sectors.len(), threads);
    let mut starts = vec![0usize];
    for s in &sizes {
        starts.push(starts.last().expect("non-empty") + s);
    }
    let groups: Vec<std::ops::Range<usize>> = starts.windows(2).map(|w| w[0]..w[1]).collect();

    let mut prev: Vec<Arc<SharedLayer>> = Vec::new();
    let (data_checked, first_layer_gate) = std::sync::mpsc::channel::<()>();
    let mut first_layer_gate = Some(first_layer_gate);
    for layer in 1..=proof.layers() {
        let name = layer_file(layer);
        let mut bufs: Vec<Arc<SharedLayer>> = Vec::with_capacity(groups.len());
        let mut computed = vec![false; groups.len()];
        let mut pages = Vec::new();
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
            let (mut buf, on) = anon_buffer_on(nodes * lanes * 32)?;
            pages.push(on);
            bufs.push(Arc::new(if reusable {
                for (lane, i) in range.clone().enumerate() {
                    let path = sectors[i].cache.join(&name);
                    let f = crate::fsutil::open_regular_read(&path)
                        .with_context(|| format!("opening {}", path.display()))?;
                    interleave(&unsafe { Mmap::map(&f)? }, lanes, lane, &mut buf);
                }
                SharedLayer::complete(buf, lanes * 32)
            } else {
                computed[g] = true;
                SharedLayer::new(buf, lanes * 32)
            }));
        }
        let files = LayerFiles {
            name: &name,
            nodes,
            groups: &groups,
            computed: &computed,
            layers: &bufs,
        };
        files.queue(sectors, journals, layer_writer, first_layer_gate.take());

        if opts.verbose {
            let reserved = pages.iter().filter(|&&p| p == Pages::Reserved).count();
            eprintln!(
                "{}: batch layer {layer}: {reserved} of {} group buffers on {}",
                crate::cli::tool_name(),
                pages.len(),
                Pages::Reserved.describe()
            );
        }
        let bar = crate::progress::bytes(
            Some(nodes as u64),
            &format!("PC1 batch layer {layer}/{}", proof.layers()),
        );
        let started = std::time::Instant::now();
        let engines: Vec<String> = sizes
            .iter()
            .map(|&n| format!("{n} on {}", group_engine(n).name()))
            .collect();
        step(
            opts.verbose,
            &format!(
                "batch layer {layer} ({} groups: {})",
                groups.len(),
                engines.join(", ")
            ),
            || {
                // Groups run `threads` at a time, each pinned to its own CPU.
                let pending: Vec<usize> = (0..groups.len()).filter(|&g| computed[g]).collect();
                for round in pending.chunks(threads) {
                    std::thread::scope(|scope| {
                        for (k, &g) in round.iter().enumerate() {
                            let out = &bufs[g];
                            let rids: Vec<[u8; 32]> =
                                groups[g].clone().map(|i| sectors[i].replica_id).collect();
                            let prev_g = prev
                                .get(g)
                                .map(|m| m.all().expect("the previous layer is complete"));
                            let cpu = opts.cpus.get(k).copied();
                            let bar = &bar;
                            scope.spawn(move || {
                                let job = GroupJob {
                                    replica_ids: &rids,
                                    layer: layer as u32,
                                    parents,
                                    prev: prev_g,
                                    cpu,
                                    stop: Some(failed),
                                    progress: &|n| {
                                        if k == 0 {
                                            bar.set_position(n)
                                        }
                                    },
                                };
                                label_group_shared(&job, out);
                            });
                        }
                    });
                }
                Ok(())
            },
        )?;
        bar.finish_and_clear();
        if opts.verbose {
            // Labels of layer 1 cost 20 compressions (header, 18 parent blocks, final block),
            // as do those of later layers; node 0 is negligible.
            let labeled: usize = groups
                .iter()
                .enumerate()
                .filter(|(g, _)| computed[*g])
                .map(|(_, r)| r.len())
                .sum();
            eprintln!(
                "{}: batch layer {layer}: {:.1} M SHA-256 compressions/s",
                crate::cli::tool_name(),
                20.0 * (labeled * nodes) as f64 / started.elapsed().as_secs_f64() / 1e6
            );
        }

        if let Some(p) = preparing.take() {
            p.join()
                .map_err(|_| anyhow!("the thread preparing the sectors' data panicked"))??;
            data_checked.send(()).ok();
        }
        prev = bufs;
    }
    Ok(())
}

/// One layer's files of an in-memory batch: every sector of the groups that labeled it.
struct LayerFiles<'a> {
    name: &'a str,
    nodes: usize,
    groups: &'a [std::ops::Range<usize>],
    computed: &'a [bool],
    layers: &'a [Arc<SharedLayer>],
}

impl LayerFiles<'_> {
    /// Queues the writing of the files on `syncer`: all of them side by side, each chunk of
    /// every sector's file cut from its group's rows in one pass, as soon as the labeling
    /// has made those rows final ([`SharedLayer::wait_rows`]). Each sector's journal forgets
    /// the file now and records it once it is committed: after `gate` gets its message, if
    /// given; the files are removed if it closes instead.
    fn queue(
        &self,
        sectors: &[Pc1Sector],
        journals: &[SharedJournal],
        syncer: &Syncer,
        gate: Option<std::sync::mpsc::Receiver<()>>,
    ) {
        let mut paths = Vec::new();
        let mut owners = Vec::new();
        let mut parts = Vec::new();
        for (g, range) in self.groups.iter().enumerate() {
            if !self.computed[g] {
                continue;
            }
            for i in range.clone() {
                journals[i].lock().expect("journal lock").forget(self.name);
                paths.push(sectors[i].cache.join(self.name));
                owners.push((Arc::clone(&journals[i]), sectors[i].cache.clone()));
            }
            parts.push((Arc::clone(&self.layers[g]), range.len()));
        }
        if paths.is_empty() {
            return;
        }
        let len = self.nodes as u64 * 32;
        syncer.submit(move || {
            let fill = |chunks: &mut [&mut [u8]], off: u64| -> Result<()> {
                let first = off as usize / 32;
                let end = first + chunks[0].len() / 32;
                let mut at = 0;
                for (layer, lanes) in &parts {
                    let rows = layer.wait_rows(end)?;
                    let which: Vec<usize> = (0..*lanes).collect();
                    deinterleave_lanes(
                        &rows[first * layer.stride()..],
                        *lanes,
                        &which,
                        &mut chunks[at..at + lanes],
                    );
                    at += lanes;
                }
                Ok(())
            };
            let files = PendingFile::write_streamed_set(paths, len, fill)?;
            if gate.is_some_and(|g| g.recv().is_err()) {
                files.into_iter().for_each(PendingFile::discard);
                bail!("the batch's data did not check out: its first layer is not kept");
            }
            for (file, (journal, cache)) in files.into_iter().zip(owners) {
                record_committed(file, &journal, &cache)?;
            }
            Ok(())
        });
    }
}

/// A size for messages: KiB below a MiB, else MiB.
fn show(b: u64) -> String {
    if b < 1 << 20 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
    }
}

/// A batch whose layers do not fit in the memory budget: sectors are prepared one at a time
/// (one tree_d buffer at a time), then labeled `at_once` at a time ([`streamed_at_once`]),
/// in groups as [`plan_groups`] forms them, each group on its own thread through all its
/// layers. A group holds only the layer it labels; each finished layer goes to the sectors'
/// files before the next is labeled, and the next reads its expander parents back from them
/// ([`stream`]). Memory: the budget; disk reads: 8 parents per node per sector per layer ≥ 2.
pub fn seal_batch_streamed(
    sectors: &[Pc1Sector],
    parents: &ParentCache,
    opts: &Pc1Options,
    at_once: usize,
) -> Result<()> {
    let mut journals = Vec::with_capacity(sectors.len());
    for s in sectors {
        let syncer = Syncer::new();
        journals.push(prepare_sector(s, opts, &syncer)?);
        syncer.finish()?;
    }
    let threads = opts.cpus.len().max(1);
    let indices: Vec<usize> = (0..sectors.len()).collect();
    for round in indices.chunks(at_once.max(1)) {
        let mut groups = Vec::new();
        let mut first = round[0];
        for n in plan_groups(round.len(), threads) {
            groups.push(first..first + n);
            first += n;
        }
        if opts.verbose {
            let sizes: Vec<String> = groups
                .iter()
                .map(|g| format!("{} on {}", g.len(), group_engine(g.len()).name()))
                .collect();
            eprintln!(
                "{}: streamed batch: sectors {}..{} ({} groups: {}), previous layers read from files",
                crate::cli::tool_name(),
                round[0] + 1,
                round[round.len() - 1] + 1,
                groups.len(),
                sizes.join(", ")
            );
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .iter()
                .enumerate()
                .map(|(k, range)| {
                    let group = Group {
                        sectors: &sectors[range.clone()],
                        journals: &journals[range.clone()],
                        parents,
                        cpu: (!opts.cpus.is_empty()).then(|| opts.cpus[k % opts.cpus.len()]),
                        verbose: opts.verbose,
                    };
                    scope.spawn(move || group.seal())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a group's thread does not panic"))
                .collect::<Result<Vec<()>>>()
        })?;
    }
    Ok(())
}

/// One group of a streamed batch.
struct Group<'a> {
    sectors: &'a [Pc1Sector],
    journals: &'a [SharedJournal],
    parents: &'a ParentCache,
    cpu: Option<usize>,
    verbose: bool,
}

impl Group<'_> {
    /// Labels every layer of the group's sectors, resuming from their journals: a layer is
    /// labeled unless every sector has it; then only the sectors lacking it are written.
    fn seal(&self) -> Result<()> {
        let proof = self.sectors[0].proof;
        let nodes = proof.nodes() as usize;
        let lanes = self.sectors.len();
        let rids: Vec<[u8; 32]> = self.sectors.iter().map(|s| s.replica_id).collect();
        let mut buf = anon_buffer(nodes * lanes * 32)?;
        for layer in 1..=proof.layers() {
            let name = layer_file(layer);
            let mut todo = Vec::new();
            for (i, s) in self.sectors.iter().enumerate() {
                if !reuse(
                    &self.journals[i].lock().expect("journal lock"),
                    &s.cache,
                    &name,
                )? {
                    todo.push(i);
                }
            }
            if todo.is_empty() {
                continue;
            }
            let job = GroupJob {
                replica_ids: &rids,
                layer: layer as u32,
                parents: self.parents,
                prev: None,
                cpu: self.cpu,
                stop: None,
                progress: &|_| {},
            };
            let started = std::time::Instant::now();
            if layer == 1 {
                label_group(&job, &mut buf);
            } else {
                let maps = self.previous_layer(layer - 1)?;
                let prev: Vec<&[u8]> = maps.iter().map(|m| &m[..]).collect();
                let (mut feed, reader) = stream::feed(&prev, self.parents, nodes);
                std::thread::scope(|scope| {
                    scope.spawn(reader);
                    label_group_fed(&job, &mut buf, Some(&mut feed));
                    // Lets the reader go if it waits for a buffer back.
                    drop(feed);
                });
            }
            if self.verbose {
                let secs = started.elapsed().as_secs_f64();
                let reads = if layer == 1 { 0 } else { 8 * lanes * nodes };
                eprintln!(
                    "{}: streamed group of {lanes}, layer {layer}: {:.1} M SHA-256 compressions/s, {:.1} M parent reads/s from layer {} files",
                    crate::cli::tool_name(),
                    20.0 * (lanes * nodes) as f64 / secs / 1e6,
                    reads as f64 / secs / 1e6,
                    layer - 1
                );
            }
            // Written now, before the next layer reads it back: the sectors lacking it, side
            // by side in one pass over the group's rows.
            for &i in &todo {
                self.journals[i].lock().expect("journal lock").forget(&name);
            }
            let paths = todo
                .iter()
                .map(|&i| self.sectors[i].cache.join(&name))
                .collect();
            let files =
                PendingFile::write_streamed_set(paths, nodes as u64 * 32, |chunks, off| {
                    let first = off as usize / 32 * lanes * 32;
                    let rows = &buf[first..first + chunks[0].len() * lanes];
                    deinterleave_lanes(rows, lanes, &todo, chunks);
                    Ok(())
                })?;
            for (file, &i) in files.into_iter().zip(&todo) {
                record_committed(file, &self.journals[i], &self.sectors[i].cache)?;
            }
        }
        Ok(())
    }

    /// Maps layer `layer` of every sector of the group.
    fn previous_layer(&self, layer: usize) -> Result<Vec<Mmap>> {
        self.sectors
            .iter()
            .map(|s| {
                let path = s.cache.join(layer_file(layer));
                let f = crate::fsutil::open_regular_read(&path)
                    .with_context(|| format!("opening {}", path.display()))?;
                // SAFETY: the layer file is committed and ours (the sector lock is held);
                // nothing writes it while it is mapped.
                unsafe { Mmap::map(&f) }.with_context(|| format!("mapping {}", path.display()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    /// Two layers per sector, or the first layer and two tree_d buffers (2 × the sector
    /// each) with fewer than four sectors.
    #[test]
    fn in_memory_need_counts_two_layers_and_two_tree_d_buffers() {
        use super::{in_memory_need, Pc1Sector};
        use crate::sector::proof::SealProof;
        let of = |n: usize| {
            let sectors: Vec<Pc1Sector> = (0..n)
                .map(|_| Pc1Sector {
                    proof: SealProof::from_name("StackedDrg512MiBV1_1").unwrap(),
                    replica_id: [0; 32],
                    comm_d: [0; 32],
                    unsealed: "u".into(),
                    sealed: "s".into(),
                    cache: "c".into(),
                })
                .collect();
            in_memory_need(&sectors)
        };
        let mib = 1u64 << 20;
        assert_eq!(of(16), 16 * 2 * 512 * mib);
        assert_eq!(of(4), 8 * 512 * mib);
        assert_eq!(of(2), 6 * 512 * mib);
        assert_eq!(of(0), 0);
    }

    #[test]
    fn groups() {
        use super::group_sizes;
        assert_eq!(group_sizes(4, 2, 4), vec![2, 2]);
        assert_eq!(group_sizes(2, 2, 4), vec![1, 1]);
        assert_eq!(group_sizes(3, 2, 4), vec![2, 1]);
        assert_eq!(group_sizes(9, 2, 4), vec![3, 3, 3]);
        assert_eq!(group_sizes(4, 8, 4), vec![1, 1, 1, 1]);
        assert_eq!(group_sizes(5, 1, 4), vec![3, 2]);
        // AVX-512: 16 lanes per core.
        assert_eq!(group_sizes(32, 2, 16), vec![16, 16]);
        assert_eq!(group_sizes(16, 1, 16), vec![16]);
        assert_eq!(group_sizes(17, 1, 16), vec![9, 8]);
        assert_eq!(group_sizes(4, 2, 16), vec![2, 2]);
        // Wide groups only when every group fills the vector well enough.
        if crate::sdr::batch::max_group() == 16 && !crate::hash::sha256_engine::forced() {
            assert_eq!(super::plan_groups(32, 2), vec![16, 16]);
            assert_eq!(super::plan_groups(26, 2), vec![13, 13]);
            assert_eq!(super::plan_groups(16, 2), vec![4, 4, 4, 4]);
        }
    }
}
