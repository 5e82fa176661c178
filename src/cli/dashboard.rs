//! `dashboard`: the dashboard page written once to a file, from a running sentinel
//! (`GET /dashboard?refresh=0`) or rendered here from a data dir, read-only, as the sentinel
//! that writes there would serve it.
//!
//! Owns the command and the offline render's gathering (history, alert states, audit log);
//! the page itself is `http::dashboard`'s.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;

use ipfs_sentinel::actions::audit::AuditLog;
use ipfs_sentinel::clock::system_ms;
use ipfs_sentinel::config::Config;
use ipfs_sentinel::http::dashboard::{
    alert_rows, charts, last_tick_snapshot, page_model, render, Inputs, RECENT_ACTIONS,
};
use ipfs_sentinel::rules::load::Group;
use ipfs_sentinel::rules::manager::RuleEngine;
use ipfs_sentinel::rules::reload::{self, ConfigSource};
use ipfs_sentinel::status::Identity;

/// Where the page comes from and where it goes.
pub struct Request {
    /// The HTML file to write.
    pub output: PathBuf,
    /// A running sentinel to read.
    pub url: Option<String>,
    /// The data dir to read (default: the serve default).
    pub data_dir: Option<PathBuf>,
    /// The configuration the data dir was written with.
    pub config: Option<PathBuf>,
}

/// Writes the page.
pub fn run(request: Request) -> anyhow::Result<()> {
    let html = match &request.url {
        Some(url) => from_url(url)?,
        None => {
            let source = ConfigSource {
                path: request.config.clone(),
            };
            let (config, groups) = source.load().map_err(|e| anyhow::anyhow!("{e}"))?;
            let data_dir = match &request.data_dir {
                Some(dir) => dir.clone(),
                None => super::default_data_dir()?,
            };
            anyhow::ensure!(
                data_dir.join("history").is_dir(),
                "{} holds no history; pass --data-dir, or --url to read a running sentinel",
                data_dir.display()
            );
            render_from_data_dir(&config, groups, &data_dir, SystemTime::now())?
        }
    };
    std::fs::write(&request.output, html)
        .with_context(|| format!("cannot write {}", request.output.display()))?;
    Ok(())
}

fn from_url(url: &str) -> anyhow::Result<String> {
    let endpoint = format!("{}/dashboard", url.trim_end_matches('/'));
    let (runtime, client) = super::http_client()?;
    runtime.block_on(async {
        let response = client
            .get(&endpoint)
            .query(&[("refresh", "0")])
            .send()
            .await
            .with_context(|| format!("cannot reach {endpoint}; is the sentinel running there?"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .with_context(|| format!("{endpoint}: the page was cut off"))?;
        anyhow::ensure!(
            status.is_success(),
            "{endpoint}: HTTP {status}: {}; is the dashboard enabled there (cluster.dashboard)?",
            body.trim()
        );
        Ok(body)
    })
}

/// The page built straight from a data dir (read-only), as the sentinel that writes there
/// would serve it with the configuration and rules given, without a refresh.
fn render_from_data_dir(
    config: &Config,
    groups: Vec<Group>,
    data_dir: &Path,
    now: SystemTime,
) -> anyhow::Result<String> {
    let now_ms = system_ms(now);
    let unreadable = |path: &Path| {
        format!(
            "cannot read {}; pass the --data-dir the sentinel writes to",
            path.display()
        )
    };
    let (history, _) = ipfs_sentinel::history::open(config, data_dir, true)
        .with_context(|| unreadable(data_dir))?;
    let globals = reload::globals(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut engine = RuleEngine::new(globals, groups);
    reload::restore_state(&mut engine, data_dir, now_ms);
    let actions_dir = data_dir.join("actions");
    let actions = if actions_dir.is_dir() {
        AuditLog::open(&actions_dir)
            .with_context(|| unreadable(&actions_dir))?
            .recent(RECENT_ACTIONS)
    } else {
        Vec::new()
    };
    let identity = Identity {
        node_id: config.cluster.node_id.clone(),
        role: config.cluster.role,
    };
    let model = page_model(Inputs {
        snapshot: &last_tick_snapshot(&history)?,
        identity: &identity,
        charts: charts(&history, &identity, now_ms)?,
        alerts: alert_rows(&engine, now_ms),
        actions,
        guard: None,
        refresh_seconds: None,
        now_ms,
    });
    Ok(render(&model)?)
}
