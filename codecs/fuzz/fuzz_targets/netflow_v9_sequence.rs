//! Several datagrams, version forced to NetFlow v9, through one decoder (templates and
//! options data of earlier datagrams apply to later ones).
//! Input format and checks: `codecs/fuzz/src/lib.rs`.
#![no_main]

use ferroflow_codecs_fuzz::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| Target::NetflowV9Sequence.run(data));
