//! Devices, readers, zones and stations.

use serde::{Deserialize, Serialize};

use crate::{ContainerNumber, DeviceId, Geometry, ReaderId, SealId, StationId, Timestamp, ZoneId};

/// What kind of Smart Security Device (§4 of the WCO report).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// RFID, no battery: read at checkpoints only.
    Passive,
    /// Battery, event-driven: read at checkpoints, no real-time position.
    SemiActive,
    /// GNSS + cellular e-seal or e-lock reporting in real time.
    Active,
    /// IoT unit built into one container for life.
    SmartContainerEmbedded,
    /// IoT unit affixed to a container, paired to its number for a time window.
    SmartContainerAffixed,
}

impl DeviceKind {
    /// Whether the device reports by itself (so silence means something).
    pub fn reports_in_real_time(self) -> bool {
        !matches!(self, DeviceKind::Passive | DeviceKind::SemiActive)
    }
}

/// Where a device is in its life (§7.2 D).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    InStock,
    Charging,
    Assigned,
    Sealed,
    InTransit,
    AwaitingReturn,
    InReturn,
    Maintenance,
    Lost,
    Retired,
}

/// A registered device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub kind: DeviceKind,
    /// ISO 18185 identity, when the device carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<SealId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    pub state: DeviceState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<StationId>,
    /// For embedded smart-container units: the one container they belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_report_at: Option<Timestamp>,
}

/// Fixed readers stand at gates; handheld ones are carried by officers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReaderKind {
    Fixed,
    Handheld,
}

/// A reader, with its immutable id (§9.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reader {
    pub id: ReaderId,
    pub kind: ReaderKind,
    /// The zone a fixed reader stands in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<ZoneId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<StationId>,
}

/// The kinds of zone the contract knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneKind {
    Office,
    Border,
    RestArea,
    Parking,
    Fuel,
    Checkpoint,
    Restricted,
}

/// A named area: a Polygon, or a Point with `radius_m`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    pub id: ZoneId,
    pub kind: ZoneKind,
    pub area: Geometry,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Zone {
    /// Checks that the area is a Polygon, or a Point with a positive radius.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        self.area.validate().map_err(|e| ("area", e.0))?;
        match (&self.area, self.radius_m) {
            (Geometry::Point(_), Some(r)) if r > 0.0 && r.is_finite() => Ok(()),
            (Geometry::Point(_), Some(_)) => {
                Err(("radius_m", "must be a positive number of metres".into()))
            }
            (Geometry::Point(_), None) => {
                Err(("radius_m", "required when the area is a Point".into()))
            }
            (Geometry::Polygon(_), _) => Ok(()),
            (Geometry::LineString(_), _) => Err((
                "area",
                "expected a Polygon, or a Point with radius_m".into(),
            )),
        }
    }
}

/// A station: a site holding device stock, where devices are sealed, unsealed and charged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Station {
    pub id: StationId,
    pub name: String,
    /// The zone that outlines the station on the map.
    pub zone: ZoneId,
}
