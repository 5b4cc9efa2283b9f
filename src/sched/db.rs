//! The state database: SQLite in WAL mode, shared by the daemon and every CLI command.
//!
//! Every state change is one `BEGIN IMMEDIATE` transaction (the writer lock is taken up
//! front, so two processes never deadlock upgrading a read), with `synchronous=FULL` so a
//! committed change survives a power cut. A partial unique index makes "one live task per
//! sector" a property of the database rather than of the daemon's bookkeeping: a second
//! live task for a sector cannot be inserted, whoever tries.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde_json::Value;

use super::state::SectorState;
use super::task_type::TaskType;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sectors (
    number INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    deal INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    doc TEXT NOT NULL,
    pieces TEXT NOT NULL,
    location TEXT,
    fails INTEGER NOT NULL DEFAULT 0,
    proof_fails INTEGER NOT NULL DEFAULT 0,
    retry_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    ticket_epoch INTEGER,
    precommit_epoch INTEGER,
    seed_epoch INTEGER,
    batch TEXT,
    entered REAL NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sectors_state ON sectors(state);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sector INTEGER NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    worker TEXT,
    fetch_to TEXT,
    alloc_path TEXT,
    pid INTEGER,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    wait_reason TEXT,
    error TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS one_live_task ON tasks(sector)
    WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS tasks_state ON tasks(state);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    sent REAL,
    landed_epoch INTEGER,
    message TEXT,
    error TEXT,
    body TEXT
);
CREATE TABLE IF NOT EXISTS batch_sectors (
    batch TEXT NOT NULL,
    sector INTEGER NOT NULL,
    PRIMARY KEY (batch, sector)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    sector INTEGER,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_sector ON events(sector);
CREATE TABLE IF NOT EXISTS hosts (
    host TEXT PRIMARY KEY,
    up INTEGER NOT NULL,
    last_seen REAL,
    error TEXT,
    probe TEXT,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS switches (
    worker TEXT NOT NULL,
    task TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    PRIMARY KEY (worker, task)
);
";

/// The schema this code writes; `meta.schema_version` says which one a database has.
pub const SCHEMA_VERSION: u32 = 2;

/// Steps from each older schema to the next, in order: step `i` takes version `i + 1` to
/// `i + 2`. Each runs in the transaction that records the new version.
const MIGRATIONS: [&str; 1] = [
    // 2: the outbox. A batch row records its whole message before it is sent.
    "ALTER TABLE batches ADD COLUMN body TEXT;",
];

/// Brings a database to [`SCHEMA_VERSION`]; refuses one written by newer code.
fn migrate(conn: &Connection) -> Result<()> {
    let have: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let mut version: u32 = match have {
        Some(v) => v
            .parse()
            .with_context(|| format!("meta.schema_version is not a number: {v:?}"))?,
        // No version: a database from before versions, or a brand-new one. Both have the
        // version-1 tables from SCHEMA; a new one may already have the later columns.
        None => {
            let has_body: i64 = conn.query_row(
                "SELECT count(*) FROM pragma_table_info('batches') WHERE name = 'body'",
                [],
                |r| r.get(0),
            )?;
            if has_body > 0 {
                SCHEMA_VERSION
            } else {
                1
            }
        }
    };
    anyhow::ensure!(
        version <= SCHEMA_VERSION,
        "the state database has schema version {version}, newer than this seal-sched's \
         {SCHEMA_VERSION}: use the newer seal-sched"
    );
    while version < SCHEMA_VERSION {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(MIGRATIONS[version as usize - 1])?;
        version += 1;
        set_meta(&tx, "schema_version", &version.to_string())?;
        tx.commit()?;
    }
    if conn
        .query_row(
            "SELECT 1 FROM meta WHERE key = 'schema_version'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_none()
    {
        set_meta(conn, "schema_version", &version.to_string())?;
    }
    Ok(())
}

pub struct Db {
    pub conn: Connection,
}

/// Seconds since the Unix epoch: every timestamp in the state.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[derive(Debug, Clone)]
pub struct SectorRow {
    pub number: u64,
    pub state: String,
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
    pub state: String,
    pub worker: Option<String>,
    pub fetch_to: Option<String>,
    pub alloc_path: Option<String>,
    pub pid: Option<i64>,
    pub created: f64,
    pub started: Option<f64>,
    pub finished: Option<f64>,
    pub wait_reason: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EventRow {
    pub at: f64,
    pub sector: Option<u64>,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct BatchRow {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub created: f64,
    pub sent: Option<f64>,
    pub landed_epoch: Option<i64>,
    pub message: Option<String>,
    pub error: Option<String>,
    pub sectors: Vec<u64>,
}

const SECTOR_COLS: &str = "number, state, deal, priority, doc, pieces, location, fails, \
    proof_fails, retry_at, last_error, ticket_epoch, precommit_epoch, seed_epoch, batch, entered, created";
const TASK_COLS: &str = "id, sector, kind, state, worker, fetch_to, alloc_path, pid, created, \
    started, finished, wait_reason, error";

fn sector_row(r: &Row) -> rusqlite::Result<SectorRow> {
    let doc: String = r.get(4)?;
    let pieces: String = r.get(5)?;
    Ok(SectorRow {
        number: r.get::<_, i64>(0)? as u64,
        state: r.get(1)?,
        deal: r.get::<_, i64>(2)? != 0,
        priority: r.get(3)?,
        doc: serde_json::from_str(&doc).unwrap_or(Value::Null),
        pieces: serde_json::from_str(&pieces).unwrap_or_default(),
        location: r.get(6)?,
        fails: r.get::<_, i64>(7)? as u32,
        proof_fails: r.get::<_, i64>(8)? as u32,
        retry_at: r.get(9)?,
        last_error: r.get(10)?,
        ticket_epoch: r.get(11)?,
        precommit_epoch: r.get(12)?,
        seed_epoch: r.get(13)?,
        batch: r.get(14)?,
        entered: r.get(15)?,
        created: r.get(16)?,
    })
}

fn task_row(r: &Row) -> rusqlite::Result<TaskRow> {
    let kind: String = r.get(2)?;
    Ok(TaskRow {
        id: r.get::<_, i64>(0)? as u64,
        sector: r.get::<_, i64>(1)? as u64,
        kind: TaskType::parse(&kind).unwrap_or(TaskType::Fetch),
        state: r.get(3)?,
        worker: r.get(4)?,
        fetch_to: r.get(5)?,
        alloc_path: r.get(6)?,
        pid: r.get(7)?,
        created: r.get(8)?,
        started: r.get(9)?,
        finished: r.get(10)?,
        wait_reason: r.get(11)?,
        error: r.get(12)?,
    })
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open state database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("cannot set up state database {}", path.display()))?;
        migrate(&conn)
            .with_context(|| format!("cannot migrate state database {}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        Ok(Db { conn })
    }

    /// Runs `f` in one immediate transaction: all of it is committed, or none.
    pub fn tx<T>(&mut self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    pub fn sectors(&self) -> Result<Vec<SectorRow>> {
        sectors_where(&self.conn, "1 ORDER BY number", [])
    }

    pub fn sector(&self, n: u64) -> Result<Option<SectorRow>> {
        Ok(sectors_where(&self.conn, "number = ?1", [n as i64])?.pop())
    }

    pub fn tasks(&self, clause: &str) -> Result<Vec<TaskRow>> {
        tasks_where(&self.conn, clause)
    }

    pub fn events(&self, sector: u64) -> Result<Vec<EventRow>> {
        let mut st = self
            .conn
            .prepare("SELECT at, sector, kind, detail FROM events WHERE sector = ?1 ORDER BY id")?;
        let rows = st
            .query_map([sector as i64], |r| {
                Ok(EventRow {
                    at: r.get(0)?,
                    sector: r.get::<_, Option<i64>>(1)?.map(|v| v as u64),
                    kind: r.get(2)?,
                    detail: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn batches(&self) -> Result<Vec<BatchRow>> {
        batches(&self.conn)
    }

    /// Runtime task switches (`seal-sched workers disable NAME PC1`), over the config.
    pub fn switches(&self) -> Result<Vec<(String, String, bool)>> {
        let mut st = self
            .conn
            .prepare("SELECT worker, task, enabled FROM switches")?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }
}

pub fn sectors_where<P: rusqlite::Params>(
    conn: &Connection,
    clause: &str,
    p: P,
) -> Result<Vec<SectorRow>> {
    let mut st = conn.prepare(&format!("SELECT {SECTOR_COLS} FROM sectors WHERE {clause}"))?;
    let rows = st
        .query_map(p, sector_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn tasks_where(conn: &Connection, clause: &str) -> Result<Vec<TaskRow>> {
    let mut st = conn.prepare(&format!("SELECT {TASK_COLS} FROM tasks WHERE {clause}"))?;
    let rows = st
        .query_map([], task_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn task(conn: &Connection, id: u64) -> Result<Option<TaskRow>> {
    Ok(tasks_where(conn, &format!("id = {id}"))?.pop())
}

pub fn batches(conn: &Connection) -> Result<Vec<BatchRow>> {
    let mut st = conn.prepare(
        "SELECT id, kind, state, created, sent, landed_epoch, message, error FROM batches ORDER BY created",
    )?;
    let mut rows = st
        .query_map([], |r| {
            Ok(BatchRow {
                id: r.get(0)?,
                kind: r.get(1)?,
                state: r.get(2)?,
                created: r.get(3)?,
                sent: r.get(4)?,
                landed_epoch: r.get(5)?,
                message: r.get(6)?,
                error: r.get(7)?,
                sectors: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut st =
        conn.prepare("SELECT sector FROM batch_sectors WHERE batch = ?1 ORDER BY sector")?;
    for b in &mut rows {
        b.sectors = st
            .query_map([&b.id], |r| r.get::<_, i64>(0).map(|v| v as u64))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
    }
    Ok(rows)
}

/// Records an event (the sector log, `seal-sched sectors status N` shows it).
pub fn event(conn: &Connection, sector: Option<u64>, kind: &str, detail: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO events (at, sector, kind, detail) VALUES (?1, ?2, ?3, ?4)",
        params![now(), sector.map(|s| s as i64), kind, detail],
    )?;
    Ok(())
}

/// Moves a sector to `state`, logging the transition.
pub fn set_state(conn: &Connection, sector: u64, state: SectorState, detail: &str) -> Result<()> {
    conn.execute(
        "UPDATE sectors SET state = ?2, entered = ?3 WHERE number = ?1",
        params![sector as i64, state.as_str(), now()],
    )?;
    event(
        conn,
        Some(sector),
        "state",
        &format!(
            "{state}{}{detail}",
            if detail.is_empty() { "" } else { ": " }
        ),
    )?;
    Ok(())
}

pub fn set_doc(conn: &Connection, sector: u64, doc: &Value) -> Result<()> {
    conn.execute(
        "UPDATE sectors SET doc = ?2 WHERE number = ?1",
        params![sector as i64, doc.to_string()],
    )?;
    Ok(())
}

pub fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
        params![key, value],
    )?;
    Ok(())
}
