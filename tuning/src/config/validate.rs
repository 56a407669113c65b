//! Range and consistency checks for a parsed [`Config`].

use std::collections::BTreeSet;
use std::fmt::Display;

use super::{Config, ConfigError, InputKind, OutputKind};

/// The kernel caps SO_RCVBUF at `INT_MAX / 2` before doubling it.
pub(crate) const MAX_RCVBUF_BYTES: u64 = (i32::MAX / 2) as u64;
/// `recvmmsg` takes at most `UIO_MAXIOV` messages per call.
pub(crate) const MAX_RECV_BATCH: usize = 1024;
/// Linux interface names are at most `IFNAMSIZ - 1` bytes.
const MAX_IFNAME: usize = 15;
/// Upper bound on worker / decode threads: far above any appliance, low enough to catch typos.
const MAX_THREADS: usize = 1024;

fn invalid(field: &str, value: impl Display, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

pub(super) fn validate(c: &Config) -> Result<(), ConfigError> {
    collector(c)?;
    decoder(c)?;
    output(c)?;
    log(c)?;
    cpu(c)?;
    Ok(())
}

fn collector(c: &Config) -> Result<(), ConfigError> {
    let col = &c.collector;
    if col.listen.is_empty() {
        return Err(invalid(
            "collector.listen",
            "[]",
            "at least one address is needed",
        ));
    }
    let mut seen = BTreeSet::new();
    for a in &col.listen {
        if a.port() == 0 {
            return Err(invalid("collector.listen", a, "port 0 is not a fixed port"));
        }
        if !seen.insert(a) {
            return Err(invalid("collector.listen", a, "listed twice"));
        }
    }
    for (field, v) in [
        ("collector.workers", col.workers),
        ("collector.decode_threads", col.decode_threads),
    ] {
        if let Some(n) = v {
            if n == 0 || n > MAX_THREADS {
                return Err(invalid(
                    field,
                    n,
                    format!("must be between 1 and {MAX_THREADS}, or \"auto\""),
                ));
            }
        }
    }
    if let Some(n) = col.decode_threads {
        if !col.split_receive_decode {
            return Err(invalid(
                "collector.decode_threads",
                n,
                "only used with collector.split_receive_decode = true",
            ));
        }
    }
    if col.recv_batch == 0 || col.recv_batch > MAX_RECV_BATCH {
        return Err(invalid(
            "collector.recv_batch",
            col.recv_batch,
            format!("must be between 1 and {MAX_RECV_BATCH} (recvmmsg's limit)"),
        ));
    }
    if col.recv_coalesce_us > 10_000 {
        return Err(invalid(
            "collector.recv_coalesce_us",
            col.recv_coalesce_us,
            "must be between 0 and 10000 (10 ms)",
        ));
    }
    if col.socket_rcvbuf_bytes < 4096 || col.socket_rcvbuf_bytes > MAX_RCVBUF_BYTES {
        return Err(invalid(
            "collector.socket_rcvbuf_bytes",
            col.socket_rcvbuf_bytes,
            format!("must be between 4096 and {MAX_RCVBUF_BYTES} (the kernel's cap)"),
        ));
    }
    if col.ring_capacity < 2 || col.ring_capacity > 1 << 20 {
        return Err(invalid(
            "collector.ring_capacity",
            col.ring_capacity,
            "must be between 2 and 1048576 batches",
        ));
    }
    if let Some(name) = &col.interface {
        if name.is_empty()
            || name.len() > MAX_IFNAME
            || name.contains(['/', ':'])
            || name.chars().any(char::is_whitespace)
        {
            return Err(invalid(
                "collector.interface",
                quoted(name),
                "not a Linux interface name (1-15 characters, no '/', ':' or blanks)",
            ));
        }
    }
    if col.input != InputKind::Udp && col.interface.is_none() {
        return Err(invalid(
            "collector.input",
            quoted(col.input.as_str()),
            "needs collector.interface",
        ));
    }
    Ok(())
}

fn decoder(c: &Config) -> Result<(), ConfigError> {
    let d = &c.decoder;
    if d.template_timeout_secs == 0 {
        return Err(invalid(
            "decoder.template_timeout_secs",
            0,
            "must be at least 1",
        ));
    }
    if d.max_templates_per_exporter == 0 {
        return Err(invalid(
            "decoder.max_templates_per_exporter",
            0,
            "must be at least 1",
        ));
    }
    if d.max_exporters == 0 {
        return Err(invalid("decoder.max_exporters", 0, "must be at least 1"));
    }
    for (key, v) in [
        ("decoder.max_exporters_per_ip", d.max_exporters_per_ip),
        (
            "decoder.max_domains_per_exporter",
            d.max_domains_per_exporter,
        ),
        (
            "decoder.max_records_per_datagram",
            d.max_records_per_datagram,
        ),
    ] {
        if v == 0 {
            return Err(invalid(key, 0, "must be at least 1"));
        }
    }
    // one exporter must have room for a few large templates
    if d.max_state_bytes_per_exporter < 64 * 1024 {
        return Err(invalid(
            "decoder.max_state_bytes_per_exporter",
            d.max_state_bytes_per_exporter,
            "must be at least 64 KiB (a template of 64 fields takes about 15 KiB)",
        ));
    }
    if d.max_state_bytes_per_exporter > d.max_state_bytes_total {
        return Err(invalid(
            "decoder.max_state_bytes_per_exporter",
            d.max_state_bytes_per_exporter,
            format!(
                "larger than decoder.max_state_bytes_total = {}",
                d.max_state_bytes_total
            ),
        ));
    }
    if d.max_held_bytes_per_exporter > d.max_held_bytes_total {
        return Err(invalid(
            "decoder.max_held_bytes_per_exporter",
            d.max_held_bytes_per_exporter,
            format!(
                "larger than decoder.max_held_bytes_total = {}",
                d.max_held_bytes_total
            ),
        ));
    }
    if let Some(p) = &d.template_store {
        if p.as_os_str().is_empty() {
            return Err(invalid("decoder.template_store", "\"\"", "empty path"));
        }
    }
    Ok(())
}

fn output(c: &Config) -> Result<(), ConfigError> {
    let o = &c.output;
    if o.kind == OutputKind::File && o.path.is_none() {
        return Err(invalid("output.kind", "\"file\"", "needs output.path"));
    }
    if let Some(p) = &o.path {
        if p.as_os_str().is_empty() {
            return Err(invalid("output.path", "\"\"", "empty path"));
        }
    }
    let k = &o.kafka;
    if k.brokers.is_empty() {
        return Err(invalid(
            "output.kafka.brokers",
            "[]",
            "at least one broker is needed",
        ));
    }
    for b in &k.brokers {
        check_host_port(b).map_err(|r| invalid("output.kafka.brokers", quoted(b), r))?;
    }
    for (proto, topic) in k.topics.iter() {
        check_topic(topic)
            .map_err(|r| invalid(&format!("output.kafka.topics.{proto}"), quoted(topic), r))?;
    }
    for (name, value) in &k.properties {
        let field = format!("output.kafka.properties.\"{name}\"");
        if name.is_empty() {
            return Err(invalid(
                "output.kafka.properties",
                quoted(value),
                "empty property name",
            ));
        }
        if name == "bootstrap.servers" || name == "metadata.broker.list" {
            return Err(invalid(
                &field,
                quoted(value),
                "set output.kafka.brokers instead",
            ));
        }
    }
    // librdkafka refuses idempotence with anything but acks=all at start-up; say so now.
    let props = k.client_properties();
    let idempotent = props.get("enable.idempotence").map(String::as_str) == Some("true");
    let acks = props.get("acks").map(String::as_str).unwrap_or("all");
    if idempotent && !matches!(acks, "all" | "-1") {
        return Err(invalid(
            "output.kafka.properties.\"acks\"",
            quoted(acks),
            "enable.idempotence (on by default) needs acks = \"all\"; set \
             \"enable.idempotence\" = \"false\" to use weaker acks",
        ));
    }
    let es = &o.elasticsearch;
    if es.urls.is_empty() {
        return Err(invalid(
            "output.elasticsearch.urls",
            "[]",
            "at least one URL is needed",
        ));
    }
    for u in &es.urls {
        if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() <= "https://".len() {
            return Err(invalid(
                "output.elasticsearch.urls",
                quoted(u),
                "must start with http:// or https://",
            ));
        }
    }
    if es.password.is_some() && es.username.is_none() {
        return Err(invalid(
            "output.elasticsearch.password",
            "\"***\"",
            "a password needs output.elasticsearch.username",
        ));
    }
    if es.max_docs == 0 || es.max_bytes == 0 {
        return Err(invalid(
            "output.elasticsearch.max_docs",
            format!("{} / max_bytes {}", es.max_docs, es.max_bytes),
            "both limits must be at least 1",
        ));
    }
    let p = &es.index_prefix;
    if p.is_empty()
        || p.starts_with(['-', '_', '+'])
        || p.chars().any(|ch| {
            ch.is_ascii_uppercase() || ch.is_whitespace() || r#"\/*?"<>|,#:"#.contains(ch)
        })
    {
        return Err(invalid(
            "output.elasticsearch.index_prefix",
            quoted(p),
            "not a valid index name prefix (lowercase, no blanks or \\/*?\"<>|,#:, \
             not starting with - _ +)",
        ));
    }
    Ok(())
}

/// `host:port` or `[v6]:port` with a non-zero port.
fn check_host_port(s: &str) -> Result<(), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| "expected host:port".to_string())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(['/', ' ']) {
        return Err("expected host:port".to_string());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("`{port}` is not a port number")),
    }
}

/// Kafka's rule: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn check_topic(t: &str) -> Result<(), String> {
    if t.is_empty() || t.len() > 249 {
        return Err("a topic name has 1 to 249 characters".to_string());
    }
    if t == "." || t == ".." {
        return Err("`.` and `..` are not topic names".to_string());
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err("topic names use only letters, digits, '.', '_' and '-'".to_string());
    }
    Ok(())
}

const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

fn is_level(s: &str) -> bool {
    LEVELS.contains(&s.trim().to_ascii_lowercase().as_str())
}

fn log(c: &Config) -> Result<(), ConfigError> {
    let level = &c.log.level;
    let bad = |why: &str| invalid("log.level", quoted(level), why.to_string());
    if level.trim().is_empty() {
        return Err(bad(
            "expected a level: off, error, warn, info, debug or trace",
        ));
    }
    for part in level.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(bad("empty directive between commas"));
        }
        if part.contains('[') {
            continue; // span filters: left to tracing's own parser
        }
        match part.rsplit_once('=') {
            Some((_, lvl)) if !is_level(lvl) => {
                return Err(bad(
                    "the level after `=` must be off, error, warn, info, debug or trace",
                ))
            }
            None if !is_level(part) => {
                return Err(bad(
                    "expected off, error, warn, info, debug or trace, or target=level directives",
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

fn cpu(c: &Config) -> Result<(), ConfigError> {
    if let Some(cores) = &c.cpu.cores {
        if cores.is_empty() {
            return Err(invalid(
                "cpu.cores",
                "\"\"",
                "list at least one core, or leave it unset",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports() {
        assert!(check_host_port("127.0.0.1:9092").is_ok());
        assert!(check_host_port("kafka-1.example:9092").is_ok());
        assert!(check_host_port("[::1]:9092").is_ok());
        assert!(check_host_port("kafka").is_err());
        assert!(check_host_port(":9092").is_err());
        assert!(check_host_port("kafka:0").is_err());
        assert!(check_host_port("kafka:99999").is_err());
    }

    #[test]
    fn topics() {
        assert!(check_topic("netflow").is_ok());
        assert!(check_topic("flows.v9_raw-1").is_ok());
        assert!(check_topic("").is_err());
        assert!(check_topic("..").is_err());
        assert!(check_topic("net flow").is_err());
        assert!(check_topic(&"x".repeat(250)).is_err());
    }
}
