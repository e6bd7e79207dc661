//! Key material: each party's secret keys, the public keys the other side is provisioned with,
//! and the per-handshake randomness the caller supplies.
//!
//! A device has two key pairs, never one used for both jobs (§9.3 of the WCO report, "the
//! cryptographic key used on digital signatures should be different from the one used on
//! content encryption"): an Ed25519 key that signs its handshakes and its evidence, and an
//! X25519 key that takes part in key agreement. The platform has the same two.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey};
use model::DeviceId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use x25519_dalek::StaticSecret;

use crate::wire::{from_hex, to_hex};

/// Why bytes are not a usable public key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("not 32 bytes of hexadecimal")]
    NotHex,
    #[error("not a valid Ed25519 public key")]
    InvalidSigningKey,
    #[error("a weak (small-order) public key")]
    WeakKey,
}

/// An Ed25519 public key: checks the signatures of a device (handshakes and evidence) or of
/// the platform (handshakes). Written as 64 hexadecimal digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(pub(crate) ed25519_dalek::VerifyingKey);

impl VerifyingKey {
    /// Refuses points that are not on the curve and small-order points, which would accept
    /// signatures made without any secret.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<VerifyingKey, KeyError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|_| KeyError::InvalidSigningKey)?;
        if key.is_weak() {
            return Err(KeyError::WeakKey);
        }
        Ok(VerifyingKey(key))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Whether `signature` is `message` signed with this key. Strict verification: malleable
    /// and non-canonical signatures are refused.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.0.verify_strict(message, &signature).is_ok()
    }
}

/// An X25519 public key: the agreement half of a device's or the platform's keys. Written as
/// 64 hexadecimal digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AgreementKey(pub(crate) x25519_dalek::PublicKey);

impl AgreementKey {
    /// Any 32 bytes are an X25519 public key; small-order ones are refused when they are used,
    /// by the check that each Diffie-Hellman output is contributory.
    pub fn from_bytes(bytes: [u8; 32]) -> AgreementKey {
        AgreementKey(x25519_dalek::PublicKey::from(bytes))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
}

macro_rules! hex_key {
    ($name:ident, $parse:expr) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&to_hex(&self.to_bytes()))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = KeyError;
            fn from_str(s: &str) -> Result<$name, KeyError> {
                let bytes: [u8; 32] = from_hex(s)
                    .and_then(|v| v.try_into().ok())
                    .ok_or(KeyError::NotHex)?;
                $parse(bytes)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_key!(VerifyingKey, |b: [u8; 32]| VerifyingKey::from_bytes(&b));
hex_key!(AgreementKey, |b: [u8; 32]| Ok(AgreementKey::from_bytes(b)));

/// The public half of a party's keys: what the platform holds for each device, and what each
/// device is provisioned with for the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeys {
    /// Ed25519: handshakes and evidence.
    pub signing: VerifyingKey,
    /// X25519: key agreement.
    pub agreement: AgreementKey,
}

/// A signing key and an agreement key, never the same.
#[derive(Clone)]
pub(crate) struct KeyPairs {
    pub(crate) signing: SigningKey,
    pub(crate) agreement: StaticSecret,
}

impl KeyPairs {
    fn from_secrets(signing_secret: [u8; 32], agreement_secret: [u8; 32]) -> KeyPairs {
        KeyPairs {
            signing: SigningKey::from_bytes(&signing_secret),
            agreement: StaticSecret::from(agreement_secret),
        }
    }

    pub(crate) fn public(&self) -> PublicKeys {
        PublicKeys {
            signing: VerifyingKey(self.signing.verifying_key()),
            agreement: AgreementKey(x25519_dalek::PublicKey::from(&self.agreement)),
        }
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

/// A device's secret keys and its id. `Debug` shows the public keys only.
#[derive(Clone)]
pub struct DeviceKeys {
    pub(crate) device: DeviceId,
    pub(crate) pairs: KeyPairs,
}

impl DeviceKeys {
    /// Keys from their 32-byte secrets: the Ed25519 secret key (RFC 8032 seed) and the X25519
    /// secret scalar (clamped when used). The two must be generated independently.
    pub fn from_secrets(
        device: DeviceId,
        signing_secret: [u8; 32],
        agreement_secret: [u8; 32],
    ) -> DeviceKeys {
        DeviceKeys {
            device,
            pairs: KeyPairs::from_secrets(signing_secret, agreement_secret),
        }
    }

    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// What the platform is provisioned with for this device.
    pub fn public(&self) -> PublicKeys {
        self.pairs.public()
    }
}

impl fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKeys")
            .field("device", &self.device)
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

/// The platform's secret keys. `Debug` shows the public keys only.
#[derive(Clone)]
pub struct PlatformKeys {
    pub(crate) pairs: KeyPairs,
}

impl PlatformKeys {
    /// As [`DeviceKeys::from_secrets`].
    pub fn from_secrets(signing_secret: [u8; 32], agreement_secret: [u8; 32]) -> PlatformKeys {
        PlatformKeys {
            pairs: KeyPairs::from_secrets(signing_secret, agreement_secret),
        }
    }

    /// What every device is provisioned with.
    pub fn public(&self) -> PublicKeys {
        self.pairs.public()
    }
}

impl fmt::Debug for PlatformKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformKeys")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

/// Fresh randomness for one handshake, from the caller's cryptographic random number
/// generator: this crate has none, so that it stays deterministic and testable. Never reuse
/// one. `Debug` prints nothing of it.
#[derive(Clone)]
pub struct Entropy {
    /// The ephemeral X25519 secret (zeroed when dropped).
    pub(crate) ephemeral: StaticSecret,
    /// The handshake nonce sent in the clear.
    pub(crate) nonce: [u8; 32],
}

impl Entropy {
    pub fn new(ephemeral_secret: [u8; 32], nonce: [u8; 32]) -> Entropy {
        Entropy {
            ephemeral: StaticSecret::from(ephemeral_secret),
            nonce,
        }
    }

    /// The first 32 bytes are the ephemeral secret, the last 32 the nonce.
    pub fn from_bytes(bytes: [u8; 64]) -> Entropy {
        let mut ephemeral = [0u8; 32];
        let mut nonce = [0u8; 32];
        ephemeral.copy_from_slice(&bytes[..32]);
        nonce.copy_from_slice(&bytes[32..]);
        Entropy::new(ephemeral, nonce)
    }
}

impl fmt::Debug for Entropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Entropy(..)")
    }
}
