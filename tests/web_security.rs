//! Web security: TLS, client certificates and basic auth from a `--web.config.file` in
//! exporter-toolkit's format, checked against Debian's node_exporter given the very same file
//! (same verdict for every client); the token that guards state-changing endpoints (401
//! without it or with a wrong one, 200 with it, nothing changed on a 401, and the token never
//! in the logs, `/metrics` or `/api/v1/status`).

mod support;

use std::path::Path;
use std::process::Command;

use support::{eventually, free_port, sample, temp_file, Process, Sentinel};

/// A CA, a server certificate for 127.0.0.1 it signed, a client certificate it signed, and a
/// self-signed client certificate no CA vouches for; all PEM. `issuer` signs more.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client: String,
    rogue_client: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    /// A client certificate and its key (PEM), signed by the CA, with these subject
    /// alternative names.
    fn client_with(&self, sans: Vec<rcgen::SanType>) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        format!("{}{}", cert.pem(), key.serialize_pem())
    }
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let signed = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = signed(vec!["127.0.0.1".into(), "localhost".into()]);
    let (client_cert, client_key) = signed(vec!["client.test".into()]);
    let rogue_key = KeyPair::generate().unwrap();
    let rogue_cert = CertificateParams::new(vec!["client.test".to_owned()])
        .unwrap()
        .self_signed(&rogue_key)
        .unwrap();
    Pki {
        ca: ca.pem(),
        server_cert,
        server_key,
        client: format!("{client_cert}{client_key}"),
        rogue_client: format!("{}{}", rogue_cert.pem(), rogue_key.serialize_pem()),
        issuer,
    }
}

/// Writes the PKI's files into `dir`, named as the web configs below refer to them.
fn write_pki(pki: &Pki, dir: &Path) {
    std::fs::write(dir.join("server.crt"), &pki.server_cert).unwrap();
    std::fs::write(dir.join("server.key"), &pki.server_key).unwrap();
    std::fs::write(dir.join("ca.crt"), &pki.ca).unwrap();
}

/// What a client got: the status, or that the connection failed (TLS refused it).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Verdict {
    Status(u16),
    Refused,
}

async fn ask(
    url: &str,
    ca: &str,
    identity: Option<&str>,
    credentials: Option<(&str, &str)>,
) -> Verdict {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(10))
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap());
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    let client = builder.build().unwrap();
    let mut request = client.get(url);
    if let Some((user, password)) = credentials {
        request = request.basic_auth(user, Some(password));
    }
    match request.send().await {
        Ok(response) => Verdict::Status(response.status().as_u16()),
        Err(_) => Verdict::Refused,
    }
}

/// Debian's node_exporter with the given web config, on a free port; waits until it listens.
async fn node_exporter(web_config: &Path, dir: &Path) -> (Process, u16) {
    let port = free_port();
    let mut command = Command::new("prometheus-node-exporter");
    command
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--web.config.file={}", web_config.display()))
        .arg("--collector.disable-defaults");
    let log = dir.join(format!("node_exporter-{port}.log"));
    let mut process = Process::spawn("prometheus-node-exporter", command, &log);
    eventually("node_exporter to listen", || {
        process.assert_running();
        async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(drop)
        }
    })
    .await;
    (process, port)
}

/// The sentinel with the given web config, on a free port; waits until it listens.
async fn sentinel_with_web_config(web_config: &Path, extra: &[&str]) -> Sentinel {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut args = vec!["--web.config.file", web_config.to_str().unwrap()];
    args.extend_from_slice(extra);
    Sentinel::start_with(free_port(), "", &data, dir, &args, &[], false).await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's prometheus-node-exporter; run by scripts/test-all.sh"]
async fn tls_and_basic_auth_get_node_exporters_verdicts_from_the_same_file() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    write_pki(&pki, dir.path());
    // `$2y$`, as htpasswd -B writes it.
    let hash = bcrypt::hash_with_result("correct horse", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let web_config = dir.path().join("web.yml");
    std::fs::write(
        &web_config,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\nbasic_auth_users:\n  alice: {hash}\n"
        ),
    )
    .unwrap();
    let sentinel = sentinel_with_web_config(&web_config, &[]).await;
    let sentinel_port = sentinel.url.rsplit(':').next().unwrap().to_owned();
    let (_exporter, exporter_port) = node_exporter(&web_config, dir.path()).await;

    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<(&'a str, &'a str)>,
        Verdict,
    );
    let cases: [Case; 6] = [
        (
            "client certificate and password",
            Some(&pki.client),
            Some(("alice", "correct horse")),
            Verdict::Status(200),
        ),
        (
            "wrong password",
            Some(&pki.client),
            Some(("alice", "wrong")),
            Verdict::Status(401),
        ),
        (
            "unknown user",
            Some(&pki.client),
            Some(("mallory", "correct horse")),
            Verdict::Status(401),
        ),
        ("no password", Some(&pki.client), None, Verdict::Status(401)),
        (
            "no client certificate",
            None,
            Some(("alice", "correct horse")),
            Verdict::Refused,
        ),
        (
            "a client certificate no CA signed",
            Some(&pki.rogue_client),
            Some(("alice", "correct horse")),
            Verdict::Refused,
        ),
    ];
    for (what, identity, credentials, want) in cases {
        for (who, port) in [
            ("ipfs-sentinel", sentinel_port.as_str()),
            ("node_exporter", &exporter_port.to_string()),
        ] {
            let got = ask(
                &format!("https://127.0.0.1:{port}/metrics"),
                &pki.ca,
                identity,
                credentials,
            )
            .await;
            assert_eq!(got, want, "{who}, {what}");
        }
    }
    // Twice more with the right password: served from the cache of successful checks.
    for _ in 0..2 {
        assert_eq!(
            ask(
                &format!("https://127.0.0.1:{sentinel_port}/metrics"),
                &pki.ca,
                Some(&pki.client),
                Some(("alice", "correct horse"))
            )
            .await,
            Verdict::Status(200)
        );
    }
    // The configured headers are on every answer, refusals included.
    let client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca.as_bytes()).unwrap())
        .identity(reqwest::Identity::from_pem(pki.client.as_bytes()).unwrap())
        .build()
        .unwrap();
    for credentials in [Some("correct horse"), None] {
        let mut request = client.get(format!("https://127.0.0.1:{sentinel_port}/-/healthy"));
        if let Some(p) = credentials {
            request = request.basic_auth("alice", Some(p));
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["x-frame-options"], "deny");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    // Plain HTTP to the TLS port gets nothing.
    let plain = support::http()
        .get(format!("http://127.0.0.1:{sentinel_port}/metrics"))
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP is not served on a TLS port"
    );
    let log = sentinel.process.log();
    assert!(
        !log.contains("correct horse"),
        "the password never reaches the log:\n{log}"
    );
    assert!(
        log.contains("request refused") && log.contains("peer=127.0.0.1:"),
        "refusals are logged with the peer's address:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's prometheus-node-exporter; run by scripts/test-all.sh"]
async fn each_client_auth_type_means_what_it_means_to_node_exporter() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    write_pki(&pki, dir.path());
    use Verdict::{Refused, Status};
    // Verdicts for: no client certificate, one the CA signed, a self-signed one.
    let table = [
        (
            "NoClientCert",
            false,
            [Status(200), Status(200), Status(200)],
        ),
        (
            "RequestClientCert",
            false,
            [Status(200), Status(200), Status(200)],
        ),
        (
            "RequireAnyClientCert",
            false,
            [Refused, Status(200), Status(200)],
        ),
        (
            "VerifyClientCertIfGiven",
            true,
            [Status(200), Status(200), Refused],
        ),
        (
            "RequireAndVerifyClientCert",
            true,
            [Refused, Status(200), Refused],
        ),
    ];
    for (policy, with_ca, want) in table {
        let web_config = dir.path().join(format!("{policy}.yml"));
        std::fs::write(
            &web_config,
            format!(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: {policy}\n{}",
                if with_ca { "  client_ca_file: ca.crt\n" } else { "" }
            ),
        )
        .unwrap();
        let sentinel = sentinel_with_web_config(&web_config, &[]).await;
        let sentinel_port: u16 = sentinel.url.rsplit(':').next().unwrap().parse().unwrap();
        let (_exporter, exporter_port) = node_exporter(&web_config, dir.path()).await;
        let clients = [
            None,
            Some(pki.client.as_str()),
            Some(pki.rogue_client.as_str()),
        ];
        for (identity, want) in clients.into_iter().zip(want) {
            for (who, port) in [
                ("ipfs-sentinel", sentinel_port),
                ("node_exporter", exporter_port),
            ] {
                let got = ask(
                    &format!("https://127.0.0.1:{port}/-/healthy"),
                    &pki.ca,
                    identity,
                    None,
                )
                .await;
                let got = match (who, got) {
                    // node_exporter has no /-/healthy: any HTTP answer means the handshake passed.
                    ("node_exporter", Status(_)) => Status(200),
                    (_, v) => v,
                };
                assert_eq!(got, want, "{who}, {policy}, client {identity:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's prometheus-node-exporter; run by scripts/test-all.sh"]
async fn client_allowed_sans_admits_verified_clients_with_a_listed_name_only() {
    // node_exporter 1.5.0 carries exporter-toolkit 0.8, which predates client_allowed_sans
    // (0.10) and refuses a file naming it, so the verdicts with the list are the sentinel's
    // against exporter-toolkit's source (web/tls_config.go: after Go's own verification, one
    // of the certificate's DNS, e-mail, IP or URI names must equal an entry). What can be
    // compared is: on the same file without the list both give every client the same verdict,
    // every CA-signed one served; so each refusal with the list comes from the list alone.
    use rcgen::SanType;
    use Verdict::{Refused, Status};
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    write_pki(&pki, dir.path());
    let ia5 = |s: &str| rcgen::string::Ia5String::try_from(s).unwrap();
    // (the client's names, its certificate, whether the CA signed it, the verdict with the list)
    let clients: Vec<(&str, Option<String>, bool, Verdict)> = vec![
        (
            "a listed DNS name",
            Some(pki.client.clone()),
            true,
            Status(200),
        ),
        (
            "a listed e-mail address",
            Some(pki.client_with(vec![SanType::Rfc822Name(ia5("scraper@example.test"))])),
            true,
            Status(200),
        ),
        (
            "a listed IP address",
            Some(pki.client_with(vec![SanType::IpAddress("192.0.2.7".parse().unwrap())])),
            true,
            Status(200),
        ),
        (
            "a listed URI among others",
            Some(pki.client_with(vec![
                SanType::DnsName(ia5("unlisted.test")),
                SanType::URI(ia5("spiffe://example.test/scraper")),
            ])),
            true,
            Status(200),
        ),
        (
            "another DNS name",
            Some(pki.client_with(vec![SanType::DnsName(ia5("other.test"))])),
            true,
            Refused,
        ),
        (
            "a listed name differing in case",
            Some(pki.client_with(vec![SanType::DnsName(ia5("Client.Test"))])),
            true,
            Refused,
        ),
        (
            "a listed name, self-signed",
            Some(pki.rogue_client.clone()),
            false,
            Refused,
        ),
        ("no certificate", None, false, Refused),
    ];
    let base = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n";

    let without_list = dir.path().join("without-list.yml");
    std::fs::write(&without_list, base).unwrap();
    let sentinel = sentinel_with_web_config(&without_list, &[]).await;
    let sentinel_port: u16 = sentinel.url.rsplit(':').next().unwrap().parse().unwrap();
    let (_exporter, exporter_port) = node_exporter(&without_list, dir.path()).await;
    for (what, identity, signed, _) in &clients {
        let want = if *signed { Status(200) } else { Refused };
        for (who, port) in [
            ("ipfs-sentinel", sentinel_port),
            ("node_exporter", exporter_port),
        ] {
            let got = ask(
                &format!("https://127.0.0.1:{port}/metrics"),
                &pki.ca,
                identity.as_deref(),
                None,
            )
            .await;
            assert_eq!(
                got, want,
                "{who}, no client_allowed_sans, client with {what}"
            );
        }
    }
    drop(sentinel);

    let with_list = dir.path().join("with-list.yml");
    std::fs::write(
        &with_list,
        format!("{base}  client_allowed_sans:\n    - client.test\n    - scraper@example.test\n    - 192.0.2.7\n    - spiffe://example.test/scraper\n"),
    )
    .unwrap();
    let refused = Command::new("timeout")
        .arg("60")
        .arg("prometheus-node-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .arg(format!("--web.config.file={}", with_list.display()))
        .arg("--collector.disable-defaults")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        refused.status.code() == Some(1) && said.contains("client_allowed_sans"),
        "node_exporter 1.5.0 refuses client_allowed_sans; if it now serves, compare its verdicts here: {:?} {said}",
        refused.status
    );
    let sentinel = sentinel_with_web_config(&with_list, &[]).await;
    for (what, identity, _, want) in &clients {
        let got = ask(
            &format!("{}/metrics", sentinel.url.replace("http:", "https:")),
            &pki.ca,
            identity.as_deref(),
            None,
        )
        .await;
        assert_eq!(
            got, *want,
            "ipfs-sentinel, client_allowed_sans, client with {what}"
        );
    }
    let log = sentinel.process.log();
    assert!(
        log.contains("TLS handshake failed")
            && log.contains("no subject alternative name of the client certificate is in client_allowed_sans (it has: other.test)"),
        "a refusal names what the certificate has:\n{log}"
    );
}

#[test]
fn a_wrong_web_config_names_the_file_line_and_key() {
    let (dir, path) = temp_file(
        "web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n",
    );
    let pki = pki();
    write_pki(&pki, dir.path());
    let (code, _, stderr) = support::cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
        "--web.config.file",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:4: tls_server_config.client_ca_file",
            path.display()
        )),
        "{stderr}"
    );
    std::fs::write(&path, "basic_auth_users:\n  alice: not-a-hash\n").unwrap();
    let (code, _, stderr) = support::cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
        "--web.config.file",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("{}:2: basic_auth_users.alice", path.display()))
            && stderr.contains("htpasswd"),
        "{stderr}"
    );
    std::fs::write(&path, "tls_server_config:\n  cert_flie: x\n").unwrap();
    let (_, _, stderr) = support::cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--web.config.file",
        path.to_str().unwrap(),
    ]);
    assert!(
        stderr.contains(&format!("{}:2:", path.display())) && stderr.contains("cert_flie"),
        "{stderr}"
    );
}

const TOKEN: &str = "7f1c0e9a5b2d48e6a3c1f0b9d8e7a6c5";

/// POSTs `/-/reload` with `token` as the bearer token (none when None).
async fn reload(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = support::http().post(format!("{url}/-/reload"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    request.send().await.unwrap()
}

async fn rule_names(url: &str) -> Vec<String> {
    let rules = support::get_json(&format!("{url}/api/v1/rules"), &[]).await;
    rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn state_changing_endpoints_need_the_token_and_never_show_it() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let data = dir.path().join("data");
    let config = "cluster:\n  monitoring:\n    collection_interval_seconds: 1\n";
    let sentinel = Sentinel::start_with(
        free_port(),
        config,
        &data,
        dir,
        &["--web.token-file", token_file.to_str().unwrap()],
        &[],
        true,
    )
    .await;
    let url = sentinel.url.clone();
    // A new alert in the file: only a reload that gets through shows it.
    std::fs::write(
        sentinel.dir.path().join("sentinel.yaml"),
        format!("{config}    alerts:\n      - name: DiskAlmostFull\n        metric: node.disk_usage_percent\n        operator: \">\"\n        threshold: 90\n        severity: critical\n"),
    )
    .unwrap();

    for (token, reason) in [
        (None, "no bearer token"),
        (Some("wrong-token-wrong-token"), "wrong bearer token"),
    ] {
        let response = reload(&url, token).await;
        assert_eq!(response.status(), 401, "{reason}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{reason}"
        );
        assert!(
            !rule_names(&url)
                .await
                .contains(&"DiskAlmostFull".to_owned()),
            "a refused reload changes nothing ({reason})"
        );
    }
    let response = reload(&url, Some(TOKEN)).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert!(rule_names(&url)
        .await
        .contains(&"DiskAlmostFull".to_owned()));

    let metrics = sentinel
        .metrics_until("the 401s to be counted", |b| {
            sample(b, "ipfs_sentinel_http_unauthorized_requests_total", &[]) == Some(2.0)
        })
        .await;
    let status = support::get_text(&format!("{url}/api/v1/status"))
        .await
        .unwrap();
    let log = sentinel.process.log();
    for (what, text) in [
        ("log", &log),
        ("/metrics", &metrics),
        ("/api/v1/status", &status),
    ] {
        assert!(!text.contains(TOKEN), "the token never shows in the {what}");
    }
    assert!(
        !log.contains("wrong-token-wrong-token"),
        "nor a wrong one, in the log:\n{log}"
    );
    for reason in ["no bearer token", "wrong bearer token"] {
        assert!(
            log.lines().any(|l| l.contains("request refused")
                && l.contains(reason)
                && l.contains("peer=127.0.0.1:")
                && l.contains("/-/reload")),
            "the refusal ({reason}) is logged with the peer's address:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_reload_needs_its_switch_and_the_token_file_comes_from_the_environment() {
    let sentinel = Sentinel::start("").await;
    assert_eq!(reload(&sentinel.url, None).await.status(), 403);

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ipfs-sentinel"));
    command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env("IPFS_SENTINEL_WEB_TOKEN_FILE", &token_file);
    let mut process = Process::spawn("ipfs-sentinel", command, &dir.path().join("log"));
    let url = format!("http://127.0.0.1:{port}");
    let healthy = format!("{url}/-/healthy");
    eventually("the sentinel to answer", || {
        process.assert_running();
        support::get_text(&healthy)
    })
    .await;
    assert_eq!(reload(&url, None).await.status(), 401);
    assert_eq!(reload(&url, Some(TOKEN)).await.status(), 200);

    std::fs::write(&token_file, "short").unwrap();
    let (code, _, stderr) = support::cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--web.token-file",
        token_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("openssl rand -hex 32") && !stderr.contains("short\n"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's prometheus-node-exporter; run by scripts/test-all.sh"]
async fn a_rotated_certificate_and_new_users_serve_without_a_restart_as_with_node_exporter() {
    use Verdict::{Refused, Status};
    let (old, new) = (pki(), pki());
    let dir = tempfile::tempdir().unwrap();
    write_pki(&old, dir.path());
    let web_config = dir.path().join("web.yml");
    let write_users = |user: &str, password: &str| {
        let hash = bcrypt::hash(password, 4).unwrap();
        std::fs::write(
            &web_config,
            format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  {user}: {hash}\n"),
        )
        .unwrap();
    };
    write_users("alice", "a");
    // Collections every second, so the reload metric shows soon.
    let sentinel = Sentinel::start_with(
        free_port(),
        "cluster:\n  monitoring:\n    collection_interval_seconds: 1\n",
        &dir.path().join("data"),
        tempfile::tempdir().unwrap(),
        &["--web.config.file", web_config.to_str().unwrap()],
        &[],
        false,
    )
    .await;
    let sentinel_port = sentinel.url.rsplit(':').next().unwrap().to_owned();
    let (_exporter, exporter_port) = node_exporter(&web_config, dir.path()).await;
    let servers = [
        ("ipfs-sentinel", sentinel_port),
        ("node_exporter", exporter_port.to_string()),
    ];
    let url = |port: &str| format!("https://127.0.0.1:{port}/metrics");
    for (who, port) in &servers {
        let got = ask(&url(port), &old.ca, None, Some(("alice", "a"))).await;
        assert_eq!(got, Status(200), "{who} before the rotation");
    }

    // Certbot's renewal and a user change, with no restart and no signal.
    write_pki(&new, dir.path());
    write_users("bob", "b");
    for (who, port) in &servers {
        eventually(
            &format!("{who} to serve the new certificate and user"),
            || {
                let url = url(port);
                let ca = new.ca.clone();
                async move {
                    (ask(&url, &ca, None, Some(("bob", "b"))).await == Status(200)).then_some(())
                }
            },
        )
        .await;
        let alice = ask(&url(port), &new.ca, None, Some(("alice", "a"))).await;
        assert_eq!(alice, Status(401), "{who}: the removed user");
        let old_ca = ask(&url(port), &old.ca, None, Some(("bob", "b"))).await;
        assert_eq!(old_ca, Refused, "{who}: the old certificate is gone");
    }

    // A broken file: the sentinel keeps serving the last good one and says where it broke.
    std::fs::write(&web_config, "basic_auth_users:\n  carol: not-a-hash\n").unwrap();
    let metrics = format!("https://127.0.0.1:{}/metrics", servers[0].1);
    eventually("the failed reload to show", || {
        let metrics = metrics.clone();
        let ca = new.ca.clone();
        async move {
            let client = reqwest::Client::builder()
                .no_proxy()
                .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
                .build()
                .unwrap();
            let body = client
                .get(&metrics)
                .basic_auth("bob", Some("b"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (sample(
                &body,
                "ipfs_sentinel_web_config_last_reload_successful",
                &[],
            ) == Some(0.0))
            .then_some(())
        }
    })
    .await;
    let still = ask(&metrics, &new.ca, None, Some(("bob", "b"))).await;
    assert_eq!(still, Status(200), "the last good configuration serves");
    let log = sentinel.process.log();
    assert!(
        log.contains(&format!(
            "{}:2: basic_auth_users.carol",
            web_config.display()
        )),
        "{log}"
    );
}
