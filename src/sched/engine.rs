//! The daemon's work, one pass at a time: collect finished tasks, move sectors along the
//! state machine, publish due batches, queue the next tasks, place them on workers and start
//! what fits. Every step reads the state from the database and writes each change in one
//! transaction, so a pass can be cut off anywhere (SIGKILL) and the next daemon picks up
//! from what was committed: running supervisors are re-attached through their status files
//! and sector locks, and nothing is started twice at once.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};
use rusqlite::params;
use serde_json::Value;

use super::admission::{Allocation, WorkerInfo};
use super::assign::{self, Busy, StoragePath, WorkerState};
use super::batch;
use super::chain::{Chain, Domain, MsgKind, SimChain};
use super::config::{parse_cpus, parse_size, Config, Worker};
use super::db::{self, now, Db, SectorRow, TaskRow};
use super::hosts::Monitor;
use super::location::Location;
use super::numbering;
use super::queue::QueuedTask;
use super::remote;
use super::repo::Repo;
use super::resources::ResourceTable;
use super::state::{self, SectorState, INTERACTIVE_POREP as PIPELINE};
use super::storage::{self, StoreMeta};
use super::supervisor::{self, TaskSpec};
use super::task_type::TaskType;
use super::transfer::Net;
use crate::sector::proof::SealProof;

pub struct Engine {
    pub repo: Repo,
    pub cfg: Config,
    pub db: Db,
    pub chain: SimChain,
    pub table: ResourceTable,
    proof: SealProof,
    children: HashMap<u64, Child>,
    /// Heartbeats of the remote hosts.
    pub monitor: Monitor,
}

/// A storage path as seen in one pass.
pub struct PathView {
    /// Its location string (a plain path here, `ssh://host/path` on a remote host).
    pub root: String,
    pub meta: Result<StoreMeta>,
    pub available: u64,
}

/// How this repository reaches its remote hosts.
pub fn net(repo: &Repo, cfg: &Config) -> Result<Net> {
    Ok(Net {
        ssh: remote::SshSpec::new(cfg, &remote::control_dir(&repo.root)?),
        hosts: remote::hosts(cfg),
        down_after: Config::secs(&cfg.ssh.down_after),
    })
}

/// A worker's storage paths as location strings.
pub fn worker_locations(w: &Worker) -> Vec<String> {
    w.storage
        .iter()
        .map(|p| Location::new(&w.host_id(), p).to_string())
        .collect()
}

pub fn open_chain(repo: &Repo, cfg: &Config) -> Result<SimChain> {
    SimChain::open(
        &repo.chain_path(),
        Config::secs(&cfg.chain.epoch),
        cfg.chain.seed_delay,
        &cfg.chain.secret,
    )
}

/// The resource table: Lotus defaults, then `[resources]`, then the environment (which wins,
/// as a worker's environment does in Lotus).
pub fn resource_table(cfg: &Config) -> Result<ResourceTable> {
    let lookup = |k: &str| std::env::var(k).ok();
    ResourceTable::defaults()
        .with_overrides(&cfg.resource_overrides())
        .and_then(|t| t.with_env(&lookup))
        .map_err(anyhow::Error::msg)
}

impl Engine {
    pub fn open(repo: &Repo) -> Result<Engine> {
        let cfg = repo.config()?;
        let db = repo.open_db()?;
        let chain = open_chain(repo, &cfg)?;
        let table = resource_table(&cfg)?;
        let proof = cfg.seal_proof()?;
        let monitor = Monitor::new(net(repo, &cfg)?, &cfg, repo.root.join("hosts"))?;
        Ok(Engine {
            monitor,
            repo: repo.clone(),
            cfg,
            db,
            chain,
            table,
            proof,
            children: HashMap::new(),
        })
    }

    /// One full pass. Returns whether anything is still in flight (tasks or sectors not done).
    pub fn tick(&mut self) -> Result<bool> {
        self.monitor.poll(&mut self.db)?;
        self.reap()?;
        self.advance()?;
        self.publish()?;
        self.enqueue()?;
        self.schedule()?;
        let done = sql_list(SectorState::ALL.iter().copied().filter(|s| s.is_done()));
        let busy: i64 = self.db.conn.query_row(
            &format!("SELECT count(*) FROM sectors WHERE state NOT IN ({done})"),
            [],
            |r| r.get(0),
        )?;
        Ok(busy > 0 || !self.children.is_empty())
    }

    /// Finishes recorded batches and sends the due ones, unless another process (a cron
    /// `batch publish`) is publishing right now: then the next pass does.
    fn publish(&mut self) -> Result<()> {
        let Some(p) = batch::Publisher::try_acquire(&self.repo.publisher_lock())? else {
            return Ok(());
        };
        batch::recover(&p, &mut self.db, &self.chain, &self.cfg)?;
        for kind in [MsgKind::PreCommit, MsgKind::ProveCommit] {
            batch::publish(&p, &mut self.db, &self.chain, &self.cfg, kind, false)?;
        }
        Ok(())
    }

    fn task_dir(&self, id: u64) -> PathBuf {
        self.repo.tasks_dir().join(id.to_string())
    }

    fn sector_lock(&self, sector: u64) -> PathBuf {
        self.repo.locks_dir().join(format!("sector-{sector}.lock"))
    }

    /// Collects finished tasks; re-attaches or gives up tasks a previous daemon started.
    fn reap(&mut self) -> Result<()> {
        for t in self.db.tasks("state = 'running'")? {
            let dir = self.task_dir(t.id);
            if let Some(st) = supervisor::read_status(&dir) {
                if let Some(mut c) = self.children.remove(&t.id) {
                    let _ = c.wait();
                }
                self.apply(&t, st)?;
                continue;
            }
            if let Some(c) = self.children.get_mut(&t.id) {
                if let Some(code) = c.try_wait()? {
                    self.children.remove(&t.id);
                    if let Some(st) = supervisor::read_status(&dir) {
                        self.apply(&t, st)?;
                    } else {
                        let log =
                            std::fs::read_to_string(dir.join("supervisor.log")).unwrap_or_default();
                        let last = log
                            .lines()
                            .rev()
                            .find(|l| !l.trim().is_empty())
                            .unwrap_or("no output");
                        let st = supervisor::Status {
                            error: Some(format!(
                                "task supervisor exited ({code}) without a result: {last}"
                            )),
                            ..Default::default()
                        };
                        self.apply(&t, st)?;
                    }
                }
                continue;
            }
            // Not our child: started by a daemon that is gone. Alive while it holds the lock.
            let Some(guard) = supervisor::try_lock(&self.sector_lock(t.sector))? else {
                continue;
            };
            std::fs::write(dir.join(supervisor::ABANDONED), b"")?;
            drop(guard);
            if let Some(st) = supervisor::read_status(&dir) {
                self.apply(&t, st)?;
                continue;
            }
            self.db.tx(|tx| {
                tx.execute(
                    "UPDATE tasks SET state = 'abandoned', finished = ?2, error = 'its process was gone after a daemon restart' WHERE id = ?1",
                    params![t.id as i64, now()],
                )?;
                db::event(tx, Some(t.sector), "task", &format!("{} task {} was not running after a restart; queued again", t.kind.short(), t.id))
            })?;
        }
        Ok(())
    }

    /// Records a finished task and moves its sector on, in one transaction.
    fn apply(&mut self, t: &TaskRow, st: supervisor::Status) -> Result<()> {
        let cfg = self.cfg.clone();
        if st.lost {
            if let Some(w) = t.worker.as_deref().and_then(|w| self.cfg.worker(w).ok()) {
                self.monitor.probe_soon(&w.host_id());
            }
        }
        let step = *PIPELINE
            .step_of(t.kind)
            .with_context(|| format!("task {}: {} runs in no state", t.id, t.kind.short()))?;
        let phase = step.state.as_str();
        self.db.tx(|tx| {
            let Some(s) = db::sectors_where(tx, "number = ?1", [t.sector as i64])?.pop() else {
                return Ok(());
            };
            if let Some(loc) = &st.location {
                tx.execute("UPDATE sectors SET location = ?2 WHERE number = ?1", params![s.number as i64, loc])?;
            }
            if st.conflict {
                // Nothing was written there: the sector is new again and gets placed anew
                // (and checked again) after its back-off.
                tx.execute("UPDATE sectors SET location = NULL WHERE number = ?1", [s.number as i64])?;
            }
            let took = st.finished - st.started;
            if st.abandoned {
                tx.execute("UPDATE tasks SET state = 'abandoned', finished = ?2 WHERE id = ?1", params![t.id as i64, now()])?;
                return Ok(());
            }
            // A lost connection is the host's trouble, not the sector's: queue the task again
            // (the next pass does) without a failure, unless it keeps happening.
            let lost_before: i64 = tx.query_row(
                "SELECT count(*) FROM tasks WHERE sector = ?1 AND state = 'lost' AND id > coalesce((SELECT max(id) FROM tasks WHERE sector = ?1 AND state = 'done'), 0)",
                [s.number as i64],
                |r| r.get(0),
            )?;
            if st.lost && s.state == phase && lost_before < MAX_LOST {
                let err = st.error.clone().unwrap_or_default();
                tx.execute("UPDATE tasks SET state = 'lost', finished = ?2, error = ?3 WHERE id = ?1", params![t.id as i64, now(), err])?;
                return db::event(tx, Some(s.number), "task", &format!("{} task {} lost on {}: {err}", t.kind.short(), t.id, t.worker.as_deref().unwrap_or("?")));
            }
            if s.state != phase {
                tx.execute("UPDATE tasks SET state = 'done', finished = ?2, error = 'result ignored: the sector moved on' WHERE id = ?1", params![t.id as i64, now()])?;
                return Ok(());
            }
            if st.ok {
                tx.execute("UPDATE tasks SET state = 'done', finished = ?2 WHERE id = ?1", params![t.id as i64, st.finished])?;
                if let Some(doc) = &st.doc {
                    db::set_doc(tx, s.number, doc)?;
                }
                tx.execute("UPDATE sectors SET fails = 0, last_error = NULL WHERE number = ?1", [s.number as i64])?;
                if t.kind == TaskType::Finalize {
                    // Commit2's input is kept here until the proof is on chain; now it is.
                    let _ = std::fs::remove_file(c1_copy(&self.repo, &storage::sector_name(cfg.sealing.miner, s.number)));
                }
                db::set_state(tx, s.number, step.success, &format!("{} done in {took:.1}s on {}", t.kind.short(), t.worker.as_deref().unwrap_or("?")))
            } else {
                let err = st.error.unwrap_or_else(|| "failed".into());
                let fails = s.fails + 1;
                let wait = state::backoff(fails, Config::secs(&cfg.sealing.retry_min), Config::secs(&cfg.sealing.retry_max));
                tx.execute("UPDATE tasks SET state = 'failed', finished = ?2, error = ?3 WHERE id = ?1", params![t.id as i64, now(), err])?;
                tx.execute(
                    "UPDATE sectors SET fails = ?2, retry_at = ?3, last_error = ?4 WHERE number = ?1",
                    params![s.number as i64, fails, now() + wait, err],
                )?;
                db::set_state(tx, s.number, step.failure, &format!("{err} (failure {fails}, retry in {wait:.0}s)"))
            }
        })
    }

    /// Moves sectors whose next step needs no task: retries after back-off, seeds.
    fn advance(&mut self) -> Result<()> {
        let max = self.cfg.sealing.max_retries;
        let head = self.chain.head()?;
        let seed_delay = self.cfg.chain.seed_delay as i64;
        let miner = self.cfg.sealing.miner;
        let chain = &self.chain;
        let failures = sql_list(PIPELINE.retries.iter().map(|r| r.failed));
        self.db.tx(|tx| {
            for s in db::sectors_where(
                tx,
                &format!("state IN ({failures}) AND retry_at <= ?1"),
                [now()],
            )? {
                let failed = SectorState::parse(&s.state).expect("selected by name");
                let r = PIPELINE.retry(failed).expect("selected as a failure");
                let target = PIPELINE
                    .retry_target(failed, s.fails, max)
                    .expect("selected as a failure");
                if target != r.phase {
                    // Falling back to an earlier phase (or giving up) starts its count anew.
                    tx.execute(
                        "UPDATE sectors SET fails = 0 WHERE number = ?1",
                        [s.number as i64],
                    )?;
                }
                db::set_state(tx, s.number, target, "retry")?;
            }
            for s in db::sectors_where(tx, "state = ?1", [SectorState::WaitSeed.as_str()])? {
                let Some(pc) = s.precommit_epoch else {
                    continue;
                };
                let se = pc + seed_delay;
                if head < se {
                    continue;
                }
                let seed = chain.randomness(Domain::Seed, se, miner)?;
                let mut doc = s.doc.clone();
                doc["seed"] = crate::hex::encode(&seed).into();
                doc["seed_epoch"] = se.into();
                db::set_doc(tx, s.number, &doc)?;
                tx.execute(
                    "UPDATE sectors SET seed_epoch = ?2 WHERE number = ?1",
                    params![s.number as i64, se],
                )?;
                db::set_state(
                    tx,
                    s.number,
                    SectorState::Commit1,
                    &format!("seed from epoch {se}"),
                )?;
            }
            Ok(())
        })
    }

    /// Queues a task for every sector in a compute state that has none.
    fn enqueue(&mut self) -> Result<()> {
        let head = self.chain.head()?;
        let miner = self.cfg.sealing.miner;
        let chain = &self.chain;
        let compute = sql_list(PIPELINE.steps.iter().map(|s| s.state));
        self.db.tx(|tx| {
            let todo = db::sectors_where(
                tx,
                &format!(
                    "state IN ({compute}) AND number NOT IN \
                     (SELECT sector FROM tasks WHERE state IN ('queued','running'))"
                ),
                [],
            )?;
            for s in todo {
                let state = SectorState::parse(&s.state).expect("selected by name");
                let kind = PIPELINE.step(state).expect("a compute state").task;
                if kind == TaskType::PreCommit1 {
                    // GetTicket: a fresh ticket for every PC1 attempt.
                    let ticket = chain.randomness(Domain::Ticket, head, miner)?;
                    let mut doc = s.doc.clone();
                    doc["ticket"] = crate::hex::encode(&ticket).into();
                    doc["ticket_epoch"] = head.into();
                    db::set_doc(tx, s.number, &doc)?;
                    tx.execute("UPDATE sectors SET ticket_epoch = ?2 WHERE number = ?1", params![s.number as i64, head])?;
                }
                tx.execute(
                    "INSERT INTO tasks (sector, kind, state, created) VALUES (?1, ?2, 'queued', ?3)",
                    params![s.number as i64, kind.short(), now()],
                )?;
            }
            Ok(())
        })
    }

    /// Every storage path named by a worker, with its metadata and free space: read here
    /// for this machine's, from the last heartbeat for a remote host's.
    pub fn paths(&self) -> Vec<PathView> {
        let mut locs: Vec<Location> = self
            .cfg
            .workers
            .iter()
            .flat_map(|w| {
                w.storage
                    .iter()
                    .map(move |p| Location::new(&w.host_id(), p))
            })
            .collect();
        locs.sort();
        locs.dedup();
        locs.into_iter()
            .map(|loc| {
                let root = loc.to_string();
                if loc.is_local() {
                    let meta = storage::read_meta(Path::new(&loc.path));
                    let available = meta
                        .as_ref()
                        .ok()
                        .and_then(|m| storage::available(Path::new(&loc.path), m).ok())
                        .unwrap_or(0);
                    return PathView {
                        root,
                        meta,
                        available,
                    };
                }
                let st = self.monitor.states.get(&loc.host);
                let probe = st
                    .filter(|s| s.up)
                    .and_then(|s| s.probe.as_ref())
                    .and_then(|p| p.paths.iter().find(|x| x.root == loc.path));
                let (meta, available) = match (st, probe) {
                    (_, Some(p)) => match &p.meta {
                        Some(m) => (Ok(m.clone()), p.available),
                        None => (
                            Err(anyhow::anyhow!("{}", p.error.clone().unwrap_or_default())),
                            0,
                        ),
                    },
                    (Some(s), None) if s.last_ok.is_some() && !s.up => (
                        Err(anyhow::anyhow!(
                            "host {} is down: {}",
                            loc.host,
                            s.error.clone().unwrap_or_default()
                        )),
                        0,
                    ),
                    _ => (
                        Err(anyhow::anyhow!("host {} has not answered yet", loc.host)),
                        0,
                    ),
                };
                PathView {
                    root,
                    meta,
                    available,
                }
            })
            .collect()
    }

    pub fn worker_info(w: &Worker) -> WorkerInfo {
        WorkerInfo::new(
            parse_cpus(&w.cpus).map_or(1, |c| c.len() as u32),
            parse_size(&w.memory).unwrap_or(0),
            if w.swap.is_empty() {
                0
            } else {
                parse_size(&w.swap).unwrap_or(0)
            },
            w.gpus,
        )
    }

    /// Task types a worker runs now: its config, minus runtime switches.
    pub fn worker_tasks(&self, w: &Worker) -> Result<Vec<TaskType>> {
        let mut tasks = w.task_types();
        for (worker, task, enabled) in self.db.switches()? {
            if worker != w.name {
                continue;
            }
            let Some(t) = TaskType::parse(&task) else {
                continue;
            };
            tasks.retain(|x| *x != t);
            if enabled {
                tasks.push(t);
            }
        }
        Ok(tasks)
    }

    /// Mean run time per task type so far (for backfill), 60 s before there is history.
    fn estimates(&self) -> Result<HashMap<String, f64>> {
        let mut st = self.db.conn.prepare(
            "SELECT kind, avg(finished - started) FROM tasks WHERE state = 'done' AND started IS NOT NULL GROUP BY kind",
        )?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))?
            .collect::<rusqlite::Result<HashMap<_, _>>>()?;
        Ok(rows)
    }

    /// Places queued tasks on workers and starts those that fit now.
    fn schedule(&mut self) -> Result<()> {
        let queued = self.db.tasks("state = 'queued' ORDER BY id")?;
        if queued.is_empty() {
            return Ok(());
        }
        let running = self.db.tasks("state = 'running'")?;
        let sectors: BTreeMap<u64, SectorRow> = self
            .db
            .sectors()?
            .into_iter()
            .map(|s| (s.number, s))
            .collect();
        let views = self.paths();
        let index: HashMap<&str, usize> = views
            .iter()
            .enumerate()
            .map(|(i, p)| (p.root.as_str(), i))
            .collect();
        let est = self.estimates()?;
        let est_of = |k: TaskType| est.get(k.short()).copied().unwrap_or(60.0);
        let size = self.proof.sector_size();
        let t_now = now();

        let paths: Vec<StoragePath> = views
            .iter()
            .map(|v| match &v.meta {
                Ok(m) => StoragePath {
                    id: v.root.clone(),
                    can_seal: m.can_seal,
                    can_store: m.can_store,
                    weight: m.weight,
                    available: v.available,
                    groups: m.groups.clone(),
                    allow_to: m.allow_to.clone(),
                },
                // A vanished path takes nothing new and its sectors wait for it.
                Err(_) => StoragePath {
                    id: v.root.clone(),
                    can_seal: false,
                    can_store: false,
                    weight: 0,
                    available: 0,
                    groups: vec![],
                    allow_to: vec![],
                },
            })
            .collect();
        let mut workers = Vec::new();
        for w in &self.cfg.workers {
            let busy = running
                .iter()
                .filter(|t| t.worker.as_deref() == Some(w.name.as_str()))
                .map(|t| Busy {
                    task: t.kind,
                    sector_size: size,
                    est_end: t.started.unwrap_or(t_now) + est_of(t.kind),
                })
                .collect();
            workers.push(WorkerState {
                name: w.name.clone(),
                info: Self::worker_info(w),
                enabled: self.monitor.is_up(&w.host_id()),
                tasks: self.worker_tasks(w)?,
                paths: worker_locations(w)
                    .iter()
                    .filter_map(|p| index.get(p.as_str()).copied())
                    .filter(|&i| views[i].meta.is_ok())
                    .collect(),
                windows: w.windows,
                busy,
            });
        }
        let mut queue = Vec::new();
        let mut missing: Vec<(u64, String)> = Vec::new();
        for t in &queued {
            let Some(s) = sectors.get(&t.sector) else {
                continue;
            };
            let location = match &s.location {
                // Commit2 reads only Commit1's output, kept on this machine.
                Some(_) if t.kind == TaskType::Commit2 => vec![],
                Some(l) => match index.get(l.as_str()) {
                    Some(&i) if views[i].meta.is_ok() => vec![i],
                    Some(&i) => {
                        let why = views[i]
                            .meta
                            .as_ref()
                            .err()
                            .map(|e| format!("{e:#}"))
                            .unwrap_or_default();
                        missing.push((t.id, format!("sector {}'s files are at {l}, which is unreachable ({why}); waiting for it", s.number)));
                        continue;
                    }
                    None => {
                        missing.push((t.id, format!("storage path {l} holding sector {} is missing; waiting for it to return", s.number)));
                        continue;
                    }
                },
                None => vec![],
            };
            queue.push(QueuedTask {
                id: t.id,
                sector: t.sector,
                task: t.kind,
                sector_size: size,
                priority: s.priority,
                est_secs: est_of(t.kind),
                location,
            });
        }
        let plan = assign::schedule(&queue, &workers, &paths, &self.table, t_now);

        // Record the plan, then start what fits on each worker's free capacity, in plan order.
        let mut active: Vec<Allocation> = workers
            .iter()
            .map(|w| {
                let mut a = Allocation::default();
                for b in &w.busy {
                    a.add(&w.info, b.task, size, &self.table.get(b.task, size));
                }
                a
            })
            .collect();
        let by_id: HashMap<u64, &TaskRow> = queued.iter().map(|t| (t.id, t)).collect();
        let mut starts = Vec::new();
        self.db.tx(|tx| {
            for (id, why) in plan.waiting.iter().chain(missing.iter()) {
                tx.execute(
                    "UPDATE tasks SET worker = NULL, wait_reason = ?2 WHERE id = ?1",
                    params![*id as i64, why],
                )?;
            }
            for a in &plan.assignments {
                let t = by_id[&a.task_id];
                let w = &workers[a.worker];
                let r = self.table.get(t.kind, size);
                let reason = match active[a.worker].can_handle(&w.info, t.kind, size, &r) {
                    Ok(()) => {
                        active[a.worker].add(&w.info, t.kind, size, &r);
                        starts.push((
                            t.clone(),
                            a.worker,
                            a.fetch_to.map(|i| paths[i].id.clone()),
                            a.alloc_path.map(|i| paths[i].id.clone()),
                        ));
                        None
                    }
                    Err(e) => Some(format!(
                        "assigned to {}, waiting for resources: {e}",
                        w.name
                    )),
                };
                tx.execute(
                    "UPDATE tasks SET worker = ?2, wait_reason = ?3 WHERE id = ?1",
                    params![t.id as i64, w.name, reason],
                )?;
            }
            Ok(())
        })?;
        let mut fetching = self.fetches_by_host(&running);
        for (t, wi, fetch_to, alloc) in starts {
            let w = self.cfg.workers[wi].clone();
            let s = sectors[&t.sector].clone();
            let moves = fetch_to.is_some() && fetch_to != s.location;
            if moves && w.is_remote() {
                let limit = if w.fetch_limit > 0 {
                    w.fetch_limit
                } else {
                    self.cfg.ssh.fetch_limit
                };
                let n = fetching.entry(w.host_id()).or_default();
                if *n >= limit.max(1) {
                    let why = format!("assigned to {}, waiting: {} transfers into host {} already run (fetch_limit {limit})", w.name, n, w.host_id());
                    self.db.conn.execute(
                        "UPDATE tasks SET wait_reason = ?2 WHERE id = ?1",
                        params![t.id as i64, why],
                    )?;
                    continue;
                }
                *n += 1;
            }
            if let Err(e) = self.start(&t, &w, &s, fetch_to, alloc, &views) {
                let msg = format!("{e:#}");
                self.db.tx(|tx| {
                    tx.execute(
                        "UPDATE tasks SET wait_reason = ?2, worker = NULL WHERE id = ?1",
                        params![t.id as i64, msg],
                    )?;
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    /// Running tasks still moving files into each host (their supervisor's stage is
    /// `preparing`), for the per-host fetch limit.
    fn fetches_by_host(&self, running: &[TaskRow]) -> HashMap<String, usize> {
        let mut n = HashMap::new();
        for t in running {
            let Some(f) = &t.fetch_to else { continue };
            let stage = std::fs::read_to_string(self.task_dir(t.id).join(supervisor::STAGE))
                .unwrap_or_default();
            if stage == "preparing" || stage.is_empty() {
                if let Ok(l) = Location::parse(f) {
                    *n.entry(l.host).or_default() += 1;
                }
            }
        }
        n
    }

    /// The long-term path a finalized sector goes to: where it is if that path stores,
    /// else the worker's storing path with the most available × weight.
    fn store_path(&self, w: &Worker, location: &str, views: &[PathView]) -> Option<String> {
        let stores = |v: &PathView| v.meta.as_ref().is_ok_and(|m| m.can_store);
        if views.iter().any(|v| v.root == location && stores(v)) {
            return Some(location.to_string());
        }
        let mine = worker_locations(w);
        views
            .iter()
            .filter(|v| mine.contains(&v.root) && stores(v))
            .max_by_key(|v| (v.available as u128) * v.meta.as_ref().map_or(0, |m| m.weight) as u128)
            .map(|v| v.root.clone())
    }

    fn start(
        &mut self,
        t: &TaskRow,
        w: &Worker,
        s: &SectorRow,
        fetch_to: Option<String>,
        alloc: Option<String>,
        views: &[PathView],
    ) -> Result<()> {
        let name = storage::sector_name(self.cfg.sealing.miner, s.number);
        let mut doc = s.doc.clone();
        let location = match s.location.clone() {
            Some(l) => l,
            None => {
                let root = alloc.context("no storage path was allocated for a new sector")?;
                numbering::check_fresh(&Location::parse(&root)?, &name)?;
                root
            }
        };
        // The document's paths always follow the sector's location (one rule, also after a
        // failed first run that never reported a document).
        doc["paths"] = storage::sector_paths(Path::new(&Location::parse(&location)?.path), &name);
        let host = w.host_id();
        let remote = self.monitor.net.hosts.get(&host).cloned();
        let bin_dir = match &remote {
            Some(h) => PathBuf::from(&h.bin_dir),
            None => self.cfg.bin_dir(),
        };
        let bin = |b: &str| bin_dir.join(b).display().to_string();
        // Where this task's own inputs go on a remote host.
        let staged = |file: &str| {
            let h = remote.as_ref().expect("remote");
            Location::new(&h.id, &format!("{}/{file}", h.task_dir(t.id)))
        };
        let mut inputs = Vec::new();
        let mut restore = serde_json::Map::new();
        let mut bring_back = None;
        let argv = match t.kind {
            TaskType::AddPiece => {
                let mut v = vec![bin("seal-ap")];
                for (i, p) in s.pieces.iter().enumerate() {
                    v.push("--piece".into());
                    if remote.is_some() {
                        // Staged under a name of ours: the operator's file name never
                        // reaches the host's shell or filesystem.
                        let to = staged(&format!("piece-{i}"));
                        v.push(to.path.clone());
                        inputs.push((p.clone(), to.to_string()));
                    } else {
                        v.push(p.clone());
                    }
                }
                v.push("--fill".into());
                v
            }
            TaskType::PreCommit1 => vec![bin("seal-pc1")],
            TaskType::PreCommit2 => vec![bin("seal-pc2")],
            TaskType::Commit1 => {
                if remote.is_some() {
                    let local = c1_copy(&self.repo, &name);
                    std::fs::create_dir_all(local.parent().expect("in the repo"))?;
                    bring_back = Some(("c1_output".to_string(), local.display().to_string()));
                }
                vec![bin("seal-c1")]
            }
            TaskType::Commit2 => {
                let c1 = match doc.get("c1_output").and_then(Value::as_str) {
                    Some(p) => Location::new("", p),
                    // Commit1 ran before outputs were kept here: read it where the sector is.
                    None => {
                        let at = Location::parse(&location)?;
                        at.with_path(&format!(
                            "{}/cache/{name}/{}",
                            at.path,
                            crate::commit::C1_FILE
                        ))
                    }
                };
                if remote.is_some() || !c1.is_local() {
                    let to = match remote {
                        Some(_) => staged(crate::commit::C1_FILE),
                        None => Location::new(
                            "",
                            &self
                                .task_dir(t.id)
                                .join(crate::commit::C1_FILE)
                                .display()
                                .to_string(),
                        ),
                    };
                    if let Some(v) = doc.get("c1_output") {
                        restore.insert("c1_output".into(), v.clone());
                    }
                    doc["c1_output"] = to.path.clone().into();
                    inputs.push((c1.to_string(), to.to_string()));
                }
                vec![bin("seal-c2")]
            }
            _ => vec![],
        };
        let finalize = if t.kind == TaskType::Finalize {
            let from = fetch_to.clone().unwrap_or_else(|| location.clone());
            let store = self
                .store_path(w, &from, views)
                .with_context(|| format!("worker {} has no storage path that can store", w.name))?;
            Some((store, self.cfg.sealing.keep_unsealed && s.deal))
        } else {
            None
        };
        let touches_remote = remote.is_some()
            || !inputs.is_empty()
            || [
                Some(&location),
                fetch_to.as_ref(),
                finalize.as_ref().map(|f| &f.0),
            ]
            .into_iter()
            .flatten()
            .any(|l| l.starts_with("ssh://"));
        let spec = TaskSpec {
            task: t.id,
            sector: s.number,
            kind: t.kind.short().into(),
            argv,
            doc,
            cpus: parse_cpus(&w.cpus)?,
            timeout: self.cfg.timeout(t.kind),
            lock: self.sector_lock(s.number),
            phase_log: self.repo.root.join("phase.log"),
            name,
            fetch: fetch_to
                .as_ref()
                .filter(|f| **f != location)
                .map(|f| (location.clone(), f.clone())),
            finalize,
            host,
            env: w.env.clone(),
            inputs,
            bring_back,
            restore,
            net: touches_remote.then(|| self.monitor.net.clone()),
            fresh: s.location.is_none(),
        };
        let dir = self.task_dir(t.id);
        std::fs::create_dir_all(&dir)?;
        crate::fsutil::write_atomic(
            &dir.join(supervisor::SPEC),
            serde_json::to_string_pretty(&spec)?.as_bytes(),
        )?;
        // Committed as running before the process exists: a crash in between leaves a task
        // whose lock is free and status missing, which the next daemon re-queues.
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE tasks SET state = 'running', started = ?2, worker = ?3, fetch_to = ?4, wait_reason = NULL WHERE id = ?1",
                params![t.id as i64, now(), w.name, fetch_to],
            )?;
            if s.location.is_none() {
                tx.execute("UPDATE sectors SET location = ?2 WHERE number = ?1", params![s.number as i64, location])?;
            }
            if s.doc.get("paths") != spec.doc.get("paths") {
                let mut d = s.doc.clone();
                d["paths"] = spec.doc["paths"].clone();
                db::set_doc(tx, s.number, &d)?;
            }
            db::event(tx, Some(s.number), "task", &format!("{} task {} started on {}", t.kind.short(), t.id, w.name))
        })?;
        let log = std::fs::File::create(dir.join("supervisor.log"))?;
        let child = Command::new(self.cfg.bin_dir().join("seal-sched"))
            .arg("task-exec")
            .arg(&dir)
            .envs(&w.env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start the task supervisor {}",
                    self.cfg.bin_dir().join("seal-sched").display()
                )
            })?;
        self.db.conn.execute(
            "UPDATE tasks SET pid = ?2 WHERE id = ?1",
            params![t.id as i64, child.id() as i64],
        )?;
        self.children.insert(t.id, child);
        Ok(())
    }
}

/// States as an SQL list of names, for `state IN (…)`: the names are our own identifiers,
/// never operator text.
fn sql_list(states: impl Iterator<Item = SectorState>) -> String {
    states
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Where Commit1's output of a sector sealed on a remote host is kept until Finalize.
pub fn c1_copy(repo: &Repo, name: &str) -> PathBuf {
    repo.root.join("commit1").join(format!("{name}.json"))
}

const MAX_LOST: i64 = 5;

/// Marks a running task for cancellation: its supervisor kills the phase and reports failure.
pub fn cancel(repo: &Repo, db: &Db, id: u64) -> Result<()> {
    let t = db::task(&db.conn, id)?.with_context(|| format!("no task {id}"))?;
    anyhow::ensure!(
        t.state == "running" || t.state == "queued",
        "task {id} is {}, not running",
        t.state
    );
    if t.state == "queued" {
        db.conn.execute(
            "DELETE FROM tasks WHERE id = ?1 AND state = 'queued'",
            [id as i64],
        )?;
        return Ok(());
    }
    std::fs::write(
        repo.tasks_dir()
            .join(id.to_string())
            .join(supervisor::CANCEL),
        b"",
    )?;
    Ok(())
}

pub fn sector_value(s: &SectorRow) -> Value {
    let mut v = serde_json::json!({"state": s.state, "deal": s.deal, "priority": s.priority});
    if let Value::Object(doc) = &s.doc {
        for (k, x) in doc {
            v[k] = x.clone();
        }
    }
    v["state"] = s.state.clone().into();
    if let Some(l) = &s.location {
        v["location"] = l.clone().into();
    }
    if let Some(e) = &s.last_error {
        v["last_error"] = e.clone().into();
    }
    v
}
