//! Message and evidence decoding on arbitrary bytes (report batches included): no panic, and
//! whatever decodes encodes back to the same bytes (one encoding per message).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = sealproto::Message::decode(data) {
        assert_eq!(m.encode(), data);
        // A batch that decodes is one that could have been made.
        if let sealproto::Message::Batch(b) = &m {
            assert!(sealproto::Batch::new(b.reports().to_vec()).is_some());
        }
    }
    let record = sealproto::EvidenceRecord::from_parts(data.to_vec(), [0; 64]);
    if let Ok(content) = record.content() {
        let _ = content.observation.validate();
    }
});
