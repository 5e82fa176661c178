//! The `ipfs` collector: this node's Kubo RPC API (`id`, `version`, `repo/stat`, `stats/bw`,
//! `bitswap/stat`, `swarm/peers`, `pin/ls`, `config?arg=Datastore`, the provider's statistics)
//! and its `/debug/metrics/prometheus` block cache, read through [`KuboClient`], plus the space
//! and inodes of the filesystem holding the repo.
//!
//! Owns the slow schedules (pin and object counts and the datastore configuration keep their
//! last value between reads; the node's `version`, which only a restart changes, is read at the
//! first collection, again whenever `id` gives another agent string, and every
//! [`VERSION_REFRESH_EVERY`] collections), which of the provider's statistics endpoints the
//! node serves (tried newest first, remembered, probed again every [`PROVIDE_PROBE_EVERY`]
//! collections when it serves none), the repo's growth over the last hour ([`RepoGrowth`]) and what each answer becomes
//! as metrics; the calls and the response shapes are the client's. All calls of a round run
//! concurrently, each under the client's timeout, so a hung node costs one timeout, not one per
//! call. If `id` fails the node counts as down (`ipfs_up 0`); any other failing call only drops
//! its own metrics and bumps `ipfs_sentinel_ipfs_api_errors_total{endpoint}`. A node that
//! serves no provide statistics (js-ipfs, Kubo without a provider) is not an error: its provide
//! metrics are left out.
//!
//! The growth rate and the predictions come from the repo sizes this collector saw, not from
//! the history: the history is fed by the collection, and a stage never reaches back into the
//! one that feeds it. They restart empty with the sentinel (two collections give a slope again).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use futures::future::BoxFuture;

use super::node::FilesystemStat;
use super::{CollectError, Collector};
use crate::clients::kubo::{
    nanos_to_seconds, DatastoreConfig, KuboClient, LegacyProvideStats, PinType, ProvideStats,
    SweepStats, Version, DEFAULT_BLOCK_KEY_CACHE_ENTRIES, PROVIDE_ENDPOINTS,
};
use crate::clients::ClientError;
use crate::config::IpfsConfig;
use crate::model::Family;

/// Endpoints whose failures are counted, in exposition order.
const ENDPOINTS: &[&str] = &[
    "bitswap/stat",
    "config",
    "debug/metrics/prometheus",
    "id",
    "pin/ls",
    "provide/stat",
    "repo/stat",
    "stats/bw",
    "stats/provide",
    "stats/reprovide",
    "swarm/peers",
    "version",
];

/// A node that served no provide statistics is asked again after this many collections (it may
/// have been upgraded or brought online).
pub const PROVIDE_PROBE_EVERY: u64 = 30;

/// The node's `version` answer is asked again after this many collections even when its `id`
/// still gives the same agent (a daemon's version only changes with a restart, which changes
/// its agent string; this is a safety net for a node that does not say its version there).
pub const VERSION_REFRESH_EVERY: u64 = 60;

/// How far back the repo's growth is measured, as `deriv(...[1h])` would.
pub const GROWTH_WINDOW_MS: i64 = 3_600_000;

/// js-ipfs reports `Number.MAX_SAFE_INTEGER` as `StorageMax` when none is set.
const NO_STORAGE_MAX: f64 = 9_007_199_254_740_991.0;

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

/// The node serves no provide statistics: one line when that is found, none while it lasts.
struct ProvideStatsNotServed<'a> {
    reason: &'a str,
}

impl ProvideStatsNotServed<'_> {
    fn emit(self) {
        tracing::info!(
            endpoints = PROVIDE_ENDPOINTS.join(", "),
            reason = self.reason,
            "the IPFS node serves no provide statistics; provide metrics are left out"
        );
    }
}

/// The filesystem of the repo could not be read: one line per new failure.
struct RepoFilesystemUnreadable<'a> {
    error: &'a str,
}

impl RepoFilesystemUnreadable<'_> {
    fn emit(self) {
        tracing::warn!(
            error = self.error,
            "the IPFS repo's filesystem cannot be read; set ipfs.repo_path to the repo's directory on this host"
        );
    }
}

/// The repo sizes of the last hour and their least-squares trend, as Prometheus's `deriv` and
/// `predict_linear` compute it over `ipfs_sentinel_ipfs_repo_size_bytes[1h]`.
///
/// ```
/// use ipfs_sentinel::collect::ipfs::RepoGrowth;
/// let mut growth = RepoGrowth::new(3_600_000);
/// growth.observe(0, 1000.0);
/// assert!(growth.trend().is_none(), "one point has no slope");
/// growth.observe(60_000, 1600.0);
/// growth.observe(120_000, 2200.0);
/// let trend = growth.trend().unwrap();
/// assert_eq!(trend.bytes_per_second, 10.0);
/// assert_eq!(trend.seconds_until(3200.0), Some(100.0));
/// ```
#[derive(Debug, Clone)]
pub struct RepoGrowth {
    window_ms: i64,
    points: VecDeque<(i64, f64)>,
}

/// A fitted line through the repo sizes of the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// The slope, bytes per second (what `deriv` gives).
    pub bytes_per_second: f64,
    /// The line's value at the latest sample (`predict_linear(..., 0)`).
    pub fitted_bytes: f64,
    /// The latest sample itself.
    pub last_bytes: f64,
}

impl Trend {
    /// Seconds until the line reaches `target` bytes (what `predict_linear` crosses it at); 0
    /// when the repo is already there; `None` when it is not growing.
    pub fn seconds_until(&self, target: f64) -> Option<f64> {
        if self.bytes_per_second <= 0.0 || !self.bytes_per_second.is_finite() {
            return None;
        }
        if self.last_bytes >= target {
            return Some(0.0);
        }
        Some(((target - self.fitted_bytes) / self.bytes_per_second).max(0.0))
    }
}

impl RepoGrowth {
    /// Keeps the samples of the last `window_ms`.
    pub fn new(window_ms: i64) -> Self {
        Self {
            window_ms,
            points: VecDeque::new(),
        }
    }

    /// Adds the size read at `at_ms` and forgets what fell out of the window, which is
    /// `(at_ms - window, at_ms]` as a Prometheus 3 range selector has it.
    pub fn observe(&mut self, at_ms: i64, bytes: f64) {
        if self.points.back().is_some_and(|(t, _)| *t >= at_ms) {
            self.points.clear(); // the clock went back: start over
        }
        self.points.push_back((at_ms, bytes));
        while self
            .points
            .front()
            .is_some_and(|(t, _)| *t <= at_ms - self.window_ms)
        {
            self.points.pop_front();
        }
    }

    /// The least-squares line, x in seconds from the latest sample; `None` with fewer than two
    /// samples.
    pub fn trend(&self) -> Option<Trend> {
        let &(last_ms, last_bytes) = self.points.back()?;
        if self.points.len() < 2 {
            return None;
        }
        let n = self.points.len() as f64;
        let x = |t: i64| (t - last_ms) as f64 / 1e3;
        let mean_x = self.points.iter().map(|(t, _)| x(*t)).sum::<f64>() / n;
        let mean_y = self.points.iter().map(|(_, v)| v).sum::<f64>() / n;
        let (mut cov, mut var) = (0.0, 0.0);
        for (t, v) in &self.points {
            let dx = x(*t) - mean_x;
            cov += dx * (v - mean_y);
            var += dx * dx;
        }
        let slope = if cov == 0.0 { 0.0 } else { cov / var };
        Some(Trend {
            bytes_per_second: slope,
            fitted_bytes: mean_y - slope * mean_x,
            last_bytes,
        })
    }
}

/// Which provide statistics endpoint the node serves, as far as it is known.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ProvideSource {
    /// Not asked yet.
    Unknown,
    /// This one answered last time.
    Serves(&'static str),
    /// None answered, as of this collection.
    ServesNone { since_round: u64 },
}

impl ProvideSource {
    /// The endpoints to try this round, in order, stopping at the first that answers.
    fn plan(self, round: u64) -> Vec<&'static str> {
        match self {
            ProvideSource::Unknown => PROVIDE_ENDPOINTS.to_vec(),
            ProvideSource::Serves(e) => std::iter::once(e)
                .chain(PROVIDE_ENDPOINTS.into_iter().filter(|x| *x != e))
                .collect(),
            ProvideSource::ServesNone { since_round }
                if round - since_round >= PROVIDE_PROBE_EVERY =>
            {
                PROVIDE_ENDPOINTS.to_vec()
            }
            ProvideSource::ServesNone { .. } => Vec::new(),
        }
    }
}

/// What asking for the provide statistics came to.
enum ProvideProbe {
    /// Nothing was asked this round.
    Skipped,
    /// `endpoint` answered.
    Served(&'static str, ProvideStats),
    /// Every endpoint answered an error status (404 for an unknown command, 500 when the node
    /// has no provider or is offline): the last one's message.
    ServesNone(String),
    /// A call failed otherwise (no answer, a wrong shape).
    Failed(&'static str, ClientError),
}

async fn probe_provide(kubo: &KuboClient, plan: Vec<&'static str>) -> ProvideProbe {
    let mut last = None;
    for endpoint in plan {
        match kubo.provide_stats(endpoint).await {
            Ok(stats) => return ProvideProbe::Served(endpoint, stats),
            Err(ClientError::Status {
                status, message, ..
            }) => last = Some(format!("{endpoint}: HTTP {status}: {message}")),
            Err(e) => return ProvideProbe::Failed(endpoint, e),
        }
    }
    last.map_or(ProvideProbe::Skipped, ProvideProbe::ServesNone)
}

/// Reads this node's Kubo RPC API.
pub struct IpfsCollector {
    kubo: KuboClient,
    pin_count_every: u64,
    object_count_every: u64,
    repo_path: Option<PathBuf>,
    round: u64,
    /// The last `version` answer, the agent `id` gave alongside, and the round it was read.
    version: Option<(Version, String, u64)>,
    pins: Option<(f64, f64)>,
    objects: Option<f64>,
    datastore: Option<DatastoreConfig>,
    provide: ProvideSource,
    growth: RepoGrowth,
    statvfs_busy: Arc<AtomicBool>,
    filesystem_error: Option<String>,
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
            repo_path: config.repo_path.clone(),
            round: 0,
            version: None,
            pins: None,
            objects: None,
            datastore: None,
            provide: ProvideSource::Unknown,
            growth: RepoGrowth::new(GROWTH_WINDOW_MS),
            statvfs_busy: Arc::new(AtomicBool::new(false)),
            filesystem_error: None,
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

    /// The repo's directory on this host: `ipfs.repo_path`, else what the node says, else
    /// `$IPFS_PATH`, else `~/.ipfs`.
    fn repo_dir(&self, node_says: Option<&str>) -> Option<PathBuf> {
        self.repo_path
            .clone()
            .or_else(|| node_says.filter(|p| !p.is_empty()).map(PathBuf::from))
            .or_else(|| std::env::var_os("IPFS_PATH").map(PathBuf::from))
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ipfs")))
    }

    /// `statvfs` of the repo's directory on a blocking thread; `None` while an earlier call is
    /// still stuck there (a dead network mount), so threads never pile up.
    async fn filesystem(&self, dir: PathBuf) -> Option<Result<FilesystemStat, CollectError>> {
        if self.statvfs_busy.swap(true, Ordering::AcqRel) {
            return None;
        }
        let busy = Arc::clone(&self.statvfs_busy);
        let read = tokio::task::spawn_blocking(move || {
            let stat = FilesystemStat::of(&dir);
            busy.store(false, Ordering::Release);
            stat
        })
        .await;
        Some(read.unwrap_or_else(|e| {
            Err(CollectError::Source(format!(
                "the filesystem reader stopped: {e}"
            )))
        }))
    }

    async fn collect_round(&mut self) -> Result<Vec<Family>, CollectError> {
        let round = self.round;
        let count_pins = round.is_multiple_of(self.pin_count_every);
        let count_objects = round.is_multiple_of(self.object_count_every);
        self.round += 1;
        let now_ms = crate::clock::system_ms(SystemTime::now());
        let provide_plan = self.provide.plan(round);
        // What the node runs changes only with a restart: `version` is asked at the first
        // collection, every VERSION_REFRESH_EVERY, and when `id` gives another agent (below).
        let ask_version = self
            .version
            .as_ref()
            .is_none_or(|(_, _, read_at)| round - read_at >= VERSION_REFRESH_EVERY);

        let this = &*self;
        let kubo = &this.kubo;
        let (id, version, repo, bw, bitswap, peers, pins, objects, cache, datastore, provide) = futures::join!(
            kubo.id(),
            async {
                if ask_version {
                    Some(kubo.version().await)
                } else {
                    None
                }
            },
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
            async {
                if count_objects {
                    Some(kubo.datastore_config().await)
                } else {
                    None
                }
            },
            probe_provide(kubo, provide_plan),
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
        let version = match version {
            Some(answer) => Some(answer),
            None if self
                .version
                .as_ref()
                .is_some_and(|(_, agent, _)| *agent != id.agent_version) =>
            {
                Some(self.kubo.version().await)
            }
            None => None,
        };
        if let Some(answer) = version {
            self.version = self
                .keep("version", answer)
                .map(|v| (v, id.agent_version.clone(), round));
        }
        let version = self.version.as_ref().map(|(v, _, _)| v);
        let version_label = version
            .map(|v| v.version.clone())
            .unwrap_or_else(|| id.agent_version.clone());
        out.push(
            Family::gauge(
                "ipfs_sentinel_ipfs_info",
                "Always 1; labels give the IPFS node's version and peer id.",
            )
            .with(&[("version", &version_label), ("peer_id", &id.id)], 1.0),
        );
        if let Some(v) = version {
            out.push(
                Family::gauge(
                    "ipfs_sentinel_ipfs_version_info",
                    "Always 1; labels give the IPFS node's version, commit, Go version and system (version), and its agent (id AgentVersion); empty where the node does not say.",
                )
                .with(
                    &[
                        ("version", &v.version),
                        ("commit", v.commit.as_deref().unwrap_or("")),
                        ("golang", v.golang.as_deref().unwrap_or("")),
                        ("system", v.system.as_deref().unwrap_or("")),
                        ("agent", &id.agent_version),
                    ],
                    1.0,
                ),
            );
        }
        if let Some(repo) = self.keep("repo/stat", repo) {
            self.growth.observe(now_ms, repo.repo_size);
            let filesystem = match self.repo_dir(repo.repo_path.as_deref()) {
                Some(dir) => self.filesystem(dir).await,
                None => None,
            };
            let filesystem = match filesystem {
                Some(Ok(fs)) => {
                    self.filesystem_error = None;
                    Some(fs)
                }
                Some(Err(e)) => {
                    let message = e.to_string();
                    if self.filesystem_error.as_ref() != Some(&message) {
                        RepoFilesystemUnreadable { error: &message }.emit();
                        self.filesystem_error = Some(message);
                    }
                    None
                }
                None => None,
            };
            out.extend(repo_families(
                repo.repo_size,
                repo.storage_max,
                self.growth.trend(),
                filesystem,
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
        if let Some(result) = datastore {
            if let Some(d) = self.keep("config", result) {
                self.datastore = Some(d);
            }
        }
        if let Some(d) = &self.datastore {
            out.extend(datastore_families(d, is_kubo(&id.agent_version)));
        }
        match provide {
            ProvideProbe::Skipped => {}
            ProvideProbe::Served(endpoint, stats) => {
                self.provide = ProvideSource::Serves(endpoint);
                out.extend(provide_families(&stats));
            }
            ProvideProbe::ServesNone(reason) => {
                if !matches!(self.provide, ProvideSource::ServesNone { .. }) {
                    ProvideStatsNotServed { reason: &reason }.emit();
                }
                self.provide = ProvideSource::ServesNone { since_round: round };
            }
            ProvideProbe::Failed(endpoint, error) => {
                KuboRequestFailed {
                    endpoint,
                    error: &error,
                }
                .emit(&mut self.api_errors);
            }
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

/// Whether the agent is Kubo (or go-ipfs before it), whose defaults are known.
fn is_kubo(agent: &str) -> bool {
    agent.starts_with("kubo/") || agent.starts_with("go-ipfs/")
}

/// The families that have samples.
fn present(families: impl IntoIterator<Item = Family>) -> Vec<Family> {
    families
        .into_iter()
        .filter(|f| !f.samples.is_empty())
        .collect()
}

/// A family with one unlabelled sample when there is a value, else none.
fn optional_gauge(name: &'static str, help: &'static str, value: Option<f64>) -> Family {
    let mut f = Family::gauge(name, help);
    if let Some(v) = value {
        f.push(&[], v);
    }
    f
}

/// A counter with one unlabelled sample when there is a value, else none.
fn optional_counter(name: &'static str, help: &'static str, value: Option<f64>) -> Family {
    let mut f = Family::counter(name, help);
    if let Some(v) = value {
        f.push(&[], v);
    }
    f
}

/// A family with one sample per present `(label value, value)`.
fn labelled_gauge(
    name: &'static str,
    help: &'static str,
    label: &str,
    values: &[(&str, Option<f64>)],
) -> Family {
    let mut f = Family::gauge(name, help);
    for (v, x) in values {
        if let Some(x) = x {
            f.push(&[(label, v)], *x);
        }
    }
    f
}

/// The repo's size against its limit and its filesystem, its growth and the predictions.
fn repo_families(
    repo_size: f64,
    storage_max: f64,
    trend: Option<Trend>,
    filesystem: Option<FilesystemStat>,
) -> Vec<Family> {
    let configured_max = storage_max;
    let storage_max = (storage_max > 0.0 && storage_max < NO_STORAGE_MAX).then_some(storage_max);
    let mut full_in = Family::gauge(
        "ipfs_sentinel_ipfs_repo_full_in_seconds",
        "Predicted seconds until the repo reaches Datastore.StorageMax (limit=storage_max) or its filesystem has no space left (limit=filesystem), from its growth over the last hour as predict_linear would; 0 when already there, absent when not growing.",
    );
    if let Some(trend) = trend {
        if let Some(s) = storage_max.and_then(|max| trend.seconds_until(max)) {
            full_in.push(&[("limit", "storage_max")], s);
        }
        if let Some(s) =
            filesystem.and_then(|fs| trend.seconds_until(trend.last_bytes + fs.available_bytes))
        {
            full_in.push(&[("limit", "filesystem")], s);
        }
    }
    present([
        Family::single_gauge(
            "ipfs_sentinel_ipfs_repo_size_bytes",
            "Bytes the IPFS repo uses (repo/stat RepoSize).",
            repo_size,
        ),
        Family::single_gauge(
            "ipfs_sentinel_ipfs_repo_storage_max_bytes",
            "The repo's configured limit, Datastore.StorageMax (repo/stat StorageMax).",
            configured_max,
        ),
        optional_gauge(
            "ipfs_sentinel_ipfs_repo_storage_usage_ratio",
            "RepoSize / Datastore.StorageMax; over 1 the repo is past StorageMax, which Kubo does not enforce (it only triggers GC with --enable-gc).",
            storage_max.map(|max| repo_size / max),
        ),
        optional_gauge(
            "ipfs_sentinel_ipfs_repo_growth_bytes_per_second",
            "How fast the repo grows, bytes per second: the least-squares slope of its size over the last hour, as deriv() gives it; absent with fewer than two sizes.",
            trend.map(|t| t.bytes_per_second),
        ),
        full_in,
        optional_gauge(
            "ipfs_sentinel_ipfs_repo_filesystem_usage_ratio",
            "Share of the space of the filesystem holding the repo not available to unprivileged users (0-1).",
            filesystem.and_then(|fs| fs.usage_ratio()),
        ),
        optional_gauge(
            "ipfs_sentinel_ipfs_repo_filesystem_inodes_usage_ratio",
            "Share of the inodes of the filesystem holding the repo in use (0-1); absent where the filesystem has no fixed inode count.",
            filesystem.and_then(|fs| fs.inodes_usage_ratio()),
        ),
        optional_gauge(
            "ipfs_sentinel_ipfs_repo_filesystem_inodes_free",
            "Free inodes of the filesystem holding the repo; absent where the filesystem has no fixed inode count.",
            filesystem.filter(|fs| fs.inodes > 0.0).map(|fs| fs.inodes_free),
        ),
    ])
}

/// GC and cache settings from the node's `Datastore` configuration. `kubo` says whether the
/// node is Kubo, whose block key cache has a known default when the setting is unset.
fn datastore_families(d: &DatastoreConfig, kubo: bool) -> Vec<Family> {
    let mut bytes = Family::gauge(
        "ipfs_sentinel_ipfs_cache_size_bytes",
        "Configured size of the IPFS node's caches in bytes: bloom_filter (Datastore.BloomFilterSize, 0 when off; Kubo rounds it up to a power of two in bits), pebble_block (a pebbleds datastore's cacheSize, pebble's 8 MiB when unset), by mountpoint.",
    );
    if let Some(b) = d.bloom_filter_size {
        bytes.push(&[("cache", "bloom_filter")], b);
    }
    for p in &d.pebble {
        bytes.push(
            &[("cache", "pebble_block"), ("mountpoint", &p.mountpoint)],
            p.cache_bytes(),
        );
    }
    let block_key = match d.block_key_cache_size {
        Some(Some(n)) => Some(n),
        Some(None) if kubo => Some(DEFAULT_BLOCK_KEY_CACHE_ENTRIES),
        None if kubo => Some(DEFAULT_BLOCK_KEY_CACHE_ENTRIES),
        _ => None,
    };
    present([
        optional_gauge(
            "ipfs_sentinel_ipfs_gc_period_seconds",
            "Datastore.GCPeriod: how often the daemon collects garbage when it runs with --enable-gc (the RPC API cannot tell whether it does); 0 when the period is 0 (never).",
            d.gc_period_seconds(),
        ),
        optional_gauge(
            "ipfs_sentinel_ipfs_gc_watermark_ratio",
            "Datastore.StorageGCWatermark / 100: the share of StorageMax past which the daemon collects garbage when it runs with --enable-gc.",
            d.gc_watermark_ratio(),
        ),
        bytes,
        labelled_gauge(
            "ipfs_sentinel_ipfs_cache_size_entries",
            "Configured size of the IPFS node's caches in entries: block_key (the blockstore's 2Q cache of block keys and sizes, Datastore.BlockKeyCacheSize, Kubo's 65536 when unset).",
            "cache",
            &[("block_key", block_key)],
        ),
    ])
}

/// The provider's figures, in whichever shape the node sent them.
fn provide_families(stats: &ProvideStats) -> Vec<Family> {
    match stats {
        ProvideStats::Sweep(s) => sweep_families(s),
        ProvideStats::Legacy(l) => legacy_families(l),
        ProvideStats::Neither => Vec::new(),
    }
}

fn provide_total(value: Option<f64>) -> Family {
    optional_counter(
        "ipfs_sentinel_ipfs_provide_total",
        "CIDs the node has provided since its provider started (sweep provider: operations.past.keys_provided; legacy reprovider: TotalProvides, TotalReprovides from Kubo 0.35).",
        value,
    )
}

fn reprovide_interval(ns: Option<f64>) -> Family {
    optional_gauge(
        "ipfs_sentinel_ipfs_reprovide_interval_seconds",
        "How often each CID is reprovided (Provide.DHT.Interval, Reprovider.Interval before Kubo 0.38).",
        ns.map(nanos_to_seconds),
    )
}

fn sweep_families(s: &SweepStats) -> Vec<Family> {
    if s.closed == Some(true) {
        return Vec::new();
    }
    let q = s.queues.clone().unwrap_or_default();
    let schedule = s.schedule.clone().unwrap_or_default();
    let ops = s.operations.clone().unwrap_or_default();
    let ongoing = ops.ongoing.unwrap_or_default();
    let past = ops.past.unwrap_or_default();
    let mut workers = Family::gauge(
        "ipfs_sentinel_ipfs_provide_workers",
        "The sweep provider's workers by state, as provide/stat names them: max, active, active_periodic and active_burst (reprovides and first provides), dedicated_*, queued_* (jobs waiting for a worker).",
    );
    for (state, n) in s.workers.clone().unwrap_or_default().by_state() {
        workers.push(&[("state", state)], n);
    }
    present([
        labelled_gauge(
            "ipfs_sentinel_ipfs_provide_queue_size",
            "Work waiting in the sweep provider's queues: queue=provide (CIDs waiting for their first provide), provide_regions (the keyspace regions they fall in), reprovide (regions whose reprovide is overdue).",
            "queue",
            &[
                ("provide", q.pending_key_provides),
                ("provide_regions", q.pending_region_provides),
                ("reprovide", q.pending_region_reprovides),
            ],
        ),
        optional_gauge(
            "ipfs_sentinel_ipfs_provide_overdue",
            "Keyspace regions whose reprovide missed its scheduled time (sweep provider, queues.pending_region_reprovides): falling means the node is catching up, rising that it is offline or short of workers.",
            q.pending_region_reprovides,
        ),
        labelled_gauge(
            "ipfs_sentinel_ipfs_provide_ongoing",
            "Provides under way in the sweep provider: operation=provide and reprovide count CIDs, provide_regions and reprovide_regions keyspace regions.",
            "operation",
            &[
                ("provide", ongoing.key_provides),
                ("provide_regions", ongoing.region_provides),
                ("reprovide", ongoing.key_reprovides),
                ("reprovide_regions", ongoing.region_reprovides),
            ],
        ),
        provide_total(past.keys_provided),
        optional_counter(
            "ipfs_sentinel_ipfs_provide_failed_total",
            "CIDs the sweep provider failed to provide since it started (operations.past.keys_failed).",
            past.keys_failed,
        ),
        workers,
        optional_gauge(
            "ipfs_sentinel_ipfs_provide_scheduled_cids",
            "CIDs scheduled for reprovide (sweep provider, schedule.keys).",
            schedule.keys,
        ),
        optional_gauge(
            "ipfs_sentinel_ipfs_provide_scheduled_regions",
            "Keyspace regions scheduled for reprovide (sweep provider, schedule.regions).",
            schedule.regions,
        ),
        reprovide_interval(s.timing.as_ref().and_then(|t| t.reprovides_interval)),
    ])
}

fn legacy_families(l: &LegacyProvideStats) -> Vec<Family> {
    present([
        provide_total(l.total_provides),
        optional_gauge(
            "ipfs_sentinel_ipfs_provide_avg_duration_seconds",
            "Average time to provide one CID, since the node started (legacy reprovider, AvgProvideDuration / AvgReprovideDuration).",
            l.avg_provide_duration.map(nanos_to_seconds),
        ),
        optional_gauge(
            "ipfs_sentinel_ipfs_reprovide_last_duration_seconds",
            "How long the legacy reprovider's last run took (LastReprovideDuration).",
            l.last_reprovide_duration.map(nanos_to_seconds),
        ),
        optional_gauge(
            "ipfs_sentinel_ipfs_reprovide_last_batch_size",
            "CIDs in the legacy reprovider's last run (LastReprovideBatchSize).",
            l.last_reprovide_batch_size,
        ),
        optional_gauge(
            "ipfs_sentinel_ipfs_reprovide_last_run_timestamp_seconds",
            "When the legacy reprovider's last run ended, Unix seconds (LastRun, Kubo 0.34+); absent before its first run.",
            l.last_run_ms().map(|ms| ms as f64 / 1e3),
        ),
        reprovide_interval(l.reprovide_interval),
    ])
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::kubo::{parse_datastore_config, parse_provide_stats};
    use std::sync::atomic::AtomicUsize;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/kubo/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// `name{labels}` -> value, for the families given.
    fn values(families: &[Family]) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for f in families {
            for s in &f.samples {
                let labels: Vec<String> =
                    s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.insert(format!("{}{{{}}}", f.name, labels.join(",")), s.value);
            }
        }
        out
    }

    #[test]
    fn growth_is_the_least_squares_slope_of_the_last_hour() {
        let mut g = RepoGrowth::new(GROWTH_WINDOW_MS);
        // 1000, 1500, 1700, 2400 bytes at 0, 10, 20, 30 s: x from the last sample is
        // -30, -20, -10, 0 (mean -15), y mean 1650; cov = 15*650 + 5*150 + 5*50 + 15*750 =
        // 22000, var = 500: slope 44 B/s, line at the last sample 1650 + 44*15 = 2310.
        for (t, v) in [
            (0, 1000.0),
            (10_000, 1500.0),
            (20_000, 1700.0),
            (30_000, 2400.0),
        ] {
            g.observe(t, v);
        }
        let t = g.trend().unwrap();
        assert_eq!(t.bytes_per_second, 44.0);
        assert_eq!(t.fitted_bytes, 2310.0);
        assert_eq!(t.last_bytes, 2400.0);
        // StorageMax 10,000: (10,000 - 2310) / 44 s.
        assert_eq!(t.seconds_until(10_000.0), Some(7690.0 / 44.0));
        assert_eq!(t.seconds_until(2400.0), Some(0.0), "already there");
        assert_eq!(t.seconds_until(2000.0), Some(0.0), "already past");

        // An hour later the first three have left the window (it is (t-1h, t]).
        g.observe(3_620_000, 2400.0);
        assert_eq!(g.points.len(), 2);
        let flat = g.trend().unwrap();
        assert_eq!(flat.bytes_per_second, 0.0);
        assert_eq!(flat.seconds_until(10_000.0), None, "not growing");

        let mut shrinking = RepoGrowth::new(GROWTH_WINDOW_MS);
        shrinking.observe(0, 900.0);
        shrinking.observe(60_000, 300.0);
        assert_eq!(shrinking.trend().unwrap().bytes_per_second, -10.0);
        assert_eq!(shrinking.trend().unwrap().seconds_until(1e9), None);

        let mut back = RepoGrowth::new(GROWTH_WINDOW_MS);
        back.observe(60_000, 1.0);
        back.observe(0, 2.0);
        assert!(back.trend().is_none(), "a clock that went back starts over");
    }

    #[test]
    fn repo_figures_and_predictions() {
        let trend = Trend {
            bytes_per_second: 100.0,
            fitted_bytes: 5_000.0,
            last_bytes: 5_000.0,
        };
        let fs = FilesystemStat {
            size_bytes: 100_000.0,
            available_bytes: 36_000.0,
            inodes: 1000.0,
            inodes_free: 250.0,
        };
        let v = values(&repo_families(5_000.0, 20_000.0, Some(trend), Some(fs)));
        assert_eq!(v["ipfs_sentinel_ipfs_repo_storage_usage_ratio{}"], 0.25);
        assert_eq!(
            v["ipfs_sentinel_ipfs_repo_growth_bytes_per_second{}"],
            100.0
        );
        assert_eq!(
            v["ipfs_sentinel_ipfs_repo_full_in_seconds{limit=storage_max}"],
            150.0
        );
        assert_eq!(
            v["ipfs_sentinel_ipfs_repo_full_in_seconds{limit=filesystem}"],
            360.0
        );
        assert_eq!(v["ipfs_sentinel_ipfs_repo_filesystem_usage_ratio{}"], 0.64);
        assert_eq!(
            v["ipfs_sentinel_ipfs_repo_filesystem_inodes_usage_ratio{}"],
            0.75
        );
        assert_eq!(v["ipfs_sentinel_ipfs_repo_filesystem_inodes_free{}"], 250.0);

        let over = Trend {
            bytes_per_second: 100.0,
            fitted_bytes: 29_000.0,
            last_bytes: 30_000.0,
        };
        let past = values(&repo_families(30_000.0, 20_000.0, Some(over), None));
        assert_eq!(past["ipfs_sentinel_ipfs_repo_storage_usage_ratio{}"], 1.5);
        assert_eq!(
            past["ipfs_sentinel_ipfs_repo_full_in_seconds{limit=storage_max}"],
            0.0
        );

        // js-ipfs: StorageMax is Number.MAX_SAFE_INTEGER (no limit); one size, no trend;
        // btrfs: no inode count.
        let btrfs = FilesystemStat {
            inodes: 0.0,
            inodes_free: 0.0,
            ..fs
        };
        let js = values(&repo_families(11_118.0, NO_STORAGE_MAX, None, Some(btrfs)));
        assert_eq!(
            js["ipfs_sentinel_ipfs_repo_storage_max_bytes{}"],
            NO_STORAGE_MAX
        );
        for absent in [
            "ipfs_sentinel_ipfs_repo_storage_usage_ratio{}",
            "ipfs_sentinel_ipfs_repo_growth_bytes_per_second{}",
            "ipfs_sentinel_ipfs_repo_filesystem_inodes_usage_ratio{}",
            "ipfs_sentinel_ipfs_repo_filesystem_inodes_free{}",
        ] {
            assert!(!js.contains_key(absent), "{absent}: {js:?}");
        }
        assert!(!js
            .keys()
            .any(|k| k.starts_with("ipfs_sentinel_ipfs_repo_full_in")));
        let zero = values(&repo_families(1.0, 0.0, Some(trend), None));
        assert!(!zero.contains_key("ipfs_sentinel_ipfs_repo_storage_usage_ratio{}"));
    }

    fn provide(name: &str) -> BTreeMap<String, f64> {
        values(&provide_families(
            &parse_provide_stats("provide/stat", &fixture(name)).unwrap(),
        ))
    }

    #[test]
    fn sweep_provider_figures() {
        let v = provide("provide_stat_sweep.json");
        let want = [
            (
                "ipfs_sentinel_ipfs_provide_queue_size{queue=provide}",
                18_432.0,
            ),
            (
                "ipfs_sentinel_ipfs_provide_queue_size{queue=provide_regions}",
                37.0,
            ),
            (
                "ipfs_sentinel_ipfs_provide_queue_size{queue=reprovide}",
                4.0,
            ),
            ("ipfs_sentinel_ipfs_provide_overdue{}", 4.0),
            (
                "ipfs_sentinel_ipfs_provide_ongoing{operation=provide}",
                1536.0,
            ),
            (
                "ipfs_sentinel_ipfs_provide_ongoing{operation=provide_regions}",
                3.0,
            ),
            (
                "ipfs_sentinel_ipfs_provide_ongoing{operation=reprovide}",
                19_412.0,
            ),
            (
                "ipfs_sentinel_ipfs_provide_ongoing{operation=reprovide_regions}",
                7.0,
            ),
            ("ipfs_sentinel_ipfs_provide_total{}", 2_093_418.0),
            ("ipfs_sentinel_ipfs_provide_failed_total{}", 1311.0),
            ("ipfs_sentinel_ipfs_provide_workers{state=max}", 16.0),
            ("ipfs_sentinel_ipfs_provide_workers{state=active}", 11.0),
            (
                "ipfs_sentinel_ipfs_provide_workers{state=active_periodic}",
                7.0,
            ),
            (
                "ipfs_sentinel_ipfs_provide_workers{state=active_burst}",
                4.0,
            ),
            (
                "ipfs_sentinel_ipfs_provide_workers{state=dedicated_periodic}",
                2.0,
            ),
            (
                "ipfs_sentinel_ipfs_provide_workers{state=dedicated_burst}",
                2.0,
            ),
            (
                "ipfs_sentinel_ipfs_provide_workers{state=queued_periodic}",
                3.0,
            ),
            (
                "ipfs_sentinel_ipfs_provide_workers{state=queued_burst}",
                0.0,
            ),
            ("ipfs_sentinel_ipfs_provide_scheduled_cids{}", 2_841_155.0),
            ("ipfs_sentinel_ipfs_provide_scheduled_regions{}", 1024.0),
            ("ipfs_sentinel_ipfs_reprovide_interval_seconds{}", 79_200.0),
        ];
        let want: BTreeMap<String, f64> = want.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        assert_eq!(v, want);
    }

    #[test]
    fn sweep_provider_with_nulls_and_missing_fields_exposes_what_it_has() {
        let v = provide("provide_stat_sweep_partial.json");
        let names: Vec<&str> = v.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "ipfs_sentinel_ipfs_provide_ongoing{operation=provide_regions}",
                "ipfs_sentinel_ipfs_provide_ongoing{operation=provide}",
                "ipfs_sentinel_ipfs_provide_queue_size{queue=provide}",
                "ipfs_sentinel_ipfs_provide_scheduled_cids{}",
            ]
        );
        assert!(
            provide("provide_stat_sweep_closed.json").is_empty(),
            "closed"
        );
        assert!(provide("provide_stat_neither.json").is_empty());
    }

    #[test]
    fn legacy_reprovider_figures_in_each_shape() {
        let want: BTreeMap<String, f64> = [
            ("ipfs_sentinel_ipfs_provide_total{}", 48_211.0),
            (
                "ipfs_sentinel_ipfs_provide_avg_duration_seconds{}",
                0.003187,
            ),
            (
                "ipfs_sentinel_ipfs_reprovide_last_duration_seconds{}",
                153.648,
            ),
            ("ipfs_sentinel_ipfs_reprovide_last_batch_size{}", 48_211.0),
            (
                "ipfs_sentinel_ipfs_reprovide_last_run_timestamp_seconds{}",
                1_796_018_537.331,
            ),
            ("ipfs_sentinel_ipfs_reprovide_interval_seconds{}", 79_200.0),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
        for (endpoint, file) in [
            ("provide/stat", "provide_stat_legacy.json"),
            ("stats/reprovide", "stats_reprovide.json"),
            ("stats/provide", "stats_provide.json"),
        ] {
            let got = values(&provide_families(
                &parse_provide_stats(endpoint, &fixture(file)).unwrap(),
            ));
            assert_eq!(got, want, "{file}");
        }
        let never = provide("provide_stat_legacy_never_run.json");
        assert!(!never.contains_key("ipfs_sentinel_ipfs_reprovide_last_run_timestamp_seconds{}"));
        assert_eq!(never["ipfs_sentinel_ipfs_provide_total{}"], 0.0);
        let old = values(&provide_families(
            &parse_provide_stats("stats/provide", &fixture("stats_provide_kubo_0.29.json"))
                .unwrap(),
        ));
        assert_eq!(old.len(), 4, "{old:?}");
    }

    #[test]
    fn gc_settings_and_cache_sizes_from_the_configuration() {
        let kubo = values(&datastore_families(
            &parse_datastore_config(&fixture("config_datastore.json")).unwrap(),
            true,
        ));
        let want: BTreeMap<String, f64> = [
            ("ipfs_sentinel_ipfs_gc_period_seconds{}", 3600.0),
            ("ipfs_sentinel_ipfs_gc_watermark_ratio{}", 0.9),
            (
                "ipfs_sentinel_ipfs_cache_size_bytes{cache=bloom_filter}",
                0.0,
            ),
            (
                "ipfs_sentinel_ipfs_cache_size_entries{cache=block_key}",
                65_536.0,
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
        assert_eq!(kubo, want);
        let pebble = values(&datastore_families(
            &parse_datastore_config(&fixture("config_datastore_pebble.json")).unwrap(),
            true,
        ));
        assert_eq!(
            pebble["ipfs_sentinel_ipfs_cache_size_bytes{cache=pebble_block,mountpoint=/}"],
            268_435_456.0
        );
        assert_eq!(
            pebble["ipfs_sentinel_ipfs_cache_size_entries{cache=block_key}"],
            262_144.0
        );
        let js = datastore_families(
            &parse_datastore_config(&fixture("config_datastore_js_ipfs.json")).unwrap(),
            false,
        );
        assert!(js.is_empty(), "js-ipfs tells none of them: {js:?}");
    }

    #[test]
    fn provide_endpoints_are_tried_newest_first_and_remembered() {
        let all = PROVIDE_ENDPOINTS.to_vec();
        assert_eq!(ProvideSource::Unknown.plan(0), all);
        assert_eq!(
            ProvideSource::Serves("stats/reprovide").plan(5),
            ["stats/reprovide", "provide/stat", "stats/provide"]
        );
        let none = ProvideSource::ServesNone { since_round: 3 };
        assert!(none.plan(4).is_empty());
        assert!(none.plan(3 + PROVIDE_PROBE_EVERY - 1).is_empty());
        assert_eq!(none.plan(3 + PROVIDE_PROBE_EVERY), all);
    }

    /// A node answering only what the collector needs, counting the provide calls it gets.
    async fn node(
        provide: Option<(&'static str, &'static str)>,
        calls: Arc<AtomicUsize>,
    ) -> (reqwest::Url, tokio::task::JoinHandle<()>) {
        use axum::routing::post;
        let mut app = axum::Router::new()
            .route("/api/v0/id", post(|| async { fixture("id.json") }))
            .route(
                "/api/v0/repo/stat",
                post(|| async { r#"{"RepoSize":1000,"StorageMax":4000,"RepoPath":"/"}"# }),
            );
        for endpoint in PROVIDE_ENDPOINTS {
            let calls = Arc::clone(&calls);
            let answer = provide.filter(|(e, _)| *e == endpoint).map(|(_, f)| f);
            app = app.route(
                &format!("/api/v0/{endpoint}"),
                post(move || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async move {
                        match answer {
                            Some(file) => (axum::http::StatusCode::OK, fixture(file)),
                            None => (
                                axum::http::StatusCode::NOT_FOUND,
                                br#"{"Message":"Not Found","Code":3,"Type":"error"}"#.to_vec(),
                            ),
                        }
                    }
                }),
            );
        }
        crate::clients::tests::serve(app).await
    }

    fn collector(base: &reqwest::Url) -> IpfsCollector {
        let config: IpfsConfig = serde_saphyr::from_str(&format!(
            "api_url: {base}\nrepo_path: {}\n",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        IpfsCollector::new(&config).unwrap()
    }

    fn provide_series(families: &[Family]) -> Vec<String> {
        values(families)
            .into_keys()
            .filter(|k| k.contains("provide_") && !k.contains("api_errors"))
            .collect()
    }

    #[tokio::test]
    async fn a_node_serving_no_provide_endpoint_gives_no_series_no_error_and_is_not_hammered() {
        let calls = Arc::new(AtomicUsize::new(0));
        let (base, server) = node(None, Arc::clone(&calls)).await;
        let mut c = collector(&base);
        for _ in 0..3 {
            let families = c.collect().await.unwrap();
            assert!(provide_series(&families).is_empty());
            let v = values(&families);
            for e in PROVIDE_ENDPOINTS {
                assert_eq!(
                    v[&format!("ipfs_sentinel_ipfs_api_errors_total{{endpoint={e}}}")],
                    0.0
                );
            }
            assert_eq!(v["ipfs_sentinel_ipfs_repo_storage_usage_ratio{}"], 0.25);
            assert!(v.contains_key("ipfs_sentinel_ipfs_repo_filesystem_usage_ratio{}"));
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "each endpoint once, then remembered"
        );
        server.abort();
    }

    #[tokio::test]
    async fn an_older_kubo_is_read_from_the_endpoint_it_serves() {
        let calls = Arc::new(AtomicUsize::new(0));
        let (base, server) = node(
            Some(("stats/reprovide", "stats_reprovide.json")),
            Arc::clone(&calls),
        )
        .await;
        let mut c = collector(&base);
        let first = values(&c.collect().await.unwrap());
        assert_eq!(first["ipfs_sentinel_ipfs_provide_total{}"], 48_211.0);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "provide/stat, then stats/reprovide"
        );
        let second = values(&c.collect().await.unwrap());
        assert_eq!(
            second["ipfs_sentinel_ipfs_reprovide_last_batch_size{}"],
            48_211.0
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "straight to stats/reprovide"
        );
        assert_eq!(
            second["ipfs_sentinel_ipfs_api_errors_total{endpoint=provide/stat}"],
            0.0
        );
        server.abort();
    }

    /// A node whose `id` gives the agent in `agent` and whose `version` answers `0.29.0`, or
    /// `0.30.0` once the agent says so; counts the `version` calls.
    async fn upgradable_node(
        agent: Arc<std::sync::Mutex<String>>,
        calls: Arc<AtomicUsize>,
    ) -> (reqwest::Url, tokio::task::JoinHandle<()>) {
        use axum::routing::post;
        let id_agent = Arc::clone(&agent);
        let app = axum::Router::new()
            .route(
                "/api/v0/id",
                post(move || {
                    let agent = id_agent.lock().unwrap().clone();
                    async move { format!(r#"{{"ID":"12D3KooW","AgentVersion":"{agent}"}}"#) }
                }),
            )
            .route(
                "/api/v0/version",
                post(move || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let version = if agent.lock().unwrap().contains("0.30.0") {
                        "0.30.0"
                    } else {
                        "0.29.0"
                    };
                    async move { format!(r#"{{"Version":"{version}","System":"amd64/linux"}}"#) }
                }),
            );
        crate::clients::tests::serve(app).await
    }

    #[tokio::test]
    async fn the_version_is_asked_again_only_when_the_agent_changes_or_after_a_while() {
        let agent = Arc::new(std::sync::Mutex::new("kubo/0.29.0/".to_owned()));
        let calls = Arc::new(AtomicUsize::new(0));
        let (base, server) = upgradable_node(Arc::clone(&agent), Arc::clone(&calls)).await;
        let mut c = collector(&base);
        let version_of = |families: &[Family]| -> Vec<String> {
            values(families)
                .into_keys()
                .filter(|k| k.starts_with("ipfs_sentinel_ipfs_version_info{"))
                .collect()
        };
        let first = c.collect().await.unwrap();
        let expected = "ipfs_sentinel_ipfs_version_info{version=0.29.0,commit=,golang=,system=amd64/linux,agent=kubo/0.29.0/}";
        assert_eq!(version_of(&first), vec![expected]);
        for _ in 1..5 {
            let again = c.collect().await.unwrap();
            assert_eq!(version_of(&again), vec![expected], "kept between reads");
            assert_eq!(
                values(&again)["ipfs_sentinel_ipfs_info{version=0.29.0,peer_id=12D3KooW}"],
                1.0
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "asked once in five rounds");

        *agent.lock().unwrap() = "kubo/0.30.0/".to_owned();
        let upgraded = c.collect().await.unwrap();
        assert_eq!(
            version_of(&upgraded),
            vec!["ipfs_sentinel_ipfs_version_info{version=0.30.0,commit=,golang=,system=amd64/linux,agent=kubo/0.30.0/}"],
            "a new agent: asked again in the same round"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        for _ in 0..VERSION_REFRESH_EVERY {
            c.collect().await.unwrap();
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "asked again after VERSION_REFRESH_EVERY rounds"
        );
        server.abort();
    }
}
