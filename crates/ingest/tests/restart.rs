//! Restarts: the pipeline rebuilds the supervisor from the input log, so a restart neither
//! repeats an alarm nor misses one, and timers that expired while it was down fire once.

use std::path::{Path, PathBuf};

use ingest::{Pipeline, Submission, Verdict};
use model::Timestamp;
use store::{AlarmFilter, PageRequest, SqliteStore, Store};
use supervisor::{Input, Output};

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sealwatch-ingest-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("sealwatch.db")
}

fn open(path: &Path) -> Pipeline {
    Pipeline::open(Box::new(SqliteStore::open(path).unwrap())).unwrap()
}

fn stored_alarms(p: &mut Pipeline) -> Vec<String> {
    let page = PageRequest {
        after: None,
        limit: 100_000,
    };
    let mut v: Vec<String> = p
        .store()
        .alarms(&AlarmFilter::default(), page)
        .unwrap()
        .into_iter()
        .map(|r| serde_json::to_string(&r.alarm).unwrap())
        .collect();
    v.sort();
    v
}

fn submission(input: &Input<'_>) -> Submission {
    match input {
        Input::Observation(o) => Submission::Observation((*o).clone()),
        Input::Read(r) => Submission::Read((*r).clone()),
        Input::Action(a) => Submission::Action((*a).clone()),
        Input::Tick(_) => unreachable!("scenarios have no ticks"),
    }
}

/// Purges every observation retention may purge (all of a device's transits closed), however
/// recent, in small batches; says how many.
fn purge_all(db: &Path) -> u64 {
    let mut store = SqliteStore::open(db).unwrap();
    let (mut purged, mut after) = (0, 0);
    loop {
        let (n, next) = store
            .purge_observations(Timestamp::from_unix_ms(i64::MAX), after, 7)
            .unwrap();
        purged += n;
        match next {
            Some(next) => after = next,
            None => return purged,
        }
    }
}

/// Runs a scenario through the pipeline with two restarts on the way, retention purging what
/// it may before each, and compares the alarms in the store with a replay in one go. Returns
/// how many observations were purged.
fn check(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).unwrap();
    let s = scenario::parse(&text).unwrap();
    let expected: Vec<String> = {
        let mut v: Vec<String> = scenario::replay(&s)
            .unwrap()
            .into_iter()
            .filter_map(|o| match o {
                Output::Alarm(a) => Some(serde_json::to_string(&a).unwrap()),
                Output::Event(_) => None,
            })
            .collect();
        v.sort();
        v
    };

    let db = temp_db(path.file_stem().unwrap().to_str().unwrap());
    {
        let mut store = SqliteStore::open(&db).unwrap();
        for z in &s.zones {
            store.put_zone(z).unwrap();
        }
    }
    // The ingest clock is a day after the scenario, so no report is refused as coming from
    // the future.
    let last = s.observations.iter().map(|o| o.t).max().unwrap_or_default();
    let now = s
        .until
        .unwrap_or(last)
        .max(last)
        .plus(model::Duration::from_hours(24));
    let mut p = open(&db);
    let declared = p
        .submit(
            s.transits
                .iter()
                .map(|t| Submission::Declare(Box::new(t.clone())))
                .collect(),
            now,
        )
        .unwrap();
    assert!(
        declared.verdicts.iter().all(|v| *v == Verdict::Accepted),
        "{declared:?}"
    );

    let mut purged = 0;
    let inputs = scenario::ordered_inputs(&s);
    let third = inputs.len() / 3 + 1;
    for (i, part) in inputs.chunks(third).enumerate() {
        for batch in part.chunks(40) {
            let step = p
                .submit(batch.iter().map(submission).collect(), now)
                .unwrap();
            // Reports after a transit is closed are refused (the replay ignores them too).
            // So are reports of a device no transit has any more (another was paired).
            let refused = |v: &&Verdict| {
                matches!(v, Verdict::Rejected(why)
                    if !why.contains("is closed") && !why.contains("on no declared transit"))
            };
            if let Some(v) = step.verdicts.iter().find(refused) {
                return Err(format!("an input was refused: {v:?}"));
            }
        }
        // A restart between the parts: the supervisor is rebuilt from the store, after
        // retention has purged what it may.
        drop(p);
        purged += purge_all(&db);
        p = open(&db);
        assert!(i < 3);
    }
    if let Some(until) = s.until {
        p.tick(until).unwrap();
        // Ticking again, and after another restart, fires nothing new.
        assert!(p.tick(until).unwrap().outputs.is_empty());
        drop(p);
        purged += purge_all(&db);
        p = open(&db);
        assert!(
            p.tick(until).unwrap().outputs.is_empty(),
            "a restart fired a timer again"
        );
    }
    let got = stored_alarms(&mut p);
    if got != expected {
        let missing: Vec<_> = expected.iter().filter(|a| !got.contains(a)).collect();
        let extra: Vec<_> = got.iter().filter(|a| !expected.contains(a)).collect();
        return Err(format!(
            "{} alarms stored, {} expected\nmissing: {missing:#?}\nextra: {extra:#?}",
            got.len(),
            expected.len()
        ));
    }
    Ok(purged)
}

#[test]
fn restarts_neither_repeat_nor_miss_alarms_across_the_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/scenarios");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 30);
    let mut purged = 0;
    let mut failures = Vec::new();
    for p in &paths {
        match check(p) {
            Ok(n) => purged += n,
            Err(e) => failures.push(format!("{}: {e}", p.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Retention had something to purge in the scenarios where transits close.
    assert!(
        purged > 0,
        "nothing was purged: the purge was not exercised"
    );
}

#[test]
fn a_timer_that_expired_while_down_fires_once_at_start() {
    let s = scenario::parse(include_str!("../../../examples/contract-example.json")).unwrap();
    let db = temp_db("downtime");
    {
        let mut store = SqliteStore::open(&db).unwrap();
        for z in &s.zones {
            store.put_zone(z).unwrap();
        }
    }
    let t = |text: &str| -> Timestamp { text.parse().unwrap() };
    let mut p = open(&db);
    let now = t("2026-11-25T08:05:00Z");
    p.submit(
        s.transits
            .iter()
            .map(|tr| Submission::Declare(Box::new(tr.clone())))
            .collect(),
        now,
    )
    .unwrap();
    let step = p
        .submit(
            vec![Submission::Observation(s.observations[0].clone())],
            now,
        )
        .unwrap();
    assert_eq!(step.verdicts, [Verdict::Accepted]);
    // The same report again is a duplicate, and nothing is stored for it.
    let again = p
        .submit(
            vec![Submission::Observation(s.observations[0].clone())],
            now,
        )
        .unwrap();
    assert_eq!(again.verdicts, [Verdict::Duplicate]);
    drop(p); // down from 08:05 to 13:00: communication loss was due at 12:00

    let mut p = open(&db);
    let step = p.tick(t("2026-11-25T13:00:00Z")).unwrap();
    let kinds: Vec<_> = step
        .outputs
        .iter()
        .filter_map(|o| match o {
            Output::Alarm(a) => Some((a.kind.as_str(), a.t.to_string())),
            Output::Event(_) => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [("communication_loss", "2026-11-25T12:00:00Z".to_owned())]
    );
    assert_eq!(step.alarm_ids.len(), 1);
    drop(p);
    let mut p = open(&db);
    assert!(
        p.tick(t("2026-11-25T13:00:01Z"))
            .unwrap()
            .outputs
            .is_empty()
    );
    assert_eq!(stored_alarms(&mut p).len(), 1);
    // And the transit's state was stored with the alarm.
    assert_eq!(
        p.store().transit("T1").unwrap().state,
        model::TransitState::Sealed
    );
}

#[test]
fn bad_input_is_refused_with_the_field_named() {
    let s = scenario::parse(include_str!("../../../examples/contract-example.json")).unwrap();
    let db = temp_db("refusals");
    {
        let mut store = SqliteStore::open(&db).unwrap();
        for z in &s.zones {
            store.put_zone(z).unwrap();
        }
    }
    let mut p = open(&db);
    let now: Timestamp = "2026-11-25T08:05:00Z".parse().unwrap();
    p.submit(
        vec![Submission::Declare(Box::new(s.transits[0].clone()))],
        now,
    )
    .unwrap();
    let obs =
        |json: serde_json::Value| Submission::Observation(serde_json::from_value(json).unwrap());
    let step = p
        .submit(
            vec![
                obs(serde_json::json!({"device": "D9", "t": "2026-11-25T08:01:00Z"})),
                obs(serde_json::json!({"device": "D1", "t": "2026-11-25T09:00:00Z"})),
                obs(serde_json::json!({"device": "D1", "t": "2026-11-25T08:01:00Z", "lat": 91, "lon": 120})),
                obs(serde_json::json!({"device": "D1", "t": "2026-11-25T08:02:00Z", "lat": 29.3, "lon": 120.07})),
                Submission::Declare(Box::new(s.transits[0].clone())),
            ],
            now,
        )
        .unwrap();
    let texts: Vec<String> = step
        .verdicts
        .iter()
        .map(|v| match v {
            Verdict::Rejected(why) => why.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        texts,
        [
            "device: D9 is on no declared transit",
            "t: 2026-11-25T09:00:00Z is in the future (now 2026-11-25T08:05:00Z)",
            "lat: must be between -90 and 90",
            "Accepted",
            "id: transit T1 is already declared",
        ]
    );
    // Only the accepted report is in the store.
    let stored = p
        .store()
        .observations("D1", store::TimeRange::default(), 100)
        .unwrap();
    assert_eq!(stored.len(), 1);
}
