//! Alarms: what the supervisor raises, and how officers handle them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{CheckpointRead, DeviceId, Observation, Timestamp, TransitId};

/// Every kind of alarm in the contract, with its default grade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    RouteDeviation,
    IllegalStay,
    OvertimeStay,
    IllegalOpening,
    JourneyTimeout,
    CommunicationLoss,
    LowBattery,
    Tamper,
    UnauthorizedAction,
    DeviceFault,
    Environment,
    AbnormalFuel,
    SuspectedJamming,
    ClonedDevice,
    CheckpointMismatch,
}

impl AlarmKind {
    pub const ALL: [AlarmKind; 15] = [
        AlarmKind::RouteDeviation,
        AlarmKind::IllegalStay,
        AlarmKind::OvertimeStay,
        AlarmKind::IllegalOpening,
        AlarmKind::JourneyTimeout,
        AlarmKind::CommunicationLoss,
        AlarmKind::LowBattery,
        AlarmKind::Tamper,
        AlarmKind::UnauthorizedAction,
        AlarmKind::DeviceFault,
        AlarmKind::Environment,
        AlarmKind::AbnormalFuel,
        AlarmKind::SuspectedJamming,
        AlarmKind::ClonedDevice,
        AlarmKind::CheckpointMismatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::RouteDeviation => "route_deviation",
            AlarmKind::IllegalStay => "illegal_stay",
            AlarmKind::OvertimeStay => "overtime_stay",
            AlarmKind::IllegalOpening => "illegal_opening",
            AlarmKind::JourneyTimeout => "journey_timeout",
            AlarmKind::CommunicationLoss => "communication_loss",
            AlarmKind::LowBattery => "low_battery",
            AlarmKind::Tamper => "tamper",
            AlarmKind::UnauthorizedAction => "unauthorized_action",
            AlarmKind::DeviceFault => "device_fault",
            AlarmKind::Environment => "environment",
            AlarmKind::AbnormalFuel => "abnormal_fuel",
            AlarmKind::SuspectedJamming => "suspected_jamming",
            AlarmKind::ClonedDevice => "cloned_device",
            AlarmKind::CheckpointMismatch => "checkpoint_mismatch",
        }
    }

    /// Grades: 4 = the goods may already be compromised (act now); 3 = a likely violation that
    /// needs a patrol or a call; 2 = needs attention soon; 1 = maintenance. See docs/alarms.md.
    pub fn default_grade(self) -> u8 {
        match self {
            AlarmKind::IllegalOpening | AlarmKind::Tamper | AlarmKind::ClonedDevice => 4,
            AlarmKind::RouteDeviation
            | AlarmKind::IllegalStay
            | AlarmKind::CommunicationLoss
            | AlarmKind::UnauthorizedAction
            | AlarmKind::AbnormalFuel
            | AlarmKind::SuspectedJamming
            | AlarmKind::CheckpointMismatch => 3,
            AlarmKind::OvertimeStay
            | AlarmKind::JourneyTimeout
            | AlarmKind::DeviceFault
            | AlarmKind::Environment => 2,
            AlarmKind::LowBattery => 1,
        }
    }
}

impl fmt::Display for AlarmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What established an alarm: the observations or checkpoint reads behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Evidence {
    Read(CheckpointRead),
    Observation(Observation),
}

/// An alarm as the supervisor raises it. Field order is the contract's output order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    pub transit: TransitId,
    pub device: DeviceId,
    pub kind: AlarmKind,
    /// For `environment` alarms: the sensor (`temperature_c`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
    /// When the condition was established (for a timer, when it expired).
    pub t: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    pub grade: u8,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
}

/// How an alarm ended once handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    ConfirmedViolation,
    FalseAlarm,
    TechnicalFault,
    Authorised,
}

/// The handling lifecycle: open → acknowledged → dispatched → resolved (with an outcome) →
/// closed. Dispatch is optional: an officer may resolve an acknowledged alarm by a phone call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "outcome")]
pub enum AlarmState {
    Open,
    Acknowledged,
    Dispatched,
    Resolved(Outcome),
    Closed(Outcome),
}

/// A step an officer takes on an alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlarmStep {
    Acknowledge,
    Dispatch,
    /// A report from the scene or the centre (comments, photos): recorded, the state stays.
    Report,
    Resolve(Outcome),
    Close,
}

/// A step that the alarm's state does not allow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot {step} an alarm that is {state}")]
pub struct AlarmStepError {
    pub step: &'static str,
    pub state: &'static str,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Open => "open",
            AlarmState::Acknowledged => "acknowledged",
            AlarmState::Dispatched => "dispatched",
            AlarmState::Resolved(_) => "resolved",
            AlarmState::Closed(_) => "closed",
        }
    }

    pub fn apply(self, step: AlarmStep) -> Result<AlarmState, AlarmStepError> {
        use AlarmState as S;
        let next = match (self, step) {
            (S::Open, AlarmStep::Acknowledge) => Some(S::Acknowledged),
            (S::Acknowledged, AlarmStep::Dispatch) => Some(S::Dispatched),
            (S::Acknowledged | S::Dispatched, AlarmStep::Resolve(o)) => Some(S::Resolved(o)),
            (S::Resolved(o), AlarmStep::Close) => Some(S::Closed(o)),
            // Reports are taken until the alarm is closed: a patrol's photos may come after
            // the centre resolved it.
            (s, AlarmStep::Report) if !matches!(s, S::Closed(_)) => Some(s),
            _ => None,
        };
        next.ok_or(AlarmStepError {
            step: match step {
                AlarmStep::Acknowledge => "acknowledge",
                AlarmStep::Dispatch => "dispatch",
                AlarmStep::Report => "report on",
                AlarmStep::Resolve(_) => "resolve",
                AlarmStep::Close => "close",
            },
            state: self.as_str(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handling_lifecycle() {
        let s = AlarmState::Open;
        let s = s.apply(AlarmStep::Acknowledge).unwrap();
        let s = s.apply(AlarmStep::Dispatch).unwrap();
        let s = s.apply(AlarmStep::Resolve(Outcome::FalseAlarm)).unwrap();
        let s = s.apply(AlarmStep::Close).unwrap();
        assert_eq!(s, AlarmState::Closed(Outcome::FalseAlarm));
        let e = AlarmState::Open
            .apply(AlarmStep::Resolve(Outcome::Authorised))
            .unwrap_err();
        assert_eq!(e.to_string(), "cannot resolve an alarm that is open");
        assert!(s.apply(AlarmStep::Acknowledge).is_err());
        assert_eq!(
            AlarmState::Dispatched.apply(AlarmStep::Report),
            Ok(AlarmState::Dispatched),
            "a report keeps the state"
        );
        assert_eq!(
            s.apply(AlarmStep::Report).unwrap_err().to_string(),
            "cannot report on an alarm that is closed"
        );
        assert_eq!(
            serde_json::to_string(&AlarmState::Resolved(Outcome::ConfirmedViolation)).unwrap(),
            r#"{"state":"resolved","outcome":"confirmed_violation"}"#
        );
    }

    #[test]
    fn kinds_have_names_and_grades() {
        for k in AlarmKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert!((1..=4).contains(&k.default_grade()));
        }
    }
}
