//! The device pool: how many reusable devices each station should hold, and which devices to
//! move from where to where so that every station holds enough, at the least transport cost.
//!
//! [`plan`] takes plain data — stations with their daily departure and arrival history, the
//! devices with their state and station, and a transport cost per device — and returns a
//! [`Plan`]: per station the stock before and after and its dynamic safety stock, the moves
//! (from, to, how many, cost, which device ids), the total cost, and the shortfall left when
//! the pool as a whole is short.
//!
//! The model, the forecast, the safety stock and the optimisation are described in
//! docs/pool.md; in short:
//! - **forecast** ([`forecast`]): exponentially smoothed daily net outflow, with a weekly
//!   factor once four weeks of history are there;
//! - **safety stock**: forecast net outflow over the lead time + z·σ·√lead, z from the
//!   service level;
//! - **plan** ([`transport`]): a transportation linear program over every (surplus, deficit)
//!   station pair, solved exactly by the simplex method of the `microlp` crate.
//!
//! **Architecture invariant**: this crate does no I/O, reads no clock and draws no random
//! numbers: the same input always gives the same plan. CI checks that it does not depend on an
//! async runtime. (The solver crate reads the clock only for its own timing statistics and an
//! optional time limit; no limit is set here, so the plan never depends on it.)

pub mod forecast;
pub mod transport;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

pub use forecast::DayFlows;
use forecast::Forecast;

/// Mean Earth radius (IUGG), for great-circle distances.
const EARTH_RADIUS_KM: f64 = 6_371.008_8;
/// The largest cost parameter accepted (per device, or per device and km). Far above any real
/// freight rate, and low enough that a plan's total over millions of devices stays exact to
/// well under a unit in `f64` and the simplex is never handed numbers that overflow.
pub const MAX_COST: f64 = 1e9;

/// A station of the pool: a customs office or site that holds, charges and issues devices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Station {
    /// Unique among the stations.
    pub id: String,
    /// Latitude in degrees, −90..=90; needed with [`TransportCost::Distance`].
    #[serde(default)]
    pub lat_deg: Option<f64>,
    /// Longitude in degrees, −180..=180; needed with [`TransportCost::Distance`].
    #[serde(default)]
    pub lon_deg: Option<f64>,
    /// Most devices the station can hold (shelf and charging places); no limit when absent.
    #[serde(default)]
    pub capacity: Option<u32>,
    /// A floor set by the operator: the safety stock is never below it.
    #[serde(default)]
    pub minimum_stock: u32,
    /// Daily departures and arrivals, oldest day first, ending the day before the plan.
    #[serde(default)]
    pub history: Vec<DayFlows>,
}

/// Where a device is in its service life, as far as the pool is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// On the shelf, charged: can be issued or shipped now.
    Available,
    /// At the station, charging: counts as stock (ready within the lead time), cannot be
    /// shipped now.
    Charging,
    /// On its way back to its station (the device's `station`): counts as that station's stock,
    /// since it arrives within the lead time.
    InReturnShipment,
    /// Being repaired: not stock.
    Maintenance,
}

/// One device of the pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Unique among the devices.
    pub id: String,
    /// The station it is at, or travelling back to when in return shipment.
    pub station: String,
    pub state: DeviceState,
    /// Battery charge in percent, 0..=100; the fullest available devices are shipped first.
    #[serde(default)]
    pub battery_pct: u8,
}

/// The cost of moving one device from one station to another.
///
/// It is linear in the number of devices: a shipment's fixed cost (a van going at all) is not
/// modelled, because it would make the problem a fixed-charge network design (integer
/// programming, no longer exactly solvable at 500 stations in seconds). Fold an average fixed
/// cost per device into `handling_per_device` where it matters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TransportCost {
    /// `handling_per_device + per_device_per_km · great-circle distance`. Needs every
    /// station's coordinates.
    Distance {
        handling_per_device: f64,
        per_device_per_km: f64,
    },
    /// `cost_per_device[i][j]` from the i-th to the j-th station, in input order. Devices move
    /// directly: when the matrix breaks the triangle inequality a route through a third
    /// station could be cheaper, and the plan does not look for it.
    Matrix { cost_per_device: Vec<Vec<f64>> },
}

/// Everything a plan is made from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolInput {
    pub stations: Vec<Station>,
    pub devices: Vec<Device>,
    pub cost: TransportCost,
}

/// The planner's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanOptions {
    /// Days until a rebalancing shipment arrives: the horizon the safety stock covers, ≥ 1.
    pub lead_days: u32,
    /// Probability of not running out during the lead time, 0.5 ≤ level < 1.
    pub service_level: f64,
    /// Weight of the newest day in the smoothed forecast, 0 < smoothing ≤ 1.
    pub smoothing: f64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            lead_days: 3,
            service_level: 0.95,
            smoothing: 0.3,
        }
    }
}

/// Why no plan could be made. Each names what is wrong in the input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    #[error("the pool has no stations")]
    NoStations,
    #[error("station {0:?} appears more than once")]
    DuplicateStation(String),
    #[error("device {0:?} appears more than once")]
    DuplicateDevice(String),
    #[error("device {device:?} is at station {station:?}, which is not in the station list")]
    UnknownStation { device: String, station: String },
    #[error("device {device:?} has battery {battery_pct} %, above 100")]
    Battery { device: String, battery_pct: u8 },
    #[error("station {0:?} has no coordinates, which distance-based costs need")]
    MissingPosition(String),
    #[error(
        "station {station:?} has coordinates ({lat_deg}, {lon_deg}) outside −90..90, −180..180"
    )]
    InvalidPosition {
        station: String,
        lat_deg: f64,
        lon_deg: f64,
    },
    #[error("the cost {what} is {value}; costs must be between 0 and 1e9")]
    InvalidCost { what: String, value: f64 },
    #[error(
        "the cost matrix must be {expected} × {expected} (one row and column per station), found {found}"
    )]
    MatrixShape { expected: usize, found: String },
    #[error("lead time must be 1 to 365 days, not {0}")]
    LeadDays(u32),
    #[error("service level must be at least 0.5 and below 1, not {0}")]
    ServiceLevel(f64),
    #[error("smoothing must be above 0 and at most 1, not {0}")]
    Smoothing(f64),
    #[error(transparent)]
    Solve(#[from] transport::SolveError),
}

/// The rebalancing plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    /// One entry per input station, in input order.
    pub stations: Vec<StationPlan>,
    /// Moves sorted by source then destination station (input order).
    pub moves: Vec<Move>,
    /// Σ cost of the moves.
    pub total_cost: f64,
    /// Devices still missing below safety stock after the plan, summed over stations; zero
    /// unless the pool as a whole is short (or capacities cap a station below its safety stock).
    pub shortfall_devices: u64,
}

/// One station before and after the plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StationPlan {
    pub id: String,
    pub available: u32,
    pub charging: u32,
    pub in_return_shipment: u32,
    pub maintenance: u32,
    /// Available + charging + in return shipment: what the station can issue within the lead
    /// time.
    pub stock_before: u32,
    pub forecast: Forecast,
    /// The level the plan fills up to: the safety stock, raised to `minimum_stock`, capped at
    /// the capacity.
    pub target: u32,
    /// Available devices the station can give without dropping below its target.
    pub surplus: u32,
    /// Devices the station needs to reach its target.
    pub deficit: u32,
    pub sent: u32,
    pub received: u32,
    pub stock_after: u32,
    /// `target − stock_after` when positive.
    pub shortfall: u32,
}

/// Devices moved from one station to another.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Move {
    pub from: String,
    pub to: String,
    pub devices: u32,
    pub cost_per_device: f64,
    pub cost: f64,
    /// The devices to ship: available ones, fullest battery first, then by id.
    pub device_ids: Vec<String>,
}

/// Per-station counts and the (surplus, deficit) each station brings to the transport problem.
#[derive(Debug)]
struct Balance {
    available: u32,
    charging: u32,
    in_return_shipment: u32,
    maintenance: u32,
    stock: u32,
    target: u32,
    /// Devices the station can give without dropping below its target.
    surplus: u32,
    /// Devices the station needs to reach its target.
    deficit: u32,
}

/// Makes the rebalancing plan: see the crate documentation and docs/pool.md.
pub fn plan(input: &PoolInput, options: &PlanOptions) -> Result<Plan, PlanError> {
    validate_options(options)?;
    let index = validate_stations(input)?;
    let cost = cost_per_device(input)?;
    let z = forecast::normal_quantile(options.service_level);

    let n = input.stations.len();
    let mut counts = vec![[0u32; 4]; n];
    let mut shippable: Vec<Vec<&Device>> = vec![Vec::new(); n];
    let mut seen = HashSet::with_capacity(input.devices.len());
    for device in &input.devices {
        if !seen.insert(device.id.as_str()) {
            return Err(PlanError::DuplicateDevice(device.id.clone()));
        }
        if device.battery_pct > 100 {
            return Err(PlanError::Battery {
                device: device.id.clone(),
                battery_pct: device.battery_pct,
            });
        }
        let Some(&s) = index.get(device.station.as_str()) else {
            return Err(PlanError::UnknownStation {
                device: device.id.clone(),
                station: device.station.clone(),
            });
        };
        let slot = match device.state {
            DeviceState::Available => 0,
            DeviceState::Charging => 1,
            DeviceState::InReturnShipment => 2,
            DeviceState::Maintenance => 3,
        };
        counts[s][slot] += 1;
        if device.state == DeviceState::Available {
            shippable[s].push(device);
        }
    }

    let forecasts: Vec<Forecast> = input
        .stations
        .iter()
        .map(|s| forecast::forecast(&s.history, options.lead_days, options.smoothing, z))
        .collect();
    let balances: Vec<Balance> = input
        .stations
        .iter()
        .zip(&forecasts)
        .zip(&counts)
        .map(
            |((station, f), &[available, charging, in_return_shipment, maintenance])| {
                let stock = available + charging + in_return_shipment;
                let wanted = f.safety_stock.max(station.minimum_stock);
                let target = station.capacity.map_or(wanted, |cap| wanted.min(cap));
                Balance {
                    available,
                    charging,
                    in_return_shipment,
                    maintenance,
                    stock,
                    target,
                    // Only devices on the shelf can be shipped now.
                    surplus: stock.saturating_sub(target).min(available),
                    deficit: target.saturating_sub(stock),
                }
            },
        )
        .collect();

    let supply: Vec<u32> = balances.iter().map(|b| b.surplus).collect();
    let demand: Vec<u32> = balances.iter().map(|b| b.deficit).collect();
    let flows = transport::solve_exact(&supply, &demand, &cost)?;

    let mut sent = vec![0u32; n];
    let mut received = vec![0u32; n];
    let mut moves = Vec::with_capacity(flows.len());
    let mut next_device = vec![0usize; n];
    for station_devices in &mut shippable {
        station_devices.sort_by(|a, b| b.battery_pct.cmp(&a.battery_pct).then(a.id.cmp(&b.id)));
    }
    let mut flows = flows;
    flows.sort_by_key(|f| (f.from, f.to));
    for f in &flows {
        sent[f.from] += f.devices;
        received[f.to] += f.devices;
        let start = next_device[f.from];
        let end = start + f.devices as usize;
        next_device[f.from] = end;
        let cost_per_device = cost(f.from, f.to);
        moves.push(Move {
            from: input.stations[f.from].id.clone(),
            to: input.stations[f.to].id.clone(),
            devices: f.devices,
            cost_per_device,
            cost: cost_per_device * f64::from(f.devices),
            // In range: a source sends at most its surplus, which is at most its available.
            device_ids: shippable[f.from][start..end]
                .iter()
                .map(|d| d.id.clone())
                .collect(),
        });
    }
    let total_cost = moves.iter().map(|m| m.cost).sum();

    let stations: Vec<StationPlan> = input
        .stations
        .iter()
        .zip(balances)
        .zip(forecasts)
        .enumerate()
        .map(|(i, ((station, b), forecast))| {
            let stock_after = b.stock - sent[i] + received[i];
            StationPlan {
                id: station.id.clone(),
                available: b.available,
                charging: b.charging,
                in_return_shipment: b.in_return_shipment,
                maintenance: b.maintenance,
                stock_before: b.stock,
                forecast,
                target: b.target,
                surplus: b.surplus,
                deficit: b.deficit,
                sent: sent[i],
                received: received[i],
                stock_after,
                shortfall: b.target.saturating_sub(stock_after),
            }
        })
        .collect();
    let shortfall_devices = stations.iter().map(|s| u64::from(s.shortfall)).sum();
    Ok(Plan {
        stations,
        moves,
        total_cost,
        shortfall_devices,
    })
}

fn validate_options(options: &PlanOptions) -> Result<(), PlanError> {
    if !(1..=365).contains(&options.lead_days) {
        return Err(PlanError::LeadDays(options.lead_days));
    }
    // Written so that NaN fails too.
    if !(options.service_level >= 0.5 && options.service_level < 1.0) {
        return Err(PlanError::ServiceLevel(options.service_level));
    }
    if !(options.smoothing > 0.0 && options.smoothing <= 1.0) {
        return Err(PlanError::Smoothing(options.smoothing));
    }
    Ok(())
}

/// Station ids are unique; returns id → input position.
fn validate_stations(input: &PoolInput) -> Result<HashMap<&str, usize>, PlanError> {
    if input.stations.is_empty() {
        return Err(PlanError::NoStations);
    }
    let mut index = HashMap::with_capacity(input.stations.len());
    for (i, s) in input.stations.iter().enumerate() {
        if index.insert(s.id.as_str(), i).is_some() {
            return Err(PlanError::DuplicateStation(s.id.clone()));
        }
    }
    Ok(index)
}

fn check_cost(what: impl FnOnce() -> String, value: f64) -> Result<(), PlanError> {
    if (0.0..=MAX_COST).contains(&value) {
        Ok(())
    } else {
        Err(PlanError::InvalidCost {
            what: what(),
            value,
        })
    }
}

/// The cost per device from the i-th to the j-th station (input order), after checking that
/// every cost is between 0 and [`MAX_COST`] and, for distance-based costs, that every station has
/// valid coordinates.
pub fn cost_per_device(
    input: &PoolInput,
) -> Result<Box<dyn Fn(usize, usize) -> f64 + '_>, PlanError> {
    let n = input.stations.len();
    match &input.cost {
        TransportCost::Distance {
            handling_per_device,
            per_device_per_km,
        } => {
            check_cost(|| "handling_per_device".into(), *handling_per_device)?;
            check_cost(|| "per_device_per_km".into(), *per_device_per_km)?;
            let mut positions = Vec::with_capacity(n);
            for s in &input.stations {
                let (Some(lat_deg), Some(lon_deg)) = (s.lat_deg, s.lon_deg) else {
                    return Err(PlanError::MissingPosition(s.id.clone()));
                };
                if !((-90.0..=90.0).contains(&lat_deg) && (-180.0..=180.0).contains(&lon_deg)) {
                    return Err(PlanError::InvalidPosition {
                        station: s.id.clone(),
                        lat_deg,
                        lon_deg,
                    });
                }
                positions.push((lat_deg.to_radians(), lon_deg.to_radians()));
            }
            let (handling, per_km) = (*handling_per_device, *per_device_per_km);
            Ok(Box::new(move |i, j| {
                if i == j {
                    0.0
                } else {
                    handling + per_km * haversine_km(positions[i], positions[j])
                }
            }))
        }
        TransportCost::Matrix { cost_per_device } => {
            if cost_per_device.len() != n {
                return Err(PlanError::MatrixShape {
                    expected: n,
                    found: format!("{} rows", cost_per_device.len()),
                });
            }
            for (i, row) in cost_per_device.iter().enumerate() {
                if row.len() != n {
                    return Err(PlanError::MatrixShape {
                        expected: n,
                        found: format!("{} columns in row {i}", row.len()),
                    });
                }
                for (j, &value) in row.iter().enumerate() {
                    check_cost(
                        || {
                            format!(
                                "from {:?} to {:?}",
                                input.stations[i].id, input.stations[j].id
                            )
                        },
                        value,
                    )?;
                }
            }
            Ok(Box::new(move |i, j| cost_per_device[i][j]))
        }
    }
}

/// Great-circle distance between two (latitude, longitude) points in radians.
fn haversine_km((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests;
