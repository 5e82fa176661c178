//! Go's float formatting as `fmt` does it: `%v` (shortest round-trip digits) and `%g` with a
//! precision, with Go's choice between fixed and exponent form.

/// Go's `%v` for a float64: the shortest digits that read back to the same number, in
/// exponent form when the exponent is 6 or more, or below -4.
///
/// ```
/// use ipfs_sentinel::rules::template::number::format_float;
/// assert_eq!(format_float(95.0), "95");
/// assert_eq!(format_float(0.1 + 0.2), "0.30000000000000004");
/// assert_eq!(format_float(123456.0), "123456");
/// assert_eq!(format_float(1234567.0), "1.234567e+06");
/// assert_eq!(format_float(0.00001), "1e-05");
/// assert_eq!(format_float(f64::INFINITY), "+Inf");
/// ```
pub fn format_float(value: f64) -> String {
    format_g(value, None)
}

/// Go's `%.4g`, the format of the humanize family.
pub(super) fn format_g4(value: f64) -> String {
    format_g(value, Some(4))
}

/// Go's `%g` (shortest digits when `precision` is None), sign included.
///
/// ```
/// use ipfs_sentinel::rules::template::number::format_g;
/// assert_eq!(format_g(1234567.0, Some(4)), "1.235e+06");
/// assert_eq!(format_g(-0.5, Some(4)), "-0.5");
/// ```
pub fn format_g(value: f64, precision: Option<usize>) -> String {
    if let Some(special) = special_float(value) {
        return special;
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    format!("{sign}{}", format_g_magnitude(value.abs(), precision))
}

pub(super) fn special_float(value: f64) -> Option<String> {
    if value.is_nan() {
        Some("NaN".to_owned())
    } else if value.is_infinite() {
        Some(if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned())
    } else {
        None
    }
}

/// Decimal digits of a finite, non-negative value (trailing zeros dropped) and the position
/// of the decimal point, rounded to `significant` digits or shortest round-trip when None.
pub(super) fn decimal_digits(magnitude: f64, significant: Option<usize>) -> (Vec<u8>, i32) {
    if magnitude == 0.0 {
        return (Vec::new(), 0);
    }
    let text = match significant {
        Some(digits) => format!("{:.*e}", digits.saturating_sub(1), magnitude),
        None => format!("{magnitude:e}"),
    };
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    (digits, exponent + 1)
}

pub(super) fn digit_count(digits: &[u8]) -> i32 {
    i32::try_from(digits.len()).unwrap_or(i32::MAX)
}

pub(super) fn format_g_magnitude(magnitude: f64, precision: Option<usize>) -> String {
    let precision = precision.map(|p| p.max(1));
    let (digits, point) = decimal_digits(magnitude, precision);
    let count = digit_count(&digits);
    let (precision, exponent_limit) = match precision {
        None => (count, 6),
        Some(p) => {
            let p = i32::try_from(p).unwrap_or(i32::MAX);
            let limit = if p > count && count >= point {
                count
            } else {
                p
            };
            (p, limit)
        }
    };
    let exponent = point - 1;
    if exponent < -4 || exponent >= exponent_limit {
        return exponent_form(&digits, point, (precision.min(count) - 1).max(0));
    }
    let precision = if precision > point { count } else { precision };
    fixed_form(&digits, point, (precision - point).max(0))
}

pub(super) fn digit_at(digits: &[u8], position: i32) -> char {
    usize::try_from(position)
        .ok()
        .and_then(|position| digits.get(position))
        .map_or('0', |digit| char::from(*digit))
}

/// `d.ddde±XX` with `decimals` digits after the point.
pub(super) fn exponent_form(digits: &[u8], point: i32, decimals: i32) -> String {
    let mut text = String::from(digit_at(digits, 0));
    if decimals > 0 {
        text.push('.');
        (1..=decimals).for_each(|position| text.push(digit_at(digits, position)));
    }
    let exponent = if digits.is_empty() { 0 } else { point - 1 };
    let sign = if exponent < 0 { '-' } else { '+' };
    text.push_str(&format!("e{sign}{:02}", exponent.abs()));
    text
}

/// `ddd.ddd` with `decimals` digits after the point.
pub(super) fn fixed_form(digits: &[u8], point: i32, decimals: i32) -> String {
    let mut text = String::new();
    if point > 0 {
        (0..point).for_each(|position| text.push(digit_at(digits, position)));
    } else {
        text.push('0');
    }
    if decimals > 0 {
        text.push('.');
        (0..decimals).for_each(|offset| text.push(digit_at(digits, point + offset)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    // Go fmt %v for float64 (strconv 'g', shortest, %e from exponent 6 or below -4); the
    // Prometheus test "HumanizeTimestamp - uint with error" shows 1.8446744073709552e+19.
    #[test]
    fn floats_print_like_go_v() {
        let cases = [
            (95.0, "95"),
            (0.5, "0.5"),
            (1e21, "1e+21"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123_456.0, "123456"),
            (1_234_567.0, "1.234567e+06"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (-2.5, "-2.5"),
        ];
        for (value, expected) in cases {
            assert_eq!(run_with_value("{{ $value }}", value), expected, "{value}");
        }
    }
}
