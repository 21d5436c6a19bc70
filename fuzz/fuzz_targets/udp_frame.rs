//! The ESP32 UDP frame decoder over arbitrary datagrams: a frame or an error, never a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = wifi_densepose::csi::udp::decode(data, "fuzz") {
        let _ = frame.frame.csi.len();
    }
});
