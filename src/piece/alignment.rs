//! Where pieces go inside a sector.
//!
//! A piece of padded size `P` must start at a multiple of `P` so that it is a whole subtree of
//! the sector's tree_d. The gap before it is filled with zero "filler" pieces, each itself an
//! aligned power of two, exactly the pieces Lotus's `fillersFromRem` would add. The reference's
//! `get_piece_alignment` computes the same gap in unpadded bytes (tested against it).

/// First offset at or after `end` (padded bytes) where a piece of `padded` bytes may start;
/// `None` if there is none below 2^64 (or `padded` is 0).
pub fn aligned_offset(end: u64, padded: u64) -> Option<u64> {
    end.checked_next_multiple_of(padded)
}

/// Zero filler pieces (padded sizes, ascending, each aligned) that cover `[from, to)`.
/// `to` must be reachable with aligned powers of two, which holds when `to` is a multiple of
/// the next piece's size or is the sector size.
pub fn fillers(from: u64, to: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut pos = from;
    while pos < to {
        let mut size = if pos == 0 {
            (to - pos).checked_next_power_of_two().unwrap_or(1 << 63)
        } else {
            1u64 << pos.trailing_zeros()
        };
        while pos.checked_add(size).is_none_or(|e| e > to) {
            size /= 2;
        }
        out.push(size);
        pos += size;
    }
    out
}

/// Unpadded left and right alignment the reference's `add_piece` writes around a piece of
/// `piece` unpadded bytes after `written` unpadded bytes (docs/sdr-porep.md#piece-alignment).
pub fn reference_alignment(written: u64, piece: u64) -> (u64, u64) {
    let mut needed = 127u64;
    while needed < piece {
        needed *= 2;
    }
    let left = match written % needed {
        0 => 0,
        r => needed - r,
    };
    (left, needed - piece)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_table() {
        // fp: tests/pieces.rs
        for ((w, p), want) in [
            ((0, 127), (0, 0)),
            ((127, 254), (127, 0)),
            ((127, 508), (381, 0)),
            ((100, 100), (27, 27)),
            ((300, 300), (208, 208)),
        ] {
            assert_eq!(reference_alignment(w, p), want, "written {w}, piece {p}");
        }
    }

    #[test]
    fn no_overflow_near_u64_max() {
        assert_eq!(aligned_offset(u64::MAX - 100, 128), None);
        assert_eq!(aligned_offset(1, 1 << 63), Some(1 << 63));
        assert_eq!(aligned_offset(5, 0), None);
        let want: Vec<u64> = (0..63).rev().map(|b| 1u64 << b).collect();
        assert_eq!(fillers(1 << 63, u64::MAX), want);
    }

    #[test]
    fn fillers_cover_gaps_aligned() {
        assert_eq!(fillers(128, 1024), vec![128, 256, 512]);
        assert_eq!(fillers(0, 2048), vec![2048]);
        assert_eq!(fillers(512, 512), Vec::<u64>::new());
        let mut pos = 384;
        for s in fillers(384, 4096) {
            assert_eq!(pos % s, 0);
            pos += s;
        }
        assert_eq!(pos, 4096);
    }
}
