//! The simulated chain's own database (`chain.db`, a file apart from `sched.db`, as a real
//! chain is apart from the scheduler): its genesis time, the messages that landed with their
//! receipts, each sector's on-chain record, the wallet that pays deposits and pledge, and
//! what each sector has locked. FIL amounts are decimal attoFIL text (SQLite's integers stop
//! at 9.2 FIL). Here because all SQL lives in `db`; the
//! rules the chain applies are in `sched::chain`.

use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::now;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, kind TEXT NOT NULL,
    receipt TEXT NOT NULL, epoch INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS onchain (sector INTEGER PRIMARY KEY, state TEXT NOT NULL,
    precommit_epoch INTEGER NOT NULL, comm_r TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending (id TEXT PRIMARY KEY, kind TEXT NOT NULL,
    body TEXT NOT NULL, lands INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS collateral (sector INTEGER PRIMARY KEY, deposit TEXT NOT NULL,
    pledge TEXT NOT NULL);
";

/// A sector as the simulated miner actor holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChainState {
    Precommitted,
    Proving,
    /// Proving, with deal data from a snap-deal update (its comm_r is the update's): no
    /// second update.
    Updated,
    /// Precommitted and not proven in time: the precommit is gone and its deposit burnt;
    /// the number stays allocated, as the actor keeps it.
    Expired,
}

impl OnChainState {
    const ALL: [OnChainState; 4] = [
        OnChainState::Precommitted,
        OnChainState::Proving,
        OnChainState::Updated,
        OnChainState::Expired,
    ];

    fn name(self) -> &'static str {
        match self {
            OnChainState::Precommitted => "precommitted",
            OnChainState::Proving => "proving",
            OnChainState::Updated => "updated",
            OnChainState::Expired => "expired",
        }
    }
}

/// What the chain has burnt, as running totals in `meta` (attoFIL).
#[derive(Debug, Clone, Copy)]
pub enum Burnt {
    /// Gas of landed messages.
    Gas,
    /// Deposits of precommits that expired unproven.
    Deposits,
}

impl Burnt {
    fn key(self) -> &'static str {
        match self {
            Burnt::Gas => "gas_burnt",
            Burnt::Deposits => "deposits_burnt",
        }
    }
}

impl std::fmt::Display for OnChainState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone)]
pub struct OnChain {
    pub state: OnChainState,
    pub precommit_epoch: i64,
    /// Hex, as precommitted.
    pub comm_r: String,
}

/// Opens (or creates) the chain's database; a new one's genesis is now, with `wallet`
/// attoFIL in its wallet (a database from before the wallet existed gets it too).
pub fn open(path: &Path, wallet: u128) -> Result<Connection> {
    let conn = Connection::open(path)
        .with_context(|| format!("cannot open simulated chain {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('genesis', ?1)",
        [now().to_string()],
    )?;
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('wallet', ?1)",
        [wallet.to_string()],
    )?;
    for b in [Burnt::Gas, Burnt::Deposits] {
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, '0')",
            [b.key()],
        )?;
    }
    Ok(conn)
}

fn atto(text: &str, what: &str) -> Result<u128> {
    crate::filecoin::token::parse_atto(text, &format!("chain.db {what}"))
}

/// attoFIL in the wallet that sends the messages (and pays their value).
pub fn wallet(conn: &Connection) -> Result<u128> {
    let w: String = conn.query_row("SELECT value FROM meta WHERE key = 'wallet'", [], |r| {
        r.get(0)
    })?;
    atto(&w, "meta.wallet")
}

pub fn set_wallet(conn: &Connection, atto: u128) -> Result<()> {
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'wallet'",
        [atto.to_string()],
    )?;
    Ok(())
}

/// What the chain has burnt of `what`, in all (attoFIL).
pub fn burnt(conn: &Connection, what: Burnt) -> Result<u128> {
    let v: String = conn.query_row("SELECT value FROM meta WHERE key = ?1", [what.key()], |r| {
        r.get(0)
    })?;
    atto(&v, &format!("meta.{}", what.key()))
}

pub fn add_burnt(conn: &Connection, what: Burnt, atto_fil: u128) -> Result<()> {
    let total = burnt(conn, what)? + atto_fil;
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = ?2",
        params![total.to_string(), what.key()],
    )?;
    Ok(())
}

/// What sector `n` has locked: its precommit deposit (until it is proven) and its pledge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Locked {
    pub deposit: u128,
    pub pledge: u128,
}

pub fn locked(conn: &Connection, n: u64) -> Result<Locked> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT deposit, pledge FROM collateral WHERE sector = ?1",
            [n as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((d, p)) = row else {
        return Ok(Locked::default());
    };
    Ok(Locked {
        deposit: atto(&d, &format!("collateral {n} deposit"))?,
        pledge: atto(&p, &format!("collateral {n} pledge"))?,
    })
}

pub fn set_locked(conn: &Connection, n: u64, l: Locked) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO collateral (sector, deposit, pledge) VALUES (?1, ?2, ?3)",
        params![n as i64, l.deposit.to_string(), l.pledge.to_string()],
    )?;
    Ok(())
}

/// Everything the miner has locked: deposits and pledge summed over its sectors.
pub fn locked_total(conn: &Connection) -> Result<Locked> {
    let mut st = conn.prepare_cached("SELECT sector, deposit, pledge FROM collateral")?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut sum = Locked::default();
    for (n, d, p) in rows {
        sum.deposit += atto(&d, &format!("collateral {n} deposit"))?;
        sum.pledge += atto(&p, &format!("collateral {n} pledge"))?;
    }
    Ok(sum)
}

/// One immediate transaction on the chain: a message lands with all its effects or none.
pub fn begin(conn: &Connection) -> Result<Transaction<'_>> {
    Ok(Transaction::new_unchecked(
        conn,
        TransactionBehavior::Immediate,
    )?)
}

/// The wall-clock time of epoch 0.
pub fn genesis(conn: &Connection) -> Result<f64> {
    let g: String = conn.query_row("SELECT value FROM meta WHERE key = 'genesis'", [], |r| {
        r.get(0)
    })?;
    g.parse()
        .with_context(|| format!("chain.db meta.genesis is not a time: {g:?}"))
}

/// Sector `n`'s on-chain record, if it has one.
pub fn sector(conn: &Connection, n: u64) -> Result<Option<OnChain>> {
    let row: Option<(String, i64, String)> = conn
        .query_row(
            "SELECT state, precommit_epoch, comm_r FROM onchain WHERE sector = ?1",
            [n as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    row.map(|(state, precommit_epoch, comm_r)| {
        let state = OnChainState::ALL
            .into_iter()
            .find(|s| s.name() == state)
            .with_context(|| format!("chain.db sector {n}: unknown state {state:?}"))?;
        Ok(OnChain {
            state,
            precommit_epoch,
            comm_r,
        })
    })
    .transpose()
}

pub fn precommit(conn: &Connection, n: u64, epoch: i64, comm_r: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO onchain (sector, state, precommit_epoch, comm_r) VALUES (?1, ?2, ?3, ?4)",
        params![n as i64, OnChainState::Precommitted.name(), epoch, comm_r],
    )?;
    Ok(())
}

pub fn prove(conn: &Connection, n: u64) -> Result<()> {
    conn.execute(
        "UPDATE onchain SET state = ?2 WHERE sector = ?1",
        params![n as i64, OnChainState::Proving.name()],
    )?;
    Ok(())
}

/// Sectors still only precommitted whose precommit epoch is before `epoch`.
pub fn precommitted_before(conn: &Connection, epoch: i64) -> Result<Vec<u64>> {
    let mut st = conn.prepare_cached(
        "SELECT sector FROM onchain WHERE state = ?1 AND precommit_epoch < ?2 ORDER BY sector",
    )?;
    let rows = st
        .query_map(params![OnChainState::Precommitted.name(), epoch], |r| {
            r.get::<_, i64>(0)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.into_iter().map(|n| n as u64).collect())
}

/// Sector `n`'s precommit expired.
pub fn expire(conn: &Connection, n: u64) -> Result<()> {
    conn.execute(
        "UPDATE onchain SET state = ?2 WHERE sector = ?1",
        params![n as i64, OnChainState::Expired.name()],
    )?;
    Ok(())
}

/// Sector `n`'s replica was updated: its comm_r is now `comm_r` (hex).
pub fn update(conn: &Connection, n: u64, comm_r: &str) -> Result<()> {
    conn.execute(
        "UPDATE onchain SET state = ?2, comm_r = ?3 WHERE sector = ?1",
        params![n as i64, OnChainState::Updated.name(), comm_r],
    )?;
    Ok(())
}

/// The receipt (JSON) of message `id`, if it landed.
pub fn receipt(conn: &Connection, id: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT receipt FROM messages WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Message `id` of `kind` landed at `epoch` with `receipt` (JSON).
pub fn record_message(
    conn: &Connection,
    id: &str,
    kind: &str,
    receipt: &str,
    epoch: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO messages (id, kind, receipt, epoch) VALUES (?1, ?2, ?3, ?4)",
        params![id, kind, receipt, epoch],
    )?;
    Ok(())
}

/// A message accepted into the (simulated) message pool, landing at epoch `lands`.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: String,
    pub kind: String,
    /// What the chain decided for each sector when the message was pushed (JSON).
    pub body: String,
    pub lands: i64,
}

pub fn add_pending(conn: &Connection, p: &Pending) -> Result<()> {
    conn.execute(
        "INSERT INTO pending (id, kind, body, lands) VALUES (?1, ?2, ?3, ?4)",
        params![p.id, p.kind, p.body, p.lands],
    )?;
    Ok(())
}

pub fn is_pending(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM pending WHERE id = ?1", [id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The pending messages that land at or before `head`, in the order they were pushed.
pub fn pending_due(conn: &Connection, head: i64) -> Result<Vec<Pending>> {
    let mut st = conn.prepare_cached(
        "SELECT id, kind, body, lands FROM pending WHERE lands <= ?1 ORDER BY lands, rowid",
    )?;
    let rows = st
        .query_map([head], |r| {
            Ok(Pending {
                id: r.get(0)?,
                kind: r.get(1)?,
                body: r.get(2)?,
                lands: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// How many messages wait to land.
pub fn pending_count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT count(*) FROM pending", [], |r| r.get(0))?;
    Ok(n as u64)
}

pub fn remove_pending(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM pending WHERE id = ?1", [id])?;
    Ok(())
}
