//! Packet buffer slabs: one contiguous allocation of fixed-size slots, made once at start and
//! reused for every batch.

/// `slots` buffers of `slot_bytes` each, in one allocation. Receivers write datagram `i` of a
/// batch into slot `i`.
///
/// ```
/// let slab = ferroflow_io::Slab::new(64, 9216);
/// assert_eq!(slab.slot(63).len(), 9216);
/// ```
#[derive(Debug)]
pub struct Slab {
    buf: Box<[u8]>,
    slot_bytes: usize,
}

impl Slab {
    /// Slots per slab used by the collector: one `recvmmsg` batch.
    pub const DEFAULT_SLOTS: usize = 64;
    /// Bytes per slot used by the collector: a jumbo frame's payload (9000) plus headroom.
    pub const DEFAULT_SLOT_BYTES: usize = 9216;

    /// Allocates (zeroed) `slots * slot_bytes` bytes.
    ///
    /// # Panics
    /// If `slots` or `slot_bytes` is zero, or their product overflows `usize`: a configuration
    /// bug, caught at start.
    pub fn new(slots: usize, slot_bytes: usize) -> Slab {
        assert!(
            slots > 0 && slot_bytes > 0,
            "a slab needs at least one byte and one slot"
        );
        let total = slots
            .checked_mul(slot_bytes)
            .expect("slab size overflows usize");
        Slab {
            buf: vec![0u8; total].into_boxed_slice(),
            slot_bytes,
        }
    }

    /// Number of slots.
    #[inline]
    pub fn slots(&self) -> usize {
        self.buf.len() / self.slot_bytes
    }

    /// Size of each slot in bytes.
    #[inline]
    pub fn slot_bytes(&self) -> usize {
        self.slot_bytes
    }

    /// Slot `i`, whole.
    ///
    /// # Panics
    /// If `i >= self.slots()`.
    #[inline]
    pub fn slot(&self, i: usize) -> &[u8] {
        &self.buf[i * self.slot_bytes..(i + 1) * self.slot_bytes]
    }

    /// Slot `i`, whole, writable.
    ///
    /// # Panics
    /// If `i >= self.slots()`.
    #[inline]
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.buf[i * self.slot_bytes..(i + 1) * self.slot_bytes]
    }

    /// The whole buffer, slot after slot.
    #[inline]
    pub fn as_mut_bytes(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}
