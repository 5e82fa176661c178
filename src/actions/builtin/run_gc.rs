//! `run_gc`: Kubo RPC `repo/gc` on one node, with `repo/stat` before and after to report the
//! bytes freed.
//!
//! `repo/gc?stream-errors=true` answers one JSON object per removed block,
//! `{"Key":{"/":"<cid>"}}`, and, for a block it could not remove, `{"Error":"<message>"}`
//! (Kubo RPC reference, docs.ipfs.tech/reference/kubo/rpc, `/api/v0/repo/gc`; js-ipfs sends
//! the same objects with blank lines between them). The stream is read as it comes, so a GC of
//! millions of blocks keeps only counts and the first [`SAMPLE`] CIDs in memory.
//!
//! Success means the sweep ran to its end with no error line. Bytes freed is `RepoSize` before
//! minus after (never below 0: other writes may land meanwhile).

use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::{bad_kubo_answer, ndjson_lines, unreachable, BuiltinError, BuiltinItemFailed};
use super::{BuiltinReport, KuboApi};
use crate::collect::kubo::ParseError;

/// Removed CIDs (and error messages) kept in the report; the counts cover them all.
pub const SAMPLE: usize = 100;

/// One object of `repo/gc`'s stream.
#[derive(Debug, Clone, PartialEq)]
pub enum GcLine {
    /// A block removed, by CID.
    Removed(String),
    /// A block that could not be removed, or the sweep's own error.
    Error(String),
}

/// Reads one object of `repo/gc`'s stream. Accepts `Key` as `{"/": cid}` (Kubo, js-ipfs) or
/// a plain string (older js-ipfs), `Key: null` beside an `Error`, and Kubo's error object
/// (`{"Message": ..., "Type": "error"}`) sent when the sweep itself fails midway.
pub fn parse_gc_line(line: &[u8]) -> Result<GcLine, ParseError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Key {
        Link {
            #[serde(rename = "/")]
            cid: String,
        },
        Plain(String),
    }
    #[derive(Deserialize)]
    struct Object {
        #[serde(rename = "Key", default)]
        key: Option<Key>,
        #[serde(rename = "Error", default)]
        error: Option<String>,
        #[serde(rename = "Message", default)]
        message: Option<String>,
    }
    let object: Object = serde_json::from_slice(line).map_err(|e| ParseError {
        endpoint: "repo/gc",
        reason: e.to_string(),
    })?;
    if let Some(error) = object.error.filter(|e| !e.is_empty()) {
        return Ok(GcLine::Error(error));
    }
    match (object.key, object.message) {
        (Some(Key::Link { cid } | Key::Plain(cid)), _) => Ok(GcLine::Removed(cid)),
        (None, Some(message)) => Ok(GcLine::Error(message)),
        (None, None) => Err(ParseError {
            endpoint: "repo/gc",
            reason: format!(
                "an object with neither Key nor Error: {}",
                String::from_utf8_lossy(line)
            ),
        }),
    }
}

/// What a GC stream said, as it was read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GcTally {
    /// Blocks removed.
    pub removed: u64,
    /// The first [`SAMPLE`] removed CIDs.
    pub removed_sample: Vec<String>,
    /// Error lines.
    pub errors: u64,
    /// The first [`SAMPLE`] error messages.
    pub error_sample: Vec<String>,
}

impl GcTally {
    /// Counts the complete lines of `chunk`.
    pub fn add_lines(&mut self, chunk: &[u8]) -> Result<(), ParseError> {
        for line in ndjson_lines(chunk) {
            match parse_gc_line(line)? {
                GcLine::Removed(cid) => {
                    self.removed += 1;
                    if self.removed_sample.len() < SAMPLE {
                        self.removed_sample.push(cid);
                    }
                }
                GcLine::Error(message) => {
                    BuiltinItemFailed {
                        builtin: "run_gc",
                        item: "repo/gc",
                        error: &message,
                    }
                    .emit();
                    self.errors += 1;
                    if self.error_sample.len() < SAMPLE {
                        self.error_sample.push(message);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Runs a garbage collection on the node whose Kubo RPC API is at `kubo_api_url`.
///
/// Fails (`Err`) when the node cannot be reached or answers with an error before the sweep
/// starts. A sweep cut off midway (the client's timeout, a dropped connection) is a report
/// with `success: false` that still counts what was removed.
pub async fn run_gc(
    client: &reqwest::Client,
    kubo_api_url: &reqwest::Url,
) -> Result<BuiltinReport, BuiltinError> {
    let api = KuboApi {
        client,
        base: kubo_api_url,
    };
    let before = api.repo_size().await?;
    let (url, response) = api.post("repo/gc", &[("stream-errors", "true")]).await?;
    let mut tally = GcTally::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut body = response.bytes_stream();
    let mut cut_off = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => {
                pending.extend_from_slice(&chunk);
                if let Some(last_newline) = pending.iter().rposition(|b| *b == b'\n') {
                    let rest = pending.split_off(last_newline + 1);
                    tally
                        .add_lines(&pending)
                        .map_err(|e| bad_kubo_answer(&url, e))?;
                    pending = rest;
                }
            }
            Err(e) => {
                cut_off = Some(unreachable(&url, &e).to_string());
                break;
            }
        }
    }
    if cut_off.is_none() {
        tally
            .add_lines(&pending)
            .map_err(|e| bad_kubo_answer(&url, e))?;
    }
    let after = api.repo_size().await?;
    Ok(report(&tally, before, after, cut_off))
}

/// The report of one sweep: counts, sizes, samples.
fn report(tally: &GcTally, before: f64, after: f64, cut_off: Option<String>) -> BuiltinReport {
    let freed = (before - after).max(0.0) as u64;
    let mut summary = format!(
        "repo GC removed {} blocks and freed {freed} bytes (repo {} -> {} bytes)",
        tally.removed, before as u64, after as u64
    );
    if let Some(first) = tally.error_sample.first() {
        summary.push_str(&format!(
            "; {} blocks could not be removed (first: {first})",
            tally.errors
        ));
    }
    if let Some(reason) = &cut_off {
        summary.push_str(&format!("; the sweep was cut off: {reason}"));
    }
    BuiltinReport {
        success: tally.errors == 0 && cut_off.is_none(),
        summary,
        details: json!({
            "blocks_removed": tally.removed,
            "bytes_freed": freed,
            "repo_size_before_bytes": before as u64,
            "repo_size_after_bytes": after as u64,
            "removed_sample": tally.removed_sample,
            "errors": tally.errors,
            "error_sample": tally.error_sample,
            "cut_off": cut_off,
        }),
    }
}

#[cfg(test)]
mod tests {
    //! The objects are Kubo's documented `repo/gc` response (`{"Error": "<string>", "Key":
    //! {"/": "<cid-string>"}}`, docs.ipfs.tech/reference/kubo/rpc) as Kubo fills it in,
    //! and what js-ipfs 0.66 sends (seen from a real node: blank lines around each object).
    use super::*;

    #[test]
    fn kubo_and_js_ipfs_lines() {
        assert_eq!(
            parse_gc_line(
                br#"{"Key":{"/":"bafkreihqt7hbr4w56v6n5w3lpake2nfpstlcc3wcuak736ksynhq2d3s2u"}}"#
            )
            .unwrap(),
            GcLine::Removed("bafkreihqt7hbr4w56v6n5w3lpake2nfpstlcc3wcuak736ksynhq2d3s2u".into())
        );
        assert_eq!(
            parse_gc_line(br#"{"Key":null,"Error":"could not remove bafk...: permission denied"}"#)
                .unwrap(),
            GcLine::Error("could not remove bafk...: permission denied".into())
        );
        assert_eq!(
            parse_gc_line(br#"{"Key":{"/":"QmX"},"Error":""}"#).unwrap(),
            GcLine::Removed("QmX".into())
        );
        assert_eq!(
            parse_gc_line(br#"{"Key":"QmOld"}"#).unwrap(),
            GcLine::Removed("QmOld".into())
        );
        assert_eq!(
            parse_gc_line(br#"{"Message":"context canceled","Code":0,"Type":"error"}"#).unwrap(),
            GcLine::Error("context canceled".into())
        );
        let e = parse_gc_line(br#"{"Size":3}"#).unwrap_err();
        assert!(e.to_string().contains("neither Key nor Error"), "{e}");
        assert!(parse_gc_line(b"not json").is_err());
    }

    #[test]
    fn a_tally_counts_everything_and_samples_the_start() {
        let mut tally = GcTally::default();
        let mut body = String::from("\n");
        for i in 0..(SAMPLE + 5) {
            body.push_str(&format!("{{\"Key\":{{\"/\":\"bafk{i}\"}}}}\n\n"));
        }
        body.push_str("{\"Error\":\"block in use\"}\n");
        tally.add_lines(body.as_bytes()).unwrap();
        assert_eq!(tally.removed, (SAMPLE + 5) as u64);
        assert_eq!(tally.removed_sample.len(), SAMPLE);
        assert_eq!(tally.removed_sample[0], "bafk0");
        assert_eq!((tally.errors, tally.error_sample.len()), (1, 1));
    }

    #[test]
    fn reports_say_what_was_freed_and_what_failed() {
        let mut tally = GcTally::default();
        tally
            .add_lines(b"{\"Key\":{\"/\":\"bafk1\"}}\n{\"Key\":{\"/\":\"bafk2\"}}\n")
            .unwrap();
        let ok = report(&tally, 111_408.0, 11_472.0, None);
        assert!(ok.success);
        assert_eq!(
            ok.summary,
            "repo GC removed 2 blocks and freed 99936 bytes (repo 111408 -> 11472 bytes)"
        );
        assert_eq!(ok.details["bytes_freed"], 99_936);
        assert_eq!(ok.details["removed_sample"][1], "bafk2");

        let grew = report(&tally, 100.0, 250.0, None);
        assert_eq!(grew.details["bytes_freed"], 0, "never negative");

        tally.add_lines(b"{\"Error\":\"disk I/O\"}").unwrap();
        let cut = report(
            &tally,
            100.0,
            50.0,
            Some("no answer before the timeout".into()),
        );
        assert!(!cut.success);
        assert!(
            cut.summary.ends_with(
                "; 1 blocks could not be removed (first: disk I/O); the sweep was cut off: no answer before the timeout"
            ),
            "{}",
            cut.summary
        );
    }
}
