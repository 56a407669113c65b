//! The stateful decoder: recognises the protocol by its version field, keeps per-exporter
//! template, sampling and held-data state, and calls the caller for every record.
//! (placeholder API: being written)

use std::net::SocketAddr;

use crate::record::FlowRecord;
use crate::stats::DecodeStats;

/// Bounds and switches of a [`Decoder`].
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    /// Multiply bytes/packets by the sampling rate.
    pub scale_sampling: bool,
    /// Templates not refreshed for this long are forgotten (0: never).
    pub template_timeout_ms: u64,
    /// Templates kept per exporter; the oldest is evicted beyond this.
    pub max_templates_per_exporter: usize,
    /// Exporters tracked; the least recently seen is evicted beyond this.
    pub max_exporters: usize,
    /// Bytes of data sets held per exporter while their template is unknown.
    pub max_held_bytes_per_exporter: usize,
    /// Bytes held in total across exporters.
    pub max_held_bytes_total: usize,
    /// How long a held data set waits for its template.
    pub max_hold_ms: u64,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            scale_sampling: false,
            template_timeout_ms: 30 * 60 * 1000,
            max_templates_per_exporter: 1024,
            max_exporters: 10_000,
            max_held_bytes_per_exporter: 1 << 20,
            max_held_bytes_total: 64 << 20,
            max_hold_ms: 10 * 60 * 1000,
        }
    }
}

/// Decodes datagrams of every protocol, with state per exporter.
#[derive(Debug, Default)]
pub struct Decoder {
    cfg: DecoderConfig,
    stats: DecodeStats,
}

impl Decoder {
    pub fn new(cfg: DecoderConfig) -> Self {
        Decoder {
            cfg,
            stats: DecodeStats::default(),
        }
    }

    /// Decode one datagram from `exporter` received at `now_ns` (ns since the epoch), calling
    /// `f` for each record, including held records that this datagram's templates released.
    /// Errors are counted in [`Decoder::stats`]; nothing here panics on bad input.
    pub fn decode(
        &mut self,
        exporter: SocketAddr,
        now_ns: u64,
        payload: &[u8],
        f: &mut dyn FnMut(&FlowRecord<'_>),
    ) {
        let _ = (&self.cfg, exporter, now_ns, payload, f);
    }

    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }
}
