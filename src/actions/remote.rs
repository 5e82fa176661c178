//! Running an action on a peer's sentinel: `target: alerting_node` for an alert about another
//! node. The peer is found by asking each configured peer's `/api/v1/status` for its node id;
//! the run is `POST {peer}/api/v1/actions/{name}/run` with the alert and the outbox entry's id,
//! which the peer uses to answer a retried request from its record instead of running twice.
//!
//! Owns the wire format of remote runs (both sides) and the peer lookup; the peer's own
//! dispatcher decides and runs.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::alert::AlertEvent;
use super::audit::RunResult;
use super::policy::Trigger;
use crate::collect::describe_transport_error;
use crate::config::{read_secret, HttpUrl};

/// The body of `POST /api/v1/actions/{name}/run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteRequest {
    /// The caller's outbox entry: the same id is never run twice.
    pub job: String,
    /// The alert to run it for.
    pub alert: AlertEvent,
    /// Why it runs on the caller's side.
    #[serde(default = "firing")]
    pub trigger: Trigger,
}

fn firing() -> Trigger {
    Trigger::Firing
}

/// The answer to a remote run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteAnswer {
    /// What became of it.
    pub result: RunResult,
    /// Its output.
    pub output: String,
    /// How long it took on the peer.
    pub duration_seconds: f64,
}

/// Finds the peer sentinel whose `/api/v1/status` says it is `node_id`.
pub async fn find_peer(
    client: &reqwest::Client,
    peers: &[HttpUrl],
    node_id: &str,
) -> Result<HttpUrl, String> {
    #[derive(Deserialize)]
    struct Status {
        node_id: String,
    }
    let asks = peers.iter().map(|peer| async move {
        let url = peer.0.join("api/v1/status").ok()?;
        let status: Status = client.get(url).send().await.ok()?.json().await.ok()?;
        (status.node_id == node_id).then(|| peer.clone())
    });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .next()
        .ok_or_else(|| {
            format!(
                "no peer sentinel answers as node {node_id:?} (peers: {})",
                peers
                    .iter()
                    .map(|p| p.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// Asks `peer` to run `action` and waits for its answer.
pub async fn run_on_peer(
    client: &reqwest::Client,
    peer: &HttpUrl,
    action: &str,
    request: &RemoteRequest,
    token_file: Option<&Path>,
) -> Result<RemoteAnswer, String> {
    let url = peer
        .0
        .join(&format!("api/v1/actions/{action}/run"))
        .map_err(|e| format!("bad peer URL {peer}: {e}"))?;
    let mut post = client.post(url.clone()).json(request);
    if let Some(file) = token_file {
        post = post.bearer_auth(read_secret(file, "cluster.peer_token_file")?);
    }
    let answer = post.send().await.map_err(|e| {
        format!(
            "{url}: {}",
            describe_transport_error(&e, "the peer's sentinel")
        )
    })?;
    let status = answer.status();
    if !status.is_success() {
        let text = answer.text().await.unwrap_or_default();
        return Err(format!("{url}: HTTP {status} {}", text.trim()));
    }
    answer
        .json()
        .await
        .map_err(|e| format!("{url}: unreadable answer: {e}"))
}
