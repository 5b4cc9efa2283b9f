//! The `alerts` table: every alert the daemon raised, by its key, until the condition
//! clears. An alert is recorded (in the pass's transaction, with an event) before anyone is
//! told about it, so a daemon restarted mid-notification never tells twice; the webhook's
//! outcome is written back to the row.

use anyhow::Result;
use rusqlite::{params, Connection, OptionalExtension};

use super::events::event;
use crate::sched::alerts::{Alert, AlertKind};

/// An alert as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub alert: Alert,
    pub raised: f64,
    pub notified: Option<f64>,
    pub notify_error: Option<String>,
}

/// Makes the table's open alerts the `current` ones at time `at`: a new (or returning)
/// alert is recorded with an event, one no longer current is resolved with an event, one
/// still open is left as it was (nothing is written while nothing changes).
/// Returns the new ones, which are the ones to notify.
pub fn sync(conn: &Connection, current: &[Alert], at: f64) -> Result<Vec<Alert>> {
    let mut new = Vec::new();
    for a in current {
        let open: Option<Option<f64>> = conn
            .query_row(
                "SELECT resolved FROM alerts WHERE key = ?1",
                [&a.key],
                |r| r.get(0),
            )
            .optional()?;
        // An open alert keeps the words it was raised with: re-writing them every few
        // seconds (a stuck sector's growing time) would be a disk write per evaluation.
        if open != Some(None) {
            conn.execute(
                "INSERT INTO alerts (key, kind, sector, subject, message, raised) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(key) DO UPDATE SET \
                 kind = ?2, sector = ?3, subject = ?4, message = ?5, raised = ?6, \
                 resolved = NULL, notified = NULL, notify_error = NULL",
                params![
                    a.key,
                    a.kind.name(),
                    a.sector.map(|s| s as i64),
                    a.subject,
                    a.message,
                    at
                ],
            )?;
            event(conn, a.sector, "alert", &format!("alert: {}", a.message))?;
            new.push(a.clone());
        }
    }
    let keys: std::collections::HashSet<&str> = current.iter().map(|a| a.key.as_str()).collect();
    for row in active(conn)? {
        if !keys.contains(row.alert.key.as_str()) {
            conn.execute(
                "UPDATE alerts SET resolved = ?2 WHERE key = ?1",
                params![row.alert.key, at],
            )?;
            event(
                conn,
                row.alert.sector,
                "alert",
                &format!("resolved: {}", row.alert.message),
            )?;
        }
    }
    Ok(new)
}

/// The alerts not resolved, oldest first. A row of a kind this code does not know is
/// skipped (a newer seal-sched's).
pub fn active(conn: &Connection) -> Result<Vec<AlertRow>> {
    let mut st = conn.prepare_cached(
        "SELECT key, kind, sector, subject, message, raised, notified, notify_error \
         FROM alerts WHERE resolved IS NULL ORDER BY raised, key",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, f64>(5)?,
                r.get::<_, Option<f64>>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(key, kind, sector, subject, message, raised, notified, notify_error)| {
                Some(AlertRow {
                    alert: Alert {
                        kind: AlertKind::parse(&kind)?,
                        key,
                        sector: sector.map(|s| s as u64),
                        subject,
                        message,
                    },
                    raised,
                    notified,
                    notify_error,
                })
            },
        )
        .collect())
}

/// What became of telling the webhook about alert `key`.
pub fn set_notified(conn: &Connection, key: &str, at: f64, error: Option<&str>) -> Result<()> {
    conn.execute(
        "UPDATE alerts SET notified = ?2, notify_error = ?3 WHERE key = ?1",
        params![key, at, error],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::db::{events, Db};

    fn alert(key: &str, message: &str) -> Alert {
        Alert {
            kind: AlertKind::HostDown,
            key: key.into(),
            sector: None,
            subject: key.into(),
            message: message.into(),
        }
    }

    #[test]
    fn an_alert_is_new_once_until_it_clears() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("sched.db")).unwrap();
        let (a, b) = (
            alert("host_down/a", "a is down"),
            alert("host_down/b", "b is down"),
        );
        let c = &db.conn;
        assert_eq!(
            sync(c, &[a.clone(), b.clone()], 10.0).unwrap(),
            [a.clone(), b.clone()]
        );
        // Still there, in other words: nothing new, nothing rewritten.
        let a2 = alert("host_down/a", "a is down (again)");
        assert_eq!(sync(c, &[a2.clone(), b.clone()], 20.0).unwrap(), []);
        // b clears, then returns: new again, with its new time.
        assert_eq!(sync(c, std::slice::from_ref(&a2), 30.0).unwrap(), []);
        assert_eq!(sync(c, &[a2, b.clone()], 40.0).unwrap(), [b]);
        set_notified(c, "host_down/a", 41.0, Some("connection refused")).unwrap();
        type Seen = (String, String, f64, Option<f64>, Option<String>);
        let rows: Vec<Seen> = active(c)
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.alert.key,
                    r.alert.message,
                    r.raised,
                    r.notified,
                    r.notify_error,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "host_down/a".into(),
                    "a is down".into(),
                    10.0,
                    Some(41.0),
                    Some("connection refused".into())
                ),
                ("host_down/b".into(), "b is down".into(), 40.0, None, None),
            ]
        );
        let log: Vec<String> = events::after(c, 0)
            .unwrap()
            .into_iter()
            .map(|e| e.detail)
            .collect();
        assert_eq!(
            log,
            [
                "alert: a is down",
                "alert: b is down",
                "resolved: b is down",
                "alert: b is down"
            ]
        );
    }
}
