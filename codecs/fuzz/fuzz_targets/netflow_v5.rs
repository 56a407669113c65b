//! One datagram with its version forced to NetFlow v5, through a fresh decoder.
//! Input format and checks: `codecs/fuzz/src/lib.rs`.
#![no_main]

use ferroflow_codecs_fuzz::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| Target::NetflowV5.run(data));
