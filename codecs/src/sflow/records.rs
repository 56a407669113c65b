//! Flow records (`flow_data`) and counter records (`counter_data`) of sFlow v5 samples.
//!
//! Each record is parsed from the bytes of its declared length: fixed-size records become small
//! `Copy` structs of numbers; variable parts (the sampled header, AS paths, unknown records)
//! stay `&'a [u8]` views into the datagram.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bytes::be32;
use crate::error::DecodeError;

use super::xdr::Reader;

/// `data_format` numbers (enterprise 0) of the flow records decoded here.
pub mod flow_format {
    pub const SAMPLED_HEADER: u32 = 1;
    pub const SAMPLED_ETHERNET: u32 = 2;
    pub const SAMPLED_IPV4: u32 = 3;
    pub const SAMPLED_IPV6: u32 = 4;
    pub const EXTENDED_SWITCH: u32 = 1001;
    pub const EXTENDED_ROUTER: u32 = 1002;
    pub const EXTENDED_GATEWAY: u32 = 1003;
}

/// `data_format` numbers (enterprise 0) of the counter records decoded here.
pub mod counter_format {
    pub const GENERIC_INTERFACE: u32 = 1;
    pub const ETHERNET_INTERFACE: u32 = 2;
}

/// `header_protocol` values of the sampled header record.
pub mod header_protocol {
    pub const ETHERNET: u32 = 1;
    pub const IPV4: u32 = 11;
    pub const IPV6: u32 = 12;
    pub const MPLS: u32 = 13;
}

/// A flow or counter record: its `data_format` and the bytes of its declared length.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub(crate) data_format: u32,
    pub(crate) data: &'a [u8],
    /// Offset of `data` in the datagram.
    pub(crate) offset: usize,
}

impl<'a> Record<'a> {
    /// SMI private enterprise number (0: sflow.org).
    pub fn enterprise(&self) -> u32 {
        self.data_format >> 12
    }
    pub fn format(&self) -> u32 {
        self.data_format & 0xfff
    }
    pub fn data_format(&self) -> u32 {
        self.data_format
    }
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    fn reader(&self) -> Reader<'a> {
        Reader::new(self.data, self.offset)
    }

    /// Parse as a flow record. Unknown formats are not an error.
    pub fn flow_data(&self) -> Result<FlowData<'a>, DecodeError> {
        use flow_format::*;
        let r = self.reader();
        Ok(match self.data_format {
            SAMPLED_HEADER => FlowData::SampledHeader(SampledHeader::parse(r)?),
            SAMPLED_ETHERNET => FlowData::SampledEthernet(SampledEthernet::parse(r)?),
            SAMPLED_IPV4 => FlowData::SampledIpv4(SampledIp::parse_v4(r)?),
            SAMPLED_IPV6 => FlowData::SampledIpv6(SampledIp::parse_v6(r)?),
            EXTENDED_SWITCH => FlowData::ExtendedSwitch(ExtendedSwitch::parse(r)?),
            EXTENDED_ROUTER => FlowData::ExtendedRouter(ExtendedRouter::parse(r)?),
            EXTENDED_GATEWAY => FlowData::ExtendedGateway(ExtendedGateway::parse(r)?),
            _ => FlowData::Unknown(*self),
        })
    }

    /// Parse as a counter record. Unknown formats are not an error.
    pub fn counter_data(&self) -> Result<CounterData<'a>, DecodeError> {
        Ok(match self.data_format {
            counter_format::GENERIC_INTERFACE => CounterData::Generic(Counters::check(
                self,
                "sflow generic interface counters",
                IF_COUNTERS_LEN,
            )?),
            counter_format::ETHERNET_INTERFACE => CounterData::Ethernet(Counters::check(
                self,
                "sflow ethernet counters",
                ETHERNET_COUNTERS_LEN,
            )?),
            _ => CounterData::Unknown(*self),
        })
    }
}

/// A decoded flow record.
#[derive(Debug, Clone, Copy)]
pub enum FlowData<'a> {
    SampledHeader(SampledHeader<'a>),
    SampledEthernet(SampledEthernet),
    SampledIpv4(SampledIp),
    SampledIpv6(SampledIp),
    ExtendedSwitch(ExtendedSwitch),
    ExtendedRouter(ExtendedRouter),
    ExtendedGateway(ExtendedGateway<'a>),
    Unknown(Record<'a>),
}

/// Raw packet header (format 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampledHeader<'a> {
    pub header_protocol: u32,
    /// Length of the packet on the wire, before sampling.
    pub frame_length: u32,
    /// Bytes removed before the header was taken (FCS, stripped encapsulations).
    pub stripped: u32,
    pub header: &'a [u8],
}

impl<'a> SampledHeader<'a> {
    fn parse(mut r: Reader<'a>) -> Result<Self, DecodeError> {
        const W: &str = "sflow sampled header";
        Ok(SampledHeader {
            header_protocol: r.u32(W)?,
            frame_length: r.u32(W)?,
            stripped: r.u32(W)?,
            header: r.opaque(W)?,
        })
    }

    /// L2-L4 fields of the header (Ethernet, IPv4, IPv6, MPLS; `None` for other protocols).
    pub fn parse_packet(&self) -> Option<crate::packet::HeaderInfo> {
        Some(match self.header_protocol {
            header_protocol::ETHERNET => crate::packet::parse_ethernet(self.header),
            header_protocol::IPV4 => crate::packet::parse_ip(self.header, 4),
            header_protocol::IPV6 => crate::packet::parse_ip(self.header, 6),
            header_protocol::MPLS => crate::packet::parse_mpls(self.header),
            _ => return None,
        })
    }
}

/// Ethernet frame data (format 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampledEthernet {
    pub length: u32,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub eth_type: u32,
}

fn mac(r: &mut Reader<'_>, what: &'static str) -> Result<[u8; 6], DecodeError> {
    // XDR `opaque mac[6]`: six bytes and two of padding.
    let s = r.bytes(8, what)?;
    Ok([s[0], s[1], s[2], s[3], s[4], s[5]])
}

impl SampledEthernet {
    fn parse(mut r: Reader<'_>) -> Result<Self, DecodeError> {
        const W: &str = "sflow ethernet frame data";
        Ok(SampledEthernet {
            length: r.u32(W)?,
            src_mac: mac(&mut r, W)?,
            dst_mac: mac(&mut r, W)?,
            eth_type: r.u32(W)?,
        })
    }
}

/// IPv4 data (format 3) or IPv6 data (format 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampledIp {
    /// Length of the IP packet.
    pub length: u32,
    pub protocol: u32,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub src_port: u32,
    pub dst_port: u32,
    pub tcp_flags: u32,
    /// IPv4 TOS / IPv6 priority.
    pub tos: u32,
}

impl SampledIp {
    fn parse_v4(mut r: Reader<'_>) -> Result<Self, DecodeError> {
        const W: &str = "sflow ipv4 data";
        let length = r.u32(W)?;
        let protocol = r.u32(W)?;
        let src_ip = IpAddr::V4(Ipv4Addr::from(r.u32(W)?));
        let dst_ip = IpAddr::V4(Ipv4Addr::from(r.u32(W)?));
        Self::ports(r, W, length, protocol, src_ip, dst_ip)
    }

    fn parse_v6(mut r: Reader<'_>) -> Result<Self, DecodeError> {
        const W: &str = "sflow ipv6 data";
        let length = r.u32(W)?;
        let protocol = r.u32(W)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(r.bytes(16, W)?);
        let src_ip = IpAddr::V6(Ipv6Addr::from(a));
        a.copy_from_slice(r.bytes(16, W)?);
        let dst_ip = IpAddr::V6(Ipv6Addr::from(a));
        Self::ports(r, W, length, protocol, src_ip, dst_ip)
    }

    fn ports(
        mut r: Reader<'_>,
        w: &'static str,
        length: u32,
        protocol: u32,
        src_ip: IpAddr,
        dst_ip: IpAddr,
    ) -> Result<Self, DecodeError> {
        Ok(SampledIp {
            length,
            protocol,
            src_ip,
            dst_ip,
            src_port: r.u32(w)?,
            dst_port: r.u32(w)?,
            tcp_flags: r.u32(w)?,
            tos: r.u32(w)?,
        })
    }
}

/// Extended switch data (format 1001).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendedSwitch {
    pub src_vlan: u32,
    pub src_priority: u32,
    pub dst_vlan: u32,
    pub dst_priority: u32,
}

impl ExtendedSwitch {
    fn parse(mut r: Reader<'_>) -> Result<Self, DecodeError> {
        const W: &str = "sflow extended switch";
        Ok(ExtendedSwitch {
            src_vlan: r.u32(W)?,
            src_priority: r.u32(W)?,
            dst_vlan: r.u32(W)?,
            dst_priority: r.u32(W)?,
        })
    }
}

/// Extended router data (format 1002).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendedRouter {
    pub next_hop: Option<IpAddr>,
    pub src_mask_len: u32,
    pub dst_mask_len: u32,
}

impl ExtendedRouter {
    fn parse(mut r: Reader<'_>) -> Result<Self, DecodeError> {
        const W: &str = "sflow extended router";
        Ok(ExtendedRouter {
            next_hop: r.address(W)?,
            src_mask_len: r.u32(W)?,
            dst_mask_len: r.u32(W)?,
        })
    }
}

/// Extended gateway data (format 1003): BGP information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendedGateway<'a> {
    /// The BGP next hop.
    pub next_hop: Option<IpAddr>,
    /// AS of the router.
    pub as_number: u32,
    pub src_as: u32,
    pub src_peer_as: u32,
    /// The `dst_as_path` segments as they are on the wire, already checked.
    path: &'a [u8],
    /// The community words.
    communities: &'a [u8],
    /// Absent in some agents' encodings.
    pub local_pref: Option<u32>,
}

impl<'a> ExtendedGateway<'a> {
    fn parse(mut r: Reader<'a>) -> Result<Self, DecodeError> {
        const W: &str = "sflow extended gateway";
        let next_hop = r.address(W)?;
        let as_number = r.u32(W)?;
        let src_as = r.u32(W)?;
        let src_peer_as = r.u32(W)?;
        let path_start = r;
        let segments = r.count(8, W)?;
        for _ in 0..segments {
            let _segment_type = r.u32(W)?;
            let n = r.count(4, W)?;
            r.bytes(n as usize * 4, W)?;
        }
        let path_len = r.offset() - path_start.offset();
        let path = &path_start.rest()[..path_len];
        let n = r.count(4, W)?;
        let communities = r.bytes(n as usize * 4, W)?;
        let local_pref = r.u32(W).ok();
        Ok(ExtendedGateway {
            next_hop,
            as_number,
            src_as,
            src_peer_as,
            path,
            communities,
            local_pref,
        })
    }

    /// Every AS of the destination path, segment after segment.
    pub fn dst_as_path(&self) -> AsPathIter<'a> {
        AsPathIter {
            buf: self.path,
            pos: 4,
            segments_left: be32(self.path, 0).unwrap_or(0),
            in_segment: 0,
        }
    }

    /// The last AS of the path: the destination AS. `None` for an empty path.
    pub fn dst_as(&self) -> Option<u32> {
        self.dst_as_path().last()
    }

    /// Number of AS path segments.
    pub fn dst_as_path_segments(&self) -> u32 {
        be32(self.path, 0).unwrap_or(0)
    }

    pub fn communities(&self) -> impl Iterator<Item = u32> + 'a {
        self.communities
            .chunks_exact(4)
            .map(|c| be32(c, 0).unwrap_or(0))
    }
}

/// The AS numbers of an extended gateway's path (the wire bytes were checked when parsed).
#[derive(Debug, Clone)]
pub struct AsPathIter<'a> {
    buf: &'a [u8],
    pos: usize,
    segments_left: u32,
    in_segment: u32,
}

impl Iterator for AsPathIter<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        while self.in_segment == 0 {
            if self.segments_left == 0 {
                return None;
            }
            self.segments_left -= 1;
            self.in_segment = be32(self.buf, self.pos + 4)?;
            self.pos += 8;
        }
        let v = be32(self.buf, self.pos)?;
        self.pos += 4;
        self.in_segment -= 1;
        Some(v)
    }
}

/// A decoded counter record.
#[derive(Debug, Clone, Copy)]
pub enum CounterData<'a> {
    Generic(Counters<'a>),
    Ethernet(Counters<'a>),
    Unknown(Record<'a>),
}

/// Length of the generic interface counters (format 1).
pub const IF_COUNTERS_LEN: usize = 88;
/// Length of the Ethernet interface counters (format 2).
pub const ETHERNET_COUNTERS_LEN: usize = 52;

/// Generic interface counters (RFC 2233): JSON name, offset, width in bytes.
pub const IF_COUNTERS: [(&str, usize, u8); 19] = [
    ("if_index", 0, 4),
    ("if_type", 4, 4),
    ("if_speed", 8, 8),
    ("if_direction", 16, 4),
    ("if_status", 20, 4),
    ("if_in_octets", 24, 8),
    ("if_in_ucast_pkts", 32, 4),
    ("if_in_multicast_pkts", 36, 4),
    ("if_in_broadcast_pkts", 40, 4),
    ("if_in_discards", 44, 4),
    ("if_in_errors", 48, 4),
    ("if_in_unknown_protos", 52, 4),
    ("if_out_octets", 56, 8),
    ("if_out_ucast_pkts", 64, 4),
    ("if_out_multicast_pkts", 68, 4),
    ("if_out_broadcast_pkts", 72, 4),
    ("if_out_discards", 76, 4),
    ("if_out_errors", 80, 4),
    ("if_promiscuous_mode", 84, 4),
];

/// Ethernet interface counters (RFC 2358), all 32-bit.
pub const ETHERNET_COUNTERS: [(&str, usize, u8); 13] = [
    ("dot3_stats_alignment_errors", 0, 4),
    ("dot3_stats_fcs_errors", 4, 4),
    ("dot3_stats_single_collision_frames", 8, 4),
    ("dot3_stats_multiple_collision_frames", 12, 4),
    ("dot3_stats_sqe_test_errors", 16, 4),
    ("dot3_stats_deferred_transmissions", 20, 4),
    ("dot3_stats_late_collisions", 24, 4),
    ("dot3_stats_excessive_collisions", 28, 4),
    ("dot3_stats_internal_mac_transmit_errors", 32, 4),
    ("dot3_stats_carrier_sense_errors", 36, 4),
    ("dot3_stats_frame_too_longs", 40, 4),
    ("dot3_stats_internal_mac_receive_errors", 44, 4),
    ("dot3_stats_symbol_errors", 48, 4),
];

/// A block of fixed-width counters, at least as long as its structure.
#[derive(Debug, Clone, Copy)]
pub struct Counters<'a> {
    buf: &'a [u8],
}

impl<'a> Counters<'a> {
    fn check(rec: &Record<'a>, what: &'static str, len: usize) -> Result<Self, DecodeError> {
        if rec.data.len() < len {
            return Err(DecodeError::truncated(
                what,
                rec.offset,
                len,
                rec.data.len(),
            ));
        }
        Ok(Counters { buf: rec.data })
    }

    /// The counter at `off` of `width` 4 or 8 bytes (0 past the end, which `check` excludes
    /// for the tables above).
    pub fn get(&self, off: usize, width: u8) -> u64 {
        let b = self
            .buf
            .get(off..off + usize::from(width))
            .unwrap_or_default();
        crate::bytes::be_uint(b)
    }

    /// Generic counters: the interface index.
    pub fn if_index(&self) -> u32 {
        self.get(0, 4) as u32
    }

    /// Every counter of `table` as (name, value).
    pub fn iter(
        &self,
        table: &'static [(&'static str, usize, u8)],
    ) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        table
            .iter()
            .map(move |&(name, off, w)| (name, self.get(off, w)))
    }
}
