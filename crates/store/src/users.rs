//! The people who sign in and their sessions, as stored (migration 013). How passwords are
//! hashed and sessions checked is the server's `users` module; the store keeps hashes only.

use model::{Role, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A user as stored.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Given by the store on creation (what [`crate::Store::create_user`] is passed is ignored).
    pub id: i64,
    /// As typed at creation; unique whatever its case.
    pub username: String,
    pub role: Role,
    /// The organisation the user belongs to (a carrier, a customs office), if any.
    pub organisation: Option<String>,
    /// The Argon2id PHC string.
    pub password_hash: String,
    /// The base32 TOTP secret once an administrator enrolled a second factor.
    pub totp_secret: Option<String>,
    /// Failed sign-ins since the last good one.
    pub failed_logins: u32,
    /// Sign-in is refused until then (the lockout).
    pub locked_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
}

// By hand: the password hash and the TOTP secret never reach a log through `{:?}`.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("organisation", &self.organisation)
            .field("totp_enrolled", &self.totp_secret.is_some())
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .field("created_at", &self.created_at)
            .field("disabled_at", &self.disabled_at)
            .finish_non_exhaustive()
    }
}

/// The key usernames are unique by and looked up by: case does not make another user.
pub fn username_key(username: &str) -> String {
    username.to_lowercase()
}

/// A signed-in session as stored: hashes of its secrets, never the secrets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// SHA-256 (hex) of the cookie's secret.
    pub id_hash: String,
    pub user_id: i64,
    /// SHA-256 (hex) of the session's CSRF token.
    pub csrf_hash: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The absolute timeout: the session ends then however active it is.
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// The columns of `users`, in the order [`user_from_row`] takes them.
pub(crate) const USER_COLUMNS: &str = "id, username, role, organisation, password_hash, \
    totp_secret, failed_logins, locked_until, created_at, disabled_at";

/// The columns of `sessions`, in the order [`session_from_row`] takes them.
pub(crate) const SESSION_COLUMNS: &str =
    "id_hash, user_id, csrf_hash, created_at, last_seen_at, expires_at, revoked_at";

/// A `users` row as both backends read it.
pub(crate) type UserRow = (
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
);

pub(crate) fn user_from_row(r: UserRow) -> Result<User> {
    let (
        id,
        username,
        role,
        organisation,
        password_hash,
        totp_secret,
        failed,
        locked,
        created,
        disabled,
    ) = r;
    Ok(User {
        id,
        username,
        role: role.parse().map_err(Error::Conflict)?,
        organisation,
        password_hash,
        totp_secret,
        failed_logins: u32::try_from(failed).unwrap_or(u32::MAX),
        locked_until: locked.map(Timestamp::from_unix_ms),
        created_at: Timestamp::from_unix_ms(created),
        disabled_at: disabled.map(Timestamp::from_unix_ms),
    })
}

/// A `sessions` row as both backends read it.
pub(crate) type SessionRow = (String, i64, String, i64, i64, i64, Option<i64>);

pub(crate) fn session_from_row(r: SessionRow) -> Session {
    let (id_hash, user_id, csrf_hash, created, seen, expires, revoked) = r;
    Session {
        id_hash,
        user_id,
        csrf_hash,
        created_at: Timestamp::from_unix_ms(created),
        last_seen_at: Timestamp::from_unix_ms(seen),
        expires_at: Timestamp::from_unix_ms(expires),
        revoked_at: revoked.map(Timestamp::from_unix_ms),
    }
}

/// Checks a username before it is stored: what people type to sign in.
pub fn check_username(username: &str) -> std::result::Result<(), String> {
    let ok_len = (1..=64).contains(&username.chars().count());
    let ok_chars = username
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "username: 1 to 64 letters, digits, `.`, `_`, `-` or `@` (got {username:?})"
        ))
    }
}
