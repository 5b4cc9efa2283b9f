//! seal-unseal: recover unsealed data from a sealed sector. See `man/seal-unseal.1`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Parser;

use sealkit::cli;
use sealkit::unseal::{unseal, Request};

#[derive(Parser)]
#[command(
    name = "seal-unseal",
    version,
    about = "Unseal: recover the data of a sealed sector whose layers are gone",
    after_help = "\
Reads a sealed sector's document (after seal-pc2), labels every SDR layer again (as PC1 does;
same resources), and decodes data = replica - key. Writes the requested bytes to --out, or to
stdout: a piece's original bytes (--piece N), any range of unpadded sector bytes (--offset,
--len; any offset and length, not only multiples of 127), or the whole fr32-padded sector
(--padded, the unsealed file Lotus keeps). Nothing is written unless the decoded bytes match
the document's commitments (a piece's comm_p, comm_d for the padded sector, the CommP of every
piece a range touches): a document of another ticket or replica is refused.

A snapped sector (after seal-ru: its \"update\" has a comm_r) is unsealed to the update's data:
--piece N names the update's pieces, and the sector key is read from paths.sealed while it is
kept, else labeled again. --sector-key regenerates a released sector key (paths.sealed, with its
tree_r_last, p_aux and t_aux in paths.cache) from the update replica and the update's data,
as Lotus's RegenSectorKey task; nothing is kept unless it gives the sector's comm_r again.

Examples:
  seal-unseal sector.json --piece 0 > deal.car
  seal-unseal sector.json --offset 1000 --len 4096 | sha256sum
  seal-unseal sector.json --padded --out /srv/unsealed/s-t01000-7
  seal-unseal snapped.json --sector-key"
)]
struct Args {
    /// Sector document ('-' or none: stdin).
    doc: Option<PathBuf>,

    /// Unseal the payload of piece N (index in the document's pieces).
    #[arg(long, value_name = "N", conflicts_with_all = ["offset", "len", "padded"])]
    piece: Option<usize>,

    /// First unpadded byte of the range.
    #[arg(long, requires = "len")]
    offset: Option<u64>,

    /// Unpadded bytes to unseal.
    #[arg(long)]
    len: Option<u64>,

    /// The whole sector, fr32-padded.
    #[arg(long, conflicts_with_all = ["offset", "len"])]
    padded: bool,

    /// Regenerate the sector key of a snapped sector instead (prints nothing).
    #[arg(long, conflicts_with_all = ["piece", "offset", "len", "padded", "out"])]
    sector_key: bool,

    /// Write here instead of stdout (written to a temp name, then renamed).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    /// CPUs to use from the affinity mask (default: SEALKIT_THREADS, else all of them).
    #[arg(long)]
    threads: Option<usize>,

    /// Report the time of each step on stderr.
    #[arg(short, long)]
    verbose: bool,
}

fn main() -> ExitCode {
    cli::run_main("seal-unseal", || run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    let threads = cli::thread_count(args.threads)?;
    cli::init_threads(Some(threads))?;
    if args.sector_key {
        let doc = cli::read_document(args.doc.as_deref())?;
        return sealkit::update::phase::regenerate_sector_key(&doc, args.verbose);
    }
    let request = match (args.piece, args.offset, args.len, args.padded) {
        (Some(i), _, _, _) => Request::Piece(i),
        (None, _, _, true) => Request::Padded,
        (None, offset, Some(len), false) => Request::Range {
            offset: offset.unwrap_or(0),
            len,
        },
        _ => bail!("say what to unseal: --piece N, --offset O --len L, or --padded"),
    };
    let doc = cli::read_document(args.doc.as_deref())?;
    let mut cpus = sealkit::affinity::ordered_cpus();
    cpus.truncate(threads);
    cli::write_output(args.out.as_deref(), |w| {
        unseal(&doc, request, &cpus, args.verbose, w)
    })?;
    Ok(())
}
