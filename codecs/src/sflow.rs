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
