//! Retention and incremental backups: what retention deletes or erases after a base backup is
//! deleted or erased again when the next increment is applied to that base, so a restore brings
//! none of it back and agrees with the live store's row counts. SQLite always; PostgreSQL when
//! `TEST_DATABASE_URL` names a database.

use std::collections::BTreeMap;

use model::{Alarm, AlarmKind, AlarmStep, Observation, Outcome, Timestamp, Transit, TransitState};
use store::{Commit, LoggedInput, PgStore, SqliteStore, Store, incremental};

const NAME: &str = "Gulnara Retainova";
const CONTACT: &str = "+7 727 000 1111";

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn transit(id: &str, device: &str) -> Transit {
    serde_json::from_value(serde_json::json!({
        "id": id, "device": device,
        "driver": {"nationality": "KZ", "name": NAME, "contact": CONTACT},
        "cargo": [{"type": "textiles", "quantity": 10, "unit": "PCE"}]
    }))
    .unwrap()
}

fn obs(device: &str, at: &str, seq: u64) -> Observation {
    serde_json::from_value(serde_json::json!({
        "device": device, "t": at, "lat": 29.31, "lon": 120.07, "lock": "locked", "seq": seq
    }))
    .unwrap()
}

/// Declares a transit, records `n` reports of its device from `first_seq` on, and closes it at
/// `closed`; returns the next free input sequence number.
fn journey(s: &mut dyn Store, id: &str, first_seq: i64, n: u64, closed: &str) -> i64 {
    let device = format!("D-{id}");
    let mut inputs = vec![(
        first_seq,
        LoggedInput::Declare {
            at: t("2026-01-10T08:00:00Z"),
            transit: Box::new(transit(id, &device)),
        },
    )];
    for i in 0..n {
        inputs.push((
            first_seq + 1 + i as i64,
            LoggedInput::Observation {
                observation: obs(&device, &format!("2026-01-10T09:{:02}:00Z", i % 60), i),
            },
        ));
    }
    let states = [(id.parse().unwrap(), TransitState::Closed, t(closed))];
    s.commit(&Commit {
        inputs: &inputs,
        states: &states,
        ..Commit::default()
    })
    .unwrap();
    first_seq + 1 + n as i64
}

/// An alarm with a photo, closed at `closed` (left open when `None`).
fn alarm_with_photo(s: &mut dyn Store, transit: &str, closed: Option<&str>) {
    let alarm = Alarm {
        transit: transit.parse().unwrap(),
        device: "D1".parse().unwrap(),
        kind: AlarmKind::Tamper,
        sensor: None,
        t: t("2026-01-10T10:00:00Z"),
        lat: None,
        lon: None,
        grade: 4,
        detail: "test".into(),
        evidence: vec![],
    };
    let ids = s
        .commit(&Commit {
            alarms: &[alarm],
            ..Commit::default()
        })
        .unwrap();
    let meta = store::Attachment {
        id: 0,
        alarm: ids[0],
        at: t("2026-01-10T10:30:00Z"),
        actor: "patrol.7".into(),
        name: "seal.jpg".into(),
        content_type: "image/jpeg".into(),
        sha256: "ab".repeat(32),
        size_bytes: 0,
    };
    s.add_attachment(&meta, b"\xff\xd8 a photo").unwrap();
    let Some(closed) = closed else { return };
    for step in [
        AlarmStep::Acknowledge,
        AlarmStep::Resolve(Outcome::FalseAlarm),
        AlarmStep::Close,
    ] {
        s.handle_alarm(ids[0], step, "officer", t(closed), None)
            .unwrap();
    }
}

/// Runs every retention class to the end, with `now` far after everything above.
fn retain_everything(s: &mut dyn Store) -> (u64, usize, u64) {
    let before = t("2026-06-01T00:00:00Z");
    let mut purged = 0;
    let mut after = 0;
    loop {
        let (n, next) = s.purge_observations(before, after, 7).unwrap();
        purged += n;
        match next {
            Some(a) => after = a,
            None => break,
        }
    }
    let mut erased = 0;
    loop {
        let ids = s.erase_personal_data(before, before, 1).unwrap();
        if ids.is_empty() {
            break;
        }
        erased += ids.len();
    }
    let files = s.purge_attachments(before, 100).unwrap();
    (purged, erased, files)
}

/// The scenario on one backend; `base` makes a copy of the live store (the full backup),
/// `increment` takes an increment of the live store above the marks and applies it to the
/// copy, and `copy` opens the copy.
fn drill(
    live: &mut dyn Store,
    base: &dyn Fn(),
    increment: &dyn Fn(&BTreeMap<String, i64>),
    marks: &dyn Fn() -> BTreeMap<String, i64>,
    copy: &dyn Fn() -> Box<dyn Store>,
) {
    let next = journey(live, "T-A", 1, 30, "2026-01-10T12:00:00Z");
    let next = journey(live, "T-B", next, 30, "2026-01-11T12:00:00Z");
    alarm_with_photo(live, "T-A", Some("2026-01-12T00:00:00Z"));
    // A newer file of an alarm still open: kept, and the newest row is never retention's (on
    // SQLite its id would be given again).
    alarm_with_photo(live, "T-B", None);
    base();
    let marks = marks();
    // After the base: retention takes what it may, and more comes in.
    let (purged, erased, files) = retain_everything(live);
    assert!(purged > 0, "old reports purged");
    assert_eq!((erased, files), (2, 1));
    journey(live, "T-C", next, 5, "2026-11-20T12:00:00Z");
    increment(&marks);

    let mut restored = copy();
    let want: BTreeMap<String, i64> = live.table_counts().unwrap().into_iter().collect();
    let got: BTreeMap<String, i64> = restored.table_counts().unwrap().into_iter().collect();
    for (table, n) in &want {
        if incremental::AS_IN_BASE.contains(&table.as_str()) {
            continue;
        }
        assert_eq!(got.get(table), Some(n), "table {table}");
    }
    for id in ["T-A", "T-B"] {
        let driver = restored.transit(id).unwrap().transit.driver.unwrap();
        assert_eq!(driver.name.0, store::retention::ERASED, "{id}");
        assert!(driver.contact.is_none(), "{id}");
    }
    // The newer transit keeps its driver; no declaration in the restored log names the old
    // ones' driver any more.
    let c = restored.transit("T-C").unwrap().transit.driver.unwrap();
    assert_eq!(c.name.0, NAME);
    let declared: Vec<String> = restored
        .inputs_after(0, 1000)
        .unwrap()
        .into_iter()
        .filter_map(|(_, i)| match i {
            LoggedInput::Declare { transit, .. } => {
                Some(format!("{}={}", transit.id, transit.driver.unwrap().name.0))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        declared,
        [
            format!("T-A={}", store::retention::ERASED),
            format!("T-B={}", store::retention::ERASED),
            format!("T-C={NAME}"),
        ]
    );
}

#[test]
fn sqlite_restore_keeps_what_retention_took_out() {
    let dir = std::env::temp_dir().join(format!("sealwatch-retain-inc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (db, copy_db, inc) = (
        dir.join("live.db"),
        dir.join("copy.db"),
        dir.join("increment.db"),
    );
    let mut live = SqliteStore::open(&db).unwrap();
    // The store is shared with the closures through a raw snapshot call on a second handle.
    let snap = SqliteStore::open(&db).unwrap();
    drill(
        &mut live,
        &|| snap.snapshot_into(&copy_db).unwrap(),
        &|marks| {
            incremental::sqlite_export(&db, &inc, marks).unwrap();
            incremental::sqlite_apply(&copy_db, &inc).unwrap();
        },
        &|| incremental::sqlite_high_water(&copy_db).unwrap(),
        &|| Box::new(SqliteStore::open(&copy_db).unwrap()),
    );
    let raw = std::fs::read(&copy_db).unwrap();
    let found = |s: &str| raw.windows(s.len()).filter(|w| *w == s.as_bytes()).count();
    // The name is left only in the newer transit's row and declaration.
    assert_eq!(found(CONTACT), 2, "contact: T-C's row and input only");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn postgresql_restore_keeps_what_retention_took_out() {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL retention increment skipped");
        return;
    };
    let pid = std::process::id();
    let (live_schema, copy_schema) = (format!("retain_live_{pid}"), format!("retain_copy_{pid}"));
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    for s in [&live_schema, &copy_schema] {
        admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"))
            .unwrap();
    }
    let mut live = PgStore::connect_in_schema(&url, &live_schema).unwrap();
    let dir = std::env::temp_dir().join(format!("sealwatch-retain-pg-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (u, ls, cs) = (url.clone(), live_schema.clone(), copy_schema.clone());
    // The base: the copy schema migrated, then every table's rows copied over.
    let base = move || {
        let mut copy = PgStore::connect_in_schema(&u, &cs).unwrap();
        let tables: Vec<String> = copy
            .client()
            .query(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
                &[&cs],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let c = copy.client();
        for table in tables {
            c.batch_execute(&format!(
                "DELETE FROM {cs}.{table}; INSERT INTO {cs}.{table} SELECT * FROM {ls}.{table}"
            ))
            .unwrap();
        }
    };
    let (u, ls, cs, d) = (
        url.clone(),
        live_schema.clone(),
        copy_schema.clone(),
        dir.clone(),
    );
    let increment = move |marks: &BTreeMap<String, i64>| {
        let mut from = PgStore::connect_in_schema(&u, &ls).unwrap();
        let (_, files) = incremental::pg_export(from.client(), &d, marks).unwrap();
        let mut to = PgStore::connect_in_schema(&u, &cs).unwrap();
        incremental::pg_apply(to.client(), &d, &files).unwrap();
    };
    let (u, cs) = (url.clone(), copy_schema.clone());
    let marks = move || {
        let mut copy = PgStore::connect_in_schema(&u, &cs).unwrap();
        incremental::pg_high_water(copy.client()).unwrap()
    };
    let (u, cs) = (url.clone(), copy_schema.clone());
    drill(&mut live, &base, &increment, &marks, &|| {
        Box::new(PgStore::connect_in_schema(&u, &cs).unwrap())
    });
    drop(live);
    for s in [&live_schema, &copy_schema] {
        let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
