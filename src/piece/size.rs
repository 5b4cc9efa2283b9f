//! Piece sizes. A piece occupies a power-of-two number of padded bytes (at least 128); its
//! unpadded capacity is `padded * 127 / 128`. Payloads are zero-padded up to a valid size.

use anyhow::{ensure, Result};

/// The smallest piece: 127 unpadded bytes, 128 padded.
pub const MIN_PADDED_PIECE: u64 = 128;

/// Padded size of the smallest piece that holds `payload` bytes.
pub fn padded_piece_size(payload: u64) -> Result<u64> {
    ensure!(payload > 0, "piece is empty");
    let blocks = payload.div_ceil(127);
    Ok((blocks * 128).next_power_of_two().max(MIN_PADDED_PIECE))
}

/// Unpadded capacity of a piece of `padded` bytes.
pub fn unpadded_piece_size(padded: u64) -> u64 {
    padded / 128 * 127
}

/// Checks that `padded` is a valid padded piece size.
pub fn check_padded_piece_size(padded: u64) -> Result<()> {
    ensure!(
        padded >= MIN_PADDED_PIECE && padded.is_power_of_two(),
        "piece size {padded} is not a power of two of at least {MIN_PADDED_PIECE} padded bytes"
    );
    Ok(())
}

/// Parses a size such as `2048`, `2KiB`, `8MiB`, `32GiB` (binary units only, as sector and
/// piece sizes always are).
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    ensure!(!num.is_empty(), "size {s:?} does not start with a number");
    let n: u64 = num.parse()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "TiB" | "T" => 1 << 40,
        other => anyhow::bail!("size {s:?} has unknown unit {other:?} (use KiB, MiB, GiB)"),
    };
    n.checked_mul(mult)
        .ok_or_else(|| anyhow::anyhow!("size {s:?} is too large"))
}

/// Formats a power-of-two byte size the way sector sizes are named (`2KiB`, `32GiB`).
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_sizes() {
        assert_eq!(padded_piece_size(1).unwrap(), 128);
        assert_eq!(padded_piece_size(127).unwrap(), 128);
        assert_eq!(padded_piece_size(128).unwrap(), 256);
        assert_eq!(padded_piece_size(254).unwrap(), 256);
        assert_eq!(padded_piece_size(255).unwrap(), 512);
        assert_eq!(padded_piece_size(1 << 20).unwrap(), 2 << 20);
        assert!(padded_piece_size(0).is_err());
        assert_eq!(parse_size("32GiB").unwrap(), 32 << 30);
        assert_eq!(format_size(512 << 20), "512MiB");
    }
}
