//! Messages and reports on their own: every observation field round-trips, and decoding
//! refuses what the encoder would not write.

use model::{DeviceEvent, Observation};
use sealproto::{
    Attestation, Batch, BatchReport, Command, CommandResult, CommandStatus, DecodeError,
    EVENT_BITS, EvidenceKind, MAX_BATCH_REPORTS, Message, Report,
};

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

/// Reports `seq` .. with the full observation's fields, and seal evidence on the second.
fn batch_reports(first: u64, n: usize) -> Vec<BatchReport> {
    let o: Observation = serde_json::from_str(FULL).unwrap();
    (0..n)
        .map(|i| {
            let mut report = Report::from_observation(&o).unwrap();
            report.seq = first + i as u64;
            // Decoding sets the reading's seq from the report's.
            report.reading.seq = Some(report.seq);
            BatchReport {
                report,
                attestation: (i == 1).then(|| Attestation {
                    kind: EvidenceKind::Seal,
                    command: Some(7),
                    transit: Some("T-1".parse().unwrap()),
                    signature: [0x5a; 64],
                }),
            }
        })
        .collect()
}

#[test]
fn batches_round_trip_and_carry_each_report_as_a_report_message_does() {
    for n in [2, 3, MAX_BATCH_REPORTS] {
        let reports = batch_reports(10, n);
        let batch = Batch::new(reports.clone()).unwrap();
        let m = Message::Batch(batch);
        let bytes = m.encode();
        assert_eq!(Message::decode(&bytes).unwrap(), m);
        // Type 5, the count, then each report exactly as a report message after its type.
        let mut expected = vec![5, n as u8];
        for r in &reports {
            let single = Message::Report {
                report: r.report,
                attestation: r.attestation.clone(),
            }
            .encode();
            expected.extend_from_slice(&single[1..]);
        }
        assert_eq!(bytes, expected);
        assert!(m.from_device());
        if n == 3 {
            for cut in 0..bytes.len() {
                assert!(Message::decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
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
fn batches_out_of_bounds_cannot_be_made_nor_decoded() {
    // Made: one report (a report message says that), none, too many, seq not increasing.
    assert!(Batch::new(Vec::new()).is_none());
    assert!(Batch::new(batch_reports(1, 1)).is_none());
    assert!(Batch::new(batch_reports(1, MAX_BATCH_REPORTS + 1)).is_none());
    let mut same = batch_reports(1, 3);
    same[2].report.seq = 2;
    assert!(Batch::new(same).is_none());
    let mut back = batch_reports(1, 3);
    back[2].report.seq = 1;
    assert!(Batch::new(back).is_none());

    // Decoded: the same refused on the wire.
    let good = Message::Batch(Batch::new(batch_reports(1, 3)).unwrap()).encode();
    for count in [0u8, 1, 65, 255] {
        let mut bad = good.clone();
        bad[1] = count;
        assert!(
            matches!(
                Message::decode(&bad),
                Err(DecodeError::BadValue {
                    field: "batch count",
                    ..
                })
            ),
            "count {count}"
        );
    }
    // The third report's seq (its first 8 bytes) made equal to the second's.
    let o: Observation = serde_json::from_str(FULL).unwrap();
    let plain = Message::Report {
        report: Report::from_observation(&o).unwrap(),
        attestation: None,
    }
    .encode();
    let second = Message::Report {
        report: batch_reports(2, 1)[0].report,
        attestation: batch_reports(1, 2)[1].attestation.clone(),
    }
    .encode();
    let third_at = 2 + (plain.len() - 1) + (second.len() - 1);
    let mut bad = good.clone();
    bad[third_at..third_at + 8].copy_from_slice(&2u64.to_be_bytes());
    assert_eq!(
        Message::decode(&bad),
        Err(DecodeError::BadValue {
            field: "batch seq",
            value: 2
        })
    );
    // A report inside a batch is checked as one alone: a latitude of 95 in the second.
    let mut bad = good.clone();
    let lat_at = 2 + (plain.len() - 1) + 8 + 8 + 4;
    bad[lat_at..lat_at + 8].copy_from_slice(&95.0f64.to_be_bytes());
    assert!(matches!(
        Message::decode(&bad),
        Err(DecodeError::InvalidObservation(_))
    ));
}
