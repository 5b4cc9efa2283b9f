//! The daemon's work, one pass at a time: collect finished tasks, move sectors along the
//! state machine, publish due batches, queue the next tasks, place them on workers and start
//! what fits. Every step reads the state from the database and writes each change in one
//! transaction, so a pass can be cut off anywhere (SIGKILL) and the next daemon picks up
//! from what was committed: running supervisors are re-attached through their status files
//! and sector locks, and nothing is started twice at once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Child;

use anyhow::{Context, Result};
use serde_json::Value;

use super::admission::{Allocation, WorkerInfo};
use super::chain::{Chain, SimChain};
use super::config::{parse_cpus, parse_size, ChainKind, Config, Worker};
use super::db::{self, sectors, tasks, Db, SectorRow, TaskRow};
use super::hosts::Monitor;
use super::location::Location;
use super::lotus::{api_info, LotusChain, SendPolicy};
use super::remote;
use super::repo::Repo;
use super::resources::ResourceTable;
use super::state::SectorState;
use super::supervisor;
use super::task_state::TaskState;
use super::task_type::TaskType;
use super::transfer::Net;
use crate::sector::proof::SealProof;

mod advance;
mod dispatch;
mod enqueue;
mod outage;
mod paths;
mod publish;
mod reap;

pub use paths::PathView;

pub struct Engine {
    pub repo: Repo,
    pub cfg: Config,
    pub db: Db,
    pub chain: Box<dyn Chain>,
    pub table: ResourceTable,
    proof: SealProof,
    children: HashMap<u64, Child>,
    /// Heartbeats of the remote hosts.
    pub monitor: Monitor,
    /// Commit aggregates being made beside the passes.
    pub aggregator: crate::sched::aggregator::Aggregator,
    /// What went wrong with the chain, while it does.
    outage: outage::Outage,
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

pub fn open_chain(repo: &Repo, cfg: &Config) -> Result<Box<dyn Chain>> {
    Ok(match cfg.chain.kind {
        ChainKind::Sim => Box::new(open_sim(repo, cfg)?),
        ChainKind::Lotus => Box::new(open_lotus(cfg)?),
    })
}

/// The repository's simulated chain (`chain.db`).
pub fn open_sim(repo: &Repo, cfg: &Config) -> Result<SimChain> {
    SimChain::open(
        &repo.chain_path(),
        Config::secs(&cfg.chain.epoch),
        cfg.chain.seed_delay,
        &cfg.chain.secret,
        crate::filecoin::token::parse_fil(&cfg.chain.wallet).context("key chain.wallet")?,
    )
}

/// The Lotus node of the config, connected and checked.
pub fn open_lotus(cfg: &Config) -> Result<LotusChain> {
    let record = (!cfg.chain.record.is_empty()).then(|| std::path::Path::new(&cfg.chain.record));
    LotusChain::connect(
        api_info::locate(&cfg.chain.api_info)?,
        record,
        cfg.sealing.miner,
        cfg.seal_proof()?,
        &cfg.chain.network,
    )
    .map(|c| {
        c.with_policy(SendPolicy {
            lifetime_days: cfg.chain.sector_lifetime_days,
            // Checked by Config::validate.
            max_fee_per_sector: crate::filecoin::token::parse_fil(&cfg.chain.max_fee_per_sector)
                .unwrap_or_default(),
        })
    })
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
            aggregator: crate::sched::aggregator::Aggregator::new(repo.db_path()),
            repo: repo.clone(),
            cfg,
            db,
            chain,
            table,
            proof,
            children: HashMap::new(),
            outage: outage::Outage::default(),
        })
    }

    /// One full pass. Returns whether anything is still in flight: tasks, or sectors that
    /// are not done and not set aside (quarantined).
    pub fn tick(&mut self) -> Result<bool> {
        self.monitor.poll(&mut self.db)?;
        self.reap()?;
        self.advance()?;
        self.publish_if_reachable()?;
        self.enqueue()?;
        self.schedule()?;
        let done: Vec<SectorState> = SectorState::ALL
            .iter()
            .copied()
            .filter(|s| s.is_done())
            .collect();
        let busy = sectors::count_moving(&self.db.conn, &done)?;
        Ok(busy > 0 || !self.children.is_empty())
    }

    fn task_dir(&self, id: u64) -> PathBuf {
        self.repo.tasks_dir().join(id.to_string())
    }

    /// The GPUs worker `worker`'s running tasks hold, from their task specs.
    pub fn gpu_holdings(&self, worker: &str) -> Result<Vec<crate::sched::gpu_assign::Holding>> {
        let size = self.cfg.seal_proof()?.sector_size();
        Ok(self
            .db
            .tasks_in(crate::sched::task_state::TaskState::Running)?
            .into_iter()
            .filter(|t| t.worker.as_deref() == Some(worker))
            .filter_map(|t| {
                let spec = crate::sched::supervisor::read_spec(&self.task_dir(t.id))?;
                Some(crate::sched::gpu_assign::Holding {
                    task: t.id,
                    gpu: spec.gpu?,
                    utilization: self.table.get(t.kind, size).gpu_utilization,
                })
            })
            .collect())
    }

    fn sector_lock(&self, sector: u64) -> PathBuf {
        self.repo.sector_lock(sector)
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
}

/// What a worker's running tasks hold: a PC1 batch is one task with its sectors' memory
/// (its riders hold nothing of their own).
pub fn held_by(
    info: &WorkerInfo,
    running: &[&TaskRow],
    table: &ResourceTable,
    size: u64,
) -> Allocation {
    let mut a = Allocation::default();
    for t in running.iter().filter(|t| t.leader.is_none()) {
        let n = sectors_carried(running.iter().copied(), t.id);
        a.add(info, t.kind, size, &table.get(t.kind, size).batch_of(n));
    }
    a
}

/// How many sectors running task `task` carries: itself and the riders of its PC1 batch,
/// found among `running`. The one count behind admission, `workers` and the web view.
pub fn sectors_carried<'a>(running: impl IntoIterator<Item = &'a TaskRow>, task: u64) -> u32 {
    1 + running
        .into_iter()
        .filter(|r| r.leader == Some(task))
        .count() as u32
}

/// Where Commit1's output of a sector sealed on a remote host is kept until Finalize.
pub fn c1_copy(repo: &Repo, name: &str) -> PathBuf {
    repo.root.join("commit1").join(format!("{name}.json"))
}

/// Cancels a task. A queued one is marked `cancelled` in one conditional update, which the
/// daemon honours: it starts only a task it can still move from `queued` to `running`, so an
/// abort and a start never both win. A running one (or one that started meanwhile) gets its
/// cancel file: its supervisor kills the phase and reports failure, and the sector retries.
pub fn cancel(repo: &Repo, db: &Db, id: u64) -> Result<()> {
    let t = db.task(id)?.with_context(|| format!("no task {id}"))?;
    anyhow::ensure!(t.state.is_live(), "task {id} is {}, not running", t.state);
    if tasks::cancel_queued(&db.conn, id, "aborted by the operator")? {
        db::event(
            &db.conn,
            Some(t.sector),
            "task",
            &format!(
                "{} task {id} aborted by the operator before it started",
                t.kind.short()
            ),
        )?;
        return Ok(());
    }
    let t = db.task(id)?.with_context(|| format!("no task {id}"))?;
    anyhow::ensure!(
        t.state == TaskState::Running,
        "task {id} is {}, not running",
        t.state
    );
    std::fs::write(
        repo.tasks_dir()
            .join(id.to_string())
            .join(supervisor::CANCEL),
        b"",
    )?;
    Ok(())
}

pub fn sector_value(s: &SectorRow) -> Value {
    let mut v = serde_json::json!({"deal": s.deal, "priority": s.priority});
    if let Value::Object(doc) = &s.doc {
        for (k, x) in doc {
            v[k] = x.clone();
        }
    }
    v["state"] = s.state.as_str().into();
    if let Some(l) = &s.location {
        v["location"] = l.clone().into();
    }
    if let Some(e) = &s.last_error {
        v["last_error"] = e.clone().into();
    }
    v
}
