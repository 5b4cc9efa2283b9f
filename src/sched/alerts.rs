//! Alerts: the conditions an operator must act on, from the facts of one moment. The rules
//! ([`evaluate`]) are pure and unit-tested; [`facts`] reads the moment from a daemon's
//! engine; [`check`] is what the daemon runs every few seconds: evaluate, record what is new
//! (and what cleared) in the database, then tell the webhook about each new alert once.
//!
//! Each alert has a key naming its condition and subject (`sector_stuck/7/PreCommit1`), so
//! a condition that lasts is one alert, and one that clears and returns is a new one.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use super::batch;
use super::chain::MsgKind;
use super::config::{parse_size, show_size, Config};
use super::db::{self, now, stats};
use super::engine::Engine;
use super::location::Location;
use super::state::{self, SectorState};
use super::task_type::TaskType;

macro_rules! kinds {
    ($($v:ident = $n:literal),+ $(,)?) => {
        /// What an alert is about; its name is the `kind` label of `sealkit_alerts`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum AlertKind { $($v),+ }

        impl AlertKind {
            pub const ALL: &'static [AlertKind] = &[$(AlertKind::$v),+];

            pub fn name(self) -> &'static str {
                match self { $(AlertKind::$v => $n),+ }
            }
        }
    };
}

kinds!(
    TaskFailures = "task_failures",
    SectorStuck = "sector_stuck",
    BatchDeadline = "batch_deadline",
    HostDown = "host_down",
    StorageLow = "storage_low",
    StorageGone = "storage_gone",
    ParamsMissing = "params_missing",
    BatchUnsent = "batch_unsent",
    BatchNotLanded = "batch_not_landed",
    ChainUnreachable = "chain_unreachable",
);

impl AlertKind {
    pub fn parse(s: &str) -> Option<AlertKind> {
        Self::ALL.iter().copied().find(|k| k.name() == s)
    }
}

/// One alert: its kind, the key that names its condition, the sector it is about (if one),
/// a short subject and a sentence for people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub key: String,
    pub sector: Option<u64>,
    pub subject: String,
    pub message: String,
}

/// The limits from `[alerts]`, in seconds and bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub task_failures: u32,
    pub stuck_factor: f64,
    pub stuck_min: f64,
    pub stuck_wait: f64,
    pub batch_deadline: f64,
    pub batch_landing: f64,
    pub storage_min_free: u64,
}

impl Thresholds {
    pub fn of(cfg: &Config) -> Result<Thresholds> {
        let a = &cfg.alerts;
        let storage_min_free = if a.storage_min_free.is_empty() {
            16 * cfg.seal_proof()?.sector_size()
        } else {
            parse_size(&a.storage_min_free).context("key alerts.storage_min_free")?
        };
        Ok(Thresholds {
            task_failures: a.task_failures,
            stuck_factor: a.stuck_factor,
            stuck_min: Config::secs(&a.stuck_min),
            stuck_wait: Config::secs(&a.stuck_wait),
            batch_deadline: Config::secs(&a.batch_deadline),
            batch_landing: Config::secs(&a.batch_landing),
            storage_min_free,
        })
    }
}

/// A sector as the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct SectorFact {
    pub number: u64,
    pub state: SectorState,
    /// Failures of its current phase in a row.
    pub fails: u32,
    /// When it entered its state.
    pub entered: f64,
    /// For a sector waiting for a batch: the wall-clock time its message must land by.
    pub deadline: Option<f64>,
}

/// The facts of one moment.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub now: f64,
    pub sectors: Vec<SectorFact>,
    /// Mean run time of the successful tasks of each type.
    pub mean_secs: HashMap<TaskType, f64>,
    /// Remote hosts: name, up, and the last error.
    pub hosts: Vec<(String, bool, Option<String>)>,
    /// Storage paths: location and its free bytes, or why it cannot be read.
    pub paths: Vec<(String, Result<u64, String>)>,
    /// Why the proof parameters are not ready, if they are not.
    pub params: Option<String>,
    /// Batches recorded and not sent for a reason of this machine or wallet (the node
    /// refused the push: funds, gas, no connection): id, kind, sectors, why.
    pub unsent: Vec<(String, MsgKind, usize, String)>,
    /// Batches handed to the chain that have not landed yet: id, kind, sectors, the
    /// message's CID and when it was sent.
    pub in_flight: Vec<(String, MsgKind, usize, String, f64)>,
    /// Why the chain cannot be reached, if it cannot.
    pub chain: Option<String>,
}

/// `1h 05m`, `3m 20s`, `42s`: a span for an alert's sentence.
pub fn span(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

/// The alerts that hold for `f` under `t`, in a stable order (by kind, then subject).
pub fn evaluate(f: &Facts, t: &Thresholds) -> Vec<Alert> {
    let mut out = Vec::new();
    if let Some(why) = &f.params {
        out.push(Alert {
            kind: AlertKind::ParamsMissing,
            key: "params_missing".into(),
            sector: None,
            subject: "proof parameters".into(),
            message: format!("proof parameters are not ready: {why}"),
        });
    }
    for s in &f.sectors {
        if s.state == SectorState::Removed {
            continue;
        }
        let n = s.number;
        if t.task_failures > 0 && s.fails >= t.task_failures {
            out.push(Alert {
                kind: AlertKind::TaskFailures,
                key: format!("task_failures/{n}"),
                sector: Some(n),
                subject: format!("sector {n}"),
                message: format!(
                    "sector {n}: its phase failed {} times in a row (now {})",
                    s.fails, s.state
                ),
            });
        }
        if !s.state.is_done() && !s.state.is_failure() {
            let limit = match state::step_for(s.state) {
                Some(step) => f
                    .mean_secs
                    .get(&step.task)
                    .map_or(t.stuck_min, |m| (m * t.stuck_factor).max(t.stuck_min)),
                None => t.stuck_wait,
            };
            let stayed = f.now - s.entered;
            if stayed > limit {
                out.push(Alert {
                    kind: AlertKind::SectorStuck,
                    key: format!("sector_stuck/{n}/{}", s.state),
                    sector: Some(n),
                    subject: format!("sector {n}"),
                    message: format!(
                        "sector {n} has been in {} for {}, longer than the expected {}",
                        s.state,
                        span(stayed),
                        span(limit)
                    ),
                });
            }
        }
        if let Some(d) = s.deadline {
            let left = d - f.now;
            if left < t.batch_deadline {
                let when = if left > 0.0 {
                    format!("is in {}", span(left))
                } else {
                    format!("passed {} ago", span(-left))
                };
                out.push(Alert {
                    kind: AlertKind::BatchDeadline,
                    key: format!("batch_deadline/{n}"),
                    sector: Some(n),
                    subject: format!("sector {n}"),
                    message: format!("sector {n} waits in {}: its deadline {when}", s.state),
                });
            }
        }
    }
    for (id, kind, n, why) in &f.unsent {
        out.push(Alert {
            kind: AlertKind::BatchUnsent,
            key: format!("batch_unsent/{id}"),
            sector: None,
            subject: format!("batch {id}"),
            message: format!(
                "{} batch {id} ({n} sectors) is not sent and waits for a retry: {why}",
                kind.name()
            ),
        });
    }
    if let Some(why) = &f.chain {
        out.push(Alert {
            kind: AlertKind::ChainUnreachable,
            key: "chain_unreachable".into(),
            sector: None,
            subject: "the chain".into(),
            message: format!(
                "the chain cannot be reached: {why}; tasks go on, tickets, seeds and batch \
                 messages wait for it"
            ),
        });
    }
    for (id, kind, n, cid, sent) in &f.in_flight {
        if f.now - sent > t.batch_landing {
            out.push(Alert {
                kind: AlertKind::BatchNotLanded,
                key: format!("batch_not_landed/{id}"),
                sector: None,
                subject: format!("batch {id}"),
                message: format!(
                    "{} batch {id} ({n} sectors) was sent {} ago as {cid} and has not landed: \
                     if it is stuck in the node's message pool (its fee cap under the base \
                     fee), `lotus mpool replace --auto {cid}` bumps its fees; the batch \
                     follows the replacement",
                    kind.name(),
                    span(f.now - sent)
                ),
            });
        }
    }
    for (host, up, error) in &f.hosts {
        if !up {
            out.push(Alert {
                kind: AlertKind::HostDown,
                key: format!("host_down/{host}"),
                sector: None,
                subject: format!("host {host}"),
                message: format!(
                    "host {host} is down: {}",
                    error.as_deref().unwrap_or("no answer")
                ),
            });
        }
    }
    for (root, avail) in &f.paths {
        match avail {
            Err(why) => out.push(Alert {
                kind: AlertKind::StorageGone,
                key: format!("storage_gone/{root}"),
                sector: None,
                subject: format!("storage {root}"),
                message: format!("storage path {root} cannot be read: {why}"),
            }),
            Ok(free) if *free < t.storage_min_free => out.push(Alert {
                kind: AlertKind::StorageLow,
                key: format!("storage_low/{root}"),
                sector: None,
                subject: format!("storage {root}"),
                message: format!(
                    "storage path {root} is nearly full: {} free, less than {}",
                    show_size(*free),
                    show_size(t.storage_min_free)
                ),
            }),
            Ok(_) => {}
        }
    }
    out.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
    out
}

/// The facts of this moment, as the daemon's engine sees them. The paths of a host that is
/// down are left to that host's own alert.
pub fn facts(e: &Engine) -> Result<Facts> {
    let at = now();
    // Without the chain there are no deadlines to tell, and an alert says why.
    let head = e.chain.head();
    let epoch_secs = e.chain.epoch_secs();
    let sectors =
        e.db.sectors()?
            .into_iter()
            .map(|s| {
                let kind = match s.state {
                    SectorState::PreCommitBatch => Some(MsgKind::PreCommit),
                    SectorState::CommitBatch => Some(MsgKind::ProveCommit),
                    SectorState::SubmitReplicaUpdate => Some(MsgKind::ReplicaUpdate),
                    _ => None,
                };
                SectorFact {
                    number: s.number,
                    state: s.state,
                    fails: s.fails,
                    entered: s.entered,
                    deadline: kind
                        .zip(head.as_ref().ok())
                        .map(|(k, head)| batch::deadline(k, &s, *head, epoch_secs, at)),
                }
            })
            .collect();
    let mean_secs = db::tasks::mean_durations(&e.db.conn)?
        .into_iter()
        .filter_map(|(k, v)| Some((TaskType::parse(&k)?, v)))
        .collect();
    let hosts: Vec<(String, bool, Option<String>)> = stats::hosts(&e.db.conn)?
        .into_iter()
        .map(|h| (h.host, h.up, h.error))
        .collect();
    let down: Vec<&str> = hosts
        .iter()
        .filter(|h| !h.1)
        .map(|h| h.0.as_str())
        .collect();
    let paths = e
        .paths()
        .into_iter()
        .filter(|v| {
            Location::parse(&v.root)
                .map_or(true, |l| l.is_local() || !down.contains(&l.host.as_str()))
        })
        .map(|v| {
            let r = match &v.meta {
                Ok(_) => Ok(v.available),
                Err(err) => Err(format!("{err:#}")),
            };
            (v.root, r)
        })
        .collect();
    let params = super::daemon::preflight(e)
        .err()
        .map(|e| e.root_cause().to_string());
    let batches = e.db.batches()?;
    let unsent = batches
        .iter()
        .filter(|b| b.state == batch::BatchState::Recorded)
        .filter_map(|b| Some((b.id.clone(), b.kind, b.sectors.len(), b.error.clone()?)))
        .collect();
    let in_flight = batches
        .into_iter()
        .filter(|b| b.state == batch::BatchState::Sent)
        .filter_map(|b| Some((b.id, b.kind, b.sectors.len(), b.message?, b.sent?)))
        .collect();
    Ok(Facts {
        now: at,
        sectors,
        mean_secs,
        hosts,
        paths,
        params,
        unsent,
        in_flight,
        chain: head.err().map(|e| format!("{e:#}")),
    })
}

/// Evaluates the alerts now, records them (new ones with an event, cleared ones resolved)
/// and hands the new ones to the webhook on a thread of their own, so a slow receiver never
/// holds up a pass. Returns the new alerts.
pub fn check(e: &mut Engine) -> Result<Vec<Alert>> {
    let t = Thresholds::of(&e.cfg)?;
    let current = evaluate(&facts(e)?, &t);
    let at = now();
    let new = e.db.tx(|tx| db::alerts::sync(tx, &current, at))?;
    if !new.is_empty() && !e.cfg.alerts.webhook.is_empty() {
        let url = e.cfg.alerts.webhook.clone();
        let db_path = e.repo.db_path();
        let repo = e.repo.root.clone();
        let alerts = new.clone();
        let h = std::thread::spawn(move || notify_all(&url, &db_path, &repo, &alerts));
        let mut pending = SENDING.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|h| !h.is_finished());
        pending.push(h);
    }
    Ok(new)
}

/// Webhook threads not known to have finished.
static SENDING: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// Waits for the webhook calls under way (each is bounded by its timeout): a daemon that
/// exits (`run --until-done`) still tells the webhook about what it recorded.
pub fn wait_for_webhooks() {
    let handles: Vec<_> = std::mem::take(&mut *SENDING.lock().unwrap_or_else(|p| p.into_inner()));
    for h in handles {
        let _ = h.join();
    }
}

/// Tells the webhook about each alert (one POST each) and records how that went.
fn notify_all(url: &str, db_path: &std::path::Path, repo: &std::path::Path, alerts: &[Alert]) {
    let Ok(db) = db::Db::open(db_path) else {
        return;
    };
    for a in alerts {
        let r = post(url, &payload(repo, a));
        let err = r.err().map(|e| format!("{e:#}"));
        if let Some(e) = &err {
            super::log::emit(
                super::log::Level::Warn,
                &format!("alert webhook {url}: {e}"),
                None,
            );
        }
        let _ = db::alerts::set_notified(&db.conn, &a.key, now(), err.as_deref());
    }
}

/// The webhook's body: one alert, generic JSON (Slack-style `text` included).
pub fn payload(repo: &std::path::Path, a: &Alert) -> serde_json::Value {
    serde_json::json!({
        "source": "seal-sched",
        "repo": repo.display().to_string(),
        "status": "firing",
        "kind": a.kind.name(),
        "key": a.key,
        "sector": a.sector,
        "subject": a.subject,
        "text": a.message,
        "at": super::clock::rfc3339(now()),
    })
}

/// One JSON POST with a 10 s limit; a non-2xx answer is an error.
pub fn post(url: &str, body: &serde_json::Value) -> Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .with_context(|| format!("POST {url}"))?;
    Ok(())
}

/// `seal-sched alerts`: what holds now, with when each was first recorded and whether the
/// webhook was told.
pub fn report(e: &Engine) -> Result<(String, serde_json::Value)> {
    let current = evaluate(&facts(e)?, &Thresholds::of(&e.cfg)?);
    let recorded: HashMap<String, db::alerts::AlertRow> = db::alerts::active(&e.db.conn)?
        .into_iter()
        .map(|r| (r.alert.key.clone(), r))
        .collect();
    let mut text = String::new();
    if current.is_empty() {
        text += "No alerts.\n";
    }
    let mut out = Vec::new();
    for a in &current {
        let rec = recorded.get(&a.key);
        let since = rec.map(|r| super::clock::rfc3339(r.raised));
        text += &format!(
            "{:<15} {}{}\n",
            a.kind.name(),
            a.message,
            since
                .as_ref()
                .map(|s| format!(" (since {s})"))
                .unwrap_or_default()
        );
        let mut v = serde_json::to_value(a)?;
        v["since"] = since.into();
        v["notified"] = rec
            .and_then(|r| r.notified)
            .map(super::clock::rfc3339)
            .into();
        v["notify_error"] = rec.and_then(|r| r.notify_error.clone()).into();
        out.push(v);
    }
    Ok((text, serde_json::Value::Array(out)))
}

#[cfg(test)]
mod tests;
