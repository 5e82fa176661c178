//! The three built-in recovery actions, each a function of an HTTP client, the API it talks to
//! and (for `reallocate_pins`) the node the alert names, returning one [`BuiltinReport`]:
//! - [`run_gc()`]: Kubo RPC `repo/gc`, with `repo/stat` before and after ([`run_gc`](mod@run_gc)).
//! - [`connect_bootstrap_peers()`]: Kubo `bootstrap/list`, then `swarm/connect` to each.
//! - [`reallocate_pins()`]: re-pins through IPFS Cluster's REST API what was allocated to an
//!   Offline peer, so it lands on healthy ones (the decision and its sources are in
//!   [`reallocate_pins`](mod@reallocate_pins)).
//!
//! Owns the calls and the reading of their answers. It does not decide when to run, retry,
//! record or count anything (the dispatcher and the audit log do), and it builds no HTTP
//! client: the caller's client carries the timeout, so no call here can hang. Parsers accept
//! Kubo's shapes (numbers as numbers, `null` lists) and js-ipfs's (numbers as strings, blank
//! lines in streams) and are tested on Kubo's documented responses.

pub mod connect_bootstrap_peers;
pub mod reallocate_pins;
pub mod run_gc;

pub use connect_bootstrap_peers::connect_bootstrap_peers;
pub use reallocate_pins::reallocate_pins;
pub use run_gc::run_gc;

use bytes::Bytes;

use crate::collect::{describe_transport_error, kubo};

/// What a built-in did, for the audit log and the API.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltinReport {
    /// Whether it did its work (each built-in's doc says when it counts as done).
    pub success: bool,
    /// One line for the audit log, e.g. `repo GC removed 12 blocks, freed 1048576 bytes`.
    pub summary: String,
    /// The figures and lists behind the summary, as JSON for the API.
    pub details: serde_json::Value,
}

/// Why a built-in could not do its work at all (failures of single items, one pin or one
/// peer, are in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum BuiltinError {
    /// No answer: refused, reset, timed out.
    #[error("{service} at {url} did not answer: {reason}")]
    Unreachable {
        /// `Kubo RPC API` or `IPFS Cluster REST API`.
        service: &'static str,
        /// The URL called.
        url: String,
        /// What happened.
        reason: String,
    },
    /// An error status.
    #[error("{service} at {url} answered HTTP {status}: {message}")]
    Status {
        /// `Kubo RPC API` or `IPFS Cluster REST API`.
        service: &'static str,
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The API's error message.
        message: String,
    },
    /// IPFS Cluster refused the basic-auth credentials (or none were configured).
    #[error(
        "IPFS Cluster REST API at {url} answered 401 Unauthorized: check cluster.ipfs_cluster.basic_auth_file \
         (one line user:password, as in the REST API's basic_auth_credentials); {configured}"
    )]
    Unauthorized {
        /// The URL called.
        url: String,
        /// Whether credentials were sent, and from which file.
        configured: String,
    },
    /// The credentials file could not be read.
    #[error("{0}")]
    Credentials(String),
    /// An answer that is not what the API documents.
    #[error("unexpected answer from {service} at {url}: {reason}")]
    BadAnswer {
        /// `Kubo RPC API` or `IPFS Cluster REST API`.
        service: &'static str,
        /// The URL called.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The alert's `node_id` matches no IPFS Cluster peer.
    #[error(
        "no IPFS Cluster peer has the name or id {node:?} (the alert's node_id label); its peers are: {known}. \
         Name the peer (peername in service.json) after the node's node_id, or use its peer id"
    )]
    UnknownNode {
        /// The node named by the alert.
        node: String,
        /// `peername (id)` of every peer.
        known: String,
    },
    /// The alert's `node_id` matches several IPFS Cluster peers by name.
    #[error("several IPFS Cluster peers are named {node:?} ({ids}); name them apart or use the peer id as node_id")]
    AmbiguousNode {
        /// The node named by the alert.
        node: String,
        /// Their peer ids.
        ids: String,
    },
}

/// The Kubo RPC API's service name in errors.
const KUBO: &str = "Kubo RPC API";

/// One item of a built-in failed (a GC error line, a peer that would not connect, a pin that
/// could not be moved): one warning line; the report lists it too.
struct BuiltinItemFailed<'a> {
    builtin: &'static str,
    item: &'a str,
    error: &'a str,
}

impl BuiltinItemFailed<'_> {
    fn emit(self) {
        tracing::warn!(
            builtin = self.builtin,
            item = self.item,
            error = self.error,
            "built-in recovery action: one item failed"
        );
    }
}

/// `base` with `path` appended to its path (a base URL may carry a path prefix of its own).
fn endpoint_url(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut url = base.clone();
    let joined = format!("{}/{}", url.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url
}

/// The Kubo RPC API at one base URL, through the caller's client.
struct KuboApi<'a> {
    client: &'a reqwest::Client,
    base: &'a reqwest::Url,
}

impl KuboApi<'_> {
    fn url(&self, endpoint: &str, query: &[(&str, &str)]) -> reqwest::Url {
        let mut url = endpoint_url(self.base, &format!("api/v0/{endpoint}"));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// POSTs `api/v0/{endpoint}?{query}` and returns the response once its status is 2xx.
    async fn post(
        &self,
        endpoint: &str,
        query: &[(&str, &str)],
    ) -> Result<(reqwest::Url, reqwest::Response), BuiltinError> {
        let url = self.url(endpoint, query);
        let response = self
            .client
            .post(url.clone())
            .send()
            .await
            .map_err(|e| unreachable(&url, &e))?;
        let status = response.status();
        if status.is_success() {
            return Ok((url, response));
        }
        let body = response.bytes().await.unwrap_or_default();
        Err(BuiltinError::Status {
            service: KUBO,
            url: url.to_string(),
            status: status.as_u16(),
            message: kubo::error_message(&body),
        })
    }

    /// POSTs and reads the whole body.
    async fn call(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Bytes, BuiltinError> {
        let (url, response) = self.post(endpoint, query).await?;
        response.bytes().await.map_err(|e| unreachable(&url, &e))
    }

    /// `repo/stat?size-only=true` (Kubo's full stat walks every block to count them; the
    /// size is what GC frees).
    async fn repo_size(&self) -> Result<f64, BuiltinError> {
        let body = self.call("repo/stat", &[("size-only", "true")]).await?;
        kubo::parse_repo_stat(&body)
            .map(|s| s.repo_size)
            .map_err(|e| bad_kubo_answer(&self.url("repo/stat", &[]), e))
    }
}

fn unreachable(url: &reqwest::Url, e: &reqwest::Error) -> BuiltinError {
    BuiltinError::Unreachable {
        service: KUBO,
        url: url.to_string(),
        reason: describe_transport_error(e, "the IPFS daemon"),
    }
}

fn bad_kubo_answer(url: &reqwest::Url, e: kubo::ParseError) -> BuiltinError {
    BuiltinError::BadAnswer {
        service: KUBO,
        url: url.to_string(),
        reason: e.to_string(),
    }
}

/// The non-blank lines of an NDJSON body (js-ipfs separates objects with blank lines).
fn ndjson_lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_a_base_path() {
        let base: reqwest::Url = "http://127.0.0.1:5001/ipfs/".parse().unwrap();
        assert_eq!(
            endpoint_url(&base, "api/v0/repo/gc").as_str(),
            "http://127.0.0.1:5001/ipfs/api/v0/repo/gc"
        );
        let bare: reqwest::Url = "http://127.0.0.1:9094".parse().unwrap();
        assert_eq!(
            endpoint_url(&bare, "pins/Qm1").as_str(),
            "http://127.0.0.1:9094/pins/Qm1"
        );
    }

    #[test]
    fn ndjson_skips_blank_lines() {
        let lines: Vec<&[u8]> = ndjson_lines(b"\n{\"a\":1}\n\n{\"b\":2}\r\n  \n").collect();
        assert_eq!(lines, vec![&b"{\"a\":1}"[..], &b"{\"b\":2}\r"[..]]);
    }
}
