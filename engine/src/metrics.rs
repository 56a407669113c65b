//! Counters published by the workers once per batch (or per second) and rendered as
//! Prometheus text. Metric names live in [`Metric`], one place.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use ferroflow_codecs::DecodeStats;
use hdrhistogram::Histogram;

use crate::sink::SinkCounters;

/// Every metric the collector exports.
#[derive(Debug, Clone, Copy)]
pub enum Metric {
    PacketsReceived,
    BytesReceived,
    RecvBatches,
    SocketDrops,
    RingDrops,
    NotAllowed,
    Datagrams,
    Records,
    CounterSamples,
    OptionsRecords,
    Templates,
    TemplateWithdrawals,
    TemplatesEvicted,
    TemplateMisses,
    HeldSets,
    HeldSetsReleased,
    HeldSetsDropped,
    HeldSetsPending,
    SequenceGaps,
    ExportersEvicted,
    ExportersEvictedIpQuota,
    ExportersEvictedStateBytes,
    DomainsEvicted,
    DatagramsRecordCapped,
    TimestampsClamped,
    DecodeErrors,
    SinkAccepted,
    SinkDelivered,
    SinkFailed,
    SinkDropped,
    SinkInFlight,
    ExporterPackets,
    ExporterBytes,
    ExporterRecords,
    ExporterDecodeErrors,
    ExporterTemplateMisses,
    ExporterSequenceGaps,
    WorkerErrors,
    WorkerLastError,
    Latency,
    Up,
}

impl Metric {
    pub fn name(self) -> &'static str {
        use Metric::*;
        match self {
            PacketsReceived => "ferroflow_packets_received_total",
            BytesReceived => "ferroflow_bytes_received_total",
            RecvBatches => "ferroflow_recv_batches_total",
            SocketDrops => "ferroflow_socket_drops_total",
            RingDrops => "ferroflow_ring_drops_total",
            NotAllowed => "ferroflow_datagrams_not_allowed_total",
            Datagrams => "ferroflow_datagrams_total",
            Records => "ferroflow_records_total",
            CounterSamples => "ferroflow_counter_samples_total",
            OptionsRecords => "ferroflow_options_records_total",
            Templates => "ferroflow_templates_received_total",
            TemplateWithdrawals => "ferroflow_template_withdrawals_total",
            TemplatesEvicted => "ferroflow_templates_evicted_total",
            TemplateMisses => "ferroflow_template_misses_total",
            HeldSets => "ferroflow_held_sets_total",
            HeldSetsReleased => "ferroflow_held_sets_released_total",
            HeldSetsDropped => "ferroflow_held_sets_dropped_total",
            HeldSetsPending => "ferroflow_held_sets_pending",
            SequenceGaps => "ferroflow_sequence_gaps_total",
            ExportersEvicted => "ferroflow_exporters_evicted_total",
            ExportersEvictedIpQuota => "ferroflow_exporters_evicted_ip_quota_total",
            ExportersEvictedStateBytes => "ferroflow_exporters_evicted_state_bytes_total",
            DomainsEvicted => "ferroflow_domains_evicted_total",
            DatagramsRecordCapped => "ferroflow_datagrams_record_capped_total",
            TimestampsClamped => "ferroflow_timestamps_clamped_total",
            DecodeErrors => "ferroflow_decode_errors_total",
            SinkAccepted => "ferroflow_sink_accepted_total",
            SinkDelivered => "ferroflow_sink_delivered_total",
            SinkFailed => "ferroflow_sink_failed_total",
            SinkDropped => "ferroflow_sink_dropped_total",
            SinkInFlight => "ferroflow_sink_in_flight",
            ExporterPackets => "ferroflow_exporter_packets_total",
            ExporterBytes => "ferroflow_exporter_bytes_total",
            ExporterRecords => "ferroflow_exporter_records_total",
            ExporterDecodeErrors => "ferroflow_exporter_decode_errors_total",
            ExporterTemplateMisses => "ferroflow_exporter_template_misses_total",
            ExporterSequenceGaps => "ferroflow_exporter_sequence_gaps_total",
            WorkerErrors => "ferroflow_worker_errors_total",
            WorkerLastError => "ferroflow_worker_last_error_info",
            Latency => "ferroflow_latency_seconds",
            Up => "ferroflow_up",
        }
    }

    pub fn help(self) -> &'static str {
        use Metric::*;
        match self {
            PacketsReceived => "UDP datagrams received",
            BytesReceived => "UDP payload bytes received",
            RecvBatches => "recvmmsg batches",
            SocketDrops => "datagrams the kernel dropped on the collector's sockets (SO_RXQ_OVFL)",
            RingDrops => "datagrams dropped on a full receive->decode ring (policy drop)",
            NotAllowed => "datagrams from exporters outside the allow-list",
            Datagrams => "datagrams decoded, by protocol",
            Records => "flow records decoded, by protocol",
            CounterSamples => "sFlow counter samples decoded",
            OptionsRecords => "v9/IPFIX options records consumed",
            Templates => "template records received",
            TemplateWithdrawals => "IPFIX template withdrawals applied",
            TemplatesEvicted => "templates evicted by expiry or the per-exporter cap",
            TemplateMisses => "data sets that arrived before their template",
            HeldSets => "data sets held for their template",
            HeldSetsReleased => "held data sets decoded once their template arrived",
            HeldSetsDropped => "held data sets dropped (too old or over the bounds)",
            HeldSetsPending => "data sets waiting for their template now",
            SequenceGaps => "records or datagrams missing according to sequence numbers",
            ExportersEvicted => {
                "exporter states evicted (max_exporters, the per-address quota, the state bytes)"
            }
            ExportersEvictedIpQuota => "exporter states evicted over max_exporters_per_ip",
            ExportersEvictedStateBytes => "exporter states evicted over max_state_bytes_total",
            DomainsEvicted => "per-domain states evicted by the per-exporter bounds or expired",
            DatagramsRecordCapped => "datagrams cut at max_records_per_datagram",
            TimestampsClamped => {
                "records whose own time lay outside the window, stamped with the receive time"
            }
            DecodeErrors => "decode errors, by kind",
            SinkAccepted => "documents handed to the sink",
            SinkDelivered => "documents the destination acknowledged",
            SinkFailed => "documents that failed for good",
            SinkDropped => "documents dropped on a full queue (policy drop)",
            SinkInFlight => "documents queued, not yet acknowledged",
            ExporterPackets => "datagrams per exporter",
            ExporterBytes => "payload bytes per exporter",
            ExporterRecords => "records per exporter",
            ExporterDecodeErrors => "decode errors per exporter",
            ExporterTemplateMisses => "template misses per exporter",
            ExporterSequenceGaps => "sequence gaps per exporter",
            WorkerErrors => "errors that stopped a worker or that its sink reported (each logged)",
            WorkerLastError => "a worker's last error, in the label error (value: 1)",
            Latency => "receive to sink acknowledgement latency",
            Up => "1 while the collector runs",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Metric::HeldSetsPending
            | Metric::SinkInFlight
            | Metric::WorkerLastError
            | Metric::Up => "gauge",
            Metric::Latency => "summary",
            _ => "counter",
        }
    }
}

/// A Prometheus label value: `\`, `"` and line feeds escaped, cut to 512 bytes (at a
/// character boundary).
struct LabelValue<'a>(&'a str);

impl std::fmt::Display for LabelValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut end = self.0.len().min(512);
        while !self.0.is_char_boundary(end) {
            end -= 1;
        }
        for c in self.0[..end].chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Per-exporter counters (kept by the worker that receives the exporter).
#[derive(Debug, Default, Clone, Copy)]
pub struct ExporterCounters {
    pub packets: u64,
    pub bytes: u64,
    pub records: u64,
    pub decode_errors: u64,
    pub template_misses: u64,
    pub sequence_gaps: u64,
}

/// What one worker publishes.
#[derive(Debug)]
pub struct WorkerMetrics {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub batches: AtomicU64,
    pub socket_drops: AtomicU64,
    pub ring_drops: AtomicU64,
    pub not_allowed: AtomicU64,
    pub held_pending: AtomicU64,
    /// Errors that stopped the worker or that its sink reported.
    pub errors: AtomicU64,
    /// The last of them, after its number in the order of every worker's errors.
    pub last_error: Mutex<Option<(u64, String)>>,
    pub decode: Mutex<DecodeStats>,
    pub sink: Mutex<SinkCounters>,
    pub exporters: Mutex<HashMap<SocketAddr, ExporterCounters>>,
    pub latency: Mutex<Histogram<u64>>,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        WorkerMetrics {
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            socket_drops: AtomicU64::new(0),
            ring_drops: AtomicU64::new(0),
            not_allowed: AtomicU64::new(0),
            held_pending: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
            decode: Mutex::new(DecodeStats::default()),
            sink: Mutex::new(SinkCounters::default()),
            exporters: Mutex::new(HashMap::new()),
            latency: Mutex::new(new_histogram()),
        }
    }
}

/// 1 us .. 1 h with 3 significant digits, in ns.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// All workers' metrics, shared with the HTTP server.
#[derive(Debug)]
pub struct Metrics {
    pub workers: Vec<WorkerMetrics>,
    pub started: Instant,
    /// Every worker has bound its sockets and its sink is ready.
    pub ready: AtomicBool,
    /// Set when shutting down (readyz answers 503).
    pub stopping: AtomicBool,
    /// Numbers the workers' errors, to tell which came last.
    error_seq: AtomicU64,
}

impl Metrics {
    pub fn new(workers: usize) -> Self {
        Metrics {
            workers: (0..workers).map(|_| WorkerMetrics::default()).collect(),
            started: Instant::now(),
            ready: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            error_seq: AtomicU64::new(0),
        }
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sum of the workers' decode statistics.
    pub fn decode_totals(&self) -> DecodeStats {
        let mut d = DecodeStats::default();
        for w in &self.workers {
            d.merge(&Self::lock(&w.decode));
        }
        d
    }

    /// Sum of the workers' sink counters.
    pub fn sink_totals(&self) -> SinkCounters {
        let mut s = SinkCounters::default();
        for w in &self.workers {
            let c = *Self::lock(&w.sink);
            s.accepted += c.accepted;
            s.delivered += c.delivered;
            s.failed += c.failed;
            s.dropped += c.dropped;
            s.in_flight += c.in_flight;
        }
        s
    }

    /// Counts an error of `worker` (which has logged it) and keeps it as its last one.
    pub fn worker_error(&self, worker: usize, msg: String) {
        if let Some(w) = self.workers.get(worker) {
            w.errors.fetch_add(1, Ordering::Relaxed);
            let seq = self.error_seq.fetch_add(1, Ordering::Relaxed);
            *Self::lock(&w.last_error) = Some((seq, msg));
        }
    }

    /// Errors of every worker.
    pub fn worker_errors_total(&self) -> u64 {
        self.workers
            .iter()
            .map(|w| w.errors.load(Ordering::Relaxed))
            .sum()
    }

    /// The most recent error of any worker.
    pub fn last_error(&self) -> Option<String> {
        self.workers
            .iter()
            .filter_map(|w| Self::lock(&w.last_error).clone())
            .max_by_key(|(seq, _)| *seq)
            .map(|(_, msg)| msg)
    }

    pub fn packets_total(&self) -> u64 {
        self.workers
            .iter()
            .map(|w| w.packets.load(Ordering::Relaxed))
            .sum()
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let header = |out: &mut String, m: Metric| {
            let _ = writeln!(
                out,
                "# HELP {} {}\n# TYPE {} {}",
                m.name(),
                m.help(),
                m.name(),
                m.kind()
            );
        };
        header(&mut out, Metric::Up);
        let _ = writeln!(out, "{} 1", Metric::Up.name());
        let per_worker = |out: &mut String, m: Metric, get: &dyn Fn(&WorkerMetrics) -> u64| {
            header(out, m);
            for (i, w) in self.workers.iter().enumerate() {
                let _ = writeln!(out, "{}{{worker=\"{i}\"}} {}", m.name(), get(w));
            }
        };
        per_worker(&mut out, Metric::PacketsReceived, &|w| {
            w.packets.load(Ordering::Relaxed)
        });
        per_worker(&mut out, Metric::BytesReceived, &|w| {
            w.bytes.load(Ordering::Relaxed)
        });
        per_worker(&mut out, Metric::RecvBatches, &|w| {
            w.batches.load(Ordering::Relaxed)
        });
        per_worker(&mut out, Metric::SocketDrops, &|w| {
            w.socket_drops.load(Ordering::Relaxed)
        });
        per_worker(&mut out, Metric::RingDrops, &|w| {
            w.ring_drops.load(Ordering::Relaxed)
        });
        per_worker(&mut out, Metric::NotAllowed, &|w| {
            w.not_allowed.load(Ordering::Relaxed)
        });
        per_worker(&mut out, Metric::HeldSetsPending, &|w| {
            w.held_pending.load(Ordering::Relaxed)
        });
        per_worker(&mut out, Metric::WorkerErrors, &|w| {
            w.errors.load(Ordering::Relaxed)
        });
        header(&mut out, Metric::WorkerLastError);
        for (i, w) in self.workers.iter().enumerate() {
            if let Some((_, msg)) = &*Self::lock(&w.last_error) {
                let _ = writeln!(
                    out,
                    "{}{{worker=\"{i}\",error=\"{}\"}} 1",
                    Metric::WorkerLastError.name(),
                    LabelValue(msg)
                );
            }
        }
        let sink_metric = |out: &mut String, m: Metric, get: &dyn Fn(&SinkCounters) -> u64| {
            header(out, m);
            for (i, w) in self.workers.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{}{{worker=\"{i}\"}} {}",
                    m.name(),
                    get(&Self::lock(&w.sink))
                );
            }
        };
        sink_metric(&mut out, Metric::SinkAccepted, &|c| c.accepted);
        sink_metric(&mut out, Metric::SinkDelivered, &|c| c.delivered);
        sink_metric(&mut out, Metric::SinkFailed, &|c| c.failed);
        sink_metric(&mut out, Metric::SinkDropped, &|c| c.dropped);
        sink_metric(&mut out, Metric::SinkInFlight, &|c| c.in_flight);

        let d = self.decode_totals();
        let mut by_label: Vec<(&'static str, &'static str, u64)> = Vec::new();
        d.for_each(|name, label, v| by_label.push((name, label, v)));
        let decode_metric = |name: &str| -> Option<(Metric, &'static str)> {
            Some(match name {
                "datagrams" => (Metric::Datagrams, "protocol"),
                "records" => (Metric::Records, "protocol"),
                "decode_errors" => (Metric::DecodeErrors, "kind"),
                "counter_samples" => (Metric::CounterSamples, ""),
                "options_records" => (Metric::OptionsRecords, ""),
                "templates" => (Metric::Templates, ""),
                "template_withdrawals" => (Metric::TemplateWithdrawals, ""),
                "templates_evicted" => (Metric::TemplatesEvicted, ""),
                "template_misses" => (Metric::TemplateMisses, ""),
                "held_sets" => (Metric::HeldSets, ""),
                "held_sets_released" => (Metric::HeldSetsReleased, ""),
                "held_sets_dropped" => (Metric::HeldSetsDropped, ""),
                "sequence_gaps" => (Metric::SequenceGaps, ""),
                "exporters_evicted" => (Metric::ExportersEvicted, ""),
                "exporters_evicted_ip_quota" => (Metric::ExportersEvictedIpQuota, ""),
                "exporters_evicted_state_bytes" => (Metric::ExportersEvictedStateBytes, ""),
                "domains_evicted" => (Metric::DomainsEvicted, ""),
                "datagrams_record_capped" => (Metric::DatagramsRecordCapped, ""),
                "timestamps_clamped" => (Metric::TimestampsClamped, ""),
                _ => return None,
            })
        };
        // group by family (the stats list protocols interleaved)
        let mut families: Vec<(&'static str, Vec<(&'static str, u64)>)> = Vec::new();
        for (name, label, v) in by_label {
            match families.iter_mut().find(|(n, _)| *n == name) {
                Some((_, vals)) => vals.push((label, v)),
                None => families.push((name, vec![(label, v)])),
            }
        }
        for (name, vals) in families {
            let Some((m, lname)) = decode_metric(name) else {
                continue;
            };
            header(&mut out, m);
            for (label, v) in vals {
                if lname.is_empty() {
                    let _ = writeln!(out, "{} {v}", m.name());
                } else {
                    let _ = writeln!(out, "{}{{{lname}=\"{label}\"}} {v}", m.name());
                }
            }
        }

        // per exporter
        let mut exp: HashMap<SocketAddr, ExporterCounters> = HashMap::new();
        for w in &self.workers {
            for (k, c) in Self::lock(&w.exporters).iter() {
                let e = exp.entry(*k).or_default();
                e.packets += c.packets;
                e.bytes += c.bytes;
                e.records += c.records;
                e.decode_errors += c.decode_errors;
                e.template_misses += c.template_misses;
                e.sequence_gaps += c.sequence_gaps;
            }
        }
        let mut exp: Vec<_> = exp.into_iter().collect();
        exp.sort_by_key(|(k, _)| *k);
        type Get = fn(&ExporterCounters) -> u64;
        let per_exporter: [(Metric, Get); 6] = [
            (Metric::ExporterPackets, |c| c.packets),
            (Metric::ExporterBytes, |c| c.bytes),
            (Metric::ExporterRecords, |c| c.records),
            (Metric::ExporterDecodeErrors, |c| c.decode_errors),
            (Metric::ExporterTemplateMisses, |c| c.template_misses),
            (Metric::ExporterSequenceGaps, |c| c.sequence_gaps),
        ];
        for (m, get) in per_exporter {
            header(&mut out, m);
            for (k, c) in &exp {
                let _ = writeln!(
                    out,
                    "{}{{exporter=\"{}\",port=\"{}\"}} {}",
                    m.name(),
                    k.ip(),
                    k.port(),
                    get(c)
                );
            }
        }

        // latency summary
        let mut h = new_histogram();
        for w in &self.workers {
            let _ = h.add(&*Self::lock(&w.latency));
        }
        header(&mut out, Metric::Latency);
        for q in [0.5, 0.9, 0.99, 0.999] {
            let _ = writeln!(
                out,
                "{}{{quantile=\"{q}\"}} {:.9}",
                Metric::Latency.name(),
                h.value_at_quantile(q) as f64 / 1e9
            );
        }
        let _ = writeln!(out, "{}_count {}", Metric::Latency.name(), h.len());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_once() {
        let m = Metrics::new(2);
        m.workers[0].packets.store(5, Ordering::Relaxed);
        m.workers[1].exporters.lock().unwrap().insert(
            "192.0.2.1:2055".parse().unwrap(),
            ExporterCounters {
                packets: 3,
                ..Default::default()
            },
        );
        m.workers[0]
            .latency
            .lock()
            .unwrap()
            .record(2_000_000)
            .unwrap();
        let text = m.render();
        assert!(text.contains("ferroflow_packets_received_total{worker=\"0\"} 5"));
        assert!(text
            .contains("ferroflow_exporter_packets_total{exporter=\"192.0.2.1\",port=\"2055\"} 3"));
        assert!(text.contains("ferroflow_records_total{protocol=\"ipfix\"} 0"));
        assert!(text.contains("ferroflow_latency_seconds{quantile=\"0.5\"} 0.002"));
        assert!(text.contains("ferroflow_worker_errors_total{worker=\"1\"} 0"));
        assert!(!text.contains("ferroflow_worker_last_error_info{"));
        let mut types = std::collections::HashSet::new();
        for l in text.lines().filter(|l| l.starts_with("# TYPE")) {
            assert!(types.insert(l.to_string()), "duplicate {l}");
        }
    }

    #[test]
    fn worker_errors_are_counted_and_the_last_one_kept() {
        let m = Metrics::new(2);
        assert_eq!(m.last_error(), None);
        m.worker_error(0, "worker 0: sink: first".into());
        m.worker_error(1, "worker 1: poll: \"quoted\" \\ and\nnewline".into());
        m.worker_error(0, "worker 0: sink: second".into());
        assert_eq!(m.worker_errors_total(), 3);
        assert_eq!(m.last_error().as_deref(), Some("worker 0: sink: second"));
        let text = m.render();
        assert!(text.contains("ferroflow_worker_errors_total{worker=\"0\"} 2"));
        assert!(text.contains("ferroflow_worker_errors_total{worker=\"1\"} 1"));
        assert!(text.contains(
            "ferroflow_worker_last_error_info{worker=\"0\",error=\"worker 0: sink: second\"} 1"
        ));
        assert!(text.contains(
            "ferroflow_worker_last_error_info{worker=\"1\",error=\"worker 1: poll: \\\"quoted\\\" \\\\ and\\nnewline\"} 1"
        ));
        // one line per sample: the escaped message stays on its line
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("ferroflow_worker_last_error_info"))
                .count(),
            2
        );
        let long = "é".repeat(400);
        m.worker_error(1, long);
        let line = m
            .render()
            .lines()
            .find(|l| l.starts_with("ferroflow_worker_last_error_info{worker=\"1\""))
            .unwrap()
            .to_string();
        assert!(line.len() < 600, "{}", line.len());
    }
}
