//! The audit chain's service side (docs/security.md, "Audit chain"): the platform's audit key,
//! the checkpoints the writer signs, who the API records as actor, and `GET /api/v1/audit`.
//!
//! What goes through the ingest path (declarations, officers' actions) is chained in the
//! commit that stores it (`ingest::Pipeline::submit_as`), and handling steps in the store's
//! `handle_alarm` transaction. Other security-relevant changes made through the API (device
//! and reader keys, remote commands, container pairings) are recorded with
//! [`store::Store::append_audit`] right after the change, in the same job on the writer thread:
//! nothing comes between them, but a failure of the store between the two would leave the
//! change unrecorded (the request then fails with 500 and the log says why).

use std::path::Path as FsPath;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use ed25519_dalek::SigningKey;
use serde::Deserialize;
use store::{AuditCheckpoint, AuditEntry, AuditRecord, Store};

use crate::auth::Caller;
use crate::{AppState, Problem, store_problem, wall_clock};

/// The platform's audit signing key (Ed25519): it signs checkpoints and nothing else (a
/// separate key per purpose). Its `Debug` shows the public half only.
#[derive(Clone)]
pub struct AuditKey(SigningKey);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AuditKey").field(&self.public_hex()).finish()
    }
}

impl AuditKey {
    pub fn from_secret(secret: [u8; 32]) -> AuditKey {
        AuditKey(SigningKey::from_bytes(&secret))
    }

    /// The public key (hex): what `sealwatch audit verify --public-key` pins.
    pub fn public_hex(&self) -> String {
        audit::to_hex(self.0.verifying_key().as_bytes())
    }

    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.0.verifying_key()
    }

    /// Signs the head of the chain.
    pub fn sign(&self, seq: i64, hash: &str, at_ms: i64) -> AuditCheckpoint {
        AuditCheckpoint::sign(&self.0, seq, hash, at_ms)
    }
}

/// Why the audit key file could not be used. The key itself is never in a message.
#[derive(Debug, thiserror::Error)]
pub enum AuditKeyError {
    #[error("audit key file {0}: {1}")]
    Io(String, std::io::Error),
    #[error("audit key file {0}: expected 64 hex digits (an Ed25519 secret key)")]
    Format(String),
    #[error("cannot draw a random audit key: {0}")]
    Random(String),
}

/// Reads the audit key from `path` (64 hex digits), or creates it (mode 0600, never
/// overwriting) when the file does not exist; `true` when it was created.
pub fn load_or_create_audit_key(path: &FsPath) -> Result<(AuditKey, bool), AuditKeyError> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret: [u8; 32] = audit::from_hex(text.trim())
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| AuditKeyError::Format(name.clone()))?;
            Ok((AuditKey::from_secret(secret), false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| AuditKeyError::Random(e.to_string()))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| AuditKeyError::Io(name.clone(), e))?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options
                .open(path)
                .map_err(|e| AuditKeyError::Io(name.clone(), e))?;
            use std::io::Write;
            writeln!(file, "{}", audit::to_hex(&secret))
                .and_then(|()| file.sync_all())
                .map_err(|e| AuditKeyError::Io(name.clone(), e))?;
            Ok((AuditKey::from_secret(secret), true))
        }
        Err(e) => Err(AuditKeyError::Io(name, e)),
    }
}

/// When the writer signs checkpoints.
#[derive(Clone, Debug)]
pub struct AuditConfig {
    /// No key: no checkpoints (the chain is still kept and verifiable, but a truncation of its
    /// newest entries cannot be seen).
    pub key: Option<AuditKey>,
    /// A checkpoint once this many entries were added since the last one ...
    pub checkpoint_every_entries: u64,
    /// ... or once this long has passed with entries added.
    pub checkpoint_every: Duration,
}

impl Default for AuditConfig {
    fn default() -> AuditConfig {
        AuditConfig {
            key: None,
            checkpoint_every_entries: 1000,
            checkpoint_every: Duration::from_secs(60),
        }
    }
}

/// The writer's checkpoint schedule. It looks at the chain's head on every clock tick (once a
/// second by default) rather than after every commit, so ingest pays nothing for it.
pub(crate) struct Checkpointer {
    config: AuditConfig,
    /// The seq of the last checkpoint signed (0: none).
    last_seq: i64,
    last_at: Instant,
}

impl Checkpointer {
    pub(crate) fn new(config: AuditConfig, store: &mut dyn Store) -> Checkpointer {
        let last_seq = match config.key {
            Some(_) => match store.last_audit_checkpoint() {
                Ok(last) => last.map_or(0, |c| c.seq),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the audit checkpoints; signing a new one at the next tick");
                    0
                }
            },
            None => 0,
        };
        Checkpointer {
            config,
            last_seq,
            last_at: Instant::now(),
        }
    }

    /// Signs a checkpoint of the chain's head when it is due (or when `force`, at shutdown)
    /// and entries were added since the last one.
    pub(crate) fn maybe(&mut self, store: &mut dyn Store, force: bool) {
        let Some(key) = &self.config.key else {
            return;
        };
        let head = match store.audit_head() {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the audit chain's head; checkpoint later");
                return;
            }
        };
        let added = u64::try_from(head.seq - self.last_seq).unwrap_or(0);
        let due = force
            || added >= self.config.checkpoint_every_entries
            || self.last_at.elapsed() >= self.config.checkpoint_every;
        if added == 0 || !due {
            return;
        }
        let checkpoint = key.sign(head.seq, &head.hash, wall_clock().unix_ms());
        match store.add_audit_checkpoint(&checkpoint) {
            Ok(()) => {
                tracing::debug!(seq = head.seq, "audit checkpoint signed");
                self.last_seq = head.seq;
                self.last_at = Instant::now();
            }
            Err(e) => tracing::warn!(error = %e, "cannot keep an audit checkpoint; trying again"),
        }
    }
}

/// Who the audit chain names for an API request: the token (its public id and role), or
/// `anonymous` when the service does not require one.
pub(crate) fn caller_actor(caller: Option<&Caller>) -> String {
    match caller {
        Some(c) => format!("token {} ({})", c.token_id, c.role),
        None => "anonymous".to_owned(),
    }
}

/// Appends one record for a change just made through the API (in the same writer job).
pub(crate) fn record(
    store: &mut dyn Store,
    actor: &str,
    action: &str,
    subject: String,
    detail: serde_json::Value,
) -> store::Result<()> {
    store
        .append_audit(&[AuditRecord::new(
            wall_clock().unix_ms(),
            actor,
            action,
            subject,
            &detail,
        )])
        .map(drop)
}

/// An entry as the API shows it.
pub fn entry_json(e: &AuditEntry) -> serde_json::Value {
    let detail: serde_json::Value = serde_json::from_str(&e.detail)
        .unwrap_or_else(|_| serde_json::Value::String(e.detail.clone()));
    serde_json::json!({
        "seq": e.seq,
        "at": model::Timestamp::from_unix_ms(e.at_ms),
        "actor": e.actor,
        "action": e.action,
        "subject": e.subject,
        "detail": detail,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    /// The seq of the last entry of the previous page.
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /api/v1/audit?after=SEQ&limit=N`: the chain in seq order, for auditors. (Any valid
/// token may read it for now; the auditor role's permission comes with the roles work.)
pub(crate) async fn list(
    State(s): State<AppState>,
    Query(p): Query<AuditParams>,
) -> Result<Json<serde_json::Value>, Problem> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("limit: must be from 1 to 1000, not {limit}"),
        ));
    }
    let after = p.after.unwrap_or(0).max(0);
    let entries = s
        .query(move |store| store.audit_entries(after, limit))
        .await?
        .map_err(store_problem)?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(serde_json::json!({
        "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
        "next_after": next,
    })))
}
