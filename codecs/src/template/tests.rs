//! Template tests: compiling, parsing template sets, the fill plan against the general path,
//! the raw JSON members.

use super::plan::Slot;
use super::*;
use crate::ie::REVERSE_PEN;
use crate::record::{FlowProtocol, FlowRecord};

pub(crate) fn wf(id: u16, len: u16) -> WireField {
    WireField {
        id,
        enterprise: 0,
        len,
        scope: false,
    }
}

#[test]
fn compile_fixed_and_variable() {
    let t = Template::compile(10, 256, false, &[wf(8, 4), wf(12, 4), wf(1, 8)], &[]).unwrap();
    assert_eq!(t.fixed_len, Some(16));
    assert_eq!(t.fields[0].setter, Setter::SrcAddr);
    assert_eq!(t.fields[2].name, "octet_delta_count");
    let v = Template::compile(10, 257, false, &[wf(8, 4), wf(82, VARLEN)], &[]).unwrap();
    assert_eq!(v.fixed_len, None);
    assert_eq!(v.min_len, 5);
    assert!(Template::compile(10, 257, false, &[], &[]).is_err());
}

#[test]
fn duplicate_names_get_suffixes() {
    let t = Template::compile(10, 256, false, &[wf(1, 4), wf(1, 4), wf(1, 4)], &[]).unwrap();
    let names: Vec<_> = t.fields.iter().map(|f| f.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "octet_delta_count",
            "octet_delta_count_2",
            "octet_delta_count_3"
        ]
    );
}

#[test]
fn variable_length_records_and_padding() {
    let t = Template::compile(10, 256, false, &[wf(4, 1), wf(82, VARLEN)], &[]).unwrap();
    // record 1: proto 6, "ab"; record 2: proto 17, 255-escaped length 3 "xyz"; 2 bytes pad
    let body = [6, 2, b'a', b'b', 17, 255, 0, 3, b'x', b'y', b'z', 0];
    let recs: Vec<_> = t.records(&body).collect();
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs[0].unwrap(), &[6, 2, b'a', b'b']);
    assert_eq!(recs[1].unwrap(), &[17, 255, 0, 3, b'x', b'y', b'z']);
    // overrun: declared 9 bytes, 2 present
    let bad = [6, 9, b'a', b'b'];
    let recs: Vec<_> = t.records(&bad).collect();
    assert!(matches!(recs[..], [Err(DecodeError::Truncated { .. })]));
}

#[test]
fn fill_record_reads_fields() {
    let t = Template::compile(
        10,
        256,
        false,
        &[
            wf(8, 4),
            wf(12, 4),
            wf(7, 2),
            wf(11, 2),
            wf(4, 1),
            wf(2, 4),
            wf(85, 8),
            wf(152, 8),
            wf(70, 3),
        ],
        &[],
    )
    .unwrap();
    let mut d = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 80, 0x1f, 0x90, 6, 0, 0, 0, 9];
    d.extend_from_slice(&1000u64.to_be_bytes());
    d.extend_from_slice(&1_700_000_000_123u64.to_be_bytes());
    d.extend_from_slice(&[0x01, 0x23, 0x41]); // label 0x01234, exp 0, bottom of stack
    let mut rec = FlowRecord::new(FlowProtocol::Ipfix, "127.0.0.1:1".parse().unwrap());
    let (times, _) = fill_record(&t, &d, &mut rec);
    assert_eq!(rec.src_addr, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(rec.dst_port, Some(8080));
    assert_eq!(rec.packets, Some(9));
    assert_eq!(rec.bytes, Some(1000), "octetTotalCount when no delta count");
    assert_eq!(times.start_abs_ns, Some(1_700_000_000_123_000_000));
    assert_eq!(rec.mpls.as_slice(), &[0x01234]);
}

#[test]
fn ntp_times() {
    // 2024-01-01T00:00:00Z = 1704067200 unix = 3913056000 NTP; fraction 0.5
    let v = (3_913_056_000u64 << 32) | 0x8000_0000;
    assert_eq!(ntp_to_ns(v), Some(1_704_067_200_500_000_000));
    assert_eq!(ntp_to_ns(5 << 32), None);
}

#[test]
fn sampling_rate_rules() {
    let o = OptionValues {
        sampling_interval: Some(100),
        ..Default::default()
    };
    assert_eq!(o.rate(), Some(100));
    let o = OptionValues {
        sampling_population: Some(1000),
        sampling_size: Some(10),
        selector_algorithm: Some(3),
        ..Default::default()
    };
    assert_eq!(o.rate(), Some(100));
    let o = OptionValues {
        packet_interval: Some(1),
        packet_space: Some(99),
        ..Default::default()
    };
    assert_eq!(o.rate(), Some(100));
    let o = OptionValues {
        sampler_random_interval: Some(512),
        ..Default::default()
    };
    assert_eq!(o.rate(), Some(512));
    assert_eq!(OptionValues::default().rate(), None);
    // exporter-supplied extremes: no overflow (it panicked with overflow checks on)
    let o = OptionValues {
        packet_interval: Some(u64::MAX),
        packet_space: Some(u64::MAX),
        ..Default::default()
    };
    assert_eq!(o.rate(), Some(1));
    let o = OptionValues {
        packet_interval: Some(2),
        packet_space: Some(u64::MAX),
        ..Default::default()
    };
    assert_eq!(o.rate(), Some(u64::MAX / 2));
}

#[test]
fn heap_bytes_grow_with_the_fields() {
    let wire = |n: u16| -> Vec<WireField> {
        (0..n)
            .map(|i| WireField {
                id: 1 + i,
                enterprise: 0,
                len: 4,
                scope: false,
            })
            .collect()
    };
    let small = Template::compile(10, 256, false, &wire(2), &[0; 12]).unwrap();
    let big = Template::compile(10, 257, false, &wire(64), &[0; 260]).unwrap();
    // at least the field specs, their keys and the wire bytes
    let floor = |t: &Template, n: usize| {
        std::mem::size_of::<Template>()
            + n * (std::mem::size_of::<FieldSpec>() + crate::json::KEY_PAD)
            + t.wire.len()
    };
    assert!(
        small.heap_bytes() >= floor(&small, 2),
        "{}",
        small.heap_bytes()
    );
    assert!(big.heap_bytes() >= floor(&big, 64), "{}", big.heap_bytes());
    assert!(big.heap_bytes() > 20 * small.heap_bytes() / 2);
}

#[test]
fn template_sets_parse() {
    // IPFIX: template 256 with 2 fields, one enterprise; then a withdrawal of 257; padding
    let mut b = vec![1, 0, 0, 2, 0, 8, 0, 4];
    b.extend_from_slice(&[0x80, 0x01, 0, 8, 0, 0, 0x72, 0x79]); // reverse octetDeltaCount
    b.extend_from_slice(&[1, 1, 0, 0, 0, 0]);
    let mut seen = Vec::new();
    let mut fb = Vec::new();
    parse_template_set(10, false, &b, 0, &mut fb, &mut |tid, f, _| {
        seen.push((tid, f.to_vec()))
    })
    .unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].1[1].enterprise, REVERSE_PEN);
    assert!(seen[1].1.is_empty());
    let t = Template::compile(10, 256, false, &seen[0].1, &[]).unwrap();
    assert_eq!(t.fields[1].name, "reverse_octet_delta_count");
    assert_eq!(t.fields[1].setter, Setter::ReverseBytes);
    // truncated field list
    let bad = [1, 0, 0, 3, 0, 8, 0, 4];
    assert!(parse_template_set(10, false, &bad, 0, &mut fb, &mut |_, _, _| {}).is_err());
    // v9 options template: scope system(1) len 4, options 34 len 4, 48 len 1
    let o = [1, 0, 0, 4, 0, 8, 0, 1, 0, 4, 0, 34, 0, 4, 0, 48, 0, 1];
    let mut got = Vec::new();
    parse_template_set(9, true, &o, 0, &mut fb, &mut |tid, f, _| {
        got.push((tid, f.to_vec()))
    })
    .unwrap();
    assert_eq!(got[0].0, 256);
    assert_eq!(got[0].1.len(), 3);
    assert!(got[0].1[0].scope && !got[0].1[1].scope);
    let t = Template::compile(9, 256, true, &got[0].1, &[]).unwrap();
    assert_eq!(t.fields[0].name, "scope_system");
    assert_eq!(t.fields[1].setter, Setter::SamplingInterval);
}

/// Template fields from proptest picks (an element of [`PLAN_IES`], one of its lengths, and
/// for IPFIX 0: the reverse element, 1: an unknown enterprise's, else the IANA one).
pub(crate) fn picked_fields(picks: &[(usize, usize, u8)], version: u16) -> Vec<WireField> {
    picks
        .iter()
        .map(|&(i, l, e)| {
            let (id, lens) = PLAN_IES[i];
            WireField {
                id,
                enterprise: match e {
                    0 if version == 10 => REVERSE_PEN,
                    1 if version == 10 => 4_294_967_295,
                    _ => 0,
                },
                len: lens[l % lens.len()],
                scope: false,
            }
        })
        .collect()
}

/// Elements (IPFIX id, usual lengths) the plan has slots for, plus some it leaves to the
/// general path (MPLS, sampling, enterprise-free unknowns, padding).
pub(crate) const PLAN_IES: &[(u16, &[u16])] = &[
    (1, &[1, 2, 4, 8, 0, 9]),
    (2, &[4, 8]),
    (4, &[1, 2]),
    (5, &[1]),
    (6, &[1, 2]),
    (7, &[2]),
    (8, &[4, 3]),
    (9, &[1]),
    (10, &[2, 4]),
    (11, &[2]),
    (12, &[4]),
    (13, &[1]),
    (14, &[4]),
    (15, &[4]),
    (16, &[2, 4]),
    (17, &[4]),
    (18, &[4]),
    (21, &[4, 8]),
    (22, &[4, 8]),
    (27, &[16]),
    (28, &[16, 4]),
    (32, &[2]),
    (34, &[4]),
    (48, &[1, 2]),
    (56, &[6, 5]),
    (58, &[2]),
    (60, &[1]),
    (61, &[1]),
    (62, &[16]),
    (63, &[16]),
    (70, &[3, 4]),
    (71, &[3]),
    (80, &[6]),
    (85, &[8]),
    (86, &[8]),
    (136, &[1]),
    (139, &[2]),
    (150, &[4]),
    (151, &[4]),
    (152, &[8]),
    (153, &[8]),
    (154, &[8]),
    (156, &[8]),
    (157, &[8]),
    (158, &[4]),
    (159, &[4]),
    (176, &[1]),
    (177, &[1]),
    (178, &[1]),
    (210, &[3]),
    (231, &[8]),
    (232, &[8]),
    (243, &[2]),
    (298, &[8]),
    (299, &[8]),
    (302, &[2]),
    (305, &[4]),
    (306, &[4]),
    (999, &[4]),
];

proptest::proptest! {
    /// The compiled plan reads exactly what the field-by-field path reads, for random
    /// fixed-length templates (duplicates, odd lengths, reverse elements included) and
    /// random record bytes.
    #[test]
    fn plan_matches_field_by_field(
        picks in proptest::collection::vec((0usize..PLAN_IES.len(), 0usize..6, proptest::bool::weighted(0.1)), 1..30),
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 600),
        other in proptest::collection::vec(proptest::prelude::any::<u8>(), 600),
        version in proptest::sample::select(vec![9u16, 10]),
        preset in proptest::bool::ANY,
    ) {
        let picks: Vec<(usize, usize, u8)> =
            picks.iter().map(|&(i, l, rev)| (i, l, if rev { 0 } else { 2 })).collect();
        let fields = picked_fields(&picks, version);
        let Ok(t) = Template::compile(version, 256, false, &fields, &[]) else {
            return Ok(());
        };
        proptest::prop_assert!(t.plan.is_some());
        let mut generic = t.clone();
        generic.plan = None;
        let data = &bytes[..t.fixed_len.unwrap()];
        let exporter = "127.0.0.1:1".parse().unwrap();
        let mut a = FlowRecord::new(FlowProtocol::Ipfix, exporter);
        // what the decoder sets before: the header's fields (fill_record's contract: the
        // values a data record sets are not there yet)
        if preset {
            a.export_time_ns = Some(7);
            a.sequence = Some(8);
            a.domain = Some(9);
            a.template_id = Some(256);
        }
        let (fresh, mut b, mut refilled) = (a, a, a);
        let (ta, oa) = fill_record(&t, data, &mut a);
        let (tb, ob) = fill_record(&generic, data, &mut b);
        proptest::prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
        proptest::prop_assert_eq!(format!("{ta:?}"), format!("{tb:?}"));
        proptest::prop_assert_eq!(oa, ob);
        // read in place, the rest of the bytes after it (as the decoder does while 8 bytes
        // of the set follow the record)
        let mut inplace = fresh;
        // times written over whatever was there
        let all_set = RecordTimes {
            start_abs_ns: Some(1),
            end_abs_ns: Some(2),
            start_uptime_ms: Some(3),
            end_uptime_ms: Some(4),
            start_delta_us: Some(5),
            end_delta_us: Some(6),
        };
        let mut ti = all_set;
        let oi = fill_record_in(&t, &bytes, data.len(), &mut inplace, &mut ti);
        proptest::prop_assert_eq!(format!("{inplace:?}"), format!("{a:?}"));
        proptest::prop_assert_eq!(format!("{ti:?}"), format!("{ta:?}"));
        proptest::prop_assert_eq!(oi, oa);
        // the general path too writes every time over what was there
        let (mut g, mut tg) = (fresh, all_set);
        fill_record_in(&generic, &bytes, data.len(), &mut g, &mut tg);
        proptest::prop_assert_eq!(format!("{tg:?}"), format!("{ta:?}"));
        // a record filled before from other bytes, filled again: the same as a fresh one
        if t.refills_record() {
            fill_record(&t, &other[..data.len()], &mut refilled);
            let (tr, or) = fill_record(&t, data, &mut refilled);
            proptest::prop_assert_eq!(format!("{refilled:?}"), format!("{a:?}"));
            proptest::prop_assert_eq!(format!("{tr:?}"), format!("{ta:?}"));
            proptest::prop_assert_eq!(or, oa);
        }
        // a short slice (not what the decoder passes) takes the general path
        let (tc, _) = fill_record(&t, &data[..data.len() - 1], &mut FlowRecord::new(FlowProtocol::Ipfix, exporter));
        let (td, _) = fill_record(&generic, &data[..data.len() - 1], &mut FlowRecord::new(FlowProtocol::Ipfix, exporter));
        proptest::prop_assert_eq!(format!("{tc:?}"), format!("{td:?}"));
    }
}

#[test]
fn plan_only_for_fixed_length_flow_templates() {
    let t = Template::compile(10, 256, false, &[wf(8, 4), wf(1, 8)], &[]).unwrap();
    let p = t.plan.as_ref().unwrap();
    assert_eq!(p.src_addr, Slot::new(0, 4));
    assert_eq!(p.bytes, Slot::new(4, 8));
    assert!(p.rest.is_empty());
    // a duplicate goes to the general path, both fields, in order
    let t = Template::compile(10, 256, false, &[wf(8, 4), wf(1, 8), wf(8, 4)], &[]).unwrap();
    let p = t.plan.as_ref().unwrap();
    assert_eq!(p.src_addr, Slot::default());
    assert_eq!(
        p.rest,
        vec![(0, 4, Setter::SrcAddr), (12, 4, Setter::SrcAddr)]
    );
    let v = Template::compile(10, 257, false, &[wf(8, 4), wf(82, VARLEN)], &[]).unwrap();
    assert!(v.plan.is_none());
    let o = Template::compile(10, 258, true, &[wf(34, 4)], &[]).unwrap();
    assert!(o.plan.is_none());
}
