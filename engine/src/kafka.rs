//! Kafka pieces shared by the collector's producer sink ([`crate::sink::kafka`]) and the
//! indexer ([`crate::index`]): start-up probes of the brokers and topics that stop at once on a
//! TLS or SASL failure and name it, and librdkafka's log lines forwarded to `tracing`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaRespErr;

/// Least time between two warnings of the same kind.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(10);

/// Allows one message per `every`, counting what it held back.
#[derive(Debug, Default)]
pub(crate) struct RateLimit {
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimit {
    /// `Some(n)`: log now, `n` messages were held back since the last one.
    pub(crate) fn allow(&self, every: Duration) -> Option<u64> {
        let now = crate::now_ns() / 1_000_000;
        let last = self.last_ms.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < every.as_millis() as u64 {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.last_ms.store(now.max(1), Ordering::Relaxed);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

/// Forwards a librdkafka log line to `tracing`: warnings and worse rate limited by `limit`.
pub(crate) fn forward_log(
    who: &str,
    limit: &RateLimit,
    level: RDKafkaLogLevel,
    fac: &str,
    msg: &str,
) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error
        | RDKafkaLogLevel::Warning => {
            if let Some(n) = limit.allow(LOG_EVERY) {
                let held = if n > 0 {
                    format!(" ({n} more librdkafka warnings held back)")
                } else {
                    String::new()
                };
                tracing::warn!("{who}: librdkafka {fac}: {msg}{held}");
            }
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!("{who}: librdkafka {fac}: {msg}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!("{who}: librdkafka {fac}: {msg}"),
    }
}

/// The librdkafka error code of `e` (`Fail` when it has none).
pub(crate) fn code_of(e: &KafkaError) -> i32 {
    e.rdkafka_error_code()
        .map(|c| c as i32)
        .unwrap_or(RDKafkaErrorCode::Fail as i32)
}

/// A librdkafka error code as its name and text.
pub(crate) fn describe_code(code: i32) -> String {
    match RDKafkaRespErr::try_from(code) {
        // "MessageSizeTooLarge (Broker: Message size too large)"
        Ok(e) => RDKafkaErrorCode::from(e).to_string(),
        Err(_) => format!("error code {code}"),
    }
}

/// Context of the short-lived client that checks the topics at start: logs, and keeps the
/// first TLS or SASL failure so that the check can stop at once and name it.
struct MetadataContext {
    log_limit: RateLimit,
    fatal: std::sync::Mutex<Option<String>>,
}

impl ClientContext for MetadataContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        forward_log("kafka", &self.log_limit, level, fac, log_message);
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            self.note(security_failure(None, log_message));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!("kafka metadata check: {error}: {reason}");
        self.note(security_failure(error.rdkafka_error_code(), reason));
    }
}

impl MetadataContext {
    fn new() -> Self {
        MetadataContext {
            log_limit: RateLimit::default(),
            fatal: std::sync::Mutex::new(None),
        }
    }

    fn note(&self, why: Option<String>) {
        if let Some(why) = why {
            let mut f = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
            f.get_or_insert(why);
        }
    }

    fn fatal(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A TLS handshake or SASL authentication failure is not a broker still starting: retrying
/// until the start-up timeout would only hide it. Returns what to tell the operator.
fn security_failure(code: Option<RDKafkaErrorCode>, reason: &str) -> Option<String> {
    let tls = code == Some(RDKafkaErrorCode::SSL)
        || reason.contains("SSL handshake failed")
        || reason.contains("certificate verify failed");
    let sasl = code == Some(RDKafkaErrorCode::Authentication)
        || reason.contains("SASL authentication error");
    match (tls, sasl) {
        (true, _) => Some(format!(
            "TLS handshake failed: {reason}; check ssl.ca.location (the PEM file of the CA that \
             signed the brokers' certificates) and security.protocol"
        )),
        (false, true) => Some(format!(
            "authentication failed: {reason}; check sasl.mechanism, sasl.username and \
             sasl.password (and ssl.ca.location)"
        )),
        _ => None,
    }
}

impl ProducerContext for MetadataContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// What [`probe_brokers`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerProbe {
    /// The brokers answered a metadata request.
    Answered,
    /// No answer within the timeout (brokers down or unreachable: may still come).
    NoAnswer(String),
    /// A TLS handshake or SASL authentication failure: waiting will not cure it.
    Security(String),
}

/// A short-lived client that asks the brokers for metadata at start.
pub struct MetadataProbe {
    client: BaseProducer<MetadataContext>,
}

impl MetadataProbe {
    /// A client of `config` (librdkafka refuses unknown or bad properties here).
    pub fn new(config: &ClientConfig) -> Result<Self, KafkaError> {
        Ok(MetadataProbe {
            client: config.create_with_context(MetadataContext::new())?,
        })
    }

    /// Serves the error events (the context notes TLS / SASL failures); the first such
    /// failure, if any.
    fn security_failure(&self) -> Option<String> {
        self.client.poll(Duration::ZERO);
        self.client.context().fatal()
    }

    /// Asks for the cluster's metadata until `deadline`, in short steps, stopping at once on
    /// a TLS or SASL failure.
    pub fn brokers(&self, deadline: Instant) -> BrokerProbe {
        let mut last = String::from("no answer");
        loop {
            if let Some(why) = self.security_failure() {
                return BrokerProbe::Security(why);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return BrokerProbe::NoAnswer(last);
            }
            match self
                .client
                .client()
                .fetch_metadata(None, left.min(Duration::from_millis(500)))
            {
                Ok(_) => return BrokerProbe::Answered,
                Err(e) => last = e.to_string(),
            }
        }
    }

    /// The partition count of `topic`, waiting until `deadline` for the brokers to answer and
    /// for a leader to be known. The error names the brokers and the topic.
    pub fn topic_partitions(
        &self,
        topic: &str,
        brokers: &str,
        deadline: Instant,
    ) -> Result<i32, String> {
        let mut last = String::from("no answer");
        loop {
            if let Some(why) = self.security_failure() {
                return Err(format!("brokers {brokers}: {why}"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "brokers {brokers}: no usable metadata for topic {topic} within the start-up \
                     timeout ({last}); are the brokers up and reachable?"
                ));
            }
            // in short steps, so that a TLS / SASL failure noted meanwhile ends the wait
            match self
                .client
                .client()
                .fetch_metadata(Some(topic), left.min(Duration::from_millis(500)))
            {
                Ok(md) => match md.topics().iter().find(|t| t.name() == topic) {
                    Some(t) => match t.error() {
                        None if !t.partitions().is_empty() => {
                            return Ok(t.partitions().len() as i32);
                        }
                        None => last = "topic has no partitions yet".into(),
                        Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => {
                            return Err(format!(
                                "brokers {brokers}: topic {topic} does not exist; create it \
                                 (with at least as many partitions as workers) or change \
                                 [output.kafka.topics]"
                            ));
                        }
                        Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) => {
                            return Err(format!(
                                "brokers {brokers}: not authorised to describe topic {topic}"
                            ));
                        }
                        Some(e) => last = describe_code(e as i32),
                    },
                    None => last = "topic missing from the metadata answer".into(),
                },
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(200).min(left));
            if let Some(why) = self.security_failure() {
                return Err(format!("brokers {brokers}: {why}"));
            }
        }
    }
}

/// Asks the brokers for the cluster's metadata, for at most `timeout`, with a short-lived
/// client made of `bootstrap.servers` and `properties` (connection and security ones: give no
/// consumer-only property), and stops at once on a TLS or SASL failure. For `ferroflow index`,
/// whose consumers would otherwise retry such a failure for ever, logging warnings.
pub fn probe_brokers(
    brokers: &str,
    properties: &[(String, String)],
    timeout: Duration,
) -> BrokerProbe {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", brokers);
    for (k, v) in properties {
        cc.set(k, v);
    }
    match MetadataProbe::new(&cc) {
        Ok(p) => p.brokers(Instant::now() + timeout),
        Err(e) => BrokerProbe::NoAnswer(format!("client configuration: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_lets_one_through_per_interval() {
        let r = RateLimit::default();
        assert_eq!(r.allow(Duration::from_secs(60)), Some(0));
        assert_eq!(r.allow(Duration::from_secs(60)), None);
        assert_eq!(r.allow(Duration::from_secs(60)), None);
        assert_eq!(r.allow(Duration::ZERO), Some(2));
    }

    #[test]
    fn tls_and_sasl_failures_are_named() {
        let tls = security_failure(None, "SSL handshake failed: certificate verify failed");
        assert!(tls.is_some_and(|w| w.contains("ssl.ca.location")));
        let sasl = security_failure(Some(RDKafkaErrorCode::Authentication), "bad password");
        assert!(sasl.is_some_and(|w| w.contains("sasl.password")));
        assert_eq!(security_failure(None, "Connection refused"), None);
    }
}
