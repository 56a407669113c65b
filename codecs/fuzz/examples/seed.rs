//! Write the seed corpora of the fuzz targets from the fixture captures.
//!
//! ```text
//! cargo run --manifest-path codecs/fuzz/Cargo.toml --example seed [-- FIXTURES_DIR OUT_DIR]
//! ```
//!
//! Defaults: `tests/fixtures/corpus` -> `codecs/fuzz/corpus/<target>/`. Every UDP payload of
//! every capture is a seed of `decode_any`; NetFlow v5 and sFlow payloads are seeds of their
//! targets; NetFlow v9 and IPFIX payloads are strung together in file order (windows of up to
//! 32 datagrams and 60 000 bytes) in the sequence format of `src/lib.rs`, each exporter mapped
//! to one of the four the harness knows. A few messages built with the encoders add what the
//! captures lack (IPFIX template withdrawals, options data for sampling, variable-length
//! fields). Files are named by a hash of their content, so running this again adds nothing
//! twice; inputs libFuzzer added to the folders are left alone.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ferroflow_codecs::encode::{ipfix, netflow9, FlowRepr};
use ferroflow_codecs_fuzz::{config, write_sequence, Step, Target};
use ferroflow_io::pcap::PcapReader;

const WINDOW_DATAGRAMS: usize = 32;
const WINDOW_BYTES: usize = 60_000;
/// Windows per capture at most (the big pmacct captures would otherwise dominate).
const WINDOWS_PER_CAPTURE: usize = 8;

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args_os().skip(1);
    let fixtures = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| here.join("../../tests/fixtures/corpus"));
    let out = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| here.join("corpus"));

    let mut captures = Vec::new();
    find_captures(&fixtures, &mut captures)?;
    captures.sort();
    if captures.is_empty() {
        return Err(format!("no .pcap / .pcapng under {}", fixtures.display()).into());
    }

    let mut seeds = Seeds::new(&out)?;
    for path in &captures {
        let mut reader = PcapReader::open(path)?;
        let mut v9 = Vec::new();
        let mut v10 = Vec::new();
        while let Some(dg) = reader.next_datagram() {
            let dg = match dg {
                Ok(dg) => dg,
                Err(e) => {
                    eprintln!("seed: {e} (keeping the datagrams before it)");
                    break;
                }
            };
            let p = dg.payload;
            seeds.add(Target::DecodeAny, p)?;
            let v16 = p.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            let v32 = p
                .get(..4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            if v32 == Some(5) {
                seeds.add(Target::Sflow, p)?;
            } else {
                match v16 {
                    Some(5) => seeds.add(Target::NetflowV5, p)?,
                    Some(9) => v9.push((dg.src, p.to_vec())),
                    Some(10) => v10.push((dg.src, p.to_vec())),
                    _ => {}
                }
            }
        }
        sequences(&mut seeds, Target::NetflowV9Sequence, &v9)?;
        sequences(&mut seeds, Target::IpfixSequence, &v10)?;
    }
    synthetic(&mut seeds)?;

    for t in Target::ALL {
        println!(
            "seed: {:<20} {:>5} seeds ({} new) in {}",
            t.name(),
            seeds.count(t),
            seeds.new_count(t),
            out.join(t.name()).display()
        );
    }
    println!(
        "seed: from {} captures under {}",
        captures.len(),
        fixtures.display()
    );
    Ok(())
}

fn find_captures(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            find_captures(&p, out)?;
        } else if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("pcap" | "pcapng")
        ) {
            out.push(p);
        }
    }
    Ok(())
}

/// Sequence seeds from one capture's datagrams of one protocol, in file order.
fn sequences(
    seeds: &mut Seeds,
    target: Target,
    datagrams: &[(SocketAddr, Vec<u8>)],
) -> Result<(), Error> {
    let mut exporters: HashMap<SocketAddr, u8> = HashMap::new();
    let mut windows = 0;
    let mut steps: Vec<Step<'_>> = Vec::new();
    let mut bytes = 0;
    let mut buf = Vec::new();
    for (src, p) in datagrams {
        let n = exporters.len() as u8;
        let idx = *exporters.entry(*src).or_insert(n) & 3;
        if !steps.is_empty()
            && (steps.len() == WINDOW_DATAGRAMS || bytes + p.len() + 3 > WINDOW_BYTES)
        {
            buf.clear();
            write_sequence(0, &steps, &mut buf);
            seeds.add(target, &buf)?;
            windows += 1;
            steps.clear();
            bytes = 0;
            if windows == WINDOWS_PER_CAPTURE {
                return Ok(());
            }
        }
        steps.push(Step {
            meta: idx,
            payload: p,
        });
        bytes += p.len() + 3;
    }
    if !steps.is_empty() {
        buf.clear();
        write_sequence(0, &steps, &mut buf);
        seeds.add(target, &buf)?;
    }
    Ok(())
}

fn flow(i: u8) -> FlowRepr {
    FlowRepr {
        src_addr: [10, 0, 0, i].into(),
        dst_addr: [192, 0, 2, i].into(),
        next_hop: [10, 255, 0, 1].into(),
        src_port: 40_000 + u16::from(i),
        dst_port: 443,
        protocol: 6,
        tcp_flags: 0x1b,
        octets: 1500 * u64::from(i),
        packets: u64::from(i),
        input: 3,
        output: 5,
        start_ms: 1_699_999_990_000,
        end_ms: 1_700_000_000_000,
        src_as: 64_500,
        dst_as: 64_501,
        src_mask: 24,
        dst_mask: 24,
        direction: 0,
        sampler_id: 1,
        ..FlowRepr::default()
    }
}

fn flow6(i: u8) -> FlowRepr {
    FlowRepr {
        src_addr: "2001:db8::1".parse().expect("literal"),
        dst_addr: "2001:db8::2".parse().expect("literal"),
        next_hop: "2001:db8::ff".parse().expect("literal"),
        ..flow(i)
    }
}

/// Encoder-built sequences for what the captures do not have.
fn synthetic(seeds: &mut Seeds) -> Result<(), Error> {
    use ipfix::templates as it;
    let t4 = it::ipv4_sampled(256);
    let t6 = it::ipv6_basic(257);
    let so = it::sampling_options(258);
    let io = it::interface_options(259);
    let hdr = |sequence| ipfix::HeaderRepr {
        export_time: 1_700_000_000,
        sequence,
        observation_domain: 1,
    };

    // 1: data first (held), then templates + options + data, then a withdrawal and data again
    let mut m1 = Vec::new();
    let mut w = ipfix::Writer::begin(&mut m1, &hdr(0));
    w.begin_data_set(&t4)?;
    w.record_flow(&flow(1))?;
    w.finish()?;
    let mut m2 = Vec::new();
    let mut w = ipfix::Writer::begin(&mut m2, &hdr(1));
    w.set_padding(true);
    w.template_set(&[t4.clone(), t6.clone()])?;
    w.options_template_set(&[so.clone(), io.clone()])?;
    w.begin_options_data_set(&so)?;
    w.record(&it::sampling_values(1, 1, 1, 99))?;
    w.begin_options_data_set(&io)?;
    w.record(&it::interface_values(3, "xe-0/0/0", "uplink \"a\"\n"))?;
    w.begin_data_set(&t4)?;
    for i in 2..6 {
        w.record_flow(&flow(i))?;
    }
    w.begin_data_set(&t6)?;
    w.record_flow(&flow6(7))?;
    w.finish()?;
    let mut m3 = Vec::new();
    let mut w = ipfix::Writer::begin(&mut m3, &hdr(6));
    w.template_withdrawal(&[256])?;
    w.options_template_withdrawal(&[3])?;
    w.begin_data_set(&t4)?;
    w.record_flow(&flow(8))?;
    w.begin_data_set(&t6)?;
    w.record_flow(&flow6(9))?;
    w.finish()?;
    let mut m4 = Vec::new();
    let mut w = ipfix::Writer::begin(&mut m4, &hdr(7));
    w.template_withdrawal(&[2])?;
    w.finish()?;
    let steps = [&m1, &m2, &m3, &m4].map(|m| Step {
        meta: 0,
        payload: m,
    });
    for cfg in [0, config::TIGHT_BOUNDS | config::SCALE_SAMPLING] {
        let mut buf = Vec::new();
        write_sequence(cfg, &steps, &mut buf);
        seeds.add(Target::IpfixSequence, &buf)?;
    }
    for m in [&m1, &m2, &m3, &m4] {
        seeds.add(Target::DecodeAny, m)?;
    }

    // NetFlow v9: options template and sampler data, IPv4 and IPv6 data, two exporters
    use netflow9::templates as nt;
    let v4 = nt::ipv4_sampled(256);
    let v6 = nt::ipv6_basic(257);
    let mut m = Vec::new();
    let h = netflow9::HeaderRepr {
        sys_uptime_ms: 3_600_000,
        unix_secs: 1_700_000_000,
        sequence: 1,
        source_id: 7,
    };
    let mut w = netflow9::Writer::begin(&mut m, &h);
    w.template_set(&[v4.clone(), v6.clone()])?;
    let opts = nt::sampler_options(258);
    w.options_template_set(std::slice::from_ref(&opts))?;
    w.begin_options_data_set(&opts)?;
    w.record(&nt::sampler_values(0, 1, 2, 100))?;
    w.begin_data_set(&v4)?;
    for i in 1..4 {
        w.record_flow(&flow(i))?;
    }
    w.begin_data_set(&v6)?;
    w.record_flow(&flow6(4))?;
    w.finish()?;
    let mut d = Vec::new();
    let mut w = netflow9::Writer::begin(&mut d, &netflow9::HeaderRepr { sequence: 2, ..h });
    w.begin_data_set(&v4)?;
    w.record_flow(&flow(5))?;
    w.finish()?;
    let steps = [
        Step {
            meta: 0,
            payload: &d,
        },
        Step {
            meta: 0,
            payload: &m,
        },
        Step {
            meta: 1,
            payload: &d,
        },
        Step {
            meta: 4,
            payload: &d,
        },
    ];
    let mut buf = Vec::new();
    write_sequence(0, &steps, &mut buf);
    seeds.add(Target::NetflowV9Sequence, &buf)?;
    seeds.add(Target::DecodeAny, &m)?;
    Ok(())
}

struct Seeds {
    dir: PathBuf,
    /// per target: (distinct seeds, of which written now)
    counts: HashMap<&'static str, (usize, usize)>,
    seen: HashSet<PathBuf>,
}

impl Seeds {
    fn new(dir: &Path) -> Result<Seeds, Error> {
        for t in Target::ALL {
            std::fs::create_dir_all(dir.join(t.name()))?;
        }
        Ok(Seeds {
            dir: dir.to_path_buf(),
            counts: HashMap::new(),
            seen: HashSet::new(),
        })
    }

    fn add(&mut self, target: Target, data: &[u8]) -> Result<(), Error> {
        let mut h = DefaultHasher::new();
        data.hash(&mut h);
        let path = self
            .dir
            .join(target.name())
            .join(format!("seed-{:016x}", h.finish()));
        if !self.seen.insert(path.clone()) {
            return Ok(());
        }
        let c = self.counts.entry(target.name()).or_default();
        if !path.exists() {
            std::fs::write(&path, data)?;
            c.1 += 1;
        }
        c.0 += 1;
        Ok(())
    }

    fn count(&self, t: Target) -> usize {
        self.counts.get(t.name()).map_or(0, |c| c.0)
    }

    fn new_count(&self, t: Target) -> usize {
        self.counts.get(t.name()).map_or(0, |c| c.1)
    }
}
