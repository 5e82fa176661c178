//! `run_gc`: Kubo RPC `repo/gc` on one node, with `repo/stat` before and after to report the
//! bytes freed.
//!
//! `repo/gc?stream-errors=true` answers one JSON object per removed block,
//! `{"Key":{"/":"<cid>"}}`, and, for a block it could not remove, `{"Error":"<message>"}`
//! (Kubo RPC reference, docs.ipfs.tech/reference/kubo/rpc, `/api/v0/repo/gc`; js-ipfs sends
//! the same objects with blank lines between them). The stream is read as it comes, so a GC of
//! millions of blocks keeps only counts and the first [`SAMPLE`] CIDs in memory.
//!
//! Success means the sweep ran to its end with no error line. Bytes freed is `RepoSize` before
//! minus after (never below 0: other writes may land meanwhile); Kubo's `repo/gc` names the
//! blocks it removed, not their sizes.
//!
//! [`GcRuns`] counts the runs made through it (`ipfs_sentinel_gc_runs_total{result}`,
//! `ipfs_sentinel_gc_last_duration_seconds`, `ipfs_sentinel_gc_reclaimed_bytes_total`); a run
//! cut short by its action's timeout counts as a failure.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;

use super::{BuiltinError, BuiltinItemFailed, BuiltinReport};
use crate::clients::kubo::{GcLine, KuboClient};
use crate::clients::ClientError;
use crate::model::Family;

/// Removed CIDs (and error messages) kept in the report; the counts cover them all.
pub const SAMPLE: usize = 100;

/// What a GC stream said, as it was read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GcTally {
    /// Blocks removed.
    pub removed: u64,
    /// The first [`SAMPLE`] removed CIDs.
    pub removed_sample: Vec<String>,
    /// Error lines.
    pub errors: u64,
    /// The first [`SAMPLE`] error messages.
    pub error_sample: Vec<String>,
}

impl GcTally {
    /// Counts one line of the stream.
    pub fn add(&mut self, line: GcLine) {
        match line {
            GcLine::Removed(cid) => {
                self.removed += 1;
                if self.removed_sample.len() < SAMPLE {
                    self.removed_sample.push(cid);
                }
            }
            GcLine::Error(message) => {
                BuiltinItemFailed {
                    builtin: "run_gc",
                    item: "repo/gc",
                    error: &message,
                }
                .emit();
                self.errors += 1;
                if self.error_sample.len() < SAMPLE {
                    self.error_sample.push(message);
                }
            }
        }
    }
}

/// Runs a garbage collection on the node whose Kubo RPC API is at `kubo_api_url`.
///
/// Fails (`Err`) when the node cannot be reached or answers with an error before the sweep
/// starts. A sweep cut off midway (the client's timeout, a dropped connection) is a report
/// with `success: false` that still counts what was removed.
pub async fn run_gc(
    client: &reqwest::Client,
    kubo_api_url: &reqwest::Url,
) -> Result<BuiltinReport, BuiltinError> {
    sweep(client, kubo_api_url).await.map(|s| s.report())
}

/// What one sweep came to.
struct Swept {
    tally: GcTally,
    before: f64,
    after: f64,
    cut_off: Option<String>,
}

impl Swept {
    fn report(&self) -> BuiltinReport {
        report(&self.tally, self.before, self.after, self.cut_off.clone())
    }
}

async fn sweep(
    client: &reqwest::Client,
    kubo_api_url: &reqwest::Url,
) -> Result<Swept, BuiltinError> {
    let kubo = KuboClient::with_http(client.clone(), kubo_api_url.clone());
    let before = kubo.repo_stat(true).await?.repo_size;
    let mut sweep = kubo.repo_gc().await?;
    let mut tally = GcTally::default();
    let mut cut_off = None;
    loop {
        match sweep.next_lines().await {
            Ok(Some(lines)) => lines.into_iter().for_each(|line| tally.add(line)),
            Ok(None) => break,
            Err(e @ ClientError::Unreachable { .. }) => {
                cut_off = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let after = kubo.repo_stat(true).await?.repo_size;
    Ok(Swept {
        tally,
        before,
        after,
        cut_off,
    })
}

/// The sentinel's own GC runs, shared (cheap to clone): the dispatcher runs the built-in
/// through [`GcRuns::run`], the actions collector exposes [`GcRuns::families`].
#[derive(Debug, Clone, Default)]
pub struct GcRuns {
    inner: Arc<Mutex<GcCounts>>,
}

#[derive(Debug, Default)]
struct GcCounts {
    success: u64,
    failure: u64,
    last_duration_seconds: Option<f64>,
    reclaimed_bytes: f64,
}

/// A run under way: counted as a failure if it is dropped unfinished (its action's timeout).
struct RunInProgress<'a> {
    runs: &'a GcRuns,
    started: Instant,
    finished: bool,
}

impl RunInProgress<'_> {
    fn finish(mut self, success: bool, reclaimed_bytes: f64) {
        self.finished = true;
        self.runs.record(
            success,
            self.started.elapsed().as_secs_f64(),
            reclaimed_bytes,
        );
    }
}

impl Drop for RunInProgress<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.runs
                .record(false, self.started.elapsed().as_secs_f64(), 0.0);
        }
    }
}

impl GcRuns {
    /// [`run_gc()`], counted.
    pub async fn run(
        &self,
        client: &reqwest::Client,
        kubo_api_url: &reqwest::Url,
    ) -> Result<BuiltinReport, BuiltinError> {
        let run = RunInProgress {
            runs: self,
            started: Instant::now(),
            finished: false,
        };
        let swept = sweep(client, kubo_api_url).await;
        match &swept {
            Ok(s) => {
                let report = s.report();
                run.finish(report.success, (s.before - s.after).max(0.0));
                Ok(report)
            }
            Err(_) => {
                run.finish(false, 0.0);
                swept.map(|s| s.report())
            }
        }
    }

    fn record(&self, success: bool, duration_seconds: f64, reclaimed_bytes: f64) {
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if success {
            c.success += 1;
        } else {
            c.failure += 1;
        }
        c.last_duration_seconds = Some(duration_seconds);
        c.reclaimed_bytes += reclaimed_bytes;
    }

    /// `ipfs_sentinel_gc_runs_total{result}`, `ipfs_sentinel_gc_last_duration_seconds` (after
    /// the first run) and `ipfs_sentinel_gc_reclaimed_bytes_total`.
    pub fn families(&self) -> Vec<Family> {
        let c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = vec![Family::counter(
            "ipfs_sentinel_gc_runs_total",
            "Repo garbage collections the sentinel ran with the run_gc built-in (builtin: run_gc; a command running ipfs repo gc is not counted), by result: success, or failure (an error line, a node that could not be reached, a sweep cut off or timed out).",
        )
        .with(&[("result", "success")], c.success as f64)
        .with(&[("result", "failure")], c.failure as f64)];
        if let Some(seconds) = c.last_duration_seconds {
            out.push(Family::single_gauge(
                "ipfs_sentinel_gc_last_duration_seconds",
                "How long the sentinel's last repo garbage collection took.",
                seconds,
            ));
        }
        out.push(
            Family::counter(
                "ipfs_sentinel_gc_reclaimed_bytes_total",
                "Bytes the sentinel's repo garbage collections freed: RepoSize before minus after each run, never below 0.",
            )
            .with(&[], c.reclaimed_bytes),
        );
        out
    }
}

/// The report of one sweep: counts, sizes, samples.
fn report(tally: &GcTally, before: f64, after: f64, cut_off: Option<String>) -> BuiltinReport {
    let freed = (before - after).max(0.0) as u64;
    let mut summary = format!(
        "repo GC removed {} blocks and freed {freed} bytes (repo {} -> {} bytes)",
        tally.removed, before as u64, after as u64
    );
    if let Some(first) = tally.error_sample.first() {
        summary.push_str(&format!(
            "; {} blocks could not be removed (first: {first})",
            tally.errors
        ));
    }
    if let Some(reason) = &cut_off {
        summary.push_str(&format!("; the sweep was cut off: {reason}"));
    }
    BuiltinReport {
        success: tally.errors == 0 && cut_off.is_none(),
        summary,
        details: json!({
            "blocks_removed": tally.removed,
            "bytes_freed": freed,
            "repo_size_before_bytes": before as u64,
            "repo_size_after_bytes": after as u64,
            "removed_sample": tally.removed_sample,
            "errors": tally.errors,
            "error_sample": tally.error_sample,
            "cut_off": cut_off,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::kubo::parse_gc_line;
    use crate::clients::ndjson_lines;

    /// Counts the lines of a stream as [`run_gc`] does.
    fn tally(body: &[u8]) -> GcTally {
        let mut tally = GcTally::default();
        for line in ndjson_lines(body) {
            tally.add(parse_gc_line(line).unwrap());
        }
        tally
    }

    #[tokio::test]
    async fn gc_runs_count_successes_failures_timeouts_and_bytes() {
        use axum::routing::post;
        let sizes = Arc::new(Mutex::new(vec![400.0, 1000.0]));
        let app = axum::Router::new()
            .route(
                "/api/v0/repo/stat",
                post(move || {
                    let size = sizes.lock().unwrap().pop().unwrap_or(400.0);
                    async move { format!(r#"{{"RepoSize":{size},"StorageMax":0}}"#) }
                }),
            )
            .route(
                "/api/v0/repo/gc",
                post(|| async { "{\"Key\":{\"/\":\"bafk1\"}}\n" }),
            );
        let (base, server) = crate::clients::tests::serve(app).await;
        let client = crate::clients::http_client(std::time::Duration::from_secs(5)).unwrap();
        let runs = GcRuns::default();
        let ok = runs.run(&client, &base).await.unwrap();
        assert!(ok.success, "{}", ok.summary);
        let gone: reqwest::Url = "http://127.0.0.1:1/".parse().unwrap();
        assert!(runs.run(&client, &gone).await.is_err());
        // A run dropped midway, as the action's timeout does.
        let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hung: reqwest::Url = format!("http://{}/", hole.local_addr().unwrap())
            .parse()
            .unwrap();
        let cut = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            runs.run(&client, &hung),
        )
        .await;
        assert!(cut.is_err(), "the listener never answers");

        let families = runs.families();
        let value = |name: &str, result: Option<&str>| {
            families
                .iter()
                .find(|f| f.name == name)
                .unwrap()
                .samples
                .iter()
                .find(|s| result.is_none_or(|r| s.labels.iter().any(|(_, v)| v == r)))
                .unwrap()
                .value
        };
        assert_eq!(value("ipfs_sentinel_gc_runs_total", Some("success")), 1.0);
        assert_eq!(value("ipfs_sentinel_gc_runs_total", Some("failure")), 2.0);
        assert_eq!(value("ipfs_sentinel_gc_reclaimed_bytes_total", None), 600.0);
        let last = value("ipfs_sentinel_gc_last_duration_seconds", None);
        assert!((0.15..5.0).contains(&last), "the timed-out run's {last}s");
        server.abort();
    }

    #[test]
    fn a_tally_counts_everything_and_samples_the_start() {
        let mut body = String::from("\n");
        for i in 0..(SAMPLE + 5) {
            body.push_str(&format!("{{\"Key\":{{\"/\":\"bafk{i}\"}}}}\n\n"));
        }
        body.push_str("{\"Error\":\"block in use\"}\n");
        let tally = tally(body.as_bytes());
        assert_eq!(tally.removed, (SAMPLE + 5) as u64);
        assert_eq!(tally.removed_sample.len(), SAMPLE);
        assert_eq!(tally.removed_sample[0], "bafk0");
        assert_eq!((tally.errors, tally.error_sample.len()), (1, 1));
    }

    #[test]
    fn reports_say_what_was_freed_and_what_failed() {
        let mut tally = tally(b"{\"Key\":{\"/\":\"bafk1\"}}\n{\"Key\":{\"/\":\"bafk2\"}}\n");
        let ok = report(&tally, 111_408.0, 11_472.0, None);
        assert!(ok.success);
        assert_eq!(
            ok.summary,
            "repo GC removed 2 blocks and freed 99936 bytes (repo 111408 -> 11472 bytes)"
        );
        assert_eq!(ok.details["bytes_freed"], 99_936);
        assert_eq!(ok.details["removed_sample"][1], "bafk2");

        let grew = report(&tally, 100.0, 250.0, None);
        assert_eq!(grew.details["bytes_freed"], 0, "never negative");

        tally.add(GcLine::Error("disk I/O".into()));
        let cut = report(
            &tally,
            100.0,
            50.0,
            Some("no answer before the timeout".into()),
        );
        assert!(!cut.success);
        assert!(
            cut.summary.ends_with(
                "; 1 blocks could not be removed (first: disk I/O); the sweep was cut off: no answer before the timeout"
            ),
            "{}",
            cut.summary
        );
    }
}
