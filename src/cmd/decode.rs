use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ferroflow_codecs::DecoderConfig;
use ferroflow_engine::decode_file::{decode_files, DecodeFileOptions};

#[derive(clap::Args)]
pub struct Args {
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
}

pub fn run(a: Args) -> ExitCode {
    let opts = DecodeFileOptions {
        decoder: DecoderConfig {
            scale_sampling: a.scale_sampling,
            template_timeout_ms: a.template_timeout * 1000,
            max_hold_ms: a.max_hold * 1000,
            ..DecoderConfig::default()
        },
        encode: ferroflow_codecs::json::EncodeOptions { no_raw: a.no_raw },
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    match decode_files(&a.files, &opts, &mut out) {
        Ok(summary) => {
            if !a.quiet {
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
