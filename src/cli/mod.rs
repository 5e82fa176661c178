//! What the `ipfs-sentinel` commands do, beyond parsing their arguments (that is `main.rs`'s):
//! [`serve`] starts the runtime and the sentinel, [`check_config`] prints a configuration's
//! summary, [`actions`] answers a running sentinel's proposals, [`rules`] prints the loaded
//! rules as one rule file, [`export`] and [`dashboard`] read a running sentinel over HTTP or its
//! data dir directly, [`audit`] verifies and exports the recovery actions' audit log.
//!
//! Owns the command side only: the parts it runs are the library's, built as `serve` builds
//! them. Errors are `anyhow` here, each naming what failed and what to pass instead.

pub mod actions;
pub mod audit;
pub mod check_config;
pub mod dashboard;
pub mod export;
pub mod rules;
pub mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// The data dir when none is given: `$XDG_STATE_HOME/ipfs-sentinel`, else
/// `~/.local/state/ipfs-sentinel`.
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(state).join("ipfs-sentinel"));
    }
    let home = std::env::var_os("HOME")
        .filter(|s| !s.is_empty())
        .context("neither XDG_STATE_HOME nor HOME is set; pass --data-dir")?;
    Ok(PathBuf::from(home).join(".local/state/ipfs-sentinel"))
}

/// A runtime and an HTTP client with the CLI's timeouts, for commands that read a running
/// sentinel.
fn http_client() -> anyhow::Result<(tokio::runtime::Runtime, reqwest::Client)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(std::time::Duration::from_secs(60))
        .build()
        .context("cannot build an HTTP client")?;
    Ok((runtime, client))
}

/// Exit status 0, or 1 with the error's chain on standard error.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipfs-sentinel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A configuration or rule error as a user reads it: a configuration error is already one line
/// naming file, line and key.
fn describe(e: ipfs_sentinel::rules::load::RuleError) -> String {
    if e.place == "configuration" {
        e.reason
    } else {
        e.to_string()
    }
}
