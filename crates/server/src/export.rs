//! CSV exports of the lists (`?format=csv` on `GET /api/v1/transits` and `/api/v1/alarms`):
//! every row the caller's filters and scope give (all pages, up to [`MAX_ROWS`]), with the
//! same redaction as the JSON answer. An export is recorded in the audit chain (who exported
//! what, how many rows, with which filters) before it is served, and its personal data as a
//! read of personal data; an export that cannot be recorded is not served.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use store::{AlarmFilter, PageRequest, Store, TransitFilter};

use crate::permissions::{self, Scope};
use crate::{AppState, Problem, audit_chain, auth, store_problem};

/// The most rows one export holds.
pub const MAX_ROWS: usize = 100_000;

/// Whether a list was asked for as CSV.
pub(crate) fn wants_csv(format: Option<&str>) -> Result<bool, Problem> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("format: {other:?} is not json or csv"),
        )),
    }
}

/// One CSV field (RFC 4180), with a cell a spreadsheet would take for a formula made text.
fn field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) && v.parse::<f64>().is_err() {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

fn csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let line = |cells: Vec<String>| cells.join(",") + "\r\n";
    out.push_str(&line(header.iter().map(|h| field(h)).collect()));
    for r in rows {
        out.push_str(&line(r.iter().map(|c| field(c)).collect()));
    }
    out
}

fn response(name: &str, body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// Records the export (and the personal data it holds) in the audit chain.
fn audit(
    store: &mut dyn Store,
    actor: &str,
    subject: &str,
    rows: usize,
    filters: serde_json::Value,
    personal: &[String],
) -> store::Result<()> {
    if !personal.is_empty() {
        audit_chain::record(
            store,
            actor,
            "personal_data.read",
            subject.to_owned(),
            serde_json::json!({
                "fields": ["driver"],
                "count": personal.len(),
                "transits": personal.iter().take(100).collect::<Vec<_>>(),
                "export": "csv",
            }),
        )?;
    }
    audit_chain::record(
        store,
        actor,
        "export",
        subject.to_owned(),
        serde_json::json!({ "format": "csv", "rows": rows, "filters": filters }),
    )
}

fn unrecorded(e: store::Error) -> Problem {
    tracing::warn!(error = %e, "cannot record an export");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "audit: the export cannot be recorded now, so it is not served; try again",
    )
}

/// The transits of `filter` the caller sees, as CSV.
pub(crate) async fn transits(
    s: &AppState,
    caller: Option<&auth::Caller>,
    filter: TransitFilter,
    filters: serde_json::Value,
) -> Result<Response, Problem> {
    let scope = permissions::scope(caller);
    let personal_ok = permissions::sees_personal_data(caller);
    let actor = audit_chain::caller_actor(caller);
    let caller = caller.cloned();
    let rows = s
        .query(move |store| -> Result<Vec<Vec<String>>, Problem> {
            let mut rows = Vec::new();
            let mut personal = Vec::new();
            let mut after = None;
            loop {
                let page = store
                    .transits(&filter, PageRequest { after, limit: 1000 })
                    .map_err(store_problem)?;
                let n = page.len();
                after = page.last().map(|(k, _)| *k);
                for (_, mut t) in page {
                    if !scope.sees_transit(&t.transit) || rows.len() >= MAX_ROWS {
                        continue;
                    }
                    permissions::redact(&mut t.transit, caller.as_ref());
                    let tr = &t.transit;
                    let d = tr.declaration.as_ref();
                    let v = tr.vehicle.as_ref();
                    let driver = tr.driver.as_ref().map(|d| d.name.0.clone());
                    if driver.is_some() {
                        personal.push(tr.id.to_string());
                    }
                    let mut row = vec![
                        tr.id.to_string(),
                        serde_json::to_value(t.state)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        opt(tr.departure.as_ref()),
                        opt(tr.destination.as_ref()),
                        tr.device.to_string(),
                        opt(v.and_then(|v| v.plate.as_ref())),
                        v.map(|v| {
                            v.containers
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default(),
                        opt(d.map(|d| d.number.to_string())),
                        opt(d.and_then(|d| d.carrier.clone())),
                        opt(d.and_then(|d| d.forwarder.clone())),
                        opt(d.and_then(|d| d.consignor.clone())),
                        opt(tr.sealed_at),
                        opt(tr.deadline),
                        t.declared_at.to_string(),
                        t.updated_at.to_string(),
                    ];
                    if personal_ok {
                        row.push(driver.unwrap_or_default());
                    }
                    rows.push(row);
                }
                if n < 1000 {
                    break;
                }
            }
            audit(store, &actor, "transits", rows.len(), filters, &personal).map_err(unrecorded)?;
            Ok(rows)
        })
        .await??;
    let mut header = vec![
        "id",
        "state",
        "departure",
        "destination",
        "device",
        "plate",
        "containers",
        "declaration",
        "carrier",
        "forwarder",
        "consignor",
        "sealed_at",
        "deadline",
        "declared_at",
        "updated_at",
    ];
    if personal_ok {
        header.push("driver");
    }
    Ok(response("transits.csv", csv(&header, &rows)))
}

/// The alarms of `filter` the caller sees, as CSV.
pub(crate) async fn alarms(
    s: &AppState,
    caller: Option<&auth::Caller>,
    filter: AlarmFilter,
    filters: serde_json::Value,
) -> Result<Response, Problem> {
    let scope: Scope = permissions::scope(caller);
    let actor = audit_chain::caller_actor(caller);
    let rows = s
        .query(move |store| -> Result<Vec<Vec<String>>, Problem> {
            let mut rows = Vec::new();
            let mut after = None;
            loop {
                let page = store
                    .alarms(&filter, PageRequest { after, limit: 1000 })
                    .map_err(store_problem)?;
                let n = page.len();
                after = page.last().map(|a| a.id);
                let seen = scope.filter_alarms(store, page).map_err(store_problem)?;
                for a in seen {
                    if rows.len() >= MAX_ROWS {
                        break;
                    }
                    let state = serde_json::to_value(a.state).unwrap_or_default();
                    rows.push(vec![
                        a.id.to_string(),
                        a.alarm.transit.to_string(),
                        a.alarm.device.to_string(),
                        a.alarm.kind.as_str().to_owned(),
                        a.alarm.grade.to_string(),
                        a.alarm.t.to_string(),
                        opt(a.alarm.lat),
                        opt(a.alarm.lon),
                        state["state"].as_str().unwrap_or_default().to_owned(),
                        state["outcome"].as_str().unwrap_or_default().to_owned(),
                        permissions::dispatched_to(&a)
                            .unwrap_or_default()
                            .to_owned(),
                        a.alarm.detail.clone(),
                    ]);
                }
                if n < 1000 {
                    break;
                }
            }
            audit(store, &actor, "alarms", rows.len(), filters, &[]).map_err(unrecorded)?;
            Ok(rows)
        })
        .await??;
    let header = [
        "id",
        "transit",
        "device",
        "kind",
        "grade",
        "t",
        "lat",
        "lon",
        "state",
        "outcome",
        "dispatched_to",
        "detail",
    ];
    Ok(response("alarms.csv", csv(&header, &rows)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_made_text() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-1.5"), "-1.5", "numbers stay numbers");
        assert_eq!(field("-1+2"), "'-1+2");
        assert_eq!(
            csv(&["a", "b"], &[vec!["1".into(), "x\ny".into()]]),
            "a,b\r\n1,\"x\ny\"\r\n"
        );
    }
}
