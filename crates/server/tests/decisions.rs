//! Release or inspect at arrival over real HTTP: the proposal and its explanation, an override
//! needing a reason, one decision per transit, the inspection's result, the statistics, and
//! the audit chain's record of each decision.

use model::Timestamp;
use serde_json::{Value, json};

mod common;
use common::json;

fn at(base: Timestamp, minutes: i64) -> String {
    Timestamp::from_unix_ms(base.unix_ms() + minutes * 60_000).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_explain_and_decisions_are_recorded() {
    let (running, dir, example) = common::start_with_example("decisions", |c| {
        // No random selection: the score alone decides here (the crate tests the selection).
        c.risk.policy.random_per_mille = 0;
    })
    .await;
    let addr = running.addr;
    let now = server::wall_clock();
    for (id, device, hs) in [
        ("T1", "D1", "6109.10"),
        ("T2", "D2", "6109.10"),
        ("T3", "D3", "2402.20"),
    ] {
        let mut t = example.clone();
        t["id"] = json!(id);
        t["device"] = json!(device);
        t["sealed_at"] = json!(at(now, -120));
        t["deadline"] = json!(at(now, 240));
        t["declaration"] = json!({"number": format!("DEC-{id}"), "carrier": "ACME"});
        t["cargo"] = json!([{"type": "goods", "hs_code": hs, "quantity": 1, "unit": "PCE"}]);
        let (status, body) = json(addr, "POST", "/api/v1/transits", Some(t)).await;
        assert_eq!(status, 201, "{body}");
        // A report with the seal intact on the way (a minute ahead: reports of a transit count
        // from its declaration, and a device's clock may run a little ahead).
        let (status, body) = json(
            addr,
            "POST",
            "/api/v1/observations",
            Some(json!([{"device": device, "t": at(now, 1), "lat": 29.5, "lon": 120.6, "lock": "locked", "rope": "intact", "seq": 1}])),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    // T2's seal is opened on the way: an illegal opening, grade 4, left open.
    let (status, body) = json(
        addr,
        "POST",
        "/api/v1/observations",
        Some(json!([{"device": "D2", "t": at(now, 2), "lat": 29.5, "lon": 120.6, "lock": "unlocked", "seq": 2}])),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Not arrived: no decision yet.
    let (status, problem) = json(
        addr,
        "POST",
        "/api/v1/transits/T1/decision",
        Some(json!({"decision": "release"})),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("arrived"),
        "{problem}"
    );
    for id in ["T1", "T2", "T3"] {
        let (status, body) = json(
            addr,
            "POST",
            &format!("/api/v1/transits/{id}/actions"),
            Some(json!({"action": "arrive", "t": at(now, 3)})),
        )
        .await;
        assert_eq!(
            (status, body["state"].as_str()),
            (202, Some("arrived")),
            "{body}"
        );
    }

    // T1: a clean journey. Released, and the explanation lists what was looked at.
    let (status, p) = json(addr, "GET", "/api/v1/transits/T1/proposal", None).await;
    assert_eq!(status, 200, "{p}");
    let proposal = &p["proposal"];
    assert_eq!(proposal["decision"], "release", "{p}");
    let factors: Vec<&str> = proposal["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["factor"].as_str().unwrap())
        .collect();
    assert!(factors.contains(&"seal_integrity"), "{p}");
    assert!(factors.contains(&"carrier_record"), "{p}");
    assert!(factors.contains(&"route_record"), "{p}");
    // Going against the proposal needs a reason, and the answer says which proposal.
    let (status, problem) = json(
        addr,
        "POST",
        "/api/v1/transits/T1/decision",
        Some(json!({"decision": "inspect"})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.starts_with("reason: required"), "{detail}");
    let (status, d) = json(
        addr,
        "POST",
        "/api/v1/transits/T1/decision",
        Some(json!({"decision": "release"})),
    )
    .await;
    assert_eq!(status, 201, "{d}");
    assert_eq!(
        (d["decided"].as_str(), d["overridden"].as_bool()),
        (Some("release"), Some(false))
    );
    let (_, t1) = json(addr, "GET", "/api/v1/transits/T1", None).await;
    assert_eq!(t1["state"], "released", "{t1}");
    // Once.
    let (status, _) = json(
        addr,
        "POST",
        "/api/v1/transits/T1/decision",
        Some(json!({"decision": "release"})),
    )
    .await;
    assert_eq!(status, 409);

    // T2: the open grade-4 alarm leads the explanation; the officer overrides with a reason.
    let (_, p) = json(addr, "GET", "/api/v1/transits/T2/proposal", None).await;
    let proposal = &p["proposal"];
    assert_eq!(proposal["decision"], "inspect", "{p}");
    assert_eq!(proposal["reasons"][0]["factor"], "open_alarm", "{p}");
    assert!(
        proposal["reasons"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("illegal_opening (grade 4)"),
        "{p}"
    );
    assert!(proposal["score"].as_u64().unwrap() >= 50, "{p}");
    let (status, d) = json(
        addr,
        "POST",
        "/api/v1/transits/T2/decision",
        Some(json!({"decision": "release", "reason": "opened by the office for a documentary check, video on file"})),
    )
    .await;
    assert_eq!(status, 201, "{d}");
    assert_eq!(d["overridden"], true);
    assert_eq!(
        d["proposal"]["decision"], "inspect",
        "the proposal as shown is kept"
    );

    // T3: tobacco counts, but not enough alone; the officer inspects anyway, with a reason,
    // and the inspection finds something.
    let (_, p) = json(addr, "GET", "/api/v1/transits/T3/proposal", None).await;
    assert!(
        p["proposal"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["factor"] == "sensitive_goods" && r["points"] == 15),
        "{p}"
    );
    let (status, d) = json(
        addr,
        "POST",
        "/api/v1/transits/T3/decision",
        Some(json!({"decision": "inspect", "reason": "intelligence on this consignee"})),
    )
    .await;
    assert_eq!(status, 201, "{d}");
    let (status, r) = json(
        addr,
        "POST",
        "/api/v1/transits/T3/inspection",
        Some(json!({"found": true, "note": "400 cartons undeclared"})),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["inspection"]["found"], true);
    let (status, _) = json(
        addr,
        "POST",
        "/api/v1/transits/T1/inspection",
        Some(json!({"found": false})),
    )
    .await;
    assert_eq!(status, 409, "T1 was released, not inspected");
    let (status, _) = json(
        addr,
        "POST",
        "/api/v1/transits/T3/inspection",
        Some(json!({"found": false, "extra": 1})),
    )
    .await;
    assert_eq!(status, 422, "unknown fields are refused");

    let (status, stats) = json(addr, "GET", "/api/v1/statistics/decisions", None).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(
        (
            stats["decisions"].as_u64(),
            stats["released"].as_u64(),
            stats["overrides"].as_u64(),
            stats["inspections_finding"].as_u64(),
        ),
        (Some(3), Some(2), Some(2), Some(1)),
        "{stats}"
    );
    let share = stats["released_without_inspection_share"].as_f64().unwrap();
    assert!((share - 2.0 / 3.0).abs() < 1e-9, "{stats}");
    assert_eq!(stats["inspection_hit_rate"], 1.0);
    let (status, d) = json(addr, "GET", "/api/v1/transits/T2/decision", None).await;
    assert_eq!((status, d["reason"].as_str().is_some()), (200, true), "{d}");

    running.stop().await.unwrap();
    // Each decision and the inspection's result are in the audit chain, with the override and
    // its reason.
    use store::Store;
    let mut store = store::SqliteStore::open(&dir.join("sealwatch.db")).unwrap();
    let decided: Vec<(String, Value)> = store
        .audit_entries(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("decision."))
        .map(|e| (e.action, serde_json::from_str(&e.detail).unwrap()))
        .collect();
    let actions: Vec<&str> = decided.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "decision.release",
            "decision.release",
            "decision.inspect",
            "decision.inspection_result"
        ]
    );
    assert_eq!(decided[1].1["overridden"], true);
    assert_eq!(decided[1].1["proposed"], "inspect");
    let _ = std::fs::remove_dir_all(&dir);
}
