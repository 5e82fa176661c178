//! Load: 200 connections for 30 s on loopback with zero errors, while collections keep their
//! interval (`collector_duration_seconds` and the history's tick spacing show it). A binary of
//! its own, so no other test shares the two cores with it.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{kubo_fixtures, sample, Sentinel};

const FAST: &str = "cluster:\n  monitoring:\n    collection_interval_seconds: 1\n    collector_timeout_seconds: 2\n";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "30 s of load; run by scripts/test-all.sh"]
async fn two_hundred_connections_for_thirty_seconds_with_zero_errors() {
    // The fixture API on a thread of its own, so the load this test makes cannot starve it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            tx.send(kubo_fixtures::serve().await).unwrap();
            std::future::pending::<()>().await
        })
    });
    let api = rx.recv().unwrap();
    let sentinel = Sentinel::start(&format!("ipfs:\n  api_url: {api}\n{FAST}")).await;
    let url = format!("{}/metrics", sentinel.url);
    sentinel
        .metrics_until("a first history tick", |b| {
            sample(b, "ipfs_sentinel_history_samples", &[]).is_some_and(|v| v > 0.0)
        })
        .await;
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let deadline = Instant::now() + Duration::from_secs(30);
    let ok = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let longest_collection = Arc::new(std::sync::Mutex::new(0.0f64));
    let workers: Vec<_> = (0..200)
        .map(|_| {
            let (url, ok, errors, longest) = (
                url.clone(),
                Arc::clone(&ok),
                Arc::clone(&errors),
                Arc::clone(&longest_collection),
            );
            tokio::spawn(async move {
                // One client each: 200 connections, kept alive.
                let client = reqwest::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                while Instant::now() < deadline {
                    match client.get(&url).send().await {
                        Ok(r) if r.status() == 200 => match r.text().await {
                            Ok(body) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                for line in body.lines().filter(|l| {
                                    l.starts_with("ipfs_sentinel_collector_duration_seconds{")
                                }) {
                                    let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
                                    let mut m = longest.lock().unwrap();
                                    *m = m.max(v);
                                }
                            }
                            Err(e) => errors.lock().unwrap().push(e.to_string()),
                        },
                        Ok(r) => errors.lock().unwrap().push(format!("HTTP {}", r.status())),
                        Err(e) => errors.lock().unwrap().push(format!("{e:?}")),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let errors = errors.lock().unwrap().clone();
    let served = ok.load(Ordering::Relaxed);
    let ticks: Vec<i64> = support::ticks_served(&sentinel.url)
        .await
        .into_iter()
        .filter(|t| *t >= started_ms)
        .collect();
    let gaps: Vec<i64> = ticks.windows(2).map(|w| w[1] - w[0]).collect();
    let widest = gaps.iter().copied().max().unwrap_or(0);
    let longest = *longest_collection.lock().unwrap();
    println!(
        "200 connections, 30 s: {served} scrapes ({:.0}/s), {} errors; {} history ticks, widest gap {widest} ms; longest collection {longest:.3} s",
        served as f64 / 30.0,
        errors.len(),
        ticks.len()
    );
    assert!(
        errors.is_empty(),
        "{} errors, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(served > 200, "every connection was served");
    assert!(ticks.len() >= 20, "ticks kept coming: {ticks:?}");
    // A 1 s interval: a gap of 2.5 s would mean a collection was skipped.
    assert!(widest < 2500, "a history tick was skipped: gaps {gaps:?}");
    assert!(
        longest < 1.0,
        "a collection took longer than its interval: {longest} s"
    );
}
