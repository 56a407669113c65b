//! IPFIX (RFC 7011): a 16-byte message header followed by sets (2 templates, 3 options
//! templates, >= 256 data).

use crate::bytes::{be16, be32};
use crate::error::DecodeError;
use crate::set::Sets;

pub const HEADER_LEN: usize = 16;
pub const TEMPLATE_SET: u16 = 2;
pub const OPTIONS_TEMPLATE_SET: u16 = 3;

/// A checked view of an IPFIX message. Bytes after the declared message length are ignored.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    buf: &'a [u8],
}

impl<'a> Message<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::truncated(
                "ipfix header",
                0,
                HEADER_LEN,
                buf.len(),
            ));
        }
        let v = be16(buf, 0).unwrap_or(0);
        if v != 10 {
            return Err(DecodeError::UnsupportedVersion {
                version: u32::from(v),
            });
        }
        let len = usize::from(be16(buf, 2).unwrap_or(0));
        if len < HEADER_LEN {
            return Err(DecodeError::invalid("ipfix message length", 2, len as u64));
        }
        if len > buf.len() {
            return Err(DecodeError::truncated("ipfix message", 0, len, buf.len()));
        }
        Ok(Message { buf: &buf[..len] })
    }
    pub fn length(&self) -> u16 {
        self.buf.len() as u16
    }
    pub fn export_time(&self) -> u32 {
        be32(self.buf, 4).unwrap_or(0)
    }
    pub fn sequence(&self) -> u32 {
        be32(self.buf, 8).unwrap_or(0)
    }
    pub fn observation_domain(&self) -> u32 {
        be32(self.buf, 12).unwrap_or(0)
    }
    pub fn sets(&self) -> Sets<'a> {
        Sets::new(&self.buf[HEADER_LEN..], HEADER_LEN)
    }
}
