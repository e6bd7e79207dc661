//! Release or inspect at arrival (docs/decisions.md): the proposal with its explanation, the
//! officer's decision (an override needs a reason; both are audited), what the inspection
//! found, and the statistics of the practice.
//!
//! The facts are gathered here, on the writer thread, and scored by the pure `risk` crate. The
//! decision itself is the supervisor's `release` or `inspect` action, submitted like any other,
//! and recorded in `decisions` with the proposal as it was shown.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use model::{
    Action, ActionKind, DeviceEvent, HousingState, LockState, RopeState, Timestamp, TransitState,
};
use risk::{AlarmFact, Decision, DeviceFact, Facts, GoodsFact, Policy, Proposal};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{AlarmFilter, PageRequest, Store, StoredTransit, TimeRange};

use crate::{AppState, Problem, Submission, audit_chain, auth, parse, store_problem};

/// The routes of this module, merged into the service's router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/transits/{id}/proposal", get(proposal))
        .route("/api/v1/transits/{id}/decision", post(decide).get(decision))
        .route("/api/v1/transits/{id}/inspection", post(inspection))
        .route("/api/v1/statistics/decisions", get(statistics))
}

/// The risk policy and how far back the records go (`[risk]` in the configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct RiskConfig {
    pub policy: Policy,
    /// Transits declared this long before the decision count in the carrier's and the route's
    /// records.
    pub history_days: u32,
}

impl Default for RiskConfig {
    fn default() -> RiskConfig {
        RiskConfig {
            policy: Policy::default(),
            history_days: 365,
        }
    }
}

/// Alarms of one transit read for the proposal, at most.
const ALARMS_MAX: u32 = 1000;
/// Reports of the journey read for the device's integrity, at most (pages of 10,000).
const TRACK_PAGE: u32 = 10_000;
const TRACK_PAGES_MAX: usize = 20;

/// The device events that count as tampering.
const TAMPERING: [DeviceEvent; 3] = [
    DeviceEvent::Tamper,
    DeviceEvent::BackCoverOpen,
    DeviceEvent::DeviceRemoved,
];

/// Reads everything the proposal is made from, in one writer job.
fn gather(
    store: &mut dyn Store,
    id: &str,
    now: Timestamp,
    history_days: u32,
) -> store::Result<(StoredTransit, Facts)> {
    let stored = store.transit(id)?;
    let t = &stored.transit;
    let alarms = store
        .alarms(
            &AlarmFilter {
                transit: Some(id.to_owned()),
                ..AlarmFilter::default()
            },
            PageRequest {
                after: None,
                limit: ALARMS_MAX,
            },
        )?
        .into_iter()
        .map(|a| AlarmFact {
            id: a.id,
            kind: a.alarm.kind,
            grade: a.alarm.grade,
            state: a.state,
        })
        .collect();
    // The journey's reports: the last one that says anything about the seal, and how many
    // reported tampering.
    let mut device = DeviceFact::default();
    let mut range = TimeRange::default();
    for _ in 0..TRACK_PAGES_MAX {
        let page = store.transit_track(id, range, TRACK_PAGE)?;
        for o in &page {
            if o.events.iter().any(|e| TAMPERING.contains(&e)) {
                device.tamper_reports += 1;
            }
            if o.lock.is_some() || o.rope.is_some() || o.housing.is_some() {
                device.intact = Some(
                    o.lock != Some(LockState::Unlocked)
                        && o.rope != Some(RopeState::Cut)
                        && o.housing != Some(HousingState::Breached),
                );
            }
        }
        match page.last() {
            Some(last) if page.len() == TRACK_PAGE as usize => {
                range.from = Some(Timestamp::from_unix_ms(last.t.unix_ms() + 1));
            }
            _ => break,
        }
    }
    let since = Timestamp::from_unix_ms(
        now.unix_ms()
            .saturating_sub(i64::from(history_days) * 86_400_000),
    );
    let carrier = t.declaration.as_ref().and_then(|d| d.carrier.clone());
    let route = t
        .departure
        .as_ref()
        .zip(t.destination.as_ref())
        .map(|(a, b)| (a.as_str().to_owned(), b.as_str().to_owned()));
    let (carrier_record, route_record) = store.risk_records(
        carrier.as_deref(),
        route.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        since,
        id,
    )?;
    let facts = Facts {
        transit: id.to_owned(),
        alarms,
        device,
        carrier: carrier.zip(carrier_record),
        route: route.map(|(a, b)| format!("{a} → {b}")).zip(route_record),
        goods: t
            .cargo
            .iter()
            .map(|c| GoodsFact {
                kind: c.kind.clone(),
                hs_code: c.hs_code.clone(),
            })
            .collect(),
    };
    Ok((stored, facts))
}

async fn proposal_of(s: &AppState, id: String) -> Result<(StoredTransit, Proposal), Problem> {
    let now = s.clock.now();
    let config: Arc<RiskConfig> = s.risk.clone();
    let days = config.history_days;
    let (stored, facts) = s
        .query(move |st| gather(st, &id, now, days))
        .await?
        .map_err(store_problem)?;
    Ok((stored, risk::propose(&facts, &config.policy)))
}

/// `GET /api/v1/transits/{id}/proposal`: what to do at arrival, and why.
async fn proposal(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let (stored, proposal) = proposal_of(&s, id).await?;
    Ok(Json(json!({
        "transit": stored.transit.id,
        "state": stored.state,
        "proposal": proposal,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: Decision,
    /// Required when the decision goes against the proposal.
    #[serde(default)]
    reason: Option<String>,
}

/// The longest reason or note kept.
const TEXT_MAX_CHARS: usize = 2000;

fn text(field: &str, value: Option<String>) -> Result<Option<String>, Problem> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if value
        .as_ref()
        .is_some_and(|v| v.chars().count() > TEXT_MAX_CHARS)
    {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{field}: at most {TEXT_MAX_CHARS} characters"),
        ));
    }
    Ok(value)
}

/// `POST /api/v1/transits/{id}/decision`: release or inspect an arrived transit. The proposal
/// is made again now, so what is recorded is what the officer was answering; going against it
/// needs a reason.
async fn decide(
    State(s): State<AppState>,
    caller: Option<axum::Extension<auth::Caller>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let b: DecisionBody = parse(&body)?;
    let reason = text("reason", b.reason)?;
    let (stored, proposal) = proposal_of(&s, id.clone()).await?;
    if stored.state != TransitState::Arrived {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!(
                "transit {id} is {}: release or inspect is decided once it has arrived",
                stored.state.as_str()
            ),
        ));
    }
    let overridden = b.decision != proposal.decision;
    if overridden && reason.is_none() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "reason: required to {} when the proposal is to {} (score {} of {})",
                b.decision.as_str(),
                proposal.decision.as_str(),
                proposal.score,
                proposal.inspect_at
            ),
        ));
    }
    let actor = audit_chain::caller_actor(caller.as_deref());
    let kind = match b.decision {
        Decision::Release => ActionKind::Release,
        Decision::Inspect => ActionKind::Inspect,
    };
    let at = s.clock.now();
    let action = Action {
        t: at,
        transit: stored.transit.id.clone(),
        action: kind,
        deadline: None,
        device: None,
        reason: reason.clone(),
    };
    s.submit_one_as(Submission::Action(action), Some(actor.clone().into()))
        .await?;
    let record = store::DecisionRecord {
        id: 0,
        transit: id.clone(),
        at,
        actor: actor.clone(),
        proposed: proposal.decision,
        score: proposal.score,
        decided: b.decision,
        overridden,
        reason,
        proposal: serde_json::to_value(&proposal).unwrap_or(Value::Null),
        inspection: None,
    };
    let want = match b.decision {
        Decision::Release => TransitState::Released,
        Decision::Inspect => TransitState::Inspection,
    };
    let saved = s
        .query(move |st| -> store::Result<Option<store::DecisionRecord>> {
            // The supervisor takes the action only from `arrived`: if another officer's
            // decision came first, this one changed nothing and is not recorded.
            if st.transit(&record.transit)?.state != want {
                return Ok(None);
            }
            let saved = st.put_decision(&record)?;
            audit_chain::record(
                st,
                &actor,
                &format!("decision.{}", saved.decided.as_str()),
                format!("transit:{}", saved.transit),
                json!({
                    "proposed": saved.proposed.as_str(),
                    "score": saved.score,
                    "overridden": saved.overridden,
                    "reason": saved.reason,
                }),
            )?;
            Ok(Some(saved))
        })
        .await?
        .map_err(store_problem)?;
    match saved {
        Some(saved) => Ok((StatusCode::CREATED, Json(json!(saved)))),
        None => Err(Problem::new(
            StatusCode::CONFLICT,
            format!("transit {id}: decided by someone else meanwhile"),
        )),
    }
}

/// `GET /api/v1/transits/{id}/decision`: the decision taken, with the proposal as shown.
async fn decision(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<store::DecisionRecord>, Problem> {
    let d = s
        .query(move |st| st.decision(&id))
        .await?
        .map_err(store_problem)?;
    Ok(Json(d))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InspectionBody {
    /// Whether the inspection found something (undeclared goods, a broken seal...).
    found: bool,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/transits/{id}/inspection`: what the inspection of a transit found (once).
async fn inspection(
    State(s): State<AppState>,
    caller: Option<axum::Extension<auth::Caller>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<store::DecisionRecord>), Problem> {
    let b: InspectionBody = parse(&body)?;
    let result = store::InspectionResult {
        found: b.found,
        note: text("note", b.note)?,
        at: s.clock.now(),
    };
    let actor = audit_chain::caller_actor(caller.as_deref());
    let saved = s
        .query(move |st| {
            let saved = st.record_inspection(&id, &result)?;
            audit_chain::record(
                st,
                &actor,
                "decision.inspection_result",
                format!("transit:{id}"),
                json!({"found": result.found, "note": result.note}),
            )?;
            Ok::<_, store::Error>(saved)
        })
        .await?
        .map_err(store_problem)?;
    Ok((StatusCode::CREATED, Json(saved)))
}

#[derive(Deserialize)]
struct RangeParams {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/v1/statistics/decisions`: the share released without inspection and the hit
/// rate of inspections.
async fn statistics(
    State(s): State<AppState>,
    Query(p): Query<RangeParams>,
) -> Result<Json<Value>, Problem> {
    let range = crate::registry::range(&p.from, &p.to)?;
    let stats = s
        .query(move |st| st.decision_stats(range))
        .await?
        .map_err(store_problem)?;
    Ok(Json(json!({
        "from": range.from,
        "to": range.to,
        "decisions": stats.decisions,
        "released": stats.released,
        "inspected": stats.inspected,
        "overrides": stats.overrides,
        "inspections_with_result": stats.inspections_with_result,
        "inspections_finding": stats.inspections_finding,
        "released_without_inspection_share": stats.released_share(),
        "inspection_hit_rate": stats.hit_rate(),
    })))
}
