//! seal-sched's log on stderr: one line per event, each stamped with RFC 3339 UTC time, at
//! the level the global `-q`/`-v` flags chose. Errors are not logged here: the command's
//! error is its one last line (see `cli::run_main`).

use std::sync::atomic::{AtomicU8, Ordering};

/// How much goes to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `-q`: warnings only (a failed pass, a row set aside).
    Warn = 0,
    /// The default: also what happens to sectors, tasks and hosts.
    Info = 1,
    /// `-v`: also each pass's summary when it changes.
    Debug = 2,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// The level from the global flags: each `-v` one more, each `-q` one less.
pub fn set_level(verbose: u8, quiet: u8) {
    let l = (Level::Info as i32 + i32::from(verbose) - i32::from(quiet)).clamp(0, 2);
    LEVEL.store(l as u8, Ordering::Relaxed);
}

pub fn level() -> Level {
    match LEVEL.load(Ordering::Relaxed) {
        0 => Level::Warn,
        1 => Level::Info,
        _ => Level::Debug,
    }
}

pub fn enabled(l: Level) -> bool {
    l <= level()
}

/// `2026-12-01T22:30:01Z seal-sched: <msg>`, for time `at` (seconds since the epoch).
pub fn line_at(at: f64, msg: &str) -> String {
    format!("{} seal-sched: {msg}", super::clock::rfc3339(at))
}

/// Writes `msg` stamped now if level `l` is enabled, through `sink` (a progress bar's
/// `println` on a terminal, else stderr).
pub fn emit(l: Level, msg: &str, sink: Option<&indicatif::ProgressBar>) {
    emit_at(l, super::db::now(), msg, sink);
}

/// [`emit`] for something that happened at `at`.
pub fn emit_at(l: Level, at: f64, msg: &str, sink: Option<&indicatif::ProgressBar>) {
    if !enabled(l) {
        return;
    }
    let line = line_at(at, msg);
    match sink {
        Some(b) => b.println(line),
        None => eprintln!("{line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_stamped_and_levels_follow_the_flags() {
        assert_eq!(
            line_at(1_796_164_201.2, "sector 3: PreCommit1"),
            "2026-12-01T22:30:01Z seal-sched: sector 3: PreCommit1"
        );
        set_level(0, 1);
        assert!(enabled(Level::Warn) && !enabled(Level::Info));
        set_level(2, 0);
        assert!(enabled(Level::Debug));
        set_level(0, 0);
        assert_eq!(level(), Level::Info);
    }
}
