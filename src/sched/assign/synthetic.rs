//! Synthetic load for benchmarks and smoke tests.

use super::{Busy, StoragePath, WorkerState, DEFAULT_WINDOWS};

use crate::sched::admission::WorkerInfo;
use crate::sched::queue::{QueuedTask, DEAL_SECTOR_PRIORITY};
use crate::sched::resources::{GIB, SECTOR_SIZES};
use crate::sched::task_type::TaskType;

/// Tiny deterministic xorshift64* generator (no dependencies).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// A deterministic cluster and queue for benchmarks and smoke tests, with
/// `now = 0.0`: `tasks` queued tasks of mixed types and sizes (2K..64G,
/// mostly 32G), about 20% deal sectors, most non-AP tasks located on some
/// worker's sealing path; `workers` workers of three kinds (PC1 boxes,
/// GPU PC2/C2 boxes, big all-rounders), a few disabled, each with some
/// busy tasks, one sealing path (some with AllowTo groups) and a shared
/// long-term path.
pub fn synthetic_load(
    tasks: usize,
    workers: usize,
    seed: u64,
) -> (Vec<QueuedTask>, Vec<WorkerState>, Vec<StoragePath>) {
    use TaskType::*;
    let mut rng = XorShift((seed ^ 0x9E37_79B9_7F4A_7C15) | 1);
    let mut paths = Vec::new();
    let n_store = (workers / 25).max(1);
    for i in 0..n_store {
        paths.push(StoragePath {
            id: format!("store-{i}"),
            can_seal: false,
            can_store: true,
            weight: 10,
            available: 4 << 50,
            groups: Vec::new(),
            allow_to: Vec::new(),
        });
    }
    let sizes = |rng: &mut XorShift| match rng.below(10) {
        0 => SECTOR_SIZES[0],
        1 => SECTOR_SIZES[1],
        2 => SECTOR_SIZES[2],
        3 => SECTOR_SIZES[4],
        _ => SECTOR_SIZES[3],
    };
    let mut ws = Vec::with_capacity(workers);
    let mut seal_paths = Vec::with_capacity(workers);
    for w in 0..workers {
        let group = format!("g{}", w % 4);
        let seal = paths.len();
        seal_paths.push(seal);
        paths.push(StoragePath {
            id: format!("seal-{w}"),
            can_seal: true,
            can_store: false,
            weight: 10,
            available: (2 + rng.below(6)) << 40,
            groups: vec![group.clone()],
            allow_to: if rng.below(4) == 0 {
                vec![group]
            } else {
                Vec::new()
            },
        });
        let (cpus, ram_gib, gpus, accepts): (u32, u64, usize, Vec<TaskType>) = match rng.below(10) {
            0..=4 => (
                64,
                512,
                0,
                vec![AddPiece, PreCommit1, Commit1, Finalize, Fetch, Unseal],
            ),
            5..=7 => (
                32,
                256,
                1,
                vec![PreCommit2, Commit1, Commit2, Finalize, Fetch],
            ),
            _ => (128, 1024, 2, TaskType::ALL.to_vec()),
        };
        let busy = (0..rng.below(6))
            .map(|_| Busy {
                batch: 1,
                task: accepts[rng.below(accepts.len() as u64) as usize],
                sector_size: sizes(&mut rng),
                est_end: rng.below(7200) as f64,
            })
            .collect();
        ws.push(WorkerState {
            name: format!("w{w}"),
            info: WorkerInfo {
                cpus,
                mem_physical: ram_gib * GIB,
                mem_swap: if rng.below(2) == 0 { 0 } else { 64 * GIB },
                mem_used: rng.below(8) * GIB,
                mem_swap_used: 0,
                gpus,
            },
            enabled: rng.below(40) != 0,
            tasks: accepts,
            paths: vec![seal, w % n_store],
            windows: DEFAULT_WINDOWS,
            busy,
        });
    }
    let mut queue = Vec::with_capacity(tasks);
    for id in 0..tasks {
        let task = match rng.below(20) {
            0..=4 => AddPiece,
            5..=8 => PreCommit1,
            9..=11 => PreCommit2,
            12..=13 => Commit1,
            14..=15 => Commit2,
            16..=17 => Finalize,
            18 => Fetch,
            _ => Unseal,
        };
        let est_secs = match task {
            AddPiece => 600.0,
            PreCommit1 => 4.0 * 3600.0,
            PreCommit2 => 1800.0,
            Commit1 => 60.0,
            Commit2 => 2400.0,
            Finalize => 120.0,
            Fetch => 900.0,
            Unseal => 3.0 * 3600.0,
            ReplicaUpdate | RegenSectorKey => 1200.0,
            ProveReplicaUpdate1 => 60.0,
            ProveReplicaUpdate2 => 1800.0,
            FinalizeReplicaUpdate => 120.0,
        } * (0.5 + rng.below(100) as f64 / 100.0);
        let location =
            if workers == 0 || task == Commit2 || (task == AddPiece && rng.below(10) != 0) {
                Vec::new()
            } else {
                let mut l = vec![seal_paths[rng.below(workers as u64) as usize]];
                if task == Fetch && rng.below(2) == 0 {
                    l.push(rng.below(n_store as u64) as usize);
                }
                l
            };
        queue.push(QueuedTask {
            batch: 1,
            id: id as u64,
            sector: rng.below(tasks as u64 * 4 + 1),
            task,
            sector_size: sizes(&mut rng),
            priority: if rng.below(5) == 0 {
                DEAL_SECTOR_PRIORITY
            } else {
                0
            },
            est_secs,
            location,
        });
    }
    (queue, ws, paths)
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;

    #[test]
    fn synthetic_load_is_deterministic() {
        let (q1, w1, p1) = synthetic_load(500, 20, 7);
        let (q2, w2, p2) = synthetic_load(500, 20, 7);
        assert_eq!(q1.len(), 500);
        assert_eq!(w1.len(), 20);
        assert_eq!(format!("{q1:?}{w1:?}{p1:?}"), format!("{q2:?}{w2:?}{p2:?}"));
        let (q3, _, _) = synthetic_load(500, 20, 8);
        assert_ne!(format!("{q1:?}"), format!("{q3:?}"));
        let table = ResourceTable::defaults();
        let a = schedule(&q1, &w1, &p1, &table, 0.0);
        let b = schedule(&q2, &w2, &p2, &table, 0.0);
        assert_eq!(a.assignments, b.assignments);
        assert_eq!(a.waiting, b.waiting);
        check_plan(&q1, &w1, &a);
    }

    #[test]
    fn smoke_10k_tasks_200_workers() {
        let (queue, workers, paths) = synthetic_load(10_000, 200, 42);
        let table = ResourceTable::defaults();
        let started = std::time::Instant::now();
        let plan = schedule(&queue, &workers, &paths, &table, 0.0);
        let took = started.elapsed();
        check_plan(&queue, &workers, &plan);
        assert!(!plan.assignments.is_empty());
        assert!(!plan.reservations.is_empty());
        // Timing is printed, never asserted.
        println!(
            "10k x 200 pass: {:?}; {} assigned, {} reserved, {} waiting",
            took,
            plan.assignments.len(),
            plan.reservations.len(),
            plan.waiting.len()
        );
    }
}
