//! Binary encoding of sealed blocks and of the head log: `pco` for the numeric columns (tick
//! timestamps and each series' values), run lengths for presence, and a small length-prefixed
//! framing with a CRC-32 so a torn or corrupt file is detected, never misread.
//!
//! Owns bytes only: no files, no clocks. Every reader here returns an error on bad input and
//! never panics, whatever the bytes.

use std::sync::Arc;

use pco::standalone::{simple_compress, simple_decompress};
use pco::ChunkConfig;

use super::SeriesKey;

/// Why bytes could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct DecodeError(pub String);

fn bad(what: &str) -> DecodeError {
    DecodeError(what.to_owned())
}

/// Appends primitive values to a byte buffer.
#[derive(Debug, Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// An unsigned LEB128 integer.
    pub fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }
    /// A little-endian u64.
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A length-prefixed byte string.
    pub fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    /// A series key: name and labels.
    pub fn key(&mut self, key: &SeriesKey) {
        self.str(&key.name);
        self.varint(key.labels.len() as u64);
        for (k, v) in &key.labels {
            self.str(k);
            self.str(v);
        }
    }
}

/// Reads what [`Writer`] wrote, checking every length against what is left.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// See [`Writer::varint`].
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| bad("truncated number"))?;
            self.buf = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("number too long"))
    }
    /// A count that must fit what is left (each item takes at least one byte).
    pub fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        if n > self.buf.len() as u64 * 8 + 64 {
            return Err(bad("count larger than the data"));
        }
        Ok(n as usize)
    }
    /// See [`Writer::u64`].
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let raw = self.take(8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(raw);
        Ok(u64::from_le_bytes(b))
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(bad("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    /// See [`Writer::bytes`].
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| bad("length too large"))?;
        self.take(n)
    }
    /// See [`Writer::str`].
    pub fn str(&mut self) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| bad("text is not UTF-8"))
    }
    /// See [`Writer::key`].
    pub fn key(&mut self) -> Result<SeriesKey, DecodeError> {
        let name = self.str()?;
        let n = self.count()?;
        let mut labels = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            labels.push((self.str()?, self.str()?));
        }
        Ok(SeriesKey { name, labels })
    }
}

/// Compresses a column of timestamps (ms).
pub fn compress_ticks(ticks: &[i64]) -> Vec<u8> {
    simple_compress(ticks, &ChunkConfig::default()).unwrap_or_default()
}

/// Decompresses what [`compress_ticks`] made.
pub fn decompress_ticks(bytes: &[u8]) -> Result<Vec<i64>, DecodeError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    simple_decompress(bytes).map_err(|e| DecodeError(format!("ticks: {e}")))
}

/// Compresses a column of values, bit-exactly (NaN payloads, -0.0 and infinities included).
pub fn compress_values(values: &[f64]) -> Vec<u8> {
    simple_compress(values, &ChunkConfig::default()).unwrap_or_default()
}

/// Decompresses what [`compress_values`] made.
pub fn decompress_values(bytes: &[u8]) -> Result<Vec<f64>, DecodeError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    simple_decompress(bytes).map_err(|e| DecodeError(format!("values: {e}")))
}

/// Which ticks of a block a series has a value at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// Every tick.
    All,
    /// Alternating run lengths, starting with a run of present ticks (which may be 0).
    Runs(Vec<u32>),
}

impl Presence {
    /// Builds the presence of a column from one flag per tick.
    pub fn from_flags(flags: &[bool]) -> Presence {
        if flags.iter().all(|f| *f) {
            return Presence::All;
        }
        let mut runs = Vec::new();
        let mut current = true;
        let mut length = 0u32;
        for &f in flags {
            if f == current {
                length += 1;
            } else {
                runs.push(length);
                current = f;
                length = 1;
            }
        }
        runs.push(length);
        Presence::Runs(runs)
    }

    /// One flag per tick, for a block of `n` ticks.
    pub fn flags(&self, n: usize) -> Result<Vec<bool>, DecodeError> {
        match self {
            Presence::All => Ok(vec![true; n]),
            Presence::Runs(runs) => {
                let mut flags = Vec::with_capacity(n);
                let mut present = true;
                for &run in runs {
                    if flags.len() + run as usize > n {
                        return Err(bad("presence longer than the block"));
                    }
                    flags.extend(std::iter::repeat_n(present, run as usize));
                    present = !present;
                }
                if flags.len() != n {
                    return Err(bad("presence shorter than the block"));
                }
                Ok(flags)
            }
        }
    }

    fn write(&self, w: &mut Writer) {
        match self {
            Presence::All => w.varint(0),
            Presence::Runs(runs) => {
                w.varint(runs.len() as u64);
                for r in runs {
                    w.varint(u64::from(*r));
                }
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Presence, DecodeError> {
        let n = r.count()?;
        if n == 0 {
            return Ok(Presence::All);
        }
        let mut runs = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            runs.push(u32::try_from(r.varint()?).map_err(|_| bad("run too long"))?);
        }
        Ok(Presence::Runs(runs))
    }
}

/// One series' part of a sealed block.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedColumn {
    /// Which series.
    pub key: Arc<SeriesKey>,
    /// At which ticks it has values.
    pub presence: Presence,
    /// Its present values, pco-compressed.
    pub values: Vec<u8>,
}

/// A block of ticks sealed and compressed.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedBlock {
    /// First tick, ms since the Unix epoch.
    pub first_ms: i64,
    /// Last tick, ms since the Unix epoch.
    pub last_ms: i64,
    /// Number of ticks.
    pub n_ticks: usize,
    /// Tick timestamps, ms. Kept decoded in memory (shared by every column, 8 bytes a tick),
    /// pco-compressed on disk.
    pub ticks: Vec<i64>,
    /// One column per series present in the block.
    pub columns: Vec<SealedColumn>,
}

impl SealedBlock {
    /// Compressed bytes held (ticks and values).
    pub fn byte_size(&self) -> usize {
        self.ticks.len()
            + self
                .columns
                .iter()
                .map(|c| c.values.len() + 16)
                .sum::<usize>()
    }

    /// The block as bytes (without framing).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.varint(self.n_ticks as u64);
        w.u64(self.first_ms as u64);
        w.u64(self.last_ms as u64);
        w.bytes(&compress_ticks(&self.ticks));
        w.varint(self.columns.len() as u64);
        for c in &self.columns {
            w.key(&c.key);
            c.presence.write(&mut w);
            w.bytes(&c.values);
        }
        w.0
    }

    /// Reads what [`SealedBlock::encode`] wrote; `intern` gives each key its shared instance.
    pub fn decode(
        bytes: &[u8],
        mut intern: impl FnMut(SeriesKey) -> Arc<SeriesKey>,
    ) -> Result<SealedBlock, DecodeError> {
        let mut r = Reader::new(bytes);
        let n_ticks = r.count()?;
        let first_ms = r.u64()? as i64;
        let last_ms = r.u64()? as i64;
        let ticks = decompress_ticks(r.bytes()?)?;
        if ticks.len() != n_ticks {
            return Err(bad("tick count does not match the ticks"));
        }
        let n = r.count()?;
        let mut columns = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let key = intern(r.key()?);
            let presence = Presence::read(&mut r)?;
            let values = r.bytes()?.to_vec();
            columns.push(SealedColumn {
                key,
                presence,
                values,
            });
        }
        if !r.is_empty() {
            return Err(bad("trailing bytes after the block"));
        }
        Ok(SealedBlock {
            first_ms,
            last_ms,
            n_ticks,
            ticks,
            columns,
        })
    }
}

/// Wraps bytes in a frame: magic, length, payload, CRC-32 of the payload.
pub fn frame(magic: &[u8; 6], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 18);
    out.extend_from_slice(magic);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out
}

/// Checks and strips a frame made by [`frame`].
pub fn unframe<'a>(magic: &[u8; 6], bytes: &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let rest = bytes
        .strip_prefix(&magic[..])
        .ok_or_else(|| bad("not an ipfs-sentinel history file (bad magic)"))?;
    if rest.len() < 12 {
        return Err(bad("truncated"));
    }
    let (len, rest) = rest.split_at(8);
    let len = u64::from_le_bytes(len.try_into().map_err(|_| bad("truncated"))?);
    if len != (rest.len() as u64).saturating_sub(4) {
        return Err(bad("truncated or padded: length does not match"));
    }
    let (payload, crc) = rest.split_at(rest.len() - 4);
    let crc = u32::from_le_bytes(crc.try_into().map_err(|_| bad("truncated"))?);
    if crc32fast::hash(payload) != crc {
        return Err(bad("checksum mismatch"));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_f64_bits() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            Just(f64::NAN),
            Just(-0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            Just(5e-324),
            (0u32..1000).prop_map(f64::from),
        ]
    }

    proptest! {
        #[test]
        fn values_round_trip_bit_exactly(values in prop::collection::vec(any_f64_bits(), 0..600)) {
            let back = decompress_values(&compress_values(&values)).unwrap();
            prop_assert_eq!(back.len(), values.len());
            for (a, b) in back.iter().zip(&values) {
                prop_assert_eq!(a.to_bits(), b.to_bits());
            }
        }

        #[test]
        fn irregular_ticks_round_trip(start in 0i64..4_000_000_000_000, gaps in prop::collection::vec(1i64..10_000_000, 0..600)) {
            let mut t = start;
            let ticks: Vec<i64> = gaps.iter().map(|g| { t += g; t }).collect();
            prop_assert_eq!(decompress_ticks(&compress_ticks(&ticks)).unwrap(), ticks);
        }

        #[test]
        fn presence_round_trips(flags in prop::collection::vec(any::<bool>(), 0..500)) {
            let p = Presence::from_flags(&flags);
            prop_assert_eq!(p.flags(flags.len()).unwrap(), flags);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = SealedBlock::decode(&bytes, Arc::new);
            let _ = unframe(b"IPSHB1", &bytes);
        }
    }

    #[test]
    fn frames_detect_truncation_and_corruption() {
        let framed = frame(b"IPSHB1", b"payload");
        assert_eq!(unframe(b"IPSHB1", &framed).unwrap(), b"payload");
        assert!(unframe(b"IPSHB1", &framed[..framed.len() - 1]).is_err());
        let mut flipped = framed.clone();
        flipped[15] ^= 1;
        assert_eq!(
            unframe(b"IPSHB1", &flipped).unwrap_err().0,
            "checksum mismatch"
        );
        assert!(unframe(b"IPSHW1", &framed).is_err());
    }
}
