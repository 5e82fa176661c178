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
use serde::Deserialize;
use serde_json::json;

use super::{bad_kubo_answer, BuiltinError, BuiltinItemFailed, BuiltinReport, KuboApi};
use crate::collect::kubo::ParseError;

/// Connects tried at once.
const CONCURRENT_CONNECTS: usize = 8;

/// Reads `bootstrap/list`: the multiaddrs, none when `Peers` is `null`, `[]` or absent.
pub fn parse_bootstrap_list(body: &[u8]) -> Result<Vec<String>, ParseError> {
    #[derive(Deserialize)]
    struct List {
        #[serde(rename = "Peers", default)]
        peers: Option<Vec<String>>,
    }
    let list: List = serde_json::from_slice(body).map_err(|e| ParseError {
        endpoint: "bootstrap/list",
        reason: e.to_string(),
    })?;
    Ok(list.peers.unwrap_or_default())
}

/// Connects the node whose Kubo RPC API is at `kubo_api_url` to each of its bootstrap peers.
/// Fails (`Err`) only when the list cannot be read; each peer that will not connect is listed
/// in the report with the node's reason.
pub async fn connect_bootstrap_peers(
    client: &reqwest::Client,
    kubo_api_url: &reqwest::Url,
) -> Result<BuiltinReport, BuiltinError> {
    let api = KuboApi {
        client,
        base: kubo_api_url,
    };
    let body = api.call("bootstrap/list", &[]).await?;
    let addresses = parse_bootstrap_list(&body)
        .map_err(|e| bad_kubo_answer(&api.url("bootstrap/list", &[]), e))?;
    let api = &api;
    let outcomes: Vec<(String, Result<(), String>)> = futures::stream::iter(addresses)
        .map(|address| async move {
            let outcome = api
                .call("swarm/connect", &[("arg", &address)])
                .await
                .map(drop)
                .map_err(|e| reason(&e));
            (address, outcome)
        })
        .buffered(CONCURRENT_CONNECTS)
        .collect()
        .await;
    Ok(report(outcomes))
}

/// The part of an error worth a line in a per-peer list (the URL is the same for all).
fn reason(e: &BuiltinError) -> String {
    match e {
        BuiltinError::Unreachable { reason, .. } => reason.clone(),
        BuiltinError::Status {
            status, message, ..
        } => format!("HTTP {status}: {message}"),
        other => other.to_string(),
    }
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
    //! Kubo's documented `bootstrap/list` answer is `{"Peers": ["<string>"]}`
    //! (docs.ipfs.tech/reference/kubo/rpc); Kubo sends `null` for an empty list, js-ipfs `[]`.
    use super::*;

    #[test]
    fn lists_as_kubo_and_js_ipfs_send_them() {
        let kubo = br#"{"Peers":["/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN","/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ"]}"#;
        let peers = parse_bootstrap_list(kubo).unwrap();
        assert_eq!(peers.len(), 2);
        assert!(peers[1].starts_with("/ip4/104.131.131.82/tcp/4001/p2p/"));
        assert!(parse_bootstrap_list(br#"{"Peers":null}"#)
            .unwrap()
            .is_empty());
        assert!(parse_bootstrap_list(br#"{"Peers":[]}"#).unwrap().is_empty());
        assert!(parse_bootstrap_list(b"{}").unwrap().is_empty());
        let e = parse_bootstrap_list(br#"{"Peers":"x"}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unexpected response from bootstrap/list"),
            "{e}"
        );
    }

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
