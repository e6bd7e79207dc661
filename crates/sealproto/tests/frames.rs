//! The frame reader on a stream: resynchronisation, limits and the CRC.

use sealproto::{Frame, FrameError, FrameKind, FrameReader, MAX_BODY_LEN, MAX_FRAME_LEN, crc16};

fn frames(items: &[Result<Frame, FrameError>]) -> Vec<&[u8]> {
    items
        .iter()
        .filter_map(|r| r.as_ref().ok().map(Frame::body))
        .collect()
}

#[test]
fn crc_check_value() {
    assert_eq!(crc16(b"123456789"), 0x29b1);
}

#[test]
fn layout() {
    let f = Frame::new(FrameKind::Record, b"abc").unwrap();
    let crc = crc16(&f.as_bytes()[..9]).to_be_bytes();
    assert_eq!(
        f.as_bytes(),
        [b'S', b'W', 1, 3, 0, 3, b'a', b'b', b'c', crc[0], crc[1]]
    );
    assert_eq!(Frame::parse(f.as_bytes()).unwrap(), f);
    assert!(Frame::new(FrameKind::Hello, &[0; MAX_BODY_LEN + 1]).is_err());
}

#[test]
fn noise_around_frames_is_skipped_and_counted() {
    let a = Frame::new(FrameKind::Hello, b"first").unwrap();
    let b = Frame::new(FrameKind::Welcome, b"").unwrap();
    let mut stream = b"\r\nnoise S".to_vec();
    stream.extend_from_slice(a.as_bytes());
    stream.extend_from_slice(b"SWSW");
    stream.extend_from_slice(b.as_bytes());
    let mut reader = FrameReader::new();
    let got = reader.push(&stream);
    assert_eq!(frames(&got), [&b"first"[..], b""]);
    let garbage: usize = got
        .iter()
        .filter_map(|r| match r {
            Err(FrameError::Garbage { len }) => Some(*len),
            _ => None,
        })
        .sum();
    // "SWSW" looked like a magic for a moment; its version byte gave it away.
    assert!(garbage >= 9, "{got:?}");
    assert_eq!(reader.buffered(), 0);
}

#[test]
fn a_damaged_frame_does_not_hide_the_next_one() {
    let a = Frame::new(FrameKind::Record, &[7; 40]).unwrap();
    let b = Frame::new(FrameKind::Record, &[8; 10]).unwrap();
    let mut damaged = a.as_bytes().to_vec();
    damaged[5] = 0xff; // the length now runs past the next frame
    let mut stream = damaged;
    stream.extend_from_slice(b.as_bytes());
    stream.extend_from_slice(&[0; 300]); // enough to complete the false length
    let mut reader = FrameReader::new();
    let got = reader.push(&stream);
    assert!(
        got.iter()
            .any(|r| matches!(r, Err(FrameError::BadCrc { .. }))),
        "{got:?}"
    );
    assert_eq!(frames(&got), [&[8; 10][..]]);
}

#[test]
fn too_long_unsupported_and_unknown() {
    let mut reader = FrameReader::new();
    let got = reader.push(&[b'S', b'W', 1, 3, 0xff, 0xff]);
    assert_eq!(
        got[0],
        Err(FrameError::TooLong {
            len: 0xffff,
            max: MAX_BODY_LEN
        })
    );
    let mut v2 = Frame::new(FrameKind::Record, b"x").unwrap().into_bytes();
    v2[2] = 2;
    let n = v2.len();
    let crc = crc16(&v2[..n - 2]).to_be_bytes();
    v2[n - 2..].copy_from_slice(&crc);
    assert_eq!(
        Frame::parse(&v2),
        Err(FrameError::UnsupportedVersion { version: 2 })
    );
    v2[2] = 1;
    v2[3] = 9;
    let crc = crc16(&v2[..n - 2]).to_be_bytes();
    v2[n - 2..].copy_from_slice(&crc);
    assert_eq!(Frame::parse(&v2), Err(FrameError::UnknownKind { kind: 9 }));
}

#[test]
fn memory_stays_bounded_under_a_flood() {
    let mut reader = FrameReader::new();
    // A header announcing the largest body, then never finishing it.
    reader.push(&[b'S', b'W', 1, 3, 0x08, 0x00]);
    for _ in 0..100 {
        reader.push(&[0x55; 1000]);
        assert!(reader.buffered() <= MAX_FRAME_LEN);
    }
    for _ in 0..100 {
        reader.push(b"SWSWSWSWSWSWSW");
        assert!(reader.buffered() <= MAX_FRAME_LEN);
    }
}
