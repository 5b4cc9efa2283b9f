//! Collecting finished tasks (ours, or re-attached after a restart) and recording each
//! result with its sector's next state in one transaction.

use anyhow::Result;

use super::{c1_copy, Engine};

use crate::sched::chain;
use crate::sched::config::Config;
use crate::sched::db::{self, now, sectors, tasks, TaskRow};
use crate::sched::state;
use crate::sched::storage;
use crate::sched::supervisor;
use crate::sched::task_state::TaskState;
use crate::sched::task_type::TaskType;

const MAX_LOST: u64 = 5;

impl Engine {
    /// Collects finished tasks; re-attaches or gives up tasks a previous daemon started.
    pub(super) fn reap(&mut self) -> Result<()> {
        let running = self.db.tasks_in(TaskState::Running)?;
        let live: std::collections::HashSet<u64> = running.iter().map(|t| t.id).collect();
        for t in running {
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
            // A PC1 batch's rider runs in its leader's process, which writes the rider's
            // status before its own: alive while the leader is.
            if t.leader.is_some_and(|l| live.contains(&l)) {
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
                tasks::finish(
                    tx,
                    t.id,
                    TaskState::Abandoned,
                    now(),
                    Some("its process was gone after a daemon restart"),
                )?;
                db::event(
                    tx,
                    Some(t.sector),
                    "task",
                    &format!(
                        "{} task {} was not running after a restart; queued again",
                        t.kind.short(),
                        t.id
                    ),
                )
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
        self.db.tx(|tx| {
            let Some(s) = sectors::get(tx, t.sector)? else {
                return Ok(());
            };
            // The step the task ran for is the one of the sector's state, if that state runs
            // this kind of task (AddPiece runs in two pipelines); else the sector moved on.
            let step = state::step_for(s.state)
                .filter(|st| st.task == t.kind)
                .copied();
            if let Some(loc) = &st.location {
                sectors::set_location(tx, s.number, Some(loc.as_str()))?;
            }
            if st.conflict {
                // Nothing was written there: the sector is new again and gets placed anew
                // (and checked again) after its back-off.
                sectors::set_location(tx, s.number, None)?;
            }
            let took = st.finished - st.started;
            if st.abandoned {
                tasks::finish(tx, t.id, TaskState::Abandoned, now(), None)?;
                return Ok(());
            }
            // A lost connection is the host's trouble, not the sector's: queue the task again
            // (the next pass does) without a failure, unless it keeps happening.
            let lost_before = tasks::lost_since_done(tx, s.number)?;
            if st.lost && step.is_some() && lost_before < MAX_LOST {
                let err = st.error.clone().unwrap_or_default();
                tasks::finish(tx, t.id, TaskState::Lost, now(), Some(&err))?;
                return db::event(
                    tx,
                    Some(s.number),
                    "task",
                    &format!(
                        "{} task {} lost on {}: {err}",
                        t.kind.short(),
                        t.id,
                        t.worker.as_deref().unwrap_or("?")
                    ),
                );
            }
            let Some(step) = step else {
                tasks::finish(
                    tx,
                    t.id,
                    TaskState::Done,
                    now(),
                    Some("result ignored: the sector moved on"),
                )?;
                return Ok(());
            };
            if st.ok {
                tasks::finish(tx, t.id, TaskState::Done, st.finished, None)?;
                let mut doc = st.doc.clone();
                let ni = chain::non_interactive(doc.as_ref().unwrap_or(&s.doc));
                let next = state::success_of(&step, ni);
                if next != step.success {
                    // An NI sector proves with the seed the actor verifies NI proofs with.
                    if let Some(d) = doc.as_mut() {
                        d["seed"] = crate::hex::encode(&chain::NI_SEED).into();
                    }
                }
                if let Some(doc) = &doc {
                    db::set_doc(tx, s.number, doc)?;
                }
                sectors::clear_failures(tx, s.number)?;
                if t.kind == TaskType::Finalize {
                    // Commit2's input is kept here until the proof is on chain; now it is.
                    let _ = std::fs::remove_file(c1_copy(
                        &self.repo,
                        &storage::sector_name(cfg.sealing.miner, s.number),
                    ));
                }
                db::set_state(
                    tx,
                    s.number,
                    next,
                    &format!(
                        "{} done in {took:.1}s on {}",
                        t.kind.short(),
                        t.worker.as_deref().unwrap_or("?")
                    ),
                )
            } else {
                let err = st.error.unwrap_or_else(|| "failed".into());
                let fails = s.fails + 1;
                let wait = state::backoff(
                    fails,
                    Config::secs(&cfg.sealing.retry_min),
                    Config::secs(&cfg.sealing.retry_max),
                );
                tasks::finish(tx, t.id, TaskState::Failed, now(), Some(&err))?;
                sectors::record_failure(tx, s.number, fails, now() + wait, &err)?;
                db::set_state(
                    tx,
                    s.number,
                    step.failure,
                    &format!("{err} (failure {fails}, retry in {wait:.0}s)"),
                )
            }
        })
    }
}
