//! `sealwatch device-key ...`: provisioning, rotation and revocation of native-protocol device
//! keys (docs/protocol.md), on the store directly like `sealwatch token`, beside a running
//! service or not.
//!
//! Secrets are written only into the key file (`--out`, created with owner-only permissions,
//! 0600, never overwritten) and never printed: what is printed is the stored record, public
//! keys only. The key file holds the hex of the Ed25519 signing secret and then the X25519
//! agreement secret (128 hex digits and a newline), the format of the platform's key file.

use std::io::Write;
use std::path::Path;

use model::{DeviceId, Timestamp};
use sealproto::{DeviceKeys, VerifyingKey};
use store::{DeviceKeysRecord, Store};

/// What went wrong: bad input (exit 2) or a failure (exit 1).
pub(crate) enum Failure {
    Invalid(String),
    Failed(String),
}

impl From<store::Error> for Failure {
    fn from(e: store::Error) -> Failure {
        if e.is_not_found() || e.is_conflict() {
            Failure::Invalid(e.to_string())
        } else {
            Failure::Failed(e.to_string())
        }
    }
}

/// Where a device's new public keys come from.
pub(crate) enum Source<'a> {
    /// Made here; the secrets go into this file.
    Generate { out: &'a Path },
    /// Made on the device: its public keys, in hex.
    Given {
        signing: &'a str,
        agreement: &'a str,
    },
}

/// Whether the device may already have keys that are not revoked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replace {
    /// Only a device with no keys, or revoked ones (`generate`, `set`).
    No,
    /// Only a device that has keys (`rotate`).
    Yes,
}

fn device_id(device: &str) -> Result<DeviceId, Failure> {
    device
        .parse()
        .map_err(|e: model::IdError| Failure::Invalid(format!("device: {e}")))
}

fn key_hex(what: &str, text: &str) -> Result<[u8; 32], Failure> {
    sealproto::from_hex(text.trim())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| Failure::Invalid(format!("{what}: must be 32 bytes in hex (64 digits)")))
}

/// Provisions (or with `Replace::Yes` rotates) a device's keys; the stored record.
pub(crate) fn provision(
    store: &mut dyn Store,
    device: &str,
    source: Source<'_>,
    replace: Replace,
    now: Timestamp,
) -> Result<DeviceKeysRecord, Failure> {
    let device = device_id(device)?;
    let id = device.to_string();
    store.device(&id).map_err(|e| {
        if e.is_not_found() {
            Failure::Invalid(format!(
                "device {id} is not in the registry (register it first: POST /api/v1/devices)"
            ))
        } else {
            Failure::Failed(e.to_string())
        }
    })?;
    let current = match store.device_keys(&id) {
        Ok(r) => Some(r),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(Failure::Failed(e.to_string())),
    };
    match (replace, &current) {
        (Replace::No, Some(r)) if r.revoked_at.is_none() => {
            return Err(Failure::Invalid(format!(
                "device {id} already has keys (provisioned {}); use `sealwatch device-key rotate` to replace them",
                r.created_at
            )));
        }
        (Replace::Yes, None) => {
            return Err(Failure::Invalid(format!(
                "device {id} has no keys to rotate; use `generate` or `set`"
            )));
        }
        _ => {}
    }
    let (signing, agreement) = match source {
        Source::Given { signing, agreement } => {
            let s = key_hex("--signing", signing)?;
            let a = key_hex("--agreement", agreement)?;
            VerifyingKey::from_bytes(&s).map_err(|e| {
                Failure::Invalid(format!("--signing: not a usable Ed25519 public key: {e}"))
            })?;
            (s, a)
        }
        Source::Generate { out } => {
            let mut secrets = [0u8; 64];
            getrandom::fill(&mut secrets)
                .map_err(|e| Failure::Failed(format!("no randomness from the system: {e}")))?;
            let mut signing_secret = [0u8; 32];
            let mut agreement_secret = [0u8; 32];
            signing_secret.copy_from_slice(&secrets[..32]);
            agreement_secret.copy_from_slice(&secrets[32..]);
            let keys = DeviceKeys::from_secrets(device.clone(), signing_secret, agreement_secret);
            let public = keys.public();
            // The file first: keys registered without their secrets kept anywhere would lock
            // the device out.
            write_secret_file(out, &secrets)?;
            (public.signing.to_bytes(), public.agreement.to_bytes())
        }
    };
    Ok(store.put_device_keys(
        &id,
        &sealproto::to_hex(&signing),
        &sealproto::to_hex(&agreement),
        now,
    )?)
}

/// Writes the secrets' hex into a new file readable by its owner only.
fn write_secret_file(path: &Path, secrets: &[u8; 64]) -> Result<(), Failure> {
    let name = path.display();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::Invalid(format!(
                "{name} already exists; key files are never overwritten"
            ))
        } else {
            Failure::Failed(format!("cannot create {name}: {e}"))
        }
    })?;
    writeln!(file, "{}", sealproto::to_hex(secrets))
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure::Failed(format!("cannot write {name}: {e}")))
}

/// The record as printed: public keys and dates, never a secret.
pub(crate) fn json(record: &DeviceKeysRecord) -> String {
    serde_json::to_string(record).unwrap_or_default()
}

/// One line of `list`: device, state, provisioned, signing key, agreement key.
pub(crate) fn line(record: &DeviceKeysRecord) -> String {
    let state = match record.revoked_at {
        Some(t) => format!("revoked {t}"),
        None => "valid".to_owned(),
    };
    format!(
        "{}\t{}\t{}\t{}\t{}",
        record.device, state, record.created_at, record.signing_public, record.agreement_public
    )
}
