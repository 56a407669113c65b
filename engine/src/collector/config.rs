//! From the configuration (`ferroflow_tuning::Config`, after the file, the environment and the
//! command line) and the core plan to the collector's [`CollectorSettings`]: the one place
//! where configuration keys become runtime settings.

use std::sync::Arc;
use std::time::Duration;

use ferroflow_codecs::json::EncodeOptions;
use ferroflow_codecs::DecoderConfig;
use ferroflow_io::afxdp::XdpMode;
use ferroflow_tuning::{Config, CorePlan, InputKind};

use super::{AllowFn, CollectorError, CollectorSettings, InputSource, WorkerSpec};

impl CollectorSettings {
    /// The settings `cfg` and `plan` describe. `xdp_mode` is where an AF_XDP program runs
    /// (a command-line choice; ignored by the other inputs). Fails when a bypass input has no
    /// interface (`Config::validate` refuses that already).
    pub fn from_config(
        cfg: &Config,
        plan: &CorePlan,
        xdp_mode: XdpMode,
    ) -> Result<CollectorSettings, CollectorError> {
        let c = &cfg.collector;
        let workers = plan
            .workers
            .iter()
            .map(|w| WorkerSpec {
                recv_core: if plan.pinned { w.recv_core } else { None },
                decode_core: if plan.pinned { w.decode_core } else { None },
            })
            .collect();
        let allow = if cfg.decoder.allow_exporters.is_empty() {
            None
        } else {
            let list = cfg.decoder.allow_exporters.clone();
            Some(Arc::new(move |ip| list.contains(ip)) as AllowFn)
        };
        Ok(CollectorSettings {
            listen: c.listen.clone(),
            workers,
            split: plan.split,
            ring_capacity: c.ring_capacity,
            ring_full: c.ring_full,
            recv_batch: c.recv_batch,
            recv_coalesce: Duration::from_micros(c.recv_coalesce_us),
            socket_rcvbuf_bytes: Some(c.socket_rcvbuf_bytes as usize),
            decoder: decoder_config(&cfg.decoder),
            encode: EncodeOptions::default(),
            template_store: cfg.decoder.template_store.clone(),
            allow,
            input: input_source(cfg, xdp_mode)?,
            allow_shared_port: c.allow_shared_port,
            ..CollectorSettings::default()
        })
    }
}

/// The decoder's settings from `[decoder]`.
pub fn decoder_config(d: &ferroflow_tuning::DecoderConfig) -> DecoderConfig {
    DecoderConfig {
        scale_sampling: d.scale_sampling,
        template_timeout_ms: d.template_timeout_secs * 1000,
        max_templates_per_exporter: d.max_templates_per_exporter,
        max_exporters: d.max_exporters,
        max_exporters_per_ip: d.max_exporters_per_ip,
        max_domains_per_exporter: d.max_domains_per_exporter,
        max_state_bytes_per_exporter: d.max_state_bytes_per_exporter as usize,
        max_state_bytes_total: d.max_state_bytes_total as usize,
        max_held_bytes_per_exporter: d.max_held_bytes_per_exporter as usize,
        max_held_bytes_total: d.max_held_bytes_total as usize,
        max_hold_ms: d.max_hold_secs * 1000,
        max_records_per_datagram: d.max_records_per_datagram,
        max_past_ms: d.max_past_secs.saturating_mul(1000),
        max_future_ms: d.max_future_secs.saturating_mul(1000),
    }
}

/// Where packets come from: `collector.input`, `collector.interface`, `collector.queue`.
fn input_source(cfg: &Config, xdp_mode: XdpMode) -> Result<InputSource, CollectorError> {
    let c = &cfg.collector;
    let interface = || c.interface.clone().ok_or(CollectorError::NoInterface);
    Ok(match c.input {
        InputKind::Udp => InputSource::Udp,
        InputKind::AfPacket => InputSource::AfPacket {
            interface: interface()?,
        },
        InputKind::AfXdp => InputSource::AfXdp {
            interface: interface()?,
            queue: c.queue,
            mode: xdp_mode,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_tuning::{FullPolicy, Topology};

    fn plan(cfg: &Config) -> CorePlan {
        CorePlan::recommend(&Topology::read(std::path::Path::new("/")), cfg)
    }

    #[test]
    fn every_key_reaches_the_settings() {
        let toml = r#"
            [collector]
            listen = ["127.0.0.1:9995", "[::1]:4739"]
            workers = 1
            recv_batch = 32
            recv_coalesce_us = 200
            socket_rcvbuf_bytes = "8MiB"
            ring_capacity = 16
            ring_full = "drop"
            allow_shared_port = true
            [decoder]
            scale_sampling = true
            template_timeout_secs = 60
            max_templates_per_exporter = 7
            max_exporters = 9
            max_held_bytes_per_exporter = 1000
            max_held_bytes_total = 5000
            max_hold_secs = 3
            max_exporters_per_ip = 5
            max_domains_per_exporter = 6
            max_state_bytes_per_exporter = "2MiB"
            max_state_bytes_total = "16MiB"
            max_records_per_datagram = 100
            max_past_secs = 3600
            max_future_secs = 0
            allow_exporters = ["192.0.2.0/24"]
            template_store = "/tmp/ferroflow-templates.json"
        "#;
        let cfg = Config::from_toml_str(toml).expect("valid config");
        let s = CollectorSettings::from_config(&cfg, &plan(&cfg), XdpMode::Auto).unwrap();
        assert_eq!(s.listen, cfg.collector.listen);
        assert_eq!(s.workers.len(), 1);
        assert_eq!(s.recv_batch, 32);
        assert_eq!(s.recv_coalesce, Duration::from_micros(200));
        assert_eq!(s.socket_rcvbuf_bytes, Some(8 << 20));
        assert_eq!(s.ring_capacity, 16);
        assert_eq!(s.ring_full, FullPolicy::Drop);
        assert!(s.allow_shared_port);
        assert!(s.decoder.scale_sampling);
        assert_eq!(s.decoder.template_timeout_ms, 60_000);
        assert_eq!(s.decoder.max_templates_per_exporter, 7);
        assert_eq!(s.decoder.max_exporters, 9);
        assert_eq!(s.decoder.max_held_bytes_per_exporter, 1000);
        assert_eq!(s.decoder.max_held_bytes_total, 5000);
        assert_eq!(s.decoder.max_hold_ms, 3000);
        assert_eq!(s.decoder.max_exporters_per_ip, 5);
        assert_eq!(s.decoder.max_domains_per_exporter, 6);
        assert_eq!(s.decoder.max_state_bytes_per_exporter, 2 << 20);
        assert_eq!(s.decoder.max_state_bytes_total, 16 << 20);
        assert_eq!(s.decoder.max_records_per_datagram, 100);
        assert_eq!(s.decoder.max_past_ms, 3_600_000);
        assert_eq!(s.decoder.max_future_ms, 0);
        assert_eq!(
            s.template_store.as_deref(),
            Some(std::path::Path::new("/tmp/ferroflow-templates.json"))
        );
        let allow = s.allow.expect("an allow-list");
        assert!(allow("192.0.2.7".parse().unwrap()));
        assert!(!allow("198.51.100.1".parse().unwrap()));
        assert_eq!(s.input, InputSource::Udp);
    }

    #[test]
    fn defaults_accept_any_exporter_on_udp() {
        let cfg = Config::default();
        let s = CollectorSettings::from_config(&cfg, &plan(&cfg), XdpMode::Auto).unwrap();
        assert!(s.allow.is_none());
        assert!(!s.allow_shared_port);
        assert_eq!(s.ring_full, FullPolicy::Block);
        assert_eq!(s.input, InputSource::Udp);
    }

    #[test]
    fn bypass_inputs_take_the_interface_and_mode() {
        let mut cfg = Config::default();
        cfg.collector.input = InputKind::AfXdp;
        cfg.collector.interface = Some("veth0".into());
        cfg.collector.queue = Some(2);
        let s = CollectorSettings::from_config(&cfg, &plan(&cfg), XdpMode::Skb).unwrap();
        assert_eq!(
            s.input,
            InputSource::AfXdp {
                interface: "veth0".into(),
                queue: Some(2),
                mode: XdpMode::Skb
            }
        );
        cfg.collector.interface = None;
        assert!(matches!(
            CollectorSettings::from_config(&cfg, &plan(&cfg), XdpMode::Auto),
            Err(CollectorError::NoInterface)
        ));
    }
}
