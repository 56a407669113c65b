//! The stateful decoder: recognises the protocol by its version field, keeps per-exporter
//! template, sampling and held-data state, and calls the caller for every record.
//!
//! State is keyed by the exporter's transport session, its address and UDP source port (RFC 7011
//! scopes templates to the transport session: two exporting processes of one router may use
//! the same template id for different templates), then by (version, observation domain /
//! source id, template id). An exporter that restarts on a new port sends its templates again;
//! data that arrives first is held until they come.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use crate::error::{be16, be32, DecodeError};
use crate::record::{FlowProtocol, FlowRecord, Raw, SamplingSource, TimeBasis};
use crate::set::Set;
use crate::stats::DecodeStats;
use crate::template::{self, Template, WireField};
use crate::{ipfix, netflow5, netflow9, sflow};

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

#[derive(Debug)]
struct TemplateEntry {
    tpl: Template,
    refreshed_ns: u64,
}

impl TemplateEntry {
    /// Bytes it counts for in the state bounds.
    fn cost(&self) -> usize {
        self.tpl.heap_bytes() - std::mem::size_of::<Template>()
            + std::mem::size_of::<(TKey, TemplateEntry)>()
            + NODE_OVERHEAD
    }
}

#[derive(Debug)]
struct Held {
    tid: u16,
    hdr: Header,
    exporter: SocketAddr,
    received_ns: u64,
    body: Vec<u8>,
}

/// State of one observation domain (v9 source id, IPFIX observation domain, v5 engine, sFlow
/// sub-agent) of an exporter.
#[derive(Debug, Default)]
struct Domain {
    seen_ns: u64,
    /// next expected sequence number
    next_seq: Option<u32>,
    /// sampler / selector id (None: options record without one) -> rate
    sampling: Vec<(Option<u64>, u32)>,
    system_init_ms: Option<u64>,
}

/// Sampler ids remembered per domain.
const MAX_SAMPLERS_PER_DOMAIN: usize = 256;

impl Domain {
    /// Bytes it counts for in the state bounds.
    fn cost(&self) -> usize {
        let table = self.sampling.capacity() * std::mem::size_of::<(Option<u64>, u32)>();
        std::mem::size_of::<(DKey, Domain)>()
            + NODE_OVERHEAD
            + if table > 0 { table + 16 } else { 0 }
    }
}

/// Bytes an exporter counts for before it holds anything.
const EXPORTER_BASE_BYTES: usize =
    std::mem::size_of::<(SocketAddr, ExporterState)>() + NODE_OVERHEAD + 16;

#[derive(Debug)]
struct ExporterState {
    last_seen_ns: u64,
    /// oldest refreshed first
    templates: Lru<TKey, TemplateEntry>,
    /// least recently seen first
    domains: Lru<DKey, Domain>,
    held: VecDeque<Held>,
    held_bytes: usize,
    /// templates, domains and this state itself, as counted in the state bounds
    state_bytes: usize,
    /// datagrams that yielded records (promotion to the protected segment at 2)
    record_datagrams: u8,
}

impl Default for ExporterState {
    fn default() -> Self {
        ExporterState {
            last_seen_ns: 0,
            templates: Lru::default(),
            domains: Lru::default(),
            held: VecDeque::new(),
            held_bytes: 0,
            state_bytes: EXPORTER_BASE_BYTES,
            record_datagrams: 0,
        }
    }
}

/// The exporters' states in two LRU segments (a segmented LRU): newcomers enter
/// `probation`; an exporter that delivered records in two datagrams moves to `protected`,
/// which holds at most three quarters of `max_exporters`. Evictions take probation's least
/// recently seen first, so a flood of spoofed sources (one datagram each) churns probation
/// and never reaches an established exporter. Per IP address at most `max_exporters_per_ip`
/// ports are tracked: a new port over that evicts the address's own oldest entry.
#[derive(Debug, Default)]
struct Exporters {
    probation: Lru<SocketAddr, ExporterState>,
    protected: Lru<SocketAddr, ExporterState>,
    /// ports tracked per address, oldest first
    ports: HashMap<IpAddr, VecDeque<u16>>,
}

/// Why an exporter's state goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eviction {
    Count,
    IpQuota,
    Bytes,
}

impl Exporters {
    fn len(&self) -> usize {
        self.probation.len() + self.protected.len()
    }

    fn contains(&self, a: &SocketAddr) -> bool {
        self.protected.contains_key(a) || self.probation.contains_key(a)
    }

    fn get_mut(&mut self, a: &SocketAddr) -> Option<&mut ExporterState> {
        match self.protected.get_mut(a) {
            Some(s) => Some(s),
            None => self.probation.get_mut(a),
        }
    }

    fn values(&self) -> impl Iterator<Item = &ExporterState> {
        self.protected.values().chain(self.probation.values())
    }

    fn iter(&self) -> impl Iterator<Item = (&SocketAddr, &ExporterState)> {
        self.protected.iter().chain(self.probation.iter())
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut ExporterState> {
        self.protected
            .values_mut()
            .chain(self.probation.values_mut())
    }

    /// Remove `a`'s state (from its segment and its address's port list).
    fn remove(&mut self, a: &SocketAddr) -> Option<ExporterState> {
        let st = self
            .protected
            .remove(a)
            .or_else(|| self.probation.remove(a))?;
        if let Some(ports) = self.ports.get_mut(&a.ip()) {
            // at most max_exporters_per_ip entries
            if let Some(i) = ports.iter().position(|&p| p == a.port()) {
                ports.remove(i);
            }
            if ports.is_empty() {
                self.ports.remove(&a.ip());
            }
        }
        Some(st)
    }

    /// The least recently seen exporter, newcomers first; never `keep`.
    fn victim(&self, keep: &SocketAddr) -> Option<SocketAddr> {
        for seg in [&self.probation, &self.protected] {
            let mut it = seg.keys();
            match it.next() {
                Some(k) if k != keep => return Some(*k),
                Some(_) => {
                    if let Some(k) = it.next() {
                        return Some(*k);
                    }
                }
                None => {}
            }
        }
        None
    }

    /// `a`'s address's oldest port still on probation, else its oldest port.
    fn ip_victim(&self, a: &SocketAddr) -> Option<SocketAddr> {
        let ports = self.ports.get(&a.ip())?;
        let on_probation = ports
            .iter()
            .map(|&p| SocketAddr::new(a.ip(), p))
            .find(|k| self.probation.contains_key(k));
        on_probation.or_else(|| ports.front().map(|&p| SocketAddr::new(a.ip(), p)))
    }
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

    /// The state of `a`, created (within the bounds) if new, marked as just seen (one lookup
    /// for a known exporter: callers take it with `exporters.get_mut` afterwards).
    fn state(&mut self, a: SocketAddr, now_ns: u64) {
        if let Some(st) = self.exporters.protected.to_back(&a) {
            st.last_seen_ns = st.last_seen_ns.max(now_ns);
            self.on_probation = false;
            return;
        }
        self.on_probation = true;
        if let Some(st) = self.exporters.probation.to_back(&a) {
            st.last_seen_ns = st.last_seen_ns.max(now_ns);
            return;
        }
        self.admit(a);
        if let Some(st) = self.exporters.probation.get_mut(&a) {
            st.last_seen_ns = now_ns;
        }
    }

    /// Make room for the new exporter `a` (its address's quota, then the count) and add it.
    fn admit(&mut self, a: SocketAddr) {
        let quota = self.cfg.max_exporters_per_ip.max(1);
        if self
            .exporters
            .ports
            .get(&a.ip())
            .is_some_and(|p| p.len() >= quota)
        {
            if let Some(v) = self.exporters.ip_victim(&a) {
                self.evict(&v, Eviction::IpQuota);
            }
        }
        while self.exporters.len() >= self.cfg.max_exporters.max(1) {
            match self.exporters.victim(&a) {
                Some(v) => self.evict(&v, Eviction::Count),
                None => break,
            }
        }
        self.exporters.probation.insert(a, ExporterState::default());
        self.exporters
            .ports
            .entry(a.ip())
            .or_default()
            .push_back(a.port());
        self.state_bytes_total += EXPORTER_BASE_BYTES;
    }

    fn evict(&mut self, a: &SocketAddr, why: Eviction) {
        let Some(s) = self.exporters.remove(a) else {
            return;
        };
        self.held_bytes_total -= s.held_bytes;
        self.state_bytes_total -= s.state_bytes;
        self.stats.held_sets_dropped += s.held.len() as u64;
        self.stats.templates_evicted += s.templates.len() as u64;
        self.stats.domains_evicted += s.domains.len() as u64;
        self.stats.exporters_evicted += 1;
        match why {
            Eviction::Count => {}
            Eviction::IpQuota => self.stats.exporters_evicted_ip_quota += 1,
            Eviction::Bytes => self.stats.exporters_evicted_state_bytes += 1,
        }
    }

    /// `a` yielded records: on its second such datagram it moves from probation to the
    /// protected segment (whose least recently seen member goes back to probation when full).
    fn promote(&mut self, a: SocketAddr) {
        let cap = self.protected_cap();
        if cap == 0 {
            return;
        }
        let Some(st) = self.exporters.probation.get_mut(&a) else {
            return;
        };
        st.record_datagrams = st.record_datagrams.saturating_add(1);
        if st.record_datagrams < 2 {
            return;
        }
        let st = self.exporters.probation.remove(&a).expect("present");
        self.exporters.protected.insert(a, st);
        while self.exporters.protected.len() > cap {
            let Some((k, mut v)) = self.exporters.protected.pop_front() else {
                break;
            };
            v.record_datagrams = 0;
            self.exporters.probation.insert(k, v);
        }
    }

    /// Exporters the protected segment holds: three quarters of `max_exporters`, leaving
    /// newcomers at least one place.
    fn protected_cap(&self) -> usize {
        let n = self.cfg.max_exporters.max(1);
        n - (n / 4).max(1)
    }

    /// Over `max_state_bytes_total`: evict the least recently seen exporters other than
    /// `keep`, then `keep`'s own oldest templates and domains.
    fn shed_state(&mut self, keep: SocketAddr) {
        while self.state_bytes_total > self.cfg.max_state_bytes_total {
            match self.exporters.victim(&keep) {
                Some(v) => self.evict(&v, Eviction::Bytes),
                None => break,
            }
        }
        if self.state_bytes_total > self.cfg.max_state_bytes_total {
            let Decoder {
                cfg,
                stats,
                exporters,
                state_bytes_total,
                ..
            } = self;
            if let Some(st) = exporters.get_mut(&keep) {
                let want = st
                    .state_bytes
                    .saturating_sub(*state_bytes_total - cfg.max_state_bytes_total);
                shrink(st, want, state_bytes_total, stats);
            }
        }
    }

    /// The exporter's domain `key`, created within the per-exporter bounds, marked as seen.
    fn domain<'s>(
        st: &'s mut ExporterState,
        key: DKey,
        now_ns: u64,
        cfg: &DecoderConfig,
        stats: &mut DecodeStats,
        total: &mut usize,
    ) -> &'s mut Domain {
        Self::touch_domain(st, key, now_ns, cfg, stats, total);
        st.domains.get_mut(&key).expect("present or inserted")
    }

    /// [`Decoder::domain`] without the result: one lookup for a known domain.
    fn touch_domain(
        st: &mut ExporterState,
        key: DKey,
        now_ns: u64,
        cfg: &DecoderConfig,
        stats: &mut DecodeStats,
        total: &mut usize,
    ) {
        if let Some(d) = st.domains.to_back(&key) {
            d.seen_ns = d.seen_ns.max(now_ns);
            return;
        }
        {
            while st.domains.len() >= cfg.max_domains_per_exporter.max(1) {
                let Some((_, d)) = st.domains.pop_front() else {
                    break;
                };
                st.state_bytes -= d.cost();
                *total -= d.cost();
                stats.domains_evicted += 1;
            }
            let d = Domain::default();
            let cost = d.cost();
            if st.state_bytes + cost > cfg.max_state_bytes_per_exporter {
                shrink(
                    st,
                    cfg.max_state_bytes_per_exporter.saturating_sub(cost),
                    total,
                    stats,
                );
            }
            st.state_bytes += cost;
            *total += cost;
            st.domains.insert(
                key,
                Domain {
                    seen_ns: now_ns,
                    ..d
                },
            );
        }
    }

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

    fn decode_templated(
        &mut self,
        exporter: SocketAddr,
        now_ns: u64,
        payload: &[u8],
        version: u16,
        em: &mut Emit,
        f: &mut dyn FnMut(&FlowRecord<'_>),
    ) -> Result<(), DecodeError> {
        let header = if version == 9 {
            netflow9::Packet::new_checked(payload).map(|p| {
                (
                    Header {
                        version,
                        export_ns: u64::from(p.unix_secs()) * 1_000_000_000,
                        uptime_ms: Some(p.sys_uptime_ms()),
                        sequence: p.sequence(),
                        domain: p.source_id(),
                    },
                    &payload[netflow9::HEADER_LEN..],
                    netflow9::HEADER_LEN,
                )
            })
        } else {
            ipfix::Message::new_checked(payload).map(|m| {
                (
                    Header {
                        version,
                        export_ns: u64::from(m.export_time()) * 1_000_000_000,
                        uptime_ms: None,
                        sequence: m.sequence(),
                        domain: m.observation_domain(),
                    },
                    &payload[ipfix::HEADER_LEN..usize::from(m.length())],
                    ipfix::HEADER_LEN,
                )
            })
        };
        let (hdr, body, base) = match header {
            Ok(h) => h,
            Err(e) => {
                self.stats.error(e);
                return Err(e);
            }
        };
        let (tset, oset) = if version == 9 {
            (netflow9::TEMPLATE_SET, netflow9::OPTIONS_TEMPLATE_SET)
        } else {
            (ipfix::TEMPLATE_SET, ipfix::OPTIONS_TEMPLATE_SET)
        };
        self.state(exporter, now_ns);
        let Decoder {
            cfg,
            stats,
            exporters,
            held_bytes_total,
            state_bytes_total,
            fields_buf,
            new_keys,
            ..
        } = self;
        let st = exporters.get_mut(&exporter).expect("state created above");
        let dkey = (version, hdr.domain);
        Self::touch_domain(st, dkey, now_ns, cfg, stats, state_bytes_total);
        let mut last_err = None;

        // expire held data of this exporter
        if cfg.max_hold_ms > 0 {
            while let Some(h) = st.held.front() {
                if h.received_ns.saturating_add(cfg.max_hold_ms * 1_000_000) >= now_ns {
                    break;
                }
                let h = st.held.pop_front().expect("front exists");
                st.held_bytes -= held_cost(&h.body);
                *held_bytes_total -= held_cost(&h.body);
                stats.held_sets_dropped += 1;
            }
        }

        // pass 1: templates
        new_keys.clear();
        for set in crate::set::Sets::new(body, base) {
            let set = match set {
                Ok(s) => s,
                Err(e) => {
                    stats.error(e);
                    last_err = Some(e);
                    break;
                }
            };
            if set.id != tset && set.id != oset {
                continue;
            }
            let options = set.id == oset;
            let r = template::parse_template_set(
                version,
                options,
                set.body,
                set.offset + 4,
                fields_buf,
                &mut |tid, fields, wire| {
                    if fields.is_empty() {
                        // IPFIX withdrawal: one template, or all of the set's kind (tid == set id)
                        if tid == tset || tid == oset {
                            let (before, bytes_before) = (st.templates.len(), st.state_bytes);
                            let mut freed = 0;
                            st.templates.retain(|k, e| {
                                let keep = !(k.0 == version
                                    && k.1 == hdr.domain
                                    && e.tpl.is_options == options);
                                if !keep {
                                    freed += e.cost();
                                }
                                keep
                            });
                            st.state_bytes = bytes_before - freed;
                            *state_bytes_total -= freed;
                            stats.template_withdrawals += (before - st.templates.len()) as u64;
                        } else if let Some(e) = st.templates.remove(&(version, hdr.domain, tid)) {
                            st.state_bytes -= e.cost();
                            *state_bytes_total -= e.cost();
                            stats.template_withdrawals += 1;
                        }
                        return;
                    }
                    let key = (version, hdr.domain, tid);
                    if let Some(e) = st.templates.get(&key) {
                        if e.tpl.wire == wire {
                            // resent unchanged (exporters refresh templates every few seconds
                            // or packets): keep the compiled template, refresh its time and
                            // its place in the eviction order
                            stats.templates += 1;
                            if let Some(e) = st.templates.to_back(&key) {
                                e.refreshed_ns = now_ns;
                            }
                            new_keys.push(key);
                            return;
                        }
                    }
                    match Template::compile(version, tid, options, fields, wire) {
                        Ok(tpl) => {
                            stats.templates += 1;
                            let entry = TemplateEntry {
                                tpl,
                                refreshed_ns: now_ns,
                            };
                            if put_template(st, key, entry, cfg, stats, state_bytes_total) {
                                new_keys.push(key);
                            }
                        }
                        Err(e) => stats.error(e),
                    }
                },
            );
            if let Err(e) = r {
                stats.error(e);
                last_err = Some(e);
            }
        }

        // pass 2: options data of this datagram (sampling tables, systemInitTime)
        let mut data_records: u32 = 0;
        let mut missed = false;
        for set in crate::set::Sets::new(body, base).flatten() {
            if set.id < 256 {
                continue;
            }
            let key = (version, hdr.domain, set.id);
            if st
                .templates
                .get(&key)
                .is_some_and(|e| expired(e, now_ns, cfg.template_timeout_ms))
            {
                if let Some(e) = st.templates.remove(&key) {
                    st.state_bytes -= e.cost();
                    *state_bytes_total -= e.cost();
                }
                stats.templates_evicted += 1;
                continue;
            }
            if let Some(e) = st.templates.get(&key) {
                if e.tpl.is_options {
                    data_records += consume_options(
                        &mut st.domains,
                        &mut st.state_bytes,
                        state_bytes_total,
                        cfg.max_state_bytes_per_exporter,
                        key,
                        &e.tpl,
                        set.body,
                        stats,
                        em,
                    );
                }
            }
        }

        // held data whose template arrived in this datagram: options first, then flows (one
        // pass to take them out, so releasing n held sets costs O(n))
        if !new_keys.is_empty() && !st.held.is_empty() {
            let mut release: Vec<Held> = Vec::new();
            let held = std::mem::take(&mut st.held);
            for h in held {
                let key = (h.hdr.version, h.hdr.domain, h.tid);
                if new_keys.contains(&key) && st.templates.contains_key(&key) {
                    st.held_bytes -= held_cost(&h.body);
                    *held_bytes_total -= held_cost(&h.body);
                    release.push(h);
                } else {
                    st.held.push_back(h);
                }
            }
            for want_options in [true, false] {
                for h in &release {
                    let key = (h.hdr.version, h.hdr.domain, h.tid);
                    let Some(e) = st.templates.get(&key) else {
                        continue;
                    };
                    if e.tpl.is_options != want_options {
                        continue;
                    }
                    stats.held_sets_released += 1;
                    if want_options {
                        consume_options(
                            &mut st.domains,
                            &mut st.state_bytes,
                            state_bytes_total,
                            cfg.max_state_bytes_per_exporter,
                            key,
                            &e.tpl,
                            &h.body,
                            stats,
                            em,
                        );
                    } else {
                        emit_data(
                            &e.tpl,
                            &h.body,
                            &h.hdr,
                            h.exporter,
                            st.domains.get(&(h.hdr.version, h.hdr.domain)),
                            stats,
                            em,
                            f,
                        );
                    }
                }
            }
        }

        // pass 3: flow data
        for set in crate::set::Sets::new(body, base).flatten() {
            if set.id < 256 {
                continue;
            }
            let key = (version, hdr.domain, set.id);
            match st.templates.get(&key) {
                Some(e) if !expired(e, now_ns, cfg.template_timeout_ms) => {
                    if !e.tpl.is_options {
                        data_records += emit_data(
                            &e.tpl,
                            set.body,
                            &hdr,
                            exporter,
                            st.domains.get(&dkey),
                            stats,
                            em,
                            f,
                        );
                    }
                }
                _ => {
                    missed = true;
                    stats.template_misses += 1;
                    hold(st, held_bytes_total, cfg, stats, set, hdr, exporter, now_ns);
                }
            }
        }

        // (the domain may have been evicted by a template's bytes in this datagram)
        if let Some(d) = st.domains.get_mut(&dkey) {
            if missed && version == 10 {
                // IPFIX counts data records: a held set's count is unknown until its
                // template comes
                d.next_seq = None;
            } else {
                let advance = if version == 9 { 1 } else { data_records };
                Self::seq_gap(stats, d, hdr.sequence, advance);
            }
        }
        match last_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Drop held data older than `max_hold_ms`, and templates and domain state older than
    /// the template timeout, across all exporters. Call it periodically (the collector does
    /// once a second). Costs O(exporters + what expires): each exporter's templates and
    /// domains are kept oldest first.
    pub fn expire(&mut self, now_ns: u64) {
        let cfg = &self.cfg;
        for st in self.exporters.values_mut() {
            if cfg.max_hold_ms > 0 {
                while let Some(h) = st.held.front() {
                    if h.received_ns.saturating_add(cfg.max_hold_ms * 1_000_000) >= now_ns {
                        break;
                    }
                    let h = st.held.pop_front().expect("front exists");
                    st.held_bytes -= held_cost(&h.body);
                    self.held_bytes_total -= held_cost(&h.body);
                    self.stats.held_sets_dropped += 1;
                }
            }
            if cfg.template_timeout_ms > 0 {
                // oldest refreshed first: stop at the first live one
                while st
                    .templates
                    .front()
                    .is_some_and(|(_, e)| expired(e, now_ns, cfg.template_timeout_ms))
                {
                    let (_, e) = st.templates.pop_front().expect("front exists");
                    st.state_bytes -= e.cost();
                    self.state_bytes_total -= e.cost();
                    self.stats.templates_evicted += 1;
                }
                let timeout_ns = cfg.template_timeout_ms.saturating_mul(1_000_000);
                while st
                    .domains
                    .front()
                    .is_some_and(|(_, d)| now_ns > d.seen_ns.saturating_add(timeout_ns))
                {
                    let (_, d) = st.domains.pop_front().expect("front exists");
                    st.state_bytes -= d.cost();
                    self.state_bytes_total -= d.cost();
                    self.stats.domains_evicted += 1;
                }
            }
        }
    }

    /// Every template known, for the persisted template store.
    pub fn export_templates(&self) -> Vec<StoredTemplate> {
        let mut out = Vec::new();
        for (ip, st) in self.exporters.iter() {
            for (k, e) in &st.templates {
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
                let entry = TemplateEntry {
                    tpl,
                    refreshed_ns: now_ns,
                };
                let key = (t.version, t.domain, t.template_id);
                if put_template(st, key, entry, cfg, stats, state_bytes_total) {
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
            let ExporterState {
                domains,
                state_bytes,
                ..
            } = st;
            if let Some(d) = domains.get_mut(&(v, dom)) {
                set_rate(
                    d,
                    state_bytes,
                    state_bytes_total,
                    cfg.max_state_bytes_per_exporter,
                    sid,
                    rate,
                );
            }
        }
    }
}

/// Store a template under `key` (replacing one under the same key) within the exporter's
/// bounds: its count and bytes, oldest refreshed evicted first. False when the template alone
/// is over the byte bound (it is not kept; counted as evicted).
fn put_template(
    st: &mut ExporterState,
    key: TKey,
    entry: TemplateEntry,
    cfg: &DecoderConfig,
    stats: &mut DecodeStats,
    total: &mut usize,
) -> bool {
    let cost = entry.cost();
    if let Some(old) = st.templates.remove(&key) {
        st.state_bytes -= old.cost();
        *total -= old.cost();
    }
    if EXPORTER_BASE_BYTES + cost > cfg.max_state_bytes_per_exporter {
        stats.templates_evicted += 1;
        return false;
    }
    while st.templates.len() >= cfg.max_templates_per_exporter.max(1) {
        let Some((_, e)) = st.templates.pop_front() else {
            break;
        };
        st.state_bytes -= e.cost();
        *total -= e.cost();
        stats.templates_evicted += 1;
    }
    if st.state_bytes + cost > cfg.max_state_bytes_per_exporter {
        shrink(st, cfg.max_state_bytes_per_exporter - cost, total, stats);
    }
    st.state_bytes += cost;
    *total += cost;
    st.templates.insert(key, entry);
    true
}

/// Evict the exporter's oldest templates, then its least recently seen domains, until its
/// state takes at most `want` bytes (or nothing is left to evict).
fn shrink(st: &mut ExporterState, want: usize, total: &mut usize, stats: &mut DecodeStats) {
    while st.state_bytes > want {
        if let Some((_, e)) = st.templates.pop_front() {
            st.state_bytes -= e.cost();
            *total -= e.cost();
            stats.templates_evicted += 1;
        } else if let Some((_, d)) = st.domains.pop_front() {
            st.state_bytes -= d.cost();
            *total -= d.cost();
            stats.domains_evicted += 1;
        } else {
            break;
        }
    }
}

#[inline]
fn expired(e: &TemplateEntry, now_ns: u64, timeout_ms: u64) -> bool {
    timeout_ms > 0
        && now_ns
            > e.refreshed_ns
                .saturating_add(timeout_ms.saturating_mul(1_000_000))
}

/// Set `sid`'s rate in the domain's sampling table, which grows (counted in the exporter's
/// state bytes) up to [`MAX_SAMPLERS_PER_DOMAIN`] entries and within `limit` bytes of state.
fn set_rate(
    d: &mut Domain,
    state_bytes: &mut usize,
    total: &mut usize,
    limit: usize,
    sid: Option<u64>,
    rate: u32,
) {
    if let Some(e) = d.sampling.iter_mut().find(|(s, _)| *s == sid) {
        e.1 = rate;
        return;
    }
    if d.sampling.len() >= MAX_SAMPLERS_PER_DOMAIN {
        return;
    }
    let before = d.cost();
    if d.sampling.len() == d.sampling.capacity() {
        // grow by hand to see the cost first
        let want = (d.sampling.capacity() * 2).clamp(4, MAX_SAMPLERS_PER_DOMAIN);
        let growth = (want - d.sampling.capacity()) * std::mem::size_of::<(Option<u64>, u32)>()
            + if d.sampling.capacity() == 0 { 16 } else { 0 };
        if *state_bytes + growth > limit {
            return;
        }
        d.sampling.reserve_exact(want - d.sampling.len());
    }
    d.sampling.push((sid, rate));
    let after = d.cost();
    *state_bytes += after - before;
    *total += after - before;
}

/// Consume the options records of a set (within the datagram's records budget): returns how
/// many there were.
#[allow(clippy::too_many_arguments)]
fn consume_options(
    domains: &mut Lru<DKey, Domain>,
    state_bytes: &mut usize,
    total: &mut usize,
    limit: usize,
    key: TKey,
    tpl: &Template,
    body: &[u8],
    stats: &mut DecodeStats,
    em: &mut Emit,
) -> u32 {
    let mut n = 0;
    let mut d = domains.get_mut(&(key.0, key.1));
    for r in tpl.records(body) {
        match r {
            Ok(data) => {
                if !em.take() {
                    break;
                }
                let o = template::read_options(tpl, data);
                if let Some(d) = d.as_deref_mut() {
                    if let Some(rate) = o.rate() {
                        let rate = rate.min(u64::from(u32::MAX)) as u32;
                        set_rate(d, state_bytes, total, limit, o.sampler_id, rate);
                    }
                    if let Some(t) = o.system_init_ms {
                        d.system_init_ms = Some(t);
                    }
                }
                stats.options_records += 1;
                n += 1;
            }
            Err(e) => {
                stats.error(e);
                break;
            }
        }
    }
    n
}

/// Bytes a held set counts for in the bounds: its body plus the bookkeeping around it, so many
/// tiny sets cannot escape the bound.
#[inline]
fn held_cost(body: &[u8]) -> usize {
    body.len() + std::mem::size_of::<Held>()
}

#[allow(clippy::too_many_arguments)]
fn hold(
    st: &mut ExporterState,
    held_total: &mut usize,
    cfg: &DecoderConfig,
    stats: &mut DecodeStats,
    set: Set<'_>,
    hdr: Header,
    exporter: SocketAddr,
    now_ns: u64,
) {
    if set.body.is_empty() {
        return; // nothing to decode later (counted as a template miss by the caller)
    }
    let len = held_cost(set.body);
    if len > cfg.max_held_bytes_per_exporter || len > cfg.max_held_bytes_total {
        stats.held_sets_dropped += 1;
        return;
    }
    // make room: oldest first, this exporter's bound, then the global bound (this exporter's
    // oldest; other exporters' data is evicted by their own traffic or `expire`)
    while st.held_bytes + len > cfg.max_held_bytes_per_exporter
        || (*held_total + len > cfg.max_held_bytes_total && !st.held.is_empty())
    {
        let Some(old) = st.held.pop_front() else {
            break;
        };
        st.held_bytes -= held_cost(&old.body);
        *held_total -= held_cost(&old.body);
        stats.held_sets_dropped += 1;
    }
    if *held_total + len > cfg.max_held_bytes_total {
        stats.held_sets_dropped += 1;
        return;
    }
    st.held_bytes += len;
    *held_total += len;
    stats.held_sets += 1;
    st.held.push_back(Held {
        tid: set.id,
        hdr,
        exporter,
        received_ns: now_ns,
        body: set.body.to_vec(),
    });
}

/// `base_ns` (the exporter's boot time, ns since the epoch) plus `uptime_ms`, clamped to
/// 0..=u64::MAX: 8-byte flowStart/EndSysUpTime values (IE 22/21) and systemInitTime are
/// arbitrary 64-bit numbers, and their sum in nanoseconds need not fit in a u64.
#[inline]
fn uptime_to_ns(base_ns: i128, uptime_ms: u64) -> u64 {
    // |base_ns| < 2^85 and uptime_ms * 10^6 < 2^84: no overflow in i128
    let ns = base_ns.saturating_add(i128::from(uptime_ms).saturating_mul(1_000_000));
    ns.clamp(0, i128::from(u64::MAX)) as u64
}

/// The exporter's boot time for the times of one data set that are relative to it.
#[derive(Debug, Clone, Copy)]
struct Boot {
    /// ns since the epoch (may be before 1970 for a bogus header)
    ns: i128,
    /// `ns` when a 32-bit uptime (v9 and most IPFIX exporters) added to it can neither go
    /// below 0 nor above `u64::MAX`: the sum is then done in a u64 instead of the i128
    /// saturating sum of `uptime_to_ns`
    fast: Option<u64>,
}

impl Boot {
    fn new(ns: i128) -> Boot {
        const U32_MS_NS: u64 = u32::MAX as u64 * 1_000_000;
        Boot {
            ns,
            fast: u64::try_from(ns)
                .ok()
                .filter(|&b| b <= u64::MAX - U32_MS_NS),
        }
    }

    /// [`uptime_to_ns`] of this boot time.
    #[inline]
    fn at(self, uptime_ms: u64) -> u64 {
        match self.fast {
            Some(b) if uptime_ms <= u64::from(u32::MAX) => b + uptime_ms * 1_000_000,
            _ => uptime_to_ns(self.ns, uptime_ms),
        }
    }
}

/// Decode the flow records of one data set; returns how many records it held.
#[allow(clippy::too_many_arguments)]
fn emit_data(
    tpl: &Template,
    body: &[u8],
    hdr: &Header,
    exporter: SocketAddr,
    domain: Option<&Domain>,
    stats: &mut DecodeStats,
    em: &mut Emit,
    f: &mut dyn FnMut(&FlowRecord<'_>),
) -> u32 {
    let proto = if hdr.version == 9 {
        FlowProtocol::NetflowV9
    } else {
        FlowProtocol::Ipfix
    };
    let table = domain.map(|d| &d.sampling).filter(|t| !t.is_empty());
    let init_ms = domain.and_then(|d| d.system_init_ms);
    // times relative to the exporter's boot: its boot time in ns since the epoch (may be
    // before 1970 for a bogus header)
    let uptime_base: Option<Boot> = match hdr.uptime_ms {
        Some(up) => Some(i128::from(hdr.export_ns) - i128::from(up) * 1_000_000),
        None => init_ms.map(|ms| i128::from(ms) * 1_000_000),
    }
    .map(Boot::new);
    let fresh = || {
        let mut rec = FlowRecord::new(proto, exporter);
        rec.export_time_ns = Some(hdr.export_ns);
        rec.sequence = Some(hdr.sequence);
        rec.domain = Some(hdr.domain);
        rec.template_id = Some(tpl.id);
        rec
    };
    // one record filled again for every record of the set when the template's plan sets the
    // same values for each (building the ~500-byte record was an eighth of fixed-length
    // decoding); everything below assigns each value it may set, whatever the branch
    let refill = tpl.refills_record();
    let mut rec = fresh();
    let mut t = template::RecordTimes::default();
    let mut n = 0;
    let mut records = tpl.records(body);
    while let Some(r) = records.next() {
        let data = match r {
            Ok(d) => d,
            Err(e) => {
                stats.error(e);
                break;
            }
        };
        if !em.take() {
            break;
        }
        n += 1;
        if !refill && n > 1 {
            rec = fresh();
        }
        let o = template::fill_record_in(tpl, records.tail(), data.len(), &mut rec, &mut t);

        // times
        let from_uptime = |ms: Option<u64>| -> Option<u64> { Some(uptime_base?.at(ms?)) };
        let from_delta = |us: Option<u64>| -> Option<u64> {
            Some(hdr.export_ns.saturating_sub(us?.saturating_mul(1000)))
        };
        // (start, end, basis) and the unresolved uptimes
        let ((start, end, basis), uptimes) = if t.start_abs_ns.is_some() || t.end_abs_ns.is_some() {
            (
                (t.start_abs_ns, t.end_abs_ns, Some(TimeBasis::Absolute)),
                (None, None),
            )
        } else if t.start_uptime_ms.is_some() || t.end_uptime_ms.is_some() {
            if uptime_base.is_some() {
                let (s, e) = (from_uptime(t.start_uptime_ms), from_uptime(t.end_uptime_ms));
                ((s, e, Some(TimeBasis::Uptime)), (None, None))
            } else {
                (
                    (None, None, Some(TimeBasis::UptimeUnresolved)),
                    (t.start_uptime_ms, t.end_uptime_ms),
                )
            }
        } else if t.start_delta_us.is_some() || t.end_delta_us.is_some() {
            let (s, e) = (from_delta(t.start_delta_us), from_delta(t.end_delta_us));
            ((s, e, Some(TimeBasis::Absolute)), (None, None))
        } else {
            ((None, None, None), (None, None))
        };
        (rec.start_ns, rec.end_ns, rec.time_basis) = (start, end, basis);
        (rec.start_uptime_ms, rec.end_uptime_ms) = uptimes;

        // sampling: in the record, else the exporter's options tables
        let sid = o.sampler_id;
        (rec.sampling_rate, rec.sampling_source, rec.sampler_id) = if let Some(rate) = o.rate {
            let rate = rate.min(u64::from(u32::MAX)) as u32;
            (Some(rate), Some(SamplingSource::Record), None)
        } else if let Some(table) = table {
            let found = sid
                .and_then(|s| table.iter().find(|(k, _)| *k == Some(s)))
                .or_else(|| table.iter().find(|(k, _)| k.is_none()))
                .or_else(|| {
                    if table.len() == 1 && sid.is_none() {
                        table.first()
                    } else {
                        None
                    }
                });
            match found {
                Some(&(_, rate)) => (Some(rate), Some(SamplingSource::Options), sid),
                None => (None, None, sid),
            }
        } else {
            (None, None, sid)
        };
        rec.scaled = false;
        rec.raw = Raw::Template {
            template: tpl,
            data,
        };
        Decoder::emit(stats, em, &mut rec, f);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordKind;

    const EXP: &str = "192.0.2.10:4739";

    /// IPFIX message from sets.
    fn ipfix(seq: u32, domain: u32, sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut b = vec![0, 10, 0, 0];
        b.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&domain.to_be_bytes());
        for (id, body) in sets {
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
            b.extend_from_slice(body);
        }
        let len = b.len() as u16;
        b[2..4].copy_from_slice(&len.to_be_bytes());
        b
    }

    fn v9(seq: u32, source_id: u32, sets: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut b = vec![0, 9, 0, sets.len() as u8];
        b.extend_from_slice(&60_000u32.to_be_bytes()); // uptime 60 s
        b.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&source_id.to_be_bytes());
        for (id, body) in sets {
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
            b.extend_from_slice(body);
        }
        b
    }

    fn tpl(id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
        let mut b = id.to_be_bytes().to_vec();
        b.extend_from_slice(&(fields.len() as u16).to_be_bytes());
        for (i, l) in fields {
            b.extend_from_slice(&i.to_be_bytes());
            b.extend_from_slice(&l.to_be_bytes());
        }
        b
    }

    /// srcaddr, dstaddr, srcport, dstport, proto, octets(8), packets(4)
    const FIELDS: &[(u16, u16)] = &[(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (1, 8), (2, 4)];

    fn rec(i: u8) -> Vec<u8> {
        let mut b = vec![10, 0, 0, i, 10, 0, 1, i, 0x30, 0x39, 0, 80, 6];
        b.extend_from_slice(&(1000 + u64::from(i)).to_be_bytes());
        b.extend_from_slice(&10u32.to_be_bytes());
        b
    }

    fn run(d: &mut Decoder, pkt: &[u8]) -> (Vec<String>, Result<(), DecodeError>) {
        let mut out = Vec::new();
        let r = d.decode(
            EXP.parse().unwrap(),
            1_700_000_000_000_000_000,
            pkt,
            &mut |r| {
                out.push(format!(
                    "{:?} {}->{} {} b={:?} p={:?} rate={:?}/{:?}",
                    r.kind,
                    r.src_addr.unwrap(),
                    r.dst_addr.unwrap(),
                    r.template_id.unwrap_or(0),
                    r.bytes,
                    r.packets,
                    r.sampling_rate,
                    r.sampling_source.map(|s| s.as_str())
                ))
            },
        );
        (out, r)
    }

    /// One record is filled again for every record of a fixed-length set: each record's
    /// document equals the one decoded from a set holding that record alone, whichever time
    /// branch (absolute, unresolved uptime) its neighbour took.
    #[test]
    fn refilled_records_equal_records_decoded_alone() {
        // srcaddr, dstaddr, octets, flowStartNanoseconds, flowEndNanoseconds,
        // flowStartSysUpTime, flowEndSysUpTime: every field through the plan
        let fields: &[(u16, u16)] = &[
            (8, 4),
            (12, 4),
            (1, 8),
            (156, 8),
            (157, 8),
            (22, 4),
            (21, 4),
        ];
        let wire: Vec<_> = fields
            .iter()
            .map(|&(id, len)| template::WireField {
                id,
                enterprise: 0,
                len,
                scope: false,
            })
            .collect();
        assert!(Template::compile(10, 300, false, &wire, &[])
            .unwrap()
            .refills_record());
        let ntp_ok = (2_208_988_800u64 + 1_700_000_000) << 32;
        let record = |i: u8, ntp: u64, up: u32| {
            let mut b = vec![10, 0, 0, i, 10, 0, 1, i];
            b.extend_from_slice(&(1000 + u64::from(i)).to_be_bytes());
            b.extend_from_slice(&ntp.to_be_bytes());
            b.extend_from_slice(&ntp.to_be_bytes());
            b.extend_from_slice(&up.to_be_bytes());
            b.extend_from_slice(&up.to_be_bytes());
            b
        };
        // NTP 0 is before the Unix epoch: no absolute time, the uptime is used (unresolved:
        // no systemInitTime)
        let recs = [
            record(1, ntp_ok, 5),
            record(2, 0, 7),
            record(3, 0, 0),
            record(4, ntp_ok + 1, 9),
            record(5, 0, 0),
        ];
        let docs = |rs: &[&Vec<u8>]| -> Vec<String> {
            let mut d = Decoder::new(DecoderConfig::default());
            let mut out = Vec::new();
            let pkt = ipfix(
                1,
                0,
                &[
                    (2, tpl(300, fields)),
                    (300, rs.iter().flat_map(|r| r.iter().copied()).collect()),
                ],
            );
            d.decode(
                EXP.parse().unwrap(),
                1_700_000_000_000_000_000,
                &pkt,
                &mut |r| {
                    out.push(format!("{r:?}"));
                },
            )
            .unwrap();
            out
        };
        let together = docs(&recs.iter().collect::<Vec<_>>());
        assert_eq!(together.len(), recs.len());
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(together[i], docs(&[r])[0], "record {}", i + 1);
        }
        assert!(together[1].contains("UptimeUnresolved") && together[0].contains("Absolute"));
    }

    #[test]
    fn ipfix_template_then_data() {
        let mut d = Decoder::default();
        let mut data = rec(1);
        data.extend(rec(2));
        let (out, r) = run(&mut d, &ipfix(1, 7, &[(2, tpl(300, FIELDS)), (300, data)]));
        assert_eq!(r, Ok(()));
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0],
            "Flow 10.0.0.1->10.0.1.1 300 b=Some(1001) p=Some(10) rate=None/None"
        );
        assert_eq!(d.stats().records[FlowProtocol::Ipfix.index()], 2);
        assert_eq!(d.stats().templates, 1);
    }

    #[test]
    fn data_before_template_is_held_and_released() {
        let mut d = Decoder::default();
        let (out, _) = run(&mut d, &ipfix(1, 7, &[(300, rec(1))]));
        assert!(out.is_empty());
        assert_eq!(d.stats().template_misses, 1);
        assert_eq!(d.held_sets_pending(), 1);
        // the template arrives with new data: held record first, then the new one
        let (out, _) = run(
            &mut d,
            &ipfix(2, 7, &[(2, tpl(300, FIELDS)), (300, rec(2))]),
        );
        assert_eq!(out.len(), 2);
        assert!(out[0].contains("10.0.0.1->"), "{out:?}");
        assert!(out[1].contains("10.0.0.2->"), "{out:?}");
        assert_eq!(d.stats().held_sets_released, 1);
        assert_eq!(d.held_sets_pending(), 0);
        assert_eq!(d.held_bytes(), 0);
    }

    #[test]
    fn held_data_is_bounded_per_exporter_and_in_time() {
        // room for three held sets of one record each
        let bound = 3 * held_cost(&rec(1));
        let mut d = Decoder::new(DecoderConfig {
            max_held_bytes_per_exporter: bound,
            ..Default::default()
        });
        for i in 0..10 {
            let _ = run(&mut d, &ipfix(i, 7, &[(300 + i as u16, rec(1))]));
        }
        assert!(d.held_bytes() <= bound);
        assert_eq!(d.held_sets_pending(), 3);
        assert_eq!(d.stats().held_sets, 10);
        assert!(d.stats().held_sets_dropped >= 7);
        // expiry in time
        d.expire(1_700_000_000_000_000_000 + 11 * 60 * 1_000_000_000);
        assert_eq!(d.held_sets_pending(), 0);
        assert_eq!(d.held_bytes(), 0);
    }

    #[test]
    fn empty_held_sets_cost_and_release_in_linear_time() {
        // (2000 held records are released by one datagram: over the default records cap)
        let mut d = Decoder::new(DecoderConfig {
            max_records_per_datagram: 4096,
            ..Default::default()
        });
        // 10,000 empty data sets for an unknown template are not held
        let sets: Vec<(u16, Vec<u8>)> = (0..10_000).map(|_| (300, Vec::new())).collect();
        let _ = run(&mut d, &ipfix(1, 7, &sets[..8000]));
        assert_eq!(d.held_sets_pending(), 0);
        // many small held sets, then their template: all released, in order
        for i in 0..2000u32 {
            let _ = run(&mut d, &ipfix(i, 7, &[(300, rec((i % 250) as u8))]));
        }
        let pending = d.held_sets_pending();
        assert!(pending > 0 && pending <= 2000);
        let (out, _) = run(&mut d, &ipfix(3000, 7, &[(2, tpl(300, FIELDS))]));
        assert_eq!(out.len(), pending);
        assert_eq!(d.held_sets_pending(), 0);
    }

    #[test]
    fn a_template_repeating_one_element_gets_unique_names() {
        let fields: Vec<(u16, u16)> = vec![(8, 4); 1024];
        let t = Template::compile(
            10,
            256,
            false,
            &fields
                .iter()
                .map(|&(id, len)| WireField {
                    id,
                    enterprise: 0,
                    len,
                    scope: false,
                })
                .collect::<Vec<_>>(),
            &[],
        )
        .unwrap();
        assert_eq!(t.fields[1023].name, "source_ipv4_address_1024");
        // (it used to take seconds: the fuzz regression `slow-ipfix-template-1024-duplicate-
        // fields` times it in release builds)
    }

    #[test]
    fn domains_and_withdrawal() {
        let mut d = Decoder::default();
        let _ = run(&mut d, &ipfix(1, 7, &[(2, tpl(300, FIELDS))]));
        // same template id in another domain is unknown
        let (out, _) = run(&mut d, &ipfix(1, 8, &[(300, rec(1))]));
        assert!(out.is_empty());
        // withdrawal of 300 in domain 7 (field count 0)
        let _ = run(&mut d, &ipfix(2, 7, &[(2, vec![1, 44, 0, 0])]));
        assert_eq!(d.stats().template_withdrawals, 1);
        let (out, _) = run(&mut d, &ipfix(3, 7, &[(300, rec(1))]));
        assert!(out.is_empty());
        // withdraw all (template id 2)
        let _ = run(
            &mut d,
            &ipfix(4, 7, &[(2, tpl(301, FIELDS)), (2, tpl(302, FIELDS))]),
        );
        let _ = run(&mut d, &ipfix(5, 7, &[(2, vec![0, 2, 0, 0])]));
        assert_eq!(d.stats().template_withdrawals, 3);
    }

    #[test]
    fn v9_options_sampling_applies_by_sampler_id() {
        let mut d = Decoder::default();
        // options template 256: scope system(1) len 4; sampler id 48 len 1, interval 34 len 4
        let mut ot = vec![1, 0, 0, 4, 0, 8, 0, 1, 0, 4, 0, 48, 0, 1, 0, 34, 0, 4];
        ot.extend_from_slice(&[0, 0]); // padding
        let mut fields = FIELDS.to_vec();
        fields.push((48, 1));
        let opt_data = [
            0, 0, 0, 0, 5, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let opt_data = &opt_data[..9]; // one record: system 0, sampler 5, interval 1000
        let mut data = rec(1);
        data.push(5);
        let (out, r) = run(
            &mut d,
            &v9(
                1,
                0,
                &[
                    (1, ot),
                    (0, tpl(260, &fields)),
                    (256, opt_data.to_vec()),
                    (260, data),
                ],
            ),
        );
        assert_eq!(r, Ok(()));
        assert_eq!(out, ["Flow 10.0.0.1->10.0.1.1 260 b=Some(1001) p=Some(10) rate=Some(1000)/Some(\"options\")"]);
        assert_eq!(d.stats().options_records, 1);
    }

    #[test]
    fn scale_sampling_switch() {
        let mut d = Decoder::new(DecoderConfig {
            scale_sampling: true,
            ..Default::default()
        });
        let mut fields = FIELDS.to_vec();
        fields.push((34, 2));
        let mut data = rec(1);
        data.extend_from_slice(&100u16.to_be_bytes());
        let (out, _) = run(&mut d, &ipfix(1, 0, &[(2, tpl(300, &fields)), (300, data)]));
        assert_eq!(out, ["Flow 10.0.0.1->10.0.1.1 300 b=Some(100100) p=Some(1000) rate=Some(100)/Some(\"record\")"]);
    }

    #[test]
    fn v9_uptime_times_and_ipfix_system_init() {
        let mut d = Decoder::default();
        let mut got = Vec::new();
        let pkt = v9(
            1,
            0,
            &[
                (0, tpl(256, &[(8, 4), (12, 4), (22, 4), (21, 4)])),
                (
                    256,
                    vec![1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0xc3, 0x50, 0, 0, 0xea, 0x60],
                ),
            ],
        );
        let _ = d.decode(EXP.parse().unwrap(), 0, &pkt, &mut |r| {
            got.push((r.start_ns, r.end_ns, r.time_basis))
        });
        // boot = 1_700_000_000 s - 60 s; start = boot + 50 s, end = boot + 60 s
        assert_eq!(
            got,
            [(
                Some(1_699_999_990_000_000_000),
                Some(1_700_000_000_000_000_000),
                Some(TimeBasis::Uptime)
            )]
        );

        // IPFIX relative times need systemInitTime (IE 160) from options data
        let mut d = Decoder::default();
        let mut got = Vec::new();
        let t = tpl(256, &[(8, 4), (12, 4), (22, 4), (21, 4)]);
        let data = vec![1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0x03, 0xe8, 0, 0, 0x07, 0xd0];
        let pkt = ipfix(1, 0, &[(2, t), (256, data.clone())]);
        let _ = d.decode(EXP.parse().unwrap(), 0, &pkt, &mut |r| {
            got.push((r.start_uptime_ms, r.time_basis))
        });
        assert_eq!(got, [(Some(1000), Some(TimeBasis::UptimeUnresolved))]);
        // options template 257: scope 149 (observationDomainId) len 4, 160 len 8
        let ot = vec![1, 1, 0, 2, 0, 1, 0, 149, 0, 4, 0, 160, 0, 8];
        let mut od = vec![0, 0, 0, 0];
        od.extend_from_slice(&1_600_000_000_000u64.to_be_bytes());
        let pkt = ipfix(2, 0, &[(3, ot), (257, od), (256, data)]);
        got.clear();
        let mut starts = Vec::new();
        let _ = d.decode(EXP.parse().unwrap(), 0, &pkt, &mut |r| {
            starts.push((r.start_ns, r.end_ns, r.time_basis))
        });
        assert_eq!(
            starts,
            [(
                Some(1_600_000_001_000_000_000),
                Some(1_600_000_002_000_000_000),
                Some(TimeBasis::Uptime)
            )]
        );
    }

    #[test]
    fn bad_input_is_counted_never_panics() {
        let mut d = Decoder::default();
        for pkt in [
            &[][..],
            &[0],
            &[0, 10, 0, 200],
            &[0, 9, 0, 1, 2],
            &[0, 77, 1, 2, 3, 4],
            &[0, 0, 0, 5, 0],
        ] {
            let (out, r) = run(&mut d, pkt);
            assert!(out.is_empty());
            assert!(r.is_err());
        }
        assert_eq!(d.stats().errors_total(), 6);
        // a good set after a broken template set still decodes
        let mut bad_tpl = tpl(300, FIELDS);
        bad_tpl.truncate(9);
        let (out, r) = run(
            &mut d,
            &ipfix(1, 0, &[(2, tpl(301, FIELDS)), (2, bad_tpl), (301, rec(3))]),
        );
        assert!(r.is_err());
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn sequence_gaps_are_counted() {
        let mut d = Decoder::default();
        let _ = run(
            &mut d,
            &ipfix(10, 0, &[(2, tpl(300, FIELDS)), (300, rec(1))]),
        );
        let _ = run(&mut d, &ipfix(11, 0, &[(300, rec(1))]));
        assert_eq!(d.stats().sequence_gaps, 0);
        let _ = run(&mut d, &ipfix(15, 0, &[(300, rec(1))]));
        assert_eq!(d.stats().sequence_gaps, 3);
    }

    #[test]
    fn template_store_round_trip() {
        let mut d = Decoder::default();
        let _ = run(&mut d, &ipfix(1, 7, &[(2, tpl(300, FIELDS))]));
        let store = d.export_templates();
        assert_eq!(store.len(), 1);
        let mut d2 = Decoder::default();
        assert_eq!(d2.import_templates(&store, 1_700_000_000_000_000_000), 1);
        let (out, _) = run(&mut d2, &ipfix(2, 7, &[(300, rec(1))]));
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].split(' ').next(),
            Some(format!("{:?}", RecordKind::Flow).as_str())
        );
    }

    // ---- bounds on hostile input ----------------------------------------------------------

    /// A template set of `n` templates (ids from `first`) of `fields` 4-byte fields each.
    fn big_templates(first: u16, n: u16, fields: u16) -> Vec<u8> {
        let mut set = Vec::new();
        for t in 0..n {
            set.extend_from_slice(&(first + t).to_be_bytes());
            set.extend_from_slice(&fields.to_be_bytes());
            for f in 0..fields {
                set.extend_from_slice(&(f + 1).to_be_bytes());
                set.extend_from_slice(&4u16.to_be_bytes());
            }
        }
        set
    }

    const T0: u64 = 1_700_000_000_000_000_000;

    fn at(a: &str) -> SocketAddr {
        a.parse().unwrap()
    }

    /// NetFlow v5 datagram of one record with engine type/id `engine`.
    fn v5(seq: u32, engine: u16) -> Vec<u8> {
        let mut b = vec![0u8; 24 + 48];
        b[1] = 5;
        b[3] = 1;
        b[8..12].copy_from_slice(&1_700_000_000u32.to_be_bytes());
        b[16..20].copy_from_slice(&seq.to_be_bytes());
        b[20..22].copy_from_slice(&engine.to_be_bytes());
        b[24 + 38] = 6;
        b
    }

    #[test]
    fn template_bytes_are_bounded_per_exporter_and_in_total() {
        let per = 256 << 10;
        let total = 1 << 20;
        let mut d = Decoder::new(DecoderConfig {
            max_state_bytes_per_exporter: per,
            max_state_bytes_total: total,
            ..Default::default()
        });
        let one = Template::compile(
            10,
            256,
            false,
            &(1..=64)
                .map(|id| WireField {
                    id,
                    enterprise: 0,
                    len: 4,
                    scope: false,
                })
                .collect::<Vec<_>>(),
            &[0; 260],
        )
        .unwrap()
        .heap_bytes();
        // 64 fields of 4 bytes: 260 bytes on the wire, many times that compiled
        assert!(one > 10 * 260, "{one}");
        for i in 0..200u16 {
            let pkt = ipfix(u32::from(i), 0, &[(2, big_templates(256 + i * 16, 16, 64))]);
            d.decode(at(EXP), T0, &pkt, &mut |_| {}).unwrap();
            assert!(d.state_bytes() <= per, "{} after {i}", d.state_bytes());
        }
        // the newest templates are kept, the oldest evicted
        let kept = d.templates();
        assert!(kept > 0 && kept < per / one + 1, "{kept}");
        assert_eq!(d.stats().templates_evicted, 3200 - kept as u64);
        let newest = 256 + 199 * 16 + 15;
        let data = ipfix(999, 0, &[(newest, vec![7; 256])]);
        let mut n = 0;
        d.decode(at(EXP), T0, &data, &mut |_| n += 1).unwrap();
        assert_eq!(n, 1, "the newest template decodes");
        // many exporters: the total holds
        for e in 0..50u16 {
            let a = at(&format!("192.0.2.{}:4739", 1 + e));
            for i in 0..8u16 {
                let pkt = ipfix(u32::from(i), 0, &[(2, big_templates(256 + i * 16, 16, 64))]);
                d.decode(a, T0, &pkt, &mut |_| {}).unwrap();
                assert!(d.state_bytes() <= total, "{}", d.state_bytes());
            }
        }
        assert!(d.stats().exporters_evicted_state_bytes > 0);
        assert!(d.exporters() < 51);
        // the accounting is exact: forgetting everything leaves nothing counted
        d.expire(T0 + 31 * 60 * 1_000_000_000);
        assert_eq!(d.templates(), 0);
        assert_eq!(d.domains(), 0);
        assert_eq!(d.state_bytes(), d.exporters() * EXPORTER_BASE_BYTES);
    }

    #[test]
    fn a_template_over_the_exporter_bound_is_refused() {
        let mut d = Decoder::new(DecoderConfig {
            max_state_bytes_per_exporter: 8 << 10,
            ..Default::default()
        });
        let pkt = ipfix(1, 0, &[(2, big_templates(256, 1, 200))]);
        d.decode(at(EXP), T0, &pkt, &mut |_| {}).unwrap();
        assert_eq!(d.templates(), 0);
        assert_eq!(d.stats().templates_evicted, 1);
        assert!(d.state_bytes() <= 8 << 10);
    }

    #[test]
    fn port_churn_from_one_address_evicts_only_its_own_entries() {
        let mut d = Decoder::new(DecoderConfig {
            max_exporters_per_ip: 4,
            ..Default::default()
        });
        let legit = at("192.0.2.1:2055");
        let _ = d.decode(legit, T0, &v5(1, 0), &mut |_| {});
        // the same address as the churn, a long-lived exporter (records in two datagrams)
        let neighbour = at("192.0.2.2:2055");
        let _ = d.decode(neighbour, T0, &v5(1, 0), &mut |_| {});
        let _ = d.decode(neighbour, T0, &v5(2, 0), &mut |_| {});
        for p in 0..10_000u32 {
            let a = SocketAddr::new("192.0.2.2".parse().unwrap(), 10_000 + p as u16);
            let _ = d.decode(a, T0 + u64::from(p), &v5(p, 0), &mut |_| {});
        }
        assert!(d.knows(legit), "another address's exporter was evicted");
        assert!(d.knows(neighbour), "the protected neighbour was evicted");
        assert_eq!(d.exporters(), 1 + 4);
        assert_eq!(d.stats().exporters_evicted_ip_quota, 10_000 - 3);
        assert_eq!(d.stats().exporters_evicted, 10_000 - 3);
    }

    #[test]
    fn established_exporters_survive_a_flood_of_new_sources() {
        let mut d = Decoder::new(DecoderConfig {
            max_exporters: 100,
            ..Default::default()
        });
        let legit = at("198.51.100.1:2055");
        let once = at("198.51.100.2:2055");
        let _ = d.decode(legit, T0, &v5(1, 0), &mut |_| {});
        let _ = d.decode(legit, T0, &v5(2, 0), &mut |_| {});
        let _ = d.decode(once, T0, &v5(1, 0), &mut |_| {});
        assert_eq!(d.protected_exporters(), 1);
        // one datagram (with a record) from each of 20,000 spoofed sources
        for i in 0..20_000u32 {
            let a = SocketAddr::new(std::net::Ipv4Addr::from(0x0a00_0000 + i).into(), 2055);
            let _ = d.decode(a, T0 + u64::from(i), &v5(1, 0), &mut |_| {});
        }
        assert!(d.knows(legit), "the established exporter was evicted");
        assert!(!d.knows(once), "a one-datagram exporter is not protected");
        assert_eq!(d.exporters(), 100);
        assert_eq!(d.stats().exporters_evicted, 20_002 - 100);
        // the protected segment itself is bounded: promote 200 exporters
        for i in 0..200u32 {
            let a = SocketAddr::new(std::net::Ipv4Addr::from(0x0b00_0000 + i).into(), 2055);
            let _ = d.decode(a, T0, &v5(1, 0), &mut |_| {});
            let _ = d.decode(a, T0, &v5(2, 0), &mut |_| {});
        }
        assert_eq!(d.protected_exporters(), 75);
        assert_eq!(d.exporters(), 100);
    }

    #[test]
    fn domain_state_is_capped_and_expires() {
        let mut d = Decoder::new(DecoderConfig {
            max_domains_per_exporter: 16,
            ..Default::default()
        });
        for e in 0..1000u16 {
            let _ = d.decode(at(EXP), T0, &v5(1, e), &mut |_| {});
        }
        assert_eq!(d.domains(), 16);
        assert_eq!(d.stats().domains_evicted, 1000 - 16);
        // IPFIX observation domains and their sampling tables too
        let ot = vec![1, 0, 0, 2, 0, 1, 0, 48, 0, 2, 0, 34, 0, 4];
        for dom in 0..1000u32 {
            let mut od = Vec::new();
            for sid in 0..300u16 {
                od.extend_from_slice(&sid.to_be_bytes());
                od.extend_from_slice(&100u32.to_be_bytes());
            }
            let _ = d.decode(
                at(EXP),
                T0,
                &ipfix(1, dom, &[(3, ot.clone()), (256, od)]),
                &mut |_| {},
            );
        }
        assert_eq!(d.domains(), 16);
        // each domain's table is full (300 sampler ids sent, 256 kept); all within the bound
        assert_eq!(d.export_sampling().len(), 16 * MAX_SAMPLERS_PER_DOMAIN);
        assert!(d.state_bytes() <= DecoderConfig::default().max_state_bytes_per_exporter);
        // not seen for the template timeout: gone
        d.expire(T0 + 31 * 60 * 1_000_000_000);
        assert_eq!(d.domains(), 0);
        assert_eq!(d.state_bytes(), EXPORTER_BASE_BYTES);
    }

    #[test]
    fn records_per_datagram_are_capped() {
        let mut d = Decoder::new(DecoderConfig {
            max_records_per_datagram: 100,
            ..Default::default()
        });
        // one-byte records (protocolIdentifier): 8,000 of them in one datagram
        let pkt = ipfix(1, 0, &[(2, tpl(300, &[(4, 1)])), (300, vec![6; 8000])]);
        let mut n = 0;
        d.decode(at(EXP), T0, &pkt, &mut |_| n += 1).unwrap();
        assert_eq!(n, 100);
        assert_eq!(d.stats().datagrams_record_capped, 1);
        assert_eq!(d.stats().records_total(), 100);
        // the next datagram has its own budget
        let pkt = ipfix(2, 0, &[(300, vec![6; 50])]);
        d.decode(at(EXP), T0, &pkt, &mut |_| n += 1).unwrap();
        assert_eq!(n, 150);
        assert_eq!(d.stats().datagrams_record_capped, 1);
        // the default fits a full v5 datagram and a jumbo frame of small IPFIX records
        let cap = DecoderConfig::default().max_records_per_datagram;
        assert!(cap >= 9000 / 16, "{cap}");
    }

    #[test]
    fn timestamps_outside_the_window_take_the_receive_time() {
        let mut d = Decoder::default();
        let now = T0 + 10 * 86_400 * 1_000_000_000; // 10 days after the export time
        let pkt = ipfix(1, 0, &[(2, tpl(300, FIELDS)), (300, rec(1))]);
        let mut got = Vec::new();
        d.decode(at(EXP), now, &pkt, &mut |r| {
            got.push((r.timestamp_ns(), r.timestamp_clamp, r.export_time_ns))
        })
        .unwrap();
        assert_eq!(got, [(Some(now), Some((T0, now)), Some(T0))]);
        assert_eq!(d.stats().timestamps_clamped, 1);
        // in the future by more than the window
        let mut got = Vec::new();
        let early = T0 - 3_600 * 1_000_000_000;
        d.decode(at(EXP), early, &pkt, &mut |r| {
            got.push((r.timestamp_ns(), r.timestamp_clamp))
        })
        .unwrap();
        assert_eq!(got, [(Some(early), Some((T0, early)))]);
        // within the window: untouched, on both sides
        for now in [T0 + 86_400 * 1_000_000_000, T0 - 60 * 1_000_000_000] {
            got.clear();
            d.decode(at(EXP), now, &pkt, &mut |r| {
                got.push((r.timestamp_ns(), r.timestamp_clamp))
            })
            .unwrap();
            assert_eq!(got, [(Some(T0), None)]);
        }
        assert_eq!(d.stats().timestamps_clamped, 2);
        // 0: no bound
        let mut d = Decoder::new(DecoderConfig {
            max_past_ms: 0,
            max_future_ms: 0,
            ..Default::default()
        });
        got.clear();
        d.decode(at(EXP), now, &pkt, &mut |r| {
            got.push((r.timestamp_ns(), r.timestamp_clamp))
        })
        .unwrap();
        assert_eq!(got, [(Some(T0), None)]);
        // v5: 1970 in the header
        let mut d = Decoder::default();
        let mut p = v5(1, 0);
        p[8..12].copy_from_slice(&[0; 4]);
        got.clear();
        d.decode(at(EXP), T0, &p, &mut |r| {
            got.push((r.timestamp_ns(), r.timestamp_clamp))
        })
        .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, Some(T0));
    }

    #[test]
    fn errors_are_counted_once() {
        let mut d = Decoder::default();
        // a set whose length runs past the message
        let mut pkt = ipfix(1, 0, &[(2, tpl(300, FIELDS))]);
        pkt.extend_from_slice(&[1, 44, 0, 200]);
        let len = pkt.len() as u16;
        pkt[2..4].copy_from_slice(&len.to_be_bytes());
        assert!(run(&mut d, &pkt).1.is_err());
        assert_eq!(d.stats().errors_total(), 1);
        // a bad header
        assert!(run(&mut d, &[0, 10, 0, 200]).1.is_err());
        assert_eq!(d.stats().errors_total(), 2);
        // v9 with a truncated template record
        let mut bad = tpl(300, FIELDS);
        bad.truncate(9);
        assert!(run(&mut d, &v9(1, 0, &[(0, bad)])).1.is_err());
        assert_eq!(d.stats().errors_total(), 3);
    }

    #[test]
    fn huge_sampling_options_do_not_overflow() {
        // options template: packetInterval (305) and packetSpace (306), 8 bytes each
        let mut d = Decoder::default();
        let ot = vec![1, 0, 0, 2, 0, 0, 1, 49, 0, 8, 1, 50, 0, 8];
        let mut od = u64::MAX.to_be_bytes().to_vec();
        od.extend_from_slice(&u64::MAX.to_be_bytes());
        let (_, r) = run(&mut d, &ipfix(1, 0, &[(3, ot), (256, od)]));
        assert_eq!(r, Ok(()));
        assert_eq!(d.export_sampling().len(), 1);
    }

    #[test]
    fn exporters_are_bounded() {
        let mut d = Decoder::new(DecoderConfig {
            max_exporters: 3,
            ..Default::default()
        });
        for i in 0..10u8 {
            let a: SocketAddr = format!("192.0.2.{i}:4739").parse().unwrap();
            let _ = d.decode(
                a,
                u64::from(i),
                &ipfix(1, 0, &[(2, tpl(300, FIELDS))]),
                &mut |_| {},
            );
        }
        assert_eq!(d.exporters(), 3);
        assert_eq!(d.stats().exporters_evicted, 7);
    }

    #[test]
    fn uptime_times_saturate() {
        // 8-byte flowEnd/StartSysUpTime and systemInitTime: any 64-bit value
        assert_eq!(
            uptime_to_ns(i128::from(u64::MAX) * 1_000_000, u64::MAX),
            u64::MAX
        );
        assert_eq!(uptime_to_ns(0, u64::MAX), u64::MAX);
        assert_eq!(
            uptime_to_ns(0, u64::MAX / 1_000_000),
            u64::MAX / 1_000_000 * 1_000_000
        );
        assert_eq!(uptime_to_ns(0, u64::MAX / 1_000_000 + 1), u64::MAX);
        // v9: boot time before 1970 (uptime larger than the export time)
        assert_eq!(uptime_to_ns(-5_000_000, 2), 0);
        assert_eq!(uptime_to_ns(-5_000_000, 7), 2_000_000);
        assert_eq!(uptime_to_ns(1_000, 1), 1_001_000);
    }

    #[test]
    fn boot_time_fast_sum_equals_the_saturating_one() {
        let u32_ms_ns = i128::from(u32::MAX) * 1_000_000;
        let max = i128::from(u64::MAX);
        let bases = [
            -5_000_000,
            -1,
            0,
            1,
            1_700_000_000_000_000_000,
            max - u32_ms_ns - 1,
            max - u32_ms_ns,
            max - u32_ms_ns + 1,
            max - 1,
            max,
            max + 1,
            max * 1_000_000,
        ];
        let uptimes = [
            0,
            1,
            7,
            3_600_000,
            u64::from(u32::MAX) - 1,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            u64::MAX / 1_000_000,
            u64::MAX,
        ];
        for b in bases {
            for ms in uptimes {
                assert_eq!(Boot::new(b).at(ms), uptime_to_ns(b, ms), "{b} + {ms} ms");
            }
        }
        assert!(Boot::new(1_700_000_000_000_000_000).fast.is_some());
        assert!(Boot::new(-1).fast.is_none());
        assert!(Boot::new(max - u32_ms_ns + 1).fast.is_none());
    }

    #[test]
    fn huge_uptime_elements_do_not_wrap() {
        // IPFIX: systemInitTimeMilliseconds options data, then flows with 8-byte uptimes
        let mut d = Decoder::default();
        let mut opts = 400u16.to_be_bytes().to_vec();
        opts.extend_from_slice(&[0, 2, 0, 1, 0, 149, 0, 4, 0, 160, 0, 8]);
        let mut odata = 9u32.to_be_bytes().to_vec();
        odata.extend_from_slice(&(u64::MAX / 2).to_be_bytes());
        let mut fields = FIELDS.to_vec();
        fields.extend_from_slice(&[(22, 8), (21, 8)]);
        let mut data = rec(1);
        data.extend_from_slice(&5u64.to_be_bytes());
        data.extend_from_slice(&u64::MAX.to_be_bytes());
        let pkt = ipfix(
            1,
            7,
            &[(3, opts), (400, odata), (2, tpl(300, &fields)), (300, data)],
        );
        let mut got = Vec::new();
        d.decode(
            EXP.parse().unwrap(),
            1_700_000_000_000_000_000,
            &pkt,
            &mut |r| got.push((r.start_ns, r.end_ns, r.time_basis)),
        )
        .unwrap();
        assert_eq!(
            got,
            [(Some(u64::MAX), Some(u64::MAX), Some(TimeBasis::Uptime))]
        );
    }

    #[test]
    fn unchanged_template_is_not_recompiled() {
        let mut d = Decoder::default();
        let key = (10, 7, 300);
        let ptr = |d: &Decoder| {
            let st = d.exporters.values().next().unwrap();
            let e = &st.templates[&key];
            (e.tpl.fields.as_ptr(), e.refreshed_ns)
        };
        let exp: SocketAddr = EXP.parse().unwrap();
        let t0 = 1_700_000_000_000_000_000;
        let pkt = ipfix(1, 7, &[(2, tpl(300, FIELDS)), (300, rec(1))]);
        d.decode(exp, t0, &pkt, &mut |_| {}).unwrap();
        let (p1, r1) = ptr(&d);
        let mut n = 0;
        d.decode(exp, t0 + 5, &pkt, &mut |_| n += 1).unwrap();
        let (p2, r2) = ptr(&d);
        assert_eq!(p1, p2, "the compiled template is kept");
        assert_eq!((r1, r2), (t0, t0 + 5), "its time is refreshed");
        assert_eq!(n, 1);
        assert_eq!(d.stats().templates, 2);
        // a different template under the same id replaces it
        let pkt = ipfix(
            3,
            7,
            &[(2, tpl(300, &FIELDS[..6])), (300, rec(1)[..21].to_vec())],
        );
        let mut bytes = Vec::new();
        d.decode(exp, t0 + 9, &pkt, &mut |r| bytes.push((r.bytes, r.packets)))
            .unwrap();
        assert_eq!(bytes, [(Some(1001), None)]);
        assert_eq!(d.templates(), 1);
        assert_eq!(d.stats().templates, 3);
    }
}
