//! The sealwatch domain model.
//!
//! Identifiers, transits, devices, readers, zones, observations, events and alarms. Every type
//! validates on construction (parsing or `validate()`), with errors that say what is wrong, so
//! the rest of sealwatch can trust what it holds.
//!
//! This crate does no I/O. It is shared by the supervisor, the store, the gateways and the API.

mod alarm;
mod device;
mod event;
mod geo;
mod ids;
mod input;
mod observation;
mod role;
mod time;
mod transit;

pub use alarm::{Alarm, AlarmKind, AlarmState, AlarmStep, AlarmStepError, Evidence, Outcome};
pub use device::{
    Device, DeviceKind, DeviceState, LifecyclePhase, Reader, ReaderKind, Station, Zone, ZoneKind,
};
pub use event::{Event, EventKind};
pub use geo::{Geometry, GeometryError};
pub use ids::{
    ContainerNumber, DeclarationNumber, DeviceId, IdError, LicencePlate, Mrn, ReaderId, SealId,
    StationId, TrainNumber, TransitId, ZoneId, iso6346_check_digit,
};
pub use input::{Action, ActionKind, CheckpointRead, Gate};
pub use observation::{
    DeviceEvent, DeviceEvents, DoorState, HousingState, LatLon, LockState, Observation,
    ObservationError, Reading, RopeState,
};
pub use role::Role;
pub use time::{Duration, DurationError, Timestamp, TimestampError};
pub use transit::{
    CargoLine, Checkpoint, Declaration, Document, Driver, Inspection, Leg, LegMode, Limits, Mode,
    Offices, Personal, RuleSet, Rules, Sensor, Transit, TransitDevice, TransitState, Vehicle,
};
