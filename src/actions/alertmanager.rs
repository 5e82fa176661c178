//! Pushes alerts to Alertmanager as Prometheus does (`notifier/notifier.go`): after each
//! evaluation the alerts the state machine marked for sending (every firing alert at most
//! once a minute, resolved ones for 15 minutes) are POSTed in full to each configured
//! Alertmanager's `/api/v2/alerts`, `endsAt` telling Alertmanager how long the alert is valid.
//! A failed push is retried a few times within the evaluation interval, then dropped: the
//! next evaluation sends the alert again anyway, so there is nothing to keep on disk.
//!
//! Owns the queue and the pushes; which alerts are due is [`crate::rules::alerting`]'s.

use std::time::Duration;

use tokio::sync::mpsc;

use super::audit::RunResult;
use super::stats::Stats;
use super::webhook::post_json;
use crate::config::HttpUrl;
use crate::model::AlertEvent;

/// Alerts waiting to be pushed, at most (Prometheus's default queue capacity).
pub const QUEUE_CAPACITY: usize = 10_000;

/// Attempts per push before the batch is dropped.
const ATTEMPTS: u32 = 3;

/// One batch for one action's Alertmanagers.
#[derive(Debug)]
pub struct Batch {
    /// The action's name (for metrics).
    pub action: String,
    /// Its Alertmanagers.
    pub urls: Vec<HttpUrl>,
    /// The alerts, in full.
    pub alerts: Vec<AlertEvent>,
}

/// A push that failed on every attempt.
struct PushFailed<'a> {
    url: &'a str,
    alerts: usize,
    error: &'a str,
}

impl PushFailed<'_> {
    fn emit(&self) {
        tracing::warn!(
            alertmanager = self.url,
            alerts = self.alerts,
            error = self.error,
            "cannot push alerts to Alertmanager; they are sent again at the next evaluation"
        );
    }
}

/// The push endpoint of an Alertmanager base URL.
pub fn alerts_endpoint(base: &HttpUrl) -> String {
    format!("{}/api/v2/alerts", base.0.as_str().trim_end_matches('/'))
}

/// Pushes batches from `queue` until it closes.
pub async fn run(client: reqwest::Client, mut queue: mpsc::Receiver<Batch>, stats: Stats) {
    while let Some(batch) = queue.recv().await {
        let body = super::payload::alertmanager_alerts(&batch.alerts);
        for base in &batch.urls {
            let url = alerts_endpoint(base);
            let mut last = None;
            for attempt in 0..ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                }
                let posted = post_json(&client, &url, &Default::default(), None, &body).await;
                stats.observe(&batch.action, posted.duration);
                let ok = posted.ok;
                last = Some(posted);
                if ok {
                    break;
                }
            }
            let Some(posted) = last else { continue };
            let result = if posted.ok {
                RunResult::Success
            } else {
                PushFailed {
                    url: &url,
                    alerts: batch.alerts.len(),
                    error: &posted.output,
                }
                .emit();
                RunResult::Failure
            };
            stats.count(&batch.action, result);
        }
    }
}
