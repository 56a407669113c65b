//! `ferroflow index`: the consumer engine that takes the collector's JSON documents from Kafka
//! and writes them to Elasticsearch / OpenSearch with `_bulk`, exactly once in the index.
//!
//! Split as Vector splits its sinks: [`config`] (settings), [`sink`] (consumer threads, sender
//! pool, ordered offset storing, the dead-letter callback of the delivery loop),
//! [`request_builder`] (NDJSON bodies from the message bytes), plus the [`dead_letter`] topic,
//! the optional [`enrich`] stage and [`metrics`]. The HTTP client, the backoff, the index
//! template, index naming and the delivery loop itself are [`crate::es`], shared with the
//! collector's direct sink.
//!
//! Exactly-once in the index = at-least-once from Kafka (offsets stored only after every item
//! of a batch is written or dead-lettered) + deterministic `_id`s
//! (`<topic>-<partition>-<offset>`) with `create`, so a replay answers 409, counted as written.

pub mod config;
pub mod dead_letter;
pub mod enrich;
pub mod metrics;
pub mod request_builder;
pub mod sink;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use crate::es::{Auth, EsSettings, RetryPolicy, TemplateSettings};
pub use config::{BatchLimits, EnrichSettings, IndexSettings};
pub use metrics::IndexMetrics;
/// The Kafka client the engine is built with (for tools and tests that produce / inspect
/// the topics with the same library version).
pub use rdkafka;

use crate::es::{template, BulkError, EsClient};
use crate::kafka::{probe_brokers, BrokerProbe};
use dead_letter::DeadLetterProducer;
use enrich::Enricher;
use sink::{ConsumerLoop, SenderCtx};

/// Why the indexer could not start.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Settings(#[from] config::SettingsError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The start-up probe met a TLS or SASL failure.
    #[error("kafka: {0}")]
    KafkaStart(String),
    #[error(transparent)]
    DeadLetter(#[from] dead_letter::DeadLetterError),
    #[error("elasticsearch: {0}")]
    Es(#[from] BulkError),
    /// A start-up request failed in a way that waiting does not cure (TLS trust, credentials).
    #[error("elasticsearch: {0}")]
    Start(String),
    #[error("enrichment: {0}")]
    Enrich(#[from] enrich::EnrichError),
    #[error("stopped before start-up finished")]
    Stopped,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl IndexError {
    pub fn is_retryable(&self) -> bool {
        match self {
            IndexError::Es(e) => e.is_retryable(),
            IndexError::Kafka(_) => true,
            _ => false,
        }
    }
}

/// Installs the index template, retrying while the cluster is unreachable or answers 429/5xx
/// (until `stop`). A final error (400: the cluster refuses the template) is returned, and so is
/// one that waiting does not cure (untrusted certificate, 401, 403: [`BulkError::fatal_at_start`]).
pub fn install_template(
    client: &EsClient,
    s: &IndexSettings,
    stop: &AtomicBool,
) -> Result<(), IndexError> {
    let path = format!(
        "/_index_template/{}",
        template::template_name(&s.index_prefix)
    );
    template::install(
        client,
        &s.index_prefix,
        &s.template,
        s.data_streams,
        stop,
        |err, attempts| {
            if let Some(why) = err.fatal_at_start() {
                return Err(IndexError::Start(format!("index template: {why}")));
            }
            if !err.is_retryable() {
                return Err(err.into());
            }
            if attempts % 5 == 0 {
                tracing::warn!("index template {path}: {err}; retrying");
            }
            Ok(())
        },
    )
    .map_err(|e| e.unwrap_or(IndexError::Stopped))
}

/// Without the template: `GET /` once at start, so that an untrusted certificate or wrong
/// credentials stop the indexer at once instead of every bulk request retrying. Any other
/// failure (cluster not reachable yet) is only logged: the bulk requests retry as before.
pub fn probe_cluster(client: &EsClient) -> Result<(), IndexError> {
    let err = match client.request_ok("GET", "/", None) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    if let Some(why) = err.fatal_at_start() {
        return Err(IndexError::Start(format!("cluster probe: {why}")));
    }
    tracing::warn!("cluster probe GET /: {err}; going on (bulk requests retry)");
    Ok(())
}

/// What the run did, for the closing log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct IndexReport {
    pub consumed: u64,
    pub indexed: u64,
    pub already_indexed: u64,
    pub dead_lettered: u64,
    pub retried: u64,
    pub bulk_requests: u64,
}

/// A running indexer.
pub struct Indexer {
    metrics: Arc<IndexMetrics>,
    consumers: Vec<JoinHandle<()>>,
    senders: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Indexer {
    /// Validates, installs the template, opens the dead-letter producer, starts the senders and
    /// the consumer threads. Returns once they run; `stop` ends them.
    pub fn start(settings: IndexSettings, stop: Arc<AtomicBool>) -> Result<Indexer, IndexError> {
        settings.validate()?;
        let settings = Arc::new(settings);
        let metrics = Arc::new(IndexMetrics::new(&settings.topics));
        let client = EsClient::new(&settings.es, settings.in_flight)?;
        if settings.template.install {
            install_template(&client, &settings, &stop)?;
        } else {
            probe_cluster(&client)?;
        }
        // A TLS or SASL failure towards Kafka stops the start, named; brokers that do not
        // answer yet only get a warning (the consumers wait for them, as before).
        let brokers = &settings.brokers;
        match probe_brokers(brokers, &settings.kafka_properties, Duration::from_secs(10)) {
            BrokerProbe::Answered => {}
            BrokerProbe::Security(why) => {
                return Err(IndexError::KafkaStart(format!("brokers {brokers}: {why}")))
            }
            BrokerProbe::NoAnswer(why) => tracing::warn!(
                "kafka: brokers {brokers} did not answer within 10 s ({why}); going on"
            ),
        }
        let enricher = match &settings.enrich {
            Some(e) => Some(Arc::new(Enricher::load(e)?)),
            None => None,
        };
        let dlq = Arc::new(DeadLetterProducer::new(
            &settings.brokers,
            &settings.dead_letter_topic,
            &settings.kafka_properties,
        )?);
        let abandon = Arc::new(AtomicBool::new(false));
        let ctx = Arc::new(SenderCtx {
            client,
            dlq,
            metrics: metrics.clone(),
            settings: settings.clone(),
            abandon: abandon.clone(),
        });
        let (jobs_tx, jobs_rx) = crossbeam_channel::bounded(settings.in_flight);
        let mut senders = Vec::new();
        for i in 0..settings.in_flight {
            let (ctx, rx) = (ctx.clone(), jobs_rx.clone());
            senders.push(
                std::thread::Builder::new()
                    .name(format!("ff-bulk-{i}"))
                    .spawn(move || sink::sender_loop(ctx, rx, i))?,
            );
        }
        drop(jobs_rx);
        let mut consumers = Vec::new();
        for i in 0..settings.threads {
            let c = ConsumerLoop::new(
                settings.clone(),
                metrics.clone(),
                jobs_tx.clone(),
                enricher.clone(),
                stop.clone(),
                abandon.clone(),
                i,
            )?;
            consumers.push(
                std::thread::Builder::new()
                    .name(format!("ff-consume-{i}"))
                    .spawn(move || c.run())?,
            );
        }
        drop(jobs_tx);
        metrics.ready.store(true, Ordering::Relaxed);
        Ok(Indexer {
            metrics,
            consumers,
            senders,
            stop,
        })
    }

    pub fn metrics(&self) -> Arc<IndexMetrics> {
        self.metrics.clone()
    }

    /// Waits for `stop`, then for the threads to deliver, commit and end.
    pub fn run_until_stopped(self) -> IndexReport {
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.metrics.stopping.store(true, Ordering::Relaxed);
        for h in self.consumers {
            let _ = h.join();
        }
        for h in self.senders {
            let _ = h.join();
        }
        let m = &self.metrics;
        let ld = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        IndexReport {
            consumed: m.consumed_total(),
            indexed: ld(&m.indexed),
            already_indexed: ld(&m.already_indexed),
            dead_lettered: ld(&m.dead_lettered),
            retried: ld(&m.retried),
            bulk_requests: ld(&m.bulk_requests),
        }
    }
}
