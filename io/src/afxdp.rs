//! AF_XDP receive: an XDP program on the interface redirects UDP datagrams for the
//! collector's listen addresses to AF_XDP sockets (one per NIC receive queue, through an
//! `XSKMAP`) and passes everything else (ARP, SSH, ICMP, IP fragments, other ports) to the
//! kernel as if it were not there. The UMEM frames the packets land in are the collector's
//! packet buffers: the caller decodes the UDP payload in place, then the frames go back to
//! the fill ring in batches.
//!
//! No libbpf, libxdp or clang: the XDP program is generated here as eBPF bytecode from the
//! listen addresses ([`xdp_program`]; its C equivalent is `io/xdp/redirect_udp.c`), loaded
//! with `bpf(BPF_PROG_LOAD)` and attached with a BPF link, which the kernel removes when the
//! collector exits, even by a crash.
//!
//! Modes, tried in order and reported in [`XdpSetup`]:
//! - attach: native (driver) XDP, else generic (SKB) XDP, unless [`XdpMode`] forces one;
//! - sockets: zero-copy when native and the driver supports it, else copy.
//!
//! Limits: frames larger than a UMEM frame (`frame_size` minus the kernel's 256-byte headroom)
//! are dropped by the kernel (no multi-buffer); IPv6 extension headers are not stepped over
//! (such datagrams go to the kernel); IPv4 fragments go to the kernel, where the collector's
//! fallback UDP sockets receive them reassembled.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use crate::frame::{
    parse_udp, BypassError, Checksum, FrameStats, ListenSet, ETHERTYPE_IPV4, ETHERTYPE_IPV6,
    ETHERTYPE_QINQ, ETHERTYPE_VLAN, ETH_HLEN, IPPROTO_UDP,
};
use crate::sys::{bpf, packet::if_index, packet::poll_in, xdp};
use crate::udp::RecvMeta;

/// Where the XDP program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native if the driver can, else generic (SKB).
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode only: any interface, after the kernel built its socket buffer.
    Skb,
}

impl XdpMode {
    /// `auto`, `native` / `drv`, `skb` / `generic`.
    pub fn parse(s: &str) -> Option<XdpMode> {
        match s {
            "auto" => Some(XdpMode::Auto),
            "native" | "drv" => Some(XdpMode::Native),
            "skb" | "generic" => Some(XdpMode::Skb),
            _ => None,
        }
    }
}

/// How to open the AF_XDP sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfXdpConfig {
    /// The interface.
    pub interface: String,
    /// The collector's listen addresses (the program redirects UDP to these only).
    pub listen: Vec<SocketAddr>,
    /// NIC receive queues to bind, one socket each. Empty: every queue of the interface.
    pub queues: Vec<u32>,
    /// Where the program runs.
    pub mode: XdpMode,
    /// UMEM frame size: 2048 or 4096.
    pub frame_size: u32,
    /// UMEM frames per socket (a power of two); also the fill ring's size.
    pub frames: u32,
    /// RX ring size (a power of two).
    pub rx_ring: u32,
}

impl AfXdpConfig {
    /// Defaults: every queue, auto mode, 4096 frames of 4 KiB (16 MiB per socket), RX ring
    /// of 2048.
    pub fn new(interface: &str, listen: &[SocketAddr]) -> AfXdpConfig {
        AfXdpConfig {
            interface: interface.to_string(),
            listen: listen.to_vec(),
            queues: Vec::new(),
            mode: XdpMode::Auto,
            frame_size: 4096,
            frames: 4096,
            rx_ring: 2048,
        }
    }
}

/// The attached program: dropping the last handle detaches it.
#[derive(Debug)]
pub struct XdpProgram {
    // order matters: the link goes first (detach), then the program and the map
    _link: OwnedFd,
    _prog: OwnedFd,
    map: OwnedFd,
    /// Attached in native (driver) mode rather than generic (SKB) mode.
    pub native: bool,
}

/// What [`open`] set up, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpSetup {
    /// The interface and its index.
    pub interface: String,
    /// `native` or `skb`.
    pub attach_mode: &'static str,
    /// Why native mode was not used (the error of the native attempt), if it was tried.
    pub native_error: Option<String>,
    /// Per socket: (queue, zero-copy).
    pub sockets: Vec<(u32, bool)>,
    /// Eight-byte instructions in the program.
    pub program_insns: usize,
}

/// Kernel-side counters of an AF_XDP socket (`XDP_STATISTICS`), cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Dropped for other reasons (frame too large for a UMEM frame...).
    pub rx_dropped: u64,
    /// Dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub fill_ring_empty: u64,
    /// Invalid descriptors.
    pub rx_invalid_descs: u64,
}

impl XskStats {
    /// Packets lost in the kernel on the way to this socket.
    pub fn drops(&self) -> u64 {
        self.rx_dropped + self.rx_ring_full + self.rx_invalid_descs
    }
}

/// One AF_XDP socket bound to one queue, with its UMEM.
pub struct XskReceiver {
    // the socket is closed before its UMEM is unmapped
    xsk: xdp::Xsk,
    umem: xdp::Umem,
    queue: u32,
    zero_copy: bool,
    listen: ListenSet,
    recycle: Vec<u64>,
    stats: FrameStats,
    _program: Arc<XdpProgram>,
}

impl std::fmt::Debug for XskReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskReceiver")
            .field("queue", &self.queue)
            .field("zero_copy", &self.zero_copy)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The receive queues of `interface` (`/sys/class/net/IF/queues/rx-N`); at least queue 0.
pub fn rx_queues(interface: &str) -> Vec<u32> {
    let dir = format!("/sys/class/net/{interface}/queues");
    let mut v: Vec<u32> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_prefix("rx-")?
                    .parse()
                    .ok()
            })
            .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    if v.is_empty() {
        v.push(0);
    }
    v
}

/// Loads and attaches the program and opens one socket per queue. Needs root (`CAP_NET_ADMIN`,
/// `CAP_NET_RAW`, `CAP_BPF`).
pub fn open(cfg: &AfXdpConfig) -> Result<(Vec<XskReceiver>, XdpSetup), BypassError> {
    let iface = cfg.interface.as_str();
    let err = |op: &'static str| move |e: io::Error| BypassError::new(op, iface, e);
    let ifindex = if_index(iface).map_err(err("find interface"))?;
    // a socket first: the clearest test of "does this kernel have AF_XDP at all"
    let probe = xdp::xsk_socket().map_err(|e| {
        let hint = (e.raw_os_error() == Some(libc::EAFNOSUPPORT)).then_some(
            "this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS); use --input af_packet",
        );
        let b = BypassError::new("create AF_XDP socket", iface, e);
        match hint {
            Some(h) => b.with_hint(h),
            None => b,
        }
    })?;
    let queues = if cfg.queues.is_empty() {
        rx_queues(iface)
    } else {
        cfg.queues.clone()
    };
    let entries = queues.iter().max().copied().unwrap_or(0) + 1;
    let map = bpf::create_xsk_map(entries, "ff_xsks").map_err(|e| {
        let b = BypassError::new("create XSKMAP", iface, e);
        if b.os.raw_os_error() == Some(libc::ENOSYS) {
            b.with_hint("this kernel has no bpf() system call (CONFIG_BPF_SYSCALL)")
        } else {
            b
        }
    })?;
    let listen = ListenSet::new(&cfg.listen);
    let insns = xdp_program(&listen, map_fd_raw(map.as_fd()))
        .map_err(|m| BypassError::new("build XDP program", iface, io::Error::other(m)))?;
    let prog =
        bpf::load_xdp_program(&insns, "Dual MIT/GPL", "ff_redirect_udp").map_err(|(e, log)| {
            let b = BypassError::new("load XDP program", iface, e);
            if log.is_empty() {
                b
            } else {
                let tail: String = log.lines().rev().take(8).collect::<Vec<_>>().join(" | ");
                b.with_hint(format!("verifier: {tail}"))
            }
        })?;
    let attempts: &[(u32, &str)] = match cfg.mode {
        XdpMode::Auto => &[
            (bpf::XDP_FLAGS_DRV_MODE, "native"),
            (bpf::XDP_FLAGS_SKB_MODE, "skb"),
        ],
        XdpMode::Native => &[(bpf::XDP_FLAGS_DRV_MODE, "native")],
        XdpMode::Skb => &[(bpf::XDP_FLAGS_SKB_MODE, "skb")],
    };
    let mut native_error = None;
    let mut attached = None;
    for &(flags, name) in attempts {
        match bpf::attach_xdp_link(prog.as_fd(), ifindex, flags) {
            Ok(link) => {
                attached = Some((link, name));
                break;
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::EEXIST)) => {
                return Err(
                    BypassError::new("attach XDP program", iface, e).with_hint(format!(
                        "an XDP program is already attached to {iface}: detach it \
                     (`ip link set dev {iface} xdp off`) or use --input af_packet"
                    )),
                );
            }
            Err(e) if flags == bpf::XDP_FLAGS_DRV_MODE && attempts.len() > 1 => {
                native_error = Some(e.to_string());
            }
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) => {
                return Err(
                    BypassError::new("attach XDP program", iface, e).with_hint(format!(
                        "the MTU of {iface} is too large for XDP in {name} mode: lower it or use \
                     --xdp-mode skb"
                    )),
                );
            }
            Err(e) => return Err(BypassError::new("attach XDP program", iface, e)),
        }
    }
    let Some((link, attach_mode)) = attached else {
        return Err(BypassError::new(
            "attach XDP program",
            iface,
            io::Error::other("no attach mode left to try"),
        ));
    };
    let program = Arc::new(XdpProgram {
        _link: link,
        _prog: prog,
        map,
        native: attach_mode == "native",
    });
    drop(probe);
    let mut receivers = Vec::with_capacity(queues.len());
    let mut sockets = Vec::new();
    for &q in &queues {
        let r = XskReceiver::open(cfg, ifindex, q, program.clone(), &listen)?;
        bpf::map_update_u32(program.map.as_fd(), q, map_fd_raw(r.xsk.fd()) as u32)
            .map_err(err("add socket to XSKMAP"))?;
        sockets.push((q, r.zero_copy));
        receivers.push(r);
    }
    Ok((
        receivers,
        XdpSetup {
            interface: cfg.interface.clone(),
            attach_mode,
            native_error,
            sockets,
            program_insns: insns.len(),
        },
    ))
}

fn map_fd_raw(fd: BorrowedFd<'_>) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

impl XskReceiver {
    fn open(
        cfg: &AfXdpConfig,
        ifindex: u32,
        queue: u32,
        program: Arc<XdpProgram>,
        listen: &ListenSet,
    ) -> Result<XskReceiver, BypassError> {
        let iface = cfg.interface.as_str();
        let frames = cfg.frames.max(64).next_power_of_two();
        let frame_size = if cfg.frame_size <= 2048 { 2048 } else { 4096 };
        let sizes = xdp::RingSizes {
            fill: frames,
            completion: 64,
            rx: cfg.rx_ring.clamp(64, frames).next_power_of_two(),
        };
        // zero-copy only makes sense in native mode; then copy; each with and without
        // need-wakeup (older kernels refuse the flag)
        let mut tries: Vec<u16> = Vec::new();
        if program.native {
            tries.push(libc::XDP_ZEROCOPY | libc::XDP_USE_NEED_WAKEUP);
            tries.push(libc::XDP_ZEROCOPY);
        }
        tries.push(libc::XDP_COPY | libc::XDP_USE_NEED_WAKEUP);
        tries.push(libc::XDP_COPY);
        let mut last = None;
        for flags in tries {
            let umem = xdp::Umem::new(frames, frame_size)
                .map_err(|e| BypassError::new("allocate UMEM", iface, e))?;
            let fd = xdp::xsk_socket()
                .map_err(|e| BypassError::new("create AF_XDP socket", iface, e))?;
            match xdp::Xsk::open(fd, &umem, sizes, ifindex, queue, flags) {
                Ok(xsk) => {
                    let zero_copy = xsk.zero_copy().unwrap_or(false);
                    let mut r = XskReceiver {
                        xsk,
                        umem,
                        queue,
                        zero_copy,
                        listen: listen.clone(),
                        recycle: Vec::with_capacity(frames as usize),
                        stats: FrameStats::default(),
                        _program: program,
                    };
                    r.fill_all();
                    return Ok(r);
                }
                Err((op, e)) => {
                    // permission and "no such queue" will not get better with other flags
                    if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
                        return Err(BypassError::new(op, iface, e));
                    }
                    last = Some((op, e));
                }
            }
        }
        let (op, e) = last.unwrap_or(("bind", io::Error::other("no bind mode left")));
        let hint = format!("queue {queue} of {iface}: see `ls /sys/class/net/{iface}/queues`");
        Err(BypassError::new(op, iface, e).with_hint(hint))
    }

    /// Puts every UMEM frame in the fill ring (at start).
    fn fill_all(&mut self) {
        let fs = u64::from(self.umem.frame_size());
        self.recycle.clear();
        self.recycle
            .extend((0..u64::from(self.umem.frames())).map(|i| i * fs));
        let n = self.xsk.fill.produce(&self.recycle);
        self.recycle.drain(..n);
    }

    /// The NIC queue this socket is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Whether the socket runs in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The socket (readable when the RX ring has descriptors).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.xsk.fd()
    }

    /// Waits up to `timeout` if the RX ring is empty, then hands up to `max` UDP datagrams for
    /// the collector to `f`, payloads borrowed from the UMEM frames, and gives the frames back
    /// to the fill ring in one batch. Returns the number of datagrams delivered.
    pub fn recv(
        &mut self,
        timeout: Duration,
        max: u32,
        mut f: impl FnMut(RecvMeta, &[u8]),
    ) -> io::Result<usize> {
        let mut n = self.xsk.rx.available().min(max);
        if n == 0 {
            if self.xsk.fill.needs_wakeup() {
                self.xsk.wakeup();
            }
            let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
            poll_in(self.xsk.fd(), ms)?;
            n = self.xsk.rx.available().min(max);
            if n == 0 {
                return Ok(0);
            }
        }
        let fs_mask = !(u64::from(self.umem.frame_size()) - 1);
        let mut delivered = 0;
        let now = crate::frame::now_ns();
        for i in 0..n {
            let d = self.xsk.rx.get(i);
            let frame = self.umem.frame(d.addr, d.len).unwrap_or(&[]);
            let parsed = parse_udp(frame, Checksum::Verify);
            let ok = parsed.map(|u| (self.listen.matches(u.dst), u));
            self.stats.count(ok.map(|(m, _)| m));
            if let Ok((true, u)) = ok {
                f(
                    RecvMeta {
                        len: u.payload.len(),
                        src: u.src,
                        ts_ns: Some(now),
                        truncated: false,
                    },
                    u.payload,
                );
                delivered += 1;
            }
            self.recycle.push(d.addr & fs_mask);
        }
        self.xsk.rx.release(n);
        let put = self.xsk.fill.produce(&self.recycle);
        self.recycle.drain(..put);
        // no TX: the completion ring stays empty, but drain it if the kernel ever fills it
        let c = self.xsk.completion.available();
        if c > 0 {
            self.xsk.completion.release(c);
        }
        if self.xsk.fill.needs_wakeup() {
            self.xsk.wakeup();
        }
        Ok(delivered)
    }

    /// What the parser saw so far.
    pub fn stats(&self) -> FrameStats {
        self.stats
    }

    /// The kernel's counters for this socket.
    pub fn kernel_stats(&self) -> io::Result<XskStats> {
        let (rx_dropped, rx_ring_full, fill_ring_empty, rx_invalid_descs) =
            self.xsk.statistics()?;
        Ok(XskStats {
            rx_dropped,
            rx_ring_full,
            fill_ring_empty,
            rx_invalid_descs,
        })
    }
}

// eBPF opcodes (linux/bpf.h, bpf_common.h).
const LDX_W: u8 = 0x61;
const LDX_H: u8 = 0x69;
const LDX_B: u8 = 0x71;
const MOV64_X: u8 = 0xbf;
const MOV64_K: u8 = 0xb7;
const ADD64_K: u8 = 0x07;
const ADD64_X: u8 = 0x0f;
const AND64_K: u8 = 0x57;
const LSH64_K: u8 = 0x67;
const JA: u8 = 0x05;
const JEQ_K: u8 = 0x15;
const JNE_K: u8 = 0x55;
const JGT_X: u8 = 0x2d;
const JSET_K: u8 = 0x45;
const JNE32_K: u8 = 0x56;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const LD_IMM64: u8 = 0x18;
const PSEUDO_MAP_FD: u8 = 1;
const FN_REDIRECT_MAP: i32 = 51;
const XDP_PASS: i32 = 2;

/// Offsets in `struct xdp_md`.
const MD_DATA: i16 = 0;
const MD_DATA_END: i16 = 4;
const MD_RX_QUEUE_INDEX: i16 = 16;

fn encode(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | u64::from(dst & 0xf) << 8
        | u64::from(src & 0xf) << 12
        | u64::from(off as u16) << 16
        | u64::from(imm as u32) << 32
}

#[derive(Clone, Copy)]
enum Jmp {
    None,
    Label(usize),
}

/// A tiny eBPF assembler with forward and backward labels.
struct Asm {
    code: Vec<(u64, Jmp)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn new() -> Asm {
        Asm {
            code: Vec::new(),
            labels: Vec::new(),
        }
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn here(&mut self, l: usize) {
        self.labels[l] = Some(self.code.len());
    }
    fn i(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.code
            .push((encode(code, dst, src, off, imm), Jmp::None));
    }
    /// Conditional (or, with `JA`, unconditional) jump to `l`.
    fn j(&mut self, code: u8, dst: u8, src: u8, imm: i32, l: usize) {
        self.code
            .push((encode(code, dst, src, 0, imm), Jmp::Label(l)));
    }
    fn finish(self) -> Result<Vec<u64>, String> {
        let mut out = Vec::with_capacity(self.code.len());
        for (pc, &(insn, j)) in self.code.iter().enumerate() {
            let insn = match j {
                Jmp::None => insn,
                Jmp::Label(l) => {
                    let to = self.labels[l].ok_or("unplaced label")? as i64;
                    let off = i16::try_from(to - pc as i64 - 1)
                        .map_err(|_| "XDP program too long".to_string())?;
                    (insn & !(0xffff << 16)) | u64::from(off as u16) << 16
                }
            };
            out.push(insn);
        }
        Ok(out)
    }
}

/// The XDP program for `listen`, redirecting to the `XSKMAP` whose descriptor is `map_fd`
/// (through `bpf_redirect_map(map, rx_queue_index, XDP_PASS)`: a queue without a socket
/// passes). Register use: r6 = ctx, r2 = data (advanced past VLAN tags, then past IPv4
/// options), r3 = data_end, r4 / r5 / r7 scratch.
pub(crate) fn xdp_program(listen: &ListenSet, map_fd: i32) -> Result<Vec<u64>, String> {
    const R0: u8 = 0;
    const R1: u8 = 1;
    const R2: u8 = 2;
    const R3: u8 = 3;
    const R4: u8 = 4;
    const R5: u8 = 5;
    const R6: u8 = 6;
    const R7: u8 = 7;
    // a u16 / u32 loaded from the packet is in host order (little-endian) of network bytes
    let be16 = |v: u16| i32::from(v.swap_bytes());
    let l3 = ETH_HLEN as i16;
    let mut a = Asm::new();
    let pass = a.label();
    let redirect = a.label();
    let dispatch = a.label();
    let v4 = a.label();
    let v6 = a.label();
    // bounds: r4 = r2 + n; if r4 > data_end goto pass
    let check = |a: &mut Asm, n: i32| {
        a.i(MOV64_X, R4, R2, 0, 0);
        a.i(ADD64_K, R4, 0, 0, n);
        a.j(JGT_X, R4, R3, 0, pass);
    };
    a.i(MOV64_X, R6, R1, 0, 0);
    a.i(LDX_W, R2, R1, MD_DATA, 0);
    a.i(LDX_W, R3, R1, MD_DATA_END, 0);
    check(&mut a, ETH_HLEN as i32);
    a.i(LDX_H, R5, R2, 12, 0);
    for _ in 0..2 {
        let tag = a.label();
        a.j(JEQ_K, R5, 0, be16(ETHERTYPE_VLAN), tag);
        a.j(JEQ_K, R5, 0, be16(ETHERTYPE_QINQ), tag);
        a.j(JA, 0, 0, 0, dispatch);
        a.here(tag);
        check(&mut a, ETH_HLEN as i32 + 4);
        a.i(LDX_H, R5, R2, 16, 0);
        a.i(ADD64_K, R2, 0, 0, 4);
    }
    a.here(dispatch);
    a.j(JEQ_K, R5, 0, be16(ETHERTYPE_IPV4), v4);
    a.j(JEQ_K, R5, 0, be16(ETHERTYPE_IPV6), v6);
    a.j(JA, 0, 0, 0, pass);

    a.here(v4);
    check(&mut a, ETH_HLEN as i32 + 20);
    a.i(LDX_B, R4, R2, l3 + 9, 0);
    a.j(JNE_K, R4, 0, i32::from(IPPROTO_UDP), pass);
    a.i(LDX_H, R4, R2, l3 + 6, 0);
    a.j(JSET_K, R4, 0, be16(0x3fff), pass); // fragments go to the kernel
    a.i(LDX_W, R7, R2, l3 + 16, 0); // destination address
    a.i(LDX_B, R5, R2, l3, 0);
    a.i(AND64_K, R5, 0, 0, 0x0f);
    a.i(LSH64_K, R5, 0, 0, 2);
    a.i(ADD64_X, R2, R5, 0, 0); // r2 + IHL*4: the UDP header is at r2 + 14
    check(&mut a, ETH_HLEN as i32 + 8);
    a.i(LDX_H, R4, R2, l3 + 2, 0);
    for (ip, port) in listen.v4() {
        let next = a.label();
        a.j(JNE_K, R4, 0, be16(port), next);
        if let Some(ip) = ip {
            a.j(JNE32_K, R7, 0, i32::from_le_bytes(ip.octets()), next);
        }
        a.j(JA, 0, 0, 0, redirect);
        a.here(next);
    }
    a.j(JA, 0, 0, 0, pass);

    a.here(v6);
    check(&mut a, ETH_HLEN as i32 + 40 + 8);
    a.i(LDX_B, R4, R2, l3 + 6, 0);
    a.j(JNE_K, R4, 0, i32::from(IPPROTO_UDP), pass);
    a.i(LDX_H, R4, R2, l3 + 40 + 2, 0);
    for (ip, port) in listen.v6() {
        let next = a.label();
        a.j(JNE_K, R4, 0, be16(port), next);
        if let Some(ip) = ip {
            let o = ip.octets();
            for w in 0..4 {
                a.i(LDX_W, R5, R2, l3 + 24 + 4 * w as i16, 0);
                let word = i32::from_le_bytes([o[4 * w], o[4 * w + 1], o[4 * w + 2], o[4 * w + 3]]);
                a.j(JNE32_K, R5, 0, word, next);
            }
        }
        a.j(JA, 0, 0, 0, redirect);
        a.here(next);
    }
    a.j(JA, 0, 0, 0, pass);

    a.here(redirect);
    a.i(LDX_W, R2, R6, MD_RX_QUEUE_INDEX, 0);
    a.i(LD_IMM64, R1, PSEUDO_MAP_FD, 0, map_fd);
    a.i(0, 0, 0, 0, 0);
    a.i(MOV64_K, R3, 0, 0, XDP_PASS);
    a.i(CALL, 0, 0, 0, FN_REDIRECT_MAP);
    a.i(EXIT, 0, 0, 0, 0);
    a.here(pass);
    a.i(MOV64_K, R0, 0, 0, XDP_PASS);
    a.i(EXIT, 0, 0, 0, 0);
    a.finish()
}

#[cfg(test)]
mod tests;
