//! Reading the wire: big-endian integers at an offset of a slice, and [`Reader`], the bounded
//! cursor built on them. The one way the decoding code reads bytes.
//!
//! Every read is bounds-checked and returns `None` (or an error, for the cursor) when the bytes
//! are not there: no read can panic, whatever the lengths on the wire say. The reads are small
//! and inlined: at a constant offset of a fixed-size array (a NetFlow v5 record, a fill plan's
//! window) the optimizer sees the bytes are there and the test goes away.

use crate::error::DecodeError;

/// The `N` bytes at `off` of `b`, or `None` when fewer remain.
#[inline(always)]
pub(crate) fn array<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    // (of the forms tried, the fewest instructions where it counts, by callgrind on the decode
    // bench: the template parser, NetFlow v5 records, sFlow; a range `off..off + N` then
    // `try_into` costs the template parser some 10% more)
    b.get(off..)?.first_chunk::<N>().copied()
}

/// The big-endian `u16` at `off`.
#[inline(always)]
pub(crate) fn be16(b: &[u8], off: usize) -> Option<u16> {
    array(b, off).map(u16::from_be_bytes)
}

/// The big-endian `u32` at `off`.
#[inline(always)]
pub(crate) fn be32(b: &[u8], off: usize) -> Option<u32> {
    array(b, off).map(u32::from_be_bytes)
}

/// The big-endian `u64` at `off`.
#[inline(always)]
pub(crate) fn be64(b: &[u8], off: usize) -> Option<u64> {
    array(b, off).map(u64::from_be_bytes)
}

/// Read a big-endian unsigned integer of 1..=8 bytes (reduced-size encoding, RFC 7011 6.2).
/// Longer input: its first 8 bytes.
#[inline]
pub(crate) fn be_uint(b: &[u8]) -> u64 {
    // the usual lengths in one load each
    match b {
        [x] => u64::from(*x),
        [a, c] => u64::from(u16::from_be_bytes([*a, *c])),
        [a, c, d, e] => u64::from(u32::from_be_bytes([*a, *c, *d, *e])),
        _ => match b.first_chunk::<8>() {
            Some(w) => u64::from_be_bytes(*w),
            None => b.iter().fold(0, |v, &x| (v << 8) | u64::from(x)),
        },
    }
}

/// A bounded cursor over a slice: big-endian reads that advance, and sub-readers of a declared
/// length (the only way to descend into a structure).
///
/// `Copy`, with the absolute offset of its first byte in the datagram, so errors say where they
/// happened. `pos <= buf.len()` always.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the datagram.
    base: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Absolute offset of the next byte.
    #[inline]
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// The bytes not read yet.
    #[inline]
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// The next `n` bytes; `what` names them in the error when fewer remain.
    #[inline]
    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        match self.rest().get(..n) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.short(n, what)),
        }
    }

    /// The next `N` bytes as an array.
    #[inline]
    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        match array::<N>(self.rest(), 0) {
            Some(a) => {
                self.pos += N;
                Ok(a)
            }
            None => Err(self.short(N, what)),
        }
    }

    /// The next big-endian `u32`.
    #[inline]
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.array(what).map(u32::from_be_bytes)
    }

    /// Skip up to `n` bytes (fewer when fewer remain).
    #[inline]
    pub(crate) fn skip_at_most(&mut self, n: usize) {
        self.pos += n.min(self.remaining());
    }

    /// A sub-reader over the next `n` bytes, which this reader skips.
    #[inline]
    pub(crate) fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, DecodeError> {
        let base = self.offset();
        let s = self.bytes(n, what)?;
        Ok(Reader::new(s, base))
    }

    /// The error of a read of `n` bytes past the end.
    #[cold]
    fn short(&self, n: usize, what: &'static str) -> DecodeError {
        DecodeError::truncated(what, self.offset(), n, self.remaining())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_at_offsets() {
        let b = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(array::<3>(&b, 6), Some([7, 8, 9]));
        assert_eq!(array::<3>(&b, 7), None);
        assert_eq!(array::<0>(&b, 9), Some([]));
        assert_eq!(array::<1>(&b, usize::MAX), None);
        assert_eq!(be16(&b, 0), Some(0x0102));
        assert_eq!(be16(&b, 8), None);
        assert_eq!(be32(&b, 5), Some(0x0607_0809));
        assert_eq!(be32(&b, 6), None);
        assert_eq!(be64(&b, 1), Some(0x0203_0405_0607_0809));
        assert_eq!(be64(&b, 2), None);
        assert_eq!(be64(&b, usize::MAX), None);
    }

    #[test]
    fn reader_is_bounded() {
        let b = [0, 0, 0, 7, 1, 2, 3];
        let mut r = Reader::new(&b, 100);
        assert_eq!(r.u32("a"), Ok(7));
        assert_eq!(r.offset(), 104);
        assert_eq!(r.u32("b"), Err(DecodeError::truncated("b", 104, 4, 3)));
        // a failed read leaves the reader where it was
        assert_eq!(r.remaining(), 3);
        let mut s = r.sub(2, "s").unwrap();
        assert_eq!((s.offset(), s.remaining()), (104, 2));
        assert_eq!(s.bytes(3, "t"), Err(DecodeError::truncated("t", 104, 3, 2)));
        assert_eq!(s.array::<2>("u"), Ok([1, 2]));
        assert_eq!(r.rest(), &[3]);
        assert!(r.sub(2, "s").is_err());
        r.skip_at_most(5);
        assert_eq!((r.remaining(), r.rest()), (0, &[][..]));
    }

    proptest::proptest! {
        /// The fast lengths read what a byte-by-byte big-endian read gives (first 8 bytes).
        #[test]
        fn be_uint_matches_bytewise(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12)) {
            let want = b.iter().take(8).fold(0u64, |v, &x| (v << 8) | u64::from(x));
            proptest::prop_assert_eq!(be_uint(&b), want);
        }

        /// The reads at an offset are the bytes there, big-endian, or `None` past the end.
        #[test]
        fn reads_match_bytewise(
            b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20),
            off in 0usize..24,
        ) {
            let want = |n: usize| {
                b.get(off..off + n)
                    .map(|s| s.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
            };
            proptest::prop_assert_eq!(be16(&b, off).map(u64::from), want(2));
            proptest::prop_assert_eq!(be32(&b, off).map(u64::from), want(4));
            proptest::prop_assert_eq!(be64(&b, off), want(8));
        }
    }
}
