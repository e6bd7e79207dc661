//! No input panics the decoders: arbitrary bytes, and arbitrary JSON shaped like the payloads.

use containers::{Format, parse, parse_topic};
use proptest::prelude::*;
use serde_json::Value;

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>()
            .prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        any::<i64>().prop_map(|x| Value::Number(x.into())),
        prop_oneof![
            Just("CSQU3054383".to_owned()),
            Just("2026-11-25T08:00:00Z".to_owned()),
            Just("DRO".to_owned()),
            Just("LOC".to_owned()),
            Just("IOT".to_owned()),
            Just("OPEN".to_owned()),
            Just("FAH".to_owned()),
            Just("95.5".to_owned()),
            ".*",
        ]
        .prop_map(Value::String),
    ];
    let keys = prop_oneof![
        Just("eventDateTime"),
        Just("eventTime"),
        Just("equipmentReference"),
        Just("equipmentId"),
        Just("equipmentDetails"),
        Just("iotDetails"),
        Just("iotEventCode"),
        Just("eventType"),
        Just("eventClassification"),
        Just("eventClassifierCode"),
        Just("eventLocation"),
        Just("geoCoordinate"),
        Just("latitude"),
        Just("longitude"),
        Just("geoLocation"),
        Just("doorStatus"),
        Just("temperature"),
        Just("value"),
        Just("unit"),
        Just("humidity"),
        Just("tamper"),
        Just("deviceId"),
        Just("deviceReference"),
        Just("batteryLevel"),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone().prop_map(str::to_owned), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(Format::Dcsa, &bytes);
        let _ = parse(Format::Uncefact, &bytes);
        let _ = parse_topic("p", &String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_json_never_panics_and_readings_are_valid(v in json()) {
        let bytes = serde_json::to_vec(&v).expect("serialises");
        for format in [Format::Dcsa, Format::Uncefact] {
            match parse(format, &bytes) {
                Ok(reports) => for r in reports {
                    prop_assert!(r.reading.validate().is_ok());
                },
                Err(e) => prop_assert!(!e.field.is_empty() && !e.reason.is_empty()),
            }
        }
    }
}
