//! AF_XDP sockets without libxdp: the UMEM (one anonymous mapping cut into frames), the fill,
//! completion and RX rings mapped from the socket, their producer / consumer protocol, `bind`,
//! `XDP_STATISTICS` and `XDP_OPTIONS`. `crate::afxdp` drives them from safe code.

use std::io;
use std::marker::PhantomData;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};

use libc::{c_int, c_void, socklen_t};

fn cvt(r: c_int) -> io::Result<c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A memory mapping, unmapped on drop.
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: plain memory (anonymous, or shared with the kernel only); one owner.
unsafe impl Send for Mapping {}

impl Mapping {
    /// `mmap(len, prot RW, flags, fd, offset)`.
    fn new(
        len: usize,
        flags: c_int,
        fd: Option<BorrowedFd<'_>>,
        offset: u64,
    ) -> io::Result<Mapping> {
        // SAFETY: a fresh mapping with no address hint; the result is checked below.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd.map_or(-1, |f| f.as_raw_fd()),
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            base: NonNull::new(p.cast::<u8>()).ok_or_else(io::Error::last_os_error)?,
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; references into it borrow the owner.
        unsafe {
            libc::munmap(self.base.as_ptr().cast::<c_void>(), self.len);
        }
    }
}

/// The UMEM: `frames` frames of `frame_size` bytes in one page-aligned anonymous mapping,
/// registered with a socket. Frames are owned by the kernel (in the fill ring, or being
/// filled) or by user space (taken from the RX ring, until they are put back in the fill ring).
pub(crate) struct Umem {
    map: Mapping,
    frame_size: u32,
}

impl Umem {
    pub(crate) fn new(frames: u32, frame_size: u32) -> io::Result<Umem> {
        let len = frames as usize * frame_size as usize;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE;
        Ok(Umem {
            map: Mapping::new(len, flags, None, 0)?,
            frame_size,
        })
    }

    pub(crate) fn frame_size(&self) -> u32 {
        self.frame_size
    }

    pub(crate) fn frames(&self) -> u32 {
        (self.map.len / self.frame_size as usize) as u32
    }

    /// `len` bytes at `addr` of the UMEM, if they lie inside it. Call it only for a descriptor
    /// just taken from the RX ring (a frame user space owns until it returns it to the fill
    /// ring): the kernel does not write such a frame.
    pub(crate) fn frame(&self, addr: u64, len: u32) -> Option<&[u8]> {
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(len as usize)?;
        if end > self.map.len {
            return None;
        }
        // SAFETY: [start, end) lies inside the mapping (checked); per the ring protocol the
        // kernel does not write a frame between handing it to us in the RX ring and getting it
        // back through the fill ring, which cannot happen while `&self` is borrowed by the
        // caller's slice and the fill ring needs `&mut` of its own socket.
        Some(unsafe { std::slice::from_raw_parts(self.map.base.as_ptr().add(start), len as usize) })
    }
}

/// One mapped ring: producer and consumer indices shared with the kernel, and `size`
/// (a power of two) descriptors of type `T`.
pub(crate) struct Ring<T> {
    _map: Mapping,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descs: NonNull<T>,
    mask: u32,
    /// Our copy of the index we advance (producer for fill, consumer for RX / completion).
    local: u32,
    _t: PhantomData<T>,
}

// SAFETY: the pointers point into `_map`, owned by the ring; the other side is the kernel.
unsafe impl<T: Send> Send for Ring<T> {}

impl<T: Copy> Ring<T> {
    fn map(
        fd: BorrowedFd<'_>,
        off: &libc::xdp_ring_offset,
        size: u32,
        pgoff: u64,
        we_produce: bool,
    ) -> io::Result<Ring<T>> {
        let len = off.desc as usize + size as usize * size_of::<T>();
        let map = Mapping::new(len, libc::MAP_SHARED | libc::MAP_POPULATE, Some(fd), pgoff)?;
        let at = |o: u64| -> NonNull<u8> {
            // SAFETY: the kernel's offsets lie inside the ring it mapped (len covers the
            // descriptors, which come after the indices and flags).
            unsafe { NonNull::new_unchecked(map.base.as_ptr().add(o as usize)) }
        };
        let producer = at(off.producer).cast::<AtomicU32>();
        let consumer = at(off.consumer).cast::<AtomicU32>();
        let flags = at(off.flags).cast::<AtomicU32>();
        let descs = at(off.desc).cast::<T>();
        // SAFETY: the index words are 4-byte aligned u32s in the mapping; AtomicU32 has the
        // layout of u32.
        let local = unsafe {
            if we_produce {
                producer.as_ref().load(Ordering::Relaxed)
            } else {
                consumer.as_ref().load(Ordering::Relaxed)
            }
        };
        Ok(Ring {
            _map: map,
            producer,
            consumer,
            flags,
            descs,
            mask: size - 1,
            local,
            _t: PhantomData,
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into the mapping owned by `self` (see `map`).
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as above.
        unsafe { self.consumer.as_ref() }
    }

    /// Consumer side: entries the kernel has produced that we have not released.
    pub(crate) fn available(&self) -> u32 {
        self.producer()
            .load(Ordering::Acquire)
            .wrapping_sub(self.local)
    }

    /// Consumer side: entry `i` (< `available()`) past our consumer index.
    pub(crate) fn get(&self, i: u32) -> T {
        let idx = (self.local.wrapping_add(i) & self.mask) as usize;
        // SAFETY: idx <= mask < size, inside the descriptor array; the entry was published by
        // the kernel (Acquire in `available`) and is not rewritten before we release it.
        unsafe { ptr::read_volatile(self.descs.as_ptr().add(idx)) }
    }

    /// Consumer side: gives `n` entries back to the kernel.
    pub(crate) fn release(&mut self, n: u32) {
        self.local = self.local.wrapping_add(n);
        self.consumer().store(self.local, Ordering::Release);
    }

    /// Producer side: writes as many of `items` as there is room for and publishes them;
    /// returns how many.
    pub(crate) fn produce(&mut self, items: &[T]) -> usize {
        let size = self.mask + 1;
        let used = self
            .local
            .wrapping_sub(self.consumer().load(Ordering::Acquire));
        let free = size.saturating_sub(used) as usize;
        let n = items.len().min(free);
        for (i, item) in items[..n].iter().enumerate() {
            let idx = (self.local.wrapping_add(i as u32) & self.mask) as usize;
            // SAFETY: idx < size; the slot is free (between the kernel's consumer index and
            // ours), so the kernel does not read it until we publish below.
            unsafe { ptr::write_volatile(self.descs.as_ptr().add(idx), *item) };
        }
        self.local = self.local.wrapping_add(n as u32);
        self.producer().store(self.local, Ordering::Release);
        n
    }

    /// The kernel asks to be woken (`XDP_RING_NEED_WAKEUP`, with `XDP_USE_NEED_WAKEUP`).
    pub(crate) fn needs_wakeup(&self) -> bool {
        // SAFETY: points into the mapping owned by `self`.
        unsafe { self.flags.as_ref() }.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }
}

/// An AF_XDP socket bound to one queue, with its UMEM rings and RX ring.
pub(crate) struct Xsk {
    pub(crate) fill: Ring<u64>,
    pub(crate) completion: Ring<u64>,
    pub(crate) rx: Ring<libc::xdp_desc>,
    fd: OwnedFd,
}

/// `socket(AF_XDP, SOCK_RAW)`.
pub(crate) fn xsk_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a fresh descriptor we own.
    let fd = cvt(unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: just created, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_opt<T>(fd: BorrowedFd<'_>, name: c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` is a live value of the size passed.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            name,
            (v as *const T).cast::<c_void>(),
            size_of::<T>() as socklen_t,
        )
    })
    .map(drop)
}

fn get_opt<T>(fd: BorrowedFd<'_>, name: c_int, v: &mut T) -> io::Result<()> {
    let mut len = size_of::<T>() as socklen_t;
    // SAFETY: `v` is writable storage of `len` bytes; the kernel writes at most that.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            name,
            (v as *mut T).cast::<c_void>(),
            &mut len,
        )
    })
    .map(drop)
}

/// Ring sizes (each a power of two).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingSizes {
    pub fill: u32,
    pub completion: u32,
    pub rx: u32,
}

impl Xsk {
    /// Registers `umem` with `fd` (a fresh AF_XDP socket), sets up and maps the rings, and binds
    /// to `ifindex` / `queue` with `bind_flags` (`XDP_COPY` / `XDP_ZEROCOPY`,
    /// `XDP_USE_NEED_WAKEUP`). The UMEM must outlive the socket (the caller keeps both in one
    /// struct, the socket dropped first).
    pub(crate) fn open(
        fd: OwnedFd,
        umem: &Umem,
        sizes: RingSizes,
        ifindex: u32,
        queue: u32,
        bind_flags: u16,
    ) -> Result<Xsk, (&'static str, io::Error)> {
        let b = fd.as_fd();
        let reg = libc::xdp_umem_reg {
            addr: umem.map.base.as_ptr() as u64,
            len: umem.map.len as u64,
            chunk_size: umem.frame_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        set_opt(b, libc::XDP_UMEM_REG, &reg).map_err(|e| ("register UMEM", e))?;
        let ring_opt = |name, size: u32| set_opt(b, name, &(size as c_int));
        ring_opt(libc::XDP_UMEM_FILL_RING, sizes.fill).map_err(|e| ("set fill ring", e))?;
        ring_opt(libc::XDP_UMEM_COMPLETION_RING, sizes.completion)
            .map_err(|e| ("set completion ring", e))?;
        ring_opt(libc::XDP_RX_RING, sizes.rx).map_err(|e| ("set RX ring", e))?;
        // SAFETY: all-zero bytes are a valid `xdp_mmap_offsets` (plain integers).
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        get_opt(b, libc::XDP_MMAP_OFFSETS, &mut off).map_err(|e| ("read ring offsets", e))?;
        let fill = Ring::map(b, &off.fr, sizes.fill, libc::XDP_UMEM_PGOFF_FILL_RING, true)
            .map_err(|e| ("map fill ring", e))?;
        let completion = Ring::map(
            b,
            &off.cr,
            sizes.completion,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            false,
        )
        .map_err(|e| ("map completion ring", e))?;
        let rx = Ring::map(b, &off.rx, sizes.rx, libc::XDP_PGOFF_RX_RING as u64, false)
            .map_err(|e| ("map RX ring", e))?;
        let sxdp = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: bind_flags,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: `sxdp` is a valid `sockaddr_xdp` of the size passed, alive for the call.
        cvt(unsafe {
            libc::bind(
                b.as_raw_fd(),
                (&sxdp as *const libc::sockaddr_xdp).cast::<libc::sockaddr>(),
                size_of::<libc::sockaddr_xdp>() as socklen_t,
            )
        })
        .map_err(|e| ("bind", e))?;
        Ok(Xsk {
            fill,
            completion,
            rx,
            fd,
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether the socket runs in zero-copy mode (`XDP_OPTIONS`).
    pub(crate) fn zero_copy(&self) -> io::Result<bool> {
        let mut o = libc::xdp_options { flags: 0 };
        get_opt(self.fd.as_fd(), libc::XDP_OPTIONS, &mut o)?;
        Ok(o.flags & libc::XDP_OPTIONS_ZEROCOPY != 0)
    }

    /// `XDP_STATISTICS`: (rx_dropped, rx_ring_full, rx_fill_ring_empty_descs, rx_invalid_descs).
    pub(crate) fn statistics(&self) -> io::Result<(u64, u64, u64, u64)> {
        // SAFETY: all-zero bytes are a valid `xdp_statistics` (plain integers).
        let mut s: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        get_opt(self.fd.as_fd(), libc::XDP_STATISTICS, &mut s)?;
        Ok((
            s.rx_dropped,
            s.rx_ring_full,
            s.rx_fill_ring_empty_descs,
            s.rx_invalid_descs,
        ))
    }

    /// Kicks the kernel to process the fill ring (`recvfrom` with no buffer, non-blocking).
    pub(crate) fn wakeup(&self) {
        // SAFETY: no buffer and no address: the kernel only runs the socket's receive path.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                ptr::null_mut(),
                ptr::null_mut(),
            );
        }
    }
}
