//! `sflow.*`: the sample's own fields, re-read from the datagram when the document is written.
//!
//! Every key appears once: the first record of each decoded type is written under named keys;
//! records of unknown formats, and repeats of a decoded type, go to `other_records` as parallel
//! arrays `enterprise` / `format` / `length` / `data` (hex) — which is how Elasticsearch indexes
//! an array of objects anyway. Malformed records were counted by `decode` and are left out.

use super::JsonWriter;
use crate::sflow::records::{
    counter_format, flow_format, CounterData, FlowData, Record, ETHERNET_COUNTERS, IF_COUNTERS,
};
use crate::sflow::{CountersSample, FlowSample, RecordIter, SampleType, SflowRaw};

/// Record data longer than this is cut in `other_records.data` (`length` keeps the true size).
const MAX_HEX_BYTES: usize = 1024;

pub(crate) fn write_raw_json(raw: &SflowRaw<'_>, w: &mut JsonWriter<'_>) {
    let (Some(dg), Some(sample)) = (raw.datagram(), raw.sample()) else {
        return;
    };
    w.begin_object("sflow");
    if let Some(a) = dg.agent_address() {
        w.ip("agent", a);
    }
    w.u64("sub_agent_id", u64::from(dg.sub_agent_id()));
    w.u64("sequence_number", u64::from(dg.sequence_number()));
    w.u64("uptime_ms", u64::from(dg.uptime_ms()));
    let st = sample.sample_type();
    w.str_plain("sample_type", st.as_str());
    match st {
        SampleType::FlowSample | SampleType::ExpandedFlowSample => {
            if let Ok(fs) = FlowSample::parse(&sample) {
                write_flow_sample(&fs, w);
            }
        }
        SampleType::CountersSample | SampleType::ExpandedCountersSample => {
            if let Ok(cs) = CountersSample::parse(&sample) {
                write_counters_sample(&cs, w);
            }
        }
        SampleType::Unknown(_) => {}
    }
    w.end_object();
}

/// Bit of a decoded flow or counter record type, for "first of its type".
fn flow_bit(data_format: u32) -> u8 {
    match data_format {
        flow_format::SAMPLED_HEADER => 1,
        flow_format::SAMPLED_ETHERNET => 2,
        flow_format::SAMPLED_IPV4 => 4,
        flow_format::SAMPLED_IPV6 => 8,
        flow_format::EXTENDED_SWITCH => 16,
        flow_format::EXTENDED_ROUTER => 32,
        flow_format::EXTENDED_GATEWAY => 64,
        _ => 0,
    }
}

fn counter_bit(data_format: u32) -> u8 {
    match data_format {
        counter_format::GENERIC_INTERFACE => 1,
        counter_format::ETHERNET_INTERFACE => 2,
        _ => 0,
    }
}

/// Records that parse, each with `true` when it is the first well-formed record of a decoded
/// type (written under named keys) or `false` (an `other_records` entry).
fn classify<'a>(
    records: RecordIter<'a>,
    bit: fn(u32) -> u8,
    valid: fn(&Record<'a>) -> bool,
) -> impl Iterator<Item = (Record<'a>, bool)> + Clone {
    let mut seen = 0u8;
    records.map_while(Result::ok).filter_map(move |r| {
        let b = bit(r.data_format());
        if b == 0 {
            return Some((r, false));
        }
        if !valid(&r) {
            return None;
        }
        let first = seen & b == 0;
        seen |= b;
        Some((r, first))
    })
}

fn write_flow_sample(fs: &FlowSample<'_>, w: &mut JsonWriter<'_>) {
    w.u64("sample_sequence", u64::from(fs.sequence_number));
    w.u64("source_id_type", u64::from(fs.source_id_type));
    w.u64("source_id_index", u64::from(fs.source_id_index));
    w.u64("sampling_rate", u64::from(fs.sampling_rate));
    w.u64("sample_pool", u64::from(fs.sample_pool));
    w.u64("drops", u64::from(fs.drops));
    w.u64("input_interface_format", u64::from(fs.input.format));
    w.u64("input_interface_value", u64::from(fs.input.value));
    w.u64("output_interface_format", u64::from(fs.output.format));
    w.u64("output_interface_value", u64::from(fs.output.value));

    let valid = |r: &Record<'_>| r.flow_data().is_ok();
    let records = classify(fs.records(), flow_bit, valid);
    w.begin_array("flow_record_types");
    for (r, _) in records.clone() {
        let mut tmp = [0u8; 24];
        w.item_str_plain(record_name(flow_record_name(r.data_format()), &r, &mut tmp));
    }
    w.end_array();

    let mut others = false;
    for (r, first) in records.clone() {
        if !first {
            others = true;
            continue;
        }
        match r.flow_data() {
            Ok(FlowData::SampledHeader(h)) => {
                w.u64("header_protocol", u64::from(h.header_protocol));
                w.u64("frame_length", u64::from(h.frame_length));
                w.u64("stripped", u64::from(h.stripped));
                w.u64("header_length", h.header.len() as u64);
            }
            Ok(FlowData::ExtendedSwitch(s)) => {
                w.u64("src_vlan", u64::from(s.src_vlan));
                w.u64("src_priority", u64::from(s.src_priority));
                w.u64("dst_vlan", u64::from(s.dst_vlan));
                w.u64("dst_priority", u64::from(s.dst_priority));
            }
            Ok(FlowData::ExtendedRouter(x)) => {
                if let Some(n) = x.next_hop {
                    w.ip("next_hop", n);
                }
                w.u64("src_mask", u64::from(x.src_mask_len));
                w.u64("dst_mask", u64::from(x.dst_mask_len));
            }
            Ok(FlowData::ExtendedGateway(g)) => {
                if let Some(n) = g.next_hop {
                    w.ip("bgp_next_hop", n);
                }
                w.u64("router_as", u64::from(g.as_number));
                w.u64("src_as", u64::from(g.src_as));
                w.u64("src_peer_as", u64::from(g.src_peer_as));
                w.begin_array("dst_as_path");
                for a in g.dst_as_path() {
                    w.item_u64(u64::from(a));
                }
                w.end_array();
                if let Some(a) = g.dst_as() {
                    w.u64("dst_as", u64::from(a));
                }
                w.begin_array("communities");
                for c in g.communities() {
                    w.item_u64(u64::from(c));
                }
                w.end_array();
                if let Some(l) = g.local_pref {
                    w.u64("local_pref", u64::from(l));
                }
            }
            // Ethernet / IPv4 / IPv6 data are the ECS fields of the document.
            _ => {}
        }
    }
    if others {
        write_others(records.filter(|&(_, first)| !first).map(|(r, _)| r), w);
    }
}

fn write_counters_sample(cs: &CountersSample<'_>, w: &mut JsonWriter<'_>) {
    w.u64("sample_sequence", u64::from(cs.sequence_number));
    w.u64("source_id_type", u64::from(cs.source_id_type));
    w.u64("source_id_index", u64::from(cs.source_id_index));

    let valid = |r: &Record<'_>| r.counter_data().is_ok();
    let records = classify(cs.records(), counter_bit, valid);
    w.begin_array("counter_record_types");
    for (r, _) in records.clone() {
        let mut tmp = [0u8; 24];
        w.item_str_plain(record_name(
            counter_record_name(r.data_format()),
            &r,
            &mut tmp,
        ));
    }
    w.end_array();

    let mut others = false;
    for (r, first) in records.clone() {
        if !first {
            others = true;
            continue;
        }
        match r.counter_data() {
            Ok(CounterData::Generic(c)) => {
                for (name, v) in c.iter(&IF_COUNTERS) {
                    w.u64(name, v);
                }
            }
            Ok(CounterData::Ethernet(c)) => {
                for (name, v) in c.iter(&ETHERNET_COUNTERS) {
                    w.u64(name, v);
                }
            }
            _ => {}
        }
    }
    if others {
        write_others(records.filter(|&(_, first)| !first).map(|(r, _)| r), w);
    }
}

/// `"other_records":{"enterprise":[..],"format":[..],"length":[..],"data":["hex",..]}`
fn write_others<'a>(records: impl Iterator<Item = Record<'a>> + Clone, w: &mut JsonWriter<'_>) {
    w.begin_object("other_records");
    w.begin_array("enterprise");
    for r in records.clone() {
        w.item_u64(u64::from(r.enterprise()));
    }
    w.end_array();
    w.begin_array("format");
    for r in records.clone() {
        w.item_u64(u64::from(r.format()));
    }
    w.end_array();
    w.begin_array("length");
    for r in records.clone() {
        w.item_u64(r.data().len() as u64);
    }
    w.end_array();
    w.begin_array("data");
    let mut hex = [0u8; 2 * MAX_HEX_BYTES];
    for r in records {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let data = &r.data()[..r.data().len().min(MAX_HEX_BYTES)];
        for (i, &b) in data.iter().enumerate() {
            hex[2 * i] = HEX[usize::from(b >> 4)];
            hex[2 * i + 1] = HEX[usize::from(b & 15)];
        }
        w.item_str_plain(std::str::from_utf8(&hex[..2 * data.len()]).unwrap_or_default());
    }
    w.end_array();
    w.end_object();
}

/// The name of a record type, or `"<enterprise>:<format>"` written into `tmp`.
fn record_name<'t>(name: Option<&'static str>, r: &Record<'_>, tmp: &'t mut [u8; 24]) -> &'t str {
    if let Some(n) = name {
        return n;
    }
    let mut a = itoa::Buffer::new();
    let e = a.format(r.enterprise()).as_bytes();
    let mut b = itoa::Buffer::new();
    let f = b.format(r.format()).as_bytes();
    let n = e.len() + 1 + f.len();
    tmp[..e.len()].copy_from_slice(e);
    tmp[e.len()] = b':';
    tmp[e.len() + 1..n].copy_from_slice(f);
    std::str::from_utf8(&tmp[..n]).unwrap_or_default()
}

/// Standard flow record names (sflow.org structure registry, enterprise 0).
fn flow_record_name(data_format: u32) -> Option<&'static str> {
    Some(match data_format {
        1 => "raw_packet_header",
        2 => "ethernet_frame_data",
        3 => "ipv4_data",
        4 => "ipv6_data",
        1001 => "extended_switch",
        1002 => "extended_router",
        1003 => "extended_gateway",
        1004 => "extended_user",
        1005 => "extended_url",
        1006 => "extended_mpls",
        1007 => "extended_nat",
        1008 => "extended_mpls_tunnel",
        1009 => "extended_mpls_vc",
        1010 => "extended_mpls_fec",
        1011 => "extended_mpls_lvp_fec",
        1012 => "extended_vlan_tunnel",
        1013 => "extended_80211_payload",
        1014 => "extended_80211_rx",
        1015 => "extended_80211_tx",
        1016 => "extended_80211_aggregation",
        _ => return None,
    })
}

/// Standard counter record names (enterprise 0).
fn counter_record_name(data_format: u32) -> Option<&'static str> {
    Some(match data_format {
        1 => "generic_interface",
        2 => "ethernet_interface",
        3 => "token_ring",
        4 => "vg_100",
        5 => "vlan",
        6 => "ieee80211",
        7 => "lag",
        1001 => "processor",
        1002 => "radio_utilization",
        2000 => "host_descr",
        2001 => "host_adapters",
        2002 => "host_parent",
        2003 => "host_cpu",
        2004 => "host_memory",
        2005 => "host_disk_io",
        2006 => "host_net_io",
        2007 => "mib2_ip",
        2008 => "mib2_icmp",
        2009 => "mib2_tcp",
        2010 => "mib2_udp",
        2100 => "virt_node",
        2101 => "virt_cpu",
        2102 => "virt_memory",
        2103 => "virt_disk_io",
        2104 => "virt_net_io",
        _ => return None,
    })
}
