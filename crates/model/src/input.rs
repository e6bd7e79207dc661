//! Inputs other than device reports: checkpoint reads and officers' actions.

use serde::{Deserialize, Serialize};

use crate::{DeviceId, ReaderId, Timestamp, TransitId, ZoneId};

/// A reader's read of a passive or semi-active device (or of an active device's tag).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRead {
    pub t: Timestamp,
    pub reader: ReaderId,
    pub zone: ZoneId,
    pub device: DeviceId,
    /// Whether the reader found the device physically intact.
    #[serde(default = "yes")]
    pub intact: bool,
    /// The data read from the device; absent when the tag could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
    /// Set when the read comes from a fixed reader at a quick-mode gate: a departure gate
    /// seals a declared transit's device, an arrival gate authorises its unseal when no
    /// serious alarm was raised (docs/alarms.md, "Quick mode").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
}

/// Which quick-mode gate a fixed reader stands at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    Departure,
    Arrival,
}

fn yes() -> bool {
    true
}

/// What an officer (or a gate) does to a transit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Seal,
    Arrive,
    Release,
    Inspect,
    AuthorizeUnseal,
    /// Unsealing recorded by an officer (a passive seal cut at the destination).
    Unseal,
    Close,
    /// A new time limit (`deadline` is required), for a breakdown or a border queue.
    ExtendDeadline,
    /// Pair another device (`device` is required) with a transit not yet sealed: the officer
    /// took a different one from the station's stock than was declared.
    Pair,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Seal => "seal",
            ActionKind::Arrive => "arrive",
            ActionKind::Release => "release",
            ActionKind::Inspect => "inspect",
            ActionKind::AuthorizeUnseal => "authorize_unseal",
            ActionKind::Unseal => "unseal",
            ActionKind::Close => "close",
            ActionKind::ExtendDeadline => "extend_deadline",
            ActionKind::Pair => "pair",
        }
    }
}

/// An action on a transit at a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub t: Timestamp,
    pub transit: TransitId,
    pub action: ActionKind,
    /// For `extend_deadline`: the new time limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    /// For `pair`: the device now sealing the transit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<crate::DeviceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
