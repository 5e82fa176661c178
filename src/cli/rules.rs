//! `rules export`: every rule a configuration loads (its short-form alerts included) printed
//! as one Prometheus rule file.
//!
//! Owns the command only; the file is written by `rules::rulefile`.

use std::path::PathBuf;
use std::process::ExitCode;

use ipfs_sentinel::rules::reload::ConfigSource;
use ipfs_sentinel::rules::rulefile;

/// Prints the rules of `config` (default: the embedded one): exit 0, or 1 and the error.
pub fn export(config: Option<PathBuf>) -> ExitCode {
    let source = ConfigSource { path: config };
    let (config, groups) = match source.load() {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{}", super::describe(e));
            return ExitCode::FAILURE;
        }
    };
    let interval = (config.cluster.monitoring.collection_interval_seconds.0 * 1000.0) as i64;
    match rulefile::to_yaml(&groups, interval) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
