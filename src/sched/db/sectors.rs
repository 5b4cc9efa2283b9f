//! The `sectors` table: one row per sector, its state, document, location, failure count and
//! epochs. Reads skip quarantined rows (see `quarantine`); every write names its column.

use anyhow::Result;
use rusqlite::{params, Connection};
use serde_json::Value;

use super::events::event;
use super::now;
use super::quarantine::quarantined_as_errors;
use super::rows::{self, read_rows, sector_row, RowError, SectorRow, Table, SECTOR_COLS};
use crate::sched::state::SectorState;
use crate::sched::task_state::TaskState;

/// The sectors `clause` selects, less the quarantined ones. A row that cannot be read is an
/// error naming table, sector and column ([`RowError`]).
fn select<P: rusqlite::Params>(conn: &Connection, clause: &str, p: P) -> Result<Vec<SectorRow>> {
    rows::select(conn, Table::Sectors, clause, p, sector_row)
}

/// States as an SQL list of names, for `state IN (…)`: the names are our own identifiers,
/// never operator text.
pub(super) fn name_list<S: Copy>(states: &[S], name: fn(S) -> &'static str) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", name(*s)))
        .collect::<Vec<_>>()
        .join(",")
}

fn state_list(states: &[SectorState]) -> String {
    name_list(states, SectorState::as_str)
}

/// Every readable sector, by number.
pub fn all(conn: &Connection) -> Result<Vec<SectorRow>> {
    select(conn, "1 ORDER BY number", [])
}

/// Sector `n`, unless it is missing or quarantined.
pub fn get(conn: &Connection, n: u64) -> Result<Option<SectorRow>> {
    Ok(select(conn, "number = ?1", [n as i64])?.pop())
}

/// Every sector for the listings, readable or not: a row that cannot be read (quarantined
/// or not yet) is its error, so one bad row never hides the others.
pub fn listing(conn: &Connection) -> Result<Vec<(u64, Result<SectorRow, RowError>)>> {
    let sql = format!("SELECT {SECTOR_COLS} FROM sectors ORDER BY number");
    let mut out = read_rows(conn, Table::Sectors, &sql, [], sector_row)?;
    out.extend(quarantined_as_errors(conn, Table::Sectors)?);
    out.sort_by_key(|(k, _)| *k);
    Ok(out)
}

/// The sectors in `state`, by number.
pub fn in_state(conn: &Connection, state: SectorState) -> Result<Vec<SectorRow>> {
    select(conn, "state = ?1 ORDER BY number", [state.as_str()])
}

/// The sectors in one of the failure states `failed` whose back-off has run out at `at`.
pub fn retry_due(conn: &Connection, failed: &[SectorState], at: f64) -> Result<Vec<SectorRow>> {
    let failed = state_list(failed);
    select(
        conn,
        &format!("state IN ({failed}) AND retry_at <= ?1 ORDER BY number"),
        [at],
    )
}

/// The sectors in one of `states` without a live task.
pub fn without_live_task(conn: &Connection, states: &[SectorState]) -> Result<Vec<SectorRow>> {
    let states = state_list(states);
    let live = name_list(&TaskState::LIVE, TaskState::as_str);
    select(
        conn,
        &format!(
            "state IN ({states}) AND number NOT IN \
             (SELECT sector FROM tasks WHERE state IN ({live})) ORDER BY number"
        ),
        [],
    )
}

/// How many sectors can still move: in none of the `done` states, and neither their row nor
/// their task's row set aside (a quarantined sector waits for the operator, not the daemon).
pub fn count_moving(conn: &Connection, done: &[SectorState]) -> Result<u64> {
    let done = state_list(done);
    let n: i64 = conn.query_row(
        &format!(
            "SELECT count(*) FROM sectors WHERE state NOT IN ({done}) \
             AND number NOT IN (SELECT key FROM quarantine WHERE tbl = ?1) \
             AND number NOT IN (SELECT sector FROM quarantine WHERE tbl = ?2 AND sector IS NOT NULL)"
        ),
        [Table::Sectors.name(), Table::Tasks.name()],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

/// Whether any row, readable or not, has number `n`.
pub fn exists(conn: &Connection, n: u64) -> Result<bool> {
    let c: i64 = conn.query_row(
        "SELECT count(*) FROM sectors WHERE number = ?1",
        [n as i64],
        |r| r.get(0),
    )?;
    Ok(c > 0)
}

/// The highest sector number below `limit`, if any.
pub fn highest_below(conn: &Connection, limit: u64) -> Result<Option<u64>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let h: Option<i64> = conn.query_row(
        "SELECT max(number) FROM sectors WHERE number < ?1",
        [limit],
        |r| r.get(0),
    )?;
    Ok(h.map(|h| h as u64))
}

/// A sector row to create.
pub struct NewSector<'a> {
    pub number: u64,
    pub state: SectorState,
    pub deal: bool,
    pub priority: i64,
    pub doc: &'a Value,
    /// Absolute paths of its deal pieces.
    pub pieces: &'a [String],
}

pub fn insert(conn: &Connection, s: &NewSector) -> Result<()> {
    conn.execute(
        "INSERT INTO sectors (number, state, deal, priority, doc, pieces, entered, created) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            s.number as i64,
            s.state.as_str(),
            s.deal as i64,
            s.priority,
            s.doc.to_string(),
            serde_json::to_string(s.pieces)?,
            now()
        ],
    )?;
    Ok(())
}

/// Moves a sector to `state`, logging the transition.
pub fn set_state(conn: &Connection, sector: u64, state: SectorState, detail: &str) -> Result<()> {
    conn.execute(
        "UPDATE sectors SET state = ?2, entered = ?3 WHERE number = ?1",
        params![sector as i64, state.as_str(), now()],
    )?;
    let sep = if detail.is_empty() { "" } else { ": " };
    event(
        conn,
        Some(sector),
        "state",
        &format!("{state}{sep}{detail}"),
    )
}

pub fn set_doc(conn: &Connection, sector: u64, doc: &Value) -> Result<()> {
    conn.execute(
        "UPDATE sectors SET doc = ?2 WHERE number = ?1",
        params![sector as i64, doc.to_string()],
    )?;
    Ok(())
}

/// A proving CC sector takes deal pieces (a snap deal): they are what its AddPiece reads.
pub fn set_deal_pieces(
    conn: &Connection,
    sector: u64,
    priority: i64,
    pieces: &[String],
) -> Result<()> {
    conn.execute(
        "UPDATE sectors SET deal = 1, priority = ?2, pieces = ?3 WHERE number = ?1",
        params![sector as i64, priority, serde_json::to_string(pieces)?],
    )?;
    Ok(())
}

/// Where the sector's files are (`None`: not placed yet).
pub fn set_location(conn: &Connection, sector: u64, location: Option<&str>) -> Result<()> {
    conn.execute(
        "UPDATE sectors SET location = ?2 WHERE number = ?1",
        params![sector as i64, location],
    )?;
    Ok(())
}

/// The epoch of the ticket its current PC1 attempt uses.
pub fn set_ticket_epoch(conn: &Connection, sector: u64, epoch: i64) -> Result<()> {
    conn.execute(
        "UPDATE sectors SET ticket_epoch = ?2 WHERE number = ?1",
        params![sector as i64, epoch],
    )?;
    Ok(())
}

/// The epoch of its interactive seed.
pub fn set_seed_epoch(conn: &Connection, sector: u64, epoch: i64) -> Result<()> {
    conn.execute(
        "UPDATE sectors SET seed_epoch = ?2 WHERE number = ?1",
        params![sector as i64, epoch],
    )?;
    Ok(())
}

/// A phase succeeded: the failure count and the last error go.
pub fn clear_failures(conn: &Connection, sector: u64) -> Result<()> {
    conn.execute(
        "UPDATE sectors SET fails = 0, last_error = NULL WHERE number = ?1",
        [sector as i64],
    )?;
    Ok(())
}

/// The count starts anew (a fall-back to an earlier phase); the back-off is kept.
pub fn reset_fails(conn: &Connection, sector: u64) -> Result<()> {
    conn.execute(
        "UPDATE sectors SET fails = 0 WHERE number = ?1",
        [sector as i64],
    )?;
    Ok(())
}

/// The count and the back-off go: the sector's state acts at once (an operator's change).
pub fn reset_retries(conn: &Connection, sector: u64) -> Result<()> {
    conn.execute(
        "UPDATE sectors SET fails = 0, retry_at = 0 WHERE number = ?1",
        [sector as i64],
    )?;
    Ok(())
}

/// A failure: its count is now `fails`, it retries at `retry_at`.
pub fn record_failure(
    conn: &Connection,
    sector: u64,
    fails: u32,
    retry_at: f64,
    error: &str,
) -> Result<()> {
    conn.execute(
        "UPDATE sectors SET fails = ?2, retry_at = ?3, last_error = ?4 WHERE number = ?1",
        params![sector as i64, fails, retry_at, error],
    )?;
    Ok(())
}

/// The batch message carrying the sector (`None`: none in flight).
pub fn set_batch(conn: &Connection, sector: u64, batch: Option<&str>) -> Result<()> {
    conn.execute(
        "UPDATE sectors SET batch = ?2 WHERE number = ?1",
        params![sector as i64, batch],
    )?;
    Ok(())
}

/// Its precommit landed at `epoch`: recorded, and it leaves its batch.
pub fn precommit_landed(conn: &Connection, sector: u64, epoch: i64) -> Result<()> {
    conn.execute(
        "UPDATE sectors SET precommit_epoch = ?2, batch = NULL WHERE number = ?1",
        params![sector as i64, epoch],
    )?;
    Ok(())
}

/// The chain refused the sector in its batch: it leaves the batch with one more failure.
pub fn batch_rejected(conn: &Connection, sector: u64, retry_at: f64, error: &str) -> Result<()> {
    conn.execute(
        "UPDATE sectors SET batch = NULL, fails = fails + 1, retry_at = ?2, last_error = ?3 \
         WHERE number = ?1",
        params![sector as i64, retry_at, error],
    )?;
    Ok(())
}

/// The sectors whose files are at `location`, or that a live task is moving there.
pub fn using_location(conn: &Connection, location: &str) -> Result<Vec<u64>> {
    let live = name_list(&TaskState::LIVE, TaskState::as_str);
    let mut st = conn.prepare(&format!(
        "SELECT number FROM sectors WHERE state != ?2 AND location = ?1 \
         UNION SELECT sector FROM tasks WHERE state IN ({live}) AND fetch_to = ?1 ORDER BY 1"
    ))?;
    let ns = st
        .query_map(params![location, SectorState::Removed.as_str()], |r| {
            r.get::<_, i64>(0).map(|v| v as u64)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ns)
}
