//! `sealwatch serve --config FILE` as an operator runs it: the file and the environment are
//! read, mistakes stop the start with exit status 2 naming the key, JSON logs go to stderr,
//! and SIGTERM stops the service cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("sealwatch-cfg-{}-{name}", std::process::id()))
}

/// `sealwatch serve --config FILE` with JSON logs read from its stderr.
#[cfg(unix)]
struct JsonServe {
    child: std::process::Child,
    stderr: BufReader<std::process::ChildStderr>,
}

#[cfg(unix)]
impl JsonServe {
    /// Starts the service with `config` and the data directory from the environment.
    fn start(config: &std::path::Path, data_dir: &std::path::Path) -> JsonServe {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
            .args(["serve", "--config"])
            .arg(config)
            // The environment wins over the file.
            .env("SEALWATCH_STORE_DATA_DIR", data_dir)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        JsonServe { child, stderr }
    }

    /// Reads log lines until `done` says so (it sees each JSON line); `what` names what was
    /// awaited if the log ends first.
    fn wait_for(&mut self, what: &str, mut done: impl FnMut(&serde_json::Value) -> bool) {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(self.stderr.read_line(&mut line).unwrap() > 0, "{what}");
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && done(&v)
            {
                return;
            }
        }
    }

    /// The `addr` of the first line with this message.
    fn address_of(&mut self, message: &str) -> String {
        let mut addr = None;
        self.wait_for(&format!("no {message:?} line"), |v| {
            if v["fields"]["message"] == message {
                addr = v["fields"]["addr"].as_str().map(str::to_owned);
            }
            addr.is_some()
        });
        addr.unwrap()
    }

    /// SIGTERM, as a service manager stops it; the service must exit cleanly. Returns the rest
    /// of its log.
    fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).unwrap();
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "{exit:?}\n{rest}");
        rest
    }
}

#[test]
fn a_misspelt_key_stops_the_start_naming_it() {
    let file = temp("bad.toml");
    std::fs::write(&file, "[store]\ndatabse_url = \"postgres://x\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("store.databse_url: unknown key"),
        "{stderr}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args(["serve"])
        .env("SEALWATCH_INGEST_BATCH_MAX_ITEMS", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SEALWATCH_INGEST_BATCH_MAX_ITEMS: expected a whole number"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&file);
}

#[cfg(unix)]
#[test]
fn serves_from_a_config_file_logs_json_and_stops_on_sigterm() {
    let dir = temp("data");
    let _ = std::fs::remove_dir_all(&dir);
    let file = temp("good.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\n",
    )
    .unwrap();
    let mut serving = JsonServe::start(&file, &dir);
    // The first JSON line says where it listens (port 0: the system chose).
    let mut addr = None;
    serving.wait_for("no listening line", |v| {
        if v["fields"]["message"] == "listening" {
            assert_eq!(v["level"], "INFO", "{v}");
            addr = v["fields"]["addr"].as_str().map(str::to_owned);
        }
        addr.is_some()
    });
    let addr = addr.unwrap();
    let mut conn = TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET /healthz?secret=x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(
        dir.join("sealwatch.db").exists(),
        "the data directory from the environment is used"
    );

    let rest = serving.stop();
    // The request was logged at debug, by path only: the query is not for logs.
    assert!(rest.contains("\"path\":\"/healthz\""), "{rest}");
    assert!(!rest.contains("secret"), "{rest}");
    assert!(rest.contains("\"message\":\"stopped\""), "{rest}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&file);
}

/// With `[gateway] jt808_listen` set, `sealwatch serve` runs the JT/T 808 gateway beside the
/// API and stops it with the service.
#[cfg(unix)]
#[test]
fn serves_jt808_devices_when_configured() {
    let dir = temp("gw-data");
    let _ = std::fs::remove_dir_all(&dir);
    let file = temp("gw.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:0\"\n[gateway]\njt808_listen = \"127.0.0.1:0\"\nmax_auth_failures = 5\n[log]\nformat = \"json\"\n",
    )
    .unwrap();
    let mut serving = JsonServe::start(&file, &dir);
    let addr = serving.address_of("JT/T 808 gateway listening");
    // A heartbeat from a terminal that has not authenticated: answered, with a failure.
    let mut conn = TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let heartbeat = [
        0x7e, 0x00, 0x02, 0x00, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0x01, 0x00, 0x05, 0x8f, 0x7e,
    ];
    conn.write_all(&heartbeat).unwrap();
    let mut buf = [0u8; 64];
    let mut deframer = jt808::Deframer::new();
    let message = loop {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "closed without an answer");
        if let Some(Ok(jt808::Deframed::Frame(f))) = deframer.push(&buf[..n]).next() {
            break f.decode(&jt808::Options::default()).unwrap();
        }
    };
    assert_eq!(message.header.message_id, 0x8001);
    assert!(
        matches!(message.body, jt808::Body::GeneralResponse(g) if g.reply_serial == 5 && g.result == 1),
        "{message:?}"
    );

    let rest = serving.stop();
    assert!(rest.contains("JT/T 808 gateway stopped"), "{rest}");
    // The device's connection was closed with the service.
    assert_eq!(conn.read(&mut buf).unwrap_or(0), 0);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&file);
}

/// With `[gateway] native_listen` set, `sealwatch serve` creates the platform key file (owner
/// only) in the data directory, runs the native gateway, refuses a device without keys, keeps
/// the same keys on the next start, and stops the gateway with the service.
#[cfg(unix)]
#[test]
fn serves_native_devices_when_configured() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp("native-data");
    let _ = std::fs::remove_dir_all(&dir);
    let file = temp("native.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:0\"\n[gateway]\nnative_listen = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n",
    )
    .unwrap();
    let mut key_text = None;
    for round in 0..2 {
        let mut serving = JsonServe::start(&file, &dir);
        let addr = serving.address_of("native-protocol gateway listening");
        let key_file = dir.join("native_platform.key");
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let text = std::fs::read_to_string(&key_file).unwrap();
        match &key_text {
            None => key_text = Some(text),
            Some(first) => assert_eq!(first, &text, "round {round}: the same keys"),
        }

        // A device with no keys provisioned: closed without a welcome.
        let platform = sealproto::PlatformKeys::from_secrets([1; 32], [2; 32]).public();
        let keys = sealproto::DeviceKeys::from_secrets("NOKEYS".parse().unwrap(), [3; 32], [4; 32]);
        let mut device = sealproto::Device::new(keys, platform);
        device.connect(sealproto::Entropy::new([5; 32], [6; 32]));
        let mut conn = TcpStream::connect(&addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(&device.take_outgoing()).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(conn.read(&mut buf).unwrap_or(0), 0, "refused");

        let rest = serving.stop();
        assert!(rest.contains("native-protocol gateway stopped"), "{rest}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&file);
}

/// With `[containers]` set, `sealwatch serve` runs the MQTT client (connected to the real
/// Mosquitto on 127.0.0.1:1883) and takes the vendors' signed webhook without a token, while
/// the rest of the API still needs one; mistakes in the section stop the start naming the key.
#[cfg(unix)]
#[test]
fn serves_smart_containers_when_configured() {
    for (text, key) in [
        (
            "[containers]\nmqtt_host = \"127.0.0.1\"\nmqtt_topic_prefix = \"a/#\"\n",
            "containers.mqtt_topic_prefix",
        ),
        (
            "[containers]\nwebhook_secrets = { acme = \"short\" }\n",
            "containers.webhook_secrets: acme",
        ),
    ] {
        let file = temp("containers-bad.toml");
        std::fs::write(&file, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
            .args(["serve", "--config"])
            .arg(&file)
            .env("SEALWATCH_STORE_DATA_DIR", temp("containers-bad-data"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{stderr}");
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_dir_all(temp("containers-bad-data"));
    }

    let dir = temp("containers-data");
    let _ = std::fs::remove_dir_all(&dir);
    let file = temp("containers.toml");
    let secret = "acme-serve-secret-000000001";
    // Its own client id and prefix; a clean session leaves nothing on the shared broker.
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[containers]\nmqtt_host = \"127.0.0.1\"\n\
             mqtt_client_id = \"sealwatch-serve-{pid}\"\nmqtt_topic_prefix = \"sealwatch-serve-test/{pid}\"\n\
             mqtt_clean_session = true\nwebhook_secrets = {{ acme = \"{secret}\" }}\n\
             [log]\nformat = \"json\"\n",
            pid = std::process::id()
        ),
    )
    .unwrap();
    let mut serving = JsonServe::start(&file, &dir);
    let (mut addr, mut connected) = (None, false);
    serving.wait_for(
        "no listening line, or no MQTT connection (is Mosquitto on 127.0.0.1:1883?)",
        |v| {
            if v["fields"]["message"] == "listening" {
                addr = v["fields"]["addr"].as_str().map(str::to_owned);
            }
            connected |= v["fields"]["message"] == "MQTT connected";
            addr.is_some() && connected
        },
    );
    let addr = addr.unwrap();
    let post = |path: &str, headers: &str, body: &str| -> String {
        let mut conn = TcpStream::connect(&addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            conn,
            "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = String::new();
        conn.read_to_string(&mut raw).unwrap();
        raw
    };
    let body = r#"{"equipmentId": "MSKU0000011", "eventTime": "2026-01-01T00:00:00Z"}"#;
    let now_s = server::wall_clock().unix_ms() / 1000;
    let signature = server::containers::sign(secret.as_bytes(), now_s, body.as_bytes());
    let webhook = "/api/v1/webhooks/containers/acme?format=uncefact";
    let raw = post(
        webhook,
        &format!("Sealwatch-Signature: {signature}\r\n"),
        body,
    );
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.contains("\"status\":\"unattributed\""), "{raw}");
    let raw = post(webhook, "", body);
    assert!(raw.starts_with("HTTP/1.1 401"), "{raw}");
    assert!(raw.contains("Sealwatch-Signature: missing"), "{raw}");
    let raw = post(
        "/api/v1/containers/MSKU0000011/pairings",
        "",
        r#"{"device": "D1", "kind": "affixed"}"#,
    );
    assert!(
        raw.starts_with("HTTP/1.1 401"),
        "a token is still needed: {raw}"
    );

    let rest = serving.stop();
    assert!(!rest.contains(secret), "the secret is never logged: {rest}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&file);
}

#[test]
fn tls_needs_both_files_and_names_a_bad_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SEALWATCH_SERVER_TLS_CERT_FILE", "/nonexistent/cert.pem")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.tls_key_file: required with server.tls_cert_file"),
        "{stderr}"
    );
    let dir = temp("tls-data");
    let out = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("SEALWATCH_SERVER_TLS_CERT_FILE", "/nonexistent/cert.pem")
        .env("SEALWATCH_SERVER_TLS_KEY_FILE", "/nonexistent/key.pem")
        .env(
            "SEALWATCH_AUTH_INITIAL_ADMIN_PASSWORD",
            "an-operator-password",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.tls_cert_file") && stderr.contains("/nonexistent/cert.pem"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
