//! Configuration as a user meets it: a short-form file as first written loads unchanged, and each broken file gets
//! one line naming file, line, column and key path, from `check-config` and from `serve` alike.

mod support;

use std::path::Path;

use support::{cli, temp_file};

/// The host name, `cluster.node_id`'s default.
fn gethostname_for_test() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

fn short_form_config() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/short-form.yaml"),
    )
    .unwrap()
}

#[test]
fn the_short_form_config_loads_and_means_what_it_says() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/short-form.yaml");
    let (code, out, err) = cli(&["check-config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 alert(s)"), "{out}");
    let host = gethostname_for_test();
    assert!(
        out.contains(&format!(
            "labels added to every alert that lacks them: node_id={host:?}"
        )),
        "the alert identity, this node's id (the host name by default): {out}"
    );
    assert!(out.contains("node.disk_usage_percent >= 90"), "{out}");
    assert!(
        out.contains("100 * ipfs_sentinel_node_disk_usage_ratio >= 90"),
        "{out}"
    );
    assert!(
        out.contains("node.status == Offline (critical, for 5m) -> reallocate_pins"),
        "{out}"
    );
    assert!(
        out.contains("ipfs_sentinel_cluster_node_status{status=\"Offline\"} == 1"),
        "{out}"
    );
    assert!(
        out.contains("reallocate_pins: built-in reallocate_pins"),
        "{out}"
    );
    assert!(
        out.contains("notify_admin: script /path/to/notify_script.sh {node_id} {details}"),
        "{out}"
    );
    assert!(out.contains("collection every 60s"), "{out}");
}

/// (what is broken, the edit, the expected `:line:column: path: reason` start). Where a `|`
/// stands, the column is not checked: serde-saphyr places the first value of a flow mapping
/// one column early.
const BROKEN: &[(&str, &str, &str, &str)] = &[
    (
        "an unknown key",
        "refresh_interval_seconds: 30",
        "refresh_interval_secs: 30",
        ":16:5: cluster.dashboard.refresh_interval_secs: unknown field `refresh_interval_secs`",
    ),
    (
        "a string where a number goes",
        "collection_interval_seconds: 60",
        "collection_interval_seconds: often",
        ":4:34: cluster.monitoring.collection_interval_seconds: expected a number, got \"often\"",
    ),
    (
        "a bad operator",
        "operator: '>=', severity: critical",
        "operator: '=>', severity: critical",
        ":8:70: cluster.monitoring.alerts[1].operator: unknown variant `=>`",
    ),
    (
        "an alert naming an undefined action",
        "action: notify_admin}",
        "action: page_admin}",
        ":8:104: cluster.monitoring.alerts[1].action: no recovery action named \"page_admin\"",
    ),
    (
        "a zero interval",
        "collection_interval_seconds: 60",
        "collection_interval_seconds: 0",
        ":4:34: cluster.monitoring.collection_interval_seconds: must be a number greater than 0",
    ),
    (
        "a number threshold on a state",
        "threshold: Offline",
        "threshold: 3",
        ":9:42: cluster.monitoring.alerts[2].threshold: node.status is a state",
    ),
    (
        "an unknown metric",
        "metric: node.memory_usage_percent",
        "metric: node.mem_percent",
        ":8:|: cluster.monitoring.alerts[1].metric: unknown metric \"node.mem_percent\"",
    ),
];

#[test]
fn each_broken_config_gets_one_line_with_file_line_column_and_key_path() {
    for (what, from, to, expected) in BROKEN {
        let text = short_form_config();
        assert!(text.contains(from), "fixture has {from}");
        let (_dir, path) = temp_file("broken.yaml", &text.replacen(from, to, 1));
        let file = path.to_str().unwrap();
        let (code, out, err) = cli(&["check-config", file]);
        assert_eq!(code, 1, "{what}: exit code; out: {out}");
        assert_eq!(err.lines().count(), 1, "{what}: one line, got:\n{err}");
        let (prefix, rest) = expected.split_once('|').unwrap_or((expected, ""));
        let located = err.starts_with(&format!("{file}{prefix}")) && err.contains(rest);
        assert!(located, "{what}:\n  got  {err}  want {file}{expected}...");

        // `serve` refuses to start with the same line.
        let (code, _, serve_err) = cli(&[
            "serve",
            "--config",
            file,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            _dir.path().to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "{what}: serve exit code");
        assert!(
            serve_err.contains(err.trim()),
            "{what}: serve says\n{serve_err}"
        );
    }
}

#[test]
fn an_unreadable_file_says_so() {
    let (code, _, err) = cli(&["check-config", "/nonexistent/sentinel.yaml"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("/nonexistent/sentinel.yaml: cannot read the configuration:"),
        "{err}"
    );
}

#[test]
fn the_embedded_default_is_valid_and_printable() {
    let (code, printed, _) = cli(&["print-default-config"]);
    assert_eq!(code, 0);
    let (_dir, path) = temp_file("default.yaml", &printed);
    let (code, out, err) = cli(&["check-config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("0 recovery action(s)"),
        "nothing runs by default: {out}"
    );
}

#[test]
fn the_readme_documents_every_key_of_the_default_config() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let (_, printed, _) = cli(&["print-default-config"]);
    // Keys as dotted paths from the indentation of the default file.
    let mut path: Vec<(usize, String)> = Vec::new();
    for line in printed.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.starts_with('-') || !trimmed.contains(':') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let key = trimmed.split(':').next().unwrap().to_owned();
        path.retain(|(i, _)| *i < indent);
        path.push((indent, key));
        let dotted: Vec<&str> = path.iter().map(|(_, k)| k.as_str()).collect();
        let dotted = dotted.join(".");
        if dotted.matches('.').count() >= 1 {
            assert!(
                readme.contains(&format!("`{dotted}")),
                "README.md does not document {dotted}"
            );
        }
    }
}

#[test]
fn check_config_checks_the_rule_files_it_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.rules.yml"),
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n",
    )
    .unwrap();
    let config = dir.path().join("sentinel.yaml");
    std::fs::write(
        &config,
        "cluster:\n  monitoring:\n    rule_files: ['*.rules.yml']\n",
    )
    .unwrap();
    let (code, out, err) = cli(&["check-config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("1 rule group(s) with 1 rule(s) from rule_files"),
        "{out}"
    );

    std::fs::write(
        dir.path().join("bad.rules.yml"),
        "groups:\n  - name: b\n    rules:\n      - record: x\n        expr: up\n        for: 5m\n",
    )
    .unwrap();
    let (code, _, err) = cli(&["check-config", config.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "bad.rules.yml:6:14: group \"b\", rule 1 (x): invalid field 'for' in recording rule"
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_duration_flag_takes_prometheus_notation_and_refuses_what_prometheus_refuses() {
    for refused in ["5m5m", "1m1h", "10 seconds"] {
        let (code, _, err) = cli(&["serve", "--web.header-read-timeout", refused]);
        assert_eq!(code, 2, "{refused}: {err}");
        assert!(
            err.contains("--web.header-read-timeout")
                && err.contains(&format!("not a valid duration string: \"{refused}\"")),
            "{err}"
        );
    }
}

#[test]
fn check_config_warns_about_likely_mistakes_and_strict_fails_on_them() {
    let config = "cluster:\n  node_id: a\n  monitoring:\n    alerts:\n      - {metric: node.status, threshold: Offline, operator: '==', severity: critical, action: move}\n      - {metric: node.status, threshold: Degraded, operator: '==', severity: warning}\n    recovery_actions:\n      move: {method: cluster_manager.reallocate_pins}\n";
    let (_dir, path) = temp_file("sentinel.yaml", config);
    let file = path.to_str().unwrap();
    let (code, out, err) = cli(&["check-config", file]);
    assert_eq!(code, 0, "warnings do not fail the check: {err}");
    assert!(out.contains(": valid"), "{out}");
    let warnings: Vec<&str> = err.lines().collect();
    assert_eq!(warnings.len(), 2, "one line each: {err}");
    assert!(
        warnings[0].starts_with(&format!(
            "{file}: cluster.monitoring.recovery_actions.move.method: warning: reallocate_pins"
        )) && warnings[0].contains("cluster.ipfs_cluster is not set"),
        "{err}"
    );
    assert!(
        warnings[1].starts_with(&format!(
            "{file}:5:42: cluster.monitoring.alerts[0].threshold: warning: node.status == Offline can never fire without cluster.peers"
        )),
        "{err}"
    );

    let (code, _, err) = cli(&["check-config", "--strict", file]);
    assert_eq!(code, 1, "--strict fails on warnings: {err}");
    assert!(
        err.ends_with("2 warning(s), and --strict makes them fail the check\n"),
        "{err}"
    );

    // With peers and IPFS Cluster set, nothing to say, strict or not.
    let fixed = config.replace(
        "  node_id: a\n",
        "  node_id: a\n  peers: ['http://10.0.0.2:9401']\n  ipfs_cluster: {api_url: 'http://127.0.0.1:9094'}\n",
    );
    let (_dir, path) = temp_file("sentinel.yaml", &fixed);
    let (code, _, err) = cli(&["check-config", "--strict", path.to_str().unwrap()]);
    assert_eq!((code, err.as_str()), (0, ""));

    // An alert naming an action nobody defined is an error, not a warning.
    let (_dir, path) = temp_file(
        "sentinel.yaml",
        &config.replace("action: move", "action: nowhere"),
    );
    let (code, _, err) = cli(&["check-config", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cluster.monitoring.alerts[0].action: no recovery action named \"nowhere\""),
        "{err}"
    );
}
