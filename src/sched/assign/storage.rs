//! Storage rules: locality, space per task, fetch targets, storage groups and AllowTo.

use super::pass::Pass;
use super::StoragePath;

use crate::sched::queue::QueuedTask;
use crate::sched::task_type::TaskType;

/// Which kind of path a file must land on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Seal,
    Store,
}

impl Kind {
    /// Weight 0 marks a read-only path (docs/lotus-scheduler.md#storage-path-metadata), so it
    /// is never a target.
    pub(super) fn accepts(self, p: &StoragePath) -> bool {
        p.weight > 0
            && match self {
                Kind::Seal => p.can_seal,
                Kind::Store => p.can_store,
            }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Seal => "sealing (can_seal)",
            Kind::Store => "long-term (can_store)",
        }
    }
}

/// Which `Assignment` field the chosen path fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Alloc,
    Fetch,
    Both,
}

/// Space a task needs on one path, in tenths of the sector size
/// (Lotus `FSOverheadDen` = 10, docs/lotus-scheduler.md#space-needed).
#[derive(Clone, Copy, Debug)]
pub(super) struct Need {
    pub(super) kind: Kind,
    pub(super) tenths: u64,
    pub(super) role: Role,
}

// Lotus sealing overheads (docs/lotus-scheduler.md#space-needed), in tenths of the sector size.
/// Unsealed file: AddPiece output, or PC1's input when it must be fetched.
pub(super) const UNSEALED: u64 = 10;
/// Sealed (10) + cache while sealing (141): what PC1 allocates and what PC2,
/// C1 and Unseal fetch. This is the 15.1× of #4920.
pub(super) const SEALED_CACHE: u64 = 151;
/// Sealed (10) + finalized cache (1): what a finalized sector occupies.
pub(super) const FINALIZED: u64 = 11;
/// Update replica (10) + update cache while proving (21): what ReplicaUpdate writes
/// (docs/snap-deals.md#lotus-resource-table).
pub(super) const UPDATE: u64 = 31;
/// Update replica (10) + finalized update cache (1).
pub(super) const UPDATE_FINALIZED: u64 = 11;

/// The storage rules of one task, worked out once before looking at workers.
pub(super) struct TaskStorage {
    /// Commit2: no files at all, so no locality and no fetch.
    pub(super) none: bool,
    /// Location is non-empty: workers holding the files are preferred.
    pub(super) located: bool,
    /// Need on a worker that already holds the files (None: nothing).
    pub(super) local: Option<Need>,
    /// Need on any other worker (or, for a new sector, on every worker).
    pub(super) remote: Need,
    /// Storage-group filter on remote destinations (docs/lotus-scheduler.md#storage-groups);
    /// None = any.
    pub(super) allow: Option<Vec<String>>,
}

/// The storage side of placing a task on one worker.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Choice {
    pub(super) fetch_to: Option<usize>,
    pub(super) alloc_path: Option<usize>,
    /// Path and bytes to take from its free space.
    pub(super) take: Option<(usize, u64)>,
}

pub(super) enum StorageCheck {
    Ok(Choice),
    /// Right kind of path exists, but none has the space now.
    NoSpace {
        need: u64,
        most_free: u64,
    },
    /// No path of the right kind (or allowed by groups) at all.
    Never,
}

pub(super) fn space_for(sector_size: u64, tenths: u64) -> u64 {
    let b = u128::from(sector_size) * u128::from(tenths) / 10;
    u64::try_from(b).unwrap_or(u64::MAX)
}

impl<'a> Pass<'a> {
    /// Marks the workers holding task `qi`'s files.
    pub(super) fn mark_local(&mut self, qi: usize) {
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

    pub(super) fn task_storage(&self, t: &QueuedTask) -> Result<TaskStorage, String> {
        use TaskType::*;
        let need = |kind, tenths, role| Need { kind, tenths, role };
        if t.task == Commit2 {
            // Its input travels with the task (the Commit1 output is staged).
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
            // The update is written beside the sector key it reads (Lotus fetches sealed,
            // cache and unsealed to a sealing path and allocates update + update-cache).
            ReplicaUpdate => (
                Some(need(Kind::Seal, UPDATE, Role::Alloc)),
                need(Kind::Seal, FINALIZED + UNSEALED + UPDATE, Role::Both),
                true,
            ),
            // GSK writes the sector key back beside the update.
            RegenSectorKey => (
                Some(need(Kind::Seal, FINALIZED, Role::Alloc)),
                need(Kind::Seal, FINALIZED + UNSEALED + UPDATE, Role::Both),
                true,
            ),
            // PR1 reads both trees; PR2 reads the vanilla proofs in the update cache.
            ProveReplicaUpdate1 | ProveReplicaUpdate2 => (
                None,
                need(Kind::Seal, FINALIZED + UPDATE, Role::Fetch),
                true,
            ),
            FinalizeReplicaUpdate => (
                None,
                need(Kind::Store, FINALIZED + UPDATE_FINALIZED, Role::Fetch),
                true,
            ),
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
    pub(super) fn allow_union(&self, location: &[usize]) -> Option<Vec<String>> {
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
    /// enough free space, highest `available × weight` (Lotus StorageBestAlloc). With
    /// `among`, only those of the worker's paths are candidates.
    pub(super) fn pick_path(
        &self,
        w: usize,
        need: Need,
        size: u64,
        allow: Option<&[String]>,
        among: Option<&[usize]>,
    ) -> StorageCheck {
        let bytes = space_for(size, need.tenths);
        let mut best: Option<(u128, usize)> = None;
        let mut any = false;
        let mut most_free = 0;
        for &p in &self.workers[w].paths {
            if among.is_some_and(|among| !among.contains(&p)) {
                continue;
            }
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

    pub(super) fn storage_check(
        &self,
        ts: &TaskStorage,
        t: &QueuedTask,
        w: usize,
        local: bool,
    ) -> StorageCheck {
        if ts.none {
            return StorageCheck::Ok(Choice::default());
        }
        // A PC1 batch needs every sector's space.
        let size = t.sector_size.saturating_mul(u64::from(t.batch.max(1)));
        if !local {
            return self.pick_path(w, ts.remote, size, ts.allow.as_deref(), None);
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
            // A local allocation is written in place, beside the sector's files (PC1's
            // layers and trees, an update, a sector key): only the path holding them counts.
            Some(need) => self.pick_path(w, need, size, None, Some(&t.location)),
        }
    }

    pub(super) fn storage_never_reason(&self, t: &QueuedTask, ts: &TaskStorage) -> String {
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;

    #[test]
    fn locality_is_preferred_then_fetch() {
        // Sector 7's PC1 output is on path 0 (w0). w1 is idle, w0 is loaded.
        let paths = vec![seal_path("a", 10 * TIB), seal_path("b", 10 * TIB)];
        let mut w0 = worker("w0", info(64, 256, 0, 1), &[TaskType::PreCommit2], vec![0]);
        w0.busy = vec![Busy {
            batch: 1,
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
            batch: 1,
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
            batch: 1,
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

    /// PC1 of a sector whose unsealed file is in place writes its layers and trees beside
    /// it, so the space that counts is that path's, not the worker's emptiest one (before,
    /// a PC1 started on a nearly full path because another path of its worker had room,
    /// and failed writing).
    #[test]
    fn an_in_place_pc1_needs_space_on_the_sectors_own_path() {
        let paths = vec![seal_path("a", 100 * GIB), seal_path("b", 10 * TIB)];
        let workers = vec![worker(
            "w0",
            info(64, 512, 0, 0),
            &[TaskType::PreCommit1],
            vec![0, 1],
        )];
        let table = ResourceTable::defaults();
        let queue = vec![task(7, TaskType::PreCommit1, vec![0])];
        let plan = schedule(&queue, &workers, &paths, &table, 0.0);
        check_plan(&queue, &workers, &plan);
        assert!(plan.assignments.is_empty(), "{plan:?}");
        assert_eq!(
            reason(&plan, 7),
            "not enough free sealing (can_seal) space for PC1 of sector 7: needs 483.2 GiB, most free is 100.0 GiB (w0)"
        );
        // On the roomy path it runs in place, and the space it takes is that path's.
        let queue = vec![
            task(8, TaskType::PreCommit1, vec![1]),
            task(9, TaskType::PreCommit1, vec![0]),
        ];
        let plan = schedule(&queue, &workers, &paths, &table, 0.0);
        check_plan(&queue, &workers, &plan);
        assert_eq!(assigned(&plan, 8).alloc_path, Some(1));
        assert!(reason(&plan, 9).contains("most free is 100.0 GiB"));
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
}
