//! One session's message handling over arbitrary scripts (text of every message type with
//! random fields, invalid UTF-8, binary, pings, published events): never a panic, and the
//! session's invariants hold (`wifi_densepose::server::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wifi_densepose::server::fuzzing::session_messages(data);
});
