//! One datagram, as it is, through a fresh decoder; every record encoded to JSON.
//! Input format and checks: `codecs/fuzz/src/lib.rs`.
#![no_main]

use ferroflow_codecs_fuzz::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| Target::DecodeAny.run(data));
