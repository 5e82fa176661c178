//! ipfs-sentinel: a Prometheus-native monitor for IPFS (Kubo) nodes and clusters.
//!
//! It collects node, IPFS and cluster metrics in the background and serves them on `/metrics`,
//! keeps them as history, evaluates Prometheus rules over them, runs recovery actions when
//! alerts fire, and shows it all on an HTML dashboard.
//!
//! # Layout
//! One flow of data, one module per stage:
//! - [`config`]: the YAML configuration, defaults and validation (errors carry file:line:column
//!   and the key path); [`dotted`]: the seed's dotted metric names and their PromQL.
//! - [`model`]: the plain types every stage shares ([`model::Family`], [`model::Snapshot`]);
//!   [`number`]: sample values written as Prometheus writes them.
//! - [`collect`]: the [`collect::Collector`] trait, the loop, and one file per source
//!   ([`collect::node`], [`collect::ipfs`] with its response parsers in [`collect::kubo`],
//!   [`collect::cluster`] for peer sentinels, [`collect::ipfs_cluster`] for IPFS Cluster).
//! - [`status`]: the node status report (`/api/v1/status`), derived from a snapshot.
//! - [`exposition`]: snapshot to OpenMetrics text and gzip, cached for scrapes.
//! - [`history`]: the compact store of every collection (shared ticks, pco-sealed blocks,
//!   crash-safe files), aggregation, selectors and export formats.
//! - [`rules`]: rule loading (both forms), the PromQL evaluator, the alert state machine,
//!   templates, the manager with reloads, promtool-format unit tests, a remote datasource.
//! - [`actions`]: recovery actions: the policy, the durable outbox, commands, webhooks,
//!   Alertmanager pushes, built-ins, runs on peers, the audit log.
//! - [`http`]: the server (TLS, basic auth, tokens and limits), its routes and the JSON API;
//!   the dashboard page
//!   ([`http::dashboard`], templates in `templates/`) and its SVG charts ([`http::chart`]).
//! - [`sentinel`]: builds the parts from a [`config::Config`] and runs them together.
#![warn(missing_docs)]

pub mod actions;
pub mod collect;
pub mod config;
pub mod dotted;
pub mod exposition;
pub mod history;
pub mod http;
pub mod model;
pub mod number;
pub mod rules;
pub mod sentinel;
pub mod status;
