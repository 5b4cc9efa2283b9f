//! PreCommit and Commit batching with Lotus's rules and defaults, publishing exactly once
//! (docs/lotus-scheduler.md#batcher-behaviour, docs/chain.md#timing-constants).
//!
//! A batch is sent when it is full (MaxPreCommitBatch / MaxCommitBatch), when its oldest
//! sector has waited the batch wait, or when the earliest sector deadline minus the slack has
//! arrived (precommit: ticket epoch + MaxPreCommitRandomnessLookback; commit: precommit epoch
//! + MaxProveCommitDuration). `--now` sends everything pending, as `lotus-miner sectors
//! batching … --publish-now` does.
//!
//! Exactly once, through an outbox:
//! 1. one transaction claims the sectors into a batch row and records the whole message
//!    (id and content) in it, state `recorded`;
//! 2. the recorded message is handed to the chain ([`Chain::send`], idempotent by id) and
//!    the row becomes `sent` with the chain's reference;
//! 3. whether it landed is learned only by asking the chain about that id
//!    ([`Chain::lookup`]); one transaction then records the receipt and moves the sectors.
//!
//! A sent message that can never land (another message took its nonce) leaves its batch
//! `dropped` and its sectors recorded in a new batch, in one transaction.
//!
//! A crash anywhere leaves a `recorded` or `sent` row that the next publisher finishes the
//! same way, with the same content. One publisher at a time holds the [`Publisher`] lock (a
//! flock, released by the kernel when its holder dies), so the daemon and a cron `batch
//! publish` never hand the chain the same batch twice at once, and the claim in (1) is one
//! transaction, so no sector is in two batches. A message that cannot be sent for a reason
//! of this machine (the verifier's parameters are missing here) stays recorded and is
//! retried; it never turns valid proofs into failed sectors.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

use super::chain::{
    self, Chain, Message, MsgKind, Receipt, Refused, MAX_PRECOMMIT_RANDOMNESS_LOOKBACK,
    MAX_PROVE_COMMIT_DURATION,
};
use super::config::{Batching, Config};
use super::db::{self, batches, now, sectors, Db, SectorRow};
use super::gas::Quotes;
use super::state::SectorState;
use crate::filecoin::token::fil_text;
use crate::sector::document::SectorDoc;

/// The right to send batches: one process at a time.
pub struct Publisher {
    _lock: Flock<File>,
}

impl Publisher {
    fn open(lock: &Path) -> Result<File> {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock)
            .with_context(|| format!("cannot open the publisher lock {}", lock.display()))
    }

    /// The lock if nobody else publishes now (the daemon skips publishing this pass).
    pub fn try_acquire(lock: &Path) -> Result<Option<Publisher>> {
        match Flock::lock(Self::open(lock)?, FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(Some(Publisher { _lock: l })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(anyhow::anyhow!("cannot lock {}: {e}", lock.display())),
        }
    }

    /// The lock, waiting for another publisher to finish (a cron `batch publish`).
    pub fn acquire(lock: &Path) -> Result<Publisher> {
        Flock::lock(Self::open(lock)?, FlockArg::LockExclusive)
            .map(|l| Publisher { _lock: l })
            .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", lock.display()))
    }
}

/// Where a batch row stands in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchState {
    /// Claimed and its message recorded; not yet handed to the chain.
    Recorded,
    /// Handed to the chain; landing not yet seen.
    Sent,
    /// Its receipt is recorded and its sectors moved on.
    Landed,
    /// The chain refused the message whole before anything was sent (the actor would
    /// reject it); its sectors went on in two smaller batches, or a single one failed.
    Refused,
    /// Sent, but another message took its nonce, so it can never land; its sectors went on
    /// in a new batch ([`chain::Displaced`]).
    Dropped,
}

impl BatchState {
    pub fn name(self) -> &'static str {
        match self {
            BatchState::Recorded => "recorded",
            BatchState::Sent => "sent",
            BatchState::Landed => "landed",
            BatchState::Refused => "refused",
            BatchState::Dropped => "dropped",
        }
    }

    /// Every state, in the order a batch can go through them.
    pub const ALL: [BatchState; 5] = [
        BatchState::Recorded,
        BatchState::Sent,
        BatchState::Landed,
        BatchState::Refused,
        BatchState::Dropped,
    ];

    /// Whether the batch is done with: nothing of it is left to send or look up.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            BatchState::Landed | BatchState::Refused | BatchState::Dropped
        )
    }

    pub fn parse(s: &str) -> Option<BatchState> {
        match s {
            // `sending`: a row written before the outbox, claimed but not known to be sent.
            "recorded" | "sending" => Some(BatchState::Recorded),
            "sent" => Some(BatchState::Sent),
            "landed" => Some(BatchState::Landed),
            "refused" => Some(BatchState::Refused),
            "dropped" => Some(BatchState::Dropped),
            _ => None,
        }
    }
}

/// What became of one batch in this call.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Landed(Receipt),
    /// Sent, not landed yet: a later pass looks it up again.
    Pending,
    /// Not sent for a reason of this machine; it stays recorded and is retried.
    NotSent(String),
    /// Refused by the chain whole (nothing sent): split in two batches that later passes
    /// send, or, for one sector, that sector failed.
    Refused(String),
    /// Its aggregate is being made beside the daemon's passes ([`Aggregation::Background`]);
    /// a later pass sends it.
    Aggregating,
    /// Sent, but it can never land (another message took its nonce): its sectors are
    /// recorded in a new batch, named here, that a later pass sends.
    Dropped {
        resent_as: String,
        why: String,
    },
}

/// Where a publisher makes the SnarkPack aggregates of its commit batches.
#[derive(Clone, Copy)]
pub enum Aggregation<'a> {
    /// In the publishing call: a cron `batch publish`, which exits when it is done.
    Inline,
    /// On a thread of its own, so the daemon's passes go on while it proves.
    Background(&'a super::aggregator::Aggregator),
}

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
            // No chain deadline is modelled for an update: full or waited long enough.
            MsgKind::ReplicaUpdate => Rules {
                max: b.max_update_batch,
                wait: Config::secs(&b.update_batch_wait),
                slack: 0.0,
            },
        }
    }
}

/// The state a sector waits in for a batch of `kind`, and the one it is in once claimed.
pub fn pending_state(kind: MsgKind) -> (SectorState, SectorState) {
    match kind {
        MsgKind::PreCommit => (SectorState::PreCommitBatch, SectorState::PreCommitBatchWait),
        MsgKind::ProveCommit => (SectorState::CommitBatch, SectorState::CommitBatchWait),
        MsgKind::ReplicaUpdate => (
            SectorState::SubmitReplicaUpdate,
            SectorState::ReplicaUpdateWait,
        ),
    }
}

/// The wall-clock deadline of a pending sector.
pub fn deadline(kind: MsgKind, s: &SectorRow, head: i64, epoch_secs: f64, at: f64) -> f64 {
    let cutoff = match kind {
        MsgKind::PreCommit => s.ticket_epoch.unwrap_or(head) + MAX_PRECOMMIT_RANDOMNESS_LOOKBACK,
        // NI-PoRep: no precommit; the ticket must be at most 180 days old.
        MsgKind::ProveCommit if chain::non_interactive(&s.doc) => {
            s.ticket_epoch.unwrap_or(head) + chain::MAX_NI_TICKET_LOOKBACK
        }
        MsgKind::ProveCommit => s.precommit_epoch.unwrap_or(head) + MAX_PROVE_COMMIT_DURATION,
        MsgKind::ReplicaUpdate => return f64::INFINITY,
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

/// Claims and sends the pending batch of `kind` if it is due (or `force`).
pub fn publish(
    _p: &Publisher,
    db: &mut Db,
    chain: &dyn Chain,
    cfg: &Config,
    agg: Aggregation,
    kind: MsgKind,
    force: bool,
) -> Result<Vec<(String, Outcome)>> {
    let (pending_st, wait_st) = pending_state(kind);
    let rules = Rules::of(&cfg.batching, kind);
    let head = chain.head()?;
    let mut sent = Vec::new();
    loop {
        let claimed = db.tx(|tx| {
            let pending = sectors::in_state(tx, pending_st)?;
            let why = if force && !pending.is_empty() {
                Some("published now by the operator".to_string())
            } else {
                due(kind, &pending, rules, head, chain.epoch_secs(), now())
            };
            let Some(why) = why else { return Ok(None) };
            // One message holds one kind of proof: NI-PoRep sectors go on chain in their own
            // method (ProveCommitSectorsNI), at most 65 to an aggregate.
            let ni = chain::non_interactive(&pending[0].doc);
            let most = if ni {
                rules.max.min(*crate::snark::aggregate::NI_SECTORS.end())
            } else {
                rules.max
            };
            let take: Vec<&SectorRow> = pending
                .iter()
                .filter(|s| chain::non_interactive(&s.doc) == ni)
                .take(most)
                .collect();
            let id = format!("{}-{:.0}-{}", kind.name(), now() * 1000.0, take[0].number);
            let msg = Message {
                id: id.clone(),
                kind,
                aggregate: aggregates(cfg, kind, take.len(), ni),
                aggregate_proof: None,
                quotes: None,
                sectors: take.iter().map(|s| (s.number, s.doc.clone())).collect(),
            };
            let numbers: Vec<u64> = take.iter().map(|s| s.number).collect();
            batches::record(tx, &id, kind, &serde_json::to_string(&msg)?, &numbers)?;
            for s in &take {
                db::set_state(tx, s.number, wait_st, &format!("in batch {id} ({why})"))?;
            }
            db::event(
                tx,
                None,
                "batch",
                &format!("{id}: {} sectors recorded, {why}", take.len()),
            )?;
            Ok(Some(id))
        })?;
        let Some(id) = claimed else { break };
        let outcome = deliver(db, chain, cfg, agg, &id)?;
        let stop = matches!(outcome, Outcome::NotSent(_) | Outcome::Refused(_));
        sent.push((id, outcome));
        if stop {
            break; // the next claim would fail the same way
        }
    }
    Ok(sent)
}

/// Finishes every batch a crash or a local failure left recorded or sent: asks the chain,
/// sends only what did not land.
pub fn recover(
    _p: &Publisher,
    db: &mut Db,
    chain: &dyn Chain,
    cfg: &Config,
    agg: Aggregation,
) -> Result<Vec<(String, Outcome)>> {
    let open: Vec<String> = db
        .batches()?
        .into_iter()
        .filter(|b| !b.state.is_final())
        .map(|b| b.id)
        .collect();
    let mut out = Vec::new();
    for id in open {
        let o = deliver(db, chain, cfg, agg, &id)?;
        out.push((id, o));
    }
    Ok(out)
}

/// The recorded message of batch `id` (rebuilt from the sectors for a row older than the
/// outbox, which recorded no content).
fn recorded_message(db: &Db, cfg: &Config, id: &str) -> Result<Message> {
    if let Some(b) = batches::body(&db.conn, id)? {
        return parse_message(id, &b);
    }
    let batch = db
        .batches()?
        .into_iter()
        .find(|b| b.id == id)
        .with_context(|| format!("no batch {id}"))?;
    let kind = batch.kind;
    let mut sectors = Vec::new();
    for n in &batch.sectors {
        let s = db
            .sector(*n)?
            .with_context(|| format!("batch {id}: no sector {n}"))?;
        sectors.push((*n, s.doc));
    }
    let ni = sectors
        .first()
        .is_some_and(|(_, d)| chain::non_interactive(d));
    Ok(Message {
        id: id.to_string(),
        kind,
        aggregate: aggregates(cfg, kind, sectors.len(), ni),
        aggregate_proof: None,
        quotes: None,
        sectors,
    })
}

fn parse_message(id: &str, body: &str) -> Result<Message> {
    serde_json::from_str(body)
        .with_context(|| format!("batches row {id}: the recorded message is not valid"))
}

/// Steps (2) and (3) for one recorded batch.
fn deliver(
    db: &mut Db,
    chain: &dyn Chain,
    cfg: &Config,
    agg: Aggregation,
    id: &str,
) -> Result<Outcome> {
    let mut msg = recorded_message(db, cfg, id)?;
    let sent = batches::sent_as(&db.conn, id)?;
    let receipt = match looked_up(db, chain, &msg, sent.as_deref())? {
        Ok(Some(r)) => r,
        Err(dropped) => return Ok(dropped),
        // Handed over already: it lands when it lands; pushing it again changes nothing.
        Ok(None) if sent.is_some() => return Ok(Outcome::Pending),
        Ok(None) => {
            msg = match (agg, needs_aggregate(&msg)) {
                (Aggregation::Background(jobs), true) => {
                    let cfg = cfg.clone();
                    let job_id = id.to_string();
                    jobs.start(id, move |db| aggregated(db, &cfg, &job_id, msg).map(drop))?;
                    return Ok(Outcome::Aggregating);
                }
                _ => match aggregated(db, cfg, id, msg)? {
                    Ok(m) => m,
                    Err(o) => return Ok(o),
                },
            };
            msg = match priced(db, chain, msg)? {
                Ok(m) => m,
                Err(e) => return not_sent(db, id, e),
            };
            let cid = match chain.send(&msg) {
                Ok(c) => c,
                Err(e) if e.is::<Refused>() => {
                    let err = format!("{e:#}");
                    refuse(db, cfg, &msg, &err)?;
                    return Ok(Outcome::Refused(err));
                }
                Err(e) => return not_sent(db, id, format!("{e:#}")),
            };
            db.tx(|tx| batches::mark_sent(tx, id, &cid))?;
            match looked_up(db, chain, &msg, Some(&cid))? {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(Outcome::Pending),
                Err(dropped) => return Ok(dropped),
            }
        }
    };
    land(db, cfg, &msg, &receipt)?;
    Ok(Outcome::Landed(receipt))
}

/// [`Chain::lookup`], with a message that can never land ([`chain::Displaced`]) dealt with:
/// one transaction marks its batch dropped and records its sectors, the same message
/// under a new id (so a new message UUID: a send under the old one would return the dead
/// message), as a new batch that later passes send.
fn looked_up(
    db: &mut Db,
    chain: &dyn Chain,
    msg: &Message,
    sent: Option<&str>,
) -> Result<Result<Option<Receipt>, Outcome>> {
    let e = match chain.lookup(msg, sent) {
        Ok(r) => return Ok(Ok(r)),
        Err(e) if e.is::<chain::Displaced>() => e,
        Err(e) => return Err(e),
    };
    let why = format!("{e:#}");
    let again = Message {
        id: format!("{}-r", msg.id),
        ..msg.clone()
    };
    let numbers: Vec<u64> = msg.sectors.iter().map(|(n, _)| *n).collect();
    let body = serde_json::to_string(&again)?;
    db.tx(|tx| {
        if !batches::mark_dropped(tx, &msg.id, &why)? {
            return Ok(()); // done already by another publisher
        }
        batches::record(tx, &again.id, again.kind, &body, &numbers)?;
        db::event(
            tx,
            None,
            "batch",
            &format!(
                "{} dropped, its sectors resent as {}: {why}",
                msg.id, again.id
            ),
        )
    })?;
    Ok(Err(Outcome::Dropped {
        resent_as: again.id,
        why,
    }))
}

/// The recorded message with its aggregate made and recorded where it needs one
/// ([`with_aggregate`]), or what became of the batch instead: not sent (parameters missing
/// for NI-PoRep sectors) or refused (NI-PoRep proofs that do not aggregate).
fn aggregated(
    db: &mut Db,
    cfg: &Config,
    id: &str,
    msg: Message,
) -> Result<Result<Message, Outcome>> {
    match with_aggregate(db, msg)? {
        Ok(m) => Ok(Ok(m)),
        Err(Unaggregated::Local(e)) => not_sent(db, id, e).map(Err),
        Err(Unaggregated::Invalid(e)) => {
            let err = format!("its NI-PoRep proofs do not aggregate: {e}");
            refuse(db, cfg, &recorded_message(db, cfg, id)?, &err)?;
            Ok(Err(Outcome::Refused(err)))
        }
    }
}

/// A batch not sent for a reason of this machine: it stays recorded and is retried.
fn not_sent(db: &mut Db, id: &str, err: String) -> Result<Outcome> {
    db.tx(|tx| {
        batches::set_error(tx, id, &err)?;
        db::event(
            tx,
            None,
            "batch",
            &format!("{id} not sent, kept for a retry: {err}"),
        )
    })?;
    Ok(Outcome::NotSent(err))
}

/// A message the chain refused whole: one transaction marks its batch refused and records
/// its two halves as new batches (their sectors keep waiting, now in them), or fails its
/// only sector as a landing rejection would. Bisecting finds the sectors the actor refuses
/// without holding the others back: the good ones land after a few halvings.
fn refuse(db: &mut Db, cfg: &Config, msg: &Message, err: &str) -> Result<()> {
    let retry_min = Config::secs(&cfg.sealing.retry_min);
    db.tx(|tx| {
        if !batches::mark_refused(tx, &msg.id, err)? {
            return Ok(()); // done already by another publisher
        }
        if let [(sector, _)] = msg.sectors.as_slice() {
            sectors::batch_rejected(tx, *sector, now() + retry_min, err)?;
            db::set_state(tx, *sector, failed_state(msg.kind), err)?;
            return db::event(
                tx,
                Some(*sector),
                "batch",
                &format!("{} refused: {err}", msg.id),
            );
        }
        let ni = chain::non_interactive(&msg.sectors[0].1);
        let (a, b) = msg.sectors.split_at(msg.sectors.len() / 2);
        let mut halves = Vec::new();
        for (suffix, part) in [("a", a), ("b", b)] {
            let half = Message {
                id: format!("{}-{suffix}", msg.id),
                kind: msg.kind,
                aggregate: aggregates(cfg, msg.kind, part.len(), ni),
                aggregate_proof: None,
                quotes: None,
                sectors: part.to_vec(),
            };
            let numbers: Vec<u64> = part.iter().map(|(n, _)| *n).collect();
            batches::record(
                tx,
                &half.id,
                half.kind,
                &serde_json::to_string(&half)?,
                &numbers,
            )?;
            halves.push(half.id);
        }
        db::event(
            tx,
            None,
            "batch",
            &format!(
                "{} refused, split into {}: {err}",
                msg.id,
                halves.join(" and ")
            ),
        )
    })
}

/// Whether a prove-commit batch of `n` sectors goes as one aggregate: always for NI-PoRep
/// sectors (`ni`), which the actor takes only aggregated.
fn aggregates(cfg: &Config, kind: MsgKind, n: usize, ni: bool) -> bool {
    kind == MsgKind::ProveCommit
        && (ni
            || n >= aggregate_from(&cfg.batching)
                && n <= *crate::snark::aggregate::INTERACTIVE_SECTORS.end())
}

/// The fewest sectors a prove-commit batch aggregates (Lotus's `MinCommitBatch`, never
/// below the actor's minimum).
fn aggregate_from(b: &Batching) -> usize {
    b.min_commit_batch
        .max(*crate::snark::aggregate::INTERACTIVE_SECTORS.start())
}

/// Whether a full prove-commit batch aggregates under these settings.
pub fn may_aggregate(b: &Batching) -> bool {
    b.max_commit_batch >= aggregate_from(b)
}

/// A prove-commit batch to aggregate gets its aggregate before its first send: made from
/// the sectors' proofs (the reference's SnarkPack v2 prover, verified before it is used),
/// its sectors put in ascending order (the aggregate's), and recorded in the batch's message
/// in one transaction, so every send of the batch carries the same bytes. An interactive
/// batch whose proofs cannot be aggregated (a proof that is not valid, the SnarkPack
/// parameters missing here) goes as a plain batch instead: the chain then judges each proof
/// on its own, and one bad sector does not hold the others back. NI-PoRep sectors go only
/// aggregated: without the parameters the batch waits ([`Unaggregated::Local`]); with a bad
/// proof it is split like a refused message ([`Unaggregated::Invalid`]) until the bad
/// sector stands alone and fails.
fn with_aggregate(db: &mut Db, msg: Message) -> Result<Result<Message, Unaggregated>> {
    if !needs_aggregate(&msg) {
        return Ok(Ok(msg));
    }
    let docs = msg
        .sectors
        .iter()
        .map(|(n, doc)| SectorDoc::from_value(doc.clone(), &format!("sector {n}")))
        .collect::<Result<Vec<_>>>();
    let ni = chain::non_interactive(&msg.sectors[0].1);
    if ni {
        let proof = docs.as_ref().ok().and_then(|d| d[0].seal_proof().ok());
        if let Some(Err(e)) = proof.map(|p| crate::snark::params::check_present(p, false, true)) {
            return Ok(Err(Unaggregated::Local(format!("{e:#}"))));
        }
    }
    let made = docs.and_then(|docs| crate::snark::aggregate::aggregate(&docs));
    let (out, note) = match made {
        Err(e) if ni => return Ok(Err(Unaggregated::Invalid(format!("{e:#}")))),
        Ok(agg) => {
            let mut sectors = msg.sectors.clone();
            sectors.sort_by_key(|(n, _)| *n);
            let note = format!(
                "{}: the proofs of {} sectors aggregated into {} bytes",
                msg.id,
                agg.sectors.len(),
                agg.bytes.len()
            );
            let m = Message {
                sectors,
                aggregate_proof: Some(crate::hex::encode(&agg.bytes)),
                ..msg
            };
            (m, note)
        }
        Err(e) => {
            let note = format!("{}: not aggregated ({e:#}); sent as a plain batch", msg.id);
            (
                Message {
                    aggregate: false,
                    ..msg
                },
                note,
            )
        }
    };
    record_decision(db, out, &note, |m| !needs_aggregate(m)).map(Ok)
}

/// Records `out` as its batch's message, with `note` as the batch's event, unless the
/// recorded message is already `decided`: the first decision recorded stands (another
/// publisher, or an aggregation thread, may have been first, and what it recorded may have
/// been sent already). Returns what is recorded now, which is what goes out.
fn record_decision(
    db: &mut Db,
    out: Message,
    note: &str,
    decided: impl Fn(&Message) -> bool,
) -> Result<Message> {
    let body = serde_json::to_string(&out)?;
    db.tx(|tx| {
        let done = match batches::body(tx, &out.id)? {
            Some(b) => decided(&parse_message(&out.id, &b)?),
            None => false,
        };
        if !done && batches::set_body(tx, &out.id, &body)? {
            db::event(tx, None, "batch", note)?;
        }
        Ok(())
    })?;
    match batches::body(&db.conn, &out.id)? {
        Some(b) => parse_message(&out.id, &b),
        None => Ok(out),
    }
}

/// An interactive prove-commit batch with its aggregate made goes as the cheaper of its two
/// forms ([`super::gas`]): before its first send the chain quotes the aggregate and the
/// plain batch (every proof on its own), and the choice is recorded with both quotes in one
/// transaction, so every send of the batch is the same message (the first choice recorded
/// stands). The aggregate goes unless the plain batch was quoted lower; a plain batch the
/// chain would not quote (too large for one message, refused) does not go. `Err`: the
/// aggregate could not be quoted for a reason of this machine or the network; nothing is
/// recorded and a later pass tries again. An aggregate the chain refuses is sent as it is,
/// and its refusal splits the batch.
fn priced(db: &mut Db, chain: &dyn Chain, msg: Message) -> Result<Result<Message, String>> {
    let interactive_aggregate = msg.kind == MsgKind::ProveCommit
        && msg.aggregate_proof.is_some()
        && !chain::non_interactive(&msg.sectors[0].1);
    if !interactive_aggregate || msg.quotes.is_some() {
        return Ok(Ok(msg));
    }
    let aggregate = match chain.quote(&msg) {
        Ok(q) => q,
        Err(e) if e.is::<Refused>() => return Ok(Ok(msg)),
        Err(e) => return Ok(Err(format!("the aggregate could not be quoted: {e:#}"))),
    };
    let plain_msg = Message {
        aggregate: false,
        aggregate_proof: None,
        ..msg.clone()
    };
    let plain = chain.quote(&plain_msg);
    let quotes = Quotes::of(plain.as_ref().ok().copied(), Some(aggregate));
    let plain_wins = quotes.plain_is_cheaper();
    let note = format!(
        "{}: gas quoted {} aggregated, {}; sent {}",
        msg.id,
        fil_text(aggregate.fee),
        match &plain {
            Ok(q) => format!("{} as a plain batch", fil_text(q.fee)),
            Err(e) => format!("no quote as a plain batch ({e:#})"),
        },
        if plain_wins { "plain" } else { "aggregated" }
    );
    let out = Message {
        quotes: Some(quotes),
        ..if plain_wins { plain_msg } else { msg }
    };
    record_decision(db, out, &note, |m| m.quotes.is_some()).map(Ok)
}

/// Whether `msg` is a prove-commit to aggregate whose aggregate is not made yet.
fn needs_aggregate(msg: &Message) -> bool {
    msg.kind == MsgKind::ProveCommit && msg.aggregate && msg.aggregate_proof.is_none()
}

/// Why an NI-PoRep batch has no aggregate ([`with_aggregate`]).
enum Unaggregated {
    /// A reason of this machine (parameters missing): kept recorded, retried.
    Local(String),
    /// The proofs do not aggregate into a valid proof: refused, split.
    Invalid(String),
}

/// Where a sector goes when the chain rejects it in a message of `kind`.
fn failed_state(kind: MsgKind) -> SectorState {
    match kind {
        MsgKind::PreCommit => SectorState::PreCommitFailed,
        MsgKind::ProveCommit => SectorState::CommitFailed,
        MsgKind::ReplicaUpdate => SectorState::SubmitReplicaUpdateFailed,
    }
}

/// Records a landed message's receipt and moves its sectors, once.
fn land(db: &mut Db, cfg: &Config, msg: &Message, receipt: &Receipt) -> Result<()> {
    let (id, kind) = (msg.id.as_str(), msg.kind);
    let retry_min = Config::secs(&cfg.sealing.retry_min);
    db.tx(|tx| {
        if !batches::mark_landed(tx, id, receipt.epoch, &receipt.cid)? {
            return Ok(()); // recorded already
        }
        for (sector, err) in &receipt.results {
            match (kind, err) {
                (MsgKind::PreCommit, None) => {
                    sectors::precommit_landed(tx, *sector, receipt.epoch)?;
                    // The row may be unreadable (quarantined): then its document is left as it
                    // is for the operator, never replaced by one holding only this field.
                    match sectors::get(tx, *sector)? {
                        Some(row) => {
                            let mut doc = row.doc;
                            doc["precommit_epoch"] = receipt.epoch.into();
                            db::set_doc(tx, *sector, &doc)?;
                        }
                        None => db::event(tx, Some(*sector), "batch", "precommit landed, but the sector's row is unreadable: its document was not updated")?,
                    }
                    db::set_state(tx, *sector, SectorState::WaitSeed, &format!("precommit landed at epoch {} in {}", receipt.epoch, receipt.cid))?;
                }
                (MsgKind::ProveCommit, None) => {
                    sectors::set_batch(tx, *sector, None)?;
                    db::set_state(tx, *sector, SectorState::Finalize, &format!("proof landed at epoch {} in {}", receipt.epoch, receipt.cid))?;
                }
                (MsgKind::ReplicaUpdate, None) => {
                    sectors::set_batch(tx, *sector, None)?;
                    match sectors::get(tx, *sector)? {
                        Some(row) => {
                            let mut doc = row.doc;
                            doc["update"]["landed_epoch"] = receipt.epoch.into();
                            db::set_doc(tx, *sector, &doc)?;
                        }
                        None => db::event(tx, Some(*sector), "batch", "update landed, but the sector's row is unreadable: its document was not updated")?,
                    }
                    db::set_state(tx, *sector, SectorState::FinalizeReplicaUpdate, &format!("update landed at epoch {} in {}", receipt.epoch, receipt.cid))?;
                }
                (_, Some(e)) => {
                    sectors::batch_rejected(tx, *sector, now() + retry_min, e)?;
                    db::set_state(tx, *sector, failed_state(kind), e)?;
                }
            }
        }
        db::event(tx, None, "batch", &format!("{id} landed at epoch {} as {}", receipt.epoch, receipt.cid))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn row(n: u64, entered: f64, ticket_epoch: i64) -> SectorRow {
        SectorRow {
            number: n,
            state: SectorState::PreCommitBatch,
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

    /// Proofs that do not aggregate (here: not proofs at all) make an interactive batch a
    /// plain one, recorded so in the outbox before anything is sent, its sectors untouched.
    /// Records a commit batch `commit-1` of sectors 4, 3, 2, 1 to aggregate, whose
    /// "proofs" are not proofs.
    /// Records batch `precommit-1` of sectors 1 and 2 with documents `doc`.
    fn record_precommit(db: &mut Db, doc: impl Fn(u64) -> Value) -> Message {
        let msg = Message {
            id: "precommit-1".into(),
            kind: MsgKind::PreCommit,
            aggregate: false,
            aggregate_proof: None,
            quotes: None,
            sectors: vec![(1, doc(1)), (2, doc(2))],
        };
        let body = serde_json::to_string(&msg).unwrap();
        db.tx(|tx| batches::record(tx, &msg.id, msg.kind, &body, &[1, 2]))
            .unwrap();
        msg
    }

    fn junk_commit_batch(db: &mut Db) -> Message {
        let doc = |n: u64| {
            serde_json::json!({"seal_proof": "StackedDrg2KiBV1_1", "miner": 1000, "sector": n,
                "comm_r": "11".repeat(32), "comm_d": "22".repeat(32), "ticket": "33".repeat(32),
                "seed": "44".repeat(32), "proof": "55".repeat(192)})
        };
        let msg = Message {
            id: "commit-1".into(),
            kind: MsgKind::ProveCommit,
            aggregate: true,
            aggregate_proof: None,
            quotes: None,
            sectors: [4, 3, 2, 1].into_iter().map(|n| (n, doc(n))).collect(),
        };
        let body = serde_json::to_string(&msg).unwrap();
        db.tx(|tx| batches::record(tx, &msg.id, msg.kind, &body, &[4, 3, 2, 1]))
            .unwrap();
        msg
    }

    #[test]
    fn a_batch_whose_proofs_do_not_aggregate_goes_plain_and_is_recorded_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("sched.db")).unwrap();
        let msg = junk_commit_batch(&mut db);
        let Ok(out) = with_aggregate(&mut db, msg.clone()).unwrap() else {
            panic!("an interactive batch is never held back for its aggregate");
        };
        assert_eq!(
            out,
            Message {
                aggregate: false,
                ..msg
            }
        );
        let recorded = batches::body(&db.conn, "commit-1").unwrap().unwrap();
        assert_eq!(parse_message("commit-1", &recorded).unwrap(), out);
        // NI-PoRep sectors wait for their ticket's deadline (180 days), not a precommit's.
        let t = 1_000_000.0;
        let mut ni = row(1, t, 100);
        ni.doc = serde_json::json!({"seal_proof": "StackedDrg2KiBV1_2_Feat_NonInteractivePoRep"});
        assert_eq!(
            deadline(MsgKind::ProveCommit, &ni, 100, 30.0, t),
            t + (180.0 * 2880.0) * 30.0
        );
    }

    /// A daemon pass does not wait for an aggregate: it leaves the batch recorded while a
    /// thread makes it (here it finds that the proofs do not aggregate and records a plain
    /// batch), and a later pass sends what the thread recorded.
    #[test]
    fn a_daemon_pass_leaves_the_aggregate_to_a_thread_and_a_later_pass_sends_it() {
        use crate::sched::aggregator::Aggregator;
        use crate::sched::chain::SimChain;
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("sched.db");
        let mut db = Db::open(&db_path).unwrap();
        let msg = junk_commit_batch(&mut db);
        // 1 FIL: the message's gas (it carries no value: its proofs are junk).
        let wallet = crate::filecoin::token::ATTO_PER_FIL;
        let chain = SimChain::open(&dir.path().join("chain.db"), 3600.0, 150, "s", wallet).unwrap();
        let (cfg, jobs) = (Config::default(), Aggregator::new(db_path));
        let bg = Aggregation::Background(&jobs);
        assert_eq!(
            deliver(&mut db, &chain, &cfg, bg, "commit-1").unwrap(),
            Outcome::Aggregating
        );
        let t = std::time::Instant::now();
        while jobs.running().is_some() {
            assert!(
                t.elapsed().as_secs() < 120,
                "the aggregation thread never ended"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let state = |db: &Db| db.batches().unwrap()[0].state;
        assert_eq!(state(&db), BatchState::Recorded);
        let recorded = parse_message(
            "commit-1",
            &batches::body(&db.conn, "commit-1").unwrap().unwrap(),
        )
        .unwrap();
        assert_eq!(
            recorded,
            Message {
                aggregate: false,
                ..msg
            }
        );
        // Decided: the next pass sends it (the chain then judges each sector on its own).
        assert_eq!(
            deliver(&mut db, &chain, &cfg, bg, "commit-1").unwrap(),
            Outcome::Pending
        );
        assert_eq!(state(&db), BatchState::Sent);
        assert_eq!(jobs.running(), None);
    }

    /// A precommit the wallet cannot pay is not sent: it stays recorded with the reason (the
    /// `batch_unsent` alert shows it) and goes out, the same message, once the wallet holds
    /// its deposits; when it lands the wallet has paid them and the miner has locked them.
    #[test]
    fn a_batch_the_wallet_cannot_pay_stays_recorded_until_funded() {
        use crate::sched::chain::{Domain, SimChain, SimFunds};
        use crate::sched::db::sim_chain::Locked;
        let dir = tempfile::tempdir().unwrap();
        let chain_db = dir.path().join("chain.db");
        let mut db = Db::open(&dir.path().join("sched.db")).unwrap();
        // An hour-long epoch: nothing lands until the chain is reopened below.
        let chain = SimChain::open(&chain_db, 3600.0, 150, "s", 0).unwrap();
        let head = chain.head().unwrap();
        let ticket = crate::hex::encode(&chain.randomness(Domain::Ticket, head, 1000).unwrap());
        let doc = |n: u64| {
            serde_json::json!({"seal_proof": "StackedDrg2KiBV1_1", "miner": 1000, "sector": n,
                "ticket": ticket, "ticket_epoch": head, "comm_r": "00".repeat(32)})
        };
        record_precommit(&mut db, doc);
        let cfg = Config::default();
        let batch = |db: &Db| {
            let b = db.batches().unwrap().into_iter().next().unwrap();
            (b.state, b.error)
        };
        // A 2KiB deposit: 0.04 FIL per 32 GiB, 2^-24 of it, rounded down.
        let deposit: u128 = 40_000_000_000_000_000 / (1 << 24);
        // Gas of a two-sector precommit: on the line through FIP-0100's 16.7 M gas for one
        // sector and 18.4 M for four, 16.7 M + 1.7 M / 3, at 100 attoFIL per unit.
        let fee: u128 = 17_266_667 * 100;
        chain.fund(2 * deposit + fee - 1).unwrap();
        let Outcome::NotSent(why) =
            deliver(&mut db, &chain, &cfg, Aggregation::Inline, "precommit-1").unwrap()
        else {
            panic!("a message the wallet cannot pay was sent");
        };
        assert!(
            why.contains("carries 0.000000004768371582 FIL")
                && why.contains("costs 0.0000000017266667 FIL of gas")
                && why.contains("wallet holds 0.000000006495038281 FIL")
                && why.contains("seal-sched chain fund"),
            "{why}"
        );
        assert_eq!(batch(&db), (BatchState::Recorded, Some(why)));
        assert_eq!(chain.in_flight().unwrap(), 0);
        chain.fund(1).unwrap();
        assert_eq!(
            deliver(&mut db, &chain, &cfg, Aggregation::Inline, "precommit-1").unwrap(),
            Outcome::Pending
        );
        assert_eq!(batch(&db), (BatchState::Sent, None));
        let promised = SimFunds {
            wallet: 2 * deposit + fee,
            promised: 2 * deposit + fee,
            locked: Locked::default(),
            gas_burnt: 0,
            deposits_burnt: 0,
        };
        assert_eq!(chain.funds().unwrap(), promised);
        drop(chain);
        // Short epochs: the message has landed; the wallet paid, the sectors locked.
        let chain = SimChain::open(&chain_db, 0.001, 150, "s", 0).unwrap();
        assert_eq!(
            chain.funds().unwrap(),
            SimFunds {
                wallet: 0,
                promised: 0,
                locked: Locked {
                    deposit: 2 * deposit,
                    pledge: 0
                },
                gas_burnt: fee,
                deposits_burnt: 0,
            }
        );
    }

    /// An interactive commit with its aggregate made is quoted in both forms before its
    /// first send and goes as the cheaper (on the simulated chain's schedule, the aggregate),
    /// the quotes recorded with the choice; a publisher holding the unpriced message later
    /// gets the recorded one, not a second decision.
    #[test]
    fn a_commit_goes_as_the_cheaper_form_and_the_choice_is_recorded() {
        use crate::sched::chain::SimChain;
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("sched.db")).unwrap();
        let chain = SimChain::open(&dir.path().join("chain.db"), 3600.0, 150, "s", 0).unwrap();
        let mut msg = junk_commit_batch(&mut db);
        msg.sectors.sort_by_key(|(n, _)| *n);
        msg.aggregate_proof = Some("ab".repeat(32));
        // FIP-0100's ProveCommitSectors3 points: 267.5 M gas for one sector, 580 M for four
        // batched, 517.2 M for four aggregated, at 100 attoFIL per unit.
        let quotes = Quotes {
            plain: Some((580_000_001u128 * 100).to_string()),
            aggregate: Some((517_200_001u128 * 100).to_string()),
        };
        let Ok(out) = priced(&mut db, &chain, msg.clone()).unwrap() else {
            panic!("the simulated chain quotes every message");
        };
        let want = Message {
            quotes: Some(quotes),
            ..msg.clone()
        };
        assert_eq!(out, want);
        let recorded = batches::body(&db.conn, "commit-1").unwrap().unwrap();
        assert_eq!(parse_message("commit-1", &recorded).unwrap(), want);
        assert_eq!(priced(&mut db, &chain, msg).unwrap().unwrap(), want);
    }

    #[test]
    fn update_batches_are_sent_full_or_after_their_wait() {
        let u = Rules::of(&Batching::default(), MsgKind::ReplicaUpdate);
        assert_eq!((u.max, u.wait, u.slack), (16, 3600.0, 0.0));
        let (k, t) = (MsgKind::ReplicaUpdate, 1_000_000.0);
        // No chain deadline: however far the head, a fresh sector waits.
        assert_eq!(deadline(k, &row(1, t, 0), 0, 30.0, t), f64::INFINITY);
        assert_eq!(due(k, &[row(1, t, 0)], u, 10_000_000, 30.0, t), None);
        assert_eq!(
            due(k, &[row(1, t - 3600.0, 0)], u, 0, 30.0, t).as_deref(),
            Some("batch wait expired")
        );
        let full: Vec<SectorRow> = (0..16).map(|n| row(n, t, 0)).collect();
        assert!(due(k, &full, u, 0, 30.0, t).unwrap().starts_with("full"));
        assert_eq!(
            pending_state(k),
            (
                SectorState::SubmitReplicaUpdate,
                SectorState::ReplicaUpdateWait
            )
        );
    }

    /// A chain on which batch `precommit-1`, once sent, loses its nonce to another call.
    struct NonceThief {
        sent: std::cell::RefCell<Vec<String>>,
    }

    impl Chain for NonceThief {
        fn head(&self) -> Result<i64> {
            Ok(100)
        }
        fn epoch_secs(&self) -> f64 {
            30.0
        }
        fn seed_delay(&self) -> i64 {
            150
        }
        fn randomness(&self, _: chain::Domain, _: i64, _: u64) -> Result<[u8; 32]> {
            anyhow::bail!("no randomness here")
        }
        fn sector_allocated(&self, _: u64, _: u64) -> Result<bool> {
            Ok(false)
        }
        fn send(&self, msg: &Message) -> Result<String> {
            self.sent.borrow_mut().push(msg.id.clone());
            Ok(format!("cid-{}", msg.id))
        }
        fn quote(&self, _: &Message) -> Result<crate::sched::gas::Quote> {
            anyhow::bail!("no quotes here")
        }
        fn lookup(&self, msg: &Message, sent: Option<&str>) -> Result<Option<Receipt>> {
            match sent {
                Some(cid) if msg.id == "precommit-1" => {
                    Err(chain::Displaced(format!("{cid} lost its nonce")).into())
                }
                _ => Ok(None),
            }
        }
    }

    /// A sent message that can never land leaves its batch dropped and its sectors, the
    /// same message under a new id (so a new message UUID), in a new batch that is sent;
    /// the dropped batch is final and is never resent again.
    #[test]
    fn a_message_whose_nonce_another_call_took_is_resent_as_a_new_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("sched.db")).unwrap();
        let doc = |n: u64| serde_json::json!({"seal_proof": "StackedDrg2KiBV1_1", "sector": n});
        let msg = record_precommit(&mut db, doc);
        let chain = NonceThief {
            sent: Default::default(),
        };
        let (cfg, inline) = (Config::default(), Aggregation::Inline);
        let why = "it can never land: cid-precommit-1 lost its nonce".to_string();
        assert_eq!(
            deliver(&mut db, &chain, &cfg, inline, "precommit-1").unwrap(),
            Outcome::Dropped {
                resent_as: "precommit-1-r".into(),
                why: why.clone()
            }
        );
        let rows = db.batches().unwrap();
        let summary: Vec<_> = rows
            .iter()
            .map(|b| {
                (
                    b.id.as_str(),
                    b.state,
                    b.error.as_deref(),
                    b.sectors.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "precommit-1",
                    BatchState::Dropped,
                    Some(why.as_str()),
                    vec![1, 2]
                ),
                ("precommit-1-r", BatchState::Recorded, None, vec![1, 2]),
            ]
        );
        let resent = batches::body(&db.conn, "precommit-1-r").unwrap().unwrap();
        assert_eq!(
            parse_message("precommit-1-r", &resent).unwrap(),
            Message {
                id: "precommit-1-r".into(),
                ..msg
            }
        );
        assert_eq!(
            deliver(&mut db, &chain, &cfg, inline, "precommit-1-r").unwrap(),
            Outcome::Pending
        );
        // A publisher that still held the dropped batch records nothing more.
        let again = deliver(&mut db, &chain, &cfg, inline, "precommit-1").unwrap();
        assert!(matches!(again, Outcome::Dropped { .. }), "{again:?}");
        assert_eq!(db.batches().unwrap().len(), 2);
        assert_eq!(*chain.sent.borrow(), ["precommit-1", "precommit-1-r"]);
        // Recovery finishes only the new batch.
        let p = Publisher::try_acquire(&dir.path().join("publish.lock"))
            .unwrap()
            .unwrap();
        assert_eq!(
            recover(&p, &mut db, &chain, &cfg, inline).unwrap(),
            [("precommit-1-r".to_string(), Outcome::Pending)]
        );
    }
}
