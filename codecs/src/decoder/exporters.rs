//! The exporters' states: a segmented LRU with a per-address port quota ([`Exporters`]),
//! each exporter's templates, per-domain state and held data ([`ExporterState`]), and the
//! per-exporter and total byte bounds on them.

use super::*;

/// State of one observation domain (v9 source id, IPFIX observation domain, v5 engine, sFlow
/// sub-agent) of an exporter.
#[derive(Debug, Default)]
pub(super) struct Domain {
    pub(super) seen_ns: u64,
    /// next expected sequence number
    pub(super) next_seq: Option<u32>,
    /// sampler / selector id (None: options record without one) -> rate
    pub(super) sampling: Vec<(Option<u64>, u32)>,
    pub(super) system_init_ms: Option<u64>,
}

/// Sampler ids remembered per domain.
pub(super) const MAX_SAMPLERS_PER_DOMAIN: usize = 256;

impl Domain {
    /// Bytes it counts for in the state bounds.
    pub(super) fn cost(&self) -> usize {
        let table = self.sampling.capacity() * std::mem::size_of::<(Option<u64>, u32)>();
        std::mem::size_of::<(DKey, Domain)>()
            + NODE_OVERHEAD
            + if table > 0 { table + 16 } else { 0 }
    }
}

/// Bytes an exporter counts for before it holds anything.
pub(super) const EXPORTER_BASE_BYTES: usize =
    std::mem::size_of::<(SocketAddr, ExporterState)>() + NODE_OVERHEAD + 16;

#[derive(Debug)]
pub(super) struct ExporterState {
    pub(super) last_seen_ns: u64,
    pub(super) templates: TemplateCache,
    /// least recently seen first
    pub(super) domains: Lru<DKey, Domain>,
    pub(super) held: HeldSets,
    /// this state itself and its domains, as counted in the state bounds (the templates
    /// count theirs: [`TemplateCache::bytes`])
    pub(super) own_bytes: usize,
    /// datagrams that yielded records (promotion to the protected segment at 2)
    pub(super) record_datagrams: u8,
}

impl Default for ExporterState {
    fn default() -> Self {
        ExporterState {
            last_seen_ns: 0,
            templates: TemplateCache::default(),
            domains: Lru::default(),
            held: HeldSets::default(),
            own_bytes: EXPORTER_BASE_BYTES,
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
pub(super) struct Exporters {
    pub(super) probation: Lru<SocketAddr, ExporterState>,
    pub(super) protected: Lru<SocketAddr, ExporterState>,
    /// ports tracked per address, oldest first
    pub(super) ports: HashMap<IpAddr, VecDeque<u16>>,
}

/// Why an exporter's state goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Eviction {
    Count,
    IpQuota,
    Bytes,
}

impl Exporters {
    pub(super) fn len(&self) -> usize {
        self.probation.len() + self.protected.len()
    }

    pub(super) fn contains(&self, a: &SocketAddr) -> bool {
        self.protected.contains_key(a) || self.probation.contains_key(a)
    }

    pub(super) fn get_mut(&mut self, a: &SocketAddr) -> Option<&mut ExporterState> {
        match self.protected.get_mut(a) {
            Some(s) => Some(s),
            None => self.probation.get_mut(a),
        }
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &ExporterState> {
        self.protected.values().chain(self.probation.values())
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&SocketAddr, &ExporterState)> {
        self.protected.iter().chain(self.probation.iter())
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut ExporterState> {
        self.protected
            .values_mut()
            .chain(self.probation.values_mut())
    }

    /// Remove `a`'s state (from its segment and its address's port list).
    pub(super) fn remove(&mut self, a: &SocketAddr) -> Option<ExporterState> {
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
    pub(super) fn victim(&self, keep: &SocketAddr) -> Option<SocketAddr> {
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
    pub(super) fn ip_victim(&self, a: &SocketAddr) -> Option<SocketAddr> {
        let ports = self.ports.get(&a.ip())?;
        let on_probation = ports
            .iter()
            .map(|&p| SocketAddr::new(a.ip(), p))
            .find(|k| self.probation.contains_key(k));
        on_probation.or_else(|| ports.front().map(|&p| SocketAddr::new(a.ip(), p)))
    }
}

impl Decoder {
    /// The state of `a`, created (within the bounds) if new, marked as just seen (one lookup
    /// for a known exporter: callers take it with `exporters.get_mut` afterwards).
    pub(super) fn state(&mut self, a: SocketAddr, now_ns: u64) {
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
    pub(super) fn admit(&mut self, a: SocketAddr) {
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

    pub(super) fn evict(&mut self, a: &SocketAddr, why: Eviction) {
        let Some(s) = self.exporters.remove(a) else {
            return;
        };
        self.held_bytes_total -= s.held.bytes();
        self.state_bytes_total -= s.state_bytes();
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
    pub(super) fn promote(&mut self, a: SocketAddr) {
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
    pub(super) fn protected_cap(&self) -> usize {
        let n = self.cfg.max_exporters.max(1);
        n - (n / 4).max(1)
    }

    /// Over `max_state_bytes_total`: evict the least recently seen exporters other than
    /// `keep`, then `keep`'s own oldest templates and domains.
    pub(super) fn shed_state(&mut self, keep: SocketAddr) {
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
                    .state_bytes()
                    .saturating_sub(*state_bytes_total - cfg.max_state_bytes_total);
                st.shrink(want, state_bytes_total, stats);
            }
        }
    }

    /// The exporter's domain `key`, created within the per-exporter bounds, marked as seen.
    pub(super) fn domain<'s>(
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
    pub(super) fn touch_domain(
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
                if !st.pop_domain(total) {
                    break;
                }
                stats.domains_evicted += 1;
            }
            let d = Domain::default();
            let cost = d.cost();
            if st.state_bytes() + cost > cfg.max_state_bytes_per_exporter {
                st.shrink(
                    cfg.max_state_bytes_per_exporter.saturating_sub(cost),
                    total,
                    stats,
                );
            }
            st.own_bytes += cost;
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
}

/// What became of a template received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Learned {
    /// The same as the one kept: refreshed, not compiled again.
    Refreshed,
    /// Compiled and stored.
    Stored,
    /// Compiled, but over the exporter's byte bound alone: not kept (counted as evicted).
    Refused,
    /// It did not compile.
    Failed(DecodeError),
}

impl ExporterState {
    /// Bytes of state counted in the bounds: this state itself, its domains, its templates.
    pub(super) fn state_bytes(&self) -> usize {
        self.own_bytes + self.templates.bytes()
    }

    /// The template under `key` was received as `wire`: refresh it if unchanged, else
    /// `compile` it and [`store`](Self::store) it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn learn(
        &mut self,
        key: TKey,
        wire: &[u8],
        now_ns: u64,
        compile: impl FnOnce() -> Result<Template, DecodeError>,
        cfg: &DecoderConfig,
        stats: &mut DecodeStats,
        total: &mut usize,
    ) -> Learned {
        if self.templates.refresh(&key, wire, now_ns) {
            // resent unchanged (exporters refresh templates every few seconds or packets)
            return Learned::Refreshed;
        }
        match compile() {
            Ok(tpl) => {
                if self.store(key, tpl, now_ns, cfg, stats, total) {
                    Learned::Stored
                } else {
                    Learned::Refused
                }
            }
            Err(e) => Learned::Failed(e),
        }
    }

    /// Store a template under `key` (replacing one under the same key) within the exporter's
    /// bounds: its count and bytes, oldest refreshed evicted first. False when the template
    /// alone is over the byte bound (it is not kept; counted as evicted).
    pub(super) fn store(
        &mut self,
        key: TKey,
        tpl: Template,
        now_ns: u64,
        cfg: &DecoderConfig,
        stats: &mut DecodeStats,
        total: &mut usize,
    ) -> bool {
        let entry = TemplateEntry {
            tpl,
            refreshed_ns: now_ns,
        };
        let cost = entry.cost();
        self.templates.remove(&key, total);
        if EXPORTER_BASE_BYTES + cost > cfg.max_state_bytes_per_exporter {
            stats.templates_evicted += 1;
            return false;
        }
        while self.templates.len() >= cfg.max_templates_per_exporter.max(1) {
            if !self.templates.pop_oldest(total) {
                break;
            }
            stats.templates_evicted += 1;
        }
        if self.state_bytes() + cost > cfg.max_state_bytes_per_exporter {
            self.shrink(cfg.max_state_bytes_per_exporter - cost, total, stats);
        }
        self.templates.insert(key, entry, total);
        true
    }

    /// Evict the oldest templates, then the least recently seen domains, until the state
    /// takes at most `want` bytes (or nothing is left to evict).
    pub(super) fn shrink(&mut self, want: usize, total: &mut usize, stats: &mut DecodeStats) {
        while self.state_bytes() > want {
            if self.templates.pop_oldest(total) {
                stats.templates_evicted += 1;
            } else if self.pop_domain(total) {
                stats.domains_evicted += 1;
            } else {
                break;
            }
        }
    }

    /// Remove the least recently seen domain: whether there was one.
    pub(super) fn pop_domain(&mut self, total: &mut usize) -> bool {
        let Some((_, d)) = self.domains.pop_front() else {
            return false;
        };
        self.own_bytes -= d.cost();
        *total -= d.cost();
        true
    }

    /// Remove the domains not seen for longer than `timeout_ms`: how many went.
    pub(super) fn expire_domains(
        &mut self,
        now_ns: u64,
        timeout_ms: u64,
        total: &mut usize,
    ) -> u64 {
        let timeout_ns = timeout_ms.saturating_mul(1_000_000);
        let mut n = 0;
        while self
            .domains
            .front()
            .is_some_and(|(_, d)| now_ns > d.seen_ns.saturating_add(timeout_ns))
        {
            self.pop_domain(total);
            n += 1;
        }
        n
    }
}

/// Set `sid`'s rate in the domain's sampling table, which grows (counted in `own_bytes`, the
/// exporter's [`ExporterState::own_bytes`]) up to [`MAX_SAMPLERS_PER_DOMAIN`] entries while
/// `own_bytes` stays within `room` (the per-exporter bound less the templates' bytes).
pub(super) fn set_rate(
    d: &mut Domain,
    own_bytes: &mut usize,
    total: &mut usize,
    room: usize,
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
        if *own_bytes + growth > room {
            return;
        }
        d.sampling.reserve_exact(want - d.sampling.len());
    }
    d.sampling.push((sid, rate));
    let after = d.cost();
    *own_bytes += after - before;
    *total += after - before;
}
