//! Child processes that die with the process that started them.
//!
//! A task supervisor runs a phase (`seal-pc1`, an ssh session, an rsync). If the supervisor
//! is killed (SIGKILL, the OOM killer), a phase that kept running would be an orphan the
//! scheduler no longer tracks: the daemon retries the task beside it, and an orphaned PC1
//! that finishes after the retry's PC2 replaces the encoded replica with a plain copy. Two
//! guards make that impossible:
//! - the child asks the kernel for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`), and
//!   exits at once if the parent is already gone by the time it asks. The signal follows
//!   the *thread* that forked the child, so bind only children started from a thread that
//!   outlives them (the supervisor's main thread);
//! - the child keeps the supervisor's sector lock open across `exec` (the descriptor loses
//!   `FD_CLOEXEC`), so the lock is held as long as any of them lives. Even a child that
//!   escaped the first guard (a set-uid wrapper clears it) holds the sector until it ends,
//!   and the daemon does not start the sector again before that.

use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes `cmd`'s process die with this one and inherit the open descriptors `locks` (the
/// sector locks: one, or a PC1 batch's) across `exec`.
pub fn bind_to_parent<'a>(cmd: &'a mut Command, locks: &[RawFd]) -> &'a mut Command {
    let locks = locks.to_vec();
    let parent = std::process::id() as nix::libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (prctl, getppid, fcntl) on values copied in; it
    // allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            use nix::libc;
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                // The parent died between fork and prctl: nobody would watch this run.
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            for &fd in &locks {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_bound_child_holds_the_lock_it_inherits() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("l");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .unwrap();
        // SAFETY: flock on a descriptor this test owns.
        assert_eq!(
            unsafe { nix::libc::flock(f.as_raw_fd(), nix::libc::LOCK_EX) },
            0
        );
        let mut child = bind_to_parent(&mut Command::new("sleep"), &[f.as_raw_fd()])
            .arg("30")
            .spawn()
            .unwrap();
        // Closing our descriptor without unlocking is what a SIGKILL of the parent does.
        drop(f);
        assert!(
            crate::sched::supervisor::try_lock(&lock).unwrap().is_none(),
            "the child's copy of the descriptor keeps the sector locked"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(crate::sched::supervisor::try_lock(&lock).unwrap().is_some());
    }

    #[test]
    fn a_bound_child_dies_with_its_parent() {
        // The kernel sends the death signal when the thread that forked the child ends (it
        // does when the whole parent process is killed too): a thread that starts a bound
        // child and returns stands in for a killed supervisor.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let child = bind_to_parent(&mut Command::new("sleep"), &[])
                .arg("30")
                .spawn()
                .unwrap();
            tx.send(child).unwrap();
        })
        .join()
        .unwrap();
        let mut child = rx.recv().unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(nix::libc::SIGKILL));
    }
}
