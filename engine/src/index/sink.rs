//! The pipeline (the Vector split's `sink`): consumer threads, the sender pool, and the rule
//! that makes it exactly-once in the index: a batch's offsets are stored for commit only after
//! every item of the batch is written (or was already there: 409) or dead-lettered, and only
//! in order (batch k+1's offsets wait for batch k).
//!
//! ```text
//! consumer thread c (one rdkafka consumer, member of the group)
//!   poll -> RequestBuilder (NDJSON body, optional enrichment) -> Batch
//!   -> jobs channel (bounded) -> sender threads (in_flight, one keep-alive pool)
//!   <- done channel of c <- sender: es::BulkSender::deliver (per-item retry), dead letters
//!   -> in-order: store_offsets; librdkafka auto-commits stored offsets every second;
//!      a synchronous commit of everything stored at shutdown.
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{Message, Timestamp};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;

use super::dead_letter::{DeadLetter, DeadLetterSink};
use super::enrich::{EnrichState, Enricher};
use super::metrics::IndexMetrics;
use super::request_builder::{Batch, RequestBuilder};
use super::IndexSettings;
use crate::es::naming::{leading_timestamp_day_ms, Naming};
use crate::es::{Backoff, BulkSender, EsClient, RateLimited, Rejected, Report};

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
    pub dlq: Arc<dyn DeadLetterSink>,
    pub metrics: Arc<IndexMetrics>,
    pub settings: Arc<IndexSettings>,
    /// Set at the shutdown deadline: stop retrying, report batches undelivered.
    pub abandon: Arc<AtomicBool>,
}

/// Sender thread body: until the jobs channel closes.
pub fn sender_loop(ctx: Arc<SenderCtx>, jobs: Receiver<Job>, id: usize) {
    let mut sender = BulkSender::new("", RateLimited::new());
    while let Ok(job) = jobs.recv() {
        let delivered = deliver(&ctx, &job.batch, id as u64, &mut sender);
        let _ = job.reply.send(Done {
            seq: job.batch.seq,
            delivered,
        });
    }
}

/// Delivers one batch: every item written, already there, or dead-lettered (`true`), or the
/// abandon flag was raised first (`false`: its offsets must not be committed).
pub fn deliver(ctx: &SenderCtx, batch: &Batch, seed: u64, sender: &mut BulkSender) -> bool {
    let mut backoff = Backoff::new(
        ctx.settings.retry,
        seed.wrapping_mul(0x9E37_79B9) ^ batch.seq,
    );
    let mut report = DeadLetters { ctx, batch };
    sender.deliver(&ctx.client, batch, &mut backoff, &ctx.abandon, &mut report)
}

/// The indexer's side of the delivery loop: the metrics, and the items rejected for good
/// written to the dead-letter topic.
struct DeadLetters<'a> {
    ctx: &'a SenderCtx,
    batch: &'a Batch,
}

impl Report for DeadLetters<'_> {
    fn sent(&mut self, _items: usize, bytes: usize) {
        let m = &self.ctx.metrics;
        IndexMetrics::add(&m.bulk_requests, 1);
        IndexMetrics::add(&m.bulk_bytes, bytes as u64);
    }

    fn answered(&mut self, elapsed: Duration) {
        self.ctx.metrics.record_latency(elapsed);
    }

    fn written(&mut self, n: u64) {
        IndexMetrics::add(&self.ctx.metrics.indexed, n);
    }

    fn already_written(&mut self, n: u64) {
        IndexMetrics::add(&self.ctx.metrics.already_indexed, n);
    }

    fn request_failed(&mut self) {
        IndexMetrics::add(&self.ctx.metrics.bulk_failures, 1);
    }

    fn retrying(&mut self, n: u64) {
        IndexMetrics::add(&self.ctx.metrics.retried, n);
    }

    /// Writes the items to the dead-letter topic (all of them durable, or an error).
    fn rejected(&mut self, items: &[Rejected], log: &mut RateLimited) -> Result<(), String> {
        let (ctx, batch) = (self.ctx, self.batch);
        let ids: Vec<String> = items.iter().map(|r| batch.item_id(r.item)).collect();
        let list: Vec<DeadLetter<'_>> = items
            .iter()
            .zip(&ids)
            .map(|(r, id)| {
                let it = &batch.items[r.item];
                DeadLetter {
                    id,
                    index: batch.index_name(r.item),
                    topic: &batch.topics[it.topic as usize],
                    partition: it.partition,
                    offset: it.offset,
                    status: r.status,
                    reason: &r.reason,
                    doc: batch.doc(r.item),
                }
            })
            .collect();
        ctx.dlq.send_all(&list).map_err(|e| e.to_string())?;
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
        Ok(())
    }
}

/// A batch handed to the senders, in consumption order.
struct Pending {
    seq: u64,
    commit: Vec<(u16, i32, i64)>,
    skipped: u64,
    done: Option<bool>,
}

/// What a consumer thread has in flight, shared with its rebalance callback (which runs on the
/// same thread, inside `poll`; the lock is never held across `poll`).
#[derive(Default)]
pub struct Inflight {
    outstanding: VecDeque<Pending>,
    /// Offsets stored since the last assignment (for the commits at revoke and at shutdown).
    stored: HashMap<(u16, i32), i64>,
    /// A batch was not delivered: nothing after it may be stored until the next assignment.
    poisoned: bool,
    /// Bumped at every revocation: the partial batch being built is then dropped (its
    /// partitions restart from the committed offsets).
    generation: u64,
    /// The loop paused its assignment for back-pressure (every batch in flight, the next one
    /// due). Partitions assigned while it is set are paused too, any others resumed: see
    /// [`ConsumerCtx::post_rebalance`].
    paused: bool,
}

impl Inflight {
    fn mark(&mut self, d: Done) {
        if let Some(p) = self.outstanding.iter_mut().find(|p| p.seq == d.seq) {
            p.done = Some(d.delivered);
        }
    }

    /// Takes the finished batches at the head, in order, and stores their offsets.
    fn collect(
        &mut self,
        done_rx: &Receiver<Done>,
        consumer: &BaseConsumer<ConsumerCtx>,
        topics: &[String],
        metrics: &IndexMetrics,
    ) {
        while let Ok(d) = done_rx.try_recv() {
            self.mark(d);
        }
        while let Some(p) = self.outstanding.front() {
            let Some(ok) = p.done else { break };
            let p = self.outstanding.pop_front().expect("front exists");
            metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
            IndexMetrics::add(&metrics.skipped, p.skipped);
            if !ok {
                self.poisoned = true;
            }
            if self.poisoned {
                continue;
            }
            let mut tpl = TopicPartitionList::with_capacity(p.commit.len());
            for (t, part, next) in &p.commit {
                let _ =
                    tpl.add_partition_offset(&topics[*t as usize], *part, Offset::Offset(*next));
                self.stored.insert((*t, *part), *next);
            }
            // A partition revoked meanwhile answers an error: its new owner re-reads it, and
            // the deterministic ids turn the replay into 409s.
            let _ = consumer.store_offsets(&tpl);
            IndexMetrics::add(&metrics.batches_committed, 1);
        }
    }

    /// Synchronous commit of everything stored.
    fn commit_stored(&self, consumer: &BaseConsumer<ConsumerCtx>, topics: &[String], id: usize) {
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in &self.stored {
            let _ = tpl.add_partition_offset(&topics[*t as usize], *p, Offset::Offset(*o));
        }
        if tpl.count() > 0 {
            if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
                tracing::warn!("consumer {id}: commit: {e}");
            }
        }
    }
}

/// The consumer's context: the lag gauge from librdkafka statistics, and the revoke handler
/// that drains the in-flight batches and commits before the partitions go to another member.
pub struct ConsumerCtx {
    pub metrics: Arc<IndexMetrics>,
    /// This consumer's lag per (topic, partition), from its last statistics (for the stall
    /// watchdog of the loop).
    own_lag: Arc<Mutex<HashMap<(String, i32), i64>>>,
    inflight: Arc<Mutex<Inflight>>,
    done_rx: Receiver<Done>,
    topics: Arc<[String]>,
    drain_timeout: Duration,
    id: usize,
}

impl ClientContext for ConsumerCtx {
    fn stats(&self, s: Statistics) {
        let mut lag = self.metrics.lag.lock().unwrap_or_else(|p| p.into_inner());
        let mut own = self.own_lag.lock().unwrap_or_else(|p| p.into_inner());
        own.clear();
        for (tname, t) in &s.topics {
            for (pid, p) in &t.partitions {
                if *pid >= 0 && p.consumer_lag >= 0 {
                    lag.insert((tname.clone(), *pid), p.consumer_lag);
                    own.insert((tname.clone(), *pid), p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for ConsumerCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(_) = rebalance else {
            return;
        };
        let mut st = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        let end = Instant::now() + self.drain_timeout;
        st.collect(&self.done_rx, consumer, &self.topics, &self.metrics);
        while !st.outstanding.is_empty() && Instant::now() < end {
            if let Ok(d) = self.done_rx.recv_timeout(Duration::from_millis(100)) {
                st.mark(d);
            }
            st.collect(&self.done_rx, consumer, &self.topics, &self.metrics);
        }
        if !st.outstanding.is_empty() {
            tracing::warn!(
                "consumer {}: rebalance: {} batches still in flight after {:?}; their partitions' next owner reads them again",
                self.id,
                st.outstanding.len(),
                self.drain_timeout
            );
            self.metrics
                .in_flight
                .fetch_sub(st.outstanding.len() as u64, Ordering::Relaxed);
            st.outstanding.clear();
        }
        st.commit_stored(consumer, &self.topics, self.id);
        st.stored.clear();
        st.poisoned = false;
        st.generation += 1;
    }

    /// Sets the pause state of newly assigned partitions to the loop's. librdkafka keeps a
    /// partition's application pause across unassign / assign: a partition paused for
    /// back-pressure, revoked, and assigned again stays paused. Revocations come while the
    /// loop is paused (it keeps serving the group protocol); if the loop then resumed (its
    /// in-flight batches were drained at the revoke) while nothing was assigned, the
    /// partitions it gets next would never be fetched: the indexer would stop, silently.
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = rebalance else {
            return;
        };
        if tpl.count() == 0 {
            return;
        }
        let st = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        let res = if st.paused {
            consumer.pause(tpl)
        } else {
            consumer.resume(tpl)
        };
        tracing::debug!(
            "consumer {}: rebalance: assigned {} partitions, {} ({res:?})",
            self.id,
            tpl.count(),
            if st.paused {
                "paused (back-pressure)"
            } else {
                "resumed"
            }
        );
    }
}

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

/// One consumer thread.
pub struct ConsumerLoop {
    consumer: BaseConsumer<ConsumerCtx>,
    builder: RequestBuilder,
    topics: Arc<[String]>,
    settings: Arc<IndexSettings>,
    metrics: Arc<IndexMetrics>,
    jobs: Sender<Job>,
    enricher: Option<Arc<Enricher>>,
    stop: Arc<AtomicBool>,
    abandon: Arc<AtomicBool>,
    inflight: Arc<Mutex<Inflight>>,
    own_lag: Arc<Mutex<HashMap<(String, i32), i64>>>,
    /// Rate limit of the pause / resume debug lines (they come with every batch when the
    /// cluster is the bottleneck).
    pause_log: RateLimited,
    done_tx: Sender<Done>,
    done_rx: Receiver<Done>,
    id: usize,
}

/// No message for this long, nothing in flight, not paused: the stall watchdog looks.
const STALL_AFTER: Duration = Duration::from_secs(30);

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
        let topics: Arc<[String]> = settings.topics.clone().into();
        let inflight = Arc::new(Mutex::new(Inflight::default()));
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<Done>();
        let own_lag = Arc::new(Mutex::new(HashMap::new()));
        let consumer: BaseConsumer<ConsumerCtx> = cfg.create_with_context(ConsumerCtx {
            metrics: metrics.clone(),
            own_lag: own_lag.clone(),
            inflight: inflight.clone(),
            done_rx: done_rx.clone(),
            topics: topics.clone(),
            drain_timeout: settings.close_timeout,
            id,
        })?;
        let names: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names)?;
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
            inflight,
            own_lag,
            pause_log: RateLimited::new(),
            done_tx,
            done_rx,
            id,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Inflight> {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn collect(&self) {
        let mut st = self.state();
        st.collect(&self.done_rx, &self.consumer, &self.topics, &self.metrics);
    }

    fn outstanding(&self) -> usize {
        self.state().outstanding.len()
    }

    /// Back-pressure: pauses the assignment (and, through the rebalance callback, whatever is
    /// assigned until [`Self::resume`]).
    fn pause(&mut self) {
        let mut st = self.state();
        if st.paused {
            return;
        }
        st.paused = true;
        drop(st);
        self.metrics
            .paused_consumers
            .fetch_add(1, Ordering::Relaxed);
        if let Ok(a) = self.consumer.assignment() {
            let res = self.consumer.pause(&a);
            if let Some(s) = self.pause_log.ready() {
                tracing::debug!(
                    "consumer {}: back-pressure: paused {} partitions ({res:?}) ({s} pauses / resumes suppressed)",
                    self.id,
                    a.count()
                );
            }
        }
    }

    fn resume(&mut self) {
        let mut st = self.state();
        if !st.paused {
            return;
        }
        st.paused = false;
        drop(st);
        self.metrics
            .paused_consumers
            .fetch_sub(1, Ordering::Relaxed);
        if let Ok(a) = self.consumer.assignment() {
            let res = self.consumer.resume(&a);
            if let Some(s) = self.pause_log.ready() {
                tracing::debug!(
                    "consumer {}: resumed {} partitions ({res:?}) ({s} pauses / resumes suppressed)",
                    self.id,
                    a.count()
                );
            }
        }
    }

    fn is_paused(&self) -> bool {
        self.state().paused
    }

    /// The stall watchdog: no message for [`STALL_AFTER`] while not paused and nothing in
    /// flight. If the assigned partitions have lag (last statistics) this is a stall: count
    /// it, say so, resume them. Resuming an unpaused partition does nothing, so an idle
    /// consumer only resumes (quietly).
    fn watchdog(&self, last_message: &mut Instant, log: &mut RateLimited) {
        if last_message.elapsed() < STALL_AFTER || self.is_paused() || self.outstanding() > 0 {
            return;
        }
        *last_message = Instant::now();
        let Ok(a) = self.consumer.assignment() else {
            return;
        };
        if a.count() == 0 {
            return;
        }
        let lag: i64 = {
            let own = self.own_lag.lock().unwrap_or_else(|p| p.into_inner());
            a.elements()
                .iter()
                .filter_map(|e| own.get(&(e.topic().to_string(), e.partition())))
                .filter(|l| **l > 0)
                .sum()
        };
        let res = self.consumer.resume(&a);
        if lag > 0 {
            IndexMetrics::add(&self.metrics.consumer_stalls, 1);
            if let Some(s) = log.ready() {
                tracing::warn!(
                    "consumer {}: no message for {:?} although its {} partitions have a lag of {lag}; resuming them ({res:?}) ({s} similar suppressed)",
                    self.id,
                    STALL_AFTER,
                    a.count()
                );
            }
        } else {
            tracing::debug!(
                "consumer {}: idle for {:?} ({} partitions, no lag); resumed them ({res:?})",
                self.id,
                STALL_AFTER,
                a.count()
            );
        }
    }

    /// Runs until `stop`, then delivers what it holds (until the close timeout) and commits.
    pub fn run(mut self) {
        let mut log = RateLimited::new();
        let mut stall_log = RateLimited::new();
        let mut last_message = Instant::now();
        let mut enrich_state = EnrichState::default();
        let mut seen_generation = 0u64;
        let max_outstanding = self.settings.in_flight.max(1);
        let max_wait = self.settings.batch.max_wait;

        loop {
            self.collect();
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let due = self.builder.is_full()
                || self
                    .builder
                    .started()
                    .is_some_and(|t| t.elapsed() >= max_wait);
            if due {
                if self.outstanding() >= max_outstanding {
                    // back-pressure: stop fetching, keep serving the group protocol
                    self.pause();
                    if let Ok(d) = self.done_rx.recv_timeout(Duration::from_millis(50)) {
                        self.state().mark(d);
                    }
                    let polled = self.consumer.poll(Duration::ZERO);
                    drop_if_revoked(
                        &self.inflight,
                        &mut self.builder,
                        &mut seen_generation,
                        self.id,
                    );
                    if let Some(Ok(m)) = polled {
                        last_message = Instant::now();
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
                self.dispatch();
            }
            if self.outstanding() < max_outstanding {
                self.resume();
            }
            let wait = match self.builder.started() {
                Some(t) => max_wait
                    .saturating_sub(t.elapsed())
                    .min(Duration::from_millis(100)),
                None => Duration::from_millis(100),
            };
            let polled = self.consumer.poll(wait);
            drop_if_revoked(
                &self.inflight,
                &mut self.builder,
                &mut seen_generation,
                self.id,
            );
            match polled {
                Some(Ok(m)) => {
                    last_message = Instant::now();
                    add_message(
                        &mut self.builder,
                        &self.metrics,
                        self.enricher.as_deref(),
                        &m,
                        &mut enrich_state,
                    )
                }
                Some(Err(e)) => {
                    IndexMetrics::add(&self.metrics.consumer_errors, 1);
                    if let Some(s) = log.ready() {
                        tracing::warn!("consumer {}: {e} ({s} similar suppressed)", self.id);
                    }
                }
                None => {
                    if self.builder.is_empty() {
                        self.watchdog(&mut last_message, &mut stall_log);
                    }
                }
            }
        }
        if self.state().paused {
            self.metrics
                .paused_consumers
                .fetch_sub(1, Ordering::Relaxed);
        }

        // shutdown: hand over the partial batch, wait for the senders, commit what is done
        let deadline = Instant::now() + self.settings.close_timeout;
        if !self.builder.is_empty() {
            self.dispatch();
        }
        while self.outstanding() > 0 {
            if Instant::now() >= deadline && !self.abandon.load(Ordering::Relaxed) {
                tracing::warn!(
                    "consumer {}: close timeout: {} batches undelivered; they will be read again at the next start",
                    self.id,
                    self.outstanding()
                );
                self.abandon.store(true, Ordering::Relaxed);
            }
            if let Ok(d) = self.done_rx.recv_timeout(Duration::from_millis(100)) {
                self.state().mark(d);
            }
            self.collect();
            if Instant::now() >= deadline + Duration::from_secs(60) {
                break;
            }
        }
        let st = self.state();
        st.commit_stored(&self.consumer, &self.topics, self.id);
    }

    fn dispatch(&mut self) {
        let Some(batch) = self.builder.take() else {
            return;
        };
        self.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        let seq = batch.seq;
        {
            let mut st = self.state();
            st.outstanding.push_back(Pending {
                seq,
                commit: batch.commit.clone(),
                skipped: batch.skipped,
                done: None,
            });
            if batch.items.is_empty() {
                st.mark(Done {
                    seq,
                    delivered: true,
                });
                return;
            }
        }
        if self
            .jobs
            .send(Job {
                batch,
                reply: self.done_tx.clone(),
            })
            .is_err()
        {
            // senders gone (shutting down): leave it undelivered
            self.state().mark(Done {
                seq,
                delivered: false,
            });
        }
    }
}

/// Drops the partial batch when a revocation happened since `seen` (its partitions restart
/// from the committed offsets; with the eager protocol every partition is revoked).
fn drop_if_revoked(
    inflight: &Mutex<Inflight>,
    builder: &mut RequestBuilder,
    seen: &mut u64,
    id: usize,
) {
    let g = inflight
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .generation;
    if g != *seen {
        *seen = g;
        if let Some(b) = builder.take() {
            tracing::debug!(
                "consumer {id}: rebalance: dropped a partial batch of {} documents (read again from the committed offsets)",
                b.items.len()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::es::testing::{bulk_server as server, items_response};
    use crate::es::EsSettings;
    use crate::index::dead_letter::DeadLetterError;

    #[derive(Default)]
    struct MemDlq(Mutex<Vec<(String, u16, String)>>);
    impl DeadLetterSink for MemDlq {
        fn topic(&self) -> &str {
            "mem"
        }
        fn send_all(&self, letters: &[DeadLetter<'_>]) -> Result<(), DeadLetterError> {
            let mut v = self.0.lock().unwrap();
            for l in letters {
                v.push((l.id.to_string(), l.status, l.reason.to_string()));
            }
            Ok(())
        }
    }

    fn batch(n: usize) -> Batch {
        let mut b = RequestBuilder::new(
            Naming {
                prefix: "t".into(),
                data_streams: false,
            },
            vec!["x-netflow".to_string()].into(),
            1000,
            1 << 20,
        );
        for i in 0..n {
            b.push(0, 0, i as i64, 0, format!("{{\"n\":{i}}}").as_bytes());
        }
        b.take().unwrap()
    }

    fn sender() -> BulkSender {
        BulkSender::new("", RateLimited::new())
    }

    fn ctx(url: &str, dlq: Arc<MemDlq>) -> SenderCtx {
        let settings = IndexSettings {
            es: EsSettings {
                urls: vec![url.to_string()],
                ..Default::default()
            },
            retry: crate::es::RetryPolicy {
                initial: Duration::from_millis(1),
                max: Duration::from_millis(5),
            },
            ..Default::default()
        };
        SenderCtx {
            client: EsClient::new(&settings.es, 1).unwrap(),
            dlq,
            metrics: Arc::new(IndexMetrics::new(&["x-netflow".to_string()])),
            settings: Arc::new(settings),
            abandon: Arc::new(AtomicBool::new(false)),
        }
    }

    #[test]
    fn only_failed_items_are_retried() {
        let (url, seen) = server(vec![
            (200, items_response(&[201, 429, 400, 503, 409])),
            (503, "{}".into()),
            (200, items_response(&[201, 429])),
        ]);
        let dlq = Arc::new(MemDlq::default());
        let c = ctx(&url, dlq.clone());
        let b = batch(5);
        assert!(deliver(&c, &b, 1, &mut sender()));
        // which items each request carried: es::deliver's tests; here what the indexer counts
        assert_eq!(seen.lock().unwrap().len(), 4);
        let m = &c.metrics;
        assert_eq!(m.indexed.load(Ordering::Relaxed), 3);
        assert_eq!(m.already_indexed.load(Ordering::Relaxed), 1);
        assert_eq!(m.retried.load(Ordering::Relaxed), 2 + 2 + 1);
        assert_eq!(m.dead_lettered.load(Ordering::Relaxed), 1);
        assert_eq!(m.bulk_requests.load(Ordering::Relaxed), 4);
        assert_eq!(m.bulk_failures.load(Ordering::Relaxed), 1);
        let letters = dlq.0.lock().unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].0, "x-netflow-0-2");
        assert_eq!(letters[0].1, 400);
        assert!(letters[0].2.contains("e400"));
    }

    #[test]
    fn too_large_is_split_and_final_4xx_dead_letters() {
        let (url, seen) = server(vec![
            (413, "too large".into()),
            (200, r#"{"errors":false}"#.into()),
            (400, r#"{"error":"bad request"}"#.into()),
        ]);
        let dlq = Arc::new(MemDlq::default());
        let c = ctx(&url, dlq.clone());
        let b = batch(4);
        assert!(deliver(&c, &b, 1, &mut sender()));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1].lines().count(), 4); // first half
        assert_eq!(seen[2].lines().count(), 4); // second half, rejected as a whole
        assert_eq!(c.metrics.indexed.load(Ordering::Relaxed), 2);
        assert_eq!(dlq.0.lock().unwrap().len(), 2);
    }

    #[test]
    fn abandon_stops_retrying_and_reports_undelivered() {
        let (url, _seen) = server(vec![(503, "{}".into()); 8]);
        let c = ctx(&url, Arc::new(MemDlq::default()));
        c.abandon.store(true, Ordering::Relaxed);
        assert!(!deliver(&c, &batch(2), 1, &mut sender()));
    }
}
