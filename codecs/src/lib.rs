//! ferroflow-codecs: zero-copy views of NetFlow v5/v9, IPFIX and sFlow v5 datagrams, the
//! template cache, the information-element registry, the flow record and the JSON encoder.
//!
//! Pure: no I/O, threads or logging. Decoders take `&[u8]` and call the caller's closure with
//! borrowed [`FlowRecord`]s; errors are small `Copy` values that the caller counts.
#![forbid(unsafe_code)]

pub(crate) mod bytes;
pub mod community_id;
pub mod decoder;
pub mod encode;
pub mod error;
pub mod ie;
pub mod ipfix;
pub mod json;
pub mod netflow5;
pub mod netflow9;
pub mod packet;
pub mod record;
pub mod set;
pub mod sflow;
pub mod stats;
pub mod template;

pub use decoder::{Decoder, DecoderConfig};
pub use error::{DecodeError, ErrorKind};
pub use record::{FlowProtocol, FlowRecord, Raw, RecordKind, SamplingSource, TimeBasis};
pub use stats::DecodeStats;
