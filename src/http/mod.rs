//! The HTTP side: the listener and the routes it serves, the JSON API and the dashboard.
//!
//! Owns request handling only; what is served comes ready-made from the stages that own it
//! (the exposition cache, the history, the rules, the actions), through [`state::AppState`].
//! Imports run one way: [`server`] assembles the routes of [`api`], [`actions`] and
//! [`dashboard`], which share [`state`]; [`connections`] guards every connection with TLS
//! ([`web_config`], [`web_reload`], [`client_certs`]) and [`basic_auth`]; state-changing routes
//! also need the [`token`]. Nothing here calls the wiring (`sentinel`).

pub mod actions;
pub mod api;
pub mod basic_auth;
pub mod chart;
pub mod client_certs;
pub mod connections;
pub mod dashboard;
pub mod server;
pub mod state;
pub mod token;
pub mod web_config;
pub mod web_reload;
