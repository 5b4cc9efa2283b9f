//! Reservations (EASY backfill): a blocked task reserves the worker where it starts soonest.

use std::cmp::Ordering;

use super::pass::Pass;
use super::storage::{StorageCheck, TaskStorage};
use super::{secs, Reservation};

use crate::sched::admission::{Allocation, Refusal};
use crate::sched::resources::Resources;
use crate::sched::task_type::TaskType;

/// A reservation being honoured for the rest of the pass.
pub(super) struct Resv {
    pub(super) task_id: u64,
    pub(super) task: TaskType,
    pub(super) size: u64,
    pub(super) res: Resources,
    pub(super) start_at: f64,
    /// What will still be allocated at `start_at` (without the reserved
    /// task): tasks placed now that may outlive `start_at` are added here
    /// and must leave room for the reserved task.
    pub(super) shadow: Allocation,
}

impl<'a> Pass<'a> {
    pub(super) fn reserved_reason(&self, w: usize) -> String {
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

    /// When the task could start on worker `w` if nothing more were placed
    /// there: free the placed tasks in `est_end` order until it fits in one
    /// capacity. Returns the start time and what is still allocated then.
    pub(super) fn start_time(
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
    pub(super) fn blocked(
        &mut self,
        qi: usize,
        ts: &TaskStorage,
        res: &Resources,
        reason: String,
        cands: &[usize],
    ) {
        let t = &self.queue[qi];
        let key = (t.task, t.sector_size, t.batch);
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

#[cfg(test)]
mod tests {
    use super::super::tests::*;

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
                batch: 1,
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
}
