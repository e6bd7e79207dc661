//! Smart containers: what a container's device cloud sends, mapped into the contract's
//! observations (docs/containers.md).
//!
//! Two payload formats are read:
//!
//! - **DCSA IoT events** ([`Format::Dcsa`]): the IoT events of the DCSA Track & Trace standard
//!   (`eventType` `IOT`, `iotEventCode` `DRO` door opened or `LOC` location update, and `DRC`
//!   door closed, which vendors send beside them), naming the container by its
//!   `equipmentReference`, flat (Track & Trace 2.2) or nested in `equipmentDetails` and
//!   `iotDetails` (3.0).
//! - **UN/CEFACT smart-container readings** ([`Format::Uncefact`]): the data elements of the
//!   UN/CEFACT Smart Containers business requirements specification (equipment, device, event
//!   time, geo-location, door status, temperature, humidity, shock, light, battery, tamper),
//!   which defines what is exchanged but not how: sealwatch reads them as the flat JSON
//!   object documented in docs/containers.md.
//!
//! A report names a **container**, not a device: [`ContainerReport`] carries the container
//! number and a [`model::Reading`] (an observation without its device). Which device it is
//! attributed to is decided by the container's pairings at the report's time, in the service.
//!
//! This crate does no I/O and reads no clock (like the codec crates): bytes in, reports out.
//! It never panics on any input; every error names the field that is wrong.

use std::fmt;
use std::str::FromStr;

use model::{ContainerNumber, DeviceEvent, DeviceId, DoorState, Reading, Timestamp};
use serde_json::{Map, Value};

/// The most reports one payload may carry: a payload is a batch from one vendor cloud, and a
/// bound keeps what one message costs the writer predictable.
pub const MAX_REPORTS_PER_PAYLOAD: usize = 1000;

/// Which standard a payload follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// DCSA Track & Trace IoT events.
    Dcsa,
    /// UN/CEFACT smart-container readings.
    Uncefact,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Dcsa => "dcsa",
            Format::Uncefact => "uncefact",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Format, ParseError> {
        match s {
            "dcsa" => Ok(Format::Dcsa),
            "uncefact" => Ok(Format::Uncefact),
            other => Err(ParseError::new(
                "format",
                format!("{other:?} is not a payload format; expected dcsa or uncefact"),
            )),
        }
    }
}

/// One reading about one container.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerReport {
    pub container: ContainerNumber,
    /// The device that measured it, when the payload says (several devices can be paired to
    /// one container: an embedded unit and an affixed one).
    pub device: Option<DeviceId>,
    /// The observation without its device: the pairing at `reading.t` supplies it.
    pub reading: Reading,
    /// The sender's id for the event (DCSA `eventID`), for logs.
    pub event_id: Option<String>,
}

/// Why a payload or a topic was refused: the field (a JSON path such as `[2].eventDateTime`)
/// and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ParseError {
    pub field: String,
    pub reason: String,
}

impl ParseError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> ParseError {
        ParseError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Reads a payload: one JSON object, or an array of them (at most
/// [`MAX_REPORTS_PER_PAYLOAD`]). Fields that are not mapped are ignored; the first field that
/// is wrong fails the whole payload, naming it.
pub fn parse(format: Format, payload: &[u8]) -> Result<Vec<ContainerReport>, ParseError> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| ParseError::new("payload", format!("not JSON: {e}")))?;
    match value {
        Value::Object(o) => Ok(vec![parse_one(format, &o, "")?]),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(ParseError::new("payload", "an empty array reports nothing"));
            }
            if items.len() > MAX_REPORTS_PER_PAYLOAD {
                return Err(ParseError::new(
                    "payload",
                    format!(
                        "{} reports; at most {MAX_REPORTS_PER_PAYLOAD} per payload",
                        items.len()
                    ),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let at = format!("[{i}]");
                    match item {
                        Value::Object(o) => parse_one(format, o, &at),
                        other => Err(ParseError::new(
                            at,
                            format!("expected an object, found {}", kind(other)),
                        )),
                    }
                })
                .collect()
        }
        other => Err(ParseError::new(
            "payload",
            format!("expected an object or an array, found {}", kind(&other)),
        )),
    }
}

fn parse_one(
    format: Format,
    o: &Map<String, Value>,
    at: &str,
) -> Result<ContainerReport, ParseError> {
    let fields = Fields { o, at };
    match format {
        Format::Dcsa => dcsa(fields),
        Format::Uncefact => uncefact(fields),
    }
}

/// The topic layout: `{prefix}/{vendor}/{container}/{format}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topic {
    /// The vendor cloud that published it (a label for logs and counters).
    pub vendor: String,
    pub container: ContainerNumber,
    pub format: Format,
}

/// Reads a topic of the layout `{prefix}/{vendor}/{container}/{format}`; `prefix` has no
/// trailing slash.
pub fn parse_topic(prefix: &str, topic: &str) -> Result<Topic, ParseError> {
    let rest = topic
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| {
            ParseError::new(
                "topic",
                format!("{topic:?} is not under {prefix:?}/{{vendor}}/{{container}}/{{format}}"),
            )
        })?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [vendor, container, format] = parts[..] else {
        return Err(ParseError::new(
            "topic",
            format!("{topic:?}: expected {prefix}/{{vendor}}/{{container}}/{{format}}"),
        ));
    };
    if !valid_vendor(vendor) {
        return Err(ParseError::new(
            "topic.vendor",
            format!("{vendor:?}: 1 to 64 characters from A-Z, a-z, 0-9, '.', '_', '-'"),
        ));
    }
    let container = container
        .parse::<ContainerNumber>()
        .map_err(|e| ParseError::new("topic.container", e.to_string()))?;
    let format = format.parse::<Format>().map_err(|e| ParseError {
        field: "topic.format".into(),
        reason: e.reason,
    })?;
    Ok(Topic {
        vendor: vendor.to_owned(),
        container,
        format,
    })
}

/// Whether `name` can name a vendor (in a topic, a URL and the configuration).
pub fn valid_vendor(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A JSON object being read, with the path to it for errors.
#[derive(Clone, Copy)]
struct Fields<'a> {
    o: &'a Map<String, Value>,
    at: &'a str,
}

impl<'a> Fields<'a> {
    fn path(&self, name: &str) -> String {
        if self.at.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.at)
        }
    }

    fn err(&self, name: &str, reason: impl Into<String>) -> ParseError {
        ParseError::new(self.path(name), reason)
    }

    /// A field that is present and not null.
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.o.get(name).filter(|v| !v.is_null())
    }

    fn str(&self, name: &str) -> Result<Option<&'a str>, ParseError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.err(name, format!("expected a string, found {}", kind(other)))),
        }
    }

    /// A number, also accepted as a decimal string (DCSA writes coordinates as strings).
    fn number(&self, name: &str) -> Result<Option<f64>, ParseError> {
        let v = match self.get(name) {
            None => return Ok(None),
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            Some(other) => {
                return Err(self.err(name, format!("expected a number, found {}", kind(other))));
            }
        };
        match v {
            Some(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(self.err(name, "expected a finite decimal number")),
        }
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, ParseError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.err(
                name,
                format!("expected true or false, found {}", kind(other)),
            )),
        }
    }

    fn timestamp(&self, name: &str) -> Result<Option<Timestamp>, ParseError> {
        self.str(name)?
            .map(|s| {
                s.parse::<Timestamp>()
                    .map_err(|e| self.err(name, e.to_string()))
            })
            .transpose()
    }

    fn container(&self, name: &str) -> Result<Option<ContainerNumber>, ParseError> {
        self.str(name)?
            .map(|s| {
                s.parse()
                    .map_err(|e: model::IdError| self.err(name, e.to_string()))
            })
            .transpose()
    }

    fn device(&self, name: &str) -> Result<Option<DeviceId>, ParseError> {
        self.str(name)?
            .map(|s| {
                s.parse()
                    .map_err(|e: model::IdError| self.err(name, e.to_string()))
            })
            .transpose()
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A nested object with its own path (`eventLocation.latitude`): `Fields` borrows its path,
/// so nested paths are owned here.
struct Nested<'a> {
    o: &'a Map<String, Value>,
    at: String,
}

impl<'a> Nested<'a> {
    fn of(parent: &Fields<'a>, name: &str) -> Result<Option<Nested<'a>>, ParseError> {
        match parent.get(name) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(Nested {
                o,
                at: parent.path(name),
            })),
            Some(other) => {
                Err(parent.err(name, format!("expected an object, found {}", kind(other))))
            }
        }
    }
    fn fields(&self) -> Fields<'_> {
        Fields {
            o: self.o,
            at: &self.at,
        }
    }
}

/// A field read from the object itself or, failing that, from a nested object (DCSA 3.0
/// moved `equipmentReference` into `equipmentDetails` and the IoT codes into `iotDetails`).
fn str_here_or_in(
    f: &Fields<'_>,
    nested: &Option<Nested<'_>>,
    name: &str,
) -> Result<Option<(String, String)>, ParseError> {
    if let Some(s) = f.str(name)? {
        return Ok(Some((s.to_owned(), f.path(name))));
    }
    if let Some(n) = nested {
        let nf = n.fields();
        if let Some(s) = nf.str(name)? {
            return Ok(Some((s.to_owned(), nf.path(name))));
        }
    }
    Ok(None)
}

/// The IoT event codes read (DCSA `iotEventCode`).
const DCSA_CODES: &str = "DRO (door opened), DRC (door closed), LOC (location update)";

fn dcsa(f: Fields<'_>) -> Result<ContainerReport, ParseError> {
    if let Some(t) = f.str("eventType")?
        && t != "IOT"
    {
        return Err(f.err(
            "eventType",
            format!("{t:?} is not a device report; expected IOT"),
        ));
    }
    // Only actual events are reports: planned and estimated ones say nothing about a door.
    let classification = Nested::of(&f, "eventClassification")?;
    let classifier = match f.str("eventClassifierCode")? {
        Some(c) => Some((c.to_owned(), f.path("eventClassifierCode"))),
        None => str_here_or_in(&f, &classification, "eventClassifierCode")?,
    };
    if let Some((code, path)) = classifier
        && code != "ACT"
    {
        return Err(ParseError::new(
            path,
            format!("{code:?}: only actual (ACT) events are device reports"),
        ));
    }
    let t = f
        .timestamp("eventDateTime")?
        .ok_or_else(|| f.err("eventDateTime", "missing (RFC 3339 with an offset)"))?;
    let equipment = Nested::of(&f, "equipmentDetails")?;
    let (reference, path) =
        str_here_or_in(&f, &equipment, "equipmentReference")?.ok_or_else(|| {
            f.err(
                "equipmentReference",
                "missing (the ISO 6346 container number, also read from equipmentDetails)",
            )
        })?;
    let container = reference
        .parse::<ContainerNumber>()
        .map_err(|e| ParseError::new(path, e.to_string()))?;
    let iot = Nested::of(&f, "iotDetails")?;
    let (code, code_path) = str_here_or_in(&f, &iot, "iotEventCode")?.ok_or_else(|| {
        f.err(
            "iotEventCode",
            format!("missing (also read from iotDetails); expected {DCSA_CODES}"),
        )
    })?;
    let mut reading = Reading::empty(t);
    match code.as_str() {
        "DRO" => reading.door = Some(DoorState::Open),
        "DRC" => reading.door = Some(DoorState::Closed),
        "LOC" => {}
        other => {
            return Err(ParseError::new(
                code_path,
                format!("{other:?} is not an IoT event code read here; expected {DCSA_CODES}"),
            ));
        }
    }
    if let Some(loc) = Nested::of(&f, "eventLocation")? {
        let lf = loc.fields();
        // DCSA 3.0 nests the coordinates in `geoCoordinate`; 2.2 has them on the location.
        let geo = Nested::of(&lf, "geoCoordinate")?;
        let (lat, lon) = match &geo {
            Some(g) => coordinates(&g.fields(), "latitude", "longitude")?,
            None => coordinates(&lf, "latitude", "longitude")?,
        };
        reading.lat = lat;
        reading.lon = lon;
    }
    if code == "LOC" && reading.lat.is_none() {
        return Err(f.err(
            "eventLocation",
            "a location update (LOC) needs eventLocation with latitude and longitude",
        ));
    }
    let (device, event_id) = (f.device("deviceReference")?, f.str("eventID")?);
    let names = [
        ("lat", "eventLocation.latitude"),
        ("lon", "eventLocation.longitude"),
    ];
    finish(container, device, reading, event_id, &f, &names)
}

/// Latitude and longitude, both or neither, within WGS 84 bounds.
fn coordinates(
    f: &Fields<'_>,
    lat_name: &str,
    lon_name: &str,
) -> Result<(Option<f64>, Option<f64>), ParseError> {
    let (lat, lon) = (f.number(lat_name)?, f.number(lon_name)?);
    match (lat, lon) {
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                return Err(f.err(lat_name, format!("{lat} is outside -90 to 90")));
            }
            if !(-180.0..=180.0).contains(&lon) {
                return Err(f.err(lon_name, format!("{lon} is outside -180 to 180")));
            }
            Ok((Some(lat), Some(lon)))
        }
        (None, None) => Ok((None, None)),
        (Some(_), None) => Err(f.err(lon_name, format!("missing beside {lat_name}"))),
        (None, Some(_)) => Err(f.err(lat_name, format!("missing beside {lon_name}"))),
    }
}

/// Checks the reading as the contract does, naming the payload's field rather than the
/// observation's where they differ.
fn finish(
    container: ContainerNumber,
    device: Option<DeviceId>,
    reading: Reading,
    event_id: Option<&str>,
    f: &Fields<'_>,
    names: &[(&str, &str)],
) -> Result<ContainerReport, ParseError> {
    reading.validate().map_err(|e| {
        let name = names
            .iter()
            .find(|(ours, _)| *ours == e.field)
            .map_or(e.field, |(_, theirs)| *theirs);
        f.err(name, e.reason)
    })?;
    Ok(ContainerReport {
        container,
        device,
        reading,
        // An id is for logs: bounded, whatever the sender wrote.
        event_id: event_id.map(|s| s.chars().take(100).collect()),
    })
}

fn uncefact(f: Fields<'_>) -> Result<ContainerReport, ParseError> {
    let t = f
        .timestamp("eventTime")?
        .ok_or_else(|| f.err("eventTime", "missing (RFC 3339 with an offset)"))?;
    let container = f
        .container("equipmentId")?
        .ok_or_else(|| f.err("equipmentId", "missing (the ISO 6346 container number)"))?;
    let mut reading = Reading::empty(t);
    if let Some(loc) = Nested::of(&f, "geoLocation")? {
        let lf = loc.fields();
        let (lat, lon) = coordinates(&lf, "latitude", "longitude")?;
        if lat.is_none() {
            return Err(lf.err(
                "latitude",
                "missing (geoLocation needs latitude and longitude)",
            ));
        }
        reading.lat = lat;
        reading.lon = lon;
        reading.accuracy_m = lf.number("accuracy")?;
    }
    if let Some(door) = f.str("doorStatus")? {
        reading.door = Some(match door.to_ascii_uppercase().as_str() {
            "OPEN" | "OPENED" => DoorState::Open,
            "CLOSED" | "CLOSE" => DoorState::Closed,
            _ => {
                return Err(f.err("doorStatus", format!("{door:?}: expected OPEN or CLOSED")));
            }
        });
    }
    reading.temperature_c = measure(&f, "temperature", &TEMPERATURE_UNITS)?;
    reading.humidity_pct = measure(&f, "humidity", &[("P1", 1.0, 0.0)])?;
    reading.shock_g = measure(
        &f,
        "shock",
        &[("G", 1.0, 0.0), ("MSK", 1.0 / 9.806_65, 0.0)],
    )?;
    reading.light_lux = measure(&f, "light", &[("LUX", 1.0, 0.0)])?;
    reading.pressure_hpa = measure(&f, "pressure", &[("A97", 1.0, 0.0), ("PAL", 0.01, 0.0)])?;
    reading.battery_pct = measure(&f, "batteryLevel", &[("P1", 1.0, 0.0)])?;
    if f.bool("tamper")? == Some(true) {
        reading.events.insert(DeviceEvent::Tamper);
    }
    if f.bool("deviceRemoved")? == Some(true) {
        reading.events.insert(DeviceEvent::DeviceRemoved);
    }
    let (device, event_id) = (f.device("deviceId")?, f.str("eventId")?);
    let names = [
        ("lat", "geoLocation.latitude"),
        ("lon", "geoLocation.longitude"),
        ("accuracy_m", "geoLocation.accuracy"),
        ("temperature_c", "temperature"),
        ("humidity_pct", "humidity"),
        ("shock_g", "shock"),
        ("light_lux", "light"),
        ("pressure_hpa", "pressure"),
        ("battery_pct", "batteryLevel"),
    ];
    finish(container, device, reading, event_id, &f, &names)
}

/// UN/ECE Recommendation 20 unit codes for temperature: (code, factor, offset) to °C.
const TEMPERATURE_UNITS: [(&str, f64, f64); 3] = [
    ("CEL", 1.0, 0.0),
    ("FAH", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
    ("KEL", 1.0, -273.15),
];

/// A measure: a plain number in the first unit listed, or `{"value": x, "unit": CODE}` with a
/// UN/ECE Recommendation 20 unit code among `units` (code, factor, offset).
fn measure(
    f: &Fields<'_>,
    name: &str,
    units: &[(&str, f64, f64)],
) -> Result<Option<f64>, ParseError> {
    if !matches!(f.get(name), Some(Value::Object(_))) {
        return f.number(name);
    }
    if let Some(m) = Nested::of(f, name)? {
        let mf = m.fields();
        let value = mf
            .number("value")?
            .ok_or_else(|| mf.err("value", "missing"))?;
        let unit = mf.str("unit")?.unwrap_or(units[0].0);
        let Some((_, factor, offset)) = units.iter().find(|(code, _, _)| *code == unit) else {
            let known: Vec<&str> = units.iter().map(|u| u.0).collect();
            return Err(mf.err(
                "unit",
                format!(
                    "{unit:?} is not a unit read here; expected {}",
                    known.join(", ")
                ),
            ));
        };
        return Ok(Some(value * factor + offset));
    }
    f.number(name)
}
