//! The history as a user meets it: kept across a restart (even a crash), a truncated file set
//! aside with a warning while the sentinel runs on, CSV and JSON exports that agree, and bad
//! requests refused with a reason (HTTP 400, CLI exit 2).

mod support;

use std::collections::HashMap;
use std::path::Path;

use support::{cli, free_port, get_json, get_text, Sentinel};

fn config() -> String {
    // No IPFS node: node metrics alone make a history.
    format!(
        "ipfs:\n  api_url: http://127.0.0.1:{}\n  timeout_seconds: 1\ncluster:\n  node_id: keeper\n  monitoring:\n    collection_interval_seconds: 1\n",
        free_port()
    )
}

/// Timestamps of `ipfs_sentinel_node_memory_total_bytes` in the history, via the JSON export.
async fn memory_ticks(sentinel: &Sentinel) -> Vec<String> {
    let body = get_text(&format!(
        "{}/api/v1/export?format=json&match=ipfs_sentinel_node_memory_total_bytes",
        sentinel.url
    ))
    .await
    .expect("export answers");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["series"][0]["points"]
        .as_array()
        .map(|points| {
            points
                .iter()
                .map(|p| p[0].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_for_ticks(sentinel: &Sentinel, at_least: usize) -> Vec<String> {
    support::eventually("history ticks", || async {
        let ticks = memory_ticks(sentinel).await;
        (ticks.len() >= at_least).then_some(ticks)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn history_survives_a_crash_and_a_truncated_log_is_set_aside() {
    let keep = tempfile::tempdir().unwrap();
    let data = keep.path().join("data");
    let port = free_port();
    let mut first = Sentinel::start_in(port, &config(), &data, tempfile::tempdir().unwrap()).await;
    let before = wait_for_ticks(&first, 3).await;
    first.process.stop(); // SIGKILL: a crash, no clean shutdown.

    let second = Sentinel::start_in(port, &config(), &data, tempfile::tempdir().unwrap()).await;
    let after = memory_ticks(&second).await;
    for t in &before {
        assert!(
            after.contains(t),
            "tick {t} written before the crash is kept: {after:?}"
        );
    }
    let later = wait_for_ticks(&second, after.len() + 1).await;
    assert!(later.len() > after.len(), "and new ticks follow");
    drop(second);

    // Tear the end of the head log, as a crash mid-write would.
    let wal = data.join("history/head.wal");
    let len = std::fs::metadata(&wal).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let third = Sentinel::start_in(port, &config(), &data, tempfile::tempdir().unwrap()).await;
    let kept = memory_ticks(&third).await;
    assert!(
        kept.len() >= later.len() - 1,
        "all but the torn tick are kept: {} of {}",
        kept.len(),
        later.len()
    );
    assert!(
        data.join("history/head.wal.corrupt").exists(),
        "the torn log is set aside, not deleted"
    );
    let log = third.process.log();
    assert!(
        log.contains("history file unreadable") && log.contains("head.wal"),
        "a warning names it:\n{log}"
    );
    assert!(
        get_text(&format!("{}/-/healthy", third.url))
            .await
            .is_some(),
        "and the sentinel runs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_and_json_exports_agree_and_bad_requests_are_refused() {
    let sentinel = Sentinel::start(&config()).await;
    wait_for_ticks(&sentinel, 3).await;
    let selector = "{__name__=~\"ipfs_sentinel_(node|collector)_.*\"}";

    let (code, csv_text, err) = cli(&[
        "export",
        "--url",
        &sentinel.url,
        "--format",
        "csv",
        "--match",
        selector,
        "--range",
        "1h",
    ]);
    assert_eq!(code, 0, "{err}");
    let json_text = support::http()
        .get(format!("{}/api/v1/export", sentinel.url))
        .query(&[("format", "json"), ("match", selector), ("range", "1h")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    // JSON: (metric, sorted labels, timestamp) -> value.
    let json: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    let mut from_json: HashMap<(String, String, String), f64> = HashMap::new();
    for s in json["series"].as_array().unwrap() {
        let labels: Vec<String> = s["labels"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
            .collect();
        for p in s["points"].as_array().unwrap() {
            from_json.insert(
                (
                    s["metric"].as_str().unwrap().into(),
                    labels.join(","),
                    p[0].as_str().unwrap().into(),
                ),
                p[1].as_f64().unwrap(),
            );
        }
    }
    // CSV, parsed with the csv crate.
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "timestamp");
    assert_eq!(&headers[1], "metric");
    assert_eq!(&headers[headers.len() - 1], "value");
    let label_names: Vec<&str> = headers.iter().skip(2).take(headers.len() - 3).collect();
    let mut sorted = label_names.clone();
    sorted.sort();
    assert_eq!(label_names, sorted, "label columns are sorted");
    let mut rows = 0;
    for record in reader.records() {
        let r = record.unwrap();
        let labels: Vec<String> = label_names
            .iter()
            .enumerate()
            .filter(|(i, _)| !r[i + 2].is_empty())
            .map(|(i, n)| format!("{n}={}", &r[i + 2]))
            .collect();
        let value: f64 = r[r.len() - 1].parse().unwrap();
        let key = (r[1].to_owned(), labels.join(","), r[0].to_owned());
        let json_value = from_json
            .get(&key)
            .unwrap_or_else(|| panic!("CSV row {key:?} not in the JSON export"));
        assert_eq!(value.to_bits(), json_value.to_bits(), "{key:?}");
        rows += 1;
    }
    assert!(
        rows > 10 && rows == from_json.len(),
        "{rows} CSV rows, {} JSON points",
        from_json.len()
    );

    // Bad requests: HTTP 400 with a reason, CLI exit 2 with the same reason.
    for (query, reason) in [
        ("fn=median&step=1m", "unknown function"),
        ("match=x%7B", "malformed selector"),
        ("start=2000&end=1000", "before start"),
        ("step=0", "greater than 0"),
        ("step=-1m", "not a duration"),
        ("step=1m1h", "not a valid duration string: \"1m1h\""),
        ("step=5m5m", "not a valid duration string: \"5m5m\""),
        ("range=1%20hour", "not a duration"),
        ("start=0&end=86400&step=1s", "more than the 11000"),
    ] {
        let r = reqwest::get(format!("{}/api/v1/export?{query}", sentinel.url))
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{query}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains(reason) && body.lines().count() == 1,
            "{query}: {body}"
        );
    }
    let (code, _, err) = cli(&[
        "export",
        "--url",
        &sentinel.url,
        "--fn",
        "median",
        "--step",
        "1m",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown function"), "{err}");
    let r = reqwest::get(format!(
        "{}/api/v1/query_range?query=up&step=0",
        sentinel.url
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn query_range_answers_in_prometheus_shape_and_export_reads_a_data_dir() {
    let keep = tempfile::tempdir().unwrap();
    let data = keep.path().join("data");
    let sentinel =
        Sentinel::start_in(free_port(), &config(), &data, tempfile::tempdir().unwrap()).await;
    wait_for_ticks(&sentinel, 3).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (start, end) = ((now - 60).to_string(), now.to_string());
    let body = get_json(
        &format!("{}/api/v1/query_range", sentinel.url),
        &[
            ("query", "ipfs_sentinel_node_memory_total_bytes"),
            ("start", &start),
            ("end", &end),
            ("step", "15s"),
        ],
    )
    .await;
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "matrix");
    let series = &body["data"]["result"][0];
    assert_eq!(
        series["metric"]["__name__"],
        "ipfs_sentinel_node_memory_total_bytes"
    );
    let value = &series["values"][0];
    assert!(value[0].is_number() && value[1].is_string(), "{value}");

    // The rest of what Grafana's Prometheus datasource asks: instant query, series, labels.
    let api = |path: &str| format!("{}/api/v1/{path}", sentinel.url);
    let instant = get_json(
        &api("query"),
        &[(
            "query",
            "{__name__=\"ipfs_sentinel_node_memory_total_bytes\"}",
        )],
    )
    .await;
    assert_eq!(instant["data"]["resultType"], "vector");
    assert_eq!(
        instant["data"]["result"][0]["metric"]["__name__"],
        "ipfs_sentinel_node_memory_total_bytes"
    );
    let names = get_json(&api("label/__name__/values"), &[]).await;
    assert!(
        names["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "ipfs_sentinel_node_load1"),
        "{names}"
    );
    let labels = get_json(&api("labels"), &[]).await;
    assert!(
        labels["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "collector"),
        "{labels}"
    );
    let found = get_json(
        &api("series"),
        &[
            ("match[]", "ipfs_sentinel_collector_success"),
            ("match[]", "ipfs_sentinel_node_load1"),
        ],
    )
    .await;
    let found = found["data"].as_array().unwrap();
    assert!(
        found.iter().any(|s| s["collector"] == "node")
            && found
                .iter()
                .any(|s| s["__name__"] == "ipfs_sentinel_node_load1"),
        "{found:?}"
    );
    assert!(found
        .iter()
        .all(|s| s["__name__"] == "ipfs_sentinel_collector_success"
            || s["__name__"] == "ipfs_sentinel_node_load1"));

    // The CLI reads the data dir directly, without the running sentinel's help.
    let (code, out, err) = cli(&[
        "export",
        "--data-dir",
        data.to_str().unwrap(),
        "--format",
        "json",
        "--match",
        "ipfs_sentinel_node_memory_total_bytes",
        "--step",
        "1m",
        "--fn",
        "max",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["function"], "max");
    assert!(!v["series"][0]["points"].as_array().unwrap().is_empty());
    assert!(Path::new(&data).join("history/head.wal").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instant_query_reads_times_with_offsets_as_prometheus_does() {
    let keep = tempfile::tempdir().unwrap();
    let sentinel = Sentinel::start_in(
        free_port(),
        &config(),
        &keep.path().join("data"),
        tempfile::tempdir().unwrap(),
    )
    .await;
    let ticks = wait_for_ticks(&sentinel, 2).await;
    let tick_ms = ipfs_sentinel::clock::parse_rfc3339(&ticks[0]).unwrap();
    // One instant, the first tick, written four ways: local times with their offsets.
    let with_offset = |offset_ms: i64, suffix: &str| {
        let utc = ipfs_sentinel::clock::rfc3339(tick_ms + offset_ms);
        format!("{}{suffix}", utc.strip_suffix('Z').unwrap())
    };
    let plus_two = with_offset(2 * 3_600_000, "+02:00");
    let minus_five_thirty = with_offset(-(5 * 3_600_000 + 1_800_000), "-05:30");
    let seconds = format!("{:.3}", tick_ms as f64 / 1000.0);
    let mut answers = Vec::new();
    for time in [ticks[0].as_str(), &plus_two, &minus_five_thirty, &seconds] {
        let body = get_json(
            &format!("{}/api/v1/query", sentinel.url),
            &[
                ("query", "ipfs_sentinel_node_memory_total_bytes"),
                ("time", time),
            ],
        )
        .await;
        assert_eq!(body["status"], "success", "time={time}: {body}");
        let sample = &body["data"]["result"][0]["value"];
        assert_eq!(
            sample[0].as_f64(),
            Some(tick_ms as f64 / 1000.0),
            "time={time} is the first tick's instant: {body}"
        );
        answers.push(sample[1].clone());
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    // A time without an offset names no instant: refused in Prometheus's words.
    let body = get_json(
        &format!("{}/api/v1/query", sentinel.url),
        &[
            ("query", "ipfs_sentinel_node_memory_total_bytes"),
            ("time", ticks[0].trim_end_matches('Z')),
        ],
    )
    .await;
    assert_eq!(body["errorType"], "bad_data", "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("to a valid timestamp"),
        "{body}"
    );
}
