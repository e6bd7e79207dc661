//! 10,000 JT/T 808 devices connected to the gateway at once, over real loopback sockets: each
//! registers, authenticates and has one location report acknowledged (committed); while all
//! are connected the gateway still serves a control device and the API still answers; then
//! every device closes and the gateway's connection gauge returns to 0.
//!
//! Both ends of 10,000 connections do not fit in one process's file descriptors (the hard
//! limit may be 20,000), so the devices are the load generator in a child process
//! (`sealwatch-loadgen --hold`), and the service and the gateway run here. Everything is
//! bounded in time: the child is killed and the test fails if a phase overruns.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use model::{Device, DeviceKind, DeviceState, Timestamp, Transit};
use serde_json::{Value, json};
use server::Submission;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEVICES: usize = 10_000;
/// The control device (not one of the fleet's `9` + 11 digits).
const CONTROL: &str = "013900000001";

/// Kills the child if the test fails before it exits.
struct Fleet(Child);

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ten_thousand_devices_connect_report_and_close() {
    // The child raises its own.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft: Option<usize> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok());
    assert!(
        soft.is_none_or(|s| s >= DEVICES + 256),
        "this test holds {DEVICES} sockets in each of two processes: the open-file limit is {soft:?} even raised to the hard limit (`ulimit -Hn`)"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let dir = std::env::temp_dir().join(format!("sealwatch-connections-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let running = server::start(server::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.clone(),
    ))
    .await
    .unwrap();
    let mut config = gateway::Config::new("127.0.0.1:0".parse().unwrap());
    config.max_connections = DEVICES + 10;
    let gateway = gateway::Gateway::start(config, running.ingest.clone())
        .await
        .unwrap();

    // Every device registered, each with a sealed transit, in a few store calls rather than
    // 20,000 requests.
    let now_ms = server::wall_clock().unix_ms();
    let t0_ms = now_ms - now_ms % 1000 - 3_600_000;
    let ids: Vec<String> = (0..DEVICES)
        .map(|i| format!("9{i:011}"))
        .chain([CONTROL.to_owned()])
        .collect();
    let now = Timestamp::from_unix_ms(now_ms);
    let devices: Vec<Device> = ids
        .iter()
        .map(|id| {
            serde_json::from_value(json!({"id": id, "kind": "active", "state": "sealed"})).unwrap()
        })
        .collect();
    assert!(
        devices
            .iter()
            .all(|d| d.kind == DeviceKind::Active && d.state == DeviceState::Sealed)
    );
    running
        .ingest
        .query(move |s| {
            for d in &devices {
                s.put_device(d, now).unwrap();
            }
        })
        .await
        .unwrap();
    let example: Value =
        serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
    for z in example["zones"].as_array().unwrap() {
        let (status, body) = request(running.addr, "POST", "/api/v1/zones", &z.to_string()).await;
        assert_eq!(status, 204, "{body}");
    }
    let at = |ms: i64| Timestamp::from_unix_ms(ms).to_string();
    let declarations: Vec<Submission> = ids[..DEVICES]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut t = example["transits"][0].clone();
            t["id"] = json!(format!("T{i}"));
            t["device"] = json!(id);
            t["sealed_at"] = json!(at(t0_ms - 3_600_000));
            t["deadline"] = json!(at(t0_ms + 12 * 3_600_000));
            let t: Transit = serde_json::from_value(t).unwrap();
            Submission::Declare(Box::new(t))
        })
        .collect();
    let verdicts = running.ingest.submit(declarations).await.unwrap();
    assert!(
        verdicts.iter().all(|v| *v == server::Verdict::Accepted),
        "{:?}",
        verdicts.iter().find(|v| **v != server::Verdict::Accepted)
    );

    // Sealed at the service's next tick.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get(running.addr, "/api/v1/transits?state=declared&limit=1").await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["items"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        assert!(Instant::now() < deadline, "transits not sealed within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The fleet: each device logs in and has one report acknowledged, then all hold.
    let child = Command::new(env!("CARGO_BIN_EXE_sealwatch-loadgen"))
        .args(["--protocol", "jt808", "--hold", "--no-setup"])
        .args(["--devices", &DEVICES.to_string()])
        .args(["--target", &gateway.addr().to_string()])
        .args(["--t0-ms", &t0_ms.to_string()])
        .args(["--zones", "4", "--routes", "2", "--violations", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut fleet = Fleet(child);
    let stdout = fleet.0.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let ready: Value = loop {
        // Bounded: a fleet that is not logged in and acknowledged in time fails the test.
        let line = tokio::task::block_in_place(|| lines.recv_timeout(Duration::from_secs(180)))
            .unwrap_or_else(|e| panic!("no word from the fleet within 3 minutes: {e}"));
        if let Some(json) = line.strip_prefix("ready ") {
            break serde_json::from_str(json).unwrap();
        }
    };
    eprintln!(
        "{DEVICES} devices connected, logged in and acknowledged in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(ready["reports_acknowledged"], DEVICES, "{ready}");
    assert_eq!(ready["reports_refused"], 0, "{ready}");

    let stats = gateway.stats();
    assert_eq!(stats.connections_open, DEVICES as u64, "{stats:?}");
    assert_eq!(stats.connections_refused, 0, "{stats:?}");
    assert_eq!(stats.authentications, DEVICES as u64, "{stats:?}");
    assert_eq!(stats.observations_accepted, DEVICES as u64, "{stats:?}");

    // With all of them connected, the gateway serves one more device and the API answers.
    let mut control = emulator::Jt808Device::connect(gateway.addr(), CONTROL)
        .await
        .expect("the control device logs in while 10,000 others are connected");
    assert_eq!(control.heartbeat().await.unwrap(), 0, "heartbeat answered");
    let (status, body) = get(running.addr, "/api/v1/transits?limit=1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(gateway.stats().connections_open, DEVICES as u64 + 1);

    // Released, every device closes; the child exits by itself.
    writeln!(fleet.0.stdin.as_mut().unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = fleet.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the fleet did not exit within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "the fleet failed: {status}");
    drop(control);
    let deadline = Instant::now() + Duration::from_secs(30);
    while gateway.stats().connections_open > 0 {
        assert!(
            Instant::now() < deadline,
            "connections still open 30 s after the devices closed: {:?}",
            gateway.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = gateway.stats();
    assert_eq!(stats.connections_open, 0);
    assert_eq!(stats.connections_accepted, DEVICES as u64 + 1);
    assert_eq!(
        stats.closed_idle + stats.closed_unauthenticated,
        0,
        "{stats:?}"
    );

    gateway.stop().await;
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// One HTTP/1.1 GET on a fresh connection: status and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(addr, "GET", path, "").await
}

/// One HTTP/1.1 request on a fresh connection: status and body.
async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(30), conn.read_to_string(&mut raw))
        .await
        .expect("the API answers within 30 s")
        .unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_owned(),
    )
}
