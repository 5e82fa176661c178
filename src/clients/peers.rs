//! The peer-sentinel client ([`PeerClient`]): the ipfs-sentinels of the other nodes, asked
//! for their status (`GET /api/v1/status`) and to run a recovery action
//! (`POST /api/v1/actions/{name}/run`).
//!
//! Sends the token of `cluster.peer_token_file` as `Authorization: Bearer` (a file that is
//! empty or cannot be read is an error naming it; the token is never logged), each call under
//! the timeout of the HTTP client it was given. The `cluster` collector (its peers view) and the
//! remote runs of `target: alerting_node` actions call it. The remote run's request and answer
//! are the caller's types: the actions side owns that wire format on both ends.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{
    endpoint_url, http_client, ClientError, Credentials, HttpService, ParseError, Service,
};
use crate::config::{read_secret, ClusterConfig};
use crate::status::StatusReport;

/// A peer's sentinel, as named in errors.
pub const PEER_SENTINEL: Service = Service {
    name: "peer sentinel",
    daemon: "the peer's sentinel",
    timeout: "the timeout",
    message_field: "error",
};

/// The configuration key of the token file, as named in errors.
const TOKEN_FILE: &str = "cluster.peer_token_file";

/// Reads the token peers expect; an empty file is an error, not an empty token.
fn read_token(path: &Path) -> Result<String, ClientError> {
    let token = read_secret(path, TOKEN_FILE).map_err(ClientError::Credentials)?;
    if token.is_empty() {
        return Err(ClientError::Credentials(format!(
            "{TOKEN_FILE} {} is empty; write the peers' token in it",
            path.display()
        )));
    }
    Ok(token)
}

/// Calls to peer sentinels, one client for all of them (each call names its peer's base URL).
#[derive(Debug, Clone)]
pub struct PeerClient {
    api: HttpService,
}

impl PeerClient {
    /// The client of the peers view: each call under `cluster.peer_timeout_seconds` (which a
    /// timeout names), with the token of `cluster.peer_token_file`, read now.
    pub fn new(config: &ClusterConfig) -> Result<Self, ClientError> {
        let http = http_client(config.peer_timeout_seconds.duration())?;
        let service = Service {
            timeout: "peer_timeout_seconds",
            ..PEER_SENTINEL
        };
        Self::build(service, http, config.peer_token_file.as_deref())
    }

    /// A client through `http`, which carries the timeout (the dispatcher's client for remote
    /// runs; see [`http_client`]), with the token of `token_file`, read now.
    pub fn with_http(
        http: reqwest::Client,
        token_file: Option<&Path>,
    ) -> Result<Self, ClientError> {
        Self::build(PEER_SENTINEL, http, token_file)
    }

    fn build(
        service: Service,
        http: reqwest::Client,
        token_file: Option<&Path>,
    ) -> Result<Self, ClientError> {
        let (credentials, sent) = match token_file {
            Some(file) => (
                Credentials::Bearer(read_token(file)?),
                format!("the token sent was read from {}", file.display()),
            ),
            None => (
                Credentials::None,
                "none is configured, so none was sent".to_owned(),
            ),
        };
        let hint = format!("check {TOKEN_FILE} (the token of the peer's --web.token-file); {sent}");
        Ok(Self {
            api: HttpService::new(service, http).with_credentials(credentials, hint),
        })
    }

    /// `{peer}/{path}`.
    ///
    /// ```
    /// use ipfs_sentinel::clients::peers::PeerClient;
    /// let peer = "http://10.0.0.2:9401".parse().unwrap();
    /// assert_eq!(
    ///     PeerClient::url(&peer, "api/v1/actions/run_gc/run").as_str(),
    ///     "http://10.0.0.2:9401/api/v1/actions/run_gc/run"
    /// );
    /// ```
    pub fn url(peer: &reqwest::Url, path: &str) -> reqwest::Url {
        endpoint_url(peer, path, &[])
    }

    /// `GET {peer}/api/v1/status`: the peer's status report.
    pub async fn status(&self, peer: &reqwest::Url) -> Result<StatusReport, ClientError> {
        let url = Self::url(peer, "api/v1/status");
        let body = self.api.call(reqwest::Method::GET, &url).await?;
        self.read(&url, "api/v1/status", &body)
    }

    /// `POST {peer}/api/v1/actions/{action}/run` with `request` as JSON; the peer answers when
    /// its run ends.
    pub async fn run_action<R: Serialize + ?Sized, A: DeserializeOwned>(
        &self,
        peer: &reqwest::Url,
        action: &str,
        request: &R,
    ) -> Result<A, ClientError> {
        let url = Self::url(peer, &format!("api/v1/actions/{action}/run"));
        let response = self
            .api
            .send(
                &url,
                self.api.request(reqwest::Method::POST, &url).json(request),
            )
            .await?;
        let body = response
            .bytes()
            .await
            .map_err(|e| self.api.unreachable(&url, &e))?;
        self.read(&url, "api/v1/actions/run", &body)
    }

    fn read<T: DeserializeOwned>(
        &self,
        url: &reqwest::Url,
        endpoint: &'static str,
        body: &[u8],
    ) -> Result<T, ClientError> {
        serde_json::from_slice(body).map_err(|e| {
            self.api.bad_answer(
                url,
                ParseError {
                    endpoint,
                    reason: e.to_string(),
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::{get, post};

    fn token_file(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
        let path = dir.path().join("peer.token");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A peer that wants the token `t0ken`, reports itself as `node-b` and answers a run.
    #[tokio::test]
    async fn the_token_is_sent_and_answers_are_read() {
        let app = axum::Router::new()
            .route(
                "/api/v1/status",
                get(|headers: HeaderMap| async move {
                    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                        Some("Bearer t0ken") => {
                            r#"{"node_id":"node-b","role":"worker","ipfs":{"up":true}}"#
                                .into_response()
                        }
                        _ => StatusCode::UNAUTHORIZED.into_response(),
                    }
                }),
            )
            .route(
                "/api/v1/actions/{name}/run",
                post(|body: String| async move {
                    (
                        StatusCode::NOT_FOUND,
                        serde_json::json!({"status": "error", "error": format!("no such action; got {body}")})
                            .to_string(),
                    )
                }),
            );
        let (base, server) = crate::clients::tests::serve(app).await;
        let dir = tempfile::tempdir().unwrap();
        let http = http_client(std::time::Duration::from_secs(5)).unwrap();

        let peers =
            PeerClient::with_http(http.clone(), Some(&token_file(&dir, "t0ken\n"))).unwrap();
        let report = peers.status(&base).await.unwrap();
        assert_eq!((report.node_id.as_str(), report.ipfs.up), ("node-b", true));
        let e = peers
            .run_action::<_, serde_json::Value>(
                &base,
                "restart_ipfs",
                &serde_json::json!({"job": "j1"}),
            )
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "peer sentinel at {base}api/v1/actions/restart_ipfs/run answered HTTP 404: \
                 no such action; got {{\"job\":\"j1\"}}"
            )
        );

        let anonymous = PeerClient::with_http(http.clone(), None).unwrap();
        let refused = anonymous.status(&base).await.unwrap_err().to_string();
        assert!(
            refused.contains("401 Unauthorized") && refused.contains("none was sent"),
            "{refused}"
        );

        let empty = PeerClient::with_http(http, Some(&token_file(&dir, " \n")))
            .unwrap_err()
            .to_string();
        assert!(
            empty.starts_with("cluster.peer_token_file ")
                && empty.ends_with("is empty; write the peers' token in it"),
            "{empty}"
        );
        server.abort();
    }
}
