//! Kafka message decoding: any payload, in every format, decodes or is a reasoned error.
#![no_main]
use libfuzzer_sys::fuzz_target;

static QUIET: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    // libfuzzer-sys's panic hook aborts on every panic, also one that hyflow catches (arrow-ipc
    // panics on some damaged streams; the decoder turns that into an undecodable message). A
    // panic that escapes `kafka_message` is still caught by libfuzzer-sys and is a crash.
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    hyflow::tools::fuzzing::kafka_message(data);
});
