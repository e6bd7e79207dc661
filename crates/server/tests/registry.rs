//! The registry, a transit's history and statistics over real HTTP: stations, devices and
//! readers registered and listed; a sealed transit's reports moving its device's last report,
//! battery and position; its track as GeoJSON; its alarms and events in time ranges; counts of
//! transits and alarms; and problems naming the field for what is wrong.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use model::Timestamp;
use serde_json::{Value, json};

mod common;
use common::{json, request};

fn plus_minutes(t: Timestamp, minutes: i64) -> Timestamp {
    Timestamp::from_unix_ms(t.unix_ms() + minutes * 60_000)
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|x| x.pointer(key).unwrap().as_str().unwrap().to_owned())
        .collect()
}

/// A problem: its status, media type and field.
async fn problem(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let (status, content_type, text) = request(addr, method, path, body).await;
    assert_eq!(
        content_type, "application/problem+json",
        "{method} {path}: {status} {text}"
    );
    let p: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(p["status"], status, "{p}");
    (status, p["field"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_track_and_statistics() {
    let dir = std::env::temp_dir().join(format!("sealwatch-registry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Ten minutes a second: reports can be dated after the declaration without waiting, and
    // the test is over long before any timer of the transit (hours) comes due.
    let clock = server::Clock::fast(600.0);
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    config.clock = clock;
    let running = server::start(config).await.unwrap();
    let addr = running.addr;

    let example: Value =
        serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
    for z in example["zones"].as_array().unwrap() {
        let (status, _, _) = request(addr, "POST", "/api/v1/zones", Some(z.clone())).await;
        assert_eq!(status, 204);
    }

    // Stations.
    for (id, name, zone) in [
        ("ST-YIWU", "Yiwu", "CN-YIWU"),
        ("ST-NINGBO", "Ningbo port", "CN-NINGBO"),
    ] {
        let (status, body) = json(
            addr,
            "POST",
            "/api/v1/stations",
            Some(json!({"id": id, "name": name, "zone": zone})),
        )
        .await;
        assert_eq!((status, &body["name"]), (200, &json!(name)), "{body}");
    }
    let (_, station) = json(addr, "GET", "/api/v1/stations/ST-NINGBO", None).await;
    assert_eq!(
        station,
        json!({"id": "ST-NINGBO", "name": "Ningbo port", "zone": "CN-NINGBO"})
    );
    let (_, list) = json(addr, "GET", "/api/v1/stations?limit=1", None).await;
    assert_eq!(ids(&list, "/id"), ["ST-YIWU"]);
    let after = list["next_after"].as_i64().unwrap();
    let (_, list) = json(
        addr,
        "GET",
        &format!("/api/v1/stations?after={after}&limit=1"),
        None,
    )
    .await;
    assert_eq!(ids(&list, "/id"), ["ST-NINGBO"]);

    // Devices: D1 seals the transit below.
    for body in [
        json!({"id": "D1", "kind": "active", "state": "sealed", "station": "ST-YIWU", "model": "JT701", "battery_pct": 95.5}),
        json!({"id": "D2", "kind": "passive", "state": "in_stock", "station": "ST-YIWU"}),
        json!({"id": "D3", "kind": "active", "state": "in_stock", "station": "ST-NINGBO", "seal": "4660-305419896"}),
    ] {
        let (status, record) = json(addr, "POST", "/api/v1/devices", Some(body.clone())).await;
        assert_eq!(status, 200, "{record}");
        assert_eq!(record["device"], body, "{record}");
        assert!(record["registered_at"].is_string(), "{record}");
        assert_eq!(record["last_position"], Value::Null);
    }
    let (_, list) = json(addr, "GET", "/api/v1/devices?station=ST-YIWU", None).await;
    assert_eq!(ids(&list, "/device/id"), ["D1", "D2"]);
    let (_, list) = json(
        addr,
        "GET",
        "/api/v1/devices?state=in_stock&kind=active",
        None,
    )
    .await;
    assert_eq!(ids(&list, "/device/id"), ["D3"]);
    let (_, list) = json(addr, "GET", "/api/v1/devices?limit=2", None).await;
    assert_eq!(ids(&list, "/device/id"), ["D1", "D2"]);
    let after = list["next_after"].as_i64().unwrap();
    let (_, list) = json(addr, "GET", &format!("/api/v1/devices?after={after}"), None).await;
    assert_eq!(ids(&list, "/device/id"), ["D3"]);

    // Readers.
    let gate = json!({"id": "R-GATE-1", "kind": "fixed", "zone": "CHK-1", "station": "ST-NINGBO"});
    let (status, body) = json(addr, "POST", "/api/v1/readers", Some(gate.clone())).await;
    assert_eq!((status, &body), (200, &gate));
    let hand = json!({"id": "R-HAND-7", "kind": "handheld"});
    assert_eq!(
        json(addr, "POST", "/api/v1/readers", Some(hand.clone()))
            .await
            .0,
        200
    );
    assert_eq!(
        json(addr, "GET", "/api/v1/readers/R-GATE-1", None).await.1,
        gate
    );
    let (_, list) = json(addr, "GET", "/api/v1/readers", None).await;
    assert_eq!(ids(&list, "/id"), ["R-GATE-1", "R-HAND-7"]);

    // A transit sealed with D1 now, declared now.
    let before_declaration = clock.now();
    let mut transit = example["transits"][0].clone();
    transit["sealed_at"] = json!(clock.now());
    transit["deadline"] = json!(plus_minutes(clock.now(), 12 * 60));
    let (status, body) = json(addr, "POST", "/api/v1/transits", Some(transit)).await;
    assert_eq!(status, 201, "{body}");
    let (_, t1) = json(addr, "GET", "/api/v1/transits/T1", None).await;
    let declared_at: Timestamp = t1["declared_at"].as_str().unwrap().parse().unwrap();
    // Let the clock pass the reports' times.
    while clock.now() < plus_minutes(declared_at, 6) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Reports along the route, in the departure zone and leaving it; the last one open.
    let at = |m: i64| plus_minutes(declared_at, m);
    let reports = json!([
        {"device": "D1", "t": at(1), "lat": 29.31, "lon": 120.07, "speed_kmh": 0, "lock": "locked", "battery_pct": 94, "seq": 1},
        {"device": "D1", "t": at(2), "lat": 29.313, "lon": 120.078, "speed_kmh": 12, "lock": "locked", "seq": 2},
        {"device": "D1", "t": at(3), "fix": false, "lock": "locked", "battery_pct": 93, "seq": 3},
        {"device": "D1", "t": at(4), "lat": 29.316, "lon": 120.086, "speed_kmh": 15, "lock": "unlocked", "battery_pct": 92, "seq": 4},
    ]);
    let (status, body) = json(addr, "POST", "/api/v1/observations", Some(reports)).await;
    assert_eq!((status, &body["accepted"]), (200, &json!(4)), "{body}");

    // The device's last report, battery and position.
    let (_, d1) = json(addr, "GET", "/api/v1/devices/D1", None).await;
    assert_eq!(d1["device"]["last_report_at"], json!(at(4)), "{d1}");
    assert_eq!(d1["device"]["battery_pct"], json!(92.0), "{d1}");
    assert_eq!(
        d1["last_position"],
        json!({"t": at(4), "lat": 29.316, "lon": 120.086}),
        "{d1}"
    );
    assert_eq!(d1["device"]["model"], "JT701", "the registration stays");
    let (_, d3) = json(addr, "GET", "/api/v1/devices/D3", None).await;
    assert_eq!(d3["device"].get("last_report_at"), None, "{d3}");

    // The track: a LineString of [lon, lat] from the fixes, with their times.
    let (status, content_type, text) =
        request(addr, "GET", "/api/v1/transits/T1/track", None).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/geo+json"),
        "{text}"
    );
    let track: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(track["type"], "Feature");
    assert_eq!(
        track["geometry"],
        json!({"type": "LineString", "coordinates": [[120.07, 29.31], [120.078, 29.313], [120.086, 29.316]]})
    );
    assert_eq!(track["properties"]["times"], json!([at(1), at(2), at(4)]));
    assert_eq!(track["properties"]["transit"], "T1");
    assert_eq!(track["properties"]["device"], "D1");
    assert_eq!(track["properties"]["next_from"], Value::Null);

    // As points: every report, with its time, speed, lock and battery.
    let (_, points) = json(addr, "GET", "/api/v1/transits/T1/track?format=points", None).await;
    assert_eq!(points["type"], "FeatureCollection");
    let features = points["features"].as_array().unwrap();
    assert_eq!(features.len(), 4);
    assert_eq!(
        features[0],
        json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [120.07, 29.31]},
               "properties": {"t": at(1), "speed_kmh": 0.0, "lock": "locked", "battery_pct": 94.0}})
    );
    assert_eq!(features[2]["geometry"], Value::Null, "no fix, no point");
    assert_eq!(features[2]["properties"]["battery_pct"], json!(93.0));
    assert_eq!(features[3]["properties"]["lock"], "unlocked");

    // In a time range, and cut short by the limit.
    let (_, part) = json(
        addr,
        "GET",
        &format!("/api/v1/transits/T1/track?from={}&to={}", at(2), at(4)),
        None,
    )
    .await;
    assert_eq!(part["properties"]["times"], json!([at(2)]));
    assert_eq!(part["geometry"], Value::Null, "one fix makes no line");
    let (_, first) = json(
        addr,
        "GET",
        "/api/v1/transits/T1/track?format=points&limit=2",
        None,
    )
    .await;
    assert_eq!(first["features"].as_array().unwrap().len(), 2);
    assert_eq!(first["next_from"], json!(at(3)));
    // Paging one report at a time gives exactly the whole track, nothing twice.
    let (_, whole) = json(addr, "GET", "/api/v1/transits/T1/track?format=points", None).await;
    let mut paged = Vec::new();
    let mut query = String::new();
    loop {
        let (_, page) = json(
            addr,
            "GET",
            &format!("/api/v1/transits/T1/track?format=points&limit=1{query}"),
            None,
        )
        .await;
        paged.extend(page["features"].as_array().unwrap().iter().cloned());
        if page["next_from"].is_null() {
            break;
        }
        query = format!(
            "&from={}&skip={}",
            page["next_from"].as_str().unwrap(),
            page["next_skip"]
        );
    }
    assert_eq!(paged, whole["features"].as_array().unwrap().clone());

    // The opening is an alarm of the transit.
    let alarms = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (_, list) = json(addr, "GET", "/api/v1/transits/T1/alarms", None).await;
            if !list["items"].as_array().unwrap().is_empty() {
                return list;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("an alarm within 10 s");
    let alarms = alarms["items"].as_array().unwrap().clone();
    assert!(
        alarms
            .iter()
            .any(|a| a["alarm"]["kind"] == "illegal_opening"),
        "{alarms:?}"
    );
    assert!(alarms.iter().all(|a| a["alarm"]["transit"] == "T1"));
    let (_, opening) = json(
        addr,
        "GET",
        "/api/v1/transits/T1/alarms?kind=illegal_opening",
        None,
    )
    .await;
    assert_eq!(opening["items"].as_array().unwrap().len(), 1, "{opening}");
    let (_, none) = json(
        addr,
        "GET",
        &format!("/api/v1/transits/T1/alarms?to={}", at(4)),
        None,
    )
    .await;
    assert_eq!(none["items"], json!([]), "no alarm before the opening");

    // Statistics: transits by state (every state listed), alarms per day, kind and grade.
    let (_, t1) = json(addr, "GET", "/api/v1/transits/T1", None).await;
    let (_, counts) = json(addr, "GET", "/api/v1/statistics/transits", None).await;
    assert_eq!(counts["total"], 1, "{counts}");
    let by_state: BTreeMap<String, u64> = counts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["state"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_state.len(), 8, "{counts}");
    assert_eq!(by_state[t1["state"].as_str().unwrap()], 1, "{counts}");
    let (_, stats) = json(addr, "GET", "/api/v1/statistics/alarms", None).await;
    let mut expected: BTreeMap<(String, String, u64), u64> = BTreeMap::new();
    let (_, all) = json(addr, "GET", "/api/v1/alarms", None).await;
    for a in all["items"].as_array().unwrap() {
        let day = a["alarm"]["t"].as_str().unwrap()[..10].to_owned();
        let kind = a["alarm"]["kind"].as_str().unwrap().to_owned();
        *expected
            .entry((day, kind, a["alarm"]["grade"].as_u64().unwrap()))
            .or_default() += 1;
    }
    let got: BTreeMap<(String, String, u64), u64> = stats["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                (
                    c["day"].as_str().unwrap().to_owned(),
                    c["kind"].as_str().unwrap().to_owned(),
                    c["grade"].as_u64().unwrap(),
                ),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected, "{stats}");
    let opening_day = at(4).to_string()[..10].to_owned();
    assert_eq!(
        got[&(opening_day, "illegal_opening".to_owned(), 4)],
        1,
        "{stats}"
    );
    assert_eq!(stats["total"], all["items"].as_array().unwrap().len());
    let (_, earlier) = json(
        addr,
        "GET",
        &format!("/api/v1/statistics/alarms?to={before_declaration}"),
        None,
    )
    .await;
    assert_eq!(
        (&earlier["items"], &earlier["total"]),
        (&json!([]), &json!(0))
    );

    // Transits by declaration time.
    for (query, want) in [
        (format!("from={before_declaration}"), vec!["T1"]),
        (format!("from={}", at(1)), vec![]),
        (format!("to={before_declaration}"), vec![]),
        (
            format!("state={}&to={}", t1["state"].as_str().unwrap(), at(1)),
            vec!["T1"],
        ),
        (format!("state=closed&to={}", at(1)), vec![]),
    ] {
        let (_, list) = json(addr, "GET", &format!("/api/v1/transits?{query}"), None).await;
        let want: Vec<String> = want.into_iter().map(str::to_owned).collect();
        assert_eq!(ids(&list, "/transit/id"), want, "{query}: {list}");
    }

    // Events in time order, paged, and in a time range.
    let (_, events) = json(addr, "GET", "/api/v1/transits/T1/events", None).await;
    let events = events["items"].as_array().unwrap().clone();
    assert_eq!(events[0]["event"], "sealed", "{events:?}");
    let (_, page1) = json(addr, "GET", "/api/v1/transits/T1/events?limit=1", None).await;
    assert_eq!(page1["items"], json!([events[0]]));
    let after = page1["next_after"].as_i64().unwrap();
    assert_eq!(events[0]["id"], after);
    let (_, rest) = json(
        addr,
        "GET",
        &format!("/api/v1/transits/T1/events?after={after}"),
        None,
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap()[..], events[1..]);
    let sealed_at = events[0]["t"].as_str().unwrap();
    let (_, later) = json(
        addr,
        "GET",
        &format!("/api/v1/transits/T1/events?from={}", at(5)),
        None,
    )
    .await;
    assert_eq!(later["items"], json!([]), "{later}");
    let (_, none) = json(
        addr,
        "GET",
        &format!("/api/v1/transits/T1/events?to={sealed_at}"),
        None,
    )
    .await;
    assert_eq!(none["items"], json!([]), "to is exclusive: {none}");

    // What is wrong, named: unknown ids are 404, malformed ones and bad queries 400, bad
    // bodies 422.
    for (method, path, body, want) in [
        ("GET", "/api/v1/devices/D9", None, (404, "")),
        ("GET", "/api/v1/stations/ST-NOPE", None, (404, "")),
        ("GET", "/api/v1/readers/R-NOPE", None, (404, "")),
        ("GET", "/api/v1/transits/T9/track", None, (404, "")),
        ("GET", "/api/v1/transits/T9/alarms", None, (404, "")),
        ("GET", "/api/v1/devices/D%201", None, (400, "id")),
        (
            "GET",
            "/api/v1/transits/T1/track?format=svg",
            None,
            (400, "format"),
        ),
        (
            "GET",
            "/api/v1/transits/T1/track?limit=0",
            None,
            (400, "limit"),
        ),
        ("GET", "/api/v1/devices?state=flying", None, (400, "state")),
        ("GET", "/api/v1/devices?kind=drone", None, (400, "kind")),
        (
            "GET",
            "/api/v1/devices?station=a%20b",
            None,
            (400, "station"),
        ),
        ("GET", "/api/v1/stations?limit=5000", None, (400, "limit")),
        (
            "GET",
            "/api/v1/transits?from=yesterday",
            None,
            (400, "from"),
        ),
        (
            "GET",
            "/api/v1/transits/T1/events?to=noon",
            None,
            (400, "to"),
        ),
        (
            "GET",
            "/api/v1/statistics/alarms?from=2026-11-26T00:00:00Z&to=2026-11-25T00:00:00Z",
            None,
            (400, "to"),
        ),
        (
            "POST",
            "/api/v1/devices",
            Some(json!({"id": "D4", "kind": "active", "state": "in_stock", "battery_pct": 120})),
            (422, "battery_pct"),
        ),
        (
            "POST",
            "/api/v1/devices",
            Some(json!({"id": "D 4", "kind": "active", "state": "in_stock"})),
            (422, "id"),
        ),
        (
            "POST",
            "/api/v1/devices",
            Some(json!({"id": "D4", "kind": "drone", "state": "in_stock"})),
            (422, "kind"),
        ),
        (
            "POST",
            "/api/v1/devices",
            Some(json!({"id": "D4", "kind": "active", "state": "in_stock", "station": "ST-NOPE"})),
            (422, "station"),
        ),
        (
            "POST",
            "/api/v1/devices",
            Some(json!({"id": "D4", "kind": "active", "state": "in_stock", "seal": "ABC"})),
            (422, "seal"),
        ),
        (
            "POST",
            "/api/v1/stations",
            Some(json!({"id": "ST-X", "name": "X", "zone": "NOWHERE"})),
            (422, "zone"),
        ),
        (
            "POST",
            "/api/v1/stations",
            Some(json!({"id": "ST-X", "name": " ", "zone": "CN-YIWU"})),
            (422, "name"),
        ),
        (
            "POST",
            "/api/v1/readers",
            Some(json!({"id": "R-X", "kind": "fixed", "zone": "NOWHERE"})),
            (422, "zone"),
        ),
        (
            "POST",
            "/api/v1/readers",
            Some(json!({"id": "R-X", "kind": "fixed", "station": "ST-NOPE"})),
            (422, "station"),
        ),
    ] {
        let (status, field) = problem(addr, method, path, body).await;
        assert_eq!((status, field.as_str()), want, "{method} {path}");
    }
    // Refused registrations left nothing behind.
    assert_eq!(json(addr, "GET", "/api/v1/devices/D4", None).await.0, 404);
    assert_eq!(
        json(addr, "GET", "/api/v1/stations/ST-X", None).await.0,
        404
    );

    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
