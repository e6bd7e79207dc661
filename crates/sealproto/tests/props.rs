//! Properties over arbitrary input: nothing panics, chunking changes nothing, memory stays
//! bounded, and every message has one encoding.

mod common;

use common::{Pair, T0, platform_keys};
use model::{
    DeviceEvent, DoorState, HousingState, LockState, Observation, Reading, RopeState, Timestamp,
};
use proptest::prelude::*;
use sealproto::{
    Attestation, Batch, BatchReport, Device, EvidenceKind, Frame, FrameKind, FrameReader,
    MAX_BATCH_REPORTS, MAX_FRAME_LEN, Message, Received, Report, Session,
};

/// Bytes rich in the magic, so that false frame starts are common.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![4 => any::<u8>(), 1 => Just(b'S'), 1 => Just(b'W'), 1 => Just(1u8)],
        0..3000,
    )
}

/// Splits `bytes` at the given points.
fn chunks<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

fn opt_f64(range: std::ops::RangeInclusive<f64>) -> impl Strategy<Value = Option<f64>> {
    prop::option::of(range)
}

/// Any valid reading.
fn reading() -> impl Strategy<Value = Reading> {
    (
        (
            Timestamp::MIN.unix_ms()..=Timestamp::MAX.unix_ms(),
            prop::option::of((-90.0..=90.0f64, -180.0..=180.0f64)),
            prop::option::of(any::<bool>()),
            opt_f64(0.0..=1e6),
            opt_f64(0.0..=500.0),
            opt_f64(0.0..=360.0),
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>()),
        ),
        (
            opt_f64(0.0..=100.0),
            prop::option::of(any::<bool>()),
            opt_f64(-273.15..=1000.0),
            opt_f64(0.0..=100.0),
            opt_f64(0.0..=100.0),
            opt_f64(0.0..=1e5),
            opt_f64(0.0..=2000.0),
            opt_f64(0.0..=100.0),
            prop::collection::vec(prop::sample::select(&DeviceEvent::ALL[..]), 0..4),
        ),
    )
        .prop_map(
            |(
                (t, pos, fix, acc, speed, course, lock, rope, housing, door),
                (battery, charging, temp, hum, shock, light, pressure, fuel, events),
            )| {
                let mut r = Reading::empty(Timestamp::from_unix_ms(t));
                r.lat = pos.map(|p| p.0);
                r.lon = pos.map(|p| p.1);
                r.fix = if pos.is_some() {
                    fix
                } else {
                    fix.filter(|f| !f)
                };
                r.accuracy_m = acc;
                r.speed_kmh = speed;
                r.course_deg = course;
                r.lock = lock.map(|l| {
                    if l {
                        LockState::Locked
                    } else {
                        LockState::Unlocked
                    }
                });
                r.rope = rope.map(|c| if c { RopeState::Cut } else { RopeState::Intact });
                r.housing = housing.map(|b| {
                    if b {
                        HousingState::Breached
                    } else {
                        HousingState::Intact
                    }
                });
                r.door = door.map(|o| {
                    if o {
                        DoorState::Open
                    } else {
                        DoorState::Closed
                    }
                });
                r.battery_pct = battery;
                r.charging = charging;
                r.temperature_c = temp;
                r.humidity_pct = hum;
                r.shock_g = shock;
                r.light_lux = light;
                r.pressure_hpa = pressure;
                r.fuel_pct = fuel;
                for e in events {
                    r.events.insert(e);
                }
                r
            },
        )
}

/// Maybe an attestation, its signature arbitrary: decoding does not verify it.
fn attestation() -> impl Strategy<Value = Option<Attestation>> {
    prop::option::of((
        prop::sample::select(
            &[
                EvidenceKind::Seal,
                EvidenceKind::Unseal,
                EvidenceKind::Tamper,
            ][..],
        ),
        prop::option::of(any::<u32>()),
        prop::option::of("[A-Za-z0-9._:-]{1,64}"),
        any::<u8>(),
    ))
    .prop_map(|a| {
        a.map(|(kind, command, transit, fill)| Attestation {
            kind,
            command,
            transit: transit.map(|t| t.parse().unwrap()),
            signature: [fill; 64],
        })
    })
}

/// A batch's reports: 2 to 12, `seq` increasing from `first` by gaps of 1 to 3.
fn batch() -> impl Strategy<Value = Vec<BatchReport>> {
    (
        0..u64::MAX / 2,
        prop::collection::vec((reading(), 1..4u64, attestation()), 2..12),
    )
        .prop_map(|(first, items)| {
            let mut seq = first;
            items
                .into_iter()
                .map(|(mut reading, gap, attestation)| {
                    seq += gap;
                    reading.seq = Some(seq);
                    BatchReport {
                        report: Report { seq, reading },
                        attestation,
                    }
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn frame_reader_survives_anything_in_any_chunks(
        bytes in stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut whole = FrameReader::new();
        let expected: Vec<Frame> = whole.push(&bytes).into_iter().filter_map(Result::ok).collect();
        let mut reader = FrameReader::new();
        let mut got = Vec::new();
        for chunk in chunks(&bytes, &cuts) {
            got.extend(reader.push(chunk).into_iter().filter_map(Result::ok));
            prop_assert!(reader.buffered() <= MAX_FRAME_LEN);
        }
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn frames_are_found_among_noise(
        bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..5),
        noise in prop::collection::vec(
            prop::collection::vec(any::<u8>().prop_filter("no magic", |b| *b != b'S'), 0..50),
            5,
        ),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut stream = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            stream.extend_from_slice(&noise[i]);
            stream.extend_from_slice(Frame::new(FrameKind::Record, body).unwrap().as_bytes());
        }
        stream.extend_from_slice(&noise[4]);
        let mut reader = FrameReader::new();
        let mut got = Vec::new();
        for chunk in chunks(&stream, &cuts) {
            got.extend(reader.push(chunk).into_iter().filter_map(Result::ok));
        }
        let got: Vec<Vec<u8>> = got.iter().map(|f| f.body().to_vec()).collect();
        prop_assert_eq!(got, bodies);
    }

    #[test]
    fn session_survives_anything(
        bytes in stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        after_handshake in any::<bool>(),
    ) {
        let mut pair = if after_handshake { Pair::connected() } else {
            let mut p = Pair::connected();
            p.session = Session::new(platform_keys());
            p
        };
        for chunk in chunks(&bytes, &cuts) {
            let _ = pair.session.receive(chunk);
            let _ = pair.device.receive(T0, chunk);
        }
        // A session that survived still works. The noise may have left the start of a false
        // frame in the reader: once enough bytes follow for its CRC to fail, the reader finds
        // the genuine record inside it.
        if after_handshake && !pair.session.is_closed() {
            let seq = pair.device.report(Reading::empty(T0)).unwrap();
            let mut up = pair.device.take_outgoing();
            up.extend_from_slice(&[0; MAX_FRAME_LEN]);
            let got = pair.session.receive(&up);
            let delivered = got.iter().any(|r| matches!(
                r, Ok(sealproto::Received::Report { observation, .. }) if observation.seq == Some(seq)
            ));
            prop_assert!(delivered, "{:?}", got);
            // And a batch record after it.
            let seqs = pair.device.report_many([Reading::empty(T0); 3]).unwrap();
            let got = pair.session.receive(&pair.device.take_outgoing());
            let delivered: Vec<u64> = got.iter().filter_map(|r| match r {
                Ok(Received::Report { observation, .. }) => observation.seq,
                _ => None,
            }).collect();
            prop_assert_eq!(delivered, seqs.collect::<Vec<u64>>(), "{:?}", got);
        }
        let _ = Device::new(common::device_keys("D9", 3), platform_keys().public())
            .receive(T0, &bytes);
    }

    #[test]
    fn messages_decode_to_one_encoding(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(m) = Message::decode(&bytes) {
            prop_assert_eq!(m.encode(), bytes);
        }
    }

    #[test]
    fn reports_round_trip(reading in reading(), seq in any::<u64>()) {
        prop_assert!(reading.validate().is_ok(), "{:?}", reading.validate());
        let report = Report { seq, reading };
        let bytes = Message::Report { report, attestation: None }.encode();
        let decoded = Message::decode(&bytes).unwrap();
        prop_assert_eq!(decoded.encode(), bytes);
        let Message::Report { report: back, .. } = decoded else { unreachable!() };
        let o: Observation = back.observation("D1".parse().unwrap());
        let mut expected = reading;
        expected.seq = Some(seq);
        prop_assert_eq!(o, expected.with_device("D1".parse().unwrap()));
    }

    #[test]
    fn altered_messages_do_not_panic(
        reading in reading(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = Message::Report {
            report: Report { seq: 1, reading },
            attestation: None,
        }
        .encode();
        for (i, x) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        if let Ok(m) = Message::decode(&bytes) {
            prop_assert_eq!(m.encode(), bytes);
        }
    }

    #[test]
    fn batches_round_trip(reports in batch()) {
        let batch = Batch::new(reports.clone()).unwrap();
        let bytes = Message::Batch(batch).encode();
        let Message::Batch(back) = Message::decode(&bytes).unwrap() else {
            panic!("not a batch")
        };
        prop_assert_eq!(back.reports(), &reports[..]);
        prop_assert_eq!(Message::Batch(back).encode(), bytes);
    }

    #[test]
    fn altered_batches_do_not_panic(
        reports in batch(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Message::Batch(Batch::new(reports).unwrap()).encode();
        for (i, x) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        for candidate in [&bytes[..], &bytes[..cut.index(bytes.len())]] {
            if let Ok(m) = Message::decode(candidate) {
                if let Message::Batch(b) = &m {
                    prop_assert!((2..=MAX_BATCH_REPORTS).contains(&b.reports().len()));
                }
                prop_assert_eq!(m.encode(), candidate);
            }
        }
    }

}

proptest! {
    // Each case is a handshake and up to 80 reports, some signed: Ed25519 and X25519 are slow
    // in a debug build, so fewer cases.
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn reports_sent_together_arrive_as_sent(
        readings in prop::collection::vec(reading(), 0..80),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut pair = Pair::connected(); // seq 1
        let seqs = pair.device.report_many(readings.clone()).unwrap();
        prop_assert_eq!(seqs.clone(), 2..2 + readings.len() as u64);
        let up = pair.device.take_outgoing();
        let mut got = Vec::new();
        for chunk in chunks(&up, &cuts) {
            got.extend(pair.session.receive(chunk));
        }
        let mut observations = Vec::new();
        for r in got {
            match r {
                Ok(Received::Report { observation, evidence }) => {
                    if let Some(record) = evidence {
                        let content =
                            sealproto::verify_evidence(&record, &pair.device_public.signing);
                        prop_assert_eq!(content.map(|c| c.observation), Ok(observation.clone()));
                    }
                    observations.push(observation);
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
        let expected: Vec<Observation> = seqs
            .zip(readings)
            .map(|(seq, mut r)| {
                r.seq = Some(seq);
                r.with_device("D1".parse().unwrap())
            })
            .collect();
        prop_assert_eq!(observations, expected);
    }
}
