//! The pipeline (the Vector split's `sink`): consumer threads, the sender pool, and the rule
//! that makes it exactly-once in the index: a batch's offsets are stored for commit only after
//! every item of the batch is written (or was already there: 409) or dead-lettered, and only
//! in order (batch k+1's offsets wait for batch k).
//!
//! ```text
//! consumer thread c (one rdkafka consumer, member of the group)
//!   poll -> RequestBuilder (NDJSON body, optional enrichment) -> Batch
//!   -> jobs channel (bounded) -> sender threads (in_flight, one keep-alive pool)
//!   <- done channel of c <- sender: deliver() with per-item retry / dead letters
//!   -> in-order: store_offsets; librdkafka auto-commits stored offsets every second;
//!      a synchronous commit of everything stored at shutdown.
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::{Message, Timestamp};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;

use super::dead_letter::{DeadLetter, DeadLetterProducer};
use super::enrich::{EnrichState, Enricher};
use super::metrics::IndexMetrics;
use super::request_builder::{leading_timestamp_day_ms, Batch, Naming, RequestBuilder};
use super::retry::{sleep_unless, Backoff};
use super::service::{BulkError, EsClient, ItemOutcome};
use super::IndexSettings;

/// A batch for the senders, and where to say it is done.
pub struct Job {
    pub batch: Batch,
    pub reply: Sender<Done>,
}

/// A sender's answer: `delivered` when every item was written or dead-lettered.
#[derive(Debug, Clone, Copy)]
pub struct Done {
    pub seq: u64,
    pub delivered: bool,
}

/// What senders share.
pub struct SenderCtx {
    pub client: EsClient,
    pub dlq: Arc<DeadLetterProducer>,
    pub metrics: Arc<IndexMetrics>,
    pub settings: Arc<IndexSettings>,
    /// Set at the shutdown deadline: stop retrying, report batches undelivered.
    pub abandon: Arc<AtomicBool>,
}

/// Logs at most once per interval.
pub struct RateLimited {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    pub fn new() -> Self {
        RateLimited {
            last: None,
            suppressed: 0,
        }
    }
    pub fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < Duration::from_secs(5) => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Sender thread body: until the jobs channel closes.
pub fn sender_loop(ctx: Arc<SenderCtx>, jobs: Receiver<Job>, id: usize) {
    let mut log = RateLimited::new();
    let mut scratch = Vec::new();
    while let Ok(job) = jobs.recv() {
        let delivered = deliver(&ctx, &job.batch, id as u64, &mut scratch, &mut log);
        let _ = job.reply.send(Done {
            seq: job.batch.seq,
            delivered,
        });
    }
}

/// Delivers one batch: every item written, already there, or dead-lettered (`true`), or the
/// abandon flag was raised first (`false`: its offsets must not be committed).
pub fn deliver(
    ctx: &SenderCtx,
    batch: &Batch,
    seed: u64,
    scratch: &mut Vec<u8>,
    log: &mut RateLimited,
) -> bool {
    let m = &ctx.metrics;
    let n = batch.items.len();
    if n == 0 {
        return true;
    }
    let mut backoff = Backoff::new(
        ctx.settings.retry,
        seed.wrapping_mul(0x9E37_79B9) ^ batch.seq,
    );
    let mut queue: VecDeque<Vec<usize>> = VecDeque::from([(0..n).collect::<Vec<_>>()]);
    while let Some(chunk) = queue.pop_front() {
        if ctx.abandon.load(Ordering::Relaxed) {
            return false;
        }
        let body: &[u8] = if chunk.len() == n {
            &batch.body
        } else {
            batch.subset_body(&chunk, scratch);
            scratch
        };
        IndexMetrics::add(&m.bulk_requests, 1);
        IndexMetrics::add(&m.bulk_bytes, body.len() as u64);
        let t0 = Instant::now();
        let res = ctx.client.bulk(body, chunk.len());
        m.record_latency(t0.elapsed());
        let mut retry = Vec::new();
        let mut letters: Vec<(usize, u16, String)> = Vec::new();
        match res {
            Ok(None) => IndexMetrics::add(&m.indexed, chunk.len() as u64),
            Ok(Some(outcomes)) => {
                for (k, o) in outcomes.into_iter().enumerate() {
                    let i = chunk[k];
                    match o {
                        ItemOutcome::Written => IndexMetrics::add(&m.indexed, 1),
                        ItemOutcome::AlreadyWritten => IndexMetrics::add(&m.already_indexed, 1),
                        ItemOutcome::Retry { .. } => retry.push(i),
                        ItemOutcome::Rejected { status, reason } => {
                            letters.push((i, status, reason))
                        }
                    }
                }
            }
            Err(BulkError::Status { status: 413, .. }) if chunk.len() > 1 => {
                IndexMetrics::add(&m.bulk_failures, 1);
                let (a, b) = chunk.split_at(chunk.len() / 2);
                queue.push_front(b.to_vec());
                queue.push_front(a.to_vec());
                continue;
            }
            Err(e) if e.is_retryable() => {
                IndexMetrics::add(&m.bulk_failures, 1);
                if let Some(s) = log.ready() {
                    tracing::warn!(
                        "bulk request of {} documents failed, retrying: {e} ({s} similar suppressed)",
                        chunk.len()
                    );
                }
                retry = chunk;
            }
            Err(e) => {
                IndexMetrics::add(&m.bulk_failures, 1);
                let status = match &e {
                    BulkError::Status { status, .. } => *status,
                    _ => 0,
                };
                tracing::warn!(
                    "bulk request of {} documents rejected as a whole: {e}; dead-lettering them",
                    chunk.len()
                );
                let reason = e.to_string();
                letters = chunk.iter().map(|&i| (i, status, reason.clone())).collect();
            }
        }
        if !letters.is_empty() && !dead_letter(ctx, batch, &letters, &mut backoff, log) {
            return false;
        }
        if !retry.is_empty() {
            IndexMetrics::add(&m.retried, retry.len() as u64);
            if !sleep_unless(backoff.next_delay(), &ctx.abandon) {
                return false;
            }
            queue.push_front(retry);
        }
    }
    true
}

fn dead_letter(
    ctx: &SenderCtx,
    batch: &Batch,
    letters: &[(usize, u16, String)],
    backoff: &mut Backoff,
    log: &mut RateLimited,
) -> bool {
    let ids: Vec<String> = letters.iter().map(|(i, _, _)| batch.item_id(*i)).collect();
    let list: Vec<DeadLetter<'_>> = letters
        .iter()
        .zip(&ids)
        .map(|((i, status, reason), id)| {
            let it = &batch.items[*i];
            DeadLetter {
                id,
                index: batch.index_name(*i),
                topic: &batch.topics[it.topic as usize],
                partition: it.partition,
                offset: it.offset,
                status: *status,
                reason,
                doc: batch.doc(*i),
            }
        })
        .collect();
    loop {
        match ctx.dlq.send_all(&list) {
            Ok(()) => {
                IndexMetrics::add(&ctx.metrics.dead_lettered, list.len() as u64);
                if let Some(s) = log.ready() {
                    tracing::warn!(
                        "{} documents rejected (first: {} HTTP {}: {}), written to {} ({s} similar suppressed)",
                        list.len(),
                        list[0].id,
                        list[0].status,
                        list[0].reason.chars().take(300).collect::<String>(),
                        ctx.dlq.topic()
                    );
                }
                return true;
            }
            Err(e) => {
                if let Some(s) = log.ready() {
                    tracing::warn!("{e}; retrying ({s} similar suppressed)");
                }
                if !sleep_unless(backoff.next_delay(), &ctx.abandon) {
                    return false;
                }
            }
        }
    }
}

/// librdkafka statistics -> the lag gauge.
pub struct ConsumerCtx {
    pub metrics: Arc<IndexMetrics>,
}

impl ClientContext for ConsumerCtx {
    fn stats(&self, s: Statistics) {
        let mut lag = self.metrics.lag.lock().unwrap_or_else(|p| p.into_inner());
        for (tname, t) in &s.topics {
            for (pid, p) in &t.partitions {
                if *pid >= 0 && p.consumer_lag >= 0 {
                    lag.insert((tname.clone(), *pid), p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for ConsumerCtx {}

/// The consumer's librdkafka configuration.
pub fn consumer_config(s: &IndexSettings) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &s.brokers)
        .set("group.id", &s.group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "2000")
        .set("max.poll.interval.ms", "300000")
        .set("statistics.interval.ms", "5000")
        .set("fetch.wait.max.ms", "100")
        .set("client.id", "ferroflow-index");
    for (k, v) in &s.kafka_properties {
        cfg.set(k, v);
    }
    cfg
}

struct Pending {
    seq: u64,
    commit: Vec<(u16, i32, i64)>,
    skipped: u64,
    done: Option<bool>,
}

/// One consumer thread's state.
pub struct ConsumerLoop {
    pub consumer: BaseConsumer<ConsumerCtx>,
    pub builder: RequestBuilder,
    pub topics: Arc<[String]>,
    pub settings: Arc<IndexSettings>,
    pub metrics: Arc<IndexMetrics>,
    pub jobs: Sender<Job>,
    pub enricher: Option<Arc<Enricher>>,
    pub stop: Arc<AtomicBool>,
    pub abandon: Arc<AtomicBool>,
    pub id: usize,
}

impl ConsumerLoop {
    pub fn new(
        settings: Arc<IndexSettings>,
        metrics: Arc<IndexMetrics>,
        jobs: Sender<Job>,
        enricher: Option<Arc<Enricher>>,
        stop: Arc<AtomicBool>,
        abandon: Arc<AtomicBool>,
        id: usize,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let mut cfg = consumer_config(&settings);
        cfg.set("client.id", format!("ferroflow-index-{id}"));
        let consumer: BaseConsumer<ConsumerCtx> = cfg.create_with_context(ConsumerCtx {
            metrics: metrics.clone(),
        })?;
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        let topics: Arc<[String]> = settings.topics.clone().into();
        let builder = RequestBuilder::new(
            Naming {
                prefix: settings.index_prefix.clone(),
                data_streams: settings.data_streams,
            },
            topics.clone(),
            settings.batch.max_docs,
            settings.batch.max_bytes,
        );
        Ok(ConsumerLoop {
            consumer,
            builder,
            topics,
            settings,
            metrics,
            jobs,
            enricher,
            stop,
            abandon,
            id,
        })
    }

    /// Runs until `stop`, then delivers what it holds (until the close timeout) and commits.
    pub fn run(mut self) {
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<Done>();
        let mut outstanding: VecDeque<Pending> = VecDeque::new();
        let mut stored: HashMap<(u16, i32), i64> = HashMap::new();
        let mut poisoned = false;
        let mut paused = false;
        let mut log = RateLimited::new();
        let mut enrich_state = EnrichState::default();
        let max_outstanding = self.settings.in_flight.max(1);
        let max_wait = self.settings.batch.max_wait;

        loop {
            self.collect(
                &done_rx,
                &mut outstanding,
                &mut stored,
                &mut poisoned,
                false,
            );
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let due = self.builder.is_full()
                || self
                    .builder
                    .started()
                    .is_some_and(|t| t.elapsed() >= max_wait);
            if due {
                if outstanding.len() >= max_outstanding {
                    // back-pressure: stop fetching, keep serving the group protocol
                    if !paused {
                        if let Ok(a) = self.consumer.assignment() {
                            let _ = self.consumer.pause(&a);
                        }
                        paused = true;
                    }
                    if let Ok(d) = done_rx.recv_timeout(Duration::from_millis(50)) {
                        Self::mark(&mut outstanding, d);
                    }
                    if let Some(Ok(m)) = self.consumer.poll(Duration::ZERO) {
                        add_message(
                            &mut self.builder,
                            &self.metrics,
                            self.enricher.as_deref(),
                            &m,
                            &mut enrich_state,
                        );
                    }
                    continue;
                }
                self.dispatch(&done_tx, &mut outstanding);
            }
            if paused && outstanding.len() < max_outstanding {
                if let Ok(a) = self.consumer.assignment() {
                    let _ = self.consumer.resume(&a);
                }
                paused = false;
            }
            let wait = match self.builder.started() {
                Some(t) => max_wait
                    .saturating_sub(t.elapsed())
                    .min(Duration::from_millis(100)),
                None => Duration::from_millis(100),
            };
            match self.consumer.poll(wait) {
                Some(Ok(m)) => add_message(
                    &mut self.builder,
                    &self.metrics,
                    self.enricher.as_deref(),
                    &m,
                    &mut enrich_state,
                ),
                Some(Err(e)) => {
                    IndexMetrics::add(&self.metrics.consumer_errors, 1);
                    if let Some(s) = log.ready() {
                        tracing::warn!("consumer {}: {e} ({s} similar suppressed)", self.id);
                    }
                }
                None => {}
            }
        }

        // shutdown: hand over the partial batch, wait for the senders, commit what is done
        let deadline = Instant::now() + self.settings.close_timeout;
        if !self.builder.is_empty() {
            self.dispatch(&done_tx, &mut outstanding);
        }
        while !outstanding.is_empty() {
            if Instant::now() >= deadline && !self.abandon.load(Ordering::Relaxed) {
                tracing::warn!(
                    "consumer {}: close timeout: {} batches undelivered; they will be read again at the next start",
                    self.id,
                    outstanding.len()
                );
                self.abandon.store(true, Ordering::Relaxed);
            }
            if let Ok(d) = done_rx.recv_timeout(Duration::from_millis(100)) {
                Self::mark(&mut outstanding, d);
            }
            self.collect(&done_rx, &mut outstanding, &mut stored, &mut poisoned, true);
            if Instant::now() >= deadline + Duration::from_secs(60) {
                break;
            }
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in &stored {
            let _ = tpl.add_partition_offset(&self.topics[*t as usize], *p, Offset::Offset(*o));
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
                tracing::warn!("consumer {}: final commit: {e}", self.id);
            }
        }
    }

    fn mark(outstanding: &mut VecDeque<Pending>, d: Done) {
        if let Some(p) = outstanding.iter_mut().find(|p| p.seq == d.seq) {
            p.done = Some(d.delivered);
        }
    }

    /// Takes the finished batches at the head, in order, and stores their offsets.
    fn collect(
        &self,
        done_rx: &Receiver<Done>,
        outstanding: &mut VecDeque<Pending>,
        stored: &mut HashMap<(u16, i32), i64>,
        poisoned: &mut bool,
        _closing: bool,
    ) {
        while let Ok(d) = done_rx.try_recv() {
            Self::mark(outstanding, d);
        }
        while let Some(p) = outstanding.front() {
            let Some(ok) = p.done else { break };
            let p = outstanding.pop_front().expect("front exists");
            self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
            IndexMetrics::add(&self.metrics.skipped, p.skipped);
            if !ok {
                // an undelivered batch: nothing after it may be committed
                *poisoned = true;
            }
            if *poisoned {
                continue;
            }
            let mut tpl = TopicPartitionList::with_capacity(p.commit.len());
            for (t, part, next) in &p.commit {
                let _ = tpl.add_partition_offset(
                    &self.topics[*t as usize],
                    *part,
                    Offset::Offset(*next),
                );
                stored.insert((*t, *part), *next);
            }
            // Partitions revoked meanwhile answer an error: their new owner re-reads them,
            // and the deterministic ids turn the replay into 409s.
            let _ = self.consumer.store_offsets(&tpl);
            IndexMetrics::add(&self.metrics.batches_committed, 1);
        }
    }

    fn dispatch(&mut self, done_tx: &Sender<Done>, outstanding: &mut VecDeque<Pending>) {
        let Some(batch) = self.builder.take() else {
            return;
        };
        outstanding.push_back(Pending {
            seq: batch.seq,
            commit: batch.commit.clone(),
            skipped: batch.skipped,
            done: None,
        });
        self.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        if batch.items.is_empty() {
            Self::mark(
                outstanding,
                Done {
                    seq: batch.seq,
                    delivered: true,
                },
            );
            return;
        }
        if let Err(e) = self.jobs.send(Job {
            batch,
            reply: done_tx.clone(),
        }) {
            // senders gone (shutting down): leave it undelivered
            Self::mark(
                outstanding,
                Done {
                    seq: e.0.batch.seq,
                    delivered: false,
                },
            );
        }
    }
}

/// Adds one consumed message to the batch being built.
fn add_message(
    builder: &mut RequestBuilder,
    metrics: &IndexMetrics,
    enricher: Option<&Enricher>,
    m: &rdkafka::message::BorrowedMessage<'_>,
    es: &mut EnrichState,
) {
    let Some(t) = builder.topic_index(m.topic()) else {
        return;
    };
    IndexMetrics::add(&metrics.consumed[t as usize], 1);
    let payload = m.payload().unwrap_or(&[]);
    if payload.iter().all(u8::is_ascii_whitespace) {
        builder.skip(t, m.partition(), m.offset());
        return;
    }
    IndexMetrics::add(&metrics.consumed_bytes, payload.len() as u64);
    let ts = match m.timestamp() {
        Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) if ms > 0 => ms,
        _ => leading_timestamp_day_ms(payload)
            .unwrap_or_else(|| (crate::now_ns() / 1_000_000) as i64),
    };
    match enricher {
        None => builder.push(t, m.partition(), m.offset(), ts, payload),
        Some(en) => builder.push_with(t, m.partition(), m.offset(), ts, |body| {
            let start = body.len();
            if en.enrich_into(payload, es, body).is_err() {
                body.truncate(start);
                IndexMetrics::add(&metrics.enrich_errors, 1);
                body.extend_from_slice(payload);
            }
        }),
    }
}
