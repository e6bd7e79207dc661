//! The handshake, records and commands between the reference device and the platform session.

mod common;

use common::{Pair, T0, device_keys, entropy, fix_crc, platform_keys};
use model::{DeviceEvent, HousingState, LockState, Reading, RopeState};
use sealproto::{
    Command, CommandStatus, Device, DeviceOutput, Error, EvidenceKind, FrameError, PlatformKeys,
    Received, Session,
};

#[test]
fn handshake_round_trip_and_acknowledgement() {
    let mut pair = Pair::handshaken();
    assert!(!pair.session.is_established());
    assert_eq!(pair.session.device().unwrap().as_str(), "D1");
    // Nothing can be sent to a device that has not proved itself yet.
    assert!(matches!(
        pair.session.send_command(1, Command::QueryStatus),
        Err(Error::NotEstablished(_))
    ));
    let mut reading = Reading::empty(T0);
    reading.lat = Some(29.31);
    reading.lon = Some(120.07);
    let seq = pair.device.report(reading).unwrap();
    assert_eq!(seq, 1);
    let got = pair.send_up();
    assert!(matches!(&got[0], Ok(Received::Established { device }) if device.as_str() == "D1"));
    let Ok(Received::Report {
        observation,
        evidence: None,
    }) = &got[1]
    else {
        panic!("{got:?}")
    };
    assert_eq!(observation.device.as_str(), "D1");
    assert_eq!((observation.lat, observation.seq), (Some(29.31), Some(1)));
    assert!(pair.session.is_established());
    assert_eq!(pair.device.unacknowledged(), 1);
    pair.session.acknowledge(seq).unwrap();
    assert_eq!(
        pair.send_down(),
        vec![Ok(DeviceOutput::Acknowledged {
            seq: 1,
            released: 1
        })]
    );
    assert_eq!(pair.device.unacknowledged(), 0);
}

#[test]
fn wrong_device_key_is_rejected() {
    let mut device = Device::new(device_keys("D1", 0x21), platform_keys().public());
    let mut session = Session::new(platform_keys());
    device.connect(entropy(1));
    session.receive(&device.take_outgoing());
    // The platform holds another device's keys under this id.
    let other = device_keys("D1", 0x55).public();
    assert_eq!(
        session.accept(&other, entropy(2)),
        Err(Error::BadSignature {
            what: "hello",
            signer: "device"
        })
    );
    assert!(session.is_closed());
    assert!(
        session.take_outgoing().is_empty(),
        "no welcome for an impostor"
    );
    assert_eq!(session.receive(b"more"), vec![Err(Error::Closed)]);
}

#[test]
fn welcome_from_another_platform_is_rejected() {
    let impostor = PlatformKeys::from_secrets([0x66; 32], [0x12; 32]);
    let keys = device_keys("D1", 0x21);
    let public = keys.public();
    let mut device = Device::new(keys, platform_keys().public());
    let mut session = Session::new(impostor);
    device.connect(entropy(1));
    session.receive(&device.take_outgoing());
    session.accept(&public, entropy(2)).unwrap();
    let out = device.receive(T0, &session.take_outgoing());
    assert_eq!(
        out,
        vec![Err(Error::BadSignature {
            what: "welcome",
            signer: "platform"
        })]
    );
    assert!(!device.is_connected());
}

#[test]
fn signing_key_without_the_agreement_key_cannot_talk() {
    // Someone who stole the device's signing key but not its agreement key gets a welcome,
    // and nothing after it: the traffic keys depend on the agreement key (the `se` term).
    let genuine = device_keys("D1", 0x21);
    let public = genuine.public();
    let thief = sealproto::DeviceKeys::from_secrets("D1".parse().unwrap(), [0x21; 32], [0x99; 32]);
    let mut device = Device::new(thief, platform_keys().public());
    let mut session = Session::new(platform_keys());
    device.connect(entropy(1));
    session.receive(&device.take_outgoing());
    session.accept(&public, entropy(2)).unwrap();
    device.receive(T0, &session.take_outgoing());
    assert!(device.is_connected(), "the welcome itself verifies");
    device.report(Reading::empty(T0)).unwrap();
    let got = session.receive(&device.take_outgoing());
    assert_eq!(got, vec![Err(Error::Forged { counter: 0 })]);
    assert!(session.is_closed() && !session.is_established());
}

#[test]
fn replayed_hello_never_establishes() {
    let mut pair = Pair::handshaken();
    let keys = device_keys("D1", 0x21);
    // Record the hello of a genuine connection, then replay it on another.
    let mut device = Device::new(keys, platform_keys().public());
    device.connect(entropy(9));
    let hello = device.take_outgoing();
    let mut session = Session::new(platform_keys());
    session.receive(&hello);
    session.accept(&pair.device_public, entropy(10)).unwrap();
    // The replayer cannot produce a record under the new keys; old records fail too.
    pair.device.report(Reading::empty(T0)).unwrap();
    let old_record = pair.device.take_outgoing();
    let got = session.receive(&old_record);
    assert!(matches!(got[..], [Err(Error::Forged { .. })]), "{got:?}");
    assert!(session.is_closed());
}

#[test]
fn tampered_ciphertext_is_rejected_and_the_session_goes_on() {
    let mut pair = Pair::connected();
    pair.device.report(Reading::empty(T0)).unwrap();
    let mut frame = pair.device.take_outgoing();
    let genuine = frame.clone();
    frame[20] ^= 0x01; // inside the ciphertext
    fix_crc(&mut frame);
    assert_eq!(
        pair.session.receive(&frame),
        vec![Err(Error::Forged { counter: 1 })]
    );
    // The counter (in the clear, but authenticated) cannot be moved either.
    let mut moved = genuine.clone();
    moved[13] = 7;
    fix_crc(&mut moved);
    assert_eq!(
        pair.session.receive(&moved),
        vec![Err(Error::Forged { counter: 7 })]
    );
    // A forged record did not advance the counter: the genuine one is still accepted.
    let got = pair.session.receive(&genuine);
    assert!(matches!(got[..], [Ok(Received::Report { .. })]), "{got:?}");
    assert!(!pair.session.is_closed());
}

#[test]
fn replayed_and_reordered_records_are_rejected() {
    let mut pair = Pair::connected();
    pair.device.report(Reading::empty(T0)).unwrap();
    let first = pair.device.take_outgoing();
    pair.device.report(Reading::empty(T0)).unwrap();
    let second = pair.device.take_outgoing();
    assert!(matches!(pair.session.receive(&first)[..], [Ok(_)]));
    assert_eq!(
        pair.session.receive(&first),
        vec![Err(Error::Replay {
            counter: 1,
            last: 1
        })]
    );
    // Reordered: the later record first, then the earlier one is refused.
    pair.device.report(Reading::empty(T0)).unwrap();
    let third = pair.device.take_outgoing();
    assert!(matches!(pair.session.receive(&third)[..], [Ok(_)]));
    assert_eq!(
        pair.session.receive(&second),
        vec![Err(Error::Replay {
            counter: 2,
            last: 3
        })]
    );
}

#[test]
fn records_from_the_platform_are_checked_by_the_device_too() {
    let mut pair = Pair::connected();
    pair.session.acknowledge(1).unwrap();
    let ack = pair.session.take_outgoing();
    assert!(matches!(
        pair.device.receive(T0, &ack)[..],
        [Ok(DeviceOutput::Acknowledged { .. })]
    ));
    assert_eq!(
        pair.device.receive(T0, &ack),
        vec![Err(Error::Replay {
            counter: 0,
            last: 0
        })]
    );
}

#[test]
fn bad_crc_is_an_error_value() {
    let mut pair = Pair::connected();
    pair.device.report(Reading::empty(T0)).unwrap();
    let mut frame = pair.device.take_outgoing();
    let n = frame.len();
    frame[n - 1] ^= 0xff;
    let got = pair.session.receive(&frame);
    assert!(
        matches!(got[0], Err(Error::Frame(FrameError::BadCrc { .. }))),
        "{got:?}"
    );
    assert!(got.iter().all(Result::is_err));
    assert!(!pair.session.is_closed());
}

#[test]
fn reports_not_acknowledged_are_sent_again_after_reconnecting() {
    let mut pair = Pair::connected(); // seq 1, not acknowledged
    pair.session.acknowledge(1).unwrap();
    pair.send_down();
    for _ in 0..3 {
        pair.device.report(Reading::empty(T0)).unwrap(); // seq 2, 3, 4
    }
    pair.send_up();
    pair.session.acknowledge(2).unwrap();
    pair.send_down();
    pair.device.disconnect();
    pair.device.report(Reading::empty(T0)).unwrap(); // seq 5, made offline
    let out = pair.reconnect(7);
    assert_eq!(out, vec![Ok(DeviceOutput::Connected)]);
    let seqs: Vec<u64> = pair
        .send_up()
        .into_iter()
        .filter_map(|r| match r {
            Ok(Received::Report { observation, .. }) => observation.seq,
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [3, 4, 5]);
}

#[test]
fn seal_and_unseal_commands_give_verifiable_evidence() {
    let mut pair = Pair::connected();
    let transit: model::TransitId = "T1".parse().unwrap();
    pair.session
        .send_command(
            41,
            Command::Seal {
                transit: Some(transit.clone()),
            },
        )
        .unwrap();
    let out = pair.send_down();
    let [Ok(DeviceOutput::Executed { id: 41, result, .. })] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(result.status, CommandStatus::Done);
    assert_eq!(pair.device.lock(), Some(LockState::Locked));
    let got = pair.send_up();
    let [
        Ok(Received::Report {
            observation,
            evidence: Some(record),
        }),
        Ok(Received::CommandResult(r)),
    ] = &got[..]
    else {
        panic!("{got:?}")
    };
    assert_eq!(r.report_seq, observation.seq);
    let content = sealproto::verify_evidence(record, &pair.device_public.signing).unwrap();
    assert_eq!(content.kind, EvidenceKind::Seal);
    assert_eq!(content.command, Some(41));
    assert_eq!(content.transit.as_ref(), Some(&transit));
    assert_eq!(&content.observation, observation);

    pair.session
        .send_command(
            42,
            Command::Unseal {
                transit: Some(transit),
            },
        )
        .unwrap();
    pair.send_down();
    let got = pair.send_up();
    let Ok(Received::Report {
        observation,
        evidence: Some(record),
    }) = &got[0]
    else {
        panic!("{got:?}")
    };
    assert_eq!(observation.lock, Some(LockState::Unlocked));
    assert!(observation.events.contains(DeviceEvent::UnlockAuthorized));
    let content = sealproto::verify_evidence(record, &pair.device_public.signing).unwrap();
    assert_eq!(content.kind, EvidenceKind::Unseal);
}

#[test]
fn tamper_is_signed_once_when_it_appears() {
    let mut pair = Pair::connected();
    let mut reading = Reading::empty(T0);
    reading.rope = Some(RopeState::Intact);
    pair.device.report(reading).unwrap();
    reading.rope = Some(RopeState::Cut);
    pair.device.report(reading).unwrap();
    pair.device.report(reading).unwrap(); // still cut: not new
    reading.housing = Some(HousingState::Breached);
    pair.device.report(reading).unwrap();
    let kinds: Vec<Option<EvidenceKind>> = pair
        .send_up()
        .into_iter()
        .map(|r| match r {
            Ok(Received::Report { evidence, .. }) => evidence.map(|e| e.content().unwrap().kind),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            None,
            Some(EvidenceKind::Tamper),
            None,
            Some(EvidenceKind::Tamper)
        ]
    );
    // With the rope cut, the device refuses to seal.
    pair.session
        .send_command(5, Command::Seal { transit: None })
        .unwrap();
    let out = pair.send_down();
    let [Ok(DeviceOutput::Executed { result, .. })] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (result.status, result.report_seq),
        (CommandStatus::Refused, None)
    );
}

#[test]
fn other_commands_and_resent_commands() {
    let mut pair = Pair::connected();
    pair.session
        .send_command(7, Command::SetReportInterval { seconds: 30 })
        .unwrap();
    pair.session.send_command(8, Command::QueryStatus).unwrap();
    let out = pair.send_down();
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(pair.device.report_interval_s(), 30);
    let got = pair.send_up();
    assert!(matches!(
        &got[..],
        [
            Ok(Received::CommandResult(a)),
            Ok(Received::Report { .. }),
            Ok(Received::CommandResult(b)),
        ] if a.id == 7 && a.report_seq.is_none() && b.id == 8 && b.report_seq == Some(2)
    ));
    // The same id again (as after a reconnection): answered, not executed again.
    pair.session.send_command(8, Command::QueryStatus).unwrap();
    assert!(pair.send_down().is_empty());
    let got = pair.send_up();
    assert!(
        matches!(&got[..], [Ok(Received::CommandResult(b))] if b.report_seq == Some(2)),
        "{got:?}"
    );
}

#[test]
fn invalid_readings_are_refused_by_the_device() {
    let mut pair = Pair::connected();
    let mut reading = Reading::empty(T0);
    reading.lat = Some(95.0);
    reading.lon = Some(0.0);
    assert!(matches!(
        pair.device.report(reading),
        Err(Error::InvalidObservation(_))
    ));
}

#[test]
fn frames_out_of_place_close_an_unestablished_session() {
    let mut pair = Pair::connected();
    pair.device.report(Reading::empty(T0)).unwrap();
    let record = pair.device.take_outgoing();
    // A record before any hello.
    let mut session = Session::new(platform_keys());
    let got = session.receive(&record);
    assert!(
        matches!(got[..], [Err(Error::UnexpectedFrame { .. })]),
        "{got:?}"
    );
    assert!(session.is_closed());
}

/// How many frames a stream holds: how many records the device used.
fn frame_count(bytes: &[u8]) -> usize {
    sealproto::FrameReader::new()
        .push(bytes)
        .into_iter()
        .map(Result::unwrap)
        .count()
}

#[test]
fn reports_sent_together_go_in_batch_records_each_with_its_own_evidence() {
    let mut pair = Pair::connected(); // seq 1
    let mut readings = Vec::new();
    for i in 0..10 {
        let mut r = Reading::empty(T0);
        r.lat = Some(29.0 + f64::from(i) / 100.0);
        r.lon = Some(120.0);
        r.rope = Some(if i >= 6 {
            RopeState::Cut
        } else {
            RopeState::Intact
        });
        readings.push(r);
    }
    assert_eq!(pair.device.report_many(readings).unwrap(), 2..12);
    assert_eq!(pair.device.unacknowledged(), 11);
    let up = pair.device.take_outgoing();
    assert_eq!(frame_count(&up), 1, "ten short reports fit one record");
    let got = pair.session.receive(&up);
    let mut seqs = Vec::new();
    for r in &got {
        let Ok(Received::Report {
            observation,
            evidence,
        }) = r
        else {
            panic!("{got:?}")
        };
        seqs.push(observation.seq.unwrap());
        // The rope is cut from the seventh report on: only that one is tamper evidence, and
        // it verifies alone, with the device's public key.
        if observation.seq == Some(8) {
            let record = evidence.as_ref().expect("tamper evidence");
            let content = sealproto::verify_evidence(record, &pair.device_public.signing).unwrap();
            assert_eq!(content.kind, EvidenceKind::Tamper);
            assert_eq!(&content.observation, observation);
        } else {
            assert!(evidence.is_none(), "{observation:?}");
        }
    }
    assert_eq!(seqs, (2..12).collect::<Vec<u64>>());
    // One cumulative acknowledgement releases the whole batch.
    pair.session.acknowledge(11).unwrap();
    assert_eq!(
        pair.send_down(),
        vec![Ok(DeviceOutput::Acknowledged {
            seq: 11,
            released: 11
        })]
    );
    // Nothing to send: nothing sent.
    assert_eq!(pair.device.report_many([]).unwrap(), 12..12);
    assert!(pair.device.take_outgoing().is_empty());
}

#[test]
fn batches_are_bounded_by_their_count_and_the_record_length() {
    let mut pair = Pair::connected();
    pair.session.acknowledge(1).unwrap();
    pair.send_down();
    // Time only (21 bytes each): 64 to a record, then the rest.
    let seqs = pair
        .device
        .report_many(vec![Reading::empty(T0); 100])
        .unwrap();
    assert_eq!(seqs, 2..102);
    let up = pair.device.take_outgoing();
    assert_eq!(frame_count(&up), 2);
    let got = pair.session.receive(&up);
    assert_eq!(got.len(), 100);
    assert!(got.iter().all(|r| matches!(r, Ok(Received::Report { .. }))));
    // Every field (124 bytes each): the record's length bounds the batch, 16 to a record.
    let full: model::Observation = serde_json::from_str(
        r#"{"device": "D1", "t": "2025-11-25T08:00:00Z", "lat": 29.31, "lon": 120.07,
        "fix": true, "accuracy_m": 8, "speed_kmh": 62, "course_deg": 95, "lock": "locked",
        "rope": "intact", "housing": "intact", "door": "closed", "battery_pct": 87,
        "charging": false, "temperature_c": 5.2, "humidity_pct": 60, "shock_g": 0.3,
        "light_lux": 0, "pressure_hpa": 1012, "fuel_pct": 78, "events": ["wrong_password"]}"#,
    )
    .unwrap();
    let seqs = pair.device.report_many(vec![full.reading(); 33]).unwrap();
    assert_eq!(seqs, 102..135);
    let up = pair.device.take_outgoing();
    let frames: Vec<sealproto::Frame> = sealproto::FrameReader::new()
        .push(&up)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    // 16 + 16 in batches, the last one alone in a report message.
    assert_eq!(frames.len(), 3);
    assert!(
        frames
            .iter()
            .all(|f| f.as_bytes().len() <= sealproto::MAX_FRAME_LEN)
    );
    let got = pair.session.receive(&up);
    let seqs: Vec<u64> = got
        .iter()
        .map(|r| match r {
            Ok(Received::Report { observation, .. }) => observation.seq.unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seqs, (102..135).collect::<Vec<u64>>());
}

#[test]
fn report_many_takes_all_or_nothing() {
    let mut pair = Pair::connected(); // seq 1
    let mut bad = Reading::empty(T0);
    bad.lat = Some(95.0);
    bad.lon = Some(0.0);
    let e = pair
        .device
        .report_many([Reading::empty(T0), bad, Reading::empty(T0)])
        .unwrap_err();
    assert!(matches!(e, Error::InvalidObservation(_)), "{e:?}");
    assert_eq!(pair.device.unacknowledged(), 1);
    assert!(pair.device.take_outgoing().is_empty());
    // The next report has the next seq: nothing was taken.
    assert_eq!(pair.device.report(Reading::empty(T0)).unwrap(), 2);
    // More than the device may hold.
    let e = pair
        .device
        .report_many(vec![Reading::empty(T0); sealproto::MAX_UNACKNOWLEDGED])
        .unwrap_err();
    assert_eq!(e, Error::BufferFull { held: 2 });
    assert_eq!(pair.device.unacknowledged(), 2);
}

#[test]
fn reports_held_while_offline_are_sent_again_in_batches() {
    let mut pair = Pair::connected(); // seq 1, not acknowledged
    pair.device.disconnect();
    for _ in 0..4 {
        pair.device.report(Reading::empty(T0)).unwrap(); // seq 2 to 5, made offline
    }
    let mut cut = Reading::empty(T0);
    cut.rope = Some(RopeState::Cut);
    pair.device.report_many([cut, cut]).unwrap(); // seq 6 (tamper), 7
    assert!(pair.device.take_outgoing().is_empty());
    let out = pair.reconnect(9);
    assert_eq!(out, vec![Ok(DeviceOutput::Connected)]);
    let up = pair.device.take_outgoing();
    assert_eq!(frame_count(&up), 1, "seven reports held, one record");
    let got = pair.session.receive(&up);
    assert!(
        matches!(got[0], Ok(Received::Established { .. })),
        "{got:?}"
    );
    let reports: Vec<(u64, bool)> = got[1..]
        .iter()
        .map(|r| match r {
            Ok(Received::Report {
                observation,
                evidence,
            }) => (observation.seq.unwrap(), evidence.is_some()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        reports,
        [
            (1, false),
            (2, false),
            (3, false),
            (4, false),
            (5, false),
            (6, true),
            (7, false)
        ]
    );
    // The batch record delivered again is a replay, refused as a whole.
    let again = pair.session.receive(&up);
    assert!(
        again.iter().all(|r| matches!(r, Err(Error::Replay { .. }))),
        "{again:?}"
    );
}
