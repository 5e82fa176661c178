//! The history: every collection's samples for `metrics_history_duration_hours`, in a compact
//! store. Every series is sampled on the same tick, so tick timestamps are kept once per block,
//! shared by all series. The newest block (the head) is kept raw; full blocks are sealed with
//! `pco` (see [`codec`]) and dropped whole once older than the retention.
//!
//! Owns the in-memory store: appending a tick, sealing, retention, reading series by matchers
//! and time window, read views for long readers ([`History::view`]), where recording rules'
//! samples land ([`History::add_recorded`]), and its own size figures. Files are [`persist`]'s,
//! aggregation [`aggregate`]'s, output formats [`export`]'s; selectors and times are read by
//! [`query`]; [`recorder`] feeds it each published collection; [`open`] opens a data dir's
//! history for offline use (exports, the offline dashboard).
//!
//! # Where recorded samples land
//! Samples only exist at ticks (one per collection), and the rules run on timers of their own.
//! A recording rule's sample evaluated at time `t` lands in the newest tick at or before `t`
//! when that tick is still in the head and has no value for the series yet; otherwise (an
//! earlier evaluation already landed there, or no such tick is in the head) it waits and lands
//! in the next tick the recorder appends, unless that collection has the series itself. So each
//! tick gets at most one value per recorded series, and a recording rule evaluated at least
//! once per collection gives a value at every tick, whatever the phase between the two timers.

pub mod aggregate;
pub mod codec;
pub mod export;
pub mod landing;
pub mod persist;
pub mod query;
pub mod recorder;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use codec::{Presence, SealedBlock, SealedColumn};

use crate::config::Config;
use crate::model::{Family, Snapshot};

/// One series: metric name and labels, sorted by label name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// The metric name.
    pub name: String,
    /// Label pairs, sorted by name.
    pub labels: Vec<(String, String)>,
}

impl SeriesKey {
    /// A key from a metric name and label pairs in any order (kept sorted by name).
    ///
    /// ```
    /// use ipfs_sentinel::history::SeriesKey;
    /// let key = SeriesKey::new("ipfs_up", &[("node", "b"), ("instance", "a")]);
    /// assert_eq!(key.labels[0], ("instance".to_owned(), "a".to_owned()));
    /// assert_eq!(key.label("__name__"), Some("ipfs_up"));
    /// ```
    pub fn new(name: &str, labels: &[(&str, &str)]) -> Self {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.sort();
        Self {
            name: name.to_owned(),
            labels,
        }
    }

    /// The value of label `name` (`__name__` is the metric name).
    pub fn label(&self, name: &str) -> Option<&str> {
        if name == "__name__" {
            return Some(&self.name);
        }
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A series' samples in a window: (ms since the Unix epoch, value), oldest first.
pub type Points = Vec<(i64, f64)>;

/// One tick's samples: each series with its value.
pub type TickSamples = Vec<(Arc<SeriesKey>, f64)>;

/// The head: the newest ticks, raw.
#[derive(Debug, Default, Clone)]
struct Head {
    ticks: Vec<i64>,
    /// Samples held, kept as they are added (counted afresh at each collection they cost a
    /// few per cent of per-second collection).
    samples: usize,
    /// Shared with read views, copied on write: a column is copied only when a view still
    /// holds it while a tick is appended.
    columns: HashMap<Arc<SeriesKey>, Arc<Column>>,
}

/// One series in the head: one slot per head tick.
#[derive(Debug, Default, Clone)]
struct Column {
    values: Vec<f64>,
    present: Vec<bool>,
}

impl Column {
    /// A column with no value at any of the first `ticks` ticks.
    fn absent_for(ticks: usize) -> Column {
        Column {
            values: vec![0.0; ticks],
            present: vec![false; ticks],
        }
    }
}

/// Size figures of the store, for `ipfs_sentinel_history_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Series with samples in the store.
    pub series: usize,
    /// Samples held.
    pub samples: usize,
    /// Bytes held: sealed blocks, the raw head and the series keys.
    pub bytes: usize,
}

/// The in-memory store.
#[derive(Debug)]
pub struct History {
    retention_ms: i64,
    block_ticks: usize,
    keys: HashSet<Arc<SeriesKey>>,
    /// The same keys by metric name, for selectors that name their metric (most do).
    by_name: HashMap<String, Vec<Arc<SeriesKey>>>,
    /// Shared with read views: a view costs a pointer per block, not a copy.
    sealed: VecDeque<Arc<SealedBlock>>,
    /// The sealed blocks' samples and bytes, kept as blocks come and go: summed afresh at each
    /// collection they took a sixth of the CPU of per-second collection over a day of history.
    sealed_figures: SealedFigures,
    head: Head,
    /// Recorded samples waiting for the next tick (see the module doc).
    waiting: HashMap<Arc<SeriesKey>, f64>,
    /// Recorded samples added to ticks the head log already holds, for the recorder to log.
    unlogged: Vec<(i64, TickSamples)>,
}

impl History {
    /// An empty store keeping `retention_ms` of history, sealing every `block_ticks` ticks.
    pub fn new(retention_ms: i64, block_ticks: usize) -> Self {
        Self {
            retention_ms,
            block_ticks: block_ticks.max(1),
            keys: HashSet::new(),
            by_name: HashMap::new(),
            sealed: VecDeque::new(),
            sealed_figures: SealedFigures::default(),
            head: Head::default(),
            waiting: HashMap::new(),
            unlogged: Vec::new(),
        }
    }

    /// A read view of the store as it is now, for readers that take long (rule evaluation):
    /// they read the view with no lock held, so they never hold up an append. Sealed blocks and
    /// head columns are shared (a column is copied only if a tick is appended while the view
    /// still holds it); the series index is copied, series with samples only.
    pub fn view(&self) -> History {
        let live = |k: &&Arc<SeriesKey>| Arc::strong_count(k) > 2;
        let keys: HashSet<Arc<SeriesKey>> = self.keys.iter().filter(live).cloned().collect();
        let by_name = self
            .by_name
            .iter()
            .map(|(name, named)| (name.clone(), named.iter().filter(live).cloned().collect()))
            .filter(|(_, named): &(String, Vec<Arc<SeriesKey>>)| !named.is_empty())
            .collect();
        History {
            retention_ms: self.retention_ms,
            block_ticks: self.block_ticks,
            keys,
            by_name,
            sealed: self.sealed.clone(),
            sealed_figures: self.sealed_figures,
            head: self.head.clone(),
            waiting: HashMap::new(),
            unlogged: Vec::new(),
        }
    }

    /// Adds recording rules' samples evaluated at `at_ms`: each lands in the newest tick at or
    /// before `at_ms` if that tick is in the head and has no value for its series, else waits
    /// for the next tick (see the module doc). Samples that landed are kept for the recorder to
    /// log ([`History::take_unlogged`]).
    pub fn add_recorded(&mut self, at_ms: i64, samples: TickSamples) {
        let at = self.head.ticks.partition_point(|t| *t <= at_ms);
        let Some(slot) = at.checked_sub(1) else {
            self.waiting.extend(samples);
            return;
        };
        let n = self.head.ticks.len();
        let mut landed = Vec::new();
        for (key, value) in samples {
            let column = self
                .head
                .columns
                .entry(Arc::clone(&key))
                .or_insert_with(|| Arc::new(Column::absent_for(n)));
            if column.present[slot] {
                self.waiting.insert(key, value);
            } else {
                let column = Arc::make_mut(column);
                column.values[slot] = value;
                column.present[slot] = true;
                self.head.samples += 1;
                landed.push((key, value));
            }
        }
        if !landed.is_empty() {
            self.unlogged.push((self.head.ticks[slot], landed));
        }
    }

    /// Recorded samples waiting for the next tick; the recorder adds them to it.
    pub fn take_waiting(&mut self) -> TickSamples {
        self.waiting.drain().collect()
    }

    /// Recorded samples added to ticks already appended, by tick, oldest first, for the head
    /// log.
    pub fn take_unlogged(&mut self) -> Vec<(i64, TickSamples)> {
        std::mem::take(&mut self.unlogged)
    }

    /// The shared instance of `key`, creating it if new.
    pub fn intern(&mut self, key: SeriesKey) -> Arc<SeriesKey> {
        if let Some(k) = self.keys.get(&key) {
            return Arc::clone(k);
        }
        let k = Arc::new(key);
        self.keys.insert(Arc::clone(&k));
        self.by_name
            .entry(k.name.clone())
            .or_default()
            .push(Arc::clone(&k));
        k
    }

    /// The series keys of a snapshot's samples with their values.
    pub fn samples_of(&mut self, snapshot: &Snapshot) -> TickSamples {
        snapshot
            .families
            .iter()
            .flat_map(|f: &Family| f.samples.iter().map(move |s| (f, s)))
            .map(|(f, s)| {
                let mut labels = s.labels.clone();
                labels.sort();
                (
                    self.intern(SeriesKey {
                        name: f.name.to_string(),
                        labels,
                    }),
                    s.value,
                )
            })
            .collect()
    }

    /// Appends one tick at `at_ms` with these samples. Ticks must increase; an older or equal
    /// one is ignored (returns false). Series absent from this tick get no sample. Returns true
    /// when it was appended; [`History::take_full_block`] then says whether a block is due.
    pub fn append(&mut self, at_ms: i64, samples: &[(Arc<SeriesKey>, f64)]) -> bool {
        if self.last_tick().is_some_and(|last| at_ms <= last) {
            return false;
        }
        let before = self.head.ticks.len();
        self.head.ticks.push(at_ms);
        for (key, value) in samples {
            let column = self
                .head
                .columns
                .entry(Arc::clone(key))
                .or_insert_with(|| Arc::new(Column::absent_for(before)));
            if column.present.len() == before + 1 {
                // The same series twice in one tick: the first value stands.
                continue;
            }
            let column = Arc::make_mut(column);
            column.values.push(*value);
            column.present.push(true);
            self.head.samples += 1;
        }
        for column in self.head.columns.values_mut() {
            if column.present.len() == before {
                let column = Arc::make_mut(column);
                column.values.push(0.0);
                column.present.push(false);
            }
        }
        true
    }

    /// Adds samples to the head's tick at `at_ms` (recording rules' results logged after their
    /// tick, read back from the head log); a series that already has a value there keeps it.
    /// Returns false when the head has no tick at `at_ms`.
    pub fn add_to_tick(&mut self, at_ms: i64, samples: &[(Arc<SeriesKey>, f64)]) -> bool {
        let Ok(slot) = self.head.ticks.binary_search(&at_ms) else {
            return false;
        };
        let n = self.head.ticks.len();
        for (key, value) in samples {
            let column = self
                .head
                .columns
                .entry(Arc::clone(key))
                .or_insert_with(|| Arc::new(Column::absent_for(n)));
            if !column.present[slot] {
                let column = Arc::make_mut(column);
                column.values[slot] = *value;
                column.present[slot] = true;
                self.head.samples += 1;
            }
        }
        true
    }

    /// Seals the head when it holds a full block, and returns the new sealed block.
    pub fn take_full_block(&mut self) -> Option<SealedBlock> {
        if self.head.ticks.len() < self.block_ticks {
            return None;
        }
        let block = seal(&std::mem::take(&mut self.head));
        self.sealed_figures.add(&block);
        self.sealed.push_back(Arc::new(block.clone()));
        Some(block)
    }

    /// Adds a sealed block read from disk (kept in time order).
    pub fn insert_sealed(&mut self, block: SealedBlock) {
        let at = self.sealed.partition_point(|b| b.first_ms < block.first_ms);
        self.sealed_figures.add(&block);
        self.sealed.insert(at, Arc::new(block));
    }

    /// Drops sealed blocks wholly older than the retention at `now_ms`, and the series that no
    /// longer have samples; returns the dropped blocks' first ticks (their file names).
    pub fn expire(&mut self, now_ms: i64) -> Vec<i64> {
        let cutoff = now_ms - self.retention_ms;
        let mut dropped = Vec::new();
        while self.sealed.front().is_some_and(|b| b.last_ms < cutoff) {
            if let Some(b) = self.sealed.pop_front() {
                self.sealed_figures.remove(&b);
                dropped.push(b.first_ms);
            }
        }
        if !dropped.is_empty() {
            // A key with no column in the head or a kept block has aged out. (Counting
            // references would not do: a read view may still hold the dropped blocks.)
            let live: HashSet<*const SeriesKey> = self
                .head
                .columns
                .keys()
                .chain(
                    self.sealed
                        .iter()
                        .flat_map(|b| b.columns.iter().map(|c| &c.key)),
                )
                .map(Arc::as_ptr)
                .collect();
            let waiting = &self.waiting;
            let kept =
                |k: &Arc<SeriesKey>| live.contains(&Arc::as_ptr(k)) || waiting.contains_key(k);
            self.keys.retain(kept);
            for named in self.by_name.values_mut() {
                named.retain(kept);
            }
            self.by_name.retain(|_, named| !named.is_empty());
        }
        dropped
    }

    /// The newest tick, if any.
    pub fn last_tick(&self) -> Option<i64> {
        self.head
            .ticks
            .last()
            .copied()
            .or_else(|| self.sealed.back().map(|b| b.last_ms))
    }

    /// Every tick with `start_ms <= t <= end_ms`, oldest first.
    pub fn ticks(&self, start_ms: i64, end_ms: i64) -> Vec<i64> {
        self.sealed
            .iter()
            .filter(|b| b.last_ms >= start_ms && b.first_ms <= end_ms)
            .flat_map(|b| b.ticks.iter().copied())
            .chain(self.head.ticks.iter().copied())
            .filter(|t| (start_ms..=end_ms).contains(t))
            .collect()
    }

    /// The oldest tick, if any.
    pub fn first_tick(&self) -> Option<i64> {
        self.sealed
            .front()
            .map(|b| b.first_ms)
            .or_else(|| self.head.ticks.first().copied())
    }

    /// Every series with samples, sorted, that `keep` accepts.
    pub fn series(&self, keep: impl Fn(&SeriesKey) -> bool) -> Vec<Arc<SeriesKey>> {
        // A key held by the two indexes alone has no samples (it was interned for a tick that
        // was refused, or its blocks expired): leave it out.
        let mut found: Vec<Arc<SeriesKey>> = self
            .keys
            .iter()
            .filter(|k| Arc::strong_count(k) > 2 && keep(k))
            .cloned()
            .collect();
        found.sort();
        found
    }

    /// Like [`History::series`], for the series of one metric name only: a lookup instead of a
    /// scan, for selectors that name their metric. In no particular order: evaluation needs
    /// none, and sorting was a tenth of a rule round.
    pub fn series_named(
        &self,
        name: &str,
        keep: impl Fn(&SeriesKey) -> bool,
    ) -> Vec<Arc<SeriesKey>> {
        self.by_name
            .get(name)
            .map(|named| {
                named
                    .iter()
                    .filter(|k| Arc::strong_count(k) > 2 && keep(k))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The samples of `key` with `start_ms <= t <= end_ms`, oldest first.
    pub fn points(
        &self,
        key: &SeriesKey,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Points, codec::DecodeError> {
        let mut out = Vec::new();
        for block in &self.sealed {
            if block.last_ms < start_ms || block.first_ms > end_ms {
                continue;
            }
            // Columns are sorted by key when a block is sealed.
            let Ok(at) = block.columns.binary_search_by(|c| (*c.key).cmp(key)) else {
                continue;
            };
            let column = &block.columns[at];
            let ticks = &block.ticks;
            let flags = column.presence.flags(block.n_ticks)?;
            let values = codec::decompress_values(&column.values)?;
            if ticks.len() != block.n_ticks || values.len() != flags.iter().filter(|f| **f).count()
            {
                return Err(codec::DecodeError(
                    "block columns disagree in length".into(),
                ));
            }
            let mut values = values.into_iter();
            for (&t, present) in ticks.iter().zip(flags) {
                if present {
                    let v = values.next().unwrap_or(f64::NAN);
                    if (start_ms..=end_ms).contains(&t) {
                        out.push((t, v));
                    }
                }
            }
        }
        if let Some(column) = self.head.columns.get(key) {
            for (i, &t) in self.head.ticks.iter().enumerate() {
                if column.present[i] && (start_ms..=end_ms).contains(&t) {
                    out.push((t, column.values[i]));
                }
            }
        }
        Ok(out)
    }

    /// The head's ticks with each present series' value, oldest first (for rewriting the log).
    pub fn head_ticks(&self) -> Vec<(i64, TickSamples)> {
        self.head
            .ticks
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let samples = self
                    .head
                    .columns
                    .iter()
                    .filter(|(_, c)| c.present[i])
                    .map(|(k, c)| (Arc::clone(k), c.values[i]))
                    .collect();
                (t, samples)
            })
            .collect()
    }

    /// Size figures.
    pub fn stats(&self) -> Stats {
        let head_bytes = self.head.ticks.len() * 8
            + self
                .head
                .columns
                .values()
                .map(|c| c.values.len() * 9 + 64)
                .sum::<usize>();
        let key_bytes: usize = self
            .keys
            .iter()
            .map(|k| {
                k.name.len()
                    + k.labels
                        .iter()
                        .map(|(a, b)| a.len() + b.len() + 48)
                        .sum::<usize>()
                    + 64
            })
            .sum();
        Stats {
            series: self.keys.len(),
            samples: self.sealed_figures.samples + self.head.samples,
            bytes: self.sealed_figures.bytes + head_bytes + key_bytes,
        }
    }
}

/// Samples and bytes held in sealed blocks.
#[derive(Debug, Default, Clone, Copy)]
struct SealedFigures {
    samples: usize,
    bytes: usize,
}

impl SealedFigures {
    fn of(block: &SealedBlock) -> SealedFigures {
        SealedFigures {
            samples: block
                .columns
                .iter()
                .map(|c| match &c.presence {
                    Presence::All => block.n_ticks,
                    Presence::Runs(runs) => runs.iter().step_by(2).map(|r| *r as usize).sum(),
                })
                .sum(),
            bytes: block.byte_size(),
        }
    }

    fn add(&mut self, block: &SealedBlock) {
        let f = SealedFigures::of(block);
        self.samples += f.samples;
        self.bytes += f.bytes;
    }

    fn remove(&mut self, block: &SealedBlock) {
        let f = SealedFigures::of(block);
        self.samples = self.samples.saturating_sub(f.samples);
        self.bytes = self.bytes.saturating_sub(f.bytes);
    }
}

/// Ticks per sealed history block: about two hours of collections.
fn block_ticks(interval_seconds: f64) -> usize {
    ((2.0 * 3600.0) / interval_seconds).ceil().max(1.0) as usize
}

/// Opens the history kept in `data_dir` with the retention and block size `config` gives it.
/// Read-only (exports, the offline dashboard) touches nothing, so it is safe beside a running
/// sentinel.
pub fn open(
    config: &Config,
    data_dir: &Path,
    read_only: bool,
) -> std::io::Result<(History, persist::Persistence)> {
    let monitoring = &config.cluster.monitoring;
    let retention_ms = (monitoring.metrics_history_duration_hours.0 * 3_600_000.0) as i64;
    let mut history = History::new(
        retention_ms,
        block_ticks(monitoring.collection_interval_seconds.0),
    );
    let (persistence, _set_aside) = persist::Persistence::open(
        data_dir,
        &mut history,
        read_only,
        crate::clock::system_ms(SystemTime::now()),
    )?;
    Ok((history, persistence))
}

/// Compresses a full head into a sealed block.
fn seal(head: &Head) -> SealedBlock {
    let mut columns: Vec<SealedColumn> = head
        .columns
        .iter()
        .filter(|(_, c)| c.present.iter().any(|p| *p))
        .map(|(key, c)| {
            let present: Vec<f64> = c
                .values
                .iter()
                .zip(&c.present)
                .filter(|(_, p)| **p)
                .map(|(v, _)| *v)
                .collect();
            SealedColumn {
                key: Arc::clone(key),
                presence: Presence::from_flags(&c.present),
                values: codec::compress_values(&present),
            }
        })
        .collect();
    columns.sort_by(|a, b| a.key.cmp(&b.key));
    SealedBlock {
        first_ms: head.ticks.first().copied().unwrap_or(0),
        last_ms: head.ticks.last().copied().unwrap_or(0),
        n_ticks: head.ticks.len(),
        ticks: head.ticks.clone(),
        columns,
    }
}

/// `ipfs_sentinel_history_*` families for these figures.
pub fn stats_families(stats: Stats) -> Vec<Family> {
    vec![
        Family::single_gauge(
            "ipfs_sentinel_history_series",
            "Series with samples in the history.",
            stats.series as f64,
        ),
        Family::single_gauge(
            "ipfs_sentinel_history_samples",
            "Samples held in the history.",
            stats.samples as f64,
        ),
        Family::single_gauge(
            "ipfs_sentinel_history_bytes",
            "Memory the history holds: sealed blocks, the raw newest block and series keys.",
            stats.bytes as f64,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(name: &str) -> SeriesKey {
        SeriesKey {
            name: name.into(),
            labels: vec![("a".into(), "1".into())],
        }
    }

    proptest! {
        /// Series appear and vanish at random ticks, ticks are irregular, values are any bits:
        /// whatever was appended is read back exactly, across sealed blocks and the head.
        #[test]
        fn appended_samples_read_back_exactly(
            rows in prop::collection::vec(
                (1i64..100_000, prop::collection::vec(prop::option::of(any::<u64>().prop_map(f64::from_bits)), 3)),
                1..200),
            block in 1usize..50,
        ) {
            let mut h = History::new(i64::MAX / 4, block);
            let keys: Vec<_> = ["x", "y", "z"].iter().map(|n| h.intern(key(n))).collect();
            let mut expected: Vec<Points> = vec![Vec::new(); 3];
            let mut t = 1_700_000_000_000i64;
            for (gap, values) in &rows {
                t += gap;
                let samples: Vec<_> = values.iter().enumerate()
                    .filter_map(|(i, v)| v.map(|v| (Arc::clone(&keys[i]), v)))
                    .collect();
                prop_assert!(h.append(t, &samples));
                h.take_full_block();
                for (i, v) in values.iter().enumerate() {
                    if let Some(v) = v { expected[i].push((t, *v)); }
                }
            }
            prop_assert_eq!(h.stats().samples, expected.iter().map(Vec::len).sum::<usize>());
            for (i, k) in keys.iter().enumerate() {
                let got = h.points(k, i64::MIN, i64::MAX).unwrap();
                prop_assert_eq!(got.len(), expected[i].len());
                for (g, e) in got.iter().zip(&expected[i]) {
                    prop_assert_eq!(g.0, e.0);
                    prop_assert_eq!(g.1.to_bits(), e.1.to_bits());
                }
            }
        }
    }

    #[test]
    fn windows_retention_and_aging_out() {
        let mut h = History::new(10_000, 2);
        let a = h.intern(key("a"));
        let gone = h.intern(key("gone"));
        for t in 1..=6 {
            let mut s = vec![(Arc::clone(&a), t as f64)];
            if t <= 2 {
                s.push((Arc::clone(&gone), 9.0));
            }
            h.append(t * 1000, &s);
            h.take_full_block();
        }
        assert!(
            !h.append(6000, &[(Arc::clone(&a), 0.0)]),
            "a tick that is not newer is refused"
        );
        assert_eq!(
            h.points(&a, 2000, 4000).unwrap(),
            vec![(2000, 2.0), (3000, 3.0), (4000, 4.0)]
        );
        assert_eq!(h.stats().series, 2);
        assert_eq!(h.stats().samples, 8);
        drop((a, gone));
        assert_eq!(
            h.expire(14_500),
            vec![1000, 3000],
            "blocks ending before now - retention go"
        );
        assert_eq!(h.series(|_| true).len(), 1, "the vanished series aged out");
        assert_eq!(h.stats().series, 1);
        assert_eq!(
            h.stats().samples,
            2,
            "the samples of the expired blocks are no longer counted"
        );
        assert_eq!(h.first_tick(), Some(5000));
    }

    #[test]
    fn recorded_samples_land_once_per_tick_whatever_the_phase() {
        let mut h = History::new(i64::MAX / 4, 100);
        let m = h.intern(key("m"));
        let r = h.intern(key("recorded"));
        let recorded = |v: f64| vec![(Arc::clone(&r), v)];
        assert!(h.append(60_000, &[(Arc::clone(&m), 1.0)]));
        // Evaluated after the tick: lands in it, and is logged late.
        h.add_recorded(60_500, recorded(1.0));
        assert_eq!(h.stats().samples, 2, "a recorded sample landed is counted");
        assert_eq!(h.take_unlogged().len(), 1);
        // Evaluated again before the next tick (the timers' phase drifted): that tick already
        // has a value, so this one waits for the next tick.
        h.add_recorded(119_900, recorded(2.0));
        assert!(h.take_unlogged().is_empty());
        let mut next = vec![(Arc::clone(&m), 2.0)];
        next.extend(h.take_waiting());
        assert!(h.append(120_000, &next));
        assert_eq!(
            h.points(&r, 0, i64::MAX).unwrap(),
            vec![(60_000, 1.0), (120_000, 2.0)],
            "one value per tick, no gap"
        );
        // A view reads the same, and keeps reading it while the store moves on.
        let view = h.view();
        assert!(h.append(180_000, &[(Arc::clone(&m), 3.0)]));
        assert_eq!(view.points(&m, 0, i64::MAX).unwrap().len(), 2);
        assert_eq!(view.series(|_| true).len(), 2);
        assert_eq!(h.points(&m, 0, i64::MAX).unwrap().len(), 3);
    }
}
