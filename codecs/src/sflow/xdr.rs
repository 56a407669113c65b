//! XDR over the bounded reader ([`crate::bytes::Reader`]): length-prefixed opaques padded to
//! 4 bytes, sub-readers that skip their padding, counts checked against what remains, sFlow
//! addresses.
//!
//! `take(len)` returns a sub-reader bounded to a declared length: the only way to descend into
//! a sample or record.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub(crate) use crate::bytes::Reader;
use crate::error::DecodeError;

/// XDR pads opaque data to a multiple of four bytes.
#[inline]
pub(crate) fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

impl<'a> Reader<'a> {
    /// Skip XDR padding after `n` bytes of opaque data; padding missing at the very end of the
    /// enclosing structure is tolerated.
    #[inline]
    fn skip_pad(&mut self, n: usize) {
        self.skip_at_most(pad4(n));
    }

    /// A sub-reader over the next `n` bytes (then the padding is skipped here).
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, DecodeError> {
        let r = self.sub(n, what)?;
        self.skip_pad(n);
        Ok(r)
    }

    /// XDR `opaque<>`: a u32 length, the bytes, padding.
    pub(crate) fn opaque(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let n = self.u32(what)? as usize;
        let s = self.bytes(n, what)?;
        self.skip_pad(n);
        Ok(s)
    }

    /// An array count whose `elem_len`-byte elements must fit in what remains: a count from the
    /// wire is checked before anything is read through it.
    pub(crate) fn count(
        &mut self,
        elem_len: usize,
        what: &'static str,
    ) -> Result<u32, DecodeError> {
        let at = self.offset();
        let n = self.u32(what)?;
        let need = (n as usize).saturating_mul(elem_len);
        if need > self.remaining() {
            return Err(DecodeError::truncated(
                what,
                at,
                need.saturating_add(4),
                self.remaining() + 4,
            ));
        }
        Ok(n)
    }

    /// An sFlow `address`: type 0 (unknown, no bytes), 1 (IPv4), 2 (IPv6).
    pub(crate) fn address(&mut self, what: &'static str) -> Result<Option<IpAddr>, DecodeError> {
        let at = self.offset();
        match self.u32(what)? {
            0 => Ok(None),
            1 => {
                let a = self.array::<4>(what)?;
                Ok(Some(IpAddr::V4(Ipv4Addr::from(a))))
            }
            2 => {
                let a = self.array::<16>(what)?;
                Ok(Some(IpAddr::V6(Ipv6Addr::from(a))))
            }
            t => Err(DecodeError::invalid(what, at, u64::from(t))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_opaque_and_padding() {
        let b = [
            0, 0, 0, 7, 0, 0, 0, 3, 1, 2, 3, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 1,
        ];
        let mut r = Reader::new(&b, 100);
        assert_eq!(r.u32("a"), Ok(7));
        assert_eq!(r.opaque("o"), Ok(&[1, 2, 3][..]));
        assert_eq!(r.offset(), 112);
        assert_eq!(r.u32("h"), Ok(0xff00_0000));
        assert_eq!(r.u32("h"), Ok(0));
        assert_eq!(r.u32("x"), Err(DecodeError::truncated("x", 120, 4, 1)));
    }

    #[test]
    fn take_is_bounded_and_tolerates_missing_final_padding() {
        let b = [1, 2, 3, 4, 5, 6];
        let mut r = Reader::new(&b, 0);
        let mut s = r.take(5, "t").unwrap();
        assert_eq!(s.remaining(), 5);
        assert!(s.bytes(6, "w").is_err());
        assert_eq!(r.remaining(), 0);
        let mut r = Reader::new(&b, 0);
        assert!(r.take(7, "t").is_err());
    }

    #[test]
    fn count_is_checked_against_what_remains() {
        let b = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1];
        assert!(Reader::new(&b, 0).count(4, "c").is_err());
        let b = [0, 0, 0, 1, 0, 0, 0, 1];
        assert_eq!(Reader::new(&b, 0).count(4, "c"), Ok(1));
    }

    #[test]
    fn addresses() {
        let b = [0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3];
        let mut r = Reader::new(&b, 0);
        assert_eq!(r.address("a"), Ok(Some("10.0.0.1".parse().unwrap())));
        assert_eq!(r.address("a"), Ok(None));
        assert_eq!(r.address("a"), Err(DecodeError::invalid("a", 12, 3)));
    }
}
