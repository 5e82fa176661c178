//! The sentinel's two sides of the four-way rules benchmark (`bench/rules-four-ways.sh`):
//! the local engine over a history holding the workload's samples, and the same engine with a
//! remote Prometheus-compatible datasource (VictoriaMetrics holding the same samples).
//!
//! Reads `SAMPLES` (a text page with millisecond timestamps, `name{labels} value ms`, the same
//! file VictoriaMetrics imports), loads `RULES` as the sentinel loads rule files (2.42
//! semantics), and evaluates every group at `FIRST_EVAL_MS` and then every 15 s for `ROUNDS`
//! rounds (default 8). With `DATASOURCE_URL` the expressions go to that API, eight at a time, as
//! `serve` sends them; without it the history answers them. Prints one line of figures (per
//! round: wall time, the sum of the groups' durations, CPU seconds; the peak RSS over the rounds,
//! reset once the samples are loaded; alerts) and writes
//! the answer, one `{"rule", "labels", "state"}` JSON object a line, to `ANSWER_OUT`. `ALSO_PIDS`
//! (comma-separated) adds those processes' CPU over the rounds (the datasource's work).
//! `ROUNDS_ONLY=1` stops after the rounds with CPU and peak RSS only, for a heap profiler.

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipfs_sentinel::history::{History, SeriesKey};
use ipfs_sentinel::model::Semantics;
use ipfs_sentinel::rules::alerting::AlertState;
use ipfs_sentinel::rules::load::load_file;
use ipfs_sentinel::rules::manager::{Answers, Globals, RuleEngine};
use ipfs_sentinel::rules::remote::RemoteDatasource;

const STEP_MS: i64 = 15_000;

/// `name{a="b",c="d"} value ms` into its key, value and time.
fn parse_line(line: &str) -> Option<(SeriesKey, f64, i64)> {
    let (rest, at) = line.rsplit_once(' ')?;
    let (series, value) = rest.rsplit_once(' ')?;
    let (name, labels) = series.split_once('{')?;
    let mut labels: Vec<(String, String)> = labels
        .trim_end_matches('}')
        .split("\",")
        .filter_map(|p| {
            let (k, v) = p.split_once("=\"")?;
            Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
        })
        .collect();
    labels.sort();
    // Exactly as long as it is, as the keys `serve` makes (clones of a sample's labels) are:
    // the history keeps the first key of each series through the rounds.
    labels.shrink_to_fit();
    Some((
        SeriesKey {
            name: name.to_owned(),
            labels,
        },
        value.parse().ok()?,
        at.parse().ok()?,
    ))
}

/// utime + stime of a process, in seconds (clock ticks of 1/100 s).
fn cpu_seconds(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let fields: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            let u: f64 = fields.get(11)?.parse().ok()?;
            let k: f64 = fields.get(12)?.parse().ok()?;
            Some((u + k) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// A field of /proc/self/status (`VmHWM:`, `VmRSS:`), in kB.
fn status_kb(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn main() {
    let (Some(samples), Some(rules), Some(first)) =
        (env("SAMPLES"), env("RULES"), env("FIRST_EVAL_MS"))
    else {
        println!(
            "set SAMPLES, RULES and FIRST_EVAL_MS (see bench/rules-four-ways.sh); nothing measured"
        );
        return;
    };
    let first: i64 = first.parse().expect("FIRST_EVAL_MS is milliseconds");
    let rounds: i64 = env("ROUNDS").map_or(8, |r| r.parse().expect("ROUNDS is a count"));
    let datasource = env("DATASOURCE_URL").map(|url| {
        let config = serde_json::from_value(
            serde_json::json!({"type": "prometheus", "url": url, "timeout_seconds": 60}),
        )
        .expect("DATASOURCE_URL is a URL");
        RemoteDatasource::new(&config).expect("the datasource")
    });
    let also: Vec<String> = env("ALSO_PIDS")
        .map(|p| p.split(',').map(str::to_owned).collect())
        .unwrap_or_default();

    // The history, only when it answers the queries itself.
    let mut history = History::new(i64::MAX / 4, 480);
    let mut n_series = 0;
    let mut n_samples = 0u64;
    if datasource.is_none() {
        let file = std::fs::File::open(&samples).expect("the SAMPLES file");
        // The file goes tick by tick: each tick is appended once the next one begins.
        let mut tick: Vec<(Arc<SeriesKey>, f64)> = Vec::new();
        let mut tick_at = None;
        for line in BufReader::new(file).lines() {
            let line = line.expect("SAMPLES reads");
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (key, value, at) = parse_line(&line).expect("a sample line");
            if tick_at != Some(at) {
                if let Some(t) = tick_at {
                    assert!(
                        history.append(t, &tick),
                        "SAMPLES goes tick by tick, oldest first"
                    );
                    history.take_full_block();
                }
                tick.clear();
                tick_at = Some(at);
            }
            // The history's own index finds a key it holds: no second map of keys here, which
            // `serve` does not have either and which would stay through the rounds.
            tick.push((history.intern(key), value));
            n_samples += 1;
        }
        if let Some(t) = tick_at {
            history.append(t, &tick);
            history.take_full_block();
        }
        n_series = history.stats().series;
    }
    // The peak from here on: the engine's rounds over the history, not the text file's
    // parsing (as the script resets the other engines' peaks once they have loaded).
    let loaded_rss = status_kb("VmRSS:");
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let groups = load_file(std::path::Path::new(&rules), Semantics::Prometheus2_42)
        .expect("the RULES file loads");
    let n_rules: usize = groups.iter().map(|g| g.rules.len()).sum();
    let mut engine = RuleEngine::new(
        Globals {
            interval_ms: STEP_MS,
            semantics: Semantics::Prometheus2_42,
            datasource: datasource.clone(),
            ..Globals::default()
        },
        groups,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");

    let mut walls = Vec::new();
    let cpu_before: f64 = cpu_seconds("self") + also.iter().map(|p| cpu_seconds(p)).sum::<f64>();
    for round in 0..rounds {
        let at = first + round * STEP_MS;
        let began = Instant::now();
        let due = engine.due_groups(at);
        let queries = engine.queries(&due);
        let answers: Answers = match &datasource {
            Some(ds) => runtime
                .block_on(ds.query_all(queries.texts(), at, Duration::from_secs(600)))
                .into(),
            None => queries.answer(at, &history),
        };
        match &datasource {
            Some(_) => engine.evaluate_groups(&due, answers, None),
            None => engine.evaluate_groups(&due, answers, Some(&history)),
        };
        walls.push(began.elapsed().as_secs_f64() * 1e3);
    }
    let cpu_after: f64 = cpu_seconds("self") + also.iter().map(|p| cpu_seconds(p)).sum::<f64>();

    let peak_kb = status_kb("VmHWM:");
    if env("ROUNDS_ONLY").is_some() {
        // For a heap profiler (heaptrack): stop here, so that the profile's peak is the
        // rounds', not the rendering of every alert below.
        println!(
            "sentinel: {n_series} series, {n_rules} rules, {rounds} rounds; CPU {:.3} s per round; VmHWM over the rounds {peak_kb} kB",
            (cpu_after - cpu_before) / rounds as f64
        );
        return;
    }
    // The last round's group durations and failures, without rendering `/api/v1/rules`: that
    // renders every alert as JSON (about 5 KB each), which outgrew the rounds many times over
    // (past 9 GB at 4x, 1.67 million alerts).
    let (last_sum_seconds, errors) = engine.last_evaluation();
    let last_sum_ms = last_sum_seconds * 1e3;
    let active = engine.active_alerts();
    if let Some(out) = env("ANSWER_OUT") {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&out).expect("ANSWER_OUT"));
        for (rule, alert) in &active {
            let state = match alert.state {
                AlertState::Pending => "pending",
                AlertState::Firing => "firing",
                AlertState::Inactive => "inactive",
            };
            let line =
                serde_json::json!({"rule": rule.name(), "labels": alert.labels, "state": state});
            writeln!(f, "{line}").expect("ANSWER_OUT writes");
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{}: {n_series} series ({n_samples} samples), {n_rules} rules, {rounds} rounds: wall median {:.1} ms per round (min {:.1}, max {:.1}), group durations summed {last_sum_ms:.1} ms in the last round; CPU {:.3} s per round{}; {} alerts active; {errors} rules in error; VmHWM over the rounds {} kB (VmRSS {loaded_rss} kB once loaded)",
        if datasource.is_some() { "sentinel+remote" } else { "sentinel local" },
        median(&mut walls.clone()),
        walls.iter().copied().fold(f64::INFINITY, f64::min),
        walls.iter().copied().fold(0.0, f64::max),
        (cpu_after - cpu_before) / rounds as f64,
        if also.is_empty() { String::new() } else { format!(" (with pids {})", also.join(",")) },
        active.len(),
        peak_kb
    );
}
