//! `sealwatch verify-event --key HEX RECORD.json`: checks signed device evidence (a seal,
//! unseal or tamper report of the native protocol) with the device's public signing key
//! alone, anywhere, without the platform: a customs office abroad, a court, an auditor.

use serde_json::{Value, json};

/// What checking a record concluded.
#[derive(Debug)]
pub enum Verdict {
    /// The signature holds: what the device signed.
    Verified(Value),
    /// The record is well formed but the key did not sign it, or it was altered.
    Refused(String),
}

/// Checks `record_json` (an evidence record as stored and exchanged) against `key_hex` (the
/// device's Ed25519 public key, 64 hex digits). `Err` means the input itself is not valid.
pub fn verify(record_json: &str, key_hex: &str) -> Result<Verdict, String> {
    let key: sealproto::VerifyingKey = key_hex.trim().parse().map_err(|e| format!("--key: {e}"))?;
    let record: sealproto::EvidenceRecord = {
        let de = &mut serde_json::Deserializer::from_str(record_json);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            format!("record: {path}: {}", e.into_inner())
        })?
    };
    Ok(match sealproto::verify_evidence(&record, &key) {
        Ok(content) => Verdict::Verified(json!({
            "verified": true,
            "device": content.device,
            "kind": content.kind,
            "command": content.command,
            "transit": content.transit,
            "observation": content.observation,
        })),
        Err(e) => Verdict::Refused(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Reading, RopeState, Timestamp};
    use sealproto::{Device, DeviceKeys, Entropy, PlatformKeys, Received, Session};

    /// A tamper record from a real exchange between the reference device and a session, and
    /// the device's public key in hex.
    fn tamper_record() -> (String, String) {
        let t0 = Timestamp::from_unix_ms(1_764_057_600_000);
        let platform = || PlatformKeys::from_secrets([0x11; 32], [0x12; 32]);
        let keys = DeviceKeys::from_secrets("D1".parse().unwrap(), [0x21; 32], [0x22; 32]);
        let public = keys.public();
        let mut device = Device::new(keys, platform().public());
        let mut session = Session::new(platform());
        device.connect(Entropy::new([1; 32], [0x81; 32]));
        session.receive(&device.take_outgoing());
        session
            .accept(&public, Entropy::new([0x41; 32], [0xc1; 32]))
            .unwrap();
        device.receive(t0, &session.take_outgoing());
        device.report(Reading::empty(t0)).unwrap();
        let mut cut = Reading::empty(t0.plus(model::Duration::from_secs(300)));
        cut.rope = Some(RopeState::Cut);
        device.report(cut).unwrap();
        let record = session
            .receive(&device.take_outgoing())
            .into_iter()
            .find_map(|r| match r {
                Ok(Received::Report {
                    evidence: Some(e), ..
                }) => Some(e),
                _ => None,
            })
            .expect("a tamper record");
        (
            serde_json::to_string(&record).unwrap(),
            public.signing.to_string(),
        )
    }

    #[test]
    fn a_record_verifies_with_the_key_alone_and_not_once_altered() {
        let (record, key) = tamper_record();
        let Verdict::Verified(v) = verify(&record, &key).unwrap() else {
            panic!("not verified")
        };
        assert_eq!(v["kind"], "tamper");
        assert_eq!(v["device"], "D1");
        assert_eq!(v["observation"]["rope"], "cut");

        // One hex digit of the payload changed: refused, whatever the readable fields say.
        let mut doc: Value = serde_json::from_str(&record).unwrap();
        let payload = doc["payload"].as_str().unwrap().to_owned();
        let flipped = if payload.ends_with('0') { '1' } else { '0' };
        doc["payload"] = Value::String(format!("{}{flipped}", &payload[..payload.len() - 1]));
        let Verdict::Refused(why) = verify(&doc.to_string(), &key).unwrap() else {
            panic!("an altered record verified")
        };
        assert!(why.contains("signature"), "{why}");

        // Another device's key: refused.
        let other = DeviceKeys::from_secrets("D2".parse().unwrap(), [0x31; 32], [0x32; 32]);
        let other_key = other.public().signing.to_string();
        assert!(matches!(
            verify(&record, &other_key).unwrap(),
            Verdict::Refused(_)
        ));

        // Bad input is named.
        assert!(verify(&record, "xyz").unwrap_err().starts_with("--key: "));
        assert!(verify("{}", &key).unwrap_err().starts_with("record: "));
    }
}
