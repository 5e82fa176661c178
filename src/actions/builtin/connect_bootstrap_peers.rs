//! `connect_bootstrap_peers`: Kubo RPC `bootstrap/list`, then `swarm/connect?arg=<addr>` for
//! each address, a few at a time.
//!
//! `bootstrap/list` answers `{"Peers": ["<multiaddr>", ...]}`, with `null` (Kubo) or `[]`
//! (js-ipfs) when the list is empty; `swarm/connect` answers `{"Strings": ["connect <peer>
//! success"]}` or an error status with Kubo's error object (Kubo RPC reference,
//! docs.ipfs.tech/reference/kubo/rpc). Each connect is bounded by the caller's client timeout,
//! so an address that swallows packets costs one timeout, run beside the others.
//!
//! Success means the node is connected to at least one bootstrap peer after the run, or has
//! none configured (nothing to do is not a failure).

use futures::StreamExt;
use serde_json::json;

use super::{BuiltinError, BuiltinItemFailed, BuiltinReport};
use crate::clients::kubo::KuboClient;

/// Connects tried at once.
const CONCURRENT_CONNECTS: usize = 8;

/// Connects the node whose Kubo RPC API is at `kubo_api_url` to each of its bootstrap peers.
/// Fails (`Err`) only when the list cannot be read; each peer that will not connect is listed
/// in the report with the node's reason.
pub async fn connect_bootstrap_peers(
    client: &reqwest::Client,
    kubo_api_url: &reqwest::Url,
) -> Result<BuiltinReport, BuiltinError> {
    let kubo = KuboClient::with_http(client.clone(), kubo_api_url.clone());
    let addresses = kubo.bootstrap_list().await?;
    let kubo = &kubo;
    let outcomes: Vec<(String, Result<(), String>)> = futures::stream::iter(addresses)
        .map(|address| async move {
            // The report's line names the address; the reason says what failed.
            let outcome = kubo.swarm_connect(&address).await.map_err(|e| e.reason());
            (address, outcome)
        })
        .buffered(CONCURRENT_CONNECTS)
        .collect()
        .await;
    Ok(report(outcomes))
}

fn report(outcomes: Vec<(String, Result<(), String>)>) -> BuiltinReport {
    let total = outcomes.len();
    let mut connected = Vec::new();
    let mut failed = Vec::new();
    for (address, outcome) in outcomes {
        match outcome {
            Ok(()) => connected.push(address),
            Err(error) => {
                BuiltinItemFailed {
                    builtin: "connect_bootstrap_peers",
                    item: &address,
                    error: &error,
                }
                .emit();
                failed.push(json!({"address": address, "error": error}));
            }
        }
    }
    let summary = if total == 0 {
        "no bootstrap peers configured (bootstrap/list is empty); nothing to connect".to_owned()
    } else {
        format!(
            "connected to {} of {total} bootstrap peers{}",
            connected.len(),
            match failed.first() {
                Some(first) => format!(
                    "; first failure: {} ({})",
                    first["address"].as_str().unwrap_or(""),
                    first["error"].as_str().unwrap_or("")
                ),
                None => String::new(),
            }
        )
    };
    BuiltinReport {
        success: total == 0 || !connected.is_empty(),
        summary,
        details: json!({
            "bootstrap_peers": total,
            "connected": connected,
            "failed": failed,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_needs_one_connection_or_nothing_to_do() {
        let none = report(Vec::new());
        assert!(none.success);
        assert!(none.summary.starts_with("no bootstrap peers configured"));

        let some = report(vec![
            ("/ip4/10.0.0.1/tcp/4001/p2p/QmA".into(), Ok(())),
            (
                "/ip4/10.0.0.2/tcp/4001/p2p/QmB".into(),
                Err("HTTP 500: dial backoff".into()),
            ),
        ]);
        assert!(some.success);
        assert_eq!(
            some.summary,
            "connected to 1 of 2 bootstrap peers; first failure: /ip4/10.0.0.2/tcp/4001/p2p/QmB (HTTP 500: dial backoff)"
        );
        assert_eq!(some.details["failed"][0]["error"], "HTTP 500: dial backoff");

        let all_failed = report(vec![(
            "/ip4/10.0.0.2/tcp/4001/p2p/QmB".into(),
            Err("refused".into()),
        )]);
        assert!(!all_failed.success);
        assert_eq!(all_failed.details["connected"], json!([]));
    }
}
