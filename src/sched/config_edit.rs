//! Edits of `config.toml` by the CLI (`storage attach`, `storage detach`) that change only
//! the keys they touch: the file is the operator's, and re-serializing the whole
//! [`Config`] would drop their comments, order and layout. The edited text must load as a
//! valid configuration before it replaces the file (temp file, fsync, rename).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use toml_edit::{Array, DocumentMut, Item, Value};

use super::config::Config;

pub struct ConfigFile {
    path: PathBuf,
    doc: DocumentMut,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let doc = text.parse::<DocumentMut>().map_err(|e| {
            anyhow::anyhow!(
                "config {}: {}",
                path.display(),
                e.to_string().lines().collect::<Vec<_>>().join(" ")
            )
        })?;
        Ok(ConfigFile {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// The `storage` list of the `[[worker]]` named `worker`, created empty if absent.
    fn storage(&mut self, worker: &str) -> Result<&mut Array> {
        let path = self.path.display().to_string();
        let workers = self
            .doc
            .get_mut("worker")
            .and_then(Item::as_array_of_tables_mut)
            .with_context(|| format!("config {path}: no [[worker]]"))?;
        let w = workers
            .iter_mut()
            .find(|t| t.get("name").and_then(Item::as_str) == Some(worker))
            .with_context(|| format!("config {path}: no [[worker]] named {worker:?}"))?;
        let item = w
            .entry("storage")
            .or_insert_with(|| Item::Value(Value::Array(Array::new())));
        item.as_array_mut()
            .with_context(|| format!("config {path}: worker {worker:?}: key storage is not a list"))
    }

    /// Adds `p` to the worker's storage paths; false if it was there.
    pub fn add_storage(&mut self, worker: &str, p: &str) -> Result<bool> {
        let list = self.storage(worker)?;
        if list.iter().any(|v| v.as_str() == Some(p)) {
            return Ok(false);
        }
        list.push(p);
        Ok(true)
    }

    /// Removes `p` from the worker's storage paths; false if it was not there.
    pub fn remove_storage(&mut self, worker: &str, p: &str) -> Result<bool> {
        let list = self.storage(worker)?;
        let before = list.len();
        list.retain(|v| v.as_str() != Some(p));
        Ok(list.len() != before)
    }

    /// The edited text, checked to load as a valid configuration.
    pub fn checked_text(&self) -> Result<(String, Config)> {
        let text = self.doc.to_string();
        let cfg: Config = toml::from_str(&text)
            .with_context(|| format!("config {} after the edit", self.path.display()))?;
        cfg.validate()
            .with_context(|| format!("config {} after the edit", self.path.display()))?;
        Ok((text, cfg))
    }

    /// Replaces the file with the edited text (atomically, keeping its mode 0600).
    pub fn save(&self) -> Result<Config> {
        let (text, cfg) = self.checked_text()?;
        crate::fsutil::write_atomic(&self.path, text.as_bytes())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600))?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# my farm\n[sealing]\nminer = 1000 # ours\n\n[[worker]]\n# the box under the desk\nname = \"local\"\ncpus = \"0-1\"\nmemory = \"4GiB\"\nstorage = [\"/a\"] # fast disk\n\n[[worker]]\nname = \"b\"\ncpus = \"0\"\nmemory = \"1GiB\"\n";

    #[test]
    fn edits_keep_comments_and_touch_only_the_list() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, TEXT).unwrap();
        let mut f = ConfigFile::load(&p).unwrap();
        assert!(f.add_storage("local", "/b").unwrap());
        assert!(!f.add_storage("local", "/b").unwrap());
        assert!(f.add_storage("b", "/c").unwrap());
        let cfg = f.save().unwrap();
        assert_eq!(cfg.workers[0].storage, ["/a", "/b"]);
        assert_eq!(cfg.workers[1].storage, ["/c"]);
        let text = std::fs::read_to_string(&p).unwrap();
        for c in [
            "# my farm",
            "# ours",
            "# the box under the desk",
            "# fast disk",
        ] {
            assert!(text.contains(c), "{c} lost:\n{text}");
        }
        let mut f = ConfigFile::load(&p).unwrap();
        assert!(f.remove_storage("local", "/a").unwrap());
        assert!(!f.remove_storage("local", "/a").unwrap());
        f.save().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("# the box under the desk") && text.contains("# my farm"));
        assert_eq!(Config::load(&p).unwrap().workers[0].storage, ["/b"]);
        let e = ConfigFile::load(&p).unwrap().add_storage("nosuch", "/x");
        assert!(format!("{:#}", e.unwrap_err()).contains("no [[worker]] named \"nosuch\""));
    }
}
