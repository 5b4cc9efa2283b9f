//! Driving `seal-sched` from tests: run a command on a repository, read its JSON, and check
//! every sealed sector with `seal-verify`, independently of the scheduler.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use super::sector::{parent_cache_dir, run_tool};
use sealkit::sched::config::Config;
use sealkit::sector::document::SectorDoc;

pub const SCHED: &str = env!("CARGO_BIN_EXE_seal-sched");

/// The seal-sched the tests drive: this build's, or `SEALKIT_TEST_SCHED` (to run a test
/// against another build, e.g. to show that a regression test fails on the old code).
pub fn sched_bin() -> String {
    std::env::var("SEALKIT_TEST_SCHED").unwrap_or_else(|_| SCHED.to_string())
}

/// `seal-sched --repo REPO ARGS…`, with the tests' shared parent cache.
pub fn sched(repo: &Path, args: &[&str]) -> Output {
    Command::new(sched_bin())
        .arg("--repo")
        .arg(repo)
        .args(args)
        .env("FIL_PROOFS_PARENT_CACHE", parent_cache_dir())
        .output()
        .unwrap()
}

/// The command succeeded; its stdout as JSON (or as a string when it is not JSON).
pub fn ok(out: Output) -> Value {
    assert!(
        out.status.success(),
        "seal-sched failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or(Value::String(text.into()))
}

/// The names in directory `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    names.sort();
    names
}

/// Every sector is Proving and its document verifies with seal-verify.
pub fn verify_all(repo: &Path, dir: &Path) -> Vec<Value> {
    let list = ok(sched(repo, &["sectors", "list", "--json"]));
    let sectors = list.as_array().unwrap().clone();
    for s in &sectors {
        verify_sector(s, dir);
    }
    sectors
}

/// Checks one `sectors list --json` row: Proving, every field a proof needs, and a proof
/// `seal-verify` accepts.
pub fn verify_sector(s: &Value, dir: &Path) {
    assert_eq!(s["state"], "Proving", "{s}");
    for k in [
        "seal_proof",
        "miner",
        "sector",
        "ticket",
        "seed",
        "comm_d",
        "comm_r",
        "proof",
    ] {
        assert!(s.get(k).is_some(), "sectors list --json lacks {k}: {s}");
    }
    let doc = SectorDoc::from_value(s.clone(), "list").unwrap();
    let out = run_tool(env!("CARGO_BIN_EXE_seal-verify"), &[], &doc, dir);
    assert!(
        out.status.success(),
        "seal-verify rejected sector {}: {}",
        s["sector"],
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Checks that `seal-verify --update` accepts the update proof of a `sectors list --json` row.
pub fn verify_update(s: &Value, dir: &Path) {
    let doc = SectorDoc::from_value(s.clone(), "list").unwrap();
    let out = run_tool(env!("CARGO_BIN_EXE_seal-verify"), &["--update"], &doc, dir);
    assert!(
        out.status.success(),
        "seal-verify --update rejected sector {}: {}",
        s["sector"],
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `seal-sched init` of `repo` on a fast simulated chain (100 ms epochs, seed after 20, 2 s
/// batch waits, 1 s retries), with `edit` applied to its config; returns the config.
pub fn fast_repo(repo: &Path, edit: impl FnOnce(&mut Config)) -> Config {
    ok(sched(repo, &["init"]));
    let mut cfg = Config::load(&repo.join("config.toml")).unwrap();
    cfg.chain.epoch = "100ms".into();
    cfg.chain.seed_delay = 20;
    cfg.batching.precommit_batch_wait = "2s".into();
    cfg.batching.commit_batch_wait = "2s".into();
    cfg.batching.update_batch_wait = "2s".into();
    cfg.batching.precommit_batch_slack = "1s".into();
    cfg.batching.commit_batch_slack = "1s".into();
    cfg.sealing.retry_min = "1s".into();
    edit(&mut cfg);
    std::fs::write(repo.join("config.toml"), cfg.to_toml()).unwrap();
    cfg
}

/// `seal-sched run --until-done --quiet` in the background; its stderr is appended to
/// `daemon.log` beside the repository (see [`daemon_log`]).
pub fn start_daemon(repo: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(daemon_log_path(repo))
        .unwrap();
    Command::new(sched_bin())
        .arg("--repo")
        .arg(repo)
        .args(["run", "--until-done", "--quiet"])
        .env("FIL_PROOFS_PARENT_CACHE", parent_cache_dir())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn daemon_log_path(repo: &Path) -> std::path::PathBuf {
    repo.with_extension("daemon.log")
}

/// What the daemons of `repo` printed on stderr, for failure messages.
pub fn daemon_log(repo: &Path) -> String {
    std::fs::read_to_string(daemon_log_path(repo)).unwrap_or_default()
}

/// Start and end lines of a phase log alternate for every sector (no phase ever ran twice at
/// once); `field` is the word holding the sector number. Returns the sectors whose last
/// line is a start.
pub fn assert_phases_alternate(log: &str, field: usize) -> Vec<String> {
    assert_phases_alternate_except(log, field, &[])
}

/// As [`assert_phases_alternate`], where a start by one of the supervisor pids in `killed`
/// (SIGKILLed by the test, so it wrote no end line) counts as ended by the next line of its
/// sector. The test itself must check that those supervisors' phases died with them.
pub fn assert_phases_alternate_except(log: &str, field: usize, killed: &[String]) -> Vec<String> {
    let mut open = std::collections::BTreeMap::<String, (bool, String)>::new();
    for line in log.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // A line is whole: time, start or end, "sector N" at `field`, a pid or exit code
        // last (a line torn by another writer is a logging fault, not a phase out of order).
        assert!(
            f.len() > field + 1
                && ["start", "end"].contains(&f[1])
                && f[field - 1] == "sector"
                && f[field].parse::<u64>().is_ok()
                && ["pid", "rc"].contains(&f[f.len() - 2]),
            "a torn phase-log line {line:?} in\n{log}"
        );
        let (what, sector) = (f[1], f[field].to_string());
        let pid = f.last().copied().unwrap_or_default().to_string();
        let (was, by) = open
            .insert(sector.clone(), (what == "start", pid))
            .unwrap_or((false, String::new()));
        let was = was && !(what == "start" && killed.contains(&by));
        assert_eq!(
            was,
            what == "end",
            "sector {sector}: {line} out of order in\n{log}"
        );
    }
    open.into_iter()
        .filter(|(_, (o, _))| *o)
        .map(|(s, _)| s)
        .collect()
}
