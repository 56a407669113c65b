use std::net::UdpSocket;

use ferroflow_codecs::{Decoder, DecoderConfig};

use super::*;

fn cfg(p: Protocol) -> GenConfig {
    GenConfig::new(p, "127.0.0.1:9".parse().unwrap())
}

/// Decodes `packets` as exporter `src` and returns (records, sequence gaps, decode errors,
/// sampling rates seen).
fn decode_all(
    src: SocketAddr,
    packets: &[Vec<u8>],
) -> (u64, u64, u64, std::collections::BTreeSet<u32>) {
    let mut d = Decoder::new(DecoderConfig::default());
    let mut rates = std::collections::BTreeSet::new();
    for p in packets {
        let _ = d.decode(src, 1, p, &mut |r| {
            if let Some(x) = r.sampling_rate {
                rates.insert(x);
            }
        });
    }
    let s = d.stats();
    (s.records_total(), s.sequence_gaps, s.errors_total(), rates)
}

/// Stamps templates and `n` data packets (templates again halfway) and returns them in
/// order with the flows they carry.
fn stamp(e: &mut ExporterPackets, n: usize) -> (Vec<Vec<u8>>, u64) {
    let mut out = Vec::new();
    let mut flows = 0;
    let t0 = 1_700_000_000_000u64;
    for i in 0..n {
        if e.has_templates() && (i == 0 || i == n / 2) {
            out.push(e.stamp_templates(t0 + i as u64).to_vec());
        }
        let (slot, f) = e.stamp_next(t0 + i as u64);
        flows += u64::from(f);
        out.push(e.slot(slot).to_vec());
    }
    (out, flows)
}

#[test]
fn every_protocol_decodes_with_no_sequence_gap() {
    for p in Protocol::ALL {
        for (sampling, v6) in [(None, 0.0), (Some(100), 0.0), (Some(512), 0.3)] {
            if p == Protocol::Netflow5 && v6 > 0.0 {
                continue;
            }
            let mut c = cfg(p);
            c.sampling = sampling;
            c.ipv6_fraction = v6;
            let src: SocketAddr = "127.0.0.5:40000".parse().unwrap();
            let mut e = ExporterPackets::build(&c, 4, src.ip(), 16).unwrap();
            // more packets than the pool: the pool wraps, sequence numbers go on
            let (packets, flows) = stamp(&mut e, 40);
            assert_eq!(flows, 40 * p.default_flows_per_packet() as u64);
            let (records, gaps, errors, rates) = decode_all(src, &packets);
            assert_eq!(errors, 0, "{p} sampling {sampling:?}");
            assert_eq!(records, flows, "{p} sampling {sampling:?} v6 {v6}");
            assert_eq!(gaps, 0, "{p} sampling {sampling:?} v6 {v6}");
            if let Some(r) = sampling {
                assert_eq!(rates.into_iter().collect::<Vec<_>>(), vec![r], "{p}");
            }
            // the default flows per packet fill about 1.3 KB with IPv4 records (IPv6 records
            // are longer)
            if v6 == 0.0 {
                for pk in &packets {
                    assert!(pk.len() <= 1500, "{p}: {} bytes", pk.len());
                }
            }
        }
    }
}

#[test]
fn a_lost_packet_shows_as_a_gap() {
    let src: SocketAddr = "127.0.0.5:40000".parse().unwrap();
    for p in Protocol::ALL {
        let mut e = ExporterPackets::build(&cfg(p), 0, src.ip(), 8).unwrap();
        let (mut packets, _) = stamp(&mut e, 6);
        let at = packets.len() - 2;
        packets.remove(at);
        let (_, gaps, _, _) = decode_all(src, &packets);
        assert!(gaps > 0, "{p}");
    }
}

#[test]
fn ipv6_fraction_is_kept() {
    let src: SocketAddr = "127.0.0.5:40000".parse().unwrap();
    let mut c = cfg(Protocol::Ipfix);
    c.ipv6_fraction = 0.25;
    let mut e = ExporterPackets::build(&c, 0, src.ip(), 16).unwrap();
    let (packets, _) = stamp(&mut e, 16);
    let mut d = Decoder::new(DecoderConfig::default());
    let (mut v4, mut v6) = (0, 0);
    for pk in &packets {
        let _ = d.decode(src, 1, pk, &mut |r| {
            if r.src_addr.is_some_and(|a| a.is_ipv6()) {
                v6 += 1
            } else {
                v4 += 1
            }
        });
    }
    assert_eq!(v6 * 3, v4, "{v4} v4, {v6} v6");
}

#[test]
fn config_is_checked() {
    let mut c = cfg(Protocol::Netflow5);
    c.ipv6_fraction = 0.5;
    assert!(matches!(run(&c), Err(GenError::Config(_))));
    let mut c = cfg(Protocol::Netflow5);
    c.flows_per_packet = 31;
    assert!(matches!(run(&c), Err(GenError::Config(_))));
    assert_eq!("IPFIX".parse::<Protocol>(), Ok(Protocol::Ipfix));
    assert!("v7".parse::<Protocol>().is_err());
}

#[test]
fn exporters_have_distinct_sources() {
    let t: SocketAddr = "127.0.0.1:2055".parse().unwrap();
    assert_eq!(
        exporter_addr(t, SourceAddrs::Distinct, 3).ip(),
        "127.0.0.4".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        exporter_addr(t, SourceAddrs::Ports, 3).ip(),
        "127.0.0.1".parse::<IpAddr>().unwrap()
    );
    let t6: SocketAddr = "[::1]:2055".parse().unwrap();
    assert!(exporter_addr(t6, SourceAddrs::Distinct, 3).is_ipv6());
}

/// Over loopback: a count-bounded run from 3 exporters on 2 threads arrives whole, each
/// exporter's sequence numbers without a gap.
#[test]
fn sends_the_count_over_loopback_without_gaps() {
    for p in Protocol::ALL {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut c = GenConfig::new(p, rx.local_addr().unwrap());
        c.count = Some(60);
        c.exporters = 3;
        c.threads = 2;
        c.rate = Rate::Packets(20_000.0);
        c.sampling = Some(10);
        let report = run(&c).unwrap();
        assert_eq!(report.data_packets, 60);
        let templates = if matches!(p, Protocol::Netflow9 | Protocol::Ipfix) {
            3
        } else {
            0
        };
        assert_eq!(report.template_packets, templates);
        assert_eq!(report.flows, 60 * p.default_flows_per_packet() as u64);
        let mut d = Decoder::new(DecoderConfig::default());
        let mut buf = vec![0u8; 65536];
        let mut got = 0;
        let mut sources = std::collections::HashSet::new();
        while got < report.packets {
            let (n, from) = rx.recv_from(&mut buf).expect("every packet arrives");
            sources.insert(from);
            let _ = d.decode(from, 1, &buf[..n], &mut |_| {});
            got += 1;
        }
        assert_eq!(sources.len(), 3, "{p}: {sources:?}");
        let s = d.stats();
        assert_eq!(s.records_total(), report.flows, "{p}");
        assert_eq!(s.sequence_gaps, 0, "{p}");
        assert_eq!(s.errors_total(), 0, "{p}");
        assert_eq!(s.records[p.flow_protocol().index()], report.flows);
    }
}

#[test]
fn distinct_flows_never_repeat_a_source() {
    for p in Protocol::ALL {
        for v6 in [0.0, 0.3] {
            if p == Protocol::Netflow5 && v6 > 0.0 {
                continue;
            }
            let mut c = cfg(p);
            c.ipv6_fraction = v6;
            c.distinct_flows = true;
            let src: SocketAddr = "127.0.0.5:40000".parse().unwrap();
            let mut e = ExporterPackets::build(&c, 2, src.ip(), 8).unwrap();
            // the pool wraps five times
            let (packets, flows) = stamp(&mut e, 40);
            let mut d = Decoder::new(DecoderConfig::default());
            let mut seen = std::collections::HashSet::new();
            let mut records = 0u64;
            for pk in &packets {
                let _ = d.decode(src, 1, pk, &mut |r| {
                    records += 1;
                    seen.insert(r.src_addr);
                });
            }
            assert_eq!(d.stats().errors_total(), 0, "{p} v6 {v6}");
            assert_eq!(records, flows, "{p} v6 {v6}");
            assert_eq!(seen.len() as u64, flows, "{p} v6 {v6}: a source repeated");
        }
    }
}
