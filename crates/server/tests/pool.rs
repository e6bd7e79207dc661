//! The device pool from the live registry over real HTTP: stock by state per station, the
//! transits that left a station counted as its outflow, and a rebalancing plan that ships
//! devices from the station with stock to the one that issues them.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

mod common;
use common::json;

async fn ok(addr: SocketAddr, path: &str, body: Value) {
    let (status, answer) = json(addr, "POST", path, Some(body)).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_ships_stock_to_where_transits_leave() {
    let dir = std::env::temp_dir().join(format!("sealwatch-pool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    // A day a second: what is declared now is yesterday's history in a second or two.
    config.clock = server::Clock::fast(86_400.0);
    let running = server::start(config).await.unwrap();
    let addr = running.addr;
    for (zone, lon) in [
        ("Z-YIWU", 120.07),
        ("Z-JINHUA", 119.65),
        ("Z-NINGBO", 121.85),
    ] {
        ok(
            addr,
            "/api/v1/zones",
            json!({"id": zone, "kind": "office", "area": {"type": "Point", "coordinates": [lon, 29.3]}, "radius_m": 800}),
        )
        .await;
    }
    ok(
        addr,
        "/api/v1/stations",
        json!({"id": "S-YIWU", "name": "Yiwu", "zone": "Z-YIWU"}),
    )
    .await;
    ok(
        addr,
        "/api/v1/stations",
        json!({"id": "S-JINHUA", "name": "Jinhua", "zone": "Z-JINHUA"}),
    )
    .await;
    // Yiwu holds twelve charged devices and one in repair; Jinhua has none.
    for i in 0..12 {
        ok(
            addr,
            "/api/v1/devices",
            json!({"id": format!("DY{i:02}"), "kind": "active", "state": "in_stock", "station": "S-YIWU", "battery_pct": 50 + i}),
        )
        .await;
    }
    ok(
        addr,
        "/api/v1/devices",
        json!({"id": "DY-REPAIR", "kind": "active", "state": "maintenance", "station": "S-YIWU"}),
    )
    .await;
    // Jinhua's one device goes out on the first transit; it follows its transit's life.
    ok(
        addr,
        "/api/v1/devices",
        json!({"id": "DJ0", "kind": "active", "state": "in_stock", "station": "S-JINHUA", "battery_pct": 90}),
    )
    .await;
    // Six transits leave Jinhua for Ningbo today.
    for i in 0..6 {
        ok(
            addr,
            "/api/v1/transits",
            json!({"id": format!("TJ{i}"), "device": format!("DJ{i}"), "departure": "Z-JINHUA", "destination": "Z-NINGBO",
                   "sealed_at": server::wall_clock().to_string(),
                   "route": {"type": "LineString", "coordinates": [[119.65, 29.3], [121.85, 29.3]]}}),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let (status, pool) = json(addr, "GET", "/api/v1/pool", None).await;
    assert_eq!(status, 200, "{pool}");
    let station = |id: &str| {
        pool["stations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
            .clone()
    };
    let (yiwu, jinhua) = (station("S-YIWU"), station("S-JINHUA"));
    assert_eq!(yiwu["by_state"]["in_stock"], 12, "{pool}");
    assert_eq!(yiwu["by_state"]["maintenance"], 1, "{pool}");
    assert_eq!(yiwu["by_state"]["lost"], 0, "every state is named: {pool}");
    assert_eq!(
        (jinhua["departures"].as_u64(), jinhua["net_inflow"].as_i64()),
        (Some(6), Some(-6)),
        "{pool}"
    );
    assert_eq!(pool["by_state"]["in_stock"], 12, "{pool}");

    let (status, answer) = json(addr, "GET", "/api/v1/pool/plan?lead_days=2", None).await;
    assert_eq!(status, 200, "{answer}");
    let plan = &answer["plan"];
    let moves = plan["moves"].as_array().unwrap();
    assert_eq!(moves.len(), 1, "{plan}");
    assert_eq!(
        (moves[0]["from"].as_str(), moves[0]["to"].as_str()),
        (Some("S-YIWU"), Some("S-JINHUA"))
    );
    let shipped = moves[0]["devices"].as_u64().unwrap();
    assert!(shipped > 0, "{plan}");
    // The fullest batteries go first; the device in repair never does.
    let ids: Vec<&str> = moves[0]["device_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(ids.len() as u64, shipped);
    assert_eq!(ids[0], "DY11", "{plan}");
    assert!(!ids.contains(&"DY-REPAIR"));
    let after = plan["stations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "S-JINHUA")
        .unwrap();
    assert_eq!(after["shortfall"], 0, "{plan}");
    assert!(
        after["stock_after"].as_u64() >= after["target"].as_u64(),
        "{plan}"
    );
    // The device that left is no longer Jinhua's stock, and its history says why.
    let (status, history) = json(addr, "GET", "/api/v1/devices/DJ0/history", None).await;
    assert_eq!(status, 200, "{history}");
    let causes: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cause"].as_str().unwrap())
        .collect();
    assert_eq!(causes, ["registry", "transit TJ0 sealed"], "{history}");
    assert_eq!(history["state"], "sealed");
    assert_eq!(jinhua["by_state"]["sealed"], 1, "{pool}");
    assert_eq!(pool["entered_last_30_days"]["sealed"], 1, "{pool}");
    // Bad parameters are named.
    let (status, problem) = json(addr, "GET", "/api/v1/pool/plan?service_level=2", None).await;
    assert_eq!(status, 422, "{problem}");
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
