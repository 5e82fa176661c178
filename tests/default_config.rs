//! `print-default-config` shows every key: the keys of the configuration's serde structs, read
//! from the structs themselves (each struct refuses unknown keys and lists the ones it knows),
//! must each appear in the embedded default, active or commented out. A new key without a line
//! in `src/default-config.yaml` fails here.

use std::collections::BTreeSet;

use ipfs_sentinel::config::{Config, ConfigError, EMBEDDED_DEFAULT};

const PROBE: &str = "__probe__";

/// One step of a key path: a key, an item of a list, or an entry of a map (any name).
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Item,
    Entry,
}

/// A configuration holding, at `path`, a mapping with only the unknown key [`PROBE`].
fn probe_yaml(path: &[Step]) -> String {
    let mut yaml = format!("{{{PROBE}: 1}}");
    for step in path.iter().rev() {
        yaml = match step {
            Step::Key(k) => format!("{{{k}: {yaml}}}"),
            Step::Item => format!("[{yaml}]"),
            Step::Entry => format!("{{some_name: {yaml}}}"),
        };
    }
    yaml
}

/// The keys the struct at `path` knows, when a struct stands there: serde's "unknown field
/// `__probe__`, expected one of `a`, `b`" lists them.
fn struct_keys(path: &[Step]) -> Option<Vec<String>> {
    let Err(ConfigError::Invalid { reason, .. }) = Config::parse(&probe_yaml(path), "probe.yaml")
    else {
        return None;
    };
    // serde-saphyr words it `expected one of a, b, c` (serde itself: `` `a`, `b` ``).
    let expected = reason.strip_prefix(&format!("unknown field `{PROBE}`, expected "))?;
    let expected = expected.strip_prefix("one of ").unwrap_or(expected);
    Some(
        expected
            .split(", ")
            .flat_map(|s| s.split(" or "))
            .map(|s| s.trim().trim_matches('`').to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

/// Every key path of the configuration's structs, map names as `*`, list items left out.
fn serde_keys(path: &mut Vec<Step>, into: &mut BTreeSet<String>) {
    let Some(keys) = struct_keys(path) else {
        return;
    };
    for key in keys {
        path.push(Step::Key(key));
        into.insert(dotted(path));
        for inner in [None, Some(Step::Item), Some(Step::Entry)] {
            if let Some(step) = inner.clone() {
                path.push(step);
            }
            if struct_keys(path).is_some() {
                serde_keys(path, into);
            }
            if inner.is_some() {
                path.pop();
            }
        }
        path.pop();
    }
}

fn dotted(path: &[Step]) -> String {
    path.iter()
        .filter_map(|s| match s {
            Step::Key(k) => Some(k.as_str()),
            Step::Item => None,
            Step::Entry => Some("*"),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Every key path the default file shows, active or commented out: comments that hold a
/// `key:` are read as if uncommented; keys of flow mappings (`{a: 1, b: {c: 2}}`) count too.
fn shown_keys(text: &str) -> BTreeSet<Vec<String>> {
    let mut shown = BTreeSet::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    for line in text.lines() {
        let line = match line.trim_start().strip_prefix("# ") {
            Some(rest) => format!("{}{rest}", " ".repeat(line.len() - line.trim_start().len())),
            None => line.to_owned(),
        };
        let mut body = line.trim_start();
        let mut indent = line.len() - body.len();
        if let Some(item) = body.strip_prefix("- ") {
            body = item;
            indent += 2;
        }
        let parents = |path: &Vec<(usize, String)>| -> Vec<String> {
            path.iter()
                .filter(|(i, _)| *i < indent)
                .map(|(_, k)| k.clone())
                .collect()
        };
        if body.starts_with('{') {
            let parent = parents(&path);
            flow_keys(
                &body[..body.rfind('}').map_or(body.len(), |e| e + 1)],
                &parent,
                &mut shown,
            );
            continue;
        }
        let Some((key, value)) = body.split_once(':') else {
            continue;
        };
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            continue;
        }
        path.retain(|(i, _)| *i < indent);
        path.push((indent, key.to_owned()));
        let keys: Vec<String> = path.iter().map(|(_, k)| k.clone()).collect();
        let value = value.split(" #").next().unwrap_or("").trim();
        if value.starts_with('{') {
            flow_keys(value, &keys, &mut shown);
        }
        shown.insert(keys);
    }
    shown
}

/// The keys of a flow mapping, under `parent`.
fn flow_keys(flow: &str, parent: &[String], shown: &mut BTreeSet<Vec<String>>) {
    let Ok(value) = serde_saphyr::from_str::<serde_json::Value>(flow) else {
        return;
    };
    fn walk(v: &serde_json::Value, at: &mut Vec<String>, shown: &mut BTreeSet<Vec<String>>) {
        if let serde_json::Value::Object(map) = v {
            for (k, inner) in map {
                at.push(k.clone());
                shown.insert(at.clone());
                walk(inner, at, shown);
                at.pop();
            }
        }
    }
    walk(&value, &mut parent.to_vec(), shown);
}

fn is_shown(key: &str, shown: &BTreeSet<Vec<String>>) -> bool {
    let want: Vec<&str> = key.split('.').collect();
    shown.iter().any(|have| {
        have.len() == want.len() && have.iter().zip(&want).all(|(h, w)| *w == "*" || h == w)
    })
}

#[test]
fn the_default_config_shows_every_key_of_the_configuration() {
    let mut keys = BTreeSet::new();
    serde_keys(&mut Vec::new(), &mut keys);
    for expected in [
        "cluster.peer_token_file",
        "cluster.monitoring.datasource.type",
        "cluster.monitoring.recovery_actions.*.webhook.bearer_token_file",
        "cluster.monitoring.actions.routes.match_labels",
        "cluster.monitoring.alerts.annotations",
        "cluster.dashboard.port",
    ] {
        assert!(
            keys.contains(expected),
            "the walk over the structs finds {expected}: {keys:?}"
        );
    }
    let shown = shown_keys(EMBEDDED_DEFAULT);
    let missing: Vec<&String> = keys.iter().filter(|k| !is_shown(k, &shown)).collect();
    assert!(
        missing.is_empty(),
        "src/default-config.yaml does not show {missing:?} (add each, commented out if optional, with its meaning)"
    );
}

#[test]
fn the_walk_notices_a_key_the_default_leaves_out() {
    let shown = shown_keys(&EMBEDDED_DEFAULT.replace("peer_token_file", "peer_token_fil"));
    assert!(!is_shown("cluster.peer_token_file", &shown));
    assert!(is_shown("cluster.peer_timeout_seconds", &shown));
    assert!(is_shown(
        "cluster.monitoring.recovery_actions.*.alertmanager.urls",
        &shown
    ));
}

#[test]
fn the_embedded_default_parses_with_its_comments_inactive() {
    let config = Config::parse(EMBEDDED_DEFAULT, "default").unwrap();
    assert!(config.cluster.monitoring.recovery_actions.is_empty());
    assert!(config.cluster.monitoring.datasource.is_none());
    assert!(config.cluster.ipfs_cluster.is_none());
    assert_eq!(config.cluster.dashboard.port, None);
    // Disk and memory, and the two guardrail alerts (awaiting approval, circuit open); the
    // Offline alert is commented out, since without peers it could never fire.
    assert_eq!(config.cluster.monitoring.alerts.len(), 4);
}
