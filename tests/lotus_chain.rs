//! The Lotus chain adapter against a fake full node on loopback (tests/common/fake_lotus.rs):
//! the real HTTP client and JSON shapes, the network and miner checks at connection, ticket
//! and seed randomness checked against the node's digest, and sector numbers the chain has
//! allocated never given out. Nothing here reaches a real network (see README).

mod common;

use std::path::{Path, PathBuf};

use common::fake_lotus::{expected, FakeLotus, Node};
use common::sched::{ok, sched};
use sealkit::sched::chain::{Chain, Domain};
use sealkit::sched::lotus::api_info::ApiInfo;
use sealkit::sched::lotus::LotusChain;
use sealkit::sector::proof::SealProof;

fn proof() -> SealProof {
    SealProof::from_name("StackedDrg2KiBV1_1").unwrap()
}

fn connect(node: &FakeLotus) -> anyhow::Result<LotusChain> {
    LotusChain::connect(ApiInfo::parse(&node.api_info())?, None, 1000, proof(), "")
}

/// A repository whose chain is `node`.
fn repo_on(dir: &Path, node: &FakeLotus, record: Option<&Path>) -> PathBuf {
    let repo = dir.join("r");
    ok(sched(&repo, &["init"]));
    let cfg = repo.join("config.toml");
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(&cfg).unwrap().parse().unwrap();
    doc["chain"]["kind"] = toml_edit::value("lotus");
    doc["chain"]["api_info"] = toml_edit::value(node.api_info());
    if let Some(r) = record {
        doc["chain"]["record"] = toml_edit::value(r.display().to_string());
    }
    let text = doc.to_string();
    std::fs::write(&cfg, text).unwrap();
    repo
}

fn err(out: std::process::Output) -> String {
    assert!(!out.status.success(), "succeeded: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn randomness_is_the_actors_draw_and_a_lying_node_is_caught() {
    let node = FakeLotus::start(Node::default());
    let c = connect(&node).unwrap();
    assert_eq!(c.network().name, "localnet-test");
    assert_eq!(c.seed_delay(), 10);
    assert_eq!(c.epoch_secs(), 4.0);
    assert_eq!(c.head().unwrap(), 5000);
    // Tag 5 from the tickets, tag 6 from the beacon, CBOR(f01000) as entropy.
    assert_eq!(
        c.randomness(Domain::Ticket, 4100, 1000).unwrap(),
        expected(5, 4100, 1000)
    );
    assert_eq!(
        c.randomness(Domain::Seed, 4990, 1000).unwrap(),
        expected(6, 4990, 1000)
    );
    assert_ne!(expected(5, 4100, 1000), expected(5, 4100, 1001));
    node.node.lock().unwrap().lie_about_randomness = true;
    let e = c.randomness(Domain::Ticket, 4100, 1000).unwrap_err();
    assert!(
        format!("{e:#}")
            .contains("does not match the draw from StateGetRandomnessDigestFromTickets"),
        "{e:#}"
    );
}

#[test]
fn connection_checks_network_version_miner_and_sector_size() {
    let e = |n: Node, net: &str| {
        let node = FakeLotus::start(n);
        let r = LotusChain::connect(
            ApiInfo::parse(&node.api_info()).unwrap(),
            None,
            1000,
            proof(),
            net,
        );
        format!("{:#}", r.err().expect("connected"))
    };
    let msg = e(Node::default(), "calibrationnet");
    assert!(
        msg.contains("is on network \"localnet-test\", but chain.network is \"calibrationnet\""),
        "{msg}"
    );
    let msg = e(
        Node {
            version: 21,
            ..Node::default()
        },
        "",
    );
    assert!(msg.contains("at version 21, older than 22"), "{msg}");
    let msg = e(
        Node {
            sector_size: 8 << 20,
            ..Node::default()
        },
        "",
    );
    assert!(
        msg.contains(
            "miner t01000 seals 8388608-byte sectors, but sealing.seal_proof is StackedDrg2KiBV1_1"
        ),
        "{msg}"
    );
    let msg = e(
        Node {
            miner: "t01001".into(),
            ..Node::default()
        },
        "",
    );
    assert!(
        msg.contains("miner t01000 (sealing.miner)") && msg.contains("actor not found"),
        "{msg}"
    );
    // A wrong token is refused by the node, and said so.
    let node = FakeLotus::start(Node::default());
    let bad = node.api_info().replacen("secret-token", "wrong", 1);
    let r = LotusChain::connect(ApiInfo::parse(&bad).unwrap(), None, 1000, proof(), "");
    let msg = format!("{:#}", r.err().unwrap());
    assert!(msg.contains("refused the token (HTTP 401)"), "{msg}");
    // Nobody listening.
    let r = LotusChain::connect(
        ApiInfo::parse("t:/ip4/127.0.0.1/tcp/1/http").unwrap(),
        None,
        1000,
        proof(),
        "",
    );
    let msg = format!("{:#}", r.err().unwrap());
    assert!(
        msg.contains("cannot reach the node at http://127.0.0.1:1/rpc/v1"),
        "{msg}"
    );
}

#[test]
fn chain_status_shows_the_node_and_the_transcript_records_it() {
    let node = FakeLotus::start(Node::default());
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rpc.jsonl");
    let repo = repo_on(dir.path(), &node, Some(&record));
    let v = ok(sched(&repo, &["chain", "status", "--json"]));
    assert_eq!(v["kind"], "lotus");
    assert_eq!(v["network"], "localnet-test");
    assert_eq!(v["network_version"], 25);
    assert_eq!(v["head"], 5000);
    assert_eq!(v["miner"], "t01000");
    assert_eq!(v["worker"], "t01002");
    assert_eq!(v["sector_size"], 2048);
    assert_eq!(v["challenge_delay"], 10);
    assert_eq!(v["sends_messages"], false);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let methods: Vec<&str> = lines
        .iter()
        .map(|l| l["request"]["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        [
            "Filecoin.StateNetworkName",
            "Filecoin.StateNetworkVersion",
            "Filecoin.StateGetNetworkParams",
            "Filecoin.StateMinerInfo",
            "Filecoin.ChainHead"
        ]
    );
    assert_eq!(
        lines[3]["request"]["params"],
        serde_json::json!(["t01000", null])
    );
    assert_eq!(lines[4]["response"]["result"]["Height"], 5000);
    // The simulated chain answers the same command.
    let sim = tempfile::tempdir().unwrap();
    let r = sim.path().join("r");
    ok(sched(&r, &["init"]));
    let v = ok(sched(&r, &["chain", "status", "--json"]));
    assert_eq!(
        (v["kind"].as_str(), v["challenge_delay"].as_i64()),
        (Some("sim"), Some(150))
    );
}

#[test]
fn pledged_sectors_skip_numbers_the_chain_has_allocated() {
    let node = FakeLotus::start(Node {
        allocated: vec![1, 2, 4],
        ..Node::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_on(dir.path(), &node, None);
    let v = ok(sched(&repo, &["sectors", "pledge", "--count", "2"]));
    let numbers: Vec<u64> = v["pledged"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 5]);
    let asked = node
        .calls()
        .iter()
        .filter(|m| *m == "StateMinerSectorAllocated")
        .count();
    assert_eq!(asked, 5, "numbers 1 to 5 were each asked once");
    let piece = dir.path().join("piece");
    std::fs::write(&piece, [7u8; 1016]).unwrap();
    let piece = piece.display().to_string();
    let msg = err(sched(
        &repo,
        &["sectors", "add", "--piece", &piece, "--number", "4"],
    ));
    assert!(
        msg.contains("sector number 4 is already used: the chain has it allocated"),
        "{msg}"
    );
    // The daemon does not run on a node yet: it would stop at PreCommitBatch.
    let msg = err(sched(&repo, &["run", "--until-done"]));
    assert!(msg.contains("does not send messages yet"), "{msg}");
    assert_eq!(msg.trim().lines().count(), 1, "{msg}");
}
