//! A minimal scrape of the collector's Prometheus endpoint: a plain HTTP/1.0 GET over a
//! loopback TCP connection (bounded by timeouts) and a parser of the text format.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `GET path` on `addr`; returns (status, body). Every step is bounded by `timeout`.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::with_capacity(64 * 1024);
    // bounded: at most 64 MB
    s.take(64 << 20).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

/// One scrape: every sample as (name, labels text, value).
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    samples: Vec<(String, String, f64)>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = match line.rsplit_once(' ') {
                Some(x) => x,
                None => continue,
            };
            let Ok(v) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.find('{') {
                Some(i) => (&series[..i], series[i + 1..].trim_end_matches('}')),
                None => (series, ""),
            };
            samples.push((name.to_string(), labels.to_string(), v));
        }
        Scrape { samples }
    }

    /// Fetches and parses `http://addr/metrics`.
    pub fn fetch(addr: SocketAddr, timeout: Duration) -> std::io::Result<Scrape> {
        let (status, body) = http_get(addr, "/metrics", timeout)?;
        if status != 200 {
            return Err(std::io::Error::other(format!("/metrics answered {status}")));
        }
        Ok(Scrape::parse(&body))
    }

    /// Sum of every series of `name` (all labels).
    pub fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| v)
            .sum()
    }

    /// Sum of the series of `name` that carry `label="value"`.
    pub fn sum_with(&self, name: &str, label: &str, value: &str) -> f64 {
        let want = format!("{label}=\"{value}\"");
        self.samples
            .iter()
            .filter(|(n, l, _)| n == name && l.split(',').any(|kv| kv == want))
            .map(|(_, _, v)| v)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_collectors_exposition() {
        let m = ferroflow_engine::metrics::Metrics::new(2);
        m.workers[0]
            .packets
            .store(5, std::sync::atomic::Ordering::Relaxed);
        m.workers[1]
            .packets
            .store(7, std::sync::atomic::Ordering::Relaxed);
        let s = Scrape::parse(&m.render());
        assert_eq!(s.sum("ferroflow_packets_received_total"), 12.0);
        assert_eq!(
            s.sum_with("ferroflow_packets_received_total", "worker", "1"),
            7.0
        );
        assert_eq!(
            s.sum_with("ferroflow_records_total", "protocol", "ipfix"),
            0.0
        );
        assert_eq!(s.sum("ferroflow_up"), 1.0);
        assert_eq!(s.sum("nothing_like_it"), 0.0);
        let q = Scrape::parse("ferroflow_latency_seconds{quantile=\"0.99\"} 0.0015\n");
        assert_eq!(
            q.sum_with("ferroflow_latency_seconds", "quantile", "0.99"),
            0.0015
        );
    }
}
