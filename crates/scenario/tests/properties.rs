//! Properties of the supervisor and the replay over generated journeys:
//! - the supervisor never panics, whatever the observations (including nonsense values that
//!   validation would refuse, since a bug upstream must not take supervision down);
//! - replay is deterministic, byte for byte;
//! - the order of observations in the file (shuffled within a few minutes, with duplicates)
//!   does not change the output.
//!
//! The generated transits declare a checkpoint, one of them two legs, and quick-mode gates read
//! them, so those rules are under the same properties; half the time the first transit has a
//! second device (several devices per transit).

use model::{
    Action, ActionKind, CheckpointRead, DeviceEvent, DeviceEvents, DeviceId, DoorState, Gate,
    Geometry, HousingState, Limits, LockState, Observation, Reading, RopeState, Rules, Timestamp,
    Transit, Zone, ZoneKind,
};
use proptest::prelude::*;
use scenario::Scenario;
use supervisor::{Input, Supervisor};

const T0_MS: i64 = 1_795_600_000_000; // 2026-11-25

fn zone(id: &str, kind: ZoneKind, lon: f64, lat: f64, radius_m: f64) -> Zone {
    Zone {
        id: id.parse().unwrap(),
        kind,
        area: Geometry::Point([lon, lat]),
        radius_m: Some(radius_m),
        name: None,
    }
}

fn base(devices: &[&str]) -> (Vec<Zone>, Vec<Transit>) {
    let zones = vec![
        zone("DEP", ZoneKind::Office, 27.56, 53.90, 1500.0),
        zone("REST", ZoneKind::RestArea, 26.80, 53.50, 300.0),
        // Halfway along the route.
        zone("CHK", ZoneKind::Checkpoint, 25.625, 52.9805, 1000.0),
        zone("DST", ZoneKind::Office, 23.69, 52.10, 1500.0),
    ];
    let route: Vec<[f64; 2]> = (0..=40)
        .map(|i| {
            let f = i as f64 / 40.0;
            [
                27.56 + (23.69 - 27.56) * f,
                53.90 + (52.10 - 53.90) * f + 0.02 * (f * 9.0).sin(),
            ]
        })
        .collect();
    let transits = devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let text = serde_json::json!({
                "id": format!("T{i}"), "device": d, "departure": "DEP", "destination": "DST",
                "route": {"type": "LineString", "coordinates": route},
                "sealed_at": Timestamp::from_unix_ms(T0_MS + i as i64 * 60_000).to_string(),
                "deadline": Timestamp::from_unix_ms(T0_MS + 8 * 3_600_000).to_string(),
                "stop_zones": ["REST"],
                "rules": Rules { temperature_c: Some(Limits { min: Some(2.0), max: Some(8.0) }), ..Rules::default() },
                "checkpoints": [{"zone": "CHK", "within": "PT2H"}],
            });
            let mut transit: Transit = serde_json::from_value(text).unwrap();
            if i % 2 == 1 {
                // Two legs, the first with rules of its own and half the route.
                transit.legs = serde_json::from_value(serde_json::json!([
                    {"mode": "rail", "from": "DEP", "to": "REST", "train": "X8012",
                     "route": {"type": "LineString", "coordinates": route[..=20]},
                     "rules": {"corridor_m": 3000, "comm_loss_after": "PT6H"}},
                    {"mode": "road", "from": "REST", "to": "DST"}
                ]))
                .unwrap();
            }
            transit
        })
        .collect();
    (zones, transits)
}

/// One step of a device's journey: time advance, movement, and what the report says.
#[derive(Clone, Debug)]
struct Step {
    dt_s: u32,
    along: f64,
    across_m: f64,
    fix: u8,
    accuracy_m: Option<f64>,
    speed_kmh: Option<f64>,
    lock: Option<bool>,
    rope_cut: Option<bool>,
    breached: Option<bool>,
    door_open: Option<bool>,
    battery: Option<f64>,
    temp: Option<f64>,
    fuel: Option<f64>,
    events: u16,
    reuse_seq: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        (
            1u32..900,
            0.0f64..0.02,
            -3000.0f64..3000.0,
            0u8..10,
            proptest::option::of(0.0f64..500.0),
        ),
        (
            proptest::option::of(0.0f64..130.0),
            proptest::option::of(any::<bool>()),
            proptest::option::of(prop::bool::weighted(0.05)),
        ),
        (
            proptest::option::of(prop::bool::weighted(0.05)),
            proptest::option::of(prop::bool::weighted(0.05)),
            proptest::option::of(0.0f64..100.0),
        ),
        (
            proptest::option::of(-5.0f64..15.0),
            proptest::option::of(0.0f64..100.0),
            0u16..512,
            prop::bool::weighted(0.03),
        ),
    )
        .prop_map(
            |(
                (dt_s, along, across_m, fix, accuracy_m),
                (speed_kmh, lock, rope_cut),
                (breached, door_open, battery),
                (temp, fuel, events, reuse_seq),
            )| Step {
                dt_s,
                along,
                across_m,
                fix,
                accuracy_m,
                speed_kmh,
                lock,
                rope_cut,
                breached,
                door_open,
                battery,
                temp,
                fuel,
                events: if events < 480 { 0 } else { events },
                reuse_seq,
            },
        )
}

fn observations(device: &str, steps: &[Step]) -> Vec<Observation> {
    let device: DeviceId = device.parse().unwrap();
    let mut t = T0_MS - 600_000;
    let mut f = 0.0f64;
    let mut seq = 0u64;
    steps
        .iter()
        .map(|s| {
            t += i64::from(s.dt_s) * 1000;
            f = (f + s.along).min(1.0);
            seq += 1;
            let mut r = Reading::empty(Timestamp::from_unix_ms(t));
            if s.fix > 0 {
                let across_deg = s.across_m / 111_000.0;
                r.lon = Some(27.56 + (23.69 - 27.56) * f + across_deg);
                r.lat = Some(53.90 + (52.10 - 53.90) * f + 0.02 * (f * 9.0).sin() + across_deg);
                r.fix = if s.fix == 1 { Some(false) } else { None };
            } else {
                r.fix = Some(false);
            }
            r.accuracy_m = s.accuracy_m;
            r.speed_kmh = s.speed_kmh;
            r.lock = s.lock.map(|l| {
                if l {
                    LockState::Locked
                } else {
                    LockState::Unlocked
                }
            });
            r.rope = s
                .rope_cut
                .map(|c| if c { RopeState::Cut } else { RopeState::Intact });
            r.housing = s.breached.map(|c| {
                if c {
                    HousingState::Breached
                } else {
                    HousingState::Intact
                }
            });
            r.door = s.door_open.map(|o| {
                if o {
                    DoorState::Open
                } else {
                    DoorState::Closed
                }
            });
            r.battery_pct = s.battery;
            r.temperature_c = s.temp;
            r.fuel_pct = s.fuel;
            let mut ev = DeviceEvents::default();
            for (i, e) in DeviceEvent::ALL.into_iter().enumerate() {
                if s.events & (1 << i) != 0 {
                    ev.insert(e);
                }
            }
            r.events = ev;
            r.seq = Some(if s.reuse_seq && seq > 3 { seq - 3 } else { seq });
            r.with_device(device.clone())
        })
        .collect()
}

fn scenario(steps_a: &[Step], steps_b: &[Step], actions: Vec<Action>) -> Scenario {
    let (zones, mut transits) = base(&["D1", "D2"]);
    let mut obs = observations("D1", steps_a);
    obs.extend(observations("D2", steps_b));
    let read = |minutes: i64, zone: &str, device: &str, gate: Option<Gate>| CheckpointRead {
        t: Timestamp::from_unix_ms(T0_MS + minutes * 60_000),
        reader: "R1".parse().unwrap(),
        zone: zone.parse().unwrap(),
        device: device.parse().unwrap(),
        intact: steps_b.len().is_multiple_of(2),
        data: None,
        gate,
    };
    let mut reads = vec![
        read(60, "REST", "D2", None),
        read(100, "CHK", "D2", None),
        // Quick mode: an arrival gate at the destination for D1, one away from it for D2.
        read(360, "DST", "D1", Some(Gate::Arrival)),
        read(90, "REST", "D2", Some(Gate::Arrival)),
    ];
    if steps_a.len().is_multiple_of(2) {
        // Several devices per transit: a second container on T0 with its own lock, reporting a
        // journey of its own making, read at the checkpoint and by the arrival gate.
        transits[0].devices = serde_json::from_value(serde_json::json!([{"id": "D1B"}])).unwrap();
        obs.extend(observations("D1B", &steps_a[steps_a.len() / 2..]));
        reads.push(read(110, "CHK", "D1B", None));
        reads.push(read(361, "DST", "D1B", Some(Gate::Arrival)));
    }
    if steps_b.len() % 2 == 1 {
        // Sealed by a departure gate instead of at `sealed_at`.
        transits[1].sealed_at = None;
        reads.push(read(2, "DEP", "D2", Some(Gate::Departure)));
    }
    Scenario {
        name: "generated".into(),
        description: None,
        zones,
        transits,
        actions,
        reads,
        observations: obs,
        until: Some(Timestamp::from_unix_ms(T0_MS + 12 * 3_600_000)),
    }
}

fn actions() -> impl Strategy<Value = Vec<Action>> {
    let kinds = prop::sample::select(vec![
        ActionKind::Arrive,
        ActionKind::Release,
        ActionKind::Inspect,
        ActionKind::AuthorizeUnseal,
        ActionKind::Unseal,
        ActionKind::Close,
        ActionKind::ExtendDeadline,
        ActionKind::Seal,
    ]);
    prop::collection::vec((0i64..36_000, kinds, 0u8..2), 0..4).prop_map(|v| {
        v.into_iter()
            .map(|(dt_s, action, which)| Action {
                t: Timestamp::from_unix_ms(T0_MS + dt_s * 1000),
                transit: format!("T{which}").parse().unwrap(),
                action,
                deadline: Some(Timestamp::from_unix_ms(T0_MS + 10 * 3_600_000)),
                device: None,
                reason: None,
            })
            .collect()
    })
}

/// Moves each observation by a few positions in the list (never more than `window` minutes of
/// report time apart) and duplicates some of them.
fn perturb(obs: &[Observation], swaps: &[(usize, usize)], dups: &[usize]) -> Vec<Observation> {
    let mut v = obs.to_vec();
    for &(i, k) in swaps {
        if v.is_empty() {
            break;
        }
        let i = i % v.len();
        let j = (i + 1 + k % 6).min(v.len() - 1);
        if (v[j].t.unix_ms() - v[i].t.unix_ms()).abs() <= 5 * 60_000 {
            v.swap(i, j);
        }
    }
    for &d in dups {
        if !v.is_empty() {
            let o = v[d % v.len()].clone();
            v.insert(d.wrapping_mul(7) % v.len(), o);
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn supervisor_never_panics(a in prop::collection::vec(step(), 0..120), b in prop::collection::vec(step(), 0..120), acts in actions(), weird in prop::collection::vec((any::<f64>(), any::<f64>(), any::<f64>()), 0..20)) {
        let mut s = scenario(&a, &b, acts);
        // Values validation would refuse: the engine must still not fall over.
        for (i, (x, y, z)) in weird.into_iter().enumerate() {
            let mut r = Reading::empty(Timestamp::from_unix_ms(T0_MS + i as i64 * 7_000));
            (r.lat, r.lon, r.accuracy_m, r.speed_kmh, r.temperature_c, r.fuel_pct, r.battery_pct) = (Some(x), Some(y), Some(z), Some(z), Some(x), Some(y), Some(z));
            s.observations.push(r.with_device("D1".parse().unwrap()));
        }
        let mut sup = Supervisor::new(&s.zones).unwrap();
        for t in &s.transits {
            sup.declare(t).unwrap();
        }
        let mut out = Vec::new();
        for a in &s.actions {
            sup.handle(Input::Action(a), &mut out);
        }
        // In file order, late reports and all: no sorting to help.
        for o in &s.observations {
            sup.handle(Input::Observation(o), &mut out);
        }
        for r in &s.reads {
            sup.handle(Input::Read(r), &mut out);
        }
        sup.handle(Input::Tick(Timestamp::from_unix_ms(T0_MS + 48 * 3_600_000)), &mut out);
        for o in &out {
            if let supervisor::Output::Alarm(a) = o {
                prop_assert!((1..=4).contains(&a.grade));
            }
        }
    }

    #[test]
    fn batches_do_what_single_inputs_do(a in prop::collection::vec(step(), 1..150), b in prop::collection::vec(step(), 0..80), batch in 1usize..64) {
        let s = scenario(&a, &b, Vec::new());
        let mut obs = s.observations.clone();
        obs.sort_by_key(|o| o.t);
        let run = |batched: bool| {
            let mut sup = Supervisor::new(&s.zones).unwrap();
            for t in &s.transits {
                sup.declare(t).unwrap();
            }
            let mut out = Vec::new();
            if batched {
                for chunk in obs.chunks(batch) {
                    sup.handle_observations(chunk, &mut out);
                }
            } else {
                for o in &obs {
                    sup.handle(Input::Observation(o), &mut out);
                }
            }
            sup.handle(Input::Tick(Timestamp::from_unix_ms(T0_MS + 24 * 3_600_000)), &mut out);
            out
        };
        prop_assert_eq!(run(true), run(false));
    }

    #[test]
    fn replay_is_deterministic(a in prop::collection::vec(step(), 1..150), b in prop::collection::vec(step(), 0..60), acts in actions()) {
        let s = scenario(&a, &b, acts);
        let first = scenario::replay_lines(&s, true).unwrap().join("\n");
        let second = scenario::replay_lines(&s.clone(), true).unwrap().join("\n");
        prop_assert_eq!(first, second);
    }

    #[test]
    fn order_within_minutes_and_duplicates_do_not_change_alarms(
        a in prop::collection::vec(step(), 1..150),
        b in prop::collection::vec(step(), 0..60),
        acts in actions(),
        swaps in prop::collection::vec((any::<usize>(), any::<usize>()), 0..80),
        dups in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let s = scenario(&a, &b, acts);
        let mut shuffled = s.clone();
        shuffled.observations = perturb(&s.observations, &swaps, &dups);
        prop_assert_eq!(scenario::replay_lines(&s, true).unwrap(), scenario::replay_lines(&shuffled, true).unwrap());
    }
}
