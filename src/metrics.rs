//! Metrics primitives (Prometheus): lock-free histograms, the encoding
//! helpers, and the [`Exporter`] that renders `/metrics`.
//!
//! Each component owns its counters and says how they read (as CoreDNS
//! plugins do): it implements [`Export`] beside them (the DNS counters in
//! `dns::metrics`, the forwarder's in `dns::forward`, the refresh's in
//! `refresh`, ZooKeeper detection's in `detect`, the records in service in
//! `snapshot`). The wiring at the top collects them into one [`Exporter`],
//! which the HTTP API renders on each scrape. This module knows none of
//! them.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// A histogram with fixed bucket bounds, updated with relaxed atomics.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    /// Non-cumulative counts; the last slot is +Inf.
    buckets: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        AtomicHistogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self.bounds.iter().position(|&b| secs <= b).unwrap_or(self.bounds.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// (sum in seconds, count, per-bucket counts), merged over `parts`
    /// (the encoder makes the buckets cumulative).
    fn snapshot<'a>(
        parts: impl Iterator<Item = &'a AtomicHistogram>,
    ) -> (f64, u64, Vec<(f64, u64)>) {
        let mut bounds: &[f64] = &[];
        let mut counts: Vec<u64> = Vec::new();
        let mut sum = 0u64;
        for h in parts {
            bounds = h.bounds;
            counts.resize(h.buckets.len(), 0);
            for (c, b) in counts.iter_mut().zip(&h.buckets) {
                *c += b.load(Ordering::Relaxed);
            }
            sum = sum.saturating_add(h.sum_nanos.load(Ordering::Relaxed));
        }
        let buckets: Vec<(f64, u64)> = counts
            .iter()
            .enumerate()
            .map(|(i, &c)| (bounds.get(i).copied().unwrap_or(f64::INFINITY), c))
            .collect();
        (sum as f64 / 1e9, counts.iter().sum(), buckets)
    }
}

/// Latency buckets for answers from the zone (seconds).
pub const ANSWER_BUCKETS: &[f64] =
    &[5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1];
/// Latency buckets for upstream answers and state fetches (seconds).
pub const SLOW_BUCKETS: &[f64] =
    &[1e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Something with counters of its own that it writes as metric families.
pub trait Export: fmt::Debug + Send + Sync {
    /// Write this component's metric families.
    fn export(&self, e: &mut DescriptorEncoder) -> fmt::Result;
}

/// Everything `/metrics` shows: the components' counters, in the order they
/// were added.
#[derive(Debug, Clone, Default)]
pub struct Exporter {
    parts: Vec<Arc<dyn Export>>,
}

impl Exporter {
    /// Add a component's counters.
    pub fn add(&mut self, part: Arc<dyn Export>) {
        self.parts.push(part);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::warn!("cannot encode metrics: {e}");
        }
        out
    }
}

impl prometheus_client::collector::Collector for Exporter {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        self.parts.iter().try_for_each(|part| part.export(&mut e))
    }
}

/// The build's version, as a metric.
#[derive(Debug)]
pub struct BuildInfo(pub &'static str);

impl Export for BuildInfo {
    fn export(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        gauge(e, "mesos_dns_build_info", "Build information", &[(vec![("version", self.0)], 1.0)])
    }
}

/// The labels of one sample.
pub type Labels<'a> = Vec<(&'static str, &'a str)>;

/// One metric family: a sample per label set (no labels: a single sample).
fn family<V: Copy, M: EncodeMetric>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, V)],
    make: impl Fn(V) -> M,
) -> std::fmt::Result {
    let Some(first) = rows.first() else { return Ok(()) };
    let mut m = e.encode_descriptor(name, help, None, make(first.1).metric_type())?;
    for (labels, v) in rows {
        if labels.is_empty() {
            return make(*v).encode(m);
        }
        make(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

/// A counter family: a sample per label set.
pub fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, u64)],
) -> std::fmt::Result {
    family(e, name, help, rows, ConstCounter::new)
}

/// A gauge family: a sample per label set.
pub fn gauge(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, f64)],
) -> std::fmt::Result {
    family(e, name, help, rows, ConstGauge::new)
}

/// A histogram family: per label set, the histograms merged into one.
pub fn histogram(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: Vec<(Labels, Vec<&AtomicHistogram>)>,
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, parts) in rows {
        let (sum, count, buckets) = AtomicHistogram::snapshot(parts.into_iter());
        if labels.is_empty() {
            m.encode_histogram::<Labels>(sum, count, &buckets, None)?;
        } else {
            m.encode_family(&labels)?.encode_histogram::<Labels>(sum, count, &buckets, None)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_snapshot_merges_buckets() {
        let h = AtomicHistogram::new(&[0.001, 0.01]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(1));
        let (sum, count, buckets) = AtomicHistogram::snapshot([&h].into_iter());
        assert_eq!(count, 3);
        assert!((sum - 1.0055).abs() < 1e-9);
        assert_eq!(buckets, vec![(0.001, 1), (0.01, 1), (f64::INFINITY, 1)]);
    }
}
