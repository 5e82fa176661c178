//! Remote write receivers for the tests: Prometheus 2.42 as a receiver
//! (`--web.enable-remote-write-receiver`, an out-of-order window so back-filled samples are
//! taken), VictoriaMetrics 1.79 (Debian's `victoria-metrics`), and a stand-in that decodes what
//! it gets and answers as told (2xx, 500, 429 with Retry-After, 400, or not at all), to test
//! faults no real receiver produces on demand. Each reads back what it holds as one map: the
//! series' labels (sorted, `__name__` included) to its samples, oldest first.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use ipfs_sentinel::remote_write::proto::WriteRequest;
use prost::Message;

use super::{eventually, get_text, http, Process, Prometheus};

/// Labels (sorted, `__name__` included) to samples (ms, value), oldest first.
pub type Held = BTreeMap<Vec<(String, String)>, Vec<(i64, f64)>>;

/// Starts Prometheus as a remote write receiver, accepting samples up to 2 h out of order
/// (`storage.tsdb.out_of_order_time_window`, in Prometheus since 2.39).
pub async fn prometheus_receiver() -> Prometheus {
    Prometheus::start_config(
        "global: {scrape_interval: 1s}\nstorage:\n  tsdb:\n    out_of_order_time_window: 2h\n",
        &["--web.enable-remote-write-receiver"],
    )
    .await
}

/// Every sample Prometheus holds for series matching `selector` over the last `range`.
pub async fn prometheus_held(prometheus: &Prometheus, selector: &str, range: &str) -> Held {
    let mut held = Held::new();
    for series in prometheus.query(&format!("{selector}[{range}]")).await {
        let labels = sorted(&series["metric"]);
        let values = series["values"].as_array().cloned().unwrap_or_default();
        let points = values
            .iter()
            .map(|v| {
                let ms = (v[0].as_f64().unwrap() * 1000.0).round() as i64;
                (ms, v[1].as_str().unwrap().parse::<f64>().unwrap())
            })
            .collect();
        held.insert(labels, points);
    }
    held
}

fn sorted(metric: &serde_json::Value) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = metric
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    labels.sort();
    labels
}

/// VictoriaMetrics 1.79 (Debian's `victoria-metrics`) on a given port and data dir, so a test
/// can stop it and start it again on the same data.
pub struct VictoriaMetrics {
    pub process: Process,
    pub url: String,
}

impl VictoriaMetrics {
    /// Starts it; `-dedup.minScrapeInterval=1ms` keeps one sample per series and millisecond,
    /// as Prometheus does, so a tick sent twice with the same value (after a restart in the
    /// middle of a tick) reads back once.
    pub async fn start(port: u16, data: &Path, log: &Path) -> VictoriaMetrics {
        let mut command = Command::new("victoria-metrics");
        command
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", data.display()))
            .arg("-retentionPeriod=10y")
            .arg("-dedup.minScrapeInterval=1ms")
            .arg("-search.latencyOffset=0s")
            .arg("-loggerLevel=WARN");
        let mut process = Process::spawn("victoria-metrics", command, log);
        let url = format!("http://127.0.0.1:{port}");
        let health = format!("{url}/health");
        eventually("VictoriaMetrics to be ready", || {
            process.assert_running();
            get_text(&health)
        })
        .await;
        VictoriaMetrics { process, url }
    }

    /// Its remote write endpoint.
    pub fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.url)
    }

    /// Every sample it holds for series matching `selector` (`/api/v1/export`, raw samples),
    /// after flushing its in-memory buffers.
    pub async fn held(&self, selector: &str) -> Held {
        http()
            .get(format!("{}/internal/force_flush", self.url))
            .send()
            .await
            .expect("flush VictoriaMetrics");
        let body = http()
            .get(format!("{}/api/v1/export", self.url))
            .query(&[("match[]", selector), ("start", "0")])
            .send()
            .await
            .expect("export from VictoriaMetrics")
            .text()
            .await
            .unwrap();
        let mut held = Held::new();
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let labels = sorted(&row["metric"]);
            let times = row["timestamps"].as_array().unwrap();
            let values = row["values"].as_array().unwrap();
            let mut points: Vec<(i64, f64)> = times
                .iter()
                .zip(values)
                .map(|(t, v)| (t.as_i64().unwrap(), v.as_f64().unwrap_or(f64::NAN)))
                .collect();
            points.sort_by_key(|p| p.0);
            held.entry(labels).or_default().extend(points);
        }
        held
    }
}

/// How the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 204, keeping the samples.
    Take,
    /// This status; 429 comes with `Retry-After: 1`.
    Status(u16),
    /// No answer for a minute.
    Hang,
}

/// What the stand-in saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Samples taken.
    pub held: Held,
    /// Samples that came again at a timestamp already held with another value.
    pub conflicts: Vec<String>,
    /// When each request arrived, with the answer it got.
    pub requests: Vec<(Instant, Answer)>,
    /// The headers of the last request.
    pub headers: Vec<(String, String)>,
}

/// A remote write receiver that decodes each request and answers as told.
pub struct StandIn {
    pub url: String,
    answer: Arc<Mutex<Answer>>,
    seen: Arc<Mutex<Seen>>,
}

type StandInState = (Arc<Mutex<Answer>>, Arc<Mutex<Seen>>);

async fn receive(
    State((answer, seen)): State<StandInState>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let now = *answer.lock().unwrap();
    {
        let mut seen = seen.lock().unwrap();
        seen.requests.push((Instant::now(), now));
        seen.headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
    }
    match now {
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Answer::Status(429) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "slow down",
            )
                .into_response()
        }
        Answer::Status(code) => {
            return (
                StatusCode::from_u16(code).unwrap(),
                format!("stand-in answers {code}"),
            )
                .into_response()
        }
        Answer::Take => {}
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&body)
        .expect("a snappy block body");
    let request = WriteRequest::decode(raw.as_slice()).expect("a protobuf WriteRequest");
    let mut seen = seen.lock().unwrap();
    for series in request.timeseries {
        let mut labels: Vec<(String, String)> = series
            .labels
            .into_iter()
            .map(|l| (l.name, l.value))
            .collect();
        labels.sort();
        let key = format!("{labels:?}");
        let points = seen.held.entry(labels).or_default();
        let mut conflicts = Vec::new();
        for s in series.samples {
            match points.binary_search_by_key(&s.timestamp, |p| p.0) {
                Ok(i) if points[i].1.to_bits() != s.value.to_bits() => conflicts.push(format!(
                    "{key} at {}: {} then {}",
                    s.timestamp, points[i].1, s.value
                )),
                Ok(_) => {}
                Err(i) => points.insert(i, (s.timestamp, s.value)),
            }
        }
        seen.conflicts.extend(conflicts);
    }
    StatusCode::NO_CONTENT.into_response()
}

impl StandIn {
    /// Starts it on a free port, taking everything.
    pub async fn start() -> StandIn {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(Answer::Take));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = Router::new()
            .route("/api/v1/write", post(receive))
            .with_state((Arc::clone(&answer), Arc::clone(&seen)));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StandIn {
            url: format!("http://{addr}/api/v1/write"),
            answer,
            seen,
        }
    }

    /// Answers every request from now on with `answer`.
    pub fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// Reads what it saw.
    pub fn seen<T>(&self, read: impl FnOnce(&Seen) -> T) -> T {
        read(&self.seen.lock().unwrap())
    }
}
