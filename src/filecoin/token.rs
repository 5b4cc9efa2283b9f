//! FIL amounts: the chain counts attoFIL (10^-18 FIL) as big integers; Lotus's JSON writes
//! them as decimal attoFIL strings, operators write FIL ("0.03").

use anyhow::{bail, ensure, Context, Result};

/// attoFIL in one FIL.
pub const ATTO_PER_FIL: u128 = 1_000_000_000_000_000_000;

/// `"0.03"` (FIL, at most 18 decimals, optionally followed by " FIL") to attoFIL.
pub fn parse_fil(text: &str) -> Result<u128> {
    let t = text.trim();
    let t = t.strip_suffix("FIL").map(str::trim_end).unwrap_or(t);
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    ensure!(
        !(whole.is_empty() && frac.is_empty())
            && whole.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit()),
        "{text:?} is not an amount of FIL (like \"0.03\")"
    );
    if frac.len() > 18 {
        bail!("{text:?} has more than 18 decimals (1 attoFIL is 0.000000000000000001 FIL)");
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .with_context(|| format!("{text:?} is too large"))?
    };
    let frac_atto: u128 = format!("{frac:0<18}").parse().unwrap_or(0);
    whole
        .checked_mul(ATTO_PER_FIL)
        .and_then(|w| w.checked_add(frac_atto))
        .with_context(|| format!("{text:?} is too large"))
}

/// A decimal attoFIL string as Lotus's JSON carries `BigInt`s (`"1000"`).
pub fn parse_atto(text: &str, what: &str) -> Result<u128> {
    ensure!(
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()),
        "{what}: {text:?} is not a non-negative attoFIL amount"
    );
    text.parse()
        .with_context(|| format!("{what}: {text:?} is too large"))
}

/// attoFIL as exact FIL text (`"0.03 FIL"`, `"2 FIL"`): every digit kept, none invented.
pub fn fil_text(atto: u128) -> String {
    let (whole, frac) = (atto / ATTO_PER_FIL, atto % ATTO_PER_FIL);
    if frac == 0 {
        return format!("{whole} FIL");
    }
    let frac = format!("{frac:018}");
    format!("{whole}.{} FIL", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fil_text_is_exact_attofil() {
        assert_eq!(parse_fil("0.03").unwrap(), 30_000_000_000_000_000);
        assert_eq!(parse_fil("1").unwrap(), ATTO_PER_FIL);
        assert_eq!(parse_fil("2.5 FIL").unwrap(), 2_500_000_000_000_000_000);
        assert_eq!(parse_fil(".000000000000000001").unwrap(), 1);
        for bad in ["", ".", "-1", "1e3", "0.0000000000000000001", "1.2.3", "x"] {
            assert!(parse_fil(bad).is_err(), "{bad:?}");
        }
        for (atto, text) in [
            (0, "0 FIL"),
            (1, "0.000000000000000001 FIL"),
            (30_000_000_000_000_000, "0.03 FIL"),
            (2_500_000_000_000_000_000, "2.5 FIL"),
            (u128::MAX, "340282366920938463463.374607431768211455 FIL"),
        ] {
            assert_eq!(fil_text(atto), text);
            assert_eq!(parse_fil(&fil_text(atto)).unwrap(), atto);
        }
        assert_eq!(parse_atto("1000", "v").unwrap(), 1000);
        assert!(parse_atto("-5", "v").is_err());
        assert!(parse_atto("", "v").is_err());
    }
}
