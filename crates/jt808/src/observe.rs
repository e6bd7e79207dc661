//! From messages to the contract's observations, and JSON descriptions of the rest.

use model::{DeviceEvent, HousingState, LockState, Observation, RopeState};
use serde_json::{Value, json};

use crate::jointech::JointechLocation;
use crate::location::{Location, LocationItem};
use crate::message::{Body, Message};

/// How to read one device model's frames. A gateway keeps one per model and picks it from the
/// header's phone number, before decoding the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Decode frames whose check code is wrong (for device models known to compute it
    /// badly). Off by default: a bad check code is a [`crate::DecodeError::CheckCode`].
    pub accept_bad_check_code: bool,
    /// The device clock's offset from UTC in minutes, for the BCD times of JT/T 808 reports
    /// (480, GMT+8, by default, as the standard is written for China). Jointech lock messages
    /// carry UTC and ignore it.
    pub utc_offset_minutes: i32,
    /// How to read the alarm flags of a location report.
    pub alarm_bits: AlarmBits,
    /// Use the header's serial number as the observation's `seq`. Off by default: the serial
    /// is 16 bits, wraps, and restarts when a device reconnects, so a `seq` taken from it
    /// would repeat with other content and look like a cloned device to the supervisor.
    pub seq_from_serial: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            accept_bad_check_code: false,
            utc_offset_minutes: 8 * 60,
            alarm_bits: AlarmBits::Standard,
            seq_from_serial: false,
        }
    }
}

impl Options {
    /// The options known to suit a device model by its name (as an integrator writes it,
    /// e.g. `G-360P`); the defaults for any other.
    pub fn for_model(model: &str) -> Options {
        let alarm_bits = match model.trim().to_ascii_uppercase().as_str() {
            "G-360P" | "G-508P" => AlarmBits::Padlock,
            _ => AlarmBits::Standard,
        };
        Options {
            alarm_bits,
            ..Options::default()
        }
    }
}

/// Which alarm flags of a location report (0x0200) mean which device event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlarmBits {
    /// JT/T 808 table 24 with the vendor bits seen on e-locks: bit 4 (GNSS module fault)
    /// `fault`, bit 7 (supply under-voltage; the battery, on a battery device) `low_battery`,
    /// bits 16 and 17 (reserved in the standard, tamper on e-locks) `tamper`.
    #[default]
    Standard,
    /// G-360P and G-508P padlocks: bits 0 and 4 `device_removed`, bit 1 `tamper`.
    Padlock,
}

impl AlarmBits {
    fn events(self, alarm: u32, o: &mut Observation) {
        let bit = |n: u32| alarm & (1 << n) != 0;
        let mut add = |on: bool, e: DeviceEvent| {
            if on {
                o.events.insert(e);
            }
        };
        match self {
            AlarmBits::Standard => {
                add(bit(4), DeviceEvent::Fault);
                add(bit(7), DeviceEvent::LowBattery);
                add(bit(16) || bit(17), DeviceEvent::Tamper);
            }
            AlarmBits::Padlock => {
                add(bit(0) || bit(4), DeviceEvent::DeviceRemoved);
                add(bit(1), DeviceEvent::Tamper);
            }
        }
    }
}

/// The observations a message carries: one for a location report, one per report of a batch,
/// one for a Jointech lock message, none for anything else (see [`describe`]).
///
/// Positions outside WGS 84 bounds are left out (with `fix: false`) rather than failing the
/// report, so that the lock state and events it carries still reach the supervisor.
pub fn observations(message: &Message, options: &Options) -> Vec<Observation> {
    let seq = options
        .seq_from_serial
        .then_some(u64::from(message.header.serial));
    match &message.body {
        Body::Location(l)
        | Body::LocationQueryResponse {
            location: l,
            reply_serial: _,
        } => vec![from_location(message, l, options, seq)],
        Body::LocationBatch(b) => b
            .locations
            .iter()
            .map(|l| from_location(message, l, options, None))
            .collect(),
        Body::JointechLocation(j) => vec![from_jointech(message, j, seq)],
        _ => Vec::new(),
    }
}

fn set_position(o: &mut Observation, fix: bool, lat: f64, lon: f64, zero: bool) -> bool {
    let in_range = (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon);
    if in_range && (fix || !zero) {
        o.lat = Some(lat);
        o.lon = Some(lon);
    }
    let fix = fix && in_range;
    if !fix {
        o.fix = Some(false);
    }
    fix
}

fn from_location(m: &Message, l: &Location, options: &Options, seq: Option<u64>) -> Observation {
    let mut o = Observation::new(m.device(), l.time.to_timestamp(options.utc_offset_minutes));
    o.seq = seq;
    let zero = l.latitude == 0 && l.longitude == 0;
    if set_position(&mut o, l.has_fix(), l.lat_deg(), l.lon_deg(), zero) {
        o.speed_kmh = Some(l.speed_kmh());
        if l.course <= 360 {
            o.course_deg = Some(f64::from(l.course));
        }
    }
    options.alarm_bits.events(l.alarm, &mut o);
    for item in &l.items {
        apply_item(item, &mut o);
    }
    o
}

fn apply_item(item: &LocationItem, o: &mut Observation) {
    match item {
        LocationItem::Locks(locks) if !locks.is_empty() => {
            o.lock = Some(if locks.iter().all(|l| l.is_locked()) {
                LockState::Locked
            } else {
                LockState::Unlocked
            });
            if let [one] = &locks[..]
                && one.battery <= 100
            {
                o.battery_pct = Some(f64::from(one.battery));
            }
        }
        LocationItem::LoraLocks(locks) if !locks.is_empty() => {
            o.lock = Some(if locks.iter().all(|l| l.is_sealed()) {
                LockState::Locked
            } else {
                LockState::Unlocked
            });
        }
        LocationItem::PadlockEvent(e) => padlock_event(e.event, o),
        LocationItem::RopeCover(rc) => {
            o.rope = Some(if rc.rope_cut() {
                RopeState::Cut
            } else {
                RopeState::Intact
            });
            if rc.cover_open() {
                o.housing = Some(HousingState::Breached);
                o.events.insert(DeviceEvent::BackCoverOpen);
            } else {
                o.housing = Some(HousingState::Intact);
            }
        }
        LocationItem::Battery { id, level } => match level {
            0..=100 => o.battery_pct = Some(f64::from(*level)),
            0xff if *id != 0xfe => o.charging = Some(true),
            _ => {}
        },
        LocationItem::TextStatus(text) => {
            if let Some(lock) = text_lock_state(text) {
                o.lock = Some(lock);
            }
        }
        LocationItem::Vendor(items) => {
            for it in items {
                match (it.kind, &it.data[..]) {
                    // Extended alarm status: bit 12 clear means the device was removed.
                    (0x0089, [a, b, c, d])
                        if u32::from_be_bytes([*a, *b, *c, *d]) & (1 << 12) == 0 =>
                    {
                        o.events.insert(DeviceEvent::DeviceRemoved);
                    }
                    (0x00a8 | 0x00e1, [level]) if *level <= 100 => {
                        o.battery_pct = Some(f64::from(*level));
                    }
                    (0x00c6, [3 | 4]) => o.events.insert(DeviceEvent::LowBattery),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// G-series padlock events (item 0x60), from the vendor's event table.
fn padlock_event(event: u16, o: &mut Observation) {
    use DeviceEvent as E;
    match event {
        // Shackle closed; sealed automatically, by card, BLE, platform, SMS, or after an
        // unseal left the shackle in.
        0x0000 | 0x0002 | 0x0003 | 0x0005 | 0x0007 | 0x0009 | 0x0014 => {
            o.lock = Some(LockState::Locked);
        }
        0x0001 => o.lock = Some(LockState::Unlocked),
        // Unsealed by card, BLE, platform or SMS: with credentials the device accepted.
        0x0004 | 0x0006 | 0x0008 | 0x000a => {
            o.lock = Some(LockState::Unlocked);
            o.events.insert(E::UnlockAuthorized);
        }
        // An unregistered card.
        0x000b | 0x000c => o.events.insert(E::IllegalCard),
        // A card used outside the area where it may seal or unseal.
        0x000d | 0x000e => o.events.insert(E::UnauthorizedCommand),
        // Shackle opened while sealed.
        0x000f => {
            o.lock = Some(LockState::Unlocked);
            o.events.insert(E::Tamper);
        }
        // Shell tampered with or removed.
        0x0010 => {
            o.housing = Some(HousingState::Breached);
            o.events.insert(E::Tamper);
        }
        // Shackle or wire rope cut.
        0x0011 => {
            o.rope = Some(RopeState::Cut);
            o.events.insert(E::Tamper);
        }
        0x0012 | 0x0017 => o.events.insert(E::LowBattery),
        0x0013 => o.events.insert(E::WrongPassword),
        0x0018 => o.events.insert(E::Fault),
        _ => {}
    }
}

/// The lock state in a text status item (0x33) such as `*M00,45,1138600Roy1Open&...#`: the
/// text after the seven status characters of the third field ends with `Open` or `Close`.
/// Inferred from field frames, not from a vendor document.
fn text_lock_state(text: &[u8]) -> Option<LockState> {
    let text = std::str::from_utf8(text).ok()?;
    let body = text.strip_prefix('*')?;
    let first = body.split(['&', '#']).next()?;
    let status = first.split(',').nth(2)?;
    let tail = status.get(7..)?.to_ascii_lowercase();
    if tail.ends_with("open") {
        Some(LockState::Unlocked)
    } else if tail.ends_with("close") || tail.ends_with("closed") {
        Some(LockState::Locked)
    } else {
        None
    }
}

fn from_jointech(m: &Message, j: &JointechLocation, seq: Option<u64>) -> Observation {
    // Jointech lock messages carry UTC.
    let mut o = Observation::new(m.device(), j.time.to_timestamp(0));
    o.seq = seq;
    let zero = j.latitude == 0 && j.longitude == 0;
    if set_position(&mut o, j.has_fix(), j.lat_deg(), j.lon_deg(), zero) {
        o.speed_kmh = Some(j.speed_kmh());
        if j.course_deg() <= 360.0 {
            o.course_deg = Some(j.course_deg());
        }
    }
    if j.battery <= 100 {
        o.battery_pct = Some(f64::from(j.battery));
    } else if j.is_charging() {
        o.charging = Some(true);
    }
    if j.product == 3 && j.alarm & (1 << 3) != 0 {
        o.events.insert(DeviceEvent::LowBattery);
    }
    o
}

/// A JSON description of a message: what `sealwatch decode` prints for a frame that is not
/// an observation (and what a log line may carry for any frame).
pub fn describe(message: &Message) -> Value {
    let whole = serde_json::to_value(message).unwrap_or(Value::Null);
    json!({
        "type": whole["body"]["type"],
        "message_id": format!("0x{:04x}", message.header.message_id),
        "device": message.device().to_string(),
        "serial": message.header.serial,
        "header": whole["header"],
        "body": whole["body"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_status() {
        let t = b"*M00,45,1138600Roy1Open&000000000000&1234567890123456#";
        assert_eq!(text_lock_state(t), Some(LockState::Unlocked));
        let t = b"*M00,45,113690B80012300&000000000000&1234567890123456#";
        assert_eq!(text_lock_state(t), None);
        assert_eq!(
            text_lock_state(b"*M00,45,1138600Close#"),
            Some(LockState::Locked)
        );
        assert_eq!(text_lock_state(b"*M00"), None);
        assert_eq!(text_lock_state(&[0xff, 0x2a]), None);
    }

    #[test]
    fn models() {
        assert_eq!(Options::for_model("g-360p").alarm_bits, AlarmBits::Padlock);
        assert_eq!(Options::for_model("JT709A"), Options::default());
    }
}
