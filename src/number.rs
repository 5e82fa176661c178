//! Numbers written as Prometheus writes them. Owns the text form of a sample value wherever a
//! user reads one outside the exposition format: `count_values` labels, an alert's `$value`
//! handed to an action, an alert's value in JSON.
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
