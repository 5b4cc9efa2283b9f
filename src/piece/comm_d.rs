//! CommD: the root of tree_d over a whole sector, computed from its pieces.
//!
//! Pieces (deal pieces and zero fillers) are aligned subtrees of tree_d, so CommD folds their
//! commitments with [`SubtreeStack`] and pads to the sector size with zero roots. This equals
//! the reference's `compute_comm_d` whenever the pieces fill the sector, and (unlike it) also
//! gives the true tree_d root when they do not.

use anyhow::{ensure, Result};

use crate::merkle::stack::SubtreeStack;
use crate::piece::size::check_padded_piece_size;

/// A piece as CommD sees it: its padded size and commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceCommitment {
    pub padded_size: u64,
    pub comm_p: [u8; 32],
}

/// CommD of a sector of `sector_size` padded bytes holding `pieces` in order.
pub fn comm_d(sector_size: u64, pieces: &[PieceCommitment]) -> Result<[u8; 32]> {
    let max_pieces = sector_size / 128;
    ensure!(
        pieces.len() as u64 <= max_pieces,
        "{} pieces is more than a {sector_size}-byte sector can hold ({max_pieces})",
        pieces.len()
    );
    let mut stack = SubtreeStack::new();
    for p in pieces {
        check_padded_piece_size(p.padded_size)?;
        stack.push(p.padded_size, p.comm_p)?;
        ensure!(
            stack.len() <= sector_size,
            "pieces need {} padded bytes with alignment, more than the sector's {sector_size}",
            stack.len()
        );
    }
    stack.finish(sector_size)
}
