//! Encoders: owned representations of NetFlow v5/v9, IPFIX and sFlow v5 messages written to
//! bytes. Used by tests (round trips) and by the traffic generator.
//! (placeholder: being written)

pub mod sflow;
