//! `sealwatch demo` as a user runs it: the binary starts, declares its fleet, and alarms come
//! out over the API and on the live stream within a minute (here at 600x, in seconds).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(addr: &str, token: &str, path: &str) -> String {
    let mut conn = TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    raw.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

#[test]
fn the_demo_shows_alarms_within_a_minute() {
    let dir = std::env::temp_dir().join(format!("sealwatch-demo-test-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--speed",
            "600",
            "--data-dir",
        ])
        .arg(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut addr, mut token, mut warned) = (None, None, false);
    let mut line = String::new();
    while !(token.is_some() && warned) && out.read_line(&mut line).unwrap() > 0 {
        // The demo's known password is said to be a demo's, loudly.
        warned |= line.starts_with("DEMO ONLY — KNOWN PASSWORD: sign in as `demo`");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            addr = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.trim().strip_prefix("export SEALWATCH_TOKEN=") {
            token = Some(rest.to_owned());
        }
        line.clear();
    }
    let addr = addr.expect("the demo prints its address");
    let token = token.expect("the demo prints how to sign in");
    // Without the token, the API says what is missing.
    assert!(get(&addr, "nope", "/api/v1/alarms").contains("authorization"));

    // The live stream, opened before the first alarm.
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /api/v1/stream?only=alarms HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut stream = BufReader::new(stream);

    let mut alarms = 0;
    while started.elapsed() < Duration::from_secs(60) {
        let body = get(&addr, &token, "/api/v1/alarms?limit=1000");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        alarms = v["items"].as_array().map_or(0, Vec::len);
        if alarms > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(alarms > 0, "no alarm over the API within a minute");
    // The registry follows the fleet: devices registered at their stations, with their last
    // report and position.
    let devices: serde_json::Value =
        serde_json::from_str(&get(&addr, &token, "/api/v1/devices?limit=1000")).unwrap();
    let reporting = devices["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["device"]["last_report_at"].is_string() && d["last_position"].is_object())
        .count();
    assert!(reporting > 0, "{devices}");
    let mut live = None;
    while live.is_none() && stream.read_line(&mut line).unwrap() > 0 {
        live = line.trim_end().strip_prefix("data:").map(str::to_owned);
        line.clear();
    }
    let alarm: serde_json::Value =
        serde_json::from_str(live.expect("an alarm on the stream").trim()).unwrap();
    assert!(
        alarm["kind"].is_string() && alarm["grade"].is_number(),
        "{alarm}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
