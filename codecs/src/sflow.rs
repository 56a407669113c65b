//! sFlow v5 (placeholder: being written).

use crate::json::JsonWriter;

/// The raw part of an sFlow sample, emitted under `sflow.*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SflowRaw<'a> {
    pub sample: &'a [u8],
}

pub(crate) fn write_raw_json(raw: &SflowRaw<'_>, w: &mut JsonWriter<'_>) {
    let _ = (raw, w);
}

/// Placeholder view (the sFlow decoder is being written).
pub struct Datagram<'a> {
    buf: &'a [u8],
}

impl<'a> Datagram<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, crate::DecodeError> {
        Err(crate::DecodeError::UnsupportedVersion {
            version: crate::error::be32(buf, 0).unwrap_or(0),
        })
    }
    pub fn sequence_number(&self) -> u32 {
        self.buf.len() as u32
    }
    pub fn sub_agent_id(&self) -> u32 {
        0
    }
}

/// Placeholder.
pub fn decode<'a>(
    exporter: std::net::SocketAddr,
    buf: &'a [u8],
    stats: &mut crate::DecodeStats,
    f: &mut dyn FnMut(&crate::FlowRecord<'a>),
) -> Result<(), crate::DecodeError> {
    let _ = (exporter, buf, stats, f);
    Ok(())
}
