//! Keeps the web configuration current while the sentinel runs. exporter-toolkit re-reads its
//! file on every TLS handshake and request, so operators rotate certificates and change users
//! without a restart; the sentinel does the same more cheaply: it re-reads the file when the
//! file or one it names (certificate, key, client CA) changes size or modification time, checked
//! every few seconds, and at once on SIGHUP.
//!
//! A file that does not load keeps the previous configuration serving, with one log line naming
//! file, line and key, and `ipfs_sentinel_web_config_last_reload_successful 0` until a good one
//! arrives. Turning TLS on or off needs a restart, as with exporter-toolkit, which decides it
//! at start: such a change is refused the same way. Owns the current [`WebConfig`]; listeners
//! read it per connection (TLS) and per request (basic auth, headers).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use super::web_config::{WebConfig, WebConfigError};
use crate::model::Family;

/// How often the files are checked for changes.
const CHECK_EVERY: Duration = Duration::from_secs(3);

/// Size and modification time of each watched file (`None`: unreadable).
type Fingerprint = Vec<(PathBuf, Option<(u64, SystemTime)>)>;

/// The web configuration in force, shared by every listener; cheap to clone.
#[derive(Clone)]
pub struct LiveWebConfig(Arc<Live>);

struct Live {
    /// The file, when there is one (`--web.config.file`).
    path: Option<PathBuf>,
    current: ArcSwap<WebConfig>,
    reload_ok: AtomicBool,
    /// Seconds since the epoch of the last successful load.
    last_success: AtomicU64,
    /// The files' fingerprint at the last attempt, and its error if it failed.
    seen: Mutex<(Fingerprint, Option<String>)>,
}

impl Default for LiveWebConfig {
    fn default() -> Self {
        Self::fixed(WebConfig::default())
    }
}

impl std::fmt::Debug for LiveWebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveWebConfig")
            .field("path", &self.0.path)
            .field("current", &self.current())
            .finish()
    }
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn fingerprint(path: &Path, config: &WebConfig) -> Fingerprint {
    std::iter::once(path)
        .chain(config.files.iter().map(PathBuf::as_path))
        .map(|p| {
            let stamp = std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)));
            (p.to_path_buf(), stamp)
        })
        .collect()
}

impl LiveWebConfig {
    /// A configuration that never changes (no file).
    pub fn fixed(config: WebConfig) -> Self {
        Self::with(None, config)
    }

    fn with(path: Option<PathBuf>, config: WebConfig) -> Self {
        let seen = path
            .as_deref()
            .map(|p| fingerprint(p, &config))
            .unwrap_or_default();
        LiveWebConfig(Arc::new(Live {
            path,
            current: ArcSwap::from_pointee(config),
            reload_ok: AtomicBool::new(true),
            last_success: AtomicU64::new(now_seconds()),
            seen: Mutex::new((seen, None)),
        }))
    }

    /// Reads and checks the file at `path`, to be kept current.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let config = WebConfig::load(path)?;
        Ok(Self::with(Some(path.to_path_buf()), config))
    }

    /// The configuration in force now, to keep.
    pub fn current(&self) -> Arc<WebConfig> {
        self.0.current.load_full()
    }

    /// The configuration in force now, for a look on the request path: cheaper than
    /// [`LiveWebConfig::current`] (no reference count touched), and not to be held across an
    /// `.await`.
    pub fn peek(&self) -> arc_swap::Guard<Arc<WebConfig>> {
        self.0.current.load()
    }

    /// Re-reads the file now; on success the new configuration serves the next connections
    /// and requests, on failure the old one stays and the reason is returned.
    pub fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.0.path else {
            return Ok(());
        };
        let result = WebConfig::load(path)
            .map_err(|e| e.to_string())
            .and_then(|new| {
                if new.tls.is_some() != self.current().tls.is_some() {
                    return Err(format!(
                        "{}: turning TLS on or off needs a restart; the current web configuration stays",
                        path.display()
                    ));
                }
                Ok(new)
            });
        let mut seen = self.0.seen.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(new) => {
                seen.0 = fingerprint(path, &new);
                seen.1 = None;
                self.0.current.store(Arc::new(new));
                self.0.reload_ok.store(true, Ordering::Relaxed);
                self.0.last_success.store(now_seconds(), Ordering::Relaxed);
                tracing::info!(file = %path.display(), "web configuration reloaded");
                for warning in &self.current().warnings {
                    tracing::warn!("web config: {warning}");
                }
                Ok(())
            }
            Err(reason) => {
                seen.0 = fingerprint(path, &self.current());
                if seen.1.as_deref() != Some(reason.as_str()) {
                    tracing::error!(error = %reason, "web configuration not reloaded; the previous one keeps serving");
                }
                seen.1 = Some(reason.clone());
                self.0.reload_ok.store(false, Ordering::Relaxed);
                Err(reason)
            }
        }
    }

    /// Re-reads the file when it or a file it names changed since the last attempt, or when
    /// the last attempt failed (its error is logged once).
    fn reload_if_changed(&self) {
        let Some(path) = &self.0.path else {
            return;
        };
        let changed = {
            let seen = self.0.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.1.is_some() || seen.0 != fingerprint(path, &self.current())
        };
        if changed {
            let _ = self.reload();
        }
    }

    /// Keeps the configuration current until `shutdown` resolves: on SIGHUP, and whenever a
    /// watched file changes.
    pub async fn watch(self, shutdown: impl std::future::Future<Output = ()>) {
        if self.0.path.is_none() {
            return;
        }
        let mut hangups =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut ticker = tokio::time::interval(CHECK_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            let hangup = async {
                match hangups.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            let this = self.clone();
            tokio::select! {
                _ = &mut shutdown => return,
                _ = hangup => {
                    let _ = tokio::task::spawn_blocking(move || this.reload()).await;
                }
                _ = ticker.tick() => {
                    let _ = tokio::task::spawn_blocking(move || this.reload_if_changed()).await;
                }
            }
        }
    }

    /// `ipfs_sentinel_web_config_last_reload_successful` and its timestamp.
    pub fn families(&self) -> Vec<Family> {
        vec![
            Family::single_gauge(
                "ipfs_sentinel_web_config_last_reload_successful",
                "1 when the last load of --web.config.file succeeded, else 0 (the previous configuration keeps serving).",
                if self.0.reload_ok.load(Ordering::Relaxed) { 1.0 } else { 0.0 },
            ),
            Family::single_gauge(
                "ipfs_sentinel_web_config_last_reload_success_timestamp_seconds",
                "When the web configuration last loaded successfully.",
                self.0.last_success.load(Ordering::Relaxed) as f64,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(password: &str) -> String {
        bcrypt::hash(password, 4).unwrap()
    }

    #[test]
    fn a_changed_file_is_read_and_a_broken_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(
            &path,
            format!("basic_auth_users:\n  alice: {}\n", hash("a")),
        )
        .unwrap();
        let live = LiveWebConfig::load(&path).unwrap();
        live.reload_if_changed();
        assert!(live.current().users.contains_key("alice"));

        std::fs::write(
            &path,
            format!(
                "basic_auth_users:\n  alice: {}\n  bob: {}\n",
                hash("a"),
                hash("b")
            ),
        )
        .unwrap();
        live.reload_if_changed();
        assert!(live.current().users.contains_key("bob"), "the new user");

        std::fs::write(&path, "basic_auth_users:\n  carol: not-a-hash\n").unwrap();
        let reason = live.reload().unwrap_err();
        assert!(reason.contains("basic_auth_users.carol"), "{reason}");
        assert!(
            live.current().users.contains_key("bob"),
            "the old one serves"
        );
        let families = live.families();
        assert_eq!(
            families[0].name,
            "ipfs_sentinel_web_config_last_reload_successful"
        );
        assert!(!live.0.reload_ok.load(Ordering::Relaxed));

        std::fs::write(&path, format!("basic_auth_users:\n  dave: {}\n", hash("d"))).unwrap();
        live.reload_if_changed();
        assert!(live.current().users.contains_key("dave"));
        assert!(live.0.reload_ok.load(Ordering::Relaxed));
    }

    #[test]
    fn tls_cannot_be_turned_on_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(
            &path,
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        )
        .unwrap();
        let live = LiveWebConfig::load(&path).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.path().join("s.crt"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("s.key"), key.serialize_pem()).unwrap();
        std::fs::write(
            &path,
            "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n",
        )
        .unwrap();
        let reason = live.reload().unwrap_err();
        assert!(reason.contains("needs a restart"), "{reason}");
        assert!(live.current().tls.is_none());
    }
}
