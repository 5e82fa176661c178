//! Basic auth: the `basic_auth_users` of the web configuration in force (bcrypt hashes,
//! successful checks cached), checked on every request of every connection while there are
//! users. A request carrying the right bearer token passes too, since one `Authorization`
//! header cannot hold both.
//!
//! Owns the check only; it works per connection from the live web configuration and the token,
//! with no app state. It never logs or exposes a password.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use super::token::{bearer, refuse, WebToken};
use super::web_reload::LiveWebConfig;

/// How many successful basic-auth checks are remembered before the cache starts afresh.
const VERIFIED_CACHE_ENTRIES: usize = 1024;

/// A bcrypt hash no password matches, checked for unknown users so that a wrong user name
/// costs as long as a wrong password (exporter-toolkit does the same).
const UNKNOWN_USER_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

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
