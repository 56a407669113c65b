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

use std::path::Path;

use ferroflow_codecs::{Decoder, DecoderConfig};

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod harness;

#[test]
fn saved_fuzz_inputs_do_not_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for target in harness::Target::ALL {
        let dir = root.join(target.name());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
            .collect();
        files.sort();
        for path in files {
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
