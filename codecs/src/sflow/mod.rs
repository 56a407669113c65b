//! sFlow v5 (sflow.org `sflow_version_5.txt`): a datagram header, then samples, each made of
//! records; every sample and record carries its length, so unknown ones are skipped.
//!
//! ```text
//! datagram: version=5 | agent address (type 1: 4 bytes, 2: 16 bytes) | sub_agent_id |
//!           sequence_number | uptime_ms | num_samples | samples...
//! sample:   data_format (enterprise << 12 | format) | length | sample data
//!   1 flow sample, 3 expanded flow sample     -> flow records (raw header, switch, router...)
//!   2 counters sample, 4 expanded counters    -> counter records (generic, ethernet...)
//! ```
//!
//! [`decode`] yields one [`FlowRecord`] per flow sample (kind `Flow`) and one per counters sample
//! (kind `Counters`). A bad datagram header is the caller's error; a bad sample or record is
//! counted in [`DecodeStats`] and skipped by its declared length. A sample whose length runs
//! past the datagram ends the datagram (the next sample cannot be found).

pub mod records;
mod xdr;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::bytes::be32;
use crate::error::DecodeError;
use crate::record::{FlowProtocol, FlowRecord, Raw, RecordKind, SamplingSource};
use crate::stats::DecodeStats;

pub use records::{
    CounterData, Counters, ExtendedGateway, ExtendedRouter, ExtendedSwitch, FlowData, Record,
    SampledEthernet, SampledHeader, SampledIp,
};
use xdr::Reader;

pub const VERSION: u32 = 5;

/// `data_format` of the samples decoded here (enterprise 0).
pub mod sample_format {
    pub const FLOW_SAMPLE: u32 = 1;
    pub const COUNTERS_SAMPLE: u32 = 2;
    pub const EXPANDED_FLOW_SAMPLE: u32 = 3;
    pub const EXPANDED_COUNTERS_SAMPLE: u32 = 4;
}

/// A checked view of an sFlow v5 datagram header.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    buf: &'a [u8],
    agent: Option<IpAddr>,
    /// Offset of `sub_agent_id` (8, 20 or 32 after an unknown / IPv4 / IPv6 agent address).
    at: usize,
}

impl<'a> Datagram<'a> {
    /// Check the version, the agent address and that the fixed header fields are present.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf, 0);
        let version = r.u32("sflow header")?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion { version });
        }
        let agent = r.address("sflow agent address")?;
        let at = r.offset();
        r.bytes(16, "sflow header")?;
        Ok(Datagram { buf, agent, at })
    }

    #[inline]
    fn word(&self, i: usize) -> u32 {
        be32(self.buf, self.at + 4 * i).unwrap_or(0)
    }

    pub fn version(&self) -> u32 {
        VERSION
    }
    /// The agent address; `0.0.0.0` when the agent sent address type 0 (unknown).
    pub fn agent(&self) -> IpAddr {
        self.agent.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
    /// The agent address, `None` for address type 0.
    pub fn agent_address(&self) -> Option<IpAddr> {
        self.agent
    }
    pub fn sub_agent_id(&self) -> u32 {
        self.word(0)
    }
    pub fn sequence_number(&self) -> u32 {
        self.word(1)
    }
    pub fn uptime_ms(&self) -> u32 {
        self.word(2)
    }
    /// Samples the header announces (the iterator stops earlier if the datagram ends).
    pub fn num_samples(&self) -> u32 {
        self.word(3)
    }

    /// The samples, each bounded by its declared length. Yields an error and stops when a sample
    /// header is cut or a sample runs past the datagram, or when fewer samples than announced
    /// are present. Bytes after the announced samples are ignored.
    pub fn samples(&self) -> SampleIter<'a> {
        let start = self.at + 16;
        SampleIter {
            r: Reader::new(&self.buf[start..], start),
            left: self.num_samples(),
        }
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

/// Reads `data_format | length | data` items (samples or records): `left` items, each bounded.
fn next_item<'a>(
    r: &mut Reader<'a>,
    left: &mut u32,
    what: &'static str,
) -> Option<Result<(u32, Reader<'a>), DecodeError>> {
    if *left == 0 {
        return None;
    }
    let item = (|| {
        let format = r.u32(what)?;
        let len = r.u32(what)? as usize;
        let body = r.take(len, what)?;
        Ok((format, body))
    })();
    *left = if item.is_ok() { *left - 1 } else { 0 };
    Some(item)
}

/// Iterator over the samples of a datagram.
#[derive(Debug, Clone)]
pub struct SampleIter<'a> {
    r: Reader<'a>,
    left: u32,
}

impl<'a> Iterator for SampleIter<'a> {
    type Item = Result<Sample<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let header_at = self.r.offset();
        next_item(&mut self.r, &mut self.left, "sflow sample").map(|item| {
            item.map(|(data_format, body)| Sample {
                data_format,
                data: body.rest(),
                header_at,
            })
        })
    }
}

/// The kind of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleType {
    FlowSample,
    CountersSample,
    ExpandedFlowSample,
    ExpandedCountersSample,
    /// Another format or enterprise: skipped (`data_format` as on the wire).
    Unknown(u32),
}

impl SampleType {
    pub fn from_data_format(f: u32) -> Self {
        match f {
            sample_format::FLOW_SAMPLE => SampleType::FlowSample,
            sample_format::COUNTERS_SAMPLE => SampleType::CountersSample,
            sample_format::EXPANDED_FLOW_SAMPLE => SampleType::ExpandedFlowSample,
            sample_format::EXPANDED_COUNTERS_SAMPLE => SampleType::ExpandedCountersSample,
            f => SampleType::Unknown(f),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SampleType::FlowSample => "flow_sample",
            SampleType::CountersSample => "counters_sample",
            SampleType::ExpandedFlowSample => "expanded_flow_sample",
            SampleType::ExpandedCountersSample => "expanded_counters_sample",
            SampleType::Unknown(_) => "unknown",
        }
    }
}

/// One sample: its `data_format` and the bytes of its declared length.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    data_format: u32,
    data: &'a [u8],
    /// Offset of the sample's `data_format` word in the datagram.
    header_at: usize,
}

impl<'a> Sample<'a> {
    pub fn data_format(&self) -> u32 {
        self.data_format
    }
    pub fn sample_type(&self) -> SampleType {
        SampleType::from_data_format(self.data_format)
    }
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
    /// Offset of the sample in the datagram.
    pub fn offset(&self) -> usize {
        self.header_at
    }
    fn reader(&self) -> Reader<'a> {
        Reader::new(self.data, self.header_at + 8)
    }

    /// The sample at `header_at` of a datagram, as `SampleIter` found it.
    fn at(buf: &'a [u8], header_at: usize) -> Option<Self> {
        let mut r = Reader::new(buf.get(header_at..)?, header_at);
        let data_format = r.u32("").ok()?;
        let len = r.u32("").ok()? as usize;
        let data = r.bytes(len, "").ok()?;
        Some(Sample {
            data_format,
            data,
            header_at,
        })
    }
}

/// How a flow sample reports an interface (`interface` of the spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    /// 0 single interface (value = ifIndex), 1 packet discarded (value = reason code),
    /// 2 multiple interfaces (value = how many, 0 unknown).
    pub format: u32,
    pub value: u32,
}

impl Interface {
    /// Compact encoding: the format in the two top bits.
    fn compact(v: u32) -> Self {
        Interface {
            format: v >> 30,
            value: v & 0x3fff_ffff,
        }
    }

    /// The ifIndex when the format is "single interface".
    pub fn if_index(&self) -> Option<u32> {
        (self.format == 0).then_some(self.value)
    }
}

/// A flow sample (format 1) or expanded flow sample (format 3), header checked.
#[derive(Debug, Clone, Copy)]
pub struct FlowSample<'a> {
    pub expanded: bool,
    pub sequence_number: u32,
    pub source_id_type: u32,
    pub source_id_index: u32,
    pub sampling_rate: u32,
    pub sample_pool: u32,
    pub drops: u32,
    pub input: Interface,
    pub output: Interface,
    num_records: u32,
    records: Reader<'a>,
}

impl<'a> FlowSample<'a> {
    /// Parse the header of a sample of type flow / expanded flow.
    pub fn parse(s: &Sample<'a>) -> Result<Self, DecodeError> {
        let expanded = match s.sample_type() {
            SampleType::FlowSample => false,
            SampleType::ExpandedFlowSample => true,
            _ => {
                return Err(DecodeError::invalid(
                    "sflow flow sample format",
                    s.header_at,
                    u64::from(s.data_format),
                ))
            }
        };
        const W: &str = "sflow flow sample";
        let mut r = s.reader();
        let sequence_number = r.u32(W)?;
        let (source_id_type, source_id_index) = if expanded {
            (r.u32(W)?, r.u32(W)?)
        } else {
            let v = r.u32(W)?;
            (v >> 24, v & 0x00ff_ffff)
        };
        let sampling_rate = r.u32(W)?;
        let sample_pool = r.u32(W)?;
        let drops = r.u32(W)?;
        let (input, output) = if expanded {
            let i = Interface {
                format: r.u32(W)?,
                value: r.u32(W)?,
            };
            let o = Interface {
                format: r.u32(W)?,
                value: r.u32(W)?,
            };
            (i, o)
        } else {
            (Interface::compact(r.u32(W)?), Interface::compact(r.u32(W)?))
        };
        let num_records = r.u32(W)?;
        Ok(FlowSample {
            expanded,
            sequence_number,
            source_id_type,
            source_id_index,
            sampling_rate,
            sample_pool,
            drops,
            input,
            output,
            num_records,
            records: r,
        })
    }

    pub fn num_records(&self) -> u32 {
        self.num_records
    }

    /// The flow records, each bounded by its declared length; stops after an error.
    pub fn records(&self) -> RecordIter<'a> {
        RecordIter {
            r: self.records,
            left: self.num_records,
            what: "sflow flow record",
        }
    }
}

/// A counters sample (format 2) or expanded counters sample (format 4), header checked.
#[derive(Debug, Clone, Copy)]
pub struct CountersSample<'a> {
    pub expanded: bool,
    pub sequence_number: u32,
    pub source_id_type: u32,
    pub source_id_index: u32,
    num_records: u32,
    records: Reader<'a>,
}

impl<'a> CountersSample<'a> {
    pub fn parse(s: &Sample<'a>) -> Result<Self, DecodeError> {
        let expanded = match s.sample_type() {
            SampleType::CountersSample => false,
            SampleType::ExpandedCountersSample => true,
            _ => {
                return Err(DecodeError::invalid(
                    "sflow counters sample format",
                    s.header_at,
                    u64::from(s.data_format),
                ))
            }
        };
        const W: &str = "sflow counters sample";
        let mut r = s.reader();
        let sequence_number = r.u32(W)?;
        let (source_id_type, source_id_index) = if expanded {
            (r.u32(W)?, r.u32(W)?)
        } else {
            let v = r.u32(W)?;
            (v >> 24, v & 0x00ff_ffff)
        };
        let num_records = r.u32(W)?;
        Ok(CountersSample {
            expanded,
            sequence_number,
            source_id_type,
            source_id_index,
            num_records,
            records: r,
        })
    }

    pub fn num_records(&self) -> u32 {
        self.num_records
    }

    /// The counter records, each bounded by its declared length; stops after an error.
    pub fn records(&self) -> RecordIter<'a> {
        RecordIter {
            r: self.records,
            left: self.num_records,
            what: "sflow counter record",
        }
    }
}

/// Iterator over the flow or counter records of a sample.
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    r: Reader<'a>,
    left: u32,
    what: &'static str,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        next_item(&mut self.r, &mut self.left, self.what).map(|item| {
            item.map(|(data_format, body)| Record {
                data_format,
                data: body.rest(),
                offset: body.offset(),
            })
        })
    }
}

/// The raw part of an sFlow record: the datagram and where its sample starts. Re-read by
/// the JSON encoder to emit `sflow.*`; `Copy` and 24 bytes, like the other `Raw` variants.
#[derive(Debug, Clone, Copy)]
pub struct SflowRaw<'a> {
    datagram: &'a [u8],
    sample_at: usize,
}

impl<'a> SflowRaw<'a> {
    pub(crate) fn new(datagram: &'a [u8], sample_at: usize) -> Self {
        SflowRaw {
            datagram,
            sample_at,
        }
    }

    /// The datagram header view.
    pub fn datagram(&self) -> Option<Datagram<'a>> {
        Datagram::new_checked(self.datagram).ok()
    }

    /// The sample this record came from.
    pub fn sample(&self) -> Option<Sample<'a>> {
        Sample::at(self.datagram, self.sample_at)
    }

    /// The sample's own sequence number (flow or counters sample).
    pub fn sample_sequence(&self) -> Option<u32> {
        let s = self.sample()?;
        match s.sample_type() {
            SampleType::FlowSample | SampleType::ExpandedFlowSample => {
                FlowSample::parse(&s).ok().map(|f| f.sequence_number)
            }
            SampleType::CountersSample | SampleType::ExpandedCountersSample => {
                CountersSample::parse(&s).ok().map(|c| c.sequence_number)
            }
            SampleType::Unknown(_) => None,
        }
    }

    /// The flow sample this record came from (`None` for counters).
    pub fn flow_sample(&self) -> Option<FlowSample<'a>> {
        FlowSample::parse(&self.sample()?).ok()
    }

    /// The counters sample this record came from (`None` for flows).
    pub fn counters_sample(&self) -> Option<CountersSample<'a>> {
        CountersSample::parse(&self.sample()?).ok()
    }
}

/// Decode every sample: one [`FlowRecord`] (kind `Flow`) per flow sample / expanded flow sample,
/// one (kind `Counters`) per counters sample / expanded counters sample. A bad datagram header
/// is returned; a bad sample or record inside is counted with `stats.error` and skipped by its
/// declared length. Unknown sample and record formats are skipped silently.
pub fn decode<'a>(
    exporter: SocketAddr,
    buf: &'a [u8],
    stats: &mut DecodeStats,
    f: &mut dyn FnMut(&FlowRecord<'a>),
) -> Result<(), DecodeError> {
    let dg = Datagram::new_checked(buf)?;
    for sample in dg.samples() {
        let sample = match sample {
            Ok(s) => s,
            Err(e) => {
                stats.error(e);
                break;
            }
        };
        let rec = match sample.sample_type() {
            SampleType::FlowSample | SampleType::ExpandedFlowSample => {
                FlowSample::parse(&sample).map(|fs| flow_record(exporter, &dg, &sample, &fs, stats))
            }
            SampleType::CountersSample | SampleType::ExpandedCountersSample => {
                CountersSample::parse(&sample)
                    .map(|cs| counters_record(exporter, &dg, &sample, &cs, stats))
            }
            SampleType::Unknown(_) => continue,
        };
        match rec {
            Ok(rec) => f(&rec),
            Err(e) => stats.error(e),
        }
    }
    Ok(())
}

fn base_record<'a>(exporter: SocketAddr, dg: &Datagram<'a>, sample: &Sample<'a>) -> FlowRecord<'a> {
    let mut rec = FlowRecord::new(FlowProtocol::Sflow5, exporter);
    rec.agent = dg.agent_address();
    rec.domain = Some(dg.sub_agent_id());
    rec.sequence = Some(dg.sequence_number());
    rec.raw = Raw::Sflow(SflowRaw::new(dg.as_bytes(), sample.header_at));
    rec
}

/// Where the byte count came from, by preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum BytesFrom {
    None,
    IpData,
    EthernetData,
    RawHeader,
}

/// A VLAN id from a 32-bit field: `None` outside 0..=4095 (the max value means "unknown").
fn vlan_id(v: u32) -> Option<u16> {
    (v <= 0x0fff).then_some(v as u16)
}

fn mask(v: u32) -> Option<u8> {
    (v <= 128).then_some(v as u8)
}

/// The FlowRecord of a flow sample. The raw packet header is preferred for L2-L4 fields; the
/// Ethernet / IPv4 / IPv6 data records only fill what it left empty.
fn flow_record<'a>(
    exporter: SocketAddr,
    dg: &Datagram<'a>,
    sample: &Sample<'a>,
    fs: &FlowSample<'a>,
    stats: &mut DecodeStats,
) -> FlowRecord<'a> {
    let mut rec = base_record(exporter, dg, sample);
    rec.kind = RecordKind::Flow;
    if fs.sampling_rate > 0 {
        rec.sampling_rate = Some(fs.sampling_rate);
        rec.sampling_source = Some(SamplingSource::Sflow);
    }
    rec.in_if = fs.input.if_index();
    rec.out_if = fs.output.if_index();
    rec.packets = Some(1);

    let mut bytes_from = BytesFrom::None;
    let mut have_header = false;
    let mut router_next_hop = false;
    for r in fs.records() {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                stats.error(e);
                break;
            }
        };
        let data = match r.flow_data() {
            Ok(d) => d,
            Err(e) => {
                stats.error(e);
                continue;
            }
        };
        match data {
            FlowData::SampledHeader(h) if !have_header => {
                have_header = true;
                rec.bytes = Some(u64::from(h.frame_length));
                bytes_from = BytesFrom::RawHeader;
                if let Some(p) = h.parse_packet() {
                    apply_header(&mut rec, &p);
                }
            }
            FlowData::SampledEthernet(e) => {
                if bytes_from < BytesFrom::EthernetData {
                    rec.bytes = Some(u64::from(e.length));
                    bytes_from = BytesFrom::EthernetData;
                }
                rec.src_mac = rec.src_mac.or(Some(e.src_mac));
                rec.dst_mac = rec.dst_mac.or(Some(e.dst_mac));
            }
            FlowData::SampledIpv4(ip) | FlowData::SampledIpv6(ip) => {
                if bytes_from < BytesFrom::IpData {
                    rec.bytes = Some(u64::from(ip.length));
                    bytes_from = BytesFrom::IpData;
                }
                if rec.src_addr.is_none() && rec.dst_addr.is_none() {
                    rec.ip_version = Some(if ip.src_ip.is_ipv4() { 4 } else { 6 });
                    rec.src_addr = Some(ip.src_ip);
                    rec.dst_addr = Some(ip.dst_ip);
                    rec.ip_protocol = Some(ip.protocol as u8);
                    rec.tos = Some(ip.tos as u8);
                    if matches!(ip.protocol, 6 | 17 | 132) {
                        rec.src_port = Some(ip.src_port as u16);
                        rec.dst_port = Some(ip.dst_port as u16);
                    }
                    if ip.protocol == 6 {
                        rec.tcp_flags = Some(ip.tcp_flags as u16);
                    }
                }
            }
            FlowData::ExtendedSwitch(s) => {
                rec.src_vlan = vlan_id(s.src_vlan);
                rec.dst_vlan = vlan_id(s.dst_vlan);
            }
            FlowData::ExtendedRouter(x) => {
                router_next_hop = x.next_hop.is_some();
                if x.next_hop.is_some() {
                    rec.next_hop = x.next_hop;
                }
                rec.src_mask = mask(x.src_mask_len);
                rec.dst_mask = mask(x.dst_mask_len);
            }
            FlowData::ExtendedGateway(g) => {
                rec.bgp_next_hop = g.next_hop;
                if !router_next_hop {
                    rec.next_hop = g.next_hop;
                }
                rec.src_as = Some(g.src_as);
                rec.dst_as = g.dst_as();
            }
            FlowData::SampledHeader(_) | FlowData::Unknown(_) => {}
        }
    }
    rec
}

/// L2-L4 fields of a parsed raw header into the record (they override the sampled data records).
fn apply_header(rec: &mut FlowRecord<'_>, p: &crate::packet::HeaderInfo) {
    macro_rules! set {
        ($($f:ident),*) => { $( if p.$f.is_some() { rec.$f = p.$f; } )* };
    }
    set!(
        src_mac,
        dst_mac,
        vlan,
        ip_version,
        src_addr,
        dst_addr,
        ip_protocol,
        tos
    );
    set!(src_port, dst_port, tcp_flags, icmp_type, icmp_code);
    if !p.mpls.is_empty() {
        rec.mpls = p.mpls;
    }
}

/// The FlowRecord of a counters sample: the interface index in `in_if` (from the generic
/// interface counters, else the source id when it is an ifIndex).
fn counters_record<'a>(
    exporter: SocketAddr,
    dg: &Datagram<'a>,
    sample: &Sample<'a>,
    cs: &CountersSample<'a>,
    stats: &mut DecodeStats,
) -> FlowRecord<'a> {
    let mut rec = base_record(exporter, dg, sample);
    rec.kind = RecordKind::Counters;
    if cs.source_id_type == 0 {
        rec.in_if = Some(cs.source_id_index);
    }
    let mut have_generic = false;
    for r in cs.records() {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                stats.error(e);
                break;
            }
        };
        match r.counter_data() {
            Ok(CounterData::Generic(c)) if !have_generic => {
                have_generic = true;
                rec.in_if = Some(c.if_index());
            }
            Ok(_) => {}
            Err(e) => stats.error(e),
        }
    }
    rec
}
