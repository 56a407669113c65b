//! AF_PACKET receive with a `TPACKET_V3` ring: the kernel copies the frames the collector
//! wants into blocks of a ring shared with us; we parse Ethernet / VLAN / IPv4 / IPv6 / UDP in
//! place and hand each UDP payload to the caller without another copy. Works on any Linux
//! interface with no BPF program loading: the selection of frames is a classic BPF socket
//! filter (`SO_ATTACH_FILTER`) generated from the listen addresses.
//!
//! The kernel stack still sees every packet. So that it does not answer the exporters with
//! ICMP port-unreachable, the collector keeps ordinary UDP sockets bound on the listen
//! addresses with a drop-everything filter ([`attach_drop_all`]).
//!
//! Several receivers on one interface join one `PACKET_FANOUT_HASH` group (with
//! `PACKET_FANOUT_FLAG_DEFRAG`): the kernel spreads flows over them by a hash of addresses and
//! ports, so one exporter stays on one worker, and reassembles IP fragments before the filter,
//! so fragmented datagrams arrive whole.
//!
//! Kernel drops come from `PACKET_STATISTICS` (`tp_drops`: the ring was full;
//! `tp_freeze_q_cnt`: times the queue was frozen for lack of a free block).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::frame::{
    parse_udp, BypassError, Checksum, FrameStats, ListenSet, ETHERTYPE_IPV4, ETHERTYPE_IPV6,
    ETHERTYPE_QINQ, ETHERTYPE_VLAN, ETH_HLEN, IPPROTO_UDP,
};
use crate::sys::packet as sys;
use crate::udp::RecvMeta;

/// How to open an [`AfPacketReceiver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// The interface to capture on.
    pub interface: String,
    /// The collector's listen addresses (the filter keeps UDP to these only).
    pub listen: Vec<SocketAddr>,
    /// Ring size in bytes (rounded down to whole blocks, at least 4 blocks).
    pub ring_bytes: usize,
    /// Block size in bytes: a power of two, at least 64 KiB (holds any 64 KiB datagram).
    pub block_bytes: usize,
    /// A block is handed to us after this long even if not full (latency at low rates).
    pub block_timeout_ms: u32,
    /// Join this `PACKET_FANOUT_HASH` group (every receiver of one collector on one
    /// interface uses the same id). `None`: no fanout (one receiver).
    pub fanout_group: Option<u16>,
}

impl AfPacketConfig {
    /// Defaults for `interface` and `listen`: 32 MiB ring of 1 MiB blocks, 10 ms block
    /// timeout, no fanout.
    pub fn new(interface: &str, listen: &[SocketAddr]) -> AfPacketConfig {
        AfPacketConfig {
            interface: interface.to_string(),
            listen: listen.to_vec(),
            ring_bytes: 32 << 20,
            block_bytes: 1 << 20,
            block_timeout_ms: 10,
            fanout_group: None,
        }
    }
}

/// Kernel-side counters of a packet socket, cumulative since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Frames the socket's filter accepted (`tp_packets`).
    pub packets: u64,
    /// Frames dropped because the ring was full (`tp_drops`).
    pub drops: u64,
    /// Times the queue was frozen for lack of a free block (`tp_freeze_q_cnt`).
    pub freezes: u64,
}

/// One AF_PACKET socket with its mapped `TPACKET_V3` ring.
pub struct AfPacketReceiver {
    fd: OwnedFd,
    ring: sys::RxRingV3,
    listen: ListenSet,
    next_block: usize,
    stats: FrameStats,
    kernel: KernelStats,
    interface: String,
}

impl std::fmt::Debug for AfPacketReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfPacketReceiver")
            .field("interface", &self.interface)
            .field("blocks", &self.ring.block_nr())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Bytes of `struct tpacket3_hdr`, after which (TPACKET_ALIGN'ed: same value) the kernel puts
/// a `struct sockaddr_ll`.
const TPACKET3_HDRLEN: usize = 48;
/// Offset of `sll_pkttype` in `struct sockaddr_ll`.
const SLL_PKTTYPE_OFFSET: usize = 10;

#[inline]
fn ne32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[inline]
fn ne16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

impl AfPacketReceiver {
    /// Opens the socket, attaches the filter, maps the ring, binds to the interface and joins
    /// the fanout group. Needs `CAP_NET_RAW` (root).
    pub fn open(cfg: &AfPacketConfig) -> Result<AfPacketReceiver, BypassError> {
        let iface = cfg.interface.as_str();
        let err = |op: &'static str| move |e: io::Error| BypassError::new(op, iface, e);
        let ifindex = sys::if_index(iface).map_err(err("find interface"))?;
        let fd = sys::packet_socket().map_err(err("create AF_PACKET socket"))?;
        let listen = ListenSet::new(&cfg.listen);
        let prog = filter_program(&listen)
            .map_err(|m| BypassError::new("build filter", iface, io::Error::other(m)))?;
        sys::attach_filter(fd.as_fd(), &prog).map_err(err("attach filter"))?;
        // soft: only what arrives, not what this host sends (kernel >= 4.20); the filter
        // also rejects outgoing frames
        let _ =
            crate::sys::set_int_opt(fd.as_fd(), libc::SOL_PACKET, sys::PACKET_IGNORE_OUTGOING, 1);
        let block = cfg.block_bytes.clamp(64 << 10, 1 << 30).next_power_of_two();
        let blocks = (cfg.ring_bytes / block).clamp(4, 1 << 16);
        let ring = sys::RxRingV3::new(
            fd.as_fd(),
            block as u32,
            blocks as u32,
            2048,
            cfg.block_timeout_ms.max(1),
        )
        .map_err(err("set up TPACKET_V3 ring"))?;
        sys::bind_packet(fd.as_fd(), ifindex, sys::ETH_P_ALL_BE).map_err(err("bind"))?;
        if let Some(group) = cfg.fanout_group {
            let arg = i32::from(group)
                | ((sys::PACKET_FANOUT_HASH | sys::PACKET_FANOUT_FLAG_DEFRAG) << 16);
            crate::sys::set_int_opt(fd.as_fd(), libc::SOL_PACKET, sys::PACKET_FANOUT, arg)
                .map_err(err("join PACKET_FANOUT group"))?;
        }
        Ok(AfPacketReceiver {
            fd,
            ring,
            listen,
            next_block: 0,
            stats: FrameStats::default(),
            kernel: KernelStats::default(),
            interface: cfg.interface.clone(),
        })
    }

    /// The socket (to register with a poller; readable when a block is ready).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Waits up to `timeout` for a block if none is ready, then hands every UDP datagram for
    /// the collector of up to `max_blocks` ready blocks to `f`, in order, with the payload
    /// borrowed from the ring; each block goes back to the kernel once `f` has seen all its
    /// frames. Returns the number of datagrams delivered (0 on timeout).
    pub fn recv(
        &mut self,
        timeout: Duration,
        max_blocks: usize,
        mut f: impl FnMut(RecvMeta, &[u8]),
    ) -> io::Result<usize> {
        if self.ring.block(self.next_block).is_none() {
            let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
            sys::poll_in(self.fd.as_fd(), ms)?;
        }
        let mut delivered = 0;
        for _ in 0..max_blocks.max(1) {
            let i = self.next_block;
            let Some(block) = self.ring.block(i) else {
                break;
            };
            delivered += walk_block(block, &self.listen, &mut self.stats, &mut f);
            self.ring.release(i);
            self.next_block = (i + 1) % self.ring.block_nr();
        }
        Ok(delivered)
    }

    /// What the parser saw so far.
    pub fn stats(&self) -> FrameStats {
        self.stats
    }

    /// Reads `PACKET_STATISTICS` (which resets the kernel's counters) and returns the totals
    /// since the socket was opened.
    pub fn kernel_stats(&mut self) -> io::Result<KernelStats> {
        let (p, d, fz) = sys::packet_stats_v3(self.fd.as_fd())?;
        self.kernel.packets += u64::from(p);
        self.kernel.drops += u64::from(d);
        self.kernel.freezes += u64::from(fz);
        Ok(self.kernel)
    }
}

/// Walks the frames of one user-owned `TPACKET_V3` block. Safe code over the block's bytes:
/// every offset read from the block is bounds-checked.
fn walk_block(
    block: &[u8],
    listen: &ListenSet,
    stats: &mut FrameStats,
    f: &mut impl FnMut(RecvMeta, &[u8]),
) -> usize {
    // struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1:
    // block_status (8), num_pkts (12), offset_to_first_pkt (16), blk_len (20)
    let (Some(num), Some(first)) = (ne32(block, 12), ne32(block, 16)) else {
        return 0;
    };
    let mut delivered = 0;
    let mut off = first as usize;
    for _ in 0..num {
        // struct tpacket3_hdr
        let (Some(next), Some(sec), Some(nsec), Some(snap), Some(len), Some(status)) = (
            ne32(block, off),
            ne32(block, off + 4),
            ne32(block, off + 8),
            ne32(block, off + 12),
            ne32(block, off + 16),
            ne32(block, off + 20),
        ) else {
            break;
        };
        let mac = ne16(block, off + 24).unwrap_or(0) as usize;
        let pkttype = block
            .get(off + TPACKET3_HDRLEN + SLL_PKTTYPE_OFFSET)
            .copied()
            .unwrap_or(0);
        let frame = block
            .get(off + mac..)
            .and_then(|b| b.get(..snap as usize))
            .unwrap_or(&[]);
        if pkttype != sys::PACKET_OUTGOING {
            let checksum =
                if status & (sys::TP_STATUS_CSUMNOTREADY | sys::TP_STATUS_CSUM_VALID) != 0 {
                    Checksum::Skip
                } else {
                    Checksum::Verify
                };
            let parsed = parse_udp(frame, checksum);
            let ok = parsed.map(|u| (listen.matches(u.dst), u));
            stats.count(ok.map(|(m, _)| m));
            if let Ok((true, u)) = ok {
                let meta = RecvMeta {
                    len: u.payload.len(),
                    src: u.src,
                    ts_ns: Some(u64::from(sec) * 1_000_000_000 + u64::from(nsec)),
                    truncated: snap < len,
                };
                f(meta, u.payload);
                delivered += 1;
            }
        }
        if next == 0 {
            break;
        }
        off += next as usize;
    }
    delivered
}

/// Waits up to `timeout` until any of `fds` (at most 64) is readable; `Ok(false)` on
/// timeout. For a worker serving several receivers (and fallback UDP sockets).
pub fn wait_any(fds: &[BorrowedFd<'_>], timeout: Duration) -> io::Result<bool> {
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    sys::poll_many(fds, ms)
}

/// Attaches a classic BPF filter that drops everything to `socket` (the collector's idle UDP
/// sockets in `af_packet` mode, which only exist so the kernel does not send ICMP
/// port-unreachable for the datagrams AF_PACKET takes).
pub fn attach_drop_all(socket: &impl AsFd) -> io::Result<()> {
    sys::attach_filter(socket.as_fd(), &[insn(RET_K, 0, 0, 0)])
}

/// Sends raw Ethernet frames out of an interface: the benchmark's and tests' raw sender
/// (`sendmmsg` on a packet socket, with `PACKET_QDISC_BYPASS` when allowed).
pub struct RawSender {
    fd: OwnedFd,
}

impl std::fmt::Debug for RawSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSender").finish_non_exhaustive()
    }
}

impl RawSender {
    /// Most frames one [`RawSender::send`] passes to the kernel.
    pub const BATCH: usize = sys::SEND_FRAMES_MAX;

    /// A packet socket bound to `interface` (needs `CAP_NET_RAW`). With `qdisc_bypass`, frames
    /// skip the queueing discipline (faster, no back-pressure: the driver drops on overflow).
    pub fn open(interface: &str, qdisc_bypass: bool) -> Result<RawSender, BypassError> {
        let err = |op: &'static str| move |e: io::Error| BypassError::new(op, interface, e);
        let ifindex = sys::if_index(interface).map_err(err("find interface"))?;
        let fd = sys::packet_socket().map_err(err("create AF_PACKET socket"))?;
        // receives nothing: bound with protocol 0
        sys::bind_packet(fd.as_fd(), ifindex, 0).map_err(err("bind"))?;
        if qdisc_bypass {
            let _ =
                crate::sys::set_int_opt(fd.as_fd(), libc::SOL_PACKET, sys::PACKET_QDISC_BYPASS, 1);
        }
        Ok(RawSender { fd })
    }

    /// Sends up to [`RawSender::BATCH`] frames; returns how many the kernel took (0 when its
    /// buffer is full: try again).
    pub fn send(&self, frames: &[&[u8]]) -> io::Result<usize> {
        sys::send_frames(self.fd.as_fd(), frames)
    }
}

// Classic BPF opcodes (linux/filter.h).
const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_H_IND: u16 = 0x48;
const LDX_B_MSH: u16 = 0xb1;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
/// `SKF_AD_OFF + SKF_AD_PKTTYPE`: ancillary load of the packet type.
const AD_PKTTYPE: u32 = (-0x1000i32 + 4) as u32;
/// What an accepting filter returns: bytes to keep (all of any frame).
const ACCEPT_SNAP: u32 = 0x0004_0000;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Where a conditional jump of the generator goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum To {
    Next,
    Label(usize),
    Accept,
    Drop,
}

/// A tiny classic-BPF assembler with forward labels.
struct Asm {
    code: Vec<(u16, To, To, u32)>,
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
    fn op(&mut self, code: u16, k: u32) {
        self.code.push((code, To::Next, To::Next, k));
    }
    fn jump(&mut self, code: u16, k: u32, t: To, f: To) {
        self.code.push((code, t, f, k));
    }
    fn finish(self) -> Result<Vec<libc::sock_filter>, String> {
        let accept = self.code.len();
        let drop = accept + 1;
        let target = |to: To, pc: usize| -> Result<u8, String> {
            let abs = match to {
                To::Next => pc + 1,
                To::Accept => accept,
                To::Drop => drop,
                To::Label(l) => self.labels[l].ok_or("unplaced label")?,
            };
            let rel = abs
                .checked_sub(pc + 1)
                .ok_or("backward jump in classic BPF")?;
            u8::try_from(rel).map_err(|_| "filter too long: too many listen addresses".to_string())
        };
        let mut out = Vec::with_capacity(self.code.len() + 2);
        for (pc, &(code, t, f, k)) in self.code.iter().enumerate() {
            out.push(insn(code, target(t, pc)?, target(f, pc)?, k));
        }
        out.push(insn(RET_K, 0, 0, ACCEPT_SNAP));
        out.push(insn(RET_K, 0, 0, 0));
        Ok(out)
    }
}

/// The classic BPF program that keeps incoming UDP datagrams for `listen` (untagged or with
/// one 802.1Q / 802.1ad tag left in the frame: the kernel strips the outer one) and drops
/// everything else, including outgoing frames and non-first IPv4 fragments.
pub(crate) fn filter_program(listen: &ListenSet) -> Result<Vec<libc::sock_filter>, String> {
    let mut a = Asm::new();
    let tagged = a.label();
    let v4 = [a.label(), a.label()];
    let v6 = [a.label(), a.label()];
    a.op(LD_W_ABS, AD_PKTTYPE);
    a.jump(JEQ_K, u32::from(sys::PACKET_OUTGOING), To::Drop, To::Next);
    a.op(LD_H_ABS, 12);
    a.jump(
        JEQ_K,
        u32::from(ETHERTYPE_VLAN),
        To::Label(tagged),
        To::Next,
    );
    a.jump(
        JEQ_K,
        u32::from(ETHERTYPE_QINQ),
        To::Label(tagged),
        To::Next,
    );
    a.jump(JEQ_K, u32::from(ETHERTYPE_IPV4), To::Label(v4[0]), To::Next);
    a.jump(JEQ_K, u32::from(ETHERTYPE_IPV6), To::Label(v6[0]), To::Drop);
    a.here(tagged);
    a.op(LD_H_ABS, 16);
    a.jump(JEQ_K, u32::from(ETHERTYPE_IPV4), To::Label(v4[1]), To::Next);
    a.jump(JEQ_K, u32::from(ETHERTYPE_IPV6), To::Label(v6[1]), To::Drop);
    for (i, base) in [ETH_HLEN as u32, ETH_HLEN as u32 + 4]
        .into_iter()
        .enumerate()
    {
        a.here(v4[i]);
        a.op(LD_B_ABS, base + 9);
        a.jump(JEQ_K, u32::from(IPPROTO_UDP), To::Next, To::Drop);
        a.op(LD_H_ABS, base + 6);
        a.jump(JSET_K, 0x3fff, To::Drop, To::Next);
        a.op(LDX_B_MSH, base);
        for (ip, port) in listen.v4() {
            let next = a.label();
            a.op(LD_H_IND, base + 2);
            match ip {
                None => a.jump(JEQ_K, u32::from(port), To::Accept, To::Label(next)),
                Some(ip) => {
                    a.jump(JEQ_K, u32::from(port), To::Next, To::Label(next));
                    a.op(LD_W_ABS, base + 16);
                    a.jump(JEQ_K, u32::from(ip), To::Accept, To::Label(next));
                }
            }
            a.here(next);
        }
        a.jump(JEQ_K, 0, To::Drop, To::Drop);
        a.here(v6[i]);
        a.op(LD_B_ABS, base + 6);
        a.jump(JEQ_K, u32::from(IPPROTO_UDP), To::Next, To::Drop);
        for (ip, port) in listen.v6() {
            let next = a.label();
            a.op(LD_H_ABS, base + 40 + 2);
            match ip {
                None => a.jump(JEQ_K, u32::from(port), To::Accept, To::Label(next)),
                Some(ip) => {
                    a.jump(JEQ_K, u32::from(port), To::Next, To::Label(next));
                    let o = ip.octets();
                    for w in 0..4 {
                        let word = u32::from_be_bytes([
                            o[w * 4],
                            o[w * 4 + 1],
                            o[w * 4 + 2],
                            o[w * 4 + 3],
                        ]);
                        a.op(LD_W_ABS, base + 24 + 4 * w as u32);
                        let hit = if w == 3 { To::Accept } else { To::Next };
                        a.jump(JEQ_K, word, hit, To::Label(next));
                    }
                }
            }
            a.here(next);
        }
        a.jump(JEQ_K, 0, To::Drop, To::Drop);
    }
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::build_udp_frame;

    /// Runs a classic BPF program the way the kernel would on a received frame (the subset of
    /// instructions `filter_program` emits). Returns the snap length (0 = drop).
    fn run(prog: &[libc::sock_filter], pkt: &[u8], pkttype: u8) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let load = |at: u32, n: usize| -> Option<u32> {
            if at == AD_PKTTYPE {
                return Some(u32::from(pkttype));
            }
            let b = pkt.get(at as usize..at as usize + n)?;
            Some(b.iter().fold(0u32, |v, &x| v << 8 | u32::from(x)))
        };
        for _ in 0..10_000 {
            let i = prog[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => match load(i.k, 4) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_H_ABS => match load(i.k, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_B_ABS => match load(i.k, 1) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_H_IND => match load(x + i.k, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LDX_B_MSH => match load(i.k, 1) {
                    Some(v) => x = (v & 0xf) * 4,
                    None => return 0,
                },
                JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                JSET_K => pc += usize::from(if a & i.k != 0 { i.jt } else { i.jf }),
                RET_K => return i.k,
                c => panic!("opcode {c:#x} not emulated"),
            }
        }
        panic!("runaway program")
    }

    fn frame(src: &str, dst: &str, vlan: Option<u16>) -> Vec<u8> {
        let mut f = Vec::new();
        build_udp_frame(
            &mut f,
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            vlan,
            src.parse().unwrap(),
            dst.parse().unwrap(),
            b"x",
        );
        f
    }

    #[test]
    fn filter_keeps_listened_udp_only() {
        let listen = ListenSet::new(&[
            "0.0.0.0:2055".parse().unwrap(),
            "198.18.0.2:6343".parse().unwrap(),
            "[2001:db8::2]:4739".parse().unwrap(),
            "[::]:9995".parse().unwrap(),
        ]);
        let prog = filter_program(&listen).unwrap();
        let cases = [
            ("10.0.0.1:5", "10.0.0.2:2055", None, true),
            ("10.0.0.1:5", "10.0.0.2:2055", Some(7), true),
            ("10.0.0.1:5", "10.0.0.2:2056", None, false),
            ("10.0.0.1:5", "198.18.0.2:6343", None, true),
            ("10.0.0.1:5", "198.18.0.3:6343", None, false),
            ("[2001:db8::1]:5", "[2001:db8::2]:4739", None, true),
            ("[2001:db8::1]:5", "[2001:db8::2]:4739", Some(1), true),
            ("[2001:db8::1]:5", "[2001:db8::3]:4739", None, false),
            ("[2001:db8::1]:5", "[2001:db8::3]:9995", None, true),
            ("[2001:db8::1]:5", "[2001:db8::3]:2055", None, false),
        ];
        for (s, d, vlan, want) in cases {
            let f = frame(s, d, vlan);
            assert_eq!(run(&prog, &f, 0) != 0, want, "{s} -> {d} vlan {vlan:?}");
            // the kernel's answer and the user-space check agree
            let u = parse_udp(&f, Checksum::Verify).unwrap();
            assert_eq!(listen.matches(u.dst), want);
        }
        // outgoing, ARP, fragments and other protocols are dropped
        let f = frame("10.0.0.1:5", "10.0.0.2:2055", None);
        assert_eq!(run(&prog, &f, sys::PACKET_OUTGOING), 0);
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(run(&prog, &arp, 0), 0);
        let mut frag = f.clone();
        frag[14 + 6] = 0x20;
        assert_eq!(run(&prog, &frag, 0), 0);
        let mut tcp = f.clone();
        tcp[14 + 9] = 6;
        assert_eq!(run(&prog, &tcp, 0), 0);
        // IPv4 options move the UDP header: the port is read after IHL * 4 bytes
        let mut opts = f[..14].to_vec();
        opts.push(0x46);
        opts.extend_from_slice(&f[15..34]);
        opts.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
        opts.extend_from_slice(&f[34..]);
        assert_ne!(run(&prog, &opts, 0), 0);
    }

    /// Builds a block the way the kernel lays it out and walks it.
    #[test]
    fn walk_block_reads_frames_in_place() {
        let listen = ListenSet::new(&["0.0.0.0:2055".parse().unwrap()]);
        let frames = [
            frame("10.0.0.1:5", "10.0.0.2:2055", None),
            frame("10.0.0.1:6", "10.0.0.2:9999", None),
            frame("10.0.0.1:7", "10.0.0.2:2055", Some(3)),
        ];
        let mut block = vec![0u8; 4096];
        block[12..16].copy_from_slice(&3u32.to_ne_bytes());
        block[16..20].copy_from_slice(&48u32.to_ne_bytes());
        let mut off = 48;
        for (i, f) in frames.iter().enumerate() {
            let mac = 48 + 20 + 2; // after the header and sockaddr_ll, aligned as the kernel does
            let next = if i == 2 {
                0
            } else {
                (mac + f.len() + 15) & !15
            };
            let h = &mut block[off..];
            h[0..4].copy_from_slice(&(next as u32).to_ne_bytes());
            h[4..8].copy_from_slice(&7u32.to_ne_bytes());
            h[8..12].copy_from_slice(&9u32.to_ne_bytes());
            h[12..16].copy_from_slice(&(f.len() as u32).to_ne_bytes());
            h[16..20].copy_from_slice(&(f.len() as u32).to_ne_bytes());
            h[24..26].copy_from_slice(&(mac as u16).to_ne_bytes());
            h[mac..mac + f.len()].copy_from_slice(f);
            off += next;
        }
        let mut stats = FrameStats::default();
        let mut got = Vec::new();
        let n = walk_block(&block, &listen, &mut stats, &mut |m, p| {
            got.push((m.src.port(), m.ts_ns, p.to_vec()))
        });
        assert_eq!(n, 2);
        assert_eq!(got[0], (5, Some(7_000_000_009), b"x".to_vec()));
        assert_eq!(got[1].0, 7);
        assert_eq!(
            (stats.frames, stats.delivered, stats.not_listened),
            (3, 2, 1)
        );
        // a lying header cannot make the walk read outside the block
        block[12..16].copy_from_slice(&1000u32.to_ne_bytes());
        block[48..52].copy_from_slice(&1_000_000u32.to_ne_bytes());
        let _ = walk_block(&block, &listen, &mut stats, &mut |_, _| {});
    }

    /// The real thing on loopback (needs root; skipped, saying so, otherwise): datagrams sent
    /// through the kernel arrive once each (not twice: outgoing copies are filtered), with
    /// their source, payload and a kernel timestamp; other ports are not captured.
    #[test]
    fn loopback_receive() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dst = sock.local_addr().unwrap();
        let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut cfg = AfPacketConfig::new("lo", &[dst]);
        cfg.ring_bytes = 1 << 20;
        cfg.block_bytes = 64 << 10;
        cfg.fanout_group = Some(0x7e00 | (std::process::id() as u16 & 0xff));
        let mut rx = match AfPacketReceiver::open(&cfg) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                eprintln!("skipped: AF_PACKET needs CAP_NET_RAW: {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        attach_drop_all(&sock).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..20u8 {
            tx.send_to(&[i; 100], dst).unwrap();
            tx.send_to(&[i; 10], other.local_addr().unwrap()).unwrap();
        }
        let mut got = Vec::new();
        let t0 = std::time::Instant::now();
        while got.len() < 20 && t0.elapsed() < Duration::from_secs(5) {
            rx.recv(Duration::from_millis(50), 8, |m, p| {
                got.push((m, p.to_vec()));
            })
            .unwrap();
        }
        assert_eq!(got.len(), 20, "{:?}", rx.stats());
        for (i, (m, p)) in got.iter().enumerate() {
            assert_eq!(m.src, tx.local_addr().unwrap());
            assert_eq!(p, &vec![i as u8; 100]);
            assert!(m.ts_ns.unwrap() > 1_600_000_000_000_000_000);
        }
        let st = rx.stats();
        assert_eq!((st.delivered, st.bad_checksum, st.not_listened), (20, 0, 0));
        assert_eq!(rx.kernel_stats().unwrap().drops, 0);
        // the drop-all filter kept the idle socket empty
        sock.set_nonblocking(true).unwrap();
        assert!(sock.recv_from(&mut [0u8; 200]).is_err());
    }
}
