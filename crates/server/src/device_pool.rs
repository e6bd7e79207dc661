//! The device pool from the live registry (docs/pool.md): stock per station by state, the
//! devices' life-cycle counts, transits leaving and reaching each station per day, and the
//! rebalancing plan of the pure `pool` crate made from all of it.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use model::{DeviceState, Geometry, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::{DeviceFilter, PageRequest, Store};

use crate::{AppState, Problem, store_problem};

/// The routes of this module, merged into the service's router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/pool", get(overview))
        .route("/api/v1/pool/plan", get(plan))
        .route("/api/v1/devices/{id}/history", get(history))
}

/// Days over which the overview counts the devices that entered each state.
pub const LIFECYCLE_DAYS: i64 = 30;

/// `GET /api/v1/devices/{id}/history`: the device's state changes, oldest first, each with
/// its station afterwards and its cause (the registry, or its transit's event).
async fn history(
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Value>, Problem> {
    let key = id.clone();
    let (device, changes) = s
        .query(move |st| -> store::Result<_> {
            Ok((st.device(&key)?, st.device_history(&key, 10_000)?))
        })
        .await?
        .map_err(store_problem)?;
    Ok(Json(
        json!({"device": device.device.id, "state": device.device.state, "items": changes}),
    ))
}

/// Days of station history the forecast reads.
pub const HISTORY_DAYS: i64 = 56;
/// Rows per registry page while reading the whole registry.
const PAGE: u32 = 1000;

/// Transport cost of the plan made from the registry: handling per device plus a rate per
/// device and kilometre (great-circle distance between the stations' zones).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostRates {
    pub handling_per_device: f64,
    pub per_device_per_km: f64,
}

impl Default for CostRates {
    fn default() -> CostRates {
        CostRates {
            handling_per_device: 2.0,
            per_device_per_km: 0.05,
        }
    }
}

/// One station of the overview.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StationStock {
    pub id: String,
    pub name: String,
    pub zone: String,
    /// Devices registered at the station, by state (every state named, zeros included).
    pub by_state: BTreeMap<String, u64>,
    /// Transits that left and reached the station over the history window.
    pub departures: u64,
    pub arrivals: u64,
    /// Arrivals minus departures: devices the station gains (positive) or loses per window.
    pub net_inflow: i64,
}

/// The whole pool as the registry has it, and the planner's input made from it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overview {
    pub stations: Vec<StationStock>,
    /// Every device by life-cycle state, stations or not.
    pub by_state: BTreeMap<String, u64>,
    /// Every device by life-cycle phase (production, warehousing, delivery, in service,
    /// maintenance, retired, lost), in that order.
    pub by_phase: Vec<(String, u64)>,
    /// Devices that entered each state over the last [`LIFECYCLE_DAYS`] days (retired, lost,
    /// sent to repair, back in stock...).
    pub entered_last_30_days: BTreeMap<String, u64>,
    pub history_days: i64,
    #[serde(skip)]
    pub input: pool::PoolInput,
}

/// Where the station's zone is: a Point's position, or the mean of a Polygon's outer ring.
fn anchor(area: &Geometry) -> Option<[f64; 2]> {
    match area {
        Geometry::Point(p) => Some(*p),
        Geometry::Polygon(rings) => {
            let ring = rings.first()?;
            // A closed ring repeats its first point at the end: counted once.
            let pts = match ring.as_slice() {
                [first, .., last] if first == last => &ring[..ring.len() - 1],
                all => all,
            };
            let n = pts.len() as f64;
            (n > 0.0).then(|| {
                let (x, y) = pts
                    .iter()
                    .fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
                [x / n, y / n]
            })
        }
        Geometry::LineString(_) => None,
    }
}

/// The pool's state of a registered device, or `None` when it is not part of any station's
/// stock (in service on a transit, awaiting return at a destination, lost, retired).
fn pool_state(s: DeviceState) -> Option<pool::DeviceState> {
    match s {
        DeviceState::InStock => Some(pool::DeviceState::Available),
        DeviceState::Charging => Some(pool::DeviceState::Charging),
        // On its way to its station: there within the lead time, like a return.
        DeviceState::InReturn | DeviceState::InDelivery => {
            Some(pool::DeviceState::InReturnShipment)
        }
        DeviceState::Maintenance => Some(pool::DeviceState::Maintenance),
        DeviceState::Assigned
        | DeviceState::Sealed
        | DeviceState::InTransit
        | DeviceState::AwaitingReturn
        | DeviceState::Lost
        | DeviceState::Retired
        | DeviceState::InProduction
        | DeviceState::Warehoused => None,
    }
}

/// Reads the registry, the zones and the flows, and makes the overview and the planner's input
/// (history ends the day before `now`).
pub fn overview_of(
    store: &mut dyn Store,
    now: Timestamp,
    rates: CostRates,
) -> store::Result<Overview> {
    let zones: BTreeMap<String, [f64; 2]> = store
        .zones()?
        .into_iter()
        .filter_map(|z| anchor(&z.area).map(|a| (z.id.as_str().to_owned(), a)))
        .collect();
    let mut stations = Vec::new();
    let mut after = None;
    loop {
        let page = store.stations(PageRequest { after, limit: PAGE })?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        stations.extend(page.into_iter().map(|(_, s)| s));
    }
    let mut devices = Vec::new();
    let mut after = None;
    loop {
        let page = store.devices(&DeviceFilter::default(), PageRequest { after, limit: PAGE })?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        devices.extend(page.into_iter().map(|(_, d)| d.device));
    }
    let today = now.unix_ms().div_euclid(86_400_000);
    let since = Timestamp::from_unix_ms((today - HISTORY_DAYS) * 86_400_000);
    let flows = store.zone_flows(since)?;
    let entered: BTreeMap<String, u64> = store
        .device_state_entries(store::TimeRange {
            from: Some(Timestamp::from_unix_ms(
                now.unix_ms() - LIFECYCLE_DAYS * 86_400_000,
            )),
            to: None,
        })?
        .into_iter()
        .collect();

    let every_state = || -> BTreeMap<String, u64> {
        DeviceState::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), 0))
            .collect()
    };
    let mut by_state = every_state();
    let mut stock: BTreeMap<String, StationStock> = stations
        .iter()
        .map(|s| {
            (
                s.id.as_str().to_owned(),
                StationStock {
                    id: s.id.as_str().to_owned(),
                    name: s.name.clone(),
                    zone: s.zone.as_str().to_owned(),
                    by_state: every_state(),
                    ..StationStock::default()
                },
            )
        })
        .collect();
    let mut by_phase: BTreeMap<model::LifecyclePhase, u64> =
        DeviceState::ALL.iter().map(|s| (s.phase(), 0)).collect();
    let mut pool_devices = Vec::new();
    for d in &devices {
        *by_phase.entry(d.state.phase()).or_default() += 1;
        *by_state.entry(d.state.as_str().to_owned()).or_default() += 1;
        let Some(station) = d.station.as_ref().map(|s| s.as_str().to_owned()) else {
            continue;
        };
        if let Some(s) = stock.get_mut(&station) {
            *s.by_state.entry(d.state.as_str().to_owned()).or_default() += 1;
            if let Some(state) = pool_state(d.state) {
                pool_devices.push(pool::Device {
                    id: d.id.as_str().to_owned(),
                    station,
                    state,
                    battery_pct: d.battery_pct.unwrap_or(0.0).clamp(0.0, 100.0).round() as u8,
                });
            }
        }
    }
    let mut pool_stations = Vec::new();
    for s in &stations {
        let zone = s.zone.as_str();
        let mut days = vec![pool::DayFlows::default(); HISTORY_DAYS as usize];
        for f in flows.iter().filter(|f| f.zone == zone) {
            let i = f.day - (today - HISTORY_DAYS);
            if (0..HISTORY_DAYS).contains(&i) {
                days[i as usize] = pool::DayFlows {
                    departures: f.departures,
                    arrivals: f.arrivals,
                };
            }
            if let Some(st) = stock.get_mut(s.id.as_str()) {
                st.departures += u64::from(f.departures);
                st.arrivals += u64::from(f.arrivals);
            }
        }
        let at = zones.get(zone);
        pool_stations.push(pool::Station {
            id: s.id.as_str().to_owned(),
            lat_deg: at.map(|p| p[1]),
            lon_deg: at.map(|p| p[0]),
            capacity: None,
            minimum_stock: 0,
            history: days,
        });
    }
    let stations: Vec<StationStock> = stock
        .into_values()
        .map(|mut s| {
            s.net_inflow = s.arrivals as i64 - s.departures as i64;
            s
        })
        .collect();
    Ok(Overview {
        stations,
        by_state,
        by_phase: by_phase
            .into_iter()
            .map(|(p, n)| (p.as_str().to_owned(), n))
            .collect(),
        entered_last_30_days: entered,
        history_days: HISTORY_DAYS,
        input: pool::PoolInput {
            stations: pool_stations,
            devices: pool_devices,
            cost: pool::TransportCost::Distance {
                handling_per_device: rates.handling_per_device,
                per_device_per_km: rates.per_device_per_km,
            },
        },
    })
}

/// `GET /api/v1/pool`: stock per station by state, life-cycle counts, flows.
async fn overview(State(s): State<AppState>) -> Result<Json<Overview>, Problem> {
    let now = s.clock.now();
    let o = s
        .query(move |st| overview_of(st, now, CostRates::default()))
        .await?
        .map_err(store_problem)?;
    Ok(Json(o))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanParams {
    lead_days: Option<u32>,
    service_level: Option<f64>,
}

/// `GET /api/v1/pool/plan`: the rebalancing plan for the registry as it is now.
async fn plan(
    State(s): State<AppState>,
    Query(p): Query<PlanParams>,
) -> Result<Json<Value>, Problem> {
    let now = s.clock.now();
    let o = s
        .query(move |st| overview_of(st, now, CostRates::default()))
        .await?
        .map_err(store_problem)?;
    let defaults = pool::PlanOptions::default();
    let options = pool::PlanOptions {
        lead_days: p.lead_days.unwrap_or(defaults.lead_days),
        service_level: p.service_level.unwrap_or(defaults.service_level),
        smoothing: defaults.smoothing,
    };
    // Solving is CPU work of up to a second for 500 stations: off the async threads.
    let input = o.input;
    let planned = tokio::task::spawn_blocking(move || pool::plan(&input, &options))
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "pool: the planner stopped",
            )
        })?;
    match planned {
        Ok(plan) => Ok(Json(json!({
            "lead_days": options.lead_days,
            "service_level": options.service_level,
            "plan": plan,
        }))),
        Err(e @ pool::PlanError::Solve(_)) => Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("pool: {e}"),
        )),
        Err(e) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("pool: {e}"),
        )),
    }
}
