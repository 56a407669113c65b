//! ferroflow-tuning: the configuration model, CPU topology, core plans, socket-buffer and sysctl
//! checks, and the report behind `ferroflow tune`.
//!
//! Pure Rust: no `unsafe`, no threads, no process-wide state. Everything that reads the machine
//! takes the root directory (`/` in production, a fixture tree in tests) as a parameter.
//!
//! * [`Config`] — `ferroflow.toml` + `FERROFLOW_*` overrides + validation.
//! * [`Topology::read`] — CPUs, SMT siblings, NUMA nodes, allowed CPUs, NICs with their queues,
//!   IRQs and RPS masks, and the network sysctls, from `/sys` and `/proc`.
//! * [`CorePlan::recommend`] — which core runs which worker, which cores are left to the
//!   kernel's NIC/softirq work and which to librdkafka's threads.
//! * [`TuneReport::build`] — all of the above checked against the configuration, as text and as
//!   a TOML snippet; [`apply_sysctls`] writes the recommended sysctls.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cidr;
pub mod config;
pub mod cpuset;
pub mod plan;
pub mod report;
pub mod sockbuf;
pub mod topology;

pub use cidr::{AllowList, Cidr, CidrError};
pub use config::{
    kafka_default_properties, CollectorConfig, Config, ConfigError, CpuConfig, DecoderConfig,
    ElasticsearchConfig, FullPolicy, InputKind, KafkaConfig, KafkaTopics, LogConfig, MetricsConfig,
    OutputConfig, OutputKind,
};
pub use cpuset::{CpuSet, CpuSetError};
pub use plan::{CorePlan, WorkerPlan};
pub use report::{apply_sysctls, CheckStatus, SysctlCheck, TuneError, TuneReport};
pub use topology::{CpuInfo, Irq, IrqKind, Nic, NumaNode, RxQueue, SoftnetStat, Sysctls, Topology};
