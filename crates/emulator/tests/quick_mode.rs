//! Quick mode end to end (WCO report §13.3: gates seal and unseal by themselves): the service
//! and its JT/T 808 gateway on real sockets, two emulated e-locks, and fixed gate readers that
//! sign their reads. A departure gate read seals the transit and the e-lock is locked by a
//! command the gate queued; the journey is reported; an arrival gate read unseals a clean
//! transit by itself (the e-lock opens, and its opening raises nothing) and holds one whose
//! lock was opened on the way for an officer. A handheld reader cannot act as a gate. The
//! automatic unseal rate comes out of the statistics.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use emulator::Jt808Device;
use model::{LockState, Reading, Timestamp};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLEAN: &str = "013900000101";
const OPENED: &str = "013900000102";

/// One HTTP/1.1 request on a fresh connection; the status and the JSON body.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body).await.unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
    )
}

async fn api(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    call(addr, method, path, &[], body.as_bytes()).await
}

async fn ok(addr: SocketAddr, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = api(addr, method, path, Some(body)).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    answer
}

/// A reader standing somewhere, with its own signing key.
struct GateReader {
    id: &'static str,
    zone: &'static str,
    key: SigningKey,
}

impl GateReader {
    /// Posts one read of `device`, signed; the service's per-read result.
    async fn read(&self, addr: SocketAddr, device: &str, t: Timestamp, gate: &str) -> Value {
        let body = json!({"t": t, "reader": self.id, "zone": self.zone, "device": device,
                          "intact": true, "gate": gate})
        .to_string();
        let message = server::readers::signed_message(self.id, body.as_bytes());
        let signature = format!(
            "ed25519={}",
            sealproto::to_hex(&self.key.sign(&message).to_bytes())
        );
        let (status, answer) = call(
            addr,
            "POST",
            &format!("/api/v1/readers/{}/reads", self.id),
            &[("Sealwatch-Reader-Signature", &signature)],
            body.as_bytes(),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        answer["results"][0].clone()
    }
}

fn later(t: Timestamp, seconds: i64) -> Timestamp {
    Timestamp::from_unix_ms(t.unix_ms() + seconds * 1000)
}

/// A report at `t` from `lon` on the test's east-west road, with the lock as given (or as the
/// device knows it).
fn at(t: Timestamp, lon: f64, lock: Option<LockState>) -> Reading {
    Reading {
        lat: Some(30.0),
        lon: Some(lon),
        fix: Some(true),
        speed_kmh: Some(30.0),
        lock,
        battery_pct: Some(80.0),
        ..Reading::empty(t)
    }
}

/// Stays on the line until the device has carried out `command`, answering what comes; false
/// after `within`.
async fn carries_out(device: &mut Jt808Device, command: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        device.listen(Duration::from_millis(200)).await.unwrap();
        if device
            .take_executed()
            .iter()
            .any(|e| e.command == command && e.done)
        {
            return true;
        }
    }
    false
}

async fn state_of(addr: SocketAddr, transit: &str) -> String {
    let (_, t) = api(addr, "GET", &format!("/api/v1/transits/{transit}"), None).await;
    t["state"].as_str().unwrap_or_default().to_owned()
}

async fn events_of(addr: SocketAddr, transit: &str) -> Value {
    api(
        addr,
        "GET",
        &format!("/api/v1/transits/{transit}/events"),
        None,
    )
    .await
    .1
}

/// Waits until the transit has an event of `kind`; that event.
async fn event(addr: SocketAddr, transit: &str, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = events_of(addr, transit).await;
        if let Some(e) = events["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["event"] == kind)
        {
            return e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} on {transit}: {events}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_seal_and_unseal_by_themselves_unless_an_alarm_holds_the_transit() {
    let dir = std::env::temp_dir().join(format!("sealwatch-quick-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let running = server::start(server::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.clone(),
    ))
    .await
    .unwrap();
    let gateway = gateway::Gateway::start(
        gateway::Config::new("127.0.0.1:0".parse().unwrap()),
        running.ingest.clone(),
    )
    .await
    .unwrap();
    let addr = running.addr;

    // Two offices a kilometre apart on one road, each with a station and a fixed gate reader.
    for (zone, lon) in [("Q-DEP", 120.000), ("Q-ARR", 120.010)] {
        ok(
            addr,
            "POST",
            "/api/v1/zones",
            json!({"id": zone, "kind": "office",
                   "area": {"type": "Point", "coordinates": [lon, 30.0]}, "radius_m": 250}),
        )
        .await;
        ok(
            addr,
            "POST",
            "/api/v1/stations",
            json!({"id": format!("S-{zone}"), "name": zone, "zone": zone}),
        )
        .await;
    }
    let departure = GateReader {
        id: "R-GATE-DEP",
        zone: "Q-DEP",
        key: SigningKey::from_bytes(&[7; 32]),
    };
    let arrival = GateReader {
        id: "R-GATE-ARR",
        zone: "Q-ARR",
        key: SigningKey::from_bytes(&[8; 32]),
    };
    let handheld = GateReader {
        id: "R-HAND",
        zone: "Q-DEP",
        key: SigningKey::from_bytes(&[9; 32]),
    };
    for (r, kind) in [
        (&departure, "fixed"),
        (&arrival, "fixed"),
        (&handheld, "handheld"),
    ] {
        ok(
            addr,
            "POST",
            "/api/v1/readers",
            json!({"id": r.id, "kind": kind, "zone": r.zone}),
        )
        .await;
        let public = sealproto::to_hex(r.key.verifying_key().as_bytes());
        ok(
            addr,
            "PUT",
            &format!("/api/v1/readers/{}/key", r.id),
            json!({"public_key": public}),
        )
        .await;
    }
    let now = server::wall_clock();
    for (transit, device) in [("Q1", CLEAN), ("Q2", OPENED)] {
        ok(
            addr,
            "POST",
            "/api/v1/devices",
            json!({"id": device, "kind": "active", "state": "in_stock", "station": "S-Q-DEP"}),
        )
        .await;
        // Declared, not sealed: the departure gate does that.
        ok(
            addr,
            "POST",
            "/api/v1/transits",
            json!({"id": transit, "device": device, "departure": "Q-DEP", "destination": "Q-ARR",
                   "route": {"type": "LineString", "coordinates": [[120.000, 30.0], [120.010, 30.0]]},
                   "corridor_m": 300, "deadline": later(now, 3600)}),
        )
        .await;
    }
    let mut clean = Jt808Device::connect(gateway.addr(), CLEAN).await.unwrap();
    let mut opened = Jt808Device::connect(gateway.addr(), OPENED).await.unwrap();

    // A handheld cannot act as a gate, whatever its read says.
    let refused = handheld.read(addr, CLEAN, now, "departure").await;
    assert_ne!(refused["status"], "accepted", "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("gate: reader R-HAND"),
        "{refused}"
    );
    // Nor can a read through the ingest route name a gate its reader does not stand at.
    let (status, problem) = api(
        addr,
        "POST",
        "/api/v1/reads",
        Some(
            json!({"t": now, "reader": "R-GATE-ARR", "zone": "Q-DEP", "device": CLEAN,
                    "gate": "departure"}),
        ),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().starts_with("gate:"),
        "{problem}"
    );
    assert_eq!(state_of(addr, "Q1").await, "declared");

    // Departure gates: each transit sealed, each e-lock locked by the gate's command.
    for (transit, device, lock) in [("Q1", CLEAN, &mut clean), ("Q2", OPENED, &mut opened)] {
        let r = departure.read(addr, device, now, "departure").await;
        assert_eq!(r["status"], "accepted", "{r}");
        assert_eq!(state_of(addr, transit).await, "sealed");
        assert!(
            carries_out(lock, "seal", Duration::from_secs(10)).await,
            "{device} never got its seal"
        );
        assert_eq!(lock.lock(), LockState::Locked);
        let sealed = event(addr, transit, "sealed").await;
        assert!(sealed.to_string().contains("R-GATE-DEP"), "{sealed}");
    }

    // The journeys, a report every half minute or so: Q2's lock is opened half way.
    for (device, opened_on_the_way) in [(&mut clean, false), (&mut opened, true)] {
        let lock_mid = if opened_on_the_way {
            LockState::Unlocked
        } else {
            LockState::Locked
        };
        for r in [
            at(later(now, 10), 120.000, Some(LockState::Locked)),
            at(later(now, 70), 120.005, Some(lock_mid)),
            at(later(now, 100), 120.0075, Some(LockState::Locked)),
            at(later(now, 130), 120.010, Some(LockState::Locked)),
        ] {
            let ack = device.report(&[r]).await.unwrap();
            assert_eq!(ack.accepted, 1);
        }
    }
    event(addr, "Q1", "arrived").await;
    event(addr, "Q2", "arrived").await;
    let (_, alarms) = api(addr, "GET", "/api/v1/transits/Q2/alarms", None).await;
    assert!(alarms.to_string().contains("illegal_opening"), "{alarms}");

    // Arrival gates: Q1 is unsealed by the gate, Q2 held for an officer.
    let r = arrival.read(addr, CLEAN, later(now, 160), "arrival").await;
    assert_eq!(r["status"], "accepted", "{r}");
    let authorised = event(addr, "Q1", "unseal_authorized").await;
    assert!(
        authorised.to_string().contains("R-GATE-ARR"),
        "{authorised}"
    );
    assert!(
        carries_out(&mut clean, "unseal", Duration::from_secs(10)).await,
        "the clean e-lock never got its unseal"
    );
    assert_eq!(clean.lock(), LockState::Unlocked);
    // It reports itself open where it was authorised: unsealed, and no alarm.
    clean
        .report(&[at(later(now, 170), 120.010, None)])
        .await
        .unwrap();
    event(addr, "Q1", "unsealed").await;
    let (_, q1_alarms) = api(addr, "GET", "/api/v1/transits/Q1/alarms", None).await;
    assert_eq!(q1_alarms["items"], json!([]), "{q1_alarms}");
    // The device is now the arrival station's stock.
    let (_, device) = api(addr, "GET", &format!("/api/v1/devices/{CLEAN}"), None).await;
    assert_eq!(
        (
            device["device"]["state"].as_str(),
            device["device"]["station"].as_str()
        ),
        (Some("in_stock"), Some("S-Q-ARR")),
        "{device}"
    );

    let r = arrival.read(addr, OPENED, later(now, 160), "arrival").await;
    assert_eq!(r["status"], "accepted", "{r}");
    let held = event(addr, "Q2", "gate_hold").await;
    assert!(held.to_string().contains("illegal_opening"), "{held}");
    assert!(
        !carries_out(&mut opened, "unseal", Duration::from_secs(1)).await,
        "a held transit's lock must stay shut"
    );
    let (_, commands) = api(
        addr,
        "GET",
        &format!("/api/v1/devices/{OPENED}/commands"),
        None,
    )
    .await;
    let kinds: Vec<&str> = commands["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["seal"], "{commands}");

    // The rate an administration reports: one of two arrival gate decisions was automatic.
    let (_, stats) = api(addr, "GET", "/api/v1/statistics/transits", None).await;
    let quick = &stats["quick_mode"];
    assert_eq!(
        (
            quick["automatic_unseals"].as_u64(),
            quick["held_for_an_officer"].as_u64()
        ),
        (Some(1), Some(1)),
        "{stats}"
    );
    assert_eq!(quick["automatic_unseal_rate"], 0.5, "{stats}");

    gateway.stop().await;
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
