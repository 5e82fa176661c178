//! History benchmarks (`cargo bench --bench history`), figures for BENCHMARKS.md:
//! 1. bytes per sample on a recording of a real sentinel's `/metrics` (scraped every 15 s,
//!    `tests/fixtures/recording.prom.gz`) and on any recording in `RECORDINGS`, in the history's store against plain Gorilla XOR
//!    (per-series delta-of-delta timestamps and XOR values, as in the Gorilla paper and
//!    Prometheus's chunks), both lossless, measured in one run;
//! 2. append cost per collection with 200 series;
//! 3. aggregating 24 h of 200 series at 15 s into hourly averages;
//! 4. with `BENCH_DATA_DIR=DIR`, writes that 24 h history to DIR/history for
//!    `bench/history-rss.sh`, which measures `serve`'s memory with it (at 15 s, or at
//!    `BENCH_STEP_SECONDS`: 1 for `bench/per-second.sh`).
//!
//! The 200 series are the recording's series, repeated under extra label values and looped to
//! 24 h, so their values move as a real node's do.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use ipfs_sentinel::history::aggregate::{aggregate, Function};
use ipfs_sentinel::history::codec::{decompress_values, SealedBlock};
use ipfs_sentinel::history::persist::Persistence;
use ipfs_sentinel::history::{History, SeriesKey};

type Scrape = (i64, Vec<(SeriesKey, f64)>);

/// Reads a recording at `path`: `# scrape <unix ms>` then a text-format body, repeated,
/// gzipped. A recording cut short (its gzip stream unfinished) is read up to where it stops.
fn recording(path: &str) -> Vec<Scrape> {
    let mut bytes = Vec::new();
    let _ = flate2::read::GzDecoder::new(std::fs::File::open(path).expect("the recording"))
        .read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let mut scrapes: Vec<Scrape> = Vec::new();
    for line in text.lines() {
        if let Some(ms) = line.strip_prefix("# scrape ") {
            scrapes.push((ms.trim().parse().expect("a timestamp"), Vec::new()));
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
            None => (series, Vec::new()),
        };
        if let Some(last) = scrapes.last_mut() {
            last.1.push((
                SeriesKey {
                    name: name.to_owned(),
                    labels,
                },
                value,
            ));
        }
    }
    scrapes.retain(|s| !s.1.is_empty());
    scrapes
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = text
        .split("\",")
        .filter_map(|pair| {
            let (k, v) = pair.split_once("=\"")?;
            Some((
                k.trim_matches(',').to_owned(),
                v.trim_end_matches('"').to_owned(),
            ))
        })
        .collect();
    labels.sort();
    labels
}

/// Bits Gorilla XOR needs for one series (timestamps and values), as the paper encodes them.
fn gorilla_bits(points: &[(i64, f64)]) -> u64 {
    let Some(&(t0, v0)) = points.first() else {
        return 0;
    };
    let mut bits = 64 + 64; // first timestamp and value in full
    let (mut prev_t, mut prev_delta, mut prev_v) = (t0, 0i64, v0.to_bits());
    let (mut lead, mut trail) = (u32::MAX, 0u32);
    for (i, &(t, v)) in points.iter().enumerate().skip(1) {
        let delta = t - prev_t;
        if i == 1 {
            bits += 14;
        } else {
            let dod = delta - prev_delta;
            bits += match dod {
                0 => 1,
                -63..=64 => 2 + 7,
                -255..=256 => 3 + 9,
                -2047..=2048 => 4 + 12,
                _ => 4 + 32,
            };
        }
        prev_delta = delta;
        prev_t = t;
        let x = v.to_bits() ^ prev_v;
        prev_v = v.to_bits();
        if x == 0 {
            bits += 1;
            continue;
        }
        let (l, tr) = (x.leading_zeros().min(31), x.trailing_zeros());
        if lead != u32::MAX && l >= lead && tr >= trail {
            bits += 2 + u64::from(64 - lead - trail);
        } else {
            bits += 2 + 5 + 6 + u64::from(64 - l - tr);
            lead = l;
            trail = tr;
        }
    }
    bits
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Bytes per sample of `scrapes` in the store (every block sealed) against Gorilla XOR, and a
/// check that the store gives back every sample it was given, bit for bit.
fn bytes_per_sample(name: &str, scrapes: &[Scrape]) {
    let samples: usize = scrapes.iter().map(|s| s.1.len()).sum();
    let span_h = (scrapes.last().unwrap().0 - scrapes[0].0) as f64 / 3.6e6;
    println!(
        "{name}: {} scrapes over {span_h:.2} h, {samples} samples",
        scrapes.len()
    );
    let mut h = History::new(i64::MAX / 4, 480);
    let mut per_series: BTreeMap<SeriesKey, Vec<(i64, f64)>> = BTreeMap::new();
    let mut sealed_bytes = 0usize;
    let mut column_bytes = 0usize;
    let mut key_bytes = 0usize;
    let mut encoded: Vec<Vec<u8>> = Vec::new();
    for (t, tick) in scrapes {
        let interned: Vec<(Arc<SeriesKey>, f64)> = tick
            .iter()
            .map(|(k, v)| (h.intern(k.clone()), *v))
            .collect();
        h.append(*t, &interned);
        for (k, v) in tick {
            per_series.entry(k.clone()).or_default().push((*t, *v));
        }
        if let Some(block) = h.take_full_block() {
            encoded.push(block.encode());
            sealed_bytes += encoded.last().map_or(0, Vec::len);
            column_bytes += block.columns.iter().map(|c| c.values.len()).sum::<usize>()
                + ipfs_sentinel::history::codec::compress_ticks(&block.ticks).len();
        }
    }
    // Seal the rest as one more block, as the store will when it fills.
    let head = h.head_ticks();
    let last_ticks = head.len();
    let mut rest_block_bytes = 0;
    if last_ticks > 0 {
        let mut rest = History::new(i64::MAX / 4, last_ticks);
        for (t, s) in head {
            let s: Vec<_> = s
                .into_iter()
                .map(|(k, v)| (rest.intern((*k).clone()), v))
                .collect();
            rest.append(t, &s);
        }
        if let Some(b) = rest.take_full_block() {
            encoded.push(b.encode());
            rest_block_bytes = encoded.last().map_or(0, Vec::len);
            column_bytes += b.columns.iter().map(|c| c.values.len()).sum::<usize>()
                + ipfs_sentinel::history::codec::compress_ticks(&b.ticks).len();
        }
    }
    // Lossless: decode the blocks' bytes and compare every sample, bit for bit.
    let mut back: BTreeMap<SeriesKey, Vec<(i64, f64)>> = BTreeMap::new();
    for bytes in &encoded {
        let block = SealedBlock::decode(bytes, Arc::new).expect("a block decodes");
        for c in &block.columns {
            key_bytes += c.key.name.len()
                + c.key
                    .labels
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 2)
                    .sum::<usize>();
            let flags = c.presence.flags(block.n_ticks).expect("presence decodes");
            let mut values = decompress_values(&c.values)
                .expect("values decode")
                .into_iter();
            let points = back.entry((*c.key).clone()).or_default();
            for (&t, present) in block.ticks.iter().zip(flags) {
                if present {
                    points.push((t, values.next().unwrap_or(f64::NAN)));
                }
            }
        }
    }
    let differ = per_series
        .iter()
        .filter(|(key, points)| {
            let got = back.get(*key).map_or(&[][..], Vec::as_slice);
            got.len() != points.len()
                || !got
                    .iter()
                    .zip(points.iter())
                    .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits())
        })
        .count();
    let store_bytes = sealed_bytes + rest_block_bytes;
    let gorilla_bytes: u64 = per_series.values().map(|p| gorilla_bits(p)).sum::<u64>() / 8;
    let store_bps = store_bytes as f64 / samples as f64;
    let gorilla_bps = gorilla_bytes as f64 / samples as f64;
    let columns_bps = column_bytes as f64 / samples as f64;
    println!(
        "{name}: {} series; bytes per sample, Gorilla XOR (timestamps and values, keys excluded): {gorilla_bps:.3}",
        per_series.len()
    );
    println!("{name}: bytes per sample, store files (ticks, values, presence and the series keys each block repeats): {store_bps:.3} = {:.2} x Gorilla ({store_bytes} bytes in {} blocks, of which about {key_bytes} the keys' text)", store_bps / gorilla_bps, encoded.len());
    println!("{name}: bytes per sample, store columns (ticks and values, keys excluded, as Gorilla): {columns_bps:.3} = {:.2} x Gorilla", columns_bps / gorilla_bps);
    println!(
        "{name}: lossless: {} of {} series read back bit for bit from the history{}",
        per_series.len() - differ,
        per_series.len(),
        if differ == 0 { "" } else { " (SOME DIFFER)" }
    );
}

fn main() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/recording.prom.gz"
    );
    let scrapes = recording(fixture);
    bytes_per_sample("recording", &scrapes);
    // More recordings of the same shape (bench/record-metrics.py), colon-separated.
    if let Ok(paths) = std::env::var("RECORDINGS") {
        for path in paths.split(':').filter(|p| !p.is_empty()) {
            bytes_per_sample(path, &recording(path));
        }
    }

    // 2-3. 200 series, 24 h at 15 s, looped from the recording.
    let base: Vec<&Scrape> = scrapes.iter().collect();
    let per_tick = base[0].1.len().max(1);
    let copies = 200usize.div_ceil(per_tick);
    let ticks = 24 * 3600 / 15;
    let start_ms = 1_790_000_000_000i64;
    let mut full = History::new(25 * 3_600_000, 480);
    let mut append_ns = Vec::new();
    let keys: Vec<Vec<Arc<SeriesKey>>> = (0..copies)
        .map(|c| {
            base[0]
                .1
                .iter()
                .take(200 - c * per_tick.min(200))
                .map(|(k, _)| {
                    let mut k = k.clone();
                    k.labels.push(("copy".into(), c.to_string()));
                    k.labels.sort();
                    full.intern(k)
                })
                .collect()
        })
        .collect();
    let mut written = 0usize;
    for i in 0..ticks {
        let scrape = &base[i % base.len()].1;
        let mut tick: Vec<(Arc<SeriesKey>, f64)> = Vec::with_capacity(200);
        'fill: for copy in &keys {
            for (j, key) in copy.iter().enumerate() {
                if tick.len() == 200 {
                    break 'fill;
                }
                let v = scrape.get(j).map_or(0.0, |s| s.1);
                tick.push((Arc::clone(key), v));
            }
        }
        written = tick.len();
        let at = start_ms + i as i64 * 15_000 + (i as i64 * 7919) % 40;
        let began = Instant::now();
        full.append(at, &tick);
        full.take_full_block();
        append_ns.push(began.elapsed().as_nanos() as f64);
    }
    let sealing: Vec<f64> = append_ns.iter().copied().filter(|ns| *ns > 1e6).collect();
    println!(
        "append, {written} series: median {:.1} µs per collection; {} sealing appends, median {:.1} ms",
        median(append_ns.clone()) / 1e3,
        sealing.len(),
        if sealing.is_empty() { 0.0 } else { median(sealing) / 1e6 }
    );
    let stats = full.stats();
    println!(
        "24 h of {} series: {} samples, {:.2} MB held ({:.3} bytes per sample)",
        stats.series,
        stats.samples,
        stats.bytes as f64 / 1e6,
        stats.bytes as f64 / stats.samples as f64
    );

    let end_ms = start_ms + ticks as i64 * 15_000;
    let series = full.series(|_| true);
    let mut runs = Vec::new();
    for _ in 0..5 {
        let began = Instant::now();
        let mut buckets = 0;
        for key in &series {
            let points = full.points(key, start_ms, end_ms).expect("readable");
            buckets += aggregate(&points, start_ms, end_ms, 3_600_000, Function::Avg).len();
        }
        assert!(buckets >= series.len() * 24);
        runs.push(began.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "hourly averages of 24 h x {} series: median {:.1} ms over 5 runs",
        series.len(),
        median(runs)
    );

    if let Some(dir) = std::env::var_os("BENCH_DATA_DIR") {
        let dir = std::path::PathBuf::from(dir);
        let mut empty = History::new(i64::MAX / 4, 480);
        let (mut p, _) =
            Persistence::open(&dir, &mut empty, false, 0).expect("open the bench data dir");
        let mut written_blocks = 0;
        let mut again = History::new(i64::MAX / 4, 480);
        for key in &series {
            again.intern((**key).clone());
        }
        // Replay the same ticks through a fresh store, writing each sealed block: 24 h at
        // BENCH_STEP_SECONDS (default 15; 1 for the per-second bench).
        let step_ms: i64 = std::env::var("BENCH_STEP_SECONDS")
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(15)
            * 1000;
        let ticks = (24 * 3_600_000 / step_ms) as usize;
        for i in 0..ticks {
            let scrape = &base[i % base.len()].1;
            let tick: Vec<(Arc<SeriesKey>, f64)> = series
                .iter()
                .enumerate()
                .map(|(j, k)| {
                    (
                        again.intern((**k).clone()),
                        scrape.get(j % per_tick).map_or(0.0, |s| s.1),
                    )
                })
                .collect();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            let at = now - (ticks - i) as i64 * step_ms;
            again.append(at, &tick);
            if let Some(b) = again.take_full_block() {
                p.write_block(&b).expect("write a block");
                written_blocks += 1;
            }
        }
        p.rewrite_log(&again).expect("write the head log");
        println!(
            "wrote {written_blocks} blocks and the head to {}",
            dir.display()
        );
    }
}
