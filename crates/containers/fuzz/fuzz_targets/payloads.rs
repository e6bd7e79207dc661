//! Vendor payloads (DCSA IoT events, UN/CEFACT readings) and MQTT topics on arbitrary bytes:
//! no panic, and every report that parses is a valid observation once a device is given.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [containers::Format::Dcsa, containers::Format::Uncefact] {
        if let Ok(reports) = containers::parse(format, data) {
            for r in reports {
                r.reading
                    .validate()
                    .expect("a parsed report is a valid reading");
            }
        }
    }
    if let Ok(topic) = std::str::from_utf8(data) {
        let _ = containers::parse_topic("sealwatch/containers", topic);
    }
});
