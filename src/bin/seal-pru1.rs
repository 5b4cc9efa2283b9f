//! seal-pru1: ProveReplicaUpdate1 (snap deals). See `man/seal-pru1.1`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use sealkit::cli;
use sealkit::update::phase::prove_replica_update1;

#[derive(Parser)]
#[command(
    name = "seal-pru1",
    version,
    about = "ProveReplicaUpdate1: the vanilla partition proofs of a sector update",
    after_help = "\
Reads sector documents after seal-ru and proves every partition of the update: at each
challenge (drawn from update.comm_r), the sector key's node in the old tree_r_last, the new data's
node in the update's tree_d and the new replica's node in the update's tree_r_last, with the apex
leaves of tree_d. Each proof is checked before it is written. The proofs go to the update cache
as the reference's bincode (the bytes Lotus carries to ProveReplicaUpdate2), and each document is
printed with update.vanilla_proofs (their path) added.

Examples:
  seal-ru snap.json | seal-pru1 | seal-pru2
  seal-pru1 ru.json > pru1.json"
)]
struct Args {
    /// Sector documents ('-' or none: stdin).
    docs: Vec<PathBuf>,

    /// Worker threads (default: SEALKIT_THREADS, else every CPU this process may use).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    cli::run_main("seal-pru1", || run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    cli::init_threads(args.threads)?;
    let mut docs = cli::read_document_args(&args.docs)?;
    for doc in &mut docs {
        prove_replica_update1(doc)?;
        cli::print_document(doc)?;
    }
    Ok(())
}
