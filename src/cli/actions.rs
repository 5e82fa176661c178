//! `ipfs-sentinel actions approve|reject|circuit-reset`: an operator's answers to a running
//! sentinel, over its API (`POST /api/v1/actions/runs/ID/approve`, `.../reject`,
//! `POST /api/v1/actions/circuit/reset`).
//!
//! Owns the command side only: the dispatcher decides what an answer does. The web token is
//! read from a file (`--token-file`, or `IPFS_SENTINEL_WEB_TOKEN_FILE` as `serve` reads it),
//! never from the command line, and never printed.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// What to ask the sentinel.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Approve proposal ID.
    Approve(String),
    /// Reject proposal ID.
    Reject(String),
    /// Close the circuit breaker.
    ResetCircuit,
}

/// One `actions` command.
#[derive(Debug)]
pub struct Request {
    /// What to ask.
    pub answer: Answer,
    /// The sentinel, e.g. `http://127.0.0.1:9401`.
    pub url: String,
    /// The file holding the web token.
    pub token_file: PathBuf,
    /// The name recorded in the audit as the approver.
    pub by: Option<String>,
}

/// Reads the token as `serve` does: the file's first line, trimmed.
fn read_token(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the web token file {}; pass --token-file FILE (the file given to serve's --web.token-file)",
            path.display()
        )
    })?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    anyhow::ensure!(
        !token.is_empty(),
        "the web token file {} is empty",
        path.display()
    );
    Ok(token)
}

/// Sends the answer; prints what the sentinel said.
pub fn run(request: Request) -> anyhow::Result<()> {
    let token = read_token(&request.token_file)?;
    let base = request.url.trim_end_matches('/');
    let endpoint = match &request.answer {
        Answer::Approve(id) => format!("{base}/api/v1/actions/runs/{}/approve", encode(id)),
        Answer::Reject(id) => format!("{base}/api/v1/actions/runs/{}/reject", encode(id)),
        Answer::ResetCircuit => format!("{base}/api/v1/actions/circuit/reset"),
    };
    let (runtime, client) = super::http_client()?;
    let by: Vec<(&str, &str)> = request.by.iter().map(|b| ("by", b.as_str())).collect();
    let body = runtime.block_on(async {
        let response = client
            .post(&endpoint)
            .bearer_auth(&token)
            .query(&by)
            .send()
            .await
            .with_context(|| format!("cannot reach {endpoint}; is the sentinel running there?"))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        anyhow::ensure!(
            status.is_success(),
            "{endpoint}: HTTP {status}: {}",
            body.trim()
        );
        Ok(body)
    })?;
    let answer: serde_json::Value =
        serde_json::from_str(&body).with_context(|| format!("{endpoint}: not JSON: {body}"))?;
    let data = &answer["data"];
    match &request.answer {
        Answer::ResetCircuit => println!(
            "circuit breaker reset ({})",
            if data["was_open"] == true {
                "it was open"
            } else {
                "it was closed already"
            }
        ),
        _ => println!(
            "{} {} ({} for {}): {}",
            data["decision"].as_str().unwrap_or(""),
            data["proposal"]["id"].as_str().unwrap_or(""),
            data["proposal"]["action"].as_str().unwrap_or(""),
            data["proposal"]["node_id"].as_str().unwrap_or(""),
            data["proposal"]["would_run"].as_str().unwrap_or("")
        ),
    }
    Ok(())
}

/// Percent-encodes a path segment.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
