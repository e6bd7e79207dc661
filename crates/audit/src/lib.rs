//! The tamper-evident audit chain (docs/security.md, "Audit chain"), as pure code: no I/O, no
//! clock, no randomness. The store keeps the rows; this crate says what they must be.
//!
//! Every security-relevant action is an [`Entry`]: its place (`seq`, from 1, no gaps), when,
//! who, what, on what, and a JSON detail kept as text. Each entry's `hash` is SHA-256 over a
//! domain label, the previous entry's hash (all zeros before the first, [`GENESIS`]) and the
//! entry's [canonical encoding](Entry::canonical): every field length-prefixed, the detail
//! hashed as the exact bytes stored, so nothing depends on how a JSON serialiser orders or
//! spaces things. Changing, removing or moving one entry therefore breaks the chain from there
//! on.
//!
//! A chain alone cannot show that its newest entries were cut off, nor that it was rebuilt
//! whole with fresh hashes. [`Checkpoint`]s answer that: (seq, hash, at) signed with the
//! platform's audit key (Ed25519), kept in the database and, for the strongest guarantee,
//! outside it. [`Verifier`] walks the entries in `seq` order against the checkpoints and names
//! the first [`Problem`].
//!
//! This crate is separate from `store` so that the encoding and the verifier have no database
//! in them: `sealwatch audit verify`, an auditor's own tool or a test can check a chain with
//! the same code the store used to build it.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The hash before the first entry (hex): 32 zero bytes.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain labels: an entry's hash can never be taken for a checkpoint's signed message, nor
/// for any other SHA-256 the platform computes.
const ENTRY_LABEL: &[u8] = b"sealwatch audit entry v1";
const CHECKPOINT_LABEL: &[u8] = b"sealwatch audit checkpoint v1";

/// What to record: the store gives it its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// When it happened (unix ms).
    pub at_ms: i64,
    /// Who did it: the API caller (`token <id> (<role>)`), `cli`, `retention`, ...
    pub actor: String,
    /// What was done, dotted: `transit.seal`, `alarm.acknowledge`, `token.create`, ...
    pub action: String,
    /// What it was done to: `transit:T-1`, `alarm:7`, `device:D-1`, ...
    pub subject: String,
    /// Anything else worth keeping, as JSON text (`{}` when nothing). Hashed as these bytes.
    pub detail: String,
}

impl Record {
    /// A record with its detail written from a JSON value.
    pub fn new(
        at_ms: i64,
        actor: impl Into<String>,
        action: impl Into<String>,
        subject: impl Into<String>,
        detail: &serde_json::Value,
    ) -> Record {
        Record {
            at_ms,
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            detail: detail.to_string(),
        }
    }
}

/// One link of the chain, as stored. Hashes are lowercase hex (64 digits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl Entry {
    /// The entry after `prev` (`None` for the first): its `seq` and hashes filled in.
    pub fn next(prev: Option<(i64, &str)>, record: Record) -> Entry {
        let (seq, prev_hash) = match prev {
            Some((seq, hash)) => (seq + 1, hash.to_owned()),
            None => (1, GENESIS.to_owned()),
        };
        let mut e = Entry {
            seq,
            at_ms: record.at_ms,
            actor: record.actor,
            action: record.action,
            subject: record.subject,
            detail: record.detail,
            prev_hash,
            hash: String::new(),
        };
        e.hash = e.computed_hash();
        e
    }

    /// Entries for `records`, chained after `prev`, in order.
    pub fn chain(
        prev: Option<(i64, &str)>,
        records: impl IntoIterator<Item = Record>,
    ) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        let mut prev = prev.map(|(seq, hash)| (seq, hash.to_owned()));
        for r in records {
            let e = Entry::next(prev.as_ref().map(|(s, h)| (*s, h.as_str())), r);
            prev = Some((e.seq, e.hash.clone()));
            out.push(e);
        }
        out
    }

    /// The canonical encoding of everything an entry says except its hashes: `seq` and `at_ms`
    /// as 8 bytes big-endian, then actor, action, subject and detail, each as its length (4
    /// bytes big-endian) and its UTF-8 bytes. Length prefixes make the encoding unambiguous:
    /// no two different entries encode alike, whatever their text holds.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            16 + 16 + self.actor.len() + self.action.len() + self.subject.len() + self.detail.len(),
        );
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.at_ms.to_be_bytes());
        for field in [&self.actor, &self.action, &self.subject, &self.detail] {
            put_bytes(&mut out, field.as_bytes());
        }
        out
    }

    /// SHA-256 over the domain label, `prev_hash` (its 32 bytes; the hex text itself when it
    /// is not valid hex, so an altered value still hashes to something that cannot match) and
    /// the canonical encoding, as hex.
    pub fn computed_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update((ENTRY_LABEL.len() as u32).to_be_bytes());
        h.update(ENTRY_LABEL);
        match from_hex32(&self.prev_hash) {
            Some(prev) => h.update(prev),
            None => put_hashed(&mut h, self.prev_hash.as_bytes()),
        }
        h.update(self.canonical());
        to_hex(&h.finalize())
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // A field longer than 4 GiB cannot be stored anyway; saturating keeps this total.
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_hashed(h: &mut Sha256, bytes: &[u8]) {
    h.update(u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    h.update(bytes);
}

/// A signed statement that the chain had `seq` entries, the last with `hash`, at `at_ms`.
/// Keep one outside the database (`sealwatch audit checkpoint`) to catch a truncation or a
/// rebuilt chain that the database's own checkpoints can no longer show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    /// The hash of entry `seq` (hex).
    pub hash: String,
    pub at_ms: i64,
    /// The Ed25519 public key that signed it (hex, 32 bytes).
    pub public_key: String,
    /// The Ed25519 signature over [`Checkpoint::message`] (hex, 64 bytes).
    pub signature: String,
}

impl Checkpoint {
    /// Signs the head of a chain.
    pub fn sign(key: &SigningKey, seq: i64, hash: &str, at_ms: i64) -> Checkpoint {
        let signature = key.sign(&Checkpoint::message(seq, hash, at_ms));
        Checkpoint {
            seq,
            hash: hash.to_owned(),
            at_ms,
            public_key: to_hex(key.verifying_key().as_bytes()),
            signature: to_hex(&signature.to_bytes()),
        }
    }

    /// What is signed: the domain label, `seq` and `at_ms` (8 bytes big-endian each) around the
    /// hash's text (length-prefixed).
    pub fn message(seq: i64, hash: &str, at_ms: i64) -> Vec<u8> {
        let mut m = Vec::with_capacity(CHECKPOINT_LABEL.len() + 8 + 4 + hash.len() + 8);
        put_bytes(&mut m, CHECKPOINT_LABEL);
        m.extend_from_slice(&seq.to_be_bytes());
        put_bytes(&mut m, hash.as_bytes());
        m.extend_from_slice(&at_ms.to_be_bytes());
        m
    }

    /// Checks the signature, and that the signer is `trusted` when given. The error says why,
    /// naming the field.
    pub fn check(&self, trusted: Option<&VerifyingKey>) -> Result<(), String> {
        let key = from_hex32(&self.public_key)
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
            .ok_or("public_key: not an Ed25519 public key (64 hex digits)")?;
        if let Some(t) = trusted
            && t != &key
        {
            return Err("public_key: signed with another key than the platform's audit key".into());
        }
        let sig: [u8; 64] = from_hex(&self.signature)
            .and_then(|b| b.try_into().ok())
            .ok_or("signature: not an Ed25519 signature (128 hex digits)")?;
        key.verify_strict(
            &Checkpoint::message(self.seq, &self.hash, self.at_ms),
            &Signature::from_bytes(&sig),
        )
        .map_err(|_| "signature: does not verify".to_owned())
    }

    /// The checkpoint as JSON, to keep outside the database.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "seq": self.seq,
            "hash": self.hash,
            "at_ms": self.at_ms,
            "public_key": self.public_key,
            "signature": self.signature,
        })
    }

    /// Reads [`Checkpoint::to_json`]'s output; the error names the field.
    pub fn from_json(v: &serde_json::Value) -> Result<Checkpoint, String> {
        let int = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_i64)
                .ok_or_else(|| format!("{k}: required, an integer"))
        };
        let text = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("{k}: required, a string"))
        };
        Ok(Checkpoint {
            seq: int("seq")?,
            hash: text("hash")?,
            at_ms: int("at_ms")?,
            public_key: text("public_key")?,
            signature: text("signature")?,
        })
    }
}

/// The first thing wrong with a chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The entry's hash does not match what it says: a field was changed.
    #[error("entry {seq} was altered: its hash does not match its contents")]
    Altered { seq: i64 },
    /// No entry has this seq, though a later one exists (or a checkpoint names it).
    #[error("entry {seq} is missing")]
    Missing { seq: i64 },
    /// The entry does not follow the one before it: entries were moved, swapped or inserted.
    #[error("entry {seq} is out of order: it does not follow entry {previous} (prev_hash link broken)", previous = seq - 1)]
    Reordered { seq: i64 },
    /// The entry is consistent and linked, but a signed checkpoint says otherwise: the chain
    /// was rebuilt with fresh hashes up to here.
    #[error("entry {seq} differs from the signed checkpoint of seq {seq}: the chain was rewritten")]
    Rewritten { seq: i64 },
    /// The chain ends before the newest checkpoint.
    #[error(
        "the chain was truncated: it ends at seq {last} but a signed checkpoint covers seq {checkpoint}"
    )]
    Truncated { last: i64, checkpoint: i64 },
    /// A checkpoint does not verify.
    #[error("checkpoint of seq {seq} is not valid: {why}")]
    BadCheckpoint { seq: i64, why: String },
}

impl Problem {
    /// The seq the problem is at (the last entry kept, for a truncation).
    pub fn seq(&self) -> i64 {
        match self {
            Problem::Altered { seq }
            | Problem::Missing { seq }
            | Problem::Reordered { seq }
            | Problem::Rewritten { seq }
            | Problem::BadCheckpoint { seq, .. } => *seq,
            Problem::Truncated { last, .. } => *last,
        }
    }
}

/// What an intact chain ends with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Entries checked (the last seq).
    pub count: u64,
    /// The last entry's seq and hash; `None` for an empty chain.
    pub last: Option<(i64, String)>,
    /// Checkpoints checked.
    pub checkpoints: usize,
}

/// Walks a chain in `seq` order (fed in pages with [`Verifier::push`]) and stops at the first
/// problem.
#[derive(Debug)]
pub struct Verifier {
    expected: i64,
    prev_hash: String,
    /// Checkpointed hashes by seq.
    checkpoints: BTreeMap<i64, String>,
}

impl Verifier {
    /// Checks every checkpoint's signature (against `trusted` when given, else against the key
    /// each carries) and gets ready to walk entries from seq 1.
    pub fn new(
        checkpoints: &[Checkpoint],
        trusted: Option<&VerifyingKey>,
    ) -> Result<Verifier, Problem> {
        let mut by_seq = BTreeMap::new();
        for c in checkpoints {
            c.check(trusted)
                .map_err(|why| Problem::BadCheckpoint { seq: c.seq, why })?;
            if let Some(other) = by_seq.insert(c.seq, c.hash.clone())
                && other != c.hash
            {
                return Err(Problem::BadCheckpoint {
                    seq: c.seq,
                    why: "two signed checkpoints give this seq different hashes".into(),
                });
            }
        }
        Ok(Verifier {
            expected: 1,
            prev_hash: GENESIS.to_owned(),
            checkpoints: by_seq,
        })
    }

    /// The next entry in `seq` order.
    pub fn push(&mut self, e: &Entry) -> Result<(), Problem> {
        if e.seq > self.expected {
            return Err(Problem::Missing { seq: self.expected });
        }
        if e.seq < self.expected {
            // Entries are read in seq order: a seq seen again is out of place.
            return Err(Problem::Reordered { seq: e.seq });
        }
        let consistent = e.computed_hash() == e.hash;
        let linked = e.prev_hash == self.prev_hash;
        match (consistent, linked) {
            (true, true) => {}
            // Linked to its predecessor but not matching itself: one of its fields changed.
            (false, true) => return Err(Problem::Altered { seq: e.seq }),
            // Not following its predecessor: it came from elsewhere in the chain (swapped
            // seqs make both false), or was inserted with a hash of its own making.
            (_, false) => return Err(Problem::Reordered { seq: e.seq }),
        }
        if let Some(signed) = self.checkpoints.get(&e.seq)
            && signed != &e.hash
        {
            return Err(Problem::Rewritten { seq: e.seq });
        }
        self.prev_hash.clone_from(&e.hash);
        self.expected += 1;
        Ok(())
    }

    /// After the last entry: the chain must reach the newest checkpoint.
    pub fn finish(self) -> Result<Head, Problem> {
        let last = self.expected - 1;
        if let Some((&newest, _)) = self.checkpoints.last_key_value()
            && newest > last
        {
            return Err(Problem::Truncated {
                last,
                checkpoint: newest,
            });
        }
        Ok(Head {
            count: u64::try_from(last).unwrap_or_default(),
            last: (last > 0).then_some((last, self.prev_hash)),
            checkpoints: self.checkpoints.len(),
        })
    }
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Bytes from hex (either case); `None` when it is not hex.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

fn from_hex32(s: &str) -> Option<[u8; 32]> {
    // Only the canonical lowercase form counts: an upper-cased hash is an altered one.
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    from_hex(s)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: i64) -> Record {
        Record::new(
            1_000 + i,
            "token abc (officer)",
            "transit.seal",
            format!("transit:T-{i}"),
            &serde_json::json!({ "i": i }),
        )
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn verify(entries: &[Entry], cps: &[Checkpoint]) -> Result<Head, Problem> {
        let mut v = Verifier::new(cps, Some(&key().verifying_key()))?;
        for e in entries {
            v.push(e)?;
        }
        v.finish()
    }

    #[test]
    fn an_intact_chain_verifies_and_checkpoints_round_trip() {
        let chain = Entry::chain(None, (1..=5).map(rec));
        assert_eq!(chain[0].prev_hash, GENESIS);
        assert_eq!(chain[4].seq, 5);
        let cp = Checkpoint::sign(&key(), 5, &chain[4].hash, 99);
        let back = Checkpoint::from_json(&cp.to_json()).unwrap();
        assert_eq!(back, cp);
        let head = verify(&chain, &[back]).unwrap();
        assert_eq!(head.count, 5);
        assert_eq!(head.last, Some((5, chain[4].hash.clone())));
        // Appending in two calls gives the same chain as in one.
        let first = Entry::chain(None, (1..=2).map(rec));
        let rest = Entry::chain(Some((2, &first[1].hash)), (3..=5).map(rec));
        assert_eq!([first, rest].concat(), chain);
    }

    #[test]
    fn the_encoding_is_unambiguous() {
        let a = Entry::next(None, Record::new(1, "ab", "c", "d", &serde_json::json!({})));
        let b = Entry::next(None, Record::new(1, "a", "bc", "d", &serde_json::json!({})));
        assert_ne!(a.canonical(), b.canonical());
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn each_kind_of_tampering_is_named_at_its_seq() {
        let chain = Entry::chain(None, (1..=6).map(rec));
        let cp = Checkpoint::sign(&key(), 6, &chain[5].hash, 99);

        let mut edited = chain.clone();
        edited[2].detail = r#"{"i":99}"#.into();
        assert_eq!(verify(&edited, &[]), Err(Problem::Altered { seq: 3 }));

        let mut deleted = chain.clone();
        deleted.remove(3);
        assert_eq!(verify(&deleted, &[]), Err(Problem::Missing { seq: 4 }));

        // Seqs swapped between entries 2 and 5: read in seq order, 2's place holds 5's row.
        let mut swapped = chain.clone();
        let (a, b) = (swapped[1].clone(), swapped[4].clone());
        swapped[1] = Entry { seq: 2, ..b };
        swapped[4] = Entry { seq: 5, ..a };
        assert_eq!(verify(&swapped, &[]), Err(Problem::Reordered { seq: 2 }));

        let truncated = &chain[..4];
        assert_eq!(
            verify(truncated, std::slice::from_ref(&cp)),
            Err(Problem::Truncated {
                last: 4,
                checkpoint: 6
            })
        );
        // Without a checkpoint past it, a cut-off tail cannot be seen.
        assert!(verify(truncated, &[]).is_ok());

        // Rebuilt from entry 3 on with fresh hashes: consistent, but not what was signed.
        let mut rebuilt = chain[..2].to_vec();
        let mut changed = rec(3);
        changed.actor = "someone else".into();
        rebuilt.extend(Entry::chain(
            Some((2, &chain[1].hash)),
            std::iter::once(changed).chain((4..=6).map(rec)),
        ));
        assert!(verify(&rebuilt, &[]).is_ok());
        assert_eq!(verify(&rebuilt, &[cp]), Err(Problem::Rewritten { seq: 6 }));
    }

    #[test]
    fn bad_checkpoints_are_refused() {
        let chain = Entry::chain(None, (1..=2).map(rec));
        let mut cp = Checkpoint::sign(&key(), 2, &chain[1].hash, 99);
        cp.seq = 1;
        assert!(matches!(
            verify(&chain, &[cp]),
            Err(Problem::BadCheckpoint { seq: 1, why }) if why.starts_with("signature:")
        ));
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let foreign = Checkpoint::sign(&other, 2, &chain[1].hash, 99);
        assert!(matches!(
            verify(&chain, &[foreign]),
            Err(Problem::BadCheckpoint { seq: 2, why }) if why.starts_with("public_key:")
        ));
        assert!(
            Checkpoint::from_json(&serde_json::json!({"seq": 1}))
                .is_err_and(|e| e.starts_with("hash:"))
        );
    }
}
