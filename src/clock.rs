//! Time as the sentinel reads and writes it, one vocabulary everywhere: instants are
//! milliseconds since the Unix epoch (`i64`), durations are milliseconds too, read in
//! Prometheus's notation (`1h30m`, `500ms`, `2w`: units `y w d h m s ms`, each at most once,
//! largest first, as `model.ParseDuration` in Prometheus's common library reads them) and, where
//! Prometheus's HTTP API allows it, as float seconds; times are read as RFC 3339 with any offset
//! (`2026-11-28T14:00:00+02:00`) or float Unix seconds, and written as RFC 3339 in UTC with
//! milliseconds.
//!
//! Owns the parsing and formatting only; it never reads the clock itself except through
//! [`system_ms`], which converts a `SystemTime` the caller took. Rule files, the HTTP API, the
//! command line and the Alertmanager webhook receiver all read through here, so a duration or a
//! time means the same thing wherever a user writes it. RFC 3339 is read and written with the
//! `jiff` crate (offsets, fractional seconds, the years before 1970 of Go's zero time).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::Timestamp;

/// Go's zero time, which Prometheus and Alertmanager write for "no time" (an alert with no end,
/// a rule never evaluated).
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The longest duration Prometheus accepts: Go's `time.Duration` (int64 nanoseconds, about
/// 292 years), in ms.
const MAX_DURATION_MS: i64 = i64::MAX / 1_000_000;

/// A duration that cannot be read, with Prometheus's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was given.
    #[error("empty duration string")]
    Empty,
    /// Not in the notation: a unit that is not `y w d h m s ms`, units out of order or
    /// repeated (`1m1h`, `5m5m`), a fraction, a sign or a space.
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    /// Longer than Prometheus can hold (about 292 years).
    #[error("duration out of range")]
    OutOfRange,
}

/// A time that cannot be read, with the forms that can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Where only RFC 3339 is read (Alertmanager's payloads).
    #[error("cannot parse {0:?} to a valid timestamp: use RFC 3339 with an offset (2026-11-28T12:00:00Z, 2026-11-28T14:00:00+02:00)")]
    NotRfc3339(String),
    /// Where RFC 3339 and Unix seconds are read (the HTTP API, the command line).
    #[error("cannot parse {0:?} to a valid timestamp: use RFC 3339 (2026-11-28T12:00:00Z, 2026-11-28T14:00:00+02:00) or Unix seconds")]
    NotATime(String),
}

/// Reads a duration in Prometheus's notation; ms.
///
/// Units are `y` (365 days), `w`, `d`, `h`, `m`, `s` and `ms`, each given at most once and
/// from the largest to the smallest, with whole numbers; `0` alone needs no unit.
///
/// ```
/// use ipfs_sentinel::clock::{parse_duration, DurationError};
///
/// assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
/// assert_eq!(parse_duration("2w1d"), Ok(15 * 86_400_000));
/// assert_eq!(parse_duration("1s500ms"), Ok(1_500));
/// assert_eq!(parse_duration("0"), Ok(0));
/// // Prometheus refuses units out of order or repeated, and so does the sentinel.
/// assert_eq!(parse_duration("1m1h"), Err(DurationError::Invalid("1m1h".into())));
/// assert_eq!(
///     parse_duration("5m5m").unwrap_err().to_string(),
///     "not a valid duration string: \"5m5m\""
/// );
/// assert!(parse_duration("1.5h").is_err());
/// assert!(parse_duration("1 h").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    let invalid = || DurationError::Invalid(text.to_owned());
    match text {
        "" => return Err(DurationError::Empty),
        "0" => return Ok(0),
        _ => {}
    }
    // Units by rank, largest first; each must rank below the one before it.
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let mut total: i64 = 0;
    let mut next_rank = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let rank = UNITS
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or_else(invalid)?;
        if rank < next_rank {
            return Err(invalid());
        }
        next_rank = rank + 1;
        // A number too long for u64 is out of range, as in Prometheus.
        let n: i64 = number
            .parse::<u64>()
            .ok()
            .and_then(|n| i64::try_from(n).ok())
            .ok_or(DurationError::OutOfRange)?;
        total = n
            .checked_mul(UNITS[rank].1)
            .and_then(|ms| total.checked_add(ms))
            .filter(|ms| *ms <= MAX_DURATION_MS)
            .ok_or(DurationError::OutOfRange)?;
        rest = after;
    }
    Ok(total)
}

/// Reads a duration in Prometheus's notation as a [`Duration`], for the command line.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(ipfs_sentinel::clock::parse_std_duration("10s"), Ok(Duration::from_secs(10)));
/// assert!(ipfs_sentinel::clock::parse_std_duration("10 seconds").is_err());
/// ```
pub fn parse_std_duration(text: &str) -> Result<Duration, DurationError> {
    parse_duration(text).map(|ms| Duration::from_millis(ms.unsigned_abs()))
}

/// Reads a duration as Prometheus's HTTP API does (`step`, `timeout`): float seconds, or
/// Prometheus's notation; ms. A negative number of seconds is read, for the caller to refuse.
///
/// ```
/// use ipfs_sentinel::clock::parse_duration_or_seconds;
///
/// assert_eq!(parse_duration_or_seconds("15"), Ok(15_000));
/// assert_eq!(parse_duration_or_seconds("0.25"), Ok(250));
/// assert_eq!(parse_duration_or_seconds("1h30m"), Ok(5_400_000));
/// assert!(parse_duration_or_seconds("1m1h").is_err());
/// ```
pub fn parse_duration_or_seconds(text: &str) -> Result<i64, DurationError> {
    if let Ok(seconds) = text.parse::<f64>() {
        let ms = (seconds * 1000.0).round();
        return if ms.is_finite() && ms.abs() <= MAX_DURATION_MS as f64 {
            Ok(ms as i64)
        } else {
            Err(DurationError::OutOfRange)
        };
    }
    parse_duration(text)
}

/// Reads an RFC 3339 time with any offset (`Z`, `+02:00`, `-05:30`) and up to nanoseconds;
/// ms since the epoch, fractions of a millisecond dropped (as Prometheus's timestamps do).
///
/// ```
/// use ipfs_sentinel::clock::parse_rfc3339;
///
/// assert_eq!(parse_rfc3339("2026-11-28T12:00:00Z"), Ok(1_795_867_200_000));
/// assert_eq!(parse_rfc3339("2026-11-28T14:00:00+02:00"), Ok(1_795_867_200_000));
/// assert_eq!(parse_rfc3339("2026-11-28T12:00:00.250999-00:00"), Ok(1_795_867_200_250));
/// assert!(parse_rfc3339("2026-11-28T12:00:00").is_err(), "no offset: which zone?");
/// ```
pub fn parse_rfc3339(text: &str) -> Result<i64, TimeError> {
    text.parse::<Timestamp>()
        .map(Timestamp::as_millisecond)
        .map_err(|_| TimeError::NotRfc3339(text.to_owned()))
}

/// Reads a time as Prometheus's HTTP API does: float Unix seconds (rounded to the millisecond;
/// one beyond what ms since the epoch can hold is the farthest time, as Go's conversion makes
/// it) or RFC 3339 with any offset; ms since the epoch.
///
/// ```
/// use ipfs_sentinel::clock::parse_time;
///
/// assert_eq!(parse_time("1795867200.25"), Ok(1_795_867_200_250));
/// assert_eq!(parse_time("2026-11-28T13:00:00+01:00"), Ok(1_795_867_200_000));
/// assert!(parse_time("yesterday").is_err());
/// assert_eq!(parse_time("-1e300"), Ok(i64::MIN));
/// ```
pub fn parse_time(text: &str) -> Result<i64, TimeError> {
    if let Ok(seconds) = text.parse::<f64>() {
        return if seconds.is_finite() {
            // `as` saturates: -1e300 is the earliest time there is.
            Ok((seconds * 1000.0).round() as i64)
        } else {
            Err(TimeError::NotATime(text.to_owned()))
        };
    }
    parse_rfc3339(text).map_err(|_| TimeError::NotATime(text.to_owned()))
}

/// Milliseconds since the Unix epoch (0 for a time before it).
pub fn system_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis()
        .try_into()
        .unwrap_or(i64::MAX)
}

/// Formats ms since the epoch as RFC 3339 in UTC with milliseconds.
///
/// ```
/// assert_eq!(ipfs_sentinel::clock::rfc3339(1_795_867_200_250), "2026-11-28T12:00:00.250Z");
/// assert_eq!(ipfs_sentinel::clock::rfc3339(0), "1970-01-01T00:00:00.000Z");
/// ```
pub fn rfc3339(ms: i64) -> String {
    // Beyond the years -9999..=9999 RFC 3339 has no notation: the nearest end is written.
    let t = Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    });
    format!("{t:.3}")
}

/// Formats ms since the epoch as [`rfc3339`] does, and 0 or less (no time) as Go's zero time,
/// as Alertmanager's payloads write an alert with no end.
///
/// ```
/// use ipfs_sentinel::clock::rfc3339_or_zero;
/// assert_eq!(rfc3339_or_zero(0), "0001-01-01T00:00:00Z");
/// assert_eq!(rfc3339_or_zero(1_000), "1970-01-01T00:00:01.000Z");
/// ```
pub fn rfc3339_or_zero(ms: i64) -> String {
    if ms <= 0 {
        GO_ZERO_TIME.to_owned()
    } else {
        rfc3339(ms)
    }
}

/// A duration for people, rounded to the second: its days, hours, minutes and seconds, each
/// left out when zero (`1h 30m`, `2d 4h 5s`; `0s` for nothing).
///
/// ```
/// use ipfs_sentinel::clock::humane_duration;
/// assert_eq!(humane_duration(5_400_000), "1h 30m");
/// assert_eq!(humane_duration(2 * 86_400_000 + 4 * 3_600_000 + 5_400), "2d 4h 5s");
/// assert_eq!(humane_duration(400), "0s");
/// assert_eq!(humane_duration(-5_000), "0s");
/// ```
pub fn humane_duration(ms: i64) -> String {
    let mut seconds = (ms.max(0).saturating_add(500)) / 1000;
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if seconds >= size {
            parts.push(format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_prometheus_reads_them() {
        for (text, ms) in [
            ("0", 0),
            ("0s", 0),
            ("500ms", 500),
            ("90s", 90_000),
            ("1h30m", 5_400_000),
            ("1d", 86_400_000),
            ("2w", 14 * 86_400_000),
            ("1y", 365 * 86_400_000),
            (
                "1y2w3d4h5m6s7ms",
                31_536_000_000 + 1_209_600_000 + 259_200_000 + 14_706_007,
            ),
            ("010m", 600_000),
        ] {
            assert_eq!(parse_duration(text), Ok(ms), "{text}");
        }
        // As promtool 2.42 answers for each.
        for text in [
            "1m1h", "5m5m", "1ms1s", "5x", "1.5h", "-5m", "+5m", "1 h", " 5m", "5", "m", "5mm",
            "1hh", "5M", "1µs",
        ] {
            assert_eq!(
                parse_duration(text),
                Err(DurationError::Invalid(text.into())),
                "{text}"
            );
        }
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("300000y"), Err(DurationError::OutOfRange));
        assert_eq!(
            parse_duration("99999999999999999999999s"),
            Err(DurationError::OutOfRange)
        );
        assert_eq!(parse_duration("292y"), Ok(292 * 365 * 86_400_000));
    }

    #[test]
    fn api_durations_take_seconds_too() {
        assert_eq!(parse_duration_or_seconds("-60"), Ok(-60_000));
        assert_eq!(parse_duration_or_seconds("1e3"), Ok(1_000_000));
        assert_eq!(
            parse_duration_or_seconds("inf"),
            Err(DurationError::OutOfRange)
        );
        assert_eq!(
            parse_duration_or_seconds("5m5m"),
            Err(DurationError::Invalid("5m5m".into()))
        );
        assert!(parse_duration_or_seconds("1 hour").is_err());
    }

    #[test]
    fn times_with_offsets_and_go_zero() {
        let noon = 1_795_867_200_000;
        assert_eq!(parse_time("1795867200"), Ok(noon));
        assert_eq!(parse_time("2026-11-28T07:30:00-04:30"), Ok(noon));
        assert_eq!(parse_time("2026-11-28T12:00:00.123456789Z"), Ok(noon + 123));
        assert!(parse_time("NaN").is_err());
        assert!(parse_time("").is_err());
        assert!(parse_rfc3339(GO_ZERO_TIME).is_ok_and(|ms| ms < 0));
        assert_eq!(
            rfc3339(parse_rfc3339("1969-12-31T23:59:59Z").unwrap()),
            "1969-12-31T23:59:59.000Z"
        );
        assert!(rfc3339(i64::MAX).starts_with("9999-12-"));
        assert!(rfc3339(i64::MIN).starts_with("-009999-01-"));
        assert_eq!(rfc3339_or_zero(-1), GO_ZERO_TIME);
        assert!(parse_rfc3339("bogus")
            .unwrap_err()
            .to_string()
            .contains("\"bogus\""));
    }

    #[test]
    fn humane_durations() {
        assert_eq!(humane_duration(59_600), "1m");
        assert_eq!(humane_duration(86_400_000), "1d");
        assert_eq!(humane_duration(3_661_000), "1h 1m 1s");
    }
}
