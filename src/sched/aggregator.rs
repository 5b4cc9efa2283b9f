//! Commit aggregates made beside the daemon's passes. A SnarkPack aggregate of hundreds of
//! 32GiB sectors takes minutes of proving; made inside a pass it would hold every other
//! sector's scheduling that long. The daemon's publisher hands the job to an [`Aggregator`]
//! instead: a thread with its own database connection makes the aggregate and records it in
//! the batch's message (the outbox row, one transaction, while the batch is still only
//! recorded), and a later pass sends what is recorded. One aggregate is made at a time (each
//! proves on every core); a crash loses only the work, and the next pass starts it
//! again. A cron `batch publish` aggregates in its own call (it exits when it is done).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Result;

use super::db::Db;
use super::log;

#[derive(Clone)]
pub struct Aggregator {
    db: PathBuf,
    running: Arc<Mutex<Option<String>>>,
}

/// Clears the running job when it ends (or panics).
struct Done {
    running: Arc<Mutex<Option<String>>>,
    id: String,
}

impl Drop for Done {
    fn drop(&mut self) {
        *self.running.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

impl Aggregator {
    /// Jobs that record into the scheduler database at `db`.
    pub fn new(db: PathBuf) -> Aggregator {
        Aggregator {
            db,
            running: Arc::default(),
        }
    }

    /// Runs `job` for batch `id` on a thread of its own, with its own connection to the
    /// database, unless a job runs already: one at a time, as each proves on every core
    /// (another batch's turn comes at a later pass). Whether it was started.
    pub fn start(
        &self,
        id: &str,
        job: impl FnOnce(&mut Db) -> Result<()> + Send + 'static,
    ) -> Result<bool> {
        {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            if running.is_some() {
                return Ok(false);
            }
            *running = Some(id.to_string());
        }
        let done = Done {
            running: self.running.clone(),
            id: id.to_string(),
        };
        let path = self.db.clone();
        std::thread::Builder::new()
            .name(format!("aggregate {id}"))
            .spawn(move || {
                let r = Db::open(&path).and_then(|mut db| job(&mut db));
                if let Err(e) = r {
                    log::emit(
                        log::Level::Warn,
                        &format!(
                            "aggregating batch {}: {e:#}; the next pass tries again",
                            done.id
                        ),
                        None,
                    );
                }
                drop(done);
            })?;
        Ok(true)
    }

    /// The batch being aggregated now.
    pub fn running(&self) -> Option<String> {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
