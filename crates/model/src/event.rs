//! Events: what happened to a transit, beside its alarms (for timelines and `replay --events`).

use serde::{Deserialize, Serialize};

use crate::{AlarmKind, DeviceId, ReaderId, Timestamp, TransitId};

/// Kinds of event the supervisor emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Sealed,
    /// Left the departure zone.
    Departed,
    /// First entered the destination zone (or an officer recorded arrival).
    Arrived,
    Released,
    Inspection,
    UnsealAuthorized,
    Unsealed,
    Closed,
    DeadlineExtended,
    /// A checkpoint read that matched the declaration.
    CheckpointRead,
    /// An alarm's condition ended (the vehicle is back in its corridor, reports again...).
    AlarmCleared,
    /// An action the transit's state did not allow; nothing changed.
    ActionRejected,
    /// A later transit was sealed with this transit's device; its reports go there now.
    DeviceReassigned,
    /// Another device was paired with the transit before sealing (`detail` names both).
    DevicePaired,
    /// A declared checkpoint was passed (a read there, or a fix inside it); `detail` says
    /// whether in time.
    CheckpointPassed,
    /// An arrival gate did not authorise the unseal: `detail` lists the alarms that hold the
    /// transit for an officer.
    GateHold,
    /// The transit finished one of its declared legs (arrived at the leg's `to` zone).
    LegCompleted,
    /// The transit started its next declared leg.
    LegStarted,
    /// One seal of a transit with several devices was opened with authorisation (`device`
    /// names it); the transit stays supervised until its last seal is opened (`unsealed`).
    DeviceUnsealed,
}

/// One event. `alarm_kind` is set for `alarm_cleared`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub transit: TransitId,
    pub device: DeviceId,
    pub event: EventKind,
    pub t: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_kind: Option<AlarmKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The reader whose read caused the event: set for what a quick-mode gate did (`sealed`,
    /// `unseal_authorized`, `gate_hold`), so automatic unseals can be told from an officer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader: Option<ReaderId>,
}
