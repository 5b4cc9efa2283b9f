//! What every `seal-*` binary shares: reading sector documents, printing results, one-line
//! errors and the thread count. The binaries stay thin; this keeps them uniform.

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::sector::document::SectorDoc;

/// Where a document comes from: a file, or stdin for `-` or none.
pub fn read_document(arg: Option<&Path>) -> Result<SectorDoc> {
    let mut docs = read_documents(arg)?;
    match docs.len() {
        1 => Ok(docs.remove(0)),
        0 => anyhow::bail!("{}: no sector document", source_name(arg)),
        n => anyhow::bail!(
            "{}: expected one sector document, found {n}",
            source_name(arg)
        ),
    }
}

fn source_name(arg: Option<&Path>) -> String {
    match arg {
        Some(p) if p != Path::new("-") => p.display().to_string(),
        _ => "stdin".to_string(),
    }
}

/// True when `arg` means stdin.
pub fn is_stdin(arg: Option<&Path>) -> bool {
    arg.is_none_or(|p| p == Path::new("-"))
}

/// The most bytes read as sector documents from one source. A document is a few KiB (a
/// full 64 GiB sector's piece list stays far below this); anything larger is a wrong file,
/// and reading it whole would only exhaust memory.
pub const MAX_DOCUMENT_BYTES: u64 = 16 << 20;

/// Reads all of `r` as UTF-8, refusing more than `limit` bytes; `name` names the source.
pub fn read_capped(r: impl Read, limit: u64, name: &str) -> Result<String> {
    let mut buf = Vec::new();
    r.take(limit + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {name}"))?;
    if buf.len() as u64 > limit {
        anyhow::bail!(
            "{name} is larger than {}: not a sector document",
            crate::piece::size::format_size(limit)
        );
    }
    String::from_utf8(buf).map_err(|_| anyhow::anyhow!("{name} is not UTF-8 text"))
}

/// Reads every JSON document (one or more, whitespace separated, e.g. one per line) from a
/// file, or from stdin for `-` or none. Empty (or blank) input is an error, not zero
/// documents: a failed producer upstream in a pipe must not look like success.
pub fn read_documents(arg: Option<&Path>) -> Result<Vec<SectorDoc>> {
    let name = source_name(arg);
    let text = if is_stdin(arg) {
        read_capped(io::stdin().lock(), MAX_DOCUMENT_BYTES, &name)?
    } else {
        let p = arg.expect("not stdin");
        // A pipe is fine here (`seal-pc1 <(…)`): a document is read, never mapped or written.
        let f = std::fs::File::open(p)
            .with_context(|| format!("reading sector document {}", p.display()))?;
        read_capped(f, MAX_DOCUMENT_BYTES, &name)?
    };
    if text.trim().is_empty() {
        anyhow::bail!("{name}: empty input, no sector document");
    }
    let mut docs = Vec::new();
    for (i, v) in serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .enumerate()
    {
        let v = v.map_err(|e| anyhow::anyhow!("{name}: not a JSON sector document: {e}"))?;
        let label = if i == 0 {
            name.clone()
        } else {
            format!("{name} (document {})", i + 1)
        };
        docs.push(SectorDoc::from_value(v, &label)?);
    }
    Ok(docs)
}

/// Reads the documents named on the command line (each file may hold several), or stdin
/// when none is named.
pub fn read_document_args(args: &[std::path::PathBuf]) -> Result<Vec<SectorDoc>> {
    if args.is_empty() {
        return read_documents(None);
    }
    let mut docs = Vec::new();
    for a in args {
        docs.extend(read_documents(Some(a))?);
    }
    if docs.is_empty() {
        anyhow::bail!("no sector document given");
    }
    Ok(docs)
}

/// Prints one document as a line of JSON on stdout.
pub fn print_document(doc: &SectorDoc) -> Result<()> {
    print_json_line(&doc.to_json_line())
}

/// Prints a line on stdout, flushing it.
pub fn print_json_line(line: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .context("writing the result to stdout")
}

/// Runs `produce` into `out` (a file: written to a temp name, fsynced and renamed into place,
/// the temp removed on failure; never over a non-regular file) or into stdout. For data
/// results (unsealed bytes) that may take hours: the target is checked before `produce` runs.
pub fn write_output(
    out: Option<&Path>,
    produce: impl FnOnce(&mut dyn Write) -> Result<u64>,
) -> Result<u64> {
    match out {
        None => {
            let stdout = io::stdout();
            let mut w = io::BufWriter::with_capacity(1 << 20, stdout.lock());
            let n = produce(&mut w)?;
            w.flush().context("writing to stdout")?;
            Ok(n)
        }
        Some(path) => {
            crate::fsutil::check_replaceable(path)?;
            crate::fsutil::remove_dead_temps_beside(path);
            let tmp = crate::fsutil::temp_path(path);
            let result = (|| -> Result<u64> {
                let f = crate::fsutil::create_temp(&tmp)?;
                let mut w = io::BufWriter::with_capacity(1 << 20, f);
                let n = produce(&mut w)?;
                let f = w.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
                crate::fsutil::rename_into_place(&tmp, path)?;
                crate::fsutil::sync_parent(path)?;
                Ok(n)
            })();
            if result.is_err() {
                std::fs::remove_file(&tmp).ok();
            }
            result.with_context(|| format!("writing {}", path.display()))
        }
    }
}

/// The thread count: `--threads`, else `SEALKIT_THREADS`, else the CPUs of the affinity mask.
pub fn thread_count(threads: Option<usize>) -> Result<usize> {
    Ok(match threads {
        Some(n) => n,
        None => match std::env::var("SEALKIT_THREADS") {
            Ok(v) => v
                .parse()
                .with_context(|| format!("SEALKIT_THREADS={v:?} is not a number"))?,
            Err(_) => crate::affinity::allowed_cpus().len(),
        },
    }
    .max(1))
}

/// Sets the size of the global rayon pool (see [`thread_count`]).
pub fn init_threads(threads: Option<usize>) -> Result<()> {
    let n = thread_count(threads)?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .context("starting the worker threads")
}

/// The running tool's name (`seal-pc1`, …), for diagnostics from library code.
pub fn tool_name() -> &'static str {
    TOOL.get().copied().unwrap_or("sealkit")
}

static TOOL: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Runs a binary's body, turning an error into one line on stderr and exit code 1, and a
/// panic into one line and exit code 101 (never a backtrace).
pub fn run_main(tool: &'static str, body: impl FnOnce() -> Result<()>) -> ExitCode {
    let _ = TOOL.set(tool);
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("{tool}: internal error: {msg}{at}");
    }));
    // A bad SEALKIT_SHA_ENGINE is the operator's mistake: say so before any work starts.
    if let Err(e) = crate::hash::sha256_engine::from_env() {
        eprintln!("{tool}: error: {e:#}");
        return ExitCode::from(1);
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            // A closed stdout (`| head`) is not worth a complaint.
            if e.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::from(1);
            }
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("{tool}: error: {line}");
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(101),
    }
}
