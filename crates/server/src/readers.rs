//! Readers' own keys and the checkpoint reads they sign (docs/readers.md).
//!
//! A fixed or handheld reader holds an Ed25519 key; its public half is provisioned here
//! (`PUT /api/v1/readers/{id}/key`, rotated by putting a new one, revoked with `DELETE`). The
//! reader posts its reads to `POST /api/v1/readers/{id}/reads` with the signature in a
//! `Sealwatch-Reader-Signature: ed25519=<hex>` header instead of a bearer token: a reader in a
//! gate booth or a patrol's pocket carries no token that could act as anyone else, and every
//! post it makes can be verified later by anyone holding its public key.
//!
//! The signed message is `sealwatch-reader-post-v1\n` + the reader's id + `\n` + the body's
//! bytes, so a signature made for one reader cannot be presented as another's. Each accepted
//! post is kept exactly as signed, with the key that checked it (`signed_reads`); a post whose
//! digest is already kept is a replay and is answered as such without being taken again.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use ed25519_dalek::{Signature, VerifyingKey};
use model::{CheckpointRead, ReaderId};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use store::{ReaderKeyRecord, SignedReadRecord};

use crate::{AppState, Problem, Submission, parse, store_problem};

/// The header that carries a reader's signature.
pub const SIGNATURE_HEADER: &str = "sealwatch-reader-signature";
/// What the signed message starts with: the format's name and version.
pub const SIGNED_CONTEXT: &[u8] = b"sealwatch-reader-post-v1\n";
/// The most reads one post may carry.
pub const MAX_READS_PER_POST: usize = 10_000;

/// The message a reader signs for a post of `body`.
pub fn signed_message(reader: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNED_CONTEXT.len() + reader.len() + 1 + body.len());
    m.extend_from_slice(SIGNED_CONTEXT);
    m.extend_from_slice(reader.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(body);
    m
}

fn reader_id(id: &str) -> Result<ReaderId, Problem> {
    id.parse()
        .map_err(|e: model::IdError| Problem::new(StatusCode::BAD_REQUEST, format!("id: {e}")))
}

fn unauthorized(detail: String) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, detail)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    public_key: String,
}

/// `PUT /api/v1/readers/{id}/key`: provisions (or rotates) a registered reader's key.
pub(crate) async fn put_key(
    State(s): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<ReaderKeyRecord>, Problem> {
    let reader = reader_id(&id)?.to_string();
    let b: KeyBody = parse(&body)?;
    let key = sealproto::from_hex(b.public_key.trim())
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .ok_or_else(|| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "public_key: must be 32 bytes in hex (64 digits)",
            )
        })?;
    if VerifyingKey::from_bytes(&key).is_err() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "public_key: not an Ed25519 public key",
        ));
    }
    let hex = sealproto::to_hex(&key);
    let now = s.clock.now();
    let actor = crate::audit_chain::caller_actor(caller.as_deref());
    let record = s
        .query(move |store| {
            store.reader(&reader)?;
            let record = store.put_reader_key(&reader, &hex, now)?;
            crate::audit_chain::record(
                store,
                &actor,
                "reader_key.put",
                format!("reader:{reader}"),
                serde_json::json!({ "public_key": record.public_key }),
            )?;
            Ok(record)
        })
        .await?
        .map_err(store_problem)?;
    tracing::info!(reader = %record.reader, "reader key provisioned");
    Ok(Json(record))
}

/// `GET /api/v1/readers/{id}/key`.
pub(crate) async fn get_key(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ReaderKeyRecord>, Problem> {
    let reader = reader_id(&id)?.to_string();
    let record = s
        .query(move |store| store.reader_key(&reader))
        .await?
        .map_err(store_problem)?;
    Ok(Json(record))
}

/// `DELETE /api/v1/readers/{id}/key`: the reader's posts are refused from now on.
pub(crate) async fn revoke_key(
    State(s): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    Path(id): Path<String>,
) -> Result<Json<ReaderKeyRecord>, Problem> {
    let reader = reader_id(&id)?.to_string();
    let now = s.clock.now();
    let actor = crate::audit_chain::caller_actor(caller.as_deref());
    let record = s
        .query(move |store| {
            let record = store.revoke_reader_key(&reader, now)?;
            crate::audit_chain::record(
                store,
                &actor,
                "reader_key.revoke",
                format!("reader:{reader}"),
                serde_json::json!({ "public_key": record.public_key }),
            )?;
            Ok(record)
        })
        .await?
        .map_err(store_problem)?;
    tracing::info!(reader = %record.reader, "reader key revoked");
    Ok(Json(record))
}

/// Reads the signature header: `ed25519=<128 hex digits>`.
fn signature(headers: &HeaderMap) -> Result<Signature, Problem> {
    let value = headers
        .get(SIGNATURE_HEADER)
        .ok_or_else(|| {
            unauthorized(format!(
                "{SIGNATURE_HEADER}: missing; a reader signs each post with its own key (docs/readers.md)"
            ))
        })?
        .to_str()
        .map_err(|_| unauthorized(format!("{SIGNATURE_HEADER}: not ASCII")))?;
    let hex = value
        .trim()
        .strip_prefix("ed25519=")
        .ok_or_else(|| unauthorized(format!("{SIGNATURE_HEADER}: expected `ed25519=<hex>`")))?;
    let bytes = sealproto::from_hex(hex)
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or_else(|| {
            unauthorized(format!(
                "{SIGNATURE_HEADER}: the signature must be 64 bytes in hex (128 digits)"
            ))
        })?;
    Ok(Signature::from_bytes(&bytes))
}

/// `POST /api/v1/readers/{id}/reads`: a reader's signed checkpoint reads (one read, or an
/// array of them for a handheld uploading what it read offline).
pub(crate) async fn post_reads(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let reader = reader_id(&id)?;
    let signature = signature(&headers)?;
    let message = signed_message(reader.as_str(), &body);
    let digest = sealproto::to_hex(&Sha256::digest(&message));

    // The key and whether this exact post was taken before, in one trip to the store.
    let (name, d) = (reader.to_string(), digest.clone());
    let (key, seen, registered) = s
        .query(move |store| {
            let key = store.reader_key(&name)?;
            let seen = match store.signed_read(&name, &d) {
                Ok(_) => true,
                Err(e) if e.is_not_found() => false,
                Err(e) => return Err(e),
            };
            let registered = match store.reader(&name) {
                Ok(r) => Some(r),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            };
            Ok::<_, store::Error>((key, seen, registered))
        })
        .await?
        .map_err(|e| {
            if e.is_not_found() {
                unauthorized(format!("reader {reader}: no key provisioned for it"))
            } else {
                store_problem(e)
            }
        })?;
    if let Some(at) = key.revoked_at {
        return Err(unauthorized(format!(
            "reader {reader}: its key was revoked at {at}"
        )));
    }
    let verifying = sealproto::from_hex(&key.public_key)
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .and_then(|k| VerifyingKey::from_bytes(&k).ok())
        .ok_or_else(|| {
            tracing::error!(reader = %reader, "a stored reader key does not parse");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store: the reader's key is damaged",
            )
        })?;
    if verifying.verify_strict(&message, &signature).is_err() {
        tracing::warn!(reader = %reader, "a reader post with a signature that does not verify");
        return Err(unauthorized(format!(
            "{SIGNATURE_HEADER}: does not verify with reader {reader}'s key"
        )));
    }
    if seen {
        return Ok((
            StatusCode::OK,
            Json(serde_json::json!({"accepted": 0, "replay": true, "results": []})),
        ));
    }

    let items = match parse::<Value>(&body)? {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        _ => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "body: expected a checkpoint read or an array of them",
            ));
        }
    };
    if items.len() > MAX_READS_PER_POST {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "body: {} reads in one post; at most {MAX_READS_PER_POST}",
                items.len()
            ),
        ));
    }
    let (accepted, results) = s
        .submit_items(items, |item| {
            let r: CheckpointRead = serde_json::from_value(item).map_err(|e| e.to_string())?;
            if r.reader != reader {
                return Err(format!(
                    "reader: the post is signed by {reader} but the read names {}",
                    r.reader
                ));
            }
            // A gate seals and opens devices by itself: only a fixed reader registered in
            // that zone is one, never a handheld claiming to be.
            if r.gate.is_some() {
                let at_gate = registered.as_ref().is_some_and(|g| {
                    g.kind == model::ReaderKind::Fixed && g.zone.as_ref() == Some(&r.zone)
                });
                if !at_gate {
                    return Err(format!(
                        "gate: reader {reader} is not registered as a fixed reader in zone {}",
                        r.zone
                    ));
                }
            }
            Ok(Submission::Read(r))
        })
        .await?;

    // Kept as evidence once taken; a failure here loses no read, only the copy of the post.
    let record = SignedReadRecord {
        id: 0,
        reader: reader.to_string(),
        digest,
        public_key: key.public_key,
        signature: sealproto::to_hex(&signature.to_bytes()),
        body: String::from_utf8_lossy(&body).into_owned(),
        received_at: s.clock.now(),
    };
    match s.query(move |store| store.add_signed_read(&record)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(reader = %reader, error = %e, "cannot keep a signed post"),
        Err(_) => tracing::warn!(reader = %reader, "cannot keep a signed post: stopping"),
    }
    Ok((
        StatusCode::OK,
        Json(serde_json::json!({"accepted": accepted, "results": results})),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostsQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/readers/{id}/posts`: what a reader posted, exactly as signed, with the key
/// that checked it, oldest first.
pub(crate) async fn posts(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PostsQuery>,
) -> Result<Json<Value>, Problem> {
    let reader = reader_id(&id)?.to_string();
    let page = crate::registry::page(q.after, q.limit)?;
    let rows = s
        .query(move |store| store.signed_reads(&reader, page))
        .await?
        .map_err(store_problem)?;
    let next_after = rows.last().map(|r| r.id);
    Ok(Json(
        serde_json::json!({"items": rows, "next_after": next_after}),
    ))
}
