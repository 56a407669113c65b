//! Encoders: owned representations (`*Repr`) of NetFlow v5/v9, IPFIX and sFlow v5 messages
//! written to bytes in a caller's `Vec<u8>`. Used by round-trip tests and by the traffic
//! generator; once the buffer has grown, writing records does not allocate.
//!
//! - [`netflow5::emit`]: header + up to 30 records.
//! - [`netflow9::Writer`] / [`ipfix::Writer`]: `begin`, `template_set`,
//!   `options_template_set`, `template_withdrawal` (IPFIX), `begin_data_set`, `record` /
//!   `record_bytes` / `record_flow`, `end_data_set`, `finish` (patches the v9 count or the
//!   IPFIX length). Ready-made templates in `netflow9::templates` and `ipfix::templates`.
//!
//! Hot path for the generator: `record_flow` fills a record from a [`FlowRepr`] through any
//! template of known IEs without allocating; `record_bytes` copies a pre-encoded record
//! (fixed-length templates). Every failed call leaves the buffer as it was.
//!
//! # Checked against an independent decoder (tshark)
//!
//! ```text
//! cargo run -p ferroflow-codecs --example emit_pcap -- /tmp/ff
//! tshark -r /tmp/ff/ipfix.pcap -d udp.port==2055,cflow -V      # or -T fields / -T json
//! tshark -r /tmp/ff/ipfix.pcap -d udp.port==2055,cflow -Y _ws.malformed   # prints nothing
//! ```
//!
//! The example writes `v5.pcap`, `v9.pcap` and `ipfix.pcap` (templates and options templates,
//! data of the ready-made templates through `record_flow`, `record_bytes`, options data,
//! variable-length values of 3..300 bytes, reduced-size counters, enterprise fields of PEN
//! 29305 and 32473, padded sets, template withdrawals). Debian's tshark 4.0.17 decodes every
//! field to the encoded value with no malformed packets and no expert info, and the IP/UDP
//! checksums verify. `ipfix-options-withdrawal.pcap` holds options template withdrawals
//! (RFC 7011 8.1: template id and field count 0, 4 bytes, as CESNET's libfds writes them);
//! tshark 4.0 reads a scope field count after them and reports "Malformed": its limitation,
//! not ours. The exact-byte unit tests of each module pin these encodings; proptest round
//! trips cover v5 (through [`crate::netflow5::Packet`]) and v9 / IPFIX (through a test-only
//! parser) with arbitrary templates, values and padding.

mod common;
pub mod ipfix;
pub mod netflow5;
pub mod netflow9;
pub mod sflow;

pub use common::{
    flow_field_value, EncodeError, FieldSpecRepr, FieldValue, FlowRepr, FlowValue,
    OptionsTemplateRepr, TemplateRepr, VARIABLE_LENGTH,
};
