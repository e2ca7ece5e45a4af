//! Kafka message decoding: any payload, in every format, decodes or is a reasoned error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hyflow::fuzzing::kafka_message(data);
});
