//! Synthetic flows: a small deterministic PRNG and flows that look like a router's (private
//! and documentation address ranges, well-known and ephemeral ports, TCP/UDP/ICMP mix).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferroflow_codecs::encode::FlowRepr;

/// xorshift64*: fast, deterministic, good enough for test traffic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

const SERVICE_PORTS: [u16; 8] = [443, 80, 53, 22, 123, 3306, 8080, 25];

/// One synthetic flow ending `age_ms` before `now_ms`.
pub fn flow(rng: &mut Rng, v6: bool, now_ms: u64, sampler_id: u16) -> FlowRepr {
    let r = rng.next_u64();
    let (src, dst, nh) = if v6 {
        let a = |x: u64| {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0x0db8,
                (x >> 48) as u16,
                (x >> 32) as u16,
                0,
                0,
                (x >> 16) as u16,
                x as u16 | 1,
            ))
        };
        (a(r), a(rng.next_u64()), a(0xffff))
    } else {
        let s = Ipv4Addr::new(10, (r >> 8) as u8, (r >> 16) as u8, (r >> 24) as u8 | 1);
        let d = Ipv4Addr::new(
            172,
            16 + (r >> 32) as u8 % 16,
            (r >> 40) as u8,
            (r >> 48) as u8 | 1,
        );
        (
            IpAddr::V4(s),
            IpAddr::V4(d),
            IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1)),
        )
    };
    let kind = rng.below(100);
    let (protocol, sport, dport, flags) = if kind < 70 {
        let svc = SERVICE_PORTS[rng.below(SERVICE_PORTS.len() as u64) as usize];
        (6u8, 32768 + rng.below(28000) as u16, svc, 0x1b)
    } else if kind < 97 {
        (17, 32768 + rng.below(28000) as u16, 53, 0)
    } else {
        (1, 0, 0x0800, 0)
    };
    let packets = 1 + rng.below(200);
    let octets = packets * (40 + rng.below(1400));
    let age = 1_000 + rng.below(30_000);
    let dur = rng.below(60_000);
    let end = now_ms.saturating_sub(age);
    FlowRepr {
        src_addr: src,
        dst_addr: dst,
        next_hop: nh,
        src_port: sport,
        dst_port: dport,
        protocol,
        tcp_flags: flags,
        tos: 0,
        octets,
        packets,
        input: 1 + rng.below(48) as u32,
        output: 1 + rng.below(48) as u32,
        start_ms: end.saturating_sub(dur),
        end_ms: end,
        src_as: 64512 + rng.below(1000) as u32,
        dst_as: 64512 + rng.below(1000) as u32,
        src_mask: if v6 { 48 } else { 24 },
        dst_mask: if v6 { 64 } else { 16 },
        direction: (r & 1) as u8,
        sampler_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_well_formed() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            let fa = flow(&mut a, false, 1_700_000_000_000, 0);
            assert_eq!(fa, flow(&mut b, false, 1_700_000_000_000, 0));
            assert!(fa.start_ms <= fa.end_ms && fa.end_ms < 1_700_000_000_000);
            assert!(fa.packets >= 1 && fa.octets >= 40 * fa.packets);
        }
        assert!(flow(&mut a, true, 1_700_000_000_000, 0).src_addr.is_ipv6());
    }
}
