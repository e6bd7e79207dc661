//! Smart containers (docs/containers.md): devices paired to ISO 6346 container numbers, and
//! the ingest of reports that name a container rather than a device, from the MQTT client
//! (`gateway::mqtt`, through [`crate::Ingest::submit_container_reports`]) and from vendor
//! clouds' webhook here.
//!
//! `POST /api/v1/containers/{number}/pairings` `{"device", "kind": "embedded"|"affixed",
//! "at"?}` pairs a device (201); `POST /api/v1/containers/{number}/pairings/{device}/unpair`
//! `{"at"?}` ends an affixed device's window; `GET /api/v1/containers/{number}/pairings` lists
//! them, oldest first. The rules (embedded for life, affixed to one container at a time,
//! windows that never overlap) are the store's (`Store::pair_container`): 409 when broken.
//!
//! A report is attributed to the device paired to its container **at the report's time**, so
//! a late report goes to the container it was sent for, not to wherever the device is now. A
//! report for a container with no device paired then, or with several and none named, is
//! refused as `unattributed` with the reason, and counted.
//!
//! `POST /api/v1/webhooks/containers/{vendor}?format=dcsa|uncefact` needs no bearer token:
//! the vendor signs the body. `Sealwatch-Signature: t=<unix seconds>,v1=<hex>` where the hex
//! is HMAC-SHA256 over `<t>.<body>` with the vendor's secret (`containers.webhook_secrets`);
//! several `v1=` entries may be sent while a secret is rotated. A time more than five minutes
//! from the service's wall clock is refused, so a captured request cannot be replayed later.
//! The answer (200, a result per report) comes once what was accepted is durable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use containers::{ContainerReport, Format};
use hmac::{KeyInit, Mac};
use model::{ContainerNumber, DeviceId, Timestamp};
use serde::{Deserialize, Serialize};
use store::{ContainerPairing, PairingKind};
use tokio::sync::{mpsc, oneshot};

use crate::writer::Job;
use crate::{AppState, Problem, Submission, Verdict, parse, store_problem, wall_clock};

/// The header a vendor's webhook request is signed in.
pub const SIGNATURE_HEADER: &str = "Sealwatch-Signature";

/// How far a signed request's time may be from the service's clock, in seconds.
pub const SIGNATURE_TOLERANCE_S: i64 = 300;

/// Each vendor's webhook secret. `Debug` names the vendors only: secrets never reach a log.
#[derive(Clone, Default)]
pub struct WebhookSecrets(Arc<BTreeMap<String, Box<[u8]>>>);

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl WebhookSecrets {
    /// Secrets by vendor; a vendor name must be valid in a URL path segment
    /// (`containers::valid_vendor`) and a secret must not be empty.
    pub fn new(
        secrets: impl IntoIterator<Item = (String, String)>,
    ) -> Result<WebhookSecrets, String> {
        let mut map = BTreeMap::new();
        for (vendor, secret) in secrets {
            if !containers::valid_vendor(&vendor) {
                return Err(format!(
                    "{vendor:?}: a vendor is 1 to 64 characters from A-Z, a-z, 0-9, '.', '_', '-'"
                ));
            }
            if secret.len() < 16 {
                return Err(format!(
                    "{vendor}: the secret must be at least 16 characters"
                ));
            }
            map.insert(vendor, secret.into_bytes().into_boxed_slice());
        }
        Ok(WebhookSecrets(Arc::new(map)))
    }

    fn get(&self, vendor: &str) -> Option<&[u8]> {
        self.0.get(vendor).map(|s| &s[..])
    }
}

/// Where container reports came from, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportSource {
    Mqtt,
    Webhook,
}

impl ReportSource {
    fn as_str(self) -> &'static str {
        match self {
            ReportSource::Mqtt => "mqtt",
            ReportSource::Webhook => "webhook",
        }
    }
}

/// What became of one container report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReportOutcome {
    /// Durable and supervised, as a report of `device`.
    Accepted { device: String },
    /// Taken before; nothing was done.
    Duplicate { device: String },
    /// Attributed to `device`, and refused by the pipeline.
    Rejected { device: String, error: String },
    /// No device could be attributed (none paired at the report's time, or several and none
    /// named): not stored.
    Unattributed { error: String },
}

/// The counters of container reports, by source and outcome (`/metrics`).
#[derive(Debug, Default)]
pub struct ContainerMetrics {
    /// Indexed by `[source][outcome]`: outcomes as in `OUTCOMES`.
    counts: [[AtomicU64; 6]; 2],
}

const OUTCOMES: [&str; 6] = [
    "accepted",
    "duplicate",
    "rejected",
    "unattributed",
    "malformed",
    "unauthenticated",
];

impl ContainerMetrics {
    fn add(&self, source: ReportSource, outcome: usize) {
        self.counts[source as usize][outcome].fetch_add(1, Ordering::Relaxed);
    }

    /// A message or request that could not be read.
    pub(crate) fn malformed(&self, source: ReportSource) {
        self.add(source, 4);
    }

    fn unauthenticated(&self) {
        self.add(ReportSource::Webhook, 5);
    }

    fn outcome(&self, source: ReportSource, o: &ReportOutcome) {
        let i = match o {
            ReportOutcome::Accepted { .. } => 0,
            ReportOutcome::Duplicate { .. } => 1,
            ReportOutcome::Rejected { .. } => 2,
            ReportOutcome::Unattributed { .. } => 3,
        };
        self.add(source, i);
    }

    /// The counter of one source and outcome (tests and gateways read it).
    pub fn count(&self, source: ReportSource, outcome: &str) -> u64 {
        OUTCOMES.iter().position(|o| *o == outcome).map_or(0, |i| {
            self.counts[source as usize][i].load(Ordering::Relaxed)
        })
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::from(
            "# HELP sealwatch_container_reports_total Smart-container reports and messages, by source and outcome.\n\
             # TYPE sealwatch_container_reports_total counter\n",
        );
        for source in [ReportSource::Mqtt, ReportSource::Webhook] {
            for (i, outcome) in OUTCOMES.iter().enumerate() {
                let n = self.counts[source as usize][i].load(Ordering::Relaxed);
                out.push_str(&format!(
                    "sealwatch_container_reports_total{{source=\"{}\",outcome=\"{outcome}\"}} {n}\n",
                    source.as_str()
                ));
            }
        }
        out
    }
}

/// Attributes each report to the device paired to its container at the report's time,
/// submits the attributed ones together, and answers once they are committed. `Err` when the
/// service is stopping or the store is unavailable: nothing was stored.
pub(crate) async fn submit_reports(
    jobs: &mpsc::Sender<Job>,
    now: Timestamp,
    metrics: &ContainerMetrics,
    source: ReportSource,
    reports: Vec<ContainerReport>,
) -> Result<Vec<ReportOutcome>, String> {
    const STOPPING: &str = "the service is stopping";
    let wanted: Vec<(ContainerNumber, Timestamp, Option<DeviceId>)> = reports
        .iter()
        .map(|r| (r.container.clone(), r.reading.t, r.device.clone()))
        .collect();
    let (tx, rx) = oneshot::channel();
    let job = Job::Query(Box::new(move |store| {
        let attributed: store::Result<Vec<Result<DeviceId, String>>> = wanted
            .iter()
            .map(|(container, t, named)| {
                let paired = store.container_pairings_at(container.as_str(), *t)?;
                Ok(attribute(container, *t, named.as_ref(), &paired))
            })
            .collect();
        let _ = tx.send(attributed);
    }));
    jobs.send(job).await.map_err(|_| STOPPING.to_owned())?;
    let attributed = rx
        .await
        .map_err(|_| "the store is unavailable".to_owned())?
        .map_err(|e| {
            tracing::error!(error = %e, "cannot read container pairings");
            "the store is unavailable".to_owned()
        })?;
    let mut outcomes: Vec<Option<ReportOutcome>> = Vec::with_capacity(reports.len());
    let mut submitted = Vec::new();
    let mut items = Vec::new();
    for (i, (report, device)) in reports.into_iter().zip(attributed).enumerate() {
        match device {
            Ok(device) => {
                submitted.push((i, device.to_string()));
                items.push(Submission::Observation(report.reading.with_device(device)));
                outcomes.push(None);
            }
            Err(error) => outcomes.push(Some(ReportOutcome::Unattributed { error })),
        }
    }
    if !items.is_empty() {
        let (reply, rx) = oneshot::channel();
        let job = Job::Submit {
            items,
            actor: None,
            now,
            received: Instant::now(),
            reply,
        };
        jobs.send(job).await.map_err(|_| STOPPING.to_owned())?;
        let verdicts = rx.await.map_err(|_| STOPPING.to_owned())??;
        for ((i, device), verdict) in submitted.into_iter().zip(verdicts) {
            outcomes[i] = Some(match verdict {
                Verdict::Accepted => ReportOutcome::Accepted { device },
                Verdict::Duplicate => ReportOutcome::Duplicate { device },
                Verdict::Rejected(error) => ReportOutcome::Rejected { device, error },
            });
        }
    }
    let outcomes: Vec<ReportOutcome> = outcomes.into_iter().flatten().collect();
    for o in &outcomes {
        metrics.outcome(source, o);
        if let ReportOutcome::Unattributed { error } = o {
            tracing::info!(source = source.as_str(), %error, "container report not attributed");
        }
    }
    Ok(outcomes)
}

/// The device a report is attributed to, from the pairings in force at its time.
fn attribute(
    container: &ContainerNumber,
    t: Timestamp,
    named: Option<&DeviceId>,
    paired: &[ContainerPairing],
) -> Result<DeviceId, String> {
    let found = match named {
        Some(device) => paired
            .iter()
            .find(|p| p.device == device.as_str())
            .ok_or_else(|| {
                format!("device: {device} was not paired to container {container} at {t}")
            })?,
        None => match paired {
            [] => {
                return Err(format!(
                    "container: no device was paired to container {container} at {t}"
                ));
            }
            [one] => one,
            several => {
                let names: Vec<&str> = several.iter().map(|p| p.device.as_str()).collect();
                return Err(format!(
                    "device: {} devices were paired to container {container} at {t} ({}); the report must name its device",
                    names.len(),
                    names.join(", ")
                ));
            }
        },
    };
    found
        .device
        .parse()
        .map_err(|e: model::IdError| format!("device: stored pairing: {e}"))
}

fn container_number(number: &str) -> Result<ContainerNumber, Problem> {
    number
        .parse()
        .map_err(|e: model::IdError| Problem::new(StatusCode::BAD_REQUEST, format!("number: {e}")))
}

/// A registered device's kind and container must agree with a pairing: an embedded unit is
/// paired as embedded, to the container the registry says it is built into; an affixed unit
/// as affixed. Other kinds (an e-lock on a container's door) may be paired either way.
fn registry_agrees(
    device: &model::Device,
    container: &ContainerNumber,
    kind: PairingKind,
) -> store::Result<()> {
    use model::DeviceKind;
    let conflict = |why: String| Err(store::Error::Conflict(why));
    match (device.kind, kind) {
        (DeviceKind::SmartContainerEmbedded, PairingKind::Affixed) => {
            return conflict(format!(
                "kind: {} is registered as smart_container_embedded; pair it as embedded",
                device.id
            ));
        }
        (DeviceKind::SmartContainerAffixed, PairingKind::Embedded) => {
            return conflict(format!(
                "kind: {} is registered as smart_container_affixed; pair it as affixed",
                device.id
            ));
        }
        _ => {}
    }
    match &device.container {
        Some(built_into) if kind == PairingKind::Embedded && built_into != container => {
            conflict(format!(
                "device: {} is registered as built into container {built_into}",
                device.id
            ))
        }
        _ => Ok(()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PairBody {
    device: DeviceId,
    kind: PairingKind,
    /// When the pairing begins; now when absent.
    #[serde(default)]
    at: Option<Timestamp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnpairBody {
    #[serde(default)]
    at: Option<Timestamp>,
}

/// `POST /api/v1/containers/{number}/pairings`.
pub(crate) async fn pair(
    State(s): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    Path(number): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<ContainerPairing>), Problem> {
    let container = container_number(&number)?;
    let b: PairBody = parse(&body)?;
    let at = b.at.unwrap_or_else(|| s.clock.now());
    let device = b.device.to_string();
    let actor = crate::audit_chain::caller_actor(caller.as_deref());
    let pairing = s
        .query(move |store| {
            match store.device(&device) {
                Ok(registered) => registry_agrees(&registered.device, &container, b.kind)?,
                // A vendor's unit need not be in the registry.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            let pairing = store.pair_container(container.as_str(), &device, b.kind, at)?;
            crate::audit_chain::record(
                store,
                &actor,
                "container.pair",
                format!("container:{}", pairing.container),
                serde_json::json!({
                    "pairing": pairing.id,
                    "device": pairing.device,
                    "kind": pairing.kind.as_str(),
                    "paired_at": pairing.paired_at.to_string(),
                }),
            )?;
            Ok(pairing)
        })
        .await?
        .map_err(store_problem)?;
    tracing::info!(container = %pairing.container, device = %pairing.device, kind = pairing.kind.as_str(), "device paired to container");
    Ok((StatusCode::CREATED, Json(pairing)))
}

/// `POST /api/v1/containers/{number}/pairings/{device}/unpair`.
pub(crate) async fn unpair(
    State(s): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    Path((number, device)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<ContainerPairing>, Problem> {
    let container = container_number(&number)?;
    let device: DeviceId = device.parse().map_err(|e: model::IdError| {
        Problem::new(StatusCode::BAD_REQUEST, format!("device: {e}"))
    })?;
    let b: UnpairBody = if body.iter().all(u8::is_ascii_whitespace) {
        UnpairBody::default()
    } else {
        parse(&body)?
    };
    let at = b.at.unwrap_or_else(|| s.clock.now());
    let actor = crate::audit_chain::caller_actor(caller.as_deref());
    let pairing = s
        .query(move |store| {
            let pairing = store.unpair_container(container.as_str(), device.as_str(), at)?;
            crate::audit_chain::record(
                store,
                &actor,
                "container.unpair",
                format!("container:{}", pairing.container),
                serde_json::json!({
                    "pairing": pairing.id,
                    "device": pairing.device,
                    "unpaired_at": pairing.unpaired_at.map(|t| t.to_string()),
                }),
            )?;
            Ok(pairing)
        })
        .await?
        .map_err(store_problem)?;
    tracing::info!(container = %pairing.container, device = %pairing.device, "device unpaired from container");
    Ok(Json(pairing))
}

/// `GET /api/v1/containers/{number}/pairings`.
pub(crate) async fn pairings(
    State(s): State<AppState>,
    Path(number): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let container = container_number(&number)?;
    let key = container.to_string();
    let pairings = s
        .query(move |store| store.container_pairings(&key))
        .await?
        .map_err(store_problem)?;
    Ok(Json(
        serde_json::json!({ "container": container, "pairings": pairings }),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct WebhookQuery {
    format: Option<String>,
}

/// `POST /api/v1/webhooks/containers/{vendor}`.
pub(crate) async fn webhook(
    State(s): State<AppState>,
    Path(vendor): Path<String>,
    Query(q): Query<WebhookQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, Problem> {
    let Some(secret) = s.webhook_secrets.get(&vendor) else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("vendor: no webhook is configured for {vendor:?} (containers.webhook_secrets)"),
        ));
    };
    let header = headers
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or(""));
    if let Err(why) = verify(secret, header, &body, wall_clock()) {
        s.containers.unauthenticated();
        tracing::info!(%vendor, %why, "webhook request refused");
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            format!("{SIGNATURE_HEADER}: {why}"),
        ));
    }
    let format: Format = q
        .format
        .as_deref()
        .ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "format: missing; add ?format=dcsa or ?format=uncefact",
            )
        })?
        .parse()
        .map_err(|e: containers::ParseError| {
            Problem::new(StatusCode::BAD_REQUEST, e.to_string())
        })?;
    let reports = containers::parse(format, &body).map_err(|e| {
        s.containers.malformed(ReportSource::Webhook);
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
    })?;
    let outcomes = submit_reports(
        &s.jobs,
        s.clock.now(),
        &s.containers,
        ReportSource::Webhook,
        reports,
    )
    .await
    .map_err(|e| Problem::new(StatusCode::SERVICE_UNAVAILABLE, e))?;
    let accepted = outcomes
        .iter()
        .filter(|o| matches!(o, ReportOutcome::Accepted { .. }))
        .count();
    let results: Vec<serde_json::Value> = outcomes
        .iter()
        .enumerate()
        .map(|(index, o)| {
            let mut v = serde_json::to_value(o).unwrap_or_default();
            v["index"] = index.into();
            v
        })
        .collect();
    Ok(Json(
        serde_json::json!({ "accepted": accepted, "results": results }),
    ))
}

/// Checks a `Sealwatch-Signature` header against the body: what is wrong, if anything.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: Timestamp,
) -> Result<(), String> {
    let header = header.ok_or("missing; sign the body (docs/containers.md)")?;
    const FORMAT: &str = "expected t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">";
    let mut t: Option<&str> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) if t.is_none() => t = Some(v),
            Some(("v1", v)) => {
                signatures.push(from_hex(v).ok_or_else(|| format!("v1 is not hex; {FORMAT}"))?)
            }
            // Other schemes (a future v2) are ignored, as senders may send several.
            Some((k, _)) if k != "t" => {}
            _ => return Err(FORMAT.to_owned()),
        }
    }
    let t_text = t.ok_or_else(|| format!("no t=; {FORMAT}"))?;
    let t_s: i64 = t_text
        .parse()
        .map_err(|_| format!("t={t_text:?} is not unix seconds; {FORMAT}"))?;
    if signatures.is_empty() {
        return Err(format!("no v1=; {FORMAT}"));
    }
    let skew_s = (now.unix_ms() / 1000).saturating_sub(t_s);
    if skew_s.abs() > SIGNATURE_TOLERANCE_S {
        return Err(format!(
            "t={t_s} is {skew_s} s from the service's clock; at most {SIGNATURE_TOLERANCE_S} s are allowed (replay protection)"
        ));
    }
    for signature in &signatures {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret)
            .map_err(|_| "the vendor's secret cannot key HMAC".to_owned())?;
        mac.update(t_text.as_bytes());
        mac.update(b".");
        mac.update(body);
        // `verify_slice` compares in constant time.
        if mac.verify_slice(signature).is_ok() {
            return Ok(());
        }
    }
    Err("the signature does not match the body (check the vendor's secret)".to_owned())
}

/// The signature header for `body` at `t_s` (vendors' reference; tests sign with it).
pub fn sign(secret: &[u8], t_s: i64, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(t_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t_s},v1={hex}")
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_and_errors_say_what_is_wrong() {
        let secret = b"0123456789abcdef-secret";
        let now = Timestamp::from_unix_ms(1_800_000_000_000);
        let body = br#"{"a":1}"#;
        let good = sign(secret, 1_800_000_000, body);
        assert_eq!(verify(secret, Some(&good), body, now), Ok(()));
        // Rotation: an old and a new signature, either matching is enough.
        let (_, hex) = good.split_once(",v1=").unwrap();
        let rotated = format!("t=1800000000,v1={},v1={hex}", "00".repeat(32));
        assert_eq!(verify(secret, Some(&rotated), body, now), Ok(()));
        let cases: [(Option<&str>, &str); 6] = [
            (None, "missing"),
            (Some("garbage"), "expected t="),
            (Some("t=soon,v1=00"), "not unix seconds"),
            (Some("t=1800000000"), "no v1="),
            (Some("t=1800000000,v1=zz"), "not hex"),
            (Some("t=1799999000,v1=00"), "replay"),
        ];
        for (header, words) in cases {
            let e = verify(secret, header, body, now).unwrap_err();
            assert!(e.contains(words), "{header:?}: {e}");
        }
        let e = verify(secret, Some(&good), br#"{"a":2}"#, now).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = verify(b"another-secret-16chars", Some(&good), body, now).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
    }

    #[test]
    fn secrets_never_print() {
        let s = WebhookSecrets::new([("acme".into(), "very-secret-value-1".into())]).unwrap();
        let printed = format!("{s:?}");
        assert!(
            printed.contains("acme") && !printed.contains("very-secret"),
            "{printed}"
        );
        assert!(WebhookSecrets::new([("ac me".into(), "very-secret-value-1".into())]).is_err());
        assert!(WebhookSecrets::new([("acme".into(), "short".into())]).is_err());
    }
}
