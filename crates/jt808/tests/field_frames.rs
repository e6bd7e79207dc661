//! The field-frame corpus: every frame in `testdata/jt808/field-frames.json` decodes to its
//! independently worked-out expectation, and encodes back to the same bytes.

use jt808::{Deframed, Deframer, Frame, Options, describe, observations};
use serde_json::Value;

fn corpus() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/jt808/field-frames.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Compares the fields an expectation lists with an observation's JSON; returns what differs.
fn compare(expect: &Value, actual: &Value, at: &str, diffs: &mut Vec<String>) {
    for (key, want) in expect.as_object().unwrap() {
        let got = if key == "events_include" {
            &actual["events"]
        } else {
            &actual[key]
        };
        let ok = match (key.as_str(), want) {
            ("events_include", Value::Array(events)) => events
                .iter()
                .all(|e| got.as_array().is_some_and(|a| a.contains(e))),
            ("events_include", _) => false,
            (_, Value::Number(n)) => got
                .as_f64()
                .is_some_and(|g| (g - n.as_f64().unwrap()).abs() <= 1e-6),
            ("fix", Value::Bool(false)) => got == want,
            _ => got == want,
        };
        if !ok {
            diffs.push(format!("{at}{key}: expected {want}, got {got}"));
        }
    }
}

/// Decodes one frame and checks it against its expectation; returns what went wrong.
fn check(case: &Value) -> Vec<String> {
    let bytes = unhex(case["hex"].as_str().unwrap());
    let expect = &case["expect"];
    let options = Options::default();
    let mut diffs = Vec::new();

    // The stream may arrive in any chunks: one byte at a time must give the same items.
    let mut whole = Deframer::new();
    let items: Vec<_> = whole.push(&bytes).collect();
    let mut single = Deframer::new();
    let bytewise: Vec<_> = bytes
        .iter()
        .flat_map(|b| single.push(std::slice::from_ref(b)).collect::<Vec<_>>())
        .collect();
    if items != bytewise {
        diffs.push("chunking changed the items".into());
    }

    if let Some(text) = expect.get("text_result") {
        match &items[..] {
            [Ok(Deframed::Text(t))] if t.as_str() == text.as_str().unwrap() => {}
            other => diffs.push(format!("expected the text result, got {other:?}")),
        }
        return diffs;
    }
    let frame = match &items[..] {
        [Ok(Deframed::Frame(f))] => f.clone(),
        other => return vec![format!("expected one frame, got {other:?}")],
    };
    if expect.get("malformed").is_some() {
        for accept_bad_check_code in [false, true] {
            let lenient = Options {
                accept_bad_check_code,
                ..Options::default()
            };
            if let Ok(m) = frame.decode(&lenient) {
                diffs.push(format!(
                    "malformed frame decoded (accept_bad_check_code {accept_bad_check_code}): {m:?}"
                ));
            }
        }
        return diffs;
    }

    let message = match frame.decode(&options) {
        Ok(m) => m,
        Err(e) => return vec![format!("decode failed: {e}")],
    };
    // Lossless: the decoded message encodes back to the bytes that came in.
    match message.encode() {
        Ok(wire) if wire == bytes => {}
        Ok(wire) => diffs.push(format!(
            "re-encoded differs:\n  {}\n  {}",
            case["hex"].as_str().unwrap().to_lowercase(),
            wire.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )),
        Err(e) => diffs.push(format!("re-encoding failed: {e}")),
    }
    assert_eq!(Frame::from_wire(&bytes).as_ref(), Ok(&frame));
    // Every message describes itself.
    assert!(describe(&message)["type"].is_string());

    let obs = observations(&message, &options);
    for o in &obs {
        if let Err(e) = o.validate() {
            diffs.push(format!("invalid observation {e}"));
        }
    }
    let json: Vec<Value> = obs
        .iter()
        .map(|o| serde_json::to_value(o).unwrap())
        .collect();
    if let Some(count) = expect.get("count") {
        if json.len() as u64 != count.as_u64().unwrap() {
            diffs.push(format!("count: expected {count}, got {}", json.len()));
        }
        let (first, last) = (json.first().unwrap(), json.last().unwrap());
        compare(&expect["first"], first, "first.", &mut diffs);
        compare(&expect["last"], last, "last.", &mut diffs);
        let device = serde_json::json!({"device": expect["device"]});
        for o in &json {
            compare(&device, o, "", &mut diffs);
        }
        return diffs;
    }
    match &json[..] {
        [one] => compare(expect, one, "", &mut diffs),
        other => diffs.push(format!("expected one observation, got {}", other.len())),
    }
    diffs
}

#[test]
fn every_field_frame_decodes_to_its_expectation() {
    let corpus = corpus();
    assert!(corpus["about"].as_str().unwrap().contains("Traccar"));
    let frames = corpus["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 12);
    let mut failures = Vec::new();
    for case in frames {
        let diffs = check(case);
        if !diffs.is_empty() {
            failures.push(format!("{}:\n  {}", case["id"], diffs.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
