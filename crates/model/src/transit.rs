//! Transits: one supervised movement of goods, with all its supervision information (§8 of the
//! WCO report), its rules, and its lifecycle.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::{
    AlarmKind, ContainerNumber, DeclarationNumber, DeviceId, DeviceKind, Duration, Geometry,
    LicencePlate, Timestamp, TrainNumber, TransitId, ZoneId,
};

/// Personal data (§9.7): serialised as the value itself, but never printed by `Debug`, so it
/// cannot leak into logs. Who may see it is decided by the API layer's roles.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Personal<T>(pub T);

impl<T> fmt::Debug for Personal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<personal data>")
    }
}

/// How the goods travel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Road,
    Rail,
    Multimodal,
}

/// How one leg of a multimodal transit travels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegMode {
    #[default]
    Road,
    Rail,
    Sea,
    Air,
}

impl LegMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LegMode::Road => "road",
            LegMode::Rail => "rail",
            LegMode::Sea => "sea",
            LegMode::Air => "air",
        }
    }
}

/// One leg of a transit declared in legs (rail from the inland terminal to the port, then
/// sea...). The transit is on a leg from arriving at its `from` zone (the first leg: from
/// sealing) until arriving at its `to` zone.
/// Unknown fields are refused: a misspelt `route` would otherwise silently leave a leg without
/// its corridor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leg {
    #[serde(default)]
    pub mode: LegMode,
    pub from: ZoneId,
    pub to: ZoneId,
    /// The leg's route; corridor supervision on this leg uses it (see docs/alarms.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Geometry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<TrainNumber>,
    /// The vessel's name or IMO number (free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vessel: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerNumber>,
    /// Rules for this leg only, over the transit's (a wider corridor and a longer
    /// communication loss for rail, say). Only the rules named here change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Rules>,
}

/// A checkpoint the transit must pass: a read of its device at the zone (or, for a real-time
/// device, a position fix inside it), by a time.
/// Unknown fields are refused, as for legs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub zone: ZoneId,
    /// The time by which it must be passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Timestamp>,
    /// Or: how long after sealing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Duration>,
}

impl Checkpoint {
    /// When it must be passed by, for a transit sealed at `sealed_at`.
    pub fn due(&self, sealed_at: Timestamp) -> Option<Timestamp> {
        self.by.or_else(|| self.within.map(|d| sealed_at.plus(d)))
    }
}

/// A further device sealing the same transit (`Transit::devices`): another container of a
/// train, each with its own e-lock. Its seal is supervised on its own; the journey is shared.
/// Unknown fields are refused, as for legs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitDevice {
    pub id: DeviceId,
    /// The container this device seals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerNumber>,
    /// What was written to this device at departure, checked on every read of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_data: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The vehicle (or wagon) carrying the goods.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vehicle {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<LicencePlate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_kg: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<TrainNumber>,
}

/// One line of the cargo.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CargoLine {
    /// What the goods are (free text or an HS code description).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hs_code: Option<String>,
    pub quantity: f64,
    /// Unit of `quantity` (UN/ECE Recommendation 20 codes such as `KGM`, `PCE`, or plain words).
    pub unit: String,
    /// Country of origin (ISO 3166-1 alpha-2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consignor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consignee: Option<String>,
}

/// The driver. Name and contact are personal data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    /// ISO 3166-1 alpha-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nationality: Option<String>,
    pub name: Personal<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Personal<String>>,
}

/// A document attached to the declaration (invoice, packing list, permit...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub kind: String,
    pub reference: String,
}

/// The customs declaration behind the transit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Declaration {
    pub number: DeclarationNumber,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<Document>,
    /// The organisation (its id in sealwatch) that carries the goods: its users and tokens
    /// see this transit, and no other organisation's (docs/security.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// The forwarder's organisation id, scoped like `carrier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarder: Option<String>,
    /// The consignor's organisation id, scoped like `carrier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consignor: Option<String>,
}

/// An inspection done before departure (physical or non-intrusive).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// References to non-intrusive-inspection images (ids in an image store, not the images).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
}

/// Customs offices (reference numbers such as `CN2901` or `BY06101`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Offices {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departure: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transit: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

/// A lower and upper limit for a sensor; either may be absent. Written `[min, max]` (with `null`
/// for an open end) or as a single number meaning the maximum.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Limits {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Limits {
    pub fn contains(&self, v: f64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }
    /// Inside with a margin: what "back to normal" means, so that a reading hovering at the
    /// limit raises one alarm. The margin is `fraction` of the range (of the bound itself with
    /// one bound), and at least `hysteresis`; `floor` is the lowest value the sensor can read
    /// (0 for light, shock, humidity, pressure), so a limit of 0 lux clears at 0.
    pub fn contains_with_margin(
        &self,
        v: f64,
        fraction: f64,
        hysteresis: f64,
        floor: Option<f64>,
    ) -> bool {
        let margin = match (self.min, self.max) {
            (Some(a), Some(b)) => (b - a).abs() * fraction,
            (Some(a), None) | (None, Some(a)) => a.abs() * fraction,
            (None, None) => return true,
        }
        .max(hysteresis);
        let floor = floor.unwrap_or(f64::NEG_INFINITY);
        self.min.is_none_or(|lo| v >= lo + margin)
            && self.max.is_none_or(|hi| v <= (hi - margin).max(floor))
    }
}

impl Serialize for Limits {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        [self.min, self.max].serialize(s)
    }
}

impl<'de> Deserialize<'de> for Limits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Limits, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Max(f64),
            Pair([Option<f64>; 2]),
        }
        let limits = match Raw::deserialize(d).map_err(|_| {
            de::Error::custom("expected [min, max] (either may be null) or a single maximum")
        })? {
            Raw::Max(max) => Limits {
                min: None,
                max: Some(max),
            },
            Raw::Pair([min, max]) => Limits { min, max },
        };
        if let (Some(a), Some(b)) = (limits.min, limits.max)
            && a > b
        {
            return Err(de::Error::custom(format!("min {a} is above max {b}")));
        }
        Ok(limits)
    }
}

/// Per-transit overrides of the supervision rules. Every field is optional; [`Rules::resolve`]
/// fills in the documented defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corridor_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deviation_grace: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_radius_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_min: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stop_outside: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stop_inside: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm_loss_after: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_battery_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jamming_gap: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_speed_kmh: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_fix_after: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_speed_kmh: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_min_distance_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_drop_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_drop_window: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_clear_after: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<Limits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub humidity_pct: Option<Limits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shock_g: Option<Limits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub light_lux: Option<Limits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pressure_hpa: Option<Limits>,
    /// Quick mode: the highest grade of alarm raised on the transit that still lets an arrival
    /// gate authorise the unseal automatically (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick_unseal_max_grade: Option<u8>,
    /// Grade overrides per alarm kind (1 to 4).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "grades"
    )]
    pub grades: BTreeMap<AlarmKind, u8>,
}

/// Reads `grades` naming the alarm kind that is not one (a map key has no path of its own).
fn grades<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<AlarmKind, u8>, D::Error> {
    let raw = BTreeMap::<String, u8>::deserialize(d)?;
    raw.into_iter()
        .map(|(name, grade)| {
            let kind = AlarmKind::ALL
                .into_iter()
                .find(|k| k.as_str() == name)
                .ok_or_else(|| {
                    de::Error::custom(format!(
                        "unknown alarm kind {name:?}; expected one of {}",
                        AlarmKind::ALL.map(AlarmKind::as_str).join(", ")
                    ))
                })?;
            Ok((kind, grade))
        })
        .collect()
}

/// The environment sensors a transit may declare limits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sensor {
    TemperatureC,
    HumidityPct,
    ShockG,
    LightLux,
    PressureHpa,
}

impl Sensor {
    pub const ALL: [Sensor; 5] = [
        Sensor::TemperatureC,
        Sensor::HumidityPct,
        Sensor::ShockG,
        Sensor::LightLux,
        Sensor::PressureHpa,
    ];

    /// The observation field (and rule) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Sensor::TemperatureC => "temperature_c",
            Sensor::HumidityPct => "humidity_pct",
            Sensor::ShockG => "shock_g",
            Sensor::LightLux => "light_lux",
            Sensor::PressureHpa => "pressure_hpa",
        }
    }

    /// How an officer reads it.
    pub fn label(self) -> &'static str {
        match self {
            Sensor::TemperatureC => "temperature",
            Sensor::HumidityPct => "humidity",
            Sensor::ShockG => "shock",
            Sensor::LightLux => "light",
            Sensor::PressureHpa => "pressure",
        }
    }

    /// The smallest change that is more than a sensor's noise: the least an alarm's reading
    /// must come back inside its limits by before the alarm clears.
    pub fn hysteresis(self) -> f64 {
        match self {
            Sensor::TemperatureC => 0.5,
            Sensor::HumidityPct => 2.0,
            Sensor::ShockG => 0.2,
            Sensor::LightLux => 5.0,
            Sensor::PressureHpa => 2.0,
        }
    }

    /// The lowest value the sensor can read, if there is one.
    pub fn floor(self) -> Option<f64> {
        match self {
            Sensor::TemperatureC => None,
            _ => Some(0.0),
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Sensor::TemperatureC => "°C",
            Sensor::HumidityPct => "%",
            Sensor::ShockG => "g",
            Sensor::LightLux => "lx",
            Sensor::PressureHpa => "hPa",
        }
    }
}

/// The rules in force for one transit, defaults filled in. See the table in docs/scenario.md.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSet {
    pub corridor_m: f64,
    pub deviation_grace: Duration,
    pub stop_radius_m: f64,
    pub stop_min: Duration,
    pub max_stop_outside: Duration,
    pub max_stop_inside: Duration,
    pub comm_loss_after: Duration,
    pub low_battery_pct: f64,
    pub jamming_gap: Duration,
    pub max_speed_kmh: f64,
    pub no_fix_after: Duration,
    pub clone_speed_kmh: f64,
    pub clone_min_distance_m: f64,
    pub fuel_drop_pct: f64,
    pub fuel_drop_window: Duration,
    pub event_clear_after: Duration,
    /// Indexed like [`Sensor::ALL`].
    pub environment: [Option<Limits>; 5],
    pub quick_unseal_max_grade: u8,
    pub grades: BTreeMap<AlarmKind, u8>,
}

impl RuleSet {
    pub fn grade(&self, kind: AlarmKind) -> u8 {
        self.grades
            .get(&kind)
            .copied()
            .unwrap_or_else(|| kind.default_grade())
    }
}

impl Rules {
    /// The documented defaults, overridden by what this transit declares. `corridor_m` given on
    /// the transit itself (as in the contract's example) wins over the rule.
    pub fn resolve(&self, transit_corridor_m: Option<f64>) -> RuleSet {
        let comm_loss_after = self.comm_loss_after.unwrap_or_else(|| {
            self.report_interval
                .map_or(Duration::from_hours(4), |i| i.saturating_mul(2))
        });
        RuleSet {
            corridor_m: transit_corridor_m.or(self.corridor_m).unwrap_or(1000.0),
            deviation_grace: self.deviation_grace.unwrap_or(Duration::from_mins(2)),
            stop_radius_m: self.stop_radius_m.unwrap_or(150.0),
            stop_min: self.stop_min.unwrap_or(Duration::from_mins(3)),
            max_stop_outside: self.max_stop_outside.unwrap_or(Duration::from_mins(15)),
            max_stop_inside: self.max_stop_inside.unwrap_or(Duration::from_hours(2)),
            comm_loss_after,
            low_battery_pct: self.low_battery_pct.unwrap_or(15.0),
            jamming_gap: self.jamming_gap.unwrap_or(Duration::from_mins(10)),
            max_speed_kmh: self.max_speed_kmh.unwrap_or(150.0),
            no_fix_after: self.no_fix_after.unwrap_or(Duration::from_mins(10)),
            clone_speed_kmh: self.clone_speed_kmh.unwrap_or(1000.0),
            clone_min_distance_m: self.clone_min_distance_m.unwrap_or(20_000.0),
            fuel_drop_pct: self.fuel_drop_pct.unwrap_or(5.0),
            fuel_drop_window: self.fuel_drop_window.unwrap_or(Duration::from_mins(30)),
            event_clear_after: self.event_clear_after.unwrap_or(Duration::from_mins(10)),
            environment: [
                self.temperature_c,
                self.humidity_pct,
                self.shock_g,
                self.light_lux,
                self.pressure_hpa,
            ],
            quick_unseal_max_grade: self.quick_unseal_max_grade.unwrap_or(2),
            grades: self.grades.clone(),
        }
    }

    /// These rules with `over`'s declared ones on top: a leg's rules over its transit's.
    pub fn overlaid(&self, over: &Rules) -> Rules {
        macro_rules! pick {
            ($($f:ident),*) => {
                Rules { $($f: over.$f.or(self.$f),)* grades: {
                    let mut g = self.grades.clone();
                    g.extend(over.grades.iter().map(|(k, v)| (*k, *v)));
                    g
                } }
            };
        }
        pick!(
            corridor_m,
            deviation_grace,
            stop_radius_m,
            stop_min,
            max_stop_outside,
            max_stop_inside,
            comm_loss_after,
            report_interval,
            low_battery_pct,
            jamming_gap,
            max_speed_kmh,
            no_fix_after,
            clone_speed_kmh,
            clone_min_distance_m,
            fuel_drop_pct,
            fuel_drop_window,
            event_clear_after,
            temperature_c,
            humidity_pct,
            shock_g,
            light_lux,
            pressure_hpa,
            quick_unseal_max_grade
        )
    }

    /// Checks values serde cannot: positive distances and durations, grades 1 to 4.
    /// Returns the rule's name and what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let positive_m = [
            ("corridor_m", self.corridor_m),
            ("stop_radius_m", self.stop_radius_m),
            ("max_speed_kmh", self.max_speed_kmh),
            ("clone_speed_kmh", self.clone_speed_kmh),
            ("clone_min_distance_m", self.clone_min_distance_m),
            ("fuel_drop_pct", self.fuel_drop_pct),
        ];
        for (name, v) in positive_m {
            if let Some(v) = v
                && !(v > 0.0 && v.is_finite())
            {
                return Err((name, "must be a positive number".into()));
            }
        }
        if let Some(v) = self.low_battery_pct
            && !(0.0..=100.0).contains(&v)
        {
            return Err(("low_battery_pct", "must be between 0 and 100".into()));
        }
        let durations = [
            ("deviation_grace", self.deviation_grace),
            ("stop_min", self.stop_min),
            ("max_stop_outside", self.max_stop_outside),
            ("max_stop_inside", self.max_stop_inside),
            ("comm_loss_after", self.comm_loss_after),
            ("report_interval", self.report_interval),
            ("jamming_gap", self.jamming_gap),
            ("no_fix_after", self.no_fix_after),
            ("fuel_drop_window", self.fuel_drop_window),
            ("event_clear_after", self.event_clear_after),
        ];
        for (name, d) in durations {
            if let Some(d) = d
                && d.as_ms() <= 0
            {
                return Err((name, "must be longer than zero".into()));
            }
        }
        if let Some(g) = self.quick_unseal_max_grade
            && g > 4
        {
            return Err((
                "quick_unseal_max_grade",
                format!(
                    "{g} is not a grade; grades are 1 to 4, or 0 to let any alarm hold the unseal"
                ),
            ));
        }
        if let Some((kind, g)) = self.grades.iter().find(|(_, g)| !(1..=4).contains(*g)) {
            return Err((
                "grades",
                format!("{} has grade {g}; grades are 1 to 4", kind.as_str()),
            ));
        }
        Ok(())
    }
}

/// Where a transit is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitState {
    Declared,
    Sealed,
    InTransit,
    Arrived,
    Released,
    Inspection,
    Unsealed,
    Closed,
}

impl TransitState {
    /// Every state, in lifecycle order.
    pub const ALL: [TransitState; 8] = [
        TransitState::Declared,
        TransitState::Sealed,
        TransitState::InTransit,
        TransitState::Arrived,
        TransitState::Released,
        TransitState::Inspection,
        TransitState::Unsealed,
        TransitState::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransitState::Declared => "declared",
            TransitState::Sealed => "sealed",
            TransitState::InTransit => "in_transit",
            TransitState::Arrived => "arrived",
            TransitState::Released => "released",
            TransitState::Inspection => "inspection",
            TransitState::Unsealed => "unsealed",
            TransitState::Closed => "closed",
        }
    }

    /// The lifecycle: declared → sealed → in_transit → arrived → released | inspection →
    /// unsealed → closed; an inspection may end in a release. A sealed transit may be seen first inside its destination (arrived
    /// directly); an authorised unseal may come before a decision (en-route inspection or
    /// quick-mode gates); a transit may be closed (discharged or cancelled) from any state.
    pub fn can_become(self, next: TransitState) -> bool {
        use TransitState::*;
        matches!(
            (self, next),
            (Declared, Sealed)
                | (Sealed, InTransit | Arrived | Unsealed)
                | (InTransit, Arrived | Unsealed)
                | (Arrived, Released | Inspection | Unsealed)
                | (Inspection, Released)
                | (Released | Inspection, Unsealed)
        ) || (next == Closed && self != Closed)
    }

    /// Whether the goods are under supervision: sealed and not yet unsealed or closed.
    pub fn is_supervised(self) -> bool {
        matches!(
            self,
            TransitState::Sealed
                | TransitState::InTransit
                | TransitState::Arrived
                | TransitState::Released
                | TransitState::Inspection
        )
    }

    /// Whether the journey itself is on (route, stops and the time limit apply).
    pub fn is_travelling(self) -> bool {
        matches!(self, TransitState::Sealed | TransitState::InTransit)
    }
}

/// A transit as declared: the supervision information and what the supervisor needs.
///
/// The fields named in the contract (docs/scenario.md) come first; the rest is the supervision
/// information of §8 (vehicle, cargo, driver, declaration, inspection, offices).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transit {
    pub id: TransitId,
    /// The device that seals the goods (the first and main one).
    pub device: DeviceId,
    /// Further devices sealing the same transit (a train of containers, each with its lock).
    /// Empty for the usual single device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<TransitDevice>,
    /// Defaults to `passive` when `device_data` is declared (a tag read at checkpoints), else
    /// `active`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_kind: Option<DeviceKind>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departure: Option<ZoneId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<ZoneId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Geometry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corridor_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<Duration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_zones: Vec<ZoneId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unseal_zones: Vec<ZoneId>,
    #[serde(default)]
    pub rules: Rules,
    /// What was written to a passive or semi-active device at departure, checked on every read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_data: Option<serde_json::Map<String, serde_json::Value>>,
    /// Checkpoints the transit must pass, each by a time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoints: Vec<Checkpoint>,
    /// The legs of a multimodal journey, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legs: Vec<Leg>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vehicle: Option<Vehicle>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cargo: Vec<CargoLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<Driver>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration: Option<Declaration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspection: Option<Inspection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offices: Option<Offices>,
}

impl Transit {
    pub fn device_kind(&self) -> DeviceKind {
        self.device_kind.unwrap_or(if self.device_data.is_some() {
            DeviceKind::Passive
        } else {
            DeviceKind::Active
        })
    }

    /// The time limit: `deadline`, or `max_duration` after sealing.
    pub fn time_limit(&self, sealed_at: Timestamp) -> Option<Timestamp> {
        self.deadline
            .or_else(|| self.max_duration.map(|d| sealed_at.plus(d)))
    }

    /// Every device sealing the transit: `device` first, then `devices` in order.
    pub fn all_devices(&self) -> impl Iterator<Item = &DeviceId> {
        std::iter::once(&self.device).chain(self.devices.iter().map(|d| &d.id))
    }

    /// Zones where an unseal is authorised after arrival: `unseal_zones`, else the destination.
    pub fn unseal_zone_ids(&self) -> Vec<&ZoneId> {
        if self.unseal_zones.is_empty() {
            self.destination.iter().collect()
        } else {
            self.unseal_zones.iter().collect()
        }
    }

    /// Zones where stopping is permitted: departure, destination and `stop_zones`.
    pub fn stop_zone_ids(&self) -> Vec<&ZoneId> {
        self.departure
            .iter()
            .chain(self.destination.iter())
            .chain(self.stop_zones.iter())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle() {
        use TransitState::*;
        let happy = [
            Declared, Sealed, InTransit, Arrived, Released, Unsealed, Closed,
        ];
        for w in happy.windows(2) {
            assert!(w[0].can_become(w[1]), "{w:?}");
        }
        assert!(Arrived.can_become(Inspection));
        assert!(!Declared.can_become(InTransit));
        assert!(!InTransit.can_become(Released));
        assert!(!Unsealed.can_become(Sealed));
        assert!(Inspection.can_become(Released));
        assert!(!Closed.can_become(Closed));
        for s in TransitState::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn limits_forms() {
        let l: Limits = serde_json::from_str("[2, 8]").unwrap();
        assert!(l.contains(2.0) && l.contains(8.0) && !l.contains(8.1));
        let l: Limits = serde_json::from_str("4").unwrap();
        assert_eq!(
            l,
            Limits {
                min: None,
                max: Some(4.0)
            }
        );
        let l: Limits = serde_json::from_str("[null, 30]").unwrap();
        assert!(l.contains(-100.0));
        assert!(
            serde_json::from_str::<Limits>("[8, 2]")
                .unwrap_err()
                .to_string()
                .contains("above max")
        );
        assert!(serde_json::from_str::<Limits>("\"x\"").is_err());
        // Clearing margins: 5 % of the range or bound, at least the sensor's hysteresis; a bound
        // of 0 on a sensor that cannot read below 0 clears at 0.
        let range = Limits {
            min: Some(2.0),
            max: Some(8.0),
        };
        assert!(range.contains_with_margin(7.5, 0.05, 0.5, None));
        assert!(!range.contains_with_margin(7.6, 0.05, 0.5, None));
        let dark = Limits {
            min: None,
            max: Some(0.0),
        };
        assert!(dark.contains_with_margin(0.0, 0.05, 5.0, Some(0.0)));
        let frost = Limits {
            min: Some(0.0),
            max: None,
        };
        assert!(!frost.contains_with_margin(0.2, 0.05, 0.5, None));
        assert!(frost.contains_with_margin(0.5, 0.05, 0.5, None));
    }

    #[test]
    fn driver_is_not_debug_printed() {
        let d = Driver {
            nationality: Some("BY".into()),
            name: Personal("Ivan Petrov".into()),
            contact: None,
        };
        assert!(!format!("{d:?}").contains("Ivan"));
        assert!(serde_json::to_string(&d).unwrap().contains("Ivan"));
    }

    #[test]
    fn defaults_and_overrides() {
        let r = Rules::default().resolve(None);
        assert_eq!(r.corridor_m, 1000.0);
        assert_eq!(r.comm_loss_after, Duration::from_hours(4));
        let r = Rules {
            report_interval: Some(Duration::from_mins(5)),
            ..Rules::default()
        }
        .resolve(Some(500.0));
        assert_eq!(
            (r.corridor_m, r.comm_loss_after),
            (500.0, Duration::from_mins(10))
        );
        let bad = Rules {
            stop_min: Some(Duration::ZERO),
            ..Rules::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "stop_min");
    }
}
