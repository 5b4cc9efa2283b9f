//! Wall-clock times as people read them: RFC 3339 in UTC (`2026-12-01T22:30:01Z`), the one
//! format of the daemon's log, the phase logs and the listings, so lines from different
//! machines and time zones sort and compare as text.

/// `secs` since the Unix epoch as RFC 3339 UTC, to the second (truncated).
pub fn rfc3339(secs: f64) -> String {
    let t = if secs.is_finite() && secs > 0.0 {
        secs as i64
    } else {
        0
    };
    let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// [`rfc3339`] with microseconds (`2026-12-01T22:30:01.250000Z`), for logs whose lines
/// measure phases that take milliseconds.
pub fn rfc3339_micros(secs: f64) -> String {
    let whole = rfc3339(secs);
    let micros = if secs.is_finite() && secs > 0.0 {
        ((secs - secs.trunc()) * 1e6) as u32
    } else {
        0
    };
    format!("{}.{micros:06}Z", whole.trim_end_matches('Z'))
}

/// Now, as [`rfc3339`].
pub fn now() -> String {
    rfc3339(super::db::now())
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, exact for every day an i64 of seconds can name).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_seconds() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        // `date -u -d @1796164201 +%Y-%m-%dT%H:%M:%SZ`
        assert_eq!(rfc3339(1_796_164_201.75), "2026-12-01T22:30:01Z");
        assert_eq!(
            rfc3339_micros(1_796_164_201.25),
            "2026-12-01T22:30:01.250000Z"
        );
        // A leap day, and the day after the end of a century that is no leap year.
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_107_542_400.0), "2100-03-01T00:00:00Z");
    }
}
