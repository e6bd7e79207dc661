//! Signing in over real HTTP: good and bad passwords, brute force and its lockout, forged and
//! expired cookies, CSRF, signing out, and the TOTP second factor of administrators.

use std::net::SocketAddr;
use std::path::PathBuf;

use model::{Role, Timestamp};
use serde_json::{Value, json};
use server::users;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer: status, headers (names lower-cased) and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    /// The session secret set by a `Set-Cookie`.
    fn cookie(&self) -> String {
        let set = self.header("set-cookie").expect("a Set-Cookie");
        let (pair, _) = set.split_once(';').unwrap();
        pair.strip_prefix("sealwatch_session=").unwrap().to_owned()
    }
}

async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Answer {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body.as_bytes()).await.unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn sign_in(addr: SocketAddr, username: &str, password: &str, totp: Option<&str>) -> Answer {
    let mut body = json!({"username": username, "password": password});
    if let Some(code) = totp {
        body["totp"] = json!(code);
    }
    call(addr, "POST", "/api/v1/session", &[], Some(body)).await
}

fn cookie(secret: &str) -> String {
    format!("sealwatch_session={secret}")
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sealwatch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config(dir: &std::path::Path) -> server::Config {
    let mut c = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.to_path_buf());
    c.auth_required = true;
    c
}

/// Adds users straight to the store, before the service starts.
fn add_users(config: &server::Config, people: &[(&str, Role, &str)]) {
    let mut store = server::open_store(config).unwrap();
    for (name, role, password) in people {
        let hash = users::hash_password(password).unwrap();
        store
            .create_user(&users::new_user(
                name,
                *role,
                Some("Yiwu office".into()),
                hash,
                server::wall_clock(),
            ))
            .unwrap();
    }
}

const ALICE_PW: &str = "alice-long-password";
const BOB_PW: &str = "bob-long-password!";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_cookies_and_csrf() {
    let dir = fresh_dir("session-csrf");
    let config = config(&dir);
    // A supervisor: zones, posted below, are the centre's to manage (docs/security.md).
    add_users(&config, &[("alice", Role::Supervisor, ALICE_PW)]);
    // A session stored as if made yesterday, past its absolute timeout; and one within its
    // absolute timeout but unused for two hours (the idle timeout is 30 minutes).
    let old_secret = "ab".repeat(32);
    let idle_secret = "cd".repeat(32);
    {
        let mut store = server::open_store(&config).unwrap();
        let alice = store.user_by_name("alice").unwrap();
        let at = Timestamp::from_unix_ms(server::wall_clock().unix_ms() - 86_400_000);
        store
            .put_session(&store::Session {
                id_hash: users::sha256_hex(&old_secret),
                user_id: alice.id,
                csrf_hash: users::sha256_hex("whatever"),
                created_at: at,
                last_seen_at: at,
                expires_at: Timestamp::from_unix_ms(at.unix_ms() + 3_600_000),
                revoked_at: None,
            })
            .unwrap();
        let now = server::wall_clock().unix_ms();
        store
            .put_session(&store::Session {
                id_hash: users::sha256_hex(&idle_secret),
                user_id: alice.id,
                csrf_hash: users::sha256_hex("whatever"),
                created_at: Timestamp::from_unix_ms(now - 7_200_000),
                last_seen_at: Timestamp::from_unix_ms(now - 7_200_000),
                expires_at: Timestamp::from_unix_ms(now + 3_600_000),
                revoked_at: None,
            })
            .unwrap();
    }
    let running = server::start(config.clone()).await.unwrap();
    let addr = running.addr;

    // Bad password, unknown user, missing field: refused, with one answer for the first two.
    let wrong = sign_in(addr, "alice", "not-her-password", None).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let unknown = sign_in(addr, "nobody", "not-her-password", None).await;
    assert_eq!(unknown.status, 401);
    assert_eq!(
        wrong.body, unknown.body,
        "the answer does not tell who exists"
    );
    assert!(wrong.header("set-cookie").is_none());
    assert!(!wrong.body.contains("not-her-password"));
    let missing = call(
        addr,
        "POST",
        "/api/v1/session",
        &[],
        Some(json!({"username": "alice"})),
    )
    .await;
    assert_eq!(missing.status, 422);
    assert!(missing.body.contains("password"), "{}", missing.body);

    // Good password, whatever the case of the username.
    let ok = sign_in(addr, "Alice", ALICE_PW, None).await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let set = ok.header("set-cookie").unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain HTTP, cookie_secure off: {set}"
    );
    let secret = ok.cookie();
    assert_eq!(secret.len(), 64);
    let csrf = ok.json()["csrf_token"].as_str().unwrap().to_owned();
    assert_eq!(ok.json()["role"], "supervisor");
    let session = cookie(&secret);

    // The cookie works for reading, and says who.
    let who = call(
        addr,
        "GET",
        "/api/v1/session",
        &[("Cookie", &session)],
        None,
    )
    .await;
    assert_eq!(who.status, 200, "{}", who.body);
    assert_eq!(who.json()["username"], "alice");
    assert_eq!(who.json()["organisation"], "Yiwu office");
    let list = call(
        addr,
        "GET",
        "/api/v1/transits",
        &[("Cookie", &session)],
        None,
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.body);

    // Forged, unknown and expired cookies: 401.
    for (forged, why) in [
        ("0".repeat(64), "unknown"),
        ("not-hex".to_owned(), "not a sealwatch session"),
        (secret[..63].to_owned(), "not a sealwatch session"),
        (old_secret.clone(), "expired"),
        (idle_secret.clone(), "expired"),
    ] {
        let a = call(
            addr,
            "GET",
            "/api/v1/transits",
            &[("Cookie", &cookie(&forged))],
            None,
        )
        .await;
        assert_eq!(a.status, 401, "{forged}: {}", a.body);
        assert!(a.body.contains(why), "{forged}: {}", a.body);
        assert!(a.body.contains("\"field\":\"session\""), "{}", a.body);
    }

    // CSRF: a state-changing request with the cookie needs the token.
    let zone = json!({"id": "Z-CSRF", "kind": "office", "area": {"type": "Point", "coordinates": [120.07, 29.31]}, "radius_m": 500});
    let no_token = call(
        addr,
        "POST",
        "/api/v1/zones",
        &[("Cookie", &session)],
        Some(zone.clone()),
    )
    .await;
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    assert!(no_token.body.contains("x-csrf-token"), "{}", no_token.body);
    let wrong_token = call(
        addr,
        "POST",
        "/api/v1/zones",
        &[("Cookie", &session), ("X-CSRF-Token", &"f".repeat(64))],
        Some(zone.clone()),
    )
    .await;
    assert_eq!(wrong_token.status, 403, "{}", wrong_token.body);
    assert!(wrong_token.body.contains("does not match"));
    let right = call(
        addr,
        "POST",
        "/api/v1/zones",
        &[("Cookie", &session), ("X-CSRF-Token", &csrf)],
        Some(zone.clone()),
    )
    .await;
    assert_eq!(right.status, 204, "{}", right.body);
    // Nothing was written by the refused ones: the zone is there once.
    let zones = call(addr, "GET", "/api/v1/zones", &[("Cookie", &session)], None).await;
    assert_eq!(
        zones.json().as_array().map(Vec::len),
        Some(1),
        "{}",
        zones.body
    );

    // Signing out is state-changing too; then the cookie is dead.
    let out = call(
        addr,
        "DELETE",
        "/api/v1/session",
        &[("Cookie", &session)],
        None,
    )
    .await;
    assert_eq!(out.status, 403, "{}", out.body);
    let out = call(
        addr,
        "DELETE",
        "/api/v1/session",
        &[("Cookie", &session), ("X-CSRF-Token", &csrf)],
        None,
    )
    .await;
    assert_eq!(out.status, 204, "{}", out.body);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let after = call(
        addr,
        "GET",
        "/api/v1/transits",
        &[("Cookie", &session)],
        None,
    )
    .await;
    assert_eq!(after.status, 401, "{}", after.body);
    assert!(after.body.contains("signed out"), "{}", after.body);

    // Disabling a user ends the sessions they have open.
    let again = sign_in(addr, "alice", ALICE_PW, None).await;
    assert_eq!(again.status, 201, "{}", again.body);
    let session = cookie(&again.cookie());
    let ok = call(
        addr,
        "GET",
        "/api/v1/session",
        &[("Cookie", &session)],
        None,
    )
    .await;
    assert_eq!(ok.status, 200);
    {
        let mut store = server::open_store(&config).unwrap();
        let alice = store.user_by_name("alice").unwrap();
        store.disable_user(alice.id, server::wall_clock()).unwrap();
    }
    let ended = call(
        addr,
        "GET",
        "/api/v1/session",
        &[("Cookie", &session)],
        None,
    )
    .await;
    assert_eq!(ended.status, 401, "{}", ended.body);
    assert_eq!(
        sign_in(addr, "alice", ALICE_PW, None).await.body,
        wrong.body
    );
    running.stop().await.unwrap();

    // Every sign-in, taken or refused, is in the audit chain, and no password is.
    let entries = server::open_store(&config)
        .unwrap()
        .audit_entries(0, 1000)
        .unwrap();
    let of = |action: &str, subject: &str| {
        entries
            .iter()
            .filter(|e| e.action == action && e.subject == subject)
            .count()
    };
    assert!(of("sign_in", "user:alice") >= 1, "{entries:?}");
    assert!(
        entries
            .iter()
            .any(|e| e.action == "sign_in" && e.actor == "user alice"),
        "{entries:?}"
    );
    assert!(of("sign_in.refused", "user:alice") >= 2, "{entries:?}");
    assert!(of("sign_in.refused", "user:nobody") >= 1, "{entries:?}");
    assert!(
        entries
            .iter()
            .all(|e| !e.detail.contains(ALICE_PW) && !e.detail.contains("not-her-password")),
        "a password in the audit chain"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_locks_the_username_and_only_it() {
    let dir = fresh_dir("session-lockout");
    let config = config(&dir);
    add_users(
        &config,
        &[
            ("alice", Role::Officer, ALICE_PW),
            ("bob", Role::Officer, BOB_PW),
        ],
    );
    let running = server::start(config.clone()).await.unwrap();
    let addr = running.addr;
    for attempt in 1..=users::USER_FAILURES_BEFORE_LOCK {
        let a = sign_in(addr, "alice", &format!("guess-{attempt}"), None).await;
        assert_eq!(a.status, 401, "attempt {attempt}: {}", a.body);
    }
    // Locked: even the right password is refused now, with how long to wait.
    let locked = sign_in(addr, "alice", ALICE_PW, None).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    let retry: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(locked.header("set-cookie").is_none());
    // A username that does not exist locks the same way: the lock does not tell either.
    for attempt in 1..=users::USER_FAILURES_BEFORE_LOCK {
        assert_eq!(
            sign_in(addr, "ghost", "guess", None).await.status,
            401,
            "{attempt}"
        );
    }
    assert_eq!(sign_in(addr, "ghost", "guess", None).await.status, 429);
    // Bob, from the same address, is not locked out.
    let bob = sign_in(addr, "bob", BOB_PW, None).await;
    assert_eq!(bob.status, 201, "{}", bob.body);
    running.stop().await.unwrap();

    // The lock is in the store too: it holds across a restart.
    let running = server::start(config.clone()).await.unwrap();
    let again = sign_in(running.addr, "alice", ALICE_PW, None).await;
    assert_eq!(again.status, 429, "{}", again.body);
    assert_eq!(sign_in(running.addr, "bob", BOB_PW, None).await.status, 201);
    // Many usernames tried from one address lock the address.
    for attempt in 0..users::ADDRESS_FAILURES_BEFORE_LOCK {
        let a = sign_in(running.addr, &format!("user{attempt}"), "guess", None).await;
        assert_eq!(a.status, 401, "{attempt}: {}", a.body);
    }
    let from_address = sign_in(running.addr, "bob", BOB_PW, None).await;
    assert_eq!(from_address.status, 429, "{}", from_address.body);
    running.stop().await.unwrap();
    let stored = server::open_store(&config)
        .unwrap()
        .user_by_name("alice")
        .unwrap();
    assert_eq!(stored.failed_logins, users::USER_FAILURES_BEFORE_LOCK);
    assert!(stored.locked_until.is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_enrol_totp_and_then_need_it() {
    let dir = fresh_dir("session-totp");
    let config = config(&dir);
    add_users(
        &config,
        &[
            ("root", Role::Administrator, ALICE_PW),
            ("bob", Role::Officer, BOB_PW),
        ],
    );
    let running = server::start(config).await.unwrap();
    let addr = running.addr;

    // Not for officers.
    let bob = sign_in(addr, "bob", BOB_PW, None).await;
    let (bob_cookie, bob_csrf) = (cookie(&bob.cookie()), bob.json()["csrf_token"].clone());
    let refused = call(
        addr,
        "POST",
        "/api/v1/session/totp",
        &[
            ("Cookie", &bob_cookie),
            ("X-CSRF-Token", bob_csrf.as_str().unwrap()),
        ],
        None,
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    let admin = sign_in(addr, "root", ALICE_PW, None).await;
    assert_eq!(admin.status, 201, "{}", admin.body);
    assert_eq!(admin.json()["totp_enrolment_required"], true);
    let (admin_cookie, csrf) = (cookie(&admin.cookie()), admin.json()["csrf_token"].clone());
    let csrf = csrf.as_str().unwrap();
    // Before enrolling, the password alone reaches nothing an administrator can do: not a
    // list, not a change; only the session itself and the enrolment.
    for (method, path, body) in [
        ("GET", "/api/v1/transits", None),
        ("GET", "/api/v1/audit", None),
        (
            "POST",
            "/api/v1/stations",
            Some(serde_json::json!({"id": "S1", "name": "x", "zone": "z"})),
        ),
    ] {
        let refused = call(
            addr,
            method,
            path,
            &[("Cookie", &admin_cookie), ("X-CSRF-Token", csrf)],
            body,
        )
        .await;
        assert_eq!(refused.status, 403, "{method} {path}: {}", refused.body);
        assert!(
            refused.body.contains("enrol a second factor"),
            "{}",
            refused.body
        );
    }
    let me = call(
        addr,
        "GET",
        "/api/v1/session",
        &[("Cookie", &admin_cookie)],
        None,
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.body);
    // A second session of the same administrator, also opened with the password alone.
    let other = sign_in(addr, "root", ALICE_PW, None).await;
    assert_eq!(other.status, 201, "{}", other.body);
    let other_cookie = cookie(&other.cookie());
    let enrolled = call(
        addr,
        "POST",
        "/api/v1/session/totp",
        &[("Cookie", &admin_cookie), ("X-CSRF-Token", csrf)],
        None,
    )
    .await;
    assert_eq!(enrolled.status, 201, "{}", enrolled.body);
    let uri = enrolled.json()["otpauth_uri"].as_str().unwrap().to_owned();
    assert!(
        uri.starts_with("otpauth://totp/sealwatch:root?secret="),
        "{uri}"
    );
    let secret_b32 = uri
        .split_once("secret=")
        .unwrap()
        .1
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    // Every session opened with the password alone is over, not only the enrolling one: none
    // gains what the second factor now guards.
    let other_after = call(
        addr,
        "GET",
        "/api/v1/transits",
        &[("Cookie", &other_cookie)],
        None,
    )
    .await;
    assert_eq!(other_after.status, 401, "{}", other_after.body);
    // The enrolling session, opened with the password alone, is over.
    let after = call(
        addr,
        "GET",
        "/api/v1/session",
        &[("Cookie", &admin_cookie)],
        None,
    )
    .await;
    assert_eq!(after.status, 401, "{}", after.body);

    // Now the password alone is not enough, and a wrong code is refused.
    let no_code = sign_in(addr, "root", ALICE_PW, None).await;
    assert_eq!(no_code.status, 401, "{}", no_code.body);
    assert!(no_code.body.contains("totp"), "{}", no_code.body);
    assert!(no_code.header("set-cookie").is_none());
    let secret = users::base32_decode(&secret_b32).unwrap();
    let now_s = server::wall_clock().unix_ms() / 1000;
    let right = users::totp_code(&secret, now_s);
    // A code from an hour ago is wrong now.
    let stale = users::totp_code(&secret, now_s - 3600);
    let wrong = if stale == right {
        "000000".to_owned()
    } else {
        stale
    };
    let bad = sign_in(addr, "root", ALICE_PW, Some(&wrong)).await;
    assert_eq!(bad.status, 401, "{}", bad.body);
    // The right code, computed from the secret as an authenticator app does.
    let good = sign_in(addr, "root", ALICE_PW, Some(&right)).await;
    assert_eq!(good.status, 201, "{}", good.body);
    assert_eq!(good.json()["totp_enrolled"], true);
    assert_eq!(good.json()["totp_enrolment_required"], false);
    let (good_cookie, good_csrf) = (cookie(&good.cookie()), good.json()["csrf_token"].clone());
    let good_csrf = good_csrf.as_str().unwrap();
    // With the second factor the administrator's session reaches everything again.
    let listed = call(
        addr,
        "GET",
        "/api/v1/transits",
        &[("Cookie", &good_cookie)],
        None,
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    // Shown once: a second enrolment is refused, without the secret.
    let twice = call(
        addr,
        "POST",
        "/api/v1/session/totp",
        &[("Cookie", &good_cookie), ("X-CSRF-Token", good_csrf)],
        None,
    )
    .await;
    assert_eq!(twice.status, 409, "{}", twice.body);
    assert!(!twice.body.contains(&secret_b32));
    // The same code again (seen over a shoulder): refused, it was taken.
    let replayed = sign_in(addr, "root", ALICE_PW, Some(&right)).await;
    assert_eq!(replayed.status, 401, "{}", replayed.body);
    // A right code with a wrong password is still refused.
    let bad_pw = sign_in(addr, "root", "wrong-password-x", Some(&right)).await;
    assert_eq!(bad_pw.status, 401);
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
