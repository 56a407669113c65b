//! Topology, core plan and report on the fixture trees under `tests/fixtures/` (see the README
//! there), and on the live machine.

use std::path::{Path, PathBuf};

use ferroflow_tuning::{
    apply_sysctls, CheckStatus, Config, CorePlan, CpuSet, IrqKind, OutputKind, Topology, TuneReport,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn set(s: &str) -> CpuSet {
    CpuSet::parse_list(s).unwrap()
}

fn worker_cpus(plan: &CorePlan) -> Vec<usize> {
    plan.workers.iter().map(|w| w.recv_core.unwrap()).collect()
}

// ---- (a) the 2-CPU VM this crate was written on ------------------------------------------------

#[test]
fn two_cpu_vm_topology() {
    let t = Topology::read(&fixture("two-cpu-vm"));
    assert_eq!(t.online, Some(set("0-1")));
    assert_eq!(t.allowed, Some(set("0-1")));
    assert_eq!(t.usable_cpus(), set("0-1"));
    assert_eq!(t.cpus.len(), 2);
    assert_eq!(t.cpus[1].core_id, Some(1));
    assert_eq!(t.cpus[1].package_id, Some(0));
    assert_eq!(t.cpus[1].siblings, Some(set("1")));
    assert!(!t.smt_active());
    assert_eq!(t.numa_nodes.len(), 1);
    assert_eq!(t.node_of(1), Some(0));

    let eth0 = t.nic("eth0").unwrap();
    assert!(!eth0.is_virtual);
    assert_eq!(eth0.driver.as_deref(), Some("virtio_net"));
    assert_eq!(eth0.device.as_deref(), Some("virtio2"));
    assert_eq!(eth0.numa_node, None);
    assert_eq!(eth0.speed_mbps, None); // virtio reports -1
    assert_eq!(eth0.rx_queues.len(), 1);
    assert_eq!(eth0.rx_queues[0].rps_cpus, Some(CpuSet::new()));
    let irqs: Vec<(u32, IrqKind)> = eth0.irqs.iter().map(|i| (i.number, i.kind)).collect();
    assert_eq!(
        irqs,
        [(37, IrqKind::Other), (38, IrqKind::Rx), (39, IrqKind::Tx)]
    );
    // The receive IRQ lands on CPU 1 (effective affinity), the transmit one on CPU 0.
    assert_eq!(eth0.rx_irq_cpus(&set("0-1")), set("1"));
    for name in ["lo", "ifb0", "ifb1"] {
        let n = t.nic(name).unwrap();
        assert!(n.is_virtual && n.irqs.is_empty(), "{name}");
    }
    let sc = &t.sysctls;
    assert_eq!(sc.rmem_max, Some(4_194_304));
    assert_eq!(sc.rmem_default, Some(212_992));
    assert_eq!(sc.netdev_max_backlog, Some(1000));
    assert_eq!(sc.netdev_budget, Some(300));
    assert_eq!(sc.udp_mem, Some([575_799, 767_732, 1_151_598]));
    assert_eq!(sc.udp_rmem_min, Some(4096));
    assert_eq!(t.softnet.len(), 2);
    assert_eq!(t.softnet[1].cpu, 1);
    assert_eq!(t.irqbalance_running, None);
}

#[test]
fn two_cpu_vm_plan_keeps_the_softirq_core_free() {
    let t = Topology::read(&fixture("two-cpu-vm"));
    let plan = CorePlan::recommend(&t, &Config::default());
    assert!(plan.pinned);
    assert_eq!(plan.worker_count(), 1);
    assert_eq!(plan.workers[0].recv_core, Some(0));
    assert_eq!(plan.workers[0].decode_core, Some(0));
    assert_eq!(plan.reserved, set("1"));
    assert!(plan.kafka_cores.is_empty());
    assert_eq!(plan.nics, ["eth0"]);
    assert!(!plan.explain().is_empty());

    // Kafka output: librdkafka shares the softirq core rather than the worker's.
    let mut c = Config::default();
    c.output.kind = OutputKind::Kafka;
    let plan = CorePlan::recommend(&t, &c);
    assert_eq!(worker_cpus(&plan), [0]);
    assert_eq!(plan.kafka_cores, set("1"));

    // Without the reservation both CPUs get a worker, the softirq core last.
    let mut c = Config::default();
    c.cpu.reserve_softirq_core = false;
    let plan = CorePlan::recommend(&t, &c);
    assert_eq!(worker_cpus(&plan), [0, 1]);
    assert!(plan.reserved.is_empty());

    // Split mode on one free core: both threads share it.
    let mut c = Config::default();
    c.collector.split_receive_decode = true;
    let plan = CorePlan::recommend(&t, &c);
    assert_eq!(plan.worker_count(), 1);
    assert_eq!(plan.workers[0].recv_core, Some(0));
    assert_eq!(plan.workers[0].decode_core, Some(0));
    assert_eq!((plan.recv_threads, plan.decode_threads), (1, 1));
}

#[test]
fn two_cpu_vm_report() {
    let t = Topology::read(&fixture("two-cpu-vm"));
    let r = TuneReport::build(&t, &Config::default());
    let by_name = |n: &str| r.sysctls.iter().find(|c| c.name == n).unwrap();
    let rmem = by_name("net.core.rmem_max");
    assert_eq!(rmem.status, CheckStatus::Change);
    assert_eq!(rmem.recommended.as_deref(), Some("33554432"));
    assert_eq!(
        by_name("net.core.netdev_max_backlog")
            .recommended
            .as_deref(),
        Some("10000")
    );
    assert_eq!(
        by_name("net.core.netdev_budget").recommended.as_deref(),
        Some("600")
    );
    assert_eq!(by_name("net.core.rmem_default").status, CheckStatus::Ok);
    assert_eq!(by_name("net.ipv4.udp_mem").status, CheckStatus::Ok);
    assert_eq!(by_name("net.ipv4.udp_rmem_min").status, CheckStatus::Ok);
    assert_eq!(r.sockets, 3);
    let text = r.render_text();
    for section in [
        "== CPU ==",
        "== NUMA ==",
        "== NICs ==",
        "== sysctls ==",
        "== core plan ==",
        "== config ==",
    ] {
        assert!(text.contains(section), "{section} missing:\n{text}");
    }
    assert!(text.contains("eth0: driver virtio_net"), "{text}");
    assert!(text.contains("net.core.rmem_max = 33554432"), "{text}");
    let snippet = r.to_toml_snippet();
    assert!(snippet.contains("workers = 1"));
    assert!(snippet.contains("cores = \"0\""));
    // The snippet is a valid configuration that reproduces the plan.
    let c = Config::from_toml_str(&snippet).unwrap();
    assert_eq!(
        CorePlan::recommend(&t, &c).worker_cpus(),
        r.plan.worker_cpus()
    );
}

// ---- (b) the made-up two-socket, 64-CPU box -----------------------------------------------------

#[test]
fn two_socket_topology() {
    let t = Topology::read(&fixture("two-socket-64"));
    assert_eq!(t.usable_cpus(), set("0-63"));
    assert!(t.smt_active());
    assert_eq!(t.siblings_of(48), set("48-49"));
    assert_eq!(t.physical_cores(&set("0-63")).len(), 32);
    assert_eq!(t.numa_nodes.len(), 2);
    assert_eq!(t.node_of(40), Some(1));
    let nic = t.nic("ens1f0").unwrap();
    assert_eq!(nic.driver.as_deref(), Some("i40e"));
    assert_eq!(nic.device.as_deref(), Some("0000:81:00.0"));
    assert_eq!(nic.numa_node, Some(1));
    assert_eq!(nic.local_cpus, Some(set("32-63")));
    assert_eq!(nic.speed_mbps, Some(25_000));
    assert_eq!(nic.rx_queues.len(), 16);
    assert_eq!(nic.irqs.len(), 17); // misc + 16 queues
    assert_eq!(nic.irqs[0].kind, IrqKind::Other);
    assert_eq!(nic.irqs[1].name, "i40e-ens1f0-TxRx-0");
    assert_eq!(nic.irqs[1].total, 9_000_000);
    assert_eq!(nic.rx_irq_cpus(&set("0-63")), set("32-47"));
    let eno1 = t.nic("eno1").unwrap();
    assert_eq!(eno1.rx_irq_cpus(&set("0-63")), set("0-1"));
    assert_eq!(eno1.irqs.len(), 3);
    assert_eq!(t.sysctls.rmem_max, Some(212_992));
    assert_eq!(t.softnet.iter().map(|s| s.dropped).sum::<u64>(), 4242);
    assert_eq!(t.irqbalance_running, Some(true));
}

#[test]
fn two_socket_plan_uses_node1_cores_free_of_irqs() {
    let t = Topology::read(&fixture("two-socket-64"));
    for interface in [None, Some("ens1f0".to_string())] {
        let mut c = Config::default();
        c.collector.interface = interface.clone();
        let plan = CorePlan::recommend(&t, &c);
        // Node 1 is CPUs 32-63; 32-47 take the IRQs (8 whole physical cores); the other 8
        // physical cores are 48/49 .. 62/63: one worker on the first thread of each.
        assert_eq!(
            worker_cpus(&plan),
            [48, 50, 52, 54, 56, 58, 60, 62],
            "{interface:?}"
        );
        assert_eq!(plan.numa_node, Some(1));
        assert!(plan.reserved.is_subset(&set("0-1,32-47")));
        assert!(set("32-47").is_subset(&plan.reserved));
        assert!(plan.kafka_cores.is_empty());
        for w in &plan.workers {
            assert_eq!(w.recv_core, w.decode_core);
        }
    }
}

#[test]
fn two_socket_plan_with_kafka_leaves_cores_for_librdkafka() {
    let t = Topology::read(&fixture("two-socket-64"));
    let mut c = Config::default();
    c.output.kind = OutputKind::Kafka;
    let plan = CorePlan::recommend(&t, &c);
    assert_eq!(worker_cpus(&plan), [48, 50, 52, 54, 56, 58]);
    assert_eq!(plan.kafka_cores, set("60-63"));
}

#[test]
fn two_socket_plan_explicit_counts_and_cores() {
    let t = Topology::read(&fixture("two-socket-64"));

    // More workers than free physical cores on the node: SMT siblings on node 1 next.
    let mut c = Config::default();
    c.collector.workers = Some(10);
    let plan = CorePlan::recommend(&t, &c);
    let cpus = worker_cpus(&plan);
    assert_eq!(&cpus[..8], [48, 50, 52, 54, 56, 58, 60, 62]);
    assert_eq!(&cpus[8..], [49, 51]);

    // Split mode: 4 receive + 4 decode threads on 8 distinct physical cores of node 1.
    let mut c = Config::default();
    c.collector.split_receive_decode = true;
    let plan = CorePlan::recommend(&t, &c);
    assert_eq!((plan.recv_threads, plan.decode_threads), (4, 4));
    assert_eq!(plan.worker_cpus(), set("48,50,52,54,56,58,60,62"));
    assert_eq!(plan.workers[0].recv_core, Some(48));
    assert_eq!(plan.workers[0].decode_core, Some(50));

    // Explicit cores are honoured, even off the NIC's node, and the plan says so.
    let mut c = Config::default();
    c.cpu.cores = Some(set("2-5"));
    let plan = CorePlan::recommend(&t, &c);
    assert_eq!(worker_cpus(&plan), [2, 3, 4, 5]);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("not on the NIC's NUMA node 1")),
        "{:?}",
        plan.notes
    );

    // Explicit cores that include IRQ cores: honoured, with a warning.
    c.cpu.cores = Some(set("32,48"));
    let plan = CorePlan::recommend(&t, &c);
    assert_eq!(worker_cpus(&plan), [32, 48]);
    assert!(plan
        .notes
        .iter()
        .any(|n| n.contains("32") && n.contains("IRQ")));

    // Pinning off: the plan still counts workers but pins nothing.
    let mut c = Config::default();
    c.cpu.pinning = false;
    let plan = CorePlan::recommend(&t, &c);
    assert_eq!(plan.worker_count(), 8);
    assert!(plan
        .workers
        .iter()
        .all(|w| w.recv_core.is_none() && w.decode_core.is_none()));
}

#[test]
fn two_socket_report() {
    let t = Topology::read(&fixture("two-socket-64"));
    let mut c = Config::default();
    c.collector.interface = Some("ens1f0".into());
    let r = TuneReport::build(&t, &c);
    assert_eq!(r.sockets, 8 * 3);
    let changes: Vec<&str> = r.sysctl_changes().map(|c| c.name).collect();
    assert_eq!(
        changes,
        [
            "net.core.rmem_max",
            "net.core.netdev_max_backlog",
            "net.core.netdev_budget"
        ]
    );
    let backlog = r
        .sysctls
        .iter()
        .find(|c| c.name == "net.core.netdev_max_backlog")
        .unwrap();
    assert!(backlog.why.contains("4242"), "{}", backlog.why);
    assert!(r.plan.explain().iter().any(|l| l.contains("irqbalance")));
    let text = r.render_text();
    assert!(
        text.contains("ens1f0: driver i40e, device 0000:81:00.0, NUMA node 1"),
        "{text}"
    );
    assert!(text.contains("i40e-ens1f0-TxRx-15"), "{text}");
    assert!(text.contains("node 1: CPUs 32-63"), "{text}");
    assert!(text.contains("SMT on (2 threads per core)"), "{text}");
    let snippet = r.to_toml_snippet();
    assert!(
        snippet.contains("cores = \"48,50,52,54,56,58,60,62\""),
        "{snippet}"
    );
    assert!(snippet.contains("interface = \"ens1f0\""), "{snippet}");
    let again = Config::from_toml_str(&snippet).unwrap();
    assert_eq!(
        CorePlan::recommend(&t, &again).worker_cpus(),
        r.plan.worker_cpus()
    );
}

#[test]
fn apply_writes_the_recommended_values() {
    // Work on a copy of the fixture's /proc/sys.
    let src = fixture("two-socket-64");
    let root = std::env::temp_dir().join(format!("ferroflow-tuning-apply-{}", std::process::id()));
    for f in [
        "proc/sys/net/core/rmem_max",
        "proc/sys/net/core/rmem_default",
        "proc/sys/net/core/netdev_max_backlog",
        "proc/sys/net/core/netdev_budget",
        "proc/sys/net/ipv4/udp_mem",
        "proc/sys/net/ipv4/udp_rmem_min",
    ] {
        let to = root.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(f), to).unwrap();
    }
    let t = Topology::read(&src);
    let r = TuneReport::build(&t, &Config::default());
    let done = apply_sysctls(&root, &r).unwrap();
    assert_eq!(done.len(), 3);
    assert_eq!(done[0], "net.core.rmem_max: 212992 -> 33554432");
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
    assert_eq!(read("proc/sys/net/core/rmem_max"), "33554432\n");
    assert_eq!(read("proc/sys/net/core/netdev_max_backlog"), "10000\n");
    assert_eq!(read("proc/sys/net/core/netdev_budget"), "600\n");
    // After applying, a fresh read finds nothing left to change.
    let after = Topology {
        sysctls: Topology::read(&root).sysctls,
        ..t
    };
    assert_eq!(
        TuneReport::build(&after, &Config::default())
            .sysctl_changes()
            .count(),
        0
    );

    // A root without the files is an error naming the file, and creates nothing.
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = apply_sysctls(&empty, &r).unwrap_err().to_string();
    assert!(e.contains("rmem_max"), "{e}");
    assert!(!empty.join("proc").exists());
    std::fs::remove_dir_all(&root).unwrap();
}

// ---- the machine running the test ---------------------------------------------------------------

#[test]
fn live_machine_does_not_fail() {
    let t = Topology::read(Path::new("/"));
    let config = Config::default();
    let plan = CorePlan::recommend(&t, &config);
    assert!(plan.worker_count() >= 1);
    let usable = t.usable_cpus();
    if !usable.is_empty() {
        assert!(plan.worker_cpus().is_subset(&usable));
    }
    let r = TuneReport::build(&t, &config);
    let text = r.render_text();
    assert!(text.contains("== core plan =="));
    Config::from_toml_str(&r.to_toml_snippet()).unwrap();
    if std::env::var_os("FERROFLOW_TUNE_PRINT").is_some() {
        println!("{text}");
    }
}
