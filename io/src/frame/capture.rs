//! Link layer -> IPv4/IPv6 -> UDP, over one captured frame, for the pcap reader: lenient where
//! captures need it (any [`linktype`] the reader knows, padding, zero lengths of TSO / GSO
//! captures, IPv6 extension headers), where [`super::parse_udp`] is strict. No allocation, no
//! panics: every access goes through `get`, every loop has a fixed bound.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{
    linktype, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN, IPPROTO_UDP,
};

/// Most VLAN tags we step over in one captured Ethernet frame (802.1Q, 802.1ad QinQ, and more).
const MAX_CAPTURE_VLAN_TAGS: usize = 8;
/// Most IPv6 extension headers we step over before giving up on a packet.
const MAX_IPV6_EXT_HEADERS: usize = 16;

/// 802.1Q, 802.1ad, and the two pre-standard QinQ TPIDs still seen in the wild.
const VLAN_TPIDS: [u16; 4] = [ETHERTYPE_VLAN, ETHERTYPE_QINQ, 0x9100, 0x9200];

/// What one captured frame turned out to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A whole, unfragmented UDP datagram.
    Udp {
        src: SocketAddr,
        dst: SocketAddr,
        payload: &'a [u8],
    },
    /// Not UDP over IP (ARP, TCP, ICMP, ESP, ...).
    NonUdp,
    /// A UDP datagram split into IP fragments (not reassembled).
    Fragment,
    /// The capture ends before the headers, or before the lengths they declare.
    Truncated,
    /// Header fields contradict each other (bad version, IHL < 5, UDP length < 8, ...).
    Malformed,
    /// A link type this reader does not decode.
    UnsupportedLinkType,
}

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Parses one frame of link type `link`.
pub(crate) fn parse(link: u32, f: &[u8]) -> Frame<'_> {
    match link {
        linktype::ETHERNET => ethernet(f),
        linktype::LINUX_SLL => match (be16(f, 14), f.get(16..)) {
            (Some(proto), Some(rest)) => by_ethertype(proto, rest),
            _ => Frame::Truncated,
        },
        linktype::LINUX_SLL2 => match (be16(f, 0), f.get(20..)) {
            (Some(proto), Some(rest)) => by_ethertype(proto, rest),
            _ => Frame::Truncated,
        },
        linktype::RAW => match f.first() {
            None => Frame::Truncated,
            Some(b) if b >> 4 == 4 => ipv4(f),
            Some(b) if b >> 4 == 6 => ipv6(f),
            Some(_) => Frame::Malformed,
        },
        linktype::IPV4 => ipv4(f),
        linktype::IPV6 => ipv6(f),
        linktype::NULL | linktype::LOOP => null(f),
        _ => Frame::UnsupportedLinkType,
    }
}

fn ethernet(f: &[u8]) -> Frame<'_> {
    let Some(mut ethertype) = be16(f, 12) else {
        return Frame::Truncated;
    };
    let mut off = 14;
    for _ in 0..MAX_CAPTURE_VLAN_TAGS {
        if !VLAN_TPIDS.contains(&ethertype) {
            break;
        }
        // Tag: TCI (2 bytes), then the next ethertype.
        let Some(next) = be16(f, off + 2) else {
            return Frame::Truncated;
        };
        ethertype = next;
        off += 4;
    }
    if VLAN_TPIDS.contains(&ethertype) {
        return Frame::Malformed;
    }
    match f.get(off..) {
        Some(rest) => by_ethertype(ethertype, rest),
        None => Frame::Truncated,
    }
}

fn by_ethertype(ethertype: u16, p: &[u8]) -> Frame<'_> {
    match ethertype {
        ETHERTYPE_IPV4 => ipv4(p),
        ETHERTYPE_IPV6 => ipv6(p),
        _ => Frame::NonUdp,
    }
}

/// BSD loopback: a 4-byte address family in the writer's byte order (NULL) or network order
/// (LOOP). We accept either order for both. IPv6 families: 24 (NetBSD/OpenBSD), 28 (FreeBSD),
/// 30 (macOS), 10 (Linux).
fn null(f: &[u8]) -> Frame<'_> {
    let (Some(head), Some(rest)) = (f.get(..4), f.get(4..)) else {
        return Frame::Truncated;
    };
    let h = [head[0], head[1], head[2], head[3]];
    let family = |v: u32| match v {
        2 => Some(4),
        10 | 24 | 28 | 30 => Some(6),
        _ => None,
    };
    match family(u32::from_le_bytes(h)).or(family(u32::from_be_bytes(h))) {
        Some(4) => ipv4(rest),
        Some(_) => ipv6(rest),
        None => Frame::NonUdp,
    }
}

fn ipv4(p: &[u8]) -> Frame<'_> {
    match p.first() {
        None => return Frame::Truncated,
        Some(b) if b >> 4 != 4 => return Frame::Malformed,
        Some(_) => {}
    }
    let Some(hdr) = p.get(..20) else {
        return Frame::Truncated;
    };
    let ihl = usize::from(hdr[0] & 0x0f) * 4;
    if ihl < 20 {
        return Frame::Malformed;
    }
    if p.len() < ihl {
        return Frame::Truncated;
    }
    let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
    // Total length 0 appears in captures of TSO/GSO packets: use what was captured. Otherwise
    // trim Ethernet padding and check the capture holds the whole packet.
    let end = if total == 0 {
        p.len()
    } else if total < ihl {
        return Frame::Malformed;
    } else if total > p.len() {
        return Frame::Truncated;
    } else {
        total
    };
    if hdr[9] != IPPROTO_UDP {
        return Frame::NonUdp;
    }
    // More-fragments flag or a non-zero fragment offset: part of a fragmented datagram.
    let flags_offset = u16::from_be_bytes([hdr[6], hdr[7]]);
    if flags_offset & 0x3fff != 0 {
        return Frame::Fragment;
    }
    let src = Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15]);
    let dst = Ipv4Addr::new(hdr[16], hdr[17], hdr[18], hdr[19]);
    match p.get(ihl..end) {
        Some(seg) => udp(seg, src.into(), dst.into()),
        None => Frame::Truncated,
    }
}

fn ipv6(p: &[u8]) -> Frame<'_> {
    match p.first() {
        None => return Frame::Truncated,
        Some(b) if b >> 4 != 6 => return Frame::Malformed,
        Some(_) => {}
    }
    let Some(hdr) = p.get(..40) else {
        return Frame::Truncated;
    };
    let payload_len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
    // Payload length 0: a jumbogram or a TSO capture; use what was captured.
    let end = if payload_len == 0 {
        p.len()
    } else if 40 + payload_len > p.len() {
        return Frame::Truncated;
    } else {
        40 + payload_len
    };
    let pkt = &p[..end];
    let addr = |b: &[u8]| {
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    let (src, dst) = (addr(&hdr[8..24]), addr(&hdr[24..40]));
    let mut next = hdr[6];
    let mut off = 40;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        let len = match next {
            IPPROTO_UDP => {
                return match pkt.get(off..) {
                    Some(seg) => udp(seg, src, dst),
                    None => Frame::Truncated,
                }
            }
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6, experimental:
            // length in 8-octet units, not counting the first 8.
            0 | 43 | 60 | 135 | 139 | 140 | 253 | 254 => match pkt.get(off + 1) {
                Some(&l) => (usize::from(l) + 1) * 8,
                None => return Frame::Truncated,
            },
            // Authentication header: length in 4-octet units, not counting the first 2.
            51 => match pkt.get(off + 1) {
                Some(&l) => (usize::from(l) + 2) * 4,
                None => return Frame::Truncated,
            },
            // Fragment header: fixed 8 bytes. An atomic fragment (offset 0, M clear) is a
            // whole packet; anything else is part of a fragmented one.
            44 => {
                let (Some(&nh), Some(fo)) = (pkt.get(off), be16(pkt, off + 2)) else {
                    return Frame::Truncated;
                };
                if fo & 0xfff9 != 0 {
                    return if nh == IPPROTO_UDP {
                        Frame::Fragment
                    } else {
                        Frame::NonUdp
                    };
                }
                8
            }
            // TCP, ICMPv6, ESP, no-next-header, ...
            _ => return Frame::NonUdp,
        };
        let Some(&nh) = pkt.get(off) else {
            return Frame::Truncated;
        };
        if pkt.len() < off + len {
            return Frame::Truncated;
        }
        next = nh;
        off += len;
    }
    Frame::Malformed
}

/// `seg` is the IP payload, already bounded by the IP length fields.
fn udp(seg: &[u8], src: IpAddr, dst: IpAddr) -> Frame<'_> {
    let Some(hdr) = seg.get(..8) else {
        return Frame::Truncated;
    };
    let sport = u16::from_be_bytes([hdr[0], hdr[1]]);
    let dport = u16::from_be_bytes([hdr[2], hdr[3]]);
    let len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
    // UDP length 0 (IPv6 jumbograms, TSO captures): the datagram is the rest of the IP payload.
    let end = match len {
        0 => seg.len(),
        1..=7 => return Frame::Malformed,
        l if l > seg.len() => return Frame::Malformed,
        l => l,
    };
    Frame::Udp {
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        payload: &seg[8..end],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp4(payload: &[u8]) -> Vec<u8> {
        let total = 20 + 8 + payload.len();
        let mut p = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            17,
            0,
            0,
            10,
            0,
            0,
            1,
            10,
            0,
            0,
            2,
        ];
        let ulen = 8 + payload.len();
        p.extend_from_slice(&[0x08, 0x07, 0x08, 0x08, (ulen >> 8) as u8, ulen as u8, 0, 0]);
        p.extend_from_slice(payload);
        p
    }

    fn eth(ethertype: u16, tags: &[u16], l3: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        for &tpid in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&[0x00, 0x64]);
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(l3);
        f
    }

    fn payload_of(fr: Frame<'_>) -> &[u8] {
        match fr {
            Frame::Udp { payload, .. } => payload,
            other => panic!("expected UDP, got {other:?}"),
        }
    }

    #[test]
    fn ethernet_ipv4_udp_with_padding() {
        let mut f = eth(ETHERTYPE_IPV4, &[], &udp4(b"hi"));
        f.extend_from_slice(&[0; 16]); // Ethernet padding to 60 bytes
        match parse(linktype::ETHERNET, &f) {
            Frame::Udp { src, dst, payload } => {
                assert_eq!(src, "10.0.0.1:2055".parse().unwrap());
                assert_eq!(dst, "10.0.0.2:2056".parse().unwrap());
                assert_eq!(payload, b"hi");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn vlan_and_qinq() {
        let ip = udp4(b"tagged");
        for tags in [&[0x8100][..], &[0x88a8, 0x8100], &[0x9100, 0x8100]] {
            let f = eth(ETHERTYPE_IPV4, tags, &ip);
            assert_eq!(payload_of(parse(linktype::ETHERNET, &f)), b"tagged");
        }
        let f = eth(ETHERTYPE_IPV4, &[0x8100; 9], &ip);
        assert_eq!(parse(linktype::ETHERNET, &f), Frame::Malformed);
    }

    #[test]
    fn fragments_are_counted_not_parsed() {
        let mut ip = udp4(b"frag");
        ip[6] = 0x20; // MF
        assert_eq!(parse(linktype::RAW, &ip), Frame::Fragment);
        ip[6] = 0x00;
        ip[7] = 0x10; // offset 16 * 8
        assert_eq!(parse(linktype::RAW, &ip), Frame::Fragment);
        ip[9] = 6; // TCP fragment: not UDP
        assert_eq!(parse(linktype::RAW, &ip), Frame::NonUdp);
    }

    #[test]
    fn truncation_and_malformed() {
        let ip = udp4(b"0123456789");
        assert_eq!(parse(linktype::RAW, &ip[..ip.len() - 1]), Frame::Truncated);
        assert_eq!(parse(linktype::RAW, &ip[..10]), Frame::Truncated);
        let mut bad = ip.clone();
        bad[25] = 4; // UDP length 4
        assert_eq!(parse(linktype::RAW, &bad), Frame::Malformed);
        let mut bad = ip.clone();
        bad[0] = 0x44; // IHL 4
        assert_eq!(parse(linktype::RAW, &bad), Frame::Malformed);
        assert_eq!(parse(linktype::IPV6, &ip), Frame::Malformed);
        assert_eq!(parse(linktype::IPV6, &[]), Frame::Truncated);
        assert_eq!(parse(147, &ip), Frame::UnsupportedLinkType);
        assert_eq!(parse(linktype::ETHERNET, &[0; 13]), Frame::Truncated);
    }

    #[test]
    fn ipv6_with_extension_headers() {
        let payload = b"v6!";
        // hop-by-hop (8) -> fragment, atomic (8) -> destination options (16) -> UDP
        let mut ext = vec![44, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&[17, 1]);
        ext.extend_from_slice(&[0; 14]);
        let ulen = 8 + payload.len();
        let plen = ext.len() + ulen;
        let mut p = vec![0x60, 0, 0, 0, (plen >> 8) as u8, plen as u8, 0, 64];
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        p.extend_from_slice(&[0; 11]);
        p.push(1);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        p.extend_from_slice(&[0; 11]);
        p.push(2);
        p.extend_from_slice(&ext);
        p.extend_from_slice(&[0x12, 0x34, 0x00, 0x35, 0, ulen as u8, 0, 0]);
        p.extend_from_slice(payload);
        match parse(linktype::IPV6, &p) {
            Frame::Udp { src, dst, payload } => {
                assert_eq!(src, "[2001:db8::1]:4660".parse().unwrap());
                assert_eq!(dst, "[2001:db8::2]:53".parse().unwrap());
                assert_eq!(payload, b"v6!");
            }
            other => panic!("{other:?}"),
        }
        // Non-atomic fragment with UDP next: counted as a fragment.
        let mut frag = p.clone();
        frag[40 + 8] = 17; // fragment header's next header = UDP
        frag[40 + 11] = 1; // M flag
        assert_eq!(parse(linktype::IPV6, &frag), Frame::Fragment);
        // Cut inside the destination options header.
        assert_eq!(parse(linktype::RAW, &p[..60]), Frame::Truncated);
        // ESP: not UDP.
        let mut esp = p.clone();
        esp[6] = 50;
        assert_eq!(parse(linktype::RAW, &esp), Frame::NonUdp);
    }

    #[test]
    fn sll_sll2_null_loop() {
        let ip = udp4(b"x");
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&ip);
        assert_eq!(payload_of(parse(linktype::LINUX_SLL, &sll)), b"x");
        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
        ];
        sll2.extend_from_slice(&ip);
        assert_eq!(payload_of(parse(linktype::LINUX_SLL2, &sll2)), b"x");
        for head in [[2, 0, 0, 0], [0, 0, 0, 2]] {
            let mut f = head.to_vec();
            f.extend_from_slice(&ip);
            assert_eq!(payload_of(parse(linktype::NULL, &f)), b"x");
            assert_eq!(payload_of(parse(linktype::LOOP, &f)), b"x");
        }
        assert_eq!(parse(linktype::NULL, &[7, 0, 0, 0, 0x45]), Frame::NonUdp);
        assert_eq!(parse(linktype::IPV4, &ip[..3]), Frame::Truncated);
    }
}
