use super::*;

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
}

#[derive(Debug)]
pub(super) struct Held {
    pub(super) tid: u16,
    pub(super) hdr: Header,
    pub(super) exporter: SocketAddr,
    pub(super) received_ns: u64,
    pub(super) body: Vec<u8>,
}

#[inline]
pub(super) fn expired(e: &TemplateEntry, now_ns: u64, timeout_ms: u64) -> bool {
    timeout_ms > 0
        && now_ns
            > e.refreshed_ns
                .saturating_add(timeout_ms.saturating_mul(1_000_000))
}

/// Bytes a held set counts for in the bounds: its body plus the bookkeeping around it, so many
/// tiny sets cannot escape the bound.
#[inline]
pub(super) fn held_cost(body: &[u8]) -> usize {
    body.len() + std::mem::size_of::<Held>()
}

#[allow(clippy::too_many_arguments)]
pub(super) fn hold(
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
