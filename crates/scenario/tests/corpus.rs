//! The scenario corpus: every `*.json` under `testdata/scenarios/` and `examples/` is replayed
//! and its output (alarms and events, `sealwatch replay --events`) compared with the `.expected`
//! file beside it. Every `*.json` under `testdata/invalid/` must be refused with the message in
//! its `.expected` file.
//!
//! `UPDATE_EXPECT=1 cargo test -p scenario --test corpus` rewrites the expectations; review the
//! diff before committing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v
}

fn update() -> bool {
    std::env::var_os("UPDATE_EXPECT").is_some()
}

/// Compares `actual` with the file, or rewrites it under UPDATE_EXPECT. Returns a failure text.
fn check(expected_path: &Path, actual: &str) -> Option<String> {
    if update() {
        std::fs::write(expected_path, actual).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(expected_path).unwrap_or_default();
    if expected == actual {
        return None;
    }
    let mut msg = format!("{} differs:\n", expected_path.display());
    let (e, a): (Vec<_>, Vec<_>) = (expected.lines().collect(), actual.lines().collect());
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (
            e.get(i).copied().unwrap_or("<none>"),
            a.get(i).copied().unwrap_or("<none>"),
        );
        if x != y {
            msg += &format!("  line {}:\n    expected {x}\n    actual   {y}\n", i + 1);
            break;
        }
    }
    Some(msg)
}

fn replay_file(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let s = scenario::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines = scenario::replay_lines(&s, true).unwrap();
    // The replay must not depend on anything but its input.
    assert_eq!(
        lines,
        scenario::replay_lines(&s, true).unwrap(),
        "{}: replay is not deterministic",
        path.display()
    );
    lines
}

#[test]
fn scenarios_replay_to_their_expectations() {
    let mut failures = Vec::new();
    let mut n = 0;
    for dir in ["testdata/scenarios", "examples"] {
        for path in files(dir) {
            n += 1;
            let mut out = replay_file(&path).join("\n");
            out.push('\n');
            if let Some(f) = check(&path.with_extension("expected"), &out) {
                failures.push(f);
            }
        }
    }
    assert!(
        n >= 30,
        "the corpus has {n} scenarios; it should have at least 30"
    );
    assert!(
        failures.is_empty(),
        "{} of {n} scenarios differ (UPDATE_EXPECT=1 rewrites):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn invalid_scenarios_are_refused_with_a_path() {
    let mut failures = Vec::new();
    for path in files("testdata/invalid") {
        let text = std::fs::read_to_string(&path).unwrap();
        let actual = match scenario::parse(&text) {
            Ok(_) => "accepted\n".to_owned(),
            Err(e) => format!("{e}\n"),
        };
        if let Some(f) = check(&path.with_extension("expected"), &actual) {
            failures.push(f);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every alarm kind is raised, cleared and raised again for one transit somewhere in the corpus.
#[test]
fn every_alarm_kind_is_raised_cleared_and_raised_again() {
    if update() {
        return;
    }
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in files("testdata/scenarios") {
        // Per (transit, kind): the sequence of "R" (raised) and "C" (cleared).
        let mut seqs: BTreeMap<(String, String), String> = BTreeMap::new();
        for line in replay_file(&path) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let transit = v["transit"].as_str().unwrap().to_owned();
            if let Some(kind) = v["kind"].as_str() {
                seqs.entry((transit, kind.to_owned()))
                    .or_default()
                    .push('R');
            } else if v["event"] == "alarm_cleared" {
                let kind = v["alarm_kind"].as_str().unwrap().to_owned();
                seqs.entry((transit, kind)).or_default().push('C');
            }
        }
        for ((_, kind), s) in seqs {
            if s.contains("RCR") {
                seen.entry(kind)
                    .or_default()
                    .push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let missing: Vec<&str> = model::AlarmKind::ALL
        .iter()
        .map(|k| k.as_str())
        .filter(|k| !seen.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "never raised, cleared and raised again: {missing:?}"
    );
}

/// examples/README.md documents what each example prints: its table must match the replay.
#[test]
fn examples_readme_lists_what_each_example_prints() {
    if update() {
        return;
    }
    let readme = std::fs::read_to_string(root().join("examples/README.md")).unwrap();
    let mut failures = Vec::new();
    for path in files("examples") {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let Some(row) = readme
            .lines()
            .find(|l| l.starts_with(&format!("| [{name}](")))
        else {
            failures.push(format!("{name}: no row in examples/README.md"));
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let alarms: Vec<String> = scenario::replay_lines(&scenario::parse(&text).unwrap(), false)
            .unwrap()
            .iter()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let sensor = v["sensor"]
                    .as_str()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                format!(
                    "`{}`{sensor} {} {}",
                    v["kind"].as_str().unwrap(),
                    v["transit"].as_str().unwrap(),
                    v["t"].as_str().unwrap()
                )
            })
            .collect();
        let cell = if alarms.is_empty() {
            "none".to_owned()
        } else {
            alarms.join("<br>")
        };
        if !row.trim_end().ends_with(&format!("| {cell} |")) {
            failures.push(format!(
                "{name}: the replay prints {cell}, the README row says {row}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
