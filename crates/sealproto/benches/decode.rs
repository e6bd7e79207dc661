//! Decode throughput of the native protocol on one core: reports per second through the
//! platform's session (frame read, CRC, ChaCha20-Poly1305 decrypt, replay check, message
//! decode, observation), beside a plain copy of the same bytes in the same run (the machine is
//! shared, so only the ratio is stable).
//!
//! The records are what the reference device sends for realistic e-lock readings (position,
//! speed, battery, lock): one report per record (`native/report`), and report batch records of
//! 10 reports (`native/batch10`, as a device sends stored positions, like JT/T 808's 0x0704
//! × 10). Each measured pass runs on a fresh session at the same point (handshake done, before
//! the first record); the handshake is outside the measurement.
//!
//! `cargo bench -p sealproto --bench decode`; figures are recorded in docs/benchmarks.md.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use model::{LockState, Reading, Timestamp};
use sealproto::{Device, DeviceKeys, Entropy, PlatformKeys, PublicKeys, Received, Session};

/// Reports per pass.
const RECORDS: usize = 1_000;
const T0_MS: i64 = 1_795_600_000_000;

fn platform() -> PlatformKeys {
    PlatformKeys::from_secrets([1; 32], [2; 32])
}

fn platform_entropy() -> Entropy {
    Entropy::new([7; 32], [8; 32])
}

/// The device's hello and the records of `RECORDS` reports, `per_record` to a record, with
/// fixed randomness on both sides, so that a new session accepting the same hello derives the
/// same keys.
fn wire(per_record: usize) -> (Vec<u8>, Vec<u8>, PublicKeys) {
    let keys = DeviceKeys::from_secrets("LOCK-7".parse().unwrap(), [3; 32], [4; 32]);
    let device_public = keys.public();
    let mut device = Device::new(keys, platform().public());
    let mut session = Session::new(platform());
    device.connect(Entropy::new([5; 32], [6; 32]));
    let hello = device.take_outgoing();
    session.receive(&hello);
    session.accept(&device_public, platform_entropy()).unwrap();
    let now = Timestamp::from_unix_ms(T0_MS);
    device.receive(now, &session.take_outgoing());
    assert!(device.is_connected());
    let mut readings = Vec::with_capacity(RECORDS);
    for k in 0..RECORDS {
        let mut r = Reading::empty(Timestamp::from_unix_ms(T0_MS + k as i64 * 10_000));
        r.lat = Some(53.9 + k as f64 * 1e-4);
        r.lon = Some(27.56 + k as f64 * 1e-4);
        r.fix = Some(true);
        r.accuracy_m = Some(5.0);
        r.speed_kmh = Some(65.0);
        r.course_deg = Some(90.0);
        r.battery_pct = Some(80.0);
        r.lock = Some(LockState::Locked);
        readings.push(r);
    }
    for chunk in readings.chunks(per_record) {
        if let [one] = chunk {
            device.report(*one).unwrap();
        } else {
            device.report_many(chunk.iter().copied()).unwrap();
        }
    }
    (hello, device.take_outgoing(), device_public)
}

/// A platform session at the point where the records start.
fn fresh(hello: &[u8], device: &PublicKeys) -> Session {
    let mut session = Session::new(platform());
    session.receive(hello);
    session.accept(device, platform_entropy()).unwrap();
    session.take_outgoing();
    session
}

/// Reads the records (4 KiB at a time, as the gateway does); the reports decoded.
fn decode(session: &mut Session, records: &[u8]) -> usize {
    let mut reports = 0;
    for chunk in records.chunks(4096) {
        for got in session.receive(chunk) {
            if let Ok(Received::Report { observation, .. }) = got {
                black_box(&observation);
                reports += 1;
            }
        }
    }
    reports
}

fn bench(c: &mut Criterion) {
    for (group, per_record) in [("native/report", 1), ("native/batch10", 10)] {
        bench_group(c, group, per_record);
    }
}

fn bench_group(c: &mut Criterion, group: &str, per_record: usize) {
    let (hello, records, device) = wire(per_record);
    assert_eq!(decode(&mut fresh(&hello, &device), &records), RECORDS);
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function("frame+decrypt+decode", |b| {
        b.iter_batched(
            || fresh(&hello, &device),
            |mut session| black_box(decode(&mut session, black_box(&records))),
            BatchSize::PerIteration,
        )
    });
    let mut copy = vec![0u8; records.len()];
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            copy.copy_from_slice(black_box(&records));
            black_box(&copy);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
