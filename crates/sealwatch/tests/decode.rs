//! `sealwatch decode` as an integrator runs it: every field frame prints JSON and exits 0,
//! the malformed one exits 2 with a clear error, and so does text that is not hex.

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
