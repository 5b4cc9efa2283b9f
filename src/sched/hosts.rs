//! Heartbeats: every remote host is probed every `[ssh] heartbeat` over its shared
//! connection. A host with no good answer for `down_after` is down: its workers get no new
//! work, and sectors whose files it holds wait for it. Probing goes on while it is down, and
//! the first good answer puts it back in service; no operator action is needed.
//!
//! Probes run as child processes the daemon polls, so a host that hangs costs the
//! scheduling loop nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

use super::config::Config;
use super::db::{self, now, Db};
use super::hostcmd::Probe;
use super::remote::{self, HostSpec};
use super::transfer::Net;

#[derive(Debug, Default)]
pub struct HostState {
    /// Answered within `down_after`; a host not yet heard from is not up.
    pub up: bool,
    pub last_ok: Option<f64>,
    pub error: Option<String>,
    pub probe: Option<Probe>,
    pending: Option<(Child, f64)>,
    next_at: f64,
}

pub struct Monitor {
    pub net: Net,
    pub states: BTreeMap<String, HostState>,
    dir: PathBuf,
    heartbeat: f64,
    down_after: f64,
    /// A probe that takes longer than this failed.
    patience: f64,
}

/// `ssh host -- seal-sched host probe ROOT…`.
pub fn probe_command(net: &Net, h: &HostSpec) -> Command {
    let mut words = vec![
        format!("{}/seal-sched", h.bin_dir),
        "host".into(),
        "probe".into(),
    ];
    words.extend(h.storage.iter().cloned());
    net.ssh.command(h, &super::shell::join(&words))
}

/// One probe, waited for (the CLI's live view).
pub fn probe_once(net: &Net, h: &HostSpec) -> Result<Probe> {
    let out = remote::run_with_input(&mut probe_command(net, h), None)?;
    remote::check(&out, &format!("probe of {}", h.dest))?;
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{} sent a malformed probe", h.dest))
}

/// Probes every host at once, in threads; for `seal-sched workers`.
pub fn probe_all(net: &Net) -> BTreeMap<String, Result<Probe>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = net
            .hosts
            .iter()
            .map(|(id, h)| (id.clone(), s.spawn(move || probe_once(net, h))))
            .collect();
        handles
            .into_iter()
            .map(|(id, j)| (id, j.join().expect("probe thread")))
            .collect()
    })
}

/// Where a host's probe output goes (its stderr: the same name with extension `err`). The
/// name encodes the host id exactly (hex), so two hosts never share a file whatever
/// punctuation their names differ in (`a.b`, `a-b`, `a_b`, `a@b`, `a:b`); an id too long for
/// a file name is named by its SHA-256 instead.
pub fn probe_file(dir: &Path, host: &str) -> PathBuf {
    let hex = crate::hex::encode(host.as_bytes());
    let stem = if hex.len() <= 200 {
        format!("h{hex}")
    } else {
        use sha2::Digest;
        format!(
            "sha256-{}",
            crate::hex::encode(&sha2::Sha256::digest(host.as_bytes()))
        )
    };
    dir.join(format!("{stem}.probe"))
}

impl Monitor {
    pub fn new(net: Net, cfg: &Config, dir: PathBuf) -> Result<Monitor> {
        std::fs::create_dir_all(&dir)?;
        let states = net
            .hosts
            .keys()
            .map(|k| (k.clone(), HostState::default()))
            .collect();
        Ok(Monitor {
            net,
            states,
            dir,
            heartbeat: Config::secs(&cfg.ssh.heartbeat),
            down_after: Config::secs(&cfg.ssh.down_after),
            patience: Config::secs(&cfg.ssh.connect_timeout) + 30.0,
        })
    }

    /// This machine is always up; a remote host when its heartbeat says so.
    pub fn is_up(&self, host: &str) -> bool {
        host.is_empty() || self.states.get(host).is_some_and(|s| s.up)
    }

    /// Probe `host` at the next poll (a task on it just lost its connection).
    pub fn probe_soon(&mut self, host: &str) {
        if let Some(s) = self.states.get_mut(host) {
            s.next_at = 0.0;
        }
    }

    fn out_path(&self, host: &str) -> PathBuf {
        probe_file(&self.dir, host)
    }

    /// Collects finished probes, starts due ones, and records changes of state (and every
    /// probe, for `seal-sched workers`) in the database.
    pub fn poll(&mut self, db: &mut Db) -> Result<()> {
        let t = now();
        let ids: Vec<String> = self.states.keys().cloned().collect();
        for id in ids {
            let out = self.out_path(&id);
            let (heartbeat, down_after, patience) =
                (self.heartbeat, self.down_after, self.patience);
            let st = self.states.get_mut(&id).expect("known host");
            let mut result: Option<Result<Probe>> = None;
            if let Some((child, started)) = &mut st.pending {
                match child.try_wait()? {
                    Some(status) => {
                        let stdout = std::fs::read(&out).unwrap_or_default();
                        let stderr = std::fs::read(out.with_extension("err")).unwrap_or_default();
                        result = Some(if status.success() {
                            serde_json::from_slice(&stdout).context("malformed probe")
                        } else {
                            Err(anyhow::anyhow!(
                                "probe failed ({status}): {}",
                                remote::last_line(&stderr)
                            ))
                        });
                        st.pending = None;
                    }
                    None if t - *started > patience => {
                        let _ = child.kill();
                        let _ = child.wait();
                        st.pending = None;
                        result = Some(Err(anyhow::anyhow!(
                            "probe did not answer in {patience:.0}s"
                        )));
                    }
                    None => {}
                }
            }
            if let Some(r) = result {
                let was_up = st.up;
                match r {
                    Ok(p) => {
                        st.up = true;
                        st.last_ok = Some(t);
                        st.error = None;
                        st.probe = Some(p);
                    }
                    Err(e) => {
                        st.error = Some(format!("{e:#}"));
                        if st.last_ok.is_none_or(|ok| t - ok >= down_after) {
                            st.up = false;
                        }
                    }
                }
                let probe = st
                    .probe
                    .as_ref()
                    .map(|p| serde_json::to_string(p).expect("probe serializes"));
                let (up, last_ok, error) = (st.up, st.last_ok, st.error.clone());
                db.tx(|tx| {
                    db::meta::record_host(
                        tx,
                        &db::meta::HostBeat {
                            host: &id,
                            up,
                            last_seen: last_ok,
                            error: error.as_deref(),
                            probe: probe.as_deref(),
                            at: t,
                        },
                    )?;
                    if up != was_up {
                        let detail = if up {
                            format!("host {id} is up")
                        } else {
                            format!(
                                "host {id} is down: {}",
                                error.as_deref().unwrap_or("no answer")
                            )
                        };
                        db::event(tx, None, "host", &detail)?;
                    }
                    Ok(())
                })?;
            }
            if st.pending.is_none() && t >= st.next_at {
                let h = &self.net.hosts[&id];
                let child = probe_command(&self.net, h)
                    .stdin(Stdio::null())
                    .stdout(std::fs::File::create(&out)?)
                    .stderr(std::fs::File::create(out.with_extension("err"))?)
                    .spawn()
                    .context("cannot start ssh")?;
                st.pending = Some((child, t));
                st.next_at = t + heartbeat;
            }
        }
        Ok(())
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        for st in self.states.values_mut() {
            if let Some((c, _)) = &mut st.pending {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_differing_in_punctuation_get_their_own_probe_files() {
        let dir = Path::new("/r/hosts");
        let long = "h".repeat(300);
        let ids = [
            "a.b",
            "a-b",
            "a_b",
            "a@b",
            "a:b",
            "root@a:22",
            "root_a_22",
            &long,
        ];
        let mut files = std::collections::BTreeSet::new();
        for id in ids {
            let out = probe_file(dir, id);
            assert_eq!(out.parent(), Some(dir));
            assert!(out.file_name().unwrap().len() <= 255, "{out:?}");
            assert!(files.insert(out.clone()), "{id}: {out:?} is shared");
            assert!(
                files.insert(out.with_extension("err")),
                "{id}: its err file is shared"
            );
        }
        assert_eq!(probe_file(dir, "a.b"), dir.join("h612e62.probe"));
    }
}
