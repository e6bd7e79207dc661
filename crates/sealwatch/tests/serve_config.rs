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
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args(["serve", "--config"])
        .arg(&file)
        // The environment wins over the file.
        .env("SEALWATCH_STORE_DATA_DIR", &dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // The first JSON line says where it listens (port 0: the system chose).
    let mut addr = None;
    let mut line = String::new();
    while addr.is_none() {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no listening line"
        );
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && v["fields"]["message"] == "listening"
        {
            assert_eq!(v["level"], "INFO", "{v}");
            addr = v["fields"]["addr"].as_str().map(str::to_owned);
        }
    }
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

    // SIGTERM, as a service manager stops it.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}\n{rest}");
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args(["serve", "--config"])
        .arg(&file)
        .env("SEALWATCH_STORE_DATA_DIR", &dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    let mut line = String::new();
    while addr.is_none() {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no gateway listening line"
        );
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && v["fields"]["message"] == "JT/T 808 gateway listening"
        {
            addr = v["fields"]["addr"].as_str().map(str::to_owned);
        }
    }
    // A heartbeat from a terminal that has not authenticated: answered, with a failure.
    let mut conn = TcpStream::connect(addr.unwrap()).unwrap();
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

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}\n{rest}");
    assert!(rest.contains("JT/T 808 gateway stopped"), "{rest}");
    // The device's connection was closed with the service.
    assert_eq!(conn.read(&mut buf).unwrap_or(0), 0);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&file);
}
