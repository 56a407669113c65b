//! IANA IPFIX information elements (bootstrap subset; regenerated from the registry).

use super::{IeInfo, IeType};

pub(super) static TABLE: &[IeInfo] = &[
    IeInfo {
        id: 1,
        name: "octet_delta_count",
        ty: IeType::Unsigned64,
    },
    IeInfo {
        id: 2,
        name: "packet_delta_count",
        ty: IeType::Unsigned64,
    },
    IeInfo {
        id: 4,
        name: "protocol_identifier",
        ty: IeType::Unsigned8,
    },
    IeInfo {
        id: 5,
        name: "ip_class_of_service",
        ty: IeType::Unsigned8,
    },
    IeInfo {
        id: 6,
        name: "tcp_control_bits",
        ty: IeType::Unsigned16,
    },
    IeInfo {
        id: 7,
        name: "source_transport_port",
        ty: IeType::Unsigned16,
    },
    IeInfo {
        id: 8,
        name: "source_ipv4_address",
        ty: IeType::Ipv4Address,
    },
    IeInfo {
        id: 9,
        name: "source_ipv4_prefix_length",
        ty: IeType::Unsigned8,
    },
    IeInfo {
        id: 10,
        name: "ingress_interface",
        ty: IeType::Unsigned32,
    },
    IeInfo {
        id: 11,
        name: "destination_transport_port",
        ty: IeType::Unsigned16,
    },
    IeInfo {
        id: 12,
        name: "destination_ipv4_address",
        ty: IeType::Ipv4Address,
    },
    IeInfo {
        id: 13,
        name: "destination_ipv4_prefix_length",
        ty: IeType::Unsigned8,
    },
    IeInfo {
        id: 14,
        name: "egress_interface",
        ty: IeType::Unsigned32,
    },
    IeInfo {
        id: 15,
        name: "ip_next_hop_ipv4_address",
        ty: IeType::Ipv4Address,
    },
    IeInfo {
        id: 16,
        name: "bgp_source_as_number",
        ty: IeType::Unsigned32,
    },
    IeInfo {
        id: 17,
        name: "bgp_destination_as_number",
        ty: IeType::Unsigned32,
    },
    IeInfo {
        id: 18,
        name: "bgp_next_hop_ipv4_address",
        ty: IeType::Ipv4Address,
    },
    IeInfo {
        id: 21,
        name: "flow_end_sys_up_time",
        ty: IeType::Unsigned32,
    },
    IeInfo {
        id: 22,
        name: "flow_start_sys_up_time",
        ty: IeType::Unsigned32,
    },
    IeInfo {
        id: 27,
        name: "source_ipv6_address",
        ty: IeType::Ipv6Address,
    },
    IeInfo {
        id: 28,
        name: "destination_ipv6_address",
        ty: IeType::Ipv6Address,
    },
    IeInfo {
        id: 29,
        name: "source_ipv6_prefix_length",
        ty: IeType::Unsigned8,
    },
    IeInfo {
        id: 30,
        name: "destination_ipv6_prefix_length",
        ty: IeType::Unsigned8,
    },
    IeInfo {
        id: 34,
        name: "sampling_interval",
        ty: IeType::Unsigned32,
    },
    IeInfo {
        id: 35,
        name: "sampling_algorithm",
        ty: IeType::Unsigned8,
    },
    IeInfo {
        id: 48,
        name: "sampler_id",
        ty: IeType::Unsigned8,
    },
    IeInfo {
        id: 49,
        name: "sampler_mode",
        ty: IeType::Unsigned8,
    },
    IeInfo {
        id: 50,
        name: "sampler_random_interval",
        ty: IeType::Unsigned32,
    },
    IeInfo {
        id: 56,
        name: "source_mac_address",
        ty: IeType::MacAddress,
    },
    IeInfo {
        id: 58,
        name: "vlan_id",
        ty: IeType::Unsigned16,
    },
    IeInfo {
        id: 60,
        name: "ip_version",
        ty: IeType::Unsigned8,
    },
    IeInfo {
        id: 61,
        name: "flow_direction",
        ty: IeType::Unsigned8,
    },
    IeInfo {
        id: 62,
        name: "ip_next_hop_ipv6_address",
        ty: IeType::Ipv6Address,
    },
    IeInfo {
        id: 63,
        name: "bgp_next_hop_ipv6_address",
        ty: IeType::Ipv6Address,
    },
    IeInfo {
        id: 80,
        name: "destination_mac_address",
        ty: IeType::MacAddress,
    },
    IeInfo {
        id: 82,
        name: "interface_name",
        ty: IeType::String,
    },
    IeInfo {
        id: 85,
        name: "octet_total_count",
        ty: IeType::Unsigned64,
    },
    IeInfo {
        id: 86,
        name: "packet_total_count",
        ty: IeType::Unsigned64,
    },
    IeInfo {
        id: 136,
        name: "flow_end_reason",
        ty: IeType::Unsigned8,
    },
    IeInfo {
        id: 150,
        name: "flow_start_seconds",
        ty: IeType::DateTimeSeconds,
    },
    IeInfo {
        id: 151,
        name: "flow_end_seconds",
        ty: IeType::DateTimeSeconds,
    },
    IeInfo {
        id: 152,
        name: "flow_start_milliseconds",
        ty: IeType::DateTimeMilliseconds,
    },
    IeInfo {
        id: 153,
        name: "flow_end_milliseconds",
        ty: IeType::DateTimeMilliseconds,
    },
    IeInfo {
        id: 154,
        name: "flow_start_microseconds",
        ty: IeType::DateTimeMicroseconds,
    },
    IeInfo {
        id: 155,
        name: "flow_end_microseconds",
        ty: IeType::DateTimeMicroseconds,
    },
    IeInfo {
        id: 156,
        name: "flow_start_nanoseconds",
        ty: IeType::DateTimeNanoseconds,
    },
    IeInfo {
        id: 157,
        name: "flow_end_nanoseconds",
        ty: IeType::DateTimeNanoseconds,
    },
    IeInfo {
        id: 158,
        name: "flow_start_delta_microseconds",
        ty: IeType::Unsigned32,
    },
    IeInfo {
        id: 159,
        name: "flow_end_delta_microseconds",
        ty: IeType::Unsigned32,
    },
    IeInfo {
        id: 160,
        name: "system_init_time_milliseconds",
        ty: IeType::DateTimeMilliseconds,
    },
    IeInfo {
        id: 210,
        name: "padding_octets",
        ty: IeType::OctetArray,
    },
    IeInfo {
        id: 302,
        name: "selector_id",
        ty: IeType::Unsigned64,
    },
    IeInfo {
        id: 304,
        name: "selector_algorithm",
        ty: IeType::Unsigned16,
    },
    IeInfo {
        id: 305,
        name: "sampling_packet_interval",
        ty: IeType::Unsigned32,
    },
    IeInfo {
        id: 306,
        name: "sampling_packet_space",
        ty: IeType::Unsigned32,
    },
    IeInfo {
        id: 309,
        name: "sampling_size",
        ty: IeType::Unsigned32,
    },
    IeInfo {
        id: 310,
        name: "sampling_population",
        ty: IeType::Unsigned32,
    },
];
