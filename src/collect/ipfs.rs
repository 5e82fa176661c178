//! The `ipfs` collector: this node's Kubo RPC API (`id`, `version`, `repo/stat`, `stats/bw`,
//! `bitswap/stat`, `swarm/peers`, `pin/ls`) and its `/debug/metrics/prometheus` block cache.
//!
//! Owns the HTTP calls and the slow schedules (pin and object counts keep their last value
//! between reads); the response shapes are read by [`super::kubo`]. Every call is a POST with
//! its own timeout, and all calls of a round run concurrently, so a hung node costs one timeout,
//! not one per call. If `id` fails the node counts as down (`ipfs_up 0`); any other failing call
//! only drops its own metrics and bumps `ipfs_sentinel_ipfs_api_errors_total{endpoint}`.

use bytes::Bytes;
use futures::future::BoxFuture;
use std::collections::BTreeMap;

use super::kubo::{self, BlockCacheCounts};
use super::{CollectError, Collector};
use crate::config::IpfsConfig;
use crate::model::Family;

/// Endpoints whose failures are counted, in exposition order.
const ENDPOINTS: &[&str] = &[
    "bitswap/stat",
    "debug/metrics/prometheus",
    "id",
    "pin/ls",
    "repo/stat",
    "stats/bw",
    "swarm/peers",
    "version",
];

/// Why one RPC call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// No answer: refused, reset, timed out.
    #[error("{url}: {reason}")]
    Transport {
        /// The URL called.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The node answered with an error status.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Kubo's error message.
        message: String,
    },
    /// The answer could not be read.
    #[error(transparent)]
    Parse(#[from] kubo::ParseError),
}

/// A failed call to the Kubo RPC API: one warning line and one count.
struct KuboRequestFailed<'a> {
    endpoint: &'static str,
    error: &'a RpcError,
}

impl KuboRequestFailed<'_> {
    fn emit(self, errors: &mut BTreeMap<&'static str, u64>) {
        tracing::warn!(endpoint = self.endpoint, error = %self.error, "Kubo RPC call failed");
        *errors.entry(self.endpoint).or_default() += 1;
    }
}

/// Reads this node's Kubo RPC API.
pub struct IpfsCollector {
    client: reqwest::Client,
    base: reqwest::Url,
    pin_count_every: u64,
    object_count_every: u64,
    round: u64,
    pins: Option<(f64, f64)>,
    objects: Option<f64>,
    api_errors: BTreeMap<&'static str, u64>,
}

impl IpfsCollector {
    /// A collector for the API at `config.api_url`.
    pub fn new(config: &IpfsConfig) -> Result<Self, CollectError> {
        let client = super::http_client(config.timeout_seconds.duration())?;
        Ok(Self {
            client,
            base: config.api_url.0.clone(),
            pin_count_every: config.pin_count_every_collections.0,
            object_count_every: config.object_count_every_collections.0,
            round: 0,
            pins: None,
            objects: None,
            api_errors: ENDPOINTS.iter().map(|e| (*e, 0)).collect(),
        })
    }

    fn url(&self, path: &str) -> reqwest::Url {
        let mut url = self.base.clone();
        let joined = format!("{}/{}", url.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        url
    }

    async fn send(&self, request: reqwest::RequestBuilder, url: String) -> Result<Bytes, RpcError> {
        let transport = |e: reqwest::Error| RpcError::Transport {
            url: url.clone(),
            reason: describe_reqwest_error(&e),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(RpcError::Status {
                url,
                status: status.as_u16(),
                message: kubo::error_message(&body),
            })
        }
    }

    /// POSTs `/api/v0/{endpoint}?{query}`.
    async fn rpc(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Bytes, RpcError> {
        let mut url = self.url(&format!("api/v0/{endpoint}"));
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.send(self.client.post(url.clone()), url.to_string())
            .await
    }

    async fn pin_counts(&self) -> Result<(f64, f64), RpcError> {
        let (recursive, direct) = futures::join!(
            self.rpc("pin/ls", &[("type", "recursive"), ("stream", "true")]),
            self.rpc("pin/ls", &[("type", "direct"), ("stream", "true")]),
        );
        Ok((
            kubo::count_pins(&recursive?)? as f64,
            kubo::count_pins(&direct?)? as f64,
        ))
    }

    async fn object_count(&self) -> Result<f64, RpcError> {
        let stat = kubo::parse_repo_stat(&self.rpc("repo/stat", &[]).await?)?;
        Ok(stat.num_objects.unwrap_or(0.0))
    }

    /// `None` when the node does not serve the endpoint or not the block cache counters.
    async fn block_cache(&self) -> Result<Option<BlockCacheCounts>, RpcError> {
        let url = self.url("debug/metrics/prometheus");
        match self
            .send(self.client.get(url.clone()), url.to_string())
            .await
        {
            Ok(body) => Ok(kubo::parse_block_cache(&String::from_utf8_lossy(&body))),
            Err(RpcError::Status {
                status: 404 | 405, ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn collect_round(&mut self) -> Result<Vec<Family>, CollectError> {
        let count_pins = self.round.is_multiple_of(self.pin_count_every);
        let count_objects = self.round.is_multiple_of(self.object_count_every);
        self.round += 1;

        let this = &*self;
        let (id, version, repo, bw, bitswap, peers, pins, objects, cache) = futures::join!(
            async { Ok::<_, RpcError>(kubo::parse_id(&this.rpc("id", &[]).await?)?) },
            async { Ok::<_, RpcError>(kubo::parse_version(&this.rpc("version", &[]).await?)?) },
            async {
                let body = this.rpc("repo/stat", &[("size-only", "true")]).await?;
                Ok::<_, RpcError>(kubo::parse_repo_stat(&body)?)
            },
            async { Ok::<_, RpcError>(kubo::parse_bandwidth(&this.rpc("stats/bw", &[]).await?)?) },
            async {
                Ok::<_, RpcError>(kubo::parse_bitswap_stat(
                    &this.rpc("bitswap/stat", &[]).await?,
                )?)
            },
            async {
                Ok::<_, RpcError>(kubo::parse_swarm_peer_count(
                    &this.rpc("swarm/peers", &[]).await?,
                )?)
            },
            async {
                if count_pins {
                    Some(this.pin_counts().await)
                } else {
                    None
                }
            },
            async {
                if count_objects {
                    Some(this.object_count().await)
                } else {
                    None
                }
            },
            this.block_cache(),
        );

        let id = match id {
            Ok(id) => id,
            Err(e) => {
                let message = e.to_string();
                KuboRequestFailed {
                    endpoint: "id",
                    error: &e,
                }
                .emit(&mut self.api_errors);
                return Err(CollectError::Source(format!(
                    "IPFS node is down: {message}"
                )));
            }
        };
        let mut out = vec![ipfs_up(1.0)];
        let version = self.keep("version", version).map(|v| v.version);
        let version = version.unwrap_or_else(|| id.agent_version.clone());
        out.push(
            Family::gauge(
                "ipfs_sentinel_ipfs_info",
                "Always 1; labels give the IPFS node's version and peer id.",
            )
            .with(&[("version", &version), ("peer_id", &id.id)], 1.0),
        );
        if let Some(repo) = self.keep("repo/stat", repo) {
            out.push(Family::single_gauge(
                "ipfs_sentinel_ipfs_repo_size_bytes",
                "Bytes the IPFS repo uses (repo/stat RepoSize).",
                repo.repo_size,
            ));
            out.push(Family::single_gauge(
                "ipfs_sentinel_ipfs_repo_storage_max_bytes",
                "The repo's configured limit, Datastore.StorageMax (repo/stat StorageMax).",
                repo.storage_max,
            ));
        }
        if let Some(bw) = self.keep("stats/bw", bw) {
            out.push(
                Family::counter(
                    "ipfs_sentinel_ipfs_bandwidth_bytes_total",
                    "Bytes the IPFS node received (in) and sent (out) since it started.",
                )
                .with(&[("direction", "in")], bw.total_in)
                .with(&[("direction", "out")], bw.total_out),
            );
            out.push(
                Family::gauge(
                    "ipfs_sentinel_ipfs_bandwidth_rate_bytes",
                    "The IPFS node's recent bandwidth in bytes per second, as it reports it.",
                )
                .with(&[("direction", "in")], bw.rate_in)
                .with(&[("direction", "out")], bw.rate_out),
            );
        }
        if let Some(b) = self.keep("bitswap/stat", bitswap) {
            out.push(
                Family::counter(
                    "ipfs_sentinel_ipfs_bitswap_blocks_received_total",
                    "Blocks received over bitswap.",
                )
                .with(&[], b.blocks_received),
            );
            out.push(
                Family::counter(
                    "ipfs_sentinel_ipfs_bitswap_blocks_sent_total",
                    "Blocks sent over bitswap.",
                )
                .with(&[], b.blocks_sent),
            );
            out.push(
                Family::counter(
                    "ipfs_sentinel_ipfs_bitswap_duplicate_blocks_received_total",
                    "Blocks received over bitswap that the node already had.",
                )
                .with(&[], b.duplicate_blocks_received),
            );
        }
        if let Some(n) = self.keep("swarm/peers", peers) {
            out.push(Family::single_gauge(
                "ipfs_sentinel_ipfs_peers",
                "Connected swarm peers.",
                n as f64,
            ));
        }
        if let Some(result) = pins {
            self.pins = self.keep("pin/ls", result);
        }
        if let Some((recursive, direct)) = self.pins {
            out.push(
                Family::gauge(
                    "ipfs_sentinel_ipfs_pins",
                    "Pins by type (recursive, direct).",
                )
                .with(&[("type", "recursive")], recursive)
                .with(&[("type", "direct")], direct),
            );
        }
        if let Some(result) = objects {
            self.objects = self.keep("repo/stat", result);
        }
        if let Some(n) = self.objects {
            out.push(Family::single_gauge(
                "ipfs_sentinel_ipfs_repo_objects",
                "Blocks in the IPFS repo (full repo/stat NumObjects, read on a slower schedule).",
                n,
            ));
        }
        if let Some(Some(counts)) = self.keep("debug/metrics/prometheus", cache) {
            out.push(
                Family::gauge(
                    "ipfs_sentinel_cache_hit_ratio",
                    "Share of lookups the cache answered (0-1), since the IPFS node started.",
                )
                .with(&[("cache", "blockstore")], counts.hit_ratio()),
            );
        }
        out.push(self.errors_family());
        Ok(out)
    }

    /// The value of a call that succeeded; a failed one is logged, counted and dropped.
    fn keep<T>(&mut self, endpoint: &'static str, result: Result<T, RpcError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(error) => {
                KuboRequestFailed {
                    endpoint,
                    error: &error,
                }
                .emit(&mut self.api_errors);
                None
            }
        }
    }

    fn errors_family(&self) -> Family {
        let mut f = Family::counter(
            "ipfs_sentinel_ipfs_api_errors_total",
            "Failed calls to the IPFS node's RPC API, by endpoint.",
        );
        for (endpoint, n) in &self.api_errors {
            f.push(&[("endpoint", endpoint)], *n as f64);
        }
        f
    }
}

fn ipfs_up(value: f64) -> Family {
    Family::single_gauge(
        "ipfs_sentinel_ipfs_up",
        "1 when the node's Kubo RPC API answered at the last collection, else 0.",
        value,
    )
}

fn describe_reqwest_error(e: &reqwest::Error) -> String {
    super::describe_transport_error(e, "the IPFS daemon")
}

impl Collector for IpfsCollector {
    fn name(&self) -> &'static str {
        "ipfs"
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>> {
        Box::pin(self.collect_round())
    }

    fn on_failure(&mut self) -> Vec<Family> {
        vec![ipfs_up(0.0), self.errors_family()]
    }
}
