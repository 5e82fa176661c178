//! Turns a [`Snapshot`] into the bytes `/metrics` serves: the OpenMetrics text written by
//! `prometheus-client`, plus its gzip form, built once per collection.
//!
//! Owns encoding and the cache of encoded bytes; a scrape only clones an `Arc` of them, so it
//! does no I/O and no encoding. It reads snapshots and never changes them.

use std::io::Write;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use prometheus_client::collector::Collector as ClientCollector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::model::{MetricKind, Snapshot};

/// The Content-Type of the encoded body.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One encoded exposition: plain and gzipped bytes of the same text.
#[derive(Debug, Clone)]
pub struct Exposition {
    /// The OpenMetrics text.
    pub plain: Bytes,
    /// The same text, gzip-compressed.
    pub gzip: Bytes,
    /// Whether a collection has finished (false only for the placeholder before the first).
    pub ready: bool,
}

impl Exposition {
    /// Encodes a snapshot.
    pub fn encode(snapshot: Snapshot) -> Exposition {
        let text = encode_text(snapshot);
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(text.len() / 4),
            flate2::Compression::fast(),
        );
        // Writing into a Vec cannot fail.
        gz.write_all(text.as_bytes()).expect("gzip into memory");
        let gzip = gz.finish().expect("gzip into memory");
        Exposition {
            plain: Bytes::from(text),
            gzip: Bytes::from(gzip),
            ready: true,
        }
    }
}

/// The latest exposition, swapped in whole after each collection.
#[derive(Debug, Clone)]
pub struct ExpositionCache(Arc<ArcSwap<Exposition>>);

impl ExpositionCache {
    /// A cache that serves `initial` until the first collection finishes.
    pub fn new(initial: Snapshot) -> Self {
        let mut first = Exposition::encode(initial);
        first.ready = false;
        Self(Arc::new(ArcSwap::from_pointee(first)))
    }

    /// Encodes and publishes a new snapshot.
    pub fn publish(&self, snapshot: Snapshot) {
        self.0.store(Arc::new(Exposition::encode(snapshot)));
    }

    /// The exposition to serve now.
    pub fn current(&self) -> Arc<Exposition> {
        self.0.load_full()
    }
}

/// Adapts a snapshot to prometheus-client's collector interface.
#[derive(Debug)]
struct SnapshotMetrics(Snapshot);

impl ClientCollector for SnapshotMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in &self.0.families {
            let (name, metric_type) = match family.kind {
                // prometheus-client appends `_total` to counter samples itself.
                MetricKind::Counter => (
                    family.name.strip_suffix("_total").unwrap_or(&family.name),
                    MetricType::Counter,
                ),
                MetricKind::Gauge => (family.name.as_str(), MetricType::Gauge),
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
                    MetricKind::Counter => ConstCounter::new(sample.value).encode(sample_encoder)?,
                    MetricKind::Gauge => ConstGauge::new(sample.value).encode(sample_encoder)?,
                }
            }
        }
        Ok(())
    }
}

fn encode_text(snapshot: Snapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotMetrics(snapshot)));
    let mut text = String::new();
    // Writing into a String cannot fail.
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode into memory");
    text
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
        let text = std::str::from_utf8(&e.plain).unwrap();
        assert!(text.contains("# TYPE a_ratio gauge\na_ratio 0.5\n"), "{text}");
        assert!(text.contains("# TYPE b_bytes counter\nb_bytes_total{direction=\"in\\\"x\"} 3.0\n"), "{text}");
        assert!(text.ends_with("# EOF\n"));
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(&e.gzip[..]).read_to_string(&mut unzipped).unwrap();
        assert_eq!(unzipped, text);
    }
}
