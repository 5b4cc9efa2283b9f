//! The sealing task kinds `seal-sched` knows about.
//!
//! Names and ordering follow Lotus `sealtasks/task.go` (docs/lotus-scheduler.md#task-short-names,
//! docs/lotus-scheduler.md#task-order) so that operators can reuse their existing
//! `PC1_32G_MAX_CONCURRENT`-style settings and intuition.

use std::fmt;

/// Declares [`TaskType`] and its lists from one list of names, so the enum, [`TaskType::ALL`]
/// (and the index order it defines) and [`TaskType::SEALING`] cannot disagree.
macro_rules! task_types {
    (sealing: [$($s:ident),+ $(,)?], other: [$($o:ident),* $(,)?] $(,)?) => {
        /// One kind of sealing work.
        ///
        /// The derived `Ord` is only the declaration order (handy for maps and
        /// stable output); scheduling priority is [`TaskType::order`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum TaskType { $($s,)+ $($o,)* }

        impl TaskType {
            /// Every task type, in declaration order (the order [`TaskType::index`] uses).
            pub const ALL: [TaskType; [$(TaskType::$s,)+ $(TaskType::$o,)*].len()] =
                [$(TaskType::$s,)+ $(TaskType::$o,)*];

            /// The task types a worker runs unless its config lists others, and the ones the
            /// operator names in help and error texts: every kind the pipelines use.
            pub const SEALING: [TaskType; [$(TaskType::$s,)+].len()] = [$(TaskType::$s,)+];
        }
    };
}

task_types!(
    sealing: [
        AddPiece,
        PreCommit1,
        PreCommit2,
        Commit1,
        Commit2,
        Finalize,
        Fetch,
        ReplicaUpdate,
        ProveReplicaUpdate1,
        ProveReplicaUpdate2,
        RegenSectorKey,
        FinalizeReplicaUpdate,
        Unseal,
    ],
    other: [],
);

impl TaskType {
    /// The short names of `types`, comma separated (`"AP, PC1, PC2"`), for help and
    /// error texts.
    pub fn short_names(types: &[TaskType]) -> String {
        types
            .iter()
            .map(|t| t.short())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The Lotus short name. These are the prefixes of the resource env vars
    /// (`PC1_32G_MIN_MEMORY`) and what `lotus-miner sealing jobs` prints, so
    /// they must match Lotus exactly (docs/lotus-scheduler.md#task-short-names).
    pub fn short(self) -> &'static str {
        match self {
            TaskType::AddPiece => "AP",
            TaskType::PreCommit1 => "PC1",
            TaskType::PreCommit2 => "PC2",
            TaskType::Commit1 => "C1",
            TaskType::Commit2 => "C2",
            TaskType::Finalize => "FIN",
            TaskType::Fetch => "GET",
            TaskType::Unseal => "UNS",
            TaskType::ReplicaUpdate => "RU",
            TaskType::ProveReplicaUpdate1 => "PR1",
            TaskType::ProveReplicaUpdate2 => "PR2",
            TaskType::RegenSectorKey => "GSK",
            TaskType::FinalizeReplicaUpdate => "FRU",
        }
    }

    /// Parses a short name (`"pc1"`, `"GET"`, ...). Case-insensitive because
    /// operators type these on the command line (`tasks enable pc2`);
    /// surrounding whitespace is ignored. Long names are not accepted.
    pub fn parse(s: &str) -> Option<TaskType> {
        let s = s.trim();
        TaskType::ALL
            .into_iter()
            .find(|t| t.short().eq_ignore_ascii_case(s))
    }

    /// Lotus task order (`sealtasks/task.go`, docs/lotus-scheduler.md#task-order): a smaller number
    /// is more urgent. Tasks that finish in-flight sectors (C1, C2, PC2)
    /// come before tasks that start new ones (PC1, AP); negative orders
    /// (GET, FIN) free resources and jump the queue (see `queue::queue_cmp`).
    pub fn order(self) -> i32 {
        match self {
            TaskType::AddPiece => 9,
            TaskType::PreCommit1 => 5,
            TaskType::PreCommit2 => 4,
            TaskType::Commit2 => 3,
            TaskType::Commit1 => 2,
            TaskType::Unseal => 1,
            TaskType::Fetch => -1,
            TaskType::Finalize => -3,
            // docs/snap-deals.md#lotus-task-types: FRU is missing from Lotus's order map,
            // so it reads as 0.
            TaskType::ReplicaUpdate => 8,
            TaskType::ProveReplicaUpdate1 => 6,
            TaskType::ProveReplicaUpdate2 => 7,
            TaskType::RegenSectorKey => 11,
            TaskType::FinalizeReplicaUpdate => 0,
        }
    }

    /// Whether Lotus's resource table has the type: Finalize and FinalizeReplicaUpdate have
    /// none, so they need nothing and their `FIN_*` / `FRU_*` overrides are refused.
    pub fn has_resource_entry(self) -> bool {
        !matches!(self, TaskType::Finalize | TaskType::FinalizeReplicaUpdate)
    }

    /// Position in [`TaskType::ALL`]; used to index dense per-type tables
    /// and bit masks instead of hashing.
    pub fn index(self) -> usize {
        // The enum's discriminants are its declaration order, which is the order of `ALL`
        // (both come from the one list in `task_types!`).
        self as usize
    }
}

/// Displays the short name, as Lotus does in every CLI table.
impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_match_lotus() {
        let shorts: Vec<&str> = TaskType::ALL.iter().map(|t| t.short()).collect();
        assert_eq!(
            shorts,
            [
                "AP", "PC1", "PC2", "C1", "C2", "FIN", "GET", "RU", "PR1", "PR2", "GSK", "FRU",
                "UNS"
            ]
        );
    }

    #[test]
    fn parse_round_trips_and_ignores_case() {
        for t in TaskType::ALL {
            assert_eq!(TaskType::parse(t.short()), Some(t));
            assert_eq!(TaskType::parse(&t.short().to_lowercase()), Some(t));
        }
        assert_eq!(TaskType::parse(" pc2 "), Some(TaskType::PreCommit2));
        assert_eq!(TaskType::parse("Get"), Some(TaskType::Fetch));
        assert_eq!(TaskType::parse("PC3"), None);
        assert_eq!(TaskType::parse(""), None);
        assert_eq!(TaskType::parse("PreCommit1"), None);
    }

    #[test]
    fn order_matches_lotus_table() {
        let orders: Vec<i32> = TaskType::ALL.iter().map(|t| t.order()).collect();
        // AP, PC1, PC2, C1, C2, FIN, GET, RU, PR1, PR2, GSK, FRU, UNS
        assert_eq!(orders, [9, 5, 4, 2, 3, -3, -1, 8, 6, 7, 11, 0, 1]);
    }

    #[test]
    fn index_is_position_in_all() {
        for (i, t) in TaskType::ALL.into_iter().enumerate() {
            assert_eq!(t.index(), i);
        }
    }

    #[test]
    fn workers_run_every_type_by_default_and_help_lists_them() {
        // Lotus's worker switches all default to true (`--unseal`, `--replica-update`, …).
        assert_eq!(TaskType::SEALING.to_vec(), TaskType::ALL.to_vec());
        assert_eq!(
            TaskType::short_names(&TaskType::SEALING),
            "AP, PC1, PC2, C1, C2, FIN, GET, RU, PR1, PR2, GSK, FRU, UNS"
        );
    }

    #[test]
    fn display_is_short_name() {
        assert_eq!(TaskType::Commit2.to_string(), "C2");
    }
}
