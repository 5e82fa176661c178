//! The Kubo RPC API's response shapes and their parsers, pure functions of the bytes received.
//!
//! Real nodes differ: Kubo sends numbers as JSON numbers, js-ipfs sometimes as strings; Kubo
//! sends `"Peers": null` when there are none; fields come and go between versions. Every parser
//! here accepts all of these and is tested on Kubo's documented responses. No I/O here: the
//! `ipfs` collector fetches, these read.

use serde::{Deserialize, Deserializer};

/// Why a response could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unexpected response from {endpoint}: {reason}")]
pub struct ParseError {
    /// The RPC endpoint, e.g. `repo/stat`.
    pub endpoint: &'static str,
    /// What was wrong.
    pub reason: String,
}

fn parse_json<'a, T: Deserialize<'a>>(
    endpoint: &'static str,
    body: &'a [u8],
) -> Result<T, ParseError> {
    serde_json::from_slice(body).map_err(|e| ParseError {
        endpoint,
        reason: e.to_string(),
    })
}

/// A number sent as a JSON number or as a string, integer or not.
fn flexible_number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        N(f64),
        S(String),
    }
    match Num::deserialize(d)? {
        Num::N(n) => Ok(n),
        Num::S(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| serde::de::Error::custom(format!("not a number: {s:?}"))),
    }
}

/// `id`: the node's identity.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Id {
    /// The peer id.
    #[serde(rename = "ID")]
    pub id: String,
    /// e.g. `kubo/0.29.0/`.
    #[serde(rename = "AgentVersion", default)]
    pub agent_version: String,
}

/// Parses `id`.
pub fn parse_id(body: &[u8]) -> Result<Id, ParseError> {
    parse_json("id", body)
}

/// `version`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Version {
    /// e.g. `0.29.0`.
    #[serde(rename = "Version")]
    pub version: String,
}

/// Parses `version`.
pub fn parse_version(body: &[u8]) -> Result<Version, ParseError> {
    parse_json("version", body)
}

/// `repo/stat`: sizes, and with a full stat the number of blocks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RepoStat {
    /// Bytes the repo uses.
    #[serde(rename = "RepoSize", deserialize_with = "flexible_number")]
    pub repo_size: f64,
    /// `Datastore.StorageMax` in bytes.
    #[serde(rename = "StorageMax", deserialize_with = "flexible_number")]
    pub storage_max: f64,
    /// Blocks in the repo; absent (or 0) with `size-only=true`.
    #[serde(rename = "NumObjects", default, deserialize_with = "optional_number")]
    pub num_objects: Option<f64>,
}

fn optional_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    flexible_number(d).map(Some)
}

/// Parses `repo/stat` (both the full and the `size-only` form).
pub fn parse_repo_stat(body: &[u8]) -> Result<RepoStat, ParseError> {
    parse_json("repo/stat", body)
}

/// `stats/bw`: bandwidth totals and rates.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Bandwidth {
    /// Bytes received since start.
    #[serde(rename = "TotalIn", deserialize_with = "flexible_number")]
    pub total_in: f64,
    /// Bytes sent since start.
    #[serde(rename = "TotalOut", deserialize_with = "flexible_number")]
    pub total_out: f64,
    /// Bytes per second received, recent average.
    #[serde(rename = "RateIn", deserialize_with = "flexible_number")]
    pub rate_in: f64,
    /// Bytes per second sent, recent average.
    #[serde(rename = "RateOut", deserialize_with = "flexible_number")]
    pub rate_out: f64,
}

/// Parses `stats/bw`.
pub fn parse_bandwidth(body: &[u8]) -> Result<Bandwidth, ParseError> {
    parse_json("stats/bw", body)
}

/// `bitswap/stat`: block exchange counters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BitswapStat {
    /// Blocks received.
    #[serde(rename = "BlocksReceived", deserialize_with = "flexible_number")]
    pub blocks_received: f64,
    /// Blocks sent.
    #[serde(rename = "BlocksSent", deserialize_with = "flexible_number")]
    pub blocks_sent: f64,
    /// Blocks received more than once.
    #[serde(rename = "DupBlksReceived", deserialize_with = "flexible_number")]
    pub duplicate_blocks_received: f64,
}

/// Parses `bitswap/stat`.
pub fn parse_bitswap_stat(body: &[u8]) -> Result<BitswapStat, ParseError> {
    parse_json("bitswap/stat", body)
}

/// Parses `swarm/peers` into the number of connected peers (`"Peers": null` is none).
pub fn parse_swarm_peer_count(body: &[u8]) -> Result<usize, ParseError> {
    #[derive(Deserialize)]
    struct Peers {
        #[serde(rename = "Peers", default)]
        peers: Option<Vec<serde::de::IgnoredAny>>,
    }
    let p: Peers = parse_json("swarm/peers", body)?;
    Ok(p.peers.map_or(0, |v| v.len()))
}

/// Counts pins in a `pin/ls?stream=true` body: one JSON object per line. A body in the older
/// non-streamed shape (`{"Keys": {...}}`) is counted too.
pub fn count_pins(body: &[u8]) -> Result<usize, ParseError> {
    #[derive(Deserialize)]
    struct Line {
        #[serde(rename = "Cid", default)]
        cid: Option<String>,
        #[serde(rename = "Keys", default)]
        keys: Option<serde_json::Map<String, serde_json::Value>>,
    }
    let mut count = 0;
    for line in body.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed: Line = parse_json("pin/ls", line)?;
        match (parsed.cid, parsed.keys) {
            (Some(_), _) => count += 1,
            (None, Some(keys)) => count += keys.len(),
            (None, None) => {
                return Err(ParseError {
                    endpoint: "pin/ls",
                    reason: "a line with neither Cid nor Keys".into(),
                })
            }
        }
    }
    Ok(count)
}

/// The block cache's hits and lookups, read from Kubo's `/debug/metrics/prometheus`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockCacheCounts {
    /// `ipfs_bs_cache_boxo_blockstore_cache_hits`.
    pub hits: f64,
    /// `ipfs_bs_cache_boxo_blockstore_cache_total`.
    pub total: f64,
}

impl BlockCacheCounts {
    /// Hits per lookup (0 when there were no lookups yet).
    pub fn hit_ratio(self) -> f64 {
        if self.total > 0.0 {
            self.hits / self.total
        } else {
            0.0
        }
    }
}

/// Finds the block cache counters in Prometheus text; `None` when the node does not export them.
pub fn parse_block_cache(text: &str) -> Option<BlockCacheCounts> {
    let value = |name: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, rest) = l.split_once([' ', '{'])?;
                (series == name).then_some(rest)
            })
            .filter_map(|rest| {
                let after_labels = rest.rsplit_once('}').map_or(rest, |(_, v)| v);
                after_labels.split_whitespace().next()?.parse::<f64>().ok()
            })
            .reduce(|a, b| a + b)
    };
    Some(BlockCacheCounts {
        hits: value("ipfs_bs_cache_boxo_blockstore_cache_hits")?,
        total: value("ipfs_bs_cache_boxo_blockstore_cache_total")?,
    })
}

/// Reads Kubo's error body (`{"Message": ..., "Code": ..., "Type": "error"}`) for a log line.
pub fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct KuboError {
        #[serde(rename = "Message")]
        message: String,
    }
    match serde_json::from_slice::<KuboError>(body) {
        Ok(e) => e.message,
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    //! Fixtures are Kubo's documented response shapes (docs.ipfs.tech, Kubo RPC API reference)
    //! filled with realistic values, plus the shapes js-ipfs 0.66 sends.
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/kubo/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn id_and_version() {
        let id = parse_id(&fixture("id.json")).unwrap();
        assert_eq!(
            id.id,
            "12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5"
        );
        assert_eq!(id.agent_version, "kubo/0.29.0/");
        assert_eq!(
            parse_version(&fixture("version.json")).unwrap().version,
            "0.29.0"
        );
    }

    #[test]
    fn repo_stat_size_only_and_full() {
        let s = parse_repo_stat(&fixture("repo_stat_size_only.json")).unwrap();
        assert_eq!(s.repo_size, 5_317_623_808.0);
        assert_eq!(s.storage_max, 10_000_000_000.0);
        let full = parse_repo_stat(&fixture("repo_stat.json")).unwrap();
        assert_eq!(full.num_objects, Some(48_211.0));
    }

    #[test]
    fn numbers_as_strings_as_js_ipfs_sends_them() {
        let s = parse_repo_stat(br#"{"NumObjects":"12","RepoSize":"4096","StorageMax":"10000000000","RepoPath":"/r","Version":"12"}"#).unwrap();
        assert_eq!((s.repo_size, s.num_objects), (4096.0, Some(12.0)));
        let bw =
            parse_bandwidth(br#"{"TotalIn":"10","TotalOut":"20","RateIn":"1.5","RateOut":"0"}"#)
                .unwrap();
        assert_eq!(bw.rate_in, 1.5);
    }

    #[test]
    fn bandwidth_and_bitswap() {
        let bw = parse_bandwidth(&fixture("stats_bw.json")).unwrap();
        assert_eq!(
            (bw.total_in, bw.total_out),
            (86_503_722_419.0, 31_210_476_321.0)
        );
        assert!((bw.rate_in - 52_741.43).abs() < 0.01);
        let b = parse_bitswap_stat(&fixture("bitswap_stat.json")).unwrap();
        assert_eq!(
            (
                b.blocks_received,
                b.blocks_sent,
                b.duplicate_blocks_received
            ),
            (1_203_411.0, 856_002.0, 9_818.0)
        );
    }

    #[test]
    fn swarm_peers_counts_and_accepts_null() {
        assert_eq!(
            parse_swarm_peer_count(&fixture("swarm_peers.json")).unwrap(),
            3
        );
        assert_eq!(parse_swarm_peer_count(br#"{"Peers":null}"#).unwrap(), 0);
        assert_eq!(parse_swarm_peer_count(br#"{"Peers":[]}"#).unwrap(), 0);
        assert_eq!(parse_swarm_peer_count(b"{}").unwrap(), 0);
    }

    #[test]
    fn pins_streamed_and_keyed() {
        assert_eq!(
            count_pins(&fixture("pin_ls_recursive_stream.ndjson")).unwrap(),
            4
        );
        assert_eq!(count_pins(b"").unwrap(), 0);
        assert_eq!(
            count_pins(br#"{"Keys":{"QmA":{"Type":"direct"},"QmB":{"Type":"direct"}}}"#).unwrap(),
            2
        );
        assert!(count_pins(b"{\"Cid\":\"x\"}\nnot json\n").is_err());
    }

    #[test]
    fn block_cache_from_debug_metrics() {
        let text = String::from_utf8(fixture("debug_metrics.prom")).unwrap();
        let c = parse_block_cache(&text).unwrap();
        assert_eq!((c.hits, c.total), (7_520.0, 10_000.0));
        assert!((c.hit_ratio() - 0.752).abs() < 1e-9);
        assert_eq!(parse_block_cache("go_goroutines 12\n"), None);
    }

    #[test]
    fn kubo_error_bodies() {
        assert_eq!(
            error_message(&fixture("error_bw_disabled.json")),
            "bandwidth reporter disabled in config"
        );
        assert_eq!(error_message(b"404 page not found"), "404 page not found");
    }

    #[test]
    fn a_wrong_shape_names_the_endpoint() {
        let e = parse_repo_stat(br#"{"RepoSize": true}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unexpected response from repo/stat:"),
            "{e}"
        );
    }
}
