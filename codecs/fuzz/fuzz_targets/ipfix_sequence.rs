//! Several datagrams, version forced to IPFIX (message length set to the datagram's
//! unless the input says otherwise), through one decoder.
//! Input format and checks: `codecs/fuzz/src/lib.rs`.
#![no_main]

use ferroflow_codecs_fuzz::Target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| Target::IpfixSequence.run(data));
