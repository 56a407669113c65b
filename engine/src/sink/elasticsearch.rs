//! Elasticsearch / OpenSearch directly (`--output elasticsearch`): the one-box design, no Kafka.
//!
//! - Each worker builds `_bulk` bodies (`create` actions) in its own buffer; a batch is handed to
//!   the worker's sender thread when it reaches `max_docs` / `max_bytes`, or when it is older than
//!   `flush_interval` (checked at the end of every receive batch and on `tick`).
//! - The sender thread posts it with the `ferroflow index` HTTP client ([`EsClient`]: TLS with a
//!   private CA, basic auth or API key, gzip, round robin over URLs) and retries what failed with
//!   429 / 5xx / transport errors with exponential backoff, resending only those items with the
//!   same `_id`s, so a retried item is never written twice (a 409 on retry counts as written).
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
use crate::index::config::{Auth, EsSettings, RetryPolicy, TemplateSettings};
use crate::index::request_builder::civil_from_days;
use crate::index::retry::{sleep_unless, Backoff};
use crate::index::service::{BulkError, EsClient, ItemOutcome};
use crate::index::template;

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
            let body = template::index_template(&settings.index_prefix, t, false);
            let body = serde_json::to_vec(&body).expect("serialisable template");
            let path = format!(
                "/_index_template/{}",
                template::template_name(&settings.index_prefix)
            );
            let deadline = Instant::now() + settings.connect_timeout;
            let mut backoff = Backoff::new(
                RetryPolicy {
                    initial: Duration::from_millis(200),
                    max: Duration::from_secs(5),
                },
                7,
            );
            loop {
                let err = match client.request("PUT", &path, "application/json", Some(&body), false)
                {
                    Ok(r) if (200..300).contains(&r.status) => break,
                    Ok(r) => BulkError::Status {
                        url: format!("{}{path}", settings.es.urls[0]),
                        status: r.status,
                        body: String::from_utf8_lossy(&r.body[..r.body.len().min(1024)])
                            .into_owned(),
                    },
                    Err(e) => e,
                };
                let refused = matches!(&err, BulkError::Status { status, .. }
                        if (400..500).contains(status) && *status != 429);
                if refused || !err.is_retryable() || Instant::now() >= deadline {
                    return Err(SinkError::Other(format!(
                        "elasticsearch: installing the index template: {err}"
                    )));
                }
                std::thread::sleep(backoff.next_delay());
            }
            tracing::info!(
                "index template {} installed for {}-*",
                template::template_name(&settings.index_prefix),
                settings.index_prefix
            );
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
        let sender = Sender_ {
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
    /// per group: the day number and its index name
    names: [Option<(i64, String)>; 3],
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
    fn index_name(&mut self, g: usize, ts_ns: u64) -> &str {
        let day = (ts_ns / 1_000_000_000 / 86_400) as i64;
        if self.names[g].as_ref().is_none_or(|(d, _)| *d != day) {
            let (y, m, d) = civil_from_days(day);
            let name = format!(
                "{}-{}-{:04}.{:02}.{:02}",
                self.settings.index_prefix,
                GROUPS[g],
                y.clamp(0, 9999),
                m,
                d
            );
            self.names[g] = Some((day, name));
        }
        self.names[g]
            .as_ref()
            .map(|(_, n)| n.as_str())
            .unwrap_or("")
    }

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
        // the name is cached per day: one short copy per document, no formatting
        let name_len = self.index_name(g, ts).len();
        let mut id = itoa::Buffer::new();
        let id = id.format(self.next_id);
        self.next_id += 1;
        let b = &mut self.cur;
        if b.started.is_none() {
            b.started = Some(Instant::now());
        }
        b.body.extend_from_slice(b"{\"create\":{\"_index\":\"");
        let name = self.names[g]
            .as_ref()
            .map(|(_, n)| n.as_bytes())
            .unwrap_or(b"");
        b.body.extend_from_slice(&name[..name_len]);
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
struct Sender_ {
    client: EsClient,
    retry: RetryPolicy,
    shared: Arc<Shared>,
    worker: usize,
}

impl Sender_ {
    fn run(self, rx: Receiver<Batch>) {
        let mut scratch = Vec::new();
        let mut last_warn: Option<Instant> = None;
        let mut suppressed = 0u64;
        let mut seq = 0u64;
        while let Ok(batch) = rx.recv() {
            seq += 1;
            self.deliver(&batch, seq, &mut scratch, &mut last_warn, &mut suppressed);
        }
    }

    fn warn(&self, last: &mut Option<Instant>, suppressed: &mut u64, msg: impl FnOnce() -> String) {
        if last.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                "worker {}: {} ({suppressed} similar suppressed)",
                self.worker,
                msg()
            );
            *suppressed = 0;
        } else {
            *suppressed += 1;
        }
    }

    fn deliver(
        &self,
        batch: &Batch,
        seq: u64,
        scratch: &mut Vec<u8>,
        last_warn: &mut Option<Instant>,
        suppressed: &mut u64,
    ) {
        let n = batch.len();
        let s = &self.shared;
        let mut backoff = Backoff::new(self.retry, (self.worker as u64) << 32 ^ seq);
        let mut todo: Vec<usize> = (0..n).collect();
        while !todo.is_empty() {
            if s.abandon.load(Ordering::Relaxed) {
                return;
            }
            let body: &[u8] = if todo.len() == n {
                &batch.body
            } else {
                scratch.clear();
                for &i in &todo {
                    scratch.extend_from_slice(batch.item(i));
                }
                scratch
            };
            let mut retry = Vec::new();
            match self.client.bulk(body, todo.len()) {
                Ok(None) => {
                    s.delivered.fetch_add(todo.len() as u64, Ordering::Relaxed);
                }
                Ok(Some(outcomes)) => {
                    let mut rejected = 0u64;
                    let mut first_reason = None;
                    for (k, o) in outcomes.into_iter().enumerate() {
                        match o {
                            ItemOutcome::Written | ItemOutcome::AlreadyWritten => {
                                s.delivered.fetch_add(1, Ordering::Relaxed);
                            }
                            ItemOutcome::Retry { .. } => retry.push(todo[k]),
                            ItemOutcome::Rejected { status, reason } => {
                                rejected += 1;
                                first_reason.get_or_insert((status, reason));
                            }
                        }
                    }
                    if rejected > 0 {
                        s.failed.fetch_add(rejected, Ordering::Relaxed);
                        let (status, reason) = first_reason.unwrap_or_default();
                        self.warn(last_warn, suppressed, || {
                            format!(
                                "{rejected} documents rejected by the cluster (first: HTTP {status}: {})",
                                reason.chars().take(300).collect::<String>()
                            )
                        });
                    }
                }
                Err(BulkError::Status { status: 413, .. }) if todo.len() > 1 => {
                    // too large: send it in halves (the loop below takes them one by one)
                    let half = todo.split_off(todo.len() / 2);
                    self.deliver_parts(batch, seq, [todo, half], scratch, last_warn, suppressed);
                    return;
                }
                Err(e) if e.is_retryable() => {
                    self.warn(last_warn, suppressed, || {
                        format!(
                            "bulk request of {} documents failed, retrying: {e}",
                            todo.len()
                        )
                    });
                    retry = todo.clone();
                }
                Err(e) => {
                    s.failed.fetch_add(todo.len() as u64, Ordering::Relaxed);
                    self.warn(last_warn, suppressed, || {
                        format!("bulk request of {} documents refused: {e}", todo.len())
                    });
                }
            }
            if retry.is_empty() {
                break;
            }
            if !sleep_unless(backoff.next_delay(), &s.abandon) {
                return;
            }
            todo = retry;
        }
        if !batch.recv.is_empty() {
            let now = crate::now_ns();
            let mut l = s.latencies.lock().unwrap_or_else(|p| p.into_inner());
            for &t in &batch.recv {
                if l.len() < LATENCY_SAMPLES {
                    l.push(now.saturating_sub(t));
                }
            }
        }
    }

    fn deliver_parts(
        &self,
        batch: &Batch,
        seq: u64,
        parts: [Vec<usize>; 2],
        scratch: &mut Vec<u8>,
        last_warn: &mut Option<Instant>,
        suppressed: &mut u64,
    ) {
        for part in parts {
            let mut sub = Batch {
                body: Vec::new(),
                ends: Vec::with_capacity(part.len()),
                recv: Vec::new(),
                started: None,
            };
            for &i in &part {
                sub.body.extend_from_slice(batch.item(i));
                sub.ends.push(sub.body.len());
            }
            self.deliver(&sub, seq, scratch, last_warn, suppressed);
        }
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
