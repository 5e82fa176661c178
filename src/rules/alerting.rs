//! The alert state machine of one alerting rule, as Prometheus 2.42 runs it
//! (`rules/alerting.go`, `AlertingRule.Eval`).
//!
//! This module owns what happens to alerts between evaluations: turning the rule expression's
//! result into labelled alerts, moving them through inactive → pending → firing → resolved
//! (with `for`, `keep_firing_for` and the 15-minute resolved retention), the rule's alert
//! limit, the `ALERTS`/`ALERTS_FOR_STATE` series Prometheus exposes for them, which alerts are
//! due for sending to Alertmanager, and the state a restart carries over. It does not run
//! queries, expand templates or talk to Alertmanager: callers pass the query result and a
//! template expander in. It never reads the clock either: every call takes the evaluation
//! time in milliseconds since the Unix epoch, so tests drive it with plain numbers.
//!
//! Memory: a rule holds its alerts in one vector ordered by labels, each alert's label values
//! in one allocation and the label names shared by the alerts that have the same
//! ([`AlertLabels`]), since a rule may hold hundreds of thousands of them; each evaluation
//! merges the sorted result into the sorted alerts in one pass.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A label set: label names to values, ordered by name. Empty values mean "no such label".
pub type LabelSet = BTreeMap<String, String>;

/// One series value: its labels (including `__name__`) and its value.
pub type Sample = (LabelSet, f64);

/// One sample of a rule expression's result, its labels held compactly (a round holds every
/// expression's result until the rules have taken it in).
pub type ResultSample = (AlertLabels, f64);

/// A label set held compactly, as alerts and the round's query results hold theirs: a shape
/// (the label names, and the values every set of that shape has, such as a rule's own labels
/// and `alertname`) shared by every label set built alike through one [`SharedNames`] (the
/// alerts of a rule, the samples of an answer), and the other values, kept in the label set
/// itself when they are short (22 bytes) and in one allocation otherwise. So an alert's labels
/// usually cost no allocation of their own, where a [`LabelSet`] costs a tree node and two
/// strings per label. Ordered as a [`LabelSet`] is (pair by pair), so alerts keep Prometheus's
/// order.
///
/// Each value held is followed by a NUL, so that two label sets of the same shape compare as
/// those values' bytes (NUL sorts below every other character). When a value held contains a
/// NUL, each is written instead as its byte length in decimal, `:`, and its bytes (the shape
/// says which form), and such sets compare pair by pair.
///
/// ```
/// use ipfs_sentinel::rules::alerting::{AlertLabels, LabelSet};
///
/// let set = LabelSet::from([("b".into(), "2:x".into()), ("a".into(), "1".into())]);
/// let labels = AlertLabels::from(&set);
/// assert_eq!(labels.get("b"), Some("2:x"));
/// assert_eq!(labels.get("c"), None);
/// assert_eq!(labels.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2:x")]);
/// assert_eq!(labels.to_label_set(), set);
/// ```
#[derive(Clone)]
pub struct AlertLabels {
    shape: Arc<LabelShape>,
    values: Values,
}

/// The names of a label set, each with its value when every set of this shape has the same
/// (`None`: the label set holds it), and the form of the values the label sets hold.
#[derive(Debug, PartialEq, Eq)]
struct LabelShape {
    labels: Box<[ShapeLabel]>,
    length_prefixed: bool,
}

/// A label's name, and its value if the shape holds it.
type ShapeLabel = (Box<str>, Option<Box<str>>);

/// How many bytes of values a label set holds without an allocation.
const INLINE_VALUES: usize = 22;

/// The values a label set holds, in their text form: inline when short.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Values {
    /// The length and the bytes (zero after the length).
    Inline(u8, [u8; INLINE_VALUES]),
    Heap(Box<str>),
}

impl Values {
    fn new(text: &str) -> Values {
        let bytes = text.as_bytes();
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= INLINE_VALUES => {
                let mut inline = [0; INLINE_VALUES];
                inline[..bytes.len()].copy_from_slice(bytes);
                Values::Inline(len, inline)
            }
            _ => Values::Heap(text.into()),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Values::Inline(len, bytes) => &bytes[..usize::from(*len)],
            Values::Heap(text) => text.as_bytes(),
        }
    }

    fn text(&self) -> &str {
        match self {
            // Copied from a `str` whole: always UTF-8.
            Values::Inline(..) => std::str::from_utf8(self.bytes()).unwrap_or_default(),
            Values::Heap(text) => text,
        }
    }
}

/// Ends each value in the usual form.
const NUL: char = '\0';

/// How many different shapes a [`SharedNames`] remembers.
const SHARED_SHAPES_KEPT: usize = 4;

/// Builds [`AlertLabels`], sharing one copy of the names (and of the values every set of the
/// kind has) between the label sets that have the same (it remembers the last few shapes it
/// built or was shown). Label sets built through one of these compare faster too: equal shapes
/// are found by pointer.
///
/// ```
/// use ipfs_sentinel::rules::alerting::{LabelSet, SharedNames};
///
/// let mut shared = SharedNames::default();
/// let a = shared.label_set(&LabelSet::from([("instance".into(), "a".into())]));
/// let b = shared.labels([("instance", "b")]);
/// assert!(a < b);
/// assert_eq!(b.get("instance"), Some("b"));
/// ```
#[derive(Debug, Default)]
pub struct SharedNames {
    recent: Vec<Arc<LabelShape>>,
    /// The values of the set being built, reused from one set to the next.
    text: String,
}

impl SharedNames {
    /// Labels from `(name, value)` pairs already ordered by name, without duplicate names.
    pub fn labels<'a, I>(&mut self, pairs: I) -> AlertLabels
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
        I::IntoIter: Clone,
    {
        self.labels_of_kind(pairs.into_iter().map(|(name, value)| (name, value, false)))
    }

    /// Labels from a [`LabelSet`].
    pub fn label_set(&mut self, set: &LabelSet) -> AlertLabels {
        self.labels(set.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    }

    /// Labels from `(name, value, fixed)` triples already ordered by name, without duplicate
    /// names, where `fixed` says that every label set built alike has this value (a rule's
    /// own label without a template, `alertname`): the shape holds it, once.
    fn labels_of_kind<'a, I>(&mut self, labels: I) -> AlertLabels
    where
        I: Iterator<Item = (&'a str, &'a str, bool)> + Clone,
    {
        let held = labels
            .clone()
            .filter(|(_, _, fixed)| !fixed)
            .map(|(_, value, _)| value);
        let length_prefixed = held.clone().any(|value| value.contains(NUL));
        self.text.clear();
        for value in held {
            if length_prefixed {
                self.text.push_str(&value.len().to_string());
                self.text.push(':');
                self.text.push_str(value);
            } else {
                self.text.push_str(value);
                self.text.push(NUL);
            }
        }
        let values = Values::new(&self.text);
        let same = |shape: &&Arc<LabelShape>| {
            shape.length_prefixed == length_prefixed
                && shape.labels.len() == labels.clone().count()
                && shape.labels.iter().zip(labels.clone()).all(
                    |((name, kept), (new_name, value, fixed))| {
                        **name == *new_name
                            && match kept {
                                Some(kept) => fixed && **kept == *value,
                                None => !fixed,
                            }
                    },
                )
        };
        let shape = match self.recent.iter().find(same) {
            Some(shape) => Arc::clone(shape),
            None => {
                let shape = Arc::new(LabelShape {
                    labels: labels
                        .map(|(name, value, fixed)| (name.into(), fixed.then(|| value.into())))
                        .collect(),
                    length_prefixed,
                });
                self.keep(Arc::clone(&shape));
                shape
            }
        };
        AlertLabels { shape, values }
    }

    /// Remembers the shape of `labels`, so that sets built next alike share it (and compare
    /// with `labels` by pointer).
    pub fn remember(&mut self, labels: &AlertLabels) {
        if !self.recent.iter().any(|s| Arc::ptr_eq(s, &labels.shape)) {
            self.keep(Arc::clone(&labels.shape));
        }
    }

    fn keep(&mut self, shape: Arc<LabelShape>) {
        if self.recent.len() == SHARED_SHAPES_KEPT {
            self.recent.remove(0);
        }
        self.recent.push(shape);
    }
}

impl AlertLabels {
    /// The `(name, value)` pairs, ordered by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let mut held = items(self.values.text(), self.shape.length_prefixed);
        self.shape.labels.iter().map_while(move |(name, kept)| {
            let value = match kept {
                Some(kept) => kept,
                None => held.next()?,
            };
            Some((&**name, value))
        })
    }

    /// The value of label `name`, if the alert has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value)
    }

    /// The labels as a [`LabelSet`].
    pub fn to_label_set(&self) -> LabelSet {
        self.iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }

    /// Whether the two sets are of one shape and compare as the bytes of their values.
    fn same_plain_shape(&self, other: &Self) -> bool {
        !self.shape.length_prefixed
            && (Arc::ptr_eq(&self.shape, &other.shape) || self.shape == other.shape)
    }
}

/// Every value of a text in turn: NUL-terminated, or length-prefixed.
fn items(text: &str, length_prefixed: bool) -> impl Iterator<Item = &str> + '_ {
    let (mut plain, mut rest) = if length_prefixed {
        ("".split_terminator(NUL), text)
    } else {
        (text.split_terminator(NUL), "")
    };
    std::iter::from_fn(move || {
        if let Some(item) = plain.next() {
            return Some(item);
        }
        let (len, tail) = rest.split_once(':')?;
        let len: usize = len.parse().ok()?;
        let item = tail.get(..len)?;
        rest = tail.get(len..)?;
        Some(item)
    })
}

impl From<&LabelSet> for AlertLabels {
    fn from(set: &LabelSet) -> Self {
        SharedNames::default().label_set(set)
    }
}

impl Ord for AlertLabels {
    fn cmp(&self, other: &Self) -> Ordering {
        // In one shape, the first difference is in a value held: their texts order the sets.
        if self.same_plain_shape(other) {
            return self.values.bytes().cmp(other.values.bytes());
        }
        self.iter().cmp(other.iter())
    }
}

impl PartialOrd for AlertLabels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Equal when the label sets are, whatever their shapes (a restored alert's labels hold every
/// value; the same alert's evaluated anew share its rule's fixed ones).
impl PartialEq for AlertLabels {
    fn eq(&self, other: &Self) -> bool {
        if self.same_plain_shape(other) {
            return self.values == other.values;
        }
        self.iter().eq(other.iter())
    }
}

impl Eq for AlertLabels {}

impl std::hash::Hash for AlertLabels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for pair in self.iter() {
            pair.hash(state);
        }
    }
}

impl fmt::Debug for AlertLabels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for AlertLabels {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// How long a resolved alert is kept, and re-sent as resolved (Prometheus's
/// `resolvedRetention`).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// The minimum time between two sends of the same unchanged alert (Prometheus's
/// `--rules.alert.resend-delay` default).
pub const RESEND_DELAY_MS: i64 = 60 * 1000;

/// The longest outage after which [`AlertingRule::restore`] still restores state (Prometheus's
/// `--rules.alert.for-outage-tolerance` default).
pub const OUTAGE_TOLERANCE_MS: i64 = 60 * 60 * 1000;

/// Name of the series with one sample per pending or firing alert.
pub const ALERTS_METRIC: &str = "ALERTS";

/// Name of the series holding each pending or firing alert's `active_at`, in seconds.
pub const ALERTS_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";

const METRIC_NAME_LABEL: &str = "__name__";
const ALERT_NAME_LABEL: &str = "alertname";
const ALERT_STATE_LABEL: &str = "alertstate";

/// Where an alert is in its life; ordered so that the "worst" state is the greatest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Neither pending nor firing: a resolved alert kept for its retention.
    Inactive,
    /// The condition holds, but for less than the rule's `for`.
    Pending,
    /// The condition has held for at least the rule's `for` (or is kept by `keep_firing_for`).
    Firing,
}

impl AlertState {
    /// The name Prometheus uses: `inactive`, `pending` or `firing`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One instance of an alerting rule: one label set of the rule expression's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Identifying labels: the sample's labels without `__name__`, the rule's labels and
    /// `alertname`.
    pub labels: AlertLabels,
    /// The rule's annotations, expanded with the latest sample; shared between alerts (and
    /// evaluations) that expand them alike.
    pub annotations: Arc<LabelSet>,
    /// The current state.
    pub state: AlertState,
    /// The expression's value at the last evaluation that returned this label set (NaN for an
    /// alert restored from a snapshot until it is seen again).
    pub value: f64,
    /// When this episode of the condition started holding.
    pub active_at_ms: i64,
    /// Until when the last send is valid (Alertmanager's `EndsAt` for a firing alert); 0 if
    /// never sent.
    pub valid_until_ms: i64,
    fired_at: At,
    resolved_at: At,
    last_sent_at: At,
    keep_firing_since: At,
}

/// An instant that may not have happened, in 8 bytes where `Option<i64>` takes 16 (a rule may
/// hold hundreds of thousands of alerts, four of these each): `i64::MIN` stands for none.
#[derive(Debug, Clone, Copy, PartialEq)]
struct At(i64);

impl At {
    const NEVER: At = At(i64::MIN);

    /// `ms`, none staying none (and the earliest millisecond, never an evaluation time,
    /// reading as none).
    fn of(ms: Option<i64>) -> At {
        At(ms.unwrap_or(i64::MIN))
    }

    fn ms(self) -> Option<i64> {
        (self.0 != i64::MIN).then_some(self.0)
    }
}

impl Alert {
    /// A new episode: pending since `ts_ms`.
    fn pending(labels: AlertLabels, annotations: Arc<LabelSet>, value: f64, ts_ms: i64) -> Self {
        Alert {
            labels,
            annotations,
            state: AlertState::Pending,
            value,
            active_at_ms: ts_ms,
            valid_until_ms: 0,
            fired_at: At::NEVER,
            resolved_at: At::NEVER,
            last_sent_at: At::NEVER,
            keep_firing_since: At::NEVER,
        }
    }

    /// When the alert went from pending to firing.
    pub fn fired_at_ms(&self) -> Option<i64> {
        self.fired_at.ms()
    }

    /// When the alert stopped firing; set only on inactive alerts.
    pub fn resolved_at_ms(&self) -> Option<i64> {
        self.resolved_at.ms()
    }

    /// When the alert was last marked for sending to Alertmanager.
    pub fn last_sent_at_ms(&self) -> Option<i64> {
        self.last_sent_at.ms()
    }

    /// When the condition stopped holding while `keep_firing_for` keeps the alert firing.
    pub fn keep_firing_since_ms(&self) -> Option<i64> {
        self.keep_firing_since.ms()
    }

    /// One evaluation in which this alert's label set was missing from the result. Returns
    /// whether the alert stays in the rule's state.
    fn on_absent(&mut self, ts_ms: i64, keep_firing_for_ms: i64) -> bool {
        if self.keeps_firing(ts_ms, keep_firing_for_ms) {
            return true;
        }
        let expired = self.state == AlertState::Pending
            || self
                .resolved_at_ms()
                .is_some_and(|resolved| elapsed(ts_ms, resolved) > RESOLVED_RETENTION_MS);
        if self.state != AlertState::Inactive {
            self.state = AlertState::Inactive;
            self.resolved_at = At(ts_ms);
        }
        !expired
    }

    /// Whether `keep_firing_for` holds this firing alert although its condition is gone,
    /// starting the keep-firing clock on the first such evaluation.
    fn keeps_firing(&mut self, ts_ms: i64, keep_firing_for_ms: i64) -> bool {
        if self.state != AlertState::Firing || keep_firing_for_ms <= 0 {
            return false;
        }
        let since = match self.keep_firing_since_ms() {
            Some(since) => since,
            None => {
                self.keep_firing_since = At(ts_ms);
                ts_ms
            }
        };
        elapsed(ts_ms, since) < keep_firing_for_ms
    }

    /// Fires a pending alert whose condition has held for `for_ms`.
    fn fire_if_due(&mut self, ts_ms: i64, for_ms: i64) {
        if self.state == AlertState::Pending && elapsed(ts_ms, self.active_at_ms) >= for_ms {
            self.state = AlertState::Firing;
            self.fired_at = At(ts_ms);
        }
    }

    /// Prometheus's `needsSending`: never while pending; at once after a resolution not yet
    /// sent; otherwise once the resend delay has passed.
    fn needs_sending(&self, ts_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let Some(sent) = self.last_sent_at_ms() else {
            return true;
        };
        let resolved_since_sent = self
            .resolved_at_ms()
            .is_some_and(|resolved| resolved > sent);
        resolved_since_sent || sent.saturating_add(RESEND_DELAY_MS) < ts_ms
    }

    /// Records a send at `ts_ms`, valid for four evaluation intervals (at least four resend
    /// delays) so that two missed evaluations or sends do not expire the alert in
    /// Alertmanager: what Prometheus's `sendAlerts` does.
    fn mark_sent(&mut self, ts_ms: i64, interval_ms: i64) {
        self.last_sent_at = At(ts_ms);
        let delta = interval_ms.max(RESEND_DELAY_MS);
        self.valid_until_ms = ts_ms.saturating_add(delta.saturating_mul(4));
    }

    /// The `ALERTS` and `ALERTS_FOR_STATE` samples of this alert.
    fn series(&self) -> [Sample; 2] {
        let mut alerts = self.labels.to_label_set();
        let mut for_state = alerts.clone();
        alerts.insert(METRIC_NAME_LABEL.into(), ALERTS_METRIC.into());
        alerts.insert(ALERT_STATE_LABEL.into(), self.state.as_str().into());
        for_state.insert(METRIC_NAME_LABEL.into(), ALERTS_FOR_STATE_METRIC.into());
        let active_at_s = self.active_at_ms.div_euclid(1000) as f64;
        [(alerts, 1.0), (for_state, active_at_s)]
    }

    fn is_active(&self) -> bool {
        self.state != AlertState::Inactive
    }
}

/// Why an evaluation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// Two samples of the result gave the same alert labels; the rule's state is unchanged.
    #[error("vector contains metrics with the same labelset after applying alert labels")]
    DuplicateLabelset,
    /// More alerts were pending or firing than the rule's limit; all alerts were dropped.
    #[error("exceeded limit of {limit} with {alerts} alerts")]
    LimitExceeded {
        /// The rule's limit.
        limit: usize,
        /// How many alerts were pending or firing.
        alerts: usize,
    },
}

/// A template expander: `(template, sample labels, sample value) -> text`.
pub type Expand<'a> = dyn Fn(&str, &LabelSet, f64) -> String + 'a;

/// An alerting rule and the alerts it currently holds.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    /// The alert name, set as the `alertname` label.
    pub name: String,
    /// How long the condition must hold before a pending alert fires.
    pub for_ms: i64,
    /// How long a firing alert keeps firing after its condition stopped holding (0: none).
    pub keep_firing_for_ms: i64,
    /// Labels added to every alert (templates; they override the sample's labels).
    pub labels: LabelSet,
    /// Annotations of every alert (templates, expanded at each evaluation).
    pub annotations: LabelSet,
    /// Pending, firing and recently resolved alerts, ordered by their labels (no two alike).
    active: Vec<Alert>,
    /// The time the alert state describes: the last evaluation, or the restore.
    state_as_of_ms: Option<i64>,
}

impl AlertingRule {
    /// A rule with no alerts yet.
    pub fn new(
        name: impl Into<String>,
        for_ms: i64,
        keep_firing_for_ms: i64,
        labels: LabelSet,
        annotations: LabelSet,
    ) -> Self {
        AlertingRule {
            name: name.into(),
            for_ms,
            keep_firing_for_ms,
            labels,
            annotations,
            active: Vec::new(),
            state_as_of_ms: None,
        }
    }

    /// Evaluates the rule at `ts_ms` with `result`, the expression's samples at that time,
    /// as Prometheus's `AlertingRule.Eval` followed by the rule manager's `sendAlerts`.
    ///
    /// New label sets start pending; known ones keep their `active_at` and take the new value
    /// and annotations; missing ones are deleted (pending), resolved (firing) or kept firing
    /// by `keep_firing_for`; resolved ones are dropped after [`RESOLVED_RETENTION_MS`];
    /// pending ones fire once they have been active for `for_ms`. Alerts due for sending are
    /// stamped with `last_sent_at_ms = ts_ms` and `valid_until_ms = ts_ms + 4 * max(interval_ms,
    /// RESEND_DELAY_MS)`; [`AlertingRule::alerts_to_send`] lists them.
    ///
    /// `expand` expands a label or annotation template for one sample. A `limit` of 0 means
    /// no limit. [`AlertingRule::alerts_series`] gives the `ALERTS` and `ALERTS_FOR_STATE`
    /// samples afterwards.
    ///
    /// A disk alert with `for: 2m`, evaluated every minute with a fake clock (plain numbers):
    ///
    /// ```
    /// use ipfs_sentinel::rules::alerting::{
    ///     AlertLabels, AlertState, AlertingRule, LabelSet, ResultSample,
    /// };
    ///
    /// const MIN: i64 = 60_000;
    /// let mut rule = AlertingRule::new("DiskFull", 2 * MIN, 0, LabelSet::new(), LabelSet::new());
    /// let no_templates = |text: &str, _: &LabelSet, _: f64| text.to_owned();
    /// let full: Vec<ResultSample> = vec![(
    ///     AlertLabels::from(&LabelSet::from([
    ///         ("__name__".into(), "disk".into()),
    ///         ("node".into(), "a".into()),
    ///     ])),
    ///     0.95,
    /// )];
    /// let at = |rule: &mut AlertingRule, ts_ms: i64, result: Vec<ResultSample>| {
    ///     rule.eval(ts_ms, MIN, &result, 0, &no_templates).unwrap();
    ///     rule.active_alerts().first().map(|a| a.state)
    /// };
    /// // The condition holds: pending at once, with the time it started.
    /// assert_eq!(at(&mut rule, 0, full.clone()), Some(AlertState::Pending));
    /// assert_eq!(rule.active_alerts()[0].labels.get("alertname"), Some("DiskFull"));
    /// assert_eq!(at(&mut rule, MIN, full.clone()), Some(AlertState::Pending));
    /// // Two minutes after it started: firing, and due for sending to Alertmanager.
    /// assert_eq!(at(&mut rule, 2 * MIN, full.clone()), Some(AlertState::Firing));
    /// assert_eq!(rule.alerts_to_send(2 * MIN).len(), 1);
    /// // ALERTS{alertname="DiskFull", alertstate="firing", node="a"} 1
    /// let series = rule.alerts_series();
    /// assert_eq!(series[0].0["alertstate"], "firing");
    /// assert_eq!(series[0].1, 1.0);
    /// // The condition stops: resolved (inactive, kept 15 minutes to be sent as resolved).
    /// assert_eq!(at(&mut rule, 3 * MIN, vec![]), Some(AlertState::Inactive));
    /// assert_eq!(rule.active_alerts()[0].resolved_at_ms(), Some(3 * MIN));
    /// assert!(rule.alerts_series().is_empty());
    /// ```
    pub fn eval(
        &mut self,
        ts_ms: i64,
        interval_ms: i64,
        result: &[ResultSample],
        limit: usize,
        expand: &Expand<'_>,
    ) -> Result<(), EvalError> {
        let seen = self.alerts_from_result(ts_ms, result, expand)?;
        self.state_as_of_ms = Some(ts_ms);
        let active = self.merge_and_advance(ts_ms, seen);
        if limit > 0 && active > limit {
            self.active.clear();
            return Err(EvalError::LimitExceeded {
                limit,
                alerts: active,
            });
        }
        self.mark_due_for_sending(ts_ms, interval_ms);
        Ok(())
    }

    /// The rule's alerts (pending, firing, and resolved ones within their retention), ordered
    /// by labels.
    pub fn active_alerts(&self) -> Vec<&Alert> {
        self.active.iter().collect()
    }

    /// The alerts the evaluation at `ts_ms` marked for sending to Alertmanager.
    pub fn alerts_to_send(&self, ts_ms: i64) -> Vec<&Alert> {
        self.active
            .iter()
            .filter(|alert| alert.last_sent_at_ms() == Some(ts_ms))
            .collect()
    }

    /// What Prometheus exposes for the pending and firing alerts, ordered by labels:
    /// `ALERTS{alertname, alertstate, <labels>} 1` and
    /// `ALERTS_FOR_STATE{alertname, <labels>} <active_at in seconds>` for each.
    pub fn alerts_series(&self) -> Vec<Sample> {
        self.active
            .iter()
            .filter(|alert| alert.is_active())
            .flat_map(Alert::series)
            .collect()
    }

    /// The rule's state: firing if any alert fires, else pending if any is pending, else
    /// inactive.
    pub fn state(&self) -> AlertState {
        self.active
            .iter()
            .map(|alert| alert.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }

    /// The state a restart should carry over, as of the last evaluation (or restore).
    pub fn snapshot(&self) -> RuleStateSnapshot {
        RuleStateSnapshot {
            taken_at_ms: self.state_as_of_ms.unwrap_or_default(),
            alerts: self.active.iter().map(AlertSnapshot::from).collect(),
        }
    }

    /// Replaces the rule's alerts with those of `snapshot`, at `now_ms` after a restart, so
    /// that a restart does not reset `for` clocks. Call it before the first evaluation.
    ///
    /// Pending alerts follow Prometheus's `RestoreForState`: the time they had spent pending
    /// when the snapshot was taken is kept (`active_at` moves forward by the downtime), but
    /// they fire no sooner than `grace_ms` after the restart; if `for_ms` is below `grace_ms`
    /// they are not restored and start over. Nothing is restored when the snapshot is older
    /// than [`OUTAGE_TOLERANCE_MS`].
    ///
    /// Differences from Prometheus, which restores only `active_at`, from the
    /// `ALERTS_FOR_STATE` series, and only for alerts active in the first evaluation after
    /// the restart: firing alerts are restored firing (with their `fired_at` and
    /// `keep_firing_since`), and resolved ones are restored within their retention, so the
    /// first evaluation resolves, keeps or fires them as it would have without the restart.
    pub fn restore(&mut self, snapshot: RuleStateSnapshot, now_ms: i64, grace_ms: i64) {
        self.active.clear();
        self.state_as_of_ms = Some(now_ms);
        let down_at_ms = snapshot.taken_at_ms;
        if elapsed(now_ms, down_at_ms) > OUTAGE_TOLERANCE_MS {
            return;
        }
        // By labels, the last of any two alike winning, as a saved file may say anything.
        let mut restored = BTreeMap::new();
        let mut shared = SharedNames::default();
        for saved in snapshot.alerts {
            let mut alert = saved.into_alert(&mut shared);
            if alert.state == AlertState::Pending {
                match self.restored_active_at(alert.active_at_ms, down_at_ms, now_ms, grace_ms) {
                    Some(active_at_ms) => alert.active_at_ms = active_at_ms,
                    None => continue,
                }
            }
            restored.insert(alert.labels.clone(), alert);
        }
        self.active = restored.into_values().collect();
    }

    /// Prometheus's `RestoreForState` arithmetic for a pending alert's `active_at`; `None` when
    /// the rule's `for` is shorter than the grace period and the alert should start over.
    fn restored_active_at(
        &self,
        active_at_ms: i64,
        down_at_ms: i64,
        now_ms: i64,
        grace_ms: i64,
    ) -> Option<i64> {
        if self.for_ms < grace_ms {
            return None;
        }
        let remaining_ms = self
            .for_ms
            .saturating_sub(elapsed(down_at_ms, active_at_ms));
        let restored = if remaining_ms <= 0 {
            active_at_ms
        } else if remaining_ms < grace_ms {
            now_ms.saturating_add(grace_ms).saturating_sub(self.for_ms)
        } else {
            active_at_ms.saturating_add(elapsed(now_ms, down_at_ms))
        };
        Some(restored)
    }

    /// One new pending alert per sample, ordered by labels; fails on two samples with the
    /// same alert labels.
    fn alerts_from_result(
        &self,
        ts_ms: i64,
        result: &[ResultSample],
        expand: &Expand<'_>,
    ) -> Result<Vec<Alert>, EvalError> {
        // Alerts that expand the annotations alike, one after another (all of them when the
        // annotations hold no template), share them, with the known alerts too.
        let mut annotations = self.active.first().map(|a| Arc::clone(&a.annotations));
        // The alerts' names, shared with the known alerts that have the same.
        let mut names = SharedNames::default();
        for alert in &self.active {
            names.remember(&alert.labels);
        }
        let mut seen: Vec<Alert> = Vec::with_capacity(result.len());
        for (sample_labels, value) in result {
            let shared = (&mut names, &mut annotations);
            seen.push(self.alert_for_sample(ts_ms, sample_labels, *value, expand, shared));
        }
        seen.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        if seen.windows(2).any(|pair| pair[0].labels == pair[1].labels) {
            return Err(EvalError::DuplicateLabelset);
        }
        Ok(seen)
    }

    /// The alert one sample stands for: its labels (rule labels override the sample's,
    /// labels expanding to "" are removed) and expanded annotations.
    ///
    /// Text without a template action (`{{`) is its own expansion, as in Go's templates
    /// (`severity: warning`): only text with one is given to `expand`, with the sample's
    /// labels as a [`LabelSet`] built for it on first use. The labels' shape comes from
    /// `names`; the annotations are `previous`'s when they expand alike, and become
    /// `previous` otherwise.
    fn alert_for_sample(
        &self,
        ts_ms: i64,
        sample_labels: &AlertLabels,
        value: f64,
        expand: &Expand<'_>,
        (names, previous): (&mut SharedNames, &mut Option<Arc<LabelSet>>),
    ) -> Alert {
        let full_labels = std::cell::OnceCell::new();
        let expand_here = |template: &str| {
            if template.contains("{{") {
                expand(
                    template,
                    full_labels.get_or_init(|| sample_labels.to_label_set()),
                    value,
                )
            } else {
                template.to_owned()
            }
        };
        // Each label's value, and whether every alert of the rule has it (the rule's own
        // labels without a template, `alertname`): those are kept once, in the shape.
        let mut labels: BTreeMap<&str, (Cow<'_, str>, bool)> = sample_labels
            .iter()
            .filter(|(name, _)| *name != METRIC_NAME_LABEL)
            .map(|(name, value)| (name, (value.into(), false)))
            .collect();
        for (name, template) in &self.labels {
            let value = if template.contains("{{") {
                (expand_here(template).into(), false)
            } else {
                (Cow::Borrowed(template.as_str()), true)
            };
            labels.insert(name, value);
        }
        labels.insert(ALERT_NAME_LABEL, (self.name.as_str().into(), true));
        let labels = names.labels_of_kind(
            labels
                .iter()
                .filter(|(_, (value, _))| !value.is_empty())
                .map(|(name, (value, fixed))| (*name, value.as_ref(), *fixed)),
        );
        let annotations: LabelSet = self
            .annotations
            .iter()
            .map(|(name, template)| (name.clone(), expand_here(template)))
            .collect();
        let annotations = match previous {
            Some(shared) if **shared == annotations => Arc::clone(shared),
            _ => previous.insert(Arc::new(annotations)).clone(),
        };
        Alert::pending(labels, annotations, value, ts_ms)
    }

    /// Merges `seen` (this evaluation's alerts, ordered by labels) into the rule's alerts and
    /// moves every alert on by one evaluation: known pending or firing alerts take the new
    /// value and annotations, new ones (or ones known only as resolved) start a new episode,
    /// missing ones resolve, expire or keep firing, and present ones may fire. Returns how
    /// many alerts are pending or firing afterwards.
    fn merge_and_advance(&mut self, ts_ms: i64, seen: Vec<Alert>) -> usize {
        let (for_ms, keep_firing_for_ms) = (self.for_ms, self.keep_firing_for_ms);
        let known = std::mem::take(&mut self.active);
        // Usually the same alerts as before: the vector grows only when new ones come.
        let mut next = Vec::with_capacity(known.len().max(seen.len()));
        let mut known = known.into_iter().peekable();
        let mut seen = seen.into_iter().peekable();
        let mut active = 0;
        loop {
            let order = match (known.peek(), seen.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(old), Some(fresh)) => old.labels.cmp(&fresh.labels),
            };
            let (old, fresh) = match order {
                Ordering::Less => (known.next(), None),
                Ordering::Greater => (None, seen.next()),
                Ordering::Equal => (known.next(), seen.next()),
            };
            let mut alert = match (old, fresh) {
                (Some(mut old), None) => {
                    if !old.on_absent(ts_ms, keep_firing_for_ms) {
                        continue;
                    }
                    old
                }
                (Some(mut old), Some(fresh)) if old.is_active() => {
                    if !Arc::ptr_eq(&old.labels.shape, &fresh.labels.shape) {
                        // The same labels in the rule's shape (a restored alert held all).
                        old.labels = fresh.labels;
                    }
                    old.value = fresh.value;
                    if old.annotations != fresh.annotations {
                        old.annotations = fresh.annotations;
                    }
                    old.keep_firing_since = At::NEVER;
                    old
                }
                (_, Some(fresh)) => fresh,
                (None, None) => break,
            };
            if alert.is_active() {
                active += 1;
                alert.fire_if_due(ts_ms, for_ms);
            }
            next.push(alert);
        }
        next.shrink_to_fit();
        self.active = next;
        active
    }

    fn mark_due_for_sending(&mut self, ts_ms: i64, interval_ms: i64) {
        for alert in &mut self.active {
            if alert.needs_sending(ts_ms) {
                alert.mark_sent(ts_ms, interval_ms);
            }
        }
    }
}

/// The part of a rule's state a restart carries over; serialise it with serde.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleStateSnapshot {
    /// The time the state describes (the last evaluation); 0 for a rule never evaluated, which
    /// has no alerts.
    pub taken_at_ms: i64,
    /// The rule's alerts, ordered by labels.
    pub alerts: Vec<AlertSnapshot>,
}

/// One alert in a [`RuleStateSnapshot`]: its identity and its clocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSnapshot {
    /// The alert's labels.
    pub labels: LabelSet,
    /// The alert's last expanded annotations (sent if it resolves before being seen again).
    pub annotations: LabelSet,
    /// Its state.
    pub state: AlertState,
    /// When its episode started.
    pub active_at_ms: i64,
    /// When it fired.
    pub fired_at_ms: Option<i64>,
    /// When it resolved.
    pub resolved_at_ms: Option<i64>,
    /// When `keep_firing_for` started holding it.
    pub keep_firing_since_ms: Option<i64>,
}

impl From<&Alert> for AlertSnapshot {
    fn from(alert: &Alert) -> Self {
        AlertSnapshot {
            labels: alert.labels.to_label_set(),
            annotations: LabelSet::clone(&alert.annotations),
            state: alert.state,
            active_at_ms: alert.active_at_ms,
            fired_at_ms: alert.fired_at_ms(),
            resolved_at_ms: alert.resolved_at_ms(),
            keep_firing_since_ms: alert.keep_firing_since_ms(),
        }
    }
}

impl AlertSnapshot {
    /// The alert again; its value is unknown (NaN) and it counts as never sent.
    fn into_alert(self, shared: &mut SharedNames) -> Alert {
        Alert {
            labels: shared.label_set(&self.labels),
            annotations: Arc::new(self.annotations),
            state: self.state,
            value: f64::NAN,
            active_at_ms: self.active_at_ms,
            valid_until_ms: 0,
            fired_at: At::of(self.fired_at_ms),
            resolved_at: At::of(self.resolved_at_ms),
            last_sent_at: At::NEVER,
            keep_firing_since: At::of(self.keep_firing_since_ms),
        }
    }
}

/// Milliseconds from `earlier` to `ts`, saturating instead of overflowing on absurd inputs.
fn elapsed(ts_ms: i64, earlier_ms: i64) -> i64 {
    ts_ms.saturating_sub(earlier_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60 * 1000;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn sample(pairs: &[(&str, &str)], value: f64) -> ResultSample {
        (AlertLabels::from(&labels(pairs)), value)
    }

    /// Templates are taken literally.
    fn literal(template: &str, _: &LabelSet, _: f64) -> String {
        template.to_owned()
    }

    /// A tiny stand-in for Go templates: `{{ $value }}` and `{{ $labels.instance }}`.
    fn template(text: &str, sample_labels: &LabelSet, value: f64) -> String {
        let instance = sample_labels.get("instance").cloned().unwrap_or_default();
        text.replace("{{ $value }}", &value.to_string())
            .replace("{{ $labels.instance }}", &instance)
    }

    fn rule(for_ms: i64, keep_firing_for_ms: i64) -> AlertingRule {
        AlertingRule::new(
            "Test",
            for_ms,
            keep_firing_for_ms,
            LabelSet::new(),
            LabelSet::new(),
        )
    }

    /// Evaluates and returns the `ALERTS` and `ALERTS_FOR_STATE` samples afterwards.
    fn eval(rule: &mut AlertingRule, ts_ms: i64, result: Vec<ResultSample>) -> Vec<Sample> {
        rule.eval(ts_ms, MIN, &result, 0, &literal)
            .expect("evaluation succeeds");
        rule.alerts_series()
    }

    /// The `(labels, alertstate)` of the `ALERTS` samples.
    fn alerts_states(series: &[Sample]) -> Vec<(LabelSet, String)> {
        series
            .iter()
            .filter(|(l, _)| l[METRIC_NAME_LABEL] == ALERTS_METRIC)
            .map(|(l, _)| {
                let mut l = l.clone();
                let state = l.remove(ALERT_STATE_LABEL).unwrap_or_default();
                l.remove(METRIC_NAME_LABEL);
                (l, state)
            })
            .collect()
    }

    fn only_alert(rule: &AlertingRule) -> &Alert {
        let alerts = rule.active_alerts();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        alerts[0]
    }

    /// The compact labels order, compare and read back exactly as the label sets they hold,
    /// whatever the names and values hold (digits, `:`, nothing, multi-byte characters).
    #[test]
    fn alert_labels_order_and_read_back_as_label_sets() {
        let sets = [
            labels(&[]),
            labels(&[("a", "")]),
            labels(&[("a", "1")]),
            labels(&[("a", "1"), ("b", "2")]),
            labels(&[("a", "10:x")]),
            labels(&[("a", "1:"), ("b", "")]),
            labels(&[("ab", "1")]),
            labels(&[("a", "é"), ("b", ":")]),
            labels(&[("a", "9"), ("aa", "1")]),
            labels(&[("b", "1")]),
            labels(&[("12", "3:4")]),
            labels(&[("a", "1\0"), ("b", "")]),
            labels(&[("a", "1\0x")]),
            labels(&[("a", "1\u{1}")]),
            labels(&[("", "x"), ("a", "1")]),
            labels(&[("", "")]),
            labels(&[("a\0", "1")]),
            labels(&[("a", "1"), ("b", "3")]),
            labels(&[("a", "10"), ("b", "")]),
            labels(&[("a", "1\0"), ("b", "x")]),
        ];
        // Built one after another through one `SharedNames`, sets with the same names share
        // them and compare by their values' texts: the same order.
        let mut shared = SharedNames::default();
        let built: Vec<AlertLabels> = sets.iter().map(|x| shared.label_set(x)).collect();
        for (x, compact) in sets.iter().zip(&built) {
            assert_eq!(&compact.to_label_set(), x);
            for (y, other) in sets.iter().zip(&built) {
                assert_eq!(compact.cmp(other), x.cmp(y), "{x:?} against {y:?}");
                assert_eq!(*compact == *other, x == y);
                assert_eq!(*compact == AlertLabels::from(y), x == y);
            }
        }
        for x in &sets {
            let compact = AlertLabels::from(x);
            assert_eq!(&compact.to_label_set(), x);
            for (name, value) in x {
                assert_eq!(compact.get(name), Some(value.as_str()));
            }
            for y in &sets {
                let other = AlertLabels::from(y);
                assert_eq!(compact.cmp(&other), x.cmp(y), "{x:?} against {y:?}");
                assert_eq!(compact == other, x == y);
            }
        }
    }

    /// A rule's alerts with the same label names hold one copy of the names and of the
    /// values they all have (`alertname`, the rule's labels without a template), across
    /// evaluations too, and after a restore from the next evaluation on; each holds its other
    /// values, in itself when short.
    #[test]
    fn alerts_share_their_label_names_and_the_rules_values() {
        let mut rule = rule(0, 0);
        rule.labels = labels(&[("severity", "page"), ("summary", "{{ $labels.instance }}")]);
        let at = |i: &str| sample(&[("__name__", "up"), ("instance", i), ("job", "j")], 1.0);
        let evaluate = |rule: &mut AlertingRule, ts_ms: i64, result: Vec<ResultSample>| {
            rule.eval(ts_ms, MIN, &result, 0, &template).unwrap();
        };
        evaluate(&mut rule, 0, vec![at("a"), at("b")]);
        evaluate(&mut rule, MIN, vec![at("a"), at("b"), at("c")]);
        let shared = |rule: &AlertingRule| {
            let alerts = rule.active_alerts();
            assert_eq!(alerts.len(), 3);
            for pair in alerts.windows(2) {
                assert!(Arc::ptr_eq(&pair[0].labels.shape, &pair[1].labels.shape));
                assert_ne!(pair[0].labels.values, pair[1].labels.values);
            }
            let c = &alerts[2].labels;
            assert_eq!(c.values, Values::new("c\0j\0c\0"));
            assert!(matches!(c.values, Values::Inline(..)));
            let want = labels(&[
                ("alertname", "Test"),
                ("instance", "c"),
                ("job", "j"),
                ("severity", "page"),
                ("summary", "c"),
            ]);
            assert_eq!(c.to_label_set(), want);
        };
        shared(&rule);
        let mut restored = rule.clone();
        restored.restore(rule.snapshot(), MIN + 1, 0);
        let restored_labels = |r: &AlertingRule| -> Vec<LabelSet> {
            r.active_alerts()
                .iter()
                .map(|a| a.labels.to_label_set())
                .collect()
        };
        assert_eq!(restored_labels(&restored), restored_labels(&rule));
        evaluate(&mut restored, 2 * MIN, vec![at("a"), at("b"), at("c")]);
        shared(&restored);
        assert_eq!(std::mem::size_of::<Alert>(), 104);
    }

    /// Mirrors manager_test.go `TestAlertingRule`: `http_requests < 100`, for 1m, every 5m.
    #[test]
    fn pending_then_firing_after_for() {
        let mut rule = AlertingRule::new(
            "HTTPRequestRateLow",
            MIN,
            0,
            labels(&[("severity", "critical")]),
            LabelSet::new(),
        );
        let inst0 = [75.0, 85.0, 95.0, 105.0, 105.0, 95.0, 85.0];
        let inst1 = [80.0, 90.0, 100.0, 110.0, 120.0, 130.0, 140.0];
        let expected: [&[(&str, &str)]; 7] = [
            &[("0", "pending"), ("1", "pending")],
            &[("0", "firing"), ("1", "firing")],
            &[("0", "firing")],
            &[],
            &[],
            &[("0", "pending")],
            &[("0", "firing")],
        ];
        for step in 0..7 {
            let result = [("0", inst0[step]), ("1", inst1[step])]
                .into_iter()
                .filter(|(_, v)| *v < 100.0)
                .map(|(instance, v)| {
                    sample(
                        &[
                            ("__name__", "http_requests"),
                            ("group", "canary"),
                            ("instance", instance),
                            ("job", "app-server"),
                            ("severity", "overwrite-me"),
                        ],
                        v,
                    )
                })
                .collect();
            let series = eval(&mut rule, step as i64 * 5 * MIN, result);
            let want: Vec<_> = expected[step]
                .iter()
                .map(|(instance, state)| {
                    let l = labels(&[
                        ("alertname", "HTTPRequestRateLow"),
                        ("group", "canary"),
                        ("instance", instance),
                        ("job", "app-server"),
                        ("severity", "critical"),
                    ]);
                    (l, state.to_string())
                })
                .collect();
            assert_eq!(alerts_states(&series), want, "step {step}");
            for alert in rule.active_alerts() {
                assert_eq!(alert.labels.get(METRIC_NAME_LABEL), None);
            }
        }
    }

    #[test]
    fn pending_keeps_active_at_and_fires_when_for_has_elapsed() {
        let mut rule = rule(5 * MIN, 0);
        for minute in 0..5 {
            eval(&mut rule, minute * MIN, vec![sample(&[("a", "1")], 1.0)]);
            let alert = only_alert(&rule);
            assert_eq!(alert.state, AlertState::Pending, "minute {minute}");
            assert_eq!(alert.active_at_ms, 0);
        }
        eval(&mut rule, 5 * MIN, vec![sample(&[("a", "1")], 2.0)]);
        let alert = only_alert(&rule);
        assert_eq!(alert.state, AlertState::Firing);
        assert_eq!(alert.fired_at_ms(), Some(5 * MIN));
        assert_eq!(alert.active_at_ms, 0);
        assert_eq!(alert.value, 2.0);
        assert_eq!(rule.state(), AlertState::Firing);
    }

    #[test]
    fn for_zero_fires_at_once() {
        let mut rule = rule(0, 0);
        let series = eval(&mut rule, 1000, vec![sample(&[("a", "1")], 2.0)]);
        let alert = only_alert(&rule);
        assert_eq!(alert.state, AlertState::Firing);
        assert_eq!(alert.fired_at_ms(), Some(1000));
        assert_eq!(alerts_states(&series)[0].1, "firing");
    }

    #[test]
    fn resolved_alert_is_kept_for_retention_then_dropped() {
        let mut rule = rule(0, 0);
        eval(&mut rule, 0, vec![sample(&[("a", "1")], 1.0)]);
        let series = eval(&mut rule, MIN, vec![]);
        assert!(series.is_empty());
        let alert = only_alert(&rule);
        assert_eq!(alert.state, AlertState::Inactive);
        assert_eq!(alert.resolved_at_ms(), Some(MIN));
        assert_eq!(rule.state(), AlertState::Inactive);

        eval(&mut rule, MIN + RESOLVED_RETENTION_MS, vec![]);
        assert_eq!(only_alert(&rule).resolved_at_ms(), Some(MIN));
        eval(&mut rule, MIN + RESOLVED_RETENTION_MS + 1, vec![]);
        assert!(rule.active_alerts().is_empty());
    }

    /// Mirrors alerting_test.go `TestKeepFiringFor`: values 75 85 70 70 10 10, `> 50`,
    /// for 1m, keep_firing_for 1m.
    #[test]
    fn keep_firing_for_holds_a_firing_alert_then_resolves() {
        let mut rule = rule(MIN, MIN);
        let values = [75.0, 85.0, 70.0, 70.0, 10.0, 10.0];
        let expected = ["pending", "firing", "firing", "firing", "firing"];
        for (minute, value) in values.iter().enumerate() {
            let result = if *value > 50.0 {
                vec![sample(&[("instance", "0")], *value)]
            } else {
                vec![]
            };
            let series = eval(&mut rule, minute as i64 * MIN, result);
            let states: Vec<_> = alerts_states(&series).into_iter().map(|s| s.1).collect();
            match expected.get(minute) {
                Some(state) => assert_eq!(states, [*state], "minute {minute}"),
                None => assert!(states.is_empty(), "minute {minute}"),
            }
        }
        let alert = only_alert(&rule);
        assert_eq!(alert.state, AlertState::Inactive);
        assert_eq!(alert.keep_firing_since_ms(), Some(4 * MIN));
        assert_eq!(alert.resolved_at_ms(), Some(5 * MIN));
    }

    #[test]
    fn keep_firing_for_clock_resets_when_the_condition_returns() {
        let mut rule = rule(0, 2 * MIN);
        let present = || vec![sample(&[("a", "1")], 1.0)];
        eval(&mut rule, 0, present());
        eval(&mut rule, MIN, vec![]);
        assert_eq!(only_alert(&rule).keep_firing_since_ms(), Some(MIN));
        eval(&mut rule, 2 * MIN, present());
        let alert = only_alert(&rule);
        assert_eq!(alert.keep_firing_since_ms(), None);
        assert_eq!(alert.state, AlertState::Firing);
        assert_eq!(alert.fired_at_ms(), Some(0));
    }

    /// Mirrors alerting_test.go `TestPendingAndKeepFiringFor`: keep_firing_for does not hold
    /// a pending alert.
    #[test]
    fn keep_firing_for_does_not_hold_a_pending_alert() {
        let mut rule = rule(MIN, MIN);
        let series = eval(&mut rule, 0, vec![sample(&[("instance", "0")], 75.0)]);
        assert_eq!(series.len(), 2);
        let series = eval(&mut rule, MIN, vec![]);
        assert!(series.is_empty());
        assert!(rule.active_alerts().is_empty());
    }

    #[test]
    fn flapping_while_pending_resets_active_at() {
        let mut rule = rule(3 * MIN, 0);
        let present = || vec![sample(&[("a", "1")], 1.0)];
        eval(&mut rule, 0, present());
        eval(&mut rule, MIN, present());
        eval(&mut rule, 2 * MIN, vec![]);
        assert!(rule.active_alerts().is_empty());
        eval(&mut rule, 3 * MIN, present());
        let alert = only_alert(&rule);
        assert_eq!(alert.state, AlertState::Pending);
        assert_eq!(alert.active_at_ms, 3 * MIN);
        eval(&mut rule, 5 * MIN, present());
        assert_eq!(only_alert(&rule).state, AlertState::Pending);
        eval(&mut rule, 6 * MIN, present());
        assert_eq!(only_alert(&rule).state, AlertState::Firing);
    }

    #[test]
    fn flapping_while_firing_resolves_and_starts_a_new_pending_episode() {
        let mut rule = rule(MIN, 0);
        let present = || vec![sample(&[("a", "1")], 1.0)];
        eval(&mut rule, 0, present());
        eval(&mut rule, MIN, present());
        assert_eq!(only_alert(&rule).state, AlertState::Firing);
        eval(&mut rule, 2 * MIN, vec![]);
        assert_eq!(only_alert(&rule).state, AlertState::Inactive);
        eval(&mut rule, 3 * MIN, present());
        let alert = only_alert(&rule);
        assert_eq!(alert.state, AlertState::Pending);
        assert_eq!(alert.active_at_ms, 3 * MIN);
        assert_eq!(alert.fired_at_ms(), None);
        assert_eq!(alert.resolved_at_ms(), None);
    }

    /// Mirrors alerting_test.go `TestAlertingRuleDuplicate`.
    #[test]
    fn same_labelset_after_alert_labels_is_an_error() {
        let mut rule =
            AlertingRule::new("foo", MIN, 0, labels(&[("test", "test")]), LabelSet::new());
        eval(&mut rule, 0, vec![sample(&[("a", "1")], 1.0)]);
        let result = vec![sample(&[], 0.0), sample(&[("test", "x")], 0.0)];
        let err = rule.eval(MIN, MIN, &result, 0, &literal).unwrap_err();
        assert_eq!(err, EvalError::DuplicateLabelset);
        assert_eq!(
            err.to_string(),
            "vector contains metrics with the same labelset after applying alert labels"
        );
        assert_eq!(only_alert(&rule).active_at_ms, 0, "state is unchanged");
    }

    /// Mirrors alerting_test.go `TestAlertingRuleLimit`.
    #[test]
    fn more_alerts_than_the_limit_is_an_error_and_clears_the_alerts() {
        let mut rule = rule(MIN, 0);
        let result = || {
            vec![
                sample(&[("label", "1")], 1.0),
                sample(&[("label", "2")], 1.0),
            ]
        };
        for limit in [0, 2] {
            assert!(rule.eval(0, MIN, &result(), limit, &literal).is_ok());
        }
        let err = rule.eval(0, MIN, &result(), 1, &literal).unwrap_err();
        assert_eq!(
            err,
            EvalError::LimitExceeded {
                limit: 1,
                alerts: 2
            }
        );
        assert_eq!(err.to_string(), "exceeded limit of 1 with 2 alerts");
        assert!(rule.active_alerts().is_empty());
    }

    #[test]
    fn rule_labels_override_sample_labels_and_alertname() {
        let mut rule = AlertingRule::new(
            "Disk",
            0,
            0,
            labels(&[("severity", "page"), ("where", "{{ $labels.instance }}")]),
            LabelSet::new(),
        );
        let result = vec![sample(
            &[
                ("__name__", "disk_free"),
                ("alertname", "Other"),
                ("instance", "n1"),
                ("severity", "low"),
            ],
            1.0,
        )];
        rule.eval(0, MIN, &result, 0, &template).unwrap();
        let want = labels(&[
            ("alertname", "Disk"),
            ("instance", "n1"),
            ("severity", "page"),
            ("where", "n1"),
        ]);
        assert_eq!(only_alert(&rule).labels.to_label_set(), want);
    }

    /// Mirrors alerting_test.go `TestAlertingRuleEmptyLabelFromTemplate`.
    #[test]
    fn rule_label_expanding_to_empty_removes_the_label() {
        let mut rule = AlertingRule::new(
            "EmptyLabel",
            MIN,
            0,
            labels(&[("empty_label", ""), ("job", "")]),
            LabelSet::new(),
        );
        eval(
            &mut rule,
            0,
            vec![sample(&[("instance", "0"), ("job", "x")], 1.0)],
        );
        let want = labels(&[("alertname", "EmptyLabel"), ("instance", "0")]);
        assert_eq!(only_alert(&rule).labels.to_label_set(), want);
    }

    /// Mirrors alerting_test.go `TestAlertingRuleLabelsUpdate`: a label templated on the
    /// value changes the label set, so each change starts a new episode.
    #[test]
    fn label_templated_on_the_value_starts_new_episodes() {
        let mut rule = rule(MIN, 0);
        rule.labels = labels(&[(
            "severity",
            "{{ if lt $value 80.0 }}critical{{ else }}warning{{ end }}",
        )]);
        let severity = |_: &str, _: &LabelSet, v: f64| {
            if v < 80.0 { "critical" } else { "warning" }.to_owned()
        };
        let expected = ["pending", "pending", "pending", "firing"];
        let severities = ["critical", "warning", "critical", "critical"];
        for (minute, value) in [75.0, 85.0, 70.0, 70.0].into_iter().enumerate() {
            let result = vec![sample(&[("instance", "0")], value)];
            rule.eval(minute as i64 * MIN, MIN, &result, 0, &severity)
                .unwrap();
            let series = rule.alerts_series();
            let states = alerts_states(&series);
            assert_eq!(states.len(), 1, "minute {minute}");
            assert_eq!(states[0].0["severity"], severities[minute]);
            assert_eq!(states[0].1, expected[minute], "minute {minute}");
        }
        assert!(eval(&mut rule, 4 * MIN, vec![]).is_empty());
    }

    #[test]
    fn annotations_are_re_expanded_each_evaluation() {
        let mut rule = AlertingRule::new(
            "High",
            5 * MIN,
            0,
            LabelSet::new(),
            labels(&[("summary", "{{ $labels.instance }} at {{ $value }}")]),
        );
        for (minute, value) in [(0, 1.5), (1, 2.5)] {
            let result = vec![sample(&[("instance", "n1")], value)];
            rule.eval(minute * MIN, MIN, &result, 0, &template).unwrap();
            let alert = only_alert(&rule);
            assert_eq!(alert.annotations["summary"], format!("n1 at {value}"));
            assert_eq!(alert.value, value);
            assert_eq!(alert.active_at_ms, 0);
        }
    }

    #[test]
    fn alerts_expanding_annotations_alike_share_them() {
        let mut rule = AlertingRule::new(
            "High",
            0,
            0,
            LabelSet::new(),
            labels(&[("summary", "static"), ("where", "{{ $labels.instance }}")]),
        );
        let result = vec![
            sample(&[("instance", "a"), ("x", "1")], 1.0),
            sample(&[("instance", "a"), ("x", "2")], 1.0),
            sample(&[("instance", "b")], 1.0),
        ];
        rule.eval(0, MIN, &result, 0, &template).unwrap();
        let alerts = rule.active_alerts();
        assert!(Arc::ptr_eq(&alerts[0].annotations, &alerts[1].annotations));
        assert_eq!(alerts[2].annotations["where"], "b");
        assert_eq!(alerts[0].annotations["where"], "a");
        let before = Arc::clone(&alerts[0].annotations);
        rule.eval(MIN, MIN, &result, 0, &template).unwrap();
        assert!(
            Arc::ptr_eq(&rule.active_alerts()[0].annotations, &before),
            "unchanged annotations are kept, not replaced"
        );
    }

    #[test]
    fn alerts_and_alerts_for_state_series() {
        let mut rule = AlertingRule::new(
            "Down",
            0,
            0,
            labels(&[("severity", "page")]),
            LabelSet::new(),
        );
        let result = || {
            vec![
                sample(&[("__name__", "up"), ("instance", "b")], 0.0),
                sample(&[("__name__", "up"), ("instance", "a")], 0.0),
            ]
        };
        eval(&mut rule, 90_500, result());
        let series = eval(&mut rule, 90_500 + MIN, vec![result().remove(1)]);
        let alerts = |state: &str| {
            labels(&[
                ("__name__", "ALERTS"),
                ("alertname", "Down"),
                ("alertstate", state),
                ("instance", "a"),
                ("severity", "page"),
            ])
        };
        let for_state = labels(&[
            ("__name__", "ALERTS_FOR_STATE"),
            ("alertname", "Down"),
            ("instance", "a"),
            ("severity", "page"),
        ]);
        assert_eq!(series, vec![(alerts("firing"), 1.0), (for_state, 90.0)]);
        assert_eq!(rule.alerts_series(), series);
        assert_eq!(rule.active_alerts().len(), 2, "instance b is kept resolved");
    }

    /// Mirrors alerting_test.go `TestAlertingRuleState`.
    #[test]
    fn rule_state_is_the_greatest_alert_state() {
        let mut rule = rule(MIN, 0);
        assert_eq!(rule.state(), AlertState::Inactive);
        eval(&mut rule, 0, vec![sample(&[("a", "1")], 1.0)]);
        assert_eq!(rule.state(), AlertState::Pending);
        let both = vec![sample(&[("a", "1")], 1.0), sample(&[("a", "2")], 1.0)];
        eval(&mut rule, MIN, both);
        assert_eq!(rule.state(), AlertState::Firing);
        assert_eq!(AlertState::Pending.as_str(), "pending");
    }

    /// Mirrors manager_test.go `TestNotify` with Prometheus's default 1m resend delay.
    #[test]
    fn sending_follows_the_resend_delay_and_sets_valid_until() {
        let mut rule = rule(0, 0);
        let present = || vec![sample(&[("a", "1")], 2.0)];
        eval(&mut rule, 1000, present());
        assert_eq!(rule.alerts_to_send(1000).len(), 1);
        assert_eq!(only_alert(&rule).valid_until_ms, 1000 + 4 * RESEND_DELAY_MS);
        eval(&mut rule, 2000, present());
        assert!(rule.alerts_to_send(2000).is_empty());
        let later = 1000 + RESEND_DELAY_MS + 1;
        rule.eval(later, 5 * MIN, &present(), 0, &literal).unwrap();
        assert_eq!(rule.alerts_to_send(later).len(), 1);
        assert_eq!(only_alert(&rule).valid_until_ms, later + 20 * MIN);
        eval(&mut rule, later + 1, vec![]);
        let resolved = rule.alerts_to_send(later + 1);
        assert_eq!(resolved.len(), 1, "resolution is sent at once");
        assert_eq!(resolved[0].state, AlertState::Inactive);
    }

    #[test]
    fn pending_alert_is_never_sent() {
        let mut rule = rule(MIN, 0);
        eval(&mut rule, 0, vec![sample(&[("a", "1")], 1.0)]);
        assert!(rule.alerts_to_send(0).is_empty());
        assert_eq!(only_alert(&rule).last_sent_at_ms(), None);
    }

    fn through_json(snapshot: &RuleStateSnapshot) -> RuleStateSnapshot {
        let text = serde_json::to_string(snapshot).expect("serialises");
        serde_json::from_str(&text).expect("deserialises")
    }

    /// Mirrors manager_test.go `TestForStateRestore` ("normal restore"): a pending alert
    /// keeps the time it had spent pending; the downtime does not count.
    #[test]
    fn restore_keeps_the_for_clock_across_a_restart() {
        let mut before = rule(25 * MIN, 0);
        let present = || vec![sample(&[("instance", "0")], 75.0)];
        eval(&mut before, 0, present());
        eval(&mut before, 5 * MIN, present());
        let snapshot = through_json(&before.snapshot());
        assert_eq!(snapshot.taken_at_ms, 5 * MIN);

        let mut after = rule(25 * MIN, 0);
        after.restore(snapshot, 15 * MIN, 10 * MIN);
        let alert = only_alert(&after);
        assert_eq!(alert.state, AlertState::Pending);
        assert_eq!(alert.active_at_ms, 10 * MIN, "moved on by the 10m downtime");
        eval(&mut after, 34 * MIN, present());
        assert_eq!(only_alert(&after).state, AlertState::Pending);
        eval(&mut after, 35 * MIN, present());
        assert_eq!(only_alert(&after).state, AlertState::Firing);
    }

    #[test]
    fn restore_after_an_immediate_restart_keeps_active_at() {
        let mut before = rule(25 * MIN, 0);
        eval(&mut before, 5 * MIN, vec![sample(&[("a", "1")], 1.0)]);
        let mut after = rule(25 * MIN, 0);
        after.restore(before.snapshot(), 5 * MIN, 10 * MIN);
        assert_eq!(only_alert(&after).active_at_ms, 5 * MIN);
    }

    /// Mirrors manager_test.go `TestForStateRestore` ("grace period"): an alert about to
    /// fire waits the grace period after the restart.
    #[test]
    fn restore_gives_a_nearly_due_alert_the_grace_period() {
        let mut before = rule(25 * MIN, 0);
        eval(&mut before, 0, vec![sample(&[("a", "1")], 1.0)]);
        eval(&mut before, 20 * MIN, vec![sample(&[("a", "1")], 1.0)]);
        let (restart_at, grace) = (25 * MIN, 10 * MIN);
        let mut after = rule(25 * MIN, 0);
        after.restore(before.snapshot(), restart_at, grace);
        let fires_at = only_alert(&after).active_at_ms + after.for_ms;
        assert_eq!(fires_at - restart_at, grace);
    }

    /// Mirrors manager_test.go `TestForStateRestore` ("outage tolerance") and Prometheus
    /// skipping restoration when `for` is shorter than the grace period.
    #[test]
    fn restore_starts_over_after_a_long_outage_or_with_a_short_for() {
        let mut before = rule(25 * MIN, 0);
        eval(&mut before, 0, vec![sample(&[("a", "1")], 1.0)]);
        let mut after = rule(25 * MIN, 0);
        after.restore(before.snapshot(), OUTAGE_TOLERANCE_MS + 1, 10 * MIN);
        assert!(after.active_alerts().is_empty());

        let mut short = rule(5 * MIN, 0);
        eval(&mut short, 0, vec![sample(&[("a", "1")], 1.0)]);
        let mut after = rule(5 * MIN, 0);
        after.restore(short.snapshot(), MIN, 10 * MIN);
        assert!(after.active_alerts().is_empty());
    }

    #[test]
    fn restore_keeps_a_resolved_alert_for_its_retention() {
        let mut before = rule(0, 0);
        eval(&mut before, 0, vec![sample(&[("a", "1")], 1.0)]);
        eval(&mut before, MIN, vec![]);
        let mut after = rule(0, 0);
        after.restore(through_json(&before.snapshot()), 3 * MIN, 10 * MIN);
        let alert = only_alert(&after);
        assert_eq!(alert.state, AlertState::Inactive);
        assert_eq!(alert.resolved_at_ms(), Some(MIN));
        let series = eval(&mut after, 4 * MIN, vec![]);
        assert!(series.is_empty());
        assert_eq!(after.alerts_to_send(4 * MIN).len(), 1, "resolution re-sent");
        eval(&mut after, MIN + RESOLVED_RETENTION_MS + 1, vec![]);
        assert!(after.active_alerts().is_empty());
    }

    #[test]
    fn restore_keeps_a_firing_alert_and_its_keep_firing_clock() {
        let mut before = rule(0, 5 * MIN);
        eval(&mut before, 0, vec![sample(&[("a", "1")], 1.0)]);
        eval(&mut before, MIN, vec![]);
        let mut after = rule(0, 5 * MIN);
        after.restore(through_json(&before.snapshot()), 2 * MIN, 10 * MIN);
        let alert = only_alert(&after);
        assert_eq!(alert.state, AlertState::Firing);
        assert_eq!(alert.fired_at_ms(), Some(0));
        assert_eq!(alert.keep_firing_since_ms(), Some(MIN));
        assert!(alert.value.is_nan());
        eval(&mut after, 5 * MIN, vec![]);
        assert_eq!(only_alert(&after).state, AlertState::Firing);
        eval(&mut after, 6 * MIN, vec![]);
        assert_eq!(only_alert(&after).resolved_at_ms(), Some(6 * MIN));
    }
}
