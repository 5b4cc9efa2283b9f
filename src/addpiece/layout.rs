//! Where the next piece goes: the recorded pieces of a sector and the space after them.

use anyhow::{bail, ensure, Result};

use super::filler_record;
use crate::piece::alignment::{aligned_offset, fillers};
use crate::sector::document::PieceRecord;

/// The occupied prefix of a sector.
#[derive(Debug, Clone, Copy)]
pub struct SectorLayout {
    sector_size: u64,
    end: u64,
}

impl SectorLayout {
    /// Checks the recorded pieces (aligned, in order, not overlapping, inside the sector).
    pub fn from_records(sector_size: u64, records: &[PieceRecord]) -> Result<SectorLayout> {
        let mut layout = SectorLayout {
            sector_size,
            end: 0,
        };
        for (i, r) in records.iter().enumerate() {
            layout
                .push(r)
                .map_err(|e| anyhow::anyhow!("field \"pieces[{i}]\": {e}"))?;
        }
        Ok(layout)
    }

    /// Padded bytes in use.
    pub fn end(&self) -> u64 {
        self.end
    }

    pub fn is_full(&self) -> bool {
        self.end == self.sector_size
    }

    /// Records a piece at its offset, checking it.
    pub fn push(&mut self, r: &PieceRecord) -> Result<()> {
        ensure!(
            r.offset.is_multiple_of(r.padded_size),
            "offset {} is not a multiple of the piece size {}",
            r.offset,
            r.padded_size
        );
        ensure!(
            r.offset >= self.end,
            "offset {} overlaps the piece before it (which ends at {})",
            r.offset,
            self.end
        );
        let end = r
            .offset
            .checked_add(r.padded_size)
            .filter(|&e| e <= self.sector_size);
        let Some(end) = end else {
            bail!(
                "piece at {} of {} bytes runs past the end of the {}-byte sector",
                r.offset,
                r.padded_size,
                self.sector_size
            );
        };
        self.end = end;
        Ok(())
    }

    /// Where a piece of `padded` bytes would start; an error if it does not fit.
    pub fn place(&self, padded: u64) -> Result<u64> {
        let at = aligned_offset(self.end, padded);
        let fits = at
            .zip(Some(padded))
            .and_then(|(at, p)| at.checked_add(p))
            .is_some_and(|e| e <= self.sector_size);
        if !fits {
            bail!(
                "does not fit: it needs {padded} padded bytes, and the sector has {} of {} padded bytes left",
                self.sector_size.saturating_sub(self.end),
                self.sector_size
            );
        }
        Ok(at.expect("checked above"))
    }

    /// The largest padded piece that still fits after the recorded ones (0 if none).
    pub fn largest_piece_that_fits(&self) -> u64 {
        let mut p = self.sector_size;
        while p >= 128 {
            if aligned_offset(self.end, p)
                .and_then(|at| at.checked_add(p))
                .is_some_and(|e| e <= self.sector_size)
            {
                return p;
            }
            p /= 2;
        }
        0
    }

    /// Zero fillers from the current end up to `offset`, recorded in the layout.
    pub fn fillers_before(&mut self, offset: u64) -> Vec<PieceRecord> {
        let mut out = Vec::new();
        for size in fillers(self.end, offset) {
            let r = filler_record(self.end, size);
            self.end += size;
            out.push(r);
        }
        out
    }

    /// Zero fillers up to the end of the sector.
    pub fn fill_to_end(&mut self) -> Vec<PieceRecord> {
        self.fillers_before(self.sector_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(offset: u64, padded_size: u64) -> PieceRecord {
        PieceRecord {
            comm_p: [0; 32],
            payload_size: 1,
            padded_size,
            offset,
            filler: false,
        }
    }

    /// An offset near u64::MAX must not wrap around past the sector's end into "fits".
    #[test]
    fn huge_offsets_are_refused_not_wrapped() {
        let huge = u64::MAX - 127; // a multiple of 128
        let e = SectorLayout::from_records(2048, &[rec(huge, 128)]).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            format!("field \"pieces[0]\": piece at {huge} of 128 bytes runs past the end of the 2048-byte sector")
        );
        let top = 1u64 << 63;
        assert!(SectorLayout::from_records(2048, &[rec(top, top)]).is_err());
        let l = SectorLayout::from_records(2048, &[rec(0, 1024)]).unwrap();
        assert!(l.place(1 << 63).is_err());
        assert!(l.place(u64::MAX / 2 + 1).is_err());
        assert_eq!(l.place(1024).unwrap(), 1024);
        assert_eq!(l.largest_piece_that_fits(), 1024);
    }
}
