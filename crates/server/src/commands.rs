//! Remote commands to devices: queued here, delivered by a device gateway.
//!
//! `POST /api/v1/devices/{id}/commands` queues a command (`seal`, `unseal`, `set_interval`,
//! `query_status`) and answers 202 with it, `queued`. The gateway the device is connected to
//! sends it at once (it hears of it through [`crate::Ingest::commands_queued`]); a device that
//! is offline gets it when it next authenticates. The device's answer makes it `done` or
//! `failed`.
//!
//! **An unseal is queued only when the API has authorised it**: it names its transit, the
//! transit is sealed with this device and still under supervision, and an officer has taken
//! `authorize_unseal` on it (the transit has an `unseal_authorized` event). Otherwise it is
//! refused with 409 and nothing is queued. The check and the queueing run together on the
//! writer thread, so nothing comes between them.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use model::{DeviceId, EventKind, TransitId};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{CommandKind, CommandState, CommandsOf, DeviceCommand, PageRequest, Store, TimeRange};

use crate::{AppState, ListParams, Problem, actor_of, auth, page, parse, store_problem};

#[derive(Debug, Deserialize)]
struct CommandBody {
    kind: CommandKind,
    #[serde(default)]
    args: Option<Value>,
    actor: String,
    #[serde(default)]
    transit: Option<String>,
}

/// The reporting intervals a `set_interval` may ask for, in seconds.
const INTERVAL_SECONDS: std::ops::RangeInclusive<u64> = 1..=86_400;

fn unprocessable(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
}

/// Checks a command's arguments by its kind.
fn check_args(kind: CommandKind, args: &Value) -> Result<(), Problem> {
    if !args.is_object() {
        return Err(unprocessable("args: must be an object"));
    }
    if kind == CommandKind::SetInterval {
        match args.get("seconds").and_then(Value::as_u64) {
            Some(s) if INTERVAL_SECONDS.contains(&s) => {}
            _ => {
                return Err(unprocessable(
                    "args: set_interval needs {\"seconds\": N}, N from 1 to 86400",
                ));
            }
        }
    }
    Ok(())
}

/// Whether the transit has an `unseal_authorized` event (read a page at a time).
fn unseal_authorized(store: &mut dyn Store, transit: &str) -> store::Result<bool> {
    let mut after = None;
    loop {
        let rows = store.events(
            transit,
            TimeRange::default(),
            PageRequest { after, limit: 1000 },
        )?;
        if rows
            .iter()
            .any(|(_, e)| e.event == EventKind::UnsealAuthorized)
        {
            return Ok(true);
        }
        match rows.last() {
            Some((id, _)) if rows.len() == 1000 => after = Some(*id),
            _ => return Ok(false),
        }
    }
}

/// The checks that need the store, and the queueing, in one go on the writer thread.
fn check_and_queue(
    store: &mut dyn Store,
    command: DeviceCommand,
) -> Result<DeviceCommand, Problem> {
    store.device(&command.device).map_err(store_problem)?;
    if let Some(transit) = &command.transit {
        let stored = store.transit(transit).map_err(|e| {
            if e.is_not_found() {
                unprocessable(format!("transit: no transit {transit}"))
            } else {
                store_problem(e)
            }
        })?;
        if stored.transit.device.as_str() != command.device {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                format!(
                    "transit: transit {transit} is sealed with device {}, not {}",
                    stored.transit.device, command.device
                ),
            ));
        }
        if command.kind == CommandKind::Unseal {
            if !stored.state.is_supervised() {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    format!(
                        "kind: unseal refused: transit {transit} is {}, not under supervision",
                        serde_json::to_value(stored.state)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    ),
                ));
            }
            if !unseal_authorized(store, transit).map_err(store_problem)? {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    format!(
                        "kind: unseal refused: not authorised; transit {transit} has no \
                         authorize_unseal (POST /api/v1/transits/{transit}/actions \
                         {{\"action\": \"authorize_unseal\"}} first)"
                    ),
                ));
            }
        }
    }
    store.queue_command(&command).map_err(store_problem)
}

/// What a quick-mode gate's event asks of the device (docs/alarms.md, "Quick mode"): a
/// departure gate's `sealed` locks it, an arrival gate's `unseal_authorized` opens it. Queued
/// for registered devices that take commands (not passive tags), with the gate's reader as the
/// actor, and audited like any command; returns the device to wake, if any.
pub(crate) fn queue_for_gate(
    store: &mut dyn Store,
    event: &model::Event,
) -> store::Result<Option<String>> {
    let Some(reader) = &event.reader else {
        return Ok(None);
    };
    let kind = match event.event {
        EventKind::Sealed => CommandKind::Seal,
        EventKind::UnsealAuthorized => CommandKind::Unseal,
        _ => return Ok(None),
    };
    let device = match store.device(event.device.as_str()) {
        Ok(d) => d.device,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    if matches!(
        device.kind,
        model::DeviceKind::Passive | model::DeviceKind::SemiActive
    ) {
        return Ok(None);
    }
    let queued = store.queue_command(&DeviceCommand {
        id: 0,
        device: device.id.to_string(),
        transit: Some(event.transit.to_string()),
        kind,
        args: json!({}),
        created_at: event.t,
        actor: format!("gate {reader}"),
        state: CommandState::Queued,
        sent_at: None,
        result_at: None,
        result: None,
    })?;
    crate::audit_chain::record(
        store,
        &queued.actor,
        "command.queue",
        format!("device:{}", queued.device),
        json!({"command": queued.id, "kind": queued.kind.as_str(), "transit": queued.transit, "quick_mode": true}),
    )?;
    tracing::info!(device = %queued.device, command = queued.id, kind = queued.kind.as_str(), actor = %queued.actor, "command queued by a gate");
    Ok(Some(queued.device))
}

/// `POST /api/v1/devices/{id}/commands`.
pub(crate) async fn queue(
    State(s): State<AppState>,
    caller: Option<axum::Extension<auth::Caller>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<DeviceCommand>), Problem> {
    let device: DeviceId = id
        .parse()
        .map_err(|e: model::IdError| Problem::new(StatusCode::BAD_REQUEST, format!("id: {e}")))?;
    let b: CommandBody = parse(&body)?;
    if b.actor.trim().is_empty() {
        return Err(unprocessable("actor: must not be empty"));
    }
    let args = b.args.unwrap_or_else(|| json!({}));
    check_args(b.kind, &args)?;
    let transit = b
        .transit
        .map(|t| {
            t.parse::<TransitId>()
                .map(|t| t.to_string())
                .map_err(|e| unprocessable(format!("transit: {e}")))
        })
        .transpose()?;
    if b.kind == CommandKind::Unseal && transit.is_none() {
        return Err(unprocessable(
            "transit: an unseal names the transit whose authorisation it carries out",
        ));
    }
    let command = DeviceCommand {
        id: 0,
        device: device.to_string(),
        transit,
        kind: b.kind,
        args,
        created_at: s.clock.now(),
        actor: actor_of(&b.actor, caller.as_deref()),
        state: CommandState::Queued,
        sent_at: None,
        result_at: None,
        result: None,
    };
    let queued = s
        .query(move |store| {
            let queued = check_and_queue(store, command)?;
            crate::audit_chain::record(
                store,
                &queued.actor,
                "command.queue",
                format!("device:{}", queued.device),
                json!({
                    "command": queued.id,
                    "kind": queued.kind.as_str(),
                    "transit": queued.transit,
                }),
            )
            .map_err(store_problem)?;
            Ok(queued)
        })
        .await??;
    tracing::info!(
        device = %queued.device,
        command = queued.id,
        kind = queued.kind.as_str(),
        actor = %queued.actor,
        "command queued"
    );
    // No gateway listening is fine: the device gets it when it next authenticates.
    let _ = s.commands.send(queued.device.clone());
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

fn listed(rows: Vec<DeviceCommand>) -> Json<Value> {
    let next = rows.last().map(|c| c.id);
    Json(json!({ "items": rows, "next_after": next }))
}

/// `GET /api/v1/devices/{id}/commands`.
pub(crate) async fn of_device(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, Problem> {
    let page = page(&p)?;
    let rows = s
        .query(move |store| store.commands(CommandsOf::Device(&id), page))
        .await?
        .map_err(store_problem)?;
    Ok(listed(rows))
}

/// `GET /api/v1/devices/{id}/log`: what a device sent that is not an observation, oldest
/// first: signed seal, unseal and tamper evidence of the native protocol (`kind: evidence`,
/// with the record parsed under `record`, checkable with `sealwatch verify-event`) and JT/T
/// 808 text command results. `kind` keeps one kind; a page may then hold fewer than `limit`
/// entries: go on with `next_after` until a page is empty.
pub(crate) async fn log_of_device(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, Problem> {
    let page = page(&p)?;
    let rows = s
        .query(move |store| store.device_log(&id, page))
        .await?
        .map_err(store_problem)?;
    let next = rows.last().map(|e| e.id);
    let items: Vec<Value> = rows
        .into_iter()
        .filter(|e| p.kind.as_deref().is_none_or(|k| k == e.kind))
        .map(|e| {
            let record = (e.kind == "evidence")
                .then(|| serde_json::from_str::<Value>(&e.text).ok())
                .flatten();
            let mut v = json!(e);
            if let Some(record) = record {
                v["record"] = record;
            }
            v
        })
        .collect();
    Ok(Json(json!({ "items": items, "next_after": next })))
}

/// `GET /api/v1/transits/{id}/commands`.
pub(crate) async fn of_transit(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, Problem> {
    let page = page(&p)?;
    let rows = s
        .query(move |store| store.commands(CommandsOf::Transit(&id), page))
        .await?
        .map_err(store_problem)?;
    Ok(listed(rows))
}
