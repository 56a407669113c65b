//! `ferroflow collect`: pinned workers receive UDP batches with `recvmmsg`, decode in place,
//! encode JSON into a reused buffer and hand documents to their own sink.
//!
//! Two layouts:
//! - combined (default): each worker thread receives and decodes;
//! - split: per worker a receive thread and a decode thread joined by a bounded ring of
//!   batches (crossbeam); a full ring blocks or drops by policy, and drops are counted.
//!
//! Shutdown (the `stop` flag, set by SIGTERM/SIGINT): receivers drain what the kernel still
//! holds for them, decoders drain the rings, sinks deliver, the template store is saved.

mod bypass;
mod config;
mod worker;

pub use bypass::InputSource;
pub use config::decoder_config;
pub use ferroflow_io::afxdp::XdpMode;
pub use ferroflow_tuning::FullPolicy;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferroflow_codecs::json::EncodeOptions;
use ferroflow_codecs::DecoderConfig;
use ferroflow_io::udp::{addr_in_use, bind_udp, BoundSocket, SocketOptions};

use crate::metrics::Metrics;
use crate::sink::{SinkError, SinkFactory};
use crate::template_store::{self, StoreSnapshot};

/// One worker: its cores (`None`: not pinned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSpec {
    pub recv_core: Option<usize>,
    /// Split layout only: the decode thread's core.
    pub decode_core: Option<usize>,
}

/// Decides whether a datagram's source may be decoded (the exporter allow-list).
pub type AllowFn = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// Resolved runtime settings of the collector: [`CollectorSettings::from_config`] builds them
/// from the configuration (the file, the environment and the command line) and the core plan.
#[derive(Clone)]
pub struct CollectorSettings {
    pub listen: Vec<SocketAddr>,
    pub workers: Vec<WorkerSpec>,
    /// Separate receive and decode threads per worker.
    pub split: bool,
    pub ring_capacity: usize,
    /// What a full receive->decode ring does: `Block` waits for the decoder (the kernel socket
    /// buffer absorbs the burst, then drops and counts in SO_RXQ_OVFL); `Drop` drops the batch
    /// and counts its datagrams.
    pub ring_full: FullPolicy,
    /// Datagrams per recvmmsg.
    pub recv_batch: usize,
    /// While traffic flows, a worker that has emptied its sockets sleeps this long and then
    /// reads again, instead of waiting in epoll for the next datagram: at rates below what it
    /// can take, this gathers datagrams into fuller recvmmsg batches (fewer wakeups and
    /// syscalls per datagram) at the price of up to this much added latency. It goes back
    /// to epoll as soon as a read finds nothing. Zero: always wait in epoll.
    pub recv_coalesce: Duration,
    /// Largest datagram kept whole (bigger ones are truncated and counted as errors).
    pub slot_bytes: usize,
    pub socket_rcvbuf_bytes: Option<usize>,
    pub decoder: DecoderConfig,
    pub encode: EncodeOptions,
    pub template_store: Option<PathBuf>,
    pub template_store_interval: Duration,
    pub allow: Option<AllowFn>,
    /// How long sinks may take to deliver at shutdown.
    pub close_timeout: Duration,
    /// Where packets come from (UDP sockets by default; AF_PACKET or AF_XDP on an interface).
    pub input: InputSource,
    /// Start even when another socket already holds a listen port (another collector): the
    /// workers then join its `SO_REUSEPORT` group and the kernel splits exporters between the
    /// two. `false` (default): refuse with [`CollectorError::PortInUse`].
    pub allow_shared_port: bool,
}

impl Default for CollectorSettings {
    fn default() -> Self {
        CollectorSettings {
            listen: vec![
                "0.0.0.0:2055".parse().expect("valid"),
                "0.0.0.0:4739".parse().expect("valid"),
                "0.0.0.0:6343".parse().expect("valid"),
            ],
            workers: vec![WorkerSpec {
                recv_core: None,
                decode_core: None,
            }],
            split: false,
            ring_capacity: 1024,
            ring_full: FullPolicy::Block,
            recv_batch: 64,
            recv_coalesce: Duration::ZERO,
            slot_bytes: 9216,
            socket_rcvbuf_bytes: Some(32 << 20),
            decoder: DecoderConfig::default(),
            encode: EncodeOptions::default(),
            template_store: None,
            template_store_interval: Duration::from_secs(30),
            allow: None,
            close_timeout: Duration::from_secs(30),
            input: InputSource::Udp,
            allow_shared_port: false,
        }
    }
}

impl std::fmt::Debug for CollectorSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectorSettings")
            .field("listen", &self.listen)
            .field("workers", &self.workers)
            .field("split", &self.split)
            .field("ring_capacity", &self.ring_capacity)
            .field("ring_full", &self.ring_full)
            .field("recv_batch", &self.recv_batch)
            .field("recv_coalesce", &self.recv_coalesce)
            .field("allow", &self.allow.is_some())
            .field("input", &self.input)
            .field("allow_shared_port", &self.allow_shared_port)
            .finish_non_exhaustive()
    }
}

/// Errors that stop the collector from starting or finishing cleanly.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error(transparent)]
    Bind(#[from] ferroflow_io::udp::IoError),
    #[error(
        "UDP {addr} is already in use by another socket (another `ferroflow collect`?); refusing \
         to share it through SO_REUSEPORT, which would split exporters between the two. Stop \
         the other one, or set collector.allow_shared_port = true to share on purpose"
    )]
    PortInUse { addr: SocketAddr },
    #[error("sink: {0}")]
    Sink(#[from] SinkError),
    #[error("template store {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("spawning worker thread: {0}")]
    Spawn(std::io::Error),
    #[error("a worker thread panicked")]
    WorkerPanicked,
    #[error("no listen address")]
    NoListen,
    #[error("collector.input af_packet / af_xdp needs collector.interface")]
    NoInterface,
    #[error(transparent)]
    Bypass(#[from] ferroflow_io::frame::BypassError),
}

/// What a run did, for the exit summary.
#[derive(Debug, Default, Clone)]
pub struct RunReport {
    pub packets: u64,
    pub decode: ferroflow_codecs::DecodeStats,
    pub sink: crate::sink::SinkCounters,
    pub socket_drops: u64,
    pub ring_drops: u64,
    pub not_allowed: u64,
    pub templates_saved: usize,
    /// Errors the workers hit (`ferroflow_worker_errors_total`), and the last of them.
    pub worker_errors: u64,
    pub last_error: Option<String>,
    /// Every worker thread ended on its own (an error), before a stop was asked for.
    pub workers_failed: bool,
}

/// Startup facts to log (bound addresses, buffer sizes).
#[derive(Debug, Clone)]
pub struct BoundInfo {
    pub worker: usize,
    pub addr: SocketAddr,
    pub rcvbuf_requested: Option<usize>,
    pub rcvbuf_granted: usize,
    pub rcvbuf_short: bool,
}

/// A running collector.
pub struct Collector {
    settings: Arc<CollectorSettings>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    factory: Arc<dyn SinkFactory>,
    snapshots: Arc<Mutex<Vec<Option<StoreSnapshot>>>>,
    pub bound: Vec<BoundInfo>,
    /// Every worker thread ended before `stop` was set.
    workers_failed: bool,
}

pub(crate) struct Shared {
    pub metrics: Arc<Metrics>,
    pub stop: Arc<AtomicBool>,
    pub snapshots: Arc<Mutex<Vec<Option<StoreSnapshot>>>>,
    pub initial_store: Option<Arc<StoreSnapshot>>,
}

impl Collector {
    /// Bind every worker's sockets, create the sinks, load the template store and start the
    /// threads. Errors here (address in use, output not writable) stop the start.
    pub fn start(
        settings: CollectorSettings,
        factory: Arc<dyn SinkFactory>,
        stop: Arc<AtomicBool>,
    ) -> Result<Collector, CollectorError> {
        if settings.listen.is_empty() {
            return Err(CollectorError::NoListen);
        }
        let settings = Arc::new(settings);
        let mut n = settings.workers.len().max(1);
        let mut bypass_inputs = Vec::new();
        if settings.input != InputSource::Udp {
            bypass_inputs = bypass::open(&settings, n)?.workers;
            n = bypass_inputs.len().max(1);
        }
        let metrics = Arc::new(Metrics::new(n));
        let opts = SocketOptions {
            recv_buffer_bytes: settings.socket_rcvbuf_bytes,
            reuse_port: true,
            reuse_address: false,
            nonblocking: true,
            ..SocketOptions::default()
        };
        if bypass_inputs.is_empty() {
            // SO_REUSEPORT would let the workers join a group another process holds, silently
            for addr in &settings.listen {
                if addr_in_use(*addr)? {
                    if !settings.allow_shared_port {
                        return Err(CollectorError::PortInUse { addr: *addr });
                    }
                    tracing::warn!(
                        "UDP {addr} is shared with another socket (collector.allow_shared_port = true): the kernel splits exporters between them"
                    );
                }
            }
        }
        let mut bound = Vec::new();
        let mut sockets: Vec<Vec<BoundSocket>> = Vec::new();
        for w in 0..if bypass_inputs.is_empty() { n } else { 0 } {
            let mut mine = Vec::new();
            for (i, addr) in settings.listen.iter().enumerate() {
                // port 0: every worker must share the port the first one got
                let addr = match sockets.first().and_then(|s: &Vec<BoundSocket>| s.get(i)) {
                    Some(first) if addr.port() == 0 => first.local_addr,
                    _ => *addr,
                };
                let s = bind_udp(addr, &opts)?;
                bound.push(BoundInfo {
                    worker: w,
                    addr: s.local_addr,
                    rcvbuf_requested: s.recv_buffer.requested,
                    rcvbuf_granted: s.recv_buffer.granted,
                    rcvbuf_short: s.recv_buffer.is_short(),
                });
                mine.push(s);
            }
            sockets.push(mine);
        }
        let initial_store = match &settings.template_store {
            Some(p) => template_store::load(p)
                .map_err(|e| CollectorError::Store {
                    path: p.clone(),
                    source: e,
                })?
                .map(Arc::new),
            None => None,
        };
        let snapshots = Arc::new(Mutex::new(vec![None; n]));
        let shared = Arc::new(Shared {
            metrics: metrics.clone(),
            stop: stop.clone(),
            snapshots: snapshots.clone(),
            initial_store,
        });
        let mut threads = Vec::new();
        for (w, input) in bypass_inputs.into_iter().enumerate() {
            let sink = factory.make(w, n)?;
            let spec = settings.workers.get(w).copied().unwrap_or(WorkerSpec {
                recv_core: None,
                decode_core: None,
            });
            threads.push(bypass::spawn(
                w,
                spec,
                input,
                sink,
                settings.clone(),
                shared.clone(),
            )?);
        }
        for (w, socks) in sockets.into_iter().enumerate() {
            let sink = factory.make(w, n)?;
            let spec = settings.workers.get(w).copied().unwrap_or(WorkerSpec {
                recv_core: None,
                decode_core: None,
            });
            threads.extend(worker::spawn(
                w,
                spec,
                socks,
                sink,
                settings.clone(),
                shared.clone(),
            )?);
        }
        metrics.ready.store(true, Ordering::Relaxed);
        Ok(Collector {
            settings,
            metrics,
            stop,
            threads,
            factory,
            snapshots,
            bound,
            workers_failed: false,
        })
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The most recent error a worker hit (a sink failure, a receive error that stopped it);
    /// they are counted in `ferroflow_worker_errors_total`.
    pub fn last_error(&self) -> Option<String> {
        self.metrics.last_error()
    }

    fn save_store(&self) -> Result<usize, CollectorError> {
        let Some(path) = &self.settings.template_store else {
            return Ok(0);
        };
        let snaps = self
            .snapshots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let merged = template_store::merge(snaps.iter().flatten());
        let n = merged.templates.len();
        template_store::save(path, &merged).map_err(|e| CollectorError::Store {
            path: path.clone(),
            source: e,
        })?;
        Ok(n)
    }

    /// Run until `stop` is set, saving the template store periodically; then shut down in
    /// order and report.
    pub fn run_until_stopped(mut self) -> Result<RunReport, CollectorError> {
        let mut last_save = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            if self.threads.iter().all(|t| t.is_finished()) {
                // every worker died: nothing left to do
                self.workers_failed = !self.stop.load(Ordering::Relaxed);
                break;
            }
            if last_save.elapsed() >= self.settings.template_store_interval {
                last_save = Instant::now();
                if let Err(e) = self.save_store() {
                    tracing::warn!("{e}");
                }
            }
        }
        self.shutdown()
    }

    /// Stop: the workers drain and deliver, then the shared outputs are finished.
    pub fn shutdown(&mut self) -> Result<RunReport, CollectorError> {
        self.stop.store(true, Ordering::Relaxed);
        self.metrics.stopping.store(true, Ordering::Relaxed);
        let mut panicked = false;
        for t in self.threads.drain(..) {
            panicked |= t.join().is_err();
        }
        self.factory.finish()?;
        let templates_saved = self.save_store()?;
        if panicked {
            return Err(CollectorError::WorkerPanicked);
        }
        let m = &self.metrics;
        Ok(RunReport {
            packets: m.packets_total(),
            decode: m.decode_totals(),
            sink: m.sink_totals(),
            socket_drops: m
                .workers
                .iter()
                .map(|w| w.socket_drops.load(Ordering::Relaxed))
                .sum(),
            ring_drops: m
                .workers
                .iter()
                .map(|w| w.ring_drops.load(Ordering::Relaxed))
                .sum(),
            not_allowed: m
                .workers
                .iter()
                .map(|w| w.not_allowed.load(Ordering::Relaxed))
                .sum(),
            templates_saved,
            worker_errors: m.worker_errors_total(),
            last_error: m.last_error(),
            workers_failed: self.workers_failed,
        })
    }
}
