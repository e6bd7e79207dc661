//! Messages and reports on their own: every observation field round-trips, and decoding
//! refuses what the encoder would not write.

use model::{DeviceEvent, Observation};
use sealproto::{Command, CommandResult, CommandStatus, DecodeError, EVENT_BITS, Message, Report};

/// The contract's example observation: every field set.
const FULL: &str = r#"{"device": "D1", "t": "2026-11-25T08:00:00Z", "lat": 29.31, "lon": 120.07,
 "fix": true, "accuracy_m": 8, "speed_kmh": 62, "course_deg": 95,
 "lock": "locked", "rope": "intact", "housing": "intact", "door": "closed",
 "battery_pct": 87, "charging": false,
 "temperature_c": 5.2, "humidity_pct": 60, "shock_g": 0.3, "light_lux": 0,
 "pressure_hpa": 1012, "fuel_pct": 78,
 "events": ["wrong_password"], "seq": 1042}"#;

fn round_trip(o: &Observation) -> Observation {
    let report = Report::from_observation(o).unwrap();
    let bytes = Message::Report {
        report,
        attestation: None,
    }
    .encode();
    let Message::Report { report, .. } = Message::decode(&bytes).unwrap() else {
        panic!()
    };
    report.observation(o.device.clone())
}

#[test]
fn every_observation_field_round_trips() {
    let full: Observation = serde_json::from_str(FULL).unwrap();
    assert_eq!(round_trip(&full), full);
    // Each field alone, and each other value of the state fields, keeps its meaning.
    let json = serde_json::to_value(&full).unwrap();
    for (key, value) in json.as_object().unwrap() {
        if matches!(key.as_str(), "device" | "t" | "seq" | "lon") {
            continue;
        }
        let mut one = serde_json::json!({"device": "D1", "t": "2026-11-25T08:00:00Z", "seq": 1});
        one[key] = value.clone();
        if key == "lat" || key == "fix" {
            one["lat"] = json["lat"].clone();
            one["lon"] = json["lon"].clone();
        }
        let o: Observation = serde_json::from_value(one).unwrap();
        assert_eq!(round_trip(&o), o, "{key}");
    }
    let others = serde_json::json!({"device": "D1", "t": "1970-01-01T00:00:00Z", "seq": 0,
        "fix": false, "lock": "unlocked", "rope": "cut", "housing": "breached", "door": "open",
        "charging": true, "lat": -90, "lon": -180, "temperature_c": -40.5});
    let o: Observation = serde_json::from_value(others).unwrap();
    assert_eq!(round_trip(&o), o);
    for e in DeviceEvent::ALL {
        let mut o = Observation::new("D1".parse().unwrap(), full.t);
        o.seq = Some(u64::MAX);
        o.events.insert(e);
        assert_eq!(round_trip(&o), o, "{e:?}");
    }
    assert_eq!(EVENT_BITS.len(), DeviceEvent::ALL.len());
}

#[test]
fn observations_without_seq_have_no_report() {
    let o = Observation::new("D1".parse().unwrap(), model::Timestamp::from_unix_ms(0));
    assert!(Report::from_observation(&o).is_none());
}

#[test]
fn other_messages_round_trip() {
    let messages = [
        Message::Ack { seq: 77 },
        Message::Command {
            id: 1,
            command: Command::Seal {
                transit: Some("T-2026:001".parse().unwrap()),
            },
        },
        Message::Command {
            id: 2,
            command: Command::Unseal { transit: None },
        },
        Message::Command {
            id: u32::MAX,
            command: Command::SetReportInterval { seconds: 86_400 },
        },
        Message::Command {
            id: 0,
            command: Command::QueryStatus,
        },
        Message::CommandResult(CommandResult {
            id: 9,
            status: CommandStatus::Refused,
            report_seq: None,
        }),
        Message::CommandResult(CommandResult {
            id: 9,
            status: CommandStatus::Done,
            report_seq: Some(12),
        }),
    ];
    for m in messages {
        let bytes = m.encode();
        assert_eq!(Message::decode(&bytes).unwrap(), m);
        // Every prefix is refused, and so is a trailing byte.
        for n in 0..bytes.len() {
            assert!(Message::decode(&bytes[..n]).is_err(), "{m:?} cut at {n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Message::decode(&longer),
            Err(DecodeError::TrailingBytes { .. })
        ));
    }
}

#[test]
fn decoding_refuses_what_the_encoder_would_not_write() {
    let o: Observation = serde_json::from_str(FULL).unwrap();
    let good = Message::Report {
        report: Report::from_observation(&o).unwrap(),
        attestation: None,
    }
    .encode();
    let map_at = 1 + 8 + 8;
    // An unknown field bit.
    let mut bad = good.clone();
    bad[map_at] |= 0x80;
    assert!(matches!(
        Message::decode(&bad),
        Err(DecodeError::BadValue {
            field: "field map",
            ..
        })
    ));
    // A boolean that is neither 0 nor 1: `fix` is the first byte after lat and lon.
    let mut bad = good.clone();
    bad[map_at + 4 + 16] = 2;
    assert!(matches!(
        Message::decode(&bad),
        Err(DecodeError::BadValue { field: "fix", .. })
    ));
    // A latitude out of range.
    let mut bad = good.clone();
    bad[map_at + 4..map_at + 12].copy_from_slice(&95.0f64.to_be_bytes());
    let e = Message::decode(&bad).unwrap_err();
    assert_eq!(e.to_string(), "report: lat: must be between -90 and 90");
    // Negative zero is a second spelling of zero.
    let mut bad = good.clone();
    bad[map_at + 4..map_at + 12].copy_from_slice(&(-0.0f64).to_be_bytes());
    assert!(Message::decode(&bad).is_err());
    // A reporting interval of zero.
    let mut bad = Message::Command {
        id: 1,
        command: Command::SetReportInterval { seconds: 1 },
    }
    .encode();
    let n = bad.len();
    bad[n - 1] = 0;
    assert!(matches!(
        Message::decode(&bad),
        Err(DecodeError::BadValue {
            field: "report interval",
            ..
        })
    ));
    assert_eq!(Message::decode(&[9]), Err(DecodeError::UnknownType(9)));
}
