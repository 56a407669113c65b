//! NetFlow v9 (RFC 3954): a 20-byte header followed by flowsets (0 templates, 1 options
//! templates, >= 256 data). The `count` field is not trusted: sets are walked by length.

use crate::bytes::{be16, be32};
use crate::error::DecodeError;
use crate::set::Sets;

pub const HEADER_LEN: usize = 20;
pub const TEMPLATE_SET: u16 = 0;
pub const OPTIONS_TEMPLATE_SET: u16 = 1;

/// A checked view of a NetFlow v9 datagram.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
}

impl<'a> Packet<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::truncated(
                "netflow v9 header",
                0,
                HEADER_LEN,
                buf.len(),
            ));
        }
        let v = be16(buf, 0).unwrap_or(0);
        if v != 9 {
            return Err(DecodeError::UnsupportedVersion {
                version: u32::from(v),
            });
        }
        Ok(Packet { buf })
    }
    pub fn count(&self) -> u16 {
        be16(self.buf, 2).unwrap_or(0)
    }
    pub fn sys_uptime_ms(&self) -> u32 {
        be32(self.buf, 4).unwrap_or(0)
    }
    pub fn unix_secs(&self) -> u32 {
        be32(self.buf, 8).unwrap_or(0)
    }
    pub fn sequence(&self) -> u32 {
        be32(self.buf, 12).unwrap_or(0)
    }
    pub fn source_id(&self) -> u32 {
        be32(self.buf, 16).unwrap_or(0)
    }
    pub fn sets(&self) -> Sets<'a> {
        Sets::new(&self.buf[HEADER_LEN..], HEADER_LEN)
    }
}
