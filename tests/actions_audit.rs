//! The tamper-evident audit log, through the real binary: `ipfs-sentinel actions audit verify`
//! passes on an intact log and names the record after an edit (with and without its hash
//! rewritten), a deletion, a truncation in the middle and two records swapped; `--head` catches
//! a log cut short; `actions audit export` writes JSON and CSV; a real sentinel's records land
//! in the chain, across files and a restart.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ipfs_sentinel::actions::audit::chain::{self, decode};
use ipfs_sentinel::actions::audit::{ActionRun, AuditLog, RunResult, DIR};
use ipfs_sentinel::config::{AuditConfig, NonZeroCount};
use support::{action_runs, eventually, free_port, Sentinel};

/// Records written by [`write_log`].
const RECORDS: i64 = 12;

fn run(n: i64) -> ActionRun {
    ActionRun {
        at_ms: 1_795_867_200_000 + n,
        job: format!("job-{n}"),
        alertname: "DiskFull".into(),
        severity: "warning".into(),
        action: "run_gc".into(),
        node_id: "node-a".into(),
        trigger: "firing".into(),
        attempt: 1,
        result: if n % 3 == 0 {
            RunResult::Failure
        } else {
            RunResult::Success
        },
        output: format!("freed {n} blocks, \"quoted\", and a comma"),
        duration_seconds: 0.25,
        dry_run: false,
    }
}

/// A data dir holding [`RECORDS`] records, in files of at most `max_file_bytes`.
fn write_log(max_file_bytes: u64) -> (tempfile::TempDir, PathBuf) {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = AuditConfig {
        max_file_bytes: NonZeroCount(max_file_bytes),
        keep_files: 0,
    };
    let log = AuditLog::open_with(&data_dir.path().join("actions"), &settings).unwrap();
    for n in 1..=RECORDS {
        log.record(run(n)).unwrap();
    }
    let audit_dir = data_dir.path().join("actions").join(DIR);
    (data_dir, audit_dir)
}

fn first_file(audit_dir: &Path) -> PathBuf {
    audit_dir.join(chain::file_name(1))
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

/// Runs `ipfs-sentinel actions audit ARGS --data-dir DIR`: exit code, stdout, stderr.
fn audit(data_dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ipfs-sentinel"))
        .args(["actions", "audit"])
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs verify, which must fail, and returns its one line.
fn broken(data_dir: &Path) -> String {
    let (code, stdout, stderr) = audit(data_dir, &["verify"]);
    assert_eq!(code, 1, "verify must fail: {stdout}{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn verify_passes_on_an_intact_log_across_files_and_prints_the_head() {
    let (data_dir, audit_dir) = write_log(2000);
    let files = chain::list_files(&audit_dir).unwrap();
    assert!(files.len() >= 3, "2000-byte files: {files:?}");
    let last = lines(&files.last().unwrap().1).pop().unwrap();
    let head = decode(last.as_bytes()).unwrap().hash;
    let (code, stdout, stderr) = audit(data_dir.path(), &["verify"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "12 records in {} files, chain intact; head seq 12 hash {head}\n",
            files.len()
        )
    );
}

#[test]
fn an_edited_record_in_the_middle_is_named() {
    let (data_dir, audit_dir) = write_log(1 << 20);
    let file = first_file(&audit_dir);
    let mut all = lines(&file);
    assert!(all[4].contains("freed 5 blocks"));
    all[4] = all[4].replace("freed 5 blocks", "freed 500 blocks");
    write_lines(&file, &all);
    let line = broken(data_dir.path());
    assert!(
        line.contains("audit-000001.jsonl line 5 (seq 5): changed after it was written"),
        "{line}"
    );
}

#[test]
fn an_edited_record_with_its_hash_rewritten_is_named() {
    let (data_dir, audit_dir) = write_log(1 << 20);
    let file = first_file(&audit_dir);
    let mut all = lines(&file);
    let original = decode(all[4].as_bytes()).unwrap();
    let mut forged = run(5);
    forged.result = RunResult::Success;
    forged.output = "nothing happened here".into();
    let (line, _) = chain::encode(
        5,
        &original.time,
        &original.prev,
        "record",
        &serde_json::to_string(&forged).unwrap(),
    );
    all[4] = line;
    write_lines(&file, &all);
    let line = broken(data_dir.path());
    assert!(
        line.contains("audit-000001.jsonl line 5 (seq 5): changed after it was written, its own hash rewritten"),
        "{line}"
    );
}

#[test]
fn a_deleted_record_is_named() {
    let (data_dir, audit_dir) = write_log(1 << 20);
    let file = first_file(&audit_dir);
    let mut all = lines(&file);
    all.remove(6);
    write_lines(&file, &all);
    let line = broken(data_dir.path());
    assert!(
        line.contains("audit-000001.jsonl line 7 (seq 7): removed: seq 7 should be here, after seq 6 at audit-000001.jsonl line 6, and this line holds seq 8"),
        "{line}"
    );
}

/// Cuts `file` in the middle of its middle line; returns that line's number.
fn cut_mid_line(file: &Path) -> usize {
    let bytes = fs::read(file).unwrap();
    let ends: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    let middle = ends.len() / 2;
    let cut = ends[middle - 1] + (ends[middle] - ends[middle - 1]) / 2;
    fs::write(file, &bytes[..cut]).unwrap();
    middle + 1
}

#[test]
fn a_file_truncated_in_the_middle_is_named() {
    let (data_dir, audit_dir) = write_log(1 << 20);
    let line_no = cut_mid_line(&first_file(&audit_dir));
    assert_eq!(line_no, 7);
    let line = broken(data_dir.path());
    assert!(
        line.contains("audit-000001.jsonl line 7 (seq 7): cut off after"),
        "{line}"
    );
}

#[test]
fn a_file_truncated_in_the_middle_of_a_rotated_log_is_named() {
    let (data_dir, audit_dir) = write_log(2000);
    let file = first_file(&audit_dir);
    let whole = fs::read(&file).unwrap();
    let line_no = cut_mid_line(&file);
    let line = broken(data_dir.path());
    assert!(
        line.contains(&format!(
            "audit-000001.jsonl line {line_no} (seq {line_no}): cut off after"
        )) && line.contains("does not record it as a crash's torn write"),
        "{line}"
    );
    // Cut at a line's end instead: the next file's first record names what is missing.
    let kept: Vec<String> = lines(&file).into_iter().take(1).collect();
    assert!(whole.len() > kept[0].len() + 1);
    write_lines(&file, &kept);
    let line = broken(data_dir.path());
    assert!(
        line.contains("audit-000002.jsonl line 1") && line.contains("removed: seq 2 to"),
        "{line}"
    );
}

#[test]
fn two_swapped_records_are_named() {
    let (data_dir, audit_dir) = write_log(1 << 20);
    let file = first_file(&audit_dir);
    let mut all = lines(&file);
    all.swap(3, 4);
    write_lines(&file, &all);
    let line = broken(data_dir.path());
    assert!(
        line.contains("audit-000001.jsonl line 4 (seq 5): records out of order: seq 4 should come here, after seq 3 at audit-000001.jsonl line 3, but is at audit-000001.jsonl line 5"),
        "{line}"
    );
}

#[test]
fn a_removed_middle_file_is_named() {
    let (data_dir, audit_dir) = write_log(2000);
    fs::remove_file(audit_dir.join(chain::file_name(2))).unwrap();
    let line = broken(data_dir.path());
    assert!(
        line.contains("audit-000002.jsonl line 1")
            && line.contains(
                "the file is missing (between audit-000001.jsonl and audit-000003.jsonl)"
            ),
        "{line}"
    );
}

#[test]
fn a_log_cut_short_at_a_line_end_is_caught_by_the_head_kept_elsewhere() {
    let (data_dir, audit_dir) = write_log(1 << 20);
    let file = first_file(&audit_dir);
    let mut all = lines(&file);
    let head = decode(all.last().unwrap().as_bytes()).unwrap().hash;
    let earlier = decode(all[9].as_bytes()).unwrap().hash;
    let (code, stdout, stderr) = audit(data_dir.path(), &["verify", "--head", &earlier]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(
            "; the head given is seq 10 (audit-000001.jsonl line 10), 2 records appended since"
        ),
        "{stdout}"
    );
    all.truncate(10);
    write_lines(&file, &all);
    let (code, _, _) = audit(data_dir.path(), &["verify"]);
    assert_eq!(
        code, 0,
        "without the head, a cut at a line end looks like a shorter log"
    );
    let (code, stdout, stderr) = audit(data_dir.path(), &["verify", "--head", &head]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stderr.contains(&format!("does not hold the head given ({head})")),
        "{stderr}"
    );
}

#[test]
fn a_torn_write_recorded_after_a_restart_verifies_and_is_reported() {
    let (data_dir, audit_dir) = write_log(1 << 20);
    let file = first_file(&audit_dir);
    let mut bytes = fs::read(&file).unwrap();
    bytes.extend_from_slice(b"{\"seq\":13,\"ti");
    fs::write(&file, &bytes).unwrap();
    broken(data_dir.path());
    let log = AuditLog::open(&data_dir.path().join("actions")).unwrap();
    log.record(run(13)).unwrap();
    let (code, stdout, stderr) = audit(data_dir.path(), &["verify"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("14 records in 2 files, chain intact")
            && stdout.contains(
                "; a crash tore audit-000001.jsonl line 13 (13 bytes), recorded in the chain"
            ),
        "{stdout}"
    );
}

#[test]
fn export_writes_json_and_csv() {
    let (data_dir, _) = write_log(2000);
    let (code, stdout, stderr) = audit(data_dir.path(), &["export", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let items: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(items.len(), RECORDS as usize);
    for (i, item) in items.iter().enumerate() {
        let n = i as i64 + 1;
        assert_eq!(item["seq"], n);
        assert_eq!(item["record"], serde_json::to_value(run(n)).unwrap());
        if i > 0 {
            assert_eq!(item["prev"], items[i - 1]["hash"]);
        }
    }

    let (code, stdout, stderr) = audit(data_dir.path(), &["export", "--format", "csv"]);
    assert_eq!(code, 0, "{stderr}");
    let mut reader = csv::Reader::from_reader(stdout.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "seq",
            "time",
            "hash",
            "prev",
            "kind",
            "note",
            "action",
            "alertname",
            "at_ms",
            "attempt",
            "dry_run",
            "duration_seconds",
            "job",
            "node_id",
            "output",
            "result",
            "severity",
            "trigger"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), RECORDS as usize);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[2][column("seq")], "3");
    assert_eq!(&rows[2][column("result")], "failure");
    assert_eq!(
        &rows[2][column("output")],
        "freed 3 blocks, \"quoted\", and a comma"
    );
    assert_eq!(&rows[2][column("hash")], items[2]["hash"].as_str().unwrap());
    assert_eq!(&rows[2][column("kind")], "record");
}

#[test]
fn export_filters_by_time_and_refuses_a_broken_chain() {
    let (data_dir, audit_dir) = write_log(1 << 20);
    let (code, stdout, stderr) = audit(
        data_dir.path(),
        &[
            "export",
            "--format",
            "json",
            "--since",
            "2999-01-01T00:00:00Z",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(serde_json::from_str::<Vec<serde_json::Value>>(&stdout)
        .unwrap()
        .is_empty());
    let (code, stdout, _) = audit(
        data_dir.path(),
        &["export", "--format", "json", "--since", "0"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&stdout)
            .unwrap()
            .len(),
        RECORDS as usize
    );

    let file = first_file(&audit_dir);
    let mut all = lines(&file);
    all.remove(2);
    write_lines(&file, &all);
    let (code, stdout, stderr) = audit(data_dir.path(), &["export", "--format", "csv"]);
    assert_eq!(code, 1);
    assert_eq!(stdout, "", "nothing is exported from a broken chain");
    assert!(stderr.contains("line 3 (seq 3): removed"), "{stderr}");
}

#[test]
fn verify_says_where_no_log_is() {
    let data_dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = audit(data_dir.path(), &["verify"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("holds no audit log") && stderr.contains("--data-dir"),
        "{stderr}"
    );
}

/// A sentinel in dry-run mode whose rules fire `alerts` alerts at once, each naming the
/// recovery action `mark`, writing its audit log in files of at most 700 bytes.
async fn sentinel_firing(data_dir: &Path, alerts: usize) -> Sentinel {
    let config_dir = tempfile::tempdir().unwrap();
    let rules: String = (1..=alerts)
        .map(|n| format!("      - alert: Firing{n}\n        expr: vector(1)\n        labels: {{action: mark}}\n"))
        .collect();
    fs::write(
        config_dir.path().join("rules.yml"),
        format!("groups:\n  - name: t\n    rules:\n{rules}"),
    )
    .unwrap();
    let config = "ipfs:\n  api_url: http://127.0.0.1:9\n  timeout_seconds: 1\ncluster:\n  node_id: node-a\n  monitoring:\n    collection_interval_seconds: 1\n    collector_timeout_seconds: 1\n    rule_files: [rules.yml]\n    recovery_actions:\n      mark: {command: ['/bin/true'], target: local, cooldown_seconds: 3600}\n    actions:\n      audit: {max_file_bytes: 700}\n";
    Sentinel::start_with(
        free_port(),
        config,
        data_dir,
        config_dir,
        &["--dry-run"],
        &[],
        true,
    )
    .await
}

/// Waits until the sentinel's API lists at least `n` records (the first alert's dry run, the
/// others' cool-down skips); returns the head seq and hash its metrics show.
async fn records(sentinel: &Sentinel, n: usize) -> (u64, String) {
    eventually(&format!("{n} records in the audit"), || async {
        (action_runs(sentinel).await.len() >= n).then_some(())
    })
    .await;
    let metrics = sentinel
        .metrics_until("the audit head metric past the start", |m| {
            m.lines().any(|l| {
                l.starts_with("ipfs_sentinel_actions_audit_head_info{")
                    && !l.contains(chain::GENESIS)
            })
        })
        .await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("ipfs_sentinel_actions_audit_head_info{"))
        .unwrap();
    let seq = line.split("seq=\"").nth(1).unwrap();
    let seq = seq[..seq.find('"').unwrap()].parse().unwrap();
    let hash = line.split("hash=\"").nth(1).unwrap();
    (seq, hash[..64].to_owned())
}

/// verify's record and file counts from its summary.
fn counts(summary: &str) -> (u64, u64) {
    let words: Vec<&str> = summary.split(' ').collect();
    assert_eq!((words[1], words[4]), ("records", "files,"), "{summary}");
    (words[0].parse().unwrap(), words[3].parse().unwrap())
}

#[tokio::test]
async fn a_running_sentinels_records_are_chained_across_files_and_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    let mut sentinel = sentinel_firing(&data_dir, 3).await;
    let (seq, head) = records(&sentinel, 3).await;
    sentinel.process.stop();
    let (code, stdout, stderr) = audit(&data_dir, &["verify", "--head", &head]);
    assert_eq!(code, 0, "{stderr}");
    let (first_records, files) = counts(&stdout);
    assert!(first_records >= 3 && first_records >= seq, "{stdout}");
    assert_eq!(
        files, first_records,
        "700-byte files hold one record each: {stdout}"
    );
    assert!(stdout.contains(" chain intact; "), "{stdout}");

    let mut sentinel = sentinel_firing(&data_dir, 5).await;
    records(&sentinel, first_records as usize + 2).await;
    sentinel.process.stop();
    let (code, stdout, stderr) = audit(&data_dir, &["verify", "--head", &head]);
    assert_eq!(code, 0, "the chain goes on after the restart: {stderr}");
    let (records_now, _) = counts(&stdout);
    assert!(records_now >= first_records + 2, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "; the head given is seq {seq} (audit-{seq:06}.jsonl line 1), {} records appended since",
            records_now - seq
        )),
        "{stdout}"
    );
}
