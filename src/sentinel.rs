//! Wires the parts together from a [`Config`]: the collectors and their loop, the exposition
//! cache and the HTTP server, all stopped by one shutdown signal.
//!
//! Owns start-up order and nothing else: each part keeps its own logic.

use std::future::Future;
use std::time::SystemTime;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::collect::cluster::ClusterCollector;
use crate::collect::ipfs::IpfsCollector;
use crate::collect::ipfs_cluster::IpfsClusterCollector;
use crate::collect::node::NodeCollector;
use crate::collect::{self, CollectError, Collector};
use crate::config::Config;
use crate::exposition::ExpositionCache;
use crate::http::server::{self, AppState};
use crate::model::Snapshot;
use crate::status::Identity;

/// Why the sentinel could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A collector could not be built.
    #[error("cannot start the collectors: {0}")]
    Collectors(#[from] CollectError),
    /// The server failed.
    #[error("HTTP server failed: {0}")]
    Http(#[from] std::io::Error),
}

/// The collectors this configuration asks for, in the order they are listed. The cluster
/// collector reads this node's own state from `local`.
pub fn collectors(
    config: &Config,
    local: &ExpositionCache,
) -> Result<Vec<Box<dyn Collector>>, CollectError> {
    let mut collectors: Vec<Box<dyn Collector>> = vec![
        Box::new(NodeCollector::new()?),
        Box::new(IpfsCollector::new(&config.ipfs)?),
        Box::new(ClusterCollector::new(&config.cluster, local.clone())?),
    ];
    if let Some(ipfs_cluster) = &config.cluster.ipfs_cluster {
        collectors.push(Box::new(IpfsClusterCollector::new(ipfs_cluster)?));
    }
    Ok(collectors)
}

/// Runs the sentinel on `listener` until `shutdown` resolves.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let cache = ExpositionCache::new(Snapshot::new(
        SystemTime::now(),
        vec![collect::build_info()],
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        // Either a `true` or a dropped sender means stop.
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let monitoring = &config.cluster.monitoring;
    let collector_loop = if monitoring.enabled {
        let publish_to = cache.clone();
        Some(tokio::spawn(collect::run(
            collectors(&config, &cache)?,
            monitoring.collection_interval_seconds.duration(),
            monitoring.collector_timeout_seconds.duration(),
            move |snapshot, complete| publish_to.publish(snapshot, complete),
            stopped(stop_rx.clone()),
        )))
    } else {
        tracing::info!("cluster.monitoring.enabled is false: serving build info only");
        cache.publish(
            Snapshot::new(SystemTime::now(), vec![collect::build_info()]),
            true,
        );
        None
    };

    let state = AppState {
        metrics: cache,
        identity: Identity {
            node_id: config.cluster.node_id.clone(),
            role: config.cluster.role,
        },
        started: SystemTime::now(),
    };
    let served = server::run(listener, state, async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    })
    .await;
    if let Some(handle) = collector_loop {
        let _ = handle.await;
    }
    Ok(served?)
}
