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
//! Files named `slow-*` do not crash but take far too long (a decoder bug to fix): they are
//! left out of the default run and timed by the ignored test [`slow_inputs_finish_quickly`]:
//! `cargo test --release -p ferroflow-codecs --test fuzz_regressions -- --ignored`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferroflow_codecs::{Decoder, DecoderConfig};

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod harness;

/// The saved inputs of `target`, sorted; `slow` selects the `slow-*` ones, else the others.
fn saved(target: harness::Target, slow: bool) -> Vec<PathBuf> {
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
            p.is_file() && name != ".gitkeep" && name.starts_with("slow-") == slow
        })
        .collect();
    files.sort();
    files
}

#[test]
fn saved_fuzz_inputs_do_not_panic() {
    let mut replayed = 0;
    for target in harness::Target::ALL {
        for path in saved(target, false) {
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

/// Inputs that must not stall a decoder: each within a second (build with `--release`).
///
/// Known failures (decoder bugs, reported; remove the `#[ignore]` once fixed):
/// - `decode_any/slow-ipfix-template-1024-duplicate-fields`: one 4 KB IPFIX template of 1024
///   times sourceIPv4Address. `Template::compile` gives duplicate names a `_2`, `_3`... suffix by
///   trying every candidate against every earlier name: O(n^3) string comparisons and O(n^2)
///   `format!`s: 2.5 to 5 s per template here (15 such templates fill one datagram: 76 s).
/// - [`held_empty_data_sets`]: data sets with an empty body (4 bytes on the wire) for an
///   unknown template are held at no cost in the byte bounds, so their number is unbounded,
///   and releasing them when the template comes removes them one by one from the middle of a
///   `VecDeque`: O(n^2). Four 64 KB datagrams, then the template: 3 to 5 s; eight: 20 s.
#[test]
#[ignore = "decoder bugs to fix: run with --release -- --ignored"]
fn slow_inputs_finish_quickly() {
    let limit = Duration::from_secs(1);
    let mut slow = Vec::new();
    for target in harness::Target::ALL {
        for path in saved(target, true) {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let t = Instant::now();
            target.run(&data);
            let took = t.elapsed();
            eprintln!("{}: {took:?}", path.display());
            if took > limit {
                slow.push(format!("{}: {took:?}", path.display()));
            }
        }
    }
    let t = Instant::now();
    let held = held_empty_data_sets(4);
    let took = t.elapsed();
    eprintln!("held_empty_data_sets(4): {took:?}, {held} sets were held");
    if took > limit {
        slow.push(format!(
            "held_empty_data_sets(4): {took:?} ({held} sets held)"
        ));
    }
    assert!(slow.is_empty(), "slower than {limit:?}: {slow:#?}");
}

/// `datagrams` IPFIX messages full of empty data sets for templates 300 and 301 in turn, then
/// the template 300: decoded by one decoder; how many sets were held at most.
fn held_empty_data_sets(datagrams: usize) -> usize {
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
    held
}
