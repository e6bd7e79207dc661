//! `sealwatch data-key ...`: the store's data-encryption keys (docs/security.md, "Encryption at
//! rest"). Works beside a running service: it re-reads the key file when it changes, so a key
//! added here encrypts its next writes, and the re-encryption walk goes in short batches.
//! Keys are never printed, only their ids.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum DataKeyCommand {
    /// Print the key ids of the key file, oldest first; the last one encrypts.
    List,
    /// Add a new random key to the key file and make it the current one; the old keys stay for
    /// reading. Then `reencrypt`, then `retire` the old ones.
    Rotate,
    /// Rewrite every sealed value not under the current key (and every value stored clear
    /// before encryption was on) under the current key, in short transactions.
    Reencrypt {
        /// Documents per transaction.
        #[arg(long, default_value_t = 100)]
        batch: u32,
    },
    /// Remove a key from the key file, after a re-encryption walk has left nothing under it.
    Retire {
        /// The key id (see `list`).
        id: String,
    },
}

fn fail(why: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {why}");
    ExitCode::FAILURE
}

/// The key file the service uses, or why there is none to change.
fn key_file(config: &server::Config) -> Result<PathBuf, String> {
    if !config.encryption {
        return Err("store.encryption is off".into());
    }
    if std::env::var(store::sealed::KEY_ENV).is_ok_and(|v| !v.trim().is_empty()) {
        return Err(format!(
            "the key comes from {}: keys are rotated in a key file (store.encryption_key_file)",
            store::sealed::KEY_ENV
        ));
    }
    config
        .encryption_key_file
        .clone()
        .ok_or_else(|| "no store.encryption_key_file".into())
}

/// Walks the whole store once and records it in the audit chain; the number of documents
/// rewritten.
fn reencrypt(config: &server::Config, batch: u32) -> Result<u64, String> {
    let mut store = server::open_store(config).map_err(|e| e.to_string())?;
    let mut cursor = store::ResealCursor::default();
    let mut rewritten = 0;
    while !cursor.done {
        rewritten += store
            .reseal(&mut cursor, batch.max(1))
            .map_err(|e| e.to_string())?;
    }
    crate::audit_cmd::record(
        &mut *store,
        "data_key.reencrypt",
        "store".to_owned(),
        serde_json::json!({ "rewritten": rewritten }),
    )
    .map_err(|e| e.to_string())?;
    Ok(rewritten)
}

/// Records a change of the key file in the audit chain (key ids only).
fn record(config: &server::Config, action: &str, id: &str) -> Result<(), String> {
    let mut store = server::open_store(config).map_err(|e| e.to_string())?;
    crate::audit_cmd::record(
        &mut *store,
        action,
        format!("data_key:{id}"),
        serde_json::json!({}),
    )
    .map_err(|e| e.to_string())
}

pub fn run(command: DataKeyCommand, config: &server::Config) -> ExitCode {
    let print = |value: serde_json::Value| {
        println!("{value}");
        ExitCode::SUCCESS
    };
    match command {
        DataKeyCommand::Reencrypt { batch } => match reencrypt(config, batch) {
            Ok(n) => print(serde_json::json!({ "rewritten": n })),
            Err(e) => fail(e),
        },
        command => {
            let file = match key_file(config) {
                Ok(f) => f,
                Err(e) => return fail(e),
            };
            let result = match command {
                DataKeyCommand::Rotate => store::KeyRing::rotate_file(&file)
                    .map_err(|e| e.to_string())
                    .and_then(|id| record(config, "data_key.rotate", &id)),
                DataKeyCommand::Retire { id } => reencrypt(config, 100).and_then(|_| {
                    store::KeyRing::retire_in_file(&file, &id)
                        .map_err(|e| e.to_string())
                        .and_then(|()| record(config, "data_key.retire", &id))
                }),
                _ => Ok(()),
            };
            if let Err(e) = result {
                return fail(e);
            }
            match store::KeyRing::load_or_create(&file) {
                Ok(ring) => print(serde_json::json!({
                    "file": file.display().to_string(),
                    "keys": ring.ids(),
                    "current": ring.current_id(),
                })),
                Err(e) => fail(e),
            }
        }
    }
}
