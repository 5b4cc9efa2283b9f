//! `seal-sched run`: one daemon per repository, passes on a short clock.
//!
//! A pass costs a few indexed SQLite queries, so the daemon wakes every 250 ms while tasks run
//! (finished tasks are picked up promptly) and every 2 s when there is nothing to do beyond
//! watching the chain clock: an idle daemon uses next to no CPU. Every event the pass
//! commits is logged to stderr (RFC 3339 UTC time first, see `log`); on a terminal a spinner
//! line shows where the sectors are, else `-v` logs that summary when it changes.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

use super::db::{self, events, tasks};
use super::engine::Engine;
use super::log::{self, Level};
use super::repo::Repo;
use super::task_state::TaskState;

pub struct RunOptions {
    /// Return once every sector is Proving or failed for good (demo, tests, scripts).
    pub until_done: bool,
    /// No event log (warnings still), as `-q`.
    pub quiet: bool,
    /// Serve `/metrics` and the web view here (checked by `observe::server::check_listen`).
    pub metrics: Option<std::net::SocketAddr>,
}

/// Seconds between two evaluations of the alerts.
const ALERT_EVERY: f64 = 5.0;

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
    let proof = engine.cfg.seal_proof()?;
    let local_c2 = engine.cfg.workers.iter().any(|w| {
        !w.is_remote()
            && engine
                .worker_tasks(w)
                .is_ok_and(|t| t.contains(&super::task_type::TaskType::Commit2))
    });
    let ni = proof.is_non_interactive();
    crate::snark::params::check_present(proof, local_c2, ni)
        .context("seal-sched run: proof parameters are not ready")?;
    // Commit batches of four or more go aggregated, which needs the SnarkPack SRS; without
    // it they go as plain batches (more gas, never a lost sector), so this only warns.
    if !ni && super::batch::may_aggregate(&engine.cfg.batching) {
        if let Err(e) = crate::snark::params::check_present(proof, false, true) {
            log::emit(
                Level::Warn,
                &format!("commit batches will not be aggregated (they go as plain batches): {e:#}"),
                None,
            );
        }
    }
    // Rows that cannot be read are the pass's to set aside, not a reason to refuse.
    let snapping = super::db::sectors::listing(&engine.db.conn)?
        .into_iter()
        .filter_map(|(_, row)| row.ok())
        .any(|s| super::state::SNAP_DEALS.owns(s.state));
    let local_pr2 = engine.cfg.workers.iter().any(|w| {
        !w.is_remote()
            && engine
                .worker_tasks(w)
                .is_ok_and(|t| t.contains(&super::task_type::TaskType::ProveReplicaUpdate2))
    });
    if snapping && local_pr2 {
        crate::snark::update::check_present(proof, true).context(
            "seal-sched run: snap-deal sectors are in flight and a worker here runs PR2, but the update parameters are not ready",
        )?;
    }
    Ok(())
}

pub fn run(repo: &Repo, opts: RunOptions) -> Result<()> {
    let _lock = lock_daemon(repo)?;
    let mut engine = Engine::open(repo)?;
    preflight(&engine)?;
    if let Some(addr) = opts.metrics {
        let bound = super::observe::server::spawn(repo, addr)?;
        log::emit(
            Level::Info,
            &format!("metrics and web view on http://{bound}/ (/metrics, /api/state.json)"),
            None,
        );
    }
    let mut alerts_at = 0.0;
    let mut last_event = events::last_id(&engine.db.conn)?;
    let tty = std::io::stderr().is_terminal() && !opts.quiet && log::enabled(Level::Info);
    let spinner = tty.then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(Duration::from_millis(200));
        b
    });
    let mut failing = 0u32;
    let mut last_summary = String::new();
    loop {
        // A pass that fails (a busy database, a host that answered garbage) is reported and
        // tried again: every pass starts from what the database holds, so nothing is lost,
        // and a daemon that gave up would stop every sector on the farm.
        let busy = match pass(&mut engine) {
            Ok(b) => {
                failing = 0;
                b
            }
            Err(e) => {
                failing += 1;
                let wait = 250u64 << failing.min(5);
                log::emit(
                    Level::Warn,
                    &format!("pass failed ({failing} in a row): {e:#}; retrying in {wait} ms"),
                    spinner.as_ref(),
                );
                std::thread::sleep(Duration::from_millis(wait));
                continue;
            }
        };
        if db::now() - alerts_at >= ALERT_EVERY {
            alerts_at = db::now();
            // An alert that cannot be evaluated is a warning, never a stopped farm.
            if let Err(e) = super::alerts::check(&mut engine) {
                log::emit(Level::Warn, &format!("alerts: {e:#}"), spinner.as_ref());
            }
        }
        {
            for ev in events::after(&engine.db.conn, last_event)? {
                last_event = ev.id;
                let who = ev
                    .sector
                    .map(|s| format!("sector {s}: "))
                    .unwrap_or_default();
                // A row set aside is the operator's to repair: said even under -q.
                let level = match ev.kind.as_str() {
                    "quarantine" => Level::Warn,
                    _ if opts.quiet => continue,
                    _ => Level::Info,
                };
                log::emit_at(
                    level,
                    ev.at,
                    &format!("{who}{}", ev.detail),
                    spinner.as_ref(),
                );
            }
            let now = summary(&engine)?;
            if now != last_summary {
                if let Some(b) = &spinner {
                    b.set_message(now.clone());
                } else {
                    log::emit(Level::Debug, &now, None);
                }
                last_summary = now;
            }
        }
        if opts.until_done && !busy {
            if let Some(b) = spinner {
                b.finish_and_clear();
            }
            super::alerts::wait_for_webhooks();
            return stuck_on_quarantine(&engine.db);
        }
        let running = tasks::count_in_state(&engine.db.conn, TaskState::Running)?;
        std::thread::sleep(Duration::from_millis(if running > 0 {
            250
        } else {
            2000.min(idle_wait(&engine))
        }));
    }
}

/// Rows set aside in one pass at most; more means something other than a stray bad row.
const MAX_QUARANTINED_PER_PASS: usize = 64;

/// One pass of the engine that one unreadable row cannot stop: a pass that fails on a row
/// of sched.db ([`db::RowError`]) sets that row aside ([`db::quarantine`]) and runs again
/// without it, so every other sector keeps moving. Each step of a pass is its own
/// transaction, so re-running the pass repeats nothing. Rows repaired since are released
/// first.
pub fn pass(engine: &mut Engine) -> Result<bool> {
    db::release_repaired(&mut engine.db)?;
    let mut set_aside = 0;
    loop {
        match engine.tick() {
            Err(e) if set_aside < MAX_QUARANTINED_PER_PASS => {
                let Some(bad) = db::row_error(&e).cloned() else {
                    return Err(e);
                };
                db::quarantine(&mut engine.db, &bad)?;
                set_aside += 1;
            }
            done => return done,
        }
    }
}

/// Why `run --until-done` stops with sectors that did not finish: rows set aside that only
/// the operator can repair. Ok when there are none.
fn stuck_on_quarantine(db: &db::Db) -> Result<()> {
    let mut bad = db::quarantined(&db.conn, db::Table::Sectors)?;
    bad.extend(db::quarantined(&db.conn, db::Table::Tasks)?);
    match bad.first() {
        None => Ok(()),
        Some(first) => anyhow::bail!(
            "stopped with {} row(s) of sched.db set aside, whose sectors cannot move until they \
             are repaired (`seal-sched sectors list`): {first}",
            bad.len()
        ),
    }
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
        *counts.entry(s.state.as_str().to_string()).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let states: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let running: Vec<String> =
        e.db.tasks_in(TaskState::Running)?
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
