//! Jointech lock messages 0x5501 (live) and 0x5502 (stored while offline): a JT/T 808 header
//! with a one-byte serial around the binary location of Jointech's older JT600 protocol.
//!
//! No vendor document was at hand. The layout below was worked out from two field frames (in
//! `testdata/jt808/field-frames.json`, where it reproduces the independently expected times,
//! positions, battery and charging state) and agrees with how the Traccar server reads these
//! messages. Where it is unsure it says so.

use serde::Serialize;

use crate::location::{DeviceTime, LockEvent, put_item, read_items};
use crate::wire::{self, Reader, ser_hex};
use crate::{DecodeError, EncodeError};

/// The body of a 0x5501 or 0x5502 message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JointechLocation {
    /// Sent as `DDMMYYhhmmss`, in UTC (the field frames' expectations confirm UTC).
    pub time: DeviceTime,
    /// BCD `ddmmmmmm`: degrees and minutes with four decimals.
    pub latitude: u32,
    /// BCD `dddmmmmmm`.
    pub longitude: u32,
    /// The low nibble after the longitude: bit 0 position valid, bit 1 north, bit 2 east.
    pub flags: u8,
    /// BCD, in knots (as the JT600 binary location is read by Traccar; not confirmed by a
    /// vendor document: both field frames stand still).
    pub speed_knots: u8,
    /// Course in units of two degrees.
    pub course: u8,
    pub rssi: u8,
    pub satellites: u8,
    pub odometer_km: u32,
    /// 0-100 %, 0xAA or 0xAB while charging.
    pub battery: u8,
    pub cell_id: u32,
    pub lac: u16,
    /// Product code (3 for the e-locks in the field frames).
    pub product: u8,
    /// Status flags (meaning not documented to us; kept).
    pub status: u16,
    /// Alarm flags; for product 3, bit 3 is low battery (as Traccar reads it).
    pub alarm: u16,
    pub items: Vec<JointechItem>,
    #[serde(serialize_with = "ser_hex", skip_serializing_if = "Vec::is_empty")]
    pub trailing: Vec<u8>,
}

/// The fixed part of the body, before the items.
const FIXED_LEN: usize = 35;

impl JointechLocation {
    pub(crate) fn decode(body: &[u8]) -> Result<JointechLocation, DecodeError> {
        let mut r = Reader::new(body);
        if r.remaining() < FIXED_LEN {
            return Err(DecodeError::Truncated {
                field: "Jointech location",
                needed: FIXED_LEN,
                available: r.remaining(),
            });
        }
        let raw_time = r.bytes(6, "time")?;
        let mut d = [0u8; 6];
        for (o, &b) in d.iter_mut().zip(raw_time) {
            *o = wire::bcd_byte(b, "time")?;
        }
        let [day, month, year, hour, minute, second] = d;
        let time = DeviceTime::new([year, month, day, hour, minute, second], raw_time)?;
        let latitude = wire::bcd_number(r.bytes(4, "latitude")?, "latitude")? as u32;
        let lon = r.bytes(5, "longitude")?;
        let longitude = wire::bcd_number(&lon[..4], "longitude")? as u32;
        let last = lon[4];
        if last >> 4 > 9 {
            return Err(DecodeError::NotBcd {
                field: "longitude",
                byte: last,
            });
        }
        let longitude = longitude * 10 + u32::from(last >> 4);
        let flags = last & 0x0f;
        let speed_knots = wire::bcd_byte(r.u8("speed")?, "speed")?;
        let course = r.u8("course")?;
        let rssi = r.u8("rssi")?;
        let satellites = r.u8("satellites")?;
        let odometer_km = r.u32("odometer")?;
        let battery = r.u8("battery")?;
        let cell_id = r.u32("cell id")?;
        let lac = r.u16("lac")?;
        let product = r.u8("product")?;
        let status = r.u16("status")?;
        let alarm = r.u16("alarm")?;
        let (items, trailing) = read_items(&mut r, JointechItem::decode);
        Ok(JointechLocation {
            time,
            latitude,
            longitude,
            flags,
            speed_knots,
            course,
            rssi,
            satellites,
            odometer_km,
            battery,
            cell_id,
            lac,
            product,
            status,
            alarm,
            items,
            trailing,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let t = &self.time;
        for v in [
            t.day,
            t.month,
            (t.year % 100) as u8,
            t.hour,
            t.minute,
            t.second,
        ] {
            wire::put_bcd(out, u64::from(v), 1);
        }
        wire::put_bcd(out, u64::from(self.latitude % 100_000_000), 4);
        wire::put_bcd(out, u64::from(self.longitude / 10 % 100_000_000), 4);
        out.push(((self.longitude % 10) as u8) << 4 | (self.flags & 0x0f));
        wire::put_bcd(out, u64::from(self.speed_knots % 100), 1);
        out.extend_from_slice(&[self.course, self.rssi, self.satellites]);
        out.extend_from_slice(&self.odometer_km.to_be_bytes());
        out.push(self.battery);
        out.extend_from_slice(&self.cell_id.to_be_bytes());
        out.extend_from_slice(&self.lac.to_be_bytes());
        out.push(self.product);
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&self.alarm.to_be_bytes());
        for item in &self.items {
            item.encode(out)?;
        }
        out.extend_from_slice(&self.trailing);
        Ok(())
    }

    fn degrees(raw: u32) -> f64 {
        let deg = f64::from(raw / 1_000_000);
        let minutes = f64::from(raw % 1_000_000) / 10_000.0;
        // Minutes with four decimals resolve 2 µ°; round away the binary noise.
        ((deg + minutes / 60.0) * 1e7).round() / 1e7
    }

    pub fn has_fix(&self) -> bool {
        self.flags & 0x01 != 0
    }

    /// Signed degrees.
    pub fn lat_deg(&self) -> f64 {
        let v = JointechLocation::degrees(self.latitude);
        if self.flags & 0x02 != 0 { v } else { -v }
    }

    /// Signed degrees.
    pub fn lon_deg(&self) -> f64 {
        let v = JointechLocation::degrees(self.longitude);
        if self.flags & 0x04 != 0 { v } else { -v }
    }

    pub fn speed_kmh(&self) -> f64 {
        f64::from(self.speed_knots) * 1.852
    }

    pub fn course_deg(&self) -> f64 {
        f64::from(self.course) * 2.0
    }

    pub fn is_charging(&self) -> bool {
        matches!(self.battery, 0xaa | 0xab)
    }
}

/// An item of a Jointech lock message.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "item", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JointechItem {
    /// 0x02: metres above sea level.
    Altitude(i16),
    /// 0x0A with three bytes: mobile country and network code.
    Network { mcc: u16, mnc: u8 },
    /// 0x0B: the lock event (command, card or password, unlock result).
    LockEvent(LockEvent),
    /// 0x0C: tilt on three axes.
    Tilt([i16; 3]),
    /// 0x10: what woke the device.
    WakeSource(u8),
    Unknown {
        id: u8,
        #[serde(serialize_with = "ser_hex")]
        bytes: Vec<u8>,
    },
}

impl JointechItem {
    fn decode(id: u8, v: &[u8]) -> JointechItem {
        let i16_at = |i: usize| i16::from_be_bytes([v[i], v[i + 1]]);
        match (id, v.len()) {
            (0x02, 2) => JointechItem::Altitude(i16_at(0)),
            (0x0a, 3) => JointechItem::Network {
                mcc: u16::from_be_bytes([v[0], v[1]]),
                mnc: v[2],
            },
            (0x0c, 6) => JointechItem::Tilt([i16_at(0), i16_at(2), i16_at(4)]),
            (0x10, 1) => JointechItem::WakeSource(v[0]),
            _ => match (id, LockEvent::decode(v)) {
                (0x0b, Some(e)) => JointechItem::LockEvent(e),
                _ => JointechItem::Unknown {
                    id,
                    bytes: v.to_vec(),
                },
            },
        }
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut v = Vec::new();
        let id = match self {
            JointechItem::Altitude(a) => {
                v.extend_from_slice(&a.to_be_bytes());
                0x02
            }
            JointechItem::Network { mcc, mnc } => {
                v.extend_from_slice(&mcc.to_be_bytes());
                v.push(*mnc);
                0x0a
            }
            JointechItem::LockEvent(e) => {
                e.encode(&mut v);
                0x0b
            }
            JointechItem::Tilt(xyz) => {
                for a in xyz {
                    v.extend_from_slice(&a.to_be_bytes());
                }
                0x0c
            }
            JointechItem::WakeSource(w) => {
                v.push(*w);
                0x10
            }
            JointechItem::Unknown { id, bytes } => {
                v.extend_from_slice(bytes);
                *id
            }
        };
        put_item(out, id, &v)
    }
}
