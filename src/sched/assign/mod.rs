//! One scheduling pass: which queued task goes to which worker now.
//!
//! The pass is Lotus `trySched` (docs/lotus-scheduler.md#assigning-tasks-to-windows) with
//! four deliberate changes,
//! each fixing a recorded complaint:
//!
//! * A window is a capacity-sized budget that *does* count work already
//!   placed on the worker, so a worker holds at most `windows` capacities
//!   of work (running + preparing + queued). Lotus sizes every new window
//!   to the full worker regardless of what runs there, which is how one
//!   machine got 40 PC1 while 18 sat idle (#7607).
//! * Workers are picked by utilization of *all* work placed on them,
//!   updated after every assignment in the pass (#7868).
//! * A task that cannot be placed now but would fit on an idle worker gets
//!   a reservation (EASY backfill), so a C2 that needs a whole worker is not
//!   starved by a stream of small APs (Lotus has no reservation,
//!   docs/lotus-scheduler.md#queue-order; #8918).
//! * Every task left in the queue gets a one-line reason, instead of
//!   silently waiting (Curio PR #1250 shows the cost of silence).
//!
//! Nothing here runs tasks: the dispatcher starts window-0 work when the
//! worker's running resources allow it, like Lotus `assignPreparingWork`.

use super::admission::WorkerInfo;
use super::queue::{queue_cmp, QueuedTask};
use super::resources::ResourceTable;
use super::task_type::TaskType;

mod backfill;
mod pass;
mod storage;
mod synthetic;
mod windows;

use pass::Pass;

pub use synthetic::synthetic_load;

/// Lotus `SchedWindows`: windows each worker holds by default
/// (docs/lotus-scheduler.md#scheduler-constants).
pub const DEFAULT_WINDOWS: u32 = 2;

/// Upper bound on a worker's windows, so a bogus setting cannot make the
/// pass allocate billions of budgets.
pub const MAX_WINDOWS: u32 = 64;

/// One storage path (Lotus `sectorstore.json` plus its free space,
/// docs/lotus-scheduler.md#storage-path-metadata).
#[derive(Clone, Debug)]
pub struct StoragePath {
    pub id: String,
    /// Holds intermediate sealing data.
    pub can_seal: bool,
    /// Holds finalized sectors.
    pub can_store: bool,
    /// Higher = preferred; 0 = read-only (never allocated to or fetched into).
    pub weight: u64,
    /// Free bytes.
    pub available: u64,
    /// Groups this path belongs to.
    pub groups: Vec<String>,
    /// Groups allowed to pull data from this path; empty = everyone.
    pub allow_to: Vec<String>,
}

/// A task already on a worker (running, preparing, or assigned earlier).
#[derive(Clone, Debug)]
pub struct Busy {
    pub task: TaskType,
    pub sector_size: u64,
    /// Sectors in it: more than 1 for a PC1 batch, which takes that many sectors' memory.
    pub batch: u32,
    /// Estimated finish time, on the same clock as `now`.
    pub est_end: f64,
}

/// What the scheduler knows about one worker.
#[derive(Clone, Debug)]
pub struct WorkerState {
    pub name: String,
    pub info: WorkerInfo,
    /// false = down or disabled: never gets work.
    pub enabled: bool,
    /// Task types it accepts (like `lotus-worker --precommit1=false`).
    pub tasks: Vec<TaskType>,
    /// Storage paths local to this worker (indexes into the path slice).
    pub paths: Vec<usize>,
    /// Scheduling windows (default [`DEFAULT_WINDOWS`]); clamped to
    /// 1..=[`MAX_WINDOWS`] (a worker always has its running budget).
    pub windows: u32,
    /// Every task already placed on it.
    pub busy: Vec<Busy>,
}

/// A task given to a worker this pass.
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    pub task_id: u64,
    /// Index into the worker slice.
    pub worker: usize,
    /// Path the worker must fetch (or move) the sector's files into; None
    /// when it already holds them or the task needs no files.
    pub fetch_to: Option<usize>,
    /// Sealing path chosen for new files: AddPiece of a new sector, and
    /// PreCommit1's sealed + cache files. Best `available × weight`.
    pub alloc_path: Option<usize>,
}

/// A worker held back for a task that could not be placed (EASY backfill).
#[derive(Clone, Debug, PartialEq)]
pub struct Reservation {
    pub task_id: u64,
    pub worker: usize,
    /// Estimated time the task can start there.
    pub start_at: f64,
}

/// The outcome of one pass.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub assignments: Vec<Assignment>,
    pub reservations: Vec<Reservation>,
    /// Task id and a one-line reason it did not get a worker this pass.
    pub waiting: Vec<(u64, String)>,
}

/// One scheduling pass over `queue` (in any order) for `workers`.
///
/// Rules, in the order they apply:
///
/// 1. Tasks are walked in [`queue_cmp`] order (Lotus request queue).
/// 2. A worker is eligible when it is enabled, accepts the task type, and
///    storage allows it:
///    * new sector (empty location) AddPiece / PreCommit1: a sealing path
///      with `available ≥ size × overhead` (AP 1.0×, PC1 sealed + cache
///      15.1×); the path with the highest `available × weight` is chosen
///      and its space taken for the rest of the pass;
///    * a task whose files exist: a worker holding them (one of its paths is
///      in `location`) is *preferred*: if any such worker can take the task,
///      only those are considered (Lotus selector "preferred"). PC1 still
///      needs 15.1× on one of its sealing paths. Otherwise a worker may fetch
///      the files into one of its sealing paths (FIN and GET: long-term
///      paths) with room for them, if storage groups allow: the union of the
///      sources' `allow_to` must meet the destination's `groups`, and any
///      source with an empty `allow_to` lets everyone fetch
///      (docs/lotus-scheduler.md#storage-groups).
///      GET is the move to long-term storage, which Lotus does not filter
///      by groups (docs/lotus-scheduler.md#storage-groups), so neither do we. Unlike Lotus,
///      C1 and FIN may also fetch: Lotus's no-fetch selectors leave them
///      stuck when the holder is gone (#2806, #2938);
///    * Commit2 has no storage needs.
/// 3. Admission: each worker has `windows` capacity-sized budgets, filled
///    first by its `busy` tasks (earliest end first, first fit) and then by
///    this pass. A task goes in the earliest window where Lotus
///    `CanHandleRequest` accepts it; window 0 means it can start now. So a
///    worker never holds more than `windows` capacities of work (#7607).
/// 4. Among eligible workers: a window-0 slot anywhere beats queueing behind
///    work (a task is never queued on a busy worker while another can start
///    it now); then lowest utilization of all placed work, updated after
///    each assignment (#7868); then, for C2, fewer accepted task types
///    (Lotus taskSelector); then the lower worker index.
/// 5. Reservations (EASY backfill): when a task cannot be placed but would
///    fit on an idle eligible worker, it reserves the unreserved worker
///    where it can start soonest: `start_at` is when enough of the placed
///    tasks have ended (in `est_end` order) for it to fit in one capacity.
///    Afterwards that worker only takes tasks that start now (window 0) and
///    either finish by `start_at` (`now + est_secs`, known estimates only)
///    or still leave room for the reserved task at `start_at`. One
///    reservation per worker and per task.
/// 6. Every task not assigned gets exactly one waiting line.
/// 7. Cost: per task one pass over the workers accepting its type with
///    cached per-worker budgets; classes known to fit nowhere are skipped
///    in O(1) (memo per (task, size)).
pub fn schedule(
    queue: &[QueuedTask],
    workers: &[WorkerState],
    paths: &[StoragePath],
    table: &ResourceTable,
    now: f64,
) -> Plan {
    let mut pass = Pass::new(queue, workers, paths, table, now);
    let mut order: Vec<usize> = (0..queue.len()).collect();
    order.sort_by(|&a, &b| queue_cmp(&queue[a], &queue[b]));
    for qi in order {
        let ti = queue[qi].task.index();
        let cands = std::mem::take(&mut pass.by_task[ti]);
        pass.place(qi, &cands);
        pass.by_task[ti] = cands;
    }
    pass.plan
}

fn secs(d: f64) -> String {
    format!("t+{:.0}s", d.max(0.0))
}

/// Shared by the tests of every part of the pass.
#[cfg(test)]
mod tests {
    pub(super) use super::super::queue::DEAL_SECTOR_PRIORITY;
    pub(super) use super::super::resources::{default_resources, GIB, KIB, MIB};
    pub(super) use super::*;
    pub(super) use std::collections::HashSet;
    pub(super) const G32: u64 = 32 * GIB;
    pub(super) const TIB: u64 = 1 << 40;

    pub(super) fn info(cpus: u32, ram_gib: u64, swap_gib: u64, gpus: usize) -> WorkerInfo {
        WorkerInfo::new(cpus, ram_gib * GIB, swap_gib * GIB, gpus)
    }

    pub(super) fn seal_path(id: &str, available: u64) -> StoragePath {
        StoragePath {
            id: id.to_string(),
            can_seal: true,
            can_store: false,
            weight: 10,
            available,
            groups: Vec::new(),
            allow_to: Vec::new(),
        }
    }

    pub(super) fn worker(
        name: &str,
        info: WorkerInfo,
        tasks: &[TaskType],
        paths: Vec<usize>,
    ) -> WorkerState {
        WorkerState {
            name: name.to_string(),
            info,
            enabled: true,
            tasks: tasks.to_vec(),
            paths,
            windows: DEFAULT_WINDOWS,
            busy: Vec::new(),
        }
    }

    pub(super) fn task(id: u64, task: TaskType, location: Vec<usize>) -> QueuedTask {
        QueuedTask {
            batch: 1,
            id,
            sector: id,
            task,
            sector_size: G32,
            priority: 0,
            est_secs: 1000.0,
            location,
        }
    }

    /// Every task exactly once in assignments or waiting; reservations only
    /// for waiting tasks, at most one per worker and per task.
    pub(super) fn check_plan(queue: &[QueuedTask], workers: &[WorkerState], plan: &Plan) {
        let mut seen = HashSet::new();
        for a in &plan.assignments {
            assert!(seen.insert(a.task_id), "task {} twice", a.task_id);
            assert!(workers[a.worker].enabled);
        }
        let waiting: HashSet<u64> = plan.waiting.iter().map(|(id, _)| *id).collect();
        for (id, reason) in &plan.waiting {
            assert!(seen.insert(*id), "task {id} twice");
            assert!(
                !reason.is_empty() && !reason.contains('\n'),
                "bad reason {reason:?}"
            );
        }
        let all: HashSet<u64> = queue.iter().map(|t| t.id).collect();
        assert_eq!(seen, all);
        let mut rw = HashSet::new();
        let mut rt = HashSet::new();
        for r in &plan.reservations {
            assert!(waiting.contains(&r.task_id));
            assert!(
                rw.insert(r.worker),
                "two reservations on worker {}",
                r.worker
            );
            assert!(rt.insert(r.task_id));
        }
    }

    pub(super) fn reason(plan: &Plan, id: u64) -> &str {
        &plan
            .waiting
            .iter()
            .find(|(t, _)| *t == id)
            .expect("waiting")
            .1
    }

    pub(super) fn assigned(plan: &Plan, id: u64) -> &Assignment {
        plan.assignments
            .iter()
            .find(|a| a.task_id == id)
            .expect("assigned")
    }
}
