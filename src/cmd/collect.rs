use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use ferroflow_codecs::json::EncodeOptions;
use ferroflow_codecs::DecoderConfig;
use ferroflow_engine::collector::{
    Collector, CollectorSettings, InputSource, RingFull, WorkerSpec, XdpMode,
};
use ferroflow_engine::sink::file::LinesFactory;
use ferroflow_engine::sink::SinkFactory;
use ferroflow_tuning::{Config, CorePlan, FullPolicy, InputKind, OutputKind, Topology};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Configuration file (TOML; see ferroflow.example.toml). Environment variables
    /// FERROFLOW_<SECTION>_<KEY> override it, these flags override both.
    #[arg(long, env = "FERROFLOW_CONFIG")]
    config: Option<PathBuf>,
    /// Address to receive on (repeatable): 0.0.0.0:2055, [::]:4739, 127.0.0.1:9995...
    #[arg(long = "listen", value_name = "ADDR")]
    listen: Vec<SocketAddr>,
    /// Where documents go: stdout, file:PATH, kafka, elasticsearch.
    #[arg(long, value_name = "stdout|file:PATH|kafka|elasticsearch")]
    output: Option<String>,
    /// Kafka bootstrap servers, HOST:PORT,... (with --output kafka).
    #[arg(long, value_name = "HOST:PORT,...")]
    kafka_brokers: Option<String>,
    /// Elasticsearch / OpenSearch URLs, URL,... (with --output elasticsearch).
    #[arg(long, value_name = "URL,...")]
    es_url: Option<String>,
    /// Index name prefix (with --output elasticsearch): <prefix>-<protocol>-YYYY.MM.DD.
    #[arg(long, value_name = "PREFIX")]
    es_index_prefix: Option<String>,
    /// Prometheus metrics and /healthz, /readyz on this address ("off" to disable).
    #[arg(long, value_name = "ADDR|off")]
    metrics: Option<String>,
    /// Number of workers (default: from the core plan).
    #[arg(long)]
    workers: Option<usize>,
    /// Separate receive and decode threads per worker, joined by a ring.
    #[arg(long)]
    split: bool,
    /// Do not pin threads to cores.
    #[arg(long)]
    no_pin: bool,
    /// Multiply bytes and packets by the sampling rate.
    #[arg(long)]
    scale_sampling: bool,
    /// Persist templates and sampling state in this file (loaded at start).
    #[arg(long)]
    template_store: Option<PathBuf>,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long)]
    log_level: Option<String>,
    /// Packet source: udp (default, recvmmsg), af_packet (TPACKET_V3 ring) or af_xdp (kernel
    /// bypass); the last two need --interface and root. See docs/bypass.md.
    #[arg(long, value_enum)]
    input: Option<InputArg>,
    /// Interface for --input af_packet / af_xdp.
    #[arg(long, value_name = "IFACE")]
    interface: Option<String>,
    /// NIC receive queue for --input af_xdp (default: every queue).
    #[arg(long)]
    queue: Option<u32>,
    /// Where the XDP program runs for --input af_xdp: auto (native, else skb), native, skb.
    #[arg(long, value_enum, default_value = "auto")]
    xdp_mode: XdpModeArg,
}

/// `--input`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum InputArg {
    Udp,
    #[value(name = "af_packet")]
    AfPacket,
    #[value(name = "af_xdp")]
    AfXdp,
}

/// `--xdp-mode`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum XdpModeArg {
    Auto,
    Native,
    Skb,
}

/// The configuration after the file, the environment and the flags.
fn resolve(a: &Args) -> anyhow::Result<Config> {
    let mut cfg = Config::from_sources(a.config.as_deref(), std::env::vars())?;
    if !a.listen.is_empty() {
        cfg.collector.listen = a.listen.clone();
    }
    if let Some(o) = &a.output {
        match o.as_str() {
            "stdout" => cfg.output.kind = OutputKind::Stdout,
            "kafka" => cfg.output.kind = OutputKind::Kafka,
            "elasticsearch" => cfg.output.kind = OutputKind::Elasticsearch,
            s if s.starts_with("file:") => {
                cfg.output.kind = OutputKind::File;
                cfg.output.path = Some(PathBuf::from(&s[5..]));
            }
            s => bail!("--output {s}: expected stdout, file:PATH, kafka or elasticsearch"),
        }
    }
    if let Some(b) = &a.kafka_brokers {
        cfg.output.kafka.brokers = b
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    if let Some(u) = &a.es_url {
        cfg.output.elasticsearch.urls = u
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    if let Some(p) = &a.es_index_prefix {
        cfg.output.elasticsearch.index_prefix = p.clone();
    }
    if let Some(w) = a.workers {
        cfg.collector.workers = Some(w);
    }
    if a.split {
        cfg.collector.split_receive_decode = true;
    }
    if a.no_pin {
        cfg.cpu.pinning = false;
    }
    if a.scale_sampling {
        cfg.decoder.scale_sampling = true;
    }
    if let Some(p) = &a.template_store {
        cfg.decoder.template_store = Some(p.clone());
    }
    if let Some(l) = &a.log_level {
        cfg.log.level = l.clone();
    }
    if let Some(i) = a.input {
        cfg.collector.input = match i {
            InputArg::Udp => InputKind::Udp,
            InputArg::AfPacket => InputKind::AfPacket,
            InputArg::AfXdp => InputKind::AfXdp,
        };
    }
    if let Some(i) = &a.interface {
        cfg.collector.interface = Some(i.clone());
    }
    if let Some(q) = a.queue {
        cfg.collector.queue = Some(q);
    }
    cfg.validate()?;
    Ok(cfg)
}

fn input_source(cfg: &Config, xdp_mode: XdpModeArg) -> anyhow::Result<InputSource> {
    let c = &cfg.collector;
    let interface = || c.interface.clone().context("--input needs --interface");
    Ok(match c.input {
        InputKind::Udp => InputSource::Udp,
        InputKind::AfPacket => InputSource::AfPacket {
            interface: interface()?,
        },
        InputKind::AfXdp => InputSource::AfXdp {
            interface: interface()?,
            queue: c.queue,
            mode: match xdp_mode {
                XdpModeArg::Auto => XdpMode::Auto,
                XdpModeArg::Native => XdpMode::Native,
                XdpModeArg::Skb => XdpMode::Skb,
            },
        },
    })
}

fn settings(cfg: &Config, plan: &CorePlan) -> CollectorSettings {
    let d = &cfg.decoder;
    let workers = plan
        .workers
        .iter()
        .map(|w| WorkerSpec {
            recv_core: if plan.pinned { w.recv_core } else { None },
            decode_core: if plan.pinned { w.decode_core } else { None },
        })
        .collect();
    let allow = if d.allow_exporters.is_empty() {
        None
    } else {
        let list = d.allow_exporters.clone();
        Some(Arc::new(move |ip| list.contains(ip)) as ferroflow_engine::collector::AllowFn)
    };
    CollectorSettings {
        listen: cfg.collector.listen.clone(),
        workers,
        split: plan.split,
        ring_capacity: cfg.collector.ring_capacity,
        ring_full: match cfg.collector.ring_full {
            FullPolicy::Block => RingFull::Block,
            FullPolicy::Drop => RingFull::Drop,
        },
        recv_batch: cfg.collector.recv_batch,
        recv_coalesce: std::time::Duration::from_micros(cfg.collector.recv_coalesce_us),
        slot_bytes: 9216,
        socket_rcvbuf_bytes: Some(cfg.collector.socket_rcvbuf_bytes as usize),
        decoder: DecoderConfig {
            scale_sampling: d.scale_sampling,
            template_timeout_ms: d.template_timeout_secs * 1000,
            max_templates_per_exporter: d.max_templates_per_exporter,
            max_exporters: d.max_exporters,
            max_exporters_per_ip: d.max_exporters_per_ip,
            max_domains_per_exporter: d.max_domains_per_exporter,
            max_state_bytes_per_exporter: d.max_state_bytes_per_exporter as usize,
            max_state_bytes_total: d.max_state_bytes_total as usize,
            max_held_bytes_per_exporter: d.max_held_bytes_per_exporter as usize,
            max_held_bytes_total: d.max_held_bytes_total as usize,
            max_hold_ms: d.max_hold_secs * 1000,
            max_records_per_datagram: d.max_records_per_datagram,
            max_past_ms: d.max_past_secs.saturating_mul(1000),
            max_future_ms: d.max_future_secs.saturating_mul(1000),
        },
        encode: EncodeOptions::default(),
        template_store: d.template_store.clone(),
        template_store_interval: Duration::from_secs(30),
        allow,
        close_timeout: Duration::from_secs(30),
        input: InputSource::Udp,
    }
}

fn sink_factory(cfg: &Config) -> anyhow::Result<Arc<dyn SinkFactory>> {
    Ok(match cfg.output.kind {
        OutputKind::Stdout => Arc::new(LinesFactory::stdout()),
        OutputKind::File => {
            let path = cfg
                .output
                .path
                .as_ref()
                .context("output kind file needs output.path")?;
            Arc::new(LinesFactory::file(path)?)
        }
        OutputKind::Kafka => {
            use ferroflow_engine::sink::kafka::{KafkaSinkFactory, KafkaSinkSettings};
            let f = KafkaSinkFactory::connect(KafkaSinkSettings::from_config(&cfg.output.kafka))
                .context("--output kafka")?;
            // A worker blocked on a full producer queue gives up after a bounded wait once a
            // stop signal came (the flag the collector's own handlers set is not passed here).
            for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(sig, f.stopping())
                    .context("installing signal handlers")?;
            }
            Arc::new(f)
        }
        OutputKind::Elasticsearch => {
            use ferroflow_engine::sink::elasticsearch::{EsSinkFactory, EsSinkSettings};
            let s = EsSinkSettings::from_config(&cfg.output.elasticsearch);
            tracing::info!(
                "writing to {} as {}-<protocol>-YYYY.MM.DD",
                s.es.urls.join(","),
                s.index_prefix
            );
            let f = EsSinkFactory::connect(s).context("--output elasticsearch")?;
            // a worker blocked on a full queue gives up after a bounded wait once a stop
            // signal came
            for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(sig, f.stopping())
                    .context("installing signal handlers")?;
            }
            Arc::new(f)
        }
    })
}

fn collect(a: Args) -> anyhow::Result<()> {
    let cfg = resolve(&a)?;
    super::init_logging(&cfg.log.level);
    let topo = Topology::read(std::path::Path::new("/"));
    let plan = CorePlan::recommend(&topo, &cfg);
    for line in plan.explain() {
        tracing::info!("core plan: {line}");
    }
    let mut settings = settings(&cfg, &plan);
    settings.input = input_source(&cfg, a.xdp_mode)?;
    if settings.allow.is_none() {
        tracing::warn!(
            "no exporter allow-list (decoder.allow_exporters): accepting datagrams from any source"
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    let factory = sink_factory(&cfg)?;
    let collector = Collector::start(settings, factory, stop.clone())?;
    let mut seen = std::collections::HashSet::new();
    for b in &collector.bound {
        if seen.insert(b.addr) {
            tracing::info!("listening on {} ({} workers)", b.addr, plan.workers.len());
        }
        if b.rcvbuf_short {
            tracing::warn!(
                "worker {} {}: SO_RCVBUF {} requested, kernel granted {} (raise net.core.rmem_max; see `ferroflow tune`)",
                b.worker,
                b.addr,
                b.rcvbuf_requested.unwrap_or(0),
                b.rcvbuf_granted
            );
        }
    }
    let metrics_addr = match a.metrics.as_deref() {
        Some("off") => None,
        Some(s) => Some(
            s.parse::<SocketAddr>()
                .with_context(|| format!("--metrics {s}"))?,
        ),
        None => Some(cfg.metrics.listen),
    };
    let http_stop = Arc::new(AtomicBool::new(false));
    let http = match metrics_addr {
        Some(addr) => {
            let (bound, h) =
                ferroflow_engine::http::serve(addr, collector.metrics(), http_stop.clone())
                    .with_context(|| format!("metrics listener {addr}"))?;
            tracing::info!("metrics on http://{bound}/metrics");
            Some(h)
        }
        None => None,
    };
    let report = collector.run_until_stopped();
    http_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(h) = http {
        let _ = h.join();
    }
    let report = report?;
    let d = &report.decode;
    tracing::info!(
        "stopped: packets={} records={} counter_samples={} delivered={} failed={} dropped={} undelivered={} decode_errors={} template_misses={} socket_drops={} ring_drops={} not_allowed={} templates_saved={}",
        report.packets,
        d.records_total(),
        d.counter_samples,
        report.sink.delivered,
        report.sink.failed,
        report.sink.dropped,
        report.sink.in_flight,
        d.errors_total(),
        d.template_misses,
        report.socket_drops,
        report.ring_drops,
        report.not_allowed,
        report.templates_saved
    );
    if report.sink.failed > 0 || report.sink.in_flight > 0 {
        bail!(
            "{} documents failed and {} were not delivered before the close timeout",
            report.sink.failed,
            report.sink.in_flight
        );
    }
    Ok(())
}

pub fn run(a: Args) -> ExitCode {
    match collect(a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferroflow collect: {e:#}");
            ExitCode::from(1)
        }
    }
}
