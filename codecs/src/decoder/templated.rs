//! NetFlow v9 and IPFIX: a datagram decoded in short passes over its sets (templates, options
//! data, held sets released, flow data), then its sequence accounted.

use super::*;

/// One v9 / IPFIX datagram being decoded, and the decoder state it touches (split out of the
/// [`Decoder`] so that each pass is a method).
struct Passes<'d, 'p> {
    exporter: SocketAddr,
    now_ns: u64,
    hdr: Header,
    /// the sets, and their offset in the datagram
    body: &'p [u8],
    base: usize,
    cfg: &'d DecoderConfig,
    stats: &'d mut DecodeStats,
    st: &'d mut ExporterState,
    held_bytes_total: &'d mut usize,
    state_bytes_total: &'d mut usize,
    /// templates this datagram brought (new or refreshed)
    new_keys: &'d mut Vec<TKey>,
}

/// The header of a v9 packet or an IPFIX message, its sets, and their offset in `payload`.
fn header(payload: &[u8], version: u16) -> Result<(Header, &[u8], usize), DecodeError> {
    if version == 9 {
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
    }
}

impl Decoder {
    pub(super) fn decode_templated(
        &mut self,
        exporter: SocketAddr,
        now_ns: u64,
        payload: &[u8],
        version: u16,
        em: &mut Emit,
        f: &mut dyn FnMut(&FlowRecord<'_>),
    ) -> Result<(), DecodeError> {
        let (hdr, body, base) = match header(payload, version) {
            Ok(h) => h,
            Err(e) => {
                self.stats.error(e);
                return Err(e);
            }
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
        Self::touch_domain(
            st,
            (version, hdr.domain),
            now_ns,
            cfg,
            stats,
            state_bytes_total,
        );
        // expire held data of this exporter
        stats.held_sets_dropped += st.held.expire(now_ns, cfg.max_hold_ms, held_bytes_total);
        new_keys.clear();
        let mut dg = Passes {
            exporter,
            now_ns,
            hdr,
            body,
            base,
            cfg,
            stats,
            st,
            held_bytes_total,
            state_bytes_total,
            new_keys,
        };
        let last_err = dg.templates(fields_buf);
        let options_records = dg.options_data(em);
        dg.release_held(em, f);
        let (flow_records, missed) = dg.flow_data(em, f);
        dg.sequence(options_records + flow_records, missed);
        match last_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Passes<'_, '_> {
    /// Pass 1: learn (or withdraw) the templates of the template sets; the last error.
    fn templates(&mut self, fields_buf: &mut Vec<WireField>) -> Option<DecodeError> {
        let version = self.hdr.version;
        let (tset, oset) = if version == 9 {
            (netflow9::TEMPLATE_SET, netflow9::OPTIONS_TEMPLATE_SET)
        } else {
            (ipfix::TEMPLATE_SET, ipfix::OPTIONS_TEMPLATE_SET)
        };
        let mut last_err = None;
        for set in crate::set::Sets::new(self.body, self.base) {
            let set = match set {
                Ok(s) => s,
                Err(e) => {
                    self.stats.error(e);
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
                    if !fields.is_empty() {
                        self.template(options, tid, fields, wire);
                    } else if tid == tset || tid == oset {
                        // IPFIX withdrawal of all of the set's kind (tid == set id)
                        self.withdraw(Withdraw::All { options });
                    } else {
                        self.withdraw(Withdraw::One(tid));
                    }
                },
            );
            if let Err(e) = r {
                self.stats.error(e);
                last_err = Some(e);
            }
        }
        last_err
    }

    /// One template record received: refreshed, or compiled and stored.
    fn template(&mut self, options: bool, tid: u16, fields: &[WireField], wire: &[u8]) {
        let (version, key) = (self.hdr.version, (self.hdr.version, self.hdr.domain, tid));
        let compile = || Template::compile(version, tid, options, fields, wire);
        let learned = self.st.learn(
            key,
            wire,
            self.now_ns,
            compile,
            self.cfg,
            self.stats,
            self.state_bytes_total,
        );
        match learned {
            Learned::Refreshed | Learned::Stored => {
                self.stats.templates += 1;
                self.new_keys.push(key);
            }
            Learned::Refused => self.stats.templates += 1,
            Learned::Failed(e) => self.stats.error(e),
        }
    }

    fn withdraw(&mut self, which: Withdraw) {
        let (v, d) = (self.hdr.version, self.hdr.domain);
        self.stats.template_withdrawals +=
            self.st
                .templates
                .withdraw(v, d, which, self.state_bytes_total);
    }

    /// Pass 2: the options data of this datagram (sampling tables, systemInitTime), before
    /// its flow data; templates found expired are forgotten. Returns the options records.
    fn options_data(&mut self, em: &mut Emit) -> u32 {
        let mut records = 0;
        let timeout = self.cfg.template_timeout_ms;
        for set in crate::set::Sets::new(self.body, self.base).flatten() {
            if set.id < 256 {
                continue;
            }
            let key = (self.hdr.version, self.hdr.domain, set.id);
            let st = &mut *self.st;
            let room = self
                .cfg
                .max_state_bytes_per_exporter
                .saturating_sub(st.templates.bytes());
            match st
                .templates
                .live(&key, self.now_ns, timeout, self.state_bytes_total)
            {
                Lookup::Expired => self.stats.templates_evicted += 1,
                Lookup::Live(tpl) if tpl.is_options => {
                    records += consume_options(
                        &mut st.domains,
                        &mut st.own_bytes,
                        self.state_bytes_total,
                        room,
                        key,
                        tpl,
                        set.body,
                        self.stats,
                        em,
                    );
                }
                Lookup::Live(_) | Lookup::Unknown => {}
            }
        }
        records
    }

    /// Held data whose template arrived in this datagram: options first, then flows.
    fn release_held(&mut self, em: &mut Emit, f: &mut dyn FnMut(&FlowRecord<'_>)) {
        if self.new_keys.is_empty() || self.st.held.is_empty() {
            return;
        }
        let st = &mut *self.st;
        let (keys, templates) = (&*self.new_keys, &st.templates);
        let release = st.held.release(self.held_bytes_total, |h| {
            let key = h.key();
            keys.contains(&key) && templates.get(&key).is_some()
        });
        let room = self
            .cfg
            .max_state_bytes_per_exporter
            .saturating_sub(st.templates.bytes());
        for want_options in [true, false] {
            for h in &release {
                let key = h.key();
                let Some(tpl) = st.templates.get(&key) else {
                    continue;
                };
                if tpl.is_options != want_options {
                    continue;
                }
                self.stats.held_sets_released += 1;
                if want_options {
                    consume_options(
                        &mut st.domains,
                        &mut st.own_bytes,
                        self.state_bytes_total,
                        room,
                        key,
                        tpl,
                        &h.body,
                        self.stats,
                        em,
                    );
                } else {
                    let domain = st.domains.get(&(h.hdr.version, h.hdr.domain));
                    emit_data(tpl, &h.body, &h.hdr, h.exporter, domain, self.stats, em, f);
                }
            }
        }
    }

    /// Pass 3: the flow data; a set whose template is unknown is held. Returns the flow
    /// records and whether a set missed its template.
    fn flow_data(&mut self, em: &mut Emit, f: &mut dyn FnMut(&FlowRecord<'_>)) -> (u32, bool) {
        let (mut records, mut missed) = (0, false);
        let (hdr, timeout) = (self.hdr, self.cfg.template_timeout_ms);
        let dkey = (hdr.version, hdr.domain);
        for set in crate::set::Sets::new(self.body, self.base).flatten() {
            if set.id < 256 {
                continue;
            }
            let st = &mut *self.st;
            let key = (hdr.version, hdr.domain, set.id);
            match st.templates.get_live(&key, self.now_ns, timeout) {
                Some(tpl) => {
                    if !tpl.is_options {
                        let domain = st.domains.get(&dkey);
                        records += emit_data(
                            tpl,
                            set.body,
                            &hdr,
                            self.exporter,
                            domain,
                            self.stats,
                            em,
                            f,
                        );
                    }
                }
                None => {
                    missed = true;
                    self.stats.template_misses += 1;
                    let (cfg, total) = (self.cfg, &mut *self.held_bytes_total);
                    st.held
                        .hold(total, cfg, self.stats, set, hdr, self.exporter, self.now_ns);
                }
            }
        }
        (records, missed)
    }

    /// The sequence number: a gap counted, the next one expected.
    fn sequence(&mut self, data_records: u32, missed: bool) {
        let hdr = self.hdr;
        // (the domain may have been evicted by a template's bytes in this datagram)
        let Some(d) = self.st.domains.get_mut(&(hdr.version, hdr.domain)) else {
            return;
        };
        if missed && hdr.version == 10 {
            // IPFIX counts data records: a held set's count is unknown until its template
            // comes
            d.next_seq = None;
        } else {
            let advance = if hdr.version == 9 { 1 } else { data_records };
            Decoder::seq_gap(self.stats, d, hdr.sequence, advance);
        }
    }
}

/// Consume the options records of a set (within the datagram's records budget): returns how
/// many there were.
#[allow(clippy::too_many_arguments)]
pub(super) fn consume_options(
    domains: &mut Lru<DKey, Domain>,
    own_bytes: &mut usize,
    total: &mut usize,
    room: usize,
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
                        set_rate(d, own_bytes, total, room, o.sampler_id, rate);
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

/// `base_ns` (the exporter's boot time, ns since the epoch) plus `uptime_ms`, clamped to
/// 0..=u64::MAX: 8-byte flowStart/EndSysUpTime values (IE 22/21) and systemInitTime are
/// arbitrary 64-bit numbers, and their sum in nanoseconds need not fit in a u64.
#[inline]
pub(super) fn uptime_to_ns(base_ns: i128, uptime_ms: u64) -> u64 {
    // |base_ns| < 2^85 and uptime_ms * 10^6 < 2^84: no overflow in i128
    let ns = base_ns.saturating_add(i128::from(uptime_ms).saturating_mul(1_000_000));
    ns.clamp(0, i128::from(u64::MAX)) as u64
}

/// The exporter's boot time for the times of one data set that are relative to it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Boot {
    /// ns since the epoch (may be before 1970 for a bogus header)
    pub(super) ns: i128,
    /// `ns` when a 32-bit uptime (v9 and most IPFIX exporters) added to it can neither go
    /// below 0 nor above `u64::MAX`: the sum is then done in a u64 instead of the i128
    /// saturating sum of `uptime_to_ns`
    pub(super) fast: Option<u64>,
}

impl Boot {
    pub(super) fn new(ns: i128) -> Boot {
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
    pub(super) fn at(self, uptime_ms: u64) -> u64 {
        match self.fast {
            Some(b) if uptime_ms <= u64::from(u32::MAX) => b + uptime_ms * 1_000_000,
            _ => uptime_to_ns(self.ns, uptime_ms),
        }
    }
}

/// Decode the flow records of one data set; returns how many records it held.
#[allow(clippy::too_many_arguments)]
pub(super) fn emit_data(
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

        let ((start, end, basis), uptimes) = record_times(&t, uptime_base, hdr.export_ns);
        (rec.start_ns, rec.end_ns, rec.time_basis) = (start, end, basis);
        (rec.start_uptime_ms, rec.end_uptime_ms) = uptimes;
        (rec.sampling_rate, rec.sampling_source, rec.sampler_id) = record_sampling(&o, table);
        rec.scaled = false;
        rec.raw = Raw::Template {
            template: tpl,
            data,
        };
        Decoder::emit(stats, em, &mut rec, f);
    }
    n
}

/// A record's (start, end, time basis).
type Times = (Option<u64>, Option<u64>, Option<TimeBasis>);

/// A record's (start, end, time basis) from the times it carries, and its uptimes left
/// unresolved (when the exporter's boot time is unknown).
#[inline(always)]
fn record_times(
    t: &template::RecordTimes,
    uptime_base: Option<Boot>,
    export_ns: u64,
) -> (Times, (Option<u64>, Option<u64>)) {
    let from_uptime = |ms: Option<u64>| -> Option<u64> { Some(uptime_base?.at(ms?)) };
    let from_delta = |us: Option<u64>| -> Option<u64> {
        Some(export_ns.saturating_sub(us?.saturating_mul(1000)))
    };
    if t.start_abs_ns.is_some() || t.end_abs_ns.is_some() {
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
    }
}

/// A record's (sampling rate, its source, sampler id): the rate in the record, else the
/// exporter's options table (`table`: the domain's, when not empty).
#[inline(always)]
fn record_sampling(
    o: &template::RecordSampling,
    table: Option<&Vec<(Option<u64>, u32)>>,
) -> (Option<u32>, Option<SamplingSource>, Option<u64>) {
    let sid = o.sampler_id;
    if let Some(rate) = o.rate {
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
    }
}
