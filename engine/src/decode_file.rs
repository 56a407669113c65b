//! `ferroflow decode`: pcap / pcapng files -> JSON lines, with per-exporter template state.

use std::io::Write;
use std::path::Path;

use ferroflow_codecs::json::{self, EncodeOptions};
use ferroflow_codecs::{DecodeStats, Decoder, DecoderConfig};
use ferroflow_io::pcap::{PcapReader, PcapStats};

/// Options of `ferroflow decode`.
#[derive(Debug, Clone, Default)]
pub struct DecodeFileOptions {
    pub decoder: DecoderConfig,
    pub encode: EncodeOptions,
}

/// What decoding a set of files found.
#[derive(Debug, Default, Clone)]
pub struct DecodeSummary {
    pub files: usize,
    pub pcap: PcapStats,
    pub decode: DecodeStats,
    /// Data sets still waiting for a template at the end of the input.
    pub held_pending: usize,
    pub documents: u64,
}

impl DecodeSummary {
    /// Human-readable summary (stderr of `ferroflow decode`).
    pub fn write_text(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let d = &self.decode;
        writeln!(
            w,
            "files={} frames={} udp_datagrams={} non_udp={} ip_fragments={} truncated_frames={} malformed_frames={} unsupported_linktype={}",
            self.files,
            self.pcap.frames,
            self.pcap.udp,
            self.pcap.non_udp,
            self.pcap.ip_fragments,
            self.pcap.truncated,
            self.pcap.malformed,
            self.pcap.unsupported_linktype
        )?;
        write!(w, "datagrams:")?;
        d.for_each(|name, label, v| {
            if name == "datagrams" {
                let _ = write!(w, " {label}={v}");
            }
        });
        writeln!(w)?;
        writeln!(
            w,
            "documents={} flow_records={} counter_samples={} options_records={} templates={} template_withdrawals={}",
            self.documents,
            d.records_total(),
            d.counter_samples,
            d.options_records,
            d.templates,
            d.template_withdrawals
        )?;
        writeln!(
            w,
            "template_misses={} held_sets={} held_sets_released={} held_sets_dropped={} held_pending_at_end={} sequence_gaps={}",
            d.template_misses, d.held_sets, d.held_sets_released, d.held_sets_dropped, self.held_pending, d.sequence_gaps
        )?;
        write!(w, "decode_errors={}", d.errors_total())?;
        d.for_each(|name, label, v| {
            if name == "decode_errors" && v > 0 {
                let _ = write!(w, " {label}={v}");
            }
        });
        writeln!(w)
    }
}

/// Errors that stop `ferroflow decode`.
#[derive(Debug, thiserror::Error)]
pub enum DecodeFileError {
    #[error(transparent)]
    Pcap(#[from] ferroflow_io::pcap::PcapError),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

/// Decode every file in order with one decoder (template state carries across files, as if
/// the captures were one stream), writing one JSON document per line to `out`.
pub fn decode_files(
    paths: &[impl AsRef<Path>],
    opts: &DecodeFileOptions,
    out: &mut dyn Write,
) -> Result<DecodeSummary, DecodeFileError> {
    let mut decoder = Decoder::new(opts.decoder.clone());
    let mut summary = DecodeSummary::default();
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut io_err: Option<std::io::Error> = None;
    for path in paths {
        let mut reader = PcapReader::open(path.as_ref())?;
        summary.files += 1;
        while let Some(dg) = reader.next_datagram() {
            let dg = dg?;
            let _ = decoder.decode(dg.src, dg.ts_ns, dg.payload, &mut |rec| {
                buf.clear();
                json::encode(rec, &opts.encode, &mut buf);
                buf.push(b'\n');
                if io_err.is_none() {
                    if let Err(e) = out.write_all(&buf) {
                        io_err = Some(e);
                    }
                }
                summary.documents += 1;
            });
            if let Some(e) = io_err.take() {
                return Err(e.into());
            }
        }
        let st = reader.stats();
        let p = &mut summary.pcap;
        p.frames += st.frames;
        p.udp += st.udp;
        p.non_udp += st.non_udp;
        p.ip_fragments += st.ip_fragments;
        p.truncated += st.truncated;
        p.malformed += st.malformed;
        p.unsupported_linktype += st.unsupported_linktype;
    }
    out.flush()?;
    summary.decode = decoder.stats().clone();
    summary.held_pending = decoder.held_sets_pending();
    Ok(summary)
}
