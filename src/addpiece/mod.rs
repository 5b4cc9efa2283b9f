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
use crate::piece::commp::{commp_of_reader, PieceCommitted, PieceStreamer};
use crate::piece::size::check_padded_piece_size;
use crate::progress;
use crate::sector::document::{PieceRecord, SectorDoc, SectorPaths};
use crate::sector::lock::SectorLock;
use journal::LastRun;

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
    let _lock = paths
        .cache
        .as_deref()
        .map(SectorLock::acquire)
        .transpose()?;
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
    if let Some(added) = recover(&mut file, &unsealed_path, layout.end(), &journal, &paths)? {
        // A finished run already added this job's pieces: print its document again.
        check_same_job(inputs, opts, &added, proof.sector_size())?;
        return record(doc, proof.sector_size(), &recorded, &added);
    }
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
        journal.finish(start, layout.end(), &added)?;
        Ok((added, layout))
    })();

    let added = match result {
        Ok((added, _)) => added,
        Err(e) => {
            file.rollback(start)
                .context("rolling the unsealed file back after an error")?;
            return Err(e);
        }
    };
    record(doc, proof.sector_size(), &recorded, &added)
}

/// Adds `added` to the document after `recorded`, and comm_d / unsealed_cid once the sector
/// is full.
fn record(
    doc: &mut SectorDoc,
    sector_size: u64,
    recorded: &[PieceRecord],
    added: &[PieceRecord],
) -> Result<()> {
    doc.append_pieces(added);
    let end = recorded
        .iter()
        .chain(added)
        .map(|r| r.offset + r.padded_size)
        .max()
        .unwrap_or(0);
    if end == sector_size {
        let all: Vec<PieceCommitment> = recorded
            .iter()
            .chain(added)
            .map(|r| PieceCommitment {
                padded_size: r.padded_size,
                comm_p: r.comm_p,
            })
            .collect();
        let d = comm_d(sector_size, &all)?;
        doc.set_hex("comm_d", &d);
        doc.set(
            "unsealed_cid",
            commitment_to_cid(CommitmentKind::Unsealed, &d),
        );
    }
    Ok(())
}

/// Why the sector is known to have gone on past AddPiece (its replica or PC1/PC2 outputs
/// exist), if it has: then its unsealed file is sealed data and is never cut back.
fn progressed(paths: &SectorPaths) -> Option<String> {
    let mut found = Vec::new();
    if let Some(s) = &paths.sealed {
        found.push(s.clone());
    }
    if let Some(c) = &paths.cache {
        found.push(c.join(crate::pc1::JOURNAL_FILE));
        found.push(c.join(crate::pc2::P_AUX_FILE));
    }
    found
        .into_iter()
        .find(|p| std::fs::symlink_metadata(p).is_ok())
        .map(|p| p.display().to_string())
}

/// Brings the unsealed file to the document's end, or says that a finished run already
/// added pieces from exactly this document's state (returning them).
///
/// Bytes past the document's pieces are cut back only when the journal shows an unfinished
/// run began at the document's end and the sector has not gone on to PC1: the bytes of a
/// finished run (which may have been sealed since) are never discarded.
fn recover(
    file: &mut unsealed::UnsealedFile,
    path: &Path,
    end: u64,
    journal: &journal::Journal,
    paths: &SectorPaths,
) -> Result<Option<Vec<PieceRecord>>> {
    let len = file.len()?;
    if len == end {
        return Ok(None);
    }
    if len < end {
        bail!(
            "unsealed file {} has {len} bytes but the document's pieces end at {end}: it is truncated or belongs to another sector",
            path.display()
        );
    }
    match journal.last_run()? {
        Some(LastRun::Finished {
            start,
            end: done,
            added,
        }) if start == end && done == len => Ok(Some(added)),
        Some(LastRun::Finished { .. }) => bail!(
            "unsealed file {} has {len} bytes, more than the {end} the document's pieces cover, written by a finished seal-ap run for another state of the sector; refusing to touch them (use the document that run printed)",
            path.display()
        ),
        Some(LastRun::Started { start }) if start == end => {
            if let Some(what) = progressed(paths) {
                bail!(
                    "unsealed file {} has {len} bytes, more than the {end} the document's pieces cover, and the sector has gone on past AddPiece ({what} exists); refusing to discard its data (use the document seal-ap printed)",
                    path.display()
                );
            }
            file.discard_interrupted(end)?;
            Ok(None)
        }
        _ => bail!(
            "unsealed file {} has {len} bytes, more than the {end} its recorded pieces cover; refusing to overwrite them (if they are left over from an interrupted run, truncate the file to {end} bytes)",
            path.display()
        ),
    }
}

/// Checks that this run's job (its pieces and --fill) is the one a finished run did, which
/// added `added`: each piece's CommP and sizes are computed again (nothing is written).
fn check_same_job(
    inputs: Vec<PieceInput>,
    opts: AddPieceOptions,
    added: &[PieceRecord],
    sector_size: u64,
) -> Result<()> {
    let refuse = |why: String| -> Result<()> {
        bail!(
            "the sector's unsealed file already holds the pieces of a finished seal-ap run from this document, and {why}; refusing to rewrite it (use the document that run printed)"
        )
    };
    let pieces: Vec<&PieceRecord> = added.iter().filter(|r| !r.filler).collect();
    if pieces.len() != inputs.len() {
        return refuse(format!(
            "that run added {} pieces, this one gives {}",
            pieces.len(),
            inputs.len()
        ));
    }
    for (i, (mut input, rec)) in inputs.into_iter().zip(pieces).enumerate() {
        let mut s = PieceStreamer::new(None, rec.padded_size);
        let got = s
            .read_all(&mut *input.reader, &|_| {})
            .and_then(|_| s.finish(opts.padded_size));
        match got {
            Ok(c)
                if c.comm_p == rec.comm_p
                    && c.payload_size == rec.payload_size
                    && c.padded_size == rec.padded_size => {}
            _ => {
                return refuse(format!(
                    "piece {} ({}) is not piece {i} it recorded (CommP {})",
                    i + 1,
                    input.name,
                    crate::hex::encode(&rec.comm_p)
                ))
            }
        }
    }
    let end = added.last().map(|r| r.offset + r.padded_size).unwrap_or(0);
    let trailing_fillers = added.last().is_some_and(|r| r.filler);
    if opts.fill && end != sector_size {
        return refuse("that run did not complete the sector (no --fill)".into());
    }
    if !opts.fill && trailing_fillers {
        return refuse("that run completed the sector with --fill".into());
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
