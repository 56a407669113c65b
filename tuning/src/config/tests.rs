use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use super::*;

fn invalid_field(r: Result<Config, ConfigError>) -> (String, String, String) {
    match r {
        Err(ConfigError::Invalid {
            field,
            value,
            reason,
        }) => (field, value, reason),
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

#[test]
fn empty_file_is_the_defaults() {
    let c = Config::from_toml_str("").unwrap();
    assert_eq!(c, Config::default());
    let col = &c.collector;
    assert_eq!(
        col.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        ["0.0.0.0:2055", "0.0.0.0:4739", "0.0.0.0:6343"]
    );
    assert_eq!(col.workers, None);
    assert!(!col.split_receive_decode);
    assert_eq!(col.decode_threads, None);
    assert_eq!(col.recv_batch, 64);
    assert_eq!(col.socket_rcvbuf_bytes, 32 * 1024 * 1024);
    assert_eq!(col.ring_capacity, 1024);
    assert_eq!(col.ring_full, FullPolicy::Block);
    assert_eq!(col.input, InputKind::Udp);
    assert_eq!(col.interface, None);
    assert_eq!(col.queue, None);
    let d = &c.decoder;
    assert!(!d.scale_sampling);
    assert_eq!(d.template_timeout_secs, 1800);
    assert_eq!(d.max_templates_per_exporter, 1024);
    assert_eq!(d.max_exporters, 10_000);
    assert_eq!(d.max_held_bytes_per_exporter, 1024 * 1024);
    assert_eq!(d.max_held_bytes_total, 64 * 1024 * 1024);
    assert_eq!(d.max_hold_secs, 600);
    assert_eq!(d.max_exporters_per_ip, 64);
    assert_eq!(d.max_domains_per_exporter, 64);
    assert_eq!(d.max_state_bytes_per_exporter, 4 * 1024 * 1024);
    assert_eq!(d.max_state_bytes_total, 32 * 1024 * 1024);
    assert_eq!(d.max_records_per_datagram, 1024);
    assert_eq!(d.max_past_secs, 3 * 86_400);
    assert_eq!(d.max_future_secs, 300);
    assert_eq!(d.template_store, None);
    assert!(d.allow_exporters.is_empty());
    assert!(d.allow_exporters.contains("203.0.113.1".parse().unwrap()));
    assert_eq!(c.output.kind, OutputKind::Stdout);
    assert_eq!(c.output.path, None);
    let k = &c.output.kafka;
    assert_eq!(k.brokers, ["127.0.0.1:9092"]);
    assert_eq!(k.topics.netflow_v5, "netflow");
    assert_eq!(k.topics.netflow_v9, "netflow");
    assert_eq!(k.topics.ipfix, "ipfix");
    assert_eq!(k.topics.sflow, "sflow");
    assert_eq!(k.queue_full, FullPolicy::Block);
    assert!(k.properties.is_empty());
    assert_eq!(c.metrics.listen.to_string(), "127.0.0.1:9102");
    assert!(c.metrics.listen.ip().is_loopback());
    assert_eq!(c.log.level, "info");
    assert!(c.cpu.pinning);
    assert_eq!(c.cpu.cores, None);
    assert!(c.cpu.reserve_softirq_core);
    c.validate().unwrap();
}

#[test]
fn full_file_parses() {
    let c = Config::from_toml_str(
        r#"
        [collector]
        listen = ["[::]:2055", "192.0.2.1:9995"]
        workers = 6
        split_receive_decode = true
        decode_threads = 12
        recv_batch = 128
        socket_rcvbuf_bytes = "64MiB"
        ring_capacity = 4096
        ring_full = "drop"
        input = "af_xdp"
        interface = "ens1f0"
        queue = 3

        [decoder]
        scale_sampling = true
        template_timeout_secs = 3600
        max_templates_per_exporter = 2048
        max_exporters = 500
        max_held_bytes_per_exporter = "2MiB"
        max_held_bytes_total = 134217728
        max_hold_secs = 30
        max_exporters_per_ip = 8
        max_domains_per_exporter = 16
        max_state_bytes_per_exporter = "1MiB"
        max_state_bytes_total = "16MiB"
        max_records_per_datagram = 500
        max_past_secs = 3600
        max_future_secs = 0
        template_store = "/var/lib/ferroflow/templates.json"
        allow_exporters = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]

        [output]
        kind = "kafka"
        path = "/var/log/ferroflow/flows.json"

        [output.kafka]
        brokers = "k1:9092, k2:9092"
        queue_full = "drop"

        [output.kafka.topics]
        netflow_v5 = "nf5"
        sflow = "sf"

        [output.kafka.properties]
        "linger.ms" = 20
        "compression.type" = "zstd"
        "socket.nagle.disable" = true

        [output.elasticsearch]
        urls = ["https://es1:9200", "https://es2:9200"]
        index_prefix = "flows"

        [metrics]
        listen = "0.0.0.0:9102"

        [log]
        level = "info,ferroflow_engine=debug"

        [cpu]
        pinning = true
        cores = "2-5,8"
        reserve_softirq_core = false
        "#,
    )
    .unwrap();
    let col = &c.collector;
    assert_eq!(col.listen[0].to_string(), "[::]:2055");
    assert!(col.listen[0].is_ipv6());
    assert_eq!(col.workers, Some(6));
    assert_eq!(col.decode_threads, Some(12));
    assert_eq!(col.socket_rcvbuf_bytes, 64 << 20);
    assert_eq!(col.ring_full, FullPolicy::Drop);
    assert_eq!(col.input, InputKind::AfXdp);
    assert_eq!(col.interface.as_deref(), Some("ens1f0"));
    assert_eq!(col.queue, Some(3));
    let d = &c.decoder;
    assert_eq!(d.max_held_bytes_per_exporter, 2 << 20);
    assert_eq!(d.max_exporters_per_ip, 8);
    assert_eq!(d.max_domains_per_exporter, 16);
    assert_eq!(d.max_state_bytes_per_exporter, 1 << 20);
    assert_eq!(d.max_state_bytes_total, 16 << 20);
    assert_eq!(d.max_records_per_datagram, 500);
    assert_eq!((d.max_past_secs, d.max_future_secs), (3600, 0));
    assert_eq!(
        d.template_store,
        Some(PathBuf::from("/var/lib/ferroflow/templates.json"))
    );
    assert!(d.allow_exporters.contains("10.1.1.1".parse().unwrap()));
    assert!(d.allow_exporters.contains("192.0.2.7".parse().unwrap()));
    assert!(!d.allow_exporters.contains("192.0.2.8".parse().unwrap()));
    assert_eq!(c.output.kind, OutputKind::Kafka);
    let k = &c.output.kafka;
    assert_eq!(k.brokers, ["k1:9092", "k2:9092"]);
    assert_eq!(k.bootstrap_servers(), "k1:9092,k2:9092");
    assert_eq!(k.topics.netflow_v5, "nf5");
    assert_eq!(k.topics.netflow_v9, "netflow");
    assert_eq!(k.topics.sflow, "sf");
    assert_eq!(k.properties["linger.ms"], "20");
    assert_eq!(k.properties["socket.nagle.disable"], "true");
    assert_eq!(c.output.elasticsearch.index_prefix, "flows");
    assert_eq!(c.cpu.cores.as_ref().unwrap().to_string(), "2-5,8");
    assert!(!c.cpu.reserve_softirq_core);
}

#[test]
fn workers_auto_and_cores_as_array() {
    let c = Config::from_toml_str("[collector]\nworkers = \"auto\"\n[cpu]\ncores = [4, 2, 3]\n")
        .unwrap();
    assert_eq!(c.collector.workers, None);
    assert_eq!(c.cpu.cores.unwrap().to_vec(), vec![2, 3, 4]);
}

#[test]
fn unknown_keys_are_errors() {
    for text in [
        "[collector]\nworkres = 4\n",
        "[colector]\nworkers = 4\n",
        "[output.kafka]\nbroker = \"a:1\"\n",
        "[output.kafka.topics]\nnetflow_v10 = \"x\"\n",
        "top = 1\n",
    ] {
        match Config::from_toml_str(text) {
            Err(ConfigError::Parse { message, .. }) => {
                assert!(message.contains("unknown field"), "{text}: {message}")
            }
            other => panic!("{text}: expected a parse error, got {other:?}"),
        }
    }
    let e = Config::from_toml_str("[collector]\nworkres = 4\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("workres"), "{e}");
}

#[test]
fn wrong_types_and_bad_values_are_parse_errors() {
    for (text, needle) in [
        ("[collector]\nrecv_batch = \"many\"\n", "recv_batch"),
        ("[collector]\nlisten = [\"0.0.0.0\"]\n", "listen"),
        ("[collector]\nring_full = \"spill\"\n", "spill"),
        ("[collector]\ninput = \"dpdk\"\n", "dpdk"),
        (
            "[collector]\nsocket_rcvbuf_bytes = \"32 parsecs\"\n",
            "parsecs",
        ),
        ("[collector]\nworkers = -1\n", "workers"),
        (
            "[decoder]\nallow_exporters = [\"10.0.0.0/33\"]\n",
            "10.0.0.0/33",
        ),
        ("[cpu]\ncores = \"5-2\"\n", "5-2"),
        ("[output.kafka.properties]\nlinger.ms = 5\n", "quote"),
        ("[output]\nkind = \"s3\"\n", "s3"),
    ] {
        match Config::from_toml_str(text) {
            Err(ConfigError::Parse { message, .. }) => {
                assert!(message.contains(needle), "{text}: {message}")
            }
            other => panic!("{text}: expected a parse error, got {other:?}"),
        }
    }
}

#[test]
fn validation_names_field_and_value() {
    let cases: &[(&str, &str, &str)] = &[
        ("[collector]\nlisten = []\n", "collector.listen", "[]"),
        (
            "[collector]\nlisten = [\"0.0.0.0:0\"]\n",
            "collector.listen",
            "0.0.0.0:0",
        ),
        (
            "[collector]\nlisten = [\"0.0.0.0:2055\", \"0.0.0.0:2055\"]\n",
            "collector.listen",
            "0.0.0.0:2055",
        ),
        ("[collector]\nworkers = 0\n", "collector.workers", "0"),
        (
            "[collector]\ndecode_threads = 2\n",
            "collector.decode_threads",
            "2",
        ),
        ("[collector]\nrecv_batch = 0\n", "collector.recv_batch", "0"),
        (
            "[collector]\nrecv_batch = 2048\n",
            "collector.recv_batch",
            "2048",
        ),
        (
            "[collector]\nsocket_rcvbuf_bytes = 100\n",
            "collector.socket_rcvbuf_bytes",
            "100",
        ),
        (
            "[collector]\nsocket_rcvbuf_bytes = \"2GiB\"\n",
            "collector.socket_rcvbuf_bytes",
            "2147483648",
        ),
        (
            "[collector]\nring_capacity = 1\n",
            "collector.ring_capacity",
            "1",
        ),
        (
            "[collector]\ninput = \"af_xdp\"\n",
            "collector.input",
            "\"af_xdp\"",
        ),
        (
            "[collector]\ninterface = \"a-very-long-interface-name\"\n",
            "collector.interface",
            "\"a-very-long-interface-name\"",
        ),
        (
            "[decoder]\ntemplate_timeout_secs = 0\n",
            "decoder.template_timeout_secs",
            "0",
        ),
        (
            "[decoder]\nmax_exporters = 0\n",
            "decoder.max_exporters",
            "0",
        ),
        (
            "[decoder]\nmax_held_bytes_per_exporter = \"128MiB\"\n",
            "decoder.max_held_bytes_per_exporter",
            "134217728",
        ),
        (
            "[decoder]\nmax_exporters_per_ip = 0\n",
            "decoder.max_exporters_per_ip",
            "0",
        ),
        (
            "[decoder]\nmax_domains_per_exporter = 0\n",
            "decoder.max_domains_per_exporter",
            "0",
        ),
        (
            "[decoder]\nmax_records_per_datagram = 0\n",
            "decoder.max_records_per_datagram",
            "0",
        ),
        (
            "[decoder]\nmax_state_bytes_per_exporter = \"1KiB\"\n",
            "decoder.max_state_bytes_per_exporter",
            "1024",
        ),
        (
            "[decoder]\nmax_state_bytes_per_exporter = \"64MiB\"\n",
            "decoder.max_state_bytes_per_exporter",
            "67108864",
        ),
        ("[output]\nkind = \"file\"\n", "output.kind", "\"file\""),
        (
            "[output.kafka]\nbrokers = []\n",
            "output.kafka.brokers",
            "[]",
        ),
        (
            "[output.kafka]\nbrokers = [\"kafka\"]\n",
            "output.kafka.brokers",
            "\"kafka\"",
        ),
        (
            "[output.kafka.topics]\nipfix = \"ip fix\"\n",
            "output.kafka.topics.ipfix",
            "\"ip fix\"",
        ),
        (
            "[output.kafka.properties]\n\"bootstrap.servers\" = \"x:1\"\n",
            "output.kafka.properties.\"bootstrap.servers\"",
            "\"x:1\"",
        ),
        (
            "[output.kafka.properties]\nacks = \"1\"\n",
            "output.kafka.properties.\"acks\"",
            "\"1\"",
        ),
        (
            "[output.elasticsearch]\nurls = [\"es:9200\"]\n",
            "output.elasticsearch.urls",
            "\"es:9200\"",
        ),
        (
            "[output.elasticsearch]\nindex_prefix = \"Flows\"\n",
            "output.elasticsearch.index_prefix",
            "\"Flows\"",
        ),
        ("[log]\nlevel = \"loud\"\n", "log.level", "\"loud\""),
        (
            "[log]\nlevel = \"ferroflow=loud\"\n",
            "log.level",
            "\"ferroflow=loud\"",
        ),
        ("[cpu]\ncores = \"\"\n", "cpu.cores", "\"\""),
    ];
    for (text, field, value) in cases {
        let (f, v, reason) = invalid_field(Config::from_toml_str(text));
        assert_eq!((&f[..], &v[..]), (*field, *value), "{text}");
        assert!(!reason.is_empty());
    }
    let msg = Config::from_toml_str("[collector]\nrecv_batch = 0\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "invalid collector.recv_batch = 0: must be between 1 and 1024 (recvmmsg's limit)"
    );
}

#[test]
fn weaker_acks_allowed_without_idempotence() {
    let c = Config::from_toml_str(
        "[output.kafka.properties]\nacks = \"1\"\n\"enable.idempotence\" = \"false\"\n",
    )
    .unwrap();
    assert_eq!(c.output.kafka.client_properties()["acks"], "1");
}

#[test]
fn valid_log_directives() {
    for level in [
        "debug",
        "info,ferroflow_engine=debug",
        "warn,rdkafka=off",
        "ferroflow_io=trace",
    ] {
        let text = format!("[log]\nlevel = \"{level}\"\n");
        Config::from_toml_str(&text).unwrap();
    }
}

#[test]
fn kafka_defaults_merge_user_wins() {
    let mut user = BTreeMap::new();
    user.insert("linger.ms".to_string(), "50".to_string());
    user.insert("client.id".to_string(), "collector-7".to_string());
    let p = kafka_default_properties(&user);
    assert_eq!(p["acks"], "all");
    assert_eq!(p["enable.idempotence"], "true");
    assert_eq!(p["compression.type"], "lz4");
    assert_eq!(p["linger.ms"], "50");
    assert_eq!(p["batch.size"], "1000000");
    assert_eq!(p["queue.buffering.max.kbytes"], "1048576");
    assert_eq!(p["message.timeout.ms"], "300000");
    assert_eq!(p["retry.backoff.ms"], "100");
    assert_eq!(p["client.id"], "collector-7");
    assert_eq!(p.len(), KAFKA_DEFAULT_PROPERTIES.len() + 1);
    let k = KafkaConfig {
        properties: user,
        ..KafkaConfig::default()
    };
    let all = k.client_properties();
    assert_eq!(all["bootstrap.servers"], "127.0.0.1:9092");
    assert_eq!(all["linger.ms"], "50");
}

#[test]
fn env_overrides() {
    let mut c = Config::default();
    let applied = c
        .apply_env_overrides([
            ("FERROFLOW_OUTPUT_KAFKA_BROKERS", "k1:9092,k2:9092"),
            ("FERROFLOW_COLLECTOR_WORKERS", "4"),
            ("FERROFLOW_OUTPUT_KIND", "kafka"),
            ("FERROFLOW_COLLECTOR_LISTEN", "[::]:2055, 0.0.0.0:6343"),
            ("FERROFLOW_COLLECTOR_SOCKET_RCVBUF_BYTES", "64MiB"),
            ("FERROFLOW_COLLECTOR_RING_FULL", "drop"),
            ("FERROFLOW_DECODER_ALLOW_EXPORTERS", "10.0.0.0/8,192.0.2.1"),
            (
                "FERROFLOW_DECODER_TEMPLATE_STORE",
                "/var/lib/ferroflow/t.json",
            ),
            ("FERROFLOW_OUTPUT_KAFKA_TOPICS_NETFLOW_V9", "nf9"),
            ("FERROFLOW_OUTPUT_KAFKA_PROPERTIES_LINGER_MS", "10"),
            ("FERROFLOW_CPU_CORES", "2-5"),
            ("FERROFLOW_CPU_PINNING", "off"),
            ("FERROFLOW_LOG_LEVEL", "debug"),
            ("FERROFLOW_CONFIG", "/etc/ferroflow.toml"),
            ("PATH", "/usr/bin"),
        ])
        .unwrap();
    assert_eq!(c.output.kafka.brokers, ["k1:9092", "k2:9092"]);
    assert_eq!(c.collector.workers, Some(4));
    assert_eq!(c.output.kind, OutputKind::Kafka);
    assert_eq!(c.collector.listen.len(), 2);
    assert!(c.collector.listen[0].is_ipv6());
    assert_eq!(c.collector.socket_rcvbuf_bytes, 64 << 20);
    assert_eq!(c.collector.ring_full, FullPolicy::Drop);
    assert!(c
        .decoder
        .allow_exporters
        .contains("192.0.2.1".parse::<IpAddr>().unwrap()));
    assert!(!c
        .decoder
        .allow_exporters
        .contains("192.0.2.2".parse::<IpAddr>().unwrap()));
    assert_eq!(c.output.kafka.topics.netflow_v9, "nf9");
    assert_eq!(c.output.kafka.properties["linger.ms"], "10");
    assert_eq!(c.cpu.cores.as_ref().unwrap().to_string(), "2-5");
    assert!(!c.cpu.pinning);
    assert_eq!(c.log.level, "debug");
    assert!(applied.contains(&"output.kafka.brokers".to_string()));
    assert!(applied.contains(&"output.kafka.properties.linger.ms".to_string()));
    assert_eq!(applied.len(), 13);
    c.validate().unwrap();

    // Clearing optional fields.
    c.apply_env_overrides([
        ("FERROFLOW_COLLECTOR_WORKERS", "auto"),
        ("FERROFLOW_CPU_CORES", ""),
    ])
    .unwrap();
    assert_eq!(c.collector.workers, None);
    assert_eq!(c.cpu.cores, None);
}

#[test]
fn env_errors_name_the_variable() {
    for (var, value, needle) in [
        (
            "FERROFLOW_COLLECTOR_WORKRES",
            "4",
            "no such configuration field",
        ),
        ("FERROFLOW_COLLECTOR_WORKERS", "four", "auto"),
        (
            "FERROFLOW_COLLECTOR_SPLIT_RECEIVE_DECODE",
            "maybe",
            "true or false",
        ),
        ("FERROFLOW_OUTPUT_KIND", "s3", "s3"),
        ("FERROFLOW_COLLECTOR_LISTEN", "0.0.0.0", "socket address"),
        ("FERROFLOW_DECODER_ALLOW_EXPORTERS", "10.0.0.0/40", "40"),
        ("FERROFLOW_CPU_CORES", "x", "x"),
        ("FERROFLOW_OUTPUT_KAFKA_PROPERTIES_", "1", "property name"),
    ] {
        let mut c = Config::default();
        match c.apply_env_overrides([(var, value)]) {
            Err(ConfigError::Env {
                var: v,
                value: val,
                reason,
            }) => {
                assert_eq!((v.as_str(), val.as_str()), (var, value));
                assert!(reason.contains(needle), "{var}: {reason}");
            }
            other => panic!("{var}: expected an Env error, got {other:?}"),
        }
    }
}

#[test]
fn every_key_has_an_env_variable() {
    let samples: BTreeMap<&str, &str> = [
        ("collector.listen", "0.0.0.0:2055"),
        ("collector.allow_shared_port", "true"),
        ("collector.workers", "2"),
        ("collector.split_receive_decode", "true"),
        ("collector.decode_threads", "2"),
        ("collector.recv_batch", "32"),
        ("collector.recv_coalesce_us", "200"),
        ("collector.socket_rcvbuf_bytes", "8MiB"),
        ("collector.ring_capacity", "64"),
        ("collector.ring_full", "drop"),
        ("collector.input", "af_packet"),
        ("collector.interface", "eth0"),
        ("collector.queue", "1"),
        ("decoder.scale_sampling", "yes"),
        ("decoder.template_timeout_secs", "60"),
        ("decoder.max_templates_per_exporter", "16"),
        ("decoder.max_exporters", "16"),
        ("decoder.max_exporters_per_ip", "4"),
        ("decoder.max_domains_per_exporter", "4"),
        ("decoder.max_state_bytes_per_exporter", "1MiB"),
        ("decoder.max_state_bytes_total", "8MiB"),
        ("decoder.max_held_bytes_per_exporter", "1KiB"),
        ("decoder.max_held_bytes_total", "1MiB"),
        ("decoder.max_hold_secs", "5"),
        ("decoder.max_records_per_datagram", "100"),
        ("decoder.max_past_secs", "60"),
        ("decoder.max_future_secs", "60"),
        ("decoder.template_store", "/tmp/t.json"),
        ("decoder.allow_exporters", "10.0.0.0/8"),
        ("output.kind", "file"),
        ("output.path", "/tmp/flows.json"),
        ("output.kafka.brokers", "k:9092"),
        ("output.kafka.topics.netflow_v5", "a"),
        ("output.kafka.topics.netflow_v9", "b"),
        ("output.kafka.topics.ipfix", "c"),
        ("output.kafka.topics.sflow", "d"),
        ("output.kafka.queue_full", "drop"),
        ("output.kafka.properties.<name>", ""),
        ("output.elasticsearch.urls", "http://es:9200"),
        ("output.elasticsearch.index_prefix", "flows"),
        ("output.elasticsearch.username", "ff"),
        ("output.elasticsearch.password", "secret"),
        ("output.elasticsearch.api_key", "a2V5"),
        ("output.elasticsearch.ca", "/etc/ferroflow/ca.pem"),
        ("output.elasticsearch.gzip", "true"),
        ("output.elasticsearch.max_docs", "100"),
        ("output.elasticsearch.max_bytes", "1000"),
        ("output.elasticsearch.flush_interval_ms", "50"),
        ("output.elasticsearch.queue_full", "drop"),
        ("output.elasticsearch.install_template", "false"),
        ("metrics.listen", "[::1]:9102"),
        ("log.level", "warn"),
        ("cpu.pinning", "false"),
        ("cpu.cores", "1"),
        ("cpu.reserve_softirq_core", "0"),
    ]
    .into_iter()
    .collect();
    let mut c = Config::default();
    for key in CONFIG_KEYS {
        let sample = samples
            .get(key)
            .unwrap_or_else(|| panic!("no sample for {key}"));
        if key.ends_with('>') {
            continue;
        }
        let before = c.clone();
        c.apply_env_overrides([(env_var_name(key), *sample)])
            .unwrap();
        assert_ne!(c, before, "{key} had no effect");
    }
    assert_eq!(samples.len(), CONFIG_KEYS.len());
    c.validate().unwrap();
    assert_eq!(
        env_var_name("output.kafka.brokers"),
        "FERROFLOW_OUTPUT_KAFKA_BROKERS"
    );
}

#[test]
fn from_sources_and_load() {
    let dir = std::env::temp_dir().join(format!("ferroflow-tuning-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ferroflow.toml");
    std::fs::write(
        &path,
        "[collector]\nworkers = 3\n[output]\nkind = \"file\"\n",
    )
    .unwrap();
    // The file alone is invalid (file output without a path); the environment completes it.
    assert!(Config::load(&path).is_err());
    let c = Config::from_sources(Some(&path), [("FERROFLOW_OUTPUT_PATH", "/tmp/x.json")]).unwrap();
    assert_eq!(c.collector.workers, Some(3));
    assert_eq!(c.output.path, Some(PathBuf::from("/tmp/x.json")));
    let missing = dir.join("nope.toml");
    let e = Config::load(&missing).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().contains("nope.toml"));
    let d = Config::from_sources(None, std::iter::empty::<(String, String)>()).unwrap();
    assert_eq!(d, Config::default());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serialize_round_trip() {
    let text = Config::default().to_toml_string();
    assert_eq!(Config::from_toml_str(&text).unwrap(), Config::default());
    let mut c = Config::default();
    c.collector.workers = Some(2);
    c.cpu.cores = Some(crate::CpuSet::parse_list("1-2").unwrap());
    c.decoder.allow_exporters = crate::AllowList::parse(&["10.0.0.0/8"]).unwrap();
    c.output
        .kafka
        .properties
        .insert("linger.ms".into(), "9".into());
    let text = c.to_toml_string();
    assert_eq!(Config::from_toml_str(&text).unwrap(), c, "{text}");
}

const EXAMPLE: &str = include_str!("../../../ferroflow.example.toml");
const DOC: &str = include_str!("../../../docs/configuration.md");

#[test]
fn example_file_is_the_defaults() {
    assert_eq!(Config::from_toml_str(EXAMPLE).unwrap(), Config::default());
}

#[test]
fn every_key_is_documented() {
    for key in CONFIG_KEYS {
        let leaf = key.rsplit('.').next().unwrap();
        if !key.ends_with('>') {
            assert!(
                EXAMPLE.contains(&format!("{leaf} =")),
                "{key} missing from the example"
            );
        }
        assert!(
            DOC.contains(&format!("`{key}`")),
            "{key} missing from docs/configuration.md"
        );
        assert!(
            DOC.contains(&env_var_name(key.trim_end_matches(".<name>"))),
            "{key} env var"
        );
    }
    for (name, value) in KAFKA_DEFAULT_PROPERTIES {
        assert!(
            DOC.contains(&format!("`{name}`")),
            "{name} missing from the doc"
        );
        assert!(DOC.contains(value), "{name}={value} missing from the doc");
        assert!(EXAMPLE.contains(name), "{name} missing from the example");
    }
}
