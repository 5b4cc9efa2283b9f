//! What the listing commands print: text tables for people, `--json` for scripts.

use anyhow::Result;
use serde_json::{json, Value};

use super::clock;
use super::config::show_size;
use super::db::{self, now, Db, SectorRow};
use super::engine::{sector_value, Engine};
use super::state::SectorState;
use super::supervisor;
use super::task_state::TaskState;

fn bar(frac: f64) -> String {
    let n = (frac.clamp(0.0, 1.0) * 20.0).round() as usize;
    format!("[{}{}]", "|".repeat(n), " ".repeat(20 - n))
}

/// One line per GPU: which running task holds it.
fn gpu_lines(
    gpus: usize,
    holdings: &[super::gpu_assign::Holding],
    running: &[&db::TaskRow],
) -> String {
    (0..gpus)
        .map(|g| {
            let holders: Vec<String> = holdings
                .iter()
                .filter(|h| h.gpu == g)
                .map(|h| match running.iter().find(|t| t.id == h.task) {
                    Some(t) => format!("task {} ({}, sector {})", t.id, t.kind.short(), t.sector),
                    None => format!("task {}", h.task),
                })
                .collect();
            let who = if holders.is_empty() {
                "free".to_string()
            } else {
                holders.join(", ")
            };
            format!("\t  GPU {g}: {who}\n")
        })
        .collect()
}

/// `seal-sched workers`: like `lotus-miner sealing workers`.
pub fn workers(e: &Engine) -> Result<(String, Value)> {
    let size = e.cfg.seal_proof()?.sector_size();
    let running = e.db.tasks_in(TaskState::Running)?;
    let mut text = String::new();
    let mut out = Vec::new();
    // Live use, measured now: this machine directly, each remote host over its shared ssh
    // connection (all hosts at once, so a dead one costs one connect timeout).
    let mut live = super::hosts::probe_all(&e.monitor.net);
    live.insert(String::new(), Ok(super::hostcmd::probe(&[])));
    for w in &e.cfg.workers {
        let info = Engine::worker_info(w);
        let mine: Vec<_> = running
            .iter()
            .filter(|t| t.worker.as_deref() == Some(&w.name))
            .collect();
        let a = super::engine::held_by(&info, &mine, &e.table, size);
        let tasks = e.worker_tasks(w)?;
        let counts: Vec<String> = tasks
            .iter()
            .map(|k| {
                // Tasks, as MaxConcurrent counts them: a PC1 batch is one.
                let n = mine
                    .iter()
                    .filter(|t| t.kind == *k && t.leader.is_none())
                    .count();
                let max = e.table.get(*k, size).max_concurrent;
                if max > 0 {
                    format!("{}({n}/{max})", k.short())
                } else {
                    format!("{}({n})", k.short())
                }
            })
            .collect();
        let mem = info.mem_physical.max(1) as f64;
        let vmem = (info.mem_physical + info.mem_swap).max(1) as f64;
        text += &format!("Worker {}, cpus {}\n", w.name, w.cpus);
        text += &format!("\tTASK: {}\n", counts.join(" "));
        text += &format!(
            "\tCPU:  {} {}/{} core(s) in use\n",
            bar(a.cpu_use as f64 / info.cpus.max(1) as f64),
            a.cpu_use,
            info.cpus
        );
        text += &format!(
            "\tRAM:  {} {:.0}% {}/{}\n",
            bar(a.mem_used_min as f64 / mem),
            100.0 * a.mem_used_min as f64 / mem,
            show_size(a.mem_used_min),
            show_size(info.mem_physical)
        );
        text += &format!(
            "\tVMEM: {} {:.0}% {}/{}\n",
            bar(a.mem_used_max as f64 / vmem),
            100.0 * a.mem_used_max as f64 / vmem,
            show_size(a.mem_used_max),
            show_size(info.mem_physical + info.mem_swap)
        );
        let probe = &live[&w.host_id()];
        let host = if w.is_remote() {
            w.host_id()
        } else {
            "this machine".into()
        };
        match probe {
            Ok(p) => {
                let used = p.mem_total.saturating_sub(p.mem_available);
                text += &format!(
                    "\tHOST: {host} up: load {:.2} on {} cpu(s), {}/{} memory in use{}\n",
                    p.load1,
                    p.cpus,
                    show_size(used),
                    show_size(p.mem_total),
                    p.gpus
                        .iter()
                        .map(|g| format!(
                            ", {} {:.0}% {}/{}",
                            g.name,
                            g.util_percent,
                            show_size(g.mem_used),
                            show_size(g.mem_total)
                        ))
                        .collect::<String>()
                );
            }
            Err(err) => text += &format!("\tHOST: {host} DOWN: {err:#}\n"),
        }
        let holdings = e.gpu_holdings(&w.name)?;
        if info.gpus > 0 {
            text += &format!(
                "\tGPU:  {} {:.0}% {:.2}/{} gpu(s) in use\n",
                bar(a.gpu_used / info.gpus as f64),
                100.0 * a.gpu_used / info.gpus as f64,
                a.gpu_used,
                info.gpus
            );
            text += &gpu_lines(info.gpus, &holdings, &mine);
        }
        out.push(json!({
            "name": w.name, "cpus": info.cpus, "cpu_set": w.cpus, "cpu_use": a.cpu_use,
            "mem_physical": info.mem_physical, "mem_swap": info.mem_swap,
            "mem_used_min": a.mem_used_min, "mem_used_max": a.mem_used_max,
            "gpus": info.gpus, "gpu_used": a.gpu_used,
            "gpu_holders": holdings.iter().map(|h| json!({"gpu": h.gpu, "task": h.task})).collect::<Vec<_>>(),
            "tasks": tasks.iter().map(|t| t.short()).collect::<Vec<_>>(),
            "running": mine.iter().map(|t| json!({"task": t.id, "sector": t.sector, "kind": t.kind.short()})).collect::<Vec<_>>(),
            "utilization": a.utilization(&info),
            "host": w.host_id(),
            "up": probe.is_ok(),
            "live": probe.as_ref().ok(),
            "error": probe.as_ref().err().map(|e| format!("{e:#}")),
        }));
    }
    Ok((text, Value::Array(out)))
}

/// `seal-sched jobs`: running and waiting tasks, with why each one waits, under the chain's
/// current epoch (`head`). A task row that cannot be read is listed with its error.
pub fn jobs(e: &Engine, all: bool, head: i64) -> Result<(String, Value)> {
    let mut text = format!(
        "Chain epoch {head} at {}\n{:<6} {:<7} {:<5} {:<12} {:<10} {:>8}  {}\n",
        clock::now(),
        "ID",
        "Sector",
        "Task",
        "Worker",
        "State",
        "Time",
        "Waiting for"
    );
    let mut out = Vec::new();
    for (id, t) in db::tasks::listing(&e.db.conn, all)? {
        let t = match t {
            Ok(t) => t,
            Err(bad) => {
                text += &format!(
                    "{:<6} {:<7} {:<5} {:<12} {:<10} {:>8}  {bad}\n",
                    id,
                    bad.sector.map_or("?".into(), |s| s.to_string()),
                    "?",
                    "-",
                    QUARANTINE_LABEL,
                    "-"
                );
                out.push(json!({"id": id, "sector": bad.sector, "state": db::QUARANTINED, "error": bad.to_string()}));
                continue;
            }
        };
        let dir = e.repo.tasks_dir().join(t.id.to_string());
        let stage = match t.state {
            TaskState::Running => std::fs::read_to_string(dir.join(supervisor::STAGE))
                .unwrap_or_else(|_| "starting".into()),
            TaskState::Queued if t.worker.is_some() => "assigned".into(),
            s => s.to_string(),
        };
        let since = t.started.unwrap_or(t.created);
        let secs = t.finished.unwrap_or_else(now) - since;
        // A PC1 batch's rider runs in its leader's process, and logs there.
        let ride = t.leader.map(|l| format!("in the PC1 batch of task {l}"));
        let log_dir = t
            .leader
            .map_or(dir.clone(), |l| e.repo.tasks_dir().join(l.to_string()));
        text += &format!(
            "{:<6} {:<7} {:<5} {:<12} {:<10} {:>7.0}s  {}\n",
            t.id,
            t.sector,
            t.kind.short(),
            t.worker.as_deref().unwrap_or("-"),
            stage,
            secs,
            t.wait_reason
                .as_deref()
                .or(t.error.as_deref())
                .or(ride.as_deref())
                .unwrap_or("")
        );
        out.push(json!({
            "id": t.id, "sector": t.sector, "task": t.kind.short(), "state": t.state.as_str(), "stage": stage,
            "worker": t.worker, "seconds": secs, "waiting_for": t.wait_reason, "error": t.error,
            "batch_leader": t.leader, "log": log_dir.join("stderr.log").display().to_string(),
        }));
    }
    Ok((text, json!({"chain_epoch": head, "jobs": out})))
}

/// How the text listings mark a row set aside because it cannot be read.
const QUARANTINE_LABEL: &str = "QUARANTINED";

pub fn sectors(db: &Db) -> Result<(String, Value)> {
    let mut text = format!(
        "{:<7} {:<20} {:<5} {:<8} {}\n",
        "Sector", "State", "Deal", "Fails", "comm_r"
    );
    let mut out = Vec::new();
    for (n, s) in db::sectors::listing(&db.conn)? {
        let s = match s {
            Ok(s) => s,
            Err(bad) => {
                text += &format!("{n:<7} {QUARANTINE_LABEL:<20} {bad}\n");
                out.push(
                    json!({"sector": n, "state": db::QUARANTINED, "last_error": bad.to_string()}),
                );
                continue;
            }
        };
        text += &format!(
            "{:<7} {:<20} {:<5} {:<8} {}\n",
            s.number,
            s.state,
            if s.deal { "yes" } else { "no" },
            s.fails,
            s.doc.get("comm_r").and_then(Value::as_str).unwrap_or("-")
        );
        out.push(sector_value(&s));
    }
    Ok((text, Value::Array(out)))
}

/// The per-phase timeline of one sector: each state, when it began and how long it lasted.
pub fn timeline(db: &Db, s: &SectorRow) -> Result<Vec<(String, f64, f64, String)>> {
    let events: Vec<_> = db
        .events(s.number)?
        .into_iter()
        .filter(|e| e.kind == "state")
        .collect();
    let mut out = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        let end = events.get(i + 1).map_or_else(
            || {
                if s.state.is_done() {
                    ev.at
                } else {
                    now()
                }
            },
            |n| n.at,
        );
        let (state, detail) = ev.detail.split_once(": ").unwrap_or((&ev.detail, ""));
        out.push((state.to_string(), ev.at, end - ev.at, detail.to_string()));
    }
    Ok(out)
}

/// `seal-sched sectors status N`: the sector, the chain's current epoch (`head`) and the
/// sector's timeline with each state's start as RFC 3339 UTC.
pub fn status(db: &Db, number: u64, head: i64) -> Result<(String, Value)> {
    let s = match db.sector(number)? {
        Some(s) => s,
        None => {
            // Set aside or unreadable: say which column of the row is wrong.
            let bad = db::sectors::listing(&db.conn)?
                .into_iter()
                .find(|(n, _)| *n == number)
                .and_then(|(_, r)| r.err());
            return match bad {
                Some(bad) => Ok((
                    format!("Sector {number}: {QUARANTINE_LABEL}, chain epoch {head}\n  error    {bad}\n"),
                    json!({"sector": number, "state": db::QUARANTINED, "chain_epoch": head, "last_error": bad.to_string()}),
                )),
                None => Err(anyhow::anyhow!("no sector {number}")),
            };
        }
    };
    let tl = timeline(db, &s)?;
    let start = tl.first().map_or(s.created, |t| t.1);
    let mut text = format!(
        "Sector {}: {}{}, chain epoch {head} at {}\n",
        s.number,
        s.state,
        if s.deal { " (deals)" } else { " (CC)" },
        clock::now()
    );
    for k in ["comm_d", "comm_r", "ticket", "seed"] {
        if let Some(v) = s.doc.get(k).and_then(Value::as_str) {
            text += &format!("  {k:<8} {v}\n");
        }
    }
    if let Some(e) = &s.last_error {
        text += &format!("  error    {e}\n");
    }
    text += "  timeline:\n";
    for (state, at, took, detail) in &tl {
        text += &format!(
            "    {}  +{:>8.1}s  {:<20} {:>8.1}s  {}\n",
            clock::rfc3339(*at),
            at - start,
            state,
            took,
            detail
        );
    }
    let mut v = sector_value(&s);
    v["chain_epoch"] = head.into();
    v["timeline"] = tl
        .iter()
        .map(|(st, at, took, d)| json!({"state": st, "at": at, "time": clock::rfc3339(*at), "seconds": took, "detail": d}))
        .collect();
    Ok((text, v))
}

pub fn batches(db: &Db) -> Result<(String, Value)> {
    let mut text = String::new();
    let mut out = Vec::new();
    for b in db.batches()? {
        text += &format!(
            "Batch {} ({}): {}{}\n",
            b.id,
            b.kind.name(),
            b.state.name(),
            b.landed_epoch
                .map(|e| format!(" at epoch {e}"))
                .unwrap_or_default()
        );
        if let Some(m) = &b.message {
            text += &format!("  Message: {m}\n");
        }
        text += &format!(
            "  Sectors: {}\n",
            b.sectors
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        out.push(json!({"id": b.id, "kind": b.kind.name(), "state": b.state.name(), "created": b.created, "sent": b.sent,
            "landed_epoch": b.landed_epoch, "message": b.message, "sectors": b.sectors}));
    }
    let pending: Vec<(SectorState, u64)> = db
        .sectors()?
        .into_iter()
        .filter(|s| {
            matches!(
                s.state,
                SectorState::PreCommitBatch | SectorState::CommitBatch
            )
        })
        .map(|s| (s.state, s.number))
        .collect();
    for kind in [SectorState::PreCommitBatch, SectorState::CommitBatch] {
        let ns: Vec<String> = pending
            .iter()
            .filter(|p| p.0 == kind)
            .map(|p| p.1.to_string())
            .collect();
        if !ns.is_empty() {
            text += &format!("Pending {kind}: {}\n", ns.join(" "));
        }
    }
    Ok((
        text,
        json!({"batches": out, "pending": pending.iter().map(|(k, n)| json!({"state": k.as_str(), "sector": n})).collect::<Vec<_>>()}),
    ))
}

pub fn storage(e: &Engine) -> Result<(String, Value)> {
    let mut text = String::new();
    let mut out = Vec::new();
    for v in e.paths() {
        let workers: Vec<&str> = e
            .cfg
            .workers
            .iter()
            .filter(|w| super::engine::worker_locations(w).contains(&v.root))
            .map(|w| w.name.as_str())
            .collect();
        match &v.meta {
            Ok(m) => {
                text += &format!(
                    "{} ({}): {}{} weight {} available {} groups [{}] allow-to [{}] workers [{}]\n",
                    v.root,
                    m.id,
                    if m.can_seal { "seal " } else { "" },
                    if m.can_store { "store " } else { "" },
                    m.weight,
                    show_size(v.available),
                    m.groups.join(","),
                    m.allow_to.join(","),
                    workers.join(",")
                );
                out.push(json!({"path": v.root, "ok": true, "meta": m, "available": v.available, "workers": workers}));
            }
            Err(err) => {
                text += &format!("{}: ERROR {err:#}\n", v.root);
                out.push(json!({"path": v.root, "ok": false, "error": format!("{err:#}"), "workers": workers}));
            }
        }
    }
    Ok((text, Value::Array(out)))
}

/// `seal-sched chain status`: the chain the config names, as it answers now.
pub fn chain_status(
    repo: &super::repo::Repo,
    cfg: &super::config::Config,
) -> Result<(String, Value)> {
    use super::config::ChainKind;
    use crate::filecoin::token::fil_text;
    let v = match cfg.chain.kind {
        ChainKind::Sim => {
            use super::chain::Chain;
            let c = super::engine::open_sim(repo, cfg)?;
            let f = c.funds()?;
            let mut funds = super::funds::report(
                super::funds::sim_costs(cfg.seal_proof()?),
                f.wallet,
                0,
                &repo.open_db()?,
            )?;
            funds["promised_to_messages_in_flight"] = fil_text(f.promised).into();
            funds["locked_deposits"] = fil_text(f.locked.deposit).into();
            funds["locked_pledge"] = fil_text(f.locked.pledge).into();
            funds["gas_burnt"] = fil_text(f.gas_burnt).into();
            funds["deposits_burnt"] = fil_text(f.deposits_burnt).into();
            json!({
                "kind": "sim",
                "chain_db": repo.chain_path().display().to_string(),
                "head": c.head()?,
                "block_delay_secs": c.epoch_secs(),
                "challenge_delay": c.seed_delay(),
                "messages_in_flight": c.in_flight()?,
                "sends_messages": true,
                "funds": funds,
            })
        }
        ChainKind::Lotus => {
            let lotus = super::engine::open_lotus(cfg)?;
            let mut v = lotus.status()?;
            let (deposit, pledge) = lotus.cc_sector_costs(cfg.seal_proof()?)?;
            let (wallet, miner) = lotus.balances()?;
            let costs = super::funds::SectorCosts { deposit, pledge };
            v["funds"] = super::funds::report(costs, wallet, miner, &repo.open_db()?)?;
            v
        }
    };
    let mut text = String::new();
    let mut lines = |prefix: &str, m: &serde_json::Map<String, Value>| {
        for (k, x) in m {
            let shown = match x {
                Value::String(s) => s.clone(),
                Value::Array(a) if a.is_empty() => "-".into(),
                other => other.to_string(),
            };
            text += &format!("{:<30} {shown}\n", format!("{prefix}{k}:"));
        }
    };
    if let Value::Object(m) = &v {
        let (nested, flat): (serde_json::Map<_, _>, serde_json::Map<_, _>) =
            m.clone().into_iter().partition(|(_, x)| x.is_object());
        lines("", &flat);
        for (k, x) in &nested {
            if let Value::Object(inner) = x {
                lines(&format!("{k}."), inner);
            }
        }
    }
    Ok((text, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::gpu_assign::Holding;
    use crate::sched::task_type::TaskType;

    #[test]
    fn gpu_lines_name_the_holders() {
        let row = |id: u64, sector: u64, kind: TaskType| db::TaskRow {
            id,
            sector,
            kind,
            state: TaskState::Running,
            worker: Some("w".into()),
            fetch_to: None,
            alloc_path: None,
            pid: None,
            created: 0.0,
            started: None,
            finished: None,
            wait_reason: None,
            error: None,
            leader: None,
        };
        let (a, b) = (
            row(7, 3, TaskType::Commit2),
            row(9, 4, TaskType::PreCommit2),
        );
        let held = [
            Holding {
                task: 7,
                gpu: 1,
                utilization: 1.0,
            },
            Holding {
                task: 9,
                gpu: 1,
                utilization: 1.0,
            },
        ];
        assert_eq!(
            gpu_lines(3, &held, &[&a, &b]),
            "\t  GPU 0: free\n\t  GPU 1: task 7 (C2, sector 3), task 9 (PC2, sector 4)\n\t  GPU 2: free\n"
        );
    }
}
