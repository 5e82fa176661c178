//! ipfs-sentinel: a Prometheus-native monitor for IPFS (Kubo) nodes and clusters.
//!
//! It collects node, IPFS and cluster metrics in the background and serves them on `/metrics`,
//! keeps them as history, evaluates Prometheus rules over them, runs recovery actions when
//! alerts fire, and shows it all on an HTML dashboard.
//!
//! # Layout
//! One flow of data, one module per stage, each importing only the stages before it:
//! ```text
//! collect ──► exposition (scrapes)
//!    └──────► history::recorder ──► history ──► rules::task ──► actions (alert sightings)
//!                                       ├──────► remote_write (a cursor per receiver)
//!                                       └──────► http (queries, dashboard)
//! ```
//! - [`config`]: the YAML configuration, defaults and validation (errors carry file:line:column
//!   and the key path); [`dotted`]: the short form's dotted metric names and their PromQL.
//! - [`clock`]: time in one vocabulary (ms since the epoch; durations in Prometheus's notation;
//!   RFC 3339 with offsets); [`files`]: files replaced whole and crash-safely. Both import
//!   nothing of the crate, and every stage may use them.
//! - [`model`]: the plain types every stage shares ([`model::Family`], [`model::Snapshot`], and
//!   the [`model::AlertEvent`] / [`model::Sighting`] the rules hand to the actions);
//!   [`number`]: sample values written as Prometheus writes them.
//! - [`clients`]: one typed client per outside service with its response parsers
//!   ([`clients::kubo`], [`clients::ipfs_cluster`], [`clients::peers`] for peer sentinels),
//!   shared by the collectors and the built-in recovery actions.
//! - [`collect`]: the [`collect::Collector`] trait, the loop (first collection at start, each
//!   complete collection numbered and handed on once, [`collect::publisher`]), and one file per
//!   source ([`collect::node`], [`collect::ipfs`], [`collect::peers`] for peer sentinels,
//!   [`collect::ipfs_cluster`] for IPFS Cluster).
//! - [`status`]: the node status report (`/api/v1/status`), derived from a snapshot.
//! - [`exposition`]: snapshot to OpenMetrics text and gzip, cached for scrapes.
//! - [`history`]: the compact store of every collection (shared ticks, pco-sealed blocks,
//!   crash-safe files), read views for rule evaluation, where recorded samples land, opening a
//!   data dir offline ([`history::open`]), aggregation, selectors and export formats;
//!   [`history::recorder`] appends each published collection once.
//! - [`remote_write`]: pushes the history to Prometheus remote write receivers, each from its
//!   own cursor in the data dir, oldest tick first, retrying without skipping ahead.
//! - [`rules`]: rule loading (both forms), the PromQL evaluator, the alert state machine,
//!   templates, the manager with reloads, promtool-format unit tests, a remote datasource, and
//!   [`rules::task`], which runs each group on its own timer over a read view of the history
//!   and sends alert sightings on; it never imports [`actions`].
//! - [`actions`]: recovery actions: the policy, the durable outbox, commands, webhooks,
//!   Alertmanager pushes, built-ins, runs on peers, the audit log; the dispatcher consumes the
//!   rules task's sightings.
//! - [`http`]: the server and its routes ([`http::server`]) sharing [`http::state::AppState`];
//!   connections with TLS and [`http::basic_auth`], state-changing routes behind
//!   [`http::token`]; the JSON API; the dashboard page ([`http::dashboard`], templates in
//!   `templates/`) and its SVG charts ([`http::chart`]).
//! - [`sentinel`]: builds the parts from a [`config::Config`] and spawns their `run` functions;
//!   no logic of its own. The command line (`main.rs` and its `cli/` modules: serve,
//!   check-config, export, the offline dashboard) sits outside the library.
#![warn(missing_docs)]

pub mod actions;
pub mod clients;
pub mod clock;
pub mod collect;
pub mod config;
pub mod dotted;
pub mod exposition;
pub mod files;
pub mod history;
pub mod http;
pub mod model;
pub mod number;
pub mod remote_write;
pub mod rules;
pub mod sentinel;
pub mod status;
