//! `FERROFLOW_<SECTION>_<KEY>` environment overrides.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::de::IntoDeserializer;
use serde::Deserialize;

use super::serde_helpers::{parse_auto_count, parse_byte_size, split_list};
use super::{Config, ConfigError};
use crate::cidr::AllowList;
use crate::cpuset::CpuSet;

/// Prefix of every override variable.
pub const ENV_PREFIX: &str = "FERROFLOW_";

/// Every configuration field, by dotted name, in file order. (`output.kafka.properties.<name>`
/// stands for the open-ended librdkafka property table.)
pub const CONFIG_KEYS: &[&str] = &[
    "collector.listen",
    "collector.allow_shared_port",
    "collector.workers",
    "collector.split_receive_decode",
    "collector.decode_threads",
    "collector.recv_batch",
    "collector.recv_coalesce_us",
    "collector.socket_rcvbuf_bytes",
    "collector.ring_capacity",
    "collector.ring_full",
    "collector.input",
    "collector.interface",
    "collector.queue",
    "decoder.scale_sampling",
    "decoder.template_timeout_secs",
    "decoder.max_templates_per_exporter",
    "decoder.max_exporters",
    "decoder.max_exporters_per_ip",
    "decoder.max_domains_per_exporter",
    "decoder.max_state_bytes_per_exporter",
    "decoder.max_state_bytes_total",
    "decoder.max_held_bytes_per_exporter",
    "decoder.max_held_bytes_total",
    "decoder.max_hold_secs",
    "decoder.max_records_per_datagram",
    "decoder.max_past_secs",
    "decoder.max_future_secs",
    "decoder.template_store",
    "decoder.allow_exporters",
    "output.kind",
    "output.path",
    "output.kafka.brokers",
    "output.kafka.topics.netflow_v5",
    "output.kafka.topics.netflow_v9",
    "output.kafka.topics.ipfix",
    "output.kafka.topics.sflow",
    "output.kafka.queue_full",
    "output.kafka.properties.<name>",
    "output.elasticsearch.urls",
    "output.elasticsearch.index_prefix",
    "output.elasticsearch.username",
    "output.elasticsearch.password",
    "output.elasticsearch.api_key",
    "output.elasticsearch.ca",
    "output.elasticsearch.gzip",
    "output.elasticsearch.max_docs",
    "output.elasticsearch.max_bytes",
    "output.elasticsearch.flush_interval_ms",
    "output.elasticsearch.queue_full",
    "output.elasticsearch.install_template",
    "metrics.listen",
    "log.level",
    "cpu.pinning",
    "cpu.cores",
    "cpu.reserve_softirq_core",
];

/// Sections whose variables must name a known field.
const SECTIONS: &[&str] = &[
    "COLLECTOR_",
    "DECODER_",
    "OUTPUT_",
    "METRICS_",
    "LOG_",
    "CPU_",
];

const PROPERTIES_ENV: &str = "OUTPUT_KAFKA_PROPERTIES_";

/// The environment variable for a dotted field name: `output.kafka.brokers` ->
/// `FERROFLOW_OUTPUT_KAFKA_BROKERS`.
pub fn env_var_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "_").to_ascii_uppercase())
}

pub(super) fn apply<I, K, V>(config: &mut Config, vars: I) -> Result<Vec<String>, ConfigError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    // Sorted, so that the outcome does not depend on the environment's order.
    let mut ours: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.as_ref().starts_with(ENV_PREFIX))
        .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
        .collect();
    ours.sort();
    let mut applied = Vec::new();
    for (var, value) in ours {
        let rest = &var[ENV_PREFIX.len()..];
        let err = |reason: String| ConfigError::Env {
            var: var.clone(),
            value: value.clone(),
            reason,
        };
        if let Some(name) = rest.strip_prefix(PROPERTIES_ENV) {
            if name.is_empty() {
                return Err(err("no property name after PROPERTIES_".to_string()));
            }
            let prop = name.to_ascii_lowercase().replace('_', ".");
            config
                .output
                .kafka
                .properties
                .insert(prop.clone(), value.clone());
            applied.push(format!("output.kafka.properties.{prop}"));
            continue;
        }
        let key = CONFIG_KEYS
            .iter()
            .find(|k| !k.ends_with('>') && env_var_name(k) == var);
        match key {
            Some(key) => {
                set(config, key, &value).map_err(err)?;
                applied.push((*key).to_string());
            }
            None if SECTIONS.iter().any(|s| rest.starts_with(s)) => {
                return Err(err(format!(
                    "no such configuration field; known: {}",
                    CONFIG_KEYS
                        .iter()
                        .filter(|k| {
                            let section = &env_var_name(k)[ENV_PREFIX.len()..];
                            rest.split('_').next() == section.split('_').next()
                        })
                        .map(|k| env_var_name(k))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            None => {} // Not a configuration variable (e.g. FERROFLOW_CONFIG): the CLI's business.
        }
    }
    Ok(applied)
}

fn set(c: &mut Config, key: &str, v: &str) -> Result<(), String> {
    match key {
        "collector.listen" => c.collector.listen = list(v, parse_socket_addr)?,
        "collector.allow_shared_port" => c.collector.allow_shared_port = boolean(v)?,
        "collector.workers" => c.collector.workers = parse_auto_count(v)?,
        "collector.split_receive_decode" => c.collector.split_receive_decode = boolean(v)?,
        "collector.decode_threads" => c.collector.decode_threads = parse_auto_count(v)?,
        "collector.recv_batch" => c.collector.recv_batch = number(v)?,
        "collector.recv_coalesce_us" => c.collector.recv_coalesce_us = number(v)?,
        "collector.socket_rcvbuf_bytes" => c.collector.socket_rcvbuf_bytes = parse_byte_size(v)?,
        "collector.ring_capacity" => c.collector.ring_capacity = number(v)?,
        "collector.ring_full" => c.collector.ring_full = named(v)?,
        "collector.input" => c.collector.input = named(v)?,
        "collector.interface" => c.collector.interface = optional(v, |s| Ok(s.to_string()))?,
        "collector.queue" => c.collector.queue = optional(v, number)?,
        "decoder.scale_sampling" => c.decoder.scale_sampling = boolean(v)?,
        "decoder.template_timeout_secs" => c.decoder.template_timeout_secs = number(v)?,
        "decoder.max_templates_per_exporter" => c.decoder.max_templates_per_exporter = number(v)?,
        "decoder.max_exporters" => c.decoder.max_exporters = number(v)?,
        "decoder.max_exporters_per_ip" => c.decoder.max_exporters_per_ip = number(v)?,
        "decoder.max_domains_per_exporter" => c.decoder.max_domains_per_exporter = number(v)?,
        "decoder.max_state_bytes_per_exporter" => {
            c.decoder.max_state_bytes_per_exporter = parse_byte_size(v)?
        }
        "decoder.max_state_bytes_total" => c.decoder.max_state_bytes_total = parse_byte_size(v)?,
        "decoder.max_held_bytes_per_exporter" => {
            c.decoder.max_held_bytes_per_exporter = parse_byte_size(v)?
        }
        "decoder.max_held_bytes_total" => c.decoder.max_held_bytes_total = parse_byte_size(v)?,
        "decoder.max_hold_secs" => c.decoder.max_hold_secs = number(v)?,
        "decoder.max_records_per_datagram" => c.decoder.max_records_per_datagram = number(v)?,
        "decoder.max_past_secs" => c.decoder.max_past_secs = number(v)?,
        "decoder.max_future_secs" => c.decoder.max_future_secs = number(v)?,
        "decoder.template_store" => {
            c.decoder.template_store = optional(v, |s| Ok(PathBuf::from(s)))?
        }
        "decoder.allow_exporters" => {
            c.decoder.allow_exporters =
                AllowList::parse(&split_list(v)).map_err(|e| e.to_string())?
        }
        "output.kind" => c.output.kind = named(v)?,
        "output.path" => c.output.path = optional(v, |s| Ok(PathBuf::from(s)))?,
        "output.kafka.brokers" => c.output.kafka.brokers = split_list(v),
        "output.kafka.topics.netflow_v5" => c.output.kafka.topics.netflow_v5 = v.trim().into(),
        "output.kafka.topics.netflow_v9" => c.output.kafka.topics.netflow_v9 = v.trim().into(),
        "output.kafka.topics.ipfix" => c.output.kafka.topics.ipfix = v.trim().into(),
        "output.kafka.topics.sflow" => c.output.kafka.topics.sflow = v.trim().into(),
        "output.kafka.queue_full" => c.output.kafka.queue_full = named(v)?,
        "output.elasticsearch.urls" => c.output.elasticsearch.urls = split_list(v),
        "output.elasticsearch.index_prefix" => {
            c.output.elasticsearch.index_prefix = v.trim().into()
        }
        "output.elasticsearch.username" => {
            c.output.elasticsearch.username = optional(v, |s| Ok(s.to_string()))?
        }
        "output.elasticsearch.password" => {
            c.output.elasticsearch.password = optional(v, |s| Ok(s.to_string()))?
        }
        "output.elasticsearch.api_key" => {
            c.output.elasticsearch.api_key = optional(v, |s| Ok(s.to_string()))?
        }
        "output.elasticsearch.ca" => {
            c.output.elasticsearch.ca = optional(v, |s| Ok(PathBuf::from(s)))?
        }
        "output.elasticsearch.gzip" => c.output.elasticsearch.gzip = boolean(v)?,
        "output.elasticsearch.max_docs" => c.output.elasticsearch.max_docs = number(v)?,
        "output.elasticsearch.max_bytes" => c.output.elasticsearch.max_bytes = number(v)?,
        "output.elasticsearch.flush_interval_ms" => {
            c.output.elasticsearch.flush_interval_ms = number(v)?
        }
        "output.elasticsearch.queue_full" => c.output.elasticsearch.queue_full = named(v)?,
        "output.elasticsearch.install_template" => {
            c.output.elasticsearch.install_template = boolean(v)?
        }
        "metrics.listen" => c.metrics.listen = parse_socket_addr(v)?,
        "log.level" => c.log.level = v.trim().into(),
        "cpu.pinning" => c.cpu.pinning = boolean(v)?,
        "cpu.cores" => {
            c.cpu.cores = optional(v, |s| CpuSet::parse_list(s).map_err(|e| e.to_string()))?
        }
        "cpu.reserve_softirq_core" => c.cpu.reserve_softirq_core = boolean(v)?,
        other => return Err(format!("field {other} cannot be set from the environment")),
    }
    Ok(())
}

fn boolean(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".to_string()),
    }
}

fn number<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| "expected a non-negative whole number".to_string())
}

/// A unit enum by its configuration name (`block`, `af_xdp`, `kafka`).
fn named<'de, T: Deserialize<'de>>(v: &str) -> Result<T, String> {
    let s = v.trim().to_ascii_lowercase();
    T::deserialize(s.as_str().into_deserializer())
        .map_err(|e: serde::de::value::Error| e.to_string())
}

fn optional<T>(v: &str, f: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, String> {
    let t = v.trim();
    if t.is_empty() {
        Ok(None)
    } else {
        f(t).map(Some)
    }
}

fn list<T>(v: &str, f: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    split_list(v).iter().map(|s| f(s)).collect()
}

fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a socket address like 0.0.0.0:2055 or [::]:2055"))
}
