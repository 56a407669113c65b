//! `ferroflow bench`: offer generated traffic to `ferroflow collect` (or a peer collector) and
//! report throughput, loss per stage, latency and CPU per flow (ferroflow_perf::bench).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use ferroflow_perf::bench::{self, BenchConfig, Output, Subject};
use ferroflow_perf::generate::{GenConfig, Protocol};
use ferroflow_perf::peers::PeerKind;
use ferroflow_perf::search::SearchParams;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Export protocol: ipfix, netflow9, netflow5, sflow.
    #[arg(long)]
    protocol: Protocol,
    /// Offered packets per second for one trial (default: as fast as the generator goes).
    #[arg(long, conflicts_with_all = ["search", "flow_rate"])]
    rate: Option<f64>,
    /// Offered flows per second for one trial.
    #[arg(long, conflicts_with = "search")]
    flow_rate: Option<f64>,
    /// Search for the highest offered rate with loss <= --loss-target (doubling, then
    /// bisecting; at most --max-steps trials).
    #[arg(long)]
    search: bool,
    /// Loss target of the search, as a fraction (0.0001 = 0.01 %).
    #[arg(long, default_value_t = 1e-4)]
    loss_target: f64,
    /// Most trials of a search.
    #[arg(long, default_value_t = 12)]
    max_steps: usize,
    /// First rate (packets/s) a search tries.
    #[arg(long, default_value_t = 2000.0)]
    start_rate: f64,
    /// Highest rate (packets/s) a search tries.
    #[arg(long, default_value_t = 2_000_000.0)]
    max_rate: f64,
    /// Seconds of traffic per trial.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Print the report as one JSON object on stdout (default: the markdown table).
    #[arg(long)]
    json: bool,
    /// Where ferroflow's documents go: file (a tmpfs file emptied every second) or kafka.
    #[arg(long, default_value = "file", value_parser = ["file", "kafka"])]
    output: String,
    /// Kafka bootstrap servers for --output kafka.
    #[arg(long, default_value = "127.0.0.1:9092")]
    kafka_brokers: String,
    /// Collector workers (ferroflow --workers; goflow2 sockets).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// ferroflow: separate receive and decode threads.
    #[arg(long)]
    split: bool,
    /// Pin the collector to these cores: ferroflow's workers (cpu.cores, e.g. "0"), a peer
    /// with taskset. Default: not pinned.
    #[arg(long)]
    collector_cores: Option<String>,
    /// ferroflow: measure the receive path only (every datagram is refused by the
    /// allow-list after it is received, none is decoded); loss counts datagrams.
    #[arg(long, conflicts_with = "peer")]
    receive_only: bool,
    /// With --receive-only: instead of trials at a rate, stop the collector (SIGSTOP), queue
    /// this many datagrams on its socket, continue it and measure the run time of its
    /// threads until the queue is empty (the saturated receive path, as the raw drain bench
    /// `cargo bench --bench recv` measures it); --drain-rounds times.
    #[arg(long, requires = "receive_only")]
    drain: Option<u64>,
    /// Rounds of --drain.
    #[arg(long, default_value_t = 5)]
    drain_rounds: usize,
    /// Measure a peer instead of ferroflow: goflow2, nfacctd, sfacctd, nfcapd.
    #[arg(long)]
    peer: Option<PeerKind>,
    /// Exporters the generator simulates.
    #[arg(long, default_value_t = 4)]
    exporters: usize,
    /// Flow records per packet (default: the protocol's full packet).
    #[arg(long)]
    flows_per_packet: Option<usize>,
    /// Fraction of IPv6 flows (not netflow5).
    #[arg(long, default_value_t = 0.0)]
    ipv6: f64,
    /// 1-in-N sampling in the generated traffic.
    #[arg(long)]
    sampling: Option<u32>,
    /// Send the generator's pool of flows over and over (a few thousand distinct flows per
    /// run) instead of making every flow distinct (the default: each record's source address
    /// is rewritten from a counter on every send, so aggregating collectors cannot fold
    /// repeated flows together).
    #[arg(long)]
    repeat_flows: bool,
    /// Generator threads.
    #[arg(long, default_value_t = 1)]
    gen_threads: usize,
    /// Pin generator threads to these cores (e.g. 1).
    #[arg(long, value_delimiter = ',')]
    gen_pin: Vec<usize>,
    /// Directory for report.json, report.md and report.png (default:
    /// target/perf/bench-<subject>-<protocol>-<time>).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Directory for the trials' working files (default: /dev/shm).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

fn bench(a: Args) -> anyhow::Result<()> {
    if !(a.duration.is_finite() && a.duration > 0.0 && a.duration <= 3600.0) {
        bail!("--duration must be in (0, 3600] seconds");
    }
    let subject = match a.peer {
        Some(kind) => Subject::Peer {
            kind,
            workers: a.workers,
            cores: a.collector_cores.clone(),
        },
        None => Subject::Ferroflow {
            exe: std::env::current_exe().context("locating the ferroflow binary")?,
            workers: a.workers,
            split: a.split,
            output: if a.output == "kafka" {
                Output::Kafka {
                    brokers: a.kafka_brokers.clone(),
                }
            } else {
                Output::File
            },
            cores: a.collector_cores.clone(),
            receive_only: a.receive_only,
        },
    };
    let mut gen = GenConfig::new(a.protocol, "127.0.0.1:9".parse()?);
    if let Some(f) = a.flows_per_packet {
        gen.flows_per_packet = f;
    }
    gen.exporters = a.exporters;
    gen.ipv6_fraction = a.ipv6;
    gen.sampling = a.sampling;
    gen.threads = a.gen_threads;
    gen.distinct_flows = !a.repeat_flows;
    gen.pin = a.gen_pin.clone();
    let rate = a
        .rate
        .or(a.flow_rate.map(|f| f / gen.flows_per_packet.max(1) as f64));
    let search = a.search.then(|| SearchParams {
        start: a.start_rate,
        max_rate: a.max_rate,
        loss_target: a.loss_target,
        max_steps: a.max_steps,
        ..SearchParams::default()
    });
    let cfg = BenchConfig {
        subject,
        gen,
        rate,
        duration: Duration::from_secs_f64(a.duration),
        search,
        work_dir: a.work_dir.clone().unwrap_or_else(bench::default_work_dir),
        progress: !a.quiet,
    };
    if let Some(n) = a.drain {
        let r = bench::run_drain(&cfg, a.drain_rounds.max(1), n.max(1))?;
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let report = bench::run(&cfg, command)?;
    let out_dir = a.out_dir.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!(
            "target/perf/bench-{}-{}-{t}",
            report.subject, report.protocol
        ))
    });
    match bench::write_files(&report, &out_dir) {
        Ok(files) => {
            if !a.quiet {
                for f in files {
                    eprintln!("wrote {}", f.display());
                }
            }
        }
        Err(e) => eprintln!("ferroflow bench: report files: {}", super::error_chain(&e)),
    }
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", ferroflow_perf::report::markdown(&report));
    }
    Ok(())
}

pub fn run(a: Args) -> ExitCode {
    match bench(a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferroflow bench: {}", super::error_chain(&e));
            ExitCode::from(1)
        }
    }
}
