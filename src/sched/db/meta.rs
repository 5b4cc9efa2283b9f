//! Small keyed settings of the repository: `meta` (schema version, the sector-number
//! counter), runtime task switches of workers, and the remote hosts' last heartbeat.

use anyhow::Result;
use rusqlite::{params, Connection, OptionalExtension};

use crate::sched::task_type::TaskType;

pub fn meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
        params![key, value],
    )?;
    Ok(())
}

/// Runtime task switches (`seal-sched workers disable NAME PC1`), over the config: worker,
/// task type name, enabled.
pub fn switches(conn: &Connection) -> Result<Vec<(String, String, bool)>> {
    let mut st = conn.prepare_cached("SELECT worker, task, enabled FROM switches")?;
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Turns task type `task` on or off for `worker`, over its config.
pub fn set_switch(conn: &Connection, worker: &str, task: TaskType, enabled: bool) -> Result<()> {
    conn.execute(
        "INSERT INTO switches (worker, task, enabled) VALUES (?1, ?2, ?3) \
         ON CONFLICT(worker, task) DO UPDATE SET enabled = ?3",
        params![worker, task.short(), enabled as i64],
    )?;
    Ok(())
}

/// What the last heartbeat of a remote host found.
pub struct HostBeat<'a> {
    pub host: &'a str,
    pub up: bool,
    pub last_seen: Option<f64>,
    pub error: Option<&'a str>,
    /// The host's probe (JSON), when this heartbeat took one; else the last one is kept.
    pub probe: Option<&'a str>,
    pub at: f64,
}

pub fn record_host(conn: &Connection, b: &HostBeat) -> Result<()> {
    conn.execute(
        "INSERT INTO hosts (host, up, last_seen, error, probe, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT(host) DO UPDATE SET up = ?2, last_seen = ?3, error = ?4, probe = coalesce(?5, probe), updated = ?6",
        params![b.host, b.up as i64, b.last_seen, b.error, b.probe, b.at],
    )?;
    Ok(())
}
