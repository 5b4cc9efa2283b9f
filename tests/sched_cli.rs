//! seal-sched's command line on bad input and its listings; no sealing past AddPiece here.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::fails;
use common::sched::{ok, sched, SCHED};

#[test]
fn bad_input_gets_one_line_errors_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("r");
    fails(
        sched(&repo, &["sectors", "list"]),
        "not a seal-sched repository",
    );
    ok(sched(&repo, &["init"]));
    fails(sched(&repo, &["init"]), "already exists");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&repo).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "the repository is its owner's only");

    // Unknown worker, unknown task type.
    fails(
        sched(&repo, &["workers", "disable", "nosuch", "PC1"]),
        "unknown worker \"nosuch\"",
    );
    fails(
        sched(&repo, &["workers", "disable", "local", "XYZ"]),
        "unknown task type",
    );
    let w = ok(sched(&repo, &["workers", "disable", "local", "PC2"]));
    assert!(!w["tasks"].as_array().unwrap().contains(&Value::from("PC2")));
    ok(sched(&repo, &["workers", "enable", "local", "PC2"]));

    // Duplicate sector number and a missing piece file.
    let piece = dir.path().join("p.car");
    std::fs::write(&piece, vec![7u8; 900]).unwrap();
    assert_eq!(
        ok(sched(
            &repo,
            &[
                "sectors",
                "add",
                "--piece",
                piece.to_str().unwrap(),
                "--number",
                "5"
            ]
        ))["added"],
        5
    );
    fails(
        sched(
            &repo,
            &[
                "sectors",
                "add",
                "--piece",
                piece.to_str().unwrap(),
                "--number",
                "5",
            ],
        ),
        "sector number 5 is already used",
    );
    fails(
        sched(&repo, &["sectors", "add", "--piece", "/no/such.car"]),
        "/no/such.car",
    );
    // A sector number is a number: shell metacharacters never get as far as a file name.
    for n in ["8;touch PWNED", "$(touch PWNED)", "9 10", "-1"] {
        let out = sched(&repo, &["sectors", "add", "--number", n]);
        assert!(!out.status.success(), "--number {n:?} was accepted");
        assert!(out.stdout.is_empty());
    }
    assert!(!Path::new("PWNED").exists() && !dir.path().join("PWNED").exists());
    assert_eq!(
        ok(sched(&repo, &["sectors", "pledge", "--count", "2"]))["pledged"],
        serde_json::json!([6, 7])
    );
    let list = ok(sched(&repo, &["sectors", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert_eq!(list[0]["state"], "AddPiece");
    assert_eq!(
        list[0]["priority"], 1024,
        "deal sectors first, as Lotus's DealSectorPriority"
    );

    // Only a Proving sector is handed to lotus-miner; a missing one is named.
    fails(
        sched(&repo, &["sectors", "lotus-meta", "6"]),
        "sector 6 is AddPiece: only a Proving sector is handed to lotus-miner",
    );
    fails(
        sched(&repo, &["sectors", "lotus-meta", "99"]),
        "no sector 99",
    );

    // Nothing to publish.
    assert_eq!(
        ok(sched(&repo, &["batch", "publish", "--now"])),
        serde_json::json!([])
    );

    // An invalid config: one line naming the key; the state is untouched.
    let cfg_path = repo.join("config.toml");
    let good = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(
        &cfg_path,
        good.replace("epoch = \"30s\"", "epoch = \"soon\""),
    )
    .unwrap();
    let out = sched(&repo, &["run", "--until-done"]);
    fails(out, "chain.epoch");
    std::fs::write(
        &cfg_path,
        good.replace("windows = 2", "windows = 2\nbogus = 1"),
    )
    .unwrap();
    fails(sched(&repo, &["jobs"]), "bogus");
    std::fs::write(&cfg_path, &good).unwrap();
    assert_eq!(
        ok(sched(&repo, &["sectors", "list", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn a_vanished_storage_path_makes_sectors_wait_until_it_returns() {
    // The daemon refuses to start without proof parameters.
    sealkit::sched::demo::ensure_test_params().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("r");
    ok(sched(&repo, &["init"]));
    ok(sched(&repo, &["sectors", "pledge"]));
    let store = repo.join("storage");
    let away = dir.path().join("away");
    std::fs::rename(&store, &away).unwrap();
    let listing = String::from_utf8_lossy(&sched(&repo, &["storage", "list"]).stdout).to_string();
    assert!(
        listing.contains("ERROR") && listing.contains("missing or unreadable"),
        "{listing}"
    );

    let mut d = Command::new(SCHED)
        .arg("--repo")
        .arg(&repo)
        .args(["run", "--quiet"])
        .spawn()
        .unwrap();
    let t = Instant::now();
    let waiting = loop {
        let jobs = ok(sched(&repo, &["jobs", "--json"]));
        if let Some(why) = jobs["jobs"].get(0).and_then(|j| j["waiting_for"].as_str()) {
            break why.to_string();
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no waiting reason: {jobs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(waiting.contains("AP"), "{waiting}");
    assert_eq!(
        ok(sched(&repo, &["sectors", "list", "--json"]))[0]["state"],
        "AddPiece"
    );
    // The path returns: AddPiece runs and the sector moves on, its files on that path.
    std::fs::rename(&away, &store).unwrap();
    loop {
        let s = ok(sched(&repo, &["sectors", "list", "--json"]));
        if s[0]["state"] != "AddPiece" {
            assert!(s[0]["paths"]["unsealed"]
                .as_str()
                .unwrap()
                .starts_with(store.to_str().unwrap()));
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "AddPiece never ran: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    d.kill().unwrap();
    d.wait().unwrap();
    // Workers and jobs listings work and speak JSON.
    let w = ok(sched(&repo, &["workers", "--json"]));
    assert_eq!(w[0]["name"], "local");
    let text = String::from_utf8_lossy(&sched(&repo, &["workers"]).stdout).to_string();
    assert!(
        text.contains("CPU:") && text.contains("RAM:") && text.contains("VMEM:"),
        "{text}"
    );
}

/// An NI-PoRep sector has no precommit and no seed epoch, which lotus-miner's
/// `SectorReceive` metadata carries: `sectors lotus-meta` refuses it with one line.
#[test]
fn lotus_meta_refuses_an_ni_porep_sector() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("r");
    ok(sched(
        &repo,
        &[
            "init",
            "--seal-proof",
            "StackedDrg2KiBV1_2_Feat_NonInteractivePoRep",
        ],
    ));
    assert_eq!(
        ok(sched(&repo, &["sectors", "pledge"]))["pledged"],
        serde_json::json!([1])
    );
    ok(sched(
        &repo,
        &["sectors", "update-state", "1", "Proving", "--really-do-it"],
    ));
    fails(
        sched(&repo, &["sectors", "lotus-meta", "1"]),
        "sector 1 is an NI-PoRep sector (no precommit, no seed epoch)",
    );
}

/// `chain fund` adds FIL to the simulated chain's wallet (1000 FIL at genesis), which
/// `chain status` shows; a bad amount or a Lotus chain gets one line.
#[test]
fn chain_fund_tops_up_the_simulated_wallet_only() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("r");
    ok(sched(&repo, &["init"]));
    assert_eq!(
        ok(sched(&repo, &["chain", "fund", "0.5"])),
        serde_json::json!({"added": "0.5 FIL", "wallet": "1000.5 FIL"})
    );
    let status = sched(&repo, &["chain", "status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("funds.worker_balance:") && l.ends_with(" 1000.5 FIL")),
        "{text}"
    );
    fails(sched(&repo, &["chain", "fund", "3x"]), "AMOUNT");
    let cfg_path = repo.join("config.toml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    assert!(cfg.contains("kind = \"sim\""), "{cfg}");
    std::fs::write(&cfg_path, cfg.replace("kind = \"sim\"", "kind = \"lotus\"")).unwrap();
    fails(
        sched(&repo, &["chain", "fund", "1"]),
        "on a Lotus node send FIL to the worker address",
    );
}
