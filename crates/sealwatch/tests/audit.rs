//! `sealwatch audit` through the real binary: a chain built by the real store, then tampered
//! with by direct SQL on the real SQLite file and the real PostgreSQL schema (edit, delete,
//! reorder, truncate), each caught by `sealwatch audit verify` naming the right seq; an intact
//! chain verifies; a truncation that also removed the database's checkpoints is caught with a
//! checkpoint kept outside (`sealwatch audit checkpoint`); token changes made on the command
//! line are recorded with the login that made them. PostgreSQL runs when
//! `TEST_DATABASE_URL` is set, each case in its own schema.

use std::path::{Path, PathBuf};
use std::process::Command;

use store::{AuditRecord, Store};

/// Where one case's chain lives.
enum Db {
    Sqlite {
        dir: PathBuf,
    },
    Postgres {
        dir: PathBuf,
        url: String,
        schema: String,
    },
}

impl Db {
    fn dir(&self) -> &Path {
        match self {
            Db::Sqlite { dir } | Db::Postgres { dir, .. } => dir,
        }
    }

    fn store(&self) -> Box<dyn Store> {
        match self {
            Db::Sqlite { dir } => {
                Box::new(store::SqliteStore::open(&dir.join("sealwatch.db")).unwrap())
            }
            Db::Postgres { url, schema, .. } => {
                Box::new(store::PgStore::connect_in_schema(url, schema).unwrap())
            }
        }
    }

    /// Runs SQL on the database directly, as someone with access to it would.
    fn tamper(&self, sql: &str) {
        match self {
            Db::Sqlite { dir } => {
                let conn = rusqlite::Connection::open(dir.join("sealwatch.db")).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Db::Postgres { url, schema, .. } => {
                let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
                client
                    .batch_execute(&format!("SET search_path TO {schema}; {sql}"))
                    .unwrap();
            }
        }
    }

    /// `sealwatch audit ARGS` on this database: exit code, stdout, stderr.
    fn sealwatch(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sealwatch"));
        cmd.arg("audit")
            .args(args)
            .arg("--data-dir")
            .arg(self.dir());
        // Settings from the environment would change where the store is.
        cmd.env_remove("SEALWATCH_STORE_DATABASE_URL")
            .env_remove("SEALWATCH_STORE_DATABASE_SCHEMA")
            .env_remove("SEALWATCH_AUDIT_KEY_FILE");
        if let Db::Postgres { url, schema, .. } = self {
            cmd.arg("--database-url")
                .arg(url)
                .env("SEALWATCH_STORE_DATABASE_SCHEMA", schema);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sealwatch-audit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The databases a case runs on: SQLite always, PostgreSQL when `TEST_DATABASE_URL` is set.
fn databases(case: &str) -> Vec<Db> {
    let mut dbs = vec![Db::Sqlite {
        dir: temp_dir(&format!("sqlite-{case}")),
    }];
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) => {
            let schema = format!("audit_cli_{case}_{}", std::process::id());
            let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            // Earlier runs' schemas for this case go first.
            for row in admin
                .query(
                    "SELECT schema_name::TEXT FROM information_schema.schemata WHERE schema_name LIKE $1",
                    &[&format!("audit_cli_{case}_%")],
                )
                .unwrap()
            {
                let name: String = row.get(0);
                admin
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .unwrap();
            }
            dbs.push(Db::Postgres {
                dir: temp_dir(&format!("pg-{case}")),
                url,
                schema,
            });
        }
        Err(_) => eprintln!("TEST_DATABASE_URL is not set: PostgreSQL cases skipped"),
    }
    dbs
}

/// Six entries appended by the real store (in two transactions), and a checkpoint of the
/// sixth signed with the audit key in the data directory (created there, as `serve` does).
fn six_entries_checkpointed(db: &Db) {
    let mut store = db.store();
    let rec = |i: i64, action: &str| {
        AuditRecord::new(
            1_764_057_600_000 + i,
            "token 0a1b2c (officer)",
            action,
            format!("transit:T-{i}"),
            &serde_json::json!({ "i": i }),
        )
    };
    store
        .append_audit(&[rec(1, "transit.declare"), rec(2, "transit.seal")])
        .unwrap();
    store
        .append_audit(&[
            rec(3, "alarm.acknowledge"),
            rec(4, "token.create"),
            rec(5, "device_keys.put"),
            rec(6, "transit.release"),
        ])
        .unwrap();
    let (key, created) =
        server::audit_chain::load_or_create_audit_key(&db.dir().join("audit.key")).unwrap();
    assert!(created);
    let head = store.audit_head().unwrap().unwrap();
    assert_eq!(head.seq, 6);
    store
        .add_audit_checkpoint(&key.sign(head.seq, &head.hash, 1_764_057_700_000))
        .unwrap();
}

/// Runs `verify` and expects exit 1 with `problem` in what it prints.
fn caught(db: &Db, args: &[&str], problem: &str) {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = db.sealwatch(&all);
    assert_eq!(code, Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains(problem),
        "expected {problem:?}; stdout: {stdout}\nstderr: {stderr}"
    );
}

#[test]
fn an_intact_chain_verifies_and_is_listed() {
    for db in databases("intact") {
        six_entries_checkpointed(&db);
        let (code, stdout, stderr) = db.sealwatch(&["verify"]);
        assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
        assert!(stdout.contains("intact: 6 entries, head seq 6"), "{stdout}");
        assert!(stdout.contains("1 checkpoints checked"), "{stdout}");

        let (code, stdout, _) = db.sealwatch(&["list", "--limit", "2"]);
        assert_eq!(code, Some(0));
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{stdout}");
        assert_eq!(lines[0]["seq"], 5);
        assert_eq!(lines[1]["action"], "transit.release");

        // A public key that is not the platform's: the checkpoint is refused.
        let other = server::audit_chain::AuditKey::from_secret([3u8; 32]).public_hex();
        caught(
            &db,
            &["--public-key", &other],
            "checkpoint of seq 6 is not valid: public_key",
        );
        let (code, _, stderr) = db.sealwatch(&["verify", "--public-key", "xyz"]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains("--public-key: expected 64 hex digits"),
            "{stderr}"
        );
    }
}

#[test]
fn an_edited_entry_is_caught() {
    for db in databases("edit") {
        six_entries_checkpointed(&db);
        db.tamper("UPDATE audit_log SET actor = 'someone else' WHERE seq = 3");
        caught(&db, &[], "entry 3 was altered");
    }
}

#[test]
fn a_deleted_entry_is_caught() {
    for db in databases("delete") {
        six_entries_checkpointed(&db);
        db.tamper("DELETE FROM audit_log WHERE seq = 4");
        caught(&db, &[], "entry 4 is missing");
    }
}

#[test]
fn reordered_entries_are_caught() {
    for db in databases("reorder") {
        six_entries_checkpointed(&db);
        // Rows 2 and 5 swap places (their seqs), each otherwise untouched.
        db.tamper(
            "UPDATE audit_log SET seq = -2 WHERE seq = 2;
             UPDATE audit_log SET seq = 2 WHERE seq = 5;
             UPDATE audit_log SET seq = 5 WHERE seq = -2;",
        );
        caught(&db, &[], "entry 2 is out of order");
    }
}

#[test]
fn a_truncated_chain_is_caught() {
    for db in databases("truncate") {
        six_entries_checkpointed(&db);
        db.tamper("DELETE FROM audit_log WHERE seq > 4");
        caught(
            &db,
            &[],
            "truncated: it ends at seq 4 but a signed checkpoint covers seq 6",
        );
    }
}

#[test]
fn a_checkpoint_kept_outside_catches_what_the_database_no_longer_shows() {
    for db in databases("outside") {
        six_entries_checkpointed(&db);
        let (code, stdout, stderr) = db.sealwatch(&["checkpoint"]);
        assert_eq!(code, Some(0), "{stderr}");
        let kept = db.dir().join("kept-checkpoint.json");
        std::fs::write(&kept, &stdout).unwrap();
        let kept = kept.to_str().unwrap().to_owned();

        // The tail and every checkpoint in the database removed: the database alone looks
        // intact (the limit of what it can show) ...
        db.tamper("DELETE FROM audit_log WHERE seq > 4; DELETE FROM audit_checkpoints;");
        let (code, stdout, stderr) = db.sealwatch(&["verify"]);
        assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
        assert!(stdout.contains("intact: 4 entries"), "{stdout}");
        // ... the checkpoint kept outside does not.
        caught(
            &db,
            &["--checkpoint", &kept],
            "truncated: it ends at seq 4 but a signed checkpoint covers seq 6",
        );

        // A checkpoint file that is not one: exit 2 naming the field.
        let bad = db.dir().join("bad.json");
        std::fs::write(&bad, r#"{"seq": 6}"#).unwrap();
        let (code, _, stderr) = db.sealwatch(&["verify", "--checkpoint", bad.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("hash: required"), "{stderr}");
    }
}

#[test]
fn command_line_changes_are_recorded_and_verify() {
    let dir = temp_dir("cli");
    let sealwatch = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .env_remove("SEALWATCH_STORE_DATABASE_URL")
            .env_remove("SEALWATCH_AUDIT_KEY_FILE")
            .env("USER", "auditor.li")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, token, stderr) =
        sealwatch(&["token", "create", "--role", "officer", "--label", "desk 4"]);
    assert_eq!(code, Some(0), "{stderr}");
    let id = token.trim().split('_').nth(1).unwrap().to_owned();
    let (code, _, stderr) = sealwatch(&["token", "revoke", &id]);
    assert_eq!(code, Some(0), "{stderr}");

    let (code, stdout, stderr) = sealwatch(&["audit", "list"]);
    assert_eq!(code, Some(0), "{stderr}");
    let entries: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["token.create", "token.revoke"], "{stdout}");
    for e in &entries {
        assert_eq!(e["actor"], "cli (user auditor.li)", "{e}");
        assert_eq!(e["subject"], format!("token:{id}"), "{e}");
    }
    // The secret is never in the chain.
    let secret = token.trim().rsplit('_').next().unwrap();
    assert!(!stdout.contains(secret), "{stdout}");
    assert_eq!(entries[0]["detail"]["label"], "desk 4");

    // No checkpoint yet (the service signs them): verify still checks the chain's links.
    let (code, stdout, stderr) = sealwatch(&["audit", "verify"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("intact: 2 entries"), "{stdout}");
    let (code, _, stderr) = sealwatch(&["audit", "checkpoint"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no checkpoint yet"), "{stderr}");
}
