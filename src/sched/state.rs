//! The sector state machine: typed states, and one transition table per pipeline that says
//! which task each compute state runs, where a success or a failure leads, and how a failed
//! phase is retried.
//!
//! The interactive-PoRep pipeline follows Lotus's (`storage/pipeline/fsm.go`; see
//! docs/lotus-scheduler.md#sector-states): AddPiece → PreCommit1 → PreCommit2 →
//! PreCommitBatch → PreCommitBatchWait → WaitSeed → Commit1 → Commit2 → CommitBatch →
//! CommitBatchWait → Finalize → Proving. A failed task moves the sector to `<Phase>Failed`;
//! after a back-off it retries the phase. Past `max_retries` failures the sector falls back
//! the way Lotus's `states_failed.go` does (docs/lotus-scheduler.md#retries): PC2 and C2
//! redo the phase before them, AddPiece and PC1 give up (Lotus removes such a sector; we
//! keep it, marked `FailedUnrecoverable`, for the operator), Finalize keeps retrying (the
//! proof is on chain). Later pipelines (NI-PoRep, snap deals, unseal) are further tables of
//! [`Step`]s and [`Edge`]s over the same states.
//!
//! States are stored as their names (the text Lotus shows) in the database; [`SectorState::
//! parse`] is the only way back.

use std::fmt;

use super::task_type::TaskType;

macro_rules! states {
    ($($v:ident),+ $(,)?) => {
        /// Where a sector is. Stored as its name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum SectorState { $($v),+ }

        impl SectorState {
            /// Every state in pipeline order (failure states after their phase).
            pub const ALL: &'static [SectorState] = &[$(SectorState::$v),+];

            pub fn as_str(self) -> &'static str {
                match self { $(SectorState::$v => stringify!($v)),+ }
            }
        }
    };
}

states!(
    AddPiece,
    AddPieceFailed,
    PreCommit1,
    PreCommit1Failed,
    PreCommit2,
    PreCommit2Failed,
    PreCommitBatch,
    PreCommitBatchWait,
    PreCommitFailed,
    WaitSeed,
    Commit1,
    Commit1Failed,
    Commit2,
    Commit2Failed,
    CommitBatch,
    CommitBatchWait,
    CommitFailed,
    Finalize,
    FinalizeFailed,
    Proving,
    SnapDealsAddPiece,
    SnapDealsAddPieceFailed,
    UpdateReplica,
    ReplicaUpdateFailed,
    ProveReplicaUpdate,
    ProveReplicaUpdateFailed,
    ProveReplicaUpdate2,
    ProveReplicaUpdate2Failed,
    SubmitReplicaUpdate,
    ReplicaUpdateWait,
    SubmitReplicaUpdateFailed,
    FinalizeReplicaUpdate,
    FinalizeReplicaUpdateFailed,
    AbortUpgrade,
    Unsealing,
    UnsealFailed,
    RegenSectorKey,
    RegenSectorKeyFailed,
    FailedUnrecoverable,
    Removed,
);

use SectorState::*;

impl SectorState {
    pub fn parse(s: &str) -> Option<SectorState> {
        Self::ALL.iter().copied().find(|x| x.as_str() == s)
    }

    /// Nothing more happens to the sector without the operator.
    pub fn is_done(self) -> bool {
        matches!(self, Proving | AbortUpgrade | FailedUnrecoverable | Removed)
    }

    /// A state a failure leads to, which a back-off then retries.
    pub fn is_failure(self) -> bool {
        retry_for(self).is_some()
    }
}

impl fmt::Display for SectorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compute state: the task it runs and where the task's outcome leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub state: SectorState,
    pub task: TaskType,
    pub success: SectorState,
    pub failure: SectorState,
}

/// A failure state: the phase it retries, and where it goes once retries are spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub failed: SectorState,
    pub phase: SectorState,
    /// `None`: retry forever.
    pub exhausted: Option<SectorState>,
}

/// A transition that happens without a task (batches, the chain), or by the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub from: SectorState,
    pub to: SectorState,
    pub why: &'static str,
}

/// One pipeline's transition table.
#[derive(Debug)]
pub struct Pipeline {
    pub name: &'static str,
    pub first: SectorState,
    pub steps: &'static [Step],
    pub retries: &'static [Retry],
    pub edges: &'static [Edge],
}

const fn step(
    state: SectorState,
    task: TaskType,
    success: SectorState,
    failure: SectorState,
) -> Step {
    Step {
        state,
        task,
        success,
        failure,
    }
}

const fn retry(failed: SectorState, phase: SectorState, exhausted: Option<SectorState>) -> Retry {
    Retry {
        failed,
        phase,
        exhausted,
    }
}

const fn edge(from: SectorState, to: SectorState, why: &'static str) -> Edge {
    Edge { from, to, why }
}

/// Interactive PoRep (Lotus's sealing pipeline).
pub static INTERACTIVE_POREP: Pipeline = Pipeline {
    name: "interactive-porep",
    first: AddPiece,
    steps: &[
        step(AddPiece, TaskType::AddPiece, PreCommit1, AddPieceFailed),
        step(
            PreCommit1,
            TaskType::PreCommit1,
            PreCommit2,
            PreCommit1Failed,
        ),
        step(
            PreCommit2,
            TaskType::PreCommit2,
            PreCommitBatch,
            PreCommit2Failed,
        ),
        step(Commit1, TaskType::Commit1, Commit2, Commit1Failed),
        step(Commit2, TaskType::Commit2, CommitBatch, Commit2Failed),
        step(Finalize, TaskType::Finalize, Proving, FinalizeFailed),
    ],
    retries: &[
        retry(AddPieceFailed, AddPiece, Some(FailedUnrecoverable)),
        retry(PreCommit1Failed, PreCommit1, Some(FailedUnrecoverable)),
        retry(PreCommit2Failed, PreCommit2, Some(PreCommit1)),
        // Rejected by the chain: a new ticket, so PC1 again.
        retry(PreCommitFailed, PreCommit1, Some(FailedUnrecoverable)),
        retry(Commit1Failed, Commit1, Some(FailedUnrecoverable)),
        retry(Commit2Failed, Commit2, Some(Commit1)),
        // An invalid proof on chain: prove again from Commit1.
        retry(CommitFailed, Commit1, Some(FailedUnrecoverable)),
        retry(FinalizeFailed, Finalize, None),
    ],
    edges: &[
        edge(
            PreCommitBatch,
            PreCommitBatchWait,
            "claimed into a precommit batch",
        ),
        edge(PreCommitBatchWait, WaitSeed, "precommit landed"),
        edge(PreCommitBatchWait, PreCommitFailed, "precommit rejected"),
        edge(WaitSeed, Commit1, "seed epoch reached"),
        // NI-PoRep (FIP-0092): no precommit and no seed to wait for ([`success_of`]).
        edge(PreCommit2, Commit1, "NI-PoRep: no precommit"),
        edge(CommitBatch, CommitBatchWait, "claimed into a commit batch"),
        edge(CommitBatchWait, Finalize, "proof landed"),
        edge(CommitBatchWait, CommitFailed, "proof rejected"),
    ],
};

/// Snap deals (Lotus `states_replica_update.go`, docs/snap-deals.md#the-scheduled-pipeline):
/// a proving CC sector takes new data without sealing again. `sectors snap-up` moves it from
/// Proving to SnapDealsAddPiece; AddPiece writes the update's data, ReplicaUpdate encodes it
/// into the update replica, ProveReplicaUpdate runs PR1 and ProveReplicaUpdate2 runs PR2 (Lotus
/// does both in one state; one task per state keeps each restartable alone), the proof waits
/// in SubmitReplicaUpdate for an update batch (`ProveReplicaUpdates3`, up to 16 sectors), and
/// FinalizeReplicaUpdate moves the files to long-term storage once the update has landed
/// (Lotus finalizes before submitting; finalizing after keeps the update cache on the sealing
/// path while the chain may still reject the proof, so a re-proof needs no fetch). Retries
/// spent before the chain took the update end in AbortUpgrade: the sector still proves with
/// its sector key, and the update's files are kept for the operator.
pub static SNAP_DEALS: Pipeline = Pipeline {
    name: "snap-deals",
    first: SnapDealsAddPiece,
    steps: &[
        step(
            SnapDealsAddPiece,
            TaskType::AddPiece,
            UpdateReplica,
            SnapDealsAddPieceFailed,
        ),
        step(
            UpdateReplica,
            TaskType::ReplicaUpdate,
            ProveReplicaUpdate,
            ReplicaUpdateFailed,
        ),
        step(
            ProveReplicaUpdate,
            TaskType::ProveReplicaUpdate1,
            ProveReplicaUpdate2,
            ProveReplicaUpdateFailed,
        ),
        step(
            ProveReplicaUpdate2,
            TaskType::ProveReplicaUpdate2,
            SubmitReplicaUpdate,
            ProveReplicaUpdate2Failed,
        ),
        step(
            FinalizeReplicaUpdate,
            TaskType::FinalizeReplicaUpdate,
            Proving,
            FinalizeReplicaUpdateFailed,
        ),
    ],
    retries: &[
        retry(
            SnapDealsAddPieceFailed,
            SnapDealsAddPiece,
            Some(AbortUpgrade),
        ),
        retry(ReplicaUpdateFailed, UpdateReplica, Some(AbortUpgrade)),
        retry(
            ProveReplicaUpdateFailed,
            ProveReplicaUpdate,
            Some(UpdateReplica),
        ),
        retry(
            ProveReplicaUpdate2Failed,
            ProveReplicaUpdate2,
            Some(ProveReplicaUpdate),
        ),
        // Rejected by the chain: prove again from PR1.
        retry(
            SubmitReplicaUpdateFailed,
            ProveReplicaUpdate,
            Some(AbortUpgrade),
        ),
        retry(FinalizeReplicaUpdateFailed, FinalizeReplicaUpdate, None),
    ],
    edges: &[
        edge(Proving, SnapDealsAddPiece, "snap-up by the operator"),
        edge(
            SubmitReplicaUpdate,
            ReplicaUpdateWait,
            "claimed into an update batch",
        ),
        edge(ReplicaUpdateWait, FinalizeReplicaUpdate, "update landed"),
        edge(
            ReplicaUpdateWait,
            SubmitReplicaUpdateFailed,
            "update rejected",
        ),
    ],
};

/// Unseal on demand (Lotus's UNS task): a proving sector's unsealed copy regenerated in its
/// storage, from the sector key (labeled again) or, for a snapped sector, the update replica.
/// The sector proves throughout; a failure past its retries leaves it Proving without a copy.
pub static UNSEAL: Pipeline = Pipeline {
    name: "unseal",
    first: Unsealing,
    steps: &[step(Unsealing, TaskType::Unseal, Proving, UnsealFailed)],
    retries: &[retry(UnsealFailed, Unsealing, Some(Proving))],
    edges: &[edge(Proving, Unsealing, "unseal requested")],
};

/// Sector-key regeneration (Lotus's GSK task, RegenSectorKey): a snapped sector whose sector
/// key (`sealed/`) is gone gets it back from the update replica and the update's data
/// (`seal-unseal --sector-key`, kept only if it gives the sector's comm_r again). The sector
/// proves throughout, from the update replica; a failure past its retries leaves it Proving.
pub static REGEN_KEY: Pipeline = Pipeline {
    name: "regen-sector-key",
    first: RegenSectorKey,
    steps: &[step(
        RegenSectorKey,
        TaskType::RegenSectorKey,
        Proving,
        RegenSectorKeyFailed,
    )],
    retries: &[retry(RegenSectorKeyFailed, RegenSectorKey, Some(Proving))],
    edges: &[edge(
        Proving,
        RegenSectorKey,
        "sector key regeneration requested",
    )],
};

/// Every pipeline. A compute or failure state belongs to exactly one (a unit test checks), so
/// a sector's state alone says which table moves it; Proving is where the later pipelines
/// start and end.
pub static PIPELINES: [&Pipeline; 4] = [&INTERACTIVE_POREP, &SNAP_DEALS, &UNSEAL, &REGEN_KEY];

/// The pipelines an operator's command starts from Proving, with that command: they need
/// its checks and inputs, so `sectors update-state` does not start them.
pub static STARTED_BY_COMMAND: [(&Pipeline, &str); 3] = [
    (&SNAP_DEALS, "sectors snap-up"),
    (&UNSEAL, "sectors unseal"),
    (&REGEN_KEY, "sectors regen-key"),
];

/// Where a sector goes when `step` succeeds. An NI-PoRep sector (`non_interactive`) skips
/// the precommit and the seed: its PreCommit2 leads straight to Commit1, and its commit goes
/// on chain as `ProveCommitSectorsNI`, from the same CommitBatch.
pub fn success_of(step: &Step, non_interactive: bool) -> SectorState {
    if non_interactive && step.state == PreCommit2 {
        Commit1
    } else {
        step.success
    }
}

/// The step a compute state runs, in whichever pipeline has it.
pub fn step_for(state: SectorState) -> Option<&'static Step> {
    PIPELINES.iter().find_map(|p| p.step(state))
}

/// The retry rule of a failure state, in whichever pipeline has it.
pub fn retry_for(failed: SectorState) -> Option<&'static Retry> {
    PIPELINES.iter().find_map(|p| p.retry(failed))
}

/// Where a failed sector goes once its back-off has passed ([`Pipeline::retry_target`]).
pub fn retry_target(failed: SectorState, fails: u32, max_retries: u32) -> Option<SectorState> {
    PIPELINES
        .iter()
        .find_map(|p| p.retry_target(failed, fails, max_retries))
}

/// Every compute state of every pipeline.
pub fn compute_states() -> Vec<SectorState> {
    PIPELINES
        .iter()
        .flat_map(|p| p.steps.iter().map(|s| s.state))
        .collect()
}

/// Every failure state of every pipeline.
pub fn failure_states() -> Vec<SectorState> {
    PIPELINES
        .iter()
        .flat_map(|p| p.retries.iter().map(|r| r.failed))
        .collect()
}

/// Whether some pipeline moves a sector from `from` to `to` ([`Pipeline::allows`]).
pub fn allows(from: SectorState, to: SectorState) -> bool {
    PIPELINES.iter().any(|p| p.allows(from, to))
}

impl Pipeline {
    /// Whether a sector in `state` is inside this pipeline (not at Proving, where the later
    /// pipelines start and end).
    pub fn owns(&self, state: SectorState) -> bool {
        state != Proving
            && (self.steps.iter().any(|s| s.state == state)
                || self.retries.iter().any(|r| r.failed == state)
                || self.edges.iter().any(|e| e.from == state || e.to == state))
    }

    /// The step a compute state runs.
    pub fn step(&self, state: SectorState) -> Option<&Step> {
        self.steps.iter().find(|s| s.state == state)
    }

    /// The compute state that runs `task`.
    pub fn step_of(&self, task: TaskType) -> Option<&Step> {
        self.steps.iter().find(|s| s.task == task)
    }

    pub fn retry(&self, failed: SectorState) -> Option<&Retry> {
        self.retries.iter().find(|r| r.failed == failed)
    }

    /// Where a failed sector goes once its back-off has passed, after `fails` failures of
    /// that phase (`fails` counts the one just recorded); `None` if `failed` is no failure.
    pub fn retry_target(
        &self,
        failed: SectorState,
        fails: u32,
        max_retries: u32,
    ) -> Option<SectorState> {
        let r = self.retry(failed)?;
        Some(match r.exhausted {
            Some(to) if fails > max_retries => to,
            _ => r.phase,
        })
    }

    /// Whether the pipeline itself ever moves a sector from `from` to `to` (what
    /// `sectors update-state` allows without `--really-do-it`). Removal is always allowed.
    pub fn allows(&self, from: SectorState, to: SectorState) -> bool {
        to == Removed
            || self
                .steps
                .iter()
                .any(|s| s.state == from && (s.success == to || s.failure == to))
            || self
                .retries
                .iter()
                .any(|r| r.failed == from && (r.phase == to || r.exhausted == Some(to)))
            || self.edges.iter().any(|e| e.from == from && e.to == to)
    }
}

/// Exponential back-off: `min · 2^(fails−1)`, capped at `max` (Lotus waits a flat minute).
pub fn backoff(fails: u32, min: f64, max: f64) -> f64 {
    (min * 2f64.powi(fails.saturating_sub(1).min(30) as i32)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &Pipeline = &INTERACTIVE_POREP;

    #[test]
    fn names_round_trip_and_are_lotus_names() {
        for s in SectorState::ALL {
            assert_eq!(SectorState::parse(s.as_str()), Some(*s));
        }
        assert_eq!(SectorState::ALL.len(), 40);
        assert_eq!(PreCommitBatchWait.to_string(), "PreCommitBatchWait");
        assert_eq!(SectorState::parse("Sealing"), None);
    }

    #[test]
    fn the_happy_path_reaches_proving() {
        let mut s = P.first;
        let mut path = vec![s];
        while !s.is_done() {
            s = match P.step(s) {
                Some(st) => st.success,
                None => {
                    P.edges
                        .iter()
                        .find(|e| e.from == s && !e.to.is_failure())
                        .unwrap()
                        .to
                }
            };
            path.push(s);
        }
        assert_eq!(
            path,
            [
                AddPiece,
                PreCommit1,
                PreCommit2,
                PreCommitBatch,
                PreCommitBatchWait,
                WaitSeed,
                Commit1,
                Commit2,
                CommitBatch,
                CommitBatchWait,
                Finalize,
                Proving
            ]
        );
    }

    #[test]
    fn every_state_is_reachable_and_every_failure_retries() {
        for s in SectorState::ALL {
            let reached =
                *s == P.first || SectorState::ALL.iter().any(|f| f != s && allows(*f, *s));
            assert!(reached, "{s} is unreachable");
        }
        for p in PIPELINES {
            for st in p.steps {
                assert!(p.retry(st.failure).is_some(), "{} has no retry", st.failure);
            }
        }
    }

    #[test]
    fn each_compute_and_failure_state_belongs_to_one_pipeline() {
        for s in SectorState::ALL {
            let owners = PIPELINES
                .iter()
                .filter(|p| p.step(*s).is_some() || p.retry(*s).is_some())
                .count();
            assert!(owners <= 1, "{s} is in {owners} pipelines");
        }
        // The later pipelines start from Proving and end there (or wait for the operator).
        for (p, _) in STARTED_BY_COMMAND {
            assert!(p.allows(Proving, p.first), "{}", p.name);
        }
    }

    /// Follows successes (and task-less edges that are no failure) from `first`.
    fn happy_path(p: &Pipeline) -> Vec<SectorState> {
        let mut s = p.first;
        let mut path = vec![s];
        loop {
            s = match p.step(s) {
                Some(st) => st.success,
                None => match p.edges.iter().find(|e| e.from == s && !e.to.is_failure()) {
                    Some(e) => e.to,
                    None => break,
                },
            };
            path.push(s);
            if s.is_done() {
                break;
            }
        }
        path
    }

    #[test]
    fn the_snap_and_unseal_pipelines_return_to_proving() {
        assert_eq!(
            happy_path(&SNAP_DEALS),
            [
                SnapDealsAddPiece,
                UpdateReplica,
                ProveReplicaUpdate,
                ProveReplicaUpdate2,
                SubmitReplicaUpdate,
                ReplicaUpdateWait,
                FinalizeReplicaUpdate,
                Proving
            ]
        );
        assert_eq!(happy_path(&UNSEAL), [Unsealing, Proving]);
        assert_eq!(happy_path(&REGEN_KEY), [RegenSectorKey, Proving]);
        assert!(SNAP_DEALS.owns(ReplicaUpdateWait) && SNAP_DEALS.owns(ReplicaUpdateFailed));
        assert!(!SNAP_DEALS.owns(Proving) && !SNAP_DEALS.owns(Unsealing));
        assert_eq!(retry_target(RegenSectorKeyFailed, 4, 3), Some(Proving));
        assert_eq!(
            step_for(RegenSectorKey).unwrap().task,
            TaskType::RegenSectorKey
        );
        let t = |s, f| retry_target(s, f, 3).unwrap();
        assert_eq!(t(ProveReplicaUpdate2Failed, 4), ProveReplicaUpdate);
        assert_eq!(t(ProveReplicaUpdateFailed, 4), UpdateReplica);
        assert_eq!(t(ReplicaUpdateFailed, 4), AbortUpgrade);
        assert_eq!(t(SubmitReplicaUpdateFailed, 1), ProveReplicaUpdate);
        assert_eq!(t(FinalizeReplicaUpdateFailed, 40), FinalizeReplicaUpdate);
        assert_eq!(t(UnsealFailed, 4), Proving);
        assert_eq!(
            step_for(UpdateReplica).unwrap().task,
            TaskType::ReplicaUpdate
        );
        assert_eq!(
            step_for(SnapDealsAddPiece).unwrap().task,
            TaskType::AddPiece
        );
        assert!(AbortUpgrade.is_done() && !AbortUpgrade.is_failure());
        assert!(UnsealFailed.is_failure() && SubmitReplicaUpdateFailed.is_failure());
        assert!(allows(Proving, Unsealing) && allows(Proving, SnapDealsAddPiece));
        assert!(!allows(Proving, UpdateReplica));
    }

    #[test]
    fn retries_fall_back_as_lotus_does() {
        let t = |s, f| P.retry_target(s, f, 3).unwrap();
        assert_eq!(t(PreCommit2Failed, 1), PreCommit2);
        assert_eq!(t(PreCommit2Failed, 4), PreCommit1);
        assert_eq!(t(PreCommit1Failed, 4), FailedUnrecoverable);
        assert_eq!(t(Commit2Failed, 4), Commit1);
        assert_eq!(t(FinalizeFailed, 40), Finalize);
        assert_eq!(t(PreCommitFailed, 1), PreCommit1);
        assert_eq!(t(CommitFailed, 1), Commit1);
        assert_eq!(P.retry_target(Proving, 1, 3), None);
        assert_eq!(P.step_of(TaskType::Commit2).unwrap().success, CommitBatch);
        assert_eq!(backoff(1, 60.0, 1800.0), 60.0);
        assert_eq!(backoff(3, 60.0, 1800.0), 240.0);
        assert_eq!(backoff(10, 60.0, 1800.0), 1800.0);
    }

    #[test]
    fn update_state_is_guarded_by_the_table() {
        assert!(P.allows(PreCommit2Failed, PreCommit1));
        assert!(P.allows(CommitBatchWait, Finalize));
        assert!(P.allows(Proving, Removed));
        assert!(!P.allows(AddPiece, Proving));
        assert!(!P.allows(Proving, PreCommit1));
        assert!(!P.allows(WaitSeed, CommitBatch));
        // NI-PoRep: PreCommit2 leads to Commit1; every other step as for interactive.
        let pc2 = P.step_of(TaskType::PreCommit2).unwrap();
        assert_eq!(success_of(pc2, false), PreCommitBatch);
        assert_eq!(success_of(pc2, true), Commit1);
        assert!(P.allows(PreCommit2, Commit1));
        for step in P.steps.iter().filter(|s| s.state != PreCommit2) {
            assert_eq!(success_of(step, true), step.success);
        }
    }
}
