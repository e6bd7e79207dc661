//! People who sign in: passwords, sessions, the sign-in lockout and the TOTP second factor
//! (docs/security.md, "Authentication").
//!
//! - Passwords are kept as Argon2id hashes with the OWASP minimum parameters: 19 MiB of
//!   memory, 2 passes, 1 lane ([`ARGON2_M_COST_KIB`] and the rest), a random 128-bit salt each.
//! - A session is a 256-bit random secret in the `sealwatch_session` cookie (HttpOnly,
//!   SameSite=Strict, Secure over TLS); the store keeps only its SHA-256, and the SHA-256 of the
//!   session's CSRF token, which every state-changing request with the cookie must send back in
//!   `X-CSRF-Token`.
//! - Sign-in failures are counted per username and per client address; past a threshold the
//!   key is locked for a minute, doubling with every further failure. The answer to a failed
//!   sign-in is the same whether the user exists or not.
//! - An administrator enrols a TOTP second factor (RFC 6238: HMAC-SHA-1, 30 s, 6 digits);
//!   from then on signing in needs a code. Until then (with `auth.admin_totp_required`, on by
//!   default) an administrator's session can only enrol: the session that enrols ends, and the
//!   next sign-in needs a code.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{KeyInit, Mac};
use model::{Role, Timestamp};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use store::{Session, Store, User};

use crate::auth::Caller;
use crate::{AppState, Problem, parse};

/// Argon2id memory cost in KiB (19 MiB, the OWASP minimum).
pub const ARGON2_M_COST_KIB: u32 = 19 * 1024;
/// Argon2id passes.
pub const ARGON2_T_COST: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_P_COST: u32 = 1;

/// The session cookie's name.
pub const COOKIE: &str = "sealwatch_session";
/// The header carrying the CSRF token with a session cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Shortest password accepted when one is chosen by a person (generated ones are longer).
pub const MIN_PASSWORD_CHARS: usize = 12;

fn argon2() -> Argon2<'static> {
    let params = Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None)
        .expect("the documented parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a password could not be set.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password: at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("password: no random numbers from the system ({0})")]
    Random(getrandom::Error),
    #[error("password: cannot hash ({0})")]
    Hash(String),
}

/// Checks a chosen password: long enough is what matters (NIST SP 800-63B), not its classes
/// of characters.
pub fn check_password(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}

/// The Argon2id PHC string of `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (with the parameters recorded in it).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Letters and digits that cannot be mistaken for one another when read off a screen.
const PASSWORD_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A random password of 24 characters from a 56-character alphabet (about 139 bits).
pub fn random_password() -> Result<String, getrandom::Error> {
    let mut out = String::with_capacity(24);
    while out.len() < 24 {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % PASSWORD_ALPHABET.len();
        for b in bytes {
            if usize::from(b) < limit && out.len() < 24 {
                out.push(char::from(
                    PASSWORD_ALPHABET[usize::from(b) % PASSWORD_ALPHABET.len()],
                ));
            }
        }
    }
    Ok(out)
}

/// Creates the first administrator, `admin`, when there is no user at all. Its password is
/// `initial_password` when given (configuration), else a random one, returned so the caller
/// can show it once. `Ok(None)` when users exist or the password came from configuration.
pub fn ensure_admin(
    store: &mut dyn Store,
    initial_password: Option<&str>,
    now: Timestamp,
) -> Result<Option<String>, String> {
    if !store.users().map_err(|e| e.to_string())?.is_empty() {
        return Ok(None);
    }
    let (password, generated) = match initial_password {
        Some(p) => {
            check_password(p).map_err(|e| format!("auth.initial_admin_password: {e}"))?;
            (p.to_owned(), false)
        }
        None => (
            random_password().map_err(|e| format!("password: no random numbers ({e})"))?,
            true,
        ),
    };
    let hash = hash_password(&password).map_err(|e| e.to_string())?;
    store
        .create_user(&new_user("admin", Role::Administrator, None, hash, now))
        .map_err(|e| e.to_string())?;
    crate::audit_chain::record(
        store,
        "first start",
        "user.create",
        "user:admin".to_owned(),
        json!({"role": Role::Administrator.to_string(), "password": if generated { "generated" } else { "from the configuration" }}),
    )
    .map_err(|e| e.to_string())?;
    Ok(generated.then_some(password))
}

/// A user to hand to [`Store::create_user`].
pub fn new_user(
    username: &str,
    role: Role,
    organisation: Option<String>,
    password_hash: String,
    now: Timestamp,
) -> User {
    User {
        id: 0,
        username: username.to_owned(),
        role,
        organisation,
        password_hash,
        totp_secret: None,
        failed_logins: 0,
        locked_until: None,
        created_at: now,
        disabled_at: None,
    }
}

// ---------------------------------------------------------------------------------------------
// TOTP (RFC 6238 over RFC 4226).

/// The TOTP time step.
pub const TOTP_STEP_SECONDS: i64 = 30;
/// Digits of a TOTP code.
pub const TOTP_DIGITS: u32 = 6;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes [`base32`] (case-insensitive, padding and spaces ignored).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.chars().filter(|c| !matches!(c, '=' | ' ')) {
        let v = BASE32
            .iter()
            .position(|&b| char::from(b) == c.to_ascii_uppercase())?;
        buffer = (buffer << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// The TOTP code of `secret` (raw bytes) for the step holding unix time `unix_s`.
pub fn totp_code(secret: &[u8], unix_s: i64) -> String {
    let counter = unix_s.div_euclid(TOTP_STEP_SECONDS) as u64;
    let mut mac =
        hmac::Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // Dynamic truncation (RFC 4226 §5.3).
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!(
        "{:0width$}",
        value % 10u32.pow(TOTP_DIGITS),
        width = TOTP_DIGITS as usize
    )
}

/// The time step whose code `code` is, for `secret_b32` at `now`: the current step, or the
/// one before or after (clocks of phones drift, and a code typed at the end of its step
/// arrives in the next). `None` when it is none of them.
pub fn totp_step(secret_b32: &str, code: &str, now: Timestamp) -> Option<i64> {
    let secret = base32_decode(secret_b32)?;
    let code = code.trim();
    let unix_s = now.unix_ms().div_euclid(1000);
    [-1, 0, 1]
        .iter()
        .map(|d| unix_s + d * TOTP_STEP_SECONDS)
        .find(|&t| crate::auth::same(&totp_code(&secret, t), code))
        .map(|t| t.div_euclid(TOTP_STEP_SECONDS))
}

/// The `otpauth://` URI an authenticator app reads (as a QR code or pasted).
pub fn otpauth_uri(username: &str, secret_b32: &str) -> String {
    let label: String = username
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!(
        "otpauth://totp/sealwatch:{label}?secret={secret_b32}&issuer=sealwatch&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECONDS}"
    )
}

// ---------------------------------------------------------------------------------------------
// The sign-in lockout.

/// Failures of one username before it is locked.
pub const USER_FAILURES_BEFORE_LOCK: u32 = 5;
/// Failures from one client address before it is locked: higher, since many people may sign
/// in from behind one address.
pub const ADDRESS_FAILURES_BEFORE_LOCK: u32 = 20;
/// The first lock; each further failure doubles it, up to [`LOCK_MAX`].
pub const LOCK_FIRST: Duration = Duration::from_secs(60);
pub const LOCK_MAX: Duration = Duration::from_secs(3600);

/// How long a key is locked after its `failures`-th failure in a row (none below `threshold`).
pub fn lock_for(failures: u32, threshold: u32) -> Option<Duration> {
    let over = failures.checked_sub(threshold)?;
    Some(
        LOCK_FIRST
            .saturating_mul(1u32.checked_shl(over.min(31)).unwrap_or(u32::MAX))
            .min(LOCK_MAX),
    )
}

/// Failures counted in memory, per username (existing or not, so that the answers do not
/// tell which) and per client address; and the bound on password hashes computed at once.
#[derive(Debug)]
pub struct Lockout {
    entries: Mutex<HashMap<LockKey, Failures>>,
    /// Each Argon2 verification takes 19 MiB and a core for a while: a flood of sign-ins waits
    /// here instead of taking every blocking thread and their memory.
    hashing: tokio::sync::Semaphore,
}

impl Default for Lockout {
    fn default() -> Lockout {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Lockout {
            entries: Mutex::default(),
            hashing: tokio::sync::Semaphore::new(cores.clamp(1, 8)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum LockKey {
    User(String),
    Address(IpAddr),
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    locked_until_ms: i64,
    last_ms: i64,
}

/// Most keys remembered: past it, keys that are not locked are forgotten first.
const LOCKOUT_MAX_KEYS: usize = 100_000;

impl Lockout {
    /// Until when `username` or `address` is locked at `now`, if either is.
    fn locked_until(&self, username: &str, address: IpAddr, now: Timestamp) -> Option<i64> {
        let entries = self.entries.lock().ok()?;
        [
            LockKey::User(store::username_key(username)),
            LockKey::Address(address),
        ]
        .iter()
        .filter_map(|k| entries.get(k))
        .map(|f| f.locked_until_ms)
        .filter(|&until| until > now.unix_ms())
        .max()
    }

    /// Counts a failure for both keys.
    fn failed(&self, username: &str, address: IpAddr, now: Timestamp) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= LOCKOUT_MAX_KEYS {
            let t = now.unix_ms();
            // Keys idle for an hour and not locked are forgotten; a flood of new names or
            // addresses cannot unlock the ones that are locked.
            entries.retain(|_, f| f.locked_until_ms > t || t - f.last_ms < 3_600_000);
        }
        for (key, threshold) in [
            (
                LockKey::User(store::username_key(username)),
                USER_FAILURES_BEFORE_LOCK,
            ),
            (LockKey::Address(address), ADDRESS_FAILURES_BEFORE_LOCK),
        ] {
            let f = entries.entry(key).or_insert(Failures {
                count: 0,
                locked_until_ms: 0,
                last_ms: 0,
            });
            f.count = f.count.saturating_add(1);
            f.last_ms = now.unix_ms();
            if let Some(lock) = lock_for(f.count, threshold) {
                f.locked_until_ms = now.unix_ms() + lock.as_millis() as i64;
            }
        }
    }

    /// A good sign-in clears the username's count (not the address's: one good account does
    /// not buy more guesses at others).
    fn succeeded(&self, username: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&LockKey::User(store::username_key(username)));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions.

/// How long sessions last.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SessionTimeouts {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after sign-in however active.
    pub absolute: Duration,
}

impl Default for SessionTimeouts {
    fn default() -> SessionTimeouts {
        SessionTimeouts {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256, hex: how session secrets and CSRF tokens are kept.
pub fn sha256_hex(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn random_hex_256() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex(&bytes))
}

/// The session cookie's value in a `Cookie` header, if there is one.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
}

/// Whether a cookie value has the shape of a session secret (256 bits, hex).
pub(crate) fn is_session_secret(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What signing in with a session gives a request.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedIn {
    pub user_id: i64,
    pub username: String,
    pub organisation: Option<String>,
    pub totp_enrolled: bool,
    /// SHA-256 of the session's secret: what names it in the store.
    pub session_hash: String,
    pub expires_at: Timestamp,
}

/// Why a session cookie does not authenticate a request.
#[derive(Debug, PartialEq)]
pub(crate) enum SessionRefused {
    Unknown,
    Ended,
    Expired,
    Store,
}

/// Looks the session up and checks it at `now`; touches it when last seen more than a minute
/// ago (the idle timeout is coarse, and a store write per request is not).
pub(crate) fn check_session(
    store: &mut dyn Store,
    secret: &str,
    now: Timestamp,
    timeouts: SessionTimeouts,
) -> Result<(User, Session), SessionRefused> {
    let hash = sha256_hex(secret);
    let session = match store.session(&hash) {
        Ok(s) => s,
        Err(e) if e.is_not_found() => return Err(SessionRefused::Unknown),
        Err(e) => {
            tracing::warn!(error = %e, "cannot look a session up");
            return Err(SessionRefused::Store);
        }
    };
    if session.revoked_at.is_some() {
        return Err(SessionRefused::Ended);
    }
    let idle_ms = timeouts.idle.as_millis() as i64;
    if now >= session.expires_at || now.unix_ms() - session.last_seen_at.unix_ms() >= idle_ms {
        return Err(SessionRefused::Expired);
    }
    let user = match store.user(session.user_id) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look a session's user up");
            return Err(SessionRefused::Store);
        }
    };
    if user.disabled_at.is_some() {
        return Err(SessionRefused::Ended);
    }
    if now.unix_ms() - session.last_seen_at.unix_ms() > 60_000
        && let Err(e) = store.touch_session(&hash, now)
    {
        tracing::warn!(error = %e, "cannot record a session's use");
    }
    Ok((user, session))
}

/// What an administrator signed in without a second factor may do while one is required:
/// see and end the session, and enrol.
pub(crate) fn allowed_before_enrolment(method: &axum::http::Method, path: &str) -> bool {
    use axum::http::Method;
    match path {
        "/api/v1/session" => true,
        "/api/v1/session/totp" => method == Method::POST,
        _ => false,
    }
}

fn set_cookie(value: &str, max_age_s: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_s}{secure}"
    ))
    .expect("hex and fixed text make a valid header")
}

fn too_many(until_ms: i64, now: Timestamp) -> Response {
    let seconds = u64::try_from(until_ms - now.unix_ms())
        .unwrap_or(0)
        .div_ceil(1000)
        .max(1);
    let mut r = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("sign-in: too many failed attempts; try again in {seconds} s"),
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    r
}

/// The one answer to a failed sign-in, whether the user exists or not.
fn refused() -> Response {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "sign-in: wrong username, password or code",
    )
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    username: String,
    password: String,
    #[serde(default)]
    totp: Option<String>,
}

/// A hash verified when the username is unknown, so that the answer takes as long as for a
/// known one.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not a password of anyone").unwrap_or_default())
}

/// `POST /api/v1/session`: signs in with a username, a password and, for an administrator who
/// enrolled one, a TOTP code.
pub(crate) async fn sign_in(
    State(s): State<AppState>,
    ConnectInfo(client): ConnectInfo<crate::ClientAddr>,
    body: axum::body::Bytes,
) -> Response {
    let form: SignIn = match parse(&body) {
        Ok(f) => f,
        Err(p) => return p.into_response(),
    };
    let address = client.0.ip();
    let now = crate::wall_clock();
    // The password is never logged; the username is, to trace attempts at one account.
    let username = form.username.trim().to_owned();
    if let Some(until) = s.lockout.locked_until(&username, address, now) {
        tracing::warn!(%username, %address, outcome = "locked", "sign-in");
        return too_many(until, now);
    }
    let key = username.clone();
    let user = match s.query(move |st| st.user_by_name(&key)).await {
        Ok(Ok(u)) => Some(u),
        Ok(Err(e)) if e.is_not_found() => None,
        Ok(Err(e)) => return crate::store_problem(e).into_response(),
        Err(p) => return p.into_response(),
    };
    if let Some(until) = user
        .as_ref()
        .and_then(|u| u.locked_until)
        .filter(|&t| t > now)
    {
        tracing::warn!(%username, %address, outcome = "locked", "sign-in");
        return too_many(until.unix_ms(), now);
    }
    let hash = user
        .as_ref()
        .map_or_else(|| dummy_hash().to_owned(), |u| u.password_hash.clone());
    let password = form.password;
    let password_ok = {
        let _permit = s.lockout.hashing.acquire().await;
        tokio::task::spawn_blocking(move || verify_password(&hash, &password))
            .await
            .unwrap_or(false)
    };
    let mut outcome = match &user {
        Some(u) if password_ok && u.disabled_at.is_none() => match (&u.totp_secret, &form.totp) {
            (None, _) => Ok(None),
            (Some(secret), Some(code)) => {
                totp_step(secret, code, now).map(Some).ok_or("totp wrong")
            }
            (Some(_), None) => Err("totp missing"),
        },
        Some(u) if password_ok && u.disabled_at.is_some() => Err("disabled"),
        Some(_) => Err("wrong password"),
        None => Err("unknown user"),
    };
    // A code is taken once: one seen over a shoulder or in a log is no use afterwards.
    if let (Ok(Some(step)), Some(u)) = (&outcome, &user) {
        let (id, step) = (u.id, *step);
        match s.query(move |st| st.take_totp_step(id, step)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => outcome = Err("totp reused"),
            Ok(Err(e)) => return crate::store_problem(e).into_response(),
            Err(p) => return p.into_response(),
        }
    }
    let user = match (outcome, user) {
        (Ok(_), Some(user)) => user,
        (Err(why), user) => {
            tracing::warn!(%username, %address, outcome = why, "sign-in refused");
            s.lockout.failed(&username, address, now);
            // Refused sign-ins are in the audit chain too (the lockout bounds how many one
            // client can add); the name is cut short, as it is whatever the client sent.
            let name: String = username.chars().take(64).collect();
            let detail = serde_json::json!({"reason": why, "address": address.to_string()});
            let lockout = user.map(|u| {
                let count = u.failed_logins.saturating_add(1);
                let until = lock_for(count, USER_FAILURES_BEFORE_LOCK)
                    .map(|d| Timestamp::from_unix_ms(now.unix_ms() + d.as_millis() as i64));
                (u.id, count, until)
            });
            let _ = s
                .query(move |st| {
                    if let Some((id, count, until)) = lockout {
                        st.set_user_lockout(id, count, until)?;
                    }
                    crate::audit_chain::record(
                        st,
                        "anonymous",
                        "sign_in.refused",
                        format!("user:{name}"),
                        detail,
                    )
                })
                .await;
            if why == "totp missing" {
                // Only said once the password was right: the caller knows the account anyway.
                return Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "totp: this account needs a code from its authenticator",
                )
                .into_response();
            }
            return refused();
        }
        (Ok(_), None) => return refused(),
    };
    s.lockout.succeeded(&username);
    let (secret, csrf) = match (random_hex_256(), random_hex_256()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "session: no random numbers from the system; try again",
            )
            .into_response();
        }
    };
    let session = Session {
        id_hash: sha256_hex(&secret),
        user_id: user.id,
        csrf_hash: sha256_hex(&csrf),
        created_at: now,
        last_seen_at: now,
        expires_at: Timestamp::from_unix_ms(
            now.unix_ms() + s.session_timeouts.absolute.as_millis() as i64,
        ),
        revoked_at: None,
    };
    let expires_at = session.expires_at;
    let (id, had_failures) = (
        user.id,
        user.failed_logins > 0 || user.locked_until.is_some(),
    );
    let (name, detail) = (
        user.username.clone(),
        serde_json::json!({"address": address.to_string(), "role": user.role.to_string()}),
    );
    let stored = s
        .query(move |st| {
            if had_failures {
                st.set_user_lockout(id, 0, None)?;
            }
            st.put_session(&session)?;
            crate::audit_chain::record(
                st,
                &format!("user {name}"),
                "sign_in",
                format!("user:{name}"),
                detail,
            )
        })
        .await;
    match stored {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return crate::store_problem(e).into_response(),
        Err(p) => return p.into_response(),
    }
    tracing::info!(%username, %address, outcome = "signed in", "sign-in");
    let mut r = (
        StatusCode::CREATED,
        Json(json!({
            "username": user.username,
            "role": user.role,
            "organisation": user.organisation,
            "totp_enrolled": user.totp_secret.is_some(),
            "totp_enrolment_required": s.admin_totp_required
                && user.role == Role::Administrator
                && user.totp_secret.is_none(),
            "csrf_token": csrf,
            "expires_at": expires_at,
        })),
    )
        .into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(
            &secret,
            s.session_timeouts.absolute.as_secs(),
            s.cookie_secure,
        ),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /api/v1/session`: who the caller is.
pub(crate) async fn who(caller: Option<axum::Extension<Caller>>) -> Response {
    let Some(axum::Extension(caller)) = caller else {
        return Problem::new(StatusCode::UNAUTHORIZED, "session: not signed in").into_response();
    };
    match &caller.user {
        Some(u) => Json(json!({
            "username": u.username,
            "role": caller.role,
            "organisation": u.organisation,
            "totp_enrolled": u.totp_enrolled,
            "expires_at": u.expires_at,
        })),
        None => Json(json!({
            "token": caller.token_id,
            "role": caller.role,
            "organisation": caller.organisation,
        })),
    }
    .into_response()
}

fn needs_session() -> Response {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "session: this needs a signed-in session (a cookie), not an API token",
    )
    .into_response()
}

/// `DELETE /api/v1/session`: signs out; the cookie stops working at once.
pub(crate) async fn sign_out(
    State(s): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let Some(u) = caller.and_then(|c| c.0.user) else {
        return needs_session();
    };
    let now = crate::wall_clock();
    let hash = u.session_hash;
    match s.query(move |st| st.revoke_session(&hash, now)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return crate::store_problem(e).into_response(),
        Err(p) => return p.into_response(),
    }
    tracing::info!(username = %u.username, "signed out");
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie("", 0, s.cookie_secure));
    r
}

/// `POST /api/v1/session/totp`: an administrator enrols a second factor. The secret is shown
/// this once, as an `otpauth://` URI; from then on signing in needs a code.
pub(crate) async fn enrol_totp(
    State(s): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let Some(caller) = caller.map(|c| c.0) else {
        return needs_session();
    };
    let Some(u) = caller.user else {
        return needs_session();
    };
    if caller.role != Role::Administrator {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "totp: the second factor is for administrators",
        )
        .into_response();
    }
    if u.totp_enrolled {
        return Problem::new(
            StatusCode::CONFLICT,
            "totp: already enrolled (`sealwatch user reset-totp` removes it)",
        )
        .into_response();
    }
    let mut raw = [0u8; 20];
    if getrandom::fill(&mut raw).is_err() {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "totp: no random numbers from the system; try again",
        )
        .into_response();
    }
    let secret = base32(&raw);
    let (id, stored_secret) = (u.user_id, secret.clone());
    let name = u.username.clone();
    let now = crate::wall_clock();
    // The session was opened with the password alone: it ends here (with every other of this
    // administrator's), and the next sign-in proves the authenticator holds the secret (a
    // code), so a secret lost before it was scanned shows at once, while the administrator is
    // still there to reset it.
    let stored = s
        .query(move |st| {
            // Checked again on the writer thread, where enrolments are taken one at a time: of
            // two racing, the second finds the first's secret and is refused.
            if st.user(id)?.totp_secret.is_some() {
                return Ok(false);
            }
            st.set_user_totp(id, Some(&stored_secret))?;
            // Every session of this administrator was opened with the password alone: all end
            // here, not only this one, so none gains what the second factor now guards.
            st.revoke_user_sessions(id, now)?;
            crate::audit_chain::record(
                st,
                &format!("user {name}"),
                "user.totp_enrol",
                format!("user:{name}"),
                json!({}),
            )?;
            Ok(true)
        })
        .await;
    match stored {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
            return Problem::new(
                StatusCode::CONFLICT,
                "totp: already enrolled (`sealwatch user reset-totp` removes it)",
            )
            .into_response();
        }
        Ok(Err(e)) => return crate::store_problem(e).into_response(),
        Err(p) => return p.into_response(),
    }
    tracing::info!(username = %u.username, "TOTP enrolled");
    let mut r = (
        StatusCode::CREATED,
        Json(json!({
            "otpauth_uri": otpauth_uri(&u.username, &secret),
            "secret": secret,
            "next": "sign in again with a code from the authenticator",
        })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie("", 0, s.cookie_secure));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_the_rfc_6238_vectors() {
        // RFC 6238 appendix B, SHA-1, truncated to 6 digits.
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(totp_code(secret, t), code, "t = {t}");
        }
        let b32 = base32(secret);
        assert_eq!(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(base32_decode(&b32).unwrap(), secret);
        let at = Timestamp::from_unix_ms(59_000);
        assert_eq!(totp_step(&b32, "287082", at), Some(1));
        // The code of the step before is still taken, as that step.
        assert_eq!(
            totp_step(&b32, "287082", Timestamp::from_unix_ms(75_000)),
            Some(1)
        );
        assert_eq!(totp_step(&b32, "287083", at), None);
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse batterY"));
        assert!(!verify_password("not a hash", "x"));
        assert_ne!(h, hash_password("correct horse battery").unwrap(), "salted");
        let p = random_password().unwrap();
        assert_eq!(p.len(), 24);
        assert!(p.bytes().all(|b| PASSWORD_ALPHABET.contains(&b)));
        assert!(check_password("short").is_err());
    }

    #[test]
    fn locks_grow_from_a_minute() {
        assert_eq!(lock_for(4, 5), None);
        assert_eq!(lock_for(5, 5), Some(Duration::from_secs(60)));
        assert_eq!(lock_for(6, 5), Some(Duration::from_secs(120)));
        assert_eq!(lock_for(40, 5), Some(LOCK_MAX));
    }
}
