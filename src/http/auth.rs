//! Who may in: the web token that guards state-changing endpoints, and the basic-auth users of
//! the web configuration (`basic_auth_users`, bcrypt hashes, successful checks cached).
//!
//! # State-changing routes
//! Every route that changes state (today `POST /-/reload`; next the Alertmanager webhook
//! receiver and `POST /api/v1/actions/{name}/run`) is wrapped with [`state_changing`]:
//!
//! ```ignore
//! Router::new()
//!     .route("/metrics", get(metrics))
//!     .merge(auth::state_changing(
//!         Router::new()
//!             .route("/-/reload", post(api::reload))
//!             .route("/api/v1/actions/{name}/run", post(api::run_action)),
//!         &state,
//!     ))
//!     .with_state(state)
//! ```
//!
//! The rule, the same for each such route: with a token configured ([`AppState::token`], from
//! `--web.token-file` or `IPFS_SENTINEL_WEB_TOKEN_FILE`), the route is on and every request
//! must carry `Authorization: Bearer TOKEN`; without a token, the route is on only with its
//! `--web.enable-*` switch (the handler answers 403 otherwise; [`routes_enabled`] tells a
//! handler's state which applies). A missing or wrong token is a 401 with `WWW-Authenticate`,
//! one log line naming the peer address ([`RequestRefused`]), and nothing changed: the handler
//! never runs.
//!
//! With `basic_auth_users` configured, every route needs a user's password; a request carrying
//! the right bearer token passes that check too, since one `Authorization` header cannot hold
//! both.
//!
//! Owns the checks only. It never logs or exposes a token or a password, and never reads one
//! from the command line.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use subtle::ConstantTimeEq;

use super::server::AppState;
use super::web_reload::LiveWebConfig;

/// The shortest token accepted, in bytes: shorter ones can be guessed.
pub const MIN_TOKEN_BYTES: usize = 16;

/// How many successful basic-auth checks are remembered before the cache starts afresh.
const VERIFIED_CACHE_ENTRIES: usize = 1024;

/// A bcrypt hash no password matches, checked for unknown users so that a wrong user name
/// costs as long as a wrong password (exporter-toolkit does the same).
const UNKNOWN_USER_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// Why the token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token file could not be read.
    #[error("cannot read the web token file {path}: {source}; pass --web.token-file FILE with a readable file")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The token file holds too short a token.
    #[error("the web token file {path} holds {len} bytes; write a token of at least {MIN_TOKEN_BYTES} (e.g. `openssl rand -hex 32 > {path}`)")]
    TooShort {
        /// The file.
        path: String,
        /// How long the token is.
        len: usize,
    },
}

/// The web token: a secret read from a file, compared in constant time. Its `Debug` never
/// shows it.
#[derive(Clone)]
pub struct WebToken(Arc<[u8]>);

impl fmt::Debug for WebToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebToken(<redacted>)")
    }
}

impl WebToken {
    /// Reads the token from `path`: its first line, surrounding whitespace removed.
    pub fn read(path: &Path) -> Result<WebToken, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let token = text.lines().next().unwrap_or("").trim();
        if token.len() < MIN_TOKEN_BYTES {
            return Err(AuthError::TooShort {
                path: path.display().to_string(),
                len: token.len(),
            });
        }
        Ok(WebToken(token.as_bytes().into()))
    }

    /// Whether `presented` is the token, in time that does not depend on where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_ref().ct_eq(presented).into()
    }
}

/// A request refused for want of credentials: one warning line with the peer's address.
pub struct RequestRefused<'a> {
    /// Who asked (the TCP peer).
    pub peer: Option<SocketAddr>,
    /// The method and path asked for.
    pub method: &'a str,
    /// The path asked for.
    pub path: &'a str,
    /// What was missing or wrong (never the credential itself).
    pub reason: &'static str,
}

impl RequestRefused<'_> {
    /// Writes the line.
    pub fn emit(&self) {
        tracing::warn!(
            peer = %self.peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
            method = self.method,
            path = self.path,
            reason = self.reason,
            "request refused: 401 Unauthorized"
        );
    }
}

/// The bearer token a request carries, if any.
fn bearer(request: &Request) -> Option<&[u8]> {
    let value = request.headers().get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
}

/// Logs the refusal and answers 401 with `challenge`.
fn refuse(request: &Request, reason: &'static str, challenge: &'static str) -> Response {
    RequestRefused {
        peer: request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0),
        method: request.method().as_str(),
        path: request.uri().path(),
        reason,
    }
    .emit();
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        )],
        "Unauthorized\n",
    )
        .into_response()
}

/// Whether state-changing routes are on: a token is configured, or their `--web.enable-*`
/// switch is given.
pub fn routes_enabled(token: Option<&WebToken>, switch: bool) -> bool {
    token.is_some() || switch
}

/// The middleware of [`state_changing`]: with a token configured, only requests carrying it
/// reach the handler.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match &state.token {
        None => next.run(request).await,
        Some(token) => match bearer(&request) {
            Some(presented) if token.matches(presented) => next.run(request).await,
            Some(_) => refuse(
                &request,
                "wrong bearer token",
                "Bearer realm=\"ipfs-sentinel\"",
            ),
            None => refuse(
                &request,
                "no bearer token",
                "Bearer realm=\"ipfs-sentinel\"",
            ),
        },
    }
}

/// Wraps the routes of `routes`, all of them state-changing, with the token check (see the
/// module doc for the rule).
pub fn state_changing(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    routes.route_layer(from_fn_with_state(state.clone(), require_token))
}

/// The basic-auth check of every request, against the `basic_auth_users` in force (none: every
/// request passes).
#[derive(Clone)]
pub struct BasicAuth {
    web: LiveWebConfig,
    /// A bearer token that passes the check too.
    token: Option<WebToken>,
    /// (user, password, hash) that matched; bcrypt costs tens of milliseconds a check. The
    /// hash is part of the key, so a changed password in a reloaded file is checked anew.
    verified: Arc<Mutex<HashSet<(String, String, String)>>>,
    /// One bcrypt check at a time, so wrong passwords cannot take every core.
    bcrypt: Arc<tokio::sync::Semaphore>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field(
                "users",
                &self.web.current().users.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// A check of the users of `web` (name to bcrypt hash); a request with `token` as its
    /// bearer token passes as well.
    pub fn new(web: LiveWebConfig, token: Option<WebToken>) -> BasicAuth {
        BasicAuth {
            web,
            token,
            verified: Arc::new(Mutex::new(HashSet::new())),
            bcrypt: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String, String)>> {
        self.verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `user` and `password` match.
    pub async fn check(&self, user: &str, password: &str) -> bool {
        let web = self.web.current();
        let known = web.users.get(user);
        let hash = known.map_or(UNKNOWN_USER_HASH, String::as_str).to_owned();
        let pair = (user.to_owned(), password.to_owned(), hash.clone());
        if known.is_some() && self.remembered().contains(&pair) {
            return true;
        }
        let Ok(_one_at_a_time) = self.bcrypt.acquire().await else {
            return false;
        };
        let password_copy = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || bcrypt::verify(password_copy, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        if matched && known.is_some() {
            let mut remembered = self.remembered();
            if remembered.len() >= VERIFIED_CACHE_ENTRIES {
                remembered.clear();
            }
            remembered.insert(pair);
            true
        } else {
            false
        }
    }
}

/// The user and password of a `Basic` authorization header.
fn basic_credentials(request: &Request) -> Option<(String, String)> {
    use base64::Engine;
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The middleware of `basic_auth_users`: while the configuration in force has users, every
/// request needs a user's password (or the bearer token).
pub async fn require_basic_auth(
    State(auth): State<BasicAuth>,
    request: Request,
    next: Next,
) -> Response {
    if auth.web.peek().users.is_empty() {
        return next.run(request).await;
    }
    if let (Some(token), Some(presented)) = (&auth.token, bearer(&request)) {
        if token.matches(presented) {
            return next.run(request).await;
        }
    }
    let passed = match basic_credentials(&request) {
        Some((user, password)) => auth.check(&user, &password).await,
        None => false,
    };
    if passed {
        next.run(request).await
    } else {
        refuse(&request, "no or wrong basic-auth credentials", "Basic")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(value: &str) -> WebToken {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{value}\n")).unwrap();
        WebToken::read(&path).unwrap()
    }

    #[test]
    fn a_token_matches_itself_only_and_never_shows() {
        let t = token("0123456789abcdef0123");
        assert!(t.matches(b"0123456789abcdef0123"));
        assert!(!t.matches(b"0123456789abcdef012"));
        assert!(!t.matches(b"0123456789abcdef0124"));
        assert!(!t.matches(b""));
        assert_eq!(format!("{t:?}"), "WebToken(<redacted>)");
    }

    #[test]
    fn a_short_or_missing_token_file_is_refused_with_the_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "abc\n").unwrap();
        let e = WebToken::read(&short).unwrap_err().to_string();
        assert!(e.contains("openssl rand -hex 32"), "{e}");
        assert!(!e.contains("abc"), "the token never shows: {e}");
        let e = WebToken::read(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--web.token-file"), "{e}");
    }

    #[tokio::test]
    async fn basic_auth_checks_bcrypt_and_remembers_success_only() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let web = crate::http::web_config::WebConfig {
            users: [("alice".to_owned(), hash.clone())].into(),
            ..Default::default()
        };
        let auth = BasicAuth::new(LiveWebConfig::fixed(web), None);
        assert!(!auth.check("alice", "wrong").await);
        assert!(!auth.check("bob", "s3cret").await);
        assert!(auth.remembered().is_empty());
        assert!(auth.check("alice", "s3cret").await);
        assert!(auth
            .remembered()
            .contains(&("alice".to_owned(), "s3cret".to_owned(), hash)));
        assert!(auth.check("alice", "s3cret").await);
    }
}
