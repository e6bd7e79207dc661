//! The audit chain through the service, over real HTTP: a declaration, a seal and an alarm
//! acknowledgement each leave an entry naming the caller's token, a refused action leaves
//! none, `GET /api/v1/audit` pages the chain, and stopping signs a checkpoint of its head.

use std::net::SocketAddr;

use model::{Role, Timestamp};
use serde_json::{Value, json};

mod common;
use common::request_with;

async fn call(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, _, text) = request_with(
        addr,
        method,
        path,
        &[("Authorization", auth.as_str())],
        body.as_bytes(),
    )
    .await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn at(base: Timestamp, minutes: i64) -> String {
    Timestamp::from_unix_ms(base.unix_ms() + minutes * 60_000).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_actions_and_alarm_steps_are_chained_with_their_caller() {
    let dir = std::env::temp_dir().join(format!("sealwatch-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    config.auth_required = true;
    let key = server::audit_chain::AuditKey::from_secret([5u8; 32]);
    config.audit.key = Some(key.clone());
    // A checkpoint as soon as an entry is added, looked at every clock tick.
    config.audit.checkpoint_every_entries = 1;
    config.tick_interval = std::time::Duration::from_millis(20);
    let now = server::wall_clock();
    let (officer, administrator) = {
        let mut store = server::open_store(&config).unwrap();
        let t = server::auth::generate(Role::Officer, "audit test", now, None).unwrap();
        store.put_token(&t.record, &t.secret_hash).unwrap();
        // Zones, observations and the audit trail are not an officer's (docs/security.md).
        let a = server::auth::generate(Role::Administrator, "audit test", now, None).unwrap();
        store.put_token(&a.record, &a.secret_hash).unwrap();
        (t, a)
    };
    let token = officer.token.as_str();
    let admin = administrator.token.as_str();
    let caller = format!("token {} (officer)", officer.record.id);
    let store_config = config.clone();
    let running = server::start(config).await.unwrap();
    let addr = running.addr;

    let example: Value =
        serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
    let zones = example["zones"].as_array().unwrap();
    for z in zones {
        let (status, body) = call(addr, admin, "POST", "/api/v1/zones", Some(z.clone())).await;
        assert_eq!(status, 204, "{body}");
    }
    let mut transit = example["transits"][0].clone();
    transit["sealed_at"] = json!(at(now, -10));
    transit["deadline"] = json!(at(now, 360));
    transit["vehicle"] = json!({"plate": "ZJ-A12345", "containers": ["CSQU3054383"]});
    let id = transit["id"].as_str().unwrap().to_owned();
    let (status, body) = call(addr, token, "POST", "/api/v1/transits", Some(transit)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        addr,
        token,
        "POST",
        &format!("/api/v1/transits/{id}/actions"),
        Some(json!({"action": "seal", "t": at(now, -9)})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    // Refused (no such transit): nothing is recorded.
    let (status, body) = call(
        addr,
        token,
        "POST",
        "/api/v1/transits/NOPE/actions",
        Some(json!({"action": "seal"})),
    )
    .await;
    assert_eq!(status, 422, "{body}");

    // A lock opened on the way: an alarm, acknowledged by an officer.
    let obs = json!([
        {"device": "D1", "t": at(now, -5), "lat": 29.31, "lon": 120.07, "lock": "locked", "seq": 1},
        {"device": "D1", "t": at(now, -3), "lat": 29.32, "lon": 120.08, "lock": "unlocked", "seq": 2},
    ]);
    let (status, body) = call(addr, admin, "POST", "/api/v1/observations", Some(obs)).await;
    assert_eq!(status, 200, "{body}");
    let (_, alarms) = call(
        addr,
        token,
        "GET",
        "/api/v1/alarms?kind=illegal_opening",
        None,
    )
    .await;
    let alarm = alarms["items"][0]["id"].as_i64().expect("an alarm");
    let (status, body) = call(
        addr,
        token,
        "POST",
        &format!("/api/v1/alarms/{alarm}/acknowledge"),
        Some(json!({"actor": "officer.zhang"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The chain, read in pages of two.
    let mut entries: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = call(
            addr,
            admin,
            "GET",
            &format!("/api/v1/audit?after={after}&limit=2"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        entries.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let mut expected = vec!["zone.put"; zones.len()];
    expected.extend(["transit.declare", "transit.seal", "alarm.acknowledge"]);
    assert_eq!(actions, expected);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"], json!(i + 1), "{e}");
        if i > 0 {
            assert_eq!(e["prev_hash"], entries[i - 1]["hash"], "{e}");
        }
    }
    let seal = &entries[zones.len() + 1];
    assert_eq!(seal["actor"], json!(caller), "{seal}");
    assert_eq!(seal["subject"], json!(format!("transit:{id}")), "{seal}");
    let ack = entries.last().unwrap();
    assert_eq!(
        ack["actor"],
        json!(format!(
            "officer.zhang (token {}, officer)",
            officer.record.id
        )),
        "{ack}"
    );
    assert_eq!(ack["subject"], json!(format!("alarm:{alarm}")), "{ack}");
    let (status, problem) = call(addr, admin, "GET", "/api/v1/audit?limit=0", None).await;
    assert_eq!(status, 422, "{problem}");

    // The writer signs a checkpoint of the head on a tick (read beside the service, as an
    // auditor's tool would; bounded wait).
    let mut beside = server::open_store(&store_config).unwrap();
    let mut ticked = None;
    for _ in 0..500 {
        ticked = beside.audit_checkpoints().unwrap().last().cloned();
        if ticked
            .as_ref()
            .is_some_and(|c| c.seq == entries.len() as i64)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let ticked = ticked.expect("a checkpoint signed on a tick");
    assert_eq!(ticked.seq, entries.len() as i64);
    assert_eq!(ticked.public_key, key.public_hex());
    drop(beside);

    // Stopping keeps the head checkpointed; the checkpoints verify with the audit key.
    running.stop().await.unwrap();
    let mut store = server::open_store(&store_config).unwrap();
    let checkpoints = store.audit_checkpoints().unwrap();
    let last = checkpoints.last().expect("a checkpoint at shutdown");
    assert_eq!(last.seq, entries.len() as i64);
    assert_eq!(json!(last.hash), ack["hash"]);
    let mut v = audit::Verifier::new(&checkpoints, Some(&key.verifying_key())).unwrap();
    for e in store.audit_entries(0, 1000).unwrap() {
        v.push(&e).unwrap();
    }
    assert_eq!(v.finish().unwrap().count, entries.len() as u64);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads of personal data leave an entry naming who read which transits; a reader shown no
/// personal data (a carrier, or a transit without a driver) leaves none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_personal_data_are_recorded() {
    let dir = std::env::temp_dir().join(format!("sealwatch-audit-pd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    config.auth_required = true;
    let now = server::wall_clock();
    let (officer, admin, carrier) = {
        let mut store = server::open_store(&config).unwrap();
        let mut make = |role, organisation: Option<&str>| {
            let mut t = server::auth::generate(role, "personal data test", now, None).unwrap();
            t.record.organisation = organisation.map(str::to_owned);
            store.put_token(&t.record, &t.secret_hash).unwrap();
            t
        };
        (
            make(Role::Officer, None),
            make(Role::Administrator, None),
            make(Role::Carrier, Some("ACME-TRUCKING")),
        )
    };
    let running = server::start(config).await.unwrap();
    let addr = running.addr;
    let example: Value =
        serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
    for z in example["zones"].as_array().unwrap() {
        let (status, _) = call(addr, &admin.token, "POST", "/api/v1/zones", Some(z.clone())).await;
        assert_eq!(status, 204);
    }
    for (id, driver) in [("PD-1", true), ("PD-2", false)] {
        let mut t = example["transits"][0].clone();
        t["id"] = json!(id);
        t["device"] = json!(format!("DEV-{id}"));
        t["sealed_at"] = json!(at(now, -10));
        t["deadline"] = json!(at(now, 360));
        t["declaration"] = json!({"number": "26CN0000000000001", "carrier": "ACME-TRUCKING"});
        if driver {
            t["driver"] = json!({"name": "Wang Wei", "contact": "+86 138 0000 0000"});
        }
        let (status, body) = call(addr, &admin.token, "POST", "/api/v1/transits", Some(t)).await;
        assert!(status == 200 || status == 201, "{status} {body}");
    }
    let personal_reads = || async {
        let (status, page) =
            call(addr, &admin.token, "GET", "/api/v1/audit?limit=1000", None).await;
        assert_eq!(status, 200, "{page}");
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "personal_data.read")
            .cloned()
            .collect::<Vec<Value>>()
    };
    // The admin's reads above (none yet: declaring is not reading).
    let before = personal_reads().await.len();

    // An officer reads the transit with a driver, then the list.
    let (status, t) = call(addr, &officer.token, "GET", "/api/v1/transits/PD-1", None).await;
    assert_eq!(status, 200);
    assert_eq!(t["transit"]["driver"]["name"], "Wang Wei", "{t}");
    let (status, _) = call(addr, &officer.token, "GET", "/api/v1/transits", None).await;
    assert_eq!(status, 200);
    // A transit without a driver, and a carrier (shown no driver): nothing to record.
    let (status, _) = call(addr, &officer.token, "GET", "/api/v1/transits/PD-2", None).await;
    assert_eq!(status, 200);
    let (status, t) = call(addr, &carrier.token, "GET", "/api/v1/transits/PD-1", None).await;
    assert_eq!(status, 200, "{t}");
    assert!(t["transit"]["driver"].is_null(), "{t}");

    let reads = personal_reads().await;
    // The admin's own audit reads come after each, so count the officer's only.
    let officer_actor = format!("token {} (officer)", officer.record.id);
    let officers: Vec<&Value> = reads[before..]
        .iter()
        .filter(|e| e["actor"] == officer_actor.as_str())
        .collect();
    assert_eq!(officers.len(), 2, "{reads:?}");
    assert_eq!(officers[0]["subject"], "transit:PD-1", "{reads:?}");
    assert_eq!(officers[1]["subject"], "transits", "{reads:?}");
    assert!(
        reads.iter().all(|e| !e.to_string().contains("Wang Wei")),
        "the record names transits, never the data"
    );
    assert!(
        reads
            .iter()
            .all(|e| !e["actor"].as_str().unwrap().contains(&carrier.record.id)),
        "the carrier was shown no personal data: {reads:?}"
    );
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
