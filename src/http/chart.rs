//! Line charts as inline SVG for the dashboard: axes with units, UTC time ticks, one polyline
//! per series, broken where the data has a gap, and no script or external resource, so a page
//! that holds them works offline and in a mail. A chart without data says so instead of
//! drawing a value axis.
//!
//! Owns layout, scales and number formatting only: a pure function of the series and the time
//! window it is given. It does not read the history or know what a metric means; every label
//! it writes is escaped here.

use std::fmt::Write;

/// Width of the drawing, in SVG user units (the page scales it to its box).
const WIDTH: f64 = 640.0;
/// Height of the drawing.
const HEIGHT: f64 = 200.0;
/// Room for the y-axis labels on the left.
const LEFT: f64 = 64.0;
/// Room on the right, so the last time label fits.
const RIGHT: f64 = 16.0;
/// Room above the plot.
const TOP: f64 = 10.0;
/// Room for the time labels below the plot.
const BOTTOM: f64 = 24.0;
/// Samples further apart than Prometheus's lookback do not belong to one line.
pub const GAP_MS: i64 = 5 * 60 * 1000;
/// What a chart without a single value shows in place of its plot.
pub const NO_DATA: &str = "no data yet";
/// Colours are assigned by CSS classes `s0` to `s7`, repeating.
pub const PALETTE: usize = 8;

/// What the values of a chart measure, and how they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A ratio 0-1, written as a percentage; the axis runs 0-100 %.
    Percent,
    /// Bytes, written with binary prefixes (KiB, MiB, ...).
    Bytes,
    /// Bytes per second.
    BytesPerSecond,
    /// A plain count, with k/M/G for thousands, millions, billions.
    Count,
}

/// One series of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The legend text (from outside: escaped when written).
    pub label: String,
    /// (ms since the Unix epoch, value), oldest first.
    pub points: Vec<(i64, f64)>,
}

/// A chart to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The title, for screen readers (the page shows it as a heading).
    pub title: String,
    /// The unit of every line's values.
    pub unit: Unit,
    /// The left edge of the time axis, ms.
    pub start_ms: i64,
    /// The right edge of the time axis, ms.
    pub end_ms: i64,
    /// The series.
    pub lines: Vec<Line>,
}

/// Writes `text` with `&`, `<`, `>`, quotes and the other characters HTML and XML treat
/// specially replaced by entities.
pub fn escape(text: &str) -> String {
    handlebars::html_escape(text)
}

/// A value as a person reads it: `42%`, `1.5 GiB`, `12 KiB/s`, `3.4k`; `—` for NaN.
pub fn format_value(unit: Unit, value: f64) -> String {
    if !value.is_finite() {
        return if value.is_nan() {
            "—".to_owned()
        } else {
            format!("{value}")
        };
    }
    match unit {
        Unit::Percent => format!("{}%", significant(value * 100.0)),
        Unit::Bytes => binary(value, ""),
        Unit::BytesPerSecond => binary(value, "/s"),
        Unit::Count => {
            let (scaled, prefix) = decimal_prefix(value);
            format!("{}{prefix}", significant(scaled))
        }
    }
}

/// At most three significant digits, no trailing zeros.
fn significant(v: f64) -> String {
    let decimals = match v.abs() {
        a if a >= 100.0 || a == 0.0 => 0,
        a if a >= 10.0 => 1,
        _ => 2,
    };
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

fn binary(v: f64, suffix: &str) -> String {
    const PREFIXES: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let (scaled, power) = binary_scale(v);
    format!("{} {}{suffix}", significant(scaled), PREFIXES[power])
}

/// `v` divided by the largest power of 1024 that keeps it at 1 or more, and that power.
fn binary_scale(v: f64) -> (f64, usize) {
    let mut scaled = v;
    let mut power = 0;
    while scaled.abs() >= 1024.0 && power < 6 {
        scaled /= 1024.0;
        power += 1;
    }
    (scaled, power)
}

fn decimal_prefix(v: f64) -> (f64, &'static str) {
    match v.abs() {
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    }
}

/// The smallest of 1, 2, 5 times a power of ten that splits `span` into at most `ticks` steps.
fn nice_step(span: f64, ticks: f64) -> f64 {
    let raw = (span / ticks).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// The value axis: (low, high, ticks).
fn value_axis(unit: Unit, lines: &[Line]) -> (f64, f64, Vec<f64>) {
    let finite = lines
        .iter()
        .flat_map(|l| &l.points)
        .map(|p| p.1)
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if unit == Unit::Percent && lo >= 0.0 && hi <= 1.0 {
        return (0.0, 1.0, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }
    // Bytes get steps that are round in their binary unit (256 MiB, not 268,435,456 B).
    let scale = match unit {
        Unit::Bytes | Unit::BytesPerSecond => 1024f64.powi(binary_scale(hi.max(-lo)).1 as i32),
        _ => 1.0,
    };
    // An empty or flat chart still gets an axis one unit tall.
    let hi = if hi > lo { hi } else { lo + scale };
    let span = (hi - lo) / scale;
    let mut step = nice_step(span, 4.0) * scale;
    if matches!(unit, Unit::Bytes | Unit::BytesPerSecond) {
        // No half bytes: a flat chart at 0 B reads 0 B, 1 B.
        step = step.max(1.0);
    }
    let low = (lo / step).floor() * step;
    let high = ((hi / step).ceil() * step).max(low + step);
    let count = ((high - low) / step).round() as usize;
    let ticks = (0..=count).map(|i| low + i as f64 * step).collect();
    (low, high, ticks)
}

/// Time steps a tick may take, in ms.
const TIME_STEPS: [i64; 16] = [
    1_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000,
    3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000,
];

/// Round UTC times between `start` and `end`, at most six of them, and the step between them.
fn time_ticks(start_ms: i64, end_ms: i64) -> (Vec<i64>, i64) {
    let span = (end_ms - start_ms).max(1);
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 6)
        .unwrap_or(86_400_000);
    let first = start_ms.div_euclid(step) * step + if start_ms % step == 0 { 0 } else { step };
    let ticks = (0..)
        .map(|i| first + i * step)
        .take_while(|t| *t <= end_ms)
        .collect();
    (ticks, step)
}

/// `HH:MM` (or `HH:MM:SS` when ticks are less than a minute apart), UTC.
fn clock(ms: i64, with_seconds: bool) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    if with_seconds {
        format!("{h:02}:{m:02}:{sec:02}")
    } else {
        format!("{h:02}:{m:02}")
    }
}

/// Splits points into runs without gaps longer than [`GAP_MS`] or non-finite values.
fn runs(points: &[(i64, f64)]) -> Vec<&[(i64, f64)]> {
    let mut out = Vec::new();
    let mut from = 0;
    for i in 0..=points.len() {
        let breaks = i == points.len()
            || !points[i].1.is_finite()
            || (i > from && points[i].0 - points[i - 1].0 > GAP_MS);
        if breaks {
            if i > from {
                out.push(&points[from..i]);
            }
            from = if i < points.len() && !points[i].1.is_finite() {
                i + 1
            } else {
                i
            };
        }
    }
    out
}

/// The chart as an `<svg>` element. Each series is a `<g class="series sN">` with its label in
/// `data-label` and its points as `ms:value` pairs in `data-points`, for scripts and tests;
/// what is drawn from them is one `<polyline>` per run without gaps (a `<circle>` for a run of
/// one point).
pub fn svg(chart: &Chart) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let (t0, t1) = (chart.start_ms, chart.end_ms.max(chart.start_ms + 1));
    let (lo, hi, value_ticks) = value_axis(chart.unit, &chart.lines);
    let x = |t: i64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * plot_w;
    let y = |v: f64| TOP + (1.0 - (v - lo) / (hi - lo)) * plot_h;
    let title = escape(&chart.title);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{title}"><title>{title}</title>"#
    );
    let has_data = chart
        .lines
        .iter()
        .flat_map(|l| &l.points)
        .any(|p| p.1.is_finite());
    out.push_str(r#"<g class="grid">"#);
    // Without data there is no value to scale: no value axis, and a note instead.
    for v in value_ticks.iter().filter(|_| has_data) {
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" x2="{:.1}" y1="{yv:.1}" y2="{yv:.1}"/><text class="y-label" x="{:.1}" y="{yv:.1}">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            escape(&format_value(chart.unit, *v)),
            yv = y(*v),
        );
    }
    let (times, step) = time_ticks(t0, t1);
    for t in times {
        let _ = write!(
            out,
            r#"<line x1="{xt:.1}" x2="{xt:.1}" y1="{TOP}" y2="{:.1}"/><text class="x-label" x="{xt:.1}" y="{:.1}">{}</text>"#,
            TOP + plot_h,
            HEIGHT - 6.0,
            clock(t, step < 60_000),
            xt = x(t),
        );
    }
    let _ = write!(
        out,
        r#"</g><text class="x-unit" x="{:.1}" y="{:.1}">UTC</text>"#,
        LEFT - 6.0,
        HEIGHT - 6.0
    );
    if !has_data {
        let _ = write!(
            out,
            r#"<text class="no-data" x="{:.1}" y="{:.1}" text-anchor="middle">{NO_DATA}</text>"#,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    }
    for (i, line) in chart.lines.iter().enumerate() {
        let data: Vec<String> = line
            .points
            .iter()
            .map(|(t, v)| format!("{t}:{v}"))
            .collect();
        let _ = write!(
            out,
            r#"<g class="series s{}" data-label="{}" data-points="{}"><title>{}</title>"#,
            i % PALETTE,
            escape(&line.label),
            data.join(" "),
            escape(&line.label),
        );
        for run in runs(&line.points) {
            if let [(t, v)] = run {
                let _ = write!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2"/>"#,
                    x(*t),
                    y(*v)
                );
            } else {
                let coords: Vec<String> = run
                    .iter()
                    .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                    .collect();
                let _ = write!(out, r#"<polyline points="{}"/>"#, coords.join(" "));
            }
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(unit: Unit, lines: Vec<Line>) -> Chart {
        Chart {
            title: "CPU <busy>".into(),
            unit,
            start_ms: 0,
            end_ms: 3_600_000,
            lines,
        }
    }

    fn attr<'a>(svg: &'a str, name: &str) -> Vec<&'a str> {
        svg.split(&format!(" {name}=\""))
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect()
    }

    #[test]
    fn values_read_as_people_write_them() {
        assert_eq!(format_value(Unit::Percent, 0.4213), "42.1%");
        assert_eq!(format_value(Unit::Percent, 1.0), "100%");
        assert_eq!(format_value(Unit::Bytes, 1536.0), "1.5 KiB");
        assert_eq!(format_value(Unit::Bytes, 5_317_623_808.0), "4.95 GiB");
        assert_eq!(format_value(Unit::Bytes, 0.0), "0 B");
        assert_eq!(format_value(Unit::BytesPerSecond, 52_741.4), "51.5 KiB/s");
        assert_eq!(format_value(Unit::Count, 212.0), "212");
        assert_eq!(format_value(Unit::Count, 3400.0), "3.4k");
        assert_eq!(format_value(Unit::Count, f64::NAN), "—");
    }

    #[test]
    fn every_point_is_drawn_where_its_time_and_value_put_it() {
        let points = vec![(0, 0.0), (150_000, 0.5), (300_000, 1.0)];
        let svg = svg(&Chart {
            end_ms: 300_000,
            ..chart(
                Unit::Percent,
                vec![Line {
                    label: "a".into(),
                    points,
                }],
            )
        });
        // Left edge at 0 %, middle at 50 %, right edge at 100 %.
        let plot_h = HEIGHT - TOP - BOTTOM;
        let expected = format!(
            "{LEFT:.1},{:.1} {:.1},{:.1} {:.1},{TOP:.1}",
            TOP + plot_h,
            LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
            TOP + plot_h / 2.0,
            WIDTH - RIGHT
        );
        assert_eq!(attr(&svg, "points"), vec![expected.as_str()], "{svg}");
        assert_eq!(attr(&svg, "data-points"), vec!["0:0 150000:0.5 300000:1"]);
        // Axes with units: 0-100 % and round UTC times.
        for label in ["0%", "25%", "50%", "100%", "00:00", "00:01", "00:05", "UTC"] {
            assert!(
                svg.contains(&format!(">{label}</text>")),
                "{label} in {svg}"
            );
        }
    }

    #[test]
    fn a_gap_longer_than_the_lookback_breaks_the_line_and_nan_is_not_drawn() {
        let points = vec![
            (0, 1.0),
            (60_000, 2.0),
            (60_000 + GAP_MS + 1, 3.0),
            (60_000 + GAP_MS + 60_001, f64::NAN),
            (60_000 + GAP_MS + 120_001, 4.0),
            (60_000 + GAP_MS + 180_001, 5.0),
        ];
        let svg = svg(&chart(
            Unit::Count,
            vec![Line {
                label: "peers".into(),
                points,
            }],
        ));
        assert_eq!(attr(&svg, "points").len(), 2, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
    }

    #[test]
    fn labels_from_outside_are_escaped() {
        let svg = svg(&chart(
            Unit::Count,
            vec![Line {
                label: "<script>alert(1)</script>\"".into(),
                points: vec![(0, 1.0)],
            }],
        ));
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;"));
        assert!(svg.contains("CPU &lt;busy&gt;"));
    }

    #[test]
    fn byte_axes_step_in_round_binary_units() {
        let gib = 1024.0 * 1024.0 * 1024.0;
        let (lo, hi, ticks) = value_axis(
            Unit::Bytes,
            &[Line {
                label: "repo".into(),
                points: vec![(0, 0.3 * gib), (1, 3.7 * gib)],
            }],
        );
        assert_eq!((lo, hi), (0.0, 4.0 * gib));
        let labels: Vec<String> = ticks
            .iter()
            .map(|t| format_value(Unit::Bytes, *t))
            .collect();
        assert_eq!(labels, ["0 B", "1 GiB", "2 GiB", "3 GiB", "4 GiB"]);
        // An empty chart still has an axis.
        let (lo, hi, ticks) = value_axis(Unit::Count, &[]);
        assert_eq!((lo, hi, ticks.len()), (0.0, 1.0, 3));
    }

    #[test]
    fn an_empty_chart_says_so_instead_of_drawing_a_value_axis() {
        for lines in [
            vec![],
            vec![Line {
                label: "repo".into(),
                points: vec![],
            }],
            vec![Line {
                label: "repo".into(),
                points: vec![(0, f64::NAN)],
            }],
        ] {
            let svg = svg(&chart(Unit::Bytes, lines));
            assert!(svg.contains(">no data yet</text>"), "{svg}");
            assert!(!svg.contains("class=\"y-label\""), "no value axis: {svg}");
            assert!(!svg.contains(" B<"), "no unit-less byte ticks: {svg}");
            assert!(svg.contains(">UTC</text>"), "the time axis stays: {svg}");
        }
        let with_data = svg(&chart(
            Unit::Bytes,
            vec![Line {
                label: "repo".into(),
                points: vec![(0, 0.0), (60_000, 0.0)],
            }],
        ));
        assert!(!with_data.contains(NO_DATA), "{with_data}");
        assert!(
            !with_data.contains("0.5 B"),
            "a flat chart at 0 B has whole bytes: {with_data}"
        );
        assert!(with_data.contains(">0 B</text>"), "{with_data}");
    }

    #[test]
    fn time_ticks_are_round_and_inside_the_window() {
        let (ticks, step) = time_ticks(90_000, 90_000 + 6 * 3_600_000);
        assert_eq!(step, 3_600_000);
        assert_eq!(ticks.first(), Some(&3_600_000));
        assert!(ticks.iter().all(|t| t % step == 0));
        let (ticks, step) = time_ticks(1_000, 21_000);
        assert_eq!(ticks, [5_000, 10_000, 15_000, 20_000]);
        assert_eq!(step, 5_000);
        assert_eq!(clock(3_661_000, true), "01:01:01");
    }
}
