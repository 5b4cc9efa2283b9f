//! `seal-sched run`: one daemon per repository, passes on a short clock.
//!
//! A pass costs a few indexed SQLite queries, so the daemon wakes every 250 ms while tasks run
//! (finished tasks are picked up promptly) and every 2 s when there is nothing to do beyond
//! watching the chain clock: an idle daemon uses next to no CPU. Every event the pass
//! commits is logged to stderr; on a terminal a spinner line shows where the sectors are.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

use super::engine::Engine;
use super::repo::Repo;

pub struct RunOptions {
    /// Return once every sector is Proving or failed for good (demo, tests, scripts).
    pub until_done: bool,
    pub quiet: bool,
}

/// Holds the repository's daemon lock for as long as it lives.
pub fn lock_daemon(repo: &Repo) -> Result<Flock<std::fs::File>> {
    let path = repo.root.join("daemon.lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    Flock::lock(f, FlockArg::LockExclusiveNonblock).map_err(|_| {
        anyhow::anyhow!(
            "another seal-sched daemon is running on {} (lock {})",
            repo.root.display(),
            path.display()
        )
    })
}

/// What the daemon checks before its first pass, so that a missing parameter file is an
/// error at start and not a Commit2 that fails hours into the first sector: the Groth16
/// parameters when a worker on this machine runs C2, and the verifying key (with the
/// SnarkPack SRS for NI-PoRep) that the chain adapter's proof check uses.
pub fn preflight(engine: &Engine) -> Result<()> {
    use crate::sector::proof::Feature;
    let proof = engine.cfg.seal_proof()?;
    let local_c2 = engine.cfg.workers.iter().any(|w| {
        !w.is_remote()
            && engine
                .worker_tasks(w)
                .is_ok_and(|t| t.contains(&super::task_type::TaskType::Commit2))
    });
    let ni = proof.feature() == Some(Feature::NonInteractivePoRep);
    crate::snark::params::check_present(proof, local_c2, ni)
        .context("seal-sched run: proof parameters are not ready")?;
    Ok(())
}

pub fn run(repo: &Repo, opts: RunOptions) -> Result<()> {
    let _lock = lock_daemon(repo)?;
    let mut engine = Engine::open(repo)?;
    preflight(&engine)?;
    let mut last_event: i64 =
        engine
            .db
            .conn
            .query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?;
    let tty = std::io::stderr().is_terminal() && !opts.quiet;
    let spinner = tty.then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(Duration::from_millis(200));
        b
    });
    let mut failing = 0u32;
    loop {
        // A pass that fails (a busy database, a host that answered garbage) is reported and
        // tried again: every pass starts from what the database holds, so nothing is lost,
        // and a daemon that gave up would stop every sector on the farm.
        let busy = match engine.tick() {
            Ok(b) => {
                failing = 0;
                b
            }
            Err(e) => {
                failing += 1;
                let wait = 250u64 << failing.min(5);
                let line = format!(
                    "seal-sched: pass failed ({failing} in a row): {e:#}; retrying in {wait} ms"
                );
                match &spinner {
                    Some(b) => b.println(line),
                    None => eprintln!("{line}"),
                }
                std::thread::sleep(Duration::from_millis(wait));
                continue;
            }
        };
        if !opts.quiet {
            let mut st = engine.db.conn.prepare(
                "SELECT id, at, coalesce(sector, -1), detail FROM events WHERE id > ?1 ORDER BY id",
            )?;
            let rows: Vec<(i64, f64, i64, String)> = st
                .query_map([last_event], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            for (id, _at, sector, detail) in rows {
                last_event = id;
                let who = if sector >= 0 {
                    format!("sector {sector}: ")
                } else {
                    String::new()
                };
                let line = format!("seal-sched: {who}{detail}");
                match &spinner {
                    Some(b) => b.println(line),
                    None => eprintln!("{line}"),
                }
            }
            if let Some(b) = &spinner {
                b.set_message(summary(&engine)?);
            }
        }
        if opts.until_done && !busy {
            break;
        }
        let running: i64 = engine.db.conn.query_row(
            "SELECT count(*) FROM tasks WHERE state = 'running'",
            [],
            |r| r.get(0),
        )?;
        std::thread::sleep(Duration::from_millis(if running > 0 {
            250
        } else {
            2000.min(idle_wait(&engine))
        }));
    }
    if let Some(b) = spinner {
        b.finish_and_clear();
    }
    Ok(())
}

/// How long an idle pass may sleep: short while sectors wait on a fast (simulated) chain.
fn idle_wait(e: &Engine) -> u64 {
    let epoch_ms = (super::config::Config::secs(&e.cfg.chain.epoch) * 1000.0) as u64;
    epoch_ms.clamp(100, 2000)
}

/// `3 sectors: 1 PreCommit2, 2 WaitSeed | running: PC2 s3`
pub fn summary(e: &Engine) -> Result<String> {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for s in e.db.sectors()? {
        *counts.entry(s.state).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let states: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let running: Vec<String> =
        e.db.tasks("state = 'running' ORDER BY id")?
            .iter()
            .map(|t| format!("{} s{}", t.kind.short(), t.sector))
            .collect();
    Ok(format!(
        "{total} sectors: {} | running: {}",
        states.join(", "),
        if running.is_empty() {
            "-".into()
        } else {
            running.join(", ")
        }
    ))
}
