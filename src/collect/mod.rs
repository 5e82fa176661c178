//! The collection loop: a table of [`Collector`]s run together every interval, each under its
//! own timeout, merged into one [`Snapshot`] and handed on.
//!
//! Owns scheduling and the per-collector health metrics
//! (`ipfs_sentinel_collector_success`, `ipfs_sentinel_collector_duration_seconds`). It never
//! encodes or serves anything: the finished snapshot goes to a callback (the exposition cache).
//! A collector that fails or times out contributes its [`Collector::on_failure`] families, a
//! `collector_success 0` and a log line; the others are unaffected.

pub mod ipfs;
pub mod kubo;
pub mod node;

use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;

use crate::model::{Family, Snapshot};

/// Why one collection of one source failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The source could not be reached or answered with an error.
    #[error("{0}")]
    Source(String),
}

/// One source of metrics.
pub trait Collector: Send {
    /// Short name, the value of the `collector` label.
    fn name(&self) -> &'static str;

    /// Reads the source once. May keep state between calls (rates, slow schedules).
    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>>;

    /// What to expose when `collect` failed or timed out (e.g. `ipfs_up 0`).
    fn on_failure(&mut self) -> Vec<Family> {
        Vec::new()
    }
}

/// Emitted when a collector fails or times out: one log line (the success metric says the rest).
struct CollectorFailed<'a> {
    collector: &'a str,
    error: &'a str,
}

impl CollectorFailed<'_> {
    fn emit(&self) {
        tracing::warn!(collector = self.collector, error = self.error, "collector failed");
    }
}

/// Runs every collector once, concurrently, and builds the snapshot.
pub async fn collect_once(collectors: &mut [Box<dyn Collector>], timeout: Duration) -> Snapshot {
    let runs = collectors.iter_mut().map(|c| async move {
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, c.collect()).await;
        let elapsed = started.elapsed().as_secs_f64();
        let outcome = match result {
            Ok(Ok(families)) => Ok(families),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("timed out after {}s", timeout.as_secs_f64())),
        };
        let name = c.name();
        match outcome {
            Ok(families) => (name, true, elapsed, families),
            Err(error) => {
                CollectorFailed { collector: name, error: &error }.emit();
                (name, false, elapsed, c.on_failure())
            }
        }
    });
    let results = futures::future::join_all(runs).await;

    let mut success = Family::gauge(
        "ipfs_sentinel_collector_success",
        "1 when the collector's last run succeeded, 0 when it failed or timed out.",
    );
    let mut duration = Family::gauge(
        "ipfs_sentinel_collector_duration_seconds",
        "How long the collector's last run took.",
    );
    let mut families = Vec::new();
    for (name, ok, elapsed, mut produced) in results {
        success.push(&[("collector", name)], if ok { 1.0 } else { 0.0 });
        duration.push(&[("collector", name)], elapsed);
        families.append(&mut produced);
    }
    families.push(success);
    families.push(duration);
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

/// Collects every `interval` until `shutdown` resolves, handing each snapshot to `publish`.
/// The first round starts at once.
pub async fn run(
    mut collectors: Vec<Box<dyn Collector>>,
    interval: Duration,
    timeout: Duration,
    mut publish: impl FnMut(Snapshot) + Send,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => {
                let snapshot = collect_once(&mut collectors, timeout).await;
                publish(snapshot);
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
                r.map(|v| vec![Family::single_gauge(&name, "t", v)])
                    .map_err(|_| CollectError::Source("broken".into()))
            })
        }
        fn on_failure(&mut self) -> Vec<Family> {
            vec![Family::single_gauge(&format!("test_{}", self.0), "t", -1.0)]
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
        let mut collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(Fixed("good", Ok(7.0))),
            Box::new(Fixed("bad", Err(()))),
            Box::new(Hangs),
        ];
        let s = collect_once(&mut collectors, Duration::from_secs(3)).await;
        assert_eq!(value(&s, "test_good", None), 7.0);
        assert_eq!(value(&s, "test_bad", None), -1.0, "on_failure families are exposed");
        assert_eq!(value(&s, "ipfs_sentinel_collector_success", Some("good")), 1.0);
        assert_eq!(value(&s, "ipfs_sentinel_collector_success", Some("bad")), 0.0);
        assert_eq!(value(&s, "ipfs_sentinel_collector_success", Some("hangs")), 0.0);
        let hung = value(&s, "ipfs_sentinel_collector_duration_seconds", Some("hangs"));
        assert!((3.0..3.1).contains(&hung), "the hanging collector is cut at its timeout: {hung}");
    }
}
