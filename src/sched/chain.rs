//! The chain as the sealing pipeline sees it: the current epoch, ticket and seed randomness,
//! and message submission with a way to ask afterwards whether a message landed.
//!
//! [`SimChain`] is the embedded default: a deterministic chain whose epochs follow the wall
//! clock from a genesis time, kept in its own database (`chain.db`) so that what "landed"
//! survives the daemon and is independent of the scheduler's state, as a real chain is. It
//! checks messages the way the miner actor would (ticket age, seed epoch, one precommit per
//! sector) and verifies proofs with the reference verifier. A Lotus JSON-RPC adapter
//! implements the same [`Chain`] trait (`ChainHead`, `StateGetRandomnessFromTickets/Beacon`,
//! `MpoolPushMessage`, `StateSearchMsg`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::hex;
use crate::sector::document::SectorDoc;

/// Epochs a ticket may be old at precommit (EpochsInDay + SealRandomnessLookback;
/// docs/chain.md#timing-constants).
pub const MAX_PRECOMMIT_RANDOMNESS_LOOKBACK: i64 = 2880 + 900;
/// Epochs between precommit and the latest prove-commit (30 days + PreCommitChallengeDelay;
/// docs/chain.md#timing-constants).
pub const MAX_PROVE_COMMIT_DURATION: i64 = 30 * 2880 + 150;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    Ticket,
    Seed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgKind {
    PreCommit,
    ProveCommit,
}

impl MsgKind {
    pub fn name(self) -> &'static str {
        match self {
            MsgKind::PreCommit => "precommit",
            MsgKind::ProveCommit => "commit",
        }
    }
}

/// One batch message: every sector's document (the chain reads what it needs from it).
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub kind: MsgKind,
    pub aggregate: bool,
    pub sectors: Vec<(u64, Value)>,
}

/// Where a message landed and what happened to each of its sectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub cid: String,
    pub epoch: i64,
    /// Per sector: `None` accepted, `Some(reason)` rejected.
    pub results: Vec<(u64, Option<String>)>,
}

pub trait Chain {
    fn head(&self) -> Result<i64>;
    /// Wall-clock seconds per epoch, to turn epoch deadlines into times.
    fn epoch_secs(&self) -> f64;
    fn randomness(&self, domain: Domain, epoch: i64) -> Result<[u8; 32]>;
    /// Sends a message; sending the same id twice returns the first receipt (idempotent).
    fn submit(&self, msg: &Message) -> Result<Receipt>;
    /// The receipt of a message sent earlier, if it landed.
    fn lookup(&self, id: &str) -> Result<Option<Receipt>>;
}

pub struct SimChain {
    conn: Connection,
    epoch_secs: f64,
    seed_delay: i64,
    secret: String,
}

impl SimChain {
    pub fn open(path: &Path, epoch_secs: f64, seed_delay: u64, secret: &str) -> Result<SimChain> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open simulated chain {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, kind TEXT NOT NULL,
                 receipt TEXT NOT NULL, epoch INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS onchain (sector INTEGER PRIMARY KEY, state TEXT NOT NULL,
                 precommit_epoch INTEGER NOT NULL, comm_r TEXT NOT NULL);",
        )?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('genesis', ?1)",
            [super::db::now().to_string()],
        )?;
        Ok(SimChain {
            conn,
            epoch_secs,
            seed_delay: seed_delay as i64,
            secret: secret.to_string(),
        })
    }

    fn genesis(&self) -> Result<f64> {
        let g: String =
            self.conn
                .query_row("SELECT value FROM meta WHERE key = 'genesis'", [], |r| {
                    r.get(0)
                })?;
        Ok(g.parse()?)
    }

    /// Checks one sector of a message as the miner actor would.
    fn check(&self, kind: MsgKind, head: i64, number: u64, doc: &Value) -> Result<()> {
        let doc = SectorDoc::from_value(doc.clone(), "message")?;
        let onchain: Option<(String, i64, String)> = self
            .conn
            .query_row(
                "SELECT state, precommit_epoch, comm_r FROM onchain WHERE sector = ?1",
                [number as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        match kind {
            MsgKind::PreCommit => {
                if onchain.is_some() {
                    bail!("sector {number} is already precommitted");
                }
                let te = doc.u64("ticket_epoch")? as i64;
                if head - te > MAX_PRECOMMIT_RANDOMNESS_LOOKBACK {
                    bail!("ticket from epoch {te} is too old at epoch {head}");
                }
                if doc.ticket()? != self.randomness(Domain::Ticket, te)? {
                    bail!("ticket is not the chain's randomness at epoch {te}");
                }
                doc.hex32("comm_r")?;
            }
            MsgKind::ProveCommit => {
                let Some((state, pc_epoch, comm_r)) = onchain else {
                    bail!("sector {number} is not precommitted");
                };
                if state != "precommitted" {
                    bail!("sector {number} is already {state}");
                }
                let se = doc.u64("seed_epoch")? as i64;
                if se != pc_epoch + self.seed_delay || se > head {
                    bail!(
                        "seed epoch {se} is not precommit epoch {pc_epoch} + {}",
                        self.seed_delay
                    );
                }
                if doc.hex32("seed")? != self.randomness(Domain::Seed, se)? {
                    bail!("seed is not the chain's randomness at epoch {se}");
                }
                if hex::encode(&doc.hex32("comm_r")?) != comm_r {
                    bail!("comm_r differs from the precommitted one");
                }
                let verdict = crate::snark::verify::verify(&doc)?;
                if !verdict.valid {
                    bail!(
                        "invalid proof{}",
                        verdict.reason.map(|r| format!(": {r}")).unwrap_or_default()
                    );
                }
            }
        }
        Ok(())
    }
}

impl Chain for SimChain {
    fn head(&self) -> Result<i64> {
        Ok(((super::db::now() - self.genesis()?) / self.epoch_secs).floor() as i64)
    }

    fn epoch_secs(&self) -> f64 {
        self.epoch_secs
    }

    fn randomness(&self, domain: Domain, epoch: i64) -> Result<[u8; 32]> {
        let mut h = Sha256::new();
        h.update(b"sealkit-simchain");
        h.update(self.secret.as_bytes());
        h.update([domain as u8]);
        h.update(epoch.to_be_bytes());
        let mut out: [u8; 32] = h.finalize().into();
        // A field element, as drand-derived randomness is after Lotus truncates it.
        out[31] &= 0x3f;
        Ok(out)
    }

    fn submit(&self, msg: &Message) -> Result<Receipt> {
        if let Some(r) = self.lookup(&msg.id)? {
            return Ok(r);
        }
        let head = self.head()?;
        let mut results = Vec::new();
        for (n, doc) in &msg.sectors {
            let verdict = self.check(msg.kind, head, *n, doc);
            if verdict.is_ok() {
                let comm_r = doc
                    .get("comm_r")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match msg.kind {
                    MsgKind::PreCommit => self.conn.execute(
                        "INSERT INTO onchain (sector, state, precommit_epoch, comm_r) VALUES (?1, 'precommitted', ?2, ?3)",
                        params![*n as i64, head, comm_r],
                    )?,
                    MsgKind::ProveCommit => self.conn.execute(
                        "UPDATE onchain SET state = 'proving' WHERE sector = ?1",
                        [*n as i64],
                    )?,
                };
            }
            results.push((*n, verdict.err().map(|e| format!("{e:#}"))));
        }
        let digest: [u8; 32] = Sha256::digest(msg.id.as_bytes()).into();
        let receipt = Receipt {
            cid: format!("bafysim{}", &hex::encode(&digest)[..24]),
            epoch: head,
            results,
        };
        self.conn.execute(
            "INSERT INTO messages (id, kind, receipt, epoch) VALUES (?1, ?2, ?3, ?4)",
            params![msg.id, msg.kind.name(), receipt_json(&receipt), head],
        )?;
        Ok(receipt)
    }

    fn lookup(&self, id: &str) -> Result<Option<Receipt>> {
        let row: Option<String> = self
            .conn
            .query_row("SELECT receipt FROM messages WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        row.map(|text| parse_receipt(&text)).transpose()
    }
}

fn receipt_json(r: &Receipt) -> String {
    serde_json::json!({
        "cid": r.cid,
        "epoch": r.epoch,
        "results": r.results.iter().map(|(n, e)| serde_json::json!({"sector": n, "error": e})).collect::<Vec<_>>(),
    })
    .to_string()
}

fn parse_receipt(text: &str) -> Result<Receipt> {
    let v: Value = serde_json::from_str(text)?;
    Ok(Receipt {
        cid: v["cid"].as_str().unwrap_or_default().to_string(),
        epoch: v["epoch"].as_i64().unwrap_or_default(),
        results: v["results"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        (
                            x["sector"].as_u64().unwrap_or_default(),
                            x["error"].as_str().map(str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn randomness_is_deterministic_and_idempotent_submit() {
        let dir = tempfile::tempdir().unwrap();
        let c = SimChain::open(&dir.path().join("c.db"), 0.01, 150, "s").unwrap();
        assert_eq!(
            c.randomness(Domain::Ticket, 5).unwrap(),
            c.randomness(Domain::Ticket, 5).unwrap()
        );
        assert_ne!(
            c.randomness(Domain::Ticket, 5).unwrap(),
            c.randomness(Domain::Seed, 5).unwrap()
        );
        let other = SimChain::open(&dir.path().join("d.db"), 0.01, 150, "t").unwrap();
        assert_ne!(
            c.randomness(Domain::Seed, 5).unwrap(),
            other.randomness(Domain::Seed, 5).unwrap()
        );
        // A message with an unusable document is landed with the sector rejected, once.
        let msg = Message {
            id: "b1".into(),
            kind: MsgKind::PreCommit,
            aggregate: false,
            sectors: vec![(1, serde_json::json!({"sector": 1}))],
        };
        let r1 = c.submit(&msg).unwrap();
        assert!(r1.results[0].1.is_some());
        assert_eq!(c.lookup("b1").unwrap(), Some(r1.clone()));
        assert_eq!(c.submit(&msg).unwrap(), r1);
        assert_eq!(c.lookup("b2").unwrap(), None);
    }
}
