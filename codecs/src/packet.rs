//! L2-L4 parsing of sampled packet headers: sFlow raw packet header records and IPFIX
//! `dataLinkFrameSection` / `ipHeaderPacketSection`.
//!
//! Sampled headers are cut at an arbitrary byte (128 bytes is the usual sFlow default), so the
//! parser is lax: it reads layer after layer and, when the buffer ends, returns what it found
//! so far with [`HeaderInfo::truncated`] set. Nothing here allocates or panics, whatever the
//! input.
//!
//! Layers understood: Ethernet II and 802.3 LLC/SNAP; 802.1Q / 802.1ad (QinQ) tags; PPPoE
//! session; MPLS label stacks followed by IPv4, IPv6 or a pseudowire control word and an
//! Ethernet frame (RFC 4385 / 4448); IPv4 with options and fragments; IPv6 with extension
//! headers; TCP, UDP, SCTP, ICMP and ICMPv6. Only the outermost IP header and its transport
//! header are reported: tunnels (GRE, VXLAN, IP-in-IP) are not entered.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bytes::{array, be16, be32};
use crate::record::MplsLabels;

/// EtherType values the parser follows.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ tag protocol identifiers.
    pub const QINQ_9100: u16 = 0x9100;
    pub const QINQ_9200: u16 = 0x9200;
    pub const MPLS_UNICAST: u16 = 0x8847;
    pub const MPLS_MULTICAST: u16 = 0x8848;
    pub const PPPOE_SESSION: u16 = 0x8864;
}

/// IP protocol numbers the parser reads a transport header for.
pub mod ip_proto {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const DEST_OPTIONS: u8 = 60;
    pub const SCTP: u8 = 132;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
}

/// VLAN tags read before giving up (a frame with more is not a real frame).
const MAX_VLAN_TAGS: usize = 8;
/// MPLS label stack entries read before giving up.
const MAX_MPLS_LABELS: usize = 16;
/// IPv6 extension headers skipped before giving up.
const MAX_IPV6_EXT_HEADERS: usize = 8;
/// Ethernet frames entered (outer + pseudowire payloads).
const MAX_ETHERNET_DEPTH: u8 = 3;

/// What a sampled header says, layer by layer. A field is `None` when its layer was absent or
/// cut off. L2 fields come from the outermost frame that has them; IP and transport fields from
/// the outermost IP header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderInfo {
    pub dst_mac: Option<[u8; 6]>,
    pub src_mac: Option<[u8; 6]>,
    /// VLAN id of the outermost 802.1Q / 802.1ad tag.
    pub vlan: Option<u16>,
    /// 802.1p priority of the outermost tag.
    pub vlan_priority: Option<u8>,
    /// VLAN id of the second tag of a QinQ stack.
    pub inner_vlan: Option<u16>,
    /// The EtherType after the VLAN tags (0x8847 for MPLS, 0x0800 for IPv4...).
    pub ethertype: Option<u16>,
    /// MPLS labels, outermost first.
    pub mpls: MplsLabels,
    pub ip_version: Option<u8>,
    pub src_addr: Option<IpAddr>,
    pub dst_addr: Option<IpAddr>,
    /// The upper-layer protocol: for IPv6, the next header after the extension headers.
    pub ip_protocol: Option<u8>,
    /// IPv4 TOS byte (DSCP + ECN) or IPv6 traffic class.
    pub tos: Option<u8>,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: Option<u8>,
    /// IPv6 flow label.
    pub flow_label: Option<u32>,
    /// IPv4 total length, or IPv6 payload length + 40.
    pub ip_length: Option<u32>,
    /// The packet is an IP fragment (first or later).
    pub is_fragment: bool,
    /// Fragment offset in 8-byte units (later fragments carry no transport header).
    pub fragment_offset: Option<u16>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    /// TCP flags: the 12 low bits of the data-offset/flags word (tshark's `tcp.flags`,
    /// IPFIX `tcpControlBits`).
    pub tcp_flags: Option<u16>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    /// The buffer ended inside a layer the parser had started to read.
    pub truncated: bool,
}

/// Parse an Ethernet frame (sFlow header_protocol 1, IPFIX dataLinkFrameSection).
pub fn parse_ethernet(buf: &[u8]) -> HeaderInfo {
    let mut h = HeaderInfo::default();
    h.ethernet(buf, 0);
    h
}

/// Parse a packet that starts with an IP header (sFlow header_protocol 11 / 12). `version` is 4
/// or 6; any other value means "look at the first nibble".
pub fn parse_ip(buf: &[u8], version: u8) -> HeaderInfo {
    let mut h = HeaderInfo::default();
    let version = match version {
        4 | 6 => version,
        _ => buf.first().map_or(0, |b| b >> 4),
    };
    match version {
        4 => h.ipv4(buf),
        6 => h.ipv6(buf),
        _ => h.truncated = buf.is_empty(),
    }
    h
}

/// Parse a packet that starts with an MPLS label stack (sFlow header_protocol 13).
pub fn parse_mpls(buf: &[u8]) -> HeaderInfo {
    let mut h = HeaderInfo::default();
    h.mpls(buf, 0);
    h
}

#[inline]
fn mac_at(b: &[u8], off: usize) -> Option<[u8; 6]> {
    array(b, off)
}

#[inline]
fn ipv4_at(b: &[u8], off: usize) -> Option<IpAddr> {
    be32(b, off).map(|v| IpAddr::V4(Ipv4Addr::from(v)))
}

#[inline]
fn ipv6_at(b: &[u8], off: usize) -> Option<IpAddr> {
    let s: [u8; 16] = array(b, off)?;
    Some(IpAddr::V6(Ipv6Addr::from(s)))
}

impl HeaderInfo {
    /// An Ethernet frame at `depth` (0 = outermost; deeper = pseudowire payloads).
    fn ethernet(&mut self, b: &[u8], depth: u8) {
        let (Some(dst), Some(src)) = (mac_at(b, 0), mac_at(b, 6)) else {
            self.truncated = true;
            return;
        };
        if self.dst_mac.is_none() {
            self.dst_mac = Some(dst);
            self.src_mac = Some(src);
        }
        let mut off = 12;
        let mut tags = 0;
        loop {
            let Some(et) = be16(b, off) else {
                self.truncated = true;
                return;
            };
            off += 2;
            match et {
                ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_9100 | ethertype::QINQ_9200
                    if tags < MAX_VLAN_TAGS =>
                {
                    let Some(tci) = be16(b, off) else {
                        self.truncated = true;
                        return;
                    };
                    off += 2;
                    tags += 1;
                    if self.vlan.is_none() {
                        self.vlan = Some(tci & 0x0fff);
                        self.vlan_priority = Some((tci >> 13) as u8);
                    } else if tags == 2 && self.inner_vlan.is_none() {
                        self.inner_vlan = Some(tci & 0x0fff);
                    }
                }
                _ => {
                    let rest = b.get(off..).unwrap_or_default();
                    self.ethertype_payload(et, rest, depth);
                    return;
                }
            }
        }
    }

    /// The payload of EtherType `et`.
    fn ethertype_payload(&mut self, et: u16, b: &[u8], depth: u8) {
        if self.ethertype.is_none() {
            self.ethertype = Some(et);
        }
        match et {
            ethertype::IPV4 => self.ipv4(b),
            ethertype::IPV6 => self.ipv6(b),
            ethertype::MPLS_UNICAST | ethertype::MPLS_MULTICAST => self.mpls(b, depth),
            ethertype::PPPOE_SESSION => {
                // version/type, code, session id, length, then the PPP protocol.
                match be16(b, 6) {
                    Some(0x0021) => self.ipv4(&b[8..]),
                    Some(0x0057) => self.ipv6(&b[8..]),
                    Some(_) => {}
                    None => self.truncated = true,
                }
            }
            // 802.3 length field: LLC, and SNAP carrying an EtherType.
            len if len < 0x0600 => {
                if b.len() < 3 {
                    self.truncated = true;
                } else if b[0] == 0xaa && b[1] == 0xaa && b[2] == 0x03 {
                    match be16(b, 6) {
                        Some(t) if t >= 0x0600 => {
                            self.ethertype = Some(t);
                            self.ethertype_payload(t, &b[8..], depth);
                        }
                        Some(_) => {}
                        None => self.truncated = true,
                    }
                }
            }
            _ => {}
        }
    }

    /// An MPLS label stack, then a guess at what follows the bottom of the stack: IPv4 (first
    /// nibble 4 and a sane header length), IPv6 (nibble 6), or a pseudowire control word
    /// (nibble 0) followed by an Ethernet frame.
    fn mpls(&mut self, b: &[u8], depth: u8) {
        let mut off = 0;
        let mut n = 0;
        loop {
            let Some(entry) = be32(b, off) else {
                self.truncated = true;
                return;
            };
            off += 4;
            n += 1;
            self.mpls.push(entry >> 12);
            if entry & 0x100 != 0 {
                break;
            }
            if n == MAX_MPLS_LABELS {
                return;
            }
        }
        let rest = &b[off..];
        let Some(&first) = rest.first() else {
            self.truncated = true;
            return;
        };
        match first >> 4 {
            4 if first & 0x0f >= 5 => self.ipv4(rest),
            6 => self.ipv6(rest),
            0 if depth + 1 < MAX_ETHERNET_DEPTH => match rest.get(4..) {
                Some(eth) => self.ethernet(eth, depth + 1),
                None => self.truncated = true,
            },
            _ => {}
        }
    }

    fn ipv4(&mut self, b: &[u8]) {
        if self.ip_version.is_some() {
            return;
        }
        let Some(&vihl) = b.first() else {
            self.truncated = true;
            return;
        };
        if vihl >> 4 != 4 {
            return;
        }
        self.ip_version = Some(4);
        self.tos = b.get(1).copied();
        self.ip_length = be16(b, 2).map(u32::from);
        self.ttl = b.get(8).copied();
        self.ip_protocol = b.get(9).copied();
        self.src_addr = ipv4_at(b, 12);
        self.dst_addr = ipv4_at(b, 16);
        let (Some(frag), Some(proto), true) = (be16(b, 6), b.get(9).copied(), b.len() >= 20) else {
            self.truncated = true;
            return;
        };
        let offset = frag & 0x1fff;
        let more_fragments = frag & 0x2000 != 0;
        if offset != 0 || more_fragments {
            self.is_fragment = true;
            self.fragment_offset = Some(offset);
        }
        let ihl = usize::from(vihl & 0x0f) * 4;
        if ihl < 20 || offset != 0 {
            return;
        }
        let Some(mut l4) = b.get(ihl..) else {
            self.truncated = true;
            return;
        };
        // Ethernet pads short frames: the transport header ends with the IP packet.
        let total = usize::from(be16(b, 2).unwrap_or(0));
        if total >= ihl && total < b.len() {
            l4 = &b[ihl..total];
        }
        self.transport(proto, l4);
    }

    fn ipv6(&mut self, b: &[u8]) {
        if self.ip_version.is_some() {
            return;
        }
        let Some(&v) = b.first() else {
            self.truncated = true;
            return;
        };
        if v >> 4 != 6 {
            return;
        }
        self.ip_version = Some(6);
        if let Some(w) = be32(b, 0) {
            self.tos = Some((w >> 20) as u8);
            self.flow_label = Some(w & 0x000f_ffff);
        }
        let payload_len = be16(b, 4);
        self.ip_length = payload_len.map(|l| u32::from(l) + 40);
        self.ip_protocol = b.get(6).copied();
        self.ttl = b.get(7).copied();
        self.src_addr = ipv6_at(b, 8);
        self.dst_addr = ipv6_at(b, 24);
        if b.len() < 40 {
            self.truncated = true;
            return;
        }
        // Bound the extension headers and transport header by the payload length (frames
        // are padded), unless it is 0 (jumbogram) or larger than what was sampled.
        let end = match payload_len {
            Some(l) if l != 0 && 40 + usize::from(l) < b.len() => 40 + usize::from(l),
            _ => b.len(),
        };
        let b = &b[..end];
        let mut next = b[6];
        let mut off = 40;
        for _ in 0..MAX_IPV6_EXT_HEADERS {
            let len = match next {
                ip_proto::HOP_BY_HOP
                | ip_proto::ROUTING
                | ip_proto::DEST_OPTIONS
                | ip_proto::MOBILITY
                | ip_proto::HIP
                | ip_proto::SHIM6 => b.get(off + 1).map(|&l| (usize::from(l) + 1) * 8),
                ip_proto::AH => b.get(off + 1).map(|&l| (usize::from(l) + 2) * 4),
                ip_proto::FRAGMENT => Some(8),
                _ => break,
            };
            let (Some(len), Some(&nh)) = (len, b.get(off)) else {
                self.ip_protocol = Some(next);
                self.truncated = true;
                return;
            };
            if next == ip_proto::FRAGMENT {
                let Some(fo) = be16(b, off + 2) else {
                    self.ip_protocol = Some(next);
                    self.truncated = true;
                    return;
                };
                self.is_fragment = true;
                self.fragment_offset = Some(fo >> 3);
                if fo >> 3 != 0 {
                    self.ip_protocol = Some(nh);
                    return;
                }
            }
            next = nh;
            off += len;
        }
        self.ip_protocol = Some(next);
        match b.get(off..) {
            Some(l4) => self.transport(next, l4),
            None => self.truncated = true,
        }
    }

    fn transport(&mut self, proto: u8, b: &[u8]) {
        match proto {
            ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP => {
                self.src_port = be16(b, 0);
                self.dst_port = be16(b, 2);
                let fixed = match proto {
                    ip_proto::TCP => {
                        self.tcp_flags = be16(b, 12).map(|w| w & 0x0fff);
                        20
                    }
                    ip_proto::UDP => 8,
                    _ => 12,
                };
                self.truncated |= b.len() < fixed;
            }
            ip_proto::ICMP | ip_proto::ICMPV6 => {
                self.icmp_type = b.first().copied();
                self.icmp_code = b.get(1).copied();
                self.truncated |= b.len() < 4;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const DST: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
    pub(crate) const SRC: [u8; 6] = [0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb];

    /// dst, src, then `rest` (which starts with the EtherType).
    fn eth(rest: &[u8]) -> Vec<u8> {
        let mut v = DST.to_vec();
        v.extend_from_slice(&SRC);
        v.extend_from_slice(rest);
        v
    }

    /// A 20-byte IPv4 header (+ options) for `proto` from 10.0.0.1 to 10.0.0.2.
    pub(crate) fn ipv4(proto: u8, tos: u8, frag: u16, options: &[u8], payload: &[u8]) -> Vec<u8> {
        let ihl = (20 + options.len()) / 4;
        let total = (20 + options.len() + payload.len()) as u16;
        let mut v = vec![0x40 | ihl as u8, tos];
        v.extend_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&[0x12, 0x34]);
        v.extend_from_slice(&frag.to_be_bytes());
        v.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        v.extend_from_slice(options);
        v.extend_from_slice(payload);
        v
    }

    /// A 40-byte IPv6 header (2001:db8::1 -> 2001:db8::2), then `rest` (extension headers and
    /// the transport header).
    pub(crate) fn ipv6(next: u8, tclass: u8, rest: &[u8]) -> Vec<u8> {
        let w: u32 = 6 << 28 | u32::from(tclass) << 20 | 0x12345;
        let mut v = w.to_be_bytes().to_vec();
        v.extend_from_slice(&(rest.len() as u16).to_be_bytes());
        v.extend_from_slice(&[next, 64]);
        let mut a = [0u8; 16];
        a[0..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a[15] = 1;
        v.extend_from_slice(&a);
        a[15] = 2;
        v.extend_from_slice(&a);
        v.extend_from_slice(rest);
        v
    }

    pub(crate) fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        v
    }

    pub(crate) fn udp(sport: u16, dport: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&[0, 8, 0, 0]);
        v
    }

    fn v4(a: [u8; 4]) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::from(a)))
    }

    fn v6(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let mut f = vec![0x08, 0x00];
        f.extend(ipv4(6, 0xb8, 0x4000, &[], &tcp(443, 51000, 0x18)));
        let h = parse_ethernet(&eth(&f));
        assert_eq!(h.dst_mac, Some(DST));
        assert_eq!(h.src_mac, Some(SRC));
        assert_eq!(h.vlan, None);
        assert_eq!(h.ethertype, Some(0x0800));
        assert_eq!(h.ip_version, Some(4));
        assert_eq!(h.src_addr, v4([10, 0, 0, 1]));
        assert_eq!(h.dst_addr, v4([10, 0, 0, 2]));
        assert_eq!(h.ip_protocol, Some(6));
        assert_eq!(h.tos, Some(0xb8));
        assert_eq!(h.ttl, Some(64));
        assert_eq!(h.src_port, Some(443));
        assert_eq!(h.dst_port, Some(51000));
        assert_eq!(h.tcp_flags, Some(0x18));
        assert!(!h.is_fragment);
        assert!(!h.truncated);
    }

    #[test]
    fn tcp_flags_include_ns_cwr_ece() {
        let mut t = tcp(1, 2, 0xc2);
        t[12] = 0x51; // data offset 5, NS bit
        let f = [&[0x08, 0x00][..], &ipv4(6, 0, 0, &[], &t)].concat();
        assert_eq!(parse_ethernet(&eth(&f)).tcp_flags, Some(0x1c2));
    }

    #[test]
    fn ipv4_options_are_skipped() {
        let f = [
            &[0x08, 0x00][..],
            &ipv4(17, 0, 0, &[1, 1, 1, 0, 0x94, 4, 0, 0], &udp(53, 5353)),
        ]
        .concat();
        let h = parse_ethernet(&eth(&f));
        assert_eq!(h.src_port, Some(53));
        assert_eq!(h.dst_port, Some(5353));
    }

    #[test]
    fn ipv4_fragments() {
        // first fragment: MF set, offset 0 -> transport parsed
        let f = [&[0x08, 0x00][..], &ipv4(17, 0, 0x2000, &[], &udp(1, 2))].concat();
        let h = parse_ethernet(&eth(&f));
        assert!(h.is_fragment);
        assert_eq!(h.fragment_offset, Some(0));
        assert_eq!(h.src_port, Some(1));
        // later fragment: no transport header
        let f = [&[0x08, 0x00][..], &ipv4(17, 0, 0x00b9, &[], &udp(1, 2))].concat();
        let h = parse_ethernet(&eth(&f));
        assert!(h.is_fragment);
        assert_eq!(h.fragment_offset, Some(0xb9));
        assert_eq!(h.ip_protocol, Some(17));
        assert_eq!(h.src_port, None);
        assert_eq!(h.dst_port, None);
    }

    #[test]
    fn qinq_and_single_tag() {
        let mut f = vec![0x88, 0xa8, 0x20, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x08, 0x00];
        f.extend(ipv4(1, 0, 0, &[], &[8, 0, 0, 0]));
        let h = parse_ethernet(&eth(&f));
        assert_eq!(h.vlan, Some(100));
        assert_eq!(h.vlan_priority, Some(1));
        assert_eq!(h.inner_vlan, Some(200));
        assert_eq!(h.ethertype, Some(0x0800));
        assert_eq!(h.icmp_type, Some(8));
        assert_eq!(h.icmp_code, Some(0));

        // 0x8100 / 0x8100 stacks (the akvorado QinQ capture)
        let f = [0x81, 0x00, 0x44, 0x26, 0x81, 0x00, 0x45, 0xd5, 0x86, 0xdd];
        let h = parse_ethernet(&eth(&f));
        assert_eq!(h.vlan, Some(1062));
        assert_eq!(h.inner_vlan, Some(1493));
        assert_eq!(h.ethertype, Some(0x86dd));
        assert_eq!(h.ip_version, None);
        assert!(h.truncated);
    }

    #[test]
    fn mpls_then_ipv4_and_ipv6() {
        // two labels: 16 (not bottom), 17 (bottom), then IPv4
        let mut f = vec![0x88, 0x47, 0x00, 0x01, 0x00, 0x40, 0x00, 0x01, 0x11, 0x40];
        f.extend(ipv4(17, 0, 0, &[], &udp(1000, 2000)));
        let h = parse_ethernet(&eth(&f));
        assert_eq!(h.mpls.as_slice(), &[16, 17]);
        assert_eq!(h.ethertype, Some(0x8847));
        assert_eq!(h.ip_version, Some(4));
        assert_eq!(h.dst_port, Some(2000));

        let mut f = vec![0x88, 0x47, 0xff, 0xff, 0xf1, 0x40];
        f.extend(ipv6(17, 0, &udp(7, 8)));
        let h = parse_ethernet(&eth(&f));
        assert_eq!(h.mpls.as_slice(), &[0xfffff]);
        assert_eq!(h.ip_version, Some(6));
        assert_eq!(h.src_port, Some(7));
    }

    #[test]
    fn mpls_control_word_then_ethernet() {
        let inner_dst = [0x02, 0, 0, 0, 0, 1];
        let inner_src = [0x02, 0, 0, 0, 0, 2];
        let mut f = vec![0x88, 0x47, 0x00, 0x01, 0x01, 0x40]; // label 16, bottom
        f.extend_from_slice(&[0, 0, 0, 0]); // control word
        f.extend_from_slice(&inner_dst);
        f.extend_from_slice(&inner_src);
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a, 0x08, 0x00]);
        f.extend(ipv4(6, 0, 0, &[], &tcp(22, 40000, 0x10)));
        let h = parse_ethernet(&eth(&f));
        assert_eq!(h.mpls.as_slice(), &[16]);
        // L2 from the outer frame, the inner tag is the first tag seen
        assert_eq!(h.dst_mac, Some(DST));
        assert_eq!(h.vlan, Some(10));
        assert_eq!(h.src_addr, v4([10, 0, 0, 1]));
        assert_eq!(h.src_port, Some(22));
        assert_eq!(h.tcp_flags, Some(0x10));
    }

    #[test]
    fn mpls_unknown_payload_stops() {
        let f = [0x88, 0x47, 0x00, 0x01, 0x01, 0x40, 0x95, 0, 0, 0];
        let h = parse_ethernet(&eth(&f));
        assert_eq!(h.mpls.as_slice(), &[16]);
        assert_eq!(h.ip_version, None);
        assert!(!h.truncated);
        // a stack with no bottom-of-stack bit, cut short
        let h = parse_ethernet(&eth(&[0x88, 0x47, 0, 1, 0, 0, 0, 2]));
        assert_eq!(h.mpls.as_slice(), &[16]);
        assert!(h.truncated);
        let h = parse_mpls(&[0x00, 0x01, 0x01, 0x40, 0x45]);
        assert_eq!(h.mpls.as_slice(), &[16]);
        assert_eq!(h.ip_version, Some(4));
        assert!(h.truncated);
    }

    #[test]
    fn ipv6_extension_headers() {
        // hop-by-hop (8 bytes) -> routing (24 bytes) -> dest options (16) -> TCP
        let mut ext = vec![43, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[60, 2, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&[0; 16]);
        ext.extend_from_slice(&[6, 1, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&[0; 8]);
        ext.extend(tcp(80, 1234, 0x12));
        let f = [&[0x86, 0xdd][..], &ipv6(0, 0xa0, &ext)].concat();
        let h = parse_ethernet(&eth(&f));
        assert_eq!(h.ip_version, Some(6));
        assert_eq!(h.tos, Some(0xa0));
        assert_eq!(h.flow_label, Some(0x12345));
        assert_eq!(h.ttl, Some(64));
        assert_eq!(h.src_addr, v6("2001:db8::1"));
        assert_eq!(h.dst_addr, v6("2001:db8::2"));
        assert_eq!(h.ip_protocol, Some(6));
        assert_eq!(h.src_port, Some(80));
        assert_eq!(h.tcp_flags, Some(0x12));
        assert!(!h.truncated);
    }

    #[test]
    fn ipv6_fragments() {
        let mut first = vec![17, 0, 0x00, 0x01, 0, 0, 0, 1]; // offset 0, M
        first.extend(udp(53, 99));
        let h = parse_ip(&ipv6(44, 0, &first), 6);
        assert!(h.is_fragment);
        assert_eq!(h.ip_protocol, Some(17));
        assert_eq!(h.src_port, Some(53));
        let later = [17, 0, 0x05, 0xa8, 0, 0, 0, 1, 0, 53, 0, 99];
        let h = parse_ip(&ipv6(44, 0, &later), 6);
        assert_eq!(h.fragment_offset, Some(0xb5));
        assert_eq!(h.ip_protocol, Some(17));
        assert_eq!(h.src_port, None);
    }

    #[test]
    fn ipv6_truncated_in_extension_chain() {
        let b = ipv6(0, 0, &[43]);
        let h = parse_ip(&b, 6);
        assert_eq!(h.ip_protocol, Some(0));
        assert!(h.truncated);
        assert_eq!(h.src_port, None);
    }

    #[test]
    fn icmp_and_icmpv6() {
        let h = parse_ip(&ipv4(1, 0, 0, &[], &[3, 13, 0, 0]), 4);
        assert_eq!((h.icmp_type, h.icmp_code), (Some(3), Some(13)));
        assert_eq!(h.src_port, None);
        let h = parse_ip(&ipv6(58, 0, &[135, 0, 0, 0]), 0);
        assert_eq!(h.ip_version, Some(6));
        assert_eq!(h.ip_protocol, Some(58));
        assert_eq!((h.icmp_type, h.icmp_code), (Some(135), Some(0)));
    }

    #[test]
    fn sctp_ports() {
        let h = parse_ip(
            &ipv4(132, 0, 0, &[], &[0x0b, 0x59, 0x0b, 0x5a, 0, 0, 0, 0]),
            4,
        );
        assert_eq!((h.src_port, h.dst_port), (Some(2905), Some(2906)));
    }

    #[test]
    fn ethernet_padding_is_not_read_as_transport() {
        // IPv4 total length 20: the header only; the rest of the frame is padding
        let mut ip = ipv4(6, 0, 0, &[], &[]);
        ip.extend_from_slice(&[0xaa; 26]);
        let f = [&[0x08, 0x00][..], &ip].concat();
        let h = parse_ethernet(&eth(&f));
        assert_eq!(h.ip_protocol, Some(6));
        assert_eq!(h.src_port, None);
        assert_eq!(h.tcp_flags, None);
    }

    #[test]
    fn llc_snap_and_pppoe() {
        let mut f = vec![0x00, 0x40, 0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
        f.extend(ipv4(17, 0, 0, &[], &udp(161, 162)));
        let h = parse_ethernet(&eth(&f));
        assert_eq!(h.ethertype, Some(0x0800));
        assert_eq!(h.dst_port, Some(162));

        let mut f = vec![0x88, 0x64, 0x11, 0x00, 0x00, 0x01, 0x00, 0x40, 0x00, 0x57];
        f.extend(ipv6(17, 0, &udp(546, 547)));
        let h = parse_ethernet(&eth(&f));
        assert_eq!(h.ip_version, Some(6));
        assert_eq!(h.dst_port, Some(547));
    }

    #[test]
    fn truncation_at_every_byte_never_panics_and_keeps_a_prefix() {
        let mut f = vec![0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0xc8];
        f.extend_from_slice(&[0x88, 0x47, 0x00, 0x01, 0x01, 0x40]);
        f.extend(ipv4(6, 4, 0, &[7, 3, 4, 0], &tcp(1, 2, 0x02)));
        let full = eth(&f);
        let whole = parse_ethernet(&full);
        assert!(!whole.truncated);
        assert_eq!(whole.tcp_flags, Some(2));
        for n in 0..full.len() {
            let h = parse_ethernet(&full[..n]);
            assert!(h.truncated, "cut at {n}");
            // every field found in the prefix agrees with the whole
            for (a, b) in [(h.src_port, whole.src_port), (h.dst_port, whole.dst_port)] {
                assert!(a.is_none() || a == b);
            }
            assert!(h.src_addr.is_none() || h.src_addr == whole.src_addr);
            assert!(h.vlan.is_none() || h.vlan == whole.vlan);
            assert!(h.mpls.as_slice().len() <= 1);
        }
        let mut v6 = vec![0x86, 0xdd];
        v6.extend(ipv6(
            0,
            0,
            &[17, 0, 1, 4, 0, 0, 0, 0, 0, 1, 0, 2, 0, 8, 0, 0],
        ));
        let full = eth(&v6);
        assert_eq!(parse_ethernet(&full).dst_port, Some(2));
        for n in 0..full.len() {
            let _ = parse_ethernet(&full[..n]);
        }
    }

    #[test]
    fn garbage_never_panics() {
        // a cheap deterministic fuzz: xorshift bytes, with interesting EtherTypes spliced in
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut buf = [0u8; 96];
        for i in 0..20_000 {
            for b in buf.iter_mut() {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                *b = s as u8;
            }
            let et: [u8; 2] = match i % 5 {
                0 => [0x08, 0x00],
                1 => [0x86, 0xdd],
                2 => [0x88, 0x47],
                3 => [0x81, 0x00],
                _ => [buf[12], buf[13]],
            };
            buf[12..14].copy_from_slice(&et);
            let n = (s as usize) % buf.len();
            let _ = parse_ethernet(&buf[..n]);
            let _ = parse_ip(&buf[14..n.max(14)], 0);
            let _ = parse_mpls(&buf[..n]);
        }
    }
}
