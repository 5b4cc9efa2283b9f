//! The scheduling queue and its order (Lotus `request_queue.go`;
//! docs/lotus-scheduler.md#queue-order).

use std::cmp::Ordering;

use super::task_type::TaskType;

/// Lotus `DealSectorPriority`: sectors holding any deal data.
pub const DEAL_SECTOR_PRIORITY: i64 = 1024;
/// Lotus `DefaultSchedPriority` (CC sectors).
pub const DEFAULT_PRIORITY: i64 = 0;

/// One task waiting for a worker.
#[derive(Clone, Debug)]
pub struct QueuedTask {
    /// Unique request id (Lotus SchedId); the final tie-breaker.
    pub id: u64,
    /// Sector number.
    pub sector: u64,
    pub task: TaskType,
    pub sector_size: u64,
    /// Sectors it runs: more than 1 for a PC1 batch (`sealing.pc1_batch`), whose resources
    /// are that many sectors' memory ([`crate::sched::resources::Resources::batch_of`]).
    pub batch: u32,
    /// 1024 for deal sectors (Lotus DealSectorPriority), 0 for CC; the
    /// operator may set negative/other values. Higher runs first.
    pub priority: i64,
    /// Expected run time in seconds (from history); used by backfill.
    /// 0 or less means unknown.
    pub est_secs: f64,
    /// Indexes into the storage-path slice: paths currently holding this
    /// sector's files (empty for a new sector).
    pub location: Vec<usize>,
}

/// Lotus `SchedRequestQueue.Less`, as a total order:
///
/// 1. "Much less": when exactly one of the two task types has a negative
///    order, that one goes first regardless of priority. GET and FIN free
///    sealing space and workers, so they never wait behind compute work.
///    (The "negative-priority tasks first" wording in the issue refers to
///    this rule on the task *order*; a negative `priority` int is simply
///    the lowest priority under rule 2.)
/// 2. Higher `priority` first: deal sectors (1024) before CC (0).
/// 3. Lower task order first: C1 before C2 before PC2 before PC1 before AP,
///    which finishes in-flight sectors before starting new ones.
/// 4. Lower sector number first (Lotus: keeps the NewSectors bitfield compact).
/// 5. Lower id first, so the order is total and the sort deterministic.
pub fn queue_cmp(a: &QueuedTask, b: &QueuedTask) -> Ordering {
    let (ao, bo) = (a.task.order(), b.task.order());
    if (ao < 0) != (bo < 0) {
        return if ao < 0 {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    b.priority
        .cmp(&a.priority)
        .then(ao.cmp(&bo))
        .then(a.sector.cmp(&b.sector))
        .then(a.id.cmp(&b.id))
}

/// Sorts a queue into scheduling order.
pub fn sort_queue(q: &mut [QueuedTask]) {
    q.sort_by(queue_cmp);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: u64, sector: u64, task: TaskType, priority: i64) -> QueuedTask {
        QueuedTask {
            batch: 1,
            id,
            sector,
            task,
            sector_size: 32 << 30,
            priority,
            est_secs: 0.0,
            location: Vec::new(),
        }
    }

    fn order_of(mut q: Vec<QueuedTask>) -> Vec<u64> {
        sort_queue(&mut q);
        q.iter().map(|t| t.id).collect()
    }

    #[test]
    fn negative_order_beats_deal_priority() {
        let fin = t(1, 9, TaskType::Finalize, 0);
        let deal_pc1 = t(2, 1, TaskType::PreCommit1, DEAL_SECTOR_PRIORITY);
        assert_eq!(queue_cmp(&fin, &deal_pc1), Ordering::Less);
        assert_eq!(queue_cmp(&deal_pc1, &fin), Ordering::Greater);
        let get = t(3, 9, TaskType::Fetch, -5);
        assert_eq!(queue_cmp(&get, &deal_pc1), Ordering::Less);
    }

    #[test]
    fn both_negative_use_priority_then_order() {
        let get_deal = t(1, 1, TaskType::Fetch, DEAL_SECTOR_PRIORITY);
        let fin_cc = t(2, 1, TaskType::Finalize, 0);
        assert_eq!(order_of(vec![fin_cc.clone(), get_deal.clone()]), [1, 2]);
        let get_cc = t(3, 1, TaskType::Fetch, 0);
        // FIN (-3) before GET (-1) at equal priority.
        assert_eq!(order_of(vec![get_cc, fin_cc]), [2, 3]);
    }

    #[test]
    fn deal_before_cc() {
        let cc_c1 = t(1, 1, TaskType::Commit1, 0);
        let deal_ap = t(2, 50, TaskType::AddPiece, DEAL_SECTOR_PRIORITY);
        assert_eq!(order_of(vec![cc_c1, deal_ap]), [2, 1]);
        let neg = t(3, 0, TaskType::Commit1, -1);
        let cc = t(4, 99, TaskType::AddPiece, 0);
        assert_eq!(order_of(vec![neg, cc]), [4, 3]);
    }

    #[test]
    fn task_order_c1_c2_pc2_pc1_ap() {
        let q = vec![
            t(1, 1, TaskType::AddPiece, 0),
            t(2, 1, TaskType::PreCommit1, 0),
            t(3, 1, TaskType::PreCommit2, 0),
            t(4, 1, TaskType::Commit2, 0),
            t(5, 1, TaskType::Commit1, 0),
            t(6, 1, TaskType::Unseal, 0),
        ];
        assert_eq!(order_of(q), [6, 5, 4, 3, 2, 1]);
    }

    #[test]
    fn lower_sector_then_lower_id() {
        let q = vec![
            t(1, 7, TaskType::PreCommit1, 0),
            t(2, 3, TaskType::PreCommit1, 0),
            t(4, 5, TaskType::PreCommit1, 0),
            t(3, 5, TaskType::PreCommit1, 0),
        ];
        assert_eq!(order_of(q), [2, 3, 4, 1]);
    }

    #[test]
    fn full_mix() {
        let q = vec![
            t(1, 1, TaskType::AddPiece, 0),
            t(2, 2, TaskType::PreCommit1, DEAL_SECTOR_PRIORITY),
            t(3, 3, TaskType::Finalize, 0),
            t(4, 4, TaskType::Commit2, 0),
            t(5, 5, TaskType::Fetch, 0),
            t(6, 6, TaskType::Commit1, DEAL_SECTOR_PRIORITY),
        ];
        assert_eq!(order_of(q), [3, 5, 6, 2, 4, 1]);
    }
}
