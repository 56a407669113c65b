//! AF_PACKET sockets with a `TPACKET_V3` receive ring: socket, classic BPF filter, ring setup
//! and `mmap`, block ownership hand-over, `PACKET_STATISTICS`. The block and frame layout is
//! read by safe code in `crate::afpacket` from the byte slices handed out here.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};

use libc::{c_int, c_void, socklen_t};

/// `SOL_PACKET` options and values (linux/if_packet.h).
pub(crate) const PACKET_RX_RING: c_int = 5;
pub(crate) const PACKET_STATISTICS: c_int = 6;
pub(crate) const PACKET_VERSION: c_int = 10;
pub(crate) const PACKET_FANOUT: c_int = 18;
pub(crate) const PACKET_IGNORE_OUTGOING: c_int = 23;
pub(crate) const PACKET_QDISC_BYPASS: c_int = 20;
pub(crate) const TPACKET_V3: c_int = 2;
pub(crate) const PACKET_FANOUT_HASH: c_int = 0;
pub(crate) const PACKET_FANOUT_FLAG_DEFRAG: c_int = 0x8000;
/// Block status bits.
pub(crate) const TP_STATUS_KERNEL: u32 = 0;
pub(crate) const TP_STATUS_USER: u32 = 1;
/// Per-packet status bits (`tpacket3_hdr.tp_status`).
pub(crate) const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;
pub(crate) const TP_STATUS_CSUM_VALID: u32 = 1 << 7;
/// `sll_pkttype` of a packet the host sent.
pub(crate) const PACKET_OUTGOING: u8 = 4;
/// `ETH_P_ALL` in network byte order, as `socket` / `bind` want it.
pub(crate) const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

/// `struct tpacket_req3`.
#[repr(C)]
struct TpacketReq3 {
    tp_block_size: u32,
    tp_block_nr: u32,
    tp_frame_size: u32,
    tp_frame_nr: u32,
    tp_retire_blk_tov: u32,
    tp_sizeof_priv: u32,
    tp_feature_req_word: u32,
}

/// `struct tpacket_stats_v3`.
#[repr(C)]
#[derive(Default)]
struct TpacketStatsV3 {
    tp_packets: u32,
    tp_drops: u32,
    tp_freeze_q_cnt: u32,
}

/// Offset of `block_status` in `struct tpacket_block_desc` (version, offset_to_priv, then
/// `tpacket_hdr_v1` whose first field it is).
const BLOCK_STATUS_OFFSET: usize = 8;

fn cvt(r: c_int) -> io::Result<c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `socket(AF_PACKET, SOCK_RAW, 0)`: a packet socket that receives nothing until it is bound
/// with a protocol, so the filter can be attached first.
pub(crate) fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant arguments; a non-negative result is a fresh
    // descriptor that we own from here on.
    let fd = cvt(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `setsockopt(SOL_SOCKET, SO_ATTACH_FILTER)` with a classic BPF program.
pub(crate) fn attach_filter(fd: BorrowedFd<'_>, prog: &[libc::sock_filter]) -> io::Result<()> {
    let len = u16::try_from(prog.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?;
    let fprog = libc::sock_fprog {
        len,
        // The kernel copies the program and never writes through this pointer.
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points to `len` initialised instructions alive for the call; the
    // length passed is the struct's size.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast::<c_void>(),
            size_of::<libc::sock_fprog>() as socklen_t,
        )
    })?;
    Ok(())
}

/// `bind` to `ifindex` for `protocol` (network byte order).
pub(crate) fn bind_packet(fd: BorrowedFd<'_>, ifindex: u32, protocol_be: u16) -> io::Result<()> {
    // SAFETY: all-zero bytes are a valid `sockaddr_ll`.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol_be;
    sll.sll_ifindex = ifindex as c_int;
    // SAFETY: `sll` is a valid `sockaddr_ll` of the size passed, alive for the call.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast::<libc::sockaddr>(),
            size_of::<libc::sockaddr_ll>() as socklen_t,
        )
    })?;
    Ok(())
}

/// `if_nametoindex`.
pub(crate) fn if_index(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: `c` is a NUL-terminated string alive for the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

/// `getsockopt(SOL_PACKET, PACKET_STATISTICS)` for a `TPACKET_V3` socket: (packets, drops,
/// freeze_q_cnt) since the previous call (reading resets the kernel's counters).
pub(crate) fn packet_stats_v3(fd: BorrowedFd<'_>) -> io::Result<(u32, u32, u32)> {
    let mut st = TpacketStatsV3::default();
    let mut len = size_of::<TpacketStatsV3>() as socklen_t;
    // SAFETY: `st` is writable storage of `len` bytes alive for the call; the kernel writes at
    // most `len` bytes and updates `len`.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            PACKET_STATISTICS,
            (&mut st as *mut TpacketStatsV3).cast::<c_void>(),
            &mut len,
        )
    })?;
    Ok((st.tp_packets, st.tp_drops, st.tp_freeze_q_cnt))
}

/// `poll` for readability (or an error condition) with a timeout; `Ok(false)` on timeout or
/// EINTR.
pub(crate) fn poll_in(fd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN | libc::POLLERR,
        revents: 0,
    };
    // SAFETY: one valid `pollfd`, alive for the call.
    let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r > 0)
}

/// A `TPACKET_V3` receive ring mapped into our address space: `block_nr` blocks of
/// `block_size` bytes, each owned by the kernel or by us as its `block_status` says.
pub(crate) struct RxRingV3 {
    base: NonNull<u8>,
    len: usize,
    block_size: usize,
    block_nr: usize,
}

// SAFETY: the mapping is plain memory shared with the kernel only; the struct is the only
// user-space handle to it, so moving it to another thread is fine.
unsafe impl Send for RxRingV3 {}

impl RxRingV3 {
    /// `setsockopt(PACKET_VERSION, TPACKET_V3)`, `setsockopt(PACKET_RX_RING)` and `mmap`.
    /// `block_size` must be a multiple of the page size (and a power-of-two number of pages);
    /// `frame_size` a multiple of 16 dividing `block_size`.
    pub(crate) fn new(
        fd: BorrowedFd<'_>,
        block_size: u32,
        block_nr: u32,
        frame_size: u32,
        retire_ms: u32,
    ) -> io::Result<RxRingV3> {
        super::set_int_opt(fd, libc::SOL_PACKET, PACKET_VERSION, TPACKET_V3)?;
        let req = TpacketReq3 {
            tp_block_size: block_size,
            tp_block_nr: block_nr,
            tp_frame_size: frame_size,
            tp_frame_nr: (block_size / frame_size) * block_nr,
            tp_retire_blk_tov: retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        // SAFETY: `req` is a valid `tpacket_req3` of the size passed, alive for the call.
        cvt(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_RX_RING,
                (&req as *const TpacketReq3).cast::<c_void>(),
                size_of::<TpacketReq3>() as socklen_t,
            )
        })?;
        let len = block_size as usize * block_nr as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket; we pass no address
        // hint and check the result before using it.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        let p = if p == libc::MAP_FAILED {
            // MAP_LOCKED may exceed RLIMIT_MEMLOCK: retry without it
            // SAFETY: as above.
            unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    fd.as_raw_fd(),
                    0,
                )
            }
        } else {
            p
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(RxRingV3 {
            base: NonNull::new(p.cast::<u8>()).ok_or_else(io::Error::last_os_error)?,
            len,
            block_size: block_size as usize,
            block_nr: block_nr as usize,
        })
    }

    pub(crate) fn block_nr(&self) -> usize {
        self.block_nr
    }

    fn status(&self, i: usize) -> &AtomicU32 {
        assert!(i < self.block_nr);
        // SAFETY: block `i` lies inside the mapping (checked above); `block_status` is a
        // 4-byte aligned u32 at offset 8 of the page-aligned block, shared with the kernel,
        // which accesses it with its own barriers; AtomicU32 has the layout of u32.
        unsafe {
            &*self
                .base
                .as_ptr()
                .add(i * self.block_size + BLOCK_STATUS_OFFSET)
                .cast::<AtomicU32>()
        }
    }

    /// Block `i`, whole, if the kernel has handed it to user space (`TP_STATUS_USER`).
    /// Holding the slice keeps `self` borrowed, so it cannot outlive [`RxRingV3::release`].
    pub(crate) fn block(&mut self, i: usize) -> Option<&[u8]> {
        if self.status(i).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            return None;
        }
        // SAFETY: the kernel set TP_STATUS_USER (read with Acquire above, pairing with its
        // write barrier), so it does not touch this block until we hand it back in `release`,
        // which needs `&mut self` and so cannot run while this slice is alive.
        Some(unsafe {
            std::slice::from_raw_parts(self.base.as_ptr().add(i * self.block_size), self.block_size)
        })
    }

    /// Hands block `i` back to the kernel.
    pub(crate) fn release(&mut self, i: usize) {
        self.status(i).store(TP_STATUS_KERNEL, Ordering::Release);
    }
}

impl Drop for RxRingV3 {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region mapped in `new`; no slice into it can be alive
        // (they borrow `self`).
        unsafe {
            libc::munmap(self.base.as_ptr().cast::<c_void>(), self.len);
        }
    }
}

/// Most frames one [`send_frames`] call passes to `sendmmsg`.
pub(crate) const SEND_FRAMES_MAX: usize = 64;

/// `sendmmsg` of up to [`SEND_FRAMES_MAX`] frames on a packet socket bound to an interface
/// (no addresses). Returns how many the kernel took; `Ok(0)` when its buffer is full.
pub(crate) fn send_frames(fd: BorrowedFd<'_>, frames: &[&[u8]]) -> io::Result<usize> {
    let n = frames.len().min(SEND_FRAMES_MAX);
    if n == 0 {
        return Ok(0);
    }
    let mut iovs = [libc::iovec {
        iov_base: ptr::null_mut(),
        iov_len: 0,
    }; SEND_FRAMES_MAX];
    // SAFETY: all-zero bytes are a valid `mmsghdr` (null pointers, zero lengths).
    let mut hdrs: [libc::mmsghdr; SEND_FRAMES_MAX] = unsafe { std::mem::zeroed() };
    for (i, f) in frames[..n].iter().enumerate() {
        // The kernel only reads from a send buffer; the `*mut` is the C signature's.
        iovs[i] = libc::iovec {
            iov_base: f.as_ptr().cast_mut().cast::<c_void>(),
            iov_len: f.len(),
        };
    }
    let iov_base = iovs.as_mut_ptr();
    for (i, h) in hdrs[..n].iter_mut().enumerate() {
        // SAFETY: i < n <= SEND_FRAMES_MAX, the length of `iovs`.
        h.msg_hdr.msg_iov = unsafe { iov_base.add(i) };
        h.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `hdrs[..n]` point to iovecs over the borrowed frames, all alive for the call;
    // the kernel reads them and writes only `msg_len`.
    let r = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if r >= 0 {
        return Ok(r as usize);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EINTR) => Ok(0),
        _ => Err(e),
    }
}

/// Most descriptors [`poll_many`] waits on.
pub(crate) const POLL_MANY_MAX: usize = 64;

/// `poll` for readability of any of `fds` (at most [`POLL_MANY_MAX`]) with a timeout;
/// `Ok(false)` on timeout or EINTR.
pub(crate) fn poll_many(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> io::Result<bool> {
    let n = fds.len().min(POLL_MANY_MAX);
    let mut p = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; POLL_MANY_MAX];
    for (slot, fd) in p.iter_mut().zip(&fds[..n]) {
        *slot = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
    }
    // SAFETY: `p[..n]` are valid `pollfd`s, alive for the call.
    let r = unsafe { libc::poll(p.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r > 0)
}
