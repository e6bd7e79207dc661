//! Nothing acknowledged is lost: `sealwatch serve` is killed with SIGKILL during sustained
//! ingest; every observation it acknowledged is in the store, and the service starts again on
//! the same data.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use model::Timestamp;
use serde_json::{Value, json};
use store::{SqliteStore, Store, TimeRange};

/// The token every request carries (made with `sealwatch token create` before the start).
static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn request(addr: &str, method: &str, path: &str, body: &Value) -> Option<(u16, Value)> {
    let mut conn = TcpStream::connect(addr).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let body = body.to_string();
    let token = TOKEN.get().map(String::as_str).unwrap_or_default();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = String::new();
    conn.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// Starts the service on a port the system chooses, and returns it with its address (read
/// from the line it prints), so that no fixed port can clash with another program's.
// The child is handed to the caller, which kills and waits for it.
#[allow(clippy::zombie_processes)]
fn serve(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("SEALWATCH_LOG_LEVEL", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        if n == 0 {
            let status = child.wait();
            panic!("the service did not start: {status:?}");
        }
        if let Some(addr) = line.trim().strip_prefix("sealwatch: listening on http://") {
            let addr = addr.to_owned();
            // Keep reading stderr, so the service never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
            return (child, addr);
        }
    }
}

#[test]
fn no_acknowledged_observation_is_lost_to_sigkill() {
    let dir = std::env::temp_dir().join(format!("sealwatch-sigkill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let made = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args([
            "token",
            "create",
            "--role",
            // Zones and transits as well as observations: more than a gateway may do.
            "administrator",
            "--label",
            "sigkill test",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let token = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("swt_"), "{token}");
    TOKEN.set(token).unwrap();
    let (mut child, addr) = serve(&dir);

    let example: Value =
        serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
    for z in example["zones"].as_array().unwrap() {
        assert_eq!(request(&addr, "POST", "/api/v1/zones", z).unwrap().0, 204);
    }
    let now = server::wall_clock().unix_ms();
    let at = |ms: i64| Timestamp::from_unix_ms(ms).to_string();
    let mut transit = example["transits"][0].clone();
    transit["sealed_at"] = json!(at(now - 3_600_000));
    transit["deadline"] = json!(at(now + 3_600_000));
    assert_eq!(
        request(&addr, "POST", "/api/v1/transits", &transit)
            .unwrap()
            .0,
        201
    );

    // Sustained ingest from another thread; the main thread kills the service mid-stream.
    let sender = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            let mut seq = 0u64;
            loop {
                let batch: Vec<Value> = (0..50)
                    .map(|_| {
                        seq += 1;
                        json!({"device": "D1", "t": at(now - 3_000_000 + seq as i64 * 100), "seq": seq,
                               "lat": 29.31, "lon": 120.07, "lock": "locked"})
                    })
                    .collect();
                match request(
                    &addr,
                    "POST",
                    "/api/v1/observations",
                    &Value::from(batch.clone()),
                ) {
                    Some((200, body)) => {
                        for (item, result) in batch.iter().zip(body["results"].as_array().unwrap())
                        {
                            if result["status"] == "accepted" {
                                acknowledged.push(item["seq"].as_u64().unwrap());
                            }
                        }
                    }
                    _ => return acknowledged, // the service is gone
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let acknowledged = sender.join().unwrap();
    assert!(
        acknowledged.len() > 100,
        "too little was ingested before the kill: {}",
        acknowledged.len()
    );

    let mut store = SqliteStore::open(&dir.join("sealwatch.db")).unwrap();
    let stored: Vec<u64> = store
        .observations("D1", TimeRange::default(), 1_000_000)
        .unwrap()
        .into_iter()
        .filter_map(|o| o.seq)
        .collect();
    eprintln!(
        "{} observations acknowledged before SIGKILL, {} in the store",
        acknowledged.len(),
        stored.len()
    );
    let missing: Vec<&u64> = acknowledged
        .iter()
        .filter(|s| !stored.contains(s))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged observations lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    drop(store);

    // And the service starts again on the same data, rebuilding from the log.
    let (mut child, addr) = serve(&dir);
    let (status, body) = request(&addr, "GET", "/api/v1/transits/T1", &Value::Null).unwrap();
    assert_eq!(status, 200, "{body}");
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
