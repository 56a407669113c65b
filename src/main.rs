//! `ferroflow`: one binary, one subcommand per job.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ferroflow_codecs::DecoderConfig;
use ferroflow_engine::decode_file::{decode_files, DecodeFileOptions};

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
    /// Decode pcap / pcapng captures of flow export traffic to JSON lines on stdout.
    ///
    /// Every UDP datagram is recognised by its version field, whatever its port; template
    /// state is kept per exporter across all the files given, in order. A summary of counts
    /// goes to stderr.
    Decode {
        /// Capture files (pcap or pcapng).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Multiply bytes and packets by the sampling rate.
        #[arg(long)]
        scale_sampling: bool,
        /// Leave out the raw `netflow.*` / `sflow.*` elements (ECS fields only).
        #[arg(long)]
        no_raw: bool,
        /// Forget templates not refreshed for this many seconds of capture time (0: never).
        #[arg(long, default_value_t = 0)]
        template_timeout: u64,
        /// Hold data sets without a template for at most this many seconds of capture time
        /// (0: until the end of the input).
        #[arg(long, default_value_t = 0)]
        max_hold: u64,
        /// Print no summary on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode {
            files,
            scale_sampling,
            no_raw,
            template_timeout,
            max_hold,
            quiet,
        } => {
            let opts = DecodeFileOptions {
                decoder: DecoderConfig {
                    scale_sampling,
                    template_timeout_ms: template_timeout * 1000,
                    max_hold_ms: max_hold * 1000,
                    ..DecoderConfig::default()
                },
                encode: ferroflow_codecs::json::EncodeOptions { no_raw },
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
            match decode_files(&files, &opts, &mut out) {
                Ok(summary) => {
                    if !quiet {
                        let _ = summary.write_text(&mut std::io::stderr());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    let _ = out.flush();
                    eprintln!("ferroflow decode: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
