//! Kernel-bypass inputs: AF_PACKET (`TPACKET_V3` ring, classic BPF filter, fanout) and AF_XDP
//! (XDP program redirecting the listen ports to one socket per NIC queue). Each worker thread
//! drains its receivers and hands every datagram, borrowed in place from the ring or UMEM
//! frame, to the same [`Processor`] the UDP path uses; only the receive loop differs.
//!
//! Alongside the bypass receivers the collector keeps ordinary UDP sockets on the listen
//! addresses:
//! - `af_packet`: the kernel stack still sees every packet, so idle sockets with a
//!   drop-everything filter stop it from answering the exporters with ICMP port-unreachable;
//! - `af_xdp`: IP fragments are passed to the kernel by the XDP program, which reassembles
//!   them; worker 0 reads them from these sockets, so nothing is lost.

use std::net::UdpSocket;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroflow_io::afpacket::{self, AfPacketConfig, AfPacketReceiver};
use ferroflow_io::afxdp::{self, AfXdpConfig, XdpMode, XskReceiver};
use ferroflow_io::frame::{BypassError, FrameStats};
use ferroflow_io::udp::{bind_udp, RecvBatch, RecvMode, SocketOptions};
use ferroflow_io::Slab;

use super::worker::{pin, Processor};
use super::{CollectorError, CollectorSettings, Shared, WorkerSpec};
use crate::sink::Sink;

/// Where the collector's packets come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum InputSource {
    /// `SO_REUSEPORT` UDP sockets and `recvmmsg` (the default).
    #[default]
    Udp,
    /// AF_PACKET `TPACKET_V3` on an interface; one fanout member per worker.
    AfPacket {
        /// The interface.
        interface: String,
    },
    /// AF_XDP on an interface: one socket per NIC queue (`queue`: only that one), spread over
    /// the workers.
    AfXdp {
        /// The interface.
        interface: String,
        /// Only this queue; `None`: every receive queue of the interface.
        queue: Option<u32>,
        /// Native or generic XDP (auto: native, else generic).
        mode: XdpMode,
    },
}

impl InputSource {
    /// `udp`, `af_packet` or `af_xdp`.
    pub fn name(&self) -> &'static str {
        match self {
            InputSource::Udp => "udp",
            InputSource::AfPacket { .. } => "af_packet",
            InputSource::AfXdp { .. } => "af_xdp",
        }
    }
}

/// One receiver of a bypass worker.
enum Rx {
    Packet(AfPacketReceiver),
    Xdp(XskReceiver),
}

impl Rx {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Rx::Packet(r) => r.fd(),
            Rx::Xdp(r) => r.fd(),
        }
    }

    fn recv(
        &mut self,
        batch: usize,
        f: impl FnMut(ferroflow_io::udp::RecvMeta, &[u8]),
    ) -> std::io::Result<usize> {
        match self {
            // a block holds many datagrams: one block per call keeps batches small
            Rx::Packet(r) => r.recv(Duration::ZERO, 1, f),
            Rx::Xdp(r) => r.recv(Duration::ZERO, batch as u32, f),
        }
    }

    fn stats(&self) -> FrameStats {
        match self {
            Rx::Packet(r) => r.stats(),
            Rx::Xdp(r) => r.stats(),
        }
    }

    /// Cumulative kernel drops.
    fn kernel_drops(&mut self) -> u64 {
        match self {
            Rx::Packet(r) => r.kernel_stats().map(|k| k.drops).unwrap_or(0),
            Rx::Xdp(r) => r.kernel_stats().map(|k| k.drops()).unwrap_or(0),
        }
    }
}

/// The receivers of one worker, plus the UDP sockets it keeps (and, for af_xdp, reads).
pub(super) struct WorkerInput {
    rx: Vec<Rx>,
    udp: Vec<UdpSocket>,
    read_udp: bool,
}

/// Opened bypass receivers, one [`WorkerInput`] per worker.
pub(super) struct Opened {
    pub workers: Vec<WorkerInput>,
}

fn bypass_err(e: BypassError) -> CollectorError {
    CollectorError::Bypass(e)
}

/// The UDP sockets kept beside the bypass receivers (see the module doc). A listen address
/// already in use is a warning: another collector takes those datagrams.
fn side_sockets(settings: &CollectorSettings, drop_all: bool) -> Vec<UdpSocket> {
    let opts = SocketOptions {
        recv_buffer_bytes: if drop_all {
            None
        } else {
            settings.socket_rcvbuf_bytes
        },
        reuse_port: true,
        reuse_address: false,
        nonblocking: true,
        ..SocketOptions::default()
    };
    let mut v = Vec::new();
    for addr in &settings.listen {
        match bind_udp(*addr, &opts) {
            Ok(s) => {
                if drop_all {
                    if let Err(e) = afpacket::attach_drop_all(&s.socket) {
                        tracing::warn!("{addr}: drop-all filter: {e}");
                        continue;
                    }
                }
                v.push(s.socket);
            }
            Err(e) => tracing::warn!("{e} (kept going: the bypass receiver does not need it)"),
        }
    }
    v
}

/// Opens the receivers for `settings.input` (not `Udp`), for at most `workers` workers.
pub(super) fn open(settings: &CollectorSettings, workers: usize) -> Result<Opened, CollectorError> {
    let workers = workers.max(1);
    if let Some(a) = settings.listen.iter().find(|a| a.port() == 0) {
        return Err(bypass_err(BypassError::new(
            "listen",
            "-",
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{a}: {} needs explicit ports", settings.input.name()),
            ),
        )));
    }
    if settings.split {
        tracing::warn!(
            "{}: split receive/decode is not supported; each worker receives and decodes",
            settings.input.name()
        );
    }
    match &settings.input {
        InputSource::Udp => Ok(Opened {
            workers: Vec::new(),
        }),
        InputSource::AfPacket { interface } => {
            // one fanout group per collector process and interface
            let group = (std::process::id() as u16) ^ 0x5a5a;
            let mut out = Vec::with_capacity(workers);
            for w in 0..workers {
                let mut cfg = AfPacketConfig::new(interface, &settings.listen);
                if let Some(b) = settings.socket_rcvbuf_bytes {
                    cfg.ring_bytes = b;
                }
                cfg.fanout_group = Some(group);
                let r = AfPacketReceiver::open(&cfg).map_err(bypass_err)?;
                out.push(WorkerInput {
                    rx: vec![Rx::Packet(r)],
                    udp: if w == 0 {
                        side_sockets(settings, true)
                    } else {
                        Vec::new()
                    },
                    read_udp: false,
                });
            }
            tracing::info!(
                "af_packet on {interface}: {workers} TPACKET_V3 receivers (fanout hash, defrag), \
                 classic BPF filter for {:?}",
                settings.listen
            );
            Ok(Opened { workers: out })
        }
        InputSource::AfXdp {
            interface,
            queue,
            mode,
        } => {
            let mut cfg = AfXdpConfig::new(interface, &settings.listen);
            cfg.mode = *mode;
            // the UMEM is the socket buffer: as many 4 KiB frames as SO_RCVBUF would hold
            if let Some(b) = settings.socket_rcvbuf_bytes {
                cfg.frames = ((b / 4096) as u32).clamp(4096, 1 << 16).next_power_of_two();
                cfg.rx_ring = cfg.frames;
            }
            if let Some(q) = queue {
                cfg.queues = vec![*q];
            }
            let (receivers, setup) = afxdp::open(&cfg).map_err(bypass_err)?;
            if let Some(e) = &setup.native_error {
                tracing::info!("af_xdp on {interface}: native XDP refused ({e}); using skb mode");
            }
            tracing::info!(
                "af_xdp on {interface}: XDP program ({} insns) attached in {} mode; sockets: {}",
                setup.program_insns,
                setup.attach_mode,
                setup
                    .sockets
                    .iter()
                    .map(|(q, zc)| format!("queue {q} {}", if *zc { "zero-copy" } else { "copy" }))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let n = workers.min(receivers.len()).max(1);
            let mut out: Vec<WorkerInput> = (0..n)
                .map(|_| WorkerInput {
                    rx: Vec::new(),
                    udp: Vec::new(),
                    read_udp: true,
                })
                .collect();
            for (i, r) in receivers.into_iter().enumerate() {
                out[i % n].rx.push(Rx::Xdp(r));
            }
            out[0].udp = side_sockets(settings, false);
            Ok(Opened { workers: out })
        }
    }
}

/// Starts one thread per worker input.
pub(super) fn spawn(
    id: usize,
    spec: WorkerSpec,
    mut input: WorkerInput,
    sink: Box<dyn Sink>,
    settings: Arc<CollectorSettings>,
    shared: Arc<Shared>,
) -> Result<std::thread::JoinHandle<()>, CollectorError> {
    let mut proc = Processor::new(id, sink, &settings, shared.clone());
    let name = settings.input.name();
    std::thread::Builder::new()
        .name(format!("ff-{name}-{id}"))
        .spawn(move || {
            pin(spec.recv_core, "worker");
            let batch = settings.recv_batch.max(1);
            let mut slab = Slab::new(batch, settings.slot_bytes);
            let mut udp_batch = RecvBatch::new(batch);
            let mut drops = 0u64;
            let mut last_drops = Instant::now();
            let mut drain_rounds = 0u32;
            loop {
                let stopping = shared.stop.load(Ordering::Relaxed);
                let mut got = 0usize;
                for r in &mut input.rx {
                    match r.recv(batch, |m, p| proc.datagram(m, p)) {
                        Ok(n) => got += n,
                        Err(e) => return proc.fail(format!("worker {id}: {name} receive: {e}")),
                    }
                }
                if input.read_udp {
                    for s in &input.udp {
                        if let Ok(n) = udp_batch.recv(s, &mut slab, RecvMode::NonBlocking) {
                            for (meta, payload) in udp_batch.datagrams(&slab) {
                                proc.datagram(meta, payload);
                            }
                            got += n;
                        }
                    }
                }
                if last_drops.elapsed() >= Duration::from_secs(1) {
                    last_drops = Instant::now();
                    drops = input.rx.iter_mut().map(|r| r.kernel_drops()).sum();
                }
                if got > 0 {
                    proc.end_batch(got, drops);
                } else if stopping {
                    break; // drained
                } else {
                    let mut fds: Vec<BorrowedFd<'_>> = input.rx.iter().map(|r| r.fd()).collect();
                    if input.read_udp {
                        fds.extend(input.udp.iter().map(|s| s.as_fd()));
                    }
                    if let Err(e) = afpacket::wait_any(&fds, Duration::from_millis(100)) {
                        return proc.fail(format!("worker {id}: poll: {e}"));
                    }
                }
                if stopping {
                    // bounded final drain of what the rings still hold
                    drain_rounds += 1;
                    if drain_rounds > 10_000 {
                        break;
                    }
                }
                proc.tick(false);
            }
            let mut st = FrameStats::default();
            for r in &input.rx {
                st.add(&r.stats());
            }
            let kernel_drops: u64 = input.rx.iter_mut().map(|r| r.kernel_drops()).sum();
            proc.end_batch(0, kernel_drops);
            tracing::info!(
                "{name} worker {id}: frames={} delivered={} not_listened={} not_udp={} fragments={} bad_checksum={} malformed={} kernel_drops={kernel_drops}",
                st.frames,
                st.delivered,
                st.not_listened,
                st.not_udp,
                st.fragments,
                st.bad_checksum,
                st.malformed
            );
            proc.close(settings.close_timeout);
            drop(input);
        })
        .map_err(CollectorError::Spawn)
}
