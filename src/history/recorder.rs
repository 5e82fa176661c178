//! Feeds the history: once per collection interval it takes the latest complete snapshot,
//! appends it as one tick, lets a hook add what it derives from it (the rule engine's recorded
//! series, at the same tick), writes the tick to the head log, seals and writes full blocks,
//! and drops what aged out. When a write fails (data dir read-only or full) the tick stays in
//! memory and is written once writes succeed again, and at shutdown. Also the `history`
//! collector, which exposes the store's size and how writing it goes.
//!
//! Owns the schedule and the order of those steps; the store is [`super::History`], the files
//! [`super::persist`]. The store's lock is never held across a wait or a file write.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use super::persist::Persistence;
use super::{History, TickSamples};
use crate::clock::system_ms;
use crate::collect::{CollectError, Collector};
use crate::exposition::ExpositionCache;
use crate::model::Family;

/// The store, shared by the recorder, the collector and the HTTP API.
pub type SharedHistory = Arc<Mutex<History>>;

/// Locks the store; a panic elsewhere while it was held leaves data that is still readable.
pub fn lock(history: &SharedHistory) -> std::sync::MutexGuard<'_, History> {
    history
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A write to the history's files failed: one warning line and
/// `ipfs_sentinel_history_write_failures_total`; the tick stays in memory and is written when
/// the data dir takes writes again.
struct HistoryWriteFailed<'a> {
    error: &'a std::io::Error,
}

impl HistoryWriteFailed<'_> {
    fn emit(&self, health: &WriteHealth) {
        health.failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %self.error, "cannot write the history to the data dir; it is kept in memory and written when the data dir takes writes again");
    }
}

/// How writing the history to the data dir goes, shared by the recorder and the `history`
/// collector.
#[derive(Debug, Default)]
pub struct WriteHealth {
    failures: AtomicU64,
    behind: AtomicBool,
}

impl WriteHealth {
    fn families(&self) -> Vec<Family> {
        vec![
            Family::counter(
                "ipfs_sentinel_history_write_failures_total",
                "Ticks whose write to the data dir failed (read-only, full, or gone).",
            )
            .with(&[], self.failures.load(Ordering::Relaxed) as f64),
            Family::single_gauge(
                "ipfs_sentinel_history_behind",
                "1 when the data dir lacks ticks held in memory because a write failed, else 0.",
                if self.behind.load(Ordering::Relaxed) {
                    1.0
                } else {
                    0.0
                },
            ),
        ]
    }
}

/// What runs right after a tick is appended, with the store locked: it returns samples to add
/// to the same tick (recording rules), and must not lock the store itself.
pub type AfterAppend = Box<dyn FnMut(i64, &mut History) -> TickSamples + Send>;

/// What runs before each tick is recorded, with nothing locked, given the tick's time: work that
/// waits on the network (a remote rule datasource's answers) belongs here, not in
/// [`AfterAppend`].
pub type BeforeTick = Box<dyn FnMut(i64) -> futures::future::BoxFuture<'static, ()> + Send>;

/// Records one tick at `now`; returns whether one was appended.
pub fn record_tick(
    history: &SharedHistory,
    persistence: &mut Persistence,
    health: &WriteHealth,
    cache: &ExpositionCache,
    after_append: &mut AfterAppend,
    now: SystemTime,
) -> bool {
    let current = cache.current();
    if !current.ready {
        return false;
    }
    let now_ms = system_ms(now);
    let (samples, sealed, expired) = {
        let mut h = lock(history);
        let mut samples = h.samples_of(&current.snapshot);
        if !h.append(now_ms, &samples) {
            return false;
        }
        let derived = after_append(now_ms, &mut h);
        h.add_to_last_tick(now_ms, &derived);
        samples.extend(derived);
        (samples, h.take_full_block(), h.expire(now_ms))
    };
    let written = persistence
        .persist_tick(now_ms, &samples, sealed, || lock(history))
        .and_then(|()| persistence.remove_blocks(&expired));
    if let Err(error) = written {
        HistoryWriteFailed { error: &error }.emit(health);
    }
    health
        .behind
        .store(persistence.is_behind(), Ordering::Relaxed);
    true
}

/// The work done around each tick: before it (unlocked, may wait) and right after its append.
pub struct TickHooks {
    /// Runs first, with the tick's time.
    pub before: BeforeTick,
    /// Runs with the store locked, right after the append.
    pub after_append: AfterAppend,
}

/// Records a tick every `interval` until `shutdown` resolves, then writes what a failed write
/// left only in memory (one last try) and returns.
pub async fn run(
    history: SharedHistory,
    mut persistence: Persistence,
    health: Arc<WriteHealth>,
    cache: ExpositionCache,
    hooks: TickHooks,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let TickHooks {
        mut before,
        mut after_append,
    } = hooks;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick fires at once, before any collection: skip it.
    ticker.tick().await;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = ticker.tick() => {
                let now = SystemTime::now();
                (before)(system_ms(now)).await;
                let (h, c, w) = (Arc::clone(&history), cache.clone(), Arc::clone(&health));
                (persistence, after_append) = match tokio::task::spawn_blocking(move || {
                    record_tick(&h, &mut persistence, &w, &c, &mut after_append, now);
                    (persistence, after_append)
                })
                .await
                {
                    Ok(kept) => kept,
                    Err(e) => {
                        tracing::error!(error = %e, "history recorder stopped");
                        return;
                    }
                };
            }
        }
    }
    if persistence.is_behind() {
        let flushed =
            tokio::task::spawn_blocking(move || persistence.flush(|| lock(&history))).await;
        if let Ok(Err(error)) = flushed {
            HistoryWriteFailed { error: &error }.emit(&health);
        }
    }
}

/// Exposes the history's size: `ipfs_sentinel_history_{series,samples,bytes}`.
pub struct HistoryCollector {
    history: SharedHistory,
    health: Arc<WriteHealth>,
}

impl HistoryCollector {
    /// A collector reading `history`, and how writing it goes from `health`.
    pub fn new(history: SharedHistory, health: Arc<WriteHealth>) -> Self {
        Self { history, health }
    }
}

impl Collector for HistoryCollector {
    fn name(&self) -> &'static str {
        "history"
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>> {
        let history = Arc::clone(&self.history);
        let health = Arc::clone(&self.health);
        Box::pin(crate::collect::read_blocking(move || {
            let mut families = super::stats_families(lock(&history).stats());
            families.extend(health.families());
            families
        }))
    }
}
