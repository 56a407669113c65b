//! The decoder's unit tests: datagrams built inline, decoded through the public API.

use super::templated::*;
use super::*;
use crate::record::RecordKind;

const EXP: &str = "192.0.2.10:4739";

/// IPFIX message from sets.
fn ipfix(seq: u32, domain: u32, sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut b = vec![0, 10, 0, 0];
    b.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&domain.to_be_bytes());
    for (id, body) in sets {
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        b.extend_from_slice(body);
    }
    let len = b.len() as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    b
}

fn v9(seq: u32, source_id: u32, sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut b = vec![0, 9, 0, sets.len() as u8];
    b.extend_from_slice(&60_000u32.to_be_bytes()); // uptime 60 s
    b.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&source_id.to_be_bytes());
    for (id, body) in sets {
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        b.extend_from_slice(body);
    }
    b
}

fn tpl(id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    b.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (i, l) in fields {
        b.extend_from_slice(&i.to_be_bytes());
        b.extend_from_slice(&l.to_be_bytes());
    }
    b
}

/// srcaddr, dstaddr, srcport, dstport, proto, octets(8), packets(4)
const FIELDS: &[(u16, u16)] = &[(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (1, 8), (2, 4)];

fn rec(i: u8) -> Vec<u8> {
    let mut b = vec![10, 0, 0, i, 10, 0, 1, i, 0x30, 0x39, 0, 80, 6];
    b.extend_from_slice(&(1000 + u64::from(i)).to_be_bytes());
    b.extend_from_slice(&10u32.to_be_bytes());
    b
}

fn run(d: &mut Decoder, pkt: &[u8]) -> (Vec<String>, Result<(), DecodeError>) {
    let mut out = Vec::new();
    let r = d.decode(
        EXP.parse().unwrap(),
        1_700_000_000_000_000_000,
        pkt,
        &mut |r| {
            out.push(format!(
                "{:?} {}->{} {} b={:?} p={:?} rate={:?}/{:?}",
                r.kind,
                r.src_addr.unwrap(),
                r.dst_addr.unwrap(),
                r.template_id.unwrap_or(0),
                r.bytes,
                r.packets,
                r.sampling_rate,
                r.sampling_source.map(|s| s.as_str())
            ))
        },
    );
    (out, r)
}

/// One record is filled again for every record of a fixed-length set: each record's
/// document equals the one decoded from a set holding that record alone, whichever time
/// branch (absolute, unresolved uptime) its neighbour took.
#[test]
fn refilled_records_equal_records_decoded_alone() {
    // srcaddr, dstaddr, octets, flowStartNanoseconds, flowEndNanoseconds,
    // flowStartSysUpTime, flowEndSysUpTime: every field through the plan
    let fields: &[(u16, u16)] = &[
        (8, 4),
        (12, 4),
        (1, 8),
        (156, 8),
        (157, 8),
        (22, 4),
        (21, 4),
    ];
    let wire: Vec<_> = fields
        .iter()
        .map(|&(id, len)| template::WireField {
            id,
            enterprise: 0,
            len,
            scope: false,
        })
        .collect();
    assert!(Template::compile(10, 300, false, &wire, &[])
        .unwrap()
        .refills_record());
    let ntp_ok = (2_208_988_800u64 + 1_700_000_000) << 32;
    let record = |i: u8, ntp: u64, up: u32| {
        let mut b = vec![10, 0, 0, i, 10, 0, 1, i];
        b.extend_from_slice(&(1000 + u64::from(i)).to_be_bytes());
        b.extend_from_slice(&ntp.to_be_bytes());
        b.extend_from_slice(&ntp.to_be_bytes());
        b.extend_from_slice(&up.to_be_bytes());
        b.extend_from_slice(&up.to_be_bytes());
        b
    };
    // NTP 0 is before the Unix epoch: no absolute time, the uptime is used (unresolved:
    // no systemInitTime)
    let recs = [
        record(1, ntp_ok, 5),
        record(2, 0, 7),
        record(3, 0, 0),
        record(4, ntp_ok + 1, 9),
        record(5, 0, 0),
    ];
    let docs = |rs: &[&Vec<u8>]| -> Vec<String> {
        let mut d = Decoder::new(DecoderConfig::default());
        let mut out = Vec::new();
        let pkt = ipfix(
            1,
            0,
            &[
                (2, tpl(300, fields)),
                (300, rs.iter().flat_map(|r| r.iter().copied()).collect()),
            ],
        );
        d.decode(
            EXP.parse().unwrap(),
            1_700_000_000_000_000_000,
            &pkt,
            &mut |r| {
                out.push(format!("{r:?}"));
            },
        )
        .unwrap();
        out
    };
    let together = docs(&recs.iter().collect::<Vec<_>>());
    assert_eq!(together.len(), recs.len());
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(together[i], docs(&[r])[0], "record {}", i + 1);
    }
    assert!(together[1].contains("UptimeUnresolved") && together[0].contains("Absolute"));
}

#[test]
fn ipfix_template_then_data() {
    let mut d = Decoder::default();
    let mut data = rec(1);
    data.extend(rec(2));
    let (out, r) = run(&mut d, &ipfix(1, 7, &[(2, tpl(300, FIELDS)), (300, data)]));
    assert_eq!(r, Ok(()));
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0],
        "Flow 10.0.0.1->10.0.1.1 300 b=Some(1001) p=Some(10) rate=None/None"
    );
    assert_eq!(d.stats().records[FlowProtocol::Ipfix.index()], 2);
    assert_eq!(d.stats().templates, 1);
}

#[test]
fn data_before_template_is_held_and_released() {
    let mut d = Decoder::default();
    let (out, _) = run(&mut d, &ipfix(1, 7, &[(300, rec(1))]));
    assert!(out.is_empty());
    assert_eq!(d.stats().template_misses, 1);
    assert_eq!(d.held_sets_pending(), 1);
    // the template arrives with new data: held record first, then the new one
    let (out, _) = run(
        &mut d,
        &ipfix(2, 7, &[(2, tpl(300, FIELDS)), (300, rec(2))]),
    );
    assert_eq!(out.len(), 2);
    assert!(out[0].contains("10.0.0.1->"), "{out:?}");
    assert!(out[1].contains("10.0.0.2->"), "{out:?}");
    assert_eq!(d.stats().held_sets_released, 1);
    assert_eq!(d.held_sets_pending(), 0);
    assert_eq!(d.held_bytes(), 0);
}

#[test]
fn held_data_is_bounded_per_exporter_and_in_time() {
    // room for three held sets of one record each
    let bound = 3 * held_cost(&rec(1));
    let mut d = Decoder::new(DecoderConfig {
        max_held_bytes_per_exporter: bound,
        ..Default::default()
    });
    for i in 0..10 {
        let _ = run(&mut d, &ipfix(i, 7, &[(300 + i as u16, rec(1))]));
    }
    assert!(d.held_bytes() <= bound);
    assert_eq!(d.held_sets_pending(), 3);
    assert_eq!(d.stats().held_sets, 10);
    assert!(d.stats().held_sets_dropped >= 7);
    // expiry in time
    d.expire(1_700_000_000_000_000_000 + 11 * 60 * 1_000_000_000);
    assert_eq!(d.held_sets_pending(), 0);
    assert_eq!(d.held_bytes(), 0);
}

#[test]
fn empty_held_sets_cost_and_release_in_linear_time() {
    // (2000 held records are released by one datagram: over the default records cap)
    let mut d = Decoder::new(DecoderConfig {
        max_records_per_datagram: 4096,
        ..Default::default()
    });
    // 10,000 empty data sets for an unknown template are not held
    let sets: Vec<(u16, Vec<u8>)> = (0..10_000).map(|_| (300, Vec::new())).collect();
    let _ = run(&mut d, &ipfix(1, 7, &sets[..8000]));
    assert_eq!(d.held_sets_pending(), 0);
    // many small held sets, then their template: all released, in order
    for i in 0..2000u32 {
        let _ = run(&mut d, &ipfix(i, 7, &[(300, rec((i % 250) as u8))]));
    }
    let pending = d.held_sets_pending();
    assert!(pending > 0 && pending <= 2000);
    let (out, _) = run(&mut d, &ipfix(3000, 7, &[(2, tpl(300, FIELDS))]));
    assert_eq!(out.len(), pending);
    assert_eq!(d.held_sets_pending(), 0);
}

#[test]
fn a_template_repeating_one_element_gets_unique_names() {
    let fields: Vec<(u16, u16)> = vec![(8, 4); 1024];
    let t = Template::compile(
        10,
        256,
        false,
        &fields
            .iter()
            .map(|&(id, len)| WireField {
                id,
                enterprise: 0,
                len,
                scope: false,
            })
            .collect::<Vec<_>>(),
        &[],
    )
    .unwrap();
    assert_eq!(t.fields[1023].name, "source_ipv4_address_1024");
    // (it used to take seconds: the fuzz regression `slow-ipfix-template-1024-duplicate-
    // fields` times it in release builds)
}

#[test]
fn domains_and_withdrawal() {
    let mut d = Decoder::default();
    let _ = run(&mut d, &ipfix(1, 7, &[(2, tpl(300, FIELDS))]));
    // same template id in another domain is unknown
    let (out, _) = run(&mut d, &ipfix(1, 8, &[(300, rec(1))]));
    assert!(out.is_empty());
    // withdrawal of 300 in domain 7 (field count 0)
    let _ = run(&mut d, &ipfix(2, 7, &[(2, vec![1, 44, 0, 0])]));
    assert_eq!(d.stats().template_withdrawals, 1);
    let (out, _) = run(&mut d, &ipfix(3, 7, &[(300, rec(1))]));
    assert!(out.is_empty());
    // withdraw all (template id 2)
    let _ = run(
        &mut d,
        &ipfix(4, 7, &[(2, tpl(301, FIELDS)), (2, tpl(302, FIELDS))]),
    );
    let _ = run(&mut d, &ipfix(5, 7, &[(2, vec![0, 2, 0, 0])]));
    assert_eq!(d.stats().template_withdrawals, 3);
}

#[test]
fn v9_options_sampling_applies_by_sampler_id() {
    let mut d = Decoder::default();
    // options template 256: scope system(1) len 4; sampler id 48 len 1, interval 34 len 4
    let mut ot = vec![1, 0, 0, 4, 0, 8, 0, 1, 0, 4, 0, 48, 0, 1, 0, 34, 0, 4];
    ot.extend_from_slice(&[0, 0]); // padding
    let mut fields = FIELDS.to_vec();
    fields.push((48, 1));
    let opt_data = [
        0, 0, 0, 0, 5, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let opt_data = &opt_data[..9]; // one record: system 0, sampler 5, interval 1000
    let mut data = rec(1);
    data.push(5);
    let (out, r) = run(
        &mut d,
        &v9(
            1,
            0,
            &[
                (1, ot),
                (0, tpl(260, &fields)),
                (256, opt_data.to_vec()),
                (260, data),
            ],
        ),
    );
    assert_eq!(r, Ok(()));
    assert_eq!(
        out,
        ["Flow 10.0.0.1->10.0.1.1 260 b=Some(1001) p=Some(10) rate=Some(1000)/Some(\"options\")"]
    );
    assert_eq!(d.stats().options_records, 1);
}

#[test]
fn scale_sampling_switch() {
    let mut d = Decoder::new(DecoderConfig {
        scale_sampling: true,
        ..Default::default()
    });
    let mut fields = FIELDS.to_vec();
    fields.push((34, 2));
    let mut data = rec(1);
    data.extend_from_slice(&100u16.to_be_bytes());
    let (out, _) = run(&mut d, &ipfix(1, 0, &[(2, tpl(300, &fields)), (300, data)]));
    assert_eq!(out, ["Flow 10.0.0.1->10.0.1.1 300 b=Some(100100) p=Some(1000) rate=Some(100)/Some(\"record\")"]);
}

#[test]
fn v9_uptime_times_and_ipfix_system_init() {
    let mut d = Decoder::default();
    let mut got = Vec::new();
    let pkt = v9(
        1,
        0,
        &[
            (0, tpl(256, &[(8, 4), (12, 4), (22, 4), (21, 4)])),
            (
                256,
                vec![1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0xc3, 0x50, 0, 0, 0xea, 0x60],
            ),
        ],
    );
    let _ = d.decode(EXP.parse().unwrap(), 0, &pkt, &mut |r| {
        got.push((r.start_ns, r.end_ns, r.time_basis))
    });
    // boot = 1_700_000_000 s - 60 s; start = boot + 50 s, end = boot + 60 s
    assert_eq!(
        got,
        [(
            Some(1_699_999_990_000_000_000),
            Some(1_700_000_000_000_000_000),
            Some(TimeBasis::Uptime)
        )]
    );

    // IPFIX relative times need systemInitTime (IE 160) from options data
    let mut d = Decoder::default();
    let mut got = Vec::new();
    let t = tpl(256, &[(8, 4), (12, 4), (22, 4), (21, 4)]);
    let data = vec![1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0x03, 0xe8, 0, 0, 0x07, 0xd0];
    let pkt = ipfix(1, 0, &[(2, t), (256, data.clone())]);
    let _ = d.decode(EXP.parse().unwrap(), 0, &pkt, &mut |r| {
        got.push((r.start_uptime_ms, r.time_basis))
    });
    assert_eq!(got, [(Some(1000), Some(TimeBasis::UptimeUnresolved))]);
    // options template 257: scope 149 (observationDomainId) len 4, 160 len 8
    let ot = vec![1, 1, 0, 2, 0, 1, 0, 149, 0, 4, 0, 160, 0, 8];
    let mut od = vec![0, 0, 0, 0];
    od.extend_from_slice(&1_600_000_000_000u64.to_be_bytes());
    let pkt = ipfix(2, 0, &[(3, ot), (257, od), (256, data)]);
    got.clear();
    let mut starts = Vec::new();
    let _ = d.decode(EXP.parse().unwrap(), 0, &pkt, &mut |r| {
        starts.push((r.start_ns, r.end_ns, r.time_basis))
    });
    assert_eq!(
        starts,
        [(
            Some(1_600_000_001_000_000_000),
            Some(1_600_000_002_000_000_000),
            Some(TimeBasis::Uptime)
        )]
    );
}

#[test]
fn bad_input_is_counted_never_panics() {
    let mut d = Decoder::default();
    for pkt in [
        &[][..],
        &[0],
        &[0, 10, 0, 200],
        &[0, 9, 0, 1, 2],
        &[0, 77, 1, 2, 3, 4],
        &[0, 0, 0, 5, 0],
    ] {
        let (out, r) = run(&mut d, pkt);
        assert!(out.is_empty());
        assert!(r.is_err());
    }
    assert_eq!(d.stats().errors_total(), 6);
    // a good set after a broken template set still decodes
    let mut bad_tpl = tpl(300, FIELDS);
    bad_tpl.truncate(9);
    let (out, r) = run(
        &mut d,
        &ipfix(1, 0, &[(2, tpl(301, FIELDS)), (2, bad_tpl), (301, rec(3))]),
    );
    assert!(r.is_err());
    assert_eq!(out.len(), 1);
}

#[test]
fn sequence_gaps_are_counted() {
    let mut d = Decoder::default();
    let _ = run(
        &mut d,
        &ipfix(10, 0, &[(2, tpl(300, FIELDS)), (300, rec(1))]),
    );
    let _ = run(&mut d, &ipfix(11, 0, &[(300, rec(1))]));
    assert_eq!(d.stats().sequence_gaps, 0);
    let _ = run(&mut d, &ipfix(15, 0, &[(300, rec(1))]));
    assert_eq!(d.stats().sequence_gaps, 3);
}

#[test]
fn template_store_round_trip() {
    let mut d = Decoder::default();
    let _ = run(&mut d, &ipfix(1, 7, &[(2, tpl(300, FIELDS))]));
    let store = d.export_templates();
    assert_eq!(store.len(), 1);
    let mut d2 = Decoder::default();
    assert_eq!(d2.import_templates(&store, 1_700_000_000_000_000_000), 1);
    let (out, _) = run(&mut d2, &ipfix(2, 7, &[(300, rec(1))]));
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].split(' ').next(),
        Some(format!("{:?}", RecordKind::Flow).as_str())
    );
}

// ---- bounds on hostile input ----------------------------------------------------------

/// A template set of `n` templates (ids from `first`) of `fields` 4-byte fields each.
fn big_templates(first: u16, n: u16, fields: u16) -> Vec<u8> {
    let mut set = Vec::new();
    for t in 0..n {
        set.extend_from_slice(&(first + t).to_be_bytes());
        set.extend_from_slice(&fields.to_be_bytes());
        for f in 0..fields {
            set.extend_from_slice(&(f + 1).to_be_bytes());
            set.extend_from_slice(&4u16.to_be_bytes());
        }
    }
    set
}

const T0: u64 = 1_700_000_000_000_000_000;

fn at(a: &str) -> SocketAddr {
    a.parse().unwrap()
}

/// NetFlow v5 datagram of one record with engine type/id `engine`.
fn v5(seq: u32, engine: u16) -> Vec<u8> {
    let mut b = vec![0u8; 24 + 48];
    b[1] = 5;
    b[3] = 1;
    b[8..12].copy_from_slice(&1_700_000_000u32.to_be_bytes());
    b[16..20].copy_from_slice(&seq.to_be_bytes());
    b[20..22].copy_from_slice(&engine.to_be_bytes());
    b[24 + 38] = 6;
    b
}

#[test]
fn template_bytes_are_bounded_per_exporter_and_in_total() {
    let per = 256 << 10;
    let total = 1 << 20;
    let mut d = Decoder::new(DecoderConfig {
        max_state_bytes_per_exporter: per,
        max_state_bytes_total: total,
        ..Default::default()
    });
    let one = Template::compile(
        10,
        256,
        false,
        &(1..=64)
            .map(|id| WireField {
                id,
                enterprise: 0,
                len: 4,
                scope: false,
            })
            .collect::<Vec<_>>(),
        &[0; 260],
    )
    .unwrap()
    .heap_bytes();
    // 64 fields of 4 bytes: 260 bytes on the wire, many times that compiled
    assert!(one > 10 * 260, "{one}");
    for i in 0..200u16 {
        let pkt = ipfix(u32::from(i), 0, &[(2, big_templates(256 + i * 16, 16, 64))]);
        d.decode(at(EXP), T0, &pkt, &mut |_| {}).unwrap();
        assert!(d.state_bytes() <= per, "{} after {i}", d.state_bytes());
    }
    // the newest templates are kept, the oldest evicted
    let kept = d.templates();
    assert!(kept > 0 && kept < per / one + 1, "{kept}");
    assert_eq!(d.stats().templates_evicted, 3200 - kept as u64);
    let newest = 256 + 199 * 16 + 15;
    let data = ipfix(999, 0, &[(newest, vec![7; 256])]);
    let mut n = 0;
    d.decode(at(EXP), T0, &data, &mut |_| n += 1).unwrap();
    assert_eq!(n, 1, "the newest template decodes");
    // many exporters: the total holds
    for e in 0..50u16 {
        let a = at(&format!("192.0.2.{}:4739", 1 + e));
        for i in 0..8u16 {
            let pkt = ipfix(u32::from(i), 0, &[(2, big_templates(256 + i * 16, 16, 64))]);
            d.decode(a, T0, &pkt, &mut |_| {}).unwrap();
            assert!(d.state_bytes() <= total, "{}", d.state_bytes());
        }
    }
    assert!(d.stats().exporters_evicted_state_bytes > 0);
    assert!(d.exporters() < 51);
    // the accounting is exact: forgetting everything leaves nothing counted
    d.expire(T0 + 31 * 60 * 1_000_000_000);
    assert_eq!(d.templates(), 0);
    assert_eq!(d.domains(), 0);
    assert_eq!(d.state_bytes(), d.exporters() * EXPORTER_BASE_BYTES);
}

#[test]
fn a_template_over_the_exporter_bound_is_refused() {
    let mut d = Decoder::new(DecoderConfig {
        max_state_bytes_per_exporter: 8 << 10,
        ..Default::default()
    });
    let pkt = ipfix(1, 0, &[(2, big_templates(256, 1, 200))]);
    d.decode(at(EXP), T0, &pkt, &mut |_| {}).unwrap();
    assert_eq!(d.templates(), 0);
    assert_eq!(d.stats().templates_evicted, 1);
    assert!(d.state_bytes() <= 8 << 10);
}

#[test]
fn port_churn_from_one_address_evicts_only_its_own_entries() {
    let mut d = Decoder::new(DecoderConfig {
        max_exporters_per_ip: 4,
        ..Default::default()
    });
    let legit = at("192.0.2.1:2055");
    let _ = d.decode(legit, T0, &v5(1, 0), &mut |_| {});
    // the same address as the churn, a long-lived exporter (records in two datagrams)
    let neighbour = at("192.0.2.2:2055");
    let _ = d.decode(neighbour, T0, &v5(1, 0), &mut |_| {});
    let _ = d.decode(neighbour, T0, &v5(2, 0), &mut |_| {});
    for p in 0..10_000u32 {
        let a = SocketAddr::new("192.0.2.2".parse().unwrap(), 10_000 + p as u16);
        let _ = d.decode(a, T0 + u64::from(p), &v5(p, 0), &mut |_| {});
    }
    assert!(d.knows(legit), "another address's exporter was evicted");
    assert!(d.knows(neighbour), "the protected neighbour was evicted");
    assert_eq!(d.exporters(), 1 + 4);
    assert_eq!(d.stats().exporters_evicted_ip_quota, 10_000 - 3);
    assert_eq!(d.stats().exporters_evicted, 10_000 - 3);
}

#[test]
fn established_exporters_survive_a_flood_of_new_sources() {
    let mut d = Decoder::new(DecoderConfig {
        max_exporters: 100,
        ..Default::default()
    });
    let legit = at("198.51.100.1:2055");
    let once = at("198.51.100.2:2055");
    let _ = d.decode(legit, T0, &v5(1, 0), &mut |_| {});
    let _ = d.decode(legit, T0, &v5(2, 0), &mut |_| {});
    let _ = d.decode(once, T0, &v5(1, 0), &mut |_| {});
    assert_eq!(d.protected_exporters(), 1);
    // one datagram (with a record) from each of 20,000 spoofed sources
    for i in 0..20_000u32 {
        let a = SocketAddr::new(std::net::Ipv4Addr::from(0x0a00_0000 + i).into(), 2055);
        let _ = d.decode(a, T0 + u64::from(i), &v5(1, 0), &mut |_| {});
    }
    assert!(d.knows(legit), "the established exporter was evicted");
    assert!(!d.knows(once), "a one-datagram exporter is not protected");
    assert_eq!(d.exporters(), 100);
    assert_eq!(d.stats().exporters_evicted, 20_002 - 100);
    // the protected segment itself is bounded: promote 200 exporters
    for i in 0..200u32 {
        let a = SocketAddr::new(std::net::Ipv4Addr::from(0x0b00_0000 + i).into(), 2055);
        let _ = d.decode(a, T0, &v5(1, 0), &mut |_| {});
        let _ = d.decode(a, T0, &v5(2, 0), &mut |_| {});
    }
    assert_eq!(d.protected_exporters(), 75);
    assert_eq!(d.exporters(), 100);
}

#[test]
fn domain_state_is_capped_and_expires() {
    let mut d = Decoder::new(DecoderConfig {
        max_domains_per_exporter: 16,
        ..Default::default()
    });
    for e in 0..1000u16 {
        let _ = d.decode(at(EXP), T0, &v5(1, e), &mut |_| {});
    }
    assert_eq!(d.domains(), 16);
    assert_eq!(d.stats().domains_evicted, 1000 - 16);
    // IPFIX observation domains and their sampling tables too
    let ot = vec![1, 0, 0, 2, 0, 1, 0, 48, 0, 2, 0, 34, 0, 4];
    for dom in 0..1000u32 {
        let mut od = Vec::new();
        for sid in 0..300u16 {
            od.extend_from_slice(&sid.to_be_bytes());
            od.extend_from_slice(&100u32.to_be_bytes());
        }
        let _ = d.decode(
            at(EXP),
            T0,
            &ipfix(1, dom, &[(3, ot.clone()), (256, od)]),
            &mut |_| {},
        );
    }
    assert_eq!(d.domains(), 16);
    // each domain's table is full (300 sampler ids sent, 256 kept); all within the bound
    assert_eq!(d.export_sampling().len(), 16 * MAX_SAMPLERS_PER_DOMAIN);
    assert!(d.state_bytes() <= DecoderConfig::default().max_state_bytes_per_exporter);
    // not seen for the template timeout: gone
    d.expire(T0 + 31 * 60 * 1_000_000_000);
    assert_eq!(d.domains(), 0);
    assert_eq!(d.state_bytes(), EXPORTER_BASE_BYTES);
}

#[test]
fn records_per_datagram_are_capped() {
    let mut d = Decoder::new(DecoderConfig {
        max_records_per_datagram: 100,
        ..Default::default()
    });
    // one-byte records (protocolIdentifier): 8,000 of them in one datagram
    let pkt = ipfix(1, 0, &[(2, tpl(300, &[(4, 1)])), (300, vec![6; 8000])]);
    let mut n = 0;
    d.decode(at(EXP), T0, &pkt, &mut |_| n += 1).unwrap();
    assert_eq!(n, 100);
    assert_eq!(d.stats().datagrams_record_capped, 1);
    assert_eq!(d.stats().records_total(), 100);
    // the next datagram has its own budget
    let pkt = ipfix(2, 0, &[(300, vec![6; 50])]);
    d.decode(at(EXP), T0, &pkt, &mut |_| n += 1).unwrap();
    assert_eq!(n, 150);
    assert_eq!(d.stats().datagrams_record_capped, 1);
    // the default fits a full v5 datagram and a jumbo frame of small IPFIX records
    let cap = DecoderConfig::default().max_records_per_datagram;
    assert!(cap >= 9000 / 16, "{cap}");
}

#[test]
fn timestamps_outside_the_window_take_the_receive_time() {
    let mut d = Decoder::default();
    let now = T0 + 10 * 86_400 * 1_000_000_000; // 10 days after the export time
    let pkt = ipfix(1, 0, &[(2, tpl(300, FIELDS)), (300, rec(1))]);
    let mut got = Vec::new();
    d.decode(at(EXP), now, &pkt, &mut |r| {
        got.push((r.timestamp_ns(), r.timestamp_clamp, r.export_time_ns))
    })
    .unwrap();
    assert_eq!(got, [(Some(now), Some((T0, now)), Some(T0))]);
    assert_eq!(d.stats().timestamps_clamped, 1);
    // in the future by more than the window
    let mut got = Vec::new();
    let early = T0 - 3_600 * 1_000_000_000;
    d.decode(at(EXP), early, &pkt, &mut |r| {
        got.push((r.timestamp_ns(), r.timestamp_clamp))
    })
    .unwrap();
    assert_eq!(got, [(Some(early), Some((T0, early)))]);
    // within the window: untouched, on both sides
    for now in [T0 + 86_400 * 1_000_000_000, T0 - 60 * 1_000_000_000] {
        got.clear();
        d.decode(at(EXP), now, &pkt, &mut |r| {
            got.push((r.timestamp_ns(), r.timestamp_clamp))
        })
        .unwrap();
        assert_eq!(got, [(Some(T0), None)]);
    }
    assert_eq!(d.stats().timestamps_clamped, 2);
    // 0: no bound
    let mut d = Decoder::new(DecoderConfig {
        max_past_ms: 0,
        max_future_ms: 0,
        ..Default::default()
    });
    got.clear();
    d.decode(at(EXP), now, &pkt, &mut |r| {
        got.push((r.timestamp_ns(), r.timestamp_clamp))
    })
    .unwrap();
    assert_eq!(got, [(Some(T0), None)]);
    // v5: 1970 in the header
    let mut d = Decoder::default();
    let mut p = v5(1, 0);
    p[8..12].copy_from_slice(&[0; 4]);
    got.clear();
    d.decode(at(EXP), T0, &p, &mut |r| {
        got.push((r.timestamp_ns(), r.timestamp_clamp))
    })
    .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, Some(T0));
}

#[test]
fn errors_are_counted_once() {
    let mut d = Decoder::default();
    // a set whose length runs past the message
    let mut pkt = ipfix(1, 0, &[(2, tpl(300, FIELDS))]);
    pkt.extend_from_slice(&[1, 44, 0, 200]);
    let len = pkt.len() as u16;
    pkt[2..4].copy_from_slice(&len.to_be_bytes());
    assert!(run(&mut d, &pkt).1.is_err());
    assert_eq!(d.stats().errors_total(), 1);
    // a bad header
    assert!(run(&mut d, &[0, 10, 0, 200]).1.is_err());
    assert_eq!(d.stats().errors_total(), 2);
    // v9 with a truncated template record
    let mut bad = tpl(300, FIELDS);
    bad.truncate(9);
    assert!(run(&mut d, &v9(1, 0, &[(0, bad)])).1.is_err());
    assert_eq!(d.stats().errors_total(), 3);
}

#[test]
fn huge_sampling_options_do_not_overflow() {
    // options template: packetInterval (305) and packetSpace (306), 8 bytes each
    let mut d = Decoder::default();
    let ot = vec![1, 0, 0, 2, 0, 0, 1, 49, 0, 8, 1, 50, 0, 8];
    let mut od = u64::MAX.to_be_bytes().to_vec();
    od.extend_from_slice(&u64::MAX.to_be_bytes());
    let (_, r) = run(&mut d, &ipfix(1, 0, &[(3, ot), (256, od)]));
    assert_eq!(r, Ok(()));
    assert_eq!(d.export_sampling().len(), 1);
}

#[test]
fn exporters_are_bounded() {
    let mut d = Decoder::new(DecoderConfig {
        max_exporters: 3,
        ..Default::default()
    });
    for i in 0..10u8 {
        let a: SocketAddr = format!("192.0.2.{i}:4739").parse().unwrap();
        let _ = d.decode(
            a,
            u64::from(i),
            &ipfix(1, 0, &[(2, tpl(300, FIELDS))]),
            &mut |_| {},
        );
    }
    assert_eq!(d.exporters(), 3);
    assert_eq!(d.stats().exporters_evicted, 7);
}

#[test]
fn uptime_times_saturate() {
    // 8-byte flowEnd/StartSysUpTime and systemInitTime: any 64-bit value
    assert_eq!(
        uptime_to_ns(i128::from(u64::MAX) * 1_000_000, u64::MAX),
        u64::MAX
    );
    assert_eq!(uptime_to_ns(0, u64::MAX), u64::MAX);
    assert_eq!(
        uptime_to_ns(0, u64::MAX / 1_000_000),
        u64::MAX / 1_000_000 * 1_000_000
    );
    assert_eq!(uptime_to_ns(0, u64::MAX / 1_000_000 + 1), u64::MAX);
    // v9: boot time before 1970 (uptime larger than the export time)
    assert_eq!(uptime_to_ns(-5_000_000, 2), 0);
    assert_eq!(uptime_to_ns(-5_000_000, 7), 2_000_000);
    assert_eq!(uptime_to_ns(1_000, 1), 1_001_000);
}

#[test]
fn boot_time_fast_sum_equals_the_saturating_one() {
    let u32_ms_ns = i128::from(u32::MAX) * 1_000_000;
    let max = i128::from(u64::MAX);
    let bases = [
        -5_000_000,
        -1,
        0,
        1,
        1_700_000_000_000_000_000,
        max - u32_ms_ns - 1,
        max - u32_ms_ns,
        max - u32_ms_ns + 1,
        max - 1,
        max,
        max + 1,
        max * 1_000_000,
    ];
    let uptimes = [
        0,
        1,
        7,
        3_600_000,
        u64::from(u32::MAX) - 1,
        u64::from(u32::MAX),
        u64::from(u32::MAX) + 1,
        u64::MAX / 1_000_000,
        u64::MAX,
    ];
    for b in bases {
        for ms in uptimes {
            assert_eq!(Boot::new(b).at(ms), uptime_to_ns(b, ms), "{b} + {ms} ms");
        }
    }
    assert!(Boot::new(1_700_000_000_000_000_000).fast.is_some());
    assert!(Boot::new(-1).fast.is_none());
    assert!(Boot::new(max - u32_ms_ns + 1).fast.is_none());
}

#[test]
fn huge_uptime_elements_do_not_wrap() {
    // IPFIX: systemInitTimeMilliseconds options data, then flows with 8-byte uptimes
    let mut d = Decoder::default();
    let mut opts = 400u16.to_be_bytes().to_vec();
    opts.extend_from_slice(&[0, 2, 0, 1, 0, 149, 0, 4, 0, 160, 0, 8]);
    let mut odata = 9u32.to_be_bytes().to_vec();
    odata.extend_from_slice(&(u64::MAX / 2).to_be_bytes());
    let mut fields = FIELDS.to_vec();
    fields.extend_from_slice(&[(22, 8), (21, 8)]);
    let mut data = rec(1);
    data.extend_from_slice(&5u64.to_be_bytes());
    data.extend_from_slice(&u64::MAX.to_be_bytes());
    let pkt = ipfix(
        1,
        7,
        &[(3, opts), (400, odata), (2, tpl(300, &fields)), (300, data)],
    );
    let mut got = Vec::new();
    d.decode(
        EXP.parse().unwrap(),
        1_700_000_000_000_000_000,
        &pkt,
        &mut |r| got.push((r.start_ns, r.end_ns, r.time_basis)),
    )
    .unwrap();
    assert_eq!(
        got,
        [(Some(u64::MAX), Some(u64::MAX), Some(TimeBasis::Uptime))]
    );
}

#[test]
fn unchanged_template_is_not_recompiled() {
    let mut d = Decoder::default();
    let key = (10, 7, 300);
    let ptr = |d: &Decoder| {
        let st = d.exporters.values().next().unwrap();
        let e = st.templates.entry(&key).unwrap();
        (e.tpl.fields.as_ptr(), e.refreshed_ns)
    };
    let exp: SocketAddr = EXP.parse().unwrap();
    let t0 = 1_700_000_000_000_000_000;
    let pkt = ipfix(1, 7, &[(2, tpl(300, FIELDS)), (300, rec(1))]);
    d.decode(exp, t0, &pkt, &mut |_| {}).unwrap();
    let (p1, r1) = ptr(&d);
    let mut n = 0;
    d.decode(exp, t0 + 5, &pkt, &mut |_| n += 1).unwrap();
    let (p2, r2) = ptr(&d);
    assert_eq!(p1, p2, "the compiled template is kept");
    assert_eq!((r1, r2), (t0, t0 + 5), "its time is refreshed");
    assert_eq!(n, 1);
    assert_eq!(d.stats().templates, 2);
    // a different template under the same id replaces it
    let pkt = ipfix(
        3,
        7,
        &[(2, tpl(300, &FIELDS[..6])), (300, rec(1)[..21].to_vec())],
    );
    let mut bytes = Vec::new();
    d.decode(exp, t0 + 9, &pkt, &mut |r| bytes.push((r.bytes, r.packets)))
        .unwrap();
    assert_eq!(bytes, [(Some(1001), None)]);
    assert_eq!(d.templates(), 1);
    assert_eq!(d.stats().templates, 3);
}
