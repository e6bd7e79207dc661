//! `sealwatch audit ...`: the audit chain on the store directly (docs/security.md, "Audit
//! chain"), beside a running service or not.

use std::path::Path;
use std::process::ExitCode;

use audit::{Checkpoint, Verifier};
use store::Store;

/// Entries read per query while verifying.
const PAGE: u32 = 10_000;

/// Who the chain names for what the command line does: the operating-system user, when known.
pub fn cli_actor() -> String {
    match std::env::var("USER").or_else(|_| std::env::var("USERNAME")) {
        Ok(user) if !user.trim().is_empty() => format!("cli (user {})", user.trim()),
        _ => "cli".to_owned(),
    }
}

/// Records a change made from the command line. The change is already made: a failure to
/// record it is reported (exit 1) but does not undo it.
pub fn record(
    store: &mut dyn Store,
    action: &str,
    subject: String,
    detail: serde_json::Value,
) -> Result<(), store::Error> {
    store
        .append_audit(&[store::AuditRecord::new(
            server::wall_clock().unix_ms(),
            cli_actor(),
            action,
            subject,
            &detail,
        )])
        .map(drop)
}

/// The public key checkpoints must be signed with: `--public-key`, else the audit key file's
/// public half when the file exists (it is never created here).
pub fn trusted_key(
    public_key: Option<&str>,
    key_file: &Path,
) -> Result<Option<ed25519_dalek::VerifyingKey>, String> {
    if let Some(hex) = public_key {
        let bytes: [u8; 32] = audit::from_hex(hex.trim())
            .and_then(|b| b.try_into().ok())
            .ok_or("--public-key: expected 64 hex digits (an Ed25519 public key)")?;
        return ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(Some)
            .map_err(|_| "--public-key: not an Ed25519 public key".to_owned());
    }
    if !key_file.exists() {
        return Ok(None);
    }
    server::audit_chain::load_or_create_audit_key(key_file)
        .map(|(key, _)| Some(key.verifying_key()))
        .map_err(|e| e.to_string())
}

/// Reads a checkpoint kept outside the database (`sealwatch audit checkpoint`'s output).
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    Checkpoint::from_json(&value).map_err(|e| format!("{}: {e}", path.display()))
}

/// `sealwatch audit verify`: 0 when intact, 1 naming the first problem, 2 for bad input.
pub fn verify(
    store: &mut dyn Store,
    trusted: Option<ed25519_dalek::VerifyingKey>,
    outside: Vec<Checkpoint>,
) -> ExitCode {
    let checkpoints = match store.audit_checkpoints() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot read the audit checkpoints: {e}");
            return ExitCode::FAILURE;
        }
    };
    let trusted = match (trusted, outside.first()) {
        (Some(k), _) => Some(k),
        // A checkpoint kept outside was taken from the platform: its key is the platform's.
        (None, Some(c)) => audit::from_hex(&c.public_key)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok()),
        (None, None) => None,
    };
    if trusted.is_none() && !checkpoints.is_empty() {
        eprintln!(
            "note: no audit key file and no --public-key: checkpoints are checked with the key each carries"
        );
    }
    match check_chain(store, trusted, outside) {
        Ok(Ok(head)) => {
            match head.last {
                Some((seq, hash)) => println!(
                    "audit chain intact: {} entries, head seq {seq} hash {hash}, {} checkpoints checked",
                    head.count, head.checkpoints
                ),
                None => println!(
                    "audit chain intact: 0 entries, {} checkpoints checked",
                    head.checkpoints
                ),
            }
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("error: cannot read the audit chain: {e}");
            ExitCode::FAILURE
        }
        Err(problem) => {
            println!("audit chain NOT intact: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// Walks the whole chain against its checkpoints (the store's and `outside`), with `trusted`
/// as the platform's key when known. Outer error: the chain is not intact (the problem names
/// the first bad entry); inner error: the store could not be read.
pub fn check_chain(
    store: &mut dyn Store,
    trusted: Option<ed25519_dalek::VerifyingKey>,
    outside: Vec<Checkpoint>,
) -> Result<Result<audit::Head, store::Error>, audit::Problem> {
    let mut checkpoints = match store.audit_checkpoints() {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    checkpoints.extend(outside);
    let mut v = Verifier::new(&checkpoints, trusted.as_ref())?;
    let mut after = 0;
    loop {
        let page = match store.audit_entries(after, PAGE) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            v.push(e)?;
        }
    }
    v.finish().map(Ok)
}

/// `sealwatch audit checkpoint`: the latest signed checkpoint, as JSON to keep elsewhere.
pub fn checkpoint(store: &mut dyn Store) -> ExitCode {
    match store.last_audit_checkpoint() {
        Ok(last) => match last {
            Some(c) => {
                println!("{}", c.to_json());
                eprintln!(
                    "keep this outside the database; `sealwatch audit verify --checkpoint FILE` checks the chain against it"
                );
                ExitCode::SUCCESS
            }
            None => {
                eprintln!(
                    "error: no checkpoint yet: the service signs one every audit.checkpoint_every_entries entries, every audit.checkpoint_every_s seconds and when it stops"
                );
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("error: cannot read the audit checkpoints: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `sealwatch audit list`: the newest `limit` entries, oldest first, one JSON object a line.
pub fn list(store: &mut dyn Store, limit: u32) -> ExitCode {
    let entries = store.audit_head().and_then(|head| {
        let last = head.map_or(0, |h| h.seq);
        store.audit_entries(last.saturating_sub(i64::from(limit)), limit)
    });
    match entries {
        Ok(entries) => {
            for e in &entries {
                println!("{}", server::audit_chain::entry_json(e));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot read the audit chain: {e}");
            ExitCode::FAILURE
        }
    }
}
