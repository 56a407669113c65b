//! The index template installed at start: settings (shards, replicas, refresh interval,
//! codec) and mappings. The ECS, `flow.*` and `sflow.*` fields of docs/schema.md are mapped
//! statically (a unit test keeps [`SCHEMA_FIELDS`] equal to the document); the `netflow.*`
//! information elements, whose names depend on the exporter's templates, by dynamic templates:
//! `*_ipv4_address` / `*_ipv6_address` / `*_prefix` -> `ip`, dateTime elements (`*_seconds`,
//! `*_milliseconds`, ... sent as RFC 3339 strings) -> `date`, other strings -> `keyword`,
//! integers -> `long`. Date detection is off (a hex string such as `"2024"` must not turn a
//! field into a date), and dynamic `ip` / `long` fields ignore malformed values, so one odd
//! exporter cannot make documents bounce. The same template serves `ferroflow index` and the
//! collector's direct sink (`--output elasticsearch`).

use std::sync::atomic::AtomicBool;

use serde_json::{json, Map, Value};

use super::client::{BulkError, EsClient};
use super::retry::start_request;

/// The index template installed at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateSettings {
    /// Install (or overwrite) `_index_template/<prefix>` at start.
    pub install: bool,
    pub shards: u32,
    pub replicas: u32,
    /// `index.refresh_interval`, e.g. `10s`.
    pub refresh_interval: String,
    /// `index.codec`: `default` or `best_compression`.
    pub codec: String,
}

impl Default for TemplateSettings {
    fn default() -> Self {
        TemplateSettings {
            install: true,
            shards: 1,
            replicas: 1,
            refresh_interval: "10s".to_string(),
            codec: "best_compression".to_string(),
        }
    }
}

/// Mapping types used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Date,
    Ip,
    Keyword,
    Long,
    Boolean,
    Double,
    GeoPoint,
}

impl FieldType {
    pub fn mapping(self) -> Value {
        match self {
            FieldType::Date => json!({"type": "date"}),
            FieldType::Ip => json!({"type": "ip"}),
            FieldType::Keyword => json!({"type": "keyword", "ignore_above": 1024}),
            FieldType::Long => json!({"type": "long"}),
            FieldType::Boolean => json!({"type": "boolean"}),
            FieldType::Double => json!({"type": "double"}),
            FieldType::GeoPoint => json!({"type": "geo_point"}),
        }
    }
}

use FieldType::*;

/// Every field of docs/schema.md outside `netflow.*`, with its type.
pub const SCHEMA_FIELDS: &[(&str, FieldType)] = &[
    ("@timestamp", Date),
    ("event.kind", Keyword),
    ("event.category", Keyword),
    ("event.type", Keyword),
    ("event.action", Keyword),
    ("event.start", Date),
    ("event.end", Date),
    ("event.duration", Long),
    ("observer.ip", Ip),
    ("observer.ingress.interface.id", Long),
    ("observer.egress.interface.id", Long),
    ("source.ip", Ip),
    ("source.port", Long),
    ("source.mac", Keyword),
    ("source.as.number", Long),
    ("destination.ip", Ip),
    ("destination.port", Long),
    ("destination.mac", Keyword),
    ("destination.as.number", Long),
    ("network.transport", Keyword),
    ("network.iana_number", Keyword),
    ("network.type", Keyword),
    ("network.bytes", Long),
    ("network.packets", Long),
    ("network.direction", Keyword),
    ("network.vlan.id", Long),
    ("network.community_id", Keyword),
    ("flow.protocol", Keyword),
    ("flow.exporter_port", Long),
    ("flow.export_time", Date),
    ("flow.sequence", Long),
    ("flow.domain", Long),
    ("flow.template_id", Long),
    ("flow.ip_version", Long),
    ("flow.tcp_flags", Long),
    ("flow.tos", Long),
    ("flow.src_mask", Long),
    ("flow.dst_mask", Long),
    ("flow.next_hop", Ip),
    ("flow.bgp_next_hop", Ip),
    ("flow.src_vlan", Long),
    ("flow.dst_vlan", Long),
    ("flow.direction", Long),
    ("flow.end_reason", Long),
    ("flow.icmp_type", Long),
    ("flow.icmp_code", Long),
    ("flow.mpls_labels", Long),
    ("flow.reverse.bytes", Long),
    ("flow.reverse.packets", Long),
    ("flow.reverse.tcp_flags", Long),
    ("flow.time_basis", Keyword),
    ("flow.start_uptime_ms", Long),
    ("flow.end_uptime_ms", Long),
    ("flow.sampling_rate", Long),
    ("flow.sampling_source", Keyword),
    ("flow.sampler_id", Long),
    ("flow.scaled", Boolean),
    ("sflow.agent", Ip),
    ("sflow.sub_agent_id", Long),
    ("sflow.sequence_number", Long),
    ("sflow.uptime_ms", Long),
    ("sflow.sample_type", Keyword),
    ("sflow.sample_sequence", Long),
    ("sflow.source_id_type", Long),
    ("sflow.source_id_index", Long),
    ("sflow.sampling_rate", Long),
    ("sflow.sample_pool", Long),
    ("sflow.drops", Long),
    ("sflow.input_interface_format", Long),
    ("sflow.input_interface_value", Long),
    ("sflow.output_interface_format", Long),
    ("sflow.output_interface_value", Long),
    ("sflow.flow_record_types", Keyword),
    ("sflow.header_protocol", Long),
    ("sflow.frame_length", Long),
    ("sflow.stripped", Long),
    ("sflow.header_length", Long),
    ("sflow.src_vlan", Long),
    ("sflow.dst_vlan", Long),
    ("sflow.src_priority", Long),
    ("sflow.dst_priority", Long),
    ("sflow.next_hop", Ip),
    ("sflow.src_mask", Long),
    ("sflow.dst_mask", Long),
    ("sflow.bgp_next_hop", Ip),
    ("sflow.router_as", Long),
    ("sflow.src_as", Long),
    ("sflow.src_peer_as", Long),
    ("sflow.dst_as_path", Long),
    ("sflow.dst_as", Long),
    ("sflow.communities", Long),
    ("sflow.local_pref", Long),
    ("sflow.counter_record_types", Keyword),
    ("sflow.if_index", Long),
    ("sflow.if_type", Long),
    ("sflow.if_speed", Long),
    ("sflow.if_direction", Long),
    ("sflow.if_status", Long),
    ("sflow.if_promiscuous_mode", Long),
    ("sflow.if_in_octets", Long),
    ("sflow.if_in_ucast_pkts", Long),
    ("sflow.if_in_multicast_pkts", Long),
    ("sflow.if_in_broadcast_pkts", Long),
    ("sflow.if_in_discards", Long),
    ("sflow.if_in_errors", Long),
    ("sflow.if_in_unknown_protos", Long),
    ("sflow.if_out_octets", Long),
    ("sflow.if_out_ucast_pkts", Long),
    ("sflow.if_out_multicast_pkts", Long),
    ("sflow.if_out_broadcast_pkts", Long),
    ("sflow.if_out_discards", Long),
    ("sflow.if_out_errors", Long),
    ("sflow.dot3_stats_alignment_errors", Long),
    ("sflow.dot3_stats_fcs_errors", Long),
    ("sflow.dot3_stats_single_collision_frames", Long),
    ("sflow.dot3_stats_multiple_collision_frames", Long),
    ("sflow.dot3_stats_sqe_test_errors", Long),
    ("sflow.dot3_stats_deferred_transmissions", Long),
    ("sflow.dot3_stats_late_collisions", Long),
    ("sflow.dot3_stats_excessive_collisions", Long),
    ("sflow.dot3_stats_internal_mac_transmit_errors", Long),
    ("sflow.dot3_stats_carrier_sense_errors", Long),
    ("sflow.dot3_stats_frame_too_longs", Long),
    ("sflow.dot3_stats_internal_mac_receive_errors", Long),
    ("sflow.dot3_stats_symbol_errors", Long),
    ("sflow.other_records.enterprise", Long),
    ("sflow.other_records.format", Long),
    ("sflow.other_records.length", Long),
    ("sflow.other_records.data", Keyword),
];

/// Fields the filtering stage adds (docs/index.md).
pub const ENRICH_FIELDS: &[(&str, FieldType)] = &[
    ("network.protocol", Keyword),
    ("flow.tcp_flag_names", Keyword),
    ("observer.ingress.interface.name", Keyword),
    ("observer.egress.interface.name", Keyword),
    ("source.geo.country_iso_code", Keyword),
    ("source.geo.country_name", Keyword),
    ("source.geo.continent_code", Keyword),
    ("source.geo.city_name", Keyword),
    ("source.geo.location", GeoPoint),
    ("source.as.organization.name", Keyword),
    ("destination.geo.country_iso_code", Keyword),
    ("destination.geo.country_name", Keyword),
    ("destination.geo.continent_code", Keyword),
    ("destination.geo.city_name", Keyword),
    ("destination.geo.location", GeoPoint),
    ("destination.as.organization.name", Keyword),
];

/// Nested `properties` for dotted field names.
fn properties(fields: &[(&str, FieldType)]) -> Value {
    let mut root = Map::new();
    for (path, t) in fields {
        let mut cur = &mut root;
        let parts: Vec<&str> = path.split('.').collect();
        for (i, p) in parts.iter().enumerate() {
            if i + 1 == parts.len() {
                cur.insert((*p).to_string(), t.mapping());
            } else {
                let e = cur
                    .entry((*p).to_string())
                    .or_insert_with(|| json!({"properties": {}}));
                cur = e
                    .get_mut("properties")
                    .and_then(Value::as_object_mut)
                    .expect("object node");
            }
        }
    }
    Value::Object(root)
}

/// The dynamic templates for `netflow.*` (and anything else not mapped).
pub fn dynamic_templates() -> Value {
    json!([
        {"netflow_addresses": {
            "path_match": "netflow.*",
            "match_pattern": "regex",
            "match": "^.*ipv[46]_(address|prefix)(_[0-9]+)?$",
            "mapping": {"type": "ip", "ignore_malformed": true}
        }},
        {"netflow_times": {
            "path_match": "netflow.*",
            "match_mapping_type": "string",
            "match_pattern": "regex",
            "match": "^.*_(seconds|milliseconds|microseconds|nanoseconds)(_[0-9]+)?$",
            "mapping": {"type": "date", "ignore_malformed": true}
        }},
        {"integers": {
            "match_mapping_type": "long",
            "mapping": {"type": "long", "ignore_malformed": true}
        }},
        {"strings": {
            "match_mapping_type": "string",
            "mapping": {"type": "keyword", "ignore_above": 1024}
        }}
    ])
}

/// The mappings object.
pub fn mappings() -> Value {
    let mut all: Vec<(&str, FieldType)> = SCHEMA_FIELDS.to_vec();
    all.extend_from_slice(ENRICH_FIELDS);
    json!({
        "dynamic": true,
        "date_detection": false,
        "numeric_detection": false,
        "dynamic_templates": dynamic_templates(),
        "properties": properties(&all),
    })
}

/// The template's name: the prefix.
pub fn template_name(prefix: &str) -> String {
    prefix.to_string()
}

/// The composable index template body for `<prefix>-*`.
pub fn index_template(prefix: &str, s: &TemplateSettings, data_streams: bool) -> Value {
    let mut t = json!({
        "index_patterns": [format!("{prefix}-*")],
        "priority": 200,
        "template": {
            "settings": {
                "index": {
                    "number_of_shards": s.shards,
                    "number_of_replicas": s.replicas,
                    "refresh_interval": s.refresh_interval,
                    "codec": s.codec,
                    "mapping": {"total_fields": {"limit": 5000}}
                }
            },
            "mappings": mappings(),
        },
        "_meta": {"managed_by": "ferroflow index", "version": env!("CARGO_PKG_VERSION")}
    });
    if data_streams {
        t["data_stream"] = json!({});
    }
    t
}

/// Installs (or overwrites) the template of `<prefix>-*` (`PUT /_index_template/<name>`),
/// retried as [`start_request`] does: `judge(error, attempts)` says which failures to wait out.
/// Logs the installation.
pub fn install<E>(
    client: &EsClient,
    prefix: &str,
    s: &TemplateSettings,
    data_streams: bool,
    stop: &AtomicBool,
    judge: impl FnMut(BulkError, u32) -> Result<(), E>,
) -> Result<(), Option<E>> {
    let body = index_template(prefix, s, data_streams);
    let body = serde_json::to_vec(&body).expect("serialisable template");
    let path = format!("/_index_template/{}", template_name(prefix));
    start_request(client, "PUT", &path, Some(&body), stop, 1, judge)?;
    tracing::info!(
        "index template {} installed for {prefix}-*",
        template_name(prefix)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// docs/schema.md, parsed the way tests/schema.rs parses it, with the type column.
    fn documented() -> BTreeMap<String, String> {
        let md = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema.md"),
        )
        .unwrap();
        let mut out = BTreeMap::new();
        for line in md.lines() {
            let Some(rest) = line.strip_prefix("| `") else {
                continue;
            };
            let cols: Vec<&str> = rest.split(" | ").collect();
            let names = format!("`{}", cols[0]);
            for part in names.split(", ") {
                let f = part.trim_matches('`');
                if !f.starts_with("netflow.") {
                    out.insert(f.to_string(), cols[1].trim().to_string());
                }
            }
        }
        out
    }

    #[test]
    fn mapping_follows_schema_md() {
        let doc = documented();
        assert!(doc.len() > 100, "schema.md parsed: {}", doc.len());
        let ours: BTreeMap<&str, FieldType> = SCHEMA_FIELDS.iter().copied().collect();
        for (f, ty) in &doc {
            let t = ours
                .get(f.as_str())
                .unwrap_or_else(|| panic!("{f} not mapped"));
            let want = match ty.as_str() {
                "date" => Date,
                "ip" => Ip,
                "keyword" | "keyword[]" => Keyword,
                "long" | "long[]" => Long,
                "boolean" => Boolean,
                _ if f.ends_with(".data") => Keyword,
                _ => Long,
            };
            assert_eq!(*t, want, "{f}: schema says {ty}");
        }
        for (f, _) in SCHEMA_FIELDS {
            assert!(doc.contains_key(*f), "{f} mapped but not in docs/schema.md");
        }
    }

    #[test]
    fn nested_properties() {
        let m = mappings();
        assert_eq!(m["properties"]["source"]["properties"]["ip"]["type"], "ip");
        assert_eq!(m["properties"]["@timestamp"]["type"], "date");
        assert_eq!(
            m["properties"]["source"]["properties"]["geo"]["properties"]["location"]["type"],
            "geo_point"
        );
        let t = index_template("ff", &TemplateSettings::default(), true);
        assert_eq!(t["index_patterns"][0], "ff-*");
        assert!(t.get("data_stream").is_some());
    }
}
