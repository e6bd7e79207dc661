//! Shared set-up: fixed keys, a device and a platform session talking through byte queues.
#![allow(dead_code)]

use model::{Reading, Timestamp};
use sealproto::{
    Device, DeviceKeys, DeviceOutput, Entropy, Error, PlatformKeys, PublicKeys, Received, Session,
};

pub const T0: Timestamp = Timestamp::from_unix_ms(1_764_057_600_000); // 2025-11-25T08:00:00Z

pub fn platform_keys() -> PlatformKeys {
    PlatformKeys::from_secrets([0x11; 32], [0x12; 32])
}

pub fn device_keys(id: &str, seed: u8) -> DeviceKeys {
    DeviceKeys::from_secrets(id.parse().unwrap(), [seed; 32], [seed.wrapping_add(1); 32])
}

pub fn entropy(seed: u8) -> Entropy {
    Entropy::new([seed; 32], [seed.wrapping_add(0x80); 32])
}

#[derive(Debug)]
pub struct Pair {
    pub device: Device,
    pub session: Session,
    pub device_public: PublicKeys,
}

impl Pair {
    /// A device `D1` and a session, handshake done and confirmed by a first report.
    pub fn connected() -> Pair {
        let mut pair = Pair::handshaken();
        pair.device.report(Reading::empty(T0)).unwrap();
        let got = pair.send_up();
        assert!(
            matches!(got[0], Ok(Received::Established { .. })),
            "{got:?}"
        );
        pair
    }

    /// Hello and welcome exchanged; the device has not yet sent a record.
    pub fn handshaken() -> Pair {
        let keys = device_keys("D1", 0x21);
        let device_public = keys.public();
        let mut pair = Pair {
            device: Device::new(keys, platform_keys().public()),
            session: Session::new(platform_keys()),
            device_public,
        };
        pair.reconnect(1);
        pair
    }

    /// A new connection: a new session and a new handshake; returns what the device saw.
    pub fn reconnect(&mut self, seed: u8) -> Vec<Result<DeviceOutput, Error>> {
        self.session = Session::new(platform_keys());
        self.device.connect(entropy(seed));
        let got = self.send_up();
        assert!(
            matches!(&got[..], [Ok(Received::Hello { device })] if device.as_str() == "D1"),
            "{got:?}"
        );
        self.session
            .accept(&self.device_public, entropy(seed.wrapping_add(0x40)))
            .unwrap();
        let out = self.send_down();
        assert!(self.device.is_connected(), "{out:?}");
        out
    }

    /// Delivers what the device has queued to the platform.
    pub fn send_up(&mut self) -> Vec<Result<Received, Error>> {
        let bytes = self.device.take_outgoing();
        self.session.receive(&bytes)
    }

    /// Delivers what the platform has queued to the device.
    pub fn send_down(&mut self) -> Vec<Result<DeviceOutput, Error>> {
        let bytes = self.session.take_outgoing();
        self.device.receive(T0, &bytes)
    }
}

/// Re-computes the CRC of a frame after a test altered it, so that the alteration reaches the
/// layer under test instead of failing the CRC.
pub fn fix_crc(frame: &mut [u8]) {
    let n = frame.len();
    let crc = sealproto::crc16(&frame[..n - 2]);
    frame[n - 2..].copy_from_slice(&crc.to_be_bytes());
}
