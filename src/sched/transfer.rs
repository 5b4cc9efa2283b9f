//! Moving sector files between hosts: rsync over ssh, then a size and SHA-256 comparison of
//! every file on both ends, and only then removal of the source.
//!
//! rsync already checks what it wrote against what it read, but not what the disk gives
//! back afterwards, and not a wrapper or a filesystem that mangles data behind its back; a
//! sector whose only good copy was deleted is a sector lost, so the source goes only after
//! the destination has been read back whole. A mismatching file is deleted at the
//! destination (rsync's size-and-mtime check would otherwise skip it next time) and the
//! move fails with the file's name and both digests; the source is untouched.
//!
//! A move between two remote hosts is relayed through this machine's staging directory, so
//! hosts need no keys for each other. Moves within one host are renames (or a checked copy
//! across its filesystems) done by the host's own `seal-sched`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::location::Location;
use super::remote::{self, HostSpec, SshSpec};
use super::storage::{self, FILE_TYPES};

/// Relative path → (size, SHA-256 hex) of every regular file under the named entries.
pub type Manifest = BTreeMap<String, (u64, String)>;

/// rsync's resumable partial files: kept across an interrupted transfer, never compared.
const PARTIAL_DIR: &str = ".sealkit-partial";

/// Everything a task needs to reach the hosts it touches.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Net {
    pub ssh: SshSpec,
    pub hosts: BTreeMap<String, HostSpec>,
    /// `[ssh] down_after` in seconds: how long a task waits for a host that dropped it.
    pub down_after: f64,
}

impl Net {
    pub fn host(&self, id: &str) -> Result<&HostSpec> {
        self.hosts
            .get(id)
            .with_context(|| format!("no worker is configured on host {id:?}"))
    }

    /// A remote location's host, with the path checked against its roots.
    fn remote(&self, l: &Location) -> Result<&HostSpec> {
        let h = self.host(&l.host)?;
        h.check(&l.path)?;
        Ok(h)
    }

    pub fn manifest(&self, base: &Location, rels: &[String]) -> Result<Manifest> {
        if base.is_local() {
            return manifest_local(Path::new(&base.path), rels);
        }
        let h = self.remote(base)?;
        let mut args = vec!["host", "manifest", base.path.as_str()];
        args.extend(rels.iter().map(String::as_str));
        let out = self.ssh.sched(h, &args)?;
        serde_json::from_slice(&out)
            .with_context(|| format!("host {} sent a malformed manifest", h.dest))
    }

    fn remove(&self, base: &Location, rels: &[String]) -> Result<()> {
        if base.is_local() {
            for r in rels {
                let p = Path::new(&base.path).join(r);
                if p.exists() {
                    storage::remove_all(&p)?;
                }
            }
            return Ok(());
        }
        let h = self.remote(base)?;
        let mut words = vec!["rm".to_string(), "-rf".into(), "--".into()];
        for r in rels {
            let p = format!("{}/{r}", base.path);
            h.check(&p)?;
            words.push(p);
        }
        self.ssh.run(h, &words, None).map(|_| ())
    }

    /// rsync `rel` from one base to the same place under the other.
    fn rsync(&self, from: &Location, to: &Location, rel: &str) -> Result<()> {
        let parent = Path::new(rel)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let dst = to.with_path(&format!("{}/{parent}/", to.path));
        self.rsync_to(&from.with_path(&format!("{}/{rel}", from.path)), &dst)
    }

    /// `rsync src dst` where at most one side is remote; a `dst` ending in `/` is a
    /// directory to copy into (created as needed).
    fn rsync_to(&self, from: &Location, to: &Location) -> Result<()> {
        let (src_host, dst_host) = (
            (!from.is_local()).then(|| self.remote(from)).transpose()?,
            (!to.is_local())
                .then(|| self.remote(&to.with_path(to.path.trim_end_matches('/'))))
                .transpose()?,
        );
        ensure!(
            src_host.is_none() || dst_host.is_none(),
            "rsync cannot copy between two remote hosts directly"
        );
        let side = |h: Option<&HostSpec>, path: &str| match h {
            Some(h) => format!("{}:{path}", h.dest),
            None => path.to_string(),
        };
        let src = side(src_host, &from.path);
        let dst = side(dst_host, &to.path);
        let mut cmd = Command::new("rsync");
        // An rsync must not go on writing into a sector after its supervisor died.
        super::child::bind_to_parent(&mut cmd, &[]);
        cmd.args(["-a", "-s", "--mkpath", "--partial-dir", PARTIAL_DIR]);
        if let Some(h) = src_host.or(dst_host) {
            cmd.arg("-e").arg(self.ssh.rsync_shell(h)?);
            if !h.rsync_path.is_empty() {
                cmd.arg("--rsync-path").arg(&h.rsync_path);
            }
        }
        cmd.arg("--").arg(&src).arg(&dst);
        let out = remote::run_with_input(&mut cmd, None).context("cannot start rsync")?;
        // rsync reports a broken connection as 255 (ssh's), 12 (protocol stream) or 35.
        if matches!(out.status.code(), Some(12) | Some(35)) {
            return Err(remote::Lost(format!(
                "rsync {src} → {dst}: {}",
                remote::last_line(&out.stderr)
            ))
            .into());
        }
        remote::check(&out, &format!("rsync {src} → {dst}"))
    }

    /// Copies `rels` from `from` to `to` and checks that every file arrived whole.
    pub fn copy_verified(
        &self,
        from: &Location,
        to: &Location,
        rels: &[String],
        staging: &Path,
    ) -> Result<()> {
        ensure!(from != to, "source and destination are both {from}");
        let want = self.manifest(from, rels)?;
        self.copy_manifest(from, to, rels, &want, staging)
    }

    /// [`Self::copy_verified`] with the source's manifest already taken.
    fn copy_manifest(
        &self,
        from: &Location,
        to: &Location,
        rels: &[String],
        want: &Manifest,
        staging: &Path,
    ) -> Result<()> {
        let present: Vec<String> = rels
            .iter()
            .filter(|r| {
                want.keys()
                    .any(|k| k == *r || k.starts_with(&format!("{r}/")))
            })
            .cloned()
            .collect();
        if !from.is_local() && !to.is_local() && from.host != to.host {
            let stage = Location::new("", &staging.display().to_string());
            for r in &present {
                self.rsync(from, &stage, r)?;
            }
            let relayed = self.copy_checked(&stage, to, &present, want);
            let _ = std::fs::remove_dir_all(staging);
            return relayed;
        }
        self.copy_checked(from, to, &present, want)
    }

    fn copy_checked(
        &self,
        from: &Location,
        to: &Location,
        rels: &[String],
        want: &Manifest,
    ) -> Result<()> {
        for r in rels {
            self.rsync(from, to, r)?;
        }
        self.compare(to, rels, want)
    }

    /// The destination's manifest must equal the source's; bad files are deleted there.
    fn compare(&self, to: &Location, rels: &[String], want: &Manifest) -> Result<()> {
        let got = self.manifest(to, rels)?;
        let mut bad = Vec::new();
        for (rel, (size, sum)) in want {
            match got.get(rel) {
                Some((s, h)) if s == size && h == sum => {}
                Some((s, h)) => bad.push((
                    rel.clone(),
                    format!("{rel}: sent {size} bytes sha256 {sum}, {to} has {s} bytes sha256 {h}"),
                )),
                None => bad.push((rel.clone(), format!("{rel}: missing at {to}"))),
            }
        }
        if bad.is_empty() {
            return Ok(());
        }
        let rels: Vec<String> = bad.iter().map(|(r, _)| r.clone()).collect();
        self.remove(to, &rels)
            .context("removing the damaged copies after a checksum mismatch")?;
        bail!(
            "checksum mismatch after transfer, source kept: {}",
            bad.iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )
    }

    /// Moves a sector's files between storage paths, idempotently (what an interrupted
    /// earlier move already placed is checked, not copied again).
    pub fn move_sector(
        &self,
        from: &Location,
        to: &Location,
        name: &str,
        staging: &Path,
    ) -> Result<()> {
        if from.is_local() && to.is_local() {
            return storage::move_sector(Path::new(&from.path), Path::new(&to.path), name);
        }
        if from.host == to.host {
            let h = self.remote(from)?;
            h.check(&to.path)?;
            self.ssh
                .sched(h, &["host", "move", &from.path, &to.path, name])?;
            return Ok(());
        }
        let rels: Vec<String> = FILE_TYPES.iter().map(|t| format!("{t}/{name}")).collect();
        let want = self.manifest(from, &rels)?;
        let there = self.manifest(to, &rels)?;
        if want.is_empty() {
            ensure!(
                !there.is_empty(),
                "sector {name} has no files at {from} (nor at {to}): nothing to move"
            );
            return Ok(()); // an earlier, interrupted run moved it
        }
        // What is already there must be an earlier run's exact copy, never something that
        // rsync would silently overwrite.
        for (rel, (size, sum)) in &there {
            if let Some((s, h)) = want.get(rel) {
                ensure!(
                    s == size && h == sum,
                    "{to}/{rel} already holds a different file ({size} bytes, sha256 {sum}; the \
                     source has {s} bytes, sha256 {h}): source kept, nothing overwritten"
                );
            }
        }
        self.copy_manifest(from, to, &rels, &want, staging)?;
        self.remove(from, &rels)
    }

    /// Copies one file to another name (a task's input into the host's task directory),
    /// checked like a move; relayed through `staging` between two remote hosts.
    pub fn copy_file(&self, from: &Location, to: &Location, staging: &Path) -> Result<()> {
        let split = |l: &Location| -> Result<(Location, String)> {
            let p = Path::new(&l.path);
            let name = p
                .file_name()
                .with_context(|| format!("{l} names no file"))?
                .to_string_lossy()
                .to_string();
            let dir = p
                .parent()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            Ok((l.with_path(&dir), name))
        };
        let (from_dir, from_name) = split(from)?;
        let (to_dir, to_name) = split(to)?;
        let want = self.manifest(&from_dir, std::slice::from_ref(&from_name))?;
        let sum = want
            .get(&from_name)
            .with_context(|| format!("{from} does not exist"))?
            .clone();
        if !from.is_local() && !to.is_local() && from.host != to.host {
            std::fs::create_dir_all(staging)?;
            let stage = Location::new("", &staging.join(&from_name).display().to_string());
            self.copy_file(from, &stage, staging)?;
            let relayed = self.copy_file(&stage, to, staging);
            let _ = std::fs::remove_dir_all(staging);
            return relayed;
        }
        self.rsync_to(from, to)?;
        let want = Manifest::from([(to_name.clone(), sum)]);
        self.compare(&to_dir, &[to_name], &want)
    }
}

/// The manifest of `rels` under `base` on this machine; missing entries are left out.
pub fn manifest_local(base: &Path, rels: &[String]) -> Result<Manifest> {
    let mut files = Vec::new();
    for r in rels {
        ensure!(
            !Path::new(r).is_absolute() && !r.split('/').any(|c| c == ".." || c.is_empty()),
            "manifest entry {r:?} is not a relative path"
        );
        walk(base, &base.join(r), &mut files)?;
    }
    files
        .par_iter()
        .map(|(rel, path)| {
            let (size, sum) = sha256_file(path)?;
            Ok((rel.clone(), (size, sum)))
        })
        .collect()
}

fn walk(base: &Path, p: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return Ok(());
    };
    if md.is_dir() {
        for e in std::fs::read_dir(p).with_context(|| format!("cannot list {}", p.display()))? {
            let e = e?;
            if e.file_name() == PARTIAL_DIR {
                continue;
            }
            walk(base, &e.path(), out)?;
        }
    } else if md.is_file() {
        let rel = p.strip_prefix(base).expect("below base");
        out.push((rel.display().to_string(), p.to_path_buf()));
    }
    Ok(())
}

fn sha256_file(path: &Path) -> Result<(u64, String)> {
    use std::io::Read;
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, crate::hex::encode(&h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lists_files_with_sizes_and_digests() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("cache/s/.sealkit-partial")).unwrap();
        std::fs::write(d.path().join("cache/s/p_aux"), b"abc").unwrap();
        std::fs::write(d.path().join("cache/s/.sealkit-partial/x"), b"half").unwrap();
        std::fs::create_dir_all(d.path().join("sealed")).unwrap();
        std::fs::write(d.path().join("sealed/s"), b"").unwrap();
        let rels = ["cache/s", "sealed/s", "unsealed/s"].map(String::from);
        let m = manifest_local(d.path(), &rels).unwrap();
        assert_eq!(m.len(), 2, "{m:?}");
        // SHA-256 test vectors (FIPS 180-2 "abc", and the empty message).
        assert_eq!(
            m["cache/s/p_aux"],
            (
                3,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into()
            )
        );
        assert_eq!(
            m["sealed/s"].1,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(manifest_local(d.path(), &["../etc".to_string()]).is_err());
    }
}
