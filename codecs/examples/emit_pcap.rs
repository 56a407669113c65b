//! Write encoded NetFlow v5, NetFlow v9 and IPFIX messages to classic pcap files (Ethernet /
//! IPv4 / UDP to port 2055), to check the encoders against an independent decoder:
//!
//! ```text
//! cargo run -p ferroflow-codecs --example emit_pcap -- /tmp/ff
//! tshark -r /tmp/ff/ipfix.pcap -d udp.port==2055,cflow -V
//! ```
//!
//! The values written are fixed; the tshark output is compared with them.
//!
//! `emit_pcap --bench` instead times the generator's paths (run it with `--release`).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use ferroflow_codecs::encode::{
    ipfix, netflow5, netflow9, EncodeError, FieldSpecRepr, FieldValue, FlowRepr, TemplateRepr,
};

const EXPORT_SECS: u32 = 1_700_000_000;
const UPTIME_MS: u32 = 3_600_000;
const PORT: u16 = 2055;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    if arg == "--bench" {
        return bench();
    }
    let dir = PathBuf::from(arg);
    std::fs::create_dir_all(&dir)?;
    for (name, msgs) in [
        ("v5.pcap", netflow_v5()?),
        ("v9.pcap", netflow_v9()?),
        ("ipfix.pcap", ipfix_messages()?),
        (
            "ipfix-options-withdrawal.pcap",
            ipfix_options_withdrawals()?,
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, pcap(&msgs)?)?;
        let sizes: Vec<usize> = msgs.iter().map(Vec::len).collect();
        println!(
            "{}: {} messages, payload bytes {:?}",
            path.display(),
            msgs.len(),
            sizes
        );
    }
    Ok(())
}

fn boot_ms() -> u64 {
    u64::from(EXPORT_SECS) * 1000 - u64::from(UPTIME_MS)
}

/// The i-th IPv4 flow: 10.0.0.(i+1):(40000+i) -> 192.0.2.(i+1):443/tcp, ...
fn flow4(i: u8) -> FlowRepr {
    let end = u64::from(EXPORT_SECS) * 1000 - 1000 * u64::from(i);
    FlowRepr {
        src_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i + 1)),
        dst_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, i + 1)),
        next_hop: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254)),
        src_port: 40_000 + u16::from(i),
        dst_port: 443,
        protocol: 6,
        tcp_flags: 0x1b,
        tos: 0x20,
        octets: 150_000 + u64::from(i),
        packets: 100 + u64::from(i),
        input: 3,
        output: 4,
        start_ms: end - 5_000,
        end_ms: end,
        src_as: 65_001,
        dst_as: 65_002,
        src_mask: 24,
        dst_mask: 16,
        direction: u8::from(i % 2 == 1),
        sampler_id: 1,
    }
}

fn flow6() -> FlowRepr {
    FlowRepr {
        src_addr: "2001:db8::1".parse().unwrap(),
        dst_addr: "2001:db8:1::2".parse().unwrap(),
        next_hop: "fe80::1".parse().unwrap(),
        src_mask: 48,
        dst_mask: 64,
        protocol: 17,
        src_port: 5353,
        dst_port: 53,
        tcp_flags: 0,
        ..flow4(7)
    }
}

fn netflow_v5() -> Result<Vec<Vec<u8>>, EncodeError> {
    let h = netflow5::HeaderRepr {
        sys_uptime_ms: UPTIME_MS,
        unix_secs: EXPORT_SECS,
        unix_nsecs: 123_456_789,
        flow_sequence: 1000,
        engine_type: 1,
        engine_id: 2,
        sampling_mode: 1,
        sampling_interval: 100,
    };
    let recs: Vec<netflow5::RecordRepr> = (0..3)
        .map(|i| netflow5::RecordRepr::from_flow(&flow4(i), &h).unwrap())
        .collect();
    let mut a = Vec::new();
    netflow5::emit(&h, &recs, &mut a)?;
    // Extreme values in a second datagram.
    let max = netflow5::RecordRepr {
        src_addr: Ipv4Addr::new(255, 255, 255, 255),
        dst_addr: Ipv4Addr::new(0, 0, 0, 0),
        next_hop: Ipv4Addr::new(198, 51, 100, 1),
        input: u16::MAX,
        output: u16::MAX,
        packets: u32::MAX,
        octets: u32::MAX,
        first_ms: 0,
        last_ms: u32::MAX,
        src_port: u16::MAX,
        dst_port: 0,
        tcp_flags: 0xff,
        protocol: 255,
        tos: 0xff,
        src_as: u16::MAX,
        dst_as: 0,
        src_mask: 32,
        dst_mask: 0,
    };
    let h2 = netflow5::HeaderRepr {
        flow_sequence: 1003,
        sampling_mode: 0,
        sampling_interval: 0,
        ..h
    };
    let mut b = Vec::new();
    netflow5::emit(&h2, &[max], &mut b)?;
    Ok(vec![a, b])
}

fn netflow_v9() -> Result<Vec<Vec<u8>>, EncodeError> {
    use netflow9::templates as t9;
    let t4 = t9::ipv4_basic(256);
    let t6 = t9::ipv6_basic(257);
    let ts = t9::ipv4_sampled(258);
    let so = t9::sampling_options(259);
    let sm = t9::sampler_options(260);
    // IN_BYTES in 8 bytes, IN_PKTS in 2, a MAC address (SRC_MAC 56), IPV4_SRC_PREFIX 44.
    let custom = TemplateRepr {
        id: 261,
        fields: vec![
            FieldSpecRepr::new(8, 4),
            FieldSpecRepr::new(1, 8),
            FieldSpecRepr::new(2, 2),
            FieldSpecRepr::new(56, 6),
            FieldSpecRepr::new(44, 4),
        ],
    };
    let hdr = |sequence| netflow9::HeaderRepr {
        sys_uptime_ms: UPTIME_MS,
        unix_secs: EXPORT_SECS,
        sequence,
        source_id: 0x0102_0304,
    };
    let mut msgs = Vec::new();

    // 1: templates and options templates.
    let mut buf = Vec::new();
    let mut w = netflow9::Writer::begin(&mut buf, &hdr(1));
    w.template_set(&[t4.clone(), t6.clone(), ts.clone()])?;
    w.options_template_set(&[so.clone(), sm.clone()])?;
    w.finish()?;
    msgs.push(buf);

    // 2: data of every template, options data; one record through the pre-encoded path.
    let mut buf = Vec::new();
    let mut w = netflow9::Writer::begin(&mut buf, &hdr(2));
    w.begin_data_set(&t4)?;
    w.record_flow(&flow4(0))?;
    w.record_flow(&flow4(1))?;
    w.begin_data_set(&t6)?;
    w.record_flow(&flow6())?;
    w.begin_data_set(&ts)?;
    w.record_flow(&flow4(2))?;
    w.begin_options_data_set(&so)?;
    w.record(&t9::sampling_values(0, 100, 2))?;
    w.begin_options_data_set(&sm)?;
    w.record(&t9::sampler_values(0, 1, 2, 100))?;
    w.finish()?;
    msgs.push(buf);

    // 3: a template and its data in one packet; record_bytes.
    let mut pre = Vec::new();
    let mut w = netflow9::Writer::begin(&mut pre, &hdr(0));
    w.begin_data_set(&custom)?;
    w.record(&[
        FieldValue::Ipv4(Ipv4Addr::new(172, 16, 0, 9)),
        FieldValue::Unsigned(5_000_000_000),
        FieldValue::Unsigned(65_535),
        FieldValue::Mac([0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc]),
        FieldValue::Ipv4(Ipv4Addr::new(172, 16, 0, 0)),
    ])?;
    w.set_padding(false);
    w.finish()?;
    let record = &pre[netflow9::HEADER_LEN + 4..];
    let mut buf = Vec::new();
    let mut w = netflow9::Writer::begin(&mut buf, &hdr(3));
    w.template_set(std::slice::from_ref(&custom))?;
    w.begin_data_set(&custom)?;
    w.record_bytes(record)?;
    w.finish()?;
    msgs.push(buf);
    Ok(msgs)
}

fn ipfix_messages() -> Result<Vec<Vec<u8>>, EncodeError> {
    use ipfix::templates as tx;
    let t4 = tx::ipv4_basic(256);
    let t6 = tx::ipv6_basic(257);
    let ts = tx::ipv4_sampled(258);
    // Reduced-size counters, enterprise fields (RFC 5103 reverse PEN 29305 and the
    // documentation PEN 32473), variable-length fields, a MAC and a seconds timestamp.
    let custom = TemplateRepr {
        id: 259,
        fields: vec![
            FieldSpecRepr::new(8, 4),
            FieldSpecRepr::new(12, 4),
            FieldSpecRepr::new(1, 4),
            FieldSpecRepr::new(2, 2),
            FieldSpecRepr::new(4, 1),
            FieldSpecRepr::variable(96),
            FieldSpecRepr::enterprise(1, 29305, 8),
            FieldSpecRepr::enterprise(2, 29305, 4),
            FieldSpecRepr::enterprise(1, 32473, 4),
            FieldSpecRepr::enterprise(2, 32473, ipfix::VARIABLE_LENGTH),
            FieldSpecRepr::new(56, 6),
            FieldSpecRepr::new(151, 4),
        ],
    };
    let so = tx::sampling_options(260);
    let sl = tx::sampling_options_legacy(261);
    let io = tx::interface_options(262);
    let hdr = |sequence| ipfix::HeaderRepr {
        export_time: EXPORT_SECS,
        sequence,
        observation_domain: 42,
    };
    let mut msgs = Vec::new();

    // 1: templates and options templates, padded sets.
    let mut buf = Vec::new();
    let mut w = ipfix::Writer::begin(&mut buf, &hdr(0));
    w.set_padding(true);
    w.template_set(&[t4.clone(), t6.clone(), ts.clone(), custom.clone()])?;
    w.options_template_set(&[so.clone(), sl.clone(), io.clone()])?;
    w.finish()?;
    msgs.push(buf);

    // 2: data for every template, padded sets.
    let mut buf = Vec::new();
    let mut w = ipfix::Writer::begin(&mut buf, &hdr(0));
    w.set_padding(true).set_system_init_ms(boot_ms());
    w.begin_data_set(&t4)?;
    w.record_flow(&flow4(0))?;
    w.record_flow(&flow4(1))?;
    w.begin_data_set(&t6)?;
    w.record_flow(&flow6())?;
    w.begin_data_set(&ts)?;
    w.record_flow(&flow4(2))?;
    w.begin_data_set(&custom)?;
    let long_name = "x".repeat(300);
    for (app, rev) in [("dns", 7u64), (long_name.as_str(), u64::MAX)] {
        w.record(&[
            FieldValue::Ipv4(Ipv4Addr::new(10, 1, 1, 1)),
            FieldValue::Ipv4(Ipv4Addr::new(10, 2, 2, 2)),
            FieldValue::Unsigned(4_000_000_000),
            FieldValue::Unsigned(65_000),
            FieldValue::Unsigned(17),
            FieldValue::Bytes(app.as_bytes().to_vec()),
            FieldValue::Unsigned(rev),
            FieldValue::Unsigned(12),
            FieldValue::Bytes(vec![0xde, 0xad, 0xbe, 0xef]),
            FieldValue::Bytes(b"enterprise-varlen".to_vec()),
            FieldValue::Mac([0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc]),
            FieldValue::Unsigned(u64::from(EXPORT_SECS)),
        ])?;
    }
    w.begin_options_data_set(&so)?;
    w.record(&tx::sampling_values(1, 3, 1, 99))?;
    w.begin_options_data_set(&sl)?;
    w.record(&tx::sampling_legacy_values(42, 100, 1))?;
    w.begin_options_data_set(&io)?;
    w.record(&tx::interface_values(3, "ge-0/0/3", "uplink to core"))?;
    w.record(&tx::interface_values(4, "ge-0/0/4", &"d".repeat(260)))?;
    let seq = w.data_record_count();
    w.finish()?;
    msgs.push(buf);

    // 3: withdrawal of one template; 4: of all templates.
    let mut buf = Vec::new();
    let mut w = ipfix::Writer::begin(&mut buf, &hdr(seq));
    w.template_withdrawal(&[257])?;
    w.finish()?;
    msgs.push(buf);
    let mut buf = Vec::new();
    let mut w = ipfix::Writer::begin(&mut buf, &hdr(seq));
    w.template_withdrawal(&[ipfix::TEMPLATE_SET_ID])?;
    w.finish()?;
    msgs.push(buf);
    Ok(msgs)
}

/// Options template withdrawals (RFC 7011 8.1: template id and field count 0, 4 bytes), kept
/// apart: tshark 4.0 reads a scope field count after the field count even in a withdrawal
/// and reports these (correct) records as malformed.
fn ipfix_options_withdrawals() -> Result<Vec<Vec<u8>>, EncodeError> {
    let hdr = ipfix::HeaderRepr {
        export_time: EXPORT_SECS,
        sequence: 0,
        observation_domain: 42,
    };
    let mut msgs = Vec::new();
    for ids in [&[262u16][..], &[ipfix::OPTIONS_TEMPLATE_SET_ID][..]] {
        let mut buf = Vec::new();
        let mut w = ipfix::Writer::begin(&mut buf, &hdr);
        w.options_template_withdrawal(ids)?;
        w.finish()?;
        msgs.push(buf);
    }
    Ok(msgs)
}

/// Records per second of the paths the traffic generator uses: messages of about 1400 bytes
/// written into one reused buffer.
fn bench() -> Result<(), Box<dyn std::error::Error>> {
    use std::time::Instant;
    const MESSAGES: usize = 200_000;
    let flows: Vec<FlowRepr> = (0..64).map(|i| flow4(i as u8)).collect();
    let mut buf = Vec::with_capacity(2048);
    let report = |name: &str, records: usize, t: Instant| {
        let s = t.elapsed().as_secs_f64();
        println!(
            "{name:<28} {records:>9} records  {:>6.1} M records/s  {:>5.0} ns/record",
            records as f64 / s / 1e6,
            s * 1e9 / records as f64
        );
    };

    let t4 = ipfix::templates::ipv4_basic(256);
    let h = ipfix::HeaderRepr::default();
    let per_msg = (1400 - ipfix::HEADER_LEN - 4) / 70;
    let start = Instant::now();
    for m in 0..MESSAGES {
        buf.clear();
        let mut w = ipfix::Writer::begin(&mut buf, &h);
        w.begin_data_set(&t4)?;
        for i in 0..per_msg {
            w.record_flow(&flows[(m + i) % flows.len()])?;
        }
        std::hint::black_box(w.finish()?);
    }
    report("ipfix record_flow", MESSAGES * per_msg, start);

    let mut pre = Vec::new();
    let mut w = ipfix::Writer::begin(&mut pre, &h);
    w.begin_data_set(&t4)?;
    w.record_flow(&flows[0])?;
    w.finish()?;
    let rec = pre[ipfix::HEADER_LEN + 4..].to_vec();
    let start = Instant::now();
    for _ in 0..MESSAGES {
        buf.clear();
        let mut w = ipfix::Writer::begin(&mut buf, &h);
        w.begin_data_set(&t4)?;
        for _ in 0..per_msg {
            w.record_bytes(&rec)?;
        }
        std::hint::black_box(w.finish()?);
    }
    report("ipfix record_bytes", MESSAGES * per_msg, start);

    let t9 = netflow9::templates::ipv4_basic(256);
    let h9 = netflow9::HeaderRepr::default();
    let per_msg = (1400 - netflow9::HEADER_LEN - 4) / 54;
    let start = Instant::now();
    for m in 0..MESSAGES {
        buf.clear();
        let mut w = netflow9::Writer::begin(&mut buf, &h9);
        w.begin_data_set(&t9)?;
        for i in 0..per_msg {
            w.record_flow(&flows[(m + i) % flows.len()])?;
        }
        std::hint::black_box(w.finish()?);
    }
    report("netflow9 record_flow", MESSAGES * per_msg, start);

    let h5 = netflow5::HeaderRepr::default();
    let recs: Vec<netflow5::RecordRepr> = flows[..30]
        .iter()
        .map(|f| netflow5::RecordRepr::from_flow(f, &h5).unwrap_or_default())
        .collect();
    let start = Instant::now();
    for _ in 0..MESSAGES {
        buf.clear();
        netflow5::emit(&h5, &recs, &mut buf)?;
        std::hint::black_box(&buf);
    }
    report("netflow5 emit", MESSAGES * 30, start);
    Ok(())
}

/// A classic pcap of `payloads`, each in Ethernet / IPv4 / UDP from 192.0.2.10:50000 to
/// 192.0.2.20:`PORT`, a millisecond apart from `EXPORT_SECS`.
fn pcap(payloads: &[Vec<u8>]) -> std::io::Result<Vec<u8>> {
    let mut w = ferroflow_io::pcap::Writer::new(Vec::new())?;
    let src = "192.0.2.10:50000".parse().expect("valid");
    let dst = std::net::SocketAddr::new(Ipv4Addr::new(192, 0, 2, 20).into(), PORT);
    for (i, p) in payloads.iter().enumerate() {
        let ts_ns = u64::from(EXPORT_SECS) * 1_000_000_000 + i as u64 * 1_000_000;
        w.write_udp(ts_ns, src, dst, p)?;
    }
    Ok(w.into_inner())
}
