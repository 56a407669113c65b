//! Elasticsearch / OpenSearch directly (`--output elasticsearch`): the one-box design, no Kafka.
//!
//! - Each worker builds `_bulk` bodies (`create` actions) in its own buffer; a batch is handed to
//!   the worker's sender thread when it reaches `max_docs` / `max_bytes`, or when it is older than
//!   `flush_interval` (checked at the end of every receive batch and on `tick`).
//! - The sender thread posts it with the HTTP client and the delivery loop `ferroflow index`
//!   uses too ([`crate::es`]: [`EsClient`] with TLS with a private CA, basic auth or API key,
//!   gzip, round robin over URLs; [`BulkSender::deliver`]), which retries what failed with
//!   429 / 5xx / transport errors with exponential backoff, resending only those items with the
//!   same `_id`s, so a retried item is never written twice (a 409 on retry counts as written),
//!   and sends a request the cluster finds too large (413) in halves.
//! - Items the cluster rejects for good (400 mapping conflicts and the like) are counted as
//!   `failed` and logged (rate limited) with the reason; there is no dead-letter topic without
//!   Kafka.
//! - Ids are `<run>-<worker>-<n>`: `run` is unique per process start, so a restarted collector
//!   never collides with documents of an earlier run.
//! - Index per protocol group and day of the flow's timestamp: `<prefix>-netflow|ipfix|sflow-
//!   YYYY.MM.DD`, with the same index template `ferroflow index` installs (installed at start).
//! - Between worker and sender a bounded queue of `queue_batches` batches: when it is full the
//!   worker waits (`block`, back-pressure on the socket buffer) or drops the batch and counts it
//!   (`drop`). `accepted == delivered + failed + dropped + in_flight` at all times.
//! - `close` hands the last batch on and waits for the sender to finish, at most `timeout`;
//!   then it abandons the retries and reports what is left as `in_flight`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, SendTimeoutError, Sender, TrySendError};
use ferroflow_codecs::{FlowProtocol, FlowRecord};
use ferroflow_tuning::{ElasticsearchConfig, FullPolicy};

use super::{Sink, SinkCounters, SinkError, SinkFactory};
use crate::es::naming::{day_of_ns, DailyName, Naming};
use crate::es::{
    template, Auth, Backoff, BulkError, BulkItems, BulkSender, EsClient, EsSettings, RateLimited,
    Rejected, Report, RetryPolicy, TemplateSettings,
};

/// Receive-to-acknowledgement latencies kept between two `drain_latencies`.
const LATENCY_SAMPLES: usize = 1024;
/// Least time between two warnings of the same kind.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// How long a worker blocked on a full queue keeps waiting once stopping.
pub const SHUTDOWN_BLOCK: Duration = Duration::from_secs(30);
/// Index groups: documents of NetFlow v5 and v9 share `netflow`, as the Kafka topics do.
const GROUPS: [&str; 3] = ["netflow", "ipfix", "sflow"];

fn group(p: FlowProtocol) -> usize {
    match p {
        FlowProtocol::NetflowV5 | FlowProtocol::NetflowV9 => 0,
        FlowProtocol::Ipfix => 1,
        FlowProtocol::Sflow5 => 2,
    }
}

/// What the sink needs, resolved from `[output.elasticsearch]`.
#[derive(Debug, Clone)]
pub struct EsSinkSettings {
    pub es: EsSettings,
    pub index_prefix: String,
    pub max_docs: usize,
    pub max_bytes: usize,
    pub flush_interval: Duration,
    pub queue_batches: usize,
    pub queue_full: FullPolicy,
    pub retry: RetryPolicy,
    pub template: Option<TemplateSettings>,
    /// How long `connect` keeps trying to install the template before it gives up.
    pub connect_timeout: Duration,
}

impl EsSinkSettings {
    pub fn from_config(c: &ElasticsearchConfig) -> Self {
        let auth = match (&c.api_key, &c.username) {
            (Some(k), _) => Auth::ApiKey(k.clone()),
            (None, Some(u)) => Auth::Basic {
                user: u.clone(),
                password: c.password.clone().unwrap_or_default(),
            },
            (None, None) => Auth::None,
        };
        EsSinkSettings {
            es: EsSettings {
                urls: c.urls.clone(),
                auth,
                ca: c.ca.clone(),
                gzip: c.gzip,
                timeout: Duration::from_secs(60),
            },
            index_prefix: c.index_prefix.clone(),
            max_docs: c.max_docs,
            max_bytes: c.max_bytes as usize,
            flush_interval: Duration::from_millis(c.flush_interval_ms),
            queue_batches: 4,
            queue_full: c.queue_full,
            retry: RetryPolicy::default(),
            template: c.install_template.then(TemplateSettings::default),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// Creates one [`EsSink`] (and its sender thread) per worker.
pub struct EsSinkFactory {
    client: EsClient,
    settings: EsSinkSettings,
    run: String,
    stopping: Arc<AtomicBool>,
}

impl EsSinkFactory {
    /// Builds the HTTP client and installs the index template, retrying unreachable or busy
    /// clusters for `connect_timeout`; a cluster that refuses (bad credentials, bad CA, a 4xx)
    /// is an error at once, with the cluster's answer.
    pub fn connect(settings: EsSinkSettings) -> Result<Self, SinkError> {
        let client = EsClient::new(&settings.es, 2).map_err(|e| SinkError::Other(e.to_string()))?;
        if let Some(t) = &settings.template {
            let deadline = Instant::now() + settings.connect_timeout;
            let never = AtomicBool::new(false);
            template::install(
                &client,
                &settings.index_prefix,
                t,
                false,
                &never,
                |err, _| {
                    let refused = matches!(&err, BulkError::Status { status, .. }
                        if (400..500).contains(status) && *status != 429);
                    if refused || !err.is_retryable() || Instant::now() >= deadline {
                        return Err(err);
                    }
                    Ok(())
                },
            )
            .map_err(|e| {
                let why = e.map_or_else(|| "stopped".to_string(), |e| e.to_string());
                SinkError::Other(format!(
                    "elasticsearch: installing the index template: {why}"
                ))
            })?;
        }
        let now = crate::now_ns();
        let run = format!("{:x}{:x}", now / 1_000_000, std::process::id());
        Ok(EsSinkFactory {
            client,
            settings,
            run,
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Set it when a stop signal comes: a worker blocked on a full queue (the cluster down)
    /// then gives up after [`SHUTDOWN_BLOCK`] instead of waiting for ever, and counts what it
    /// could not hand on as dropped.
    pub fn stopping(&self) -> Arc<AtomicBool> {
        self.stopping.clone()
    }
}

impl SinkFactory for EsSinkFactory {
    fn make(&self, worker: usize, _workers: usize) -> Result<Box<dyn Sink>, SinkError> {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = bounded::<Batch>(self.settings.queue_batches.max(1));
        let sender = SenderThread {
            client: self.client.clone(),
            retry: self.settings.retry,
            shared: shared.clone(),
            worker,
        };
        let handle = std::thread::Builder::new()
            .name(format!("ff-es-{worker}"))
            .spawn(move || sender.run(rx))
            .map_err(|e| SinkError::Io {
                what: "starting the bulk sender thread".into(),
                source: e,
            })?;
        Ok(Box::new(EsSink {
            settings: self.settings.clone(),
            id_prefix: format!("{}-{worker}-", self.run),
            next_id: 0,
            naming: Naming {
                prefix: self.settings.index_prefix.clone(),
                data_streams: false,
            },
            names: Default::default(),
            cur: Batch::new(&self.settings),
            tx: Some(tx),
            handle: Some(handle),
            shared,
            accepted: 0,
            dropped: 0,
            worker,
            last_drop_log: None,
            stopping: self.stopping.clone(),
            give_up_at: None,
            failed_local: 0,
        }))
    }
}

/// Counters and latencies the sender thread updates.
#[derive(Default)]
struct Shared {
    delivered: AtomicU64,
    failed: AtomicU64,
    abandon: AtomicBool,
    latencies: Mutex<Vec<u64>>,
}

/// One `_bulk` body and where its items are.
struct Batch {
    body: Vec<u8>,
    /// item `i` spans `body[ends[i-1]..ends[i]]` (action line and document)
    ends: Vec<usize>,
    /// sampled receive times of the items
    recv: Vec<u64>,
    started: Option<Instant>,
}

/// What the delivery loop sends again alone: an item's action and document lines.
impl BulkItems for Batch {
    fn count(&self) -> usize {
        self.len()
    }
    fn body(&self) -> &[u8] {
        &self.body
    }
    fn lines(&self, i: usize) -> &[u8] {
        self.item(i)
    }
}

impl Batch {
    fn new(s: &EsSinkSettings) -> Batch {
        Batch {
            body: Vec::with_capacity(s.max_bytes.min(16 << 20) + 64 * 1024),
            ends: Vec::with_capacity(s.max_docs.min(65_536)),
            recv: Vec::with_capacity(64),
            started: None,
        }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn item(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.body[start..self.ends[i]]
    }
}

/// One worker's bulk writer.
pub struct EsSink {
    settings: EsSinkSettings,
    id_prefix: String,
    next_id: u64,
    naming: Naming,
    /// per group: the index name of the last day
    names: [DailyName; 3],
    cur: Batch,
    tx: Option<Sender<Batch>>,
    handle: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    accepted: u64,
    dropped: u64,
    worker: usize,
    last_drop_log: Option<Instant>,
    stopping: Arc<AtomicBool>,
    /// once stopping (or closing): when a blocked hand-on gives up
    give_up_at: Option<Instant>,
    /// documents given up at shutdown before they reached the sender
    failed_local: u64,
}

impl EsSink {
    fn due(&self) -> bool {
        let b = &self.cur;
        b.len() >= self.settings.max_docs
            || b.body.len() >= self.settings.max_bytes
            || b.started
                .is_some_and(|t| t.elapsed() >= self.settings.flush_interval)
    }

    /// Hands the current batch to the sender (blocking or dropping when its queue is full).
    fn hand_on(&mut self) -> Result<(), SinkError> {
        if self.cur.len() == 0 {
            return Ok(());
        }
        let next = Batch::new(&self.settings);
        let batch = std::mem::replace(&mut self.cur, next);
        let Some(tx) = &self.tx else {
            self.dropped += batch.len() as u64;
            return Err(SinkError::Other("elasticsearch sink closed".into()));
        };
        match self.settings.queue_full {
            FullPolicy::Drop => match tx.try_send(batch) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(b)) | Err(TrySendError::Disconnected(b)) => {
                    self.dropped += b.len() as u64;
                    if self.last_drop_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                        self.last_drop_log = Some(Instant::now());
                        tracing::warn!(
                            "worker {}: bulk queue full, dropped {} documents so far (queue_full = drop)",
                            self.worker,
                            self.dropped
                        );
                    }
                    Ok(())
                }
            },
            FullPolicy::Block => {
                let mut b = batch;
                loop {
                    match tx.send_timeout(b, Duration::from_millis(100)) {
                        Ok(()) => return Ok(()),
                        Err(SendTimeoutError::Timeout(back)) => {
                            if self.stopping.load(Ordering::Relaxed) && self.give_up_at.is_none() {
                                self.give_up_at = Some(Instant::now() + SHUTDOWN_BLOCK);
                            }
                            let late = self.give_up_at.is_some_and(|t| Instant::now() >= t);
                            if late || self.shared.abandon.load(Ordering::Relaxed) {
                                // the cluster does not take anything: stop its retries too
                                self.shared.abandon.store(true, Ordering::Relaxed);
                                self.failed_local += back.len() as u64;
                                tracing::warn!(
                                    "worker {}: the cluster took nothing while stopping; {} documents not delivered",
                                    self.worker,
                                    back.len()
                                );
                                return Ok(());
                            }
                            b = back;
                        }
                        Err(SendTimeoutError::Disconnected(back)) => {
                            self.dropped += back.len() as u64;
                            return Err(SinkError::Other(format!(
                                "worker {}: the bulk sender thread is gone",
                                self.worker
                            )));
                        }
                    }
                }
            }
        }
    }
}

impl Sink for EsSink {
    fn write(
        &mut self,
        record: &FlowRecord<'_>,
        doc: &[u8],
        recv_ns: u64,
    ) -> Result<(), SinkError> {
        self.accepted += 1;
        let ts = record.timestamp_ns().unwrap_or_else(crate::now_ns);
        let g = group(record.protocol);
        let mut id = itoa::Buffer::new();
        let id = id.format(self.next_id);
        self.next_id += 1;
        // the name is cached per day: one short copy per document, no formatting
        let name = self.names[g].get(&self.naming, GROUPS[g], day_of_ns(ts));
        let b = &mut self.cur;
        if b.started.is_none() {
            b.started = Some(Instant::now());
        }
        b.body.extend_from_slice(b"{\"create\":{\"_index\":\"");
        b.body.extend_from_slice(name.as_bytes());
        b.body.extend_from_slice(b"\",\"_id\":\"");
        b.body.extend_from_slice(self.id_prefix.as_bytes());
        b.body.extend_from_slice(id.as_bytes());
        b.body.extend_from_slice(b"\"}}\n");
        b.body.extend_from_slice(doc);
        b.body.push(b'\n');
        b.ends.push(b.body.len());
        if b.recv.len() < b.recv.capacity() {
            b.recv.push(recv_ns);
        }
        if self.cur.len() >= self.settings.max_docs
            || self.cur.body.len() >= self.settings.max_bytes
        {
            self.hand_on()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<(), SinkError> {
        if self.due() {
            self.hand_on()?;
        }
        Ok(())
    }

    fn tick(&mut self) {
        if self.due() {
            if let Err(e) = self.hand_on() {
                tracing::warn!("{e}");
            }
        }
    }

    fn close(&mut self, timeout: Duration) -> Result<(), SinkError> {
        let deadline = Instant::now() + timeout;
        if self.give_up_at.is_none_or(|t| t > deadline) {
            self.give_up_at = Some(deadline);
        }
        let r = self.hand_on();
        self.tx = None; // the sender ends once its queue is empty
        if let Some(h) = self.handle.take() {
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !h.is_finished() {
                self.shared.abandon.store(true, Ordering::Relaxed);
            }
            let _ = h.join();
        }
        r?;
        let c = self.counters();
        if c.in_flight > 0 {
            return Err(SinkError::Other(format!(
                "worker {}: {} documents not acknowledged by the cluster within {timeout:?}",
                self.worker, c.in_flight
            )));
        }
        Ok(())
    }

    fn counters(&self) -> SinkCounters {
        let delivered = self.shared.delivered.load(Ordering::Relaxed);
        let failed = self.shared.failed.load(Ordering::Relaxed) + self.failed_local;
        SinkCounters::queued(self.accepted, delivered, failed, self.dropped)
    }

    fn drain_latencies(&mut self, f: &mut dyn FnMut(u64)) {
        let mut l = self
            .shared
            .latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for &v in l.iter() {
            f(v);
        }
        l.clear();
    }
}

impl Drop for EsSink {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            self.shared.abandon.store(true, Ordering::Relaxed);
            let _ = h.join();
        }
    }
}

/// The sender thread of one worker.
struct SenderThread {
    client: EsClient,
    retry: RetryPolicy,
    shared: Arc<Shared>,
    worker: usize,
}

impl SenderThread {
    fn run(self, rx: Receiver<Batch>) {
        let mut sender = BulkSender::new(
            format!("worker {}: ", self.worker),
            RateLimited::every(LOG_EVERY),
        );
        let mut seq = 0u64;
        while let Ok(batch) = rx.recv() {
            seq += 1;
            let mut backoff = Backoff::new(self.retry, (self.worker as u64) << 32 ^ seq);
            let mut counts = Counts {
                shared: &self.shared,
                worker: self.worker,
            };
            let s = &self.shared;
            if sender.deliver(&self.client, &batch, &mut backoff, &s.abandon, &mut counts)
                && !batch.recv.is_empty()
            {
                let now = crate::now_ns();
                let mut l = s.latencies.lock().unwrap_or_else(|p| p.into_inner());
                for &t in &batch.recv {
                    if l.len() < LATENCY_SAMPLES {
                        l.push(now.saturating_sub(t));
                    }
                }
            }
        }
    }
}

/// The direct sink's side of the delivery loop: written and already-there items count as
/// delivered; items rejected for good count as failed and are logged (no dead-letter topic
/// without Kafka).
struct Counts<'a> {
    shared: &'a Shared,
    worker: usize,
}

impl Report for Counts<'_> {
    fn written(&mut self, n: u64) {
        self.shared.delivered.fetch_add(n, Ordering::Relaxed);
    }

    fn already_written(&mut self, n: u64) {
        self.shared.delivered.fetch_add(n, Ordering::Relaxed);
    }

    fn rejected(&mut self, items: &[Rejected], log: &mut RateLimited) -> Result<(), String> {
        self.shared
            .failed
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        if let Some(s) = log.ready() {
            tracing::warn!(
                "worker {}: {} documents rejected by the cluster (first: HTTP {}: {}) ({s} similar suppressed)",
                self.worker,
                items.len(),
                items[0].status,
                items[0].reason.chars().take(300).collect::<String>()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_items_are_addressable() {
        let s = EsSinkSettings::from_config(&ElasticsearchConfig::default());
        let mut b = Batch::new(&s);
        for doc in ["a\n", "bb\n", "ccc\n"] {
            b.body.extend_from_slice(doc.as_bytes());
            b.ends.push(b.body.len());
        }
        assert_eq!(b.len(), 3);
        assert_eq!(b.item(0), b"a\n");
        assert_eq!(b.item(1), b"bb\n");
        assert_eq!(b.item(2), b"ccc\n");
    }

    #[test]
    fn protocols_share_the_kafka_topic_groups() {
        assert_eq!(GROUPS[group(FlowProtocol::NetflowV5)], "netflow");
        assert_eq!(GROUPS[group(FlowProtocol::NetflowV9)], "netflow");
        assert_eq!(GROUPS[group(FlowProtocol::Ipfix)], "ipfix");
        assert_eq!(GROUPS[group(FlowProtocol::Sflow5)], "sflow");
    }

    /// The sender thread through the shared delivery loop against a scripted `_bulk` server:
    /// a 413 splits, written and already-there items count as delivered, a rejected one as
    /// failed, a 429 one is sent again alone; the batch's receive times give latencies.
    #[test]
    fn sender_counts_what_the_cluster_answered() {
        use crate::es::testing::{bulk_server, items_response};
        let (url, seen) = bulk_server(vec![
            (413, "too large".into()),
            (200, items_response(&[201, 400])),
            (200, items_response(&[409, 429])),
            (200, r#"{"errors":false}"#.into()),
        ]);
        let mut s = EsSinkSettings::from_config(&ElasticsearchConfig::default());
        s.es.urls = vec![url];
        let shared = Arc::new(Shared::default());
        let sender = SenderThread {
            client: EsClient::new(&s.es, 1).unwrap(),
            retry: RetryPolicy {
                initial: Duration::from_millis(1),
                max: Duration::from_millis(5),
            },
            shared: shared.clone(),
            worker: 0,
        };
        let mut b = Batch::new(&s);
        for i in 0..4 {
            b.body.extend_from_slice(
                format!("{{\"create\":{{\"_index\":\"t\",\"_id\":\"d{i}\"}}}}\n{{}}\n").as_bytes(),
            );
            b.ends.push(b.body.len());
        }
        b.recv.push(crate::now_ns());
        let (tx, rx) = bounded(1);
        tx.send(b).unwrap();
        drop(tx);
        sender.run(rx);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(seen[1].lines().count(), 4); // the first half
        assert!(seen[3].contains("\"d3\"") && seen[3].lines().count() == 2);
        assert_eq!(shared.delivered.load(Ordering::Relaxed), 3);
        assert_eq!(shared.failed.load(Ordering::Relaxed), 1);
        assert_eq!(shared.latencies.lock().unwrap().len(), 1);
    }

    #[test]
    fn unreachable_cluster_is_a_clear_error() {
        let mut s = EsSinkSettings::from_config(&ElasticsearchConfig::default());
        // a port nothing listens on: bind one and close it
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        s.es.urls = vec![format!("http://127.0.0.1:{port}")];
        s.connect_timeout = Duration::from_millis(300);
        let e = EsSinkFactory::connect(s)
            .err()
            .expect("nothing listens there");
        assert!(
            e.to_string().contains("installing the index template"),
            "{e}"
        );
    }
}
