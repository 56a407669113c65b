//! Settings of `ferroflow index` (the Vector split's `config`): built by the binary from its
//! flags and `FERROFLOW_INDEX_*` variables, validated once, then read-only.

use std::path::PathBuf;
use std::time::Duration;

use crate::es::{EsSettings, RetryPolicy, TemplateSettings};

/// When a batch is sent: the first limit reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_docs: usize,
    pub max_bytes: usize,
    pub max_wait: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_docs: 5000,
            max_bytes: 5 * 1024 * 1024,
            max_wait: Duration::from_millis(1000),
        }
    }
}

/// The optional filtering stage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnrichSettings {
    /// MaxMind City (or Country) database.
    pub geoip_db: Option<PathBuf>,
    /// MaxMind ASN database.
    pub asn_db: Option<PathBuf>,
    /// JSON file `{"<exporter ip>": {"<ifIndex>": "<name>", ...}, ...}`.
    pub interface_names: Option<PathBuf>,
    /// Multiply `network.bytes` / `network.packets` by `flow.sampling_rate` when the collector
    /// did not (`flow.scaled` absent).
    pub renormalize_sampling: bool,
}

/// Everything `ferroflow index` needs.
#[derive(Clone, Debug)]
pub struct IndexSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    pub topics: Vec<String>,
    pub group: String,
    /// Consumer threads (members of the group).
    pub threads: usize,
    /// Extra librdkafka properties for the consumer and the dead-letter producer.
    pub kafka_properties: Vec<(String, String)>,
    pub es: EsSettings,
    /// Indices are `<prefix>-<protocol>-YYYY.MM.DD` (or data streams `<prefix>-<protocol>`).
    pub index_prefix: String,
    pub data_streams: bool,
    pub dead_letter_topic: String,
    pub batch: BatchLimits,
    /// Bulk requests in flight at once (sender threads sharing one keep-alive pool).
    pub in_flight: usize,
    pub retry: RetryPolicy,
    pub template: TemplateSettings,
    pub enrich: Option<EnrichSettings>,
    /// On shutdown, how long to keep delivering what was consumed before giving up (what is
    /// not delivered then is not committed, so it is read again at the next start).
    pub close_timeout: Duration,
}

impl Default for IndexSettings {
    fn default() -> Self {
        IndexSettings {
            brokers: "127.0.0.1:9092".to_string(),
            topics: vec!["netflow".into(), "ipfix".into(), "sflow".into()],
            group: "ferroflow-index".to_string(),
            threads: 2,
            kafka_properties: Vec::new(),
            es: EsSettings::default(),
            index_prefix: "ferroflow".to_string(),
            data_streams: false,
            dead_letter_topic: "ferroflow-dead-letter".to_string(),
            batch: BatchLimits::default(),
            in_flight: 4,
            retry: RetryPolicy::default(),
            template: TemplateSettings::default(),
            enrich: None,
            close_timeout: Duration::from_secs(30),
        }
    }
}

/// A setting that cannot work, named.
#[derive(Debug, thiserror::Error)]
#[error("invalid {field} = {value}: {reason}")]
pub struct SettingsError {
    pub field: &'static str,
    pub value: String,
    pub reason: &'static str,
}

impl IndexSettings {
    /// Checks what would otherwise fail later, and less clearly.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |field, value: &dyn std::fmt::Debug, reason| {
            Err(SettingsError {
                field,
                value: format!("{value:?}"),
                reason,
            })
        };
        if self.brokers.trim().is_empty() {
            return bad("kafka-brokers", &self.brokers, "empty");
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.is_empty()) {
            return bad("topics", &self.topics, "at least one non-empty topic");
        }
        if self.group.is_empty() {
            return bad("group", &self.group, "empty");
        }
        if self.threads == 0 || self.threads > 256 {
            return bad("threads", &self.threads, "1..=256");
        }
        if self.in_flight == 0 || self.in_flight > 256 {
            return bad("in-flight", &self.in_flight, "1..=256");
        }
        if self.es.urls.is_empty() {
            return bad("es-url", &self.es.urls, "at least one URL");
        }
        for u in &self.es.urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return bad("es-url", u, "http:// or https:// URL");
            }
        }
        let p = &self.index_prefix;
        if p.is_empty()
            || p.starts_with(['-', '_', '+', '.'])
            || !p
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        {
            return bad(
                "index-prefix",
                p,
                "lower-case letters, digits, '-', '_', '.'; not starting with -_+.",
            );
        }
        if self.dead_letter_topic.is_empty() {
            return bad("dead-letter-topic", &self.dead_letter_topic, "empty");
        }
        if self.topics.contains(&self.dead_letter_topic) {
            return bad(
                "dead-letter-topic",
                &self.dead_letter_topic,
                "must not be one of the consumed topics",
            );
        }
        if self.batch.max_docs == 0 || self.batch.max_docs > 1_000_000 {
            return bad("bulk-max-docs", &self.batch.max_docs, "1..=1000000");
        }
        if self.batch.max_bytes < 1024 || self.batch.max_bytes > 512 * 1024 * 1024 {
            return bad("bulk-max-bytes", &self.batch.max_bytes, "1 KiB..=512 MiB");
        }
        if self.batch.max_wait.is_zero() {
            return bad("bulk-max-wait-ms", &self.batch.max_wait, "at least 1 ms");
        }
        for (k, v) in &self.kafka_properties {
            let coop = (k == "partition.assignment.strategy" && v.contains("cooperative"))
                || (k == "group.protocol" && v == "consumer");
            if coop {
                return bad(
                    "kafka-property",
                    &format!("{k}={v}"),
                    "incremental (cooperative / KIP-848) rebalancing is not supported: a revocation drops the partial batch, which is only right when every partition is revoked",
                );
            }
            if ["enable.auto.offset.store", "group.id", "bootstrap.servers"].contains(&k.as_str()) {
                return bad(
                    "kafka-property",
                    k,
                    "set by ferroflow index (use the flags)",
                );
            }
        }
        if self.retry.initial.is_zero() || self.retry.max < self.retry.initial {
            return bad("retry", &self.retry, "0 < initial <= max");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        IndexSettings::default().validate().unwrap();
    }

    #[test]
    fn rejects_bad_prefix_and_dlq_loop() {
        let s = IndexSettings {
            index_prefix: "Flows".into(),
            ..Default::default()
        };
        assert_eq!(s.validate().unwrap_err().field, "index-prefix");
        let s = IndexSettings {
            dead_letter_topic: "netflow".into(),
            ..Default::default()
        };
        assert_eq!(s.validate().unwrap_err().field, "dead-letter-topic");
    }
}
