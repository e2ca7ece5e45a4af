//! Timestamps written as text (RFC 3339 and `YYYY-MM-DD HH:MM:SS`), the [`Zone`] that
//! turns naive wall-clock times into UTC (a fixed offset or an IANA zone with daylight saving),
//! and the wall clock now ([`now_ms`], [`now_seconds`]).

use std::fmt;

/// A text timestamp: its wall-clock time as ms since the epoch (as if it were UTC), and the
/// UTC offset it carried (`Z`, `+02:00`), if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextTime {
    /// The wall-clock time, read as UTC, in ms.
    pub local_ms: i64,
    /// The offset written with it (local minus UTC, ms); None for a naive time.
    pub offset_ms: Option<i64>,
}

impl TextTime {
    /// The instant in UTC ms: by its own offset, else by `zone`.
    pub fn to_utc(self, zone: &Zone) -> Option<i64> {
        match self.offset_ms {
            Some(off) => self.local_ms.checked_sub(off),
            None => zone.local_to_utc(self.local_ms),
        }
    }
}

fn digits(s: &str, n: usize) -> Option<i64> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Parses an offset suffix: `Z`, `+HH:MM`, `-HH:MM`, `+HHMM` or `+HH` (ms, local minus UTC).
fn parse_offset(s: &str) -> Option<i64> {
    if s.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = &s[1..];
    let (h, m) = match rest.len() {
        2 => (digits(rest, 2)?, 0),
        4 => (digits(&rest[..2], 2)?, digits(&rest[2..], 2)?),
        5 if rest.as_bytes()[2] == b':' => (digits(&rest[..2], 2)?, digits(&rest[3..], 2)?),
        _ => return None,
    };
    (h <= 23 && m <= 59).then_some(sign * (h * 3_600_000 + m * 60_000))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `YYYY-MM-DD[(T| )HH:MM[:SS[.f…]]][Z|±HH:MM]`: RFC 3339, and the same without a
/// zone (a naive wall-clock time). Fractions beyond milliseconds are truncated.
pub fn parse_text_time(s: &str) -> Option<TextTime> {
    let s = s.trim();
    if !s.is_ascii() || s.len() < 10 {
        return None;
    }
    let (date, rest) = s.split_at(10);
    let b = date.as_bytes();
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (
        digits(&date[..4], 4)?,
        digits(&date[5..7], 2)?,
        digits(&date[8..], 2)?,
    );
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let mut ms = days_from_civil(y, m, d) * 86_400_000;
    if rest.is_empty() {
        return Some(TextTime {
            local_ms: ms,
            offset_ms: None,
        });
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    // The time ends where the offset begins.
    let split = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(split);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut parts = hms.split(':');
    let h = digits(parts.next()?, 2)?;
    let mi = digits(parts.next()?, 2)?;
    let se = match parts.next() {
        Some(p) => digits(p, 2)?,
        None if frac.is_empty() => 0,
        None => return None,
    };
    if parts.next().is_some() || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    if time.contains('.') && (frac.is_empty() || !frac.bytes().all(|c| c.is_ascii_digit())) {
        return None;
    }
    let frac_ms = format!("{:0<3}", &frac[..frac.len().min(3)])
        .parse::<i64>()
        .ok()?;
    ms += (h * 3600 + mi * 60 + se) * 1000 + frac_ms;
    let offset_ms = if zone.is_empty() {
        None
    } else {
        Some(parse_offset(zone)?)
    };
    Some(TextTime {
        local_ms: ms,
        offset_ms,
    })
}

/// Parses a text timestamp as UTC ms: by its own offset when it has one, else as UTC.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    parse_text_time(s)?.to_utc(&Zone::UTC)
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

/// The wall clock now, in ms since the epoch (0 for a clock set before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The wall clock now, in seconds since the epoch (0 for a clock set before 1970).
pub fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Formats ms since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC; `.fff` when not a whole second).
pub fn format_timestamp(ms: i64) -> String {
    civil_text(ms, ' ', "")
}

/// `ms` as `YYYY-MM-DD{sep}hh:mm:ss[.fff]{zone}`, in UTC.
fn civil_text(ms: i64, sep: char, zone: &str) -> String {
    let (y, mo, d, h) = crate::stages::sink::parquet::civil(ms);
    let rem = ms.rem_euclid(3_600_000);
    let (mi, s, f) = (rem / 60_000, (rem / 1000) % 60, rem % 1000);
    if f == 0 {
        format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{zone}")
    } else {
        format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}.{f:03}{zone}")
    }
}

/// `ms` since the epoch as RFC 3339 in UTC: `2024-03-04T00:05:00Z`, with `.123` before the `Z`
/// when it has milliseconds (what `hyflow cat` prints for time columns).
pub fn format_rfc3339(ms: i64) -> String {
    civil_text(ms, 'T', "Z")
}

/// The time zone of naive times (`[source] time-zone`): UTC, a fixed offset, or an IANA zone
/// whose offset follows daylight saving.
#[derive(Clone)]
pub enum Zone {
    /// A fixed offset (local minus UTC, ms).
    Fixed(i64),
    /// An IANA zone from the tz database compiled into hyflow.
    Named(String, jiff::tz::TimeZone),
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Fixed(ms) => write!(f, "Fixed({ms} ms)"),
            Zone::Named(n, _) => write!(f, "Named({n})"),
        }
    }
}

impl Default for Zone {
    fn default() -> Self {
        Zone::UTC
    }
}

impl Zone {
    /// UTC.
    pub const UTC: Zone = Zone::Fixed(0);

    /// `UTC`, `Z`, a fixed offset (`+02:00`, `-0530`) or an IANA name (`Europe/Berlin`).
    pub fn parse(s: &str) -> Result<Zone, String> {
        if s.eq_ignore_ascii_case("utc") {
            return Ok(Zone::UTC);
        }
        if let Some(off) = parse_offset(s) {
            return Ok(Zone::Fixed(off));
        }
        if s.starts_with(['+', '-']) {
            return Err(format!(
                "unknown time zone {s:?}: a fixed offset is written \"+HH:MM\" (at most +23:59)"
            ));
        }
        jiff::tz::db()
            .get(s)
            .map(|tz| Zone::Named(s.to_string(), tz))
            .map_err(|_| format!("unknown time zone {s:?}"))
    }

    /// The UTC instant of a naive wall-clock time in this zone. A time that daylight saving
    /// skips is read with the offset before the gap, one it repeats as the earlier instant (the
    /// "compatible" rule of RFC 5545 and java.time). None when out of the calendar's range.
    pub fn local_to_utc(&self, local_ms: i64) -> Option<i64> {
        match self {
            Zone::Fixed(off) => local_ms.checked_sub(*off),
            Zone::Named(_, tz) => {
                let ts = jiff::Timestamp::from_millisecond(local_ms).ok()?;
                let dt = jiff::tz::Offset::UTC.to_datetime(ts);
                let utc = tz.to_ambiguous_timestamp(dt).compatible().ok()?;
                Some(utc.as_millisecond())
            }
        }
    }

    /// The wall-clock time (as ms, read as UTC) of a UTC instant in this zone.
    pub fn utc_to_local(&self, utc_ms: i64) -> i64 {
        match self {
            Zone::Fixed(off) => utc_ms.saturating_add(*off),
            Zone::Named(_, tz) => match jiff::Timestamp::from_millisecond(utc_ms) {
                Ok(ts) => utc_ms + i64::from(tz.to_offset(ts).seconds()) * 1000,
                Err(_) => utc_ms,
            },
        }
    }

    /// Parses a text timestamp as UTC ms: by its own offset when it has one, else in this zone.
    pub fn parse_text(&self, s: &str) -> Option<i64> {
        parse_text_time(s)?.to_utc(self)
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

    #[test]
    fn rfc3339_offsets_shift_to_utc_and_keep_seconds() {
        let utc = parse_timestamp("2024-05-06T06:00:07Z").unwrap();
        assert_eq!(parse_timestamp("2024-05-06T08:00:07+02:00"), Some(utc));
        assert_eq!(parse_timestamp("2024-05-06T08:00:07+0200"), Some(utc));
        assert_eq!(parse_timestamp("2024-05-06 01:30:07-04:30"), Some(utc));
        assert_eq!(parse_timestamp("2024-05-06t06:00:07z"), Some(utc));
        assert_eq!(
            parse_timestamp("2024-05-06T06:00:07.123456789Z"),
            Some(utc + 123)
        );
        assert_eq!(parse_timestamp("2024-05-06T06:00Z"), Some(utc - 7000));
        // An offset in a naive-zone pipeline still wins over the pipeline's zone.
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert_eq!(berlin.parse_text("2024-05-06T08:00:07+02:00"), Some(utc));
        assert_eq!(berlin.parse_text("2024-05-06T08:00:07"), Some(utc));
    }

    #[test]
    fn malformed_times_are_refused_not_shifted() {
        for bad in [
            "2024-05-06T08:00:07+25:00",
            "2024-05-06T08:00:07+02:0",
            "2024-05-06T08:00:07 +02:00",
            "2024-05-06T08:00:07.Z",
            "2024-05-06T08:00:07.12a",
            "2024-02-30T00:00:00Z",
            "2023-02-29",
            "2024-05-06T24:00:00",
            "2024-05-06T08",
            "2024-05-06X08:00:00",
            "22:-1:00",
            "+2024-05-06",
            "2024-05-06T08:00:07Zjunk",
            "２０２４-05-06",
        ] {
            assert_eq!(parse_text_time(bad), None, "{bad}");
        }
        assert!(parse_text_time("2024-02-29").is_some());
    }

    #[test]
    fn named_zones_follow_daylight_saving() {
        let z = Zone::parse("Europe/Berlin").unwrap();
        let naive = |s: &str| parse_text_time(s).unwrap().local_ms;
        // Winter: +01:00, summer: +02:00.
        assert_eq!(
            z.local_to_utc(naive("2024-01-15 12:00:00")),
            parse_timestamp("2024-01-15T11:00:00Z")
        );
        assert_eq!(
            z.local_to_utc(naive("2024-07-15 12:00:00")),
            parse_timestamp("2024-07-15T10:00:00Z")
        );
        // 2024-03-31 02:30 does not exist in Berlin: read with the offset before the gap.
        assert_eq!(
            z.local_to_utc(naive("2024-03-31 02:30:00")),
            parse_timestamp("2024-03-31T01:30:00Z")
        );
        // 2024-10-27 02:30 happens twice: the earlier instant.
        assert_eq!(
            z.local_to_utc(naive("2024-10-27 02:30:00")),
            parse_timestamp("2024-10-27T00:30:00Z")
        );
        let summer = parse_timestamp("2024-07-15T10:00:00Z").unwrap();
        assert_eq!(z.utc_to_local(summer), naive("2024-07-15 12:00:00"));
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert!(Zone::parse("+25:00").is_err());
        assert_eq!(
            Zone::parse("-05:30").unwrap().local_to_utc(0),
            Some(19_800_000)
        );
    }
}
