//! A real Alertmanager (Debian's `prometheus-alertmanager`) on a free loopback port, with no
//! cluster gossip, and a webhook receiver the tests own, which records every POST.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use tempfile::TempDir;

use super::{eventually, free_port, get_text, Process};

/// A running Alertmanager.
pub struct Alertmanager {
    pub process: Process,
    pub url: String,
    pub dir: TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager with this configuration (YAML) and waits until it is ready.
    pub async fn start(config_yaml: &str) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config: PathBuf = dir.path().join("alertmanager.yml");
        std::fs::write(&config, config_yaml).unwrap();
        let port = free_port();
        let mut command = Command::new("prometheus-alertmanager");
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn");
        let mut process = Process::spawn(
            "alertmanager",
            command,
            &dir.path().join("alertmanager.log"),
        );
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        eventually("Alertmanager to be ready", || {
            process.assert_running();
            get_text(&ready)
        })
        .await;
        Alertmanager { process, url, dir }
    }

    /// `GET /api/v2/alerts`: the alerts Alertmanager holds (active ones).
    pub async fn alerts(&self) -> Vec<serde_json::Value> {
        let text = get_text(&format!("{}/api/v2/alerts", self.url))
            .await
            .unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }
}

/// A webhook receiver on a loopback port: records each POST body (as JSON) and answers
/// `status` (200 unless changed).
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<serde_json::Value>>>,
}

async fn record(
    State(received): State<Arc<Mutex<Vec<serde_json::Value>>>>,
    body: Bytes,
) -> StatusCode {
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into()));
    received.lock().unwrap().push(value);
    StatusCode::OK
}

impl Receiver {
    /// Starts a receiver on `port` (0: any free port), serving `path`.
    pub async fn start(port: u16, path: &str) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the receiver's port");
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route(path, post(record))
            .with_state(received.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}{path}"),
            received,
        }
    }

    /// The bodies received so far.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.received.lock().unwrap().clone()
    }
}
