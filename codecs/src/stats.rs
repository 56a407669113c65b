//! Plain per-decoder counters: incremented on the hot path, published by the caller.

use crate::error::{DecodeError, ErrorKind};
use crate::record::FlowProtocol;

/// What a [`crate::decoder::Decoder`] has seen. All counters only grow.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DecodeStats {
    /// Datagrams handed to the decoder, by protocol (`FlowProtocol::index`); unrecognised ones
    /// are counted in `errors` as `unsupported_version`.
    pub datagrams: [u64; 4],
    /// Flow records emitted, by protocol.
    pub records: [u64; 4],
    /// sFlow counter samples emitted (as their own documents).
    pub counter_samples: u64,
    /// v9 / IPFIX options data records consumed (sampling, systemInitTime...).
    pub options_records: u64,
    /// Template and options-template records learned.
    pub templates: u64,
    /// IPFIX template withdrawals applied.
    pub template_withdrawals: u64,
    /// Templates evicted by the per-exporter cap or expiry.
    pub templates_evicted: u64,
    /// Data sets that arrived before their template.
    pub template_misses: u64,
    /// Data sets held for a template that had not arrived yet.
    pub held_sets: u64,
    /// Held data sets decoded once their template arrived.
    pub held_sets_released: u64,
    /// Held data sets dropped (too old, or over the per-exporter / total bound).
    pub held_sets_dropped: u64,
    /// Records lost according to sequence numbers (NetFlow v5/v9, IPFIX, sFlow).
    pub sequence_gaps: u64,
    /// Exporters whose state was evicted (any reason: over `max_exporters`, the per-address
    /// quota or the state byte bound).
    pub exporters_evicted: u64,
    /// ... of which to keep an address within `max_exporters_per_ip`.
    pub exporters_evicted_ip_quota: u64,
    /// ... of which to keep the state within `max_state_bytes_total`.
    pub exporters_evicted_state_bytes: u64,
    /// Per-domain states (sequence, sampling, system init time) evicted by the per-exporter
    /// cap or byte bound, or expired.
    pub domains_evicted: u64,
    /// Datagrams with more records than `max_records_per_datagram` (the rest were skipped).
    pub datagrams_record_capped: u64,
    /// Records whose own time lay outside the window around the receive time (their
    /// timestamp is the receive time).
    pub timestamps_clamped: u64,
    /// Decode errors by kind (`ErrorKind::index`).
    pub errors: [u64; 3],
    /// The newest error counted (for rate-limited logging: the caller compares
    /// [`DecodeStats::errors_total`] before and after a datagram to know whether it is that
    /// datagram's). Not a counter: [`DecodeStats::merge`] keeps `o`'s when it has one.
    last_error: Option<DecodeError>,
}

impl DecodeStats {
    #[inline]
    pub fn error(&mut self, e: DecodeError) {
        self.errors[e.kind().index()] += 1;
        self.last_error = Some(e);
    }

    /// The newest error counted by [`DecodeStats::error`].
    pub fn last_error(&self) -> Option<DecodeError> {
        self.last_error
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    pub fn records_total(&self) -> u64 {
        self.records.iter().sum()
    }

    pub fn datagrams_total(&self) -> u64 {
        self.datagrams.iter().sum()
    }

    /// Add `o` into `self` (publishing per-worker counters).
    pub fn merge(&mut self, o: &DecodeStats) {
        for i in 0..4 {
            self.datagrams[i] += o.datagrams[i];
            self.records[i] += o.records[i];
        }
        for i in 0..self.errors.len() {
            self.errors[i] += o.errors[i];
        }
        self.counter_samples += o.counter_samples;
        self.options_records += o.options_records;
        self.templates += o.templates;
        self.template_withdrawals += o.template_withdrawals;
        self.templates_evicted += o.templates_evicted;
        self.template_misses += o.template_misses;
        self.held_sets += o.held_sets;
        self.held_sets_released += o.held_sets_released;
        self.held_sets_dropped += o.held_sets_dropped;
        self.sequence_gaps += o.sequence_gaps;
        self.exporters_evicted += o.exporters_evicted;
        self.exporters_evicted_ip_quota += o.exporters_evicted_ip_quota;
        self.exporters_evicted_state_bytes += o.exporters_evicted_state_bytes;
        self.domains_evicted += o.domains_evicted;
        self.datagrams_record_capped += o.datagrams_record_capped;
        self.timestamps_clamped += o.timestamps_clamped;
        if o.last_error.is_some() {
            self.last_error = o.last_error;
        }
    }

    /// Every counter as `(name, label, value)`: `label` is a protocol or error kind, or "".
    pub fn for_each(&self, mut f: impl FnMut(&'static str, &'static str, u64)) {
        for p in FlowProtocol::ALL {
            f("datagrams", p.as_str(), self.datagrams[p.index()]);
            f("records", p.as_str(), self.records[p.index()]);
        }
        for k in ErrorKind::ALL {
            f("decode_errors", k.as_str(), self.errors[k.index()]);
        }
        f("counter_samples", "", self.counter_samples);
        f("options_records", "", self.options_records);
        f("templates", "", self.templates);
        f("template_withdrawals", "", self.template_withdrawals);
        f("templates_evicted", "", self.templates_evicted);
        f("template_misses", "", self.template_misses);
        f("held_sets", "", self.held_sets);
        f("held_sets_released", "", self.held_sets_released);
        f("held_sets_dropped", "", self.held_sets_dropped);
        f("sequence_gaps", "", self.sequence_gaps);
        f("exporters_evicted", "", self.exporters_evicted);
        f(
            "exporters_evicted_ip_quota",
            "",
            self.exporters_evicted_ip_quota,
        );
        f(
            "exporters_evicted_state_bytes",
            "",
            self.exporters_evicted_state_bytes,
        );
        f("domains_evicted", "", self.domains_evicted);
        f("datagrams_record_capped", "", self.datagrams_record_capped);
        f("timestamps_clamped", "", self.timestamps_clamped);
    }
}
