//! `write_relabel_configs`: Prometheus's relabelling (model/relabel/relabel.go, v2.42.0) of one
//! series' labels before it is sent, as a pure function.
//!
//! Owns applying the rules only; reading them is [`crate::config`]'s. Labels here include
//! `__name__` and are kept sorted by name.

use crate::config::{RelabelAction, RelabelConfig};

/// Applies `rules` in order to `labels` (sorted by name, `__name__` included); `None` when a
/// rule drops the series or no label is left.
///
/// ```
/// use ipfs_sentinel::config::{RelabelAction, RelabelConfig, RelabelRegex};
/// use ipfs_sentinel::remote_write::relabel::process;
/// let drop_debug = RelabelConfig {
///     source_labels: vec!["__name__".into()],
///     separator: ";".into(),
///     regex: RelabelRegex::new("go_.*").unwrap(),
///     target_label: String::new(),
///     replacement: "$1".into(),
///     action: RelabelAction::Drop,
/// };
/// let labels = vec![("__name__".to_string(), "go_goroutines".to_string())];
/// assert_eq!(process(labels, &[drop_debug.clone()]), None);
/// let labels = vec![("__name__".to_string(), "ipfs_up".to_string())];
/// assert!(process(labels, &[drop_debug]).is_some());
/// ```
pub fn process(
    mut labels: Vec<(String, String)>,
    rules: &[RelabelConfig],
) -> Option<Vec<(String, String)>> {
    for rule in rules {
        if !apply(&mut labels, rule) {
            return None;
        }
    }
    labels.retain(|(_, v)| !v.is_empty());
    (!labels.is_empty()).then_some(labels)
}

fn get<'a>(labels: &'a [(String, String)], name: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Sets (or, with an empty value, removes) a label, keeping the order by name.
fn set(labels: &mut Vec<(String, String)>, name: &str, value: String) {
    match labels.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
        Ok(i) if value.is_empty() => {
            labels.remove(i);
        }
        Ok(i) => labels[i].1 = value,
        Err(_) if value.is_empty() => {}
        Err(i) => labels.insert(i, (name.to_owned(), value)),
    }
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One rule; false when it drops the series.
fn apply(labels: &mut Vec<(String, String)>, rule: &RelabelConfig) -> bool {
    let joined = rule
        .source_labels
        .iter()
        .map(|name| get(labels, name))
        .collect::<Vec<_>>()
        .join(&rule.separator);
    let regex = &rule.regex.regex;
    match rule.action {
        RelabelAction::Drop => return !regex.is_match(&joined),
        RelabelAction::Keep => return regex.is_match(&joined),
        RelabelAction::Dropequal => return get(labels, &rule.target_label) != joined,
        RelabelAction::Keepequal => return get(labels, &rule.target_label) == joined,
        RelabelAction::Replace => {
            let Some(captures) = regex.captures(&joined) else {
                return true;
            };
            let mut target = String::new();
            captures.expand(&rule.target_label, &mut target);
            if !valid_label_name(&target) {
                return true;
            }
            let mut value = String::new();
            captures.expand(&rule.replacement, &mut value);
            set(labels, &target, value);
        }
        RelabelAction::Lowercase => set(labels, &rule.target_label, joined.to_lowercase()),
        RelabelAction::Uppercase => set(labels, &rule.target_label, joined.to_uppercase()),
        RelabelAction::Labelmap => {
            let mapped: Vec<(String, String)> = labels
                .iter()
                .filter(|(k, _)| regex.is_match(k))
                .map(|(k, v)| {
                    (
                        regex.replace(k, rule.replacement.as_str()).into_owned(),
                        v.clone(),
                    )
                })
                .collect();
            for (k, v) in mapped {
                set(labels, &k, v);
            }
        }
        RelabelAction::Labeldrop => labels.retain(|(k, _)| !regex.is_match(k)),
        RelabelAction::Labelkeep => labels.retain(|(k, _)| regex.is_match(k)),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RelabelRegex;

    fn rule(
        action: RelabelAction,
        source: &[&str],
        regex: &str,
        target: &str,
        replacement: &str,
    ) -> RelabelConfig {
        RelabelConfig {
            source_labels: source.iter().map(|s| (*s).to_owned()).collect(),
            separator: ";".into(),
            regex: RelabelRegex::new(regex).unwrap(),
            target_label: target.into(),
            replacement: replacement.into(),
            action,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<_> = pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replace_writes_the_expanded_replacement_and_an_empty_one_removes_the_label() {
        let l = labels(&[("__name__", "m"), ("instance", "host:9401")]);
        let out = process(
            l.clone(),
            &[rule(
                RelabelAction::Replace,
                &["instance"],
                "(.*):.*",
                "host",
                "${1}",
            )],
        )
        .unwrap();
        assert_eq!(
            out,
            labels(&[
                ("__name__", "m"),
                ("host", "host"),
                ("instance", "host:9401")
            ])
        );
        // Anchored: "host" alone does not match "(.*):.*", nothing changes.
        let out = process(
            labels(&[("__name__", "m"), ("instance", "host")]),
            &[rule(
                RelabelAction::Replace,
                &["instance"],
                "(.*):.*",
                "host",
                "$1",
            )],
        )
        .unwrap();
        assert_eq!(out, labels(&[("__name__", "m"), ("instance", "host")]));
        let out = process(
            l,
            &[rule(RelabelAction::Replace, &[], "(.*)", "instance", "")],
        )
        .unwrap();
        assert_eq!(out, labels(&[("__name__", "m")]));
    }

    #[test]
    fn keep_drop_and_their_equal_forms_decide_whether_the_series_goes() {
        let l = labels(&[("__name__", "m"), ("a", "x"), ("b", "x")]);
        assert!(process(l.clone(), &[rule(RelabelAction::Keep, &["a"], "x", "", "")]).is_some());
        assert!(process(l.clone(), &[rule(RelabelAction::Keep, &["a"], "y", "", "")]).is_none());
        assert!(process(
            l.clone(),
            &[rule(RelabelAction::Drop, &["a", "b"], "x;x", "", "")]
        )
        .is_none());
        assert!(process(
            l.clone(),
            &[rule(RelabelAction::Keepequal, &["a"], "(.*)", "b", "")]
        )
        .is_some());
        assert!(process(
            l,
            &[rule(RelabelAction::Dropequal, &["a"], "(.*)", "b", "")]
        )
        .is_none());
    }

    #[test]
    fn label_name_actions_map_drop_and_keep_by_name() {
        let l = labels(&[("__name__", "m"), ("meta_a", "1"), ("b", "2")]);
        let out = process(
            l.clone(),
            &[rule(RelabelAction::Labelmap, &[], "meta_(.*)", "", "$1")],
        )
        .unwrap();
        assert_eq!(
            out,
            labels(&[("__name__", "m"), ("a", "1"), ("b", "2"), ("meta_a", "1")])
        );
        let out = process(
            l.clone(),
            &[rule(RelabelAction::Labeldrop, &[], "meta_.*", "", "")],
        )
        .unwrap();
        assert_eq!(out, labels(&[("__name__", "m"), ("b", "2")]));
        let out = process(
            l.clone(),
            &[rule(RelabelAction::Labelkeep, &[], "__name__|b", "", "")],
        )
        .unwrap();
        assert_eq!(out, labels(&[("__name__", "m"), ("b", "2")]));
        let l = labels(&[("__name__", "m"), ("a", "x"), ("b", "y")]);
        let out = process(
            l,
            &[rule(RelabelAction::Uppercase, &["a", "b"], "", "c", "")],
        )
        .unwrap();
        assert_eq!(get(&out, "c"), "X;Y");
    }
}
