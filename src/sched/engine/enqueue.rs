//! Queuing the next task of every sector in a compute state.

use anyhow::Result;
use rusqlite::params;

use super::{sql_list, Engine};

use crate::sched::chain::{Chain, Domain};
use crate::sched::db::{self, now};
use crate::sched::state::{SectorState, INTERACTIVE_POREP as PIPELINE};
use crate::sched::task_type::TaskType;

impl Engine {
    /// Queues a task for every sector in a compute state that has none.
    pub(super) fn enqueue(&mut self) -> Result<()> {
        let head = self.chain.head()?;
        let miner = self.cfg.sealing.miner;
        let chain = &self.chain;
        let compute = sql_list(PIPELINE.steps.iter().map(|s| s.state));
        self.db.tx(|tx| {
            let todo = db::sectors_where(
                tx,
                &format!(
                    "state IN ({compute}) AND number NOT IN \
                     (SELECT sector FROM tasks WHERE state IN ('queued','running'))"
                ),
                [],
            )?;
            for s in todo {
                let state = SectorState::parse(&s.state).expect("selected by name");
                let kind = PIPELINE.step(state).expect("a compute state").task;
                if kind == TaskType::PreCommit1 {
                    // GetTicket: a fresh ticket for every PC1 attempt.
                    let ticket = chain.randomness(Domain::Ticket, head, miner)?;
                    let mut doc = s.doc.clone();
                    doc["ticket"] = crate::hex::encode(&ticket).into();
                    doc["ticket_epoch"] = head.into();
                    db::set_doc(tx, s.number, &doc)?;
                    tx.execute("UPDATE sectors SET ticket_epoch = ?2 WHERE number = ?1", params![s.number as i64, head])?;
                }
                tx.execute(
                    "INSERT INTO tasks (sector, kind, state, created) VALUES (?1, ?2, 'queued', ?3)",
                    params![s.number as i64, kind.short(), now()],
                )?;
            }
            Ok(())
        })
    }
}
