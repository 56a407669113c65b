//! Inputs the fuzzers once crashed on, replayed under `cargo test`.
//!
//! Every file under `codecs/fuzz/regressions/<target>/` goes through the same harness as the
//! fuzz target `<target>` (the harness source is included from the fuzz crate, so the datagram
//! split, the forced version fields and the checks are the ones the fuzzer ran): a fresh
//! `Decoder` per input, `Decoder::decode` on each datagram, every record encoded to JSON. It
//! must not panic. Each file is also fed as one datagram, as it is, to a fresh decoder.
//!
//! To add one: `cp codecs/fuzz/artifacts/<target>/crash-... codecs/fuzz/regressions/<target>/`
//! (scripts/fuzz.sh prints the command when a target crashes).
//!
//! Two inputs once stalled a decoder (found by reading the code, fixed in c88d3c2); they are
//! kept with checks of what made them slow, not of time: `decode_any/ipfix-template-1024-
//! duplicate-fields` is replayed with the others (its duplicate names are checked by the
//! decoder's unit test `a_template_repeating_one_element_gets_unique_names`), and
//! [`empty_data_sets_are_not_held`] builds the other.

use std::path::{Path, PathBuf};

use ferroflow_codecs::{Decoder, DecoderConfig};

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod harness;

/// The saved inputs of `target`, sorted.
fn saved(target: harness::Target) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target.name());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            p.is_file() && name != ".gitkeep"
        })
        .collect();
    files.sort();
    files
}

#[test]
fn saved_fuzz_inputs_do_not_panic() {
    let mut replayed = 0;
    for target in harness::Target::ALL {
        for path in saved(target) {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path.display().to_string();
            // as the fuzz target saw it
            let r = std::panic::catch_unwind(|| target.run(&data));
            assert!(r.is_ok(), "{name}: the {} harness panicked", target.name());
            // and as one datagram, unchanged
            let mut d = Decoder::new(DecoderConfig::default());
            let r = std::panic::catch_unwind(move || {
                let _ = d.decode(harness::exporter(0), harness::START_NS, &data, &mut |_| {});
            });
            assert!(r.is_ok(), "{name}: Decoder::decode panicked");
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} saved fuzz inputs");
}

/// Data sets with an empty body (4 bytes on the wire) for an unknown template are not held:
/// held, they cost nothing in the held-byte bounds, so 20 datagrams held 327 580 of them, and
/// releasing them took O(n^2) (20 s for eight datagrams).
#[test]
fn empty_data_sets_are_not_held() {
    let (held, after) = held_empty_data_sets(4);
    assert_eq!(held, 0, "empty data sets were held");
    assert_eq!(after, 0);
}

/// `datagrams` IPFIX messages full of empty data sets for templates 300 and 301 in turn, then
/// the template 300: decoded by one decoder; how many sets were held before the template, and
/// after it.
fn held_empty_data_sets(datagrams: usize) -> (usize, usize) {
    let ipfix = |sets: &[u8]| {
        let mut m = vec![0, 10];
        m.extend_from_slice(&((16 + sets.len()) as u16).to_be_bytes());
        m.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(sets);
        m
    };
    let mut empty = Vec::new();
    for i in 0..(65_535 - 16) / 4 {
        empty.extend_from_slice(&(300 + (i % 2) as u16).to_be_bytes());
        empty.extend_from_slice(&4u16.to_be_bytes());
    }
    let empty = ipfix(&empty);
    // template 300: sourceIPv4Address
    let template = ipfix(&[0, 2, 0, 12, 1, 44, 0, 1, 0, 8, 0, 4]);
    let mut d = Decoder::new(DecoderConfig::default());
    for _ in 0..datagrams {
        let _ = d.decode(harness::exporter(0), harness::START_NS, &empty, &mut |_| {});
    }
    let held = d.held_sets_pending();
    let _ = d.decode(
        harness::exporter(0),
        harness::START_NS,
        &template,
        &mut |_| {},
    );
    (held, d.held_sets_pending())
}
