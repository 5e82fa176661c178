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

use serde_json::json;

use super::{BuiltinError, BuiltinItemFailed, BuiltinReport};
use crate::clients::kubo::{GcLine, KuboClient};
use crate::clients::ClientError;

/// Removed CIDs (and error messages) kept in the report; the counts cover them all.
pub const SAMPLE: usize = 100;

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
    /// Counts one line of the stream.
    pub fn add(&mut self, line: GcLine) {
        match line {
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
    let kubo = KuboClient::with_http(client.clone(), kubo_api_url.clone());
    let before = kubo.repo_stat(true).await?.repo_size;
    let mut sweep = kubo.repo_gc().await?;
    let mut tally = GcTally::default();
    let mut cut_off = None;
    loop {
        match sweep.next_lines().await {
            Ok(Some(lines)) => lines.into_iter().for_each(|line| tally.add(line)),
            Ok(None) => break,
            Err(e @ ClientError::Unreachable { .. }) => {
                cut_off = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let after = kubo.repo_stat(true).await?.repo_size;
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
    use super::*;
    use crate::clients::kubo::parse_gc_line;
    use crate::clients::ndjson_lines;

    /// Counts the lines of a stream as [`run_gc`] does.
    fn tally(body: &[u8]) -> GcTally {
        let mut tally = GcTally::default();
        for line in ndjson_lines(body) {
            tally.add(parse_gc_line(line).unwrap());
        }
        tally
    }

    #[test]
    fn a_tally_counts_everything_and_samples_the_start() {
        let mut body = String::from("\n");
        for i in 0..(SAMPLE + 5) {
            body.push_str(&format!("{{\"Key\":{{\"/\":\"bafk{i}\"}}}}\n\n"));
        }
        body.push_str("{\"Error\":\"block in use\"}\n");
        let tally = tally(body.as_bytes());
        assert_eq!(tally.removed, (SAMPLE + 5) as u64);
        assert_eq!(tally.removed_sample.len(), SAMPLE);
        assert_eq!(tally.removed_sample[0], "bafk0");
        assert_eq!((tally.errors, tally.error_sample.len()), (1, 1));
    }

    #[test]
    fn reports_say_what_was_freed_and_what_failed() {
        let mut tally = tally(b"{\"Key\":{\"/\":\"bafk1\"}}\n{\"Key\":{\"/\":\"bafk2\"}}\n");
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

        tally.add(GcLine::Error("disk I/O".into()));
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
