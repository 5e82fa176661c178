//! Keeping the rule engine running across restarts and reloads: its alert states saved in the
//! data dir (`rules-state.json`, written crash-safely by the rules task after each evaluation
//! that has alerts or follows one that had, with no lock held) and restored at start, and reloads (SIGHUP, `POST /-/reload`) that re-read
//! the configuration and rule files.
//!
//! Owns the files and the reload sequence; what a reload keeps is [`super::manager`]'s policy.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::load::RuleError;
use super::manager::{EngineState, Globals, RuleEngine};
use crate::config::{Config, EMBEDDED_DEFAULT};
use crate::files::write_atomically;

/// The engine, shared by the rules task, the collector, the HTTP API and the reloader. Each
/// holds it only for a moment: expressions are answered with it unlocked.
pub type SharedEngine = Arc<Mutex<RuleEngine>>;

/// Locks the engine (a panic elsewhere leaves it usable).
pub fn lock(engine: &SharedEngine) -> MutexGuard<'_, RuleEngine> {
    engine.lock().unwrap_or_else(|p| p.into_inner())
}

/// The engine for `config` (read from `source`), its alert states saved in `data_dir` restored.
pub fn start(
    config: &Config,
    source: &ConfigSource,
    data_dir: &Path,
    now_ms: i64,
) -> Result<SharedEngine, RuleError> {
    let groups = super::load_all(config, &source.name(), &source.dir())?;
    let globals = globals(config).map_err(|reason| RuleError {
        file: source.name(),
        line: 0,
        column: 0,
        place: "cluster.monitoring.datasource".into(),
        reason,
    })?;
    let mut engine = RuleEngine::new(globals, groups);
    restore_state(&mut engine, data_dir, now_ms);
    Ok(Arc::new(Mutex::new(engine)))
}

/// The settings every rule shares, from a configuration.
pub fn globals(config: &Config) -> Result<Globals, String> {
    let m = &config.cluster.monitoring;
    Ok(Globals {
        interval_ms: (m.collection_interval_seconds.0 * 1000.0) as i64,
        external_labels: config.alert_external_labels(),
        external_url: m.external_url.clone(),
        query_offset_ms: (m.rule_query_offset_seconds.0 * 1000.0) as i64,
        semantics: m.promql_semantics,
        datasource: m
            .datasource
            .as_ref()
            .map(super::remote::RemoteDatasource::new)
            .transpose()?,
    })
}

/// Where the configuration comes from, to read it again on reload.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// The file, or None for the embedded default.
    pub path: Option<PathBuf>,
}

impl ConfigSource {
    /// The name errors give the configuration.
    pub fn name(&self) -> String {
        self.path.as_ref().map_or_else(
            || "<embedded default config>".to_owned(),
            |p| p.display().to_string(),
        )
    }

    /// The folder rule file globs are relative to.
    pub fn dir(&self) -> PathBuf {
        self.path
            .as_ref()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// Reads the configuration, every rule it names, and the settings they share.
    pub fn load_with_globals(
        &self,
    ) -> Result<(Config, Vec<super::load::Group>, Globals), RuleError> {
        let (config, groups) = self.load()?;
        let globals = globals(&config).map_err(|reason| RuleError {
            file: self.name(),
            line: 0,
            column: 0,
            place: "cluster.monitoring.datasource".into(),
            reason,
        })?;
        Ok((config, groups, globals))
    }

    /// Reads the configuration and every rule it names.
    pub fn load(&self) -> Result<(Config, Vec<super::load::Group>), RuleError> {
        let config = match &self.path {
            Some(p) => Config::load(p),
            None => Config::parse(EMBEDDED_DEFAULT, &self.name()),
        }
        .map_err(|e| RuleError {
            file: self.name(),
            line: 0,
            column: 0,
            place: "configuration".into(),
            reason: e.to_string(),
        })?;
        let groups = super::load_all(&config, &self.name(), &self.dir())?;
        Ok((config, groups))
    }

    /// Re-reads everything and swaps the rules in; a failure keeps the old rules. Returns the
    /// new configuration, for the other parts to take theirs from, or the error to report.
    pub fn reload(&self, engine: &SharedEngine) -> Result<Config, String> {
        match self.load_with_globals() {
            Ok((config, groups, globals)) => {
                lock(engine).reload(globals, Ok(groups));
                tracing::info!(config = %self.name(), "rules reloaded");
                Ok(config)
            }
            Err(e) => {
                let message = e.to_string();
                lock(engine).reload(Globals::default(), Err(e));
                Err(message)
            }
        }
    }
}

/// Reloads the rules on every SIGHUP until `shutdown` resolves, then hands the new
/// configuration to `reloaded` (for the parts that take theirs from it: the recovery actions).
/// A failed reload keeps the old rules and calls nothing.
pub async fn on_sighup<F, Done>(
    source: ConfigSource,
    engine: SharedEngine,
    mut reloaded: F,
    shutdown: impl Future<Output = ()>,
) where
    F: FnMut(Config) -> Done,
    Done: Future<Output = ()>,
{
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        return;
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            received = hangups.recv() => {
                if received.is_none() {
                    return;
                }
                let (s, e) = (source.clone(), Arc::clone(&engine));
                if let Ok(Ok(config)) = tokio::task::spawn_blocking(move || s.reload(&e)).await {
                    reloaded(config).await;
                }
            }
        }
    }
}

/// The state file in a data dir.
pub fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("rules-state.json")
}

/// Saves alert states taken with [`RuleEngine::state`].
pub fn save_state(state: &EngineState, data_dir: &Path) -> std::io::Result<()> {
    let json = serde_json::to_vec(state).map_err(std::io::Error::other)?;
    write_atomically(&state_path(data_dir), &json)
}

/// Restores saved alert states; an unreadable file is moved aside with a warning.
pub fn restore_state(engine: &mut RuleEngine, data_dir: &Path, now_ms: i64) {
    let path = state_path(data_dir);
    let Ok(bytes) = std::fs::read(&path) else {
        return;
    };
    match serde_json::from_slice::<EngineState>(&bytes) {
        Ok(state) => engine.restore(state, now_ms),
        Err(e) => {
            let aside = path.with_extension("json.corrupt");
            let moved = std::fs::rename(&path, &aside).is_ok();
            tracing::warn!(file = %path.display(), moved_to = %aside.display(), moved, error = %e, "alert state unreadable; alerts start afresh");
        }
    }
}
