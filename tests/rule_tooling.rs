//! Rule tooling as operators use it beside promtool: `check-rules` reaches promtool's verdicts,
//! and `rules export` writes a file that `promtool check rules` accepts.

mod support;

use std::path::Path;
use std::process::Command;

use support::{cli, temp_file};

fn promtool_check_rules(file: &Path) -> bool {
    Command::new("promtool")
        .args(["check", "rules"])
        .arg(file)
        .output()
        .expect("promtool (Debian's prometheus package; the README's test command installs it)")
        .status
        .success()
}

#[test]
#[ignore = "needs Debian's prometheus (promtool); the README's test command runs it"]
fn exported_rules_pass_promtool_and_check_rules_agrees_with_it() {
    let config =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/short-form.yaml");
    let (code, exported, err) = cli(&["rules", "export", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        exported.contains("alert: NodeStatusOffline") && exported.contains("for: 5m"),
        "{exported}"
    );
    let (_dir, file) = temp_file("exported.yml", &exported);
    assert!(
        promtool_check_rules(&file),
        "promtool accepts the export:\n{exported}"
    );

    for (text, valid) in [
        ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 5m\n", true),
        ("groups:\n  - name: g\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n", true),
        ("groups:\n  - name: g\n    rules:\n      - record: x\n        expr: up\n        for: 5m\n", false),
        ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(up\n", false),
        ("groups:\n  - name: g\n  - name: g\n", false),
        ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations: {s: '{{ $value '}\n", false),
    ] {
        let (_dir, file) = temp_file("r.yml", text);
        assert_eq!(promtool_check_rules(&file), valid, "promtool on:\n{text}");
        let (code, out, err) = cli(&["check-rules", file.to_str().unwrap()]);
        assert_eq!(code == 0, valid, "check-rules on:\n{text}\n{out}{err}");
        if !valid {
            assert!(err.starts_with(file.to_str().unwrap()), "the error names the file: {err}");
        }
    }
}

#[test]
fn the_bundled_rules_load_in_the_sentinel() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/ipfs-sentinel.rules.yml");
    let (code, out, err) = cli(&["check-rules", rules.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("SUCCESS: 14 rules found"), "{out}");
}

/// Rule files whose durations Prometheus refuses: units out of order or repeated.
const OUT_OF_ORDER: [(&str, &str); 3] = [
    (
        "1m1h",
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 1m1h\n",
    ),
    (
        "5m5m",
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 5m5m\n",
    ),
    (
        "1m1h",
        "groups:\n  - name: g\n    interval: 1m1h\n    rules:\n      - record: r\n        expr: up\n",
    ),
];

#[test]
fn durations_out_of_order_or_repeated_are_refused_where_they_stand() {
    for (duration, text) in OUT_OF_ORDER {
        let (_dir, file) = temp_file("r.yml", text);
        let (code, out, err) = cli(&["check-rules", file.to_str().unwrap()]);
        assert_ne!(code, 0, "check-rules accepted {duration}:\n{out}");
        let line = text.lines().position(|l| l.contains(duration)).unwrap() + 1;
        assert!(
            err.contains(&format!("{}:{line}:", file.display()))
                && err.contains(&format!("not a valid duration string: \"{duration}\"")),
            "{err}"
        );
    }
}

#[test]
#[ignore = "needs Debian's prometheus (promtool); the README's test command runs it"]
fn durations_out_of_order_or_repeated_are_refused_as_promtool_refuses_them() {
    for (duration, text) in OUT_OF_ORDER {
        let (_dir, file) = temp_file("r.yml", text);
        let promtool = Command::new("promtool")
            .args(["check", "rules"])
            .arg(&file)
            .output()
            .expect("promtool");
        let said = String::from_utf8_lossy(&promtool.stderr).into_owned()
            + &String::from_utf8_lossy(&promtool.stdout);
        let reason = format!("not a valid duration string: \"{duration}\"");
        assert!(
            !promtool.status.success() && said.contains(&reason),
            "{said}"
        );
        let (code, _, err) = cli(&["check-rules", file.to_str().unwrap()]);
        assert!(code != 0 && err.contains(&reason), "{err}");
    }
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rules")
        .join(name)
}

/// Every error of the file, each on a line of its own naming file:line:column, the group, the
/// rule and the field.
#[test]
fn check_rules_lists_every_error_in_a_file() {
    let file = fixture("errors.rules.yml");
    let name = file.to_str().unwrap();
    let (code, out, err) = cli(&["check-rules", name]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAILED"), "{out}");
    let lines: Vec<&str> = err.lines().collect();
    let expected = [
        ":6:15: group \"first\", rule 1 (A): could not parse expression: unclosed left parenthesis",
        ":9:14: group \"first\", rule 2 (x): invalid field 'for' in recording rule",
        ":13:21: group \"first\", rule 3 (B): invalid label name: bad-name",
        ":15:20: group \"first\", rule 3 (B): annotations.summary: template: __alert_B:1: unclosed action",
        ":18:17: group \"second\", rule 1 (bad name): invalid recording rule name: bad name",
        ":23:14: group \"second\", rule 2 (C): annotations.s: template: __alert_C:1: function \"nosuchfunc\" not defined",
    ];
    assert_eq!(lines.len(), expected.len(), "{err}");
    for (line, want) in lines.iter().zip(expected) {
        assert!(
            line.starts_with(&format!("{name}{want}")),
            "{line}\nwanted {want}"
        );
    }
}

/// promtool 2.42 lists the same number of errors for the same file.
#[test]
#[ignore = "needs Debian's prometheus (promtool); the README's test command runs it"]
fn check_rules_lists_as_many_errors_as_promtool() {
    let file = fixture("errors.rules.yml");
    let promtool = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool (Debian's prometheus package; the README's test command installs it)");
    let promtool_errors = String::from_utf8_lossy(&promtool.stderr)
        .lines()
        .filter(|l| l.contains("group \""))
        .count();
    let (_, _, err) = cli(&["check-rules", file.to_str().unwrap()]);
    assert_eq!(promtool_errors, 6, "promtool lists every error too");
    assert_eq!(err.lines().count(), promtool_errors, "{err}");
}

/// A group's `query_offset` (Prometheus 2.53+, which promtool 2.42 does not know) moves its
/// queries back: the fixture passes, and the same rules without the offset fail it.
#[test]
fn query_offset_moves_a_groups_queries_back() {
    let test = fixture("query_offset.test.yml");
    let (code, out, err) = cli(&["test-rules", test.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("SUCCESS"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string(fixture("query_offset.rules.yml")).unwrap();
    let without = rules.replace("    query_offset: 2m\n", "");
    assert_ne!(rules, without);
    std::fs::write(dir.path().join("query_offset.rules.yml"), without).unwrap();
    let copy = dir.path().join("query_offset.test.yml");
    std::fs::copy(&test, &copy).unwrap();
    let (code, out, _) = cli(&["test-rules", copy.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("alertname: QueueLong, time: 4m"), "{out}");
}

/// Templates with Prometheus's functions load in check-rules as they do in promtool, and a
/// rule file export keeps a group's query_offset and limit.
#[test]
fn template_functions_and_group_fields_load() {
    let conformance = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    for name in ["templates.rules.yml", "limits.rules.yml"] {
        let (code, out, err) = cli(&["check-rules", conformance.join(name).to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {out}{err}");
    }
    let rules = std::fs::read_to_string(fixture("query_offset.rules.yml")).unwrap();
    let groups =
        ipfs_sentinel::rules::load::parse_file(&rules, "q.yml", Default::default()).unwrap();
    assert_eq!(groups[0].query_offset_ms, Some(120_000));
    let exported = ipfs_sentinel::rules::rulefile::to_yaml(&groups, 60_000).unwrap();
    assert!(exported.contains("query_offset: 2m"), "{exported}");
}

/// `cluster.monitoring.rule_query_offset_seconds` reaches the rule engine as the default
/// offset, and a negative one is refused naming the key.
#[test]
fn the_global_query_offset_is_read_from_the_configuration() {
    use ipfs_sentinel::config::Config;
    let config = Config::parse(
        "cluster:\n  monitoring:\n    rule_query_offset_seconds: 30\n",
        "sentinel.yaml",
    )
    .unwrap();
    let globals = ipfs_sentinel::rules::reload::globals(&config).unwrap();
    assert_eq!(globals.query_offset_ms, 30_000);
    let default = Config::parse("cluster: {}\n", "sentinel.yaml").unwrap();
    assert_eq!(
        ipfs_sentinel::rules::reload::globals(&default)
            .unwrap()
            .query_offset_ms,
        0
    );
    let err = Config::parse(
        "cluster:\n  monitoring:\n    rule_query_offset_seconds: -5\n",
        "sentinel.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("rule_query_offset_seconds"), "{err}");
}

/// `--promql` chooses the semantics: a test written against promtool 2.42 whose rate reads a
/// sample at its window's start passes in 2.42's closed windows and fails in 3.x's left-open
/// ones (as it fails in promtool 3); an unknown name is refused with the names that work.
#[test]
fn the_promql_flag_chooses_the_semantics() {
    let test =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/constructs_pass.test.yml");
    let test = test.to_str().unwrap();
    let (code, out, err) = cli(&["test-rules", "--promql", "prometheus-2.42", test]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = cli(&["test-rules", test]);
    assert_eq!(code, 1, "3.x is the default: {out}");
    assert!(out.contains("alertname: HighRate, time: 17m"), "{out}");
    let (code, out, _) = cli(&["test-rules", "--promql", "prometheus-3", test]);
    assert_eq!(code, 1, "{out}");
    let (code, _, err) = cli(&["test-rules", "--promql", "prometheus-4", test]);
    assert_eq!(code, 2);
    assert!(
        err.contains("write prometheus-3") && err.contains("prometheus-2.42"),
        "{err}"
    );
}
