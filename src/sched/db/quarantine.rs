//! Rows set aside because they cannot be read: every read of the scheduler skips them, so
//! the other sectors keep moving, while the listings show them with their error. A row is
//! released once it reads again (the operator repaired or deleted it).

use anyhow::Result;
use rusqlite::{params, Connection};

use super::events::event;
use super::rows::{sector_row, task_row, RowError, Table, SECTOR_COLS, TASK_COLS};
use super::{now, Db};

/// The quarantined rows of `table` as the errors recorded for them.
pub(super) fn quarantined_as_errors<T>(
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
