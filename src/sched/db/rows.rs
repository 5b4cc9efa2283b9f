//! The typed rows the scheduler reads, and reading them: a column that does not hold what
//! its table promises is a [`RowError`] naming table, row and column, never a silently wrong
//! value (the daemon quarantines such a row; see `quarantine`).

use anyhow::Result;
use rusqlite::{Connection, Row};
use serde_json::Value;

use crate::sched::batch::BatchState;
use crate::sched::chain::MsgKind;
use crate::sched::state::SectorState;
use crate::sched::task_state::TaskState;
use crate::sched::task_type::TaskType;

#[derive(Debug, Clone)]
pub struct SectorRow {
    pub number: u64,
    pub state: SectorState,
    pub deal: bool,
    pub priority: i64,
    pub doc: Value,
    pub pieces: Vec<String>,
    pub location: Option<String>,
    pub fails: u32,
    pub proof_fails: u32,
    pub retry_at: f64,
    pub last_error: Option<String>,
    pub ticket_epoch: Option<i64>,
    pub precommit_epoch: Option<i64>,
    pub seed_epoch: Option<i64>,
    pub batch: Option<String>,
    pub entered: f64,
    pub created: f64,
}

#[derive(Debug, Clone)]
pub struct TaskRow {
    pub id: u64,
    pub sector: u64,
    pub kind: TaskType,
    pub state: TaskState,
    pub worker: Option<String>,
    pub fetch_to: Option<String>,
    pub alloc_path: Option<String>,
    pub pid: Option<i64>,
    pub created: f64,
    pub started: Option<f64>,
    pub finished: Option<f64>,
    pub wait_reason: Option<String>,
    pub error: Option<String>,
    /// The task whose process runs this one (a PC1 batch's rider; `sealing.pc1_batch`).
    pub leader: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: u64,
    pub at: f64,
    pub sector: Option<u64>,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct BatchRow {
    pub id: String,
    pub kind: MsgKind,
    pub state: BatchState,
    pub created: f64,
    pub sent: Option<f64>,
    pub landed_epoch: Option<i64>,
    pub message: Option<String>,
    pub error: Option<String>,
    pub sectors: Vec<u64>,
}

pub(super) const SECTOR_COLS: &str = "number, state, deal, priority, doc, pieces, location, fails, \
    proof_fails, retry_at, last_error, ticket_epoch, precommit_epoch, seed_epoch, batch, entered, created";
pub(super) const TASK_COLS: &str =
    "id, sector, kind, state, worker, fetch_to, alloc_path, pid, created, \
    started, finished, wait_reason, error, leader";

/// A row of the state database that cannot be read as what its table holds: it names the
/// table, the row's key and the column, so an operator can find and repair it with `sqlite3`.
/// The daemon quarantines such a row ([`quarantine`]) instead of stopping on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub table: Table,
    /// The sector number (table `sectors`) or task id (table `tasks`).
    pub key: u64,
    /// The sector a task row belongs to, when that column could be read.
    pub sector: Option<u64>,
    pub column: String,
    pub problem: String,
}

/// The tables whose rows are parsed into typed rows (and so can be quarantined).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Sectors,
    Tasks,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Sectors => "sectors",
            Table::Tasks => "tasks",
        }
    }

    /// The key column of the table.
    pub(super) fn key(self) -> &'static str {
        match self {
            Table::Sectors => "number",
            Table::Tasks => "id",
        }
    }
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.table {
            Table::Sectors => write!(f, "sched.db table sectors, sector {}", self.key)?,
            Table::Tasks => {
                write!(f, "sched.db table tasks, task {}", self.key)?;
                if let Some(s) = self.sector {
                    write!(f, " (sector {s})")?;
                }
            }
        }
        write!(f, ", column {}: {}", self.column, self.problem)
    }
}

impl std::error::Error for RowError {}

/// The row error somewhere in `e`'s chain, if that is what `e` is.
pub fn row_error(e: &anyhow::Error) -> Option<&RowError> {
    e.chain().find_map(|c| c.downcast_ref::<RowError>())
}

/// What a stored value is, for an error message.
fn describe(v: rusqlite::types::ValueRef) -> String {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => format!("the integer {i}"),
        ValueRef::Real(x) => format!("the number {x}"),
        ValueRef::Text(t) => {
            let t = String::from_utf8_lossy(t);
            let short: String = t.chars().take(40).collect();
            let more = if t.chars().count() > 40 { "…" } else { "" };
            format!("the text {:?}", format!("{short}{more}"))
        }
        ValueRef::Blob(b) => format!("a {}-byte blob", b.len()),
    }
}

/// Reads one column of a typed row, or says which one is wrong and what it holds.
struct Cols<'a, 'r> {
    r: &'a Row<'r>,
    table: Table,
    key: u64,
    sector: Option<u64>,
}

impl Cols<'_, '_> {
    fn fail(&self, column: &'static str, problem: String) -> RowError {
        RowError {
            table: self.table,
            key: self.key,
            sector: self.sector,
            column: column.into(),
            problem,
        }
    }

    fn get<T: rusqlite::types::FromSql>(
        &self,
        i: usize,
        column: &'static str,
        expected: &str,
    ) -> Result<T, RowError> {
        self.r.get::<_, T>(i).map_err(|_| {
            let held = self.r.get_ref(i).map_or_else(|e| e.to_string(), describe);
            self.fail(column, format!("holds {held}, expected {expected}"))
        })
    }

    /// A non-negative integer that fits `T` (counts, sector numbers).
    fn count<T: TryFrom<i64>>(&self, i: usize, column: &'static str) -> Result<T, RowError> {
        let v: i64 = self.get(i, column, "a non-negative integer")?;
        T::try_from(v).map_err(|_| {
            self.fail(
                column,
                format!("holds {v}, expected a non-negative integer"),
            )
        })
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        i: usize,
        column: &'static str,
        expected: &str,
    ) -> Result<T, RowError> {
        let text: String = self.get(i, column, &format!("JSON text ({expected})"))?;
        serde_json::from_str(&text)
            .map_err(|e| self.fail(column, format!("is not {expected}: {e}")))
    }

    /// A name that `parse` knows (a state stored as text).
    fn parse<T>(
        &self,
        i: usize,
        column: &'static str,
        expected: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<T, RowError> {
        let name: String = self.get(i, column, expected)?;
        parse(&name)
            .ok_or_else(|| self.fail(column, format!("holds {name:?}, which is not {expected}")))
    }
}

/// The key of a row (an INTEGER PRIMARY KEY is always an integer in SQLite).
pub(super) fn row_key(r: &Row) -> rusqlite::Result<u64> {
    Ok(r.get::<_, i64>(0)? as u64)
}

pub(super) fn sector_row(r: &Row) -> Result<SectorRow, RowError> {
    let c = Cols {
        r,
        table: Table::Sectors,
        key: row_key(r).unwrap_or_default(),
        sector: None,
    };
    let opt_text = "text or NULL";
    let opt_int = "an integer or NULL";
    let doc: Value = c.json(4, "doc", "a JSON object")?;
    if !doc.is_object() {
        return Err(c.fail("doc", format!("is JSON but not an object: {doc:.60}")));
    }
    Ok(SectorRow {
        number: c.key,
        state: c.parse(1, "state", "a sector state", SectorState::parse)?,
        deal: c.get::<i64>(2, "deal", "0 or 1")? != 0,
        priority: c.get(3, "priority", "an integer")?,
        doc,
        pieces: c.json(5, "pieces", "a JSON list of file names")?,
        location: c.get(6, "location", opt_text)?,
        fails: c.count(7, "fails")?,
        proof_fails: c.count(8, "proof_fails")?,
        retry_at: c.get(9, "retry_at", "a time in seconds")?,
        last_error: c.get(10, "last_error", opt_text)?,
        ticket_epoch: c.get(11, "ticket_epoch", opt_int)?,
        precommit_epoch: c.get(12, "precommit_epoch", opt_int)?,
        seed_epoch: c.get(13, "seed_epoch", opt_int)?,
        batch: c.get(14, "batch", opt_text)?,
        entered: c.get(15, "entered", "a time in seconds")?,
        created: c.get(16, "created", "a time in seconds")?,
    })
}

pub(super) fn task_row(r: &Row) -> Result<TaskRow, RowError> {
    let mut c = Cols {
        r,
        table: Table::Tasks,
        key: row_key(r).unwrap_or_default(),
        sector: None,
    };
    let sector: u64 = c.count(1, "sector")?;
    c.sector = Some(sector);
    let kind: String = c.get(2, "kind", "a task type")?;
    let kind = TaskType::parse(&kind).ok_or_else(|| {
        c.fail(
            "kind",
            format!(
                "holds {kind:?}, which is no task type ({})",
                TaskType::short_names(&TaskType::ALL)
            ),
        )
    })?;
    let opt_text = "text or NULL";
    let opt_time = "a time in seconds or NULL";
    Ok(TaskRow {
        id: c.key,
        sector,
        kind,
        state: c.parse(3, "state", "a task state", TaskState::parse)?,
        worker: c.get(4, "worker", opt_text)?,
        fetch_to: c.get(5, "fetch_to", opt_text)?,
        alloc_path: c.get(6, "alloc_path", opt_text)?,
        pid: c.get(7, "pid", "an integer or NULL")?,
        created: c.get(8, "created", "a time in seconds")?,
        started: c.get(9, "started", opt_time)?,
        finished: c.get(10, "finished", opt_time)?,
        wait_reason: c.get(11, "wait_reason", opt_text)?,
        error: c.get(12, "error", opt_text)?,
        leader: c.get(13, "leader", "a task id or NULL")?,
    })
}

/// Keys of the quarantined rows of `table`.
pub(super) fn quarantined_keys(
    conn: &Connection,
    table: Table,
) -> Result<std::collections::HashSet<u64>> {
    let mut st = conn.prepare_cached("SELECT key FROM quarantine WHERE tbl = ?1")?;
    let keys = st
        .query_map([table.name()], |r| r.get::<_, i64>(0).map(|k| k as u64))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(keys)
}

/// Every row `sql` selects, parsed by `parse`, less the quarantined ones; each is its key
/// with the row or why it cannot be read.
pub(super) fn read_rows<T>(
    conn: &Connection,
    table: Table,
    sql: &str,
    p: impl rusqlite::Params,
    parse: fn(&Row) -> Result<T, RowError>,
) -> Result<Vec<(u64, Result<T, RowError>)>> {
    let skip = quarantined_keys(conn, table)?;
    let mut st = conn.prepare(sql)?;
    let mut rows = st.query(p)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let key = row_key(r)?;
        if skip.contains(&key) {
            continue;
        }
        out.push((key, parse(r)));
    }
    Ok(out)
}

/// The rows of `table` that `clause` selects (a WHERE clause of our own, never operator
/// text), less the quarantined ones. A row that cannot be read is an error naming table,
/// key and column ([`RowError`]): never a silently wrong value.
pub(super) fn select<T>(
    conn: &Connection,
    table: Table,
    clause: &str,
    p: impl rusqlite::Params,
    parse: fn(&Row) -> Result<T, RowError>,
) -> Result<Vec<T>> {
    let cols = match table {
        Table::Sectors => SECTOR_COLS,
        Table::Tasks => TASK_COLS,
    };
    let sql = format!("SELECT {cols} FROM {} WHERE {clause}", table.name());
    read_rows(conn, table, &sql, p, parse)?
        .into_iter()
        .map(|(_, r)| r.map_err(anyhow::Error::from))
        .collect()
}
