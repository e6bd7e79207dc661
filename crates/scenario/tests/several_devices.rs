//! Several devices per transit (issue 7): a train of containers, each with its e-lock. The
//! journey is shared, each seal is supervised on its own, and every alarm names its device.

use serde_json::{Value, json};

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus(name: &str) -> Value {
    let path = root()
        .join("testdata/scenarios")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn run(scenario: &Value) -> Vec<Value> {
    let s = scenario::parse(&scenario.to_string()).unwrap_or_else(|e| panic!("{e}"));
    scenario::replay_lines(&s, true)
        .unwrap()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn refusal(scenario: &Value) -> String {
    scenario::parse(&scenario.to_string())
        .map(|_| "accepted".to_owned())
        .unwrap_or_else(|e| e.to_string())
}

/// `(kind or event, device, hh:mm)` of every line.
fn what(lines: &[Value]) -> Vec<(String, String, String)> {
    lines
        .iter()
        .map(|l| {
            let k = l.get("kind").or_else(|| l.get("event")).unwrap();
            (
                k.as_str().unwrap().to_owned(),
                l["device"].as_str().unwrap().to_owned(),
                l["t"].as_str().unwrap()[11..16].to_owned(),
            )
        })
        .collect()
}

fn line(kind: &str, device: &str, hhmm: &str) -> (String, String, String) {
    (kind.to_owned(), device.to_owned(), hhmm.to_owned())
}

fn alarms(lines: &[Value]) -> Vec<(String, String, String)> {
    what(
        &lines
            .iter()
            .filter(|l| l.get("kind").is_some())
            .cloned()
            .collect::<Vec<_>>(),
    )
}

#[test]
fn the_opened_container_is_named_and_the_last_seal_unseals() {
    let lines = run(&corpus("multidev-rail-one-container-opened"));
    assert_eq!(
        alarms(&lines),
        vec![line("illegal_opening", "EL-1002", "06:51")]
    );
    let w = what(&lines);
    assert!(
        w.contains(&line("device_unsealed", "EL-1001", "08:10")),
        "{w:?}"
    );
    assert!(w.contains(&line("unsealed", "EL-1002", "08:16")), "{w:?}");
    // The journey's events name the transit's device, whichever device's fix decided them.
    assert!(w.contains(&line("departed", "EL-1001", "06:20")), "{w:?}");
    assert!(w.contains(&line("arrived", "EL-1001", "07:45")), "{w:?}");
}

#[test]
fn each_device_has_its_own_communication_loss() {
    let lines = run(&corpus("multidev-rail-communication-loss-one-device"));
    assert_eq!(
        alarms(&lines),
        vec![line("communication_loss", "EL-1002", "07:01")]
    );
    assert!(what(&lines).contains(&line("alarm_cleared", "EL-1002", "07:26")));
}

#[test]
fn reads_are_checked_against_their_own_device_data() {
    let lines = run(&corpus("multidev-rail-passive-tags-one-mismatch"));
    assert_eq!(
        alarms(&lines),
        vec![line("checkpoint_mismatch", "TAG-3302", "07:00")]
    );
}

#[test]
fn an_empty_devices_list_is_a_single_device() {
    // The contract's single device, with and without an explicit empty list: the same output.
    for name in [
        "illegal-opening-yiwu-ningbo",
        "communication-loss-mombasa-nairobi",
    ] {
        let plain = corpus(name);
        let mut listed = plain.clone();
        for t in listed["transits"].as_array_mut().unwrap() {
            t["devices"] = json!([]);
        }
        assert_eq!(run(&plain), run(&listed), "{name}");
    }
}

#[test]
fn a_seal_opened_with_authorisation_says_nothing_more() {
    // After EL-1001 is unsealed at the destination it is off its container: a later report of
    // it (unlocked, or silent for hours) raises nothing while EL-1002 is still sealed.
    let mut s = corpus("multidev-rail-one-container-opened");
    let obs = s["observations"].as_array_mut().unwrap();
    obs.retain(|o| {
        !(o["device"] == "EL-1002"
            && o["lock"] == "unlocked"
            && o["t"].as_str().unwrap() > "2026-12-01T08:00:00Z")
    });
    s["until"] = json!("2026-12-01T14:00:00Z");
    let lines = run(&s);
    let w = what(&lines);
    assert!(
        w.contains(&line("device_unsealed", "EL-1001", "08:10")),
        "{w:?}"
    );
    assert!(!w.iter().any(|l| l.0 == "unsealed"), "{w:?}");
    // EL-1002 still seals its container: its communication loss is measured (4 h default,
    // from its last report at 08:11),
    // EL-1001's is not.
    assert_eq!(
        alarms(&lines),
        vec![
            line("illegal_opening", "EL-1002", "06:51"),
            line("communication_loss", "EL-1002", "12:11"),
        ]
    );
}

#[test]
fn an_opening_of_any_device_before_arrival_is_illegal() {
    let mut s = corpus("multidev-rail-one-container-opened");
    for o in s["observations"].as_array_mut().unwrap() {
        if o["device"] == "EL-1001" && o["t"] == "2026-12-01T07:00:00Z" {
            o["lock"] = json!("unlocked");
        }
    }
    let lines = run(&s);
    assert_eq!(
        alarms(&lines),
        vec![
            line("illegal_opening", "EL-1002", "06:51"),
            line("illegal_opening", "EL-1001", "07:00"),
        ]
    );
}

#[test]
fn an_officers_unseal_unseals_every_seal() {
    let mut s = corpus("multidev-rail-one-container-opened");
    s["actions"] = json!([
        {"t": "2026-12-01T08:05:00Z", "transit": "T-RAIL-0101", "action": "unseal"}
    ]);
    let w = what(&run(&s));
    assert!(w.contains(&line("unsealed", "EL-1001", "08:05")), "{w:?}");
    assert!(!w.iter().any(|l| l.0 == "device_unsealed"), "{w:?}");
}

#[test]
fn gates_seal_at_any_device_and_decide_once() {
    let mut s = corpus("multidev-rail-passive-tags-one-mismatch");
    let t = &mut s["transits"][0];
    t.as_object_mut().unwrap().remove("sealed_at");
    s["actions"] = json!([]);
    s["reads"] = json!([
        {"t": "2026-12-01T06:00:00Z", "reader": "G-A", "zone": "KZ-TERM-A", "device": "TAG-3302",
         "intact": true, "gate": "departure",
         "data": {"container": "MSKU9070323", "seal": "KZ-SEAL-0002"}},
        {"t": "2026-12-01T06:00:10Z", "reader": "G-A", "zone": "KZ-TERM-A", "device": "TAG-3301",
         "intact": true, "gate": "departure",
         "data": {"container": "MSKU6042190", "seal": "KZ-SEAL-0001"}},
        {"t": "2026-12-01T08:00:00Z", "reader": "G-B", "zone": "KZ-TERM-B", "device": "TAG-3301",
         "intact": true, "gate": "arrival",
         "data": {"container": "MSKU6042190", "seal": "KZ-SEAL-0001"}},
        {"t": "2026-12-01T08:00:10Z", "reader": "G-B", "zone": "KZ-TERM-B", "device": "TAG-3302",
         "intact": true, "gate": "arrival",
         "data": {"container": "MSKU9070323", "seal": "KZ-SEAL-0002"}}
    ]);
    let w = what(&run(&s));
    let sealed: Vec<_> = w.iter().filter(|l| l.0 == "sealed").collect();
    assert_eq!(sealed, vec![&line("sealed", "TAG-3302", "06:00")], "{w:?}");
    let decided: Vec<_> = w
        .iter()
        .filter(|l| l.0 == "unseal_authorized" || l.0 == "gate_hold")
        .collect();
    assert_eq!(
        decided,
        vec![&line("unseal_authorized", "TAG-3301", "08:00")],
        "{w:?}"
    );
}

#[test]
fn validation_names_the_path() {
    let base = corpus("multidev-rail-one-container-opened");
    let mut s = base.clone();
    s["transits"][0]["devices"] = json!([{"id": "EL-1002"}, {"id": "EL-1003"}, {"id": "EL-1003"}]);
    assert_eq!(
        refusal(&s),
        "transits[0].devices[2].id: device \"EL-1003\" is listed twice (also devices[1])"
    );
    let mut s = base.clone();
    s["transits"][0]["devices"] = json!([{"id": "EL-1002"}, {"id": "EL-1001"}]);
    assert_eq!(
        refusal(&s),
        "transits[0].devices[1].id: device \"EL-1001\" is the transit's device already"
    );
    let mut s = base.clone();
    s["transits"][0]["devices"] = json!([{"container": "MSKU9070323"}]);
    assert!(
        refusal(&s).starts_with("transits[0].devices[0]: missing field `id`"),
        "{}",
        refusal(&s)
    );
    let mut s = base;
    let many: Vec<Value> = (0..255).map(|i| json!({"id": format!("X{i}")})).collect();
    s["transits"][0]["devices"] = json!(many);
    assert_eq!(
        refusal(&s),
        "transits[0].devices: 256 devices; a transit has at most 255"
    );
}

#[test]
fn the_supervisor_refuses_a_device_twice_on_one_transit() {
    let s = corpus("multidev-rail-one-container-opened");
    let mut t: model::Transit = serde_json::from_value(s["transits"][0].clone()).unwrap();
    t.devices.push(t.devices[0].clone());
    let zones: Vec<model::Zone> = serde_json::from_value(s["zones"].clone()).unwrap();
    let mut sup = supervisor::Supervisor::new(&zones).unwrap();
    let err = sup.declare(&t).unwrap_err();
    assert_eq!(
        err.to_string(),
        "transit T-RAIL-0101: devices[1].id: device EL-1002 seals this transit twice"
    );
}
