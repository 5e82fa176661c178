//! The short form's dotted metric names (`node.disk_usage_percent`, `ipfs.repo_size`, ...) and the
//! PromQL each one stands for over ipfs-sentinel's own metrics.
//!
//! Owns only this table: the config checks alert metrics against it, `check-config` shows the
//! expression an alert compiles to, and the rule engine compiles short-form alerts from it.

/// One dotted name and what it means.
#[derive(Debug, Clone, Copy)]
pub struct DottedMetric {
    /// The dotted name, e.g. `node.disk_usage_percent`.
    pub name: &'static str,
    /// The PromQL expression giving its value.
    pub expr: &'static str,
    /// For state metrics: the states it can be compared with (`==`, `!=`).
    pub states: Option<&'static [&'static str]>,
    /// What it measures, in words.
    pub help: &'static str,
}

/// Node states of the cluster view.
pub const NODE_STATES: &[&str] = &["Online", "Degraded", "Offline"];

const TABLE: &[DottedMetric] = &[
    DottedMetric {
        name: "node.cpu_usage_percent",
        expr: "100 * ipfs_sentinel_node_cpu_usage_ratio",
        states: None,
        help: "CPU busy, percent of all cores",
    },
    DottedMetric {
        name: "node.memory_usage_percent",
        expr: "100 * ipfs_sentinel_node_memory_usage_ratio",
        states: None,
        help: "memory in use, percent",
    },
    DottedMetric {
        name: "node.disk_usage_percent",
        expr: "100 * ipfs_sentinel_node_disk_usage_ratio",
        states: None,
        help: "each real filesystem, percent used (one alert per full filesystem, by mountpoint)",
    },
    DottedMetric {
        name: "node.load1",
        expr: "ipfs_sentinel_node_load1",
        states: None,
        help: "1-minute load average",
    },
    DottedMetric {
        name: "node.status",
        expr: "ipfs_sentinel_cluster_node_status",
        states: Some(NODE_STATES),
        help: "the node's status in the cluster view",
    },
    DottedMetric {
        name: "ipfs.up",
        expr: "ipfs_sentinel_ipfs_up",
        states: None,
        help: "1 when the Kubo RPC API answers",
    },
    DottedMetric {
        name: "ipfs.repo_size",
        expr: "ipfs_sentinel_ipfs_repo_size_bytes",
        states: None,
        help: "repo size, bytes",
    },
    DottedMetric {
        name: "ipfs.repo_usage_percent",
        expr:
            "100 * ipfs_sentinel_ipfs_repo_size_bytes / ipfs_sentinel_ipfs_repo_storage_max_bytes",
        states: None,
        help: "repo size, percent of StorageMax",
    },
    DottedMetric {
        name: "ipfs.repo_objects",
        expr: "ipfs_sentinel_ipfs_repo_objects",
        states: None,
        help: "blocks in the repo",
    },
    DottedMetric {
        name: "ipfs.peers_connected",
        expr: "ipfs_sentinel_ipfs_peers",
        states: None,
        help: "connected swarm peers",
    },
    DottedMetric {
        name: "ipfs.pins_total",
        expr: "sum without (type) (ipfs_sentinel_ipfs_pins)",
        states: None,
        help: "recursive plus direct pins",
    },
    DottedMetric {
        name: "ipfs.bandwidth_in_rate",
        expr: "ipfs_sentinel_ipfs_bandwidth_rate_bytes{direction=\"in\"}",
        states: None,
        help: "incoming bandwidth, bytes per second",
    },
    DottedMetric {
        name: "ipfs.bandwidth_out_rate",
        expr: "ipfs_sentinel_ipfs_bandwidth_rate_bytes{direction=\"out\"}",
        states: None,
        help: "outgoing bandwidth, bytes per second",
    },
    DottedMetric {
        name: "cache.hit_ratio_percent",
        expr: "100 * ipfs_sentinel_cache_hit_ratio",
        states: None,
        help: "block cache hits, percent of lookups",
    },
    DottedMetric {
        name: "actions.awaiting_approval",
        expr: "ipfs_sentinel_action_proposal",
        states: None,
        help: "1 for each recovery action run waiting for approval (labels: proposal, action, node_id, alertname, would_run)",
    },
    DottedMetric {
        name: "actions.circuit_open",
        expr: "ipfs_sentinel_actions_circuit_open",
        states: None,
        help: "1 while the recovery actions' circuit breaker is open",
    },
];

/// The dotted metric with this name.
pub fn lookup(name: &str) -> Option<&'static DottedMetric> {
    TABLE.iter().find(|m| m.name == name)
}

/// Every dotted name, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|m| m.name)
}

/// Every dotted metric, in table order.
pub fn all() -> &'static [DottedMetric] {
    TABLE
}

impl DottedMetric {
    /// The PromQL condition `metric OPERATOR threshold` for a numeric threshold, or the state
    /// comparison for a state metric (`node.status == Offline` selects the `Offline` series).
    ///
    /// ```
    /// use ipfs_sentinel::dotted::lookup;
    ///
    /// let memory = lookup("node.memory_usage_percent").unwrap();
    /// assert_eq!(
    ///     memory.condition(">=", "95"),
    ///     "100 * ipfs_sentinel_node_memory_usage_ratio >= 95"
    /// );
    /// let status = lookup("node.status").unwrap();
    /// assert_eq!(
    ///     status.condition("==", "Offline"),
    ///     "ipfs_sentinel_cluster_node_status{status=\"Offline\"} == 1"
    /// );
    /// assert_eq!(
    ///     status.condition("!=", "Online"),
    ///     "ipfs_sentinel_cluster_node_status{status=\"Online\"} == 0"
    /// );
    /// assert!(lookup("node.temperature").is_none());
    /// ```
    pub fn condition(&self, operator: &str, threshold: &str) -> String {
        match self.states {
            Some(_) => {
                let on = if operator == "==" { 1 } else { 0 };
                format!("{}{{status=\"{threshold}\"}} == {on}", self.expr)
            }
            None => format!("{} {operator} {threshold}", self.expr),
        }
    }
}
