//! `seal-sched task-exec DIR`: the process that runs one task and outlives the daemon.
//!
//! The daemon writes `DIR/task.json` and starts a supervisor in its own process group. The
//! supervisor takes the sector's lock (so one sector never has two phases running at once,
//! whatever the daemon believes after a crash), pins itself to the worker's CPUs (the phase
//! inherits it: `taskset` semantics through `sched_setaffinity`), moves the sector's files if
//! the task was placed away from them (the preparing stage), runs the phase binary with the
//! document on stdin, its stdout to a file and its stderr to the task's log, and finally
//! writes `DIR/status.json` atomically. A daemon that restarts finds either that file or a
//! supervisor still holding the lock; neither needs the daemon to have been its parent.
//!
//! A PC1 batch (`sealing.pc1_batch`) is one supervisor for several tasks: the task file
//! lists the other sectors as `riders`, each with its own task directory and lock. The
//! supervisor holds every lock (the phase inherits them all), runs one `seal-pc1` over all
//! documents, and writes each rider's `status.json` before its own, so a daemon that sees
//! the leader done finds every rider's result too.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::child::bind_to_parent;
use super::location::Location;
use super::remote::{self, HostSpec, KILL_SCRIPT};
use super::storage;
use super::transfer::Net;

/// What the daemon hands a supervisor (`Default`: an empty spec that tests fill in).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskSpec {
    pub task: u64,
    pub sector: u64,
    pub kind: String,
    /// The phase binary and its arguments (paths on the worker's host); empty for built-in
    /// work (Finalize).
    pub argv: Vec<String>,
    pub doc: Value,
    pub cpus: Vec<usize>,
    pub timeout: Option<f64>,
    pub lock: PathBuf,
    /// Appended one line per start and end, for audits ("never two phases at once").
    pub phase_log: PathBuf,
    /// Sector file name and the storage locations to move it between before running.
    pub name: String,
    pub fetch: Option<(String, String)>,
    /// Finalize: the long-term location to end up in, and whether to keep the unsealed copy.
    pub finalize: Option<(String, bool)>,
    /// The worker's host (`host_id`); empty: this machine.
    #[serde(default)]
    pub host: String,
    /// The worker's environment, for a remote phase (a local one inherits it).
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Files copied (and checked) before the phase runs: Commit2's input, AddPiece's pieces.
    #[serde(default)]
    pub inputs: Vec<(String, String)>,
    /// After a remote phase: the file its result names under this document key is copied
    /// here and the key pointed at the copy (Commit1's output, which Commit2 needs wherever
    /// it runs, even with this host down).
    #[serde(default)]
    pub bring_back: Option<(String, String)>,
    /// Document keys whose values are put back after the phase (paths only valid for it).
    #[serde(default)]
    pub restore: serde_json::Map<String, Value>,
    /// How to reach the hosts this task touches.
    #[serde(default)]
    pub net: Option<Net>,
    /// The sector's first task on a newly allocated path: the path must not hold files of
    /// its name (checked on the host that will write them, right before the phase).
    #[serde(default)]
    pub fresh: bool,
    /// The worker GPU this task holds (a GPU task on a worker with GPUs); `env` confines the
    /// phase to it ([`super::gpu_assign`]).
    #[serde(default)]
    pub gpu: Option<usize>,
    /// The phase writes files and prints no document (`seal-unseal`): the result is the
    /// document it was given.
    #[serde(default)]
    pub keeps_doc: bool,
    /// The other sectors of a PC1 batch, run by this task's phase (local, nothing to move).
    #[serde(default)]
    pub riders: Vec<Rider>,
}

/// One more sector of a batch: its own task, document, lock and task directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rider {
    pub task: u64,
    pub sector: u64,
    pub name: String,
    pub doc: Value,
    pub lock: PathBuf,
    pub dir: PathBuf,
}

/// What the supervisor leaves behind.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Status {
    pub ok: bool,
    pub error: Option<String>,
    pub doc: Option<Value>,
    /// The storage root holding the sector's files now, when the task moved them.
    pub location: Option<String>,
    pub started: f64,
    pub finished: f64,
    /// Someone else ran this task's sector after the daemon gave it up: nothing was done.
    #[serde(default)]
    pub abandoned: bool,
    /// The connection to the worker's host failed: not the sector's fault, queue it again.
    #[serde(default)]
    pub lost: bool,
    /// A fresh sector's path held files of its name: nothing was written; the sector must
    /// be placed again.
    #[serde(default)]
    pub conflict: bool,
}

pub const SPEC: &str = "task.json";
pub const STATUS: &str = "status.json";
pub const ABANDONED: &str = "abandoned";
pub const CANCEL: &str = "cancel";
pub const STAGE: &str = "stage";

/// The spec a task was started with (`None` if it cannot be read).
pub fn read_spec(dir: &Path) -> Option<TaskSpec> {
    let text = std::fs::read_to_string(dir.join(SPEC)).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn read_status(dir: &Path) -> Option<Status> {
    let text = std::fs::read_to_string(dir.join(STATUS)).ok()?;
    serde_json::from_str(&text).ok()
}

/// A sector's lock file, created when missing.
fn open_lock(lock: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)
        .with_context(|| format!("cannot open {}", lock.display()))
}

/// Takes `lock` without waiting: `Some` when nobody holds it.
pub fn try_lock(lock: &Path) -> Result<Option<Flock<File>>> {
    match Flock::lock(open_lock(lock)?, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Some(l)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(anyhow::anyhow!("cannot lock {}: {e}", lock.display())),
    }
}

pub fn run(dir: &Path) -> Result<()> {
    let spec: TaskSpec = serde_json::from_str(
        &std::fs::read_to_string(dir.join(SPEC))
            .with_context(|| format!("cannot read {}", dir.join(SPEC).display()))?,
    )
    .with_context(|| format!("{} is not a task", dir.join(SPEC).display()))?;
    if !spec.riders.is_empty() {
        return run_batch(dir, &spec);
    }
    let held = lock_blocking(&spec.lock)?;
    let started = super::db::now();
    if dir.join(ABANDONED).exists() {
        return write_status(dir, &Status::abandoned(started));
    }
    log_phase(&spec, "start")?;
    let mut location = None;
    let mut status = match execute(dir, &spec, &mut location, held.as_raw_fd()) {
        Ok(doc) => Status {
            ok: true,
            doc,
            ..Default::default()
        },
        Err(e) => Status {
            error: Some(format!("{e:#}").replace('\n', " ")),
            lost: remote::is_lost(&e),
            conflict: e.is::<super::numbering::Occupied>(),
            ..Default::default()
        },
    };
    // The files moved even if the phase then failed: report where they are.
    status.location = location.map(|l: Location| l.to_string());
    status.started = started;
    status.finished = super::db::now();
    log_phase(&spec, "end")?;
    write_status(dir, &status)
}

/// Takes a sector lock, waiting for whoever holds it (an orphaned phase of an earlier run).
fn lock_blocking(lock: &Path) -> Result<Flock<File>> {
    Flock::lock(open_lock(lock)?, FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", lock.display()))
}

impl Status {
    fn abandoned(at: f64) -> Status {
        Status {
            abandoned: true,
            started: at,
            finished: at,
            ..Default::default()
        }
    }
}

/// A PC1 batch: every sector's lock, one phase over all documents, one status per task
/// (the riders' first). A rider the daemon gave up before this ran is left out; if the
/// leader was given up, the whole batch is.
fn run_batch(dir: &Path, spec: &TaskSpec) -> Result<()> {
    anyhow::ensure!(
        spec.host.is_empty() && spec.fetch.is_none() && spec.finalize.is_none(),
        "a batch runs on this machine, on sectors in place"
    );
    // Locks in sector order, so that two supervisors whose sets overlap (one the daemon
    // gave up on, still starting, and the batch that replaced it) never wait on each other.
    let mut order: Vec<(u64, &Path)> = std::iter::once((spec.sector, spec.lock.as_path()))
        .chain(spec.riders.iter().map(|r| (r.sector, r.lock.as_path())))
        .collect();
    order.sort();
    let mut held = std::collections::BTreeMap::new();
    for (sector, lock) in order {
        held.insert(sector, lock_blocking(lock)?);
    }
    let started = super::db::now();
    let leader_abandoned = dir.join(ABANDONED).exists();
    let mut locks = vec![held.remove(&spec.sector).expect("locked above")];
    let mut riders = Vec::new();
    for r in &spec.riders {
        let l = held.remove(&r.sector).expect("locked above");
        if leader_abandoned || r.dir.join(ABANDONED).exists() {
            write_status(&r.dir, &Status::abandoned(started))?;
            continue;
        }
        locks.push(l);
        riders.push(r);
    }
    if leader_abandoned {
        return write_status(dir, &Status::abandoned(started));
    }
    // (sector, task) of every member, the leader first.
    let members: Vec<(u64, u64)> = std::iter::once((spec.sector, spec.task))
        .chain(riders.iter().map(|r| (r.sector, r.task)))
        .collect();
    for &(sector, task) in &members {
        log_phase_of(spec, sector, task, "start")?;
    }
    let docs: Vec<Value> = std::iter::once(spec.doc.clone())
        .chain(riders.iter().map(|r| r.doc.clone()))
        .collect();
    let fds: Vec<RawFd> = locks.iter().map(|l| l.as_raw_fd()).collect();
    let result = crate::affinity::pin_current_thread_to(&spec.cpus)
        .and_then(|()| {
            set_stage(dir, "running");
            run_local_docs(dir, spec, &docs, &fds)
        })
        .and_then(|out| by_sector(spec, &members, out));
    let finished = super::db::now();
    for &(sector, task) in &members {
        log_phase_of(spec, sector, task, "end")?;
    }
    let status = |i: usize| match &result {
        Ok(docs) => Status {
            ok: true,
            doc: Some(docs[i].clone()),
            started,
            finished,
            ..Default::default()
        },
        Err(e) => Status {
            error: Some(format!("{e:#} (in a PC1 batch of {})", members.len()).replace('\n', " ")),
            started,
            finished,
            ..Default::default()
        },
    };
    for (i, r) in riders.iter().enumerate() {
        write_status(&r.dir, &status(i + 1))?;
    }
    write_status(dir, &status(0))
}

/// The phase's documents in the order of `members`, matched by sector number.
fn by_sector(spec: &TaskSpec, members: &[(u64, u64)], out: Vec<Value>) -> Result<Vec<Value>> {
    members
        .iter()
        .map(|&(sector, _)| {
            out.iter()
                .find(|d| d["sector"].as_u64() == Some(sector))
                .cloned()
                .with_context(|| format!("{} printed no document for sector {sector}", spec.kind))
        })
        .collect()
}

fn write_status(dir: &Path, s: &Status) -> Result<()> {
    crate::fsutil::write_atomic(&dir.join(STATUS), serde_json::to_string(s)?.as_bytes())
}

fn log_phase(spec: &TaskSpec, what: &str) -> Result<()> {
    log_phase_of(spec, spec.sector, spec.task, what)
}

fn log_phase_of(spec: &TaskSpec, sector: u64, task: u64, what: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.phase_log)?;
    let line = format!(
        "{} {what} sector {sector} task {task} {} pid {}",
        super::clock::rfc3339_micros(super::db::now()),
        spec.kind,
        std::process::id()
    );
    crate::fsutil::append_line(&mut f, &line)?;
    f.sync_data()?;
    Ok(())
}

fn set_stage(dir: &Path, stage: &str) {
    let _ = std::fs::write(dir.join(STAGE), stage);
}

fn rebase(doc: &mut Value, root: &Location, name: &str) {
    storage::rebase_doc(doc, Path::new(&root.path), name);
}

fn net(spec: &TaskSpec) -> Result<&Net> {
    spec.net
        .as_ref()
        .context("the task names remote hosts but carries no ssh settings")
}

/// Runs the task; `lock` is the sector lock's descriptor, which the phase inherits.
fn execute(
    dir: &Path,
    spec: &TaskSpec,
    location: &mut Option<Location>,
    lock: RawFd,
) -> Result<Option<Value>> {
    if spec.host.is_empty() {
        crate::affinity::pin_current_thread_to(&spec.cpus)?;
    }
    let mut doc = spec.doc.clone();
    if spec.fresh {
        check_fresh(spec, &doc)?;
    }
    if let Some((from, to)) = &spec.fetch {
        set_stage(dir, "preparing");
        let (from, to) = (Location::parse(from)?, Location::parse(to)?);
        let moved = if from.is_local() && to.is_local() {
            storage::move_sector(Path::new(&from.path), Path::new(&to.path), &spec.name)
        } else {
            net(spec)?.move_sector(&from, &to, &spec.name, &dir.join("staging"))
        };
        moved.with_context(|| format!("moving sector files from {from} to {to}"))?;
        rebase(&mut doc, &to, &spec.name);
        *location = Some(to);
    }
    if !spec.inputs.is_empty() {
        set_stage(dir, "preparing");
        for (from, to) in &spec.inputs {
            let (from, to) = (Location::parse(from)?, Location::parse(to)?);
            net(spec)?
                .copy_file(&from, &to, &dir.join("staging"))
                .with_context(|| format!("copying {from} to {to}"))?;
        }
    }
    set_stage(dir, "running");
    if let Some((store, keep_unsealed)) = &spec.finalize {
        return finalize(
            spec,
            doc,
            &Location::parse(store)?,
            *keep_unsealed,
            location,
            dir,
        );
    }
    let mut out = if spec.host.is_empty() {
        run_local(dir, spec, &doc, lock)?
    } else {
        let net = net(spec)?;
        let h = net.host(&spec.host)?;
        let result = run_remote(dir, spec, net, h, &doc, lock);
        cleanup_remote(net, h, spec.task);
        result?
    };
    for (k, v) in &spec.restore {
        out[k] = v.clone();
    }
    if let Some((key, local)) = &spec.bring_back {
        let remote_path = out[key.as_str()]
            .as_str()
            .with_context(|| format!("{} printed no {key}", spec.kind))?
            .to_string();
        net(spec)?
            .copy_file(
                &Location::new(&spec.host, &remote_path),
                &Location::new("", local),
                &dir.join("staging"),
            )
            .with_context(|| format!("fetching {key} {remote_path} from {}", spec.host))?;
        out[key.as_str()] = local.clone().into();
    }
    Ok(Some(out))
}

/// A fresh sector's storage root (from its document's cache path) holds no files of its
/// name, on the host that runs the phase.
fn check_fresh(spec: &TaskSpec, doc: &Value) -> Result<()> {
    let cache = doc["paths"]["cache"].as_str().unwrap_or_default();
    let root = Path::new(cache)
        .parent()
        .and_then(Path::parent)
        .context("the document's cache path has no storage root")?
        .display()
        .to_string();
    if spec.host.is_empty() {
        return super::numbering::check_fresh(&Location::new("", &root), &spec.name);
    }
    let net = net(spec)?;
    let h = net.host(&spec.host)?;
    h.check(&root)?;
    let out = net.ssh.sched(h, &["host", "holds", &root, &spec.name])?;
    let holds: Value = serde_json::from_slice(&out)
        .with_context(|| format!("host {} answered no JSON to `host holds`", spec.host))?;
    if holds["holds"] == true {
        return Err(
            super::numbering::Occupied::at(&Location::new(&spec.host, &root), &spec.name).into(),
        );
    }
    Ok(())
}

/// Finalize (and FinalizeReplicaUpdate): trim the cache, and the update cache of a snapped
/// sector, and drop the unsealed copy where the sector is, then move it to its long-term path.
fn finalize(
    spec: &TaskSpec,
    mut doc: Value,
    store: &Location,
    keep_unsealed: bool,
    location: &mut Option<Location>,
    dir: &Path,
) -> Result<Option<Value>> {
    let paths = doc["paths"].clone();
    let get = |k: &str| paths[k].as_str().unwrap_or_default().to_string();
    let cache = get("cache");
    let root = Path::new(&cache)
        .parent()
        .and_then(Path::parent)
        .context("cache path has no storage root")?
        .display()
        .to_string();
    // Without a fetch the worker holds the sector's path, so it is on the worker's host.
    let here = match location {
        Some(l) => l.with_path(&root),
        None => Location::new(&spec.host, &root),
    };
    let mut caches = vec![cache.clone()];
    if let Some(u) = doc["update"]["paths"]["cache"].as_str() {
        caches.push(u.to_string());
    }
    for (i, cache) in caches.iter().enumerate() {
        // The unsealed copy (the update's data, for a snapped sector) goes with the first.
        let drop_unsealed = !keep_unsealed && i == 0;
        if here.is_local() {
            let unsealed = PathBuf::from(get("unsealed"));
            super::hostcmd::finalize(
                Path::new(cache),
                drop_unsealed.then_some(unsealed.as_path()),
            )?;
        } else {
            let net = net(spec)?;
            let h = net.host(&here.host)?;
            h.check(cache)?;
            let mut args = vec!["host", "finalize", cache.as_str()];
            let unsealed = get("unsealed");
            if drop_unsealed {
                h.check(&unsealed)?;
                args.extend(["--drop-unsealed", unsealed.as_str()]);
            }
            net.ssh.sched(h, &args)?;
        }
    }
    if &here != store {
        if here.is_local() && store.is_local() {
            storage::move_sector(Path::new(&here.path), Path::new(&store.path), &spec.name)?;
        } else {
            net(spec)?.move_sector(&here, store, &spec.name, &dir.join("staging"))?;
        }
        rebase(&mut doc, store, &spec.name);
        *location = Some(store.clone());
    }
    Ok(Some(doc))
}

/// Waits for the phase; kills it on a timeout or an operator's cancel.
fn wait_phase(
    dir: &Path,
    spec: &TaskSpec,
    child: &mut std::process::Child,
    kill_remote: &dyn Fn(),
) -> Result<std::process::ExitStatus> {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s);
        }
        let over = spec
            .timeout
            .is_some_and(|lim| t.elapsed().as_secs_f64() > lim);
        // Cancelling any task of a batch cancels the batch: one process runs them all.
        let cancelled =
            dir.join(CANCEL).exists() || spec.riders.iter().any(|r| r.dir.join(CANCEL).exists());
        if over || cancelled {
            kill_remote();
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!(
                "{}",
                if cancelled {
                    "cancelled by the operator".to_string()
                } else {
                    format!("timed out after {:.0}s", spec.timeout.unwrap_or_default())
                }
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_local(dir: &Path, spec: &TaskSpec, doc: &Value, lock: RawFd) -> Result<Value> {
    let status = spawn_local(dir, spec, std::slice::from_ref(doc), &[lock])?;
    phase_result(dir, spec, doc, status)
}

/// A batch's phase: every document on stdin, one result document per sector on stdout.
fn run_local_docs(
    dir: &Path,
    spec: &TaskSpec,
    docs: &[Value],
    locks: &[RawFd],
) -> Result<Vec<Value>> {
    let status = spawn_local(dir, spec, docs, locks)?;
    phase_failure(dir, spec, status)?;
    std::fs::read_to_string(dir.join("stdout.json"))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .with_context(|| format!("{} printed a line that is no document", spec.kind))
        })
        .collect()
}

/// Runs the phase here on `docs` (one per line on stdin) and waits for it.
fn spawn_local(
    dir: &Path,
    spec: &TaskSpec,
    docs: &[Value],
    locks: &[RawFd],
) -> Result<std::process::ExitStatus> {
    let out_path = dir.join("stdout.json");
    let mut child = bind_to_parent(&mut Command::new(&spec.argv[0]), locks)
        .args(&spec.argv[1..])
        .stdin(Stdio::piped())
        .stdout(File::create(&out_path)?)
        .stderr(stderr_log(dir)?)
        .spawn()
        .with_context(|| format!("cannot start {}", spec.argv[0]))?;
    feed(&mut child, docs)?;
    wait_phase(dir, spec, &mut child, &|| {})
}

fn stderr_log(dir: &Path) -> Result<File> {
    Ok(OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("stderr.log"))?)
}

fn feed(child: &mut std::process::Child, docs: &[Value]) -> Result<()> {
    let mut stdin = child.stdin.take().expect("piped stdin");
    // A phase that exits before reading is reported by its status, not by EPIPE here.
    for doc in docs {
        let _ = stdin.write_all(doc.to_string().as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    Ok(())
}

/// The phase's result document, or its failure with the last line it printed on stderr.
fn phase_result(
    dir: &Path,
    spec: &TaskSpec,
    doc: &Value,
    status: std::process::ExitStatus,
) -> Result<Value> {
    phase_failure(dir, spec, status)?;
    if spec.keeps_doc {
        return Ok(doc.clone());
    }
    let text = std::fs::read_to_string(dir.join("stdout.json"))?;
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("{} printed no sector document", spec.kind))
}

/// A failed phase as an error with the last line it printed on stderr (a lost connection
/// as [`remote::Lost`]).
fn phase_failure(dir: &Path, spec: &TaskSpec, status: std::process::ExitStatus) -> Result<()> {
    if !status.success() {
        let log = std::fs::read(dir.join("stderr.log")).unwrap_or_default();
        let last = remote::last_line(&log);
        if !spec.host.is_empty() && status.code() == Some(remote::SSH_LOST) {
            return Err(remote::Lost(format!(
                "{} on {}: connection lost: {last}",
                spec.kind, spec.host
            ))
            .into());
        }
        anyhow::bail!("{} failed ({status}): {last}", spec.kind);
    }
    Ok(())
}

/// `ssh host -- sh -c RUN_SCRIPT … env K=V … taskset -c CPUS seal-…` with the document on
/// stdin and the result on stdout, as `taskset -c CPUS seal-pc1 < doc` would run locally.
fn run_remote(
    dir: &Path,
    spec: &TaskSpec,
    net: &Net,
    h: &HostSpec,
    doc: &Value,
    lock: RawFd,
) -> Result<Value> {
    // Commit2 reads only its staged input; the sector's files are elsewhere.
    let sector_files = spec.kind != "C2";
    check_doc_paths(h, doc, sector_files)?;
    let pidfile = remote::pid_file(h, &spec.name);
    let label = format!("{} sector {} task {}", spec.kind, spec.sector, spec.task);
    let mut words = remote::run_words(h, &spec.name, &label);
    words.push("env".into());
    words.extend(spec.env.iter().map(|(k, v)| format!("{k}={v}")));
    words.extend(["taskset".into(), "-c".into(), cpu_list(&spec.cpus)]);
    words.extend(spec.argv.iter().cloned());
    let line = super::shell::join(&words);
    let mut ssh = net.ssh.command(h, &line);
    let mut child = bind_to_parent(&mut ssh, &[lock])
        .stdin(Stdio::piped())
        .stdout(File::create(dir.join("stdout.json"))?)
        .stderr(stderr_log(dir)?)
        .spawn()
        .context("cannot start ssh")?;
    feed(&mut child, std::slice::from_ref(doc))?;
    let kill = || {
        let _ = kill_remote(net, h, &pidfile);
    };
    let status = wait_phase(dir, spec, &mut child, &kill)?;
    match phase_result(dir, spec, doc, status) {
        Err(e) if remote::is_lost(&e) => Err(after_lost(net, h, &pidfile, e)),
        r => r,
    }
}

/// Every file a remote phase will write or read by the document is inside the host's
/// storage or run directories: a damaged database row cannot point a phase at `/etc`.
fn check_doc_paths(h: &HostSpec, doc: &Value, sector_files: bool) -> Result<()> {
    let paths = doc["paths"]
        .as_object()
        .filter(|_| sector_files)
        .into_iter()
        .flat_map(|m| m.values());
    let update_paths = doc["update"]["paths"]
        .as_object()
        .filter(|_| sector_files)
        .into_iter()
        .flat_map(|m| m.values());
    for p in paths.chain(update_paths).chain(doc.get("c1_output")) {
        let p = p.as_str().context("a document path is not a string")?;
        h.check(p)
            .with_context(|| format!("sector document path {p:?}"))?;
    }
    Ok(())
}

/// The connection dropped mid-phase. The phase may still be running on the host (it does
/// not need the connection until it prints its result): stop it, so that the retry never
/// runs beside it. A host that stays unreachable for `down_after` is left to its sector
/// lock, which makes a retry there wait for the old run.
fn after_lost(net: &Net, h: &HostSpec, pidfile: &str, e: anyhow::Error) -> anyhow::Error {
    let deadline = Instant::now() + Duration::from_secs(net.down_after.max(1.0) as u64);
    while Instant::now() < deadline {
        if kill_remote(net, h, pidfile).is_ok() {
            return e.context("the remote run was stopped; queued again");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    e.context(format!(
        "host {} did not answer since; queued again",
        h.dest
    ))
}

fn kill_remote(net: &Net, h: &HostSpec, pidfile: &str) -> Result<()> {
    let words = ["sh", "-c", KILL_SCRIPT, "sealkit", pidfile].map(String::from);
    net.ssh.run(h, &words, None).map(|_| ())
}

fn cleanup_remote(net: &Net, h: &HostSpec, task: u64) {
    let tdir = h.task_dir(task);
    if h.check(&tdir).is_ok() {
        let _ = net
            .ssh
            .run(h, &["rm".into(), "-rf".into(), "--".into(), tdir], None);
    }
}

/// `0-3,8` for taskset.
fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_documents_stay_inside_the_host_roots() {
        let h = HostSpec {
            id: "pc1".into(),
            dest: "pc1".into(),
            port: 0,
            run_dir: "/var/tmp/sw".into(),
            bin_dir: "/usr/local/bin".into(),
            rsync_path: String::new(),
            storage: vec!["/srv/seal".into()],
            roots: vec!["/srv/seal".into(), "/var/tmp/sw".into()],
        };
        let name = "s-t01000-1";
        let mut doc = serde_json::json!({"sector": 1});
        rebase(&mut doc, &Location::new("pc1", "/srv/seal"), name);
        doc["c1_output"] = "/var/tmp/sw/tasks/4/commit1-output.json".into();
        check_doc_paths(&h, &doc, true).unwrap();
        doc["paths"]["cache"] = "/srv/seal/../../etc".into();
        let e = format!("{:#}", check_doc_paths(&h, &doc, true).unwrap_err());
        assert!(e.contains("sector document path"), "{e}");
        rebase(&mut doc, &Location::new("pc1", "/srv/other"), name);
        assert!(check_doc_paths(&h, &doc, true).is_err());
        // Commit2 on a GPU host: the sector's files are elsewhere, its input is staged here.
        check_doc_paths(&h, &doc, false).unwrap();
        doc["c1_output"] = "/home/x/c1.json".into();
        assert!(check_doc_paths(&h, &doc, false).is_err());
    }

    /// Supervisors of different sectors append to one phase log at the same time; each line
    /// must land whole (a line written piece by piece interleaves with another's pieces, and
    /// the audit then reads a torn line as a phase out of order).
    #[test]
    fn concurrent_phase_log_lines_land_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("phase.log");
        let spec = |sector: u64| TaskSpec {
            task: sector * 10,
            sector,
            kind: "PC1".into(),
            lock: dir.path().join("lock"),
            phase_log: log.clone(),
            name: format!("s-t01000-{sector}"),
            ..Default::default()
        };
        const LINES: usize = 400;
        std::thread::scope(|s| {
            for sector in 1..=4 {
                let spec = spec(sector);
                s.spawn(move || {
                    for i in 0..LINES {
                        log_phase(&spec, if i % 2 == 0 { "start" } else { "end" }).unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&log).unwrap();
        let pid = std::process::id().to_string();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let n = f.get(3).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            assert!(
                f.len() == 9
                    && ["start", "end"].contains(&f[1])
                    && f[2] == "sector"
                    && (1..=4).contains(&n)
                    && f[4] == "task"
                    && f[5] == (n * 10).to_string()
                    && f[6] == "PC1"
                    && f[8] == pid,
                "a torn phase-log line: {line:?}"
            );
        }
        assert_eq!(text.lines().count(), 4 * LINES);
    }
}
