//! Decode and decode+JSON throughput, in records per second, per protocol.
//!
//! ```text
//! cargo bench --bench decode                     # everything (about 2 minutes)
//! cargo bench --bench decode -- decode/ipfix     # a filter
//! ```
//!
//! Corpus cases read the fixture captures (`tests/fixtures/corpus`) once, give each capture
//! its own [`Decoder`] and warm it with one pass over the capture, so templates, options data
//! and held data are in place; then every iteration decodes the capture's datagrams again, as
//! captured (template datagrams included: they are re-parsed each time, as a collector re-reads
//! the templates exporters resend). Datagrams that yield no record and carry no template
//! (data whose template never comes, undecodable payloads) are left out of the measured pass,
//! so the figures are of decoding, not of counting errors. The throughput is
//! `Throughput::Elements(records per iteration)`.
//!
//! The `*/corpus_data` cases are the same captures with the template sets taken out of each
//! datagram once the decoders are warm: the data path alone, as a collector runs between two
//! template refreshes.
//!
//! - `decode/<case>/decode`: `Decoder::decode` with a closure that touches each record
//!   (`black_box` of one field).
//! - `decode/<case>/decode_json`: the same, and every record encoded (`json::encode`, the raw
//!   `netflow.*` part included) into one reused buffer, one line per record.
//! - Synthetic fixed-length cases: one IPFIX message / one v9 packet of 30 `ipv4_basic`
//!   records built with the encoders (the issue's target: >= 20 M records/s decode and >= 3 M
//!   records/s decode+JSON per core for fixed-length v9/IPFIX templates).
//! - `json/<case>`: the JSON encoder alone, on records built once before the loop.
//! - `spoofed/<case>`: a worker's decoder under a spoofed-source flood, in datagrams per
//!   second: every datagram comes from a source it has never seen, with the exporter table
//!   full (10,000 exporters, default bounds), so each one admits a new exporter and evicts the
//!   least recently seen. `v5_new_address`: a NetFlow v5 datagram of 30 records from a new
//!   address; `v5_new_port`: from new ports of one address (the per-address quota evicts);
//!   `ipfix_templates_new_address`: an IPFIX message with a 64-field template set and a data
//!   set from a new address (a compile and a state eviction per datagram).
//!
//! On a shared machine, `FERROFLOW_BENCH_CLOCK=cpu` measures the benchmark thread's CPU time
//! (`/proc/thread-self/schedstat`, read after a `sched_yield` so the kernel's count is current)
//! instead of wall-clock time: time spent waiting for a core no longer counts, cache and core
//! sharing with the neighbours still does.
//!
//! docs/benchmarks.md has the figures measured and what bounds them.

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion, Throughput};
use ferroflow_codecs::encode::{ipfix, netflow9, FlowRepr};
use ferroflow_codecs::json::{encode, EncodeOptions};
use ferroflow_codecs::record::{Raw, TimeBasis};
use ferroflow_codecs::template::{self, Template, WireField};
use ferroflow_codecs::{Decoder, DecoderConfig, FlowProtocol, FlowRecord};
use ferroflow_io::pcap::PcapReader;

/// The decoder's clock in every case (templates never expire within a run).
const NOW_NS: u64 = 1_700_000_000_000_000_000;
const EXPORTER: &str = "192.0.2.1:2055";

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

fn proto_of(p: &[u8]) -> Option<FlowProtocol> {
    if p.get(..4) == Some(&[0, 0, 0, 5]) {
        return Some(FlowProtocol::Sflow5);
    }
    match p.get(..2)? {
        [0, 5] => Some(FlowProtocol::NetflowV5),
        [0, 9] => Some(FlowProtocol::NetflowV9),
        [0, 10] => Some(FlowProtocol::Ipfix),
        _ => None,
    }
}

/// The datagrams of one capture (of one protocol) and the decoder that reads them.
struct Capture {
    decoder: Decoder,
    datagrams: Vec<(SocketAddr, Vec<u8>)>,
}

/// One measured case: captures, each with its own decoder, and the records one pass yields.
struct Workload {
    name: String,
    captures: Vec<Capture>,
    records: u64,
    datagrams: usize,
    bytes: usize,
}

impl Workload {
    /// Every datagram of `proto` in `files` (paths relative to the corpus folder).
    fn from_captures(name: &str, proto: FlowProtocol, files: &[String]) -> Workload {
        let mut captures = Vec::new();
        for f in files {
            let path = corpus().join(f);
            let mut r = PcapReader::open(&path).unwrap_or_else(|e| panic!("{e}"));
            let mut datagrams = Vec::new();
            while let Some(Ok(dg)) = r.next_datagram() {
                if proto_of(dg.payload) == Some(proto) {
                    datagrams.push((dg.src, dg.payload.to_vec()));
                }
            }
            if !datagrams.is_empty() {
                captures.push(Capture {
                    decoder: Decoder::new(DecoderConfig::default()),
                    datagrams,
                });
            }
        }
        Workload::warm(name, captures)
    }

    /// The same captures with the template sets taken out of every datagram after warming:
    /// the steady state of a collector whose templates are known (exporters resend them every
    /// few seconds or packets, not in every datagram).
    fn data_only(name: &str, proto: FlowProtocol, files: &[String]) -> Workload {
        let mut w = Workload::from_captures(&format!("{name} (as captured)"), proto, files);
        for c in &mut w.captures {
            c.datagrams = c
                .datagrams
                .iter()
                .filter_map(|(src, p)| Some((*src, strip_templates(p)?)))
                .collect();
        }
        Workload::warm(&format!("{name} (templates stripped)"), w.captures).named(name)
    }

    fn named(mut self, name: &str) -> Workload {
        self.name = name.to_string();
        self
    }

    /// Warm every decoder with one pass, then keep the datagrams that yield records or carry
    /// templates, and count the records of one pass.
    fn warm(name: &str, mut captures: Vec<Capture>) -> Workload {
        for c in &mut captures {
            for (src, p) in &c.datagrams {
                let _ = c.decoder.decode(*src, NOW_NS, p, &mut |_| {});
            }
        }
        let (mut records, mut datagrams, mut bytes, mut dropped) = (0, 0, 0, 0);
        for c in &mut captures {
            let dec = &mut c.decoder;
            c.datagrams.retain(|(src, p)| {
                let misses = dec.stats().template_misses;
                let mut n = 0u64;
                let _ = dec.decode(*src, NOW_NS, p, &mut |_| n += 1);
                let keep = dec.stats().template_misses == misses && (n > 0 || has_templates(p));
                if keep {
                    records += n;
                    datagrams += 1;
                    bytes += p.len();
                } else {
                    dropped += 1;
                }
                keep
            });
        }
        captures.retain(|c| !c.datagrams.is_empty());
        let mut json = Vec::new();
        let mut json_bytes = 0;
        for c in &mut captures {
            for (src, p) in &c.datagrams {
                json.clear();
                let _ = c.decoder.decode(*src, NOW_NS, p, &mut |r| {
                    encode(r, &EncodeOptions::default(), &mut json);
                });
                json_bytes += json.len();
            }
        }
        eprintln!(
            "{name}: {} captures, {datagrams} datagrams, {bytes} bytes, {records} records per \
             iteration, {} JSON bytes per record ({dropped} datagrams without decodable records \
             left out)",
            captures.len(),
            json_bytes / records.max(1) as usize
        );
        Workload {
            name: name.to_string(),
            captures,
            records,
            datagrams,
            bytes,
        }
    }

    fn decode(&mut self) {
        for c in &mut self.captures {
            for (src, p) in &c.datagrams {
                let _ = c.decoder.decode(*src, NOW_NS, p, &mut |r| {
                    black_box(r.bytes);
                });
            }
        }
    }

    fn decode_json(&mut self, buf: &mut Vec<u8>, opts: &EncodeOptions) {
        for c in &mut self.captures {
            for (src, p) in &c.datagrams {
                buf.clear();
                let _ = c.decoder.decode(*src, NOW_NS, p, &mut |r| {
                    encode(r, opts, buf);
                    buf.push(b'\n');
                });
                black_box(buf.len());
            }
        }
    }
}

/// The datagram without its template and options template sets (data and options data sets
/// kept, the IPFIX length patched); `None` when no data set is left.
fn strip_templates(p: &[u8]) -> Option<Vec<u8>> {
    let (hdr, ids): (usize, [u16; 2]) = match proto_of(p) {
        Some(FlowProtocol::NetflowV9) => (20, [0, 1]),
        Some(FlowProtocol::Ipfix) => (16, [2, 3]),
        _ => return None,
    };
    let end = if hdr == 16 {
        usize::from(u16::from_be_bytes([p[2], p[3]])).min(p.len())
    } else {
        p.len()
    };
    let mut out = p.get(..hdr)?.to_vec();
    for s in ferroflow_codecs::set::Sets::new(p.get(hdr..end)?, hdr).flatten() {
        if !ids.contains(&s.id) {
            out.extend_from_slice(&p[s.offset..s.offset + 4 + s.body.len()]);
        }
    }
    if out.len() == hdr {
        return None;
    }
    if hdr == 16 {
        let len = out.len() as u16;
        out[2..4].copy_from_slice(&len.to_be_bytes());
    }
    Some(out)
}

/// Whether a v9 / IPFIX datagram carries a template or options template set.
fn has_templates(p: &[u8]) -> bool {
    let (hdr, ids): (usize, [u16; 2]) = match proto_of(p) {
        Some(FlowProtocol::NetflowV9) => (20, [0, 1]),
        Some(FlowProtocol::Ipfix) => (16, [2, 3]),
        _ => return false,
    };
    let body = p.get(hdr..).unwrap_or(&[]);
    ferroflow_codecs::set::Sets::new(body, hdr)
        .flatten()
        .any(|s| ids.contains(&s.id))
}

/// Captures under `dir` (relative to the corpus) whose name matches `pred`, sorted.
fn files(dir: &str, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(corpus().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pcap") && pred(n))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    v.sort();
    v
}

/// Every capture of the corpus (for the "all captures of this protocol" cases).
fn all_files() -> Vec<String> {
    let mut v = Vec::new();
    for d in [
        "akvorado",
        "logstash-codec-netflow",
        "pmacct",
        "nDPI",
        "tcpdump",
    ] {
        v.extend(files(d, |_| true));
    }
    v
}

/// The i-th of 30 distinct IPv4 flows.
fn flow(i: u8) -> FlowRepr {
    FlowRepr {
        src_addr: [10, 0, i / 16, i].into(),
        dst_addr: [192, 0, 2, i].into(),
        next_hop: [10, 255, 0, 1].into(),
        src_port: 40_000 + u16::from(i),
        dst_port: 443,
        protocol: 6,
        tcp_flags: 0x1b,
        tos: 0,
        octets: 1500 * u64::from(i) + 40,
        packets: u64::from(i) + 1,
        input: 3,
        output: 5,
        start_ms: 1_699_999_990_000 + u64::from(i),
        end_ms: 1_700_000_000_000 - u64::from(i),
        src_as: 64_500,
        dst_as: 64_501,
        src_mask: 24,
        dst_mask: 24,
        direction: 0,
        sampler_id: 0,
    }
}

fn flow6(i: u8) -> FlowRepr {
    FlowRepr {
        src_addr: std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i)).into(),
        dst_addr: std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, u16::from(i)).into(),
        next_hop: std::net::Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1).into(),
        ..flow(i)
    }
}

/// A template message and a data message of 30 fixed-length records (IPFIX ipv4_basic).
fn synthetic_ipfix() -> (Vec<u8>, Vec<u8>) {
    let t = ipfix::templates::ipv4_basic(256);
    let hdr = ipfix::HeaderRepr {
        export_time: 1_700_000_000,
        sequence: 0,
        observation_domain: 1,
    };
    let mut tmsg = Vec::new();
    let mut w = ipfix::Writer::begin(&mut tmsg, &hdr);
    w.template_set(std::slice::from_ref(&t)).expect("template");
    w.finish().expect("finish");
    let mut dmsg = Vec::new();
    let mut w = ipfix::Writer::begin(&mut dmsg, &hdr);
    w.begin_data_set(&t).expect("data set");
    for i in 0..30 {
        w.record_flow(&flow(i)).expect("record");
    }
    w.finish().expect("finish");
    (tmsg, dmsg)
}

/// The same for NetFlow v9 ipv4_basic (uptime-relative times).
fn synthetic_v9() -> (Vec<u8>, Vec<u8>) {
    let t = netflow9::templates::ipv4_basic(256);
    let hdr = netflow9::HeaderRepr {
        sys_uptime_ms: 3_600_000,
        unix_secs: 1_700_000_000,
        sequence: 0,
        source_id: 1,
    };
    let mut tmsg = Vec::new();
    let mut w = netflow9::Writer::begin(&mut tmsg, &hdr);
    w.template_set(std::slice::from_ref(&t)).expect("template");
    w.finish().expect("finish");
    let mut dmsg = Vec::new();
    let mut w = netflow9::Writer::begin(&mut dmsg, &hdr);
    w.begin_data_set(&t).expect("data set");
    for i in 0..30 {
        w.record_flow(&flow(i)).expect("record");
    }
    w.finish().expect("finish");
    (tmsg, dmsg)
}

/// A workload of one data message whose template was learned in the warm pass.
fn synthetic(name: &str, (tmsg, dmsg): (Vec<u8>, Vec<u8>)) -> Workload {
    let exporter: SocketAddr = EXPORTER.parse().expect("literal");
    let mut decoder = Decoder::new(DecoderConfig::default());
    let _ = decoder.decode(exporter, NOW_NS, &tmsg, &mut |_| {});
    Workload::warm(
        name,
        vec![Capture {
            decoder,
            datagrams: vec![(exporter, dmsg)],
        }],
    )
}

fn bench_decode<M: Measurement>(c: &mut Criterion<M>) {
    let mut cases = vec![
        Workload::from_captures("netflow_v5/corpus", FlowProtocol::NetflowV5, &all_files()),
        Workload::from_captures("netflow_v9/corpus", FlowProtocol::NetflowV9, &all_files()),
        Workload::data_only(
            "netflow_v9/corpus_data",
            FlowProtocol::NetflowV9,
            &all_files(),
        ),
        Workload::from_captures("ipfix/corpus", FlowProtocol::Ipfix, &all_files()),
        Workload::data_only("ipfix/corpus_data", FlowProtocol::Ipfix, &all_files()),
        Workload::from_captures(
            "ipfix/pmacct-400",
            FlowProtocol::Ipfix,
            &["pmacct/400-IPFIXv10-BMP-CISCO-SRv6-multiple-sources_traffic-00.pcap".into()],
        ),
        Workload::from_captures("sflow/corpus", FlowProtocol::Sflow5, &all_files()),
        synthetic("ipfix/fixed_30x_ipv4_basic", synthetic_ipfix()),
        synthetic("netflow_v9/fixed_30x_ipv4_basic", synthetic_v9()),
    ];
    let mut g = c.benchmark_group("decode");
    let mut buf = Vec::with_capacity(1 << 20);
    let opts = EncodeOptions::default();
    for w in &mut cases {
        if w.records == 0 {
            // the sFlow decoder in main is a placeholder that yields nothing yet
            eprintln!(
                "{}: no records from {} datagrams ({} bytes): skipped",
                w.name, w.datagrams, w.bytes
            );
            continue;
        }
        g.throughput(Throughput::Elements(w.records));
        g.bench_function(BenchmarkId::new(w.name.clone(), "decode"), |b| {
            b.iter(|| w.decode())
        });
        g.bench_function(BenchmarkId::new(w.name.clone(), "decode_json"), |b| {
            b.iter(|| w.decode_json(&mut buf, &opts))
        });
    }
    g.finish();
}

/// NetFlow v5 datagram of 30 records.
fn v5_datagram() -> Vec<u8> {
    let mut b = vec![0u8; 24 + 30 * 48];
    b[1] = 5;
    b[3] = 30;
    b[8..12].copy_from_slice(&1_700_000_000u32.to_be_bytes());
    for i in 0..30 {
        b[24 + i * 48] = 10;
        b[24 + i * 48 + 3] = i as u8;
        b[24 + i * 48 + 38] = 6;
    }
    b
}

/// IPFIX message: one template of 64 four-byte fields, and one record of it.
fn ipfix_template_datagram() -> Vec<u8> {
    let mut t = 256u16.to_be_bytes().to_vec();
    t.extend_from_slice(&64u16.to_be_bytes());
    for f in 0..64u16 {
        t.extend_from_slice(&(f + 1).to_be_bytes());
        t.extend_from_slice(&4u16.to_be_bytes());
    }
    let mut b = vec![0, 10, 0, 0];
    b.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
    for (id, body) in [(2u16, t), (256, vec![1; 256])] {
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        b.extend_from_slice(&body);
    }
    let len = b.len() as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    b
}

fn bench_spoofed<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("spoofed");
    g.throughput(Throughput::Elements(1));
    type Source = fn(u32) -> SocketAddr;
    let new_address: Source =
        |n| SocketAddr::new(std::net::Ipv4Addr::from(0x0a00_0000 + n).into(), 2055);
    let new_port: Source = |n| {
        SocketAddr::new(
            std::net::Ipv4Addr::new(192, 0, 2, 9).into(),
            1024 + (n % 60_000) as u16,
        )
    };
    let cases: [(&str, Vec<u8>, Source); 3] = [
        ("v5_new_address", v5_datagram(), new_address),
        ("v5_new_port", v5_datagram(), new_port),
        (
            "ipfix_templates_new_address",
            ipfix_template_datagram(),
            new_address,
        ),
    ];
    for (name, pkt, source) in cases {
        let mut d = Decoder::new(DecoderConfig::default());
        // a full table: 10,000 exporters, each seen once
        let mut n = 0u32;
        while n < 10_000 {
            let _ = d.decode(new_address(1 << 24 | n), NOW_NS, &pkt, &mut |_| {});
            n += 1;
        }
        g.bench_function(BenchmarkId::new(name, "decode"), |b| {
            b.iter(|| {
                n = n.wrapping_add(1);
                let _ = d.decode(source(n), NOW_NS, &pkt, &mut |r| {
                    black_box(r.bytes);
                });
            })
        });
        assert!(d.exporters() <= 10_000);
    }
    g.finish();
}

/// A compiled template from the encoder's representation.
fn compile(version: u16, t: &ipfix::TemplateRepr) -> Template {
    let fields: Vec<WireField> = t
        .fields
        .iter()
        .map(|f| WireField {
            id: f.id,
            enterprise: f.enterprise.unwrap_or(0),
            len: f.len,
            scope: false,
        })
        .collect();
    Template::compile(version, t.id, false, &fields, &[]).expect("template compiles")
}

/// The records of one IPFIX data message, filled the way the decoder fills them (absolute
/// millisecond times).
fn ipfix_records<'a>(tpl: &'a Template, msg: &'a [u8]) -> Vec<FlowRecord<'a>> {
    let exporter: SocketAddr = EXPORTER.parse().expect("literal");
    let body = &msg[ipfix::HEADER_LEN + 4..];
    tpl.records(body)
        .map(|data| {
            let data = data.expect("record");
            let mut rec = FlowRecord::new(FlowProtocol::Ipfix, exporter);
            rec.export_time_ns = Some(1_700_000_000_000_000_000);
            rec.sequence = Some(0);
            rec.domain = Some(1);
            rec.template_id = Some(tpl.id);
            let (t, _) = template::fill_record(tpl, data, &mut rec);
            rec.start_ns = t.start_abs_ns;
            rec.end_ns = t.end_abs_ns;
            rec.time_basis = Some(TimeBasis::Absolute);
            rec.raw = Raw::Template {
                template: tpl,
                data,
            };
            rec
        })
        .collect()
}

fn bench_json<M: Measurement>(c: &mut Criterion<M>) {
    let t4 = ipfix::templates::ipv4_basic(256);
    let t6 = ipfix::templates::ipv6_basic(257);
    let hdr = ipfix::HeaderRepr {
        export_time: 1_700_000_000,
        sequence: 0,
        observation_domain: 1,
    };
    let mut m4 = Vec::new();
    let mut w = ipfix::Writer::begin(&mut m4, &hdr);
    w.begin_data_set(&t4).expect("data set");
    for i in 0..30 {
        w.record_flow(&flow(i)).expect("record");
    }
    w.finish().expect("finish");
    let mut m6 = Vec::new();
    let mut w = ipfix::Writer::begin(&mut m6, &hdr);
    w.begin_data_set(&t6).expect("data set");
    for i in 0..30 {
        w.record_flow(&flow6(i)).expect("record");
    }
    w.finish().expect("finish");
    let (c4, c6) = (compile(10, &t4), compile(10, &t6));
    let r4 = ipfix_records(&c4, &m4);
    let r6 = ipfix_records(&c6, &m6);

    // NetFlow v5: the 30-record datagrams of the corpus
    let mut v5_payloads = Vec::new();
    for f in all_files() {
        let mut r = PcapReader::open(&corpus().join(f)).expect("capture");
        while let Some(Ok(dg)) = r.next_datagram() {
            if proto_of(dg.payload) == Some(FlowProtocol::NetflowV5) {
                v5_payloads.push(dg.payload.to_vec());
            }
        }
    }
    let exporter: SocketAddr = EXPORTER.parse().expect("literal");
    let mut r5 = Vec::new();
    for p in &v5_payloads {
        let _ = ferroflow_codecs::netflow5::decode(exporter, p, &mut |r| r5.push(*r));
    }

    let mut g = c.benchmark_group("json");
    let mut buf = Vec::with_capacity(1 << 20);
    let raw = EncodeOptions::default();
    let no_raw = EncodeOptions { no_raw: true };
    for (name, recs, opts) in [
        ("ipfix_ipv4_basic", &r4, &raw),
        ("ipfix_ipv4_basic_no_raw", &r4, &no_raw),
        ("ipfix_ipv6_basic", &r6, &raw),
        ("netflow_v5_corpus", &r5, &raw),
    ] {
        buf.clear();
        for r in recs.iter() {
            encode(r, opts, &mut buf);
        }
        eprintln!(
            "json/{name}: {} records, {} bytes per document",
            recs.len(),
            buf.len() / recs.len().max(1)
        );
        g.throughput(Throughput::Elements(recs.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                buf.clear();
                for r in recs.iter() {
                    encode(r, opts, &mut buf);
                    buf.push(b'\n');
                }
                black_box(buf.len())
            })
        });
    }
    g.finish();
}

/// CPU time of the calling thread (Linux): `sum_exec_runtime` from
/// `/proc/thread-self/schedstat`. The kernel updates it at ticks and context switches; the
/// `yield_now` before each read makes it current (the scheduler accounts the running task).
struct ThreadCpuTime;

static WALL: WallTime = WallTime;

impl ThreadCpuTime {
    fn now_ns() -> u64 {
        std::thread::yield_now();
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Whether the counter moves (schedstat exists and is not disabled).
    fn available() -> bool {
        let a = Self::now_ns();
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_millis(20) {
            black_box(0);
        }
        Self::now_ns() > a
    }
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = Duration;

    fn start(&self) -> u64 {
        Self::now_ns()
    }
    fn end(&self, start: u64) -> Duration {
        Duration::from_nanos(Self::now_ns().saturating_sub(start))
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // nanoseconds, like wall-clock time
        WALL.formatter()
    }
}

fn config<M: Measurement>(c: Criterion<M>) -> Criterion<M> {
    c.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args()
}

fn main() {
    let cpu = std::env::var("FERROFLOW_BENCH_CLOCK").is_ok_and(|v| v == "cpu");
    if cpu && ThreadCpuTime::available() {
        eprintln!("measuring thread CPU time (FERROFLOW_BENCH_CLOCK=cpu)");
        let mut c = config(Criterion::default().with_measurement(ThreadCpuTime));
        bench_decode(&mut c);
        bench_json(&mut c);
        bench_spoofed(&mut c);
        c.final_summary();
    } else {
        if cpu {
            eprintln!("FERROFLOW_BENCH_CLOCK=cpu: no thread CPU time here, measuring wall-clock");
        }
        let mut c = config(Criterion::default());
        bench_decode(&mut c);
        bench_json(&mut c);
        bench_spoofed(&mut c);
        c.final_summary();
    }
}
