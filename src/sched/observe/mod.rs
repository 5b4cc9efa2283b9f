//! Watching the farm from outside the daemon: one [`Snapshot`] of the state database (read
//! through a connection of its own that only reads, so it never delays a pass), rendered as
//! Prometheus metrics (`metrics`), a server-rendered HTML page with an SVG Gantt chart per
//! sector (`page`, `gantt`) or JSON, and served over HTTP (`server`), read-only.

use std::path::Path;

use anyhow::Result;
use rusqlite::Connection;
use serde_json::{json, Value};

use super::config::Config;
use super::db::{
    self, alerts::AlertRow, now, stats, BatchRow, EventRow, RowError, SectorRow, TaskRow,
};
use super::engine::Engine;
use super::hostcmd::Probe;
use super::location::Location;
use super::resources::ResourceTable;
use super::storage;
use super::task_state::TaskState;
use super::task_type::TaskType;

pub mod gantt;
pub mod metrics;
pub mod page;
pub mod server;

/// A worker's capacity and what the scheduler has reserved on it for its running tasks.
#[derive(Debug, Clone)]
pub struct WorkerUse {
    pub name: String,
    /// `""` for this machine, else the remote host.
    pub host: String,
    pub cpus: u32,
    pub memory: u64,
    pub gpus: usize,
    pub cpu_reserved: u32,
    pub memory_reserved: u64,
    pub gpu_reserved: f64,
    /// (task id, type, sector) of its running tasks.
    pub running: Vec<(u64, TaskType, u64)>,
}

/// A storage path: its free bytes, or why it cannot be read.
#[derive(Debug, Clone)]
pub struct PathUse {
    pub root: String,
    pub available: Result<u64, String>,
    pub workers: Vec<String>,
}

/// A host: up or not, and its last measured use.
#[derive(Debug, Clone)]
pub struct HostUse {
    /// `""` for this machine.
    pub host: String,
    pub up: bool,
    pub error: Option<String>,
    pub probe: Option<Probe>,
}

/// Everything the observers show, read at one moment.
pub struct Snapshot {
    pub at: f64,
    pub repo: String,
    pub seal_proof: String,
    pub sectors: Vec<(u64, Result<SectorRow, RowError>)>,
    pub sectors_per_state: Vec<(String, u64)>,
    /// Every readable task, by id.
    pub tasks: Vec<TaskRow>,
    pub task_counts: Vec<stats::TaskCount>,
    pub task_times: Vec<stats::TaskTimes>,
    pub batches: Vec<BatchRow>,
    pub workers: Vec<WorkerUse>,
    pub hosts: Vec<HostUse>,
    pub paths: Vec<PathUse>,
    /// Newest first.
    pub events: Vec<EventRow>,
    /// As the daemon last recorded them.
    pub alerts: Vec<AlertRow>,
    /// State events of every sector, oldest first: (sector, at, detail).
    pub state_events: Vec<EventRow>,
}

/// How many events the page and the JSON carry.
const EVENTS: u32 = 200;

impl Snapshot {
    /// Reads the state through `conn` (see [`stats::open_reader`]); `live` also measures this
    /// machine now (load, memory, GPUs).
    pub fn take(
        repo: &Path,
        cfg: &Config,
        table: &ResourceTable,
        conn: &Connection,
        live: bool,
    ) -> Result<Snapshot> {
        let size = cfg.seal_proof()?.sector_size();
        let tasks: Vec<TaskRow> = db::tasks::listing(conn, true)?
            .into_iter()
            .filter_map(|(_, t)| t.ok())
            .collect();
        let hosts_rows = stats::hosts(conn)?;
        let mut hosts = vec![HostUse {
            host: String::new(),
            up: true,
            error: None,
            probe: live.then(|| super::hostcmd::probe(&[])),
        }];
        for h in &hosts_rows {
            hosts.push(HostUse {
                host: h.host.clone(),
                up: h.up,
                error: h.error.clone(),
                probe: h
                    .probe
                    .as_deref()
                    .and_then(|p| serde_json::from_str(p).ok()),
            });
        }
        let mut workers = Vec::new();
        let mut locs: Vec<(Location, String)> = Vec::new();
        for w in &cfg.workers {
            let info = Engine::worker_info(w);
            let mine: Vec<&TaskRow> = tasks
                .iter()
                .filter(|t| t.state == TaskState::Running && t.worker.as_deref() == Some(&w.name))
                .collect();
            let a = super::engine::held_by(&info, &mine, table, size);
            let running: Vec<_> = mine.iter().map(|t| (t.id, t.kind, t.sector)).collect();
            workers.push(WorkerUse {
                name: w.name.clone(),
                host: w.host_id(),
                cpus: info.cpus,
                memory: info.mem_physical,
                gpus: info.gpus,
                cpu_reserved: a.cpu_use,
                memory_reserved: a.mem_used_min,
                gpu_reserved: a.gpu_used,
                running,
            });
            for p in &w.storage {
                locs.push((Location::new(&w.host_id(), p), w.name.clone()));
            }
        }
        locs.sort();
        let mut paths: Vec<PathUse> = Vec::new();
        for (loc, worker) in locs {
            let root = loc.to_string();
            if let Some(last) = paths.last_mut().filter(|p| p.root == root) {
                last.workers.push(worker);
                continue;
            }
            let available = if loc.is_local() {
                let p = Path::new(&loc.path);
                storage::read_meta(p)
                    .and_then(|m| storage::available(p, &m))
                    .map_err(|e| format!("{e:#}"))
            } else {
                remote_path(&hosts, &loc)
            };
            paths.push(PathUse {
                root,
                available,
                workers: vec![worker],
            });
        }
        Ok(Snapshot {
            at: now(),
            repo: repo.display().to_string(),
            seal_proof: cfg.sealing.seal_proof.clone(),
            sectors: db::sectors::listing(conn)?,
            sectors_per_state: stats::sectors_per_state(conn)?,
            task_counts: stats::task_counts(conn)?,
            task_times: stats::task_times(conn)?,
            batches: db::batches::all(conn)?,
            events: crate::sched::db::events::recent(conn, EVENTS)?,
            alerts: db::alerts::active(conn)?,
            state_events: crate::sched::db::events::of_states(conn)?,
            tasks,
            workers,
            hosts,
            paths,
        })
    }

    /// The readable sectors.
    pub fn sector_rows(&self) -> impl Iterator<Item = &SectorRow> {
        self.sectors.iter().filter_map(|(_, s)| s.as_ref().ok())
    }

    /// `/api/state.json`.
    pub fn to_json(&self) -> Value {
        let sectors: Vec<Value> = self
            .sectors
            .iter()
            .map(|(n, s)| match s {
                Ok(s) => json!({
                    "sector": n, "state": s.state.as_str(), "deal": s.deal, "fails": s.fails,
                    "entered": s.entered, "created": s.created, "location": s.location,
                    "last_error": s.last_error, "batch": s.batch,
                    "timeline": self.timeline(*n).iter().map(|(st, a, b)| json!({"state": st, "from": a, "to": b})).collect::<Vec<_>>(),
                    "tasks": self.tasks.iter().filter(|t| t.sector == *n).map(task_json).collect::<Vec<_>>(),
                }),
                Err(bad) => json!({"sector": n, "state": db::QUARANTINED, "last_error": bad.to_string()}),
            })
            .collect();
        json!({
            "at": self.at,
            "repo": self.repo,
            "seal_proof": self.seal_proof,
            "sectors_per_state": self.sectors_per_state.iter().map(|(s, n)| json!({"state": s, "count": n})).collect::<Vec<_>>(),
            "sectors": sectors,
            "waiting": self.tasks.iter().filter(|t| t.state.is_live()).map(task_json).collect::<Vec<_>>(),
            "workers": self.workers.iter().map(|w| json!({
                "name": w.name, "host": w.host, "cpus": w.cpus, "memory": w.memory, "gpus": w.gpus,
                "cpu_reserved": w.cpu_reserved, "memory_reserved": w.memory_reserved, "gpu_reserved": w.gpu_reserved,
                "running": w.running.iter().map(|(id, k, s)| json!({"task": id, "kind": k.short(), "sector": s})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "hosts": self.hosts.iter().map(|h| json!({"host": h.host, "up": h.up, "error": h.error, "probe": h.probe})).collect::<Vec<_>>(),
            "storage": self.paths.iter().map(|p| match &p.available {
                Ok(a) => json!({"path": p.root, "ok": true, "available": a, "workers": p.workers}),
                Err(e) => json!({"path": p.root, "ok": false, "error": e, "workers": p.workers}),
            }).collect::<Vec<_>>(),
            "batches": self.batches.iter().map(|b| json!({"id": b.id, "kind": b.kind.name(), "state": b.state.name(),
                "created": b.created, "sent": b.sent, "landed_epoch": b.landed_epoch, "message": b.message,
                "error": b.error, "sectors": b.sectors})).collect::<Vec<_>>(),
            "alerts": self.alerts.iter().map(|a| json!({"kind": a.alert.kind.name(), "key": a.alert.key,
                "sector": a.alert.sector, "message": a.alert.message, "raised": a.raised, "notified": a.notified})).collect::<Vec<_>>(),
            "events": self.events.iter().map(|e| json!({"id": e.id, "at": e.at, "sector": e.sector, "kind": e.kind, "detail": e.detail})).collect::<Vec<_>>(),
        })
    }

    /// A sector's states as spans (state, from, to), from its state events: the last one
    /// runs to now unless the sector is done.
    pub fn timeline(&self, sector: u64) -> Vec<(String, f64, f64)> {
        let evs: Vec<&EventRow> = self
            .state_events
            .iter()
            .filter(|e| e.sector == Some(sector))
            .collect();
        let done = self
            .sector_rows()
            .find(|s| s.number == sector)
            .is_some_and(|s| s.state.is_done());
        evs.iter()
            .enumerate()
            .map(|(i, e)| {
                let end = match evs.get(i + 1) {
                    Some(n) => n.at,
                    None if done => e.at,
                    None => self.at,
                };
                let state = e.detail.split_once(": ").map_or(e.detail.as_str(), |x| x.0);
                (state.to_string(), e.at, end)
            })
            .collect()
    }
}

fn task_json(t: &TaskRow) -> Value {
    json!({"id": t.id, "sector": t.sector, "kind": t.kind.short(), "state": t.state.as_str(),
        "worker": t.worker, "created": t.created, "started": t.started, "finished": t.finished,
        "waiting_for": t.wait_reason, "error": t.error})
}

/// A remote storage path from its host's last heartbeat.
fn remote_path(hosts: &[HostUse], loc: &Location) -> Result<u64, String> {
    let Some(h) = hosts.iter().find(|h| h.host == loc.host) else {
        return Err(format!("host {} has not answered yet", loc.host));
    };
    if !h.up {
        return Err(format!(
            "host {} is down: {}",
            loc.host,
            h.error.as_deref().unwrap_or("no answer")
        ));
    }
    let p = h
        .probe
        .as_ref()
        .and_then(|p| p.paths.iter().find(|x| x.root == loc.path));
    match p {
        Some(p) if p.meta.is_some() => Ok(p.available),
        Some(p) => Err(p.error.clone().unwrap_or_default()),
        None => Err(format!("host {} did not report this path", loc.host)),
    }
}

/// Writes the web view of `repo` as it is now to `path` (a page that does not reload, for a
/// browser to open as a file) and returns the path.
pub fn save_page(repo: &super::repo::Repo, path: &Path) -> Result<std::path::PathBuf> {
    let cfg = repo.config()?;
    let table = super::engine::resource_table(&cfg)?;
    drop(repo.open_db()?);
    let conn = stats::open_reader(&repo.db_path())?;
    let s = Snapshot::take(&repo.root, &cfg, &table, &conn, false)?;
    crate::fsutil::write_atomic(path, page::render(&s, None).as_bytes())?;
    Ok(path.to_path_buf())
}

/// Writes sector `n`'s timeline chart to `path` (a standalone SVG file).
pub fn save_sector_svg(repo: &super::repo::Repo, n: u64, path: &Path) -> Result<()> {
    let cfg = repo.config()?;
    let table = super::engine::resource_table(&cfg)?;
    let conn = stats::open_reader(&repo.db_path())?;
    let s = Snapshot::take(&repo.root, &cfg, &table, &conn, false)?;
    anyhow::ensure!(s.sectors.iter().any(|(k, _)| *k == n), "no sector {n}");
    let tasks: Vec<&TaskRow> = s.tasks.iter().filter(|t| t.sector == n).collect();
    let svg = gantt::sector_svg(n, &s.timeline(n), &tasks, s.at, true);
    crate::fsutil::write_atomic(path, svg.as_bytes())?;
    Ok(())
}
