//! sFlow v5 encoder: an owned datagram (`DatagramRepr`) written to bytes by `emit`.
//!
//! Flow samples carry a raw packet header built here (Ethernet, optional 802.1Q tag, IPv4 or
//! IPv6, TCP / UDP / ICMP) and optionally the extended switch, router and gateway records;
//! counter samples carry generic interface and Ethernet counters. Compact and expanded sample
//! encodings are both written. Used by round-trip tests and by the traffic generator: `emit`
//! appends to the caller's buffer, so a generator can reuse one `Vec` for every datagram.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::sflow::records::{counter_format, flow_format, header_protocol};
use crate::sflow::sample_format;
pub use crate::sflow::{ExtendedRouter, ExtendedSwitch, Interface};

/// An sFlow v5 datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatagramRepr {
    /// `None`: address type 0 (unknown).
    pub agent: Option<IpAddr>,
    pub sub_agent_id: u32,
    pub sequence_number: u32,
    pub uptime_ms: u32,
    pub samples: Vec<SampleRepr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleRepr {
    Flow(FlowSampleRepr),
    Counters(CountersSampleRepr),
}

/// A flow sample (compact, or expanded when `expanded`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSampleRepr {
    pub expanded: bool,
    pub sequence_number: u32,
    /// Compact encoding: the low 8 bits are sent.
    pub source_id_type: u32,
    /// Compact encoding: the low 24 bits are sent.
    pub source_id_index: u32,
    pub sampling_rate: u32,
    pub sample_pool: u32,
    pub drops: u32,
    /// Compact encoding: format in 2 bits, value in 30 bits.
    pub input: Interface,
    pub output: Interface,
    pub header: Option<PacketRepr>,
    pub switch: Option<ExtendedSwitch>,
    pub router: Option<ExtendedRouter>,
    pub gateway: Option<GatewayRepr>,
}

/// Extended gateway data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GatewayRepr {
    pub next_hop: Option<IpAddr>,
    pub as_number: u32,
    pub src_as: u32,
    pub src_peer_as: u32,
    /// Segments: (1 AS_SET | 2 AS_SEQUENCE, AS numbers).
    pub dst_as_path: Vec<(u32, Vec<u32>)>,
    pub communities: Vec<u32>,
    pub local_pref: u32,
}

/// Source and destination addresses of a built packet (one family).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpPair {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

/// The transport header of a built packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportRepr {
    /// `flags`: the 12 flag bits (NS..FIN and the reserved bits).
    Tcp {
        src_port: u16,
        dst_port: u16,
        flags: u16,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    /// ICMP for IPv4, ICMPv6 for IPv6.
    Icmp {
        icmp_type: u8,
        code: u8,
    },
    /// Another protocol: 8 opaque bytes follow the IP header.
    Other {
        protocol: u8,
    },
}

impl TransportRepr {
    fn protocol(&self, v6: bool) -> u8 {
        match *self {
            TransportRepr::Tcp { .. } => 6,
            TransportRepr::Udp { .. } => 17,
            TransportRepr::Icmp { .. } => {
                if v6 {
                    58
                } else {
                    1
                }
            }
            TransportRepr::Other { protocol } => protocol,
        }
    }

    fn header_len(&self) -> usize {
        match self {
            TransportRepr::Tcp { .. } => 20,
            _ => 8,
        }
    }
}

/// A sampled packet, built as Ethernet / [802.1Q] / IPv4|IPv6 / transport, sent as a raw packet
/// header record (header_protocol 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketRepr {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// VLAN id of an 802.1Q tag (low 12 bits), with priority `vlan_priority`.
    pub vlan: Option<u16>,
    pub vlan_priority: u8,
    pub addrs: IpPair,
    /// IPv4 TOS / IPv6 traffic class.
    pub tos: u8,
    pub ttl: u8,
    pub transport: TransportRepr,
    /// Bytes after the transport header in the original packet (zeros here).
    pub payload_len: u16,
    /// How many bytes of the frame the agent copied (the sFlow default is 128).
    pub max_header_len: u32,
}

impl PacketRepr {
    fn l2_len(&self) -> usize {
        14 + if self.vlan.is_some() { 4 } else { 0 }
    }

    fn ip_header_len(&self) -> usize {
        match self.addrs {
            IpPair::V4(..) => 20,
            IpPair::V6(..) => 40,
        }
    }

    /// Length of the IP packet (capped to 65535 for IPv4).
    fn ip_len(&self) -> usize {
        let l = self.ip_header_len() + self.transport.header_len() + usize::from(self.payload_len);
        l.min(usize::from(u16::MAX))
    }

    /// The frame's length on the wire, FCS included (sFlow `frame_length`).
    pub fn frame_length(&self) -> u32 {
        (self.l2_len() + self.ip_len() + 4) as u32
    }

    /// Write the frame without its payload: Ethernet, tag, IP and transport headers.
    pub fn emit_headers(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.dst_mac);
        out.extend_from_slice(&self.src_mac);
        if let Some(v) = self.vlan {
            out.extend_from_slice(&0x8100u16.to_be_bytes());
            let tci = u16::from(self.vlan_priority & 7) << 13 | (v & 0x0fff);
            out.extend_from_slice(&tci.to_be_bytes());
        }
        let ip_len = self.ip_len();
        let l4_total = ip_len - self.ip_header_len();
        match self.addrs {
            IpPair::V4(s, d) => {
                out.extend_from_slice(&0x0800u16.to_be_bytes());
                out.extend_from_slice(&[0x45, self.tos]);
                out.extend_from_slice(&(ip_len as u16).to_be_bytes());
                out.extend_from_slice(&[0, 0, 0x40, 0]); // id, DF
                out.extend_from_slice(&[self.ttl, self.transport.protocol(false), 0, 0]);
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&d.octets());
            }
            IpPair::V6(s, d) => {
                out.extend_from_slice(&0x86ddu16.to_be_bytes());
                let w = 6u32 << 28 | u32::from(self.tos) << 20;
                out.extend_from_slice(&w.to_be_bytes());
                out.extend_from_slice(&(l4_total as u16).to_be_bytes());
                out.extend_from_slice(&[self.transport.protocol(true), self.ttl]);
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&d.octets());
            }
        }
        match self.transport {
            TransportRepr::Tcp {
                src_port,
                dst_port,
                flags,
            } => {
                out.extend_from_slice(&src_port.to_be_bytes());
                out.extend_from_slice(&dst_port.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]); // seq, ack
                out.extend_from_slice(&(0x5000 | (flags & 0x0fff)).to_be_bytes());
                out.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]); // window, checksum, urgent
            }
            TransportRepr::Udp { src_port, dst_port } => {
                out.extend_from_slice(&src_port.to_be_bytes());
                out.extend_from_slice(&dst_port.to_be_bytes());
                out.extend_from_slice(&(l4_total.min(usize::from(u16::MAX)) as u16).to_be_bytes());
                out.extend_from_slice(&[0, 0]);
            }
            TransportRepr::Icmp { icmp_type, code } => {
                out.extend_from_slice(&[icmp_type, code, 0, 0, 0, 0, 0, 0]);
            }
            TransportRepr::Other { .. } => out.extend_from_slice(&[0; 8]),
        }
    }
}

/// Generic interface counters (RFC 2233).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IfCountersRepr {
    pub if_index: u32,
    pub if_type: u32,
    pub if_speed: u64,
    pub if_direction: u32,
    pub if_status: u32,
    pub if_in_octets: u64,
    pub if_in_ucast_pkts: u32,
    pub if_in_multicast_pkts: u32,
    pub if_in_broadcast_pkts: u32,
    pub if_in_discards: u32,
    pub if_in_errors: u32,
    pub if_in_unknown_protos: u32,
    pub if_out_octets: u64,
    pub if_out_ucast_pkts: u32,
    pub if_out_multicast_pkts: u32,
    pub if_out_broadcast_pkts: u32,
    pub if_out_discards: u32,
    pub if_out_errors: u32,
    pub if_promiscuous_mode: u32,
}

/// A counters sample (compact, or expanded when `expanded`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountersSampleRepr {
    pub expanded: bool,
    pub sequence_number: u32,
    pub source_id_type: u32,
    pub source_id_index: u32,
    pub generic: Option<IfCountersRepr>,
    /// The 13 dot3Stats counters in RFC 2358 order.
    pub ethernet: Option<[u32; 13]>,
}

#[inline]
fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

#[inline]
fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_address(out: &mut Vec<u8>, a: Option<IpAddr>) {
    match a {
        None => put32(out, 0),
        Some(IpAddr::V4(a)) => {
            put32(out, 1);
            out.extend_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            put32(out, 2);
            out.extend_from_slice(&a.octets());
        }
    }
}

/// Write `data_format` and a length placeholder; returns where the length goes.
fn begin_item(out: &mut Vec<u8>, data_format: u32) -> usize {
    put32(out, data_format);
    let at = out.len();
    put32(out, 0);
    at
}

/// Patch the length written by `begin_item`.
fn end_item(out: &mut [u8], at: usize) {
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

impl DatagramRepr {
    /// Append the datagram to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        put32(out, crate::sflow::VERSION);
        put_address(out, self.agent);
        put32(out, self.sub_agent_id);
        put32(out, self.sequence_number);
        put32(out, self.uptime_ms);
        put32(out, self.samples.len() as u32);
        for s in &self.samples {
            match s {
                SampleRepr::Flow(f) => f.emit(out),
                SampleRepr::Counters(c) => c.emit(out),
            }
        }
    }

    /// The datagram as a new `Vec`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.emit(&mut v);
        v
    }
}

impl FlowSampleRepr {
    fn emit(&self, out: &mut Vec<u8>) {
        let fmt = if self.expanded {
            sample_format::EXPANDED_FLOW_SAMPLE
        } else {
            sample_format::FLOW_SAMPLE
        };
        let at = begin_item(out, fmt);
        put32(out, self.sequence_number);
        if self.expanded {
            put32(out, self.source_id_type);
            put32(out, self.source_id_index);
        } else {
            put32(
                out,
                (self.source_id_type & 0xff) << 24 | (self.source_id_index & 0x00ff_ffff),
            );
        }
        put32(out, self.sampling_rate);
        put32(out, self.sample_pool);
        put32(out, self.drops);
        for i in [self.input, self.output] {
            if self.expanded {
                put32(out, i.format);
                put32(out, i.value);
            } else {
                put32(out, (i.format & 3) << 30 | (i.value & 0x3fff_ffff));
            }
        }
        let n = u32::from(self.header.is_some())
            + u32::from(self.switch.is_some())
            + u32::from(self.router.is_some())
            + u32::from(self.gateway.is_some());
        put32(out, n);
        if let Some(p) = &self.header {
            let r = begin_item(out, flow_format::SAMPLED_HEADER);
            put32(out, header_protocol::ETHERNET);
            put32(out, p.frame_length());
            put32(out, 4); // the FCS
            let len_at = out.len();
            put32(out, 0);
            let start = out.len();
            p.emit_headers(out);
            // the first `max_header_len` bytes of the frame (FCS excluded), payload as zeros
            let frame = p.frame_length() as usize - 4;
            out.resize(start + frame.min(p.max_header_len as usize), 0);
            let hlen = out.len() - start;
            out[len_at..len_at + 4].copy_from_slice(&(hlen as u32).to_be_bytes());
            out.resize(out.len() + (4 - hlen % 4) % 4, 0);
            end_item(out, r);
        }
        if let Some(s) = &self.switch {
            let r = begin_item(out, flow_format::EXTENDED_SWITCH);
            for v in [s.src_vlan, s.src_priority, s.dst_vlan, s.dst_priority] {
                put32(out, v);
            }
            end_item(out, r);
        }
        if let Some(x) = &self.router {
            let r = begin_item(out, flow_format::EXTENDED_ROUTER);
            put_address(out, x.next_hop);
            put32(out, x.src_mask_len);
            put32(out, x.dst_mask_len);
            end_item(out, r);
        }
        if let Some(g) = &self.gateway {
            let r = begin_item(out, flow_format::EXTENDED_GATEWAY);
            put_address(out, g.next_hop);
            put32(out, g.as_number);
            put32(out, g.src_as);
            put32(out, g.src_peer_as);
            put32(out, g.dst_as_path.len() as u32);
            for (kind, ases) in &g.dst_as_path {
                put32(out, *kind);
                put32(out, ases.len() as u32);
                for &a in ases {
                    put32(out, a);
                }
            }
            put32(out, g.communities.len() as u32);
            for &c in &g.communities {
                put32(out, c);
            }
            put32(out, g.local_pref);
            end_item(out, r);
        }
        end_item(out, at);
    }
}

impl CountersSampleRepr {
    fn emit(&self, out: &mut Vec<u8>) {
        let fmt = if self.expanded {
            sample_format::EXPANDED_COUNTERS_SAMPLE
        } else {
            sample_format::COUNTERS_SAMPLE
        };
        let at = begin_item(out, fmt);
        put32(out, self.sequence_number);
        if self.expanded {
            put32(out, self.source_id_type);
            put32(out, self.source_id_index);
        } else {
            put32(
                out,
                (self.source_id_type & 0xff) << 24 | (self.source_id_index & 0x00ff_ffff),
            );
        }
        put32(
            out,
            u32::from(self.generic.is_some()) + u32::from(self.ethernet.is_some()),
        );
        if let Some(c) = &self.generic {
            let r = begin_item(out, counter_format::GENERIC_INTERFACE);
            put32(out, c.if_index);
            put32(out, c.if_type);
            put64(out, c.if_speed);
            put32(out, c.if_direction);
            put32(out, c.if_status);
            put64(out, c.if_in_octets);
            for v in [
                c.if_in_ucast_pkts,
                c.if_in_multicast_pkts,
                c.if_in_broadcast_pkts,
                c.if_in_discards,
                c.if_in_errors,
                c.if_in_unknown_protos,
            ] {
                put32(out, v);
            }
            put64(out, c.if_out_octets);
            for v in [
                c.if_out_ucast_pkts,
                c.if_out_multicast_pkts,
                c.if_out_broadcast_pkts,
                c.if_out_discards,
                c.if_out_errors,
                c.if_promiscuous_mode,
            ] {
                put32(out, v);
            }
            end_item(out, r);
        }
        if let Some(e) = &self.ethernet {
            let r = begin_item(out, counter_format::ETHERNET_INTERFACE);
            for &v in e {
                put32(out, v);
            }
            end_item(out, r);
        }
        end_item(out, at);
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;
    use crate::json::{encode, EncodeOptions};
    use crate::record::{FlowRecord, Raw, RecordKind, SamplingSource};
    use crate::stats::DecodeStats;

    fn arb_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|a| IpAddr::V4(a.into())),
            any::<[u8; 16]>().prop_map(|a| IpAddr::V6(a.into())),
        ]
    }

    fn arb_pair() -> impl Strategy<Value = IpPair> {
        prop_oneof![
            any::<([u8; 4], [u8; 4])>().prop_map(|(s, d)| IpPair::V4(s.into(), d.into())),
            any::<([u8; 16], [u8; 16])>().prop_map(|(s, d)| IpPair::V6(s.into(), d.into())),
        ]
    }

    fn arb_transport() -> impl Strategy<Value = TransportRepr> {
        prop_oneof![
            (any::<u16>(), any::<u16>(), 0u16..0x1000).prop_map(|(s, d, f)| TransportRepr::Tcp {
                src_port: s,
                dst_port: d,
                flags: f
            }),
            (any::<u16>(), any::<u16>()).prop_map(|(s, d)| TransportRepr::Udp {
                src_port: s,
                dst_port: d
            }),
            (any::<u8>(), any::<u8>()).prop_map(|(t, c)| TransportRepr::Icmp {
                icmp_type: t,
                code: c
            }),
            // not a protocol with ports, ICMP, or an IPv6 extension header
            any::<u8>()
                .prop_filter("plain protocol", |p| !matches!(
                    p,
                    0 | 1 | 6 | 17 | 43 | 44 | 51 | 58 | 60 | 132 | 135 | 139 | 140
                ))
                .prop_map(|p| TransportRepr::Other { protocol: p }),
        ]
    }

    prop_compose! {
        fn arb_packet(max_header: std::ops::RangeInclusive<u32>)(
            src_mac in any::<[u8; 6]>(),
            dst_mac in any::<[u8; 6]>(),
            vlan in proptest::option::of(0u16..4096),
            vlan_priority in 0u8..8,
            addrs in arb_pair(),
            tos in any::<u8>(),
            ttl in any::<u8>(),
            transport in arb_transport(),
            payload_len in 0u16..1500,
            max_header_len in max_header,
        ) -> PacketRepr {
            PacketRepr { src_mac, dst_mac, vlan, vlan_priority, addrs, tos, ttl, transport, payload_len, max_header_len }
        }
    }

    fn arb_interface(expanded: bool) -> impl Strategy<Value = Interface> {
        let value = if expanded {
            any::<u32>().boxed()
        } else {
            (0u32..0x4000_0000).boxed()
        };
        (0u32..3, value).prop_map(|(format, value)| Interface { format, value })
    }

    fn arb_gateway() -> impl Strategy<Value = GatewayRepr> {
        (
            proptest::option::of(arb_ip()),
            any::<(u32, u32, u32, u32)>(),
            vec((1u32..=2, vec(any::<u32>(), 0..5)), 0..4),
            vec(any::<u32>(), 0..4),
        )
            .prop_map(|(next_hop, (a, s, p, l), path, communities)| GatewayRepr {
                next_hop,
                as_number: a,
                src_as: s,
                src_peer_as: p,
                dst_as_path: path,
                communities,
                local_pref: l,
            })
    }

    fn arb_flow(
        max_header: std::ops::RangeInclusive<u32>,
    ) -> impl Strategy<Value = FlowSampleRepr> {
        any::<bool>().prop_flat_map(move |expanded| {
            (
                any::<(u32, u32, u32, u32, u32, u32)>(),
                arb_interface(expanded),
                arb_interface(expanded),
                proptest::option::of(arb_packet(max_header.clone())),
                proptest::option::of(any::<[u32; 4]>()),
                proptest::option::of((proptest::option::of(arb_ip()), any::<u32>(), any::<u32>())),
                proptest::option::of(arb_gateway()),
            )
                .prop_map(
                    move |(
                        (seq, st, si, rate, pool, drops),
                        input,
                        output,
                        header,
                        sw,
                        rt,
                        gateway,
                    )| {
                        FlowSampleRepr {
                            expanded,
                            sequence_number: seq,
                            source_id_type: if expanded { st } else { st & 0xff },
                            source_id_index: if expanded { si } else { si & 0xff_ffff },
                            sampling_rate: rate,
                            sample_pool: pool,
                            drops,
                            input,
                            output,
                            header,
                            switch: sw.map(|[a, b, c, d]| ExtendedSwitch {
                                src_vlan: a % 5000,
                                src_priority: b,
                                dst_vlan: c,
                                dst_priority: d,
                            }),
                            router: rt.map(|(next_hop, s, d)| ExtendedRouter {
                                next_hop,
                                src_mask_len: s % 140,
                                dst_mask_len: d,
                            }),
                            gateway,
                        }
                    },
                )
        })
    }

    fn arb_counters() -> impl Strategy<Value = CountersSampleRepr> {
        (
            any::<bool>(),
            any::<(u32, u32, u32)>(),
            proptest::option::of(any::<[u64; 19]>()),
            proptest::option::of(any::<[u32; 13]>()),
        )
            .prop_map(
                |(expanded, (seq, st, si), g, ethernet)| CountersSampleRepr {
                    expanded,
                    sequence_number: seq,
                    source_id_type: if expanded { st } else { st & 0xff },
                    source_id_index: if expanded { si } else { si & 0xff_ffff },
                    generic: g.map(|c| IfCountersRepr {
                        if_index: c[0] as u32,
                        if_type: c[1] as u32,
                        if_speed: c[2],
                        if_direction: c[3] as u32,
                        if_status: c[4] as u32,
                        if_in_octets: c[5],
                        if_in_ucast_pkts: c[6] as u32,
                        if_in_multicast_pkts: c[7] as u32,
                        if_in_broadcast_pkts: c[8] as u32,
                        if_in_discards: c[9] as u32,
                        if_in_errors: c[10] as u32,
                        if_in_unknown_protos: c[11] as u32,
                        if_out_octets: c[12],
                        if_out_ucast_pkts: c[13] as u32,
                        if_out_multicast_pkts: c[14] as u32,
                        if_out_broadcast_pkts: c[15] as u32,
                        if_out_discards: c[16] as u32,
                        if_out_errors: c[17] as u32,
                        if_promiscuous_mode: c[18] as u32,
                    }),
                    ethernet,
                },
            )
    }

    fn arb_datagram(
        max_header: std::ops::RangeInclusive<u32>,
    ) -> impl Strategy<Value = DatagramRepr> {
        (
            proptest::option::of(arb_ip()),
            any::<(u32, u32, u32)>(),
            vec(
                prop_oneof![
                    arb_flow(max_header).prop_map(SampleRepr::Flow),
                    arb_counters().prop_map(SampleRepr::Counters),
                ],
                0..6,
            ),
        )
            .prop_map(|(agent, (sub, seq, up), samples)| DatagramRepr {
                agent,
                sub_agent_id: sub,
                sequence_number: seq,
                uptime_ms: up,
                samples,
            })
    }

    fn decode_all(buf: &[u8]) -> (Vec<FlowRecord<'_>>, DecodeStats) {
        let mut v = Vec::new();
        let mut st = DecodeStats::default();
        let exporter: SocketAddr = "192.0.2.9:6343".parse().unwrap();
        crate::sflow::decode(exporter, buf, &mut st, &mut |r| v.push(*r)).unwrap();
        (v, st)
    }

    fn doc(r: &FlowRecord<'_>) -> serde_json::Value {
        let mut b = Vec::new();
        encode(r, &EncodeOptions::default(), &mut b);
        serde_json::from_slice(&b).unwrap()
    }

    /// What the decoder must find for a packet header of `p`, when nothing is cut.
    fn check_packet(r: &FlowRecord<'_>, p: &PacketRepr, full: bool) {
        // `full`: every header is in the sampled bytes; otherwise a field is absent or right.
        fn eq<T: PartialEq + std::fmt::Debug>(
            got: Option<T>,
            want: Option<T>,
            full: bool,
            what: &str,
        ) {
            if full || got.is_some() {
                assert_eq!(got, want, "{what}");
            }
        }
        assert_eq!(r.bytes, Some(u64::from(p.frame_length())));
        eq(r.src_mac, Some(p.src_mac), full, "src_mac");
        eq(r.dst_mac, Some(p.dst_mac), full, "dst_mac");
        eq(r.vlan, p.vlan, full, "vlan");
        let (v6, src, dst) = match p.addrs {
            IpPair::V4(s, d) => (false, IpAddr::V4(s), IpAddr::V4(d)),
            IpPair::V6(s, d) => (true, IpAddr::V6(s), IpAddr::V6(d)),
        };
        eq(
            r.ip_version,
            Some(if v6 { 6 } else { 4 }),
            full,
            "ip_version",
        );
        eq(r.src_addr, Some(src), full, "src_addr");
        eq(r.dst_addr, Some(dst), full, "dst_addr");
        eq(
            r.ip_protocol,
            Some(p.transport.protocol(v6)),
            full,
            "protocol",
        );
        eq(r.tos, Some(p.tos), full, "tos");
        let (ports, flags, icmp) = match p.transport {
            TransportRepr::Tcp {
                src_port,
                dst_port,
                flags,
            } => (Some((src_port, dst_port)), Some(flags), None),
            TransportRepr::Udp { src_port, dst_port } => (Some((src_port, dst_port)), None, None),
            TransportRepr::Icmp { icmp_type, code } => (None, None, Some((icmp_type, code))),
            TransportRepr::Other { .. } => (None, None, None),
        };
        eq(r.src_port, ports.map(|p| p.0), full, "src_port");
        eq(r.dst_port, ports.map(|p| p.1), full, "dst_port");
        eq(r.tcp_flags, flags, full, "tcp_flags");
        eq(r.icmp_type, icmp.map(|i| i.0), full, "icmp_type");
        eq(r.icmp_code, icmp.map(|i| i.1), full, "icmp_code");
    }

    fn check(d: &DatagramRepr, full_headers: bool) {
        let buf = d.to_bytes();
        let (recs, st) = decode_all(&buf);
        assert_eq!(st.errors_total(), 0);
        assert_eq!(recs.len(), d.samples.len());
        for (r, s) in recs.iter().zip(&d.samples) {
            assert_eq!(r.agent, d.agent);
            assert_eq!(r.domain, Some(d.sub_agent_id));
            assert_eq!(r.sequence, Some(d.sequence_number));
            let j = doc(r);
            let sj = &j["sflow"];
            assert_eq!(sj["uptime_ms"], d.uptime_ms);
            match s {
                SampleRepr::Flow(f) => {
                    assert_eq!(r.kind, RecordKind::Flow);
                    assert_eq!(sj["sample_sequence"], f.sequence_number);
                    assert_eq!(sj["source_id_type"], f.source_id_type);
                    assert_eq!(sj["source_id_index"], f.source_id_index);
                    assert_eq!(sj["sample_pool"], f.sample_pool);
                    assert_eq!(sj["drops"], f.drops);
                    assert_eq!(
                        r.sampling_rate,
                        (f.sampling_rate > 0).then_some(f.sampling_rate)
                    );
                    if f.sampling_rate > 0 {
                        assert_eq!(r.sampling_source, Some(SamplingSource::Sflow));
                    }
                    assert_eq!(r.in_if, (f.input.format == 0).then_some(f.input.value));
                    assert_eq!(r.out_if, (f.output.format == 0).then_some(f.output.value));
                    assert_eq!(sj["output_interface_format"], f.output.format);
                    assert_eq!(sj["output_interface_value"], f.output.value);
                    assert_eq!(r.packets, Some(1));
                    match &f.header {
                        Some(p) => {
                            check_packet(r, p, full_headers);
                            assert_eq!(sj["frame_length"], p.frame_length());
                        }
                        None => {
                            assert_eq!(r.bytes, None);
                            assert_eq!(r.src_addr, None);
                        }
                    }
                    let sw = f.switch.as_ref();
                    assert_eq!(
                        r.src_vlan,
                        sw.and_then(|s| (s.src_vlan < 4096).then_some(s.src_vlan as u16))
                    );
                    assert_eq!(
                        r.dst_vlan,
                        sw.and_then(|s| (s.dst_vlan < 4096).then_some(s.dst_vlan as u16))
                    );
                    let rt = f.router.as_ref();
                    let g = f.gateway.as_ref();
                    assert_eq!(
                        r.src_mask,
                        rt.and_then(|x| (x.src_mask_len <= 128).then_some(x.src_mask_len as u8))
                    );
                    assert_eq!(
                        r.dst_mask,
                        rt.and_then(|x| (x.dst_mask_len <= 128).then_some(x.dst_mask_len as u8))
                    );
                    let router_hop = rt.and_then(|x| x.next_hop);
                    assert_eq!(r.next_hop, router_hop.or(g.and_then(|g| g.next_hop)));
                    assert_eq!(r.bgp_next_hop, g.and_then(|g| g.next_hop));
                    assert_eq!(r.src_as, g.map(|g| g.src_as));
                    let path: Vec<u32> = g
                        .map(|g| g.dst_as_path.iter().flat_map(|(_, a)| a.clone()).collect())
                        .unwrap_or_default();
                    assert_eq!(r.dst_as, path.last().copied());
                    if let Some(g) = g {
                        assert_eq!(sj["dst_as_path"], serde_json::json!(path));
                        assert_eq!(sj["communities"], serde_json::json!(g.communities));
                        assert_eq!(sj["router_as"], g.as_number);
                        assert_eq!(sj["local_pref"], g.local_pref);
                    }
                }
                SampleRepr::Counters(c) => {
                    assert_eq!(r.kind, RecordKind::Counters);
                    assert_eq!(sj["sample_sequence"], c.sequence_number);
                    let want_if = c
                        .generic
                        .map(|g| g.if_index)
                        .or((c.source_id_type == 0).then_some(c.source_id_index));
                    assert_eq!(r.in_if, want_if);
                    if let Some(g) = &c.generic {
                        assert_eq!(sj["if_speed"], g.if_speed);
                        assert_eq!(sj["if_in_octets"], g.if_in_octets);
                        assert_eq!(sj["if_out_octets"], g.if_out_octets);
                        assert_eq!(sj["if_in_unknown_protos"], g.if_in_unknown_protos);
                        assert_eq!(sj["if_promiscuous_mode"], g.if_promiscuous_mode);
                    }
                    if let Some(e) = &c.ethernet {
                        assert_eq!(sj["dot3_stats_alignment_errors"], e[0]);
                        assert_eq!(sj["dot3_stats_symbol_errors"], e[12]);
                    }
                }
            }
            assert!(matches!(r.raw, Raw::Sflow(_)));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn round_trip(d in arb_datagram(128..=256)) {
            check(&d, true);
        }

        #[test]
        fn round_trip_with_short_headers(d in arb_datagram(0..=80)) {
            check(&d, false);
        }

        #[test]
        fn cut_datagrams_never_panic(d in arb_datagram(0..=160), cut in any::<prop::sample::Index>()) {
            let buf = d.to_bytes();
            let n = cut.index(buf.len() + 1);
            let mut st = DecodeStats::default();
            let _ = crate::sflow::decode("192.0.2.9:6343".parse().unwrap(), &buf[..n], &mut st, &mut |r| {
                let _ = doc(r);
            });
        }
    }

    #[test]
    fn header_bytes_are_padded_and_capped() {
        let p = PacketRepr {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            vlan: Some(7),
            vlan_priority: 5,
            addrs: IpPair::V4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)),
            tos: 0,
            ttl: 64,
            transport: TransportRepr::Udp {
                src_port: 1,
                dst_port: 2,
            },
            payload_len: 3,
            max_header_len: 128,
        };
        assert_eq!(p.frame_length(), 18 + 20 + 8 + 3 + 4);
        let d = DatagramRepr {
            agent: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            sub_agent_id: 0,
            sequence_number: 1,
            uptime_ms: 0,
            samples: vec![SampleRepr::Flow(FlowSampleRepr {
                expanded: false,
                sequence_number: 1,
                source_id_type: 0,
                source_id_index: 1,
                sampling_rate: 1,
                sample_pool: 1,
                drops: 0,
                input: Interface {
                    format: 0,
                    value: 1,
                },
                output: Interface {
                    format: 0,
                    value: 2,
                },
                header: Some(p),
                switch: None,
                router: None,
                gateway: None,
            })],
        };
        let b = d.to_bytes();
        // 28 datagram header + 8 sample header + 32 sample fields + 8 record header
        // + 16 record fields + 49 header bytes + 3 padding
        assert_eq!(b.len(), 28 + 8 + 32 + 8 + 16 + 49 + 3);
        let (recs, st) = decode_all(&b);
        assert_eq!(st.errors_total(), 0);
        assert_eq!(recs[0].vlan, Some(7));
        assert_eq!(recs[0].dst_port, Some(2));
        assert_eq!(doc(&recs[0])["sflow"]["header_length"], 49);
    }
}
