//! Supervisor throughput: observations per second with 10,000 active transits on routes of 200
//! points and 500 zones, beside the throughput of merely deserialising the same observations
//! from JSON in the same run (the baseline: the machine is shared, so only the ratio is stable).
//!
//! `cargo bench -p supervisor`; figures are recorded in docs/benchmarks.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use model::{Geometry, LockState, Observation, Reading, Timestamp, Transit, Zone, ZoneKind};
use supervisor::{Input, Supervisor};

const N_TRANSITS: usize = 10_000;
const ROUTE_POINTS: usize = 200;
const N_ZONES: usize = 500;
const REPORTS_PER_DEVICE: usize = 20;
const T0_MS: i64 = 1_795_600_000_000;
/// Reports per call, as the ingest path hands over a committed batch.
const BATCH: usize = 256;

/// A small deterministic generator, so every run supervises the same fleet.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

struct Fleet {
    zones: Vec<Zone>,
    transits: Vec<Transit>,
    observations: Vec<Observation>,
}

fn fleet() -> Fleet {
    let mut rng = Lcg(42);
    // Zones over a 10° × 6° region (about the size of Belarus and its neighbours).
    let zones: Vec<Zone> = (0..N_ZONES)
        .map(|i| Zone {
            id: format!("Z{i}").parse().unwrap(),
            kind: if i % 5 == 0 {
                ZoneKind::Office
            } else {
                ZoneKind::RestArea
            },
            area: Geometry::Point([rng.range(22.0, 32.0), rng.range(50.0, 56.0)]),
            radius_m: Some(rng.range(200.0, 1500.0)),
            name: None,
        })
        .collect();
    let mut routes = Vec::with_capacity(N_TRANSITS);
    let transits: Vec<Transit> = (0..N_TRANSITS)
        .map(|i| {
            let Geometry::Point(start) = zones[i % N_ZONES].area else { unreachable!() };
            // About 1.5 km between route points: a 300 km route with gentle turns.
            let mut heading = rng.range(0.0, std::f64::consts::TAU);
            let mut p = start;
            let route: Vec<[f64; 2]> = (0..ROUTE_POINTS)
                .map(|_| {
                    let here = p;
                    heading += rng.range(-0.3, 0.3);
                    p = [p[0] + 0.022 * heading.cos(), p[1] + 0.0135 * heading.sin()];
                    here
                })
                .collect();
            routes.push(route.clone());
            let stops: Vec<String> = (0..3).map(|k| format!("Z{}", (i * 7 + k * 131) % N_ZONES)).collect();
            serde_json::from_value(serde_json::json!({
                "id": format!("T{i}"), "device": format!("D{i}"),
                "departure": format!("Z{}", i % N_ZONES), "destination": format!("Z{}", (i + 250) % N_ZONES),
                "route": {"type": "LineString", "coordinates": route},
                "sealed_at": Timestamp::from_unix_ms(T0_MS - 3_600_000).to_string(),
                "deadline": Timestamp::from_unix_ms(T0_MS + 12 * 3_600_000).to_string(),
                "stop_zones": stops,
            }))
            .unwrap()
        })
        .collect();
    // Every device reports once a minute from somewhere along its route: most drive on, some
    // stand still (stop detection), a few stray outside the corridor (deviation).
    let mut observations = Vec::with_capacity(N_TRANSITS * REPORTS_PER_DEVICE);
    let starts: Vec<usize> = (0..N_TRANSITS)
        .map(|_| rng.range(20.0, 150.0) as usize)
        .collect();
    for k in 0..REPORTS_PER_DEVICE {
        for (i, route) in routes.iter().enumerate() {
            let behaviour = i % 20;
            let idx = if behaviour == 0 {
                starts[i]
            } else {
                starts[i] + k
            };
            let [lon, lat] = route[idx];
            let off = if behaviour == 1 && k > 10 { 0.05 } else { 0.0 };
            let mut r = Reading::empty(Timestamp::from_unix_ms(
                T0_MS + (k as i64) * 60_000 + i as i64,
            ));
            r.lat = Some(lat + rng.range(-0.0002, 0.0002) + off);
            r.lon = Some(lon + rng.range(-0.0003, 0.0003));
            r.accuracy_m = Some(rng.range(3.0, 30.0));
            r.speed_kmh = Some(if behaviour == 0 {
                0.0
            } else {
                rng.range(50.0, 90.0)
            });
            r.lock = Some(LockState::Locked);
            r.battery_pct = Some(80.0 - k as f64 * 0.1);
            r.seq = Some(k as u64 + 1);
            observations.push(r.with_device(format!("D{i}").parse().unwrap()));
        }
    }
    Fleet {
        zones,
        transits,
        observations,
    }
}

fn supervisor_for(f: &Fleet) -> Supervisor {
    let mut sup = Supervisor::new(&f.zones).unwrap();
    for t in &f.transits {
        sup.declare(t).unwrap();
    }
    // Seal everything before the measured stream starts.
    sup.handle(
        Input::Tick(Timestamp::from_unix_ms(T0_MS - 1)),
        &mut Vec::new(),
    );
    sup
}

/// Times one pass of `stream` through a freshly built supervisor (the build is not timed).
fn supervise(b: &mut criterion::Bencher<'_>, f: &Fleet, stream: &[Observation]) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        let mut out = Vec::with_capacity(1024);
        for _ in 0..iters {
            let mut sup = supervisor_for(f);
            let start = Instant::now();
            for batch in stream.chunks(BATCH) {
                sup.handle_observations(batch, &mut out);
                out.clear();
            }
            total += start.elapsed();
            black_box(&sup);
        }
        total
    })
}

fn bench(c: &mut Criterion) {
    let f = fleet();
    // First, a sanity check: the measured stream does raise alarms (deviations and stops), so
    // the rules ran. And the resident memory one supervisor takes per transit, routes
    // included: measured on a second supervisor, once the allocator has reused what building
    // the fleet freed.
    let mut sup = supervisor_for(&f);
    let before = resident_bytes();
    let second = supervisor_for(&f);
    let after = resident_bytes();
    drop(second);
    // The same fleet where transits share 100 declared corridors, as real traffic does.
    let shared_fleet = Fleet {
        zones: f.zones.clone(),
        transits: f
            .transits
            .iter()
            .enumerate()
            .map(|(i, t)| Transit {
                route: f.transits[i % 100].route.clone(),
                ..t.clone()
            })
            .collect(),
        observations: Vec::new(),
    };
    let shared_before = resident_bytes();
    let shared = supervisor_for(&shared_fleet);
    let shared_after = resident_bytes();
    drop(shared);
    let mut out = Vec::new();
    for o in &f.observations {
        sup.handle(Input::Observation(o), &mut out);
    }
    let alarms = out
        .iter()
        .filter(|o| matches!(o, supervisor::Output::Alarm(_)))
        .count();
    eprintln!(
        "{} observations, {} transits, {} zones, {} route points each: {} alarms raised",
        f.observations.len(),
        N_TRANSITS,
        N_ZONES,
        ROUTE_POINTS,
        alarms
    );
    if let (Some(before), Some(after)) = (shared_before, shared_after) {
        eprintln!(
            "resident memory of the supervisor: {} bytes per transit (transits on 100 shared routes)",
            after.saturating_sub(before) / N_TRANSITS as u64,
        );
    }
    if let (Some(before), Some(after)) = (before, after) {
        eprintln!(
            "resident memory of the supervisor: {} KiB, {} bytes per transit (each with its own {}-point route)",
            after.saturating_sub(before) / 1024,
            after.saturating_sub(before) / N_TRANSITS as u64,
            ROUTE_POINTS
        );
    }

    let lines: Vec<String> = f
        .observations
        .iter()
        .map(|o| serde_json::to_string(o).unwrap())
        .collect();
    let n = f.observations.len() as u64;
    let mut group = c.benchmark_group("supervisor");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(n));

    group.bench_function("deserialise_json_observations", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(serde_json::from_str::<Observation>(line).unwrap());
            }
        })
    });

    // The worst case for memory: every report is for another of the 10,000 devices, so each
    // one finds its transit's state out of cache.
    group.bench_function("supervise_observations", |b| {
        supervise(b, &f, &f.observations)
    });
    // The same reports grouped by device (each device's in time order), as a batch from a
    // gateway connection arrives: the same work, with the transit's state in cache.
    let mut grouped = f.observations.clone();
    grouped.sort_by(|a, b| (a.device.as_str(), a.t).cmp(&(b.device.as_str(), b.t)));
    group.bench_function("supervise_observations_grouped_by_device", |b| {
        supervise(b, &f, &grouped)
    });
    group.finish();
}

/// Resident set size from /proc (Linux), in bytes.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

criterion_group!(benches, bench);
criterion_main!(benches);
