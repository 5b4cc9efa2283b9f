//! The Lotus resource table: what one task of a given type and sector size
//! needs from a worker, plus the env/config override rules.
//!
//! Values are the defaults of Lotus `storiface/resources.go`
//! (docs/lotus-scheduler.md#default-resource-table); the override naming and precedence
//! follow `ParseResourceEnv` (docs/lotus-scheduler.md#resource-overrides)
//! so an operator's existing worker environment keeps working unchanged.

use super::task_type::TaskType;

/// One KiB, MiB and GiB in bytes.
pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// The sector sizes Lotus has table entries for, smallest first.
pub const SECTOR_SIZES: [u64; 5] = [2 * KIB, 8 * MIB, 512 * MIB, 32 * GIB, 64 * GIB];

/// Suffixes of the override variables, in `Resources` field order
/// (docs/lotus-scheduler.md#resource-fields).
pub const FIELDS: [&str; 7] = [
    "MIN_MEMORY",
    "MAX_MEMORY",
    "GPU_UTILIZATION",
    "MAX_PARALLELISM",
    "MAX_PARALLELISM_GPU",
    "BASE_MIN_MEMORY",
    "MAX_CONCURRENT",
];

const F_MAX_PARALLELISM: usize = 3;

/// Lotus `ParallelNum/ParallelDenom`: a "multithread" task may use 92% of the
/// worker's logical cores, leaving a little room for the OS and small tasks.
const PARALLEL_NUM: u64 = 92;
const PARALLEL_DENOM: u64 = 100;

/// What one task needs from a worker (Lotus `storiface.Resources`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Resources {
    /// RAM that must be physically free for decent performance.
    pub min_memory: u64,
    /// Peak memory, may be served from RAM + swap.
    pub max_memory: u64,
    /// Fraction of GPUs used (1.0 = one whole GPU).
    pub gpu_utilization: f64,
    /// CPU threads without a GPU; `-1` = the 92% rule; `0` = free in CPU accounting.
    pub max_parallelism: i64,
    /// Threads when a GPU is used; `0` = same as `max_parallelism`.
    pub max_parallelism_gpu: i64,
    /// Memory shared between instances (parameters). Checked at admission,
    /// never summed (see `admission::Allocation::add`).
    pub base_min_memory: u64,
    /// Per-worker limit on tasks of this (type, size); 0 = no limit.
    pub max_concurrent: u32,
}

impl Resources {
    /// A task that needs nothing (Lotus gives this to tasks with no table
    /// entry, e.g. Finalize, and to unknown sector sizes).
    pub const ZERO: Resources = Resources {
        min_memory: 0,
        max_memory: 0,
        gpu_utilization: 0.0,
        max_parallelism: 0,
        max_parallelism_gpu: 0,
        base_min_memory: 0,
        max_concurrent: 0,
    };

    /// A batch of `n` sectors run as one task (a PC1 batch, `sealing.pc1_batch`): `n`
    /// sectors' memory, one task's threads, GPU and shared parameters.
    pub fn batch_of(&self, n: u32) -> Resources {
        let n = u64::from(n.max(1));
        Resources {
            min_memory: self.min_memory.saturating_mul(n),
            max_memory: self.max_memory.saturating_mul(n),
            ..*self
        }
    }

    /// Lotus `Threads(wcpus, gpus)` (docs/lotus-scheduler.md#threads): the CPU threads this task
    /// takes on a worker with `wcpus` logical cores and `gpus` GPUs.
    ///
    /// * A GPU task on a worker that has a GPU uses `max_parallelism_gpu`
    ///   when that is set (PC2/C2 32G: 6 threads instead of 92% of the box).
    /// * `-1` means "multithread": floor(wcpus × 92 / 100), or all cores when
    ///   that rounds to 0 (a 1-core worker). Any other negative value is
    ///   treated the same way instead of wrapping to a huge number as a Go
    ///   `uint64(-2)` would, which would make the task unschedulable.
    /// * On a GPU-less worker a GPU task is accounted as a CPU task, which is
    ///   why C2 there takes 92% of the cores.
    pub fn threads(&self, wcpus: u32, gpus: usize) -> u32 {
        let mut mp = self.max_parallelism;
        if self.gpu_utilization > 0.0 && gpus > 0 && self.max_parallelism_gpu != 0 {
            mp = self.max_parallelism_gpu;
        }
        if mp < 0 {
            let t = (u64::from(wcpus) * PARALLEL_NUM / PARALLEL_DENOM) as u32;
            if t == 0 {
                wcpus
            } else {
                t
            }
        } else {
            u32::try_from(mp).unwrap_or(u32::MAX)
        }
    }
}

/// Lotus short size string used in env names (`32G`, not `32GiB`).
/// Returns `None` for sizes Lotus has no table entry for.
pub fn size_short(sector_size: u64) -> Option<&'static str> {
    size_index(sector_size).map(|i| ["2K", "8M", "512M", "32G", "64G"][i])
}

/// Position of `sector_size` in [`SECTOR_SIZES`].
pub fn size_index(sector_size: u64) -> Option<usize> {
    SECTOR_SIZES.iter().position(|&s| s == sector_size)
}

/// Builds a table row; MaxConcurrent is 0 for every Lotus default.
const fn row(min: u64, max: u64, mp: i64, mpg: i64, gpu: f64, base: u64) -> Resources {
    Resources {
        min_memory: min,
        max_memory: max,
        gpu_utilization: gpu,
        max_parallelism: mp,
        max_parallelism_gpu: mpg,
        base_min_memory: base,
        max_concurrent: 0,
    }
}

/// The Lotus default resources for `task` at `sector_size`
/// (docs/lotus-scheduler.md#default-resource-table).
///
/// * Unseal has no measurements in Lotus and aliases the PC1 entry.
/// * Finalize has no entry at all, so it needs nothing (zero resources).
/// * Fetch (GET) is 1 MiB and free in CPU accounting at every size.
/// * PC1 is 1 thread here; the multicore-SDR thread rule depends on the
///   worker's environment and is applied by [`ResourceTable::from_env`].
/// * Unknown sector sizes get zero resources, as Lotus's map lookup does.
pub fn default_resources(task: TaskType, sector_size: u64) -> Resources {
    let Some(si) = size_index(sector_size) else {
        return Resources::ZERO;
    };
    // Per size: 2K, 8M, 512M, 32G, 64G.
    let small = [2 * KIB, 8 * MIB];
    match task {
        TaskType::AddPiece => match si {
            0 | 1 => row(small[si], small[si], 1, 0, 0.0, small[si]),
            2 => row(GIB, GIB, 1, 0, 0.0, GIB),
            3 => row(4 * GIB, 4 * GIB, 1, 0, 0.0, GIB),
            _ => row(8 * GIB, 8 * GIB, 1, 0, 0.0, GIB),
        },
        TaskType::PreCommit1 | TaskType::Unseal => match si {
            0 | 1 => row(small[si], small[si], 1, 0, 0.0, small[si]),
            2 => row(768 * MIB, GIB, 1, 0, 0.0, MIB),
            3 => row(56 * GIB, 64 * GIB, 1, 0, 0.0, 10 * MIB),
            _ => row(112 * GIB, 128 * GIB, 1, 0, 0.0, 10 * MIB),
        },
        TaskType::PreCommit2 => match si {
            0 | 1 => row(small[si], small[si], -1, 0, 0.0, small[si]),
            // No GPU for 512M PC2 in Lotus.
            2 => row(GIB, 3 * GIB / 2, -1, 0, 0.0, GIB),
            3 => row(15 * GIB, 15 * GIB, -1, 6, 1.0, GIB),
            _ => row(30 * GIB, 30 * GIB, -1, 6, 1.0, GIB),
        },
        // PR1 and PR2 are "copied from" Commit1 and Commit2 (docs/snap-deals.md#lotus-resource-table).
        TaskType::Commit1 | TaskType::ProveReplicaUpdate1 => match si {
            0 | 1 => row(small[si], small[si], 0, 0, 0.0, small[si]),
            _ => row(GIB, GIB, 0, 0, 0.0, GIB),
        },
        TaskType::Commit2 | TaskType::ProveReplicaUpdate2 => match si {
            0 | 1 => row(small[si], small[si], 1, 0, 1.0, small[si]),
            2 => row(GIB, 3 * GIB / 2, 1, 0, 1.0, 10 * GIB),
            3 => row(30 * GIB, 150 * GIB, -1, 6, 1.0, 32 * GIB),
            _ => row(60 * GIB, 190 * GIB, -1, 6, 1.0, 64 * GIB),
        },
        TaskType::Fetch => row(MIB, MIB, 0, 0, 0.0, 0),
        TaskType::Finalize => Resources::ZERO,
        // docs/snap-deals.md#lotus-resource-table: RU "copied from addpiece" (GSK aliases
        // it), with a GPU.
        TaskType::ReplicaUpdate | TaskType::RegenSectorKey => match si {
            0 | 1 => row(small[si], small[si], 1, 0, 1.0, small[si]),
            2 => row(GIB, GIB, 1, 0, 1.0, GIB),
            3 => row(4 * GIB, 4 * GIB, 1, 6, 1.0, GIB),
            _ => row(8 * GIB, 8 * GIB, 1, 6, 1.0, GIB),
        },
        // No entry in Lotus: needs nothing.
        TaskType::FinalizeReplicaUpdate => Resources::ZERO,
    }
}

/// Where a table value came from; decides which later override may replace it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// Lotus default.
    Default,
    /// Derived from the environment but not an explicit override
    /// (the multicore-SDR PC1/UNS thread count).
    Derived,
    /// Set by a config-file key.
    Config,
    /// Set by an explicit environment variable; nothing replaces it.
    Env,
}

const NT: usize = TaskType::ALL.len();
const NS: usize = SECTOR_SIZES.len();
const NF: usize = FIELDS.len();

/// The resources of every (task type, sector size), after overrides.
///
/// Precedence, highest first: explicit env var (`<SHORT>_<SIZE>_<FIELD>`,
/// then `<SHORT>_<FIELD>`), config key (same two forms), the derived
/// multicore-SDR thread count, the Lotus default. The provenance of every
/// field is kept so the result is the same whichever of
/// [`ResourceTable::with_overrides`] and [`ResourceTable::with_env`] is
/// applied first.
#[derive(Clone, Debug)]
pub struct ResourceTable {
    entries: [[Resources; NS]; NT],
    source: [[[Source; NF]; NS]; NT],
}

impl Default for ResourceTable {
    fn default() -> Self {
        ResourceTable::defaults()
    }
}

/// How a config/env string is parsed for one field; errors name the variable.
fn set_field(r: &mut Resources, field: usize, name: &str, value: &str) -> Result<(), String> {
    let v = value.trim();
    let bad = |what: &str| format!("invalid resource override {name}={value:?}: expected {what}");
    match field {
        0 => r.min_memory = v.parse().map_err(|_| bad("a whole number of bytes"))?,
        1 => r.max_memory = v.parse().map_err(|_| bad("a whole number of bytes"))?,
        2 => {
            let g: f64 = v.parse().map_err(|_| bad("a number of GPUs, e.g. 0.5"))?;
            if !g.is_finite() || g < 0.0 {
                return Err(bad("a non-negative number of GPUs"));
            }
            r.gpu_utilization = g;
        }
        3 => {
            r.max_parallelism = v
                .parse()
                .map_err(|_| bad("an integer thread count (-1 = 92% of cores)"))?
        }
        4 => r.max_parallelism_gpu = v.parse().map_err(|_| bad("an integer thread count"))?,
        5 => r.base_min_memory = v.parse().map_err(|_| bad("a whole number of bytes"))?,
        _ => r.max_concurrent = v.parse().map_err(|_| bad("a non-negative task count"))?,
    }
    Ok(())
}

/// Lotus `getSDRThreads`: with `FIL_PROOFS_USE_MULTICORE_SDR=1`, PC1 runs
/// `producers + 1` threads (producers default 3), otherwise 1.
fn sdr_threads(lookup: &dyn Fn(&str) -> Option<String>) -> Result<i64, String> {
    if lookup("FIL_PROOFS_USE_MULTICORE_SDR").as_deref() != Some("1") {
        return Ok(1);
    }
    let producers = match lookup("FIL_PROOFS_MULTICORE_SDR_PRODUCERS") {
        None => 3,
        Some(v) => v.trim().parse::<u32>().map_err(|_| {
            format!(
                "invalid FIL_PROOFS_MULTICORE_SDR_PRODUCERS={v:?}: expected a whole number of producer threads"
            )
        })?,
    };
    Ok(i64::from(producers) + 1)
}

impl ResourceTable {
    /// The Lotus defaults, no overrides.
    pub fn defaults() -> ResourceTable {
        let mut entries = [[Resources::ZERO; NS]; NT];
        for t in TaskType::ALL {
            for (si, &size) in SECTOR_SIZES.iter().enumerate() {
                entries[t.index()][si] = default_resources(t, size);
            }
        }
        ResourceTable {
            entries,
            source: [[[Source::Default; NF]; NS]; NT],
        }
    }

    /// Lotus `ParseResourceEnv` on top of the defaults: for every table
    /// entry and field, `<SHORT>_<SIZE>_<FIELD>` first, then
    /// `<SHORT>_<FIELD>`, then the default. Same as
    /// `ResourceTable::defaults().with_env(lookup)`.
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<ResourceTable, String> {
        ResourceTable::defaults().with_env(lookup)
    }

    /// Applies environment overrides to this table (see [`ResourceTable::from_env`]).
    ///
    /// * Env wins over everything, including config keys (a worker's env
    ///   is the most specific knob an operator has; Lotus reads it on the
    ///   worker itself, docs/lotus-scheduler.md#resource-overrides).
    /// * Finalize and FinalizeReplicaUpdate have no table entry in Lotus, so
    ///   `FIN_*` and `FRU_*` variables are ignored exactly as `ParseResourceEnv`
    ///   ignores them.
    /// * PC1 and UNS `MAX_PARALLELISM` with no env or config override gets
    ///   the multicore-SDR thread count (Lotus `getSDRThreads`,
    ///   docs/lotus-scheduler.md#pc1-threads): 4 threads with `FIL_PROOFS_USE_MULTICORE_SDR=1`.
    /// * A value that does not parse is an error naming the variable.
    pub fn with_env(
        mut self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ResourceTable, String> {
        let mut sdr: Option<i64> = None;
        for t in TaskType::ALL {
            if !t.has_resource_entry() {
                continue;
            }
            for (si, &size) in SECTOR_SIZES.iter().enumerate() {
                let size_name = size_short(size).unwrap_or_default();
                for (fi, field) in FIELDS.iter().enumerate() {
                    let specific = format!("{}_{}_{}", t.short(), size_name, field);
                    let generic = format!("{}_{}", t.short(), field);
                    let found = match lookup(&specific) {
                        Some(v) => Some((specific, v)),
                        None => lookup(&generic).map(|v| (generic, v)),
                    };
                    let (ti, src) = (t.index(), self.source[t.index()][si][fi]);
                    match found {
                        Some((name, value)) => {
                            set_field(&mut self.entries[ti][si], fi, &name, &value)?;
                            self.source[ti][si][fi] = Source::Env;
                        }
                        None if fi == F_MAX_PARALLELISM
                            && matches!(t, TaskType::PreCommit1 | TaskType::Unseal)
                            && src == Source::Default =>
                        {
                            let threads = match sdr {
                                Some(n) => n,
                                None => *sdr.insert(sdr_threads(lookup)?),
                            };
                            self.entries[ti][si].max_parallelism = threads;
                            self.source[ti][si][fi] = Source::Derived;
                        }
                        None => {}
                    }
                }
            }
        }
        Ok(self)
    }

    /// Config-file overrides, keys in the env form `<SHORT>[_<SIZE>]_<FIELD>`
    /// (`PC1_32G_MAX_CONCURRENT`, `C2_MIN_MEMORY`).
    ///
    /// * Within the config a size-specific key beats a generic one whatever
    ///   their order in `overrides`; for duplicate keys the later one wins.
    /// * Config is applied under env: a field already set by an env var is
    ///   left alone, and a later [`ResourceTable::with_env`] replaces config
    ///   values. So "env overrides config" holds in either call order.
    /// * A config key does replace the derived multicore-SDR PC1 thread count.
    /// * Unlike env vars (silently ignored by Lotus when they match no table
    ///   entry), a config key that names no table entry is an error, since
    ///   a typo in a config file should not be silently dropped. This
    ///   includes `FIN_*`: Finalize has no entry and stays non-overridable.
    pub fn with_overrides(
        mut self,
        overrides: &[(String, String)],
    ) -> Result<ResourceTable, String> {
        let mut parsed = Vec::with_capacity(overrides.len());
        for (key, value) in overrides {
            let (t, si, fi) = parse_key(key)?;
            parsed.push((t, si, fi, key.as_str(), value.as_str()));
        }
        // Generic keys first, then size-specific ones on top.
        for specific_pass in [false, true] {
            for &(t, si, fi, key, value) in &parsed {
                if si.is_some() != specific_pass {
                    continue;
                }
                let sizes: Vec<usize> = match si {
                    Some(s) => vec![s],
                    None => (0..NS).collect(),
                };
                for s in sizes {
                    let ti = t.index();
                    if self.source[ti][s][fi] == Source::Env {
                        continue;
                    }
                    set_field(&mut self.entries[ti][s], fi, key, value)?;
                    self.source[ti][s][fi] = Source::Config;
                }
            }
        }
        Ok(self)
    }

    /// The resources of `task` at `sector_size`; zero for unknown sizes
    /// and for Finalize.
    pub fn get(&self, task: TaskType, sector_size: u64) -> Resources {
        match size_index(sector_size) {
            Some(si) => self.entries[task.index()][si],
            None => Resources::ZERO,
        }
    }
}

/// Splits `<SHORT>[_<SIZE>]_<FIELD>` into (task, size index, field index).
fn parse_key(key: &str) -> Result<(TaskType, Option<usize>, usize), String> {
    let upper = key.trim().to_ascii_uppercase();
    let bad = |why: &str| format!("invalid resource override key {key:?}: {why}");
    let (short, rest) = upper
        .split_once('_')
        .ok_or_else(|| bad("expected <TASK>[_<SIZE>]_<FIELD>, e.g. PC1_32G_MAX_CONCURRENT"))?;
    let task = TaskType::parse(short).ok_or_else(|| bad("unknown task type"))?;
    if !task.has_resource_entry() {
        return Err(format!(
            "invalid resource override key {key:?}: {} has no resource table entry in Lotus and cannot be overridden",
            task.short()
        ));
    }
    let (size, field) = match rest.split_once('_') {
        Some((s, f)) if SECTOR_SIZES.iter().any(|&z| size_short(z) == Some(s)) => (
            SECTOR_SIZES.iter().position(|&z| size_short(z) == Some(s)),
            f,
        ),
        _ => (None, rest),
    };
    let fi = FIELDS
        .iter()
        .position(|f| *f == field)
        .ok_or_else(|| bad("unknown field (MIN_MEMORY, MAX_MEMORY, GPU_UTILIZATION, MAX_PARALLELISM, MAX_PARALLELISM_GPU, BASE_MIN_MEMORY, MAX_CONCURRENT)"))?;
    Ok((task, size, fi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    /// The table with config overrides then the environment, and the other way round.
    fn both_orders(
        e: &impl Fn(&str) -> Option<String>,
        c: &[(String, String)],
    ) -> [ResourceTable; 2] {
        [
            ResourceTable::defaults()
                .with_overrides(c)
                .unwrap()
                .with_env(e)
                .unwrap(),
            ResourceTable::from_env(e)
                .unwrap()
                .with_overrides(c)
                .unwrap(),
        ]
    }

    fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const G32: u64 = 32 * GIB;

    #[test]
    fn threads_92_percent_examples() {
        let r = default_resources(TaskType::PreCommit2, 512 * MIB); // MP -1, no GPU
        for (cpus, want) in [(12, 11), (16, 14), (24, 22), (32, 29), (64, 58), (128, 117)] {
            assert_eq!(r.threads(cpus, 0), want, "{cpus} cpus");
        }
    }

    #[test]
    fn threads_one_cpu_falls_back_to_all_cores() {
        let r = default_resources(TaskType::Commit2, G32);
        assert_eq!(r.threads(1, 0), 1);
        assert_eq!(r.threads(0, 0), 0);
    }

    #[test]
    fn threads_gpu_uses_max_parallelism_gpu() {
        let c2 = default_resources(TaskType::Commit2, G32);
        assert_eq!(c2.threads(64, 1), 6);
        // GPU-less worker: accounted as a CPU task, 92% rule.
        assert_eq!(c2.threads(64, 0), 58);
        // GPU task with MPG 0 inherits MP.
        let c2_small = default_resources(TaskType::Commit2, 512 * MIB);
        assert_eq!(c2_small.threads(64, 2), 1);
        // Not a GPU task: MPG ignored even on a GPU worker.
        let mut r = default_resources(TaskType::PreCommit2, 512 * MIB);
        r.max_parallelism_gpu = 6;
        assert_eq!(r.threads(64, 1), 58);
        // Fixed and free thread counts.
        assert_eq!(
            default_resources(TaskType::PreCommit1, G32).threads(64, 0),
            1
        );
        assert_eq!(default_resources(TaskType::Commit1, G32).threads(64, 0), 0);
    }

    #[test]
    fn size_short_names() {
        let names: Vec<_> = SECTOR_SIZES
            .iter()
            .map(|&s| size_short(s).unwrap())
            .collect();
        assert_eq!(names, ["2K", "8M", "512M", "32G", "64G"]);
        assert_eq!(size_short(4 * GIB), None);
    }

    #[test]
    fn default_table_spot_checks() {
        let pc1 = default_resources(TaskType::PreCommit1, G32);
        assert_eq!(
            (pc1.min_memory, pc1.max_memory, pc1.base_min_memory),
            (56 << 30, 64 << 30, 10 << 20)
        );
        assert_eq!(
            (pc1.max_parallelism, pc1.gpu_utilization, pc1.max_concurrent),
            (1, 0.0, 0)
        );

        let c2 = default_resources(TaskType::Commit2, G32);
        assert_eq!(
            (c2.min_memory, c2.max_memory, c2.base_min_memory),
            (30 << 30, 150 << 30, 32 << 30)
        );
        assert_eq!(
            (
                c2.gpu_utilization,
                c2.max_parallelism,
                c2.max_parallelism_gpu
            ),
            (1.0, -1, 6)
        );

        let c2_64 = default_resources(TaskType::Commit2, 64 * GIB);
        assert_eq!(
            (c2_64.min_memory, c2_64.max_memory, c2_64.base_min_memory),
            (60 << 30, 190 << 30, 64 << 30)
        );

        let pc2_512 = default_resources(TaskType::PreCommit2, 512 * MIB);
        assert_eq!(pc2_512.gpu_utilization, 0.0);
        assert_eq!((pc2_512.min_memory, pc2_512.max_memory), (1 << 30, 3 << 29));

        let pc2_32 = default_resources(TaskType::PreCommit2, G32);
        assert_eq!(
            (
                pc2_32.min_memory,
                pc2_32.gpu_utilization,
                pc2_32.max_parallelism_gpu
            ),
            (15 << 30, 1.0, 6)
        );

        let ap2k = default_resources(TaskType::AddPiece, 2048);
        assert_eq!(
            (
                ap2k.min_memory,
                ap2k.max_memory,
                ap2k.base_min_memory,
                ap2k.max_parallelism
            ),
            (2048, 2048, 2048, 1)
        );

        let ap64 = default_resources(TaskType::AddPiece, 64 * GIB);
        assert_eq!((ap64.min_memory, ap64.base_min_memory), (8 << 30, 1 << 30));

        let pc1_512 = default_resources(TaskType::PreCommit1, 512 * MIB);
        assert_eq!(
            (
                pc1_512.min_memory,
                pc1_512.max_memory,
                pc1_512.base_min_memory
            ),
            (768 << 20, 1 << 30, 1 << 20)
        );

        let c1 = default_resources(TaskType::Commit1, 8 * MIB);
        assert_eq!(
            (c1.min_memory, c1.base_min_memory, c1.max_parallelism),
            (8 << 20, 8 << 20, 0)
        );

        let c2_8m = default_resources(TaskType::Commit2, 8 * MIB);
        assert_eq!((c2_8m.gpu_utilization, c2_8m.max_parallelism), (1.0, 1));

        for s in SECTOR_SIZES {
            let get = default_resources(TaskType::Fetch, s);
            assert_eq!(
                (
                    get.min_memory,
                    get.max_memory,
                    get.max_parallelism,
                    get.base_min_memory
                ),
                (1 << 20, 1 << 20, 0, 0)
            );
            assert_eq!(
                default_resources(TaskType::Unseal, s),
                default_resources(TaskType::PreCommit1, s)
            );
            assert_eq!(default_resources(TaskType::Finalize, s), Resources::ZERO);
            // docs/snap-deals.md#lotus-resource-table: RU from AddPiece (with a GPU), GSK =
            // RU, PR1 = C1, PR2 = C2; FRU has no entry.
            let ru = default_resources(TaskType::ReplicaUpdate, s);
            let ap = default_resources(TaskType::AddPiece, s);
            assert_eq!(
                (
                    ru.min_memory,
                    ru.max_memory,
                    ru.max_parallelism,
                    ru.gpu_utilization
                ),
                (ap.min_memory, ap.max_memory, 1, 1.0)
            );
            assert_eq!(default_resources(TaskType::RegenSectorKey, s), ru);
            assert_eq!(
                default_resources(TaskType::ProveReplicaUpdate1, s),
                default_resources(TaskType::Commit1, s)
            );
            assert_eq!(
                default_resources(TaskType::ProveReplicaUpdate2, s),
                default_resources(TaskType::Commit2, s)
            );
            assert_eq!(
                default_resources(TaskType::FinalizeReplicaUpdate, s),
                Resources::ZERO
            );
            for t in TaskType::ALL {
                assert_eq!(default_resources(t, s).max_concurrent, 0);
            }
        }
        assert_eq!(
            default_resources(TaskType::PreCommit1, 16 * GIB),
            Resources::ZERO
        );
    }

    #[test]
    fn table_defaults_match_function() {
        let t = ResourceTable::defaults();
        for task in TaskType::ALL {
            for s in SECTOR_SIZES {
                assert_eq!(t.get(task, s), default_resources(task, s));
            }
        }
        assert_eq!(t.get(TaskType::AddPiece, 1000), Resources::ZERO);
    }

    #[test]
    fn env_size_specific_beats_generic_beats_default() {
        let e = env(&[
            ("PC1_32G_MAX_CONCURRENT", "4"),
            ("PC1_MAX_CONCURRENT", "7"),
            ("C2_MIN_MEMORY", "1234"),
            ("UNS_2K_MAX_PARALLELISM", "3"),
        ]);
        let t = ResourceTable::from_env(&e).unwrap();
        assert_eq!(t.get(TaskType::PreCommit1, G32).max_concurrent, 4);
        assert_eq!(t.get(TaskType::PreCommit1, 64 * GIB).max_concurrent, 7);
        assert_eq!(t.get(TaskType::PreCommit1, 2048).max_concurrent, 7);
        assert_eq!(t.get(TaskType::Commit2, G32).min_memory, 1234);
        assert_eq!(t.get(TaskType::Commit2, G32).max_memory, 150 << 30);
        assert_eq!(t.get(TaskType::Unseal, 2048).max_parallelism, 3);
        assert_eq!(t.get(TaskType::PreCommit1, 2048).max_parallelism, 1);
        assert_eq!(
            t.get(TaskType::AddPiece, G32),
            default_resources(TaskType::AddPiece, G32)
        );
    }

    #[test]
    fn env_parses_every_field_kind() {
        let e = env(&[
            ("PC2_32G_GPU_UTILIZATION", "0.5"),
            ("PC2_32G_MAX_PARALLELISM", "-1"),
            ("PC2_32G_MAX_PARALLELISM_GPU", "12"),
            ("PC2_32G_BASE_MIN_MEMORY", "0"),
            ("PC2_32G_MAX_MEMORY", " 42 "),
        ]);
        let r = ResourceTable::from_env(&e)
            .unwrap()
            .get(TaskType::PreCommit2, G32);
        assert_eq!(
            (r.gpu_utilization, r.max_parallelism, r.max_parallelism_gpu),
            (0.5, -1, 12)
        );
        assert_eq!((r.base_min_memory, r.max_memory), (0, 42));
    }

    #[test]
    fn snap_deal_tasks_take_lotus_overrides_but_fru_does_not() {
        let e = env(&[
            ("RU_32G_MAX_CONCURRENT", "2"),
            ("PR2_64G_GPU_UTILIZATION", "0.5"),
            ("GSK_MAX_CONCURRENT", "1"),
            ("FRU_MIN_MEMORY", "99"),
        ]);
        let t = ResourceTable::from_env(&e).unwrap();
        assert_eq!(t.get(TaskType::ReplicaUpdate, G32).max_concurrent, 2);
        assert_eq!(t.get(TaskType::ReplicaUpdate, 64 * GIB).max_concurrent, 0);
        assert_eq!(
            t.get(TaskType::ProveReplicaUpdate2, 64 * GIB)
                .gpu_utilization,
            0.5
        );
        assert_eq!(t.get(TaskType::RegenSectorKey, G32).max_concurrent, 1);
        assert_eq!(t.get(TaskType::FinalizeReplicaUpdate, G32), Resources::ZERO);
        let err = ResourceTable::defaults()
            .with_overrides(&cfg(&[("FRU_MIN_MEMORY", "1")]))
            .unwrap_err();
        assert!(err.contains("FRU has no resource table entry"), "{err}");
    }

    #[test]
    fn env_bad_value_names_the_variable() {
        let err = ResourceTable::from_env(&env(&[("PC1_32G_MIN_MEMORY", "56GiB")])).unwrap_err();
        assert!(err.contains("PC1_32G_MIN_MEMORY"), "{err}");
        assert!(!err.contains('\n'));
        let err = ResourceTable::from_env(&env(&[("C2_GPU_UTILIZATION", "lots")])).unwrap_err();
        assert!(err.contains("C2_GPU_UTILIZATION"), "{err}");
        let err = ResourceTable::from_env(&env(&[("AP_MAX_CONCURRENT", "-2")])).unwrap_err();
        assert!(err.contains("AP_MAX_CONCURRENT"), "{err}");
    }

    #[test]
    fn env_finalize_is_not_overridable() {
        let t = ResourceTable::from_env(&env(&[
            ("FIN_MIN_MEMORY", "1"),
            ("FIN_32G_MAX_CONCURRENT", "x"),
        ]))
        .unwrap();
        assert_eq!(t.get(TaskType::Finalize, G32), Resources::ZERO);
    }

    #[test]
    fn env_multicore_sdr_gives_pc1_four_threads() {
        let t = ResourceTable::from_env(&env(&[("FIL_PROOFS_USE_MULTICORE_SDR", "1")])).unwrap();
        for s in SECTOR_SIZES {
            assert_eq!(t.get(TaskType::PreCommit1, s).max_parallelism, 4);
            assert_eq!(t.get(TaskType::Unseal, s).max_parallelism, 4);
        }
        assert_eq!(t.get(TaskType::PreCommit1, G32).threads(64, 0), 4);
        assert_eq!(t.get(TaskType::AddPiece, G32).max_parallelism, 1);

        let t = ResourceTable::from_env(&env(&[
            ("FIL_PROOFS_USE_MULTICORE_SDR", "1"),
            ("FIL_PROOFS_MULTICORE_SDR_PRODUCERS", "5"),
            ("PC1_64G_MAX_PARALLELISM", "2"),
        ]))
        .unwrap();
        assert_eq!(t.get(TaskType::PreCommit1, G32).max_parallelism, 6);
        assert_eq!(t.get(TaskType::PreCommit1, 64 * GIB).max_parallelism, 2);

        // Without the switch (or with another value) PC1 stays at 1 thread.
        let t = ResourceTable::from_env(&env(&[("FIL_PROOFS_USE_MULTICORE_SDR", "0")])).unwrap();
        assert_eq!(t.get(TaskType::PreCommit1, G32).max_parallelism, 1);

        let err = ResourceTable::from_env(&env(&[
            ("FIL_PROOFS_USE_MULTICORE_SDR", "1"),
            ("FIL_PROOFS_MULTICORE_SDR_PRODUCERS", "three"),
        ]))
        .unwrap_err();
        assert!(err.contains("FIL_PROOFS_MULTICORE_SDR_PRODUCERS"), "{err}");
    }

    #[test]
    fn config_overrides_with_same_precedence() {
        let t = ResourceTable::defaults()
            .with_overrides(&cfg(&[
                ("PC1_32G_MAX_CONCURRENT", "2"),
                ("PC1_MAX_CONCURRENT", "9"),
            ]))
            .unwrap();
        assert_eq!(t.get(TaskType::PreCommit1, G32).max_concurrent, 2);
        assert_eq!(t.get(TaskType::PreCommit1, 64 * GIB).max_concurrent, 9);
        let t = ResourceTable::defaults()
            .with_overrides(&cfg(&[("ap_min_memory", "5"), ("AP_MIN_MEMORY", "6")]))
            .unwrap();
        assert_eq!(t.get(TaskType::AddPiece, G32).min_memory, 6);
    }

    #[test]
    fn env_wins_over_config_in_either_order() {
        let e = env(&[("PC1_MAX_CONCURRENT", "3")]);
        let c = cfg(&[
            ("PC1_32G_MAX_CONCURRENT", "8"),
            ("PC1_32G_MIN_MEMORY", "100"),
        ]);
        let [a, b] = both_orders(&e, &c);
        for t in [a, b] {
            let r = t.get(TaskType::PreCommit1, G32);
            assert_eq!(r.max_concurrent, 3);
            assert_eq!(r.min_memory, 100);
        }
    }

    #[test]
    fn config_thread_override_beats_multicore_sdr() {
        let e = env(&[("FIL_PROOFS_USE_MULTICORE_SDR", "1")]);
        let c = cfg(&[("PC1_MAX_PARALLELISM", "2")]);
        let [a, b] = both_orders(&e, &c);
        assert_eq!(a.get(TaskType::PreCommit1, G32).max_parallelism, 2);
        assert_eq!(b.get(TaskType::PreCommit1, G32).max_parallelism, 2);
        assert_eq!(a.get(TaskType::Unseal, G32).max_parallelism, 4);
    }

    #[test]
    fn config_bad_keys_and_values_are_errors() {
        for key in [
            "FIN_MIN_MEMORY",
            "PC3_MIN_MEMORY",
            "PC1_32G_MEMORY",
            "PC1",
            "PC1_16G_MIN_MEMORY",
        ] {
            let err = ResourceTable::defaults()
                .with_overrides(&cfg(&[(key, "1")]))
                .unwrap_err();
            assert!(err.contains(key), "{err}");
        }
        let err = ResourceTable::defaults()
            .with_overrides(&cfg(&[("C2_64G_GPU_UTILIZATION", "-1")]))
            .unwrap_err();
        assert!(err.contains("C2_64G_GPU_UTILIZATION"), "{err}");
    }
}
