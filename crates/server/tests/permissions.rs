//! The permission matrix over real HTTP: every route of the table with a token of every role
//! gets exactly what the table says (403 naming the role and the route, or through), and
//! scoping: a carrier never sees another carrier's transit (list, get, track, events, alarms,
//! the stream), the driver's name is for customs only, and a patrol sees only the alarms
//! dispatched to it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use model::Role;
use serde_json::{Value, json};
use server::permissions::{Access, PERMISSIONS, allows};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One request with a bearer token; status and body. The body of an event stream (no
/// Content-Length) is not read: the head says all the matrix needs.
async fn call(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(conn);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).await.unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
    }
    // A HEAD answer has the GET's length, and no body.
    let length = if method == "HEAD" { None } else { length };
    let mut body = vec![0; length.unwrap_or(0)];
    reader.read_exact(&mut body).await.unwrap();
    (status, String::from_utf8(body).unwrap())
}

fn at(ms: i64) -> String {
    model::Timestamp::from_unix_ms(ms).to_string()
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sealwatch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The organisation every token of the matrix carries: that of the first transit's carrier,
/// so that scoped roles get through to it.
const ORG_A: &str = "carrier-a";
const ORG_B: &str = "carrier-b";

/// Tokens made straight in the store, by name: `(role, organisation)`.
fn make_tokens(
    config: &server::Config,
    wanted: &[(&str, Role, Option<&str>)],
) -> HashMap<String, String> {
    let mut store = server::open_store(config).unwrap();
    let now = server::wall_clock();
    wanted
        .iter()
        .map(|(name, role, org)| {
            let mut t = server::auth::generate(*role, name, now, None).unwrap();
            t.record.organisation = org.map(str::to_owned);
            store.put_token(&t.record, &t.secret_hash).unwrap();
            ((*name).to_owned(), t.token)
        })
        .collect()
}

/// Two transits, T1 carried by carrier A and T2 by carrier B, each with a driver, and an
/// illegal-opening alarm on each; returns the alarm ids `(of T1, of T2)`.
async fn two_transits_with_alarms(addr: SocketAddr, admin: &str) -> (i64, i64) {
    let example: Value =
        serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
    for z in example["zones"].as_array().unwrap() {
        let (status, body) = call(addr, admin, "POST", "/api/v1/zones", Some(z.clone())).await;
        assert_eq!(status, 204, "{body}");
    }
    let now = server::wall_clock().unix_ms();
    for (id, device, carrier) in [("T1", "D1", ORG_A), ("T2", "D2", ORG_B)] {
        let mut t = example["transits"][0].clone();
        t["id"] = json!(id);
        t["device"] = json!(device);
        t["sealed_at"] = json!(at(now - 600_000));
        t["deadline"] = json!(at(now + 3_600_000));
        t["declaration"] = json!({"number": format!("DEC-{id}"), "carrier": carrier});
        t["driver"] = json!({"name": format!("Driver of {id}"), "contact": "+86 555 0100"});
        let (status, body) = call(addr, admin, "POST", "/api/v1/transits", Some(t)).await;
        assert_eq!(status, 201, "{body}");
        // Unlocked without authorisation: an alarm.
        let obs = json!([{"device": device, "t": at(now - 300_000), "lat": 29.31, "lon": 120.07,
                          "lock": "unlocked", "seq": 1}]);
        let (status, body) = call(addr, admin, "POST", "/api/v1/observations", Some(obs)).await;
        assert!(status < 300, "{body}");
    }
    // Observations are supervised by the writer: bounded wait for both alarms.
    for _ in 0..200 {
        let (status, body) = call(addr, admin, "GET", "/api/v1/alarms", None).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let of = |t: &str| {
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["alarm"]["transit"] == t)
                .and_then(|a| a["id"].as_i64())
        };
        if let (Some(a1), Some(a2)) = (of("T1"), of("T2")) {
            return (a1, a2);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no alarm on T1 and T2 after 10 s");
}

/// A concrete path for a route's template: the transit and alarm of carrier A, made-up ids
/// elsewhere (a 404 or 400 there is the handler's answer, past the permission check).
fn concrete(template: &str, alarm: i64) -> String {
    let alarm = alarm.to_string();
    let mut out = Vec::new();
    let mut previous = "";
    for p in template.split('/') {
        let v = match p {
            "{id}" if previous == "transits" => "T1",
            "{id}" if previous == "alarms" => alarm.as_str(),
            "{id}" => "X1",
            "{step}" => "report",
            "{n}" => "1",
            "{number}" => "CSQU3054383",
            "{device}" => "D1",
            "{vendor}" => "acme",
            other => other,
        };
        out.push(v.to_owned());
        previous = p;
    }
    out.join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_role_as_the_matrix_says() {
    let dir = fresh_dir("permissions-matrix");
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    config.auth_required = true;
    let mut wanted: Vec<(&str, Role, Option<&str>)> = Role::ALL
        .iter()
        .map(|r| (r.as_str(), *r, Some(ORG_A)))
        .collect();
    wanted.push(("setup", Role::Administrator, None));
    let tokens = make_tokens(&config, &wanted);
    let running = server::start(config).await.unwrap();
    let addr = running.addr;
    let (alarm, _) = two_transits_with_alarms(addr, &tokens["setup"]).await;

    let mut checked = 0;
    for rule in PERMISSIONS {
        let path = concrete(rule.path, alarm);
        assert!(
            !path.contains('{'),
            "{path}: a placeholder the test does not fill"
        );
        let method = rule.method.to_ascii_uppercase();
        let body = (method != "GET" && method != "DELETE").then(|| json!({}));
        for role in Role::ALL {
            let (status, text) =
                call(addr, &tokens[role.as_str()], &method, &path, body.clone()).await;
            let what = format!("{role} {method} {path}: {status} {text}");
            let refused = status == 403 && text.contains("permission:");
            if allows(rule, role) {
                assert!(!refused, "allowed by the table, refused: {what}");
                if rule.access != Access::Open {
                    // Open routes may refuse a request for its own reasons (a reader's or a
                    // vendor's signature missing); the others know the caller.
                    assert_ne!(status, 401, "{what}");
                }
            } else {
                assert!(refused, "refused by the table, let through: {what}");
                assert!(text.contains(role.as_str()), "names the role: {what}");
                assert!(text.contains(rule.path), "names the route: {what}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, PERMISSIONS.len() * Role::ALL.len());
    // HEAD runs a GET handler: it is judged as the GET.
    let (status, _) = call(addr, &tokens["carrier"], "HEAD", "/api/v1/audit", None).await;
    assert_eq!(status, 403);
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads the backlog of the stream from the start: every item until none comes for a while
/// (the end of what is stored; a bound, not an assertion on time).
async fn stream_items(addr: SocketAddr, token: &str) -> Vec<(String, Value)> {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET /api/v1/stream?after=0 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(conn);
    let mut items = Vec::new();
    let mut name = None;
    loop {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(2), reader.read_line(&mut line)).await;
        let Ok(Ok(n)) = read else { break };
        if n == 0 {
            break;
        }
        let l = line.trim_end();
        if let Some(v) = l.strip_prefix("event:") {
            name = Some(v.trim().to_owned());
        } else if let Some(v) = l.strip_prefix("data:")
            && let Some(n) = name.take()
        {
            items.push((n, serde_json::from_str(v.trim()).unwrap()));
        }
    }
    items
}

fn items(body: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(body).unwrap();
    v["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_sees_only_its_transits_and_a_patrol_its_alarms() {
    let dir = fresh_dir("permissions-scope");
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    config.auth_required = true;
    let tokens = make_tokens(
        &config,
        &[
            ("admin", Role::Administrator, None),
            ("officer", Role::Officer, None),
            ("carrier_a", Role::Carrier, Some(ORG_A)),
            ("carrier_b", Role::Carrier, Some(ORG_B)),
            ("forwarder_x", Role::Forwarder, Some("forwarder-x")),
            ("carrier_nobody", Role::Carrier, None),
            ("patrol_1", Role::Patrol, Some("patrol-1")),
            ("patrol_2", Role::Patrol, Some("patrol-2")),
        ],
    );
    let running = server::start(config).await.unwrap();
    let addr = running.addr;
    let (alarm_1, alarm_2) = two_transits_with_alarms(addr, &tokens["admin"]).await;
    let a = tokens["carrier_a"].as_str();

    // The list: its own transit only, without the driver.
    let (status, body) = call(addr, a, "GET", "/api/v1/transits", None).await;
    assert_eq!(status, 200, "{body}");
    let listed = items(&body);
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0]["transit"]["id"], "T1");
    assert!(listed[0]["transit"].get("driver").is_none(), "{body}");
    assert!(!body.contains("Driver of"), "{body}");
    // A carrier token without an organisation sees nothing.
    let (status, body) = call(
        addr,
        &tokens["carrier_nobody"],
        "GET",
        "/api/v1/transits",
        None,
    )
    .await;
    assert_eq!((status, items(&body).len()), (200, 0), "{body}");
    // Its own transit: readable, no driver; an officer reads the driver.
    let (status, body) = call(addr, a, "GET", "/api/v1/transits/T1", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !body.contains("Driver of") && !body.contains("+86"),
        "{body}"
    );
    let (status, body) = call(addr, &tokens["officer"], "GET", "/api/v1/transits/T1", None).await;
    assert_eq!(status, 200, "{body}");
    let t: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(t["transit"]["driver"]["name"], "Driver of T1");
    let (_, body) = call(addr, &tokens["officer"], "GET", "/api/v1/transits", None).await;
    assert_eq!(items(&body).len(), 2, "{body}");
    assert!(body.contains("Driver of T2"), "{body}");

    // Another carrier's transit, under every route about it: 404, worded as for one that does
    // not exist, so its existence is not confirmed.
    let (status, missing) = call(addr, a, "GET", "/api/v1/transits/T9", None).await;
    assert_eq!(status, 404, "{missing}");
    for (suffix, unknown) in [
        ("", "T9"),
        ("/track", "T9"),
        ("/events", "T9"),
        ("/alarms", "T9"),
    ] {
        let (status, body) = call(
            addr,
            a,
            "GET",
            &format!("/api/v1/transits/T2{suffix}"),
            None,
        )
        .await;
        assert_eq!(status, 404, "T2{suffix}: {body}");
        assert_eq!(
            body.replace("T2", unknown),
            missing,
            "T2{suffix}: the same answer as an unknown transit"
        );
    }
    let (status, body) = call(
        addr,
        &tokens["carrier_b"],
        "GET",
        "/api/v1/transits/T2",
        None,
    )
    .await;
    assert_eq!(status, 200, "carrier B reads its own: {body}");
    // A forwarder its declaration does not name.
    let (status, _) = call(
        addr,
        &tokens["forwarder_x"],
        "GET",
        "/api/v1/transits/T1",
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Alarms: the list, one by one, and the stream.
    let (status, body) = call(addr, a, "GET", "/api/v1/alarms", None).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<i64> = items(&body)
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![alarm_1], "{body}");
    let (status, _) = call(addr, a, "GET", &format!("/api/v1/alarms/{alarm_1}"), None).await;
    assert_eq!(status, 200);
    let (status, body) = call(addr, a, "GET", &format!("/api/v1/alarms/{alarm_2}"), None).await;
    assert_eq!(status, 404, "{body}");
    let seen = stream_items(addr, a).await;
    assert!(
        seen.iter().any(|(n, d)| n == "alarm" && d["id"] == alarm_1),
        "its alarm is streamed: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|(_, d)| d["transit"] == "T1" && d["id"] != alarm_2),
        "only T1 in the stream: {seen:?}"
    );
    let all = stream_items(addr, &tokens["officer"]).await;
    assert!(all.iter().any(|(_, d)| d["transit"] == "T2"), "{all:?}");

    // A patrol: nothing until an alarm is dispatched to it.
    let p1 = tokens["patrol_1"].as_str();
    let (_, body) = call(addr, p1, "GET", "/api/v1/alarms", None).await;
    assert!(items(&body).is_empty(), "{body}");
    let officer = tokens["officer"].as_str();
    for (step, body) in [
        ("acknowledge", json!({"actor": "officer.zhang"})),
        (
            "dispatch",
            json!({"actor": "officer.zhang", "to": "patrol-1", "note": "north gate"}),
        ),
    ] {
        let path = format!("/api/v1/alarms/{alarm_1}/{step}");
        let (status, text) = call(addr, officer, "POST", &path, Some(body)).await;
        assert_eq!(status, 200, "{step}: {text}");
    }
    let (_, body) = call(addr, p1, "GET", "/api/v1/alarms", None).await;
    let ids: Vec<i64> = items(&body)
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![alarm_1], "{body}");
    let (status, body) = call(addr, p1, "GET", &format!("/api/v1/alarms/{alarm_1}"), None).await;
    assert_eq!(status, 200, "{body}");
    let record: Value = serde_json::from_str(&body).unwrap();
    let dispatch = record["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "dispatch")
        .unwrap();
    assert_eq!(dispatch["note"], "to patrol-1\nnorth gate");
    let (status, _) = call(addr, p1, "GET", &format!("/api/v1/alarms/{alarm_2}"), None).await;
    assert_eq!(status, 404);
    let p1_stream = stream_items(addr, p1).await;
    assert!(!p1_stream.is_empty());
    assert!(
        p1_stream.iter().all(|(_, d)| d["id"] == alarm_1),
        "{p1_stream:?}"
    );
    // The other patrol sees none of it.
    let p2 = tokens["patrol_2"].as_str();
    let (_, body) = call(addr, p2, "GET", "/api/v1/alarms", None).await;
    assert!(items(&body).is_empty(), "{body}");
    let (status, _) = call(addr, p2, "GET", &format!("/api/v1/alarms/{alarm_1}"), None).await;
    assert_eq!(status, 404);
    assert!(stream_items(addr, p2).await.is_empty());
    // The patrol reports from the scene, but does not close.
    let path = format!("/api/v1/alarms/{alarm_1}/report");
    let report = json!({"actor": "patrol.li", "note": "seal intact, door closed"});
    let (status, body) = call(addr, p1, "POST", &path, Some(report.clone())).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = call(addr, p2, "POST", &path, Some(report)).await;
    assert_eq!(status, 404, "not dispatched to patrol 2");
    let path = format!("/api/v1/alarms/{alarm_1}/close");
    let (status, body) = call(addr, p1, "POST", &path, Some(json!({"actor": "p"}))).await;
    assert_eq!(status, 403, "{body}");
    // `to` is for a dispatch only.
    let path = format!("/api/v1/alarms/{alarm_2}/acknowledge");
    let (status, body) = call(
        addr,
        officer,
        "POST",
        &path,
        Some(json!({"actor": "o", "to": "patrol-1"})),
    )
    .await;
    assert_eq!(status, 422, "{body}");

    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_operator_sees_its_own_station_only() {
    let dir = fresh_dir("permissions-station");
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    config.auth_required = true;
    let tokens = make_tokens(
        &config,
        &[
            ("admin", Role::Administrator, None),
            ("yiwu", Role::SiteOperator, Some("ST-YIWU")),
            ("nowhere", Role::SiteOperator, None),
        ],
    );
    let running = server::start(config).await.unwrap();
    let addr = running.addr;
    let (admin, yiwu, nowhere) = (&tokens["admin"], &tokens["yiwu"], &tokens["nowhere"]);
    let example: Value =
        serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
    for z in example["zones"].as_array().unwrap() {
        assert_eq!(
            call(addr, admin, "POST", "/api/v1/zones", Some(z.clone()))
                .await
                .0,
            204
        );
    }
    for (id, zone) in [("ST-YIWU", "CN-YIWU"), ("ST-NINGBO", "CN-NINGBO")] {
        let (status, body) = call(
            addr,
            admin,
            "POST",
            "/api/v1/stations",
            Some(json!({"id": id, "name": id, "zone": zone})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    for (id, station) in [("LOCK-Y1", "ST-YIWU"), ("LOCK-N1", "ST-NINGBO")] {
        let (status, body) = call(
            addr,
            admin,
            "POST",
            "/api/v1/devices",
            Some(json!({"id": id, "kind": "active", "state": "in_stock", "station": station})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    for (id, station) in [("R-Y1", "ST-YIWU"), ("R-N1", "ST-NINGBO")] {
        let (status, body) = call(
            addr,
            admin,
            "POST",
            "/api/v1/readers",
            Some(json!({"id": id, "kind": "fixed", "station": station})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let ids = |body: &str, pointer: &str| -> Vec<String> {
        items(body)
            .iter()
            .map(|x| x.pointer(pointer).unwrap().as_str().unwrap().to_owned())
            .collect()
    };

    // Its own station's records, in lists and one by one.
    let (status, body) = call(addr, yiwu, "GET", "/api/v1/stations", None).await;
    assert_eq!(
        (status, ids(&body, "/id")),
        (200, vec!["ST-YIWU".to_owned()])
    );
    let (status, body) = call(addr, yiwu, "GET", "/api/v1/devices", None).await;
    assert_eq!(
        (status, ids(&body, "/device/id")),
        (200, vec!["LOCK-Y1".to_owned()])
    );
    let (status, body) = call(addr, yiwu, "GET", "/api/v1/devices?station=ST-NINGBO", None).await;
    assert_eq!((status, items(&body).len()), (200, 0), "{body}");
    let (status, body) = call(addr, yiwu, "GET", "/api/v1/readers", None).await;
    assert_eq!((status, ids(&body, "/id")), (200, vec!["R-Y1".to_owned()]));
    for path in [
        "/api/v1/stations/ST-YIWU",
        "/api/v1/devices/LOCK-Y1",
        "/api/v1/readers/R-Y1",
    ] {
        assert_eq!(call(addr, yiwu, "GET", path, None).await.0, 200, "{path}");
    }
    // Another station's records are answered as if they did not exist.
    for (path, unknown) in [
        ("/api/v1/stations/ST-NINGBO", "/api/v1/stations/ST-NOPE"),
        ("/api/v1/devices/LOCK-N1", "/api/v1/devices/LOCK-NOPE"),
        ("/api/v1/readers/R-N1", "/api/v1/readers/R-NOPE"),
    ] {
        let (status, body) = call(addr, yiwu, "GET", path, None).await;
        let (unknown_status, unknown_body) = call(addr, admin, "GET", unknown, None).await;
        assert_eq!((status, unknown_status), (404, 404), "{path}: {body}");
        let shape = |b: &str| {
            b.replace("NINGBO", "X")
                .replace("N1", "X")
                .replace("NOPE", "X")
        };
        assert_eq!(shape(&body), shape(&unknown_body), "{path}");
    }
    // It registers devices of its own station only.
    let (status, body) = call(
        addr,
        yiwu,
        "POST",
        "/api/v1/devices",
        Some(json!({"id": "LOCK-Y2", "kind": "active", "state": "in_stock", "station": "ST-YIWU"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        addr,
        yiwu,
        "POST",
        "/api/v1/devices",
        Some(
            json!({"id": "LOCK-N2", "kind": "active", "state": "in_stock", "station": "ST-NINGBO"}),
        ),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("own station (ST-YIWU)"), "{body}");
    // A site operator whose account names no station sees no station's records.
    let (status, body) = call(addr, nowhere, "GET", "/api/v1/devices", None).await;
    assert_eq!((status, items(&body).len()), (200, 0), "{body}");
    assert_eq!(
        call(addr, nowhere, "GET", "/api/v1/stations/ST-YIWU", None)
            .await
            .0,
        404
    );
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_documented_matrix_is_the_code() {
    let doc = include_str!("../../../docs/security.md");
    let start = "<!-- permission matrix: generated from crates/server/src/permissions.rs; tests/permissions.rs checks it -->\n";
    let end = "<!-- end of permission matrix -->";
    let (_, rest) = doc
        .split_once(start)
        .expect("docs/security.md: the permission matrix's opening marker");
    let (documented, _) = rest
        .split_once(end)
        .expect("docs/security.md: the permission matrix's closing marker");
    let generated = server::permissions::markdown_matrix();
    assert!(
        documented == generated,
        "docs/security.md's matrix is not the code's; put this between the markers:\n{generated}"
    );
}

/// The live map's answer is scoped like the lists: a carrier gets its own transits, a patrol
/// the transits of the alarms dispatched to it (with their route), customs everything; and no
/// marker carries personal data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_is_scoped_like_the_lists() {
    let dir = fresh_dir("permissions-map");
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    config.auth_required = true;
    let tokens = make_tokens(
        &config,
        &[
            ("admin", Role::Administrator, None),
            ("officer", Role::Officer, None),
            ("carrier_a", Role::Carrier, Some(ORG_A)),
            ("patrol", Role::Patrol, Some("unit-7")),
        ],
    );
    let running = server::start(config).await.unwrap();
    let addr = running.addr;
    let (a1, _) = two_transits_with_alarms(addr, &tokens["admin"]).await;
    let ids = |body: &str| -> Vec<String> {
        let mut v: Vec<String> = items(body)
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let (status, body) = call(addr, &tokens["officer"], "GET", "/api/v1/map", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), ["T1", "T2"]);
    assert!(
        !body.contains("Driver of"),
        "no personal data on the map: {body}"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["counts"]["alarmed"], 2, "{body}");
    let t1 = &items(&body)[0];
    assert!(t1["grade"].as_u64().unwrap() > 0, "{body}");
    assert!(t1.get("route").is_none(), "the route is for a patrol only");

    let (_, body) = call(addr, &tokens["carrier_a"], "GET", "/api/v1/map", None).await;
    assert_eq!(ids(&body), ["T1"]);

    let (_, body) = call(addr, &tokens["patrol"], "GET", "/api/v1/map", None).await;
    assert!(ids(&body).is_empty(), "nothing dispatched yet: {body}");
    for step in [json!({"actor": "c"}), json!({"actor": "c", "to": "unit-7"})] {
        let path = if step.get("to").is_some() {
            format!("/api/v1/alarms/{a1}/dispatch")
        } else {
            format!("/api/v1/alarms/{a1}/acknowledge")
        };
        let (status, body) = call(addr, &tokens["officer"], "POST", &path, Some(step)).await;
        assert!(status < 300, "{body}");
    }
    let (_, body) = call(addr, &tokens["patrol"], "GET", "/api/v1/map", None).await;
    assert_eq!(ids(&body), ["T1"]);
    assert!(items(&body)[0]["route"].is_object(), "{body}");
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// CSV exports of the lists: scoped and redacted like the JSON answer, and recorded in the
/// audit chain (with the personal data they hold) before they are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_are_scoped_redacted_and_audited() {
    let dir = fresh_dir("permissions-export");
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    config.auth_required = true;
    let tokens = make_tokens(
        &config,
        &[
            ("admin", Role::Administrator, None),
            ("officer", Role::Officer, None),
            ("carrier_a", Role::Carrier, Some(ORG_A)),
        ],
    );
    let running = server::start(config).await.unwrap();
    let addr = running.addr;
    two_transits_with_alarms(addr, &tokens["admin"]).await;

    let (status, csv) = call(
        addr,
        &tokens["officer"],
        "GET",
        "/api/v1/transits?format=csv",
        None,
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("id,state,") && lines[0].ends_with(",driver"),
        "{csv}"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(csv.contains("Driver of T1"), "{csv}");

    let (status, csv) = call(
        addr,
        &tokens["carrier_a"],
        "GET",
        "/api/v1/transits?format=csv",
        None,
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    assert_eq!(csv.lines().count(), 2, "its own transit only: {csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("T1,"), "{csv}");
    assert!(
        !csv.contains("driver") && !csv.contains("Driver of"),
        "{csv}"
    );

    let (status, csv) = call(
        addr,
        &tokens["carrier_a"],
        "GET",
        "/api/v1/alarms?format=csv",
        None,
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains(",T1,"), "{csv}");
    let (status, body) = call(
        addr,
        &tokens["officer"],
        "GET",
        "/api/v1/alarms?format=xml",
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // Every export is in the audit chain, and the officer's read of drivers too.
    let (status, body) = call(
        addr,
        &tokens["admin"],
        "GET",
        "/api/v1/audit?limit=1000",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let audit: Value = serde_json::from_str(&body).unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let exports: Vec<&Value> = entries.iter().filter(|e| e["action"] == "export").collect();
    assert_eq!(exports.len(), 3, "{body}");
    assert!(exports.iter().any(|e| e["subject"] == "alarms"), "{body}");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "personal_data.read" && e["detail"]["export"] == "csv"),
        "{body}"
    );
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
