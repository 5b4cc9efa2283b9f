//! The chain as the sealing pipeline sees it: the current epoch, ticket and seed randomness,
//! which sector numbers a miner has allocated, and message submission in three steps that a
//! real node also supports: the message is recorded in our outbox first (by `batch`), then
//! [`Chain::send`] hands it over, and whether it landed is only ever learned from
//! [`Chain::lookup`] by the message's id. Nothing a send returns moves a sector.
//!
//! [`SimChain`] is the embedded default: a deterministic chain whose epochs follow the wall
//! clock from a genesis time, kept in its own database (`chain.db`) so that what "landed"
//! survives the daemon and is independent of the scheduler's state, as a real chain is. As on
//! the real chain, a message is checked when it is pushed and lands [`LANDING_DELAY`] epoch
//! later, in one transaction (all its effects or none: a kill inside `send` or a landing
//! leaves nothing half-applied); until then a lookup finds nothing. It checks messages the
//! way the miner actor would (ticket age, seed epoch, one precommit per sector, the prove-commit
//! deadline, and again at landing; an unproven precommit expires and its deposit is burnt) and verifies proofs with the reference verifier; a proof it cannot verify for a
//! local reason (parameters missing here) fails the send instead of rejecting a valid proof.
//! Its wallet pays each message's value (deposits and pledge at `sched::funds` prices) and
//! its gas (`sched::gas`'s schedule) when the message lands, and the sectors lock the
//! value; a push the wallet cannot pay is not sent.
//!
//! `sched::lotus::LotusChain` implements the same trait over a Lotus/Forest node.

use std::path::Path;

use anyhow::{bail, Context, Result};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::db::sim_chain::{self as store, OnChainState};
use crate::filecoin::token::fil_text;
use crate::hex;
use crate::sector::document::SectorDoc;

/// Epochs a ticket may be old at precommit (EpochsInDay + SealRandomnessLookback;
/// docs/chain.md#timing-constants).
pub const MAX_PRECOMMIT_RANDOMNESS_LOOKBACK: i64 = 2880 + 900;
/// Epochs between precommit and the latest prove-commit (30 days + PreCommitChallengeDelay;
/// docs/chain.md#timing-constants).
pub const MAX_PROVE_COMMIT_DURATION: i64 = 30 * 2880 + 150;

/// The interactive randomness the miner actor verifies an NI-PoRep proof with (its NI
/// verify-info builder): NI sectors have no seed, and their documents carry this one.
pub const NI_SEED: [u8; 32] = [1; 32];

/// Days an NI-PoRep ticket may be old at ProveCommitSectorsNI
/// (`MAX_PROVE_COMMIT_NI_LOOKBACK`, in epochs).
pub const MAX_NI_TICKET_LOOKBACK: i64 = 180 * 2880;

/// Whether a sector document is of an NI-PoRep proof type (a document that names no valid
/// proof type is not).
pub fn non_interactive(doc: &Value) -> bool {
    SectorDoc::from_value(doc.clone(), "sector")
        .and_then(|d| d.seal_proof())
        .is_ok_and(|p| p.is_non_interactive())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    Ticket,
    Seed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MsgKind {
    #[serde(rename = "precommit")]
    PreCommit,
    #[serde(rename = "commit")]
    ProveCommit,
    /// `ProveReplicaUpdates3`: snapped sectors' update proofs.
    #[serde(rename = "update")]
    ReplicaUpdate,
}

impl MsgKind {
    /// Every kind, in the order a pass publishes them.
    pub const ALL: [MsgKind; 3] = [
        MsgKind::PreCommit,
        MsgKind::ProveCommit,
        MsgKind::ReplicaUpdate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MsgKind::PreCommit => "precommit",
            MsgKind::ProveCommit => "commit",
            MsgKind::ReplicaUpdate => "update",
        }
    }

    pub fn parse(s: &str) -> Option<MsgKind> {
        MsgKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One batch message: every sector's document (the chain reads what it needs from it). It
/// is recorded whole in the outbox before it is sent, so a re-send is the same message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub kind: MsgKind,
    pub aggregate: bool,
    pub sectors: Vec<(u64, Value)>,
    /// The SnarkPack aggregate of a prove-commit's proofs (hex), proving `sectors` in their
    /// order (ascending numbers, as the actor and Lotus list them). The publisher makes it
    /// and records it in the outbox before the message is first sent (`batch`), so a re-send
    /// carries the same bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate_proof: Option<String>,
    /// An interactive prove-commit's two forms as the chain quoted them before its first
    /// send, which decided whether it goes aggregated or plain ([`super::gas`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotes: Option<super::gas::Quotes>,
}

/// Where a message landed and what happened to each of its sectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub cid: String,
    pub epoch: i64,
    /// Per sector: `None` accepted, `Some(reason)` rejected.
    pub results: Vec<(u64, Option<String>)>,
}

/// The chain refused a message whole before anything was sent: a node executes a message
/// before it signs it, and the actor said no (a precommit is all or nothing). Nothing of it
/// exists on chain, and the same message would be refused again, so the outbox splits it.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the chain refused it: {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// A message that was sent but can never land: another message from the same sender took
/// its nonce (a different call, not a fee replacement; Lotus's `StateSearchMsg` says so).
/// Its sectors are in no message on chain, and a send under the same message UUID would
/// return the dead message again, so the outbox records them in a new batch.
#[derive(Debug)]
pub struct Displaced(pub String);

impl std::fmt::Display for Displaced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "it can never land: {}", self.0)
    }
}

impl std::error::Error for Displaced {}

pub trait Chain {
    fn head(&self) -> Result<i64>;
    /// Wall-clock seconds per epoch, to turn epoch deadlines into times.
    fn epoch_secs(&self) -> f64;
    /// Epochs from a precommit's epoch to its interactive seed (`PreCommitChallengeDelay`).
    fn seed_delay(&self) -> i64;
    /// Epochs behind the head a ticket is drawn from (a real chain's recent tipsets can still
    /// be reorganised away; Lotus draws at head − `SealRandomnessLookback`). The simulated
    /// chain has no reorgs: 0.
    fn ticket_lookback(&self) -> i64 {
        0
    }
    /// Epochs past the seed epoch before the seed is drawn (Lotus's
    /// `InteractivePoRepConfidence`), for the same reason; 0 on the simulated chain.
    fn seed_confidence(&self) -> i64 {
        0
    }
    /// Seal randomness for `miner` at `epoch`: the ticket (from tickets) or the interactive
    /// seed (from the beacon), both drawn with the miner's address as entropy, as the miner
    /// actor does. Used as is: the chain does not mask seal randomness to a field element.
    fn randomness(&self, domain: Domain, epoch: i64, miner: u64) -> Result<[u8; 32]>;
    /// Whether `miner` has sector number `number` allocated (precommitted or proven): such
    /// a number must never be sealed again.
    fn sector_allocated(&self, miner: u64, number: u64) -> Result<bool>;
    /// Hands a recorded message to the chain and returns the chain's reference for it (a
    /// message CID). Idempotent by `msg.id`: a message already sent is not sent again.
    fn send(&self, msg: &Message) -> Result<String>;
    /// What sending `msg` as it is would cost in gas now (the node executes it to estimate;
    /// a message the actor would reject errs with [`Refused`]). Nothing is sent.
    fn quote(&self, msg: &Message) -> Result<super::gas::Quote>;
    /// The receipt of recorded message `msg` once it landed; `None` while it is pending or
    /// if it was never sent. `sent` is the reference [`Chain::send`] returned, where the
    /// outbox has it (a node finds messages by CID; a crash before it was stored leaves
    /// `None`, and the next send gets the same reference back). A sent message that can
    /// never land errs with [`Displaced`].
    fn lookup(&self, msg: &Message, sent: Option<&str>) -> Result<Option<Receipt>>;
}

pub struct SimChain {
    conn: Connection,
    epoch_secs: f64,
    seed_delay: i64,
    secret: String,
}

/// The simulated chain's money: the wallet that sends messages (and pays their value), what
/// messages in flight will take from it when they land, and what the miner has locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimFunds {
    pub wallet: u128,
    pub promised: u128,
    pub locked: store::Locked,
    /// Gas the wallet has paid for landed messages, in all.
    pub gas_burnt: u128,
    /// Deposits of precommits that expired unproven, burnt, in all.
    pub deposits_burnt: u128,
}

impl SimChain {
    /// Opens (or creates, with `wallet` attoFIL in its wallet) the chain in `path`.
    pub fn open(
        path: &Path,
        epoch_secs: f64,
        seed_delay: u64,
        secret: &str,
        wallet: u128,
    ) -> Result<SimChain> {
        let conn = store::open(path, wallet)?;
        Ok(SimChain {
            conn,
            epoch_secs,
            seed_delay: seed_delay as i64,
            secret: secret.to_string(),
        })
    }

    fn genesis(&self) -> Result<f64> {
        store::genesis(&self.conn)
    }

    /// Checks one sector of a message as the miner actor would; with `aggregated`, all but
    /// its proof, which the message's aggregate carries ([`SimChain::check_aggregate`]).
    fn check(
        &self,
        kind: MsgKind,
        head: i64,
        number: u64,
        doc: &Value,
        aggregated: bool,
    ) -> Result<()> {
        let doc = SectorDoc::from_value(doc.clone(), "message")?;
        let onchain = store::sector(&self.conn, number)?;
        match kind {
            MsgKind::PreCommit => {
                if onchain.is_some() {
                    bail!("sector {number} is already precommitted");
                }
                let te = doc.u64("ticket_epoch")? as i64;
                if head - te > MAX_PRECOMMIT_RANDOMNESS_LOOKBACK {
                    bail!("ticket from epoch {te} is too old at epoch {head}");
                }
                if doc.ticket()? != self.randomness(Domain::Ticket, te, doc.u64("miner")?)? {
                    bail!("ticket is not the chain's randomness at epoch {te}");
                }
                doc.hex32("comm_r")?;
            }
            MsgKind::ProveCommit if doc.seal_proof()?.is_non_interactive() => {
                // ProveCommitSectorsNI: no precommit; the number must be free, the ticket
                // the chain's and at most 180 days old; the proof is in the aggregate.
                if let Some(on) = onchain {
                    bail!("sector {number} is already {}", on.state);
                }
                let te = doc.u64("ticket_epoch")? as i64;
                if head - te > MAX_NI_TICKET_LOOKBACK {
                    bail!("ticket from epoch {te} is too old at epoch {head}");
                }
                if doc.ticket()? != self.randomness(Domain::Ticket, te, doc.u64("miner")?)? {
                    bail!("ticket is not the chain's randomness at epoch {te}");
                }
                if doc.hex32("seed")? != NI_SEED {
                    bail!("an NI-PoRep proof is made with the seed [1; 32]");
                }
                doc.hex32("comm_r")?;
                if !aggregated {
                    bail!("an NI-PoRep sector's proof goes on chain only in an aggregate");
                }
            }
            MsgKind::ProveCommit => {
                let Some(on) = onchain else {
                    bail!("sector {number} is not precommitted");
                };
                let pc_epoch = on.precommit_epoch;
                if on.state == OnChainState::Expired
                    || (on.state == OnChainState::Precommitted
                        && head > pc_epoch + MAX_PROVE_COMMIT_DURATION)
                {
                    bail!(
                        "sector {number}'s precommit (epoch {pc_epoch}) expired unproven at epoch {}",
                        pc_epoch + MAX_PROVE_COMMIT_DURATION + 1
                    );
                }
                if on.state != OnChainState::Precommitted {
                    bail!("sector {number} is already {}", on.state);
                }
                let se = doc.u64("seed_epoch")? as i64;
                if se != pc_epoch + self.seed_delay || se > head {
                    bail!(
                        "seed epoch {se} is not precommit epoch {pc_epoch} + {}",
                        self.seed_delay
                    );
                }
                if doc.hex32("seed")? != self.randomness(Domain::Seed, se, doc.u64("miner")?)? {
                    bail!("seed is not the chain's randomness at epoch {se}");
                }
                if hex::encode(&doc.hex32("comm_r")?) != on.comm_r {
                    bail!("comm_r differs from the precommitted one");
                }
                if aggregated {
                    return Ok(());
                }
                // Cannot verify here (parameters missing, unreadable): not the proof's fault.
                let verdict =
                    crate::snark::verify::verify(&doc).map_err(|e| Local(format!("{e:#}")))?;
                if !verdict.valid {
                    bail!(
                        "invalid proof{}",
                        verdict.reason.map(|r| format!(": {r}")).unwrap_or_default()
                    );
                }
            }
            MsgKind::ReplicaUpdate => {
                let Some(on) = onchain else {
                    bail!("sector {number} is not on chain");
                };
                if on.state != OnChainState::Proving {
                    bail!(
                        "sector {number} is {}: only a proving CC sector can be updated",
                        on.state
                    );
                }
                if hex::encode(&doc.hex32("comm_r")?) != on.comm_r {
                    bail!("comm_r (the sector key's) differs from the sector's on-chain comm_r");
                }
                let verdict =
                    crate::snark::update::verify_doc(&doc).map_err(|e| Local(format!("{e:#}")))?;
                if !verdict.valid {
                    bail!(
                        "invalid update proof{}",
                        verdict.reason.map(|r| format!(": {r}")).unwrap_or_default()
                    );
                }
            }
        }
        Ok(())
    }
}

impl SimChain {
    /// An aggregated prove-commit as the actor takes it: whole or not at all. The aggregate
    /// proves every sector of the message, so a sector the actor would drop (not
    /// precommitted, a wrong seed) fails the message, as does an aggregate that does not
    /// verify or a count outside the actor's bounds: [`Refused`], nothing sent.
    fn check_aggregate(&self, msg: &Message, verdicts: &[Verdict]) -> Result<()> {
        let docs = msg
            .sectors
            .iter()
            .map(|(n, doc)| SectorDoc::from_value(doc.clone(), &format!("sector {n}")))
            .collect::<Result<Vec<_>>>()?;
        let kinds: Vec<bool> = docs
            .iter()
            .map(|d| d.seal_proof().map(|p| p.is_non_interactive()))
            .collect::<Result<_>>()?;
        if kinds.iter().any(|k| *k != kinds[0]) {
            return Err(Refused("NI-PoRep and interactive sectors in one aggregate".into()).into());
        }
        let bounds = crate::snark::aggregate::bounds(docs[0].seal_proof()?);
        if !bounds.contains(&msg.sectors.len()) {
            return Err(Refused(format!(
                "an aggregate of {} sectors: the actor takes {} to {}",
                msg.sectors.len(),
                bounds.start(),
                bounds.end()
            ))
            .into());
        }
        if let Some(v) = verdicts.iter().find(|v| v.error.is_some()) {
            return Err(Refused(format!(
                "sector {} of the aggregate: {}",
                v.sector,
                v.error.as_deref().unwrap_or_default()
            ))
            .into());
        }
        let order: Vec<u64> = msg.sectors.iter().map(|(n, _)| *n).collect();
        if order.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Refused(format!(
                "aggregate inputs out of order: sectors {order:?} (ascending numbers)"
            ))
            .into());
        }
        let bytes = hex::decode(msg.aggregate_proof.as_deref().unwrap_or_default())
            .map_err(|e| Refused(format!("aggregate_proof is not hex: {e}")))?;
        // Cannot verify here (parameters missing): the message is not sent.
        let valid = crate::snark::aggregate::verify(&docs, &bytes)
            .map_err(|e| Local(format!("{e:#}")))
            .with_context(|| {
                format!(
                    "message {} not sent: its aggregate cannot be checked here",
                    msg.id
                )
            })?;
        if !valid {
            return Err(Refused(format!(
                "the aggregate of sectors {order:?} does not verify"
            ))
            .into());
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

    fn seed_delay(&self) -> i64 {
        self.seed_delay
    }

    fn randomness(&self, domain: Domain, epoch: i64, miner: u64) -> Result<[u8; 32]> {
        let mut h = Sha256::new();
        h.update(b"sealkit-simchain");
        h.update(self.secret.as_bytes());
        h.update([domain as u8]);
        h.update(epoch.to_be_bytes());
        h.update(miner.to_be_bytes());
        Ok(h.finalize().into())
    }

    fn sector_allocated(&self, _miner: u64, number: u64) -> Result<bool> {
        // The simulated chain holds one miner's sectors (the repository's).
        self.land_due()?;
        Ok(store::sector(&self.conn, number)?.is_some())
    }

    fn send(&self, msg: &Message) -> Result<String> {
        let cid = message_cid(&msg.id);
        let tx = store::begin(&self.conn)?;
        if store::receipt(&tx, &msg.id)?.is_some() || store::is_pending(&tx, &msg.id)? {
            return Ok(cid); // pushed before: the same message, not a second one
        }
        let head = self.head()?;
        // Checked when pushed, as a node's gas estimation executes a message before it
        // accepts it; a proof that cannot be verified here fails the push, not the sector.
        let aggregated = msg.kind == MsgKind::ProveCommit && msg.aggregate_proof.is_some();
        let mut verdicts = Vec::new();
        for (n, doc) in &msg.sectors {
            let verdict = match self.check(msg.kind, head, *n, doc, aggregated) {
                Err(e) if e.is::<Local>() => {
                    return Err(e.context(format!(
                        "message {} not sent: sector {n} cannot be checked here",
                        msg.id
                    )))
                }
                v => v,
            };
            let ni = msg.kind == MsgKind::ProveCommit && non_interactive(doc);
            let (costs, pay) = match verdict {
                Ok(()) => self.value_of(&tx, msg.kind, ni, *n, doc)?,
                Err(_) => (None, 0),
            };
            verdicts.push(Verdict {
                sector: *n,
                non_interactive: ni,
                costs,
                pay,
                error: verdict.err().map(|e| format!("{e:#}")),
                // What the sector's on-chain comm_r becomes: an update's new one.
                comm_r: match msg.kind {
                    MsgKind::ReplicaUpdate => doc.get("update").and_then(|u| u.get("comm_r")),
                    _ => doc.get("comm_r"),
                }
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            });
        }
        if aggregated {
            self.check_aggregate(msg, &verdicts)?;
        }
        // The node's message pool takes a message only while the wallet covers its value
        // and its gas beside what the messages it already holds will spend; otherwise it is
        // not sent.
        let value: u128 = verdicts.iter().map(|v| v.pay).sum();
        let fee = self.quote(msg)?.fee;
        let wallet = store::wallet(&tx)?;
        let promised = promised(&tx)?;
        if wallet.saturating_sub(promised) < value + fee {
            bail!(
                "message {} not sent: it carries {} of deposits and pledge and costs {} of gas, and the wallet holds {}{}; add funds (seal-sched chain fund AMOUNT)",
                msg.id,
                fil_text(value),
                fil_text(fee),
                fil_text(wallet),
                if promised > 0 {
                    format!(", {} of it promised to messages in flight", fil_text(promised))
                } else {
                    String::new()
                }
            );
        }
        store::add_pending(
            &tx,
            &store::Pending {
                id: msg.id.clone(),
                kind: msg.kind.name().into(),
                body: serde_json::to_string(&PendingBody { verdicts, fee })?,
                lands: head + LANDING_DELAY,
            },
        )?;
        tx.commit()?;
        Ok(cid)
    }

    fn lookup(&self, msg: &Message, _sent: Option<&str>) -> Result<Option<Receipt>> {
        self.receipt(&msg.id)
    }

    /// The simulated chain's gas schedule ([`super::gas::sim_quote`]); it does not execute
    /// the message to quote it (a send checks it).
    fn quote(&self, msg: &Message) -> Result<super::gas::Quote> {
        let aggregated = msg.kind == MsgKind::ProveCommit && msg.aggregate_proof.is_some();
        Ok(super::gas::sim_quote(
            msg.kind,
            msg.sectors.len() as u64,
            aggregated,
        ))
    }
}

impl SimChain {
    /// The receipt of the message with this id once it landed (the simulated chain keeps
    /// messages by our id).
    pub fn receipt(&self, id: &str) -> Result<Option<Receipt>> {
        self.land_due()?;
        store::receipt(&self.conn, id)?
            .map(|text| parse_receipt(&text))
            .transpose()
    }
}

/// Epochs from a message's push to the tipset that includes it: a real message is never
/// on chain in the epoch it was sent, and callers must look it up again.
pub const LANDING_DELAY: i64 = 1;

/// A pushed message as `chain.db` keeps it until it lands: what the chain decided for each
/// sector and the gas the wallet pays when it lands. Rows from before gas was charged are
/// the bare list of verdicts, and cost none.
#[derive(Serialize, Deserialize)]
struct PendingBody {
    verdicts: Vec<Verdict>,
    fee: u128,
}

impl PendingBody {
    fn parse(p: &store::Pending) -> Result<PendingBody> {
        let what = || format!("chain.db pending {}: unreadable body", p.id);
        if p.body.trim_start().starts_with('[') {
            let verdicts = serde_json::from_str(&p.body).with_context(what)?;
            return Ok(PendingBody { verdicts, fee: 0 });
        }
        serde_json::from_str(&p.body).with_context(what)
    }
}

/// What the chain decided for one sector of a pushed message.
#[derive(Debug, Serialize, Deserialize)]
struct Verdict {
    sector: u64,
    /// A ProveCommitSectorsNI sector: it has no precommit and is allocated when it lands.
    #[serde(default)]
    non_interactive: bool,
    /// The sector's prices when the message was pushed (none for an update, which costs
    /// nothing, and for a sector refused at push).
    #[serde(default)]
    costs: Option<(u128, u128)>,
    /// The attoFIL of the message's value that is this sector's: the wallet pays it when
    /// the sector's part lands.
    #[serde(default)]
    pay: u128,
    error: Option<String>,
    comm_r: String,
}

impl SimChain {
    /// Lands every pushed message whose epoch has come, each in one transaction with all
    /// its effects, at its landing epoch (a sector's precommit epoch is that epoch). A sector
    /// whose state changed meanwhile is refused as the actor would refuse it then.
    fn land_due(&self) -> Result<()> {
        let head = self.head()?;
        let tx = store::begin(&self.conn)?;
        for p in store::pending_due(&tx, head)? {
            // Precommits that expired before this message lands are gone when it does.
            expire_due(&tx, p.lands)?;
            let kind = MsgKind::parse(&p.kind)
                .with_context(|| format!("chain.db pending {}: unknown kind {:?}", p.id, p.kind))?;
            let PendingBody { verdicts, fee } = PendingBody::parse(&p)?;
            // Gas is paid whatever the actor decided, as the sender pays it on chain.
            burn(&tx, &p.id, fee)?;
            let mut results = Vec::new();
            for v in verdicts {
                let n = v.sector;
                let error = match (v.error.clone(), kind, store::sector(&tx, n)?) {
                    (Some(e), _, _) => Some(e),
                    (None, MsgKind::PreCommit, None) => {
                        store::precommit(&tx, n, p.lands, &v.comm_r)?;
                        pay(&tx, n, &v, true)?;
                        None
                    }
                    (None, MsgKind::PreCommit, Some(_)) => {
                        Some(format!("sector {n} is already precommitted"))
                    }
                    (None, MsgKind::ProveCommit, None) if v.non_interactive => {
                        store::precommit(&tx, n, p.lands, &v.comm_r)?;
                        store::prove(&tx, n)?;
                        pay(&tx, n, &v, false)?;
                        None
                    }
                    (None, MsgKind::ProveCommit, Some(on)) if v.non_interactive => {
                        Some(format!("sector {n} is already {}", on.state))
                    }
                    (None, MsgKind::ProveCommit, Some(on))
                        if on.state == OnChainState::Precommitted =>
                    {
                        store::prove(&tx, n)?;
                        pay(&tx, n, &v, false)?;
                        None
                    }
                    (None, MsgKind::ProveCommit, Some(on)) if on.state == OnChainState::Expired => {
                        Some(format!("sector {n}'s precommit expired unproven"))
                    }
                    (None, MsgKind::ProveCommit, Some(on)) => {
                        Some(format!("sector {n} is already {}", on.state))
                    }
                    (None, MsgKind::ProveCommit, None) => {
                        Some(format!("sector {n} is not precommitted"))
                    }
                    (None, MsgKind::ReplicaUpdate, Some(on))
                        if on.state == OnChainState::Proving =>
                    {
                        store::update(&tx, n, &v.comm_r)?;
                        None
                    }
                    (None, MsgKind::ReplicaUpdate, Some(on)) => Some(format!(
                        "sector {n} is {}: only a proving CC sector can be updated",
                        on.state
                    )),
                    (None, MsgKind::ReplicaUpdate, None) => {
                        Some(format!("sector {n} is not on chain"))
                    }
                };
                results.push((n, error));
            }
            let receipt = Receipt {
                cid: message_cid(&p.id),
                epoch: p.lands,
                results,
            };
            store::record_message(&tx, &p.id, &p.kind, &receipt_json(&receipt), p.lands)?;
            store::remove_pending(&tx, &p.id)?;
        }
        expire_due(&tx, head)?;
        tx.commit()?;
        Ok(())
    }

    /// Messages pushed and not landed yet.
    pub fn in_flight(&self) -> Result<u64> {
        store::pending_count(&self.conn)
    }

    /// The sector's prices and its share of the message's value, as the Lotus adapter
    /// sends them: a precommit carries the deposit, a commit the pledge less the deposit the
    /// precommit locked, an NI commit the whole pledge, an update nothing.
    fn value_of(
        &self,
        conn: &Connection,
        kind: MsgKind,
        ni: bool,
        n: u64,
        doc: &Value,
    ) -> Result<(Option<(u128, u128)>, u128)> {
        if kind == MsgKind::ReplicaUpdate {
            return Ok((None, 0));
        }
        let proof = SectorDoc::from_value(doc.clone(), "message")?.seal_proof()?;
        let c = super::funds::sim_costs(proof);
        let pay = match kind {
            MsgKind::PreCommit => c.deposit,
            _ if ni => c.pledge,
            _ => c.pledge.saturating_sub(store::locked(conn, n)?.deposit),
        };
        Ok((Some((c.deposit, c.pledge)), pay))
    }

    /// The wallet, what messages in flight will take from it, and what the miner has locked.
    pub fn funds(&self) -> Result<SimFunds> {
        self.land_due()?;
        Ok(SimFunds {
            wallet: store::wallet(&self.conn)?,
            promised: promised(&self.conn)?,
            locked: store::locked_total(&self.conn)?,
            gas_burnt: store::burnt(&self.conn, store::Burnt::Gas)?,
            deposits_burnt: store::burnt(&self.conn, store::Burnt::Deposits)?,
        })
    }

    /// Adds `atto` to the wallet (a faucet: the simulated chain's only source of FIL) and
    /// returns the new balance.
    pub fn fund(&self, atto: u128) -> Result<u128> {
        let tx = store::begin(&self.conn)?;
        let w = store::wallet(&tx)?
            .checked_add(atto)
            .context("the wallet would hold more attoFIL than fit in 128 bits")?;
        store::set_wallet(&tx, w)?;
        tx.commit()?;
        Ok(w)
    }
}

/// What the pending messages will take from the wallet when they land.
fn promised(conn: &Connection) -> Result<u128> {
    let mut sum = 0u128;
    for p in store::pending_due(conn, i64::MAX)? {
        let PendingBody { verdicts, fee } = PendingBody::parse(&p)?;
        sum += verdicts.iter().map(|v| v.pay).sum::<u128>() + fee;
    }
    Ok(sum)
}

/// A landed message's gas: taken from the wallet and counted as burnt.
fn burn(conn: &Connection, id: &str, fee: u128) -> Result<()> {
    let wallet = store::wallet(conn)?;
    let left = wallet.checked_sub(fee).with_context(|| {
        format!(
            "chain.db: the wallet ({wallet} attoFIL) cannot pay message {id}'s gas ({fee} attoFIL)"
        )
    })?;
    store::set_wallet(conn, left)?;
    store::add_burnt(conn, store::Burnt::Gas, fee)
}

/// Precommits not proven by `epoch` (more than [`MAX_PROVE_COMMIT_DURATION`] epochs old)
/// expire, as the actor's cron expires them: the deposit is burnt, the precommit is gone,
/// and the number stays allocated.
fn expire_due(conn: &Connection, epoch: i64) -> Result<()> {
    for n in store::precommitted_before(conn, epoch - MAX_PROVE_COMMIT_DURATION)? {
        let locked = store::locked(conn, n)?;
        store::expire(conn, n)?;
        store::set_locked(
            conn,
            n,
            store::Locked {
                deposit: 0,
                ..locked
            },
        )?;
        store::add_burnt(conn, store::Burnt::Deposits, locked.deposit)?;
    }
    Ok(())
}

/// A sector's part of a message landed: the wallet pays its share of the value, and the
/// sector locks its deposit (`precommit`) or its pledge (a prove-commit, which frees the
/// deposit).
fn pay(conn: &Connection, n: u64, v: &Verdict, precommit: bool) -> Result<()> {
    let Some((deposit, pledge)) = v.costs else {
        return Ok(());
    };
    let wallet = store::wallet(conn)?;
    let left = wallet.checked_sub(v.pay).with_context(|| {
        format!(
            "chain.db: the wallet ({wallet} attoFIL) cannot pay sector {n}'s {} attoFIL",
            v.pay
        )
    })?;
    store::set_wallet(conn, left)?;
    let locked = if precommit {
        store::Locked { deposit, pledge: 0 }
    } else {
        store::Locked { deposit: 0, pledge }
    };
    store::set_locked(conn, n, locked)
}

/// An error of this machine, not of the message: the message is not sent.
#[derive(Debug)]
struct Local(String);

impl std::fmt::Display for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Local {}

fn message_cid(id: &str) -> String {
    let digest: [u8; 32] = Sha256::digest(id.as_bytes()).into();
    format!("bafysim{}", &hex::encode(&digest)[..24])
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

    /// 10 FIL: far more than the test sectors cost.
    const WALLET: u128 = 10 * crate::filecoin::token::ATTO_PER_FIL;

    fn sim(dir: &Path, secret: &str) -> SimChain {
        SimChain::open(&dir.join(format!("{secret}.db")), 0.01, 150, secret, WALLET).unwrap()
    }

    #[test]
    fn randomness_is_deterministic_per_miner_and_unmasked() {
        let dir = tempfile::tempdir().unwrap();
        let c = sim(dir.path(), "s");
        let r = |d, e, m| c.randomness(d, e, m).unwrap();
        assert_eq!(r(Domain::Ticket, 5, 1000), r(Domain::Ticket, 5, 1000));
        assert_ne!(r(Domain::Ticket, 5, 1000), r(Domain::Seed, 5, 1000));
        assert_ne!(r(Domain::Ticket, 5, 1000), r(Domain::Ticket, 5, 1001));
        assert_ne!(
            r(Domain::Seed, 5, 1000),
            sim(dir.path(), "t")
                .randomness(Domain::Seed, 5, 1000)
                .unwrap()
        );
        // The chain does not mask seal randomness: the top bits of byte 31 are used.
        assert!((0..64).any(|e| r(Domain::Ticket, e, 1000)[31] & 0xc0 != 0));
        // Independent maths: SHA-256 of the documented preimage.
        let mut h = Sha256::new();
        h.update(b"sealkit-simchains");
        h.update([Domain::Seed as u8]);
        h.update(7i64.to_be_bytes());
        h.update(1000u64.to_be_bytes());
        assert_eq!(r(Domain::Seed, 7, 1000), <[u8; 32]>::from(h.finalize()));
    }

    /// Looks `id` up until it has landed (a message lands an epoch after it is sent).
    fn landed(c: &SimChain, id: &str) -> Receipt {
        let t = std::time::Instant::now();
        loop {
            if let Some(r) = c.receipt(id).unwrap() {
                return r;
            }
            assert!(t.elapsed().as_secs() < 10, "{id} never landed");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn a_message_lands_an_epoch_after_it_is_pushed_with_its_effects() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.db");
        // An hour-long epoch: the head does not move during the first part.
        let c = SimChain::open(&path, 3600.0, 150, "s", WALLET).unwrap();
        let head = c.head().unwrap();
        let ticket = crate::hex::encode(&c.randomness(Domain::Ticket, head, 1000).unwrap());
        let doc = serde_json::json!({"seal_proof": "StackedDrg2KiBV1_1", "miner": 1000,
            "sector": 7, "ticket": ticket, "ticket_epoch": head, "comm_r": "00".repeat(32)});
        let msg = Message {
            id: "m".into(),
            kind: MsgKind::PreCommit,
            aggregate: false,
            aggregate_proof: None,
            quotes: None,
            sectors: vec![(7, doc)],
        };
        let cid = c.send(&msg).unwrap();
        assert_eq!(
            c.receipt("m").unwrap(),
            None,
            "landed in the epoch it was sent"
        );
        assert!(!c.sector_allocated(1000, 7).unwrap());
        assert_eq!(c.send(&msg).unwrap(), cid, "a re-send is the same message");
        assert_eq!(c.in_flight().unwrap(), 1);
        drop(c);
        // The same chain with short epochs: its head is far past the landing epoch now.
        let c = SimChain::open(&path, 0.001, 150, "s", WALLET).unwrap();
        let r = c.receipt("m").unwrap().expect("landed");
        assert_eq!(
            (r.cid.as_str(), r.epoch),
            (cid.as_str(), head + LANDING_DELAY)
        );
        assert_eq!(r.results, vec![(7, None)]);
        assert_eq!(c.in_flight().unwrap(), 0);
        assert!(c.sector_allocated(1000, 7).unwrap());
        let on = store::sector(&c.conn, 7).unwrap().unwrap();
        assert_eq!(on.precommit_epoch, head + LANDING_DELAY);
    }

    #[test]
    fn send_is_idempotent_and_landing_is_learned_by_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let c = sim(dir.path(), "s");
        // A message with an unusable document lands with the sector rejected, once.
        let msg = Message {
            id: "b1".into(),
            kind: MsgKind::PreCommit,
            aggregate: false,
            aggregate_proof: None,
            quotes: None,
            sectors: vec![(1, serde_json::json!({"sector": 1}))],
        };
        assert_eq!(c.receipt("b1").unwrap(), None);
        let cid = c.send(&msg).unwrap();
        let r1 = landed(&c, "b1");
        assert_eq!(r1.cid, cid);
        assert!(r1.results[0].1.is_some());
        assert_eq!(c.send(&msg).unwrap(), cid);
        assert_eq!(c.receipt("b1").unwrap(), Some(r1));
        assert_eq!(c.receipt("b2").unwrap(), None);
        assert!(!c.sector_allocated(1000, 1).unwrap());
    }

    #[test]
    fn a_precommit_lands_whole_and_allocates_its_sectors() {
        let dir = tempfile::tempdir().unwrap();
        let c = sim(dir.path(), "s");
        let head = c.head().unwrap();
        let ticket = crate::hex::encode(&c.randomness(Domain::Ticket, head, 1000).unwrap());
        let good = |n: u64| {
            serde_json::json!({"seal_proof": "StackedDrg2KiBV1_1", "miner": 1000, "sector": n,
                "ticket": ticket, "ticket_epoch": head, "comm_r": "00".repeat(32)})
        };
        let msg = Message {
            id: "p1".into(),
            kind: MsgKind::PreCommit,
            aggregate: false,
            aggregate_proof: None,
            quotes: None,
            sectors: vec![(1, good(1)), (2, good(2))],
        };
        c.send(&msg).unwrap();
        let r = landed(&c, "p1");
        assert_eq!(r.results, vec![(1, None), (2, None)]);
        assert!(c.sector_allocated(1000, 1).unwrap() && c.sector_allocated(1000, 2).unwrap());
        // A second message for sector 1 is rejected by the actor's rule.
        let again = Message {
            id: "p2".into(),
            sectors: vec![(1, good(1))],
            ..msg
        };
        c.send(&again).unwrap();
        let r = landed(&c, "p2");
        assert!(r.results[0]
            .1
            .as_deref()
            .unwrap()
            .contains("already precommitted"));
    }

    /// An aggregated prove-commit is taken whole or refused whole before anything is sent:
    /// a count outside the actor's bounds, one sector the actor would drop, sectors out of
    /// the aggregate's order. (A valid aggregate lands: tests/lotus_chain.rs and the
    /// scheduler's aggregate test run it end to end.)
    #[test]
    fn an_aggregated_commit_is_refused_whole_when_one_sector_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let c = SimChain::open(&dir.path().join("chain.db"), 0.001, 1, "s", WALLET).unwrap();
        let comm_r = "11".repeat(32);
        for n in 1..=4 {
            store::precommit(&c.conn, n, 0, &comm_r).unwrap();
        }
        while c.head().unwrap() < 2 {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let seed = crate::hex::encode(&c.randomness(Domain::Seed, 1, 1000).unwrap());
        let doc = |n: u64, seed_epoch: u64| {
            serde_json::json!({"seal_proof": "StackedDrg2KiBV1_1", "miner": 1000, "sector": n,
                "comm_r": comm_r, "comm_d": "22".repeat(32), "ticket": "33".repeat(32),
                "ticket_epoch": 0, "seed": seed, "seed_epoch": seed_epoch,
                "proof": "44".repeat(192)})
        };
        let msg = |id: &str, sectors: Vec<(u64, Value)>| Message {
            id: id.into(),
            kind: MsgKind::ProveCommit,
            aggregate: true,
            aggregate_proof: Some("55".repeat(64)),
            quotes: None,
            sectors,
        };
        let refused = |m: &Message| {
            let e = c.send(m).unwrap_err();
            assert!(e.is::<Refused>(), "{e:#}");
            assert_eq!(c.in_flight().unwrap(), 0, "nothing of it was sent");
            format!("{e:#}")
        };
        let three = msg("a3", (1..=3).map(|n| (n, doc(n, 1))).collect());
        assert!(refused(&three).contains("an aggregate of 3 sectors: the actor takes 4 to 819"));
        // Sector 3's seed is not from its precommit epoch + the delay.
        let bad_seed = msg(
            "a4",
            (1..=4)
                .map(|n| (n, doc(n, if n == 3 { 2 } else { 1 })))
                .collect(),
        );
        let e = refused(&bad_seed);
        assert!(e.contains("sector 3 of the aggregate: seed epoch 2"), "{e}");
        // Sector 9 was never precommitted.
        let stranger = msg(
            "a5",
            [1, 2, 3, 9].into_iter().map(|n| (n, doc(n, 1))).collect(),
        );
        assert!(
            refused(&stranger).contains("sector 9 of the aggregate: sector 9 is not precommitted")
        );
        let shuffled = msg(
            "a6",
            [2, 1, 3, 4].into_iter().map(|n| (n, doc(n, 1))).collect(),
        );
        assert!(refused(&shuffled).contains("out of order: sectors [2, 1, 3, 4]"));
        // Nothing changed on chain.
        for n in 1..=4 {
            assert_eq!(
                store::sector(&c.conn, n).unwrap().unwrap().state,
                OnChainState::Precommitted
            );
        }
    }

    /// ProveCommitSectorsNI's rules on the simulated chain: no precommit (a number already
    /// on chain is refused), the chain's ticket at most 180 days old, the seed [1; 32], and
    /// never a proof outside an aggregate.
    #[test]
    fn an_ni_commit_needs_a_free_number_a_fresh_ticket_and_an_aggregate() {
        let dir = tempfile::tempdir().unwrap();
        let c = SimChain::open(&dir.path().join("chain.db"), 3600.0, 1, "s", WALLET).unwrap();
        let head = c.head().unwrap();
        let ticket = |e: i64| crate::hex::encode(&c.randomness(Domain::Ticket, e, 1000).unwrap());
        let doc = |n: u64, ticket: String, seed: [u8; 32]| {
            serde_json::json!({"seal_proof": "StackedDrg2KiBV1_2_Feat_NonInteractivePoRep",
                "miner": 1000, "sector": n, "comm_r": "11".repeat(32), "comm_d": "22".repeat(32),
                "ticket": ticket, "ticket_epoch": head, "seed": crate::hex::encode(&seed),
                "circuit_proofs": "44".repeat(13 * 192)})
        };
        assert!(non_interactive(&doc(1, ticket(head), NI_SEED)));
        assert!(!non_interactive(
            &serde_json::json!({"seal_proof": "StackedDrg2KiBV1_1"})
        ));
        let msg = |id: &str, aggregate: bool, sectors: Vec<(u64, Value)>| Message {
            id: id.into(),
            kind: MsgKind::ProveCommit,
            aggregate,
            aggregate_proof: aggregate.then(|| "55".repeat(64)),
            quotes: None,
            sectors,
        };
        let refused = |m: &Message| {
            let e = c.send(m).unwrap_err();
            assert!(e.is::<Refused>(), "{e:#}");
            format!("{e:#}")
        };
        store::precommit(&c.conn, 7, 0, &"11".repeat(32)).unwrap();
        let taken = msg("n1", true, vec![(7, doc(7, ticket(head), NI_SEED))]);
        assert!(
            refused(&taken).contains("sector 7 of the aggregate: sector 7 is already precommitted")
        );
        let foreign = msg("n2", true, vec![(1, doc(1, "66".repeat(32), NI_SEED))]);
        assert!(refused(&foreign).contains("ticket is not the chain's randomness"));
        let seeded = msg("n3", true, vec![(1, doc(1, ticket(head), [2; 32]))]);
        assert!(refused(&seeded).contains("the seed [1; 32]"));
        let mixed = msg(
            "n4",
            true,
            vec![
                (1, doc(1, ticket(head), NI_SEED)),
                (
                    2,
                    serde_json::json!({"seal_proof": "StackedDrg2KiBV1_1", "sector": 2}),
                ),
            ],
        );
        assert!(refused(&mixed).contains("NI-PoRep and interactive sectors in one aggregate"));
        // Without an aggregate it is sent and each sector is rejected where it lands.
        let plain = msg("n5", false, vec![(1, doc(1, ticket(head), NI_SEED))]);
        c.send(&plain).unwrap();
        drop(c);
        let c = SimChain::open(&dir.path().join("chain.db"), 0.001, 1, "s", WALLET).unwrap();
        let r = c.receipt("n5").unwrap().expect("landed");
        assert!(
            r.results[0]
                .1
                .as_deref()
                .unwrap()
                .contains("only in an aggregate"),
            "{r:?}"
        );
        assert!(!c.sector_allocated(1000, 1).unwrap());
    }

    /// A precommit not proven within MAX_PROVE_COMMIT_DURATION epochs expires as the
    /// actor's cron expires it: its deposit is burnt (not returned to the wallet), the
    /// number stays allocated, and a prove-commit for it is rejected; a younger precommit
    /// keeps its deposit locked.
    #[test]
    fn an_unproven_precommit_expires_and_its_deposit_is_burnt() {
        let dir = tempfile::tempdir().unwrap();
        let c = sim(dir.path(), "s");
        let head = c.head().unwrap();
        let comm_r = "11".repeat(32);
        store::precommit(&c.conn, 5, head - MAX_PROVE_COMMIT_DURATION - 1, &comm_r).unwrap();
        store::precommit(&c.conn, 6, head, &comm_r).unwrap();
        for (n, deposit) in [(5, 1000), (6, 7)] {
            let l = store::Locked { deposit, pledge: 0 };
            store::set_locked(&c.conn, n, l).unwrap();
        }
        let f = c.funds().unwrap();
        assert_eq!((f.deposits_burnt, f.wallet), (1000, WALLET));
        assert_eq!(
            f.locked,
            store::Locked {
                deposit: 7,
                pledge: 0
            }
        );
        let state = |n| store::sector(&c.conn, n).unwrap().unwrap().state;
        assert_eq!(state(5), OnChainState::Expired);
        assert_eq!(state(6), OnChainState::Precommitted);
        assert!(c.sector_allocated(1000, 5).unwrap());
        let doc = serde_json::json!({"seal_proof": "StackedDrg2KiBV1_1", "miner": 1000,
            "sector": 5, "comm_r": comm_r});
        c.send(&Message {
            id: "late".into(),
            kind: MsgKind::ProveCommit,
            aggregate: false,
            aggregate_proof: None,
            quotes: None,
            sectors: vec![(5, doc)],
        })
        .unwrap();
        let why = landed(&c, "late").results[0].1.clone().unwrap();
        assert!(
            why.contains("precommit (epoch") && why.contains("expired unproven"),
            "{why}"
        );
        assert_eq!(state(5), OnChainState::Expired);
        assert_eq!(c.funds().unwrap().deposits_burnt, 1000);
    }

    #[test]
    fn an_update_needs_a_proving_sector_and_its_comm_r() {
        let dir = tempfile::tempdir().unwrap();
        let c = sim(dir.path(), "s");
        let doc = |n: u64, comm_r: &str| {
            serde_json::json!({"seal_proof": "StackedDrg2KiBV1_1", "miner": 1000, "sector": n,
                "comm_r": comm_r.repeat(32), "update": {"comm_r": "55".repeat(32)}})
        };
        let send = |id: &str, n: u64, comm_r: &str| {
            c.send(&Message {
                id: id.into(),
                kind: MsgKind::ReplicaUpdate,
                aggregate: false,
                aggregate_proof: None,
                quotes: None,
                sectors: vec![(n, doc(n, comm_r))],
            })
        };
        let rejected = |id: &str| landed(&c, id).results[0].1.clone().unwrap();
        send("u1", 9, "11").unwrap();
        assert!(rejected("u1").contains("not on chain"));
        store::precommit(&c.conn, 1, 5, &"11".repeat(32)).unwrap();
        send("u2", 1, "11").unwrap();
        assert!(rejected("u2").contains("is precommitted"));
        store::prove(&c.conn, 1).unwrap();
        send("u3", 1, "22").unwrap();
        assert!(rejected("u3").contains("differs from the sector's on-chain comm_r"));
        // The right sector and comm_r: the proof is checked, and a document without one
        // cannot be checked here, so it is not sent (never a rejected sector).
        let e = send("u4", 1, "11").unwrap_err();
        assert!(format!("{e:#}").contains("cannot be checked here"), "{e:#}");
        assert_eq!(c.receipt("u4").unwrap(), None);
        // Once updated, no second update.
        store::update(&c.conn, 1, &"55".repeat(32)).unwrap();
        let on = store::sector(&c.conn, 1).unwrap().unwrap();
        assert_eq!(
            (on.state, on.comm_r.as_str()),
            (OnChainState::Updated, "55".repeat(32).as_str())
        );
        send("u5", 1, "55").unwrap();
        assert!(rejected("u5").contains("is updated: only a proving CC sector"));
    }
}
