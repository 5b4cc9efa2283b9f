//! seal-verify: check a sector's seal proof. See `man/seal-verify.1`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use serde_json::json;

use sealkit::cli;
use sealkit::snark::verify::verify;

#[derive(Parser)]
#[command(
    name = "seal-verify",
    version,
    about = "Verify the seal proof in sector documents",
    after_help = "\
Reads sector documents holding a proof (from seal-c2; files, or stdin when none is given) and
checks it against the document's comm_r, comm_d, prover, sector number, ticket and seed with the
reference's verifier and the verifying key in FIL_PROOFS_PARAMETER_CACHE. Prints one JSON line
per document: {\"sector\": N, \"seal_proof\": ID, \"valid\": true|false[, \"reason\": ...]}.

With --update, checks the snap-deal update proof instead (update.proof from seal-pru2, against
the sector's comm_r and update.comm_r and update.comm_d) and adds \"update\": true to each line.

Exit status: 0 when every proof is valid, 1 when one is not, 2 when a document cannot be
checked (missing fields or parameters) or none is given (empty input).

Examples:
  seal-c2 c1.json | seal-verify
  seal-verify proven.json && echo ok
  seal-pru2 pru1.json | seal-verify --update"
)]
struct Args {
    /// Sector documents ('-' or none: stdin).
    docs: Vec<PathBuf>,

    /// Verify the sector update's proof (snap deals) instead of the seal proof.
    #[arg(long)]
    update: bool,
}

fn main() -> ExitCode {
    let mut all_valid = true;
    let code = cli::run_main("seal-verify", || {
        all_valid = run(Args::parse())?;
        Ok(())
    });
    match code {
        c if c == ExitCode::SUCCESS && !all_valid => ExitCode::from(1),
        c if c == ExitCode::SUCCESS => c,
        _ => ExitCode::from(2),
    }
}

fn run(args: Args) -> Result<bool> {
    let docs = cli::read_document_args(&args.docs)?;
    let mut all = true;
    for doc in &docs {
        let v = if args.update {
            sealkit::snark::update::verify_doc(doc)?
        } else {
            verify(doc)?
        };
        all &= v.valid;
        let mut out = json!({
            "sector": doc.sector()?,
            "seal_proof": doc.seal_proof()?.id(),
            "valid": v.valid,
        });
        if args.update {
            out["update"] = true.into();
        }
        if let Some(r) = v.reason {
            out["reason"] = r.into();
        }
        cli::print_json_line(&out.to_string())?;
    }
    Ok(all)
}
