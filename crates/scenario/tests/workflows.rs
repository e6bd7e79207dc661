//! Declared checkpoints, quick-mode gates and multimodal legs (issue 7): the cases the corpus
//! files do not show on their own, each against a small scenario written here.

use serde_json::{Value, json};

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Replays a scenario given as JSON: every alarm and event, as JSON values.
fn run(scenario: &Value) -> Vec<Value> {
    let s = scenario::parse(&scenario.to_string()).unwrap_or_else(|e| panic!("{e}"));
    scenario::replay_lines(&s, true)
        .unwrap()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn corpus(name: &str) -> Value {
    let path = root()
        .join("testdata/scenarios")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `(kind or event, t)` of every line, for compact comparisons.
fn what(lines: &[Value]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| {
            let k = l.get("kind").or_else(|| l.get("event")).unwrap();
            (
                k.as_str().unwrap().to_owned(),
                l["t"].as_str().unwrap()[11..16].to_owned(),
            )
        })
        .collect()
}

fn alarms(lines: &[Value]) -> Vec<(String, String)> {
    what(
        &lines
            .iter()
            .filter(|l| l.get("kind").is_some())
            .cloned()
            .collect::<Vec<_>>(),
    )
}

fn pair(kind: &str, hhmm: &str) -> (String, String) {
    (kind.to_owned(), hhmm.to_owned())
}

/// Automatic unseals over arrival gate reads that decided something: what the service reports
/// as quick mode's rate, computed from the events alone.
fn automatic_unseal_rate(lines: &[Value]) -> (usize, usize) {
    let by_gate = |event: &str| {
        lines
            .iter()
            .filter(|l| l["event"] == event && l.get("reader").is_some())
            .count()
    };
    let automatic = by_gate("unseal_authorized");
    (automatic, automatic + by_gate("gate_hold"))
}

/// A straight road from DEP to DST with a checkpoint halfway; D1 reports every 10 minutes and
/// arrives at 09:40.
fn base(transit: Value, reads: Value, actions: Value) -> Value {
    let zone = |id: &str, kind: &str, lon: f64| {
        json!({"id": id, "kind": kind, "area": {"type": "Point", "coordinates": [lon, 29.3]},
               "radius_m": 1000})
    };
    let mut obs = Vec::new();
    // From 08:00 at DEP to 09:40 in DST, where it stays.
    for i in 0..=11 {
        let m = 8 * 60 + 10 * i;
        obs.push(
            json!({"device": "D1", "t": format!("2026-11-25T{:02}:{:02}:00Z", m / 60, m % 60),
                        "lat": 29.3, "lon": (120.0 + 0.1 * f64::from(i)).min(121.0),
                        "lock": "locked"}),
        );
    }
    json!({
        "zones": [zone("DEP", "office", 120.0), zone("CHK", "checkpoint", 120.5),
                  zone("REST", "rest_area", 120.7), zone("DST", "office", 121.0)],
        "transits": [transit],
        "actions": actions,
        "reads": reads,
        "observations": obs,
        "until": "2026-11-25T12:00:00Z"
    })
}

fn transit(extra: Value) -> Value {
    let mut t = json!({"id": "T1", "device": "D1", "departure": "DEP", "destination": "DST",
        "route": {"type": "LineString", "coordinates": [[120.0, 29.3], [121.0, 29.3]]},
        "deadline": "2026-11-25T11:00:00Z"});
    t.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    t
}

#[test]
fn a_checkpoint_passed_by_a_fix_raises_nothing_and_says_so() {
    let s = base(
        transit(json!({"sealed_at": "2026-11-25T08:00:00Z",
                       "checkpoints": [{"zone": "CHK", "within": "PT1H"}]})),
        json!([]),
        json!([]),
    );
    let lines = run(&s);
    assert_eq!(alarms(&lines), []);
    let passed: Vec<_> = lines
        .iter()
        .filter(|l| l["event"] == "checkpoint_passed")
        .collect();
    assert_eq!(passed.len(), 1);
    assert_eq!(passed[0]["t"], "2026-11-25T08:50:00Z");
    assert!(
        passed[0]["detail"]
            .as_str()
            .unwrap()
            .contains("passed in time")
    );
}

#[test]
fn a_missed_checkpoint_is_one_alarm_beside_a_reads_mismatch() {
    // A passive tag whose one read (at the checkpoint, late) finds the seal broken: the timer's
    // missed-checkpoint alarm and the read's mismatch are two conditions, two alarms.
    let mut s = base(
        transit(
            json!({"sealed_at": "2026-11-25T08:00:00Z", "device_data": {"plate": "A1"},
                       "checkpoints": [{"zone": "CHK", "by": "2026-11-25T09:00:00Z"}]}),
        ),
        json!([{"t": "2026-11-25T09:20:00Z", "reader": "R1", "zone": "CHK", "device": "D1",
                "intact": false, "data": {"plate": "A1"}}]),
        json!([]),
    );
    s["observations"] = json!([]);
    let lines = run(&s);
    assert_eq!(
        alarms(&lines),
        [
            pair("checkpoint_mismatch", "09:00"),
            pair("checkpoint_mismatch", "09:20"),
            pair("journey_timeout", "11:00"),
        ]
    );
    let missed = &lines.iter().find(|l| l.get("kind").is_some()).unwrap();
    assert_eq!(
        missed["detail"],
        "checkpoint CHK not passed by 2026-11-25T09:00:00Z"
    );
    assert_eq!(missed["grade"], 3);
    let late = lines
        .iter()
        .find(|l| l["event"] == "checkpoint_passed")
        .unwrap();
    assert!(late["detail"].as_str().unwrap().contains("20 min after"));
}

#[test]
fn no_checkpoint_alarm_once_an_officer_has_unsealed() {
    let s = base(
        transit(json!({"sealed_at": "2026-11-25T08:00:00Z",
                       "checkpoints": [{"zone": "REST", "within": "PT3H"}]})),
        json!([]),
        json!([{"t": "2026-11-25T10:00:00Z", "transit": "T1", "action": "unseal"}]),
    );
    // REST is a rest area, which is no checkpoint: refused with its path.
    let err = scenario::parse(&s.to_string()).unwrap_err().to_string();
    assert_eq!(
        err,
        "transits[0].checkpoints[0].zone: zone REST is a rest_area; a checkpoint is a \
         checkpoint, border or office zone"
    );
    let mut s = s;
    s["transits"][0]["checkpoints"] = json!([{"zone": "DST", "within": "PT3H"},
                                               {"zone": "CHK", "by": "2026-11-25T10:30:00Z"}]);
    // D1 passes CHK at 08:50 and is in DST from 09:40; the first checkpoint (DST itself) is
    // passed there, the second at 08:50. Unsealed at 10:00: nothing is missed.
    let lines = run(&s);
    assert_eq!(alarms(&lines), []);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["event"] == "checkpoint_passed")
            .count(),
        2
    );
    assert!(lines.iter().any(|l| l["event"] == "unsealed"));
    // Never in DST, but closed by an officer at 09:50, before the checkpoint's 11:00: nothing
    // is missed (nor is the 11:00 deadline).
    let mut s2 = s.clone();
    s2["observations"].as_array_mut().unwrap().truncate(9);
    s2["actions"] = json!([{"t": "2026-11-25T09:50:00Z", "transit": "T1", "action": "close"}]);
    assert_eq!(alarms(&run(&s2)), []);
}

#[test]
fn a_departure_gate_seals_only_a_transit_not_yet_sealed() {
    let gate = |t: &str| json!({"t": t, "reader": "G1", "zone": "DEP", "device": "D1", "gate": "departure"});
    // Not yet sealed: the gate seals it, and names itself.
    let lines = run(&base(
        transit(json!({})),
        json!([gate("2026-11-25T08:00:00Z")]),
        json!([]),
    ));
    let sealed = lines.iter().find(|l| l["event"] == "sealed").unwrap();
    assert_eq!(sealed["reader"], "G1");
    assert_eq!(sealed["t"], "2026-11-25T08:00:00Z");
    // Sealed already: the gate's read is only a read.
    let lines = run(&base(
        transit(json!({"sealed_at": "2026-11-25T08:00:00Z"})),
        json!([gate("2026-11-25T08:05:00Z")]),
        json!([]),
    ));
    let sealed: Vec<_> = lines.iter().filter(|l| l["event"] == "sealed").collect();
    assert_eq!(sealed.len(), 1);
    assert!(sealed[0].get("reader").is_none());
    // Another device's gate read seals nothing.
    let mut other = gate("2026-11-25T08:00:00Z");
    other["device"] = json!("D9");
    let lines = run(&base(transit(json!({})), json!([other]), json!([])));
    assert_eq!(lines, Vec::<Value>::new());
    // A gate somewhere else than the transit's departure (the checkpoint's reader claiming
    // to be a departure gate) seals nothing, and says so.
    let mut elsewhere = gate("2026-11-25T08:00:00Z");
    elsewhere["zone"] = json!("CHK");
    let lines = run(&base(transit(json!({})), json!([elsewhere]), json!([])));
    assert!(lines.iter().all(|l| l["event"] != "sealed"), "{lines:?}");
    let refused = lines
        .iter()
        .find(|l| l["event"] == "action_rejected")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(refused["reader"], "G1");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("not at the transit's departure"),
        "{refused}"
    );
}

#[test]
fn an_arrival_gate_away_from_the_destination_holds_and_arrives_nothing() {
    let mut s = base(
        transit(json!({"sealed_at": "2026-11-25T08:00:00Z"})),
        json!([{"t": "2026-11-25T08:50:00Z", "reader": "G9", "zone": "CHK", "device": "D1",
                "gate": "arrival"}]),
        json!([]),
    );
    s["observations"].as_array_mut().unwrap().truncate(6);
    let lines = run(&s);
    let hold = lines
        .iter()
        .find(|l| l["event"] == "gate_hold")
        .expect("held");
    assert!(
        hold["detail"]
            .as_str()
            .unwrap()
            .contains("not at the destination")
    );
    assert!(!lines.iter().any(|l| l["event"] == "arrived"));
    assert_eq!(automatic_unseal_rate(&lines), (0, 1));
}

#[test]
fn a_missed_checkpoint_holds_a_quick_unseal() {
    let mut s = base(
        transit(json!({"sealed_at": "2026-11-25T08:00:00Z",
                       "checkpoints": [{"zone": "CHK", "by": "2026-11-25T08:30:00Z"}]})),
        json!([{"t": "2026-11-25T09:45:00Z", "reader": "G9", "zone": "DST", "device": "D1",
                "gate": "arrival"}]),
        json!([]),
    );
    // D1 never gets near CHK: it reports from DEP only, until the gate reads it.
    for o in s["observations"].as_array_mut().unwrap() {
        o["lon"] = json!(120.0);
    }
    let lines = run(&s);
    let hold = lines.iter().find(|l| l["event"] == "gate_hold").unwrap();
    assert_eq!(
        hold["detail"],
        "quick mode held at gate G9 at DST for an officer: checkpoint_mismatch (grade 3, open)"
    );
    // The same with the threshold raised to 3: the gate authorises.
    s["transits"][0]["rules"] = json!({"quick_unseal_max_grade": 3});
    let lines = run(&s);
    assert_eq!(automatic_unseal_rate(&lines), (1, 1));
    let arrived = lines.iter().find(|l| l["event"] == "arrived").unwrap();
    assert_eq!(arrived["detail"], "arrival gate G9");
}

#[test]
fn the_automatic_unseal_rate_comes_from_the_events() {
    let clean = run(&corpus("quick-mode-clean-auto-seal-auto-unseal"));
    assert_eq!(automatic_unseal_rate(&clean), (1, 1));
    let held = run(&corpus("quick-mode-held-then-officer-authorises"));
    // The officer's authorisation is not the gate's.
    assert_eq!(automatic_unseal_rate(&held), (0, 1));
    assert_eq!(
        held.iter()
            .filter(|l| l["event"] == "unseal_authorized")
            .count(),
        1
    );
    let two = run(&corpus("quick-mode-passive-gate-read-is-the-arrival"));
    assert_eq!(automatic_unseal_rate(&two), (1, 2));
}

#[test]
fn a_legs_rules_apply_on_that_leg_only() {
    let s = corpus("multimodal-rail-then-road-leg-rules");
    let lines = run(&s);
    assert_eq!(alarms(&lines), [pair("route_deviation", "13:20")]);
    let legs: Vec<_> = what(&lines)
        .into_iter()
        .filter(|(k, _)| k.starts_with("leg_"))
        .collect();
    assert_eq!(
        legs,
        [
            pair("leg_started", "06:00"),
            pair("leg_completed", "12:30"),
            pair("leg_started", "12:30"),
            pair("leg_completed", "14:00"),
        ]
    );
    // Without the rail leg's own rules, the transit's apply there too: the five hours without
    // coverage are a communication loss, and 2 km off the track is outside a 1 km corridor.
    let mut plain = s.clone();
    plain["transits"][0]["legs"][0]
        .as_object_mut()
        .unwrap()
        .remove("rules");
    assert_eq!(
        alarms(&run(&plain)),
        [
            pair("communication_loss", "11:00"),
            pair("route_deviation", "12:05"),
            pair("route_deviation", "13:20"),
        ]
    );
}

#[test]
fn the_corridor_is_the_union_of_the_legs_routes() {
    // Without the transit's own route, a fix on either leg's route is inside; one far from
    // both is not.
    let s = corpus("multimodal-rail-then-road-leg-rules");
    assert!(s["transits"][0].get("route").is_none());
    let mut far = s.clone();
    let obs = far["observations"].as_array_mut().unwrap();
    for o in obs.iter_mut() {
        if o["t"] == "2026-11-25T06:30:00Z" || o["t"] == "2026-11-25T07:00:00Z" {
            o["lat"] = json!(29.4);
        }
    }
    let a = alarms(&run(&far));
    assert_eq!(a[0], pair("route_deviation", "07:00"));
}

#[test]
fn an_arrival_gate_after_an_officers_authorisation_arrives_and_decides_nothing() {
    // Inspected and authorised en route; the gate at the destination still records the
    // arrival, but the officer's decision stands: neither a gate authorisation nor a hold.
    let mut s = base(
        transit(json!({"sealed_at": "2026-11-25T08:00:00Z", "device_data": {"plate": "A1"}})),
        json!([{"t": "2026-11-25T09:45:00Z", "reader": "G9", "zone": "DST", "device": "D1",
                "gate": "arrival", "data": {"plate": "A1"}}]),
        json!([{"t": "2026-11-25T09:00:00Z", "transit": "T1", "action": "authorize_unseal"}]),
    );
    s["observations"] = json!([]);
    let lines = run(&s);
    let arrived = lines.iter().find(|l| l["event"] == "arrived").unwrap();
    assert_eq!(arrived["detail"], "arrival gate G9");
    assert_eq!(automatic_unseal_rate(&lines), (0, 0));
}

#[test]
fn a_leg_with_a_shorter_communication_loss_takes_effect_when_it_starts() {
    // The rail leg allows six hours of silence, the road leg twenty minutes. The device goes
    // quiet ten minutes into the road leg (last report 12:40): communication loss at 13:00,
    // not six hours after the last report the rail leg's timer was counting from.
    let mut s = corpus("multimodal-rail-then-road-leg-rules");
    s["transits"][0]["legs"][1]["rules"] = json!({"comm_loss_after": "PT20M"});
    s["observations"]
        .as_array_mut()
        .unwrap()
        .retain(|o| o["t"].as_str().unwrap() <= "2026-11-25T12:40:00Z");
    let lines = run(&s);
    // Its last known state is stopped in the transfer yard (overtime after two hours there),
    // and it never arrives.
    assert_eq!(
        alarms(&lines),
        [
            pair("communication_loss", "13:00"),
            pair("overtime_stay", "14:30"),
            pair("journey_timeout", "16:00"),
        ]
    );
}
