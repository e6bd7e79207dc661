//! `sealwatch decode --protocol jt808|native HEX`: what sealwatch makes of a device's bytes,
//! for integrators holding a hex dump from a terminal or a capture.
//!
//! Prints, for each frame in the bytes, the observations in the contract's shape as a JSON
//! array, or a JSON object describing a frame that reports no position or state (a
//! registration, a heartbeat, a text command result). One line per frame. Anything that is
//! not a valid frame is an error naming what is wrong: exit status 2.
//!
//! The native protocol (docs/protocol.md) encrypts everything after the handshake, so what a
//! capture shows depends on what else is at hand. Without keys, each frame is described: a
//! hello (its device id, ephemeral key, nonce, signature), a welcome, a record (its counter and
//! the length of its sealed message), each with its CRC checked. With `--session-key` (one
//! direction's traffic key, 64 hex digits) records are opened: a report prints as the
//! contract's observation, a report batch as its reports' observations (the device id comes
//! from a hello earlier in the bytes, or from `--device`), any other message as an object. With `--plaintext` the bytes are one message
//! as it is before encryption (a device maker's firmware log): decoded the same way.

use serde_json::Value;

/// The protocols `decode` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// JT/T 808 (2013 and 2019 headers, with the e-lock extensions).
    Jt808,
    /// sealwatch's native protocol (docs/protocol.md).
    Native,
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
    /// Native protocol: the traffic key that opens records (hex).
    pub session_key: Option<String>,
    /// Native protocol: the bytes are one message, unencrypted, not frames.
    pub plaintext: bool,
    /// Native protocol: the device whose reports these are, when no hello precedes them.
    pub device: Option<String>,
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
        Protocol::Jt808 => {
            if opts.session_key.is_some() || opts.plaintext || opts.device.is_some() {
                return Err(
                    "--session-key, --plaintext and --device are for --protocol native".into(),
                );
            }
            decode_jt808(&bytes, opts)
        }
        Protocol::Native => decode_native(&bytes, opts),
    }
}

fn decode_native(bytes: &[u8], opts: &DecodeOptions) -> Result<Vec<Value>, String> {
    if opts.model.is_some() || opts.utc_offset_minutes.is_some() || opts.accept_bad_check_code {
        return Err(
            "--model, --utc-offset-minutes and --accept-bad-check-code are for --protocol jt808"
                .into(),
        );
    }
    let mut device = opts
        .device
        .as_deref()
        .map(|d| {
            d.parse::<model::DeviceId>()
                .map_err(|e| format!("--device: {e}"))
        })
        .transpose()?;
    if opts.plaintext {
        if opts.session_key.is_some() {
            return Err("--plaintext takes no --session-key: the bytes are not encrypted".into());
        }
        let message = sealproto::Message::decode(bytes).map_err(|e| format!("message: {e}"))?;
        return describe_message(&message, device.as_ref(), None)
            .map(|v| vec![v])
            .map_err(|e| format!("message: {e}"));
    }
    let key = opts
        .session_key
        .as_deref()
        .map(|k| {
            parse_hex(k)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or("--session-key: must be 32 bytes in hex (64 digits)")
        })
        .transpose()?;
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = out.len() + 1;
        let frame = next_native_frame(&bytes[at..]).map_err(|e| format!("frame {n}: {e}"))?;
        at += frame.as_bytes().len();
        let body = frame.body();
        let crc = format!(
            "0x{}",
            sealproto::to_hex(&frame.as_bytes()[frame.as_bytes().len() - 2..])
        );
        let described = match frame.kind() {
            sealproto::FrameKind::Hello => {
                let hello =
                    sealproto::Hello::decode(body).map_err(|e| format!("frame {n}: hello: {e}"))?;
                device = Some(hello.device.clone());
                serde_json::json!({
                    "frame": "hello",
                    "length": body.len(),
                    "crc": crc,
                    "device": hello.device.as_str(),
                    "ephemeral_public": sealproto::to_hex(&hello.ephemeral),
                    "nonce": sealproto::to_hex(&hello.nonce),
                    "signature": sealproto::to_hex(&hello.signature),
                })
            }
            sealproto::FrameKind::Welcome => {
                let welcome = sealproto::Welcome::decode(body)
                    .map_err(|e| format!("frame {n}: welcome: {e}"))?;
                serde_json::json!({
                    "frame": "welcome",
                    "length": body.len(),
                    "crc": crc,
                    "ephemeral_public": sealproto::to_hex(&welcome.ephemeral),
                    "nonce": sealproto::to_hex(&welcome.nonce),
                    "signature": sealproto::to_hex(&welcome.signature),
                })
            }
            sealproto::FrameKind::Record => match &key {
                None => {
                    if body.len() < sealproto::RECORD_OVERHEAD {
                        return Err(format!(
                            "frame {n}: a record of {} bytes, shorter than its counter and tag ({})",
                            body.len(),
                            sealproto::RECORD_OVERHEAD
                        ));
                    }
                    let mut counter = [0u8; 8];
                    counter.copy_from_slice(&body[..8]);
                    serde_json::json!({
                        "frame": "record",
                        "length": body.len(),
                        "crc": crc,
                        "counter": u64::from_be_bytes(counter),
                        "sealed_message_length": body.len() - sealproto::RECORD_OVERHEAD,
                        "encrypted": true,
                    })
                }
                Some(key) => {
                    let (counter, plain) = sealproto::open_record(key, &frame).map_err(|e| match e {
                        sealproto::Error::Forged { counter } => format!(
                            "frame {n}: record {counter} does not open with --session-key (the other direction's key, another session's, or an altered record)"
                        ),
                        e => format!("frame {n}: {e}"),
                    })?;
                    let message = sealproto::Message::decode(&plain)
                        .map_err(|e| format!("frame {n}: record {counter}: message: {e}"))?;
                    describe_message(&message, device.as_ref(), Some(counter))
                        .map_err(|e| format!("frame {n}: record {counter}: {e}"))?
                }
            },
        };
        out.push(described);
    }
    if out.is_empty() {
        return Err("no complete frame in the bytes".into());
    }
    Ok(out)
}

/// The frame at the start of `bytes`, read strictly: a decoder says what is wrong with the
/// bytes instead of skipping them as a connection's reader does.
fn next_native_frame(bytes: &[u8]) -> Result<sealproto::Frame, String> {
    use sealproto::{HEADER_LEN, MAGIC, MAX_BODY_LEN, VERSION};
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "truncated: {} bytes, a frame header needs {HEADER_LEN}",
            bytes.len()
        ));
    }
    if bytes[..2] != MAGIC[..] {
        return Err(format!(
            "not a native-protocol frame: it starts {}, not the magic {} (\"SW\")",
            sealproto::to_hex(&bytes[..2]),
            sealproto::to_hex(&MAGIC[..])
        ));
    }
    if bytes[2] != VERSION {
        return Err(format!(
            "protocol version {}, this decoder reads version {VERSION}",
            bytes[2]
        ));
    }
    if !(1..=3).contains(&bytes[3]) {
        return Err(format!(
            "unknown frame kind {} (1 hello, 2 welcome, 3 record)",
            bytes[3]
        ));
    }
    let len = usize::from(u16::from_be_bytes([bytes[4], bytes[5]]));
    if len > MAX_BODY_LEN {
        return Err(format!(
            "a body of {len} bytes announced, more than the {MAX_BODY_LEN} allowed"
        ));
    }
    let total = HEADER_LEN + len + 2;
    if bytes.len() < total {
        return Err(format!(
            "truncated: the header announces a {total}-byte frame ({len}-byte body), {} bytes given",
            bytes.len()
        ));
    }
    sealproto::Frame::parse(&bytes[..total]).map_err(|e| e.to_string())
}

/// A message as JSON: a report as the contract's observations (an array of one), a report
/// batch as its reports' observations in order, anything else as an object naming the
/// message.
fn describe_message(
    message: &sealproto::Message,
    device: Option<&model::DeviceId>,
    counter: Option<u64>,
) -> Result<Value, String> {
    use sealproto::{Command, CommandStatus, Message};
    let mut v = match message {
        Message::Report { report, .. } => {
            let device = device.ok_or(
                "a report does not name its device (the hello does): give --device, or decode the hello with it",
            )?;
            let observation = report.observation(device.clone());
            return serde_json::to_value([observation]).map_err(|e| e.to_string());
        }
        Message::Batch(batch) => {
            let device = device.ok_or(
                "a report batch does not name its device (the hello does): give --device, or decode the hello with it",
            )?;
            let observations: Vec<model::Observation> = batch
                .reports()
                .iter()
                .map(|r| r.report.observation(device.clone()))
                .collect();
            return serde_json::to_value(observations).map_err(|e| e.to_string());
        }
        Message::Ack { seq } => serde_json::json!({"message": "ack", "seq": seq}),
        Message::Command { id, command } => {
            let (name, transit, seconds) = match command {
                Command::Seal { transit } => ("seal", transit.as_ref(), None),
                Command::Unseal { transit } => ("unseal", transit.as_ref(), None),
                Command::SetReportInterval { seconds } => ("set_interval", None, Some(*seconds)),
                Command::QueryStatus => ("query_status", None, None),
            };
            let mut v = serde_json::json!({"message": "command", "id": id, "command": name});
            if let Some(t) = transit {
                v["transit"] = Value::from(t.as_str());
            }
            if let Some(s) = seconds {
                v["seconds"] = Value::from(s);
            }
            v
        }
        Message::CommandResult(r) => {
            let status = match r.status {
                CommandStatus::Done => "done",
                CommandStatus::Refused => "refused",
                CommandStatus::Failed => "failed",
                CommandStatus::Unsupported => "unsupported",
            };
            let mut v =
                serde_json::json!({"message": "command_result", "id": r.id, "status": status});
            if let Some(seq) = r.report_seq {
                v["report_seq"] = Value::from(seq);
            }
            v
        }
    };
    if let Some(c) = counter {
        v["frame"] = Value::from("record");
        v["counter"] = Value::from(c);
    }
    Ok(v)
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

    /// Whatever the bytes, the native decoder answers (never panics): every prefix of a
    /// capture, and every single-byte change of it, with and without a key, and as plaintext.
    #[test]
    fn native_decoding_never_panics() {
        let capture = "53570101008a094c4f434b2d30303031493e82fc74464a59268817623d2053c5\
            eb8e2cc4a988b4fee179ec6b010d531da0a1a2a3a4a5a6a7a8a9aaabacadaeaf\
            b0b1b2b3b4b5b6b7b8b9babbbcbdbebf9e466c79d62e4b48b204579fd4e666f7\
            7aa12327c88a4a746e3c6d6c11048da234fac89ae91cebdd780129160911015b\
            cdd9d24b64782f49d1f25db7e190050421da\
            5357010300610000000000000000a215bd5be4a7596db190090b61335200cffd\
            a23dc6062dac259efaa105e8db9936f3a7d40416d86bfc415d8dcf03f10f03f5\
            c3cc78b51aaf2b19b44b84475c90d3e90f13c589172241c1a3ef1812ba6cffbf\
            d6cae226fc91abb45c";
        let bytes = parse_hex(capture).unwrap();
        let keyed = DecodeOptions {
            session_key: Some(
                "d6b76f2bc5cba3d67613726345d99ff07907999608cb03d425478562039fa666".into(),
            ),
            ..DecodeOptions::default()
        };
        assert_eq!(decode(Protocol::Native, capture, &keyed).unwrap().len(), 2);
        let plain = DecodeOptions {
            plaintext: true,
            device: Some("LOCK-0001".into()),
            ..DecodeOptions::default()
        };
        let all = [DecodeOptions::default(), keyed, plain];
        let mut inputs: Vec<Vec<u8>> = (1..bytes.len()).map(|n| bytes[..n].to_vec()).collect();
        for i in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                inputs.push(b);
            }
        }
        for input in inputs {
            let hex = to_hex_string(&input);
            for opts in &all {
                // An error is fine; a panic is not.
                let _ = decode(Protocol::Native, &hex, opts);
            }
        }
    }

    fn to_hex_string(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
