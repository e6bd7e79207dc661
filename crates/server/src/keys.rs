//! Native-protocol device keys (docs/protocol.md): provisioned, rotated and revoked here; the
//! native gateway looks them up when a device says hello.
//!
//! `PUT /api/v1/devices/{id}/keys` `{"signing_public": HEX, "agreement_public": HEX}` (the
//! device's Ed25519 and X25519 public keys, 32 bytes each) provisions the keys of a device in
//! the registry, replacing any earlier set (rotation) and clearing a revocation.
//! `DELETE /api/v1/devices/{id}/keys` revokes them: the gateway refuses the device from its
//! next hello on. A revoked set is kept so that evidence signed with it can still be checked.
//! `GET /api/v1/devices/{id}/keys` shows the current set.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use model::DeviceId;
use serde::Deserialize;
use store::DeviceKeysRecord;

use crate::{AppState, Problem, parse, store_problem};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysBody {
    signing_public: String,
    agreement_public: String,
}

fn device_id(id: &str) -> Result<DeviceId, Problem> {
    id.parse()
        .map_err(|e: model::IdError| Problem::new(StatusCode::BAD_REQUEST, format!("id: {e}")))
}

/// 32 bytes of hex, lower-cased.
fn key_hex(field: &str, text: &str) -> Result<[u8; 32], Problem> {
    sealproto::from_hex(text.trim())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{field}: must be 32 bytes in hex (64 digits)"),
            )
        })
}

/// `PUT /api/v1/devices/{id}/keys`.
pub(crate) async fn put(
    State(s): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<DeviceKeysRecord>, Problem> {
    let device = device_id(&id)?.to_string();
    let b: KeysBody = parse(&body)?;
    let signing = key_hex("signing_public", &b.signing_public)?;
    let agreement = key_hex("agreement_public", &b.agreement_public)?;
    if sealproto::VerifyingKey::from_bytes(&signing).is_err() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "signing_public: not an Ed25519 public key",
        ));
    }
    let (signing, agreement) = (sealproto::to_hex(&signing), sealproto::to_hex(&agreement));
    let now = s.clock.now();
    let actor = crate::audit_chain::caller_actor(caller.as_deref());
    let record = s
        .query(move |store| {
            store.device(&device)?;
            let record = store.put_device_keys(&device, &signing, &agreement, now)?;
            crate::audit_chain::record(
                store,
                &actor,
                "device_keys.put",
                format!("device:{device}"),
                serde_json::json!({
                    "signing_public": record.signing_public,
                    "agreement_public": record.agreement_public,
                }),
            )?;
            Ok(record)
        })
        .await?
        .map_err(store_problem)?;
    tracing::info!(device = %record.device, "native-protocol device keys provisioned");
    Ok(Json(record))
}

/// `GET /api/v1/devices/{id}/keys`.
pub(crate) async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeviceKeysRecord>, Problem> {
    let device = device_id(&id)?.to_string();
    let record = s
        .query(move |store| store.device_keys(&device))
        .await?
        .map_err(store_problem)?;
    Ok(Json(record))
}

/// `DELETE /api/v1/devices/{id}/keys`.
pub(crate) async fn revoke(
    State(s): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    Path(id): Path<String>,
) -> Result<Json<DeviceKeysRecord>, Problem> {
    let device = device_id(&id)?.to_string();
    let now = s.clock.now();
    let actor = crate::audit_chain::caller_actor(caller.as_deref());
    let record = s
        .query(move |store| {
            let record = store.revoke_device_keys(&device, now)?;
            crate::audit_chain::record(
                store,
                &actor,
                "device_keys.revoke",
                format!("device:{device}"),
                serde_json::json!({}),
            )?;
            Ok(record)
        })
        .await?
        .map_err(store_problem)?;
    tracing::info!(device = %record.device, "native-protocol device keys revoked");
    Ok(Json(record))
}
