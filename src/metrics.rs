//! Metrics (Prometheus): lock-free counters and histograms that the DNS hot
//! path, the forwarder and the refresh loop update, and the exporter that
//! renders them — with the state of the records in service — on each scrape
//! of `/metrics`.
//!
//! The DNS counters are sharded (one shard per UDP worker thread, one for
//! TCP) so that worker threads never write to the same cache line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::detect::DetectStats;
use crate::forward::Forwarder;
use crate::refresh::{Current, RefreshStats};

/// A histogram with fixed bucket bounds, updated with relaxed atomics.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    /// Non-cumulative counts; the last slot is +Inf.
    buckets: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        AtomicHistogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
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

/// Transports, query types and rcodes the DNS counters distinguish.
pub const TRANSPORTS: [&str; 2] = ["udp", "tcp"];
const QTYPES: [(u16, &str); 10] = [
    (1, "A"),
    (28, "AAAA"),
    (33, "SRV"),
    (6, "SOA"),
    (2, "NS"),
    (255, "ANY"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (0, "other"),
];
const RCODES: [(u16, &str); 8] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (16, "BADVERS"),
    (u16::MAX, "other"),
];
const CELLS: usize = TRANSPORTS.len() * QTYPES.len() * RCODES.len();

/// One writer's DNS counters.
#[derive(Debug)]
#[repr(align(128))]
pub struct DnsShard {
    queries: [AtomicU64; CELLS],
    answer_latency: AtomicHistogram,
}

impl DnsShard {
    fn new() -> Self {
        DnsShard {
            queries: std::array::from_fn(|_| AtomicU64::new(0)),
            answer_latency: AtomicHistogram::new(ANSWER_BUCKETS),
        }
    }

    /// Count one answered query. `udp`: the transport; `qtype`, `rcode`:
    /// as on the wire (extended rcodes included).
    pub fn count(&self, udp: bool, qtype: u16, rcode: u16) {
        let t = usize::from(!udp);
        let q = QTYPES.iter().position(|&(v, _)| v == qtype).unwrap_or(QTYPES.len() - 1);
        let r = RCODES.iter().position(|&(v, _)| v == rcode).unwrap_or(RCODES.len() - 1);
        if let Some(c) = self.queries.get((t * QTYPES.len() + q) * RCODES.len() + r) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Record how long an answer from the zone took.
    pub fn observe(&self, d: Duration) {
        self.answer_latency.observe(d);
    }
}

/// DNS counters of every writer.
#[derive(Debug, Default)]
pub struct DnsMetrics {
    shards: Mutex<Vec<Arc<DnsShard>>>,
}

impl DnsMetrics {
    /// A new shard for one writer (a UDP worker, or all of TCP).
    pub fn shard(&self) -> Arc<DnsShard> {
        let shard = Arc::new(DnsShard::new());
        if let Ok(mut shards) = self.shards.lock() {
            shards.push(Arc::clone(&shard));
        }
        shard
    }

    fn shards(&self) -> Vec<Arc<DnsShard>> {
        self.shards.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Everything `/metrics` shows.
#[derive(Debug, Clone)]
pub struct Exporter {
    pub dns: Arc<DnsMetrics>,
    pub forwarder: Option<Arc<Forwarder>>,
    pub refresh: Arc<RefreshStats>,
    pub detect: Option<Arc<DetectStats>>,
    pub current: Current,
    pub version: &'static str,
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

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

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, u64)],
) -> std::fmt::Result {
    family(e, name, help, rows, ConstCounter::new)
}

fn gauge(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels, f64)],
) -> std::fmt::Result {
    family(e, name, help, rows, ConstGauge::new)
}

fn histogram(
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

impl prometheus_client::collector::Collector for Exporter {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        // DNS.
        let shards = self.dns.shards();
        let mut rows = Vec::new();
        for (t, transport) in TRANSPORTS.iter().enumerate() {
            for (q, (_, qtype)) in QTYPES.iter().enumerate() {
                for (r, (_, rcode)) in RCODES.iter().enumerate() {
                    let i = (t * QTYPES.len() + q) * RCODES.len() + r;
                    let v: u64 = shards
                        .iter()
                        .map(|s| s.queries.get(i).map_or(0, |c| c.load(Ordering::Relaxed)))
                        .sum();
                    if v > 0 {
                        rows.push((
                            vec![("transport", *transport), ("qtype", *qtype), ("rcode", *rcode)],
                            v,
                        ));
                    }
                }
            }
        }
        counter(
            &mut e,
            "mesos_dns_dns_queries",
            "DNS queries answered, by transport, query type and rcode",
            &rows,
        )?;
        histogram(
            &mut e,
            "mesos_dns_dns_answer_duration_seconds",
            "Time to answer a query from the zone (receive to send)",
            vec![(vec![], shards.iter().map(|s| &s.answer_latency).collect())],
        )?;

        // Forwarding.
        if let Some(f) = &self.forwarder {
            let zones = f.counters();
            let mut rows = Vec::new();
            for (zone, c) in &zones {
                for (outcome, v) in
                    [("forwarded", &c.forwarded), ("answered", &c.answered), ("failed", &c.failed)]
                {
                    rows.push((
                        vec![("zone", zone.as_str()), ("outcome", outcome)],
                        v.load(Ordering::Relaxed),
                    ));
                }
            }
            rows.push((
                vec![("zone", ""), ("outcome", "overloaded")],
                f.overloaded.load(Ordering::Relaxed),
            ));
            counter(
                &mut e,
                "mesos_dns_forward_queries",
                "Queries forwarded upstream, by zone and outcome",
                &rows,
            )?;
            histogram(
                &mut e,
                "mesos_dns_forward_upstream_duration_seconds",
                "Time for an upstream to answer a forwarded query",
                vec![(vec![], vec![f.upstream_latency()])],
            )?;
        }

        // State fetches.
        let r = &self.refresh;
        counter(
            &mut e,
            "mesos_dns_state_fetches",
            "Refreshes (fetch, generate, compile), by outcome",
            &[
                (vec![("outcome", "ok")], r.ok.load(Ordering::Relaxed)),
                (vec![("outcome", "failed")], r.failed.load(Ordering::Relaxed)),
            ],
        )?;
        histogram(
            &mut e,
            "mesos_dns_state_fetch_duration_seconds",
            "Duration of a refresh, successful or not",
            vec![(vec![], vec![&r.duration])],
        )?;

        // ZooKeeper detection.
        if let Some(d) = &self.detect {
            counter(
                &mut e,
                "mesos_dns_zk_events",
                "ZooKeeper detection events: sessions opened, errors, leader changes",
                &[
                    (vec![("event", "session")], d.sessions.load(Ordering::Relaxed)),
                    (vec![("event", "error")], d.errors.load(Ordering::Relaxed)),
                    (vec![("event", "leader_change")], d.leader_changes.load(Ordering::Relaxed)),
                ],
            )?;
        }

        // The records in service.
        let current = self.current.load();
        let (a, aaaa, srv, names, skipped, age, leader) = match current.as_ref() {
            Some(s) => {
                let age = SystemTime::now().duration_since(s.loaded_at).unwrap_or_default();
                let st = s.zone.stats;
                (
                    st.a,
                    st.aaaa,
                    st.srv,
                    st.names,
                    s.records.skipped,
                    age.as_secs_f64(),
                    s.leader.clone(),
                )
            }
            None => (0, 0, 0, 0, 0, -1.0, None),
        };
        gauge(
            &mut e,
            "mesos_dns_records",
            "Records in service, by type",
            &[
                (vec![("type", "A")], a as f64),
                (vec![("type", "AAAA")], aaaa as f64),
                (vec![("type", "SRV")], srv as f64),
            ],
        )?;
        gauge(
            &mut e,
            "mesos_dns_names",
            "Names in the zone (including empty non-terminals)",
            &[(vec![], names as f64)],
        )?;
        gauge(
            &mut e,
            "mesos_dns_records_skipped",
            "Records of the last state not produced because they cannot exist in DNS",
            &[(vec![], skipped as f64)],
        )?;
        gauge(
            &mut e,
            "mesos_dns_records_age_seconds",
            "Age of the records in service (-1 before the first load)",
            &[(vec![], age)],
        )?;
        let leader = leader.unwrap_or_default();
        gauge(
            &mut e,
            "mesos_dns_leader",
            "The leading master of the records in service",
            &[(vec![("leader", leader.as_str())], 1.0)],
        )?;
        gauge(
            &mut e,
            "mesos_dns_build_info",
            "Build information",
            &[(vec![("version", self.version)], 1.0)],
        )?;
        Ok(())
    }
}

/// Render the exposition text for `exporter`.
pub fn render(exporter: &Exporter) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(exporter.clone()));
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        tracing::warn!("cannot encode metrics: {e}");
    }
    out
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

    #[test]
    fn counters_land_in_their_cell() {
        let m = DnsMetrics::default();
        let s = m.shard();
        s.count(true, 1, 0);
        s.count(true, 1, 0);
        s.count(false, 9999, 9999);
        let total: u64 = m
            .shards()
            .iter()
            .flat_map(|s| s.queries.iter())
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        assert_eq!(total, 3);
        assert_eq!(s.queries[0].load(Ordering::Relaxed), 2, "udp A NOERROR");
    }
}
