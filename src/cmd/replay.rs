//! `ferroflow replay`: re-send a capture's UDP payloads at a rate (ferroflow_perf::replay).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ferroflow_perf::replay::{self, ReplayConfig};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Capture file (pcap or pcapng).
    file: PathBuf,
    /// Collector address.
    #[arg(long)]
    to: SocketAddr,
    /// Packets per second (default: as fast as possible).
    #[arg(long)]
    rate: Option<f64>,
    /// Send the capture this many times.
    #[arg(long = "loop", default_value_t = 1)]
    loops: u64,
    /// Spread over this many source sockets (127.0.0.x); later loops use new ones.
    #[arg(long)]
    exporters: Option<usize>,
    /// Packets per sendmmsg call (1..64).
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Pin the sender to this core.
    #[arg(long)]
    pin: Option<usize>,
    /// Stop after this many seconds whatever is left (at most 3600).
    #[arg(long, default_value_t = 3600.0)]
    max_duration: f64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> ExitCode {
    if !(a.max_duration.is_finite() && a.max_duration > 0.0) {
        eprintln!("ferroflow replay: --max-duration must be positive");
        return ExitCode::from(2);
    }
    let cfg = ReplayConfig {
        path: a.file,
        target: a.to,
        rate: a.rate,
        loops: a.loops,
        exporters: a.exporters,
        batch: a.batch,
        pin: a.pin,
        max_duration: Duration::from_secs_f64(a.max_duration.min(3600.0)),
        stop: None,
    };
    match replay::run(&cfg) {
        Ok(r) => {
            if a.json {
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
            } else {
                print!("{}", r.text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferroflow replay: {}", super::error_chain(&e));
            ExitCode::from(1)
        }
    }
}
