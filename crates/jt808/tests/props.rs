//! Properties over arbitrary input: nothing panics, chunking changes nothing, memory stays
//! bounded, every decoded message encodes back to its bytes, and every observation is valid.

use jt808::{Deframer, Frame, MAX_FRAME_LEN, MAX_TEXT_LEN, Options, describe, frame_content};
use proptest::prelude::*;

/// Message ids with a decoder, and some without.
const IDS: [u16; 14] = [
    0x0001, 0x0002, 0x0100, 0x0102, 0x0200, 0x0201, 0x0704, 0x4401, 0x5501, 0x5502, 0x8001, 0x8100,
    0x0900, 0x8300,
];

/// Frame content (header and body, before the check code) for one of `IDS`, with a body
/// length that matches: what reaches the body decoders.
fn content() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(&IDS[..]),
        any::<bool>(),
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(any::<u8>(), 10),
    )
        .prop_map(|(id, v2019, serial, body, phone)| {
            let short = matches!(id, 0x5501 | 0x5502 | 0x4401);
            let mut props = body.len() as u16;
            if v2019 {
                props |= 0x4000;
            }
            let mut c = id.to_be_bytes().to_vec();
            c.extend_from_slice(&props.to_be_bytes());
            if v2019 {
                c.push(1);
                c.extend_from_slice(&phone);
            } else {
                c.extend_from_slice(&phone[..6]);
            }
            if short {
                c.push(serial as u8);
            } else {
                c.extend_from_slice(&serial.to_be_bytes());
            }
            c.extend_from_slice(&body);
            c
        })
}

fn check_message(frame: &Frame, wire: Option<&[u8]>) -> Result<(), TestCaseError> {
    let _ = frame.header();
    for accept_bad_check_code in [false, true] {
        let options = Options {
            accept_bad_check_code,
            seq_from_serial: true,
            ..Options::default()
        };
        if let Ok(m) = frame.decode(&options) {
            let _ = describe(&m);
            for o in jt808::observations(&m, &options) {
                prop_assert!(o.validate().is_ok(), "{:?}: {:?}", o.validate(), o);
                prop_assert!(serde_json::to_string(&o).is_ok());
            }
            if let (Some(wire), true) = (wire, frame.check_code_ok()) {
                prop_assert_eq!(m.encode().unwrap(), wire.to_vec());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn deframer_survives_anything_in_any_chunks(
        bytes in prop::collection::vec(
            prop_oneof![4 => any::<u8>(), 1 => Just(0x7e), 1 => Just(0x7d), 1 => Just(b'('), 1 => Just(b')')],
            0..3000,
        ),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut whole = Deframer::new();
        let expected: Vec<_> = whole.push(&bytes).collect();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunked = Deframer::new();
        let mut got = Vec::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            got.extend(chunked.push(&bytes[from..cut]));
            prop_assert!(chunked.buffered() <= MAX_FRAME_LEN.max(MAX_TEXT_LEN));
            from = cut;
        }
        // Garbage may be reported in pieces at chunk ends; everything else is identical.
        let non_garbage = |items: &[Result<jt808::Deframed, jt808::FrameError>]| -> Vec<_> {
            items.iter().filter(|i| !matches!(i, Err(jt808::FrameError::Garbage { .. }))).cloned().collect()
        };
        let garbage = |items: &[Result<jt808::Deframed, jt808::FrameError>]| -> usize {
            items.iter().map(|i| match i { Err(jt808::FrameError::Garbage { len }) => *len, _ => 0 }).sum()
        };
        prop_assert_eq!(non_garbage(&got), non_garbage(&expected));
        prop_assert_eq!(garbage(&got), garbage(&expected));
        for item in expected.into_iter().flatten() {
            if let jt808::Deframed::Frame(f) = item {
                check_message(&f, None)?;
            }
        }
    }

    #[test]
    fn arbitrary_frames_never_panic(bytes in prop::collection::vec(any::<u8>(), 12..1100)) {
        let frame = Frame::from_unescaped(bytes).unwrap();
        check_message(&frame, None)?;
    }

    #[test]
    fn well_formed_frames_round_trip(content in content()) {
        let wire = frame_content(&content);
        let frame = Frame::from_wire(&wire).unwrap();
        prop_assert!(frame.check_code_ok());
        check_message(&frame, Some(&wire))?;
        let mut d = Deframer::new();
        let items: Vec<_> = d.push(&wire).collect();
        prop_assert_eq!(items, vec![Ok(jt808::Deframed::Frame(frame))]);
    }

    #[test]
    fn location_items_round_trip(
        basic in prop::collection::vec(any::<u8>(), 22),
        time in (0u8..100, 1u8..13, 1u8..29, 0u8..24, 0u8..60, 0u8..60),
        items in prop::collection::vec(
            (prop::sample::select(&[0x01u8, 0x02, 0x03, 0x0b, 0x25, 0x30, 0x31, 0x33, 0x60, 0x63,
                0xd4, 0xd5, 0xda, 0xe1, 0xe8, 0xe9, 0xeb, 0xfe, 0x77][..]),
             prop::collection::vec(any::<u8>(), 0..40)),
            0..8),
    ) {
        let bcd = |v: u8| (v / 10) << 4 | (v % 10);
        let mut body = basic;
        body.extend([time.0, time.1, time.2, time.3, time.4, time.5].map(bcd));
        for (id, value) in &items {
            body.push(*id);
            body.push(value.len() as u8);
            body.extend_from_slice(value);
        }
        let mut content = vec![0x02, 0x00];
        content.extend_from_slice(&(body.len() as u16).to_be_bytes());
        content.extend_from_slice(&[0x01, 0x23, 0x45, 0x67, 0x89, 0x01, 0x00, 0x01]);
        content.extend_from_slice(&body);
        let wire = frame_content(&content);
        let frame = Frame::from_wire(&wire).unwrap();
        let m = frame.decode(&Options::default()).unwrap();
        prop_assert_eq!(m.encode().unwrap(), wire.clone());
        check_message(&frame, Some(&wire))?;
    }
}
