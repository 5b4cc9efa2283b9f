//! Sending a recorded outbox message through the node, exactly once, and learning whether it
//! landed (docs/chain.md#sending).
//!
//! - The message is built from the recorded batch: `PreCommitSectorBatch2` with the sectors'
//!   deposits as value, `ProveCommitSectors3` (one proof per sector) with the pledge not yet
//!   covered by the deposits, `ProveReplicaUpdates3` with each sector's deadline and
//!   partition. Sectors go in sector-number order, so a `BatchReturn` index names a sector.
//! - `MpoolPushMessage` carries a message UUID that is a function of the recorded batch
//!   alone ([`message_uuid`]), so it exists before the call: a push repeated after a crash,
//!   a timeout or a lost answer gets back the message the node signed the first time
//!   (Lotus keeps signed messages by UUID), never a second one. The node estimates gas
//!   (executing the message) before it signs: a message the actor would reject is refused
//!   there with the actor's reason and nothing is sent ([`Refused`]: the outbox splits the
//!   batch in halves until the refused sectors stand alone, and fails those). (A
//!   separate `GasEstimateMessageGas` dry run would refuse the repeat of a message that
//!   already landed, because its own effects are then on chain.)
//! - Landing is read with `StateSearchMsg` (replacements allowed) and reported only once
//!   the message is [`CONFIDENCE`] epochs deep, so a short reorg cannot move sectors on a
//!   message that then disappears: each lookup asks the node afresh, so a message a reorg
//!   took back is followed to where it lands again. A fee replacement (`lotus mpool
//!   replace`: the same call at the same nonce) lands under its own CID, which the receipt
//!   carries. A precommit's epoch is the chain's `PreCommitEpoch`
//!   (`StateSectorPreCommitInfo`), from which the seed epoch follows, not the lookup's
//!   height.
//! - A different call that took the message's nonce means it can never land: the node
//!   says so, and the lookup errs with [`Displaced`] (the outbox records its sectors in a
//!   new batch, under a new UUID).

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::json::{base64_decode, base64_encode, cid as json_cid};
use super::LotusChain;
use crate::filecoin::miner::*;
use crate::filecoin::token::parse_atto;
use crate::piece::cid::{commitment_cid_bytes, commitment_to_cid, CommitmentKind};
use crate::sched::chain::{Displaced, Message, MsgKind, Receipt, Refused};
use crate::sched::gas::Quote;
use crate::sector::document::SectorDoc;

/// Epochs a landed message must be buried under before its sectors move (Lotus's
/// `MessageConfidence`).
pub const CONFIDENCE: i64 = 5;

/// The most parameter bytes one message carries: the mempool's 64 KiB message limit less
/// room for the rest of the signed message (Lotus's batchers split at `MaxMessageSize − 128`).
pub const MAX_PARAMS_BYTES: usize = 64 * 1024 - 128;

/// Epochs per day (30-second epochs), for sector lifetimes.
const EPOCHS_PER_DAY: i64 = 2880;

/// A message ready for the node: the method, its CBOR parameters and the value it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: Method,
    pub params: Vec<u8>,
    pub value: u128,
}

/// The `MsgUuid` of a recorded batch: SHA-256 over the miner, the batch id and its sectors,
/// shaped as an RFC 9562 version-8 UUID. Two batches never share one; the same batch always
/// has it, whatever process sends it.
pub fn message_uuid(miner: u64, msg: &Message) -> String {
    let mut h = Sha256::new();
    h.update(b"sealkit-message-uuid\0");
    h.update(miner.to_be_bytes());
    h.update(msg.id.as_bytes());
    h.update([0]);
    for (n, _) in &msg.sectors {
        h.update(n.to_be_bytes());
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8: custom
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
    let x = crate::hex::encode(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// The recorded sectors in sector-number order, as documents.
fn sectors(msg: &Message) -> Result<Vec<(u64, SectorDoc)>> {
    let mut v = msg
        .sectors
        .iter()
        .map(|(n, d)| {
            Ok((
                *n,
                SectorDoc::from_value(d.clone(), &format!("sector {n}"))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    v.sort_by_key(|(n, _)| *n);
    Ok(v)
}

/// The `RegisteredUpdateProof` of a sector size (2KiB … 64GiB = 0 … 4).
fn update_proof_type(sector_size: u64) -> Result<i64> {
    Ok(match sector_size {
        2048 => 0,
        0x80_0000 => 1,
        0x2000_0000 => 2,
        0x8_0000_0000 => 3,
        0x10_0000_0000 => 4,
        s => bail!("no update proof type for {s}-byte sectors"),
    })
}

/// The data pieces of a document (fillers are the implicit zero piece).
fn manifests(doc: &SectorDoc) -> Result<Vec<PieceActivationManifest>> {
    Ok(doc
        .pieces()?
        .into_iter()
        .filter(|p| !p.filler)
        .map(|p| PieceActivationManifest {
            cid: commitment_cid_bytes(CommitmentKind::Unsealed, &p.comm_p),
            size: p.padded_size,
            verified_allocation_key: None,
            notify: Vec::new(),
        })
        .collect())
}

fn proof_bytes(doc: &SectorDoc, what: &str) -> Result<Vec<u8>> {
    let text = doc
        .get("proof")
        .and_then(Value::as_str)
        .with_context(|| format!("{what} has no proof"))?;
    crate::hex::decode(text).with_context(|| format!("{what}: field \"proof\""))
}

impl LotusChain {
    /// The miner-actor call for a recorded message, with its value read from the node.
    pub fn call_for(&self, msg: &Message) -> Result<Call> {
        let sectors = sectors(msg)?;
        ensure!(!sectors.is_empty(), "message {} has no sectors", msg.id);
        match msg.kind {
            MsgKind::PreCommit => self.precommit(&sectors),
            MsgKind::ProveCommit if sectors[0].1.seal_proof()?.is_non_interactive() => {
                let aggregate = msg.aggregate_proof.as_deref().with_context(|| {
                    format!("message {}: NI-PoRep sectors go only aggregated", msg.id)
                })?;
                self.ni_commit(&sectors, aggregate)
            }
            MsgKind::ProveCommit => self.prove_commit(&sectors, msg.aggregate_proof.as_deref()),
            MsgKind::ReplicaUpdate => self.replica_update(&sectors),
        }
    }

    fn precommit_info(&self, n: u64, doc: &SectorDoc, head: i64) -> Result<SectorPreCommitInfo> {
        let proof = doc.seal_proof()?;
        let comm_d = doc.hex32("comm_d")?;
        let data = !manifests(doc)?.is_empty();
        Ok(SectorPreCommitInfo {
            seal_proof: proof.id() as i64,
            sector_number: n,
            sealed_cid: commitment_cid_bytes(CommitmentKind::Sealed, &doc.hex32("comm_r")?),
            seal_rand_epoch: doc.u64("ticket_epoch")? as i64,
            deal_ids: Vec::new(),
            expiration: head + self.policy.lifetime_days as i64 * EPOCHS_PER_DAY,
            // Committed capacity: no CommD (the actor knows the zero sector's).
            unsealed_cid: data.then(|| commitment_cid_bytes(CommitmentKind::Unsealed, &comm_d)),
        })
    }

    fn precommit(&self, sectors: &[(u64, SectorDoc)]) -> Result<Call> {
        let head = self.head_epoch()?;
        let mut infos = Vec::new();
        let mut value = 0u128;
        for (n, doc) in sectors {
            let info = self.precommit_info(*n, doc, head)?;
            let deposit = self
                .client
                .call(
                    "StateMinerPreCommitDepositForPower",
                    json!([self.address(self.miner), precommit_json(&info), null]),
                )
                .with_context(|| format!("the precommit deposit of sector {n}"))?;
            value += parse_atto(
                deposit.as_str().unwrap_or_default(),
                "StateMinerPreCommitDepositForPower",
            )?;
            infos.push(info);
        }
        Ok(Call {
            method: Method::PreCommitSectorBatch2,
            params: PreCommitSectorBatchParams2 { sectors: infos }.encode(),
            value,
        })
    }

    /// `aggregate`: the batch's SnarkPack aggregate (hex), proving `sectors` in ascending
    /// order, which is the order of the activations (`sectors` sorts them).
    fn prove_commit(&self, sectors: &[(u64, SectorDoc)], aggregate: Option<&str>) -> Result<Call> {
        let head = self.head_epoch()?;
        let mut activations = Vec::new();
        let mut proofs = Vec::new();
        let mut value = 0u128;
        for (n, doc) in sectors {
            let pc = self
                .precommit_on_chain(*n)?
                .with_context(|| format!("sector {n} has no precommit on chain"))?;
            let pledge = self.client.call(
                "StateMinerInitialPledgeForSector",
                json!([pc.expiration - head, self.miner_info.sector_size, 0, null]),
            )?;
            let pledge = parse_atto(
                pledge.as_str().unwrap_or_default(),
                "StateMinerInitialPledgeForSector",
            )?;
            value += pledge.saturating_sub(pc.deposit);
            activations.push(SectorActivationManifest {
                sector_number: *n,
                pieces: manifests(doc)?,
            });
            if aggregate.is_none() {
                proofs.push(proof_bytes(doc, &format!("sector {n}"))?);
            }
        }
        let aggregate_proof = aggregate
            .map(crate::hex::decode)
            .transpose()
            .context("the batch's aggregate_proof")?;
        Ok(Call {
            method: Method::ProveCommitSectors3,
            params: ProveCommitSectors3Params {
                sector_activations: activations,
                sector_proofs: proofs,
                aggregate_proof_type: aggregate_proof.as_ref().map(|_| SNARKPACK_V2),
                aggregate_proof: aggregate_proof.unwrap_or_default(),
                // Per-sector results: one bad sector does not take the others down.
                require_activation_success: false,
                require_notification_success: false,
            }
            .encode(),
            value,
        })
    }

    /// `ProveCommitSectorsNI`: NI-PoRep sectors onboarded with no precommit, all proven by
    /// one aggregate (in ascending sector order). The value is each sector's initial pledge
    /// (no deposit was paid). The sectors are assigned to a proving deadline three after
    /// the current one: the actor refuses the current and the next, and three leaves the
    /// message a whole deadline (60 epochs) to land.
    fn ni_commit(&self, sectors: &[(u64, SectorDoc)], aggregate: &str) -> Result<Call> {
        let head = self.head_epoch()?;
        let lifetime = self.policy.lifetime_days as i64 * EPOCHS_PER_DAY;
        let dl = self.client.call(
            "StateMinerProvingDeadline",
            json!([self.address(self.miner), null]),
        )?;
        let field = |k: &str| {
            dl.get(k)
                .and_then(Value::as_u64)
                .with_context(|| format!("StateMinerProvingDeadline: no {k}"))
        };
        let (index, count) = (field("Index")?, field("WPoStPeriodDeadlines")?);
        ensure!(
            count > 3 && index < count,
            "StateMinerProvingDeadline: deadline {index} of {count}"
        );
        let pledge = self.client.call(
            "StateMinerInitialPledgeForSector",
            json!([lifetime, self.miner_info.sector_size, 0, null]),
        )?;
        let pledge = parse_atto(
            pledge.as_str().unwrap_or_default(),
            "StateMinerInitialPledgeForSector",
        )?;
        let mut infos = Vec::new();
        for (n, doc) in sectors {
            infos.push(SectorNIActivationInfo {
                sealing_number: *n,
                sealer_id: self.miner,
                sealed_cid: commitment_cid_bytes(CommitmentKind::Sealed, &doc.hex32("comm_r")?),
                sector_number: *n,
                seal_rand_epoch: doc.u64("ticket_epoch")? as i64,
                expiration: head + lifetime,
            });
        }
        Ok(Call {
            method: Method::ProveCommitSectorsNI,
            params: ProveCommitSectorsNIParams {
                sectors: infos,
                aggregate_proof: crate::hex::decode(aggregate)
                    .context("the batch's aggregate_proof")?,
                seal_proof_type: sectors[0].1.seal_proof()?.id() as i64,
                aggregate_proof_type: SNARKPACK_V2,
                proving_deadline: (index + 3) % count,
                // Per-sector results, as for the other commits.
                require_activation_success: false,
            }
            .encode(),
            value: pledge * sectors.len() as u128,
        })
    }

    fn replica_update(&self, sectors: &[(u64, SectorDoc)]) -> Result<Call> {
        let mut updates = Vec::new();
        let mut proofs = Vec::new();
        for (n, doc) in sectors {
            let u = doc.update_doc()?;
            let at = self.client.call(
                "StateSectorPartition",
                json!([self.address(self.miner), n, null]),
            )?;
            let field = |k: &str| {
                at.get(k)
                    .and_then(Value::as_u64)
                    .with_context(|| format!("StateSectorPartition of sector {n}: no {k}"))
            };
            updates.push(SectorUpdateManifest {
                sector: *n,
                deadline: field("Deadline")?,
                partition: field("Partition")?,
                new_sealed_cid: commitment_cid_bytes(CommitmentKind::Sealed, &u.hex32("comm_r")?),
                pieces: manifests(&u)?,
            });
            proofs.push(proof_bytes(&u, &format!("sector {n}'s update"))?);
        }
        Ok(Call {
            method: Method::ProveReplicaUpdates3,
            params: ProveReplicaUpdates3Params {
                sector_updates: updates,
                sector_proofs: proofs,
                aggregate_proof: Vec::new(),
                update_proofs_type: update_proof_type(self.miner_info.sector_size)?,
                aggregate_proof_type: None,
                require_activation_success: false,
                require_notification_success: false,
            }
            .encode(),
            // Committed capacity to unverified data: the sector's power and pledge stay.
            value: 0,
        })
    }

    /// What taking one committed-capacity sector of `proof` on chain costs now, as the node
    /// computes it for the configured lifetime: (precommit deposit, initial pledge), attoFIL.
    pub fn cc_sector_costs(&self, proof: crate::sector::proof::SealProof) -> Result<(u128, u128)> {
        let head = self.head_epoch()?;
        let lifetime = self.policy.lifetime_days as i64 * EPOCHS_PER_DAY;
        let info = SectorPreCommitInfo {
            seal_proof: proof.id() as i64,
            sector_number: 0,
            sealed_cid: commitment_cid_bytes(CommitmentKind::Sealed, &[0; 32]),
            seal_rand_epoch: head - 1,
            deal_ids: Vec::new(),
            expiration: head + lifetime,
            unsealed_cid: None,
        };
        let deposit = self.client.call(
            "StateMinerPreCommitDepositForPower",
            json!([self.address(self.miner), precommit_json(&info), null]),
        )?;
        let pledge = self.client.call(
            "StateMinerInitialPledgeForSector",
            json!([lifetime, self.miner_info.sector_size, 0, null]),
        )?;
        Ok((
            parse_atto(
                deposit.as_str().unwrap_or_default(),
                "StateMinerPreCommitDepositForPower",
            )?,
            parse_atto(
                pledge.as_str().unwrap_or_default(),
                "StateMinerInitialPledgeForSector",
            )?,
        ))
    }

    /// (the worker address's balance, which pays deposits and pledge as message value; the
    /// miner actor's available balance), attoFIL.
    pub fn balances(&self) -> Result<(u128, u128)> {
        let worker = self
            .client
            .call("WalletBalance", json!([self.miner_info.worker]))?;
        let miner = self.client.call(
            "StateMinerAvailableBalance",
            json!([self.address(self.miner), null]),
        )?;
        Ok((
            parse_atto(worker.as_str().unwrap_or_default(), "WalletBalance")?,
            parse_atto(
                miner.as_str().unwrap_or_default(),
                "StateMinerAvailableBalance",
            )?,
        ))
    }

    fn head_epoch(&self) -> Result<i64> {
        use crate::sched::chain::Chain;
        self.head()
    }

    /// A sector's precommit as the chain holds it: `None` when there is none (never sent,
    /// or expired and cleaned up).
    pub fn precommit_on_chain(&self, n: u64) -> Result<Option<OnChainPrecommit>> {
        let v = self.client.call(
            "StateSectorPreCommitInfo",
            json!([self.address(self.miner), n, null]),
        )?;
        if v.is_null() {
            return Ok(None);
        }
        let what = format!("StateSectorPreCommitInfo of sector {n}");
        Ok(Some(OnChainPrecommit {
            epoch: v
                .get("PreCommitEpoch")
                .and_then(Value::as_i64)
                .with_context(|| format!("{what}: no PreCommitEpoch"))?,
            deposit: parse_atto(
                v.get("PreCommitDeposit")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                &what,
            )?,
            expiration: v
                .pointer("/Info/Expiration")
                .and_then(Value::as_i64)
                .with_context(|| format!("{what}: no Info.Expiration"))?,
            sealed_cid: json_cid(
                v.pointer("/Info/SealedCID").unwrap_or(&Value::Null),
                &format!("{what}: Info.SealedCID"),
            )?,
        }))
    }

    /// The miner-actor call for `msg`, refused ([`Refused`]) when its parameters are more
    /// than a message may carry: the mempool would refuse it whole, so the outbox splits it.
    fn sized_call(&self, msg: &Message) -> Result<Call> {
        let call = self.call_for(msg)?;
        if call.params.len() > MAX_PARAMS_BYTES {
            return Err(Refused(format!(
                "message {} not sent: its parameters are {} bytes, more than a message may \
                 carry ({MAX_PARAMS_BYTES})",
                msg.id,
                call.params.len()
            ))
            .into());
        }
        Ok(call)
    }

    /// `call` from the worker to the miner as an unsigned message with no gas set (the node
    /// estimates it) and the send spec of `msg`'s batch.
    fn unsigned(&self, msg: &Message, call: &Call) -> (Value, Value) {
        let unsigned = json!({
            "Version": 0,
            "To": self.address(self.miner),
            "From": self.miner_info.worker,
            "Nonce": 0,
            "Value": call.value.to_string(),
            "GasLimit": 0,
            "GasFeeCap": "0",
            "GasPremium": "0",
            "Method": call.method.number(),
            "Params": base64_encode(&call.params),
        });
        let spec = json!({
            "MaxFee": (self.policy.max_fee_per_sector * msg.sectors.len() as u128).to_string(),
            "MsgUuid": message_uuid(self.miner, msg),
            "MaximizeFeeCap": true,
        });
        (unsigned, spec)
    }

    /// The node's quote for `msg` as it would go now: `GasEstimateMessageGas` (the node
    /// executes the message against its state; a refusal is the actor's, [`Refused`]),
    /// priced at the head's `ParentBaseFee` plus the estimated premium, as Curio compares
    /// a batch with its aggregate. Only made before a batch's first send (after it, the
    /// message's own effects would make the node refuse the estimate).
    pub(super) fn estimate(&self, msg: &Message) -> Result<Quote> {
        let call = self.sized_call(msg)?;
        let (unsigned, spec) = self.unsigned(msg, &call);
        let est = match self
            .client
            .call("GasEstimateMessageGas", json!([unsigned, spec, null]))
        {
            Ok(v) => v,
            Err(e) if e.is::<super::rpc::RpcError>() => {
                return Err(Refused(format!("message {}: {e:#}", msg.id)).into())
            }
            Err(e) => return Err(e),
        };
        let gas_limit = est
            .get("GasLimit")
            .and_then(Value::as_u64)
            .context("GasEstimateMessageGas: no GasLimit")?;
        let premium = parse_atto(
            est.get("GasPremium")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            "GasEstimateMessageGas GasPremium",
        )?;
        let head = self.client.call("ChainHead", json!([]))?;
        let base_fee = parse_atto(
            head.pointer("/Blocks/0/ParentBaseFee")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            "ChainHead Blocks[0].ParentBaseFee",
        )?;
        Ok(Quote {
            gas_limit,
            fee: (base_fee + premium) * u128::from(gas_limit),
        })
    }

    /// Builds and pushes `msg`; returns the signed message's CID.
    pub(super) fn push(&self, msg: &Message) -> Result<String> {
        let call = self.sized_call(msg)?;
        let (unsigned, spec) = self.unsigned(msg, &call);
        // GasLimit 0: the node estimates gas (executing the message against its state)
        // before it signs, after it has looked the UUID up, so a repeat of a message that
        // already landed gets that message back instead of a refusal from a dry run against
        // the state the first copy changed. A message the actor would reject is refused
        // here, with the actor's exit code, and nothing is sent.
        let signed = match self
            .client
            .call("MpoolPushMessage", json!([unsigned, spec]))
        {
            Ok(s) => s,
            // The node answered, and no message exists under this UUID (else it would have
            // returned it): the actor refused this message as it is.
            Err(e) if e.is::<super::rpc::RpcError>() => {
                return Err(Refused(format!("message {} not sent: {e:#}", msg.id)).into())
            }
            Err(e) => return Err(e.context(format!("message {} not sent", msg.id))),
        };
        json_cid(
            signed.get("CID").unwrap_or(&Value::Null),
            "MpoolPushMessage",
        )
    }

    /// Where message `cid` (sent for `msg`) landed, once it is deep enough.
    pub(super) fn search(&self, msg: &Message, cid: &str) -> Result<Option<Receipt>> {
        let found = match self
            .client
            .call("StateSearchMsg", json!([null, {"/": cid}, -1, true]))
        {
            Err(e) if displaced(&e) => {
                return Err(Displaced(format!("message {cid} of batch {}: {e:#}", msg.id)).into())
            }
            r => r?,
        };
        if found.is_null() {
            return Ok(None);
        }
        let height = found
            .get("Height")
            .and_then(Value::as_i64)
            .context("StateSearchMsg: no Height")?;
        if self.head_epoch()? < height + CONFIDENCE {
            return Ok(None);
        }
        // A replacement (same nonce, higher fee) lands under its own CID.
        let landed = json_cid(
            found.get("Message").unwrap_or(&Value::Null),
            "StateSearchMsg",
        )?;
        let receipt = found.get("Receipt").context("StateSearchMsg: no Receipt")?;
        let code = receipt
            .get("ExitCode")
            .and_then(Value::as_i64)
            .context("StateSearchMsg: no Receipt.ExitCode")?;
        let sectors = sectors(msg)?;
        let mut results: Vec<(u64, Option<String>)> =
            sectors.iter().map(|(n, _)| (*n, None)).collect();
        if code != 0 {
            let why = format!("message {landed} failed on chain with exit code {code}");
            for slot in &mut results {
                slot.1 = Some(why.clone());
            }
        } else if msg.kind != MsgKind::PreCommit {
            let ret = receipt.get("Return").and_then(Value::as_str).unwrap_or("");
            let ret = BatchReturn::decode(&base64_decode(ret)?)
                .with_context(|| format!("the return value of {landed}"))?;
            for (i, code) in ret.fail_codes {
                let slot = results
                    .get_mut(i as usize)
                    .with_context(|| format!("{landed}: a failure for sector index {i}"))?;
                slot.1 = Some(format!("the actor refused it (exit code {code})"));
            }
        }
        let precommitted = self.on_chain_anyway(msg, &landed, &sectors, &mut results)?;
        Ok(Some(Receipt {
            cid: landed,
            epoch: precommitted.unwrap_or(height),
            results,
        }))
    }

    /// Clears the failure of every sector that the chain holds all the same, and returns
    /// the epoch of a precommit batch's precommits. A second copy of a message that landed
    /// fails where the first succeeded: a node that does not keep signed messages by UUID
    /// (Forest) signs a new one when a push is repeated after a lost answer. So what the
    /// chain holds decides, as Lotus's sealing checks `StateSectorPreCommitInfo` before it
    /// retries a failed precommit: a precommit of the sector with this CommR, or (for a
    /// prove-commit) the sector active in a partition. A sector update is not checked: a
    /// second copy of one is refused at push (its sectors then carry the new CommR).
    fn on_chain_anyway(
        &self,
        msg: &Message,
        landed: &str,
        sectors: &[(u64, SectorDoc)],
        results: &mut [(u64, Option<String>)],
    ) -> Result<Option<i64>> {
        let mut epoch: Option<i64> = None;
        for ((n, doc), slot) in sectors.iter().zip(results.iter_mut()) {
            match msg.kind {
                MsgKind::PreCommit => {
                    // All of a landed precommit batch is on chain at one epoch: its first
                    // sector says which.
                    if slot.1.is_none() && epoch.is_some() {
                        continue;
                    }
                    // A failed sector counts only with its own CommR on chain.
                    let ours = commitment_to_cid(CommitmentKind::Sealed, &doc.hex32("comm_r")?);
                    let pc = self
                        .precommit_on_chain(*n)?
                        .filter(|pc| slot.1.is_none() || pc.sealed_cid == ours);
                    match (pc, &slot.1) {
                        (Some(pc), _) if epoch.is_some_and(|e| e != pc.epoch) => bail!(
                            "batch {}: sector {n}'s precommit is on chain at epoch {}, the \
                             batch's others at {}; left for the operator",
                            msg.id,
                            pc.epoch,
                            epoch.unwrap_or_default()
                        ),
                        (Some(pc), _) => {
                            slot.1 = None;
                            epoch = Some(pc.epoch);
                        }
                        (None, None) => bail!(
                            "precommit {landed} landed, but sector {n} has no precommit on chain"
                        ),
                        (None, Some(_)) => {}
                    }
                }
                MsgKind::ProveCommit if slot.1.is_some() && self.active(*n)? => slot.1 = None,
                MsgKind::ProveCommit | MsgKind::ReplicaUpdate => {}
            }
        }
        Ok(epoch)
    }

    /// Whether sector `n` is active: `StateSectorPartition` finds it in a partition (the
    /// node answers an error for a sector in none).
    fn active(&self, n: u64) -> Result<bool> {
        match self.client.call(
            "StateSectorPartition",
            json!([self.address(self.miner), n, null]),
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.is::<super::rpc::RpcError>() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Whether a node's error says another call took the message's nonce. Lotus's
/// `tipsetExecutedMessage` (chain/stmgr/searchwait.go) answers a search that meets a
/// message of the same sender and nonce that is not an equal call with "found message with
/// equal nonce as the one we are looking for that is NOT a valid replacement message".
fn displaced(e: &anyhow::Error) -> bool {
    e.downcast_ref::<super::rpc::RpcError>()
        .is_some_and(|e| e.message.contains("NOT a valid replacement message"))
}

/// A precommit as the chain holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct OnChainPrecommit {
    /// The epoch of the tipset that included it: the seed is drawn from here + the delay.
    pub epoch: i64,
    pub deposit: u128,
    pub expiration: i64,
    /// `Info.SealedCID`, as the node writes it.
    pub sealed_cid: String,
}

/// `SectorPreCommitInfo` in Lotus's JSON (for `StateMinerPreCommitDepositForPower`).
fn precommit_json(i: &SectorPreCommitInfo) -> Value {
    let cid =
        |b: &[u8]| json!({"/": format!("b{}", crate::filecoin::multiformats::base32_encode(b))});
    json!({
        "SealProof": i.seal_proof,
        "SectorNumber": i.sector_number,
        "SealedCID": cid(&i.sealed_cid),
        "SealRandEpoch": i.seal_rand_epoch,
        "DealIDs": null,
        "Expiration": i.expiration,
        "UnsealedCid": i.unsealed_cid.as_deref().map(cid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_uuids_are_per_batch_and_version_8() {
        let m = |id: &str, sectors: &[u64]| Message {
            id: id.into(),
            kind: MsgKind::PreCommit,
            aggregate: false,
            aggregate_proof: None,
            quotes: None,
            sectors: sectors.iter().map(|n| (*n, Value::Null)).collect(),
        };
        let a = message_uuid(1000, &m("precommit-1-1", &[1, 2]));
        assert_eq!(a, message_uuid(1000, &m("precommit-1-1", &[1, 2])));
        assert_ne!(a, message_uuid(1001, &m("precommit-1-1", &[1, 2])));
        assert_ne!(a, message_uuid(1000, &m("precommit-1-2", &[1, 2])));
        assert_ne!(a, message_uuid(1000, &m("precommit-1-1", &[1, 3])));
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('8'), "{a}");
        assert!("89ab".contains(&parts[3][..1]), "{a}");
    }
}
