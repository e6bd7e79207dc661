//! Evidence records: verified with the device's public key alone, and refused once altered.

mod common;

use common::{Pair, T0};
use model::{LockState, Reading, RopeState};
use sealproto::{
    Command, EvidenceError, EvidenceKind, EvidenceRecord, Received, VerifyingKey, verify_evidence,
};

/// A seal record and the device's public signing key, from a real exchange.
fn sealed() -> (EvidenceRecord, VerifyingKey) {
    let mut pair = Pair::connected();
    let mut reading = Reading::empty(T0);
    reading.lat = Some(29.31);
    reading.lon = Some(120.07);
    reading.rope = Some(RopeState::Intact);
    pair.device.report(reading).unwrap();
    pair.send_up();
    pair.session
        .send_command(
            3,
            Command::Seal {
                transit: Some("T1".parse().unwrap()),
            },
        )
        .unwrap();
    pair.send_down();
    let record = pair
        .send_up()
        .into_iter()
        .find_map(|r| match r {
            Ok(Received::Report {
                evidence: Some(e), ..
            }) => Some(e),
            _ => None,
        })
        .unwrap();
    (record, pair.device_public.signing)
}

#[test]
fn evidence_verifies_with_the_public_key_alone() {
    let (record, key) = sealed();
    // Stored as JSON, read back elsewhere, with only the key in hexadecimal.
    let json = serde_json::to_string_pretty(&record).unwrap();
    let key: VerifyingKey = key.to_string().parse().unwrap();
    let back: EvidenceRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back, record);
    let content = verify_evidence(&back, &key).unwrap();
    assert_eq!(content.device.as_str(), "D1");
    assert_eq!(content.kind, EvidenceKind::Seal);
    assert_eq!(content.transit.unwrap().as_str(), "T1");
    assert_eq!(content.observation.lock, Some(LockState::Locked));
    assert_eq!(content.observation.lat, Some(29.31));
    assert_eq!(content.observation.t, T0);
    // The readable members are there for people.
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["format"], "sealwatch-evidence/1");
    assert_eq!(v["kind"], "seal");
    assert_eq!(v["observation"]["lock"], "locked");
}

#[test]
fn altered_evidence_fails() {
    let (record, key) = sealed();
    // Every byte of the payload and of the signature matters (one bit each, a different one
    // from byte to byte: verification is slow in debug builds).
    for i in 0..record.payload().len() {
        let mut payload = record.payload().to_vec();
        payload[i] ^= 1 << (i % 8);
        let altered = EvidenceRecord::from_parts(payload, *record.signature());
        assert_eq!(
            verify_evidence(&altered, &key),
            Err(EvidenceError::BadSignature),
            "payload byte {i}"
        );
    }
    for i in 0..64 {
        let mut signature = *record.signature();
        signature[i] ^= 1 << (i % 8);
        let altered = EvidenceRecord::from_parts(record.payload().to_vec(), signature);
        assert!(
            verify_evidence(&altered, &key).is_err(),
            "signature byte {i}"
        );
    }
    // Another device's key.
    let other = common::device_keys("D2", 0x31).public().signing;
    assert_eq!(
        verify_evidence(&record, &other),
        Err(EvidenceError::BadSignature)
    );
    // Altered in its JSON form: the payload is what counts.
    let json = serde_json::to_string(&record).unwrap();
    let payload_hex = sealproto::to_hex(record.payload());
    let altered_json = json.replace(&payload_hex, &payload_hex.replacen("01", "00", 1));
    assert_ne!(altered_json, json);
    let altered: EvidenceRecord = serde_json::from_str(&altered_json).unwrap();
    assert!(verify_evidence(&altered, &key).is_err());
}

#[test]
fn malformed_json_records_say_what_is_wrong() {
    let (record, _) = sealed();
    let mut v = serde_json::to_value(&record).unwrap();
    v["format"] = "sealwatch-evidence/9".into();
    let e = serde_json::from_value::<EvidenceRecord>(v).unwrap_err();
    assert!(e.to_string().contains("format"), "{e}");
    let mut v = serde_json::to_value(&record).unwrap();
    v["signature"] = "abcd".into();
    let e = serde_json::from_value::<EvidenceRecord>(v).unwrap_err();
    assert!(e.to_string().contains("signature"), "{e}");
}
