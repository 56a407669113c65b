//! The stateful decoder: recognises the protocol by its version field, keeps per-exporter
//! template, sampling and held-data state, and calls the caller for every record.
//!
//! State is keyed by the exporter's transport session, its address and UDP source port (RFC 7011
//! scopes templates to the transport session: two exporting processes of one router may use
//! the same template id for different templates), then by (version, observation domain /
//! source id, template id). An exporter that restarts on a new port sends its templates again;
//! data that arrives first is held until they come.
//!
//! Layout: this file holds the public API ([`Decoder`], [`DecoderConfig`],
//! [`StoredTemplate`]), the dispatch on the version, v5 and sFlow, and the per-record `emit`;
//! `exporters` the exporters' segmented LRU, their per-exporter state and its bounds;
//! `cache` one exporter's templates (`TemplateCache`) and held data sets (`HeldSets`), which
//! own their byte accounting; `templated` NetFlow v9 and IPFIX, a datagram decoded in passes.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use crate::bytes::{be16, be32};
use crate::error::DecodeError;
use crate::record::{FlowProtocol, FlowRecord, Raw, SamplingSource, TimeBasis};
use crate::set::Set;
use crate::stats::DecodeStats;
use crate::template::{self, Template, WireField};
use crate::{ipfix, netflow5, netflow9, sflow};

mod cache;
mod exporters;
mod templated;
#[cfg(test)]
mod tests;

use cache::*;
use exporters::*;

/// The decoder's maps hash with foldhash, seeded at random per process: SipHash weighed on
/// short datagrams of fixed-length records (a handful of lookups per datagram: exporter,
/// template, domain). Foldhash is only minimally resistant to crafted collisions; every map
/// here is bounded (exporters, ports per address, templates and domains per exporter), so
/// collisions can slow a lookup, not grow without bound.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Bounds and switches of a [`Decoder`].
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    /// Multiply bytes/packets by the sampling rate.
    pub scale_sampling: bool,
    /// Templates and per-domain state not refreshed for this long are forgotten (0: never).
    pub template_timeout_ms: u64,
    /// Templates kept per exporter; the least recently refreshed is evicted beyond this.
    pub max_templates_per_exporter: usize,
    /// Exporters tracked; the least recently seen is evicted beyond this (exporters that
    /// delivered records in two datagrams are protected from newcomers: see [`Decoder`]).
    pub max_exporters: usize,
    /// Exporters tracked per IP address (one per UDP source port): a new port over this evicts
    /// that address's own oldest entry, never another address's.
    pub max_exporters_per_ip: usize,
    /// Per-domain state (sequence numbers, sampling tables, system init time, keyed by
    /// observation domain / source id / engine / sub-agent) kept per exporter; the least
    /// recently seen domain is evicted beyond this.
    pub max_domains_per_exporter: usize,
    /// Bytes of state one exporter may hold: its compiled templates (as measured by
    /// [`Template::heap_bytes`]) and its per-domain state; the oldest templates, then the
    /// oldest domains, are evicted beyond this.
    pub max_state_bytes_per_exporter: usize,
    /// Bytes of state across exporters: the least recently seen exporters (newcomers before
    /// protected ones) are evicted beyond this.
    pub max_state_bytes_total: usize,
    /// Bytes of data sets held per exporter while their template is unknown (0: hold nothing).
    pub max_held_bytes_per_exporter: usize,
    /// Bytes held in total across exporters.
    pub max_held_bytes_total: usize,
    /// How long a held data set waits for its template (0: until evicted by the byte bounds).
    pub max_hold_ms: u64,
    /// Records (flow records, counter samples and options records) decoded from one datagram,
    /// held sets it releases included; the rest of the datagram is skipped and counted.
    pub max_records_per_datagram: usize,
    /// A record whose time (end, else start, else export time) is more than this before the
    /// receive time is stamped with the receive time instead (0: no bound).
    pub max_past_ms: u64,
    /// The same, after the receive time (0: no bound).
    pub max_future_ms: u64,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            scale_sampling: false,
            template_timeout_ms: 30 * 60 * 1000,
            max_templates_per_exporter: 1024,
            max_exporters: 10_000,
            max_exporters_per_ip: 64,
            max_domains_per_exporter: 64,
            max_state_bytes_per_exporter: 4 << 20,
            max_state_bytes_total: 32 << 20,
            max_held_bytes_per_exporter: 1 << 20,
            max_held_bytes_total: 64 << 20,
            max_hold_ms: 10 * 60 * 1000,
            max_records_per_datagram: 1024,
            max_past_ms: 3 * 24 * 3600 * 1000,
            max_future_ms: 5 * 60 * 1000,
        }
    }
}

/// (version, domain, template id)
type TKey = (u16, u32, u16);
/// (version, domain)
type DKey = (u16, u32);

/// An insertion-ordered map with O(1) move-to-back and pop-front: the LRU lists.
type Lru<K, V> = hashlink::LinkedHashMap<K, V, foldhash::fast::RandomState>;

/// What one entry of an [`Lru`] costs beyond its key and value: the node's two links, the
/// allocator's overhead for the node, and the table's slot and control byte.
const NODE_OVERHEAD: usize = 16 + 16 + 8 + 1;

#[derive(Debug, Clone, Copy)]
struct Header {
    version: u16,
    export_ns: u64,
    /// v9 only
    uptime_ms: Option<u32>,
    sequence: u32,
    domain: u32,
}

/// A template as kept in the store (for persistence across restarts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTemplate {
    pub exporter: SocketAddr,
    pub version: u16,
    pub domain: u32,
    pub template_id: u16,
    pub is_options: bool,
    pub fields: Vec<WireField>,
}

/// Decodes datagrams of every protocol, with state per exporter.
///
/// Every piece of per-source state is bounded, by count and by bytes, and evicted oldest
/// first in O(1): exporters (a segmented LRU with a per-address port quota, see
/// [`DecoderConfig`]), templates per exporter (by count and by their measured bytes),
/// per-domain state per exporter (by count, and in the same byte budget), held data (by
/// bytes and time).
#[derive(Debug, Default)]
pub struct Decoder {
    cfg: DecoderConfig,
    stats: DecodeStats,
    exporters: Exporters,
    held_bytes_total: usize,
    state_bytes_total: usize,
    fields_buf: Vec<WireField>,
    new_keys: Vec<TKey>,
    /// whether the exporter of the datagram being decoded is on probation
    on_probation: bool,
}

/// Per-datagram limits and counts of [`Decoder::emit`].
struct Emit {
    scale: bool,
    /// records this datagram may still yield
    budget: usize,
    /// a record with a time outside lo..=hi gets `now` as its timestamp
    lo: u64,
    hi: u64,
    now: u64,
    /// whether the budget ran out
    capped: bool,
}

impl Emit {
    fn new(cfg: &DecoderConfig, now_ns: u64) -> Emit {
        let ms = |v: u64| v.saturating_mul(1_000_000);
        Emit {
            scale: cfg.scale_sampling,
            budget: cfg.max_records_per_datagram,
            lo: match cfg.max_past_ms {
                0 => 0,
                p => now_ns.saturating_sub(ms(p)),
            },
            hi: match cfg.max_future_ms {
                0 => u64::MAX,
                f => now_ns.saturating_add(ms(f)),
            },
            now: now_ns,
            capped: false,
        }
    }

    /// Take one record from the budget: false when it is spent (counted once per datagram).
    #[inline]
    fn take(&mut self) -> bool {
        if self.budget == 0 {
            self.capped = true;
            return false;
        }
        self.budget -= 1;
        true
    }
}

impl Decoder {
    pub fn new(cfg: DecoderConfig) -> Self {
        Decoder {
            cfg,
            ..Default::default()
        }
    }

    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// Number of exporters with state.
    pub fn exporters(&self) -> usize {
        self.exporters.len()
    }

    /// Exporters in the protected segment (delivered records in two datagrams).
    pub fn protected_exporters(&self) -> usize {
        self.exporters.protected.len()
    }

    /// Data sets still held for a template that has not arrived.
    pub fn held_sets_pending(&self) -> usize {
        self.exporters.values().map(|e| e.held.len()).sum()
    }

    /// Bytes held in total.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes_total
    }

    /// Bytes of state (templates, domains, exporters) as counted in the state bounds.
    pub fn state_bytes(&self) -> usize {
        self.state_bytes_total
    }

    /// Templates known, across exporters.
    pub fn templates(&self) -> usize {
        self.exporters.values().map(|e| e.templates.len()).sum()
    }

    /// Per-domain states kept, across exporters.
    pub fn domains(&self) -> usize {
        self.exporters.values().map(|e| e.domains.len()).sum()
    }

    /// Whether `exporter` has state.
    pub fn knows(&self, exporter: SocketAddr) -> bool {
        self.exporters.contains(&exporter)
    }

    /// Decode one datagram from `exporter` received at `now_ns` (ns since the epoch), calling
    /// `f` for each record, including held records that this datagram's templates released.
    /// Errors are counted in [`Decoder::stats`] (once each) and returned (the last one) for
    /// logging; nothing here panics on bad input.
    pub fn decode(
        &mut self,
        exporter: SocketAddr,
        now_ns: u64,
        payload: &[u8],
        f: &mut dyn FnMut(&FlowRecord<'_>),
    ) -> Result<(), DecodeError> {
        let mut em = Emit::new(&self.cfg, now_ns);
        // decode_templated counts the errors it returns itself
        let (r, counted) = if be32(payload, 0) == Some(5) {
            self.stats.datagrams[FlowProtocol::Sflow5.index()] += 1;
            (
                self.decode_sflow(exporter, now_ns, payload, &mut em, f),
                false,
            )
        } else {
            match be16(payload, 0) {
                Some(5) => {
                    self.stats.datagrams[FlowProtocol::NetflowV5.index()] += 1;
                    (self.decode_v5(exporter, now_ns, payload, &mut em, f), false)
                }
                Some(9) => {
                    self.stats.datagrams[FlowProtocol::NetflowV9.index()] += 1;
                    (
                        self.decode_templated(exporter, now_ns, payload, 9, &mut em, f),
                        true,
                    )
                }
                Some(10) => {
                    self.stats.datagrams[FlowProtocol::Ipfix.index()] += 1;
                    (
                        self.decode_templated(exporter, now_ns, payload, 10, &mut em, f),
                        true,
                    )
                }
                Some(v) => (
                    Err(DecodeError::UnsupportedVersion {
                        version: u32::from(v),
                    }),
                    false,
                ),
                None => (
                    Err(DecodeError::truncated("version", 0, 2, payload.len())),
                    false,
                ),
            }
        };
        if let Err(e) = r {
            if !counted {
                self.stats.error(e);
            }
        }
        if em.capped {
            self.stats.datagrams_record_capped += 1;
        }
        if self.on_probation && em.budget < self.cfg.max_records_per_datagram {
            self.promote(exporter);
        }
        if self.state_bytes_total > self.cfg.max_state_bytes_total {
            self.shed_state(exporter);
        }
        r
    }
}

impl Decoder {
    fn seq_gap(stats: &mut DecodeStats, d: &mut Domain, seq: u32, advance: u32) {
        if let Some(expected) = d.next_seq {
            let diff = seq.wrapping_sub(expected);
            // ahead by a plausible amount: lost; behind or far off: reordering or a restart
            if diff != 0 && diff < 1_000_000 {
                stats.sequence_gaps += u64::from(diff);
            }
        }
        d.next_seq = Some(seq.wrapping_add(advance));
    }

    /// Hand one record to the caller: the records budget, the time window, sampling scale.
    #[inline]
    fn emit(
        stats: &mut DecodeStats,
        em: &mut Emit,
        rec: &mut FlowRecord<'_>,
        f: &mut dyn FnMut(&FlowRecord<'_>),
    ) {
        if em.scale {
            rec.scale_by_sampling();
        }
        rec.timestamp_clamp = None;
        if let Some(ts) = rec.own_timestamp_ns() {
            if ts < em.lo || ts > em.hi {
                rec.timestamp_clamp = Some((ts, em.now));
                stats.timestamps_clamped += 1;
            }
        }
        match rec.kind {
            crate::record::RecordKind::Flow => stats.records[rec.protocol.index()] += 1,
            crate::record::RecordKind::Counters => stats.counter_samples += 1,
        }
        f(rec);
    }

    /// Sequence accounting of a datagram without templates (v5, sFlow): `exporter` seen, its
    /// domain `key` created within the bounds, the gap to `seq` counted, `advance` expected next.
    fn sequence(&mut self, exporter: SocketAddr, key: DKey, seq: u32, advance: u32, now_ns: u64) {
        self.state(exporter, now_ns);
        let Decoder {
            cfg,
            stats,
            exporters,
            state_bytes_total,
            ..
        } = self;
        let st = exporters.get_mut(&exporter).expect("state created above");
        let d = Self::domain(st, key, now_ns, cfg, stats, state_bytes_total);
        Self::seq_gap(stats, d, seq, advance);
    }

    fn decode_v5(
        &mut self,
        exporter: SocketAddr,
        now_ns: u64,
        payload: &[u8],
        em: &mut Emit,
        f: &mut dyn FnMut(&FlowRecord<'_>),
    ) -> Result<(), DecodeError> {
        let p = netflow5::Packet::new_checked(payload)?;
        {
            let (seq, count, dom) = (
                p.flow_sequence(),
                p.count(),
                u32::from(p.engine_type()) << 8 | u32::from(p.engine_id()),
            );
            self.sequence(exporter, (5, dom), seq, u32::from(count), now_ns);
        }
        let stats = &mut self.stats;
        netflow5::decode(exporter, payload, &mut |r| {
            if em.take() {
                let mut r = *r;
                Self::emit(stats, em, &mut r, f);
            }
        })
        .map(|_| ())
    }

    fn decode_sflow(
        &mut self,
        exporter: SocketAddr,
        now_ns: u64,
        payload: &[u8],
        em: &mut Emit,
        f: &mut dyn FnMut(&FlowRecord<'_>),
    ) -> Result<(), DecodeError> {
        let dg = sflow::Datagram::new_checked(payload)?;
        {
            let (seq, sub) = (dg.sequence_number(), dg.sub_agent_id());
            self.sequence(exporter, (5 << 8, sub), seq, 1, now_ns);
        }
        let mut counts = DecodeStats::default();
        let mut errs = DecodeStats::default();
        let r = sflow::decode(exporter, payload, &mut errs, &mut |r| {
            if em.take() {
                let mut r = *r;
                // sFlow carries no wall-clock time: the receive time stands in for the export
                // time
                r.export_time_ns = r.export_time_ns.or(Some(now_ns));
                Self::emit(&mut counts, em, &mut r, f);
            }
        });
        self.stats.merge(&errs);
        self.stats.records[FlowProtocol::Sflow5.index()] +=
            counts.records[FlowProtocol::Sflow5.index()];
        self.stats.counter_samples += counts.counter_samples;
        self.stats.timestamps_clamped += counts.timestamps_clamped;
        r
    }

    /// Drop held data older than `max_hold_ms`, and templates and domain state older than
    /// the template timeout, across all exporters. Call it periodically (the collector does
    /// once a second). Costs O(exporters + what expires): each exporter's templates and
    /// domains are kept oldest first.
    pub fn expire(&mut self, now_ns: u64) {
        let cfg = &self.cfg;
        for st in self.exporters.values_mut() {
            self.stats.held_sets_dropped +=
                st.held
                    .expire(now_ns, cfg.max_hold_ms, &mut self.held_bytes_total);
            if cfg.template_timeout_ms > 0 {
                let (timeout, total) = (cfg.template_timeout_ms, &mut self.state_bytes_total);
                self.stats.templates_evicted += st.templates.expire_older(now_ns, timeout, total);
                self.stats.domains_evicted += st.expire_domains(now_ns, timeout, total);
            }
        }
    }

    /// Every template known, for the persisted template store.
    pub fn export_templates(&self) -> Vec<StoredTemplate> {
        let mut out = Vec::new();
        for (ip, st) in self.exporters.iter() {
            for (k, e) in st.templates.iter() {
                out.push(StoredTemplate {
                    exporter: *ip,
                    version: k.0,
                    domain: k.1,
                    template_id: k.2,
                    is_options: e.tpl.is_options,
                    fields: e
                        .tpl
                        .fields
                        .iter()
                        .map(|s| WireField {
                            id: s.id,
                            enterprise: s.enterprise,
                            len: s.len,
                            scope: s.scope,
                        })
                        .collect(),
                });
            }
        }
        out.sort_by_key(|t| (t.exporter, t.version, t.domain, t.template_id));
        out
    }

    /// Load templates from the persisted store (as if received at `now_ns`), within the
    /// bounds.
    pub fn import_templates(&mut self, templates: &[StoredTemplate], now_ns: u64) -> usize {
        let mut n = 0;
        for t in templates {
            if let Ok(tpl) =
                Template::compile(t.version, t.template_id, t.is_options, &t.fields, &[])
            {
                self.state(t.exporter, now_ns);
                let Decoder {
                    cfg,
                    stats,
                    exporters,
                    state_bytes_total,
                    ..
                } = self;
                let st = exporters.get_mut(&t.exporter).expect("state created above");
                let key = (t.version, t.domain, t.template_id);
                if st.store(key, tpl, now_ns, cfg, stats, state_bytes_total) {
                    n += 1;
                }
                if self.state_bytes_total > self.cfg.max_state_bytes_total {
                    self.shed_state(t.exporter);
                }
            }
        }
        n
    }

    /// Sampling state for persistence: (exporter, version, domain, sampler id, rate).
    pub fn export_sampling(&self) -> Vec<(SocketAddr, u16, u32, Option<u64>, u32)> {
        let mut out = Vec::new();
        for (ip, st) in self.exporters.iter() {
            for (k, d) in &st.domains {
                for &(sid, rate) in &d.sampling {
                    out.push((*ip, k.0, k.1, sid, rate));
                }
            }
        }
        out.sort();
        out
    }

    /// Load sampling state saved by [`Decoder::export_sampling`].
    pub fn import_sampling(
        &mut self,
        entries: &[(SocketAddr, u16, u32, Option<u64>, u32)],
        now_ns: u64,
    ) {
        for &(ip, v, dom, sid, rate) in entries {
            self.state(ip, now_ns);
            let Decoder {
                cfg,
                stats,
                exporters,
                state_bytes_total,
                ..
            } = self;
            let st = exporters.get_mut(&ip).expect("state created above");
            Self::domain(st, (v, dom), now_ns, cfg, stats, state_bytes_total);
            let room = cfg
                .max_state_bytes_per_exporter
                .saturating_sub(st.templates.bytes());
            if let Some(d) = st.domains.get_mut(&(v, dom)) {
                set_rate(d, &mut st.own_bytes, state_bytes_total, room, sid, rate);
            }
        }
    }
}
