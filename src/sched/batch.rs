//! PreCommit and Commit batching with Lotus's rules and defaults, publishing exactly once
//! (docs/lotus-scheduler.md#batcher-behaviour, docs/chain.md#timing-constants).
//!
//! A batch is sent when it is full (MaxPreCommitBatch / MaxCommitBatch), when its oldest
//! sector has waited the batch wait, or when the earliest sector deadline minus the slack has
//! arrived (precommit: ticket epoch + MaxPreCommitRandomnessLookback; commit: precommit epoch
//! + MaxProveCommitDuration). `--now` sends everything pending, as `lotus-miner sectors
//! batching … --publish-now` does.
//!
//! Exactly once, as far as our state can tell: (1) one transaction claims the sectors into a
//! batch row in state `sending`, (2) the message goes to the chain under the batch id, (3) one
//! transaction records the receipt. A crash between (1) and (3) leaves a `sending` row, and
//! [`recover`] asks the chain whether that id landed before sending it again; the chain
//! treats a repeated id as the same message. The daemon and a cron `batch publish` can run
//! at once: the claim in (1) is atomic, so no sector is in two batches.

use anyhow::Result;
use rusqlite::params;
use serde_json::Value;

use super::chain::{
    Chain, Message, MsgKind, Receipt, MAX_PRECOMMIT_RANDOMNESS_LOOKBACK, MAX_PROVE_COMMIT_DURATION,
};
use super::config::{Batching, Config};
use super::db::{self, now, Db, SectorRow};
use super::state;

#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub max: usize,
    pub wait: f64,
    pub slack: f64,
}

impl Rules {
    pub fn of(b: &Batching, kind: MsgKind) -> Rules {
        match kind {
            MsgKind::PreCommit => Rules {
                max: b.max_precommit_batch,
                wait: Config::secs(&b.precommit_batch_wait),
                slack: Config::secs(&b.precommit_batch_slack),
            },
            MsgKind::ProveCommit => Rules {
                max: b.max_commit_batch,
                wait: Config::secs(&b.commit_batch_wait),
                slack: Config::secs(&b.commit_batch_slack),
            },
        }
    }
}

fn pending_state(kind: MsgKind) -> (&'static str, &'static str) {
    match kind {
        MsgKind::PreCommit => (state::PRE_COMMIT_BATCH, state::PRE_COMMIT_BATCH_WAIT),
        MsgKind::ProveCommit => (state::COMMIT_BATCH, state::COMMIT_BATCH_WAIT),
    }
}

/// The wall-clock deadline of a pending sector.
pub fn deadline(kind: MsgKind, s: &SectorRow, head: i64, epoch_secs: f64, at: f64) -> f64 {
    let cutoff = match kind {
        MsgKind::PreCommit => s.ticket_epoch.unwrap_or(head) + MAX_PRECOMMIT_RANDOMNESS_LOOKBACK,
        MsgKind::ProveCommit => s.precommit_epoch.unwrap_or(head) + MAX_PROVE_COMMIT_DURATION,
    };
    at + (cutoff - head) as f64 * epoch_secs
}

/// Why the pending sectors are due now, or `None` to keep waiting.
pub fn due(
    kind: MsgKind,
    pending: &[SectorRow],
    rules: Rules,
    head: i64,
    epoch_secs: f64,
    at: f64,
) -> Option<String> {
    if pending.is_empty() {
        return None;
    }
    if pending.len() >= rules.max {
        return Some(format!("full ({} sectors)", pending.len()));
    }
    let oldest = pending
        .iter()
        .map(|s| s.entered)
        .fold(f64::INFINITY, f64::min);
    if at >= oldest + rules.wait {
        return Some("batch wait expired".into());
    }
    let earliest = pending
        .iter()
        .map(|s| deadline(kind, s, head, epoch_secs, at))
        .fold(f64::INFINITY, f64::min);
    (at >= earliest - rules.slack).then(|| "a sector deadline minus slack arrived".into())
}

/// Sends the pending batch of `kind` if it is due (or `force`); returns the receipts.
pub fn publish(
    db: &mut Db,
    chain: &dyn Chain,
    cfg: &Config,
    kind: MsgKind,
    force: bool,
) -> Result<Vec<(String, Receipt)>> {
    let (pending_st, wait_st) = pending_state(kind);
    let rules = Rules::of(&cfg.batching, kind);
    let head = chain.head()?;
    let mut sent = Vec::new();
    loop {
        let claimed = db.tx(|tx| {
            let pending = db::sectors_where(tx, "state = ?1 ORDER BY number", [pending_st])?;
            let why = if force && !pending.is_empty() {
                Some("published now by the operator".to_string())
            } else {
                due(kind, &pending, rules, head, chain.epoch_secs(), now())
            };
            let Some(why) = why else { return Ok(None) };
            let take: Vec<&SectorRow> = pending.iter().take(rules.max).collect();
            let id = format!("{}-{:.0}-{}", kind.name(), now() * 1000.0, take[0].number);
            tx.execute(
                "INSERT INTO batches (id, kind, state, created) VALUES (?1, ?2, 'sending', ?3)",
                params![id, kind.name(), now()],
            )?;
            for s in &take {
                tx.execute(
                    "INSERT INTO batch_sectors (batch, sector) VALUES (?1, ?2)",
                    params![id, s.number as i64],
                )?;
                tx.execute(
                    "UPDATE sectors SET batch = ?2 WHERE number = ?1",
                    params![s.number as i64, id],
                )?;
                db::set_state(tx, s.number, wait_st, &format!("in batch {id} ({why})"))?;
            }
            db::event(
                tx,
                None,
                "batch",
                &format!("{id}: {} sectors, {why}", take.len()),
            )?;
            Ok(Some(id))
        })?;
        let Some(id) = claimed else { break };
        let receipt = send(db, chain, cfg, &id)?;
        sent.push((id, receipt));
    }
    Ok(sent)
}

/// Finishes every batch a crash left in `sending`: asks the chain, sends only if it did not land.
pub fn recover(db: &mut Db, chain: &dyn Chain, cfg: &Config) -> Result<usize> {
    let stuck: Vec<String> = db
        .batches()?
        .into_iter()
        .filter(|b| b.state == "sending")
        .map(|b| b.id)
        .collect();
    for id in &stuck {
        send(db, chain, cfg, id)?;
    }
    Ok(stuck.len())
}

fn send(db: &mut Db, chain: &dyn Chain, cfg: &Config, id: &str) -> Result<Receipt> {
    let batch = db
        .batches()?
        .into_iter()
        .find(|b| b.id == id)
        .ok_or_else(|| anyhow::anyhow!("no batch {id}"))?;
    let kind = if batch.kind == MsgKind::PreCommit.name() {
        MsgKind::PreCommit
    } else {
        MsgKind::ProveCommit
    };
    let receipt = match chain.lookup(id)? {
        Some(r) => r,
        None => {
            let mut sectors = Vec::new();
            for n in &batch.sectors {
                let s = db
                    .sector(*n)?
                    .ok_or_else(|| anyhow::anyhow!("batch {id}: no sector {n}"))?;
                sectors.push((*n, s.doc));
            }
            let aggregate = kind == MsgKind::ProveCommit
                && sectors.len() >= cfg.batching.min_commit_batch.max(4);
            chain.submit(&Message {
                id: id.to_string(),
                kind,
                aggregate,
                sectors,
            })?
        }
    };
    let retry_min = Config::secs(&cfg.sealing.retry_min);
    db.tx(|tx| {
        let n = tx.execute(
            "UPDATE batches SET state = 'landed', sent = ?2, landed_epoch = ?3, message = ?4 WHERE id = ?1 AND state = 'sending'",
            params![id, now(), receipt.epoch, receipt.cid],
        )?;
        if n == 0 {
            return Ok(()); // another process recorded it first
        }
        for (sector, err) in &receipt.results {
            let s = *sector as i64;
            match (kind, err) {
                (MsgKind::PreCommit, None) => {
                    tx.execute("UPDATE sectors SET precommit_epoch = ?2, batch = NULL WHERE number = ?1", params![s, receipt.epoch])?;
                    let mut doc: Value = db::sectors_where(tx, "number = ?1", [s])?.pop().map(|r| r.doc).unwrap_or(Value::Null);
                    doc["precommit_epoch"] = receipt.epoch.into();
                    db::set_doc(tx, *sector, &doc)?;
                    db::set_state(tx, *sector, state::WAIT_SEED, &format!("precommit landed at epoch {} in {}", receipt.epoch, receipt.cid))?;
                }
                (MsgKind::ProveCommit, None) => {
                    tx.execute("UPDATE sectors SET batch = NULL WHERE number = ?1", [s])?;
                    db::set_state(tx, *sector, state::FINALIZE, &format!("proof landed at epoch {} in {}", receipt.epoch, receipt.cid))?;
                }
                (_, Some(e)) => {
                    let failed = if kind == MsgKind::PreCommit { state::PRE_COMMIT_FAILED } else { state::COMMIT_FAILED };
                    tx.execute(
                        "UPDATE sectors SET batch = NULL, fails = fails + 1, retry_at = ?2, last_error = ?3 WHERE number = ?1",
                        params![s, now() + retry_min, e],
                    )?;
                    db::set_state(tx, *sector, failed, e)?;
                }
            }
        }
        db::event(tx, None, "batch", &format!("{id} landed at epoch {} as {}", receipt.epoch, receipt.cid))?;
        Ok(())
    })?;
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: u64, entered: f64, ticket_epoch: i64) -> SectorRow {
        SectorRow {
            number: n,
            state: state::PRE_COMMIT_BATCH.into(),
            deal: false,
            priority: 0,
            doc: Value::Null,
            pieces: vec![],
            location: None,
            fails: 0,
            proof_fails: 0,
            retry_at: 0.0,
            last_error: None,
            ticket_epoch: Some(ticket_epoch),
            precommit_epoch: Some(ticket_epoch),
            seed_epoch: None,
            batch: None,
            entered,
            created: entered,
        }
    }

    #[test]
    fn lotus_defaults_and_due_rules() {
        let b = Batching::default();
        let pc = Rules::of(&b, MsgKind::PreCommit);
        let c = Rules::of(&b, MsgKind::ProveCommit);
        assert_eq!((pc.max, pc.wait, pc.slack), (256, 86400.0, 3.0 * 3600.0));
        assert_eq!((c.max, c.wait, c.slack), (819, 86400.0, 3600.0));
        assert_eq!(b.min_commit_batch, 4);
        let t = 1_000_000.0;
        let r = Rules {
            max: 3,
            wait: 100.0,
            slack: 10.0,
        };
        let k = MsgKind::PreCommit;
        // Fresh sectors with distant deadlines wait (30 s epochs: 3780 epochs ≈ 31.5 h).
        assert_eq!(due(k, &[row(1, t, 0)], r, 0, 30.0, t), None);
        assert_eq!(due(k, &[], r, 0, 30.0, t), None);
        assert!(due(
            k,
            &[row(1, t, 0), row(2, t, 0), row(3, t, 0)],
            r,
            0,
            30.0,
            t
        )
        .unwrap()
        .starts_with("full"));
        assert_eq!(
            due(k, &[row(1, t - 100.0, 0)], r, 0, 30.0, t).as_deref(),
            Some("batch wait expired")
        );
        // Ticket from epoch 0, head 3779 at 1 s epochs: 1 s before the cutoff, inside 10 s of slack.
        assert!(due(k, &[row(1, t, 0)], r, 3779, 1.0, t)
            .unwrap()
            .contains("slack"));
        assert_eq!(
            deadline(k, &row(1, t, 100), 100, 30.0, t),
            t + 3780.0 * 30.0
        );
        assert_eq!(
            deadline(MsgKind::ProveCommit, &row(1, t, 100), 100, 30.0, t),
            t + 86550.0 * 30.0
        );
    }
}
