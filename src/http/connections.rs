//! The listener's side of the server: accepts connections, does the TLS handshake when the
//! web configuration asks for it, serves HTTP/1.1 with hyper under the limits, and shuts down
//! gracefully.
//!
//! Limits ([`Limits`]): a request head must arrive within the header read timeout counted from
//! the connection's start (the TLS handshake included), so a slow client (slowloris) is cut
//! there. The same timeout ends a kept-alive connection that served a request and then stays
//! idle: that one closes quietly, as Go's `http.Server` closes idle connections, since every
//! scraper that keeps connections between scrapes longer than the timeout does it. A request body larger than the cap is a 413; past the connection cap a new connection
//! gets a 503 at once and is closed, never left waiting. Shutdown: stop accepting, let every
//! open connection finish the request it is serving (idle ones close), within a grace period.
//! Each event counts in [`HttpStats`], exposed by the `http` collector, and writes one line.
//!
//! Owns sockets and connections; what a request gets is the router's business, who may send
//! it [`super::auth`]'s.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::middleware::{from_fn_with_state, map_response_with_state};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::future::BoxFuture;
use http_body_util::Limited;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::Service;

use super::basic_auth::{require_basic_auth, BasicAuth};
use super::token::WebToken;
use super::web_reload::LiveWebConfig;
use crate::collect::{CollectError, Collector};
use crate::model::Family;

/// How many over-the-cap connections may be answered 503 at once; past that they are closed
/// without an answer.
const TURN_AWAY_AT_ONCE: usize = 64;

/// How long an over-the-cap connection may take to send its request head.
const TURN_AWAY_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// The server's limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The longest a connection may take, from its start, to send a request head (TLS
    /// handshake included); the same applies to each later request on a kept-alive
    /// connection, counted from the end of the previous answer.
    pub header_read_timeout: Duration,
    /// Connections served at once; one more gets a 503.
    pub max_connections: usize,
    /// The largest request body taken, in bytes; a larger one is a 413.
    pub max_body_bytes: usize,
    /// How long in-flight requests get to finish once shutdown starts.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1000,
            max_body_bytes: 1 << 20,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The server's counters, shared by every connection and read by the `http` collector.
#[derive(Debug, Clone, Default)]
pub struct HttpStats(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    open: AtomicU64,
    rejected: AtomicU64,
    header_timeouts: AtomicU64,
    tls_failures: AtomicU64,
    unauthorized: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl HttpStats {
    /// The counters as metric families.
    pub fn families(&self) -> Vec<Family> {
        let c = &self.0;
        let read = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        vec![
            Family::single_gauge(
                "ipfs_sentinel_http_connections_open",
                "HTTP connections open now.",
                read(&c.open),
            ),
            Family::counter(
                "ipfs_sentinel_http_connections_rejected_total",
                "Connections answered 503 and closed because --web.max-connections were open.",
            )
            .with(&[], read(&c.rejected)),
            Family::counter(
                "ipfs_sentinel_http_header_timeouts_total",
                "Connections closed because no request head arrived within --web.header-read-timeout.",
            )
            .with(&[], read(&c.header_timeouts)),
            Family::counter(
                "ipfs_sentinel_http_tls_handshake_failures_total",
                "TLS handshakes that failed (bad or missing client certificate, wrong protocol).",
            )
            .with(&[], read(&c.tls_failures)),
            Family::counter(
                "ipfs_sentinel_http_unauthorized_requests_total",
                "Requests answered 401: a missing or wrong token or basic-auth password.",
            )
            .with(&[], read(&c.unauthorized)),
        ]
    }
}

/// Exposes [`HttpStats`] and the web configuration's reload state: the `http` collector.
pub struct HttpCollector(HttpStats, LiveWebConfig);

impl HttpCollector {
    /// A collector reading `stats` and how loading `web` goes.
    pub fn new(stats: HttpStats, web: LiveWebConfig) -> Self {
        Self(stats, web)
    }
}

impl Collector for HttpCollector {
    fn name(&self) -> &'static str {
        "http"
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Family>, CollectError>> {
        let mut families = self.0.families();
        families.extend(self.1.families());
        Box::pin(async move { Ok(families) })
    }
}

/// How the server runs: its web configuration, limits and counters.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// TLS, basic auth and response headers (`--web.config.file`), kept current.
    pub web: LiveWebConfig,
    /// The limits.
    pub limits: Limits,
    /// Where events are counted.
    pub stats: HttpStats,
}

/// Wraps `app` with what the web configuration in force asks of every request: with
/// `basic_auth_users`, a user's password (or `token`), and its response headers.
pub fn guard(app: Router, web: &LiveWebConfig, token: Option<WebToken>) -> Router {
    app.layer(from_fn_with_state(
        BasicAuth::new(web.clone(), token),
        require_basic_auth,
    ))
    .layer(map_response_with_state(
        web.clone(),
        |axum::extract::State(web): axum::extract::State<LiveWebConfig>,
         mut response: Response| async move {
            for (name, value) in &web.peek().headers {
                response.headers_mut().insert(name.clone(), value.clone());
            }
            response
        },
    ))
}

/// A connection was turned away at the cap (logged at most every 10 s, with the count).
struct ConnectionsRejected {
    peer: SocketAddr,
    total: u64,
    max: usize,
}

impl ConnectionsRejected {
    fn emit(&self) {
        tracing::warn!(peer = %self.peer, rejected_total = self.total, max_connections = self.max, "connection cap reached: answering 503 and closing");
    }
}

/// A connection sent no request head within the header read timeout.
struct HeaderReadTimedOut {
    peer: SocketAddr,
    timeout: Duration,
}

impl HeaderReadTimedOut {
    fn emit(&self) {
        tracing::warn!(peer = %self.peer, timeout_seconds = self.timeout.as_secs_f64(), "no request head within the header read timeout: connection closed");
    }
}

/// A TLS handshake failed.
struct TlsHandshakeFailed<'a> {
    peer: SocketAddr,
    error: &'a std::io::Error,
}

impl TlsHandshakeFailed<'_> {
    fn emit(&self) {
        tracing::info!(peer = %self.peer, error = %tls_error_text(self.error), "TLS handshake failed");
    }
}

/// A failed handshake's error, with a certificate check of our own (e.g.
/// `client_allowed_sans`) told in its own words rather than rustls's debug form.
fn tls_error_text(error: &std::io::Error) -> String {
    use rustls::{CertificateError, Error};
    match error.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
        Some(Error::InvalidCertificate(CertificateError::Other(other))) => {
            format!("invalid peer certificate: {}", other.0)
        }
        _ => error.to_string(),
    }
}

/// Accepting a connection failed (e.g. out of file descriptors); the loop pauses briefly.
struct AcceptFailed<'a> {
    error: &'a std::io::Error,
}

impl AcceptFailed<'_> {
    fn emit(&self) {
        tracing::warn!(error = %self.error, "cannot accept a connection; retrying");
    }
}

/// Shutdown's grace period ran out with connections still open.
struct ShutdownGraceExceeded {
    open: u64,
    grace: Duration,
}

impl ShutdownGraceExceeded {
    fn emit(&self) {
        tracing::warn!(
            open = self.open,
            grace_seconds = self.grace.as_secs_f64(),
            "requests still in flight when the shutdown grace period ran out"
        );
    }
}

/// What one connection is served with.
#[derive(Clone)]
struct Serving {
    app: Router,
    web: LiveWebConfig,
    header_read_timeout: Duration,
    max_body_bytes: usize,
    stats: HttpStats,
    stop: watch::Receiver<bool>,
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and waits (up to
/// the grace period) for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ServerOptions { web, limits, stats } = options;
    let (stop_tx, stop_rx) = watch::channel(false);
    let serving = Serving {
        app,
        web,
        header_read_timeout: limits.header_read_timeout,
        max_body_bytes: limits.max_body_bytes,
        stats: stats.clone(),
        stop: stop_rx.clone(),
    };
    let turning_away = Serving {
        app: Router::new().fallback(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONNECTION, "close")],
                "Too many open connections; try again.\n",
            )
        }),
        header_read_timeout: TURN_AWAY_HEADER_TIMEOUT.min(limits.header_read_timeout),
        ..serving.clone()
    };
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let turn_away = Arc::new(Semaphore::new(TURN_AWAY_AT_ONCE));
    let mut last_rejection_logged: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    AcceptFailed { error: &error }.emit();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(connection(stream, peer, serving.clone(), permit));
            }
            Err(_) => {
                bump(&stats.0.rejected);
                if last_rejection_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    last_rejection_logged = Some(Instant::now());
                    ConnectionsRejected {
                        peer,
                        total: stats.0.rejected.load(Ordering::Relaxed),
                        max: limits.max_connections,
                    }
                    .emit();
                }
                // Past both caps the socket is dropped: closed at once, never left hanging.
                if let Ok(permit) = Arc::clone(&turn_away).try_acquire_owned() {
                    tokio::spawn(connection(stream, peer, turning_away.clone(), permit));
                }
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_grace, permits.acquire_many(all))
        .await
        .is_err()
    {
        ShutdownGraceExceeded {
            open: stats.0.open.load(Ordering::Relaxed),
            grace: limits.shutdown_grace,
        }
        .emit();
    }
    Ok(())
}

/// Serves one connection: TLS handshake (if any), then HTTP/1.1 until it closes, times out or
/// shutdown asks it to finish.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    serving: Serving,
    _permit: OwnedSemaphorePermit,
) {
    let stats = serving.stats.clone();
    stats.0.open.fetch_add(1, Ordering::Relaxed);
    let deadline = Instant::now() + serving.header_read_timeout;
    // The configuration in force when the connection came: a rotated certificate serves the
    // next connections.
    let tls = serving.web.peek().tls.clone().map(TlsAcceptor::from);
    match tls {
        None => serve_http(TokioIo::new(stream), peer, serving, deadline).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout_at(deadline, acceptor.accept(stream));
            tokio::select! {
                done = handshake => match done {
                    Ok(Ok(tls)) => serve_http(TokioIo::new(tls), peer, serving, deadline).await,
                    Ok(Err(error)) => {
                        bump(&stats.0.tls_failures);
                        TlsHandshakeFailed { peer, error: &error }.emit();
                    }
                    Err(_) => {
                        bump(&stats.0.header_timeouts);
                        HeaderReadTimedOut { peer, timeout: serving.header_read_timeout }.emit();
                    }
                },
                _ = stopped(serving.stop.clone()) => {}
            }
        }
    }
    stats.0.open.fetch_sub(1, Ordering::Relaxed);
}

/// Resolves once shutdown has started.
async fn stopped(mut stop: watch::Receiver<bool>) {
    // A dropped sender means the server is gone: stop too.
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn serve_http<I>(io: I, peer: SocketAddr, serving: Serving, deadline: Instant)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    // The first head must arrive by the deadline set at accept; a TLS handshake used part.
    let first_head = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let served = Arc::new(AtomicU64::new(0));
    let handler = Handler {
        app: serving.app.clone(),
        peer,
        max_body_bytes: serving.max_body_bytes,
        stats: serving.stats.clone(),
        served: Arc::clone(&served),
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(first_head)
        .serve_connection(
            io,
            hyper::service::service_fn(move |r| handler.clone().handle(r)),
        );
    tokio::pin!(conn);
    let outcome = tokio::select! {
        outcome = conn.as_mut() => outcome,
        _ = stopped(serving.stop.clone()) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = outcome {
        if e.is_timeout() && served.load(Ordering::Relaxed) > 0 {
            tracing::debug!(peer = %peer, "idle kept-alive connection closed");
        } else if e.is_timeout() {
            bump(&serving.stats.0.header_timeouts);
            HeaderReadTimedOut {
                peer,
                timeout: serving.header_read_timeout,
            }
            .emit();
        } else {
            tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
        }
    }
}

/// Hands one request to the router, with the peer's address and the body cap.
#[derive(Clone)]
struct Handler {
    app: Router,
    peer: SocketAddr,
    max_body_bytes: usize,
    stats: HttpStats,
    /// Requests this connection has brought so far.
    served: Arc<AtomicU64>,
}

impl Handler {
    async fn handle(mut self, request: Request<Incoming>) -> Result<Response, Infallible> {
        self.served.fetch_add(1, Ordering::Relaxed);
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes as u64) {
            return Ok((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {} bytes\n", self.max_body_bytes),
            )
                .into_response());
        }
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(self.peer));
        let request = Request::from_parts(
            parts,
            axum::body::Body::new(Limited::new(body, self.max_body_bytes)),
        );
        let response = match self.app.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if response.status() == StatusCode::UNAUTHORIZED {
            bump(&self.stats.0.unauthorized);
        }
        Ok(response)
    }
}
