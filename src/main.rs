//! `ferroflow`: one binary, one subcommand per job.

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ferroflow",
    version,
    about = "NetFlow v5/v9, IPFIX and sFlow v5 collector"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive flow export traffic on UDP and write one JSON document per flow record.
    ///
    /// With no options: listens on 0.0.0.0:2055 (NetFlow/IPFIX), 4739 (IPFIX) and 6343
    /// (sFlow), prints documents on stdout, metrics on http://127.0.0.1:9102/metrics.
    /// SIGTERM / SIGINT: stop receiving, deliver everything accepted, exit.
    Collect(cmd::collect::Args),
    /// Decode pcap / pcapng captures of flow export traffic to JSON lines on stdout.
    ///
    /// Every UDP datagram is recognised by its version field, whatever its port; template
    /// state is kept per exporter across all the files given, in order. A summary of counts
    /// goes to stderr.
    Decode(cmd::decode::Args),
    /// Consume the collector's documents from Kafka and index them into Elasticsearch /
    /// OpenSearch with _bulk, exactly once per Kafka record (deterministic ids, offsets
    /// committed after the bulk items are written or dead-lettered).
    ///
    /// With no options: topics netflow, ipfix, sflow on 127.0.0.1:9092, group
    /// ferroflow-index, into http://127.0.0.1:9200 as ferroflow-<protocol>-YYYY.MM.DD,
    /// metrics on http://127.0.0.1:9103/metrics. SIGTERM / SIGINT: finish and commit, exit.
    Index(Box<cmd::index::Args>),
    /// Report the CPU topology, NIC queues and IRQs, kernel settings and a recommended core
    /// plan for the collector (reads /sys and /proc).
    Tune {
        /// Configuration file whose settings the plan is for.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Read /sys and /proc under this root (for captured trees).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Print only the recommended config snippet (TOML).
        #[arg(long)]
        toml: bool,
        /// Write the recommended sysctls to /proc/sys (root only).
        #[arg(long)]
        apply: bool,
    },
    /// Send synthetic NetFlow v5/v9, IPFIX or sFlow export traffic at a target rate (many
    /// exporters, templates, sampling, sendmmsg from pinned threads). Prints what it sent.
    Generate(cmd::generate::Args),
    /// Re-send the UDP payloads of a pcap/pcapng capture to a collector at a rate, looping.
    Replay(cmd::replay::Args),
    /// Benchmark `ferroflow collect` (or a peer: goflow2, nfacctd, sfacctd, nfcapd) with
    /// generated traffic: throughput, loss per stage, latency, CPU per million flows; one
    /// rate or a search for the highest rate within a loss target. Progress on stderr.
    Bench(cmd::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Collect(a) => cmd::collect::run(a),
        Command::Decode(a) => cmd::decode::run(a),
        Command::Index(a) => cmd::index::run(*a),
        Command::Tune {
            config,
            root,
            toml,
            apply,
        } => cmd::tune::run(config, root, toml, apply),
        Command::Generate(a) => cmd::generate::run(a),
        Command::Replay(a) => cmd::replay::run(a),
        Command::Bench(a) => cmd::bench::run(a),
    }
}
