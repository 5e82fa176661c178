//! Sends one JSON body to an HTTP endpoint for a recovery action: the `webhook` kind (with
//! its headers and bearer token file) and Alertmanager's API. A 2xx answer is success;
//! anything else, or no answer within the client's timeout, is a failure to retry.
//!
//! Owns the HTTP exchange; what is sent is [`super::payload`]'s. The token is read from its
//! file at each send (so it can be rotated) and never logged.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::clients::describe_transport_error;
use crate::config::read_secret;

/// What one POST came to.
#[derive(Debug, Clone)]
pub struct Posted {
    /// A 2xx answer.
    pub ok: bool,
    /// The status and the start of the answer, or why there was none.
    pub output: String,
    /// How long it took.
    pub duration: Duration,
}

/// Answer bytes kept for the audit log.
const ANSWER_KEPT: usize = 512;

/// POSTs `body` as JSON to `url` with `headers` and, if given, the bearer token held in
/// `token_file`.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    headers: &BTreeMap<String, String>,
    token_file: Option<&str>,
    body: &Value,
) -> Posted {
    let started = Instant::now();
    let failed = |output: String| Posted {
        ok: false,
        output,
        duration: started.elapsed(),
    };
    let mut request = client.post(url).json(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if let Some(file) = token_file {
        match read_secret(Path::new(file), "bearer_token_file") {
            Ok(token) => request = request.bearer_auth(token),
            Err(e) => return failed(e),
        }
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            Posted {
                ok: status.is_success(),
                output: format!(
                    "{url}: HTTP {status} {}",
                    bounded(&text, ANSWER_KEPT).trim()
                )
                .trim_end()
                .to_owned(),
                duration: started.elapsed(),
            }
        }
        Err(e) => failed(format!(
            "{url}: {}",
            describe_transport_error(&e, "the receiver")
        )),
    }
}

/// The longest start of `text` that is at most `max` bytes and ends on a character boundary.
pub fn bounded(text: &str, max: usize) -> &str {
    let mut cut = text.len().min(max);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}
