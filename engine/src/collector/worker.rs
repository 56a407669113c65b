//! Worker threads: receive (mio + recvmmsg into a slab allocated once), decode in place,
//! encode into a reused buffer, hand to the sink. Counters are plain locals, published once
//! per batch (packets) or once a second (the rest).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver as ChanRx, Sender as ChanTx, TrySendError};
use ferroflow_codecs::{json, DecodeError, Decoder};
use ferroflow_io::udp::{BoundSocket, RecvBatch, RecvMeta, RecvMode};
use ferroflow_io::Slab;
use hdrhistogram::Histogram;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::{CollectorError, CollectorSettings, FullPolicy, Shared, WorkerSpec};
use crate::metrics::{new_histogram, ExporterCounters};
use crate::sink::Sink;
use crate::template_store::StoreSnapshot;

/// Most exporters tracked with their own counters per worker; beyond, they are summed under
/// the unspecified address.
const MAX_EXPORTER_COUNTERS: usize = 4096;

pub(super) fn pin(core: Option<usize>, what: &str) {
    if let Some(c) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
            tracing::warn!("could not pin {what} to core {c}");
        }
    }
}

pub(super) fn spawn(
    id: usize,
    spec: WorkerSpec,
    sockets: Vec<BoundSocket>,
    sink: Box<dyn Sink>,
    settings: Arc<CollectorSettings>,
    shared: Arc<Shared>,
) -> Result<Vec<std::thread::JoinHandle<()>>, CollectorError> {
    let sockets: Vec<UdpSocket> = sockets.into_iter().map(|s| s.socket).collect();
    let mut proc = Processor::new(id, sink, &settings, shared.clone());
    if !settings.split {
        let h = std::thread::Builder::new()
            .name(format!("ff-worker-{id}"))
            .spawn(move || {
                pin(spec.recv_core, "worker");
                let mut rx = match Receiver::new(sockets, settings.recv_batch) {
                    Ok(r) => r,
                    Err(e) => return proc.fail(format!("worker {id}: poll: {e}")),
                };
                let mut slab = Slab::new(settings.recv_batch, settings.slot_bytes);
                let coalesce = settings.recv_coalesce;
                loop {
                    let stopping = shared.stop.load(Ordering::Relaxed);
                    if !stopping {
                        if let Err(e) = rx.wait(Duration::from_millis(100)) {
                            return proc.fail(format!("worker {id}: poll: {e}"));
                        }
                    } else {
                        rx.mark_all_ready(); // final drain of what the kernel holds
                    }
                    let mut got = false;
                    while let Some(n) = rx.next_batch(&mut slab) {
                        got = true;
                        for (meta, payload) in rx.batch.datagrams(&slab) {
                            proc.datagram(meta, payload);
                        }
                        proc.end_batch(n, rx.drops());
                    }
                    proc.tick(false);
                    if stopping {
                        break;
                    }
                    rx.coalesce(got, coalesce);
                }
                proc.close(settings.close_timeout);
            })
            .map_err(CollectorError::Spawn)?;
        return Ok(vec![h]);
    }

    // split: receive thread -> ring of batches -> decode thread; empty batches come back
    let cap = settings.ring_capacity.max(1);
    let (full_tx, full_rx): (ChanTx<Box<Batch>>, ChanRx<Box<Batch>>) = bounded(cap);
    let (free_tx, free_rx): (ChanTx<Box<Batch>>, ChanRx<Box<Batch>>) = bounded(cap + 2);
    for _ in 0..cap + 2 {
        let _ = free_tx.send(Box::new(Batch {
            slab: Slab::new(settings.recv_batch, settings.slot_bytes),
            metas: Vec::with_capacity(settings.recv_batch),
        }));
    }
    let recv_settings = settings.clone();
    let recv_shared = shared.clone();
    let policy = settings.ring_full;
    let recv = std::thread::Builder::new()
        .name(format!("ff-recv-{id}"))
        .spawn(move || {
            pin(spec.recv_core, "receive thread");
            let metrics = &recv_shared.metrics.workers[id];
            let mut rx = match Receiver::new(sockets, recv_settings.recv_batch) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("worker {id}: poll: {e}");
                    return;
                }
            };
            // a spare batch receives when the ring is full and the policy drops
            let mut spare: Option<Box<Batch>> = None;
            let coalesce = recv_settings.recv_coalesce;
            loop {
                let mut got = false;
                let stopping = recv_shared.stop.load(Ordering::Relaxed);
                if !stopping {
                    if let Err(e) = rx.wait(Duration::from_millis(100)) {
                        tracing::error!("worker {id}: poll: {e}");
                        return;
                    }
                } else {
                    rx.mark_all_ready();
                }
                loop {
                    let mut b = match spare.take() {
                        Some(b) => b,
                        None => match free_rx.recv() {
                            Ok(b) => b,
                            Err(_) => return,
                        },
                    };
                    let Some(n) = rx.next_batch(&mut b.slab) else {
                        spare = Some(b);
                        break;
                    };
                    got = true;
                    b.metas.clear();
                    b.metas.extend_from_slice(rx.batch.metas());
                    metrics.socket_drops.store(rx.drops(), Ordering::Relaxed);
                    match policy {
                        FullPolicy::Block => {
                            if full_tx.send(b).is_err() {
                                return;
                            }
                        }
                        FullPolicy::Drop => match full_tx.try_send(b) {
                            Ok(()) => {}
                            Err(TrySendError::Full(b)) => {
                                metrics.ring_drops.fetch_add(n as u64, Ordering::Relaxed);
                                spare = Some(b);
                            }
                            Err(TrySendError::Disconnected(_)) => return,
                        },
                    }
                }
                if stopping {
                    break; // dropping full_tx lets the decoder drain and finish
                }
                rx.coalesce(got, coalesce);
            }
        })
        .map_err(CollectorError::Spawn)?;
    let dec = std::thread::Builder::new()
        .name(format!("ff-decode-{id}"))
        .spawn(move || {
            pin(spec.decode_core, "decode thread");
            loop {
                match full_rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(b) => {
                        for (i, meta) in b.metas.iter().enumerate() {
                            let len = meta.len.min(b.slab.slot_bytes());
                            proc.datagram(*meta, &b.slab.slot(i)[..len]);
                        }
                        proc.end_batch(b.metas.len(), u64::MAX);
                        let _ = free_tx.send(b);
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
                proc.tick(false);
            }
            proc.close(settings.close_timeout);
        })
        .map_err(CollectorError::Spawn)?;
    Ok(vec![recv, dec])
}

/// A batch handed from the receive thread to the decode thread.
struct Batch {
    slab: Slab,
    metas: Vec<RecvMeta>,
}

/// The sockets of one worker, their readiness and the recvmmsg state.
struct Receiver {
    sockets: Vec<UdpSocket>,
    poll: Poll,
    events: Events,
    ready: Vec<bool>,
    next: usize,
    batch: RecvBatch,
    last_drops: Vec<u64>,
}

impl Receiver {
    fn new(sockets: Vec<UdpSocket>, batch: usize) -> std::io::Result<Self> {
        let poll = Poll::new()?;
        for (i, s) in sockets.iter().enumerate() {
            poll.registry().register(
                &mut SourceFd(&s.as_raw_fd()),
                Token(i),
                Interest::READABLE,
            )?;
        }
        let n = sockets.len();
        Ok(Receiver {
            sockets,
            poll,
            events: Events::with_capacity(64),
            // edge-triggered: start by draining everything once
            ready: vec![true; n],
            next: 0,
            batch: RecvBatch::new(batch),
            last_drops: vec![0; n],
        })
    }

    fn wait(&mut self, timeout: Duration) -> std::io::Result<()> {
        if self.ready.iter().any(|&r| r) {
            return Ok(());
        }
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        for ev in self.events.iter() {
            if let Some(r) = self.ready.get_mut(ev.token().0) {
                *r = true;
            }
        }
        Ok(())
    }

    fn mark_all_ready(&mut self) {
        self.ready.iter_mut().for_each(|r| *r = true);
    }

    /// After the sockets were emptied: when this round received something and coalescing
    /// is on, sleep `coalesce` and mark every socket ready, so that the next round reads
    /// what gathered meanwhile in full batches without an epoll wakeup per datagram; a
    /// round that finds nothing goes back to waiting in epoll. (Edge-triggered epoll loses
    /// nothing by this: an event that arrived meanwhile only causes one empty read later.)
    fn coalesce(&mut self, got: bool, coalesce: Duration) {
        if got && !coalesce.is_zero() {
            std::thread::sleep(coalesce);
            self.mark_all_ready();
        }
    }

    /// Receive one batch from the next ready socket (round robin); `None` when no socket has
    /// anything left.
    fn next_batch(&mut self, slab: &mut Slab) -> Option<usize> {
        let n = self.sockets.len();
        for _ in 0..n {
            let i = self.next;
            self.next = (self.next + 1) % n;
            if !self.ready[i] {
                continue;
            }
            match self
                .batch
                .recv(&self.sockets[i], slab, RecvMode::NonBlocking)
            {
                Ok(0) => self.ready[i] = false,
                Ok(k) => {
                    if let Some(d) = self.batch.rxq_drops() {
                        self.last_drops[i] = u64::from(d);
                    }
                    // fewer than asked: the kernel found the queue empty, so the next read
                    // would only return EAGAIN. Not ready until epoll (edge-triggered: every
                    // datagram queued from now on raises a new event) or coalescing says so.
                    if k < self.batch.capacity().min(slab.slots()) {
                        self.ready[i] = false;
                    }
                    return Some(k);
                }
                Err(e) => {
                    tracing::warn!("recvmmsg: {e}");
                    self.ready[i] = false;
                }
            }
        }
        None
    }

    /// Kernel drops on this worker's sockets (SO_RXQ_OVFL, cumulative).
    fn drops(&self) -> u64 {
        self.last_drops.iter().sum()
    }
}

/// Decode + encode + sink, with the worker's counters (shared by the UDP and bypass loops).
pub(super) struct Processor {
    id: usize,
    decoder: Decoder,
    sink: Box<dyn Sink>,
    buf: Vec<u8>,
    encode: json::EncodeOptions,
    settings: Arc<CollectorSettings>,
    shared: Arc<Shared>,
    exporters: HashMap<SocketAddr, ExporterCounters>,
    packets: u64,
    bytes: u64,
    batches: u64,
    not_allowed: u64,
    sink_error: Option<String>,
    last_tick: Instant,
    last_snapshot: Instant,
    hist: Histogram<u64>,
    /// Decode errors since the last log line: the first one (with its exporter), how many in
    /// all, since when. Logged once a second at most, from `tick`, never per datagram.
    error_first: Option<(DecodeError, SocketAddr)>,
    error_count: u64,
    error_since: Instant,
}

pub(crate) fn now_ns() -> u64 {
    crate::now_ns()
}

impl Processor {
    pub(super) fn new(
        id: usize,
        sink: Box<dyn Sink>,
        settings: &Arc<CollectorSettings>,
        shared: Arc<Shared>,
    ) -> Self {
        let mut decoder = Decoder::new(settings.decoder.clone());
        if let Some(store) = &shared.initial_store {
            let n = store.import_into(&mut decoder, now_ns());
            tracing::debug!("worker {id}: {n} templates loaded from the store");
        }
        Processor {
            id,
            decoder,
            sink,
            buf: Vec::with_capacity(64 * 1024),
            encode: settings.encode,
            settings: settings.clone(),
            shared,
            exporters: HashMap::new(),
            packets: 0,
            bytes: 0,
            batches: 0,
            not_allowed: 0,
            sink_error: None,
            last_tick: Instant::now(),
            last_snapshot: Instant::now(),
            hist: new_histogram(),
            error_first: None,
            error_count: 0,
            error_since: Instant::now(),
        }
    }

    pub(super) fn fail(mut self, msg: String) {
        tracing::error!("{msg}");
        self.shared.metrics.worker_error(self.id, msg);
        self.close(Duration::from_secs(1));
    }

    #[inline]
    pub(super) fn datagram(&mut self, meta: RecvMeta, payload: &[u8]) {
        self.packets += 1;
        self.bytes += payload.len() as u64;
        if let Some(allow) = &self.settings.allow {
            if !allow(meta.src.ip()) {
                self.not_allowed += 1;
                return;
            }
        }
        let recv_ns = meta.ts_ns.unwrap_or_else(now_ns);
        let s = self.decoder.stats();
        let before = (
            s.records_total() + s.counter_samples,
            s.errors_total(),
            s.template_misses,
            s.sequence_gaps,
        );
        let (sink, buf, opts, err) = (
            &mut self.sink,
            &mut self.buf,
            &self.encode,
            &mut self.sink_error,
        );
        let r = self.decoder.decode(meta.src, recv_ns, payload, &mut |rec| {
            buf.clear();
            json::encode(rec, opts, buf);
            if let Err(e) = sink.write(rec, buf, recv_ns) {
                if err.is_none() {
                    *err = Some(e.to_string());
                }
            }
        });
        let errors = self.decoder.stats().errors_total() - before.1;
        if errors > 0 {
            self.note_decode_errors(r.err(), meta.src, errors);
        }
        let s = self.decoder.stats();
        let key = if self.exporters.len() < MAX_EXPORTER_COUNTERS
            || self.exporters.contains_key(&meta.src)
        {
            meta.src
        } else {
            SocketAddr::from(([0, 0, 0, 0], 0))
        };
        let e = self.exporters.entry(key).or_default();
        e.packets += 1;
        e.bytes += payload.len() as u64;
        e.records += s.records_total() + s.counter_samples - before.0;
        e.decode_errors += s.errors_total() - before.1;
        e.template_misses += s.template_misses - before.2;
        e.sequence_gaps += s.sequence_gaps - before.3;
    }

    /// Keep the first decode error of the interval for the log (copies; no allocation).
    #[cold]
    #[inline(never)]
    fn note_decode_errors(&mut self, returned: Option<DecodeError>, src: SocketAddr, n: u64) {
        self.error_count += n;
        if self.error_first.is_none() {
            // a bad header is returned; an error inside a set or sample is only counted, and
            // the stats keep the newest
            if let Some(e) = returned.or_else(|| self.decoder.stats().last_error()) {
                self.error_first = Some((e, src));
            }
        }
    }

    /// One line for the decode errors since the last one (at most one a second per worker):
    /// the first error's kind, offset and exporter, and how many there were in all.
    fn log_decode_errors(&mut self) {
        if self.error_count > 0 {
            let secs = self.error_since.elapsed().as_secs_f64();
            match self.error_first {
                Some((e, src)) => tracing::warn!(
                    worker = self.id,
                    exporter = %src,
                    kind = %e.kind().as_str(),
                    offset = e.offset(),
                    errors = self.error_count,
                    "decode error from {src}: {e} ({} in the last {secs:.1} s on this worker, the first logged)",
                    self.error_count
                ),
                None => tracing::warn!(
                    worker = self.id,
                    errors = self.error_count,
                    "{} decode errors in the last {secs:.1} s on this worker",
                    self.error_count
                ),
            }
        }
        self.error_first = None;
        self.error_count = 0;
        self.error_since = Instant::now();
    }

    pub(super) fn end_batch(&mut self, _n: usize, socket_drops: u64) {
        self.batches += 1;
        if let Err(e) = self.sink.flush_batch() {
            if self.sink_error.is_none() {
                self.sink_error = Some(e.to_string());
            }
        }
        let m = &self.shared.metrics.workers[self.id];
        m.packets.store(self.packets, Ordering::Relaxed);
        m.bytes.store(self.bytes, Ordering::Relaxed);
        m.batches.store(self.batches, Ordering::Relaxed);
        if socket_drops != u64::MAX {
            m.socket_drops.store(socket_drops, Ordering::Relaxed);
        }
        if self.last_tick.elapsed() >= Duration::from_secs(1) {
            self.tick(true);
        }
    }

    /// Once a second (or when forced): expiry, sink housekeeping, publishing.
    pub(super) fn tick(&mut self, force: bool) {
        if !force && self.last_tick.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_tick = Instant::now();
        self.log_decode_errors();
        self.decoder.expire(now_ns());
        self.sink.tick();
        self.publish();
        if self.settings.template_store.is_some()
            && self.last_snapshot.elapsed() >= self.settings.template_store_interval
        {
            self.snapshot();
        }
        if let Some(e) = self.sink_error.take() {
            tracing::error!("worker {}: sink: {e}", self.id);
            self.shared
                .metrics
                .worker_error(self.id, format!("worker {}: sink: {e}", self.id));
        }
    }

    fn snapshot(&mut self) {
        self.last_snapshot = Instant::now();
        let snap = StoreSnapshot::from_decoder(&self.decoder);
        if let Some(slot) = self
            .shared
            .snapshots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(self.id)
        {
            *slot = Some(snap);
        }
    }

    fn publish(&mut self) {
        let m = &self.shared.metrics.workers[self.id];
        m.packets.store(self.packets, Ordering::Relaxed);
        m.bytes.store(self.bytes, Ordering::Relaxed);
        m.not_allowed.store(self.not_allowed, Ordering::Relaxed);
        m.held_pending
            .store(self.decoder.held_sets_pending() as u64, Ordering::Relaxed);
        *m.decode.lock().unwrap_or_else(|p| p.into_inner()) = self.decoder.stats().clone();
        *m.sink.lock().unwrap_or_else(|p| p.into_inner()) = self.sink.counters();
        {
            let mut e = m.exporters.lock().unwrap_or_else(|p| p.into_inner());
            e.clone_from(&self.exporters);
        }
        let hist = &mut self.hist;
        self.sink.drain_latencies(&mut |ns| {
            let _ = hist.record(ns.clamp(1_000, 3_600_000_000_000));
        });
        if !self.hist.is_empty() {
            let _ = m
                .latency
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .add(&self.hist);
            self.hist.reset();
        }
    }

    pub(super) fn close(&mut self, timeout: Duration) {
        if let Err(e) = self.sink.flush_batch() {
            self.sink_error.get_or_insert(e.to_string());
        }
        if let Err(e) = self.sink.close(timeout) {
            self.sink_error.get_or_insert(e.to_string());
        }
        if self.settings.template_store.is_some() {
            self.snapshot();
        }
        self.publish();
        self.log_decode_errors();
        if let Some(e) = self.sink_error.take() {
            tracing::error!("worker {}: sink: {e}", self.id);
            self.shared
                .metrics
                .worker_error(self.id, format!("worker {}: sink: {e}", self.id));
        }
    }
}
