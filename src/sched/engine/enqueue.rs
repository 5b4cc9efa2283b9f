//! Queuing the next task of every sector in a compute state.

use super::Engine;
use anyhow::Result;

use crate::sched::chain::Domain;
use crate::sched::db::{self, sectors, tasks};
use crate::sched::state;
use crate::sched::task_type::TaskType;

impl Engine {
    /// Queues a task for every sector in a compute state that has none; a PC1 run only
    /// while the chain can be reached (it draws its ticket).
    pub(super) fn enqueue(&mut self) -> Result<()> {
        let head = self.reachable_head();
        let miner = self.cfg.sealing.miner;
        let chain = &self.chain;
        let compute = state::compute_states();
        self.db.tx(|tx| {
            let todo = sectors::without_live_task(tx, &compute)?;
            for s in todo {
                let kind = state::step_for(s.state).expect("a compute state").task;
                if kind == TaskType::PreCommit1 {
                    let Some(head) = head else { continue };
                    // GetTicket: a fresh ticket for every PC1 attempt.
                    let te = head - chain.ticket_lookback();
                    let ticket = chain.randomness(Domain::Ticket, te, miner)?;
                    let mut doc = s.doc.clone();
                    doc["ticket"] = crate::hex::encode(&ticket).into();
                    doc["ticket_epoch"] = te.into();
                    db::set_doc(tx, s.number, &doc)?;
                    sectors::set_ticket_epoch(tx, s.number, te)?;
                }
                tasks::queue(tx, s.number, kind)?;
            }
            Ok(())
        })
    }
}
