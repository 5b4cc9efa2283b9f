//! `/metrics`: the snapshot in the Prometheus/OpenMetrics text format, encoded by
//! `prometheus-client` (the Prometheus project's own Rust client). Names carry the
//! `sealkit_` prefix and base units (`_seconds`, `_bytes`); counters (`_total`) are counts
//! of rows of the tasks table, so they never reset when the daemon restarts.

use std::collections::BTreeMap;

use anyhow::Result;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::Snapshot;
use crate::sched::alerts::AlertKind;
use crate::sched::batch::BatchState;
use crate::sched::chain::MsgKind;
use crate::sched::config::show_size;
use crate::sched::state::SectorState;
use crate::sched::task_state::TaskState;
use crate::sector::proof::SealProof;

type Labels = Vec<(String, String)>;
type GaugeF = Gauge<f64, std::sync::atomic::AtomicU64>;

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Phase durations and queue waits: from a second to two days (PC1 of a 64 GiB sector),
/// roughly ×3 apart, with sub-second buckets for test sectors.
const BUCKETS: [f64; 16] = [
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 180.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
    57600.0, 86400.0, 172800.0,
];

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn gauges(
    reg: &mut Registry,
    name: &str,
    help: &str,
    unit: Option<Unit>,
) -> Family<Labels, GaugeF> {
    let f = Family::<Labels, GaugeF>::default();
    match unit {
        Some(u) => reg.register_with_unit(name, help, u, f.clone()),
        None => reg.register(name, help, f.clone()),
    }
    f
}

fn counters(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    reg.register(name, help, f.clone());
    f
}

fn histograms(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Histogram> {
    let f = Family::<Labels, Histogram>::new_with_constructor(
        (|| Histogram::new(BUCKETS)) as fn() -> Histogram,
    );
    reg.register_with_unit(name, help, Unit::Seconds, f.clone());
    f
}

/// A sector size label (`2KiB`, `32GiB`) from a seal proof name.
fn size_label(proof: Option<&str>, default: &str) -> String {
    proof
        .and_then(|p| SealProof::from_name(p).ok())
        .map_or_else(
            || default.to_string(),
            |p| show_size(p.sector_size()).replace(".0 ", ""),
        )
}

/// The exposition of `s`.
pub fn render(s: &Snapshot) -> Result<String> {
    let mut reg = Registry::with_prefix("sealkit");

    let sectors = gauges(&mut reg, "sectors", "Sectors in each state", None);
    let mut per_state: BTreeMap<String, u64> = SectorState::ALL
        .iter()
        .map(|st| (st.as_str().to_string(), 0))
        .collect();
    for (state, n) in &s.sectors_per_state {
        per_state.insert(state.clone(), *n);
    }
    for (state, n) in per_state {
        sectors
            .get_or_create(&l(&[("state", &state)]))
            .set(n as f64);
    }

    let started = counters(
        &mut reg,
        "tasks_started",
        "Tasks started, by type and worker",
    );
    let finished = counters(
        &mut reg,
        "tasks_finished",
        "Tasks ended, by type, worker and outcome (done, failed, lost, abandoned, cancelled)",
    );
    let failed = counters(
        &mut reg,
        "tasks_failed",
        "Tasks whose phase failed, by type and worker",
    );
    let live = gauges(
        &mut reg,
        "tasks",
        "Tasks queued or running now, by type",
        None,
    );
    for c in &s.task_counts {
        let worker = c.worker.as_str();
        if c.started > 0 {
            started
                .get_or_create(&l(&[("type", &c.kind), ("worker", worker)]))
                .inc_by(c.started);
        }
        match TaskState::parse(&c.state) {
            Some(st) if st.is_live() => {
                live.get_or_create(&l(&[("type", &c.kind), ("state", &c.state)]))
                    .inc_by(c.count as f64);
            }
            Some(st) => {
                finished
                    .get_or_create(&l(&[
                        ("type", &c.kind),
                        ("worker", worker),
                        ("outcome", &c.state),
                    ]))
                    .inc_by(c.count);
                if st == TaskState::Failed {
                    failed
                        .get_or_create(&l(&[("type", &c.kind), ("worker", worker)]))
                        .inc_by(c.count);
                }
            }
            None => {}
        }
    }

    let default_size = size_label(Some(&s.seal_proof), "unknown");
    let duration = histograms(
        &mut reg,
        "task_duration",
        "Run time of successful tasks (start to finish), by type and sector size",
    );
    let wait = histograms(
        &mut reg,
        "task_queue_wait",
        "Time tasks waited in the queue before they started, by type and sector size",
    );
    for t in &s.task_times {
        let size = size_label(t.seal_proof.as_deref(), &default_size);
        let labels = l(&[("type", &t.kind), ("sector_size", &size)]);
        wait.get_or_create(&labels)
            .observe((t.started - t.created).max(0.0));
        if let (Some(f), Some(TaskState::Done)) = (t.finished, TaskState::parse(&t.state)) {
            duration
                .get_or_create(&labels)
                .observe((f - t.started).max(0.0));
        }
    }

    let cpus = gauges(&mut reg, "worker_cpus", "Logical CPUs of each worker", None);
    let cpus_res = gauges(
        &mut reg,
        "worker_cpus_reserved",
        "CPU threads the scheduler has reserved for running tasks",
        None,
    );
    let mem = gauges(
        &mut reg,
        "worker_memory",
        "Memory of each worker",
        Some(Unit::Bytes),
    );
    let mem_res = gauges(
        &mut reg,
        "worker_memory_reserved",
        "Memory (MinMemory) reserved for running tasks",
        Some(Unit::Bytes),
    );
    let gpus = gauges(&mut reg, "worker_gpus", "GPUs of each worker", None);
    let gpus_res = gauges(
        &mut reg,
        "worker_gpus_reserved",
        "GPU shares reserved for running tasks",
        None,
    );
    for w in &s.workers {
        let lw = l(&[("worker", &w.name)]);
        cpus.get_or_create(&lw).set(w.cpus as f64);
        cpus_res.get_or_create(&lw).set(w.cpu_reserved as f64);
        mem.get_or_create(&lw).set(w.memory as f64);
        mem_res.get_or_create(&lw).set(w.memory_reserved as f64);
        gpus.get_or_create(&lw).set(w.gpus as f64);
        gpus_res.get_or_create(&lw).set(w.gpu_reserved);
    }

    let up = gauges(
        &mut reg,
        "host_up",
        "1 when the host answers its heartbeat",
        None,
    );
    let load = gauges(
        &mut reg,
        "host_load1",
        "One-minute load average of the host",
        None,
    );
    let host_mem = gauges(
        &mut reg,
        "host_memory",
        "Memory of the host",
        Some(Unit::Bytes),
    );
    let host_mem_used = gauges(
        &mut reg,
        "host_memory_used",
        "Memory in use on the host (total minus available)",
        Some(Unit::Bytes),
    );
    let gpu_util = gauges(
        &mut reg,
        "host_gpu_utilization",
        "GPU utilization of the host, 0 to 1",
        Some(Unit::Other("ratio".into())),
    );
    let gpu_mem = gauges(
        &mut reg,
        "host_gpu_memory_used",
        "GPU memory in use",
        Some(Unit::Bytes),
    );
    for h in &s.hosts {
        let name = if h.host.is_empty() { "local" } else { &h.host };
        let lh = l(&[("host", name)]);
        up.get_or_create(&lh).set(if h.up { 1.0 } else { 0.0 });
        if let Some(p) = &h.probe {
            load.get_or_create(&lh).set(p.load1);
            host_mem.get_or_create(&lh).set(p.mem_total as f64);
            host_mem_used
                .get_or_create(&lh)
                .set(p.mem_total.saturating_sub(p.mem_available) as f64);
            for (i, g) in p.gpus.iter().enumerate() {
                let lg = l(&[("host", name), ("gpu", &i.to_string()), ("model", &g.name)]);
                gpu_util.get_or_create(&lg).set(g.util_percent / 100.0);
                gpu_mem.get_or_create(&lg).set(g.mem_used as f64);
            }
        }
    }

    let batches = gauges(
        &mut reg,
        "batches",
        "Batch messages by kind and state",
        None,
    );
    let pending = gauges(
        &mut reg,
        "batch_pending_sectors",
        "Sectors waiting to be put in a batch",
        None,
    );
    let age = gauges(
        &mut reg,
        "batch_oldest_age",
        "Age of the oldest pending sector (state pending) or unlanded batch (recorded, sent)",
        Some(Unit::Seconds),
    );
    for kind in MsgKind::ALL {
        let k = kind.name();
        let (wait_state, _) = crate::sched::batch::pending_state(kind);
        let waiting: Vec<f64> = s
            .sector_rows()
            .filter(|x| x.state == wait_state)
            .map(|x| x.entered)
            .collect();
        pending
            .get_or_create(&l(&[("kind", k)]))
            .set(waiting.len() as f64);
        let oldest = waiting.iter().copied().fold(f64::INFINITY, f64::min);
        age.get_or_create(&l(&[("kind", k), ("state", "pending")]))
            .set(if oldest.is_finite() {
                s.at - oldest
            } else {
                0.0
            });
        for st in BatchState::ALL {
            let these: Vec<f64> = s
                .batches
                .iter()
                .filter(|b| b.kind == kind && b.state == st)
                .map(|b| b.created)
                .collect();
            batches
                .get_or_create(&l(&[("kind", k), ("state", st.name())]))
                .set(these.len() as f64);
            if !st.is_final() {
                let oldest = these.iter().copied().fold(f64::INFINITY, f64::min);
                age.get_or_create(&l(&[("kind", k), ("state", st.name())]))
                    .set(if oldest.is_finite() {
                        s.at - oldest
                    } else {
                        0.0
                    });
            }
        }
    }

    let avail = gauges(
        &mut reg,
        "storage_available",
        "Bytes available for new sector data on each storage path",
        Some(Unit::Bytes),
    );
    let path_up = gauges(
        &mut reg,
        "storage_up",
        "1 when the storage path can be read",
        None,
    );
    for p in &s.paths {
        let lp = l(&[("path", &p.root)]);
        path_up
            .get_or_create(&lp)
            .set(if p.available.is_ok() { 1.0 } else { 0.0 });
        avail
            .get_or_create(&lp)
            .set(*p.available.as_ref().unwrap_or(&0) as f64);
    }

    let alerts = gauges(&mut reg, "alerts", "Alerts active now, by kind", None);
    for k in AlertKind::ALL {
        let n = s.alerts.iter().filter(|a| a.alert.kind == *k).count();
        alerts
            .get_or_create(&l(&[("kind", k.name())]))
            .set(n as f64);
    }

    let mut out = String::new();
    encode(&mut out, &reg)?;
    Ok(out)
}
