//! Text timestamps: any string parses to a time or to None, in every zone.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        hyflow::tools::fuzzing::text_time(text);
    }
});
