//! The location report (0x0200) body, its additional items, and the batch upload (0x0704).

use serde::Serialize;

use crate::wire::{self, Reader, ser_hex, ser_text};
use crate::{DecodeError, EncodeError};

/// A device-local date and time, as six BCD bytes `YYMMDDhhmmss` (JT/T 808, years 2000-2099)
/// or, in Jointech lock messages, `DDMMYYhhmmss`. Checked for a real calendar date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct DeviceTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl DeviceTime {
    pub(crate) fn new(
        [yy, month, day, hour, minute, second]: [u8; 6],
        raw: &[u8],
    ) -> Result<DeviceTime, DecodeError> {
        let year = 2000 + u16::from(yy);
        if !(1..=12).contains(&month)
            || day == 0
            || day > wire::days_in_month(i64::from(year), month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(DecodeError::BadTime {
                bcd: wire::hex(raw),
            });
        }
        Ok(DeviceTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    fn read_ymd(r: &mut Reader<'_>) -> Result<DeviceTime, DecodeError> {
        let raw = r.bytes(6, "time")?;
        let mut d = [0u8; 6];
        for (o, &b) in d.iter_mut().zip(raw) {
            *o = wire::bcd_byte(b, "time")?;
        }
        DeviceTime::new(d, raw)
    }

    fn write_ymd(&self, out: &mut Vec<u8>) {
        for v in [
            (self.year % 100) as u8,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
        ] {
            wire::put_bcd(out, u64::from(v), 1);
        }
    }

    /// The instant, for a clock `utc_offset_minutes` ahead of UTC.
    pub fn to_timestamp(&self, utc_offset_minutes: i32) -> model::Timestamp {
        let days = wire::days_from_civil(i64::from(self.year), self.month, self.day);
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(utc_offset_minutes) * 60;
        model::Timestamp::from_unix_ms(secs * 1000)
    }
}

/// The 28-byte basic information of a location report and its additional items.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Location {
    /// Alarm flags (JT/T 808 table 24; vendors use the reserved bits, see [`crate::AlarmBits`]).
    pub alarm: u32,
    /// Status flags: bit 1 positioned, bit 2 south, bit 3 west, others per table 25.
    pub status: u32,
    /// Latitude in millionths of a degree, unsigned (the sign is status bit 2).
    pub latitude: u32,
    /// Longitude in millionths of a degree, unsigned (the sign is status bit 3).
    pub longitude: u32,
    /// Metres above sea level.
    pub altitude_m: i16,
    /// Tenths of a km/h.
    pub speed: u16,
    /// Degrees from north, 0-359.
    pub course: u16,
    /// In the device's time zone (GMT+8 unless configured, see [`crate::Options`]).
    pub time: DeviceTime,
    pub items: Vec<LocationItem>,
    /// Bytes after the last whole additional item (a device that cut an item short). Kept so
    /// that nothing is lost; the basic information is still used.
    #[serde(serialize_with = "ser_hex", skip_serializing_if = "Vec::is_empty")]
    pub trailing: Vec<u8>,
}

impl Location {
    pub const STATUS_FIX: u32 = 1 << 1;
    pub const STATUS_SOUTH: u32 = 1 << 2;
    pub const STATUS_WEST: u32 = 1 << 3;

    pub(crate) fn decode(body: &[u8]) -> Result<Location, DecodeError> {
        let mut r = Reader::new(body);
        let alarm = r.u32("alarm flags")?;
        let status = r.u32("status")?;
        let latitude = r.u32("latitude")?;
        let longitude = r.u32("longitude")?;
        let altitude_m = r.i16("altitude")?;
        let speed = r.u16("speed")?;
        let course = r.u16("course")?;
        let time = DeviceTime::read_ymd(&mut r)?;
        let (items, trailing) = read_items(&mut r, LocationItem::decode);
        Ok(Location {
            alarm,
            status,
            latitude,
            longitude,
            altitude_m,
            speed,
            course,
            time,
            items,
            trailing,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.alarm.to_be_bytes());
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&self.latitude.to_be_bytes());
        out.extend_from_slice(&self.longitude.to_be_bytes());
        out.extend_from_slice(&self.altitude_m.to_be_bytes());
        out.extend_from_slice(&self.speed.to_be_bytes());
        out.extend_from_slice(&self.course.to_be_bytes());
        self.time.write_ymd(out);
        for item in &self.items {
            item.encode(out)?;
        }
        out.extend_from_slice(&self.trailing);
        Ok(())
    }

    pub fn has_fix(&self) -> bool {
        self.status & Location::STATUS_FIX != 0
    }

    /// Signed degrees.
    pub fn lat_deg(&self) -> f64 {
        let v = f64::from(self.latitude) / 1e6;
        if self.status & Location::STATUS_SOUTH != 0 {
            -v
        } else {
            v
        }
    }

    /// Signed degrees.
    pub fn lon_deg(&self) -> f64 {
        let v = f64::from(self.longitude) / 1e6;
        if self.status & Location::STATUS_WEST != 0 {
            -v
        } else {
            v
        }
    }

    pub fn speed_kmh(&self) -> f64 {
        f64::from(self.speed) / 10.0
    }
}

/// Reads `id, length, value` items to the end; bytes that do not make a whole item are
/// returned as trailing bytes.
pub(crate) fn read_items<T>(r: &mut Reader<'_>, decode: fn(u8, &[u8]) -> T) -> (Vec<T>, Vec<u8>) {
    let mut items = Vec::new();
    let rest = r.rest();
    let mut i = 0;
    while let [id, len, ..] = rest[i..] {
        let end = i + 2 + usize::from(len);
        let Some(value) = rest.get(i + 2..end) else {
            break;
        };
        items.push(decode(id, value));
        i = end;
    }
    (items, rest[i..].to_vec())
}

pub(crate) fn put_item(out: &mut Vec<u8>, id: u8, value: &[u8]) -> Result<(), EncodeError> {
    let len = u8::try_from(value.len()).map_err(|_| EncodeError::ItemTooLong { id })?;
    out.push(id);
    out.push(len);
    out.extend_from_slice(value);
    Ok(())
}

/// An additional item of a location report. An item is typed only when its length is the one
/// its layout has; any other item, and any id not listed here, is kept as [`Unknown`]
/// (encoding gives back the same bytes either way).
///
/// [`Unknown`]: LocationItem::Unknown
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "item", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LocationItem {
    /// 0x01: odometer, tenths of a km.
    Mileage(u32),
    /// 0x02: fuel, tenths of a litre.
    Fuel(u16),
    /// 0x03: speed from the tachograph, tenths of a km/h.
    RecorderSpeed(u16),
    /// 0x04: id of an alarm event that needs manual confirmation.
    ManualAlarmId(u16),
    /// 0x25: extended vehicle signal flags.
    VehicleSignals(u32),
    /// 0x2A: IO status flags.
    IoStatus(u16),
    /// 0x2B: analogue inputs (AD0 low word, AD1 high word).
    Analog(u32),
    /// 0x30: network signal strength.
    SignalStrength(u8),
    /// 0x31: GNSS satellites in use.
    Satellites(u8),
    /// 0x0B (Jointech JT709A and others): a lock event.
    LockEvent(LockEvent),
    /// 0x33 with more than one byte: a text status such as
    /// `*M00,45,1138600Roy1Open&...#`.
    TextStatus(#[serde(serialize_with = "ser_text")] Vec<u8>),
    /// 0x60: a padlock event (G-series padlocks): event id, event type (0 normal, 1 alarm)
    /// and content (a card id, a user, a phone number).
    PadlockEvent(PadlockEvent),
    /// 0x63 (HHD LoRa padlocks): one record of 11 bytes per lock.
    LoraLocks(Vec<LoraLock>),
    /// 0xD5 with a count byte (A1L lock data): one record of 13 bytes per lock.
    Locks(Vec<LockRecord>),
    /// 0xD5 with two bytes: battery voltage in hundredths of a volt.
    BatteryVoltage(u16),
    /// 0xDA: rope (string) cut counter and the rope/motion/cover status byte.
    RopeCover(RopeCover),
    /// 0xD4, 0xE1, 0xE9 or 0xFE with one byte: battery percentage (0xFF while charging, for
    /// 0xD4, 0xE1 and 0xE9).
    Battery { id: u8, level: u8 },
    /// 0xE8 with three bytes: a lock status word (meaning not documented; kept).
    LockStatusWord(u32),
    /// 0xEB in the `length, type, data` layout (W15L and similar): vendor sub-items.
    Vendor(Vec<VendorItem>),
    Unknown {
        id: u8,
        #[serde(serialize_with = "ser_hex")]
        bytes: Vec<u8>,
    },
}

impl LocationItem {
    pub(crate) fn decode(id: u8, v: &[u8]) -> LocationItem {
        use LocationItem as I;
        let u16_of = |v: &[u8]| u16::from_be_bytes([v[0], v[1]]);
        let u32_of = |v: &[u8]| u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
        match (id, v.len()) {
            (0x01, 4) => I::Mileage(u32_of(v)),
            (0x02, 2) => I::Fuel(u16_of(v)),
            (0x03, 2) => I::RecorderSpeed(u16_of(v)),
            (0x04, 2) => I::ManualAlarmId(u16_of(v)),
            (0x25, 4) => I::VehicleSignals(u32_of(v)),
            (0x2a, 2) => I::IoStatus(u16_of(v)),
            (0x2b, 4) => I::Analog(u32_of(v)),
            (0x30, 1) => I::SignalStrength(v[0]),
            (0x31, 1) => I::Satellites(v[0]),
            (0x0b, _) => match LockEvent::decode(v) {
                Some(e) => I::LockEvent(e),
                None => I::Unknown {
                    id,
                    bytes: v.to_vec(),
                },
            },
            (0x33, 2..) => I::TextStatus(v.to_vec()),
            (0x60, 3..) => I::PadlockEvent(PadlockEvent {
                event: u16_of(v),
                kind: v[2],
                content: v[3..].to_vec(),
            }),
            (0x63, n) if n > 0 && n % 11 == 0 => I::LoraLocks(
                v.chunks_exact(11)
                    .map(|c| LoraLock {
                        id: [c[0], c[1], c[2], c[3], c[4], c[5]],
                        battery_mv: u16_of(&c[6..8]),
                        seal: c[8],
                        physical: c[9],
                        rssi: c[10],
                    })
                    .collect(),
            ),
            (0xd5, 2) => I::BatteryVoltage(u16_of(v)),
            (0xd5, n) if n >= 1 && n == 1 + 13 * usize::from(v[0]) => I::Locks(
                v[1..]
                    .chunks_exact(13)
                    .map(|c| LockRecord {
                        id: [c[0], c[1], c[2], c[3], c[4]],
                        card: [c[5], c[6], c[7], c[8], c[9]],
                        battery: c[10],
                        status: u16_of(&c[11..13]),
                    })
                    .collect(),
            ),
            (0xda, 1) => I::RopeCover(RopeCover {
                cut_count: None,
                status: v[0],
            }),
            (0xda, 3) => I::RopeCover(RopeCover {
                cut_count: Some(u16_of(v)),
                status: v[2],
            }),
            (0xd4 | 0xe1 | 0xe9 | 0xfe, 1) => I::Battery { id, level: v[0] },
            (0xe8, 3) => I::LockStatusWord(u32::from_be_bytes([0, v[0], v[1], v[2]])),
            (0xeb, _) => match VendorItem::decode_all(v) {
                Some(items) => I::Vendor(items),
                None => I::Unknown {
                    id,
                    bytes: v.to_vec(),
                },
            },
            _ => I::Unknown {
                id,
                bytes: v.to_vec(),
            },
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        use LocationItem as I;
        let mut v = Vec::new();
        let id = match self {
            I::Mileage(x) => {
                v.extend_from_slice(&x.to_be_bytes());
                0x01
            }
            I::Fuel(x) => {
                v.extend_from_slice(&x.to_be_bytes());
                0x02
            }
            I::RecorderSpeed(x) => {
                v.extend_from_slice(&x.to_be_bytes());
                0x03
            }
            I::ManualAlarmId(x) => {
                v.extend_from_slice(&x.to_be_bytes());
                0x04
            }
            I::VehicleSignals(x) => {
                v.extend_from_slice(&x.to_be_bytes());
                0x25
            }
            I::IoStatus(x) => {
                v.extend_from_slice(&x.to_be_bytes());
                0x2a
            }
            I::Analog(x) => {
                v.extend_from_slice(&x.to_be_bytes());
                0x2b
            }
            I::SignalStrength(x) => {
                v.push(*x);
                0x30
            }
            I::Satellites(x) => {
                v.push(*x);
                0x31
            }
            I::LockEvent(e) => {
                e.encode(&mut v);
                0x0b
            }
            I::TextStatus(t) => {
                v.extend_from_slice(t);
                0x33
            }
            I::PadlockEvent(e) => {
                v.extend_from_slice(&e.event.to_be_bytes());
                v.push(e.kind);
                v.extend_from_slice(&e.content);
                0x60
            }
            I::LoraLocks(locks) => {
                for l in locks {
                    v.extend_from_slice(&l.id);
                    v.extend_from_slice(&l.battery_mv.to_be_bytes());
                    v.extend_from_slice(&[l.seal, l.physical, l.rssi]);
                }
                0x63
            }
            I::Locks(locks) => {
                v.push(
                    u8::try_from(locks.len()).map_err(|_| EncodeError::ItemTooLong { id: 0xd5 })?,
                );
                for l in locks {
                    v.extend_from_slice(&l.id);
                    v.extend_from_slice(&l.card);
                    v.push(l.battery);
                    v.extend_from_slice(&l.status.to_be_bytes());
                }
                0xd5
            }
            I::BatteryVoltage(x) => {
                v.extend_from_slice(&x.to_be_bytes());
                0xd5
            }
            I::RopeCover(rc) => {
                if let Some(c) = rc.cut_count {
                    v.extend_from_slice(&c.to_be_bytes());
                }
                v.push(rc.status);
                0xda
            }
            I::Battery { id, level } => {
                v.push(*level);
                *id
            }
            I::LockStatusWord(x) => {
                v.extend_from_slice(&x.to_be_bytes()[1..]);
                0xe8
            }
            I::Vendor(items) => {
                for it in items {
                    let len = u16::try_from(it.data.len() + 2)
                        .map_err(|_| EncodeError::ItemTooLong { id: 0xeb })?;
                    v.extend_from_slice(&len.to_be_bytes());
                    v.extend_from_slice(&it.kind.to_be_bytes());
                    v.extend_from_slice(&it.data);
                }
                0xeb
            }
            I::Unknown { id, bytes } => {
                v.extend_from_slice(bytes);
                *id
            }
        };
        put_item(out, id, &v)
    }
}

/// A lock event (item 0x0B, in 0x0200 from Jointech JT709A and in Jointech 0x5501/0x5502):
/// the command, the card or password used, and the unlock result.
///
/// The layout follows from the item length: 1 byte command; then a 4-byte card number (length
/// 5 or 6) or a 6-character password (length 7 or 8); an even length ends with the result
/// byte. What the command and result codes mean is not documented to us, so they are not
/// mapped into observations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockEvent {
    pub command: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<u32>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_text"
    )]
    pub password: Option<[u8; 6]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unlock_result: Option<u8>,
}

fn ser_opt_text<S: serde::Serializer>(v: &Option<[u8; 6]>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(p) => ser_text(p, s),
        None => s.serialize_none(),
    }
}

impl LockEvent {
    pub(crate) fn decode(v: &[u8]) -> Option<LockEvent> {
        let (&command, rest) = v.split_first()?;
        let (card, password, rest) = match rest.len() {
            0 | 1 => (None, None, rest),
            4 | 5 => (
                Some(u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]])),
                None,
                &rest[4..],
            ),
            6 | 7 => {
                let mut p = [0u8; 6];
                p.copy_from_slice(&rest[..6]);
                (None, Some(p), &rest[6..])
            }
            _ => return None,
        };
        Some(LockEvent {
            command,
            card,
            password,
            unlock_result: rest.first().copied(),
        })
    }

    pub(crate) fn encode(&self, v: &mut Vec<u8>) {
        v.push(self.command);
        if let Some(c) = self.card {
            v.extend_from_slice(&c.to_be_bytes());
        } else if let Some(p) = self.password {
            v.extend_from_slice(&p);
        }
        if let Some(r) = self.unlock_result {
            v.push(r);
        }
    }
}

/// A G-series padlock event (item 0x60).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PadlockEvent {
    pub event: u16,
    /// 0 normal, 1 alarm.
    pub kind: u8,
    #[serde(serialize_with = "ser_text")]
    pub content: Vec<u8>,
}

/// One lock of item 0x63.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoraLock {
    #[serde(serialize_with = "ser_hex")]
    pub id: [u8; 6],
    pub battery_mv: u16,
    /// `0x31` ('1') when sealed.
    pub seal: u8,
    pub physical: u8,
    pub rssi: u8,
}

impl LoraLock {
    pub fn is_sealed(&self) -> bool {
        self.seal == 0x31
    }
}

/// One lock of item 0xD5 (master first, then slaves).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockRecord {
    #[serde(serialize_with = "ser_hex")]
    pub id: [u8; 5],
    #[serde(serialize_with = "ser_hex")]
    pub card: [u8; 5],
    /// Battery percentage.
    pub battery: u8,
    /// Status flags; bit 5 set means unlocked.
    pub status: u16,
}

impl LockRecord {
    pub fn is_locked(&self) -> bool {
        self.status & (1 << 5) == 0
    }
}

/// Item 0xDA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RopeCover {
    /// How many times the rope has been cut (absent in the one-byte form).
    pub cut_count: Option<u16>,
    /// Bit 0 rope (string) cut or out, bit 2 moving, bit 3 back cover open.
    pub status: u8,
}

impl RopeCover {
    pub fn rope_cut(&self) -> bool {
        self.status & 0x01 != 0
    }
    pub fn cover_open(&self) -> bool {
        self.status & 0x08 != 0
    }
}

/// A sub-item of item 0xEB in the `length (u16, type included), type (u16), data` layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VendorItem {
    pub kind: u16,
    #[serde(serialize_with = "ser_hex")]
    pub data: Vec<u8>,
}

impl VendorItem {
    /// The sub-items, when the whole value is made of them. Other vendors put cell towers
    /// (a first word above 200, the MCC) or a time zone text in 0xEB: those are left alone.
    fn decode_all(v: &[u8]) -> Option<Vec<VendorItem>> {
        if v.len() < 4 || u16::from_be_bytes([v[0], v[1]]) > 200 {
            return None;
        }
        let mut items = Vec::new();
        let mut i = 0;
        while i < v.len() {
            let len = usize::from(u16::from_be_bytes([*v.get(i)?, *v.get(i + 1)?]));
            if len < 2 {
                return None;
            }
            let body = v.get(i + 2..i + 2 + len)?;
            items.push(VendorItem {
                kind: u16::from_be_bytes([body[0], body[1]]),
                data: body[2..].to_vec(),
            });
            i += 2 + len;
        }
        Some(items)
    }
}

/// Location batch upload (0x0704): stored or delayed reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LocationBatch {
    /// 0 normal batch, 1 blind-area supplement (reports stored while out of coverage).
    pub kind: u8,
    pub locations: Vec<Location>,
}

impl LocationBatch {
    pub(crate) fn decode(body: &[u8]) -> Result<LocationBatch, DecodeError> {
        let mut r = Reader::new(body);
        let count = r.u16("batch count")?;
        let kind = r.u8("batch type")?;
        let mut locations = Vec::with_capacity(usize::from(count).min(body.len() / 30));
        while r.remaining() > 0 {
            let len = r.u16("batch item length")?;
            locations.push(Location::decode(r.bytes(usize::from(len), "batch item")?)?);
        }
        if locations.len() != usize::from(count) {
            return Err(DecodeError::BatchCount {
                declared: count,
                found: locations.len(),
            });
        }
        Ok(LocationBatch { kind, locations })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let count = u16::try_from(self.locations.len())
            .map_err(|_| EncodeError::BodyTooLong { len: usize::MAX })?;
        out.extend_from_slice(&count.to_be_bytes());
        out.push(self.kind);
        for l in &self.locations {
            let mut item = Vec::new();
            l.encode(&mut item)?;
            let len = u16::try_from(item.len())
                .map_err(|_| EncodeError::BodyTooLong { len: item.len() })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&item);
        }
        Ok(())
    }
}
