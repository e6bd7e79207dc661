//! sealwatch's native device protocol, sans-IO: the secure channel between an e-seal or
//! e-lock and the platform, and the signed evidence of sealing, unsealing and tampering.
//!
//! There are no sockets, no async runtime, no clock and no random number generator here. A
//! gateway owns the connection, the time and the randomness; it passes bytes, time and
//! [`Entropy`] in and writes out what [`Session::take_outgoing`] returns. docs/protocol.md is
//! the specification, with test vectors that the test suite checks against this code.
//!
//! # Should I be using this crate?
//!
//! Yes, if you build a device, a gateway, an emulator or a load generator that speaks the
//! native protocol, or a tool that verifies evidence offline ([`verify_evidence`]). Devices
//! that speak JT/T 808 go through the `jt808` crate instead.
//!
//! # The protocol in brief
//!
//! - **Keys.** Each device has an Ed25519 signing key and a separate X25519 agreement key
//!   ([`DeviceKeys`]); so does the platform ([`PlatformKeys`]). Each side is provisioned with
//!   the other's [`PublicKeys`].
//! - **Handshake** ([`handshake`]). The device sends a signed [`Hello`] (its id, an
//!   ephemeral X25519 key, a nonce); the platform answers with a signed [`Welcome`] (its
//!   ephemeral key, a nonce, bound to the hello). Both derive one key per direction with
//!   HKDF-SHA256 from three X25519 results (ephemeral-ephemeral, device ephemeral with
//!   platform static, device static with platform ephemeral) salted with the transcript hash.
//! - **Records.** Every later frame is one [`Message`] encrypted with ChaCha20-Poly1305, its
//!   nonce a 64-bit counter per direction; a counter not above the last accepted one is a
//!   replay ([`Error::Replay`]).
//! - **Frames** ([`Frame`], [`FrameReader`]): magic, version, kind, length, body and a
//!   CRC-16/CCITT-FALSE ([`crc16`]).
//! - **Messages**: reports that map one to one to `model::Observation` ([`Report`]), alone
//!   or several in one record ([`Batch`]), cumulative acknowledgements sent once reports are
//!   durable, [`Command`]s and [`CommandResult`]s.
//! - **Evidence**: seal, unseal and tamper reports carry the device's Ed25519 signature over a
//!   canonical encoding; the platform keeps them as [`EvidenceRecord`]s that anyone with the
//!   device's public key can check ([`verify_evidence`]).
//!
//! # A session
//!
//! ```
//! use model::{LockState, Reading, Timestamp};
//! use sealproto::{
//!     Command, Device, DeviceKeys, EvidenceKind, Entropy, PlatformKeys, Received, Session,
//!     verify_evidence,
//! };
//!
//! // Provisioning: each side knows the other's public keys.
//! let platform = PlatformKeys::from_secrets([1; 32], [2; 32]);
//! let keys = DeviceKeys::from_secrets("LOCK-7".parse().unwrap(), [3; 32], [4; 32]);
//! let device_public = keys.public();
//! let mut device = Device::new(keys, platform.public());
//! let mut session = Session::new(platform);
//! let now = Timestamp::from_unix_ms(1_764_057_600_000);
//!
//! // Handshake. Entropy comes from the operating system's generator in real use.
//! device.connect(Entropy::new([5; 32], [6; 32]));
//! for item in session.receive(&device.take_outgoing()) {
//!     if let Ok(Received::Hello { device: id }) = item {
//!         assert_eq!(id.as_str(), "LOCK-7"); // look the keys up by id
//!         session.accept(&device_public, Entropy::new([7; 32], [8; 32])).unwrap();
//!     }
//! }
//! device.receive(now, &session.take_outgoing());
//!
//! // The device reports; its first record proves it to the platform.
//! let seq = device.report(Reading::empty(now)).unwrap();
//! let got = session.receive(&device.take_outgoing());
//! assert!(matches!(got[0], Ok(Received::Established { .. })));
//! session.acknowledge(seq).unwrap(); // once the report is stored
//!
//! // The platform seals; the device answers with signed seal evidence.
//! session.send_command(1, Command::Seal { transit: Some("T1".parse().unwrap()) }).unwrap();
//! device.receive(now, &session.take_outgoing());
//! assert_eq!(device.lock(), Some(LockState::Locked));
//! for item in session.receive(&device.take_outgoing()) {
//!     if let Ok(Received::Report { evidence: Some(record), .. }) = item {
//!         let content = verify_evidence(&record, &device_public.signing).unwrap();
//!         assert_eq!(content.kind, EvidenceKind::Seal);
//!         assert_eq!(content.observation.lock, Some(LockState::Locked));
//!     }
//! }
//! ```
//!
//! **Architecture invariant**: nothing here panics on any input, and memory is bounded
//! whatever a peer sends: a reader holds at most one frame ([`MAX_FRAME_LEN`]). Property
//! tests feed arbitrary bytes in arbitrary chunks to the frame reader, the session and the
//! device; `fuzz/` holds cargo-fuzz targets for the same paths.
//!
//! **Architecture invariant**: every message has one encoding. Decoding refuses what the
//! encoder would not write, so the platform can rebuild the exact bytes a device signed.

mod crc;
mod device;
mod error;
mod evidence;
mod frame;
pub mod handshake;
mod keys;
mod message;
mod record;
mod session;
mod wire;

pub use crc::crc16;
pub use device::{Device, DeviceOutput, MAX_UNACKNOWLEDGED};
pub use error::Error;
pub use evidence::{
    Attestation, EVIDENCE_FORMAT, EVIDENCE_LABEL, EvidenceContent, EvidenceError, EvidenceKind,
    EvidenceRecord, verify_evidence,
};
pub use frame::{
    Frame, FrameError, FrameKind, FrameReader, HEADER_LEN, MAGIC, MAX_BODY_LEN, MAX_FRAME_LEN,
    VERSION,
};
pub use handshake::{Hello, Welcome};
pub use keys::{
    AgreementKey, DeviceKeys, Entropy, KeyError, PlatformKeys, PublicKeys, VerifyingKey,
};
pub use message::{
    Batch, BatchReport, Command, CommandResult, CommandStatus, DecodeError, EVENT_BITS,
    MAX_BATCH_REPORTS, MAX_REPORT_INTERVAL_S, Message, Report,
};
pub use record::{MAX_MESSAGE_LEN, RECORD_OVERHEAD, open_record};
pub use session::{Received, Session};
pub use wire::{from_hex, to_hex};
