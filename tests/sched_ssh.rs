//! seal-sched with remote workers: real sshd "hosts" on loopback (tests/common/sshd.rs), each
//! with its own storage and run directories, reached through the system ssh and rsync.
//!
//! * Sectors seal across four places: AddPiece and PC1 on `pc1`, PC2 and C1 on `pc2` (its
//!   files relayed from pc1), C2 on `gpu` (Commit1's output copied in), Finalize into a
//!   store on this machine, and every proof verifies. pc2's storage path and the deal's
//!   piece file carry shell metacharacters; pc2's rsync damages the first file it receives,
//!   which the checksum catches.
//! * A host is cut off mid-Commit2 (its sshd killed, the phase left running): the host is
//!   marked down, the task is lost (queued again without a failure), the host is used again
//!   when its sshd returns, the old run is stopped before the new one starts (the host's own
//!   phase log shows they never overlapped) and the sector reaches Proving.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::sched::{
    assert_phases_alternate, daemon_log, ok, sched, start_daemon as daemon, verify_all, SCHED,
};
use common::sector::parent_cache_dir;
use common::sshd::SshFarm;
use sealkit::sched::config::{Config, Worker};
use sealkit::sched::storage;

/// Both tests seal and prove; on two cores they take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn bin_dir() -> String {
    Path::new(SCHED).parent().unwrap().display().to_string()
}

fn worker(name: &str, host: &str, tasks: &[&str], storage: &[&Path], run: &Path) -> Worker {
    let mut cfg: Config = toml::from_str(&format!(
        "[[worker]]\nname = {name:?}\ncpus = \"0-1\"\nmemory = \"4GiB\"\n"
    ))
    .unwrap();
    let mut w = cfg.workers.remove(0);
    w.host = host.into();
    w.tasks = tasks.iter().map(|s| s.to_string()).collect();
    w.storage = storage.iter().map(|p| p.display().to_string()).collect();
    w.run_dir = run.display().to_string();
    w.bin_dir = bin_dir();
    w.env = BTreeMap::from([
        (
            "FIL_PROOFS_PARENT_CACHE".to_string(),
            parent_cache_dir().display().to_string(),
        ),
        (
            "FIL_PROOFS_PARAMETER_CACHE".to_string(),
            std::env::var("FIL_PROOFS_PARAMETER_CACHE").unwrap(),
        ),
    ]);
    w
}

/// Finalize on this machine, into a store-only path.
fn store_worker(store: &Path, dir: &Path) -> Worker {
    worker("store", "", &["FIN"], &[store], &dir.join("run"))
}

/// A repository on the fast simulated chain, reaching the farm's hosts.
fn repo(dir: &Path, farm: &SshFarm, workers: Vec<Worker>) -> PathBuf {
    let repo = dir.join("repo");
    ok(sched(&repo, &["init"]));
    let mut cfg = Config::load(&repo.join("config.toml")).unwrap();
    cfg.chain.epoch = "100ms".into();
    cfg.chain.seed_delay = 20;
    cfg.batching.precommit_batch_wait = "2s".into();
    cfg.batching.commit_batch_wait = "2s".into();
    cfg.batching.precommit_batch_slack = "1s".into();
    cfg.batching.commit_batch_slack = "1s".into();
    cfg.sealing.retry_min = "1s".into();
    cfg.ssh.config = farm.ssh_config.display().to_string();
    cfg.ssh.heartbeat = "1s".into();
    cfg.ssh.down_after = "3s".into();
    cfg.ssh.alive_interval = "1s".into();
    cfg.ssh.alive_count = 3;
    cfg.ssh.connect_timeout = "3s".into();
    cfg.workers = workers;
    std::fs::write(repo.join("config.toml"), cfg.to_toml()).unwrap();
    // Each path's sectorstore.json is written on its host, over ssh for remote workers.
    for w in &cfg.workers {
        for s in &w.storage {
            let mut args = vec!["storage", "attach", s, "--store", "--worker", &w.name];
            if w.tasks != ["FIN"] {
                args.push("--seal");
            }
            let out = ok(sched(&repo, &args));
            assert_eq!(out["existing"], false, "{out}");
            assert!(storage::read_meta(Path::new(s)).is_ok(), "{s}");
        }
    }
    repo
}

fn wait_done(d: &mut Child, limit: Duration, repo: &Path) {
    let t = Instant::now();
    while d.try_wait().unwrap().is_none() {
        if t.elapsed() > limit {
            let _ = d.kill();
            let jobs = sched(repo, &["jobs", "--all"]);
            let list = sched(repo, &["sectors", "list"]);
            panic!(
                "sectors did not reach Proving in {limit:?}:\n{}\n{}\n{}",
                String::from_utf8_lossy(&jobs.stdout),
                String::from_utf8_lossy(&list.stdout),
                daemon_log(repo)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every task of the repository: (kind, worker, state, error).
fn tasks(repo: &Path) -> Vec<Value> {
    ok(sched(repo, &["jobs", "--all", "--json"]))["jobs"]
        .as_array()
        .unwrap()
        .clone()
}

/// Start/end lines of a host's phase log (`<time> start <kind> sector <n> …`) never
/// interleave for one sector.
fn assert_never_two_at_once(log: &str) {
    assert_phases_alternate(log, 4);
}

fn find_files(dir: &Path, name: &str, depth: usize, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy() == name {
            out.push(p.clone());
        }
        if depth > 0 && p.is_dir() && !p.is_symlink() {
            find_files(&p, name, depth - 1, out);
        }
    }
}

#[test]
fn sectors_seal_across_hosts_and_a_damaged_transfer_is_caught() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    sealkit::sched::demo::ensure_test_params().unwrap();
    let farm = SshFarm::start(&["pc1", "pc2", "gpu"]);
    let dir = tempfile::tempdir().unwrap();
    let h = |n: &str| farm.host(n).root.clone();
    let canary = dir.path().join("PWNED");
    let nasty = format!("st $(touch {}) `touch {0}`; 'q' \"x\"", canary.display());
    let pc1_store = h("pc1").join("seal");
    let pc2_store = h("pc2").join(&nasty);
    let local_store = dir.path().join("store");

    // pc2's rsync damages the first sector file it receives (once).
    let marker = h("pc2").join("damaged-once");
    let wrapper = h("pc2").join("rsync-damaging");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nrsync \"$@\"; rc=$?\nif [ $rc -eq 0 ] && [ ! -e {m} ]; then\n  \
             f=$(find {s}/sealed {s}/cache -type f -name '*.dat' -o -type f -path '*/sealed/*' 2>/dev/null | head -1)\n  \
             if [ -n \"$f\" ]; then printf Z | dd of=\"$f\" bs=1 seek=7 count=1 conv=notrunc 2>/dev/null; touch {m}; fi\nfi\nexit $rc\n",
            m = sealkit::sched::shell::quote(&marker.display().to_string()),
            s = sealkit::sched::shell::quote(&pc2_store.display().to_string()),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut pc2 = worker(
        "pc2",
        "pc2",
        &["PC2", "C1"],
        &[&pc2_store],
        &h("pc2").join("run"),
    );
    pc2.rsync_path = wrapper.display().to_string();
    let workers = vec![
        worker(
            "pc1",
            "pc1",
            &["AP", "PC1"],
            &[&pc1_store],
            &h("pc1").join("run"),
        ),
        pc2,
        worker("gpu", "gpu", &["C2"], &[], &h("gpu").join("run")),
        store_worker(&local_store, dir.path()),
    ];
    let repo = repo(dir.path(), &farm, workers);
    let piece_dir = dir.path().join(format!("pieces {}", nasty));
    std::fs::create_dir_all(&piece_dir).unwrap();
    let piece = piece_dir.join("deal $(touch PWNED);'.car");
    std::fs::write(
        &piece,
        common::random_bytes(&mut common::rng("sched-ssh"), 1500),
    )
    .unwrap();
    ok(sched(&repo, &["sectors", "pledge", "--count", "2"]));
    ok(sched(
        &repo,
        &["sectors", "add", "--piece", piece.to_str().unwrap()],
    ));

    let mut d = daemon(&repo);
    wait_done(&mut d, Duration::from_secs(1500), &repo);
    assert!(d.wait().unwrap().success(), "{}", daemon_log(&repo));

    let sectors = verify_all(&repo, dir.path());
    assert_eq!(sectors.len(), 3);
    let all = tasks(&repo);
    for (kind, at) in [
        ("AP", "pc1"),
        ("PC1", "pc1"),
        ("PC2", "pc2"),
        ("C1", "pc2"),
        ("C2", "gpu"),
        ("FIN", "store"),
    ] {
        let done: Vec<&Value> = all
            .iter()
            .filter(|t| t["task"] == kind && t["state"] == "done")
            .collect();
        assert_eq!(done.len(), 3, "{kind}: {all:?}");
        assert!(
            done.iter().all(|t| t["worker"] == at),
            "{kind} ran off {at}: {done:?}"
        );
    }
    // The damaged file was caught before pc1's copy went, and the retry moved it whole.
    assert!(marker.exists(), "the wrapper never damaged a file");
    assert!(
        all.iter().any(|t| t["task"] == "PC2"
            && t["state"] == "failed"
            && t["error"]
                .as_str()
                .unwrap_or("")
                .contains("checksum mismatch")),
        "no PC2 failed on the checksum: {all:?}"
    );
    // Every sector ended in the local store; the hosts hold none of its files.
    for s in &sectors {
        assert_eq!(s["location"], local_store.display().to_string(), "{s}");
        let name = storage::sector_name(1000, s["sector"].as_u64().unwrap());
        assert!(!storage::holds(&pc1_store, &name) && !storage::holds(&pc2_store, &name));
    }
    // Nothing the metacharacters spelled out ever ran.
    assert!(!canary.exists(), "a path was run by a shell");
    let mut stray = Vec::new();
    let home = PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()));
    // Where a remote shell or a local one would have run: the farm and test directories,
    // the login directory, the daemon's working directory.
    for (place, depth) in [
        (farm.dir.as_path(), 9),
        (dir.path(), 9),
        (home.as_path(), 0),
        (Path::new("."), 0),
    ] {
        find_files(place, "PWNED", depth, &mut stray);
    }
    assert!(stray.is_empty(), "{stray:?}");
    // Each host ran its phases under its sector lock, logged in its own run directory.
    for host in ["pc1", "pc2", "gpu"] {
        let log = std::fs::read_to_string(h(host).join("run/phase.log")).unwrap();
        assert!(log.lines().count() >= 6, "{host}: {log}");
        assert_never_two_at_once(&log);
    }
    // The repository is its owner's alone.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&repo), 0o700);
    assert_eq!(mode(&repo.join("sched.db")), 0o600);
    let task = std::fs::read_dir(repo.join("tasks"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(mode(&task) & 0o077, 0, "{}", task.display());
    assert_eq!(mode(&task.join("task.json")) & 0o077, 0);
    // `workers` shows each host's live use, measured over ssh.
    let ws = ok(sched(&repo, &["workers", "--json"]));
    for w in ws.as_array().unwrap() {
        assert_eq!(w["up"], true, "{w}");
        assert!(w["live"]["cpus"].as_u64().unwrap() >= 1, "{w}");
        assert!(w["live"]["mem_total"].as_u64().unwrap() > 0, "{w}");
    }
}

#[test]
fn a_host_cut_off_mid_task_comes_back_and_its_sector_still_proves() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    sealkit::sched::demo::ensure_test_params().unwrap();
    let farm = SshFarm::start(&["box", "gpu"]);
    let dir = tempfile::tempdir().unwrap();
    let h = |n: &str| farm.host(n).root.clone();
    let local_store = dir.path().join("store");
    let workers = vec![
        worker(
            "box",
            "box",
            &["AP", "PC1", "PC2", "C1"],
            &[&h("box").join("seal")],
            &h("box").join("run"),
        ),
        worker("gpu", "gpu", &["C2"], &[], &h("gpu").join("run")),
        store_worker(&local_store, dir.path()),
    ];
    let repo = repo(dir.path(), &farm, workers);
    ok(sched(&repo, &["sectors", "pledge", "--count", "1"]));
    let mut d = daemon(&repo);

    // Wait for Commit2 to be running on gpu, give it a moment, then pull the plug.
    let t = Instant::now();
    loop {
        assert!(t.elapsed() < Duration::from_secs(900), "C2 never started");
        assert!(
            d.try_wait().unwrap().is_none(),
            "daemon ended early: {}",
            daemon_log(&repo)
        );
        let running = tasks(&repo)
            .iter()
            .any(|t| t["task"] == "C2" && t["state"] == "running");
        if running
            && std::fs::read_to_string(h("gpu").join("run/phase.log"))
                .is_ok_and(|l| l.contains("start"))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    // Its network goes: sshd dies, the Commit2 it was running goes on, as on a host that
    // lost its link.
    farm.cut_off("gpu");

    // The host goes down; the task is lost (not failed) and waits for a worker.
    let t = Instant::now();
    loop {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "gpu was never marked down"
        );
        let ws = ok(sched(&repo, &["workers", "--json"]));
        let gpu = ws
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == "gpu")
            .unwrap()
            .clone();
        let lost = tasks(&repo)
            .iter()
            .any(|t| t["task"] == "C2" && t["state"] == "lost");
        if gpu["up"] == false && lost {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(3));
    let list = ok(sched(&repo, &["sectors", "list", "--json"]));
    assert_eq!(list[0]["state"], "Commit2", "{list}");
    farm.restart("gpu");

    wait_done(&mut d, Duration::from_secs(900), &repo);
    assert!(d.wait().unwrap().success(), "{}", daemon_log(&repo));
    verify_all(&repo, dir.path());
    let all = tasks(&repo);
    let c2: Vec<&Value> = all.iter().filter(|t| t["task"] == "C2").collect();
    assert!(c2.iter().any(|t| t["state"] == "lost"), "{c2:?}");
    assert!(
        c2.iter()
            .any(|t| t["state"] == "done" && t["worker"] == "gpu"),
        "{c2:?}"
    );
    assert!(
        !c2.iter().any(|t| t["state"] == "failed"),
        "a lost connection counted as a failure: {c2:?}"
    );
    let log = std::fs::read_to_string(h("gpu").join("run/phase.log")).unwrap();
    assert_never_two_at_once(&log);
    assert!(
        log.lines().count() >= 4,
        "the cut-off run never ended: {log}"
    );
    let status =
        String::from_utf8_lossy(&sched(&repo, &["sectors", "status", "1"]).stdout).to_string();
    assert!(status.contains("Proving"), "{status}");
}
