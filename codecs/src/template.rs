//! Templates (placeholder: being written).

use crate::json::JsonWriter;
use crate::record::FlowProtocol;

#[derive(Debug)]
pub struct Template {
    pub id: u16,
}

impl Template {
    pub(crate) fn write_raw_json(&self, data: &[u8], proto: FlowProtocol, w: &mut JsonWriter<'_>) {
        let _ = (data, proto, w);
    }
}
