//! Where documents go. Each worker owns one `Sink` (no locks on the per-record path); a sink
//! buffers per receive batch and hands the batch on in `flush_batch`.

use std::time::Duration;

use ferroflow_codecs::FlowRecord;

pub mod elasticsearch;
pub mod file;
pub mod kafka;

/// Why a sink could not take or deliver documents.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("kafka: {0}")]
    Kafka(String),
    #[error("{0}")]
    Other(String),
}

impl SinkError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            SinkError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
            ),
            SinkError::Kafka(_) => true,
            SinkError::Other(_) => false,
        }
    }
}

/// Counters every sink keeps (plain values, read by the worker once per batch).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SinkCounters {
    /// Documents handed to the sink.
    pub accepted: u64,
    /// Documents the destination acknowledged (written to the file, acked by Kafka).
    pub delivered: u64,
    /// Documents that failed for good.
    pub failed: u64,
    /// Documents dropped by the `drop` policy on a full queue.
    pub dropped: u64,
    /// Documents queued and not yet acknowledged.
    pub in_flight: u64,
}

impl SinkCounters {
    /// The counters of a sink that queues documents: what was accepted and is neither
    /// delivered, failed nor dropped is in flight.
    pub fn queued(accepted: u64, delivered: u64, failed: u64, dropped: u64) -> Self {
        SinkCounters {
            accepted,
            delivered,
            failed,
            dropped,
            in_flight: accepted.saturating_sub(delivered + failed + dropped),
        }
    }
}

/// A per-worker document sink.
pub trait Sink: Send {
    /// Take one document (`doc`: one JSON object, no newline) of `record`, received at
    /// `recv_ns` (for latency).
    fn write(&mut self, record: &FlowRecord<'_>, doc: &[u8], recv_ns: u64)
        -> Result<(), SinkError>;
    /// End of a receive batch: hand what is buffered on. Called once per batch.
    fn flush_batch(&mut self) -> Result<(), SinkError>;
    /// Periodic housekeeping (about once a second): serve delivery reports and so on.
    fn tick(&mut self) {}
    /// Deliver everything accepted, waiting at most `timeout`. After it, `counters().in_flight`
    /// is what could not be delivered.
    fn close(&mut self, timeout: Duration) -> Result<(), SinkError>;
    fn counters(&self) -> SinkCounters;
    /// Receive-to-acknowledgement latencies (ns) observed since the last call.
    fn drain_latencies(&mut self, f: &mut dyn FnMut(u64)) {
        let _ = f;
    }
}

/// Creates one sink per worker.
pub trait SinkFactory: Send + Sync {
    fn make(&self, worker: usize, workers: usize) -> Result<Box<dyn Sink>, SinkError>;
    /// Deliver and close whatever the factory shares between sinks (a file's writer).
    fn finish(&self) -> Result<(), SinkError> {
        Ok(())
    }
}
