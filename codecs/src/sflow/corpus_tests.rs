//! The sFlow captures of the shared corpus against tshark's answers (`X.flows.jsonl`, written by
//! the corpus' `oracle.py`). Every answer line must be matched by a distinct decoded record.
//!
//! The corpus is looked for in `$FERROFLOW_CORPUS`, else in `shared/corpus` of the nearest
//! ancestor of this crate that has one (`/work/shared/corpus` for `/work/<checkout>/codecs`).
//! Without it the test says so and passes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;
use crate::json::{encode, EncodeOptions};

/// The sFlow captures and their answers.
const CAPTURES: &[&str] = &[
    "akvorado/sflow_data-1140",
    "akvorado/sflow_data-discard-interface",
    "akvorado/sflow_data-encap-vxlan",
    "akvorado/sflow_data-icmpv4",
    "akvorado/sflow_data-icmpv6",
    "akvorado/sflow_data-local-interface",
    "akvorado/sflow_data-multiple-interfaces",
    "akvorado/sflow_data-qinq",
    "akvorado/sflow_data-sflow-expanded-sample",
    "akvorado/sflow_data-sflow-ipv4-data",
    "akvorado/sflow_data-sflow-raw-ipv4",
    "nDPI/sflow",
    "tcpdump/sflow-print-v6",
    "tcpdump/sflow_expanded",
    "tcpdump/sflow_multiple_counter_30_pdus",
    "tcpdump/sflow_print-segv",
];

fn corpus_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("FERROFLOW_CORPUS") {
        return Some(PathBuf::from(d));
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("shared/corpus"))
        .find(|d| d.join("MANIFEST.json").is_file())
}

// ---------------------------------------------------------------- a tiny classic-pcap reader

/// (UDP source, UDP payload) of every unfragmented UDP packet of a classic pcap file.
fn udp_payloads(file: &[u8]) -> Vec<(SocketAddr, &[u8])> {
    let mut out = Vec::new();
    let Some(magic) = file.get(0..4) else {
        return out;
    };
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("not a classic pcap file"),
    };
    let u32_at = |b: &[u8], o: usize| {
        let w = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    let linktype = u32_at(file, 20);
    let mut off = 24;
    while off + 16 <= file.len() {
        let incl = u32_at(file, off + 8) as usize;
        let Some(frame) = file.get(off + 16..off + 16 + incl) else {
            break;
        };
        off += 16 + incl;
        let l3 = match linktype {
            1 => ethernet_payload(frame),
            113 => frame.get(14..16).and_then(|t| {
                let t = u16::from_be_bytes([t[0], t[1]]);
                Some((t, frame.get(16..)?))
            }),
            101 | 12 | 14 => frame
                .first()
                .map(|b| (if b >> 4 == 6 { 0x86dd } else { 0x0800 }, frame)),
            _ => None,
        };
        if let Some(p) = l3.and_then(|(t, ip)| ip_udp(t, ip)) {
            out.push(p);
        }
    }
    out
}

fn ethernet_payload(f: &[u8]) -> Option<(u16, &[u8])> {
    let mut off = 12;
    loop {
        let t = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
        if t == 0x8100 || t == 0x88a8 {
            off += 4;
        } else {
            return Some((t, f.get(off + 2..)?));
        }
    }
}

fn ip_udp(ethertype: u16, ip: &[u8]) -> Option<(SocketAddr, &[u8])> {
    let (src, udp) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
            if *ip.get(9)? != 17 || frag & 0x3fff != 0 {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let a: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            (
                IpAddr::V4(Ipv4Addr::from(a)),
                ip.get(ihl..total.min(ip.len()))?,
            )
        }
        0x86dd => {
            if *ip.get(6)? != 17 {
                return None;
            }
            let a: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(a)), ip.get(40..)?)
        }
        _ => return None,
    };
    let port = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    let len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    Some((SocketAddr::new(src, port), udp.get(8..len.min(udp.len()))?))
}

// ---------------------------------------------------------------- comparison

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// tshark's record names -> ours.
fn tshark_record_name(n: &str) -> String {
    match n {
        "Raw packet header" => "raw_packet_header".into(),
        "Ethernet frame data" => "ethernet_frame_data".into(),
        "IPv4 data" => "ipv4_data".into(),
        "IPv6 data" => "ipv6_data".into(),
        "Extended switch data" => "extended_switch".into(),
        "Extended router data" => "extended_router".into(),
        "Extended gateway data" => "extended_gateway".into(),
        other => other.to_lowercase().replace(' ', "_"),
    }
}

/// The keys compared, in the oracle's names.
const KEYS: &[&str] = &[
    "exporter",
    "exporter_port",
    "agent",
    "sub_agent_id",
    "sequence",
    "sysuptime_ms",
    "sample_sequence",
    "source_id_type",
    "source_id_index",
    "sampling_rate",
    "sample_pool",
    "drops",
    "in_if",
    "out_if",
    "out_if_format",
    "out_if_value",
    "src_addr",
    "dst_addr",
    "ip_version",
    "protocol",
    "src_port",
    "dst_port",
    "tcp_flags",
    "tos",
    "icmp_type",
    "icmp_code",
    "bytes",
    "packets",
    "src_mac",
    "dst_mac",
    "vlan",
    "src_vlan",
    "dst_vlan",
    "next_hop",
    "src_mask",
    "dst_mask",
    "src_as",
    "dst_as",
    "src_peer_as",
    "as",
    "dst_as_path",
    "communities",
    "header_protocol",
    "stripped",
    "header_length",
    "flow_record_types",
];

/// Our record in the oracle's terms: the FlowRecord fields and, through the JSON document,
/// the `sflow.*` fields.
fn ours(r: &FlowRecord<'_>) -> BTreeMap<&'static str, Value> {
    let mut m = BTreeMap::new();
    let mut put = |k: &'static str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k, v);
        }
    };
    put("exporter", Some(json!(r.exporter.ip().to_string())));
    put("exporter_port", Some(json!(r.exporter.port())));
    put("agent", r.agent.map(|a| json!(a.to_string())));
    put("sub_agent_id", r.domain.map(|v| json!(v)));
    put("sequence", r.sequence.map(|v| json!(v)));
    put("sampling_rate", r.sampling_rate.map(|v| json!(v)));
    put("in_if", r.in_if.map(|v| json!(v)));
    put("out_if", r.out_if.map(|v| json!(v)));
    put("src_addr", r.src_addr.map(|a| json!(a.to_string())));
    put("dst_addr", r.dst_addr.map(|a| json!(a.to_string())));
    put("ip_version", r.ip_version.map(|v| json!(v)));
    put("protocol", r.ip_protocol.map(|v| json!(v)));
    put("src_port", r.src_port.map(|v| json!(v)));
    put("dst_port", r.dst_port.map(|v| json!(v)));
    put("tcp_flags", r.tcp_flags.map(|v| json!(v)));
    put("tos", r.tos.map(|v| json!(v)));
    put("icmp_type", r.icmp_type.map(|v| json!(v)));
    put("icmp_code", r.icmp_code.map(|v| json!(v)));
    put("bytes", r.bytes.map(|v| json!(v)));
    put("packets", r.packets.map(|v| json!(v)));
    put("src_mac", r.src_mac.map(|v| json!(mac_str(v))));
    put("dst_mac", r.dst_mac.map(|v| json!(mac_str(v))));
    put("vlan", r.vlan.map(|v| json!(v)));
    put("src_vlan", r.src_vlan.map(|v| json!(v)));
    put("dst_vlan", r.dst_vlan.map(|v| json!(v)));
    put("next_hop", r.next_hop.map(|a| json!(a.to_string())));
    put("src_mask", r.src_mask.map(|v| json!(v)));
    put("dst_mask", r.dst_mask.map(|v| json!(v)));
    put("src_as", r.src_as.map(|v| json!(v)));
    put("dst_as", r.dst_as.map(|v| json!(v)));

    let mut buf = Vec::new();
    encode(r, &EncodeOptions::default(), &mut buf);
    let doc: Value = serde_json::from_slice(&buf).expect("valid JSON document");
    let s = &doc["sflow"];
    let mut from = |k: &'static str, name: &str| {
        if let Some(v) = s.get(name) {
            m.insert(k, v.clone());
        }
    };
    from("sysuptime_ms", "uptime_ms");
    from("sample_sequence", "sample_sequence");
    from("source_id_type", "source_id_type");
    from("source_id_index", "source_id_index");
    from("sample_pool", "sample_pool");
    from("drops", "drops");
    from("out_if_format", "output_interface_format");
    from("out_if_value", "output_interface_value");
    from("src_peer_as", "src_peer_as");
    from("as", "router_as");
    from("dst_as_path", "dst_as_path");
    from("communities", "communities");
    from("header_protocol", "header_protocol");
    from("stripped", "stripped");
    from("header_length", "header_length");
    from("flow_record_types", "flow_record_types");
    m
}

/// An answer line in our terms, with the documented differences applied:
/// - `out_if` only for output format 0 (a discard reason or an interface count is not an
///   ifIndex); the wire value is compared as `out_if_value`;
/// - `src_vlan` / `dst_vlan` only when they are VLAN ids (<= 4095);
/// - `packets`: we say 1 for every flow sample, the oracle only when it found a length;
/// - an empty `dst_as_path` is `[]` for us, absent for the oracle;
/// - tshark 4.0 names the gateway's community entries `sflow_245.dstAS` too, and `oracle.py`
///   takes the last `dstAS` list it finds: its `dst_as_path` / `dst_as` are then the
///   communities. They are compared with our `communities`; the real AS path of those samples
///   is checked against tshark's text output in `corpus_gateway_as_path`.
fn expected(line: &Value, ours: &BTreeMap<&'static str, Value>) -> BTreeMap<&'static str, Value> {
    let mut e = BTreeMap::new();
    for &k in KEYS {
        if let Some(v) = line.get(k) {
            e.insert(k, v.clone());
        }
    }
    if let Some(out) = line.get("out_if") {
        e.insert("out_if_value", out.clone());
        if line
            .get("out_if_format")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            != 0
        {
            e.remove("out_if");
        }
    }
    for k in ["src_vlan", "dst_vlan"] {
        if e.get(k).and_then(Value::as_u64).is_some_and(|v| v > 4095) {
            e.remove(k);
        }
    }
    if let Some(Value::Array(types)) = line.get("flow_record_types") {
        let names: Vec<Value> = types
            .iter()
            .map(|t| json!(tshark_record_name(t.as_str().unwrap_or(""))))
            .collect();
        e.insert("flow_record_types", Value::Array(names));
    }
    if let (Some(path), Some(comm)) = (line.get("dst_as_path"), ours.get("communities")) {
        if comm.as_array().is_some_and(|c| !c.is_empty()) && path == comm {
            e.insert("communities", path.clone());
            e.remove("dst_as_path");
            e.remove("dst_as");
            for k in ["dst_as_path", "dst_as"] {
                if let Some(v) = ours.get(k) {
                    e.insert(k, v.clone());
                }
            }
        }
    }
    if !e.contains_key("communities") {
        if let Some(v) = ours.get("communities") {
            e.insert("communities", v.clone());
        }
    }
    if !e.contains_key("packets") {
        if let Some(p) = ours.get("packets") {
            e.insert("packets", p.clone());
        }
    }
    if !e.contains_key("dst_as_path") && ours.get("dst_as_path") == Some(&json!([])) {
        e.insert("dst_as_path", json!([]));
    }
    e
}

fn diff(e: &BTreeMap<&'static str, Value>, o: &BTreeMap<&'static str, Value>) -> Vec<String> {
    KEYS.iter()
        .filter(|k| e.get(*k) != o.get(*k))
        .map(|k| format!("{k}: expected {:?}, decoded {:?}", e.get(k), o.get(k)))
        .collect()
}

#[test]
fn corpus_sflow_captures_match_tshark() {
    let Some(dir) = corpus_dir() else {
        eprintln!(
            "corpus_sflow_captures_match_tshark: no corpus found (set FERROFLOW_CORPUS); skipped"
        );
        return;
    };
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("MANIFEST.json")).unwrap()).unwrap();
    let mut failures = Vec::new();
    let mut matched = 0;
    for name in CAPTURES {
        let pcap = std::fs::read(dir.join(format!("{name}.pcap"))).unwrap();
        let answer = std::fs::read_to_string(dir.join(format!("{name}.flows.jsonl"))).unwrap();
        let lines: Vec<Value> = answer
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();

        let mut stats = DecodeStats::default();
        let mut flows = Vec::new();
        let mut counters = 0u64;
        let mut bad_datagrams = 0;
        let packets = udp_payloads(&pcap);
        for (src, payload) in &packets {
            let r = decode(*src, payload, &mut stats, &mut |r| match r.kind {
                RecordKind::Flow => flows.push(ours(r)),
                RecordKind::Counters => counters += 1,
            });
            if r.is_err() {
                bad_datagrams += 1;
            }
        }

        let mut used = vec![false; flows.len()];
        for (i, line) in lines.iter().enumerate() {
            let hit = (0..flows.len())
                .find(|&j| !used[j] && diff(&expected(line, &flows[j]), &flows[j]).is_empty());
            match hit {
                Some(j) => {
                    used[j] = true;
                    matched += 1;
                }
                None => {
                    let closest = (0..flows.len())
                        .map(|j| diff(&expected(line, &flows[j]), &flows[j]))
                        .min_by_key(Vec::len)
                        .unwrap_or_else(|| vec!["no flow record decoded".into()]);
                    failures.push(format!("{name} line {}: {}", i + 1, closest.join("; ")));
                }
            }
        }
        let entry = manifest
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["file"] == format!("{name}.pcap"))
            .unwrap();
        let want_counters = entry["counter_samples"].as_u64().unwrap();
        eprintln!(
            "{name}: {} udp datagrams ({bad_datagrams} not sFlow v5 / bad header), {} flow records \
             ({} in the answer), {counters} counter samples ({want_counters} in the manifest), \
             {} sample/record errors",
            packets.len(),
            flows.len(),
            lines.len(),
            stats.errors_total()
        );
        if flows.len() != lines.len() {
            failures.push(format!(
                "{name}: {} flow records, the answer has {}",
                flows.len(),
                lines.len()
            ));
        }
        if counters != want_counters {
            failures.push(format!(
                "{name}: {counters} counter samples, the manifest says {want_counters}"
            ));
        }
    }
    eprintln!("corpus: {matched} answer lines matched");
    assert!(
        failures.is_empty(),
        "corpus mismatches:\n{}",
        failures.join("\n")
    );
}

/// The extended gateway of `tcpdump/sflow_expanded` as `tshark -V` prints it: "AS Sequence, (3
/// entries) 8218, 29605, 203361; Gateway Communities: 4 ... 538574949, 1911619684, 1911669584,
/// 1911671290; localpref 100".
#[test]
fn corpus_gateway_as_path() {
    let Some(dir) = corpus_dir() else {
        eprintln!("corpus_gateway_as_path: no corpus found; skipped");
        return;
    };
    let pcap = std::fs::read(dir.join("tcpdump/sflow_expanded.pcap")).unwrap();
    let packets = udp_payloads(&pcap);
    let mut docs = Vec::new();
    let mut stats = DecodeStats::default();
    for (src, payload) in &packets {
        decode(*src, payload, &mut stats, &mut |r| {
            assert_eq!(r.src_as, Some(203_476));
            assert_eq!(r.dst_as, Some(203_361));
            docs.push(ours(r));
        })
        .unwrap();
    }
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["dst_as_path"], json!([8218, 29605, 203_361]));
    assert_eq!(
        docs[0]["communities"],
        json!([
            538_574_949u32,
            1_911_619_684u32,
            1_911_669_584u32,
            1_911_671_290u32
        ])
    );
    assert_eq!(docs[0]["as"], json!(28976));
    assert_eq!(docs[0]["src_peer_as"], json!(203_476));
}
