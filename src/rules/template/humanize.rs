//! Prometheus's number and time formatting for templates: the `humanize*` family, `toTime`,
//! `toDuration` and `parseDuration`, with Go's exact output. Pure functions of their input.

use super::number::{format_float, format_g4};
use super::value::Value;

pub(super) fn humanize_value(name: &str, value: Value) -> Result<String, String> {
    let number = to_float(value)?;
    match name {
        "humanize" => Ok(humanize(number)),
        "humanize1024" => Ok(humanize_1024(number)),
        "humanizeDuration" => Ok(humanize_duration(number)),
        "humanizePercentage" => Ok(format!("{}%", format_g4(number * 100.0))),
        _ => humanize_timestamp(number),
    }
}

/// Prometheus's `convertToFloat`: numbers as they are, strings through `ParseFloat`.
pub(super) fn to_float(value: Value) -> Result<f64, String> {
    match value {
        Value::Float(number) => Ok(number),
        // Go converts int64 to float64 the same lossy way.
        Value::Int(number) => Ok(number as f64),
        Value::Str(text) => parse_float(&text),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

/// Go's `strconv.ParseFloat(text, 64)` for decimal input.
pub(super) fn parse_float(text: &str) -> Result<f64, String> {
    let parsed: f64 = text
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing {text:?}: invalid syntax"))?;
    if parsed.is_infinite() && !text.to_ascii_lowercase().contains("inf") {
        return Err(format!(
            "strconv.ParseFloat: parsing {text:?}: value out of range"
        ));
    }
    Ok(parsed)
}

pub(super) const SMALL_PREFIXES: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];

/// Prometheus's `humanize`: SI prefixes (`k` to `Y`, `m` to `y`) at Go's `%.4g`.
///
/// ```
/// use ipfs_sentinel::rules::template::humanize::humanize;
/// assert_eq!(humanize(1234567.0), "1.235M");
/// assert_eq!(humanize(0.0012), "1.2m");
/// assert_eq!(humanize(0.0), "0");
/// ```
pub fn humanize(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format_g4(value);
    }
    if value.abs() >= 1.0 {
        let prefixes = ["k", "M", "G", "T", "P", "E", "Z", "Y"];
        return scale_down(value, 1000.0, &prefixes);
    }
    scale_up(value, "")
}

/// Prometheus's `humanize1024`: binary prefixes (`ki` to `Yi`) at Go's `%.4g`.
///
/// ```
/// use ipfs_sentinel::rules::template::humanize::humanize_1024;
/// assert_eq!(humanize_1024(1048576.0), "1Mi");
/// assert_eq!(humanize_1024(0.5), "0.5");
/// ```
pub fn humanize_1024(value: f64) -> String {
    if value.abs() <= 1.0 || !value.is_finite() {
        return format_g4(value);
    }
    let prefixes = ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"];
    scale_down(value, 1024.0, &prefixes)
}

/// Divides by `base` while the value is at least `base`, naming the scale reached.
pub(super) fn scale_down(mut value: f64, base: f64, prefixes: &[&str]) -> String {
    let mut prefix = "";
    for candidate in prefixes {
        if value.abs() < base {
            break;
        }
        prefix = candidate;
        value /= base;
    }
    format!("{}{prefix}", format_g4(value))
}

/// Multiplies by 1000 while the value is below one, naming the sub-unit reached.
pub(super) fn scale_up(mut value: f64, unit: &str) -> String {
    let mut prefix = "";
    for candidate in SMALL_PREFIXES {
        if value.abs() >= 1.0 {
            break;
        }
        prefix = candidate;
        value *= 1000.0;
    }
    format!("{}{prefix}{unit}", format_g4(value))
}

/// Prometheus's `humanizeDuration`: seconds as days, hours, minutes and seconds, or in
/// sub-second units.
///
/// ```
/// use ipfs_sentinel::rules::template::humanize::humanize_duration;
/// assert_eq!(humanize_duration(90061.0), "1d 1h 1m 1s");
/// assert_eq!(humanize_duration(1.5), "1.5s");
/// assert_eq!(humanize_duration(0.002), "2ms");
/// ```
pub fn humanize_duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return format_g4(seconds);
    }
    if seconds == 0.0 {
        return format!("{}s", format_g4(seconds));
    }
    if seconds.abs() < 1.0 {
        return scale_up(seconds, "s");
    }
    let sign = if seconds < 0.0 { "-" } else { "" };
    let magnitude = seconds.abs();
    // Go's int64 conversion truncates toward zero, as this cast does.
    let whole = magnitude as i64;
    let (days, hours) = (whole / 86_400, whole / 3_600 % 24);
    let (minutes, secs) = (whole / 60 % 60, whole % 60);
    if days != 0 {
        format!("{sign}{days}d {hours}h {minutes}m {secs}s")
    } else if hours != 0 {
        format!("{sign}{hours}h {minutes}m {secs}s")
    } else if minutes != 0 {
        format!("{sign}{minutes}m {secs}s")
    } else {
        format!("{sign}{}s", format_g4(magnitude))
    }
}

/// Prometheus's `humanizeTimestamp`: Unix seconds to Go's `time.Time` text in UTC, at the
/// millisecond precision of Prometheus's `model.Time`; NaN and infinities print as numbers.
///
/// ```
/// use ipfs_sentinel::rules::template::humanize::humanize_timestamp;
/// assert_eq!(humanize_timestamp(1435065584.128).unwrap(), "2015-06-23 13:19:44.128 +0000 UTC");
/// assert_eq!(humanize_timestamp(f64::NAN).unwrap(), "NaN");
/// assert!(humanize_timestamp(1e10 * 1e10).is_err());
/// ```
pub fn humanize_timestamp(seconds: f64) -> Result<String, String> {
    if !seconds.is_finite() {
        return Ok(format_g4(seconds));
    }
    unix_millis(seconds).map(format_utc_millis)
}

/// Prometheus's `floatToTime`, behind `toTime`: Unix seconds to milliseconds since the
/// epoch, refusing NaN, infinities and times beyond int64 nanoseconds.
pub(super) fn to_time(seconds: f64) -> Result<i64, String> {
    if !seconds.is_finite() {
        return Err("value is NaN or Inf".to_owned());
    }
    unix_millis(seconds)
}

fn unix_millis(seconds: f64) -> Result<i64, String> {
    let nanos = seconds * 1e9;
    // i64::MIN and i64::MAX as f64 are ±2^63, the bounds Go compares against.
    let (low, high) = (i64::MIN as f64, i64::MAX as f64);
    if nanos > high || nanos < low {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            format_float(seconds)
        ));
    }
    // Truncating toward zero, as Go's int64 conversion and division do.
    Ok(nanos as i64 / 1_000_000)
}

/// `toDuration` (Prometheus 3.6+): seconds to a `time.Duration` in nanoseconds, truncated
/// toward zero as Go's conversion does (saturating where Go's is undefined).
pub(super) fn to_duration(seconds: f64) -> i64 {
    (seconds * 1e9) as i64
}

/// Go's `time.Duration.String`: `1h2m3.5s`, `1.5ms`, `0s`.
///
/// ```
/// use ipfs_sentinel::rules::template::humanize::format_go_duration;
/// assert_eq!(format_go_duration(0), "0s");
/// assert_eq!(format_go_duration(1_500_000), "1.5ms");
/// assert_eq!(format_go_duration(3_600_000_000_000), "1h0m0s");
/// assert_eq!(format_go_duration(-62_500_000_000), "-1m2.5s");
/// ```
pub fn format_go_duration(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let total = nanos.unsigned_abs();
    const SECOND: u64 = 1_000_000_000;
    if total == 0 {
        return "0s".to_owned();
    }
    if total < 1_000 {
        return format!("{sign}{total}ns");
    }
    if total < SECOND {
        let (unit, scale, width) = if total < 1_000_000 {
            ("µs", 1_000, 3)
        } else {
            ("ms", 1_000_000, 6)
        };
        let fraction = fraction_digits(total % scale, width);
        return format!("{sign}{}{fraction}{unit}", total / scale);
    }
    let seconds = total / SECOND;
    let fraction = fraction_digits(total % SECOND, 9);
    let (hours, minutes, secs) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (hours, seconds / 60) {
        (0, 0) => format!("{sign}{secs}{fraction}s"),
        (0, _) => format!("{sign}{minutes}m{secs}{fraction}s"),
        _ => format!("{sign}{hours}h{minutes}m{secs}{fraction}s"),
    }
}

/// `.ddd` for `value` as a `width`-digit fraction, trailing zeros dropped; empty for zero.
fn fraction_digits(value: u64, width: usize) -> String {
    if value == 0 {
        return String::new();
    }
    let digits = format!("{value:0width$}");
    format!(".{}", digits.trim_end_matches('0'))
}

/// Prometheus's `parseDuration`: a duration as rule files write it (`1h30m`, `500ms`, `0`),
/// units from largest to smallest, each at most once, as seconds.
///
/// ```
/// use ipfs_sentinel::rules::template::humanize::parse_duration_seconds;
/// assert_eq!(parse_duration_seconds("1h30m"), Ok(5400.0));
/// assert_eq!(parse_duration_seconds("250ms"), Ok(0.25));
/// assert!(parse_duration_seconds("1m1h").is_err());
/// ```
pub fn parse_duration_seconds(text: &str) -> Result<f64, String> {
    crate::clock::parse_duration(text)
        .map(|ms| ms as f64 / 1000.0)
        .map_err(|e| e.to_string())
}

/// Formats milliseconds since the epoch as Go prints a UTC `time.Time`.
pub(super) fn format_utc_millis(millis: i64) -> String {
    let (secs, milli) = (millis.div_euclid(1000), millis.rem_euclid(1000));
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let fraction = if milli == 0 {
        String::new()
    } else {
        format!(".{milli:03}").trim_end_matches('0').to_owned()
    };
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}{fraction} +0000 UTC",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60
    )
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Go's `time.Time.Format` for a UTC time (what `toTime` gives): the reference time
/// `Mon Jan 2 15:04:05 MST 2006` spelled the way the output should look.
///
/// ```
/// use ipfs_sentinel::rules::template::humanize::format_go_time;
/// let t = 1_435_065_584_128; // ms: 2015-06-23 13:19:44.128 UTC, a Tuesday
/// assert_eq!(format_go_time(t, "2006"), "2015");
/// assert_eq!(format_go_time(t, "Mon Jan _2 15:04:05.000 MST"), "Tue Jun 23 13:19:44.128 UTC");
/// assert_eq!(format_go_time(t, "2006-01-02T15:04:05Z07:00"), "2015-06-23T13:19:44Z");
/// assert_eq!(format_go_time(t, "3:04PM, 002, -0700"), "1:19PM, 174, +0000");
/// ```
pub fn format_go_time(millis: i64, layout: &str) -> String {
    let (secs, milli) = (millis.div_euclid(1000), millis.rem_euclid(1000));
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (day_secs / 3600, day_secs / 60 % 60, day_secs % 60);
    let month_name = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    let weekday = WEEKDAYS[usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0)];
    let year_day = days - days_from_civil(year, 1, 1) + 1;
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };
    let nanos = milli * 1_000_000;
    let mut out = String::new();
    let mut rest = layout;
    while let Some(c) = rest.chars().next() {
        // Go's nextStdChunk: the longest reference spelling at this point wins.
        let chunk: Option<(usize, String)> = [
            ("January", month_name.to_owned()),
            ("Jan", month_name[..3].to_owned()),
            ("Monday", weekday.to_owned()),
            ("Mon", weekday[..3].to_owned()),
            ("MST", "UTC".to_owned()),
            ("2006", format!("{year:04}")),
            ("002", format!("{year_day:03}")),
            ("01", format!("{month:02}")),
            ("02", format!("{day:02}")),
            ("03", format!("{hour12:02}")),
            ("04", format!("{minute:02}")),
            ("05", format!("{second:02}")),
            ("06", format!("{:02}", year.rem_euclid(100))),
            ("15", format!("{hour}")),
            ("1", format!("{month}")),
            ("__2", format!("{year_day:>3}")),
            ("_2", format!("{day:>2}")),
            ("2", format!("{day}")),
            ("3", format!("{hour12}")),
            ("4", format!("{minute}")),
            ("5", format!("{second}")),
            ("PM", if hour >= 12 { "PM" } else { "AM" }.to_owned()),
            ("pm", if hour >= 12 { "pm" } else { "am" }.to_owned()),
            ("-07:00:00", "+00:00:00".to_owned()),
            ("-070000", "+000000".to_owned()),
            ("-07:00", "+00:00".to_owned()),
            ("-0700", "+0000".to_owned()),
            ("-07", "+00".to_owned()),
            ("Z07:00:00", "Z".to_owned()),
            ("Z070000", "Z".to_owned()),
            ("Z07:00", "Z".to_owned()),
            ("Z0700", "Z".to_owned()),
            ("Z07", "Z".to_owned()),
        ]
        .into_iter()
        .find(|(spelling, _)| rest.starts_with(spelling))
        .map(|(spelling, text)| (spelling.len(), text))
        .or_else(|| fraction_chunk(rest, nanos));
        match chunk {
            Some((length, text)) => {
                out.push_str(&text);
                rest = &rest[length..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// `.000` (fixed digits) or `.999` (trailing zeros dropped) after a point or comma, when no
/// digit follows.
fn fraction_chunk(rest: &str, nanos: i64) -> Option<(usize, String)> {
    let mut chars = rest.chars();
    let separator = chars.next().filter(|c| matches!(c, '.' | ','))?;
    let digit = chars.next().filter(|c| matches!(c, '0' | '9'))?;
    let width = 1 + rest[2..].chars().take_while(|c| *c == digit).count();
    if rest[1 + width..].starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{nanos:09}");
    let digits = &digits[..width.min(9)];
    let text = if digit == '9' {
        let trimmed = digits.trim_end_matches('0');
        if trimmed.is_empty() {
            String::new()
        } else {
            format!("{separator}{trimmed}")
        }
    } else {
        format!("{separator}{digits}")
    };
    Some((1 + width, text))
}

/// A proleptic Gregorian (year, month, day) to days since 1970-01-01.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
pub(super) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    // Prometheus template_test.go "Humanize - float64" and "Humanize - int".
    #[test]
    fn humanize_values() {
        let text =
            "{{ humanize 0.0 }}:{{ humanize 1.0 }}:{{ humanize 1234567.0 }}:{{ humanize .12 }}";
        assert_eq!(run(text), "0:1:1.235M:120m");
        assert_eq!(
            run("{{ humanize -1 }}:{{ humanize 9223372036854775807 }}"),
            "-1:9.223E"
        );
        assert_eq!(run("{{ humanize 0.00012 }}"), "120u");
    }

    // Prometheus template_test.go "Humanize - string" and "Humanize - string with error".
    #[test]
    fn humanize_parses_strings() {
        assert_eq!(run("{{ humanize \"1234567.0\" }}"), "1.235M");
        let output = failure("{{ humanize \"one\" }}");
        assert!(
            output.contains(
                "error calling humanize: strconv.ParseFloat: parsing \"one\": invalid syntax"
            ),
            "{output}"
        );
        assert!(failure("{{ humanize true }}").contains("can't convert bool to float"));
    }

    // Prometheus template_test.go "Humanize1024 - float64" and "Humanize1024 - int".
    #[test]
    fn humanize_1024_values() {
        let text = "{{ humanize1024 0.0 }}:{{ humanize1024 1.0 }}:{{ humanize1024 1048576.0 }}:{{ humanize1024 .12 }}";
        assert_eq!(run(text), "0:1:1Mi:0.12");
        assert_eq!(
            run("{{ humanize1024 1234567 }}:{{ humanize1024 9223372036854775807 }}"),
            "1.177Mi:8Ei"
        );
    }

    // Prometheus template_test.go "HumanizeDuration - seconds - float64" and "- int".
    #[test]
    fn humanize_duration_seconds() {
        let text = "{{ humanizeDuration 0 }}:{{ humanizeDuration 1 }}:{{ humanizeDuration 60 }}:{{ humanizeDuration 3600 }}:{{ humanizeDuration 86400 }}:{{ humanizeDuration 90000 }}:{{ humanizeDuration -183845 }}:{{ humanizeDuration 899.99 }}";
        assert_eq!(
            run(text),
            "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s"
        );
        assert_eq!(
            run("{{ humanizeDuration 90061 }}:{{ humanizeDuration 1234567 }}"),
            "1d 1h 1m 1s:14d 6h 56m 7s"
        );
    }

    // Prometheus template_test.go "HumanizeDuration - subsecond and fractional seconds".
    #[test]
    fn humanize_duration_fractions() {
        let text = "{{ humanizeDuration .1 }}:{{ humanizeDuration .0001 }}:{{ humanizeDuration .12345 }}:{{ humanizeDuration 60.1 }}:{{ humanizeDuration 1.2345 }}:{{ humanizeDuration 12.345 }}:{{ humanizeDuration 0.25 }}";
        assert_eq!(run(text), "100ms:100us:123.5ms:1m 0s:1.234s:12.35s:250ms");
    }

    // Prometheus template_test.go "HumanizePercentage - model.SampleValue input - float64".
    #[test]
    fn humanize_percentage_values() {
        let text = "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}";
        assert_eq!(run(text), "-22.22%:0%:12.35%:123.5%");
        assert_eq!(
            run("{{ 0.8765 | humanizePercentage }}:{{ 1234567 | humanizePercentage }}"),
            "87.65%:1.235e+08%"
        );
    }

    // Prometheus template_test.go "HumanizeTimestamp - int" and "- model.SampleValue input".
    #[test]
    fn humanize_timestamp_values() {
        assert_eq!(
            run("{{ humanizeTimestamp 1435065584 }}"),
            "2015-06-23 13:19:44 +0000 UTC"
        );
        assert_eq!(
            run("{{ 1435065584.128 | humanizeTimestamp }}"),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(
            run("{{ humanizeTimestamp -1 }}:{{ humanizeTimestamp 9223372036 }}"),
            "1969-12-31 23:59:59 +0000 UTC:2262-04-11 23:47:16 +0000 UTC"
        );
    }

    // Prometheus template_test.go "HumanizeTimestamp - int with error".
    #[test]
    fn humanize_timestamp_overflow() {
        let output = failure("{{ humanizeTimestamp -9223372036854775807 }}");
        assert!(output.contains("error calling humanizeTimestamp: -9.223372036854776e+18 cannot be represented as a nanoseconds timestamp since it overflows int64"), "{output}");
    }

    // Prometheus template_test.go "Humanize* Inf and NaN - float64".
    #[test]
    fn humanize_infinities_and_nan() {
        let text = "{{ humanize $value }}:{{ humanize1024 $value }}:{{ humanizeDuration $value }}:{{ humanizeTimestamp $value }}";
        for (value, expected) in [
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(run_with_value(text, value), [expected; 4].join(":"));
        }
    }
}
