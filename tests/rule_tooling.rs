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
