//! The HTTP side: the listener and the routes it serves, the JSON API and the dashboard.
//!
//! Owns request handling only; what is served comes ready-made from the exposition cache.

pub mod actions;
pub mod api;
pub mod auth;
pub mod chart;
pub mod client_certs;
pub mod connections;
pub mod dashboard;
pub mod server;
pub mod web_config;
pub mod web_reload;
