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
    pub const ALL: [DeviceKind; 5] = [
        DeviceKind::Passive,
        DeviceKind::SemiActive,
        DeviceKind::Active,
        DeviceKind::SmartContainerEmbedded,
        DeviceKind::SmartContainerAffixed,
    ];

    /// The name on the wire (`semi_active`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Passive => "passive",
            DeviceKind::SemiActive => "semi_active",
            DeviceKind::Active => "active",
            DeviceKind::SmartContainerEmbedded => "smart_container_embedded",
            DeviceKind::SmartContainerAffixed => "smart_container_affixed",
        }
    }

    /// Whether the device reports by itself (so silence means something).
    pub fn reports_in_real_time(self) -> bool {
        !matches!(self, DeviceKind::Passive | DeviceKind::SemiActive)
    }
}

/// Where a device is in its life (§7.2 D): production → warehousing → registration at a
/// station → delivery → in service (in stock, charging, sealing transits, returning) →
/// maintenance → retired or lost ([`DeviceState::phase`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// Ordered, being made or tested by the manufacturer.
    InProduction,
    /// Received at a central warehouse, not yet any station's.
    Warehoused,
    /// Registered to a station and on its way there.
    InDelivery,
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

impl DeviceState {
    pub const ALL: [DeviceState; 13] = [
        DeviceState::InProduction,
        DeviceState::Warehoused,
        DeviceState::InDelivery,
        DeviceState::InStock,
        DeviceState::Charging,
        DeviceState::Assigned,
        DeviceState::Sealed,
        DeviceState::InTransit,
        DeviceState::AwaitingReturn,
        DeviceState::InReturn,
        DeviceState::Maintenance,
        DeviceState::Lost,
        DeviceState::Retired,
    ];

    /// The name on the wire (`in_stock`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::InProduction => "in_production",
            DeviceState::Warehoused => "warehoused",
            DeviceState::InDelivery => "in_delivery",
            DeviceState::InStock => "in_stock",
            DeviceState::Charging => "charging",
            DeviceState::Assigned => "assigned",
            DeviceState::Sealed => "sealed",
            DeviceState::InTransit => "in_transit",
            DeviceState::AwaitingReturn => "awaiting_return",
            DeviceState::InReturn => "in_return",
            DeviceState::Maintenance => "maintenance",
            DeviceState::Lost => "lost",
            DeviceState::Retired => "retired",
        }
    }

    /// The life-cycle phase the state belongs to.
    pub fn phase(self) -> LifecyclePhase {
        match self {
            DeviceState::InProduction => LifecyclePhase::Production,
            DeviceState::Warehoused => LifecyclePhase::Warehousing,
            DeviceState::InDelivery => LifecyclePhase::Delivery,
            DeviceState::InStock
            | DeviceState::Charging
            | DeviceState::Assigned
            | DeviceState::Sealed
            | DeviceState::InTransit
            | DeviceState::AwaitingReturn
            | DeviceState::InReturn => LifecyclePhase::InService,
            DeviceState::Maintenance => LifecyclePhase::Maintenance,
            DeviceState::Lost => LifecyclePhase::Lost,
            DeviceState::Retired => LifecyclePhase::Retired,
        }
    }
}

/// The phases of a device's life, in order (§7.2 D); registration is the step from delivery to
/// service, when the device enters a station's stock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecyclePhase {
    Production,
    Warehousing,
    Delivery,
    InService,
    Maintenance,
    Retired,
    Lost,
}

impl LifecyclePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecyclePhase::Production => "production",
            LifecyclePhase::Warehousing => "warehousing",
            LifecyclePhase::Delivery => "delivery",
            LifecyclePhase::InService => "in_service",
            LifecyclePhase::Maintenance => "maintenance",
            LifecyclePhase::Retired => "retired",
            LifecyclePhase::Lost => "lost",
        }
    }
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

impl Device {
    /// Checks what serde cannot: the battery is a percentage, and names are not blank.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(v) = self.battery_pct
            && !(0.0..=100.0).contains(&v)
        {
            return Err(("battery_pct", "must be between 0 and 100".into()));
        }
        for (field, v) in [("model", &self.model), ("firmware", &self.firmware)] {
            if v.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err((field, "must not be blank when given".into()));
            }
        }
        Ok(())
    }
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

impl Station {
    /// Checks that the name is not blank.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.name.trim().is_empty() {
            return Err(("name", "must not be blank".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_wire() {
        for k in DeviceKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for s in DeviceState::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn device_checks() {
        let mut d: Device = serde_json::from_value(serde_json::json!({
            "id": "D1", "kind": "active", "state": "in_stock", "battery_pct": 87
        }))
        .unwrap();
        assert_eq!(d.validate(), Ok(()));
        for bad in [-1.0, 100.5, f64::NAN] {
            d.battery_pct = Some(bad);
            assert_eq!(d.validate().unwrap_err().0, "battery_pct");
        }
        d.battery_pct = None;
        d.firmware = Some(" ".into());
        assert_eq!(d.validate().unwrap_err().0, "firmware");
    }
}
