//! `sealwatch device-key` through the real binary on a real SQLite store: keys generated into
//! an owner-only file and registered, shown, rotated, revoked, set again and listed; secrets
//! never printed; bad input exits 2 naming what is wrong.

use std::path::{Path, PathBuf};
use std::process::Command;

use sealproto::DeviceKeys;
use serde_json::Value;
use store::Store;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sealwatch-dk-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `sealwatch device-key ARGS --data-dir DIR`: exit code, stdout, stderr.
fn device_key(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .arg("device-key")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        // Settings from the environment would change where the store is.
        .env_remove("SEALWATCH_STORE_DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn register(dir: &Path, device: &str) {
    let mut store = store::SqliteStore::open(&dir.join("sealwatch.db")).unwrap();
    let d: model::Device = serde_json::from_value(
        serde_json::json!({"id": device, "kind": "active", "state": "sealed"}),
    )
    .unwrap();
    store
        .put_device(&d, model::Timestamp::from_unix_ms(1_764_057_600_000))
        .unwrap();
}

fn hex32(bytes: [u8; 32]) -> String {
    sealproto::to_hex(&bytes)
}

#[test]
fn keys_are_generated_shown_rotated_revoked_set_and_listed() {
    let dir = temp_dir("lifecycle");
    register(&dir, "LOCK-7");
    let key_file = dir.join("lock-7.key");
    let key_path = key_file.to_str().unwrap();

    // Generated: the secrets go into a new owner-only file, the public keys into the store.
    let (code, stdout, stderr) = device_key(&dir, &["generate", "LOCK-7", "--out", key_path]);
    assert_eq!(code, Some(0), "{stderr}");
    let record: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(record["device"], "LOCK-7");
    assert!(record["revoked_at"].is_null(), "{record}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let text = std::fs::read_to_string(&key_file).unwrap();
    let secrets = sealproto::from_hex(text.trim()).unwrap();
    assert_eq!(secrets.len(), 64);
    let mut signing = [0u8; 32];
    let mut agreement = [0u8; 32];
    signing.copy_from_slice(&secrets[..32]);
    agreement.copy_from_slice(&secrets[32..]);
    let public = DeviceKeys::from_secrets("LOCK-7".parse().unwrap(), signing, agreement).public();
    assert_eq!(record["signing_public"], hex32(public.signing.to_bytes()));
    assert_eq!(
        record["agreement_public"],
        hex32(public.agreement.to_bytes())
    );
    // The secrets are printed nowhere.
    for secret in [hex32(signing), hex32(agreement)] {
        assert!(!stdout.contains(&secret) && !stderr.contains(&secret));
    }

    // Shown as stored.
    let (code, stdout, _) = device_key(&dir, &["show", "LOCK-7"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(stdout.trim()).unwrap(),
        record
    );

    // Not generated twice, not over an existing file, not for an unknown device.
    let other_file = dir.join("other.key");
    let (code, _, stderr) = device_key(
        &dir,
        &["generate", "LOCK-7", "--out", other_file.to_str().unwrap()],
    );
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("already has keys") && stderr.contains("rotate"),
        "{stderr}"
    );
    assert!(
        !other_file.exists(),
        "no secrets made for keys never registered"
    );
    register(&dir, "LOCK-8");
    let (code, _, stderr) = device_key(&dir, &["generate", "LOCK-8", "--out", key_path]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), text, "kept");
    let (code, _, stderr) = device_key(
        &dir,
        &["generate", "NOBODY", "--out", other_file.to_str().unwrap()],
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not in the registry"), "{stderr}");

    // Rotated to keys made on the device; bad keys are refused, naming the flag.
    let made_on_device = DeviceKeys::from_secrets("LOCK-7".parse().unwrap(), [7; 32], [8; 32]);
    let new = made_on_device.public();
    let (code, _, stderr) = device_key(
        &dir,
        &["rotate", "LOCK-7", "--signing", "abcd", "--agreement", "00"],
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--signing: must be 32 bytes"), "{stderr}");
    let (code, _, stderr) = device_key(&dir, &["rotate", "LOCK-7"]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, stdout, stderr) = device_key(
        &dir,
        &[
            "rotate",
            "LOCK-7",
            "--signing",
            &hex32(new.signing.to_bytes()),
            "--agreement",
            &hex32(new.agreement.to_bytes()),
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("replaced"), "{stderr}");
    let rotated: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(rotated["signing_public"], hex32(new.signing.to_bytes()));
    assert_ne!(rotated["signing_public"], record["signing_public"]);
    let (code, _, stderr) = device_key(
        &dir,
        &["rotate", "LOCK-8", "--out", other_file.to_str().unwrap()],
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no keys to rotate"), "{stderr}");

    // Revoked; then set again (a revoked set may be replaced without `rotate`).
    let (code, stdout, _) = device_key(&dir, &["revoke", "LOCK-7"]);
    assert_eq!(code, Some(0));
    let revoked: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let (code, stdout, _) = device_key(&dir, &["list"]);
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(lines[0].starts_with("LOCK-7\trevoked "), "{stdout}");
    let (code, stdout, stderr) = device_key(
        &dir,
        &[
            "set",
            "LOCK-7",
            "--signing",
            &hex32(new.signing.to_bytes()),
            "--agreement",
            &hex32(new.agreement.to_bytes()),
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let set: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(set["revoked_at"].is_null(), "{set}");

    // A second device; listed by id.
    let (code, _, stderr) = device_key(
        &dir,
        &["generate", "LOCK-8", "--out", other_file.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let (_, stdout, _) = device_key(&dir, &["list"]);
    let devices: Vec<&str> = stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(devices, vec!["LOCK-7", "LOCK-8"]);
    assert!(stdout.lines().all(|l| l.contains("\tvalid\t")), "{stdout}");

    // Unknown devices and bad ids exit 2.
    let (code, _, stderr) = device_key(&dir, &["show", "NOBODY"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("NOBODY"), "{stderr}");
    let (code, _, stderr) = device_key(&dir, &["revoke", "NOBODY"]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, stderr) = device_key(
        &dir,
        &["set", "bad id!", "--signing", "00", "--agreement", "00"],
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("device:"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The service, stopped however the test ends.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Connects to the native gateway and says hello: true once the welcome verifies, false when
/// the gateway closes the connection unanswered.
fn welcomed(addr: &str, device: &mut sealproto::Device) -> bool {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    device.connect(sealproto::Entropy::new([5; 32], [6; 32]));
    stream.write_all(&device.take_outgoing()).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                let now = model::Timestamp::from_unix_ms(1_764_057_600_000);
                if device
                    .receive(now, &buf[..n])
                    .iter()
                    .any(|o| matches!(o, Ok(sealproto::DeviceOutput::Connected)))
                {
                    return true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return false,
            Err(e) => panic!("no welcome and no close within 5 s: {e}"),
        }
    }
}

/// The whole provisioning path against a running service: keys generated by the command
/// beside it, the key file loaded into a device that the native gateway welcomes, and a
/// revocation by the command that makes the gateway refuse the next hello.
#[cfg(unix)]
#[test]
fn a_generated_key_file_lets_the_device_in_until_the_command_revokes_it() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = temp_dir("serve");
    register(&dir, "LOCK-9");
    let mut serving = Serving(
        Command::new(env!("CARGO_BIN_EXE_sealwatch"))
            .arg("serve")
            .arg("--data-dir")
            .arg(&dir)
            .env("SEALWATCH_SERVER_LISTEN", "127.0.0.1:0")
            .env("SEALWATCH_GATEWAY_NATIVE_LISTEN", "127.0.0.1:0")
            .env_remove("SEALWATCH_STORE_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = BufReader::new(serving.0.stderr.take().unwrap());
    // "sealwatch: native-protocol gateway on ADDR (platform signing key S, agreement key A)"
    let mut line = String::new();
    let (addr, signing, agreement) = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "serve ended without starting the native gateway"
        );
        if let Some(rest) = line
            .trim()
            .strip_prefix("sealwatch: native-protocol gateway on ")
        {
            let words: Vec<&str> = rest
                .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
                .filter(|w| !w.is_empty())
                .collect();
            // ADDR platform signing key S agreement key A
            break (
                words[0].to_owned(),
                words[4].to_owned(),
                words[7].to_owned(),
            );
        }
    };
    // The service's logs go on; keep the pipe drained.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let platform = sealproto::PublicKeys {
        signing: sealproto::VerifyingKey::from_bytes(
            &sealproto::from_hex(&signing).unwrap().try_into().unwrap(),
        )
        .unwrap(),
        agreement: sealproto::AgreementKey::from_bytes(
            sealproto::from_hex(&agreement).unwrap().try_into().unwrap(),
        ),
    };

    let key_file = dir.join("lock-9.key");
    let (code, _, stderr) = device_key(
        &dir,
        &["generate", "LOCK-9", "--out", key_file.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let secrets = sealproto::from_hex(std::fs::read_to_string(&key_file).unwrap().trim()).unwrap();
    let keys = DeviceKeys::from_secrets(
        "LOCK-9".parse().unwrap(),
        secrets[..32].try_into().unwrap(),
        secrets[32..].try_into().unwrap(),
    );
    let mut device = sealproto::Device::new(keys, platform);
    assert!(
        welcomed(&addr, &mut device),
        "welcomed with the generated keys"
    );

    let (code, _, stderr) = device_key(&dir, &["revoke", "LOCK-9"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !welcomed(&addr, &mut device),
        "refused at the next hello once revoked"
    );
    drop(serving);
    let _ = std::fs::remove_dir_all(&dir);
}
