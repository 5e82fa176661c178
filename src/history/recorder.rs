//! Feeds the history: it appends each collection the collection loop publishes as one tick,
//! exactly once (collections arrive numbered over a channel, so none is recorded twice and a
//! skipped one is logged), adds the recording rules' samples waiting for that tick, writes the
//! tick to the head log, seals and writes full blocks, and drops what aged out. When a write
//! fails (data dir read-only or full) the tick stays in memory and is written once writes
//! succeed again, and at shutdown. Also the `history` collector, which exposes the store's size
//! and how writing it goes.
//!
//! Owns the order of those steps; the store is [`super::History`], the files
//! [`super::persist`]. The store's write lock is held only to change it in memory, never across
//! a wait or a file write; rule evaluation reads a [`History::view`] and is no business of
//! this module.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};

use super::persist::Persistence;
use super::History;
use crate::clock::system_ms;
use crate::collect::{CollectError, Collection, Collector};
use crate::model::{Family, Snapshot};

/// The store, shared by the recorder, the rules task, the collector and the HTTP API.
pub type SharedHistory = Arc<RwLock<History>>;

/// Reads the store; a panic elsewhere while it was held leaves data that is still readable.
pub fn read(history: &SharedHistory) -> RwLockReadGuard<'_, History> {
    history
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Changes the store (appending, adding recorded samples); held briefly, never across a file
/// write.
pub fn write(history: &SharedHistory) -> RwLockWriteGuard<'_, History> {
    history
        .write()
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

/// Collections the recorder never got (it was behind and the channel was full): one warning.
struct CollectionsSkipped {
    from: u64,
    to: u64,
}

impl CollectionsSkipped {
    fn emit(&self) {
        tracing::warn!(
            from = self.from,
            to = self.to,
            "the history recorder was behind: these collections are not in the history"
        );
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

/// Records `snapshot` as one tick at the time it was taken, with the recorded samples waiting
/// for it; returns the tick's time, or `None` when the store already holds a tick as new (the
/// clock went back).
pub fn record_tick(
    history: &SharedHistory,
    persistence: &mut Persistence,
    health: &WriteHealth,
    snapshot: &Snapshot,
) -> Option<i64> {
    let now_ms = system_ms(snapshot.taken_at);
    let (late, samples, sealed, expired) = {
        let mut h = write(history);
        if h.last_tick().is_some_and(|last| now_ms <= last) {
            return None;
        }
        let mut samples = h.samples_of(snapshot);
        // After the collected ones: where both have a series, the collected value stands.
        samples.extend(h.take_waiting());
        // Sealed before the append, so the newest tick is always in the head, where the
        // recording rules' samples evaluated after it can still land.
        let sealed = h.take_full_block();
        h.append(now_ms, &samples);
        let late = h.take_unlogged();
        (late, samples, sealed, h.expire(now_ms))
    };
    // Recorded samples that landed in ticks already logged: a second record for their tick. A
    // failed one leaves the log behind, and the flush below rewrites it from the head.
    let late_failed = late.iter().find_map(|(at_ms, landed)| {
        (!persistence.is_behind())
            .then(|| persistence.record_tick(*at_ms, landed))
            .and_then(Result::err)
    });
    let written = persistence
        .persist_tick(now_ms, &samples, sealed, || read(history))
        .and_then(|()| persistence.remove_blocks(&expired));
    let failed = written
        .err()
        .or(late_failed.filter(|_| persistence.is_behind()));
    if let Some(error) = failed {
        HistoryWriteFailed { error: &error }.emit(health);
    }
    health
        .behind
        .store(persistence.is_behind(), Ordering::Relaxed);
    Some(now_ms)
}

/// Records each collection that arrives on `collections` until `shutdown` resolves or the
/// collection loop stops, telling `appended` each tick's time; then writes what a failed write
/// left only in memory, and the recording rules' samples not yet logged (one last try), and
/// returns.
pub async fn run(
    history: SharedHistory,
    mut persistence: Persistence,
    health: Arc<WriteHealth>,
    mut collections: mpsc::Receiver<Collection>,
    appended: watch::Sender<Option<i64>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut last_number = 0;
    loop {
        let collection = tokio::select! {
            _ = &mut shutdown => break,
            received = collections.recv() => match received {
                Some(c) => c,
                None => break,
            },
        };
        if collection.number > last_number + 1 {
            CollectionsSkipped {
                from: last_number + 1,
                to: collection.number - 1,
            }
            .emit();
        }
        last_number = collection.number;
        let (h, w) = (Arc::clone(&history), Arc::clone(&health));
        let recorded = tokio::task::spawn_blocking(move || {
            let at = record_tick(&h, &mut persistence, &w, &collection.snapshot);
            (persistence, at)
        })
        .await;
        match recorded {
            Ok((kept, at)) => {
                persistence = kept;
                if at.is_some() {
                    appended.send_replace(at);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "history recorder stopped");
                return;
            }
        }
    }
    let flushed = tokio::task::spawn_blocking(move || {
        let late = write(&history).take_unlogged();
        for (at_ms, landed) in &late {
            if !persistence.is_behind() {
                persistence.record_tick(*at_ms, landed)?;
            }
        }
        if persistence.is_behind() {
            persistence.flush(|| read(&history))?;
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
    if let Ok(Err(error)) = flushed {
        HistoryWriteFailed { error: &error }.emit(&health);
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
            let mut families = super::stats_families(read(&history).stats());
            families.extend(health.families());
            families
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use tokio::sync::oneshot;

    use super::*;
    use crate::history::SeriesKey;

    fn collection(number: u64, seconds: u64) -> Collection {
        Collection {
            number,
            snapshot: Arc::new(Snapshot::new(
                SystemTime::UNIX_EPOCH + Duration::from_secs(seconds),
                vec![Family::single_gauge("m", "m", seconds as f64)],
            )),
        }
    }

    fn key(name: &str) -> SeriesKey {
        SeriesKey {
            name: name.to_owned(),
            labels: Vec::new(),
        }
    }

    #[tokio::test]
    async fn each_collection_is_one_tick_at_its_time_and_late_recorded_samples_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = History::new(i64::MAX / 4, 100);
        let (persistence, _) = Persistence::open(dir.path(), &mut store, false, 0).unwrap();
        let history: SharedHistory = Arc::new(RwLock::new(store));
        let (collections, received) = mpsc::channel(4);
        let (appended_tx, mut appended) = watch::channel(None);
        let (stop, stopped) = oneshot::channel::<()>();
        let recording = tokio::spawn(run(
            Arc::clone(&history),
            persistence,
            Arc::new(WriteHealth::default()),
            received,
            appended_tx,
            async move {
                let _ = stopped.await;
            },
        ));
        for (number, seconds) in [(1, 100), (2, 160), (4, 280)] {
            collections.send(collection(number, seconds)).await.unwrap();
        }
        appended.wait_for(|at| *at == Some(280_000)).await.unwrap();
        // A recording rule evaluated after the last tick: it lands there, and is in the head
        // log by the time the recorder stops.
        {
            let mut h = write(&history);
            let r = h.intern(key("r"));
            h.add_recorded(280_500, vec![(r, 7.0)]);
        }
        stop.send(()).unwrap();
        recording.await.unwrap();
        assert_eq!(
            read(&history).ticks(0, i64::MAX),
            vec![100_000, 160_000, 280_000],
            "one tick per collection, at the collection's time"
        );
        let mut reopened = History::new(i64::MAX / 4, 100);
        Persistence::open(dir.path(), &mut reopened, true, 0).unwrap();
        assert_eq!(
            reopened.points(&key("m"), 0, i64::MAX).unwrap(),
            vec![(100_000, 100.0), (160_000, 160.0), (280_000, 280.0)]
        );
        assert_eq!(
            reopened.points(&key("r"), 0, i64::MAX).unwrap(),
            vec![(280_000, 7.0)]
        );
    }
}
