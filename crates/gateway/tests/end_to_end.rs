//! The gateway end to end, over real TCP sockets, with the service on a temporary SQLite
//! directory: a device registered in the registry and sealing a declared transit registers,
//! authenticates and reports; its answers come only once its reports are committed; an
//! opened lock raises the alarm; what the pipeline refuses is answered with a failure; text
//! command results are kept.

mod common;

use std::time::Duration;

use common::{Device, Got, device_time};
use jt808::{Body, Frame, LocationBatch, Options};
use model::AlarmKind;
use store::{AlarmFilter, PageRequest, TimeRange};

const PHONE: &str = "013912345678";

async fn observations(h: &common::Harness, device: &str) -> Vec<model::Observation> {
    let device = device.to_owned();
    h.running
        .ingest
        .query(move |s| s.observations(&device, TimeRange::default(), 100))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlocked_report_is_acknowledged_once_stored_and_raises_the_alarm() {
    let h = common::start("e2e", |_| {}).await;
    common::register_device(h.api(), PHONE, Some("JT701")).await;
    common::declare_sealed_transit(h.api(), "GW1", PHONE).await;

    let mut d = Device::connect(h.jt808(), PHONE).await;
    let (result, code) = d.register().await;
    assert_eq!(result, 0, "registered");
    assert_eq!(code.len(), 16, "{code:?}");
    assert!(code.iter().all(u8::is_ascii_hexdigit), "{code:?}");
    // The store keeps the code's hash, never the code.
    let stored = h
        .running
        .ingest
        .query(|s| s.device_auth(PHONE))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.len(), 64);
    assert!(!stored.contains(std::str::from_utf8(&code).unwrap()));
    assert_eq!(d.authenticate(&code).await, 0, "authenticated");

    // Locked, then unlocked: each answered with success, and each stored by the time the
    // answer arrives.
    let (t1, time1) = device_time(120);
    let (frame, serial) = d.location(time1, false);
    d.send(&frame).await;
    assert_eq!(d.general_response(serial).await, 0);
    let stored = observations(&h, PHONE).await;
    assert_eq!(stored.len(), 1, "stored before the answer: {stored:?}");
    assert_eq!(stored[0].t, t1);
    assert_eq!(stored[0].lock, Some(model::LockState::Locked));

    let (t2, time2) = device_time(60);
    let (unlocked, serial) = d.location(time2, true);
    d.send(&unlocked).await;
    assert_eq!(d.general_response(serial).await, 0);
    let stored = observations(&h, PHONE).await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[1].t, t2);
    assert_eq!(stored[1].lock, Some(model::LockState::Unlocked));
    assert_eq!(stored[1].lat, Some(29.32));
    assert_eq!(stored[1].battery_pct, Some(80.0));

    // The opening, where no unseal is authorised, is an alarm on the transit.
    let alarms = h
        .running
        .ingest
        .query(|s| {
            s.alarms(
                &AlarmFilter {
                    transit: Some("GW1".into()),
                    kind: Some(AlarmKind::IllegalOpening),
                    ..AlarmFilter::default()
                },
                PageRequest::default(),
            )
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(alarms[0].alarm.device.as_str(), PHONE);
    assert_eq!(alarms[0].alarm.t, t2);

    // The device sends the same report again (it missed the answer): a duplicate, answered
    // with success, stored once.
    d.send(&unlocked).await;
    let m = d.expect().await;
    let Body::GeneralResponse(g) = m.body else {
        panic!("{m:?}")
    };
    assert_eq!((g.reply_serial, g.result), (serial, 0));
    assert_eq!(observations(&h, PHONE).await.len(), 2);

    // A report dated an hour ahead: refused by the pipeline, answered with a failure.
    let (_, future) = device_time(-3600);
    let (frame, serial) = d.location(future, false);
    d.send(&frame).await;
    assert_eq!(d.general_response(serial).await, 1, "failure");
    assert_eq!(observations(&h, PHONE).await.len(), 2);

    // Heartbeat.
    d.alive().await;

    // A plain-text command result: kept in the device log as it came, not answered.
    d.send(b"(013912345678,1,001,ELOCK,3,529439)").await;
    d.alive().await;
    let log = h
        .running
        .ingest
        .query(|s| s.device_log(PHONE, PageRequest::default()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].text, "(013912345678,1,001,ELOCK,3,529439)");
    assert_eq!(
        (log[0].source.as_str(), log[0].kind.as_str()),
        ("jt808", "text_result")
    );

    let stats = h.gateway.stats();
    assert_eq!(stats.registrations, 1);
    assert_eq!(stats.authentications, 1);
    assert_eq!(stats.observations_accepted, 2);
    assert_eq!(stats.observations_duplicate, 1);
    assert_eq!(stats.observations_rejected, 1);
    assert_eq!(stats.text_results, 1);
    assert_eq!(stats.connections_open, 1);
    assert_eq!(stats.auth_failures, 0);

    // Stopping the gateway closes the connection.
    h.gateway.stop().await;
    assert!(matches!(d.recv(Duration::from_secs(5)).await, Got::Closed));
    h.running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&h.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_and_authentication_are_checked() {
    let h = common::start("auth", |c| c.max_auth_failures = 3).await;
    common::register_device(h.api(), PHONE, None).await;
    common::declare_sealed_transit(h.api(), "GW1", PHONE).await;

    // A terminal that is not in the registry: "no such terminal", no code.
    let mut stranger = Device::connect(h.jt808(), "013900000000").await;
    let (result, code) = stranger.register().await;
    assert_eq!((result, code.len()), (4, 0));
    // Nor can it authenticate with anything.
    assert_eq!(stranger.authenticate(b"0000000000000000").await, 1);

    // Reports and heartbeats before authenticating are refused; the third refusal closes
    // the connection (after its answer).
    let mut d = Device::connect(h.jt808(), PHONE).await;
    let (result, first_code) = d.register().await;
    assert_eq!(result, 0);
    let (_, time) = device_time(30);
    let (frame, serial) = d.location(time, false);
    d.send(&frame).await;
    assert_eq!(d.general_response(serial).await, 1, "report refused");
    let (frame, serial) = d.heartbeat();
    d.send(&frame).await;
    assert_eq!(d.general_response(serial).await, 1, "heartbeat refused");
    assert_eq!(d.authenticate(b"WRONGCODE").await, 1, "wrong code");
    assert!(matches!(d.recv(Duration::from_secs(5)).await, Got::Closed));
    let stats = h.gateway.stats();
    assert_eq!(stats.closed_auth_failures, 1);
    assert_eq!(stats.auth_failures, 4, "{stats:?}");
    assert_eq!(stats.registrations_refused, 1);
    assert!(observations(&h, PHONE).await.is_empty(), "nothing stored");

    // A new registration replaces the code: the old one no longer works.
    let mut d = Device::connect(h.jt808(), PHONE).await;
    let (result, code) = d.register().await;
    assert_eq!(result, 0);
    assert_ne!(code, first_code);
    assert_eq!(d.authenticate(&first_code).await, 1, "the old code");
    assert_eq!(d.authenticate(&code).await, 0, "the new code");

    // Authenticated as one device, a report from another phone number is refused.
    let mut other = Device::connect(h.jt808(), "013900000001").await;
    let (frame, _) = other.location(time, false);
    let mut message = Frame::from_wire(&frame)
        .unwrap()
        .decode(&Options::default())
        .unwrap();
    message.header.serial = 77;
    d.send(&message.encode().unwrap()).await;
    assert_eq!(d.general_response(77).await, 1);
    // Its own report is taken.
    let (frame, serial) = d.location(time, false);
    d.send(&frame).await;
    assert_eq!(d.general_response(serial).await, 0);
    assert_eq!(observations(&h, PHONE).await.len(), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_and_jointech_lock_messages() {
    const JOINTECH: &str = "740190311185";
    let h = common::start("batch", |_| {}).await;
    common::register_device(h.api(), PHONE, None).await;
    common::declare_sealed_transit(h.api(), "GW1", PHONE).await;
    common::register_device(h.api(), JOINTECH, Some("JT701")).await;
    common::declare_sealed_transit(h.api(), "GW2", JOINTECH).await;

    // 0x0704: two reports, one answer once both are stored.
    let mut d = Device::connect(h.jt808(), PHONE).await;
    d.log_in().await;
    let (_, a) = device_time(90);
    let (_, b) = device_time(80);
    let (frame, serial) = d.frame(
        0x0704,
        Body::LocationBatch(LocationBatch {
            kind: 1,
            locations: vec![common::location(a, false), common::location(b, false)],
        }),
    );
    d.send(&frame).await;
    assert_eq!(d.general_response(serial).await, 0);
    assert_eq!(observations(&h, PHONE).await.len(), 2);

    // A Jointech 0x5501 (field frame `jointech-5501-charging`, dated now) asking for a 0x4401.
    let field = "7e550104337401903111850622072002454206133574075359513a0000080100000001aa00005ded05e203000000000c06005affb5ffb40a0302dc65100100137e";
    let wire: Vec<u8> = (0..field.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&field[i..i + 2], 16).unwrap())
        .collect();
    let mut message = Frame::from_wire(&wire)
        .unwrap()
        .decode(&Options::default())
        .unwrap();
    let Body::JointechLocation(j) = &mut message.body else {
        panic!("{message:?}")
    };
    // Jointech lock messages carry UTC.
    let (t, utc) = common::clock_time(45, 0);
    j.time = utc;
    message.header.properties = jt808::Properties(message.header.properties.0 | 0x8000);
    assert!(message.header.wants_jointech_ack());
    let mut lock = Device::connect(h.jt808(), JOINTECH).await;
    lock.log_in().await;
    lock.send(&message.encode().unwrap()).await;
    let m = lock.expect().await;
    assert_eq!(m.header.message_id, 0x4401, "{m:?}");
    assert!(
        matches!(
            m.body,
            Body::JointechAck {
                reply_id: 0x5501,
                result: 0
            }
        ),
        "{m:?}"
    );
    let stored = observations(&h, JOINTECH).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].t, t);
    assert_eq!(stored[0].charging, Some(true));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_check_codes_are_counted_and_dropped_unless_the_model_is_known_for_them() {
    const SLOPPY: &str = "013911112222";
    let h = common::start("check", |c| {
        c.accept_bad_check_code_models = vec!["sloppy-1".into()];
    })
    .await;
    common::register_device(h.api(), PHONE, Some("JT701")).await;
    common::declare_sealed_transit(h.api(), "GW1", PHONE).await;
    common::register_device(h.api(), SLOPPY, Some("SLOPPY-1")).await;
    common::declare_sealed_transit(h.api(), "GW3", SLOPPY).await;

    /// The frame with its check code flipped.
    fn spoil(frame: &[u8]) -> Vec<u8> {
        let mut content = Frame::from_wire(frame).unwrap().as_bytes().to_vec();
        *content.last_mut().unwrap() ^= 0x5a;
        jt808::escape(&content)
    }

    let mut d = Device::connect(h.jt808(), PHONE).await;
    d.log_in().await;
    let (_, time) = device_time(30);
    let (frame, _) = d.location(time, false);
    d.send(&spoil(&frame)).await;
    assert!(
        matches!(d.recv(Duration::from_millis(500)).await, Got::Timeout),
        "a frame with a bad check code is not answered"
    );
    assert_eq!(h.gateway.stats().bad_check_codes, 1);
    assert!(observations(&h, PHONE).await.is_empty());
    // The connection stays, and the report sent again is taken.
    let (frame, serial) = d.location(time, false);
    d.send(&frame).await;
    assert_eq!(d.general_response(serial).await, 0);

    // The malformed field frame (bad length and check code): counted, connection kept.
    let malformed = "7E02000032013511221122000700000000000C000301578CC006CA3A5C00470000000014072317201501040000000030011631010BD07E";
    let wire: Vec<u8> = (0..malformed.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&malformed[i..i + 2], 16).unwrap())
        .collect();
    d.send(&wire).await;
    d.alive().await;
    assert_eq!(h.gateway.stats().bad_check_codes, 2);

    // A model known to get it wrong: decoded all the same.
    let mut s = Device::connect(h.jt808(), SLOPPY).await;
    s.log_in().await;
    let (frame, serial) = s.location(time, true);
    s.send(&spoil(&frame)).await;
    assert_eq!(s.general_response(serial).await, 0);
    assert_eq!(observations(&h, SLOPPY).await.len(), 1);
    assert_eq!(h.gateway.stats().bad_check_codes, 2);
    h.stop().await;
}
