//! The audit log's hash chain on disk: the line format, the hash each line carries, the file
//! names, and the walk that checks the chain across files for `actions audit verify` and
//! `export`.
//!
//! Each line of `audit-NNNNNN.jsonl` is one JSON object, written by [`encode`] with its members
//! in this order: `seq` (1, 2, 3, ... across all files), `time` (RFC 3339, when it was appended),
//! `prev` (the `hash` of the line before, across files; 64 zeros before the first), then
//! `record` (what the actions recorded) or `torn_tail` (a line a crash cut off, see
//! [`TornTail`]), and last `hash`: the SHA-256, in lowercase hex, of the line's bytes with that
//! last member `,"hash":"..."` removed. Changing a byte of a line breaks its hash; removing,
//! reordering or rewriting a line (hash included) breaks the next line's `prev` or `seq`.
//!
//! Owns the format and the checking; it writes nothing (the log in the parent module appends).

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the very first record: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The last member of every line before its closing brace: `,"hash":"` then 64 hex digits.
const HASH_MEMBER: &str = ",\"hash\":\"";
/// Bytes from the start of the hash member to the end of the line: `,"hash":"` + 64 + `"}`.
const HASH_SUFFIX_LEN: usize = HASH_MEMBER.len() + 64 + 2;

/// Errors reading the chain's files.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The chain is broken: the first record found changed, removed or out of order.
    #[error("{0}")]
    Broken(Break),
}

/// Where and how the chain breaks: the first record found changed, removed or out of order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The file's name, e.g. `audit-000002.jsonl`.
    pub file: String,
    /// The line in it, from 1.
    pub line: u64,
    /// The record's sequence number, when it can be read.
    pub seq: Option<u64>,
    /// What is wrong, in a sentence.
    pub reason: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} line {}", self.file, self.line)?;
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// A line a crash cut off, recorded by the sentinel when it started again: the tear is part of
/// the chain, so the lines it lost are accounted for rather than chained over in silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TornTail {
    /// The file holding the cut line.
    pub file: String,
    /// Its line number.
    pub line: u64,
    /// The bytes of it that reached the disk.
    pub bytes: u64,
}

/// What a line holds besides its chain fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// A record the recovery actions sent (an action run, skip, approval, outcome...), as JSON.
    Record(serde_json::Value),
    /// A line a crash cut off.
    TornTail(TornTail),
}

/// One line, read back and its hash checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its place in the chain, from 1.
    pub seq: u64,
    /// When it was appended (RFC 3339).
    pub time: String,
    /// The hash of the line before.
    pub prev: String,
    /// Its own hash.
    pub hash: String,
    /// What it holds.
    pub content: Content,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    seq: u64,
    time: String,
    prev: String,
    #[serde(default)]
    record: Option<serde_json::Value>,
    #[serde(default)]
    torn_tail: Option<TornTail>,
}

/// Lowercase hex of `bytes`.
///
/// ```
/// assert_eq!(ipfs_sentinel::actions::audit::chain::hex(&[0, 171, 255]), "00abff");
/// ```
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hex(&hasher.finalize())
}

/// One line (without its newline) for a record, and its hash. `content` is the JSON of the
/// record (key `record`) or of a [`TornTail`] (key `torn_tail`).
///
/// ```
/// use ipfs_sentinel::actions::audit::chain::{decode, encode, Content, GENESIS};
///
/// let (line, hash) = encode(1, "2026-11-30T07:00:00.000Z", GENESIS, "record", r#"{"a":1}"#);
/// assert!(line.starts_with(r#"{"seq":1,"time":"2026-11-30T07:00:00.000Z","prev":"000"#));
/// assert!(line.ends_with(&format!(r#","record":{{"a":1}},"hash":"{hash}"}}"#)));
/// let entry = decode(line.as_bytes()).unwrap();
/// assert_eq!(entry.hash, hash);
/// assert_eq!(entry.content, Content::Record(serde_json::json!({"a": 1})));
/// assert!(decode(line.replace(r#""a":1"#, r#""a":2"#).as_bytes()).is_err());
/// ```
pub fn encode(seq: u64, time: &str, prev: &str, key: &str, content: &str) -> (String, String) {
    let time = serde_json::Value::String(time.to_owned());
    let body = format!("{{\"seq\":{seq},\"time\":{time},\"prev\":\"{prev}\",\"{key}\":{content}");
    let hash = sha256_hex(&[body.as_bytes(), b"}"]);
    let line = format!("{body}{HASH_MEMBER}{hash}\"}}");
    (line, hash)
}

/// The hash a line's content gives (SHA-256 of the line without its `hash` member), whatever
/// its `hash` member says; `None` when the line does not end in a `hash` member.
pub fn computed_hash(line: &[u8]) -> Option<String> {
    let start = line.len().checked_sub(HASH_SUFFIX_LEN)?;
    let suffix = &line[start..];
    let well_formed = suffix.starts_with(HASH_MEMBER.as_bytes())
        && suffix.ends_with(b"\"}")
        && suffix[HASH_MEMBER.len()..HASH_MEMBER.len() + 64]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    well_formed.then(|| sha256_hex(&[&line[..start], b"}"]))
}

/// The `seq` at the start of a line, read without checking anything else (to say where a
/// damaged line sat).
pub fn leading_seq(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// Reads one line (without its newline) and checks its hash; the error says what is wrong.
pub fn decode(line: &[u8]) -> Result<Entry, String> {
    let Some(computed) = computed_hash(line) else {
        return Err(
            "not an audit record: it does not end in a \"hash\" member of 64 hex digits \
             (the line was changed, or is not one the sentinel wrote)"
                .to_owned(),
        );
    };
    let start = line.len() - HASH_SUFFIX_LEN + HASH_MEMBER.len();
    let stored = String::from_utf8_lossy(&line[start..start + 64]).into_owned();
    if stored != computed {
        return Err(format!(
            "changed after it was written: its content hashes to {computed}, \
             the hash written with it is {stored}"
        ));
    }
    let mut body = line[..line.len() - HASH_SUFFIX_LEN].to_vec();
    body.push(b'}');
    let fields: Fields = serde_json::from_slice(&body).map_err(|e| {
        format!("not an audit record, though its hash matches: {e} (written by another program?)")
    })?;
    let content = match (fields.record, fields.torn_tail) {
        (Some(record), None) => Content::Record(record),
        (None, Some(torn)) => Content::TornTail(torn),
        _ => {
            return Err(
                "not an audit record: it holds neither one \"record\" nor one \"torn_tail\""
                    .to_owned(),
            )
        }
    };
    Ok(Entry {
        seq: fields.seq,
        time: fields.time,
        prev: fields.prev,
        hash: computed,
        content,
    })
}

/// The name of the file numbered `number`.
///
/// ```
/// use ipfs_sentinel::actions::audit::chain::{file_name, file_number};
/// assert_eq!(file_name(12), "audit-000012.jsonl");
/// assert_eq!(file_number("audit-000012.jsonl"), Some(12));
/// assert_eq!(file_number("audit.jsonl"), None);
/// ```
pub fn file_name(number: u32) -> String {
    format!("audit-{number:06}.jsonl")
}

/// The number in a file name [`file_name`] made.
pub fn file_number(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The log's files in `dir`, oldest first; none when `dir` does not exist.
pub fn list_files(dir: &Path) -> Result<Vec<(u32, PathBuf)>, ChainError> {
    let read = |source| ChainError::Read {
        path: dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(read)?;
        if let Some(number) = entry.file_name().to_str().and_then(file_number) {
            files.push((number, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// What a walk over an intact chain found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Lines read, torn-tail notes included.
    pub records: u64,
    /// Files read.
    pub files: usize,
    /// The first record's seq (above 1 when rotation removed older files).
    pub first_seq: u64,
    /// The last record's seq, 0 for an empty log.
    pub head_seq: u64,
    /// The last record's hash ([`GENESIS`] for an empty log).
    pub head_hash: String,
    /// Lines a crash cut off, each recorded in the chain when the sentinel started again.
    pub torn: Vec<TornTail>,
}

/// One checked line with where it is.
#[derive(Debug)]
pub struct Visit<'a> {
    /// Its file's name.
    pub file: &'a str,
    /// Its line number.
    pub line: u64,
    /// The line, read and checked.
    pub entry: &'a Entry,
}

/// Where the walk stands: what the next line must carry.
struct Expect {
    seq: Option<u64>,
    prev: Option<String>,
    /// File, line and seq of the last good line.
    last: Option<(String, u64, u64)>,
}

/// Walks every file in `dir` in order, checks each line's hash, `seq` and `prev`, and hands
/// each good line to `visit` with the bytes read so far (for a progress bar). Stops at the
/// first line that is changed, missing or out of place: [`ChainError::Broken`] names it.
pub fn walk(dir: &Path, visit: &mut dyn FnMut(Visit<'_>, u64)) -> Result<Summary, ChainError> {
    let files = list_files(dir)?;
    let mut summary = Summary {
        head_hash: GENESIS.to_owned(),
        files: files.len(),
        ..Summary::default()
    };
    // Files before the oldest one present were removed by rotation when it is not number 1:
    // its first line is then taken as the start.
    let from_the_start = files.first().is_some_and(|(n, _)| *n == 1);
    let mut expect = Expect {
        seq: from_the_start.then_some(1),
        prev: from_the_start.then(|| GENESIS.to_owned()),
        last: None,
    };
    let mut bytes_read = 0u64;
    // A cut-off last line of a file, which the next line must record as a torn tail.
    let mut torn: Option<TornTail> = None;
    for (index, (number, path)) in files.iter().enumerate() {
        let name = file_name(*number);
        if index > 0 && *number != files[index - 1].0 + 1 {
            return Err(ChainError::Broken(Break {
                file: file_name(files[index - 1].0 + 1),
                line: 1,
                seq: expect.seq,
                reason: format!(
                    "the file is missing (between {} and {name}): the records it held were removed",
                    file_name(files[index - 1].0)
                ),
            }));
        }
        let read = |source| ChainError::Read {
            path: path.clone(),
            source,
        };
        let mut reader = BufReader::new(File::open(path).map_err(read)?);
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).map_err(read)?;
            if n == 0 {
                break;
            }
            line_no += 1;
            bytes_read += n as u64;
            let at = |seq, reason| {
                ChainError::Broken(Break {
                    file: name.clone(),
                    line: line_no,
                    seq,
                    reason,
                })
            };
            if buf.last() != Some(&b'\n') {
                let cut = TornTail {
                    file: name.clone(),
                    line: line_no,
                    bytes: n as u64,
                };
                if index + 1 == files.len() {
                    return Err(at(leading_seq(&buf).or(expect.seq), cut_off(&cut)));
                }
                torn = Some(cut);
                break;
            }
            let line = &buf[..buf.len() - 1];
            let entry = decode(line).map_err(|reason| at(leading_seq(line), reason))?;
            if let Some(cut) = torn.take() {
                if entry.content != Content::TornTail(cut.clone()) {
                    return Err(ChainError::Broken(Break {
                        file: cut.file.clone(),
                        line: cut.line,
                        seq: expect.seq,
                        reason: format!(
                            "{}; the next line ({name} line {line_no}) does not record it as a \
                             crash's torn write",
                            cut_off(&cut)
                        ),
                    }));
                }
                summary.torn.push(cut);
            }
            check_place(&entry, &expect, &files[index..], &name, line_no, path)?;
            expect = Expect {
                seq: Some(entry.seq + 1),
                prev: Some(entry.hash.clone()),
                last: Some((name.clone(), line_no, entry.seq)),
            };
            if summary.records == 0 {
                summary.first_seq = entry.seq;
            }
            summary.records += 1;
            summary.head_seq = entry.seq;
            visit(
                Visit {
                    file: &name,
                    line: line_no,
                    entry: &entry,
                },
                bytes_read,
            );
            summary.head_hash = entry.hash;
        }
    }
    if let Some(cut) = torn {
        return Err(ChainError::Broken(Break {
            file: cut.file.clone(),
            line: cut.line,
            seq: expect.seq,
            reason: cut_off(&cut),
        }));
    }
    Ok(summary)
}

fn cut_off(cut: &TornTail) -> String {
    format!(
        "cut off after {} bytes, with no end of line: the file was truncated here, or a crash \
         tore this write and the sentinel has not started since (it records the tear when it does)",
        cut.bytes
    )
}

/// Checks `entry`'s `seq` and `prev` against what the line before it promised.
fn check_place(
    entry: &Entry,
    expect: &Expect,
    rest: &[(u32, PathBuf)],
    name: &str,
    line_no: u64,
    path: &Path,
) -> Result<(), ChainError> {
    let at = |seq, reason| {
        Err(ChainError::Broken(Break {
            file: name.to_owned(),
            line: line_no,
            seq,
            reason,
        }))
    };
    let after = match &expect.last {
        Some((file, line, seq)) => format!("seq {seq} at {file} line {line}"),
        None => "the start of the log".to_owned(),
    };
    if let Some(wanted) = expect.seq {
        if entry.seq > wanted {
            return match find_seq(rest, path, line_no, wanted)? {
                Some((file, line)) => at(
                    Some(entry.seq),
                    format!(
                        "records out of order: seq {wanted} should come here, after {after}, \
                         but is at {file} line {line}"
                    ),
                ),
                None => at(
                    Some(wanted),
                    if entry.seq == wanted + 1 {
                        format!(
                            "removed: seq {wanted} should be here, after {after}, and this line \
                             holds seq {}",
                            entry.seq
                        )
                    } else {
                        format!(
                            "removed: seq {wanted} to {} should be here, after {after}, and this \
                             line holds seq {}",
                            entry.seq - 1,
                            entry.seq
                        )
                    },
                ),
            };
        }
        if entry.seq < wanted {
            return at(
                Some(entry.seq),
                format!(
                    "records out of order: seq {wanted} should come here, after {after}, and this \
                     line holds seq {} again",
                    entry.seq
                ),
            );
        }
    }
    if let Some(prev) = &expect.prev {
        if &entry.prev != prev {
            return match &expect.last {
                Some((file, line, seq)) => Err(ChainError::Broken(Break {
                    file: file.clone(),
                    line: *line,
                    seq: Some(*seq),
                    reason: format!(
                        "changed after it was written, its own hash rewritten to match: seq {} at \
                         {name} line {line_no} holds prev {}, and this line now hashes to {prev} \
                         (or a record between them was removed and the rest renumbered)",
                        entry.seq, entry.prev
                    ),
                })),
                None => at(
                    Some(entry.seq),
                    format!(
                        "the first record's prev must be {GENESIS}, and is {}: the records \
                         before it were removed",
                        entry.prev
                    ),
                ),
            };
        }
    }
    Ok(())
}

/// Where a line carrying `seq` sits later in the files: the rest of the current file
/// (`path`, after `line_no`), then the files after it.
fn find_seq(
    files: &[(u32, PathBuf)],
    path: &Path,
    line_no: u64,
    seq: u64,
) -> Result<Option<(String, u64)>, ChainError> {
    for (number, file) in files {
        let read = |source| ChainError::Read {
            path: file.clone(),
            source,
        };
        let reader = BufReader::new(File::open(file).map_err(read)?);
        let skip = if file == path { line_no } else { 0 };
        for (i, line) in reader.split(b'\n').enumerate() {
            let line = line.map_err(read)?;
            let n = i as u64 + 1;
            if n > skip && leading_seq(&line) == Some(seq) {
                return Ok(Some((file_name(*number), n)));
            }
        }
    }
    Ok(None)
}
