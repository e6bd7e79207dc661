//! Evidence: seal, unseal and tamper reports signed by the device's Ed25519 key, verifiable
//! offline by anyone with the device's public key.
//!
//! The signed bytes (the *payload*) are:
//!
//! ```text
//! "sealwatch/1 evidence" (20 bytes)
//! device id      1-byte length, ASCII
//! kind           1 byte: 1 seal, 2 unseal, 3 tamper
//! command id     1 byte 0 (none), or 1 then 4 bytes big-endian
//! transit id     1-byte length (0: none), ASCII
//! report body    exactly as in a report message (seq, t, field map, fields)
//! ```

use std::fmt;

use model::{DeviceId, Observation, TransitId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::keys::{KeyPairs, VerifyingKey};
use crate::message::{DecodeError, Report};
use crate::wire::{Reader, from_hex, put_short_str, to_hex};

/// The first bytes of every evidence payload; no other signed message starts with them.
pub const EVIDENCE_LABEL: &[u8] = b"sealwatch/1 evidence";
/// The `format` member of an evidence record in JSON.
pub const EVIDENCE_FORMAT: &str = "sealwatch-evidence/1";

/// What a piece of evidence attests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// The device was sealed (locked for a transit).
    Seal = 1,
    /// The device was unsealed.
    Unseal = 2,
    /// The device detected tampering: rope cut, housing breached, back cover opened, removed.
    Tamper = 3,
}

impl EvidenceKind {
    pub(crate) fn from_byte(b: u8) -> Option<EvidenceKind> {
        match b {
            1 => Some(EvidenceKind::Seal),
            2 => Some(EvidenceKind::Unseal),
            3 => Some(EvidenceKind::Tamper),
            _ => None,
        }
    }
}

/// Why evidence does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The signature was not made by this key over these bytes: the record was altered, or
    /// belongs to another device.
    #[error("the signature does not verify with the device's public key")]
    BadSignature,
    /// The signature holds but the payload cannot be read (a bug in the signer).
    #[error("the signed payload cannot be read: {0}")]
    Payload(DecodeError),
}

/// What a device's signature adds to a report: the kind of evidence, the command that caused
/// it (if any), the transit it concerns (if the device knows), and the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attestation {
    pub kind: EvidenceKind,
    pub command: Option<u32>,
    pub transit: Option<TransitId>,
    pub signature: [u8; 64],
}

/// The readable content of evidence: what the device signed.
#[derive(Clone, Debug, PartialEq)]
pub struct EvidenceContent {
    pub device: DeviceId,
    pub kind: EvidenceKind,
    pub command: Option<u32>,
    pub transit: Option<TransitId>,
    /// The report, as the contract's observation (its `seq` is the report's).
    pub observation: Observation,
}

/// Signed evidence, as stored and exchanged: the payload and the device's signature.
///
/// In JSON it is an object with `format`, `payload` and `signature` (hexadecimal), preceded by
/// the decoded content (`device`, `kind`, `command`, `transit`, `observation`) for people to
/// read. Only `payload` and `signature` are read back: the rest is written from the payload
/// and ignored when reading, so trust only what [`verify_evidence`] returns.
#[derive(Clone, PartialEq, Eq)]
pub struct EvidenceRecord {
    payload: Vec<u8>,
    signature: [u8; 64],
}

impl EvidenceRecord {
    /// A record from its parts, as stored. Nothing is checked: see [`verify_evidence`].
    pub fn from_parts(payload: Vec<u8>, signature: [u8; 64]) -> EvidenceRecord {
        EvidenceRecord { payload, signature }
    }

    /// The record of a report and its attestation from `device`.
    pub fn of_report(device: &DeviceId, report: &Report, att: &Attestation) -> EvidenceRecord {
        EvidenceRecord {
            payload: payload(device, att.kind, att.command, att.transit.as_ref(), report),
            signature: att.signature,
        }
    }

    /// The signed bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// The content, **not verified**: for display, or to find which device's key to verify
    /// with.
    pub fn content(&self) -> Result<EvidenceContent, DecodeError> {
        let mut r = Reader::new(&self.payload);
        let label = r.bytes(EVIDENCE_LABEL.len(), "evidence label")?;
        if label != EVIDENCE_LABEL {
            return Err(DecodeError::BadText {
                field: "evidence label",
            });
        }
        let device: DeviceId = r
            .short_str("device id")?
            .parse()
            .map_err(|_| DecodeError::BadText { field: "device id" })?;
        let (kind, command, transit) = decode_context(&mut r)?;
        let report = Report::decode_from(&mut r)?;
        r.finish("evidence")?;
        Ok(EvidenceContent {
            observation: report.observation(device.clone()),
            device,
            kind,
            command,
            transit,
        })
    }
}

/// Checks that `record` was signed by the holder of `device_key` and returns what it says.
///
/// The device id inside the record says whose key to use; a record verified with another
/// device's key fails. The signature is checked first, the content read only after.
pub fn verify_evidence(
    record: &EvidenceRecord,
    device_key: &VerifyingKey,
) -> Result<EvidenceContent, EvidenceError> {
    if !device_key.verify(&record.payload, &record.signature) {
        return Err(EvidenceError::BadSignature);
    }
    record.content().map_err(EvidenceError::Payload)
}

/// The bytes a device signs for a report carrying evidence.
pub(crate) fn payload(
    device: &DeviceId,
    kind: EvidenceKind,
    command: Option<u32>,
    transit: Option<&TransitId>,
    report: &Report,
) -> Vec<u8> {
    let mut out = EVIDENCE_LABEL.to_vec();
    put_short_str(&mut out, device.as_str());
    encode_context(&mut out, kind, command, transit);
    report.encode_into(&mut out);
    out
}

/// Signs a report as evidence.
pub(crate) fn attest(
    keys: &KeyPairs,
    device: &DeviceId,
    kind: EvidenceKind,
    command: Option<u32>,
    transit: Option<TransitId>,
    report: &Report,
) -> Attestation {
    let signature = keys.sign(&payload(device, kind, command, transit.as_ref(), report));
    Attestation {
        kind,
        command,
        transit,
        signature,
    }
}

/// Kind, command id and transit id: shared by the payload and the report message's trailer.
pub(crate) fn encode_context(
    out: &mut Vec<u8>,
    kind: EvidenceKind,
    command: Option<u32>,
    transit: Option<&TransitId>,
) {
    out.push(kind as u8);
    match command {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            out.extend_from_slice(&id.to_be_bytes());
        }
    }
    put_short_str(out, transit.map_or("", |t| t.as_str()));
}

pub(crate) fn decode_context(
    r: &mut Reader<'_>,
) -> Result<(EvidenceKind, Option<u32>, Option<TransitId>), DecodeError> {
    let kind = r.u8("evidence kind")?;
    let kind = EvidenceKind::from_byte(kind).ok_or(DecodeError::BadValue {
        field: "evidence kind",
        value: u64::from(kind),
    })?;
    let command = if r.bool("command flag")? {
        Some(r.u32("command id")?)
    } else {
        None
    };
    let transit = match r.short_str("transit id")? {
        "" => None,
        t => Some(t.parse().map_err(|_| DecodeError::BadText {
            field: "transit id",
        })?),
    };
    Ok((kind, command, transit))
}

impl fmt::Debug for EvidenceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvidenceRecord")
            .field("payload", &to_hex(&self.payload))
            .field("signature", &to_hex(&self.signature))
            .finish()
    }
}

#[derive(Serialize)]
struct RecordOut<'a> {
    format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<&'a DeviceId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<EvidenceKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transit: Option<&'a TransitId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    observation: Option<&'a Observation>,
    payload: String,
    signature: String,
}

impl Serialize for EvidenceRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let content = self.content().ok();
        let c = content.as_ref();
        RecordOut {
            format: EVIDENCE_FORMAT,
            device: c.map(|c| &c.device),
            kind: c.map(|c| c.kind),
            command: c.and_then(|c| c.command),
            transit: c.and_then(|c| c.transit.as_ref()),
            observation: c.map(|c| &c.observation),
            payload: to_hex(&self.payload),
            signature: to_hex(&self.signature),
        }
        .serialize(s)
    }
}

#[derive(Deserialize)]
struct RecordIn {
    format: String,
    payload: String,
    signature: String,
}

impl<'de> Deserialize<'de> for EvidenceRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<EvidenceRecord, D::Error> {
        use serde::de::Error as _;
        let r = RecordIn::deserialize(d)?;
        if r.format != EVIDENCE_FORMAT {
            return Err(D::Error::custom(format!(
                "format {:?} is not {EVIDENCE_FORMAT:?}",
                r.format
            )));
        }
        let payload =
            from_hex(&r.payload).ok_or_else(|| D::Error::custom("payload: not hexadecimal"))?;
        let signature = from_hex(&r.signature)
            .and_then(|s| <[u8; 64]>::try_from(s).ok())
            .ok_or_else(|| D::Error::custom("signature: not 64 bytes of hexadecimal"))?;
        Ok(EvidenceRecord { payload, signature })
    }
}
