//! The handshake: a signed hello from the device, a signed welcome from the platform, and the
//! key schedule both sides run afterwards.
//!
//! ```text
//! device                                             platform
//!   hello:   device id, e_d (X25519), n_d, sig_d  ──►
//!                                                ◄──  welcome: e_p (X25519), n_p, sig_p
//!   first record (device → platform)            ──►  (confirms the device)
//! ```
//!
//! `sig_d` is the device's Ed25519 signature over the hello; `sig_p` the platform's over the
//! hash of the hello and its own fields. The traffic keys come from three X25519 results (see
//! [`derive_keys`]) and the transcript hash ([`transcript_hash`]).

use hkdf::Hkdf;
use model::DeviceId;
use sha2::{Digest, Sha256};
use x25519_dalek::StaticSecret;

use crate::keys::{AgreementKey, KeyPairs, VerifyingKey};
use crate::message::DecodeError;
use crate::wire::{Reader, put_short_str};

/// What the device signs: this label, then the hello's fields before the signature.
pub const HELLO_LABEL: &[u8] = b"sealwatch/1 hello";
/// What the platform signs: this label, SHA-256 of the whole hello body, then the welcome's
/// fields before the signature.
pub const WELCOME_LABEL: &[u8] = b"sealwatch/1 welcome";
/// The first input of the transcript hash.
pub const TRANSCRIPT_LABEL: &[u8] = b"sealwatch/1 transcript";
/// HKDF `info` of the device-to-platform key.
pub const UP_LABEL: &[u8] = b"sealwatch/1 device to platform";
/// HKDF `info` of the platform-to-device key.
pub const DOWN_LABEL: &[u8] = b"sealwatch/1 platform to device";

/// The device's half of the handshake, in the clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub device: DeviceId,
    /// The device's ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    pub nonce: [u8; 32],
    /// Ed25519, by the device's signing key, over [`HELLO_LABEL`] and the fields above.
    pub signature: [u8; 64],
}

impl Hello {
    /// Signs a hello for `device`.
    pub(crate) fn signed(
        device: &DeviceId,
        keys: &KeyPairs,
        ephemeral: &StaticSecret,
        nonce: [u8; 32],
    ) -> Hello {
        let mut hello = Hello {
            device: device.clone(),
            ephemeral: x25519_dalek::PublicKey::from(ephemeral).to_bytes(),
            nonce,
            signature: [0; 64],
        };
        hello.signature = keys.sign(&hello.signed_message());
        hello
    }

    fn unsigned_fields(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.device.as_str().len() + 64);
        put_short_str(&mut out, self.device.as_str());
        out.extend_from_slice(&self.ephemeral);
        out.extend_from_slice(&self.nonce);
        out
    }

    fn signed_message(&self) -> Vec<u8> {
        [HELLO_LABEL, &self.unsigned_fields()].concat()
    }

    /// Whether the device's signing key made the signature.
    pub fn verify(&self, device_key: &VerifyingKey) -> bool {
        device_key.verify(&self.signed_message(), &self.signature)
    }

    /// The frame body: device id (one-byte length, then ASCII), ephemeral key, nonce,
    /// signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.unsigned_fields();
        out.extend_from_slice(&self.signature);
        out
    }

    pub fn decode(body: &[u8]) -> Result<Hello, DecodeError> {
        let mut r = Reader::new(body);
        let device = r.short_str("device id")?;
        let device = device
            .parse()
            .map_err(|_| DecodeError::BadText { field: "device id" })?;
        let hello = Hello {
            device,
            ephemeral: r.array("ephemeral key")?,
            nonce: r.array("nonce")?,
            signature: r.array("signature")?,
        };
        r.finish("hello")?;
        Ok(hello)
    }
}

/// The platform's half of the handshake, in the clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The platform's ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    pub nonce: [u8; 32],
    /// Ed25519, by the platform's signing key, over [`WELCOME_LABEL`], SHA-256 of the hello
    /// body and the fields above.
    pub signature: [u8; 64],
}

impl Welcome {
    pub(crate) fn signed(
        hello_body: &[u8],
        keys: &KeyPairs,
        ephemeral: &StaticSecret,
        nonce: [u8; 32],
    ) -> Welcome {
        let mut welcome = Welcome {
            ephemeral: x25519_dalek::PublicKey::from(ephemeral).to_bytes(),
            nonce,
            signature: [0; 64],
        };
        welcome.signature = keys.sign(&welcome.signed_message(hello_body));
        welcome
    }

    fn signed_message(&self, hello_body: &[u8]) -> Vec<u8> {
        [
            WELCOME_LABEL,
            &Sha256::digest(hello_body)[..],
            &self.ephemeral,
            &self.nonce,
        ]
        .concat()
    }

    /// Whether the platform's signing key made the signature, in answer to this hello.
    pub fn verify(&self, hello_body: &[u8], platform_key: &VerifyingKey) -> bool {
        platform_key.verify(&self.signed_message(hello_body), &self.signature)
    }

    /// The frame body: ephemeral key, nonce, signature.
    pub fn encode(&self) -> Vec<u8> {
        [&self.ephemeral[..], &self.nonce, &self.signature].concat()
    }

    pub fn decode(body: &[u8]) -> Result<Welcome, DecodeError> {
        let mut r = Reader::new(body);
        let welcome = Welcome {
            ephemeral: r.array("ephemeral key")?,
            nonce: r.array("nonce")?,
            signature: r.array("signature")?,
        };
        r.finish("welcome")?;
        Ok(welcome)
    }
}

/// SHA-256 over [`TRANSCRIPT_LABEL`], the hello body and the welcome body (each with a
/// two-byte big-endian length), the device's static agreement key and the platform's.
///
/// Every key derived from it is bound to the whole exchange, to who the parties are, and to
/// both nonces: a device whose random source repeats an ephemeral key still gets fresh keys
/// from a fresh platform nonce.
pub fn transcript_hash(
    hello_body: &[u8],
    welcome_body: &[u8],
    device_agreement: &AgreementKey,
    platform_agreement: &AgreementKey,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(TRANSCRIPT_LABEL);
    for part in [hello_body, welcome_body] {
        h.update((part.len() as u16).to_be_bytes());
        h.update(part);
    }
    h.update(device_agreement.to_bytes());
    h.update(platform_agreement.to_bytes());
    h.finalize().into()
}

/// The three X25519 results, in the order they enter the key schedule.
#[derive(Clone, Debug)]
pub struct SharedSecrets {
    /// Device ephemeral with platform ephemeral: forward secrecy.
    pub ee: [u8; 32],
    /// Device ephemeral with platform static: only the holder of the platform's agreement key
    /// can derive the keys.
    pub es: [u8; 32],
    /// Device static with platform ephemeral: only the holder of the device's agreement key
    /// can derive the keys.
    pub se: [u8; 32],
}

/// One key per direction. A record key is never used for the other direction, so the two
/// counters can both start at zero without ever repeating a nonce under one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficKeys {
    pub device_to_platform: [u8; 32],
    pub platform_to_device: [u8; 32],
}

/// HKDF-SHA256 with the transcript hash as salt and `ee ‖ es ‖ se` as input key material;
/// each direction's key is 32 bytes expanded with its own label ([`UP_LABEL`],
/// [`DOWN_LABEL`]).
pub fn derive_keys(shared: &SharedSecrets, transcript: &[u8; 32]) -> TrafficKeys {
    let ikm = [shared.ee, shared.es, shared.se].concat();
    let hk = Hkdf::<Sha256>::new(Some(transcript), &ikm);
    let mut keys = TrafficKeys {
        device_to_platform: [0; 32],
        platform_to_device: [0; 32],
    };
    // 32 bytes is far below HKDF-SHA256's limit of 8160, so expansion cannot fail.
    let _ = hk.expand(UP_LABEL, &mut keys.device_to_platform);
    let _ = hk.expand(DOWN_LABEL, &mut keys.platform_to_device);
    keys
}

/// X25519 of `secret` with `public`, refused when the result is all zeros: the peer sent a
/// small-order point, which would make the "shared" secret known to anyone.
pub(crate) fn agree(secret: &StaticSecret, public: [u8; 32]) -> Option<[u8; 32]> {
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(public));
    shared.was_contributory().then(|| shared.to_bytes())
}
