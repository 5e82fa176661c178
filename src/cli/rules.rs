//! The rule commands: `rules export` (every rule a configuration loads, its short-form alerts
//! included, printed as one Prometheus rule file), `check-rules` and `test-rules` (promtool's
//! `check rules` and `test rules`).
//!
//! Owns the commands' output only; files are read and written by `rules::load`,
//! `rules::promtool_test` and `rules::rulefile`.

use std::path::PathBuf;
use std::process::ExitCode;

use ipfs_sentinel::model::Semantics;
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

/// `check-rules`: every file checked with the PromQL of `semantics`, every error shown.
pub fn check(files: &[PathBuf], semantics: Semantics) -> ExitCode {
    let mut failed = false;
    for file in files {
        println!("Checking {}", file.display());
        match ipfs_sentinel::rules::load::check_file(file, semantics) {
            Ok(groups) => {
                let rules: usize = groups.iter().map(|g| g.rules.len()).sum();
                println!("  SUCCESS: {rules} rules found");
            }
            Err(errors) => {
                failed = true;
                println!("  FAILED:");
                for e in errors {
                    eprintln!("{e}");
                }
            }
        }
        println!();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `test-rules`: every file run with the PromQL of `semantics`, promtool's output shape.
pub fn test(files: &[PathBuf], semantics: Semantics) -> ExitCode {
    let mut failed = false;
    for file in files {
        println!("Unit Testing:  {}", file.display());
        match ipfs_sentinel::rules::promtool_test::run_file(file, semantics) {
            Ok(outcome) if outcome.failures.is_empty() => println!("  SUCCESS"),
            Ok(outcome) => {
                failed = true;
                println!("  FAILED:");
                for f in &outcome.failures {
                    println!("{f}");
                }
            }
            Err(e) => {
                failed = true;
                println!("  FAILED:");
                println!("    {e}");
            }
        }
        println!();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
