//! `GET /api/v1/map`: every supervised transit the caller sees, compactly, for the live map
//! (tens of thousands of markers in one answer): where its device last was, its state, and
//! the highest grade of its alarms still being handled.
//!
//! Scoped like the lists: a trade party sees its own organisation's transits, a patrol the
//! transits of the alarms dispatched to it. No personal data is in it (the driver's name is on
//! the transit page only), so nothing here is audited as a read of personal data.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use model::{AlarmKind, AlarmState, TransitState};
use serde::Serialize;
use store::{AlarmFilter, DeviceFilter, PageRequest, Store, TransitFilter};

use crate::permissions::{self, Scope};
use crate::{AppState, Problem, auth, store_problem};

/// One marker of the map.
#[derive(Debug, Serialize)]
pub struct MapTransit {
    pub id: String,
    pub device: String,
    pub state: TransitState,
    /// The device's last fix, `[lon, lat]`; absent before its first report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<[f64; 2]>,
    /// When that fix was taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t: Option<model::Timestamp>,
    /// The highest grade of the transit's alarms not yet resolved (0: none).
    pub grade: u8,
    /// An unresolved communication-loss alarm: the marker is drawn as lost.
    pub lost: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plate: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// The departure and destination zones (the route, for filters by area).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub departure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// The declared route, for a patrol only (it reads no transit otherwise, and follows the
    /// few vehicles of the alarms dispatched to it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<model::Geometry>,
}

/// The transit states the map shows: goods still under supervision.
fn supervised(state: TransitState) -> bool {
    matches!(
        state,
        TransitState::Declared
            | TransitState::Sealed
            | TransitState::InTransit
            | TransitState::Arrived
            | TransitState::Inspection
    )
}

/// Every unresolved alarm (open, acknowledged, dispatched), all pages.
fn unresolved_alarms(store: &mut dyn Store) -> store::Result<Vec<store::AlarmRecord>> {
    let mut all = Vec::new();
    for state in ["open", "acknowledged", "dispatched"] {
        let filter = AlarmFilter {
            state: Some(state.to_owned()),
            ..AlarmFilter::default()
        };
        let mut after = None;
        loop {
            let page = store.alarms(&filter, PageRequest { after, limit: 1000 })?;
            let n = page.len();
            after = page.last().map(|a| a.id);
            all.extend(page);
            if n < 1000 {
                break;
            }
        }
    }
    Ok(all)
}

fn markers(store: &mut dyn Store, scope: &Scope) -> store::Result<Vec<MapTransit>> {
    let alarms = unresolved_alarms(store)?;
    // A patrol sees the transits of the alarms dispatched to it.
    let patrol_transits: Option<Vec<String>> = match scope {
        Scope::Patrol { .. } => Some(
            alarms
                .iter()
                .filter(|a| scope.sees_alarm(a, None))
                .map(|a| a.alarm.transit.as_str().to_owned())
                .collect(),
        ),
        _ => None,
    };
    let mut grades: HashMap<String, (u8, bool)> = HashMap::new();
    for a in &alarms {
        debug_assert!(!matches!(
            a.state,
            AlarmState::Resolved(_) | AlarmState::Closed(_)
        ));
        let e = grades
            .entry(a.alarm.transit.as_str().to_owned())
            .or_default();
        e.0 = e.0.max(a.alarm.grade);
        e.1 |= a.alarm.kind == AlarmKind::CommunicationLoss;
    }
    let mut positions = HashMap::new();
    let mut after = None;
    loop {
        let page = store.devices(&DeviceFilter::default(), PageRequest { after, limit: 1000 })?;
        let n = page.len();
        after = page.last().map(|(k, _)| *k);
        for (_, d) in page {
            if let Some(p) = d.last_position {
                positions.insert(d.device.id.as_str().to_owned(), p);
            }
        }
        if n < 1000 {
            break;
        }
    }
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.transits(
            &TransitFilter::default(),
            PageRequest { after, limit: 1000 },
        )?;
        let n = page.len();
        after = page.last().map(|(k, _)| *k);
        for (_, t) in page {
            if !supervised(t.state) {
                continue;
            }
            let id = t.transit.id.as_str().to_owned();
            let seen = match &patrol_transits {
                Some(ids) => ids.contains(&id),
                None => scope.sees_transit(&t.transit),
            };
            if !seen {
                continue;
            }
            let device = t.transit.device.as_str().to_owned();
            let position = positions.get(&device);
            let (grade, lost) = grades.get(&id).copied().unwrap_or_default();
            let vehicle = t.transit.vehicle.as_ref();
            out.push(MapTransit {
                at: position.map(|p| [p.lon, p.lat]),
                t: position.map(|p| p.t),
                grade,
                lost,
                plate: vehicle
                    .and_then(|v| v.plate.as_ref())
                    .map(|p| p.to_string()),
                containers: vehicle
                    .map(|v| v.containers.iter().map(|c| c.as_str().to_owned()).collect())
                    .unwrap_or_default(),
                carrier: t
                    .transit
                    .declaration
                    .as_ref()
                    .and_then(|d| d.carrier.clone()),
                departure: t.transit.departure.as_ref().map(|z| z.as_str().to_owned()),
                destination: t
                    .transit
                    .destination
                    .as_ref()
                    .map(|z| z.as_str().to_owned()),
                route: patrol_transits
                    .as_ref()
                    .and_then(|_| t.transit.route.clone()),
                state: t.state,
                id,
                device,
            });
        }
        if n < 1000 {
            break;
        }
    }
    Ok(out)
}

/// How long an unscoped answer is shared: every console watching the map asks for all of it,
/// and the query runs on the writer thread (about half a second for 10,000 transits in a
/// debug build; docs/benchmarks.md), so consoles share one answer a second old at most.
const SHARED_FOR: Duration = Duration::from_secs(1);

/// The last unscoped answer and when it was made.
pub(crate) type MapCache = Arc<Mutex<Option<(Instant, Arc<Vec<MapTransit>>)>>>;

pub(crate) async fn map(
    State(s): State<AppState>,
    caller: Option<axum::Extension<auth::Caller>>,
) -> Result<Json<serde_json::Value>, Problem> {
    let scope = permissions::scope(caller.as_deref());
    let shared = scope.is_all();
    let cached = shared
        .then(|| {
            s.map_cache
                .lock()
                .ok()
                .and_then(|c| c.clone())
                .filter(|(at, _)| at.elapsed() < SHARED_FOR)
                .map(|(_, items)| items)
        })
        .flatten();
    let items = match cached {
        Some(items) => items,
        None => {
            let items = Arc::new(
                s.query(move |store| markers(store, &scope))
                    .await?
                    .map_err(store_problem)?,
            );
            if shared && let Ok(mut c) = s.map_cache.lock() {
                *c = Some((Instant::now(), items.clone()));
            }
            items
        }
    };
    let alarmed = items.iter().filter(|m| m.grade > 0).count();
    Ok(Json(serde_json::json!({
        "items": *items,
        "counts": { "total": items.len(), "alarmed": alarmed, "normal": items.len() - alarmed },
    })))
}
