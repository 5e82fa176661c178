//! The HTTP side: the listener and the routes it serves.
//!
//! Owns request handling only; what is served comes ready-made from the exposition cache.

pub mod actions;
pub mod api;
pub mod auth;
pub mod connections;
pub mod server;
pub mod web_config;
