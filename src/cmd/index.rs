//! `ferroflow index`: Kafka -> Elasticsearch / OpenSearch. Driven by flags; every flag also
//! reads a `FERROFLOW_INDEX_*` environment variable (shown in `--help`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use ferroflow_engine::index::{
    Auth, BatchLimits, EnrichSettings, EsSettings, IndexSettings, Indexer, RetryPolicy,
    TemplateSettings,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kafka bootstrap servers, HOST:PORT,...
    #[arg(
        long,
        env = "FERROFLOW_INDEX_KAFKA_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    kafka_brokers: String,
    /// Elasticsearch / OpenSearch base URL (repeatable; requests go round-robin).
    #[arg(
        long = "es-url",
        env = "FERROFLOW_INDEX_ES_URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:9200"
    )]
    es_url: Vec<String>,
    /// Topics to consume (comma-separated).
    #[arg(
        long,
        env = "FERROFLOW_INDEX_TOPICS",
        value_delimiter = ',',
        default_value = "netflow,ipfix,sflow"
    )]
    topics: Vec<String>,
    /// Consumer group id.
    #[arg(long, env = "FERROFLOW_INDEX_GROUP", default_value = "ferroflow-index")]
    group: String,
    /// Consumer threads (members of the group).
    #[arg(long, env = "FERROFLOW_INDEX_THREADS", default_value_t = 2)]
    threads: usize,
    /// Index name prefix: documents go to <prefix>-<protocol>-YYYY.MM.DD.
    #[arg(long, env = "FERROFLOW_INDEX_PREFIX", default_value = "ferroflow")]
    index_prefix: String,
    /// Write to data streams <prefix>-<protocol> instead of daily indices.
    #[arg(long, env = "FERROFLOW_INDEX_DATA_STREAMS")]
    data_streams: bool,
    /// Topic for documents the cluster rejects for good (reason in the message headers).
    #[arg(
        long,
        env = "FERROFLOW_INDEX_DEAD_LETTER_TOPIC",
        default_value = "ferroflow-dead-letter"
    )]
    dead_letter_topic: String,
    /// A bulk request holds at most this many documents.
    #[arg(long, env = "FERROFLOW_INDEX_BULK_MAX_DOCS", default_value_t = 5000)]
    bulk_max_docs: usize,
    /// ...and at most about this many bytes (uncompressed).
    #[arg(long, env = "FERROFLOW_INDEX_BULK_MAX_BYTES", default_value_t = 5 * 1024 * 1024)]
    bulk_max_bytes: usize,
    /// ...and waits at most this long for more documents.
    #[arg(long, env = "FERROFLOW_INDEX_BULK_MAX_WAIT_MS", default_value_t = 1000)]
    bulk_max_wait_ms: u64,
    /// Bulk requests in flight at once (sender threads over one keep-alive pool).
    #[arg(long, env = "FERROFLOW_INDEX_IN_FLIGHT", default_value_t = 4)]
    in_flight: usize,
    /// Compress request bodies with gzip.
    #[arg(long, env = "FERROFLOW_INDEX_GZIP")]
    gzip: bool,
    /// Basic-auth user.
    #[arg(long, env = "FERROFLOW_INDEX_ES_USER")]
    es_user: Option<String>,
    /// Basic-auth password.
    #[arg(long, env = "FERROFLOW_INDEX_ES_PASSWORD", hide_env_values = true)]
    es_password: Option<String>,
    /// API key (the base64 `id:key` form Elasticsearch prints as "encoded").
    #[arg(long, env = "FERROFLOW_INDEX_ES_API_KEY", hide_env_values = true)]
    es_api_key: Option<String>,
    /// PEM CA certificate(s) to trust for https:// URLs.
    #[arg(long, env = "FERROFLOW_INDEX_ES_CA")]
    es_ca: Option<PathBuf>,
    /// Whole-request timeout of a bulk request, seconds.
    #[arg(long, env = "FERROFLOW_INDEX_ES_TIMEOUT_SECS", default_value_t = 60)]
    es_timeout_secs: u64,
    /// Enable the filtering stage (protocol / service / TCP flag names, sampling
    /// renormalisation, and the lookups below when given).
    #[arg(long, env = "FERROFLOW_INDEX_ENRICH")]
    enrich: bool,
    /// MaxMind City or Country database (.mmdb), with --enrich.
    #[arg(long, env = "FERROFLOW_INDEX_GEOIP_DB", requires = "enrich")]
    geoip_db: Option<PathBuf>,
    /// MaxMind ASN database (.mmdb), with --enrich.
    #[arg(long, env = "FERROFLOW_INDEX_ASN_DB", requires = "enrich")]
    asn_db: Option<PathBuf>,
    /// JSON file {"<exporter ip>": {"<ifIndex>": "<name>"}}, with --enrich.
    #[arg(long, env = "FERROFLOW_INDEX_INTERFACE_NAMES", requires = "enrich")]
    interface_names: Option<PathBuf>,
    /// With --enrich: do not multiply bytes/packets by the sampling rate.
    #[arg(long, env = "FERROFLOW_INDEX_NO_RENORMALIZE")]
    no_renormalize: bool,
    /// Index template: primary shards.
    #[arg(long, env = "FERROFLOW_INDEX_SHARDS", default_value_t = 1)]
    shards: u32,
    /// Index template: replicas.
    #[arg(long, env = "FERROFLOW_INDEX_REPLICAS", default_value_t = 1)]
    replicas: u32,
    /// Index template: refresh interval.
    #[arg(long, env = "FERROFLOW_INDEX_REFRESH_INTERVAL", default_value = "10s")]
    refresh_interval: String,
    /// Index template: codec (default or best_compression).
    #[arg(
        long,
        env = "FERROFLOW_INDEX_CODEC",
        default_value = "best_compression"
    )]
    codec: String,
    /// Do not install the index template at start.
    #[arg(long, env = "FERROFLOW_INDEX_NO_TEMPLATE")]
    no_template: bool,
    /// Extra librdkafka property NAME=VALUE for the consumer and the dead-letter producer
    /// (repeatable).
    #[arg(long = "kafka-property", value_name = "NAME=VALUE")]
    kafka_property: Vec<String>,
    /// Retry backoff: first wait, ms (doubles up to --retry-max-ms).
    #[arg(long, env = "FERROFLOW_INDEX_RETRY_INITIAL_MS", default_value_t = 100)]
    retry_initial_ms: u64,
    /// Retry backoff: longest wait, ms.
    #[arg(long, env = "FERROFLOW_INDEX_RETRY_MAX_MS", default_value_t = 10_000)]
    retry_max_ms: u64,
    /// On SIGTERM, keep delivering for at most this long; what is left is read again next time.
    #[arg(long, env = "FERROFLOW_INDEX_CLOSE_TIMEOUT_SECS", default_value_t = 30)]
    close_timeout_secs: u64,
    /// Prometheus metrics, /healthz and /readyz on this address ("off" to disable).
    #[arg(
        long,
        env = "FERROFLOW_INDEX_METRICS",
        default_value = "127.0.0.1:9103"
    )]
    metrics: String,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long, env = "FERROFLOW_INDEX_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

fn settings(a: &Args) -> anyhow::Result<IndexSettings> {
    let auth = match (&a.es_user, &a.es_password, &a.es_api_key) {
        (_, _, Some(_)) if a.es_user.is_some() => {
            bail!("--es-api-key and --es-user are exclusive")
        }
        (None, None, Some(k)) => Auth::ApiKey(k.clone()),
        (Some(u), p, None) => Auth::Basic {
            user: u.clone(),
            password: p.clone().unwrap_or_default(),
        },
        (None, Some(_), _) => bail!("--es-password needs --es-user"),
        (None, None, None) => Auth::None,
        _ => bail!("--es-api-key and --es-user are exclusive"),
    };
    let mut kafka_properties = Vec::new();
    for p in &a.kafka_property {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--kafka-property {p:?}: expected NAME=VALUE"))?;
        kafka_properties.push((k.trim().to_string(), v.trim().to_string()));
    }
    let s = IndexSettings {
        brokers: a.kafka_brokers.clone(),
        topics: a
            .topics
            .iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        group: a.group.clone(),
        threads: a.threads,
        kafka_properties,
        es: EsSettings {
            urls: a.es_url.clone(),
            auth,
            ca: a.es_ca.clone(),
            gzip: a.gzip,
            timeout: Duration::from_secs(a.es_timeout_secs.max(1)),
        },
        index_prefix: a.index_prefix.clone(),
        data_streams: a.data_streams,
        dead_letter_topic: a.dead_letter_topic.clone(),
        batch: BatchLimits {
            max_docs: a.bulk_max_docs,
            max_bytes: a.bulk_max_bytes,
            max_wait: Duration::from_millis(a.bulk_max_wait_ms),
        },
        in_flight: a.in_flight,
        retry: RetryPolicy {
            initial: Duration::from_millis(a.retry_initial_ms),
            max: Duration::from_millis(a.retry_max_ms),
        },
        template: TemplateSettings {
            install: !a.no_template,
            shards: a.shards,
            replicas: a.replicas,
            refresh_interval: a.refresh_interval.clone(),
            codec: a.codec.clone(),
        },
        enrich: a.enrich.then(|| EnrichSettings {
            geoip_db: a.geoip_db.clone(),
            asn_db: a.asn_db.clone(),
            interface_names: a.interface_names.clone(),
            renormalize_sampling: !a.no_renormalize,
        }),
        close_timeout: Duration::from_secs(a.close_timeout_secs),
    };
    s.validate()?;
    Ok(s)
}

fn index(a: Args) -> anyhow::Result<()> {
    super::init_logging(&a.log_level);
    let s = settings(&a)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    tracing::info!(
        "consuming {} from {} (group {}, {} threads) into {} as {}-<protocol>{}",
        s.topics.join(","),
        s.brokers,
        s.group,
        s.threads,
        s.es.urls.join(","),
        s.index_prefix,
        if s.data_streams { "" } else { "-YYYY.MM.DD" }
    );
    let indexer = Indexer::start(s, stop.clone())?;
    let http_stop = Arc::new(AtomicBool::new(false));
    let http = match a.metrics.as_str() {
        "off" => None,
        m => {
            let addr: SocketAddr = m.parse().with_context(|| format!("--metrics {m}"))?;
            let (bound, h) =
                ferroflow_engine::index::metrics::serve(addr, indexer.metrics(), http_stop.clone())
                    .with_context(|| format!("metrics listener {addr}"))?;
            tracing::info!("metrics on http://{bound}/metrics");
            Some(h)
        }
    };
    let r = indexer.run_until_stopped();
    http_stop.store(true, Ordering::Relaxed);
    if let Some(h) = http {
        let _ = h.join();
    }
    tracing::info!(
        "stopped: consumed={} indexed={} already_indexed={} dead_lettered={} retried={} bulk_requests={}",
        r.consumed,
        r.indexed,
        r.already_indexed,
        r.dead_lettered,
        r.retried,
        r.bulk_requests
    );
    Ok(())
}

pub fn run(a: Args) -> ExitCode {
    match index(a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferroflow index: {}", super::error_chain(&e));
            ExitCode::from(1)
        }
    }
}
