//! The stateful decoder: recognises the protocol by its version field, keeps per-exporter
//! template, sampling and held-data state, and calls the caller for every record.
//!
//! State is keyed by the exporter's transport session, its address and UDP source port (RFC 7011
//! scopes templates to the transport session: two exporting processes of one router may use
//! the same template id for different templates), then by (version, observation domain /
//! source id, template id). An exporter that restarts on a new port sends its templates again;
//! data that arrives first is held until they come.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::error::{be16, be32, DecodeError};
use crate::record::{FlowProtocol, FlowRecord, Raw, SamplingSource, TimeBasis};
use crate::set::Set;
use crate::stats::DecodeStats;
use crate::template::{self, OptionValues, Template, WireField};
use crate::{ipfix, netflow5, netflow9, sflow};

/// The decoder's maps hash with foldhash, seeded at random per process: SipHash weighed on
/// short datagrams of fixed-length records (a handful of lookups per datagram: exporter,
/// template, sampling, sequence). Foldhash is only minimally resistant to crafted
/// collisions; every map here is bounded (exporters, templates per exporter, domains), so
/// collisions can slow a lookup, not grow without bound.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Bounds and switches of a [`Decoder`].
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    /// Multiply bytes/packets by the sampling rate.
    pub scale_sampling: bool,
    /// Templates not refreshed for this long are forgotten (0: never).
    pub template_timeout_ms: u64,
    /// Templates kept per exporter; the least recently refreshed is evicted beyond this.
    pub max_templates_per_exporter: usize,
    /// Exporters tracked; the least recently seen is evicted beyond this.
    pub max_exporters: usize,
    /// Bytes of data sets held per exporter while their template is unknown (0: hold nothing).
    pub max_held_bytes_per_exporter: usize,
    /// Bytes held in total across exporters.
    pub max_held_bytes_total: usize,
    /// How long a held data set waits for its template (0: until evicted by the byte bounds).
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

/// (version, domain, template id)
type TKey = (u16, u32, u16);
/// (version, domain)
type DKey = (u16, u32);

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

#[derive(Debug)]
struct Held {
    tid: u16,
    hdr: Header,
    exporter: SocketAddr,
    received_ns: u64,
    body: Vec<u8>,
}

#[derive(Debug, Default)]
struct ExporterState {
    last_seen_ns: u64,
    templates: HashMap<TKey, TemplateEntry>,
    /// sampler / selector id (None: options record without one) -> rate
    sampling: HashMap<DKey, Vec<(Option<u64>, u32)>>,
    system_init_ms: HashMap<DKey, u64>,
    held: VecDeque<Held>,
    held_bytes: usize,
    /// next expected sequence number per (protocol tag, domain)
    next_seq: HashMap<DKey, u32>,
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
#[derive(Debug, Default)]
pub struct Decoder {
    cfg: DecoderConfig,
    stats: DecodeStats,
    exporters: HashMap<SocketAddr, ExporterState>,
    held_bytes_total: usize,
    fields_buf: Vec<WireField>,
    new_keys: Vec<TKey>,
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

    /// Data sets still held for a template that has not arrived.
    pub fn held_sets_pending(&self) -> usize {
        self.exporters.values().map(|e| e.held.len()).sum()
    }

    /// Bytes held in total.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes_total
    }

    /// Templates known, across exporters.
    pub fn templates(&self) -> usize {
        self.exporters.values().map(|e| e.templates.len()).sum()
    }

    /// Decode one datagram from `exporter` received at `now_ns` (ns since the epoch), calling
    /// `f` for each record, including held records that this datagram's templates released.
    /// Errors are counted in [`Decoder::stats`] and returned (the last one) for logging;
    /// nothing here panics on bad input.
    pub fn decode(
        &mut self,
        exporter: SocketAddr,
        now_ns: u64,
        payload: &[u8],
        f: &mut dyn FnMut(&FlowRecord<'_>),
    ) -> Result<(), DecodeError> {
        let r = if be32(payload, 0) == Some(5) {
            self.stats.datagrams[FlowProtocol::Sflow5.index()] += 1;
            self.decode_sflow(exporter, now_ns, payload, f)
        } else {
            match be16(payload, 0) {
                Some(5) => {
                    self.stats.datagrams[FlowProtocol::NetflowV5.index()] += 1;
                    self.decode_v5(exporter, now_ns, payload, f)
                }
                Some(9) => {
                    self.stats.datagrams[FlowProtocol::NetflowV9.index()] += 1;
                    self.decode_templated(exporter, now_ns, payload, 9, f)
                }
                Some(10) => {
                    self.stats.datagrams[FlowProtocol::Ipfix.index()] += 1;
                    self.decode_templated(exporter, now_ns, payload, 10, f)
                }
                Some(v) => Err(DecodeError::UnsupportedVersion {
                    version: u32::from(v),
                }),
                None => Err(DecodeError::truncated("version", 0, 2, payload.len())),
            }
        };
        if let Err(e) = r {
            self.stats.error(e);
        }
        r
    }

    fn state(&mut self, ip: SocketAddr, now_ns: u64) -> &mut ExporterState {
        if !self.exporters.contains_key(&ip)
            && self.exporters.len() >= self.cfg.max_exporters.max(1)
        {
            // evict the least recently seen exporter
            if let Some(old) = self
                .exporters
                .iter()
                .min_by_key(|(_, s)| s.last_seen_ns)
                .map(|(k, _)| *k)
            {
                if let Some(s) = self.exporters.remove(&old) {
                    self.held_bytes_total -= s.held_bytes;
                    self.stats.held_sets_dropped += s.held.len() as u64;
                    self.stats.templates_evicted += s.templates.len() as u64;
                }
                self.stats.exporters_evicted += 1;
            }
        }
        let st = self.exporters.entry(ip).or_default();
        st.last_seen_ns = st.last_seen_ns.max(now_ns);
        st
    }

    fn seq_gap(stats: &mut DecodeStats, st: &mut ExporterState, key: DKey, seq: u32, advance: u32) {
        if let Some(&expected) = st.next_seq.get(&key) {
            let diff = seq.wrapping_sub(expected);
            // ahead by a plausible amount: lost; behind or far off: reordering or a restart
            if diff != 0 && diff < 1_000_000 {
                stats.sequence_gaps += u64::from(diff);
            }
        }
        st.next_seq.insert(key, seq.wrapping_add(advance));
    }

    fn emit(
        stats: &mut DecodeStats,
        scale: bool,
        rec: &mut FlowRecord<'_>,
        f: &mut dyn FnMut(&FlowRecord<'_>),
    ) {
        if scale {
            rec.scale_by_sampling();
        }
        match rec.kind {
            crate::record::RecordKind::Flow => stats.records[rec.protocol.index()] += 1,
            crate::record::RecordKind::Counters => stats.counter_samples += 1,
        }
        f(rec);
    }

    fn decode_v5(
        &mut self,
        exporter: SocketAddr,
        now_ns: u64,
        payload: &[u8],
        f: &mut dyn FnMut(&FlowRecord<'_>),
    ) -> Result<(), DecodeError> {
        let p = netflow5::Packet::new_checked(payload)?;
        let scale = self.cfg.scale_sampling;
        {
            let (seq, count, dom) = (
                p.flow_sequence(),
                p.count(),
                u32::from(p.engine_type()) << 8 | u32::from(p.engine_id()),
            );
            let st = self.state(exporter, now_ns);
            let mut gaps = DecodeStats::default();
            Self::seq_gap(&mut gaps, st, (5, dom), seq, u32::from(count));
            self.stats.sequence_gaps += gaps.sequence_gaps;
        }
        let stats = &mut self.stats;
        netflow5::decode(exporter, payload, &mut |r| {
            let mut r = *r;
            Self::emit(stats, scale, &mut r, f);
        })
        .map(|_| ())
    }

    fn decode_sflow(
        &mut self,
        exporter: SocketAddr,
        now_ns: u64,
        payload: &[u8],
        f: &mut dyn FnMut(&FlowRecord<'_>),
    ) -> Result<(), DecodeError> {
        let dg = sflow::Datagram::new_checked(payload)?;
        {
            let (seq, sub) = (dg.sequence_number(), dg.sub_agent_id());
            let st = self.state(exporter, now_ns);
            let mut gaps = DecodeStats::default();
            Self::seq_gap(&mut gaps, st, (5 << 8, sub), seq, 1);
            self.stats.sequence_gaps += gaps.sequence_gaps;
        }
        let scale = self.cfg.scale_sampling;
        let mut counts = DecodeStats::default();
        let mut errs = DecodeStats::default();
        let r = sflow::decode(exporter, payload, &mut errs, &mut |r| {
            let mut r = *r;
            // sFlow carries no wall-clock time: the receive time stands in for the export time
            r.export_time_ns = r.export_time_ns.or(Some(now_ns));
            Self::emit(&mut counts, scale, &mut r, f);
        });
        self.stats.merge(&errs);
        self.stats.records[FlowProtocol::Sflow5.index()] +=
            counts.records[FlowProtocol::Sflow5.index()];
        self.stats.counter_samples += counts.counter_samples;
        r
    }

    fn decode_templated(
        &mut self,
        exporter: SocketAddr,
        now_ns: u64,
        payload: &[u8],
        version: u16,
        f: &mut dyn FnMut(&FlowRecord<'_>),
    ) -> Result<(), DecodeError> {
        let (hdr, body, base) = if version == 9 {
            let p = netflow9::Packet::new_checked(payload)?;
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
        } else {
            let m = ipfix::Message::new_checked(payload)?;
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
            fields_buf,
            new_keys,
        } = self;
        let st = exporters.get_mut(&exporter).expect("state created above");
        let mut last_err = None;

        // expire held data and stale templates of this exporter
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
                            let before = st.templates.len();
                            st.templates.retain(|k, e| {
                                !(k.0 == version
                                    && k.1 == hdr.domain
                                    && e.tpl.is_options == options)
                            });
                            stats.template_withdrawals += (before - st.templates.len()) as u64;
                        } else if st.templates.remove(&(version, hdr.domain, tid)).is_some() {
                            stats.template_withdrawals += 1;
                        }
                        return;
                    }
                    let key = (version, hdr.domain, tid);
                    if let Some(e) = st.templates.get_mut(&key) {
                        if e.tpl.wire == wire {
                            // resent unchanged (exporters refresh templates every few seconds
                            // or packets): keep the compiled template, refresh its time
                            stats.templates += 1;
                            e.refreshed_ns = now_ns;
                            new_keys.push(key);
                            return;
                        }
                    }
                    match Template::compile(version, tid, options, fields, wire) {
                        Ok(tpl) => {
                            stats.templates += 1;
                            if let Some(e) = st.templates.get_mut(&key) {
                                // a new template under a known id (the wire bytes differ)
                                e.refreshed_ns = now_ns;
                                e.tpl = tpl;
                            } else {
                                if st.templates.len() >= cfg.max_templates_per_exporter.max(1) {
                                    if let Some(old) = st
                                        .templates
                                        .iter()
                                        .min_by_key(|(_, e)| e.refreshed_ns)
                                        .map(|(k, _)| *k)
                                    {
                                        st.templates.remove(&old);
                                        stats.templates_evicted += 1;
                                    }
                                }
                                st.templates.insert(
                                    key,
                                    TemplateEntry {
                                        tpl,
                                        refreshed_ns: now_ns,
                                    },
                                );
                            }
                            new_keys.push(key);
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
                st.templates.remove(&key);
                stats.templates_evicted += 1;
                continue;
            }
            if let Some(e) = st.templates.get(&key) {
                if e.tpl.is_options {
                    data_records += consume_options(
                        &mut st.sampling,
                        &mut st.system_init_ms,
                        key,
                        &e.tpl,
                        set.body,
                        stats,
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
                            &mut st.sampling,
                            &mut st.system_init_ms,
                            key,
                            &e.tpl,
                            &h.body,
                            stats,
                        );
                    } else {
                        emit_data(
                            &e.tpl,
                            &h.body,
                            &h.hdr,
                            h.exporter,
                            &st.sampling,
                            &st.system_init_ms,
                            cfg,
                            stats,
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
                            &st.sampling,
                            &st.system_init_ms,
                            cfg,
                            stats,
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

        let seq_key = (version, hdr.domain);
        if missed && version == 10 {
            // IPFIX counts data records: a held set's count is unknown until its template comes
            st.next_seq.remove(&seq_key);
        } else {
            let advance = if version == 9 { 1 } else { data_records };
            let mut gaps = DecodeStats::default();
            Self::seq_gap(&mut gaps, st, seq_key, hdr.sequence, advance);
            stats.sequence_gaps += gaps.sequence_gaps;
        }
        match last_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Drop held data older than `max_hold_ms` and templates older than the timeout, across
    /// all exporters. Call it periodically (the collector does once a second).
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
                let before = st.templates.len();
                st.templates
                    .retain(|_, e| !expired(e, now_ns, cfg.template_timeout_ms));
                self.stats.templates_evicted += (before - st.templates.len()) as u64;
            }
        }
    }

    /// Every template known, for the persisted template store.
    pub fn export_templates(&self) -> Vec<StoredTemplate> {
        let mut out = Vec::new();
        for (ip, st) in &self.exporters {
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

    /// Load templates from the persisted store (as if received at `now_ns`).
    pub fn import_templates(&mut self, templates: &[StoredTemplate], now_ns: u64) -> usize {
        let mut n = 0;
        for t in templates {
            if let Ok(tpl) =
                Template::compile(t.version, t.template_id, t.is_options, &t.fields, &[])
            {
                let st = self.state(t.exporter, now_ns);
                st.templates.insert(
                    (t.version, t.domain, t.template_id),
                    TemplateEntry {
                        tpl,
                        refreshed_ns: now_ns,
                    },
                );
                n += 1;
            }
        }
        n
    }

    /// Sampling state for persistence: (exporter, version, domain, sampler id, rate).
    pub fn export_sampling(&self) -> Vec<(SocketAddr, u16, u32, Option<u64>, u32)> {
        let mut out = Vec::new();
        for (ip, st) in &self.exporters {
            for (k, v) in &st.sampling {
                for &(sid, rate) in v {
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
        for &(ip, v, d, sid, rate) in entries {
            let st = self.state(ip, now_ns);
            set_rate(st.sampling.entry((v, d)).or_default(), sid, rate);
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

fn set_rate(table: &mut Vec<(Option<u64>, u32)>, sid: Option<u64>, rate: u32) {
    if let Some(e) = table.iter_mut().find(|(s, _)| *s == sid) {
        e.1 = rate;
    } else if table.len() < 4096 {
        table.push((sid, rate));
    }
}

fn apply_options(
    sampling: &mut HashMap<DKey, Vec<(Option<u64>, u32)>>,
    sysinit: &mut HashMap<DKey, u64>,
    dkey: DKey,
    o: &OptionValues,
) {
    if let Some(rate) = o.rate() {
        set_rate(
            sampling.entry(dkey).or_default(),
            o.sampler_id,
            rate.min(u64::from(u32::MAX)) as u32,
        );
    }
    if let Some(t) = o.system_init_ms {
        sysinit.insert(dkey, t);
    }
}

/// Consume the options records of a set: returns how many there were.
fn consume_options(
    sampling: &mut HashMap<DKey, Vec<(Option<u64>, u32)>>,
    sysinit: &mut HashMap<DKey, u64>,
    key: TKey,
    tpl: &Template,
    body: &[u8],
    stats: &mut DecodeStats,
) -> u32 {
    let mut n = 0;
    for r in tpl.records(body) {
        match r {
            Ok(data) => {
                let o = template::read_options(tpl, data);
                apply_options(sampling, sysinit, (key.0, key.1), &o);
                stats.options_records += 1;
                n += 1;
            }
            Err(e) => stats.error(e),
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
    sampling: &HashMap<DKey, Vec<(Option<u64>, u32)>>,
    sysinit: &HashMap<DKey, u64>,
    cfg: &DecoderConfig,
    stats: &mut DecodeStats,
    f: &mut dyn FnMut(&FlowRecord<'_>),
) -> u32 {
    let proto = if hdr.version == 9 {
        FlowProtocol::NetflowV9
    } else {
        FlowProtocol::Ipfix
    };
    let dkey = (hdr.version, hdr.domain);
    let table = sampling.get(&dkey);
    let init_ms = sysinit.get(&dkey).copied();
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
        Decoder::emit(stats, cfg.scale_sampling, &mut rec, f);
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
        let mut d = Decoder::default();
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
