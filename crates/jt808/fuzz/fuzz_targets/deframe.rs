//! The deframer on arbitrary bytes in arbitrary chunks: it must not panic, must keep its
//! memory bounded, and every frame it yields goes through the decoder and the mapping.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the chunk size, so that splits are fuzzed too.
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut deframer = jt808::Deframer::new();
    let options = jt808::Options::default();
    for piece in rest.chunks(chunk) {
        for item in deframer.push(piece) {
            if let Ok(jt808::Deframed::Frame(frame)) = item {
                if let Ok(message) = frame.decode(&options) {
                    let _ = jt808::observations(&message, &options);
                    let _ = jt808::describe(&message);
                }
            }
        }
        assert!(deframer.buffered() <= jt808::MAX_FRAME_LEN.max(jt808::MAX_TEXT_LEN));
    }
});
