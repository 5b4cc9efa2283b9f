//! Placing queued tasks on workers and starting them: the pure plan (rows and views to
//! starts and wait reasons), the task spec each start writes, and the per-host fetch limit.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use serde_json::Value;

use super::{c1_copy, worker_locations, Engine, PathView};

use crate::sched::admission::Allocation;
use crate::sched::assign::{self, Busy, StoragePath, WorkerState};
use crate::sched::config::{parse_cpus, Config, Worker};
use crate::sched::db::{self, now, sectors, tasks, SectorRow, TaskRow};
use crate::sched::location::Location;
use crate::sched::numbering;
use crate::sched::queue::QueuedTask;
use crate::sched::resources::ResourceTable;
use crate::sched::state::SectorState;
use crate::sched::storage;
use crate::sched::supervisor::{self, TaskSpec};
use crate::sched::task_state::TaskState;
use crate::sched::task_type::TaskType;

impl Engine {
    /// Mean run time per task type so far (for backfill), 60 s before there is history.
    fn estimates(&self) -> Result<HashMap<String, f64>> {
        tasks::mean_durations(&self.db.conn)
    }

    /// Places queued tasks on workers and starts those that fit now.
    pub(super) fn schedule(&mut self) -> Result<()> {
        let queued = self.db.tasks_in(TaskState::Queued)?;
        if queued.is_empty() {
            return Ok(());
        }
        let running = self.db.tasks_in(TaskState::Running)?;
        let sectors: BTreeMap<u64, SectorRow> = self
            .db
            .sectors()?
            .into_iter()
            .map(|s| (s.number, s))
            .collect();
        let views = self.paths();
        let est = self.estimates()?;
        let worker_tasks = self
            .cfg
            .workers
            .iter()
            .map(|w| self.worker_tasks(w))
            .collect::<Result<Vec<_>>>()?;
        let up: Vec<bool> = self
            .cfg
            .workers
            .iter()
            .map(|w| self.monitor.is_up(&w.host_id()))
            .collect();
        let decisions = plan(&PlanInput {
            queued: &queued,
            running: &running,
            sectors: &sectors,
            views: &views,
            workers: &self.cfg.workers,
            worker_tasks: &worker_tasks,
            up: &up,
            est: &est,
            table: &self.table,
            size: self.proof.sector_size(),
            pc1_batch: self.cfg.sealing.pc1_batch,
            pc1_batch_wait: Config::secs(&self.cfg.sealing.pc1_batch_wait),
            now: now(),
        });
        self.db.tx(|tx| {
            for (id, why) in &decisions.waiting {
                tasks::assign(tx, *id, None, Some(why))?;
            }
            for (id, worker, reason) in &decisions.assigned {
                tasks::assign(tx, *id, Some(worker), reason.as_deref())?;
            }
            Ok(())
        })?;
        let mut fetching = self.fetches_by_host(&running);
        for Start {
            task: t,
            worker: wi,
            fetch_to,
            alloc,
            riders,
        } in decisions.starts
        {
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
                    tasks::set_wait_reason(&self.db.conn, t.id, &why)?;
                    continue;
                }
                *n += 1;
            }
            let riders: Vec<(TaskRow, SectorRow)> = riders
                .into_iter()
                .filter_map(|r| Some((r.clone(), sectors.get(&r.sector)?.clone())))
                .collect();
            if let Err(e) = self.start(&t, &w, &s, fetch_to, alloc, &views, &riders) {
                let msg = format!("{e:#}");
                self.db.tx(|tx| tasks::assign(tx, t.id, None, Some(&msg)))?;
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

    /// The spec of a PC1 batch's other sectors: each document follows its sector's location.
    fn riders(&self, riders: &[(TaskRow, SectorRow)]) -> Result<Vec<supervisor::Rider>> {
        riders
            .iter()
            .map(|(t, s)| {
                let name = storage::sector_name(self.cfg.sealing.miner, s.number);
                let at = s
                    .location
                    .as_deref()
                    .with_context(|| format!("sector {} of the batch has no location", s.number))?;
                let mut doc = s.doc.clone();
                storage::rebase_doc(&mut doc, Path::new(&Location::parse(at)?.path), &name);
                let dir = self.task_dir(t.id);
                std::fs::create_dir_all(&dir)?;
                Ok(supervisor::Rider {
                    task: t.id,
                    sector: s.number,
                    name,
                    doc,
                    lock: self.sector_lock(s.number),
                    dir,
                })
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        t: &TaskRow,
        w: &Worker,
        s: &SectorRow,
        fetch_to: Option<String>,
        alloc: Option<String>,
        views: &[PathView],
        batch: &[(TaskRow, SectorRow)],
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
        // The document's paths (and its update's) always follow the sector's location (one
        // rule, also after a failed first run that never reported a document).
        storage::rebase_doc(
            &mut doc,
            Path::new(&Location::parse(&location)?.path),
            &name,
        );
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
                if s.state == SectorState::SnapDealsAddPiece {
                    v.push("--update".into());
                }
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
            TaskType::ReplicaUpdate => vec![bin("seal-ru")],
            TaskType::ProveReplicaUpdate1 => vec![bin("seal-pru1")],
            TaskType::ProveReplicaUpdate2 => vec![bin("seal-pru2")],
            TaskType::RegenSectorKey => vec![bin("seal-unseal"), "--sector-key".into()],
            TaskType::Unseal => {
                // The unsealed copy, where Lotus keeps it (the update's data once snapped).
                let snapped = doc["update"]["comm_r"].is_string();
                let paths = if snapped {
                    &doc["update"]["paths"]
                } else {
                    &doc["paths"]
                };
                let out = paths["unsealed"]
                    .as_str()
                    .context("the document has no unsealed path")?;
                vec![
                    bin("seal-unseal"),
                    "--padded".into(),
                    "--out".into(),
                    out.to_string(),
                ]
            }
            TaskType::Finalize | TaskType::FinalizeReplicaUpdate | TaskType::Fetch => vec![],
        };
        let finalize = if matches!(t.kind, TaskType::Finalize | TaskType::FinalizeReplicaUpdate) {
            let from = fetch_to.clone().unwrap_or_else(|| location.clone());
            let store = self
                .store_path(w, &from, views)
                .with_context(|| format!("worker {} has no storage path that can store", w.name))?;
            // A snapped sector holds deal data; a document may refuse a kept copy.
            let deal = s.deal || t.kind == TaskType::FinalizeReplicaUpdate;
            let wanted = s.doc[numbering::KEEP_UNSEALED].as_bool().unwrap_or(true);
            Some((store, self.cfg.sealing.keep_unsealed && deal && wanted))
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
        // A GPU task on a worker with GPUs holds one device, the least loaded, and sees only
        // it (docs: sched::gpu_assign).
        let size = self.cfg.seal_proof()?.sector_size();
        let gpu = if self.table.get(t.kind, size).gpu_utilization > 0.0 && w.gpus > 0 {
            crate::sched::gpu_assign::least_loaded(w.gpus, &self.gpu_holdings(&w.name)?)
        } else {
            None
        };
        let mut env = w.env.clone();
        if let Some(g) = gpu {
            env.extend(crate::sched::gpu_assign::visible_devices_env(g));
        }
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
            env: env.clone(),
            inputs,
            bring_back,
            restore,
            net: touches_remote.then(|| self.monitor.net.clone()),
            fresh: s.location.is_none(),
            gpu,
            keeps_doc: matches!(t.kind, TaskType::Unseal | TaskType::RegenSectorKey),
            riders: self.riders(batch)?,
        };
        let dir = self.task_dir(t.id);
        std::fs::create_dir_all(&dir)?;
        crate::fsutil::write_atomic(
            &dir.join(supervisor::SPEC),
            serde_json::to_string_pretty(&spec)?.as_bytes(),
        )?;
        // Committed as running before the process exists: a crash in between leaves a task
        // whose lock is free and status missing, which the next daemon re-queues.
        let started = self.db.tx(|tx| {
            if !tasks::start(tx, t.id, &w.name, fetch_to.as_deref())? {
                return Ok(false); // aborted (`jobs --abort`) since this pass read it
            }
            if s.location.is_none() {
                sectors::set_location(tx, s.number, Some(location.as_str()))?;
            }
            keep_paths(tx, s, &spec.doc)?;
            for ((rt, rs), r) in batch.iter().zip(&spec.riders) {
                // All or none: an aborted member rolls the whole start back.
                anyhow::ensure!(
                    tasks::start_rider(tx, rt.id, &w.name, t.id)?,
                    "task {} of the PC1 batch was aborted; the batch forms again",
                    rt.id
                );
                keep_paths(tx, rs, &r.doc)?;
                db::event(
                    tx,
                    Some(rs.number),
                    "task",
                    &format!(
                        "{} task {} started on {} in the batch of task {} ({} sectors)",
                        rt.kind.short(),
                        rt.id,
                        w.name,
                        t.id,
                        batch.len() + 1
                    ),
                )?;
            }
            db::event(
                tx,
                Some(s.number),
                "task",
                &format!(
                    "{} task {} started on {}{}",
                    t.kind.short(),
                    t.id,
                    w.name,
                    gpu.map(|g| format!(" (GPU {g})")).unwrap_or_default()
                ),
            )?;
            Ok(true)
        })?;
        if !started {
            return Ok(());
        }
        let log = std::fs::File::create(dir.join("supervisor.log"))?;
        let child = Command::new(self.cfg.bin_dir().join("seal-sched"))
            .arg("task-exec")
            .arg(&dir)
            .envs(&env)
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
        tasks::set_pid(&self.db.conn, t.id, child.id())?;
        for r in &spec.riders {
            tasks::set_pid(&self.db.conn, r.task, child.id())?;
        }
        self.children.insert(t.id, child);
        Ok(())
    }
}

/// A sector document's paths as the task's spec has them (they follow its location).
fn keep_paths(tx: &rusqlite::Connection, s: &SectorRow, doc: &Value) -> Result<()> {
    let update_paths = |d: &Value| d.get("update").and_then(|u| u.get("paths")).cloned();
    if s.doc.get("paths") != doc.get("paths") || update_paths(&s.doc) != update_paths(doc) {
        let mut d = s.doc.clone();
        d["paths"] = doc["paths"].clone();
        if let Some(u) = update_paths(doc) {
            d["update"]["paths"] = u;
        }
        db::set_doc(tx, s.number, &d)?;
    }
    Ok(())
}

/// What one scheduling pass read (tasks, sectors, storage views, the configured workers with
/// their task types and hosts' state, run-time history): the input of [`plan`].
pub(super) struct PlanInput<'a> {
    pub queued: &'a [TaskRow],
    pub running: &'a [TaskRow],
    pub sectors: &'a BTreeMap<u64, SectorRow>,
    pub views: &'a [PathView],
    pub workers: &'a [Worker],
    /// Task types each worker runs now (config minus runtime switches), by worker index.
    pub worker_tasks: &'a [Vec<TaskType>],
    /// Whether each worker's host is up, by worker index.
    pub up: &'a [bool],
    /// Mean run time per task type's short name.
    pub est: &'a HashMap<String, f64>,
    pub table: &'a ResourceTable,
    pub size: u64,
    /// `sealing.pc1_batch`: most sectors in one PC1 task.
    pub pc1_batch: u32,
    /// `sealing.pc1_batch_wait` in seconds: how long a short batch waits for more sectors.
    pub pc1_batch_wait: f64,
    pub now: f64,
}

/// A placed task that fits its worker's free resources now.
#[derive(Debug)]
pub(super) struct Start {
    pub task: TaskRow,
    /// Index into the configured workers.
    pub worker: usize,
    pub fetch_to: Option<String>,
    pub alloc: Option<String>,
    /// The other sectors of a PC1 batch this task runs.
    pub riders: Vec<TaskRow>,
}

/// What a pass decided, before anything is written or started.
#[derive(Debug)]
pub(super) struct Decisions {
    /// Tasks no worker takes now, with the reason (the plan's, then unreachable storage).
    pub waiting: Vec<(u64, String)>,
    /// Every placed task: (task id, worker name, why it waits there if it cannot start now).
    pub assigned: Vec<(u64, String, Option<String>)>,
    /// Placed tasks whose worker has the resources now, in plan order.
    pub starts: Vec<Start>,
}

/// Turns one pass's rows and views into the plan of `assign::schedule` and the plan into
/// starts and wait reasons. No I/O: [`Engine::schedule`] reads the inputs and writes the result.
pub(super) fn plan(input: &PlanInput) -> Decisions {
    let PlanInput {
        queued,
        running,
        sectors,
        views,
        workers: cfg_workers,
        worker_tasks,
        up,
        est,
        table,
        size,
        pc1_batch,
        pc1_batch_wait,
        now: t_now,
    } = *input;
    let index: HashMap<&str, usize> = views
        .iter()
        .enumerate()
        .map(|(i, p)| (p.root.as_str(), i))
        .collect();
    let est_of = |k: TaskType| est.get(k.short()).copied().unwrap_or(60.0);

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
    for (wi, w) in cfg_workers.iter().enumerate() {
        // A batch is one task: its riders count in their leader's memory.
        let busy = running
            .iter()
            .filter(|t| t.worker.as_deref() == Some(w.name.as_str()) && t.leader.is_none())
            .map(|t| Busy {
                batch: super::sectors_carried(running, t.id),
                task: t.kind,
                sector_size: size,
                est_end: t.started.unwrap_or(t_now) + est_of(t.kind),
            })
            .collect();
        workers.push(WorkerState {
            name: w.name.clone(),
            info: Engine::worker_info(w),
            enabled: up[wi],
            tasks: worker_tasks[wi].clone(),
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
    for t in queued {
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
            batch: 1,
            id: t.id,
            sector: t.sector,
            task: t.kind,
            sector_size: size,
            priority: s.priority,
            est_secs: est_of(t.kind),
            location,
        });
    }
    // A batch no idle worker could hold is never formed (it would wait forever): the
    // largest that fits one is the cap.
    let pc1_batch = largest_pc1_batch(&workers, table, size, pc1_batch);
    let batches = group_pc1(&mut queue, pc1_batch);
    // A batch short of `pc1_batch` waits for more sectors, up to `pc1_batch_wait` after its
    // oldest task was queued (sectors come out of AddPiece one by one).
    let created: HashMap<u64, f64> = queued.iter().map(|t| (t.id, t.created)).collect();
    let mut held = Vec::new();
    queue.retain(|q| {
        let Some(members) = batches.get(&q.id) else {
            return true;
        };
        let oldest = members
            .iter()
            .chain([&q.id])
            .map(|id| created[id])
            .fold(f64::INFINITY, f64::min);
        let until = oldest + pc1_batch_wait;
        if q.batch >= pc1_batch || t_now >= until {
            return true;
        }
        held.push((
            q.id,
            format!(
                "waiting up to {:.0}s more for a fuller PC1 batch ({} of {pc1_batch} sectors)",
                until - t_now,
                q.batch
            ),
        ));
        false
    });
    let plan = assign::schedule(&queue, &workers, &paths, table, t_now);

    // Record the plan, then start what fits on each worker's free capacity, in plan order.
    let mut active: Vec<Allocation> = workers
        .iter()
        .map(|w| {
            let mut a = Allocation::default();
            for b in &w.busy {
                a.add(
                    &w.info,
                    b.task,
                    size,
                    &table.get(b.task, size).batch_of(b.batch),
                );
            }
            a
        })
        .collect();
    let by_id: HashMap<u64, &TaskRow> = queued.iter().map(|t| (t.id, t)).collect();
    let mut decisions = Decisions {
        waiting: plan
            .waiting
            .into_iter()
            .chain(missing)
            .chain(held)
            .collect(),
        assigned: Vec::new(),
        starts: Vec::new(),
    };
    for a in &plan.assignments {
        let t = by_id[&a.task_id];
        let w = &workers[a.worker];
        let members: Vec<&TaskRow> = batches
            .get(&t.id)
            .map(|ids| ids.iter().map(|id| by_id[id]).collect())
            .unwrap_or_default();
        // A batch runs where its sectors are, on this machine; elsewhere the leader goes
        // alone and the others wait for the next pass.
        let fetch_to = a.fetch_to.map(|i| paths[i].id.clone());
        let moves = fetch_to.is_some()
            && fetch_to != sectors.get(&t.sector).and_then(|s| s.location.clone());
        let together = !members.is_empty() && !moves && !cfg_workers[a.worker].is_remote();
        let (riders, apart) = if together {
            (members, Vec::new())
        } else {
            (Vec::new(), members)
        };
        let r = table.get(t.kind, size).batch_of(1 + riders.len() as u32);
        let reason = match active[a.worker].can_handle(&w.info, t.kind, size, &r) {
            Ok(()) => {
                active[a.worker].add(&w.info, t.kind, size, &r);
                decisions.starts.push(Start {
                    task: t.clone(),
                    worker: a.worker,
                    fetch_to,
                    alloc: a.alloc_path.map(|i| paths[i].id.clone()),
                    riders: riders.iter().map(|&m| m.clone()).collect(),
                });
                None
            }
            Err(e) => Some(format!(
                "assigned to {}, waiting for resources: {e}",
                w.name
            )),
        };
        for m in &riders {
            let why = format!(
                "in the PC1 batch of task {} on {}{}",
                t.id,
                w.name,
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
            decisions.assigned.push((m.id, w.name.clone(), Some(why)));
        }
        for m in apart {
            decisions.waiting.push((
                m.id,
                format!(
                    "waiting for a PC1 batch: task {} went to {}, which runs it alone (a remote worker, or the sector moves)",
                    t.id, w.name
                ),
            ));
        }
        decisions.assigned.push((t.id, w.name.clone(), reason));
    }
    // Members of a batch whose leader no worker took wait with it.
    for (leader, ids) in &batches {
        if let Some(why) = decisions
            .waiting
            .iter()
            .find(|(id, _)| id == leader)
            .map(|(_, w)| w.clone())
        {
            for id in ids {
                decisions
                    .waiting
                    .push((*id, format!("in the PC1 batch of task {leader}: {why}")));
            }
        }
    }
    decisions
}

/// The most sectors, up to `n`, whose PC1 batch fits some enabled PC1 worker when idle.
fn largest_pc1_batch(workers: &[WorkerState], table: &ResourceTable, size: u64, n: u32) -> u32 {
    let pc1 = TaskType::PreCommit1;
    let r = table.get(pc1, size);
    (1..=n.max(1))
        .rev()
        .find(|&k| {
            workers.iter().any(|w| {
                w.enabled
                    && w.tasks.contains(&pc1)
                    && Allocation::default()
                        .can_handle(&w.info, pc1, size, &r.batch_of(k))
                        .is_ok()
            })
        })
        .unwrap_or(1)
}

/// PC1 batches (`sealing.pc1_batch`): queued PC1 tasks whose sectors are on one storage path
/// become one queue entry of up to `n` sectors, led by the first in queue order and carrying
/// the count in `batch` (its resources are that many sectors' memory); the others leave the
/// queue and go where their leader goes. Returns each leader's other members (every PC1
/// task that leads, alone or not).
fn group_pc1(queue: &mut Vec<QueuedTask>, n: u32) -> HashMap<u64, Vec<u64>> {
    let mut groups: HashMap<u64, Vec<u64>> = HashMap::new();
    if n <= 1 {
        return groups;
    }
    let mut pc1: Vec<usize> = (0..queue.len())
        .filter(|&i| queue[i].task == TaskType::PreCommit1 && queue[i].location.len() == 1)
        .collect();
    pc1.sort_by(|&a, &b| crate::sched::queue::queue_cmp(&queue[a], &queue[b]));
    let mut open: HashMap<usize, usize> = HashMap::new();
    let mut member = vec![false; queue.len()];
    for qi in pc1 {
        let path = queue[qi].location[0];
        match open.get(&path) {
            Some(&l) if queue[l].batch < n => {
                queue[l].batch += 1;
                let (leader, id) = (queue[l].id, queue[qi].id);
                groups.entry(leader).or_default().push(id);
                member[qi] = true;
            }
            _ => {
                open.insert(path, qi);
                groups.insert(queue[qi].id, Vec::new());
            }
        }
    }
    let mut i = 0;
    queue.retain(|_| {
        i += 1;
        !member[i - 1]
    });
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::state::SectorState;
    use crate::sched::storage::StoreMeta;

    fn worker(name: &str, cpus: &str, tasks: &[&str], storage: &[&str]) -> Worker {
        let toml = format!(
            "name = {name:?}\ncpus = {cpus:?}\nmemory = \"64GiB\"\ntasks = {tasks:?}\nstorage = {storage:?}\n"
        );
        toml::from_str(&toml).expect("a worker")
    }

    fn view(root: &str, meta: Result<StoreMeta>) -> PathView {
        PathView {
            root: root.into(),
            meta,
            available: 1 << 30,
        }
    }

    fn meta(id: &str) -> StoreMeta {
        serde_json::from_value(serde_json::json!({
            "ID": id, "Weight": 10, "CanSeal": true, "CanStore": true,
        }))
        .expect("a meta")
    }

    fn task(
        id: u64,
        sector: u64,
        kind: TaskType,
        state: TaskState,
        worker: Option<&str>,
    ) -> TaskRow {
        TaskRow {
            id,
            sector,
            kind,
            state,
            worker: worker.map(String::from),
            fetch_to: None,
            alloc_path: None,
            pid: None,
            created: 0.0,
            started: worker.map(|_| 90.0),
            finished: None,
            wait_reason: None,
            error: None,
            leader: None,
        }
    }

    fn sector(number: u64, state: SectorState, location: Option<&str>) -> SectorRow {
        SectorRow {
            number,
            state,
            deal: false,
            priority: 0,
            doc: serde_json::json!({}),
            pieces: vec![],
            location: location.map(String::from),
            fails: 0,
            proof_fails: 0,
            retry_at: 0.0,
            last_error: None,
            ticket_epoch: None,
            precommit_epoch: None,
            seed_epoch: None,
            batch: None,
            entered: 0.0,
            created: 0.0,
        }
    }

    /// Hand-built rows through the whole pure step: the plan skips the worker whose host is
    /// down, starts what fits the free resources (fetching the sector to the worker's path),
    /// records the tasks placed behind it with their resource reason, and every other task
    /// waits with its own reason (no worker for its type, unreachable path, missing path).
    #[test]
    fn plan_turns_rows_into_starts_and_wait_reasons() {
        let workers = [
            worker("a", "0-3", &["AP", "PC1", "PC2"], &["/s/a"]),
            worker("b", "0-3", &["AP", "PC1"], &["/s/b"]),
        ];
        let worker_tasks: Vec<Vec<TaskType>> = workers.iter().map(|w| w.task_types()).collect();
        let views = [
            view("/s/a", Ok(meta("a"))),
            view("/s/b", Ok(meta("b"))),
            view("/s/gone", Err(anyhow::anyhow!("no sectorstore.json"))),
        ];
        let queued = [
            task(1, 1, TaskType::PreCommit1, TaskState::Queued, None),
            task(2, 2, TaskType::PreCommit1, TaskState::Queued, None),
            task(3, 3, TaskType::PreCommit1, TaskState::Queued, None),
            task(4, 4, TaskType::Commit1, TaskState::Queued, None),
            task(5, 5, TaskType::AddPiece, TaskState::Queued, None),
            task(6, 6, TaskType::PreCommit2, TaskState::Queued, None),
        ];
        let running = [task(
            7,
            7,
            TaskType::PreCommit1,
            TaskState::Running,
            Some("a"),
        )];
        let sectors: BTreeMap<u64, SectorRow> = [
            sector(1, SectorState::PreCommit1, Some("/s/a")),
            sector(2, SectorState::PreCommit1, Some("/s/gone")),
            sector(3, SectorState::PreCommit1, Some("/s/missing")),
            sector(4, SectorState::Commit1, Some("/s/a")),
            sector(5, SectorState::AddPiece, None),
            sector(6, SectorState::PreCommit2, Some("/s/b")),
            sector(7, SectorState::PreCommit1, Some("/s/a")),
        ]
        .into_iter()
        .map(|s| (s.number, s))
        .collect();
        let est = HashMap::new();
        let table = ResourceTable::defaults();
        let d = plan(&PlanInput {
            queued: &queued,
            running: &running,
            sectors: &sectors,
            views: &views,
            workers: &workers,
            worker_tasks: &worker_tasks,
            up: &[true, false],
            est: &est,
            table: &table,
            size: 2048,
            pc1_batch: 1,
            pc1_batch_wait: 0.0,
            now: 100.0,
        });
        let waiting: Vec<(u64, &str)> = d.waiting.iter().map(|(id, w)| (*id, w.as_str())).collect();
        assert_eq!(
            waiting,
            [
                (4, "no enabled worker accepts C1"),
                (
                    2,
                    "sector 2's files are at /s/gone, which is unreachable (no sectorstore.json); waiting for it"
                ),
                (
                    3,
                    "storage path /s/missing holding sector 3 is missing; waiting for it to return"
                ),
            ]
        );
        // Worker b's host is down: everything goes to a, in plan order. The PC2 (which b
        // does not run) takes a's free threads, so the PC1 and AP placed after it wait there.
        let busy = "assigned to a, waiting for resources: not enough CPU threads: needs 1, 0 free";
        let assigned: Vec<(u64, &str, Option<&str>)> = d
            .assigned
            .iter()
            .map(|(id, w, r)| (*id, w.as_str(), r.as_deref()))
            .collect();
        assert_eq!(
            assigned,
            [(6, "a", None), (1, "a", Some(busy)), (5, "a", Some(busy))]
        );
        // The only start: sector 6's PC2 on worker a, fetching the sector from b's path.
        assert_eq!(d.starts.len(), 1);
        let st = &d.starts[0];
        assert_eq!((st.task.id, st.worker), (6, 0));
        assert_eq!(st.fetch_to.as_deref(), Some("/s/a"));
        assert_eq!(st.alloc, None);
    }

    /// PC1 batches: queued PC1 sectors on one path start as one task of up to `pc1_batch`
    /// (led by the first in queue order), one path's sectors never mix with another's, and
    /// a batch needs its sectors' summed memory: two 32GiB PC1s fit a 100GiB worker one at a
    /// time but never as one batch, so no batch of two forms.
    #[test]
    fn pc1_sectors_on_one_path_start_as_batches_with_their_memory() {
        let mut a = worker("a", "0-3", &["PC1"], &["/s/a", "/s/b"]);
        a.memory = "100GiB".into();
        let workers = [a];
        let worker_tasks: Vec<Vec<TaskType>> = workers.iter().map(|w| w.task_types()).collect();
        let mut views = [view("/s/a", Ok(meta("a"))), view("/s/b", Ok(meta("b")))];
        for v in &mut views {
            v.available = 1 << 40;
        }
        let est = HashMap::new();
        let table = ResourceTable::defaults();
        let run = |n: u64, size: u64, pc1_batch: u32| {
            let queued: Vec<TaskRow> = (1..=n)
                .map(|i| task(i, i, TaskType::PreCommit1, TaskState::Queued, None))
                .collect();
            let sectors: BTreeMap<u64, SectorRow> = (1..=n)
                .map(|i| {
                    let at = if i == 6 { "/s/b" } else { "/s/a" };
                    (i, sector(i, SectorState::PreCommit1, Some(at)))
                })
                .collect();
            plan(&PlanInput {
                queued: &queued,
                running: &[],
                sectors: &sectors,
                views: &views,
                workers: &workers,
                worker_tasks: &worker_tasks,
                up: &[true],
                est: &est,
                table: &table,
                size,
                pc1_batch,
                pc1_batch_wait: 0.0,
                now: 100.0,
            })
        };
        let d = run(6, 512 << 20, 3);
        let starts: Vec<(u64, Vec<u64>)> = d
            .starts
            .iter()
            .map(|s| (s.task.id, s.riders.iter().map(|r| r.id).collect()))
            .collect();
        assert_eq!(
            starts,
            [(1, vec![2, 3]), (4, vec![5]), (6, vec![])],
            "{d:?}"
        );
        assert!(d.waiting.is_empty(), "{:?}", d.waiting);
        let rider = d.assigned.iter().find(|a| a.0 == 2).unwrap();
        assert_eq!(rider.2.as_deref(), Some("in the PC1 batch of task 1 on a"));

        // One 32GiB PC1 (64 GiB at most) fits the 100GiB worker, a batch of two never
        // would: batches are capped at what an idle worker holds, so the first sector starts
        // alone and the second waits for memory instead of for a batch that cannot form.
        let d = run(2, 32 << 30, 2);
        let starts: Vec<(u64, usize)> = d
            .starts
            .iter()
            .map(|s| (s.task.id, s.riders.len()))
            .collect();
        assert_eq!(starts, [(1, 0)], "{d:?}");
        let second = d.assigned.iter().find(|a| a.0 == 2).unwrap();
        let why = second.2.as_deref().unwrap_or_default();
        assert!(why.contains("memory"), "{why}");
    }

    /// `workers` and the web view count a running PC1 batch as one task of three sectors'
    /// memory and one task's threads; riders hold nothing alone, and another worker's
    /// riders do not count.
    #[test]
    fn a_running_batch_holds_its_sectors_memory_once() {
        let table = ResourceTable::defaults();
        let size = 2048;
        let w = worker("a", "0-3", &["PC1", "PC2"], &["/s"]);
        let info = Engine::worker_info(&w);
        let leader = task(1, 1, TaskType::PreCommit1, TaskState::Running, Some("a"));
        let rider = |id, sector| TaskRow {
            leader: Some(1),
            ..task(
                id,
                sector,
                TaskType::PreCommit1,
                TaskState::Running,
                Some("a"),
            )
        };
        let pc2 = task(4, 4, TaskType::PreCommit2, TaskState::Running, Some("a"));
        let (r2, r3) = (rider(2, 2), rider(3, 3));
        let running = vec![&leader, &r2, &r3, &pc2];
        let a = super::super::held_by(&info, &running, &table, size);
        let pc1 = table.get(TaskType::PreCommit1, size);
        let pc2r = table.get(TaskType::PreCommit2, size);
        assert_eq!(a.mem_used_min, 3 * pc1.min_memory + pc2r.min_memory);
        assert_eq!(a.mem_used_max, 3 * pc1.max_memory + pc2r.max_memory);
        assert_eq!(
            a.cpu_use,
            pc1.threads(info.cpus, 0) + pc2r.threads(info.cpus, 0)
        );
        assert_eq!(a.counts[&(TaskType::PreCommit1, size)], 1);
        assert_eq!(super::super::sectors_carried(running.iter().copied(), 1), 3);
        assert_eq!(super::super::sectors_carried(running.iter().copied(), 4), 1);
        // Without its leader in view, a rider alone holds nothing.
        let a = super::super::held_by(&info, &[&r2], &table, size);
        assert_eq!((a.mem_used_min, a.cpu_use), (0, 0));
    }
}
