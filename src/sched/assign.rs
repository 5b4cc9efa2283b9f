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

use std::cmp::Ordering;
use std::collections::HashMap;

use super::admission::{format_bytes, Allocation, Refusal, WorkerInfo};
use super::queue::{queue_cmp, QueuedTask, DEAL_SECTOR_PRIORITY};
use super::resources::{ResourceTable, Resources, GIB, SECTOR_SIZES};
use super::task_type::TaskType;

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

// ---------------------------------------------------------------------------
// Storage rules
// ---------------------------------------------------------------------------

/// Which kind of path a file must land on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Seal,
    Store,
}

impl Kind {
    /// Weight 0 marks a read-only path (docs/lotus-scheduler.md#storage-path-metadata), so it
    /// is never a target.
    fn accepts(self, p: &StoragePath) -> bool {
        p.weight > 0
            && match self {
                Kind::Seal => p.can_seal,
                Kind::Store => p.can_store,
            }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Seal => "sealing (can_seal)",
            Kind::Store => "long-term (can_store)",
        }
    }
}

/// Which `Assignment` field the chosen path fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Alloc,
    Fetch,
    Both,
}

/// Space a task needs on one path, in tenths of the sector size
/// (Lotus `FSOverheadDen` = 10, docs/lotus-scheduler.md#space-needed).
#[derive(Clone, Copy, Debug)]
struct Need {
    kind: Kind,
    tenths: u64,
    role: Role,
}

// Lotus sealing overheads (docs/lotus-scheduler.md#space-needed), in tenths of the sector size.
/// Unsealed file: AddPiece output, or PC1's input when it must be fetched.
const UNSEALED: u64 = 10;
/// Sealed (10) + cache while sealing (141): what PC1 allocates and what PC2,
/// C1 and Unseal fetch. This is the 15.1× of #4920.
const SEALED_CACHE: u64 = 151;
/// Sealed (10) + finalized cache (1): what a finalized sector occupies.
const FINALIZED: u64 = 11;

/// The storage rules of one task, worked out once before looking at workers.
struct TaskStorage {
    /// Commit2: no files at all, so no locality and no fetch.
    none: bool,
    /// Location is non-empty: workers holding the files are preferred.
    located: bool,
    /// Need on a worker that already holds the files (None: nothing).
    local: Option<Need>,
    /// Need on any other worker (or, for a new sector, on every worker).
    remote: Need,
    /// Storage-group filter on remote destinations (docs/lotus-scheduler.md#storage-groups);
    /// None = any.
    allow: Option<Vec<String>>,
}

/// The storage side of placing a task on one worker.
#[derive(Clone, Copy, Debug, Default)]
struct Choice {
    fetch_to: Option<usize>,
    alloc_path: Option<usize>,
    /// Path and bytes to take from its free space.
    take: Option<(usize, u64)>,
}

enum StorageCheck {
    Ok(Choice),
    /// Right kind of path exists, but none has the space now.
    NoSpace {
        need: u64,
        most_free: u64,
    },
    /// No path of the right kind (or allowed by groups) at all.
    Never,
}

fn space_for(sector_size: u64, tenths: u64) -> u64 {
    let b = u128::from(sector_size) * u128::from(tenths) / 10;
    u64::try_from(b).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------
// Per-worker pass state
// ---------------------------------------------------------------------------

struct Placed {
    est_end: f64,
    task: TaskType,
    size: u64,
    res: Resources,
}

/// A reservation being honoured for the rest of the pass.
struct Resv {
    task_id: u64,
    task: TaskType,
    size: u64,
    res: Resources,
    start_at: f64,
    /// What will still be allocated at `start_at` (without the reserved
    /// task): tasks placed now that may outlive `start_at` are added here
    /// and must leave room for the reserved task.
    shadow: Allocation,
}

struct WState {
    /// One capacity-sized budget per window; window 0 = starts now.
    windows: Vec<Allocation>,
    /// Latest estimated end of the work in each window.
    window_end: Vec<f64>,
    /// Everything placed on the worker (for utilization and reservations).
    total: Allocation,
    util: f64,
    placed: Vec<Placed>,
    resv: Option<Resv>,
    /// Number of distinct task types accepted (C2 tie-break).
    ntypes: usize,
}

/// Ordering key of a worker that can take a task; smaller is better.
#[derive(Clone, Copy)]
struct Pick {
    window: usize,
    util: f64,
    tie: usize,
    worker: usize,
    via_shadow: bool,
    choice: Choice,
}

impl Pick {
    fn better_than(&self, o: &Pick) -> bool {
        self.window
            .cmp(&o.window)
            .then(self.util.total_cmp(&o.util))
            .then(self.tie.cmp(&o.tie))
            .then(self.worker.cmp(&o.worker))
            == Ordering::Less
    }
}

struct Pass<'a> {
    queue: &'a [QueuedTask],
    workers: &'a [WorkerState],
    paths: &'a [StoragePath],
    table: &'a ResourceTable,
    now: f64,
    ws: Vec<WState>,
    /// Free bytes per path, decremented as this pass allocates.
    avail: Vec<u64>,
    /// Enabled workers accepting each task type, by `TaskType::index`.
    by_task: Vec<Vec<usize>>,
    /// Workers each path is local to.
    path_workers: Vec<Vec<usize>>,
    /// `mark[w] == stamp`: worker w holds the current task's files.
    mark: Vec<u32>,
    stamp: u32,
    /// (task, size) classes no worker can take in any window this pass,
    /// with their reason. Sound because a pass only ever adds load.
    dead: HashMap<(TaskType, u64), String>,
    /// (task, size) classes for which no unreserved worker could ever
    /// fit the task, so no reservation can be made; with the reason.
    no_resv: HashMap<(TaskType, u64), String>,
    plan: Plan,
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

impl<'a> Pass<'a> {
    fn new(
        queue: &'a [QueuedTask],
        workers: &'a [WorkerState],
        paths: &'a [StoragePath],
        table: &'a ResourceTable,
        now: f64,
    ) -> Pass<'a> {
        let mut by_task = vec![Vec::new(); TaskType::ALL.len()];
        let mut path_workers = vec![Vec::new(); paths.len()];
        let mut ws = Vec::with_capacity(workers.len());
        for (w, worker) in workers.iter().enumerate() {
            let mut mask = 0u32;
            for t in &worker.tasks {
                mask |= 1 << t.index();
            }
            if worker.enabled {
                for t in TaskType::ALL {
                    if mask & (1 << t.index()) != 0 {
                        by_task[t.index()].push(w);
                    }
                }
            }
            for &p in &worker.paths {
                if p < paths.len() && path_workers[p].last() != Some(&w) {
                    path_workers[p].push(w);
                }
            }
            ws.push(WState::new(worker, table, now, mask.count_ones() as usize));
        }
        Pass {
            queue,
            workers,
            paths,
            table,
            now,
            ws,
            avail: paths.iter().map(|p| p.available).collect(),
            by_task,
            path_workers,
            mark: vec![0; workers.len()],
            stamp: 0,
            dead: HashMap::new(),
            no_resv: HashMap::new(),
            plan: Plan::default(),
        }
    }

    fn wait(&mut self, qi: usize, reason: String) {
        self.plan.waiting.push((self.queue[qi].id, reason));
    }

    /// Marks the workers holding task `qi`'s files.
    fn mark_local(&mut self, qi: usize) {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.mark.iter_mut().for_each(|m| *m = 0);
            self.stamp = 1;
        }
        for &p in &self.queue[qi].location {
            if let Some(ws) = self.path_workers.get(p) {
                for &w in ws {
                    self.mark[w] = self.stamp;
                }
            }
        }
    }

    fn task_storage(&self, t: &QueuedTask) -> Result<TaskStorage, String> {
        use TaskType::*;
        let need = |kind, tenths, role| Need { kind, tenths, role };
        if t.task == Commit2 {
            return Ok(TaskStorage {
                none: true,
                located: false,
                local: None,
                remote: need(Kind::Seal, 0, Role::Fetch),
                allow: None,
            });
        }
        if t.location.is_empty() {
            let remote = match t.task {
                AddPiece => need(Kind::Seal, UNSEALED, Role::Alloc),
                PreCommit1 => need(Kind::Seal, SEALED_CACHE, Role::Alloc),
                _ => {
                    return Err(format!(
                        "sector {} has no stored files (empty location) for {}",
                        t.sector, t.task
                    ))
                }
            };
            return Ok(TaskStorage {
                none: false,
                located: false,
                local: None,
                remote,
                allow: None,
            });
        }
        let (local, remote, groups) = match t.task {
            AddPiece => (None, need(Kind::Seal, UNSEALED, Role::Fetch), true),
            PreCommit1 => (
                Some(need(Kind::Seal, SEALED_CACHE, Role::Alloc)),
                need(Kind::Seal, SEALED_CACHE + UNSEALED, Role::Both),
                true,
            ),
            PreCommit2 | Commit1 | Unseal => {
                (None, need(Kind::Seal, SEALED_CACHE, Role::Fetch), true)
            }
            Finalize => (None, need(Kind::Store, FINALIZED, Role::Fetch), true),
            Fetch => (
                Some(need(Kind::Store, FINALIZED, Role::Fetch)),
                need(Kind::Store, FINALIZED, Role::Fetch),
                false,
            ),
            Commit2 => unreachable!("handled above"),
        };
        let allow = if groups {
            self.allow_union(&t.location)
        } else {
            None
        };
        Ok(TaskStorage {
            none: false,
            located: true,
            local,
            remote,
            allow,
        })
    }

    /// Union of the sources' AllowTo; None when any source allows everyone.
    fn allow_union(&self, location: &[usize]) -> Option<Vec<String>> {
        let mut union: Vec<String> = Vec::new();
        for &p in location {
            let Some(sp) = self.paths.get(p) else {
                continue;
            };
            if sp.allow_to.is_empty() {
                return None;
            }
            for g in &sp.allow_to {
                if !union.contains(g) {
                    union.push(g.clone());
                }
            }
        }
        Some(union)
    }

    /// Best path of worker `w` for `need`: right kind, allowed by groups,
    /// enough free space, highest `available × weight` (Lotus StorageBestAlloc).
    fn pick_path(&self, w: usize, need: Need, size: u64, allow: Option<&[String]>) -> StorageCheck {
        let bytes = space_for(size, need.tenths);
        let mut best: Option<(u128, usize)> = None;
        let mut any = false;
        let mut most_free = 0;
        for &p in &self.workers[w].paths {
            let Some(sp) = self.paths.get(p) else {
                continue;
            };
            if !need.kind.accepts(sp) {
                continue;
            }
            if let Some(allow) = allow {
                if !sp.groups.iter().any(|g| allow.contains(g)) {
                    continue;
                }
            }
            any = true;
            let free = self.avail[p];
            most_free = most_free.max(free);
            if free < bytes {
                continue;
            }
            let score = u128::from(free) * u128::from(sp.weight);
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, p));
            }
        }
        match best {
            Some((_, p)) => {
                let (fetch_to, alloc_path) = match need.role {
                    Role::Alloc => (None, Some(p)),
                    Role::Fetch => (Some(p), None),
                    Role::Both => (Some(p), Some(p)),
                };
                StorageCheck::Ok(Choice {
                    fetch_to,
                    alloc_path,
                    take: Some((p, bytes)),
                })
            }
            None if any => StorageCheck::NoSpace {
                need: bytes,
                most_free,
            },
            None => StorageCheck::Never,
        }
    }

    fn storage_check(
        &self,
        ts: &TaskStorage,
        t: &QueuedTask,
        w: usize,
        local: bool,
    ) -> StorageCheck {
        if ts.none {
            return StorageCheck::Ok(Choice::default());
        }
        if !local {
            return self.pick_path(w, ts.remote, t.sector_size, ts.allow.as_deref());
        }
        // GET whose files already sit on a long-term path of this worker:
        // nothing to move.
        if t.task == TaskType::Fetch
            && t.location.iter().any(|&p| {
                self.paths.get(p).is_some_and(|sp| sp.can_store)
                    && self.workers[w].paths.contains(&p)
            })
        {
            return StorageCheck::Ok(Choice::default());
        }
        match ts.local {
            None => StorageCheck::Ok(Choice::default()),
            Some(need) => self.pick_path(w, need, t.sector_size, None),
        }
    }

    /// Earliest window of worker `w` that admits the task, ignoring reservations.
    fn raw_fit(
        &self,
        w: usize,
        task: TaskType,
        size: u64,
        res: &Resources,
    ) -> Result<usize, Refusal> {
        let info = &self.workers[w].info;
        let mut first = None;
        for (k, a) in self.ws[w].windows.iter().enumerate() {
            match a.can_handle(info, task, size, res) {
                Ok(()) => return Ok(k),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        Err(first.expect("a worker has at least one window"))
    }

    fn no_worker_reason(&self, task: TaskType) -> String {
        let disabled = self
            .workers
            .iter()
            .filter(|w| !w.enabled && w.tasks.contains(&task))
            .count();
        match disabled {
            0 => format!("no enabled worker accepts {task}"),
            1 => format!("no enabled worker accepts {task} (1 disabled worker does)"),
            n => format!("no enabled worker accepts {task} ({n} disabled workers do)"),
        }
    }

    fn storage_never_reason(&self, t: &QueuedTask, ts: &TaskStorage) -> String {
        match (&ts.allow, ts.located) {
            (Some(allow), true) => format!(
                "no worker may fetch sector {}'s files: AllowTo [{}]",
                t.sector,
                allow.join(", ")
            ),
            (_, true) => format!(
                "no worker accepting {} holds sector {}'s files or has a {} path to fetch them into",
                t.task,
                t.sector,
                ts.remote.kind.name()
            ),
            (_, false) => format!(
                "no worker accepting {} has a writable {} path",
                t.task,
                ts.remote.kind.name()
            ),
        }
    }

    fn place(&mut self, qi: usize, cands: &[usize]) {
        let t = &self.queue[qi];
        if cands.is_empty() {
            let r = self.no_worker_reason(t.task);
            return self.wait(qi, r);
        }
        let ts = match self.task_storage(t) {
            Ok(ts) => ts,
            Err(r) => return self.wait(qi, r),
        };
        let res = self.table.get(t.task, t.sector_size);
        let key = (t.task, t.sector_size);
        if ts.located {
            self.mark_local(qi);
        }
        if let Some(reason) = self.dead.get(&key) {
            // The class fits nowhere, but a storage rule that can never be
            // met (groups, no path of the right kind) is the better reason.
            let reason = reason.clone();
            let possible = cands.iter().any(|&w| {
                let local = ts.located && self.mark[w] == self.stamp;
                !matches!(self.storage_check(&ts, t, w, local), StorageCheck::Never)
            });
            if !possible {
                let r = self.storage_never_reason(t, &ts);
                return self.wait(qi, r);
            }
            return self.blocked(qi, &ts, &res, reason, cands);
        }

        let workers = self.workers;
        let mut best_local: Option<Pick> = None;
        let mut best_remote: Option<Pick> = None;
        let mut all_raw_refused = true;
        let mut storage_possible = false;
        let mut best_raw: Option<(f64, usize, Refusal)> = None;
        let mut best_reserved: Option<(f64, usize)> = None;
        let mut no_space: Option<(u64, u64, usize)> = None;

        for &w in cands {
            let local = ts.located && self.mark[w] == self.stamp;
            let util = self.ws[w].util;
            let raw = self.raw_fit(w, t.task, t.sector_size, &res);
            if let Err(e) = &raw {
                if best_raw.as_ref().is_none_or(|(u, _, _)| util < *u) {
                    best_raw = Some((util, w, e.clone()));
                }
                // Storage only matters for the reason while we have not yet
                // seen a worker where it is possible.
                if storage_possible {
                    continue;
                }
            } else {
                all_raw_refused = false;
            }
            let choice = match self.storage_check(&ts, t, w, local) {
                StorageCheck::Never => continue,
                StorageCheck::NoSpace { need, most_free } => {
                    storage_possible = true;
                    if raw.is_ok() && no_space.is_none_or(|(_, f, _)| most_free > f) {
                        no_space = Some((need, most_free, w));
                    }
                    continue;
                }
                StorageCheck::Ok(c) => {
                    storage_possible = true;
                    c
                }
            };
            let Ok(window) = raw else { continue };
            let mut via_shadow = false;
            if let Some(r) = &self.ws[w].resv {
                let fits_before =
                    window == 0 && t.est_secs > 0.0 && self.now + t.est_secs <= r.start_at;
                let fits_beside = window == 0
                    && r.shadow
                        .can_handle_with(
                            &workers[w].info,
                            (t.task, t.sector_size, &res),
                            r.task,
                            r.size,
                            &r.res,
                        )
                        .is_ok();
                if !fits_before && !fits_beside {
                    if best_reserved.is_none_or(|(u, _)| util < u) {
                        best_reserved = Some((util, w));
                    }
                    continue;
                }
                via_shadow = !fits_before;
            }
            let pick = Pick {
                window,
                util,
                tie: if t.task == TaskType::Commit2 {
                    self.ws[w].ntypes
                } else {
                    0
                },
                worker: w,
                via_shadow,
                choice,
            };
            let slot = if local {
                &mut best_local
            } else {
                &mut best_remote
            };
            if slot.as_ref().is_none_or(|b| pick.better_than(b)) {
                *slot = Some(pick);
            }
        }

        if let Some(pick) = best_local.or(best_remote) {
            return self.commit(qi, &res, pick);
        }

        // Not placed: find the most useful reason.
        if !storage_possible {
            let r = self.storage_never_reason(t, &ts);
            return self.wait(qi, r);
        }
        let raw_reason = best_raw.map(|(_, w, e)| {
            let mut s = format!("{}: {}", workers[w].name, e);
            if all_raw_refused {
                s.push_str(&format!(
                    " (no room in any window of the {} workers accepting {})",
                    cands.len(),
                    t.task
                ));
            }
            s
        });
        if all_raw_refused {
            if let Some(r) = &raw_reason {
                self.dead.insert(key, r.clone());
            }
        }
        let reason = if let Some((_, w)) = best_reserved {
            self.reserved_reason(w)
        } else if let Some((need, free, w)) = no_space {
            format!(
                "not enough free {} space for {} of sector {}: needs {}, most free is {} ({})",
                ts.remote.kind.name(),
                t.task,
                t.sector,
                format_bytes(need),
                format_bytes(free),
                workers[w].name
            )
        } else {
            raw_reason.unwrap_or_else(|| format!("no worker can take {} now", t.task))
        };
        self.blocked(qi, &ts, &res, reason, cands);
    }

    fn reserved_reason(&self, w: usize) -> String {
        match &self.ws[w].resv {
            Some(r) => format!(
                "waiting for reservation on {} (task {} from {})",
                self.workers[w].name,
                r.task_id,
                secs(r.start_at - self.now)
            ),
            None => format!("waiting for {}", self.workers[w].name),
        }
    }

    /// Assigns task `qi` as chosen by `pick`.
    fn commit(&mut self, qi: usize, res: &Resources, pick: Pick) {
        let t = &self.queue[qi];
        let w = pick.worker;
        let info = &self.workers[w].info;
        let now = self.now;
        let ws = &mut self.ws[w];
        let start = if pick.window == 0 {
            now
        } else {
            ws.window_end[pick.window - 1].max(now)
        };
        let est_end = start + t.est_secs.max(0.0);
        ws.windows[pick.window].add(info, t.task, t.sector_size, res);
        ws.window_end[pick.window] = ws.window_end[pick.window].max(est_end);
        ws.total.add(info, t.task, t.sector_size, res);
        ws.util = ws.total.utilization(info);
        ws.placed.push(Placed {
            est_end,
            task: t.task,
            size: t.sector_size,
            res: *res,
        });
        if pick.via_shadow {
            if let Some(r) = ws.resv.as_mut() {
                r.shadow.add(info, t.task, t.sector_size, res);
            }
        }
        if let Some((p, bytes)) = pick.choice.take {
            self.avail[p] = self.avail[p].saturating_sub(bytes);
        }
        self.plan.assignments.push(Assignment {
            task_id: t.id,
            worker: w,
            fetch_to: pick.choice.fetch_to,
            alloc_path: pick.choice.alloc_path,
        });
    }

    /// When the task could start on worker `w` if nothing more were placed
    /// there: free the placed tasks in `est_end` order until it fits in one
    /// capacity. Returns the start time and what is still allocated then.
    fn start_time(
        &self,
        w: usize,
        task: TaskType,
        size: u64,
        res: &Resources,
    ) -> Option<(f64, Allocation)> {
        let info = &self.workers[w].info;
        let ws = &self.ws[w];
        let mut alloc = ws.total.clone();
        if alloc.can_handle(info, task, size, res).is_ok() {
            return Some((self.now, alloc));
        }
        let mut order: Vec<usize> = (0..ws.placed.len()).collect();
        order.sort_by(|&a, &b| ws.placed[a].est_end.total_cmp(&ws.placed[b].est_end));
        for i in order {
            let p = &ws.placed[i];
            alloc.free(info, p.task, p.size, &p.res);
            if alloc.can_handle(info, task, size, res).is_ok() {
                return Some((p.est_end.max(self.now), alloc));
            }
        }
        None
    }

    /// The task could not be placed: try to reserve a worker for it
    /// (rule 5), then record its waiting line.
    fn blocked(
        &mut self,
        qi: usize,
        ts: &TaskStorage,
        res: &Resources,
        reason: String,
        cands: &[usize],
    ) {
        let t = &self.queue[qi];
        let key = (t.task, t.sector_size);
        let with = |note: &str| {
            if reason.starts_with("waiting for reservation") || reason == note {
                reason.clone()
            } else {
                format!("{reason}; {note}")
            }
        };
        if let Some(note) = self.no_resv.get(&key) {
            let line = with(note);
            return self.wait(qi, line);
        }
        let idle = Allocation::default();
        let mut any_unreserved = false;
        let mut earliest_reserved: Option<(f64, usize)> = None;
        let mut too_big: Option<(usize, Refusal)> = None;
        // (start_at, not local, util, worker)
        let mut best: Option<(f64, bool, f64, usize)> = None;
        for &w in cands {
            let info = &self.workers[w].info;
            if let Err(e) = idle.can_handle(info, t.task, t.sector_size, res) {
                too_big.get_or_insert((w, e));
                continue;
            }
            if let Some(r) = &self.ws[w].resv {
                if earliest_reserved.is_none_or(|(s, _)| r.start_at < s) {
                    earliest_reserved = Some((r.start_at, w));
                }
                continue;
            }
            any_unreserved = true;
            if self.raw_fit(w, t.task, t.sector_size, res).is_ok() {
                // Only blocked by storage space here; space is not reserved.
                continue;
            }
            let local = ts.located && self.mark[w] == self.stamp;
            if !matches!(self.storage_check(ts, t, w, local), StorageCheck::Ok(_)) {
                continue;
            }
            let Some((start, _)) = self.start_time(w, t.task, t.sector_size, res) else {
                continue;
            };
            let cand = (start, !local, self.ws[w].util, w);
            let better = best.is_none_or(|b| {
                cand.0
                    .total_cmp(&b.0)
                    .then(cand.1.cmp(&b.1))
                    .then(cand.2.total_cmp(&b.2))
                    .then(cand.3.cmp(&b.3))
                    == Ordering::Less
            });
            if better {
                best = Some(cand);
            }
        }

        if let Some((_, _, _, w)) = best {
            let (start_at, shadow) = self
                .start_time(w, t.task, t.sector_size, res)
                .expect("computed above");
            let now_refusal = self.ws[w].windows[0]
                .can_handle(&self.workers[w].info, t.task, t.sector_size, res)
                .err()
                .map(|e| format!("{}: {}", self.workers[w].name, e))
                .unwrap_or_else(|| reason.clone());
            self.ws[w].resv = Some(Resv {
                task_id: t.id,
                task: t.task,
                size: t.sector_size,
                res: *res,
                start_at,
                shadow,
            });
            self.plan.reservations.push(Reservation {
                task_id: t.id,
                worker: w,
                start_at,
            });
            let line = format!(
                "reserved {} from {} ({})",
                self.workers[w].name,
                secs(start_at - self.now),
                now_refusal
            );
            return self.wait(qi, line);
        }
        if !any_unreserved {
            // Reservations are only ever added in a pass, so this class can
            // never get one now: remember it and skip the search next time.
            let note = match (earliest_reserved, too_big) {
                (Some(_), _) => {
                    self.reserved_reason(earliest_reserved.map(|(_, w)| w).unwrap_or(0))
                }
                (None, Some((w, e))) => format!(
                    "too big for every worker accepting {} even when idle: {}: {}",
                    t.task, self.workers[w].name, e
                ),
                (None, None) => format!("no worker can take {}", t.task),
            };
            let line = with(&note);
            self.no_resv.insert(key, note);
            return self.wait(qi, line);
        }
        self.wait(qi, reason);
    }
}

impl WState {
    fn new(worker: &WorkerState, table: &ResourceTable, now: f64, ntypes: usize) -> WState {
        let n = worker.windows.clamp(1, MAX_WINDOWS) as usize;
        let mut ws = WState {
            windows: vec![Allocation::default(); n],
            window_end: vec![now; n],
            total: Allocation::default(),
            util: 0.0,
            placed: Vec::with_capacity(worker.busy.len()),
            resv: None,
            ntypes,
        };
        let info = &worker.info;
        let mut busy: Vec<&Busy> = worker.busy.iter().collect();
        busy.sort_by(|a, b| a.est_end.total_cmp(&b.est_end));
        for b in busy {
            let res = table.get(b.task, b.sector_size);
            // First fit, earliest-ending work first: running tasks fill
            // window 0. Work that fits nowhere (over-committed before this
            // pass) still counts, in the last window.
            let k = ws
                .windows
                .iter()
                .position(|a| a.can_handle(info, b.task, b.sector_size, &res).is_ok())
                .unwrap_or(n - 1);
            ws.windows[k].add(info, b.task, b.sector_size, &res);
            ws.window_end[k] = ws.window_end[k].max(b.est_end);
            ws.total.add(info, b.task, b.sector_size, &res);
            ws.placed.push(Placed {
                est_end: b.est_end,
                task: b.task,
                size: b.sector_size,
                res,
            });
        }
        ws.util = ws.total.utilization(info);
        ws
    }
}

// ---------------------------------------------------------------------------
// Synthetic load for benchmarks
// ---------------------------------------------------------------------------

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
    use super::super::resources::{default_resources, KIB, MIB};
    use super::*;
    use std::collections::HashSet;

    const G32: u64 = 32 * GIB;
    const TIB: u64 = 1 << 40;

    fn info(cpus: u32, ram_gib: u64, swap_gib: u64, gpus: usize) -> WorkerInfo {
        WorkerInfo::new(cpus, ram_gib * GIB, swap_gib * GIB, gpus)
    }

    fn seal_path(id: &str, available: u64) -> StoragePath {
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

    fn worker(name: &str, info: WorkerInfo, tasks: &[TaskType], paths: Vec<usize>) -> WorkerState {
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

    fn task(id: u64, task: TaskType, location: Vec<usize>) -> QueuedTask {
        QueuedTask {
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
    fn check_plan(queue: &[QueuedTask], workers: &[WorkerState], plan: &Plan) {
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

    fn reason(plan: &Plan, id: u64) -> &str {
        &plan
            .waiting
            .iter()
            .find(|(t, _)| *t == id)
            .expect("waiting")
            .1
    }

    fn assigned(plan: &Plan, id: u64) -> &Assignment {
        plan.assignments
            .iter()
            .find(|a| a.task_id == id)
            .expect("assigned")
    }

    #[test]
    fn spreads_40_pc1_over_19_workers() {
        // #7607: 40 PC1, 19 identical idle workers each able to hold many.
        let paths: Vec<_> = (0..19)
            .map(|i| seal_path(&format!("s{i}"), 100 * TIB))
            .collect();
        let workers: Vec<_> = (0..19)
            .map(|i| {
                worker(
                    &format!("w{i}"),
                    info(64, 1024, 0, 0),
                    &[TaskType::PreCommit1],
                    vec![i],
                )
            })
            .collect();
        let queue: Vec<_> = (0..40)
            .map(|i| task(i, TaskType::PreCommit1, vec![]))
            .collect();
        let plan = schedule(&queue, &workers, &paths, &ResourceTable::defaults(), 0.0);
        check_plan(&queue, &workers, &plan);
        assert_eq!(plan.assignments.len(), 40);
        let mut per = [0; 19];
        for a in &plan.assignments {
            per[a.worker] += 1;
            assert_eq!(a.alloc_path, Some(a.worker));
            assert_eq!(a.fetch_to, None);
        }
        assert!(per.iter().all(|&n| (2..=3).contains(&n)), "{per:?}");
    }

    #[test]
    fn windows_bound_placed_work_and_first_blocked_task_reserves() {
        // 128 GiB + 64 GiB swap: two 32G PC1 per capacity.
        let paths = vec![seal_path("s", 100 * TIB)];
        let mut w = worker("w0", info(64, 128, 64, 0), &[TaskType::PreCommit1], vec![0]);
        let queue: Vec<_> = (0..6)
            .map(|i| task(i, TaskType::PreCommit1, vec![]))
            .collect();
        let table = ResourceTable::defaults();
        let plan = schedule(&queue, std::slice::from_ref(&w), &paths, &table, 0.0);
        check_plan(&queue, std::slice::from_ref(&w), &plan);
        let ids: Vec<u64> = plan.assignments.iter().map(|a| a.task_id).collect();
        assert_eq!(ids, [0, 1, 2, 3]);
        // Window 0 ends at 1000 s, window 1 at 2000 s; task 4 fits in one
        // capacity once three of the four have ended.
        assert_eq!(
            plan.reservations,
            [Reservation {
                task_id: 4,
                worker: 0,
                start_at: 2000.0
            }]
        );
        assert!(
            reason(&plan, 4)
                .starts_with("reserved w0 from t+2000s (w0: not enough physical memory"),
            "{}",
            reason(&plan, 4)
        );
        assert!(
            reason(&plan, 5).contains("waiting for reservation on w0 (task 4 from t+2000s)"),
            "{}",
            reason(&plan, 5)
        );

        w.windows = 1;
        let plan = schedule(&queue, std::slice::from_ref(&w), &paths, &table, 0.0);
        check_plan(&queue, std::slice::from_ref(&w), &plan);
        assert_eq!(plan.assignments.len(), 2);
        assert_eq!(plan.reservations[0].start_at, 1000.0);

        // Busy work counts against the windows.
        w.windows = 2;
        w.busy = (0..3)
            .map(|i| Busy {
                task: TaskType::PreCommit1,
                sector_size: G32,
                est_end: 100.0 * (i + 1) as f64,
            })
            .collect();
        let plan = schedule(&queue, std::slice::from_ref(&w), &paths, &table, 0.0);
        assert_eq!(plan.assignments.len(), 1);
        assert_eq!(plan.reservations[0].start_at, 300.0);
    }

    #[test]
    fn prefers_a_worker_that_can_start_now_over_queueing() {
        let paths = vec![seal_path("a", 100 * TIB), seal_path("b", 100 * TIB)];
        let mut w0 = worker("w0", info(64, 128, 64, 0), &[TaskType::PreCommit1], vec![0]);
        // w0: window 0 full (two PC1 running), window 1 empty.
        w0.busy = vec![
            Busy {
                task: TaskType::PreCommit1,
                sector_size: G32,
                est_end: 10.0,
            },
            Busy {
                task: TaskType::PreCommit1,
                sector_size: G32,
                est_end: 10.0,
            },
        ];
        // w1: 4 cores, three tiny APs busy: 75% CPU utilization, more than
        // w0's, but a PC1 can start there now.
        let mut w1 = worker(
            "w1",
            info(4, 128, 64, 0),
            &[TaskType::PreCommit1, TaskType::AddPiece],
            vec![1],
        );
        w1.busy = vec![
            Busy {
                task: TaskType::AddPiece,
                sector_size: 2048,
                est_end: 10.0
            };
            3
        ];
        let workers = vec![w0, w1];
        let queue = vec![task(1, TaskType::PreCommit1, vec![])];
        let plan = schedule(&queue, &workers, &paths, &ResourceTable::defaults(), 0.0);
        assert_eq!(assigned(&plan, 1).worker, 1);
    }

    #[test]
    fn locality_is_preferred_then_fetch() {
        // Sector 7's PC1 output is on path 0 (w0). w1 is idle, w0 is loaded.
        let paths = vec![seal_path("a", 10 * TIB), seal_path("b", 10 * TIB)];
        let mut w0 = worker("w0", info(64, 256, 0, 1), &[TaskType::PreCommit2], vec![0]);
        w0.busy = vec![Busy {
            task: TaskType::PreCommit1,
            sector_size: G32,
            est_end: 99.0,
        }];
        let w1 = worker("w1", info(64, 256, 0, 1), &[TaskType::PreCommit2], vec![1]);
        let workers = vec![w0, w1];
        let queue = vec![task(7, TaskType::PreCommit2, vec![0])];
        let plan = schedule(&queue, &workers, &paths, &ResourceTable::defaults(), 0.0);
        assert_eq!(
            plan.assignments,
            [Assignment {
                task_id: 7,
                worker: 0,
                fetch_to: None,
                alloc_path: None
            }]
        );

        // Two PC2s: the GPU of w0 fits one per window, so the second still
        // stays local (window 1) rather than being fetched.
        let queue = vec![
            task(7, TaskType::PreCommit2, vec![0]),
            task(8, TaskType::PreCommit2, vec![0]),
        ];
        let plan = schedule(&queue, &workers, &paths, &ResourceTable::defaults(), 0.0);
        assert_eq!(assigned(&plan, 8).worker, 0);

        // w0 cannot take it at all: fetch into w1's sealing path, and that
        // path's free space shrinks by 15.1 × 32 GiB.
        let mut workers2 = workers.clone();
        workers2[0].windows = 1;
        workers2[0].busy = vec![Busy {
            task: TaskType::PreCommit2,
            sector_size: G32,
            est_end: 99.0,
        }];
        let queue = vec![task(7, TaskType::PreCommit2, vec![0])];
        let plan = schedule(&queue, &workers2, &paths, &ResourceTable::defaults(), 0.0);
        assert_eq!(
            plan.assignments,
            [Assignment {
                task_id: 7,
                worker: 1,
                fetch_to: Some(1),
                alloc_path: None
            }]
        );
    }

    #[test]
    fn storage_groups_allow_and_forbid_fetch() {
        let mut src = seal_path("pc1-box", 10 * TIB);
        src.allow_to = vec!["pc2-a".to_string()];
        let mut b = seal_path("b", 10 * TIB);
        b.groups = vec!["pc2-b".to_string()];
        let mut a = seal_path("a", 10 * TIB);
        a.groups = vec!["pc2-a".to_string()];
        let paths = vec![src, b, a];
        let pc1_box = worker("pc1", info(64, 512, 0, 0), &[TaskType::PreCommit1], vec![0]);
        let wb = worker("wb", info(64, 256, 0, 1), &[TaskType::PreCommit2], vec![1]);
        let wa = worker("wa", info(64, 256, 0, 1), &[TaskType::PreCommit2], vec![2]);
        let table = ResourceTable::defaults();
        let queue = vec![task(7, TaskType::PreCommit2, vec![0])];

        let workers = vec![pc1_box.clone(), wb.clone()];
        let plan = schedule(&queue, &workers, &paths, &table, 0.0);
        check_plan(&queue, &workers, &plan);
        assert_eq!(
            plan.waiting,
            [(
                7,
                "no worker may fetch sector 7's files: AllowTo [pc2-a]".to_string()
            )]
        );

        let workers = vec![pc1_box.clone(), wb.clone(), wa.clone()];
        let plan = schedule(&queue, &workers, &paths, &table, 0.0);
        assert_eq!(
            plan.assignments,
            [Assignment {
                task_id: 7,
                worker: 2,
                fetch_to: Some(2),
                alloc_path: None
            }]
        );

        // A second copy on a path with empty AllowTo lets anyone fetch.
        let mut paths2 = paths.clone();
        paths2.push(seal_path("open", 10 * TIB));
        let queue2 = vec![task(7, TaskType::PreCommit2, vec![0, 3])];
        let workers = vec![pc1_box.clone(), wb.clone()];
        let plan = schedule(&queue2, &workers, &paths2, &table, 0.0);
        assert_eq!(
            plan.assignments,
            [Assignment {
                task_id: 7,
                worker: 1,
                fetch_to: Some(1),
                alloc_path: None
            }]
        );

        // Once PC2 32G fits nowhere, a later PC2 whose files nobody may
        // fetch still gets the storage-group reason, not "full".
        let mut wb_full = wb;
        wb_full.windows = 1;
        wb_full.busy = vec![Busy {
            task: TaskType::PreCommit2,
            sector_size: G32,
            est_end: 50.0,
        }];
        let workers = vec![pc1_box, wb_full];
        let queue3 = vec![
            task(7, TaskType::PreCommit2, vec![3]),
            task(8, TaskType::PreCommit2, vec![0]),
        ];
        let plan = schedule(&queue3, &workers, &paths2, &table, 0.0);
        check_plan(&queue3, &workers, &plan);
        assert!(
            reason(&plan, 7).starts_with("reserved wb from t+50s (wb: not enough GPU"),
            "{}",
            reason(&plan, 7)
        );
        assert_eq!(
            reason(&plan, 8),
            "no worker may fetch sector 8's files: AllowTo [pc2-a]"
        );
    }

    #[test]
    fn fetch_to_long_term_ignores_groups() {
        let mut src = seal_path("seal", 10 * TIB);
        src.allow_to = vec!["nobody".to_string()];
        let store = StoragePath {
            can_seal: false,
            can_store: true,
            ..seal_path("store", 100 * TIB)
        };
        let paths = vec![src, store];
        let w0 = worker(
            "w0",
            info(64, 256, 0, 0),
            &[TaskType::Fetch, TaskType::Finalize],
            vec![0],
        );
        let w1 = worker(
            "w1",
            info(64, 256, 0, 0),
            &[TaskType::Fetch, TaskType::Finalize],
            vec![1],
        );
        let workers = vec![w0, w1];
        let queue = vec![
            task(1, TaskType::Fetch, vec![0]),
            task(2, TaskType::Finalize, vec![0]),
        ];
        let plan = schedule(&queue, &workers, &paths, &ResourceTable::defaults(), 0.0);
        check_plan(&queue, &workers, &plan);
        // GET: w0 holds the files but has no long-term path, so w1 (which
        // has one) moves them even though AllowTo names no group of it.
        assert_eq!(
            assigned(&plan, 1),
            &Assignment {
                task_id: 1,
                worker: 1,
                fetch_to: Some(1),
                alloc_path: None
            }
        );
        // FIN runs where the cache is.
        assert_eq!(
            assigned(&plan, 2),
            &Assignment {
                task_id: 2,
                worker: 0,
                fetch_to: None,
                alloc_path: None
            }
        );
    }

    #[test]
    fn reservation_keeps_c2_from_starving_behind_small_aps() {
        // One GPU box with 192 GiB RAM, no swap, one window. Three running
        // 32G APs end at 100, 200 and 300 s. C2 needs 182 GiB virtual:
        // 192 − 12 = 180 now, 184 once the first AP ends.
        let paths = vec![seal_path("s", 100 * TIB)];
        let mut w = worker(
            "w0",
            info(64, 192, 0, 1),
            &[TaskType::AddPiece, TaskType::Commit2],
            vec![0],
        );
        w.windows = 1;
        w.busy = [100.0, 200.0, 300.0]
            .iter()
            .map(|&e| Busy {
                task: TaskType::AddPiece,
                sector_size: G32,
                est_end: e,
            })
            .collect();
        let workers = vec![w];
        let mut c2 = task(1, TaskType::Commit2, vec![]);
        c2.sector = 50;
        let mut short_ap = task(2, TaskType::AddPiece, vec![]);
        short_ap.est_secs = 50.0;
        let mut long_ap = task(3, TaskType::AddPiece, vec![]);
        long_ap.est_secs = 500.0;
        let mut unknown_ap = task(4, TaskType::AddPiece, vec![]);
        unknown_ap.est_secs = 0.0;
        let mut small_ap = task(5, TaskType::AddPiece, vec![]);
        small_ap.sector_size = 2048;
        small_ap.est_secs = 5000.0;
        let queue = vec![long_ap, short_ap, c2, unknown_ap, small_ap];
        let plan = schedule(&queue, &workers, &paths, &ResourceTable::defaults(), 0.0);
        check_plan(&queue, &workers, &plan);
        assert_eq!(
            plan.reservations,
            [Reservation {
                task_id: 1,
                worker: 0,
                start_at: 100.0
            }]
        );
        assert!(
            reason(&plan, 1).starts_with("reserved w0 from t+100s (w0: not enough virtual memory (RAM+swap): needs 182.0 GiB, 180.0 GiB free)"),
            "{}",
            reason(&plan, 1)
        );
        // The short AP finishes before t+100 and backfills.
        assert_eq!(assigned(&plan, 2).worker, 0);
        // The long one would leave 192 − 8 − 4 = 180 GiB at t+100: refused.
        assert_eq!(
            reason(&plan, 3),
            "waiting for reservation on w0 (task 1 from t+100s)"
        );
        // Unknown run time cannot use the "finishes first" rule.
        assert_eq!(
            reason(&plan, 4),
            "waiting for reservation on w0 (task 1 from t+100s)"
        );
        // A 2 KiB AP leaves room for the C2 at t+100, so it may run beside it.
        assert_eq!(assigned(&plan, 5).worker, 0);
        assert_eq!(plan.assignments.len(), 2);
    }

    #[test]
    fn task_too_big_for_every_worker_is_reported() {
        let paths = vec![seal_path("s", 100 * TIB)];
        let workers = vec![worker(
            "w0",
            info(64, 64, 0, 1),
            &[TaskType::Commit2],
            vec![0],
        )];
        let queue = vec![
            task(1, TaskType::Commit2, vec![]),
            task(2, TaskType::Commit2, vec![]),
        ];
        let plan = schedule(&queue, &workers, &paths, &ResourceTable::defaults(), 0.0);
        check_plan(&queue, &workers, &plan);
        assert!(plan.reservations.is_empty());
        for id in [1, 2] {
            let r = reason(&plan, id);
            assert!(r.contains("too big for every worker accepting C2 even when idle: w0: not enough virtual memory"), "{r}");
        }
    }

    #[test]
    fn alloc_path_picks_best_available_times_weight() {
        let mut p = vec![
            seal_path("a", TIB),          // 1 TiB × 10
            seal_path("b", 4 * TIB),      // 4 TiB × 1
            seal_path("c", 2 * TIB),      // 2 TiB × 10  <- best
            seal_path("ro", 100 * TIB),   // weight 0: read-only
            seal_path("tiny", 400 * GIB), // × 1000 but too small for PC1
        ];
        p[1].weight = 1;
        p[3].weight = 0;
        p[4].weight = 1000;
        let workers = vec![worker(
            "w0",
            info(128, 1024, 0, 0),
            &[TaskType::AddPiece, TaskType::PreCommit1],
            vec![0, 1, 2, 3, 4],
        )];
        let queue = vec![
            task(1, TaskType::PreCommit1, vec![]),
            task(2, TaskType::PreCommit1, vec![]),
        ];
        let plan = schedule(&queue, &workers, &p, &ResourceTable::defaults(), 0.0);
        check_plan(&queue, &workers, &plan);
        assert_eq!(assigned(&plan, 1).alloc_path, Some(2));
        // c drops to 2 TiB − 483.2 GiB, × 10 still beats a (10 TiB-units).
        assert_eq!(assigned(&plan, 2).alloc_path, Some(2));

        // AP of a new sector prefers the 400 GiB × 1000 path (only needs 1×).
        let queue = vec![task(3, TaskType::AddPiece, vec![])];
        let plan = schedule(&queue, &workers, &p, &ResourceTable::defaults(), 0.0);
        assert_eq!(
            plan.assignments,
            [Assignment {
                task_id: 3,
                worker: 0,
                fetch_to: None,
                alloc_path: Some(4)
            }]
        );

        // Space runs out within the pass: 1 TiB holds two 32G PC1 (483.2 GiB each).
        let p2 = vec![seal_path("only", TIB)];
        let workers2 = vec![worker(
            "w0",
            info(128, 4096, 0, 0),
            &[TaskType::PreCommit1],
            vec![0],
        )];
        let queue: Vec<_> = (1..=3)
            .map(|i| task(i, TaskType::PreCommit1, vec![]))
            .collect();
        let plan = schedule(&queue, &workers2, &p2, &ResourceTable::defaults(), 0.0);
        check_plan(&queue, &workers2, &plan);
        assert_eq!(plan.assignments.len(), 2);
        assert_eq!(
            reason(&plan, 3),
            "not enough free sealing (can_seal) space for PC1 of sector 3: needs 483.2 GiB, most free is 57.6 GiB (w0)"
        );
    }

    #[test]
    fn disabled_workers_and_task_types_are_skipped() {
        let paths = vec![
            seal_path("a", 10 * TIB),
            seal_path("b", 10 * TIB),
            seal_path("c", 10 * TIB),
        ];
        let mut w0 = worker("w0", info(64, 512, 0, 0), &[TaskType::PreCommit1], vec![0]);
        w0.enabled = false;
        let w1 = worker("w1", info(64, 512, 0, 0), &[TaskType::AddPiece], vec![1]);
        let w2 = worker("w2", info(64, 512, 0, 0), &[TaskType::PreCommit1], vec![2]);
        let queue = vec![task(1, TaskType::PreCommit1, vec![])];
        let table = ResourceTable::defaults();
        let workers = vec![w0.clone(), w1.clone(), w2];
        let plan = schedule(&queue, &workers, &paths, &table, 0.0);
        assert_eq!(assigned(&plan, 1).worker, 2);

        let workers = vec![w0, w1];
        let plan = schedule(&queue, &workers, &paths, &table, 0.0);
        check_plan(&queue, &workers, &plan);
        assert_eq!(
            plan.waiting,
            [(
                1,
                "no enabled worker accepts PC1 (1 disabled worker does)".to_string()
            )]
        );
        let plan = schedule(
            &[task(2, TaskType::Unseal, vec![0])],
            &workers,
            &paths,
            &table,
            0.0,
        );
        assert_eq!(
            plan.waiting,
            [(2, "no enabled worker accepts UNS".to_string())]
        );
    }

    #[test]
    fn c2_prefers_worker_with_fewer_task_types() {
        let paths = vec![seal_path("a", 10 * TIB)];
        let w0 = worker("w0", info(64, 512, 0, 1), &TaskType::ALL, vec![0]);
        let w1 = worker("w1", info(64, 512, 0, 1), &[TaskType::Commit2], vec![]);
        let workers = vec![w0, w1];
        let queue = vec![task(1, TaskType::Commit2, vec![])];
        let plan = schedule(&queue, &workers, &paths, &ResourceTable::defaults(), 0.0);
        assert_eq!(
            plan.assignments,
            [Assignment {
                task_id: 1,
                worker: 1,
                fetch_to: None,
                alloc_path: None
            }]
        );
        // Not for other task types: the lower index wins the tie.
        let mut workers = workers;
        workers[1].tasks = vec![TaskType::Commit1];
        workers[1].paths = vec![0];
        let queue = vec![task(2, TaskType::Commit1, vec![0])];
        let plan = schedule(&queue, &workers, &paths, &ResourceTable::defaults(), 0.0);
        assert_eq!(assigned(&plan, 2).worker, 0);
    }

    #[test]
    fn queue_order_decides_who_gets_the_last_slot() {
        let paths = vec![seal_path("a", 10 * TIB)];
        let mut w = worker("w0", info(64, 128, 64, 0), &[TaskType::PreCommit1], vec![0]);
        w.windows = 1;
        let mut cc = task(1, TaskType::PreCommit1, vec![]);
        cc.sector = 1;
        let mut deal = task(2, TaskType::PreCommit1, vec![]);
        deal.sector = 2;
        deal.priority = DEAL_SECTOR_PRIORITY;
        let mut cc2 = task(3, TaskType::PreCommit1, vec![]);
        cc2.sector = 0;
        let queue = vec![cc, deal, cc2];
        let workers = vec![w];
        let plan = schedule(&queue, &workers, &paths, &ResourceTable::defaults(), 0.0);
        check_plan(&queue, &workers, &plan);
        let ids: Vec<u64> = plan.assignments.iter().map(|a| a.task_id).collect();
        assert_eq!(ids, [2, 3]);
    }

    #[test]
    fn max_concurrent_is_respected_across_the_pass() {
        let paths = vec![seal_path("a", 100 * TIB)];
        let workers = vec![worker(
            "w0",
            info(128, 4096, 0, 0),
            &[TaskType::AddPiece],
            vec![0],
        )];
        let table = ResourceTable::defaults()
            .with_overrides(&[("AP_32G_MAX_CONCURRENT".to_string(), "3".to_string())])
            .unwrap();
        let queue: Vec<_> = (0..10)
            .map(|i| task(i, TaskType::AddPiece, vec![]))
            .collect();
        let plan = schedule(&queue, &workers, &paths, &table, 0.0);
        check_plan(&queue, &workers, &plan);
        // Three per window, two windows.
        assert_eq!(plan.assignments.len(), 6);
        assert!(
            reason(&plan, 9).contains("MaxConcurrent for AP 32G reached"),
            "{}",
            reason(&plan, 9)
        );
    }

    #[test]
    fn empty_location_for_a_task_that_needs_files() {
        let paths = vec![seal_path("a", 10 * TIB)];
        let workers = vec![worker("w0", info(64, 512, 0, 1), &TaskType::ALL, vec![0])];
        let queue = vec![task(9, TaskType::PreCommit2, vec![])];
        let plan = schedule(&queue, &workers, &paths, &ResourceTable::defaults(), 0.0);
        assert_eq!(
            plan.waiting,
            [(
                9,
                "sector 9 has no stored files (empty location) for PC2".to_string()
            )]
        );
    }

    #[test]
    fn small_sector_sizes_and_byte_maths() {
        // 32 GiB × 151 / 10 = 518832049356.8 bytes, floored like Lotus.
        assert_eq!(space_for(G32, SEALED_CACHE), 518_832_049_356);
        assert_eq!(space_for(2 * KIB, UNSEALED), 2048);
        assert_eq!(space_for(8 * MIB, FINALIZED), 8 * MIB * 11 / 10);
        let r = default_resources(TaskType::AddPiece, 2 * KIB);
        assert_eq!(r.min_memory, 2048);
    }

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
