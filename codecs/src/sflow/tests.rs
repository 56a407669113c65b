//! Unit tests on inline datagrams.

use std::net::{IpAddr, SocketAddr};

use super::*;
use crate::error::ErrorKind;
use crate::json::{encode, EncodeOptions};
use crate::packet::tests::{ipv4, ipv6, tcp, udp, DST, SRC};

/// Big-endian words and XDR pieces, for writing test datagrams readably.
#[derive(Default, Clone)]
struct B(Vec<u8>);

impl B {
    fn new() -> Self {
        B(Vec::new())
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    /// opaque<>: length, bytes, padding
    fn opaque(self, b: &[u8]) -> Self {
        let pad = (4 - b.len() % 4) % 4;
        self.u32(b.len() as u32).raw(b).raw(&[0; 3][..pad])
    }
    /// data_format, length, body (a sample or a record)
    fn item(self, data_format: u32, body: B) -> Self {
        self.u32(data_format).u32(body.0.len() as u32).raw(&body.0)
    }
}

const AGENT4: [u8; 8] = [0, 0, 0, 1, 192, 0, 2, 1];

fn datagram(agent: &[u8], seq: u32, samples: &[(u32, B)]) -> Vec<u8> {
    let mut b = B::new()
        .u32(5)
        .raw(agent)
        .u32(7) // sub agent
        .u32(seq)
        .u32(123_456) // uptime
        .u32(samples.len() as u32);
    for (f, s) in samples {
        b = b.item(*f, s.clone());
    }
    b.0
}

fn eth_ipv4_tcp() -> Vec<u8> {
    let mut f = DST.to_vec();
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a, 0x08, 0x00]);
    f.extend(ipv4(6, 0x28, 0x4000, &[], &tcp(443, 50123, 0x18)));
    f
}

fn raw_header(protocol: u32, frame_length: u32, header: &[u8]) -> B {
    B::new()
        .u32(protocol)
        .u32(frame_length)
        .u32(4)
        .opaque(header)
}

/// A compact flow sample with `records`.
fn flow_sample(seq: u32, input: u32, output: u32, records: &[(u32, B)]) -> B {
    let mut b = B::new()
        .u32(seq)
        .u32(3) // source id: ifIndex 3
        .u32(512) // rate
        .u32(100_000) // pool
        .u32(2) // drops
        .u32(input)
        .u32(output)
        .u32(records.len() as u32);
    for (f, r) in records {
        b = b.item(*f, r.clone());
    }
    b
}

fn switch(src: u32, dst: u32) -> B {
    B::new().u32(src).u32(1).u32(dst).u32(2)
}

fn router() -> B {
    B::new().u32(1).raw(&[10, 1, 1, 1]).u32(24).u32(16)
}

fn gateway() -> B {
    B::new()
        .u32(1)
        .raw(&[10, 2, 2, 2]) // next hop
        .u32(64500) // router AS
        .u32(64501) // src AS
        .u32(64502) // src peer AS
        .u32(2) // two segments
        .u32(2)
        .u32(2)
        .u32(64510)
        .u32(64511)
        .u32(1)
        .u32(1)
        .u32(64512)
        .u32(2) // communities
        .u32(0xfde8_0001)
        .u32(0xfde8_0002)
        .u32(100) // localpref
}

fn if_counters(if_index: u32) -> B {
    B::new()
        .u32(if_index)
        .u32(6)
        .u64(10_000_000_000)
        .u32(1)
        .u32(3)
        .u64(1_000_000_000_000)
        .u32(11)
        .u32(12)
        .u32(13)
        .u32(14)
        .u32(15)
        .u32(16)
        .u64(2_000_000)
        .u32(21)
        .u32(22)
        .u32(23)
        .u32(24)
        .u32(25)
        .u32(0)
}

fn ethernet_counters() -> B {
    (1..=13).fold(B::new(), |b, i| b.u32(100 + i))
}

fn exporter() -> SocketAddr {
    "198.51.100.7:6343".parse().unwrap()
}

fn run(buf: &[u8]) -> (Vec<FlowRecord<'_>>, DecodeStats, Result<(), DecodeError>) {
    let mut v = Vec::new();
    let mut st = DecodeStats::default();
    let r = decode(exporter(), buf, &mut st, &mut |r| v.push(*r));
    (v, st, r)
}

fn json(r: &FlowRecord<'_>) -> serde_json::Value {
    let mut b = Vec::new();
    encode(r, &EncodeOptions::default(), &mut b);
    serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&b)))
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn datagram_header_ipv4_agent() {
    let b = datagram(&AGENT4, 99, &[]);
    let d = Datagram::new_checked(&b).unwrap();
    assert_eq!(d.version(), 5);
    assert_eq!(d.agent(), "192.0.2.1".parse::<IpAddr>().unwrap());
    assert_eq!(d.sub_agent_id(), 7);
    assert_eq!(d.sequence_number(), 99);
    assert_eq!(d.uptime_ms(), 123_456);
    assert_eq!(d.num_samples(), 0);
    assert_eq!(d.samples().count(), 0);
}

#[test]
fn datagram_header_ipv6_and_unknown_agent() {
    let mut a = vec![0, 0, 0, 2];
    a.extend_from_slice(&[
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42,
    ]);
    let b = datagram(&a, 1, &[(1, flow_sample(1, 1, 2, &[]))]);
    let d = Datagram::new_checked(&b).unwrap();
    assert_eq!(d.agent(), "2001:db8::42".parse::<IpAddr>().unwrap());
    assert_eq!(d.sequence_number(), 1);
    let (v, st, r) = run(&b);
    assert_eq!(r, Ok(()));
    assert_eq!(st.errors_total(), 0);
    assert_eq!(v[0].agent, ip("2001:db8::42"));

    let b = datagram(&[0, 0, 0, 0], 3, &[]);
    let d = Datagram::new_checked(&b).unwrap();
    assert_eq!(d.agent_address(), None);
    assert_eq!(d.agent(), "0.0.0.0".parse::<IpAddr>().unwrap());
    assert_eq!(d.sequence_number(), 3);
}

#[test]
fn bad_datagram_headers() {
    let b = datagram(&AGENT4, 1, &[]);
    for n in 0..b.len() {
        let e = Datagram::new_checked(&b[..n]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Truncated, "cut at {n}");
        assert!(run(&b[..n]).2.is_err());
    }
    let mut v4 = b.clone();
    v4[3] = 4;
    assert_eq!(
        Datagram::new_checked(&v4).unwrap_err(),
        DecodeError::UnsupportedVersion { version: 4 }
    );
    let mut t = b.clone();
    t[7] = 9;
    assert_eq!(
        Datagram::new_checked(&t).unwrap_err(),
        DecodeError::invalid("sflow agent address", 4, 9)
    );
}

#[test]
fn flow_sample_with_raw_header_switch_router_gateway() {
    let hdr = eth_ipv4_tcp();
    let b = datagram(
        &AGENT4,
        42,
        &[(
            1,
            flow_sample(
                9,
                5,
                6,
                &[
                    (1, raw_header(1, 1518, &hdr)),
                    (1001, switch(42, 43)),
                    (1002, router()),
                    (1003, gateway()),
                ],
            ),
        )],
    );
    let (v, st, r) = run(&b);
    assert_eq!(r, Ok(()));
    assert_eq!(st.errors_total(), 0);
    assert_eq!(v.len(), 1);
    let rec = &v[0];
    assert_eq!(rec.kind, RecordKind::Flow);
    assert_eq!(rec.protocol, FlowProtocol::Sflow5);
    assert_eq!(rec.exporter, exporter());
    assert_eq!(rec.agent, ip("192.0.2.1"));
    assert_eq!(rec.domain, Some(7));
    assert_eq!(rec.sequence, Some(42));
    assert_eq!(rec.sampling_rate, Some(512));
    assert_eq!(rec.sampling_source, Some(SamplingSource::Sflow));
    assert_eq!(rec.in_if, Some(5));
    assert_eq!(rec.out_if, Some(6));
    assert_eq!(rec.bytes, Some(1518));
    assert_eq!(rec.packets, Some(1));
    assert_eq!(rec.dst_mac, Some(DST));
    assert_eq!(rec.src_mac, Some(SRC));
    assert_eq!(rec.vlan, Some(42));
    assert_eq!(rec.ip_version, Some(4));
    assert_eq!(rec.src_addr, ip("10.0.0.1"));
    assert_eq!(rec.dst_addr, ip("10.0.0.2"));
    assert_eq!(rec.ip_protocol, Some(6));
    assert_eq!(rec.tos, Some(0x28));
    assert_eq!(rec.src_port, Some(443));
    assert_eq!(rec.dst_port, Some(50123));
    assert_eq!(rec.tcp_flags, Some(0x18));
    assert_eq!(rec.src_vlan, Some(42));
    assert_eq!(rec.dst_vlan, Some(43));
    assert_eq!(rec.next_hop, ip("10.1.1.1"));
    assert_eq!(rec.bgp_next_hop, ip("10.2.2.2"));
    assert_eq!(rec.src_mask, Some(24));
    assert_eq!(rec.dst_mask, Some(16));
    assert_eq!(rec.src_as, Some(64501));
    assert_eq!(rec.dst_as, Some(64512));
    let Raw::Sflow(raw) = rec.raw else {
        panic!("raw")
    };
    assert_eq!(raw.sample_sequence(), Some(9));

    let j = json(rec);
    let s = &j["sflow"];
    assert_eq!(s["agent"], "192.0.2.1");
    assert_eq!(s["sub_agent_id"], 7);
    assert_eq!(s["sequence_number"], 42);
    assert_eq!(s["uptime_ms"], 123_456);
    assert_eq!(s["sample_type"], "flow_sample");
    assert_eq!(s["sample_sequence"], 9);
    assert_eq!(s["source_id_type"], 0);
    assert_eq!(s["source_id_index"], 3);
    assert_eq!(s["sampling_rate"], 512);
    assert_eq!(s["sample_pool"], 100_000);
    assert_eq!(s["drops"], 2);
    assert_eq!(s["input_interface_format"], 0);
    assert_eq!(s["output_interface_value"], 6);
    assert_eq!(
        s["flow_record_types"],
        serde_json::json!([
            "raw_packet_header",
            "extended_switch",
            "extended_router",
            "extended_gateway"
        ])
    );
    assert_eq!(s["header_protocol"], 1);
    assert_eq!(s["frame_length"], 1518);
    assert_eq!(s["stripped"], 4);
    assert_eq!(s["header_length"], hdr.len());
    assert_eq!(s["src_vlan"], 42);
    assert_eq!(s["dst_priority"], 2);
    assert_eq!(s["next_hop"], "10.1.1.1");
    assert_eq!(s["src_mask"], 24);
    assert_eq!(s["bgp_next_hop"], "10.2.2.2");
    assert_eq!(s["router_as"], 64500);
    assert_eq!(s["src_peer_as"], 64502);
    assert_eq!(s["dst_as_path"], serde_json::json!([64510, 64511, 64512]));
    assert_eq!(s["dst_as"], 64512);
    assert_eq!(
        s["communities"],
        serde_json::json!([0xfde8_0001u32, 0xfde8_0002u32])
    );
    assert_eq!(s["local_pref"], 100);
    assert!(s.get("other_records").is_none());
    // ECS side
    assert_eq!(j["source"]["ip"], "10.0.0.1");
    assert_eq!(j["destination"]["as"]["number"], 64512);
    assert_eq!(j["network"]["bytes"], 1518);
    assert_eq!(j["flow"]["sampling_source"], "sflow");
}

#[test]
fn expanded_flow_sample_with_qinq() {
    let mut hdr = DST.to_vec();
    hdr.extend_from_slice(&SRC);
    hdr.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x86, 0xdd]);
    hdr.extend(ipv6(17, 0x10, &udp(5353, 53)));
    let body = B::new()
        .u32(77) // sequence
        .u32(0) // source id type
        .u32(0x0100_0000) // index > 2^24
        .u32(2048)
        .u32(5)
        .u32(0)
        .u32(0) // input format
        .u32(0x0200_0000) // input value
        .u32(0)
        .u32(0x0200_0001)
        .u32(1)
        .item(1, raw_header(1, 200, &hdr));
    let b = datagram(&AGENT4, 1, &[(3, body)]);
    let (v, st, _) = run(&b);
    assert_eq!(st.errors_total(), 0);
    let rec = &v[0];
    assert_eq!(rec.in_if, Some(0x0200_0000));
    assert_eq!(rec.out_if, Some(0x0200_0001));
    assert_eq!(rec.sampling_rate, Some(2048));
    assert_eq!(rec.vlan, Some(100));
    assert_eq!(rec.ip_version, Some(6));
    assert_eq!(rec.src_addr, ip("2001:db8::1"));
    assert_eq!(rec.tos, Some(0x10));
    assert_eq!(rec.src_port, Some(5353));
    assert_eq!(rec.dst_port, Some(53));
    assert_eq!(rec.tcp_flags, None);
    let j = json(rec);
    assert_eq!(j["sflow"]["sample_type"], "expanded_flow_sample");
    assert_eq!(j["sflow"]["source_id_index"], 0x0100_0000);
    assert_eq!(j["sflow"]["input_interface_value"], 0x0200_0000);
}

#[test]
fn discarded_and_multiple_output_interfaces() {
    let disc = flow_sample(1, 4, 0x4000_0102, &[]);
    let multi = flow_sample(2, 0x3fff_ffff, 0x8000_0007, &[]);
    let b = datagram(&AGENT4, 1, &[(1, disc), (1, multi)]);
    let (v, _, _) = run(&b);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].in_if, Some(4));
    assert_eq!(v[0].out_if, None);
    assert_eq!(v[1].in_if, Some(0x3fff_ffff)); // internal, as on the wire
    assert_eq!(v[1].out_if, None);
    let j = json(&v[0]);
    assert_eq!(j["sflow"]["output_interface_format"], 1);
    assert_eq!(j["sflow"]["output_interface_value"], 0x102);
    let j = json(&v[1]);
    assert_eq!(j["sflow"]["output_interface_format"], 2);
    assert_eq!(j["sflow"]["output_interface_value"], 7);
}

#[test]
fn counters_samples_generic_ethernet_and_unknown() {
    let compact = B::new()
        .u32(10)
        .u32(17) // ifIndex 17
        .u32(4)
        .item(1, if_counters(17))
        .item(2, ethernet_counters())
        .item(1001, B::new().u32(5).u32(6).u32(7))
        .item(4413 << 12 | 5, B::new().u32(0xdead_beef));
    let expanded = B::new()
        .u32(11)
        .u32(0)
        .u32(0x0300_0000)
        .u32(1)
        .item(1, if_counters(0x0300_0000));
    let b = datagram(&AGENT4, 5, &[(2, compact), (4, expanded)]);
    let (v, st, r) = run(&b);
    assert_eq!(r, Ok(()));
    assert_eq!(st.errors_total(), 0);
    assert_eq!(v.len(), 2);
    assert!(v.iter().all(|r| r.kind == RecordKind::Counters));
    assert_eq!(v[0].in_if, Some(17));
    assert_eq!(v[0].sequence, Some(5));
    assert_eq!(v[0].bytes, None);
    assert_eq!(v[1].in_if, Some(0x0300_0000));

    let j = json(&v[0]);
    let s = &j["sflow"];
    assert_eq!(s["sample_type"], "counters_sample");
    assert_eq!(s["sample_sequence"], 10);
    assert_eq!(s["source_id_index"], 17);
    assert_eq!(
        s["counter_record_types"],
        serde_json::json!([
            "generic_interface",
            "ethernet_interface",
            "processor",
            "4413:5"
        ])
    );
    assert_eq!(s["if_index"], 17);
    assert_eq!(s["if_type"], 6);
    assert_eq!(s["if_speed"], 10_000_000_000u64);
    assert_eq!(s["if_status"], 3);
    assert_eq!(s["if_in_octets"], 1_000_000_000_000u64);
    assert_eq!(s["if_in_ucast_pkts"], 11);
    assert_eq!(s["if_in_unknown_protos"], 16);
    assert_eq!(s["if_out_octets"], 2_000_000);
    assert_eq!(s["if_out_errors"], 25);
    assert_eq!(s["if_promiscuous_mode"], 0);
    assert_eq!(s["dot3_stats_alignment_errors"], 101);
    assert_eq!(s["dot3_stats_symbol_errors"], 113);
    let o = &s["other_records"];
    assert_eq!(o["enterprise"], serde_json::json!([0, 4413]));
    assert_eq!(o["format"], serde_json::json!([1001, 5]));
    assert_eq!(o["length"], serde_json::json!([12, 4]));
    assert_eq!(
        o["data"],
        serde_json::json!(["000000050000000600000007", "deadbeef"])
    );
    let j = json(&v[1]);
    assert_eq!(j["sflow"]["sample_type"], "expanded_counters_sample");
    assert_eq!(j["sflow"]["if_index"], 0x0300_0000);
}

#[test]
fn unknown_samples_and_records_are_skipped_without_error() {
    let hdr = eth_ipv4_tcp();
    let fs = flow_sample(
        1,
        1,
        2,
        &[
            (1006, B::new().u32(0)),        // extended mpls: kept raw
            (9 << 12 | 1, B::new().u32(1)), // enterprise 9
            (1, raw_header(1, 64, &hdr)),
        ],
    );
    let b = datagram(
        &AGENT4,
        1,
        &[
            (5, B::new().u32(1).u32(2)),
            (4413 << 12 | 1, B::new()),
            (1, fs),
        ],
    );
    let (v, st, r) = run(&b);
    assert_eq!(r, Ok(()));
    assert_eq!(st.errors_total(), 0);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].src_port, Some(443));
    let s = &json(&v[0])["sflow"];
    assert_eq!(
        s["flow_record_types"],
        serde_json::json!(["extended_mpls", "9:1", "raw_packet_header"])
    );
    assert_eq!(s["other_records"]["format"], serde_json::json!([1006, 1]));
    assert_eq!(
        s["other_records"]["data"],
        serde_json::json!(["00000000", "00000001"])
    );
}

#[test]
fn ethernet_ipv4_ipv6_data_records_without_raw_header() {
    let eth = B::new()
        .u32(1400)
        .raw(&SRC)
        .raw(&[0, 0])
        .raw(&DST)
        .raw(&[0, 0])
        .u32(0x0800);
    let v4 = B::new()
        .u32(1382)
        .u32(17)
        .raw(&[10, 9, 8, 7])
        .raw(&[10, 9, 8, 6])
        .u32(1000)
        .u32(2000)
        .u32(0)
        .u32(0x20);
    let mut a = [0u8; 16];
    a[0] = 0xfe;
    a[1] = 0x80;
    a[15] = 1;
    let mut b6 = B::new().u32(80).u32(6).raw(&a);
    a[15] = 2;
    b6 = b6.raw(&a).u32(22).u32(3333).u32(0x12).u32(0);
    let b = datagram(
        &AGENT4,
        1,
        &[
            (1, flow_sample(1, 1, 2, &[(2, eth), (3, v4)])),
            (1, flow_sample(2, 1, 2, &[(4, b6)])),
        ],
    );
    let (v, st, _) = run(&b);
    assert_eq!(st.errors_total(), 0);
    let r = &v[0];
    assert_eq!(r.bytes, Some(1400)); // the Ethernet length wins over the IP length
    assert_eq!(r.src_mac, Some(SRC));
    assert_eq!(r.dst_mac, Some(DST));
    assert_eq!(r.ip_version, Some(4));
    assert_eq!(r.src_addr, ip("10.9.8.7"));
    assert_eq!(r.ip_protocol, Some(17));
    assert_eq!(r.src_port, Some(1000));
    assert_eq!(r.dst_port, Some(2000));
    assert_eq!(r.tcp_flags, None);
    assert_eq!(r.tos, Some(0x20));
    let r = &v[1];
    assert_eq!(r.bytes, Some(80));
    assert_eq!(r.ip_version, Some(6));
    assert_eq!(r.dst_addr, ip("fe80::2"));
    assert_eq!(r.tcp_flags, Some(0x12));
    assert_eq!(r.src_port, Some(22));
}

#[test]
fn raw_header_is_preferred_over_ip_data() {
    let hdr = eth_ipv4_tcp();
    let v4 = B::new()
        .u32(99)
        .u32(17)
        .raw(&[1, 1, 1, 1])
        .raw(&[2, 2, 2, 2])
        .u32(1)
        .u32(2)
        .u32(0)
        .u32(0);
    let b = datagram(
        &AGENT4,
        1,
        &[(
            1,
            flow_sample(1, 1, 2, &[(3, v4), (1, raw_header(1, 700, &hdr))]),
        )],
    );
    let (v, _, _) = run(&b);
    assert_eq!(v[0].bytes, Some(700));
    assert_eq!(v[0].src_addr, ip("10.0.0.1"));
    assert_eq!(v[0].ip_protocol, Some(6));
    assert_eq!(v[0].src_port, Some(443));
}

#[test]
fn raw_header_ip_ipv6_and_mpls_protocols() {
    let v4 = ipv4(1, 0, 0, &[], &[0, 0, 0, 0]);
    let mut ext = vec![58, 0, 5, 2, 0, 0, 1, 0]; // hop-by-hop with router alert
    ext.extend_from_slice(&[143, 0, 0, 0, 0, 0, 0, 1]);
    let v6 = ipv6(0, 0, &ext);
    let mut mpls = vec![0x00, 0x01, 0x01, 0x40];
    mpls.extend(ipv4(17, 0, 0, &[], &udp(4789, 4789)));
    let b = datagram(
        &AGENT4,
        1,
        &[
            (1, flow_sample(1, 1, 2, &[(1, raw_header(11, 50, &v4))])),
            (1, flow_sample(2, 1, 2, &[(1, raw_header(12, 90, &v6))])),
            (1, flow_sample(3, 1, 2, &[(1, raw_header(13, 90, &mpls))])),
            (1, flow_sample(4, 1, 2, &[(1, raw_header(7, 90, &mpls))])), // PPP: not parsed
        ],
    );
    let (v, st, _) = run(&b);
    assert_eq!(st.errors_total(), 0);
    assert_eq!(v[0].ip_version, Some(4));
    assert_eq!(v[0].src_mac, None);
    assert_eq!((v[0].icmp_type, v[0].icmp_code), (Some(0), Some(0)));
    assert_eq!(v[1].ip_version, Some(6));
    assert_eq!(v[1].ip_protocol, Some(58));
    assert_eq!(v[1].icmp_type, Some(143));
    assert_eq!(v[2].mpls.as_slice(), &[16]);
    assert_eq!(v[2].dst_port, Some(4789));
    assert_eq!(v[3].bytes, Some(90));
    assert_eq!(v[3].src_addr, None);
    assert!(json(&v[2])["flow"]["mpls_labels"] == serde_json::json!([16]));
}

#[test]
fn truncated_sampled_headers_give_what_was_parsed() {
    let hdr = eth_ipv4_tcp();
    // cut inside the TCP header (before the flags) and inside the IPv4 source address
    let tcp_start = 18 + 20;
    let b = datagram(
        &AGENT4,
        1,
        &[
            (
                1,
                flow_sample(1, 1, 2, &[(1, raw_header(1, 1500, &hdr[..tcp_start + 6]))]),
            ),
            (
                1,
                flow_sample(2, 1, 2, &[(1, raw_header(1, 1500, &hdr[..18 + 14]))]),
            ),
        ],
    );
    let (v, st, _) = run(&b);
    assert_eq!(
        st.errors_total(),
        0,
        "a short header is normal, not an error"
    );
    assert_eq!(v[0].src_port, Some(443));
    assert_eq!(v[0].dst_port, Some(50123));
    assert_eq!(v[0].tcp_flags, None);
    assert_eq!(v[1].ip_protocol, Some(6));
    assert_eq!(v[1].src_addr, None);
    assert_eq!(v[1].vlan, Some(42));
}

#[test]
fn header_length_overrunning_its_record_is_an_error() {
    let bad = B::new().u32(1).u32(1500).u32(4).u32(200).raw(&[0; 16]);
    let b = datagram(
        &AGENT4,
        1,
        &[(1, flow_sample(1, 1, 2, &[(1, bad), (1001, switch(5, 6))]))],
    );
    let (v, st, r) = run(&b);
    assert_eq!(r, Ok(()));
    assert_eq!(st.errors[ErrorKind::Truncated.index()], 1);
    assert_eq!(v.len(), 1, "the sample is still emitted");
    assert_eq!(v[0].bytes, None);
    assert_eq!(v[0].src_vlan, Some(5), "the next record is still read");
    let s = &json(&v[0])["sflow"];
    assert_eq!(
        s["flow_record_types"],
        serde_json::json!(["extended_switch"])
    );
}

#[test]
fn short_fixed_record_is_an_error_and_skipped() {
    let hdr = eth_ipv4_tcp();
    let b = datagram(
        &AGENT4,
        1,
        &[(
            1,
            flow_sample(
                1,
                1,
                2,
                &[
                    (1001, B::new().u32(1).u32(2)),
                    (1002, B::new().u32(1)),
                    (1, raw_header(1, 64, &hdr)),
                ],
            ),
        )],
    );
    let (v, st, _) = run(&b);
    assert_eq!(st.errors_total(), 2);
    assert_eq!(v[0].src_vlan, None);
    assert_eq!(v[0].next_hop, None);
    assert_eq!(v[0].src_port, Some(443));
}

#[test]
fn record_overrunning_its_sample_stops_the_records() {
    let hdr = eth_ipv4_tcp();
    let mut fs = flow_sample(
        1,
        1,
        2,
        &[(1, raw_header(1, 64, &hdr)), (1001, switch(1, 2))],
    );
    // the switch record's length: 16 -> 400
    let at = fs.0.len() - 16 - 4;
    fs.0[at..at + 4].copy_from_slice(&400u32.to_be_bytes());
    let b = datagram(&AGENT4, 1, &[(1, fs), (1, flow_sample(2, 1, 2, &[]))]);
    let (v, st, _) = run(&b);
    assert_eq!(st.errors_total(), 1);
    assert_eq!(v.len(), 2, "the sample and the next one are emitted");
    assert_eq!(v[0].src_port, Some(443));
    assert_eq!(v[0].src_vlan, None);
}

#[test]
fn more_records_announced_than_present() {
    let mut fs = flow_sample(1, 1, 2, &[(1001, switch(1, 2))]);
    fs.0[28..32].copy_from_slice(&3u32.to_be_bytes());
    let b = datagram(&AGENT4, 1, &[(1, fs)]);
    let (v, st, _) = run(&b);
    assert_eq!(st.errors_total(), 1);
    assert_eq!(v[0].src_vlan, Some(1));
}

#[test]
fn sample_overrunning_the_datagram_stops_it() {
    let mut b = datagram(
        &AGENT4,
        1,
        &[
            (1, flow_sample(1, 1, 2, &[])),
            (1, flow_sample(2, 1, 2, &[])),
            (1, flow_sample(3, 1, 2, &[])),
        ],
    );
    // second sample's length (32) -> 1000
    let second = 28 + 8 + 32;
    b[second + 4..second + 8].copy_from_slice(&1000u32.to_be_bytes());
    let (v, st, r) = run(&b);
    assert_eq!(r, Ok(()));
    assert_eq!(st.errors[ErrorKind::Truncated.index()], 1);
    assert_eq!(v.len(), 1);
    assert_eq!(sample_sequence(&v[0]), Some(1));
}

#[test]
fn fewer_samples_than_announced_and_trailing_bytes() {
    let mut b = datagram(&AGENT4, 1, &[(1, flow_sample(1, 1, 2, &[]))]);
    b[27] = 2;
    let (v, st, _) = run(&b);
    assert_eq!(v.len(), 1);
    assert_eq!(st.errors_total(), 1);

    let mut b = datagram(&AGENT4, 1, &[(1, flow_sample(1, 1, 2, &[]))]);
    b.extend_from_slice(&[0xde, 0xad]);
    let (v, st, _) = run(&b);
    assert_eq!(v.len(), 1);
    assert_eq!(st.errors_total(), 0);
}

#[test]
fn short_sample_header_is_an_error() {
    let b = datagram(
        &AGENT4,
        1,
        &[
            (1, B::new().u32(1).u32(2)),
            (2, B::new().u32(1)),
            (1, flow_sample(3, 1, 2, &[])),
        ],
    );
    let (v, st, _) = run(&b);
    assert_eq!(st.errors_total(), 2);
    assert_eq!(v.len(), 1);
}

#[test]
fn gateway_with_empty_path_and_no_router() {
    let g = B::new()
        .u32(2)
        .raw(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9])
        .u32(1)
        .u32(2)
        .u32(3)
        .u32(0)
        .u32(0); // no local pref: tolerated
    let b = datagram(&AGENT4, 1, &[(1, flow_sample(1, 1, 2, &[(1003, g)]))]);
    let (v, st, _) = run(&b);
    assert_eq!(st.errors_total(), 0);
    assert_eq!(v[0].src_as, Some(2));
    assert_eq!(v[0].dst_as, None);
    assert_eq!(v[0].next_hop, ip("2001:db8::9"));
    assert_eq!(v[0].bgp_next_hop, ip("2001:db8::9"));
    let s = &json(&v[0])["sflow"];
    assert_eq!(s["dst_as_path"], serde_json::json!([]));
    assert!(s.get("local_pref").is_none());

    // an AS count larger than the record
    let g = B::new()
        .u32(0)
        .u32(1)
        .u32(2)
        .u32(3)
        .u32(1)
        .u32(2)
        .u32(0x4000_0000)
        .u32(1);
    let b = datagram(&AGENT4, 1, &[(1, flow_sample(1, 1, 2, &[(1003, g)]))]);
    let (v, st, _) = run(&b);
    assert_eq!(st.errors_total(), 1);
    assert_eq!(v[0].src_as, None);
}

#[test]
fn vlan_and_mask_out_of_range_are_dropped() {
    let r = B::new().u32(0).u32(200).u32(33);
    let b = datagram(
        &AGENT4,
        1,
        &[(
            1,
            flow_sample(1, 1, 2, &[(1001, switch(u32::MAX, 4095)), (1002, r)]),
        )],
    );
    let (v, _, _) = run(&b);
    assert_eq!(v[0].src_vlan, None);
    assert_eq!(v[0].dst_vlan, Some(4095));
    assert_eq!(v[0].next_hop, None);
    assert_eq!(v[0].src_mask, None);
    assert_eq!(v[0].dst_mask, Some(33));
    assert_eq!(json(&v[0])["sflow"]["src_vlan"], u64::from(u32::MAX));
}

#[test]
fn duplicate_records_go_to_other_records_in_json() {
    let b = datagram(
        &AGENT4,
        1,
        &[(
            1,
            flow_sample(1, 1, 2, &[(1001, switch(1, 2)), (1001, switch(3, 4))]),
        )],
    );
    let (v, _, _) = run(&b);
    let s = &json(&v[0])["sflow"];
    assert_eq!(s["src_vlan"], 1);
    assert_eq!(s["other_records"]["format"], serde_json::json!([1001]));
}

#[test]
fn long_unknown_record_data_is_cut_in_json() {
    let big = B::new().raw(&[0xab; 1500]);
    let b = datagram(
        &AGENT4,
        1,
        &[(2, B::new().u32(1).u32(1).u32(1).item(77, big))],
    );
    let (v, _, _) = run(&b);
    let s = &json(&v[0])["sflow"];
    assert_eq!(s["other_records"]["length"], serde_json::json!([1500]));
    assert_eq!(s["other_records"]["data"][0].as_str().unwrap().len(), 2048);
}

/// A real flow sample (from the shape of the akvorado "sflow-raw-ipv4" capture: header protocol
/// 11, 32 header bytes), written out byte by byte.
#[test]
fn literal_datagram() {
    #[rustfmt::skip]
    let b: [u8; 128] = [
        0, 0, 0, 5,  0, 0, 0, 1,  172, 19, 64, 116,  0, 1, 0x86, 0xa0, // v5, agent, sub agent 100000
        0, 0, 0, 1,  0, 0, 0x1b, 0x3b,  0, 0, 0, 1,                   // seq 1, uptime 6971, 1 sample
        0, 0, 0, 1,  0, 0, 0, 88,                                     // flow sample, 88 bytes
        0, 0, 0, 1,  0, 0, 0, 2,  0, 0, 0, 1,  0, 0, 0, 1,  0, 0, 0, 0, // seq, src, rate, pool, drops
        0, 0, 0, 0,  0, 0, 0, 2,  0, 0, 0, 1,                         // in 0, out 2, 1 record
        0, 0, 0, 1,  0, 0, 0, 48,                                     // raw header, 48 bytes
        0, 0, 0, 11, 0, 0, 0, 50,  0, 0, 0, 18,  0, 0, 0, 32,         // IPv4, frame 50, stripped 18
        0x45, 0x08, 0, 50, 0, 1, 0, 0, 64, 1, 0, 0, 69, 58, 92, 107, 92, 222, 186, 1,
        0, 0, 0x12, 0x34, 0, 1, 0, 1, 0, 0, 0, 0,
        0xff, 0xff, 0xff, 0xff,                                       // trailing garbage
    ];
    let (v, st, r) = run(&b);
    assert_eq!(r, Ok(()));
    assert_eq!(st.errors_total(), 0);
    assert_eq!(v.len(), 1);
    let rec = &v[0];
    assert_eq!(rec.agent, ip("172.19.64.116"));
    assert_eq!(rec.domain, Some(100_000));
    assert_eq!(rec.in_if, Some(0));
    assert_eq!(rec.out_if, Some(2));
    assert_eq!(rec.bytes, Some(50));
    assert_eq!(rec.tos, Some(8));
    assert_eq!(rec.src_addr, ip("69.58.92.107"));
    assert_eq!(rec.dst_addr, ip("92.222.186.1"));
    assert_eq!(rec.ip_protocol, Some(1));
    assert_eq!((rec.icmp_type, rec.icmp_code), (Some(0), Some(0)));
    assert_eq!(json(rec)["sflow"]["uptime_ms"], 6971);
}

#[test]
fn every_truncation_and_bit_flip_is_safe() {
    let hdr = eth_ipv4_tcp();
    let b = datagram(
        &AGENT4,
        1,
        &[
            (
                1,
                flow_sample(
                    1,
                    5,
                    6,
                    &[
                        (1, raw_header(1, 1518, &hdr)),
                        (1001, switch(1, 2)),
                        (1002, router()),
                        (1003, gateway()),
                    ],
                ),
            ),
            (
                2,
                B::new()
                    .u32(1)
                    .u32(1)
                    .u32(2)
                    .item(1, if_counters(1))
                    .item(2, ethernet_counters()),
            ),
        ],
    );
    let mut out = Vec::new();
    for n in 0..=b.len() {
        let (v, _, _) = run(&b[..n]);
        for r in &v {
            out.clear();
            encode(r, &EncodeOptions::default(), &mut out);
            serde_json::from_slice::<serde_json::Value>(&out).unwrap();
        }
    }
    let mut m = b.clone();
    for i in 0..m.len() {
        for bit in [0x01u8, 0x80, 0xff] {
            m[i] ^= bit;
            let (v, _, _) = run(&m);
            for r in &v {
                out.clear();
                encode(r, &EncodeOptions::default(), &mut out);
                serde_json::from_slice::<serde_json::Value>(&out).unwrap();
            }
            m[i] ^= bit;
        }
    }
}

fn sample_sequence(r: &FlowRecord<'_>) -> Option<u32> {
    match r.raw {
        Raw::Sflow(s) => s.sample_sequence(),
        _ => None,
    }
}
