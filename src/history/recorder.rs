//! Feeds the history: once per collection interval it takes the latest complete snapshot,
//! appends it as one tick, lets a hook add what it derives from it (the rule engine's recorded
//! series, at the same tick), writes the tick to the head log, seals and writes full blocks,
//! and drops what aged out. Also the `history` collector, which exposes the store's size.
//!
//! Owns the schedule and the order of those steps; the store is [`super::History`], the files
//! [`super::persist`]. The store's lock is never held across a wait or a file write.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use super::persist::Persistence;
use super::query::system_ms;
use super::{History, TickSamples};
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

/// A write to the history's files failed: one warning line; the tick stays in memory.
struct HistoryWriteFailed<'a> {
    error: &'a std::io::Error,
}

impl HistoryWriteFailed<'_> {
    fn emit(&self) {
        tracing::warn!(error = %self.error, "cannot write the history to the data dir; it is kept in memory");
    }
}

/// What runs right after a tick is appended, with the store locked: it returns samples to add
/// to the same tick (recording rules), and must not lock the store itself.
pub type AfterAppend = Box<dyn FnMut(i64, &mut History) -> TickSamples + Send>;

/// Records one tick now; returns whether one was appended.
pub fn record_tick(
    history: &SharedHistory,
    persistence: &mut Persistence,
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
    let written = persistence.record_tick(now_ms, &samples).and_then(|()| {
        if let Some(block) = &sealed {
            persistence.write_block(block)?;
            persistence.rewrite_log(&lock(history))?;
        }
        persistence.remove_blocks(&expired)
    });
    if let Err(error) = written {
        HistoryWriteFailed { error: &error }.emit();
    }
    true
}

/// Records a tick every `interval` until `shutdown` resolves.
pub async fn run(
    history: SharedHistory,
    mut persistence: Persistence,
    cache: ExpositionCache,
    mut after_append: AfterAppend,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick fires at once, before any collection: skip it.
    ticker.tick().await;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => {
                let (h, c) = (Arc::clone(&history), cache.clone());
                (persistence, after_append) = match tokio::task::spawn_blocking(move || {
                    record_tick(&h, &mut persistence, &c, &mut after_append, SystemTime::now());
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
}

/// Exposes the history's size: `ipfs_sentinel_history_{series,samples,bytes}`.
pub struct HistoryCollector {
    history: SharedHistory,
}

impl HistoryCollector {
    /// A collector reading `history`.
    pub fn new(history: SharedHistory) -> Self {
        Self { history }
    }
}

impl Collector for HistoryCollector {
    fn name(&self) -> &'static str {
        "history"
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>> {
        let stats = lock(&self.history).stats();
        Box::pin(async move { Ok(super::stats_families(stats)) })
    }
}
