//! The tables of the state database, its version, and the steps from each older version.

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension};

use super::meta::set_meta;

pub(super) const SCHEMA: &str = "
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
    error TEXT,
    leader INTEGER
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
CREATE TABLE IF NOT EXISTS alerts (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    sector INTEGER,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    raised REAL NOT NULL,
    resolved REAL,
    notified REAL,
    notify_error TEXT
);
CREATE TABLE IF NOT EXISTS switches (
    worker TEXT NOT NULL,
    task TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    PRIMARY KEY (worker, task)
);
";

/// The schema this code writes; `meta.schema_version` says which one a database has.
pub const SCHEMA_VERSION: u32 = 4;

/// Steps from each older schema to the next, in order: step `i` takes version `i + 1` to
/// `i + 2`. Each runs in the transaction that records the new version.
const MIGRATIONS: [&str; 3] = [
    // 2: the outbox. A batch row records its whole message before it is sent.
    "ALTER TABLE batches ADD COLUMN body TEXT;",
    // 3: alerts. The table itself comes from SCHEMA (CREATE TABLE IF NOT EXISTS) on open;
    // the version says a daemon that raises and clears alerts owns this database, so an
    // older one, which would leave them standing, refuses it.
    "",
    // 4: PC1 batches. A task that runs inside another's process (a batch's rider) names
    // that task, its leader.
    "ALTER TABLE tasks ADD COLUMN leader INTEGER;",
];

/// Brings a database to [`SCHEMA_VERSION`]; refuses one written by newer code.
pub(super) fn migrate(conn: &Connection) -> Result<()> {
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
            let has = |table: &str, col: &str| -> Result<bool> {
                let n: i64 = conn.query_row(
                    "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
                    [table, col],
                    |r| r.get(0),
                )?;
                Ok(n > 0)
            };
            if has("tasks", "leader")? {
                SCHEMA_VERSION
            } else if has("batches", "body")? {
                3
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
