//! The `ipfs` collector: this node's Kubo RPC API (`id`, `version`, `repo/stat`, `stats/bw`,
//! `bitswap/stat`, `swarm/peers`, `pin/ls`) and its `/debug/metrics/prometheus` block cache,
//! read through [`KuboClient`].
//!
//! Owns the slow schedules (pin and object counts keep their last value between reads) and what
//! each answer becomes as metrics; the calls and the response shapes are the client's. All
//! calls of a round run concurrently, each under the client's timeout, so a hung node costs one
//! timeout, not one per call. If `id` fails the node counts as down (`ipfs_up 0`); any other
//! failing call only drops its own metrics and bumps
//! `ipfs_sentinel_ipfs_api_errors_total{endpoint}`.

use futures::future::BoxFuture;
use std::collections::BTreeMap;

use super::{CollectError, Collector};
use crate::clients::kubo::{KuboClient, PinType};
use crate::clients::ClientError;
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

/// A failed call to the Kubo RPC API: one count, and one warning line unless the call failing
/// fails the whole collector (`id`), which the collection loop then logs, once.
struct KuboRequestFailed<'a> {
    endpoint: &'static str,
    error: &'a ClientError,
}

impl KuboRequestFailed<'_> {
    fn emit(self, errors: &mut BTreeMap<&'static str, u64>) {
        if self.endpoint == "id" {
            tracing::debug!(endpoint = self.endpoint, error = %self.error, "Kubo RPC call failed");
        } else {
            tracing::warn!(endpoint = self.endpoint, error = %self.error, "Kubo RPC call failed");
        }
        *errors.entry(self.endpoint).or_default() += 1;
    }
}

/// Reads this node's Kubo RPC API.
pub struct IpfsCollector {
    kubo: KuboClient,
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
        let kubo = KuboClient::new(config).map_err(|e| CollectError::Source(e.to_string()))?;
        Ok(Self {
            kubo,
            pin_count_every: config.pin_count_every_collections.0,
            object_count_every: config.object_count_every_collections.0,
            round: 0,
            pins: None,
            objects: None,
            api_errors: ENDPOINTS.iter().map(|e| (*e, 0)).collect(),
        })
    }

    async fn pin_counts(&self) -> Result<(f64, f64), ClientError> {
        let (recursive, direct) = futures::join!(
            self.kubo.pin_count(PinType::Recursive),
            self.kubo.pin_count(PinType::Direct),
        );
        Ok((recursive? as f64, direct? as f64))
    }

    async fn object_count(&self) -> Result<f64, ClientError> {
        let stat = self.kubo.repo_stat(false).await?;
        Ok(stat.num_objects.unwrap_or(0.0))
    }

    async fn collect_round(&mut self) -> Result<Vec<Family>, CollectError> {
        let count_pins = self.round.is_multiple_of(self.pin_count_every);
        let count_objects = self.round.is_multiple_of(self.object_count_every);
        self.round += 1;

        let this = &*self;
        let kubo = &this.kubo;
        let (id, version, repo, bw, bitswap, peers, pins, objects, cache) = futures::join!(
            kubo.id(),
            kubo.version(),
            kubo.repo_stat(true),
            kubo.bandwidth(),
            kubo.bitswap_stat(),
            kubo.swarm_peer_count(),
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
            kubo.block_cache(),
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
    fn keep<T>(&mut self, endpoint: &'static str, result: Result<T, ClientError>) -> Option<T> {
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
