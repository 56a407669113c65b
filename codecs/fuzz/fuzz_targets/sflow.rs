//! One datagram with its version forced to sFlow v5, through a fresh decoder (the sFlow
//! decoder is reached through `Decoder::decode`, which dispatches on the version).
//! Input format and checks: `codecs/fuzz/src/lib.rs`.
#![no_main]

use ferroflow_codecs_fuzz::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| Target::Sflow.run(data));
