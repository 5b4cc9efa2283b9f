//! Sector moves that need no task: retries after their back-off, seeds once due.

use super::Engine;
use anyhow::Result;

use crate::sched::chain::Domain;
use crate::sched::db::{self, now, sectors};
use crate::sched::state::{self, SectorState};

impl Engine {
    /// Moves sectors whose next step needs no task: retries after back-off, seeds (while
    /// the chain can be reached).
    pub(super) fn advance(&mut self) -> Result<()> {
        let max = self.cfg.sealing.max_retries;
        let head = self.reachable_head();
        let seed_delay = self.chain.seed_delay();
        let confidence = self.chain.seed_confidence();
        let miner = self.cfg.sealing.miner;
        let chain = &self.chain;
        let failures = state::failure_states();
        self.db.tx(|tx| {
            for s in sectors::retry_due(tx, &failures, now())? {
                let failed = s.state;
                let r = state::retry_for(failed).expect("selected as a failure");
                let target =
                    state::retry_target(failed, s.fails, max).expect("selected as a failure");
                if target != r.phase {
                    // Falling back to an earlier phase (or giving up) starts its count anew.
                    sectors::reset_fails(tx, s.number)?;
                }
                db::set_state(tx, s.number, target, "retry")?;
            }
            let Some(head) = head else { return Ok(()) };
            for s in sectors::in_state(tx, SectorState::WaitSeed)? {
                let Some(pc) = s.precommit_epoch else {
                    continue;
                };
                let se = pc + seed_delay;
                if head < se + confidence {
                    continue;
                }
                let seed = chain.randomness(Domain::Seed, se, miner)?;
                let mut doc = s.doc.clone();
                doc["seed"] = crate::hex::encode(&seed).into();
                doc["seed_epoch"] = se.into();
                db::set_doc(tx, s.number, &doc)?;
                sectors::set_seed_epoch(tx, s.number, se)?;
                db::set_state(
                    tx,
                    s.number,
                    SectorState::Commit1,
                    &format!("seed from epoch {se}"),
                )?;
            }
            Ok(())
        })
    }
}
