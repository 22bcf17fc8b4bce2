//! The DNS counters: queries answered by transport, query type and rcode,
//! and how long answers from the zone took. Sharded, one shard per UDP
//! worker thread and one for TCP, so that worker threads never write to the
//! same cache line; a scrape sums the shards.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::DescriptorEncoder;

use super::tcp::Table;
use crate::metrics::{ANSWER_BUCKETS, AtomicHistogram, Export, counter, gauge, histogram};
use crate::proto::{rcode, rtype};

/// The transports, in the order of the counters' cells.
const TRANSPORTS: [&str; 2] = ["udp", "tcp"];
/// Query types and rcodes get a cell each, plus one for all others.
const QTYPES: usize = rtype::NAMED.len() + 1;
const RCODES: usize = rcode::NAMED.len() + 1;
const CELLS: usize = TRANSPORTS.len() * QTYPES * RCODES;
/// The label of the cell for types and rcodes without a name of their own.
const OTHER: &str = "other";

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
        let q = rtype::NAMED.iter().position(|&(v, _)| v == qtype).unwrap_or(QTYPES - 1);
        let r = rcode::NAMED.iter().position(|&(v, _)| v == rcode).unwrap_or(RCODES - 1);
        if let Some(c) = self.queries.get((t * QTYPES + q) * RCODES + r) {
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
    /// The TCP listeners' connection tables.
    tcp: Mutex<Vec<Arc<Table>>>,
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

    /// Count a TCP listener's connections and evictions.
    pub fn tcp_table(&self, table: Arc<Table>) {
        if let Ok(mut tables) = self.tcp.lock() {
            tables.push(table);
        }
    }

    fn shards(&self) -> Vec<Arc<DnsShard>> {
        self.shards.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The name of a counter cell's type or rcode (`index` past the named
/// ones: the cell for all others).
fn cell_name(named: &[(u16, &'static str)], index: usize) -> &'static str {
    named.get(index).map_or(OTHER, |&(_, name)| name)
}

impl Export for DnsMetrics {
    fn export(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let shards = self.shards();
        let mut rows = Vec::new();
        for (t, transport) in TRANSPORTS.iter().enumerate() {
            for q in 0..QTYPES {
                for r in 0..RCODES {
                    let i = (t * QTYPES + q) * RCODES + r;
                    let v: u64 = shards
                        .iter()
                        .map(|s| s.queries.get(i).map_or(0, |c| c.load(Ordering::Relaxed)))
                        .sum();
                    if v > 0 {
                        let qtype = cell_name(&rtype::NAMED, q);
                        let rcode = cell_name(&rcode::NAMED, r);
                        rows.push((
                            vec![("transport", *transport), ("qtype", qtype), ("rcode", rcode)],
                            v,
                        ));
                    }
                }
            }
        }
        counter(
            e,
            "mesos_dns_dns_queries",
            "DNS queries answered, by transport, query type and rcode",
            &rows,
        )?;
        histogram(
            e,
            "mesos_dns_dns_answer_duration_seconds",
            "Time to answer a query from the zone (receive to send)",
            vec![(vec![], shards.iter().map(|s| &s.answer_latency).collect())],
        )?;
        let tables = self.tcp.lock().map(|t| t.clone()).unwrap_or_default();
        gauge(
            e,
            "mesos_dns_tcp_connections",
            "DNS TCP connections open",
            &[(vec![], tables.iter().map(|t| t.len()).sum::<usize>() as f64)],
        )?;
        counter(
            e,
            "mesos_dns_tcp_evictions",
            "Idle DNS TCP connections closed to admit a new one at the cap",
            &[(vec![], tables.iter().map(|t| t.evicted.load(Ordering::Relaxed)).sum::<u64>())],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_land_in_their_cell() {
        let m = DnsMetrics::default();
        let s = m.shard();
        s.count(true, rtype::A, 0);
        s.count(true, rtype::A, 0);
        s.count(false, 9999, 9999);
        let total: u64 = m
            .shards()
            .iter()
            .flat_map(|s| s.queries.iter())
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        assert_eq!(total, 3);
        assert_eq!(s.queries[0].load(Ordering::Relaxed), 2, "udp A NOERROR");
        let last = CELLS - 1;
        assert_eq!(s.queries[last].load(Ordering::Relaxed), 1, "tcp other other");
        assert_eq!(cell_name(&rtype::NAMED, QTYPES - 1), OTHER);
    }
}
