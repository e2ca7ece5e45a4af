//! A pipeline file: any text must give a pipeline or located errors, never a panic or a hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hyflow::tools::fuzzing::pipeline_file(text);
    }
});
