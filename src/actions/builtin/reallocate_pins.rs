//! `reallocate_pins` (`cluster_manager.reallocate_pins` in its dotted spelling): through IPFS Cluster's
//! REST API, re-pin every pin allocated to an Offline peer so that it lands on healthy peers.
//!
//! # How a re-pin moves allocations (the decision, and where it comes from)
//! IPFS Cluster (v1.1.6, `github.com/ipfs-cluster/ipfs-cluster`) has no "move this pin" call.
//! What it has:
//! - `POST /pins/{cid}?<options>` (`api/rest/restapi.go` `pinHandler`; the Go client's
//!   `Pin` in `api/rest/client/methods.go` sends `PinOptions.ToQuery()`): the options are
//!   `replication-min`, `replication-max`, `name`, `mode`, `shard-size`, `user-allocations`
//!   (comma-separated peer ids), `expire-at`, `meta-<key>`, `origins` (`api/types.go`
//!   `PinOptions.FromQuery`). Every option left out takes its default, so a re-pin must send
//!   the pin's own options again or it silently changes them (a pin's name, its replication
//!   factors, its metadata).
//! - Re-pinning an existing CID calls `allocate()` (`allocate.go`, via `cluster.go`'s `pin`)
//!   with the pin's current allocations: allocations of peers without valid metrics (a peer
//!   that is down stops sending them) are dropped from "current", and new peers are drawn,
//!   `user-allocations` first ("priority" peers, `allocator/balanced` puts them ahead of
//!   the other candidates), until `replication-max`, and only when the valid current ones
//!   are fewer than `replication-min`: "if current allocations are above the minimal
//!   threshold, obtainAllocations returns nil and we just leave things as they are. This is
//!   what makes repinning do nothing if items are still above rmin." Too few candidates is an
//!   error ("not enough peers to allocate CID"), answered as HTTP 500.
//! - IPFS Cluster re-allocates by itself when a peer goes down only with
//!   `disable_repinning: false`; its default is `true` (`cluster_config.go`), which is why
//!   this action exists.
//!
//! So, for each pin (`GET /allocations?filter=pin`, which lists `api.Pin` objects with their
//! options) whose `allocations` contain the Offline peer:
//! - Its other healthy allocations already meet `replication_factor_min`: left alone (a
//!   re-pin would change nothing, see above), unless `include_satisfied_pins` is set.
//! - Otherwise: `POST /pins/{cid}` with the pin's own options and `user-allocations` = its
//!   healthy allocations followed by replacements (healthy peers outside its allocations,
//!   fewest pins first), as many as it has dead allocations. IPFS Cluster keeps the healthy
//!   ones and fills up from our replacements first. The pin's stored `user_allocations`
//!   become that list.
//! - With `include_satisfied_pins`, a satisfied pin is moved in two re-pins: the first with
//!   `replication-min` raised to its healthy allocations plus one, which makes IPFS Cluster
//!   draw one more peer in place of the Offline one; the second with the pin's own
//!   `replication-min` and the new allocations as `user-allocations`, which puts the option
//!   back and changes nothing else (the valid allocations now meet the minimum); the second
//!   is sent even when the first moved nothing. No pin is
//!   ever unpinned: `DELETE /pins/{cid}` would make the healthy peers drop it too.
//! - A pin is moved when the allocations IPFS Cluster answers no longer contain the Offline
//!   peer; if they still do (IPFS Cluster still has valid metrics for it) or the call fails,
//!   it is listed as failed with the reason.
//!
//! The Offline node is the alert's `node_id`, matched to an IPFS Cluster peer by peer id or
//! by `peername`. Healthy peers are those `GET /peers` lists without an `error`. Re-pins run
//! one after another: each is a write to IPFS Cluster's shared state. The calls go through
//! [`IpfsClusterClient`], made for each run, so the basic-auth secret is read from its file
//! for each run (and never logged).

use std::collections::{HashMap, HashSet};

use serde_json::json;

use super::{BuiltinError, BuiltinItemFailed, BuiltinReport};
use crate::clients::ipfs_cluster::{ClusterPeer, ClusterPin, IpfsClusterClient};
use crate::config::IpfsClusterConfig;

/// Finds the IPFS Cluster peer an alert's `node_id` names: by peer id, else by `peername`.
pub fn find_peer<'a>(
    peers: &'a [ClusterPeer],
    node: &str,
) -> Result<&'a ClusterPeer, BuiltinError> {
    if let Some(peer) = peers.iter().find(|p| p.id == node) {
        return Ok(peer);
    }
    let named: Vec<&ClusterPeer> = peers.iter().filter(|p| p.peername == node).collect();
    match named.as_slice() {
        [one] => Ok(one),
        [] => Err(BuiltinError::UnknownNode {
            node: node.to_owned(),
            known: peers
                .iter()
                .map(|p| format!("{} ({})", p.peername, p.id))
                .collect::<Vec<_>>()
                .join(", "),
        }),
        several => Err(BuiltinError::AmbiguousNode {
            node: node.to_owned(),
            ids: several
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// What to do with one pin allocated to the Offline peer.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Pin it again with these `user-allocations` (its healthy allocations, then
    /// replacements); `forced_min` is the raised `replication-min` of the first of two
    /// re-pins, for a pin whose healthy allocations already meet its minimum.
    Repin {
        /// Peers to prefer, in order.
        user_allocations: Vec<String>,
        /// `replication-min` for the first re-pin, when it must be raised to move the pin.
        forced_min: Option<i64>,
    },
    /// Left alone: its other healthy allocations meet its `replication_factor_min`.
    Satisfied,
    /// It cannot be moved; why.
    Unplaceable(String),
}

/// Decides, for every pin allocated to `offline` (a peer id), what to do. Pure: the peers
/// and pins as the REST API listed them in, decisions out, in the pins' order.
pub fn plan<'a>(
    peers: &[ClusterPeer],
    pins: &'a [ClusterPin],
    offline: &str,
    include_satisfied: bool,
) -> Vec<(&'a ClusterPin, Decision)> {
    let healthy: HashSet<&str> = peers
        .iter()
        .filter(|p| p.error.is_empty() && p.id != offline)
        .map(|p| p.id.as_str())
        .collect();
    let mut load: HashMap<&str, usize> = healthy.iter().map(|id| (*id, 0)).collect();
    for pin in pins {
        for peer in &pin.allocations {
            if let Some(n) = load.get_mut(peer.as_str()) {
                *n += 1;
            }
        }
    }
    let mut decisions = Vec::new();
    for pin in pins
        .iter()
        .filter(|p| p.allocations.iter().any(|a| a == offline))
    {
        let kept: Vec<String> = pin
            .allocations
            .iter()
            .filter(|a| healthy.contains(a.as_str()))
            .cloned()
            .collect();
        let satisfied = kept.len() as i64 >= pin.replication_factor_min.max(1);
        if satisfied && !include_satisfied {
            decisions.push((pin, Decision::Satisfied));
            continue;
        }
        let forced_min = satisfied.then_some(kept.len() as i64 + 1);
        if let Some(min) = forced_min
            .filter(|min| pin.replication_factor_max > 0 && *min > pin.replication_factor_max)
        {
            decisions.push((
                pin,
                Decision::Unplaceable(format!(
                    "moving it needs replication-min {min}, above its replication-max {}",
                    pin.replication_factor_max
                )),
            ));
            continue;
        }
        let mut candidates: Vec<&str> = healthy
            .iter()
            .copied()
            .filter(|peer| !pin.allocations.iter().any(|a| a == peer))
            .collect();
        candidates.sort_by_key(|peer| (load.get(peer).copied().unwrap_or(0), *peer));
        if candidates.is_empty() {
            decisions.push((
                pin,
                Decision::Unplaceable(format!(
                    "no healthy IPFS Cluster peer outside its allocations ({}) can take it",
                    pin.allocations.join(", ")
                )),
            ));
            continue;
        }
        let dead = pin.allocations.len() - kept.len();
        let mut user_allocations = kept;
        for peer in candidates.into_iter().take(dead) {
            if let Some(n) = load.get_mut(peer) {
                *n += 1;
            }
            user_allocations.push(peer.to_owned());
        }
        decisions.push((
            pin,
            Decision::Repin {
                user_allocations,
                forced_min,
            },
        ));
    }
    decisions
}

/// Re-pins `pin` as decided and returns its new allocations, or why it did not move.
async fn move_pin(
    cluster: &IpfsClusterClient,
    pin: &ClusterPin,
    offline: &str,
    user_allocations: &[String],
    forced_min: Option<i64>,
) -> Result<Vec<String>, String> {
    let min = forced_min.unwrap_or(pin.replication_factor_min);
    let mut stored = cluster
        .pin(&pin.cid, &pin.repin_query(min, user_allocations))
        .await
        .map_err(|e| e.to_string())?;
    if forced_min.is_some() {
        // Put the pin's own minimum back whether or not it moved.
        let restore = pin.repin_query(pin.replication_factor_min, &stored.allocations);
        stored = cluster.pin(&pin.cid, &restore).await.map_err(|e| {
            format!(
                "re-pinned with replication-min {min}, but putting it back to {} failed \
                 (re-pin it with replication-min {} to restore it): {e}",
                pin.replication_factor_min, pin.replication_factor_min
            )
        })?;
    }
    if stored.allocations.iter().any(|a| a == offline) {
        return Err(format!(
            "IPFS Cluster kept its allocation on {offline} (allocations now {}): it still \
             has valid metrics for that peer, so it does not count it as down",
            stored.allocations.join(", ")
        ));
    }
    Ok(stored.allocations)
}

/// Re-pins what IPFS Cluster allocated to the peer named `offline_node` (peer id or
/// `peername`) onto healthy peers, as the module doc describes.
///
/// Fails (`Err`) when the REST API cannot be read (unreachable, 401, unexpected answers) or
/// names no such peer. Otherwise the report lists the pins moved, failed and left alone;
/// it succeeds when none failed.
pub async fn reallocate_pins(
    client: &reqwest::Client,
    cluster: &IpfsClusterConfig,
    offline_node: &str,
    include_satisfied: bool,
) -> Result<BuiltinReport, BuiltinError> {
    reallocate_at_most(client, cluster, offline_node, include_satisfied, None).await
}

/// [`reallocate_pins`], re-pinning at most `max_pins` pins (the action's `max_pins`, the
/// blast radius of one run); the rest wait for the next run, and the report says how many
/// are left (`left_for_next_run`).
pub async fn reallocate_at_most(
    client: &reqwest::Client,
    cluster: &IpfsClusterConfig,
    offline_node: &str,
    include_satisfied: bool,
    max_pins: Option<u64>,
) -> Result<BuiltinReport, BuiltinError> {
    let cluster = IpfsClusterClient::with_http(client.clone(), cluster)?;
    let peers = cluster.peers().await?;
    let peer = find_peer(&peers, offline_node)?;
    let pins = cluster.allocated_pins().await?;
    let mut moved = Vec::new();
    let mut failed = Vec::new();
    let mut satisfied = Vec::new();
    let mut left = 0u64;
    let mut repinned = 0u64;
    for (pin, decision) in plan(&peers, &pins, &peer.id, include_satisfied) {
        if matches!(decision, Decision::Repin { .. }) {
            if max_pins.is_some_and(|max| repinned >= max) {
                left += 1;
                continue;
            }
            repinned += 1;
        }
        let outcome = match decision {
            Decision::Satisfied => {
                satisfied.push(
                    json!({"cid": pin.cid, "name": pin.name, "allocations": pin.allocations}),
                );
                continue;
            }
            Decision::Unplaceable(reason) => Err(reason),
            Decision::Repin {
                user_allocations,
                forced_min,
            } => move_pin(&cluster, pin, &peer.id, &user_allocations, forced_min).await,
        };
        match outcome {
            Ok(allocations) => moved.push(json!({
                "cid": pin.cid, "name": pin.name,
                "allocations_before": pin.allocations, "allocations_after": allocations,
            })),
            Err(error) => {
                BuiltinItemFailed {
                    builtin: "reallocate_pins",
                    item: &pin.cid,
                    error: &error,
                }
                .emit();
                failed.push(json!({"cid": pin.cid, "name": pin.name, "error": error}));
            }
        }
    }
    let mut report = report(peer, include_satisfied, moved, failed, satisfied);
    if let Some(max) = max_pins {
        if left > 0 {
            report
                .summary
                .push_str(&format!("; {left} left for the next run (max_pins {max})"));
        }
        report.details["max_pins"] = json!(max);
    }
    report.details["left_for_next_run"] = json!(left);
    Ok(report)
}

fn report(
    peer: &ClusterPeer,
    include_satisfied: bool,
    moved: Vec<serde_json::Value>,
    failed: Vec<serde_json::Value>,
    satisfied: Vec<serde_json::Value>,
) -> BuiltinReport {
    let who = format!("IPFS Cluster peer {} ({})", peer.peername, peer.id);
    let tried = moved.len() + failed.len();
    let mut summary = if tried + satisfied.len() == 0 {
        format!("no pins are allocated to {who}; nothing to re-pin")
    } else {
        format!(
            "re-pinned {} of {tried} pins allocated to {who} onto healthy peers",
            moved.len()
        )
    };
    if let Some(first) = failed.first() {
        summary.push_str(&format!(
            "; {} failed (first: {}: {})",
            failed.len(),
            first["cid"].as_str().unwrap_or(""),
            first["error"].as_str().unwrap_or("")
        ));
    }
    if !satisfied.is_empty() {
        summary.push_str(&format!(
            "; {} left on it, their other allocations meeting replication-min \
             (include_satisfied_pins moves them too)",
            satisfied.len()
        ));
    }
    BuiltinReport {
        success: failed.is_empty(),
        summary,
        details: json!({
            "peer_id": peer.id,
            "peername": peer.peername,
            "peer_error": peer.error,
            "include_satisfied_pins": include_satisfied,
            "moved": moved,
            "failed": failed,
            "satisfied_untouched": satisfied,
        }),
    }
}

#[cfg(test)]
mod tests {
    //! Shapes follow IPFS Cluster's `api/types.go` JSON tags (`api.Pin`, `api.ID`) as its
    //! REST API sends them: NDJSON lists, `null` for empty slices and maps.
    use super::*;
    use crate::clients::ipfs_cluster::parse_list;
    use std::collections::BTreeMap;

    const PEERS: &str = r#"{"id":"12D3KooWA","peername":"node-a","error":"context deadline exceeded"}
{"id":"12D3KooWB","peername":"node-b","error":""}
{"id":"12D3KooWC","peername":"node-c","error":""}
{"id":"12D3KooWD","peername":"node-d","error":""}"#;

    fn peers() -> Vec<ClusterPeer> {
        parse_list("peers", PEERS.as_bytes()).unwrap()
    }

    fn pin(cid: &str, allocations: &[&str], min: i64, max: i64) -> ClusterPin {
        serde_json::from_value(json!({
            "cid": cid, "type": "pin", "allocations": allocations, "max_depth": -1,
            "reference": null, "replication_factor_min": min, "replication_factor_max": max,
            "name": "", "mode": "recursive", "shard_size": 0, "user_allocations": null,
            "expire_at": "0001-01-01T00:00:00Z", "metadata": null, "pin_update": null,
            "origins": null, "timestamp": "2026-11-28T10:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn the_node_is_found_by_id_or_peername() {
        let peers = peers();
        assert_eq!(find_peer(&peers, "node-a").unwrap().id, "12D3KooWA");
        assert_eq!(find_peer(&peers, "12D3KooWC").unwrap().peername, "node-c");
        let unknown = find_peer(&peers, "node-z").unwrap_err().to_string();
        assert!(unknown.contains("\"node-z\""), "{unknown}");
        assert!(unknown.contains("node-b (12D3KooWB)"), "{unknown}");
        let mut twins = peers.clone();
        twins[1].peername = "node-a".into();
        twins[0].peername = "node-a".into();
        assert!(matches!(
            find_peer(&twins, "node-a"),
            Err(BuiltinError::AmbiguousNode { .. })
        ));
    }

    #[test]
    fn the_plan_moves_under_replicated_pins_and_leaves_the_rest() {
        let pins = vec![
            pin("under", &["12D3KooWA", "12D3KooWB"], 2, 2),
            pin("satisfied", &["12D3KooWA", "12D3KooWB"], 1, 2),
            pin("only-a", &["12D3KooWA"], 1, 1),
            pin("elsewhere", &["12D3KooWB", "12D3KooWC"], 2, 2),
            pin("everywhere", &[], -1, -1),
            pin(
                "full",
                &["12D3KooWA", "12D3KooWB", "12D3KooWC", "12D3KooWD"],
                4,
                4,
            ),
        ];
        let decided = plan(&peers(), &pins, "12D3KooWA", false);
        let by_cid: BTreeMap<&str, &Decision> =
            decided.iter().map(|(p, d)| (p.cid.as_str(), d)).collect();
        assert_eq!(
            by_cid.keys().copied().collect::<Vec<_>>(),
            ["full", "only-a", "satisfied", "under"],
            "only pins allocated to A"
        );
        // Loads before: B 4, C 2, D 1. "under" takes D (fewest), then "only-a" takes C
        // (D now has 2, C 2: the peer id breaks the tie).
        assert_eq!(
            by_cid["under"],
            &Decision::Repin {
                user_allocations: vec!["12D3KooWB".into(), "12D3KooWD".into()],
                forced_min: None
            }
        );
        assert_eq!(
            by_cid["only-a"],
            &Decision::Repin {
                user_allocations: vec!["12D3KooWC".into()],
                forced_min: None
            }
        );
        assert_eq!(by_cid["satisfied"], &Decision::Satisfied);
        assert!(
            matches!(by_cid["full"], Decision::Unplaceable(why) if why.contains("no healthy IPFS Cluster peer")),
            "{:?}",
            by_cid["full"]
        );

        let forced = plan(&peers(), &pins, "12D3KooWA", true);
        let satisfied = forced.iter().find(|(p, _)| p.cid == "satisfied").unwrap();
        assert!(
            matches!(&satisfied.1, Decision::Repin { forced_min: Some(2), user_allocations } if user_allocations[0] == "12D3KooWB"),
            "{:?}",
            satisfied.1
        );
    }

    #[test]
    fn a_forced_move_never_exceeds_replication_max() {
        let pins = vec![pin(
            "capped",
            &["12D3KooWA", "12D3KooWB", "12D3KooWC"],
            1,
            2,
        )];
        let decided = plan(&peers(), &pins, "12D3KooWA", true);
        assert!(
            matches!(&decided[0].1, Decision::Unplaceable(why) if why.contains("above its replication-max 2")),
            "{:?}",
            decided[0].1
        );
    }

    #[test]
    fn reports_count_moved_failed_and_left() {
        let peer = &peers()[0];
        let r = report(peer, false, Vec::new(), Vec::new(), Vec::new());
        assert!(r.success);
        assert_eq!(
            r.summary,
            "no pins are allocated to IPFS Cluster peer node-a (12D3KooWA); nothing to re-pin"
        );
        let r = report(
            peer,
            false,
            vec![json!({"cid": "Qm1"})],
            vec![json!({"cid": "Qm2", "error": "HTTP 500"})],
            vec![json!({"cid": "Qm3"})],
        );
        assert!(!r.success);
        assert_eq!(
            r.summary,
            "re-pinned 1 of 2 pins allocated to IPFS Cluster peer node-a (12D3KooWA) onto healthy peers; \
             1 failed (first: Qm2: HTTP 500); 1 left on it, their other allocations meeting \
             replication-min (include_satisfied_pins moves them too)"
        );
    }
}
