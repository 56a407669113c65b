//! The crate's only `unsafe`: `recvmmsg` / `sendmmsg` batches, control messages, socket
//! options socket2 does not offer, and sockaddr conversions. Linux only.
//!
//! Every `unsafe` block carries a `// SAFETY:` comment (enforced by clippy below).
#![warn(clippy::undocumented_unsafe_blocks)]

use std::io;
use std::mem::{self, size_of};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr;

use libc::{c_int, c_uint, c_void, sockaddr_in, sockaddr_in6, sockaddr_storage, socklen_t};

use crate::udp::{RecvMeta, Transmit};

pub(crate) mod bpf;
pub(crate) mod packet;
pub(crate) mod xdp;

/// Times a call interrupted by a signal is retried before `Interrupted` is returned; keeps
/// every loop bounded while making EINTR invisible in practice.
const MAX_EINTR_RETRIES: usize = 64;

/// Control-message room per datagram: `SCM_TIMESTAMPNS` (CMSG_SPACE(16) = 32) plus
/// `SO_RXQ_OVFL` (CMSG_SPACE(4) = 24), with headroom.
const CMSG_BUF_BYTES: usize = 128;
/// Most control messages we look at per datagram.
const MAX_CMSGS: usize = 16;

/// Control-message buffer, aligned for `cmsghdr`.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct CmsgBuf([u8; CMSG_BUF_BYTES]);

/// A zeroed value of a plain C struct.
fn zeroed<T: PlainC>() -> T {
    // SAFETY: `PlainC` is implemented only for libc structs made of integers, arrays and raw
    // pointers, for which all-zero bytes are a valid value (null pointers, zero lengths).
    unsafe { mem::zeroed() }
}

/// Marker for the libc structs [`zeroed`] may create.
trait PlainC {}
impl PlainC for libc::mmsghdr {}
impl PlainC for libc::iovec {}
impl PlainC for sockaddr_storage {}
impl PlainC for sockaddr_in {}
impl PlainC for sockaddr_in6 {}

fn boxed<T: Clone>(n: usize, v: T) -> Box<[T]> {
    vec![v; n].into_boxed_slice()
}

fn zeroed_slice<T: PlainC>(n: usize) -> Box<[T]> {
    (0..n).map(|_| zeroed()).collect()
}

/// Runs `f` (a syscall returning -1 on error), retrying EINTR a bounded number of times.
fn retry_eintr(mut f: impl FnMut() -> c_int) -> io::Result<usize> {
    let mut tries = 0;
    loop {
        let r = f();
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted && tries < MAX_EINTR_RETRIES {
            tries += 1;
            continue;
        }
        return Err(e);
    }
}

/// `setsockopt(fd, level, name, &value, sizeof(int))`.
pub(crate) fn set_int_opt(
    fd: BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    value: c_int,
) -> io::Result<()> {
    // SAFETY: `fd` is a live descriptor (borrowed); `value` outlives the call and the length
    // passed is its size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const c_int).cast::<c_void>(),
            size_of::<c_int>() as socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Storage for one `recvmmsg` call of up to `capacity` datagrams, allocated once.
///
/// The raw pointers inside the headers are written at the start of each [`MmsgRecv::recv`]
/// and used only during that call.
pub(crate) struct MmsgRecv {
    hdrs: Box<[libc::mmsghdr]>,
    iovs: Box<[libc::iovec]>,
    addrs: Box<[sockaddr_storage]>,
    cmsgs: Box<[CmsgBuf]>,
}

// SAFETY: the raw pointers in `hdrs` / `iovs` point into this struct's own boxes or into the
// buffer borrowed by `recv`, are rewritten at the start of every call and never dereferenced
// between calls, so moving the struct to another thread cannot create a dangling access.
unsafe impl Send for MmsgRecv {}

/// Result of one `recvmmsg` call.
pub(crate) struct Received {
    /// Datagrams received (metas `0..n` are filled).
    pub n: usize,
    /// The newest `SO_RXQ_OVFL` value among them, if any carried one.
    pub rxq_drops: Option<u32>,
}

impl MmsgRecv {
    pub(crate) fn new(capacity: usize) -> MmsgRecv {
        MmsgRecv {
            hdrs: zeroed_slice(capacity),
            iovs: zeroed_slice(capacity),
            addrs: zeroed_slice(capacity),
            cmsgs: boxed(capacity, CmsgBuf([0; CMSG_BUF_BYTES])),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Receives up to `min(capacity, buf.len() / slot_bytes, metas.len())` datagrams, the
    /// i-th into `buf[i * slot_bytes..][..slot_bytes]`, and describes them in `metas`.
    /// EINTR is retried; EAGAIN is `Ok(n = 0)`.
    pub(crate) fn recv(
        &mut self,
        fd: BorrowedFd<'_>,
        buf: &mut [u8],
        slot_bytes: usize,
        flags: c_int,
        metas: &mut [RecvMeta],
    ) -> io::Result<Received> {
        let n = match buf.len().checked_div(slot_bytes) {
            Some(slots) => slots.min(self.capacity()).min(metas.len()),
            None => 0,
        };
        if n == 0 {
            return Ok(Received {
                n: 0,
                rxq_drops: None,
            });
        }
        let buf_base = buf.as_mut_ptr();
        for (i, iov) in self.iovs[..n].iter_mut().enumerate() {
            // SAFETY: i < n <= buf.len() / slot_bytes, so [i * slot_bytes, (i + 1) * slot_bytes)
            // lies inside `buf`.
            let slot = unsafe { buf_base.add(i * slot_bytes) };
            *iov = libc::iovec {
                iov_base: slot.cast::<c_void>(),
                iov_len: slot_bytes,
            };
        }
        // Base pointers taken once, after the writes above, so they stay valid for the call.
        let iov_base = self.iovs.as_mut_ptr();
        let addr_base = self.addrs.as_mut_ptr();
        let cmsg_base = self.cmsgs.as_mut_ptr();
        for (i, h) in self.hdrs[..n].iter_mut().enumerate() {
            h.msg_len = 0;
            let m = &mut h.msg_hdr;
            // SAFETY: i < n <= capacity, the length of each of the three boxes.
            m.msg_name = unsafe { addr_base.add(i) }.cast::<c_void>();
            m.msg_namelen = size_of::<sockaddr_storage>() as socklen_t;
            // SAFETY: as above.
            m.msg_iov = unsafe { iov_base.add(i) };
            m.msg_iovlen = 1;
            // SAFETY: as above.
            m.msg_control = unsafe { cmsg_base.add(i) }.cast::<c_void>();
            m.msg_controllen = CMSG_BUF_BYTES as _;
            m.msg_flags = 0;
        }
        let hdrs = self.hdrs.as_mut_ptr();
        let got = retry_eintr(|| {
            // SAFETY: `hdrs[..n]` are initialised headers whose name, iovec and control
            // pointers point to live storage of the advertised sizes: our boxes and the
            // exclusively borrowed `buf`. The kernel writes only within those sizes.
            unsafe {
                libc::recvmmsg(
                    fd.as_raw_fd(),
                    hdrs,
                    n as c_uint,
                    flags as _,
                    ptr::null_mut(),
                )
            }
        });
        let got = match got {
            Ok(k) => k.min(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        let mut rxq_drops = None;
        for (i, meta) in metas[..got].iter_mut().enumerate() {
            let h = &self.hdrs[i];
            let src = sockaddr_to_std(&self.addrs[i], h.msg_hdr.msg_namelen)
                .unwrap_or(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)));
            let mut ts_ns = None;
            // SAFETY: `msg_control` / `msg_controllen` describe our `CmsgBuf`, filled by the
            // kernel; CMSG_FIRSTHDR only reads the header fields.
            let mut c = unsafe { libc::CMSG_FIRSTHDR(&h.msg_hdr) };
            for _ in 0..MAX_CMSGS {
                if c.is_null() {
                    break;
                }
                // SAFETY: a non-null pointer from CMSG_FIRSTHDR / CMSG_NXTHDR points to a whole
                // `cmsghdr` inside the control buffer, which is 8-byte aligned.
                let cm = unsafe { &*c };
                // SAFETY: CMSG_DATA of a valid header points inside the same buffer.
                let data = unsafe { libc::CMSG_DATA(c) };
                let data_len = (cm.cmsg_len as usize).saturating_sub(data as usize - c as usize);
                match (cm.cmsg_level, cm.cmsg_type) {
                    (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS)
                        if data_len >= size_of::<libc::timespec>() =>
                    {
                        // SAFETY: the kernel wrote a `struct timespec` here (checked length);
                        // read_unaligned makes no alignment assumption.
                        let t = unsafe { ptr::read_unaligned(data.cast::<libc::timespec>()) };
                        ts_ns = Some(
                            (t.tv_sec as u64)
                                .saturating_mul(1_000_000_000)
                                .saturating_add(t.tv_nsec as u64),
                        );
                    }
                    (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) if data_len >= size_of::<u32>() => {
                        // SAFETY: the kernel wrote a `u32` drop counter here (checked length).
                        rxq_drops = Some(unsafe { ptr::read_unaligned(data.cast::<u32>()) });
                    }
                    _ => {}
                }
                // SAFETY: `c` is a valid header of this message's control buffer; CMSG_NXTHDR
                // checks the bounds from `msg_controllen` and returns null at the end.
                c = unsafe { libc::CMSG_NXTHDR(&h.msg_hdr, c) };
            }
            *meta = RecvMeta {
                len: (h.msg_len as usize).min(slot_bytes),
                src,
                ts_ns,
                truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            };
        }
        Ok(Received { n: got, rxq_drops })
    }
}

/// Storage for one `sendmmsg` call of up to `capacity` datagrams, allocated once.
pub(crate) struct MmsgSend {
    hdrs: Box<[libc::mmsghdr]>,
    iovs: Box<[libc::iovec]>,
    addrs: Box<[sockaddr_storage]>,
    addr_lens: Box<[socklen_t]>,
}

// SAFETY: as for `MmsgRecv`: the raw pointers are rewritten at the start of every `send` and
// never dereferenced between calls.
unsafe impl Send for MmsgSend {}

impl MmsgSend {
    pub(crate) fn new(capacity: usize) -> MmsgSend {
        MmsgSend {
            hdrs: zeroed_slice(capacity),
            iovs: zeroed_slice(capacity),
            addrs: zeroed_slice(capacity),
            addr_lens: boxed(capacity, 0),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Sends up to `min(capacity, msgs.len())` datagrams; returns how many the kernel took.
    /// EINTR is retried; EAGAIN is `Ok(0)`.
    pub(crate) fn send(&mut self, fd: BorrowedFd<'_>, msgs: &[Transmit<'_>]) -> io::Result<usize> {
        let n = msgs.len().min(self.capacity());
        if n == 0 {
            return Ok(0);
        }
        for (i, t) in msgs[..n].iter().enumerate() {
            self.addr_lens[i] = write_sockaddr(&mut self.addrs[i], t.dst);
            self.iovs[i] = libc::iovec {
                // The kernel only reads from a send buffer; the `*mut` is the C signature's.
                iov_base: t.payload.as_ptr().cast_mut().cast::<c_void>(),
                iov_len: t.payload.len(),
            };
        }
        let iov_base = self.iovs.as_mut_ptr();
        let addr_base = self.addrs.as_mut_ptr();
        for (i, h) in self.hdrs[..n].iter_mut().enumerate() {
            h.msg_len = 0;
            let m = &mut h.msg_hdr;
            // SAFETY: i < n <= capacity, the length of `addrs`.
            m.msg_name = unsafe { addr_base.add(i) }.cast::<c_void>();
            m.msg_namelen = self.addr_lens[i];
            // SAFETY: i < n <= capacity, the length of `iovs`.
            m.msg_iov = unsafe { iov_base.add(i) };
            m.msg_iovlen = 1;
            m.msg_control = ptr::null_mut();
            m.msg_controllen = 0;
            m.msg_flags = 0;
        }
        let hdrs = self.hdrs.as_mut_ptr();
        let sent = retry_eintr(|| {
            // SAFETY: `hdrs[..n]` point to initialised addresses of the stated lengths and to
            // iovecs over the payloads borrowed in `msgs`, all alive for the call; the kernel
            // reads them and writes only `msg_len`.
            unsafe { libc::sendmmsg(fd.as_raw_fd(), hdrs, n as c_uint, 0) }
        });
        match sent {
            Ok(k) => Ok(k.min(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// Reads a socket address the kernel wrote into `ss` (`len` bytes).
fn sockaddr_to_std(ss: &sockaddr_storage, len: socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match c_int::from(ss.ss_family) {
        libc::AF_INET if len >= size_of::<sockaddr_in>() => {
            // SAFETY: `sockaddr_storage` is big and aligned enough for any socket address,
            // and the family and length say the kernel stored a `sockaddr_in`.
            let sin = unsafe { &*(ss as *const sockaddr_storage).cast::<sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<sockaddr_in6>() => {
            // SAFETY: as above, for `sockaddr_in6`.
            let sin6 = unsafe { &*(ss as *const sockaddr_storage).cast::<sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Writes `addr` into `ss` as a `sockaddr_in` / `sockaddr_in6`; returns its length.
fn write_sockaddr(ss: &mut sockaddr_storage, addr: SocketAddr) -> socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let mut sin: sockaddr_in = zeroed();
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            // SAFETY: `sockaddr_storage` is larger than and at least as aligned as
            // `sockaddr_in`; `ss` is an exclusive reference.
            unsafe { ptr::write((ss as *mut sockaddr_storage).cast::<sockaddr_in>(), sin) };
            size_of::<sockaddr_in>() as socklen_t
        }
        SocketAddr::V6(a) => {
            let mut sin6: sockaddr_in6 = zeroed();
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            // SAFETY: as above, for `sockaddr_in6`.
            unsafe { ptr::write((ss as *mut sockaddr_storage).cast::<sockaddr_in6>(), sin6) };
            size_of::<sockaddr_in6>() as socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for s in ["192.0.2.7:2055", "[2001:db8::7]:4739", "[fe80::1%3]:6343"] {
            let a: SocketAddr = s.parse().unwrap();
            let mut ss: sockaddr_storage = zeroed();
            let len = write_sockaddr(&mut ss, a);
            assert_eq!(sockaddr_to_std(&ss, len), Some(a));
            assert_eq!(sockaddr_to_std(&ss, 2), None);
        }
    }
}
