//! Rule evaluation benchmark (`cargo bench --bench rules`), for BENCHMARKS.md beside a real
//! Prometheus on the same workload (`bench/rules-vs-prometheus.sh` runs both in one go).
//!
//! The workload is `../shared/bench/rule-workload.py`'s: 10,000 series (its METRICS page) and
//! 1,000 alerting rules (its RULES file). Here the series fill a history of 40 ticks at 15 s
//! (counters grow by their page value each tick, gauges keep it), the rules load as the sentinel
//! loads them, and each round evaluates every group once, as Prometheus's rule manager does
//! every 15 s. Paths come from `WORKLOAD_METRICS` and `WORKLOAD_RULES`.

use std::sync::Arc;
use std::time::Instant;

use ipfs_sentinel::history::{History, SeriesKey};
use ipfs_sentinel::model::Semantics;
use ipfs_sentinel::rules::load::load_file;
use ipfs_sentinel::rules::manager::{Globals, RuleEngine};

const STEP_MS: i64 = 15_000;
const TICKS: i64 = 40;

fn parse_page(text: &str) -> Vec<(SeriesKey, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (name, rest) = series.split_once('{')?;
            let mut labels: Vec<(String, String)> = rest
                .trim_end_matches('}')
                .split("\",")
                .filter_map(|p| {
                    let (k, v) = p.split_once("=\"")?;
                    Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
                })
                .collect();
            labels.sort();
            Some((
                SeriesKey {
                    name: name.to_owned(),
                    labels,
                },
                value.parse().ok()?,
            ))
        })
        .collect()
}

fn vm_hwm_kb() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let (Ok(metrics), Ok(rules)) = (
        std::env::var("WORKLOAD_METRICS"),
        std::env::var("WORKLOAD_RULES"),
    ) else {
        println!("set WORKLOAD_METRICS and WORKLOAD_RULES (see bench/rules-vs-prometheus.sh); nothing measured");
        return;
    };
    let page = parse_page(&std::fs::read_to_string(&metrics).expect("the METRICS page"));
    let mut history = History::new(i64::MAX / 4, 480);
    let keys: Vec<(Arc<SeriesKey>, f64, bool)> = page
        .into_iter()
        .map(|(k, v)| {
            let counter = k.name.ends_with("_total");
            (history.intern(k), v, counter)
        })
        .collect();
    let start = 1_790_000_000_000i64;
    for i in 0..TICKS {
        let tick: Vec<(Arc<SeriesKey>, f64)> = keys
            .iter()
            .map(|(k, v, counter)| {
                (
                    Arc::clone(k),
                    if *counter { v * (i + 1) as f64 } else { *v },
                )
            })
            .collect();
        history.append(start + i * STEP_MS, &tick);
        history.take_full_block();
    }
    // Prometheus 2.42 is what it is measured beside: its PromQL semantics.
    let groups = load_file(std::path::Path::new(&rules), Semantics::Prometheus2_42)
        .expect("the RULES file loads");
    let n_rules: usize = groups.iter().map(|g| g.rules.len()).sum();
    let mut engine = RuleEngine::new(
        Globals {
            interval_ms: STEP_MS,
            semantics: Semantics::Prometheus2_42,
            ..Globals::default()
        },
        groups,
    );
    let mut rounds = Vec::new();
    for round in 0..8 {
        let at = start + (TICKS - 8 + round) * STEP_MS;
        let began = Instant::now();
        engine.evaluate_due(at, &history);
        rounds.push(began.elapsed().as_secs_f64() * 1e3);
    }
    let firing = engine.active_alerts().len();
    rounds.sort_by(f64::total_cmp);
    println!(
        "ipfs-sentinel: {} series, {n_rules} rules: median {:.1} ms per round (min {:.1}, max {:.1}, 8 rounds); {firing} alerts active; VmHWM {} kB",
        keys.len(),
        rounds[rounds.len() / 2],
        rounds[0],
        rounds[rounds.len() - 1],
        vm_hwm_kb()
    );
}
