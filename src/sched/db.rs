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
CREATE TABLE IF NOT EXISTS quarantine (
    tbl TEXT NOT NULL,
    key INTEGER NOT NULL,
    sector INTEGER,
    col TEXT NOT NULL,
    problem TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (tbl, key)
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
    fn key(self) -> &'static str {
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
}

/// The key of a row (an INTEGER PRIMARY KEY is always an integer in SQLite).
fn row_key(r: &Row) -> rusqlite::Result<u64> {
    Ok(r.get::<_, i64>(0)? as u64)
}

fn sector_row(r: &Row) -> Result<SectorRow, RowError> {
    let c = Cols {
        r,
        table: Table::Sectors,
        key: row_key(r).unwrap_or_default(),
        sector: None,
    };
    let text = "text";
    let opt_text = "text or NULL";
    let opt_int = "an integer or NULL";
    let doc: Value = c.json(4, "doc", "a JSON object")?;
    if !doc.is_object() {
        return Err(c.fail("doc", format!("is JSON but not an object: {doc:.60}")));
    }
    Ok(SectorRow {
        number: c.key,
        state: c.get(1, "state", text)?,
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

fn task_row(r: &Row) -> Result<TaskRow, RowError> {
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
                "holds {kind:?}, which is no task type ({}…)",
                TaskType::short_names(&TaskType::SEALING)
            ),
        )
    })?;
    let opt_text = "text or NULL";
    let opt_time = "a time in seconds or NULL";
    Ok(TaskRow {
        id: c.key,
        sector,
        kind,
        state: c.get(3, "state", "text")?,
        worker: c.get(4, "worker", opt_text)?,
        fetch_to: c.get(5, "fetch_to", opt_text)?,
        alloc_path: c.get(6, "alloc_path", opt_text)?,
        pid: c.get(7, "pid", "an integer or NULL")?,
        created: c.get(8, "created", "a time in seconds")?,
        started: c.get(9, "started", opt_time)?,
        finished: c.get(10, "finished", opt_time)?,
        wait_reason: c.get(11, "wait_reason", opt_text)?,
        error: c.get(12, "error", opt_text)?,
    })
}

/// Keys of the quarantined rows of `table`.
fn quarantined_keys(conn: &Connection, table: Table) -> Result<std::collections::HashSet<u64>> {
    let mut st = conn.prepare_cached("SELECT key FROM quarantine WHERE tbl = ?1")?;
    let keys = st
        .query_map([table.name()], |r| r.get::<_, i64>(0).map(|k| k as u64))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(keys)
}

/// Every row `sql` selects, parsed by `parse`; each is its key with the row or why it cannot
/// be read. Quarantined rows are included (as their errors) only when `with_quarantined`.
fn read_rows<T>(
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

/// Refuses a file that is not an SQLite database (its header is not "SQLite format 3\0", or
/// page 1 is unreadable) before it is opened for writing. SQLite opening a damaged file
/// with a `-wal` beside it checkpoints that WAL into the damaged file and deletes it: the
/// last state changes of every sector. A missing file is fine (a new database); an empty
/// one only when no `-wal` holds data for it.
///
/// The header is read through SQLite itself, opened read-only and `immutable` (no locks, no
/// WAL, no `-shm`, nothing written). Reading it with a plain `open`/`close` of our own would
/// be wrong: closing any descriptor of the file drops every POSIX lock this process holds on
/// it, including those of a connection already open here, and another process would then
/// believe it is the last one and delete the WAL under it.
pub fn check_header(path: &Path) -> Result<()> {
    use rusqlite::OpenFlags;
    let damaged = |why: &str| {
        anyhow::anyhow!(
            "{} {why}: refusing to open it (nothing was changed); restore it and its -wal file from a backup",
            path.display()
        )
    };
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if len == 0 {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
            return Err(damaged("is empty but its -wal file is not"));
        }
        return Ok(());
    }
    let name = path
        .to_str()
        .with_context(|| format!("{} is not a UTF-8 path", path.display()))?;
    // A URI: `%`, `?` and `#` in the path are escaped.
    let mut uri = String::from("file:");
    for c in name.chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&uri, flags)
        .with_context(|| format!("cannot read {}", path.display()))?;
    match conn.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0)) {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            Err(damaged("is not an SQLite database (damaged header)"))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

impl Db {
    /// Opens (or creates) the state database; a damaged file is refused untouched
    /// ([`check_header`]).
    pub fn open(path: &Path) -> Result<Db> {
        check_header(path)?;
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

/// The sectors `clause` selects, less the quarantined ones. A row that cannot be read is an
/// error naming table, sector and column ([`RowError`]): never a silently wrong value.
pub fn sectors_where<P: rusqlite::Params>(
    conn: &Connection,
    clause: &str,
    p: P,
) -> Result<Vec<SectorRow>> {
    let sql = format!("SELECT {SECTOR_COLS} FROM sectors WHERE {clause}");
    read_rows(conn, Table::Sectors, &sql, p, sector_row)?
        .into_iter()
        .map(|(_, r)| r.map_err(anyhow::Error::from))
        .collect()
}

/// The tasks `clause` selects, less the quarantined ones (see [`sectors_where`]).
pub fn tasks_where(conn: &Connection, clause: &str) -> Result<Vec<TaskRow>> {
    let sql = format!("SELECT {TASK_COLS} FROM tasks WHERE {clause}");
    read_rows(conn, Table::Tasks, &sql, [], task_row)?
        .into_iter()
        .map(|(_, r)| r.map_err(anyhow::Error::from))
        .collect()
}

/// Every sector for the listings, readable or not: a row that cannot be read (quarantined
/// or not yet) is its error, so one bad row never hides the others.
pub fn all_sectors(conn: &Connection) -> Result<Vec<(u64, Result<SectorRow, RowError>)>> {
    let sql = format!("SELECT {SECTOR_COLS} FROM sectors ORDER BY number");
    let mut out = read_rows(conn, Table::Sectors, &sql, [], sector_row)?;
    out.extend(quarantined_as_errors(conn, Table::Sectors)?);
    out.sort_by_key(|(k, _)| *k);
    Ok(out)
}

/// The tasks `clause` selects for the listings, readable or not (see [`all_sectors`]).
pub fn all_tasks(conn: &Connection, clause: &str) -> Result<Vec<(u64, Result<TaskRow, RowError>)>> {
    let sql = format!("SELECT {TASK_COLS} FROM tasks WHERE {clause}");
    let mut out = read_rows(conn, Table::Tasks, &sql, [], task_row)?;
    out.extend(quarantined_as_errors(conn, Table::Tasks)?);
    Ok(out)
}

/// The quarantined rows of `table` as the errors recorded for them.
fn quarantined_as_errors<T>(
    conn: &Connection,
    table: Table,
) -> Result<Vec<(u64, Result<T, RowError>)>> {
    quarantined(conn, table).map(|v| v.into_iter().map(|e| (e.key, Err(e))).collect())
}

/// The quarantined rows of `table`, with the error each was quarantined for.
pub fn quarantined(conn: &Connection, table: Table) -> Result<Vec<RowError>> {
    let mut st = conn
        .prepare("SELECT key, sector, col, problem FROM quarantine WHERE tbl = ?1 ORDER BY key")?;
    let rows = st
        .query_map([table.name()], |r| {
            Ok(RowError {
                table,
                key: r.get::<_, i64>(0)? as u64,
                sector: r.get::<_, Option<i64>>(1)?.map(|s| s as u64),
                column: r.get(2)?,
                problem: r.get(3)?,
            })
        })?
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

/// Sets a row that cannot be read aside: every read of the scheduler skips it, so the other
/// sectors keep moving, while the listings show it with the error. Its sector gets an event
/// and `last_error`. It is released by [`release_repaired`] once it reads again.
pub fn quarantine(db: &mut Db, e: &RowError) -> Result<()> {
    let sector = match e.table {
        Table::Sectors => Some(e.key),
        Table::Tasks => e.sector,
    };
    let line = format!("{e}; set aside until the row is repaired, other sectors go on");
    db.tx(|tx| {
        tx.execute(
            "INSERT INTO quarantine (tbl, key, sector, col, problem, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT(tbl, key) DO UPDATE SET sector = ?3, col = ?4, problem = ?5, at = ?6",
            params![e.table.name(), e.key as i64, sector.map(|s| s as i64), e.column, e.problem, now()],
        )?;
        if let Some(s) = sector {
            tx.execute(
                "UPDATE sectors SET last_error = ?2 WHERE number = ?1",
                params![s as i64, format!("{QUARANTINED}: {e}")],
            )?;
        }
        event(tx, sector, "quarantine", &line)
    })
}

/// How `last_error` and the listings mark a quarantined row.
pub const QUARANTINED: &str = "quarantined";

/// Releases the quarantined rows that read again (the operator repaired or deleted them), with
/// an event each; returns how many.
pub fn release_repaired(db: &mut Db) -> Result<usize> {
    let mut released = 0;
    for table in [Table::Sectors, Table::Tasks] {
        for q in quarantined(&db.conn, table)? {
            let cols = match table {
                Table::Sectors => SECTOR_COLS,
                Table::Tasks => TASK_COLS,
            };
            let sql = format!(
                "SELECT {cols} FROM {} WHERE {} = ?1",
                table.name(),
                table.key()
            );
            let readable = {
                let mut st = db.conn.prepare(&sql)?;
                let mut rows = st.query([q.key as i64])?;
                match rows.next()? {
                    None => true,
                    Some(r) => match table {
                        Table::Sectors => sector_row(r).is_ok(),
                        Table::Tasks => task_row(r).is_ok(),
                    },
                }
            };
            if !readable {
                continue;
            }
            let sector = match table {
                Table::Sectors => Some(q.key),
                Table::Tasks => q.sector,
            };
            db.tx(|tx| {
                tx.execute(
                    "DELETE FROM quarantine WHERE tbl = ?1 AND key = ?2",
                    params![table.name(), q.key as i64],
                )?;
                if let Some(s) = sector {
                    tx.execute(
                        "UPDATE sectors SET last_error = NULL WHERE number = ?1 AND last_error LIKE ?2",
                        params![s as i64, format!("{QUARANTINED}: %")],
                    )?;
                }
                event(
                    tx,
                    sector,
                    "quarantine",
                    &format!("sched.db table {}, row {}: readable again, back in service", table.name(), q.key),
                )
            })?;
            released += 1;
        }
    }
    Ok(released)
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
