//! The outbox: `batches` rows (one per chain message, its whole content recorded before it
//! is sent) and `batch_sectors` (which sectors it carries). A batch goes recorded → sent →
//! landed ([`BatchState`]); only a lookup on the chain moves it to landed.

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};

use super::now;
use super::rows::BatchRow;
use crate::sched::batch::BatchState;
use crate::sched::chain::MsgKind;

/// Every batch, oldest first, with its sectors.
pub fn all(conn: &Connection) -> Result<Vec<BatchRow>> {
    let mut st = conn.prepare(
        "SELECT id, kind, state, created, sent, landed_epoch, message, error FROM batches ORDER BY created",
    )?;
    let raw = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut sectors =
        conn.prepare("SELECT sector FROM batch_sectors WHERE batch = ?1 ORDER BY sector")?;
    let mut out = Vec::new();
    for (id, kind, state, created, sent, landed_epoch, message, error) in raw {
        let kind = MsgKind::parse(&kind).with_context(|| {
            format!("sched.db table batches, batch {id}: unknown kind {kind:?}")
        })?;
        let state = BatchState::parse(&state).with_context(|| {
            format!("sched.db table batches, batch {id}: unknown state {state:?}")
        })?;
        let numbers = sectors
            .query_map([&id], |r| r.get::<_, i64>(0).map(|v| v as u64))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(BatchRow {
            id,
            kind,
            state,
            created,
            sent,
            landed_epoch,
            message,
            error,
            sectors: numbers,
        });
    }
    Ok(out)
}

/// Records batch `id` of `kind` carrying `sectors`, with its message `body` (JSON), and
/// marks the sectors as in it.
pub fn record(
    conn: &Connection,
    id: &str,
    kind: MsgKind,
    body: &str,
    sectors: &[u64],
) -> Result<()> {
    conn.execute(
        "INSERT INTO batches (id, kind, state, created, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, kind.name(), BatchState::Recorded.name(), now(), body],
    )?;
    for &s in sectors {
        conn.execute(
            "INSERT INTO batch_sectors (batch, sector) VALUES (?1, ?2)",
            params![id, s as i64],
        )?;
        super::sectors::set_batch(conn, s, Some(id))?;
    }
    Ok(())
}

/// The recorded message of batch `id`: `None` for a row older than the outbox (no body).
pub fn body(conn: &Connection, id: &str) -> Result<Option<String>> {
    let body: Option<Option<String>> = conn
        .query_row("SELECT body FROM batches WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    body.with_context(|| format!("no batch {id}"))
}

/// Replaces the recorded message of batch `id` while it is not yet handed to the chain
/// (the publisher adds a prove-commit's aggregate before the first send). False when the
/// batch is past `recorded`: then its message stays as it was sent.
pub fn set_body(conn: &Connection, id: &str, body: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE batches SET body = ?2 WHERE id = ?1 AND state = ?3",
        params![id, body, BatchState::Recorded.name()],
    )?;
    Ok(n == 1)
}

/// Why the last attempt to send it did not.
pub fn set_error(conn: &Connection, id: &str, error: &str) -> Result<()> {
    conn.execute(
        "UPDATE batches SET error = ?2 WHERE id = ?1",
        params![id, error],
    )?;
    Ok(())
}

/// The chain's reference for batch `id`, once it was handed over.
pub fn sent_as(conn: &Connection, id: &str) -> Result<Option<String>> {
    let m: Option<Option<String>> = conn
        .query_row("SELECT message FROM batches WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(m.flatten())
}

/// Handed to the chain as message `cid` (unless it landed meanwhile).
pub fn mark_sent(conn: &Connection, id: &str, cid: &str) -> Result<()> {
    conn.execute(
        "UPDATE batches SET state = ?2, sent = ?3, message = ?4, error = NULL \
         WHERE id = ?1 AND state != ?5",
        params![
            id,
            BatchState::Sent.name(),
            now(),
            cid,
            BatchState::Landed.name()
        ],
    )?;
    Ok(())
}

/// Refused by the chain whole: never sent, done with. False when it was sent or finished
/// already (then it is not this caller's to split).
pub fn mark_refused(conn: &Connection, id: &str, error: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE batches SET state = ?2, error = ?3 WHERE id = ?1 AND state = ?4",
        params![
            id,
            BatchState::Refused.name(),
            error,
            BatchState::Recorded.name()
        ],
    )?;
    Ok(n == 1)
}

/// Sent, but it can never land (another message took its nonce): done with. False when it
/// is not in `sent` (landed, or dropped already by another publisher).
pub fn mark_dropped(conn: &Connection, id: &str, error: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE batches SET state = ?2, error = ?3 WHERE id = ?1 AND state = ?4",
        params![
            id,
            BatchState::Dropped.name(),
            error,
            BatchState::Sent.name()
        ],
    )?;
    Ok(n == 1)
}

/// Landed at `epoch` as `cid`. False when it was recorded as landed already.
pub fn mark_landed(conn: &Connection, id: &str, epoch: i64, cid: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE batches SET state = ?2, landed_epoch = ?3, message = ?4, error = NULL, \
         sent = coalesce(sent, ?5) WHERE id = ?1 AND state != ?2",
        params![id, BatchState::Landed.name(), epoch, cid, now()],
    )?;
    Ok(n == 1)
}
