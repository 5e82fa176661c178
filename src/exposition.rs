//! Turns a [`Snapshot`] into the bytes `/metrics` serves, built once per collection: the
//! OpenMetrics text written by `prometheus-client` for clients that ask for it (Prometheus
//! does), the classic text format 0.0.4 for everyone else (curl, `promtool check metrics`,
//! older scrapers), and the gzip form of each.
//!
//! Owns encoding and the cache of the latest snapshot with its encoded bytes; a scrape only
//! clones an `Arc` of them, so it does no I/O and no encoding. The gzip form of a format is
//! built with each collection when a scraper asked for it since the one before (a regular
//! scraper, then, never waits for it), and otherwise by the first scrape that asks, then kept
//! for the others: at one collection a second, compressing both formats for nobody was a
//! tenth of the sentinel's CPU. One compressor is kept and reset between bodies rather than
//! built anew for each (its state is some 300 kB to allocate and zero-fill). Other readers of the latest
//! snapshot (the status API, the cluster collector) take it from here too. It reads snapshots
//! and never changes them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use arc_swap::ArcSwap;
use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};
use prometheus_client::collector::Collector as ClientCollector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::model::{MetricKind, Snapshot};

/// A wire format of the exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    Text,
}

impl Format {
    fn index(self) -> usize {
        match self {
            Format::OpenMetrics => 0,
            Format::Text => 1,
        }
    }

    /// The Content-Type of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The gzip member header flate2's `GzEncoder` writes at `Compression::fast()`: no name, no
/// time, XFL 4 (fastest), OS 255 (unknown).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255];

/// The compressor kept across collections, and which formats' gzip forms were asked for since
/// the last collection.
#[derive(Debug)]
struct Gzipper {
    deflate: Mutex<Compress>,
    asked: [AtomicBool; 2],
}

impl Gzipper {
    fn new() -> Arc<Gzipper> {
        Arc::new(Gzipper {
            deflate: Mutex::new(Compress::new(Compression::fast(), false)),
            asked: [AtomicBool::new(false), AtomicBool::new(false)],
        })
    }

    /// `plain` as one gzip member; `None` if the compressor refused (it does not, for a reset
    /// raw deflate stream finished in one call).
    fn gzip(&self, plain: &[u8]) -> Option<Bytes> {
        let mut deflate = self.deflate.lock().unwrap_or_else(PoisonError::into_inner);
        deflate.reset();
        let mut out = Vec::with_capacity(GZIP_HEADER.len() + plain.len() / 4 + 64);
        out.extend_from_slice(&GZIP_HEADER);
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            }
            let consumed = usize::try_from(deflate.total_in()).ok()?;
            match deflate.compress_vec(plain.get(consumed..)?, &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => break,
                Ok(Status::Ok | Status::BufError) => {}
                Err(_) => return None,
            }
        }
        out.extend_from_slice(&crc32fast::hash(plain).to_le_bytes());
        // ISIZE: the length modulo 2^32, as RFC 1952 has it.
        out.extend_from_slice(&(plain.len() as u32).to_le_bytes());
        Some(Bytes::from(out))
    }
}

/// One body in one format: the text, and its gzip form built once when needed.
#[derive(Debug, Clone)]
pub struct Body {
    /// The text.
    pub plain: Bytes,
    format: Format,
    gzip: OnceLock<Option<Bytes>>,
    gzipper: Arc<Gzipper>,
}

impl Body {
    fn new(text: String, format: Format, gzipper: &Arc<Gzipper>) -> Body {
        Body {
            plain: Bytes::from(text),
            format,
            gzip: OnceLock::new(),
            gzipper: Arc::clone(gzipper),
        }
    }

    /// The same text, gzip-compressed (one member, as `Content-Encoding: gzip` wants); `None`
    /// if it could not be compressed, and the plain text should be served instead.
    pub fn gzip(&self) -> Option<Bytes> {
        self.gzipper.asked[self.format.index()].store(true, Ordering::Relaxed);
        self.gzip
            .get_or_init(|| self.gzipper.gzip(&self.plain))
            .clone()
    }
}

/// One snapshot with its encodings, in every format.
#[derive(Debug, Clone)]
pub struct Exposition {
    /// The snapshot itself, for readers that want values rather than text.
    pub snapshot: Arc<Snapshot>,
    /// OpenMetrics text.
    pub openmetrics: Body,
    /// Text format 0.0.4.
    pub text: Body,
    /// Whether every collector has reported at least once.
    pub ready: bool,
}

impl Exposition {
    /// Encodes a snapshot.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use ipfs_sentinel::exposition::{Exposition, Format};
    /// use ipfs_sentinel::model::{Family, Snapshot};
    ///
    /// let snapshot = Snapshot::new(
    ///     SystemTime::UNIX_EPOCH,
    ///     vec![
    ///         Family::gauge("ipfs_sentinel_ipfs_peers", "Connected swarm peers.").with(&[], 42.0),
    ///         Family::counter("ipfs_sentinel_ipfs_api_errors_total", "Failed Kubo RPC calls.")
    ///             .with(&[("endpoint", "id")], 3.0),
    ///     ],
    /// );
    /// let exposition = Exposition::encode(snapshot);
    /// // Text format 0.0.4: a counter's HELP and TYPE carry its _total name; no # EOF.
    /// let text = std::str::from_utf8(&exposition.body(Format::Text).plain).unwrap();
    /// let expected = [
    ///     "# HELP ipfs_sentinel_ipfs_api_errors_total Failed Kubo RPC calls.",
    ///     "# TYPE ipfs_sentinel_ipfs_api_errors_total counter",
    ///     "ipfs_sentinel_ipfs_api_errors_total{endpoint=\"id\"} 3.0",
    ///     "# HELP ipfs_sentinel_ipfs_peers Connected swarm peers.",
    ///     "# TYPE ipfs_sentinel_ipfs_peers gauge",
    ///     "ipfs_sentinel_ipfs_peers 42.0",
    /// ];
    /// assert_eq!(text.lines().collect::<Vec<_>>(), expected);
    /// // OpenMetrics: the counter family is named without _total, and the body ends in # EOF.
    /// let om = std::str::from_utf8(&exposition.body(Format::OpenMetrics).plain).unwrap();
    /// assert!(om.contains("# TYPE ipfs_sentinel_ipfs_api_errors counter\n"));
    /// assert!(om.ends_with("# EOF\n"));
    /// ```
    pub fn encode(snapshot: Snapshot) -> Exposition {
        Exposition::encode_with(Arc::new(snapshot), &Gzipper::new())
    }

    fn encode_with(snapshot: Arc<Snapshot>, gzipper: &Arc<Gzipper>) -> Exposition {
        let openmetrics = encode_openmetrics(Arc::clone(&snapshot));
        let text = openmetrics_to_text(&openmetrics);
        Exposition {
            snapshot,
            openmetrics: Body::new(openmetrics, Format::OpenMetrics, gzipper),
            text: Body::new(text, Format::Text, gzipper),
            ready: true,
        }
    }

    /// The body in `format`.
    pub fn body(&self, format: Format) -> &Body {
        match format {
            Format::OpenMetrics => &self.openmetrics,
            Format::Text => &self.text,
        }
    }
}

/// The latest exposition, swapped in whole after each collection.
#[derive(Debug, Clone)]
pub struct ExpositionCache {
    latest: Arc<ArcSwap<Exposition>>,
    gzipper: Arc<Gzipper>,
}

impl ExpositionCache {
    /// A cache that serves `initial` until the first collection finishes.
    pub fn new(initial: Snapshot) -> Self {
        let gzipper = Gzipper::new();
        let mut first = Exposition::encode_with(Arc::new(initial), &gzipper);
        first.ready = false;
        Self {
            latest: Arc::new(ArcSwap::from_pointee(first)),
            gzipper,
        }
    }

    /// Encodes and publishes a new snapshot; `ready` says every source has reported once. The
    /// gzip form of each format a scraper asked for since the last publish is built now.
    pub fn publish(&self, snapshot: impl Into<Arc<Snapshot>>, ready: bool) {
        let mut exposition = Exposition::encode_with(snapshot.into(), &self.gzipper);
        exposition.ready = ready;
        for format in [Format::OpenMetrics, Format::Text] {
            if self.gzipper.asked[format.index()].swap(false, Ordering::Relaxed) {
                let body = exposition.body(format);
                body.gzip.get_or_init(|| self.gzipper.gzip(&body.plain));
            }
        }
        self.latest.store(Arc::new(exposition));
    }

    /// The exposition to serve now.
    pub fn current(&self) -> Arc<Exposition> {
        self.latest.load_full()
    }
}

/// Adapts a snapshot to prometheus-client's collector interface.
#[derive(Debug)]
struct SnapshotMetrics(Arc<Snapshot>);

impl ClientCollector for SnapshotMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in &self.0.families {
            let (name, metric_type) = match family.kind {
                // prometheus-client appends `_total` to counter samples itself.
                MetricKind::Counter => (
                    family.name.strip_suffix("_total").unwrap_or(&family.name),
                    MetricType::Counter,
                ),
                MetricKind::Gauge => (&*family.name, MetricType::Gauge),
            };
            let mut metric = encoder.encode_descriptor(name, &family.help, None, metric_type)?;
            for sample in &family.samples {
                let labels: Vec<(&str, &str)> = sample
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let sample_encoder = metric.encode_family(&labels)?;
                match family.kind {
                    MetricKind::Counter => {
                        ConstCounter::new(sample.value).encode(sample_encoder)?
                    }
                    MetricKind::Gauge => ConstGauge::new(sample.value).encode(sample_encoder)?,
                }
            }
        }
        Ok(())
    }
}

fn encode_openmetrics(snapshot: Arc<Snapshot>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotMetrics(snapshot)));
    let mut text = String::new();
    // Writing into a String cannot fail.
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode into memory");
    text
}

/// Rewrites prometheus-client's OpenMetrics text as text format 0.0.4. They differ, for what
/// we emit, in two things: a counter family is named with its `_total` suffix in `# HELP` and
/// `# TYPE`, and there is no `# EOF`.
fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 32 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let header = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match header {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Family;
    use std::io::Read;
    use std::time::SystemTime;

    #[test]
    fn encodes_gauges_counters_labels_and_gzip() {
        let snapshot = Snapshot::new(
            SystemTime::UNIX_EPOCH,
            vec![
                Family::single_gauge("a_ratio", "A ratio.", 0.5),
                Family::counter("b_bytes_total", "B.").with(&[("direction", "in\"x")], 3.0),
            ],
        );
        let e = Exposition::encode(snapshot);
        let om = std::str::from_utf8(&e.openmetrics.plain).unwrap();
        assert!(om.contains("# TYPE a_ratio gauge\na_ratio 0.5\n"), "{om}");
        assert!(
            om.contains("# TYPE b_bytes counter\nb_bytes_total{direction=\"in\\\"x\"} 3.0\n"),
            "{om}"
        );
        assert!(om.ends_with("# EOF\n"));
        let text = std::str::from_utf8(&e.text.plain).unwrap();
        assert!(
            text.contains("# HELP b_bytes_total B.\n# TYPE b_bytes_total counter\nb_bytes_total{"),
            "{text}"
        );
        assert!(
            text.contains("# HELP a_ratio A ratio.\n# TYPE a_ratio gauge\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"));
        for body in [&e.openmetrics, &e.text] {
            let mut unzipped = String::new();
            flate2::read::GzDecoder::new(&body.gzip().unwrap()[..])
                .read_to_string(&mut unzipped)
                .unwrap();
            assert_eq!(unzipped.as_bytes(), &body.plain[..]);
        }
    }

    /// The gzip form as flate2's own encoder writes it, byte for byte, from one compressor
    /// reset between bodies of every size (empty, one byte, larger than its 32 kB window).
    #[test]
    fn gzip_from_the_kept_compressor_is_what_a_fresh_encoder_writes() {
        use std::io::Write;
        let gzipper = Gzipper::new();
        let long: String = (0..20_000)
            .map(|i| format!("m{{i=\"{i}\"}} {}\n", i % 7))
            .collect();
        for plain in ["", "x", "# EOF\n", long.as_str(), "a", long.as_str()] {
            let mut fresh = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
            fresh.write_all(plain.as_bytes()).unwrap();
            let fresh = fresh.finish().unwrap();
            let kept = gzipper.gzip(plain.as_bytes()).unwrap();
            assert_eq!(&kept[..], &fresh[..], "{} bytes", plain.len());
        }
    }

    #[test]
    fn gzip_is_built_at_publish_for_the_formats_asked_for_since_the_last_one() {
        let snapshot = || {
            Snapshot::new(
                SystemTime::UNIX_EPOCH,
                vec![Family::single_gauge("a_ratio", "A ratio.", 0.5)],
            )
        };
        let cache = ExpositionCache::new(snapshot());
        cache.publish(snapshot(), true);
        let first = cache.current();
        assert!(first.openmetrics.gzip.get().is_none() && first.text.gzip.get().is_none());
        assert!(first.text.gzip().is_some(), "built when a scrape asks");
        cache.publish(snapshot(), true);
        let second = cache.current();
        assert!(
            second.text.gzip.get().is_some(),
            "asked for: built at publish"
        );
        assert!(
            second.openmetrics.gzip.get().is_none(),
            "not asked for: left"
        );
        cache.publish(snapshot(), true);
        assert!(
            cache.current().text.gzip.get().is_none(),
            "no scrape asked since the last publish"
        );
    }
}
