//! ferroflow-io: packet sources at the socket level. Knows nothing of flows.
//! `unsafe` only in `sys/`, each block with a `// SAFETY:` comment.
#![deny(unsafe_code)]

pub mod pcap;
