//! The registry (stations, devices, readers), a transit's history (its track as GeoJSON, its
//! alarms), and statistics (transits by state, alarms per day, kind and grade).
//!
//! Registrations are written straight to the store on the writer thread: they are not inputs
//! of the supervisor, so they take no place in the input log. A device's last report, battery
//! and position are kept by the store as observations are committed.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use model::{
    Device, DeviceId, DeviceKind, DeviceState, Observation, Reader, ReaderId, Station, StationId,
    Timestamp, TransitId, TransitState,
};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{DeviceFilter, PageRequest, Store, TimeRange};

use crate::{AppState, ListParams, Problem, parse, store_problem, time};

/// The routes of this module, merged into the service's router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/stations", post(put_station).get(list_stations))
        .route("/api/v1/stations/{id}", get(get_station))
        .route("/api/v1/devices", post(put_device).get(list_devices))
        .route("/api/v1/devices/{id}", get(get_device))
        .route("/api/v1/readers", post(put_reader).get(list_readers))
        .route("/api/v1/readers/{id}", get(get_reader))
        .route("/api/v1/transits/{id}/track", get(transit_track))
        .route("/api/v1/transits/{id}/alarms", get(transit_alarms))
        .route("/api/v1/statistics/transits", get(transit_statistics))
        .route("/api/v1/statistics/alarms", get(alarm_statistics))
}

/// The most observations one track answer holds by default, and at most.
const TRACK_LIMIT_DEFAULT: u32 = 10_000;
const TRACK_LIMIT_MAX: u32 = 100_000;

fn unprocessable(detail: String) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
}

fn bad_request(detail: String) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, detail)
}

/// An id from the path, checked by its model type.
fn path_id<T: std::str::FromStr<Err = model::IdError>>(id: &str) -> Result<T, Problem> {
    id.parse().map_err(|e| bad_request(format!("id: {e}")))
}

/// A page of a registry list: keyset paging as everywhere in the API.
pub(crate) fn page(after: Option<i64>, limit: Option<u32>) -> Result<PageRequest, Problem> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad_request("limit: must be 1 to 1000".into()));
    }
    Ok(PageRequest { after, limit })
}

/// `from` and `to` (RFC 3339), `from` inclusive and `to` exclusive.
pub(crate) fn range(from: &Option<String>, to: &Option<String>) -> Result<TimeRange, Problem> {
    let range = TimeRange {
        from: time("from", from)?,
        to: time("to", to)?,
    };
    if let (Some(from), Some(to)) = (range.from, range.to)
        && to <= from
    {
        return Err(bad_request(format!("to: {to} is not after from ({from})")));
    }
    Ok(range)
}

/// A list answer: the items and the `after` of the next page (null on an empty page).
fn listed<T: serde::Serialize>(rows: Vec<(i64, T)>) -> Json<Value> {
    listed_where(rows, |_| true)
}

/// Runs `f` on the store, and turns a store error into a problem.
async fn stored<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(&mut dyn Store) -> store::Result<T> + Send + 'static,
) -> Result<T, Problem> {
    s.query(f).await?.map_err(store_problem)
}

/// Whether a lookup found its item.
fn exists<T>(found: store::Result<T>) -> store::Result<bool> {
    match found {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// A registration naming a station or zone that is not registered. Checked in the same job as
/// the write, so nothing can change the registry in between.
fn missing(field: &str, id: &str) -> store::Error {
    store::Error::Conflict(format!("{field}: no {field} {id} is registered"))
}

/// Whether a zone is registered. Zones are few and registrations rare: the list will do.
fn zone_exists(store: &mut dyn Store, id: &model::ZoneId) -> store::Result<bool> {
    Ok(store.zones()?.iter().any(|z| &z.id == id))
}

/// A store error from a registration: a missing reference ([`missing`]) is the body's fault.
fn registration_problem(e: store::Error) -> Problem {
    if e.is_conflict() {
        unprocessable(e.to_string())
    } else {
        store_problem(e)
    }
}

async fn put_station(
    State(s): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    body: axum::body::Bytes,
) -> Result<Json<Station>, Problem> {
    let station: Station = parse(&body)?;
    station
        .validate()
        .map_err(|(field, why)| unprocessable(format!("{field}: {why}")))?;
    let actor = crate::audit_chain::caller_actor(caller.as_deref());
    s.query(move |store| {
        if !zone_exists(store, &station.zone)? {
            return Err(missing("zone", station.zone.as_str()));
        }
        store.put_station(&station)?;
        crate::audit_chain::record(
            store,
            &actor,
            "station.put",
            format!("station:{}", station.id),
            serde_json::json!({}),
        )?;
        store.station(station.id.as_str())
    })
    .await?
    .map(Json)
    .map_err(registration_problem)
}

#[derive(Debug, Deserialize)]
struct PageParams {
    after: Option<i64>,
    limit: Option<u32>,
}

async fn list_stations(
    State(s): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    Query(p): Query<PageParams>,
) -> Result<Json<Value>, Problem> {
    let page = page(p.after, p.limit)?;
    let rows = stored(&s, move |store| store.stations(page)).await?;
    let only = crate::permissions::station_scope(caller.as_deref());
    Ok(listed_where(rows, |st: &Station| {
        only.as_ref()
            .is_none_or(|o| o.as_deref() == Some(st.id.as_str()))
    }))
}

/// A page cut by the store, with only the records a caller limited to one station sees; the
/// page goes on where the store stopped (`next_after`), so a page may be short.
fn listed_where<T: serde::Serialize>(
    rows: Vec<(i64, T)>,
    keep: impl Fn(&T) -> bool,
) -> Json<Value> {
    let next = rows.last().map(|(n, _)| *n);
    let items: Vec<T> = rows
        .into_iter()
        .map(|(_, x)| x)
        .filter(|x| keep(x))
        .collect();
    Json(json!({ "items": items, "next_after": next }))
}

async fn get_station(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Station>, Problem> {
    let id: StationId = path_id(&id)?;
    Ok(Json(
        stored(&s, move |store| store.station(id.as_str())).await?,
    ))
}

async fn put_device(
    State(s): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    body: axum::body::Bytes,
) -> Result<Json<store::DeviceRecord>, Problem> {
    let device: Device = parse(&body)?;
    if let Some(only) = crate::permissions::station_scope(caller.as_deref())
        && device.station.as_ref().map(|s| s.as_str()) != only.as_deref()
    {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            format!(
                "station: a site operator registers the devices of its own station ({})",
                only.as_deref()
                    .unwrap_or("none: its account names no station")
            ),
        ));
    }
    let actor = crate::audit_chain::caller_actor(caller.as_deref());
    device
        .validate()
        .map_err(|(field, why)| unprocessable(format!("{field}: {why}")))?;
    let now = s.clock.now();
    if let Some(at) = device.last_report_at
        && at > now
    {
        return Err(unprocessable(format!(
            "last_report_at: {at} is in the future"
        )));
    }
    s.query(move |store| {
        if let Some(station) = &device.station
            && !exists(store.station(station.as_str()))?
        {
            return Err(missing("station", station.as_str()));
        }
        store.put_device(&device, now)?;
        crate::audit_chain::record(
            store,
            &actor,
            "device.put",
            format!("device:{}", device.id),
            serde_json::json!({}),
        )?;
        store.device(device.id.as_str())
    })
    .await?
    .map(Json)
    .map_err(registration_problem)
}

#[derive(Debug, Deserialize)]
struct DeviceParams {
    station: Option<String>,
    state: Option<String>,
    kind: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

async fn list_devices(
    State(s): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    Query(p): Query<DeviceParams>,
) -> Result<Json<Value>, Problem> {
    let mut filter = DeviceFilter {
        station: p
            .station
            .as_deref()
            .map(|v| {
                v.parse::<StationId>()
                    .map_err(|e| bad_request(format!("station: {e}")))
            })
            .transpose()?,
        state: p
            .state
            .as_deref()
            .map(|v| {
                DeviceState::ALL
                    .into_iter()
                    .find(|x| x.as_str() == v)
                    .ok_or_else(|| bad_request(format!("state: unknown device state {v:?}")))
            })
            .transpose()?,
        kind: p
            .kind
            .as_deref()
            .map(|v| {
                DeviceKind::ALL
                    .into_iter()
                    .find(|x| x.as_str() == v)
                    .ok_or_else(|| bad_request(format!("kind: unknown device kind {v:?}")))
            })
            .transpose()?,
    };
    let page = page(p.after, p.limit)?;
    // A site operator sees its own station's devices: asked for another's, none.
    if let Some(only) = crate::permissions::station_scope(caller.as_deref()) {
        let own = only.and_then(|o| o.parse::<StationId>().ok());
        match (&filter.station, own) {
            (Some(asked), Some(own)) if *asked != own => {
                return Ok(Json(json!({ "items": [], "next_after": null })));
            }
            (_, Some(own)) => filter.station = Some(own),
            (_, None) => return Ok(Json(json!({ "items": [], "next_after": null }))),
        }
    }
    Ok(listed(
        stored(&s, move |store| store.devices(&filter, page)).await?,
    ))
}

async fn get_device(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<store::DeviceRecord>, Problem> {
    let id: DeviceId = path_id(&id)?;
    Ok(Json(
        stored(&s, move |store| store.device(id.as_str())).await?,
    ))
}

async fn put_reader(
    State(s): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    body: axum::body::Bytes,
) -> Result<Json<Reader>, Problem> {
    let reader: Reader = parse(&body)?;
    let actor = crate::audit_chain::caller_actor(caller.as_deref());
    s.query(move |store| {
        if let Some(station) = &reader.station
            && !exists(store.station(station.as_str()))?
        {
            return Err(missing("station", station.as_str()));
        }
        if let Some(zone) = &reader.zone
            && !zone_exists(store, zone)?
        {
            return Err(missing("zone", zone.as_str()));
        }
        store.put_reader(&reader)?;
        crate::audit_chain::record(
            store,
            &actor,
            "reader.put",
            format!("reader:{}", reader.id),
            serde_json::json!({}),
        )?;
        store.reader(reader.id.as_str())
    })
    .await?
    .map(Json)
    .map_err(registration_problem)
}

async fn list_readers(
    State(s): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    Query(p): Query<PageParams>,
) -> Result<Json<Value>, Problem> {
    let page = page(p.after, p.limit)?;
    let rows = stored(&s, move |store| store.readers(page)).await?;
    let only = crate::permissions::station_scope(caller.as_deref());
    Ok(listed_where(rows, |r: &Reader| {
        only.as_ref()
            .is_none_or(|o| o.is_some() && r.station.as_ref().map(|s| s.as_str()) == o.as_deref())
    }))
}

async fn get_reader(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Reader>, Problem> {
    let id: ReaderId = path_id(&id)?;
    Ok(Json(
        stored(&s, move |store| store.reader(id.as_str())).await?,
    ))
}

#[derive(Debug, Deserialize)]
struct TrackParams {
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
    /// How many observations at exactly `from` were had already (`next_skip` of the page
    /// before): reports share a time, whole seconds for many devices.
    skip: Option<u32>,
    /// `line` (the default): one Feature with a LineString; `points`: a FeatureCollection with
    /// a Point per observation.
    format: Option<String>,
}

/// GeoJSON (RFC 7946): positions are `[lon, lat]`.
fn lon_lat(o: &Observation) -> Option<[f64; 2]> {
    o.reading().fix_position().map(|p| [p.lon, p.lat])
}

/// The track of a transit: its device's observations from the declaration to the closing.
/// Observations without a position fix are left out of the line; as points they come with a
/// null geometry, so that their lock state and battery still show. When the limit cuts the
/// track short, `next_from` and `next_skip` say where the rest starts: ask again with
/// `from=next_from&skip=next_skip` (reports sharing `next_from` that this page gave are
/// skipped, so none is given twice and none is lost, however many share one time).
async fn transit_track(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<TrackParams>,
) -> Result<Response, Problem> {
    let id: TransitId = path_id(&id)?;
    let range = range(&p.from, &p.to)?;
    let limit = p.limit.unwrap_or(TRACK_LIMIT_DEFAULT);
    if !(1..=TRACK_LIMIT_MAX).contains(&limit) {
        return Err(bad_request(format!(
            "limit: must be 1 to {TRACK_LIMIT_MAX}"
        )));
    }
    let points = match p.format.as_deref() {
        None | Some("line") => false,
        Some("points") => true,
        Some(other) => {
            return Err(bad_request(format!(
                "format: expected line or points, not {other:?}"
            )));
        }
    };
    let transit = id.to_string();
    let skip = p.skip.unwrap_or(0);
    if skip > TRACK_LIMIT_MAX {
        return Err(bad_request(format!(
            "skip: must be at most {TRACK_LIMIT_MAX}"
        )));
    }
    let from = range.from;
    let (device, mut track) = stored(&s, move |store| {
        let device = store.transit(id.as_str())?.transit.device;
        // One more than asked for: whether there is more to come.
        let track = store.transit_track(id.as_str(), range, limit + skip + 1)?;
        Ok((device, track))
    })
    .await?;
    // The reports at exactly `from` that the page before gave already.
    let given = track
        .iter()
        .take(skip as usize)
        .take_while(|o| Some(o.t) == from)
        .count();
    track.drain(..given);
    let (next_from, next_skip) = match track.get(limit as usize) {
        Some(next) => {
            let t = next.t;
            let same = track[..limit as usize]
                .iter()
                .rev()
                .take_while(|o| o.t == t)
                .count();
            // Still at the same time as this page's start: the skip adds up.
            let carried = if Some(t) == from { given } else { 0 };
            (Some(t), Some(same + carried))
        }
        None => (None, None),
    };
    track.truncate(limit as usize);
    let body = if points {
        let features: Vec<Value> = track
            .iter()
            .map(|o| {
                json!({
                    "type": "Feature",
                    "geometry": lon_lat(o).map(|c| json!({"type": "Point", "coordinates": c})),
                    "properties": {
                        "t": o.t,
                        "speed_kmh": o.speed_kmh,
                        "lock": o.lock,
                        "battery_pct": o.battery_pct,
                    }
                })
            })
            .collect();
        json!({
            "type": "FeatureCollection",
            "features": features,
            "transit": transit,
            "device": device,
            "next_from": next_from,
            "next_skip": next_skip,
        })
    } else {
        let fixes: Vec<(Timestamp, [f64; 2])> = track
            .iter()
            .filter_map(|o| Some((o.t, lon_lat(o)?)))
            .collect();
        // A LineString needs two positions (RFC 7946 §3.1.4); with fewer there is no line.
        let geometry = (fixes.len() >= 2).then(|| {
            json!({
                "type": "LineString",
                "coordinates": fixes.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
            })
        });
        json!({
            "type": "Feature",
            "geometry": geometry,
            "properties": {
                "transit": transit,
                "device": device,
                "times": fixes.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
                "next_from": next_from,
                "next_skip": next_skip,
            }
        })
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/geo+json"),
    );
    Ok(response)
}

async fn transit_alarms(
    State(s): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    Path(id): Path<String>,
    Query(mut p): Query<ListParams>,
) -> Result<axum::response::Response, Problem> {
    let id: TransitId = path_id(&id)?;
    let transit = id.to_string();
    // An unknown transit is a 404, not an empty list.
    stored(&s, move |store| store.transit(id.as_str()).map(drop)).await?;
    p.transit = Some(transit);
    crate::list_alarms(State(s), caller, Query(p)).await
}

async fn transit_statistics(State(s): State<AppState>) -> Result<Json<Value>, Problem> {
    let (counts, (automatic, held)) = stored(&s, |store| {
        Ok::<_, store::Error>((store.transit_counts()?, store.gate_outcomes()?))
    })
    .await?;
    // Every state, the empty ones too: a dashboard shows a zero rather than a gap.
    let items: Vec<Value> = TransitState::ALL
        .into_iter()
        .map(|state| {
            let count = counts
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n);
            json!({ "state": state, "count": count })
        })
        .collect();
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    // Quick mode (docs/alarms.md): of the transits an arrival gate read, the share it unsealed
    // by itself (Hangzhou and Ningbo report over 98 %).
    let gated = automatic + held;
    Ok(Json(json!({
        "items": items,
        "total": total,
        "quick_mode": {
            "arrival_gate_decisions": gated,
            "automatic_unseals": automatic,
            "held_for_an_officer": held,
            "automatic_unseal_rate": (gated > 0).then(|| automatic as f64 / gated as f64),
        },
    })))
}

#[derive(Debug, Deserialize)]
struct RangeParams {
    from: Option<String>,
    to: Option<String>,
}

async fn alarm_statistics(
    State(s): State<AppState>,
    Query(p): Query<RangeParams>,
) -> Result<Json<Value>, Problem> {
    let range = range(&p.from, &p.to)?;
    let items = stored(&s, move |store| store.alarm_counts(range)).await?;
    let total: u64 = items.iter().map(|c| c.count).sum();
    Ok(Json(json!({
        "from": range.from,
        "to": range.to,
        "items": items,
        "total": total,
    })))
}
