//! The registry's parsers: a registry topic message (key, value, effective-time header split at
//! NUL bytes) decodes or says why, and a decoded one reads back from its change-log line; the
//! same bytes as a change-log line and as a TOML registry file parse or give a located error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hyflow::tools::fuzzing::registry(data);
});
