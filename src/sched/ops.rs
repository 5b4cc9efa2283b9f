//! Operator controls that change what the scheduler holds: removing a sector (its files
//! released, its row and history kept) and detaching a storage path. Each checks and
//! changes the state in one transaction, so the daemon running beside it never starts
//! work for a sector being removed nor places a sector on a path being detached.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;

use super::config::Config;
use super::config_edit::ConfigFile;
use super::db::{self, sectors, tasks, Db};
use super::location::Location;
use super::repo::Repo;
use super::state::{self, SectorState};
use super::storage;
use super::supervisor;
use super::task_state::TaskState;

/// What `sectors remove` did.
#[derive(Debug, Serialize)]
pub struct Removed {
    pub sector: u64,
    /// Files and directories deleted (the sector's own under each storage path).
    pub deleted: Vec<String>,
    /// A task it cancelled (`--force`).
    pub cancelled: Option<u64>,
}

/// How long `sectors remove --force` waits for a cancelled phase to let go of the sector.
const STOP_WAIT: Duration = Duration::from_secs(120);

/// Removes sector `n`: refuses while a task runs for it (unless `force`, which cancels it
/// and waits for it to stop) or while a batch message carrying it is in flight; marks it
/// `Removed` with an event; then deletes its files, and only its own (`unsealed/`,
/// `sealed/`, `cache/` entries named for it), under every storage path of this machine,
/// and its kept Commit1 output. Running it again on a removed sector finishes a release that
/// was cut short. Sectors on a remote host's storage are refused (their files are there).
pub fn remove_sector(
    repo: &Repo,
    cfg: &Config,
    db: &mut Db,
    n: u64,
    force: bool,
) -> Result<Removed> {
    let name = storage::sector_name(cfg.sealing.miner, n);
    let cancelled = db.tx(|tx| {
        let s = sectors::get(tx, n)?
            .with_context(|| format!("no sector {n} (or its row is quarantined: see `seal-sched sectors list`)"))?;
        if let Some(l) = &s.location {
            let at = Location::parse(l)?;
            ensure!(
                at.is_local(),
                "sector {n}'s files are on host {} ({l}): removing sectors of remote storage is not supported yet",
                at.host
            );
        }
        if let Some(b) = &s.batch {
            bail!("sector {n} is in batch {b}, whose message is being sent: remove it once the batch has landed");
        }
        let mut cancelled = None;
        for t in tasks::live_of(tx, n)? {
            if t.state == TaskState::Running {
                ensure!(
                    force,
                    "sector {n} has a running {} task ({}): wait for it, or --force cancels it",
                    t.kind.short(),
                    t.id
                );
                std::fs::write(repo.tasks_dir().join(t.id.to_string()).join(supervisor::CANCEL), b"")
                    .with_context(|| format!("cannot cancel task {}", t.id))?;
            } else {
                tasks::cancel_queued(tx, t.id, "its sector was removed")?;
            }
            cancelled = Some(t.id);
        }
        if s.state != SectorState::Removed {
            sectors::reset_retries(tx, n)?;
            db::set_state(tx, n, SectorState::Removed, &format!("removed by the operator (was {})", s.state))?;
        }
        Ok(cancelled)
    })?;
    // A cancelled phase still holds the sector's lock until its supervisor has stopped it;
    // nothing is deleted under a running phase.
    let t = Instant::now();
    let guard = loop {
        if let Some(g) = supervisor::try_lock(&repo.sector_lock(n))? {
            break g;
        }
        ensure!(
            t.elapsed() < STOP_WAIT,
            "sector {n} is removed, but its cancelled task has not stopped in {}s: its files are kept; run `seal-sched sectors remove {n}` again to release them",
            STOP_WAIT.as_secs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut deleted = Vec::new();
    let mut roots: Vec<&String> = cfg
        .workers
        .iter()
        .filter(|w| !w.is_remote())
        .flat_map(|w| &w.storage)
        .collect();
    roots.sort();
    roots.dedup();
    for root in roots {
        for t in storage::FILE_TYPES {
            let p = Path::new(root).join(t).join(&name);
            if delete(&p)? {
                deleted.push(p.display().to_string());
            }
        }
    }
    let c1 = super::engine::c1_copy(repo, &name);
    if delete(&c1)? {
        deleted.push(c1.display().to_string());
    }
    drop(guard);
    let detail = if deleted.is_empty() {
        "no files of it were left in storage".to_string()
    } else {
        format!("released {}", deleted.join(", "))
    };
    db::event(&db.conn, Some(n), "removed", &detail)?;
    Ok(Removed {
        sector: n,
        deleted,
        cancelled,
    })
}

/// What `sectors update-state` did.
#[derive(Debug, Serialize)]
pub struct StateChange {
    pub sector: u64,
    pub from: String,
    pub to: String,
    /// The move is not one the pipeline makes itself (`--really-do-it`).
    pub forced: bool,
}

/// Moves sector `n` to `to` as Lotus's `sectors update-state` does: only along a transition
/// of its pipeline unless `really` (`--really-do-it`), never while a task is queued or
/// running for it (its result would land on the new state) nor while it is in a batch
/// being sent. The failure count and back-off reset, so the new state acts at once.
pub fn update_state(db: &mut Db, n: u64, to: &str, really: bool) -> Result<StateChange> {
    let to = SectorState::parse(to).with_context(|| {
        format!(
            "unknown state {to:?}; states are: {}",
            SectorState::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    db.tx(|tx| {
        let s = sectors::get(tx, n)?.with_context(|| {
            format!("no sector {n} (or its row is quarantined: see `seal-sched sectors list`)")
        })?;
        let from = s.state;
        let live = tasks::live_of(tx, n)?;
        if let Some(t) = live.first() {
            bail!(
                "sector {n} has a {} {} task ({}): abort it first (`seal-sched jobs --abort {}`)",
                t.state,
                t.kind.short(),
                t.id,
                t.id
            );
        }
        if let Some(b) = &s.batch {
            bail!(
                "sector {n} is in batch {b}, whose message is being sent: wait until it has landed"
            );
        }
        // These start from an operator's request, with its checks and inputs.
        for (p, command) in state::STARTED_BY_COMMAND {
            ensure!(
                to != p.first || really,
                "{to} is started by `seal-sched {command}`, which checks the sector and records what it needs"
            );
        }
        let allowed = state::allows(from, to);
        ensure!(
            allowed || really,
            "{from} → {to} is not a transition of the sealing pipeline: --really-do-it forces it"
        );
        sectors::reset_retries(tx, n)?;
        db::set_state(
            tx,
            n,
            to,
            &format!(
                "set by the operator (was {from}{})",
                if allowed { "" } else { ", forced" }
            ),
        )?;
        Ok(StateChange {
            sector: n,
            from: from.to_string(),
            to: to.to_string(),
            forced: !allowed,
        })
    })
}

/// Deletes a sector's file or directory at `p`; a symlink there is removed itself, never
/// followed. False if nothing was there.
fn delete(p: &Path) -> Result<bool> {
    let md = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
    };
    if md.is_dir() {
        std::fs::remove_dir_all(p)
    } else {
        std::fs::remove_file(p)
    }
    .with_context(|| format!("cannot delete {}", p.display()))?;
    Ok(true)
}

/// What `storage detach` did.
#[derive(Debug, Serialize)]
pub struct Detached {
    pub path: String,
    pub workers: Vec<String>,
    /// Sectors whose files are still there (`--force`): they wait for the path to return.
    pub stranded: Vec<u64>,
}

/// Detaches storage path `path` from `worker` (default: every worker listing it): refuses
/// while a sector (not removed) is there or a live task moves one there, unless `force`;
/// then removes it from `config.toml`, keeping the rest of the file as the operator wrote
/// it. Nothing on the path itself is touched (its sectorstore.json stays, so it can be
/// attached again).
pub fn detach_storage(
    repo: &Repo,
    cfg: &Config,
    db: &mut Db,
    path: &str,
    worker: Option<&str>,
    force: bool,
) -> Result<Detached> {
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let mut file = ConfigFile::load(&repo.config_path())?;
    let mut workers = Vec::new();
    let mut locations = Vec::new();
    for w in &cfg.workers {
        if worker.is_some_and(|n| n != w.name) {
            continue;
        }
        for p in &w.storage {
            let pt = if p.len() > 1 {
                p.trim_end_matches('/')
            } else {
                p.as_str()
            };
            if pt == trimmed {
                file.remove_storage(&w.name, p)?;
                workers.push(w.name.clone());
                locations.push(Location::new(&w.host_id(), p).to_string());
            }
        }
    }
    if let Some(n) = worker {
        cfg.worker(n)?;
    }
    ensure!(
        !workers.is_empty(),
        "storage path {path} is not attached{} (see `seal-sched storage list`)",
        worker
            .map(|n| format!(" to worker {n:?}"))
            .unwrap_or_default()
    );
    // Checked and written under the database's write lock: no pass places a sector there
    // between the check and the edit.
    let stranded = db.tx(|tx| {
        let mut held = Vec::new();
        for l in &locations {
            held.extend(sectors::using_location(tx, l)?);
        }
        held.sort_unstable();
        held.dedup();
        if !held.is_empty() && !force {
            bail!(
                "storage path {path} holds sector(s) {}: move or remove them first, or --force detaches it anyway (they wait for the path to return)",
                held.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
            );
        }
        file.save()?;
        db::event(tx, None, "storage", &format!("storage path {path} detached from {}", workers.join(", ")))?;
        Ok(held)
    })?;
    Ok(Detached {
        path: path.to_string(),
        workers,
        stranded,
    })
}

/// What `storage redeclare` found for one sector name under a path.
#[derive(Debug, Serialize)]
pub struct Declared {
    pub name: String,
    /// The sector number, for this repository's miner; `None` for another miner's files.
    pub sector: Option<u64>,
    /// `indexed` (already recorded here), `moved-here` (its recorded location had lost its
    /// files; it now points here), `unknown` (no such sector in the database: never sealed
    /// over, see numbering), `duplicate` (files both here and at its recorded location:
    /// left for the operator), `busy` (a task runs for it: not changed), `foreign`.
    pub status: &'static str,
}

/// Re-indexes a storage path of this machine (Lotus's `storage redeclare`): lists every
/// sector name under its `unsealed/`, `sealed/` and `cache/`, and points a sector whose
/// recorded location no longer holds its files at this path, in one transaction per sector.
/// It never moves, deletes or creates a file.
pub fn redeclare_storage(cfg: &Config, db: &mut Db, path: &Path) -> Result<Vec<Declared>> {
    let root = path.display().to_string();
    ensure!(
        cfg.workers
            .iter()
            .any(|w| !w.is_remote() && w.storage.iter().any(|p| Path::new(p) == path)),
        "{root} is not a storage path of a worker on this machine (see `seal-sched storage list`)"
    );
    let mut names = std::collections::BTreeSet::new();
    for t in storage::FILE_TYPES {
        let Ok(dir) = std::fs::read_dir(path.join(t)) else {
            continue;
        };
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("s-t0") && !name.contains(".tmp-") {
                names.insert(name);
            }
        }
    }
    let prefix = format!("s-t0{}-", cfg.sealing.miner);
    let mut out = Vec::new();
    for name in names {
        let Some(n) = name
            .strip_prefix(&prefix)
            .and_then(|n| n.parse::<u64>().ok())
        else {
            out.push(Declared {
                name,
                sector: None,
                status: "foreign",
            });
            continue;
        };
        let status = db.tx(|tx| {
            let Some(s) = sectors::get(tx, n)? else {
                return Ok("unknown");
            };
            if s.location.as_deref() == Some(root.as_str()) {
                return Ok("indexed");
            }
            if !tasks::live_of(tx, n)?.is_empty() {
                return Ok("busy");
            }
            if let Some(l) = &s.location {
                let at = Location::parse(l)?;
                if !at.is_local() || storage::holds(Path::new(&at.path), &name) {
                    return Ok("duplicate");
                }
            }
            sectors::set_location(tx, n, Some(root.as_str()))?;
            let mut doc = s.doc.clone();
            doc["paths"] = storage::sector_paths(path, &name);
            db::set_doc(tx, n, &doc)?;
            db::event(
                tx,
                Some(n),
                "storage",
                &format!(
                    "redeclared at {root} (was {})",
                    s.location.as_deref().unwrap_or("nowhere")
                ),
            )?;
            Ok("moved-here")
        })?;
        out.push(Declared {
            name,
            sector: Some(n),
            status,
        });
    }
    Ok(out)
}
