//! Smoke test of the sshd test harness (tests/common/sshd.rs): real sshd hosts on loopback,
//! rsync over ssh, a host vanishing under a live session, and coming back.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::sshd::SshFarm;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn assert_ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Processes (other than this one) whose command line mentions `path`.
fn processes_mentioning(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let state = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        if state
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
        {
            continue;
        }
        let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle) {
            found.push(format!("{name}: {cmd}"));
        }
    }
    found
}

#[test]
fn ssh_farm_hosts_rsync_kill_restart() {
    let t0 = Instant::now();
    let farm = SshFarm::start(&["a", "b"]);
    let (a, b) = (farm.host("a"), farm.host("b"));
    assert_ne!(a.port, b.port);
    assert!(a.root.is_dir() && b.root.is_dir());
    eprintln!("farm of 2 up in {:?}", t0.elapsed());

    // Each name reaches its own sshd: SSH_CONNECTION ends with the server's port.
    for h in [a, b] {
        let out = farm.ssh(&h.name, "hostname && echo $SSH_CONNECTION && id -un");
        assert_ok(&out, &format!("ssh {} hostname", h.name));
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[1].ends_with(&format!("127.0.0.1 {}", h.port)),
            "{}: {text}",
            h.name
        );
        assert_eq!(lines[2], farm.user);
    }

    // rsync over ssh into host b's dir.
    let src = farm.dir.join("payload.bin");
    let data: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    fs::write(&src, &data).unwrap();
    let dest = b.root.join("inbox");
    assert_ok(
        &farm.ssh("b", &format!("mkdir -p {}", dest.display())),
        "ssh b mkdir",
    );
    let out = Command::new("rsync")
        .arg("-a")
        .arg("-e")
        .arg(farm.rsync_rsh())
        .arg(&src)
        .arg(format!("b:{}/", dest.display()))
        .output()
        .unwrap();
    assert_ok(&out, "rsync to b");
    assert_eq!(fs::read(dest.join("payload.bin")).unwrap(), data);

    // A ControlMaster to b, left for the farm's Drop to stop.
    let control = farm.dir.join("cm-%C");
    let out = Command::new("ssh")
        .arg("-F")
        .arg(&farm.ssh_config)
        .args(["-o", "ControlMaster=yes", "-o", "ControlPersist=yes", "-o"])
        .arg(format!("ControlPath={}", control.display()))
        .args(["-f", "-N", "b"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ok(&out, "ssh ControlMaster b");
    let out = Command::new("ssh")
        .arg("-F")
        .arg(&farm.ssh_config)
        .arg("-o")
        .arg(format!("ControlPath={}", control.display()))
        .args(["b", "echo", "muxed"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ok(&out, "ssh b through the ControlMaster");
    assert_eq!(stdout(&out), "muxed");

    // A long session on a, then a vanishes under it.
    let mut session = farm
        .ssh_command("a")
        .arg("echo $$; exec sleep 30")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(session.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The shell's pid, which `exec` hands to sleep.
    let remote_pid: u32 = first.trim().parse().expect("remote pid");

    let t = Instant::now();
    farm.kill("a");
    eprintln!("kill {:?}", t.elapsed());
    assert!(!a.is_up());
    let status = loop {
        if let Some(s) = session.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the session on a outlived the host"
        );
        sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    eprintln!("session on a dropped {:?} after kill", t.elapsed());
    assert!(!alive(remote_pid), "the sleep on a survived kill(a)");

    let out = farm.ssh("a", "true");
    assert!(!out.status.success(), "ssh a works after kill(a)");
    assert_ok(&farm.ssh("b", "true"), "ssh b after kill(a)");
    farm.kill("a"); // idempotent

    // Back on the same port with the same key (strict host key checking passes).
    let tr = Instant::now();
    farm.restart("a");
    eprintln!("restart {:?}", tr.elapsed());
    assert!(a.is_up());
    assert_ok(&farm.ssh("a", "true"), "ssh a after restart");
    assert_ok(&farm.ssh("b", "true"), "ssh b after restart(a)");

    // Drop: no sshd, ControlMaster or session of the farm survives, the dir is gone.
    let dir = farm.dir.clone();
    let td = Instant::now();
    drop(farm);
    eprintln!("drop {:?}", td.elapsed());
    let left = processes_mentioning(&dir);
    assert!(left.is_empty(), "left after drop: {left:?}");
    assert!(!dir.exists());
    eprintln!("total {:?}", t0.elapsed());
}

fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// `cut_off` drops the host's network but not its work: a command started in a session
/// finishes after its sshd is gone, and the host answers again after `restart`.
#[test]
fn cut_off_leaves_session_commands_running() {
    let farm = SshFarm::start(&["a"]);
    let done = farm.host("a").root.join("done");
    let mut session = farm
        .ssh_command("a")
        .arg(format!(
            "sh -c 'sleep 3; echo finished > {}'",
            done.display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(1500));
    farm.cut_off("a");
    let t = Instant::now();
    while session.try_wait().unwrap().is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the session never dropped"
        );
        sleep(Duration::from_millis(20));
    }
    assert!(!farm.ssh("a", "true").status.success(), "a still answers");
    while !done.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the command died with sshd"
        );
        sleep(Duration::from_millis(50));
    }
    assert_eq!(fs::read_to_string(&done).unwrap().trim(), "finished");
    farm.restart("a");
    assert_ok(&farm.ssh("a", "true"), "after restart");
}
