//! `sealwatch replay` and `sealwatch validate` as a user runs them on the checkpoint, quick-mode
//! and multimodal scenarios: the alarm lines of the corpus expectations, exit 0; invalid files
//! exit 2 naming the path.

use std::path::PathBuf;
use std::process::Command;

fn file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn sealwatch(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const SCENARIOS: [&str; 7] = [
    "checkpoint-missed-active-passed-late-by-fix",
    "checkpoint-missed-passive-reads-only-journey-timeout",
    "quick-mode-clean-auto-seal-auto-unseal",
    "quick-mode-held-by-illegal-opening",
    "quick-mode-held-then-officer-authorises",
    "quick-mode-passive-gate-read-is-the-arrival",
    "multimodal-rail-then-road-leg-rules",
];

#[test]
fn replay_prints_the_expected_alarms() {
    for name in SCENARIOS {
        let json = file(&format!("testdata/scenarios/{name}.json"));
        let expected = std::fs::read_to_string(json.with_extension("expected")).unwrap();
        let (code, stdout, stderr) = sealwatch(&["replay", json.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{name}: {stderr}");
        let alarms: Vec<&str> = expected
            .lines()
            .filter(|l| l.contains("\"kind\":"))
            .collect();
        assert_eq!(stdout.lines().collect::<Vec<_>>(), alarms, "{name}");
        let (code, events, _) = sealwatch(&["replay", "--events", json.to_str().unwrap()]);
        assert_eq!(code, Some(0));
        assert_eq!(events, expected, "{name}");
    }
}

#[test]
fn gate_events_name_the_reader() {
    let json = file("testdata/scenarios/quick-mode-held-by-illegal-opening.json");
    let (_, stdout, _) = sealwatch(&["replay", "--events", json.to_str().unwrap()]);
    let hold: serde_json::Value = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["event"] == "gate_hold")
        .unwrap();
    assert_eq!(hold["reader"], "R-G9");
}

#[test]
fn validate_refuses_naming_the_path() {
    for (name, message) in [
        (
            "checkpoint-unknown-zone",
            "transits[1].checkpoints[1].zone: unknown zone \"CHK-9\"",
        ),
        (
            "legs-not-connected",
            "transits[0].legs[1].from: expected CHK-1, where legs[0] ends",
        ),
        (
            "quick-unseal-grade-out-of-range",
            "transits[0].rules.quick_unseal_max_grade: 5 is not a grade",
        ),
    ] {
        let json = file(&format!("testdata/invalid/{name}.json"));
        let (code, _, stderr) = sealwatch(&["validate", json.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{name}");
        assert!(stderr.contains(message), "{name}: {stderr}");
    }
    let ok = file("testdata/scenarios/multimodal-rail-then-road-leg-rules.json");
    let (code, stdout, _) = sealwatch(&["validate", ok.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("valid"), "{stdout}");
}
