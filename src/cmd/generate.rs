//! `ferroflow generate`: synthetic export traffic at a target rate (ferroflow_perf::generate).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use ferroflow_perf::generate::{self, GenConfig, Protocol, Rate, SourceAddrs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Export protocol: ipfix, netflow9, netflow5, sflow.
    #[arg(long)]
    protocol: Protocol,
    /// Collector address.
    #[arg(long, default_value = "127.0.0.1:2055")]
    to: SocketAddr,
    /// Packets per second, templates included (default: as fast as possible).
    #[arg(long, conflicts_with = "flow_rate")]
    rate: Option<f64>,
    /// Flow records per second instead of packets.
    #[arg(long)]
    flow_rate: Option<f64>,
    /// Stop after this many seconds (default 10 when no --count; at most 3600).
    #[arg(long)]
    duration: Option<f64>,
    /// Stop after this many data packets.
    #[arg(long)]
    count: Option<u64>,
    /// Flow records per packet (default: 30 v5, 24 v9, 18 IPFIX, 7 sFlow samples).
    #[arg(long)]
    flows_per_packet: Option<usize>,
    /// Exporters (each its own socket and sequence numbers).
    #[arg(long, default_value_t = 1)]
    exporters: usize,
    /// Exporters' sources: "addresses" (127.0.0.x, own port each) or "ports" (one address).
    #[arg(long, default_value = "addresses", value_parser = ["addresses", "ports"])]
    sources: String,
    /// Fraction of IPv6 flows (0..1; `--ipv6` alone: 0.5). Not for netflow5.
    #[arg(long, num_args = 0..=1, default_missing_value = "0.5", default_value_t = 0.0)]
    ipv6: f64,
    /// Resend templates every this many seconds (v9, IPFIX; 0: only at the start).
    #[arg(long, default_value_t = 10.0)]
    template_interval: f64,
    /// 1-in-N sampling: v5 header, v9/IPFIX sampling options data, sFlow sampling rate.
    #[arg(long)]
    sampling: Option<u32>,
    /// Sender threads (exporters are spread over them).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Pin sender threads to these cores (comma-separated list, e.g. 1 or 0,1).
    #[arg(long, value_delimiter = ',')]
    pin: Vec<usize>,
    /// Packets per sendmmsg call (1..64).
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Seed of the synthetic flows.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Make every flow distinct (each record's source address rewritten from a counter on
    /// every send); default: the pool's few thousand flows repeat.
    #[arg(long)]
    distinct_flows: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn config(a: &Args) -> GenConfig {
    let mut c = GenConfig::new(a.protocol, a.to);
    if let Some(f) = a.flows_per_packet {
        c.flows_per_packet = f;
    }
    c.rate = match (a.rate, a.flow_rate) {
        (Some(p), _) => Rate::Packets(p),
        (None, Some(f)) => Rate::Flows(f),
        (None, None) => Rate::Unlimited,
    };
    c.duration = a.duration.map(Duration::from_secs_f64);
    c.count = a.count;
    c.exporters = a.exporters;
    c.source_addrs = if a.sources == "ports" {
        SourceAddrs::Ports
    } else {
        SourceAddrs::Distinct
    };
    c.ipv6_fraction = a.ipv6;
    c.template_interval =
        (a.template_interval > 0.0).then(|| Duration::from_secs_f64(a.template_interval));
    c.sampling = a.sampling;
    c.threads = a.threads;
    c.pin = a.pin.clone();
    c.batch = a.batch;
    c.seed = a.seed;
    c.distinct_flows = a.distinct_flows;
    c
}

pub fn run(a: Args) -> ExitCode {
    if a.duration.is_some_and(|d| !(d.is_finite() && d > 0.0)) {
        eprintln!("ferroflow generate: --duration must be a positive number of seconds");
        return ExitCode::from(2);
    }
    let cfg = config(&a);
    match generate::run(&cfg) {
        Ok(r) => {
            if a.json {
                match serde_json::to_string(&r) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("ferroflow generate: {e}");
                        return ExitCode::from(1);
                    }
                }
            } else {
                print!("{}", r.text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferroflow generate: {e}");
            ExitCode::from(1)
        }
    }
}
