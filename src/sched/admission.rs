//! Per-worker admission: may one more task run on this worker's budget?
//!
//! This is Lotus `ActiveResources` (`storage/sealer/sched_resources.go`,
//! docs/lotus-scheduler.md#admission): running sums of what is allocated plus `CanHandleRequest`
//! with its checks in the same order, so a refusal names the same limit an
//! operator would see in Lotus.

use std::collections::HashMap;
use std::fmt;

use super::resources::{Resources, GIB, KIB, MIB};
use super::task_type::TaskType;

/// Slack for summed GPU fractions: ten 0.1-GPU tasks must fit on one GPU
/// although 0.1 × 10 is not exactly 1.0 in binary floating point.
const GPU_EPSILON: f64 = 1e-9;

/// What a worker reports about its hardware (Lotus `WorkerResources`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WorkerInfo {
    /// Logical cores.
    pub cpus: u32,
    /// Total RAM in bytes.
    pub mem_physical: u64,
    /// Total swap in bytes (0 with `--no-swap`).
    pub mem_swap: u64,
    /// RAM used outside the scheduler's view (OS, other processes).
    pub mem_used: u64,
    /// Swap used outside the scheduler's view.
    pub mem_swap_used: u64,
    /// Number of GPUs.
    pub gpus: usize,
}

impl WorkerInfo {
    /// A worker's hardware with nothing used outside the scheduler (sizes in bytes).
    pub fn new(cpus: u32, mem_physical: u64, mem_swap: u64, gpus: usize) -> WorkerInfo {
        WorkerInfo {
            cpus,
            mem_physical,
            mem_swap,
            gpus,
            ..Default::default()
        }
    }
}

/// Running sums of what is allocated on one worker (one of: active,
/// preparing, or a window budget).
#[derive(Clone, Debug, Default)]
pub struct Allocation {
    /// Σ MinMemory of the allocated tasks.
    pub mem_used_min: u64,
    /// Σ MaxMemory of the allocated tasks.
    pub mem_used_max: u64,
    /// Σ GPU fractions (only on workers that have GPUs).
    pub gpu_used: f64,
    /// Σ threads.
    pub cpu_use: u32,
    /// Tasks per (type, sector size), for MaxConcurrent.
    pub counts: HashMap<(TaskType, u64), u32>,
}

/// Why a task does not fit on a worker's budget, in Lotus check order.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// `<SHORT>[_<SIZE>]_MAX_CONCURRENT` reached (the manual limit added for #6197).
    MaxConcurrent {
        task: TaskType,
        sector_size: u64,
        limit: u32,
        running: u32,
    },
    /// MinMemory + BaseMinMemory does not fit in physical RAM minus Σ MinMemory.
    PhysicalMemory { need: u64, free: u64 },
    /// MaxMemory + BaseMinMemory does not fit in RAM + swap minus the larger
    /// of Σ MaxMemory and the host's own usage.
    VirtualMemory { need: u64, free: u64 },
    /// Not enough CPU threads left.
    Threads { need: u32, free: u32 },
    /// Not enough GPU left (fractions of a GPU).
    Gpu { need: f64, free: f64 },
}

/// Human-readable bytes: `56.0 GiB`, `10.0 MiB`, `2.0 KiB`, `512 B`.
pub fn format_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes >= GIB {
        format!("{:.1} GiB", b / GIB as f64)
    } else if bytes >= MIB {
        format!("{:.1} MiB", b / MIB as f64)
    } else if bytes >= KIB {
        format!("{:.1} KiB", b / KIB as f64)
    } else {
        format!("{bytes} B")
    }
}

/// One line, as shown in waiting reasons and `sched-diag`-style output.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::MaxConcurrent {
                task,
                sector_size,
                limit,
                running,
            } => {
                let size = super::resources::size_short(*sector_size)
                    .map(str::to_string)
                    .unwrap_or_else(|| format_bytes(*sector_size));
                write!(
                    f,
                    "MaxConcurrent for {task} {size} reached: {running} of {limit} already placed"
                )
            }
            Refusal::PhysicalMemory { need, free } => write!(
                f,
                "not enough physical memory: needs {}, {} free",
                format_bytes(*need),
                format_bytes(*free)
            ),
            Refusal::VirtualMemory { need, free } => write!(
                f,
                "not enough virtual memory (RAM+swap): needs {}, {} free",
                format_bytes(*need),
                format_bytes(*free)
            ),
            Refusal::Threads { need, free } => {
                write!(f, "not enough CPU threads: needs {need}, {free} free")
            }
            Refusal::Gpu { need, free } => {
                write!(f, "not enough GPU: needs {need:.2}, {free:.2} free")
            }
        }
    }
}

/// The sums `can_handle` looks at, so the same check can run on an
/// allocation plus a hypothetical extra task without cloning it.
struct Sums {
    mem_used_min: u64,
    mem_used_max: u64,
    gpu_used: f64,
    cpu_use: u32,
    count: u32,
}

fn check(
    info: &WorkerInfo,
    s: &Sums,
    task: TaskType,
    sector_size: u64,
    r: &Resources,
) -> Result<(), Refusal> {
    // 1. MaxConcurrent (a limit of 0 means none).
    if r.max_concurrent > 0 && s.count >= r.max_concurrent {
        return Err(Refusal::MaxConcurrent {
            task,
            sector_size,
            limit: r.max_concurrent,
            running: s.count,
        });
    }
    // 2. Physical RAM: Lotus assumes the host's own usage can be swapped
    //    out, so only the scheduler's Σ MinMemory counts here. BaseMinMemory
    //    is needed once, so it is added to the request, not to the sums.
    let need = r.min_memory.saturating_add(r.base_min_memory);
    let free = info.mem_physical.saturating_sub(s.mem_used_min);
    if need > free {
        return Err(Refusal::PhysicalMemory { need, free });
    }
    // 3. Virtual memory: the host's own RAM+swap usage is a floor under
    //    Σ MaxMemory, not an addend (it may already include our tasks).
    let need = r.max_memory.saturating_add(r.base_min_memory);
    let used = s
        .mem_used_max
        .max(info.mem_used.saturating_add(info.mem_swap_used));
    let free = info
        .mem_physical
        .saturating_add(info.mem_swap)
        .saturating_sub(used);
    if need > free {
        return Err(Refusal::VirtualMemory { need, free });
    }
    // 4. CPU threads.
    let need = r.threads(info.cpus, info.gpus);
    if u64::from(s.cpu_use) + u64::from(need) > u64::from(info.cpus) {
        return Err(Refusal::Threads {
            need,
            free: info.cpus.saturating_sub(s.cpu_use),
        });
    }
    // 5. GPU, only when the worker has GPUs; on a GPU-less worker the task
    //    was already accounted as a CPU task by `threads`.
    if info.gpus > 0 && r.gpu_utilization > 0.0 {
        let total = info.gpus as f64;
        if s.gpu_used + r.gpu_utilization > total + GPU_EPSILON {
            return Err(Refusal::Gpu {
                need: r.gpu_utilization,
                free: (total - s.gpu_used).max(0.0),
            });
        }
    }
    Ok(())
}

fn ratio(used: f64, total: f64) -> f64 {
    if total > 0.0 {
        used / total
    } else if used > 0.0 {
        1.0
    } else {
        0.0
    }
}

impl Allocation {
    /// Adds one task. Like Lotus `ActiveResources.Add`, BaseMinMemory is
    /// NOT accumulated: it is memory shared between instances (parameters),
    /// and summing it per task made Lotus refuse workers with plenty of
    /// free RAM (#3056, #5004). GPU use is only counted on workers that have
    /// GPUs; elsewhere the task is a CPU task (its threads say so).
    pub fn add(&mut self, info: &WorkerInfo, task: TaskType, sector_size: u64, r: &Resources) {
        if info.gpus > 0 && r.gpu_utilization > 0.0 {
            self.gpu_used += r.gpu_utilization;
        }
        self.cpu_use = self.cpu_use.saturating_add(r.threads(info.cpus, info.gpus));
        self.mem_used_min = self.mem_used_min.saturating_add(r.min_memory);
        self.mem_used_max = self.mem_used_max.saturating_add(r.max_memory);
        *self.counts.entry((task, sector_size)).or_insert(0) += 1;
    }

    /// Removes one task added with the same arguments (saturating, so a
    /// stray double free cannot underflow the sums).
    pub fn free(&mut self, info: &WorkerInfo, task: TaskType, sector_size: u64, r: &Resources) {
        if info.gpus > 0 && r.gpu_utilization > 0.0 {
            self.gpu_used = (self.gpu_used - r.gpu_utilization).max(0.0);
            if self.gpu_used < GPU_EPSILON {
                self.gpu_used = 0.0;
            }
        }
        self.cpu_use = self.cpu_use.saturating_sub(r.threads(info.cpus, info.gpus));
        self.mem_used_min = self.mem_used_min.saturating_sub(r.min_memory);
        self.mem_used_max = self.mem_used_max.saturating_sub(r.max_memory);
        if let Some(n) = self.counts.get_mut(&(task, sector_size)) {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(&(task, sector_size));
            }
        }
    }

    /// How many tasks of (task, size) are allocated.
    pub fn count(&self, task: TaskType, sector_size: u64) -> u32 {
        self.counts.get(&(task, sector_size)).copied().unwrap_or(0)
    }

    /// True when nothing is allocated.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    fn sums(&self, task: TaskType, sector_size: u64, r: &Resources) -> Sums {
        Sums {
            mem_used_min: self.mem_used_min,
            mem_used_max: self.mem_used_max,
            gpu_used: self.gpu_used,
            cpu_use: self.cpu_use,
            count: if r.max_concurrent > 0 {
                self.count(task, sector_size)
            } else {
                0
            },
        }
    }

    /// Lotus `CanHandleRequest`, checks in Lotus order so the first limit
    /// hit is the one reported: MaxConcurrent, physical RAM
    /// (min+base ≤ phys − Σmin), virtual memory
    /// (max+base ≤ phys+swap − max(Σmax, memUsed+swapUsed)), CPU threads,
    /// GPU (only if the worker has GPUs).
    pub fn can_handle(
        &self,
        info: &WorkerInfo,
        task: TaskType,
        sector_size: u64,
        r: &Resources,
    ) -> Result<(), Refusal> {
        check(info, &self.sums(task, sector_size, r), task, sector_size, r)
    }

    /// `can_handle` for (task, r) as if `extra` had been added first,
    /// without modifying or cloning the allocation. The scheduler uses it
    /// to ask "would the reserved task still fit if this one ran too?".
    pub fn can_handle_with(
        &self,
        info: &WorkerInfo,
        extra: (TaskType, u64, &Resources),
        task: TaskType,
        sector_size: u64,
        r: &Resources,
    ) -> Result<(), Refusal> {
        let (et, es, er) = extra;
        let mut s = self.sums(task, sector_size, r);
        s.mem_used_min = s.mem_used_min.saturating_add(er.min_memory);
        s.mem_used_max = s.mem_used_max.saturating_add(er.max_memory);
        s.cpu_use = s.cpu_use.saturating_add(er.threads(info.cpus, info.gpus));
        if info.gpus > 0 && er.gpu_utilization > 0.0 {
            s.gpu_used += er.gpu_utilization;
        }
        if r.max_concurrent > 0 && (et, es) == (task, sector_size) {
            s.count += 1;
        }
        check(info, &s, task, sector_size, r)
    }

    /// Lotus utilization (docs/lotus-scheduler.md#utilization): the largest of CPU, physical
    /// memory, virtual memory and GPU use as a fraction of the worker. The host's own memory usage
    /// is a floor under the scheduler's sums. Above 1.0 when more than one capacity of work is
    /// placed (windows).
    pub fn utilization(&self, info: &WorkerInfo) -> f64 {
        let cpu = ratio(f64::from(self.cpu_use), f64::from(info.cpus));
        let mem_min = self.mem_used_min.max(info.mem_used);
        let phys = ratio(mem_min as f64, info.mem_physical as f64);
        let mem_max = self
            .mem_used_max
            .max(info.mem_used.saturating_add(info.mem_swap_used));
        let virt = ratio(
            mem_max as f64,
            info.mem_physical.saturating_add(info.mem_swap) as f64,
        );
        let gpu = if info.gpus > 0 {
            self.gpu_used / info.gpus as f64
        } else {
            0.0
        };
        cpu.max(phys).max(virt).max(gpu)
    }
}

#[cfg(test)]
mod tests {
    use super::super::resources::default_resources;
    use super::*;

    const G32: u64 = 32 * GIB;

    fn worker(cpus: u32, ram_gib: u64, swap_gib: u64, gpus: usize) -> WorkerInfo {
        WorkerInfo::new(cpus, ram_gib * GIB, swap_gib * GIB, gpus)
    }

    #[test]
    fn worked_32g_physical_and_virtual_needs() {
        // physical = Min+Base, virtual = Max+Base (docs/lotus-scheduler.md#admission); the
        // worked 32GiB needs are in docs/lotus-scheduler.md#default-resource-table.
        let cases = [
            (
                TaskType::PreCommit1,
                56 * GIB + 10 * MIB,
                64 * GIB + 10 * MIB,
            ),
            (TaskType::PreCommit2, 16 * GIB, 16 * GIB),
            (TaskType::Commit2, 62 * GIB, 182 * GIB),
            (TaskType::AddPiece, 5 * GIB, 5 * GIB),
        ];
        for (task, phys, virt) in cases {
            let r = default_resources(task, G32);
            // Exactly enough physical RAM and swap: fits.
            let mut w = worker(64, 0, 0, 1);
            w.mem_physical = phys;
            w.mem_swap = virt - phys;
            assert_eq!(
                Allocation::default().can_handle(&w, task, G32, &r),
                Ok(()),
                "{task}"
            );
            // One byte less physical RAM: refused on physical memory.
            w.mem_physical = phys - 1;
            w.mem_swap = virt;
            assert_eq!(
                Allocation::default().can_handle(&w, task, G32, &r),
                Err(Refusal::PhysicalMemory {
                    need: phys,
                    free: phys - 1
                }),
                "{task}"
            );
            // Enough RAM, one byte short of virtual: refused on virtual memory.
            if virt == phys {
                continue;
            }
            w.mem_physical = phys;
            w.mem_swap = virt - phys - 1;
            assert_eq!(
                Allocation::default().can_handle(&w, task, G32, &r),
                Err(Refusal::VirtualMemory {
                    need: virt,
                    free: virt - 1
                }),
                "{task}"
            );
        }
    }

    #[test]
    fn base_min_memory_is_not_accumulated() {
        let w = worker(64, 256, 64, 0);
        let pc1 = default_resources(TaskType::PreCommit1, G32);
        let mut a = Allocation::default();
        a.add(&w, TaskType::PreCommit1, G32, &pc1);
        a.add(&w, TaskType::PreCommit1, G32, &pc1);
        assert_eq!(a.mem_used_min, 112 * GIB);
        assert_eq!(a.mem_used_max, 128 * GIB);
        assert_eq!(a.cpu_use, 2);
        assert_eq!(a.count(TaskType::PreCommit1, G32), 2);
        // 256 GiB RAM + 64 GiB swap: four PC1 fit; the fifth needs
        // 56 GiB + 10 MiB but only 256 − 4×56 = 32 GiB is physically free.
        // Summing the 10 MiB base per task would refuse even earlier.
        a.add(&w, TaskType::PreCommit1, G32, &pc1);
        a.add(&w, TaskType::PreCommit1, G32, &pc1);
        assert_eq!(
            a.can_handle(&w, TaskType::PreCommit1, G32, &pc1),
            Err(Refusal::PhysicalMemory {
                need: 56 * GIB + 10 * MIB,
                free: 32 * GIB
            })
        );
        a.free(&w, TaskType::PreCommit1, G32, &pc1);
        assert_eq!(a.can_handle(&w, TaskType::PreCommit1, G32, &pc1), Ok(()));
    }

    #[test]
    fn refusals_come_in_lotus_order() {
        // Everything is short; MaxConcurrent is reported first.
        let mut r = default_resources(TaskType::Commit2, G32);
        r.max_concurrent = 1;
        let w = worker(4, 16, 0, 1);
        let mut a = Allocation::default();
        a.add(&w, TaskType::Commit2, G32, &r);
        assert!(matches!(
            a.can_handle(&w, TaskType::Commit2, G32, &r),
            Err(Refusal::MaxConcurrent {
                limit: 1,
                running: 1,
                ..
            })
        ));
        // Other size: a separate counter, so physical memory is next.
        let r64 = default_resources(TaskType::Commit2, 64 * GIB);
        assert!(matches!(
            a.can_handle(&w, TaskType::Commit2, 64 * GIB, &r64),
            Err(Refusal::PhysicalMemory { .. })
        ));
        // Physical fits, virtual does not.
        let w = worker(4, 100, 0, 1);
        assert_eq!(
            Allocation::default().can_handle(&w, TaskType::Commit2, G32, &r),
            Err(Refusal::VirtualMemory {
                need: 182 * GIB,
                free: 100 * GIB
            })
        );
        // Memory fits, threads do not (6 with a GPU, 4 cores).
        let w = worker(4, 100, 100, 1);
        assert_eq!(
            Allocation::default().can_handle(&w, TaskType::Commit2, G32, &r),
            Err(Refusal::Threads { need: 6, free: 4 })
        );
        // Threads fit, GPU does not.
        let w = worker(16, 400, 0, 1);
        let mut a = Allocation::default();
        let pc2 = default_resources(TaskType::PreCommit2, G32);
        a.add(&w, TaskType::PreCommit2, G32, &pc2);
        assert_eq!(
            a.can_handle(&w, TaskType::Commit2, G32, &r),
            Err(Refusal::Gpu {
                need: 1.0,
                free: 0.0
            })
        );
    }

    #[test]
    fn max_concurrent_counts_per_type_and_size() {
        let w = worker(64, 1024, 0, 0);
        let mut ap = default_resources(TaskType::AddPiece, G32);
        ap.max_concurrent = 2;
        let mut a = Allocation::default();
        a.add(&w, TaskType::AddPiece, G32, &ap);
        assert_eq!(a.can_handle(&w, TaskType::AddPiece, G32, &ap), Ok(()));
        a.add(&w, TaskType::AddPiece, G32, &ap);
        assert_eq!(
            a.can_handle(&w, TaskType::AddPiece, G32, &ap),
            Err(Refusal::MaxConcurrent {
                task: TaskType::AddPiece,
                sector_size: G32,
                limit: 2,
                running: 2
            })
        );
        let other = default_resources(TaskType::AddPiece, 2048);
        assert_eq!(a.can_handle(&w, TaskType::AddPiece, 2048, &other), Ok(()));
        a.free(&w, TaskType::AddPiece, G32, &ap);
        assert_eq!(a.can_handle(&w, TaskType::AddPiece, G32, &ap), Ok(()));
        a.free(&w, TaskType::AddPiece, G32, &ap);
        assert!(a.is_empty());
    }

    #[test]
    fn gpu_fractions() {
        let w = worker(64, 1024, 0, 1);
        let mut half = default_resources(TaskType::PreCommit2, G32);
        half.gpu_utilization = 0.5;
        let mut a = Allocation::default();
        assert_eq!(a.can_handle(&w, TaskType::PreCommit2, G32, &half), Ok(()));
        a.add(&w, TaskType::PreCommit2, G32, &half);
        assert_eq!(a.can_handle(&w, TaskType::PreCommit2, G32, &half), Ok(()));
        a.add(&w, TaskType::PreCommit2, G32, &half);
        assert_eq!(a.gpu_used, 1.0);
        assert_eq!(
            a.can_handle(&w, TaskType::PreCommit2, G32, &half),
            Err(Refusal::Gpu {
                need: 0.5,
                free: 0.0
            })
        );
        // Ten tenths fit on one GPU despite floating point.
        let mut tenth = half;
        tenth.gpu_utilization = 0.1;
        let mut a = Allocation::default();
        for i in 0..10 {
            assert_eq!(
                a.can_handle(&w, TaskType::PreCommit2, G32, &tenth),
                Ok(()),
                "tenth {i}"
            );
            a.add(&w, TaskType::PreCommit2, G32, &tenth);
        }
        assert!(a.can_handle(&w, TaskType::PreCommit2, G32, &tenth).is_err());
    }

    #[test]
    fn gpu_less_worker_accounts_gpu_task_as_cpu() {
        let w = worker(32, 512, 0, 0);
        let c2 = default_resources(TaskType::Commit2, G32);
        let mut a = Allocation::default();
        assert_eq!(a.can_handle(&w, TaskType::Commit2, G32, &c2), Ok(()));
        a.add(&w, TaskType::Commit2, G32, &c2);
        assert_eq!(a.gpu_used, 0.0);
        assert_eq!(a.cpu_use, 29);
        // The next C2 is refused on threads, never on GPU.
        let mut big = worker(32, 4096, 0, 0);
        big.mem_physical = 4096 * GIB;
        assert_eq!(
            a.can_handle(&big, TaskType::Commit2, G32, &c2),
            Err(Refusal::Threads { need: 29, free: 3 })
        );
    }

    #[test]
    fn host_usage_is_a_floor_in_virtual_check_only() {
        let mut w = worker(64, 128, 0, 0);
        w.mem_used = 100 * GIB;
        let pc1 = default_resources(TaskType::PreCommit1, G32);
        // Physical check ignores the host's 100 GiB (it can be swapped)...
        let a = Allocation::default();
        // ...but virtual: 128 - max(0, 100) = 28 GiB < 64 GiB + 10 MiB.
        assert_eq!(
            a.can_handle(&w, TaskType::PreCommit1, G32, &pc1),
            Err(Refusal::VirtualMemory {
                need: 64 * GIB + 10 * MIB,
                free: 28 * GIB
            })
        );
        w.mem_swap = 64 * GIB;
        assert_eq!(a.can_handle(&w, TaskType::PreCommit1, G32, &pc1), Ok(()));
    }

    #[test]
    fn can_handle_with_matches_add_then_check() {
        let w = worker(64, 256, 0, 1);
        let c2 = default_resources(TaskType::Commit2, G32);
        let ap = default_resources(TaskType::AddPiece, G32);
        let mut a = Allocation::default();
        a.add(&w, TaskType::AddPiece, G32, &ap);
        for _ in 0..3 {
            let with = a.can_handle_with(
                &w,
                (TaskType::AddPiece, G32, &ap),
                TaskType::Commit2,
                G32,
                &c2,
            );
            let mut b = a.clone();
            b.add(&w, TaskType::AddPiece, G32, &ap);
            assert_eq!(with, b.can_handle(&w, TaskType::Commit2, G32, &c2));
            a = b;
        }
    }

    #[test]
    fn utilization_is_max_of_four_ratios() {
        let mut w = worker(64, 256, 256, 2);
        let mut a = Allocation::default();
        assert_eq!(a.utilization(&w), 0.0);
        a.cpu_use = 16; // 0.25
        a.mem_used_min = 64 * GIB; // 0.25
        a.mem_used_max = 256 * GIB; // 0.5 of 512
        a.gpu_used = 0.5; // 0.25
        assert_eq!(a.utilization(&w), 0.5);
        a.gpu_used = 2.0;
        assert_eq!(a.utilization(&w), 1.0);
        a.gpu_used = 0.0;
        w.mem_used = 192 * GIB; // host usage floor: 0.75 physical
        assert_eq!(a.utilization(&w), 0.75);
    }

    #[test]
    fn refusal_display_is_one_line() {
        let r = Refusal::PhysicalMemory {
            need: 56 * GIB,
            free: 12 * GIB + 300 * MIB,
        };
        assert_eq!(
            r.to_string(),
            "not enough physical memory: needs 56.0 GiB, 12.3 GiB free"
        );
        let r = Refusal::MaxConcurrent {
            task: TaskType::PreCommit1,
            sector_size: G32,
            limit: 4,
            running: 4,
        };
        assert_eq!(
            r.to_string(),
            "MaxConcurrent for PC1 32G reached: 4 of 4 already placed"
        );
        assert_eq!(
            Refusal::Threads { need: 29, free: 3 }.to_string(),
            "not enough CPU threads: needs 29, 3 free"
        );
        assert_eq!(
            Refusal::Gpu {
                need: 1.0,
                free: 0.5
            }
            .to_string(),
            "not enough GPU: needs 1.00, 0.50 free"
        );
        assert_eq!(format_bytes(2048), "2.0 KiB");
        assert_eq!(format_bytes(512), "512 B");
    }
}
