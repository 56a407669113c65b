//! What the machine looks like to the collector, read from `/sys` and `/proc` under a root
//! directory that tests point at fixture trees.
//!
//! Nothing here fails: a file that is missing or unreadable leaves its field `None` (shown as
//! "unknown"), because containers, VMs and old kernels each hide a different part of sysfs.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cpuset::CpuSet;

/// CPUs, NUMA nodes, NICs and network sysctls of one machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Topology {
    /// The root the files were read under (`/` on a live system).
    pub root: PathBuf,
    /// `/sys/devices/system/cpu/online`.
    pub online: Option<CpuSet>,
    /// CPUs this process may run on (`Cpus_allowed_list` of `/proc/self/status`), which is
    /// narrower than `online` under taskset, cgroup cpusets or container limits.
    pub allowed: Option<CpuSet>,
    /// One entry per CPU directory found under `/sys/devices/system/cpu`, by id.
    pub cpus: Vec<CpuInfo>,
    /// `/sys/devices/system/node/node*/cpulist`, by id. Empty when the kernel shows no NUMA
    /// information.
    pub numa_nodes: Vec<NumaNode>,
    /// Network interfaces under `/sys/class/net`, by name (loopback included).
    pub nics: Vec<Nic>,
    /// Network sysctls under `/proc/sys`.
    pub sysctls: Sysctls,
    /// Per-CPU packet counters of `/proc/net/softnet_stat` (empty when unreadable).
    pub softnet: Vec<SoftnetStat>,
    /// Whether an `irqbalance` process is running (it moves IRQs and so undoes a core plan);
    /// `None` when `/proc` shows no processes.
    pub irqbalance_running: Option<bool>,
}

/// One logical CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CpuInfo {
    /// The kernel's CPU number.
    pub id: usize,
    /// `topology/core_id`: the physical core within its package.
    pub core_id: Option<u32>,
    /// `topology/physical_package_id`: the socket.
    pub package_id: Option<u32>,
    /// `topology/thread_siblings_list`: the CPUs sharing this CPU's physical core (itself
    /// included).
    pub siblings: Option<CpuSet>,
    /// The NUMA node whose `cpulist` contains this CPU.
    pub node: Option<usize>,
}

/// One NUMA node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NumaNode {
    /// Node number.
    pub id: usize,
    /// Its CPUs.
    pub cpus: CpuSet,
}

/// One network interface.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Nic {
    /// Interface name (`ens1f0`).
    pub name: String,
    /// Driver name, from the `device/driver` link (`i40e`, `mlx5_core`, `virtio_net`).
    pub driver: Option<String>,
    /// Name of the device the `device` link points at: a PCI address (`0000:81:00.0`) or a bus
    /// device (`virtio2`). Used to find IRQs named after the device rather than the interface.
    pub device: Option<String>,
    /// No `device` link: loopback, bridges, veth, ifb, tunnels.
    pub is_virtual: bool,
    /// `operstate` (`up`, `down`, `unknown`).
    pub operstate: Option<String>,
    /// Link speed in Mbit/s (`speed`), when the link is up and the driver says.
    pub speed_mbps: Option<u64>,
    /// `device/numa_node` (`-1` reads as unknown).
    pub numa_node: Option<usize>,
    /// `device/local_cpulist`: CPUs close to the device.
    pub local_cpus: Option<CpuSet>,
    /// Receive queues (`queues/rx-*`), by index.
    pub rx_queues: Vec<RxQueue>,
    /// IRQs of this NIC found in `/proc/interrupts`, by number.
    pub irqs: Vec<Irq>,
}

/// One receive queue of a NIC.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RxQueue {
    /// Queue index (`rx-3` -> 3).
    pub index: usize,
    /// Receive Packet Steering CPUs (`rps_cpus`); empty when RPS is off.
    pub rps_cpus: Option<CpuSet>,
}

/// What an IRQ serves, guessed from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum IrqKind {
    /// Receive only (`…-rx-0`, virtio `…-input.0`).
    Rx,
    /// Transmit only (`…-tx-0`, virtio `…-output.0`).
    Tx,
    /// A combined queue pair (`…-TxRx-0`, mlx5 `…comp…`, or a numbered `…-0`).
    RxTx,
    /// Not a data queue: link, admin, config, async events.
    Other,
}

impl IrqKind {
    /// Classifies an IRQ by its `/proc/interrupts` name.
    pub fn from_name(name: &str) -> IrqKind {
        let n = name.to_ascii_lowercase();
        let has = |s: &str| n.contains(s);
        if has("txrx") || has("rxtx") || has("tx-rx") || has("comp") {
            IrqKind::RxTx
        } else if has("rx") || has("input") {
            IrqKind::Rx
        } else if has("tx") || has("output") {
            IrqKind::Tx
        } else if [
            "config", "async", "misc", "ctrl", "cmd", "event", "lsc", "link", "mbx", "admin",
        ]
        .iter()
        .any(|s| has(s))
        {
            IrqKind::Other
        } else {
            // `eno1-3`: a numbered queue vector. A bare interface name (`eno1`, igb's link and
            // admin vector) is not a queue.
            let digits = n.trim_end_matches(|c: char| c.is_ascii_digit());
            if digits.len() < n.len() && digits.ends_with(['-', '_', '.']) {
                IrqKind::RxTx
            } else {
                IrqKind::Other
            }
        }
    }

    /// Whether interrupts of this kind start receive processing (and so softirq work).
    pub fn receives(self) -> bool {
        matches!(self, IrqKind::Rx | IrqKind::RxTx)
    }
}

/// One interrupt line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Irq {
    /// IRQ number.
    pub number: u32,
    /// The handler name, last column of `/proc/interrupts` (`ens1f0-TxRx-3`).
    pub name: String,
    /// What it serves.
    pub kind: IrqKind,
    /// CPUs that have taken this interrupt at least once.
    pub fired_on: CpuSet,
    /// Interrupts counted, all CPUs together.
    pub total: u64,
    /// `/proc/irq/N/smp_affinity_list`: where it may be delivered.
    pub affinity: Option<CpuSet>,
    /// `/proc/irq/N/effective_affinity_list`: where it is delivered now (newer kernels).
    pub effective_affinity: Option<CpuSet>,
}

impl Irq {
    /// The CPUs that handle this interrupt: the effective affinity when the kernel shows it,
    /// else the affinity mask unless it spans every CPU in `all`, else the CPUs it has fired on.
    pub fn handling_cpus(&self, all: &CpuSet) -> CpuSet {
        if let Some(e) = self.effective_affinity.as_ref().filter(|e| !e.is_empty()) {
            return e.clone();
        }
        // An affinity of every CPU says nothing about where the interrupt lands.
        let spans_all = |a: &CpuSet| all.len() > 1 && all.is_subset(a);
        match &self.affinity {
            Some(a) if !a.is_empty() && !spans_all(a) => a.clone(),
            _ => self.fired_on.clone(),
        }
    }
}

/// The network sysctls the collector cares about; `None` is "unknown".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sysctls {
    /// `net.core.rmem_max`: largest SO_RCVBUF a process may ask for, in bytes.
    pub rmem_max: Option<u64>,
    /// `net.core.rmem_default`: receive buffer of sockets that do not set SO_RCVBUF.
    pub rmem_default: Option<u64>,
    /// `net.core.netdev_max_backlog`: per-CPU queue of received packets waiting for the
    /// protocol stack (RPS, non-NAPI drivers).
    pub netdev_max_backlog: Option<u64>,
    /// `net.core.netdev_budget`: packets one softirq run may take from the NICs.
    pub netdev_budget: Option<u64>,
    /// `net.ipv4.udp_mem`: min, pressure and max pages for all UDP sockets together.
    pub udp_mem: Option<[u64; 3]>,
    /// `net.ipv4.udp_rmem_min`: receive buffer each UDP socket keeps under memory pressure.
    pub udp_rmem_min: Option<u64>,
}

/// One line of `/proc/net/softnet_stat`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SoftnetStat {
    /// CPU number.
    pub cpu: usize,
    /// Packets processed.
    pub processed: u64,
    /// Packets dropped because the backlog queue was full (`netdev_max_backlog`).
    pub dropped: u64,
    /// Times the softirq stopped with work left (`netdev_budget` or its time limit).
    pub time_squeeze: u64,
}

impl Topology {
    /// Reads the machine under `root` (`Path::new("/")` for the live system).
    pub fn read(root: &Path) -> Topology {
        let cpu_dir = root.join("sys/devices/system/cpu");
        let online = read_cpulist(&cpu_dir.join("online"));
        let allowed = read_to_string(&root.join("proc/self/status")).and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .and_then(|v| CpuSet::parse_list(v).ok())
        });
        let numa_nodes = read_nodes(&root.join("sys/devices/system/node"));
        let mut cpus: Vec<CpuInfo> = numbered_entries(&cpu_dir, "cpu")
            .into_iter()
            .map(|(id, dir)| {
                let t = dir.join("topology");
                CpuInfo {
                    id,
                    core_id: read_num(&t.join("core_id")),
                    package_id: read_num(&t.join("physical_package_id")),
                    siblings: read_cpulist(&t.join("thread_siblings_list"))
                        .filter(|s| !s.is_empty()),
                    node: numa_nodes
                        .iter()
                        .find(|n| n.cpus.contains(id))
                        .map(|n| n.id),
                }
            })
            .collect();
        cpus.sort_by_key(|c| c.id);
        let interrupts = read_interrupts(root);
        let nics = read_nics(root, &interrupts);
        Topology {
            root: root.to_path_buf(),
            online,
            allowed,
            cpus,
            numa_nodes,
            nics,
            sysctls: read_sysctls(root),
            softnet: read_softnet(root),
            irqbalance_running: find_process(root, "irqbalance"),
        }
    }

    /// The CPUs workers may use: online and allowed; whichever of the two is known if only one
    /// is; the CPU directories found if neither is.
    pub fn usable_cpus(&self) -> CpuSet {
        match (&self.online, &self.allowed) {
            (Some(o), Some(a)) => {
                let both = o.intersection(a);
                if both.is_empty() {
                    o.clone()
                } else {
                    both
                }
            }
            (Some(o), None) => o.clone(),
            (None, Some(a)) => a.clone(),
            (None, None) => self.cpus.iter().map(|c| c.id).collect(),
        }
    }

    /// The entry for `cpu`, if its directory was found.
    pub fn cpu(&self, cpu: usize) -> Option<&CpuInfo> {
        self.cpus.iter().find(|c| c.id == cpu)
    }

    /// The NUMA node of `cpu`, if known.
    pub fn node_of(&self, cpu: usize) -> Option<usize> {
        self.cpu(cpu).and_then(|c| c.node).or_else(|| {
            self.numa_nodes
                .iter()
                .find(|n| n.cpus.contains(cpu))
                .map(|n| n.id)
        })
    }

    /// The NUMA node with id `id`.
    pub fn node(&self, id: usize) -> Option<&NumaNode> {
        self.numa_nodes.iter().find(|n| n.id == id)
    }

    /// The CPUs that share `cpu`'s physical core, `cpu` included (just `cpu` when unknown).
    pub fn siblings_of(&self, cpu: usize) -> CpuSet {
        if let Some(s) = self.cpu(cpu).and_then(|c| c.siblings.clone()) {
            if s.contains(cpu) {
                return s;
            }
        }
        // Fall back to (package, core) ids when the sibling list is missing.
        if let Some(c) = self.cpu(cpu) {
            if let (Some(core), Some(pkg)) = (c.core_id, c.package_id) {
                return self
                    .cpus
                    .iter()
                    .filter(|o| o.core_id == Some(core) && o.package_id == Some(pkg))
                    .map(|o| o.id)
                    .collect();
            }
        }
        CpuSet::from_cpus([cpu])
    }

    /// Whether any physical core shows more than one hardware thread.
    pub fn smt_active(&self) -> bool {
        self.cpus.iter().any(|c| self.siblings_of(c.id).len() > 1)
    }

    /// The physical cores among `within`: each entry is the CPUs of one core that are in
    /// `within`, ordered by their lowest CPU.
    pub fn physical_cores(&self, within: &CpuSet) -> Vec<CpuSet> {
        let mut cores: Vec<CpuSet> = Vec::new();
        for cpu in within.iter() {
            if cores.iter().any(|c| c.contains(cpu)) {
                continue;
            }
            cores.push(self.siblings_of(cpu).intersection(within));
        }
        cores
    }

    /// The interface called `name`.
    pub fn nic(&self, name: &str) -> Option<&Nic> {
        self.nics.iter().find(|n| n.name == name)
    }
}

impl Nic {
    /// The CPUs that take this NIC's receive interrupts (and so run its NAPI softirq work).
    pub fn rx_irq_cpus(&self, all: &CpuSet) -> CpuSet {
        let rx: Vec<&Irq> = self.irqs.iter().filter(|i| i.kind.receives()).collect();
        rx.iter()
            .fold(CpuSet::new(), |acc, i| acc.union(&i.handling_cpus(all)))
    }

    /// The CPUs RPS hands this NIC's packets to (empty when RPS is off everywhere).
    pub fn rps_cpus(&self) -> CpuSet {
        self.rx_queues
            .iter()
            .filter_map(|q| q.rps_cpus.as_ref())
            .fold(CpuSet::new(), |acc, s| acc.union(s))
    }
}

fn read_to_string(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

fn read_num<T: std::str::FromStr>(path: &Path) -> Option<T> {
    read_to_string(path).and_then(|s| s.trim().parse().ok())
}

fn read_cpulist(path: &Path) -> Option<CpuSet> {
    read_to_string(path).and_then(|s| CpuSet::parse_list(&s).ok())
}

/// Entries of `dir` named `<prefix><number>` (e.g. `cpu12`, `node1`, `rx-3`), by number.
fn numbered_entries(dir: &Path, prefix: &str) -> Vec<(usize, PathBuf)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(usize, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix(prefix)?;
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((n.parse().ok()?, e.path()))
        })
        .collect();
    out.sort_by_key(|(n, _)| *n);
    out
}

fn read_nodes(dir: &Path) -> Vec<NumaNode> {
    numbered_entries(dir, "node")
        .into_iter()
        .filter_map(|(id, p)| {
            Some(NumaNode {
                id,
                cpus: read_cpulist(&p.join("cpulist"))?,
            })
        })
        .collect()
}

/// The last path component a symlink points at (`../../bus/pci/drivers/i40e` -> `i40e`).
fn link_name(path: &Path) -> Option<String> {
    let target = fs::read_link(path).ok()?;
    target.file_name()?.to_str().map(str::to_string)
}

/// One parsed line of `/proc/interrupts`.
struct InterruptLine {
    number: u32,
    counts: Vec<(usize, u64)>,
    /// Everything after the counts: chip, hardware IRQ, trigger and handler names.
    desc: String,
    name: String,
}

fn read_interrupts(root: &Path) -> Vec<InterruptLine> {
    let Some(text) = read_to_string(&root.join("proc/interrupts")) else {
        return Vec::new();
    };
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let cols: Vec<usize> = header
        .split_whitespace()
        .filter_map(|c| c.strip_prefix("CPU")?.parse().ok())
        .collect();
    let mut out = Vec::new();
    for line in lines {
        let mut tokens = line.split_whitespace();
        let Some(number) = tokens
            .next()
            .and_then(|t| t.strip_suffix(':'))
            .and_then(|t| t.parse::<u32>().ok())
        else {
            continue; // NMI, LOC, ERR, ...
        };
        let mut counts = Vec::with_capacity(cols.len());
        let rest: Vec<&str> = tokens.collect();
        let mut i = 0;
        while i < cols.len() && i < rest.len() {
            match rest[i].parse::<u64>() {
                Ok(n) => counts.push((cols[i], n)),
                Err(_) => break,
            }
            i += 1;
        }
        let desc_tokens = &rest[i..];
        let name = desc_tokens
            .last()
            .map(|s| s.to_string())
            .unwrap_or_default();
        out.push(InterruptLine {
            number,
            counts,
            desc: desc_tokens.join(" "),
            name,
        });
    }
    out
}

/// Whether `needle` occurs in `hay` as a whole token: not preceded or followed by a letter or
/// digit (so `eth0` does not match `eth01` and `virtio2` does not match `virtio20`).
fn contains_token(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let bytes = hay.as_bytes();
    let mut start = 0;
    while let Some(pos) = hay[start..].find(needle) {
        let at = start + pos;
        let end = at + needle.len();
        let before_ok = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        let after_ok = end == bytes.len() || !bytes[end].is_ascii_alphanumeric();
        if before_ok && after_ok {
            return true;
        }
        start = at + 1;
        if start >= hay.len() {
            break;
        }
        while !hay.is_char_boundary(start) {
            start += 1;
        }
    }
    false
}

fn read_nics(root: &Path, interrupts: &[InterruptLine]) -> Vec<Nic> {
    let net = root.join("sys/class/net");
    let Ok(rd) = fs::read_dir(&net) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.starts_with('.') && n != "bonding_masters")
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let dir = net.join(&name);
            let dev = dir.join("device");
            let has_device = fs::symlink_metadata(&dev).is_ok();
            let mut rx_queues: Vec<RxQueue> = numbered_entries(&dir.join("queues"), "rx-")
                .into_iter()
                .map(|(index, q)| RxQueue {
                    index,
                    rps_cpus: read_to_string(&q.join("rps_cpus"))
                        .and_then(|s| CpuSet::parse_mask(&s).ok()),
                })
                .collect();
            rx_queues.sort_by_key(|q| q.index);
            let device = if has_device { link_name(&dev) } else { None };
            let irqs = if has_device {
                nic_irqs(root, &name, device.as_deref(), interrupts)
            } else {
                Vec::new()
            };
            Nic {
                driver: if has_device {
                    link_name(&dev.join("driver"))
                } else {
                    None
                },
                is_virtual: !has_device,
                operstate: read_to_string(&dir.join("operstate")).map(|s| s.trim().to_string()),
                speed_mbps: read_num::<i64>(&dir.join("speed"))
                    .and_then(|s| u64::try_from(s).ok())
                    .filter(|&s| s > 0),
                numa_node: read_num::<i64>(&dev.join("numa_node"))
                    .and_then(|n| usize::try_from(n).ok()),
                local_cpus: read_cpulist(&dev.join("local_cpulist")),
                rx_queues,
                irqs,
                device,
                name,
            }
        })
        .collect()
}

fn nic_irqs(root: &Path, ifname: &str, device: Option<&str>, lines: &[InterruptLine]) -> Vec<Irq> {
    lines
        .iter()
        .filter(|l| {
            contains_token(&l.desc, ifname) || device.is_some_and(|d| contains_token(&l.desc, d))
        })
        .map(|l| {
            let irq_dir = root.join("proc/irq").join(l.number.to_string());
            Irq {
                number: l.number,
                name: l.name.clone(),
                kind: IrqKind::from_name(&l.name),
                fired_on: l
                    .counts
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(c, _)| *c)
                    .collect(),
                total: l.counts.iter().map(|(_, n)| n).sum(),
                affinity: read_cpulist(&irq_dir.join("smp_affinity_list")),
                effective_affinity: read_cpulist(&irq_dir.join("effective_affinity_list")),
            }
        })
        .collect()
}

fn read_sysctls(root: &Path) -> Sysctls {
    let core = root.join("proc/sys/net/core");
    let ipv4 = root.join("proc/sys/net/ipv4");
    Sysctls {
        rmem_max: read_num(&core.join("rmem_max")),
        rmem_default: read_num(&core.join("rmem_default")),
        netdev_max_backlog: read_num(&core.join("netdev_max_backlog")),
        netdev_budget: read_num(&core.join("netdev_budget")),
        udp_mem: read_to_string(&ipv4.join("udp_mem")).and_then(|s| {
            let v: Vec<u64> = s
                .split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect();
            <[u64; 3]>::try_from(v).ok()
        }),
        udp_rmem_min: read_num(&ipv4.join("udp_rmem_min")),
    }
}

fn read_softnet(root: &Path) -> Vec<SoftnetStat> {
    let Some(text) = read_to_string(&root.join("proc/net/softnet_stat")) else {
        return Vec::new();
    };
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let cols: Vec<u64> = line
                .split_whitespace()
                .map(|t| u64::from_str_radix(t, 16))
                .collect::<Result<_, _>>()
                .ok()?;
            if cols.len() < 3 {
                return None;
            }
            // Since Linux 5.10 the 13th column is the CPU number; before, the line index is.
            let cpu = cols.get(12).map_or(i, |&c| c as usize);
            Some(SoftnetStat {
                cpu,
                processed: cols[0],
                dropped: cols[1],
                time_squeeze: cols[2],
            })
        })
        .collect()
}

fn find_process(root: &Path, comm: &str) -> Option<bool> {
    let rd = fs::read_dir(root.join("proc")).ok()?;
    let mut saw_any = false;
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        saw_any = true;
        if read_to_string(&e.path().join("comm")).is_some_and(|c| c.trim() == comm) {
            return Some(true);
        }
    }
    saw_any.then_some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irq_kinds() {
        assert_eq!(IrqKind::from_name("ens1f0-TxRx-3"), IrqKind::RxTx);
        assert_eq!(IrqKind::from_name("i40e-ens1f0-TxRx-3"), IrqKind::RxTx);
        assert_eq!(
            IrqKind::from_name("mlx5_comp7@pci:0000:3b:00.0"),
            IrqKind::RxTx
        );
        assert_eq!(IrqKind::from_name("virtio2-input.0"), IrqKind::Rx);
        assert_eq!(IrqKind::from_name("eth0-rx-1"), IrqKind::Rx);
        assert_eq!(IrqKind::from_name("virtio2-output.0"), IrqKind::Tx);
        assert_eq!(IrqKind::from_name("eth0-tx-1"), IrqKind::Tx);
        assert_eq!(IrqKind::from_name("virtio2-config"), IrqKind::Other);
        assert_eq!(
            IrqKind::from_name("mlx5_async0@pci:0000:3b:00.0"),
            IrqKind::Other
        );
        assert_eq!(IrqKind::from_name("i40e-0000:81:00.0:misc"), IrqKind::Other);
        assert_eq!(IrqKind::from_name("eno1-3"), IrqKind::RxTx);
        assert_eq!(IrqKind::from_name("eno1"), IrqKind::Other);
    }

    #[test]
    fn tokens() {
        assert!(contains_token("PCI-MSIX 1-edge ens1f0-TxRx-0", "ens1f0"));
        assert!(contains_token("virtio2-input.0", "virtio2"));
        assert!(!contains_token("virtio20-input.0", "virtio2"));
        assert!(!contains_token("eth01-rx", "eth0"));
        assert!(!contains_token("veth0-rx", "eth0"));
        assert!(contains_token(
            "mlx5_comp0@pci:0000:3b:00.0",
            "0000:3b:00.0"
        ));
        assert!(!contains_token("anything", ""));
    }

    #[test]
    fn handling_cpus() {
        let all = CpuSet::parse_list("0-3").unwrap();
        let mut irq = Irq {
            number: 1,
            name: "x".into(),
            kind: IrqKind::RxTx,
            fired_on: CpuSet::from_cpus([2]),
            total: 5,
            affinity: Some(all.clone()),
            effective_affinity: None,
        };
        assert_eq!(irq.handling_cpus(&all).to_string(), "2");
        irq.affinity = Some(CpuSet::from_cpus([1]));
        assert_eq!(irq.handling_cpus(&all).to_string(), "1");
        irq.effective_affinity = Some(CpuSet::from_cpus([3]));
        assert_eq!(irq.handling_cpus(&all).to_string(), "3");
    }

    #[test]
    fn missing_root_is_all_unknown() {
        let t = Topology::read(Path::new("/nonexistent/ferroflow-fixture"));
        assert_eq!(t.online, None);
        assert_eq!(t.allowed, None);
        assert!(t.cpus.is_empty() && t.nics.is_empty() && t.numa_nodes.is_empty());
        assert_eq!(t.sysctls, Sysctls::default());
        assert_eq!(t.irqbalance_running, None);
        assert!(t.usable_cpus().is_empty());
    }
}
