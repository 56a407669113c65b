//! ferroflow-io: packet sources at the socket level. Knows nothing of flows.
//!
//! - [`pcap`]: UDP datagrams out of pcap / pcapng files, and a small pcap writer.
//! - [`udp`] (Linux): `SO_REUSEPORT` sockets, batched `recvmmsg` into a [`Slab`], `sendmmsg`.
//! - [`afpacket`] (Linux): AF_PACKET `TPACKET_V3` ring receiver with a classic BPF filter.
//! - [`afxdp`] (Linux): AF_XDP receiver fed by a generated XDP program (no libbpf, no clang).
//! - [`frame`]: Ethernet / VLAN / IP / UDP parsing for the two receivers above.
//!
//! `unsafe` only in `sys/`, each block with a `// SAFETY:` comment.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(target_os = "linux")]
pub mod afpacket;
#[cfg(target_os = "linux")]
pub mod afxdp;
pub mod frame;
pub mod pcap;
pub mod slab;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod sys;
#[cfg(target_os = "linux")]
pub mod udp;

pub use slab::Slab;
