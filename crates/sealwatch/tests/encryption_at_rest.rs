//! Encryption at rest through the real binary (issue 5): `sealwatch serve` creates its data key,
//! a transit declared through the API with a driver is read back in clear, and the raw
//! database file holds no driver's name; a key rotated beside the running service encrypts the
//! next declaration, the re-encryption walk and the retirement of the old key leave everything
//! readable, the replay at the next start included; a lost key is a clear error naming its id.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

mod common;
use common::{Serving, api, sealwatch_with};

const FIRST_DRIVER: &str = "Zhangsan Encrypted-Driver";
const SECOND_DRIVER: &str = "Lisi Rotated-Driver";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sealwatch-atrest-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn at(offset_ms: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    model::Timestamp::from_unix_ms(now + offset_ms).to_string()
}

/// The database file and its write-ahead log, as bytes.
fn raw(data: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(data.join("sealwatch.db")).unwrap();
    if let Ok(wal) = std::fs::read(data.join("sealwatch.db-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn declare(addr: &str, token: &str, id: &str, driver: &str) {
    let example: Value =
        serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
    let mut t = example["transits"][0].clone();
    t["id"] = json!(id);
    t["device"] = json!(format!("DEV-{id}"));
    t["sealed_at"] = json!(at(-60_000));
    t["deadline"] = json!(at(6 * 3_600_000));
    t["driver"] = json!({"name": driver, "contact": "+86 571 8888 0000"});
    t["cargo"] = json!([{"type": "textiles", "quantity": 10, "unit": "PCE", "consignee": "Secret Consignee Ltd"}]);
    let (status, body) = api(addr, token, "POST", "/api/v1/transits", Some(t));
    assert!(status == 200 || status == 201, "{status} {body}");
}

fn driver_of(addr: &str, token: &str, id: &str) -> Value {
    let (status, body) = api(addr, token, "GET", &format!("/api/v1/transits/{id}"), None);
    assert_eq!(status, 200, "{body}");
    body["transit"]["driver"]["name"].clone()
}

#[test]
fn serve_seals_drivers_names_on_disk_and_rotates_keys_without_a_restart() {
    let dir = temp_dir("serve");
    let data = dir.join("data");
    let data_dir = data.to_str().unwrap().to_owned();
    let store_args = ["--data-dir", data_dir.as_str()];
    let with = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&store_args);
        sealwatch_with(&all, &[])
    };
    let (code, token, stderr) = with(&["token", "create", "--role", "administrator"]);
    assert_eq!(code, Some(0), "{stderr}");
    let token = token.trim().to_owned();
    let ready = |l: &str| l.starts_with("sealwatch: listening on");
    let key_file = data.join("store.keys");

    {
        let serving = Serving::start(&store_args, &[], ready);
        let addr = serving.http();
        let example: Value =
            serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
        for z in example["zones"].as_array().unwrap() {
            assert_eq!(
                api(&addr, &token, "POST", "/api/v1/zones", Some(z.clone())).0,
                204
            );
        }
        declare(&addr, &token, "T-ATREST-1", FIRST_DRIVER);
        assert_eq!(driver_of(&addr, &token, "T-ATREST-1"), FIRST_DRIVER);
    }
    // The service is gone (killed): what is on disk is what it wrote.
    let bytes = raw(&data);
    assert!(
        contains(&bytes, "T-ATREST-1"),
        "the raw check sees the rows"
    );
    assert!(
        !contains(&bytes, FIRST_DRIVER),
        "a driver's name in clear on disk"
    );
    assert!(!contains(&bytes, "Secret Consignee Ltd"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is the owner's alone");
    }
    let first_key = std::fs::read_to_string(&key_file).unwrap();

    {
        // Rotation beside the running service: its next declaration is under the new key.
        let serving = Serving::start(&store_args, &[], ready);
        let addr = serving.http();
        let (code, stdout, stderr) = with(&["data-key", "rotate"]);
        assert_eq!(code, Some(0), "{stderr}");
        let listed: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(listed["keys"], json!(["k1", "k2"]), "{stdout}");
        assert_eq!(listed["current"], "k2");
        declare(&addr, &token, "T-ATREST-2", SECOND_DRIVER);
        assert_eq!(driver_of(&addr, &token, "T-ATREST-2"), SECOND_DRIVER);

        let (code, stdout, stderr) = with(&["data-key", "reencrypt", "--batch", "1"]);
        assert_eq!(code, Some(0), "{stderr}");
        let done: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(
            done["rewritten"], 2,
            "T-ATREST-1's row and its input: {stdout}"
        );

        let (code, stdout, stderr) = with(&["data-key", "retire", "k1"]);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stdout.contains("\"keys\":[\"k2\"]"), "{stdout}");
        let (code, _, stderr) = with(&["data-key", "retire", "k2"]);
        assert_eq!(code, Some(1));
        assert!(stderr.contains("key k2 is the current key"), "{stderr}");
        let (code, stdout, stderr) = with(&["audit", "list", "--limit", "10"]);
        assert_eq!(code, Some(0), "{stderr}");
        for action in ["data_key.rotate", "data_key.reencrypt", "data_key.retire"] {
            assert!(
                stdout.contains(action),
                "{action} not in the audit chain: {stdout}"
            );
        }
        // The running service reads both transits with the remaining key.
        assert_eq!(driver_of(&addr, &token, "T-ATREST-1"), FIRST_DRIVER);
        assert_eq!(driver_of(&addr, &token, "T-ATREST-2"), SECOND_DRIVER);
    }
    let bytes = raw(&data);
    assert!(!contains(&bytes, SECOND_DRIVER));

    {
        // The replay at start opens the log's declarations with the new key.
        let serving = Serving::start(&store_args, &[], ready);
        assert_eq!(
            driver_of(&serving.http(), &token, "T-ATREST-1"),
            FIRST_DRIVER
        );
    }

    // A lost key file: a new key is made, and reading what was sealed before names the key
    // that is missing, never a key.
    let second_key = std::fs::read_to_string(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let (code, _, stderr) = with(&["data-key", "reencrypt"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("sealed with key k2, which is not in the key ring (known: k1)"),
        "{stderr}"
    );
    for text in [&first_key, &second_key] {
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let hex = line.split_whitespace().nth(1).unwrap();
            assert!(!stderr.contains(hex), "a key in an error");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The key from `SEALWATCH_STORE_ENCRYPTION_KEY` instead of a file: no key file is made, the
/// name is not on disk, and without the variable the sealed values name the missing key. A
/// malformed variable is refused naming the variable, not its value.
#[test]
fn the_key_can_come_from_the_environment() {
    let dir = temp_dir("env");
    let data = dir.join("data");
    let data_dir = data.to_str().unwrap().to_owned();
    let store_args = ["--data-dir", data_dir.as_str()];
    let key = "5a".repeat(32);
    let env = [("SEALWATCH_STORE_ENCRYPTION_KEY", key.as_str())];
    let with = |args: &[&str], env: &[(&str, &str)]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&store_args);
        sealwatch_with(&all, env)
    };
    let (code, token, stderr) = with(&["token", "create", "--role", "administrator"], &env);
    assert_eq!(code, Some(0), "{stderr}");
    let token = token.trim().to_owned();
    {
        let serving = Serving::start(&store_args, &env, |l| {
            l.starts_with("sealwatch: listening on")
        });
        let addr = serving.http();
        let example: Value =
            serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
        for z in example["zones"].as_array().unwrap() {
            assert_eq!(
                api(&addr, &token, "POST", "/api/v1/zones", Some(z.clone())).0,
                204
            );
        }
        declare(&addr, &token, "T-ENV-1", FIRST_DRIVER);
        assert_eq!(driver_of(&addr, &token, "T-ENV-1"), FIRST_DRIVER);
    }
    let bytes = raw(&data);
    assert!(contains(&bytes, "T-ENV-1"));
    assert!(!contains(&bytes, FIRST_DRIVER));
    assert!(
        !data.join("store.keys").exists(),
        "no key file when the key is given"
    );

    let (code, _, stderr) = with(&["data-key", "rotate"], &env);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("rotated in a key file"), "{stderr}");
    // Without the variable: a key file is made (k1), and the sealed values name their key.
    let (code, _, stderr) = with(&["data-key", "reencrypt"], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("sealed with key env, which is not in the key ring (known: k1)"),
        "{stderr}"
    );
    let bad = "not-a-key-0123";
    let (code, _, stderr) = with(
        &["data-key", "reencrypt"],
        &[("SEALWATCH_STORE_ENCRYPTION_KEY", bad)],
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("SEALWATCH_STORE_ENCRYPTION_KEY: not 64 hex digits"),
        "{stderr}"
    );
    assert!(!stderr.contains(bad) && !stderr.contains(&key), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
