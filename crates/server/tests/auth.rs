//! API tokens over real HTTP: no token, a malformed one, a wrong secret, an expired or revoked
//! token are each refused with 401 and a problem saying which; a valid token passes; the
//! health checks and the API reference stay open.

use std::net::SocketAddr;

use model::{Role, Timestamp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One GET with an optional Authorization header; status, headers and body.
async fn get(addr: SocketAddr, path: &str, authorization: Option<&str>) -> (u16, String, String) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let head = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{auth}\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_on_every_api_route() {
    let dir = std::env::temp_dir().join(format!("sealwatch-auth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    config.auth_required = true;
    let now = server::wall_clock();
    let (valid, expired, revoked) = {
        let mut store = server::open_store(&config).unwrap();
        let mut make = |role, expires: Option<Timestamp>| {
            let mut t = server::auth::generate(role, "test", now, expires).unwrap();
            t.record.organisation = Some("Ningbo Carriers Ltd".into());
            store.put_token(&t.record, &t.secret_hash).unwrap();
            t
        };
        let valid = make(
            Role::Officer,
            Some(Timestamp::from_unix_ms(now.unix_ms() + 3_600_000)),
        );
        let expired = make(
            Role::Officer,
            Some(Timestamp::from_unix_ms(now.unix_ms() - 1)),
        );
        let revoked = make(Role::Gateway, None);
        store.revoke_token(&revoked.record.id, now).unwrap();
        (valid, expired, revoked)
    };
    let running = server::start(config).await.unwrap();
    let addr = running.addr;

    let bearer = |t: &str| format!("Bearer {t}");
    let (status, head, body) = get(addr, "/api/v1/alarms", None).await;
    assert_eq!(status, 401, "{body}");
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(body.contains("\"field\":\"authorization\""), "{body}");

    let wrong_secret = format!("swt_{}_{}", valid.record.id, "0".repeat(64));
    for (authorization, why) in [
        ("Basic dXNlcjpwYXNz".to_owned(), "expected `Bearer <token>`"),
        (bearer("abc"), "not a sealwatch token"),
        (bearer(&wrong_secret), "unknown token"),
        (bearer("swt_abcdef_0123"), "unknown token"),
        (bearer(&expired.token), "expired"),
        (bearer(&revoked.token), "revoked"),
    ] {
        let (status, _, body) = get(addr, "/api/v1/transits", Some(&authorization)).await;
        assert_eq!(status, 401, "{authorization}: {body}");
        assert!(body.contains(why), "{authorization}: {body}");
        // The secret is never echoed back.
        assert!(!body.contains(&"0".repeat(64)), "{body}");
    }

    let (status, _, body) = get(addr, "/api/v1/transits", Some(&bearer(&valid.token))).await;
    assert_eq!(status, 200, "{body}");
    // The token says who it is: its role and organisation.
    let (status, _, body) = get(addr, "/api/v1/session", Some(&bearer(&valid.token))).await;
    assert_eq!(status, 200, "{body}");
    let who: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(who["token"], valid.record.id.as_str());
    assert_eq!(who["role"], "officer");
    assert_eq!(who["organisation"], "Ningbo Carriers Ltd");
    // Twice: the second time from the cache, same answer.
    let (status, _, _) = get(addr, "/api/v1/alarms", Some(&bearer(&valid.token))).await;
    assert_eq!(status, 200);

    for open in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/openapi.json",
        "/api/v1/docs",
    ] {
        assert_eq!(get(addr, open, None).await.0, 200, "{open}");
    }
    running.stop().await.unwrap();

    // Authentication off (embedding, tests): no token passes, but a wrong one presented is
    // still refused.
    let running = server::start(server::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.clone(),
    ))
    .await
    .unwrap();
    let addr = running.addr;
    assert_eq!(get(addr, "/api/v1/transits", None).await.0, 200);
    assert_eq!(
        get(addr, "/api/v1/transits", Some(&bearer(&revoked.token)))
            .await
            .0,
        401
    );
    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
