//! Per-worker windows: capacity-sized budgets filled by busy work, then by the pass.

use super::backfill::Resv;
use super::pass::Pass;
use super::{Busy, WorkerState, MAX_WINDOWS};

use crate::sched::admission::{Allocation, Refusal};
use crate::sched::resources::{ResourceTable, Resources};
use crate::sched::task_type::TaskType;

pub(super) struct Placed {
    pub(super) est_end: f64,
    pub(super) task: TaskType,
    pub(super) size: u64,
    pub(super) res: Resources,
}

pub(super) struct WState {
    /// One capacity-sized budget per window; window 0 = starts now.
    pub(super) windows: Vec<Allocation>,
    /// Latest estimated end of the work in each window.
    pub(super) window_end: Vec<f64>,
    /// Everything placed on the worker (for utilization and reservations).
    pub(super) total: Allocation,
    pub(super) util: f64,
    pub(super) placed: Vec<Placed>,
    pub(super) resv: Option<Resv>,
    /// Number of distinct task types accepted (C2 tie-break).
    pub(super) ntypes: usize,
}

impl WState {
    pub(super) fn new(
        worker: &WorkerState,
        table: &ResourceTable,
        now: f64,
        ntypes: usize,
    ) -> WState {
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
            let res = table.get(b.task, b.sector_size).batch_of(b.batch);
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

impl<'a> Pass<'a> {
    /// Earliest window of worker `w` that admits the task, ignoring reservations.
    pub(super) fn raw_fit(
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;

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
                batch: 1,
                task: TaskType::PreCommit1,
                sector_size: G32,
                est_end: 100.0 * (i + 1) as f64,
            })
            .collect();
        let plan = schedule(&queue, std::slice::from_ref(&w), &paths, &table, 0.0);
        assert_eq!(plan.assignments.len(), 1);
        assert_eq!(plan.reservations[0].start_at, 300.0);
    }
}
