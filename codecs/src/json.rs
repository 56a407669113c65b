//! JSON encoding straight into a caller's reusable buffer.
//!
//! `encode(&record, &mut buf)` appends one document (no trailing newline) and allocates nothing
//! once `buf` has grown to the size of the largest document: numbers go through `itoa`,
//! addresses through their `Display` into the buffer, times through a hand-written RFC 3339
//! formatter. The document layout is written down in `docs/schema.md`.

use std::io::Write as _;
use std::net::IpAddr;

use crate::record::{FlowProtocol, FlowRecord, Raw, RecordKind};

/// Options of the encoder.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodeOptions {
    /// Leave out the raw `netflow.*` / `sflow.*` elements (ECS fields only).
    pub no_raw: bool,
}

/// A streaming JSON writer over a `Vec<u8>`: tracks commas for up to 16 nesting levels.
pub struct JsonWriter<'b> {
    buf: &'b mut Vec<u8>,
    /// bit i set: the object/array at depth i already has a member
    has_member: u32,
    depth: u8,
}

impl<'b> JsonWriter<'b> {
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        JsonWriter {
            buf,
            has_member: 0,
            depth: 0,
        }
    }

    #[inline]
    fn sep(&mut self) {
        let bit = 1u32 << self.depth;
        if self.has_member & bit != 0 {
            self.buf.push(b',');
        } else {
            self.has_member |= bit;
        }
    }

    #[inline]
    fn key(&mut self, key: &str) {
        self.sep();
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    #[inline]
    fn open(&mut self, c: u8) {
        self.buf.push(c);
        self.depth = (self.depth + 1).min(31);
        self.has_member &= !(1u32 << self.depth);
    }

    /// `{` of the document itself.
    pub fn begin(&mut self) {
        self.open(b'{');
    }

    /// `"key":{`
    pub fn begin_object(&mut self, key: &str) {
        self.key(key);
        self.open(b'{');
    }

    /// `"key":[`
    pub fn begin_array(&mut self, key: &str) {
        self.key(key);
        self.open(b'[');
    }

    /// `}` (closes the innermost object).
    pub fn end_object(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.buf.push(b'}');
    }

    /// `]`
    pub fn end_array(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.buf.push(b']');
    }

    pub fn u64(&mut self, key: &str, v: u64) {
        self.key(key);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    pub fn i64(&mut self, key: &str, v: i64) {
        self.key(key);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    pub fn f64(&mut self, key: &str, v: f64) {
        self.key(key);
        if v.is_finite() {
            let _ = write!(self.buf, "{v}");
        } else {
            self.buf.extend_from_slice(b"null");
        }
    }

    pub fn bool(&mut self, key: &str, v: bool) {
        self.key(key);
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
    }

    /// A string value known to need no escaping (names, enums).
    pub fn str_plain(&mut self, key: &str, v: &str) {
        self.key(key);
        self.buf.push(b'"');
        self.buf.extend_from_slice(v.as_bytes());
        self.buf.push(b'"');
    }

    /// A string from the wire: invalid UTF-8 is replaced, control characters and quotes escaped,
    /// trailing NULs (fixed-size string fields) dropped.
    pub fn str_bytes(&mut self, key: &str, v: &[u8]) {
        self.key(key);
        let end = v.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        write_escaped(self.buf, &v[..end]);
    }

    pub fn ip(&mut self, key: &str, v: IpAddr) {
        self.key(key);
        self.buf.push(b'"');
        let _ = write!(self.buf, "{v}");
        self.buf.push(b'"');
    }

    pub fn mac(&mut self, key: &str, m: &[u8; 6]) {
        self.key(key);
        write_mac(self.buf, m);
    }

    /// Lower-case hex of raw bytes (octetArray elements).
    pub fn hex(&mut self, key: &str, v: &[u8]) {
        self.key(key);
        self.buf.push(b'"');
        for &b in v {
            self.buf.push(HEX[(b >> 4) as usize]);
            self.buf.push(HEX[(b & 15) as usize]);
        }
        self.buf.push(b'"');
    }

    /// RFC 3339 UTC time with nanoseconds: `"2024-01-02T03:04:05.123456789Z"`.
    pub fn time_ns(&mut self, key: &str, ns: u64) {
        self.key(key);
        write_rfc3339(self.buf, ns);
    }

    /// An element of an array of numbers.
    pub fn item_u64(&mut self, v: u64) {
        self.sep();
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    /// An element of an array of plain strings.
    pub fn item_str_plain(&mut self, v: &str) {
        self.sep();
        self.buf.push(b'"');
        self.buf.extend_from_slice(v.as_bytes());
        self.buf.push(b'"');
    }

    pub fn buf_len(&self) -> usize {
        self.buf.len()
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_mac(buf: &mut Vec<u8>, m: &[u8; 6]) {
    buf.push(b'"');
    for (i, &b) in m.iter().enumerate() {
        if i > 0 {
            buf.push(b':');
        }
        buf.push(HEX[(b >> 4) as usize]);
        buf.push(HEX[(b & 15) as usize]);
    }
    buf.push(b'"');
}

fn write_escaped(buf: &mut Vec<u8>, v: &[u8]) {
    buf.push(b'"');
    for chunk in v.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => buf.extend_from_slice(b"\\\""),
                '\\' => buf.extend_from_slice(b"\\\\"),
                '\n' => buf.extend_from_slice(b"\\n"),
                '\r' => buf.extend_from_slice(b"\\r"),
                '\t' => buf.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(buf, "\\u{:04x}", c as u32);
                }
                c => {
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        if !chunk.invalid().is_empty() {
            buf.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    buf.push(b'"');
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `"YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"` for `ns` nanoseconds since the epoch.
pub fn write_rfc3339(buf: &mut Vec<u8>, ns: u64) {
    let secs = (ns / 1_000_000_000) as i64;
    let frac = (ns % 1_000_000_000) as u32;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    let mut out = *b"\"0000-00-00T00:00:00.000000000Z\"";
    let put = |out: &mut [u8; 32], at: usize, v: u32, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut out, 1, y.clamp(0, 9999) as u32, 4);
    put(&mut out, 6, mo, 2);
    put(&mut out, 9, d, 2);
    put(&mut out, 12, sod / 3600, 2);
    put(&mut out, 15, sod / 60 % 60, 2);
    put(&mut out, 18, sod % 60, 2);
    put(&mut out, 21, frac, 9);
    buf.extend_from_slice(&out);
}

fn transport_name(p: u8) -> Option<&'static str> {
    Some(match p {
        1 => "icmp",
        2 => "igmp",
        4 => "ipv4",
        6 => "tcp",
        17 => "udp",
        41 => "ipv6",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "ipv6-icmp",
        89 => "ospf",
        103 => "pim",
        112 => "vrrp",
        132 => "sctp",
        _ => return None,
    })
}

/// Append `record` as one JSON document to `buf`.
pub fn encode(record: &FlowRecord<'_>, opts: &EncodeOptions, buf: &mut Vec<u8>) {
    let r = record;
    let mut w = JsonWriter::new(buf);
    w.begin();
    if let Some(ts) = r.timestamp_ns() {
        w.time_ns("@timestamp", ts);
    }

    // event (ECS categorisation, as Elastic's NetFlow integration does it)
    w.begin_object("event");
    match r.kind {
        RecordKind::Flow => {
            w.str_plain("kind", "event");
            w.begin_array("category");
            w.item_str_plain("network");
            w.end_array();
            w.begin_array("type");
            w.item_str_plain("connection");
            w.end_array();
            w.str_plain(
                "action",
                if r.protocol == FlowProtocol::Sflow5 {
                    "sflow_flow"
                } else {
                    "netflow_flow"
                },
            );
            if let Some(s) = r.start_ns {
                w.time_ns("start", s);
            }
            if let Some(e) = r.end_ns {
                w.time_ns("end", e);
            }
            if let (Some(s), Some(e)) = (r.start_ns, r.end_ns) {
                if e >= s {
                    w.u64("duration", e - s);
                }
            }
        }
        RecordKind::Counters => {
            w.str_plain("kind", "metric");
            w.begin_array("category");
            w.item_str_plain("network");
            w.end_array();
            w.begin_array("type");
            w.item_str_plain("info");
            w.end_array();
            w.str_plain("action", "sflow_counters");
        }
    }
    w.end_object();

    // observer: the exporter
    w.begin_object("observer");
    w.ip("ip", r.exporter.ip());
    if r.in_if.is_some() {
        w.begin_object("ingress");
        w.begin_object("interface");
        w.u64("id", u64::from(r.in_if.unwrap_or(0)));
        w.end_object();
        w.end_object();
    }
    if let Some(o) = r.out_if {
        w.begin_object("egress");
        w.begin_object("interface");
        w.u64("id", u64::from(o));
        w.end_object();
        w.end_object();
    }
    w.end_object();

    if r.kind == RecordKind::Flow {
        endpoint(
            &mut w, "source", r.src_addr, r.src_port, r.src_mac, r.src_as,
        );
        endpoint(
            &mut w,
            "destination",
            r.dst_addr,
            r.dst_port,
            r.dst_mac,
            r.dst_as,
        );

        w.begin_object("network");
        if let Some(p) = r.ip_protocol {
            if let Some(name) = transport_name(p) {
                w.str_plain("transport", name);
            }
            w.key("iana_number");
            w.buf.push(b'"');
            w.buf
                .extend_from_slice(itoa::Buffer::new().format(p).as_bytes());
            w.buf.push(b'"');
        }
        let ipv = r.ip_version.or(match r.src_addr.or(r.dst_addr) {
            Some(IpAddr::V4(_)) => Some(4),
            Some(IpAddr::V6(_)) => Some(6),
            None => None,
        });
        match ipv {
            Some(4) => w.str_plain("type", "ipv4"),
            Some(6) => w.str_plain("type", "ipv6"),
            _ => {}
        }
        if let Some(b) = r.bytes {
            w.u64("bytes", b);
        }
        if let Some(p) = r.packets {
            w.u64("packets", p);
        }
        match r.direction {
            Some(0) => w.str_plain("direction", "ingress"),
            Some(1) => w.str_plain("direction", "egress"),
            _ => {}
        }
        if let Some(v) = r.vlan.or(r.src_vlan) {
            w.begin_object("vlan");
            w.u64("id", u64::from(v));
            w.end_object();
        }
        if let (Some(s), Some(d), Some(p)) = (r.src_addr, r.dst_addr, r.ip_protocol) {
            let mut cid = [0u8; 33];
            let n = crate::community_id::v1(
                s,
                d,
                r.src_port,
                r.dst_port,
                p,
                r.icmp_type,
                r.icmp_code,
                &mut cid,
            );
            w.key("community_id");
            w.buf.push(b'"');
            w.buf.extend_from_slice(&cid[..n]);
            w.buf.push(b'"');
        }
        w.end_object();
    }

    // flow: what ECS lacks
    w.begin_object("flow");
    w.str_plain("protocol", r.protocol.as_str());
    w.u64("exporter_port", u64::from(r.exporter.port()));
    if let Some(t) = r.export_time_ns {
        w.time_ns("export_time", t);
    }
    if let Some(s) = r.sequence {
        w.u64("sequence", u64::from(s));
    }
    if let Some(d) = r.domain {
        w.u64("domain", u64::from(d));
    }
    if let Some(t) = r.template_id {
        w.u64("template_id", u64::from(t));
    }
    if let Some(v) = r.ip_version {
        w.u64("ip_version", u64::from(v));
    }
    if let Some(f) = r.tcp_flags {
        w.u64("tcp_flags", u64::from(f));
    }
    if let Some(t) = r.tos {
        w.u64("tos", u64::from(t));
    }
    if let Some(m) = r.src_mask {
        w.u64("src_mask", u64::from(m));
    }
    if let Some(m) = r.dst_mask {
        w.u64("dst_mask", u64::from(m));
    }
    if let Some(n) = r.next_hop {
        w.ip("next_hop", n);
    }
    if let Some(n) = r.bgp_next_hop {
        w.ip("bgp_next_hop", n);
    }
    if let Some(v) = r.src_vlan {
        w.u64("src_vlan", u64::from(v));
    }
    if let Some(v) = r.dst_vlan {
        w.u64("dst_vlan", u64::from(v));
    }
    if let Some(d) = r.direction {
        w.u64("direction", u64::from(d));
    }
    if let Some(e) = r.flow_end_reason {
        w.u64("end_reason", u64::from(e));
    }
    if let Some(t) = r.icmp_type {
        w.u64("icmp_type", u64::from(t));
    }
    if let Some(c) = r.icmp_code {
        w.u64("icmp_code", u64::from(c));
    }
    if !r.mpls.is_empty() {
        w.begin_array("mpls_labels");
        for &l in r.mpls.as_slice() {
            w.item_u64(u64::from(l));
        }
        w.end_array();
    }
    if r.reverse_bytes.is_some() || r.reverse_packets.is_some() || r.reverse_tcp_flags.is_some() {
        w.begin_object("reverse");
        if let Some(b) = r.reverse_bytes {
            w.u64("bytes", b);
        }
        if let Some(p) = r.reverse_packets {
            w.u64("packets", p);
        }
        if let Some(f) = r.reverse_tcp_flags {
            w.u64("tcp_flags", u64::from(f));
        }
        w.end_object();
    }
    if let Some(tb) = r.time_basis {
        w.str_plain("time_basis", tb.as_str());
    }
    if let Some(s) = r.start_uptime_ms {
        w.u64("start_uptime_ms", s);
    }
    if let Some(e) = r.end_uptime_ms {
        w.u64("end_uptime_ms", e);
    }
    w.u64("sampling_rate", u64::from(r.sampling_rate.unwrap_or(1)));
    w.str_plain(
        "sampling_source",
        r.sampling_source
            .unwrap_or(crate::record::SamplingSource::Unknown)
            .as_str(),
    );
    if let Some(s) = r.sampler_id {
        w.u64("sampler_id", s);
    }
    if r.scaled {
        w.bool("scaled", true);
    }
    w.end_object();

    if !opts.no_raw {
        match &r.raw {
            Raw::None => {}
            Raw::NetflowV5(rec) => crate::netflow5::write_raw_json(rec, &mut w),
            Raw::Template { template, data } => template.write_raw_json(data, r.protocol, &mut w),
            Raw::Sflow(s) => crate::sflow::write_raw_json(s, &mut w),
        }
    }
    w.end_object();
}

fn endpoint(
    w: &mut JsonWriter<'_>,
    name: &str,
    ip: Option<IpAddr>,
    port: Option<u16>,
    mac: Option<[u8; 6]>,
    asn: Option<u32>,
) {
    if ip.is_none() && port.is_none() && mac.is_none() && asn.is_none() {
        return;
    }
    w.begin_object(name);
    if let Some(ip) = ip {
        w.ip("ip", ip);
    }
    if let Some(p) = port {
        w.u64("port", u64::from(p));
    }
    if let Some(m) = mac {
        w.mac("mac", &m);
    }
    if let Some(a) = asn {
        w.begin_object("as");
        w.u64("number", u64::from(a));
        w.end_object();
    }
    w.end_object();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ns: u64) -> String {
        let mut b = Vec::new();
        write_rfc3339(&mut b, ns);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn rfc3339() {
        assert_eq!(t(0), "\"1970-01-01T00:00:00.000000000Z\"");
        assert_eq!(
            t(1_254_722_767_526_084_999),
            "\"2009-10-05T06:06:07.526084999Z\""
        );
        assert_eq!(
            t(951_782_400_000_000_000),
            "\"2000-02-29T00:00:00.000000000Z\""
        );
        assert_eq!(
            t(4_102_444_799_000_000_000),
            "\"2099-12-31T23:59:59.000000000Z\""
        );
    }

    #[test]
    fn escaping() {
        let mut b = Vec::new();
        let mut w = JsonWriter::new(&mut b);
        w.begin();
        w.str_bytes("s", b"a\"b\\c\n\x01\xffz\0\0");
        w.end_object();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["s"], "a\"b\\c\n\u{1}\u{fffd}z");
    }

    #[test]
    fn commas_and_nesting() {
        let mut b = Vec::new();
        let mut w = JsonWriter::new(&mut b);
        w.begin();
        w.u64("a", 1);
        w.begin_object("o");
        w.u64("x", 2);
        w.begin_array("l");
        w.item_u64(1);
        w.item_u64(2);
        w.end_array();
        w.end_object();
        w.bool("z", false);
        w.end_object();
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            r#"{"a":1,"o":{"x":2,"l":[1,2]},"z":false}"#
        );
    }
}
