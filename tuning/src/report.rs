//! `ferroflow tune`: the machine checked against the configuration.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Config, InputKind};
use crate::cpuset::CpuSet;
use crate::plan::{collector_nics, CorePlan};
use crate::sockbuf::{udp_mem_pages_needed, PAGE_SIZE};
use crate::topology::{IrqKind, Topology};

/// `netdev_max_backlog` the report asks for at least.
pub const MIN_NETDEV_MAX_BACKLOG: u64 = 10_000;
/// `netdev_budget` the report asks for at least.
pub const MIN_NETDEV_BUDGET: u64 = 600;

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CheckStatus {
    /// Good as it is.
    Ok,
    /// Should be changed to the recommended value.
    Change,
    /// Could not be read.
    Unknown,
}

/// One sysctl, what it is, what it should be and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SysctlCheck {
    /// Dotted name, as `sysctl` takes it (`net.core.rmem_max`).
    pub name: &'static str,
    /// File under the root (`proc/sys/net/core/rmem_max`).
    pub path: &'static str,
    /// Current value as read (`None`: unknown).
    pub current: Option<String>,
    /// Value to set when `status` is [`CheckStatus::Change`].
    pub recommended: Option<String>,
    /// The verdict.
    pub status: CheckStatus,
    /// Why, in one or two sentences.
    pub why: String,
}

/// Everything `ferroflow tune` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TuneReport {
    /// The machine.
    pub topology: Topology,
    /// The recommended core plan.
    pub plan: CorePlan,
    /// Network sysctls and their recommended values.
    pub sysctls: Vec<SysctlCheck>,
    /// Problems found with NICs, IRQs and the process's CPU set.
    pub warnings: Vec<String>,
    /// Sockets the collector will open (workers × listen addresses; 0 for non-UDP inputs).
    pub sockets: u64,
    /// The configuration checked.
    pub config: Config,
}

/// Why the recommended sysctls could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// A `/proc/sys` file could not be written (not root, read-only /proc in a container, ...).
    #[error("cannot write {value} to {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The value.
        value: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

impl TuneReport {
    /// Reads nothing: checks `topology` (from [`Topology::read`]) against `config`.
    pub fn build(topology: &Topology, config: &Config) -> TuneReport {
        let plan = CorePlan::recommend(topology, config);
        let sockets = match config.collector.input {
            InputKind::Udp => (plan.recv_threads * config.collector.listen.len()) as u64,
            _ => 0,
        };
        let rcvbuf = config.collector.socket_rcvbuf_bytes;
        let sysctls = sysctl_checks(topology, rcvbuf, sockets);
        let warnings = warnings(topology, config, &plan);
        TuneReport {
            topology: topology.clone(),
            plan,
            sysctls,
            warnings,
            sockets,
            config: config.clone(),
        }
    }

    /// The sysctls that should change.
    pub fn sysctl_changes(&self) -> impl Iterator<Item = &SysctlCheck> {
        self.sysctls
            .iter()
            .filter(|c| c.status == CheckStatus::Change && c.recommended.is_some())
    }

    /// The part of `ferroflow.toml` that realises the plan.
    pub fn to_toml_snippet(&self) -> String {
        let p = &self.plan;
        let mut s = String::from("# Recommended by `ferroflow tune` for this machine.\n");
        if !p.nics.is_empty() {
            let _ = writeln!(
                s,
                "# NIC(s): {}; NUMA node {}; kernel IRQ/softirq CPUs: {}.",
                p.nics.join(", "),
                p.numa_node.map_or("unknown".to_string(), |n| n.to_string()),
                if p.reserved.is_empty() {
                    "none reserved".to_string()
                } else {
                    p.reserved.to_string()
                }
            );
        }
        s.push_str("[collector]\n");
        let _ = writeln!(s, "workers = {}", p.recv_threads);
        if p.split {
            s.push_str("split_receive_decode = true\n");
            let _ = writeln!(s, "decode_threads = {}", p.decode_threads);
        }
        let _ = writeln!(
            s,
            "socket_rcvbuf_bytes = {}",
            self.config.collector.socket_rcvbuf_bytes
        );
        if let Some(i) = &self.config.collector.interface {
            let _ = writeln!(s, "interface = {i:?}");
        }
        s.push_str("\n[cpu]\n");
        let _ = writeln!(s, "pinning = {}", p.pinned);
        if p.pinned {
            let _ = writeln!(s, "cores = \"{}\"", p.worker_cpus());
        }
        let _ = writeln!(
            s,
            "reserve_softirq_core = {}",
            self.config.cpu.reserve_softirq_core
        );
        s
    }

    /// The `/etc/sysctl.d/` file that makes the recommended sysctls permanent (empty when
    /// nothing should change).
    pub fn sysctl_conf(&self) -> String {
        let mut s = String::new();
        for c in self.sysctl_changes() {
            let _ = writeln!(
                s,
                "{} = {}",
                c.name,
                c.recommended.as_deref().unwrap_or_default()
            );
        }
        s
    }

    /// The whole report for a terminal.
    pub fn render_text(&self) -> String {
        let t = &self.topology;
        let mut s = String::new();
        let _ = writeln!(s, "ferroflow tune (read from {})", t.root.display());

        s.push_str("\n== CPU ==\n");
        let usable = t.usable_cpus();
        let _ = writeln!(s, "online CPUs:     {}", opt_set(&t.online));
        let _ = writeln!(s, "allowed CPUs:    {} (this process)", opt_set(&t.allowed));
        let cores = t.physical_cores(&usable);
        let packages: std::collections::BTreeSet<u32> =
            t.cpus.iter().filter_map(|c| c.package_id).collect();
        let threads = cores.iter().map(CpuSet::len).max().unwrap_or(0);
        let _ = writeln!(
            s,
            "usable:          {} CPU(s) on {} physical core(s), {} package(s), SMT {}",
            usable.len(),
            cores.len(),
            if packages.is_empty() {
                "unknown".to_string()
            } else {
                packages.len().to_string()
            },
            if t.cpus.iter().all(|c| c.siblings.is_none()) {
                "unknown".to_string()
            } else if threads > 1 {
                format!("on ({threads} threads per core)")
            } else {
                "off".to_string()
            }
        );

        s.push_str("\n== NUMA ==\n");
        if t.numa_nodes.is_empty() {
            s.push_str("no NUMA information (single node or hidden)\n");
        }
        for n in &t.numa_nodes {
            let _ = writeln!(s, "node {}: CPUs {}", n.id, n.cpus);
        }

        s.push_str("\n== NICs ==\n");
        let all = t.online.clone().unwrap_or_else(|| usable.clone());
        let mut virtuals = Vec::new();
        for nic in &t.nics {
            if nic.is_virtual {
                virtuals.push(nic.name.as_str());
                continue;
            }
            let rps = nic.rps_cpus();
            let _ = writeln!(
                s,
                "{}: driver {}, device {}, NUMA node {}, {}, {}, {} rx queue(s), RPS {}",
                nic.name,
                opt(&nic.driver),
                opt(&nic.device),
                nic.numa_node
                    .map_or("unknown".to_string(), |n| n.to_string()),
                opt(&nic.operstate),
                nic.speed_mbps
                    .map_or("speed unknown".to_string(), |v| format!("{v} Mb/s")),
                nic.rx_queues.len(),
                if rps.is_empty() {
                    "off".to_string()
                } else {
                    format!("to CPUs {rps}")
                }
            );
            if nic.irqs.is_empty() {
                s.push_str("  IRQs: none found in /proc/interrupts\n");
            }
            for irq in &nic.irqs {
                let kind = match irq.kind {
                    IrqKind::Rx => "rx",
                    IrqKind::Tx => "tx",
                    IrqKind::RxTx => "rx+tx",
                    IrqKind::Other => "other",
                };
                let _ = writeln!(
                    s,
                    "  IRQ {:>4} {:<28} {:<5} -> CPUs {:<8} (smp_affinity_list {}, {} interrupts)",
                    irq.number,
                    irq.name,
                    kind,
                    irq.handling_cpus(&all).to_string(),
                    opt_set(&irq.affinity),
                    irq.total
                );
            }
        }
        if !virtuals.is_empty() {
            let _ = writeln!(s, "virtual interfaces: {}", virtuals.join(", "));
        }

        s.push_str("\n== sysctls ==\n");
        for c in &self.sysctls {
            let status = match c.status {
                CheckStatus::Ok => "ok",
                CheckStatus::Change => "CHANGE",
                CheckStatus::Unknown => "unknown",
            };
            let cur = c.current.as_deref().unwrap_or("unknown");
            let rec = match (&c.recommended, c.status) {
                (Some(r), CheckStatus::Change) => format!(" -> {r}"),
                _ => String::new(),
            };
            let _ = writeln!(s, "{:<28} {:<7} {cur}{rec}", c.name, status);
            let _ = writeln!(s, "    {}", c.why);
        }
        let conf = self.sysctl_conf();
        if conf.is_empty() {
            s.push_str("Nothing to change.\n");
        } else {
            s.push_str(
                "\nApply now with `ferroflow tune --apply` (root). To keep them across reboots, put \
                 this in /etc/sysctl.d/90-ferroflow.conf:\n",
            );
            for l in conf.lines() {
                let _ = writeln!(s, "  {l}");
            }
        }

        s.push_str("\n== core plan ==\n");
        for l in self.plan.explain() {
            let _ = writeln!(s, "{l}");
        }

        s.push_str("\n== input ==\n");
        let _ = writeln!(
            s,
            "collector.input = {}{}",
            self.config.collector.input,
            self.config
                .collector
                .interface
                .as_ref()
                .map(|i| format!(" on {i}"))
                .unwrap_or_default()
        );
        for l in [
            "udp: nothing beyond the sysctls above (net.core.rmem_max for SO_RCVBUF)",
            "af_packet: root or CAP_NET_RAW; collector.interface; ring = socket_rcvbuf_bytes per worker",
            "af_xdp: root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF), kernel >= 5.9 with CONFIG_XDP_SOCKETS, \
             no other XDP program on collector.interface, one socket per NIC queue (RSS spreads \
             exporters); frames up to 3840 bytes; see docs/bypass.md",
        ] {
            let _ = writeln!(s, "- {l}");
        }

        s.push_str("\n== config ==\n");
        s.push_str(&self.to_toml_snippet());

        if !self.warnings.is_empty() {
            s.push_str("\n== warnings ==\n");
            for w in &self.warnings {
                let _ = writeln!(s, "- {w}");
            }
        }
        s
    }
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("unknown")
}

fn opt_set(v: &Option<CpuSet>) -> String {
    v.as_ref().map_or("unknown".to_string(), |s| {
        if s.is_empty() {
            "none".to_string()
        } else {
            s.to_string()
        }
    })
}

fn mib(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

fn at_least(
    name: &'static str,
    path: &'static str,
    current: Option<u64>,
    min: u64,
    why: String,
) -> SysctlCheck {
    let (status, recommended) = match current {
        None => (CheckStatus::Unknown, Some(min.to_string())),
        Some(v) if v >= min => (CheckStatus::Ok, None),
        Some(_) => (CheckStatus::Change, Some(min.to_string())),
    };
    SysctlCheck {
        name,
        path,
        current: current.map(|v| v.to_string()),
        recommended,
        status,
        why,
    }
}

fn info(name: &'static str, path: &'static str, current: Option<u64>, why: &str) -> SysctlCheck {
    SysctlCheck {
        name,
        path,
        current: current.map(|v| v.to_string()),
        recommended: None,
        status: if current.is_some() {
            CheckStatus::Ok
        } else {
            CheckStatus::Unknown
        },
        why: why.to_string(),
    }
}

fn sysctl_checks(t: &Topology, rcvbuf: u64, sockets: u64) -> Vec<SysctlCheck> {
    let sc = &t.sysctls;
    let drops: u64 = t.softnet.iter().map(|s| s.dropped).sum();
    let drop_cpus: CpuSet = t
        .softnet
        .iter()
        .filter(|s| s.dropped > 0)
        .map(|s| s.cpu)
        .collect();
    let squeezes: u64 = t.softnet.iter().map(|s| s.time_squeeze).sum();
    let mut out = vec![
        at_least(
            "net.core.rmem_max",
            "proc/sys/net/core/rmem_max",
            sc.rmem_max,
            rcvbuf,
            format!(
                "Largest SO_RCVBUF the kernel grants; the collector asks for {} per socket \
                 (collector.socket_rcvbuf_bytes) and a smaller cap silently shrinks it, so bursts \
                 overflow the socket.",
                mib(rcvbuf)
            ),
        ),
        info(
            "net.core.rmem_default",
            "proc/sys/net/core/rmem_default",
            sc.rmem_default,
            "Buffer of sockets that do not ask for one; the collector always asks, so no change.",
        ),
        at_least(
            "net.core.netdev_max_backlog",
            "proc/sys/net/core/netdev_max_backlog",
            sc.netdev_max_backlog,
            MIN_NETDEV_MAX_BACKLOG,
            format!(
                "Per-CPU queue between the driver and the UDP stack; bursts and RPS overflow it. \
                 {}",
                if drops > 0 {
                    format!("{drops} packets were dropped there so far (CPUs {drop_cpus}).")
                } else {
                    "No drops counted so far (/proc/net/softnet_stat).".to_string()
                }
            ),
        ),
        at_least(
            "net.core.netdev_budget",
            "proc/sys/net/core/netdev_budget",
            sc.netdev_budget,
            MIN_NETDEV_BUDGET,
            format!(
                "Packets one softirq run takes from the NICs; flow exports arrive in bursts of \
                 small datagrams. {}",
                if squeezes > 0 {
                    format!("The softirq ran out of budget {squeezes} times so far.")
                } else {
                    "No budget exhaustion counted so far.".to_string()
                }
            ),
        ),
    ];

    // udp_mem: all UDP sockets together, in pages.
    let needed = udp_mem_pages_needed(sockets, rcvbuf);
    let why = format!(
        "Pages ({PAGE_SIZE} bytes) all UDP sockets may hold (min, pressure, max); {sockets} \
         socket(s) x {} (doubled by the kernel) need {needed} pages. Above `pressure` the kernel \
         squeezes buffers, above `max` it drops.",
        mib(rcvbuf)
    );
    out.push(match sc.udp_mem {
        None => SysctlCheck {
            name: "net.ipv4.udp_mem",
            path: "proc/sys/net/ipv4/udp_mem",
            current: None,
            recommended: None,
            status: CheckStatus::Unknown,
            why,
        },
        Some([min, pressure, max]) => {
            let current = Some(format!("{min} {pressure} {max}"));
            if pressure >= needed && max >= needed {
                SysctlCheck {
                    name: "net.ipv4.udp_mem",
                    path: "proc/sys/net/ipv4/udp_mem",
                    current,
                    recommended: None,
                    status: CheckStatus::Ok,
                    why,
                }
            } else {
                let p = pressure.max(needed);
                let m = max.max(needed.saturating_mul(2));
                SysctlCheck {
                    name: "net.ipv4.udp_mem",
                    path: "proc/sys/net/ipv4/udp_mem",
                    current,
                    recommended: Some(format!("{min} {p} {m}")),
                    status: CheckStatus::Change,
                    why,
                }
            }
        }
    });
    out.push(info(
        "net.ipv4.udp_rmem_min",
        "proc/sys/net/ipv4/udp_rmem_min",
        sc.udp_rmem_min,
        "Buffer each UDP socket keeps under memory pressure; the default is fine.",
    ));
    out
}

fn warnings(t: &Topology, config: &Config, plan: &CorePlan) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(name) = &config.collector.interface {
        if t.nic(name).is_none() {
            w.push(format!(
                "collector.interface = {name:?}: no such interface."
            ));
        }
    }
    if let (Some(online), Some(allowed)) = (&t.online, &t.allowed) {
        let missing = online.difference(allowed);
        if !missing.is_empty() {
            w.push(format!(
                "This process may not use CPUs {missing} (taskset, cgroup cpuset or container \
                 limit); the plan leaves them out."
            ));
        }
    }
    let all = t.online.clone().unwrap_or_else(|| t.usable_cpus());
    for nic in collector_nics(t, config) {
        let irq_cpus = nic.rx_irq_cpus(&all);
        if let Some(node) = nic.numa_node.and_then(|n| t.node(n)) {
            let off = irq_cpus.difference(&node.cpus);
            if !off.is_empty() {
                w.push(format!(
                    "{}: receive IRQs on CPUs {off}, outside the NIC's NUMA node {} (CPUs {}); \
                     pin them to node-local CPUs.",
                    nic.name, node.id, node.cpus
                ));
            }
        }
        for irq in nic.irqs.iter().filter(|i| i.kind.receives()) {
            if let Some(a) = &irq.affinity {
                if all.len() > 1 && all.is_subset(a) && irq.effective_affinity.is_none() {
                    w.push(format!(
                        "{}: IRQ {} ({}) is not pinned (smp_affinity_list {a}); its softirq work \
                         may land on a worker core.",
                        nic.name, irq.number, irq.name
                    ));
                }
            }
        }
        let busy = plan.worker_cpus().intersection(&irq_cpus);
        if plan.pinned && !busy.is_empty() && !plan.reserved.is_empty() {
            w.push(format!(
                "{}: workers share CPUs {busy} with the NIC's receive IRQs.",
                nic.name
            ));
        }
        if nic.rx_queues.len() == 1 && plan.recv_threads > 1 && nic.rps_cpus().is_empty() {
            w.push(format!(
                "{}: one receive queue and RPS off: one CPU does all of its softirq work for {} \
                 workers. Consider RPS (queues/rx-0/rps_cpus) or a multi-queue NIC.",
                nic.name, plan.recv_threads
            ));
        }
        if nic.operstate.as_deref() == Some("down") {
            w.push(format!("{}: link is down.", nic.name));
        }
    }
    // (A running irqbalance is said in the core plan's notes.)
    w
}

/// Writes every recommended sysctl change under `root` (`/` on a live system; the CLI calls this
/// only with `--apply`). Returns one line per change made, `name: old -> new`. Stops at the
/// first file that cannot be written. The values do not survive a reboot; see
/// [`TuneReport::sysctl_conf`].
pub fn apply_sysctls(root: &Path, report: &TuneReport) -> Result<Vec<String>, TuneError> {
    let mut done = Vec::new();
    for c in report.sysctl_changes() {
        let value = c.recommended.clone().unwrap_or_default();
        let path = root.join(c.path);
        // No `create`: a wrong root must not grow a fake /proc.
        let res = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{value}\n").as_bytes()));
        if let Err(source) = res {
            return Err(TuneError::Write {
                path,
                value,
                source,
            });
        }
        done.push(format!(
            "{}: {} -> {value}",
            c.name,
            c.current.as_deref().unwrap_or("unknown")
        ));
    }
    Ok(done)
}
