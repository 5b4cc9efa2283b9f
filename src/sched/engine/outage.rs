//! Passes that go on while the chain cannot be reached. A node restarting for an upgrade or
//! a network that drops for a minute must not stop the farm: only what needs the chain
//! waits (tickets for new PC1 runs, seeds, batch messages), every other task keeps being
//! queued and started. Each outage and each publishing failure is logged once, when it
//! begins or changes, and its end once, not on every pass.

use anyhow::Result;

use super::Engine;
use crate::sched::db;
use crate::sched::log::{self, Level};

/// What the passes last saw go wrong with the chain.
#[derive(Debug, Default)]
pub struct Outage {
    /// Why the chain's head could not be read, while it cannot.
    down: Option<String>,
    /// Why publishing failed, while it fails.
    publishing: Option<String>,
}

impl Engine {
    /// The chain's head, or `None` while the chain cannot be reached.
    pub(super) fn reachable_head(&mut self) -> Option<i64> {
        match self.chain.head() {
            Ok(h) => {
                if let Some(why) = self.outage.down.take() {
                    log::emit(
                        Level::Info,
                        &format!("the chain answers again (it failed: {why})"),
                        None,
                    );
                }
                Some(h)
            }
            Err(e) => {
                let why = format!("{e:#}");
                if self.outage.down.as_ref() != Some(&why) {
                    log::emit(
                        Level::Warn,
                        &format!(
                            "the chain cannot be reached: {why}; tasks go on, tickets, seeds \
                             and batch messages wait for it"
                        ),
                        None,
                    );
                }
                self.outage.down = Some(why);
                None
            }
        }
    }

    /// Publishes unless the chain is down; a failure to publish (the node refusing a call,
    /// a batch left for the operator) is logged and leaves the rest of the pass to run. A
    /// failure on a row of the database is not caught: the daemon sets that row aside.
    pub(super) fn publish_if_reachable(&mut self) -> Result<()> {
        if self.outage.down.is_some() {
            return Ok(());
        }
        match self.publish() {
            Ok(()) => {
                if self.outage.publishing.take().is_some() {
                    log::emit(Level::Info, "batches publish again", None);
                }
                Ok(())
            }
            Err(e) if db::row_error(&e).is_none() => {
                let why = format!("{e:#}");
                if self.outage.publishing.as_ref() != Some(&why) {
                    log::emit(
                        Level::Warn,
                        &format!("publishing failed, tried again each pass: {why}"),
                        None,
                    );
                }
                self.outage.publishing = Some(why);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
