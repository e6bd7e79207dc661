//! Scenario files: a journey in, alarms out.
//!
//! The format is a contract (docs/scenario.md, with its JSON Schema in
//! docs/scenario.schema.json): `sealwatch replay`, the scenario corpus and checks outside the
//! project depend on it. [`parse`] reads and validates a scenario and names the path of the
//! first error; [`replay`] runs it through the supervisor.
//!
//! Replay is deterministic and does not depend on the order of the input arrays: inputs are
//! ordered by time, then by a canonical key, so observations that arrive out of order by a few
//! minutes, or twice, give the same alarms.

use std::cmp::Ordering;
use std::fmt;

use model::{
    Action, ActionKind, CheckpointRead, Geometry, Observation, Timestamp, Transit, Zone, ZoneKind,
};
use serde::{Deserialize, Serialize};
use supervisor::{Input, Output, Supervisor};

/// A scenario: zones, transits, and what happened to them until `until`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    #[serde(default)]
    pub name: String,
    /// What the scenario shows (free text; not part of the replay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub zones: Vec<Zone>,
    pub transits: Vec<Transit>,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub reads: Vec<CheckpointRead>,
    #[serde(default)]
    pub observations: Vec<Observation>,
    /// The replay runs its clock to here, so timers fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

/// What is wrong with a scenario, and where (`transits[0].route`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() || self.path == "." {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for Invalid {}

fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        path: path.into(),
        reason: reason.into(),
    }
}

/// The most devices one transit may have (`device` and up to 254 in `devices`).
pub const MAX_DEVICES: usize = 255;

/// Fields the format knows, per part. Anything else is ignored (the contract lets writers add
/// optional fields) but reported by [`unknown_fields`], since a misspelt `sealed_at` would
/// otherwise silently leave a transit unsupervised.
const KNOWN_TOP: &[&str] = &[
    "name",
    "description",
    "zones",
    "transits",
    "actions",
    "reads",
    "observations",
    "until",
];
const KNOWN_ZONE: &[&str] = &["id", "kind", "area", "radius_m", "name"];
const KNOWN_TRANSIT: &[&str] = &[
    "id",
    "device",
    "device_kind",
    "mode",
    "departure",
    "destination",
    "route",
    "corridor_m",
    "sealed_at",
    "deadline",
    "max_duration",
    "stop_zones",
    "unseal_zones",
    "rules",
    "device_data",
    "devices",
    "checkpoints",
    "legs",
    "vehicle",
    "cargo",
    "driver",
    "declaration",
    "inspection",
    "offices",
];
const KNOWN_ACTION: &[&str] = &["t", "transit", "action", "deadline", "device", "reason"];
const KNOWN_READ: &[&str] = &["t", "reader", "zone", "device", "intact", "data", "gate"];
const KNOWN_OBSERVATION: &[&str] = &[
    "device",
    "t",
    "lat",
    "lon",
    "fix",
    "accuracy_m",
    "speed_kmh",
    "course_deg",
    "lock",
    "rope",
    "housing",
    "door",
    "battery_pct",
    "charging",
    "temperature_c",
    "humidity_pct",
    "shock_g",
    "light_lux",
    "pressure_hpa",
    "fuel_pct",
    "events",
    "seq",
];

/// The paths of fields this version does not know (`transits[0].deadlin`), in file order.
/// Not errors: warnings for the person who wrote the file.
pub fn unknown_fields(text: &str) -> Vec<String> {
    let Ok(serde_json::Value::Object(top)) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut check =
        |path: &str, obj: &serde_json::Map<String, serde_json::Value>, known: &[&str]| {
            for key in obj.keys() {
                if !known.contains(&key.as_str()) {
                    found.push(if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    });
                }
            }
        };
    check("", &top, KNOWN_TOP);
    for (part, known) in [
        ("zones", KNOWN_ZONE),
        ("transits", KNOWN_TRANSIT),
        ("actions", KNOWN_ACTION),
        ("reads", KNOWN_READ),
        ("observations", KNOWN_OBSERVATION),
    ] {
        if let Some(serde_json::Value::Array(items)) = top.get(part) {
            for (i, item) in items.iter().enumerate() {
                if let serde_json::Value::Object(obj) = item {
                    check(&format!("{part}[{i}]"), obj, known);
                }
            }
        }
    }
    found
}

/// Reads and validates a scenario.
pub fn parse(text: &str) -> Result<Scenario, Invalid> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde_json appends " at line L column C"; keep it, it helps find the spot.
        invalid(
            if path == "." { String::new() } else { path },
            inner.to_string(),
        )
    })?;
    validate(&scenario)?;
    Ok(scenario)
}

/// Checks what the types cannot: references between parts, shapes, ranges.
pub fn validate(s: &Scenario) -> Result<(), Invalid> {
    let mut zone_ids = std::collections::HashSet::new();
    let kinds: std::collections::HashMap<&str, ZoneKind> =
        s.zones.iter().map(|z| (z.id.as_str(), z.kind)).collect();
    for (i, z) in s.zones.iter().enumerate() {
        z.validate()
            .map_err(|(field, reason)| invalid(format!("zones[{i}].{field}"), reason))?;
        if !zone_ids.insert(z.id.as_str()) {
            return Err(invalid(
                format!("zones[{i}].id"),
                format!("zone {:?} is declared twice", z.id.as_str()),
            ));
        }
    }
    let zone = |path: String, id: &model::ZoneId| {
        if zone_ids.contains(id.as_str()) {
            Ok(())
        } else {
            Err(invalid(path, format!("unknown zone {:?}", id.as_str())))
        }
    };
    let mut transit_ids = std::collections::HashSet::new();
    for (i, t) in s.transits.iter().enumerate() {
        let at = |field: &str| format!("transits[{i}].{field}");
        if !transit_ids.insert(t.id.as_str()) {
            return Err(invalid(
                at("id"),
                format!("transit {:?} is declared twice", t.id.as_str()),
            ));
        }
        // Several devices: each seals the transit once.
        if t.devices.len() >= MAX_DEVICES {
            return Err(invalid(
                at("devices"),
                format!(
                    "{} devices; a transit has at most {MAX_DEVICES}",
                    t.devices.len() + 1
                ),
            ));
        }
        for (j, d) in t.devices.iter().enumerate() {
            if d.id == t.device {
                return Err(invalid(
                    at(&format!("devices[{j}].id")),
                    format!("device {:?} is the transit's device already", d.id.as_str()),
                ));
            }
            if let Some(k) = t.devices[..j].iter().position(|o| o.id == d.id) {
                return Err(invalid(
                    at(&format!("devices[{j}].id")),
                    format!(
                        "device {:?} is listed twice (also devices[{k}])",
                        d.id.as_str()
                    ),
                ));
            }
        }
        match &t.route {
            None => {}
            Some(Geometry::LineString(ps)) if ps.len() >= 2 => {
                Geometry::LineString(ps.clone())
                    .validate()
                    .map_err(|e| invalid(at("route"), e.0))?;
            }
            Some(_) => {
                return Err(invalid(
                    at("route"),
                    "expected a LineString with at least 2 positions",
                ));
            }
        }
        if let Some(d) = &t.departure {
            zone(at("departure"), d)?;
        }
        if let Some(d) = &t.destination {
            zone(at("destination"), d)?;
        }
        for (j, z) in t.stop_zones.iter().enumerate() {
            zone(at(&format!("stop_zones[{j}]")), z)?;
        }
        for (j, z) in t.unseal_zones.iter().enumerate() {
            zone(at(&format!("unseal_zones[{j}]")), z)?;
        }
        for (j, c) in t.checkpoints.iter().enumerate() {
            let at = |field: &str| at(&format!("checkpoints[{j}].{field}"));
            zone(at("zone"), &c.zone)?;
            let kind = kinds[c.zone.as_str()];
            if !matches!(
                kind,
                ZoneKind::Checkpoint | ZoneKind::Border | ZoneKind::Office
            ) {
                return Err(invalid(
                    at("zone"),
                    format!(
                        "zone {} is a {}; a checkpoint is a checkpoint, border or office zone",
                        c.zone,
                        serde_json::to_value(kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    ),
                ));
            }
            match (c.by, c.within) {
                (Some(_), Some(_)) => {
                    return Err(invalid(at("within"), "give either by or within, not both"));
                }
                (None, None) => {
                    return Err(invalid(at("by"), "required (or within)"));
                }
                (Some(by), None) => {
                    if let Some(sealed) = t.sealed_at
                        && by <= sealed
                    {
                        return Err(invalid(
                            at("by"),
                            format!("{by} is not after sealed_at {sealed}"),
                        ));
                    }
                }
                (None, Some(d)) => {
                    if d.as_ms() <= 0 {
                        return Err(invalid(at("within"), "must be longer than zero"));
                    }
                }
            }
        }
        for (j, leg) in t.legs.iter().enumerate() {
            let at = |field: &str| at(&format!("legs[{j}].{field}"));
            zone(at("from"), &leg.from)?;
            zone(at("to"), &leg.to)?;
            // The legs are the journey: they start at its departure and end at its destination.
            if j == 0
                && let Some(d) = &t.departure
                && *d != leg.from
            {
                return Err(invalid(
                    at("from"),
                    format!("expected {d}, the transit's departure"),
                ));
            }
            if j + 1 == t.legs.len()
                && let Some(d) = &t.destination
                && *d != leg.to
            {
                return Err(invalid(
                    at("to"),
                    format!("expected {d}, the transit's destination"),
                ));
            }
            if leg.from == leg.to {
                return Err(invalid(at("to"), "a leg ends where it starts"));
            }
            if j > 0 && t.legs[j - 1].to != leg.from {
                return Err(invalid(
                    at("from"),
                    format!("expected {}, where legs[{}] ends", t.legs[j - 1].to, j - 1),
                ));
            }
            match &leg.route {
                None => {}
                Some(Geometry::LineString(ps)) if ps.len() >= 2 => {
                    Geometry::LineString(ps.clone())
                        .validate()
                        .map_err(|e| invalid(at("route"), e.0))?;
                }
                Some(_) => {
                    return Err(invalid(
                        at("route"),
                        "expected a LineString with at least 2 positions",
                    ));
                }
            }
            if let Some(rules) = &leg.rules {
                rules
                    .validate()
                    .map_err(|(rule, reason)| invalid(at(&format!("rules.{rule}")), reason))?;
            }
        }
        if let Some(c) = t.corridor_m
            && !(c > 0.0 && c.is_finite())
        {
            return Err(invalid(
                at("corridor_m"),
                "must be a positive number of metres",
            ));
        }
        t.rules
            .validate()
            .map_err(|(rule, reason)| invalid(at(&format!("rules.{rule}")), reason))?;
        if let (Some(sealed), Some(deadline)) = (t.sealed_at, t.deadline)
            && deadline <= sealed
        {
            return Err(invalid(
                at("deadline"),
                format!("{deadline} is not after sealed_at {sealed}"),
            ));
        }
        if let Some(d) = t.max_duration
            && d.as_ms() <= 0
        {
            return Err(invalid(at("max_duration"), "must be longer than zero"));
        }
    }
    // One device seals one thing at a time: two transits sealed with it at the same instant
    // leave no way to tell which one its reports are for.
    let mut sealings = std::collections::HashMap::new();
    for (i, t) in s.transits.iter().enumerate() {
        // Sealed at `sealed_at`, or by its first `seal` action.
        let seal_action = s
            .actions
            .iter()
            .filter(|a| a.transit == t.id && a.action == ActionKind::Seal)
            .map(|a| a.t)
            .min();
        let Some(at) = t.sealed_at.or(seal_action) else {
            continue;
        };
        for device in t.all_devices() {
            if let Some(j) = sealings.insert((device.as_str(), at), i) {
                return Err(invalid(
                    format!("transits[{i}].sealed_at"),
                    format!(
                        "device {} is also sealed onto transits[{j}] at {at}",
                        device.as_str()
                    ),
                ));
            }
        }
    }
    for (i, a) in s.actions.iter().enumerate() {
        if !transit_ids.contains(a.transit.as_str()) {
            return Err(invalid(
                format!("actions[{i}].transit"),
                format!("unknown transit {:?}", a.transit.as_str()),
            ));
        }
        if a.action == ActionKind::ExtendDeadline && a.deadline.is_none() {
            return Err(invalid(
                format!("actions[{i}].deadline"),
                "required for extend_deadline",
            ));
        }
        if a.action == ActionKind::Pair && a.device.is_none() {
            return Err(invalid(format!("actions[{i}].device"), "required for pair"));
        }
        if a.action == ActionKind::Pair
            && let Some(device) = &a.device
            && let Some(t) = s.transits.iter().find(|t| t.id == a.transit)
            && t.devices.iter().any(|d| d.id == *device)
        {
            return Err(invalid(
                format!("actions[{i}].device"),
                format!(
                    "device {:?} already seals transit {} (in its devices)",
                    device.as_str(),
                    t.id
                ),
            ));
        }
    }
    for (i, r) in s.reads.iter().enumerate() {
        zone(format!("reads[{i}].zone"), &r.zone)?;
    }
    for (i, o) in s.observations.iter().enumerate() {
        o.validate()
            .map_err(|e| invalid(format!("observations[{i}].{}", e.field), e.reason))?;
    }
    Ok(())
}

/// One input of a scenario, for ordering.
enum Item<'a> {
    Action(&'a Action),
    Read(&'a CheckpointRead),
    Observation(&'a Observation, u64),
}

impl Item<'_> {
    fn t(&self) -> Timestamp {
        match self {
            Item::Action(a) => a.t,
            Item::Read(r) => r.t,
            Item::Observation(o, _) => o.t,
        }
    }

    /// At the same instant an officer's action comes first (an unseal authorised at 13:10
    /// covers a lock opened at 13:10), then reads, then device reports.
    fn class(&self) -> u8 {
        match self {
            Item::Action(_) => 0,
            Item::Read(_) => 1,
            Item::Observation(..) => 2,
        }
    }

    /// A total order that does not depend on where the item stood in the file.
    fn cmp_canonical(&self, other: &Item<'_>) -> Ordering {
        (self.t(), self.class())
            .cmp(&(other.t(), other.class()))
            .then_with(|| match (self, other) {
                (Item::Observation(a, da), Item::Observation(b, db)) => {
                    (a.device.as_str(), a.seq, *da).cmp(&(b.device.as_str(), b.seq, *db))
                }
                (Item::Read(a), Item::Read(b)) => {
                    (a.device.as_str(), a.reader.as_str(), a.zone.as_str())
                        .cmp(&(b.device.as_str(), b.reader.as_str(), b.zone.as_str()))
                        .then_with(|| json(a).cmp(&json(b)))
                }
                (Item::Action(a), Item::Action(b)) => (a.transit.as_str(), a.action.as_str())
                    .cmp(&(b.transit.as_str(), b.action.as_str()))
                    .then_with(|| json(a).cmp(&json(b))),
                _ => Ordering::Equal,
            })
    }
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The scenario's actions, reads and observations in the order the replay gives them to the
/// supervisor: by time, then canonically (see the crate documentation).
pub fn ordered_inputs(s: &Scenario) -> Vec<Input<'_>> {
    let mut items: Vec<Item<'_>> =
        Vec::with_capacity(s.actions.len() + s.reads.len() + s.observations.len());
    items.extend(s.actions.iter().map(Item::Action));
    items.extend(s.reads.iter().map(Item::Read));
    items.extend(
        s.observations
            .iter()
            .map(|o| Item::Observation(o, o.reading().content_digest())),
    );
    items.sort_by(|a, b| a.cmp_canonical(b));
    items
        .into_iter()
        .map(|item| match item {
            Item::Action(a) => Input::Action(a),
            Item::Read(r) => Input::Read(r),
            Item::Observation(o, _) => Input::Observation(o),
        })
        .collect()
}

/// Runs a validated scenario and returns every alarm and event, in time order.
pub fn replay(s: &Scenario) -> Result<Vec<Output>, Invalid> {
    let mut sup = Supervisor::new(&s.zones).map_err(|e| invalid(e.path, e.reason))?;
    for t in &s.transits {
        sup.declare(t).map_err(|e| invalid(e.path, e.reason))?;
    }
    let mut out = Vec::new();
    for input in ordered_inputs(s) {
        sup.handle(input, &mut out);
    }
    if let Some(until) = s.until {
        sup.handle(Input::Tick(until), &mut out);
    }
    // Already in time order; the stable sort only guards the contract.
    out.sort_by_key(Output::t);
    Ok(out)
}

/// The replay's output lines: alarms, and events too when `events` is set.
pub fn replay_lines(s: &Scenario, events: bool) -> Result<Vec<String>, Invalid> {
    Ok(replay(s)?
        .iter()
        .filter_map(|o| match o {
            Output::Alarm(a) => Some(json(a)),
            Output::Event(e) if events => Some(json(e)),
            Output::Event(_) => None,
        })
        .collect())
}
