//! Progress bars on stderr, shown only when stderr is a terminal (never on stdout, which
//! carries the JSON result, and never in logs or pipelines).

use std::io::IsTerminal;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte-count bar; `total` is `None` for streams of unknown length (a spinner then).
pub fn bytes(total: Option<u64>, message: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}")
                .expect("valid template"),
        ),
    };
    bar.set_message(message.to_string());
    bar
}

/// A bar counting items (challenges, nodes) towards `total`.
pub fn count(total: u64, message: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

/// Times a step and reports it on stderr when verbose.
pub fn step<T>(verbose: bool, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let t = std::time::Instant::now();
    let r = f()?;
    if verbose {
        eprintln!(
            "{}: {what}: {:.2} s",
            crate::cli::tool_name(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(r)
}
