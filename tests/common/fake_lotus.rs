//! A test-only Lotus full node on 127.0.0.1: an HTTP/1.1 server answering the JSON-RPC
//! methods the chain adapter reads, with Lotus's wire shapes (docs/chain.md#wire-basics).
//! Its randomness is drawn here, independently of sealkit's code, as the miner actor does:
//! BLAKE2b-256(i64_be(tag) ‖ digest ‖ i64_be(epoch) ‖ CBOR(miner ID address)).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

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
        let mut w = &s;
        let _ = write!(
            w,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{out}",
            out.len()
        );
    }
}

fn answer(node: &Mutex<Node>, auth: &str, body: &[u8]) -> (&'static str, String) {
    let mut n = node.lock().unwrap();
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
    let p = &req["params"];
    let result = match method.as_str() {
        "StateNetworkName" => json!(n.network),
        "StateNetworkVersion" => json!(n.version),
        "StateGetNetworkParams" => json!({
            "NetworkName": n.network, "BlockDelaySecs": n.block_delay,
            "ConsensusMinerMinPower": "2048", "PreCommitChallengeDelay": n.challenge_delay,
        }),
        "ChainHead" => json!({"Cids": [{"/": "bafy2bzacea"}], "Blocks": [], "Height": n.head}),
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
            json!(n.allocated.contains(&p[1].as_u64().unwrap()))
        }
        "StateGetRandomnessDigestFromTickets" | "StateGetRandomnessDigestFromBeacon" => {
            let epoch = p[0].as_i64().unwrap();
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

fn unb64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
