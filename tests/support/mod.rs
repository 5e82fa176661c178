//! Starters for the real services the integration tests talk to (ipfs-sentinel's own binary,
//! a js-ipfs daemon, Prometheus), each on free loopback ports and stopped when dropped, plus
//! helpers to read the Prometheus text format.
//!
//! Every test binary includes this module and uses part of it.
#![allow(dead_code)]

pub mod alertmanager;
pub mod chromium;
pub mod ipfs_cluster;
pub mod kubo_fixtures;
pub mod remote_write;

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a test waits for a service to come up or a value to appear before failing.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// A free TCP port on 127.0.0.1 (bound, read, released), never the same one twice in a test
/// binary: the kernel may hand a released port out again, and two services of tests running in
/// parallel would then race for it (the loser's health check answered by the winner).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind a free loopback port")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A child process killed and reaped on drop.
pub struct Process {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Process {
    /// Spawns `command`, with stdout and stderr going to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Process {
        let out = std::fs::File::create(log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {name}: {e} (the README's test command installs it)")
            });
        Process {
            child,
            name: name.to_owned(),
            log: log.to_owned(),
        }
    }

    /// Everything the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test if the process has exited, showing its log.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited with {status}:\n{}", self.name, self.log());
        }
    }

    /// Sends SIGTERM and waits (up to [`PATIENCE`]) for the exit; returns its exit code
    /// (None when a signal ended it).
    pub fn terminate(&mut self) -> Option<i32> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {}", self.child.id());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the process") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit after SIGTERM:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the process now (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An HTTP client for tests: short timeouts, no proxy, and idle connections dropped well
/// before a sentinel closes them (so no request races that close).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(1))
        .no_proxy()
        .build()
        .unwrap()
}

/// An HTTP client that gives up after 2 s: a scrape it completes did not wait on a hung source.
pub fn impatient_http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .unwrap()
}

/// Polls `probe` until it returns `Some`, failing after [`PATIENCE`] with `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// GETs a URL and returns the body of a 2xx answer.
pub async fn get_text(url: &str) -> Option<String> {
    let response = http().get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}

/// GETs a URL with query parameters and reads the JSON answer, whatever its status.
pub async fn get_json(url: &str, query: &[(&str, &str)]) -> serde_json::Value {
    http()
        .get(url)
        .query(query)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{url} answers JSON: {e}"))
}

/// Runs the ipfs-sentinel binary with `args`: (exit code, stdout, stderr).
pub fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ipfs-sentinel"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The value of the sample `name{labels}` in Prometheus text (labels given must all match).
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let all_match = labels
                .iter()
                .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            (metric == name && all_match).then(|| value.parse().ok())?
        })
}

/// A running ipfs-sentinel binary.
pub struct Sentinel {
    pub process: Process,
    pub url: String,
    pub dir: TempDir,
}

impl Sentinel {
    /// Starts `ipfs-sentinel serve` with this YAML configuration and waits until it answers.
    pub async fn start(config_yaml: &str) -> Sentinel {
        Sentinel::start_on(free_port(), config_yaml).await
    }

    /// Like [`Sentinel::start`], on a given loopback port (for peers that must know it first).
    pub async fn start_on(port: u16, config_yaml: &str) -> Sentinel {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        Sentinel::start_in(port, config_yaml, &data, dir).await
    }

    /// Like [`Sentinel::start_on`], keeping its state in `data_dir` (which may outlive it).
    pub async fn start_in(port: u16, config_yaml: &str, data_dir: &Path, dir: TempDir) -> Sentinel {
        Sentinel::start_with(port, config_yaml, data_dir, dir, &[], &[], true).await
    }

    /// Like [`Sentinel::start_in`], with more `serve` arguments and environment variables;
    /// waits for `/-/healthy` over plain HTTP when `plain_http`, else only until the port takes
    /// connections (TLS, basic auth).
    pub async fn start_with(
        port: u16,
        config_yaml: &str,
        data_dir: &Path,
        dir: TempDir,
        args: &[&str],
        env: &[(&str, &str)],
        plain_http: bool,
    ) -> Sentinel {
        let config = dir.path().join("sentinel.yaml");
        std::fs::write(&config, config_yaml).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_ipfs-sentinel"));
        command
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info");
        let mut process =
            Process::spawn("ipfs-sentinel", command, &dir.path().join("sentinel.log"));
        let url = format!("http://127.0.0.1:{port}");
        let healthy = format!("{url}/-/healthy");
        eventually("ipfs-sentinel to answer /-/healthy", || {
            process.assert_running();
            let healthy = healthy.clone();
            async move {
                if plain_http {
                    get_text(&healthy).await.map(drop)
                } else {
                    tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .ok()
                        .map(drop)
                }
            }
        })
        .await;
        // This process, not another one that took the port first, is the one answering.
        let bound = format!("listen=127.0.0.1:{port}");
        eventually("ipfs-sentinel's start line naming its port", || {
            process.assert_running();
            let found = process.log().contains(&bound);
            async move { found.then_some(()) }
        })
        .await;
        Sentinel { process, url, dir }
    }

    /// One scrape of `/metrics` (text format).
    pub async fn metrics(&self) -> String {
        get_text(&format!("{}/metrics", self.url))
            .await
            .expect("/metrics answers")
    }

    /// Scrapes until `accept` is true of the body, and returns that body.
    pub async fn metrics_until(&self, what: &str, accept: impl Fn(&str) -> bool) -> String {
        let url = format!("{}/metrics", self.url);
        eventually(what, || {
            let url = url.clone();
            let accept = &accept;
            async move { get_text(&url).await.filter(|body| accept(body)) }
        })
        .await
    }
}

/// Where the README's test command installs js-ipfs (`npm ci` in tests/ipfs-node).
fn jsipfs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ipfs-node")
}

/// A real IPFS node: js-ipfs 0.66 serving the Kubo RPC API on a free loopback port, with no
/// swarm listeners, no bootstrap peers, no delegates, no preload and no mDNS, so it sends
/// nothing off this machine.
pub struct IpfsNode {
    pub process: Process,
    pub api_url: String,
    pub repo: TempDir,
}

impl IpfsNode {
    fn command(repo: &Path) -> Command {
        let dir = jsipfs_dir();
        let bin = dir.join("node_modules/.bin/jsipfs");
        assert!(
            bin.exists(),
            "{} is missing: run `npm ci --prefix tests/ipfs-node` (the README's test command does)",
            bin.display()
        );
        let mut command = Command::new(bin);
        command
            .env("IPFS_PATH", repo)
            .env(
                "NODE_OPTIONS",
                format!(
                    "--require {}",
                    dir.join("promise-with-resolvers.cjs").display()
                ),
            )
            .env("IPFS_MONITORING", "")
            .env_remove("http_proxy")
            .env_remove("https_proxy");
        command
    }

    /// Initialises a fresh repo, points every address at free loopback ports and starts the
    /// daemon; returns once its RPC API answers `id`.
    pub async fn start() -> IpfsNode {
        let repo = tempfile::tempdir().unwrap();
        let init = Self::command(repo.path())
            .arg("init")
            .output()
            .expect("run jsipfs init");
        assert!(
            init.status.success(),
            "jsipfs init failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );

        let config_path = repo.path().join("config");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        let api_port = free_port();
        config["Addresses"]["Swarm"] = serde_json::json!([]);
        config["Addresses"]["API"] = format!("/ip4/127.0.0.1/tcp/{api_port}").into();
        config["Addresses"]["Gateway"] = format!("/ip4/127.0.0.1/tcp/{}", free_port()).into();
        config["Addresses"]["RPC"] = format!("/ip4/127.0.0.1/tcp/{}", free_port()).into();
        config["Addresses"]["Delegates"] = serde_json::json!([]);
        config["Bootstrap"] = serde_json::json!([]);
        config["Discovery"]["MDNS"]["Enabled"] = false.into();
        config["Discovery"]["webRTCStar"]["Enabled"] = false.into();
        config["Swarm"]["DisableNatPortMap"] = true.into();
        config["Routing"]["Type"] = "none".into();
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();

        let mut daemon = Self::command(repo.path());
        daemon.arg("daemon").arg("--enable-preload=false");
        let mut process = Process::spawn("jsipfs daemon", daemon, &repo.path().join("daemon.log"));
        let api_url = format!("http://127.0.0.1:{api_port}");
        let id_url = format!("{api_url}/api/v0/id");
        eventually("the js-ipfs daemon to answer id", || {
            process.assert_running();
            let id_url = id_url.clone();
            async move {
                let r = http().post(&id_url).send().await.ok()?;
                r.status().is_success().then_some(())
            }
        })
        .await;
        IpfsNode {
            process,
            api_url,
            repo,
        }
    }

    /// Adds `content` as a file and pins it (recursively); returns its CID.
    pub async fn add_and_pin(&self, content: &[u8]) -> String {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(content.to_vec())
                .file_name("test.txt")
                .mime_str("application/octet-stream")
                .unwrap(),
        );
        let body: serde_json::Value = http()
            .post(format!("{}/api/v0/add?pin=true", self.api_url))
            .multipart(form)
            .send()
            .await
            .expect("add")
            .json()
            .await
            .expect("add answers JSON");
        body["Hash"]
            .as_str()
            .unwrap_or_else(|| panic!("add returns a Hash, got {body}"))
            .to_owned()
    }
}

/// A real Prometheus server (Debian's `prometheus`) with its own config and storage.
pub struct Prometheus {
    pub process: Process,
    pub url: String,
    pub dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (host:port) every second.
    pub async fn start(targets: &[String]) -> Prometheus {
        let quoted: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        Prometheus::start_with(&format!(
            "  - job_name: ipfs-sentinel\n    static_configs:\n      - targets: [{}]\n",
            quoted.join(", ")
        ))
        .await
    }

    /// Starts Prometheus with these `scrape_configs` entries (YAML, indented by two), scraping
    /// every second.
    pub async fn start_with(scrape_configs: &str) -> Prometheus {
        Prometheus::start_config(
            &format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{scrape_configs}"
            ),
            &[],
        )
        .await
    }

    /// Starts Prometheus with this whole configuration file and these extra flags, on a free
    /// loopback port, with its data in a temporary dir; returns once it is ready.
    pub async fn start_config(config: &str, flags: &[&str]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = free_port();
        let mut command = Command::new("prometheus");
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(flags)
            .arg("--log.level=warn");
        let mut process = Process::spawn("prometheus", command, &dir.path().join("prometheus.log"));
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        eventually("Prometheus to be ready", || {
            process.assert_running();
            get_text(&ready)
        })
        .await;
        Prometheus { process, url, dir }
    }

    /// Runs an instant query and returns the `data.result` array.
    pub async fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let body: serde_json::Value = http()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await
            .expect("query Prometheus")
            .json()
            .await
            .expect("Prometheus answers JSON");
        assert_eq!(body["status"], "success", "query {promql}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Runs `promtool check metrics` on a body: (passed, what it said).
pub fn promtool_check_metrics(body: &[u8]) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; the README's test command installs it)");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && said.trim().is_empty(), said)
}

/// Writes a file into a fresh temp dir and returns both.
pub fn temp_file(name: &str, content: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    (dir, path)
}

/// A TCP server that accepts connections and never answers: the worst kind of dead node.
/// Returns its address; it lives as long as the test's runtime.
pub async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

/// The timestamps (ms) of the export's one series.
pub fn ticks_of(export_json: &str) -> Vec<i64> {
    let v: serde_json::Value = serde_json::from_str(export_json)
        .unwrap_or_else(|e| panic!("an export in JSON: {e}: {export_json}"));
    v["series"][0]["points"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| ipfs_sentinel::clock::parse_rfc3339(p[0].as_str().unwrap()).unwrap())
        .collect()
}

/// The ticks a running sentinel holds.
pub async fn ticks_served(url: &str) -> Vec<i64> {
    let body = http()
        .get(format!("{url}/api/v1/export"))
        .query(&[("format", "json"), ("match", "ipfs_sentinel_build_info")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    ticks_of(&body)
}

/// Writes an executable script.
pub fn executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A sentinel's recovery action runs (`GET /api/v1/actions`), newest first.
pub async fn action_runs(sentinel: &Sentinel) -> Vec<serde_json::Value> {
    let body = get_json(
        &format!("{}/api/v1/actions", sentinel.url),
        &[("limit", "1000")],
    )
    .await;
    body["data"]["runs"].as_array().cloned().unwrap_or_default()
}
