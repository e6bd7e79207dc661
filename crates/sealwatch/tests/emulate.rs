//! `sealwatch emulate` against a real `sealwatch serve` with both gateways, over real sockets:
//! a JT/T 808 e-lock and a native-protocol device (its key file made by `sealwatch device-key
//! generate`) each report a journey that ends with the lock opened; every report is
//! acknowledged, the opening raises `illegal_opening` on the device's transit, and a command
//! queued through the API before the device connects is carried out by it and recorded done;
//! the native device's seal is signed evidence that `sealwatch verify-event` checks with the
//! device's public key alone.
//! Bad input exits 2 naming what is wrong; a device the gateway refuses exits 1.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

mod common;
use common::{Serving, api, sealwatch};

const ELOCK: &str = "013900000042";
const NATIVE: &str = "LOCK-N1";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sealwatch-emu-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Addresses {
    http: String,
    jt808: String,
    native: String,
    platform_signing: String,
    platform_agreement: String,
}

fn serve(dir: &Path) -> (Serving, Addresses) {
    let data_dir = dir.to_str().unwrap();
    let serving = Serving::start(
        &["--data-dir", data_dir],
        &[
            ("SEALWATCH_GATEWAY_JT808_LISTEN", "127.0.0.1:0"),
            ("SEALWATCH_GATEWAY_NATIVE_LISTEN", "127.0.0.1:0"),
        ],
        |l| l.starts_with("sealwatch: native-protocol gateway on "),
    );
    let find = |prefix: &str| {
        serving
            .lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?}: {:?}", serving.lines))
            .to_owned()
    };
    let jt808 = find("sealwatch: JT/T 808 gateway on ");
    // ADDR (platform signing key S, agreement key A)
    let native = find("sealwatch: native-protocol gateway on ");
    let words: Vec<&str> = native
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .collect();
    let addresses = Addresses {
        http: serving.http(),
        jt808,
        native: words[0].to_owned(),
        platform_signing: words[4].to_owned(),
        platform_agreement: words[7].to_owned(),
    };
    (serving, addresses)
}

/// Three reports along the contract example's route, the last with the lock open, dated by
/// the scenario's own clock: `--retime` brings them to now.
fn journey(dir: &Path, device: &str) -> PathBuf {
    let path = dir.join(format!("{device}.json"));
    let readings = json!([
        {"device": device, "t": "2026-11-25T09:00:00Z", "lat": 29.45, "lon": 120.47, "lock": "locked", "speed_kmh": 80},
        {"device": device, "t": "2026-11-25T09:05:00Z", "lat": 29.5, "lon": 120.6, "lock": "locked", "speed_kmh": 78},
        {"device": device, "t": "2026-11-25T09:10:00Z", "lat": 29.55, "lon": 120.75, "lock": "unlocked", "speed_kmh": 0}
    ]);
    std::fs::write(&path, readings.to_string()).unwrap();
    path
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn emulated_devices_report_journeys_and_carry_out_commands() {
    let dir = temp_dir("serve");
    let data = dir.to_str().unwrap();
    let (code, token, stderr) = sealwatch(&[
        "token",
        "create",
        "--role",
        "administrator",
        "--data-dir",
        data,
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let token = token.trim().to_owned();
    let key_file = dir.join("lock-n1.key");
    let (serving, at) = serve(&dir);

    let example: Value =
        serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
    for z in example["zones"].as_array().unwrap() {
        let (status, body) = api(&at.http, &token, "POST", "/api/v1/zones", Some(z.clone()));
        assert_eq!(status, 204, "{body}");
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let at_ms = |ms: i64| model::Timestamp::from_unix_ms(ms).to_string();
    for (transit, device) in [("ET1", ELOCK), ("ET2", NATIVE)] {
        let (status, body) = api(
            &at.http,
            &token,
            "POST",
            "/api/v1/devices",
            Some(json!({"id": device, "kind": "active", "state": "sealed", "model": "JT701"})),
        );
        assert_eq!(status, 200, "{body}");
        let mut t = example["transits"][0].clone();
        t["id"] = json!(transit);
        t["device"] = json!(device);
        t["sealed_at"] = json!(at_ms(now_ms - 3_600_000));
        t["deadline"] = json!(at_ms(now_ms + 5 * 3_600_000));
        let (status, body) = api(&at.http, &token, "POST", "/api/v1/transits", Some(t));
        assert!(status == 200 || status == 201, "{status} {body}");
    }

    // A command queued before the e-lock connects reaches it when it does.
    let (status, body) = api(
        &at.http,
        &token,
        "POST",
        &format!("/api/v1/devices/{ELOCK}/commands"),
        Some(json!({"kind": "set_interval", "args": {"seconds": 60}, "actor": "officer-7"})),
    );
    assert_eq!(status, 202, "{body}");
    let elock_journey = journey(&dir, ELOCK);
    let (code, stdout, stderr) = sealwatch(&[
        "emulate",
        "--protocol",
        "jt808",
        "--target",
        &at.jt808,
        "--device",
        ELOCK,
        "--readings",
        elock_journey.to_str().unwrap(),
        "--retime",
        "--listen",
        "1",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let out = lines(&stdout);
    assert!(out[0]["connected"].is_object(), "{stdout}");
    let acks: Vec<&Value> = out.iter().filter_map(|l| l.get("acknowledged")).collect();
    assert_eq!(acks.len(), 3, "{stdout}");
    assert!(acks.iter().all(|a| a["accepted"] == 1), "{stdout}");
    assert!(
        out.iter()
            .any(|l| l["executed"]["command"] == "set_interval" && l["executed"]["done"] == true),
        "{stdout}"
    );
    let done = &out.last().unwrap()["done"];
    assert_eq!(
        (&done["reported"], &done["accepted"]),
        (&json!(3), &json!(3))
    );

    // The native device, with keys generated by the CLI; a status query waits for it.
    let (code, _, stderr) = sealwatch(&[
        "device-key",
        "generate",
        NATIVE,
        "--out",
        key_file.to_str().unwrap(),
        "--data-dir",
        data,
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    for command in [
        json!({"kind": "query_status", "actor": "officer-7"}),
        json!({"kind": "seal", "transit": "ET2", "actor": "officer-7"}),
    ] {
        let (status, body) = api(
            &at.http,
            &token,
            "POST",
            &format!("/api/v1/devices/{NATIVE}/commands"),
            Some(command),
        );
        assert_eq!(status, 202, "{body}");
    }
    let native_journey = journey(&dir, NATIVE);
    let native_args = [
        "emulate",
        "--protocol",
        "native",
        "--target",
        &at.native,
        "--device",
        NATIVE,
        "--key-file",
        key_file.to_str().unwrap(),
        "--platform-signing-key",
        &at.platform_signing,
        "--platform-agreement-key",
        &at.platform_agreement,
        "--readings",
        native_journey.to_str().unwrap(),
        "--retime",
        "--batch",
        "3",
        "--listen",
        "1",
    ];
    let (code, stdout, stderr) = sealwatch(&native_args);
    assert_eq!(code, Some(0), "{stderr}");
    let out = lines(&stdout);
    let done = &out.last().unwrap()["done"];
    assert_eq!(
        (&done["reported"], &done["accepted"]),
        (&json!(3), &json!(3))
    );
    assert!(
        out.iter()
            .any(|l| l["executed"]["command"] == "query_status" && l["executed"]["done"] == true),
        "{stdout}"
    );

    // The openings are alarms on their transits; the commands are done.
    for (transit, device) in [("ET1", ELOCK), ("ET2", NATIVE)] {
        let (status, alarms) = api(
            &at.http,
            &token,
            "GET",
            &format!("/api/v1/transits/{transit}/alarms"),
            None,
        );
        assert_eq!(status, 200);
        assert!(
            alarms["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["alarm"]["kind"] == "illegal_opening"),
            "{transit}: {alarms}"
        );
        // The result is recorded once the device's answer has been read: poll briefly.
        let mut states = Vec::new();
        for _ in 0..50 {
            let (_, commands) = api(
                &at.http,
                &token,
                "GET",
                &format!("/api/v1/devices/{device}/commands"),
                None,
            );
            states = commands["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["state"].clone())
                .collect();
            if !states.is_empty() && states.iter().all(|s| s == "done") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            !states.is_empty() && states.iter().all(|s| s == "done"),
            "{device}: {states:?}"
        );
    }

    // The seal the native device carried out is signed evidence that verifies with the
    // device's public key alone (`sealwatch verify-event`), and not with another key.
    let (status, log) = api(
        &at.http,
        &token,
        "GET",
        &format!("/api/v1/devices/{NATIVE}/log?kind=evidence"),
        None,
    );
    assert_eq!(status, 200, "{log}");
    let (_, keys) = api(
        &at.http,
        &token,
        "GET",
        &format!("/api/v1/devices/{NATIVE}/keys"),
        None,
    );
    let public = keys["signing_public"].as_str().unwrap().to_owned();
    let mut kinds = Vec::new();
    for (i, entry) in log["items"].as_array().unwrap().iter().enumerate() {
        let record = dir.join(format!("evidence-{i}.json"));
        std::fs::write(&record, entry["record"].to_string()).unwrap();
        let (code, stdout, stderr) =
            sealwatch(&["verify-event", "--key", &public, record.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{stderr}");
        let verified: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(verified["device"], NATIVE, "{verified}");
        kinds.push(verified["kind"].as_str().unwrap().to_owned());
        let (code, _, stderr) = sealwatch(&[
            "verify-event",
            "--key",
            &at.platform_signing,
            record.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(1), "another key: {stderr}");
    }
    assert!(kinds.iter().any(|k| k == "seal"), "{kinds:?} in {log}");

    // Bad input exits 2 naming it; a device the gateway refuses exits 1.
    let (code, _, stderr) = sealwatch(&[
        "emulate",
        "--protocol",
        "native",
        "--target",
        &at.native,
        "--device",
        NATIVE,
    ]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("key-file"), "{stderr}");
    let (code, _, stderr) = sealwatch(&[
        "emulate",
        "--protocol",
        "jt808",
        "--target",
        &at.jt808,
        "--device",
        "013900000099",
    ]);
    assert_eq!(code, Some(1), "an unregistered e-lock: {stderr}");
    assert!(stderr.contains("registration"), "{stderr}");

    drop(serving);
    let _ = std::fs::remove_dir_all(&dir);
}
