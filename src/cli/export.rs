//! `export`: the history as CSV or JSON, from a running sentinel (`GET /api/v1/export`,
//! streamed) or read from a data dir directly, touching nothing.
//!
//! Owns the command only: the formats are `history::export`'s, windows and selectors
//! `history::query`'s. Bad input exits with status 2, anything else that fails with 1.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use ipfs_sentinel::clock::system_ms;
use ipfs_sentinel::config::Config;
use ipfs_sentinel::history::export::{Export, Format};
use ipfs_sentinel::history::query::{Selector, WindowParams};

/// What to export, from where, to where.
pub struct Request {
    /// `csv` or `json`.
    pub format: String,
    /// A series selector (default: every series).
    pub selector: Option<String>,
    /// How far back from now.
    pub range: Option<String>,
    /// One point per step.
    pub step: Option<String>,
    /// The aggregation per step.
    pub function: Option<String>,
    /// The file to write (default: standard output).
    pub output: Option<PathBuf>,
    /// A running sentinel to read.
    pub url: Option<String>,
    /// The data dir to read (default: the serve default).
    pub data_dir: Option<PathBuf>,
    /// The configuration the data dir was written with.
    pub config: Option<PathBuf>,
}

/// Why an export failed.
enum Failure {
    /// The request itself is wrong: exit 2.
    BadInput(String),
    /// Reading or writing failed: exit 1.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Failed(e)
    }
}

/// Runs the export: exit 0, 2 for bad input, 1 for anything else.
pub fn run(request: Request) -> ExitCode {
    match export(request) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::BadInput(reason)) => {
            eprintln!("ipfs-sentinel export: {reason}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(e)) => {
            eprintln!("ipfs-sentinel export: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn export(request: Request) -> Result<(), Failure> {
    let mut out: Box<dyn Write> = match &request.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    match &request.url {
        Some(url) => from_url(&request, url, &mut out)?,
        None => from_data_dir(&request, &mut out)?,
    }
    out.flush().context("cannot write the export")?;
    Ok(())
}

fn from_url(request: &Request, url: &str, out: &mut dyn Write) -> Result<(), Failure> {
    let mut query: Vec<(&str, &str)> = vec![("format", &request.format)];
    for (key, value) in [
        ("match", &request.selector),
        ("range", &request.range),
        ("step", &request.step),
        ("fn", &request.function),
    ] {
        if let Some(v) = value {
            query.push((key, v));
        }
    }
    let endpoint = format!("{}/api/v1/export", url.trim_end_matches('/'));
    let (runtime, client) = super::http_client()?;
    runtime.block_on(async {
        let mut response = client
            .get(&endpoint)
            .query(&query)
            .send()
            .await
            .with_context(|| format!("cannot reach {endpoint}; is the sentinel running there?"))?;
        if response.status() == reqwest::StatusCode::BAD_REQUEST {
            let reason = response.text().await.unwrap_or_default();
            return Err(Failure::BadInput(reason.trim().to_owned()));
        }
        if !response.status().is_success() {
            return Err(anyhow::anyhow!("{endpoint}: HTTP {}", response.status()).into());
        }
        let progress = indicatif::ProgressBar::new_spinner();
        progress.set_message("exporting");
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("{endpoint}: the export was cut off"))?
        {
            out.write_all(&chunk).context("cannot write the export")?;
            progress.inc(chunk.len() as u64);
        }
        progress.finish_and_clear();
        Ok(())
    })
}

fn from_data_dir(request: &Request, out: &mut dyn Write) -> Result<(), Failure> {
    let config = match &request.config {
        Some(path) => Config::load(path).map_err(|e| Failure::BadInput(e.to_string()))?,
        None => Config::default(),
    };
    let data_dir = match &request.data_dir {
        Some(dir) => dir.clone(),
        None => super::default_data_dir()?,
    };
    if !data_dir.join("history").is_dir() {
        return Err(Failure::BadInput(format!(
            "{} holds no history; pass --data-dir, or --url to read a running sentinel",
            data_dir.display()
        )));
    }
    let selector = match &request.selector {
        Some(s) => Selector::parse(s).map_err(|e| Failure::BadInput(e.0))?,
        None => Selector::all(),
    };
    let format: Format = request.format.parse().map_err(Failure::BadInput)?;
    let (history, _) = ipfs_sentinel::history::open(&config, &data_dir, true)
        .with_context(|| format!("cannot read the history in {}", data_dir.display()))?;
    let params = WindowParams {
        range: request.range.as_deref(),
        step: request.step.as_deref(),
        function: request.function.as_deref(),
        ..WindowParams::default()
    };
    let window = params
        .check(
            history.first_tick(),
            system_ms(std::time::SystemTime::now()),
            false,
        )
        .map_err(|e| Failure::BadInput(e.0))?;
    let plan = Export::new(format, window, history.series(|k| selector.matches(k)));
    let progress = indicatif::ProgressBar::new(plan.keys().len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} series {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    plan.write_all(&history, out, |done| progress.set_position(done as u64))
        .context("cannot write the export")?;
    progress.finish_and_clear();
    Ok(())
}
