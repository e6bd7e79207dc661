//! docs/scenario.schema.json must describe the same fields as the types that read scenarios.

use std::collections::BTreeSet;

fn schema() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/scenario.schema.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn properties(schema: &serde_json::Value, def: &str) -> BTreeSet<String> {
    schema["$defs"][def]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[test]
fn rules_in_schema_match_the_type() {
    // The type refuses unknown rules and lists the ones it knows in its error.
    let err = serde_json::from_str::<model::Rules>(r#"{"no_such_rule": 1}"#)
        .unwrap_err()
        .to_string();
    let known: BTreeSet<String> = err
        .split("expected one of ")
        .nth(1)
        .unwrap()
        .split(", ")
        .map(|s| {
            s.trim_matches(|c: char| c == '`' || c.is_whitespace())
                .split('`')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(properties(&schema(), "rules"), known);
}

#[test]
fn observation_fields_in_schema_match_the_type() {
    let full = r#"{"device": "D1", "t": "2026-11-25T08:00:00Z", "lat": 29.31, "lon": 120.07,
        "fix": true, "accuracy_m": 8, "speed_kmh": 62, "course_deg": 95, "lock": "locked",
        "rope": "intact", "housing": "intact", "door": "closed", "battery_pct": 87,
        "charging": false, "temperature_c": 5.2, "humidity_pct": 60, "shock_g": 0.3,
        "light_lux": 0, "pressure_hpa": 1012, "fuel_pct": 78, "events": ["tamper"], "seq": 1}"#;
    let o: model::Observation = serde_json::from_str(full).unwrap();
    let v = serde_json::to_value(&o).unwrap();
    let fields: BTreeSet<String> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(properties(&schema(), "observation"), fields);
}

#[test]
fn transit_devices_in_schema_match_the_type() {
    // The type refuses unknown fields and lists the ones it knows in its error.
    let err = serde_json::from_str::<model::TransitDevice>(r#"{"id": "D2", "no_such_field": 1}"#)
        .unwrap_err()
        .to_string();
    let known: BTreeSet<String> = err
        .split("expected one of ")
        .nth(1)
        .unwrap()
        .split(", ")
        .map(|s| {
            s.trim_matches(|c: char| c == '`' || c.is_whitespace())
                .split('`')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(properties(&schema(), "transit_device"), known);
    assert!(properties(&schema(), "transit").contains("devices"));
}

#[test]
fn the_contract_example_is_valid() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/contract-example.json"
    );
    let s = scenario::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!((s.zones.len(), s.transits.len()), (4, 2));
}

#[test]
fn unknown_fields_are_reported_with_their_path() {
    let text = r#"{"transits": [{"id": "T1", "device": "D1", "deadlin": "2026-11-25T14:00:00Z"}],
                  "observations": [{"device": "D1", "t": "2026-11-25T08:00:00Z", "lok": "locked"}],
                  "untill": "2026-11-25T16:00:00Z"}"#;
    assert!(
        scenario::parse(text).is_ok(),
        "unknown fields are ignored, not refused"
    );
    assert_eq!(
        scenario::unknown_fields(text),
        ["untill", "transits[0].deadlin", "observations[0].lok"]
    );
}
