//! The AddPiece journal: where the last run started appending to the unsealed file, and,
//! once it finished, what it recorded.
//!
//! Written (durably) before any byte is appended, and again when the run is complete. If a
//! run is killed, or its printed document is lost, the unsealed file is longer than the
//! document's pieces say. The next run may then cut the file back, but only when this journal
//! shows that an *unfinished* seal-ap run began exactly at the document's end: otherwise the
//! extra bytes are someone else's, or a finished run's (whose sector may since have been
//! sealed from them), and are never touched. A finished run's record lets a re-run with the
//! same job and the same pieces print the same document again instead.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::sector::document::PieceRecord;

pub struct Journal {
    path: PathBuf,
}

/// A piece record as the journal keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Added {
    comm_p: String,
    payload_size: u64,
    padded_size: u64,
    offset: u64,
    #[serde(default)]
    filler: bool,
}

/// On disk: `{"start": N}` while a run appends; `{"start": N, "end": M, "added": […]}` once it
/// finished (earlier versions wrote only the first form).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OnDisk {
    start: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    added: Option<Vec<Added>>,
}

/// What the journal says about the last run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastRun {
    /// A run began appending at `start` and has not recorded its end (killed, or a run of an
    /// earlier version).
    Started { start: u64 },
    /// A run that began at `start` completed the file up to `end`, adding `added`.
    Finished {
        start: u64,
        end: u64,
        added: Vec<PieceRecord>,
    },
}

impl Journal {
    /// The journal lives in the sector's cache directory when there is one, else beside the
    /// unsealed file.
    pub fn for_sector(unsealed: &Path, cache: Option<&Path>) -> Journal {
        let path = match cache {
            Some(c) => c.join("seal-ap.journal"),
            None => {
                let mut name = unsealed.file_name().unwrap_or_default().to_os_string();
                name.push(".seal-ap.journal");
                unsealed.with_file_name(name)
            }
        };
        Journal { path }
    }

    fn write(&self, rec: &OnDisk) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)
                .with_context(|| format!("creating directory {}", dir.display()))?;
            crate::fsutil::remove_dead_temps(dir);
        }
        let text = serde_json::to_string(rec).expect("journal serialises");
        write_atomic(&self.path, format!("{text}\n").as_bytes())
    }

    /// Records that a run starts appending at padded offset `start`.
    pub fn begin(&self, start: u64) -> Result<()> {
        self.write(&OnDisk {
            start,
            end: None,
            added: None,
        })
    }

    /// Records that the run that began at `start` made the file complete up to `end`.
    pub fn finish(&self, start: u64, end: u64, added: &[PieceRecord]) -> Result<()> {
        let added = added
            .iter()
            .map(|r| Added {
                comm_p: crate::hex::encode(&r.comm_p),
                payload_size: r.payload_size,
                padded_size: r.padded_size,
                offset: r.offset,
                filler: r.filler,
            })
            .collect();
        self.write(&OnDisk {
            start,
            end: Some(end),
            added: Some(added),
        })
    }

    /// The last run, if a journal exists.
    pub fn last_run(&self) -> Result<Option<LastRun>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.path.display())),
        };
        let corrupt = || format!("journal {} is corrupt", self.path.display());
        let d: OnDisk = serde_json::from_str(&text).with_context(corrupt)?;
        Ok(Some(match (d.end, d.added) {
            (Some(end), Some(added)) => LastRun::Finished {
                start: d.start,
                end,
                added: added
                    .into_iter()
                    .map(|a| {
                        Ok(PieceRecord {
                            comm_p: crate::hex::decode32(&a.comm_p)?,
                            payload_size: a.payload_size,
                            padded_size: a.padded_size,
                            offset: a.offset,
                            filler: a.filler,
                        })
                    })
                    .collect::<Result<_>>()
                    .with_context(corrupt)?,
            },
            _ => LastRun::Started { start: d.start },
        }))
    }
}
