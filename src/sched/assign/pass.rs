//! The pass itself: which eligible worker takes a task, and recording the choice.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::storage::{Choice, StorageCheck};
use super::windows::{Placed, WState};
use super::{Assignment, Plan, StoragePath, WorkerState};

use crate::sched::admission::{format_bytes, Refusal};
use crate::sched::queue::QueuedTask;
use crate::sched::resources::{ResourceTable, Resources};
use crate::sched::task_type::TaskType;

/// Ordering key of a worker that can take a task; smaller is better.
#[derive(Clone, Copy)]
pub(super) struct Pick {
    pub(super) window: usize,
    pub(super) util: f64,
    pub(super) tie: usize,
    pub(super) worker: usize,
    pub(super) via_shadow: bool,
    pub(super) choice: Choice,
}

impl Pick {
    pub(super) fn better_than(&self, o: &Pick) -> bool {
        self.window
            .cmp(&o.window)
            .then(self.util.total_cmp(&o.util))
            .then(self.tie.cmp(&o.tie))
            .then(self.worker.cmp(&o.worker))
            == Ordering::Less
    }
}

pub(super) struct Pass<'a> {
    pub(super) queue: &'a [QueuedTask],
    pub(super) workers: &'a [WorkerState],
    pub(super) paths: &'a [StoragePath],
    pub(super) table: &'a ResourceTable,
    pub(super) now: f64,
    pub(super) ws: Vec<WState>,
    /// Free bytes per path, decremented as this pass allocates.
    pub(super) avail: Vec<u64>,
    /// Enabled workers accepting each task type, by `TaskType::index`.
    pub(super) by_task: Vec<Vec<usize>>,
    /// Workers each path is local to.
    pub(super) path_workers: Vec<Vec<usize>>,
    /// `mark[w] == stamp`: worker w holds the current task's files.
    pub(super) mark: Vec<u32>,
    pub(super) stamp: u32,
    /// (task, size, batch) classes no worker can take in any window this
    /// pass, with their reason. Sound because a pass only ever adds load.
    /// The batch is part of the class: a PC1 batch that fits nowhere says
    /// nothing of a smaller one.
    pub(super) dead: HashMap<(TaskType, u64, u32), String>,
    /// (task, size, batch) classes for which no unreserved worker could ever
    /// fit the task, so no reservation can be made; with the reason.
    pub(super) no_resv: HashMap<(TaskType, u64, u32), String>,
    pub(super) plan: Plan,
}

impl<'a> Pass<'a> {
    pub(super) fn new(
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

    pub(super) fn wait(&mut self, qi: usize, reason: String) {
        self.plan.waiting.push((self.queue[qi].id, reason));
    }

    pub(super) fn no_worker_reason(&self, task: TaskType) -> String {
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

    pub(super) fn place(&mut self, qi: usize, cands: &[usize]) {
        let t = &self.queue[qi];
        if cands.is_empty() {
            let r = self.no_worker_reason(t.task);
            return self.wait(qi, r);
        }
        let ts = match self.task_storage(t) {
            Ok(ts) => ts,
            Err(r) => return self.wait(qi, r),
        };
        let res = self.table.get(t.task, t.sector_size).batch_of(t.batch);
        let key = (t.task, t.sector_size, t.batch);
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

    /// Assigns task `qi` as chosen by `pick`.
    pub(super) fn commit(&mut self, qi: usize, res: &Resources, pick: Pick) {
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;

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
    fn prefers_a_worker_that_can_start_now_over_queueing() {
        let paths = vec![seal_path("a", 100 * TIB), seal_path("b", 100 * TIB)];
        let mut w0 = worker("w0", info(64, 128, 64, 0), &[TaskType::PreCommit1], vec![0]);
        // w0: window 0 full (two PC1 running), window 1 empty.
        w0.busy = vec![
            Busy {
                batch: 1,
                task: TaskType::PreCommit1,
                sector_size: G32,
                est_end: 10.0,
            },
            Busy {
                batch: 1,
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
                batch: 1,
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
}
