//! The collection loop: a table of [`Collector`]s run together every interval, the first time
//! at start, each under its own timeout, merged into one [`Snapshot`] and handed on.
//!
//! Owns scheduling, the numbering of collections and the per-collector health metrics
//! (`ipfs_sentinel_collector_success`, `ipfs_sentinel_collector_duration_seconds`,
//! `ipfs_sentinel_collector_failures_total`) and their log lines ([`SourceHealth`]: a failing
//! source is logged when it starts failing, every few minutes while it stays failed, and when
//! it recovers). It never
//! encodes, serves or stores anything: each snapshot goes to the exposition cache, and each
//! complete collection (every collector has reported its n-th run), once, numbered, to the
//! history's recorder ([`publisher`]). A collector that fails or times out contributes its
//! [`Collector::on_failure`] families and a `collector_success 0`; the others are unaffected.

pub mod ipfs;
pub mod ipfs_cluster;
pub mod node;
pub mod peers;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::exposition::ExpositionCache;
use crate::model::{Family, Snapshot};

/// Why one collection of one source failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The source could not be reached or answered with an error.
    #[error("{0}")]
    Source(String),
}

/// Runs `read` on a blocking thread, for collectors that read a store another task may hold
/// for a moment (the history while a tick is appended, the rules while their states change):
/// the wait then holds up no runtime worker.
pub async fn read_blocking<T: Send + 'static>(
    read: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CollectError> {
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| CollectError::Source(format!("reading the store failed: {e}")))
}

// The HTTP helpers live with the clients; re-exported for the callers that still name them here.

/// One source of metrics.
pub trait Collector: Send {
    /// Short name, the value of the `collector` label.
    fn name(&self) -> &'static str;

    /// Reads the source once. May keep state between calls (rates, slow schedules). All
    /// collectors run in one task: a read that can block the thread (a file, a lock another
    /// thread holds for long) goes through [`read_blocking`].
    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>>;

    /// What to expose when `collect` failed or timed out (e.g. `ipfs_up 0`).
    fn on_failure(&mut self) -> Vec<Family> {
        Vec::new()
    }
}

/// How long a source that stays failed goes between two reminders in the log: it is logged
/// when it starts failing, then at most this often, then once when it recovers (the failure
/// counter counts every failed run).
pub const FAILURE_REMINDER_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// A collector failed after succeeding (or at its first run): one warning line.
struct CollectorFailed<'a> {
    collector: &'a str,
    error: &'a str,
}

impl CollectorFailed<'_> {
    fn emit(&self) {
        tracing::warn!(
            collector = self.collector,
            error = self.error,
            "collector failed; logged again every {} minutes while it stays failed",
            FAILURE_REMINDER_INTERVAL.as_secs() / 60
        );
    }
}

/// A collector still fails, [`FAILURE_REMINDER_INTERVAL`] after it was last logged.
struct CollectorStillFailing<'a> {
    collector: &'a str,
    error: &'a str,
    failed_runs: u64,
    for_seconds: u64,
}

impl CollectorStillFailing<'_> {
    fn emit(&self) {
        tracing::warn!(
            collector = self.collector,
            error = self.error,
            failed_runs = self.failed_runs,
            for_seconds = self.for_seconds,
            "collector still failing"
        );
    }
}

/// A failed collector succeeded again.
struct CollectorRecovered<'a> {
    collector: &'a str,
    failed_runs: u64,
    for_seconds: u64,
}

impl CollectorRecovered<'_> {
    fn emit(&self) {
        tracing::info!(
            collector = self.collector,
            failed_runs = self.failed_runs,
            for_seconds = self.for_seconds,
            "collector recovered"
        );
    }
}

/// One collector's health across its runs: counts every failure, and logs a failure when it
/// starts, reminders at most every [`FAILURE_REMINDER_INTERVAL`], and the recovery.
#[derive(Debug, Default)]
pub struct SourceHealth {
    failures_total: u64,
    /// Since when it fails, when it was last logged, and its failed runs in a row.
    failing: Option<(Instant, Instant, u64)>,
}

impl SourceHealth {
    /// Takes in one run's outcome at `now`: counts a failure into the outcome's
    /// `failures_total`, and writes the log line the change calls for, if any.
    pub fn observe(&mut self, outcome: &mut Outcome, now: Instant) {
        let collector = outcome.collector;
        match (&outcome.error, &mut self.failing) {
            (None, None) => {}
            (None, Some((since, _, failed_runs))) => {
                CollectorRecovered {
                    collector,
                    failed_runs: *failed_runs,
                    for_seconds: now.duration_since(*since).as_secs(),
                }
                .emit();
                self.failing = None;
            }
            (Some(error), None) => {
                self.failures_total += 1;
                CollectorFailed { collector, error }.emit();
                self.failing = Some((now, now, 1));
            }
            (Some(error), Some((since, logged, failed_runs))) => {
                self.failures_total += 1;
                *failed_runs += 1;
                if now.duration_since(*logged) >= FAILURE_REMINDER_INTERVAL {
                    CollectorStillFailing {
                        collector,
                        error,
                        failed_runs: *failed_runs,
                        for_seconds: now.duration_since(*since).as_secs(),
                    }
                    .emit();
                    *logged = now;
                }
            }
        }
        outcome.failures_total = self.failures_total;
    }
}

/// What one run of one collector gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The collector's name.
    pub collector: &'static str,
    /// Whether it succeeded in time.
    pub success: bool,
    /// How long it took, in seconds.
    pub duration_seconds: f64,
    /// Its families (its `on_failure` families when it failed).
    pub families: Vec<Family>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Its failed runs since the sentinel started, this one included (set by
    /// [`SourceHealth::observe`]).
    pub failures_total: u64,
}

/// Runs one collector once under `timeout`. Logs nothing: [`SourceHealth::observe`] decides.
pub async fn run_one(collector: &mut dyn Collector, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, collector.collect()).await;
    let duration_seconds = started.elapsed().as_secs_f64();
    let name = collector.name();
    let failure = match result {
        Ok(Ok(families)) => {
            return Outcome {
                collector: name,
                success: true,
                duration_seconds,
                families,
                error: None,
                failures_total: 0,
            }
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!(
            "no result within the collector timeout of {}s",
            timeout.as_secs_f64()
        ),
    };
    Outcome {
        collector: name,
        success: false,
        duration_seconds,
        families: collector.on_failure(),
        error: Some(failure),
        failures_total: 0,
    }
}

/// Builds a snapshot from the latest outcome of each collector, plus the health families.
pub fn assemble<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Snapshot {
    let mut success = Family::gauge(
        "ipfs_sentinel_collector_success",
        "1 when the collector's last run succeeded, 0 when it failed or timed out.",
    );
    let mut duration = Family::gauge(
        "ipfs_sentinel_collector_duration_seconds",
        "How long the collector's last run took.",
    );
    let mut failures = Family::counter(
        "ipfs_sentinel_collector_failures_total",
        "Runs of the collector that failed or timed out, since the sentinel started.",
    );
    let mut families = Vec::new();
    for outcome in outcomes {
        let labels = [("collector", outcome.collector)];
        success.push(&labels, if outcome.success { 1.0 } else { 0.0 });
        duration.push(&labels, outcome.duration_seconds);
        failures.push(&labels, outcome.failures_total as f64);
        families.extend(outcome.families.iter().cloned());
    }
    families.push(success);
    families.push(duration);
    families.push(failures);
    families.push(build_info());
    Snapshot::new(SystemTime::now(), merge_same_name(families))
}

/// `ipfs_sentinel_build_info{version} 1`.
pub fn build_info() -> Family {
    Family::gauge(
        "ipfs_sentinel_build_info",
        "Always 1; the version label says which ipfs-sentinel is running.",
    )
    .with(&[("version", env!("CARGO_PKG_VERSION"))], 1.0)
}

/// Joins families that two collectors both produced, so each name is exposed once.
fn merge_same_name(families: Vec<Family>) -> Vec<Family> {
    let mut merged: Vec<Family> = Vec::with_capacity(families.len());
    for family in families {
        match merged.iter_mut().find(|f| f.name == family.name) {
            Some(existing) => existing.samples.extend(family.samples),
            None => merged.push(family),
        }
    }
    merged
}

/// Where a published snapshot stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Every collector has reported at least once (the sentinel is ready).
    pub ready: bool,
    /// This snapshot completes collection number n (numbered from 1): every collector has
    /// reported its n-th run. Each number is given once, in order.
    pub completes: Option<u64>,
}

/// One complete collection, for the history.
#[derive(Debug, Clone)]
pub struct Collection {
    /// Its number, from 1; the recorder notices a gap.
    pub number: u64,
    /// What it produced; its time is the tick's.
    pub snapshot: Arc<Snapshot>,
}

/// Collections waiting for the recorder, at most; more are dropped with a warning (the data
/// dir is stalled for that long).
pub const COLLECTIONS_CAPACITY: usize = 16;

/// The `publish` of [`run`] for a sentinel: every snapshot to `cache` (what scrapes get), and
/// each complete collection, once, to `collections` (the history's recorder).
pub fn publisher(
    cache: ExpositionCache,
    collections: mpsc::Sender<Collection>,
) -> impl FnMut(Snapshot, Progress) + Send {
    move |snapshot, progress| {
        let snapshot = Arc::new(snapshot);
        if let Some(number) = progress.completes {
            let collection = Collection {
                number,
                snapshot: Arc::clone(&snapshot),
            };
            if let Err(mpsc::error::TrySendError::Full(_)) = collections.try_send(collection) {
                tracing::warn!(
                    collection = number,
                    "the history recorder is behind: this collection is not recorded"
                );
            }
        }
        cache.publish(snapshot, progress.ready);
    }
}

/// How long outcomes that do not complete a collection wait for the others before a partial
/// snapshot is published: at most this, and a tenth of the interval.
const PARTIAL_WAIT: Duration = Duration::from_millis(250);

/// Starts [`run`] on a thread of its own, under a single-threaded runtime, and returns a handle
/// that resolves when it stops. A round's work (ten HTTP calls and their connections, the
/// collectors, the snapshot) then stays on that thread: on the shared multi-threaded runtime
/// each call's connection task was handed to the other worker, woken through the I/O driver,
/// some forty cross-thread wake-ups a second at one collection a second. The server, the
/// recorder and the rules keep the shared runtime; blocking reads go to this runtime's own pool.
pub fn spawn(
    collectors: Vec<Box<dyn Collector>>,
    interval: Duration,
    timeout: Duration,
    publish: impl FnMut(Snapshot, Progress) + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, CollectError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("collection")
        .build()
        .map_err(|e| CollectError::Source(format!("cannot start the collection's runtime: {e}")))?;
    Ok(tokio::task::spawn_blocking(move || {
        // A task of the runtime rather than the future `block_on` polls: a wake-up of that one
        // writes to the runtime's eventfd each time (each answer of each call), a task's does not.
        let collecting = runtime.spawn(run(collectors, interval, timeout, publish, shutdown));
        let _ = runtime.block_on(collecting);
    }))
}

/// A collector between two runs, with its health.
type Idle = (Box<dyn Collector>, SourceHealth);

/// Runs every collector every `interval` (the first time at once) until `shutdown` resolves,
/// all of them driven by this one task and one timer: at each tick every collector that is not
/// still busy with its previous run starts a run under `timeout`; one still busy starts again
/// at the first tick after it reports. (Nine tasks, each with its own timer and a channel to
/// this one, woke the runtime some thirty times a second more at one collection a second.)
/// The snapshot is rebuilt from every collector's latest outcome and handed to `publish` with
/// its [`Progress`] as soon as the last collector of a collection reports, and otherwise
/// [`PARTIAL_WAIT`] (or a tenth of the interval) after the first outcome not yet published: a
/// slow source never holds back the others for longer, each collection is marked complete
/// exactly once, and a round whose collectors all answer at once is encoded once, not once per
/// collector (at one collection a second, the nine encodings were a fifth of the sentinel's
/// CPU). Collectors share this task, so none may block its thread (see [`Collector`]).
pub async fn run(
    collectors: Vec<Box<dyn Collector>>,
    interval: Duration,
    timeout: Duration,
    mut publish: impl FnMut(Snapshot, Progress) + Send,
    shutdown: impl std::future::Future<Output = ()>,
) {
    if collectors.is_empty() {
        return;
    }
    let mut idle: Vec<Option<Idle>> = collectors
        .into_iter()
        .map(|c| Some((c, SourceHealth::default())))
        .collect();
    let mut running = FuturesUnordered::new();
    let mut latest: Vec<Option<Outcome>> = vec![None; idle.len()];
    let mut runs: Vec<u64> = vec![0; idle.len()];
    let mut completed = 0;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let partial_wait = PARTIAL_WAIT.min(interval / 10);
    // When the outcomes received since the last publish are published without the others.
    let mut partial_due: Option<tokio::time::Instant> = None;
    loop {
        let partial = async {
            match partial_due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut shutdown => break,
            _ = ticker.tick() => {
                for (index, slot) in idle.iter_mut().enumerate() {
                    if let Some((mut collector, mut health)) = slot.take() {
                        running.push(async move {
                            let mut outcome = run_one(collector.as_mut(), timeout).await;
                            health.observe(&mut outcome, Instant::now());
                            (index, (collector, health), outcome)
                        });
                    }
                }
            }
            () = partial => {
                partial_due = None;
                let progress = Progress { ready: completed > 0, completes: None };
                publish(assemble(latest.iter().flatten()), progress);
            }
            Some((index, collector, outcome)) = running.next(), if !running.is_empty() => {
                idle[index] = Some(collector);
                latest[index] = Some(outcome);
                runs[index] += 1;
                let done = runs.iter().copied().min().unwrap_or(0);
                if done > completed {
                    completed = done;
                    partial_due = None;
                    let progress = Progress { ready: true, completes: Some(done) };
                    publish(assemble(latest.iter().flatten()), progress);
                } else if partial_due.is_none() {
                    partial_due = Some(tokio::time::Instant::now() + partial_wait);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, Result<f64, ()>);

    impl Collector for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>> {
            let r = self.1;
            let name = format!("test_{}", self.0);
            Box::pin(async move {
                r.map(|v| vec![Family::single_gauge(name, "t", v)])
                    .map_err(|_| CollectError::Source("broken".into()))
            })
        }
        fn on_failure(&mut self) -> Vec<Family> {
            vec![Family::single_gauge(format!("test_{}", self.0), "t", -1.0)]
        }
    }

    struct Hangs;

    impl Collector for Hangs {
        fn name(&self) -> &'static str {
            "hangs"
        }
        fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>> {
            Box::pin(std::future::pending())
        }
    }

    fn value(s: &Snapshot, name: &str, label: Option<&str>) -> f64 {
        let f = s.family(name).unwrap_or_else(|| panic!("no {name}"));
        f.samples
            .iter()
            .find(|x| label.is_none_or(|l| x.labels.iter().any(|(_, v)| v == l)))
            .unwrap()
            .value
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_or_hanging_collector_does_not_blank_the_others() {
        let timeout = Duration::from_secs(3);
        let outcomes = vec![
            run_one(&mut Fixed("good", Ok(7.0)), timeout).await,
            run_one(&mut Fixed("bad", Err(())), timeout).await,
            run_one(&mut Hangs, timeout).await,
        ];
        let s = assemble(&outcomes);
        assert_eq!(value(&s, "test_good", None), 7.0);
        assert_eq!(
            value(&s, "test_bad", None),
            -1.0,
            "on_failure families are exposed"
        );
        assert_eq!(
            value(&s, "ipfs_sentinel_collector_success", Some("good")),
            1.0
        );
        assert_eq!(
            value(&s, "ipfs_sentinel_collector_success", Some("bad")),
            0.0
        );
        assert_eq!(
            value(&s, "ipfs_sentinel_collector_success", Some("hangs")),
            0.0
        );
        let hung = value(
            &s,
            "ipfs_sentinel_collector_duration_seconds",
            Some("hangs"),
        );
        assert!(
            (3.0..3.1).contains(&hung),
            "the hanging collector is cut at its timeout: {hung}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_collector_does_not_hold_back_the_first_snapshot() {
        let collectors: Vec<Box<dyn Collector>> =
            vec![Box::new(Hangs), Box::new(Fixed("good", Ok(1.0)))];
        let started = tokio::time::Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let loop_task = tokio::spawn(run(
            collectors,
            Duration::from_secs(60),
            Duration::from_secs(10),
            move |s, progress| tx.send((s, progress)).unwrap(),
            async move {
                let _ = stop_rx.await;
            },
        ));
        let (first, progress) = rx.recv().await.unwrap();
        assert!(
            !progress.ready,
            "the hanging collector has not reported yet"
        );
        assert_eq!(progress.completes, None);
        assert!(first.family("test_good").is_some());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "published before the timeout"
        );
        let (second, progress) = rx.recv().await.unwrap();
        assert!(progress.ready);
        assert_eq!(
            progress.completes,
            Some(1),
            "the first collection, at start"
        );
        assert_eq!(
            value(&second, "ipfs_sentinel_collector_success", Some("hangs")),
            0.0
        );
        stop_tx.send(()).unwrap();
        loop_task.await.unwrap();
    }

    /// Every event logged while it is the default subscriber: (level, message).
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<(tracing::Level, String)>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Message(String);
            impl tracing::field::Visit for Message {
                fn record_debug(&mut self, field: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    if field.name() == "message" {
                        self.0 = format!("{v:?}");
                    }
                }
            }
            let mut message = Message(String::new());
            event.record(&mut message);
            if let Ok(mut lines) = self.0.lock() {
                lines.push((*event.metadata().level(), message.0));
            }
        }
    }

    impl Captured {
        fn count(&self, level: tracing::Level, starting: &str) -> usize {
            self.0
                .lock()
                .unwrap()
                .iter()
                .filter(|(l, m)| *l == level && m.starts_with(starting))
                .count()
        }
    }

    /// Fails its first `down_for` runs, then succeeds.
    struct DownAtFirst {
        runs: u64,
        down_for: u64,
    }

    impl Collector for DownAtFirst {
        fn name(&self) -> &'static str {
            "flaky"
        }
        fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>> {
            self.runs += 1;
            let down = self.runs <= self.down_for;
            Box::pin(async move {
                if down {
                    Err(CollectError::Source("connection refused".into()))
                } else {
                    Ok(Vec::new())
                }
            })
        }
    }

    /// Runs the collection loop over one collector down for its first `down_for` runs, for
    /// `runs` intervals of 15 s (fake time); the log lines and the last snapshot.
    async fn down_then_up(down_for: u64, runs: u64) -> (Captured, Snapshot) {
        use tracing_subscriber::layer::SubscriberExt;
        let captured = Captured::default();
        let _default =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(captured.clone()));
        let interval = Duration::from_secs(15);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let loop_task = tokio::spawn(run(
            vec![Box::new(DownAtFirst { runs: 0, down_for })],
            interval,
            Duration::from_secs(5),
            move |s, _| tx.send(s).unwrap(),
            async move {
                let _ = stop_rx.await;
            },
        ));
        tokio::time::sleep(interval * (runs - 1) as u32 + Duration::from_secs(1)).await;
        stop_tx.send(()).unwrap();
        loop_task.await.unwrap();
        let mut last = None;
        let mut published = 0;
        while let Ok(s) = rx.try_recv() {
            last = Some(s);
            published += 1;
        }
        assert_eq!(published, runs, "one snapshot a run");
        (captured, last.unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_down_for_ten_intervals_is_logged_once_and_its_recovery_once() {
        let (log, last) = down_then_up(10, 11).await;
        assert_eq!(log.count(tracing::Level::WARN, "collector failed"), 1);
        assert_eq!(
            log.count(tracing::Level::WARN, "collector still failing"),
            0
        );
        assert_eq!(log.count(tracing::Level::INFO, "collector recovered"), 1);
        assert_eq!(
            log.0.lock().unwrap().len(),
            2,
            "nothing else: {:?}",
            log.0.lock().unwrap()
        );
        assert_eq!(
            value(
                &last,
                "ipfs_sentinel_collector_failures_total",
                Some("flaky")
            ),
            10.0,
            "every failed run counts"
        );
        assert_eq!(
            value(&last, "ipfs_sentinel_collector_success", Some("flaky")),
            1.0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_that_stays_down_is_recalled_every_five_minutes() {
        // 40 runs of 15 s: down for 9 min 45 s, reminded at 5 min, not yet at 10.
        let (log, last) = down_then_up(40, 40).await;
        assert_eq!(log.count(tracing::Level::WARN, "collector failed"), 1);
        assert_eq!(
            log.count(tracing::Level::WARN, "collector still failing"),
            1
        );
        assert_eq!(log.count(tracing::Level::INFO, "collector recovered"), 0);
        assert_eq!(
            value(
                &last,
                "ipfs_sentinel_collector_failures_total",
                Some("flaky")
            ),
            40.0
        );
    }

    /// Takes `delay` (fake time) to report.
    struct Slow(&'static str, Duration);

    impl Collector for Slow {
        fn name(&self) -> &'static str {
            self.0
        }
        fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>> {
            let delay = self.1;
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(Vec::new())
            })
        }
    }

    /// Runs the collection loop over `collectors` (at `interval`, each call bounded by
    /// `timeout`) in fake time for `how_long`, and returns what it published, each with the
    /// time since the start.
    async fn published_over(
        collectors: Vec<Box<dyn Collector>>,
        interval: Duration,
        timeout: Duration,
        how_long: Duration,
    ) -> Vec<(Duration, Progress)> {
        let started = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let loop_task = tokio::spawn(run(
            collectors,
            interval,
            timeout,
            move |_, progress| tx.send((started.elapsed(), progress)).unwrap(),
            async move {
                let _ = stop_rx.await;
            },
        ));
        tokio::time::sleep(how_long).await;
        stop_tx.send(()).unwrap();
        loop_task.await.unwrap();
        let mut published = Vec::new();
        while let Ok(p) = rx.try_recv() {
            published.push(p);
        }
        published
    }

    #[tokio::test(start_paused = true)]
    async fn each_collection_completes_once_in_order_the_first_at_start() {
        let collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(Slow("fast", Duration::from_millis(10))),
            Box::new(Slow("slow", Duration::from_secs(5))),
            Box::new(Fixed("good", Ok(1.0))),
        ];
        let published = published_over(
            collectors,
            Duration::from_secs(60),
            Duration::from_secs(10),
            Duration::from_secs(186),
        )
        .await;
        assert_eq!(
            published.len(),
            4 * 2,
            "each round: one partial snapshot with the two quick collectors, then the whole \
             collection when the slow one reports: {published:?}"
        );
        let completed: Vec<(Duration, u64)> = published
            .iter()
            .filter_map(|(at, p)| p.completes.map(|n| (*at, n)))
            .collect();
        let numbers: Vec<u64> = completed.iter().map(|(_, n)| *n).collect();
        assert_eq!(numbers, vec![1, 2, 3, 4], "each once, in order");
        assert!(
            completed[0].0 < Duration::from_secs(6),
            "the first collection completes at start, with its slowest collector: {:?}",
            completed[0].0
        );
        assert!(
            !published[0].1.ready && published[0].1.completes.is_none(),
            "a partial snapshot before the slow collector reports: {published:?}"
        );
        assert_eq!(
            published[0].0,
            Duration::from_millis(250),
            "published the partial wait after the first outcome, with the second: {published:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_collector_slower_than_the_interval_starts_again_at_the_tick_after_it_reports() {
        let collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(Slow("slow", Duration::from_secs(15))),
            Box::new(Fixed("good", Ok(1.0))),
        ];
        let published = published_over(
            collectors,
            Duration::from_secs(10),
            Duration::from_secs(30),
            Duration::from_millis(61_500),
        )
        .await;
        let completed: Vec<(u64, u64)> = published
            .iter()
            .filter_map(|(at, p)| p.completes.map(|n| (at.as_secs(), n)))
            .collect();
        assert_eq!(
            completed,
            vec![(15, 1), (35, 2), (55, 3)],
            "the slow one runs at 0, 20 and 40 s (not at once when it reports late)"
        );
        let partial = published.iter().filter(|(_, p)| p.completes.is_none());
        assert_eq!(
            partial.count(),
            7,
            "the quick one still reports every 10 s, at 0 to 60 s, each published after the \
             partial wait; the slow one's reports complete the collections"
        );
    }
}
