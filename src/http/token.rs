//! The web token that guards state-changing endpoints, and the 401 every refused request gets.
//!
//! # State-changing routes
//! Every route that changes state (`POST /-/reload`, the Alertmanager webhook receiver and
//! `POST /api/v1/actions/{name}/run`) is wrapped with [`state_changing`]:
//!
//! ```text
//! Router::new()
//!     .route("/metrics", get(metrics))
//!     .merge(token::state_changing(
//!         Router::new()
//!             .route("/-/reload", post(api::reload))
//!             .route("/api/v1/actions/{name}/run", post(api::run_action)),
//!         state.token.clone(),
//!     ))
//!     .with_state(state)
//! ```
//!
//! The rule, the same for each such route: with a token configured (from `--web.token-file` or
//! `IPFS_SENTINEL_WEB_TOKEN_FILE`), the route is on and every request must carry
//! `Authorization: Bearer TOKEN`; without a token, the route is on only with its
//! `--web.enable-*` switch (the handler answers 403 otherwise; [`routes_enabled`] tells a
//! handler's state which applies). A missing or wrong token is a 401 with `WWW-Authenticate`,
//! one log line naming the peer address ([`RequestRefused`]), and nothing changed: the handler
//! never runs.
//!
//! Owns the token check only; it needs no app state, only the token. It never logs or exposes
//! a token, and never reads one from the command line. Basic auth is [`super::basic_auth`]'s.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use subtle::ConstantTimeEq;

/// The shortest token accepted, in bytes: shorter ones can be guessed.
pub const MIN_TOKEN_BYTES: usize = 16;

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
pub fn bearer(request: &Request) -> Option<&[u8]> {
    let value = request.headers().get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
}

/// Logs the refusal and answers 401 with `challenge`.
pub fn refuse(request: &Request, reason: &'static str, challenge: &'static str) -> Response {
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
    State(token): State<Option<WebToken>>,
    request: Request,
    next: Next,
) -> Response {
    match &token {
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

/// Wraps the routes of `routes`, all of them state-changing, with the check of `token` (see the
/// module doc for the rule).
pub fn state_changing<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    token: Option<WebToken>,
) -> Router<S> {
    routes.route_layer(from_fn_with_state(token, require_token))
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
}
