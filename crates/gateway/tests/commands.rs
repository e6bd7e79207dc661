//! Remote commands over real sockets: the API refuses an unseal it has not authorised; once
//! authorised, an unseal queued while the device is offline goes out when it authenticates,
//! and the device's general response (0x0001) makes it done; a command queued while the
//! device is online goes out at once; a kind the model's command set lacks is refused.

mod common;

use std::time::{Duration, Instant};

use common::{Device, Got};
use gateway::{CommandSet, Wire};
use jt808::{Body, GeneralResponse, Message};
use serde_json::{Value, json};

const PHONE: &str = "013912345678";

/// Polls `GET path` until the first command in it is `state`; that command.
async fn command_becomes(h: &common::Harness, path: &str, id: i64, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = common::api(h.api(), "GET", path, None).await;
        assert_eq!(status, 200, "{body}");
        let c = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("command {id} not in {body}"));
        if c["state"] == state {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "command never became {state}: {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The device's general response (0x0001) to a frame the platform sent.
async fn answer(d: &mut Device, to: &Message, result: u8) {
    let (frame, _) = d.frame(
        0x0001,
        Body::GeneralResponse(GeneralResponse {
            reply_serial: to.header.serial,
            reply_id: to.header.message_id,
            result,
        }),
    );
    d.send(&frame).await;
}

fn body_bytes(m: &Message) -> Vec<u8> {
    match &m.body {
        Body::Other { bytes } => bytes.clone(),
        other => panic!("expected a command frame, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unseal_needs_its_authorisation_and_reaches_the_device_when_it_connects() {
    let h = common::start("commands-unseal", |_| {}).await;
    common::register_device(h.api(), PHONE, Some("JT701")).await;
    common::declare_sealed_transit(h.api(), "CMD1", PHONE).await;
    let path = format!("/api/v1/devices/{PHONE}/commands");
    let unseal = json!({"kind": "unseal", "actor": "officer-1", "transit": "CMD1"});

    // Not sealed yet: nothing to unseal.
    let (status, problem) = common::api(h.api(), "POST", &path, Some(unseal.clone())).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not under supervision"),
        "{problem}"
    );
    let (status, body) = common::api(
        h.api(),
        "POST",
        "/api/v1/transits/CMD1/actions",
        Some(json!({"action": "seal"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["state"], "sealed", "{body}");

    // Sealed but not authorised: refused, nothing queued.
    let (status, problem) = common::api(h.api(), "POST", &path, Some(unseal.clone())).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("authorize_unseal"),
        "{problem}"
    );
    // An unseal names its transit.
    let (status, problem) = common::api(
        h.api(),
        "POST",
        &path,
        Some(json!({"kind": "unseal", "actor": "officer-1"})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["field"], "transit", "{problem}");
    let (_, listed) = common::api(h.api(), "GET", &path, None).await;
    assert_eq!(listed["items"], json!([]), "{listed}");

    // Authorised, and queued while the device is offline.
    let (status, body) = common::api(
        h.api(),
        "POST",
        "/api/v1/transits/CMD1/actions",
        Some(json!({"action": "authorize_unseal", "reason": "release granted"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, queued) = common::api(h.api(), "POST", &path, Some(unseal)).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["state"], "queued");
    assert_eq!(queued["kind"], "unseal");
    assert_eq!(queued["transit"], "CMD1");
    let id = queued["id"].as_i64().unwrap();

    // The device connects: after its authentication is answered, the unseal comes (the
    // default command set: a 0x8300 text `UNSEAL`).
    let mut d = Device::connect(h.jt808(), PHONE).await;
    d.log_in().await;
    let m = d.expect().await;
    assert_eq!(m.header.message_id, 0x8300, "{m:?}");
    assert_eq!(body_bytes(&m), b"\x00UNSEAL".to_vec());
    command_becomes(&h, &path, id, "sent").await;

    // The device says it did it; then its text result comes.
    answer(&mut d, &m, 0).await;
    let done = command_becomes(&h, "/api/v1/transits/CMD1/commands", id, "done").await;
    assert!(
        done["result"].as_str().unwrap().contains("success"),
        "{done}"
    );
    d.send(b"(740190311185,1,001,ELOCK,3,529439)").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let c = command_becomes(&h, &path, id, "done").await;
        if c["result"].as_str().unwrap().contains("ELOCK") {
            break;
        }
        assert!(Instant::now() < deadline, "text result not recorded: {c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing more is sent.
    d.alive().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_queued_while_online_goes_out_at_once() {
    let h = common::start("commands-online", |c| {
        c.command_sets = vec![(
            "JT701".into(),
            CommandSet {
                query_status: Wire::Unsupported,
                ..CommandSet::default()
            },
        )];
    })
    .await;
    common::register_device(h.api(), PHONE, Some("JT701")).await;
    let path = format!("/api/v1/devices/{PHONE}/commands");
    let mut d = Device::connect(h.jt808(), PHONE).await;
    d.log_in().await;
    d.alive().await;

    // Bad arguments are refused by the API.
    let (status, problem) = common::api(
        h.api(),
        "POST",
        &path,
        Some(json!({"kind": "set_interval", "actor": "officer-1", "args": {"seconds": 0}})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");

    let asked = Instant::now();
    let (status, queued) = common::api(
        h.api(),
        "POST",
        &path,
        Some(json!({"kind": "set_interval", "actor": "officer-1", "args": {"seconds": 30}})),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_i64().unwrap();
    let m = match d.recv(Duration::from_secs(1)).await {
        Got::Message(m) => m,
        other => panic!("the command did not come within a second: {other:?}"),
    };
    assert!(asked.elapsed() < Duration::from_secs(1));
    // 0x8103, one parameter: 0x0029 (default reporting interval), 4 bytes, 30.
    assert_eq!(m.header.message_id, 0x8103, "{m:?}");
    assert_eq!(body_bytes(&m), vec![1, 0, 0, 0, 0x29, 4, 0, 0, 0, 30]);
    command_becomes(&h, &path, id, "sent").await;
    answer(&mut d, &m, 1).await;
    let failed = command_becomes(&h, &path, id, "failed").await;
    assert!(
        failed["result"].as_str().unwrap().contains("failure"),
        "{failed}"
    );

    // A kind the model's command set lacks is refused, not sent.
    let (status, queued) = common::api(
        h.api(),
        "POST",
        &path,
        Some(json!({"kind": "query_status", "actor": "officer-1"})),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["id"].as_i64().unwrap();
    command_becomes(&h, &path, id, "refused").await;
    d.alive().await;
    assert!(h.gateway.stats().commands_refused == 1);
    assert!(h.gateway.stats().commands_sent == 1);
    h.stop().await;
}
