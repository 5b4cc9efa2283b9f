//! The daemon's share of batch publishing (a cron `batch publish` may do the same).

use anyhow::Result;

use super::Engine;

use crate::sched::batch;
use crate::sched::chain::MsgKind;

impl Engine {
    /// Finishes recorded batches and sends the due ones, unless another process (a cron
    /// `batch publish`) is publishing right now: then the next pass does.
    pub(super) fn publish(&mut self) -> Result<()> {
        let Some(p) = batch::Publisher::try_acquire(&self.repo.publisher_lock())? else {
            return Ok(());
        };
        // Aggregates are made on a thread of their own: a pass never waits for one.
        let agg = batch::Aggregation::Background(&self.aggregator);
        batch::recover(&p, &mut self.db, self.chain.as_ref(), &self.cfg, agg)?;
        for kind in MsgKind::ALL {
            batch::publish(
                &p,
                &mut self.db,
                self.chain.as_ref(),
                &self.cfg,
                agg,
                kind,
                false,
            )?;
        }
        Ok(())
    }
}
