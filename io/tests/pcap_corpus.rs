//! Reads every capture of the shared flow-export corpus and checks the counts against an
//! independent parse (pcap-parser for the records, a naive header walk for UDP) and against the
//! totals from the corpus MANIFEST (tshark's packet counts).
//!
//! The corpus lives outside the repository: `FERROFLOW_CORPUS` or `/work/shared/corpus`. The
//! test is skipped (with a note on stderr) when it is absent.

use std::path::{Path, PathBuf};

use ferroflow_io::pcap::{Format, PcapReader};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError};

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FERROFLOW_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/corpus"));
    dir.is_dir().then_some(dir)
}

fn pcaps(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && depth < 4 {
            pcaps(&p, depth + 1, out);
        } else if p.extension().is_some_and(|x| x == "pcap") {
            out.push(p);
        }
    }
}

/// Independent count: (records, UDP datagrams) by pcap-parser plus a naive walk of Ethernet
/// (with VLAN tags) / SLL, IPv4 without fragments, IPv6 with UDP as the first next header.
fn independent_count(path: &Path) -> (u64, u64) {
    let file = std::fs::File::open(path).unwrap();
    let mut rd = LegacyPcapReader::new(1 << 16, file).unwrap();
    let mut linktype = 1;
    let (mut records, mut udp) = (0, 0);
    for _ in 0..1_000_000 {
        match rd.next() {
            Ok((n, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => linktype = h.network.0,
                    PcapBlockOwned::Legacy(b) => {
                        records += 1;
                        let d = b.data;
                        let (mut et, mut off) = match linktype {
                            1 => (u16::from_be_bytes([d[12], d[13]]), 14),
                            113 => (u16::from_be_bytes([d[14], d[15]]), 16),
                            other => panic!("unexpected link type {other} in {}", path.display()),
                        };
                        while linktype == 1 && (et == 0x8100 || et == 0x88a8) {
                            et = u16::from_be_bytes([d[off + 2], d[off + 3]]);
                            off += 4;
                        }
                        let ip = &d[off..];
                        let is_udp = match et {
                            0x0800 => {
                                ip[9] == 17 && u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff == 0
                            }
                            0x86dd => ip[6] == 17,
                            _ => false,
                        };
                        udp += u64::from(is_udp);
                    }
                    _ => {}
                }
                rd.consume(n);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => rd.refill().unwrap(),
            Err(e) => panic!("pcap-parser on {}: {e:?}", path.display()),
        }
    }
    (records, udp)
}

#[test]
fn corpus_counts_match_an_independent_parse() {
    let Some(dir) = corpus_dir() else {
        eprintln!("corpus not found: set FERROFLOW_CORPUS; skipping");
        return;
    };
    let mut files = Vec::new();
    pcaps(&dir, 0, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no .pcap under {}", dir.display());
    let (mut frames, mut udp, mut sll) = (0, 0, 0);
    for path in &files {
        let mut r = PcapReader::open(path).unwrap();
        if let Format::Pcap { linktype: 113, .. } = r.format() {
            sll += 1;
        }
        let mut n = 0u64;
        let mut payload_bytes = 0usize;
        while let Some(d) = r.next_datagram() {
            let d = d.unwrap_or_else(|e| panic!("{e}"));
            assert!(d.ts_ns > 0, "{}", path.display());
            payload_bytes += d.payload.len();
            n += 1;
        }
        let s = r.stats();
        let (want_records, want_udp) = independent_count(path);
        assert_eq!(s.frames, want_records, "records in {}", path.display());
        assert_eq!(s.udp, want_udp, "UDP datagrams in {}", path.display());
        assert_eq!(n, s.udp);
        assert_eq!(
            s.ip_fragments + s.truncated + s.malformed + s.unsupported_linktype,
            0,
            "{s:?}"
        );
        assert!(payload_bytes > 0, "{}", path.display());
        frames += s.frames;
        udp += s.udp;
    }
    eprintln!(
        "{} files: {frames} frames, {udp} UDP datagrams, {sll} SLL",
        files.len()
    );
    // MANIFEST.json of the 127-file corpus: 4722 pcap packets; 3691 packets tshark decoded as
    // flow exports + 5 UDP datagrams of tcpdump/sflow_multiple_counter_30_pdus.pcap it did not.
    if files.len() == 127 {
        assert_eq!((frames, udp, sll), (4722, 3696, 1));
    }
}
