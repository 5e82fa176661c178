//! Recovery actions against real parts: a real Alertmanager receiving the sentinel's alerts and
//! calling the sentinel's webhook receiver, a webhook receiver that is down at first (and a
//! sentinel restart in between), commands with hostile labels and commands that hang, and the
//! policy (cool-down, max runs, escalation) under a flapping alert.
//!
//! Alerts are driven by the clock: `vector(time()) < END` fires until END, `vector(time() % 8)
//! < 4` flaps every four seconds, so no test needs a machine in a given state.

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use support::alertmanager::{Alertmanager, Receiver};
use support::{action_runs, eventually, executable, free_port, http, sample, Sentinel};

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A sentinel collecting every second, with `rules` as its rule file and `actions` (YAML
/// mapping text, indented for `monitoring:`) appended to its monitoring section.
fn config(rules_file: &str, monitoring_extra: &str) -> String {
    format!(
        "ipfs:\n  api_url: http://127.0.0.1:9\n  timeout_seconds: 1\ncluster:\n  node_id: node-a\n  monitoring:\n    collection_interval_seconds: 1\n    collector_timeout_seconds: 1\n    rule_files: [{rules_file}]\n{monitoring_extra}"
    )
}

/// Writes `rules` beside the config in a fresh temp dir.
fn dir_with_rules(rules: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
    dir
}

async fn start(rules: &str, monitoring_extra: &str, args: &[&str]) -> Sentinel {
    let dir = dir_with_rules(rules);
    let data = dir.path().join("data");
    Sentinel::start_with(
        free_port(),
        &config("rules.yml", monitoring_extra),
        &data,
        dir,
        args,
        &[],
        true,
    )
    .await
}

/// Waits for an audit record of `action` with `result`, and returns it.
async fn run_with(sentinel: &Sentinel, action: &str, result: &str) -> Value {
    eventually(&format!("a {result} run of {action}"), || async {
        action_runs(sentinel)
            .await
            .into_iter()
            .find(|r| r["action"] == action && r["result"] == result)
    })
    .await
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A script that appends its arguments, one per line, to `marker`.
fn marker_script(dir: &Path, name: &str, marker: &Path) -> String {
    let script = dir.join(name);
    executable(
        &script,
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\n",
            marker.display()
        ),
    );
    script.display().to_string()
}

#[tokio::test]
#[ignore = "needs Debian's prometheus-alertmanager (the README's test command installs it)"]
async fn alertmanager_receives_the_alerts_and_their_resolution() {
    let hook = Receiver::start(0, "/hook").await;
    let am = Alertmanager::start(&format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: '{}'\n        send_resolved: true\n",
        hook.url
    ))
    .await;
    let end = now_s() + 12;
    let rules = format!(
        "groups:\n  - name: t\n    rules:\n      - alert: SentinelTestAlert\n        expr: vector(time()) < {end}\n        labels: {{severity: warning, action: to_am}}\n        annotations: {{summary: 'fires until {end} (now {{{{ $value }}}})'}}\n"
    );
    let sentinel = start(
        &rules,
        &format!(
            "    external_labels: {{cluster: test}}\n    recovery_actions:\n      to_am: {{alertmanager: {{urls: ['{}']}}}}\n",
            am.url
        ),
        &[],
    )
    .await;

    let alert = eventually("the alert in Alertmanager", || async {
        am.alerts()
            .await
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "SentinelTestAlert")
    })
    .await;
    assert_eq!(alert["labels"]["severity"], "warning");
    assert_eq!(
        alert["labels"]["cluster"], "test",
        "external labels: {alert}"
    );
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with(&format!("fires until {end} (now ")),
        "{alert}"
    );
    let labels: std::collections::BTreeMap<String, String> =
        serde_json::from_value(alert["labels"].clone()).unwrap();
    assert_eq!(
        alert["fingerprint"],
        ipfs_sentinel::model::fingerprint(&labels),
        "our fingerprint is Alertmanager's"
    );
    assert!(alert["generatorURL"]
        .as_str()
        .unwrap()
        .contains("g0.expr=vector%28time%28%29%29"));

    // Alertmanager notifies its own receiver, then the resolution once the clock passes END.
    let resolved = eventually("Alertmanager's resolved notification", || async {
        hook.bodies()
            .into_iter()
            .find(|b| b["status"] == "resolved")
    })
    .await;
    assert_eq!(
        resolved["alerts"][0]["labels"]["alertname"],
        "SentinelTestAlert"
    );
    assert!(hook.bodies().iter().any(|b| b["status"] == "firing"));
    eventually("the alert to leave Alertmanager's active list", || async {
        let active = am.alerts().await.into_iter().any(|a| {
            a["labels"]["alertname"] == "SentinelTestAlert" && a["status"]["state"] == "active"
        });
        (!active).then_some(())
    })
    .await;
    // Two pushes at least: the firing alert and its resolution.
    sentinel
        .metrics_until("the pushes counted", |m| {
            sample(
                m,
                "ipfs_sentinel_actions_total",
                &[("action", "to_am"), ("result", "success")],
            )
            .is_some_and(|n| n >= 2.0)
        })
        .await;
}

#[tokio::test]
#[ignore = "needs Debian's prometheus-alertmanager (the README's test command installs it)"]
async fn alertmanager_notifications_run_the_mapped_command() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let script = marker_script(dir.path(), "mark.sh", &marker);
    let sentinel = start(
        "groups: []\n",
        &format!(
            "    recovery_actions:\n      mark: {{command: ['{script}', '{{alertname}}', '{{node_id}}', '{{summary}}'], target: local}}\n    actions:\n      routes:\n        - {{match_labels: {{alertname: DiskAlmostFull}}, actions: [mark]}}\n"
        ),
        &["--web.enable-remote-actions"],
    )
    .await;
    let am = Alertmanager::start(&format!(
        "route:\n  receiver: sentinel\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: sentinel\n    webhook_configs:\n      - url: '{}/api/v1/alertmanager/webhook'\n",
        sentinel.url
    ))
    .await;
    // As Prometheus would push it.
    let pushed = http()
        .post(format!("{}/api/v2/alerts", am.url))
        .json(&json!([{
            "labels": {"alertname": "DiskAlmostFull", "node_id": "node-z; rm -rf /", "severity": "warning"},
            "annotations": {"summary": "disk at 91% on $(hostname)"},
            "startsAt": ipfs_sentinel::clock::rfc3339(ipfs_sentinel::clock::system_ms(SystemTime::now())),
        }]))
        .send()
        .await
        .unwrap();
    assert!(pushed.status().is_success());
    let written = eventually("the marker file", || async {
        let l = lines(&marker);
        (l.len() >= 3).then_some(l)
    })
    .await;
    assert_eq!(
        written,
        vec![
            "DiskAlmostFull",
            "node-z; rm -rf /",
            "disk at 91% on $(hostname)"
        ]
    );
    let run = run_with(&sentinel, "mark", "success").await;
    assert_eq!(run["node_id"], "node-z; rm -rf /");
    assert_eq!(run["alertname"], "DiskAlmostFull");
}

#[tokio::test]
async fn a_webhook_down_at_first_is_delivered_once_across_a_restart() {
    let port = free_port();
    let rules = "groups:\n  - name: t\n    rules:\n      - alert: AlwaysFiring\n        expr: vector(1)\n        labels: {severity: critical, action: page}\n        annotations: {summary: always}\n";
    let extra = format!(
        "    recovery_actions:\n      page: {{webhook: {{url: 'http://127.0.0.1:{port}/hook'}}}}\n    actions: {{retry_initial_seconds: 1, retry_max_seconds: 2, max_attempts: 1000}}\n"
    );
    let dir = dir_with_rules(rules);
    let data = dir.path().join("data");
    let sentinel_port = free_port();
    let mut sentinel = Sentinel::start_with(
        sentinel_port,
        &config("rules.yml", &extra),
        &data,
        dir,
        &[],
        &[],
        true,
    )
    .await;
    let failed = run_with(&sentinel, "page", "failure").await;
    assert!(
        failed["output"].as_str().unwrap().contains("127.0.0.1"),
        "{failed}"
    );
    sentinel
        .metrics_until("outbox_pending 1", |m| {
            sample(m, "ipfs_sentinel_outbox_pending", &[]) == Some(1.0)
        })
        .await;
    // Killed while the run is pending; the receiver comes up; the sentinel comes back.
    sentinel.process.stop();
    let hook = Receiver::start(port, "/hook").await;
    let kept = std::mem::replace(&mut sentinel.dir, tempfile::tempdir().unwrap());
    let sentinel = Sentinel::start_with(
        sentinel_port,
        &config("rules.yml", &extra),
        &data,
        kept,
        &[],
        &[],
        true,
    )
    .await;
    let body = eventually("the webhook to arrive", || async {
        hook.bodies().into_iter().next()
    })
    .await;
    assert_eq!(body["version"], "4");
    assert_eq!(body["receiver"], "page");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["alerts"][0]["labels"]["alertname"], "AlwaysFiring");
    assert_eq!(body["alerts"][0]["labels"]["severity"], "critical");
    assert_eq!(body["alerts"][0]["annotations"]["summary"], "always");
    run_with(&sentinel, "page", "success").await;
    sentinel
        .metrics_until("the outbox to empty", |m| {
            sample(m, "ipfs_sentinel_outbox_pending", &[]) == Some(0.0)
        })
        .await;
    // The alert keeps firing for five more evaluations: no second delivery.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(hook.bodies().len(), 1, "sent once: {:?}", hook.bodies());
    let audit = action_runs(&sentinel).await;
    assert!(
        audit.iter().any(|r| r["result"] == "failure"),
        "the failures before the restart are kept in the audit log"
    );
}

#[tokio::test]
async fn commands_get_no_shell_and_are_killed_at_their_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let injected = dir.path().join("INJECTED");
    let hostile = format!(
        "x; touch {0} && echo $(touch {0}) `touch {0}`",
        injected.display()
    );
    let rules = format!(
        "groups:\n  - name: t\n    rules:\n      - alert: Hostile\n        expr: vector(1)\n        labels: {{target: '{hostile}'}}\n        annotations: {{actions: 'echo,hang'}}\n"
    );
    let sentinel = start(
        &rules,
        "    recovery_actions:\n      echo: {command: '/usr/bin/printf %s {target}', target: local}\n      hang: {command: ['/bin/sleep', '601.25'], timeout_seconds: 1, target: local}\n",
        &[],
    )
    .await;
    let echoed = run_with(&sentinel, "echo", "success").await;
    assert_eq!(echoed["output"], format!("exit status 0: {hostile}"));
    assert!(!injected.exists(), "a label ran through a shell");

    let hung = run_with(&sentinel, "hang", "timeout").await;
    assert!(hung["duration_seconds"].as_f64().unwrap() < 30.0, "{hung}");
    eventually("the hung command's process to be gone", || async {
        let alive = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| c.windows(6).any(|w| w == b"601.25"))
                .unwrap_or(false)
        });
        (!alive).then_some(())
    })
    .await;

    // The state-changing endpoints are off without --web.enable-remote-actions.
    let refused = http()
        .post(format!("{}/api/v1/alertmanager/webhook", sentinel.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let refused = http()
        .post(format!("{}/api/v1/actions/echo/run", sentinel.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}

#[tokio::test]
async fn a_flapping_alert_keeps_to_cooldown_and_max_runs_and_escalates_once() {
    let dir = tempfile::tempdir().unwrap();
    let runs_file = dir.path().join("runs");
    let pages_file = dir.path().join("pages");
    let mark = marker_script(dir.path(), "mark.sh", &runs_file);
    let page = marker_script(dir.path(), "page.sh", &pages_file);
    // Fires four seconds out of eight.
    let rules = "groups:\n  - name: t\n    rules:\n      - alert: Flapping\n        expr: vector(time() % 8) < 4\n        labels: {action: fix}\n";
    let sentinel = start(
        rules,
        &format!(
            "    recovery_actions:\n      fix: {{command: ['{mark}', '{{alertname}}'], target: local, cooldown_seconds: 5, max_runs: 2, escalate_after_seconds: 2, escalate_to: page}}\n      page: {{command: ['{page}', 'paged', '{{alertname}}'], target: local}}\n"
        ),
        &[],
    )
    .await;
    // The third firing of the episode finds max_runs used up.
    let skipped = run_with(&sentinel, "fix", "skipped_max_runs").await;
    assert!(skipped["output"].as_str().unwrap().contains("max_runs 2"));
    assert_eq!(lines(&runs_file), vec!["Flapping", "Flapping"]);
    assert_eq!(lines(&pages_file), vec!["paged", "Flapping"]);
    let audit = action_runs(&sentinel).await;
    let escalations: Vec<&Value> = audit
        .iter()
        .filter(|r| r["trigger"] == "escalation")
        .collect();
    assert_eq!(escalations.len(), 1, "{audit:?}");
    assert_eq!(escalations[0]["action"], "page");
    assert_eq!(escalations[0]["result"], "success");
}

#[tokio::test]
async fn dry_run_records_what_would_run_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let script = marker_script(dir.path(), "mark.sh", &marker);
    let rules = "groups:\n  - name: t\n    rules:\n      - alert: AlwaysFiring\n        expr: vector(1)\n        labels: {action: mark}\n";
    let sentinel = start(
        rules,
        &format!(
            "    recovery_actions:\n      mark: {{command: ['{script}', '{{alertname}}'], target: local, cooldown_seconds: 3600}}\n"
        ),
        &["--dry-run"],
    )
    .await;
    let run = run_with(&sentinel, "mark", "dry_run").await;
    assert_eq!(run["dry_run"], true);
    assert_eq!(run["output"], format!("would run: {script} AlwaysFiring"));
    let metrics = sentinel
        .metrics_until("the dry run counted", |m| {
            sample(
                m,
                "ipfs_sentinel_actions_total",
                &[("action", "mark"), ("result", "dry_run")],
            )
            .is_some()
        })
        .await;
    // A few more evaluations of the still-firing alert.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics_later = sentinel.metrics().await;
    for m in [&metrics, &metrics_later] {
        assert_eq!(
            sample(
                m,
                "ipfs_sentinel_actions_total",
                &[("action", "mark"), ("result", "dry_run")]
            ),
            Some(1.0),
            "counted once: the cool-down holds in a dry run too"
        );
    }
    assert!(!marker.exists(), "nothing ran");
}

#[tokio::test]
async fn an_action_for_another_node_runs_on_that_nodes_sentinel_with_its_token() {
    const TOKEN: &str = "remote-runs-need-this-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let marker = dir.path().join("ran-on");
    let script = dir.path().join("where.sh");
    executable(
        &script,
        &format!(
            "#!/bin/sh\nprintf '%s %s\\n' \"$SENTINEL_TRIGGER\" \"$1\" >> '{}'\n",
            marker.display()
        ),
    );
    let action = format!(
        "    recovery_actions:\n      where: {{command: ['{}', '{{node_id}}'], target: alerting_node}}\n",
        script.display()
    );
    // node-b: runs actions for peers that present its token.
    let b_dir = dir_with_rules("groups: []\n");
    let b_data = b_dir.path().join("data");
    let b = Sentinel::start_with(
        free_port(),
        &config("rules.yml", &action).replace("node-a", "node-b"),
        &b_data,
        b_dir,
        &["--web.token-file", token_file.to_str().unwrap()],
        &[],
        true,
    )
    .await;
    // node-a: an alert about node-b.
    let rules = "groups:\n  - name: t\n    rules:\n      - alert: AboutB\n        expr: vector(1)\n        labels: {node_id: node-b, action: where}\n";
    let a_config = config("rules.yml", &action).replace(
        "  node_id: node-a\n",
        &format!(
            "  node_id: node-a\n  peers: ['{}']\n  peer_token_file: '{}'\n",
            b.url,
            token_file.display()
        ),
    );
    let a_dir = dir_with_rules(rules);
    let a_data = a_dir.path().join("data");
    let a = Sentinel::start_with(free_port(), &a_config, &a_data, a_dir, &[], &[], true).await;

    let asked = run_with(&a, "where", "success").await;
    assert_eq!(asked["node_id"], "node-b");
    assert!(
        asked["output"].as_str().unwrap().starts_with("on node-b: "),
        "{asked}"
    );
    let ran = run_with(&b, "where", "success").await;
    assert_eq!(ran["trigger"], "remote");
    assert_eq!(lines(&marker), vec!["remote node-b"], "ran once, on node-b");

    // Without the token, node-b refuses and runs nothing.
    let refused = http()
        .post(format!("{}/api/v1/actions/where/run", b.url))
        .json(&json!({"job": "x", "alert": asked}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn a_reload_brings_new_actions_in() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let script = marker_script(dir.path(), "mark.sh", &marker);
    let sentinel_dir = dir_with_rules("groups: []\n");
    let config_path = sentinel_dir.path().join("sentinel.yaml");
    let rules_path = sentinel_dir.path().join("rules.yml");
    let data = sentinel_dir.path().join("data");
    let sentinel = Sentinel::start_with(
        free_port(),
        &config("rules.yml", ""),
        &data,
        sentinel_dir,
        &["--web.enable-lifecycle"],
        &[],
        true,
    )
    .await;
    // An action and a rule naming it arrive together, as an operator would add them.
    std::fs::write(
        &config_path,
        config(
            "rules.yml",
            &format!(
                "    recovery_actions:\n      added: {{command: ['{script}', 'added', '{{alertname}}'], target: local}}\n"
            ),
        ),
    )
    .unwrap();
    std::fs::write(
        &rules_path,
        "groups:\n  - name: t\n    rules:\n      - alert: NewRule\n        expr: vector(1)\n        labels: {action: added}\n",
    )
    .unwrap();
    let reloaded = http()
        .post(format!("{}/-/reload", sentinel.url))
        .send()
        .await
        .unwrap();
    assert_eq!(reloaded.status(), 200, "{}", reloaded.text().await.unwrap());
    run_with(&sentinel, "added", "success").await;
    assert_eq!(lines(&marker), vec!["added", "NewRule"]);
}

#[tokio::test]
async fn an_alertmanager_starts_at_with_an_offset_reaches_the_command_as_that_instant() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let script = dir.path().join("starts-at.sh");
    executable(
        &script,
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$SENTINEL_STARTS_AT\" >> '{}'\n",
            marker.display()
        ),
    );
    let sentinel = start(
        "groups: []\n",
        &format!(
            "    recovery_actions:\n      note: {{command: ['{}'], target: local}}\n",
            script.display()
        ),
        &["--web.enable-remote-actions"],
    )
    .await;
    // As Alertmanager's webhook_configs send it, from an Alertmanager in UTC+2.
    let payload = json!({
        "version": "4",
        "status": "firing",
        "receiver": "sentinel",
        "groupKey": "{}:{alertname=\"DiskAlmostFull\"}",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "DiskAlmostFull", "action": "note"},
            "annotations": {},
            "startsAt": "2026-11-28T14:00:00.250+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
        }],
    });
    let posted = http()
        .post(format!("{}/api/v1/alertmanager/webhook", sentinel.url))
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert!(posted.status().is_success(), "{:?}", posted.text().await);
    let written = eventually("the command's SENTINEL_STARTS_AT", || async {
        let l = lines(&marker);
        (!l.is_empty()).then_some(l)
    })
    .await;
    assert_eq!(written, vec!["2026-11-28T12:00:00.250Z"]);
}
