//! `seal-sched host …`: what the scheduler asks of a remote host's own `seal-sched` over
//! ssh, each answer one JSON document on stdout. Running our binary there (it is installed
//! beside the `seal-*` phases anyway) keeps the remote side to the same Rust code as the
//! local one: the same SHA-256 manifest, the same move and cache trimming, no shell
//! pipelines to parse.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::storage::{self, StoreMeta};
use super::sysinfo;

/// One heartbeat's view of a host.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Probe {
    pub cpus: usize,
    /// One-minute load average.
    pub load1: f64,
    pub mem_total: u64,
    pub mem_available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
    pub gpus: Vec<Gpu>,
    pub paths: Vec<PathProbe>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Gpu {
    pub name: String,
    pub util_percent: f64,
    pub mem_used: u64,
    pub mem_total: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathProbe {
    pub root: String,
    pub meta: Option<StoreMeta>,
    pub available: u64,
    pub error: Option<String>,
}

/// This machine, now: CPUs, load, memory, GPUs (through `nvidia-smi` when there is one) and
/// each named storage path's metadata and free space.
pub fn probe(roots: &[String]) -> Probe {
    let m = sysinfo::detect();
    let load1 = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let paths = roots
        .iter()
        .map(|root| {
            let p = Path::new(root);
            match storage::read_meta(p).and_then(|meta| Ok((storage::available(p, &meta)?, meta))) {
                Ok((available, meta)) => PathProbe {
                    root: root.clone(),
                    meta: Some(meta),
                    available,
                    error: None,
                },
                Err(e) => PathProbe {
                    root: root.clone(),
                    meta: None,
                    available: 0,
                    error: Some(format!("{e:#}")),
                },
            }
        })
        .collect();
    Probe {
        cpus: m.cpus,
        load1,
        mem_total: m.mem_physical,
        mem_available: m.mem_available,
        swap_total: m.mem_swap,
        swap_free: m.mem_swap_free,
        gpus: gpus(),
        paths,
    }
}

fn gpus() -> Vec<Gpu> {
    let Ok(out) = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,utilization.gpu,memory.used,memory.total",
            "--format=csv,noheader,nounits",
        ])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            let num = |i: usize| f.get(i)?.parse::<f64>().ok();
            Some(Gpu {
                name: f.first()?.to_string(),
                util_percent: num(1)?,
                mem_used: (num(2)? as u64) << 20,
                mem_total: (num(3)? as u64) << 20,
            })
        })
        .collect()
}

/// Finalize's local half on the host that holds the sector: trim the cache, and drop the
/// unsealed copy unless it is kept.
pub fn finalize(cache: &Path, unsealed: Option<&Path>) -> Result<u64> {
    let freed = storage::clear_cache(cache)?;
    if let Some(u) = unsealed {
        if u.exists() {
            std::fs::remove_file(u)?;
        }
    }
    Ok(freed)
}

/// A storage path's metadata as `storage attach` asks for it (created with these values
/// unless the path already has a `sectorstore.json`, which is kept as it is).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AttachArgs {
    pub seal: bool,
    pub store: bool,
    pub weight: u64,
    pub groups: Vec<String>,
    pub allow_to: Vec<String>,
    pub max_storage: u64,
}

/// Creates the path's layout and metadata here; returns it and whether it existed.
pub fn attach(path: &Path, a: &AttachArgs) -> Result<(StoreMeta, bool)> {
    anyhow::ensure!(
        path.is_absolute(),
        "storage path {} must be absolute",
        path.display()
    );
    let existed = path.join(storage::META_FILE).exists();
    let mut meta = storage::ensure_path(path, a.seal, a.store)?;
    if !existed {
        meta.weight = a.weight;
        meta.groups = a.groups.clone();
        meta.allow_to = a.allow_to.clone();
        meta.max_storage = a.max_storage;
        storage::write_meta(path, &meta)?;
    }
    Ok((meta, existed))
}
