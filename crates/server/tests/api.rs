//! The API over real HTTP on a real socket: the transit lifecycle, observations with a result
//! per item, alarms live on the stream and handled step by step, and bad input answered with a
//! problem naming the field.

use std::net::SocketAddr;
use std::time::Duration;

use model::Timestamp;
use serde_json::{Value, json};
use store::TimeRange;

mod common;
use common::{json, request};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn at(base: Timestamp, minutes: i64) -> String {
    Timestamp::from_unix_ms(base.unix_ms() + minutes * 60_000).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transit_from_declaration_to_a_handled_alarm() {
    let dir = std::env::temp_dir().join(format!("sealwatch-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let running = server::start(server::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.clone(),
    ))
    .await
    .unwrap();
    let addr = running.addr;
    assert_eq!(request(addr, "GET", "/healthz", None).await.0, 200);
    assert_eq!(request(addr, "GET", "/readyz", None).await.0, 200);

    // Zones of the contract's example, then a transit sealed ten minutes ago.
    let example: Value =
        serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
    for z in example["zones"].as_array().unwrap() {
        assert_eq!(
            request(addr, "POST", "/api/v1/zones", Some(z.clone()))
                .await
                .0,
            204
        );
    }
    let now = server::wall_clock();
    let mut transit = example["transits"][0].clone();
    transit["sealed_at"] = json!(at(now, -10));
    transit["deadline"] = json!(at(now, 360));
    transit["vehicle"] = json!({"plate": "ZJ-A12345", "containers": ["CSQU3054383"]});
    let (status, body) = json(addr, "POST", "/api/v1/transits", Some(transit.clone())).await;
    assert_eq!(status, 201, "{body}");

    // Bad input: a problem naming the field.
    let mut bad = transit.clone();
    bad["id"] = json!("T2");
    bad["vehicle"]["containers"] = json!(["CSQU3054384"]);
    let (status, content_type, text) = request(addr, "POST", "/api/v1/transits", Some(bad)).await;
    assert_eq!(
        (status, content_type.as_str()),
        (422, "application/problem+json"),
        "{text}"
    );
    let problem: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(problem["field"], "vehicle.containers[0]", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("expected 3"),
        "{problem}"
    );
    let (status, problem) = json(addr, "POST", "/api/v1/transits", Some(transit.clone())).await;
    assert_eq!(status, 422, "declaring twice: {problem}");
    let (status, _) = json(
        addr,
        "POST",
        "/api/v1/observations",
        Some(json!({"not": "an array"})),
    )
    .await;
    assert_eq!(status, 422);

    // Listen to the live stream of alarms before the violation.
    let mut sse = TcpStream::connect(addr).await.unwrap();
    sse.write_all(b"GET /api/v1/stream?only=alarms HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut sse = BufReader::new(sse);

    // A batch with a result per item.
    let obs = json!([
        {"device": "D1", "t": at(now, -5), "lat": 29.31, "lon": 120.07, "lock": "locked", "seq": 1},
        {"device": "D1", "t": at(now, -5), "lat": 29.31, "lon": 120.07, "lock": "locked", "seq": 1},
        {"device": "D1", "t": at(now, -4), "lat": 95, "lon": 120.07},
        {"device": "NOPE", "t": at(now, -4)},
        {"device": "D1", "t": at(now, 60)},
        {"device": "D1", "t": "yesterday"},
        {"device": "D1", "t": at(now, -3), "lat": 29.32, "lon": 120.08, "lock": "unlocked", "seq": 2},
    ]);
    let (status, body) = json(addr, "POST", "/api/v1/observations", Some(obs)).await;
    assert_eq!(status, 200, "{body}");
    let statuses: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "accepted",
            "duplicate",
            "rejected",
            "rejected",
            "rejected",
            "rejected",
            "accepted"
        ],
        "{body}"
    );
    let errors: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["error"].as_str())
        .collect();
    assert!(errors[0].starts_with("lat: "), "{errors:?}");
    assert!(errors[1].starts_with("device: NOPE"), "{errors:?}");
    assert!(errors[2].contains("in the future"), "{errors:?}");
    assert!(errors[3].contains("RFC 3339"), "{errors:?}");

    // The opening is an alarm, live on the stream...
    let live = tokio::time::timeout(Duration::from_secs(10), async {
        let mut line = String::new();
        loop {
            line.clear();
            sse.read_line(&mut line).await.unwrap();
            if let Some(data) = line.trim_end().strip_prefix("data:") {
                return serde_json::from_str::<Value>(data.trim()).unwrap();
            }
        }
    })
    .await
    .expect("an alarm on the stream within 10 s");
    assert_eq!(live["kind"], "illegal_opening", "{live}");
    let id = live["id"].as_i64().unwrap();

    // ...and in the list, filtered.
    let (_, list) = json(
        addr,
        "GET",
        "/api/v1/alarms?state=open&kind=illegal_opening",
        None,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let (status, problem) = json(addr, "GET", "/api/v1/alarms?kind=nonsense", None).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("kind")));

    // Handled step by step, each step with who.
    for (step, body) in [
        ("acknowledge", json!({"actor": "officer.zhang"})),
        (
            "dispatch",
            json!({"actor": "officer.zhang", "note": "patrol 7"}),
        ),
        (
            "resolve",
            json!({"actor": "patrol.7", "outcome": "confirmed_violation", "note": "seal opened at a lay-by"}),
        ),
        ("close", json!({"actor": "supervisor.wang"})),
    ] {
        let (status, record) = json(
            addr,
            "POST",
            &format!("/api/v1/alarms/{id}/{step}"),
            Some(body),
        )
        .await;
        assert_eq!(status, 200, "{step}: {record}");
    }
    let (status, problem) = json(
        addr,
        "POST",
        &format!("/api/v1/alarms/{id}/acknowledge"),
        Some(json!({"actor": "x"})),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    let (_, record) = json(addr, "GET", &format!("/api/v1/alarms/{id}"), None).await;
    assert_eq!(
        record["state"],
        json!({"state": "closed", "outcome": "confirmed_violation"})
    );
    let actors: Vec<&str> = record["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        actors,
        [
            "officer.zhang",
            "officer.zhang",
            "patrol.7",
            "supervisor.wang"
        ]
    );

    // The lifecycle through actions; each answer gives the state after it, so an action out
    // of turn (release before arrival) is seen to change nothing.
    for (action, state) in [
        ("release", "sealed"),
        ("arrive", "arrived"),
        ("release", "released"),
    ] {
        let (status, body) = json(
            addr,
            "POST",
            "/api/v1/transits/T1/actions",
            Some(json!({"action": action})),
        )
        .await;
        assert_eq!(status, 202, "{action}: {body}");
        assert_eq!(
            (body["action"].as_str(), body["state"].as_str()),
            (Some(action), Some(state)),
            "{body}"
        );
    }
    let (_, t1) = json(addr, "GET", "/api/v1/transits/T1", None).await;
    assert_eq!(t1["state"], "released", "{t1}");
    let (_, events) = json(addr, "GET", "/api/v1/transits/T1/events", None).await;
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        kinds.starts_with(&["sealed"]) && kinds.contains(&"arrived") && kinds.contains(&"released"),
        "{kinds:?}"
    );
    let (status, _) = json(addr, "GET", "/api/v1/transits/NOPE", None).await;
    assert_eq!(status, 404);
    // Every error is a problem, including the framework's own rejections.
    for (method, path, want) in [
        ("GET", "/api/v1/alarms/abc", 400),
        ("GET", "/api/v1/alarms?limit=abc", 400),
        // Paths outside /api/ are the web UI's client-side routes (ui.rs): an unknown route
        // is a problem inside the API.
        ("GET", "/api/v1/no/such/route", 404),
        ("DELETE", "/api/v1/alarms", 405),
    ] {
        let (status, content_type, body) = request(addr, method, path, None).await;
        assert_eq!(
            (status, content_type.as_str()),
            (want, "application/problem+json"),
            "{method} {path}: {body}"
        );
    }
    // A read dated in the future would move the clock and fire every timer: refused.
    let read =
        json!({"t": at(now, 600), "reader": "R7", "zone": "CHK-1", "device": "D1", "intact": true});
    let (status, problem) = json(addr, "POST", "/api/v1/reads", Some(read)).await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("in the future"),
        "{problem}"
    );

    let (_, _, metrics) = request(addr, "GET", "/metrics", None).await;
    for line in [
        "sealwatch_inputs_total{verdict=\"duplicate\"} 1",
        "sealwatch_alarms_total{kind=\"illegal_opening\"} 1",
        "sealwatch_alarms_total{kind=\"route_deviation\"} 0",
        "sealwatch_alarm_latency_seconds_count 1",
        "sealwatch_writer_queue_depth ",
        "sealwatch_commit_seconds_bucket{le=\"+Inf\"} ",
        "sealwatch_commit_batch_items_bucket{le=\"1\"} ",
        "sealwatch_http_responses_total{code=\"4xx\"} ",
    ] {
        assert!(metrics.contains(line), "{line} is missing from:\n{metrics}");
    }
    running.stop().await.unwrap();
}

/// The limits and the operator's pages: an oversized body is a problem naming the limit, and
/// the API reference is a page that needs nothing from elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_the_reference_page() {
    let dir = std::env::temp_dir().join(format!("sealwatch-limits-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    config.max_body_bytes = 4096;
    let running = server::start(config).await.unwrap();
    let addr = running.addr;

    let big: Vec<Value> = (0..100)
        .map(|i| json!({"device": "D1", "t": "2026-11-30T08:00:00Z", "seq": i, "lat": 30.0, "lon": 120.0}))
        .collect();
    let (status, content_type, text) = request(
        addr,
        "POST",
        "/api/v1/observations",
        Some(Value::Array(big)),
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (413, "application/problem+json"),
        "{text}"
    );
    let problem: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(problem["field"], "body", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("4096 bytes"),
        "{problem}"
    );
    // The service goes on.
    assert_eq!(request(addr, "GET", "/readyz", None).await.0, 200);

    // Other parts' metrics (the gateways') are served with the service's own.
    running.add_metrics(|| "sealwatch_gateway_connections_open{protocol=\"test\"} 3\n".into());
    let (_, _, metrics) = request(addr, "GET", "/metrics", None).await;
    assert!(
        metrics.contains("sealwatch_gateway_connections_open{protocol=\"test\"} 3\n"),
        "{metrics}"
    );

    let (status, content_type, html) = request(addr, "GET", "/api/v1/docs", None).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(html.contains("<code>/api/v1/observations</code>"));
    assert!(html.contains("id=\"schema-observation\""));
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Retention runs inside the service: observations of a closed transit's device go, in bounded
/// batches; those of a transit still supervised stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_only_what_no_live_transit_needs() {
    let (running, dir, example_transit) = common::start_with_example("retention", |c| {
        c.retention = Some(Duration::from_secs(60));
        // Personal data goes as soon as a transit is closed; open transits keep it.
        c.personal_data_retention = Some(Duration::from_millis(1));
        c.purge_every = Duration::from_millis(100);
    })
    .await;
    let addr = running.addr;
    let now = server::wall_clock();
    for (id, device) in [("T1", "D1"), ("T2", "D2")] {
        let mut transit = example_transit.clone();
        transit["id"] = json!(id);
        transit["device"] = json!(device);
        transit["sealed_at"] = json!(at(now, -30));
        transit["deadline"] = json!(at(now, 360));
        transit["driver"] =
            json!({"name": format!("Driver of {id}"), "contact": "+86 571 0000 0000"});
        let (status, body) = json(addr, "POST", "/api/v1/transits", Some(transit)).await;
        assert_eq!(status, 201, "{body}");
        // Twenty reports from 30 to 11 minutes ago: older than the minute of retention.
        let obs: Vec<Value> = (0..20)
            .map(|i| json!({"device": device, "t": at(now, -30 + i), "lat": 29.31, "lon": 120.07, "lock": "locked", "seq": i}))
            .collect();
        let (status, body) = json(
            addr,
            "POST",
            "/api/v1/observations",
            Some(Value::Array(obs)),
        )
        .await;
        assert_eq!(
            (status, body["accepted"].as_u64()),
            (200, Some(20)),
            "{body}"
        );
    }
    let (status, body) = json(
        addr,
        "POST",
        "/api/v1/transits/T1/actions",
        Some(json!({"action": "close", "reason": "discharged"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let purged = |metrics: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("sealwatch_observations_purged_total "))
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    let started = std::time::Instant::now();
    loop {
        let (_, _, metrics) = request(addr, "GET", "/metrics", None).await;
        if purged(&metrics) >= 20 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nothing purged:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Purge rounds go on; T2 is still supervised, so its device's reports stay.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, _, metrics) = request(addr, "GET", "/metrics", None).await;
    assert_eq!(
        purged(&metrics),
        20,
        "only the closed transit's reports went"
    );
    // The closed transit's driver is erased; the supervised one's is there.
    assert!(
        metrics.contains("sealwatch_transits_personal_erased_total 1\n"),
        "{metrics}"
    );
    let driver = |id: &'static str| async move {
        let (status, body) = json(addr, "GET", &format!("/api/v1/transits/{id}"), None).await;
        assert_eq!(status, 200, "{body}");
        body["transit"]["driver"].clone()
    };
    let (t1, t2) = (driver("T1").await, driver("T2").await);
    assert_eq!(t1["name"], store::retention::ERASED, "{t1}");
    assert!(t1.get("contact").is_none(), "{t1}");
    assert_eq!(t2["name"], "Driver of T2", "{t2}");
    running.stop().await.unwrap();
    let mut store = store::SqliteStore::open(&dir.join("sealwatch.db")).unwrap();
    use store::Store;
    assert_eq!(
        store
            .observations("D1", TimeRange::default(), 100)
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        store
            .observations("D2", TimeRange::default(), 100)
            .unwrap()
            .len(),
        20
    );
    // The round that deleted them is in the audit chain; rounds that deleted nothing are not.
    let purges: Vec<store::AuditEntry> = store
        .audit_entries(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "observations.purge")
        .collect();
    assert_eq!(purges.len(), 1, "{purges:?}");
    assert_eq!(purges[0].actor, "retention");
    let detail: Value = serde_json::from_str(&purges[0].detail).unwrap();
    assert_eq!(detail["deleted"], 20, "{detail}");
    let erasures: Vec<Value> = store
        .audit_entries(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "personal_data.erase")
        .map(|e| serde_json::from_str(&e.detail).unwrap())
        .collect();
    assert_eq!(erasures.len(), 1, "{erasures:?}");
    assert_eq!(erasures[0]["transits"], json!(["T1"]));
    let _ = std::fs::remove_dir_all(&dir);
}

/// One raw request with a binary body and a content type; status and body bytes.
async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body).await.unwrap();
    let mut all = Vec::new();
    conn.read_to_end(&mut all).await.unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&all[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, all[split + 4..].to_vec())
}

/// A patrol's report on an alarm: comments as a handling step, photos as attachments, both in
/// the history with who and when; names that look like paths, types the bytes do not bear out,
/// and attachments to a closed alarm are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patrol_reports_with_photos() {
    let (running, dir, example_transit) = common::start_with_example("report", |_| {}).await;
    let addr = running.addr;
    let now = server::wall_clock();
    let mut transit = example_transit.clone();
    transit["sealed_at"] = json!(at(now, -30));
    transit["deadline"] = json!(at(now, 360));
    assert_eq!(
        json(addr, "POST", "/api/v1/transits", Some(transit))
            .await
            .0,
        201
    );
    let obs = json!([{"device": "D1", "t": at(now, -5), "lat": 29.31, "lon": 120.07, "lock": "unlocked", "seq": 1}]);
    assert_eq!(
        json(addr, "POST", "/api/v1/observations", Some(obs))
            .await
            .0,
        200
    );
    let (_, alarms) = json(addr, "GET", "/api/v1/alarms", None).await;
    let id = alarms["items"][0]["id"].as_i64().expect("an alarm");
    for (step, body) in [
        ("acknowledge", json!({"actor": "officer.zhang"})),
        (
            "dispatch",
            json!({"actor": "officer.zhang", "note": "patrol 7"}),
        ),
        (
            "report",
            json!({"actor": "patrol.7", "note": "seal intact, lock reset by driver"}),
        ),
    ] {
        let (status, body) = json(
            addr,
            "POST",
            &format!("/api/v1/alarms/{id}/{step}"),
            Some(body),
        )
        .await;
        assert_eq!(status, 200, "{step}: {body}");
    }
    let (status, problem) = json(
        addr,
        "POST",
        &format!("/api/v1/alarms/{id}/report"),
        Some(json!({"actor": "patrol.7"})),
    )
    .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (422, Some("note")),
        "{problem}"
    );

    let png: Vec<u8> = [&b"\x89PNG\r\n\x1a\n"[..], &[7u8; 300][..]].concat();
    let path = |q: &str| format!("/api/v1/alarms/{id}/attachments?{q}");
    let (status, body) = raw(
        addr,
        "POST",
        &path("name=seal%20front.png&actor=patrol.7"),
        "image/png",
        &png,
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let stored: Value = serde_json::from_slice(&body).unwrap();
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(&png)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(stored["sha256"], sha);
    assert_eq!(stored["size_bytes"], 308);
    for (query, content_type, bytes, want) in [
        (
            "name=..%2F..%2Fetc%2Fpasswd&actor=p",
            "image/png",
            &png[..],
            422,
        ),
        ("name=.hidden.png&actor=p", "image/png", &png[..], 422),
        (
            "name=x.png&actor=p",
            "image/png",
            &b"GIF89a not a png"[..],
            422,
        ),
        (
            "name=x.exe&actor=p",
            "application/octet-stream",
            &b"MZ"[..],
            415,
        ),
        ("name=x.png&actor=", "image/png", &png[..], 422),
    ] {
        let (status, body) = raw(addr, "POST", &path(query), content_type, bytes).await;
        assert_eq!(status, want, "{query}: {}", String::from_utf8_lossy(&body));
    }
    let (status, body) = raw(
        addr,
        "GET",
        &format!("/api/v1/alarms/{id}/attachments/{}", stored["id"]),
        "",
        b"",
    )
    .await;
    assert_eq!((status, body == png), (200, true));
    let (_, list) = json(
        addr,
        "GET",
        &format!("/api/v1/alarms/{id}/attachments"),
        None,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (status, _) = json(
        addr,
        "GET",
        &format!("/api/v1/alarms/{id}/attachments/999"),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // The history tells the whole story, with who and when.
    let (_, record) = json(addr, "GET", &format!("/api/v1/alarms/{id}"), None).await;
    let steps: Vec<(&str, &str)> = record["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["step"].as_str().unwrap(), h["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("acknowledge", "officer.zhang"),
            ("dispatch", "officer.zhang"),
            ("report", "patrol.7"),
            ("attach", "patrol.7")
        ]
    );
    assert!(
        record["history"][3]["note"]
            .as_str()
            .unwrap()
            .contains(&sha)
    );
    assert_eq!(
        record["state"]["state"], "dispatched",
        "reports keep the state"
    );

    for (step, body) in [
        (
            "resolve",
            json!({"actor": "officer.zhang", "outcome": "false_alarm"}),
        ),
        ("close", json!({"actor": "supervisor.wang"})),
    ] {
        assert_eq!(
            json(
                addr,
                "POST",
                &format!("/api/v1/alarms/{id}/{step}"),
                Some(body)
            )
            .await
            .0,
            200
        );
    }
    let (status, _) = raw(
        addr,
        "POST",
        &path("name=late.png&actor=patrol.7"),
        "image/png",
        &png,
    )
    .await;
    assert_eq!(status, 409, "a closed alarm takes no more attachments");
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Pairing another device before sealing: the store's transit names the new device, and the
/// new device's reports are taken for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_paired_before_sealing() {
    let (running, dir, example_transit) = common::start_with_example("pair", |_| {}).await;
    let addr = running.addr;
    let now = server::wall_clock();
    let mut transit = example_transit.clone();
    transit.as_object_mut().unwrap().remove("sealed_at");
    transit["deadline"] = json!(at(now, 360));
    assert_eq!(
        json(addr, "POST", "/api/v1/transits", Some(transit))
            .await
            .0,
        201
    );
    let (status, body) = json(
        addr,
        "POST",
        "/api/v1/transits/T1/actions",
        Some(json!({"action": "pair", "device": "D9", "reason": "D1 faulty"})),
    )
    .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (202, Some("declared")),
        "{body}"
    );
    let (_, t1) = json(addr, "GET", "/api/v1/transits/T1", None).await;
    assert_eq!(t1["transit"]["device"], "D9", "{t1}");
    let obs = json!([
        {"device": "D9", "t": at(now, -2), "lat": 29.31, "lon": 120.07, "lock": "locked", "seq": 1},
        {"device": "D1", "t": at(now, -2), "lat": 29.31, "lon": 120.07, "lock": "locked", "seq": 1}
    ]);
    let (_, body) = json(addr, "POST", "/api/v1/observations", Some(obs)).await;
    assert_eq!(body["results"][0]["status"], "accepted", "{body}");
    assert_eq!(
        body["results"][1]["status"], "rejected",
        "the old device: {body}"
    );
    let (_, events) = json(addr, "GET", "/api/v1/transits/T1/events", None).await;
    assert_eq!(events["items"][0]["event"], "device_paired", "{events}");
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
