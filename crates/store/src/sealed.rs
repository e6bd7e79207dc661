//! Encryption at rest of the personal and confidential fields of a transit (§9.7 of the WCO
//! report; issue 5).
//!
//! A transit is stored as JSON twice: its row in `transits` and the `declare` input of the log.
//! Before either is written, the fields listed in [`SEALED_FIELDS`] are replaced by
//! `{"sealed": "xc20p:KEY_ID:HEX(nonce || ciphertext || tag)"}`; every read opens them again, so
//! the supervisor, the replay and the API see the clear values and nothing else changes.
//!
//! - Suite: XChaCha20-Poly1305 (RustCrypto) with a random 24-byte nonce per value, so nonces
//!   never need a counter that would have to survive restarts and several writers.
//! - Associated data: `sealwatch/transit/ID/FIELD`, so a sealed value copied to another transit
//!   or another field fails to open.
//! - Key ring: the last key encrypts, every key decrypts, so a new key can be added while old
//!   values are still readable and re-encrypted in the background ([`crate::Store::reseal`]).
//! - Keys never appear in `Debug` output, logs or errors; errors name the key id.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use serde_json::Value;

use crate::{Error, Result};

/// The fields sealed, as paths in a transit's JSON document; `*` stands for every element of
/// an array. The driver's name and contact are personal data (§9.7); the parties to the
/// consignment and the references of the commercial documents (invoices, contracts) are
/// confidential business data. Goods descriptions, HS codes and quantities stay clear: risk
/// rules and the operators' lists need them, and they name no one.
pub const SEALED_FIELDS: &[&str] = &[
    "driver.name",
    "driver.contact",
    "cargo.*.consignor",
    "cargo.*.consignee",
    "declaration.documents.*.reference",
];

/// The algorithm suites, named in every sealed value so another can be added later and old
/// values still open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// XChaCha20-Poly1305, 32-byte key, random 24-byte nonce, 16-byte tag.
    XChaCha20Poly1305,
}

impl Suite {
    /// The suite's name in a sealed value.
    pub fn id(self) -> &'static str {
        match self {
            Suite::XChaCha20Poly1305 => "xc20p",
        }
    }

    fn from_id(id: &str) -> Option<Suite> {
        (id == "xc20p").then_some(Suite::XChaCha20Poly1305)
    }
}

/// Data-encryption keys: id and 32 bytes each; the last one is the current key.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<(String, [u8; 32])>,
}

impl Drop for KeyRing {
    fn drop(&mut self) {
        // Copies of a key do not outlive their ring in freed memory.
        for (_, key) in &mut self.keys {
            zeroize::Zeroize::zeroize(key);
        }
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("KeyRing").field("key_ids", &ids).finish()
    }
}

/// The environment variable holding a data key in hex (64 digits), as an alternative to the
/// key file.
pub const KEY_ENV: &str = "SEALWATCH_STORE_ENCRYPTION_KEY";

fn key_error(what: impl fmt::Display) -> Error {
    Error::Sealed(what.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn random_key() -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| key_error(format!("no random numbers: {e}")))?;
    Ok(key)
}

impl KeyRing {
    /// A ring of one key.
    pub fn single(id: &str, key: [u8; 32]) -> Result<KeyRing> {
        if !valid_id(id) {
            return Err(key_error(format!(
                "key id {id:?}: letters, digits, - and _ only"
            )));
        }
        Ok(KeyRing {
            keys: vec![(id.to_owned(), key)],
        })
    }

    /// A ring of one key given as 64 hex digits (the environment variable [`KEY_ENV`]); its id
    /// is `env`.
    pub fn from_hex(hex_key: &str) -> Result<KeyRing> {
        let key = unhex(hex_key.trim())
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| key_error(format!("{KEY_ENV}: not 64 hex digits (a 32-byte key)")))?;
        KeyRing::single("env", key)
    }

    /// Parses a key file: one `ID HEX` line per key, oldest first, `#` comments; the last key is
    /// the current one. Errors name the line, never its key.
    pub fn parse(text: &str) -> Result<KeyRing> {
        let mut keys: Vec<(String, [u8; 32])> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || key_error(format!("key file line {}: expected `ID HEX64`", n + 1));
            let (id, key) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
            let key = unhex(key.trim())
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .ok_or_else(bad)?;
            if !valid_id(id) {
                return Err(bad());
            }
            if keys.iter().any(|(k, _)| k == id) {
                return Err(key_error(format!(
                    "key file line {}: key id {id} appears twice",
                    n + 1
                )));
            }
            keys.push((id.to_owned(), key));
        }
        if keys.is_empty() {
            return Err(key_error("key file holds no key"));
        }
        Ok(KeyRing { keys })
    }

    /// The key file's text for this ring.
    fn to_file_text(&self) -> String {
        let mut text = String::from(
            "# sealwatch data-encryption keys (docs/security.md, \"Encryption at rest\").\n\
             # One `ID HEX` line per key, oldest first; the last key encrypts, all decrypt.\n",
        );
        for (id, key) in &self.keys {
            text.push_str(&format!("{id} {}\n", hex(key)));
        }
        text
    }

    /// Reads the key file at `path`, creating it (mode 0600) with one random key `k1` if it does
    /// not exist.
    pub fn load_or_create(path: &Path) -> Result<KeyRing> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                KeyRing::parse(&text).map_err(|e| key_error(format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let ring = KeyRing::single("k1", random_key()?)?;
                write_private(path, &ring.to_file_text())?;
                Ok(ring)
            }
            Err(e) => Err(key_error(format!("{}: {e}", path.display()))),
        }
    }

    /// Adds a new random current key to the key file at `path` (the old keys stay, for
    /// reading) and returns its id.
    pub fn rotate_file(path: &Path) -> Result<String> {
        let mut ring = KeyRing::load_or_create(path)?;
        let next = (1..)
            .map(|n| format!("k{n}"))
            .find(|id| ring.keys.iter().all(|(k, _)| k != id))
            .unwrap_or_default();
        ring.keys.push((next.clone(), random_key()?));
        write_private(path, &ring.to_file_text())?;
        Ok(next)
    }

    /// Removes the key `id` from the key file at `path`; the current key cannot be retired.
    pub fn retire_in_file(path: &Path, id: &str) -> Result<()> {
        let mut ring = KeyRing::load_or_create(path)?;
        if ring.current_id() == id {
            return Err(key_error(format!(
                "key {id} is the current key: rotate first"
            )));
        }
        let before = ring.keys.len();
        ring.keys.retain(|(k, _)| k != id);
        if ring.keys.len() == before {
            return Err(key_error(format!("no key {id} in {}", path.display())));
        }
        write_private(path, &ring.to_file_text())
    }

    /// The id of the key that encrypts.
    pub fn current_id(&self) -> &str {
        self.keys
            .last()
            .map(|(id, _)| id.as_str())
            .unwrap_or_default()
    }

    /// The ids of all keys, oldest first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(id, _)| id.as_str()).collect()
    }

    fn key(&self, id: &str) -> Option<&[u8; 32]> {
        self.keys.iter().find(|(k, _)| k == id).map(|(_, key)| key)
    }

    /// Seals `clear` under the current key, bound to `aad`.
    pub fn seal(&self, aad: &str, clear: &[u8]) -> Result<String> {
        let (id, key) = self
            .keys
            .last()
            .ok_or_else(|| key_error("empty key ring"))?;
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| key_error(format!("no random numbers: {e}")))?;
        let mut body = clear.to_vec();
        XChaCha20Poly1305::new(&(*key).into())
            .encrypt_in_place(&XNonce::from(nonce), aad.as_bytes(), &mut body)
            .map_err(|_| key_error("value too long to seal"))?;
        Ok(format!(
            "{}:{id}:{}{}",
            Suite::XChaCha20Poly1305.id(),
            hex(&nonce),
            hex(&body)
        ))
    }

    /// Opens a value sealed by [`KeyRing::seal`] with the same `aad`.
    pub fn open(&self, aad: &str, sealed: &str) -> Result<Vec<u8>> {
        let (suite, id, body) =
            split_sealed(sealed).ok_or_else(|| key_error(format!("{aad}: not a sealed value")))?;
        let key = self.key(id).ok_or_else(|| {
            key_error(format!(
                "{aad}: sealed with key {id}, which is not in the key ring (known: {})",
                self.ids().join(", ")
            ))
        })?;
        let bytes = unhex(body)
            .filter(|b| b.len() >= 24 + 16)
            .ok_or_else(|| key_error(format!("{aad}: sealed value is malformed")))?;
        // A new suite is a new arm here: the values already stored keep opening with theirs.
        let opened = match suite {
            Suite::XChaCha20Poly1305 => {
                let nonce: [u8; 24] = bytes[..24].try_into().unwrap_or([0; 24]);
                let mut message = bytes[24..].to_vec();
                XChaCha20Poly1305::new(&(*key).into())
                    .decrypt_in_place(&XNonce::from(nonce), aad.as_bytes(), &mut message)
                    .map(|()| message)
            }
        };
        opened.map_err(|_| {
            key_error(format!(
                "{aad}: sealed value does not authenticate under key {id} (altered, moved from \
                 another transit or field, or a different key with that id)"
            ))
        })
    }
}

/// Suite, key id and hex body of a sealed value.
fn split_sealed(sealed: &str) -> Option<(Suite, &str, &str)> {
    let mut parts = sealed.splitn(3, ':');
    let suite = Suite::from_id(parts.next()?)?;
    Some((suite, parts.next()?, parts.next()?))
}

/// The key id of a sealed value, if it is one.
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    split_sealed(sealed).map(|(_, id, _)| id)
}

/// Writes `text` to `path` readable by the owner only, replacing it atomically.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let fail = |e: std::io::Error| key_error(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// Where a store's keys come from: a fixed ring, or a key file read again when it changes (so
/// a key added by `sealwatch keys rotate-data-key` is used by the running service at its next
/// write, without a restart).
#[derive(Debug, Default)]
pub struct Keys {
    ring: Option<KeyRing>,
    file: Option<(PathBuf, Option<SystemTime>)>,
}

impl Keys {
    /// No key: values are written clear, and sealed values cannot be read.
    pub fn none() -> Keys {
        Keys::default()
    }

    /// A fixed ring.
    pub fn ring(ring: KeyRing) -> Keys {
        Keys {
            ring: Some(ring),
            file: None,
        }
    }

    /// The key file at `path`, created with a random key if missing, re-read when modified.
    pub fn file(path: &Path) -> Result<Keys> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let ring = KeyRing::load_or_create(path)?;
        let modified = modified.or_else(|| std::fs::metadata(path).and_then(|m| m.modified()).ok());
        Ok(Keys {
            ring: Some(ring),
            file: Some((path.to_owned(), modified)),
        })
    }

    /// The keys as configured: the environment variable [`KEY_ENV`] if set, else the key file
    /// if one is given, else none.
    pub fn configured(file: Option<&Path>) -> Result<Keys> {
        match std::env::var(KEY_ENV) {
            Ok(hex_key) if !hex_key.trim().is_empty() => {
                Ok(Keys::ring(KeyRing::from_hex(&hex_key)?))
            }
            _ => match file {
                Some(path) => Keys::file(path),
                None => Ok(Keys::none()),
            },
        }
    }

    /// The current ring, after re-reading the key file if it changed.
    pub(crate) fn current(&mut self) -> Result<Option<&KeyRing>> {
        if let Some((path, seen)) = &mut self.file {
            let now = std::fs::metadata(&*path).and_then(|m| m.modified()).ok();
            if now != *seen {
                // Re-read, never re-created: a key file that went away is an error, not a
                // reason to start sealing under a fresh key.
                let text = std::fs::read_to_string(&*path)
                    .map_err(|e| key_error(format!("{}: {e}", path.display())))?;
                let ring = KeyRing::parse(&text)
                    .map_err(|e| key_error(format!("{}: {e}", path.display())))?;
                self.ring = Some(ring);
                *seen = now;
            }
        }
        Ok(self.ring.as_ref())
    }
}

fn aad(transit_id: &str, field: &str) -> String {
    format!("sealwatch/transit/{transit_id}/{field}")
}

/// Calls `f` with every value at the sealed paths of a transit document, and the field's name
/// (array indexes spelled out, so values cannot be swapped between cargo lines either).
fn each_field(doc: &mut Value, mut f: impl FnMut(&str, &mut Value) -> Result<()>) -> Result<()> {
    fn walk(
        v: &mut Value,
        path: &[&str],
        name: &mut String,
        f: &mut dyn FnMut(&str, &mut Value) -> Result<()>,
    ) -> Result<()> {
        let Some((first, rest)) = path.split_first() else {
            return if v.is_null() { Ok(()) } else { f(name, v) };
        };
        let len = name.len();
        if *first == "*" {
            if let Value::Array(items) = v {
                for (i, item) in items.iter_mut().enumerate() {
                    name.push_str(&format!(".{i}"));
                    walk(item, rest, name, f)?;
                    name.truncate(len);
                }
            }
        } else if let Some(next) = v.get_mut(*first) {
            if !name.is_empty() {
                name.push('.');
            }
            name.push_str(first);
            walk(next, rest, name, f)?;
            name.truncate(len);
        }
        Ok(())
    }
    for field in SEALED_FIELDS {
        let path: Vec<&str> = field.split('.').collect();
        walk(doc, &path, &mut String::new(), &mut f)?;
    }
    Ok(())
}

fn sealed_text(v: &Value) -> Option<&str> {
    match v {
        Value::Object(m) if m.len() == 1 => m.get("sealed").and_then(Value::as_str),
        _ => None,
    }
}

fn transit_id(doc: &Value) -> Result<String> {
    doc.get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| key_error("transit document without an id"))
}

/// Seals the sensitive fields of a transit document in place (no-op without a ring).
pub(crate) fn seal_transit(ring: Option<&KeyRing>, doc: &mut Value) -> Result<()> {
    let Some(ring) = ring else { return Ok(()) };
    let id = transit_id(doc)?;
    each_field(doc, |field, v| {
        if sealed_text(v).is_none() {
            let clear = serde_json::to_vec(v)?;
            *v = serde_json::json!({ "sealed": ring.seal(&aad(&id, field), &clear)? });
        }
        Ok(())
    })
}

/// Opens the sealed fields of a transit document in place; clear fields (written without a
/// key) pass through.
pub(crate) fn open_transit(ring: Option<&KeyRing>, doc: &mut Value) -> Result<()> {
    let id = transit_id(doc)?;
    each_field(doc, |field, v| {
        if let Some(sealed) = sealed_text(v) {
            let ring = ring.ok_or_else(|| {
                key_error(format!(
                    "transit {id} field {field} is sealed with key {} but no encryption key is configured \
                     (store.encryption_key_file or {KEY_ENV})",
                    sealed_key_id(sealed).unwrap_or("?")
                ))
            })?;
            let clear = ring.open(&aad(&id, field), sealed)?;
            *v = serde_json::from_slice(&clear)?;
        }
        Ok(())
    })
}

/// Re-seals a transit document under the current key, in place: true if any field was clear
/// or sealed under another key, false if it is already current (or there is no ring).
pub(crate) fn reseal_transit(ring: Option<&KeyRing>, doc: &mut Value) -> Result<bool> {
    let Some(ring) = ring else { return Ok(false) };
    let mut stale = false;
    each_field(doc, |_, v| {
        stale |= sealed_text(v).and_then(sealed_key_id) != Some(ring.current_id());
        Ok(())
    })?;
    if stale {
        open_transit(Some(ring), doc)?;
        seal_transit(Some(ring), doc)?;
    }
    Ok(stale)
}

/// A transit as stored: its JSON text with the sensitive fields sealed.
pub(crate) fn transit_doc(ring: Option<&KeyRing>, transit: &model::Transit) -> Result<String> {
    let mut doc = serde_json::to_value(transit)?;
    seal_transit(ring, &mut doc)?;
    Ok(serde_json::to_string(&doc)?)
}

/// A transit read back from its stored JSON text.
pub(crate) fn transit_from_doc(ring: Option<&KeyRing>, text: &str) -> Result<model::Transit> {
    let mut doc: Value = serde_json::from_str(text)?;
    open_transit(ring, &mut doc)?;
    Ok(serde_json::from_value(doc)?)
}

/// A logged input as stored: a `declare` carries its transit sealed like the row.
pub(crate) fn input_doc(ring: Option<&KeyRing>, input: &crate::LoggedInput) -> Result<String> {
    let mut doc = serde_json::to_value(input)?;
    if let crate::LoggedInput::Declare { .. } = input
        && let Some(t) = doc.get_mut("transit")
    {
        seal_transit(ring, t)?;
    }
    Ok(serde_json::to_string(&doc)?)
}

/// A logged input read back from its stored JSON text.
pub(crate) fn input_from_doc(ring: Option<&KeyRing>, text: &str) -> Result<crate::LoggedInput> {
    let mut doc: Value = serde_json::from_str(text)?;
    if doc.get("kind").and_then(Value::as_str) == Some("declare")
        && let Some(t) = doc.get_mut("transit")
    {
        open_transit(ring, t)?;
    }
    Ok(serde_json::from_value(doc)?)
}

/// Re-seals the transit inside a stored `declare` input; `None` if nothing changes.
pub(crate) fn reseal_input_doc(ring: Option<&KeyRing>, text: &str) -> Result<Option<String>> {
    let mut doc: Value = serde_json::from_str(text)?;
    let changed = match doc.get_mut("transit") {
        Some(t) => reseal_transit(ring, t)?,
        None => false,
    };
    Ok(changed.then(|| doc.to_string()))
}

/// Re-seals a stored transit row's document; `None` if nothing changes.
pub(crate) fn reseal_transit_doc(ring: Option<&KeyRing>, text: &str) -> Result<Option<String>> {
    let mut doc: Value = serde_json::from_str(text)?;
    Ok(reseal_transit(ring, &mut doc)?.then(|| doc.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let ring = KeyRing::single("k1", [7; 32]).unwrap();
        let s = ring.seal("a", b"Ivan Petrov").unwrap();
        assert!(s.starts_with("xc20p:k1:"));
        assert!(!s.contains("Ivan"));
        assert_eq!(ring.open("a", &s).unwrap(), b"Ivan Petrov");
        let err = ring.open("b", &s).unwrap_err().to_string();
        assert!(err.contains("does not authenticate under key k1"), "{err}");
        let other = KeyRing::single("k2", [8; 32]).unwrap();
        let err = other.open("a", &s).unwrap_err().to_string();
        assert!(err.contains("key k1") && err.contains("known: k2"), "{err}");
        assert!(!err.contains(&hex(&[7; 32])));
    }

    #[test]
    fn key_file_parse_rotate_retire() {
        let dir = std::env::temp_dir().join(format!("sealwatch-keys-{}", std::process::id()));
        let path = dir.join("data.keys");
        let _ = std::fs::remove_file(&path);
        let ring = KeyRing::load_or_create(&path).unwrap();
        assert_eq!(ring.ids(), ["k1"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(KeyRing::rotate_file(&path).unwrap(), "k2");
        let ring = KeyRing::load_or_create(&path).unwrap();
        assert_eq!(ring.ids(), ["k1", "k2"]);
        assert_eq!(ring.current_id(), "k2");
        assert!(KeyRing::retire_in_file(&path, "k2").is_err());
        KeyRing::retire_in_file(&path, "k1").unwrap();
        assert_eq!(KeyRing::load_or_create(&path).unwrap().ids(), ["k2"]);
        let err = KeyRing::parse("k1 zz\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        assert!(format!("{ring:?}").contains("k1") && !format!("{ring:?}").contains("07070707"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
