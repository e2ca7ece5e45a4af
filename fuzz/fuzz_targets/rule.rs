//! The rule language: any expression parses or gives a located error; a parsed rule evaluates.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        hyflow::tools::fuzzing::rule(text);
    }
});
