//! A test-only Lotus full node on 127.0.0.1: an HTTP/1.1 server answering the JSON-RPC
//! methods the chain adapter uses, with Lotus's wire shapes (docs/chain.md#wire-basics).
//! Everything here is independent of sealkit's code:
//! - randomness is drawn as the miner actor does: BLAKE2b-256(i64_be(tag) ‖ digest ‖
//!   i64_be(epoch) ‖ CBOR(miner ID address));
//! - message parameters are decoded with the actors' own types (`fil_actor_miner_state`),
//!   the actor's rules are applied to them (docs/chain.md#validation-rules) when the message
//!   is pushed (Lotus estimates gas by executing it) and again when it lands, and seal proofs are
//!   verified with the reference (`filecoin_proofs::verify_seal`);
//! - `MpoolPushMessage` keeps signed messages by their `MsgUuid` as Lotus does: a second push
//!   with a UUID it has seen returns the first message;
//! - a pushed message is included at the next epoch and executed at the one after;
//!   `StateSearchMsg` finds it from then on;
//! - tests can make the chain move under the sender as a real one does: a fee replacement
//!   that lands under its own CID ([`Node::replace_every_push`]), a different call that takes
//!   a message's nonce ([`Node::displace_first_of`]), a reorg that takes messages back and
//!   includes them again later ([`Node::reorg`], [`Node::reorg_first_of`]); `StateSearchMsg`
//!   answers them as Lotus's `tipsetExecutedMessage` does;
//! - `GasEstimateMessageGas` checks a message as a push does and prices it at the test's
//!   gas figures ([`gas_of`]); the head's `ParentBaseFee` is [`BASE_FEE`].

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cid::Cid;
use fil_actor_miner_state::v18 as actor;
use serde_json::{json, Value};

/// What the node asks as a precommit deposit and as a sector's initial pledge (attoFIL).
pub const DEPOSIT: u128 = 1_000;
pub const PLEDGE: u128 = 5_000;
/// The worker address's balance (attoFIL) and the miner actor's available balance.
pub const WORKER_BALANCE: u128 = 7_000;
pub const MINER_AVAILABLE: u128 = 123;
/// The head's base fee and the premium the node estimates (attoFIL per gas unit).
pub const BASE_FEE: u128 = 100;
pub const PREMIUM: u128 = 50;

/// A message the node signed and pushed.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub uuid: String,
    pub cid: String,
    pub method: u64,
    pub params: Vec<u8>,
    pub value: u128,
    /// The epoch of the tipset that includes it; it is executed in the next one.
    pub included: i64,
    /// Set when it was executed: exit code and return value.
    pub outcome: Option<(i64, Vec<u8>)>,
    /// The CID of the fee replacement (the same call) that landed instead of it.
    pub landed_as: Option<String>,
    /// A different call from the sender took its nonce: it never executes.
    pub displaced: bool,
}

/// What messages change on the fake chain, kept from before each execution so that a
/// reorg can take it back.
#[derive(Clone, Debug)]
pub struct State {
    precommits: BTreeMap<u64, Precommit>,
    active: BTreeMap<u64, Cid>,
    updated: Vec<u64>,
}

/// A precommit on the fake chain.
#[derive(Clone, Debug)]
pub struct Precommit {
    pub info: actor::SectorPreCommitInfo,
    pub epoch: i64,
}

/// What the node answers; tests change it to make the node wrong in one way.
#[derive(Clone)]
pub struct Node {
    pub token: String,
    pub network: String,
    pub version: u64,
    pub head: i64,
    pub block_delay: u64,
    pub challenge_delay: i64,
    pub miner: String,
    pub sector_size: u64,
    pub allocated: Vec<u64>,
    /// Answer the full randomness methods with a value that is not the draw from the digest.
    pub lie_about_randomness: bool,
    /// Every method called, in order.
    pub calls: Vec<String>,
    /// When set, the head moves on by one epoch every `block_delay` seconds from then.
    pub clock: Option<Instant>,
    /// Verify seal proofs with the reference (needs its parameters); off: any proof bytes.
    pub verify_proofs: bool,
    /// Every message pushed, in order (one per UUID).
    pub pushed: Vec<Pushed>,
    pub precommits: BTreeMap<u64, Precommit>,
    /// Proven sectors and their current CommR.
    pub active: BTreeMap<u64, Cid>,
    /// Sectors whose data was updated (a snap deal); no second update.
    pub updated: Vec<u64>,
    /// Sectors the actor refuses to precommit (as for a bad sealed CID): a precommit batch
    /// holding one is refused whole.
    pub refuse_precommit: Vec<u64>,
    /// Every call's method and parameters, in order.
    pub requests: Vec<(String, Value)>,
    /// Methods answered with a fixed result (Lotus's documented examples) instead.
    pub canned: BTreeMap<String, Value>,
    /// Gas the node estimates for verifying one individual seal proof, and one aggregate.
    pub gas_per_proof: u64,
    pub gas_per_aggregate: u64,
    /// The next push of this method is never answered and never pushed: its connection
    /// hangs, as a node does when the sender dies in the middle of the call. Cleared then.
    pub hang_push_of: Option<u64>,
    /// Pushes left hanging.
    pub hung: usize,
    /// Every pushed message is replaced by a fee bump (the same call at the same nonce)
    /// before it lands, as `lotus mpool replace` does: it lands under the replacement's CID.
    pub replace_every_push: bool,
    /// The first message pushed with this method loses its nonce to a different call and
    /// never lands. Cleared then.
    pub displace_first_of: Option<u64>,
    /// The first message of this method to execute is taken back by a reorg two epochs
    /// later, before it is 5 epochs deep (the adapter's confidence), and included again two
    /// epochs after that. Cleared then.
    pub reorg_first_of: Option<u64>,
    /// The node is down (restarting): every call is answered HTTP 503.
    pub down: bool,
    /// The node goes down right after it answers the first ticket digest (the end of a
    /// ticket draw: the adapter checks the ticket against the digest).
    pub down_after_ticket: bool,
    /// Keep no messages by UUID, as Forest: a push repeated under a UUID signs a new message.
    pub forget_uuids: bool,
    /// The CIDs of the messages reorgs took back, in order.
    pub reorged: Vec<String>,
    /// The executions in the order they happened: the message's index in `pushed` and the
    /// state before it.
    pub executed: Vec<(usize, State)>,
}

impl Node {
    /// The head: `head`, plus the epochs the clock has run.
    pub fn head(&self) -> i64 {
        match self.clock {
            Some(t) => self.head + (t.elapsed().as_secs_f64() / self.block_delay as f64) as i64,
            None => self.head,
        }
    }

    fn miner_id(&self) -> u64 {
        self.miner[2..].parse().unwrap()
    }

    /// A reorg: the tipsets from epoch `from` on are replaced by a fork whose tipset at
    /// `again` includes their messages (back in the pool) again, in the order they were
    /// pushed. The state is as it was before the first of them executed; whatever executed
    /// after that executes again when due.
    pub fn reorg(&mut self, from: i64, again: i64) {
        let first = self
            .executed
            .iter()
            .position(|(i, _)| self.pushed[*i].included >= from);
        if let Some(k) = first {
            let state = self.executed[k].1.clone();
            (self.precommits, self.active, self.updated) =
                (state.precommits, state.active, state.updated);
            for (i, _) in self.executed.split_off(k) {
                self.pushed[i].outcome = None;
            }
        }
        for m in self.pushed.iter_mut().filter(|m| m.included >= from) {
            m.included = again;
            self.reorged.push(m.cid.clone());
        }
    }
}

impl Default for Node {
    fn default() -> Self {
        Node {
            token: "secret-token".into(),
            network: "localnet-test".into(),
            version: 25,
            head: 5000,
            block_delay: 4,
            challenge_delay: 10,
            miner: "t01000".into(),
            sector_size: 2048,
            allocated: Vec::new(),
            lie_about_randomness: false,
            calls: Vec::new(),
            clock: None,
            verify_proofs: false,
            pushed: Vec::new(),
            precommits: BTreeMap::new(),
            active: BTreeMap::new(),
            updated: Vec::new(),
            refuse_precommit: Vec::new(),
            requests: Vec::new(),
            canned: BTreeMap::new(),
            // Aggregating four proofs or more costs less, as after FIP-0100.
            gas_per_proof: 40_000_000,
            gas_per_aggregate: 100_000_000,
            hang_push_of: None,
            hung: 0,
            replace_every_push: false,
            displace_first_of: None,
            reorg_first_of: None,
            forget_uuids: false,
            down: false,
            down_after_ticket: false,
            reorged: Vec::new(),
            executed: Vec::new(),
        }
    }
}

pub struct FakeLotus {
    pub addr: String,
    pub node: Arc<Mutex<Node>>,
}

impl FakeLotus {
    pub fn start(node: Node) -> FakeLotus {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let node = Arc::new(Mutex::new(node));
        let n = node.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                let _ = s.set_nodelay(true);
                let n = n.clone();
                std::thread::spawn(move || serve(s, &n));
            }
        });
        FakeLotus { addr, node }
    }

    /// `FULLNODE_API_INFO` for this node, as `lotus auth api-info` prints it.
    pub fn api_info(&self) -> String {
        let (ip, port) = self.addr.split_once(':').unwrap();
        format!(
            "{}:/ip4/{ip}/tcp/{port}/http",
            self.node.lock().unwrap().token
        )
    }

    pub fn calls(&self) -> Vec<String> {
        self.node.lock().unwrap().calls.clone()
    }
}

fn serve(s: TcpStream, node: &Mutex<Node>) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        let mut auth = String::new();
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap(),
                "authorization" => auth = v.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let (status, out) = answer(node, &auth, &body);
        // One write: a response in pieces meets Nagle and delayed ACKs (40 ms a call).
        let resp = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{out}",
            out.len()
        );
        let _ = (&s).write_all(resp.as_bytes());
    }
}

fn answer(node: &Mutex<Node>, auth: &str, body: &[u8]) -> (&'static str, String) {
    let mut n = node.lock().unwrap();
    if n.down {
        return ("503 Service Unavailable", "the node is restarting".into());
    }
    if auth != format!("Bearer {}", n.token) {
        return ("401 Unauthorized", "{}".into());
    }
    let req: Value = serde_json::from_slice(body).unwrap();
    let id = req["id"].clone();
    let method = req["method"]
        .as_str()
        .unwrap()
        .strip_prefix("Filecoin.")
        .expect("methods are Filecoin.*")
        .to_string();
    n.calls.push(method.clone());
    n.requests.push((method.clone(), req["params"].clone()));
    if let Some(r) = n.canned.get(&method) {
        let result = r.clone();
        return (
            "200 OK",
            json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
        );
    }
    execute_due(&mut n);
    let p = &req["params"];
    let head = n.head();
    let result = match method.as_str() {
        "StateNetworkName" => json!(n.network),
        "StateNetworkVersion" => json!(n.version),
        "StateGetNetworkParams" => json!({
            "NetworkName": n.network, "BlockDelaySecs": n.block_delay,
            "ConsensusMinerMinPower": "2048", "PreCommitChallengeDelay": n.challenge_delay,
        }),
        "ChainHead" => json!({
            "Cids": [{"/": "bafy2bzacea"}],
            "Blocks": [{"Height": head, "ParentBaseFee": BASE_FEE.to_string()}],
            "Height": head,
        }),
        "GasEstimateMessageGas" => {
            let m = &p[0];
            assert_eq!(m["GasLimit"], json!(0), "{m}");
            if let Err(e) = check_message(&n, m, head) {
                return rpc_error(id, 1, &format!("estimating gas used: {e}"));
            }
            let mut est = m.clone();
            est["GasLimit"] = json!(gas_of(&n, m));
            est["GasPremium"] = json!(PREMIUM.to_string());
            est["GasFeeCap"] = json!((BASE_FEE * 2 + PREMIUM).to_string());
            est
        }
        "StateMinerInfo" => {
            if p[0] != json!(n.miner) {
                return rpc_error(id, 1, &format!("actor not found: {}", p[0]));
            }
            json!({
                "Owner": "t01001", "Worker": "t01002", "NewWorker": "<empty>",
                "ControlAddresses": ["t01003"], "PeerId": null, "Multiaddrs": null,
                "WindowPoStProofType": 5, "SectorSize": n.sector_size,
                "WindowPoStPartitionSectors": 2, "Beneficiary": "t01001",
            })
        }
        "StateMinerSectorAllocated" => {
            assert_eq!(p[0], json!(n.miner));
            let s = p[1].as_u64().unwrap();
            json!(n.allocated.contains(&s) || allocated(&n, s))
        }
        "StateMinerPreCommitDepositForPower" => {
            assert_eq!(p[0], json!(n.miner));
            assert!(p[1]["SealedCID"]["/"].is_string(), "{p}");
            json!(DEPOSIT.to_string())
        }
        "WalletBalance" => {
            assert_eq!(*p, json!(["t01002"]), "the worker pays");
            json!(WORKER_BALANCE.to_string())
        }
        "StateMinerAvailableBalance" => {
            assert_eq!(*p, json!([n.miner, null]));
            json!(MINER_AVAILABLE.to_string())
        }
        "StateMinerInitialPledgeForSector" => {
            assert!(p[0].as_i64().unwrap() > 0, "a sector duration: {p}");
            assert_eq!(p[1].as_u64(), Some(n.sector_size));
            json!(PLEDGE.to_string())
        }
        "StateSectorPreCommitInfo" => {
            assert_eq!(p[0], json!(n.miner));
            match n.precommits.get(&p[1].as_u64().unwrap()) {
                None => Value::Null,
                Some(pc) => json!({
                    "Info": {
                        "SealProof": i64::from(pc.info.seal_proof),
                        "SectorNumber": pc.info.sector_number,
                        "SealedCID": {"/": pc.info.sealed_cid.to_string()},
                        "SealRandEpoch": pc.info.seal_rand_epoch,
                        "DealIDs": null,
                        "Expiration": pc.info.expiration,
                        "UnsealedCid": pc.info.unsealed_cid.0.map(|c| json!({"/": c.to_string()})),
                    },
                    "PreCommitDeposit": DEPOSIT.to_string(),
                    "PreCommitEpoch": pc.epoch,
                }),
            }
        }
        "StateMinerProvingDeadline" => {
            assert_eq!(*p, json!([n.miner, null]));
            let index = proving_deadline_index(head);
            let start = head - head.rem_euclid(2880);
            let open = start + index as i64 * 60;
            json!({
                "CurrentEpoch": head, "PeriodStart": start, "Index": index, "Open": open,
                "Close": open + 60, "Challenge": open - 20, "FaultCutoff": open - 70,
                "WPoStPeriodDeadlines": 48, "WPoStProvingPeriod": 2880,
                "WPoStChallengeWindow": 60, "WPoStChallengeLookback": 20,
                "FaultDeclarationCutoff": 70,
            })
        }
        "StateSectorPartition" => {
            let s = p[1].as_u64().unwrap();
            if !n.active.contains_key(&s) {
                return rpc_error(id, 1, &format!("sector {s} not found in any partition"));
            }
            json!({"Deadline": s % 48, "Partition": 0})
        }
        "MpoolPushMessage"
            if n.hang_push_of.is_some() && n.hang_push_of == p[0]["Method"].as_u64() =>
        {
            n.hang_push_of = None;
            n.hung += 1;
            drop(n);
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        "MpoolPushMessage" => {
            let (m, spec) = (&p[0], &p[1]);
            let uuid = spec["MsgUuid"].as_str().unwrap_or_default().to_string();
            assert!(spec["MaxFee"].as_str().is_some(), "MaxFee: {spec}");
            let kept = !n.forget_uuids && !uuid.is_empty();
            if let Some(done) = n.pushed.iter().find(|x| kept && x.uuid == uuid) {
                signed(m, &done.cid)
            } else {
                // Lotus estimates gas (executing the message) when GasLimit is 0.
                if let Err(e) = check_message(&n, m, head) {
                    return rpc_error(id, 1, &format!("mpool push: estimating gas: {e}"));
                }
                let cid = format!("bafy2bzacefakemessage{}", n.pushed.len());
                let method = m["Method"].as_u64().unwrap();
                let displaced = n.displace_first_of == Some(method);
                let landed_as = n.replace_every_push.then(|| format!("{cid}replacement"));
                if displaced {
                    n.displace_first_of = None;
                }
                n.pushed.push(Pushed {
                    uuid,
                    cid: cid.clone(),
                    method,
                    params: unb64(m["Params"].as_str().unwrap()),
                    value: m["Value"].as_str().unwrap().parse().unwrap(),
                    included: head + 1,
                    outcome: None,
                    landed_as,
                    displaced,
                });
                signed(m, &cid)
            }
        }
        "StateSearchMsg" => {
            let want = p[1]["/"].as_str().unwrap();
            let allow_replaced = p[3].as_bool().unwrap();
            let found = n
                .pushed
                .iter()
                .find(|x| x.cid == want || x.landed_as.as_deref() == Some(want));
            // As Lotus's tipsetExecutedMessage, once the tipset holding the sender's message
            // at that nonce executed.
            match found {
                Some(x) if x.displaced && head > x.included => {
                    return rpc_error(id, 1, &format!(
                        "found message with equal nonce as the one we are looking for that is NOT a valid replacement message (F:{want} n 7, TS: bafy2bzaceother n7)"
                    ))
                }
                Some(x) if x.outcome.is_some() && x.landed_as.is_some() && x.cid == want && !allow_replaced => {
                    return rpc_error(id, 1, &format!(
                        "found message with equal nonce as the one we are looking for (F:{want} n 7, TS: {} n7)",
                        x.landed_as.as_deref().unwrap()
                    ))
                }
                Some(Pushed {
                    cid,
                    landed_as,
                    included,
                    outcome: Some((code, ret)),
                    ..
                }) => json!({
                    "Message": {"/": landed_as.as_ref().unwrap_or(cid)},
                    "Receipt": {"ExitCode": code, "Return": b64(ret), "GasUsed": 1_000_000, "EventsRoot": null},
                    "ReturnDec": null,
                    "TipSet": [{"/": "bafy2bzacetipset"}],
                    "Height": included + 1,
                }),
                _ => Value::Null,
            }
        }
        "StateGetRandomnessDigestFromTickets" | "StateGetRandomnessDigestFromBeacon" => {
            let epoch = p[0].as_i64().unwrap();
            if method == "StateGetRandomnessDigestFromTickets" && n.down_after_ticket {
                n.down_after_ticket = false;
                n.down = true;
            }
            b64(&digest(&method, epoch))
        }
        "StateGetRandomnessFromTickets" | "StateGetRandomnessFromBeacon" => {
            let tag = p[0].as_i64().unwrap();
            let epoch = p[1].as_i64().unwrap();
            let entropy = unb64(p[2].as_str().unwrap());
            let kind = method.replace("From", "DigestFrom");
            let mut r = draw(tag, &digest(&kind, epoch), epoch, &entropy);
            if n.lie_about_randomness {
                r[0] ^= 1;
            }

            b64(&r)
        }
        m => return rpc_error(id, -32601, &format!("method 'Filecoin.{m}' not found")),
    };
    (
        "200 OK",
        json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
    )
}

/// The WindowPoSt deadline open at `head` (proving periods of 2880 epochs from epoch 0,
/// 48 deadlines of 60 epochs).
fn proving_deadline_index(head: i64) -> u64 {
    (head.rem_euclid(2880) / 60) as u64
}

/// The sector numbers a pushed precommit or prove-commit names.
pub fn sectors_of(m: &Pushed) -> Vec<u64> {
    match m.method {
        28 => fvm_ipld_encoding::from_slice::<actor::PreCommitSectorBatchParams2>(&m.params)
            .unwrap()
            .sectors
            .iter()
            .map(|s| s.sector_number)
            .collect(),
        34 => fvm_ipld_encoding::from_slice::<actor::ProveCommitSectors3Params>(&m.params)
            .unwrap()
            .sector_activations
            .iter()
            .map(|a| a.sector_number)
            .collect(),
        36 => fvm_ipld_encoding::from_slice::<actor::ProveCommitSectorsNIParams>(&m.params)
            .unwrap()
            .sectors
            .iter()
            .map(|s| s.sector_number)
            .collect(),
        _ => Vec::new(),
    }
}

/// A SignedMessage answer.
fn signed(m: &Value, cid: &str) -> Value {
    json!({"Message": m, "Signature": {"Type": 1, "Data": b64(&[7; 65])}, "CID": {"/": cid}})
}

fn allocated(n: &Node, s: u64) -> bool {
    n.precommits.contains_key(&s) || n.active.contains_key(&s)
}

/// The actor's checks for a message at `head` (docs/chain.md#validation-rules), on the
/// chain as it is; its error names the rule broken.
/// The gas the node estimates for a message: a fixed part, a part per sector, and for a
/// prove-commit each individual proof or the aggregate at the node's prices.
fn gas_of(n: &Node, m: &Value) -> u64 {
    let params = unb64(m["Params"].as_str().unwrap());
    match m["Method"].as_u64().unwrap() {
        34 => {
            let p: actor::ProveCommitSectors3Params =
                fvm_ipld_encoding::from_slice(&params).unwrap();
            let proofs = if p.aggregate_proof.is_empty() {
                n.gas_per_proof * p.sector_proofs.len() as u64
            } else {
                n.gas_per_aggregate
            };
            100_000_000 + 60_000_000 * p.sector_activations.len() as u64 + proofs
        }
        _ => 50_000_000,
    }
}

fn check_message(n: &Node, m: &Value, head: i64) -> Result<(), String> {
    if m["To"] != json!(n.miner) || m["From"] != json!("t01002") {
        return Err(format!("wrong To/From: {m}"));
    }
    let params = unb64(m["Params"].as_str().unwrap());
    let value: u128 = m["Value"].as_str().unwrap().parse().unwrap();
    match m["Method"].as_u64().unwrap() {
        28 => {
            let p: actor::PreCommitSectorBatchParams2 =
                fvm_ipld_encoding::from_slice(&params).map_err(|e| format!("params: {e}"))?;
            if p.sectors.is_empty() {
                return Err("empty batch".into());
            }
            let mut seen = Vec::new();
            for s in &p.sectors {
                let n_ = s.sector_number;
                if seen.contains(&n_) || allocated(n, n_) || n.allocated.contains(&n_) {
                    return Err(format!("sector {n_} already allocated (exit 16)"));
                }
                seen.push(n_);
                if !(s.seal_rand_epoch < head && s.seal_rand_epoch >= head - 3780) {
                    return Err(format!(
                        "seal_rand_epoch {} out of range at {head}",
                        s.seal_rand_epoch
                    ));
                }
                if s.sealed_cid.codec() != 0xf102 || s.sealed_cid.hash().code() != 0xb401 {
                    return Err("sealed CID prefix is not fil-commitment-sealed/poseidon".into());
                }
                if n.refuse_precommit.contains(&n_) {
                    return Err(format!("sector {n_}: invalid sealed CID (exit 16)"));
                }
                if !s.deal_ids.is_empty() {
                    return Err("deal ids in a precommit".into());
                }
                if s.expiration < head + 180 * 2880 {
                    return Err(format!("expiration {} too soon", s.expiration));
                }
            }
            if value < DEPOSIT * p.sectors.len() as u128 {
                return Err(format!(
                    "insufficient funds for the deposit: {value} (exit 6)"
                ));
            }
        }
        34 => {
            let p: actor::ProveCommitSectors3Params =
                fvm_ipld_encoding::from_slice(&params).map_err(|e| format!("params: {e}"))?;
            if p.sector_proofs.is_empty() == p.aggregate_proof.is_empty() {
                return Err("exactly one of sector_proofs and aggregate_proof".into());
            }
            if p.aggregate_proof.is_empty() && p.aggregate_proof_type.is_some() {
                return Err("aggregate type without an aggregate".into());
            }
            if !p.aggregate_proof.is_empty() {
                let count = p.sector_activations.len();
                if !(4..=819).contains(&count) {
                    return Err(format!("an aggregate of {count} sectors (exit 16)"));
                }
                if p.aggregate_proof.len() > 81_960 {
                    return Err("aggregate proof too large (exit 16)".into());
                }
                if p.aggregate_proof_type
                    != Some(fvm_shared::sector::RegisteredAggregateProof::SnarkPackV2)
                {
                    return Err("aggregate type is not SnarkPackV2 (exit 16)".into());
                }
            } else if p.sector_proofs.len() != p.sector_activations.len() {
                return Err("one proof per activation (exit 16)".into());
            }
            let mut owed = 0u128;
            for a in &p.sector_activations {
                let Some(pc) = n.precommits.get(&a.sector_number) else {
                    return Err(format!(
                        "sector {} is not precommitted (exit 16)",
                        a.sector_number
                    ));
                };
                if head <= pc.epoch + n.challenge_delay {
                    return Err(format!("sector {}: too early to prove", a.sector_number));
                }
                owed += PLEDGE - DEPOSIT;
            }
            if value < owed {
                return Err(format!(
                    "insufficient funds for the pledge: {value} < {owed} (exit 6)"
                ));
            }
        }
        36 => {
            let p: actor::ProveCommitSectorsNIParams =
                fvm_ipld_encoding::from_slice(&params).map_err(|e| format!("params: {e}"))?;
            if !(1..=65).contains(&p.sectors.len()) {
                return Err(format!(
                    "an NI aggregate of {} sectors (exit 16)",
                    p.sectors.len()
                ));
            }
            if p.aggregate_proof_type != fvm_shared::sector::RegisteredAggregateProof::SnarkPackV2 {
                return Err("aggregate type is not SnarkPackV2 (exit 16)".into());
            }
            let current = proving_deadline_index(head);
            if p.proving_deadline >= 48
                || p.proving_deadline == current
                || p.proving_deadline == (current + 1) % 48
            {
                return Err(format!(
                    "proving deadline {} at deadline {current} (exit 16)",
                    p.proving_deadline
                ));
            }
            for s in &p.sectors {
                if s.sealer_id != n.miner_id() || s.sealing_number != s.sector_number {
                    return Err(format!(
                        "sector {}: sealer or sealing number (exit 16)",
                        s.sector_number
                    ));
                }
                if allocated(n, s.sector_number) || n.allocated.contains(&s.sector_number) {
                    return Err(format!("sector {} is allocated (exit 16)", s.sector_number));
                }
                if s.seal_rand_epoch < head - 180 * 2880 || s.seal_rand_epoch >= head {
                    return Err(format!(
                        "sector {}: ticket epoch (exit 16)",
                        s.sector_number
                    ));
                }
            }
            if value < PLEDGE * p.sectors.len() as u128 {
                return Err(format!(
                    "insufficient funds for the pledge: {value} (exit 6)"
                ));
            }
        }
        35 => {
            let p: actor::ProveReplicaUpdates3Params =
                fvm_ipld_encoding::from_slice(&params).map_err(|e| format!("params: {e}"))?;
            for u in &p.sector_updates {
                if !n.active.contains_key(&u.sector) || n.updated.contains(&u.sector) {
                    return Err(format!("sector {} cannot be updated", u.sector));
                }
            }
        }
        other => return Err(format!("unexpected method {other}")),
    }
    Ok(())
}

/// Executes every pushed message whose execution epoch has come.
fn execute_due(n: &mut Node) {
    let head = n.head();
    for i in 0..n.pushed.len() {
        let m = n.pushed[i].clone();
        if m.outcome.is_some() || m.displaced || head < m.included + 1 {
            continue;
        }
        let before = State {
            precommits: n.precommits.clone(),
            active: n.active.clone(),
            updated: n.updated.clone(),
        };
        n.executed.push((i, before));
        let outcome = execute(n, &m);
        n.pushed[i].outcome = Some(outcome);
    }
    let shallow = n.pushed.iter().find(|m| {
        Some(m.method) == n.reorg_first_of && m.outcome.is_some() && head >= m.included + 3
    });
    if let Some(from) = shallow.map(|m| m.included) {
        n.reorg_first_of = None;
        n.reorg(from, head + 2);
    }
}

fn execute(n: &mut Node, m: &Pushed) -> (i64, Vec<u8>) {
    let msg = json!({
        "To": n.miner, "From": "t01002", "Value": m.value.to_string(),
        "Method": m.method, "Params": b64(&m.params),
    });
    // Checked again as the chain is now (a conflicting message may have landed first).
    if check_message(n, &msg, m.included).is_err() {
        return (16, Vec::new());
    }
    match m.method {
        28 => {
            let p: actor::PreCommitSectorBatchParams2 =
                fvm_ipld_encoding::from_slice(&m.params).unwrap();
            for s in p.sectors {
                n.precommits.insert(
                    s.sector_number,
                    Precommit {
                        info: s,
                        epoch: m.included,
                    },
                );
            }
            (0, Vec::new())
        }
        34 => {
            let p: actor::ProveCommitSectors3Params =
                fvm_ipld_encoding::from_slice(&m.params).unwrap();
            let mut fails = Vec::new();
            let precommits: Vec<Precommit> = p
                .sector_activations
                .iter()
                .map(|a| n.precommits[&a.sector_number].clone())
                .collect();
            // An aggregate proves all of its sectors or none: the whole message fails.
            if !p.aggregate_proof.is_empty()
                && n.verify_proofs
                && !verify_aggregate(n, &precommits, &p.aggregate_proof)
            {
                return (16, Vec::new());
            }
            for (i, a) in p.sector_activations.iter().enumerate() {
                let pc = precommits[i].clone();
                let ok = !n.verify_proofs
                    || !p.aggregate_proof.is_empty()
                    || verify(n, &pc, &p.sector_proofs[i]);
                if ok {
                    n.precommits.remove(&a.sector_number);
                    n.active.insert(a.sector_number, pc.info.sealed_cid);
                } else {
                    fails.push(fil_actors_shared::v18::FailCode {
                        idx: i as u32,
                        code: fvm_shared::error::ExitCode::new(16),
                    });
                }
            }
            let ret = fil_actors_shared::v18::BatchReturn {
                success_count: (p.sector_activations.len() - fails.len()) as u32,
                fail_codes: fails,
            };
            (0, fvm_ipld_encoding::to_vec(&ret).unwrap())
        }
        36 => {
            let p: actor::ProveCommitSectorsNIParams =
                fvm_ipld_encoding::from_slice(&m.params).unwrap();
            if n.verify_proofs {
                // The actor's NI verify info: the interactive randomness is [1; 32].
                let all: Vec<(u64, SealInputs)> = p
                    .sectors
                    .iter()
                    .map(|s| {
                        let proof = i64::from(p.seal_proof_type);
                        let i = inputs_of(n, &s.sealed_cid, proof, s.seal_rand_epoch, [1; 32]);
                        (s.sector_number, i)
                    })
                    .collect();
                if !verify_aggregate_of(&all, &p.aggregate_proof) {
                    return (16, Vec::new());
                }
            }
            for s in &p.sectors {
                n.active.insert(s.sector_number, s.sealed_cid);
            }
            let ret = fil_actors_shared::v18::BatchReturn {
                success_count: p.sectors.len() as u32,
                fail_codes: Vec::new(),
            };
            (0, fvm_ipld_encoding::to_vec(&ret).unwrap())
        }
        35 => {
            let p: actor::ProveReplicaUpdates3Params =
                fvm_ipld_encoding::from_slice(&m.params).unwrap();
            let mut fails = Vec::new();
            for (i, u) in p.sector_updates.iter().enumerate() {
                if n.verify_proofs
                    && !verify_update(n, i64::from(p.update_proofs_type), u, &p.sector_proofs[i])
                {
                    fails.push(fil_actors_shared::v18::FailCode {
                        idx: i as u32,
                        code: fvm_shared::error::ExitCode::new(16),
                    });
                    continue;
                }
                n.active.insert(u.sector, u.new_sealed_cid);
                n.updated.push(u.sector);
            }
            let ret = fil_actors_shared::v18::BatchReturn {
                success_count: (p.sector_updates.len() - fails.len()) as u32,
                fail_codes: fails,
            };
            (0, fvm_ipld_encoding::to_vec(&ret).unwrap())
        }
        _ => (16, Vec::new()),
    }
}

/// The public values the actor hands the verifier for one precommitted sector: (proof
/// type, prover id, comm_r, comm_d, ticket, seed).
struct SealInputs {
    porep: filecoin_proofs::PoRepConfig,
    prover: [u8; 32],
    comm_r: [u8; 32],
    comm_d: [u8; 32],
    ticket: [u8; 32],
    seed: [u8; 32],
}

/// The reference verifier on a prove-commit: the ticket and seed as this node draws them,
/// the prover id from the miner's ID address payload (Lotus's `toProverID`), the zero
/// CommD of a committed-capacity sector.
fn verify(n: &Node, pc: &Precommit, proof: &fvm_ipld_encoding::RawBytes) -> bool {
    let i = seal_inputs(n, pc);
    filecoin_proofs::verify_seal::<filecoin_proofs::SectorShapeBase>(
        &i.porep,
        i.comm_r,
        i.comm_d,
        i.prover,
        storage_proofs_core::sector::SectorId::from(pc.info.sector_number),
        i.ticket,
        i.seed,
        proof,
    )
    .unwrap_or(false)
}

/// The reference's verifier on an empty-sector update, with the public values the actor
/// gives it: the sector's sealed CID on chain before the update, the new one, and the
/// unsealed CID it computes from the piece manifests (zero padding between and after them).
fn verify_update(
    n: &Node,
    update_proof_type: i64,
    u: &actor::SectorUpdateManifest,
    proof: &[u8],
) -> bool {
    use filecoin_proofs::{PieceInfo, SectorSize, UnpaddedBytesAmount};
    let digest = |c: &Cid| -> [u8; 32] { c.hash().digest().try_into().unwrap() };
    let Some(old) = n.active.get(&u.sector) else {
        return false;
    };
    let pieces: Result<Vec<PieceInfo>, _> = u
        .pieces
        .iter()
        .map(|p| PieceInfo::new(digest(&p.cid), UnpaddedBytesAmount(p.size.0 / 128 * 127)))
        .collect();
    // A malformed manifest is refused as the actor refuses it, not a panic in the node.
    let Ok(pieces) = pieces else {
        return false;
    };
    let Ok(comm_d) = filecoin_proofs::compute_comm_d(SectorSize(n.sector_size), &pieces) else {
        return false;
    };
    // Update proof types 0..=4 are 2KiB..64GiB, as the V1_1 seal proofs 5..=9.
    let proof_type = sealkit::sector::proof::SealProof::from_id(update_proof_type as u64 + 5);
    let Ok(proof_type) = proof_type else {
        return false;
    };
    filecoin_proofs::verify_empty_sector_update_proof::<filecoin_proofs::SectorShapeBase>(
        &super::sector::porep_config(proof_type),
        proof,
        digest(old),
        digest(&u.new_sealed_cid),
        comm_d,
    )
    .unwrap_or(false)
}

/// The reference's aggregate verifier over the message's sectors in activation order, as
/// the actor calls it (SnarkPack v2).
fn verify_aggregate(n: &Node, pcs: &[Precommit], proof: &[u8]) -> bool {
    let all: Vec<(u64, SealInputs)> = pcs
        .iter()
        .map(|pc| (pc.info.sector_number, seal_inputs(n, pc)))
        .collect();
    verify_aggregate_of(&all, proof)
}

/// The reference's SnarkPack v2 verifier over `(sector number, inputs)` in message order.
fn verify_aggregate_of(all: &[(u64, SealInputs)], proof: &[u8]) -> bool {
    use filecoin_proofs::SectorShapeBase;
    let mut public = Vec::new();
    for (number, i) in all {
        let Ok(inputs) = filecoin_proofs::get_seal_inputs::<SectorShapeBase>(
            &i.porep,
            i.comm_r,
            i.comm_d,
            i.prover,
            storage_proofs_core::sector::SectorId::from(*number),
            i.ticket,
            i.seed,
        ) else {
            return false;
        };
        public.extend(inputs);
    }
    let comm_rs: Vec<[u8; 32]> = all.iter().map(|(_, i)| i.comm_r).collect();
    let seeds: Vec<[u8; 32]> = all.iter().map(|(_, i)| i.seed).collect();
    filecoin_proofs::verify_aggregate_seal_commit_proofs::<SectorShapeBase>(
        &all[0].1.porep,
        proof.to_vec(),
        &comm_rs,
        &seeds,
        public,
        bellperson::groth16::aggregate::AggregateVersion::V2,
    )
    .unwrap_or(false)
}

fn seal_inputs(n: &Node, pc: &Precommit) -> SealInputs {
    let seed = expected(6, pc.epoch + n.challenge_delay, n.miner_id());
    inputs_of(
        n,
        &pc.info.sealed_cid,
        i64::from(pc.info.seal_proof),
        pc.info.seal_rand_epoch,
        seed,
    )
}

/// The verifier's inputs for a sector of `seal_proof` sealed to `sealed_cid` with the ticket
/// of `ticket_epoch`, proven with `seed`.
fn inputs_of(
    n: &Node,
    sealed_cid: &Cid,
    seal_proof: i64,
    ticket_epoch: i64,
    seed: [u8; 32],
) -> SealInputs {
    use filecoin_proofs::SectorSize;
    let miner = n.miner_id();
    let proof_type = sealkit::sector::proof::SealProof::from_id(seal_proof as u64).unwrap();
    let mut prover = [0u8; 32];
    let mut v = miner;
    let mut i = 0;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        prover[i] = if v == 0 { b } else { b | 0x80 };
        i += 1;
        if v == 0 {
            break;
        }
    }
    let digest = sealed_cid.hash().digest();
    let comm_r: [u8; 32] = digest.try_into().unwrap();
    let comm_d = filecoin_proofs::compute_comm_d(SectorSize(n.sector_size), &[]).unwrap();
    SealInputs {
        porep: super::sector::porep_config(proof_type),
        prover,
        comm_r,
        comm_d,
        ticket: expected(5, ticket_epoch, miner),
        seed,
    }
}

fn rpc_error(id: Value, code: i64, msg: &str) -> (&'static str, String) {
    (
        "200 OK",
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": msg}}).to_string(),
    )
}

/// A digest per (kind, epoch): stands for the tipset's ticket or the drand entry.
fn digest(kind: &str, epoch: i64) -> [u8; 32] {
    let h = blake2b_simd::Params::new()
        .hash_length(32)
        .to_state()
        .update(kind.as_bytes())
        .update(&epoch.to_le_bytes())
        .finalize();
    h.as_bytes().try_into().unwrap()
}

/// The actor's draw (builtin-actors `draw_randomness`).
pub fn draw(tag: i64, digest: &[u8; 32], epoch: i64, entropy: &[u8]) -> [u8; 32] {
    let h = blake2b_simd::Params::new()
        .hash_length(32)
        .to_state()
        .update(&tag.to_be_bytes())
        .update(digest)
        .update(&epoch.to_be_bytes())
        .update(entropy)
        .finalize();
    h.as_bytes().try_into().unwrap()
}

/// The randomness the node gives miner f0`id` (CBOR of the ID address: a byte string of
/// 0x00 ‖ uvarint(id)), for tests to compare with.
pub fn expected(tag: i64, epoch: i64, id: u64) -> [u8; 32] {
    let mut addr = vec![0u8];
    let mut v = id;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            addr.push(b);
            break;
        }
        addr.push(b | 0x80);
    }
    let mut cbor = vec![0x40 | addr.len() as u8];
    cbor.extend_from_slice(&addr);
    let kind = if tag == 5 {
        "StateGetRandomnessDigestFromTickets"
    } else {
        "StateGetRandomnessDigestFromBeacon"
    };
    draw(tag, &digest(kind, epoch), epoch, &cbor)
}

fn b64(b: &[u8]) -> Value {
    use base64::Engine;
    json!(base64::engine::general_purpose::STANDARD.encode(b))
}

pub fn unb64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
