//! Smart containers over real HTTP: devices paired to container numbers, and vendor clouds'
//! signed webhook (docs/containers.md). Reports are attributed to the device paired at their
//! time, stored, and supervised: a door opened after sealing raises `illegal_opening`.

use std::net::SocketAddr;

use model::Timestamp;
use serde_json::{Value, json};
use store::{Store, TimeRange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;

const SECRET: &str = "acme-webhook-secret-0001";
const CONTAINER: &str = "CSQU3054383";
const OTHER: &str = "MSKU0000011";

/// One HTTP/1.1 request with a raw body and extra headers; status and body as JSON.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Value) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
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
    send(addr, method, path, &[], body.as_bytes()).await
}

/// Posts `body` to the vendor webhook, signed at the wall clock's time.
async fn webhook(addr: SocketAddr, format: &str, body: &Value) -> (u16, Value) {
    let bytes = body.to_string().into_bytes();
    let now_s = server::wall_clock().unix_ms() / 1000;
    let signature = server::containers::sign(SECRET.as_bytes(), now_s, &bytes);
    send(
        addr,
        "POST",
        &format!("/api/v1/webhooks/containers/acme?format={format}"),
        &[("Sealwatch-Signature", signature)],
        &bytes,
    )
    .await
}

fn at(base: Timestamp, minutes: i64) -> String {
    Timestamp::from_unix_ms(base.unix_ms() + minutes * 60_000).to_string()
}

fn statuses(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("results in {body}"))
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

fn secrets() -> server::WebhookSecrets {
    server::WebhookSecrets::new([("acme".to_owned(), SECRET.to_owned())]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_reports_are_attributed_by_pairing_stored_and_supervised() {
    let (running, dir, mut transit) = common::start_with_example("containers-webhook", |c| {
        c.webhook_secrets = secrets();
    })
    .await;
    let addr = running.addr;
    let now = server::wall_clock();
    transit["sealed_at"] = json!(at(now, -10));
    transit["deadline"] = json!(at(now, 360));
    transit["vehicle"] = json!({"containers": [CONTAINER]});
    let (status, body) = api(addr, "POST", "/api/v1/transits", Some(transit)).await;
    assert_eq!(status, 201, "{body}");

    // D1 is affixed to the container from twenty minutes ago.
    let (status, pairing) = api(
        addr,
        "POST",
        &format!("/api/v1/containers/{CONTAINER}/pairings"),
        Some(json!({"device": "D1", "kind": "affixed", "at": at(now, -20)})),
    )
    .await;
    assert_eq!(status, 201, "{pairing}");
    assert_eq!(pairing["kind"], "affixed");

    // A location update, a UN/CEFACT reading, then the door opened: each attributed to D1.
    // The same reading sent again (a vendor's retry) is a duplicate.
    let location = json!([
        {"eventType": "IOT", "eventClassifierCode": "ACT", "eventDateTime": at(now, -6),
         "iotEventCode": "LOC", "equipmentReference": CONTAINER,
         "eventLocation": {"latitude": "29.31", "longitude": "120.07"}}
    ]);
    let (status, body) = webhook(addr, "dcsa", &location).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(statuses(&body), ["accepted"], "{body}");
    assert_eq!(body["results"][0]["device"], "D1", "{body}");
    let reading = json!({"equipmentId": CONTAINER, "eventTime": at(now, -5),
        "geoLocation": {"latitude": 29.315, "longitude": 120.075},
        "doorStatus": "CLOSED", "temperature": {"value": 5.5, "unit": "CEL"}});
    let (status, body) = webhook(addr, "uncefact", &reading).await;
    assert_eq!(
        (status, statuses(&body)),
        (200, vec!["accepted".into()]),
        "{body}"
    );
    let (_, body) = webhook(addr, "uncefact", &reading).await;
    assert_eq!(statuses(&body), ["duplicate"], "{body}");
    let dcsa = json!({"eventType": "IOT", "eventClassifierCode": "ACT",
        "eventDateTime": at(now, -3), "iotEventCode": "DRO", "equipmentReference": CONTAINER,
        "eventLocation": {"latitude": "29.32", "longitude": "120.08"}});
    let (status, body) = webhook(addr, "dcsa", &dcsa).await;
    assert_eq!(
        (status, statuses(&body)),
        (200, vec!["accepted".into()]),
        "{body}"
    );

    // Reports nobody can be attributed to are refused with the reason: another container
    // with no device, a time before the pairing, a device that is not paired.
    let unattributed = json!([
        {"equipmentId": OTHER, "eventTime": at(now, -2), "doorStatus": "OPEN"},
        {"equipmentId": CONTAINER, "eventTime": at(now, -30), "doorStatus": "OPEN"},
        {"equipmentId": CONTAINER, "deviceId": "D9", "eventTime": at(now, -2)}
    ]);
    let (status, body) = webhook(addr, "uncefact", &unattributed).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        statuses(&body),
        ["unattributed", "unattributed", "unattributed"],
        "{body}"
    );
    let errors: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"].as_str().unwrap())
        .collect();
    assert!(
        errors[0].starts_with("container: no device was paired to container MSKU0000011"),
        "{errors:?}"
    );
    assert!(errors[1].contains(CONTAINER), "{errors:?}");
    assert!(
        errors[2].starts_with("device: D9 was not paired"),
        "{errors:?}"
    );

    // The door opened after sealing: the supervisor's opening alarm, on the transit.
    let (_, alarms) = api(
        addr,
        "GET",
        "/api/v1/alarms?kind=illegal_opening&transit=T1",
        None,
    )
    .await;
    let items = alarms["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{alarms}");

    // What is wrong with a request is said, and nothing of it is stored.
    let bytes = dcsa.to_string().into_bytes();
    let now_s = now.unix_ms() / 1000;
    let good = server::containers::sign(SECRET.as_bytes(), now_s, &bytes);
    // (headers, path after /containers/, status, words of the detail)
    type Refusal<'a> = (Vec<(&'a str, String)>, &'a str, u16, &'a str);
    let refusals: [Refusal; 6] = [
        (vec![], "acme?format=dcsa", 401, "missing"),
        (
            vec![("Sealwatch-Signature", "v1=abc".into())],
            "acme?format=dcsa",
            401,
            "expected t=",
        ),
        (
            vec![(
                "Sealwatch-Signature",
                server::containers::sign(SECRET.as_bytes(), now_s - 600, &bytes),
            )],
            "acme?format=dcsa",
            401,
            "replay",
        ),
        (
            vec![(
                "Sealwatch-Signature",
                server::containers::sign(b"not-the-secret-at-all", now_s, &bytes),
            )],
            "acme?format=dcsa",
            401,
            "does not match",
        ),
        (
            vec![("Sealwatch-Signature", good.clone())],
            "acme",
            400,
            "format: missing",
        ),
        (
            vec![("Sealwatch-Signature", good.clone())],
            "nobody?format=dcsa",
            404,
            "vendor: ",
        ),
    ];
    for (headers, target, code, words) in refusals {
        let path = format!("/api/v1/webhooks/containers/{target}");
        let (status, problem) = send(addr, "POST", &path, &headers, &bytes).await;
        assert_eq!(status, code, "{target} {headers:?}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{detail}");
        if code == 401 {
            assert!(detail.starts_with("Sealwatch-Signature: "), "{detail}");
        }
    }
    let bad = br#"{"eventType": "IOT", "eventDateTime": "later", "iotEventCode": "DRO"}"#;
    let signature = server::containers::sign(SECRET.as_bytes(), now_s, bad);
    let (status, problem) = send(
        addr,
        "POST",
        "/api/v1/webhooks/containers/acme?format=dcsa",
        &[("Sealwatch-Signature", signature)],
        bad,
    )
    .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (422, Some("eventDateTime")),
        "{problem}"
    );

    let (_, metrics) = send(addr, "GET", "/metrics", &[], b"").await;
    let metrics = metrics.as_str().unwrap().to_owned();
    for line in [
        "sealwatch_container_reports_total{source=\"webhook\",outcome=\"accepted\"} 3",
        "sealwatch_container_reports_total{source=\"webhook\",outcome=\"duplicate\"} 1",
        "sealwatch_container_reports_total{source=\"webhook\",outcome=\"unattributed\"} 3",
        "sealwatch_container_reports_total{source=\"webhook\",outcome=\"malformed\"} 1",
        "sealwatch_container_reports_total{source=\"webhook\",outcome=\"unauthenticated\"} 4",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    running.stop().await.unwrap();

    // Exactly the three accepted reports are stored, as D1's, in time order.
    let mut store = store::SqliteStore::open(&dir.join("sealwatch.db")).unwrap();
    let stored = store.observations("D1", TimeRange::default(), 100).unwrap();
    let doors: Vec<Option<model::DoorState>> = stored.iter().map(|o| o.door).collect();
    assert_eq!(
        doors,
        [
            None,
            Some(model::DoorState::Closed),
            Some(model::DoorState::Open)
        ]
    );
    assert_eq!(stored[1].temperature_c, Some(5.5));
    assert_eq!(stored[0].lat, Some(29.31));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairings_through_the_api() {
    let (running, dir, _) = common::start_with_example("containers-pairings", |_| {}).await;
    let addr = running.addr;
    let path = format!("/api/v1/containers/{CONTAINER}/pairings");
    let other = format!("/api/v1/containers/{OTHER}/pairings");

    let (status, body) = api(
        addr,
        "POST",
        &path,
        Some(json!({"device": "EMB-1", "kind": "embedded", "at": "2026-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = api(
        addr,
        "POST",
        &path,
        Some(json!({"device": "TAG-1", "kind": "affixed", "at": "2026-11-25T08:00:00Z"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // One container at a time for an affixed device; embedded ones never move.
    let (status, body) = api(
        addr,
        "POST",
        &other,
        Some(json!({"device": "TAG-1", "kind": "affixed"})),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (409, Some("device")),
        "{body}"
    );
    let (status, body) = api(addr, "POST", &format!("{path}/EMB-1/unpair"), None).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("for life"),
        "{body}"
    );

    let (status, body) = api(
        addr,
        "POST",
        &format!("{path}/TAG-1/unpair"),
        Some(json!({"at": "2026-11-25T12:00:00Z"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["unpaired_at"], "2026-11-25T12:00:00Z");
    let (status, _) = api(addr, "POST", &format!("{path}/TAG-1/unpair"), None).await;
    assert_eq!(status, 404);
    let (status, body) = api(
        addr,
        "POST",
        &other,
        Some(json!({"device": "TAG-1", "kind": "affixed", "at": "2026-11-25T12:00:00Z"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let (status, list) = api(addr, "GET", &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["container"], CONTAINER);
    let devices: Vec<&str> = list["pairings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["device"].as_str().unwrap())
        .collect();
    assert_eq!(devices, ["EMB-1", "TAG-1"], "{list}");

    // A registered unit's kind and container must agree with the pairing.
    let register = |id: &str, kind: &str, container: Option<&str>| {
        let mut d = json!({"id": id, "kind": kind, "state": "in_stock"});
        if let Some(c) = container {
            d["container"] = json!(c);
        }
        d
    };
    for d in [
        register("UNIT-E", "smart_container_embedded", Some(OTHER)),
        register("UNIT-A", "smart_container_affixed", None),
    ] {
        let (status, body) = api(addr, "POST", "/api/v1/devices", Some(d)).await;
        assert_eq!(status, 200, "{body}");
    }
    let refused = [
        (json!({"device": "UNIT-E", "kind": "affixed"}), "kind"),
        (json!({"device": "UNIT-E", "kind": "embedded"}), "device"),
        (json!({"device": "UNIT-A", "kind": "embedded"}), "kind"),
    ];
    for (body, field) in refused {
        let (status, problem) = api(addr, "POST", &path, Some(body.clone())).await;
        assert_eq!(
            (status, problem["field"].as_str()),
            (409, Some(field)),
            "{body}: {problem}"
        );
    }
    let (status, body) = api(
        addr,
        "POST",
        &other,
        Some(json!({"device": "UNIT-E", "kind": "embedded"})),
    )
    .await;
    assert_eq!(
        status, 201,
        "built into the container the registry names: {body}"
    );

    // Bad input names the field.
    let (status, body) = api(addr, "GET", "/api/v1/containers/CSQU3054384/pairings", None).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("number")),
        "{body}"
    );
    let (status, body) = api(
        addr,
        "POST",
        &path,
        Some(json!({"device": "X", "kind": "glued"})),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("kind")),
        "{body}"
    );

    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_needs_a_signature_not_a_token() {
    let dir =
        std::env::temp_dir().join(format!("sealwatch-containers-auth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    config.auth_required = true;
    config.webhook_secrets = secrets();
    let running = server::start(config).await.unwrap();
    let addr = running.addr;

    let (status, _) = api(
        addr,
        "GET",
        &format!("/api/v1/containers/{CONTAINER}/pairings"),
        None,
    )
    .await;
    assert_eq!(status, 401, "the pairings API needs a token");
    let reading = json!({"equipmentId": OTHER, "eventTime": at(server::wall_clock(), -1)});
    let (status, body) = webhook(addr, "uncefact", &reading).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(statuses(&body), ["unattributed"], "{body}");
    let (status, body) = send(
        addr,
        "POST",
        "/api/v1/webhooks/containers/acme?format=uncefact",
        &[],
        reading.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Sealwatch-Signature: missing"),
        "{body}"
    );

    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
