//! ferroflow-engine: threads and pipelines. The collector's pinned receive/decode workers and
//! their sinks, metrics and health endpoints, the persisted template store, the
//! file-decoding job behind `ferroflow decode`, and the Kafka -> Elasticsearch indexer. The
//! Elasticsearch client and delivery loop ([`es`]) and the Kafka start-up probes ([`kafka`]) are
//! shared by the collector's sinks ([`sink`]) and the indexer ([`index`]), which do not use
//! each other.

pub mod collector;
pub mod decode_file;
pub mod es;
pub mod http;
pub mod index;
pub mod kafka;
pub mod metrics;
pub mod sink;
pub mod template_store;

/// Wall-clock time in nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
