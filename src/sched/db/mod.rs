//! The state database: SQLite in WAL mode, shared by the daemon and every CLI command.
//!
//! Every state change is one `BEGIN IMMEDIATE` transaction (the writer lock is taken up
//! front, so two processes never deadlock upgrading a read), with `synchronous=FULL` so a
//! committed change survives a power cut. A partial unique index makes "one live task per
//! sector" a property of the database rather than of the daemon's bookkeeping: a second
//! live task for a sector cannot be inserted, whoever tries.
//!
//! All SQL of the scheduler is in this module, one file per table (or family of tables),
//! each statement behind a function named for what it does; the rest of the scheduler
//! reads typed rows ([`SectorRow`], [`TaskRow`], [`BatchRow`]) whose states are enums,
//! and never builds a query. The simulated chain's separate database is here too
//! ([`sim_chain`]).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{Connection, Transaction, TransactionBehavior};

pub mod alerts;
pub mod batches;
pub mod events;
pub mod meta;
mod quarantine;
mod rows;
mod schema;
pub mod sectors;
pub mod sim_chain;
pub mod stats;
pub mod tasks;

pub use events::event;
pub use meta::{meta, set_meta};
pub use quarantine::{quarantine, quarantined, release_repaired, QUARANTINED};
pub use rows::{row_error, BatchRow, EventRow, RowError, SectorRow, Table, TaskRow};
pub use schema::SCHEMA_VERSION;
pub use sectors::{set_doc, set_state};

use crate::sched::task_state::TaskState;

/// The state database. `conn` is open for the functions of this module's submodules (and
/// tests that plant faults); the scheduler itself never writes SQL.
pub struct Db {
    pub conn: Connection,
}

/// Seconds since the Unix epoch: every timestamp in the state.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The schema's SQL text (for tests that check it against the types).
pub fn schema_text() -> &'static str {
    schema::SCHEMA
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
        conn.execute_batch(schema::SCHEMA)
            .with_context(|| format!("cannot set up state database {}", path.display()))?;
        schema::migrate(&conn)
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
        sectors::all(&self.conn)
    }

    pub fn sector(&self, n: u64) -> Result<Option<SectorRow>> {
        sectors::get(&self.conn, n)
    }

    /// The tasks in `state`, oldest first.
    pub fn tasks_in(&self, state: TaskState) -> Result<Vec<TaskRow>> {
        tasks::in_state(&self.conn, state)
    }

    pub fn task(&self, id: u64) -> Result<Option<TaskRow>> {
        tasks::get(&self.conn, id)
    }

    pub fn events(&self, sector: u64) -> Result<Vec<EventRow>> {
        events::of_sector(&self.conn, sector)
    }

    pub fn batches(&self) -> Result<Vec<BatchRow>> {
        batches::all(&self.conn)
    }

    /// Runtime task switches (`seal-sched workers disable NAME PC1`), over the config.
    pub fn switches(&self) -> Result<Vec<(String, String, bool)>> {
        meta::switches(&self.conn)
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        meta::meta(&self.conn, key)
    }
}

#[cfg(test)]
mod tests;
