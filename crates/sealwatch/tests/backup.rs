//! The restore drill, through the real binary on SQLite and on the real PostgreSQL: a service
//! takes observations; `sealwatch backup` runs while it serves; more observations are
//! acknowledged; the service is killed and its data destroyed; `sealwatch restore` brings the
//! backup back, and every observation acknowledged before the backup is there again, row
//! counts equal to the manifest's, and the audit chain verifies against a signed checkpoint
//! kept outside before the backup. A damaged backup and a non-empty target are refused.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

mod common;
use common::{Serving, api, sealwatch_with};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sealwatch-bk-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn at(ms: i64) -> String {
    model::Timestamp::from_unix_ms(ms).to_string()
}

/// Posts observations `from..to` of the journey (one every 100 ms of report time along the
/// example's first leg, from `start_ms`, after the declaration: a track starts there); every
/// one must be accepted.
fn post(addr: &str, token: &str, start_ms: i64, from: usize, to: usize) {
    let items: Vec<Value> = (from..to)
        .map(|i| {
            let f = i as f64 / 40.0;
            json!({
                "device": "D1",
                "t": at(start_ms + i as i64 * 100),
                "lat": 29.31 + f * (29.6 - 29.31),
                "lon": 120.07 + f * (120.9 - 120.07),
                "lock": "locked",
            })
        })
        .collect();
    let (status, body) = api(
        addr,
        token,
        "POST",
        "/api/v1/observations",
        Some(json!(items)),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], to - from, "{body}");
}

fn track_times(addr: &str, token: &str) -> Vec<String> {
    let (status, track) = api(
        addr,
        token,
        "GET",
        "/api/v1/transits/T1/track?format=points",
        None,
    );
    assert_eq!(status, 200, "{track}");
    track["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["t"].as_str().unwrap().to_owned())
        .collect()
}

/// The whole drill against the store that `store_args` and `env` name; `destroy` removes its
/// data once the service is killed.
fn drill(name: &str, store_args: &[&str], env: &[(&str, &str)], destroy: impl FnOnce()) {
    let dir = temp_dir(name);
    let backup = dir.join("backup");
    let backup_dir = backup.to_str().unwrap();
    let increment = dir.join("increment");
    let increment_dir = increment.to_str().unwrap();
    let with = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(store_args);
        sealwatch_with(&all, env)
    };
    let (code, token, stderr) = with(&["token", "create", "--role", "administrator"]);
    assert_eq!(code, Some(0), "{stderr}");
    let token = token.trim().to_owned();
    let ready = |l: &str| l.starts_with("sealwatch: listening on");

    let start_ms;
    let checkpoint = dir.join("checkpoint.json");
    let public_key: String;
    {
        let mut serve_env = env.to_vec();
        serve_env.push(("SEALWATCH_AUDIT_CHECKPOINT_EVERY_S", "1"));
        let serving = Serving::start(store_args, &serve_env, ready);
        let addr = serving.http();
        let example: Value =
            serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
        for z in example["zones"].as_array().unwrap() {
            assert_eq!(
                api(&addr, &token, "POST", "/api/v1/zones", Some(z.clone())).0,
                204
            );
        }
        let mut t = example["transits"][0].clone();
        t["sealed_at"] = json!(at(now_ms() - 60_000));
        t["deadline"] = json!(at(now_ms() + 6 * 3_600_000));
        let (status, body) = api(&addr, &token, "POST", "/api/v1/transits", Some(t));
        assert!(status == 200 || status == 201, "{status} {body}");
        // Reports dated after the declaration and none in the future: 35 of them 100 ms
        // apart, once 3.5 s have passed.
        start_ms = now_ms() + 1000;
        std::thread::sleep(std::time::Duration::from_millis(4600));
        post(&addr, &token, start_ms, 0, 10);
        post(&addr, &token, start_ms, 10, 20);

        // A signed checkpoint of the audit chain (the service signs one every second here),
        // kept outside the database as an operator would.
        let mut kept = None;
        for _ in 0..100 {
            let (code, stdout, _) = with(&["audit", "checkpoint"]);
            if code == Some(0) {
                kept = Some(stdout);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let kept = kept.expect("a signed checkpoint within 10 s");
        std::fs::write(&checkpoint, &kept).unwrap();
        let key: Value = serde_json::from_str(kept.trim()).unwrap();
        public_key = key["public_key"].as_str().unwrap().to_owned();

        // The backup, taken while the service serves.
        let (code, stdout, stderr) = with(&["backup", "--out", backup_dir]);
        assert_eq!(code, Some(0), "{stderr}");
        let manifest: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(manifest["tables"]["observations"], 20, "{manifest}");
        assert_eq!(manifest["tables"]["transits"], 1, "{manifest}");
        let (code, _, stderr) = with(&["backup", "--out", backup_dir]);
        assert_eq!(code, Some(2), "a backup never overwrites one: {stderr}");

        // Acknowledged after the backup point: not in it.
        post(&addr, &token, start_ms, 20, 30);
        assert_eq!(track_times(&addr, &token).len(), 30);

        // An incremental backup on top of the full one, while serving; then more reports that
        // no backup holds.
        let (code, stdout, stderr) = with(&[
            "backup",
            "--incremental-from",
            backup_dir,
            "--out",
            increment_dir,
        ]);
        assert_eq!(code, Some(0), "{stderr}");
        let increment: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(increment["kind"], "incremental", "{increment}");
        assert_eq!(increment["tables"]["observations"], 30, "{increment}");
        post(&addr, &token, start_ms, 30, 35);
        // Killed, not stopped: the drill starts from a crash.
    }
    destroy();

    // A damaged copy of the backup is refused before anything is touched.
    let damaged = dir.join("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    for entry in std::fs::read_dir(&backup).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), damaged.join(entry.file_name())).unwrap();
    }
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap())
            .unwrap();
    let data = damaged.join(manifest["files"][0]["name"].as_str().unwrap());
    let mut bytes = std::fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&data, bytes).unwrap();
    let (code, _, stderr) = with(&["restore", "--from", damaged.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("does not match the manifest"), "{stderr}");

    if manifest["backend"] == "sqlite" {
        // A backup rewritten together with its manifest (by someone who can write both): the
        // hashes agree, the audit chain does not, and nothing is restored.
        let forged = dir.join("forged");
        std::fs::create_dir_all(&forged).unwrap();
        for entry in std::fs::read_dir(&backup).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), forged.join(entry.file_name())).unwrap();
        }
        let name = manifest["files"][0]["name"].as_str().unwrap();
        rusqlite::Connection::open(forged.join(name))
            .unwrap()
            .execute("UPDATE audit_log SET actor = 'nobody' WHERE seq = 1", [])
            .unwrap();
        let bytes = std::fs::read(forged.join(name)).unwrap();
        let mut rewritten = manifest.clone();
        rewritten["files"][0]["sha256"] = Value::String(
            sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes))
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        );
        rewritten["files"][0]["bytes"] = bytes.len().into();
        std::fs::write(
            forged.join("manifest.json"),
            serde_json::to_string_pretty(&rewritten).unwrap(),
        )
        .unwrap();
        let (code, _, stderr) = with(&["restore", "--from", forged.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains("audit chain is NOT intact") && stderr.contains("entry 1"),
            "{stderr}"
        );
    }

    // Nothing of the refused restores was left: no --replace is needed.
    let (code, stdout, stderr) = with(&["restore", "--from", backup_dir]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        serde_json::from_str::<Value>(stdout.trim()).unwrap(),
        manifest
    );
    // Restoring again over the restored data needs --replace.
    let (code, _, stderr) = with(&["restore", "--from", backup_dir]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, stderr) = with(&["restore", "--from", backup_dir, "--replace"]);
    assert_eq!(code, Some(0), "{stderr}");

    // The audit chain verifies, against the checkpoint kept outside and the audit key's public
    // half (the key file itself went with the data).
    let (code, stdout, stderr) = with(&[
        "audit",
        "verify",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--public-key",
        &public_key,
    ]);
    assert_eq!(code, Some(0), "{stdout} {stderr}");
    assert!(stdout.contains("intact"), "{stdout}");

    // The service starts on the restored data with every observation acknowledged before the
    // backup, and none after.
    let serving = Serving::start(store_args, env, ready);
    let times = track_times(&serving.http(), &token);
    let want: Vec<String> = (0..20).map(|i| at(start_ms + i * 100)).collect();
    assert_eq!(times, want);
    drop(serving);

    // The full backup and the increment, in that order: the increment alone, or the two the
    // wrong way round, are refused before anything is touched.
    let (code, _, stderr) = with(&["restore", "--from", increment_dir, "--replace"]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, stderr) = with(&[
        "restore",
        "--from",
        backup_dir,
        "--from",
        backup_dir,
        "--replace",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    // An increment rewritten together with its manifest, one report short: the restore applies
    // it where the service does not look, finds the row counts wrong, and leaves the data
    // that was there (on PostgreSQL, the schema it had set aside comes back).
    let forged = dir.join("forged-increment");
    std::fs::create_dir_all(&forged).unwrap();
    for entry in std::fs::read_dir(increment_dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), forged.join(entry.file_name())).unwrap();
    }
    let inc_manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(forged.join("manifest.json")).unwrap())
            .unwrap();
    let mut rewritten = inc_manifest.clone();
    for (i, f) in inc_manifest["files"].as_array().unwrap().iter().enumerate() {
        let name = f["name"].as_str().unwrap();
        let path = forged.join(name);
        if name == "observations.copy" {
            let text = std::fs::read_to_string(&path).unwrap();
            let kept: Vec<&str> = text.lines().skip(1).collect();
            std::fs::write(&path, kept.join("\n") + "\n").unwrap();
        } else if name.ends_with(".db") {
            rusqlite::Connection::open(&path)
                .unwrap()
                .execute(
                    "DELETE FROM observations WHERE rowid = (SELECT MIN(rowid) FROM observations)",
                    [],
                )
                .unwrap();
        } else {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        rewritten["files"][i]["sha256"] = Value::String(
            sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes))
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        );
        rewritten["files"][i]["bytes"] = bytes.len().into();
    }
    assert_ne!(rewritten, inc_manifest, "the increment was forged");
    std::fs::write(
        forged.join("manifest.json"),
        serde_json::to_string_pretty(&rewritten).unwrap(),
    )
    .unwrap();
    let (code, _, stderr) = with(&[
        "restore",
        "--from",
        backup_dir,
        "--from",
        forged.to_str().unwrap(),
        "--replace",
    ]);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("observations"), "{stderr}");
    let serving = Serving::start(store_args, env, ready);
    let times = track_times(&serving.http(), &token);
    let want: Vec<String> = (0..20).map(|i| at(start_ms + i * 100)).collect();
    assert_eq!(times, want, "the data restored before is intact");
    drop(serving);

    let (code, stdout, stderr) = with(&[
        "restore",
        "--from",
        backup_dir,
        "--from",
        increment_dir,
        "--replace",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        serde_json::from_str::<Value>(stdout.trim()).unwrap()["kind"],
        "incremental"
    );
    let (code, stdout, stderr) = with(&[
        "audit",
        "verify",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--public-key",
        &public_key,
    ]);
    assert_eq!(code, Some(0), "{stdout} {stderr}");
    // Every report acknowledged before the increment is back; none after it.
    let serving = Serving::start(store_args, env, ready);
    let times = track_times(&serving.http(), &token);
    let want: Vec<String> = (0..30).map(|i| at(start_ms + i * 100)).collect();
    assert_eq!(times, want);
    drop(serving);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn restore_drill_on_sqlite() {
    let data = temp_dir("sqlite-data");
    let data_dir = data.to_str().unwrap().to_owned();
    let destroy_dir: PathBuf = data.clone();
    // The data-encryption keys are kept apart from the data (and from its backups), as an
    // operator keeps them: destroying the data leaves them.
    let keys =
        std::env::temp_dir().join(format!("sealwatch-bk-{}-sqlite.keys", std::process::id()));
    let keys = keys.to_str().unwrap().to_owned();
    let env = [("SEALWATCH_STORE_ENCRYPTION_KEY_FILE", keys.as_str())];
    drill("sqlite", &["--data-dir", &data_dir], &env, move || {
        std::fs::remove_dir_all(&destroy_dir).unwrap()
    });
    assert!(Path::new(&data_dir).join("sealwatch.db").exists());
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_file(&keys);
}

#[test]
fn restore_drill_on_postgresql() {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL is not set: the PostgreSQL drill is skipped");
        return;
    };
    let schema = format!("sealwatch_backup_{}", std::process::id());
    store::PgStore::drop_schema(&url, &schema).unwrap();
    let destroy = {
        let (url, schema) = (url.clone(), schema.clone());
        move || store::PgStore::drop_schema(&url, &schema).unwrap()
    };
    let data = temp_dir("postgresql-data");
    drill(
        "postgresql",
        &["--data-dir", data.to_str().unwrap()],
        &[
            ("SEALWATCH_STORE_DATABASE_URL", &url),
            ("SEALWATCH_STORE_DATABASE_SCHEMA", &schema),
        ],
        destroy,
    );
    store::PgStore::drop_schema(&url, &schema).unwrap();
    // The schemas each `--replace` set aside (kept for the operator, as the restore said).
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let aside: Vec<String> = c
        .query(
            "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name LIKE $1",
            &[&format!("{schema}_replaced_%")],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        !aside.is_empty(),
        "a restore with --replace sets the old schema aside"
    );
    for a in aside {
        store::PgStore::drop_schema(&url, &a).unwrap();
    }
    let _ = std::fs::remove_dir_all(&data);
}
