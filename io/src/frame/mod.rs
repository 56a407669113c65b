//! Network frames carrying UDP: the one place where Ethernet, IPv4, IPv6 and UDP headers are
//! parsed, built and checksummed.
//!
//! - [`parse_udp`]: the kernel-bypass receivers' parser ([`crate::afpacket`],
//!   [`crate::afxdp`]), zero-copy and strict, on the hot path: Ethernet as the NIC delivered
//!   it, up to two 802.1Q / 802.1ad tags, IPv4 or IPv6 without extension headers, UDP, with
//!   UDP checksum verification;
//! - `capture`: the pcap reader's parser ([`crate::pcap`]), lenient as captures need: every
//!   [`linktype`] the reader knows, Ethernet padding, up to eight tags of four TPIDs, IPv6
//!   extension headers, the zero lengths of TSO / GSO captures;
//! - [`try_build_udp_frame`] / [`build_udp_frame`]: frames for the pcap writer, test and
//!   benchmark senders;
//! - [`udp_checksum`], [`internet_checksum`]: the Internet checksum (RFC 1071);
//! - [`ListenSet`], [`FrameStats`], [`BypassError`]: what the bypass receivers match, count
//!   and report.
//!
//! ```
//! use ferroflow_io::frame::{build_udp_frame, parse_udp, Checksum, ListenSet};
//!
//! let (src, dst) = ("198.18.0.1:40000".parse().unwrap(), "198.18.0.2:2055".parse().unwrap());
//! let mut frame = Vec::new();
//! build_udp_frame(&mut frame, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], None, src, dst, b"hello");
//! let udp = parse_udp(&frame, Checksum::Verify).unwrap();
//! assert_eq!((udp.src, udp.dst, udp.payload), (src, dst, &b"hello"[..]));
//! assert!(ListenSet::new(&["0.0.0.0:2055".parse().unwrap()]).matches(udp.dst));
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

mod build;
pub(crate) mod capture;
mod checksum;

pub use build::{build_udp_frame, try_build_udp_frame, BuildError, LinkHeader};
pub use checksum::{internet_checksum, udp_checksum};

/// Link-layer header types (`LINKTYPE_*` of the tcpdump.org registry) the capture parser reads.
pub mod linktype {
    /// BSD loopback: 4-byte address family in the capturing host's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet II (with optional 802.1Q / QinQ tags).
    pub const ETHERNET: u32 = 1;
    /// Raw IPv4 or IPv6, told apart by the version nibble.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1 (16-byte header).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2 (20-byte header).
    pub const LINUX_SLL2: u32 = 276;
}

/// Ethernet header length (no tags).
pub const ETH_HLEN: usize = 14;
/// EtherType IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType of an 802.1ad (QinQ service) tag.
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// Most VLAN tags stepped over (802.1ad outer + 802.1Q inner).
pub const MAX_VLAN_TAGS: usize = 2;

/// Why a frame was not a UDP datagram for the collector. Each maps to one counter of
/// [`FrameStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame ends before a header or before the length a header declares.
    #[error("truncated at byte {offset}: {needed} bytes needed, {available} available")]
    Truncated {
        /// Where the missing part starts.
        offset: usize,
        /// Bytes needed from there.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// Not IPv4 or IPv6 (ARP, LLDP, more than [`MAX_VLAN_TAGS`] tags...).
    #[error("EtherType {0:#06x} is not IP")]
    NotIp(u16),
    /// IP, but not UDP (IPv6 extension headers are not stepped over).
    #[error("IP protocol {0} is not UDP")]
    NotUdp(u8),
    /// An IPv4 fragment (more-fragments flag or non-zero offset): not reassembled here.
    #[error("IPv4 fragment")]
    Fragment,
    /// Header fields contradict each other (IHL < 5, UDP length < 8 or beyond the IP payload).
    #[error("malformed {0} header")]
    Malformed(&'static str),
    /// The UDP checksum does not match.
    #[error("bad UDP checksum")]
    BadChecksum,
}

/// Whether [`parse_udp`] checks the UDP checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// Verify it (a zero IPv4 checksum means "none" and passes; a zero IPv6 checksum fails).
    Verify,
    /// Do not: the kernel already verified it (`TP_STATUS_CSUM_VALID`) or the sender's stack
    /// left it to offload and it was never computed (`TP_STATUS_CSUMNOTREADY`: a local sender).
    Skip,
}

/// A UDP datagram inside an Ethernet frame; `payload` borrows from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpFrame<'a> {
    /// IP source address and UDP source port.
    pub src: SocketAddr,
    /// IP destination address and UDP destination port.
    pub dst: SocketAddr,
    /// The innermost VLAN id found in the frame itself (a tag the kernel stripped is not here).
    pub vlan: Option<u16>,
    /// The UDP payload, bounded by the UDP length (Ethernet padding excluded).
    pub payload: &'a [u8],
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[cold]
fn truncated(offset: usize, needed: usize, frame_len: usize) -> FrameError {
    FrameError::Truncated {
        offset,
        needed,
        available: frame_len.saturating_sub(offset),
    }
}

/// Checks `frame[offset..offset + needed]` exists.
#[inline]
fn need(frame: &[u8], offset: usize, needed: usize) -> Result<(), FrameError> {
    if frame.len() < offset + needed {
        return Err(truncated(offset, needed, frame.len()));
    }
    Ok(())
}

/// Parses an Ethernet frame down to its UDP payload. Never panics, whatever the bytes.
pub fn parse_udp(frame: &[u8], checksum: Checksum) -> Result<UdpFrame<'_>, FrameError> {
    need(frame, 0, ETH_HLEN)?;
    let mut ethertype = be16(frame, 12);
    let mut l3 = ETH_HLEN;
    let mut vlan = None;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
            break;
        }
        need(frame, l3, 4)?;
        vlan = Some(be16(frame, l3) & 0x0fff);
        ethertype = be16(frame, l3 + 2);
        l3 += 4;
    }
    let (src_ip, dst_ip, l4, l4_len) = match ethertype {
        ETHERTYPE_IPV4 => {
            need(frame, l3, 20)?;
            let ip = &frame[l3..];
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            if ip[0] >> 4 != 4 || ihl < 20 {
                return Err(FrameError::Malformed("IPv4"));
            }
            let total = usize::from(be16(ip, 2));
            if total < ihl {
                return Err(FrameError::Malformed("IPv4"));
            }
            need(frame, l3, total)?;
            if ip[9] != IPPROTO_UDP {
                return Err(FrameError::NotUdp(ip[9]));
            }
            if be16(ip, 6) & 0x3fff != 0 {
                return Err(FrameError::Fragment);
            }
            let s = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let d = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            (IpAddr::V4(s), IpAddr::V4(d), l3 + ihl, total - ihl)
        }
        ETHERTYPE_IPV6 => {
            need(frame, l3, 40)?;
            let ip = &frame[l3..];
            if ip[0] >> 4 != 6 {
                return Err(FrameError::Malformed("IPv6"));
            }
            if ip[6] != IPPROTO_UDP {
                return Err(FrameError::NotUdp(ip[6]));
            }
            let plen = usize::from(be16(ip, 4));
            need(frame, l3 + 40, plen)?;
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&ip[8..24]);
            d.copy_from_slice(&ip[24..40]);
            (
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                l3 + 40,
                plen,
            )
        }
        other => return Err(FrameError::NotIp(other)),
    };
    need(frame, l4, 8)?;
    let udp_len = usize::from(be16(frame, l4 + 4));
    if udp_len < 8 || udp_len > l4_len {
        return Err(FrameError::Malformed("UDP"));
    }
    let segment = &frame[l4..l4 + udp_len];
    if checksum == Checksum::Verify {
        let wire = be16(segment, 6);
        let ok = match (src_ip, dst_ip) {
            (IpAddr::V4(_), _) if wire == 0 => true,
            _ if wire == 0 => false, // IPv6 requires a checksum
            _ => udp_checksum(src_ip, dst_ip, segment) == 0,
        };
        if !ok {
            return Err(FrameError::BadChecksum);
        }
    }
    Ok(UdpFrame {
        src: SocketAddr::new(src_ip, be16(segment, 0)),
        dst: SocketAddr::new(dst_ip, be16(segment, 2)),
        vlan,
        payload: &segment[8..],
    })
}

/// The addresses the collector listens on: a datagram is for it when its destination port is
/// one of them and its destination address is that entry's, or the entry's address is the
/// unspecified address of the same family (`0.0.0.0` takes IPv4 only, `[::]` IPv6 only, as an
/// `IPV6_V6ONLY` socket would).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSet {
    addrs: Vec<SocketAddr>,
}

impl ListenSet {
    /// The set of `addrs` (duplicates are kept once).
    pub fn new(addrs: &[SocketAddr]) -> ListenSet {
        let mut v: Vec<SocketAddr> = Vec::with_capacity(addrs.len());
        for a in addrs {
            if !v.contains(a) {
                v.push(*a);
            }
        }
        ListenSet { addrs: v }
    }

    /// The listen addresses.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Whether a datagram sent to `dst` is for the collector.
    #[inline]
    pub fn matches(&self, dst: SocketAddr) -> bool {
        self.addrs.iter().any(|a| {
            a.port() == dst.port()
                && match (a.ip(), dst.ip()) {
                    (IpAddr::V4(l), IpAddr::V4(d)) => l.is_unspecified() || l == d,
                    (IpAddr::V6(l), IpAddr::V6(d)) => l.is_unspecified() || l == d,
                    _ => false,
                }
        })
    }

    /// IPv4 entries as (address or `None` for any, port).
    pub fn v4(&self) -> impl Iterator<Item = (Option<Ipv4Addr>, u16)> + '_ {
        self.addrs.iter().filter_map(|a| match a.ip() {
            IpAddr::V4(ip) => Some(((!ip.is_unspecified()).then_some(ip), a.port())),
            IpAddr::V6(_) => None,
        })
    }

    /// IPv6 entries as (address or `None` for any, port).
    pub fn v6(&self) -> impl Iterator<Item = (Option<Ipv6Addr>, u16)> + '_ {
        self.addrs.iter().filter_map(|a| match a.ip() {
            IpAddr::V6(ip) => Some(((!ip.is_unspecified()).then_some(ip), a.port())),
            IpAddr::V4(_) => None,
        })
    }
}

/// What a bypass receiver saw, each frame in exactly one bucket besides `frames`:
/// `frames == delivered + not_listened + not_udp + fragments + bad_checksum + malformed`.
/// Plain counters owned by one receive thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Frames taken from the ring.
    pub frames: u64,
    /// UDP datagrams for the collector handed to the caller.
    pub delivered: u64,
    /// UDP datagrams to an address or port the collector does not listen on (the in-kernel
    /// filter should have kept them away; counted for safety).
    pub not_listened: u64,
    /// Not UDP over IPv4/IPv6.
    pub not_udp: u64,
    /// IPv4 fragments (not reassembled by this parser).
    pub fragments: u64,
    /// UDP checksum mismatches (dropped, as the kernel's UDP stack would).
    pub bad_checksum: u64,
    /// Truncated or self-contradicting headers.
    pub malformed: u64,
}

impl FrameStats {
    /// Counts the outcome of one [`parse_udp`] (and listen check) in its bucket.
    #[inline]
    pub fn count(&mut self, outcome: Result<bool, FrameError>) {
        self.frames += 1;
        match outcome {
            Ok(true) => self.delivered += 1,
            Ok(false) => self.not_listened += 1,
            Err(FrameError::NotIp(_) | FrameError::NotUdp(_)) => self.not_udp += 1,
            Err(FrameError::Fragment) => self.fragments += 1,
            Err(FrameError::BadChecksum) => self.bad_checksum += 1,
            Err(FrameError::Truncated { .. } | FrameError::Malformed(_)) => self.malformed += 1,
        }
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &FrameStats) {
        self.frames += other.frames;
        self.delivered += other.delivered;
        self.not_listened += other.not_listened;
        self.not_udp += other.not_udp;
        self.fragments += other.fragments;
        self.bad_checksum += other.bad_checksum;
        self.malformed += other.malformed;
    }
}

/// Now, in nanoseconds since the Unix epoch (receive time of a frame whose ring carries none).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A kernel-bypass receiver could not be set up: what was being done, on which interface, the
/// OS error, and what to do about the usual causes.
#[derive(Debug, thiserror::Error)]
#[error("{interface}: {op}: {os}{}", hint_text(.hint))]
pub struct BypassError {
    /// What was being done ("create AF_XDP socket", "attach XDP program", ...).
    pub op: &'static str,
    /// The interface.
    pub interface: String,
    /// The OS error (in the message, so not also a `source()`: printed once).
    pub os: std::io::Error,
    /// A hint for the usual causes (not root, kernel without the feature, busy interface).
    pub hint: Option<String>,
}

fn hint_text(h: &Option<String>) -> String {
    h.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
}

impl BypassError {
    /// An error for `op` on `interface`, with the hint the OS error suggests.
    pub fn new(op: &'static str, interface: &str, os: std::io::Error) -> BypassError {
        let hint = match os.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Some(
                "not permitted: run as root, or grant CAP_NET_RAW (af_packet) or CAP_NET_RAW, \
                 CAP_NET_ADMIN and CAP_BPF (af_xdp)"
                    .to_string(),
            ),
            Some(libc::ENODEV) | Some(libc::ENXIO) => {
                Some(format!("no interface named {interface:?}"))
            }
            _ => None,
        };
        BypassError {
            op,
            interface: interface.to_string(),
            os,
            hint,
        }
    }

    /// Replaces the hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> BypassError {
        self.hint = Some(hint.into());
        self
    }

    /// The kind of the OS error.
    pub fn kind(&self) -> std::io::ErrorKind {
        self.os.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::checksum::{fold, sum16};
    use super::*;
    use proptest::prelude::*;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_frame_known_bytes() {
        // 198.18.0.1:1234 -> 198.18.0.2:2055, payload "abc"; checksums computed by hand with
        // the RFC 1071 algorithm (and accepted by the kernel in tests/bypass.rs).
        let mut f = Vec::new();
        build_udp_frame(
            &mut f,
            A,
            B,
            None,
            sa("198.18.0.1:1234"),
            sa("198.18.0.2:2055"),
            b"abc",
        );
        assert_eq!(f.len(), 14 + 20 + 8 + 3);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        // IPv4 header checksum verifies to zero
        assert_eq!(fold(sum16(0, &f[14..34])), 0xffff);
        let u = parse_udp(&f, Checksum::Verify).unwrap();
        assert_eq!(u.src, sa("198.18.0.1:1234"));
        assert_eq!(u.dst, sa("198.18.0.2:2055"));
        assert_eq!(u.payload, b"abc");
        assert_eq!(u.vlan, None);
    }

    #[test]
    fn vlan_and_ipv6() {
        let mut f = Vec::new();
        let (s, d) = (sa("[2001:db8::1]:999"), sa("[2001:db8::2]:4739"));
        build_udp_frame(&mut f, A, B, Some(42), s, d, &[7; 100]);
        let u = parse_udp(&f, Checksum::Verify).unwrap();
        assert_eq!(
            (u.src, u.dst, u.vlan, u.payload.len()),
            (s, d, Some(42), 100)
        );
        // QinQ: add an outer 802.1ad tag by hand
        let mut q = f[..12].to_vec();
        q.extend_from_slice(&[0x88, 0xa8, 0x00, 0x07]);
        q.extend_from_slice(&f[12..]);
        let u = parse_udp(&q, Checksum::Verify).unwrap();
        assert_eq!((u.vlan, u.payload.len()), (Some(42), 100));
    }

    #[test]
    fn checksum_errors_and_zero() {
        let mut f = Vec::new();
        build_udp_frame(
            &mut f,
            A,
            B,
            None,
            sa("10.0.0.1:1"),
            sa("10.0.0.2:2"),
            b"payload",
        );
        let last = f.len() - 1;
        f[last] ^= 1;
        assert_eq!(
            parse_udp(&f, Checksum::Verify),
            Err(FrameError::BadChecksum)
        );
        assert!(parse_udp(&f, Checksum::Skip).is_ok());
        // IPv4 checksum 0 = none
        f[14 + 20 + 6] = 0;
        f[14 + 20 + 7] = 0;
        assert!(parse_udp(&f, Checksum::Verify).is_ok());
        // IPv6 checksum 0 is invalid
        build_udp_frame(&mut f, A, B, None, sa("[::1]:1"), sa("[::2]:2"), b"x");
        f[14 + 40 + 6] = 0;
        f[14 + 40 + 7] = 0;
        assert_eq!(
            parse_udp(&f, Checksum::Verify),
            Err(FrameError::BadChecksum)
        );
    }

    #[test]
    fn rejections() {
        let mut f = Vec::new();
        build_udp_frame(
            &mut f,
            A,
            B,
            None,
            sa("10.0.0.1:1"),
            sa("10.0.0.2:2"),
            b"payload",
        );
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(
            parse_udp(&arp, Checksum::Verify),
            Err(FrameError::NotIp(0x0806))
        );
        let mut tcp = f.clone();
        tcp[14 + 9] = 6;
        assert_eq!(parse_udp(&tcp, Checksum::Skip), Err(FrameError::NotUdp(6)));
        let mut frag = f.clone();
        frag[14 + 6] = 0x20; // MF
        assert_eq!(parse_udp(&frag, Checksum::Skip), Err(FrameError::Fragment));
        assert!(matches!(
            parse_udp(&f[..f.len() - 1], Checksum::Skip),
            Err(FrameError::Truncated { .. })
        ));
        let mut bad_len = f.clone();
        bad_len[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(
            parse_udp(&bad_len, Checksum::Skip),
            Err(FrameError::Malformed("UDP"))
        );
        // Ethernet padding after the IP packet is ignored
        let mut padded = f.clone();
        padded.extend_from_slice(&[0; 10]);
        assert_eq!(
            parse_udp(&padded, Checksum::Verify).unwrap().payload,
            b"payload"
        );
    }

    #[test]
    fn listen_set() {
        let set = ListenSet::new(&[
            sa("0.0.0.0:2055"),
            sa("[2001:db8::2]:6343"),
            sa("10.0.0.1:4739"),
        ]);
        assert!(set.matches(sa("192.0.2.1:2055")));
        assert!(!set.matches(sa("[2001:db8::9]:2055")));
        assert!(set.matches(sa("[2001:db8::2]:6343")));
        assert!(!set.matches(sa("[2001:db8::3]:6343")));
        assert!(set.matches(sa("10.0.0.1:4739")));
        assert!(!set.matches(sa("10.0.0.2:4739")));
        assert_eq!(set.v4().count(), 2);
        assert_eq!(
            set.v6().collect::<Vec<_>>(),
            vec![(Some("2001:db8::2".parse().unwrap()), 6343)]
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_udp(&bytes, Checksum::Verify);
        }

        #[test]
        fn build_parse_round_trip(
            payload in proptest::collection::vec(any::<u8>(), 0..1500),
            sport: u16, dport: u16, v6: bool, vlan in proptest::option::of(0u16..4096),
        ) {
            let (s, d) = if v6 {
                (SocketAddr::new("2001:db8::1".parse().unwrap(), sport),
                 SocketAddr::new("2001:db8::2".parse().unwrap(), dport))
            } else {
                (SocketAddr::new("192.0.2.1".parse().unwrap(), sport),
                 SocketAddr::new("192.0.2.2".parse().unwrap(), dport))
            };
            let mut f = Vec::new();
            build_udp_frame(&mut f, A, B, vlan, s, d, &payload);
            let u = parse_udp(&f, Checksum::Verify).unwrap();
            prop_assert_eq!((u.src, u.dst, u.vlan, u.payload), (s, d, vlan, &payload[..]));
        }
    }
}
