//! Remote hosts through the system `ssh`: the options every connection gets, the command
//! lines we send, and what an exit status means.
//!
//! We drive OpenSSH rather than a home-made agent, so operators keep their keys, their
//! `~/.ssh/config`, their bastions and their audit trail. Every connection is
//! `BatchMode` (never a prompt in a daemon), shares one `ControlMaster` connection per host
//! (a task, a heartbeat and a transfer do not each pay a handshake), sends keep-alives
//! (`ServerAliveInterval`, so a vanished host is noticed in seconds, not at the next TCP
//! timeout) and checks host keys strictly unless told otherwise.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::config::Config;
use super::shell;

/// ssh's own exit status for "could not connect / connection lost" (the remote command's
/// status otherwise); rsync passes it through.
pub const SSH_LOST: i32 = 255;

/// A failure caused by the connection, not by the work: the task is queued again without
/// counting as a failure of its sector.
#[derive(Debug)]
pub struct Lost(pub String);

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Lost {}

/// How to reach hosts: the ssh options for every connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SshSpec {
    /// `ssh -F` file, empty for the user's own.
    pub config: String,
    /// `-o` options, in order (ours first, the operator's after; ssh keeps the first value
    /// given for a key, so the operator's cannot weaken ours... except where ours are
    /// defaults they set on purpose through `[ssh]`).
    pub options: Vec<String>,
}

/// One remote host, as the workers on it describe it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostSpec {
    /// The worker's `host_id`: the key of this host's locations.
    pub id: String,
    /// ssh destination.
    pub dest: String,
    pub port: u16,
    pub run_dir: String,
    /// Where `seal-*` and `seal-sched` are on the host.
    pub bin_dir: String,
    pub rsync_path: String,
    /// The host's storage paths (what heartbeats report on).
    pub storage: Vec<String>,
    /// Storage paths plus run directories: the only places we touch on the host.
    pub roots: Vec<String>,
}

impl SshSpec {
    pub fn new(cfg: &Config, control_dir: &Path) -> SshSpec {
        let s = &cfg.ssh;
        let secs = |v: &str| format!("{}", Config::secs(v).ceil() as u64);
        let mut options = vec![
            "BatchMode=yes".to_string(),
            "ControlMaster=auto".into(),
            format!("ControlPath={}/%C", control_dir.display()),
            format!("ControlPersist={}", secs(&s.control_persist)),
            format!("ServerAliveInterval={}", secs(&s.alive_interval)),
            format!("ServerAliveCountMax={}", s.alive_count.max(1)),
            format!("ConnectTimeout={}", secs(&s.connect_timeout)),
            format!(
                "StrictHostKeyChecking={}",
                if s.strict_host_keys {
                    "yes"
                } else {
                    "accept-new"
                }
            ),
        ];
        options.extend(s.options.iter().cloned());
        SshSpec {
            config: s.config.clone(),
            options,
        }
    }

    /// `ssh` and its options, up to (not including) the destination.
    pub fn argv(&self, host: &HostSpec) -> Vec<String> {
        let mut v = vec!["ssh".to_string()];
        if !self.config.is_empty() {
            v.push("-F".into());
            v.push(self.config.clone());
        }
        for o in &self.options {
            v.push("-o".into());
            v.push(o.clone());
        }
        if host.port != 0 {
            v.push("-p".into());
            v.push(host.port.to_string());
        }
        v
    }

    /// `ssh … dest -- <line>`: `line` is what the remote shell runs, already quoted.
    pub fn command(&self, host: &HostSpec, line: &str) -> Command {
        let argv = self.argv(host);
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]).arg(&host.dest).arg("--").arg(line);
        c
    }

    /// rsync's `-e` value. rsync splits it on spaces and honours single and double quotes
    /// but not backslashes, so each word is wrapped in whichever quote it does not contain.
    pub fn rsync_shell(&self, host: &HostSpec) -> Result<String> {
        let words: Result<Vec<String>> = self
            .argv(host)
            .into_iter()
            .map(|w| {
                if !w.contains(['\'', '"', ' ']) {
                    Ok(w)
                } else if !w.contains('\'') {
                    Ok(format!("'{w}'"))
                } else if !w.contains('"') {
                    Ok(format!("\"{w}\""))
                } else {
                    bail!(
                        "ssh option {w:?} holds both quote characters, which rsync -e cannot pass"
                    )
                }
            })
            .collect();
        Ok(words?.join(" "))
    }

    /// Runs `words` (quoted here) on the host, with `input` on stdin. A connection failure
    /// is a [`Lost`] error; a non-zero exit of the command is an ordinary one carrying its
    /// last line of stderr.
    pub fn run(&self, host: &HostSpec, words: &[String], input: Option<&[u8]>) -> Result<Vec<u8>> {
        let line = shell::join(words);
        let mut cmd = self.command(host, &line);
        let out = run_with_input(&mut cmd, input)
            .with_context(|| format!("cannot start ssh to {}", host.dest))?;
        check(&out, &format!("{} on {}", words[0], host.dest))?;
        Ok(out.stdout)
    }

    /// The host's `seal-sched` with arguments.
    pub fn sched(&self, host: &HostSpec, args: &[&str]) -> Result<Vec<u8>> {
        let mut words = vec![format!("{}/seal-sched", host.bin_dir)];
        words.extend(args.iter().map(|s| s.to_string()));
        self.run(host, &words, None)
    }
}

pub fn run_with_input(cmd: &mut Command, input: Option<&[u8]>) -> std::io::Result<Output> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    if let Some(data) = input {
        let mut stdin = child.stdin.take().expect("piped");
        // A command that exits without reading is reported by its status, not EPIPE here.
        let _ = stdin.write_all(data);
    }
    child.wait_with_output()
}

/// The last non-empty line a command printed on stderr.
pub fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .trim()
        .to_string()
}

/// Ok for status 0; [`Lost`] for ssh's 255; an error with the last stderr line otherwise.
pub fn check(out: &Output, what: &str) -> Result<()> {
    match out.status.code() {
        Some(0) => Ok(()),
        Some(SSH_LOST) => Err(Lost(format!(
            "connection lost running {what}: {}",
            last_line(&out.stderr)
        ))
        .into()),
        _ => bail!("{what} failed ({}): {}", out.status, last_line(&out.stderr)),
    }
}

/// Whether an error (anywhere in its chain) is a lost connection.
pub fn is_lost(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<Lost>().is_some())
}

/// Every remote host named by a worker, keyed by `host_id`. Workers on one host share its
/// storage roots; the first worker's run and binary directories speak for the host.
pub fn hosts(cfg: &Config) -> BTreeMap<String, HostSpec> {
    let mut out: BTreeMap<String, HostSpec> = BTreeMap::new();
    for w in cfg.workers.iter().filter(|w| w.is_remote()) {
        let h = out.entry(w.host_id()).or_insert_with(|| HostSpec {
            id: w.host_id(),
            dest: w.host.clone(),
            port: w.port,
            run_dir: w.run_dir.clone(),
            bin_dir: if !w.bin_dir.is_empty() {
                w.bin_dir.clone()
            } else {
                cfg.bin_dir().display().to_string()
            },
            rsync_path: w.rsync_path.clone(),
            storage: vec![],
            roots: vec![],
        });
        for s in w.storage.iter().chain(std::iter::once(&w.run_dir)) {
            if !h.roots.contains(s) {
                h.roots.push(s.clone());
            }
        }
        for s in &w.storage {
            if !h.storage.contains(s) {
                h.storage.push(s.clone());
            }
        }
    }
    out
}

impl HostSpec {
    /// `path` may be touched on this host: inside its storage or run directory.
    pub fn check(&self, path: &str) -> Result<()> {
        let roots: Vec<&str> = self.roots.iter().map(String::as_str).collect();
        shell::check_within(path, &roots, &self.dest)
    }

    /// The host's lock and staging directory for one task.
    pub fn task_dir(&self, task: u64) -> String {
        format!("{}/tasks/{task}", self.run_dir)
    }
}

/// Where the shared connections' sockets live: in the repository when its path leaves
/// room (a Unix socket path has ~104 usable bytes and ssh appends 17 while creating one),
/// else under /tmp, private to this user.
pub fn control_dir(repo_root: &Path) -> Result<PathBuf> {
    control_dir_in(repo_root, Path::new("/tmp"))
}

fn control_dir_in(repo_root: &Path, tmp: &Path) -> Result<PathBuf> {
    let uid = own_uid();
    let mut dir = repo_root.join("ssh");
    if dir.as_os_str().len() + 60 > 100 {
        dir = tmp.join(format!("sealkit-ssh-{uid}"));
    }
    private_dir(&dir, uid)?;
    Ok(dir)
}

/// Our (effective) uid: the owner of our /proc entry (0, which refuses every directory but
/// root's, where /proc cannot be read).
fn own_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

/// Makes `dir` (mode 0700) unless it exists, then checks it without following a symlink:
/// a real directory, owned by `uid`, mode 0700. In a shared /tmp another user can create the
/// name first (a symlink to a directory of theirs, or their own directory) to read or plant
/// our ssh control sockets; such a directory is refused, never chmod-ed or used.
pub fn private_dir(dir: &Path, uid: u32) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
    let md =
        std::fs::symlink_metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let refuse = |why: String| {
        anyhow::anyhow!(
            "{} {why}: refusing it for ssh control sockets (remove it, or use a shorter --repo path)",
            dir.display()
        )
    };
    if !md.file_type().is_dir() {
        return Err(refuse("is not a directory (a symlink?)".into()));
    }
    if md.uid() != uid {
        return Err(refuse(format!("is owned by uid {}, not {uid}", md.uid())));
    }
    if md.mode() & 0o777 != 0o700 {
        return Err(refuse(format!("has mode {:o}, not 700", md.mode() & 0o777)));
    }
    Ok(())
}

/// The script that runs a phase on a host (`sh -c SCRIPT sealkit LOCK PIDFILE LOG LABEL
/// CMD...`). Its text is constant; everything variable arrives as a positional argument,
/// so nothing in a path, a name or an environment value is ever parsed by the shell.
///
/// It takes the sector's lock on the host first. The scheduler starts a phase only when the
/// sector has no live task, so whoever holds the lock is a run whose connection was lost
/// and which was not stopped then (the host was unreachable): it is stopped now (its pid is
/// in PIDFILE, one per sector) and this run waits for the lock, never runs beside it. Start
/// and end go to the host's phase log; the phase gets the document on stdin and prints its
/// result on stdout, as it does locally. Once the phase runs, the script itself writes
/// nothing to the connection (the shell reports a killed job on stderr, and a write to a
/// dropped connection would kill it with SIGPIPE before it logs the end and lets go of
/// the lock).
pub const RUN_SCRIPT: &str = r#"lock=$1 pidfile=$2 log=$3 label=$4
shift 4
mkdir -p "${lock%/*}" "${pidfile%/*}" || exit 70
exec 9>>"$lock" 3<&0 4>&1 5>&2
if ! flock -n 9; then
  echo "sealkit: $label: stopping an earlier run that lost its connection" >&2
  sh -c "$KILL" sealkit "$pidfile"
  flock 9
fi
exec 0</dev/null 1>/dev/null 2>/dev/null
echo "$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ) start $label pid $$" >>"$log"
"$@" <&3 >&4 2>&5 3<&- 4>&- 5>&- &
pid=$!
echo "$pid" >"$pidfile"
wait "$pid"
rc=$?
echo "$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ) end $label rc $rc" >>"$log"
rm -f "$pidfile"
exit "$rc"
"#;

/// Stops the phase a [`RUN_SCRIPT`] started (after a cancel, a timeout or a dropped
/// connection), if the pid file still names one of our phases.
pub const KILL_SCRIPT: &str = r#"pidfile=$1
[ -f "$pidfile" ] || exit 0
pid=$(cat "$pidfile")
case "$pid" in ''|*[!0-9]*) exit 0 ;; esac
if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'seal-'; then
  kill -KILL "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
fi
"#;

/// The words that run a phase on a host under [`RUN_SCRIPT`] (`env KILL=… sh -c SCRIPT …`);
/// the phase's own command follows.
pub fn run_words(h: &HostSpec, name: &str, label: &str) -> Vec<String> {
    vec![
        "env".into(),
        format!("KILL={KILL_SCRIPT}"),
        "sh".into(),
        "-c".into(),
        RUN_SCRIPT.into(),
        "sealkit".into(),
        format!("{}/locks/{name}.lock", h.run_dir),
        pid_file(h, name),
        format!("{}/phase.log", h.run_dir),
        label.into(),
    ]
}

/// Where the running phase of a sector keeps its pid on the host.
pub fn pid_file(h: &HostSpec, name: &str) -> String {
    format!("{}/locks/{name}.pid", h.run_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostSpec {
        HostSpec {
            id: "root@pc1:2222".into(),
            dest: "root@pc1".into(),
            port: 2222,
            run_dir: "/var/tmp/sealkit-worker".into(),
            bin_dir: "/usr/local/bin".into(),
            rsync_path: String::new(),
            storage: vec!["/srv/seal".into()],
            roots: vec!["/var/tmp/sealkit-worker".into(), "/srv/seal".into()],
        }
    }

    #[test]
    fn every_connection_is_batch_shared_alive_and_strict() {
        let cfg: Config = toml::from_str("[ssh]\noptions = [\"IdentityFile=/k y\"]\n").unwrap();
        let ssh = SshSpec::new(&cfg, Path::new("/r/ssh"));
        let argv = ssh.argv(&host()).join(" ");
        for o in [
            "-o BatchMode=yes",
            "-o ControlMaster=auto",
            "-o ControlPath=/r/ssh/%C",
            "-o ServerAliveInterval=15",
            "-o StrictHostKeyChecking=yes",
            "-o IdentityFile=/k y",
            "-p 2222",
        ] {
            assert!(argv.contains(o), "{o} in {argv}");
        }
        assert!(ssh
            .rsync_shell(&host())
            .unwrap()
            .contains("'IdentityFile=/k y'"));
    }

    /// The run script, run here by `sh`: the document goes in on stdin, the result comes
    /// out on stdout, the phase log gets start and end, and a run whose connection was lost
    /// is stopped before the next one starts.
    #[test]
    fn run_script_locks_logs_and_passes_stdin() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n).display().to_string();
        let mut h = host();
        h.run_dir = d.path().display().to_string();
        let run = |cmd: &[&str], input: &[u8]| {
            let words = run_words(&h, "s-t01000-1", "PC1 sector 1");
            let mut c = Command::new(&words[0]);
            c.args(&words[1..]).args(cmd);
            run_with_input(&mut c, Some(input)).unwrap()
        };
        let out = run(&["sh", "-c", "tr a-z A-Z"], b"doc $(x)");
        assert!(out.status.success());
        assert_eq!(out.stdout, b"DOC $(X)");
        let out = run(&["sh", "-c", "exit 3"], b"");
        assert_eq!(out.status.code(), Some(3));
        let log = std::fs::read_to_string(p("phase.log")).unwrap();
        assert_eq!(log.lines().count(), 4, "{log}");
        assert!(log
            .lines()
            .last()
            .unwrap()
            .ends_with("end PC1 sector 1 rc 3"));
        let pidfile = p("locks/s-t01000-1.pid");
        assert!(!Path::new(&pidfile).exists());

        // An earlier run still holds the sector: it is stopped, and the new run starts
        // only after it ended.
        let words = run_words(&h, "s-t01000-1", "PC1 sector 1");
        let slow = std::thread::spawn(move || {
            let mut c = Command::new(&words[0]);
            // `exec -a` names the process like a phase, which is what the kill checks.
            c.args(&words[1..])
                .args(["bash", "-c", "exec -a seal-pc1 sleep 30"]);
            run_with_input(&mut c, Some(b"")).unwrap()
        });
        let t = std::time::Instant::now();
        while !Path::new(&pidfile).exists() {
            assert!(t.elapsed().as_secs() < 10, "the first run never started");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let out = run(&["true"], b"");
        assert!(out.status.success());
        assert!(
            t.elapsed().as_secs() < 20,
            "waited for the old run to finish"
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("stopping an earlier run"));
        assert_eq!(slow.join().unwrap().status.code(), Some(137), "killed");
        let log = std::fs::read_to_string(p("phase.log")).unwrap();
        let last: Vec<&str> = log.lines().rev().take(4).collect();
        assert!(
            last[0].contains("end") && last[1].contains("start"),
            "{log}"
        );
        assert!(
            last[2].ends_with("rc 137") && last[3].contains("start"),
            "{log}"
        );
    }
    #[test]
    fn the_tmp_control_dir_is_never_one_planted_by_another_user() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let uid = own_uid();
        let long_repo = tmp.path().join("r".repeat(90));
        let name = tmp.path().join(format!("sealkit-ssh-{uid}"));
        // A symlink to someone's directory: refused, and its target is left as it was.
        let theirs = tmp.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::os::unix::fs::symlink(&theirs, &name).unwrap();
        let e = format!("{:#}", control_dir_in(&long_repo, tmp.path()).unwrap_err());
        assert!(e.contains("is not a directory (a symlink?)"), "{e}");
        let mode = std::fs::metadata(&theirs).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o777, "the symlink's target was changed");
        // A directory open to others: refused, not chmod-ed.
        std::fs::remove_file(&name).unwrap();
        std::fs::create_dir(&name).unwrap();
        std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = format!("{:#}", control_dir_in(&long_repo, tmp.path()).unwrap_err());
        assert!(e.contains("has mode 755, not 700"), "{e}");
        // Another user's directory (only root can make one here).
        std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o700)).unwrap();
        if std::os::unix::fs::chown(&name, Some(uid + 4242), None).is_ok() {
            let e = format!("{:#}", control_dir_in(&long_repo, tmp.path()).unwrap_err());
            assert!(e.contains(&format!("owned by uid {}", uid + 4242)), "{e}");
        }
        // Our own fresh one: made 0700 and used.
        std::fs::remove_dir(&name).unwrap();
        assert_eq!(control_dir_in(&long_repo, tmp.path()).unwrap(), name);
        let mode = std::fs::symlink_metadata(&name)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        // A short repository path keeps the sockets inside the repository.
        let short = tmp.path().join("s");
        std::fs::create_dir(&short).unwrap();
        assert_eq!(
            control_dir_in(&short, tmp.path()).unwrap(),
            short.join("ssh")
        );
    }
}
