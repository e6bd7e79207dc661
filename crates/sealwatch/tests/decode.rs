//! `sealwatch decode` as an integrator runs it: every field frame prints JSON and exits 0,
//! the malformed one exits 2 with a clear error, and so does text that is not hex. The native
//! protocol through the test vectors of docs/protocol.md: frames described without keys,
//! records opened with a session key, messages read in plaintext, a report batch printed as
//! all its observations; a bad CRC, a truncated frame, a wrong key and a report without its
//! device exit 2 naming what is wrong.

use std::process::Command;

fn decode(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sealwatch"))
        .arg("decode")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn field_frames_through_the_command() {
    let text = include_str!("../../../testdata/jt808/field-frames.json");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    for f in v["frames"].as_array().unwrap() {
        let id = f["id"].as_str().unwrap();
        let (code, stdout, stderr) = decode(&["--protocol", "jt808", f["hex"].as_str().unwrap()]);
        if f["expect"].get("malformed").is_some() {
            assert_eq!(code, Some(2), "{id}: {stdout}");
            assert!(stderr.starts_with("error: frame 1: "), "{id}: {stderr}");
            continue;
        }
        assert_eq!(code, Some(0), "{id}: {stderr}");
        let printed: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        match f["expect"].get("text_result") {
            Some(t) => assert_eq!(&printed["text_result"], t, "{id}"),
            None => {
                let first = &printed.as_array().unwrap()[0];
                assert_eq!(first["device"], f["expect"]["device"], "{id}");
            }
        }
    }
    let (code, _, stderr) = decode(&["--protocol", "jt808", "7E0200zz7E"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("is not a hex digit"), "{stderr}");
    let (code, _, stderr) = decode(&["--protocol", "smoke-signals", "7E7E"]);
    assert_eq!(code, Some(2), "{stderr}");
}

/// A test vector of docs/protocol.md by its label: the hex on the label's line, or on the
/// lines after it up to a blank line.
fn vector(label: &str) -> String {
    let doc = include_str!("../../../docs/protocol.md");
    let mut lines = doc.lines().skip_while(|l| !l.starts_with(label));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no vector {label:?} in docs/protocol.md"));
    let rest = first[label.len()..].trim();
    if !rest.is_empty() && !rest.ends_with(':') {
        return rest.to_owned();
    }
    lines
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("```"))
        .collect()
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn native_frames_are_described_without_keys() {
    let hello = vector("hello frame (146 bytes):");
    let welcome = vector("welcome frame (136 bytes):");
    let report = vector("report (device to platform): record frame, counter 0 (105 bytes):");
    let (code, stdout, stderr) =
        decode(&["--protocol", "native", &format!("{hello}{welcome}{report}")]);
    assert_eq!(code, Some(0), "{stderr}");
    let got = json_lines(&stdout);
    assert_eq!(got.len(), 3, "{stdout}");
    assert_eq!(got[0]["frame"], "hello");
    assert_eq!(got[0]["device"], "LOCK-0001");
    assert_eq!(got[0]["length"], 138);
    assert_eq!(
        got[0]["nonce"],
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    );
    assert_eq!(got[0]["crc"], "0x21da");
    assert_eq!(got[1]["frame"], "welcome");
    assert_eq!(
        got[1]["nonce"],
        "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"
    );
    assert_eq!(got[2]["frame"], "record");
    assert_eq!(got[2]["counter"], 0);
    assert_eq!(got[2]["encrypted"], true);
    assert_eq!(got[2]["sealed_message_length"], 73);
}

#[test]
fn native_records_open_with_the_session_key_into_observations_and_messages() {
    let hello = vector("hello frame (146 bytes):");
    let up = vector("key device to platform");
    let down = vector("key platform to device");
    let report = vector("report (device to platform): record frame, counter 0 (105 bytes):");
    let sealed = vector("seal report with evidence: record frame, counter 1 (187 bytes):");
    let result = vector("command result: record frame, counter 2 (47 bytes):");

    // The hello names the device; the reports after it are its observations, in the
    // contract's shape.
    let (code, stdout, stderr) = decode(&[
        "--protocol",
        "native",
        "--session-key",
        &up,
        &format!("{hello}{report}{sealed}{result}"),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let got = json_lines(&stdout);
    assert_eq!(got.len(), 4, "{stdout}");
    assert_eq!(got[0]["frame"], "hello");
    for (i, seq, lock) in [(1, 1, "unlocked"), (2, 2, "locked")] {
        let o: Vec<model::Observation> = serde_json::from_value(got[i].clone()).unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].device.as_str(), "LOCK-0001");
        assert_eq!(o[0].seq, Some(seq));
        assert_eq!(o[0].t.to_string(), "2026-11-25T08:00:00Z");
        assert_eq!(serde_json::to_value(o[0].lock).unwrap(), lock);
    }
    assert_eq!(
        got[3],
        serde_json::json!({"frame": "record", "counter": 2, "message": "command_result",
            "id": 1, "status": "done", "report_seq": 2})
    );

    // Without the hello, --device names the device.
    let (code, stdout, stderr) = decode(&[
        "--protocol",
        "native",
        "--session-key",
        &up,
        "--device",
        "LOCK-0001",
        &report,
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(json_lines(&stdout)[0][0]["device"], "LOCK-0001");

    // The platform's direction: acknowledgement and command.
    let ack = vector("acknowledgement: record frame, counter 0 (41 bytes):");
    let command = vector("seal command: record frame, counter 1 (50 bytes):");
    let (code, stdout, stderr) = decode(&[
        "--protocol",
        "native",
        "--session-key",
        &down,
        &format!("{ack}{command}"),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let got = json_lines(&stdout);
    assert_eq!(
        got[0],
        serde_json::json!({"frame": "record", "counter": 0, "message": "ack", "seq": 1})
    );
    assert_eq!(
        got[1],
        serde_json::json!({"frame": "record", "counter": 1, "message": "command", "id": 1,
            "command": "seal", "transit": "T-2026-0001"})
    );
}

#[test]
fn native_plaintext_messages_decode_the_same_way() {
    let (code, stdout, stderr) = decode(&[
        "--protocol",
        "native",
        "--plaintext",
        "--device",
        "LOCK-0001",
        &vector("seal report with evidence: message (155 bytes):"),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let o: Vec<model::Observation> = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(o[0].seq, Some(2));
    let (code, stdout, _) = decode(&[
        "--protocol",
        "native",
        "--plaintext",
        &vector("acknowledgement: message (9 bytes):"),
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(stdout.trim()).unwrap(),
        serde_json::json!({"message": "ack", "seq": 1})
    );
}

#[test]
fn bad_native_input_exits_2_naming_what_is_wrong() {
    let hello = vector("hello frame (146 bytes):");
    let up = vector("key device to platform");
    let down = vector("key platform to device");
    let report = vector("report (device to platform): record frame, counter 0 (105 bytes):");
    let cases: Vec<(Vec<String>, &str)> = vec![
        // The CRC's last byte changed: expected and actual named.
        (
            vec![format!("{}00", &hello[..hello.len() - 2])],
            "frame 1: CRC mismatch: frame says 0x2100, content gives 0x21da",
        ),
        (
            vec![hello[..100].to_owned()],
            "frame 1: truncated: the header announces a 146-byte frame (138-byte body), 50 bytes given",
        ),
        (vec!["5357".to_owned()], "frame 1: truncated: 2 bytes"),
        (
            vec![format!("{hello}{}", &report[..40])],
            "frame 2: truncated",
        ),
        (vec!["00112233445566".to_owned()], "not the magic 5357"),
        (vec!["535702".to_owned() + "03000000"], "protocol version 2"),
        (vec!["5357010900000000".to_owned()], "unknown frame kind 9"),
        (vec!["zz".to_owned()], "is not a hex digit"),
        (
            vec!["--session-key".to_owned(), down, report.clone()],
            "frame 1: record 0 does not open with --session-key",
        ),
        (
            vec!["--session-key".to_owned(), up.clone(), report.clone()],
            "give --device",
        ),
        (
            vec![
                "--session-key".to_owned(),
                "abcd".to_owned(),
                report.clone(),
            ],
            "--session-key: must be 32 bytes",
        ),
        (
            vec!["--plaintext".to_owned(), "09".to_owned()],
            "message: unknown message type 9",
        ),
        (
            vec!["--plaintext".to_owned(), "0200".to_owned()],
            "message: ",
        ),
        (
            vec!["--model".to_owned(), "G-360P".to_owned(), hello.clone()],
            "are for --protocol jt808",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["--protocol", "native"];
        all.extend(args.iter().map(String::as_str));
        let (code, stdout, stderr) = decode(&all);
        assert_eq!(code, Some(2), "{args:?}: {stdout}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
    let (code, _, stderr) = decode(&["--protocol", "jt808", "--plaintext", "7E7E"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("are for --protocol native"), "{stderr}");
}

#[test]
fn native_report_batches_print_every_observation() {
    let hello = vector("hello frame (146 bytes):");
    let up = vector("key device to platform");
    let label = "report batch, three reports, the third with tamper evidence:";
    let record = vector(&format!("{label} record frame, counter 3 (317 bytes):"));
    let message = vector(&format!("{label} message (285 bytes):"));
    let check = |printed: &serde_json::Value| {
        let o: Vec<model::Observation> = serde_json::from_value(printed.clone()).unwrap();
        let seqs: Vec<Option<u64>> = o.iter().map(|o| o.seq).collect();
        assert_eq!(seqs, [Some(3), Some(4), Some(5)]);
        let times: Vec<String> = o.iter().map(|o| o.t.to_string()).collect();
        assert_eq!(
            times,
            [
                "2026-11-25T08:00:10Z",
                "2026-11-25T08:00:20Z",
                "2026-11-25T08:00:30Z"
            ]
        );
        assert!(o.iter().all(|o| o.device.as_str() == "LOCK-0001"));
        let ropes: Vec<model::RopeState> = o.iter().map(|o| o.rope.unwrap()).collect();
        use model::RopeState::{Cut, Intact};
        assert_eq!(ropes, [Intact, Intact, Cut]);
    };

    // The record, opened with the session key; the device named by the hello.
    let (code, stdout, stderr) = decode(&[
        "--protocol",
        "native",
        "--session-key",
        &up,
        &format!("{hello}{record}"),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let got = json_lines(&stdout);
    assert_eq!(got.len(), 2, "one line per frame: {stdout}");
    check(&got[1]);

    // The message in plaintext, the device named by --device.
    let (code, stdout, stderr) = decode(&[
        "--protocol",
        "native",
        "--plaintext",
        "--device",
        "LOCK-0001",
        &message,
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    check(&serde_json::from_str(stdout.trim()).unwrap());

    // Without a device id there is nobody to attribute the reports to.
    let (code, _, stderr) = decode(&["--protocol", "native", "--session-key", &up, &record]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("frame 1: record 3: a report batch does not name its device"),
        "{stderr}"
    );
    // A batch cut short is refused, naming the frame.
    let (code, _, stderr) = decode(&[
        "--protocol",
        "native",
        "--plaintext",
        "--device",
        "LOCK-0001",
        &message[..message.len() - 2],
    ]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("message: evidence signature: message ends early"),
        "{stderr}"
    );
}
