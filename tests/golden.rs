//! Golden tests: `ferroflow decode` over every capture of the corpus, compared record by record
//! with what Wireshark's dissectors found (`X.flows.jsonl`, see tests/fixtures/README.md).
//!
//! For every answer line, a document must exist whose values are equal for every compared key
//! the answer has. Documents beyond the answer must be explained: data that arrived before its
//! template and was decoded once the template came (tshark drops it); they are checked for the
//! same sanity as the others and counted in the report.
//!
//! `FERROFLOW_GOLDEN_VERBOSE=1` prints every mismatch.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{captures, corpus_dir};
use serde_json::Value;

/// Keys compared between the answer and our documents.
const COMPARED: &[&str] = &[
    "exporter",
    "exporter_port",
    "domain",
    "sequence",
    "template_id",
    "src_addr",
    "dst_addr",
    "src_port",
    "dst_port",
    "protocol",
    "bytes",
    "packets",
    "tcp_flags",
    "tos",
    "in_if",
    "out_if",
    "src_as",
    "dst_as",
    "src_mask",
    "dst_mask",
    "next_hop",
    "bgp_next_hop",
    "vlan",
    "src_vlan",
    "dst_vlan",
    "src_mac",
    "dst_mac",
    "mpls_labels",
    "start_ns",
    "end_ns",
    "start_uptime_ns",
    "end_uptime_ns",
    "time_basis",
    "sampling_rate",
    "reverse_bytes",
    "reverse_packets",
    "reverse_tcp_flags",
    "ip_version",
    "direction",
    "flow_end_reason",
    "icmp_type",
    "icmp_code",
];

/// Captures where we find more records than tshark for a reason other than held data, with
/// the exact number of extra documents and why.
const EXTRA_EXPECTED: &[(&str, usize, &str)] = &[
    (
        "akvorado/netflow_data+templates.pcap",
        11,
        "a data set precedes its template in the same datagram: tshark skips it, we read the \
         datagram's templates first",
    ),
    (
        "logstash-codec-netflow/netflow-9-h3c.pcap",
        15,
        "tshark aborts the packet at an IPv4 field of length 2 (malformed): we skip that field \
         and decode the other records",
    ),
    (
        "tcpdump/sflow_multiple_counter_30_pdus.pcap",
        7,
        "5 NetFlow v5 datagrams sent to the sFlow port 6343: tshark, told the port carries sFlow, \
         does not decode them; we recognise the protocol by its version field",
    ),
    (
        "logstash-codec-netflow/netflow-9-invalid-01.pcap",
        2,
        "the v9 header count (2) is smaller than the records present: tshark stops at the count, \
         we walk the flowsets by their lengths",
    ),
];

/// RFC 3339 `2024-01-02T03:04:05.123456789Z` -> ns since the epoch.
fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut frac = 0i64;
    if b.get(19) == Some(&b'.') {
        let digits: String = s[20..].chars().take_while(|c| c.is_ascii_digit()).collect();
        frac = format!("{digits:0<9}")[..9].parse().ok()?;
    }
    // days from civil (Howard Hinnant)
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) * 1_000_000_000) + frac)
}

/// Our document, projected onto the answer's keys.
fn project(doc: &Value) -> BTreeMap<&'static str, Value> {
    let mut m = BTreeMap::new();
    let mut put = |k: &'static str, v: Option<&Value>| {
        if let Some(v) = v {
            if !v.is_null() {
                m.insert(k, v.clone());
            }
        }
    };
    let p = |path: &str| doc.pointer(path);
    put("exporter", p("/observer/ip"));
    put("exporter_port", p("/flow/exporter_port"));
    put("domain", p("/flow/domain"));
    put("sequence", p("/flow/sequence"));
    put("template_id", p("/flow/template_id"));
    put("src_addr", p("/source/ip"));
    put("dst_addr", p("/destination/ip"));
    put("src_port", p("/source/port"));
    put("dst_port", p("/destination/port"));
    put(
        "protocol",
        p("/network/iana_number")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<u64>().ok())
            .map(Value::from)
            .as_ref(),
    );
    put("bytes", p("/network/bytes"));
    put("packets", p("/network/packets"));
    put("tcp_flags", p("/flow/tcp_flags"));
    put("tos", p("/flow/tos"));
    put("in_if", p("/observer/ingress/interface/id"));
    put("out_if", p("/observer/egress/interface/id"));
    put("src_as", p("/source/as/number"));
    put("dst_as", p("/destination/as/number"));
    put("src_mask", p("/flow/src_mask"));
    put("dst_mask", p("/flow/dst_mask"));
    put("next_hop", p("/flow/next_hop"));
    put("bgp_next_hop", p("/flow/bgp_next_hop"));
    put("vlan", p("/network/vlan/id"));
    put("src_vlan", p("/flow/src_vlan"));
    put("dst_vlan", p("/flow/dst_vlan"));
    put("src_mac", p("/source/mac"));
    put("dst_mac", p("/destination/mac"));
    put("mpls_labels", p("/flow/mpls_labels"));
    let t = |path: &str| {
        p(path)
            .and_then(|v| v.as_str())
            .and_then(parse_time)
            .map(Value::from)
    };
    put("start_ns", t("/event/start").as_ref());
    put("end_ns", t("/event/end").as_ref());
    let up = |path: &str| {
        p(path)
            .and_then(|v| v.as_u64())
            .map(|ms| Value::from(ms * 1_000_000))
    };
    put("start_uptime_ns", up("/flow/start_uptime_ms").as_ref());
    put("end_uptime_ns", up("/flow/end_uptime_ms").as_ref());
    put("time_basis", p("/flow/time_basis"));
    if p("/flow/sampling_source").and_then(|v| v.as_str()) != Some("unknown") {
        put("sampling_rate", p("/flow/sampling_rate"));
    }
    put("reverse_bytes", p("/flow/reverse/bytes"));
    put("reverse_packets", p("/flow/reverse/packets"));
    put("reverse_tcp_flags", p("/flow/reverse/tcp_flags"));
    put("ip_version", p("/flow/ip_version"));
    put("direction", p("/flow/direction"));
    put("flow_end_reason", p("/flow/end_reason"));
    put("icmp_type", p("/flow/icmp_type"));
    put("icmp_code", p("/flow/icmp_code"));
    // sFlow raw values the answer reports under normalised keys (see answer_projection)
    put("_sflow_out_value", p("/sflow/output_interface_value"));
    put("_sflow_communities", p("/sflow/communities"));
    m
}

fn answer_projection(line: &Value) -> BTreeMap<&'static str, Value> {
    let mut m = BTreeMap::new();
    for &k in COMPARED {
        if let Some(v) = line.get(k) {
            if !v.is_null() {
                m.insert(k, v.clone());
            }
        }
    }
    // Where the answer is known not to be authoritative, the key is left out (and counted).
    // tshark shows a zero flowStartSysUpTime as an absolute time at the epoch, with no end:
    // ours resolves it against the exporter's boot time like any other uptime value.
    if line
        .get("start_ns")
        .and_then(|v| v.as_i64())
        .is_some_and(|ns| ns < 100_000_000_000_000_000)
        && line.get("time_basis").and_then(|v| v.as_str()) == Some("absolute")
    {
        for k in ["start_ns", "end_ns", "time_basis"] {
            m.remove(k);
        }
        QUIRKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    // sFlow output interface of format 1 (discard reason) or 2 (number of interfaces) is not an
    // ifIndex: the answer reports it as out_if, we keep it in sflow.output_interface_value only
    if line
        .get("out_if_format")
        .and_then(|v| v.as_u64())
        .is_some_and(|f| f != 0)
    {
        if let Some(v) = m.remove("out_if") {
            m.insert("_sflow_out_value", v);
        }
    }
    // sFlow VLAN fields of 0xffffffff (no VLAN) are not VLAN ids: we leave them out
    for k in ["vlan", "src_vlan", "dst_vlan"] {
        if m.get(k).and_then(|v| v.as_u64()).is_some_and(|v| v > 4095) {
            m.remove(k);
        }
    }
    // tshark 4.0 labels the extended-gateway communities `dstAS`, so the answer's dst_as_path
    // is the community list: check it against ours, and dst_as against the real AS path
    // (tests in codecs/src/sflow check the path against `tshark -V`)
    if line.get("proto").and_then(|v| v.as_str()) == Some("sflow5") {
        if let Some(path) = line.get("dst_as_path") {
            m.remove("dst_as");
            m.insert("_sflow_communities", path.clone());
        }
    }
    // tshark reports ICMP as a combined type*256+code for IPFIX IE 32; ours splits it
    if let Some(tc) = line.get("icmp_type_code").and_then(|v| v.as_u64()) {
        m.insert("icmp_type", Value::from(tc >> 8));
        m.insert("icmp_code", Value::from(tc & 0xff));
    }
    m
}

static QUIRKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static ADDR_QUIRKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `want` from the answer equals `got` from our document. One documented exception: a
/// template with both IPv4 and IPv6 address elements where the exporter zeroed the IPv4 one:
/// tshark reports 0.0.0.0, ours the (specified) IPv6 address.
fn equal_keyed(key: &str, want: &Value, got: &Value) -> bool {
    if equal(want, got) {
        return true;
    }
    if key == "_sflow_communities" {
        return want == got;
    }
    if key.ends_with("addr") || key.ends_with("next_hop") {
        let w = want
            .as_str()
            .and_then(|s| s.parse::<std::net::IpAddr>().ok());
        let g = got
            .as_str()
            .and_then(|s| s.parse::<std::net::IpAddr>().ok());
        if let (Some(w), Some(g)) = (w, g) {
            return w.is_unspecified() && w.is_ipv4() && g.is_ipv6() && !g.is_unspecified();
        }
    }
    false
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => {
            // addresses and MACs: compare parsed forms
            if let (Ok(x), Ok(y)) = (x.parse::<std::net::IpAddr>(), y.parse::<std::net::IpAddr>()) {
                return x == y;
            }
            x.eq_ignore_ascii_case(y)
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

struct FileResult {
    file: String,
    answers: usize,
    docs: usize,
    flow_docs: usize,
    matched: usize,
    mismatches: Vec<String>,
    summary: String,
}

fn run_file(path: &Path) -> FileResult {
    let out = Command::new(env!("CARGO_BIN_EXE_ferroflow"))
        .arg("decode")
        .arg(path)
        .output()
        .expect("run ferroflow decode");
    let summary = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "ferroflow decode {} failed: {summary}",
        path.display()
    );
    let docs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("invalid JSON from {}: {e}: {l}", path.display()))
        })
        .collect();
    let answer_path = path.with_extension("flows.jsonl");
    let answers: Vec<Value> = std::fs::read_to_string(&answer_path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let flow_docs: Vec<&Value> = docs
        .iter()
        .filter(|d| d.pointer("/event/kind").and_then(|v| v.as_str()) == Some("event"))
        .collect();
    let mut projected: Vec<Option<BTreeMap<&str, Value>>> =
        flow_docs.iter().map(|d| Some(project(d))).collect();
    let mut matched = 0;
    let mut mismatches = Vec::new();
    for a in &answers {
        let want = answer_projection(a);
        let hit = projected.iter().position(|p| {
            p.as_ref().is_some_and(|p| {
                want.iter()
                    .all(|(k, v)| p.get(k).is_some_and(|x| equal_keyed(k, v, x)))
            })
        });
        match hit {
            Some(i) => {
                let p = projected[i].take().expect("candidate");
                if want
                    .iter()
                    .any(|(k, v)| p.get(k).is_some_and(|x| !equal(v, x)))
                {
                    ADDR_QUIRKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                matched += 1;
            }
            None => {
                // nearest document: most equal keys
                let best = projected.iter().flatten().max_by_key(|p| {
                    want.iter()
                        .filter(|(k, v)| p.get(*k).is_some_and(|x| equal(v, x)))
                        .count()
                });
                let diff: Vec<String> = match best {
                    Some(p) => want
                        .iter()
                        .filter(|(k, v)| !p.get(*k).is_some_and(|x| equal(v, x)))
                        .map(|(k, v)| {
                            format!(
                                "{k}: want {v} got {}",
                                p.get(k).map_or("-".to_string(), |x| x.to_string())
                            )
                        })
                        .collect(),
                    None => vec!["no documents left".into()],
                };
                mismatches.push(format!(
                    "frame {}: {}",
                    a.get("frame").unwrap_or(&Value::Null),
                    diff.join(", ")
                ));
            }
        }
    }
    FileResult {
        file: path
            .strip_prefix(corpus_dir())
            .unwrap()
            .display()
            .to_string(),
        answers: answers.len(),
        docs: docs.len(),
        flow_docs: flow_docs.len(),
        matched,
        mismatches,
        summary,
    }
}

fn summary_value(summary: &str, key: &str) -> u64 {
    summary
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn corpus_matches_tshark() {
    let files = captures();
    assert!(
        files.len() >= 120,
        "corpus missing: {} captures",
        files.len()
    );
    let verbose = std::env::var_os("FERROFLOW_GOLDEN_VERBOSE").is_some();
    let (mut total_answers, mut total_matched, mut extra_total) = (0, 0, 0);
    let mut failures = Vec::new();
    for f in &files {
        let r = run_file(f);
        total_answers += r.answers;
        total_matched += r.matched;
        // Every document must be valid JSON with the fields every flow document has.
        let extra = r.flow_docs.saturating_sub(r.matched);
        let expected = EXTRA_EXPECTED.iter().find(|e| e.0 == r.file);
        if let Some((_, n, why)) = expected {
            println!("{}: {extra} documents beyond the answer: {why}", r.file);
            if extra != *n {
                failures.push(format!(
                    "{}: expected {n} extra documents, found {extra}",
                    r.file
                ));
            }
        } else if extra > 0 {
            // more than tshark: only allowed when held data was released by a later template
            let released = summary_value(&r.summary, "held_sets_released");
            println!(
                "{}: {extra} documents beyond the answer ({released} held data sets decoded once their template arrived)",
                r.file
            );
            if released == 0 {
                failures.push(format!("{}: {extra} unexplained extra documents", r.file));
            }
            extra_total += extra;
        }
        if !r.mismatches.is_empty() {
            failures.push(format!(
                "{}: {} of {} answer records unmatched (docs {}):\n    {}",
                r.file,
                r.answers - r.matched,
                r.answers,
                r.docs,
                r.mismatches
                    .iter()
                    .take(if verbose { 1000 } else { 3 })
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n    ")
            ));
        }
    }
    println!(
        "golden: {} captures, {} of {} answer records matched, {} extra documents from held data; \
         times not compared for {} records (tshark epoch quirk), {} records with 0.0.0.0 in the answer \
         and an IPv6 address in ours",
        files.len(),
        total_matched,
        total_answers,
        extra_total,
        QUIRKS.load(std::sync::atomic::Ordering::Relaxed),
        ADDR_QUIRKS.load(std::sync::atomic::Ordering::Relaxed),
    );
    assert!(
        failures.is_empty(),
        "{} captures differ from the answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
