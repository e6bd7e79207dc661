//! Decode throughput of the JT/T 808 codec on one core: frames per second through the
//! deframer, the decoder and the mapping to observations (what the gateway does per frame),
//! beside a plain copy of the same bytes in the same run (the machine is shared, so only the
//! ratio is stable).
//!
//! Two streams of realistic e-lock reports: single location reports (0x0200, with a lock
//! record, battery and mileage items) and batches of ten (0x0704).
//!
//! `cargo bench -p jt808 --bench decode`; figures are recorded in docs/benchmarks.md.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jt808::{
    Body, Deframed, Deframer, DeviceTime, Header, Location, LocationBatch, LocationItem,
    LockRecord, Message, Options, Phone, Properties,
};

/// Frames per stream.
const FRAMES: usize = 1_000;
/// Locations per 0x0704 frame.
const BATCH: usize = 10;

fn location(k: usize) -> Location {
    Location {
        alarm: 0,
        status: Location::STATUS_FIX,
        latitude: 53_900_000 + (k as u32 * 137) % 10_000,
        longitude: 27_560_000 + (k as u32 * 173) % 10_000,
        altitude_m: 210,
        speed: 650 + (k % 100) as u16,
        course: (k % 360) as u16,
        time: DeviceTime {
            year: 2026,
            month: 11,
            day: 30,
            hour: 12,
            minute: (k / 60 % 60) as u8,
            second: (k % 60) as u8,
        },
        items: vec![
            LocationItem::Mileage(123_456 + k as u32),
            LocationItem::SignalStrength(24),
            LocationItem::Satellites(9),
            LocationItem::Locks(vec![LockRecord {
                id: [0x01, 0x02, 0x03, 0x04, 0x05],
                card: [0; 5],
                battery: 80,
                status: 0,
            }]),
        ],
        trailing: Vec::new(),
    }
}

fn stream(batch: bool) -> Vec<u8> {
    let mut wire = Vec::new();
    for f in 0..FRAMES {
        let body = if batch {
            Body::LocationBatch(LocationBatch {
                kind: 0,
                locations: (0..BATCH).map(|i| location(f * BATCH + i)).collect(),
            })
        } else {
            Body::Location(location(f))
        };
        let header = Header {
            message_id: if batch { 0x0704 } else { 0x0200 },
            properties: Properties(0),
            version: None,
            phone: Phone::new("013912345678").unwrap(),
            serial: f as u16,
            subpackage: None,
        };
        wire.extend(Message { header, body }.encode().unwrap());
    }
    wire
}

/// Deframes, decodes and maps every frame; the observations made.
fn decode(wire: &[u8], deframer: &mut Deframer, options: &Options) -> usize {
    let mut observations = 0;
    // The gateway reads 4 KiB at a time.
    for chunk in wire.chunks(4096) {
        for item in deframer.push(chunk) {
            if let Ok(Deframed::Frame(frame)) = item
                && let Ok(message) = frame.decode(options)
            {
                observations += jt808::observations(&message, options).len();
            }
        }
    }
    observations
}

fn bench(c: &mut Criterion) {
    let options = Options::default();
    for (name, batch, per_frame) in [("0x0200", false, 1), ("0x0704x10", true, BATCH)] {
        let wire = stream(batch);
        let mut deframer = Deframer::new();
        assert_eq!(decode(&wire, &mut deframer, &options), FRAMES * per_frame);
        let mut g = c.benchmark_group(format!("jt808/{name}"));
        g.throughput(Throughput::Elements(FRAMES as u64));
        g.bench_function("deframe+decode+observations", |b| {
            b.iter(|| black_box(decode(black_box(&wire), &mut deframer, &options)))
        });
        let mut copy = vec![0u8; wire.len()];
        g.bench_function("memcpy", |b| {
            b.iter(|| {
                copy.copy_from_slice(black_box(&wire));
                black_box(&copy);
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
