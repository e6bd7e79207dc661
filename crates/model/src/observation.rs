//! The observation: one normalised device report, exactly as the contract defines it.
//!
//! Every protocol (JT/T 808, the native secure protocol, smart-container JSON, readers) is turned
//! into this one shape; nothing downstream knows which protocol a report came from.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{DeviceId, Timestamp};

/// `lock`: the state of the locking mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockState {
    Locked,
    Unlocked,
}

/// `rope`: the cable or shackle of a seal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RopeState {
    Intact,
    Cut,
}

/// `housing`: the device's casing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HousingState {
    Intact,
    Breached,
}

/// `door`: a container or trailer door.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorState {
    Open,
    Closed,
}

/// An event the device itself reported, as listed in the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DeviceEvent {
    Tamper,
    WrongPassword,
    IllegalCard,
    UnauthorizedCommand,
    BackCoverOpen,
    DeviceRemoved,
    LowBattery,
    Fault,
    UnlockAuthorized,
}

impl DeviceEvent {
    pub const ALL: [DeviceEvent; 9] = [
        DeviceEvent::Tamper,
        DeviceEvent::WrongPassword,
        DeviceEvent::IllegalCard,
        DeviceEvent::UnauthorizedCommand,
        DeviceEvent::BackCoverOpen,
        DeviceEvent::DeviceRemoved,
        DeviceEvent::LowBattery,
        DeviceEvent::Fault,
        DeviceEvent::UnlockAuthorized,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceEvent::Tamper => "tamper",
            DeviceEvent::WrongPassword => "wrong_password",
            DeviceEvent::IllegalCard => "illegal_card",
            DeviceEvent::UnauthorizedCommand => "unauthorized_command",
            DeviceEvent::BackCoverOpen => "back_cover_open",
            DeviceEvent::DeviceRemoved => "device_removed",
            DeviceEvent::LowBattery => "low_battery",
            DeviceEvent::Fault => "fault",
            DeviceEvent::UnlockAuthorized => "unlock_authorized",
        }
    }

    /// How an officer reads it.
    pub fn label(self) -> &'static str {
        match self {
            DeviceEvent::Tamper => "tamper",
            DeviceEvent::WrongPassword => "wrong password",
            DeviceEvent::IllegalCard => "unknown card",
            DeviceEvent::UnauthorizedCommand => "unauthorised command",
            DeviceEvent::BackCoverOpen => "back cover opened",
            DeviceEvent::DeviceRemoved => "device removed",
            DeviceEvent::LowBattery => "low battery",
            DeviceEvent::Fault => "fault",
            DeviceEvent::UnlockAuthorized => "unlocked with valid credentials",
        }
    }

    pub fn parse(s: &str) -> Option<DeviceEvent> {
        DeviceEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// The set of events in one observation. A bit set, so an observation stays `Copy`-cheap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DeviceEvents(u16);

impl DeviceEvents {
    pub const TAMPER_CLASS: DeviceEvents = DeviceEvents::of(&[
        DeviceEvent::Tamper,
        DeviceEvent::BackCoverOpen,
        DeviceEvent::DeviceRemoved,
    ]);
    pub const UNAUTHORIZED_CLASS: DeviceEvents = DeviceEvents::of(&[
        DeviceEvent::WrongPassword,
        DeviceEvent::IllegalCard,
        DeviceEvent::UnauthorizedCommand,
    ]);

    pub const fn of(events: &[DeviceEvent]) -> DeviceEvents {
        let mut bits = 0u16;
        let mut i = 0;
        while i < events.len() {
            bits |= 1 << events[i] as u8;
            i += 1;
        }
        DeviceEvents(bits)
    }
    pub fn insert(&mut self, e: DeviceEvent) {
        self.0 |= 1 << e as u8;
    }
    pub fn contains(self, e: DeviceEvent) -> bool {
        self.0 & (1 << e as u8) != 0
    }
    pub fn intersects(self, other: DeviceEvents) -> bool {
        self.0 & other.0 != 0
    }
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = DeviceEvent> {
        DeviceEvent::ALL
            .into_iter()
            .filter(move |e| self.contains(*e))
    }
    pub fn bits(self) -> u16 {
        self.0
    }
}

impl Serialize for DeviceEvents {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(DeviceEvent::as_str))
    }
}

impl<'de> Deserialize<'de> for DeviceEvents {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DeviceEvents, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DeviceEvents;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of device events")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DeviceEvents, A::Error> {
                let mut set = DeviceEvents::default();
                while let Some(name) = seq.next_element::<std::borrow::Cow<'de, str>>()? {
                    let e = DeviceEvent::parse(&name).ok_or_else(|| {
                        de::Error::custom(format!(
                            "unknown device event {name:?}; expected one of {}",
                            DeviceEvent::ALL.map(DeviceEvent::as_str).join(", ")
                        ))
                    })?;
                    set.insert(e);
                }
                Ok(set)
            }
        }
        d.deserialize_seq(V)
    }
}

/// One normalised device report. Only `device` and `t` are required.
/// Fields this version does not know are ignored, so newer senders stay readable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub device: DeviceId,
    pub t: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// Whether the position is a GNSS fix. Defaults to true when `lat`/`lon` are present; an
    /// explicit `false` is a report without a fix (what a jammed or shielded device sends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_kmh: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub course_deg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope: Option<RopeState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub housing: Option<HousingState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub door: Option<DoorState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub humidity_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shock_g: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub light_lux: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pressure_hpa: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "DeviceEvents::is_empty")]
    pub events: DeviceEvents,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// Everything in an observation but the device id: `Copy`, so the supervisor can keep the
/// evidence for a future alarm without allocating on every report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reading {
    pub t: Timestamp,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub fix: Option<bool>,
    pub accuracy_m: Option<f64>,
    pub speed_kmh: Option<f64>,
    pub course_deg: Option<f64>,
    pub lock: Option<LockState>,
    pub rope: Option<RopeState>,
    pub housing: Option<HousingState>,
    pub door: Option<DoorState>,
    pub battery_pct: Option<f64>,
    pub charging: Option<bool>,
    pub temperature_c: Option<f64>,
    pub humidity_pct: Option<f64>,
    pub shock_g: Option<f64>,
    pub light_lux: Option<f64>,
    pub pressure_hpa: Option<f64>,
    pub fuel_pct: Option<f64>,
    pub events: DeviceEvents,
    pub seq: Option<u64>,
}

/// A WGS 84 position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatLon {
    pub lat: f64,
    pub lon: f64,
}

/// Why an observation's values cannot be right.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ObservationError {
    pub field: &'static str,
    pub reason: String,
}

impl Observation {
    /// A report with only the required fields.
    pub fn new(device: DeviceId, t: Timestamp) -> Observation {
        Reading::empty(t).with_device(device)
    }

    pub fn reading(&self) -> Reading {
        Reading {
            t: self.t,
            lat: self.lat,
            lon: self.lon,
            fix: self.fix,
            accuracy_m: self.accuracy_m,
            speed_kmh: self.speed_kmh,
            course_deg: self.course_deg,
            lock: self.lock,
            rope: self.rope,
            housing: self.housing,
            door: self.door,
            battery_pct: self.battery_pct,
            charging: self.charging,
            temperature_c: self.temperature_c,
            humidity_pct: self.humidity_pct,
            shock_g: self.shock_g,
            light_lux: self.light_lux,
            pressure_hpa: self.pressure_hpa,
            fuel_pct: self.fuel_pct,
            events: self.events,
            seq: self.seq,
        }
    }

    /// Checks value ranges that serde cannot: a position needs both coordinates, within WGS 84
    /// bounds; percentages are 0 to 100; nothing is NaN.
    pub fn validate(&self) -> Result<(), ObservationError> {
        self.reading().validate()
    }
}

impl Reading {
    pub fn empty(t: Timestamp) -> Reading {
        Reading {
            t,
            lat: None,
            lon: None,
            fix: None,
            accuracy_m: None,
            speed_kmh: None,
            course_deg: None,
            lock: None,
            rope: None,
            housing: None,
            door: None,
            battery_pct: None,
            charging: None,
            temperature_c: None,
            humidity_pct: None,
            shock_g: None,
            light_lux: None,
            pressure_hpa: None,
            fuel_pct: None,
            events: DeviceEvents::default(),
            seq: None,
        }
    }

    pub fn with_device(self, device: DeviceId) -> Observation {
        Observation {
            device,
            t: self.t,
            lat: self.lat,
            lon: self.lon,
            fix: self.fix,
            accuracy_m: self.accuracy_m,
            speed_kmh: self.speed_kmh,
            course_deg: self.course_deg,
            lock: self.lock,
            rope: self.rope,
            housing: self.housing,
            door: self.door,
            battery_pct: self.battery_pct,
            charging: self.charging,
            temperature_c: self.temperature_c,
            humidity_pct: self.humidity_pct,
            shock_g: self.shock_g,
            light_lux: self.light_lux,
            pressure_hpa: self.pressure_hpa,
            fuel_pct: self.fuel_pct,
            events: self.events,
            seq: self.seq,
        }
    }

    /// The position, when the report has one and it is a fix.
    pub fn fix_position(&self) -> Option<LatLon> {
        match (self.lat, self.lon, self.fix) {
            (Some(lat), Some(lon), None | Some(true)) => Some(LatLon { lat, lon }),
            _ => None,
        }
    }

    /// True when the device says explicitly that it has no position fix.
    pub fn reports_no_fix(&self) -> bool {
        self.fix == Some(false)
    }

    /// Stable 64-bit digest of the whole content (not the time of arrival: there is none here).
    /// Two reports with the same `seq` and different digests cannot come from one honest device.
    pub fn content_digest(&self) -> u64 {
        // A word-at-a-time multiply-rotate mix over a fixed field order, finished with the
        // SplitMix64 avalanche: deterministic across runs and platforms (unlike the standard
        // library's randomly keyed hasher) and cheap enough to run on every report.
        let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut eat = |x: u64| {
            h = (h.rotate_left(23) ^ x).wrapping_mul(0x2545_f491_4f6c_dd1d);
        };
        let f = |v: Option<f64>| v.map_or(u64::MAX, f64::to_bits);
        eat(self.t.unix_ms() as u64);
        for v in [
            self.lat,
            self.lon,
            self.accuracy_m,
            self.speed_kmh,
            self.course_deg,
            self.battery_pct,
            self.temperature_c,
            self.humidity_pct,
            self.shock_g,
            self.light_lux,
            self.pressure_hpa,
            self.fuel_pct,
        ] {
            eat(f(v));
        }
        let small = |v: Option<u8>| v.map_or(0xff, u64::from);
        // `fix` is hashed as it means, not as it was written: absent with a position is true.
        let fix = self
            .fix
            .or((self.lat.is_some() && self.lon.is_some()).then_some(true));
        eat(small(fix.map(u8::from)));
        eat(small(self.charging.map(u8::from)));
        eat(small(self.lock.map(|s| s as u8)));
        eat(small(self.rope.map(|s| s as u8)));
        eat(small(self.housing.map(|s| s as u8)));
        eat(small(self.door.map(|s| s as u8)));
        eat(u64::from(self.events.bits()));
        eat(self.seq.unwrap_or(u64::MAX));
        h ^= h >> 30;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 27;
        h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    }

    pub fn validate(&self) -> Result<(), ObservationError> {
        let bad = |field, reason: &str| {
            Err(ObservationError {
                field,
                reason: reason.to_owned(),
            })
        };
        match (self.lat, self.lon) {
            (Some(lat), Some(lon)) => {
                if !(-90.0..=90.0).contains(&lat) {
                    return bad("lat", "must be between -90 and 90");
                }
                if !(-180.0..=180.0).contains(&lon) {
                    return bad("lon", "must be between -180 and 180");
                }
            }
            (Some(_), None) => return bad("lon", "lat is given, so lon is required"),
            (None, Some(_)) => return bad("lat", "lon is given, so lat is required"),
            (None, None) => {
                if self.fix == Some(true) {
                    return bad("fix", "true without lat and lon");
                }
            }
        }
        let non_negative = [
            ("accuracy_m", self.accuracy_m),
            ("speed_kmh", self.speed_kmh),
            ("shock_g", self.shock_g),
            ("light_lux", self.light_lux),
            ("pressure_hpa", self.pressure_hpa),
        ];
        for (field, v) in non_negative {
            if let Some(v) = v
                && !(v >= 0.0 && v.is_finite())
            {
                return bad(field, "must be a finite number, 0 or more");
            }
        }
        for (field, v) in [
            ("battery_pct", self.battery_pct),
            ("humidity_pct", self.humidity_pct),
            ("fuel_pct", self.fuel_pct),
        ] {
            if let Some(v) = v
                && !(0.0..=100.0).contains(&v)
            {
                return bad(field, "must be between 0 and 100");
            }
        }
        if let Some(v) = self.course_deg
            && !(0.0..=360.0).contains(&v)
        {
            return bad("course_deg", "must be between 0 and 360");
        }
        if let Some(v) = self.temperature_c
            && !(-273.15..=1000.0).contains(&v)
        {
            return bad("temperature_c", "must be between -273.15 and 1000");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_example_round_trips() {
        let text = r#"{"device": "D1", "t": "2026-11-25T08:00:00Z", "lat": 29.31, "lon": 120.07,
 "fix": true, "accuracy_m": 8, "speed_kmh": 62, "course_deg": 95,
 "lock": "locked", "rope": "intact", "housing": "intact", "door": "closed",
 "battery_pct": 87, "charging": false,
 "temperature_c": 5.2, "humidity_pct": 60, "shock_g": 0.3, "light_lux": 0,
 "pressure_hpa": 1012, "fuel_pct": 78,
 "events": ["wrong_password"], "seq": 1042}"#;
        let o: Observation = serde_json::from_str(text).unwrap();
        o.validate().unwrap();
        assert_eq!(o.lock, Some(LockState::Locked));
        assert!(o.events.contains(DeviceEvent::WrongPassword));
        let back: Observation = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        assert_eq!(back, o);
        assert_eq!(o.reading().with_device(o.device.clone()), o);
    }

    #[test]
    fn errors_name_the_field() {
        let e = serde_json::from_str::<Observation>(
            r#"{"device":"D1","t":"2026-11-25T08:00:00Z","events":["boom"]}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("unknown device event \"boom\""),
            "{e}"
        );
        let o: Observation =
            serde_json::from_str(r#"{"device":"D1","t":"2026-11-25T08:00:00Z","lat":95,"lon":1}"#)
                .unwrap();
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "lat: must be between -90 and 90"
        );
        let o: Observation =
            serde_json::from_str(r#"{"device":"D1","t":"2026-11-25T08:00:00Z","lat":5}"#).unwrap();
        assert_eq!(o.validate().unwrap_err().field, "lon");
    }

    #[test]
    fn digest_sees_every_field_but_not_order_of_events() {
        let o: Observation = serde_json::from_str(
            r#"{"device":"D1","t":"2026-11-25T08:00:00Z","seq":5,"events":["tamper","fault"]}"#,
        )
        .unwrap();
        let p: Observation = serde_json::from_str(
            r#"{"device":"D1","t":"2026-11-25T08:00:00Z","seq":5,"events":["fault","tamper"]}"#,
        )
        .unwrap();
        assert_eq!(o.reading().content_digest(), p.reading().content_digest());
        let mut q = o.clone();
        q.battery_pct = Some(50.0);
        assert_ne!(o.reading().content_digest(), q.reading().content_digest());
    }
}
