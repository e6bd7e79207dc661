//! `sealwatch pool plan` as a pool manager runs it: the hand-checked four-station pool of
//! testdata/pool (the optimum, cost 8, is worked out in crates/pool/src/tests.rs) as JSON and
//! as a table; input that does not fit the format, or that the planner refuses, exits 2
//! naming what is wrong.

use std::io::Write;
use std::process::{Command, Stdio};

const FOUR_STATIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/pool/four-stations.json"
);

fn pool_plan(args: &[&str], stdin: Option<&str>) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args(["pool", "plan"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn four_stations_as_json() {
    let (code, stdout, stderr) = pool_plan(
        &["--input", FOUR_STATIONS, "--lead-days", "2", "--json"],
        None,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["total_cost"], 8.0);
    assert_eq!(plan["shortfall_devices"], 0);
    let moves: Vec<_> = plan["moves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["from"].as_str().unwrap(),
                m["to"].as_str().unwrap(),
                m["devices"].as_u64().unwrap(),
                m["device_ids"].clone(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        vec![
            ("A", "C", 2, serde_json::json!(["a2", "a3"])),
            ("D", "B", 2, serde_json::json!(["d2", "d1"])),
        ]
    );
    let targets: Vec<_> = plan["stations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_u64().unwrap())
        .collect();
    assert_eq!(targets, [2, 4, 2, 0]);
}

#[test]
fn four_stations_as_a_table() {
    let (code, stdout, stderr) = pool_plan(&["--input", FOUR_STATIONS, "--lead-days", "2"], None);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "station  before  target    sent  received   after  shortfall"
    );
    assert_eq!(
        lines[2],
        "B             2       4       0         2       4          0"
    );
    assert!(
        stdout.contains("A        C              2        6.00  a2 a3\n"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("4 devices moved, total cost 8.00, shortfall 0\n"),
        "{stdout}"
    );
}

#[test]
fn bad_input_exits_2_naming_it() {
    // A field the format does not have: named with its JSON path.
    let (code, _, stderr) = pool_plan(
        &["--input", "-"],
        Some(
            r#"{"stations": [{"id": "A", "lat": 45.0}], "devices": [], "cost": {"matrix": {"cost_per_device": [[0]]}}}"#,
        ),
    );
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with("error: -: stations[0].lat: unknown field `lat`"),
        "{stderr}"
    );

    // Valid JSON the planner refuses: a device at a station that is not listed.
    let (code, _, stderr) = pool_plan(
        &["--input", "-"],
        Some(
            r#"{"stations": [{"id": "A"}], "devices": [{"id": "x", "station": "Z", "state": "available"}], "cost": {"matrix": {"cost_per_device": [[0]]}}}"#,
        ),
    );
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        "error: -: device \"x\" is at station \"Z\", which is not in the station list\n"
    );

    let (code, _, stderr) = pool_plan(&["--input", FOUR_STATIONS, "--service-level", "1.5"], None);
    assert_eq!(code, Some(2));
    assert!(
        stderr.ends_with("service level must be at least 0.5 and below 1, not 1.5\n"),
        "{stderr}"
    );

    let (code, _, stderr) = pool_plan(&["--input", "/nonexistent/pool.json"], None);
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with("error: cannot read /nonexistent/pool.json: "),
        "{stderr}"
    );
}

/// Without `--input`, the pool is the store's registry: stations at their zones' positions,
/// devices in the states the planner knows (in stock, charging, in return, in repair), the
/// others (in service, lost, retired) left out.
#[test]
fn from_the_store_registry() {
    use store::Store;
    let dir = std::env::temp_dir().join(format!("sealwatch-pool-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    {
        let mut s = store::SqliteStore::open(&dir.join("sealwatch.db")).unwrap();
        let now = model::Timestamp::from_unix_ms(1_800_000_000_000);
        for (zone, station, lon) in [("Z-A", "S-A", 120.07), ("Z-B", "S-B", 121.85)] {
            s.put_zone(
                &serde_json::from_value(serde_json::json!({"id": zone, "kind": "office",
                    "area": {"type": "Point", "coordinates": [lon, 29.3]}, "radius_m": 500}))
                .unwrap(),
            )
            .unwrap();
            s.put_station(
                &serde_json::from_value(
                    serde_json::json!({"id": station, "name": station, "zone": zone}),
                )
                .unwrap(),
            )
            .unwrap();
        }
        for (id, state) in [
            ("D1", "in_stock"),
            ("D2", "charging"),
            ("D3", "in_transit"),
            ("D4", "retired"),
        ] {
            s.put_device(
                &serde_json::from_value(serde_json::json!({"id": id, "kind": "active",
                    "state": state, "station": "S-A", "battery_pct": 80}))
                .unwrap(),
                now,
            )
            .unwrap();
        }
    }
    let data_dir = dir.to_str().unwrap();
    let (code, stdout, stderr) = pool_plan(&["--data-dir", data_dir, "--export"], None);
    assert_eq!(code, Some(0), "{stderr}");
    let input: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let stations = input["stations"].as_array().unwrap();
    assert_eq!(stations.len(), 2, "{input}");
    assert_eq!(stations[0]["lon_deg"], 120.07, "{input}");
    assert_eq!(stations[0]["history"].as_array().unwrap().len(), 56);
    let devices: Vec<(&str, &str)> = input["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap(), d["state"].as_str().unwrap()))
        .collect();
    assert_eq!(devices, [("D1", "available"), ("D2", "charging")]);
    // Nothing leaves either station, so nothing needs to move.
    let (code, stdout, stderr) = pool_plan(&["--data-dir", data_dir], None);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("no moves"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
