//! A platform session and a device on arbitrary bytes: before any handshake, and after a
//! genuine one (so that the record path is reached). Neither may panic; once the noise is
//! over, a session that survived must still take a genuine report and a batch record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::{Reading, Timestamp};
use sealproto::{Device, DeviceKeys, Entropy, PlatformKeys, Received, Session};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = Timestamp::from_unix_ms(1_795_593_600_000);
    let platform = PlatformKeys::from_secrets([1; 32], [2; 32]);
    let keys = DeviceKeys::from_secrets("D1".parse().unwrap(), [3; 32], [4; 32]);
    let public = keys.public();
    let mut device = Device::new(keys, platform.public());
    let mut session = Session::new(platform);
    let handshake = mode & 1 == 1;
    if handshake {
        device.connect(Entropy::new([5; 32], [6; 32]));
        session.receive(&device.take_outgoing());
        session
            .accept(&public, Entropy::new([7; 32], [8; 32]))
            .unwrap();
        device.receive(now, &session.take_outgoing());
        device.report(Reading::empty(now)).unwrap();
        session.receive(&device.take_outgoing());
    }
    let chunk = usize::from(mode >> 1).max(1);
    for piece in rest.chunks(chunk) {
        let _ = session.receive(piece);
        let _ = device.receive(now, piece);
    }
    if handshake && !session.is_closed() {
        let seq = device.report(Reading::empty(now)).unwrap();
        let mut up = device.take_outgoing();
        up.extend_from_slice(&[0; sealproto::MAX_FRAME_LEN]);
        let got = session.receive(&up);
        assert!(got.iter().any(|r| matches!(
            r,
            Ok(Received::Report { observation, .. }) if observation.seq == Some(seq)
        )));
        // And a batch record after it: every report of it, in order.
        let seqs = device.report_many([Reading::empty(now); 3]).unwrap();
        let got = session.receive(&device.take_outgoing());
        let delivered: Vec<u64> = got
            .iter()
            .filter_map(|r| match r {
                Ok(Received::Report { observation, .. }) => observation.seq,
                _ => None,
            })
            .collect();
        assert_eq!(delivered, seqs.collect::<Vec<u64>>());
    }
});
