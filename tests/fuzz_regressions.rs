//! Every input a fuzz target (`fuzz/`, run with `bash fuzz/run.sh`) ever crashed, hung or ran
//! out of memory on, replayed through the same code: `tests/fixtures/fuzz/<target>/<input>`.
//! Each must now come back, refused with an error a user can read, without a panic.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::Path;

#[test]
fn every_input_the_fuzzers_crashed_on_is_refused_with_an_error() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let mut replayed = 0;
    for (target, run) in targets::TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&input));
            let shown = path.strip_prefix(&root).unwrap().display();
            match outcome {
                Err(_) => panic!("{shown}: panicked"),
                Ok(Ok(())) => panic!("{shown}: accepted, expected an error"),
                Ok(Err(reason)) => {
                    assert!(!reason.trim().is_empty(), "{shown}: an empty error");
                    replayed += 1;
                }
            }
        }
    }
    assert!(replayed > 0, "no inputs under {}", root.display());
}

#[test]
fn the_alertmanager_webhook_target_takes_alertmanagers_real_payload() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alertmanager/webhook-v4.json");
    let body = std::fs::read(fixture).unwrap();
    assert_eq!(targets::alertmanager_webhook(&body), Ok(()));
    assert!(targets::alertmanager_webhook(b"{\"version\":\"4\"}").is_err());
}
