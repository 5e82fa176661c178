//! Numbers written as Prometheus writes them. Owns the text form of a sample value wherever a
//! user reads one outside the exposition format: `count_values` labels, an alert's `$value`
//! handed to an action, an alert's value in JSON, and a sample's value in the query API's answers.
//!
//! Prometheus formats these with Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the fewest
//! digits that read back to the same float, never in exponent form, and `+Inf`, `-Inf`, `NaN`.

/// A float as Prometheus writes it in labels and alert values: Go's
/// `FormatFloat(v, 'f', -1, 64)`.
///
/// ```
/// use ipfs_sentinel::number::format_value;
/// assert_eq!(format_value(0.1 + 0.2), "0.30000000000000004");
/// assert_eq!(format_value(2.0), "2");
/// assert_eq!(format_value(1e21), "1000000000000000000000");
/// assert_eq!(format_value(-2.5e-7), "-0.00000025");
/// assert_eq!(format_value(f64::INFINITY), "+Inf");
/// assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
/// assert_eq!(format_value(f64::NAN), "NaN");
/// ```
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        // Rust's `Display` for f64 is the shortest round-trip form without an exponent, as
        // Go's 'f' format with precision -1.
        format!("{v}")
    }
}

/// A sample value as Prometheus's HTTP API writes one (Go's `strconv.FormatFloat` with the
/// shortest digits: plain notation, but an exponent below 1e-6 and from 1e21 on).
///
/// ```
/// use ipfs_sentinel::number::api_value;
/// assert_eq!(api_value(0.25), "0.25");
/// assert_eq!(api_value(1e20), "100000000000000000000");
/// assert_eq!(api_value(1.5e21), "1.5e+21");
/// assert_eq!(api_value(-2e-7), "-2e-07");
/// assert_eq!(api_value(f64::NEG_INFINITY), "-Inf");
/// assert_eq!(api_value(1e-6), "0.000001");
/// assert_eq!(api_value(123456789.125), "123456789.125");
/// assert_eq!(api_value(-0.0), "-0");
/// ```
pub fn api_value(v: f64) -> String {
    let abs = v.abs();
    if !v.is_finite() {
        return format_value(v);
    }
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        return format!("{v}");
    }
    // Rust writes `1.5e21` and `2e-7`; Go writes `1.5e+21` and `2e-07`.
    let text = format!("{v:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}
