//! The deframer on the stream shapes a gateway meets: split frames, noise, floods, texts.

use jt808::{Deframed, Deframer, Frame, FrameError, MAX_FRAME_LEN, frame_content};

/// A heartbeat from terminal 012345678901 with serial `serial`, on the wire.
fn heartbeat(serial: u16) -> Vec<u8> {
    let mut content = vec![0x00, 0x02, 0x00, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0x01];
    content.extend_from_slice(&serial.to_be_bytes());
    frame_content(&content)
}

/// What the deframer makes of `chunks`, in order.
fn run(deframer: &mut Deframer, chunks: &[&[u8]]) -> Vec<Result<Deframed, FrameError>> {
    chunks
        .iter()
        .flat_map(|c| deframer.push(c).collect::<Vec<_>>())
        .collect()
}

fn serials(items: &[Result<Deframed, FrameError>]) -> Vec<u16> {
    items
        .iter()
        .filter_map(|i| match i {
            Ok(Deframed::Frame(f)) => Some(f.header().unwrap().serial),
            _ => None,
        })
        .collect()
}

#[test]
fn frames_split_anywhere_come_out_whole() {
    let mut stream = heartbeat(1);
    stream.extend(heartbeat(2));
    for cut in 0..stream.len() {
        let mut d = Deframer::new();
        let items = run(&mut d, &[&stream[..cut], &stream[cut..]]);
        assert_eq!(serials(&items), [1, 2], "cut at {cut}");
        assert!(items.iter().all(Result::is_ok));
        assert_eq!(d.buffered(), 0);
    }
}

#[test]
fn escaped_bytes_are_restored_and_check_codes_verified() {
    // Serial 0x7e7d: both bytes escaped on the wire.
    let wire = heartbeat(0x7e7d);
    assert!(wire.windows(2).any(|w| w == [0x7d, 0x02]));
    assert!(wire.windows(2).any(|w| w == [0x7d, 0x01]));
    let mut d = Deframer::new();
    let items = run(&mut d, &[&wire]);
    assert_eq!(serials(&items), [0x7e7d]);
    let Ok(Deframed::Frame(f)) = &items[0] else {
        unreachable!()
    };
    assert!(f.check_code_ok());
    assert_eq!(f.to_wire(), wire);
}

#[test]
fn garbage_is_counted_and_skipped() {
    let mut d = Deframer::new();
    let items = run(
        &mut d,
        &[b"GET / HTTP/1.1\r\n", &heartbeat(7), b"\r\n", &heartbeat(8)],
    );
    assert_eq!(serials(&items), [7, 8]);
    assert_eq!(items[0], Err(FrameError::Garbage { len: 16 }));
    // The line ending after a frame is noise, not a malformed frame.
    assert!(items.contains(&Err(FrameError::Garbage { len: 2 })));
}

#[test]
fn a_stray_delimiter_costs_no_following_frame() {
    let mut d = Deframer::new();
    let mut stream = vec![0x7e, 0x01, 0x02, 0x7e];
    stream.extend(heartbeat(3));
    let items = run(&mut d, &[&stream]);
    assert_eq!(items[0], Err(FrameError::TooShort { len: 2 }));
    assert_eq!(serials(&items), [3]);
}

#[test]
fn frames_sharing_a_delimiter_are_both_found() {
    let a = heartbeat(1);
    let b = heartbeat(2);
    let mut stream = a.clone();
    stream.extend_from_slice(&b[1..]);
    let mut d = Deframer::new();
    assert_eq!(serials(&run(&mut d, &[&stream])), [1, 2]);
}

#[test]
fn a_flood_without_delimiter_stays_bounded() {
    let mut d = Deframer::new();
    let flood = vec![0x55u8; 64 * 1024];
    // Inside a frame: dropped once a delimiter comes, and never held beyond the limit.
    let mut items = run(&mut d, &[&[0x7e]]);
    for _ in 0..16 {
        items.extend(run(&mut d, &[&flood]));
        assert!(d.buffered() <= MAX_FRAME_LEN);
    }
    items.extend(run(&mut d, &[&[0x7e], &heartbeat(9)]));
    assert_eq!(
        items[0],
        Err(FrameError::TooLong {
            len: 16 * 64 * 1024,
            max: MAX_FRAME_LEN
        })
    );
    assert_eq!(serials(&items), [9]);
    // Outside any frame: only counted.
    let mut d = Deframer::new();
    let items = run(&mut d, &[&flood]);
    assert_eq!(items, [Err(FrameError::Garbage { len: flood.len() })]);
    assert_eq!(d.buffered(), 0);
}

#[test]
fn bad_escapes_are_reported_and_the_stream_goes_on() {
    let mut bad = heartbeat(1);
    bad.insert(5, 0x7d);
    bad.insert(6, 0x03);
    let mut stream = bad;
    stream.extend(heartbeat(2));
    let mut d = Deframer::new();
    let items = run(&mut d, &[&stream]);
    assert_eq!(items[0], Err(FrameError::BadEscape { next: 0x03 }));
    assert_eq!(serials(&items), [2]);
}

#[test]
fn text_results_between_frames() {
    let text = b"(740190311185,1,001,ELOCK,3,529439)";
    let mut stream = heartbeat(1);
    stream.extend_from_slice(text);
    stream.extend(heartbeat(2));
    stream.extend_from_slice(b"noise");
    stream.extend_from_slice(text);
    for cut in [0, 5, 20, 40] {
        let mut d = Deframer::new();
        let items = run(&mut d, &[&stream[..cut], &stream[cut..]]);
        let texts: Vec<_> = items
            .iter()
            .filter_map(|i| match i {
                Ok(Deframed::Text(t)) => Some(t.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(texts.len(), 2, "{items:?}");
        assert_eq!(texts[0].as_str(), std::str::from_utf8(text).unwrap());
        assert_eq!(texts[0].device().unwrap().as_str(), "740190311185");
        assert_eq!(
            texts[0].fields().collect::<Vec<_>>(),
            ["740190311185", "1", "001", "ELOCK", "3", "529439"]
        );
        assert_eq!(serials(&items), [1, 2]);
        assert!(items.contains(&Err(FrameError::Garbage { len: 5 })));
    }
}

#[test]
fn unfinished_or_binary_texts_are_garbage() {
    let mut d = Deframer::new();
    let mut stream = b"(abc\x01def".to_vec();
    stream.extend(heartbeat(4));
    let items = run(&mut d, &[&stream]);
    assert_eq!(items[0], Err(FrameError::Garbage { len: 8 }));
    assert_eq!(serials(&items), [4]);
    // A text too long to be a command result.
    let mut d = Deframer::new();
    let long = [b'('; 2000];
    let items = run(&mut d, &[&long]);
    assert!(
        items
            .iter()
            .all(|i| matches!(i, Err(FrameError::Garbage { .. })))
    );
    assert!(d.buffered() <= jt808::MAX_TEXT_LEN);
}

#[test]
fn unconsumed_items_do_not_desynchronise_the_stream() {
    let mut stream = heartbeat(1);
    stream.extend(heartbeat(2));
    stream.extend(heartbeat(3));
    let mut d = Deframer::new();
    // Take one item and drop the iterator: the rest of the chunk is still consumed.
    assert_eq!(d.push(&stream).take(1).count(), 1);
    let items = run(&mut d, &[&heartbeat(4)]);
    assert_eq!(serials(&items), [4]);
}

#[test]
fn from_wire_takes_exactly_one_frame() {
    let wire = heartbeat(5);
    assert_eq!(Frame::from_wire(&wire).unwrap().to_wire(), wire);
    let mut two = wire.clone();
    two.extend_from_slice(&wire);
    assert_eq!(Frame::from_wire(&two), Err(FrameError::NotDelimited));
    assert_eq!(Frame::from_wire(&wire[1..]), Err(FrameError::NotDelimited));
    assert_eq!(
        Frame::from_wire(&[0x7e, 1, 2, 0x7e]),
        Err(FrameError::TooShort { len: 2 })
    );
}
