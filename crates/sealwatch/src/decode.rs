//! `sealwatch decode --protocol jt808 HEX`: what sealwatch makes of a device's bytes, for
//! integrators holding a hex dump from a terminal or a capture.
//!
//! Prints, for each frame in the bytes, the observations in the contract's shape as a JSON
//! array, or a JSON object describing a frame that reports no position or state (a
//! registration, a heartbeat, a text command result). One line per frame. Anything that is
//! not a valid frame is an error naming what is wrong: exit status 2.

use serde_json::Value;

/// The protocols `decode` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// JT/T 808 (2013 and 2019 headers, with the e-lock extensions).
    Jt808,
}

/// How to read a device's reports.
#[derive(Debug, Default)]
pub struct DecodeOptions {
    /// A device model known to the codec (`G-360P`), for its quirks.
    pub model: Option<String>,
    /// The device clock's offset from UTC, in minutes (JT/T 808 devices usually run on
    /// GMT+8: 480).
    pub utc_offset_minutes: Option<i32>,
    /// Accept frames whose check code is wrong (some models compute it wrongly).
    pub accept_bad_check_code: bool,
}

/// Reads hex, ignoring spaces, line breaks, `0x` prefixes and `:` or `-` separators.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let cleaned: String = text
        .replace("0x", "")
        .replace("0X", "")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':' && *c != '-')
        .collect();
    if cleaned.is_empty() {
        return Err("HEX: no bytes given".into());
    }
    if let Some((i, c)) = cleaned.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(format!("HEX: {c:?} at position {i} is not a hex digit"));
    }
    if !cleaned.len().is_multiple_of(2) {
        return Err(format!(
            "HEX: an odd number of hex digits ({}): a byte is cut in half",
            cleaned.len()
        ));
    }
    Ok((0..cleaned.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cleaned[i..i + 2], 16).unwrap_or(0))
        .collect())
}

/// Decodes `hex` into one JSON value per frame.
pub fn decode(protocol: Protocol, hex: &str, opts: &DecodeOptions) -> Result<Vec<Value>, String> {
    let bytes = parse_hex(hex)?;
    match protocol {
        Protocol::Jt808 => decode_jt808(&bytes, opts),
    }
}

fn decode_jt808(bytes: &[u8], opts: &DecodeOptions) -> Result<Vec<Value>, String> {
    let mut options = opts
        .model
        .as_deref()
        .map(jt808::Options::for_model)
        .unwrap_or_default();
    if let Some(offset) = opts.utc_offset_minutes {
        options.utc_offset_minutes = offset;
    }
    options.accept_bad_check_code |= opts.accept_bad_check_code;
    // A frame pasted without its 0x7E delimiters is still one frame.
    let framed;
    let bytes = if bytes.first() != Some(&0x7e) && bytes.first() != Some(&b'(') {
        framed = [&[0x7e][..], bytes, &[0x7e][..]].concat();
        &framed[..]
    } else {
        bytes
    };
    let mut deframer = jt808::Deframer::new();
    let mut out = Vec::new();
    let items: Vec<_> = deframer.push(bytes).collect();
    for (n, item) in items.into_iter().enumerate() {
        let frame_no = n + 1;
        match item {
            Ok(jt808::Deframed::Frame(frame)) => {
                let message = frame
                    .decode(&options)
                    .map_err(|e| format!("frame {frame_no}: {e}"))?;
                let observations = jt808::observations(&message, &options);
                if observations.is_empty() {
                    out.push(jt808::describe(&message));
                } else {
                    out.push(serde_json::to_value(&observations).map_err(|e| e.to_string())?);
                }
            }
            Ok(jt808::Deframed::Text(text)) => out.push(text.describe()),
            Err(e) => return Err(format!("frame {frame_no}: {e}")),
        }
    }
    if out.is_empty() {
        return Err("no complete frame in the bytes (a JT/T 808 frame is 7E ... 7E)".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_frames() -> Vec<Value> {
        let text = include_str!("../../../testdata/jt808/field-frames.json");
        let v: Value = serde_json::from_str(text).unwrap();
        v["frames"].as_array().unwrap().clone()
    }

    fn close(a: &Value, b: &Value) -> bool {
        match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() < 1e-6,
            _ => a == b,
        }
    }

    /// Every field frame through the command's path: the observation matches the
    /// expectation field by field, and the malformed frame is an error.
    #[test]
    fn every_field_frame_decodes_to_its_expectation() {
        let opts = DecodeOptions::default();
        for f in field_frames() {
            let id = f["id"].as_str().unwrap();
            let hex = f["hex"].as_str().unwrap();
            let expect = &f["expect"];
            let got = decode(Protocol::Jt808, hex, &opts);
            if expect.get("malformed").is_some() {
                let e = got.expect_err(id);
                assert!(e.starts_with("frame 1: "), "{id}: {e}");
                continue;
            }
            let got = got.unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(got.len(), 1, "{id}: one frame");
            if let Some(text) = expect.get("text_result") {
                assert_eq!(&got[0]["text_result"], text, "{id}");
                continue;
            }
            let obs = got[0]
                .as_array()
                .unwrap_or_else(|| panic!("{id}: {}", got[0]));
            if let Some(count) = expect.get("count") {
                assert_eq!(obs.len() as u64, count.as_u64().unwrap(), "{id}");
                for (key, which) in [("first", &obs[0]), ("last", &obs[obs.len() - 1])] {
                    for (k, v) in expect[key].as_object().unwrap() {
                        assert!(close(&which[k], v), "{id} {key}.{k}: {} != {v}", which[k]);
                    }
                }
                continue;
            }
            let o = &obs[0];
            for (k, v) in expect.as_object().unwrap() {
                if k == "events_include" {
                    let events = o["events"].as_array().cloned().unwrap_or_default();
                    for e in v.as_array().unwrap() {
                        assert!(events.contains(e), "{id}: {e} not in {events:?}");
                    }
                } else {
                    assert!(close(&o[k], v), "{id}.{k}: {} != {v}", o[k]);
                }
            }
            // Exactly the contract's shape: it parses back as an observation.
            let back: model::Observation = serde_json::from_value(o.clone()).unwrap();
            assert_eq!(back.device.as_str(), expect["device"]);
        }
    }

    #[test]
    fn bad_hex_is_named() {
        let opts = DecodeOptions::default();
        let e = decode(Protocol::Jt808, "7E02 0G", &opts).unwrap_err();
        assert_eq!(e, "HEX: 'G' at position 5 is not a hex digit");
        let e = decode(Protocol::Jt808, "7E0", &opts).unwrap_err();
        assert!(e.contains("odd number"), "{e}");
        let e = decode(Protocol::Jt808, "  ", &opts).unwrap_err();
        assert_eq!(e, "HEX: no bytes given");
        assert!(decode(Protocol::Jt808, "7E7E", &opts).is_err());
    }
}
