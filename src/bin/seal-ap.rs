//! seal-ap: AddPiece. See `man/seal-ap.1`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Parser;

use sealkit::addpiece::{add_pieces, commp_json, AddPieceOptions, PieceInput};
use sealkit::cli;
use sealkit::piece::size::parse_size;

#[derive(Parser)]
#[command(
    name = "seal-ap",
    version,
    about = "AddPiece: fr32-pad pieces into a sector's unsealed file and compute CommP / CommD",
    after_help = "\
Reads the sector document from DOC (or stdin when DOC is absent or '-'), appends each piece
at its aligned offset in paths.unsealed, and prints the document with the pieces (comm_p,
piece_cid, sizes, offset) added. When the sector is full (or --fill completes it) comm_d and
unsealed_cid are set too. Progress goes to stderr when it is a terminal; stdout carries only JSON.

With --update the pieces go to the document's snap-deal update instead: the \"update\" object's
paths.unsealed, pieces and comm_d (see seal-ru(1)); the sector's own fields stay as they are.

Examples:
  seal-ap job.json < piece.car | seal-pc1 | seal-pc2
  seal-ap job.json --piece deal1.car --piece deal2.car --fill > sector.json
  seal-ap job.json --piece - --fill < piece.car  # one deal, then complete the sector
  seal-ap cc.json --fill                       # committed-capacity sector, nothing hashed
  seal-ap --update proving.json --piece deal.car --fill | seal-ru   # a snap deal
  seal-ap --commp piece.car                    # CommP of a file, like boostx commp
  curl -s https://example/piece | seal-ap --commp -"
)]
struct Args {
    /// Sector document (JSON file, or '-' for stdin).
    doc: Option<PathBuf>,

    /// Piece file to add ('-' for stdin); repeatable, added in order. With neither --piece
    /// nor --fill the piece is read from stdin; with --fill, add '--piece -' for that.
    #[arg(long = "piece", value_name = "FILE")]
    pieces: Vec<PathBuf>,

    /// Complete the sector with zero filler pieces (no zero is hashed) and set comm_d.
    #[arg(long)]
    fill: bool,

    /// Padded piece size for the added pieces, e.g. 8MiB (a deal's piece size); default:
    /// the smallest size that holds the payload.
    #[arg(long, value_name = "SIZE")]
    piece_size: Option<String>,

    /// Add the pieces to the document's sector update (snap deal), not to the sector.
    #[arg(long)]
    update: bool,

    /// Print the CommP of FILE ('-' for stdin) and exit; no sector document is read.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["doc", "pieces", "fill", "piece_size", "update"])]
    commp: Option<PathBuf>,

    /// Worker threads (default: SEALKIT_THREADS, else every CPU this process may use).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    cli::run_main("seal-ap", || run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    cli::init_threads(args.threads)?;
    if let Some(path) = &args.commp {
        let v = commp_json(PieceInput::open(path)?)?;
        return cli::print_json_line(&v.to_string());
    }

    let mut pieces = args.pieces.clone();
    if pieces.is_empty() && !args.fill {
        pieces.push(PathBuf::from("-"));
    }
    let piece_from_stdin = pieces.iter().filter(|p| *p == &PathBuf::from("-")).count();
    if piece_from_stdin > 1 {
        bail!("only one piece can come from stdin");
    }
    if piece_from_stdin == 1 && cli::is_stdin(args.doc.as_deref()) {
        bail!("the sector document and the piece cannot both come from stdin: name the document file (seal-ap job.json < piece)");
    }

    let mut doc = cli::read_document(args.doc.as_deref())?;
    let inputs = pieces
        .iter()
        .map(|p| PieceInput::open(p))
        .collect::<Result<Vec<_>>>()?;
    let opts = AddPieceOptions {
        fill: args.fill,
        padded_size: args.piece_size.as_deref().map(parse_size).transpose()?,
    };
    if args.update {
        let mut update = doc.update_doc()?;
        add_pieces(&mut update, inputs, opts)?;
        doc.set_update_doc(&update);
    } else {
        add_pieces(&mut doc, inputs, opts)?;
    }
    cli::print_document(&doc)
}
