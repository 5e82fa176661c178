//! The connection cap: past `--web.max-connections`, a new connection gets a 503 at once and
//! is closed, never left hanging; the rejection is counted and logged. The places are filled
//! by connections that each got a 200, so a connection the test's own start-up left behind
//! cannot take one unseen (an earlier version of this test raced that way).

mod support;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::{free_port, impatient_http, sample, Sentinel};

const FAST: &str = "cluster:\n  monitoring:\n    collection_interval_seconds: 1\n    collector_timeout_seconds: 2\n";

#[tokio::test(flavor = "multi_thread")]
async fn past_the_connection_cap_a_new_connection_gets_503_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sentinel = Sentinel::start_with(
        free_port(),
        FAST,
        &data,
        dir,
        &[
            "--web.max-connections",
            "3",
            "--web.header-read-timeout",
            "60s",
        ],
        &[],
        true,
    )
    .await;
    let addr = sentinel.url.trim_start_matches("http://").to_owned();
    // Three kept-alive connections hold the three places. Each proves it holds one by getting
    // a 200; one turned away (a connection left by the start-up health check may still hold a
    // place for a moment) is dropped and tried again.
    let mut holders = Vec::new();
    let deadline = Instant::now() + support::PATIENCE;
    while holders.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "gave up filling the three places"
        );
        let mut c = TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: sentinel\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        if c.read_exact(&mut head).await.is_ok() && head.ends_with(b"200") {
            // Read the rest of the short answer so the connection is idle again.
            let mut rest = [0u8; 512];
            let _ = tokio::time::timeout(Duration::from_millis(200), c.read(&mut rest)).await;
            holders.push(c);
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Every place is held: the next connection is turned away at once.
    let turned_away = impatient_http()
        .get(format!("{}/metrics", sentinel.url))
        .send()
        .await
        .expect("an answer, not a hang");
    assert_eq!(turned_away.status(), 503);
    assert_eq!(turned_away.headers()["connection"], "close");
    holders.pop();
    let body = sentinel
        .metrics_until("the rejection to be counted", |b| {
            sample(b, "ipfs_sentinel_http_connections_rejected_total", &[])
                .is_some_and(|v| v >= 1.0)
        })
        .await;
    assert!(body.contains("ipfs_sentinel_http_connections_open"));
    assert!(sentinel.process.log().contains("connection cap reached"));
}
