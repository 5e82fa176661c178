//! Remote write: pushes the history to the receivers of `cluster.monitoring.remote_write`
//! (Prometheus, VictoriaMetrics, Mimir, Thanos Receive) with Prometheus remote write 1.0.
//!
//! The history is the write-ahead log: each receiver has a cursor in the data dir
//! (`remote_write/<name>.json`, the last tick it acknowledged) and reads the ticks after it from
//! a read view of the history, oldest first. A 2xx moves the cursor; 5xx, 429 and network
//! errors (timeouts included) retry the same request with back-off, never skipping ahead;
//! another 4xx drops that request's samples, counts them, and logs the receiver's reason once.
//! After an outage shorter than the retention every tick reaches the receiver; what aged out of
//! the history before it was sent is counted and logged.
//!
//! A tick is sent once no recording rule's sample can still land in it (see
//! [`crate::history`]: recorded samples land in the newest tick at or before their instant):
//! once a newer tick exists and is at or before the history's [`Landing`] floor, which the
//! rules task moves to its clock less the largest query offset of any group before each look
//! at its schedule (so a round still under way, or a group's own larger `query_offset`, holds
//! the tick back). So recording rules' results and `ALERTS` go with the tick they belong to.
//!
//! No staleness markers are sent: the history records samples, not the disappearance of a
//! series, and the sentinel's own queries read it with the 5-minute look-back alone, so a
//! receiver that applies its look-back sees what the sentinel sees.
//!
//! Owns the cursors, batching, the HTTP exchange, and the `ipfs_sentinel_remote_write_*`
//! metrics; never touches the collectors or the history's files.

pub mod proto;
pub mod relabel;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::clock::system_ms;
use crate::collect::{CollectError, Collector};
use crate::config::{read_secret, RelabelConfig, RemoteWriteConfig};
use crate::history::landing::Landing;
use crate::history::recorder::{self, SharedHistory};
use crate::history::{History, Points, SeriesKey};
use crate::model::Family;
use proto::{Label, Sample, TimeSeries, WriteRequest};

/// Samples read from the history at once for one receiver: bounds memory during a catch-up.
const WINDOW_SAMPLES: usize = 50_000;

/// How soon to look again when a tick waits only for the rules to finish with it (the rules
/// task moves the landing floor about once a second).
const UNFINISHED_RECHECK: Duration = Duration::from_secs(1);

/// Headers a receiver's `headers` may not set: the protocol's own and the connection's, as
/// Prometheus 2.42 refuses them (config/config.go `reservedHeaders`).
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
];

/// Why a receiver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    /// A key of its configuration is unusable.
    #[error("cluster.monitoring.remote_write {name:?}: {key}: {reason}")]
    Config {
        /// The receiver's name.
        name: String,
        /// The key.
        key: String,
        /// Why, and what to do.
        reason: String,
    },
    /// Its cursor file could not be read.
    #[error("cannot read the remote write cursor {path}: {reason}; remove the file to send the whole history again")]
    Cursor {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// How credentials are sent; the files are read at each request, so rotated secrets are
/// picked up, and never logged.
#[derive(Debug, Clone)]
enum Auth {
    None,
    Basic {
        username: String,
        password_file: PathBuf,
    },
    Header {
        scheme: String,
        file: PathBuf,
        key: &'static str,
    },
}

/// What the sentinel tells about one receiver: its counters and cursor, shared by its sender,
/// the metrics collector and the status report.
#[derive(Debug)]
pub struct ReceiverStats {
    /// The receiver's name (`remote` label).
    pub name: String,
    /// Its URL, without credentials.
    pub url: String,
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    bytes: AtomicU64,
    retries: AtomicU64,
    expired_ms: AtomicU64,
    /// ms of the last 2xx; 0: never.
    last_success_ms: AtomicI64,
    /// The last acknowledged tick; `i64::MIN`: none yet.
    cursor_ms: AtomicI64,
}

impl ReceiverStats {
    fn new(name: &str, url: &reqwest::Url) -> Self {
        let mut url = url.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Self {
            name: name.to_owned(),
            url: url.to_string(),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            expired_ms: AtomicU64::new(0),
            last_success_ms: AtomicI64::new(0),
            cursor_ms: AtomicI64::new(i64::MIN),
        }
    }

    fn cursor(&self) -> Option<i64> {
        Some(self.cursor_ms.load(Ordering::Relaxed)).filter(|c| *c != i64::MIN)
    }
}

/// Every receiver's [`ReceiverStats`], in configuration order.
#[derive(Debug, Clone, Default)]
pub struct RemoteWriteStats(pub Vec<Arc<ReceiverStats>>);

/// How the sender paces itself, from `cluster.monitoring`.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// The history's retention, ms (to tell what aged out before it was sent).
    pub retention_ms: i64,
}

/// One receiver, ready to send.
pub struct Receiver {
    name: String,
    url: reqwest::Url,
    client: reqwest::Client,
    headers: HeaderMap,
    auth: Auth,
    max_samples: usize,
    deadline_ms: i64,
    min_backoff: Duration,
    max_backoff: Duration,
    relabel: Vec<RelabelConfig>,
    /// External labels and `node_id`, added where the series lacks them.
    extra_labels: Vec<(String, String)>,
    cursor_path: PathBuf,
    stats: Arc<ReceiverStats>,
}

/// The cursor file's content.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    /// The receiver's URL when the cursor was written, for whoever reads the file.
    url: String,
    /// The last tick the receiver acknowledged, ms since the Unix epoch.
    acknowledged_ms: i64,
}

/// The cursor file of receiver `name` in `data_dir`.
pub fn cursor_path(data_dir: &Path, name: &str) -> PathBuf {
    let file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    data_dir.join("remote_write").join(format!("{file}.json"))
}

impl Receiver {
    /// Builds the receiver of `config`: its HTTP client (timeout, TLS), headers, and the labels
    /// every series gets: `external_labels` and `node_id`, unless a series has them already.
    pub fn new(
        config: &RemoteWriteConfig,
        external_labels: &std::collections::BTreeMap<String, String>,
        node_id: &str,
        data_dir: &Path,
    ) -> Result<Self, RemoteWriteError> {
        let name = config.display_name();
        let fail = |key: &str, reason: String| RemoteWriteError::Config {
            name: name.clone(),
            key: key.to_owned(),
            reason,
        };
        let timeout = config.remote_timeout.duration();
        let tls = &config.tls_config;
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy()
            .user_agent(concat!("ipfs-sentinel/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(tls.insecure_skip_verify);
        if let Some(ca) = &tls.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                fail(
                    "tls_config.ca_file",
                    format!("cannot read {}: {e}", ca.display()),
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                fail(
                    "tls_config.ca_file",
                    format!("{} holds no PEM certificate: {e}", ca.display()),
                )
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            let mut pem = std::fs::read(cert).map_err(|e| {
                fail(
                    "tls_config.cert_file",
                    format!("cannot read {}: {e}", cert.display()),
                )
            })?;
            pem.extend(std::fs::read(key).map_err(|e| {
                fail(
                    "tls_config.key_file",
                    format!("cannot read {}: {e}", key.display()),
                )
            })?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                fail(
                    "tls_config.cert_file",
                    format!("not a PEM certificate and key: {e}"),
                )
            })?;
            builder = builder.identity(identity);
        }
        let client = builder
            .build()
            .map_err(|e| fail("tls_config", format!("cannot build the HTTP client: {e}")))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &config.headers {
            if RESERVED_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                return Err(fail(
                    &format!("headers.{k}"),
                    "is set by the remote write protocol or by the authentication keys; remove it"
                        .into(),
                ));
            }
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| fail(&format!("headers.{k}"), format!("not a header name: {e}")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|e| fail(&format!("headers.{k}"), format!("not a header value: {e}")))?;
            headers.insert(name, value);
        }
        for (k, v) in [
            ("content-encoding", "snappy"),
            ("content-type", "application/x-protobuf"),
            ("x-prometheus-remote-write-version", "0.1.0"),
        ] {
            headers.insert(k, HeaderValue::from_static(v));
        }
        let auth = match (
            &config.basic_auth,
            &config.bearer_token_file,
            &config.authorization,
        ) {
            (Some(b), _, _) => Auth::Basic {
                username: b.username.clone(),
                password_file: b.password_file.clone(),
            },
            (_, Some(file), _) => Auth::Header {
                scheme: "Bearer".into(),
                file: file.clone(),
                key: "bearer_token_file",
            },
            (_, _, Some(a)) => Auth::Header {
                scheme: a.kind.clone(),
                file: a.credentials_file.clone(),
                key: "authorization.credentials_file",
            },
            _ => Auth::None,
        };
        // Checked once now, so a missing file stops start-up rather than every request.
        match &auth {
            Auth::Basic { password_file, .. } => {
                read_secret(password_file, "basic_auth.password_file")
                    .map_err(|e| fail("basic_auth.password_file", e))?;
            }
            Auth::Header { file, key, .. } => {
                read_secret(file, key).map_err(|e| fail(key, e))?;
            }
            Auth::None => {}
        }
        let mut extra_labels: Vec<(String, String)> = external_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !external_labels.contains_key("node_id") {
            extra_labels.push(("node_id".into(), node_id.to_owned()));
        }
        let queue = &config.queue_config;
        Ok(Self {
            stats: Arc::new(ReceiverStats::new(&name, &config.url.0)),
            cursor_path: cursor_path(data_dir, &name),
            name,
            url: config.url.0.clone(),
            client,
            headers,
            auth,
            max_samples: usize::try_from(queue.max_samples_per_send.0).unwrap_or(usize::MAX),
            deadline_ms: queue.batch_send_deadline.0,
            min_backoff: queue.min_backoff.duration(),
            max_backoff: queue.max_backoff.duration(),
            relabel: config.write_relabel_configs.clone(),
            extra_labels,
        })
    }

    /// Its counters, for the collector and the status report.
    pub fn stats(&self) -> Arc<ReceiverStats> {
        Arc::clone(&self.stats)
    }

    /// The labels a series is sent with: its own, the external labels it lacks, then
    /// `write_relabel_configs`, sorted; `None` when relabelling drops it. A label with an
    /// empty value is no label, as in Prometheus (`version_info{commit=""}` arrives without
    /// `commit`), so it is left out and an external label of that name is added.
    fn labels_of(&self, key: &SeriesKey) -> Option<Vec<Label>> {
        let mut labels: Vec<(String, String)> = Vec::with_capacity(key.labels.len() + 4);
        labels.push(("__name__".into(), key.name.clone()));
        labels.extend(key.labels.iter().filter(|(_, v)| !v.is_empty()).cloned());
        for (k, v) in &self.extra_labels {
            if !labels.iter().any(|(name, _)| name == k) {
                labels.push((k.clone(), v.clone()));
            }
        }
        labels.sort();
        let labels = relabel::process(labels, &self.relabel)?;
        Some(
            labels
                .into_iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(name, value)| Label { name, value })
                .collect(),
        )
    }
}

/// What to send next: whole ticks, oldest first, with every series' samples at them.
#[derive(Debug, Default)]
struct Window {
    ticks: Vec<i64>,
    series: Vec<(Arc<SeriesKey>, Points)>,
    /// What aged out of the history before it was sent: (from, to) ms.
    expired: Option<(i64, i64)>,
    /// Sendable samples wait for more to fill a request until then (ms since the epoch).
    due_ms: i64,
    /// Nothing to send yet, but a tick with a newer one after it waits for the rules to
    /// finish with it.
    unfinished: bool,
}

/// Plans the next window after `cursor` from a read view: ticks no recorded sample can still
/// land in (a tick is final once the tick after it is at or before `landing`, the earliest
/// instant a recorded sample still to come can carry), at most about [`WINDOW_SAMPLES`]
/// samples. Pure: the history and the numbers in.
fn plan(
    history: &History,
    cursor: Option<i64>,
    landing: i64,
    pacing: Pacing,
    max_samples: usize,
    deadline_ms: i64,
) -> Window {
    let mut window = Window::default();
    let Some(newest) = history.last_tick() else {
        return window;
    };
    let mut from = cursor.map_or(i64::MIN, |c| c.saturating_add(1));
    if let (Some(c), Some(first)) = (cursor, history.first_tick()) {
        let cutoff = newest - pacing.retention_ms;
        // `first - 1`: the cursor a previous expiry left.
        if c < cutoff && c < first - 1 {
            window.expired = Some((c, first));
            from = first;
        }
    }
    let ticks = history.ticks(from, newest);
    let sendable: Vec<i64> = ticks
        .windows(2)
        .take_while(|w| w[1] <= landing)
        .map(|w| w[0])
        .collect();
    if sendable.is_empty() {
        window.unfinished = ticks.len() > 1;
        return window;
    }
    // When the first tick became final: when the tick after it was appended, or later.
    let first_final = ticks[1];
    let series = history.series(|_| true);
    let per_window = (WINDOW_SAMPLES / series.len().max(1)).max(1);
    window.ticks = sendable.into_iter().take(per_window).collect();
    let (first, last) = (window.ticks[0], window.ticks[window.ticks.len() - 1]);
    window.series = series
        .into_iter()
        .filter_map(|key| {
            let points = history.points(&key, first, last).ok()?;
            (!points.is_empty()).then_some((key, points))
        })
        .collect();
    let samples: usize = window.series.iter().map(|(_, p)| p.len()).sum();
    // A batch waits up to batch_send_deadline to fill, counted from when its first tick
    // could first be sent.
    window.due_ms = if samples >= max_samples {
        i64::MIN
    } else {
        first_final + deadline_ms
    };
    window
}

/// The tick after the oldest one not yet sent: once it is at or before the landing floor, the
/// oldest one is final. `None` while fewer than two ticks are unsent.
fn next_unsent(history: &History, cursor: Option<i64>) -> Option<i64> {
    let newest = history.last_tick()?;
    let from = cursor.map_or(i64::MIN, |c| c.saturating_add(1));
    history.ticks(from, newest).get(1).copied()
}

/// The requests of a window: whole ticks per request while they fit in `max_samples`, a tick
/// split across requests by series when it alone does not; each with the last tick it
/// completes (`None` while a tick is still incomplete).
fn requests(
    window: &Window,
    max_samples: usize,
    labels: &mut dyn FnMut(&Arc<SeriesKey>) -> Option<Vec<Label>>,
) -> Vec<(WriteRequest, usize, Option<i64>)> {
    let per_request = (max_samples / window.series.len().max(1)).max(1);
    let mut out = Vec::new();
    for ticks in window.ticks.chunks(per_request) {
        let (first, last) = (ticks[0], ticks[ticks.len() - 1]);
        let mut current = WriteRequest::default();
        let mut count = 0;
        for (key, points) in &window.series {
            let start = points.partition_point(|(t, _)| *t < first);
            let end = points.partition_point(|(t, _)| *t <= last);
            if start == end {
                continue;
            }
            let Some(labels) = labels(key) else {
                continue;
            };
            if count > 0 && count + (end - start) > max_samples {
                out.push((std::mem::take(&mut current), count, None));
                count = 0;
            }
            count += end - start;
            current.timeseries.push(TimeSeries {
                labels,
                samples: points[start..end]
                    .iter()
                    .map(|&(timestamp, value)| Sample { value, timestamp })
                    .collect(),
            });
        }
        out.push((current, count, Some(last)));
    }
    out
}

/// How one request went.
enum Outcome {
    Sent,
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    Refused {
        status: u16,
        reason: String,
    },
}

impl Receiver {
    async fn send(&self, request: &WriteRequest) -> Outcome {
        let body = match proto::body(request) {
            Ok(body) => body,
            Err(e) => {
                return Outcome::Refused {
                    status: 0,
                    reason: e.to_string(),
                }
            }
        };
        let bytes = body.len() as u64;
        let mut call = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(body);
        match &self.auth {
            Auth::None => {}
            Auth::Basic {
                username,
                password_file,
            } => match read_secret(password_file, "basic_auth.password_file") {
                Ok(password) => call = call.basic_auth(username, Some(password)),
                Err(reason) => {
                    return Outcome::Retry {
                        reason,
                        after: None,
                    }
                }
            },
            Auth::Header { scheme, file, key } => match read_secret(file, key) {
                Ok(secret) => call = call.header("authorization", format!("{scheme} {secret}")),
                Err(reason) => {
                    return Outcome::Retry {
                        reason,
                        after: None,
                    }
                }
            },
        }
        let response = match call.send().await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    reason: crate::clients::describe_transport_error(&e, "the receiver"),
                    after: None,
                }
            }
        };
        let status = response.status();
        self.stats.bytes.fetch_add(bytes, Ordering::Relaxed);
        if status.is_success() {
            return Outcome::Sent;
        }
        let after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        let reason = format!(
            "HTTP {}: {}",
            status.as_u16(),
            text.trim().chars().take(300).collect::<String>()
        );
        if status.is_server_error() || status.as_u16() == 429 {
            Outcome::Retry { reason, after }
        } else {
            Outcome::Refused {
                status: status.as_u16(),
                reason,
            }
        }
    }

    /// Sends one request until it is acknowledged or refused, or `shutdown` says stop (false).
    async fn deliver(
        &self,
        request: &WriteRequest,
        samples: usize,
        shutdown: &mut watch::Receiver<bool>,
        refused: &mut Option<String>,
    ) -> bool {
        let mut backoff = self.min_backoff;
        let mut failing = false;
        loop {
            match self.send(request).await {
                Outcome::Sent => {
                    self.stats.sent.fetch_add(samples as u64, Ordering::Relaxed);
                    self.stats
                        .last_success_ms
                        .store(system_ms(SystemTime::now()), Ordering::Relaxed);
                    if failing {
                        tracing::info!(remote = %self.name, "remote write receiver takes samples again");
                    }
                    return true;
                }
                Outcome::Refused { status, reason } => {
                    self.stats
                        .dropped
                        .fetch_add(samples as u64, Ordering::Relaxed);
                    // Logged once per distinct answer, not per batch.
                    if refused.as_deref() != Some(reason.as_str()) {
                        tracing::warn!(remote = %self.name, status, reason = %reason, samples, "remote write receiver refused a batch; its samples are dropped for this receiver (further refusals with the same reason are only counted)");
                        *refused = Some(reason.clone());
                    }
                    return true;
                }
                Outcome::Retry { reason, after } => {
                    self.stats
                        .failed
                        .fetch_add(samples as u64, Ordering::Relaxed);
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    if !failing {
                        tracing::warn!(remote = %self.name, reason = %reason, "remote write failed; retrying with back-off, the samples wait in the history");
                        failing = true;
                    }
                    let wait = after.unwrap_or(backoff);
                    backoff = (backoff * 2).min(self.max_backoff);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.wait_for(|stop| *stop) => return false,
                    }
                }
            }
        }
    }

    fn load_cursor(&self) -> Result<Option<i64>, RemoteWriteError> {
        match std::fs::read(&self.cursor_path) {
            Ok(bytes) => serde_json::from_slice::<Cursor>(&bytes)
                .map(|c| Some(c.acknowledged_ms))
                .map_err(|e| RemoteWriteError::Cursor {
                    path: self.cursor_path.display().to_string(),
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RemoteWriteError::Cursor {
                path: self.cursor_path.display().to_string(),
                reason: e.to_string(),
            }),
        }
    }

    async fn save_cursor(&self, at_ms: i64) {
        let path = self.cursor_path.clone();
        let bytes = serde_json::to_vec(&Cursor {
            url: self.stats.url.clone(),
            acknowledged_ms: at_ms,
        })
        .unwrap_or_default();
        let saved = tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            crate::files::write_atomically(&path, &bytes)
        })
        .await;
        if let Ok(Err(e)) = saved {
            // The cursor in memory still moves on; after a restart the ticks since the last
            // saved cursor are sent again, with the same values.
            tracing::warn!(remote = %self.name, error = %e, "cannot save the remote write cursor");
        }
    }
}

/// Sends the history to `receiver` until `shutdown` turns true: reads a window after the
/// cursor from a read view, sends it request by request, moves and saves the cursor, and
/// waits for the next tick when caught up.
pub async fn run(
    receiver: Receiver,
    history: SharedHistory,
    mut appended: watch::Receiver<Option<i64>>,
    landing: Arc<Landing>,
    pacing: Pacing,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut cursor = match receiver.load_cursor() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(remote = %receiver.name, error = %e, "remote write stopped");
            return;
        }
    };
    if let Some(c) = cursor {
        receiver.stats.cursor_ms.store(c, Ordering::Relaxed);
    }
    let mut labels: HashMap<Arc<SeriesKey>, Option<Vec<Label>>> = HashMap::new();
    let mut refused = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let (h, max, deadline) = (
            Arc::clone(&history),
            receiver.max_samples,
            receiver.deadline_ms,
        );
        let floor = landing.floor();
        let window = match tokio::task::spawn_blocking(move || {
            // A read view copies the series index: taken only when a tick is final to send.
            let unfinished = match next_unsent(&recorder::read(&h), cursor) {
                Some(next) if next <= floor => None,
                Some(_) => Some(true),
                None => Some(false),
            };
            match unfinished {
                Some(unfinished) => Window {
                    unfinished,
                    ..Window::default()
                },
                None => plan(
                    &recorder::read(&h).view(),
                    cursor,
                    floor,
                    pacing,
                    max,
                    deadline,
                ),
            }
        })
        .await
        {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(remote = %receiver.name, error = %e, "remote write stopped");
                return;
            }
        };
        if let Some((from, to)) = window.expired {
            let lost_ms = (to - from).max(0);
            receiver
                .stats
                .expired_ms
                .fetch_add(lost_ms as u64, Ordering::Relaxed);
            tracing::warn!(remote = %receiver.name, from_ms = from, to_ms = to, seconds = lost_ms as f64 / 1000.0, "history aged out before this remote write receiver acknowledged it: those ticks are lost for it (counted in ipfs_sentinel_remote_write_expired_seconds_total)");
            cursor = Some(to - 1);
            receiver.stats.cursor_ms.store(to - 1, Ordering::Relaxed);
            receiver.save_cursor(to - 1).await;
        }
        let now = system_ms(SystemTime::now());
        if window.ticks.is_empty() || window.due_ms > now {
            let wait = if window.unfinished {
                UNFINISHED_RECHECK
            } else if window.ticks.is_empty() {
                Duration::from_secs(3600)
            } else {
                Duration::from_millis((window.due_ms - now) as u64)
            };
            tokio::select! {
                _ = appended.changed() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            continue;
        }
        labels.retain(|k, _| Arc::strong_count(k) > 1);
        let requests = requests(&window, receiver.max_samples, &mut |key| {
            labels
                .entry(Arc::clone(key))
                .or_insert_with(|| receiver.labels_of(key))
                .clone()
        });
        for (request, samples, completes) in requests {
            if samples > 0
                && !receiver
                    .deliver(&request, samples, &mut shutdown, &mut refused)
                    .await
            {
                return;
            }
            if let Some(tick) = completes {
                cursor = Some(tick);
                receiver.stats.cursor_ms.store(tick, Ordering::Relaxed);
                receiver.save_cursor(tick).await;
            }
        }
    }
}

/// The `remote_write` collector: `ipfs_sentinel_remote_write_*` for every receiver.
pub struct RemoteWriteCollector {
    stats: RemoteWriteStats,
    history: SharedHistory,
}

impl RemoteWriteCollector {
    /// A collector over these receivers' stats; the lag is read against `history`'s newest tick.
    pub fn new(stats: RemoteWriteStats, history: SharedHistory) -> Self {
        Self { stats, history }
    }
}

/// The `ipfs_sentinel_remote_write_*` families of these receivers, the lag measured against
/// `newest` (the history's newest tick, ms) and, before a first acknowledgement, `first`.
pub fn families(stats: &RemoteWriteStats, newest: Option<i64>, first: Option<i64>) -> Vec<Family> {
    let mut samples = Family::counter(
        "ipfs_sentinel_remote_write_samples_total",
        "Samples by outcome: sent (acknowledged), failed (in a request that failed and is retried), dropped (refused by the receiver with a 4xx other than 429).",
    );
    let mut lag = Family::gauge(
        "ipfs_sentinel_remote_write_lag_seconds",
        "How far the receiver's cursor (the last tick it acknowledged) is behind the history's newest tick.",
    );
    let mut last = Family::gauge(
        "ipfs_sentinel_remote_write_last_success_timestamp_seconds",
        "When the receiver last acknowledged a request (0: never since start).",
    );
    let mut bytes = Family::counter(
        "ipfs_sentinel_remote_write_sent_bytes_total",
        "Request bytes (snappy-compressed protobuf) the receiver answered.",
    );
    let mut retries = Family::counter(
        "ipfs_sentinel_remote_write_retries_total",
        "Requests retried after a 5xx, a 429 or a network error.",
    );
    let mut acknowledged = Family::gauge(
        "ipfs_sentinel_remote_write_acknowledged_timestamp_seconds",
        "The newest tick the receiver acknowledged (its cursor; 0: none yet).",
    );
    let mut expired = Family::counter(
        "ipfs_sentinel_remote_write_expired_seconds_total",
        "Seconds of history that aged out of the retention before the receiver acknowledged them: lost for it.",
    );
    for s in &stats.0 {
        let remote = s.name.as_str();
        for (result, counter) in [
            ("sent", &s.sent),
            ("failed", &s.failed),
            ("dropped", &s.dropped),
        ] {
            samples.push(
                &[("remote", remote), ("result", result)],
                counter.load(Ordering::Relaxed) as f64,
            );
        }
        let behind = match (newest, s.cursor().or(first.map(|f| f - 1))) {
            (Some(n), Some(c)) => (n - c).max(0) as f64 / 1000.0,
            _ => 0.0,
        };
        lag.push(&[("remote", remote)], behind);
        acknowledged.push(
            &[("remote", remote)],
            s.cursor().map_or(0.0, |c| c as f64 / 1000.0),
        );
        last.push(
            &[("remote", remote)],
            s.last_success_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        );
        bytes.push(
            &[("remote", remote)],
            s.bytes.load(Ordering::Relaxed) as f64,
        );
        retries.push(
            &[("remote", remote)],
            s.retries.load(Ordering::Relaxed) as f64,
        );
        expired.push(
            &[("remote", remote)],
            s.expired_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        );
    }
    vec![samples, lag, acknowledged, last, bytes, retries, expired]
}

impl Collector for RemoteWriteCollector {
    fn name(&self) -> &'static str {
        "remote_write"
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>> {
        let stats = self.stats.clone();
        let history = Arc::clone(&self.history);
        Box::pin(crate::collect::read_blocking(move || {
            let (newest, first) = {
                let h = recorder::read(&history);
                (h.last_tick(), h.first_tick())
            };
            families(&stats, newest, first)
        }))
    }
}

/// One receiver's state for `/api/v1/status` and the dashboard, read from its
/// `ipfs_sentinel_remote_write_*` samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReceiverStatus {
    /// Its name.
    pub name: String,
    /// The last tick it acknowledged, seconds since the epoch (none yet: absent).
    pub acknowledged_timestamp_seconds: Option<f64>,
    /// How far that is behind the history's newest tick.
    pub lag_seconds: f64,
    /// Samples acknowledged since start.
    pub samples_sent: f64,
    /// Samples in requests that failed and were retried, since start.
    pub samples_failed: f64,
    /// Samples it refused (dropped for it) since start.
    pub samples_dropped: f64,
    /// Requests retried since start.
    pub retries: f64,
    /// When it last acknowledged a request (none since start: absent).
    pub last_success_timestamp_seconds: Option<f64>,
    /// Seconds of history that aged out before it acknowledged them.
    pub expired_seconds: f64,
}

impl ReceiverStatus {
    /// Each receiver's state from the `ipfs_sentinel_remote_write_*` families among
    /// `families`, in the order they name the receivers.
    pub fn from_families<'a>(
        families: impl IntoIterator<Item = &'a Family>,
    ) -> Vec<ReceiverStatus> {
        let mut by_name: Vec<ReceiverStatus> = Vec::new();
        for family in families {
            let Some(what) = family.name.strip_prefix("ipfs_sentinel_remote_write_") else {
                continue;
            };
            for sample in &family.samples {
                let Some(name) = Family::label(sample, "remote") else {
                    continue;
                };
                let at = match by_name.iter().position(|r| r.name == name) {
                    Some(at) => at,
                    None => {
                        by_name.push(ReceiverStatus {
                            name: name.to_owned(),
                            ..ReceiverStatus::default()
                        });
                        by_name.len() - 1
                    }
                };
                let r = &mut by_name[at];
                let v = sample.value;
                match (what, Family::label(sample, "result")) {
                    ("samples_total", Some("sent")) => r.samples_sent = v,
                    ("samples_total", Some("failed")) => r.samples_failed = v,
                    ("samples_total", Some("dropped")) => r.samples_dropped = v,
                    ("lag_seconds", _) => r.lag_seconds = v,
                    ("retries_total", _) => r.retries = v,
                    ("expired_seconds_total", _) => r.expired_seconds = v,
                    ("acknowledged_timestamp_seconds", _) => {
                        r.acknowledged_timestamp_seconds = (v > 0.0).then_some(v)
                    }
                    ("last_success_timestamp_seconds", _) => {
                        r.last_success_timestamp_seconds = (v > 0.0).then_some(v)
                    }
                    _ => {}
                }
            }
        }
        by_name
    }
}

impl RemoteWriteStats {
    /// Each receiver's state now, in configuration order (the lag is not known here: 0).
    pub fn status(&self) -> Vec<ReceiverStatus> {
        ReceiverStatus::from_families(&families(self, None, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history with ticks at 1000, 2000, ... and `series` series, each valued by tick.
    fn history(ticks: i64, series: usize, block: usize) -> History {
        let mut h = History::new(i64::MAX / 4, block);
        let keys: Vec<_> = (0..series)
            .map(|i| h.intern(SeriesKey::new("m", &[("i", &i.to_string())])))
            .collect();
        for t in 1..=ticks {
            let samples: Vec<_> = keys.iter().map(|k| (Arc::clone(k), t as f64)).collect();
            h.take_full_block();
            h.append(t * 1000, &samples);
        }
        h
    }

    const PACING: Pacing = Pacing {
        retention_ms: i64::MAX / 4,
    };

    #[test]
    fn a_window_holds_only_ticks_no_recorded_sample_can_still_land_in() {
        let h = history(10, 3, 4);
        // Recorded samples may still land at 9000 or later: a tick is final when the next one
        // is at or before 9000.
        let w = plan(&h, None, 9000, PACING, 500, 0);
        assert_eq!(w.ticks, (1..=8).map(|t| t * 1000).collect::<Vec<_>>());
        assert!(!w.unfinished);
        // A rules round still under way from 6500 on holds every tick from 6000.
        let w = plan(&h, Some(2000), 6500, PACING, 500, 0);
        assert_eq!(w.ticks, vec![3000, 4000, 5000]);
        let w = plan(&h, Some(5000), 6500, PACING, 500, 0);
        assert!(w.ticks.is_empty() && w.unfinished);
        let w = plan(&h, Some(5000), 9000, PACING, 500, 0);
        assert_eq!(w.ticks, vec![6000, 7000, 8000]);
        assert_eq!(w.series.len(), 3);
        assert!(w
            .series
            .iter()
            .all(|(_, p)| p.len() == 3 && p[0] == (6000, 6.0)));
        let w = plan(&h, Some(8000), 9000, PACING, 500, 0);
        assert!(w.ticks.is_empty() && w.unfinished);
        let w = plan(&h, Some(9000), 20_000, PACING, 500, 0);
        assert!(
            w.ticks.is_empty() && !w.unfinished,
            "the newest tick waits for a newer one"
        );
    }

    #[test]
    fn requests_hold_whole_ticks_and_split_a_tick_larger_than_a_request_by_series() {
        let h = history(6, 5, 100);
        let w = plan(&h, None, 5000, PACING, 10, 0);
        let mut labels = |k: &Arc<SeriesKey>| {
            Some(vec![Label {
                name: "__name__".into(),
                value: k.name.clone(),
            }])
        };
        let r = requests(&w, 10, &mut labels);
        // 5 series: 2 ticks (10 samples) per request.
        assert_eq!(
            r.iter().map(|(_, n, c)| (*n, *c)).collect::<Vec<_>>(),
            vec![(10, Some(2000)), (10, Some(4000))]
        );
        let r = requests(&w, 3, &mut labels);
        // 3 samples per request: each tick in two requests, the cursor moving on the second.
        assert_eq!(r.len(), 8);
        assert_eq!(r.iter().map(|(_, n, _)| n).sum::<usize>(), 20);
        assert_eq!(r[0].2, None);
        assert_eq!(r[1].2, Some(1000));
        assert!(r.iter().all(|(_, n, _)| *n <= 3));
    }

    #[test]
    fn what_aged_out_before_it_was_sent_is_reported_and_skipped() {
        let mut h = History::new(5_000, 2);
        let k = h.intern(SeriesKey::new("m", &[]));
        for t in 1..=20 {
            h.take_full_block();
            h.append(t * 1000, &[(Arc::clone(&k), t as f64)]);
            h.expire(t * 1000);
        }
        let first = h.first_tick().unwrap();
        let w = plan(
            &h,
            Some(2000),
            i64::MAX,
            Pacing {
                retention_ms: 5_000,
            },
            500,
            0,
        );
        assert_eq!(w.expired, Some((2000, first)));
        assert_eq!(w.ticks[0], first);
    }

    #[test]
    fn the_deadline_holds_a_small_batch_and_a_full_one_goes_at_once() {
        let h = history(10, 3, 100);
        // The first tick, 8000, became final when 9000 was appended.
        assert_eq!(
            plan(&h, Some(7000), 10_000, PACING, 500, 5000).due_ms,
            9000 + 5000
        );
        assert_eq!(
            plan(&h, Some(7000), 10_000, PACING, 3, 5000).due_ms,
            i64::MIN
        );
    }
}
