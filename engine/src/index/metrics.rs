//! Counters of `ferroflow index`, rendered as Prometheus text on `/metrics` (with `/healthz`
//! and `/readyz`), like the collector's. Names live in [`IndexMetric`], one place.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::http::{self, Response, ServerOptions};

/// Every metric `ferroflow index` exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexMetric {
    Up,
    Consumed,
    ConsumedBytes,
    Skipped,
    Indexed,
    AlreadyIndexed,
    Retried,
    DeadLettered,
    BulkRequests,
    BulkFailures,
    BulkBytes,
    BatchesCommitted,
    EnrichErrors,
    ConsumerErrors,
    InFlightBatches,
    PausedConsumers,
    ConsumerStalls,
    Lag,
    BulkLatency,
}

impl IndexMetric {
    pub const ALL: [IndexMetric; 19] = [
        IndexMetric::Up,
        IndexMetric::Consumed,
        IndexMetric::ConsumedBytes,
        IndexMetric::Skipped,
        IndexMetric::Indexed,
        IndexMetric::AlreadyIndexed,
        IndexMetric::Retried,
        IndexMetric::DeadLettered,
        IndexMetric::BulkRequests,
        IndexMetric::BulkFailures,
        IndexMetric::BulkBytes,
        IndexMetric::BatchesCommitted,
        IndexMetric::EnrichErrors,
        IndexMetric::ConsumerErrors,
        IndexMetric::InFlightBatches,
        IndexMetric::PausedConsumers,
        IndexMetric::ConsumerStalls,
        IndexMetric::Lag,
        IndexMetric::BulkLatency,
    ];

    pub fn name(self) -> &'static str {
        use IndexMetric::*;
        match self {
            Up => "ferroflow_index_up",
            Consumed => "ferroflow_index_consumed_total",
            ConsumedBytes => "ferroflow_index_consumed_bytes_total",
            Skipped => "ferroflow_index_skipped_total",
            Indexed => "ferroflow_index_indexed_total",
            AlreadyIndexed => "ferroflow_index_already_indexed_total",
            Retried => "ferroflow_index_retried_total",
            DeadLettered => "ferroflow_index_dead_lettered_total",
            BulkRequests => "ferroflow_index_bulk_requests_total",
            BulkFailures => "ferroflow_index_bulk_failures_total",
            BulkBytes => "ferroflow_index_bulk_bytes_total",
            BatchesCommitted => "ferroflow_index_batches_committed_total",
            EnrichErrors => "ferroflow_index_enrich_errors_total",
            ConsumerErrors => "ferroflow_index_consumer_errors_total",
            InFlightBatches => "ferroflow_index_in_flight_batches",
            PausedConsumers => "ferroflow_index_paused_consumers",
            ConsumerStalls => "ferroflow_index_consumer_stalls_total",
            Lag => "ferroflow_index_consumer_lag",
            BulkLatency => "ferroflow_index_bulk_latency_seconds",
        }
    }

    pub fn help(self) -> &'static str {
        use IndexMetric::*;
        match self {
            Up => "1 while the indexer runs",
            Consumed => "Kafka messages consumed, by topic",
            ConsumedBytes => "Kafka message payload bytes consumed",
            Skipped => "messages with an empty payload (committed, not indexed)",
            Indexed => "documents the cluster created",
            AlreadyIndexed => {
                "documents answered 409 on create: already indexed (a replay); counted as written"
            }
            Retried => "document attempts retried after 429, 5xx or a transport error",
            DeadLettered => "documents rejected for good and written to the dead-letter topic",
            BulkRequests => "_bulk requests sent",
            BulkFailures => {
                "_bulk requests that failed as a whole (transport error or error status)"
            }
            BulkBytes => "_bulk request body bytes sent (before gzip)",
            BatchesCommitted => "batches whose offsets were stored for commit",
            EnrichErrors => "documents the filtering stage could not parse (indexed unchanged)",
            ConsumerErrors => "errors reported by the Kafka consumer",
            InFlightBatches => "batches handed to the senders and not yet finished",
            PausedConsumers => {
                "consumer threads whose partitions are paused for back-pressure (every batch in flight)"
            }
            ConsumerStalls => {
                "times a consumer thread fetched nothing for 30 s while its partitions had lag and nothing was in flight (it then resumes them)"
            }
            Lag => "consumer lag in messages, by topic and partition (librdkafka statistics)",
            BulkLatency => "time of one _bulk request, send to response",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            IndexMetric::Up
            | IndexMetric::InFlightBatches
            | IndexMetric::PausedConsumers
            | IndexMetric::Lag => "gauge",
            IndexMetric::BulkLatency => "histogram",
            _ => "counter",
        }
    }
}

/// Shared counters (atomics; the latency histogram and lag table behind mutexes, touched once
/// per request / per statistics interval).
#[derive(Debug)]
pub struct IndexMetrics {
    pub topics: Vec<String>,
    pub consumed: Vec<AtomicU64>,
    pub consumed_bytes: AtomicU64,
    pub skipped: AtomicU64,
    pub indexed: AtomicU64,
    pub already_indexed: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub bulk_requests: AtomicU64,
    pub bulk_failures: AtomicU64,
    pub bulk_bytes: AtomicU64,
    pub batches_committed: AtomicU64,
    pub enrich_errors: AtomicU64,
    pub consumer_errors: AtomicU64,
    pub in_flight: AtomicU64,
    pub paused_consumers: AtomicU64,
    pub consumer_stalls: AtomicU64,
    pub lag: Mutex<BTreeMap<(String, i32), i64>>,
    pub latency: Mutex<Histogram<u64>>,
    pub started: Instant,
    pub ready: AtomicBool,
    pub stopping: AtomicBool,
}

/// Upper bounds (seconds) of the latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl IndexMetrics {
    pub fn new(topics: &[String]) -> Self {
        IndexMetrics {
            topics: topics.to_vec(),
            consumed: topics.iter().map(|_| AtomicU64::new(0)).collect(),
            consumed_bytes: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            indexed: AtomicU64::new(0),
            already_indexed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            bulk_requests: AtomicU64::new(0),
            bulk_failures: AtomicU64::new(0),
            bulk_bytes: AtomicU64::new(0),
            batches_committed: AtomicU64::new(0),
            enrich_errors: AtomicU64::new(0),
            consumer_errors: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            paused_consumers: AtomicU64::new(0),
            consumer_stalls: AtomicU64::new(0),
            lag: Mutex::new(BTreeMap::new()),
            latency: Mutex::new(
                Histogram::new_with_bounds(1_000, 3_600_000_000_000, 3)
                    .expect("valid histogram bounds"),
            ),
            started: Instant::now(),
            ready: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
        }
    }

    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn record_latency(&self, d: Duration) {
        let ns = (d.as_nanos() as u64).clamp(1_000, 3_600_000_000_000);
        let mut h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let _ = h.record(ns);
    }

    pub fn consumed_total(&self) -> u64 {
        self.consumed
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let ld = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for m in IndexMetric::ALL {
            let _ = writeln!(
                out,
                "# HELP {} {}\n# TYPE {} {}",
                m.name(),
                m.help(),
                m.name(),
                m.kind()
            );
            let n = m.name();
            use IndexMetric::*;
            let single = |out: &mut String, v: u64| {
                let _ = writeln!(out, "{n} {v}");
            };
            match m {
                Up => single(&mut out, 1),
                Consumed => {
                    for (t, c) in self.topics.iter().zip(&self.consumed) {
                        let _ = writeln!(out, "{n}{{topic=\"{t}\"}} {}", ld(c));
                    }
                }
                ConsumedBytes => single(&mut out, ld(&self.consumed_bytes)),
                Skipped => single(&mut out, ld(&self.skipped)),
                Indexed => single(&mut out, ld(&self.indexed)),
                AlreadyIndexed => single(&mut out, ld(&self.already_indexed)),
                Retried => single(&mut out, ld(&self.retried)),
                DeadLettered => single(&mut out, ld(&self.dead_lettered)),
                BulkRequests => single(&mut out, ld(&self.bulk_requests)),
                BulkFailures => single(&mut out, ld(&self.bulk_failures)),
                BulkBytes => single(&mut out, ld(&self.bulk_bytes)),
                BatchesCommitted => single(&mut out, ld(&self.batches_committed)),
                EnrichErrors => single(&mut out, ld(&self.enrich_errors)),
                ConsumerErrors => single(&mut out, ld(&self.consumer_errors)),
                InFlightBatches => single(&mut out, ld(&self.in_flight)),
                PausedConsumers => single(&mut out, ld(&self.paused_consumers)),
                ConsumerStalls => single(&mut out, ld(&self.consumer_stalls)),
                Lag => {
                    let lag = self.lag.lock().unwrap_or_else(|p| p.into_inner());
                    for ((t, p), v) in lag.iter() {
                        let _ = writeln!(out, "{n}{{topic=\"{t}\",partition=\"{p}\"}} {v}");
                    }
                }
                BulkLatency => {
                    let h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
                    for le in LATENCY_BUCKETS {
                        let c = h.count_between(0, (le * 1e9) as u64);
                        let _ = writeln!(out, "{n}_bucket{{le=\"{le}\"}} {c}");
                    }
                    let _ = writeln!(out, "{n}_bucket{{le=\"+Inf\"}} {}", h.len());
                    let _ = writeln!(out, "{n}_sum {:.6}", h.mean() * h.len() as f64 / 1e9);
                    let _ = writeln!(out, "{n}_count {}", h.len());
                }
            }
        }
        out
    }
}

/// Serves `/metrics`, `/healthz`, `/readyz` on `addr` until `stop` is set, with the
/// collector's server ([`crate::http`]: one event-loop thread, bounded connections, whole-request
/// deadlines).
pub fn serve(
    addr: SocketAddr,
    metrics: Arc<IndexMetrics>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let text = |status, body: String| Response {
        status,
        content_type: "text/plain; version=0.0.4",
        body,
    };
    let handler = Box::new(move |path: &str| match path {
        "/metrics" => text("200 OK", metrics.render()),
        "/healthz" => text("200 OK", "ok\n".to_string()),
        "/readyz" => {
            if metrics.ready.load(Ordering::Relaxed) && !metrics.stopping.load(Ordering::Relaxed) {
                text("200 OK", "ready\n".to_string())
            } else {
                text("503 Service Unavailable", "not ready\n".to_string())
            }
        }
        _ => text("404 Not Found", "not found\n".to_string()),
    });
    let s = http::start(
        addr,
        ServerOptions::default(),
        "ff-index-metrics",
        handler,
        stop,
    )?;
    Ok((s.local_addr, s.thread))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_once() {
        let m = IndexMetrics::new(&["a-netflow".to_string()]);
        m.consumed[0].store(3, Ordering::Relaxed);
        m.record_latency(Duration::from_millis(20));
        m.lag.lock().unwrap().insert(("a-netflow".into(), 2), 17);
        let t = m.render();
        assert!(t.contains("ferroflow_index_consumed_total{topic=\"a-netflow\"} 3"));
        assert!(t.contains("ferroflow_index_consumer_lag{topic=\"a-netflow\",partition=\"2\"} 17"));
        assert!(t.contains("ferroflow_index_bulk_latency_seconds_bucket{le=\"0.025\"} 1"));
        assert!(t.contains("ferroflow_index_bulk_latency_seconds_bucket{le=\"0.01\"} 0"));
        let mut types = std::collections::HashSet::new();
        for l in t.lines().filter(|l| l.starts_with("# TYPE")) {
            assert!(types.insert(l.to_string()), "duplicate {l}");
        }
        assert_eq!(types.len(), IndexMetric::ALL.len());
    }
}
