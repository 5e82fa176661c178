//! The operator alert pack (`rules/ipfs-operator.rules.yml`) as an operator receives it: every
//! alert has a severity, a summary and a description in words, and a `runbook_url` that leads to
//! a section of `docs/runbooks/`; every alert has a unit test where it fires (its words checked)
//! and one where it stays quiet; the file loads in the sentinel, and its unit tests pass in
//! promtool 2.42 and in `test-rules` under both PromQL semantics.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::cli;

const RULES: &str = "rules/ipfs-operator.rules.yml";
const TESTS: &str = "rules/ipfs-operator.rules.test.yml";

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read_yaml(relative: &str) -> Value {
    let text = std::fs::read_to_string(repo_path(relative)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Every alerting rule of the pack, by name.
fn alerts() -> BTreeMap<String, Value> {
    read_yaml(RULES)["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .map(|r| (r["alert"].as_str().unwrap().to_owned(), r))
        .collect()
}

/// The GitHub anchors of a Markdown file's headings (lower case, spaces to dashes).
fn anchors(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .replace(' ', "-")
        })
        .collect()
}

#[test]
fn every_alert_has_words_a_severity_and_a_runbook_section() {
    let alerts = alerts();
    assert!(alerts.len() >= 16, "{:?}", alerts.keys());
    for (name, rule) in &alerts {
        let severity = rule["labels"]["severity"].as_str().unwrap_or("");
        assert!(
            ["info", "warning", "critical"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        let summary = rule["annotations"]["summary"].as_str().unwrap_or("");
        assert!(
            summary.contains("$labels") || summary.contains("$value"),
            "{name}: the summary names the node or the thing: {summary}"
        );
        let description = rule["annotations"]["description"].as_str().unwrap_or("");
        assert!(
            description.contains("humanize") || description.contains("$value"),
            "{name}: the description says the figure: {description}"
        );
        let runbook = rule["annotations"]["runbook_url"].as_str().unwrap_or("");
        let (file, anchor) = runbook
            .split_once('#')
            .unwrap_or_else(|| panic!("{name}: runbook_url {runbook:?} has no anchor"));
        assert!(file.starts_with("docs/runbooks/"), "{name}: {runbook}");
        let page = std::fs::read_to_string(repo_path(file))
            .unwrap_or_else(|e| panic!("{name}: {file}: {e}"));
        assert_eq!(
            anchor,
            name.to_lowercase(),
            "{name}: the anchor is the alert"
        );
        assert!(
            anchors(&page).contains(&anchor.to_owned()),
            "{name}: {file} has no section #{anchor}"
        );
        let section = page
            .split(&format!("## {name}\n"))
            .nth(1)
            .unwrap()
            .split("\n## ")
            .next()
            .unwrap();
        for part in [
            "**Means.**",
            "**Check.**",
            "**Fix.**",
            "**Recovery action.**",
        ] {
            assert!(section.contains(part), "{name}: {file} lacks {part}");
        }
    }
}

#[test]
fn every_alert_is_tested_firing_with_its_words_and_quiet() {
    let alerts = alerts();
    let tests = read_yaml(TESTS);
    let mut firing: BTreeMap<String, usize> = BTreeMap::new();
    let mut quiet: BTreeMap<String, usize> = BTreeMap::new();
    for group in tests["tests"].as_array().unwrap() {
        for case in group["alert_rule_test"].as_array().unwrap() {
            let name = case["alertname"].as_str().unwrap().to_owned();
            let expected = case["exp_alerts"].as_array().unwrap();
            if expected.is_empty() {
                *quiet.entry(name).or_default() += 1;
                continue;
            }
            for alert in expected {
                let words = &alert["exp_annotations"];
                for key in ["summary", "description", "runbook_url"] {
                    assert!(
                        words[key].as_str().is_some_and(|t| !t.contains("{{")),
                        "{name}: the test checks the {key} as rendered: {words}"
                    );
                }
            }
            *firing.entry(name).or_default() += 1;
        }
    }
    for name in alerts.keys() {
        assert!(firing.contains_key(name), "{name} is never tested firing");
        assert!(quiet.contains_key(name), "{name} is never tested quiet");
    }
}

#[test]
fn the_pack_loads_in_the_sentinel() {
    let (code, out, err) = cli(&["check-rules", repo_path(RULES).to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", alerts().len())),
        "{out}"
    );
}

#[test]
#[ignore = "needs Debian's prometheus (promtool 2.42); the README's test command runs it"]
fn the_pack_passes_promtool_and_test_rules_in_both_semantics() {
    let check = Command::new("promtool")
        .args(["check", "rules"])
        .arg(repo_path(RULES))
        .output()
        .expect("promtool");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let promtool = Command::new("promtool")
        .args(["test", "rules"])
        .arg(repo_path(TESTS))
        .output()
        .expect("promtool");
    assert!(
        promtool.status.success(),
        "promtool test rules:\n{}{}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );
    for semantics in [&["--promql", "prometheus-2.42"][..], &[]] {
        let mut args = vec!["test-rules"];
        args.extend_from_slice(semantics);
        let tests = repo_path(TESTS);
        args.push(tests.to_str().unwrap());
        let (code, out, err) = cli(&args);
        assert_eq!(code, 0, "test-rules {semantics:?}:\n{out}{err}");
    }
}
