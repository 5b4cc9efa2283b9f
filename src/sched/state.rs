//! The sector state machine: states, which task each compute state runs, where a success
//! or a failure leads, and the retry policy.
//!
//! The happy path follows Lotus's (`storage/pipeline/fsm.go`): AddPiece → PreCommit1 →
//! PreCommit2 → PreCommitBatch → PreCommitBatchWait → WaitSeed → Commit1 → Commit2 →
//! CommitBatch → CommitBatchWait → Finalize → Proving. A failed task moves the sector to
//! `<Phase>Failed`; after a back-off it retries the phase. Past `max_retries` failures the
//! sector falls back the way Lotus's `states_failed.go` does: PC2 and C2 redo the phase before
//! them, AddPiece and PC1 give up (Lotus removes such a sector; we keep it, marked
//! `FailedUnrecoverable`, for the operator), Finalize keeps retrying (the proof is on chain).
//! Lotus's states and retry rules: docs/lotus-scheduler.md#sector-states,
//! docs/lotus-scheduler.md#retries.

use super::task_type::TaskType;

pub const ADD_PIECE: &str = "AddPiece";
pub const PRE_COMMIT1: &str = "PreCommit1";
pub const PRE_COMMIT2: &str = "PreCommit2";
pub const PRE_COMMIT_BATCH: &str = "PreCommitBatch";
pub const PRE_COMMIT_BATCH_WAIT: &str = "PreCommitBatchWait";
pub const PRE_COMMIT_FAILED: &str = "PreCommitFailed";
pub const WAIT_SEED: &str = "WaitSeed";
pub const COMMIT1: &str = "Commit1";
pub const COMMIT2: &str = "Commit2";
pub const COMMIT_BATCH: &str = "CommitBatch";
pub const COMMIT_BATCH_WAIT: &str = "CommitBatchWait";
pub const COMMIT_FAILED: &str = "CommitFailed";
pub const FINALIZE: &str = "Finalize";
pub const PROVING: &str = "Proving";
pub const FAILED_UNRECOVERABLE: &str = "FailedUnrecoverable";

/// Every state in pipeline order (failure states after their phase), for listings.
pub const ALL: [&str; 22] = [
    ADD_PIECE,
    "AddPieceFailed",
    PRE_COMMIT1,
    "PreCommit1Failed",
    PRE_COMMIT2,
    "PreCommit2Failed",
    PRE_COMMIT_BATCH,
    PRE_COMMIT_BATCH_WAIT,
    PRE_COMMIT_FAILED,
    WAIT_SEED,
    COMMIT1,
    "Commit1Failed",
    COMMIT2,
    "Commit2Failed",
    COMMIT_BATCH,
    COMMIT_BATCH_WAIT,
    COMMIT_FAILED,
    FINALIZE,
    "FinalizeFailed",
    PROVING,
    FAILED_UNRECOVERABLE,
    "Removed",
];

/// The task a compute state runs.
pub fn task_of(state: &str) -> Option<TaskType> {
    Some(match state {
        ADD_PIECE => TaskType::AddPiece,
        PRE_COMMIT1 => TaskType::PreCommit1,
        PRE_COMMIT2 => TaskType::PreCommit2,
        COMMIT1 => TaskType::Commit1,
        COMMIT2 => TaskType::Commit2,
        FINALIZE => TaskType::Finalize,
        _ => return None,
    })
}

/// The compute state that runs `task`.
pub fn state_of(task: TaskType) -> &'static str {
    match task {
        TaskType::AddPiece => ADD_PIECE,
        TaskType::PreCommit1 => PRE_COMMIT1,
        TaskType::PreCommit2 => PRE_COMMIT2,
        TaskType::Commit1 => COMMIT1,
        TaskType::Commit2 => COMMIT2,
        _ => FINALIZE,
    }
}

/// Where a finished task leads.
pub fn after_success(task: TaskType) -> &'static str {
    match task {
        TaskType::AddPiece => PRE_COMMIT1,
        TaskType::PreCommit1 => PRE_COMMIT2,
        TaskType::PreCommit2 => PRE_COMMIT_BATCH,
        TaskType::Commit1 => COMMIT2,
        TaskType::Commit2 => COMMIT_BATCH,
        _ => PROVING,
    }
}

pub fn failed_state(task: TaskType) -> String {
    format!("{}Failed", state_of(task))
}

/// A failure state's phase: `PreCommit2Failed` → PreCommit2.
pub fn failed_phase(state: &str) -> Option<&'static str> {
    let phase = state.strip_suffix("Failed")?;
    ALL.iter().copied().find(|s| *s == phase).or(match state {
        PRE_COMMIT_FAILED => Some(PRE_COMMIT1),
        COMMIT_FAILED => Some(COMMIT1),
        _ => None,
    })
}

/// Where a failed sector goes once its back-off has passed, after `fails` failures of that
/// phase (`fails` counts the one just recorded).
pub fn retry_target(failed: &str, fails: u32, max_retries: u32) -> &'static str {
    let Some(phase) = failed_phase(failed) else {
        return FAILED_UNRECOVERABLE;
    };
    if fails <= max_retries || phase == FINALIZE {
        return phase;
    }
    match phase {
        PRE_COMMIT2 => PRE_COMMIT1,
        COMMIT2 => COMMIT1,
        _ => FAILED_UNRECOVERABLE,
    }
}

/// Exponential back-off: `min · 2^(fails−1)`, capped at `max` (Lotus waits a flat minute).
pub fn backoff(fails: u32, min: f64, max: f64) -> f64 {
    (min * 2f64.powi(fails.saturating_sub(1).min(30) as i32)).min(max)
}

pub fn is_done(state: &str) -> bool {
    state == PROVING || state == FAILED_UNRECOVERABLE || state == "Removed"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        let mut s = ADD_PIECE;
        let mut path = vec![s];
        while let Some(t) = task_of(s) {
            s = after_success(t);
            path.push(s);
        }
        assert_eq!(
            path,
            [ADD_PIECE, PRE_COMMIT1, PRE_COMMIT2, PRE_COMMIT_BATCH]
        );
        assert_eq!(after_success(TaskType::Commit2), COMMIT_BATCH);
        assert_eq!(after_success(TaskType::Finalize), PROVING);
        assert_eq!(failed_state(TaskType::PreCommit2), "PreCommit2Failed");
        assert_eq!(retry_target("PreCommit2Failed", 1, 3), PRE_COMMIT2);
        assert_eq!(retry_target("PreCommit2Failed", 4, 3), PRE_COMMIT1);
        assert_eq!(retry_target("PreCommit1Failed", 4, 3), FAILED_UNRECOVERABLE);
        assert_eq!(retry_target("Commit2Failed", 4, 3), COMMIT1);
        assert_eq!(retry_target("FinalizeFailed", 40, 3), FINALIZE);
        assert_eq!(retry_target(PRE_COMMIT_FAILED, 1, 3), PRE_COMMIT1);
        assert_eq!(retry_target(COMMIT_FAILED, 1, 3), COMMIT1);
        assert_eq!(backoff(1, 60.0, 1800.0), 60.0);
        assert_eq!(backoff(3, 60.0, 1800.0), 240.0);
        assert_eq!(backoff(10, 60.0, 1800.0), 1800.0);
    }
}
