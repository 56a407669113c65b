//! The configuration model: one TOML file, then `FERROFLOW_<SECTION>_<KEY>` environment
//! variables, then command-line flags (applied by the binary), then [`Config::validate`].
//!
//! Every field has a production default, so an empty file is a working configuration: listen on
//! 0.0.0.0:2055 (NetFlow/IPFIX), 0.0.0.0:4739 (IPFIX) and 0.0.0.0:6343 (sFlow), one pinned
//! worker per suitable physical core, JSON lines on stdout. Unknown keys are errors.
//!
//! `docs/configuration.md` and `ferroflow.example.toml` at the repository root describe the same
//! fields for users; a test keeps the example in step with [`Config::default`].

mod env;
mod serde_helpers;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cidr::AllowList;
use crate::cpuset::CpuSet;

pub use env::{env_var_name, CONFIG_KEYS, ENV_PREFIX};

/// 1 MiB in bytes.
pub const MIB: u64 = 1024 * 1024;

/// Why a configuration could not be loaded or is not acceptable. Every variant names the field
/// (or file, or variable) and the value at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key, or a value of the wrong type. The message
    /// comes from the TOML parser and shows the line and the key.
    #[error("config {origin}: {message}")]
    Parse {
        /// The file name, or `<string>`.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// A field has a value outside what the collector accepts.
    #[error("invalid {field} = {value}: {reason}")]
    Invalid {
        /// Dotted field name, e.g. `collector.recv_batch`.
        field: String,
        /// The offending value as written.
        value: String,
        /// What is expected instead.
        reason: String,
    },
    /// An environment override could not be applied.
    #[error("environment variable {var}={value:?}: {reason}")]
    Env {
        /// The variable name.
        var: String,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

/// The whole configuration (`ferroflow.toml`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[collector]`: sockets, workers, batches, rings.
    pub collector: CollectorConfig,
    /// `[decoder]`: template cache, held records, exporter allow-list.
    pub decoder: DecoderConfig,
    /// `[output]`: where the JSON documents go.
    pub output: OutputConfig,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// `[log]`: log level.
    pub log: LogConfig,
    /// `[cpu]`: pinning and core selection.
    pub cpu: CpuConfig,
}

impl Config {
    /// Parses TOML text and validates the result. Environment overrides are not applied.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let config = Self::parse_toml(text, "<string>")?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a TOML file. Environment overrides are not applied.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let config = Self::read_file(path)?;
        config.validate()?;
        Ok(config)
    }

    /// The usual start-up sequence without the command line: the file (or the defaults when
    /// `path` is `None`), then the `FERROFLOW_*` overrides from `env` (pass `std::env::vars()`),
    /// then validation. The binary applies its flags to the result and calls
    /// [`Config::validate`] again.
    pub fn from_sources<I, K, V>(path: Option<&Path>, env: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = match path {
            Some(p) => Self::read_file(p)?,
            None => Config::default(),
        };
        config.apply_env_overrides(env)?;
        config.validate()?;
        Ok(config)
    }

    /// Applies `FERROFLOW_<SECTION>_<KEY>` overrides from `vars` (any iterator of name/value
    /// pairs, so tests need not touch the process environment) and returns the dotted names of
    /// the fields it set. Does not validate: call [`Config::validate`] after all overrides.
    ///
    /// * Variable names are the dotted field names with `.` replaced by `_`, upper-cased and
    ///   prefixed with `FERROFLOW_`: `FERROFLOW_OUTPUT_KAFKA_BROKERS`,
    ///   `FERROFLOW_COLLECTOR_WORKERS`. [`CONFIG_KEYS`] lists the fields.
    /// * Lists (`listen`, `brokers`, `allow_exporters`, `urls`) are comma-separated; `cpu.cores`
    ///   takes a CPU list (`2-5,8`); booleans take `true/false/1/0/yes/no/on/off`; optional
    ///   fields are cleared by an empty value (and `workers`, `decode_threads` by `auto`).
    /// * `FERROFLOW_OUTPUT_KAFKA_PROPERTIES_<NAME>` sets the librdkafka property `<name>` with
    ///   `_` read as `.`: `FERROFLOW_OUTPUT_KAFKA_PROPERTIES_LINGER_MS=10` sets `linger.ms`.
    /// * An unknown key under a known section (`FERROFLOW_COLLECTOR_WORKRES`) is an error; other
    ///   `FERROFLOW_*` variables (such as `FERROFLOW_CONFIG`, read by the binary) are ignored.
    pub fn apply_env_overrides<I, K, V>(&mut self, vars: I) -> Result<Vec<String>, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        env::apply(self, vars)
    }

    /// Checks every field; the error names the first bad field and its value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::validate(self)
    }

    fn read_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_toml(&text, &path.display().to_string())
    }

    fn parse_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// The configuration as TOML (every field that has a value; unset optional fields are
    /// left out).
    pub fn to_toml_string(&self) -> String {
        // Serializing plain structs of strings, numbers, tables and arrays cannot fail.
        toml::to_string(self).unwrap_or_default()
    }
}

/// What to do when a queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FullPolicy {
    /// Wait for room (back-pressure): nothing is lost inside the collector; the kernel socket
    /// buffer absorbs the wait and counts its own drops.
    #[default]
    Block,
    /// Drop the newest item and count it.
    Drop,
}

/// How packets reach the workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// SO_REUSEPORT UDP sockets read with `recvmmsg` (the default; works everywhere).
    #[default]
    Udp,
    /// AF_XDP kernel bypass on `collector.interface` / `collector.queue`.
    AfXdp,
    /// AF_PACKET (TPACKET_V3) capture on `collector.interface`.
    AfPacket,
}

/// Where the JSON documents go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// JSON lines on standard output.
    #[default]
    Stdout,
    /// JSON lines appended to `output.path`.
    File,
    /// Kafka topics (`[output.kafka]`).
    Kafka,
    /// Elasticsearch / OpenSearch `_bulk` (`[output.elasticsearch]`).
    Elasticsearch,
}

macro_rules! names {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// The name as written in the configuration.
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
names!(FullPolicy { Block => "block", Drop => "drop" });
names!(InputKind { Udp => "udp", AfXdp => "af_xdp", AfPacket => "af_packet" });
names!(OutputKind { Stdout => "stdout", File => "file", Kafka => "kafka", Elasticsearch => "elasticsearch" });

/// `[collector]`: sockets, workers, batches and rings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorConfig {
    /// UDP addresses to listen on. Default `0.0.0.0:2055` (NetFlow v5/v9 and IPFIX),
    /// `0.0.0.0:4739` (IPFIX) and `0.0.0.0:6343` (sFlow). IPv6 as `[::]:2055`. Every worker opens
    /// one SO_REUSEPORT socket per address. The protocol is recognised from the packet, not the
    /// port.
    pub listen: Vec<SocketAddr>,
    /// `false` (default): refuse to start when another socket already holds a listen address
    /// (another collector: SO_REUSEPORT would let this one join its group silently and the
    /// kernel would split exporters between the two). `true`: share on purpose. Only `udp`
    /// input binds ports.
    pub allow_shared_port: bool,
    /// Number of receive/decode workers (one thread each, or a receive and a decode thread each
    /// with `split_receive_decode`). Unset or `"auto"`: one per suitable core of the core plan
    /// (see `ferroflow tune`).
    #[serde(
        deserialize_with = "serde_helpers::auto_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub workers: Option<usize>,
    /// `false` (default): each worker thread receives and decodes its own packets (best cache
    /// locality). `true`: receive threads hand batches over a ring to separate decode threads,
    /// which helps when decoding is much more expensive than receiving.
    pub split_receive_decode: bool,
    /// Number of decode threads when `split_receive_decode = true`. Unset or `"auto"`: as many
    /// as `workers`. Only allowed with `split_receive_decode = true`.
    #[serde(
        deserialize_with = "serde_helpers::auto_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub decode_threads: Option<usize>,
    /// Datagrams asked for per `recvmmsg` call (1..=1024). Default 64.
    pub recv_batch: usize,
    /// Receive coalescing, in microseconds (0..=10000): while traffic flows, a worker that
    /// has emptied its sockets sleeps this long before reading again instead of waking up
    /// for every datagram, so that it reads fuller batches; adds up to this much latency.
    /// 0: wake up for every datagram (epoll). Default 0.
    pub recv_coalesce_us: u64,
    /// SO_RCVBUF asked for on each socket, in bytes (an integer or a string like `"32MiB"`).
    /// Default 32 MiB. The kernel caps it at `net.core.rmem_max` unless the collector may use
    /// SO_RCVBUFFORCE; `ferroflow tune` checks the sysctl.
    #[serde(deserialize_with = "serde_helpers::byte_size")]
    pub socket_rcvbuf_bytes: u64,
    /// Capacity, in batches, of each ring between stages (receive -> decode, decode -> sink).
    /// Default 1024.
    pub ring_capacity: usize,
    /// What a stage does when the ring after it is full: `block` (default) or `drop` (counted).
    pub ring_full: FullPolicy,
    /// Packet source: `udp` (default, recvmmsg), `af_xdp` or `af_packet`.
    pub input: InputKind,
    /// Network interface for `af_xdp` / `af_packet` (required there); also tells
    /// `ferroflow tune` which NIC's IRQs and NUMA node to plan around. Unset: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// NIC receive queue to bind for `af_xdp`. Unset: one queue per worker, starting at 0.
    /// Ignored by the other inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<u32>,
}

/// The default listen addresses: NetFlow/IPFIX on 2055, IPFIX on 4739, sFlow on 6343.
pub fn default_listen() -> Vec<SocketAddr> {
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    vec![
        SocketAddr::new(any, 2055),
        SocketAddr::new(any, 4739),
        SocketAddr::new(any, 6343),
    ]
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            listen: default_listen(),
            allow_shared_port: false,
            workers: None,
            split_receive_decode: false,
            decode_threads: None,
            recv_batch: 64,
            recv_coalesce_us: 0,
            socket_rcvbuf_bytes: 32 * MIB,
            ring_capacity: 1024,
            ring_full: FullPolicy::Block,
            input: InputKind::Udp,
            interface: None,
            queue: None,
        }
    }
}

/// `[decoder]`: template cache, records held for a missing template, exporter allow-list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecoderConfig {
    /// Multiply byte and packet counters by the exporter's sampling interval (from the sFlow
    /// sample or the NetFlow v9 / IPFIX sampling options). Default `false`: counters as sent; the
    /// interval is in the document either way.
    pub scale_sampling: bool,
    /// Forget a NetFlow v9 / IPFIX template not refreshed for this many seconds. Default 1800.
    pub template_timeout_secs: u64,
    /// Templates kept per exporter (all observation domains together). Default 1024.
    pub max_templates_per_exporter: usize,
    /// Exporters tracked per worker (templates, held records, sequence numbers). Default 10000.
    /// Exporters that delivered records in two datagrams are protected (up to three quarters
    /// of this) from eviction by newcomers: a flood of spoofed sources churns the rest.
    pub max_exporters: usize,
    /// Exporters tracked per IP address (one per UDP source port) per worker; a new port over
    /// this evicts that address's own oldest entry, never another address's. Default 64.
    pub max_exporters_per_ip: usize,
    /// Per-domain states (sequence numbers, sampling tables, system init time, by
    /// observation domain / source id / engine / sFlow sub-agent) kept per exporter; the least
    /// recently seen is evicted beyond this, and one not seen for `template_timeout_secs`
    /// expires. Default 64.
    pub max_domains_per_exporter: usize,
    /// Bytes of state one exporter may hold per worker: its compiled templates (their heap
    /// size as measured, many times their wire size) and its per-domain state; the oldest
    /// templates, then domains, are evicted beyond this (bytes or a string like `"4MiB"`).
    /// Default 4 MiB.
    #[serde(deserialize_with = "serde_helpers::byte_size")]
    pub max_state_bytes_per_exporter: u64,
    /// Bytes of that state per worker, all exporters together; the least recently seen
    /// exporters (newcomers before protected ones) are evicted beyond this. Default 32 MiB.
    #[serde(deserialize_with = "serde_helpers::byte_size")]
    pub max_state_bytes_total: u64,
    /// Bytes of data records held per exporter while their template is missing (bytes or a
    /// string like `"1MiB"`). Default 1 MiB. `0` disables holding.
    #[serde(deserialize_with = "serde_helpers::byte_size")]
    pub max_held_bytes_per_exporter: u64,
    /// Bytes of held data records per worker, all exporters together. Default 64 MiB.
    #[serde(deserialize_with = "serde_helpers::byte_size")]
    pub max_held_bytes_total: u64,
    /// Seconds a held record waits for its template before it is dropped (and counted).
    /// Default 600. `0` disables holding.
    pub max_hold_secs: u64,
    /// Records (flows, counter samples, options records) taken from one datagram, held
    /// records it releases included; the rest is skipped and the datagram counted. Default
    /// 1024 (a jumbo datagram of 16-byte records is 576).
    pub max_records_per_datagram: usize,
    /// A record whose own time (flow end, else start, else export time) is more than this
    /// many seconds before the receive time gets the receive time as `@timestamp`, daily
    /// index and Kafka timestamp (the original stays in `netflow.original_timestamp`).
    /// Default 259200 (3 days). `0`: no bound.
    pub max_past_secs: u64,
    /// The same, for a time more than this many seconds after the receive time. Default 300.
    /// `0`: no bound.
    pub max_future_secs: u64,
    /// File where templates are persisted across restarts and shared between workers, e.g.
    /// `/var/lib/ferroflow/templates.json`. Unset: templates live in memory only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_store: Option<PathBuf>,
    /// Exporters allowed to send, as CIDR networks (`["10.0.0.0/8", "2001:db8::/32"]`; a bare
    /// address is a host). Packets from other sources are dropped and counted. Default empty:
    /// every exporter is allowed.
    pub allow_exporters: AllowList,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            scale_sampling: false,
            template_timeout_secs: 1800,
            max_templates_per_exporter: 1024,
            max_exporters: 10_000,
            max_exporters_per_ip: 64,
            max_domains_per_exporter: 64,
            max_state_bytes_per_exporter: 4 * MIB,
            max_state_bytes_total: 32 * MIB,
            max_held_bytes_per_exporter: MIB,
            max_held_bytes_total: 64 * MIB,
            max_hold_secs: 600,
            max_records_per_datagram: 1024,
            max_past_secs: 3 * 86_400,
            max_future_secs: 300,
            template_store: None,
            allow_exporters: AllowList::default(),
        }
    }
}

/// `[output]`: where the JSON documents go.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    /// `stdout` (default), `file`, `kafka` or `elasticsearch`.
    pub kind: OutputKind,
    /// File to append JSON lines to; required when `kind = "file"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// `[output.kafka]`, used when `kind = "kafka"`.
    pub kafka: KafkaConfig,
    /// `[output.elasticsearch]`, used when `kind = "elasticsearch"`.
    pub elasticsearch: ElasticsearchConfig,
}

/// `[output.kafka]`: the producer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers as `host:port` (a list, or one comma-separated string). Default
    /// `127.0.0.1:9092`. Becomes librdkafka's `bootstrap.servers`.
    #[serde(deserialize_with = "serde_helpers::string_list")]
    pub brokers: Vec<String>,
    /// Topic per protocol (`[output.kafka.topics]`).
    pub topics: KafkaTopics,
    /// What a worker does when its producer's local queue is full: `block` (default: wait and
    /// retry, back-pressure) or `drop` (count and go on).
    pub queue_full: FullPolicy,
    /// librdkafka properties passed through verbatim (`[output.kafka.properties]`; quote the
    /// names: `"linger.ms" = "10"`). They override the collector's defaults, see
    /// [`kafka_default_properties`]. `bootstrap.servers` is not allowed here: use `brokers`.
    #[serde(deserialize_with = "serde_helpers::properties")]
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: vec!["127.0.0.1:9092".to_string()],
            topics: KafkaTopics::default(),
            queue_full: FullPolicy::Block,
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// `brokers` joined with commas, as `bootstrap.servers` takes them.
    pub fn bootstrap_servers(&self) -> String {
        self.brokers.join(",")
    }

    /// Every property the producer is created with: the collector's defaults, then the user's
    /// `properties` (user wins), then `bootstrap.servers` from `brokers`.
    pub fn client_properties(&self) -> BTreeMap<String, String> {
        let mut p = kafka_default_properties(&self.properties);
        p.insert("bootstrap.servers".to_string(), self.bootstrap_servers());
        p
    }
}

/// The librdkafka producer properties the collector sets unless the user sets them:
/// durable (`acks=all`, idempotent), batched and compressed for throughput, with a large local
/// queue and five minutes for a message to be delivered.
pub const KAFKA_DEFAULT_PROPERTIES: &[(&str, &str)] = &[
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("compression.type", "lz4"),
    ("linger.ms", "5"),
    ("batch.size", "1000000"),
    ("queue.buffering.max.kbytes", "1048576"),
    ("message.timeout.ms", "300000"),
    ("retry.backoff.ms", "100"),
];

/// [`KAFKA_DEFAULT_PROPERTIES`] merged with `user`'s properties; where both set a name, the
/// user's value wins.
pub fn kafka_default_properties(user: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut merged: BTreeMap<String, String> = KAFKA_DEFAULT_PROPERTIES
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in user {
        merged.insert(k.clone(), v.clone());
    }
    merged
}

/// `[output.kafka.topics]`: the topic each protocol's documents go to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaTopics {
    /// NetFlow v5. Default `netflow`.
    pub netflow_v5: String,
    /// NetFlow v9. Default `netflow`.
    pub netflow_v9: String,
    /// IPFIX. Default `ipfix`.
    pub ipfix: String,
    /// sFlow v5. Default `sflow`.
    pub sflow: String,
}

impl Default for KafkaTopics {
    fn default() -> Self {
        KafkaTopics {
            netflow_v5: "netflow".to_string(),
            netflow_v9: "netflow".to_string(),
            ipfix: "ipfix".to_string(),
            sflow: "sflow".to_string(),
        }
    }
}

impl KafkaTopics {
    /// `(protocol, topic)` pairs in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("netflow_v5", self.netflow_v5.as_str()),
            ("netflow_v9", self.netflow_v9.as_str()),
            ("ipfix", self.ipfix.as_str()),
            ("sflow", self.sflow.as_str()),
        ]
        .into_iter()
    }
}

/// `[output.elasticsearch]`: direct `_bulk` output (no Kafka).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// Base URLs of the cluster's HTTP endpoints. Default `http://127.0.0.1:9200`.
    #[serde(deserialize_with = "serde_helpers::string_list")]
    pub urls: Vec<String>,
    /// Index name prefix: documents go to `<prefix>-<protocol>-YYYY.MM.DD`. Default `ferroflow`.
    pub index_prefix: String,
    /// HTTP basic authentication user (with `password`).
    pub username: Option<String>,
    /// Password of `username`.
    pub password: Option<String>,
    /// `Authorization: ApiKey <api_key>` (base64 of `id:key`); wins over `username`.
    pub api_key: Option<String>,
    /// PEM file of the CA certificate(s) to trust for `https://` URLs.
    pub ca: Option<PathBuf>,
    /// Gzip request bodies.
    pub gzip: bool,
    /// A worker sends its `_bulk` request at this many documents... Default 5000.
    pub max_docs: usize,
    /// ...or this many bytes (default 5 MiB)...
    pub max_bytes: u64,
    /// ...or when its oldest document waited this long (ms, default 1000).
    pub flush_interval_ms: u64,
    /// When a worker's queue of bulk requests is full: `block` (default, back-pressure) or
    /// `drop` (count and go on).
    pub queue_full: FullPolicy,
    /// Install the index template (mappings) at start. Default true.
    pub install_template: bool,
}

impl Default for ElasticsearchConfig {
    fn default() -> Self {
        ElasticsearchConfig {
            urls: vec!["http://127.0.0.1:9200".to_string()],
            index_prefix: "ferroflow".to_string(),
            username: None,
            password: None,
            api_key: None,
            ca: None,
            gzip: false,
            max_docs: 5000,
            max_bytes: 5 * 1024 * 1024,
            flush_interval_ms: 1000,
            queue_full: FullPolicy::Block,
            install_template: true,
        }
    }
}

/// `[metrics]`: the Prometheus text endpoint (`GET /metrics`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the metrics HTTP listener. Default `127.0.0.1:9102` (loopback only; set
    /// `0.0.0.0:9102` to let a remote Prometheus scrape it).
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9102),
        }
    }
}

/// `[log]`: logging.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info` (default), `debug`, `trace` or `off`, optionally followed by
    /// per-target `target=level` directives as `tracing`'s EnvFilter takes them:
    /// `"info,ferroflow_engine=debug"`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_string(),
        }
    }
}

/// `[cpu]`: thread pinning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CpuConfig {
    /// Pin each worker thread to its core (default `true`). `false`: the scheduler places
    /// threads.
    pub pinning: bool,
    /// Cores for the workers, as a CPU list string (`"2-5,8"`) or an array (`[2, 3, 4]`).
    /// Unset: chosen by the core plan (NIC's NUMA node, physical cores before SMT siblings,
    /// away from the NIC's IRQ cores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cores: Option<CpuSet>,
    /// Keep workers off the cores that service the NIC's receive IRQs and softirq work when
    /// there are enough other cores (default `true`). On a 2-core box this means one worker, on
    /// the core that is not doing the softirq work.
    pub reserve_softirq_core: bool,
}

impl Default for CpuConfig {
    fn default() -> Self {
        CpuConfig {
            pinning: true,
            cores: None,
            reserve_softirq_core: true,
        }
    }
}

#[cfg(test)]
mod tests;
