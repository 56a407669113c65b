//! Socket receive-buffer arithmetic, as the Linux kernel does it.
//!
//! `setsockopt(SO_RCVBUF, n)` grants `min(n, net.core.rmem_max)` (SO_RCVBUFFORCE, with
//! CAP_NET_ADMIN, skips the cap), clamps it to `INT_MAX / 2`, then doubles it to leave room for
//! bookkeeping; `getsockopt(SO_RCVBUF)` reports the doubled value. All sockets' buffers together
//! are also bounded by `net.ipv4.udp_mem`, counted in pages.

/// Page size assumed for `udp_mem` arithmetic (x86-64 and most arm64 kernels).
pub const PAGE_SIZE: u64 = 4096;

/// The kernel's clamp before doubling: `INT_MAX / 2`.
pub const MAX_RCVBUF: u64 = (i32::MAX / 2) as u64;

/// What `setsockopt(SO_RCVBUF, requested)` grants (the usable size, before doubling) when
/// `rmem_max` is the sysctl (unknown: assume no cap).
pub fn granted_rcvbuf(requested: u64, rmem_max: Option<u64>) -> u64 {
    requested.min(rmem_max.unwrap_or(u64::MAX)).min(MAX_RCVBUF)
}

/// Compares what was asked with what `getsockopt(SO_RCVBUF)` reported afterwards (the doubled
/// value). Returns the usable size granted when it is less than asked, so the caller can warn
/// once ("asked 32 MiB, got 208 KiB: raise net.core.rmem_max").
pub fn rcvbuf_shortfall(requested: u64, reported: u64) -> Option<u64> {
    let granted = reported / 2;
    (granted < requested.min(MAX_RCVBUF)).then_some(granted)
}

/// Pages of `udp_mem` that `sockets` full receive buffers of `rcvbuf_bytes` each can take (the
/// doubled size: the kernel charges packets by their true size).
pub fn udp_mem_pages_needed(sockets: u64, rcvbuf_bytes: u64) -> u64 {
    let bytes = sockets
        .saturating_mul(rcvbuf_bytes.min(MAX_RCVBUF))
        .saturating_mul(2);
    bytes.div_ceil(PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic() {
        assert_eq!(granted_rcvbuf(32 << 20, Some(212_992)), 212_992);
        assert_eq!(granted_rcvbuf(32 << 20, Some(64 << 20)), 32 << 20);
        assert_eq!(granted_rcvbuf(32 << 20, None), 32 << 20);
        assert_eq!(granted_rcvbuf(u64::MAX, None), MAX_RCVBUF);
        assert_eq!(rcvbuf_shortfall(32 << 20, 2 * 212_992), Some(212_992));
        assert_eq!(rcvbuf_shortfall(32 << 20, 64 << 20), None);
        assert_eq!(udp_mem_pages_needed(3, 32 << 20), 3 * 2 * (32 << 20) / 4096);
        assert_eq!(udp_mem_pages_needed(1, 1), 1);
    }
}
