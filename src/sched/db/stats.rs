//! Read-only aggregates for the farm's observers (`/metrics`, the web view, alerts): counts
//! and times straight from the tables, so every counter survives a daemon restart, and a
//! connection of their own that only reads, so a scrape never holds the writer lock that a
//! daemon pass needs (WAL readers never block the writer).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};

/// A connection that can only read the state database (`query_only`, opened read-only).
pub fn open_reader(path: &Path) -> Result<Connection> {
    super::check_header(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open state database {} to read", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// How many sectors are in each state (the stored name, whatever it is).
pub fn sectors_per_state(conn: &Connection) -> Result<Vec<(String, u64)>> {
    let mut st =
        conn.prepare_cached("SELECT state, count(*) FROM sectors GROUP BY state ORDER BY state")?;
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Tasks of one type on one worker in one state, and how many of them ever started.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskCount {
    pub kind: String,
    /// Empty for a task never placed on a worker.
    pub worker: String,
    pub state: String,
    pub count: u64,
    pub started: u64,
}

pub fn task_counts(conn: &Connection) -> Result<Vec<TaskCount>> {
    let mut st = conn.prepare_cached(
        "SELECT kind, coalesce(worker, ''), state, count(*), count(started) FROM tasks \
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok(TaskCount {
                kind: r.get(0)?,
                worker: r.get(1)?,
                state: r.get(2)?,
                count: r.get::<_, i64>(3)? as u64,
                started: r.get::<_, i64>(4)? as u64,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// One started task's times, with its sector's seal proof (for the sector-size label).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTimes {
    pub kind: String,
    pub state: String,
    pub seal_proof: Option<String>,
    pub created: f64,
    pub started: f64,
    pub finished: Option<f64>,
}

/// Every task that started, oldest first.
pub fn task_times(conn: &Connection) -> Result<Vec<TaskTimes>> {
    let mut st = conn.prepare_cached(
        "SELECT t.kind, t.state, \
         CASE WHEN json_valid(s.doc) THEN json_extract(s.doc, '$.seal_proof') END, \
         t.created, t.started, t.finished \
         FROM tasks t LEFT JOIN sectors s ON s.number = t.sector \
         WHERE t.started IS NOT NULL AND typeof(t.started) IN ('real', 'integer') \
         AND typeof(t.created) IN ('real', 'integer') ORDER BY t.id",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok(TaskTimes {
                kind: r.get(0)?,
                state: r.get(1)?,
                seal_proof: r.get::<_, Option<String>>(2).unwrap_or(None),
                created: r.get(3)?,
                started: r.get(4)?,
                finished: r.get::<_, Option<f64>>(5).unwrap_or(None),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A remote host's last heartbeat as the daemon recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRow {
    pub host: String,
    pub up: bool,
    pub last_seen: Option<f64>,
    pub error: Option<String>,
    /// The last probe (JSON), when one answered.
    pub probe: Option<String>,
    pub updated: f64,
}

pub fn hosts(conn: &Connection) -> Result<Vec<HostRow>> {
    let mut st = conn.prepare_cached(
        "SELECT host, up, last_seen, error, probe, updated FROM hosts ORDER BY host",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok(HostRow {
                host: r.get(0)?,
                up: r.get::<_, i64>(1)? != 0,
                last_seen: r.get(2)?,
                error: r.get(3)?,
                probe: r.get(4)?,
                updated: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
