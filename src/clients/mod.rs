//! One typed client per outside service, with its response parsers: the Kubo RPC API
//! ([`kubo`]), IPFS Cluster's REST API ([`ipfs_cluster`]) and peer sentinels ([`peers`]). The
//! collectors and the built-in recovery actions both call these; neither builds a URL, sends
//! credentials or reads an error body of its own.
//!
//! Owns URL building, credentials, the HTTP client every call goes through (each built with a
//! timeout: no call here can hang), and the reading of answers into typed values or one
//! [`ClientError`] naming the service, the URL and what failed. It decides nothing about what an
//! answer means for the node (collectors and actions do) and imports neither of them. Parsers
//! are pure functions of the bytes received, tested on the fixtures under `tests/fixtures/`.

pub mod ipfs_cluster;
pub mod kubo;
pub mod peers;

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// How long an idle pooled connection is kept for the next call: less than the 10 s after which
/// a sentinel (its default header read timeout) closes an idle connection, so a call never goes
/// out on a connection the other side is closing at that moment.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP client for calls to one service: `timeout` on each call and on connecting, and no
/// proxy (services are this node's daemons and its peers, never the open internet).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| ClientError::Build {
            reason: e.to_string(),
        })
}

/// Says why an HTTP call got no answer, for a log line or an error a user reads: a timeout, a
/// refused connection (with a hint naming `service`, e.g. "the IPFS daemon"), or the error's chain.
pub fn describe_transport_error(e: &reqwest::Error, service: &str) -> String {
    transport_reason(e, service, "the timeout")
}

/// [`describe_transport_error`] with the timeout named (e.g. `peer_timeout_seconds`).
fn transport_reason(e: &reqwest::Error, daemon: &str, timeout: &str) -> String {
    if e.is_timeout() {
        format!("no answer before {timeout}")
    } else if e.is_connect() {
        format!("cannot connect (is {daemon} running?)")
    } else {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        reason
    }
}

/// Why a call to an outside service failed. Every variant names the service and, once a call
/// was made, the URL.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: refused, reset, timed out, or the answer was cut off.
    #[error("{service} at {url} did not answer: {reason}")]
    Unreachable {
        /// e.g. `Kubo RPC API`.
        service: &'static str,
        /// The URL called.
        url: String,
        /// What happened.
        reason: String,
    },
    /// An error status.
    #[error("{service} at {url} answered HTTP {status}: {message}")]
    Status {
        /// e.g. `Kubo RPC API`.
        service: &'static str,
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The service's error message, or the start of its body.
        message: String,
    },
    /// The service refused the credentials sent (or wants some and none are configured).
    #[error("{service} at {url} answered 401 Unauthorized: {hint}")]
    Unauthorized {
        /// e.g. `IPFS Cluster REST API`.
        service: &'static str,
        /// The URL called.
        url: String,
        /// Which setting holds the credentials, and whether any were sent.
        hint: String,
    },
    /// An answer that is not in the shape the service documents.
    #[error("unexpected answer from {service} at {url}: {reason}")]
    BadAnswer {
        /// e.g. `Kubo RPC API`.
        service: &'static str,
        /// The URL called.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// A credentials file could not be read or is not in its format: the message names the
    /// configuration key and the file, never the secret.
    #[error("{0}")]
    Credentials(String),
    /// The HTTP client could not be built (the TLS backend failed to start).
    #[error("cannot build an HTTP client: {reason}")]
    Build {
        /// What happened.
        reason: String,
    },
}

impl ClientError {
    /// What failed, without the service and URL: for a list of items that all went to the same
    /// place (e.g. one line per bootstrap peer).
    pub fn reason(&self) -> String {
        match self {
            ClientError::Unreachable { reason, .. } | ClientError::BadAnswer { reason, .. } => {
                reason.clone()
            }
            ClientError::Status {
                status, message, ..
            } => format!("HTTP {status}: {message}"),
            other => other.to_string(),
        }
    }
}

/// Why a response body could not be read: the pure parsers' error, before a URL is known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unexpected response from {endpoint}: {reason}")]
pub struct ParseError {
    /// The endpoint, e.g. `repo/stat` or `peers`.
    pub endpoint: &'static str,
    /// What was wrong.
    pub reason: String,
}

/// How one outside service is named in errors and writes its error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// e.g. `Kubo RPC API`.
    pub name: &'static str,
    /// What to check is running when it refuses connections, e.g. `the IPFS daemon`.
    pub daemon: &'static str,
    /// The timeout a call runs out of, e.g. `the timeout` or `peer_timeout_seconds`.
    pub timeout: &'static str,
    /// The field of its JSON error object that holds the message (`Message` for Kubo).
    pub message_field: &'static str,
}

/// The credentials a client sends. Its `Debug` never shows the secret.
#[derive(Clone, Default)]
pub(crate) enum Credentials {
    /// None.
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// `Authorization: Bearer`.
    Bearer(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credentials::None => "None",
            Credentials::Basic { .. } => "Basic(<secret>)",
            Credentials::Bearer(_) => "Bearer(<secret>)",
        })
    }
}

/// One outside service over HTTP: its name for errors, the client that carries the timeout, the
/// credentials, and what to tell the user when they are refused. The typed clients send every
/// call through it.
#[derive(Debug, Clone)]
pub(crate) struct HttpService {
    service: Service,
    http: reqwest::Client,
    credentials: Credentials,
    /// Said with a 401 (which setting to check); `None`: a 401 is read as any error status.
    refused_hint: Option<String>,
}

impl HttpService {
    /// `http` must carry a timeout (see [`http_client`]).
    pub(crate) fn new(service: Service, http: reqwest::Client) -> Self {
        Self {
            service,
            http,
            credentials: Credentials::None,
            refused_hint: None,
        }
    }

    /// Sends `credentials` with every call; a 401 says `refused_hint`.
    pub(crate) fn with_credentials(
        mut self,
        credentials: Credentials,
        refused_hint: String,
    ) -> Self {
        self.credentials = credentials;
        self.refused_hint = Some(refused_hint);
        self
    }

    /// A request to `url` carrying the credentials; send it with [`HttpService::send`].
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        url: &reqwest::Url,
    ) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url.clone());
        match &self.credentials {
            Credentials::None => request,
            Credentials::Basic { user, password } => request.basic_auth(user, Some(password)),
            Credentials::Bearer(token) => request.bearer_auth(token),
        }
    }

    /// Sends `request` (made by [`HttpService::request`] for `url`) and returns the response
    /// once its status is 2xx.
    pub(crate) async fn send(
        &self,
        url: &reqwest::Url,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = request
            .send()
            .await
            .map_err(|e| self.unreachable(url, &e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if let (reqwest::StatusCode::UNAUTHORIZED, Some(hint)) = (status, &self.refused_hint) {
            return Err(ClientError::Unauthorized {
                service: self.service.name,
                url: url.to_string(),
                hint: hint.clone(),
            });
        }
        let body = response.bytes().await.unwrap_or_default();
        Err(ClientError::Status {
            service: self.service.name,
            url: url.to_string(),
            status: status.as_u16(),
            message: error_message(&body, self.service.message_field),
        })
    }

    /// Sends a request and reads the whole body of its 2xx answer.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        url: &reqwest::Url,
    ) -> Result<bytes::Bytes, ClientError> {
        let response = self.send(url, self.request(method, url)).await?;
        response
            .bytes()
            .await
            .map_err(|e| self.unreachable(url, &e))
    }

    /// The error for a call to `url` that got no (whole) answer.
    pub(crate) fn unreachable(&self, url: &reqwest::Url, e: &reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            service: self.service.name,
            url: url.to_string(),
            reason: transport_reason(e, self.service.daemon, self.service.timeout),
        }
    }

    /// The error for an answer from `url` that a parser refused.
    pub(crate) fn bad_answer(&self, url: &reqwest::Url, e: ParseError) -> ClientError {
        ClientError::BadAnswer {
            service: self.service.name,
            url: url.to_string(),
            reason: e.reason,
        }
    }
}

/// `base` with `path` appended to its path (a base URL may carry a path prefix of its own,
/// with or without a trailing `/`), and `query` after it.
///
/// ```
/// use ipfs_sentinel::clients::endpoint_url;
/// let base = "http://127.0.0.1:5001/ipfs".parse().unwrap();
/// let url = endpoint_url(&base, "api/v0/repo/stat", &[("size-only", "true")]);
/// assert_eq!(url.as_str(), "http://127.0.0.1:5001/ipfs/api/v0/repo/stat?size-only=true");
/// ```
pub fn endpoint_url(base: &reqwest::Url, path: &str, query: &[(&str, &str)]) -> reqwest::Url {
    let mut url = base.clone();
    let joined = format!("{}/{}", url.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url.set_query(None);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    url
}

/// The non-blank lines of an NDJSON body (js-ipfs separates objects with blank lines).
pub fn ndjson_lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
}

/// Reads a service's JSON error object (its message in `field`), or else the body's first 200
/// bytes, for an error a user reads.
///
/// ```
/// use ipfs_sentinel::clients::error_message;
/// let kubo = br#"{"Message":"bandwidth reporter disabled in config","Code":0,"Type":"error"}"#;
/// assert_eq!(error_message(kubo, "Message"), "bandwidth reporter disabled in config");
/// assert_eq!(error_message(b"404 page not found\n", "Message"), "404 page not found");
/// ```
pub fn error_message(body: &[u8], field: &str) -> String {
    let from_json = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
        .ok()
        .and_then(|object| match object.get(field) {
            Some(serde_json::Value::String(message)) => Some(message.clone()),
            _ => None,
        });
    from_json.unwrap_or_else(|| {
        String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_owned()
    })
}

/// Deserializes `null` as the type's default (IPFS Cluster and Kubo send `null` for empty lists
/// and maps).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Serves `app` on a free loopback port until the handle is aborted; its base URL.
    pub(crate) async fn serve(app: axum::Router) -> (reqwest::Url, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (base, server)
    }

    #[test]
    fn endpoints_keep_a_base_path_and_replace_its_query() {
        let base: reqwest::Url = "http://127.0.0.1:5001/ipfs/".parse().unwrap();
        assert_eq!(
            endpoint_url(&base, "api/v0/repo/gc", &[]).as_str(),
            "http://127.0.0.1:5001/ipfs/api/v0/repo/gc"
        );
        let bare: reqwest::Url = "http://127.0.0.1:9094".parse().unwrap();
        assert_eq!(
            endpoint_url(
                &bare,
                "pins/Qm1",
                &[("replication-min", "2"), ("name", "a b")]
            )
            .as_str(),
            "http://127.0.0.1:9094/pins/Qm1?replication-min=2&name=a+b"
        );
        let queried: reqwest::Url = "http://127.0.0.1:9094/?x=1".parse().unwrap();
        assert_eq!(
            endpoint_url(&queried, "peers", &[]).as_str(),
            "http://127.0.0.1:9094/peers"
        );
    }

    #[test]
    fn ndjson_skips_blank_lines() {
        let lines: Vec<&[u8]> = ndjson_lines(b"\n{\"a\":1}\n\n{\"b\":2}\r\n  \n").collect();
        assert_eq!(lines, vec![&b"{\"a\":1}"[..], &b"{\"b\":2}\r"[..]]);
    }

    #[test]
    fn error_bodies_are_read_by_their_field_or_their_start() {
        assert_eq!(
            error_message(
                br#"{"code":500,"message":"not enough peers to allocate CID"}"#,
                "message"
            ),
            "not enough peers to allocate CID"
        );
        assert_eq!(error_message(b"bad gateway", "message"), "bad gateway");
        let long = vec![b'x'; 500];
        assert_eq!(error_message(&long, "message").len(), 200);
    }

    #[tokio::test]
    async fn errors_name_the_service_and_the_url() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let service = Service {
            name: "Test API",
            daemon: "the test daemon",
            timeout: "the timeout",
            message_field: "message",
        };
        let api = HttpService::new(service, http_client(Duration::from_secs(2)).unwrap());
        let url = endpoint_url(
            &format!("http://127.0.0.1:{port}").parse().unwrap(),
            "things",
            &[("a", "1")],
        );
        let e = api.call(reqwest::Method::GET, &url).await.unwrap_err();
        assert!(matches!(e, ClientError::Unreachable { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "Test API at http://127.0.0.1:{port}/things?a=1 did not answer: \
                 cannot connect (is the test daemon running?)"
            )
        );
        assert_eq!(e.reason(), "cannot connect (is the test daemon running?)");
    }

    #[test]
    fn credentials_never_show_in_debug() {
        let basic = Credentials::Basic {
            user: "admin".into(),
            password: "s3cret".into(),
        };
        let shown = format!("{basic:?} {:?}", Credentials::Bearer("t0ken".into()));
        assert!(
            !shown.contains("s3cret") && !shown.contains("t0ken"),
            "{shown}"
        );
    }
}
