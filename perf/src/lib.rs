//! ferroflow-perf (see ARCHITECTURE.md): traffic generators (synthetic NetFlow v5/v9, IPFIX,
//! sFlow at a target rate; pcap replay), the benchmark harness with its report, and
//! side-by-side runs against peer collectors.

pub mod bench;
pub mod bucket;
pub mod flows;
pub mod generate;
pub mod peers;
pub mod proc;
pub mod prom;
pub mod replay;
pub mod report;
pub mod search;
