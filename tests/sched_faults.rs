//! seal-sched under the faults an adversarial review found: sector numbers whose files or
//! chain records already exist, a supervisor killed under its phase, a chain write cut off
//! half-way, two publishers at once, a failed AddPiece, a publisher that cannot verify, and
//! a daemon started without proof parameters. Each test failed on the scheduler before
//! these were fixed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::fails;
use common::sched::{ok, sched, sched_bin, start_daemon};
use sealkit::sched::config::Config;

/// A fresh repository whose batches wait for `batch publish --now` (a day's batch wait).
fn repo_in(dir: &Path) -> (PathBuf, Config) {
    let repo = dir.join("repo");
    ok(sched(&repo, &["init"]));
    let mut cfg = Config::load(&repo.join("config.toml")).unwrap();
    cfg.chain.epoch = "100ms".into();
    cfg.chain.seed_delay = 5;
    cfg.sealing.retry_min = "1s".into();
    cfg.sealing.retry_max = "2s".into();
    // Deadlines minus slack stay hours away: batches wait for `batch publish --now`.
    cfg.batching.precommit_batch_slack = "1s".into();
    cfg.batching.commit_batch_slack = "1s".into();
    std::fs::write(repo.join("config.toml"), cfg.to_toml()).unwrap();
    (repo, cfg)
}

/// Plants a "proving" sector's files for number `n` under the storage path `root`.
fn plant(root: &Path, miner: u64, n: u64) -> Vec<(PathBuf, Vec<u8>)> {
    let name = format!("s-t0{miner}-{n}");
    let files = [
        (root.join("sealed").join(&name), b"proving replica".to_vec()),
        (root.join("cache").join(&name).join("p_aux"), vec![7u8; 64]),
        (
            root.join("cache")
                .join(&name)
                .join("sc-02-data-tree-r-last.dat"),
            vec![9u8; 256],
        ),
    ];
    for (p, bytes) in &files {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    files.to_vec()
}

fn unchanged(files: &[(PathBuf, Vec<u8>)]) {
    for (p, bytes) in files {
        assert_eq!(&std::fs::read(p).unwrap(), bytes, "{} changed", p.display());
    }
}

/// `sectors add --piece P --number N` with a small deal piece.
fn add_numbered(repo: &Path, n: &str) -> std::process::Output {
    let piece = repo.join("pieces").join("numbered.car");
    std::fs::write(&piece, vec![3u8; 500]).unwrap();
    sched(
        repo,
        &[
            "sectors",
            "add",
            "--piece",
            piece.to_str().unwrap(),
            "--number",
            n,
        ],
    )
}

fn sectors(repo: &Path) -> Vec<Value> {
    ok(sched(repo, &["sectors", "list", "--json"]))
        .as_array()
        .unwrap()
        .clone()
}

/// Polls `cond` on the sector list until it holds (panics after `secs`).
fn wait_for(repo: &Path, secs: u64, what: &str, cond: impl Fn(&[Value]) -> bool) {
    let t = Instant::now();
    loop {
        let s = sectors(repo);
        if cond(&s) {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "{what}: not reached in {secs}s: {s:?}\n{}",
            common::sched::daemon_log(repo)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stop(mut d: Child) {
    let _ = d.kill();
    let _ = d.wait();
}

#[test]
fn a_new_sector_never_takes_a_number_whose_files_exist() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, cfg) = repo_in(dir.path());
    let store = repo.join("storage");
    let planted = plant(&store, cfg.sealing.miner, 1);
    // The next number would be 1 (an empty database, as after a lost sched.db).
    let pledged = ok(sched(&repo, &["sectors", "pledge"]));
    assert_eq!(pledged["pledged"], serde_json::json!([2]));
    fails(add_numbered(&repo, "1"), "holds files named s-t01000-1");
    unchanged(&planted);
}

#[test]
fn a_number_the_chain_has_allocated_is_skipped() {
    use sealkit::sched::chain::{Domain, Message, MsgKind};
    let dir = tempfile::tempdir().unwrap();
    let (repo, cfg) = repo_in(dir.path());
    let repo_h = sealkit::sched::repo::Repo { root: repo.clone() };
    let chain = sealkit::sched::engine::open_chain(&repo_h, &cfg).unwrap();
    let head = chain.head().unwrap();
    let ticket = chain.randomness(Domain::Ticket, head, 1000).unwrap();
    let doc = serde_json::json!({"seal_proof": "StackedDrg2KiBV1_1", "miner": 1000, "sector": 1,
        "ticket": sealkit::hex::encode(&ticket), "ticket_epoch": head, "comm_r": "11".repeat(32)});
    let msg = Message {
        id: "elsewhere".into(),
        kind: MsgKind::PreCommit,
        aggregate: false,
        aggregate_proof: None,
        quotes: None,
        sectors: vec![(1, doc)],
    };
    let sent = chain.send(&msg).unwrap();
    // It lands an epoch later, as on the real chain.
    let t = Instant::now();
    while chain.lookup(&msg, Some(&sent)).unwrap().is_none() {
        assert!(t.elapsed() < Duration::from_secs(10), "never landed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(chain.sector_allocated(1000, 1).unwrap());
    assert_eq!(
        ok(sched(&repo, &["sectors", "pledge"]))["pledged"],
        serde_json::json!([2])
    );
    fails(add_numbered(&repo, "1"), "chain has it allocated");
}

#[test]
fn the_largest_sector_number_does_not_break_later_pledges() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = repo_in(dir.path());
    let max = i64::MAX.to_string();
    assert_eq!(
        ok(add_numbered(&repo, &max))["added"],
        serde_json::json!(i64::MAX)
    );
    assert_eq!(
        ok(sched(&repo, &["sectors", "pledge", "--count", "2"]))["pledged"],
        serde_json::json!([1, 2])
    );
    fails(
        add_numbered(&repo, "9223372036854775808"),
        "above the largest",
    );
}

#[test]
fn a_new_sector_is_not_sealed_over_files_that_appear_later() {
    sealkit::sched::demo::ensure_test_params().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (repo, cfg) = repo_in(dir.path());
    ok(sched(&repo, &["sectors", "pledge"]));
    // After the number was reserved, files of that name arrive (a path attached by hand).
    let planted = plant(&repo.join("storage"), cfg.sealing.miner, 1);
    let d = start_daemon(&repo);
    let t = Instant::now();
    let why = loop {
        let jobs = ok(sched(&repo, &["jobs", "--json"]));
        if let Some(w) = jobs["jobs"].get(0).and_then(|j| j["waiting_for"].as_str()) {
            if w.contains("already holds") {
                break w.to_string();
            }
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{jobs}");
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(2));
    stop(d);
    assert!(
        why.contains("refusing to seal a new sector over them"),
        "{why}"
    );
    assert_eq!(sectors(&repo)[0]["state"], "AddPiece");
    unchanged(&planted);
    assert!(!repo.join("storage/unsealed/s-t01000-1").exists());
}

/// The pid a phase stand-in wrote to `file`, once it is there (panics with `why` after
/// `secs`).
fn read_pid_file(file: &Path, secs: u64, why: impl Fn() -> String) -> i32 {
    let t = Instant::now();
    loop {
        if let Some(p) = std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return p;
        }
        assert!(t.elapsed() < Duration::from_secs(secs), "{}", why());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for the phase `pid` to die with its killed supervisor (panics after 10 s).
fn wait_dead(pid: i32) {
    let t = Instant::now();
    while !dead(pid) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the phase {pid} outlived its killed supervisor"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Is `pid` gone (or a zombie nobody reaped yet)?
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn a_killed_supervisor_takes_its_phase_with_it() {
    use sealkit::sched::supervisor::{try_lock, TaskSpec};
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task");
    std::fs::create_dir_all(&task).unwrap();
    let pidfile = dir.path().join("phase.pid");
    let lock = dir.path().join("sector-1.lock");
    let spec = TaskSpec {
        task: 1,
        sector: 1,
        kind: "PC1".into(),
        argv: vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("echo $$ > {}; exec sleep 60", pidfile.display()),
        ],
        doc: serde_json::json!({}),
        cpus: vec![0],
        timeout: None,
        lock: lock.clone(),
        phase_log: dir.path().join("phase.log"),
        name: "s-t01000-1".into(),
        ..Default::default()
    };
    std::fs::write(
        task.join("task.json"),
        serde_json::to_string(&spec).unwrap(),
    )
    .unwrap();
    let mut sup = Command::new(sched_bin())
        .arg("task-exec")
        .arg(&task)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = read_pid_file(&pidfile, 20, || "the phase never started".into());
    assert!(!dead(pid));
    sup.kill().unwrap(); // SIGKILL: no cleanup runs in the supervisor
    sup.wait().unwrap();
    wait_dead(pid);
    assert!(
        try_lock(&lock).unwrap().is_some(),
        "nothing holds the sector any more"
    );
}

/// Pledges `n` sectors and runs the daemon until all wait in `state` (batches held back by a
/// day's batch wait), then stops it.
fn seal_until(repo: &Path, n: usize, state: &str, secs: u64) {
    ok(sched(
        repo,
        &["sectors", "pledge", "--count", &n.to_string()],
    ));
    let d = start_daemon(repo);
    wait_for(repo, secs, state, |s| {
        s.len() == n && s.iter().all(|x| x["state"] == state)
    });
    stop(d);
}

fn chain_sql(repo: &Path, sql: &str) {
    let c = rusqlite::Connection::open(repo.join("chain.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.execute_batch(sql).unwrap();
}

#[test]
fn a_precommit_cut_off_inside_the_chain_lands_once() {
    sealkit::sched::demo::ensure_test_params().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = repo_in(dir.path());
    seal_until(&repo, 2, "PreCommitBatch", 120);
    // The chain's write fails after the sectors were applied and before the message row
    // (what a kill inside the chain's landing leaves when it is not one transaction). The
    // message lands an epoch after it is sent: the first publish sends it (and may already
    // try to land it), the next one, an epoch later, certainly tries and is cut off.
    chain_sql(
        &repo,
        "CREATE TRIGGER cut AFTER INSERT ON onchain WHEN NEW.sector = 2 \
         BEGIN SELECT RAISE(FAIL, 'injected: the process died here'); END;",
    );
    let _ = sched(&repo, &["batch", "publish", "--now"]);
    std::thread::sleep(Duration::from_millis(300));
    let out = sched(&repo, &["batch", "publish"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("injected"),
        "{out:?}"
    );
    assert!(sectors(&repo)
        .iter()
        .all(|s| s["state"] == "PreCommitBatchWait"));
    let c = rusqlite::Connection::open(repo.join("chain.db")).unwrap();
    let on: i64 = c
        .query_row("SELECT count(*) FROM onchain", [], |r| r.get(0))
        .unwrap();
    assert_eq!(on, 0, "a landing cut off half-way left sectors on chain");
    drop(c);
    chain_sql(&repo, "DROP TRIGGER cut;");
    ok(sched(&repo, &["batch", "publish"]));
    for s in sectors(&repo) {
        assert_eq!(s["state"], "WaitSeed", "{s}");
        let status = ok(sched(
            &repo,
            &["sectors", "status", &s["sector"].to_string(), "--json"],
        ));
        assert!(!status.to_string().contains("PreCommitFailed"), "{status}");
    }
    let batches = ok(sched(&repo, &["batch", "list", "--json"]));
    let b = batches["batches"].as_array().unwrap();
    assert_eq!(b.len(), 1, "{batches}");
    assert_eq!(b[0]["state"], "landed");
}

#[test]
fn a_cron_publish_waits_for_the_publisher_in_charge() {
    sealkit::sched::demo::ensure_test_params().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = repo_in(dir.path());
    seal_until(&repo, 1, "PreCommitBatch", 120);
    // Another publisher (a daemon mid-send) holds the batch.
    let held =
        sealkit::sched::batch::Publisher::acquire(&repo.join("locks/publisher.lock")).unwrap();
    let mut cron = Command::new(sched_bin())
        .arg("--repo")
        .arg(&repo)
        .args(["batch", "publish", "--now"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(cron.try_wait().unwrap().is_none(), "it did not wait");
    assert_eq!(sectors(&repo)[0]["state"], "PreCommitBatch");
    drop(held);
    assert!(cron.wait().unwrap().success());
    // It sent the batch. A message lands an epoch later; unless an epoch passed before its
    // own look-up, the next publisher (here the next cron run) learns that by looking it up.
    if sectors(&repo)[0]["state"] == "PreCommitBatchWait" {
        let batches = ok(sched(&repo, &["batch", "list", "--json"]));
        assert_eq!(batches["batches"][0]["state"], "sent", "{batches}");
    } else {
        assert_eq!(sectors(&repo)[0]["state"], "WaitSeed");
    }
    std::thread::sleep(Duration::from_millis(300));
    ok(sched(&repo, &["batch", "publish"]));
    assert_eq!(sectors(&repo)[0]["state"], "WaitSeed");
}

#[test]
fn a_failed_add_piece_retries_with_its_paths() {
    sealkit::sched::demo::ensure_test_params().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = repo_in(dir.path());
    let piece = dir.path().join("deal.car");
    std::fs::write(&piece, vec![5u8; 1000]).unwrap();
    ok(sched(
        &repo,
        &["sectors", "add", "--piece", piece.to_str().unwrap()],
    ));
    let away = dir.path().join("away.car");
    std::fs::rename(&piece, &away).unwrap();
    let d = start_daemon(&repo);
    wait_for(&repo, 60, "AddPieceFailed", |s| {
        s[0]["state"] == "AddPieceFailed"
    });
    std::fs::rename(&away, &piece).unwrap();
    wait_for(&repo, 90, "past AddPiece", |s| {
        let st = s[0]["state"].as_str().unwrap();
        !st.starts_with("AddPiece")
    });
    stop(d);
    let s = &sectors(&repo)[0];
    assert_ne!(s["state"], "FailedUnrecoverable", "{s}");
    assert!(s["paths"]["unsealed"]
        .as_str()
        .unwrap()
        .ends_with("unsealed/s-t01000-1"));
}

/// `seal-sched ARGS` with an empty proof-parameter directory.
fn without_params(repo: &Path, empty: &Path, args: &[&str]) -> std::process::Output {
    Command::new(sched_bin())
        .arg("--repo")
        .arg(repo)
        .args(args)
        .env("FIL_PROOFS_PARAMETER_CACHE", empty)
        .output()
        .unwrap()
}

#[test]
fn the_daemon_refuses_to_start_without_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = repo_in(dir.path());
    let empty = dir.path().join("no-params");
    std::fs::create_dir_all(&empty).unwrap();
    let out = without_params(&repo, &empty, &["run", "--until-done", "--quiet"]);
    let err = fails(out, "parameter file");
    assert!(err.contains(empty.to_str().unwrap()), "{err}");
}

#[test]
fn a_commit_the_publisher_cannot_verify_is_kept_not_failed() {
    sealkit::sched::demo::ensure_test_params().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = repo_in(dir.path());
    ok(sched(&repo, &["sectors", "pledge"]));
    let d = start_daemon(&repo);
    // Precommit, seed and both commit phases; the commit batch then waits for us.
    wait_for(&repo, 60, "PreCommitBatch", |s| {
        s[0]["state"] == "PreCommitBatch"
    });
    ok(sched(&repo, &["batch", "publish", "--now"]));
    wait_for(&repo, 400, "CommitBatch", |s| {
        s[0]["state"] == "CommitBatch"
    });
    stop(d);
    let proof = sectors(&repo)[0]["proof"].clone();
    assert!(proof.is_string());
    // A cron publisher whose environment lacks the parameters.
    let empty = dir.path().join("no-params");
    std::fs::create_dir_all(&empty).unwrap();
    let out = without_params(&repo, &empty, &["batch", "publish", "--now"]);
    // It reports what it did (nothing landed) and fails with the reason.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("kept for a retry"),
        "{err}"
    );
    let s = &sectors(&repo)[0];
    assert_eq!(s["state"], "CommitBatchWait", "{s}");
    assert_eq!(s["proof"], proof, "the proof is kept");
    // With the parameters, the same recorded message is sent; it lands an epoch later and
    // the next publisher learns that.
    ok(sched(&repo, &["batch", "publish", "--now"]));
    std::thread::sleep(Duration::from_millis(300));
    ok(sched(&repo, &["batch", "publish"]));
    assert_eq!(sectors(&repo)[0]["state"], "Finalize");
}

#[test]
fn update_state_follows_the_transition_table() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = repo_in(dir.path());
    ok(sched(&repo, &["sectors", "pledge"]));
    fails(
        sched(&repo, &["sectors", "update-state", "1", "Proving"]),
        "AddPiece → Proving is not a transition of the sealing pipeline",
    );
    fails(
        sched(&repo, &["sectors", "update-state", "1", "Sealed"]),
        "unknown state \"Sealed\"",
    );
    fails(
        sched(&repo, &["sectors", "update-state", "9", "PreCommit1"]),
        "no sector 9",
    );
    let r = ok(sched(
        &repo,
        &["sectors", "update-state", "1", "PreCommit1"],
    ));
    assert_eq!(r["forced"], false);
    assert_eq!(sectors(&repo)[0]["state"], "PreCommit1");
    let r = ok(sched(
        &repo,
        &["sectors", "update-state", "1", "Proving", "--really-do-it"],
    ));
    assert_eq!(
        (r["from"].as_str(), r["forced"].as_bool()),
        (Some("PreCommit1"), Some(true))
    );
    let status = ok(sched(&repo, &["sectors", "status", "1", "--json"])).to_string();
    assert!(
        status.contains("set by the operator (was PreCommit1, forced)"),
        "{status}"
    );
}

#[test]
fn storage_redeclare_finds_sectors_moved_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, cfg) = repo_in(dir.path());
    ok(sched(&repo, &["sectors", "pledge", "--count", "2"]));
    let store = repo.join("storage");
    let other = dir.path().join("store2");
    ok(sched(
        &repo,
        &["storage", "attach", other.to_str().unwrap(), "--store"],
    ));
    // Sector 1 was recorded at the first path; its files were moved to the second by hand.
    let db = rusqlite::Connection::open(repo.join("sched.db")).unwrap();
    db.execute(
        "UPDATE sectors SET location = ?1 WHERE number = 1",
        [store.to_str().unwrap()],
    )
    .unwrap();
    drop(db);
    let planted = plant(&other, cfg.sealing.miner, 1);
    plant(&other, cfg.sealing.miner, 7);
    plant(&other, 4242, 1);
    let r = ok(sched(
        &repo,
        &["storage", "redeclare", other.to_str().unwrap()],
    ));
    let status = |name: &str| {
        r.as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .map(|d| d["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status("s-t01000-1").as_deref(), Some("moved-here"), "{r}");
    assert_eq!(status("s-t01000-7").as_deref(), Some("unknown"), "{r}");
    assert_eq!(status("s-t04242-1").as_deref(), Some("foreign"), "{r}");
    let s1 = sectors(&repo)[0].clone();
    assert_eq!(s1["location"], other.to_str().unwrap());
    assert!(s1["paths"]["sealed"]
        .as_str()
        .unwrap()
        .starts_with(other.to_str().unwrap()));
    unchanged(&planted);
    // Running it again changes nothing; a path that is no storage path is refused.
    let again = ok(sched(
        &repo,
        &["storage", "redeclare", other.to_str().unwrap()],
    ));
    assert!(again.to_string().contains("indexed"), "{again}");
    fails(
        sched(&repo, &["storage", "redeclare", "/tmp"]),
        "is not a storage path",
    );
}

/// PC1 batches (`sealing.pc1_batch`): three pledged sectors on one path go to one PC1 task,
/// one supervisor and one `seal-pc1` process for all three (the phase log names one pid).
/// That supervisor is SIGKILLed mid-phase: its phase dies with it, no sector is lost (the
/// leader fails and retries, the other two are queued again), and all three go on through
/// PreCommit2. The first seal-pc1 is a stand-in that sleeps; later runs are the real one.
#[test]
fn a_pc1_batch_runs_as_one_process_and_a_killed_batch_loses_no_sector() {
    sealkit::sched::demo::ensure_test_params().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    // The binaries, with seal-pc1 wrapped.
    let bins = dir.path().join("bin");
    std::fs::create_dir_all(&bins).unwrap();
    let real = Path::new(&sched_bin()).parent().unwrap().to_path_buf();
    for e in std::fs::read_dir(&real).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("seal-") && !name.contains('.') && name != "seal-pc1" {
            std::os::unix::fs::symlink(real.join(&name), bins.join(&name)).unwrap();
        }
    }
    let first = dir.path().join("first-pc1.pid");
    let wrapper = bins.join("seal-pc1");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ ! -e {f} ]; then echo $$ > {f}.tmp; mv {f}.tmp {f}; exec sleep 120; fi\nexec {real} \"$@\"\n",
            f = first.display(),
            real = real.join("seal-pc1").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    common::sched::fast_repo(&repo, |cfg| {
        cfg.sealing.pc1_batch = 3;
        // Sectors 1 and 2 wait for 3, which leaves AddPiece a moment later.
        cfg.sealing.pc1_batch_wait = "5s".into();
        cfg.sealing.bin_dir = bins.display().to_string();
    });
    ok(sched(&repo, &["sectors", "pledge", "--count", "3"]));
    let d = start_daemon(&repo);
    let phase = read_pid_file(&first, 60, || {
        format!("PC1 never started\n{}", common::sched::daemon_log(&repo))
    });
    // One supervisor started PC1 for all three sectors.
    let log = std::fs::read_to_string(repo.join("phase.log")).unwrap();
    let starts: Vec<Vec<&str>> = log
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f[1] == "start" && f[6] == "PC1")
        .collect();
    let mut batch: Vec<&str> = starts.iter().map(|f| f[3]).collect();
    batch.sort();
    assert_eq!(batch, ["1", "2", "3"], "{log}");
    let sup = starts[0][8];
    assert!(starts.iter().all(|f| f[8] == sup), "{log}");
    // `jobs` shows the other two as running in the batch of the first.
    let jobs = ok(sched(&repo, &["jobs", "--json"]));
    let mut leaders: Vec<(u64, Value)> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["task"] == "PC1" && j["state"] == "running")
        .map(|j| (j["sector"].as_u64().unwrap(), j["batch_leader"].clone()))
        .collect();
    leaders.sort_by_key(|l| l.0);
    let lead = leaders[0].1.clone();
    assert!(lead.is_null() && leaders.len() == 3, "{jobs}");
    let first_task = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["sector"] == 1 && j["task"] == "PC1")
        .unwrap()["id"]
        .clone();
    assert!(leaders[1..].iter().all(|l| l.1 == first_task), "{jobs}");
    // Kill the batch's supervisor; the stand-in phase goes with it.
    let sup: i32 = sup.parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_dead(phase);
    // PC2 of every sector ran on what the batch wrote (the rest of the pipeline is the
    // single-sector one, tested elsewhere; PC1 batches equal single runs: tests/pc1_cli.rs).
    wait_for(&repo, 300, "all past PreCommit2", |s| {
        s.len() == 3
            && s.iter().all(|x| {
                let state = x["state"].as_str().unwrap_or_default();
                x["comm_r"].is_string() && !state.contains("Failed")
            })
    });
    stop(d);
    let log = std::fs::read_to_string(repo.join("phase.log")).unwrap();
    common::sched::assert_phases_alternate_except(&log, 3, &[sup.to_string()]);
}
