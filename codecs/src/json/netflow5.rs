//! `netflow.*` of a NetFlow v5 record: its own fields, read through the record view.

use std::net::IpAddr;

use super::{key, JsonWriter};
use crate::netflow5::{Record, RECORD_LEN};

/// The v5 record's own fields under `netflow.*`, with the names Elastic's integration uses,
/// and `netflow.original_timestamp` when the record's own time was replaced by the receive
/// time (`original_ns`).
pub(crate) fn write_raw_json(
    rec: &[u8; RECORD_LEN],
    original_ns: Option<u64>,
    w: &mut JsonWriter<'_>,
) {
    let r = Record::new(rec);
    w.begin_object(key!("netflow"));
    w.u64(key!("packet_delta_count"), u64::from(r.packets()));
    w.u64(key!("octet_delta_count"), u64::from(r.octets()));
    w.u64(key!("flow_start_sys_up_time"), u64::from(r.first_ms()));
    w.u64(key!("flow_end_sys_up_time"), u64::from(r.last_ms()));
    w.ip(key!("ip_next_hop_ipv4_address"), IpAddr::V4(r.next_hop()));
    w.u64(key!("ingress_interface"), u64::from(r.input()));
    w.u64(key!("egress_interface"), u64::from(r.output()));
    w.u64(key!("tcp_control_bits"), u64::from(r.tcp_flags()));
    w.u64(key!("ip_class_of_service"), u64::from(r.tos()));
    w.u64(key!("bgp_source_as_number"), u64::from(r.src_as()));
    w.u64(key!("bgp_destination_as_number"), u64::from(r.dst_as()));
    w.u64(key!("source_ipv4_prefix_length"), u64::from(r.src_mask()));
    w.u64(
        key!("destination_ipv4_prefix_length"),
        u64::from(r.dst_mask()),
    );
    if let Some(t) = original_ns {
        w.time_ns(key!("original_timestamp"), t);
    }
    w.end_object();
}
