//! One transit under supervision: its lifecycle and every alarm rule (docs/alarms.md).

use std::collections::VecDeque;
use std::sync::Arc;

use geometry::{LocalFrame, LonLat, Route};
use model::{
    Action, ActionKind, Alarm, AlarmKind, CheckpointRead, DeviceEvent, DeviceEvents, DeviceId,
    DoorState, Duration, Event, EventKind, Evidence, Gate, HousingState, LockState, ReaderId,
    Reading, RopeState, RuleSet, Sensor, Timestamp, Transit, TransitId, TransitState,
};

use crate::timers::{TimerKind, Timers};
use crate::{Output, SetupError, World, text};

/// What a transit's handlers need from the supervisor around them.
pub(crate) struct Cx<'a> {
    pub(crate) world: &'a World,
    pub(crate) timers: &'a mut Timers,
    pub(crate) out: &'a mut Vec<Output>,
    pub(crate) now: Timestamp,
    pub(crate) ti: u32,
}

/// A report that cannot come from one genuine device (a cloned or replayed device): why, and
/// the earlier report it contradicts.
#[derive(Clone, Debug)]
pub(crate) struct Suspect {
    pub(crate) detail: String,
    pub(crate) earlier: Option<Reading>,
}

/// Speed above which a report means the vehicle is moving, whatever its position says.
const MOVING_KMH: f64 = 10.0;
/// Fraction of a sensor's range a reading must come back inside by before its alarm clears.
const ENVIRONMENT_CLEAR_MARGIN: f64 = 0.05;
/// Battery percentage points above the threshold before a low-battery alarm clears.
const BATTERY_CLEAR_MARGIN_PCT: f64 = 5.0;
/// Largest accuracy (metres) credited to a fix when testing the departure or destination zone.
const ZONE_TOLERANCE_CAP_M: f64 = 500.0;
/// How long a decision waits for the fix that settles it (a stop's limit passing while one fix
/// away from the stop is held back; the time limit passing while one fix is inside the
/// destination) before the last known state decides.
const HOLD_MAX: Duration = Duration::from_mins(30);
/// Shortest jump (metres, after accuracy) that may be called implausible: below it, fast
/// jitter between reports seconds apart is not a jump.
const IMPLAUSIBLE_JUMP_M: f64 = 1000.0;
/// How long fixes stay in doubt after an implausible jump if the old track does not resume.
const DOUBT_MAX: Duration = Duration::from_mins(10);
/// Fuel readings smoothed together (a median), so that fuel sloshing in the tank is not theft.
const FUEL_MEDIAN_OF: usize = 3;

/// Open conditions: one flag per alarm kind, plus one per environment sensor.
const N_FLAGS: usize = AlarmKind::ALL.len() + Sensor::ALL.len();
const _: () = assert!(N_FLAGS <= 32, "TransitRt::raised holds one bit per flag");

fn flag(kind: AlarmKind, sensor: Option<Sensor>) -> usize {
    match sensor {
        Some(s) => AlarmKind::ALL.len() + Sensor::ALL.iter().position(|x| *x == s).unwrap_or(0),
        None => kind as usize,
    }
}

/// A position fix: what the rules need of a report's position, in 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Fix {
    t: Timestamp,
    p: LonLat,
    accuracy_m: Option<f64>,
}

impl Fix {
    /// The fix as a report (for evidence): time, position and accuracy.
    fn reading(&self) -> Reading {
        let mut r = Reading::empty(self.t);
        (r.lon, r.lat, r.accuracy_m) = (Some(self.p[0]), Some(self.p[1]), self.accuracy_m);
        r
    }
}

fn reading_pos(r: &Reading) -> Option<LonLat> {
    r.fix_position().map(|p| [p.lon, p.lat])
}

/// Equality of a value read from a tag and a declared one: numbers by value (`18000` is
/// `18000.0`), everything else exactly.
fn same_value(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::Number;
    match (a, b) {
        // Integers exactly (beyond 2^53 a float would merge neighbours); a float on either
        // side, by value.
        (Number(x), Number(y)) if (x.is_i64() || x.is_u64()) && (y.is_i64() || y.is_u64()) => {
            x == y
        }
        (Number(x), Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A stop in progress: the vehicle stays within the stop radius of `anchor`.
#[derive(Debug, Default)]
struct Stop {
    anchor: Option<Fix>,
    /// A fix away from a confirmed stop, held back one report in case it is a GNSS outlier or
    /// a glitch in the reported speed.
    pending: Option<Fix>,
    /// Set once stopped for `stop_min`: the kind of alarm it will raise and when.
    confirmed: Option<(AlarmKind, Timestamp)>,
    /// The permitted zone the stop is in, for the alarm text.
    zone: Option<u32>,
    /// The limit passed while a fix away from the stop (or inside the destination) was held
    /// back: the next fix decides. Holds the limit.
    due_held: Option<Timestamp>,
    generation: u32,
}

/// A declared checkpoint (`Transit::checkpoints`) and whether it was passed.
#[derive(Clone, Copy, Debug)]
struct CheckpointRt {
    zone: u32,
    by: Option<Timestamp>,
    within: Option<Duration>,
    /// When it was first passed.
    passed: Option<Timestamp>,
    /// Its time passed before it was: the alarm was raised.
    missed: bool,
}

/// A declared leg (`Transit::legs`), with what the supervisor needs of it.
#[derive(Debug)]
struct LegRt {
    from: u32,
    to: u32,
    /// `rail, train X8012`: how an officer tells the legs apart.
    label: Box<str>,
    route: Option<Arc<Route>>,
    route_hint: u32,
    /// The transit's rules with the leg's on top.
    rules: Arc<RuleSet>,
}

/// Fixes after an implausible jump, until the old track resumes or the new one is settled.
#[derive(Clone, Copy, Debug)]
struct Doubt {
    /// The last fix before the jump.
    anchor: Fix,
    since: Timestamp,
}

/// A [`Reading`] in 128 bytes instead of 224, for the copy of the last report every transit
/// keeps: the numbers without their `Option` tags (a bit each in `present`), the rest as is.
/// Lossless: [`Packed::get`] gives back exactly the reading [`Packed::new`] was given.
#[derive(Clone, Copy, Debug)]
struct Packed {
    t: Timestamp,
    seq: u64,
    numbers: [f64; 12],
    /// Bit `i`: `numbers[i]` is present; bit 12: `seq` is.
    present: u16,
    events: DeviceEvents,
    fix: Option<bool>,
    charging: Option<bool>,
    lock: Option<LockState>,
    rope: Option<RopeState>,
    housing: Option<HousingState>,
    door: Option<DoorState>,
}

impl Packed {
    const SEQ: u16 = 1 << 12;

    fn new(r: &Reading) -> Packed {
        let numbers = [
            r.lat,
            r.lon,
            r.accuracy_m,
            r.speed_kmh,
            r.course_deg,
            r.battery_pct,
            r.temperature_c,
            r.humidity_pct,
            r.shock_g,
            r.light_lux,
            r.pressure_hpa,
            r.fuel_pct,
        ];
        let mut present = if r.seq.is_some() { Packed::SEQ } else { 0 };
        for (i, n) in numbers.iter().enumerate() {
            if n.is_some() {
                present |= 1 << i;
            }
        }
        Packed {
            t: r.t,
            seq: r.seq.unwrap_or(0),
            numbers: numbers.map(|n| n.unwrap_or(0.0)),
            present,
            events: r.events,
            fix: r.fix,
            charging: r.charging,
            lock: r.lock,
            rope: r.rope,
            housing: r.housing,
            door: r.door,
        }
    }

    fn get(&self) -> Reading {
        let n = |i: usize| (self.present & (1 << i) != 0).then_some(self.numbers[i]);
        Reading {
            t: self.t,
            lat: n(0),
            lon: n(1),
            fix: self.fix,
            accuracy_m: n(2),
            speed_kmh: n(3),
            course_deg: n(4),
            lock: self.lock,
            rope: self.rope,
            housing: self.housing,
            door: self.door,
            battery_pct: n(5),
            charging: self.charging,
            temperature_c: n(6),
            humidity_pct: n(7),
            shock_g: n(8),
            light_lux: n(9),
            pressure_hpa: n(10),
            fuel_pct: n(11),
            events: self.events,
            seq: (self.present & Packed::SEQ != 0).then_some(self.seq),
        }
    }
}

/// Fuel levels, for the abnormal fuel rule.
#[derive(Clone, Debug, Default)]
struct Fuel {
    /// The last few readings and their times, for the median.
    recent: VecDeque<(Timestamp, f64)>,
    /// Smoothed levels within the window, decreasing from the front (the window maximum).
    levels: VecDeque<(Timestamp, f64)>,
    /// The time of the reading an open fuel alarm was measured from.
    alarm_from: Option<Timestamp>,
}

/// Where a report's position stands for authorising an unseal or settling an arrival.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Whereabouts {
    /// The report's own fix, believed.
    Fix(LonLat),
    /// The report has no fix: the last believed fix stands for it.
    LastFix,
    /// The report's position is not believed (a jump after a gap in reporting).
    Doubtful,
}

/// One seal of a transit: what belongs to one of its devices rather than to the journey (the
/// lock, door, rope and housing, the event rules, battery, environment, fuel, jamming, the last
/// report and its communication-loss timer), and the conditions open on it.
#[derive(Debug)]
struct SealRt {
    device: DeviceId,
    /// Boxed: only tags read at checkpoints declare it.
    device_data: Option<Box<serde_json::Map<String, serde_json::Value>>>,
    /// Latest report (or sealing), for communication loss.
    last_report: Timestamp,
    comm_timer_set: bool,
    /// Compared with a communication-loss timer's generation (see [`comm_generation`]): a leg
    /// with a shorter limit supersedes the pending timer.
    comm_generation: u32,
    last: Option<Packed>,
    /// The first report of a spell without a fix (boxed: rare, and large).
    no_fix_since: Option<Box<Reading>>,
    rope_cut: bool,
    housing_breached: bool,
    /// Last reported lock and door states (reports may carry only one of them).
    lock_open: bool,
    door_open: bool,
    /// This seal was opened with authorisation (a transit with several devices; the transit is
    /// unsealed when its last seal is).
    unsealed: bool,
    last_tamper_event: Option<Timestamp>,
    last_unauthorized_event: Option<Timestamp>,
    last_fault_event: Option<Timestamp>,
    last_low_battery_event: Option<Timestamp>,
    last_clone: Option<Timestamp>,
    /// Fuel monitoring, for devices that report a fuel level (boxed: most do not).
    fuel: Option<Box<Fuel>>,
    /// Open conditions of this seal; the journey's (route, stops, time limit) are slot 0's.
    open: [bool; N_FLAGS],
}

impl SealRt {
    fn new(
        device: DeviceId,
        device_data: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> SealRt {
        SealRt {
            device,
            device_data: device_data.cloned().map(Box::new),
            unsealed: false,
            last_report: Timestamp::MIN,
            comm_timer_set: false,
            comm_generation: 0,
            last: None,
            no_fix_since: None,
            rope_cut: false,
            housing_breached: false,
            lock_open: false,
            door_open: false,
            last_tamper_event: None,
            last_unauthorized_event: None,
            last_fault_event: None,
            last_low_battery_event: None,
            last_clone: None,
            fuel: None,
            open: [false; N_FLAGS],
        }
    }
}

/// The most devices one transit may have: a timer's generation carries the slot in 8 bits.
pub(crate) const MAX_DEVICES: usize = 255;

/// A communication-loss timer's generation: the slot in the top 8 bits, the seal's generation
/// below (slot 0's is the seal's generation itself).
fn comm_generation(slot: u8, generation: u32) -> u32 {
    (u32::from(slot) << 24) | (generation & 0x00ff_ffff)
}

/// Conditions of the journey rather than of one seal: kept on slot 0, named by the main device.
fn journey_kind(kind: AlarmKind) -> bool {
    matches!(
        kind,
        AlarmKind::RouteDeviation
            | AlarmKind::IllegalStay
            | AlarmKind::OvertimeStay
            | AlarmKind::JourneyTimeout
    )
}

#[derive(Debug)]
pub(crate) struct TransitRt {
    id: TransitId,
    /// The seals: slot 0 (the declared `device`) inline, the further `devices` boxed, so that
    /// memory per transit does not grow for the usual single device.
    seal0: SealRt,
    extra: Box<[SealRt]>,
    /// The slot of the device whose report, read or timer is being handled.
    cur: u8,
    /// An arrival gate decided for a transit with several devices (it decides once).
    gate_decided: bool,
    realtime: bool,
    rules: Arc<RuleSet>,
    route: Option<Arc<Route>>,
    departure: Option<u32>,
    destination: Option<u32>,
    /// Permitted stop zones, sorted.
    stop_zones: Box<[u32]>,
    /// Zones where an unseal is authorised after arrival, sorted.
    unseal_zones: Box<[u32]>,
    deadline: Option<Timestamp>,
    max_duration: Option<Duration>,
    /// Declared checkpoints, in declaration order (empty for most transits).
    checkpoints: Box<[CheckpointRt]>,
    /// Declared legs, in order (empty for most transits), and the index of the current one
    /// (`legs.len()` once the last is completed).
    legs: Box<[LegRt]>,
    leg: u32,

    state: TransitState,
    /// When it was sealed: of two supervised transits on one device, the later one gets the
    /// reports.
    sealed_at: Option<Timestamp>,
    /// A later transit was sealed with this transit's device: its reports go there now.
    detached: bool,
    unseal_authorized: bool,
    deadline_generation: u32,
    /// The time limit passed while a single fix put the vehicle inside its destination: decided
    /// by the next fix (or by the hold timer). Holds the limit.
    timeout_held: Option<Timestamp>,
    hold_generation: u32,
    /// When the departure began (its first fix outside the departure zone), and when it was.
    departure_candidate: Option<Timestamp>,
    departed_at: Option<Timestamp>,
    /// The last believed position fix, kept compact: it is written on every report.
    last_fix: Option<Fix>,
    doubt: Option<Doubt>,
    /// The zone of the last checkpoint read, for transits that have no fixes.
    last_read_zone: Option<u32>,
    route_hint: u32,
    /// The first fix of a spell outside the corridor (boxed: rare, and large).
    outside_since: Option<Box<Reading>>,
    outside_fixes: u32,
    /// Consecutive fixes inside the corridor while a deviation is open: two clear it.
    inside_fixes: u32,
    /// The first of consecutive fixes inside the destination: arrival takes two, and is dated
    /// from the first.
    arrival_candidate: Option<Fix>,
    stop: Stop,
    /// Bit `flag(kind, sensor)`: an alarm of this condition was raised on the transit, cleared
    /// since or not (what holds a quick-mode unseal).
    raised: u32,
    /// Whether any environment limit is declared (most transits have none).
    environment_limits: bool,
}

fn zone_index(
    world: &World,
    transit: &Transit,
    field: &str,
    id: &model::ZoneId,
) -> Result<u32, SetupError> {
    world.zone_ids.get(id).copied().ok_or_else(|| SetupError {
        path: format!("transit {}: {field}", transit.id),
        reason: format!("unknown zone {id}"),
    })
}

impl TransitRt {
    /// `rules` and `route` come from the supervisor's interners: transits declared with the
    /// same rules or on the same route share one copy (memory per transit, and cache).
    pub(crate) fn new(
        t: &Transit,
        world: &World,
        rules: Arc<RuleSet>,
        route: Option<Arc<Route>>,
        legs: Vec<(Option<Arc<Route>>, Arc<RuleSet>)>,
    ) -> Result<TransitRt, SetupError> {
        let one = |field: &str, id: &Option<model::ZoneId>| {
            id.as_ref()
                .map(|z| zone_index(world, t, field, z))
                .transpose()
        };
        let many = |field: &str, ids: Vec<&model::ZoneId>| -> Result<Box<[u32]>, SetupError> {
            let mut v = ids
                .into_iter()
                .map(|z| zone_index(world, t, field, z))
                .collect::<Result<Vec<_>, _>>()?;
            v.sort_unstable();
            v.dedup();
            Ok(v.into_boxed_slice())
        };
        let r = &t.rules;
        let legs = t
            .legs
            .iter()
            .zip(legs)
            .enumerate()
            .map(|(j, (leg, (route, rules)))| {
                let mut label = leg.mode.as_str().to_owned();
                if let Some(train) = &leg.train {
                    label += &format!(", train {train}");
                }
                if let Some(vessel) = &leg.vessel {
                    label += &format!(", vessel {vessel}");
                }
                Ok(LegRt {
                    from: zone_index(world, t, &format!("legs[{j}].from"), &leg.from)?,
                    to: zone_index(world, t, &format!("legs[{j}].to"), &leg.to)?,
                    label: label.into(),
                    route,
                    route_hint: 0,
                    rules,
                })
            })
            .collect::<Result<Box<[LegRt]>, SetupError>>()?;
        // Where one leg hands over to the next (a rail terminal, a port) the goods wait: those
        // zones are permitted stops, and never off the route.
        let leg_zones: Vec<&model::ZoneId> = t.legs.iter().flat_map(|l| [&l.from, &l.to]).collect();
        Ok(TransitRt {
            id: t.id.clone(),
            seal0: SealRt::new(t.device.clone(), t.device_data.as_ref()),
            extra: t
                .devices
                .iter()
                .map(|d| SealRt::new(d.id.clone(), d.device_data.as_ref()))
                .collect(),
            cur: 0,
            gate_decided: false,
            realtime: t.device_kind().reports_in_real_time(),
            rules,
            route,
            departure: one("departure", &t.departure)?,
            destination: one("destination", &t.destination)?,
            stop_zones: many(
                "stop_zones",
                t.stop_zone_ids().into_iter().chain(leg_zones).collect(),
            )?,
            unseal_zones: many("unseal_zones", t.unseal_zone_ids())?,
            deadline: t.deadline,
            max_duration: t.max_duration,
            checkpoints: t
                .checkpoints
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    Ok(CheckpointRt {
                        zone: zone_index(world, t, &format!("checkpoints[{i}].zone"), &c.zone)?,
                        by: c.by,
                        within: c.within,
                        passed: None,
                        missed: false,
                    })
                })
                .collect::<Result<_, SetupError>>()?,
            legs,
            leg: 0,
            state: TransitState::Declared,
            sealed_at: None,
            detached: false,
            unseal_authorized: false,
            deadline_generation: 0,
            timeout_held: None,
            hold_generation: 0,
            departure_candidate: None,
            departed_at: None,
            last_fix: None,
            doubt: None,
            last_read_zone: None,
            route_hint: 0,
            outside_since: None,
            outside_fixes: 0,
            inside_fixes: 0,
            arrival_candidate: None,
            stop: Stop::default(),
            raised: 0,
            environment_limits: [
                r.temperature_c,
                r.humidity_pct,
                r.shock_g,
                r.light_lux,
                r.pressure_hpa,
            ]
            .iter()
            .any(Option::is_some),
        })
    }

    pub(crate) fn state(&self) -> TransitState {
        self.state
    }

    pub(crate) fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The main device (slot 0).
    pub(crate) fn device(&self) -> &DeviceId {
        &self.seal0.device
    }

    /// Every device of the transit, slot order.
    pub(crate) fn devices(&self) -> impl Iterator<Item = &DeviceId> {
        std::iter::once(&self.seal0.device).chain(self.extra.iter().map(|s| &s.device))
    }

    /// The slot of `device` on this transit (0 when it is not one of them: the main device's).
    pub(crate) fn slot_of(&self, device: &str) -> u8 {
        if self.extra.is_empty() {
            return 0;
        }
        self.extra
            .iter()
            .position(|s| s.device.as_str() == device)
            .map_or(0, |i| (i + 1) as u8)
    }

    fn slot(&self, i: u8) -> &SealRt {
        match i {
            0 => &self.seal0,
            _ => &self.extra[usize::from(i) - 1],
        }
    }

    fn slot_mut(&mut self, i: u8) -> &mut SealRt {
        match i {
            0 => &mut self.seal0,
            _ => &mut self.extra[usize::from(i) - 1],
        }
    }

    /// The seal of the device being handled.
    fn s(&self) -> &SealRt {
        self.slot(self.cur)
    }

    fn sm(&mut self) -> &mut SealRt {
        self.slot_mut(self.cur)
    }

    fn slots(&self) -> u8 {
        (1 + self.extra.len()) as u8
    }

    /// The slot a condition of `kind` is kept on: the journey's on slot 0, a seal's on its own.
    fn flag_slot(&self, kind: AlarmKind) -> u8 {
        if journey_kind(kind) { 0 } else { self.cur }
    }

    fn is_open(&self, kind: AlarmKind, sensor: Option<Sensor>) -> bool {
        self.slot(self.flag_slot(kind)).open[flag(kind, sensor)]
    }

    pub(crate) fn sealed_at(&self) -> Option<Timestamp> {
        self.sealed_at
    }

    pub(crate) fn id(&self) -> &TransitId {
        &self.id
    }

    /// Whether this transit receives its device's reports: supervised and not superseded by a
    /// later transit on the same device.
    pub(crate) fn takes_reports(&self) -> bool {
        self.state.is_supervised() && !self.detached
    }

    /// Reads the state a report will need (the route near the last match, the rules, the last
    /// report, the stop) and returns a digest of it. Called over a whole batch before the batch
    /// is processed, so that these independent memory reads overlap.
    pub(crate) fn touch(&self) -> u64 {
        let route = self
            .route
            .as_ref()
            .map_or(0, |r| r.point_bits(self.route_hint as usize));
        route
            ^ self.rules.corridor_m.to_bits()
            ^ self.s().last_report.unix_ms() as u64
            ^ self.s().last.as_ref().map_or(0, |l| l.t.unix_ms() as u64)
            ^ self.stop.anchor.map_or(0, |a| a.t.unix_ms() as u64)
            ^ self.last_fix.map_or(0, |f| f.t.unix_ms() as u64)
    }

    // ----- outputs -------------------------------------------------------------------------

    /// The last known position: the last believed fix, or the zone of the last read.
    fn position_now(&self, world: &World) -> Option<LonLat> {
        self.last_fix
            .map(|f| f.p)
            .or_else(|| self.last_read_zone.map(|z| world.zones[z as usize].anchor))
    }

    fn evidence(&self, r: &Reading) -> Evidence {
        Evidence::Observation(r.with_device(self.s().device.clone()))
    }

    /// Raises an alarm unless one is already open for this condition (one alarm per condition).
    fn raise(
        &mut self,
        cx: &mut Cx<'_>,
        kind: AlarmKind,
        sensor: Option<Sensor>,
        at: Option<LonLat>,
        detail: String,
        evidence: Vec<Evidence>,
    ) {
        self.raise_dated(cx, cx.now, kind, sensor, at, detail, evidence);
    }

    /// [`TransitRt::raise`] dated `t`: a limit that passed while the decision was held.
    #[allow(clippy::too_many_arguments)]
    fn raise_dated(
        &mut self,
        cx: &mut Cx<'_>,
        t: Timestamp,
        kind: AlarmKind,
        sensor: Option<Sensor>,
        at: Option<LonLat>,
        detail: String,
        evidence: Vec<Evidence>,
    ) {
        let f = flag(kind, sensor);
        let slot = self.flag_slot(kind);
        if self.slot(slot).open[f] {
            return;
        }
        self.slot_mut(slot).open[f] = true;
        self.raised |= 1 << f;
        self.emit_alarm(cx, t, kind, sensor, at, detail, evidence);
    }

    /// Pushes an alarm, whatever conditions are open: for conditions that are not one flag
    /// per kind (each missed checkpoint is its own).
    #[allow(clippy::too_many_arguments)]
    fn emit_alarm(
        &mut self,
        cx: &mut Cx<'_>,
        t: Timestamp,
        kind: AlarmKind,
        sensor: Option<Sensor>,
        at: Option<LonLat>,
        detail: String,
        evidence: Vec<Evidence>,
    ) {
        let at = at.or_else(|| self.position_now(cx.world));
        let device = self.slot(self.flag_slot(kind)).device.clone();
        cx.out.push(Output::Alarm(Alarm {
            transit: self.id.clone(),
            device,
            kind,
            sensor: sensor.map(|s| s.as_str().to_owned()),
            t,
            lat: at.map(|p| p[1]),
            lon: at.map(|p| p[0]),
            grade: self.rules.grade(kind),
            detail,
            evidence,
        }));
    }

    /// Ends an open condition, so the next occurrence raises a new alarm.
    fn clear(&mut self, cx: &mut Cx<'_>, kind: AlarmKind, sensor: Option<Sensor>, detail: &str) {
        let f = flag(kind, sensor);
        let slot = self.flag_slot(kind);
        if !self.slot(slot).open[f] {
            return;
        }
        self.slot_mut(slot).open[f] = false;
        self.event_at(
            cx,
            cx.now,
            EventKind::AlarmCleared,
            Some(kind),
            sensor,
            detail.to_owned(),
        );
    }

    fn event(&mut self, cx: &mut Cx<'_>, event: EventKind, detail: String) {
        self.event_at(cx, cx.now, event, None, None, detail);
    }

    fn event_at(
        &mut self,
        cx: &mut Cx<'_>,
        t: Timestamp,
        event: EventKind,
        alarm_kind: Option<AlarmKind>,
        sensor: Option<Sensor>,
        detail: String,
    ) {
        let at = self.position_now(cx.world);
        self.event_placed(cx, t, event, alarm_kind, sensor, detail, at);
    }

    #[allow(clippy::too_many_arguments)]
    fn event_placed(
        &mut self,
        cx: &mut Cx<'_>,
        t: Timestamp,
        event: EventKind,
        alarm_kind: Option<AlarmKind>,
        sensor: Option<Sensor>,
        detail: String,
        at: Option<LonLat>,
    ) {
        // The journey's events name the transit's device; what one seal did names its own.
        let slot = match (event, alarm_kind) {
            (_, Some(k)) => self.flag_slot(k),
            (
                EventKind::Sealed
                | EventKind::Unsealed
                | EventKind::DeviceUnsealed
                | EventKind::UnsealAuthorized
                | EventKind::CheckpointRead
                | EventKind::GateHold,
                None,
            ) => self.cur,
            _ => 0,
        };
        let device = self.slot(slot).device.clone();
        cx.out.push(Output::Event(Event {
            transit: self.id.clone(),
            device,
            event,
            t,
            alarm_kind,
            sensor: sensor.map(|s| s.as_str().to_owned()),
            lat: at.map(|p| p[1]),
            lon: at.map(|p| p[0]),
            detail,
            reader: None,
        }));
    }

    /// Names the reader that caused the event just emitted (a quick-mode gate).
    fn stamp_reader(cx: &mut Cx<'_>, reader: &ReaderId) {
        if let Some(Output::Event(e)) = cx.out.last_mut() {
            e.reader = Some(reader.clone());
        }
    }

    fn become_(
        &mut self,
        cx: &mut Cx<'_>,
        next: TransitState,
        event: EventKind,
        detail: String,
    ) -> bool {
        if !self.state.can_become(next) {
            return false;
        }
        self.state = next;
        self.event(cx, event, detail);
        true
    }

    // ----- lifecycle -----------------------------------------------------------------------

    fn seal(&mut self, cx: &mut Cx<'_>) -> bool {
        self.seal_by(cx, String::new(), None)
    }

    /// Seals the transit; `reader` is the quick-mode gate that did it, if one did.
    fn seal_by(&mut self, cx: &mut Cx<'_>, detail: String, reader: Option<&ReaderId>) -> bool {
        if !self.become_(cx, TransitState::Sealed, EventKind::Sealed, detail) {
            return false;
        }
        if let Some(reader) = reader {
            Self::stamp_reader(cx, reader);
        }
        self.sealed_at = Some(cx.now);
        let realtime = self.realtime;
        for i in 0..self.slots() {
            let due = cx.now.plus(self.rules.comm_loss_after);
            let seal = self.slot_mut(i);
            seal.last_report = cx.now;
            if realtime {
                cx.timers.set(
                    due,
                    TimerKind::CommLoss,
                    cx.ti,
                    comm_generation(i, seal.comm_generation),
                );
                seal.comm_timer_set = true;
            }
        }
        let limit = self
            .deadline
            .or_else(|| self.max_duration.map(|d| cx.now.plus(d)));
        if let Some(at) = limit {
            self.deadline = Some(at);
            cx.timers
                .set(at, TimerKind::Deadline, cx.ti, self.deadline_generation);
        }
        if !self.legs.is_empty() {
            self.start_leg(cx, 0);
        }
        for (i, c) in self.checkpoints.iter().enumerate() {
            let due = c.by.or_else(|| c.within.map(|d| cx.now.plus(d)));
            if let Some(due) = due {
                cx.timers.set(due, TimerKind::Checkpoint, cx.ti, i as u32);
            }
        }
        true
    }

    /// The time checkpoint `i` must be passed by (the transit is sealed).
    fn checkpoint_due(&self, i: usize) -> Option<Timestamp> {
        let c = &self.checkpoints[i];
        c.by.or_else(|| Some(self.sealed_at?.plus(c.within?)))
    }

    /// Marks the first not-yet-passed checkpoint at `zone` passed, `how` (`read by R7`).
    fn pass_checkpoint(&mut self, cx: &mut Cx<'_>, zone: u32, how: &str) {
        let Some(i) = self
            .checkpoints
            .iter()
            .position(|c| c.zone == zone && c.passed.is_none())
        else {
            return;
        };
        self.checkpoints[i].passed = Some(cx.now);
        let label = cx.world.zone_label(zone);
        let detail = match self.checkpoint_due(i) {
            Some(due) if cx.now > due => format!(
                "checkpoint {label} passed {} after its time {due} ({how})",
                text::duration(cx.now.since(due))
            ),
            Some(due) => format!("checkpoint {label} passed in time for {due} ({how})"),
            None => format!("checkpoint {label} passed ({how})"),
        };
        let at = Some(cx.world.zones[zone as usize].anchor);
        self.event_placed(
            cx,
            cx.now,
            EventKind::CheckpointPassed,
            None,
            None,
            detail,
            at,
        );
    }

    /// The transit is on leg `i` from now: its rules apply.
    fn start_leg(&mut self, cx: &mut Cx<'_>, i: usize) {
        self.leg = i as u32;
        let leg = &self.legs[i];
        let previous_comm_loss = self.rules.comm_loss_after;
        self.rules = Arc::clone(&leg.rules);
        let detail = format!(
            "leg {} of {} ({}) from {}",
            i + 1,
            self.legs.len(),
            leg.label,
            cx.world.zone_label(leg.from)
        );
        let at = Some(cx.world.zones[leg.from as usize].anchor);
        self.event_placed(cx, cx.now, EventKind::LegStarted, None, None, detail, at);
        // The pending communication-loss timer re-arms itself lazily with the rules in force,
        // which covers a longer limit; a shorter one needs its own, earlier expiry, and the
        // pending timer is superseded so that there is still one heap entry per transit.
        if i > 0 && self.realtime && self.rules.comm_loss_after < previous_comm_loss {
            let limit = self.rules.comm_loss_after;
            for slot in 0..self.slots() {
                let seal = self.slot_mut(slot);
                if !seal.comm_timer_set {
                    continue;
                }
                seal.comm_generation += 1;
                let due = seal.last_report.plus(limit);
                cx.timers.set(
                    due.max(cx.now),
                    TimerKind::CommLoss,
                    cx.ti,
                    comm_generation(slot, seal.comm_generation),
                );
            }
        }
    }

    /// The transit is in `zone` (a read there, or a believed fix inside it): if that is where
    /// its current leg ends, the leg is completed and the next one starts.
    fn reach_leg_end(&mut self, cx: &mut Cx<'_>, zone: u32) {
        let i = self.leg as usize;
        let Some(leg) = self.legs.get(i) else { return };
        if leg.to != zone {
            return;
        }
        let detail = format!(
            "leg {} of {} ({}) completed at {}",
            i + 1,
            self.legs.len(),
            leg.label,
            cx.world.zone_label(zone)
        );
        let at = Some(cx.world.zones[zone as usize].anchor);
        self.event_placed(cx, cx.now, EventKind::LegCompleted, None, None, detail, at);
        if i + 1 < self.legs.len() {
            self.start_leg(cx, i + 1);
        } else {
            self.leg = self.legs.len() as u32;
        }
    }

    /// Passes the checkpoints a believed fix is inside (a real-time device needs no reader).
    fn pass_checkpoints_at(&mut self, cx: &mut Cx<'_>, frame: &LocalFrame, zone_tol: f64) {
        for i in 0..self.checkpoints.len() {
            let c = self.checkpoints[i];
            if c.passed.is_none() && cx.world.area(c.zone).contains_at(frame, zone_tol) {
                self.pass_checkpoint(cx, c.zone, "a position fix inside it");
            }
        }
    }

    /// A later transit was sealed with this device: this one no longer gets its reports.
    pub(crate) fn detach(&mut self, cx: &mut Cx<'_>, successor: &TransitId) {
        self.cur = 0;
        if self.takes_reports() {
            self.detached = true;
            self.end_stop(cx);
            let detail = format!("the device now seals transit {successor}");
            self.event(cx, EventKind::DeviceReassigned, detail);
        }
    }

    /// Records arrival, dated `at` (the first fix inside the destination, or now).
    fn arrive(&mut self, cx: &mut Cx<'_>, at: Timestamp, place: Option<LonLat>, how: &str) {
        if !self.state.is_travelling() || !self.state.can_become(TransitState::Arrived) {
            return;
        }
        // Never before the departure it follows.
        let at = self.departed_at.map_or(at, |d| at.max(d));
        if let Some(deadline) = self.timeout_held.take()
            && at > deadline
        {
            // The limit passed while one fix inside was held: the arrival came too late.
            self.raise_timeout(cx, deadline);
        }
        self.state = TransitState::Arrived;
        let place = place.or_else(|| self.position_now(cx.world));
        self.event_placed(
            cx,
            at,
            EventKind::Arrived,
            None,
            None,
            how.to_owned(),
            place,
        );
        // The journey is over: its conditions end with it.
        self.clear(cx, AlarmKind::JourneyTimeout, None, "arrived");
        self.clear(cx, AlarmKind::RouteDeviation, None, "arrived");
        if let Some((kind, _)) = self.stop.confirmed.take() {
            self.clear(cx, kind, None, "arrived");
        }
        self.end_stop(cx);
        self.outside_since = None;
    }

    /// Whether an unseal would be authorised now, where the report places the seal. Containment
    /// here gives no benefit of the doubt: a fix must be inside the unseal zone itself.
    fn unseal_allowed(&self, cx: &Cx<'_>, at: Whereabouts) -> bool {
        if self.unseal_authorized
            || matches!(
                self.state,
                TransitState::Released | TransitState::Inspection
            )
        {
            return true;
        }
        if self.state != TransitState::Arrived {
            return false;
        }
        let in_unseal_zone = |p: LonLat| {
            self.unseal_zones
                .iter()
                .any(|&z| cx.world.area(z).contains(p, 0.0))
        };
        match at {
            Whereabouts::Fix(p) => in_unseal_zone(p),
            Whereabouts::LastFix => match self.last_fix {
                Some(f) => in_unseal_zone(f.p),
                // A tag read at a checkpoint has no fixes: the zone of its last read counts.
                None => self
                    .last_read_zone
                    .is_some_and(|z| self.unseal_zones.binary_search(&z).is_ok()),
            },
            Whereabouts::Doubtful => false,
        }
    }

    /// An authorised unseal. An illegal opening still open stays open: it happened, and an
    /// officer decides on it.
    fn unseal(&mut self, cx: &mut Cx<'_>, detail: String) {
        self.become_(cx, TransitState::Unsealed, EventKind::Unsealed, detail);
    }

    /// An authorised opening of the seal being handled: with one device, the unseal; with
    /// several, that seal is opened (`device_unsealed`) and the transit is unsealed with the
    /// last of them.
    fn unseal_seal(&mut self, cx: &mut Cx<'_>, detail: String) {
        if self.extra.is_empty() {
            self.unseal(cx, detail);
            return;
        }
        self.sm().unsealed = true;
        let n = self.slots();
        let opened = (0..n).filter(|&i| self.slot(i).unsealed).count();
        if opened == usize::from(n) {
            self.unseal(cx, format!("{detail}; the last of {n} seals"));
        } else {
            let detail = format!("{detail}; {opened} of {n} seals opened");
            self.event(cx, EventKind::DeviceUnsealed, detail);
        }
    }

    /// Another device seals this transit from now on (the supervisor moved it between its
    /// devices; see `Supervisor::pair`).
    pub(crate) fn pair(&mut self, device: &DeviceId, old: &DeviceId, cx: &mut Cx<'_>) {
        self.cur = 0;
        self.seal0.device = device.clone();
        self.event(
            cx,
            EventKind::DevicePaired,
            format!("device {device} paired instead of {old}"),
        );
    }

    pub(crate) fn on_action(&mut self, a: &Action, cx: &mut Cx<'_>) {
        self.cur = 0;
        let before = self.state;
        let reason = a.reason.clone().unwrap_or_default();
        let ok = match a.action {
            ActionKind::Seal => self.seal(cx),
            ActionKind::Arrive => {
                self.arrive(cx, cx.now, None, "recorded by an officer");
                self.state != before
            }
            ActionKind::Release => {
                self.become_(cx, TransitState::Released, EventKind::Released, reason)
            }
            ActionKind::Inspect => {
                self.become_(cx, TransitState::Inspection, EventKind::Inspection, reason)
            }
            ActionKind::AuthorizeUnseal => {
                if self.state.is_supervised() {
                    self.unseal_authorized = true;
                    self.event(cx, EventKind::UnsealAuthorized, reason);
                    true
                } else {
                    false
                }
            }
            ActionKind::Unseal => {
                if self.state.is_supervised() && self.unseal_allowed(cx, Whereabouts::LastFix) {
                    self.unseal(cx, "recorded by an officer".into());
                    true
                } else {
                    false
                }
            }
            ActionKind::Close => self.become_(cx, TransitState::Closed, EventKind::Closed, reason),
            ActionKind::ExtendDeadline => match a.deadline {
                Some(at) if self.state.is_travelling() => {
                    self.deadline = Some(at);
                    self.deadline_generation += 1;
                    self.timeout_held = None;
                    cx.timers
                        .set(at, TimerKind::Deadline, cx.ti, self.deadline_generation);
                    self.event(
                        cx,
                        EventKind::DeadlineExtended,
                        format!("new time limit {at}"),
                    );
                    if at > cx.now {
                        self.clear(cx, AlarmKind::JourneyTimeout, None, "time limit extended");
                    }
                    true
                }
                _ => false,
            },
            // Taken by the supervisor when it can be (see `Supervisor::pair`); here, refused.
            ActionKind::Pair => false,
        };
        if !ok {
            let why = self.rejection(a.action, cx);
            self.event(cx, EventKind::ActionRejected, why);
        }
    }

    /// Why an action was refused, in the officer's terms.
    fn rejection(&self, action: ActionKind, cx: &Cx<'_>) -> String {
        let state = self.state.as_str().replace('_', " ");
        match action {
            ActionKind::Unseal if self.state.is_supervised() => {
                let _ = cx;
                "unseal refused: not authorised (no authorize_unseal, no release or inspection \
                 decision, and not inside an unseal zone after arrival)"
                    .to_owned()
            }
            ActionKind::Release | ActionKind::Inspect if self.state.is_travelling() => format!(
                "{} refused: the transit has not arrived (it is {state})",
                action.as_str()
            ),
            ActionKind::ExtendDeadline if self.state.is_travelling() => {
                "extend_deadline refused: no new deadline given".to_owned()
            }
            ActionKind::Pair if self.state == TransitState::Declared => {
                "pair refused: no other device given".to_owned()
            }
            _ => format!("{} refused: the transit is {state}", action.as_str()),
        }
    }

    pub(crate) fn on_timer(&mut self, kind: TimerKind, generation: u32, cx: &mut Cx<'_>) {
        if self.detached {
            // Its device seals another transit now: nothing of this one's is measured any more.
            return;
        }
        self.cur = 0;
        match kind {
            TimerKind::Seal => {
                self.seal(cx);
            }
            TimerKind::Deadline => {
                if generation != self.deadline_generation || !self.state.is_travelling() {
                    return;
                }
                if self.arrival_candidate.is_some() {
                    // One fix already puts the vehicle inside its destination: if the next one
                    // confirms it, it arrived in time. Not for ever: see TimerKind::Held.
                    self.timeout_held = self.deadline;
                    self.hold(cx);
                    return;
                }
                let at = self.deadline.unwrap_or(cx.now);
                self.raise_timeout(cx, at);
            }
            TimerKind::CommLoss => {
                // The generation carries the seal's slot: each device has its own timer.
                let slot = (generation >> 24) as u8;
                if slot >= self.slots() {
                    return;
                }
                self.cur = slot;
                if generation != comm_generation(slot, self.s().comm_generation) {
                    // Superseded when a leg with a shorter limit began.
                    return;
                }
                self.sm().comm_timer_set = false;
                if !self.takes_reports() || !self.realtime || self.s().unsealed {
                    return;
                }
                let due = self.s().last_report.plus(self.rules.comm_loss_after);
                if due > cx.now {
                    // Reports came in since the timer was set: look again when the latest one
                    // would expire. One heap entry per seal, whatever the report rate.
                    cx.timers.set(due, TimerKind::CommLoss, cx.ti, generation);
                    self.sm().comm_timer_set = true;
                    return;
                }
                let last = self.s().last.map(|l| l.get());
                let detail = match &last {
                    Some(r) => format!(
                        "no report for {} (last at {})",
                        text::duration(cx.now.since(r.t)),
                        r.t
                    ),
                    None => format!(
                        "no report since sealing ({})",
                        text::duration(cx.now.since(self.s().last_report))
                    ),
                };
                let ev = last.iter().map(|r| self.evidence(r)).collect();
                self.raise(cx, AlarmKind::CommunicationLoss, None, None, detail, ev);
            }
            TimerKind::Stop => {
                if generation != self.stop.generation || !self.state.is_travelling() {
                    return;
                }
                if let Some((kind, due)) = self.stop.confirmed {
                    if self.stop.pending.is_some() || self.arrival_candidate.is_some() {
                        // The last fix was away from the stop, or inside the destination: if
                        // the next one confirms it, the vehicle left (or arrived) before the
                        // limit.
                        self.stop.due_held = Some(due);
                        self.hold(cx);
                    } else {
                        self.raise_stop(cx, kind, due);
                    }
                }
            }
            TimerKind::Checkpoint => {
                let i = generation as usize;
                let Some(c) = self.checkpoints.get(i).copied() else {
                    return;
                };
                // Once unsealed or closed, an officer has seen the goods: nothing to pass.
                if c.passed.is_some() || c.missed || !self.state.is_supervised() {
                    return;
                }
                self.checkpoints[i].missed = true;
                let due = self.checkpoint_due(i).unwrap_or(cx.now);
                let detail = format!(
                    "checkpoint {} not passed by {due}",
                    cx.world.zone_label(c.zone)
                );
                let ev = self
                    .s()
                    .last
                    .iter()
                    .map(|l| self.evidence(&l.get()))
                    .collect();
                // Each missed checkpoint is its own condition, beside a read's mismatch.
                self.raised |= 1 << flag(AlarmKind::CheckpointMismatch, None);
                self.emit_alarm(
                    cx,
                    due,
                    AlarmKind::CheckpointMismatch,
                    None,
                    None,
                    detail,
                    ev,
                );
            }
            TimerKind::Held => {
                // No fix came to settle a held decision: take the last known state.
                if generation != self.hold_generation {
                    return;
                }
                if let Some(deadline) = self.timeout_held.take()
                    && self.state.is_travelling()
                {
                    self.raise_timeout(cx, deadline);
                }
                if let Some(due) = self.stop.due_held.take()
                    && let Some((kind, _)) = self.stop.confirmed
                    && self.state.is_travelling()
                {
                    self.raise_stop(cx, kind, due);
                }
            }
        }
    }

    /// Raises the journey timeout, dated at the limit that passed.
    fn raise_timeout(&mut self, cx: &mut Cx<'_>, limit: Timestamp) {
        let detail = format!("not arrived by the time limit {limit}");
        let ev = self
            .s()
            .last
            .iter()
            .map(|l| self.evidence(&l.get()))
            .collect();
        self.raise_dated(cx, limit, AlarmKind::JourneyTimeout, None, None, detail, ev);
    }

    /// Starts (or restarts) the bound on a held decision: if no fix settles it within
    /// [`HOLD_MAX`], the last known state decides.
    fn hold(&mut self, cx: &mut Cx<'_>) {
        self.hold_generation += 1;
        cx.timers.set(
            cx.now.plus(HOLD_MAX),
            TimerKind::Held,
            cx.ti,
            self.hold_generation,
        );
    }

    // ----- observations --------------------------------------------------------------------

    /// A report of the device in `slot`.
    pub(crate) fn on_observation(
        &mut self,
        slot: u8,
        r: &Reading,
        frame: Option<&LocalFrame>,
        late: bool,
        suspect: Option<Suspect>,
        cx: &mut Cx<'_>,
    ) {
        self.cur = slot;
        if !self.takes_reports() || self.s().unsealed {
            // An opened seal of a transit with several devices is off the goods: its device
            // says nothing of them any more.
            return;
        }
        if late {
            // A report older than one already seen: its events still count, but it must not
            // move the vehicle or the seal state backwards in time.
            self.check_events(r, cx);
            if let Some(s) = suspect {
                self.raise_clone(cx, r, s);
            }
            return;
        }
        let previous_report = self.s().last_report;
        self.sm().last_report = r.t;
        self.clear(cx, AlarmKind::CommunicationLoss, None, "reporting again");
        if self.realtime && !self.s().comm_timer_set {
            cx.timers.set(
                r.t.plus(self.rules.comm_loss_after),
                TimerKind::CommLoss,
                cx.ti,
                comm_generation(slot, self.s().comm_generation),
            );
            self.sm().comm_timer_set = true;
        }

        if let Some(s) = suspect {
            // A report that cannot come from the genuine device is evidence, not a position:
            // it moves nothing and authorises nothing. What it says of the seal still counts
            // (an opening it reports is an illegal one).
            self.raise_clone(cx, r, s);
            if r.lock == Some(LockState::Unlocked) || r.door == Some(DoorState::Open) {
                let detail = "a report that cannot come from the genuine device says the seal \
                              is open"
                    .to_owned();
                let ev = vec![self.evidence(r)];
                self.raise(cx, AlarmKind::IllegalOpening, None, None, detail, ev);
            }
            return;
        }
        if self
            .s()
            .last_clone
            .is_some_and(|t| r.t.since(t) >= self.rules.event_clear_after)
        {
            self.clear(
                cx,
                AlarmKind::ClonedDevice,
                None,
                "reports consistent again",
            );
        }

        let whereabouts = match frame {
            Some(frame) => self.on_fix(r, frame, previous_report, cx),
            None => {
                if r.reports_no_fix() {
                    self.on_no_fix(r, cx);
                }
                Whereabouts::LastFix
            }
        };
        if self.state.is_supervised() {
            self.check_opening(r, whereabouts, cx);
        }
        if self.state.is_supervised() {
            self.check_events(r, cx);
            self.check_battery(r, cx);
            self.check_environment(r, cx);
            self.check_fuel(r, cx);
        }
        self.sm().last = Some(Packed::new(r));
    }

    fn raise_clone(&mut self, cx: &mut Cx<'_>, r: &Reading, s: Suspect) {
        self.sm().last_clone = Some(r.t);
        let mut ev = Vec::with_capacity(2);
        if let Some(earlier) = &s.earlier {
            ev.push(self.evidence(earlier));
        }
        ev.push(self.evidence(r));
        self.raise(
            cx,
            AlarmKind::ClonedDevice,
            None,
            reading_pos(r),
            s.detail,
            ev,
        );
    }

    fn on_no_fix(&mut self, r: &Reading, cx: &mut Cx<'_>) {
        let since = **self.sm().no_fix_since.get_or_insert_with(|| Box::new(*r));
        if r.t.since(since.t) >= self.rules.no_fix_after {
            let detail = format!(
                "reporting without a position fix for {}",
                text::duration(r.t.since(since.t))
            );
            let ev = vec![self.evidence(&since), self.evidence(r)];
            self.raise(cx, AlarmKind::SuspectedJamming, None, None, detail, ev);
        }
    }

    /// A believed-or-doubtful fix: jamming, lifecycle, route and stops. Returns how far the
    /// fix can be trusted for authorising an unseal.
    fn on_fix(
        &mut self,
        r: &Reading,
        frame: &LocalFrame,
        previous_report: Timestamp,
        cx: &mut Cx<'_>,
    ) -> Whereabouts {
        let p = frame.origin();
        let acc = r.accuracy_m.unwrap_or(0.0);
        let zone_tol = acc.min(ZONE_TOLERANCE_CAP_M);

        // Suspected jamming: a gap in reporting, then a position that could not be reached in
        // that time at a plausible speed (the device was shielded while the vehicle moved).
        let mut jammed = false;
        if let Some(prev) = self.last_fix {
            let gap = r.t.since(previous_report);
            if gap >= self.rules.jamming_gap {
                let d_m = geometry::haversine_m(prev.p, p) - prev.accuracy_m.unwrap_or(0.0) - acc;
                let dt_h = r.t.since(prev.t).as_ms() as f64 / 3_600_000.0;
                let kmh = if dt_h > 0.0 {
                    d_m / 1000.0 / dt_h
                } else {
                    f64::INFINITY
                };
                if d_m > 0.0 && kmh > self.rules.max_speed_kmh {
                    jammed = true;
                    let detail = format!(
                        "no report for {}, then {} from the last fix ({} km/h)",
                        text::duration(gap),
                        text::distance(d_m),
                        text::number(kmh.round())
                    );
                    let ev = vec![self.evidence(&prev.reading()), self.evidence(r)];
                    self.raise(cx, AlarmKind::SuspectedJamming, None, Some(p), detail, ev);
                }
            }
        }
        // A jump faster than any vehicle, even without a gap in reporting (a clone below the
        // clone threshold, a spoofer): the vehicle may be there, but that one fix is not trusted
        // to depart, arrive or authorise.
        let unreachable_from = |from: Fix| {
            let d_m = frame.distance_m(from.p) - from.accuracy_m.unwrap_or(0.0) - acc;
            let dt_h = r.t.since(from.t).as_ms() as f64 / 3_600_000.0;
            d_m > IMPLAUSIBLE_JUMP_M
                && (dt_h <= 0.0 || d_m / 1000.0 / dt_h > self.rules.max_speed_kmh)
        };
        // After such a jump the fixes stay in doubt until one is reachable from the last fix
        // before it (the old track resumes: the jump was an outlier or a clone), or the new
        // track has lasted `DOUBT_MAX` without the old one showing again.
        let implausible = !jammed && self.last_fix.is_some_and(unreachable_from);
        if let Some(d) = self.doubt {
            if !unreachable_from(d.anchor) || r.t.since(d.since) >= DOUBT_MAX {
                self.doubt = None;
            }
        } else if let (true, Some(anchor)) = (implausible, self.last_fix) {
            self.doubt = Some(Doubt { anchor, since: r.t });
        }
        let doubtful = jammed || implausible || self.doubt.is_some();
        self.sm().no_fix_since = None;
        if !jammed {
            self.clear(
                cx,
                AlarmKind::SuspectedJamming,
                None,
                "position fixes are normal again",
            );
        }
        // The vehicle is where the fix says, even after a jump: the next fixes continue from
        // here. But a jump neither departs, arrives nor authorises.
        self.last_fix = Some(Fix {
            t: r.t,
            p,
            accuracy_m: r.accuracy_m,
        });
        if !doubtful {
            if self.realtime && !self.checkpoints.is_empty() {
                self.pass_checkpoints_at(cx, frame, zone_tol);
            }
            if self.state.is_travelling()
                && let Some(leg) = self.legs.get(self.leg as usize)
                && cx.world.area(leg.to).contains_at(frame, zone_tol)
            {
                self.reach_leg_end(cx, leg.to);
            }
            self.lifecycle_from_fix(r, frame, zone_tol, cx);
        }
        if self.state.is_travelling() {
            self.check_route(r, frame, acc, zone_tol, cx);
            self.check_stop(r, frame, acc, cx);
        }
        if doubtful {
            Whereabouts::Doubtful
        } else {
            Whereabouts::Fix(p)
        }
    }

    /// Departure and arrival from position. Like a deviation, each takes two consecutive
    /// fixes: one GNSS outlier must not end the journey's supervision.
    fn lifecycle_from_fix(
        &mut self,
        r: &Reading,
        frame: &LocalFrame,
        zone_tol: f64,
        cx: &mut Cx<'_>,
    ) {
        let inside_destination = self
            .destination
            .is_some_and(|z| cx.world.area(z).contains_at(frame, zone_tol));
        if self.state == TransitState::Sealed {
            let inside_departure = self
                .departure
                .is_some_and(|z| cx.world.area(z).contains_at(frame, zone_tol));
            if inside_departure {
                self.departure_candidate = None;
            } else {
                let first = *self.departure_candidate.get_or_insert(r.t);
                if first != r.t || self.departure.is_none() {
                    // Dated from the first fix outside, like an arrival from the first inside.
                    self.state = TransitState::InTransit;
                    self.departed_at = Some(first);
                    self.event_at(cx, first, EventKind::Departed, None, None, String::new());
                }
            }
        }
        if !self.state.is_travelling() {
            return;
        }
        // Arriving is entering the destination. For a round trip (departure and destination
        // one zone) that needs the departure to be confirmed first.
        let round_trip = self.departure.is_some() && self.departure == self.destination;
        if round_trip && self.state != TransitState::InTransit {
            return;
        }
        if !inside_destination {
            self.arrival_candidate = None;
            if let Some(deadline) = self.timeout_held.take() {
                // The fix inside was not confirmed: the time limit had passed.
                self.raise_timeout(cx, deadline);
            }
            return;
        }
        let first = *self.arrival_candidate.get_or_insert(Fix {
            t: r.t,
            p: frame.origin(),
            accuracy_m: r.accuracy_m,
        });
        // An opening reported inside the destination settles it: the seal is opened there.
        let opened = r.lock == Some(LockState::Unlocked) || r.door == Some(DoorState::Open);
        if first.t != r.t || opened {
            self.arrive(cx, first.t, Some(first.p), "entered the destination zone");
        }
    }

    fn check_route(
        &mut self,
        r: &Reading,
        frame: &LocalFrame,
        acc: f64,
        zone_tol: f64,
        cx: &mut Cx<'_>,
    ) {
        let p = frame.origin();
        if self.route.is_none() && self.legs.iter().all(|l| l.route.is_none()) {
            return;
        }
        let at_end = [self.departure, self.destination]
            .into_iter()
            .flatten()
            .any(|z| cx.world.area(z).contains_at(frame, zone_tol));
        // A fix counts as inside when its accuracy circle reaches the corridor. A permitted stop
        // zone off the route (a truck park) is part of the journey too; it is only looked up
        // when the fix is outside the corridor, which is rare.
        // With legs, the corridor is the union of the transit's and every leg's, each as wide
        // as its own rules say: a leg change wrongly inferred from one outlier fix in a port
        // then cannot turn the rest of the journey into a deviation.
        let corridor_m = self.rules.corridor_m;
        let inside = at_end
            || self
                .route
                .as_ref()
                .is_some_and(|r| r.within_at(frame, corridor_m + acc, &mut self.route_hint))
            || self.legs.iter_mut().any(|l| {
                let width = l.rules.corridor_m + acc;
                l.route
                    .as_ref()
                    .is_some_and(|r| r.within_at(frame, width, &mut l.route_hint))
            })
            || self.in_stop_zone(cx, p, zone_tol).is_some();
        let deviating = self.is_open(AlarmKind::RouteDeviation, None);
        if inside {
            self.inside_fixes += 1;
            // Like raising, clearing takes two fixes: one coarse fix that happens to reach the
            // corridor does not end a deviation.
            if !deviating || self.inside_fixes >= 2 {
                self.outside_since = None;
                self.outside_fixes = 0;
                self.clear(
                    cx,
                    AlarmKind::RouteDeviation,
                    None,
                    "back inside the corridor",
                );
            }
            return;
        }
        self.inside_fixes = 0;
        let since = **self.outside_since.get_or_insert_with(|| Box::new(*r));
        self.outside_fixes += 1;
        // One fix outside is not a deviation (GNSS outliers happen): it takes two or more fixes
        // outside, spanning the grace period.
        if self.outside_fixes >= 2 && r.t.since(since.t) >= self.rules.deviation_grace && !deviating
        {
            // Measured from the nearest corridor.
            let (d, width) =
                self.route
                    .iter()
                    .map(|r| (r.distance_m(p), corridor_m))
                    .chain(self.legs.iter().filter_map(|l| {
                        Some((l.route.as_ref()?.distance_m(p), l.rules.corridor_m))
                    }))
                    .min_by(|a, b| (a.0 - a.1).total_cmp(&(b.0 - b.1)))
                    .unwrap_or((0.0, corridor_m));
            let detail = format!(
                "{} outside the corridor ({} from the route, corridor {})",
                text::distance((d - width).max(0.0)),
                text::distance(d),
                text::distance(width)
            );
            let ev = vec![self.evidence(&since), self.evidence(r)];
            self.raise(cx, AlarmKind::RouteDeviation, None, Some(p), detail, ev);
        }
    }

    fn end_stop(&mut self, cx: &mut Cx<'_>) {
        if let Some((kind, _)) = self.stop.confirmed.take() {
            self.clear(cx, kind, None, "moving again");
        }
        self.stop.generation += 1;
        self.stop.anchor = None;
        self.stop.pending = None;
        self.stop.zone = None;
        self.stop.due_held = None;
    }

    fn check_stop(&mut self, r: &Reading, frame: &LocalFrame, acc: f64, cx: &mut Cx<'_>) {
        let radius = self.rules.stop_radius_m;
        let tol = acc.min(radius);
        let moving = r.speed_kmh.is_some_and(|s| s > MOVING_KMH);
        let here = Fix {
            t: r.t,
            p: frame.origin(),
            accuracy_m: r.accuracy_m,
        };
        let Some(anchor) = self.stop.anchor else {
            if !moving {
                self.stop.anchor = Some(here);
            }
            return;
        };
        let near = !moving && frame.distance_m(anchor.p) - tol <= radius;
        if near {
            self.stop.pending = None;
            if self.stop.confirmed.is_none() && r.t.since(anchor.t) >= self.rules.stop_min {
                self.confirm_stop(anchor, r, cx);
            } else if let Some(due) = self.stop.due_held
                && self.arrival_candidate.is_none()
                && let Some((kind, _)) = self.stop.confirmed
            {
                // The fix held back was a glitch: the vehicle never left.
                self.stop.due_held = None;
                self.raise_stop(cx, kind, due);
            }
            return;
        }
        // One fix away from a confirmed stop, or one report of speed, may be a glitch: it takes
        // two to end the stop.
        if self.stop.pending.is_none() && self.stop.confirmed.is_some() {
            self.stop.pending = Some(here);
            return;
        }
        let pending = self.stop.pending;
        self.end_stop(cx);
        if !moving {
            // If the held-back fix and this one agree, the vehicle moved there and may be
            // stopping again: start from the earlier of the two.
            self.stop.anchor = Some(match pending {
                Some(pd) if frame.distance_m(pd.p) - tol <= radius => pd,
                _ => here,
            });
        }
    }

    /// The first permitted stop zone containing `p` (within `tolerance_m`).
    fn in_stop_zone(&self, cx: &Cx<'_>, p: LonLat, tolerance_m: f64) -> Option<u32> {
        let mut zone = None;
        cx.world.index.containing(p, tolerance_m, |z| {
            if zone.is_none() && self.stop_zones.binary_search(&z).is_ok() {
                zone = Some(z);
            }
        });
        zone
    }

    fn confirm_stop(&mut self, anchor: Fix, r: &Reading, cx: &mut Cx<'_>) {
        // The stop counts as inside a permitted zone if it began there or is there now (a truck
        // that halts at a rest area's gate, then rolls in).
        let radius = self.rules.stop_radius_m;
        let zone = self
            .in_stop_zone(cx, anchor.p, anchor.accuracy_m.unwrap_or(0.0).min(radius))
            .or_else(|| {
                let p = reading_pos(r)?;
                self.in_stop_zone(cx, p, r.accuracy_m.unwrap_or(0.0).min(radius))
            });
        let (kind, limit) = match zone {
            Some(_) => (AlarmKind::OvertimeStay, self.rules.max_stop_inside),
            None => (AlarmKind::IllegalStay, self.rules.max_stop_outside),
        };
        let due = anchor.t.plus(limit);
        self.stop.confirmed = Some((kind, due));
        self.stop.zone = zone;
        if due <= r.t {
            // Reports are sparse: the limit passed before we knew the vehicle had stopped. It
            // is raised now (the time we knew), not back-dated to the limit.
            self.raise_stop(cx, kind, r.t);
        } else {
            cx.timers
                .set(due, TimerKind::Stop, cx.ti, self.stop.generation);
        }
    }

    /// Raises the stop alarm, dated at the limit that passed.
    fn raise_stop(&mut self, cx: &mut Cx<'_>, kind: AlarmKind, due: Timestamp) {
        let Some(anchor) = self.stop.anchor else {
            return;
        };
        let stopped = text::duration(due.since(anchor.t));
        let detail = match self.stop.zone {
            Some(z) => format!(
                "stopped for {stopped} in {} (limit {})",
                cx.world.zone_label(z),
                text::duration(self.rules.max_stop_inside)
            ),
            None => format!(
                "stopped for {stopped} outside any permitted stop zone (limit {})",
                text::duration(self.rules.max_stop_outside)
            ),
        };
        let mut ev = vec![self.evidence(&anchor.reading())];
        if let Some(last) = self.last_fix.filter(|l| l.t != anchor.t) {
            ev.push(self.evidence(&last.reading()));
        }
        self.raise_dated(cx, due, kind, None, Some(anchor.p), detail, ev);
    }

    /// Lock, door, and a cable cut once the unseal is authorised.
    fn check_opening(&mut self, r: &Reading, at: Whereabouts, cx: &mut Cx<'_>) {
        if let Some(lock) = r.lock {
            self.sm().lock_open = lock == LockState::Unlocked;
        }
        if let Some(door) = r.door {
            self.sm().door_open = door == DoorState::Open;
        }
        let unlocked = r.lock == Some(LockState::Unlocked);
        let door_opened = r.door == Some(DoorState::Open);
        let cable_cut = r.rope == Some(RopeState::Cut);
        if !(unlocked || door_opened || cable_cut) {
            if !self.s().lock_open && !self.s().door_open {
                self.clear(cx, AlarmKind::IllegalOpening, None, "closed again");
            }
            return;
        }
        // A report without a fix, at the destination, settles the arrival the last fix began.
        if at == Whereabouts::LastFix
            && self.state.is_travelling()
            && let Some(first) = self.arrival_candidate
        {
            self.arrive(cx, first.t, Some(first.p), "entered the destination zone");
        }
        let what = if unlocked {
            "lock opened"
        } else if door_opened {
            "door opened"
        } else {
            "cable cut"
        };
        if self.unseal_allowed(cx, at) {
            self.unseal_seal(cx, format!("{what} with authorisation"));
            return;
        }
        if cable_cut && !(unlocked || door_opened) {
            // Cutting the cable without authorisation is tampering (check_events).
            return;
        }
        let where_ = match (at, self.state) {
            (Whereabouts::Doubtful, _) => "from a position that cannot be trusted",
            (_, TransitState::Arrived) => "outside an unseal zone",
            _ => "before arrival",
        };
        let credentials = if r.events.contains(DeviceEvent::UnlockAuthorized) {
            " (the device accepted the credentials used)"
        } else {
            ""
        };
        let detail = format!("{what} {where_} without authorisation to unseal{credentials}");
        let ev = vec![self.evidence(r)];
        self.raise(
            cx,
            AlarmKind::IllegalOpening,
            None,
            reading_pos(r),
            detail,
            ev,
        );
    }

    /// Whether an event-raised condition has been quiet long enough to count as over.
    fn quiet(&self, last: Option<Timestamp>, now: Timestamp) -> bool {
        last.is_none_or(|t| now.since(t) >= self.rules.event_clear_after)
    }

    fn check_events(&mut self, r: &Reading, cx: &mut Cx<'_>) {
        let ev = r.events;
        // Nearly every report: no events, seal intact, nothing open. Nothing can change.
        let intact = !self.s().rope_cut
            && !self.s().housing_breached
            && r.rope != Some(RopeState::Cut)
            && r.housing != Some(HousingState::Breached);
        let open = [
            AlarmKind::Tamper,
            AlarmKind::UnauthorizedAction,
            AlarmKind::DeviceFault,
        ]
        .iter()
        .any(|k| self.is_open(*k, None));
        if ev.is_empty() && intact && !open {
            return;
        }
        let labels = |class: DeviceEvents| -> Vec<&'static str> {
            ev.iter()
                .filter(|e| class.contains(*e))
                .map(DeviceEvent::label)
                .collect()
        };

        // Tamper: the seal's physical state, or a tamper-class event.
        if let Some(rope) = r.rope {
            self.sm().rope_cut = rope == RopeState::Cut;
        }
        if let Some(housing) = r.housing {
            self.sm().housing_breached = housing == HousingState::Breached;
        }
        let tamper_events = labels(DeviceEvents::TAMPER_CLASS);
        if !tamper_events.is_empty() {
            self.sm().last_tamper_event = Some(r.t);
        }
        if self.s().rope_cut || self.s().housing_breached || !tamper_events.is_empty() {
            let mut what = Vec::new();
            if self.s().rope_cut {
                what.push("cable cut".to_owned());
            }
            if self.s().housing_breached {
                what.push("housing breached".to_owned());
            }
            if !tamper_events.is_empty() {
                what.push(format!("device reported: {}", tamper_events.join(", ")));
            }
            let e = vec![self.evidence(r)];
            self.raise(
                cx,
                AlarmKind::Tamper,
                None,
                reading_pos(r),
                what.join("; "),
                e,
            );
        } else if self.quiet(self.s().last_tamper_event, r.t) {
            self.clear(
                cx,
                AlarmKind::Tamper,
                None,
                "seal intact and no tamper events",
            );
        }

        let unauthorized = labels(DeviceEvents::UNAUTHORIZED_CLASS);
        if !unauthorized.is_empty() {
            self.sm().last_unauthorized_event = Some(r.t);
            let e = vec![self.evidence(r)];
            let detail = format!("device reported: {}", unauthorized.join(", "));
            self.raise(
                cx,
                AlarmKind::UnauthorizedAction,
                None,
                reading_pos(r),
                detail,
                e,
            );
        } else if self.quiet(self.s().last_unauthorized_event, r.t) {
            self.clear(
                cx,
                AlarmKind::UnauthorizedAction,
                None,
                "no further unauthorised attempts",
            );
        }

        if ev.contains(DeviceEvent::Fault) {
            self.sm().last_fault_event = Some(r.t);
            let e = vec![self.evidence(r)];
            self.raise(
                cx,
                AlarmKind::DeviceFault,
                None,
                reading_pos(r),
                "device reported a fault".into(),
                e,
            );
        } else if self.quiet(self.s().last_fault_event, r.t) {
            self.clear(cx, AlarmKind::DeviceFault, None, "no further faults");
        }
    }

    fn check_battery(&mut self, r: &Reading, cx: &mut Cx<'_>) {
        let threshold = self.rules.low_battery_pct;
        let charging = r.charging == Some(true);
        if r.events.contains(DeviceEvent::LowBattery) {
            self.sm().last_low_battery_event = Some(r.t);
        }
        let low_level = r.battery_pct.filter(|b| *b < threshold && !charging);
        if let Some(b) = low_level {
            let detail = format!(
                "battery {} % (threshold {} %)",
                text::number(b),
                text::number(threshold)
            );
            let e = vec![self.evidence(r)];
            self.raise(cx, AlarmKind::LowBattery, None, reading_pos(r), detail, e);
        } else if r.events.contains(DeviceEvent::LowBattery) && !charging {
            let e = vec![self.evidence(r)];
            self.raise(
                cx,
                AlarmKind::LowBattery,
                None,
                reading_pos(r),
                "device reported low battery".into(),
                e,
            );
        } else {
            let recovered = charging
                || r.battery_pct
                    .is_some_and(|b| b >= threshold + BATTERY_CLEAR_MARGIN_PCT);
            if recovered && (charging || self.quiet(self.s().last_low_battery_event, r.t)) {
                let why = if charging {
                    "charging"
                } else {
                    "battery recovered"
                };
                self.clear(cx, AlarmKind::LowBattery, None, why);
            }
        }
    }

    fn check_environment(&mut self, r: &Reading, cx: &mut Cx<'_>) {
        if !self.environment_limits {
            return;
        }
        let values = [
            r.temperature_c,
            r.humidity_pct,
            r.shock_g,
            r.light_lux,
            r.pressure_hpa,
        ];
        for (i, sensor) in Sensor::ALL.into_iter().enumerate() {
            let (Some(limits), Some(v)) = (self.rules.environment[i], values[i]) else {
                continue;
            };
            let unit = sensor.unit();
            if !limits.contains(v) {
                let bound = match (limits.min, limits.max) {
                    (Some(lo), _) if v < lo => {
                        format!("below the minimum {} {unit}", text::number(lo))
                    }
                    (_, Some(hi)) => format!("above the maximum {} {unit}", text::number(hi)),
                    _ => "outside the limits".into(),
                };
                let detail = format!(
                    "{} {} {unit}, {bound}",
                    capitalise(sensor.label()),
                    text::number(v),
                );
                let e = vec![self.evidence(r)];
                self.raise(
                    cx,
                    AlarmKind::Environment,
                    Some(sensor),
                    reading_pos(r),
                    detail,
                    e,
                );
            } else if limits.contains_with_margin(
                v,
                ENVIRONMENT_CLEAR_MARGIN,
                sensor.hysteresis(),
                sensor.floor(),
            ) {
                self.clear(
                    cx,
                    AlarmKind::Environment,
                    Some(sensor),
                    "back within limits",
                );
            }
        }
    }

    fn check_fuel(&mut self, r: &Reading, cx: &mut Cx<'_>) {
        let Some(raw) = r.fuel_pct else { return };
        // The median of the last few readings: fuel sloshing in the tank moves single readings
        // by a few percent; a theft moves them all.
        // Only readings within the window count: after a gap in reporting, the level before it
        // says nothing about the level now.
        let window = self.rules.fuel_drop_window;
        let mut fuel = self.sm().fuel.take().unwrap_or_default();
        fuel.recent.push_back((r.t, raw));
        while fuel.recent.len() > FUEL_MEDIAN_OF
            || fuel
                .recent
                .front()
                .is_some_and(|&(t, _)| r.t.since(t) > window)
        {
            fuel.recent.pop_front();
        }
        let mut sorted: Vec<f64> = fuel.recent.iter().map(|&(_, v)| v).collect();
        sorted.sort_by(f64::total_cmp);
        let v = sorted[sorted.len() / 2];

        while fuel.levels.back().is_some_and(|&(_, b)| b <= v) {
            fuel.levels.pop_back();
        }
        fuel.levels.push_back((r.t, v));
        while fuel
            .levels
            .front()
            .is_some_and(|&(t, _)| r.t.since(t) > window)
        {
            fuel.levels.pop_front();
        }
        let (max_t, max_v) = *fuel.levels.front().expect("just pushed");
        let drop = max_v - v;
        if drop >= self.rules.fuel_drop_pct {
            if !self.is_open(AlarmKind::AbnormalFuel, None) {
                fuel.alarm_from = Some(max_t);
            }
            self.sm().fuel = Some(fuel);
            let detail = format!(
                "fuel fell from {} % to {} % in {}",
                text::number(max_v),
                text::number(v),
                text::duration(r.t.since(max_t))
            );
            let e = vec![self.evidence(r)];
            self.raise(cx, AlarmKind::AbnormalFuel, None, reading_pos(r), detail, e);
        } else if fuel.alarm_from.is_some_and(|from| r.t.since(from) > window) {
            // The level the drop was measured from has left the window.
            fuel.alarm_from = None;
            self.sm().fuel = Some(fuel);
            self.clear(cx, AlarmKind::AbnormalFuel, None, "fuel level steady");
        } else {
            self.sm().fuel = Some(fuel);
        }
    }

    // ----- reads ---------------------------------------------------------------------------

    /// A read of the device in `slot`, checked against that device's `device_data`.
    pub(crate) fn on_read(&mut self, slot: u8, read: &CheckpointRead, cx: &mut Cx<'_>) {
        self.cur = slot;
        if !self.state.is_supervised() {
            return;
        }
        let mut problems = Vec::new();
        if !read.intact {
            problems.push("the reader found the seal broken".to_owned());
        }
        match (&read.data, self.s().device_data.as_deref()) {
            (None, Some(_)) => problems.push("the tag could not be read".to_owned()),
            (Some(data), Some(declared)) => {
                for (key, want) in declared {
                    match data.get(key) {
                        Some(got) if same_value(got, want) => {}
                        Some(got) => problems.push(format!("{key} reads {got}, declared {want}")),
                        None => problems.push(format!("{key} missing, declared {want}")),
                    }
                }
            }
            (_, None) => {}
        }
        let zone = cx.world.zone_ids.get(&read.zone).copied();
        if let Some(z) = zone {
            self.last_read_zone = zone;
            // Passed, whatever the read found: the vehicle came through; what it found is
            // judged below.
            self.pass_checkpoint(cx, z, &format!("read by {}", read.reader));
            if self.state.is_travelling() {
                self.reach_leg_end(cx, z);
            }
        }
        let at = zone.map(|z| cx.world.zones[z as usize].anchor);
        let place = zone.map_or_else(|| read.zone.to_string(), |z| cx.world.zone_label(z));
        if problems.is_empty() {
            self.clear(
                cx,
                AlarmKind::CheckpointMismatch,
                None,
                "a later read matched the declaration",
            );
            self.event(
                cx,
                EventKind::CheckpointRead,
                format!("read by {} at {place}", read.reader),
            );
        } else {
            let detail = format!(
                "at {place} by reader {}: {}",
                read.reader,
                problems.join("; ")
            );
            self.raise(
                cx,
                AlarmKind::CheckpointMismatch,
                None,
                at,
                detail,
                vec![Evidence::Read(read.clone())],
            );
        }
        if read.gate == Some(Gate::Arrival) {
            self.gate_arrival(read, zone, cx);
        } else if zone.is_some() && zone == self.destination {
            let place = zone.map(|z| cx.world.zones[z as usize].anchor);
            self.arrive(cx, cx.now, place, "read at the destination");
        }
    }
}

impl TransitRt {
    // ----- quick mode ----------------------------------------------------------------------

    /// A departure gate read the device of this declared transit: the gate seals it, exactly
    /// as a `seal` action would.
    pub(crate) fn gate_seal(&mut self, slot: u8, read: &CheckpointRead, cx: &mut Cx<'_>) -> bool {
        self.cur = slot;
        let zone = cx.world.zone_ids.get(&read.zone).copied();
        let place = zone.map_or_else(|| read.zone.to_string(), |z| cx.world.zone_label(z));
        // A gate seals only the transits that leave from where it stands: a fixed reader
        // elsewhere (a checkpoint's, another office's) that read a declared device seals
        // nothing, and says so.
        if let Some(departure) = self.departure
            && zone != Some(departure)
        {
            let detail = format!(
                "departure gate {} at {place} is not at the transit's departure ({}): not sealed",
                read.reader,
                cx.world.zone_label(departure)
            );
            self.event(cx, EventKind::ActionRejected, detail);
            Self::stamp_reader(cx, &read.reader);
            return false;
        }
        let detail = format!("quick mode, gate {} at {place}", read.reader);
        self.seal_by(cx, detail, Some(&read.reader))
    }

    /// The alarms that hold a quick-mode unseal: every condition raised on the transit (cleared
    /// since or not) graded above `quick_unseal_max_grade`, as `kind (grade g)`.
    fn quick_mode_holds(&self) -> Vec<String> {
        let max = self.rules.quick_unseal_max_grade;
        let mut holds = Vec::new();
        for kind in AlarmKind::ALL {
            let grade = self.rules.grade(kind);
            if grade <= max {
                continue;
            }
            let sensors = if kind == AlarmKind::Environment {
                Sensor::ALL.map(Some).to_vec()
            } else {
                vec![None]
            };
            for sensor in sensors {
                if self.raised & (1 << flag(kind, sensor)) != 0 {
                    // A missed checkpoint stays open until it is passed, beside a read's
                    // mismatch that has its own flag.
                    let missed = kind == AlarmKind::CheckpointMismatch
                        && self
                            .checkpoints
                            .iter()
                            .any(|c| c.missed && c.passed.is_none());
                    let open = if (0..self.slots()).any(|i| self.slot(i).open[flag(kind, sensor)])
                        || missed
                    {
                        ", open"
                    } else {
                        ", cleared since"
                    };
                    holds.push(match sensor {
                        Some(s) => format!("{kind} {} (grade {grade}{open})", s.as_str()),
                        None => format!("{kind} (grade {grade}{open})"),
                    });
                }
            }
        }
        holds
    }

    /// An arrival gate read the device (`zone` is the read's zone, if known): the gate
    /// authorises the unseal when no alarm above the transit's quick-mode grade was raised,
    /// and holds the transit for an officer otherwise.
    fn gate_arrival(&mut self, read: &CheckpointRead, zone: Option<u32>, cx: &mut Cx<'_>) {
        let place = zone.map_or_else(|| read.zone.to_string(), |z| cx.world.zone_label(z));
        let at_destination = zone.is_some_and(|z| {
            Some(z) == self.destination || self.unseal_zones.binary_search(&z).is_ok()
        });
        if at_destination && self.state.is_travelling() {
            // The gate stands at the destination office: its read is the arrival.
            let anchor = zone.map(|z| cx.world.zones[z as usize].anchor);
            self.arrive(cx, cx.now, anchor, &format!("arrival gate {}", read.reader));
        }
        if self.unseal_authorized || self.gate_decided {
            // An officer decided already (or, for a transit with several devices, the gate
            // did at the first of them it read): the gate has nothing to add.
            return;
        }
        self.gate_decided = !self.extra.is_empty();
        // After the arrival: arriving late raises the held journey timeout, which may hold.
        let mut holds = self.quick_mode_holds();
        if !at_destination {
            holds.insert(
                0,
                "the gate is not at the destination or an unseal zone".to_owned(),
            );
        }
        if holds.is_empty() {
            self.unseal_authorized = true;
            let detail = format!("quick mode, gate {} at {place}", read.reader);
            self.event(cx, EventKind::UnsealAuthorized, detail);
        } else {
            let detail = format!(
                "quick mode held at gate {} at {place} for an officer: {}",
                read.reader,
                holds.join("; ")
            );
            self.event(cx, EventKind::GateHold, detail);
        }
        Self::stamp_reader(cx, &read.reader);
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_device_costs_about_what_it_did() {
        // Slot 0 inline, the others boxed: a single-device transit grows by a few words only.
        // 712 bytes on 64-bit targets before a transit could have several devices, 736 since.
        assert!(std::mem::size_of::<TransitRt>() <= 768);
    }

    #[test]
    fn flags_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for k in AlarmKind::ALL {
            assert!(seen.insert(flag(k, None)));
        }
        for s in Sensor::ALL {
            assert!(seen.insert(flag(AlarmKind::Environment, Some(s))));
        }
        assert_eq!(seen.len(), N_FLAGS);
    }

    #[test]
    fn tag_values_compare_numbers_by_value() {
        use serde_json::json;
        assert!(same_value(&json!(18000), &json!(18000.0)));
        assert!(!same_value(&json!("18000"), &json!(18000)));
        assert!(same_value(&json!("ZJ-A12345"), &json!("ZJ-A12345")));
        assert!(!same_value(
            &json!(9_007_199_254_740_993_u64),
            &json!(9_007_199_254_740_992_u64)
        ));
    }
}

#[cfg(test)]
mod packed_tests {
    use super::*;

    #[test]
    fn a_packed_reading_is_the_reading() {
        let mut r = Reading::empty(Timestamp::from_unix_ms(1_795_600_000_123));
        assert_eq!(Packed::new(&r).get(), r);
        r.lat = Some(-0.0);
        r.lon = Some(120.07);
        r.fix = Some(false);
        r.accuracy_m = Some(0.0);
        r.speed_kmh = Some(f64::MAX);
        r.course_deg = Some(359.9);
        r.lock = Some(LockState::Unlocked);
        r.rope = Some(RopeState::Cut);
        r.housing = Some(HousingState::Intact);
        r.door = Some(DoorState::Open);
        r.battery_pct = Some(14.5);
        r.charging = Some(true);
        r.temperature_c = Some(-40.25);
        r.humidity_pct = Some(100.0);
        r.shock_g = Some(1e-9);
        r.light_lux = Some(0.0);
        r.pressure_hpa = Some(1013.25);
        r.fuel_pct = Some(55.5);
        r.events.insert(DeviceEvent::Tamper);
        r.events.insert(DeviceEvent::WrongPassword);
        r.seq = Some(0);
        let back = Packed::new(&r).get();
        assert_eq!(back, r);
        assert_eq!(back.lat.unwrap().to_bits(), (-0.0f64).to_bits());
        r.seq = Some(u64::MAX);
        r.temperature_c = None;
        assert_eq!(Packed::new(&r).get(), r);
        assert!(std::mem::size_of::<Option<Packed>>() < std::mem::size_of::<Option<Reading>>());
    }
}
