//! The set (flowset) framing shared by NetFlow v9 and IPFIX: `id: u16, length: u16, body`.

use crate::bytes::be16;
use crate::error::DecodeError;

/// One set: its id and its body (without the 4-byte set header).
#[derive(Debug, Clone, Copy)]
pub struct Set<'a> {
    pub id: u16,
    pub body: &'a [u8],
    /// Offset of the set header in the message.
    pub offset: usize,
}

/// Iterates the sets of a message body; yields one error and stops on a bad set length.
#[derive(Debug, Clone)]
pub struct Sets<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    done: bool,
}

impl<'a> Sets<'a> {
    /// `buf` is the message after its header; `base` the header length (for error offsets).
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Sets {
            buf,
            pos: 0,
            base,
            done: false,
        }
    }
}

impl<'a> Iterator for Sets<'a> {
    type Item = Result<Set<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        let rest = self.buf.len() - self.pos;
        let off = self.base + self.pos;
        if rest < 4 {
            self.done = true;
            // a few zero bytes after the last set: padding some exporters add
            if self.buf[self.pos..].iter().all(|&b| b == 0) {
                return None;
            }
            return Some(Err(DecodeError::truncated("set header", off, 4, rest)));
        }
        let id = be16(self.buf, self.pos).unwrap_or(0);
        let len = usize::from(be16(self.buf, self.pos + 2).unwrap_or(0));
        if len < 4 {
            self.done = true;
            if id == 0 && len == 0 && self.buf[self.pos..].iter().all(|&b| b == 0) {
                return None;
            }
            return Some(Err(DecodeError::invalid("set length", off + 2, len as u64)));
        }
        if len > rest {
            self.done = true;
            return Some(Err(DecodeError::truncated("set", off, len, rest)));
        }
        let body = &self.buf[self.pos + 4..self.pos + len];
        self.pos += len;
        Some(Ok(Set {
            id,
            body,
            offset: off,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_and_stops_on_errors() {
        let b = [1, 0, 0, 6, 9, 9, 1, 1, 0, 4];
        let v: Vec<_> = Sets::new(&b, 16).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].unwrap().body, &[9, 9]);
        assert_eq!(v[1].unwrap().body.len(), 0);
        let bad = [1, 0, 0, 9, 1, 2];
        let v: Vec<_> = Sets::new(&bad, 0).collect();
        assert!(matches!(v[..], [Err(DecodeError::Truncated { .. })]));
        let zero_len = [1, 0, 0, 0, 1, 0, 0, 4];
        let v: Vec<_> = Sets::new(&zero_len, 0).collect();
        assert!(matches!(v[..], [Err(DecodeError::Invalid { .. })]));
        let pad = [1, 0, 0, 4, 0, 0];
        assert_eq!(Sets::new(&pad, 0).filter(|s| s.is_err()).count(), 0);
    }
}
