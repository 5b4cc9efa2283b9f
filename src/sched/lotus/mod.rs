//! The real chain through the operator's own full node (Lotus or Forest), over its JSON-RPC
//! API (docs/chain.md): the head, the network and its parameters, the miner's facts, ticket
//! and seed randomness exactly as the miner actor draws them, the miner's allocated sector
//! numbers, and the onboarding messages themselves ([`send`]: built from the recorded batch,
//! dry-run, pushed with a message UUID that exists before the call, found by
//! `StateSearchMsg`).

pub mod api_info;
pub mod json;
pub mod rpc;
pub mod send;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use super::chain::{Chain, Domain, Message, Receipt};
use crate::filecoin::address::{Address, Network};
use crate::filecoin::randomness::{self, Tag};
use crate::sector::proof::SealProof;

use api_info::ApiInfo;
use rpc::Client;

/// The oldest network version whose miner actor has the methods sealkit uses
/// (PreCommitSectorBatch2 and ProveCommitSectors3: nv22; docs/chain.md#method-numbers).
pub const MIN_NETWORK_VERSION: u64 = 22;

/// Epochs behind the head a ticket is drawn from (the actors' `SealRandomnessLookback`,
/// which is chain finality, 900, on every network; Lotus's `getTicket`).
pub const SEAL_RANDOMNESS_LOOKBACK: i64 = 900;

/// Epochs past the seed epoch before Lotus draws the seed (`InteractivePoRepConfidence`).
pub const INTERACTIVE_POREP_CONFIDENCE: i64 = 6;

/// What the node says about its network, read once at connection.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkInfo {
    pub name: String,
    pub version: u64,
    pub block_delay_secs: f64,
    /// Epochs from a precommit's epoch to its interactive seed (150 on mainnet, 10 on
    /// Lotus's 2k devnets).
    pub challenge_delay: i64,
}

/// The miner actor's facts that sealing depends on (`StateMinerInfo`).
#[derive(Debug, Clone, PartialEq)]
pub struct MinerInfo {
    pub owner: String,
    pub worker: String,
    pub control: Vec<String>,
    pub sector_size: u64,
    pub window_post_proof: i64,
}

/// How messages are made: the operator's choices (`[chain]` in the config).
#[derive(Debug, Clone, PartialEq)]
pub struct SendPolicy {
    /// A committed-capacity sector's lifetime at precommit, in days.
    pub lifetime_days: u64,
    /// The most a message may spend on gas per sector in it, in attoFIL.
    pub max_fee_per_sector: u128,
}

impl Default for SendPolicy {
    fn default() -> Self {
        SendPolicy {
            lifetime_days: 540,
            max_fee_per_sector: 30_000_000_000_000_000,
        }
    }
}

pub struct LotusChain {
    client: Client,
    miner: u64,
    net: NetworkInfo,
    miner_info: MinerInfo,
    policy: SendPolicy,
}

impl LotusChain {
    /// Connects to the node, checks the network (name if `expect_network` is set, version
    /// at least [`MIN_NETWORK_VERSION`]) and that the miner's sector size is `proof`'s.
    pub fn connect(
        info: ApiInfo,
        record: Option<&std::path::Path>,
        miner: u64,
        proof: SealProof,
        expect_network: &str,
    ) -> Result<LotusChain> {
        let mut client = Client::new(info);
        if let Some(p) = record {
            client = client.record_to(p)?;
        }
        let net = network(&client)?;
        ensure!(
            expect_network.is_empty() || net.name == expect_network,
            "the node at {} is on network {:?}, but chain.network is {expect_network:?}",
            client.url(),
            net.name
        );
        ensure!(
            net.version >= MIN_NETWORK_VERSION,
            "the node's network {} is at version {}, older than {MIN_NETWORK_VERSION}, which sealkit needs",
            net.name,
            net.version
        );
        let addr = Address::new_id(miner).to_text(Network::of_name(&net.name));
        let miner_info = miner_info(&client, &addr)?;
        ensure!(
            miner_info.sector_size == proof.sector_size(),
            "miner {addr} seals {}-byte sectors, but sealing.seal_proof is {} ({} bytes)",
            miner_info.sector_size,
            proof.name(),
            proof.sector_size()
        );
        Ok(LotusChain {
            client,
            miner,
            net,
            miner_info,
            policy: SendPolicy::default(),
        })
    }

    pub fn with_policy(mut self, policy: SendPolicy) -> LotusChain {
        self.policy = policy;
        self
    }

    pub fn network(&self) -> &NetworkInfo {
        &self.net
    }

    pub fn miner_info(&self) -> &MinerInfo {
        &self.miner_info
    }

    fn address(&self, id: u64) -> String {
        Address::new_id(id).to_text(Network::of_name(&self.net.name))
    }

    /// The node's randomness for `miner`, checked against our own draw from the node's
    /// digest: a node (or a proxy) answering wrongly is caught before a sector seals with it.
    fn drawn(&self, tag: Tag, epoch: i64, miner: u64) -> Result<[u8; 32]> {
        let entropy = Address::new_id(miner).to_cbor();
        let (full, digest) = match tag {
            Tag::SealRandomness => (
                "StateGetRandomnessFromTickets",
                "StateGetRandomnessDigestFromTickets",
            ),
            Tag::InteractiveSealChallengeSeed => (
                "StateGetRandomnessFromBeacon",
                "StateGetRandomnessDigestFromBeacon",
            ),
        };
        let r = self.client.call(
            full,
            json!([tag as i64, epoch, json::base64_encode(&entropy), null]),
        )?;
        let r = json::bytes32(&r, full)?;
        let d = self.client.call(digest, json!([epoch, null]))?;
        let d = json::bytes32(&d, digest)?;
        let ours = randomness::draw(tag, &d, epoch, &entropy);
        ensure!(
            ours == r,
            "{full} at epoch {epoch} does not match the draw from {digest}: the node's randomness cannot be trusted"
        );
        Ok(r)
    }
}

fn network(c: &Client) -> Result<NetworkInfo> {
    let name = c
        .call("StateNetworkName", json!([]))?
        .as_str()
        .context("StateNetworkName: not a string")?
        .to_string();
    let version = c
        .call("StateNetworkVersion", json!([null]))?
        .as_u64()
        .context("StateNetworkVersion: not a number")?;
    let p = c.call("StateGetNetworkParams", json!([]))?;
    let block_delay_secs = p
        .get("BlockDelaySecs")
        .and_then(Value::as_f64)
        .context("StateGetNetworkParams: no BlockDelaySecs")?;
    let challenge_delay = p
        .get("PreCommitChallengeDelay")
        .and_then(Value::as_i64)
        .context("StateGetNetworkParams: no PreCommitChallengeDelay")?;
    ensure!(
        block_delay_secs > 0.0 && challenge_delay > 0,
        "StateGetNetworkParams: BlockDelaySecs {block_delay_secs} / PreCommitChallengeDelay {challenge_delay} are not usable"
    );
    Ok(NetworkInfo {
        name,
        version,
        block_delay_secs,
        challenge_delay,
    })
}

fn miner_info(c: &Client, addr: &str) -> Result<MinerInfo> {
    let v = c
        .call("StateMinerInfo", json!([addr, null]))
        .with_context(|| format!("miner {addr} (sealing.miner)"))?;
    let text = |k: &str| -> Result<String> {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("StateMinerInfo of {addr}: no {k}"))
    };
    Ok(MinerInfo {
        owner: text("Owner")?,
        worker: text("Worker")?,
        control: v
            .get("ControlAddresses")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        sector_size: v
            .get("SectorSize")
            .and_then(Value::as_u64)
            .with_context(|| format!("StateMinerInfo of {addr}: no SectorSize"))?,
        window_post_proof: v
            .get("WindowPoStProofType")
            .and_then(Value::as_i64)
            .with_context(|| format!("StateMinerInfo of {addr}: no WindowPoStProofType"))?,
    })
}

impl Chain for LotusChain {
    fn head(&self) -> Result<i64> {
        let h = self.client.call("ChainHead", json!([]))?;
        h.get("Height")
            .and_then(Value::as_i64)
            .context("ChainHead: no Height")
    }

    fn epoch_secs(&self) -> f64 {
        self.net.block_delay_secs
    }

    fn seed_delay(&self) -> i64 {
        self.net.challenge_delay
    }

    fn ticket_lookback(&self) -> i64 {
        SEAL_RANDOMNESS_LOOKBACK
    }

    fn seed_confidence(&self) -> i64 {
        INTERACTIVE_POREP_CONFIDENCE
    }

    fn randomness(&self, domain: Domain, epoch: i64, miner: u64) -> Result<[u8; 32]> {
        let tag = match domain {
            Domain::Ticket => Tag::SealRandomness,
            Domain::Seed => Tag::InteractiveSealChallengeSeed,
        };
        self.drawn(tag, epoch, miner)
    }

    fn sector_allocated(&self, miner: u64, number: u64) -> Result<bool> {
        let v = self.client.call(
            "StateMinerSectorAllocated",
            json!([self.address(miner), number, null]),
        )?;
        v.as_bool()
            .context("StateMinerSectorAllocated: not a boolean")
    }

    fn send(&self, msg: &Message) -> Result<String> {
        self.push(msg)
    }

    fn lookup(&self, msg: &Message, sent: Option<&str>) -> Result<Option<Receipt>> {
        match sent {
            Some(cid) => self.search(msg, cid),
            // Not known to be sent: a send (with the same message UUID) says.
            None => Ok(None),
        }
    }
    fn quote(&self, msg: &Message) -> Result<crate::sched::gas::Quote> {
        self.estimate(msg)
    }
}

impl LotusChain {
    /// `seal-sched chain status`: the node, its network and the miner.
    pub fn status(&self) -> Result<Value> {
        Ok(json!({
            "kind": "lotus",
            "node": self.client.url(),
            "network": self.net.name,
            "network_version": self.net.version,
            "head": self.head()?,
            "block_delay_secs": self.net.block_delay_secs,
            "challenge_delay": self.net.challenge_delay,
            "miner": self.address(self.miner),
            "sector_size": self.miner_info.sector_size,
            "owner": self.miner_info.owner,
            "worker": self.miner_info.worker,
            "control": self.miner_info.control,
            "sends_messages": true,
            "sector_lifetime_days": self.policy.lifetime_days,
            "max_fee_per_sector": self.policy.max_fee_per_sector.to_string(),
        }))
    }
}
