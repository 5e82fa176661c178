//! Running an action on a peer's sentinel: `target: alerting_node` for an alert about another
//! node. The peer is found by asking each configured peer's `/api/v1/status` for its node id;
//! the run is `POST {peer}/api/v1/actions/{name}/run` with the alert and the outbox entry's id,
//! which the peer uses to answer a retried request from its record instead of running twice.
//!
//! Owns the wire format of remote runs (both sides) and the peer lookup; the calls go through
//! [`PeerClient`], and the peer's own dispatcher decides and runs.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::audit::RunResult;
use super::policy::Trigger;
use crate::clients::peers::PeerClient;
use crate::config::HttpUrl;
use crate::model::AlertEvent;

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
    let sentinels = PeerClient::with_http(client.clone(), None).map_err(|e| e.to_string())?;
    let sentinels = &sentinels;
    let asks = peers.iter().map(|peer| async move {
        let status = sentinels.status(&peer.0).await.ok()?;
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

/// Asks `peer` to run `action` and waits for its answer; the token is read from `token_file`
/// for each run, so a new token is used without a restart.
pub async fn run_on_peer(
    client: &reqwest::Client,
    peer: &HttpUrl,
    action: &str,
    request: &RemoteRequest,
    token_file: Option<&Path>,
) -> Result<RemoteAnswer, String> {
    PeerClient::with_http(client.clone(), token_file)
        .map_err(|e| e.to_string())?
        .run_action(&peer.0, action, request)
        .await
        .map_err(|e| e.to_string())
}
