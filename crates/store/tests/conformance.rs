//! One conformance suite, run against every backend: SQLite always, PostgreSQL when
//! `TEST_DATABASE_URL` names a database (CI sets it; each test works in its own schema).

use model::{
    Alarm, AlarmKind, AlarmState, AlarmStep, Device, DeviceKind, DeviceState, Event, EventKind,
    Observation, Outcome, Reader, Role, Station, Timestamp, Transit, TransitState, Zone,
};
use store::{
    AlarmCount, AlarmFilter, CommandKind, CommandState, CommandsOf, Commit, DeviceCommand,
    DeviceFilter, LoggedInput, PageRequest, PgStore, Position, SignedReadRecord, SqliteStore,
    Store, TimeRange, TransitFilter,
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
        reader: None,
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
    let all = s
        .transits(&TransitFilter::default(), PageRequest::default())
        .unwrap();
    assert_eq!(
        all.iter()
            .map(|(_, x)| x.transit.id.to_string())
            .collect::<Vec<_>>(),
        ["T1", "T2", "T3", "T4", "T5"]
    );
    let first = s
        .transits(
            &TransitFilter::default(),
            PageRequest {
                after: None,
                limit: 2,
            },
        )
        .unwrap();
    let next = s
        .transits(
            &TransitFilter::default(),
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
    let sealed = s.transits(&sealed_only(), PageRequest::default()).unwrap();
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
            &sealed_only(),
            PageRequest {
                after: None,
                limit: 2,
            },
        )
        .unwrap();
    set_state(s, "T1", TransitState::Closed, t("2026-11-25T09:00:00Z")).unwrap();
    let page2 = s
        .transits(
            &sealed_only(),
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

    // By declaration time: T1 at 07:00, the others at 07:30.
    let early = TransitFilter {
        declared: TimeRange {
            from: None,
            to: Some(t("2026-11-25T07:30:00Z")),
        },
        ..TransitFilter::default()
    };
    let got = s.transits(&early, PageRequest::default()).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.transit.id.as_str(), "T1");
    let late_sealed = TransitFilter {
        state: Some(TransitState::Sealed),
        declared: TimeRange {
            from: Some(t("2026-11-25T07:30:00Z")),
            to: None,
        },
    };
    let got = s.transits(&late_sealed, PageRequest::default()).unwrap();
    assert_eq!(
        got.iter()
            .map(|(_, x)| x.transit.id.to_string())
            .collect::<Vec<_>>(),
        ["T2", "T3", "T4"]
    );
}

fn sealed_only() -> TransitFilter {
    TransitFilter {
        state: Some(TransitState::Sealed),
        ..TransitFilter::default()
    }
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
    // Reads are the same whatever part of the log the per-device index has taken in yet.
    let all = |s: &mut dyn Store| {
        (
            s.observations("D1", TimeRange::default(), 1000).unwrap(),
            s.observations("D2", TimeRange::default(), 7).unwrap(),
        )
    };
    let unindexed = all(s);
    assert_eq!(s.index_observations(30).unwrap(), 30);
    assert_eq!(all(s), unindexed, "half indexed");
    assert_eq!(s.index_observations(1000).unwrap(), 70);
    assert_eq!(s.index_observations(1000).unwrap(), 0);
    assert_eq!(all(s), unindexed, "all indexed");
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
    // Steps of 25 ids: D1's reports are the odd ids, those before 08:30 the first 30 of them.
    let mut steps = Vec::new();
    let mut after = 0;
    loop {
        let (n, next) = s.purge_observations(before, after, 25).unwrap();
        steps.push(n);
        match next {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(steps, [13, 12, 5, 0]);
    let left =
        |s: &mut dyn Store, d: &str| s.observations(d, TimeRange::default(), 1000).unwrap().len();
    assert_eq!(left(s, "D1"), 20);
    assert_eq!(left(s, "D2"), 50, "a supervised device's reports are kept");
    // New reports after the purge are read too, before and after they are indexed.
    append(s, 2000, &[obs("D1", "2026-11-25T09:30:00Z", 500)]);
    assert_eq!(left(s, "D1"), 21);
    assert_eq!(s.index_observations(1000).unwrap(), 1);
    assert_eq!(left(s, "D1"), 21);
    // A late upload of old reports, indexed, then everything purgeable purged: the newest row
    // stays, so a report after it gets a new id and is read (an id reused below the index's
    // mark would be lost to reads).
    append(s, 3000, &[obs("D1", "2026-11-25T07:00:00Z", 900)]);
    s.index_observations(1000).unwrap();
    let far = t("2100-01-01T00:00:00Z");
    let mut after = 0;
    while let (_, Some(next)) = s.purge_observations(far, after, 1000).unwrap() {
        after = next;
    }
    assert_eq!(left(s, "D1"), 1, "the newest row stays");
    append(s, 3001, &[obs("D2", "2026-11-25T10:00:00Z", 901)]);
    assert_eq!(left(s, "D2"), 51);
    s.index_observations(1000).unwrap();
    assert_eq!(left(s, "D2"), 51);
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
    let all = PageRequest::default();
    assert_eq!(s.events("T1", TimeRange::default(), all).unwrap().len(), 2);
    assert_eq!(s.events("T2", TimeRange::default(), all).unwrap().len(), 0);

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
        organisation: Some("Ningbo Carriers Ltd".into()),
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
        organisation: None,
        created_at: t("2026-11-26T08:00:00Z"),
        expires_at: None,
        revoked_at: None,
    };
    s.put_token(&newer, "hash-3").unwrap();
    let all = s.tokens().unwrap();
    let ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["b2c4d6", "k7f3a9"], "newest first");
    assert_eq!(all, [newer.clone(), token.clone()], "organisations kept");
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

fn users_and_sessions(s: &mut dyn Store) {
    let user = |name: &str, role: Role| store::User {
        id: 0,
        username: name.into(),
        role,
        organisation: Some("Yiwu office".into()),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        totp_secret: None,
        failed_logins: 0,
        locked_until: None,
        created_at: t("2026-11-25T08:00:00Z"),
        disabled_at: None,
    };
    let alice = s.create_user(&user("Alice", Role::Administrator)).unwrap();
    assert!(alice.id > 0);
    assert_eq!(alice.username, "Alice", "kept as typed");
    assert_eq!(alice.organisation.as_deref(), Some("Yiwu office"));
    // Unique whatever the case; found whatever the case.
    let taken = s.create_user(&user("ALICE", Role::Officer)).unwrap_err();
    assert!(taken.is_conflict(), "{taken}");
    assert_eq!(s.user_by_name("aLiCe").unwrap(), alice);
    assert!(s.user_by_name("bob").unwrap_err().is_not_found());
    assert!(s.user(alice.id + 1000).unwrap_err().is_not_found());
    let bob = s.create_user(&user("bob", Role::Officer)).unwrap();
    let names: Vec<String> = s.users().unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(names, ["Alice", "bob"]);

    // Lockout recorded, then cleared by a new password.
    let locked = s
        .set_user_lockout(bob.id, 5, Some(t("2026-11-25T08:01:00Z")))
        .unwrap();
    assert_eq!(
        (locked.failed_logins, locked.locked_until),
        (5, Some(t("2026-11-25T08:01:00Z")))
    );
    let reset = s.set_user_password(bob.id, "$argon2id$new").unwrap();
    assert_eq!(reset.password_hash, "$argon2id$new");
    assert_eq!((reset.failed_logins, reset.locked_until), (0, None));
    let enrolled = s.set_user_totp(alice.id, Some("JBSWY3DPEHPK3PXP")).unwrap();
    assert_eq!(enrolled.totp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
    // A code's step is taken once; an older one never after a newer.
    assert!(s.take_totp_step(alice.id, 100).unwrap());
    assert!(!s.take_totp_step(alice.id, 100).unwrap(), "replayed");
    assert!(!s.take_totp_step(alice.id, 99).unwrap(), "older");
    assert!(s.take_totp_step(alice.id, 101).unwrap());
    assert!(s.take_totp_step(bob.id, 100).unwrap(), "per user");
    // Enrolling again starts afresh.
    s.set_user_totp(alice.id, Some("JBSWY3DPEHPK3PXP")).unwrap();
    assert!(s.take_totp_step(alice.id, 50).unwrap());
    assert_eq!(s.set_user_totp(alice.id, None).unwrap().totp_secret, None);

    // Sessions: stored by the hash of their id, touched, revoked once.
    let session = |id: &str, user: i64| store::Session {
        id_hash: id.into(),
        user_id: user,
        csrf_hash: format!("csrf-{id}"),
        created_at: t("2026-11-25T09:00:00Z"),
        last_seen_at: t("2026-11-25T09:00:00Z"),
        expires_at: t("2026-11-25T21:00:00Z"),
        revoked_at: None,
    };
    s.put_session(&session("s1", bob.id)).unwrap();
    s.put_session(&session("s2", bob.id)).unwrap();
    s.put_session(&session("s3", alice.id)).unwrap();
    assert!(
        s.put_session(&session("s1", alice.id))
            .unwrap_err()
            .is_conflict()
    );
    assert_eq!(s.session("s1").unwrap(), session("s1", bob.id));
    assert!(s.session("nope").unwrap_err().is_not_found());
    s.touch_session("s1", t("2026-11-25T09:30:00Z")).unwrap();
    // An older touch (requests finishing out of order) does not move it back.
    s.touch_session("s1", t("2026-11-25T09:10:00Z")).unwrap();
    assert_eq!(
        s.session("s1").unwrap().last_seen_at,
        t("2026-11-25T09:30:00Z")
    );
    s.revoke_session("s3", t("2026-11-25T10:00:00Z")).unwrap();
    s.revoke_session("s3", t("2026-11-25T11:00:00Z")).unwrap();
    assert_eq!(
        s.session("s3").unwrap().revoked_at,
        Some(t("2026-11-25T10:00:00Z"))
    );

    // Disabling a user ends every session of theirs, and only theirs.
    let disabled = s.disable_user(bob.id, t("2026-11-25T12:00:00Z")).unwrap();
    assert_eq!(disabled.disabled_at, Some(t("2026-11-25T12:00:00Z")));
    let again = s.disable_user(bob.id, t("2026-11-26T12:00:00Z")).unwrap();
    assert_eq!(again.disabled_at, Some(t("2026-11-25T12:00:00Z")));
    for id in ["s1", "s2"] {
        assert_eq!(
            s.session(id).unwrap().revoked_at,
            Some(t("2026-11-25T12:00:00Z")),
            "{id}"
        );
    }
    assert_eq!(s.user(alice.id).unwrap().disabled_at, None);
}

fn device_auth_and_log(s: &mut dyn Store) {
    assert!(s.device_auth("013912345678").unwrap_err().is_not_found());
    s.put_device_auth("013912345678", "hash-1", t("2026-11-25T08:00:00Z"))
        .unwrap();
    assert_eq!(s.device_auth("013912345678").unwrap(), "hash-1");
    // A new registration replaces the code.
    s.put_device_auth("013912345678", "hash-2", t("2026-11-25T09:00:00Z"))
        .unwrap();
    assert_eq!(s.device_auth("013912345678").unwrap(), "hash-2");
    assert!(s.device_auth("013900000000").unwrap_err().is_not_found());

    let line = |device: &str, text: &str, at: &str| store::DeviceLogEntry {
        id: 0,
        device: device.into(),
        at: t(at),
        source: "jt808".into(),
        kind: "text_result".into(),
        text: text.into(),
    };
    let first = s
        .add_device_log(&line(
            "740190311185",
            "(740190311185,1,001,ELOCK,3,529439)",
            "2026-11-25T08:00:00Z",
        ))
        .unwrap();
    assert!(first.id > 0);
    assert_eq!(first.text, "(740190311185,1,001,ELOCK,3,529439)");
    s.add_device_log(&line("OTHER1", "(x)", "2026-11-25T08:00:01Z"))
        .unwrap();
    let second = s
        .add_device_log(&line("740190311185", "(b)", "2026-11-25T08:00:02Z"))
        .unwrap();
    let all = s.device_log("740190311185", page(None, 10)).unwrap();
    assert_eq!(
        all,
        [first.clone(), second.clone()],
        "oldest first, one device"
    );
    let next = s
        .device_log("740190311185", page(Some(first.id), 10))
        .unwrap();
    assert_eq!(next, [second]);
    assert_eq!(
        s.device_log("740190311185", page(None, 1)).unwrap(),
        [first]
    );
    assert!(s.device_log("NOBODY", page(None, 10)).unwrap().is_empty());
}

fn device_keys_provisioned_rotated_revoked(s: &mut dyn Store) {
    assert!(s.device_keys("LOCK-7").unwrap_err().is_not_found());
    assert!(
        s.revoke_device_keys("LOCK-7", t("2026-11-25T08:00:00Z"))
            .unwrap_err()
            .is_not_found()
    );
    let first = s
        .put_device_keys("LOCK-7", "aa11", "bb22", t("2026-11-25T08:00:00Z"))
        .unwrap();
    assert_eq!(first.device, "LOCK-7");
    assert_eq!(first.signing_public, "aa11");
    assert_eq!(first.agreement_public, "bb22");
    assert_eq!(first.created_at, t("2026-11-25T08:00:00Z"));
    assert_eq!(first.revoked_at, None);
    assert_eq!(s.device_keys("LOCK-7").unwrap(), first);
    assert!(s.device_keys("OTHER").unwrap_err().is_not_found());

    let revoked = s
        .revoke_device_keys("LOCK-7", t("2026-11-25T09:00:00Z"))
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(t("2026-11-25T09:00:00Z")));
    assert_eq!(revoked.signing_public, "aa11", "a revoked set is kept");
    // Revoking twice keeps the first time.
    let again = s
        .revoke_device_keys("LOCK-7", t("2026-11-25T10:00:00Z"))
        .unwrap();
    assert_eq!(again.revoked_at, Some(t("2026-11-25T09:00:00Z")));

    // Rotation: a new set replaces the old one and is not revoked.
    let rotated = s
        .put_device_keys("LOCK-7", "cc33", "dd44", t("2026-11-25T11:00:00Z"))
        .unwrap();
    assert_eq!(rotated.signing_public, "cc33");
    assert_eq!(rotated.agreement_public, "dd44");
    assert_eq!(rotated.created_at, t("2026-11-25T11:00:00Z"));
    assert_eq!(rotated.revoked_at, None);
    assert_eq!(s.device_keys("LOCK-7").unwrap(), rotated);

    // Listed by device id, revoked ones too.
    let other = s
        .put_device_keys("LOCK-1", "ee55", "ff66", t("2026-11-25T12:00:00Z"))
        .unwrap();
    let other = s
        .revoke_device_keys(&other.device, t("2026-11-25T12:30:00Z"))
        .unwrap();
    assert_eq!(s.list_device_keys().unwrap(), vec![other, rotated]);
}

fn reader_keys_and_signed_reads(s: &mut dyn Store) {
    assert!(s.reader_key("R-GATE-1").unwrap_err().is_not_found());
    assert!(
        s.revoke_reader_key("R-GATE-1", t("2026-11-25T08:00:00Z"))
            .unwrap_err()
            .is_not_found()
    );
    let first = s
        .put_reader_key("R-GATE-1", "aa11", t("2026-11-25T08:00:00Z"))
        .unwrap();
    assert_eq!(first.reader, "R-GATE-1");
    assert_eq!(first.public_key, "aa11");
    assert_eq!(first.revoked_at, None);
    assert_eq!(s.reader_key("R-GATE-1").unwrap(), first);
    let revoked = s
        .revoke_reader_key("R-GATE-1", t("2026-11-25T09:00:00Z"))
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(t("2026-11-25T09:00:00Z")));
    assert_eq!(revoked.public_key, "aa11", "a revoked key is kept");
    let again = s
        .revoke_reader_key("R-GATE-1", t("2026-11-25T10:00:00Z"))
        .unwrap();
    assert_eq!(again.revoked_at, Some(t("2026-11-25T09:00:00Z")));
    let rotated = s
        .put_reader_key("R-GATE-1", "cc33", t("2026-11-25T11:00:00Z"))
        .unwrap();
    assert_eq!(rotated.public_key, "cc33");
    assert_eq!(rotated.revoked_at, None);

    let post = |digest: &str, body: &str| SignedReadRecord {
        id: 0,
        reader: "R-GATE-1".into(),
        digest: digest.into(),
        public_key: "cc33".into(),
        signature: "5151".into(),
        body: body.into(),
        received_at: t("2026-11-25T12:00:00Z"),
    };
    assert!(s.signed_read("R-GATE-1", "d1").unwrap_err().is_not_found());
    let kept = s.add_signed_read(&post("d1", "[1]")).unwrap().unwrap();
    assert!(kept.id > 0);
    assert_eq!(
        kept,
        SignedReadRecord {
            id: kept.id,
            ..post("d1", "[1]")
        }
    );
    // The same post again is a replay: recognised, not kept twice.
    assert_eq!(s.add_signed_read(&post("d1", "[1]")).unwrap(), None);
    let second = s.add_signed_read(&post("d2", "[2]")).unwrap().unwrap();
    assert_eq!(s.signed_read("R-GATE-1", "d1").unwrap(), kept);
    // Digests are per reader.
    let other = SignedReadRecord {
        reader: "R-HAND-2".into(),
        ..post("d1", "[1]")
    };
    assert!(s.add_signed_read(&other).unwrap().is_some());
    let all = s.signed_reads("R-GATE-1", page(None, 10)).unwrap();
    assert_eq!(all, vec![kept.clone(), second.clone()]);
    assert_eq!(
        s.signed_reads("R-GATE-1", page(Some(kept.id), 10)).unwrap(),
        vec![second]
    );
}

fn container_pairings_embedded_for_life_affixed_in_windows(s: &mut dyn Store) {
    use store::PairingKind::{Affixed, Embedded};
    let (c1, c2) = ("CSQU3054383", "MSKU0000011");
    assert!(s.container_pairings(c1).unwrap().is_empty());
    assert!(
        s.container_pairings_at(c1, t("2026-11-25T08:00:00Z"))
            .unwrap()
            .is_empty()
    );

    // Embedded: bound for life, never unpaired, never paired elsewhere.
    let embedded = s
        .pair_container(c1, "SC-EMB", Embedded, t("2026-01-01T00:00:00Z"))
        .unwrap();
    assert_eq!(
        (embedded.container.as_str(), embedded.device.as_str()),
        (c1, "SC-EMB")
    );
    assert_eq!(embedded.kind, Embedded);
    assert_eq!(embedded.unpaired_at, None);
    let e = s
        .unpair_container(c1, "SC-EMB", t("2026-02-01T00:00:00Z"))
        .unwrap_err();
    assert!(e.is_conflict() && e.to_string().contains("for life"), "{e}");
    let e = s
        .pair_container(c2, "SC-EMB", Affixed, t("2026-02-01T00:00:00Z"))
        .unwrap_err();
    assert!(e.is_conflict() && e.to_string().contains("embedded"), "{e}");

    // Affixed: one container at a time, windows that do not overlap.
    let first = s
        .pair_container(c1, "TAG-1", Affixed, t("2026-11-25T08:00:00Z"))
        .unwrap();
    let e = s
        .pair_container(c2, "TAG-1", Affixed, t("2026-11-25T09:00:00Z"))
        .unwrap_err();
    assert!(
        e.is_conflict() && e.to_string().contains("unpair it first"),
        "{e}"
    );
    let e = s
        .unpair_container(c1, "TAG-1", t("2026-11-25T07:00:00Z"))
        .unwrap_err();
    assert!(e.is_conflict(), "{e}");
    assert!(
        s.unpair_container(c2, "TAG-1", t("2026-11-25T10:00:00Z"))
            .unwrap_err()
            .is_not_found()
    );
    let ended = s
        .unpair_container(c1, "TAG-1", t("2026-11-25T12:00:00Z"))
        .unwrap();
    assert_eq!(ended.id, first.id);
    assert_eq!(ended.unpaired_at, Some(t("2026-11-25T12:00:00Z")));
    assert!(
        s.unpair_container(c1, "TAG-1", t("2026-11-25T13:00:00Z"))
            .unwrap_err()
            .is_not_found(),
        "an ended pairing cannot be ended again"
    );
    let e = s
        .pair_container(c2, "TAG-1", Affixed, t("2026-11-25T11:00:00Z"))
        .unwrap_err();
    assert!(
        e.is_conflict() && e.to_string().contains("falls within"),
        "{e}"
    );
    let second = s
        .pair_container(c2, "TAG-1", Affixed, t("2026-11-25T12:00:00Z"))
        .unwrap();

    // Who reported for a container at a time: the window's end is exclusive.
    let at = |s: &mut dyn Store, c: &str, when: &str| -> Vec<String> {
        s.container_pairings_at(c, t(when))
            .unwrap()
            .into_iter()
            .map(|p| p.device)
            .collect()
    };
    assert_eq!(at(s, c1, "2026-11-25T07:59:59Z"), ["SC-EMB"]);
    assert_eq!(at(s, c1, "2026-11-25T08:00:00Z"), ["SC-EMB", "TAG-1"]);
    assert_eq!(at(s, c1, "2026-11-25T12:00:00Z"), ["SC-EMB"]);
    assert!(at(s, c2, "2026-11-25T11:59:59Z").is_empty());
    assert_eq!(at(s, c2, "2026-11-25T12:00:00Z"), ["TAG-1"]);

    let history = s.container_pairings(c1).unwrap();
    assert_eq!(history, vec![embedded, ended.clone()]);
    let of_device = s.device_pairings("TAG-1").unwrap();
    assert_eq!(of_device, vec![ended, second]);
}

fn station(id: &str, name: &str) -> Station {
    serde_json::from_value(serde_json::json!({"id": id, "name": name, "zone": "CN-YIWU"})).unwrap()
}

fn device(id: &str, kind: &str, state: &str, station: Option<&str>) -> Device {
    let mut d = serde_json::json!({"id": id, "kind": kind, "state": state, "model": "JT701"});
    if let Some(st) = station {
        d["station"] = st.into();
    }
    serde_json::from_value(d).unwrap()
}

fn ids<T>(rows: &[(i64, T)], id: impl Fn(&T) -> String) -> Vec<String> {
    rows.iter().map(|(_, x)| id(x)).collect()
}

fn page(after: Option<i64>, limit: u32) -> PageRequest {
    PageRequest { after, limit }
}

fn stations_and_readers(s: &mut dyn Store) {
    s.put_station(&station("ST-YIWU", "Yiwu")).unwrap();
    s.put_station(&station("ST-NINGBO", "Ningbo")).unwrap();
    s.put_station(&station("ST-JINHUA", "Jinhua")).unwrap();
    // Replacing keeps the station's place in the list.
    s.put_station(&station("ST-YIWU", "Yiwu land port"))
        .unwrap();
    assert_eq!(s.station("ST-YIWU").unwrap().name, "Yiwu land port");
    assert!(s.station("ST-NOPE").unwrap_err().is_not_found());
    let first = s.stations(page(None, 2)).unwrap();
    assert_eq!(ids(&first, |x| x.id.to_string()), ["ST-YIWU", "ST-NINGBO"]);
    let next = s.stations(page(Some(first[1].0), 2)).unwrap();
    assert_eq!(ids(&next, |x| x.id.to_string()), ["ST-JINHUA"]);
    assert_eq!(next[0].1, station("ST-JINHUA", "Jinhua"));

    let gate: Reader = serde_json::from_value(serde_json::json!({
        "id": "R-GATE-1", "kind": "fixed", "zone": "CHK-1", "station": "ST-YIWU"
    }))
    .unwrap();
    let hand: Reader =
        serde_json::from_value(serde_json::json!({"id": "R-HAND-7", "kind": "handheld"})).unwrap();
    s.put_reader(&gate).unwrap();
    s.put_reader(&hand).unwrap();
    assert_eq!(s.reader("R-GATE-1").unwrap(), gate);
    assert!(s.reader("R-NOPE").unwrap_err().is_not_found());
    let mut moved = hand.clone();
    moved.station = Some("ST-NINGBO".parse().unwrap());
    s.put_reader(&moved).unwrap();
    let all = s.readers(PageRequest::default()).unwrap();
    assert_eq!(ids(&all, |x| x.id.to_string()), ["R-GATE-1", "R-HAND-7"]);
    assert_eq!(all[1].1, moved);
    assert!(s.readers(page(Some(all[1].0), 10)).unwrap().is_empty());
}

fn devices_registered_and_listed(s: &mut dyn Store) {
    let at = t("2026-11-20T09:00:00Z");
    let mut d1 = device("D1", "active", "in_stock", Some("ST-YIWU"));
    d1.battery_pct = Some(90.0);
    s.put_device(&d1, at).unwrap();
    s.put_device(&device("D2", "passive", "in_stock", Some("ST-NINGBO")), at)
        .unwrap();
    s.put_device(&device("D3", "active", "charging", Some("ST-YIWU")), at)
        .unwrap();
    s.put_device(&device("D4", "active", "in_stock", None), at)
        .unwrap();

    let got = s.device("D1").unwrap();
    assert_eq!(got.device, d1, "the registration comes back");
    assert_eq!(got.registered_at, at);
    assert_eq!(got.last_position, None);
    assert!(s.device("D9").unwrap_err().is_not_found());

    let list = |s: &mut dyn Store, f: DeviceFilter| {
        ids(&s.devices(&f, PageRequest::default()).unwrap(), |x| {
            x.device.id.to_string()
        })
    };
    assert_eq!(list(s, DeviceFilter::default()), ["D1", "D2", "D3", "D4"]);
    let yiwu = DeviceFilter {
        station: Some("ST-YIWU".parse().unwrap()),
        ..DeviceFilter::default()
    };
    assert_eq!(list(s, yiwu.clone()), ["D1", "D3"]);
    let in_stock_active = DeviceFilter {
        state: Some(DeviceState::InStock),
        kind: Some(DeviceKind::Active),
        ..DeviceFilter::default()
    };
    assert_eq!(list(s, in_stock_active), ["D1", "D4"]);
    let first = s.devices(&DeviceFilter::default(), page(None, 3)).unwrap();
    let rest = s
        .devices(&DeviceFilter::default(), page(Some(first[2].0), 3))
        .unwrap();
    assert_eq!(ids(&rest, |x| x.device.id.to_string()), ["D4"]);

    // Re-registration: new state and station, same registration time and place in the list.
    let mut moved = device("D1", "active", "assigned", Some("ST-NINGBO"));
    moved.battery_pct = Some(50.0);
    s.put_device(&moved, t("2026-11-21T09:00:00Z")).unwrap();
    let got = s.device("D1").unwrap();
    assert_eq!(got.device.state, DeviceState::Assigned);
    assert_eq!(got.registered_at, at);
    assert_eq!(
        got.device.battery_pct,
        Some(90.0),
        "the battery known first stays until a report says otherwise"
    );
    assert_eq!(list(s, yiwu), ["D3"]);
    assert_eq!(list(s, DeviceFilter::default())[0], "D1");
}

fn fix(device: &str, at: &str, lat: f64, lon: f64, battery: Option<f64>) -> Observation {
    let mut o = obs(device, at, 0);
    o.seq = None;
    o.lat = Some(lat);
    o.lon = Some(lon);
    o.battery_pct = battery;
    o
}

fn device_reports_update_registered_devices(s: &mut dyn Store) {
    let at = t("2026-11-20T09:00:00Z");
    let mut d1 = device("D1", "active", "sealed", None);
    d1.battery_pct = Some(90.0);
    s.put_device(&d1, at).unwrap();
    s.put_device(&device("D2", "active", "sealed", None), at)
        .unwrap();

    // One commit, out of order, with a report without a fix last.
    let mut no_fix = obs("D1", "2026-11-25T08:05:00Z", 0);
    no_fix.seq = None;
    no_fix.lat = None;
    no_fix.lon = None;
    let mut denied_fix = fix("D1", "2026-11-25T08:04:00Z", 30.5, 121.5, None);
    denied_fix.fix = Some(false);
    append(
        s,
        1,
        &[
            fix("D1", "2026-11-25T08:02:00Z", 29.32, 120.08, Some(80.0)),
            fix("D1", "2026-11-25T08:00:00Z", 29.31, 120.07, Some(81.0)),
            fix("D1", "2026-11-25T08:03:00Z", 29.33, 120.09, None),
            denied_fix,
            no_fix,
            fix("D2", "2026-11-25T08:01:00Z", 29.5, 120.5, Some(40.0)),
            fix("D9", "2026-11-25T08:01:00Z", 29.5, 120.5, Some(10.0)),
        ],
    );
    let got = s.device("D1").unwrap();
    assert_eq!(got.device.last_report_at, Some(t("2026-11-25T08:05:00Z")));
    assert_eq!(
        got.device.battery_pct,
        Some(80.0),
        "the latest battery wins"
    );
    assert_eq!(
        got.last_position,
        Some(Position {
            t: t("2026-11-25T08:03:00Z"),
            lat: 29.33,
            lon: 120.09
        }),
        "the latest fix wins; a report without a fix leaves the position"
    );
    assert_eq!(got.device.state, DeviceState::Sealed);
    let d2 = s.device("D2").unwrap();
    assert_eq!(d2.device.battery_pct, Some(40.0));
    assert_eq!(d2.device.last_report_at, Some(t("2026-11-25T08:01:00Z")));
    assert!(
        s.device("D9").unwrap_err().is_not_found(),
        "reports do not register devices"
    );

    // A report that arrives late changes nothing it is older than.
    append(
        s,
        8,
        &[fix("D1", "2026-11-25T07:00:00Z", 1.0, 1.0, Some(5.0))],
    );
    let late = s.device("D1").unwrap();
    assert_eq!(late, got);
    // A newer battery without a fix: the battery moves, the position stays.
    let mut battery_only = obs("D1", "2026-11-25T08:10:00Z", 0);
    battery_only.seq = None;
    battery_only.lat = None;
    battery_only.lon = None;
    battery_only.battery_pct = Some(79.5);
    append(s, 9, &[battery_only]);
    let got = s.device("D1").unwrap();
    assert_eq!(got.device.battery_pct, Some(79.5));
    assert_eq!(got.device.last_report_at, Some(t("2026-11-25T08:10:00Z")));
    assert_eq!(got.last_position.unwrap().t, t("2026-11-25T08:03:00Z"));

    // Registering again keeps what the reports said.
    let mut again = device("D1", "active", "awaiting_return", None);
    again.battery_pct = Some(100.0);
    again.last_report_at = Some(t("2026-11-01T00:00:00Z"));
    s.put_device(&again, t("2026-11-26T00:00:00Z")).unwrap();
    let after = s.device("D1").unwrap();
    assert_eq!(after.device.state, DeviceState::AwaitingReturn);
    assert_eq!(after.device.battery_pct, Some(79.5));
    assert_eq!(after.device.last_report_at, Some(t("2026-11-25T08:10:00Z")));
    assert_eq!(after.last_position, got.last_position);
    assert_eq!(after.registered_at, at);
    let listed = s
        .devices(&DeviceFilter::default(), PageRequest::default())
        .unwrap();
    assert_eq!(listed[0].1, after, "the list shows what the record shows");
}

fn transit_track_from_declaration_to_closing(s: &mut dyn Store) {
    declare(s, 1, &transit("T1", "D1"), t("2026-11-25T07:00:00Z")).unwrap();
    let minute = |m: u32| format!("2026-11-25T{:02}:{:02}:00Z", 6 + m / 60, m % 60);
    // D1 every 30 minutes from 06:00 to 10:30 (before the declaration and after the closing
    // too); D2 at the same times.
    let batch: Vec<Observation> = (0..10)
        .flat_map(|i| {
            [
                fix(
                    "D1",
                    &minute(i * 30),
                    29.0 + f64::from(i) / 10.0,
                    120.0,
                    None,
                ),
                fix("D2", &minute(i * 30), 10.0, 10.0, None),
            ]
        })
        .collect();
    append(s, 2, &batch);
    let times = |track: &[Observation]| {
        track
            .iter()
            .map(|o| o.t.to_string()[11..16].to_owned())
            .collect::<Vec<_>>()
    };
    let open = s.transit_track("T1", TimeRange::default(), 100).unwrap();
    assert_eq!(
        times(&open),
        [
            "07:00", "07:30", "08:00", "08:30", "09:00", "09:30", "10:00", "10:30"
        ],
        "from the declaration on, open-ended while the transit is open"
    );
    assert!(open.iter().all(|o| o.device.as_str() == "D1"));
    assert_eq!(open[0].lat, Some(29.2));

    set_state(s, "T1", TransitState::Sealed, t("2026-11-25T07:10:00Z")).unwrap();
    set_state(s, "T1", TransitState::Closed, t("2026-11-25T09:00:00Z")).unwrap();
    let closed = s.transit_track("T1", TimeRange::default(), 100).unwrap();
    assert_eq!(
        times(&closed),
        ["07:00", "07:30", "08:00", "08:30", "09:00"],
        "up to the closing, the closing instant included"
    );
    let window = TimeRange {
        from: Some(t("2026-11-25T07:15:00Z")),
        to: Some(t("2026-11-25T08:30:00Z")),
    };
    assert_eq!(
        times(&s.transit_track("T1", window, 100).unwrap()),
        ["07:30", "08:00"]
    );
    assert_eq!(
        times(&s.transit_track("T1", TimeRange::default(), 2).unwrap()),
        ["07:00", "07:30"]
    );
    let after_closing = TimeRange {
        from: Some(t("2026-11-25T09:30:00Z")),
        to: None,
    };
    assert!(
        s.transit_track("T1", after_closing, 100)
            .unwrap()
            .is_empty()
    );
    assert!(
        s.transit_track("T9", TimeRange::default(), 100)
            .unwrap_err()
            .is_not_found()
    );
}

fn events_paged_in_time_order(s: &mut dyn Store) {
    // Committed out of time order: listed in time order all the same.
    let events = [
        event("T1", EventKind::Sealed, "2026-11-25T08:00:00Z"),
        event("T1", EventKind::Arrived, "2026-11-25T12:00:00Z"),
        event("T1", EventKind::Departed, "2026-11-25T08:10:00Z"),
        event("T2", EventKind::Sealed, "2026-11-25T08:05:00Z"),
        event("T1", EventKind::Released, "2026-11-25T12:30:00Z"),
    ];
    s.commit(&Commit {
        events: &events,
        ..Commit::default()
    })
    .unwrap();
    let kinds = |rows: &[(i64, Event)]| {
        rows.iter()
            .map(|(_, e)| {
                serde_json::to_value(e.event)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    let all = s
        .events("T1", TimeRange::default(), PageRequest::default())
        .unwrap();
    assert_eq!(kinds(&all), ["sealed", "departed", "arrived", "released"]);
    assert_eq!(all[0].1, events[0], "an event comes back exactly");
    let first = s.events("T1", TimeRange::default(), page(None, 2)).unwrap();
    assert_eq!(kinds(&first), ["sealed", "departed"]);
    let next = s
        .events("T1", TimeRange::default(), page(Some(first[1].0), 2))
        .unwrap();
    assert_eq!(kinds(&next), ["arrived", "released"]);
    assert!(
        s.events("T1", TimeRange::default(), page(Some(next[1].0), 2))
            .unwrap()
            .is_empty()
    );
    let morning = TimeRange {
        from: Some(t("2026-11-25T08:05:00Z")),
        to: Some(t("2026-11-25T12:00:00Z")),
    };
    assert_eq!(
        kinds(&s.events("T1", morning, PageRequest::default()).unwrap()),
        ["departed"]
    );
}

fn statistics_counted_in_the_database(s: &mut dyn Store) {
    assert!(s.transit_counts().unwrap().is_empty());
    assert!(s.alarm_counts(TimeRange::default()).unwrap().is_empty());
    for i in 1..=5 {
        declare(
            s,
            i,
            &transit(&format!("T{i}"), &format!("D{i}")),
            t("2026-11-25T07:00:00Z"),
        )
        .unwrap();
    }
    for id in ["T1", "T2", "T3"] {
        set_state(s, id, TransitState::Sealed, t("2026-11-25T08:00:00Z")).unwrap();
    }
    set_state(s, "T3", TransitState::InTransit, t("2026-11-25T08:30:00Z")).unwrap();
    set_state(s, "T5", TransitState::Closed, t("2026-11-25T08:30:00Z")).unwrap();
    assert_eq!(
        s.transit_counts().unwrap(),
        [
            (TransitState::Declared, 1),
            (TransitState::Sealed, 2),
            (TransitState::InTransit, 1),
            (TransitState::Closed, 1)
        ]
    );

    let alarms = [
        alarm("T1", AlarmKind::Tamper, "2026-11-25T23:59:59Z", 4),
        alarm("T1", AlarmKind::RouteDeviation, "2026-11-25T09:00:00Z", 3),
        alarm("T2", AlarmKind::RouteDeviation, "2026-11-25T10:00:00Z", 3),
        alarm("T2", AlarmKind::RouteDeviation, "2026-11-25T11:00:00Z", 2),
        alarm("T3", AlarmKind::RouteDeviation, "2026-11-26T00:00:00Z", 3),
        alarm("T3", AlarmKind::LowBattery, "2026-11-26T06:00:00Z", 1),
        alarm("T4", AlarmKind::LowBattery, "1969-12-31T23:00:00Z", 1),
    ];
    s.commit(&Commit {
        alarms: &alarms,
        ..Commit::default()
    })
    .unwrap();
    let count = |day: &str, kind, grade, count| AlarmCount {
        day: day.into(),
        kind,
        grade,
        count,
    };
    assert_eq!(
        s.alarm_counts(TimeRange::default()).unwrap(),
        [
            count("1969-12-31", AlarmKind::LowBattery, 1, 1),
            count("2026-11-25", AlarmKind::RouteDeviation, 2, 1),
            count("2026-11-25", AlarmKind::RouteDeviation, 3, 2),
            count("2026-11-25", AlarmKind::Tamper, 4, 1),
            count("2026-11-26", AlarmKind::RouteDeviation, 3, 1),
            count("2026-11-26", AlarmKind::LowBattery, 1, 1),
        ]
    );
    let range = TimeRange {
        from: Some(t("2026-11-25T10:00:00Z")),
        to: Some(t("2026-11-26T06:00:00Z")),
    };
    assert_eq!(
        s.alarm_counts(range).unwrap(),
        [
            count("2026-11-25", AlarmKind::RouteDeviation, 2, 1),
            count("2026-11-25", AlarmKind::RouteDeviation, 3, 1),
            count("2026-11-25", AlarmKind::Tamper, 4, 1),
            count("2026-11-26", AlarmKind::RouteDeviation, 3, 1),
        ]
    );
}

fn the_feed_records_outputs_and_steps_in_order(s: &mut dyn Store) {
    assert!(s.feed_after(0, 100).unwrap().is_empty());
    assert_eq!(s.last_feed_id().unwrap(), 0);
    let events = [
        event("T1", EventKind::Sealed, "2026-11-25T08:00:00Z"),
        event("T1", EventKind::Departed, "2026-11-25T08:10:00Z"),
    ];
    let alarms = [alarm(
        "T1",
        AlarmKind::IllegalOpening,
        "2026-11-25T09:00:00Z",
        4,
    )];
    let ids = s
        .commit(&Commit {
            events: &events,
            alarms: &alarms,
            ..Commit::default()
        })
        .unwrap();
    s.handle_alarm(
        ids[0],
        AlarmStep::Acknowledge,
        "officer.zhang",
        t("2026-11-25T09:01:00Z"),
        Some("on it"),
    )
    .unwrap();
    let feed = s.feed_after(0, 100).unwrap();
    let kinds: Vec<&str> = feed.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["event", "event", "alarm", "alarm_update"]);
    assert!(feed.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    assert_eq!(feed[0].data["event"], "sealed");
    assert_eq!(feed[2].data["id"], ids[0], "an alarm carries its id");
    assert_eq!(feed[2].data["kind"], "illegal_opening");
    assert_eq!(feed[3].data["state"]["state"], "acknowledged");
    assert_eq!(feed[3].data["step"]["actor"], "officer.zhang");
    assert_eq!(feed[3].data["step"]["note"], "on it");
    assert_eq!(feed[3].t, t("2026-11-25T09:01:00Z"));
    assert!(feed.iter().all(|f| f.transit == "T1"));
    assert_eq!(s.last_feed_id().unwrap(), feed[3].id);
    // Resuming after an id gives exactly what followed it, in pages.
    let after = s.feed_after(feed[1].id, 1).unwrap();
    assert_eq!(after, &feed[2..3]);
    assert_eq!(s.feed_after(feed[3].id, 100).unwrap(), []);
    // A refused step records nothing.
    assert!(
        s.handle_alarm(
            ids[0],
            AlarmStep::Acknowledge,
            "x",
            t("2026-11-25T09:02:00Z"),
            None
        )
        .is_err()
    );
    assert_eq!(s.feed_after(feed[3].id, 100).unwrap(), []);
}

fn attachments_are_kept_with_the_history(s: &mut dyn Store) {
    let alarms = [alarm("T1", AlarmKind::Tamper, "2026-11-25T09:00:00Z", 4)];
    let ids = s
        .commit(&Commit {
            alarms: &alarms,
            ..Commit::default()
        })
        .unwrap();
    let meta = store::Attachment {
        id: 0,
        alarm: ids[0],
        at: t("2026-11-25T09:30:00Z"),
        actor: "patrol.7".into(),
        name: "seal.jpg".into(),
        content_type: "image/jpeg".into(),
        sha256: "ab".repeat(32),
        size_bytes: 0,
    };
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let stored = s.add_attachment(&meta, &bytes).unwrap();
    assert_eq!(stored.size_bytes, 70_000);
    assert_eq!(
        s.attachments(ids[0]).unwrap(),
        std::slice::from_ref(&stored)
    );
    let (got, back) = s.attachment(ids[0], stored.id).unwrap();
    assert_eq!(
        (got, back),
        (stored.clone(), bytes),
        "bytes come back exactly"
    );
    let record = s.alarm(ids[0]).unwrap();
    assert_eq!(record.history.last().unwrap().step, "attach");
    assert!(
        record
            .history
            .last()
            .unwrap()
            .note
            .as_deref()
            .unwrap()
            .contains("seal.jpg")
    );
    assert_eq!(
        s.feed_after(0, 100).unwrap().last().unwrap().kind,
        "alarm_update"
    );
    // In the audit chain too, by its digest, with who attached it.
    let audited = s.audit_head().unwrap().unwrap();
    assert_eq!(
        (audited.action.as_str(), audited.actor.as_str()),
        ("alarm.attach", "patrol.7")
    );
    assert!(
        audited.detail.contains(&"ab".repeat(32)),
        "{}",
        audited.detail
    );
    assert!(
        s.attachment(ids[0], stored.id + 1)
            .unwrap_err()
            .is_not_found()
    );
    assert!(s.attachments(ids[0] + 1).unwrap_err().is_not_found());
    let elsewhere = store::Attachment {
        alarm: ids[0] + 1,
        ..meta.clone()
    };
    assert!(
        s.add_attachment(&elsewhere, b"x")
            .unwrap_err()
            .is_not_found()
    );
}

/// Retention deletes the files of alarms closed before its cut-off, and only those.
fn retention_purges_attachments_of_closed_alarms(s: &mut dyn Store) {
    let alarms = [
        alarm("T1", AlarmKind::Tamper, "2026-11-25T09:00:00Z", 4),
        alarm("T2", AlarmKind::Tamper, "2026-11-25T09:00:00Z", 4),
    ];
    let ids = s
        .commit(&Commit {
            alarms: &alarms,
            ..Commit::default()
        })
        .unwrap();
    for &id in &ids {
        let meta = store::Attachment {
            id: 0,
            alarm: id,
            at: t("2026-11-25T09:30:00Z"),
            actor: "patrol.7".into(),
            name: "seal.jpg".into(),
            content_type: "image/jpeg".into(),
            sha256: "ab".repeat(32),
            size_bytes: 0,
        };
        s.add_attachment(&meta, b"\xff\xd8 a photo").unwrap();
    }
    s.handle_alarm(
        ids[0],
        AlarmStep::Acknowledge,
        "officer.zhang",
        t("2026-11-25T09:55:00Z"),
        None,
    )
    .unwrap();
    s.handle_alarm(
        ids[0],
        AlarmStep::Resolve(Outcome::FalseAlarm),
        "officer.zhang",
        t("2026-11-25T10:00:00Z"),
        None,
    )
    .unwrap();
    s.handle_alarm(
        ids[0],
        AlarmStep::Close,
        "supervisor.wang",
        t("2026-11-25T10:05:00Z"),
        None,
    )
    .unwrap();
    // Closed after the cut-off: kept.
    assert_eq!(
        s.purge_attachments(t("2026-11-25T10:00:00Z"), 10).unwrap(),
        0
    );
    // Closed before it: its file goes; the open alarm's stays.
    assert_eq!(
        s.purge_attachments(t("2026-11-26T00:00:00Z"), 10).unwrap(),
        1
    );
    assert!(s.attachments(ids[0]).unwrap().is_empty());
    assert_eq!(s.attachments(ids[1]).unwrap().len(), 1);
    assert_eq!(
        s.purge_attachments(t("2026-11-26T00:00:00Z"), 10).unwrap(),
        0
    );
    // The alarm and its handling history stay: they are the record.
    assert_eq!(
        s.alarm(ids[0]).unwrap().state,
        AlarmState::Closed(Outcome::FalseAlarm)
    );
}

/// Release-or-inspect decisions, one per transit, with the inspection's result; and the
/// carrier's and route's records the risk score weighs.
fn decisions_and_risk_records(s: &mut dyn Store) {
    let with_carrier = |id: &str, device: &str, carrier: &str| -> Transit {
        let mut v = serde_json::to_value(transit(id, device)).unwrap();
        v["declaration"] = serde_json::json!({"number": format!("DEC-{id}"), "carrier": carrier});
        serde_json::from_value(v).unwrap()
    };
    let at = t("2026-11-25T07:00:00Z");
    declare(s, 1, &with_carrier("T1", "D1", "ACME"), at).unwrap();
    declare(s, 2, &with_carrier("T2", "D2", "ACME"), at).unwrap();
    declare(s, 3, &with_carrier("T3", "D3", "OTHER"), at).unwrap();
    let ids = s
        .commit(&Commit {
            alarms: &[alarm(
                "T1",
                AlarmKind::IllegalOpening,
                "2026-11-25T09:00:00Z",
                4,
            )],
            ..Commit::default()
        })
        .unwrap();
    s.handle_alarm(
        ids[0],
        AlarmStep::Acknowledge,
        "o",
        t("2026-11-25T09:01:00Z"),
        None,
    )
    .unwrap();
    s.handle_alarm(
        ids[0],
        AlarmStep::Resolve(Outcome::ConfirmedViolation),
        "o",
        t("2026-11-25T09:30:00Z"),
        None,
    )
    .unwrap();
    let since = t("2026-01-01T00:00:00Z");
    let rec = |transits, violations| {
        Some(risk::Record {
            transits,
            violations,
        })
    };
    assert_eq!(
        s.risk_records(Some("ACME"), Some(("CN-YIWU", "CN-NINGBO")), since, "T3")
            .unwrap(),
        (rec(2, 1), rec(2, 1))
    );
    // The transit decided is not part of its own record; an unknown carrier has none.
    assert_eq!(
        s.risk_records(Some("ACME"), None, since, "T1").unwrap(),
        (rec(1, 0), None)
    );
    assert_eq!(
        s.risk_records(Some("NOBODY"), None, since, "T1").unwrap(),
        (rec(0, 0), None)
    );
    assert_eq!(
        s.risk_records(Some("ACME"), None, t("2026-12-01T00:00:00Z"), "T1")
            .unwrap(),
        (rec(0, 0), None)
    );

    let decision = |transit: &str, proposed, decided, reason: Option<&str>| store::DecisionRecord {
        id: 0,
        transit: transit.into(),
        at: t("2026-11-25T14:00:00Z"),
        actor: "officer.li".into(),
        proposed,
        score: 60,
        decided,
        overridden: proposed != decided,
        reason: reason.map(str::to_owned),
        proposal: serde_json::json!({"score": 60}),
        inspection: None,
    };
    use risk::Decision::{Inspect, Release};
    let d = s
        .put_decision(&decision("T1", Inspect, Inspect, None))
        .unwrap();
    assert_eq!(
        (d.transit.as_str(), d.decided, d.overridden),
        ("T1", Inspect, false)
    );
    assert_eq!(d.proposal["score"], 60);
    assert!(
        s.put_decision(&decision("T1", Inspect, Release, Some("x")))
            .unwrap_err()
            .is_conflict()
    );
    let r = s
        .put_decision(&decision(
            "T2",
            Inspect,
            Release,
            Some("known trader, seal intact"),
        ))
        .unwrap();
    assert!(r.overridden);
    assert_eq!(r.reason.as_deref(), Some("known trader, seal intact"));
    let found = store::InspectionResult {
        found: true,
        note: Some("undeclared cigarettes".into()),
        at: t("2026-11-25T16:00:00Z"),
    };
    let d = s.record_inspection("T1", &found).unwrap();
    assert_eq!(d.inspection, Some(found.clone()));
    assert!(s.record_inspection("T1", &found).unwrap_err().is_conflict());
    assert!(s.record_inspection("T2", &found).unwrap_err().is_conflict());
    assert!(
        s.record_inspection("T3", &found)
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(s.decision("T2").unwrap(), r);
    let stats = s.decision_stats(TimeRange::default()).unwrap();
    assert_eq!(
        stats,
        risk::DecisionStats {
            decisions: 2,
            released: 1,
            inspected: 1,
            overrides: 1,
            inspections_with_result: 1,
            inspections_finding: 1,
        }
    );
    assert_eq!(stats.released_share(), Some(0.5));
    assert_eq!(stats.hit_rate(), Some(1.0));
}

/// A registered device follows its transit: sealed, in transit once it departs, and back in
/// stock at the destination's station once unsealed (awaiting return where the destination has
/// no station); every change is in its history, with its cause.
fn device_lifecycle_follows_transits(s: &mut dyn Store) {
    let mut nb: Station = serde_json::from_value(
        serde_json::json!({"id": "S-NB", "name": "Ningbo", "zone": "CN-NINGBO"}),
    )
    .unwrap();
    s.put_station(&station("S-YW", "Yiwu")).unwrap();
    s.put_station(&nb).unwrap();
    s.put_device(
        &device("D1", "active", "in_stock", Some("S-YW")),
        t("2026-11-25T06:00:00Z"),
    )
    .unwrap();
    // The same registration again changes nothing, so it is not a change.
    s.put_device(
        &device("D1", "active", "in_stock", Some("S-YW")),
        t("2026-11-25T06:30:00Z"),
    )
    .unwrap();
    declare(s, 1, &transit("T1", "D1"), t("2026-11-25T07:00:00Z")).unwrap();
    for (kind, at) in [
        (EventKind::Sealed, "2026-11-25T08:00:00Z"),
        (EventKind::Departed, "2026-11-25T08:10:00Z"),
        (EventKind::Arrived, "2026-11-25T12:00:00Z"),
        (EventKind::Unsealed, "2026-11-25T12:30:00Z"),
    ] {
        s.commit(&Commit {
            events: &[event("T1", kind, at)],
            ..Commit::default()
        })
        .unwrap();
    }
    let d = s.device("D1").unwrap().device;
    assert_eq!(d.state, DeviceState::InStock);
    assert_eq!(d.station.as_ref().map(|s| s.as_str()), Some("S-NB"));
    let steps: Vec<(Option<String>, String, Option<String>, String)> = s
        .device_history("D1", 100)
        .unwrap()
        .into_iter()
        .map(|c| (c.from_state, c.to_state, c.station, c.cause))
        .collect();
    let o = |v: &str| Some(v.to_owned());
    assert_eq!(
        steps,
        [
            (None, "in_stock".into(), o("S-YW"), "registry".into()),
            (
                o("in_stock"),
                "sealed".into(),
                o("S-YW"),
                "transit T1 sealed".into()
            ),
            (
                o("sealed"),
                "in_transit".into(),
                o("S-YW"),
                "transit T1 departed".into()
            ),
            (
                o("in_transit"),
                "in_stock".into(),
                o("S-NB"),
                "transit T1 unsealed".into()
            ),
        ]
    );
    let entries = s.device_state_entries(TimeRange::default()).unwrap();
    assert_eq!(
        entries,
        [
            ("in_stock".to_owned(), 2),
            ("in_transit".to_owned(), 1),
            ("sealed".to_owned(), 1)
        ]
    );
    // No station at the destination: the device waits there for its return shipment.
    nb.zone = "CN-ELSEWHERE".parse().unwrap();
    s.put_station(&nb).unwrap();
    declare(s, 2, &transit("T2", "D1"), t("2026-11-26T07:00:00Z")).unwrap();
    s.commit(&Commit {
        events: &[event("T2", EventKind::Unsealed, "2026-11-26T12:00:00Z")],
        ..Commit::default()
    })
    .unwrap();
    let d = s.device("D1").unwrap().device;
    assert_eq!(d.state, DeviceState::AwaitingReturn);
    assert_eq!(
        d.station.as_ref().map(|s| s.as_str()),
        Some("S-NB"),
        "where it last was"
    );
    // A device that is not registered has no life cycle to follow.
    let mut other = event("T2", EventKind::Sealed, "2026-11-26T13:00:00Z");
    other.device = "D-UNREGISTERED".parse().unwrap();
    s.commit(&Commit {
        events: &[other],
        ..Commit::default()
    })
    .unwrap();
    assert!(s.device_history("D-UNREGISTERED", 10).unwrap().is_empty());
    // A device the registry says is lost keeps that state whatever its transit reports: an
    // operator decided it.
    s.put_device(
        &device("D-LOST", "active", "lost", Some("S-YW")),
        t("2026-11-26T06:00:00Z"),
    )
    .unwrap();
    let mut lost = event("T2", EventKind::Sealed, "2026-11-26T13:30:00Z");
    lost.device = "D-LOST".parse().unwrap();
    s.commit(&Commit {
        events: &[lost],
        ..Commit::default()
    })
    .unwrap();
    assert_eq!(s.device("D-LOST").unwrap().device.state, DeviceState::Lost);
    assert_eq!(
        s.device_history("D-LOST", 10).unwrap().len(),
        1,
        "its registration only"
    );

    // A transit sealed with several devices: sealing moves them all; each is back in stock
    // when its own seal is opened.
    nb.zone = "CN-NINGBO".parse().unwrap();
    s.put_station(&nb).unwrap();
    for d in ["D-MAIN", "D-EXTRA"] {
        s.put_device(
            &device(d, "active", "in_stock", Some("S-YW")),
            t("2026-11-27T06:00:00Z"),
        )
        .unwrap();
    }
    let mut several = serde_json::to_value(transit("T3", "D-MAIN")).unwrap();
    several["devices"] = serde_json::json!([{"id": "D-EXTRA"}]);
    declare(
        s,
        3,
        &serde_json::from_value(several).unwrap(),
        t("2026-11-27T07:00:00Z"),
    )
    .unwrap();
    let mut sealed = event("T3", EventKind::Sealed, "2026-11-27T08:00:00Z");
    sealed.device = "D-MAIN".parse().unwrap();
    let mut extra_opened = event("T3", EventKind::DeviceUnsealed, "2026-11-27T12:00:00Z");
    extra_opened.device = "D-EXTRA".parse().unwrap();
    s.commit(&Commit {
        events: &[sealed],
        ..Commit::default()
    })
    .unwrap();
    assert_eq!(
        s.device("D-EXTRA").unwrap().device.state,
        DeviceState::Sealed
    );
    s.commit(&Commit {
        events: &[extra_opened],
        ..Commit::default()
    })
    .unwrap();
    let extra = s.device("D-EXTRA").unwrap().device;
    assert_eq!(
        (extra.state, extra.station.as_ref().map(|s| s.as_str())),
        (DeviceState::InStock, Some("S-NB"))
    );
    assert_eq!(
        s.device("D-MAIN").unwrap().device.state,
        DeviceState::Sealed
    );
}

fn a_paired_device_replaces_the_declared_one(s: &mut dyn Store) {
    declare(s, 1, &transit("T1", "D1"), t("2026-11-25T07:00:00Z")).unwrap();
    let pair = model::Action {
        t: t("2026-11-25T07:10:00Z"),
        transit: "T1".parse().unwrap(),
        action: model::ActionKind::Pair,
        deadline: None,
        device: Some("D9".parse().unwrap()),
        reason: None,
    };
    let inputs = [(2, LoggedInput::Action { action: pair })];
    let events = [event("T1", EventKind::DevicePaired, "2026-11-25T07:10:00Z")];
    s.commit(&Commit {
        inputs: &inputs,
        events: &events,
        ..Commit::default()
    })
    .unwrap();
    assert_eq!(s.transit("T1").unwrap().transit.device.as_str(), "D9");
    // Retention and tracks follow the transit's device column: the new device is now its.
    append(s, 3, &[obs("D9", "2026-11-25T07:20:00Z", 1)]);
    let track = s.transit_track("T1", TimeRange::default(), 100).unwrap();
    assert_eq!(track.len(), 1);
    // A refused pair (no `device_paired` event) changes nothing.
    let refused = model::Action {
        device: Some("D7".parse().unwrap()),
        t: t("2026-11-25T07:30:00Z"),
        ..match &inputs[0].1 {
            LoggedInput::Action { action } => action.clone(),
            _ => unreachable!(),
        }
    };
    s.commit(&Commit {
        inputs: &[(4, LoggedInput::Action { action: refused })],
        ..Commit::default()
    })
    .unwrap();
    assert_eq!(s.transit("T1").unwrap().transit.device.as_str(), "D9");
}

fn command(device: &str, transit: Option<&str>, kind: CommandKind, at: &str) -> DeviceCommand {
    DeviceCommand {
        id: 0,
        device: device.into(),
        transit: transit.map(str::to_owned),
        kind,
        args: serde_json::json!({"seconds": 30}),
        created_at: t(at),
        actor: "officer-1".into(),
        // Ignored by queue_command.
        state: CommandState::Done,
        sent_at: Some(t(at)),
        result_at: None,
        result: Some("ignored".into()),
    }
}

fn device_commands_queued_sent_and_answered(s: &mut dyn Store) {
    let a = s
        .queue_command(&command(
            "013912345678",
            Some("T1"),
            CommandKind::Unseal,
            "2026-11-25T08:00:00Z",
        ))
        .unwrap();
    assert_eq!(a.state, CommandState::Queued);
    assert_eq!(a.sent_at, None);
    assert_eq!(a.result, None);
    assert_eq!(a.transit.as_deref(), Some("T1"));
    assert_eq!(a.args, serde_json::json!({"seconds": 30}));
    assert_eq!(a.created_at, t("2026-11-25T08:00:00Z"));
    let b = s
        .queue_command(&command(
            "013912345678",
            None,
            CommandKind::SetInterval,
            "2026-11-25T08:00:01Z",
        ))
        .unwrap();
    let other = s
        .queue_command(&command(
            "013900000000",
            Some("T1"),
            CommandKind::QueryStatus,
            "2026-11-25T08:00:02Z",
        ))
        .unwrap();
    assert!(b.id > a.id && other.id > b.id);
    assert_eq!(s.command(a.id).unwrap(), a);
    assert!(s.command(other.id + 100).unwrap_err().is_not_found());

    // Pending: queued ones of the device, oldest first.
    let pending = s.pending_commands("013912345678").unwrap();
    assert_eq!(pending, vec![a.clone(), b.clone()]);
    assert_eq!(s.unanswered_commands("013912345678").unwrap(), pending);

    // Sent once; sending again is a conflict.
    let sent = s.mark_sent(a.id, t("2026-11-25T08:01:00Z")).unwrap();
    assert_eq!(sent.state, CommandState::Sent);
    assert_eq!(sent.sent_at, Some(t("2026-11-25T08:01:00Z")));
    assert!(
        s.mark_sent(a.id, t("2026-11-25T08:01:01Z"))
            .unwrap_err()
            .is_conflict()
    );
    assert!(
        s.mark_sent(9_999_999, t("2026-11-25T08:01:01Z"))
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(s.pending_commands("013912345678").unwrap(), vec![b.clone()]);
    // Unanswered: sent and queued ones alike.
    assert_eq!(
        s.unanswered_commands("013912345678").unwrap(),
        vec![sent.clone(), b.clone()]
    );

    // A queued command is not answered, only refused.
    assert!(
        s.record_result(b.id, CommandState::Done, t("2026-11-25T08:01:02Z"), None)
            .unwrap_err()
            .is_conflict()
    );
    let refused = s
        .record_result(
            b.id,
            CommandState::Refused,
            t("2026-11-25T08:01:02Z"),
            Some("no mapping"),
        )
        .unwrap();
    assert_eq!(refused.state, CommandState::Refused);
    assert!(
        s.record_result(b.id, CommandState::Done, t("2026-11-25T08:01:03Z"), None)
            .unwrap_err()
            .is_conflict()
    );
    assert!(s.pending_commands("013912345678").unwrap().is_empty());
    assert_eq!(s.unanswered_commands("013912345678").unwrap(), vec![sent]);

    // Answered, then a late text result appended.
    let done = s
        .record_result(
            a.id,
            CommandState::Done,
            t("2026-11-25T08:01:05Z"),
            Some("general response: success"),
        )
        .unwrap();
    assert_eq!(done.state, CommandState::Done);
    assert_eq!(done.result_at, Some(t("2026-11-25T08:01:05Z")));
    let late = s
        .record_result(
            a.id,
            CommandState::Done,
            t("2026-11-25T08:01:06Z"),
            Some("(740190311185,1,001,ELOCK,3,529439)"),
        )
        .unwrap();
    assert_eq!(
        late.result.as_deref(),
        Some("general response: success\n(740190311185,1,001,ELOCK,3,529439)")
    );
    assert_eq!(s.command(a.id).unwrap(), late);
    assert!(s.unanswered_commands("013912345678").unwrap().is_empty());
    assert!(
        s.record_result(a.id, CommandState::Sent, t("2026-11-25T08:01:07Z"), None)
            .unwrap_err()
            .is_conflict()
    );

    // Listed by device and by transit, paged.
    let of_device = s
        .commands(CommandsOf::Device("013912345678"), page(None, 100))
        .unwrap();
    assert_eq!(
        of_device.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![a.id, b.id]
    );
    let first = s
        .commands(CommandsOf::Device("013912345678"), page(None, 1))
        .unwrap();
    assert_eq!(first.len(), 1);
    let rest = s
        .commands(
            CommandsOf::Device("013912345678"),
            page(Some(first[0].id), 10),
        )
        .unwrap();
    assert_eq!(rest.iter().map(|c| c.id).collect::<Vec<_>>(), vec![b.id]);
    let of_transit = s
        .commands(CommandsOf::Transit("T1"), page(None, 100))
        .unwrap();
    assert_eq!(
        of_transit.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![a.id, other.id]
    );
    assert!(
        s.commands(CommandsOf::Transit("T2"), page(None, 100))
            .unwrap()
            .is_empty()
    );
}

fn audit_chain_appended_in_transactions_and_verified(s: &mut dyn Store) {
    use store::{AuditCheckpoint, AuditRecord};
    let rec = |i: i64, action: &str| {
        AuditRecord::new(
            1_000 + i,
            "token abc (officer)",
            action,
            format!("transit:T{i}"),
            &serde_json::json!({ "i": i }),
        )
    };
    assert_eq!(s.audit_head().unwrap(), None);
    assert_eq!(s.last_audit_checkpoint().unwrap(), None);
    let first = s
        .append_audit(&[rec(1, "token.create"), rec(2, "device_keys.put")])
        .unwrap();
    assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(first[0].prev_hash, audit::GENESIS);
    assert_eq!(first[1].prev_hash, first[0].hash);

    // A commit's audit records are chained in its transaction ...
    let tr = transit("T1", "D1");
    let inputs = [(
        1,
        LoggedInput::Declare {
            at: t("2026-11-25T07:00:00Z"),
            transit: Box::new(tr.clone()),
        },
    )];
    let records = [rec(3, "transit.declare")];
    s.commit(&Commit {
        inputs: &inputs,
        audit: &records,
        ..Commit::default()
    })
    .unwrap();
    // ... and a commit that fails leaves none behind.
    let again = [(
        2,
        LoggedInput::Declare {
            at: t("2026-11-25T07:00:00Z"),
            transit: Box::new(tr),
        },
    )];
    let refused = [rec(4, "transit.declare")];
    assert!(
        s.commit(&Commit {
            inputs: &again,
            audit: &refused,
            ..Commit::default()
        })
        .unwrap_err()
        .is_conflict()
    );
    assert_eq!(s.audit_head().unwrap().unwrap().seq, 3);

    // A handling step records its actor in the chain, in its own transaction.
    let alarms = [alarm(
        "T1",
        AlarmKind::RouteDeviation,
        "2026-11-25T09:00:00Z",
        3,
    )];
    let ids = s
        .commit(&Commit {
            alarms: &alarms,
            ..Commit::default()
        })
        .unwrap();
    s.handle_alarm(
        ids[0],
        AlarmStep::Acknowledge,
        "officer.zhang (token abc, officer)",
        t("2026-11-25T09:01:00Z"),
        None,
    )
    .unwrap();
    // A refused step records nothing.
    assert!(
        s.handle_alarm(
            ids[0],
            AlarmStep::Acknowledge,
            "x",
            t("2026-11-25T09:02:00Z"),
            None
        )
        .is_err()
    );
    let head = s.audit_head().unwrap().unwrap();
    assert_eq!(head.seq, 4);
    assert_eq!(head.action, "alarm.acknowledge");
    assert_eq!(head.subject, format!("alarm:{}", ids[0]));
    assert_eq!(head.actor, "officer.zhang (token abc, officer)");

    // Paging in seq order, exactly as stored: the whole chain verifies.
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = s.audit_entries(after, 3).unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        all.extend(page);
    }
    assert_eq!(all.len(), 4);
    assert_eq!(&all[..2], &first[..]);
    assert_eq!(all[3], head);

    let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let cp = AuditCheckpoint::sign(&key, head.seq, &head.hash, 5_000);
    s.add_audit_checkpoint(&cp).unwrap();
    // Kept once per seq: a second one for the same seq changes nothing.
    s.add_audit_checkpoint(&AuditCheckpoint::sign(&key, head.seq, &head.hash, 6_000))
        .unwrap();
    assert_eq!(s.audit_checkpoints().unwrap(), std::slice::from_ref(&cp));
    assert_eq!(s.last_audit_checkpoint().unwrap(), Some(cp.clone()));
    let mut v = audit::Verifier::new(&[cp], Some(&key.verifying_key())).unwrap();
    for e in &all {
        v.push(e).unwrap();
    }
    let verified = v.finish().unwrap();
    assert_eq!(verified.count, 4);
    assert_eq!(verified.last, Some((4, head.hash)));
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
            fn audit_chain_appended_in_transactions_and_verified() {
                if let Some(mut s) = open("audit") {
                    super::audit_chain_appended_in_transactions_and_verified(&mut *s);
                }
            }

            #[test]
            fn users_and_sessions() {
                if let Some(mut s) = open("users") {
                    super::users_and_sessions(&mut *s);
                }
            }

            #[test]
            fn a_paired_device_replaces_the_declared_one() {
                if let Some(mut s) = open("pairing") {
                    super::a_paired_device_replaces_the_declared_one(&mut *s);
                }
            }

            #[test]
            fn retention_purges_attachments_of_closed_alarms() {
                if let Some(mut s) = open("retain_files") {
                    super::retention_purges_attachments_of_closed_alarms(&mut *s);
                }
            }

            #[test]
            fn decisions_and_risk_records() {
                if let Some(mut s) = open("decisions") {
                    super::decisions_and_risk_records(&mut *s);
                }
            }

            #[test]
            fn device_lifecycle_follows_transits() {
                if let Some(mut s) = open("lifecycle") {
                    super::device_lifecycle_follows_transits(&mut *s);
                }
            }

            #[test]
            fn attachments_are_kept_with_the_history() {
                if let Some(mut s) = open("attachments") {
                    super::attachments_are_kept_with_the_history(&mut *s);
                }
            }

            #[test]
            fn the_feed_records_outputs_and_steps_in_order() {
                if let Some(mut s) = open("feed") {
                    super::the_feed_records_outputs_and_steps_in_order(&mut *s);
                }
            }

            #[test]
            fn device_commands_queued_sent_and_answered() {
                if let Some(mut s) = open("commands") {
                    super::device_commands_queued_sent_and_answered(&mut *s);
                }
            }

            #[test]
            fn container_pairings_embedded_for_life_affixed_in_windows() {
                if let Some(mut s) = open("container_pairings") {
                    super::container_pairings_embedded_for_life_affixed_in_windows(&mut *s);
                }
            }

            #[test]
            fn device_keys_provisioned_rotated_revoked() {
                if let Some(mut s) = open("device_keys") {
                    super::device_keys_provisioned_rotated_revoked(&mut *s);
                }
            }

            #[test]
            fn reader_keys_and_signed_reads() {
                if let Some(mut s) = open("reader_keys") {
                    super::reader_keys_and_signed_reads(&mut *s);
                }
            }

            #[test]
            fn device_auth_and_log() {
                if let Some(mut s) = open("device_auth") {
                    super::device_auth_and_log(&mut *s);
                }
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

            #[test]
            fn stations_and_readers() {
                if let Some(mut s) = open("stations") {
                    super::stations_and_readers(&mut *s);
                }
            }

            #[test]
            fn devices_registered_and_listed() {
                if let Some(mut s) = open("devices") {
                    super::devices_registered_and_listed(&mut *s);
                }
            }

            #[test]
            fn device_reports_update_registered_devices() {
                if let Some(mut s) = open("reports") {
                    super::device_reports_update_registered_devices(&mut *s);
                }
            }

            #[test]
            fn transit_track_from_declaration_to_closing() {
                if let Some(mut s) = open("track") {
                    super::transit_track_from_declaration_to_closing(&mut *s);
                }
            }

            #[test]
            fn events_paged_in_time_order() {
                if let Some(mut s) = open("events") {
                    super::events_paged_in_time_order(&mut *s);
                }
            }

            #[test]
            fn statistics_counted_in_the_database() {
                if let Some(mut s) = open("statistics") {
                    super::statistics_counted_in_the_database(&mut *s);
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
