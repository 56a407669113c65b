//! Which thread runs on which core.
//!
//! The rules, in order:
//!
//! 1. Workers go on the CPUs this process may use (`online` ∩ `Cpus_allowed_list`), or exactly
//!    on `cpu.cores` when the user lists them.
//! 2. The cores that take the NIC's receive IRQs (and the CPUs RPS steers to) do the kernel's
//!    softirq work: with `cpu.reserve_softirq_core` (the default) and any other core to spare,
//!    no worker goes on them nor on their SMT siblings. On a 2-core box that is one worker, on
//!    the core that is not doing the softirq work: pinning a busy worker onto the softirq core
//!    halves throughput.
//! 3. Workers stay on the NIC's NUMA node, where its DMA buffers are.
//! 4. One worker per physical core before any SMT sibling; by default (`workers` unset) only
//!    one worker per free physical core of the NIC's node.
//! 5. With Kafka (or Elasticsearch) output and at least four free physical cores, a quarter of
//!    them is left to the client library's threads (compression, I/O). The engine applies
//!    [`CorePlan::kafka_cores`] to the thread that creates the producers, before it creates
//!    them: librdkafka's threads inherit that affinity.

use serde::Serialize;

use crate::config::{Config, OutputKind};
use crate::cpuset::CpuSet;
use crate::topology::{Nic, Topology};

/// Where one worker's threads run. In the default (combined) mode one thread receives and
/// decodes, and `recv_core == decode_core`. With `split_receive_decode` the worker is a receive
/// thread and a decode thread joined by a ring; when the counts differ, a worker may have only
/// one of the two (see [`CorePlan::recv_threads`] / [`CorePlan::decode_threads`]). `None`: not
/// pinned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkerPlan {
    /// Worker index, from 0.
    pub id: usize,
    /// CPU of the receive thread (of the combined thread).
    pub recv_core: Option<usize>,
    /// CPU of the decode thread (of the combined thread).
    pub decode_core: Option<usize>,
}

/// The recommended placement of the collector's threads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CorePlan {
    /// Whether threads are to be pinned (`cpu.pinning`).
    pub pinned: bool,
    /// Whether receive and decode run in separate threads (`split_receive_decode`).
    pub split: bool,
    /// Number of receive threads (combined threads when not split) = workers with a receive
    /// thread.
    pub recv_threads: usize,
    /// Number of decode threads (equal to `recv_threads` when not split).
    pub decode_threads: usize,
    /// One entry per worker.
    pub workers: Vec<WorkerPlan>,
    /// CPUs left to the kernel: NIC receive IRQs, softirq and RPS work (with their SMT
    /// siblings). Empty when `reserve_softirq_core` is off or nothing could be spared.
    pub reserved: CpuSet,
    /// CPUs for librdkafka's (or the HTTP client's) threads and the other non-worker threads.
    /// Empty when the output needs none or no CPU could be spared (they then float).
    pub kafka_cores: CpuSet,
    /// The NIC(s) planned around.
    pub nics: Vec<String>,
    /// The NUMA node workers were kept to.
    pub numa_node: Option<usize>,
    /// Why: one sentence per decision.
    pub notes: Vec<String>,
}

impl CorePlan {
    /// Number of workers (entries of `workers`).
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// The CPUs that run worker threads.
    pub fn worker_cpus(&self) -> CpuSet {
        self.workers
            .iter()
            .flat_map(|w| [w.recv_core, w.decode_core])
            .flatten()
            .collect()
    }

    /// The plan in words: a summary followed by the reasons.
    pub fn explain(&self) -> Vec<String> {
        let mut out = Vec::new();
        let what = if self.split {
            format!(
                "{} receive thread(s) and {} decode thread(s)",
                self.recv_threads, self.decode_threads
            )
        } else {
            format!(
                "{} worker(s), each receiving and decoding",
                self.recv_threads
            )
        };
        if self.pinned {
            out.push(format!(
                "Plan: {what}, pinned to CPUs {}.",
                self.worker_cpus()
            ));
            for w in &self.workers {
                let line = match (w.recv_core, w.decode_core, self.split) {
                    (Some(r), Some(d), false) if r == d => format!("  worker {}: CPU {r}", w.id),
                    (r, d, _) => format!(
                        "  worker {}: receive on {}, decode on {}",
                        w.id,
                        cpu_or(r, "-"),
                        cpu_or(d, "-")
                    ),
                };
                out.push(line);
            }
        } else {
            out.push(format!("Plan: {what}, not pinned."));
        }
        if !self.reserved.is_empty() {
            out.push(format!(
                "Left to the kernel (NIC IRQs, softirq): CPUs {}.",
                self.reserved
            ));
        }
        if !self.kafka_cores.is_empty() {
            out.push(format!(
                "Output client threads (librdkafka / HTTP) on CPUs {}.",
                self.kafka_cores
            ));
        }
        out.extend(self.notes.iter().cloned());
        out
    }

    /// Computes the plan for `config` on `topology`. Never fails: what is unknown is assumed
    /// conservatively and said in [`CorePlan::notes`].
    pub fn recommend(topology: &Topology, config: &Config) -> CorePlan {
        Planner::new(topology, config).plan()
    }
}

fn cpu_or(c: Option<usize>, none: &str) -> String {
    c.map_or_else(|| none.to_string(), |c| c.to_string())
}

/// The NICs the collector receives on: `collector.interface` when set, else every NIC with a
/// device behind it that is not down, the one with most receive queues first.
pub fn collector_nics<'t>(topology: &'t Topology, config: &Config) -> Vec<&'t Nic> {
    if let Some(name) = &config.collector.interface {
        return topology.nic(name).into_iter().collect();
    }
    let mut nics: Vec<&Nic> = topology
        .nics
        .iter()
        .filter(|n| !n.is_virtual && n.operstate.as_deref() != Some("down"))
        .collect();
    if nics.is_empty() {
        nics = topology.nics.iter().filter(|n| !n.is_virtual).collect();
    }
    nics.sort_by_key(|n| std::cmp::Reverse(n.rx_queues.len()));
    nics
}

struct Planner<'a> {
    topo: &'a Topology,
    cfg: &'a Config,
    usable: CpuSet,
    nic_node: Option<usize>,
    notes: Vec<String>,
}

/// The outcome of the explicit or automatic core choice.
struct Placement {
    /// CPUs for worker threads, best first.
    ordered: Vec<usize>,
    /// CPUs left to the kernel.
    reserved: CpuSet,
    /// CPUs set aside for the output client's threads (may be empty).
    client_cores: CpuSet,
    /// Receive (or combined) threads.
    recv_n: usize,
    /// Decode threads (0 when not split).
    decode_n: usize,
}

/// One usable CPU with what the ordering rules need to know about it.
#[derive(Clone, Copy, Debug)]
struct Slot {
    cpu: usize,
    /// Its physical core has a CPU doing NIC IRQ / softirq work.
    irq_core: bool,
    /// On a NUMA node other than the NIC's.
    off_node: bool,
    /// Not the first usable thread of its physical core.
    secondary: bool,
}

impl Slot {
    fn key(&self) -> (bool, bool, bool, usize) {
        (self.irq_core, self.off_node, self.secondary, self.cpu)
    }
}

impl<'a> Planner<'a> {
    fn new(topo: &'a Topology, cfg: &'a Config) -> Self {
        Planner {
            topo,
            cfg,
            usable: topo.usable_cpus(),
            nic_node: None,
            notes: Vec::new(),
        }
    }

    fn note(&mut self, s: String) {
        self.notes.push(s);
    }

    fn plan(mut self) -> CorePlan {
        let split = self.cfg.collector.split_receive_decode;
        let needs_client_cores = matches!(
            self.cfg.output.kind,
            OutputKind::Kafka | OutputKind::Elasticsearch
        );

        // The NICs and the CPUs doing their kernel-side receive work.
        let nics = collector_nics(self.topo, self.cfg);
        if let Some(name) = &self.cfg.collector.interface {
            if nics.is_empty() {
                self.note(format!(
                    "Interface {name} (collector.interface) was not found; planning without NIC \
                     information."
                ));
            }
        }
        let all = self
            .topo
            .online
            .clone()
            .unwrap_or_else(|| self.usable.clone());
        let mut softirq = CpuSet::new();
        for nic in &nics {
            let irq = nic.rx_irq_cpus(&all);
            let rps = nic.rps_cpus();
            softirq = softirq.union(&irq).union(&rps);
            let node = nic
                .numa_node
                .map_or("unknown".to_string(), |n| n.to_string());
            let irq_text = if irq.is_empty() {
                "receive IRQs not found".to_string()
            } else {
                format!("receive IRQs on CPUs {irq}")
            };
            let rps_text = if rps.is_empty() {
                "RPS off".to_string()
            } else {
                format!("RPS to CPUs {rps}")
            };
            self.note(format!(
                "NIC {} ({} rx queue(s), NUMA node {node}): {irq_text}, {rps_text}.",
                nic.name,
                nic.rx_queues.len()
            ));
        }
        let nic_node = nics.iter().find_map(|n| n.numa_node);
        self.nic_node = nic_node;
        let nic_names: Vec<String> = nics.iter().map(|n| n.name.clone()).collect();

        if self.usable.is_empty() {
            self.note("The CPUs could not be read; workers are not pinned.".to_string());
            return self.unpinned_fallback(split, nic_names);
        }

        let reserve = self.cfg.cpu.reserve_softirq_core;
        let mut softirq_usable = softirq.intersection(&self.usable);
        if softirq.is_empty() && reserve && self.usable.len() > 1 {
            // Nothing known about the NIC's IRQs: keep the conventional housekeeping CPU free.
            let first = self.usable.first().unwrap_or(0);
            self.note(format!(
                "Where the NIC interrupts land is unknown; assuming CPU {first} does the softirq \
                 work."
            ));
            softirq_usable = CpuSet::from_cpus([first]);
        }

        // Classify every usable CPU.
        let cores = self.topo.physical_cores(&self.usable);
        let mut slots: Vec<Slot> = Vec::new();
        for core in &cores {
            let irq_core = !core.intersection(&softirq_usable).is_empty();
            for (i, cpu) in core.iter().enumerate() {
                let off_node = match (nic_node, self.topo.node_of(cpu)) {
                    (Some(n), Some(m)) => n != m,
                    _ => false,
                };
                slots.push(Slot {
                    cpu,
                    irq_core,
                    off_node,
                    secondary: i > 0,
                });
            }
        }
        slots.sort_by_key(Slot::key);

        let explicit = self
            .cfg
            .cpu
            .cores
            .clone()
            .and_then(|cores| self.explicit(&cores, &softirq_usable, nic_node, split));
        let Placement {
            ordered,
            reserved,
            client_cores,
            recv_n,
            decode_n,
        } = match explicit {
            Some(p) => p,
            None => self.auto(
                &slots,
                &cores,
                &softirq_usable,
                reserve,
                split,
                needs_client_cores,
            ),
        };

        let mut workers = assign(&ordered, recv_n, decode_n, split);
        let threads = recv_n + if split { decode_n } else { 0 };
        if threads > ordered.len() {
            self.note(format!(
                "{threads} worker thread(s) on {} CPU(s): some share a CPU.",
                ordered.len()
            ));
        }

        let worker_cpus: CpuSet = workers
            .iter()
            .flat_map(|w| [w.recv_core, w.decode_core])
            .flatten()
            .collect();
        let kafka_cores = if needs_client_cores {
            self.client_cores(client_cores, &worker_cpus, &softirq_usable, nic_node)
        } else {
            CpuSet::new()
        };

        let pinned = self.cfg.cpu.pinning;
        if !pinned {
            self.note(format!(
                "cpu.pinning = false: threads are not pinned (the plan would use CPUs {worker_cpus})."
            ));
            for w in &mut workers {
                w.recv_core = None;
                w.decode_core = None;
            }
        }
        if self.topo.irqbalance_running == Some(true) {
            self.note(
                "irqbalance is running and may move the NIC's IRQs onto worker cores; stop it or \
                 ban the worker cores (IRQBALANCE_BANNED_CPULIST)."
                    .to_string(),
            );
        }
        CorePlan {
            pinned,
            split,
            recv_threads: recv_n,
            decode_threads: if split { decode_n } else { recv_n },
            workers,
            reserved,
            kafka_cores: if pinned { kafka_cores } else { CpuSet::new() },
            nics: nic_names,
            numa_node: nic_node,
            notes: self.notes,
        }
    }

    fn unpinned_fallback(self, split: bool, nics: Vec<String>) -> CorePlan {
        let recv_n = self.cfg.collector.workers.unwrap_or(1);
        let decode_n = if split {
            self.cfg.collector.decode_threads.unwrap_or(recv_n)
        } else {
            0
        };
        let workers = assign(&[], recv_n, decode_n, split);
        CorePlan {
            pinned: false,
            split,
            recv_threads: recv_n,
            decode_threads: if split { decode_n } else { recv_n },
            workers,
            reserved: CpuSet::new(),
            kafka_cores: CpuSet::new(),
            nics,
            numa_node: None,
            notes: self.notes,
        }
    }

    /// `cpu.cores` given: use exactly those (the usable ones), in ascending order.
    fn explicit(
        &mut self,
        explicit: &CpuSet,
        softirq: &CpuSet,
        nic_node: Option<usize>,
        split: bool,
    ) -> Option<Placement> {
        let valid = explicit.intersection(&self.usable);
        let dropped = explicit.difference(&self.usable);
        if !dropped.is_empty() {
            self.note(format!(
                "cpu.cores lists CPUs {dropped} that are offline or not allowed for this process; \
                 they are left out."
            ));
        }
        if valid.is_empty() {
            self.note("None of cpu.cores is usable; choosing cores automatically.".to_string());
            return None;
        }
        self.note(format!("Workers on CPUs {valid}, as cpu.cores says."));
        let on_irq = valid.intersection(softirq);
        if !on_irq.is_empty() {
            self.note(format!(
                "cpu.cores includes CPUs {on_irq}, which handle NIC receive IRQs / softirq work: \
                 workers there compete with the kernel (expect up to half the throughput)."
            ));
        }
        if let Some(n) = nic_node {
            let off: CpuSet = valid
                .iter()
                .filter(|&c| self.topo.node_of(c).is_some_and(|m| m != n))
                .collect();
            if !off.is_empty() {
                self.note(format!(
                    "cpu.cores includes CPUs {off}, which are not on the NIC's NUMA node {n}."
                ));
            }
        }
        let ordered = valid.to_vec();
        let (recv_n, decode_n) = self.counts(ordered.len(), split);
        Some(Placement {
            ordered,
            reserved: softirq.clone(),
            client_cores: CpuSet::new(),
            recv_n,
            decode_n,
        })
    }

    /// Thread counts: configured, or derived from the number of worker cores.
    fn counts(&self, cores: usize, split: bool) -> (usize, usize) {
        let c = &self.cfg.collector;
        let recv_n = c.workers.unwrap_or(if split {
            (cores / 2).max(1)
        } else {
            cores.max(1)
        });
        let decode_n = if split {
            c.decode_threads.unwrap_or(recv_n)
        } else {
            0
        };
        (recv_n, decode_n)
    }

    /// The automatic plan.
    fn auto(
        &mut self,
        slots: &[Slot],
        cores: &[CpuSet],
        softirq: &CpuSet,
        reserve: bool,
        split: bool,
        needs_client_cores: bool,
    ) -> Placement {
        let free_exists = slots.iter().any(|s| !s.irq_core);
        let (candidates, reserved): (Vec<Slot>, CpuSet) = if !reserve {
            if !softirq.is_empty() {
                self.note(format!(
                    "cpu.reserve_softirq_core = false: workers may share CPUs {softirq} with the \
                     NIC's softirq work (used last)."
                ));
            }
            (slots.to_vec(), CpuSet::new())
        } else if free_exists {
            let reserved: CpuSet = cores
                .iter()
                .filter(|c| !c.intersection(softirq).is_empty())
                .fold(CpuSet::new(), |a, c| a.union(c));
            (
                slots.iter().copied().filter(|s| !s.irq_core).collect(),
                reserved,
            )
        } else {
            self.note(format!(
                "Every usable core handles NIC receive IRQs ({softirq}); workers share them with \
                 the kernel. Move the IRQs (smp_affinity_list) to free a core."
            ));
            (slots.to_vec(), CpuSet::new())
        };

        // Physical cores available for workers, best tier first: on the NIC's node if it has
        // any, else anywhere.
        let primaries_on_node: Vec<usize> = candidates
            .iter()
            .filter(|s| !s.secondary && !s.off_node)
            .map(|s| s.cpu)
            .collect();
        let tier: Vec<usize> = if !primaries_on_node.is_empty() {
            if candidates.iter().any(|s| s.off_node) {
                self.note("Workers are kept to the NIC's NUMA node.".to_string());
            }
            primaries_on_node
        } else {
            self.note("The NIC's NUMA node has no free core; using cores on other nodes.".into());
            candidates
                .iter()
                .filter(|s| !s.secondary)
                .map(|s| s.cpu)
                .collect()
        };

        // Cores for the output client's threads: a quarter of the free physical cores, taken
        // from the end, when there are at least four and the thread counts leave room.
        let wanted_threads = {
            let c = &self.cfg.collector;
            match (c.workers, split) {
                (Some(w), false) => Some(w),
                (Some(w), true) => Some(w + c.decode_threads.unwrap_or(w)),
                (None, _) => None,
            }
        };
        let mut k = if needs_client_cores && tier.len() >= 4 {
            (tier.len() / 4).max(1)
        } else {
            0
        };
        if let Some(t) = wanted_threads {
            k = k.min(tier.len().saturating_sub(t));
        }
        let client_phys: Vec<usize> = tier[tier.len() - k..].to_vec();
        let client_cores: CpuSet = client_phys.iter().fold(CpuSet::new(), |a, &c| {
            a.union(&self.topo.siblings_of(c).intersection(&self.usable))
        });
        let worker_tier: Vec<usize> = tier[..tier.len() - k].to_vec();

        let (recv_n, decode_n) = self.counts(worker_tier.len(), split);
        // Order: the chosen tier first, then every other candidate by the slot order, then (if
        // still short) the reserved CPUs; the client cores are never used for workers.
        let mut ordered: Vec<usize> = worker_tier.clone();
        for s in &candidates {
            if !ordered.contains(&s.cpu) && !client_cores.contains(s.cpu) {
                ordered.push(s.cpu);
            }
        }
        let threads = recv_n + if split { decode_n } else { 0 };
        // Only counts the user asked for spill onto the reserved CPUs; automatic counts share
        // the free ones instead.
        let asked =
            self.cfg.collector.workers.is_some() || self.cfg.collector.decode_threads.is_some();
        if threads > ordered.len() && asked {
            for s in slots {
                if !ordered.contains(&s.cpu) && !client_cores.contains(s.cpu) {
                    ordered.push(s.cpu);
                }
            }
        }
        if self.cfg.collector.workers.is_none() {
            let smt_left: CpuSet = worker_tier
                .iter()
                .take(threads)
                .fold(CpuSet::new(), |a, &c| a.union(&self.topo.siblings_of(c)))
                .difference(&ordered.iter().take(threads).copied().collect())
                .intersection(&self.usable);
            let mut why = format!(
                "workers = auto: one per free physical core{}",
                if self.nic_node.is_some() {
                    " of the NIC's NUMA node"
                } else {
                    ""
                }
            );
            if !smt_left.is_empty() {
                why.push_str(&format!("; SMT siblings {smt_left} are left idle"));
            }
            self.note(format!("{why}."));
        }
        Placement {
            ordered,
            reserved,
            client_cores,
            recv_n,
            decode_n,
        }
    }

    fn client_cores(
        &mut self,
        dedicated: CpuSet,
        worker_cpus: &CpuSet,
        softirq: &CpuSet,
        nic_node: Option<usize>,
    ) -> CpuSet {
        if !dedicated.is_empty() {
            return dedicated;
        }
        let worker_cores = worker_cpus
            .iter()
            .fold(CpuSet::new(), |a, c| a.union(&self.topo.siblings_of(c)));
        let spare = self.usable.difference(&worker_cores).difference(softirq);
        let on_node: CpuSet = match nic_node {
            Some(n) => spare
                .iter()
                .filter(|&c| self.topo.node_of(c) == Some(n))
                .collect(),
            None => CpuSet::new(),
        };
        if !on_node.is_empty() {
            return on_node;
        }
        if !spare.is_empty() {
            return spare;
        }
        let rest = self.usable.difference(worker_cpus);
        if !rest.is_empty() {
            self.note(format!(
                "Output client threads share CPUs {rest} with the kernel's softirq work."
            ));
            return rest;
        }
        self.note("No CPU is left for the output client's threads; they float.".to_string());
        CpuSet::new()
    }
}

/// Builds the worker list: combined threads take one CPU each; split workers take a receive
/// CPU then a decode CPU. CPUs are used in order and reused from the start when short.
fn assign(ordered: &[usize], recv_n: usize, decode_n: usize, split: bool) -> Vec<WorkerPlan> {
    let mut next = 0usize;
    let mut take = || {
        if ordered.is_empty() {
            return None;
        }
        let c = ordered[next % ordered.len()];
        next += 1;
        Some(c)
    };
    if !split {
        return (0..recv_n)
            .map(|id| {
                let c = take();
                WorkerPlan {
                    id,
                    recv_core: c,
                    decode_core: c,
                }
            })
            .collect();
    }
    (0..recv_n.max(decode_n))
        .map(|id| {
            let recv_core = if id < recv_n { take() } else { None };
            let decode_core = if id < decode_n { take() } else { None };
            WorkerPlan {
                id,
                recv_core,
                decode_core,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{CpuInfo, Irq, NumaNode, RxQueue};

    fn set(s: &str) -> CpuSet {
        CpuSet::parse_list(s).unwrap()
    }

    /// `n` CPUs; `siblings(cpu)` gives each CPU's thread siblings; `nodes` the NUMA nodes.
    fn topo(n: usize, siblings: impl Fn(usize) -> CpuSet, nodes: &[&str]) -> Topology {
        let numa_nodes: Vec<NumaNode> = nodes
            .iter()
            .enumerate()
            .map(|(id, cpus)| NumaNode {
                id,
                cpus: set(cpus),
            })
            .collect();
        let cpus = (0..n)
            .map(|id| CpuInfo {
                id,
                core_id: None,
                package_id: None,
                siblings: Some(siblings(id)),
                node: numa_nodes
                    .iter()
                    .find(|nd| nd.cpus.contains(id))
                    .map(|nd| nd.id),
            })
            .collect();
        let all = CpuSet::from_cpus(0..n);
        Topology {
            online: Some(all.clone()),
            allowed: Some(all),
            cpus,
            numa_nodes,
            ..Topology::default()
        }
    }

    fn nic(name: &str, node: Option<usize>, irq_cpus: &[usize]) -> Nic {
        Nic {
            name: name.to_string(),
            numa_node: node,
            operstate: Some("up".to_string()),
            rx_queues: (0..irq_cpus.len())
                .map(|index| RxQueue {
                    index,
                    rps_cpus: None,
                })
                .collect(),
            irqs: irq_cpus
                .iter()
                .enumerate()
                .map(|(q, &cpu)| Irq {
                    number: 100 + q as u32,
                    name: format!("{name}-TxRx-{q}"),
                    kind: crate::topology::IrqKind::RxTx,
                    fired_on: CpuSet::from_cpus([cpu]),
                    total: 1,
                    affinity: Some(CpuSet::from_cpus([cpu])),
                    effective_affinity: None,
                })
                .collect(),
            ..Nic::default()
        }
    }

    fn cpus(plan: &CorePlan) -> Vec<usize> {
        plan.workers.iter().filter_map(|w| w.recv_core).collect()
    }

    /// The usual Intel numbering: node 0 = 0-15 + siblings 32-47, node 1 = 16-31 + 48-63.
    fn intel_two_socket() -> Topology {
        topo(
            64,
            |c| CpuSet::from_cpus([c % 32, c % 32 + 32]),
            &["0-15,32-47", "16-31,48-63"],
        )
    }

    #[test]
    fn intel_numbering_irqs_on_the_wrong_node() {
        // NIC on node 1 but its IRQs pinned to 32-47 (node 0's second threads): the workers
        // still go on node 1, where every physical core is free.
        let mut t = intel_two_socket();
        t.nics
            .push(nic("ens1f0", Some(1), &(32..48).collect::<Vec<_>>()));
        let plan = CorePlan::recommend(&t, &Config::default());
        assert_eq!(cpus(&plan), (16..32).collect::<Vec<_>>());
        assert_eq!(plan.reserved, set("0-15,32-47"));
        let r = crate::TuneReport::build(&t, &Config::default());
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("outside the NIC's NUMA node 1")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn intel_numbering_irqs_on_half_the_node() {
        let mut t = intel_two_socket();
        t.nics
            .push(nic("ens1f0", Some(1), &(16..24).collect::<Vec<_>>()));
        let plan = CorePlan::recommend(&t, &Config::default());
        assert_eq!(cpus(&plan), (24..32).collect::<Vec<_>>());
        assert_eq!(plan.reserved, set("16-23,48-55"));
    }

    #[test]
    fn irqs_unknown_leave_cpu0() {
        let t = topo(4, |c| CpuSet::from_cpus([c]), &[]);
        let plan = CorePlan::recommend(&t, &Config::default());
        assert_eq!(cpus(&plan), [1, 2, 3]);
        assert_eq!(plan.reserved, set("0"));
        assert!(plan.notes.iter().any(|n| n.contains("unknown")));
    }

    #[test]
    fn irq_on_cpu0_of_two() {
        let mut t = topo(2, |c| CpuSet::from_cpus([c]), &["0-1"]);
        t.nics.push(nic("eth0", None, &[0]));
        let plan = CorePlan::recommend(&t, &Config::default());
        assert_eq!(cpus(&plan), [1]);
        assert_eq!(plan.reserved, set("0"));
    }

    #[test]
    fn single_cpu() {
        let mut t = topo(1, |c| CpuSet::from_cpus([c]), &[]);
        t.nics.push(nic("eth0", None, &[0]));
        let plan = CorePlan::recommend(&t, &Config::default());
        assert_eq!(cpus(&plan), [0]);
        assert!(plan.notes.iter().any(|n| n.contains("Every usable core")));
    }

    #[test]
    fn nothing_known() {
        let t = Topology::default();
        let plan = CorePlan::recommend(&t, &Config::default());
        assert_eq!(plan.worker_count(), 1);
        assert!(!plan.pinned);
        assert_eq!(plan.workers[0].recv_core, None);
        let mut c = Config::default();
        c.collector.workers = Some(3);
        assert_eq!(CorePlan::recommend(&t, &c).worker_count(), 3);
    }

    #[test]
    fn allowed_narrower_than_online() {
        let mut t = topo(8, |c| CpuSet::from_cpus([c]), &[]);
        t.allowed = Some(set("4-7"));
        t.nics.push(nic("eth0", None, &[0, 1]));
        let plan = CorePlan::recommend(&t, &Config::default());
        // The IRQ CPUs are outside the allowed set; all four allowed CPUs are free.
        assert_eq!(cpus(&plan), [4, 5, 6, 7]);
        let mut c = Config::default();
        c.cpu.cores = Some(set("2-5"));
        let plan = CorePlan::recommend(&t, &c);
        assert_eq!(cpus(&plan), [4, 5]);
        assert!(plan.notes.iter().any(|n| n.contains("2-3")));
    }

    #[test]
    fn rps_cpus_count_as_softirq_cpus() {
        let mut t = topo(4, |c| CpuSet::from_cpus([c]), &[]);
        let mut n = nic("eth0", None, &[0]);
        n.rx_queues[0].rps_cpus = Some(set("1"));
        t.nics.push(n);
        let plan = CorePlan::recommend(&t, &Config::default());
        assert_eq!(cpus(&plan), [2, 3]);
        assert_eq!(plan.reserved, set("0-1"));
    }

    #[test]
    fn split_with_uneven_counts() {
        let t = topo(8, |c| CpuSet::from_cpus([c]), &[]);
        let mut c = Config::default();
        c.collector.split_receive_decode = true;
        c.collector.workers = Some(2);
        c.collector.decode_threads = Some(4);
        let plan = CorePlan::recommend(&t, &c);
        assert_eq!(plan.worker_count(), 4);
        assert_eq!((plan.recv_threads, plan.decode_threads), (2, 4));
        assert!(plan.workers[..2].iter().all(|w| w.recv_core.is_some()));
        assert!(plan.workers[2..]
            .iter()
            .all(|w| w.recv_core.is_none() && w.decode_core.is_some()));
        assert_eq!(plan.worker_cpus(), set("1-6"));
    }

    #[test]
    fn interface_not_found() {
        let mut t = topo(4, |c| CpuSet::from_cpus([c]), &[]);
        t.nics.push(nic("eth0", None, &[3]));
        let mut c = Config::default();
        c.collector.interface = Some("eth9".into());
        let plan = CorePlan::recommend(&t, &c);
        assert!(plan.notes.iter().any(|n| n.contains("eth9")));
        assert!(plan.nics.is_empty());
    }
}
