//! JSON encoding straight into a caller's reusable buffer.
//!
//! `encode(&record, &mut buf)` appends one document (no trailing newline) and allocates nothing
//! once `buf` has grown to the size of the largest document: keys are precomputed fragments
//! copied whole, numbers, addresses and times go through hand-written formatters (times through
//! a per-thread cache of the last ones formatted). The document layout is written down in
//! `docs/schema.md`.
//!
//! Here: [`encode`] and the ECS members. `writer`: [`JsonWriter`], its cursor and keys; `text`:
//! numbers, addresses, escaping; `time`: RFC 3339 and its caches. The raw members come from
//! `netflow5` (v5 records), `template` (v9 / IPFIX records through their template) and `sflow`:
//! the writer reads the wire views, never the reverse.

use std::net::IpAddr;

use crate::record::{FlowProtocol, FlowRecord, Raw, RecordKind, SamplingSource, TimeBasis};

mod netflow5;
mod sflow;
pub(crate) mod template;
mod text;
mod time;
mod writer;

use text::DEC;
pub use time::{civil_from_days, write_rfc3339};
pub(crate) use writer::{key, Cursor};
pub use writer::{pad_fragment, JsonKey, JsonWriter, Key, KeyBuf, WideKey, KEY_PAD, WIDE_KEY};

/// Options of the encoder.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodeOptions {
    /// Leave out the raw `netflow.*` / `sflow.*` elements (ECS fields only).
    pub no_raw: bool,
}

/// `network.transport`: the name of IANA protocol `p`, when it has one here.
#[inline]
fn write_transport(c: &mut Cursor<'_>, p: u8) {
    let k = key!("transport");
    match p {
        1 => c.member_quoted(k, b"\"icmp\""),
        2 => c.member_quoted(k, b"\"igmp\""),
        4 => c.member_quoted(k, b"\"ipv4\""),
        6 => c.member_quoted(k, b"\"tcp\""),
        17 => c.member_quoted(k, b"\"udp\""),
        41 => c.member_quoted(k, b"\"ipv6\""),
        47 => c.member_quoted(k, b"\"gre\""),
        50 => c.member_quoted(k, b"\"esp\""),
        51 => c.member_quoted(k, b"\"ah\""),
        58 => c.member_quoted(k, b"\"ipv6-icmp\""),
        89 => c.member_quoted(k, b"\"ospf\""),
        103 => c.member_quoted(k, b"\"pim\""),
        112 => c.member_quoted(k, b"\"vrrp\""),
        132 => c.member_quoted(k, b"\"sctp\""),
        _ => {}
    }
}

/// `flow.time_basis`: [`TimeBasis::as_str`] as a literal (a copy of a known size).
#[inline]
fn write_time_basis(c: &mut Cursor<'_>, tb: TimeBasis) {
    let k = key!("time_basis");
    match tb {
        TimeBasis::Absolute => c.member_quoted(k, b"\"absolute\""),
        TimeBasis::Uptime => c.member_quoted(k, b"\"uptime\""),
        TimeBasis::UptimeUnresolved => c.member_quoted(k, b"\"uptime_unresolved\""),
    }
}

/// `flow.sampling_source`: [`SamplingSource::as_str`] as a literal.
#[inline]
fn write_sampling_source(c: &mut Cursor<'_>, s: SamplingSource) {
    let k = key!("sampling_source");
    match s {
        SamplingSource::V5Header => c.member_quoted(k, b"\"v5_header\""),
        SamplingSource::Record => c.member_quoted(k, b"\"record\""),
        SamplingSource::Options => c.member_quoted(k, b"\"options\""),
        SamplingSource::Sflow => c.member_quoted(k, b"\"sflow\""),
        SamplingSource::Unknown => c.member_quoted(k, b"\"unknown\""),
    }
}

/// The names [`write_transport`] writes (its reference in tests).
#[cfg(test)]
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
    // the ECS members through one cursor: their text has a bound
    w.with_cursor(ECS_MAX, |c| ecs(r, c));
    // the record's own time when the decoder replaced it (sFlow's time is the receive time:
    // never replaced)
    let original = r.timestamp_clamp.map(|(t, _)| t);
    if !opts.no_raw {
        match &r.raw {
            Raw::None => write_original(original, &mut w),
            Raw::NetflowV5(rec) => netflow5::write_raw_json(rec, original, &mut w),
            Raw::Template { template, data } => {
                template.write_raw_json_with(data, r.protocol, original, &mut w)
            }
            Raw::Sflow(s) => sflow::write_raw_json(s, &mut w),
        }
    } else {
        write_original(original, &mut w);
    }
    w.end_object();
}

/// `"netflow":{"original_timestamp":...}` alone (no raw members written).
#[cold]
fn write_original(original_ns: Option<u64>, w: &mut JsonWriter<'_>) {
    if let Some(t) = original_ns {
        w.begin_object(key!("netflow"));
        w.time_ns(key!("original_timestamp"), t);
        w.end_object();
    }
}

/// The bytes the ECS members of a document can take (see the test `ecs_bound_holds`).
const ECS_MAX: usize = 1856;

/// The ECS members of [`encode`]'s document (everything but the raw elements).
#[inline]
fn ecs(r: &FlowRecord<'_>, c: &mut Cursor<'_>) {
    if let Some(ts) = r.timestamp_ns() {
        c.member_time(key!("@timestamp"), ts);
    }

    // event (ECS categorisation, as Elastic's NetFlow integration does it)
    match r.kind {
        RecordKind::Flow => {
            if r.protocol == FlowProtocol::Sflow5 {
                c.begin_object_with(
                    key!("event"),
                    br#""kind":"event","category":["network"],"type":["connection"],"action":"sflow_flow""#,
                );
            } else {
                c.begin_object_with(
                    key!("event"),
                    br#""kind":"event","category":["network"],"type":["connection"],"action":"netflow_flow""#,
                );
            }
            if let Some(s) = r.start_ns {
                c.member_time(key!("start"), s);
            }
            if let Some(e) = r.end_ns {
                c.member_time(key!("end"), e);
            }
            if let (Some(s), Some(e)) = (r.start_ns, r.end_ns) {
                if e >= s {
                    c.member_u64(key!("duration"), e - s);
                }
            }
        }
        RecordKind::Counters => {
            c.begin_object_with(
                key!("event"),
                br#""kind":"metric","category":["network"],"type":["info"],"action":"sflow_counters""#,
            );
        }
    }
    c.end_object();

    // observer: the exporter
    c.begin_object(key!("observer"));
    c.member_ip(key!("ip"), r.exporter.ip());
    if let Some(i) = r.in_if {
        c.begin_object(key!("ingress"));
        c.begin_object(key!("interface"));
        c.member_u64(key!("id"), u64::from(i));
        c.end_object();
        c.end_object();
    }
    if let Some(o) = r.out_if {
        c.begin_object(key!("egress"));
        c.begin_object(key!("interface"));
        c.member_u64(key!("id"), u64::from(o));
        c.end_object();
        c.end_object();
    }
    c.end_object();

    if r.kind == RecordKind::Flow {
        endpoint(
            c,
            key!("source"),
            r.src_addr,
            r.src_port,
            r.src_mac,
            r.src_as,
        );
        endpoint(
            c,
            key!("destination"),
            r.dst_addr,
            r.dst_port,
            r.dst_mac,
            r.dst_as,
        );

        c.begin_object(key!("network"));
        if let Some(p) = r.ip_protocol {
            write_transport(c, p);
            c.k(key!("iana_number"));
            c.quoted::<5>(|out| {
                let d = DEC[usize::from(p)];
                out[1..4].copy_from_slice(&d[..3]);
                1 + usize::from(d[3])
            });
        }
        let ipv = r.ip_version.or(match r.src_addr.or(r.dst_addr) {
            Some(IpAddr::V4(_)) => Some(4),
            Some(IpAddr::V6(_)) => Some(6),
            None => None,
        });
        match ipv {
            Some(4) => c.member_quoted(key!("type"), b"\"ipv4\""),
            Some(6) => c.member_quoted(key!("type"), b"\"ipv6\""),
            _ => {}
        }
        if let Some(b) = r.bytes {
            c.member_u64(key!("bytes"), b);
        }
        if let Some(p) = r.packets {
            c.member_u64(key!("packets"), p);
        }
        match r.direction {
            Some(0) => c.member_quoted(key!("direction"), b"\"ingress\""),
            Some(1) => c.member_quoted(key!("direction"), b"\"egress\""),
            _ => {}
        }
        if let Some(v) = r.vlan.or(r.src_vlan) {
            c.begin_object(key!("vlan"));
            c.member_u64(key!("id"), u64::from(v));
            c.end_object();
        }
        if let (Some(s), Some(d), Some(p)) = (r.src_addr, r.dst_addr, r.ip_protocol) {
            c.k(key!("community_id"));
            // the id written in place
            c.quoted::<36>(|out| {
                let n = match out[1..].first_chunk_mut::<33>() {
                    Some(cid) => crate::community_id::v1(
                        s,
                        d,
                        r.src_port,
                        r.dst_port,
                        p,
                        r.icmp_type,
                        r.icmp_code,
                        cid,
                    ),
                    None => 0,
                };
                1 + n.min(33)
            });
        }
        c.end_object();
    }

    // flow: what ECS lacks
    match r.protocol {
        FlowProtocol::NetflowV5 => c.begin_object_with(key!("flow"), br#""protocol":"netflow_v5""#),
        FlowProtocol::NetflowV9 => c.begin_object_with(key!("flow"), br#""protocol":"netflow_v9""#),
        FlowProtocol::Ipfix => c.begin_object_with(key!("flow"), br#""protocol":"ipfix""#),
        FlowProtocol::Sflow5 => c.begin_object_with(key!("flow"), br#""protocol":"sflow5""#),
    }
    c.member_u64(key!("exporter_port"), u64::from(r.exporter.port()));
    if let Some(t) = r.export_time_ns {
        c.member_time(key!("export_time"), t);
    }
    if let Some(s) = r.sequence {
        c.member_u64(key!("sequence"), u64::from(s));
    }
    if let Some(d) = r.domain {
        c.member_u64(key!("domain"), u64::from(d));
    }
    if let Some(t) = r.template_id {
        c.member_u64(key!("template_id"), u64::from(t));
    }
    if let Some(v) = r.ip_version {
        c.member_u64(key!("ip_version"), u64::from(v));
    }
    if let Some(f) = r.tcp_flags {
        c.member_u64(key!("tcp_flags"), u64::from(f));
    }
    if let Some(t) = r.tos {
        c.member_u64(key!("tos"), u64::from(t));
    }
    if let Some(m) = r.src_mask {
        c.member_u64(key!("src_mask"), u64::from(m));
    }
    if let Some(m) = r.dst_mask {
        c.member_u64(key!("dst_mask"), u64::from(m));
    }
    if let Some(n) = r.next_hop {
        c.member_ip(key!("next_hop"), n);
    }
    if let Some(n) = r.bgp_next_hop {
        c.member_ip(key!("bgp_next_hop"), n);
    }
    if let Some(v) = r.src_vlan {
        c.member_u64(key!("src_vlan"), u64::from(v));
    }
    if let Some(v) = r.dst_vlan {
        c.member_u64(key!("dst_vlan"), u64::from(v));
    }
    if let Some(d) = r.direction {
        c.member_u64(key!("direction"), u64::from(d));
    }
    if let Some(e) = r.flow_end_reason {
        c.member_u64(key!("end_reason"), u64::from(e));
    }
    if let Some(t) = r.icmp_type {
        c.member_u64(key!("icmp_type"), u64::from(t));
    }
    if let Some(code) = r.icmp_code {
        c.member_u64(key!("icmp_code"), u64::from(code));
    }
    if !r.mpls.is_empty() {
        c.begin_array(key!("mpls_labels"));
        for &l in r.mpls.as_slice() {
            c.item_u64(u64::from(l));
        }
        c.end_array();
    }
    if r.reverse_bytes.is_some() || r.reverse_packets.is_some() || r.reverse_tcp_flags.is_some() {
        c.begin_object(key!("reverse"));
        if let Some(b) = r.reverse_bytes {
            c.member_u64(key!("bytes"), b);
        }
        if let Some(p) = r.reverse_packets {
            c.member_u64(key!("packets"), p);
        }
        if let Some(f) = r.reverse_tcp_flags {
            c.member_u64(key!("tcp_flags"), u64::from(f));
        }
        c.end_object();
    }
    if let Some(tb) = r.time_basis {
        write_time_basis(c, tb);
    }
    if let Some(s) = r.start_uptime_ms {
        c.member_u64(key!("start_uptime_ms"), s);
    }
    if let Some(e) = r.end_uptime_ms {
        c.member_u64(key!("end_uptime_ms"), e);
    }
    c.member_u64(
        key!("sampling_rate"),
        u64::from(r.sampling_rate.unwrap_or(1)),
    );
    write_sampling_source(c, r.sampling_source.unwrap_or(SamplingSource::Unknown));
    if let Some(s) = r.sampler_id {
        c.member_u64(key!("sampler_id"), s);
    }
    if r.scaled {
        c.member_quoted(key!("scaled"), b"true");
    }
    c.end_object();
}

#[inline(always)]
fn endpoint(
    c: &mut Cursor<'_>,
    name: Key<'_>,
    ip: Option<IpAddr>,
    port: Option<u16>,
    mac: Option<[u8; 6]>,
    asn: Option<u32>,
) {
    if ip.is_none() && port.is_none() && mac.is_none() && asn.is_none() {
        return;
    }
    c.begin_object(name);
    if let Some(ip) = ip {
        c.member_ip(key!("ip"), ip);
    }
    if let Some(p) = port {
        c.member_u64(key!("port"), u64::from(p));
    }
    if let Some(m) = mac {
        c.member_mac(key!("mac"), &m);
    }
    if let Some(a) = asn {
        c.begin_object(key!("as"));
        c.member_u64(key!("number"), u64::from(a));
        c.end_object();
    }
    c.end_object();
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::text::*;
    use super::time::*;
    use super::*;

    /// The formatter before the pair table and the minute cache: the reference.
    fn rfc3339_reference(ns: u64) -> [u8; 32] {
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
        out
    }

    fn t(ns: u64) -> String {
        let mut b = Vec::new();
        write_rfc3339(&mut b, ns);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn rfc3339_text() {
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

    fn ip_text(ip: IpAddr) -> String {
        let mut b = Vec::new();
        write_ip(&mut b, ip);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn ip_formatting_matches_std() {
        let cases = [
            "::",
            "::1",
            "1::",
            "::ffff:1.2.3.4",
            "::ffff:0.0.0.0",
            "::ffff:255.255.255.255",
            "::1.2.3.4",
            "::ffff:0:1.2.3.4",
            "64:ff9b::192.0.2.33",
            "2001:db8::1",
            "2001:db8:0:0:1:0:0:1",
            "2001:0:0:1:0:0:0:1",
            "2001:db8:0:1:1:1:1:1",
            "1:0:0:0:0:0:0:0",
            "0:0:0:0:0:0:0:1",
            "1:0:1:0:1:0:1:0",
            "0:1:0:1:0:1:0:1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fe80::1:2:3:4",
            "0:0:1::",
            "1:2:3:4:5:6:7:8",
            "abcd:ef01:2345:6789:abcd:ef01:2345:6789",
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.1",
            "192.168.100.7",
            "1.20.199.255",
        ];
        for c in cases {
            let ip: IpAddr = c.parse().unwrap();
            assert_eq!(ip_text(ip), format!("\"{ip}\""), "{c}");
        }
        for i in 0..=255u8 {
            let ip = IpAddr::from([i, 255 - i, i / 3, i.wrapping_mul(7)]);
            assert_eq!(ip_text(ip), format!("\"{ip}\""));
        }
    }

    /// IPv6 groups drawn mostly from 0 and a few small / large values, so zero runs of every
    /// length and position, IPv4-mapped and IPv4-compatible forms all come up.
    fn group() -> impl proptest::strategy::Strategy<Value = u16> {
        use proptest::prelude::*;
        prop_oneof![
            4 => proptest::strategy::Just(0u16),
            1 => proptest::strategy::Just(0xffffu16),
            1 => proptest::strategy::Just(1u16),
            2 => 0u16..0x10,
            2 => any::<u16>(),
        ]
    }

    /// Start times for the time proptests: 1970, a leap day, today, anywhere, the far future.
    fn time_bases() -> impl proptest::strategy::Strategy<Value = u64> {
        proptest::prop_oneof![
            proptest::strategy::Just(0u64),
            0u64..200_000_000_000_000,
            951_782_400_000_000_000u64..951_868_800_000_000_000,
            1_700_000_000_000_000_000u64..1_700_000_100_000_000_000,
            0u64..u64::MAX,
            proptest::strategy::Just(u64::MAX - 3_600_000_000_000),
        ]
    }

    /// Steps between consecutive times: the same time, the next nanosecond, within the second,
    /// the next second, minute(s), day, within the hour.
    fn time_steps() -> impl proptest::strategy::Strategy<Value = u64> {
        proptest::prop_oneof![
            proptest::strategy::Just(0u64),
            proptest::strategy::Just(1u64),
            0u64..1_000_000_000,
            proptest::strategy::Just(1_000_000_000u64),
            proptest::strategy::Just(60_000_000_000u64),
            proptest::strategy::Just(240_000_000_000u64),
            proptest::strategy::Just(86_400_000_000_000u64),
            0u64..3_600_000_000_000,
        ]
    }

    proptest::proptest! {
        #[test]
        fn ipv6_formatting_matches_std(g in proptest::array::uniform8(group())) {
            let ip = IpAddr::V6(Ipv6Addr::from(g));
            proptest::prop_assert_eq!(ip_text(ip), format!("\"{ip}\""));
        }

        #[test]
        fn ipv6_any_bits_matches_std(bits in proptest::prelude::any::<u128>()) {
            let ip = IpAddr::V6(Ipv6Addr::from(bits));
            proptest::prop_assert_eq!(ip_text(ip), format!("\"{ip}\""));
        }

        #[test]
        fn ipv4_mapped_matches_std(v4 in proptest::prelude::any::<[u8; 4]>(), g5 in group()) {
            let [a, b, c, d] = v4;
            let ip = IpAddr::V6(Ipv6Addr::new(
                0, 0, 0, 0, 0, g5,
                u16::from_be_bytes([a, b]),
                u16::from_be_bytes([c, d]),
            ));
            proptest::prop_assert_eq!(ip_text(ip), format!("\"{ip}\""));
            let ip4 = IpAddr::from(v4);
            proptest::prop_assert_eq!(ip_text(ip4), format!("\"{ip4}\""));
        }

        #[test]
        fn mac_and_hex(m in proptest::prelude::any::<[u8; 6]>(),
                       v in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100)) {
            let mut b = Vec::new();
            write_mac(&mut b, &m);
            let want = format!(
                "\"{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}\"",
                m[0], m[1], m[2], m[3], m[4], m[5]
            );
            proptest::prop_assert_eq!(String::from_utf8(b).unwrap(), want);
            let mut b = Vec::new();
            let mut w = JsonWriter::new(&mut b);
            w.begin();
            w.hex("h", &v);
            w.end_object();
            let hex: String = v.iter().map(|x| format!("{x:02x}")).collect();
            proptest::prop_assert_eq!(String::from_utf8(b).unwrap(), format!("{{\"h\":\"{hex}\"}}"));
        }

        #[test]
        fn strings_escape_like_serde(v in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let mut b = Vec::new();
            write_escaped(&mut b, &v);
            let back: String = serde_json::from_slice(&b).unwrap();
            proptest::prop_assert_eq!(back, String::from_utf8_lossy(&v).into_owned());
        }

        #[test]
        fn u64_text_matches_itoa_near_powers_of_ten(k in 0u32..20, d in 0u64..3, down in proptest::prelude::any::<bool>()) {
            let p = 10u64.pow(k);
            let v = if down { p.saturating_sub(d) } else { p.saturating_add(d) };
            for v in [v, v.saturating_mul(9), u64::MAX - d] {
                let mut b = Vec::new();
                write_u64(&mut b, v);
                let mut itoa_buf = itoa::Buffer::new();
                proptest::prop_assert_eq!(&b[..], itoa_buf.format(v).as_bytes());
            }
        }

        #[test]
        fn u64_text_matches_itoa(v in proptest::prelude::any::<u64>(), shift in 0u32..64) {
            for v in [v, v >> shift, v % 100_000, v % 1000, v % 100, v % 10] {
                let mut b = Vec::new();
                write_u64(&mut b, v);
                let mut itoa_buf = itoa::Buffer::new();
                proptest::prop_assert_eq!(&b[..], itoa_buf.format(v).as_bytes());
            }
        }

        /// Sequences of nearby and far times (same second, next second, next minute / day, leap
        /// days, 1970, the far future) through the minute cache against the reference formatter.
        #[test]
        fn minute_cache_gives_the_same_text(
            base in time_bases(),
            steps in proptest::collection::vec(time_steps(), 1..20),
            back in proptest::collection::vec(proptest::prelude::any::<bool>(), 20),
        ) {
            use proptest::prelude::*;
            let mut ns = base;
            for (i, d) in steps.into_iter().enumerate() {
                ns = if back[i] { ns.saturating_sub(d) } else { ns.saturating_add(d) };
                prop_assert_eq!(rfc3339(ns), rfc3339_reference(ns), "{}", ns);
                let last = (ns / 1_000_000_000 * 1_000_000_000).saturating_add(999_999_999);
                for n in [ns, ns.saturating_add(1), last, last.saturating_add(1)] {
                    prop_assert_eq!(rfc3339(n), rfc3339_reference(n), "{}", n);
                }
            }
        }

        #[test]
        fn time_cache_gives_the_same_text(a in 0u64..u64::MAX, b in 0u64..u64::MAX, c in 0u64..u64::MAX, d in 0u64..u64::MAX) {
            let mut cached = Vec::new();
            let mut w = JsonWriter::new(&mut cached);
            let mut plain = Vec::new();
            // u64::MAX: the time an unused entry holds
            for ns in [a, b, a, c, b, d, c, a, d, b, a, a, u64::MAX, a, u64::MAX] {
                w.time_ns("t", ns);
                write_rfc3339(&mut plain, ns);
            }
            proptest::prop_assert_eq!(cached.len() > plain.len(), true);
            let text = String::from_utf8(cached).unwrap().replace(",\"t\":", "").replace("\"t\":", "");
            proptest::prop_assert_eq!(text, String::from_utf8(plain).unwrap());
            for ns in [a, b, c] {
                proptest::prop_assert_eq!(rfc3339(ns), rfc3339_reference(ns));
            }
        }
    }

    proptest::proptest! {
        /// Times of consecutive documents (the same time again, the next nanosecond, second,
        /// minute, day; times of earlier documents) through the thread's time cache against the
        /// plain formatter.
        #[test]
        fn time_cache_across_documents(
            base in time_bases(),
            steps in proptest::collection::vec(time_steps(), 1..40),
            back in proptest::collection::vec(proptest::prelude::any::<bool>(), 40),
        ) {
            let mut ns = base;
            let mut seen = Vec::new();
            for (i, d) in steps.into_iter().enumerate() {
                ns = if back[i] { ns.saturating_sub(d) } else { ns.saturating_add(d) };
                seen.push(ns);
                let mut doc = Vec::new();
                let mut w = JsonWriter::new(&mut doc);
                let mut plain = Vec::new();
                for t in [ns, seen[i / 2], ns, seen[0], u64::MAX, ns] {
                    w.time_ns(key!("t"), t);
                    plain.extend_from_slice(b",\"t\":");
                    write_rfc3339(&mut plain, t);
                }
                proptest::prop_assert_eq!(doc, plain);
            }
        }
    }

    /// The widest ECS part there is (every member present, with its longest text, over every
    /// choice of the members that exclude each other) fits in [`ECS_MAX`] with room for the
    /// widest fixed-size write: the cursor never runs past what it was given.
    #[test]
    fn ecs_bound_holds() {
        let wide6 = IpAddr::V6(Ipv6Addr::from(u128::MAX));
        let mut r = FlowRecord::new(
            FlowProtocol::NetflowV9,
            std::net::SocketAddr::new(wide6, u16::MAX),
        );
        r.export_time_ns = Some(u64::MAX);
        r.sequence = Some(u32::MAX);
        r.domain = Some(u32::MAX);
        r.template_id = Some(u16::MAX);
        (r.src_addr, r.dst_addr) = (Some(wide6), Some(wide6));
        (r.src_port, r.dst_port) = (Some(u16::MAX), Some(u16::MAX));
        (r.bytes, r.packets) = (Some(u64::MAX), Some(u64::MAX));
        (r.reverse_bytes, r.reverse_packets) = (Some(u64::MAX), Some(u64::MAX));
        (r.reverse_tcp_flags, r.tcp_flags) = (Some(u16::MAX), Some(u16::MAX));
        r.tos = Some(u8::MAX);
        (r.in_if, r.out_if) = (Some(u32::MAX), Some(u32::MAX));
        (r.src_as, r.dst_as) = (Some(u32::MAX), Some(u32::MAX));
        (r.src_mask, r.dst_mask) = (Some(u8::MAX), Some(u8::MAX));
        (r.next_hop, r.bgp_next_hop) = (Some(wide6), Some(wide6));
        (r.src_mac, r.dst_mac) = (Some([0xff; 6]), Some([0xff; 6]));
        (r.vlan, r.src_vlan, r.dst_vlan) = (Some(u16::MAX), Some(u16::MAX), Some(u16::MAX));
        (r.flow_end_reason, r.icmp_type, r.icmp_code) = (Some(255), Some(255), Some(255));
        for _ in 0..20 {
            r.mpls.push(u32::MAX);
        }
        (r.start_ns, r.end_ns) = (Some(0), Some(u64::MAX));
        (r.start_uptime_ms, r.end_uptime_ms) = (Some(u64::MAX), Some(u64::MAX));
        (r.sampling_rate, r.sampler_id, r.scaled) = (Some(u32::MAX), Some(u64::MAX), true);
        let mut widest = 0;
        let mut doc = Vec::new();
        for kind in [RecordKind::Flow, RecordKind::Counters] {
            for protocol in [FlowProtocol::NetflowV5, FlowProtocol::Sflow5] {
                for p in 0..=255u8 {
                    for direction in [0, 1, 255] {
                        for ip_version in [4, 6, 255] {
                            for tb in [TimeBasis::Absolute, TimeBasis::UptimeUnresolved] {
                                for ss in [SamplingSource::V5Header, SamplingSource::Unknown] {
                                    let r = FlowRecord {
                                        kind,
                                        protocol,
                                        ip_protocol: Some(p),
                                        direction: Some(direction),
                                        ip_version: Some(ip_version),
                                        time_basis: Some(tb),
                                        sampling_source: Some(ss),
                                        ..r
                                    };
                                    doc.clear();
                                    encode(&r, &EncodeOptions::default(), &mut doc);
                                    // the document is `{`, the members after their first comma, `}`
                                    widest = widest.max(doc.len() - 1);
                                }
                            }
                        }
                    }
                }
            }
        }
        // the widest fixed-size write: an IPv6 address's 48 bytes
        assert!(widest + 48 <= ECS_MAX, "{widest} + 48 > {ECS_MAX}");
        // the bound is not far above what it has to hold (a memset of it per document)
        assert!(ECS_MAX < widest + 512, "{widest}");
    }

    #[test]
    fn unused_time_cache_entries_are_right() {
        assert_eq!(MAX_TEXT, rfc3339(u64::MAX));
        assert_eq!(MAX_TEXT, rfc3339_reference(u64::MAX));
        // every slot unused on a new thread
        std::thread::spawn(|| {
            let mut b = Vec::new();
            JsonWriter::new(&mut b).time_ns("t", u64::MAX);
            assert_eq!(&b[5..], &MAX_TEXT[..]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn rfc3339_matches_the_reference_at_edges() {
        let day = 86_400_000_000_000u64;
        let mut cases = vec![
            0,
            1,
            999_999_999,
            1_000_000_000,
            59_999_999_999,
            60_000_000_000,
        ];
        for d in [
            0u64, 58, 59, 60, 365, 789, 790, 11_016, 11_017, 19_722, 47_541, 200_000,
        ] {
            for off in [0, 1, 59_999_999_999, 60_000_000_000, day - 1] {
                cases.push(d * day + off);
            }
        }
        cases.extend([u64::MAX, u64::MAX - 1, u64::MAX / 2]);
        for ns in cases {
            // twice: through a missed and a hit minute cache
            assert_eq!(rfc3339(ns), rfc3339_reference(ns), "{ns}");
            assert_eq!(rfc3339(ns), rfc3339_reference(ns), "{ns}");
        }
    }

    #[test]
    fn u64_text_matches_itoa_on_ranges() {
        let mut itoa_buf = itoa::Buffer::new();
        let mut b = Vec::new();
        let strided = (0..100_000_000u64).step_by(9_973);
        // every digit count's edges
        let edges = (0..20u32).flat_map(|k| {
            let p = 10u64.pow(k);
            p.saturating_sub(2)..=p.saturating_add(2)
        });
        let mut c = Vec::new();
        for v in (0..200_000u64)
            .chain(strided)
            .chain(edges)
            .chain(u64::MAX - 100_000..=u64::MAX)
        {
            b.clear();
            write_u64(&mut b, v);
            assert_eq!(&b[..], itoa_buf.format(v).as_bytes());
            // the cursor's writer, after a byte
            c.clear();
            c.push(b'x');
            JsonWriter::new(&mut c).with_cursor(Cursor::VALUE_MAX, |w| w.u64(v));
            assert_eq!(&c[1..], &b[..], "{v}");
        }
    }

    /// What `write` writes, and what `str_plain` writes for `(key, name)` (nothing for `None`).
    fn written(
        write: impl FnOnce(&mut JsonWriter<'_>),
        plain: Option<(Key<'_>, &str)>,
    ) -> (Vec<u8>, Vec<u8>) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write(&mut JsonWriter::new(&mut a));
        if let Some((k, name)) = plain {
            JsonWriter::new(&mut b).str_plain(k, name);
        }
        (a, b)
    }

    #[test]
    fn transport_names_and_fixed_strings() {
        for p in 0..=255u8 {
            let (a, b) = written(
                |w| w.with_cursor(64, |c| write_transport(c, p)),
                transport_name(p).map(|n| (key!("transport"), n)),
            );
            assert_eq!(a, b, "{p}");
        }
        for tb in [
            TimeBasis::Absolute,
            TimeBasis::Uptime,
            TimeBasis::UptimeUnresolved,
        ] {
            let (a, b) = written(
                |w| w.with_cursor(64, |c| write_time_basis(c, tb)),
                Some((key!("time_basis"), tb.as_str())),
            );
            assert_eq!(a, b);
        }
        for s in [
            SamplingSource::V5Header,
            SamplingSource::Record,
            SamplingSource::Options,
            SamplingSource::Sflow,
            SamplingSource::Unknown,
        ] {
            let (a, b) = written(
                |w| w.with_cursor(64, |c| write_sampling_source(c, s)),
                Some((key!("sampling_source"), s.as_str())),
            );
            assert_eq!(a, b);
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        JsonWriter::new(&mut a).with_cursor(64, |c| c.member_quoted(key!("type"), b"\"ipv4\""));
        JsonWriter::new(&mut b).str_plain(key!("type"), "ipv4");
        assert_eq!(a, b);
        // an empty run of members: an object like begin_object's
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut w = JsonWriter::new(&mut a);
        w.begin();
        w.with_cursor(64, |c| {
            c.begin_object_with(key!("o"), b"");
            c.end_object();
        });
        w.end_object();
        let mut w = JsonWriter::new(&mut b);
        w.begin();
        w.begin_object(key!("o"));
        w.end_object();
        w.end_object();
        assert_eq!(a, b);
        assert_eq!(a, br#"{"o":{}}"#);
    }

    #[test]
    fn long_and_unpadded_keys() {
        let long = "k".repeat(70);
        let kb = KeyBuf::new(&long);
        let unpadded = Key::fragment_for("plain");
        let mut a = Vec::new();
        let mut w = JsonWriter::new(&mut a);
        w.begin();
        w.u64(kb.key(), 1);
        w.u64(Key::from_fragment(&unpadded), 2);
        w.begin_object(kb.key());
        w.u64(Key::from_fragment(&unpadded), 3);
        w.u64(kb.key(), u64::MAX);
        w.end_object();
        w.end_object();
        let want = format!(
            r#"{{"{long}":1,"plain":2,"{long}":{{"plain":3,"{long}":18446744073709551615}}}}"#
        );
        assert_eq!(std::str::from_utf8(&a).unwrap(), want);
    }

    #[test]
    fn keys_and_fragments_write_the_same() {
        let mut a = Vec::new();
        let mut w = JsonWriter::new(&mut a);
        w.begin();
        w.u64(key!("a"), 1);
        w.begin_object(key!("o"));
        w.u64(key!("x"), 2);
        w.begin_array(key!("l"));
        w.item_u64(1);
        w.end_array();
        w.end_object();
        w.with_cursor(128, |c| {
            c.begin_object_with(key!("p"), br#""k":"v""#);
            c.member_quoted(key!("z"), b"false");
            c.end_object();
        });
        w.end_object();
        let mut b = Vec::new();
        let mut w = JsonWriter::new(&mut b);
        w.begin();
        w.u64("a", 1);
        w.begin_object("o");
        w.u64("x", 2);
        w.begin_array("l");
        w.item_u64(1);
        w.end_array();
        w.end_object();
        w.begin_object("p");
        w.str_plain("k", "v");
        w.bool("z", false);
        w.end_object();
        w.end_object();
        assert_eq!(a, b);
        assert_eq!(
            std::str::from_utf8(&a).unwrap(),
            r#"{"a":1,"o":{"x":2,"l":[1]},"p":{"k":"v","z":false}}"#
        );
    }
}
