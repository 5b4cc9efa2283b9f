//! Storage paths as one pass sees them: metadata and free space, read here or taken from
//! a remote host's last heartbeat.

use std::path::Path;

use anyhow::Result;

use super::Engine;

use crate::sched::location::Location;
use crate::sched::storage::{self, StoreMeta};

/// A storage path as seen in one pass.
pub struct PathView {
    /// Its location string (a plain path here, `ssh://host/path` on a remote host).
    pub root: String,
    pub meta: Result<StoreMeta>,
    pub available: u64,
}

impl Engine {
    /// Every storage path named by a worker, with its metadata and free space: read here
    /// for this machine's, from the last heartbeat for a remote host's.
    pub fn paths(&self) -> Vec<PathView> {
        let mut locs: Vec<Location> = self
            .cfg
            .workers
            .iter()
            .flat_map(|w| {
                w.storage
                    .iter()
                    .map(move |p| Location::new(&w.host_id(), p))
            })
            .collect();
        locs.sort();
        locs.dedup();
        locs.into_iter()
            .map(|loc| {
                let root = loc.to_string();
                if loc.is_local() {
                    let meta = storage::read_meta(Path::new(&loc.path));
                    let available = meta
                        .as_ref()
                        .ok()
                        .and_then(|m| storage::available(Path::new(&loc.path), m).ok())
                        .unwrap_or(0);
                    return PathView {
                        root,
                        meta,
                        available,
                    };
                }
                let st = self.monitor.states.get(&loc.host);
                let probe = st
                    .filter(|s| s.up)
                    .and_then(|s| s.probe.as_ref())
                    .and_then(|p| p.paths.iter().find(|x| x.root == loc.path));
                let (meta, available) = match (st, probe) {
                    (_, Some(p)) => match &p.meta {
                        Some(m) => (Ok(m.clone()), p.available),
                        None => (
                            Err(anyhow::anyhow!("{}", p.error.clone().unwrap_or_default())),
                            0,
                        ),
                    },
                    (Some(s), None) if s.last_ok.is_some() && !s.up => (
                        Err(anyhow::anyhow!(
                            "host {} is down: {}",
                            loc.host,
                            s.error.clone().unwrap_or_default()
                        )),
                        0,
                    ),
                    _ => (
                        Err(anyhow::anyhow!("host {} has not answered yet", loc.host)),
                        0,
                    ),
                };
                PathView {
                    root,
                    meta,
                    available,
                }
            })
            .collect()
    }
}
