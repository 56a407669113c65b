//! Kafka through librdkafka: one `BaseProducer` per worker, polled by the worker itself.
//!
//! - Topic per protocol (`[output.kafka.topics]`); the factory checks at start that every
//!   topic exists and learns its partition count (bounded wait, clear error otherwise).
//! - Worker `k` of `W` produces only to the partitions `p` with `p % W == k` (when a topic has
//!   fewer partitions than workers, to partition `k % P`), so producers never share a
//!   partition's batch; within its partitions a worker picks by a hash of the exporter's
//!   address, so one exporter's records stay in one partition and keep their order.
//! - Message: value = the document, key = the exporter's IP address as text, timestamp = the
//!   flow's end time (`FlowRecord::timestamp_ns`, in ms).
//! - A document counts as `delivered` only when its delivery report says the broker
//!   acknowledged it (with the default `acks=all`: written to every in-sync replica). Delivery
//!   reports are served on the worker's thread (`poll` in `flush_batch`, `tick` and while
//!   waiting for room), so the context's counters are atomics that are never contended.
//! - Local queue full: `block` polls and retries (back-pressure on the socket buffers);
//!   `drop` counts the document in `dropped`. Any other produce error counts it in `failed`.
//!   `accepted == delivered + failed + dropped + in_flight` at all times.
//!
//! The delivery opaque is a `usize` carrying the receive time in microseconds, so nothing is
//! boxed per message. (rdkafka's safe `send` still builds a `CString` of the topic name per
//! call, and librdkafka copies the payload into its own message: see docs/kafka.md.)

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroflow_codecs::{FlowProtocol, FlowRecord};
use ferroflow_tuning::{FullPolicy, KafkaConfig};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use super::{Sink, SinkCounters, SinkError, SinkFactory};
use crate::kafka::{code_of, describe_code, forward_log, MetadataProbe, RateLimit, LOG_EVERY};

/// The rdkafka crate this sink is built with, for tools and tests that talk to the same
/// cluster (admin client, consumer) with the same librdkafka.
pub use rdkafka;

/// How long a blocked `write` waits between attempts when the local queue is full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(10);
/// Most delivery-report events served per `flush_batch` / `tick` (each carries a batch of
/// reports).
const MAX_REPORT_EVENTS: usize = 256;
/// Receive-to-acknowledgement latencies kept between two `drain_latencies` (a sample).
const LATENCY_SAMPLES: usize = 1024;

/// What the Kafka sink needs, resolved from `[output.kafka]`.
#[derive(Debug, Clone)]
pub struct KafkaSinkSettings {
    /// Every librdkafka property the producers are created with, `bootstrap.servers`
    /// included ([`KafkaConfig::client_properties`]).
    pub properties: BTreeMap<String, String>,
    /// Topic per protocol, indexed by [`FlowProtocol::index`].
    pub topics: [String; 4],
    /// What a worker does when its producer's local queue is full.
    pub queue_full: FullPolicy,
    /// How long the start-up metadata check may take before it fails.
    pub metadata_timeout: Duration,
    /// Once shutting down (see [`KafkaSinkFactory::stopping`]), how long a `block` write keeps
    /// waiting for room before it counts the document as failed.
    pub shutdown_block_timeout: Duration,
}

impl KafkaSinkSettings {
    /// From the configuration's `[output.kafka]` with the default timeouts (10 s for the
    /// metadata check, 30 s of blocking once shutting down).
    pub fn from_config(k: &KafkaConfig) -> Self {
        let mut topics: [String; 4] = Default::default();
        topics[FlowProtocol::NetflowV5.index()] = k.topics.netflow_v5.clone();
        topics[FlowProtocol::NetflowV9.index()] = k.topics.netflow_v9.clone();
        topics[FlowProtocol::Ipfix.index()] = k.topics.ipfix.clone();
        topics[FlowProtocol::Sflow5.index()] = k.topics.sflow.clone();
        KafkaSinkSettings {
            properties: k.client_properties(),
            topics,
            queue_full: k.queue_full,
            metadata_timeout: Duration::from_secs(10),
            shutdown_block_timeout: Duration::from_secs(30),
        }
    }

    fn brokers(&self) -> &str {
        self.properties
            .get("bootstrap.servers")
            .map(String::as_str)
            .unwrap_or("(no bootstrap.servers)")
    }

    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }
}

/// The partitions worker `worker` of `workers` produces to, in a topic of `partitions`
/// partitions: `{p : p % workers == worker}`, or `[worker % partitions]` when the topic has
/// fewer partitions than there are workers. Empty only when `partitions` is 0.
pub fn worker_partitions(partitions: i32, worker: usize, workers: usize) -> Vec<i32> {
    let workers = workers.max(1);
    if partitions <= 0 {
        return Vec::new();
    }
    if (partitions as usize) < workers {
        return vec![(worker % partitions as usize) as i32];
    }
    (0..partitions)
        .filter(|&p| p as usize % workers == worker % workers)
        .collect()
}

/// A stable hash of an exporter's address (FNV-1a over its octets, then a 64-bit finaliser so
/// neighbouring addresses spread). IPv4-mapped IPv6 addresses hash as their IPv4 address.
pub fn exporter_hash(ip: IpAddr) -> u64 {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    match ip {
        IpAddr::V4(a) => a.octets().into_iter().for_each(&mut eat),
        IpAddr::V6(a) => a.octets().into_iter().for_each(&mut eat),
    }
    // murmur3 fmix64
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The partition among `mine` (a worker's partitions, not empty) for an exporter whose
/// address hashes to `hash`.
#[inline]
pub fn pick_partition(mine: &[i32], hash: u64) -> i32 {
    mine[(hash % mine.len() as u64) as usize]
}

/// The producer's context: delivery reports land here (on the worker's thread).
struct KafkaContext {
    worker: usize,
    delivered: AtomicU64,
    failed: AtomicU64,
    /// librdkafka error code of the last failed delivery.
    last_error: AtomicI32,
    latencies: Box<[AtomicU64]>,
    latency_len: AtomicUsize,
    fatal_logged: AtomicBool,
    log_limit: RateLimit,
    error_limit: RateLimit,
}

impl KafkaContext {
    fn new(worker: usize) -> Self {
        KafkaContext {
            worker,
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_error: AtomicI32::new(0),
            latencies: (0..LATENCY_SAMPLES).map(|_| AtomicU64::new(0)).collect(),
            latency_len: AtomicUsize::new(0),
            fatal_logged: AtomicBool::new(false),
            log_limit: RateLimit::default(),
            error_limit: RateLimit::default(),
        }
    }

    /// Reports served so far (delivered + failed).
    fn reported(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        forward_log(
            &format!("kafka worker {}", self.worker),
            &self.log_limit,
            level,
            fac,
            log_message,
        );
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let fatal = error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal);
        if fatal && !self.fatal_logged.swap(true, Ordering::Relaxed) {
            tracing::error!(
                "kafka worker {}: fatal producer error, every further document fails: {error}: {reason}",
                self.worker
            );
            return;
        }
        if let Some(n) = self.error_limit.allow(LOG_EVERY) {
            tracing::warn!(
                "kafka worker {}: {error}: {reason}{}",
                self.worker,
                if n > 0 {
                    format!(" ({n} more errors held back)")
                } else {
                    String::new()
                }
            );
        }
    }
}

impl ProducerContext for KafkaContext {
    /// Receive time in microseconds since the epoch.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, recv_us: usize) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                let i = self.latency_len.load(Ordering::Relaxed);
                if i < self.latencies.len() {
                    let lat = crate::now_ns().saturating_sub(recv_us as u64 * 1000);
                    self.latencies[i].store(lat, Ordering::Relaxed);
                    self.latency_len.store(i + 1, Ordering::Relaxed);
                }
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.last_error.store(code_of(e), Ordering::Relaxed);
            }
        }
    }
}

/// Creates one [`KafkaSink`] per worker, after checking at start that the brokers answer and
/// every topic exists.
pub struct KafkaSinkFactory {
    settings: KafkaSinkSettings,
    /// Partition count per protocol (index of [`FlowProtocol`]).
    partitions: [i32; 4],
    stopping: Arc<AtomicBool>,
}

impl std::fmt::Debug for KafkaSinkFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSinkFactory")
            .field("brokers", &self.settings.brokers())
            .field("topics", &self.settings.topics)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl KafkaSinkFactory {
    /// Check the configuration (librdkafka refuses unknown or bad properties here), ask the
    /// brokers for each topic's partitions (at most `metadata_timeout` in all) and fail with
    /// the brokers and the topic named when they do not answer or a topic does not exist.
    pub fn connect(settings: KafkaSinkSettings) -> Result<Self, SinkError> {
        let brokers = settings.brokers().to_string();
        let mut cc = settings.client_config();
        // Asking for a topic's metadata must not create it (the broker may allow that).
        if !settings.properties.contains_key("allow.auto.create.topics") {
            cc.set("allow.auto.create.topics", "false");
        }
        let probe = MetadataProbe::new(&cc)
            .map_err(|e| SinkError::Kafka(format!("producer configuration: {e}")))?;
        let deadline = Instant::now() + settings.metadata_timeout;
        let mut partitions = [0i32; 4];
        for (i, topic) in settings.topics.iter().enumerate() {
            if let Some(j) = settings.topics[..i].iter().position(|t| t == topic) {
                partitions[i] = partitions[j];
                continue;
            }
            partitions[i] = probe
                .topic_partitions(topic, &brokers, deadline)
                .map_err(SinkError::Kafka)?;
            tracing::info!(
                "kafka: topic {topic} has {} partition(s) (brokers {brokers})",
                partitions[i]
            );
        }
        Ok(KafkaSinkFactory {
            settings,
            partitions,
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Set it when the collector starts shutting down: from then on a `block` write waits at
    /// most `shutdown_block_timeout` for room before it counts the document as failed.
    pub fn stopping(&self) -> Arc<AtomicBool> {
        self.stopping.clone()
    }

    /// Partition count of each protocol's topic, as found at start.
    pub fn partitions(&self) -> [i32; 4] {
        self.partitions
    }
}

impl SinkFactory for KafkaSinkFactory {
    fn make(&self, worker: usize, workers: usize) -> Result<Box<dyn Sink>, SinkError> {
        let producer: BaseProducer<KafkaContext> = self
            .settings
            .client_config()
            .create_with_context(KafkaContext::new(worker))
            .map_err(|e| {
                SinkError::Kafka(format!("worker {worker}: creating the producer: {e}"))
            })?;
        let routes: [Route; 4] = std::array::from_fn(|i| {
            let topic = self.settings.topics[i].clone();
            let partitions = worker_partitions(self.partitions[i], worker, workers);
            Route { topic, partitions }
        });
        for (i, r) in routes.iter().enumerate() {
            if routes[..i].iter().any(|o| o.topic == r.topic) {
                continue;
            }
            if (self.partitions[i] as usize) < workers {
                tracing::warn!(
                    "kafka: topic {} has {} partition(s) for {workers} workers: worker {worker} \
                     shares partition {} with other workers (give the topic at least {workers} \
                     partitions so that workers do not share one)",
                    r.topic,
                    self.partitions[i],
                    r.partitions[0]
                );
            } else {
                tracing::info!(
                    "kafka: worker {worker} produces to {} partitions {:?}",
                    r.topic,
                    r.partitions
                );
            }
        }
        Ok(Box::new(KafkaSink {
            worker,
            producer,
            routes,
            policy: self.settings.queue_full,
            stopping: self.stopping.clone(),
            shutdown_block_timeout: self.settings.shutdown_block_timeout,
            give_up_at: None,
            accepted: 0,
            dropped: 0,
            failed_local: 0,
            last_local_error: 0,
            queue_full_waits: 0,
            key_ip: None,
            key_buf: [0; 48],
            key_len: 0,
            key_hash: 0,
            last_warn: None,
            warned: (0, 0, 0),
        }))
    }
}

/// Where one protocol's documents go, for one worker.
#[derive(Debug)]
struct Route {
    topic: String,
    /// This worker's partitions of `topic` (never empty: topics were checked at start).
    partitions: Vec<i32>,
}

/// One worker's producer.
pub struct KafkaSink {
    worker: usize,
    producer: BaseProducer<KafkaContext>,
    routes: [Route; 4],
    policy: FullPolicy,
    stopping: Arc<AtomicBool>,
    shutdown_block_timeout: Duration,
    /// Set at the first full queue after `stopping`: blocking ends there.
    give_up_at: Option<Instant>,
    accepted: u64,
    dropped: u64,
    /// Documents librdkafka refused at `send` (other than a full queue under `block`).
    failed_local: u64,
    last_local_error: i32,
    /// Times a `block` write found the queue full and waited.
    queue_full_waits: u64,
    /// The last exporter's address, its text (the key) and hash.
    key_ip: Option<IpAddr>,
    key_buf: [u8; 48],
    key_len: usize,
    key_hash: u64,
    last_warn: Option<Instant>,
    /// (failed, dropped, queue_full_waits) at the last warning.
    warned: (u64, u64, u64),
}

impl KafkaSink {
    /// Serve the delivery reports librdkafka has ready (bounded).
    fn serve_reports(&self) {
        let ctx = self.producer.context();
        for _ in 0..MAX_REPORT_EVENTS {
            let before = ctx.reported();
            self.producer.poll(Duration::ZERO);
            if ctx.reported() == before {
                break;
            }
        }
    }

    #[inline]
    fn set_key(&mut self, ip: IpAddr) {
        let mut w = &mut self.key_buf[..];
        // An IPv6 address is at most 45 characters: it fits.
        let _ = write!(w, "{ip}");
        let left = w.len();
        self.key_len = self.key_buf.len() - left;
        self.key_hash = exporter_hash(ip);
        self.key_ip = Some(ip);
    }

    /// Warn (at most every [`LOG_EVERY`]) about failures, drops and waits since the last
    /// warning.
    fn warn_if_due(&mut self, force: bool) {
        let c = self.counters();
        let now = (c.failed, c.dropped, self.queue_full_waits);
        if now == self.warned {
            return;
        }
        if !force && self.last_warn.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            return;
        }
        let (f, d, q) = (
            now.0 - self.warned.0,
            now.1 - self.warned.1,
            now.2 - self.warned.2,
        );
        let ctx = self.producer.context();
        let last = match ctx.last_error.load(Ordering::Relaxed) {
            0 if self.last_local_error != 0 => describe_code(self.last_local_error),
            0 => "none".into(),
            c => describe_code(c),
        };
        if f > 0 {
            tracing::warn!(
                "kafka worker {}: {f} documents failed (last error: {last}); {} failed in all",
                self.worker,
                c.failed
            );
        }
        if d > 0 {
            tracing::warn!(
                "kafka worker {}: local queue full, {d} documents dropped (queue_full = \"drop\"); {} dropped in all",
                self.worker,
                c.dropped
            );
        }
        if q > 0 {
            tracing::warn!(
                "kafka worker {}: local queue full {q} times, waited for room (queue_full = \"block\"): Kafka is slower than the input",
                self.worker
            );
        }
        self.warned = now;
        self.last_warn = Some(Instant::now());
    }

    /// Times a `block` write found the queue full and waited (not yet a metric).
    pub fn queue_full_waits(&self) -> u64 {
        self.queue_full_waits
    }
}

impl Sink for KafkaSink {
    fn write(
        &mut self,
        record: &FlowRecord<'_>,
        doc: &[u8],
        recv_ns: u64,
    ) -> Result<(), SinkError> {
        self.accepted += 1;
        let ip = record.exporter.ip();
        if self.key_ip != Some(ip) {
            self.set_key(ip);
        }
        let route = &self.routes[record.protocol.index()];
        let partition = pick_partition(&route.partitions, self.key_hash);
        let recv_us = usize::try_from(recv_ns / 1000).unwrap_or(0);
        let mut msg = BaseRecord::with_opaque_to(route.topic.as_str(), recv_us)
            .payload(doc)
            .key(&self.key_buf[..self.key_len])
            .partition(partition);
        if let Some(ts) = record.timestamp_ns() {
            msg = msg.timestamp((ts / 1_000_000) as i64);
        }
        let mut waited = false;
        // Under `block` this waits for as long as the queue stays full while running: that is
        // the back-pressure. The queue empties as the broker acknowledges or as messages time
        // out (`message.timeout.ms`), and once shutting down the wait is bounded.
        loop {
            match self.producer.send(msg) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if self.policy == FullPolicy::Drop {
                        self.dropped += 1;
                        return Ok(());
                    }
                    if !waited {
                        waited = true;
                        self.queue_full_waits += 1;
                    }
                    if self.stopping.load(Ordering::Relaxed) {
                        let until = *self
                            .give_up_at
                            .get_or_insert_with(|| Instant::now() + self.shutdown_block_timeout);
                        if Instant::now() >= until {
                            self.failed_local += 1;
                            self.last_local_error = RDKafkaErrorCode::QueueFull as i32;
                            return Ok(());
                        }
                    }
                    self.producer.poll(QUEUE_FULL_BACKOFF);
                    msg = back;
                }
                Err((e, _)) => {
                    self.failed_local += 1;
                    self.last_local_error = code_of(&e);
                    return Ok(());
                }
            }
        }
    }

    fn flush_batch(&mut self) -> Result<(), SinkError> {
        self.serve_reports();
        Ok(())
    }

    fn tick(&mut self) {
        self.serve_reports();
        self.warn_if_due(false);
    }

    fn close(&mut self, timeout: Duration) -> Result<(), SinkError> {
        let flushed = self.producer.flush(timeout);
        self.serve_reports();
        self.warn_if_due(true);
        let c = self.counters();
        match flushed {
            Ok(()) if c.in_flight == 0 => Ok(()),
            Ok(()) => Err(SinkError::Kafka(format!(
                "worker {}: {} documents without a delivery report after the flush",
                self.worker, c.in_flight
            ))),
            Err(e) => Err(SinkError::Kafka(format!(
                "worker {}: {} documents not acknowledged within {:?} ({e})",
                self.worker, c.in_flight, timeout
            ))),
        }
    }

    fn counters(&self) -> SinkCounters {
        let ctx = self.producer.context();
        let delivered = ctx.delivered.load(Ordering::Relaxed);
        let failed = ctx.failed.load(Ordering::Relaxed) + self.failed_local;
        SinkCounters::queued(self.accepted, delivered, failed, self.dropped)
    }

    fn drain_latencies(&mut self, f: &mut dyn FnMut(u64)) {
        let ctx = self.producer.context();
        let n = ctx.latency_len.load(Ordering::Relaxed);
        for l in &ctx.latencies[..n.min(ctx.latencies.len())] {
            f(l.load(Ordering::Relaxed));
        }
        ctx.latency_len.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    #[test]
    fn workers_own_the_partitions_congruent_to_their_index() {
        assert_eq!(worker_partitions(8, 0, 2), vec![0, 2, 4, 6]);
        assert_eq!(worker_partitions(8, 1, 2), vec![1, 3, 5, 7]);
        assert_eq!(worker_partitions(7, 2, 3), vec![2, 5]);
        assert_eq!(worker_partitions(4, 0, 1), vec![0, 1, 2, 3]);
        for parts in 1..=24 {
            for workers in 1..=parts as usize {
                let mut seen = BTreeSet::new();
                for k in 0..workers {
                    let mine = worker_partitions(parts, k, workers);
                    assert!(!mine.is_empty(), "P={parts} W={workers} k={k}");
                    for &p in &mine {
                        assert_eq!(p as usize % workers, k);
                        assert!(seen.insert(p), "partition {p} owned twice");
                    }
                }
                // every partition has exactly one owner
                assert_eq!(seen, (0..parts).collect());
            }
        }
    }

    #[test]
    fn fewer_partitions_than_workers_share_k_mod_p() {
        assert_eq!(worker_partitions(1, 0, 4), vec![0]);
        assert_eq!(worker_partitions(1, 3, 4), vec![0]);
        assert_eq!(worker_partitions(3, 0, 4), vec![0]);
        assert_eq!(worker_partitions(3, 1, 4), vec![1]);
        assert_eq!(worker_partitions(3, 2, 4), vec![2]);
        assert_eq!(worker_partitions(3, 3, 4), vec![0]);
        assert!(worker_partitions(0, 0, 4).is_empty());
    }

    #[test]
    fn one_exporter_always_lands_in_one_partition_and_exporters_spread() {
        let mine = worker_partitions(16, 1, 2);
        let mut by_partition: HashMap<i32, usize> = HashMap::new();
        for i in 0..=255u8 {
            let ip = IpAddr::from([10, 0, 0, i]);
            let p = pick_partition(&mine, exporter_hash(ip));
            assert!(mine.contains(&p));
            for _ in 0..3 {
                assert_eq!(pick_partition(&mine, exporter_hash(ip)), p, "stable");
            }
            *by_partition.entry(p).or_default() += 1;
        }
        // 256 neighbouring addresses over 8 partitions: each gets some, none most
        assert_eq!(by_partition.len(), 8, "{by_partition:?}");
        assert!(
            by_partition.values().all(|&n| (8..=64).contains(&n)),
            "{by_partition:?}"
        );
    }

    #[test]
    fn exporter_hash_is_fixed_and_maps_v4_in_v6() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(exporter_hash(v4), exporter_hash(mapped));
        assert_ne!(
            exporter_hash(v4),
            exporter_hash("192.0.2.2".parse().unwrap())
        );
        // the same address hashes the same in every process and release (no random state):
        // changing the function moves exporters to other partitions, which reorders them
        assert_eq!(exporter_hash(v4), 0x8039_3182_6a22_88ea);
    }

    #[test]
    fn settings_map_topics_by_protocol() {
        let mut k = KafkaConfig::default();
        k.topics.ipfix = "ix".into();
        let s = KafkaSinkSettings::from_config(&k);
        assert_eq!(s.topics[FlowProtocol::NetflowV5.index()], "netflow");
        assert_eq!(s.topics[FlowProtocol::NetflowV9.index()], "netflow");
        assert_eq!(s.topics[FlowProtocol::Ipfix.index()], "ix");
        assert_eq!(s.topics[FlowProtocol::Sflow5.index()], "sflow");
        assert_eq!(s.properties["bootstrap.servers"], "127.0.0.1:9092");
        assert_eq!(s.properties["acks"], "all");
    }
}
