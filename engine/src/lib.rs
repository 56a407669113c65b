//! ferroflow-engine: threads and pipelines. The collector's pinned receive/decode workers and
//! their sinks, metrics and health endpoints, the persisted template store, and the
//! file-decoding job behind `ferroflow decode`.

pub mod collector;
pub mod decode_file;
pub mod http;
pub mod index;
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
