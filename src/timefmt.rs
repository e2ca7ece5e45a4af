//! Calendar arithmetic for timestamps written as text (`2014-02-19 15:50:00`).

/// Parses `YYYY-MM-DD HH:MM:SS[.ffffff]` (or with `T`), as UTC, to ms since the epoch.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('Z');
    let (date, time) = s.split_once([' ', 'T']).unwrap_or((s, "00:00:00"));
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, dd) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next().flatten().unwrap_or(0));
    if !(1..=12).contains(&m)
        || !(1..=31).contains(&dd)
        || h > 23
        || mi > 59
        || se > 60
        || d.next().is_some()
    {
        return None;
    }
    let ms_frac = if frac.is_empty() {
        0
    } else if frac.bytes().all(|b| b.is_ascii_digit()) {
        format!("{:0<3}", &frac[..frac.len().min(3)])
            .parse::<i64>()
            .ok()?
    } else {
        return None;
    };
    Some((days_from_civil(y, m, dd) * 86_400 + h * 3600 + mi * 60 + se) * 1000 + ms_frac)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats ms since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC; `.fff` when not a whole second).
pub fn format_timestamp(ms: i64) -> String {
    let (y, mo, d, h) = crate::sink::parquet::civil(ms);
    let rem = ms.rem_euclid(3_600_000);
    let (mi, s, f) = (rem / 60_000, (rem / 1000) % 60, rem % 1000);
    if f == 0 {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{f:03}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:01"), Some(1000));
        assert_eq!(
            parse_timestamp("2014-02-19 15:50:00"),
            Some(1_392_825_000_000)
        );
        assert_eq!(
            parse_timestamp("2014-04-10T07:15:00.000000"),
            Some(1_397_114_100_000)
        );
        assert_eq!(parse_timestamp("2014-13-10 07:15:00"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(format_timestamp(1_392_825_000_000), "2014-02-19 15:50:00");
        assert_eq!(
            format_timestamp(1_392_825_000_250),
            "2014-02-19 15:50:00.250"
        );
    }
}
