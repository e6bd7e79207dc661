//! The mappings of docs/containers.md: DCSA IoT events and UN/CEFACT readings into readings,
//! and the errors that name what is wrong.

use containers::{Format, ParseError, parse, parse_topic};
use model::{DeviceEvent, DoorState};

fn one(format: Format, json: &str) -> containers::ContainerReport {
    let mut reports = parse(format, json.as_bytes()).expect("parses");
    assert_eq!(reports.len(), 1);
    reports.remove(0)
}

fn error(format: Format, json: &str) -> ParseError {
    parse(format, json.as_bytes()).expect_err("is refused")
}

#[test]
fn dcsa_door_opened_flat_is_a_door_open_reading() {
    let r = one(
        Format::Dcsa,
        r#"{"eventID": "5e51e72c-d872-11ea-811c-0f8f10a32ea1", "eventType": "IOT",
            "eventClassifierCode": "ACT", "eventDateTime": "2026-11-25T10:15:00+02:00",
            "iotEventTypeCode": "DETC", "iotEventCode": "DRO",
            "equipmentReference": "CSQU3054383",
            "eventLocation": {"locationName": "Gate 4", "latitude": "29.31", "longitude": "120.07"},
            "somethingNew": {"ignored": true}}"#,
    );
    assert_eq!(r.container.as_str(), "CSQU3054383");
    assert_eq!(r.reading.t.to_string(), "2026-11-25T08:15:00Z");
    assert_eq!(r.reading.door, Some(DoorState::Open));
    assert_eq!((r.reading.lat, r.reading.lon), (Some(29.31), Some(120.07)));
    assert_eq!(r.device, None);
    assert_eq!(
        r.event_id.as_deref(),
        Some("5e51e72c-d872-11ea-811c-0f8f10a32ea1")
    );
}

#[test]
fn dcsa_3_nested_location_update_and_door_closed() {
    let reports = parse(
        Format::Dcsa,
        br#"[{"eventClassification": {"eventClassifierCode": "ACT"}, "eventType": "IOT",
              "eventDateTime": "2026-11-25T08:00:00Z",
              "equipmentDetails": {"equipmentReference": "CSQU3054383"},
              "iotDetails": {"iotEventTypeCode": "DETC", "iotEventCode": "LOC"},
              "eventLocation": {"geoCoordinate": {"latitude": 29.5, "longitude": 120.5}}},
             {"eventType": "IOT", "eventDateTime": "2026-11-25T08:05:00Z",
              "equipmentReference": "csqu 305438 3", "iotEventCode": "DRC",
              "deviceReference": "TRK-7"}]"#,
    )
    .expect("parses");
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].reading.lat, Some(29.5));
    assert_eq!(reports[0].reading.door, None);
    assert_eq!(reports[1].container.as_str(), "CSQU3054383");
    assert_eq!(reports[1].reading.door, Some(DoorState::Closed));
    assert_eq!(
        reports[1].device.as_ref().map(|d| d.as_str()),
        Some("TRK-7")
    );
}

#[test]
fn dcsa_errors_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"eventType": "EQUIPMENT", "eventDateTime": "2026-11-25T08:00:00Z"}"#,
            "eventType",
            "expected IOT",
        ),
        (
            r#"{"eventClassifierCode": "EST", "eventDateTime": "2026-11-25T08:00:00Z"}"#,
            "eventClassifierCode",
            "ACT",
        ),
        (
            r#"{"eventClassification": {"eventClassifierCode": "PLN"}}"#,
            "eventClassification.eventClassifierCode",
            "ACT",
        ),
        (
            r#"{"iotEventCode": "DRO", "equipmentReference": "CSQU3054383"}"#,
            "eventDateTime",
            "missing",
        ),
        (
            r#"{"eventDateTime": "yesterday", "iotEventCode": "DRO"}"#,
            "eventDateTime",
            "yesterday",
        ),
        (
            r#"{"eventDateTime": "2026-11-25T08:00:00Z", "iotEventCode": "DRO"}"#,
            "equipmentReference",
            "missing",
        ),
        (
            r#"{"eventDateTime": "2026-11-25T08:00:00Z", "iotEventCode": "DRO", "equipmentReference": "CSQU3054384"}"#,
            "equipmentReference",
            "check digit",
        ),
        (
            r#"{"eventDateTime": "2026-11-25T08:00:00Z", "equipmentDetails": {"equipmentReference": 7}, "iotEventCode": "DRO"}"#,
            "equipmentDetails.equipmentReference",
            "expected a string",
        ),
        (
            r#"{"eventDateTime": "2026-11-25T08:00:00Z", "equipmentReference": "CSQU3054383"}"#,
            "iotEventCode",
            "missing",
        ),
        (
            r#"{"eventDateTime": "2026-11-25T08:00:00Z", "equipmentReference": "CSQU3054383", "iotDetails": {"iotEventCode": "XYZ"}}"#,
            "iotDetails.iotEventCode",
            "DRO",
        ),
        (
            r#"{"eventDateTime": "2026-11-25T08:00:00Z", "equipmentReference": "CSQU3054383", "iotEventCode": "LOC"}"#,
            "eventLocation",
            "latitude",
        ),
        (
            r#"{"eventDateTime": "2026-11-25T08:00:00Z", "equipmentReference": "CSQU3054383", "iotEventCode": "LOC", "eventLocation": {"latitude": "95", "longitude": "1"}}"#,
            "eventLocation.latitude",
            "outside",
        ),
        (
            r#"{"eventDateTime": "2026-11-25T08:00:00Z", "equipmentReference": "CSQU3054383", "iotEventCode": "DRO", "eventLocation": {"latitude": "1"}}"#,
            "eventLocation.longitude",
            "missing",
        ),
        (
            r#"{"eventDateTime": "2026-11-25T08:00:00Z", "equipmentReference": "CSQU3054383", "iotEventCode": "DRO", "eventLocation": {"geoCoordinate": {"latitude": "north", "longitude": 1}}}"#,
            "eventLocation.geoCoordinate.latitude",
            "number",
        ),
        (
            r#"{"eventDateTime": "2026-11-25T08:00:00Z", "equipmentReference": "CSQU3054383", "iotEventCode": "DRO", "deviceReference": "a b"}"#,
            "deviceReference",
            "not allowed",
        ),
    ];
    for (json, field, words) in cases {
        let e = error(Format::Dcsa, json);
        assert_eq!(e.field, *field, "{json}: {e}");
        assert!(e.to_string().contains(words), "{json}: {e}");
    }
}

#[test]
fn uncefact_reading_maps_every_element() {
    let r = one(
        Format::Uncefact,
        r#"{"equipmentId": "CSQU3054383", "deviceId": "SC-1", "eventId": "r-17",
            "eventTime": "2026-11-25T08:00:00Z",
            "geoLocation": {"latitude": 29.31, "longitude": 120.07, "accuracy": 12},
            "doorStatus": "OPEN", "temperature": {"value": 41, "unit": "FAH"},
            "humidity": 60, "shock": {"value": 19.6133, "unit": "MSK"}, "light": 120,
            "pressure": {"value": 101200, "unit": "PAL"}, "batteryLevel": 87,
            "tamper": true, "deviceRemoved": false, "vendorExtra": [1, 2, 3]}"#,
    );
    assert_eq!(r.device.as_ref().map(|d| d.as_str()), Some("SC-1"));
    assert_eq!(r.reading.door, Some(DoorState::Open));
    assert!((r.reading.temperature_c.unwrap() - 5.0).abs() < 1e-9);
    assert!((r.reading.shock_g.unwrap() - 2.0).abs() < 1e-9);
    assert!((r.reading.pressure_hpa.unwrap() - 1012.0).abs() < 1e-9);
    assert_eq!(r.reading.humidity_pct, Some(60.0));
    assert_eq!(r.reading.light_lux, Some(120.0));
    assert_eq!(r.reading.battery_pct, Some(87.0));
    assert_eq!(r.reading.accuracy_m, Some(12.0));
    assert!(r.reading.events.contains(DeviceEvent::Tamper));
    assert!(!r.reading.events.contains(DeviceEvent::DeviceRemoved));
    assert_eq!(r.event_id.as_deref(), Some("r-17"));
}

#[test]
fn uncefact_errors_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        (r#"{"equipmentId": "CSQU3054383"}"#, "eventTime", "missing"),
        (
            r#"{"eventTime": "2026-11-25T08:00:00Z"}"#,
            "equipmentId",
            "missing",
        ),
        (
            r#"{"eventTime": "2026-11-25T08:00:00Z", "equipmentId": "CSQ3054383"}"#,
            "equipmentId",
            "11 characters",
        ),
        (
            r#"{"eventTime": "2026-11-25T08:00:00Z", "equipmentId": "CSQU3054383", "doorStatus": "AJAR"}"#,
            "doorStatus",
            "OPEN or CLOSED",
        ),
        (
            r#"{"eventTime": "2026-11-25T08:00:00Z", "equipmentId": "CSQU3054383", "temperature": {"value": 3, "unit": "XXX"}}"#,
            "temperature.unit",
            "CEL",
        ),
        (
            r#"{"eventTime": "2026-11-25T08:00:00Z", "equipmentId": "CSQU3054383", "temperature": {"unit": "CEL"}}"#,
            "temperature.value",
            "missing",
        ),
        (
            r#"{"eventTime": "2026-11-25T08:00:00Z", "equipmentId": "CSQU3054383", "humidity": 140}"#,
            "humidity",
            "100",
        ),
        (
            r#"{"eventTime": "2026-11-25T08:00:00Z", "equipmentId": "CSQU3054383", "batteryLevel": true}"#,
            "batteryLevel",
            "number",
        ),
        (
            r#"{"eventTime": "2026-11-25T08:00:00Z", "equipmentId": "CSQU3054383", "geoLocation": {"longitude": 3}}"#,
            "geoLocation.latitude",
            "missing",
        ),
        (
            r#"{"eventTime": "2026-11-25T08:00:00Z", "equipmentId": "CSQU3054383", "tamper": "yes"}"#,
            "tamper",
            "true or false",
        ),
    ];
    for (json, field, words) in cases {
        let e = error(Format::Uncefact, json);
        assert_eq!(e.field, *field, "{json}: {e}");
        assert!(e.to_string().contains(words), "{json}: {e}");
    }
}

#[test]
fn payload_shape_errors() {
    assert_eq!(error(Format::Dcsa, "{").field, "payload");
    assert_eq!(error(Format::Dcsa, "[]").field, "payload");
    assert_eq!(error(Format::Dcsa, "42").field, "payload");
    let e = error(
        Format::Uncefact,
        r#"[{"eventTime": "2026-11-25T08:00:00Z", "equipmentId": "CSQU3054383"}, 3]"#,
    );
    assert_eq!(e.field, "[1]");
    let e = error(
        Format::Uncefact,
        r#"[{"eventTime": "2026-11-25T08:00:00Z", "equipmentId": "CSQU3054383"}, {"eventTime": "x"}]"#,
    );
    assert_eq!(e.field, "[1].eventTime");
    let many = format!(
        "[{}]",
        vec![r#"{"eventTime": "2026-11-25T08:00:00Z", "equipmentId": "CSQU3054383"}"#; 1001]
            .join(",")
    );
    assert!(
        error(Format::Uncefact, &many)
            .reason
            .contains("at most 1000")
    );
}

#[test]
fn topics() {
    let t = parse_topic(
        "sealwatch/containers",
        "sealwatch/containers/acme/CSQU3054383/dcsa",
    )
    .expect("parses");
    assert_eq!(
        (t.vendor.as_str(), t.container.as_str(), t.format),
        ("acme", "CSQU3054383", Format::Dcsa)
    );
    let cases = [
        ("other/acme/CSQU3054383/dcsa", "topic"),
        ("sealwatch/containers/acme/CSQU3054383", "topic"),
        ("sealwatch/containers/acme/CSQU3054383/dcsa/x", "topic"),
        (
            "sealwatch/containers/ac me/CSQU3054383/dcsa",
            "topic.vendor",
        ),
        (
            "sealwatch/containers/acme/CSQU3054384/dcsa",
            "topic.container",
        ),
        ("sealwatch/containers/acme/CSQU3054383/edi", "topic.format"),
    ];
    for (topic, field) in cases {
        let e = parse_topic("sealwatch/containers", topic).expect_err(topic);
        assert_eq!(e.field, field, "{topic}: {e}");
    }
}
