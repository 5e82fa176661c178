//! The history on disk, in `<data dir>/history/`: one file per sealed block
//! (`blocks/<first tick ms>.blk`, written to a temporary file, fsynced, then renamed) and a head
//! log (`head.wal`) to which every tick is appended and fsynced, so a crash loses at most the
//! tick being written. Every file carries a CRC-32.
//!
//! Owns files only. A block or log that cannot be read is moved aside (`.corrupt` suffix) with
//! a warning naming it, never deleted, and the sentinel starts with what could be read. In
//! read-only mode (exporting from the data dir of a running sentinel) nothing is written,
//! moved or removed.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::codec::{self, DecodeError, Reader, SealedBlock, Writer};
use super::{History, SeriesKey};
use crate::files::write_atomically;

const BLOCK_MAGIC: &[u8; 6] = b"IPSHB1";
const WAL_MAGIC: &[u8; 6] = b"IPSHW1";
const RECORD_SERIES: u8 = 1;
const RECORD_TICK: u8 = 2;

/// A file that could not be read at start-up, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// The unreadable file.
    pub path: PathBuf,
    /// Where it was moved (None in read-only mode).
    pub moved_to: Option<PathBuf>,
    /// Why it could not be read.
    pub reason: String,
}

/// An unreadable history file, moved aside: one warning line.
struct HistoryFileSetAside<'a>(&'a SetAside);

impl HistoryFileSetAside<'_> {
    fn emit(&self) {
        let s = self.0;
        match &s.moved_to {
            Some(to) => {
                tracing::warn!(file = %s.path.display(), moved_to = %to.display(), reason = %s.reason, "history file unreadable; moved aside, starting with what could be read")
            }
            None => {
                tracing::warn!(file = %s.path.display(), reason = %s.reason, "history file unreadable; skipped")
            }
        }
    }
}

/// The history's files.
#[derive(Debug)]
pub struct Persistence {
    dir: PathBuf,
    read_only: bool,
    wal: Option<File>,
    wal_ids: HashMap<Arc<SeriesKey>, u64>,
    /// A write to the log failed: it may end in a torn record or lack ticks, so it is not
    /// appended to again, only rewritten whole.
    behind: bool,
    /// Sealed blocks whose file could not be written yet; the log keeps their ticks until
    /// they are.
    unwritten: Vec<SealedBlock>,
}

fn io_context(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Moves an unreadable file aside as `<name>.corrupt` (or `.corrupt.N` if taken).
fn move_aside(path: &Path) -> io::Result<PathBuf> {
    let mut target = PathBuf::from(format!("{}.corrupt", path.display()));
    let mut n = 1;
    while target.exists() {
        target = PathBuf::from(format!("{}.corrupt.{n}", path.display()));
        n += 1;
    }
    fs::rename(path, &target)?;
    Ok(target)
}

fn tick_record(w: &mut Writer, at_ms: i64, samples: &[(u64, f64)]) {
    w.0.push(RECORD_TICK);
    w.u64(at_ms as u64);
    w.varint(samples.len() as u64);
    for (id, v) in samples {
        w.varint(*id);
        w.u64(v.to_bits());
    }
}

fn framed_record(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Ticks read back from the log, each with its series (not yet interned) and values.
type LoggedTicks = Vec<(i64, Vec<(SeriesKey, f64)>)>;

/// Reads log records until the end or the first bad one; says why it stopped early.
fn read_log(bytes: &[u8]) -> (LoggedTicks, Option<String>) {
    let Some(mut rest) = bytes.strip_prefix(&WAL_MAGIC[..]) else {
        return (
            Vec::new(),
            Some("not an ipfs-sentinel head log (bad magic)".into()),
        );
    };
    let mut names: HashMap<u64, SeriesKey> = HashMap::new();
    let mut ticks = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 8 {
            return (ticks, Some("truncated record header".into()));
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if rest.len() - 8 < len {
            return (ticks, Some("truncated record".into()));
        }
        let payload = &rest[8..8 + len];
        if crc32fast::hash(payload) != crc {
            return (ticks, Some("record checksum mismatch".into()));
        }
        rest = &rest[8 + len..];
        let parsed = (|| -> Result<(), DecodeError> {
            let (&kind, body) = payload
                .split_first()
                .ok_or_else(|| DecodeError("empty record".into()))?;
            let mut r = Reader::new(body);
            match kind {
                RECORD_SERIES => {
                    let id = r.varint()?;
                    names.insert(id, r.key()?);
                }
                RECORD_TICK => {
                    let at = r.u64()? as i64;
                    let n = r.count()?;
                    let mut samples = Vec::with_capacity(n.min(4096));
                    for _ in 0..n {
                        let id = r.varint()?;
                        let v = f64::from_bits(r.u64()?);
                        let key = names
                            .get(&id)
                            .ok_or_else(|| DecodeError(format!("unknown series {id}")))?;
                        samples.push((key.clone(), v));
                    }
                    ticks.push((at, samples));
                }
                other => return Err(DecodeError(format!("unknown record kind {other}"))),
            }
            Ok(())
        })();
        if let Err(e) = parsed {
            return (ticks, Some(e.0));
        }
    }
    (ticks, None)
}

impl Persistence {
    /// Opens `<data_dir>/history`, loading what it holds into `history`. Unreadable files are
    /// set aside (or, read-only, skipped) and returned; only an I/O failure on the folder
    /// itself is an error.
    pub fn open(
        data_dir: &Path,
        history: &mut History,
        read_only: bool,
        now_ms: i64,
    ) -> io::Result<(Persistence, Vec<SetAside>)> {
        let dir = data_dir.join("history");
        let blocks = dir.join("blocks");
        if !read_only {
            fs::create_dir_all(&blocks).map_err(|e| io_context(&blocks, e))?;
        }
        let mut set_aside = Vec::new();
        let mut unreadable = |path: PathBuf, reason: String| {
            let moved_to = if read_only {
                None
            } else {
                move_aside(&path).ok()
            };
            let s = SetAside {
                path,
                moved_to,
                reason,
            };
            HistoryFileSetAside(&s).emit();
            set_aside.push(s);
        };

        let mut files: Vec<PathBuf> = match fs::read_dir(&blocks) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "blk"))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_context(&blocks, e)),
        };
        files.sort();
        for path in files {
            let decoded = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    let payload = codec::unframe(BLOCK_MAGIC, &bytes).map_err(|e| e.0)?;
                    SealedBlock::decode(payload, |k| history.intern(k)).map_err(|e| e.0)
                });
            match decoded {
                Ok(block) => history.insert_sealed(block),
                Err(reason) => unreadable(path, reason),
            }
        }

        let wal_path = dir.join("head.wal");
        match fs::read(&wal_path) {
            Ok(bytes) => {
                let (ticks, stopped) = read_log(&bytes);
                for (at, samples) in ticks {
                    let samples: Vec<_> = samples
                        .into_iter()
                        .map(|(k, v)| (history.intern(k), v))
                        .collect();
                    // A second record for a tick holds recording rules' samples logged late.
                    if !history.append(at, &samples) {
                        history.add_to_tick(at, &samples);
                    }
                }
                if let Some(reason) = stopped {
                    unreadable(wal_path.clone(), reason);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_context(&wal_path, e)),
        }

        let mut persistence = Persistence {
            dir,
            read_only,
            wal: None,
            wal_ids: HashMap::new(),
            behind: false,
            unwritten: Vec::new(),
        };
        // Ticks replayed from the log may complete a block, and old blocks may have expired.
        if let Some(block) = history.take_full_block() {
            persistence.write_block(&block)?;
        }
        persistence.remove_blocks(&history.expire(now_ms))?;
        // Start a clean log holding the head: it drops a torn tail and renumbers series.
        persistence.rewrite_log(history)?;
        Ok((persistence, set_aside))
    }

    fn wal_path(&self) -> PathBuf {
        self.dir.join("head.wal")
    }

    /// Rewrites the head log to hold exactly the head's ticks.
    pub fn rewrite_log(&mut self, history: &History) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.wal_ids.clear();
        let mut bytes = WAL_MAGIC.to_vec();
        for (at, samples) in history.head_ticks() {
            bytes.extend(self.tick_bytes(at, &samples));
        }
        let path = self.wal_path();
        self.behind = true;
        write_atomically(&path, &bytes)?;
        self.wal = Some(
            OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|e| io_context(&path, e))?,
        );
        self.behind = false;
        Ok(())
    }

    /// Whether the files lack ticks held in memory (a write failed); [`Persistence::flush`]
    /// writes them.
    pub fn is_behind(&self) -> bool {
        self.behind || !self.unwritten.is_empty()
    }

    /// Writes one tick: appends it to the log, writes the block sealed with it, then catches up
    /// as [`Persistence::flush`] does. `head` locks the store, only when the log is rewritten.
    pub fn persist_tick<H: Deref<Target = History>>(
        &mut self,
        at_ms: i64,
        samples: &[(Arc<SeriesKey>, f64)],
        sealed: Option<SealedBlock>,
        head: impl FnOnce() -> H,
    ) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.unwritten.extend(sealed);
        let appended = if self.behind {
            Ok(())
        } else {
            self.record_tick(at_ms, samples)
        };
        let flushed = self.flush(head);
        // An append that failed is healed when the flush rewrote the log.
        appended
            .and(flushed)
            .or_else(|e| if self.is_behind() { Err(e) } else { Ok(()) })
    }

    /// Writes what an earlier failure left only in memory: blocks not yet written, then, when
    /// one was written or the log is behind, the whole log from the head `head` returns. The
    /// log is never rewritten while a block is unwritten, since it still holds that block's
    /// ticks: what reached the disk stays there until it is superseded.
    pub fn flush<H: Deref<Target = History>>(
        &mut self,
        head: impl FnOnce() -> H,
    ) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        let mut wrote_block = false;
        while let Some(block) = self.unwritten.first() {
            self.write_block(block)?;
            self.unwritten.remove(0);
            wrote_block = true;
        }
        if wrote_block || self.behind {
            self.rewrite_log(&head())?;
        }
        Ok(())
    }

    fn tick_bytes(&mut self, at_ms: i64, samples: &[(Arc<SeriesKey>, f64)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut ids = Vec::with_capacity(samples.len());
        for (key, v) in samples {
            let next = self.wal_ids.len() as u64;
            let id = *self.wal_ids.entry(Arc::clone(key)).or_insert_with(|| {
                let mut w = Writer::default();
                w.0.push(RECORD_SERIES);
                w.varint(next);
                w.key(key);
                out.extend(framed_record(&w.0));
                next
            });
            ids.push((id, *v));
        }
        let mut w = Writer::default();
        tick_record(&mut w, at_ms, &ids);
        out.extend(framed_record(&w.0));
        out
    }

    /// Appends one tick to the head log and fsyncs it.
    pub fn record_tick(&mut self, at_ms: i64, samples: &[(Arc<SeriesKey>, f64)]) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        let bytes = self.tick_bytes(at_ms, samples);
        let path = self.wal_path();
        let wal = self
            .wal
            .as_mut()
            .ok_or_else(|| io::Error::other("head log not open"))?;
        let appended = wal.write_all(&bytes).and_then(|()| wal.sync_data());
        // A torn record may end the log now: only a rewrite may touch it again.
        self.behind |= appended.is_err();
        appended.map_err(|e| io_context(&path, e))
    }

    /// Writes a sealed block's file. The caller then rewrites the log (see [`Persistence::rewrite_log`]).
    pub fn write_block(&self, block: &SealedBlock) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        let path = self
            .dir
            .join("blocks")
            .join(format!("{:016}.blk", block.first_ms));
        write_atomically(&path, &codec::frame(BLOCK_MAGIC, &block.encode()))
    }

    /// Removes the files of blocks that aged out.
    pub fn remove_blocks(&mut self, first_ticks: &[i64]) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        for first in first_ticks {
            let path = self.dir.join("blocks").join(format!("{first:016}.blk"));
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_context(&path, e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: &str) -> SeriesKey {
        SeriesKey {
            name: n.into(),
            labels: vec![],
        }
    }

    fn fill(h: &mut History, p: &mut Persistence, from: i64, to: i64) {
        for t in from..=to {
            let k = h.intern(key(if t % 2 == 0 { "even" } else { "odd" }));
            let all = h.intern(key("all"));
            let s = vec![(k, t as f64), (all, -(t as f64))];
            assert!(h.append(t * 1000, &s));
            p.record_tick(t * 1000, &s).unwrap();
            if let Some(b) = h.take_full_block() {
                p.write_block(&b).unwrap();
                p.rewrite_log(h).unwrap();
            }
        }
    }

    #[test]
    fn a_reopened_store_holds_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::new(i64::MAX / 4, 4);
        let (mut p, aside) = Persistence::open(dir.path(), &mut h, false, 0).unwrap();
        assert!(aside.is_empty());
        fill(&mut h, &mut p, 1, 10);
        drop(p);

        let mut again = History::new(i64::MAX / 4, 4);
        let (_p, aside) = Persistence::open(dir.path(), &mut again, false, 0).unwrap();
        assert!(aside.is_empty(), "{aside:?}");
        assert_eq!(again.stats().samples, 20, "blocks read back are counted");
        let all = again.intern(key("all"));
        let got = again.points(&all, 0, i64::MAX).unwrap();
        assert_eq!(got.len(), 10);
        assert_eq!(got[9], (10_000, -10.0));
        let even = again.intern(key("even"));
        assert_eq!(again.points(&even, 0, i64::MAX).unwrap().len(), 5);
    }

    #[test]
    fn a_torn_log_and_a_corrupt_block_are_set_aside_and_the_rest_loads() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::new(i64::MAX / 4, 4);
        let (mut p, _) = Persistence::open(dir.path(), &mut h, false, 0).unwrap();
        fill(&mut h, &mut p, 1, 10);
        drop(p);
        let wal = dir.path().join("history/head.wal");
        let len = fs::metadata(&wal).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&wal)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let block = dir.path().join("history/blocks/0000000000001000.blk");
        let mut bytes = fs::read(&block).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        fs::write(&block, bytes).unwrap();

        let mut again = History::new(i64::MAX / 4, 4);
        let (_p, aside) = Persistence::open(dir.path(), &mut again, false, 0).unwrap();
        assert_eq!(aside.len(), 2, "{aside:?}");
        assert!(aside
            .iter()
            .all(|s| s.moved_to.as_ref().is_some_and(|m| m.exists())));
        assert!(!block.exists());
        let all = again.intern(key("all"));
        let got: Vec<i64> = again
            .points(&all, 0, i64::MAX)
            .unwrap()
            .iter()
            .map(|p| p.0 / 1000)
            .collect();
        assert_eq!(
            got,
            vec![5, 6, 7, 8, 9],
            "block 1-4 lost, tick 10 torn, the rest kept"
        );
        // The rewritten log is clean: a third start sets nothing aside.
        let mut third = History::new(i64::MAX / 4, 4);
        let (_p, aside) = Persistence::open(dir.path(), &mut third, false, 0).unwrap();
        assert!(aside.is_empty(), "{aside:?}");
    }

    #[test]
    fn read_only_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("history")).unwrap();
        fs::write(dir.path().join("history/head.wal"), b"garbage").unwrap();
        let mut h = History::new(1000, 4);
        let (_p, aside) = Persistence::open(dir.path(), &mut h, true, 0).unwrap();
        assert_eq!(aside.len(), 1);
        assert_eq!(aside[0].moved_to, None);
        assert_eq!(
            fs::read(dir.path().join("history/head.wal")).unwrap(),
            b"garbage"
        );
    }
}
