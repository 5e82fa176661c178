//! The IPFS Cluster REST API client ([`IpfsClusterClient`]) and the API's shapes with their
//! parsers: peers (`GET /peers`), this peer's pins (`GET /pins?local=true`), allocations
//! (`GET /allocations?filter=pin`), re-pins (`POST /pins/{cid}`), and the peer monitor's
//! latest metrics (`GET /monitor/metrics`, `GET /monitor/metrics/{name}`) and alerts
//! (`GET /health/alerts`).
//!
//! Lists come as NDJSON (IPFS Cluster 1.0 and later), as one JSON array (older versions and
//! the monitor's endpoints, which encode a Go slice in one piece), as `null` (a nil slice) or as
//! nothing (`204 No Content` when a list is empty); [`parse_list`] reads all four. Object
//! shapes follow the JSON tags of IPFS Cluster's `api/types.go` (`ID`, `GlobalPinInfo`,
//! `PinInfoShort`, `Pin`, `Metric`, `Alert`), with `null` for empty lists and maps. Basic authentication is read from
//! `cluster.ipfs_cluster.basic_auth_file` when the client is made and never logged; a 401 says
//! which file the credentials came from. The `ipfs_cluster` collector and the
//! `reallocate_pins` built-in call it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{
    endpoint_url, http_client, null_as_default, ClientError, Credentials, HttpService, ParseError,
    Service,
};
use crate::config::{read_secret, IpfsClusterConfig};

/// IPFS Cluster's REST API, as named in errors.
pub const IPFS_CLUSTER: Service = Service {
    name: "IPFS Cluster REST API",
    daemon: "the IPFS Cluster peer",
    timeout: "the timeout",
    message_field: "message",
};

/// The configuration key of the basic-auth file, as named in errors.
const BASIC_AUTH_FILE: &str = "cluster.ipfs_cluster.basic_auth_file";

/// One entry of `GET /peers` (an `ID`).
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterPeer {
    /// The cluster peer id.
    pub id: String,
    /// Its name (`peername` in service.json).
    #[serde(default)]
    pub peername: String,
    /// Non-empty when the peer could not be reached.
    #[serde(default)]
    pub error: String,
}

/// One entry of `GET /pins` (a `GlobalPinInfo`).
#[derive(Debug, Clone, Deserialize)]
pub struct PinStatus {
    /// The pinned CID.
    pub cid: String,
    /// Status per cluster peer id (with `local=true`, only this peer).
    #[serde(default)]
    pub peer_map: BTreeMap<String, PeerPinInfo>,
}

/// A peer's part in one pin (a `PinInfoShort`).
#[derive(Debug, Clone, Deserialize)]
pub struct PeerPinInfo {
    /// `pinned`, `pinning`, `pin_queued`, `pin_error`, `remote`, ...
    pub status: String,
    /// When the pin tracker last changed this status (RFC 3339 with nanoseconds; Go's zero
    /// time `0001-01-01T00:00:00Z` when it never set one).
    #[serde(default)]
    pub timestamp: String,
    /// Why it failed, for the `*_error` statuses.
    #[serde(default)]
    pub error: String,
    /// How many times the tracker has tried this operation.
    #[serde(default)]
    pub attempt_count: u64,
}

impl PeerPinInfo {
    /// When the status was set, in ms since the Unix epoch; `None` for Go's zero time or a
    /// timestamp that cannot be read.
    ///
    /// ```
    /// use ipfs_sentinel::clients::ipfs_cluster::PeerPinInfo;
    /// let info = |ts: &str| PeerPinInfo {
    ///     status: "pin_error".into(), timestamp: ts.into(), error: String::new(), attempt_count: 0,
    /// };
    /// assert_eq!(info("1970-01-01T00:00:01.5Z").since_ms(), Some(1500));
    /// assert_eq!(info("0001-01-01T00:00:00Z").since_ms(), None);
    /// assert_eq!(info("").since_ms(), None);
    /// ```
    pub fn since_ms(&self) -> Option<i64> {
        crate::clock::parse_rfc3339(&self.timestamp)
            .ok()
            .filter(|ms| *ms > 0)
    }
}

/// One of a peer's metrics as IPFS Cluster's peer monitor keeps it (`api.Metric`): the latest
/// `ping` or informer metric (`freespace`, `tag:*`, `pinqueue`, ...) each peer broadcast.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MonitorMetric {
    /// The metric's name (`ping`, `freespace`, ...).
    #[serde(default)]
    pub name: String,
    /// The cluster peer id that sent it.
    #[serde(default)]
    pub peer: String,
    /// Its value, as text.
    #[serde(default)]
    pub value: String,
    /// When it expires, in Unix nanoseconds (received time plus the informer's TTL).
    #[serde(default)]
    pub expire: i64,
    /// Whether the informer produced a valid value.
    #[serde(default)]
    pub valid: bool,
    /// When this peer's monitor received it, in Unix nanoseconds (0: never received).
    #[serde(default)]
    pub received_at: i64,
}

impl MonitorMetric {
    /// When it was received, in ms since the Unix epoch; `None` when it never was (an alert
    /// about a peer whose metric was never seen carries only its name and peer).
    ///
    /// ```
    /// use ipfs_sentinel::clients::ipfs_cluster::MonitorMetric;
    /// let m: MonitorMetric = serde_json::from_str(
    ///     r#"{"name":"ping","peer":"12D3KooWA","received_at":1764496800123456789}"#,
    /// ).unwrap();
    /// assert_eq!(m.received_ms(), Some(1_764_496_800_123));
    /// assert_eq!(MonitorMetric { received_at: 0, ..m }.received_ms(), None);
    /// ```
    pub fn received_ms(&self) -> Option<i64> {
        (self.received_at > 0).then_some(self.received_at / 1_000_000)
    }
}

/// One entry of `GET /health/alerts` (`api.Alert`): a peer's metric that expired, as it was
/// last received, and when the monitor raised the alert.
#[derive(Debug, Clone, Deserialize)]
pub struct MonitorAlert {
    /// The expired metric (`api.Alert` embeds `api.Metric`, so its fields sit at the top).
    #[serde(flatten)]
    pub metric: MonitorMetric,
    /// When the alert was raised (RFC 3339).
    #[serde(default)]
    pub triggered_at: String,
}

/// One entry of `GET /allocations`, read for where it is allocated only (the collector's
/// view: any other field may take any shape).
#[derive(Debug, Clone, Deserialize)]
pub struct Allocation {
    /// The pinned CID.
    pub cid: String,
    /// The peers chosen to hold it; empty when it goes everywhere.
    #[serde(default, deserialize_with = "null_as_default")]
    pub allocations: Vec<String>,
}

/// A pin as `GET /allocations` lists it and `POST /pins/{cid}` answers it (`api.Pin` in
/// IPFS Cluster's `api/types.go`), with the options a re-pin must send again.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClusterPin {
    /// The pinned CID.
    pub cid: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// The peers holding it; empty when it is pinned everywhere.
    #[serde(default, deserialize_with = "null_as_default")]
    pub allocations: Vec<String>,
    /// Fewest peers that must hold it (-1: everywhere).
    #[serde(default)]
    pub replication_factor_min: i64,
    /// Most peers that may hold it (-1: everywhere).
    #[serde(default)]
    pub replication_factor_max: i64,
    /// `recursive` or `direct`.
    #[serde(default)]
    pub mode: String,
    /// When it expires (`0001-01-01T00:00:00Z`: never).
    #[serde(default)]
    pub expire_at: Option<String>,
    /// User metadata.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: BTreeMap<String, String>,
    /// Multiaddrs of peers known to hold the content.
    #[serde(default, deserialize_with = "null_as_default")]
    pub origins: Vec<String>,
    /// Shard size of a sharded add (0 otherwise).
    #[serde(default)]
    pub shard_size: u64,
}

impl ClusterPin {
    /// The query of `POST /pins/{cid}` that pins it again with its own options (`api/types.go`
    /// `PinOptions.FromQuery`: an option left out takes its default), except `replication-min`
    /// and `user-allocations`.
    pub fn repin_query(
        &self,
        replication_min: i64,
        user_allocations: &[String],
    ) -> Vec<(String, String)> {
        let mut query = vec![
            ("replication-min".to_owned(), replication_min.to_string()),
            (
                "replication-max".to_owned(),
                self.replication_factor_max.to_string(),
            ),
            ("name".to_owned(), self.name.clone()),
            ("user-allocations".to_owned(), user_allocations.join(",")),
        ];
        if !self.mode.is_empty() {
            query.push(("mode".to_owned(), self.mode.clone()));
        }
        if self.shard_size > 0 {
            query.push(("shard-size".to_owned(), self.shard_size.to_string()));
        }
        if let Some(at) = self
            .expire_at
            .as_ref()
            .filter(|at| !at.is_empty() && !at.starts_with("0001-01-01"))
        {
            query.push(("expire-at".to_owned(), at.clone()));
        }
        for (key, value) in self.metadata.iter().filter(|(k, _)| !k.is_empty()) {
            query.push((format!("meta-{key}"), value.clone()));
        }
        if !self.origins.is_empty() {
            query.push(("origins".to_owned(), self.origins.join(",")));
        }
        query
    }
}

/// Reads a list endpoint's body: NDJSON (IPFS Cluster 1.0 and later), a JSON array (older
/// versions, the monitor's endpoints), `null` (a nil Go slice), or nothing (204).
///
/// ```
/// use ipfs_sentinel::clients::ipfs_cluster::{parse_list, ClusterPeer};
/// let ndjson = b"{\"id\":\"12D3KooWA\",\"error\":\"\"}\n{\"id\":\"12D3KooWB\",\"error\":\"dial backoff\"}\n";
/// let peers: Vec<ClusterPeer> = parse_list("peers", ndjson).unwrap();
/// assert_eq!(peers[1].error, "dial backoff");
/// let array: Vec<ClusterPeer> = parse_list("peers", br#"[{"id":"12D3KooWA"}]"#).unwrap();
/// assert_eq!(array.len(), 1);
/// assert!(parse_list::<ClusterPeer>("peers", b"").unwrap().is_empty());
/// assert!(parse_list::<ClusterPeer>("peers", b"null\n").unwrap().is_empty());
/// ```
pub fn parse_list<T: for<'de> Deserialize<'de>>(
    endpoint: &'static str,
    body: &[u8],
) -> Result<Vec<T>, ParseError> {
    let bad = |e: serde_json::Error| ParseError {
        endpoint,
        reason: e.to_string(),
    };
    let trimmed = body.trim_ascii_start();
    if trimmed.trim_ascii_end() == b"null" {
        return Ok(Vec::new());
    }
    if trimmed.first() == Some(&b'[') {
        return serde_json::from_slice(trimmed).map_err(bad);
    }
    serde_json::Deserializer::from_slice(trimmed)
        .into_iter::<T>()
        .collect::<Result<Vec<T>, _>>()
        .map_err(bad)
}

/// Reads `user:password` from the first line of a basic-auth file.
fn read_basic_auth(path: &Path) -> Result<Credentials, ClientError> {
    let text = read_secret(path, BASIC_AUTH_FILE).map_err(ClientError::Credentials)?;
    let line = text.lines().next().unwrap_or("").trim();
    line.split_once(':')
        .map(|(user, password)| Credentials::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        })
        .ok_or_else(|| {
            ClientError::Credentials(format!(
                "{}: expected one line user:password",
                path.display()
            ))
        })
}

/// What a 401 says: where the credentials come from, or that none were sent.
fn refused_hint(file: Option<&Path>) -> String {
    format!(
        "check {BASIC_AUTH_FILE} (one line user:password, as in the REST API's \
         basic_auth_credentials); {}",
        match file {
            Some(file) => format!("the credentials sent were read from {}", file.display()),
            None => "none is configured, so none were sent".to_owned(),
        }
    )
}

/// IPFS Cluster's REST API on one peer.
#[derive(Debug, Clone)]
pub struct IpfsClusterClient {
    api: HttpService,
    base: reqwest::Url,
}

impl IpfsClusterClient {
    /// A client for `config.api_url`, each call under `config.timeout_seconds`; reads the
    /// basic-auth file now.
    pub fn new(config: &IpfsClusterConfig) -> Result<Self, ClientError> {
        Self::with_http(http_client(config.timeout_seconds.duration())?, config)
    }

    /// A client for `config.api_url` through `http`, which carries the timeout (the
    /// dispatcher's client for the built-ins; see [`http_client`]); reads the basic-auth file
    /// now.
    pub fn with_http(
        http: reqwest::Client,
        config: &IpfsClusterConfig,
    ) -> Result<Self, ClientError> {
        let credentials = match &config.basic_auth_file {
            Some(file) => read_basic_auth(file)?,
            None => Credentials::None,
        };
        let hint = refused_hint(config.basic_auth_file.as_deref());
        Ok(Self {
            api: HttpService::new(IPFS_CLUSTER, http).with_credentials(credentials, hint),
            base: config.api_url.0.clone(),
        })
    }

    /// `{base}/{path}?{query}`.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> reqwest::Url {
        endpoint_url(&self.base, path, query)
    }

    /// GETs a list endpoint.
    async fn list<T: for<'de> Deserialize<'de>>(
        &self,
        endpoint: &'static str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, ClientError> {
        let url = self.url(endpoint, query);
        let body = self.api.call(reqwest::Method::GET, &url).await?;
        parse_list(endpoint, &body).map_err(|e| self.api.bad_answer(&url, e))
    }

    /// `GET /peers`: every cluster peer, with an `error` for those that cannot be reached.
    pub async fn peers(&self) -> Result<Vec<ClusterPeer>, ClientError> {
        self.list("peers", &[]).await
    }

    /// `GET /pins?local=true`: this peer's pins and their status on it.
    pub async fn local_pins(&self) -> Result<Vec<PinStatus>, ClientError> {
        self.list("pins", &[("local", "true")]).await
    }

    /// `GET /allocations?filter=pin`, read for where each pin is allocated only.
    pub async fn allocations(&self) -> Result<Vec<Allocation>, ClientError> {
        self.list("allocations", &[("filter", "pin")]).await
    }

    /// `GET /allocations?filter=pin`, read with every option a re-pin must send again.
    pub async fn allocated_pins(&self) -> Result<Vec<ClusterPin>, ClientError> {
        self.list("allocations", &[("filter", "pin")]).await
    }

    /// `GET /monitor/metrics`: the names of the metrics the peer monitor holds.
    pub async fn metric_names(&self) -> Result<Vec<String>, ClientError> {
        self.list("monitor/metrics", &[]).await
    }

    /// `GET /monitor/metrics/{name}`: each current peer's latest metric of that name, valid
    /// and not expired only (the monitor leaves expired ones out).
    pub async fn latest_metrics(&self, name: &str) -> Result<Vec<MonitorMetric>, ClientError> {
        let url = self.url(&format!("monitor/metrics/{name}"), &[]);
        let body = self.api.call(reqwest::Method::GET, &url).await?;
        parse_list("monitor/metrics", &body).map_err(|e| self.api.bad_answer(&url, e))
    }

    /// `GET /health/alerts`: the metrics that expired recently, newest first, each as last
    /// received.
    pub async fn alerts(&self) -> Result<Vec<MonitorAlert>, ClientError> {
        self.list("health/alerts", &[]).await
    }

    /// `POST /pins/{cid}?{options}`: pins `cid` (again) and answers the pin as IPFS Cluster
    /// stored it, with its new allocations.
    pub async fn pin(
        &self,
        cid: &str,
        options: &[(String, String)],
    ) -> Result<ClusterPin, ClientError> {
        let options: Vec<(&str, &str)> = options
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let url = self.url(&format!("pins/{cid}"), &options);
        let body = self.api.call(reqwest::Method::POST, &url).await?;
        serde_json::from_slice(&body).map_err(|e| {
            self.api.bad_answer(
                &url,
                ParseError {
                    endpoint: "pins",
                    reason: e.to_string(),
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    //! The fixtures in `tests/fixtures/ipfs_cluster/` follow the JSON tags of IPFS Cluster's
    //! `api/types.go` as its REST API sends them (NDJSON lists, `null` for empty slices and
    //! maps; `peers_array.json` is the JSON array of versions before 1.0).
    use super::*;
    use crate::config::{HttpUrl, PositiveSeconds};

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/ipfs_cluster/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn the_fixtures_parse() {
        let peers: Vec<ClusterPeer> = parse_list("peers", &fixture("peers.ndjson")).unwrap();
        assert_eq!(
            peers
                .iter()
                .map(|p| (p.peername.as_str(), p.error.as_str()))
                .collect::<Vec<_>>(),
            [("node-a", ""), ("node-b", "dial backoff")]
        );
        let old: Vec<ClusterPeer> = parse_list("peers", &fixture("peers_array.json")).unwrap();
        assert_eq!(old.len(), 2);
        let pins: Vec<PinStatus> = parse_list("pins", &fixture("pins.ndjson")).unwrap();
        assert_eq!(pins[1].peer_map["12D3KooWA"].status, "pin_error");
        let allocations: Vec<Allocation> =
            parse_list("allocations", &fixture("allocations.ndjson")).unwrap();
        assert_eq!(allocations[0].allocations, ["12D3KooWA", "12D3KooWB"]);
        assert!(allocations[1].allocations.is_empty(), "null is everywhere");
        let full: Vec<ClusterPin> =
            parse_list("allocations", &fixture("allocations.ndjson")).unwrap();
        assert_eq!(
            (
                full[0].replication_factor_min,
                full[1].replication_factor_min
            ),
            (2, -1)
        );
        assert!(parse_list::<ClusterPeer>("peers", b"{\"id\":1}").is_err());
    }

    #[test]
    fn a_pin_as_the_rest_api_sends_it_is_pinned_again_with_its_options() {
        let body = br#"{"cid":"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi","type":"pin","allocations":["12D3KooWA","12D3KooWB"],"max_depth":-1,"reference":null,"replication_factor_min":2,"replication_factor_max":3,"name":"site-2026","mode":"recursive","shard_size":0,"user_allocations":null,"expire_at":"2027-01-01T00:00:00Z","metadata":{"owner":"ops"},"pin_update":null,"origins":["/ip4/10.0.0.9/tcp/4001/p2p/12D3KooWX"],"timestamp":"2026-11-28T10:00:00Z"}"#;
        let pins: Vec<ClusterPin> = parse_list("allocations", body).unwrap();
        let p = &pins[0];
        assert_eq!(p.allocations, ["12D3KooWA", "12D3KooWB"]);
        assert_eq!((p.replication_factor_min, p.replication_factor_max), (2, 3));
        let query = p.repin_query(2, &["12D3KooWB".into(), "12D3KooWC".into()]);
        let q = |k: &str| {
            query
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(q("replication-min"), Some("2"));
        assert_eq!(q("replication-max"), Some("3"));
        assert_eq!(q("name"), Some("site-2026"));
        assert_eq!(q("mode"), Some("recursive"));
        assert_eq!(q("user-allocations"), Some("12D3KooWB,12D3KooWC"));
        assert_eq!(q("expire-at"), Some("2027-01-01T00:00:00Z"));
        assert_eq!(q("meta-owner"), Some("ops"));
        assert_eq!(q("origins"), Some("/ip4/10.0.0.9/tcp/4001/p2p/12D3KooWX"));
        assert_eq!(q("shard-size"), None);

        let plain: Vec<ClusterPin> = parse_list(
            "allocations",
            br#"{"cid":"Qm1","allocations":null,"metadata":null,"expire_at":"0001-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert!(plain[0].allocations.is_empty() && plain[0].metadata.is_empty());
        let query = plain[0].repin_query(-1, &[]);
        assert!(
            !query.iter().any(|(k, _)| k == "expire-at"),
            "the zero time means never"
        );
    }

    fn config(base: &reqwest::Url, auth_file: Option<std::path::PathBuf>) -> IpfsClusterConfig {
        IpfsClusterConfig {
            api_url: HttpUrl(base.clone()),
            basic_auth_file: auth_file,
            timeout_seconds: PositiveSeconds(5.0),
        }
    }

    /// A REST API that wants `admin:s3cret`, answers an empty list with 204 and re-pins with a
    /// 500 in IPFS Cluster's error object.
    #[tokio::test]
    async fn credentials_lists_and_errors() {
        use axum::http::{HeaderMap, StatusCode};
        use axum::response::IntoResponse;
        use axum::routing::{get, post};
        fn allowed(headers: &HeaderMap) -> bool {
            // base64("admin:s3cret")
            headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some("Basic YWRtaW46czNjcmV0")
        }
        let app = axum::Router::new()
            .route(
                "/peers",
                get(|headers: HeaderMap| async move {
                    if allowed(&headers) {
                        fixture("peers.ndjson").into_response()
                    } else {
                        StatusCode::UNAUTHORIZED.into_response()
                    }
                }),
            )
            .route("/pins", get(|| async { StatusCode::NO_CONTENT }))
            .route(
                "/pins/{cid}",
                post(|| async {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        r#"{"code":500,"message":"not enough peers to allocate CID"}"#,
                    )
                }),
            );
        let (base, server) = crate::clients::tests::serve(app).await;
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("cluster.auth");
        std::fs::write(&good, "admin:s3cret\n").unwrap();
        let wrong = dir.path().join("wrong.auth");
        std::fs::write(&wrong, "admin:nope\n").unwrap();

        let cluster = IpfsClusterClient::new(&config(&base, Some(good))).unwrap();
        assert_eq!(cluster.peers().await.unwrap().len(), 2);
        assert!(cluster.local_pins().await.unwrap().is_empty(), "204");
        let e = cluster
            .pin("QmA", &[("replication-min".into(), "2".into())])
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "IPFS Cluster REST API at {base}pins/QmA?replication-min=2 answered HTTP 500: \
                 not enough peers to allocate CID"
            )
        );

        let refused = IpfsClusterClient::new(&config(&base, Some(wrong.clone())))
            .unwrap()
            .peers()
            .await
            .unwrap_err();
        let message = refused.to_string();
        assert!(
            matches!(refused, ClientError::Unauthorized { .. }),
            "{message}"
        );
        assert!(message.contains(&format!("{base}peers")), "{message}");
        assert!(message.contains(&wrong.display().to_string()), "{message}");
        assert!(!message.contains("nope"), "never the secret: {message}");

        let missing = IpfsClusterClient::new(&config(&base, Some(dir.path().join("absent"))))
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("cannot read cluster.ipfs_cluster.basic_auth_file ")
                && missing.contains("absent"),
            "{missing}"
        );
        std::fs::write(&wrong, "no colon\n").unwrap();
        let malformed = IpfsClusterClient::new(&config(&base, Some(wrong)))
            .unwrap_err()
            .to_string();
        assert!(
            malformed.ends_with("expected one line user:password"),
            "{malformed}"
        );
        server.abort();
    }
}
