//! One exporter's templates ([`TemplateCache`]) and the data sets it holds until their
//! template comes ([`HeldSets`]), each with the byte accounting of its bounds.
//!
//! Neither map can change without its accounting: the maps are private to this module, and
//! every method that adds or removes an entry updates the type's own byte count and the
//! per-worker total it is handed (`total`) by the same amount.

use hashlink::linked_hash_map::RawEntryMut;

use super::*;

/// A compiled template and when it was last received.
#[derive(Debug)]
pub(super) struct TemplateEntry {
    pub(super) tpl: Template,
    pub(super) refreshed_ns: u64,
}

impl TemplateEntry {
    /// Bytes it counts for in the state bounds.
    pub(super) fn cost(&self) -> usize {
        self.tpl.heap_bytes() - std::mem::size_of::<Template>()
            + std::mem::size_of::<(TKey, TemplateEntry)>()
            + NODE_OVERHEAD
    }

    /// Not received for longer than `timeout_ms` (0: never expires).
    #[inline]
    fn expired(&self, now_ns: u64, timeout_ms: u64) -> bool {
        timeout_ms > 0
            && now_ns
                > self
                    .refreshed_ns
                    .saturating_add(timeout_ms.saturating_mul(1_000_000))
    }
}

/// What an IPFIX template withdrawal (a template record without fields) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Withdraw {
    /// One template id.
    One(u16),
    /// Every template of the domain of one kind (the withdrawal's id is its set's id).
    All { options: bool },
}

/// A template looked up for a data set.
#[derive(Debug)]
pub(super) enum Lookup<'a> {
    Live(&'a Template),
    /// It had timed out: it is gone now.
    Expired,
    Unknown,
}

/// One exporter's templates, oldest refreshed first, and the bytes they count for in the
/// state bounds (the sum of [`TemplateEntry::cost`]).
#[derive(Debug, Default)]
pub(super) struct TemplateCache {
    map: Lru<TKey, TemplateEntry>,
    bytes: usize,
}

impl TemplateCache {
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// Bytes the templates count for in the state bounds.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Oldest refreshed first.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&TKey, &TemplateEntry)> {
        self.map.iter()
    }

    #[cfg(test)]
    pub(super) fn entry(&self, key: &TKey) -> Option<&TemplateEntry> {
        self.map.get(key)
    }

    /// The template under `key`, expired or not.
    #[inline]
    pub(super) fn get(&self, key: &TKey) -> Option<&Template> {
        self.map.get(key).map(|e| &e.tpl)
    }

    /// The template under `key` unless it has timed out (one lookup, nothing removed).
    #[inline]
    pub(super) fn get_live(&self, key: &TKey, now_ns: u64, timeout_ms: u64) -> Option<&Template> {
        match self.map.get(key) {
            Some(e) if !e.expired(now_ns, timeout_ms) => Some(&e.tpl),
            _ => None,
        }
    }

    /// The template under `key`; one that has timed out is removed (one lookup).
    #[inline]
    pub(super) fn live(
        &mut self,
        key: &TKey,
        now_ns: u64,
        timeout_ms: u64,
        total: &mut usize,
    ) -> Lookup<'_> {
        match self.map.raw_entry_mut().from_key(key) {
            RawEntryMut::Occupied(o) if o.get().expired(now_ns, timeout_ms) => {
                let cost = o.remove().cost();
                self.bytes -= cost;
                *total -= cost;
                Lookup::Expired
            }
            RawEntryMut::Occupied(o) => Lookup::Live(&o.into_mut().tpl),
            RawEntryMut::Vacant(_) => Lookup::Unknown,
        }
    }

    /// The template under `key` was received again: if its wire form is `wire`, refresh its
    /// time and its place in the eviction order and return true (it is not compiled again).
    pub(super) fn refresh(&mut self, key: &TKey, wire: &[u8], now_ns: u64) -> bool {
        match self.map.raw_entry_mut().from_key(key) {
            RawEntryMut::Occupied(mut o) if o.get().tpl.wire == wire => {
                o.to_back();
                o.get_mut().refreshed_ns = now_ns;
                true
            }
            _ => false,
        }
    }

    /// Add `entry` under `key`, newest (replacing one under the same key). No bound is
    /// checked here: see [`ExporterState::store`].
    pub(super) fn insert(&mut self, key: TKey, entry: TemplateEntry, total: &mut usize) {
        self.remove(&key, total);
        let cost = entry.cost();
        self.bytes += cost;
        *total += cost;
        self.map.insert(key, entry);
    }

    /// Remove the template under `key`: whether there was one.
    pub(super) fn remove(&mut self, key: &TKey, total: &mut usize) -> bool {
        let Some(e) = self.map.remove(key) else {
            return false;
        };
        self.bytes -= e.cost();
        *total -= e.cost();
        true
    }

    /// Remove the oldest refreshed template: whether there was one.
    pub(super) fn pop_oldest(&mut self, total: &mut usize) -> bool {
        let Some((_, e)) = self.map.pop_front() else {
            return false;
        };
        self.bytes -= e.cost();
        *total -= e.cost();
        true
    }

    /// Remove the templates a withdrawal for (`version`, `domain`) names: how many went.
    pub(super) fn withdraw(
        &mut self,
        version: u16,
        domain: u32,
        which: Withdraw,
        total: &mut usize,
    ) -> u64 {
        let options = match which {
            Withdraw::One(tid) => return u64::from(self.remove(&(version, domain, tid), total)),
            Withdraw::All { options } => options,
        };
        let (before, mut freed) = (self.map.len(), 0);
        self.map.retain(|k, e| {
            let keep = !(k.0 == version && k.1 == domain && e.tpl.is_options == options);
            if !keep {
                freed += e.cost();
            }
            keep
        });
        self.bytes -= freed;
        *total -= freed;
        (before - self.map.len()) as u64
    }

    /// Remove the templates not received for longer than `timeout_ms`: how many went. Costs
    /// O(what expires): the oldest refreshed come first.
    pub(super) fn expire_older(&mut self, now_ns: u64, timeout_ms: u64, total: &mut usize) -> u64 {
        let mut n = 0;
        while self
            .map
            .front()
            .is_some_and(|(_, e)| e.expired(now_ns, timeout_ms))
        {
            self.pop_oldest(total);
            n += 1;
        }
        n
    }
}

/// A data set waiting for its template.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) tid: u16,
    pub(super) hdr: Header,
    pub(super) exporter: SocketAddr,
    pub(super) received_ns: u64,
    pub(super) body: Vec<u8>,
}

impl Held {
    /// Bytes it counts for in the bounds: its body plus the bookkeeping around it, so many
    /// tiny sets cannot escape the bound.
    #[inline]
    fn cost(&self) -> usize {
        held_cost(&self.body)
    }

    pub(super) fn key(&self) -> TKey {
        (self.hdr.version, self.hdr.domain, self.tid)
    }
}

#[inline]
pub(super) fn held_cost(body: &[u8]) -> usize {
    body.len() + std::mem::size_of::<Held>()
}

/// One exporter's held data sets, oldest first, and the bytes they count for.
#[derive(Debug, Default)]
pub(super) struct HeldSets {
    sets: VecDeque<Held>,
    bytes: usize,
}

impl HeldSets {
    pub(super) fn len(&self) -> usize {
        self.sets.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    fn pop_oldest(&mut self, total: &mut usize) -> bool {
        let Some(h) = self.sets.pop_front() else {
            return false;
        };
        self.bytes -= h.cost();
        *total -= h.cost();
        true
    }

    /// Drop the sets held longer than `max_hold_ms` (0: none): how many went.
    pub(super) fn expire(&mut self, now_ns: u64, max_hold_ms: u64, total: &mut usize) -> u64 {
        let mut n = 0;
        if max_hold_ms > 0 {
            while self
                .sets
                .front()
                .is_some_and(|h| h.received_ns.saturating_add(max_hold_ms * 1_000_000) < now_ns)
            {
                self.pop_oldest(total);
                n += 1;
            }
        }
        n
    }

    /// Hold `set` (of the datagram with header `hdr`) within the bounds, oldest evicted first.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn hold(
        &mut self,
        total: &mut usize,
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
        // make room: oldest first, this exporter's bound, then the global bound (this
        // exporter's oldest; other exporters' data is evicted by their own traffic or `expire`)
        while self.bytes + len > cfg.max_held_bytes_per_exporter
            || (*total + len > cfg.max_held_bytes_total && !self.sets.is_empty())
        {
            if !self.pop_oldest(total) {
                break;
            }
            stats.held_sets_dropped += 1;
        }
        if *total + len > cfg.max_held_bytes_total {
            stats.held_sets_dropped += 1;
            return;
        }
        self.bytes += len;
        *total += len;
        stats.held_sets += 1;
        self.sets.push_back(Held {
            tid: set.id,
            hdr,
            exporter,
            received_ns: now_ns,
            body: set.body.to_vec(),
        });
    }

    /// Take out the sets whose key `release` accepts, oldest first (one pass: releasing n
    /// held sets costs O(n)).
    pub(super) fn release(
        &mut self,
        total: &mut usize,
        mut release: impl FnMut(&Held) -> bool,
    ) -> Vec<Held> {
        let mut out = Vec::new();
        for h in std::mem::take(&mut self.sets) {
            if release(&h) {
                self.bytes -= h.cost();
                *total -= h.cost();
                out.push(h);
            } else {
                self.sets.push_back(h);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000_000_000;
    const SEC: u64 = 1_000_000_000;

    /// `n` fields of 4 bytes (ids from `first`): the field list and a wire form unique to it.
    fn fields(first: u16, n: u16) -> (Vec<WireField>, Vec<u8>) {
        let f: Vec<WireField> = (first..first + n)
            .map(|id| WireField {
                id,
                enterprise: 0,
                len: 4,
                scope: false,
            })
            .collect();
        let wire = f.iter().flat_map(|w| w.id.to_be_bytes()).collect();
        (f, wire)
    }

    /// Learn template `tid` of domain 0 (IPFIX) with `n` fields from `first`.
    fn learn(
        st: &mut ExporterState,
        cfg: &DecoderConfig,
        stats: &mut DecodeStats,
        total: &mut usize,
        (tid, options, first, n): (u16, bool, u16, u16),
        now_ns: u64,
    ) -> Learned {
        let (f, wire) = fields(first, n);
        let compile = || Template::compile(10, tid, options, &f, &wire);
        st.learn((10, 0, tid), &wire, now_ns, compile, cfg, stats, total)
    }

    /// The counts agree with the entries: the cache's bytes are the sum of its entries'
    /// costs, the exporter's are those plus its own, and the per-worker total (one exporter
    /// here, admitted at `EXPORTER_BASE_BYTES`) equals the exporter's.
    #[track_caller]
    fn assert_exact(st: &ExporterState, total: usize) {
        let sum: usize = st.templates.iter().map(|(_, e)| e.cost()).sum();
        assert_eq!(st.templates.bytes(), sum, "cache bytes");
        let domains: usize = st.domains.values().map(Domain::cost).sum();
        assert_eq!(st.own_bytes, EXPORTER_BASE_BYTES + domains, "own bytes");
        assert_eq!(st.state_bytes(), st.own_bytes + sum);
        assert_eq!(total, st.state_bytes(), "per-worker total");
    }

    fn fresh() -> (ExporterState, DecoderConfig, DecodeStats, usize) {
        let cfg = DecoderConfig::default();
        (
            ExporterState::default(),
            cfg,
            DecodeStats::default(),
            EXPORTER_BASE_BYTES,
        )
    }

    #[test]
    fn learn_refresh_and_replace_keep_the_accounting_exact() {
        let (mut st, cfg, mut stats, mut total) = fresh();
        assert_exact(&st, total);
        let r = learn(
            &mut st,
            &cfg,
            &mut stats,
            &mut total,
            (256, false, 1, 3),
            T0,
        );
        assert_eq!(r, Learned::Stored);
        let one = st.templates.bytes();
        assert!(one > 0);
        assert_exact(&st, total);
        // the same again: refreshed, same bytes, newer time
        let r = learn(
            &mut st,
            &cfg,
            &mut stats,
            &mut total,
            (256, false, 1, 3),
            T0 + 5,
        );
        assert_eq!(r, Learned::Refreshed);
        assert_eq!(st.templates.bytes(), one);
        assert_eq!(
            st.templates.entry(&(10, 0, 256)).unwrap().refreshed_ns,
            T0 + 5
        );
        assert_exact(&st, total);
        // a larger one under the same id replaces it
        let r = learn(
            &mut st,
            &cfg,
            &mut stats,
            &mut total,
            (256, false, 1, 30),
            T0 + 6,
        );
        assert_eq!(r, Learned::Stored);
        assert_eq!(st.templates.len(), 1);
        assert!(st.templates.bytes() > one, "{}", st.templates.bytes());
        assert_exact(&st, total);
        // another id, an options template
        let r = learn(
            &mut st,
            &cfg,
            &mut stats,
            &mut total,
            (257, true, 40, 2),
            T0 + 7,
        );
        assert_eq!(r, Learned::Stored);
        assert_eq!(st.templates.len(), 2);
        assert_exact(&st, total);
        // one that does not compile changes nothing
        let before = (st.templates.len(), total);
        let r = learn(
            &mut st,
            &cfg,
            &mut stats,
            &mut total,
            (258, false, 1, 1025),
            T0,
        );
        assert!(matches!(r, Learned::Failed(_)), "{r:?}");
        assert_eq!((st.templates.len(), total), before);
        assert_exact(&st, total);
        assert_eq!(stats.templates_evicted, 0);
    }

    #[test]
    fn withdrawals_keep_the_accounting_exact() {
        let (mut st, cfg, mut stats, mut total) = fresh();
        for (tid, options) in [(256, false), (257, false), (258, true), (259, true)] {
            learn(
                &mut st,
                &cfg,
                &mut stats,
                &mut total,
                (tid, options, 1, 8),
                T0,
            );
        }
        // the same ids in another domain and in v9 are not touched by domain 0's withdrawals
        for key in [(10, 1, 256), (9, 0, 257)] {
            let (f, wire) = fields(1, 8);
            let tpl = Template::compile(key.0, key.2, false, &f, &wire).unwrap();
            assert!(st.store(key, tpl, T0, &cfg, &mut stats, &mut total));
        }
        assert_eq!(st.templates.len(), 6);
        assert_exact(&st, total);
        let w = |st: &mut ExporterState, total: &mut usize, which| {
            st.templates.withdraw(10, 0, which, total)
        };
        assert_eq!(w(&mut st, &mut total, Withdraw::One(256)), 1);
        assert_eq!(st.templates.len(), 5);
        assert_exact(&st, total);
        assert_eq!(
            w(&mut st, &mut total, Withdraw::One(256)),
            0,
            "already gone"
        );
        assert_exact(&st, total);
        // all options templates of (10, 0): 258 and 259
        let all_options = Withdraw::All { options: true };
        assert_eq!(w(&mut st, &mut total, all_options), 2);
        assert_exact(&st, total);
        // all data templates of (10, 0): 257
        assert_eq!(w(&mut st, &mut total, Withdraw::All { options: false }), 1);
        assert_exact(&st, total);
        let left: Vec<TKey> = st.templates.iter().map(|(k, _)| *k).collect();
        assert_eq!(left, [(10, 1, 256), (9, 0, 257)]);
        // withdrawing everything leaves nothing counted
        st.templates
            .withdraw(10, 1, Withdraw::All { options: false }, &mut total);
        st.templates.withdraw(9, 0, Withdraw::One(257), &mut total);
        assert_eq!(st.templates.len(), 0);
        assert_eq!(st.templates.bytes(), 0);
        assert_exact(&st, total);
    }

    #[test]
    fn expiry_keeps_the_accounting_exact() {
        let (mut st, cfg, mut stats, mut total) = fresh();
        let timeout_ms = 60_000;
        for i in 0..4u16 {
            let t = T0 + u64::from(i) * 10 * SEC;
            learn(
                &mut st,
                &cfg,
                &mut stats,
                &mut total,
                (256 + i, false, 1, 4),
                t,
            );
        }
        assert_exact(&st, total);
        // at T0 + 75 s the first two (T0, T0 + 10 s) are older than 60 s
        let now = T0 + 75 * SEC;
        assert!(st
            .templates
            .get_live(&(10, 0, 256), now, timeout_ms)
            .is_none());
        assert!(
            st.templates.get(&(10, 0, 256)).is_some(),
            "get_live removes nothing"
        );
        assert!(matches!(
            st.templates
                .live(&(10, 0, 256), now, timeout_ms, &mut total),
            Lookup::Expired
        ));
        assert_eq!(st.templates.len(), 3);
        assert_exact(&st, total);
        assert!(matches!(
            st.templates
                .live(&(10, 0, 256), now, timeout_ms, &mut total),
            Lookup::Unknown
        ));
        assert!(matches!(
            st.templates.live(&(10, 0, 259), now, timeout_ms, &mut total),
            Lookup::Live(t) if t.id == 259
        ));
        // the oldest first, stopping at the first live one
        assert_eq!(st.templates.expire_older(now, timeout_ms, &mut total), 1);
        assert_eq!(st.templates.len(), 2);
        assert_exact(&st, total);
        // timeout 0: nothing expires
        assert_eq!(st.templates.expire_older(u64::MAX, 0, &mut total), 0);
        assert_eq!(
            st.templates.expire_older(u64::MAX, timeout_ms, &mut total),
            2
        );
        assert_eq!(st.templates.bytes(), 0);
        assert_exact(&st, total);
    }

    #[test]
    fn bounds_refuse_or_evict_and_keep_the_accounting_exact() {
        let (mut st, mut cfg, mut stats, mut total) = fresh();
        cfg.max_state_bytes_per_exporter = 8 << 10;
        cfg.max_templates_per_exporter = 3;
        // alone over the exporter's byte bound: refused, counted as evicted, nothing kept
        let r = learn(
            &mut st,
            &cfg,
            &mut stats,
            &mut total,
            (256, false, 1, 200),
            T0,
        );
        assert_eq!(r, Learned::Refused);
        assert_eq!(stats.templates_evicted, 1);
        assert_eq!(st.templates.len(), 0);
        assert_exact(&st, total);
        // the same id already kept: the refused one does not leave the old one in place
        learn(
            &mut st,
            &cfg,
            &mut stats,
            &mut total,
            (256, false, 1, 2),
            T0,
        );
        assert_eq!(st.templates.len(), 1);
        let r = learn(
            &mut st,
            &cfg,
            &mut stats,
            &mut total,
            (256, false, 1, 200),
            T0,
        );
        assert_eq!(r, Learned::Refused);
        assert_eq!(st.templates.len(), 0);
        assert_exact(&st, total);
        // the count bound: the oldest refreshed goes
        for tid in 256..260 {
            learn(
                &mut st,
                &cfg,
                &mut stats,
                &mut total,
                (tid, false, 1, 2),
                T0,
            );
        }
        let kept: Vec<u16> = st.templates.iter().map(|(k, _)| k.2).collect();
        assert_eq!(kept, [257, 258, 259]);
        assert_exact(&st, total);
        // the byte bound: room for two and a half templates of 50 fields
        let (f, wire) = fields(1, 50);
        let one = TemplateEntry {
            tpl: Template::compile(10, 300, false, &f, &wire).unwrap(),
            refreshed_ns: T0,
        }
        .cost();
        cfg.max_state_bytes_per_exporter = st.own_bytes + 2 * one + one / 2;
        for tid in 300..340 {
            learn(
                &mut st,
                &cfg,
                &mut stats,
                &mut total,
                (tid, false, 1, 50),
                T0,
            );
            assert!(st.state_bytes() <= cfg.max_state_bytes_per_exporter);
            assert_exact(&st, total);
        }
        assert_eq!(st.templates.len(), 2, "{one} bytes each");
        assert_eq!(
            st.templates.iter().last().unwrap().0 .2,
            339,
            "the newest kept"
        );
        // shrinking to nothing leaves only the state itself
        st.shrink(0, &mut total, &mut stats);
        assert_eq!(st.templates.bytes(), 0);
        assert_exact(&st, total);
    }

    fn set(id: u16, body: &[u8]) -> Set<'_> {
        Set {
            id,
            offset: 0,
            body,
        }
    }

    #[test]
    fn held_sets_keep_the_accounting_exact() {
        let cfg = DecoderConfig {
            max_held_bytes_per_exporter: 3 * held_cost(&[0; 100]),
            max_hold_ms: 1000,
            ..Default::default()
        };
        let mut stats = DecodeStats::default();
        let (mut held, mut total) = (HeldSets::default(), 0);
        let exact = |h: &HeldSets, total: usize| {
            let sum: usize = h.sets.iter().map(Held::cost).sum();
            assert_eq!(h.bytes(), sum);
            assert_eq!(total, sum);
        };
        let hdr = Header {
            version: 10,
            export_ns: T0,
            uptime_ms: None,
            sequence: 0,
            domain: 0,
        };
        let at = "192.0.2.1:4739".parse().unwrap();
        for (i, tid) in [256, 257, 256, 258].into_iter().enumerate() {
            let t = T0 + i as u64 * SEC;
            held.hold(
                &mut total,
                &cfg,
                &mut stats,
                set(tid, &[1; 100]),
                hdr,
                at,
                t,
            );
            exact(&held, total);
        }
        // three fit: the oldest was dropped
        assert_eq!(
            (held.len(), stats.held_sets, stats.held_sets_dropped),
            (3, 4, 1)
        );
        // an empty set is not held
        held.hold(&mut total, &cfg, &mut stats, set(259, &[]), hdr, at, T0);
        assert_eq!(held.len(), 3);
        let out = held.release(&mut total, |h| h.tid == 256);
        assert_eq!(out.len(), 1);
        assert_eq!(held.len(), 2);
        exact(&held, total);
        // held at T0 + 1 s and + 3 s; at T0 + 3.5 s the first is older than 1 s
        assert_eq!(held.expire(T0 + 3500 * 1_000_000, 1000, &mut total), 1);
        exact(&held, total);
        assert_eq!(held.expire(u64::MAX, 0, &mut total), 0, "0: no time bound");
        assert_eq!(held.expire(u64::MAX, 1000, &mut total), 1);
        assert!(held.is_empty());
        exact(&held, total);
    }
}
