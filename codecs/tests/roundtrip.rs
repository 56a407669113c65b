//! Round trips through the whole decoder: arbitrary flows encoded with the NetFlow v5, v9 and
//! IPFIX writers (templates and data, IPv4 and IPv6 templates, padding on and off, random
//! record counts, sampling options data), decoded with [`Decoder::decode`], must come back
//! with the same addresses, ports, protocol, counters, flags, interfaces, AS numbers, masks,
//! times (v5 / v9: uptime-relative, resolved with the header; IPFIX: absolute milliseconds) and
//! the sampling rate of the options data, and as many records as were written.
//!
//! Also: data that arrives before its template is held and released when the template comes;
//! an IPFIX template withdrawal makes later data a counted template miss; and a datagram cut
//! at every possible length never panics and never yields a record that was not whole.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ferroflow_codecs::encode::{
    ipfix, netflow5, netflow9, FieldSpecRepr, FlowRepr, OptionsTemplateRepr, TemplateRepr,
};
use ferroflow_codecs::{Decoder, DecoderConfig, FlowProtocol, FlowRecord, TimeBasis};
use proptest::prelude::*;

const NOW_NS: u64 = 1_700_000_000_000_000_000;

fn exporter() -> SocketAddr {
    "192.0.2.1:2055".parse().expect("literal")
}

// --- what is compared ------------------------------------------------------------------------

/// The compared part of a decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    protocol: FlowProtocol,
    src_addr: Option<IpAddr>,
    dst_addr: Option<IpAddr>,
    next_hop: Option<IpAddr>,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    ip_protocol: Option<u8>,
    bytes: Option<u64>,
    packets: Option<u64>,
    tcp_flags: Option<u16>,
    tos: Option<u8>,
    in_if: Option<u32>,
    out_if: Option<u32>,
    src_as: Option<u32>,
    dst_as: Option<u32>,
    src_mask: Option<u8>,
    dst_mask: Option<u8>,
    direction: Option<u8>,
    start_ns: Option<u64>,
    end_ns: Option<u64>,
    time_basis: Option<TimeBasis>,
    sampling_rate: Option<u32>,
}

impl Got {
    fn of(r: &FlowRecord<'_>) -> Got {
        Got {
            protocol: r.protocol,
            src_addr: r.src_addr,
            dst_addr: r.dst_addr,
            next_hop: r.next_hop,
            src_port: r.src_port,
            dst_port: r.dst_port,
            ip_protocol: r.ip_protocol,
            bytes: r.bytes,
            packets: r.packets,
            tcp_flags: r.tcp_flags,
            tos: r.tos,
            in_if: r.in_if,
            out_if: r.out_if,
            src_as: r.src_as,
            dst_as: r.dst_as,
            src_mask: r.src_mask,
            dst_mask: r.dst_mask,
            direction: r.direction,
            start_ns: r.start_ns,
            end_ns: r.end_ns,
            time_basis: r.time_basis,
            sampling_rate: r.sampling_rate,
        }
    }

    /// What a v9 / IPFIX record of `f` written through the ready-made templates decodes to.
    fn templated(f: &FlowRepr, protocol: FlowProtocol, rate: Option<u32>) -> Got {
        Got {
            protocol,
            src_addr: Some(f.src_addr),
            dst_addr: Some(f.dst_addr),
            next_hop: Some(f.next_hop),
            src_port: Some(f.src_port),
            dst_port: Some(f.dst_port),
            ip_protocol: Some(f.protocol),
            bytes: Some(f.octets),
            packets: Some(f.packets),
            tcp_flags: Some(f.tcp_flags),
            tos: Some(f.tos),
            in_if: Some(f.input),
            out_if: Some(f.output),
            src_as: Some(f.src_as),
            dst_as: Some(f.dst_as),
            src_mask: Some(f.src_mask),
            dst_mask: Some(f.dst_mask),
            direction: Some(f.direction),
            start_ns: Some(f.start_ms * 1_000_000),
            end_ns: Some(f.end_ms * 1_000_000),
            time_basis: Some(if protocol == FlowProtocol::Ipfix {
                TimeBasis::Absolute
            } else {
                TimeBasis::Uptime
            }),
            sampling_rate: rate,
        }
    }
}

/// Decode `datagrams` in order with one decoder; the records, and the decoder.
fn decode_all(datagrams: &[Vec<u8>]) -> (Vec<Got>, Decoder) {
    let mut d = Decoder::new(DecoderConfig::default());
    let mut got = Vec::new();
    for dg in datagrams {
        let r = d.decode(exporter(), NOW_NS, dg, &mut |r| got.push(Got::of(r)));
        assert_eq!(r, Ok(()), "a datagram the writers made does not decode");
    }
    (got, d)
}

// --- flows -----------------------------------------------------------------------------------

fn addr(v6: bool) -> BoxedStrategy<IpAddr> {
    if v6 {
        any::<[u8; 16]>()
            .prop_map(|b| IpAddr::V6(Ipv6Addr::from(b)))
            .boxed()
    } else {
        any::<[u8; 4]>()
            .prop_map(|b| IpAddr::V4(Ipv4Addr::from(b)))
            .boxed()
    }
}

/// Value ranges of the fields a protocol's templates carry.
#[derive(Debug, Clone, Copy)]
struct Ranges {
    counters: u64,
    interfaces: u32,
    as_numbers: u32,
}

const V5: Ranges = Ranges {
    counters: u32::MAX as u64,
    interfaces: u16::MAX as u32,
    as_numbers: u16::MAX as u32,
};
const V9: Ranges = Ranges {
    counters: u32::MAX as u64,
    interfaces: u32::MAX,
    as_numbers: u32::MAX,
};
const IPFIX: Ranges = Ranges {
    counters: u64::MAX,
    interfaces: u32::MAX,
    as_numbers: u32::MAX,
};

/// A flow whose values fit `r`. `start_ms` / `end_ms` are raw random numbers that the caller
/// maps into the range its protocol can carry; `sampler_id` is a raw pick (see [`pick`]).
fn flow(v6: bool, r: Ranges) -> impl Strategy<Value = FlowRepr> {
    (
        (
            addr(v6),
            addr(v6),
            addr(v6),
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
        ),
        (
            0..=r.counters,
            0..=r.counters,
            0..=r.interfaces,
            0..=r.interfaces,
            0..=r.as_numbers,
            0..=r.as_numbers,
            any::<(u8, u8)>(),
            0u8..=1,
            any::<(u64, u64)>(),
            any::<u16>(),
        ),
    )
        .prop_map(
            |(
                (src, dst, nh, sp, dp, proto, flags, tos),
                (octets, packets, input, output, src_as, dst_as, masks, dir, times, sel),
            )| FlowRepr {
                src_addr: src,
                dst_addr: dst,
                next_hop: nh,
                src_port: sp,
                dst_port: dp,
                protocol: proto,
                tcp_flags: u16::from(flags),
                tos,
                octets,
                packets,
                input,
                output,
                start_ms: times.0,
                end_ms: times.1,
                src_as,
                dst_as,
                src_mask: masks.0,
                dst_mask: masks.1,
                direction: dir,
                sampler_id: sel,
            },
        )
}

fn flows(v6: bool, r: Ranges, max: usize) -> impl Strategy<Value = Vec<FlowRepr>> {
    proptest::collection::vec(flow(v6, r), 0..=max)
}

/// Put the flow's raw times in `[base, base + span]`.
fn place_times(f: &mut FlowRepr, base: u64, span: u64) {
    f.start_ms = base + f.start_ms % (span + 1);
    f.end_ms = base + f.end_ms % (span + 1);
}

/// The sampler id of a flow from its raw pick: one of `ids`, or (one time in `ids.len() + 1`)
/// `absent`, an id no options record describes.
fn pick(raw: u16, ids: &[u8], absent: u8) -> u8 {
    let i = usize::from(raw) % (ids.len() + 1);
    ids.get(i).copied().unwrap_or(absent)
}

/// An id not among `ids`.
fn absent_id(ids: &[u8]) -> u8 {
    (0..=u8::MAX)
        .find(|i| !ids.contains(i))
        .expect("at most 4 ids")
}

// --- NetFlow v5 ------------------------------------------------------------------------------

fn v5_header() -> impl Strategy<Value = netflow5::HeaderRepr> {
    (
        1u32..=u32::MAX,
        5_000_000u32..=u32::MAX,
        0u32..1_000_000_000,
        any::<u32>(),
        any::<(u8, u8)>(),
        0u8..=3,
        0u16..=0x3fff,
    )
        .prop_map(
            |(up, secs, nsecs, seq, (et, ei), mode, interval)| netflow5::HeaderRepr {
                sys_uptime_ms: up,
                unix_secs: secs,
                unix_nsecs: nsecs,
                flow_sequence: seq,
                engine_type: et,
                engine_id: ei,
                sampling_mode: mode,
                sampling_interval: interval,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn netflow_v5_round_trip(hdr in v5_header(), mut fl in flows(false, V5, 95)) {
        let boot = hdr.boot_ms();
        for f in &mut fl {
            place_times(f, boot, u64::from(hdr.sys_uptime_ms));
        }
        let mut datagrams = Vec::new();
        for chunk in fl.chunks(netflow5::MAX_RECORDS) {
            let recs: Vec<_> = chunk
                .iter()
                .map(|f| netflow5::RecordRepr::from_flow(f, &hdr).expect("IPv4"))
                .collect();
            let mut out = Vec::new();
            netflow5::emit(&hdr, &recs, &mut out).expect("emit");
            datagrams.push(out);
        }
        let (got, d) = decode_all(&datagrams);
        // v5 times: the boot time is the export time (with its nanoseconds) minus the uptime;
        // the writer made first/last relative to the export time in whole milliseconds
        let sub_ms = u64::from(hdr.unix_nsecs % 1_000_000);
        let rate = (hdr.sampling_interval > 0).then_some(u32::from(hdr.sampling_interval));
        let want: Vec<Got> = fl
            .iter()
            .map(|f| Got {
                direction: None,
                start_ns: Some(f.start_ms * 1_000_000 + sub_ms),
                end_ns: Some(f.end_ms * 1_000_000 + sub_ms),
                ..Got::templated(f, FlowProtocol::NetflowV5, rate)
            })
            .map(|mut g| {
                g.time_basis = Some(TimeBasis::Uptime);
                g
            })
            .collect();
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(d.stats().records[FlowProtocol::NetflowV5.index()], fl.len() as u64);
    }
}

// --- NetFlow v9 ------------------------------------------------------------------------------

/// How a v9 exporter describes its sampling.
#[derive(Debug, Clone)]
enum V9Sampling {
    None,
    /// Global SAMPLING_INTERVAL options record (34/35), flows without a sampler id.
    Interval(u32),
    /// Sampler table: FLOW_SAMPLER_ID -> FLOW_SAMPLER_RANDOM_INTERVAL, flows with a sampler id.
    Samplers(BTreeMap<u8, u32>),
}

fn v9_sampling() -> impl Strategy<Value = V9Sampling> {
    prop_oneof![
        Just(V9Sampling::None),
        any::<u32>().prop_map(V9Sampling::Interval),
        proptest::collection::btree_map(any::<u8>(), any::<u32>(), 1..4)
            .prop_map(V9Sampling::Samplers),
    ]
}

/// Where the templates, options and data go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One datagram: templates, options template, options data, data.
    One,
    /// Templates and options first, data in a second datagram.
    TemplatesFirst,
    /// Data first (held: no template yet), templates and options in a second datagram.
    DataFirst,
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        Just(Layout::One),
        Just(Layout::TemplatesFirst),
        Just(Layout::DataFirst)
    ]
}

fn with_field(mut t: TemplateRepr, f: FieldSpecRepr) -> TemplateRepr {
    t.fields.push(f);
    t
}

/// v9 templates of a sampling mode: (IPv4, IPv6, options).
fn v9_templates(
    sampling: &V9Sampling,
) -> (TemplateRepr, TemplateRepr, Option<OptionsTemplateRepr>) {
    use netflow9::templates as t;
    match sampling {
        V9Sampling::None => (t::ipv4_basic(256), t::ipv6_basic(257), None),
        V9Sampling::Interval(_) => (
            t::ipv4_basic(256),
            t::ipv6_basic(257),
            Some(t::sampling_options(258)),
        ),
        V9Sampling::Samplers(_) => (
            t::ipv4_sampled(256),
            with_field(t::ipv6_basic(257), FieldSpecRepr::new(48, 1)),
            Some(t::sampler_options(258)),
        ),
    }
}

/// Write the control sets (templates, options template, options data) of a v9 export.
fn v9_control<'a>(
    w: &mut netflow9::Writer<'a>,
    t4: &TemplateRepr,
    t6: &TemplateRepr,
    opts: &'a Option<OptionsTemplateRepr>,
    sampling: &V9Sampling,
) {
    use netflow9::templates as t;
    w.template_set(&[t4.clone(), t6.clone()])
        .expect("templates");
    if let Some(o) = opts {
        w.options_template_set(std::slice::from_ref(o))
            .expect("options template");
        w.begin_options_data_set(o).expect("options set");
        match sampling {
            V9Sampling::None => Ok(()),
            V9Sampling::Interval(iv) => w.record(&t::sampling_values(0, *iv, 1)),
            V9Sampling::Samplers(m) => m
                .iter()
                .try_for_each(|(&id, &iv)| w.record(&t::sampler_values(0, id, 2, iv))),
        }
        .expect("options data");
    }
}

fn v9_data<'a>(w: &mut netflow9::Writer<'a>, sets: [(&'a TemplateRepr, &[FlowRepr]); 2]) {
    for (tpl, fl) in sets {
        if fl.is_empty() {
            continue;
        }
        w.begin_data_set(tpl).expect("data set");
        for f in fl {
            w.record_flow(f).expect("record");
        }
    }
}

/// The datagrams of a v9 export, and the sampling rate each flow should come back with
/// (IPv4 flows first, then IPv6).
fn v9_export(
    hdr: &netflow9::HeaderRepr,
    v4: &[FlowRepr],
    v6: &[FlowRepr],
    sampling: &V9Sampling,
    pad: bool,
    layout: Layout,
) -> (Vec<Vec<u8>>, Vec<Option<u32>>) {
    let (t4, t6, opts) = v9_templates(sampling);
    let second = netflow9::HeaderRepr {
        sequence: hdr.sequence.wrapping_add(1),
        ..*hdr
    };
    let mut control = Vec::new();
    let mut data = Vec::new();
    if layout == Layout::One {
        let mut w = netflow9::Writer::begin(&mut control, hdr);
        w.set_padding(pad);
        v9_control(&mut w, &t4, &t6, &opts, sampling);
        v9_data(&mut w, [(&t4, v4), (&t6, v6)]);
        w.finish().expect("finish");
    } else {
        let mut w = netflow9::Writer::begin(&mut control, hdr);
        w.set_padding(pad);
        v9_control(&mut w, &t4, &t6, &opts, sampling);
        w.finish().expect("finish");
        let mut w = netflow9::Writer::begin(&mut data, &second);
        w.set_padding(pad);
        v9_data(&mut w, [(&t4, v4), (&t6, v6)]);
        w.finish().expect("finish");
    }
    let rates = v4
        .iter()
        .chain(v6)
        .map(|f| match sampling {
            V9Sampling::None => None,
            V9Sampling::Interval(iv) => (*iv > 0).then_some(*iv),
            V9Sampling::Samplers(m) => m
                .get(&(f.sampler_id as u8))
                .and_then(|&iv| (iv > 0).then_some(iv)),
        })
        .collect();
    let datagrams = match layout {
        Layout::One => vec![control],
        Layout::TemplatesFirst => vec![control, data],
        Layout::DataFirst => vec![data, control],
    };
    (datagrams, rates)
}

fn v9_header() -> impl Strategy<Value = netflow9::HeaderRepr> {
    (
        1u32..=u32::MAX,
        5_000_000u32..=u32::MAX,
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(up, secs, seq, src)| netflow9::HeaderRepr {
            sys_uptime_ms: up,
            unix_secs: secs,
            sequence: seq,
            source_id: src,
        })
}

/// Times within the uptime, sampler ids picked from the sampling table.
fn prepare_v9(hdr: &netflow9::HeaderRepr, sampling: &V9Sampling, fl: &mut [FlowRepr]) {
    let ids: Vec<u8> = match sampling {
        V9Sampling::Samplers(m) => m.keys().copied().collect(),
        _ => Vec::new(),
    };
    let absent = absent_id(&ids);
    for f in fl {
        place_times(f, hdr.boot_ms(), u64::from(hdr.sys_uptime_ms));
        f.sampler_id = if ids.is_empty() {
            0
        } else {
            u16::from(pick(f.sampler_id, &ids, absent))
        };
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn netflow_v9_round_trip(
        hdr in v9_header(),
        mut v4 in flows(false, V9, 40),
        mut v6 in flows(true, V9, 40),
        sampling in v9_sampling(),
        pad in any::<bool>(),
        layout in layout(),
    ) {
        prepare_v9(&hdr, &sampling, &mut v4);
        prepare_v9(&hdr, &sampling, &mut v6);
        let (datagrams, rates) = v9_export(&hdr, &v4, &v6, &sampling, pad, layout);
        let (got, d) = decode_all(&datagrams);
        let want: Vec<Got> = v4
            .iter()
            .chain(&v6)
            .zip(&rates)
            .map(|(f, &rate)| Got::templated(f, FlowProtocol::NetflowV9, rate))
            .collect();
        prop_assert_eq!(&got, &want);
        let n = (v4.len() + v6.len()) as u64;
        prop_assert_eq!(d.stats().records[FlowProtocol::NetflowV9.index()], n);
        if layout == Layout::DataFirst && n > 0 {
            // held while the template was unknown, released when it came
            prop_assert!(d.stats().template_misses > 0);
            prop_assert_eq!(d.stats().held_sets, d.stats().template_misses);
            prop_assert_eq!(d.stats().held_sets_released, d.stats().held_sets);
            prop_assert_eq!(d.held_sets_pending(), 0);
        } else {
            prop_assert_eq!(d.stats().template_misses, 0);
        }
    }
}

// --- IPFIX -----------------------------------------------------------------------------------

/// How an IPFIX exporter describes its sampling.
#[derive(Debug, Clone)]
enum IpfixSampling {
    None,
    /// PSAMP selectors (RFC 5477): selectorId -> (samplingPacketInterval >= 1,
    /// samplingPacketSpace); flows carry a selectorId.
    Selectors(BTreeMap<u8, (u32, u32)>),
    /// The older samplingInterval (34) with an observation-domain scope; flows without one.
    Legacy(u32),
}

fn ipfix_sampling() -> impl Strategy<Value = IpfixSampling> {
    prop_oneof![
        Just(IpfixSampling::None),
        proptest::collection::btree_map(any::<u8>(), (1u32..=u32::MAX, any::<u32>()), 1..4)
            .prop_map(IpfixSampling::Selectors),
        any::<u32>().prop_map(IpfixSampling::Legacy),
    ]
}

fn ipfix_header() -> impl Strategy<Value = ipfix::HeaderRepr> {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(t, seq, dom)| ipfix::HeaderRepr {
        export_time: t,
        sequence: seq,
        observation_domain: dom,
    })
}

/// IPFIX templates of a sampling mode: (IPv4, IPv6, options).
fn ipfix_templates(
    sampling: &IpfixSampling,
) -> (TemplateRepr, TemplateRepr, Option<OptionsTemplateRepr>) {
    use ipfix::templates as t;
    match sampling {
        IpfixSampling::None => (t::ipv4_basic(256), t::ipv6_basic(257), None),
        IpfixSampling::Selectors(_) => (
            t::ipv4_sampled(256),
            with_field(t::ipv6_basic(257), FieldSpecRepr::new(302, 2)),
            Some(t::sampling_options(258)),
        ),
        IpfixSampling::Legacy(_) => (
            t::ipv4_basic(256),
            t::ipv6_basic(257),
            Some(t::sampling_options_legacy(258)),
        ),
    }
}

/// Write the control sets (templates, options template, options data) of an IPFIX export.
fn ipfix_control<'a>(
    w: &mut ipfix::Writer<'a>,
    t4: &TemplateRepr,
    t6: &TemplateRepr,
    opts: &'a Option<OptionsTemplateRepr>,
    sampling: &IpfixSampling,
    domain: u32,
) {
    use ipfix::templates as t;
    w.template_set(&[t4.clone(), t6.clone()])
        .expect("templates");
    if let Some(o) = opts {
        w.options_template_set(std::slice::from_ref(o))
            .expect("options template");
        w.begin_options_data_set(o).expect("options set");
        match sampling {
            IpfixSampling::None => Ok(()),
            IpfixSampling::Selectors(m) => m.iter().try_for_each(|(&id, &(iv, space))| {
                w.record(&t::sampling_values(u64::from(id), 1, iv, space))
            }),
            IpfixSampling::Legacy(iv) => w.record(&t::sampling_legacy_values(domain, *iv, 1)),
        }
        .expect("options data");
    }
}

fn ipfix_data<'a>(w: &mut ipfix::Writer<'a>, sets: [(&'a TemplateRepr, &[FlowRepr]); 2]) {
    for (tpl, fl) in sets {
        if fl.is_empty() {
            continue;
        }
        w.begin_data_set(tpl).expect("data set");
        for f in fl {
            w.record_flow(f).expect("record");
        }
    }
}

/// The datagrams of an IPFIX export and each flow's expected sampling rate.
fn ipfix_export(
    hdr: &ipfix::HeaderRepr,
    v4: &[FlowRepr],
    v6: &[FlowRepr],
    sampling: &IpfixSampling,
    pad: bool,
    layout: Layout,
) -> (Vec<Vec<u8>>, Vec<Option<u32>>) {
    let (t4, t6, opts) = ipfix_templates(sampling);
    let dom = hdr.observation_domain;
    let mut control = Vec::new();
    let mut data = Vec::new();
    if layout == Layout::One {
        let mut w = ipfix::Writer::begin(&mut control, hdr);
        w.set_padding(pad);
        ipfix_control(&mut w, &t4, &t6, &opts, sampling, dom);
        ipfix_data(&mut w, [(&t4, v4), (&t6, v6)]);
        w.finish().expect("finish");
    } else {
        let mut w = ipfix::Writer::begin(&mut control, hdr);
        w.set_padding(pad);
        ipfix_control(&mut w, &t4, &t6, &opts, sampling, dom);
        w.finish().expect("finish");
        let mut w = ipfix::Writer::begin(&mut data, hdr);
        w.set_padding(pad);
        ipfix_data(&mut w, [(&t4, v4), (&t6, v6)]);
        w.finish().expect("finish");
    }
    let rates = v4
        .iter()
        .chain(v6)
        .map(|f| match sampling {
            IpfixSampling::None => None,
            IpfixSampling::Selectors(m) => m.get(&(f.sampler_id as u8)).map(|&(iv, space)| {
                ((u64::from(iv) + u64::from(space)) / u64::from(iv)).min(u64::from(u32::MAX)) as u32
            }),
            IpfixSampling::Legacy(iv) => (*iv > 0).then_some(*iv),
        })
        .collect();
    let datagrams = match layout {
        Layout::One => vec![control],
        Layout::TemplatesFirst => vec![control, data],
        Layout::DataFirst => vec![data, control],
    };
    (datagrams, rates)
}

/// Absolute millisecond times, selector ids picked from the selector table.
fn prepare_ipfix(sampling: &IpfixSampling, fl: &mut [FlowRepr]) {
    let ids: Vec<u8> = match sampling {
        IpfixSampling::Selectors(m) => m.keys().copied().collect(),
        _ => Vec::new(),
    };
    let absent = absent_id(&ids);
    for f in fl {
        // up to the year 2286: start_ms * 1e6 fits the record's u64 nanoseconds
        place_times(f, 0, 9_999_999_999_999);
        f.sampler_id = if ids.is_empty() {
            0
        } else {
            u16::from(pick(f.sampler_id, &ids, absent))
        };
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn ipfix_round_trip(
        hdr in ipfix_header(),
        mut v4 in flows(false, IPFIX, 40),
        mut v6 in flows(true, IPFIX, 40),
        sampling in ipfix_sampling(),
        pad in any::<bool>(),
        layout in layout(),
    ) {
        prepare_ipfix(&sampling, &mut v4);
        prepare_ipfix(&sampling, &mut v6);
        let (datagrams, rates) = ipfix_export(&hdr, &v4, &v6, &sampling, pad, layout);
        let (got, d) = decode_all(&datagrams);
        let want: Vec<Got> = v4
            .iter()
            .chain(&v6)
            .zip(&rates)
            .map(|(f, &rate)| Got::templated(f, FlowProtocol::Ipfix, rate))
            .collect();
        prop_assert_eq!(&got, &want);
        let n = (v4.len() + v6.len()) as u64;
        prop_assert_eq!(d.stats().records[FlowProtocol::Ipfix.index()], n);
        if layout == Layout::DataFirst && n > 0 {
            prop_assert!(d.stats().template_misses > 0);
            prop_assert_eq!(d.stats().held_sets, d.stats().template_misses);
            prop_assert_eq!(d.stats().held_sets_released, d.stats().held_sets);
            prop_assert_eq!(d.held_sets_pending(), 0);
        } else {
            prop_assert_eq!(d.stats().template_misses, 0);
        }
    }

    /// Templates and data, then a withdrawal (one template, or all with id 2), then data
    /// again: the withdrawn template's data yields nothing and counts a template miss; the
    /// other template still decodes.
    #[test]
    fn ipfix_withdrawal_then_data(
        hdr in ipfix_header(),
        mut v4 in flows(false, IPFIX, 10),
        mut v6 in flows(true, IPFIX, 10),
        all in any::<bool>(),
        pad in any::<bool>(),
    ) {
        prop_assume!(!v4.is_empty());
        prepare_ipfix(&IpfixSampling::None, &mut v4);
        prepare_ipfix(&IpfixSampling::None, &mut v6);
        let (datagrams, _) =
            ipfix_export(&hdr, &v4, &v6, &IpfixSampling::None, pad, Layout::One);
        let (t4, t6, _) = ipfix_templates(&IpfixSampling::None);
        let mut withdraw = Vec::new();
        let mut w = ipfix::Writer::begin(&mut withdraw, &hdr);
        w.set_padding(pad);
        w.template_withdrawal(if all { &[2] } else { &[256] }).expect("withdrawal");
        w.finish().expect("finish");
        let mut again = Vec::new();
        let mut w = ipfix::Writer::begin(&mut again, &hdr);
        w.set_padding(pad);
        ipfix_data(&mut w, [(&t4, &v4), (&t6, &v6)]);
        w.finish().expect("finish");

        let mut d = Decoder::new(DecoderConfig::default());
        let mut n = 0usize;
        let _ = d.decode(exporter(), NOW_NS, &datagrams[0], &mut |_| n += 1);
        prop_assert_eq!(n, v4.len() + v6.len());
        let _ = d.decode(exporter(), NOW_NS, &withdraw, &mut |_| n += 1);
        prop_assert_eq!(d.stats().template_withdrawals, if all { 2 } else { 1 });
        let mut after = Vec::new();
        let _ = d.decode(exporter(), NOW_NS, &again, &mut |r| after.push(Got::of(r)));
        let expect_v6 = if all { Vec::new() } else { v6.clone() };
        let want: Vec<Got> = expect_v6
            .iter()
            .map(|f| Got::templated(f, FlowProtocol::Ipfix, None))
            .collect();
        prop_assert_eq!(&after, &want);
        let misses = 1 + u64::from(all && !v6.is_empty());
        prop_assert_eq!(d.stats().template_misses, misses);
    }
}

// --- truncation ------------------------------------------------------------------------------

/// End offsets of the data records of a v9 / IPFIX message (fixed-length templates of known
/// record lengths by template id), in decoding order.
fn record_ends(msg: &[u8], header_len: usize, lens: &BTreeMap<u16, usize>) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut pos = header_len;
    while pos + 4 <= msg.len() {
        let id = u16::from_be_bytes([msg[pos], msg[pos + 1]]);
        let len = usize::from(u16::from_be_bytes([msg[pos + 2], msg[pos + 3]]));
        assert!(len >= 4 && pos + len <= msg.len(), "writer made a bad set");
        if let Some(&rl) = lens.get(&id) {
            let body = len - 4;
            for i in 0..body / rl {
                ends.push(pos + 4 + (i + 1) * rl);
            }
        }
        pos += len;
    }
    ends
}

/// Decode every prefix of `msg` with a fresh decoder (and, when `patch_len`, with the IPFIX
/// message length set to the prefix length): no panic, and the records are a prefix of the
/// whole message's records, none of them beyond the cut.
fn check_cuts(
    msg: &[u8],
    full: &[Got],
    ends: &[usize],
    patch_len: bool,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(full.len(), ends.len());
    for cut in 0..=msg.len() {
        let mut buf = msg[..cut].to_vec();
        if patch_len && cut >= 4 {
            buf[2..4].copy_from_slice(&(cut as u16).to_be_bytes());
        }
        let mut d = Decoder::new(DecoderConfig::default());
        let mut got = Vec::new();
        let _ = d.decode(exporter(), NOW_NS, &buf, &mut |r| got.push(Got::of(r)));
        let whole = ends.iter().filter(|&&e| e <= cut).count();
        prop_assert!(
            got.len() <= whole,
            "cut at {cut}: {} records, only {whole} whole",
            got.len()
        );
        prop_assert_eq!(&got[..], &full[..got.len()], "cut at {}", cut);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn netflow_v5_cut_anywhere(hdr in v5_header(), mut fl in flows(false, V5, 6)) {
        for f in &mut fl {
            place_times(f, hdr.boot_ms(), u64::from(hdr.sys_uptime_ms));
        }
        let recs: Vec<_> = fl
            .iter()
            .map(|f| netflow5::RecordRepr::from_flow(f, &hdr).expect("IPv4"))
            .collect();
        let mut msg = Vec::new();
        netflow5::emit(&hdr, &recs, &mut msg).expect("emit");
        let (full, _) = decode_all(std::slice::from_ref(&msg));
        let ends: Vec<usize> = (1..=fl.len()).map(|i| 24 + 48 * i).collect();
        check_cuts(&msg, &full, &ends, false)?;
    }

    #[test]
    fn netflow_v9_cut_anywhere(
        hdr in v9_header(),
        mut v4 in flows(false, V9, 6),
        mut v6 in flows(true, V9, 6),
        sampling in v9_sampling(),
        pad in any::<bool>(),
    ) {
        prepare_v9(&hdr, &sampling, &mut v4);
        prepare_v9(&hdr, &sampling, &mut v6);
        let (datagrams, _) = v9_export(&hdr, &v4, &v6, &sampling, pad, Layout::One);
        let msg = &datagrams[0];
        let (full, _) = decode_all(&datagrams);
        let sampled = usize::from(matches!(sampling, V9Sampling::Samplers(_)));
        let lens = BTreeMap::from([(256, 54 + sampled), (257, 90 + sampled)]);
        check_cuts(msg, &full, &record_ends(msg, 20, &lens), false)?;
    }

    #[test]
    fn ipfix_cut_anywhere(
        hdr in ipfix_header(),
        mut v4 in flows(false, IPFIX, 6),
        mut v6 in flows(true, IPFIX, 6),
        sampling in ipfix_sampling(),
        pad in any::<bool>(),
    ) {
        prepare_ipfix(&sampling, &mut v4);
        prepare_ipfix(&sampling, &mut v6);
        let (datagrams, _) = ipfix_export(&hdr, &v4, &v6, &sampling, pad, Layout::One);
        let msg = &datagrams[0];
        let (full, _) = decode_all(&datagrams);
        let sampled = 2 * usize::from(matches!(sampling, IpfixSampling::Selectors(_)));
        let lens = BTreeMap::from([(256, 70 + sampled), (257, 106 + sampled)]);
        let ends = record_ends(msg, 16, &lens);
        // as cut by the network (the header still claims the whole length) ...
        check_cuts(msg, &full, &ends, false)?;
        // ... and with the message length saying the cut length (sets are what is cut)
        check_cuts(msg, &full, &ends, true)?;
    }
}
