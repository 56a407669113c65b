use super::*;

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
}

/// Consume the options records of a set (within the datagram's records budget): returns how
/// many there were.
#[allow(clippy::too_many_arguments)]
pub(super) fn consume_options(
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
