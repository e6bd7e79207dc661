//! The frame reader on arbitrary bytes in arbitrary chunks: it must not panic and must keep
//! its memory bounded by one frame.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the chunk size, so that splits are fuzzed too.
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut reader = sealproto::FrameReader::new();
    for piece in rest.chunks(chunk) {
        for frame in reader.push(piece).into_iter().flatten() {
            let _ = sealproto::Hello::decode(frame.body());
            let _ = sealproto::Welcome::decode(frame.body());
        }
        assert!(reader.buffered() <= sealproto::MAX_FRAME_LEN);
    }
});
