//! The supervision engine: per-transit state machines, the alarm rules, and timers.
//!
//! `Supervisor::handle(input, &mut out)` takes one input — a device observation, a checkpoint
//! read, an officer's action, or a clock tick — and appends the alarms and events it causes.
//! Everything that depends on time takes the time from the input; timers are data inside the
//! supervisor and fire, in a fixed order, before the first input that comes after them.
//!
//! **Architecture invariant**: this crate does no I/O, reads no clock and draws no random
//! numbers, so the same inputs always give byte-for-byte the same outputs. CI checks that it
//! does not depend on tokio. This is what makes `sealwatch replay`, tests as data and
//! partitioned scale-out possible.
//!
//! **Cost invariant**: handling an observation costs the same whatever the number of transits,
//! zones or route points: devices are found by hash, route segments through a box hierarchy
//! and zones through an R-tree,
//! timers through a heap whose stale entries are skipped rather than searched for.
//!
//! The rules and their defaults are documented in docs/alarms.md.

mod text;
mod timers;
mod transit;

use std::sync::Arc;

use geometry::{Area, LocalFrame, LonLat, Route, ZoneIndex};
use model::{
    Action, Alarm, CheckpointRead, DeviceId, Event, Geometry, Observation, RuleSet, Timestamp,
    Transit, TransitId, Zone, ZoneId,
};
use rustc_hash::FxHashMap;

use timers::{INPUT_PHASE, TICK_PHASE, TimerKind, Timers};
use transit::{Cx, Suspect, TransitRt};

/// What the supervisor produces.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Alarm(Alarm),
    Event(Event),
}

impl Output {
    pub fn t(&self) -> Timestamp {
        match self {
            Output::Alarm(a) => a.t,
            Output::Event(e) => e.t,
        }
    }
}

/// One input. Each carries its time; `Tick` only moves the clock.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    Observation(&'a Observation),
    Read(&'a CheckpointRead),
    Action(&'a Action),
    Tick(Timestamp),
}

impl Input<'_> {
    pub fn t(&self) -> Timestamp {
        match self {
            Input::Observation(o) => o.t,
            Input::Read(r) => r.t,
            Input::Action(a) => a.t,
            Input::Tick(t) => *t,
        }
    }
}

/// What [`Supervisor::admit`] says of an observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Accept,
    /// The same report was taken already.
    Duplicate,
    /// The device is on no declared transit.
    UnknownDevice,
    /// Every transit of the device is closed.
    NotSupervised,
}

/// Why zones or a transit cannot be supervised.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct SetupError {
    /// Which field (`zones[2].area`, `transit T1: departure`).
    pub path: String,
    pub reason: String,
}

#[derive(Debug)]
pub(crate) struct ZoneInfo {
    pub(crate) id: ZoneId,
    pub(crate) name: Option<String>,
    /// A representative point (centre) for alarms raised at the zone.
    pub(crate) anchor: LonLat,
}

/// The zones, fixed once the supervisor is built.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) zones: Vec<ZoneInfo>,
    pub(crate) zone_ids: FxHashMap<ZoneId, u32>,
    pub(crate) index: ZoneIndex,
}

impl World {
    pub(crate) fn area(&self, zone: u32) -> &Area {
        self.index.area(zone)
    }

    /// How a zone is named in alarm texts: `REST-1 (Shengzhou service area)`.
    pub(crate) fn zone_label(&self, zone: u32) -> String {
        let z = &self.zones[zone as usize];
        match &z.name {
            Some(name) => format!("{} ({name})", z.id),
            None => z.id.to_string(),
        }
    }
}

/// What the supervisor keeps per device, whatever transit it is on.
#[derive(Debug, Default)]
pub(crate) struct DeviceRt {
    /// The transit most recently declared for this device (`u32::MAX`: none yet). Kept inline:
    /// it is what almost every report is for.
    latest: u32,
    /// Transits declared before `latest`, in declaration order.
    earlier: Vec<u32>,
    last_t: Option<Timestamp>,
    last_digest: u64,
    /// Recent `(seq, content digest, time)`, to tell duplicates (same content) from replayed or
    /// cloned reports (same `seq`, other content).
    seqs: [(u64, u64, Timestamp); SEQ_WINDOW],
    seqs_len: u8,
    seqs_next: u8,
    /// Highest `seq` seen in the window (it may outlive its slot: then a search that could have
    /// been skipped is done, which is harmless).
    max_seq: u64,
    /// Last believed fix in time order: `(t, position, accuracy)`.
    last_fix: Option<(Timestamp, LonLat, f64)>,
    /// Last fix of a suspected clone's track: `(t, position)`.
    suspect_fix: Option<(Timestamp, LonLat)>,
}

/// `DeviceRt::latest` of a device that no transit has any more (another was paired instead).
const NO_TRANSIT: u32 = u32::MAX;

/// How many recent sequence numbers a device remembers.
const SEQ_WINDOW: usize = 16;

impl DeviceRt {
    /// The transits of the device, the latest first.
    fn transits(&self) -> impl Iterator<Item = u32> + '_ {
        std::iter::once(self.latest)
            .filter(|&ti| ti != NO_TRANSIT)
            .chain(self.earlier.iter().copied())
    }

    /// Takes a transit on (it was declared or paired with this device).
    fn take(&mut self, ti: u32) {
        if self.latest != NO_TRANSIT {
            self.earlier.push(self.latest);
        }
        self.latest = ti;
    }

    /// Lets a transit go (another device was paired with it).
    fn release(&mut self, ti: u32) {
        if self.latest == ti {
            self.latest = self.earlier.pop().unwrap_or(NO_TRANSIT);
        } else {
            self.earlier.retain(|&o| o != ti);
        }
    }

    /// The digest and time of the remembered report with this `seq`.
    fn seq_seen(&self, seq: u64) -> Option<(u64, Timestamp)> {
        // Counters go up: a number above every remembered one is new without a search.
        if self.seqs_len == 0 || seq > self.max_seq {
            return None;
        }
        self.seqs[..usize::from(self.seqs_len)]
            .iter()
            .find(|(s, _, _)| *s == seq)
            .map(|(_, d, t)| (*d, *t))
    }

    /// Whether a fix can come from the genuine device: not if reaching it from the last
    /// believed fix would need `clone_speed_kmh`, nor if it continues the track of a suspected
    /// clone (closer to that track than to the believed one). A suspect track is never believed
    /// again by itself: an officer settles a cloned-device alarm.
    fn judge_fix(
        &mut self,
        frame: &LocalFrame,
        r: &model::Reading,
        rules: &RuleSet,
    ) -> Option<Suspect> {
        let (t0, p0, acc0) = self.last_fix?;
        let p = frame.origin();
        let acc = r.accuracy_m.unwrap_or(0.0);
        if let Some((ts, ps)) = self.suspect_fix
            && r.t.since(ts) < rules.event_clear_after
            && frame.distance_m(ps) < frame.distance_m(p0)
        {
            self.suspect_fix = Some((r.t, p));
            let mut earlier = model::Reading::empty(ts);
            (earlier.lon, earlier.lat) = (Some(ps[0]), Some(ps[1]));
            return Some(Suspect {
                detail: "continues the track of a suspected clone, away from the genuine device's"
                    .into(),
                earlier: Some(earlier),
            });
        }
        // The local frame is exact enough to rule out a clone cheaply; only a candidate pays
        // for the great-circle distance.
        if frame.distance_m(p0) - acc0 - acc < 0.9 * rules.clone_min_distance_m {
            return None;
        }
        let d_m = geometry::haversine_m(p0, p) - acc0 - acc;
        let dt_h = r.t.since(t0).as_ms() as f64 / 3_600_000.0;
        if d_m < rules.clone_min_distance_m
            || (dt_h > 0.0 && d_m / 1000.0 / dt_h < rules.clone_speed_kmh)
        {
            return None;
        }
        self.suspect_fix = Some((r.t, p));
        let mut earlier = model::Reading::empty(t0);
        (earlier.lon, earlier.lat) = (Some(p0[0]), Some(p0[1]));
        Some(Suspect {
            detail: format!(
                "two reports {} apart within {}: no vehicle travels at that speed",
                text::distance(d_m),
                text::duration(r.t.since(t0)),
            ),
            earlier: Some(earlier),
        })
    }

    /// Reads what the next report will need; see `TransitRt::touch`.
    fn touch(&self) -> u64 {
        self.seqs[usize::from(self.seqs_next)].0
            ^ self.last_fix.map_or(0, |f| f.0.unix_ms() as u64)
            ^ self.max_seq
    }

    fn remember_seq(&mut self, seq: u64, digest: u64, t: Timestamp) {
        self.max_seq = if self.seqs_len == 0 {
            seq
        } else {
            self.max_seq.max(seq)
        };
        self.seqs[usize::from(self.seqs_next)] = (seq, digest, t);
        self.seqs_next = (self.seqs_next + 1) % SEQ_WINDOW as u8;
        self.seqs_len = (self.seqs_len + 1).min(SEQ_WINDOW as u8);
    }
}

/// The transit a device's reports are for: of those sealed and not yet unsealed or closed,
/// the one sealed last (ties by id, so the order of declaration never matters).
fn active_transit(transits: &[TransitRt], dev: &DeviceRt) -> Option<u32> {
    if dev.earlier.is_empty() {
        // The usual case: one transit per device.
        return (dev.latest != NO_TRANSIT && transits[dev.latest as usize].takes_reports())
            .then_some(dev.latest);
    }
    dev.transits()
        .filter(|&ti| transits[ti as usize].takes_reports())
        .max_by(|&a, &b| {
            let (a, b) = (&transits[a as usize], &transits[b as usize]);
            (a.sealed_at(), b.id()).cmp(&(b.sealed_at(), a.id()))
        })
}

/// Rule sets and routes shared between transits. Most transits use the default rules, and many
/// travel the same declared corridor: one copy each keeps memory per transit small and the
/// shared copy in cache.
#[derive(Debug, Default)]
struct Interned {
    rule_sets: Vec<Arc<RuleSet>>,
    /// Routes by a digest of their coordinates.
    routes: FxHashMap<u64, Vec<Arc<Route>>>,
}

impl Interned {
    fn rules(&mut self, rules: RuleSet) -> Arc<RuleSet> {
        if let Some(r) = self.rule_sets.iter().find(|r| ***r == rules) {
            return Arc::clone(r);
        }
        let r = Arc::new(rules);
        self.rule_sets.push(Arc::clone(&r));
        r
    }

    fn route(&mut self, points: &[[f64; 2]]) -> Arc<Route> {
        let digest = points
            .iter()
            .flatten()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
                (h ^ v.to_bits()).wrapping_mul(0x0000_0100_0000_01b3)
            });
        let same = self.routes.entry(digest).or_default();
        if let Some(r) = same.iter().find(|r| r.points() == points) {
            return Arc::clone(r);
        }
        let r = Arc::new(Route::new(points.to_vec()));
        same.push(Arc::clone(&r));
        r
    }
}

/// The supervision engine. See the crate documentation.
#[derive(Debug)]
pub struct Supervisor {
    world: World,
    transits: Vec<TransitRt>,
    transit_ids: FxHashMap<TransitId, u32>,
    /// Device id to index in `devices`: small map entries keep the probe cache-friendly.
    device_ids: FxHashMap<DeviceId, u32>,
    devices: Vec<DeviceRt>,
    timers: Timers,
    interned: Interned,
    now: Timestamp,
    /// Reused by `handle_observations`: the device index per report, and what touching its
    /// transit's state read (kept only so the reads are not optimised away).
    batch_scratch: Vec<(Option<u32>, u64)>,
}

fn zone_area(zone: &Zone) -> Result<Area, String> {
    zone.validate().map_err(|(_, reason)| reason)?;
    Ok(match &zone.area {
        Geometry::Point(c) => Area::Circle {
            center: *c,
            radius_m: zone.radius_m.unwrap_or(0.0),
        },
        Geometry::Polygon(rings) => Area::Polygon {
            rings: rings.clone(),
        },
        Geometry::LineString(_) => {
            return Err("expected a Polygon, or a Point with radius_m".into());
        }
    })
}

fn anchor_of(area: &Area) -> LonLat {
    match area {
        Area::Circle { center, .. } => *center,
        Area::Polygon { .. } => {
            let e = area.envelope(0.0);
            [
                (e.lower()[0] + e.upper()[0]) / 2.0,
                (e.lower()[1] + e.upper()[1]) / 2.0,
            ]
        }
    }
}

impl Supervisor {
    /// A supervisor over these zones, with no transits yet.
    pub fn new(zones: &[Zone]) -> Result<Supervisor, SetupError> {
        let mut infos = Vec::with_capacity(zones.len());
        let mut areas = Vec::with_capacity(zones.len());
        let mut zone_ids = FxHashMap::default();
        for (i, z) in zones.iter().enumerate() {
            let area = zone_area(z).map_err(|reason| SetupError {
                path: format!("zones[{i}]"),
                reason,
            })?;
            if zone_ids.insert(z.id.clone(), i as u32).is_some() {
                return Err(SetupError {
                    path: format!("zones[{i}].id"),
                    reason: format!("zone {} is declared twice", z.id),
                });
            }
            infos.push(ZoneInfo {
                id: z.id.clone(),
                name: z.name.clone(),
                anchor: anchor_of(&area),
            });
            areas.push(area);
        }
        Ok(Supervisor {
            world: World {
                zones: infos,
                zone_ids,
                index: ZoneIndex::new(areas),
            },
            transits: Vec::new(),
            transit_ids: FxHashMap::default(),
            device_ids: FxHashMap::default(),
            devices: Vec::new(),
            timers: Timers::default(),
            interned: Interned::default(),
            now: Timestamp::MIN,
            batch_scratch: Vec::new(),
        })
    }

    /// Declares a transit. With `sealed_at`, it is sealed at that time (a timer); otherwise a
    /// `seal` action seals it.
    pub fn declare(&mut self, transit: &Transit) -> Result<(), SetupError> {
        if self.transit_ids.contains_key(&transit.id) {
            return Err(SetupError {
                path: format!("transit {}", transit.id),
                reason: "declared twice".into(),
            });
        }
        let ti = self.transits.len() as u32;
        if transit.devices.len() >= transit::MAX_DEVICES {
            return Err(SetupError {
                path: format!("transit {}: devices", transit.id),
                reason: format!(
                    "{} devices; a transit has at most {}",
                    transit.devices.len() + 1,
                    transit::MAX_DEVICES
                ),
            });
        }
        for (j, d) in transit.devices.iter().enumerate() {
            if transit.all_devices().take(j + 1).any(|o| *o == d.id) {
                return Err(SetupError {
                    path: format!("transit {}: devices[{j}].id", transit.id),
                    reason: format!("device {} seals this transit twice", d.id),
                });
            }
        }
        transit
            .rules
            .validate()
            .map_err(|(rule, reason)| SetupError {
                path: format!("transit {}: rules.{rule}", transit.id),
                reason,
            })?;
        let rules = self
            .interned
            .rules(transit.rules.resolve(transit.corridor_m));
        let route = match &transit.route {
            None => None,
            Some(Geometry::LineString(points)) if points.len() >= 2 => {
                Some(self.interned.route(points))
            }
            Some(_) => {
                return Err(SetupError {
                    path: format!("transit {}: route", transit.id),
                    reason: "expected a LineString with at least 2 positions".into(),
                });
            }
        };
        let mut legs = Vec::with_capacity(transit.legs.len());
        for (j, leg) in transit.legs.iter().enumerate() {
            let leg_rules = match &leg.rules {
                None => Arc::clone(&rules),
                Some(over) => {
                    over.validate().map_err(|(rule, reason)| SetupError {
                        path: format!("transit {}: legs[{j}].rules.{rule}", transit.id),
                        reason,
                    })?;
                    // The leg's corridor_m wins over the transit's, as the transit's wins
                    // over its rules.
                    let corridor_m = over.corridor_m.or(transit.corridor_m);
                    self.interned
                        .rules(transit.rules.overlaid(over).resolve(corridor_m))
                }
            };
            let leg_route = match &leg.route {
                None => None,
                Some(Geometry::LineString(points)) if points.len() >= 2 => {
                    Some(self.interned.route(points))
                }
                Some(_) => {
                    return Err(SetupError {
                        path: format!("transit {}: legs[{j}].route", transit.id),
                        reason: "expected a LineString with at least 2 positions".into(),
                    });
                }
            };
            legs.push((leg_route, leg_rules));
        }
        let rt = TransitRt::new(transit, &self.world, rules, route, legs)?;
        if let Some(at) = transit.sealed_at {
            self.timers.set(at, TimerKind::Seal, ti, 0);
        }
        self.transits.push(rt);
        self.transit_ids.insert(transit.id.clone(), ti);
        // Every device of the transit takes it on: finding the transit for a report stays a
        // hash lookup, whichever of its devices sent it.
        for device in transit.all_devices() {
            let next = self.devices.len() as u32;
            let di = *self.device_ids.entry(device.clone()).or_insert(next);
            if di == next {
                self.devices.push(DeviceRt {
                    latest: ti,
                    ..DeviceRt::default()
                });
            } else {
                self.devices[di as usize].take(ti);
            }
        }
        Ok(())
    }

    /// The supervisor's clock: the latest time it has been given.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    pub fn transit_count(&self) -> usize {
        self.transits.len()
    }

    /// Timers waiting, stale ones included (for metrics).
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// The state of a transit, if it was declared.
    pub fn transit_state(&self, id: &str) -> Option<model::TransitState> {
        self.transit_ids
            .get(id)
            .map(|&i| self.transits[i as usize].state())
    }

    /// Whether the device is on a declared transit.
    pub fn knows_device(&self, device: &str) -> bool {
        self.device_ids.contains_key(device)
    }

    /// Whether an observation would be taken, without taking it: what an ingest path asks
    /// before making a report durable.
    pub fn admit(&self, obs: &Observation) -> Admission {
        let Some(&di) = self.device_ids.get(obs.device.as_str()) else {
            return Admission::UnknownDevice;
        };
        let dev = &self.devices[di as usize];
        if dev.transits().next().is_none() {
            // Every transit it had was paired with another device.
            return Admission::UnknownDevice;
        }
        if active_transit(&self.transits, dev).is_none() {
            // Reports before sealing (a device switched on at the station) and after the
            // unseal (a device on its way back to stock) are data; once every transit of the
            // device is closed, they are a mistake.
            let all_closed = dev
                .transits()
                .all(|ti| self.transits[ti as usize].state() == model::TransitState::Closed);
            if all_closed {
                return Admission::NotSupervised;
            }
        }
        let r = obs.reading();
        let digest = r.content_digest();
        let duplicate = match r.seq {
            Some(seq) => dev.seq_seen(seq).is_some_and(|(d, _)| d == digest),
            None => dev.last_t == Some(r.t) && dev.last_digest == digest,
        };
        if duplicate {
            Admission::Duplicate
        } else {
            Admission::Accept
        }
    }

    /// Handles one input, appending what it causes to `out`.
    pub fn handle(&mut self, input: Input<'_>, out: &mut Vec<Output>) {
        let t = input.t();
        let phase = if matches!(input, Input::Tick(_)) {
            TICK_PHASE
        } else {
            INPUT_PHASE
        };
        self.fire_due(t, phase, out);
        if t > self.now {
            self.now = t;
        }
        match input {
            Input::Observation(o) => self.observe(o, out),
            Input::Read(r) => self.read(r, out),
            Input::Action(a) => self.act(a, out),
            Input::Tick(_) => {}
        }
    }

    /// Handles a batch of observations in order: exactly what calling [`Supervisor::handle`] on
    /// each would do, but faster when the batch spans many devices. The device and transit each
    /// report is for are looked up for the whole batch first; those lookups are independent, so
    /// the processor fetches their memory in parallel instead of one report at a time.
    pub fn handle_observations(&mut self, batch: &[Observation], out: &mut Vec<Output>) {
        let mut found = std::mem::take(&mut self.batch_scratch);
        found.clear();
        found.extend(batch.iter().map(|o| {
            let di = self.device_ids.get(o.device.as_str()).copied();
            // The transit's state is what `observe` reads first.
            let ti = di.and_then(|di| active_transit(&self.transits, &self.devices[di as usize]));
            let device = di.map_or(0, |di| self.devices[di as usize].touch());
            let touched = device ^ ti.map_or(0, |ti| self.transits[ti as usize].touch());
            (di, touched)
        }));
        for (o, &(di, _)) in batch.iter().zip(&found) {
            self.fire_due(o.t, INPUT_PHASE, out);
            if o.t > self.now {
                self.now = o.t;
            }
            if let Some(di) = di {
                self.observe_device(o, di, out);
            }
        }
        self.batch_scratch = found;
    }

    /// Runs `f` on transit `ti` with what its handlers need around it.
    fn on_transit(
        &mut self,
        ti: u32,
        out: &mut Vec<Output>,
        f: impl FnOnce(&mut TransitRt, &mut Cx<'_>),
    ) {
        let mut cx = Cx {
            world: &self.world,
            timers: &mut self.timers,
            out,
            now: self.now,
            ti,
        };
        f(&mut self.transits[ti as usize], &mut cx);
    }

    fn fire_due(&mut self, t: Timestamp, phase: u8, out: &mut Vec<Output>) {
        while let Some(timer) = self.timers.pop_due(t, phase) {
            if timer.at > self.now {
                self.now = timer.at;
            }
            self.on_transit(timer.transit, out, |t, cx| {
                t.on_timer(timer.kind, timer.generation, cx)
            });
            if timer.kind == TimerKind::Seal {
                self.after_seal(timer.transit, out);
            }
        }
    }

    fn observe(&mut self, obs: &Observation, out: &mut Vec<Output>) {
        let Some(&di) = self.device_ids.get(obs.device.as_str()) else {
            // A device on no declared transit: nothing to supervise.
            return;
        };
        self.observe_device(obs, di, out);
    }

    fn observe_device(&mut self, obs: &Observation, di: u32, out: &mut Vec<Output>) {
        let dev = &mut self.devices[di as usize];
        let active = active_transit(&self.transits, dev);
        let reading = obs.reading();
        let digest = reading.content_digest();

        let mut suspect = None;
        match (reading.seq, reading.seq.and_then(|seq| dev.seq_seen(seq))) {
            (Some(_), Some((d, _))) if d == digest => return, // an exact duplicate
            (Some(seq), Some((_, earlier_t))) => {
                let mut earlier = model::Reading::empty(earlier_t);
                earlier.seq = Some(seq);
                suspect = Some(Suspect {
                    detail: format!(
                        "sequence number {seq} reported again with different content (first at {earlier_t})"
                    ),
                    earlier: Some(earlier),
                });
            }
            (None, _) if dev.last_t == Some(reading.t) && dev.last_digest == digest => {
                return; // an exact duplicate without a sequence number
            }
            _ => {}
        }

        let late = dev.last_t.is_some_and(|last| reading.t < last);
        // One local frame per report: every distance below is measured from this position.
        let frame = reading
            .fix_position()
            .map(|p| LocalFrame::at([p.lon, p.lat]));
        if !late {
            if let (Some(frame), Some(ti)) = (&frame, active)
                && suspect.is_none()
            {
                let rules = self.transits[ti as usize].rules();
                suspect = dev.judge_fix(frame, &reading, rules);
            }
            if suspect.is_none() {
                if let Some(seq) = reading.seq {
                    dev.remember_seq(seq, digest, reading.t);
                }
                if let Some(frame) = &frame {
                    dev.last_fix =
                        Some((reading.t, frame.origin(), reading.accuracy_m.unwrap_or(0.0)));
                }
            }
            dev.last_t = Some(reading.t);
            dev.last_digest = digest;
        } else if suspect.is_none()
            && let Some(seq) = reading.seq
        {
            dev.remember_seq(seq, digest, reading.t);
        }

        let Some(ti) = active else { return };
        self.on_transit(ti, out, |t, cx| {
            let slot = t.slot_of(obs.device.as_str());
            t.on_observation(slot, &reading, frame.as_ref(), late, suspect, cx)
        });
    }

    /// Once transit `ti` is sealed, earlier transits on the same device stop taking its reports.
    fn after_seal(&mut self, ti: u32, out: &mut Vec<Output>) {
        let sealed = &self.transits[ti as usize];
        let Some(at) = sealed.sealed_at() else {
            return;
        };
        let successor = sealed.id().clone();
        let mut others: Vec<u32> = Vec::new();
        for device in sealed.devices() {
            if let Some(&di) = self.device_ids.get(device.as_str()) {
                for o in self.devices[di as usize].transits() {
                    if o != ti && !others.contains(&o) {
                        others.push(o);
                    }
                }
            }
        }
        for o in others {
            let other = &self.transits[o as usize];
            if other.takes_reports() && other.sealed_at().is_some_and(|s| s < at) {
                self.on_transit(o, out, |t, cx| t.detach(cx, &successor));
            }
        }
    }

    /// Pairs another device with a transit not yet sealed: the declared device's reports no
    /// longer count for it, the new one's do.
    fn pair(&mut self, ti: u32, device: &model::DeviceId, out: &mut Vec<Output>) {
        let old = self.transits[ti as usize].device().clone();
        if let Some(&di) = self.device_ids.get(old.as_str()) {
            self.devices[di as usize].release(ti);
        }
        let next = self.devices.len() as u32;
        let di = *self.device_ids.entry(device.clone()).or_insert(next);
        if di == next {
            self.devices.push(DeviceRt {
                latest: ti,
                ..DeviceRt::default()
            });
        } else {
            self.devices[di as usize].take(ti);
        }
        self.on_transit(ti, out, |t, cx| t.pair(device, &old, cx));
    }

    fn read(&mut self, read: &CheckpointRead, out: &mut Vec<Output>) {
        let Some(&di) = self.device_ids.get(read.device.as_str()) else {
            return;
        };
        if read.gate == Some(model::Gate::Departure)
            && let Some(ti) = self.declared_transit(di)
        {
            let mut sealed = false;
            self.on_transit(ti, out, |t, cx| {
                let slot = t.slot_of(read.device.as_str());
                sealed = t.gate_seal(slot, read, cx);
            });
            if sealed {
                self.after_seal(ti, out);
            }
        }
        let Some(ti) = active_transit(&self.transits, &self.devices[di as usize]) else {
            return;
        };
        self.on_transit(ti, out, |t, cx| {
            let slot = t.slot_of(read.device.as_str());
            t.on_read(slot, read, cx);
        });
    }

    /// The transit a departure gate seals when it reads device `di`: of the device's transits
    /// still declared, the one with the smallest id (so the order of declaration never
    /// matters).
    fn declared_transit(&self, di: u32) -> Option<u32> {
        self.devices[di as usize]
            .transits()
            .filter(|&ti| self.transits[ti as usize].state() == model::TransitState::Declared)
            .min_by(|&a, &b| {
                self.transits[a as usize]
                    .id()
                    .cmp(self.transits[b as usize].id())
            })
    }

    fn act(&mut self, action: &Action, out: &mut Vec<Output>) {
        let Some(&ti) = self.transit_ids.get(action.transit.as_str()) else {
            return;
        };
        if let (model::ActionKind::Pair, Some(device)) = (action.action, &action.device)
            && self.transits[ti as usize].state() == model::TransitState::Declared
            && self.transits[ti as usize].devices().all(|d| d != device)
        {
            self.pair(ti, device, out);
            return;
        }
        let before = self.transits[ti as usize].state();
        self.on_transit(ti, out, |t, cx| t.on_action(action, cx));
        if before == model::TransitState::Declared
            && self.transits[ti as usize].state() == model::TransitState::Sealed
        {
            self.after_seal(ti, out);
        }
    }
}
