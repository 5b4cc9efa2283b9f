//! AddPiece: fr32-pad piece data into the sector's unsealed file and record CommP / CommD.
//!
//! The unsealed file is the reference's layout: the fr32-padded bytes of every piece at its
//! aligned padded offset, zeros in between and after (left as holes where we can). The
//! document is the source of truth for what the file holds: a run appends after the recorded
//! pieces, and any error rolls the file back to where it was. A kill cannot roll back, so each
//! run first records where it started in a small journal (`journal`); the next run discards
//! bytes past the recorded pieces only when that journal proves seal-ap put them there.

mod journal;
mod layout;
mod unsealed;

pub use layout::SectorLayout;

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::merkle::zero::zero_root;
use crate::piece::cid::{commitment_to_cid, CommitmentKind};
use crate::piece::comm_d::{comm_d, PieceCommitment};
use crate::piece::commp::{commp_of_reader, PieceCommitted};
use crate::piece::size::check_padded_piece_size;
use crate::progress;
use crate::sector::document::{PieceRecord, SectorDoc};

/// One piece to add: a named byte source, with its length when known in advance.
pub struct PieceInput {
    pub name: String,
    pub reader: Box<dyn Read>,
    pub len: Option<u64>,
}

impl PieceInput {
    /// Opens a file, or stdin for `-`.
    pub fn open(path: &Path) -> Result<PieceInput> {
        if path == Path::new("-") {
            return Ok(PieceInput::stdin());
        }
        let f = File::open(path).with_context(|| format!("opening piece {}", path.display()))?;
        let meta = f
            .metadata()
            .with_context(|| format!("reading piece {}", path.display()))?;
        if meta.is_dir() {
            bail!("piece {} is a directory", path.display());
        }
        Ok(PieceInput {
            name: path.display().to_string(),
            len: meta.is_file().then_some(meta.len()),
            reader: Box::new(f),
        })
    }

    pub fn stdin() -> PieceInput {
        PieceInput {
            name: "stdin".into(),
            reader: Box::new(std::io::stdin()),
            len: None,
        }
    }
}

/// What to do in one AddPiece run.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddPieceOptions {
    /// Complete the sector with zero filler pieces and set `comm_d`.
    pub fill: bool,
    /// Padded size to give every piece of this run (a deal's piece size), instead of the
    /// smallest size that holds its payload.
    pub padded_size: Option<u64>,
}

/// Adds `inputs` (in order) to the sector and, with `fill`, completes it. Updates `doc`
/// only if everything succeeded; on error the unsealed file is as it was.
pub fn add_pieces(
    doc: &mut SectorDoc,
    inputs: Vec<PieceInput>,
    opts: AddPieceOptions,
) -> Result<()> {
    let proof = doc.seal_proof()?;
    let paths = doc.paths()?;
    let unsealed_path = doc.unsealed_path()?;
    let recorded = doc.pieces()?;
    let layout = SectorLayout::from_records(proof.sector_size(), &recorded)?;
    if let Some(p) = opts.padded_size {
        check_padded_piece_size(p).context("--piece-size")?;
    }

    if doc.get("comm_d").is_some() && layout.is_full() {
        if inputs.is_empty() {
            return Ok(()); // Already complete: re-running --fill changes nothing.
        }
        bail!("sector is already complete (comm_d is set); no space for more pieces");
    }
    if inputs.is_empty() && !opts.fill {
        bail!("nothing to do: give --piece FILE or --fill");
    }

    let journal = journal::Journal::for_sector(&unsealed_path, paths.cache.as_deref());
    let mut file = unsealed::UnsealedFile::open(&unsealed_path)?;
    file.recover(layout.end(), &journal)?;
    journal.begin(layout.end())?;

    let start = layout.end();
    let result = (|| -> Result<(Vec<PieceRecord>, SectorLayout)> {
        let mut layout = layout;
        let mut added = Vec::new();
        for input in inputs {
            added.extend(add_one(&mut file, &mut layout, input, opts.padded_size)?);
        }
        if opts.fill {
            added.extend(layout.fill_to_end());
        }
        file.finish(layout.end())?;
        Ok((added, layout))
    })();

    let (added, layout) = match result {
        Ok(r) => r,
        Err(e) => {
            file.rollback(start)
                .context("rolling the unsealed file back after an error")?;
            return Err(e);
        }
    };

    doc.append_pieces(&added);
    if layout.is_full() {
        let all: Vec<PieceCommitment> = recorded
            .iter()
            .chain(&added)
            .map(|r| PieceCommitment {
                padded_size: r.padded_size,
                comm_p: r.comm_p,
            })
            .collect();
        let d = comm_d(proof.sector_size(), &all)?;
        doc.set_hex("comm_d", &d);
        doc.set(
            "unsealed_cid",
            commitment_to_cid(CommitmentKind::Unsealed, &d),
        );
    }
    Ok(())
}

/// Streams one piece into the file at its aligned position; returns its alignment fillers
/// and the piece record.
fn add_one(
    file: &mut unsealed::UnsealedFile,
    layout: &mut SectorLayout,
    mut input: PieceInput,
    padded_size: Option<u64>,
) -> Result<Vec<PieceRecord>> {
    let bar = progress::bytes(input.len, &input.name);
    let tick = |n: u64| bar.inc(n);
    let name = input.name.clone();

    // With the length known (or a piece size given), place the piece before reading it.
    let planned = match (padded_size, input.len) {
        (Some(p), _) => Some(p),
        (None, Some(len)) => Some(
            crate::piece::size::padded_piece_size(len).with_context(|| format!("piece {name}"))?,
        ),
        (None, None) => None,
    };
    let write_at = match planned {
        Some(p) => layout.place(p).with_context(|| format!("piece {name}"))?,
        None => layout.end(),
    };
    let limit = planned.unwrap_or_else(|| layout.largest_piece_that_fits());
    if limit == 0 {
        bail!("piece {name}: the sector is full");
    }

    let committed: PieceCommitted = file
        .write_piece(write_at, &mut *input.reader, limit, planned, &tick)
        .with_context(|| format!("piece {name}"))?;
    bar.finish_and_clear();

    if let (Some(len), None) = (input.len, padded_size) {
        if committed.payload_size != len {
            bail!(
                "piece {name} changed size while it was read ({len} bytes expected, {} read)",
                committed.payload_size
            );
        }
    }

    let offset = layout
        .place(committed.padded_size)
        .with_context(|| format!("piece {name}"))?;
    if offset != write_at {
        // A stream of unknown length turned out to need alignment: move it into place.
        file.move_piece(write_at, offset, committed.padded_written)?;
    }
    let mut records = layout.fillers_before(offset);
    let rec = PieceRecord {
        comm_p: committed.comm_p,
        payload_size: committed.payload_size,
        padded_size: committed.padded_size,
        offset,
        filler: false,
    };
    layout.push(&rec)?;
    records.push(rec);
    Ok(records)
}

/// Standalone CommP of a stream, as `seal-ap --commp` prints it.
pub fn commp_json(input: PieceInput) -> Result<serde_json::Value> {
    let PieceInput {
        name,
        mut reader,
        len,
    } = input;
    let bar = progress::bytes(len, &name);
    let c =
        commp_of_reader(&mut *reader, &|n| bar.inc(n)).with_context(|| format!("piece {name}"))?;
    bar.finish_and_clear();
    Ok(serde_json::json!({
        "comm_p": crate::hex::encode(&c.comm_p),
        "piece_cid": commitment_to_cid(CommitmentKind::Unsealed, &c.comm_p),
        "payload_size": c.payload_size,
        "unpadded_size": c.unpadded_size,
        "padded_size": c.padded_size,
    }))
}

/// A filler record: a zero piece, whose CommP is known without hashing.
pub(crate) fn filler_record(offset: u64, padded_size: u64) -> PieceRecord {
    PieceRecord {
        comm_p: zero_root(padded_size),
        payload_size: 0,
        padded_size,
        offset,
        filler: true,
    }
}
