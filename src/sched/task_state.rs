//! Where a task is, and what became of it: a task is queued, then running, then ends in one
//! of five outcomes. Stored as its name in `tasks.state`; [`TaskState::parse`] is the only
//! way back, so a row holding anything else is an unreadable row (quarantined), never a
//! task the scheduler half understands.
//!
//! Two of the states are *live*: the database's partial unique index `one_live_task` allows
//! one live task per sector, and only a live task holds (or will hold) the sector's lock.

use std::fmt;

/// The life of one task row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskState {
    /// Waiting for a worker (possibly assigned one already, not started).
    Queued,
    /// Committed as started; its supervisor runs (or ran, and its status file says how).
    Running,
    /// The phase succeeded (or its result was not needed: the sector had moved on).
    Done,
    /// The phase failed; the sector backs off and retries.
    Failed,
    /// The connection to its host was lost; queued again without counting a failure.
    Lost,
    /// Its supervisor was gone after a daemon restart; queued again.
    Abandoned,
    /// Cancelled before it started (`jobs --abort`, `sectors remove`).
    Cancelled,
}

impl TaskState {
    pub const ALL: [TaskState; 7] = [
        TaskState::Queued,
        TaskState::Running,
        TaskState::Done,
        TaskState::Failed,
        TaskState::Lost,
        TaskState::Abandoned,
        TaskState::Cancelled,
    ];

    /// The states the `one_live_task` index covers (its SQL names them literally).
    pub const LIVE: [TaskState; 2] = [TaskState::Queued, TaskState::Running];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
            TaskState::Lost => "lost",
            TaskState::Abandoned => "abandoned",
            TaskState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Queued or running: the sector's one task in flight.
    pub fn is_live(self) -> bool {
        Self::LIVE.contains(&self)
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_from_its_name_and_nothing_else_does() {
        for s in TaskState::ALL {
            assert_eq!(TaskState::parse(s.as_str()), Some(s));
        }
        for bad in ["", "Queued", "RUNNING", "done ", "sending"] {
            assert_eq!(TaskState::parse(bad), None, "{bad:?}");
        }
        let live: Vec<_> = TaskState::ALL.into_iter().filter(|s| s.is_live()).collect();
        assert_eq!(live, [TaskState::Queued, TaskState::Running]);
    }

    #[test]
    fn the_live_index_names_exactly_the_live_states() {
        let schema = crate::sched::db::schema_text();
        let index = schema
            .split("CREATE UNIQUE INDEX IF NOT EXISTS one_live_task")
            .nth(1)
            .and_then(|s| s.split(';').next())
            .expect("the schema has the one_live_task index");
        let names: Vec<String> = TaskState::LIVE
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        assert!(
            index.contains(&format!("state IN ({})", names.join(", "))),
            "{index}"
        );
    }
}
