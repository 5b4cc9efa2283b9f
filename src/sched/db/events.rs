//! The event log: every state change, task start and end, batch and host change, with its
//! time. `seal-sched sectors status N` shows a sector's; the daemon prints new ones.

use anyhow::Result;
use rusqlite::{params, Connection, Row};

use super::now;
use super::rows::EventRow;

const COLS: &str = "id, at, sector, kind, detail";

fn event_row(r: &Row) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get::<_, i64>(0)? as u64,
        at: r.get(1)?,
        sector: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
        kind: r.get(3)?,
        detail: r.get(4)?,
    })
}

/// Records an event (the sector log, `seal-sched sectors status N` shows it).
pub fn event(conn: &Connection, sector: Option<u64>, kind: &str, detail: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO events (at, sector, kind, detail) VALUES (?1, ?2, ?3, ?4)",
        params![now(), sector.map(|s| s as i64), kind, detail],
    )?;
    Ok(())
}

/// A sector's events, oldest first.
pub fn of_sector(conn: &Connection, sector: u64) -> Result<Vec<EventRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLS} FROM events WHERE sector = ?1 ORDER BY id"
    ))?;
    let rows = st
        .query_map([sector as i64], event_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Every event after event `id`, oldest first (what the daemon has not printed yet).
pub fn after(conn: &Connection, id: u64) -> Result<Vec<EventRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLS} FROM events WHERE id > ?1 ORDER BY id"
    ))?;
    let rows = st
        .query_map([id as i64], event_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The id of the newest event (0 when there is none).
pub fn last_id(conn: &Connection) -> Result<u64> {
    let id: i64 = conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?;
    Ok(id as u64)
}

/// The newest `limit` events, newest first (the web view's event log).
pub fn recent(conn: &Connection, limit: u32) -> Result<Vec<EventRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLS} FROM events ORDER BY id DESC LIMIT ?1"
    ))?;
    let rows = st
        .query_map([limit], event_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Every sector's state events, oldest first (the web view's timelines).
pub fn of_states(conn: &Connection) -> Result<Vec<EventRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLS} FROM events WHERE kind = 'state' AND sector IS NOT NULL ORDER BY id"
    ))?;
    let rows = st
        .query_map([], event_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
