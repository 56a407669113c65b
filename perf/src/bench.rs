//! The benchmark harness: start a collector (ferroflow or a peer) as a child process, offer it
//! generated traffic at a rate for a while, and measure what came out and what it cost.
//!
//! One trial:
//! 1. start the subject on free loopback ports, in a fresh directory, and wait until ready;
//! 2. read its CPU time (`/proc/<pid>/stat`, children included), the kernel's UDP counters
//!    and (ferroflow) its metrics;
//! 3. run the generator in this process at the offered rate for the duration, printing
//!    progress on stderr once a second;
//! 4. wait until the subject is done with what it received (its counters, or its CPU time,
//!    stand still), read everything again, stop it with SIGTERM and wait for it to exit
//!    (its CPU time is read from its zombie, which includes reaped children);
//! 5. count what it wrote (peers) and compute rates, losses per stage and CPU per flow.
//!
//! Rates are per second of offered traffic (the generator's elapsed time): a flow
//! "indexed" at a rate is a flow the sink acknowledged (ferroflow: `ferroflow_sink_delivered_total`),
//! or that the peer wrote to its output.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ferroflow_engine::metrics::Metric;
use serde::Serialize;

use crate::generate::{self, GenConfig, GenReport, Progress, Rate};
use crate::peers::{self, Peer, PeerKind};
use crate::proc::{self, UdpCounters};
use crate::prom::{http_get, Scrape};
use crate::search::{self, Outcome, SearchParams, System};

/// Where ferroflow's documents go during a bench.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A file in the trial's directory (tmpfs when there is one), emptied once a second.
    File,
    /// `--output kafka` with these brokers.
    Kafka { brokers: String },
}

/// What is measured.
#[derive(Debug, Clone)]
pub enum Subject {
    Ferroflow {
        /// The `ferroflow` binary.
        exe: PathBuf,
        workers: usize,
        split: bool,
        output: Output,
        /// `cpu.cores` for the collector (FERROFLOW_CPU_CORES), e.g. "0".
        cores: Option<String>,
        /// Receive path only: the collector's allow-list names an address no generated
        /// packet comes from, so every datagram is received and counted, never decoded.
        receive_only: bool,
    },
    Peer {
        kind: PeerKind,
        workers: usize,
        /// Run it under `taskset -c <cores>` (e.g. "0").
        cores: Option<String>,
    },
}

impl Subject {
    pub fn name(&self) -> &'static str {
        match self {
            Subject::Ferroflow { .. } => "ferroflow",
            Subject::Peer { kind, .. } => kind.name(),
        }
    }
}

/// A bench run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub subject: Subject,
    /// The generator's settings (target and rate are set per trial).
    pub gen: GenConfig,
    /// Offered packets per second (None: unlimited).
    pub rate: Option<f64>,
    pub duration: Duration,
    /// Search for the highest rate within the loss target instead of one trial.
    pub search: Option<SearchParams>,
    /// Where trial directories are made.
    pub work_dir: PathBuf,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// Kernel-side and collector-side losses of a trial.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stages {
    /// Datagrams the generator sent that the collector did not count as received.
    pub packets_not_received: Option<u64>,
    /// The collector's own count of socket drops (SO_RXQ_OVFL).
    pub socket_drops: Option<u64>,
    /// The kernel's UDP counters over the trial (whole machine).
    pub kernel_udp: UdpCounters,
    pub decode_errors: Option<u64>,
    pub template_misses: Option<u64>,
    pub sequence_gaps: Option<u64>,
    /// Decoded flows the sink did not acknowledge.
    pub not_indexed: Option<u64>,
    pub sink_failed: Option<u64>,
    pub sink_dropped: Option<u64>,
    /// Datagrams refused by the allow-list (the receive-only mode refuses them all).
    pub not_allowed: Option<u64>,
}

/// Latency quantiles (receive to sink acknowledgement), seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub p50_s: f64,
    pub p90_s: f64,
    pub p99_s: f64,
    pub p999_s: f64,
}

/// One trial's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Trial {
    pub subject: String,
    pub protocol: String,
    /// Packets per second asked of the generator (null: unlimited).
    pub asked_packets_per_s: Option<f64>,
    pub offered_packets_per_s: f64,
    pub offered_flows_per_s: f64,
    pub duration_s: f64,
    pub sent_packets: u64,
    pub sent_flows: u64,
    pub received_packets: Option<u64>,
    /// Flows decoded by the collector (ferroflow); for peers, what they wrote.
    pub received_flows: u64,
    pub indexed_flows: u64,
    pub received_flows_per_s: f64,
    pub indexed_flows_per_s: f64,
    /// 1 - indexed / sent flows.
    pub loss_fraction: f64,
    pub stages: Stages,
    pub latency: Option<Latency>,
    pub collector_cpu_s: f64,
    /// Collector CPU per datagram it received (the receive-only mode: the receive path).
    pub collector_cpu_us_per_packet: Option<f64>,
    pub collector_cpu_s_per_million_flows: f64,
    /// Indexed flows per CPU-second of the collector (flows/s per fully used core).
    pub flows_per_cpu_second: f64,
    pub generator_cpu_s: f64,
    pub generator_cpu_s_per_million_flows: f64,
    /// The generator sent less than 95 % of the asked rate.
    pub generator_bound: bool,
    /// 1-minute load average at the start and the end (the machine is shared).
    pub loadavg_start: f64,
    pub loadavg_end: f64,
}

/// The machine the figures come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
}

impl Machine {
    pub fn read() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            kernel,
        }
    }
}

/// A whole bench: the headline figures (the single trial, or the best trial of a search)
/// at the top level, every trial below.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub tool: String,
    pub subject: String,
    pub subject_version: String,
    pub protocol: String,
    pub mode: String,
    pub command: String,
    pub machine: Machine,
    pub loss_target: f64,
    pub offered_packets_per_s: f64,
    pub offered_flows_per_s: f64,
    pub received_flows_per_s: f64,
    pub indexed_flows_per_s: f64,
    pub loss_fraction: f64,
    pub collector_cpu_s_per_million_flows: f64,
    pub collector_cpu_us_per_packet: Option<f64>,
    pub flows_per_cpu_second: f64,
    pub generator_cpu_s_per_million_flows: f64,
    pub latency_p50_s: Option<f64>,
    pub latency_p99_s: Option<f64>,
    /// Search: why it stopped.
    pub search_stop: Option<search::StopReason>,
    /// Index of the headline trial in `trials` (null: no trial met the loss target).
    pub headline_trial: Option<usize>,
    pub trials: Vec<Trial>,
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0.0)
}

/// A UDP port free on 127.0.0.1 now (the kernel's choice; released for the child to bind).
pub fn free_udp_port() -> std::io::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A TCP port free on 127.0.0.1 now.
pub fn free_tcp_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The default place for trial directories: tmpfs (/dev/shm) when there is one.
pub fn default_work_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// CPU seconds of `pid` and its children, or of its zombie (children reaped into it).
fn cpu_of(pid: u32) -> f64 {
    proc::tree_cpu_s(pid).unwrap_or(0.0)
}

/// Sends SIGTERM and waits (bounded) until the process is a zombie; returns its CPU seconds
/// (own + reaped children) read then, and reaps it. SIGKILL after `timeout`.
pub(crate) fn stop_child(child: &mut Child, timeout: Duration) -> anyhow::Result<f64> {
    let pid = child.id();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + timeout;
    let mut cpu = cpu_of(pid);
    loop {
        match proc::process_state(pid) {
            Some('Z') | None => break,
            _ => {}
        }
        cpu = cpu.max(cpu_of(pid));
        if Instant::now() >= deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(c) = proc::zombie_cpu_s(pid) {
        cpu = cpu.max(c);
    }
    let _ = child.wait();
    Ok(cpu)
}

/// A running ferroflow collector.
struct Ferroflow {
    child: Child,
    metrics: SocketAddr,
    out_file: Option<PathBuf>,
    stderr_path: PathBuf,
}

impl Ferroflow {
    fn start(subject: &Subject, listen: SocketAddr, dir: &Path) -> anyhow::Result<Ferroflow> {
        let Subject::Ferroflow {
            exe,
            workers,
            split,
            output,
            cores,
            receive_only,
        } = subject
        else {
            bail!("not ferroflow");
        };
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()?));
        let stderr_path = dir.join("collector.stderr");
        let mut cmd = Command::new(exe);
        cmd.arg("collect")
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--metrics")
            .arg(metrics.to_string())
            .arg("--workers")
            .arg(workers.to_string())
            .arg("--log-level")
            .arg("warn");
        if *split {
            cmd.arg("--split");
        }
        let out_file = match output {
            Output::File => {
                let f = dir.join("documents.json");
                cmd.arg("--output").arg(format!("file:{}", f.display()));
                Some(f)
            }
            Output::Kafka { brokers } => {
                cmd.arg("--output")
                    .arg("kafka")
                    .arg("--kafka-brokers")
                    .arg(brokers);
                None
            }
        };
        match cores {
            Some(c) => {
                cmd.env("FERROFLOW_CPU_CORES", c);
            }
            None => {
                cmd.arg("--no-pin");
            }
        }
        if *receive_only {
            cmd.env("FERROFLOW_DECODER_ALLOW_EXPORTERS", "192.0.2.255");
        }
        cmd.env_remove("FERROFLOW_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path)?);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let mut f = Ferroflow {
            child,
            metrics,
            out_file,
            stderr_path,
        };
        // ready when /readyz answers 200 (bounded)
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = f.child.try_wait() {
                let err = std::fs::read_to_string(&f.stderr_path).unwrap_or_default();
                bail!("ferroflow collect exited at start ({status}): {err}");
            }
            if let Ok((200, _)) = http_get(f.metrics, "/readyz", Duration::from_millis(500)) {
                break;
            }
            if Instant::now() >= deadline {
                let _ = f.child.kill();
                let _ = f.child.wait();
                bail!("ferroflow collect not ready within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(f)
    }

    fn scrape(&self) -> anyhow::Result<Scrape> {
        Scrape::fetch(self.metrics, Duration::from_secs(5)).context("scraping ferroflow metrics")
    }

    /// Keeps the output file from growing: documents are counted by the metrics.
    fn truncate_output(&self) {
        if let Some(p) = &self.out_file {
            if let Ok(f) = std::fs::OpenOptions::new().write(true).open(p) {
                let _ = f.set_len(0);
            }
        }
    }
}

/// The counters a trial compares before and after.
#[derive(Debug, Clone, Copy, Default)]
struct FfCounters {
    packets: f64,
    records: f64,
    delivered: f64,
    socket_drops: f64,
    decode_errors: f64,
    template_misses: f64,
    sequence_gaps: f64,
    sink_failed: f64,
    sink_dropped: f64,
    in_flight: f64,
    not_allowed: f64,
}

impl FfCounters {
    fn of(s: &Scrape) -> FfCounters {
        FfCounters {
            packets: s.sum(Metric::PacketsReceived.name()),
            records: s.sum(Metric::Records.name()),
            delivered: s.sum(Metric::SinkDelivered.name()),
            socket_drops: s.sum(Metric::SocketDrops.name()),
            decode_errors: s.sum(Metric::DecodeErrors.name()),
            template_misses: s.sum(Metric::TemplateMisses.name()),
            sequence_gaps: s.sum(Metric::SequenceGaps.name()),
            sink_failed: s.sum(Metric::SinkFailed.name()),
            sink_dropped: s.sum(Metric::SinkDropped.name()),
            in_flight: s.sum(Metric::SinkInFlight.name()),
            not_allowed: s.sum(Metric::NotAllowed.name()),
        }
    }
}

fn d(after: f64, before: f64) -> u64 {
    (after - before).max(0.0).round() as u64
}

/// Prints progress once a second while the generator runs; empties ferroflow's output file.
fn monitor(
    stop: &AtomicBool,
    progress: &Progress,
    ff: Option<&Ferroflow>,
    base: FfCounters,
    show: bool,
) {
    let start = Instant::now();
    let mut last = (0u64, 0u64, start);
    let mut next = start + Duration::from_secs(1);
    // bounded by the generator's own bound; the flag ends it
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if Instant::now() < next {
            continue;
        }
        next += Duration::from_secs(1);
        if let Some(f) = ff {
            f.truncate_output();
        }
        if !show {
            continue;
        }
        let now = Instant::now();
        let (p, fl) = (
            progress.packets.load(Ordering::Relaxed),
            progress.flows.load(Ordering::Relaxed),
        );
        let dt = now.duration_since(last.2).as_secs_f64().max(1e-9);
        let mut line = format!(
            "  t={:>4.1}s sent {:>10.0} pkt/s {:>11.0} flows/s",
            now.duration_since(start).as_secs_f64(),
            (p - last.0) as f64 / dt,
            (fl - last.1) as f64 / dt
        );
        if let Some(c) = ff.and_then(|f| f.scrape().ok()).map(|s| FfCounters::of(&s)) {
            line.push_str(&format!(
                " | collector: received {} pkts, decoded {} flows, indexed {}",
                d(c.packets, base.packets),
                d(c.records, base.records),
                d(c.delivered, base.delivered)
            ));
        }
        eprintln!("{line}");
        last = (p, fl, now);
    }
}

/// Sends [`peers::FLUSH_RECORDS`] flows of `gen`'s protocol from the flush exporter (an
/// address none of the measured exporters has) and returns that address.
fn send_flush(gen: &GenConfig, listen: SocketAddr) -> anyhow::Result<std::net::IpAddr> {
    let mut g = gen.clone();
    g.target = listen;
    g.first_exporter = peers::FLUSH_EXPORTER;
    g.exporters = 1;
    g.threads = 1;
    g.source_addrs = generate::SourceAddrs::Distinct;
    let per_packet = g.flows_per_packet.max(1) as u64;
    g.count = Some(peers::FLUSH_RECORDS.div_ceil(per_packet));
    g.duration = None;
    g.rate = Rate::Packets(2000.0);
    g.progress = None;
    g.stop = None;
    let from = generate::exporter_addr(listen, g.source_addrs, peers::FLUSH_EXPORTER).ip();
    // exporter addresses wrap after 254: more measured exporters would share the address
    if gen.exporters > peers::FLUSH_EXPORTER
        || from == generate::exporter_addr(listen, g.source_addrs, 0).ip()
    {
        bail!(
            "no address of its own for the flush exporter ({} exporters, target {listen})",
            gen.exporters
        );
    }
    generate::run(&g)?;
    Ok(from)
}

/// Runs one trial at `rate` packets per second (None: unlimited).
pub fn run_trial(cfg: &BenchConfig, rate: Option<f64>) -> anyhow::Result<Trial> {
    let port = free_udp_port()?;
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = cfg.work_dir.join(format!(
        "ferroflow-bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let r = trial_in(cfg, rate, listen, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn trial_in(
    cfg: &BenchConfig,
    rate: Option<f64>,
    listen: SocketAddr,
    dir: &Path,
) -> anyhow::Result<Trial> {
    let protocol = cfg.gen.protocol;
    let load0 = loadavg();
    let (mut ff, mut peer) = match &cfg.subject {
        Subject::Ferroflow { .. } => (Some(Ferroflow::start(&cfg.subject, listen, dir)?), None),
        Subject::Peer {
            kind,
            workers,
            cores,
        } => (
            None,
            Some(Peer::start(
                *kind,
                protocol,
                listen,
                dir,
                *workers,
                cores.as_deref(),
            )?),
        ),
    };
    let pid = match (&ff, &peer) {
        (Some(f), _) => f.child.id(),
        (_, Some(p)) => p.pid(),
        _ => unreachable!(),
    };
    let base = match &ff {
        Some(f) => FfCounters::of(&f.scrape()?),
        None => FfCounters::default(),
    };
    let udp0 = UdpCounters::read();
    let cpu0 = cpu_of(pid);

    let mut g = cfg.gen.clone();
    g.target = listen;
    g.rate = rate.map_or(Rate::Unlimited, Rate::Packets);
    g.duration = Some(cfg.duration);
    g.count = None;
    let progress = Arc::new(Progress::default());
    g.progress = Some(progress.clone());
    let stop = AtomicBool::new(false);
    let gen: anyhow::Result<GenReport> = std::thread::scope(|s| {
        let mon = s.spawn(|| monitor(&stop, &progress, ff.as_ref(), base, cfg.progress));
        let r = generate::run(&g).map_err(anyhow::Error::from);
        stop.store(true, Ordering::Relaxed);
        let _ = mon.join();
        r
    });
    let gen = match gen {
        Ok(g) => g,
        Err(e) => {
            if let Some(f) = ff.as_mut() {
                let _ = stop_child(&mut f.child, Duration::from_secs(10));
            }
            if let Some(p) = peer.as_mut() {
                let _ = p.stop(Duration::from_secs(10));
            }
            return Err(e);
        }
    };

    // a peer that strands its last partial buffer gets a flush from an exporter of its own
    let flush_from = match peer.as_ref() {
        Some(p) if p.kind().strands_tail() => {
            let r = send_flush(&cfg.gen, listen);
            if let Err(e) = &r {
                eprintln!("  flush of {} failed: {e:#}", p.kind().name());
            }
            r.ok()
        }
        _ => None,
    };

    // wait until the subject has dealt with what it received
    let settle = Instant::now();
    let deadline = settle + Duration::from_secs(60);
    let mut after = base;
    let mut last_change = Instant::now();
    let mut last_cpu = cpu_of(pid);
    let mut prev: Option<(f64, f64, f64)> = None;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let now = Instant::now();
        let cpu = cpu_of(pid);
        let busy = cpu - last_cpu > 0.02;
        last_cpu = cpu;
        let mut moving = busy;
        if let Some(f) = ff.as_ref() {
            if let Some(f) = f.scrape().ok().map(|s| FfCounters::of(&s)) {
                let key = (f.packets, f.records, f.delivered);
                moving |= prev != Some(key) || f.in_flight > 0.0;
                prev = Some(key);
                after = f;
            }
            ff.as_ref().map(Ferroflow::truncate_output);
        }
        if moving {
            last_change = now;
        }
        // ferroflow publishes some counters once a second: 1.5 s of stillness
        if now.duration_since(last_change) >= Duration::from_millis(1500) || now >= deadline {
            break;
        }
    }
    if cfg.progress {
        eprintln!("  settled after {:.1} s", settle.elapsed().as_secs_f64());
    }
    let udp = UdpCounters::read().since(&udp0);
    let latency = ff.as_ref().and_then(|f| f.scrape().ok()).map(|s| {
        let q = |v: &str| s.sum_with(Metric::Latency.name(), "quantile", v);
        Latency {
            p50_s: q("0.5"),
            p90_s: q("0.9"),
            p99_s: q("0.99"),
            p999_s: q("0.999"),
        }
    });
    let (cpu1, indexed, received, received_packets, stages) = if let Some(f) = ff.as_mut() {
        let cpu1 = stop_child(&mut f.child, Duration::from_secs(30))?;
        let records = d(after.records, base.records);
        let delivered = d(after.delivered, base.delivered);
        let packets = d(after.packets, base.packets);
        let stages = Stages {
            packets_not_received: Some(gen.packets.saturating_sub(packets)),
            socket_drops: Some(d(after.socket_drops, base.socket_drops)),
            kernel_udp: udp,
            decode_errors: Some(d(after.decode_errors, base.decode_errors)),
            template_misses: Some(d(after.template_misses, base.template_misses)),
            sequence_gaps: Some(d(after.sequence_gaps, base.sequence_gaps)),
            not_indexed: Some(records.saturating_sub(delivered)),
            sink_failed: Some(d(after.sink_failed, base.sink_failed)),
            sink_dropped: Some(d(after.sink_dropped, base.sink_dropped)),
            not_allowed: Some(d(after.not_allowed, base.not_allowed)),
        };
        (cpu1, delivered, records, Some(packets), stages)
    } else if let Some(p) = peer.as_mut() {
        let cpu1 = p.stop(Duration::from_secs(30))?;
        let n = p
            .count_output(flush_from)
            .context("counting the peer's output")?;
        let stages = Stages {
            kernel_udp: udp,
            ..Stages::default()
        };
        (cpu1, n, n, None, stages)
    } else {
        unreachable!()
    };
    let secs = gen.elapsed_s.max(1e-9);
    let ccpu = (cpu1 - cpu0).max(0.0);
    let receive_only = matches!(
        cfg.subject,
        Subject::Ferroflow {
            receive_only: true,
            ..
        }
    );
    // receive-only: nothing is decoded; loss is of datagrams
    let loss_fraction = if receive_only {
        let got = received_packets.unwrap_or(0).min(gen.packets);
        if gen.packets == 0 {
            0.0
        } else {
            1.0 - got as f64 / gen.packets as f64
        }
    } else if gen.flows == 0 {
        0.0
    } else {
        1.0 - (indexed.min(gen.flows) as f64 / gen.flows as f64)
    };
    let per_m = |cpu: f64, flows: u64| {
        if flows == 0 {
            0.0
        } else {
            cpu * 1e6 / flows as f64
        }
    };
    Ok(Trial {
        subject: cfg.subject.name().to_string(),
        protocol: protocol.as_str().to_string(),
        asked_packets_per_s: rate,
        offered_packets_per_s: gen.packets_per_s,
        offered_flows_per_s: gen.flows_per_s,
        duration_s: secs,
        sent_packets: gen.packets,
        sent_flows: gen.flows,
        received_packets,
        received_flows: received,
        indexed_flows: indexed,
        received_flows_per_s: received as f64 / secs,
        indexed_flows_per_s: indexed as f64 / secs,
        loss_fraction,
        stages,
        latency,
        collector_cpu_s: ccpu,
        collector_cpu_us_per_packet: received_packets
            .filter(|&p| p > 0)
            .map(|p| ccpu * 1e6 / p as f64),
        collector_cpu_s_per_million_flows: per_m(ccpu, indexed),
        flows_per_cpu_second: if ccpu > 0.0 {
            indexed as f64 / ccpu
        } else {
            0.0
        },
        generator_cpu_s: gen.cpu_s,
        generator_cpu_s_per_million_flows: per_m(gen.cpu_s, gen.flows),
        generator_bound: rate.is_some_and(|r| gen.packets_per_s < 0.95 * r),
        loadavg_start: load0,
        loadavg_end: loadavg(),
    })
}

struct Searcher<'a> {
    cfg: &'a BenchConfig,
    trials: Vec<Trial>,
}

impl System for Searcher<'_> {
    type Error = anyhow::Error;
    fn trial(&mut self, rate: f64) -> anyhow::Result<Outcome> {
        if self.cfg.progress {
            eprintln!(
                "trial {}: {} {} at {:.0} packets/s ({:.0} flows/s) for {:.0} s",
                self.trials.len() + 1,
                self.cfg.subject.name(),
                self.cfg.gen.protocol,
                rate,
                rate * self.cfg.gen.flows_per_packet as f64,
                self.cfg.duration.as_secs_f64()
            );
        }
        let t = run_trial(self.cfg, Some(rate))?;
        if self.cfg.progress {
            eprintln!("  -> {}", t.summary());
        }
        let o = Outcome {
            loss: t.loss_fraction,
            achieved: t.offered_packets_per_s,
        };
        self.trials.push(t);
        Ok(o)
    }
}

impl Trial {
    /// One line for the terminal.
    pub fn summary(&self) -> String {
        format!(
            "offered {:.0} flows/s, indexed {:.0} flows/s, loss {:.4} %, collector CPU {:.2} s/M flows ({:.0} flows per CPU-s), generator {:.2} s/M flows{}",
            self.offered_flows_per_s,
            self.indexed_flows_per_s,
            self.loss_fraction * 100.0,
            self.collector_cpu_s_per_million_flows,
            self.flows_per_cpu_second,
            self.generator_cpu_s_per_million_flows,
            if self.generator_bound { " (generator-bound)" } else { "" }
        )
    }
}

/// Runs the bench (one trial, or the search) and builds the report.
pub fn run(cfg: &BenchConfig, command: String) -> anyhow::Result<BenchReport> {
    let subject_version = match &cfg.subject {
        Subject::Ferroflow { exe, .. } => Command::new(exe)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default(),
        Subject::Peer { kind, .. } => {
            if !kind.supports(cfg.gen.protocol) {
                bail!(
                    "{} does not collect {} (see `ferroflow bench --help`)",
                    kind.name(),
                    cfg.gen.protocol
                );
            }
            kind.version()?
        }
    };
    let loss_target = cfg.search.map_or(1e-4, |s| s.loss_target);
    let (trials, headline, stop, mode) = match &cfg.search {
        None => {
            if cfg.progress {
                eprintln!(
                    "{} {}: {} for {:.0} s",
                    cfg.subject.name(),
                    cfg.gen.protocol,
                    cfg.rate
                        .map_or("unlimited rate".into(), |r| format!("{r:.0} packets/s")),
                    cfg.duration.as_secs_f64()
                );
            }
            let t = run_trial(cfg, cfg.rate)?;
            if cfg.progress {
                eprintln!("  -> {}", t.summary());
            }
            (vec![t], Some(0), None, "rate")
        }
        Some(p) => {
            let mut s = Searcher {
                cfg,
                trials: Vec::new(),
            };
            let r = search::search(&mut s, p, |_, _, _| {})?;
            if cfg.progress {
                eprintln!("search stopped: {:?}", r.stop);
            }
            (s.trials, r.best, Some(r.stop), "search")
        }
    };
    let h = headline.map(|i| trials[i].clone()).unwrap_or_default();
    Ok(BenchReport {
        tool: "ferroflow bench".into(),
        subject: cfg.subject.name().into(),
        subject_version,
        protocol: cfg.gen.protocol.as_str().into(),
        mode: mode.into(),
        command,
        machine: Machine::read(),
        loss_target,
        offered_packets_per_s: h.offered_packets_per_s,
        offered_flows_per_s: h.offered_flows_per_s,
        received_flows_per_s: h.received_flows_per_s,
        indexed_flows_per_s: h.indexed_flows_per_s,
        loss_fraction: h.loss_fraction,
        collector_cpu_s_per_million_flows: h.collector_cpu_s_per_million_flows,
        collector_cpu_us_per_packet: h.collector_cpu_us_per_packet,
        flows_per_cpu_second: h.flows_per_cpu_second,
        generator_cpu_s_per_million_flows: h.generator_cpu_s_per_million_flows,
        latency_p50_s: h.latency.as_ref().map(|l| l.p50_s),
        latency_p99_s: h.latency.as_ref().map(|l| l.p99_s),
        search_stop: stop,
        headline_trial: headline,
        trials,
    })
}

/// Writes `report.json`, `report.md` and `report.png` into `dir`.
pub fn write_files(report: &BenchReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = dir.join("report.json");
    let mut f = std::fs::File::create(&json)?;
    serde_json::to_writer_pretty(&mut f, report)?;
    writeln!(f)?;
    let md = dir.join("report.md");
    std::fs::write(&md, crate::report::markdown(report))?;
    let png = dir.join("report.png");
    crate::report::plot(report, &png)?;
    Ok(vec![json, md, png])
}

/// What [`run_drain`] measured: ferroflow's receive path draining a full socket queue, the
/// same situation as the raw drain bench (`cargo bench --bench recv`, `recv_drain`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrainReport {
    pub protocol: String,
    pub rounds: usize,
    /// Datagrams queued per round while the collector was stopped (SIGSTOP).
    pub datagrams_per_round: u64,
    /// Datagrams the collector counted (`ferroflow_packets_received_total`) over all rounds.
    pub received: u64,
    /// Datagrams sent over all rounds.
    pub sent: u64,
    /// Run time of the worker thread(s) (`/proc/<pid>/task/<tid>/schedstat`, ns) per
    /// datagram, per round.
    pub worker_us_per_datagram: Vec<f64>,
    /// Run time of every thread of the collector per datagram, per round.
    pub process_us_per_datagram: Vec<f64>,
    pub worker_us_per_datagram_median: f64,
    pub process_us_per_datagram_median: f64,
    pub loadavg_start: f64,
    pub loadavg_end: f64,
}

/// Run time (ns) of the threads of `pid` whose name starts with `prefix` ("" for all), from
/// schedstat (nanoseconds, unlike the 10 ms ticks of `stat`).
fn threads_run_ns(pid: u32, prefix: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    dir.flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim_end().starts_with(prefix))
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Bytes queued on the UDP socket bound to `port` (rx_queue of /proc/net/udp), if found.
fn udp_rx_queue(port: u16) -> Option<u64> {
    let hex = format!(":{port:04X}");
    let s = std::fs::read_to_string("/proc/net/udp").ok()?;
    s.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if !f.get(1)?.ends_with(&hex) {
            return None;
        }
        let (_, rx) = f.get(4)?.split_once(':')?;
        u64::from_str_radix(rx, 16).ok()
    })
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// ferroflow's receive path at saturation, measured like the raw drain bench: the collector
/// (receive-only: every datagram refused by the allow-list after it is received) is stopped
/// with SIGSTOP, `per_round` datagrams are queued on its socket, it is continued, and the run
/// time its threads spend until the queue is empty is divided by the datagrams. `rounds`
/// times. The subject must be ferroflow with `receive_only`; its socket buffer must hold a
/// round (32 MiB forced as root holds about 28 000 datagrams of 1464 bytes).
pub fn run_drain(cfg: &BenchConfig, rounds: usize, per_round: u64) -> anyhow::Result<DrainReport> {
    if !matches!(
        cfg.subject,
        Subject::Ferroflow {
            receive_only: true,
            ..
        }
    ) {
        bail!("the drain measurement is for ferroflow --receive-only");
    }
    let port = free_udp_port()?;
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = cfg
        .work_dir
        .join(format!("ferroflow-drain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut ff = Ferroflow::start(&cfg.subject, listen, &dir)?;
    let r = drain_rounds(cfg, &ff, listen, rounds, per_round);
    let _ = stop_child(&mut ff.child, Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn drain_rounds(
    cfg: &BenchConfig,
    ff: &Ferroflow,
    listen: SocketAddr,
    rounds: usize,
    per_round: u64,
) -> anyhow::Result<DrainReport> {
    let pid = ff.child.id();
    let ipid = libc::pid_t::try_from(pid).context("pid")?;
    let mut rep = DrainReport {
        protocol: cfg.gen.protocol.as_str().to_string(),
        rounds,
        datagrams_per_round: per_round,
        loadavg_start: loadavg(),
        ..DrainReport::default()
    };
    let base = FfCounters::of(&ff.scrape()?);
    let mut g = cfg.gen.clone();
    g.target = listen;
    g.rate = Rate::Unlimited;
    g.duration = Some(Duration::from_secs(60));
    g.progress = None;
    g.stop = None;
    for round in 0..rounds {
        // let the worker settle into its poll wait, then freeze the whole process
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: plain signal to our own child
        if unsafe { libc::kill(ipid, libc::SIGSTOP) } != 0 {
            bail!("SIGSTOP: {}", std::io::Error::last_os_error());
        }
        g.count = Some(per_round);
        let sent = generate::run(&g);
        let w0 = threads_run_ns(pid, "ff-worker");
        let p0 = threads_run_ns(pid, "");
        // SAFETY: as above
        unsafe { libc::kill(ipid, libc::SIGCONT) };
        let sent = sent?;
        rep.sent += sent.packets;
        let deadline = Instant::now() + Duration::from_secs(30);
        while udp_rx_queue(listen.port()).unwrap_or(0) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        // the last batch is being counted: a moment more
        std::thread::sleep(Duration::from_millis(20));
        let w = threads_run_ns(pid, "ff-worker").saturating_sub(w0);
        let p = threads_run_ns(pid, "").saturating_sub(p0);
        let n = sent.packets.max(1) as f64;
        rep.worker_us_per_datagram.push(w as f64 / 1e3 / n);
        rep.process_us_per_datagram.push(p as f64 / 1e3 / n);
        if cfg.progress {
            eprintln!(
                "round {}: {} datagrams, worker {:.3} us, process {:.3} us per datagram",
                round + 1,
                sent.packets,
                w as f64 / 1e3 / n,
                p as f64 / 1e3 / n
            );
        }
    }
    // the counters are published once a second
    std::thread::sleep(Duration::from_millis(1200));
    let after = FfCounters::of(&ff.scrape()?);
    rep.received = d(after.packets, base.packets);
    rep.worker_us_per_datagram_median = median(&rep.worker_us_per_datagram);
    rep.process_us_per_datagram_median = median(&rep.process_us_per_datagram);
    rep.loadavg_end = loadavg();
    Ok(rep)
}
