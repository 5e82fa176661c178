//! The rules task: each group on its own timer, the first evaluation at start, and a slow rule
//! file that never holds up a scrape, a collection or a history append.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ipfs_sentinel::collect::Collector;
use ipfs_sentinel::history::landing::Landing;
use ipfs_sentinel::history::recorder::{self, HistoryCollector, SharedHistory, WriteHealth};
use ipfs_sentinel::history::{History, SeriesKey};
use ipfs_sentinel::rules::load::parse_file;
use ipfs_sentinel::rules::manager::{Globals, RuleEngine};
use ipfs_sentinel::rules::reload::{self, SharedEngine};
use ipfs_sentinel::rules::task::{self, RulesTask};
use ipfs_sentinel::rules::RulesCollector;
use tokio::sync::{mpsc, oneshot, watch};

const MINUTE: i64 = 60_000;
const START_MS: i64 = 1_700_000_000_000;
const NEVER: &str = "0001-01-01T00:00:00Z";

fn engine(rule_file: &str) -> SharedEngine {
    let groups = parse_file(rule_file, "rules.yml", Default::default()).unwrap();
    Arc::new(Mutex::new(RuleEngine::new(
        Globals {
            interval_ms: MINUTE,
            ..Globals::default()
        },
        groups,
    )))
}

/// Each group's `lastEvaluation` as `/api/v1/rules` gives it.
fn last_evaluations(engine: &SharedEngine) -> Vec<(String, String)> {
    let rules = reload::lock(engine).rules_json();
    rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                g["lastEvaluation"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// [`start`] with a landing floor nobody reads and a scratch data dir.
fn start_in_scratch(
    engine: &SharedEngine,
    history: &SharedHistory,
    clock: task::Clock,
    appended: watch::Receiver<Option<i64>>,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let scratch = tempfile::tempdir().unwrap().keep();
    start(
        engine,
        history,
        clock,
        appended,
        Landing::default().into(),
        scratch,
    )
}

/// Starts the rules task, saving its alert states in `data_dir`; returns what stops it.
fn start(
    engine: &SharedEngine,
    history: &SharedHistory,
    clock: task::Clock,
    appended: watch::Receiver<Option<i64>>,
    landing: Arc<Landing>,
    data_dir: std::path::PathBuf,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (sightings, _) = mpsc::channel(16);
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(task::run(
        RulesTask {
            engine: Arc::clone(engine),
            history: Arc::clone(history),
            data_dir,
            sightings,
            clock,
            landing,
        },
        appended,
        async move {
            let _ = stopped.await;
        },
    ));
    (stop, handle)
}

#[tokio::test(start_paused = true)]
async fn a_10s_group_runs_every_10s_under_a_60s_collection_and_the_first_evaluation_is_at_start() {
    let mut store = History::new(i64::MAX / 4, 10_000);
    let m = store.intern(SeriesKey::new("m", &[]));
    store.append(START_MS, &[(m, 1.0)]);
    let history: SharedHistory = Arc::new(RwLock::new(store));
    let engine = engine(
        "groups:\n  - name: fast\n    interval: 10s\n    rules:\n      - record: m_fast\n        expr: m\n  - name: default\n    rules:\n      - record: m_default\n        expr: m\n",
    );
    let started = tokio::time::Instant::now();
    let clock: task::Clock = Arc::new(move || START_MS + started.elapsed().as_millis() as i64);
    let (appended_tx, appended_rx) = watch::channel(None);
    let (stop, handle) = start_in_scratch(&engine, &history, clock, appended_rx);

    // Before the history's first tick there is nothing to read: no evaluation.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(
        last_evaluations(&engine).iter().all(|(_, at)| at == NEVER),
        "{:?}",
        last_evaluations(&engine)
    );

    // The first tick: every group is evaluated at once, not an interval later.
    appended_tx.send_replace(Some(START_MS));
    let ticked = tokio::time::Instant::now();
    while last_evaluations(&engine).iter().any(|(_, at)| at == NEVER) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        ticked.elapsed() < Duration::from_secs(1),
        "first evaluation {:?} after the first tick",
        ticked.elapsed()
    );
    let recorded = recorder::read(&history)
        .points(&SeriesKey::new("m_fast", &[]), START_MS, START_MS)
        .unwrap();
    assert_eq!(
        recorded,
        vec![(START_MS, 1.0)],
        "the recorded sample landed in the tick it was computed from"
    );

    // One collection interval (60 s) on a fake clock: the 10 s group runs 7 times (0, 10, ...,
    // 60), the group on the global interval twice (0, 60).
    let mut seen: Vec<(String, String)> = Vec::new();
    while ticked.elapsed() < Duration::from_millis(60_500) {
        for evaluation in last_evaluations(&engine) {
            if !seen.contains(&evaluation) {
                seen.push(evaluation);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let count = |group: &str| seen.iter().filter(|(g, _)| g == group).count();
    assert_eq!(count("fast"), 7, "{seen:?}");
    assert_eq!(count("default"), 2, "{seen:?}");
    stop.send(()).unwrap();
    handle.await.unwrap();
}

/// The landing floor (what remote write reads to know a tick is final) stays at or before
/// every recorded sample's instant, a group's own larger `query_offset` included, and moves
/// on with the clock.
#[tokio::test(start_paused = true)]
async fn no_recorded_sample_lands_before_the_floor_the_rules_task_gives() {
    let mut store = History::new(i64::MAX / 4, 10_000);
    let m = store.intern(SeriesKey::new("m", &[]));
    for t in 0..10 {
        store.append(
            START_MS - 600_000 + t * 60_000,
            &[(Arc::clone(&m), t as f64)],
        );
    }
    let history: SharedHistory = Arc::new(RwLock::new(store));
    let engine = engine(
        "groups:\n  - name: late\n    interval: 10s\n    query_offset: 2m\n    rules:\n      - record: m_late\n        expr: m\n  - name: default\n    rules:\n      - record: m_now\n        expr: m\n",
    );
    let started = tokio::time::Instant::now();
    let clock: task::Clock = Arc::new(move || START_MS + started.elapsed().as_millis() as i64);
    let (_appended_tx, appended_rx) = watch::channel(Some(START_MS - 60_000));
    let landing = Arc::new(Landing::default());
    assert_eq!(
        landing.floor(),
        i64::MIN,
        "nothing is final before the task starts"
    );
    let (stop, handle) = start(
        &engine,
        &history,
        clock,
        appended_rx,
        Arc::clone(&landing),
        tempfile::tempdir().unwrap().keep(),
    );
    let mut floors = Vec::new();
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        floors.push((started.elapsed().as_millis() as i64, landing.floor()));
    }
    stop.send(()).unwrap();
    handle.await.unwrap();
    for (elapsed, floor) in &floors {
        // Set at most a second (the task's longest sleep) ago, two minutes back.
        let now = START_MS + elapsed;
        assert!(
            floor <= &(now - 2 * MINUTE) && floor >= &(now - 2 * MINUTE - 1_000),
            "floor {floor} at {now}"
        );
    }
    // The late group's samples carry its offset: the first evaluation queried two minutes
    // back, and they landed in the tick then, at or after the floor said before it.
    let late = recorder::read(&history)
        .points(&SeriesKey::new("m_late", &[]), i64::MIN, i64::MAX)
        .unwrap();
    assert!(!late.is_empty());
    assert!(late[0].0 <= START_MS - 2 * MINUTE, "{late:?}");
}

/// The alerts each rule holds in the saved state file.
fn saved_alerts(path: &std::path::Path) -> Vec<usize> {
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    state["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule[2]["alerts"].as_array().unwrap().len())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn alert_states_are_saved_while_there_are_alerts_and_a_state_with_none_only_once() {
    let mut store = History::new(i64::MAX / 4, 10_000);
    let m = store.intern(SeriesKey::new("m", &[]));
    store.append(START_MS, &[(Arc::clone(&m), 1.0)]);
    let history: SharedHistory = Arc::new(RwLock::new(store));
    let engine = engine(
        "groups:\n  - name: g\n    interval: 10s\n    rules:\n      - alert: High\n        expr: m > 5\n        for: 1m\n",
    );
    let started = tokio::time::Instant::now();
    let clock: task::Clock = Arc::new(move || START_MS + started.elapsed().as_millis() as i64);
    let (appended_tx, appended_rx) = watch::channel(None);
    let dir = tempfile::tempdir().unwrap();
    let state = reload::state_path(dir.path());
    let (stop, handle) = start(
        &engine,
        &history,
        clock,
        appended_rx,
        Arc::new(Landing::default()),
        dir.path().to_owned(),
    );
    appended_tx.send_replace(Some(START_MS));
    while !state.exists() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        saved_alerts(&state),
        vec![0],
        "the first evaluation is saved"
    );

    // Three more evaluations with no alert: the file already says so and is not written again.
    std::fs::remove_file(&state).unwrap();
    tokio::time::sleep(Duration::from_secs(35)).await;
    assert!(!state.exists(), "a state with no alerts was written again");

    // m rises: a pending alert, saved at every evaluation (its for clock must survive).
    recorder::write(&history).append(START_MS + 36_000, &[(Arc::clone(&m), 9.0)]);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(saved_alerts(&state), vec![1], "the pending alert is saved");
    std::fs::remove_file(&state).unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        saved_alerts(&state),
        vec![1],
        "and saved again at the next evaluation"
    );
    stop.send(()).unwrap();
    handle.await.unwrap();
}

/// A history of `series` series over `ticks` one-minute ticks, all in the head.
fn big_history(series: usize, ticks: usize) -> (History, i64) {
    let mut store = History::new(i64::MAX / 4, ticks + 10);
    let keys: Vec<_> = (0..series)
        .map(|i| store.intern(SeriesKey::new("load", &[("instance", &i.to_string())])))
        .collect();
    let mut at = START_MS;
    for t in 0..ticks {
        at = START_MS + t as i64 * MINUTE;
        let samples: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (Arc::clone(k), ((i * 7919 + t * 104_729) % 1000) as f64))
            .collect();
        store.append(at, &samples);
    }
    (store, at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_rule_file_never_holds_up_an_append_a_collection_or_a_scrape() {
    let (store, last_ms) = big_history(200, 1440);
    let history: SharedHistory = Arc::new(RwLock::new(store));
    let mut rules = String::from("groups:\n  - name: slow\n    rules:\n");
    for i in 0..40 {
        rules.push_str(&format!(
            "      - record: load_median_{i}\n        expr: quantile_over_time(0.{i:02}, load[1d])\n"
        ));
    }
    let engine = engine(&rules);
    let (_appended_tx, appended_rx) = watch::channel(Some(last_ms));
    let clock: task::Clock = Arc::new(move || last_ms + 1);
    let (stop, handle) = start_in_scratch(&engine, &history, clock, appended_rx);

    // While the first evaluation runs: ticks are appended, the `history` and `rules`
    // collectors answer, and so does a scrape served from the exposition cache.
    let cache = ipfs_sentinel::exposition::ExpositionCache::new(
        ipfs_sentinel::model::Snapshot::new(std::time::SystemTime::now(), Vec::new()),
    );
    let mut history_collector =
        HistoryCollector::new(Arc::clone(&history), Arc::new(WriteHealth::default()));
    let mut rules_collector = RulesCollector::new(Arc::clone(&engine));
    let extra = {
        let mut h = recorder::write(&history);
        h.intern(SeriesKey::new("appended", &[]))
    };
    let evaluated = || last_evaluations(&engine).iter().all(|(_, at)| at != NEVER);
    let mut slowest = Duration::ZERO;
    let mut during = 0;
    let mut at = last_ms;
    let began = std::time::Instant::now();
    while !evaluated() {
        at += 1;
        let one = std::time::Instant::now();
        assert!(recorder::write(&history).append(at, &[(Arc::clone(&extra), 1.0)]));
        history_collector.collect().await.unwrap();
        rules_collector.collect().await.unwrap();
        tokio::spawn({
            let cache = cache.clone();
            async move {
                cache
                    .current()
                    .body(ipfs_sentinel::exposition::Format::Text)
                    .plain
                    .len()
            }
        })
        .await
        .unwrap();
        slowest = slowest.max(one.elapsed());
        during += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let evaluation = began.elapsed();
    assert!(
        evaluation > Duration::from_millis(500),
        "the rule file must be slow for this test to mean anything: {evaluation:?}"
    );
    assert!(during >= 5, "{during} appends during the evaluation");
    // Without the read view the first append alone would wait for the whole evaluation.
    assert!(
        slowest < Duration::from_secs(1) && slowest < evaluation / 4,
        "an append, a collection and a scrape took {slowest:?} while the rules evaluated for {evaluation:?}"
    );
    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_60s_interval_the_rules_and_the_history_have_data_within_seconds_of_start() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config_path = dir.path().join("config.yaml");
    std::fs::write(
        &config_path,
        format!(
            "ipfs:\n  api_url: http://{closed}\n  timeout_seconds: 1\ncluster:\n  node_id: first\n  monitoring:\n    collection_interval_seconds: 60\n    alerts:\n      - {{metric: node.memory_usage_percent, operator: '>', threshold: 0, severity: info}}\n"
        ),
    )
    .unwrap();
    let config = ipfs_sentinel::config::Config::load(&config_path).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let options = ipfs_sentinel::sentinel::Options {
        data_dir: dir.path().join("data"),
        source: ipfs_sentinel::rules::reload::ConfigSource {
            path: Some(config_path),
        },
        enable_lifecycle: false,
        enable_remote_actions: false,
        dry_run: true,
        token: None,
        server: Default::default(),
    };
    std::fs::create_dir_all(&options.data_dir).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(ipfs_sentinel::sentinel::serve(
        config,
        listener,
        options,
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let (rules, query) = loop {
        let rules: serde_json::Value = client
            .get(format!("{url}/api/v1/rules"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let query: serde_json::Value = client
            .get(format!("{url}/api/v1/query"))
            .query(&[("query", "ipfs_sentinel_build_info")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rule = &rules["data"]["groups"][0]["rules"][0];
        let answered = !query["data"]["result"].as_array().unwrap().is_empty();
        if (rule["health"] == "ok" && answered) || started.elapsed() > Duration::from_secs(20) {
            break (rules, query);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let rule = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["health"], "ok", "{rules}");
    assert_eq!(rule["alerts"][0]["state"], "firing", "{rules}");
    assert_eq!(
        query["data"]["result"].as_array().unwrap().len(),
        1,
        "the first collection is in the history: {query}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not one 60 s interval later: {:?}",
        started.elapsed()
    );
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
}
