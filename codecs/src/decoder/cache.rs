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
