//! Killing a scheduler at random moments: daemons SIGKILLed and restarted, now and then a
//! task supervisor or its phase instead, and cron `batch publish --now` runs beside them.
//! Shared by the PoRep and the snap-deal chaos tests.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

use super::sched::{sched_bin, start_daemon};
use super::sector::parent_cache_dir;

/// What a chaos run did.
pub struct Chaos {
    /// Daemons killed.
    pub kills: usize,
    /// Supervisors killed (their phases' start lines have no end line).
    pub killed: Vec<String>,
}

/// Runs daemons on `repo` until one finishes by itself (`run --until-done`) or `stop()`
/// holds, killing each after a random time from `wait_ms`; after `max_kills` the last daemon runs on (until it
/// ends, `stop()`, or `deadline`, which fails the test). At most 3 supervisors or phases are
/// killed, so no sector runs out of retries. Every cron publisher must succeed.
pub fn run(
    repo: &Path,
    rng: &mut impl Rng,
    wait_ms: std::ops::Range<u64>,
    max_kills: usize,
    deadline: Instant,
    stop: &dyn Fn() -> bool,
) -> Chaos {
    let (mut kills, mut task_kills) = (0, 0);
    let mut killed = Vec::new();
    let mut crons: Vec<Child> = Vec::new();
    loop {
        let mut d = start_daemon(repo);
        let wait = Duration::from_millis(rng.gen_range(wait_ms.clone()));
        let t = Instant::now();
        let mut exited = None;
        while t.elapsed() < wait && !stop() {
            if let Some(st) = d.try_wait().unwrap() {
                exited = Some(st);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(st) = exited {
            assert!(st.success(), "daemon failed after {kills} kills");
            break;
        }
        if stop() {
            d.kill().unwrap();
            d.wait().unwrap();
            break;
        }
        if kills >= max_kills {
            // Enough crashes: let the last daemon finish.
            while d.try_wait().unwrap().is_none() && !stop() {
                assert!(
                    Instant::now() < deadline,
                    "the sectors did not get there in time"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            d.kill().ok();
            d.wait().unwrap();
            break;
        }
        if rng.gen_bool(0.4) {
            crons.push(
                Command::new(sched_bin())
                    .arg("--repo")
                    .arg(repo)
                    .args(["batch", "publish", "--now"])
                    .env("FIL_PROOFS_PARENT_CACHE", parent_cache_dir())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
        }
        if task_kills < 3 && rng.gen_bool(0.5) {
            if let Some(&sup) = supervisors(repo).first() {
                let phase = children_of(sup);
                let victim = if rng.gen_bool(0.5) || phase.is_empty() {
                    sup
                } else {
                    phase[0]
                };
                if sigkill(victim) {
                    task_kills += 1;
                    if victim == sup {
                        killed.push(sup.to_string());
                        // Its phase dies with it (no orphan runs beside the retry).
                        let t = Instant::now();
                        while phase.iter().any(|p| alive(*p)) {
                            assert!(
                                t.elapsed() < Duration::from_secs(10),
                                "a phase outlived its killed supervisor {sup}"
                            );
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            }
        }
        d.kill().unwrap();
        d.wait().unwrap();
        kills += 1;
    }
    for c in crons {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a cron publisher failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Chaos { kills, killed }
}

/// Running task supervisors' pids (from the state database).
fn supervisors(repo: &Path) -> Vec<i32> {
    let c = rusqlite::Connection::open(repo.join("sched.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut st = c
        .prepare("SELECT pid FROM tasks WHERE state = 'running' AND pid IS NOT NULL")
        .unwrap();
    let pids = st
        .query_map([], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|p| p.unwrap() as i32)
        .collect();
    pids
}

/// The children of `pid` (the phase a supervisor runs).
fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit(')').next() else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(pid) {
            out.push(e.file_name().to_string_lossy().parse().unwrap_or(0));
        }
    }
    out
}

/// Is `pid` running (not gone, not a zombie)?
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

fn sigkill(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).is_ok()
}
