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

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::storage;

/// What the daemon hands a supervisor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSpec {
    pub task: u64,
    pub sector: u64,
    pub kind: String,
    /// The phase binary and its arguments; empty for built-in work (Finalize).
    pub argv: Vec<String>,
    pub doc: Value,
    pub cpus: Vec<usize>,
    pub timeout: Option<f64>,
    pub lock: PathBuf,
    /// Appended one line per start and end, for audits ("never two phases at once").
    pub phase_log: PathBuf,
    /// Sector file name and the storage roots to move it between before running.
    pub name: String,
    pub fetch: Option<(PathBuf, PathBuf)>,
    /// Finalize: the long-term path to end up in, and whether to keep the unsealed copy.
    pub finalize: Option<(PathBuf, bool)>,
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
}

pub const SPEC: &str = "task.json";
pub const STATUS: &str = "status.json";
pub const ABANDONED: &str = "abandoned";
pub const CANCEL: &str = "cancel";
pub const STAGE: &str = "stage";

pub fn read_status(dir: &Path) -> Option<Status> {
    let text = std::fs::read_to_string(dir.join(STATUS)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Takes `lock` without waiting: `Some` when nobody holds it.
pub fn try_lock(lock: &Path) -> Result<Option<Flock<File>>> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)
        .with_context(|| format!("cannot open {}", lock.display()))?;
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
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
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&spec.lock)
        .with_context(|| format!("cannot open {}", spec.lock.display()))?;
    let _held = Flock::lock(f, FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", spec.lock.display()))?;
    let started = super::db::now();
    if dir.join(ABANDONED).exists() {
        let status = Status {
            abandoned: true,
            started,
            finished: started,
            ..Default::default()
        };
        return write_status(dir, &status);
    }
    log_phase(&spec, "start")?;
    let mut status = match execute(dir, &spec) {
        Ok((doc, location)) => Status {
            ok: true,
            doc,
            location,
            ..Default::default()
        },
        Err(e) => Status {
            error: Some(format!("{e:#}").replace('\n', " ")),
            ..Default::default()
        },
    };
    // The files moved even if the phase then failed: report where they are.
    if status.location.is_none() {
        if let Some((_, to)) = &spec.fetch {
            if storage::holds(to, &spec.name) {
                status.location = Some(to.display().to_string());
            }
        }
    }
    status.started = started;
    status.finished = super::db::now();
    log_phase(&spec, "end")?;
    write_status(dir, &status)
}

fn write_status(dir: &Path, s: &Status) -> Result<()> {
    crate::fsutil::write_atomic(&dir.join(STATUS), serde_json::to_string(s)?.as_bytes())
}

fn log_phase(spec: &TaskSpec, what: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.phase_log)?;
    writeln!(
        f,
        "{:.6} {what} sector {} task {} {} pid {}",
        super::db::now(),
        spec.sector,
        spec.task,
        spec.kind,
        std::process::id()
    )?;
    f.sync_data()?;
    Ok(())
}

fn set_stage(dir: &Path, stage: &str) {
    let _ = std::fs::write(dir.join(STAGE), stage);
}

fn rebase(doc: &mut Value, root: &Path, name: &str) {
    doc["paths"] = storage::sector_paths(root, name);
}

fn execute(dir: &Path, spec: &TaskSpec) -> Result<(Option<Value>, Option<String>)> {
    crate::affinity::pin_current_thread_to(&spec.cpus)?;
    let mut doc = spec.doc.clone();
    let mut location = None;
    if let Some((from, to)) = &spec.fetch {
        set_stage(dir, "preparing");
        storage::move_sector(from, to, &spec.name).with_context(|| {
            format!(
                "moving sector files from {} to {}",
                from.display(),
                to.display()
            )
        })?;
        rebase(&mut doc, to, &spec.name);
        location = Some(to.display().to_string());
    }
    set_stage(dir, "running");
    if let Some((store, keep_unsealed)) = &spec.finalize {
        let paths = doc["paths"].clone();
        let get = |k: &str| PathBuf::from(paths[k].as_str().unwrap_or_default());
        let cache = get("cache");
        storage::clear_cache(&cache)?;
        if !keep_unsealed {
            let unsealed = get("unsealed");
            if unsealed.exists() {
                std::fs::remove_file(&unsealed)
                    .with_context(|| format!("cannot remove {}", unsealed.display()))?;
            }
        }
        let root = cache
            .parent()
            .and_then(Path::parent)
            .context("cache path has no storage root")?
            .to_path_buf();
        if &root != store {
            storage::move_sector(&root, store, &spec.name)?;
            rebase(&mut doc, store, &spec.name);
            location = Some(store.display().to_string());
        }
        return Ok((Some(doc), location));
    }
    let out_path = dir.join("stdout.json");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("stderr.log"))?;
    let mut child = Command::new(&spec.argv[0])
        .args(&spec.argv[1..])
        .stdin(Stdio::piped())
        .stdout(File::create(&out_path)?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", spec.argv[0]))?;
    {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(doc.to_string().as_bytes())?;
        stdin.write_all(b"\n")?;
    }
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        let over = spec
            .timeout
            .is_some_and(|lim| t.elapsed().as_secs_f64() > lim);
        let cancelled = dir.join(CANCEL).exists();
        if over || cancelled {
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
    };
    if !status.success() {
        let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
        let last = log
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        anyhow::bail!("{} failed ({status}): {last}", spec.kind);
    }
    let text = std::fs::read_to_string(&out_path)?;
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let out: Value = serde_json::from_str(line)
        .with_context(|| format!("{} printed no sector document", spec.kind))?;
    Ok((Some(out), location))
}
