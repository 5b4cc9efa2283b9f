//! The `tasks` table: one row per attempt at a phase. A task is queued, started (committed
//! as running before its process exists) and finished with an outcome ([`TaskState`]).
//! The `one_live_task` index allows one queued or running task per sector.

use std::collections::HashMap;

use anyhow::Result;
use rusqlite::{params, Connection};

use super::now;
use super::quarantine::quarantined_as_errors;
use super::rows::{self, read_rows, task_row, RowError, Table, TaskRow, TASK_COLS};
use super::sectors::name_list;
use crate::sched::task_state::TaskState;
use crate::sched::task_type::TaskType;

fn select<P: rusqlite::Params>(conn: &Connection, clause: &str, p: P) -> Result<Vec<TaskRow>> {
    rows::select(conn, Table::Tasks, clause, p, task_row)
}

fn live_list() -> String {
    name_list(&TaskState::LIVE, TaskState::as_str)
}

/// Task `id`, unless it is missing or quarantined.
pub fn get(conn: &Connection, id: u64) -> Result<Option<TaskRow>> {
    Ok(select(conn, "id = ?1", [id as i64])?.pop())
}

/// The tasks in `state`, oldest first.
pub fn in_state(conn: &Connection, state: TaskState) -> Result<Vec<TaskRow>> {
    select(conn, "state = ?1 ORDER BY id", [state.as_str()])
}

/// How many tasks are in `state`.
pub fn count_in_state(conn: &Connection, state: TaskState) -> Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM tasks WHERE state = ?1",
        [state.as_str()],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

/// Sector `sector`'s live task (queued or running), if it has one.
pub fn live_of(conn: &Connection, sector: u64) -> Result<Vec<TaskRow>> {
    select(
        conn,
        &format!("sector = ?1 AND state IN ({}) ORDER BY id", live_list()),
        [sector as i64],
    )
}

/// The tasks for `seal-sched jobs`, readable or not: the live ones (running first), or with
/// `all` every task by id. A row that cannot be read is its error.
pub fn listing(conn: &Connection, all: bool) -> Result<Vec<(u64, Result<TaskRow, RowError>)>> {
    let clause = if all {
        "1 ORDER BY id".to_string()
    } else {
        format!("state IN ({}) ORDER BY state DESC, id", live_list())
    };
    let sql = format!("SELECT {TASK_COLS} FROM tasks WHERE {clause}");
    let mut out = read_rows(conn, Table::Tasks, &sql, [], task_row)?;
    out.extend(quarantined_as_errors(conn, Table::Tasks)?);
    Ok(out)
}

/// Queues a `kind` task for `sector` (refused by the index if it has a live one).
pub fn queue(conn: &Connection, sector: u64, kind: TaskType) -> Result<()> {
    conn.execute(
        "INSERT INTO tasks (sector, kind, state, created) VALUES (?1, ?2, ?3, ?4)",
        params![
            sector as i64,
            kind.short(),
            TaskState::Queued.as_str(),
            now()
        ],
    )?;
    Ok(())
}

/// The scheduler's decision for a queued task: placed on `worker` (or on none), and why.
pub fn assign(
    conn: &Connection,
    id: u64,
    worker: Option<&str>,
    reason: Option<&str>,
) -> Result<()> {
    conn.execute(
        "UPDATE tasks SET worker = ?2, wait_reason = ?3 WHERE id = ?1",
        params![id as i64, worker, reason],
    )?;
    Ok(())
}

/// Why a task placed on a worker waits there.
pub fn set_wait_reason(conn: &Connection, id: u64, reason: &str) -> Result<()> {
    conn.execute(
        "UPDATE tasks SET wait_reason = ?2 WHERE id = ?1",
        params![id as i64, reason],
    )?;
    Ok(())
}

/// Moves a queued task to running on `worker`. False when it is no longer queued (aborted
/// since it was read): then nothing changed, and it must not start.
pub fn start(conn: &Connection, id: u64, worker: &str, fetch_to: Option<&str>) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tasks SET state = ?5, started = ?2, worker = ?3, fetch_to = ?4, wait_reason = NULL \
         WHERE id = ?1 AND state = ?6",
        params![
            id as i64,
            now(),
            worker,
            fetch_to,
            TaskState::Running.as_str(),
            TaskState::Queued.as_str()
        ],
    )?;
    Ok(n == 1)
}

/// Moves a queued task to running inside `leader`'s process (a PC1 batch). False when it is
/// no longer queued.
pub fn start_rider(conn: &Connection, id: u64, worker: &str, leader: u64) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tasks SET state = ?4, started = ?2, worker = ?3, leader = ?5, \
         wait_reason = NULL WHERE id = ?1 AND state = ?6",
        params![
            id as i64,
            now(),
            worker,
            TaskState::Running.as_str(),
            leader as i64,
            TaskState::Queued.as_str()
        ],
    )?;
    Ok(n == 1)
}

/// The process id of its supervisor.
pub fn set_pid(conn: &Connection, id: u64, pid: u32) -> Result<()> {
    conn.execute(
        "UPDATE tasks SET pid = ?2 WHERE id = ?1",
        params![id as i64, pid as i64],
    )?;
    Ok(())
}

/// Ends a task with `outcome` at time `at`; `error` (when given) says why.
pub fn finish(
    conn: &Connection,
    id: u64,
    outcome: TaskState,
    at: f64,
    error: Option<&str>,
) -> Result<()> {
    debug_assert!(
        !outcome.is_live(),
        "a task ends in an outcome, not {outcome}"
    );
    conn.execute(
        "UPDATE tasks SET state = ?2, finished = ?3, error = coalesce(?4, error) WHERE id = ?1",
        params![id as i64, outcome.as_str(), at, error],
    )?;
    Ok(())
}

/// Cancels task `id` if it is still queued, in one conditional update (a start and a
/// cancel never both win). Whether it was.
pub fn cancel_queued(conn: &Connection, id: u64, why: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tasks SET state = ?2, finished = ?3, error = ?4 WHERE id = ?1 AND state = ?5",
        params![
            id as i64,
            TaskState::Cancelled.as_str(),
            now(),
            why,
            TaskState::Queued.as_str()
        ],
    )?;
    Ok(n == 1)
}

/// How many of `sector`'s tasks were lost since its last successful one.
pub fn lost_since_done(conn: &Connection, sector: u64) -> Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM tasks WHERE sector = ?1 AND state = ?2 AND id > \
         coalesce((SELECT max(id) FROM tasks WHERE sector = ?1 AND state = ?3), 0)",
        params![
            sector as i64,
            TaskState::Lost.as_str(),
            TaskState::Done.as_str()
        ],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

/// Mean run time of the successful tasks of each type (by short name), for backfill.
pub fn mean_durations(conn: &Connection) -> Result<HashMap<String, f64>> {
    let mut st = conn.prepare_cached(
        "SELECT kind, avg(finished - started) FROM tasks \
         WHERE state = ?1 AND started IS NOT NULL AND finished IS NOT NULL GROUP BY kind",
    )?;
    let rows = st
        .query_map([TaskState::Done.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?))
        })?
        .collect::<rusqlite::Result<HashMap<_, _>>>()?;
    Ok(rows)
}
