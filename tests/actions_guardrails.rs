//! The recovery actions' guardrails against real sentinel processes: approval end to end (a
//! proposal, its alert, approval through the API and the CLI, a rejected and an expired
//! proposal that never run, the audit naming who and when), the circuit breaker under a storm of
//! twenty rules firing at once (it opens, closes after its window, survives a restart, and is
//! reset through the API), a command stopped with its process group when its alert resolves,
//! `still_firing` leading to escalation, and the partition guard: a sentinel that sees most of
//! the cluster Offline (real peer sentinels stopped, the IPFS Cluster stand-in answering) does
//! not call the re-pin endpoint, while one with a healthy majority view does, at most
//! `max_pins` per run.
//!
//! Alerts are driven by the clock (`vector(time()) < END`), so no test needs a machine in a
//! given state; intervals are short and real, and no assertion is about timing.

mod support;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::ipfs_cluster::{ClusterState, IpfsClusterStandIn};
use support::{
    action_runs, cli, eventually, executable, free_port, get_json, http, sample, Sentinel,
};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A sentinel collecting every second with `rules` as its rule file, `monitoring_extra` (YAML
/// indented for `monitoring:`) appended, and the web token in `token` beside its config.
async fn start(dir: tempfile::TempDir, rules: &str, monitoring_extra: &str) -> Sentinel {
    std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    let data = dir.path().join("data");
    restart(dir, &data, monitoring_extra).await
}

/// Starts (again) on the same data dir.
async fn restart(dir: tempfile::TempDir, data: &Path, monitoring_extra: &str) -> Sentinel {
    let token = dir.path().join("token").display().to_string();
    let config = format!(
        "ipfs:\n  api_url: http://127.0.0.1:9\n  timeout_seconds: 1\ncluster:\n  node_id: node-a\n  monitoring:\n    collection_interval_seconds: 1\n    collector_timeout_seconds: 1\n    rule_files: [rules.yml]\n{monitoring_extra}"
    );
    Sentinel::start_with(
        free_port(),
        &config,
        data,
        dir,
        &["--web.token-file", &token],
        &[],
        true,
    )
    .await
}

/// A rule per name, firing until `end` (Unix seconds), each naming `action`.
fn rules(names: &[String], action: &str, end: u64) -> String {
    let mut text = "groups:\n  - name: t\n    interval: 1s\n    rules:\n".to_owned();
    for name in names {
        text.push_str(&format!(
            "      - alert: {name}\n        expr: vector(time()) < {end}\n        labels: {{severity: warning, action: {action}}}\n"
        ));
    }
    text
}

/// A script that appends its first argument to `marker`.
fn marker_script(dir: &Path, marker: &Path) -> String {
    let script = dir.join("mark.sh");
    executable(
        &script,
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n",
            marker.display()
        ),
    );
    script.display().to_string()
}

fn marked(marker: &Path) -> Vec<String> {
    std::fs::read_to_string(marker)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits for an audit record matching `accept`.
async fn record(sentinel: &Sentinel, what: &str, accept: impl Fn(&Value) -> bool) -> Value {
    eventually(what, || {
        let runs = action_runs(sentinel);
        let accept = &accept;
        async move { runs.await.into_iter().find(|r| accept(r)) }
    })
    .await
}

async fn guard(sentinel: &Sentinel) -> Value {
    get_json(&format!("{}/api/v1/actions", sentinel.url), &[]).await["data"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proposal_runs_only_once_approved_and_the_audit_says_by_whom() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let script = marker_script(dir.path(), &marker);
    let names: Vec<String> = ["ByApi", "ByCli", "Rejected"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let end = now_s() + 3600;
    let mut text = rules(&names, "mark", end);
    text.push_str(&format!(
        "      - alert: Expiring\n        expr: vector(time()) < {end}\n        labels: {{action: mark_soon}}\n"
    ));
    let sentinel = start(
        dir,
        &text,
        &format!(
            "    alerts:\n      - {{name: RecoveryActionAwaitingApproval, metric: actions.awaiting_approval, threshold: 0, operator: '>', severity: warning}}\n    recovery_actions:\n      mark: {{command: ['{script}', '{{alertname}}'], target: local, approval: required, cooldown_seconds: 0, max_runs: 1}}\n      mark_soon: {{command: ['{script}', '{{alertname}}'], target: local, approval: required, approval_timeout_seconds: 2}}\n"
        ),
    )
    .await;

    // Four proposals; the one that expires soon is recorded expired and never runs.
    let expired = record(&sentinel, "the expired proposal", |r| {
        r["result"] == "expired" && r["alertname"] == "Expiring"
    })
    .await;
    assert!(
        expired["output"].as_str().unwrap().contains("would run"),
        "{expired}"
    );
    let proposals = eventually("three proposals", || async {
        let p = guard(&sentinel).await["proposals"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (p.len() == 3).then_some(p)
    })
    .await;
    let id_of = |alert: &str| {
        proposals
            .iter()
            .find(|p| p["alertname"] == alert)
            .unwrap_or_else(|| panic!("no proposal for {alert}: {proposals:?}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let by_api = proposals
        .iter()
        .find(|p| p["alertname"] == "ByApi")
        .unwrap();
    assert_eq!(
        by_api["would_run"],
        format!("would run: {script} ByApi"),
        "the expanded argv"
    );
    assert!(marked(&marker).is_empty(), "nothing ran before approval");
    let page = support::get_text(&format!("{}/", sentinel.url))
        .await
        .unwrap();
    assert!(
        page.contains(&id_of("ByApi")),
        "the page lists the proposal"
    );

    // The alert, with what it would do.
    let alert = eventually("RecoveryActionAwaitingApproval", || async {
        let alerts = get_json(&format!("{}/api/v1/alerts", sentinel.url), &[]).await;
        alerts["data"]["alerts"].as_array().and_then(|a| {
            a.iter()
                .find(|x| {
                    x["labels"]["alertname"] == "RecoveryActionAwaitingApproval"
                        && x["labels"]["proposal"] == id_of("ByApi").as_str()
                })
                .cloned()
        })
    })
    .await;
    assert_eq!(alert["labels"]["action"], "mark");
    assert_eq!(alert["labels"]["node_id"], "node-a");
    assert_eq!(
        alert["labels"]["would_run"],
        format!("would run: {script} ByApi")
    );

    // Without the token: refused, nothing changes.
    let url = |id: &str, verb: &str| format!("{}/api/v1/actions/runs/{id}/{verb}", sentinel.url);
    let refused = http()
        .post(url(&id_of("ByApi"), "approve"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // Approved through the API by alice.
    let approved = http()
        .post(url(&id_of("ByApi"), "approve"))
        .query(&[("by", "alice")])
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200, "{}", approved.text().await.unwrap());
    // Rejected through the API.
    let rejected = http()
        .post(url(&id_of("Rejected"), "reject"))
        .query(&[("by", "carol")])
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 200);
    // Approved through the CLI by bob, the token from a file.
    let token_file = sentinel.dir.path().join("token");
    let (code, out, err) = cli(&[
        "actions",
        "approve",
        &id_of("ByCli"),
        "--url",
        &sentinel.url,
        "--token-file",
        token_file.to_str().unwrap(),
        "--by",
        "bob",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("approved"), "{out}");
    // An answered proposal cannot be answered again.
    let again = http()
        .post(url(&id_of("ByApi"), "approve"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);

    for alert in ["ByApi", "ByCli"] {
        record(&sentinel, &format!("{alert}'s run"), |r| {
            r["result"] == "success" && r["alertname"] == alert
        })
        .await;
    }
    let mut ran = marked(&marker);
    ran.sort();
    assert_eq!(ran, ["ByApi", "ByCli"], "only the approved ones ran");
    let runs = action_runs(&sentinel).await;
    let answer = |result: &str, alert: &str| {
        runs.iter()
            .find(|r| r["result"] == result && r["alertname"] == alert)
            .unwrap_or_else(|| panic!("no {result} record for {alert}: {runs:?}"))
            .clone()
    };
    assert!(answer("approved", "ByApi")["output"]
        .as_str()
        .unwrap()
        .contains("alice"));
    assert!(answer("approved", "ByCli")["output"]
        .as_str()
        .unwrap()
        .contains("bob"));
    assert!(answer("rejected", "Rejected")["output"]
        .as_str()
        .unwrap()
        .contains("carol"));
    assert!(answer("approved", "ByApi")["at_ms"].as_i64().unwrap() > 0);
    assert!(guard(&sentinel).await["proposals"]
        .as_array()
        .unwrap()
        .is_empty());
    // The next collection shows what the dispatcher published.
    let m = sentinel
        .metrics_until("no proposal left in the metrics", |m| {
            sample(m, "ipfs_sentinel_actions_awaiting_approval", &[]) == Some(0.0)
        })
        .await;
    assert_eq!(
        sample(
            &m,
            "ipfs_sentinel_actions_total",
            &[("action", "mark"), ("result", "rejected")]
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_proposal_survives_a_restart_and_runs_when_approved() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let script = marker_script(dir.path(), &marker);
    let extra = format!(
        "    recovery_actions:\n      mark: {{command: ['{script}', '{{alertname}}'], target: local, approval: required}}\n"
    );
    let mut sentinel = start(
        dir,
        &rules(&["Waiting".to_owned()], "mark", now_s() + 3600),
        &extra,
    )
    .await;
    let id = eventually("the proposal", || async {
        guard(&sentinel).await["proposals"][0]["id"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    sentinel.process.terminate();
    let dir = std::mem::replace(&mut sentinel.dir, tempfile::tempdir().unwrap());
    let data = dir.path().join("data");
    let sentinel = restart(dir, &data, &extra).await;
    let after = guard(&sentinel).await;
    assert_eq!(after["proposals"][0]["id"], id.as_str(), "{after}");
    let approved = http()
        .post(format!("{}/api/v1/actions/runs/{id}/approve", sentinel.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);
    record(&sentinel, "the approved run", |r| r["result"] == "success").await;
    assert_eq!(marked(&marker), ["Waiting"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_storm_opens_the_breaker_which_closes_after_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let script = marker_script(dir.path(), &marker);
    let names: Vec<String> = (0..20).map(|i| format!("Storm{i:02}")).collect();
    let sentinel = start(
        dir,
        &rules(&names, "mark", now_s() + 3600),
        &format!(
            "    alerts:\n      - {{name: RecoveryCircuitOpen, metric: actions.circuit_open, threshold: 0, operator: '>', severity: critical}}\n    recovery_actions:\n      mark: {{command: ['{script}', '{{alertname}}'], target: local, cooldown_seconds: 0, max_runs: 1}}\n    actions:\n      circuit_breaker: {{max_runs: 5, per_seconds: 8}}\n"
        ),
    )
    .await;
    let m = sentinel
        .metrics_until("fifteen runs refused by the open breaker", |m| {
            sample(
                m,
                "ipfs_sentinel_actions_total",
                &[("action", "mark"), ("result", "skipped_circuit_open")],
            ) == Some(15.0)
        })
        .await;
    assert_eq!(
        sample(
            &m,
            "ipfs_sentinel_actions_total",
            &[("action", "mark"), ("result", "success")]
        )
        .unwrap_or(0.0)
            + 15.0,
        20.0,
        "five ran"
    );
    eventually("RecoveryCircuitOpen to fire", || async {
        let alerts = get_json(&format!("{}/api/v1/alerts", sentinel.url), &[]).await;
        alerts["data"]["alerts"].as_array().and_then(|a| {
            a.iter()
                .find(|x| {
                    x["labels"]["alertname"] == "RecoveryCircuitOpen" && x["state"] == "firing"
                })
                .cloned()
        })
    })
    .await;
    // It closes by itself once its window has passed.
    sentinel
        .metrics_until("the breaker to close", |m| {
            sample(m, "ipfs_sentinel_actions_circuit_open", &[]) == Some(0.0)
        })
        .await;
    assert_eq!(marked(&marker).len(), 5);
    let page = support::get_text(&format!("{}/", sentinel.url))
        .await
        .unwrap();
    assert!(
        page.contains("Circuit breaker"),
        "the page shows the breaker"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_breaker_survives_a_restart_and_a_reset_closes_it() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let script = marker_script(dir.path(), &marker);
    let names: Vec<String> = (0..4).map(|i| format!("Storm{i}")).collect();
    let extra = format!(
        "    recovery_actions:\n      mark: {{command: ['{script}', '{{alertname}}'], target: local, cooldown_seconds: 0, max_runs: 1}}\n    actions:\n      circuit_breaker: {{max_runs: 2, per_seconds: 3600}}\n"
    );
    let mut sentinel = start(dir, &rules(&names, "mark", now_s() + 3600), &extra).await;
    eventually("the breaker to open", || async {
        (guard(&sentinel).await["circuit"]["open"] == true).then_some(())
    })
    .await;
    sentinel.process.terminate();
    let dir = std::mem::replace(&mut sentinel.dir, tempfile::tempdir().unwrap());
    let data = dir.path().join("data");
    let sentinel = restart(dir, &data, &extra).await;
    assert_eq!(
        guard(&sentinel).await["circuit"]["open"],
        true,
        "still open after the restart"
    );
    let reset = http()
        .post(format!("{}/api/v1/actions/circuit/reset", sentinel.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    let body: Value = reset.json().await.unwrap();
    assert_eq!(body["data"]["was_open"], true);
    assert_eq!(guard(&sentinel).await["circuit"]["open"], false);
    sentinel
        .metrics_until("the gauge to follow", |m| {
            sample(m, "ipfs_sentinel_actions_circuit_open", &[]) == Some(0.0)
        })
        .await;
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_still_running_when_its_alert_resolves_is_stopped_with_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = dir.path().join("hang.sh");
    // Ignores SIGTERM and leaves a child that outlives it unless the group is killed.
    executable(
        &script,
        &format!(
            "#!/bin/sh\ntrap '' TERM\nsleep 300 &\necho $! >> '{p}'\necho $$ >> '{p}'\nwait\n",
            p = pids.display()
        ),
    );
    let end = now_s() + 6;
    let mut text = rules(&["Brief".to_owned()], "hang", end);
    text.push_str(&format!(
        "      - alert: BriefToo\n        expr: vector(time()) < {end}\n        labels: {{action: patient}}\n"
    ));
    let sentinel = start(
        dir,
        &text,
        &format!(
            "    recovery_actions:\n      hang: {{command: ['{}'], target: local, timeout_seconds: 600}}\n      patient: {{command: ['/bin/sh', '-c', 'sleep 9'], target: local, cancel_on_resolve: false}}\n",
            script.display()
        ),
    )
    .await;
    let started: Vec<u32> = eventually("the command and its child", || async {
        let found: Vec<u32> = std::fs::read_to_string(&pids)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        (found.len() == 2).then_some(found)
    })
    .await;
    let cancelled = record(&sentinel, "the cancelled run", |r| {
        r["result"] == "cancelled"
    })
    .await;
    assert!(
        cancelled["output"].as_str().unwrap().contains("cancelled"),
        "{cancelled}"
    );
    for pid in started {
        assert!(!alive(pid), "process {pid} outlived the cancel");
    }
    // cancel_on_resolve: false runs on to its end, as before.
    let patient = record(&sentinel, "the patient run", |r| {
        r["action"] == "patient" && r["attempt"] == 1
    })
    .await;
    assert_eq!(patient["result"], "success", "{patient}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fix_that_did_not_help_is_recorded_still_firing_and_escalates() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let script = marker_script(dir.path(), &marker);
    let end = now_s() + 3600;
    let brief_end = now_s() + 3;
    let mut text = rules(&["Stubborn".to_owned()], "fix", end);
    text.push_str(&format!(
        "      - alert: Brief\n        expr: vector(time()) < {brief_end}\n        labels: {{action: fix_briefly}}\n"
    ));
    let sentinel = start(
        dir,
        &text,
        &format!(
            "    recovery_actions:\n      fix: {{command: ['true'], target: local, verify_after_seconds: 2, escalate_to: page, escalate_after_seconds: 3600}}\n      fix_briefly: {{command: ['true'], target: local, verify_after_seconds: 6}}\n      page: {{command: ['{script}', '{{alertname}}'], target: local}}\n"
        ),
    )
    .await;
    let still = record(&sentinel, "still_firing", |r| r["result"] == "still_firing").await;
    assert_eq!(still["action"], "fix");
    assert!(
        still["output"]
            .as_str()
            .unwrap()
            .contains("escalating to page"),
        "{still}"
    );
    let escalated = record(&sentinel, "the escalation's run", |r| {
        r["action"] == "page" && r["result"] == "success"
    })
    .await;
    assert_eq!(escalated["trigger"], "escalation");
    assert_eq!(marked(&marker), ["Stubborn"]);
    let resolved = record(&sentinel, "resolved", |r| r["result"] == "resolved").await;
    assert_eq!(resolved["action"], "fix_briefly");
}

/// A peer sentinel for the cluster view: it answers /api/v1/status as `node_id`.
async fn peer(node_id: &str, peers: &[String]) -> Sentinel {
    let peers: Vec<String> = peers.iter().map(|p| format!("'{p}'")).collect();
    Sentinel::start(&format!(
        "ipfs:\n  api_url: http://127.0.0.1:9\n  timeout_seconds: 1\ncluster:\n  node_id: {node_id}\n  peers: [{}]\n  monitoring:\n    collection_interval_seconds: 1\n    collector_timeout_seconds: 1\n",
        peers.join(", ")
    ))
    .await
}

const A: &str = "12D3KooWNodeA";
const B: &str = "12D3KooWNodeB";
const C: &str = "12D3KooWNodeC";

#[tokio::test(flavor = "multi_thread")]
async fn a_partitioned_sentinel_does_not_repin_and_a_healthy_majority_does_at_most_max_pins() {
    let stand_in = IpfsClusterStandIn::start(
        ClusterState {
            peers: vec![
                ClusterState::peer(A, "node-a", ""),
                ClusterState::peer(B, "node-b", ""),
                ClusterState::peer(C, "node-c", ""),
            ],
            pins: Vec::new(),
            allocations: vec![
                ClusterState::replicated("QmOnC1", &[A, C], 2, 2),
                ClusterState::replicated("QmOnC2", &[B, C], 2, 2),
                ClusterState::replicated("QmOnB", &[A, B], 2, 2),
            ],
        },
        "sentinel:s3cret",
    )
    .await;
    let mut b = peer("node-b", &[]).await;
    let mut c = peer("node-c", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.auth"), "sentinel:s3cret\n").unwrap();
    let config = format!(
        "ipfs:\n  api_url: http://127.0.0.1:9\n  timeout_seconds: 1\ncluster:\n  node_id: node-a\n  peers: ['{}', '{}']\n  peer_timeout_seconds: 1\n  offline_after_seconds: 2\n  ipfs_cluster:\n    api_url: {}\n    basic_auth_file: {}\n  monitoring:\n    collection_interval_seconds: 1\n    collector_timeout_seconds: 3\n    alerts:\n      - {{metric: node.status, threshold: Offline, operator: '==', severity: critical, action: repin}}\n    recovery_actions:\n      repin: {{builtin: reallocate_pins, max_pins: 1}}\n",
        b.url,
        c.url,
        stand_in.url,
        dir.path().join("cluster.auth").display()
    );
    let data = dir.path().join("data");
    let a = Sentinel::start_in(free_port(), &config, &data, dir).await;
    a.metrics_until("node-a to see node-b and node-c", |m| {
        ["node-b", "node-c"].iter().all(|n| {
            sample(
                m,
                "ipfs_sentinel_cluster_node_status",
                &[("node_id", n), ("status", "Offline")],
            ) == Some(0.0)
        })
    })
    .await;

    // node-c goes away; node-a still sees node-b: a healthy majority, so it re-pins node-c's
    // pins, one per run.
    c.process.stop();
    // IPFS Cluster sees its peer on node-c gone too.
    stand_in.state.lock().unwrap().peers[2] =
        ClusterState::peer(C, "node-c", "context deadline exceeded");
    let run = record(&a, "the re-pin for node-c", |r| {
        r["action"] == "repin" && r["node_id"] == "node-c" && r["result"] == "success"
    })
    .await;
    assert!(
        run["output"]
            .as_str()
            .unwrap()
            .contains("1 left for the next run (max_pins 1)"),
        "{run}"
    );
    let written: Vec<String> = stand_in.pin_requests().into_iter().map(|r| r.cid).collect();
    assert_eq!(written.len(), 1, "max_pins 1: {written:?}");
    assert!(written[0].starts_with("QmOnC"), "{written:?}");

    // node-b goes away too: node-a sees 2 of 3 nodes Offline, likely cut off itself.
    b.process.stop();
    stand_in.state.lock().unwrap().peers[1] =
        ClusterState::peer(B, "node-b", "context deadline exceeded");
    let refused = record(&a, "the refused re-pin for node-b", |r| {
        r["action"] == "repin" && r["node_id"] == "node-b"
    })
    .await;
    assert_eq!(refused["result"], "skipped_partition", "{refused}");
    assert!(
        refused["output"]
            .as_str()
            .unwrap()
            .contains("2 of 3 nodes Offline"),
        "{refused}"
    );
    assert_eq!(
        stand_in.pin_requests().len(),
        1,
        "the partitioned sentinel called no re-pin endpoint"
    );
    stand_in.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_action_runs_only_when_its_precondition_returns_something() {
    let dir = tempfile::tempdir().unwrap();
    let end = now_s() + 3600;
    let mut text = rules(&["Unmet".to_owned()], "unmet", end);
    text.push_str(&format!(
        "      - alert: Met\n        expr: vector(time()) < {end}\n        labels: {{action: met}}\n"
    ));
    let sentinel = start(
        dir,
        &text,
        "    recovery_actions:\n      unmet: {command: ['true'], target: local, when: 'ipfs_sentinel_build_info > 2'}\n      met: {command: ['true'], target: local, when: 'ipfs_sentinel_build_info == 1'}\n",
    )
    .await;
    let skipped = record(&sentinel, "the unmet precondition", |r| {
        r["result"] == "skipped_precondition"
    })
    .await;
    assert_eq!(skipped["action"], "unmet");
    assert!(
        skipped["output"]
            .as_str()
            .unwrap()
            .contains("`when: ipfs_sentinel_build_info > 2` returned nothing"),
        "{skipped}"
    );
    record(&sentinel, "the met precondition's run", |r| {
        r["action"] == "met" && r["result"] == "success"
    })
    .await;
    assert!(
        !action_runs(&sentinel)
            .await
            .iter()
            .any(|r| r["action"] == "unmet" && r["result"] == "success"),
        "the unmet one never ran"
    );
}

#[test]
fn a_broken_precondition_is_refused_at_load_and_the_old_on_resolved_key_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("s.yaml");
    std::fs::write(
        &config,
        "cluster:\n  monitoring:\n    recovery_actions:\n      fix:\n        command: ['true']\n        when: 'rate(ipfs_sentinel_ipfs_up[5m'\n",
    )
    .unwrap();
    let (code, out, err) = cli(&["check-config", config.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("cluster.monitoring.recovery_actions.fix.when") && err.contains(":6:"),
        "names the action, the key and the line: {err}"
    );
    std::fs::write(
        &config,
        "cluster:\n  monitoring:\n    recovery_actions:\n      fix: {command: ['true'], on_resolved: true, approval: required, cancel_on_resolve: false}\n",
    )
    .unwrap();
    let (code, out, err) = cli(&["check-config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_being_verified_is_verified_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "    recovery_actions:\n      fix: {command: ['true'], target: local, verify_after_seconds: 8}\n";
    let mut sentinel = start(
        dir,
        &rules(&["Stubborn".to_owned()], "fix", now_s() + 3600),
        extra,
    )
    .await;
    eventually("the run to wait for verification", || async {
        (guard(&sentinel).await["verifying"] == 1).then_some(())
    })
    .await;
    sentinel.process.terminate();
    let dir = std::mem::replace(&mut sentinel.dir, tempfile::tempdir().unwrap());
    let data = dir.path().join("data");
    let sentinel = restart(dir, &data, extra).await;
    assert_eq!(
        guard(&sentinel).await["verifying"],
        1,
        "still waiting after the restart"
    );
    let still = record(&sentinel, "the verdict", |r| r["result"] == "still_firing").await;
    assert_eq!(still["action"], "fix");
    assert_eq!(guard(&sentinel).await["verifying"], 0);
}
