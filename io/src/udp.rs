//! UDP sockets for the collector's receive path and the traffic generator's send path: one
//! `SO_REUSEPORT` socket per worker and port, drained with batched `recvmmsg` into a
//! caller-owned [`Slab`], and batched `sendmmsg`.
//!
//! Modelled on quinn-udp: the caller owns every buffer (allocated once, at start; nothing here
//! allocates per call), EINTR is retried inside, and optional socket options fail softly: their
//! outcome is reported in [`BoundSocket`] for the caller to log, never an error.
//!
//! ```no_run
//! use ferroflow_io::udp::{bind_udp, RecvBatch, RecvMode, SocketOptions};
//! use ferroflow_io::Slab;
//!
//! let opts = SocketOptions { recv_buffer_bytes: Some(32 << 20), ..SocketOptions::default() };
//! let sock = bind_udp("0.0.0.0:2055".parse().unwrap(), &opts)?;
//! if sock.recv_buffer.is_short() {
//!     eprintln!("SO_RCVBUF capped: asked {:?}, got {}", sock.recv_buffer.requested, sock.recv_buffer.granted);
//! }
//! let mut slab = Slab::new(Slab::DEFAULT_SLOTS, Slab::DEFAULT_SLOT_BYTES);
//! let mut batch = RecvBatch::new(RecvBatch::DEFAULT_CAPACITY);
//! // ... when mio says the socket is readable, drain it:
//! loop {
//!     let n = batch.recv(&sock.socket, &mut slab, RecvMode::NonBlocking)?;
//!     if n == 0 { break; }
//!     for (meta, payload) in batch.datagrams(&slab) {
//!         let _ = (meta.src, meta.ts_ns, payload);
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::slab::Slab;
use crate::sys;

/// How to open a UDP socket. `Default` is what a collector worker wants: `SO_REUSEPORT`,
/// non-blocking, drop counter and kernel timestamps on, kernel-default buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    /// `SO_RCVBUF` to request. If the kernel caps it (`net.core.rmem_max`), `SO_RCVBUFFORCE`
    /// is tried (works with `CAP_NET_ADMIN`), softly. `None`: leave the kernel default.
    pub recv_buffer_bytes: Option<usize>,
    /// `SO_SNDBUF` to request (the generator's sockets), softly. `None`: kernel default.
    pub send_buffer_bytes: Option<usize>,
    /// `SO_REUSEPORT`, so each of N workers binds its own socket to the same port and the
    /// kernel spreads exporters over them (by a hash of the source address; only sockets of
    /// the same user join). A failure to set it is an error.
    pub reuse_port: bool,
    /// `SO_REUSEADDR`. Beware, for UDP on Linux: when two sockets both set it they may bind
    /// the same address and port *without* load balancing; the newest takes the unicast
    /// traffic. `SO_REUSEPORT` alone is what the workers need.
    pub reuse_address: bool,
    /// `O_NONBLOCK`. A blocking socket suits [`RecvMode::WaitForOne`].
    pub nonblocking: bool,
    /// `SO_RCVTIMEO` for a blocking socket: a blocking receive returns `Ok(0)` after this long.
    pub read_timeout: Option<Duration>,
    /// `SO_RXQ_OVFL`: each datagram carries the socket's cumulative drop counter. Soft.
    pub drop_counter: bool,
    /// `SO_TIMESTAMPNS`: each datagram carries the kernel's receive time. Soft.
    pub timestamps: bool,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            recv_buffer_bytes: None,
            send_buffer_bytes: None,
            reuse_port: true,
            reuse_address: true,
            nonblocking: true,
            read_timeout: None,
            drop_counter: true,
            timestamps: true,
        }
    }
}

/// The receive buffer asked for and the one obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvBuffer {
    /// What [`SocketOptions::recv_buffer_bytes`] asked for.
    pub requested: Option<usize>,
    /// What `getsockopt(SO_RCVBUF)` reports afterwards. Linux doubles the value it stores (the
    /// extra half is for its bookkeeping), so an uncapped request reads back as twice itself.
    pub granted: usize,
    /// Whether `SO_RCVBUFFORCE` was used (and succeeded) to go past `net.core.rmem_max`.
    pub forced: bool,
}

impl RecvBuffer {
    /// The kernel gave less than asked (Linux: `granted < 2 * requested`): warn, and suggest
    /// raising `net.core.rmem_max` or granting `CAP_NET_ADMIN`.
    pub fn is_short(&self) -> bool {
        self.requested
            .is_some_and(|r| self.granted < r.saturating_mul(2))
    }
}

/// A bound UDP socket and what the optional settings came to.
#[derive(Debug)]
pub struct BoundSocket {
    /// The socket (register it with mio via `mio::net::UdpSocket::from_std`).
    pub socket: UdpSocket,
    /// The address actually bound (the port is filled in when 0 was asked for).
    pub local_addr: SocketAddr,
    /// Receive buffer requested and granted.
    pub recv_buffer: RecvBuffer,
    /// `SO_SNDBUF` as read back (Linux: doubled, as for the receive buffer).
    pub send_buffer_bytes: usize,
    /// `SO_RXQ_OVFL` is on: [`RecvBatch::rxq_drops`] will report drops.
    pub drop_counter: bool,
    /// `SO_TIMESTAMPNS` is on: [`RecvMeta::ts_ns`] will be set.
    pub timestamps: bool,
}

/// A socket operation that failed, with the address it was for.
#[derive(Debug, thiserror::Error)]
#[error("UDP socket {addr}: {op}: {source}")]
pub struct IoError {
    /// What was being done ("create", "bind", "set SO_REUSEPORT", ...).
    pub op: &'static str,
    /// The address being bound.
    pub addr: SocketAddr,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

impl IoError {
    /// The kind of the underlying OS error (`AddrInUse`, `PermissionDenied`, ...).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

/// Opens a UDP socket bound to `addr`: `SO_REUSEADDR` and `SO_REUSEPORT` (if asked),
/// `IPV6_V6ONLY` for IPv6 addresses, `O_NONBLOCK` (if asked), close-on-exec; then, softly, the
/// buffer sizes, `SO_RXQ_OVFL` and `SO_TIMESTAMPNS`.
pub fn bind_udp(addr: SocketAddr, opts: &SocketOptions) -> Result<BoundSocket, IoError> {
    let err = |op: &'static str| move |source| IoError { op, addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(err("create"))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(err("set IPV6_V6ONLY"))?;
    }
    if opts.reuse_address {
        socket
            .set_reuse_address(true)
            .map_err(err("set SO_REUSEADDR"))?;
    }
    if opts.reuse_port {
        socket
            .set_reuse_port(true)
            .map_err(err("set SO_REUSEPORT"))?;
    }
    socket
        .set_nonblocking(opts.nonblocking)
        .map_err(err("set O_NONBLOCK"))?;
    if let Some(t) = opts.read_timeout {
        socket
            .set_read_timeout(Some(t))
            .map_err(err("set SO_RCVTIMEO"))?;
    }

    let recv_buffer = set_recv_buffer(&socket, opts.recv_buffer_bytes);
    if let Some(bytes) = opts.send_buffer_bytes {
        let _ = socket.set_send_buffer_size(bytes); // soft: read back below
    }
    let send_buffer_bytes = socket.send_buffer_size().unwrap_or(0);
    let drop_counter = opts.drop_counter
        && sys::set_int_opt(socket.as_fd(), libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1).is_ok();
    let timestamps = opts.timestamps
        && sys::set_int_opt(socket.as_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1).is_ok();

    socket.bind(&addr.into()).map_err(err("bind"))?;
    let local_addr = socket
        .local_addr()
        .map_err(err("getsockname"))?
        .as_socket()
        .unwrap_or(addr);
    Ok(BoundSocket {
        socket: socket.into(),
        local_addr,
        recv_buffer,
        send_buffer_bytes,
        drop_counter,
        timestamps,
    })
}

/// Whether another socket already holds `addr`: binds a probe socket *without* `SO_REUSEADDR`
/// and `SO_REUSEPORT` (with `IPV6_V6ONLY` for IPv6, as [`bind_udp`]) and closes it at once.
/// `Ok(true)`: `EADDRINUSE`, someone has the port, possibly in a `SO_REUSEPORT` group that
/// [`bind_udp`] would silently join. Port 0 is never in use. Other bind errors (permission,
/// address not available) are returned: binding for real would fail the same way.
pub fn addr_in_use(addr: SocketAddr) -> Result<bool, IoError> {
    if addr.port() == 0 {
        return Ok(false);
    }
    let err = |op: &'static str| move |source| IoError { op, addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(err("create"))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(err("set IPV6_V6ONLY"))?;
    }
    match socket.bind(&addr.into()) {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(true),
        Err(e) => Err(err("bind")(e)),
    }
}

/// Sets `SO_RCVBUF`; if the kernel capped it, tries `SO_RCVBUFFORCE`. Never fails.
fn set_recv_buffer(socket: &Socket, requested: Option<usize>) -> RecvBuffer {
    let mut forced = false;
    if let Some(bytes) = requested {
        let _ = socket.set_recv_buffer_size(bytes); // soft: the read-back tells the truth
        let granted = socket.recv_buffer_size().unwrap_or(0);
        if granted < bytes.saturating_mul(2) {
            let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
            // Needs CAP_NET_ADMIN; EPERM otherwise, which leaves the capped value in place.
            forced = sys::set_int_opt(
                socket.as_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                value,
            )
            .is_ok();
        }
    }
    RecvBuffer {
        requested,
        granted: socket.recv_buffer_size().unwrap_or(0),
        forced,
    }
}

/// How [`RecvBatch::recv`] waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvMode {
    /// `MSG_DONTWAIT`: take what is queued, return `Ok(0)` at once if nothing is. The
    /// collector's mode: drain a socket mio reported readable until it returns 0.
    NonBlocking,
    /// `MSG_WAITFORONE`: on a blocking socket, wait for the first datagram, then take what
    /// else is queued without waiting. A blocking `recvmmsg` *without* this flag waits until
    /// the whole batch is filled, so a quiet exporter's datagrams sit in the queue (and the
    /// queue overflows) while it waits: never do that. On a non-blocking socket this behaves
    /// like `NonBlocking`. Bound the wait with [`SocketOptions::read_timeout`].
    WaitForOne,
}

/// What the kernel said about one received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMeta {
    /// Bytes written into the slot (at most the slot size).
    pub len: usize,
    /// The sender.
    pub src: SocketAddr,
    /// Kernel receive time, nanoseconds since the Unix epoch (`SO_TIMESTAMPNS`).
    pub ts_ns: Option<u64>,
    /// The datagram was larger than the slot and was cut to `len` bytes (`MSG_TRUNC`).
    pub truncated: bool,
}

const EMPTY_META: RecvMeta = RecvMeta {
    len: 0,
    src: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
    ts_ns: None,
    truncated: false,
};

/// Headers for batched receive with `recvmmsg`, allocated once; datagrams land in a [`Slab`]
/// (datagram `i` in slot `i`). One batch can serve several sockets in turn.
pub struct RecvBatch {
    mmsg: sys::MmsgRecv,
    metas: Box<[RecvMeta]>,
    len: usize,
    rxq_drops: Option<u32>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("capacity", &self.capacity())
            .field("len", &self.len)
            .field("rxq_drops", &self.rxq_drops)
            .finish()
    }
}

impl RecvBatch {
    /// Datagrams per `recvmmsg` call used by the collector.
    pub const DEFAULT_CAPACITY: usize = 64;

    /// Allocates headers, addresses and control-message buffers for `capacity` datagrams.
    pub fn new(capacity: usize) -> RecvBatch {
        RecvBatch {
            mmsg: sys::MmsgRecv::new(capacity),
            metas: vec![EMPTY_META; capacity].into_boxed_slice(),
            len: 0,
            rxq_drops: None,
        }
    }

    /// Most datagrams one call can return.
    pub fn capacity(&self) -> usize {
        self.mmsg.capacity()
    }

    /// Receives up to `min(capacity, slab.slots())` datagrams from `fd` into `slab`, datagram
    /// `i` into slot `i`, and returns how many. `Ok(0)` when nothing is queued (EAGAIN) or the
    /// read timeout passed. EINTR is retried inside. Does not allocate.
    pub fn recv(&mut self, fd: impl AsFd, slab: &mut Slab, mode: RecvMode) -> io::Result<usize> {
        let flags = match mode {
            RecvMode::NonBlocking => libc::MSG_DONTWAIT,
            RecvMode::WaitForOne => libc::MSG_WAITFORONE,
        };
        self.len = 0;
        self.rxq_drops = None;
        let slot_bytes = slab.slot_bytes();
        let r = self.mmsg.recv(
            fd.as_fd(),
            slab.as_mut_bytes(),
            slot_bytes,
            flags,
            &mut self.metas,
        )?;
        self.len = r.n;
        self.rxq_drops = r.rxq_drops;
        Ok(r.n)
    }

    /// Datagrams received by the last [`RecvBatch::recv`].
    pub fn len(&self) -> usize {
        self.len
    }

    /// The last receive got nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Metadata of datagram `i` of the last receive.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn meta(&self, i: usize) -> RecvMeta {
        self.metas()[i]
    }

    /// Metadata of every datagram of the last receive.
    pub fn metas(&self) -> &[RecvMeta] {
        &self.metas[..self.len]
    }

    /// The datagrams of the last receive, as (metadata, payload in `slab`). `slab` must be the
    /// one passed to that receive.
    pub fn datagrams<'s>(
        &'s self,
        slab: &'s Slab,
    ) -> impl Iterator<Item = (RecvMeta, &'s [u8])> + 's {
        self.metas()
            .iter()
            .enumerate()
            .map(move |(i, m)| (*m, &slab.slot(i)[..m.len]))
    }

    /// The socket's cumulative drop counter (`SO_RXQ_OVFL`) as carried by the newest datagram
    /// of the last receive that had one. The kernel attaches it only once the socket has
    /// dropped something, so `None` also means "no drops yet". It is per socket and wraps
    /// at 2^32: keep the last value per socket and add `new.wrapping_sub(old)`.
    pub fn rxq_drops(&self) -> Option<u32> {
        self.rxq_drops
    }
}

/// One datagram to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// Where to.
    pub dst: SocketAddr,
    /// What.
    pub payload: &'a [u8],
}

/// Headers for batched send with `sendmmsg`, allocated once. Each call sends from one socket;
/// a generator spreading load over many sockets calls [`SendBatch::send`] once per socket in
/// turn with the same batch.
pub struct SendBatch {
    mmsg: sys::MmsgSend,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl SendBatch {
    /// Allocates headers and addresses for `capacity` datagrams per call.
    pub fn new(capacity: usize) -> SendBatch {
        SendBatch {
            mmsg: sys::MmsgSend::new(capacity),
        }
    }

    /// Most datagrams one call sends.
    pub fn capacity(&self) -> usize {
        self.mmsg.capacity()
    }

    /// Sends the first `min(capacity, msgs.len())` datagrams from `fd`, each to its own
    /// destination, and returns how many the kernel took (possibly fewer: send the rest
    /// again). `Ok(0)` when the socket buffer is full (EAGAIN). EINTR is retried inside.
    pub fn send(&mut self, fd: impl AsFd, msgs: &[Transmit<'_>]) -> io::Result<usize> {
        self.mmsg.send(fd.as_fd(), msgs)
    }
}

#[cfg(test)]
mod tests;
