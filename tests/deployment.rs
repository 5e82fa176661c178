//! The deployment files, checked by the tools that will read them (no Docker engine runs
//! here, so the stack itself is not started): `docker-compose config` accepts
//! `docker-compose.yml`; its Prometheus configuration passes `promtool check config` and the
//! rules it loads `promtool check rules`; its Alertmanager configuration passes `amtool
//! check-config`; its sentinel configuration passes `ipfs-sentinel check-config`;
//! `systemd-analyze verify` accepts the systemd unit, without a warning; and the Dockerfile
//! builds in two stages from files that exist and runs as a non-root user.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::cli;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs a tool: (succeeded, stdout and stderr).
fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(repo(""))
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (the README's test command installs it)"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Where the token file is inside the containers, as the compose file mounts it.
const TOKEN_IN_CONTAINERS: &str = "/run/secrets/ipfs-sentinel/webhook-token";

#[test]
#[ignore = "needs Debian's docker-compose; the README's test command installs it"]
fn docker_compose_accepts_the_stack() {
    let (ok, said) = run("docker-compose", &["-f", "docker-compose.yml", "config"]);
    assert!(ok, "{said}");
    // The services the README promises, and the wiring between them.
    for service in [
        "kubo:",
        "ipfs-sentinel:",
        "prometheus:",
        "alertmanager:",
        "grafana:",
    ] {
        assert!(
            said.contains(&format!("\n  {service}\n")),
            "{service} in {said}"
        );
    }
    let compose = read("docker-compose.yml");
    assert!(compose.contains(&format!("--web.token-file={TOKEN_IN_CONTAINERS}")));
    assert!(compose.contains("./rules:/etc/prometheus/rules:ro"));
    assert!(compose.contains("./grafana/provisioning:/etc/grafana/provisioning:ro"));
    assert!(read("deploy/alertmanager.yml")
        .contains("url: http://ipfs-sentinel:9401/api/v1/alertmanager/webhook"));
    assert!(read("deploy/alertmanager.yml")
        .contains(&format!("credentials_file: {TOKEN_IN_CONTAINERS}")));
    // Every published port but Kubo's swarm stays on the host's loopback.
    for line in compose.lines().map(str::trim) {
        if let Some(port) = line.strip_prefix("- \"") {
            assert!(
                port.starts_with("127.0.0.1:") || port.starts_with("4001:"),
                "{line} is published beyond loopback"
            );
        }
    }
}

#[test]
#[ignore = "needs Debian's prometheus (promtool) and prometheus-alertmanager (amtool); the README's test command installs them"]
fn prometheus_alertmanager_and_sentinel_configs_pass_their_checkers() {
    // promtool checks the files a configuration names, so lay them out as the compose file
    // mounts them: the token file, and rules/ at /etc/prometheus/rules.
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("webhook-token");
    std::fs::write(&token, "t0ken").unwrap();
    let prometheus = read("deploy/prometheus.yml")
        .replace(TOKEN_IN_CONTAINERS, token.to_str().unwrap())
        .replace(
            "/etc/prometheus/rules/",
            &format!("{}/", repo("rules").display()),
        );
    assert!(prometheus.contains(&repo("rules").display().to_string()));
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, &prometheus).unwrap();
    let (ok, said) = run("promtool", &["check", "config", config.to_str().unwrap()]);
    assert!(ok, "{said}");
    let mut rule_files: Vec<String> = std::fs::read_dir(repo("rules"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".rules.yml"))
        .collect();
    rule_files.sort();
    assert!(
        said.contains(&format!("SUCCESS: {} rule files found", rule_files.len())),
        "{said}"
    );
    let mut args = vec!["check", "rules"];
    args.extend(rule_files.iter().map(String::as_str));
    let (ok, said) = run("promtool", &args);
    assert!(ok, "{said}");

    let alertmanager =
        read("deploy/alertmanager.yml").replace(TOKEN_IN_CONTAINERS, token.to_str().unwrap());
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(&config, alertmanager).unwrap();
    let (ok, said) = run("amtool", &["check-config", config.to_str().unwrap()]);
    assert!(ok && said.contains("SUCCESS"), "{said}");

    let (code, out, err) = cli(&[
        "check-config",
        repo("deploy/sentinel.yaml").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("IPFS API http://kubo:5001"), "{out}");
}

#[test]
fn systemd_accepts_the_hardened_unit() {
    let unit = read("packaging/ipfs-sentinel.service");
    for hardening in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=ipfs-sentinel",
        "NoNewPrivileges=yes",
        "--listen 127.0.0.1:9401",
        "--data-dir ${STATE_DIRECTORY}",
        "LoadCredential=webhook-token:",
    ] {
        assert!(unit.contains(hardening), "{hardening} missing");
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed: the unit was read, not verified");
        return;
    }
    // verify wants ExecStart's binary to exist: point it at the one just built.
    let dir = tempfile::tempdir().unwrap();
    let verify = |text: &str| {
        let path = dir.path().join("ipfs-sentinel.service");
        std::fs::write(&path, text).unwrap();
        run("systemd-analyze", &["verify", path.to_str().unwrap()])
    };
    let installed = unit.replace(
        "/usr/local/bin/ipfs-sentinel",
        env!("CARGO_BIN_EXE_ipfs-sentinel"),
    );
    let (ok, said) = verify(&installed);
    assert!(
        ok && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
    // A bad setting is reported: the check above can fail.
    let (_, said) = verify(&installed.replace("ProtectSystem=strict", "ProtectSystem=bogus"));
    assert!(said.contains("bogus"), "{said}");
}

#[test]
fn the_dockerfile_builds_in_two_stages_from_files_that_exist_and_runs_unprivileged() {
    let dockerfile = read("Dockerfile");
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(stages[0].ends_with(" AS build"));
    // Everything the build stage copies from the repository exists, and the runtime stage
    // takes only the binary.
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[1].starts_with("--from=") {
            assert_eq!(words[2], "/src/target/release/ipfs-sentinel");
            continue;
        }
        for source in &words[1..words.len() - 1] {
            assert!(repo(source).exists(), "{line}: {source} does not exist");
        }
    }
    let user = dockerfile
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    // The files the crate compiles in are copied before the build.
    for embedded in ["src", "templates"] {
        assert!(dockerfile.contains(&format!("COPY {embedded} {embedded}")));
    }
    assert!(!read(".dockerignore")
        .lines()
        .any(|l| l == "src" || l == "templates"));
}
