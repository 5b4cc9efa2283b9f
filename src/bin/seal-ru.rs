//! seal-ru: ReplicaUpdate (snap deals). See `man/seal-ru.1`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use sealkit::cli;
use sealkit::update::phase::replica_update;

#[derive(Parser)]
#[command(
    name = "seal-ru",
    version,
    about = "ReplicaUpdate: encode deal data into a committed-capacity sector (snap deals)",
    after_help = "\
Reads sector documents of sealed CC sectors that carry an \"update\" object (the new data in
update.paths.unsealed with its pieces and comm_d, as `seal-ap --update` writes them; the update
replica in update.paths.sealed and the update cache in update.paths.cache). Encodes the data into
the sector key (paths.sealed), writing the update replica, tree_d, tree_r_last, p_aux and t_aux in
the reference's formats, and prints each document with update.comm_r_last, update.comm_r and
update.sealed_cid added.

The sector key and its cache are only read, and checked against the document's comm_r first.
Safe to re-run at any time: every output is written under a temp name and renamed into place.

Examples:
  seal-ap --update job.json --piece deal.car --fill | seal-ru | seal-pru1 | seal-pru2
  seal-ru -v snap.json > ru.json"
)]
struct Args {
    /// Sector documents ('-' or none: stdin).
    docs: Vec<PathBuf>,

    /// Worker threads (default: SEALKIT_THREADS, else every CPU this process may use).
    #[arg(long)]
    threads: Option<usize>,

    /// Report the time of each step on stderr.
    #[arg(short, long)]
    verbose: bool,
}

fn main() -> ExitCode {
    cli::run_main("seal-ru", || run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    cli::init_threads(args.threads)?;
    let mut docs = cli::read_document_args(&args.docs)?;
    for doc in &mut docs {
        replica_update(doc, args.verbose)?;
        cli::print_document(doc)?;
    }
    Ok(())
}
