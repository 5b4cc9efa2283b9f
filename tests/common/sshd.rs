//! A farm of real sshd "hosts" on loopback for the SSH integration tests.
//!
//! Each host is its own `/usr/sbin/sshd` on 127.0.0.1 with its own port, host key, config and
//! scratch directory; one client key and one `ssh_config` reach them all by name
//! (`ssh -F <farm>/ssh_config a -- cmd`). `kill` makes a host vanish (its listener, every
//! per-connection sshd and everything running in its sessions get SIGKILL), `restart` brings it
//! back on the same port with the same keys. Dropping the farm kills all of it, the ssh clients
//! (ControlMasters) still connected to it, and removes the farm directory.
//!
//! Works as root (logs in as root) and as an ordinary user (sshd can then only log in as that
//! same user, which is the `User` the config names).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// sshd refuses to start unless invoked by an absolute path.
pub const SSHD: &str = "/usr/sbin/sshd";

/// Prefix of every farm directory; `start` reaps leftovers of farms whose test process died.
const FARM_PREFIX: &str = "sshfarm-";

const READY_TIMEOUT: Duration = Duration::from_secs(15);

pub struct SshHost {
    pub name: String,
    pub port: u16,
    /// The host's scratch dir (storage + run dirs go below it): `<farm dir>/<name>`.
    pub root: PathBuf,
    /// sshd's own files: `<farm dir>/<name>.sshd/` (config, host key, pid file, log).
    sshd_dir: PathBuf,
    config: PathBuf,
    pid_file: PathBuf,
    log: PathBuf,
    listener: Mutex<Option<Child>>,
}

pub struct SshFarm {
    /// A tempdir kept alive (and removed on drop) by the farm.
    pub dir: PathBuf,
    /// `Host <name>` blocks for every host: `ssh -F <ssh_config> <name>`.
    pub ssh_config: PathBuf,
    /// The client's private key (ed25519, no passphrase), authorized on every host.
    pub identity: PathBuf,
    pub known_hosts: PathBuf,
    /// The user every host logs in as (the current user).
    pub user: String,
    pub hosts: Vec<SshHost>,
    _tmp: tempfile::TempDir,
}

impl SshHost {
    /// The tail of this host's sshd log (`sshd -E`), for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log, 20)
    }

    /// Whether this host's listening sshd is running (not killed).
    pub fn is_up(&self) -> bool {
        let mut guard = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn spawn(&self) -> Launch {
        let _ = fs::remove_file(&self.pid_file);
        launch_sshd(&self.config, &self.pid_file, &self.log)
    }

    /// Freezes and SIGKILLs the listener, every process it forked (per-connection sshd and the
    /// sessions below them), anything still running with this host's config, and any process
    /// started from a session on this host that escaped the tree (by `SSH_CONNECTION`); then waits
    /// until they are all gone. Returns false (instead of panicking) if some refused to die.
    fn kill_all(&self) -> bool {
        let mut guard = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        let listener = guard.as_ref().map(|c| c.id() as i32);
        let config = self.config.to_string_lossy().into_owned();
        let port = self.port;
        let killed = kill_tree(listener.as_slice(), &|pid| {
            cmdline(pid).contains(&config) || session_port(pid) == Some(port)
        });
        if let Some(mut child) = guard.take() {
            let _ = child.wait();
        }
        wait_gone(&killed, Duration::from_secs(10))
    }
}

impl SshHost {
    /// SIGKILLs only the host's sshd processes (the listener and every per-connection sshd),
    /// leaving what runs in its sessions alive: the network to a host that is still working
    /// goes away. Returns false if some sshd refused to die.
    fn kill_sshd_only(&self) -> bool {
        let mut guard = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        let Some(listener) = guard.as_ref().map(|c| c.id() as i32) else {
            return true;
        };
        let mut tree = BTreeSet::from([listener]);
        loop {
            let more: Vec<i32> = all_pids()
                .into_iter()
                .filter(|&pid| {
                    !tree.contains(&pid)
                        && stat(pid).is_some_and(|s| tree.contains(&s.ppid))
                        && comm(pid).as_deref() == Some("sshd")
                })
                .collect();
            if more.is_empty() {
                break;
            }
            tree.extend(more);
        }
        for &pid in tree.iter().rev() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if let Some(mut child) = guard.take() {
            let _ = child.wait();
        }
        wait_gone(&tree, Duration::from_secs(10))
    }
}

enum Launch {
    Up(Child),
    PortBusy(String),
    Failed(String),
}

impl SshFarm {
    /// Starts one sshd per name; panics with a clear one-line message naming the missing program
    /// (`/usr/sbin/sshd`, `rsync`, `ssh-keygen`, `ssh`) and the apt package when one is missing.
    pub fn start(names: &[&str]) -> SshFarm {
        check_prerequisites();
        check_names(names);
        reap_stale_farms();
        if euid() == 0 {
            // sshd's privilege separation directory; a fresh container often lacks it.
            let run = Path::new("/run/sshd");
            if !run.is_dir() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(run)
                    .expect("create /run/sshd");
            }
        }

        // A short directory: ControlPath sockets below it must fit in 108 bytes.
        let base = std::env::temp_dir();
        let base = if base.as_os_str().len() > 40 {
            PathBuf::from("/tmp")
        } else {
            base
        };
        let tmp = tempfile::Builder::new()
            .prefix(FARM_PREFIX)
            .tempdir_in(&base)
            .expect("create the ssh farm's tempdir");
        let dir = tmp.path().to_path_buf();
        fs::write(dir.join("owner"), owner_stamp()).expect("write the farm's owner file");

        let user = current_user();
        let identity = dir.join("id_ed25519");
        keygen(&identity, "sshfarm-client");
        let authorized_keys = dir.join("authorized_keys");
        fs::copy(identity.with_extension("pub"), &authorized_keys).expect("authorized_keys");

        // Built up host by host, so that a panic part way drops (kills) the hosts started so far.
        let mut farm = SshFarm {
            ssh_config: dir.join("ssh_config"),
            known_hosts: dir.join("known_hosts"),
            dir,
            identity,
            user,
            hosts: Vec::new(),
            _tmp: tmp,
        };
        let dir = farm.dir.clone();
        let mut used_ports = HashSet::new();
        let mut no_penalties = None;
        for name in names {
            let root = dir.join(name);
            let sshd_dir = dir.join(format!("{name}.sshd"));
            fs::create_dir_all(&root).expect("create the host's dir");
            fs::create_dir_all(&sshd_dir).expect("create the host's sshd dir");
            let host_key = sshd_dir.join("ssh_host_ed25519_key");
            keygen(&host_key, &format!("sshfarm-{name}"));
            let config = sshd_dir.join("sshd_config");
            let pid_file = sshd_dir.join("sshd.pid");
            let log = sshd_dir.join("sshd.log");

            let mut attempt = 0;
            let (port, child) = loop {
                attempt += 1;
                let port = free_port(&used_ports);
                let write = |no_penalties: bool| {
                    let text =
                        sshd_config(port, &host_key, &pid_file, &authorized_keys, no_penalties);
                    fs::write(&config, text).expect("write sshd_config");
                };
                // OpenSSH >= 9.8 penalizes sources whose sessions die or fail auth, which a
                // test that kills hosts provokes: `PerSourcePenalties no` where sshd knows it.
                let no_penalties = *no_penalties.get_or_insert_with(|| {
                    write(true);
                    config_accepted(&config)
                });
                write(no_penalties);
                let _ = fs::remove_file(&pid_file);
                match launch_sshd(&config, &pid_file, &log) {
                    Launch::Up(child) => break (port, child),
                    Launch::PortBusy(_) if attempt < 20 => continue,
                    Launch::PortBusy(why) | Launch::Failed(why) => {
                        panic!("SshFarm: sshd for host {name} did not start: {why}")
                    }
                }
            };
            used_ports.insert(port);
            farm.hosts.push(SshHost {
                name: name.to_string(),
                port,
                root,
                sshd_dir,
                config,
                pid_file,
                log,
                listener: Mutex::new(Some(child)),
            });
        }

        let mut cfg = String::new();
        let mut known = String::new();
        for h in &farm.hosts {
            cfg.push_str(&format!(
                "Host {name}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  \
                 IdentityFile {id}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n  \
                 GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  \
                 CheckHostIP no\n  UpdateHostKeys no\n  BatchMode yes\n  \
                 PasswordAuthentication no\n  LogLevel ERROR\n\n",
                name = h.name,
                port = h.port,
                id = farm.identity.display(),
                kh = farm.known_hosts.display(),
                user = farm.user,
            ));
            let pubkey = fs::read_to_string(h.sshd_dir.join("ssh_host_ed25519_key.pub"))
                .expect("read the host's public key");
            let mut fields = pubkey.split_whitespace();
            let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
            known.push_str(&format!("[127.0.0.1]:{} {kind} {key}\n", h.port));
        }
        fs::write(&farm.ssh_config, cfg).expect("write ssh_config");
        fs::write(&farm.known_hosts, known).expect("write known_hosts");

        for h in &farm.hosts {
            farm.wait_answers(h);
        }
        farm
    }

    pub fn host(&self, name: &str) -> &SshHost {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("SshFarm: no host named {name:?}"))
    }

    /// SIGKILLs the host's listening sshd AND every per-connection sshd it forked, with everything
    /// running in its sessions (so live sessions drop, like a host that vanished); waits until
    /// they are gone. Other hosts' sshd and the system's are untouched. Idempotent.
    pub fn kill(&self, name: &str) {
        let h = self.host(name);
        if !h.kill_all() {
            panic!("SshFarm: processes of host {name} survived SIGKILL");
        }
    }

    /// Cuts the host off without stopping its work: its sshd processes die (live sessions
    /// drop, new connections are refused) but the commands those sessions started go on, as
    /// on a host that lost its network. `restart` reconnects it.
    pub fn cut_off(&self, name: &str) {
        if !self.host(name).kill_sshd_only() {
            panic!("SshFarm: sshd of host {name} survived SIGKILL");
        }
    }

    /// Starts that host's sshd again (killing it and its sessions first if it runs; after
    /// `cut_off`, what its sessions left running goes on) on the same port with the same keys;
    /// waits until it answers ssh.
    pub fn restart(&self, name: &str) {
        if self.host(name).is_up() {
            self.kill(name);
        }
        let h = self.host(name);
        let deadline = Instant::now() + Duration::from_secs(5);
        let child = loop {
            match h.spawn() {
                Launch::Up(child) => break child,
                Launch::PortBusy(_) if Instant::now() < deadline => {
                    sleep(Duration::from_millis(100))
                }
                Launch::PortBusy(why) | Launch::Failed(why) => {
                    panic!("SshFarm: restarting host {name} on port {}: {why}", h.port)
                }
            }
        };
        *h.listener.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        self.wait_answers(h);
    }

    /// `ssh -F <ssh_config> -o BatchMode=yes <name> --` with stdin from /dev/null: append the
    /// remote command and spawn or run it.
    pub fn ssh_command(&self, name: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg(&self.ssh_config)
            .args(["-o", "BatchMode=yes", name, "--"])
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `ssh -F ssh_config -o BatchMode=yes <name> -- <cmd>` and returns its output.
    pub fn ssh(&self, name: &str, cmd: &str) -> Output {
        self.ssh_command(name).arg(cmd).output().expect("run ssh")
    }

    /// The value for `rsync -e` (or any `RSH`): `ssh -F <ssh_config>`.
    pub fn rsync_rsh(&self) -> String {
        format!("ssh -F {}", self.ssh_config.display())
    }

    fn wait_answers(&self, h: &SshHost) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let out = Command::new("ssh")
                .arg("-F")
                .arg(&self.ssh_config)
                .args([
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "ConnectTimeout=2",
                    &h.name,
                    "true",
                ])
                .stdin(Stdio::null())
                .output()
                .expect("run ssh");
            if out.status.success() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "SshFarm: host {} (port {}) does not answer ssh after {:?}: {}\nsshd log:\n{}",
                    h.name,
                    h.port,
                    READY_TIMEOUT,
                    String::from_utf8_lossy(&out.stderr).trim(),
                    h.log_tail()
                );
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// ssh clients of this farm: ControlMasters and sessions whose command line names the farm
    /// dir, that hold a unix socket below it, or that are connected to one of the farm's ports.
    fn client_pids(&self) -> HashSet<i32> {
        let dir = self.dir.to_string_lossy().into_owned();
        let mut inodes: HashSet<u64> = unix_socket_inodes_under(&dir);
        let ports: HashSet<u16> = self.hosts.iter().map(|h| h.port).collect();
        inodes.extend(tcp_inodes_to(&ports));
        all_pids()
            .into_iter()
            .filter(|&pid| comm(pid).as_deref() == Some("ssh"))
            .filter(|&pid| {
                cmdline(pid).iter().any(|a| a.contains(&dir))
                    || socket_inodes(pid).iter().any(|i| inodes.contains(i))
            })
            .collect()
    }
}

impl Drop for SshFarm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for h in &self.hosts {
                eprintln!(
                    "SshFarm: host {} (port {}) sshd log tail:\n{}",
                    h.name,
                    h.port,
                    h.log_tail()
                );
            }
        }
        let clients: Vec<i32> = self.client_pids().into_iter().collect();
        let mut killed = kill_tree(&clients, &|_| false);
        for h in &self.hosts {
            h.kill_all();
        }
        // Clients whose connection dropped with the hosts exit by themselves; catch the rest.
        killed.extend(kill_tree(
            &self.client_pids().into_iter().collect::<Vec<_>>(),
            &|_| false,
        ));
        wait_gone(&killed, Duration::from_secs(5));
    }
}

// ---------------------------------------------------------------------------------------------
// Setup helpers

fn check_prerequisites() {
    if !Path::new(SSHD).is_file() {
        panic!(
            "SshFarm: {SSHD} not found: install openssh-server \
             (apt-get install -y openssh-server), or run the tests with scripts/test.sh"
        );
    }
    for (prog, package) in [
        ("rsync", "rsync"),
        ("ssh-keygen", "openssh-client"),
        ("ssh", "openssh-client"),
    ] {
        if which(prog).is_none() {
            panic!(
                "SshFarm: `{prog}` not found in PATH: install {package} \
                 (apt-get install -y {package}), or run the tests with scripts/test.sh"
            );
        }
    }
}

fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

fn check_names(names: &[&str]) {
    let reserved = [
        "ssh_config",
        "known_hosts",
        "authorized_keys",
        "id_ed25519",
        "owner",
    ];
    let mut seen = HashSet::new();
    for name in names {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !reserved.contains(name);
        assert!(ok, "SshFarm: bad host name {name:?} (use [A-Za-z0-9_-])");
        assert!(seen.insert(*name), "SshFarm: host {name:?} named twice");
    }
}

fn euid() -> u32 {
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

fn current_user() -> String {
    if let Ok(out) = Command::new("id").arg("-un").output() {
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !name.is_empty() {
            return name;
        }
    }
    match std::env::var("USER") {
        Ok(u) if !u.is_empty() => u,
        _ if euid() == 0 => "root".into(),
        _ => panic!("SshFarm: cannot tell the current user name (id -un, $USER)"),
    }
}

fn keygen(path: &Path, comment: &str) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "SshFarm: ssh-keygen {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// A port that was free a moment ago (bind 127.0.0.1:0, drop the listener); sshd's bind failing
/// anyway is retried by the caller.
fn free_port(avoid: &HashSet<u16>) -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local_addr").port();
        if !avoid.contains(&port) {
            return port;
        }
    }
}

fn sshd_config(
    port: u16,
    host_key: &Path,
    pid_file: &Path,
    authorized_keys: &Path,
    no_penalties: bool,
) -> String {
    let mut s = format!(
        "ListenAddress 127.0.0.1\n\
         Port {port}\n\
         HostKey {}\n\
         PidFile {}\n\
         AuthorizedKeysFile {}\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\n\
         StrictModes no\n\
         UsePAM no\n\
         UseDNS no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         X11Forwarding no\n\
         MaxStartups 100:30:200\n\
         MaxSessions 100\n\
         Subsystem sftp internal-sftp\n\
         LogLevel INFO\n",
        host_key.display(),
        pid_file.display(),
        authorized_keys.display(),
    );
    if no_penalties {
        s.push_str("PerSourcePenalties no\n");
    }
    s
}

/// `sshd -t`: does this sshd accept the config (here: the PerSourcePenalties line)?
fn config_accepted(config: &Path) -> bool {
    Command::new(SSHD)
        .arg("-t")
        .arg("-f")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Starts `sshd -D -E log -f config` and waits until it listens: sshd writes its pid file after
/// binding, and exits if it cannot bind.
fn launch_sshd(config: &Path, pid_file: &Path, log: &Path) -> Launch {
    let log_start = fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    // Errors before sshd opens its log (config, keys, privsep dir) go to stderr: keep them.
    let stderr_path = log.with_extension("stderr");
    let stderr = match fs::File::create(&stderr_path) {
        Ok(f) => f,
        Err(e) => return Launch::Failed(format!("create {}: {e}", stderr_path.display())),
    };
    let mut child = match Command::new(SSHD)
        .arg("-D")
        .arg("-E")
        .arg(log)
        .arg("-f")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Launch::Failed(format!("spawn {SSHD}: {e}")),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let early = fs::read_to_string(&stderr_path).unwrap_or_default();
            let logged = fs::read(log).unwrap_or_default();
            let logged = String::from_utf8_lossy(&logged[(log_start as usize).min(logged.len())..])
                .into_owned();
            let why = format!("{status}: {} {}", early.trim(), logged.trim()).replace('\n', " | ");
            return if why.contains("Address already in use") {
                Launch::PortBusy(why)
            } else {
                Launch::Failed(why)
            };
        }
        if let Ok(s) = fs::read_to_string(pid_file) {
            if s.trim().parse::<u32>().ok() == Some(child.id()) {
                return Launch::Up(child);
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Launch::Failed(format!(
                "no pid file after 10 s; log: {}",
                tail(log, 5).replace('\n', " | ")
            ));
        }
        sleep(Duration::from_millis(5));
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// "pid starttime" of this process: identifies it even if the pid is reused later.
fn owner_stamp() -> String {
    let pid = std::process::id() as i32;
    format!("{pid} {}\n", stat(pid).map(|s| s.starttime).unwrap_or(0))
}

/// Kills the sshd of farms whose test process died without dropping them (SIGKILL, Ctrl-C), and
/// removes their directories.
fn reap_stale_farms() {
    let mut stale_dirs = BTreeSet::new();
    for pid in all_pids() {
        let args = cmdline(pid);
        if comm(pid).as_deref() != Some("sshd") || !args.iter().any(|a| a == SSHD) {
            continue;
        }
        let Some(cfg) = args
            .iter()
            .position(|a| a == "-f")
            .and_then(|i| args.get(i + 1))
        else {
            continue;
        };
        let Some(farm) = Path::new(cfg).parent().and_then(Path::parent) else {
            continue;
        };
        let is_farm = farm
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(FARM_PREFIX));
        if !is_farm {
            continue;
        }
        let alive = fs::read_to_string(farm.join("owner"))
            .ok()
            .and_then(|s| {
                let mut it = s.split_whitespace();
                let pid: i32 = it.next()?.parse().ok()?;
                let start: u64 = it.next()?.parse().ok()?;
                Some(stat(pid).is_some_and(|s| s.starttime == start && s.state != 'Z'))
            })
            .unwrap_or(false);
        if !alive {
            stale_dirs.insert(farm.to_path_buf());
        }
    }
    for farm in stale_dirs {
        let prefix = format!("{}/", farm.display());
        let killed = kill_tree(&[], &|pid| {
            let args = cmdline(pid);
            comm(pid).as_deref() == Some("sshd")
                && args.iter().any(|a| a == SSHD)
                && args.iter().any(|a| a.starts_with(&prefix))
        });
        wait_gone(&killed, Duration::from_secs(5));
        let _ = fs::remove_dir_all(&farm);
    }
}

// ---------------------------------------------------------------------------------------------
// /proc helpers

struct Stat {
    state: char,
    ppid: i32,
    starttime: u64,
}

fn all_pids() -> Vec<i32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn stat(pid: i32) -> Option<Stat> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ..." where comm may hold spaces and parentheses.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        starttime: f.get(19)?.parse().ok()?,
    })
}

fn comm(pid: i32) -> Option<String> {
    Some(
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()?
            .trim_end()
            .to_string(),
    )
}

/// A process's command line as words. sshd and ssh rewrite theirs (setproctitle) into one
/// space-separated string, e.g. `sshd: /usr/sbin/sshd -D -E <log> -f <cfg> [listener] 0 of
/// 100-200 startups` or `ssh: <ControlPath> [mux]`, so split on spaces as well as NULs (the
/// farm's paths hold no spaces).
fn cmdline(pid: i32) -> Vec<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw)
        .split(|c: char| c == '\0' || c.is_whitespace())
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

/// The server port of the ssh session a process was started in (its `SSH_CONNECTION`
/// environment), when that server is on 127.0.0.1.
fn session_port(pid: i32) -> Option<u16> {
    let raw = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let var = raw
        .split(|&b| b == 0)
        .find_map(|v| v.strip_prefix(b"SSH_CONNECTION="))?;
    let var = String::from_utf8_lossy(var);
    let f: Vec<&str> = var.split_whitespace().collect();
    match f.as_slice() {
        [_, _, "127.0.0.1", port] => port.parse().ok(),
        _ => None,
    }
}

fn socket_inodes(pid: i32) -> Vec<u64> {
    let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    rd.filter_map(|e| {
        let link = fs::read_link(e.ok()?.path()).ok()?;
        let link = link.to_str()?;
        link.strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

/// Inodes of unix sockets bound to a path below `dir` (ControlMaster sockets).
fn unix_socket_inodes_under(dir: &str) -> HashSet<u64> {
    let text = fs::read_to_string("/proc/net/unix").unwrap_or_default();
    let prefix = format!("{dir}/");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f.get(7)?;
            if path.starts_with(&prefix) {
                f.get(6)?.parse().ok()
            } else {
                None
            }
        })
        .collect()
}

/// Inodes of TCP sockets connected to 127.0.0.1 on one of `ports`.
fn tcp_inodes_to(ports: &HashSet<u16>) -> HashSet<u64> {
    let text = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (addr, port) = f.get(2)?.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            if addr == "0100007F" && ports.contains(&port) {
                f.get(9)?.parse().ok()
            } else {
                None
            }
        })
        .collect()
}

/// Freezes (SIGSTOP) the `roots`, every process `select` picks, and all their descendants,
/// repeating until no new process turns up (a stopped process cannot fork, so children forked
/// while we look are caught by the next pass), then SIGKILLs them all. Never touches this
/// process, its ancestors or pid 1. Returns the pids it killed.
fn kill_tree(roots: &[i32], select: &dyn Fn(i32) -> bool) -> BTreeSet<i32> {
    let me = std::process::id() as i32;
    let mut protected: HashSet<i32> = HashSet::from([0, 1, me]);
    let mut p = me;
    while let Some(s) = stat(p) {
        if !protected.insert(s.ppid) || s.ppid <= 1 {
            break;
        }
        p = s.ppid;
    }

    let mut frozen: BTreeSet<i32> = BTreeSet::new();
    for _pass in 0..50 {
        let pids = all_pids();
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        for &pid in &pids {
            if let Some(s) = stat(pid) {
                children.entry(s.ppid).or_default().push(pid);
            }
        }
        let mut todo: Vec<i32> = roots.to_vec();
        todo.extend(frozen.iter().copied());
        todo.extend(pids.iter().copied().filter(|&pid| select(pid)));
        let mut found: BTreeSet<i32> = BTreeSet::new();
        while let Some(pid) = todo.pop() {
            if protected.contains(&pid) || !found.insert(pid) {
                continue;
            }
            if let Some(kids) = children.get(&pid) {
                todo.extend(kids);
            }
        }
        found.retain(|&pid| stat(pid).is_some_and(|s| s.state != 'Z'));
        let new: Vec<i32> = found.difference(&frozen).copied().collect();
        if new.is_empty() {
            break;
        }
        for &pid in &new {
            let _ = kill(Pid::from_raw(pid), Signal::SIGSTOP);
        }
        frozen.extend(new);
    }
    for &pid in &frozen {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    frozen
}

/// Waits until none of `pids` is alive (gone, or a zombie nobody reaped yet).
fn wait_gone(pids: &BTreeSet<i32>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let alive = pids
            .iter()
            .any(|&pid| stat(pid).is_some_and(|s| s.state != 'Z'));
        if !alive {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        sleep(Duration::from_millis(5));
    }
}
