//! seal-pru2: ProveReplicaUpdate2 (snap deals). See `man/seal-pru2.1`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{ensure, Result};
use clap::Parser;

use sealkit::cli;
use sealkit::update::phase::prove_replica_update2;

#[derive(Parser)]
#[command(
    name = "seal-pru2",
    version,
    about = "ProveReplicaUpdate2: the SNARK of a sector update, verified",
    after_help = "\
Reads sector documents after seal-pru1 and proves the update with the reference's
EmptySectorUpdate circuit and Groth16 prover (one proof of 192 bytes per partition), verifies the
result, and prints each document with update.proof (hex) added.

Parameters are read from FIL_PROOFS_PARAMETER_CACHE (default /var/tmp/filecoin-proof-parameters):
the empty-sector-update files that `lotus fetch-params` brings. --generate-test-params writes
random, INSECURE parameters for testing into that directory (it must be set explicitly).

Examples:
  seal-ru snap.json | seal-pru1 | seal-pru2 > proven.json
  FIL_PROOFS_PARAMETER_CACHE=/var/tmp/test-params seal-pru2 --generate-test-params 2KiB"
)]
struct Args {
    /// Sector documents ('-' or none: stdin).
    docs: Vec<PathBuf>,

    /// Write random, insecure update parameters for a sector size (2KiB, 8MiB, 512MiB, 32GiB,
    /// 64GiB) into FIL_PROOFS_PARAMETER_CACHE and exit. Repeatable.
    #[arg(long, value_name = "SIZE")]
    generate_test_params: Vec<String>,

    /// Worker threads (default: SEALKIT_THREADS, else every CPU this process may use).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    cli::run_main("seal-pru2", || run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    cli::init_threads(args.threads)?;
    if !args.generate_test_params.is_empty() {
        ensure!(
            args.docs.is_empty(),
            "--generate-test-params takes no documents"
        );
        for s in &args.generate_test_params {
            sealkit::snark::update::generate_test_params(
                sealkit::snark::params::proof_for_size_arg(s)?,
            )?;
        }
        return Ok(());
    }
    let mut docs = cli::read_document_args(&args.docs)?;
    for doc in &mut docs {
        prove_replica_update2(doc)?;
        cli::print_document(doc)?;
    }
    Ok(())
}
