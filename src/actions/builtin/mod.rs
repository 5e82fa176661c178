//! The three built-in recovery actions, each a function of an HTTP client, the API it talks to
//! and (for `reallocate_pins`) the node the alert names, returning one [`BuiltinReport`]:
//! - [`run_gc()`]: Kubo RPC `repo/gc`, with `repo/stat` before and after ([`run_gc`](mod@run_gc)).
//! - [`connect_bootstrap_peers()`]: Kubo `bootstrap/list`, then `swarm/connect` to each.
//! - [`reallocate_pins()`]: re-pins through IPFS Cluster's REST API what was allocated to an
//!   Offline peer, so it lands on healthy ones (the decision and its sources are in
//!   [`reallocate_pins`](mod@reallocate_pins)).
//!
//! Owns what each built-in does with the answers and what it reports. The calls and the reading
//! of the answers are the clients' ([`KuboClient`](crate::clients::kubo::KuboClient),
//! [`IpfsClusterClient`](crate::clients::ipfs_cluster::IpfsClusterClient)), made over the
//! caller's HTTP client, which carries the timeout, so no call here can hang. It does not decide
//! when to run, retry, record or count anything (the dispatcher and the audit log do).

pub mod connect_bootstrap_peers;
pub mod reallocate_pins;
pub mod run_gc;

pub use connect_bootstrap_peers::connect_bootstrap_peers;
pub use reallocate_pins::{reallocate_at_most, reallocate_pins};
pub use run_gc::{run_gc, GcRuns};

use crate::clients::ClientError;

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
    /// The Kubo RPC API or IPFS Cluster's REST API gave no answer (refused, reset, timed out).
    #[error(transparent)]
    Unreachable(ClientError),
    /// IPFS Cluster refused the basic-auth credentials (or none were configured).
    #[error(transparent)]
    Unauthorized(ClientError),
    /// Any other failed call: an error status, an answer the API does not document, a
    /// credentials file that cannot be read.
    #[error(transparent)]
    Call(ClientError),
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

impl From<ClientError> for BuiltinError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Unreachable { .. } => BuiltinError::Unreachable(e),
            ClientError::Unauthorized { .. } => BuiltinError::Unauthorized(e),
            _ => BuiltinError::Call(e),
        }
    }
}

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
