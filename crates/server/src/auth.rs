//! API tokens: how scripts, gateways and integrations prove who they are.
//!
//! A token is `swt_<id>_<secret>`: the id is public (lists, logs, revocation), the secret is 256
//! random bits shown once when the token is made. The store keeps only the SHA-256 of the
//! secret; a slow password hash is not needed for a secret that cannot be guessed, and
//! verifying stays cheap on the ingest path.
//!
//! Every route under `/api/v1` needs `Authorization: Bearer <token>` when authentication is
//! required (the default for `sealwatch serve`), except the API reference and the OpenAPI
//! document; `/healthz`, `/readyz` and `/metrics` are for the machine's own monitoring and
//! stay open (bind the service to a private interface). What each role may do and see is the
//! permission matrix (`permissions.rs`, docs/security.md), enforced here once the caller is
//! known.
//!
//! People signed in through the interface present the `sealwatch_session` cookie instead
//! (`users.rs`): with it, every state-changing request also needs the session's CSRF token in
//! `X-CSRF-Token`. A request with both a bearer token and a cookie is judged by the token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use model::{Role, Timestamp};
use sha2::{Digest, Sha256};
use store::ApiToken;

use crate::{AppState, Problem, wall_clock};

const PREFIX: &str = "swt_";

/// A new token: what to give the caller once, and what to store.
#[derive(Debug)]
pub struct NewToken {
    /// The whole token, `swt_<id>_<secret>`. Shown once, never stored.
    pub token: String,
    pub record: ApiToken,
    /// The SHA-256 of the secret, hex: what the store keeps.
    pub secret_hash: String,
}

/// Makes a token for `role`, valid from `now` until `expires_at` (or until revoked).
pub fn generate(
    role: Role,
    label: &str,
    now: Timestamp,
    expires_at: Option<Timestamp>,
) -> Result<NewToken, getrandom::Error> {
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id)?;
    getrandom::fill(&mut secret)?;
    let id = hex(&id);
    let secret = hex(&secret);
    Ok(NewToken {
        token: format!("{PREFIX}{id}_{secret}"),
        secret_hash: hash(&secret),
        record: ApiToken {
            id,
            role,
            label: label.to_owned(),
            organisation: None,
            created_at: now,
            expires_at,
            revoked_at: None,
        },
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Compares in time independent of where the first difference is.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Splits `swt_<id>_<secret>`.
fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hexish = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(id) && hexish(secret) && id.len() <= 32).then_some((id, secret))
}

/// Who made a request, for handlers that record it.
#[derive(Clone, Debug, PartialEq)]
pub struct Caller {
    /// The API token's id; empty for a signed-in session.
    pub token_id: String,
    pub role: Role,
    /// The organisation of the token or of the signed-in user, if any.
    pub organisation: Option<String>,
    /// The person, when the request came with a session cookie.
    pub user: Option<crate::users::SignedIn>,
}

/// How long a looked-up token is trusted before the store is asked again: revocation takes
/// effect within this time.
const CACHE_FOR: Duration = Duration::from_secs(10);

/// Tokens recently looked up, so that a gateway posting every second does not cost a store
/// query per request.
#[derive(Debug, Default)]
pub struct TokenCache {
    /// A token and its secret's hash, or `None` for an id the store does not know (a client
    /// retrying with a wrong token costs one store query per period, not one per request).
    entries: Mutex<HashMap<String, (Found, Instant)>>,
}

/// A token and the hash of its secret, or `None` when the store does not know the id.
type Found = Option<(ApiToken, String)>;

impl TokenCache {
    /// `Some(found)` when the id was looked up recently, `found` being `None` if unknown.
    fn get(&self, id: &str) -> Option<Found> {
        let entries = self.entries.lock().ok()?;
        let (found, at) = entries.get(id)?;
        (at.elapsed() < CACHE_FOR).then(|| found.clone())
    }

    fn put(&self, id: &str, found: Found) {
        if let Ok(mut entries) = self.entries.lock() {
            // Bounded: a flood of made-up ids cannot grow it for ever.
            if entries.len() > 10_000 {
                entries.clear();
            }
            entries.insert(id.to_owned(), (found, Instant::now()));
        }
    }
}

/// Checks the session cookie of a request, and its CSRF token when the method changes state.
async fn authenticate_session(
    s: &AppState,
    request: Request,
    next: axum::middleware::Next,
    secret: String,
) -> Response {
    use crate::users::{self, SessionRefused};
    let session_problem = |detail: &str| {
        Problem::new(StatusCode::UNAUTHORIZED, format!("session: {detail}")).into_response()
    };
    if !users::is_session_secret(&secret) {
        return session_problem("not a sealwatch session; sign in again");
    }
    let now = wall_clock();
    let timeouts = s.session_timeouts;
    let checked = match s
        .query(move |store| users::check_session(store, &secret, now, timeouts))
        .await
    {
        Ok(c) => c,
        Err(p) => return p.into_response(),
    };
    let (user, session) = match checked {
        Ok(found) => found,
        Err(SessionRefused::Unknown) => return session_problem("unknown; sign in again"),
        Err(SessionRefused::Ended) => return session_problem("signed out; sign in again"),
        Err(SessionRefused::Expired) => return session_problem("expired; sign in again"),
        Err(SessionRefused::Store) => {
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store: cannot check sessions now; try again",
            )
            .into_response();
        }
    };
    let safe = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if !safe {
        let presented = request
            .headers()
            .get(users::CSRF_HEADER)
            .and_then(|v| v.to_str().ok());
        let csrf_problem = |detail: &str| {
            Problem::new(StatusCode::FORBIDDEN, format!("x-csrf-token: {detail}")).into_response()
        };
        match presented {
            None => {
                return csrf_problem(
                    "required with a session cookie on POST, PUT, PATCH and DELETE \
                     (the csrf_token given at sign-in)",
                );
            }
            Some(token) if !same(&users::sha256_hex(token.trim()), &session.csrf_hash) => {
                return csrf_problem("does not match the session's");
            }
            Some(_) => {}
        }
    }
    // An administrator without a second factor may only enrol one (or look at or end the
    // session): the password alone never reaches what an administrator can do.
    if s.admin_totp_required
        && user.role == Role::Administrator
        && user.totp_secret.is_none()
        && !users::allowed_before_enrolment(request.method(), request.uri().path())
    {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "totp: an administrator must enrol a second factor first \
             (POST /api/v1/session/totp), then sign in again with a code",
        )
        .into_response();
    }
    let caller = Caller {
        token_id: String::new(),
        role: user.role,
        organisation: user.organisation.clone(),
        user: Some(users::SignedIn {
            user_id: user.id,
            username: user.username,
            organisation: user.organisation,
            totp_enrolled: user.totp_secret.is_some(),
            session_hash: session.id_hash,
            expires_at: session.expires_at,
        }),
    };
    admit(s, request, next, caller).await
}

/// Lets an authenticated caller through if the permission matrix allows its role on the route
/// and, for a route about one transit or alarm, if the caller's scope holds it (else 404, as
/// for one that does not exist).
async fn admit(
    s: &AppState,
    mut request: Request,
    next: axum::middleware::Next,
    caller: Caller,
) -> Response {
    use crate::permissions::{self, Subject};
    // HEAD runs the GET handler: it is judged as GET.
    let method = if request.method() == axum::http::Method::HEAD {
        "get".to_owned()
    } else {
        request.method().as_str().to_ascii_lowercase()
    };
    let path = request.uri().path().to_owned();
    if let Err(p) = permissions::check(&caller, &method, &path) {
        return p.into_response();
    }
    let scope = permissions::scope(Some(&caller));
    if !scope.is_all()
        && let Some(subject) = permissions::subject(&path)
    {
        let sees = match &subject {
            Subject::Transit(id) => {
                let id = id.clone();
                s.query(move |store| scope.sees_transit_id(store, &id))
                    .await
            }
            Subject::Alarm(id) => {
                let id = *id;
                s.query(move |store| scope.sees_alarm_id(store, id)).await
            }
        };
        match sees {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return permissions::unseen(&subject).into_response(),
            Ok(Err(e)) => return crate::store_problem(e).into_response(),
            Err(p) => return p.into_response(),
        }
    }
    // A site operator sees the registry records of its own station only.
    if let Some(station) = permissions::station_scope(Some(&caller))
        && let Some(subject) = permissions::registry_subject(&path)
        // A reader's signed reads are open and judged by their signature.
        && !path.ends_with("/reads")
    {
        let check = subject.clone();
        let sees = s
            .query(move |store| permissions::sees_registry(store, station.as_deref(), &check))
            .await;
        match sees {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return permissions::registry_unseen(&subject).into_response(),
            Ok(Err(e)) => return crate::store_problem(e).into_response(),
            Err(p) => return p.into_response(),
        }
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

fn unauthorized(detail: &str) -> Response {
    let mut r =
        Problem::new(StatusCode::UNAUTHORIZED, format!("authorization: {detail}")).into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// Paths anyone may read: the service's own health and metrics, and the API's documentation;
/// and the paths that authenticate by signature instead of a token: a reader's signed reads
/// (`readers::post_reads` checks the signature with the reader's key) and vendors' signed
/// webhooks (`containers::webhook` checks an HMAC with the vendor's secret).
fn is_open(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/api/v1/openapi.json" | "/api/v1/docs"
    ) || !path.starts_with("/api/")
        || path
            .strip_prefix("/api/v1/readers/")
            .and_then(|rest| rest.strip_suffix("/reads"))
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
        // Vendor webhooks are authenticated by the signature of their body instead
        // (containers.rs): a vendor cloud holds a shared secret, not an API token.
        || path.starts_with("/api/v1/webhooks/")
}

/// Checks the bearer token of every request that needs one.
pub(crate) async fn authenticate(
    State(s): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    // Signing in is how a session starts: it cannot need one.
    let signing_in =
        request.uri().path() == "/api/v1/session" && request.method() == axum::http::Method::POST;
    if is_open(request.uri().path()) || signing_in {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let Some(value) = presented else {
        // A cookie presented is checked even when none is required, as tokens are.
        if let Some(secret) = crate::users::session_cookie(request.headers()) {
            return authenticate_session(&s, request, next, secret).await;
        }
        if s.auth_required {
            return unauthorized(
                "a bearer token (sealwatch token create) or a session (POST /api/v1/session) \
                 is required",
            );
        }
        return next.run(request).await;
    };
    // A token that is presented is checked even when none is required: a wrong one is a
    // mistake the caller should hear about.
    // The scheme's name is case-insensitive (RFC 9110).
    let Some(token) = value
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
        .map(|_| &value[7..])
    else {
        return unauthorized("expected `Bearer <token>`");
    };
    let Some((id, secret)) = parse(token.trim()) else {
        return unauthorized("not a sealwatch token (swt_...)");
    };
    let found = match s.tokens.get(id) {
        Some(found) => found,
        None => {
            let key = id.to_owned();
            let found = match s.query(move |store| store.token(&key)).await {
                Ok(Ok(found)) => Some(found),
                Ok(Err(e)) if e.is_not_found() => None,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot look a token up");
                    return Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "store: cannot check tokens now; try again",
                    )
                    .into_response();
                }
                Err(p) => return p.into_response(),
            };
            s.tokens.put(id, found.clone());
            found
        }
    };
    let Some((record, stored_hash)) = found else {
        return unauthorized("unknown token");
    };
    if !same(&hash(secret), &stored_hash) {
        return unauthorized("unknown token");
    }
    let now = wall_clock();
    if record.revoked_at.is_some() {
        return unauthorized("the token was revoked");
    }
    if !record.is_valid_at(now) {
        return unauthorized("the token has expired");
    }
    let caller = Caller {
        token_id: record.id,
        role: record.role,
        organisation: record.organisation,
        user: None,
    };
    admit(&s, request, next, caller).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_hash() {
        let t = generate(Role::Gateway, "g", Timestamp::from_unix_ms(0), None).unwrap();
        let (id, secret) = parse(&t.token).unwrap();
        assert_eq!(id, t.record.id);
        assert_eq!(secret.len(), 64, "256 bits");
        assert_eq!(hash(secret), t.secret_hash);
        assert!(!t.secret_hash.contains(secret));
        let other = generate(Role::Gateway, "g", Timestamp::from_unix_ms(0), None).unwrap();
        assert_ne!(t.token, other.token);
        for bad in [
            "",
            "swt_",
            "swt_abc",
            "swt__abc",
            "swt_ab_",
            "Bearer x",
            "swt_zz_00",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
