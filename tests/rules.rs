//! The rule engine in a running sentinel: a short-form alert that holds fires and shows in
//! `/api/v1/alerts`, `/api/v1/rules` and as `ALERTS` on `/metrics` (and a real Prometheus
//! scraping the sentinel sees it); reloads swap good rules and keep the old ones on a broken
//! file, saying why.

mod support;

use support::{free_port, get_json, sample, Prometheus, Sentinel};

fn config(extra: &str) -> String {
    format!(
        "ipfs:\n  api_url: http://127.0.0.1:{}\n  timeout_seconds: 1\ncluster:\n  node_id: ruler\n  monitoring:\n    collection_interval_seconds: 1\n    alerts:\n      - {{metric: node.memory_usage_percent, operator: '>', threshold: 0, severity: info}}\n{extra}",
        free_port()
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's prometheus; the README's test command runs it"]
async fn a_holding_short_form_alert_fires_everywhere_it_should() {
    let sentinel = Sentinel::start(&config("")).await;
    let metrics = sentinel
        .metrics_until("ALERTS firing on /metrics", |m| {
            sample(
                m,
                "ALERTS",
                &[
                    ("alertname", "NodeMemoryUsagePercentHigh"),
                    ("alertstate", "firing"),
                ],
            ) == Some(1.0)
        })
        .await;
    assert!(
        sample(
            &metrics,
            "ALERTS_FOR_STATE",
            &[("alertname", "NodeMemoryUsagePercentHigh")]
        )
        .unwrap()
            > 1e9
    );
    assert_eq!(
        sample(&metrics, "ipfs_sentinel_config_last_reload_successful", &[]),
        Some(1.0)
    );

    let alerts = get_json(&format!("{}/api/v1/alerts", sentinel.url), &[]).await;
    let alert = &alerts["data"]["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "NodeMemoryUsagePercentHigh");
    assert_eq!(alert["labels"]["severity"], "info");
    assert_eq!(alert["state"], "firing");
    let summary = alert["annotations"]["summary"].as_str().unwrap();
    let percent = summary
        .strip_prefix("memory on ruler is ")
        .and_then(|s| s.strip_suffix(" % used"))
        .unwrap_or_else(|| panic!("the summary names the node and the thing: {alert}"));
    assert!(
        percent.len() <= 5 && percent.parse::<f64>().is_ok_and(|p| p > 0.0),
        "humanized (4 significant digits): {alert}"
    );

    let rules = get_json(&format!("{}/api/v1/rules", sentinel.url), &[]).await;
    let rule = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["type"], "alerting");
    assert_eq!(rule["health"], "ok");
    assert_eq!(
        rule["query"],
        "100 * ipfs_sentinel_node_memory_usage_ratio > 0"
    );

    let target = sentinel.url.trim_start_matches("http://").to_owned();
    let prometheus = Prometheus::start(std::slice::from_ref(&target)).await;
    support::eventually("Prometheus to scrape the firing alert", || async {
        let r = prometheus
            .query("ALERTS{alertstate=\"firing\",job=\"ipfs-sentinel\"}")
            .await;
        r.iter()
            .any(|s| s["metric"]["alertname"] == "NodeMemoryUsagePercentHigh")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_swaps_good_rules_and_keeps_the_old_ones_on_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("ipfs.rules.yml");
    std::fs::write(&rules, "groups:\n  - name: first\n    rules:\n      - record: sentinel:memory:ratio\n        expr: ipfs_sentinel_node_memory_usage_ratio\n").unwrap();
    let cfg = dir.path().join("sentinel.yaml");
    std::fs::write(&cfg, config("    rule_files: ['*.rules.yml']\n")).unwrap();
    let port = free_port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ipfs-sentinel"));
    command.args([
        "serve",
        "--web.enable-lifecycle",
        "--config",
        cfg.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
    ]);
    let mut process = support::Process::spawn("ipfs-sentinel", command, &dir.path().join("log"));
    let url = format!("http://127.0.0.1:{port}");
    let groups = |v: &serde_json::Value| {
        v["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    support::eventually("the first rules", || {
        process.assert_running();
        let url = url.clone();
        async move {
            let v = support::get_text(&format!("{url}/api/v1/rules")).await?;
            let v: serde_json::Value = serde_json::from_str(&v).ok()?;
            groups(&v).contains(&"first".to_owned()).then_some(())
        }
    })
    .await;
    // The recording rule writes its series into the history.
    support::eventually("the recorded series in the history", || async {
        let v = get_json(
            &format!("{url}/api/v1/query"),
            &[("query", "sentinel:memory:ratio")],
        )
        .await;
        (!v["data"]["result"].as_array()?.is_empty()).then_some(())
    })
    .await;

    let reload_with = |text: &'static str| {
        std::fs::write(&rules, text).unwrap();
        support::http().post(format!("{url}/-/reload")).send()
    };
    let r = reload_with(
        "groups:\n  - name: second\n    rules:\n      - alert: Always\n        expr: vector(1)\n",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v = get_json(&format!("{url}/api/v1/rules"), &[]).await;
    assert!(
        groups(&v).contains(&"second".to_owned()) && !groups(&v).contains(&"first".to_owned()),
        "{v}"
    );

    let r = reload_with(
        "groups:\n  - name: third\n    rules:\n      - alert: Broken\n        expr: sum(up\n",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 500);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("ipfs.rules.yml:5:15") && body.contains("rule 1 (Broken)"),
        "{body}"
    );
    let v = get_json(&format!("{url}/api/v1/rules"), &[]).await;
    assert!(
        groups(&v).contains(&"second".to_owned()),
        "the old rules keep running: {v}"
    );
    assert!(v["data"]["lastReloadError"]
        .as_str()
        .unwrap()
        .contains("could not parse expression"));
    support::eventually("config_last_reload_successful 0", || async {
        let m = support::get_text(&format!("{url}/metrics")).await?;
        (sample(&m, "ipfs_sentinel_config_last_reload_successful", &[]) == Some(0.0)).then_some(())
    })
    .await;
    assert!(
        process.log().contains("rules not reloaded"),
        "the log says why"
    );

    // Without --web.enable-lifecycle the endpoint is refused.
    let other = Sentinel::start(&config("")).await;
    let r = support::http()
        .post(format!("{}/-/reload", other.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's prometheus; the README's test command runs it"]
async fn a_remote_datasource_fires_what_the_local_history_fires() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("same.rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: same\n    rules:\n      - alert: MemoryInUse\n        expr: max(ipfs_sentinel_node_memory_usage_ratio) > 0\n        labels: {severity: info}\n",
    )
    .unwrap();
    let rule_files = format!("    rule_files: ['{}']\n", rules.display());
    let local = Sentinel::start(&config(&rule_files)).await;
    let target = local.url.trim_start_matches("http://").to_owned();
    let prometheus = Prometheus::start(std::slice::from_ref(&target)).await;
    support::eventually("Prometheus to have the sentinel's memory ratio", || async {
        (!prometheus
            .query("ipfs_sentinel_node_memory_usage_ratio")
            .await
            .is_empty())
        .then_some(())
    })
    .await;
    let remote = Sentinel::start(&config(&format!(
        "{rule_files}    datasource: {{type: prometheus, url: '{}', timeout_seconds: 2}}\n",
        prometheus.url
    )))
    .await;

    let firing = |sentinel: &Sentinel| {
        let url = format!("{}/api/v1/alerts", sentinel.url);
        async move {
            // A failed request is polled again, not a failure: the question is whether the
            // alert fires.
            let v: serde_json::Value =
                serde_json::from_str(&support::get_text(&url).await?).ok()?;
            let mut alerts: Vec<String> = v["data"]["alerts"]
                .as_array()?
                .iter()
                .filter(|a| a["state"] == "firing" && a["labels"]["alertname"] == "MemoryInUse")
                .map(|a| a["labels"].to_string())
                .collect();
            alerts.sort();
            (!alerts.is_empty()).then_some(alerts)
        }
    };
    let from_local = support::eventually("the local sentinel firing", || firing(&local)).await;
    let from_remote =
        support::eventually("the remote-datasource sentinel firing", || firing(&remote)).await;
    assert_eq!(from_local, from_remote, "same names and labels");
    let rules = get_json(&format!("{}/api/v1/rules", remote.url), &[]).await;
    let rule = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "same")
        .unwrap()["rules"][0]
        .clone();
    assert_eq!(rule["health"], "ok", "{rule}");
}
