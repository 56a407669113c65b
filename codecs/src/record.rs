//! The flow record: what every decoder yields, borrowed from the datagram and the template cache.
//!
//! A `FlowRecord` is built on the stack for each record and handed to the caller's closure; the
//! normalised fields are plain values and `raw` points back into the datagram so the encoder can
//! emit every information element without a copy.

use std::net::{IpAddr, SocketAddr};

/// Export protocol of the datagram a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowProtocol {
    NetflowV5,
    NetflowV9,
    Ipfix,
    Sflow5,
}

impl FlowProtocol {
    pub const ALL: [FlowProtocol; 4] = [
        FlowProtocol::NetflowV5,
        FlowProtocol::NetflowV9,
        FlowProtocol::Ipfix,
        FlowProtocol::Sflow5,
    ];

    /// Name used in documents (`flow.protocol`) and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowProtocol::NetflowV5 => "netflow_v5",
            FlowProtocol::NetflowV9 => "netflow_v9",
            FlowProtocol::Ipfix => "ipfix",
            FlowProtocol::Sflow5 => "sflow5",
        }
    }

    /// Default Kafka topic (ElastiFlow's names).
    pub fn topic(self) -> &'static str {
        match self {
            FlowProtocol::NetflowV5 | FlowProtocol::NetflowV9 => "netflow",
            FlowProtocol::Ipfix => "ipfix",
            FlowProtocol::Sflow5 => "sflow",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A flow record, or an sFlow counter sample (which is its own document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Flow,
    Counters,
}

/// How `start_ns` / `end_ns` were derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBasis {
    /// Absolute timestamps from the record (flowStart*/flowEnd* seconds..nanoseconds).
    Absolute,
    /// System-uptime-relative times resolved with the header or an IPFIX systemInitTime.
    Uptime,
    /// Uptime-relative times that could not be resolved (no systemInitTime yet):
    /// `start_uptime_ms` / `end_uptime_ms` carry them.
    UptimeUnresolved,
}

impl TimeBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeBasis::Absolute => "absolute",
            TimeBasis::Uptime => "uptime",
            TimeBasis::UptimeUnresolved => "uptime_unresolved",
        }
    }
}

/// Where the sampling rate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplingSource {
    /// NetFlow v5 header `sampling_interval`.
    V5Header,
    /// A sampling IE in the data record itself.
    Record,
    /// Options data (sampler / selector tables) of the same exporter and domain.
    Options,
    /// sFlow flow sample `sampling_rate`.
    Sflow,
    /// Not sent by the exporter: 1 is assumed.
    Unknown,
}

impl SamplingSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SamplingSource::V5Header => "v5_header",
            SamplingSource::Record => "record",
            SamplingSource::Options => "options",
            SamplingSource::Sflow => "sflow",
            SamplingSource::Unknown => "unknown",
        }
    }
}

/// Up to ten MPLS labels (IPFIX IEs 70-79) (20-bit values), outermost first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MplsLabels {
    labels: [u32; 10],
    len: u8,
}

impl MplsLabels {
    pub fn push(&mut self, label: u32) {
        if (self.len as usize) < self.labels.len() {
            self.labels[self.len as usize] = label;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.labels[..self.len as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The raw, protocol-specific part of a record: emitted under `netflow.*` / `sflow.*`.
#[derive(Debug, Clone, Copy, Default)]
pub enum Raw<'a> {
    #[default]
    None,
    /// One 48-byte NetFlow v5 record.
    NetflowV5(&'a [u8; crate::netflow5::RECORD_LEN]),
    /// A v9 / IPFIX data record read through its compiled template.
    Template {
        template: &'a crate::template::Template,
        data: &'a [u8],
    },
    /// An sFlow flow or counter sample.
    Sflow(crate::sflow::SflowRaw<'a>),
}

/// One decoded flow record. Every field is `None` when the exporter did not send it.
#[derive(Debug, Clone, Copy)]
pub struct FlowRecord<'a> {
    pub kind: RecordKind,
    pub protocol: FlowProtocol,
    /// The exporter: UDP source of the datagram (for sFlow, `agent` holds the agent address).
    pub exporter: SocketAddr,
    pub agent: Option<IpAddr>,
    pub export_time_ns: Option<u64>,
    pub sequence: Option<u32>,
    /// NetFlow v9 source id, IPFIX observation domain, sFlow sub-agent id.
    pub domain: Option<u32>,
    pub template_id: Option<u16>,

    pub src_addr: Option<IpAddr>,
    pub dst_addr: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub ip_protocol: Option<u8>,
    pub ip_version: Option<u8>,
    pub bytes: Option<u64>,
    pub packets: Option<u64>,
    pub reverse_bytes: Option<u64>,
    pub reverse_packets: Option<u64>,
    pub reverse_tcp_flags: Option<u16>,
    pub tcp_flags: Option<u16>,
    pub tos: Option<u8>,
    pub in_if: Option<u32>,
    pub out_if: Option<u32>,
    pub src_as: Option<u32>,
    pub dst_as: Option<u32>,
    pub src_mask: Option<u8>,
    pub dst_mask: Option<u8>,
    pub next_hop: Option<IpAddr>,
    pub bgp_next_hop: Option<IpAddr>,
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    pub vlan: Option<u16>,
    pub src_vlan: Option<u16>,
    pub dst_vlan: Option<u16>,
    /// 0 ingress, 1 egress (IE 61).
    pub direction: Option<u8>,
    pub flow_end_reason: Option<u8>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub mpls: MplsLabels,

    /// Nanoseconds since the Unix epoch.
    pub start_ns: Option<u64>,
    pub end_ns: Option<u64>,
    /// Uptime-relative times when they could not be resolved (milliseconds since boot).
    pub start_uptime_ms: Option<u64>,
    pub end_uptime_ms: Option<u64>,
    pub time_basis: Option<TimeBasis>,

    /// 1-in-N sampling rate; `None` when the exporter said nothing about sampling.
    pub sampling_rate: Option<u32>,
    pub sampling_source: Option<SamplingSource>,
    pub sampler_id: Option<u64>,
    /// True when `bytes`/`packets` were multiplied by `sampling_rate` (config switch).
    pub scaled: bool,
    /// Set by the decoder when the record's own time (end, else start, else export time) lay
    /// outside its window around the receive time: (that time, the receive time).
    /// [`FlowRecord::timestamp_ns`] then answers the receive time; the document keeps the
    /// original as `netflow.original_timestamp`.
    pub timestamp_clamp: Option<(u64, u64)>,

    pub raw: Raw<'a>,
}

impl<'a> FlowRecord<'a> {
    /// An empty record of `protocol` from `exporter`.
    #[inline]
    pub fn new(protocol: FlowProtocol, exporter: SocketAddr) -> Self {
        FlowRecord {
            kind: RecordKind::Flow,
            protocol,
            exporter,
            agent: None,
            export_time_ns: None,
            sequence: None,
            domain: None,
            template_id: None,
            src_addr: None,
            dst_addr: None,
            src_port: None,
            dst_port: None,
            ip_protocol: None,
            ip_version: None,
            bytes: None,
            packets: None,
            reverse_bytes: None,
            reverse_packets: None,
            reverse_tcp_flags: None,
            tcp_flags: None,
            tos: None,
            in_if: None,
            out_if: None,
            src_as: None,
            dst_as: None,
            src_mask: None,
            dst_mask: None,
            next_hop: None,
            bgp_next_hop: None,
            src_mac: None,
            dst_mac: None,
            vlan: None,
            src_vlan: None,
            dst_vlan: None,
            direction: None,
            flow_end_reason: None,
            icmp_type: None,
            icmp_code: None,
            mpls: MplsLabels::default(),
            start_ns: None,
            end_ns: None,
            start_uptime_ms: None,
            end_uptime_ms: None,
            time_basis: None,
            sampling_rate: None,
            sampling_source: None,
            sampler_id: None,
            scaled: false,
            timestamp_clamp: None,
            raw: Raw::None,
        }
    }

    /// The flow's end time (else start, else export time), or the receive time when the
    /// decoder found that time outside its window (`timestamp_clamp`): `@timestamp`, the
    /// daily index and the Kafka message timestamp.
    #[inline]
    pub fn timestamp_ns(&self) -> Option<u64> {
        match self.timestamp_clamp {
            Some((_, received)) => Some(received),
            None => self.own_timestamp_ns(),
        }
    }

    /// The record's own time: its end time, else start, else export time.
    #[inline]
    pub fn own_timestamp_ns(&self) -> Option<u64> {
        self.end_ns.or(self.start_ns).or(self.export_time_ns)
    }

    /// Multiply bytes and packets by the sampling rate (the `scale_sampling` switch).
    pub fn scale_by_sampling(&mut self) {
        if let Some(rate) = self.sampling_rate.filter(|&r| r > 1) {
            let r = u64::from(rate);
            self.bytes = self.bytes.map(|b| b.saturating_mul(r));
            self.packets = self.packets.map(|p| p.saturating_mul(r));
            self.reverse_bytes = self.reverse_bytes.map(|b| b.saturating_mul(r));
            self.reverse_packets = self.reverse_packets.map(|p| p.saturating_mul(r));
            self.scaled = true;
        }
    }
}
