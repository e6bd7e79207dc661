//! One conformance suite, run against every backend: SQLite always, PostgreSQL when
//! `TEST_DATABASE_URL` names a database (CI sets it; each test works in its own schema).

use model::{
    Alarm, AlarmKind, AlarmState, AlarmStep, Event, EventKind, Observation, Outcome, Timestamp,
    Transit, TransitState, Zone,
};
use store::{
    AlarmFilter, Commit, LoggedInput, PageRequest, PgStore, SqliteStore, Store, TimeRange,
};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn zone(id: &str) -> Zone {
    serde_json::from_value(serde_json::json!({
        "id": id, "kind": "office", "area": {"type": "Point", "coordinates": [120.07, 29.31]}, "radius_m": 500
    }))
    .unwrap()
}

fn transit(id: &str, device: &str) -> Transit {
    serde_json::from_value(serde_json::json!({
        "id": id, "device": device, "departure": "CN-YIWU", "destination": "CN-NINGBO",
        "route": {"type": "LineString", "coordinates": [[120.07, 29.31], [121.85, 29.93]]},
        "sealed_at": "2026-11-25T08:00:00Z", "deadline": "2026-11-25T14:00:00Z",
        "vehicle": {"plate": "ZJ-A12345", "containers": ["CSQU3054383"]},
        "driver": {"nationality": "CN", "name": "Li Wei", "contact": "+86 571 0000 0000"},
        "cargo": [{"type": "textiles", "quantity": 1200, "unit": "PCE", "origin": "CN"}]
    }))
    .unwrap()
}

fn obs(device: &str, at: &str, seq: u64) -> Observation {
    serde_json::from_value(serde_json::json!({
        "device": device, "t": at, "lat": 29.31, "lon": 120.07, "lock": "locked", "seq": seq
    }))
    .unwrap()
}

fn alarm(transit: &str, kind: AlarmKind, at: &str, grade: u8) -> Alarm {
    Alarm {
        transit: transit.parse().unwrap(),
        device: "D1".parse().unwrap(),
        kind,
        sensor: None,
        t: t(at),
        lat: Some(29.5),
        lon: Some(120.5),
        grade,
        detail: "test".into(),
        evidence: vec![],
    }
}

fn event(transit: &str, kind: EventKind, at: &str) -> Event {
    Event {
        transit: transit.parse().unwrap(),
        device: "D1".parse().unwrap(),
        event: kind,
        t: t(at),
        alarm_kind: None,
        sensor: None,
        lat: None,
        lon: None,
        detail: String::new(),
    }
}

fn declare(s: &mut dyn Store, seq: i64, tr: &Transit, at: Timestamp) -> store::Result<Vec<i64>> {
    let inputs = [(
        seq,
        LoggedInput::Declare {
            at,
            transit: Box::new(tr.clone()),
        },
    )];
    s.commit(&Commit {
        inputs: &inputs,
        ..Commit::default()
    })
}

fn set_state(
    s: &mut dyn Store,
    id: &str,
    state: TransitState,
    at: Timestamp,
) -> store::Result<Vec<i64>> {
    let states = [(id.parse().unwrap(), state, at)];
    s.commit(&Commit {
        states: &states,
        ..Commit::default()
    })
}

fn append(s: &mut dyn Store, first_seq: i64, batch: &[Observation]) {
    let inputs: Vec<(i64, LoggedInput)> = batch
        .iter()
        .enumerate()
        .map(|(i, o)| {
            (
                first_seq + i as i64,
                LoggedInput::Observation {
                    observation: o.clone(),
                },
            )
        })
        .collect();
    s.commit(&Commit {
        inputs: &inputs,
        ..Commit::default()
    })
    .unwrap();
}

fn zones_round_trip(s: &mut dyn Store) {
    s.put_zone(&zone("CN-YIWU")).unwrap();
    s.put_zone(&zone("CN-NINGBO")).unwrap();
    let mut replaced = zone("CN-YIWU");
    replaced.name = Some("Yiwu customs".into());
    s.put_zone(&replaced).unwrap();
    let zones = s.zones().unwrap();
    assert_eq!(zones.len(), 2);
    assert_eq!(zones[1], replaced);
}

fn transits_lifecycle(s: &mut dyn Store) {
    let tr = transit("T1", "D1");
    declare(s, 1, &tr, t("2026-11-25T07:00:00Z")).unwrap();
    let e = declare(s, 2, &tr, t("2026-11-25T07:01:00Z")).unwrap_err();
    assert!(e.is_conflict(), "{e}");
    let got = s.transit("T1").unwrap();
    assert_eq!(got.transit, tr, "every field of the declaration comes back");
    assert_eq!(got.state, TransitState::Declared);
    set_state(s, "T1", TransitState::Sealed, t("2026-11-25T08:00:00Z")).unwrap();
    assert_eq!(s.transit("T1").unwrap().state, TransitState::Sealed);
    assert_eq!(
        s.transit("T1").unwrap().updated_at,
        t("2026-11-25T08:00:00Z")
    );
    assert!(s.transit("T9").unwrap_err().is_not_found());
    assert!(
        set_state(s, "T9", TransitState::Sealed, t("2026-11-25T08:00:00Z"))
            .unwrap_err()
            .is_not_found()
    );

    for i in 2..=5 {
        declare(
            s,
            i,
            &transit(&format!("T{i}"), &format!("D{i}")),
            t("2026-11-25T07:30:00Z"),
        )
        .unwrap();
    }
    let all = s.transits(None, PageRequest::default()).unwrap();
    assert_eq!(
        all.iter()
            .map(|(_, x)| x.transit.id.to_string())
            .collect::<Vec<_>>(),
        ["T1", "T2", "T3", "T4", "T5"]
    );
    let first = s
        .transits(
            None,
            PageRequest {
                after: None,
                limit: 2,
            },
        )
        .unwrap();
    let next = s
        .transits(
            None,
            PageRequest {
                after: Some(first[1].0),
                limit: 2,
            },
        )
        .unwrap();
    assert_eq!(
        next.iter()
            .map(|(_, x)| x.transit.id.to_string())
            .collect::<Vec<_>>(),
        ["T3", "T4"]
    );
    let sealed = s
        .transits(Some(TransitState::Sealed), PageRequest::default())
        .unwrap();
    assert_eq!(sealed.len(), 1);
    // Paging is stable while transits change state between pages.
    for i in 2..=4 {
        set_state(
            s,
            &format!("T{i}"),
            TransitState::Sealed,
            t("2026-11-25T08:00:00Z"),
        )
        .unwrap();
    }
    let page1 = s
        .transits(
            Some(TransitState::Sealed),
            PageRequest {
                after: None,
                limit: 2,
            },
        )
        .unwrap();
    set_state(s, "T1", TransitState::Closed, t("2026-11-25T09:00:00Z")).unwrap();
    let page2 = s
        .transits(
            Some(TransitState::Sealed),
            PageRequest {
                after: Some(page1[1].0),
                limit: 2,
            },
        )
        .unwrap();
    let ids: Vec<String> = page2
        .iter()
        .map(|(_, x)| x.transit.id.to_string())
        .collect();
    assert_eq!(ids, ["T3", "T4"]);
}

fn observations_append_and_read(s: &mut dyn Store) {
    assert_eq!(s.last_observation_time().unwrap(), None);
    let batch: Vec<Observation> = (0..100)
        .map(|i| {
            obs(
                if i % 2 == 0 { "D1" } else { "D2" },
                &format!("2026-11-25T08:{:02}:00Z", i / 2),
                i,
            )
        })
        .collect();
    append(s, 1, &batch);
    let d1 = s.observations("D1", TimeRange::default(), 1000).unwrap();
    assert_eq!(d1.len(), 50);
    assert_eq!(d1[0], batch[0], "an observation comes back exactly");
    assert!(d1.windows(2).all(|w| w[0].t <= w[1].t));
    let range = TimeRange {
        from: Some(t("2026-11-25T08:10:00Z")),
        to: Some(t("2026-11-25T08:20:00Z")),
    };
    assert_eq!(s.observations("D2", range, 1000).unwrap().len(), 10);
    assert_eq!(s.observations("D2", range, 3).unwrap().len(), 3);
    assert_eq!(
        s.last_observation_time().unwrap(),
        Some(t("2026-11-25T08:49:00Z"))
    );
    // Retention in bounded batches, only for devices whose transits are all closed: D1's
    // transit is closed, D2's still supervised (its reports are needed to rebuild its state).
    declare(s, 1000, &transit("T1", "D1"), t("2026-11-25T07:00:00Z")).unwrap();
    declare(s, 1001, &transit("T2", "D2"), t("2026-11-25T07:00:00Z")).unwrap();
    let closed = [(
        "T1".parse().unwrap(),
        TransitState::Closed,
        t("2026-11-25T09:00:00Z"),
    )];
    s.commit(&Commit {
        states: &closed,
        ..Commit::default()
    })
    .unwrap();
    let before = t("2026-11-25T08:30:00Z");
    assert_eq!(s.purge_observations(before, 25).unwrap(), 25);
    assert_eq!(s.purge_observations(before, 1000).unwrap(), 5);
    assert_eq!(s.purge_observations(before, 1000).unwrap(), 0);
    let left =
        |s: &mut dyn Store, d: &str| s.observations(d, TimeRange::default(), 1000).unwrap().len();
    assert_eq!(left(s, "D1"), 20);
    assert_eq!(left(s, "D2"), 50, "a supervised device's reports are kept");
}

fn alarms_and_their_handling(s: &mut dyn Store) {
    let events = [
        event("T1", EventKind::Sealed, "2026-11-25T08:00:00Z"),
        event("T1", EventKind::Departed, "2026-11-25T08:10:00Z"),
    ];
    let alarms = [
        alarm("T1", AlarmKind::RouteDeviation, "2026-11-25T09:00:00Z", 3),
        alarm("T1", AlarmKind::LowBattery, "2026-11-25T09:30:00Z", 1),
        alarm("T2", AlarmKind::Tamper, "2026-11-25T10:00:00Z", 4),
    ];
    let ids = s
        .commit(&Commit {
            events: &events,
            alarms: &alarms,
            ..Commit::default()
        })
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(s.events("T1", TimeRange::default()).unwrap().len(), 2);
    assert_eq!(s.events("T2", TimeRange::default()).unwrap().len(), 0);

    let a = s.alarm(ids[0]).unwrap();
    assert_eq!(a.state, AlarmState::Open);
    assert_eq!(a.alarm.kind, AlarmKind::RouteDeviation);

    let open = AlarmFilter {
        state: Some("open".into()),
        ..AlarmFilter::default()
    };
    assert_eq!(s.alarms(&open, PageRequest::default()).unwrap().len(), 3);
    let serious = AlarmFilter {
        min_grade: Some(3),
        ..AlarmFilter::default()
    };
    assert_eq!(s.alarms(&serious, PageRequest::default()).unwrap().len(), 2);
    let t1 = AlarmFilter {
        transit: Some("T1".into()),
        kind: Some(AlarmKind::LowBattery),
        ..AlarmFilter::default()
    };
    assert_eq!(s.alarms(&t1, PageRequest::default()).unwrap()[0].id, ids[1]);
    let late = AlarmFilter {
        range: TimeRange {
            from: Some(t("2026-11-25T09:15:00Z")),
            to: None,
        },
        ..AlarmFilter::default()
    };
    assert_eq!(s.alarms(&late, PageRequest::default()).unwrap().len(), 2);
    let page = s
        .alarms(
            &AlarmFilter::default(),
            PageRequest {
                after: Some(ids[0]),
                limit: 1,
            },
        )
        .unwrap();
    assert_eq!(page.iter().map(|a| a.id).collect::<Vec<_>>(), [ids[1]]);

    // The handling lifecycle, each step recorded with who and when.
    let at = |m: u32| t(&format!("2026-11-25T11:{m:02}:00Z"));
    s.handle_alarm(ids[0], AlarmStep::Acknowledge, "officer.zhang", at(0), None)
        .unwrap();
    s.handle_alarm(
        ids[0],
        AlarmStep::Dispatch,
        "officer.zhang",
        at(1),
        Some("patrol 7"),
    )
    .unwrap();
    let e = s
        .handle_alarm(ids[0], AlarmStep::Acknowledge, "officer.zhang", at(2), None)
        .unwrap_err();
    assert!(e.is_conflict(), "{e}");
    s.handle_alarm(
        ids[0],
        AlarmStep::Resolve(Outcome::FalseAlarm),
        "patrol.7",
        at(3),
        Some("road works diversion"),
    )
    .unwrap();
    let done = s
        .handle_alarm(ids[0], AlarmStep::Close, "supervisor.wang", at(4), None)
        .unwrap();
    assert_eq!(done.state, AlarmState::Closed(Outcome::FalseAlarm));
    let steps: Vec<(&str, &str)> = done
        .history
        .iter()
        .map(|h| (h.step.as_str(), h.actor.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("acknowledge", "officer.zhang"),
            ("dispatch", "officer.zhang"),
            ("resolve", "patrol.7"),
            ("close", "supervisor.wang")
        ]
    );
    assert_eq!(done.history[1].note.as_deref(), Some("patrol 7"));
    assert_eq!(done.history[2].outcome, Some(Outcome::FalseAlarm));
    assert_eq!(done.history[3].at, at(4));
    let closed = AlarmFilter {
        state: Some("closed".into()),
        ..AlarmFilter::default()
    };
    assert_eq!(s.alarms(&closed, PageRequest::default()).unwrap().len(), 1);
    assert!(s.alarm(999_999).unwrap_err().is_not_found());
    assert!(
        s.handle_alarm(999_999, AlarmStep::Acknowledge, "x", at(5), None)
            .unwrap_err()
            .is_not_found()
    );
}

fn input_log_replays_in_order(s: &mut dyn Store) {
    assert_eq!(s.last_seq().unwrap(), 0);
    declare(s, 1, &transit("T1", "D1"), t("2026-11-25T07:00:00Z")).unwrap();
    append(
        s,
        2,
        &[
            obs("D1", "2026-11-25T08:00:00Z", 1),
            obs("D1", "2026-11-25T08:01:00Z", 2),
        ],
    );
    let action: model::Action = serde_json::from_value(serde_json::json!({
        "t": "2026-11-25T08:02:00Z", "transit": "T1", "action": "authorize_unseal"
    }))
    .unwrap();
    let tick = LoggedInput::Tick {
        at: t("2026-11-25T12:00:00Z"),
    };
    let inputs = [
        (
            4,
            LoggedInput::Action {
                action: action.clone(),
            },
        ),
        (5, tick.clone()),
    ];
    s.commit(&Commit {
        inputs: &inputs,
        ..Commit::default()
    })
    .unwrap();
    append(s, 6, &[obs("D1", "2026-11-25T12:01:00Z", 3)]);
    assert_eq!(s.last_seq().unwrap(), 6);
    let log = s.inputs_after(0, 100).unwrap();
    assert_eq!(
        log.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert!(
        matches!(&log[0].1, LoggedInput::Declare { transit, .. } if transit.id.as_str() == "T1")
    );
    assert_eq!(
        log[2].1,
        LoggedInput::Observation {
            observation: obs("D1", "2026-11-25T08:01:00Z", 2)
        }
    );
    assert_eq!(log[3].1, LoggedInput::Action { action });
    assert_eq!(log[4].1, tick);
    assert_eq!(
        s.inputs_after(3, 2)
            .unwrap()
            .iter()
            .map(|(seq, _)| *seq)
            .collect::<Vec<_>>(),
        [4, 5]
    );
    // A commit that fails leaves nothing behind.
    let again = [
        (
            7,
            LoggedInput::Observation {
                observation: obs("D1", "2026-11-25T12:02:00Z", 4),
            },
        ),
        (
            8,
            LoggedInput::Declare {
                at: t("2026-11-25T12:02:00Z"),
                transit: Box::new(transit("T1", "D1")),
            },
        ),
    ];
    assert!(
        s.commit(&Commit {
            inputs: &again,
            ..Commit::default()
        })
        .unwrap_err()
        .is_conflict()
    );
    assert_eq!(s.last_seq().unwrap(), 6);
}

fn api_tokens(s: &mut dyn Store) {
    let token = store::ApiToken {
        id: "k7f3a9".into(),
        role: model::Role::Gateway,
        label: "gateway hall 3".into(),
        created_at: t("2026-11-25T08:00:00Z"),
        expires_at: Some(t("2027-11-25T08:00:00Z")),
        revoked_at: None,
    };
    s.put_token(&token, "hash-1").unwrap();
    assert!(s.put_token(&token, "hash-2").unwrap_err().is_conflict());
    let (got, hash) = s.token("k7f3a9").unwrap();
    assert_eq!((got.clone(), hash.as_str()), (token.clone(), "hash-1"));
    assert!(got.is_valid_at(t("2026-12-01T00:00:00Z")));
    assert!(!got.is_valid_at(t("2027-11-25T08:00:00Z")), "expired");
    let newer = store::ApiToken {
        id: "b2c4d6".into(),
        role: model::Role::Auditor,
        label: "audit export".into(),
        created_at: t("2026-11-26T08:00:00Z"),
        expires_at: None,
        revoked_at: None,
    };
    s.put_token(&newer, "hash-3").unwrap();
    let ids: Vec<String> = s.tokens().unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(ids, ["b2c4d6", "k7f3a9"], "newest first");
    let revoked = s.revoke_token("k7f3a9", t("2026-11-27T08:00:00Z")).unwrap();
    assert_eq!(revoked.revoked_at, Some(t("2026-11-27T08:00:00Z")));
    assert!(!revoked.is_valid_at(t("2026-11-28T00:00:00Z")));
    let again = s.revoke_token("k7f3a9", t("2026-11-29T08:00:00Z")).unwrap();
    assert_eq!(
        again.revoked_at, revoked.revoked_at,
        "the first revocation stands"
    );
    assert!(s.token("nope").unwrap_err().is_not_found());
    assert!(
        s.revoke_token("nope", t("2026-11-29T08:00:00Z"))
            .unwrap_err()
            .is_not_found()
    );
}

macro_rules! conformance {
    ($backend:ident, $open:expr) => {
        mod $backend {
            use super::*;

            #[allow(clippy::redundant_closure_call)]
            fn open(test: &str) -> Option<Box<dyn Store>> {
                ($open)(test)
            }

            #[test]
            fn api_tokens() {
                if let Some(mut s) = open("tokens") {
                    super::api_tokens(&mut *s);
                }
            }

            #[test]
            fn zones_round_trip() {
                if let Some(mut s) = open("zones") {
                    super::zones_round_trip(&mut *s);
                }
            }

            #[test]
            fn transits_lifecycle() {
                if let Some(mut s) = open("transits") {
                    super::transits_lifecycle(&mut *s);
                }
            }

            #[test]
            fn observations_append_and_read() {
                if let Some(mut s) = open("observations") {
                    super::observations_append_and_read(&mut *s);
                }
            }

            #[test]
            fn input_log_replays_in_order() {
                if let Some(mut s) = open("inputs") {
                    super::input_log_replays_in_order(&mut *s);
                }
            }

            #[test]
            fn alarms_and_their_handling() {
                if let Some(mut s) = open("alarms") {
                    super::alarms_and_their_handling(&mut *s);
                }
            }
        }
    };
}

conformance!(sqlite_memory, |_test: &str| -> Option<Box<dyn Store>> {
    Some(Box::new(SqliteStore::open_in_memory().unwrap()))
});

conformance!(sqlite_file, |test: &str| -> Option<Box<dyn Store>> {
    let dir = std::env::temp_dir().join(format!("sealwatch-store-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Some(Box::new(
        SqliteStore::open(&dir.join("sealwatch.db")).unwrap(),
    ))
});

conformance!(postgresql, |test: &str| -> Option<Box<dyn Store>> {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL conformance skipped");
        return None;
    };
    // A fresh schema per test and per run, so tests run in parallel and leave nothing behind
    // that a later run could trip on.
    let schema = format!("conformance_{test}_{}", std::process::id());
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    // Earlier runs' schemas for this test go first.
    let old = admin
        .query(
            "SELECT schema_name::TEXT FROM information_schema.schemata WHERE schema_name LIKE $1",
            &[&format!("conformance_{test}_%")],
        )
        .unwrap();
    for row in old {
        let name: String = row.get(0);
        admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
            .unwrap();
    }
    Some(Box::new(PgStore::connect_in_schema(&url, &schema).unwrap()))
});
