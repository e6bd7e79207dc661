//! The messages inside records: reports, acknowledgements, commands and command results.
//!
//! Every message has exactly one encoding: decoding refuses unknown bits, out-of-range values
//! and trailing bytes, so `encode(decode(bytes)) == bytes` for every accepted input. Evidence
//! signatures rely on it: the platform rebuilds the signed bytes from what it decoded.

use model::{
    DeviceEvent, DeviceEvents, DeviceId, DoorState, HousingState, LockState, Observation,
    ObservationError, Reading, RopeState, Timestamp, TransitId,
};

use crate::evidence::{Attestation, decode_context, encode_context};
use crate::wire::{Reader, put_short_str};

/// Why the bytes of a message (or of evidence) could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("{field}: message ends early")]
    Truncated { field: &'static str },
    #[error("{field}: invalid value {value}")]
    BadValue { field: &'static str, value: u64 },
    #[error("{field}: not valid text or identifier")]
    BadText { field: &'static str },
    #[error("{len} bytes after the end of the {what}")]
    TrailingBytes { what: &'static str, len: usize },
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// The values decode but cannot be a real report (a latitude of 95, a NaN).
    #[error("report: {0}")]
    InvalidObservation(ObservationError),
}

/// The events in a report, by bit number on the wire. The order is part of the protocol, not
/// the order of `model::DeviceEvent`.
pub const EVENT_BITS: [DeviceEvent; 9] = [
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

/// Bits of a report's field map: which optional fields follow, in this order.
mod bit {
    pub(super) const POSITION: u32 = 1 << 0;
    pub(super) const FIX: u32 = 1 << 1;
    pub(super) const ACCURACY: u32 = 1 << 2;
    pub(super) const SPEED: u32 = 1 << 3;
    pub(super) const COURSE: u32 = 1 << 4;
    pub(super) const LOCK: u32 = 1 << 5;
    pub(super) const ROPE: u32 = 1 << 6;
    pub(super) const HOUSING: u32 = 1 << 7;
    pub(super) const DOOR: u32 = 1 << 8;
    pub(super) const BATTERY: u32 = 1 << 9;
    pub(super) const CHARGING: u32 = 1 << 10;
    pub(super) const TEMPERATURE: u32 = 1 << 11;
    pub(super) const HUMIDITY: u32 = 1 << 12;
    pub(super) const SHOCK: u32 = 1 << 13;
    pub(super) const LIGHT: u32 = 1 << 14;
    pub(super) const PRESSURE: u32 = 1 << 15;
    pub(super) const FUEL: u32 = 1 << 16;
    pub(super) const EVENTS: u32 = 1 << 17;
    pub(super) const ALL: u32 = (1 << 18) - 1;
}

/// What a device reports: one observation without its device id (the session knows who is
/// speaking) and with a sequence number that is always present.
///
/// `seq` is the device's own report counter. It survives reconnections, unlike the record
/// counter, and is what acknowledgements refer to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Report {
    pub seq: u64,
    /// Every other field of the observation; its `seq` is ignored on encoding and set to
    /// `Some(seq)` on decoding.
    pub reading: Reading,
}

impl Report {
    /// The report of an observation whose `seq` is set; `None` when it is not.
    pub fn from_observation(o: &Observation) -> Option<Report> {
        Some(Report {
            seq: o.seq?,
            reading: o.reading(),
        })
    }

    /// The contract's observation for the device that sent it.
    pub fn observation(&self, device: DeviceId) -> Observation {
        let mut reading = self.reading;
        reading.seq = Some(self.seq);
        reading.with_device(device)
    }

    /// Appends the report body: seq, time, field map and the fields present.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let r = &self.reading;
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&r.t.unix_ms().to_be_bytes());
        let mut f = Fields::default();
        if let (Some(lat), Some(lon)) = (r.lat, r.lon) {
            f.float(bit::POSITION, Some(lat));
            f.float(0, Some(lon));
        }
        f.byte(bit::FIX, r.fix.map(u8::from));
        f.float(bit::ACCURACY, r.accuracy_m);
        f.float(bit::SPEED, r.speed_kmh);
        f.float(bit::COURSE, r.course_deg);
        f.byte(bit::LOCK, r.lock.map(|s| u8::from(s == LockState::Locked)));
        f.byte(bit::ROPE, r.rope.map(|s| u8::from(s == RopeState::Cut)));
        f.byte(
            bit::HOUSING,
            r.housing.map(|s| u8::from(s == HousingState::Breached)),
        );
        f.byte(bit::DOOR, r.door.map(|s| u8::from(s == DoorState::Open)));
        f.float(bit::BATTERY, r.battery_pct);
        f.byte(bit::CHARGING, r.charging.map(u8::from));
        f.float(bit::TEMPERATURE, r.temperature_c);
        f.float(bit::HUMIDITY, r.humidity_pct);
        f.float(bit::SHOCK, r.shock_g);
        f.float(bit::LIGHT, r.light_lux);
        f.float(bit::PRESSURE, r.pressure_hpa);
        f.float(bit::FUEL, r.fuel_pct);
        if !r.events.is_empty() {
            f.map |= bit::EVENTS;
            f.bytes
                .extend_from_slice(&event_bits(r.events).to_be_bytes());
        }
        out.extend_from_slice(&f.map.to_be_bytes());
        out.extend_from_slice(&f.bytes);
    }

    /// Reads a report body and checks its values as `Observation::validate` does.
    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Result<Report, DecodeError> {
        let seq = r.u64("seq")?;
        let ms = r.i64("t")?;
        if !(Timestamp::MIN.unix_ms()..=Timestamp::MAX.unix_ms()).contains(&ms) {
            return Err(DecodeError::BadValue {
                field: "t",
                value: ms as u64,
            });
        }
        let mut reading = Reading::empty(Timestamp::from_unix_ms(ms));
        let map = r.u32("field map")?;
        if map & !bit::ALL != 0 {
            return Err(DecodeError::BadValue {
                field: "field map",
                value: u64::from(map),
            });
        }
        let has = |flag: u32| map & flag != 0;
        if has(bit::POSITION) {
            reading.lat = Some(r.f64("lat")?);
            reading.lon = Some(r.f64("lon")?);
        }
        if has(bit::FIX) {
            reading.fix = Some(r.bool("fix")?);
        }
        if has(bit::ACCURACY) {
            reading.accuracy_m = Some(r.f64("accuracy_m")?);
        }
        if has(bit::SPEED) {
            reading.speed_kmh = Some(r.f64("speed_kmh")?);
        }
        if has(bit::COURSE) {
            reading.course_deg = Some(r.f64("course_deg")?);
        }
        if has(bit::LOCK) {
            reading.lock = Some(if r.bool("lock")? {
                LockState::Locked
            } else {
                LockState::Unlocked
            });
        }
        if has(bit::ROPE) {
            reading.rope = Some(if r.bool("rope")? {
                RopeState::Cut
            } else {
                RopeState::Intact
            });
        }
        if has(bit::HOUSING) {
            reading.housing = Some(if r.bool("housing")? {
                HousingState::Breached
            } else {
                HousingState::Intact
            });
        }
        if has(bit::DOOR) {
            reading.door = Some(if r.bool("door")? {
                DoorState::Open
            } else {
                DoorState::Closed
            });
        }
        if has(bit::BATTERY) {
            reading.battery_pct = Some(r.f64("battery_pct")?);
        }
        if has(bit::CHARGING) {
            reading.charging = Some(r.bool("charging")?);
        }
        if has(bit::TEMPERATURE) {
            reading.temperature_c = Some(r.f64("temperature_c")?);
        }
        if has(bit::HUMIDITY) {
            reading.humidity_pct = Some(r.f64("humidity_pct")?);
        }
        if has(bit::SHOCK) {
            reading.shock_g = Some(r.f64("shock_g")?);
        }
        if has(bit::LIGHT) {
            reading.light_lux = Some(r.f64("light_lux")?);
        }
        if has(bit::PRESSURE) {
            reading.pressure_hpa = Some(r.f64("pressure_hpa")?);
        }
        if has(bit::FUEL) {
            reading.fuel_pct = Some(r.f64("fuel_pct")?);
        }
        if has(bit::EVENTS) {
            let bits = r.u16("events")?;
            let known = (1u16 << EVENT_BITS.len()) - 1;
            // An empty set is written by leaving the bit out, so zero is not an encoding.
            if bits == 0 || bits & !known != 0 {
                return Err(DecodeError::BadValue {
                    field: "events",
                    value: u64::from(bits),
                });
            }
            for (i, e) in EVENT_BITS.into_iter().enumerate() {
                if bits & (1 << i) != 0 {
                    reading.events.insert(e);
                }
            }
        }
        reading.seq = Some(seq);
        reading
            .validate()
            .map_err(DecodeError::InvalidObservation)?;
        // Negative zero is a second encoding of zero; the observation cannot tell them apart.
        for v in [
            reading.lat,
            reading.lon,
            reading.accuracy_m,
            reading.speed_kmh,
            reading.course_deg,
            reading.battery_pct,
            reading.temperature_c,
            reading.humidity_pct,
            reading.shock_g,
            reading.light_lux,
            reading.pressure_hpa,
            reading.fuel_pct,
        ]
        .into_iter()
        .flatten()
        {
            if v == 0.0 && v.is_sign_negative() {
                return Err(DecodeError::BadValue {
                    field: "report",
                    value: v.to_bits(),
                });
            }
        }
        Ok(Report { seq, reading })
    }
}

/// The optional fields of a report being written, and the map of which are present.
#[derive(Default)]
struct Fields {
    map: u32,
    bytes: Vec<u8>,
}

impl Fields {
    fn float(&mut self, flag: u32, v: Option<f64>) {
        if let Some(v) = v {
            self.map |= flag;
            // Negative zero is written as zero: one value, one encoding.
            let v = if v == 0.0 { 0.0 } else { v };
            self.bytes.extend_from_slice(&v.to_be_bytes());
        }
    }

    fn byte(&mut self, flag: u32, v: Option<u8>) {
        if let Some(v) = v {
            self.map |= flag;
            self.bytes.push(v);
        }
    }
}

fn event_bits(events: DeviceEvents) -> u16 {
    EVENT_BITS
        .into_iter()
        .enumerate()
        .filter(|(_, e)| events.contains(*e))
        .fold(0, |bits, (i, _)| bits | 1 << i)
}

/// The longest reporting interval a device can be told to use: one day.
pub const MAX_REPORT_INTERVAL_S: u32 = 86_400;

/// A command from the platform to a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Lock for a transit. The device signs the resulting report as seal evidence.
    Seal { transit: Option<TransitId> },
    /// Unlock. The platform sends it only once the unseal is authorised; the device signs the
    /// resulting report as unseal evidence.
    Unseal { transit: Option<TransitId> },
    /// Report every `seconds` (1 to [`MAX_REPORT_INTERVAL_S`]).
    SetReportInterval { seconds: u32 },
    /// Send a report of the current state now.
    QueryStatus,
}

/// How a device answered a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommandStatus {
    Done = 0,
    /// The device will not do it in its state (sealing with the rope cut, say).
    Refused = 1,
    /// The device tried and failed (a jammed lock).
    Failed = 2,
    /// The device does not know the command.
    Unsupported = 3,
}

/// A device's answer to a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandResult {
    /// The id the platform gave the command.
    pub id: u32,
    pub status: CommandStatus,
    /// The report that shows the effect (the seal evidence, the status asked for).
    pub report_seq: Option<u64>,
}

/// The most reports one batch message carries. The record's length bounds a batch too
/// ([`MAX_MESSAGE_LEN`](crate::MAX_MESSAGE_LEN), 2024 bytes): 64 of the shortest reports
/// (time only, 21 bytes each) fit, 32 with position, fix, accuracy, speed, battery and lock
/// (63 bytes each), 7 of the longest (every field and seal evidence, up to 260 bytes each).
pub const MAX_BATCH_REPORTS: usize = 64;

/// One report of a batch: exactly what a report message carries after its type byte.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchReport {
    pub report: Report,
    /// Present on seal, unseal and tamper reports: each report of a batch keeps its own
    /// evidence, verifiable without the others.
    pub attestation: Option<Attestation>,
}

/// Several reports in one record, as devices send stored positions (JT/T 808's 0x0704 does
/// the same): 2 to [`MAX_BATCH_REPORTS`] of them, their `seq` strictly increasing.
///
/// The bounds are checked when a batch is made, so every batch encodes to bytes that decode
/// back to it; one report travels as a report message instead, so that it has one encoding.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    reports: Vec<BatchReport>,
}

impl Batch {
    /// A batch of `reports`, oldest first; `None` unless there are 2 to
    /// [`MAX_BATCH_REPORTS`] of them with strictly increasing `seq`.
    pub fn new(reports: Vec<BatchReport>) -> Option<Batch> {
        let increasing = reports
            .windows(2)
            .all(|w| w[0].report.seq < w[1].report.seq);
        ((2..=MAX_BATCH_REPORTS).contains(&reports.len()) && increasing)
            .then_some(Batch { reports })
    }

    pub fn reports(&self) -> &[BatchReport] {
        &self.reports
    }

    pub fn into_reports(self) -> Vec<BatchReport> {
        self.reports
    }
}

/// Appends what follows a report message's type byte: the report body, then `0`, or `1` and
/// the attestation. A batch carries its reports in the same form.
pub(crate) fn encode_report_item(
    report: &Report,
    attestation: Option<&Attestation>,
    out: &mut Vec<u8>,
) {
    report.encode_into(out);
    match attestation {
        None => out.push(0),
        Some(a) => {
            out.push(1);
            encode_context(out, a.kind, a.command, a.transit.as_ref());
            out.extend_from_slice(&a.signature);
        }
    }
}

fn decode_report_item(r: &mut Reader<'_>) -> Result<BatchReport, DecodeError> {
    let report = Report::decode_from(r)?;
    let attestation = if r.bool("evidence flag")? {
        let (kind, command, transit) = decode_context(r)?;
        Some(Attestation {
            kind,
            command,
            transit,
            signature: r.array("evidence signature")?,
        })
    } else {
        None
    };
    Ok(BatchReport {
        report,
        attestation,
    })
}

/// A message inside a record.
///
/// ```text
/// type 1  report          device → platform   report body, then 0, or 1 and an attestation
/// type 2  ack             platform → device   seq (8): every report up to it is durable
/// type 3  command         platform → device   id (4), command
/// type 4  command result  device → platform   id (4), status (1), report seq (0, or 1 and 8)
/// type 5  report batch    device → platform   count (1, 2 to 64), then each report as in type 1
/// ```
// Reports are most of the traffic and are handled one at a time; boxing them would add an
// allocation per report to save stack space for the rare small variants.
#[expect(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Report {
        report: Report,
        /// Present on seal, unseal and tamper reports.
        attestation: Option<Attestation>,
    },
    /// Every report with `seq` up to this one is durable on the platform. Sent only once it
    /// is: a device keeps a report until it is acknowledged and sends it again after a
    /// reconnection.
    Ack {
        seq: u64,
    },
    Command {
        id: u32,
        command: Command,
    },
    CommandResult(CommandResult),
    /// Several reports in one record, each as a report message carries it.
    Batch(Batch),
}

impl Message {
    /// Whether the device sends this message (the platform sends the others).
    pub fn from_device(&self) -> bool {
        matches!(
            self,
            Message::Report { .. } | Message::CommandResult(_) | Message::Batch(_)
        )
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self {
            Message::Report {
                report,
                attestation,
            } => {
                out.push(1);
                encode_report_item(report, attestation.as_ref(), &mut out);
            }
            Message::Batch(batch) => {
                out.push(5);
                // `Batch::new` keeps the count within 2 to 64.
                out.push(batch.reports.len() as u8);
                for item in &batch.reports {
                    encode_report_item(&item.report, item.attestation.as_ref(), &mut out);
                }
            }
            Message::Ack { seq } => {
                out.push(2);
                out.extend_from_slice(&seq.to_be_bytes());
            }
            Message::Command { id, command } => {
                out.push(3);
                out.extend_from_slice(&id.to_be_bytes());
                match command {
                    Command::Seal { transit } | Command::Unseal { transit } => {
                        out.push(if matches!(command, Command::Seal { .. }) {
                            1
                        } else {
                            2
                        });
                        put_short_str(&mut out, transit.as_ref().map_or("", |t| t.as_str()));
                    }
                    Command::SetReportInterval { seconds } => {
                        out.push(3);
                        out.extend_from_slice(&seconds.to_be_bytes());
                    }
                    Command::QueryStatus => out.push(4),
                }
            }
            Message::CommandResult(r) => {
                out.push(4);
                out.extend_from_slice(&r.id.to_be_bytes());
                out.push(r.status as u8);
                match r.report_seq {
                    None => out.push(0),
                    Some(seq) => {
                        out.push(1);
                        out.extend_from_slice(&seq.to_be_bytes());
                    }
                }
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let mut r = Reader::new(bytes);
        let message = match r.u8("message type")? {
            1 => {
                let BatchReport {
                    report,
                    attestation,
                } = decode_report_item(&mut r)?;
                Message::Report {
                    report,
                    attestation,
                }
            }
            5 => {
                let count = r.u8("batch count")?;
                if !(2..=MAX_BATCH_REPORTS).contains(&usize::from(count)) {
                    return Err(DecodeError::BadValue {
                        field: "batch count",
                        value: u64::from(count),
                    });
                }
                let mut reports: Vec<BatchReport> = Vec::with_capacity(usize::from(count));
                for _ in 0..count {
                    let item = decode_report_item(&mut r)?;
                    // Oldest first, each report once: what a device keeps is in `seq` order.
                    if let Some(last) = reports.last()
                        && item.report.seq <= last.report.seq
                    {
                        return Err(DecodeError::BadValue {
                            field: "batch seq",
                            value: item.report.seq,
                        });
                    }
                    reports.push(item);
                }
                Message::Batch(Batch { reports })
            }
            2 => Message::Ack {
                seq: r.u64("ack seq")?,
            },
            3 => {
                let id = r.u32("command id")?;
                let command = match r.u8("command")? {
                    kind @ (1 | 2) => {
                        let transit = match r.short_str("transit id")? {
                            "" => None,
                            t => Some(t.parse().map_err(|_| DecodeError::BadText {
                                field: "transit id",
                            })?),
                        };
                        if kind == 1 {
                            Command::Seal { transit }
                        } else {
                            Command::Unseal { transit }
                        }
                    }
                    3 => {
                        let seconds = r.u32("report interval")?;
                        if !(1..=MAX_REPORT_INTERVAL_S).contains(&seconds) {
                            return Err(DecodeError::BadValue {
                                field: "report interval",
                                value: u64::from(seconds),
                            });
                        }
                        Command::SetReportInterval { seconds }
                    }
                    4 => Command::QueryStatus,
                    value => {
                        return Err(DecodeError::BadValue {
                            field: "command",
                            value: u64::from(value),
                        });
                    }
                };
                Message::Command { id, command }
            }
            4 => {
                let id = r.u32("command id")?;
                let status = match r.u8("command status")? {
                    0 => CommandStatus::Done,
                    1 => CommandStatus::Refused,
                    2 => CommandStatus::Failed,
                    3 => CommandStatus::Unsupported,
                    value => {
                        return Err(DecodeError::BadValue {
                            field: "command status",
                            value: u64::from(value),
                        });
                    }
                };
                let report_seq = if r.bool("report flag")? {
                    Some(r.u64("report seq")?)
                } else {
                    None
                };
                Message::CommandResult(CommandResult {
                    id,
                    status,
                    report_seq,
                })
            }
            t => return Err(DecodeError::UnknownType(t)),
        };
        r.finish("message")?;
        Ok(message)
    }
}
