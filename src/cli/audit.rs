//! `actions audit verify` and `actions audit export` (their clap types and what they do): the
//! recovery actions' audit log read straight from a data dir (`<data dir>/actions/audit/`),
//! touching nothing.
//!
//! `verify` walks the hash chain across files and prints a one-line summary (exit 0) or the
//! first record changed, removed or out of order (exit 1); `export` writes the verified records
//! as a JSON array or CSV with a header. Both show a progress bar on standard error when it is a
//! terminal. Owns the commands and the export's formats; the chain is
//! `actions::audit::chain`'s.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{json, Value};

use ipfs_sentinel::actions::audit::chain::{self, ChainError, Content, Entry, Summary, Visit};
use ipfs_sentinel::actions::audit::DIR;
use ipfs_sentinel::clock::{parse_rfc3339, parse_time};

/// Exit status when the chain is broken.
const BROKEN: u8 = 1;
/// Exit status for bad input or an unreadable data dir.
const BAD_INPUT: u8 = 2;

/// `actions audit ...`: the subcommands, parsed by clap in `main.rs`.
#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain across files: exit 0 with a summary and the head hash, or 1 naming
    /// the first record changed, removed or out of order (file, line, seq, what is wrong).
    Verify {
        /// The data dir (default: the serve default).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// A head hash kept elsewhere earlier (verify's summary, the
        /// ipfs_sentinel_actions_audit_head_info metric): the chain must still hold it, which
        /// catches a log cut short or rewritten from the start.
        #[arg(long, value_name = "HASH")]
        head: Option<String>,
    },
    /// Write the records, after verifying the chain, to standard output: a JSON array, or CSV
    /// with a header (a column per record field).
    Export {
        /// json or csv.
        #[arg(long, value_parser = ["json", "csv"])]
        format: String,
        /// The data dir (default: the serve default).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Only records appended at or after this time (RFC 3339 or Unix seconds).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
    },
}

/// Runs an `actions audit` subcommand; its exit status.
pub fn run(command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify { data_dir, head } => verify(VerifyRequest { data_dir, head }),
        AuditCommand::Export {
            format,
            data_dir,
            since,
        } => export(ExportRequest {
            format,
            data_dir,
            since,
        }),
    }
}

/// What `verify` checks.
pub struct VerifyRequest {
    /// The data dir (default: the serve default).
    pub data_dir: Option<PathBuf>,
    /// A head hash kept elsewhere earlier, which the chain must still hold.
    pub head: Option<String>,
}

/// What `export` writes.
pub struct ExportRequest {
    /// `json` or `csv`.
    pub format: String,
    /// The data dir (default: the serve default).
    pub data_dir: Option<PathBuf>,
    /// Only records appended at or after this time (RFC 3339 or Unix seconds).
    pub since: Option<String>,
}

/// A command's failure and its exit status.
struct Failure {
    status: u8,
    message: String,
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure {
            status: BAD_INPUT,
            message: format!("{e:#}"),
        }
    }
}

fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("ipfs-sentinel: {}", f.message);
            ExitCode::from(f.status)
        }
    }
}

/// The log's folder under `data_dir`, which must exist.
fn audit_dir(data_dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let data_dir = match data_dir {
        Some(dir) => dir,
        None => super::default_data_dir()?,
    };
    let dir = data_dir.join("actions").join(DIR);
    anyhow::ensure!(
        dir.is_dir(),
        "{} holds no audit log (no {}); pass the --data-dir the sentinel writes to",
        data_dir.display(),
        dir.display()
    );
    Ok(dir)
}

/// A progress bar over `dir`'s bytes, drawn only when standard error is a terminal.
fn progress(dir: &std::path::Path, what: &str) -> anyhow::Result<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return Ok(indicatif::ProgressBar::hidden());
    }
    let mut total = 0;
    for (_, path) in chain::list_files(dir)? {
        total += std::fs::metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{bytes}}/{{total_bytes}} {{elapsed}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Ok(bar)
}

/// The chain walked once, `visit` called on each record; a break is a [`BROKEN`] failure.
fn walk(
    dir: &std::path::Path,
    bar: &indicatif::ProgressBar,
    visit: &mut dyn FnMut(Visit<'_>),
) -> Result<Summary, Failure> {
    let result = chain::walk(dir, &mut |v, bytes| {
        bar.set_position(bytes);
        visit(v);
    });
    bar.finish_and_clear();
    result.map_err(|e| match e {
        ChainError::Broken(b) => Failure {
            status: BROKEN,
            message: format!("audit chain broken in {}: {b}", dir.display()),
        },
        e => Failure {
            status: BAD_INPUT,
            message: e.to_string(),
        },
    })
}

/// 12345 as `12,345`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", grouped(n), if n == 1 { one } else { many })
}

/// `actions audit verify`: exit 0 and a summary, or 1 and the first broken record.
pub fn verify(request: VerifyRequest) -> ExitCode {
    finish(run_verify(request))
}

fn run_verify(request: VerifyRequest) -> Result<(), Failure> {
    let dir = audit_dir(request.data_dir)?;
    let bar = progress(&dir, "verifying")?;
    let mut head_found: Option<(u64, String, u64)> = None;
    let summary = walk(&dir, &bar, &mut |v| {
        if request.head.as_deref() == Some(v.entry.hash.as_str()) {
            head_found = Some((v.entry.seq, v.file.to_owned(), v.line));
        }
    })?;
    let mut line = format!(
        "{} in {}, chain intact; head seq {} hash {}",
        plural(summary.records, "record", "records"),
        plural(summary.files as u64, "file", "files"),
        summary.head_seq,
        summary.head_hash
    );
    if summary.first_seq > 1 {
        line.push_str(&format!(
            "; starts at seq {} (older files removed by rotation)",
            summary.first_seq
        ));
    }
    for torn in &summary.torn {
        line.push_str(&format!(
            "; a crash tore {} line {} ({} bytes), recorded in the chain",
            torn.file, torn.line, torn.bytes
        ));
    }
    if let Some(head) = &request.head {
        match head_found {
            Some((seq, file, at)) => line.push_str(&format!(
                "; the head given is seq {seq} ({file} line {at}), {} appended since",
                plural(summary.head_seq - seq, "record", "records")
            )),
            None => {
                return Err(Failure {
                    status: BROKEN,
                    message: format!(
                        "audit chain in {} does not hold the head given ({head}): records after \
                         it were removed, or the chain was rewritten ({line})",
                        dir.display()
                    ),
                })
            }
        }
    }
    println!("{line}");
    Ok(())
}

/// `actions audit export`: the verified records on standard output.
pub fn export(request: ExportRequest) -> ExitCode {
    finish(run_export(request))
}

fn run_export(request: ExportRequest) -> Result<(), Failure> {
    let csv = match request.format.as_str() {
        "csv" => true,
        "json" => false,
        other => {
            return Err(anyhow::anyhow!("--format {other}: use json or csv").into());
        }
    };
    let since =
        match &request.since {
            Some(text) => Some(parse_time(text).map_err(|e| {
                anyhow::anyhow!("--since {text}: {e}; give RFC 3339 or Unix seconds")
            })?),
            None => None,
        };
    let dir = audit_dir(request.data_dir)?;
    // The first walk checks the whole chain before anything is written, and gathers the CSV
    // columns: every key any record has, so fields added to records later get their column.
    let mut keys = BTreeSet::new();
    walk(&dir, &progress(&dir, "verifying")?, &mut |v| {
        if let Content::Record(Value::Object(map)) = &v.entry.content {
            keys.extend(map.keys().cloned());
        }
    })?;
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut sink = if csv {
        let mut writer = csv::Writer::from_writer(out);
        let header = ["seq", "time", "hash", "prev", "kind", "note"]
            .into_iter()
            .map(str::to_owned)
            .chain(keys.iter().cloned());
        writer
            .write_record(header)
            .context("cannot write the CSV header")?;
        Sink::Csv(Box::new(writer))
    } else {
        let mut out = out;
        out.write_all(b"[").context("cannot write the export")?;
        Sink::Json { out, first: true }
    };
    let keys: Vec<String> = keys.into_iter().collect();
    let mut written: anyhow::Result<()> = Ok(());
    walk(&dir, &progress(&dir, "exporting")?, &mut |v| {
        let before = since.is_some_and(|s| parse_rfc3339(&v.entry.time).unwrap_or(0) < s);
        if written.is_ok() && !before {
            written = sink.write(v.entry, &keys);
        }
    })?;
    written?;
    sink.finish()?;
    Ok(())
}

/// Where the export goes, in its format.
enum Sink {
    /// A CSV writer, its header written.
    Csv(Box<csv::Writer<std::io::BufWriter<std::io::StdoutLock<'static>>>>),
    /// A JSON array, its `[` written.
    Json {
        out: std::io::BufWriter<std::io::StdoutLock<'static>>,
        first: bool,
    },
}

impl Sink {
    fn write(&mut self, entry: &Entry, keys: &[String]) -> anyhow::Result<()> {
        match self {
            Sink::Csv(writer) => writer
                .write_record(csv_row(entry, keys))
                .context("cannot write the export"),
            Sink::Json { out, first } => {
                out.write_all(if *first { b"\n" } else { b",\n" })
                    .context("cannot write the export")?;
                *first = false;
                serde_json::to_writer(&mut *out, &json_item(entry))
                    .context("cannot write the export")
            }
        }
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Sink::Csv(mut writer) => writer.flush(),
            Sink::Json { mut out, .. } => out.write_all(b"\n]\n").and_then(|()| out.flush()),
        }
        .context("cannot write the export")
    }
}

/// One record as an element of the JSON array.
fn json_item(entry: &Entry) -> Value {
    let mut item = json!({
        "seq": entry.seq,
        "time": entry.time,
        "hash": entry.hash,
        "prev": entry.prev,
    });
    match &entry.content {
        Content::Record(record) => item["record"] = record.clone(),
        Content::TornTail(torn) => item["torn_tail"] = json!(torn),
    }
    item
}

/// One record as a CSV row: the chain fields, then each record key's value (text as it is,
/// anything else as JSON, missing as empty).
fn csv_row(entry: &Entry, keys: &[String]) -> Vec<String> {
    let (kind, note, record) = match &entry.content {
        Content::Record(Value::Object(map)) => ("record", String::new(), Some(map)),
        Content::Record(other) => ("record", other.to_string(), None),
        Content::TornTail(torn) => (
            "torn_tail",
            format!(
                "a crash tore {} line {} ({} bytes)",
                torn.file, torn.line, torn.bytes
            ),
            None,
        ),
    };
    let mut row = vec![
        entry.seq.to_string(),
        entry.time.clone(),
        entry.hash.clone(),
        entry.prev.clone(),
        kind.to_owned(),
        note,
    ];
    for key in keys {
        row.push(match record.and_then(|m| m.get(key)) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        });
    }
    row
}
