//! The AddPiece journal: where the last run started appending to the unsealed file.
//!
//! Written (durably) before any byte is appended. If a run is killed, or its printed document
//! is lost, the unsealed file is longer than the document's pieces say. The next run may then
//! cut the file back, but only when this journal shows that a seal-ap run began exactly at the
//! document's end: otherwise the extra bytes are someone else's and we refuse to touch them.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::fsutil::write_atomic;

pub struct Journal {
    path: PathBuf,
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

    /// Records that a run starts appending at padded offset `start`.
    pub fn begin(&self, start: u64) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)
                .with_context(|| format!("creating directory {}", dir.display()))?;
        }
        write_atomic(&self.path, format!("{{\"start\":{start}}}\n").as_bytes())
    }

    /// Where the last run started, if a journal exists.
    pub fn started_at(&self) -> Result<Option<u64>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.path.display())),
        };
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("journal {} is corrupt", self.path.display()))?;
        Ok(v.get("start").and_then(|s| s.as_u64()))
    }
}
