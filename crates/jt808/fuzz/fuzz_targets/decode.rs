//! The decoder on arbitrary frame content, with a correct check code and body length, so
//! that the body decoders see the input rather than the framing checks. A message that
//! decodes must encode back to the same bytes, and its observations must be valid.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 11 {
        return;
    }
    let mut content = data.to_vec();
    // Make the declared body length match, whatever the header layout.
    let header_len = match (u16::from_be_bytes([data[0], data[1]]), data[2] & 0x40 != 0) {
        (0x5501 | 0x5502 | 0x4401, false) => 11,
        (0x5501 | 0x5502 | 0x4401, true) => 16,
        (_, false) if data[2] & 0x20 != 0 => 16,
        (_, false) => 12,
        (_, true) if data[2] & 0x20 != 0 => 21,
        (_, true) => 17,
    };
    let body_len = content.len().saturating_sub(header_len).min(0x3ff) as u16;
    content.truncate(header_len + usize::from(body_len));
    content[2] = (content[2] & 0xfc) | (body_len >> 8) as u8;
    content[3] = body_len as u8;
    let wire = jt808::frame_content(&content);
    let Ok(frame) = jt808::Frame::from_wire(&wire) else {
        return;
    };
    let options = jt808::Options::default();
    if let Ok(message) = frame.decode(&options) {
        assert_eq!(message.encode().unwrap(), wire);
        for o in jt808::observations(&message, &options) {
            assert!(o.validate().is_ok());
        }
        let _ = jt808::describe(&message);
    }
});
