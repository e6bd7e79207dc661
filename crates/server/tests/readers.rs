//! Readers post checkpoint reads signed with their own keys, over real HTTP, with tokens
//! required everywhere else: a key provisioned for a registered reader; a signed read taken
//! without any bearer token and supervised (a broken seal raises `checkpoint_mismatch`); the
//! same post replayed is recognised and not taken twice; a missing, malformed or wrong
//! signature, a read naming another reader, a revoked key and a rotated-out key are each
//! refused saying why; every kept post verifies with the public key alone.

use std::net::SocketAddr;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use model::{Role, Timestamp};
use serde_json::{Value, json};

mod common;
use common::request_with;

const READER: &str = "R-GATE-1";

struct Api {
    addr: SocketAddr,
    bearer: String,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, _, text) = request_with(
            self.addr,
            method,
            path,
            &[("Authorization", &self.bearer)],
            body.as_bytes(),
        )
        .await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Posts `body` as `reader`'s reads with the given signature header (none when `None`),
    /// and no bearer token.
    async fn post_reads(&self, reader: &str, body: &[u8], signature: Option<&str>) -> (u16, Value) {
        let headers: Vec<(&str, &str)> = signature
            .map(|s| vec![("Sealwatch-Reader-Signature", s)])
            .unwrap_or_default();
        let path = format!("/api/v1/readers/{reader}/reads");
        let (status, _, text) = request_with(self.addr, "POST", &path, &headers, body).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// The header a reader holding `key` sends for `body`.
fn sign(key: &SigningKey, reader: &str, body: &[u8]) -> String {
    let message = server::readers::signed_message(reader, body);
    format!(
        "ed25519={}",
        sealproto::to_hex(&key.sign(&message).to_bytes())
    )
}

fn minutes_from(t: Timestamp, minutes: i64) -> Timestamp {
    Timestamp::from_unix_ms(t.unix_ms() + minutes * 60_000)
}

fn read_body(t: Timestamp, reader: &str, intact: bool) -> Vec<u8> {
    json!({"t": t, "reader": reader, "zone": "CHK-1", "device": "D1", "intact": intact})
        .to_string()
        .into_bytes()
}

fn detail(problem: &Value) -> String {
    problem["detail"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_sign_their_reads_with_their_own_keys() {
    let dir = std::env::temp_dir().join(format!("sealwatch-readers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), dir.clone());
    config.auth_required = true;
    let now = server::wall_clock();
    let admin = {
        let mut store = server::open_store(&config).unwrap();
        let t = server::auth::generate(Role::Administrator, "test", now, None).unwrap();
        store.put_token(&t.record, &t.secret_hash).unwrap();
        t.token
    };
    let running = server::start(config).await.unwrap();
    let api = Api {
        addr: running.addr,
        bearer: format!("Bearer {admin}"),
    };

    // The contract example's zones and its first transit, sealed ten minutes ago.
    let example: Value =
        serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
    for z in example["zones"].as_array().unwrap() {
        assert_eq!(
            api.call("POST", "/api/v1/zones", Some(z.clone())).await.0,
            204
        );
    }
    let mut transit = example["transits"][0].clone();
    transit["sealed_at"] = json!(minutes_from(now, -10));
    transit["deadline"] = json!(minutes_from(now, 300));
    let (status, body) = api.call("POST", "/api/v1/transits", Some(transit)).await;
    assert!(status == 201 || status == 200, "{status} {body}");

    let (status, body) = api
        .call(
            "POST",
            "/api/v1/readers",
            Some(json!({"id": READER, "kind": "fixed", "zone": "CHK-1"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let key = SigningKey::from_bytes(&[7; 32]);
    let public = sealproto::to_hex(key.verifying_key().as_bytes());
    let key_path = format!("/api/v1/readers/{READER}/key");

    // Keys are managed with a token; an unknown reader has none to be given.
    let (_, no_token, _) = request_with(
        api.addr,
        "PUT",
        &key_path,
        &[],
        json!({"public_key": public}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(no_token, "application/problem+json");
    let (status, body) = api
        .call(
            "PUT",
            "/api/v1/readers/R-NOBODY/key",
            Some(json!({"public_key": public})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = api
        .call("PUT", &key_path, Some(json!({"public_key": "abcd"})))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(detail(&body).starts_with("public_key:"), "{body}");

    // Before a key is provisioned, even a well-signed post is refused.
    let first = read_body(minutes_from(now, -5), READER, true);
    let (status, body) = api
        .post_reads(READER, &first, Some(&sign(&key, READER, &first)))
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(detail(&body).contains("no key provisioned"), "{body}");

    let (status, body) = api
        .call("PUT", &key_path, Some(json!({"public_key": public})))
        .await;
    assert_eq!(
        (status, &body["public_key"]),
        (200, &json!(public)),
        "{body}"
    );

    // A signed read, no bearer token: taken and supervised.
    let (status, body) = api
        .post_reads(READER, &first, Some(&sign(&key, READER, &first)))
        .await;
    assert_eq!((status, &body["accepted"]), (200, &json!(1)), "{body}");
    let (_, events) = api.call("GET", "/api/v1/transits/T1/events", None).await;
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "checkpoint_read"),
        "{events}"
    );

    // The same post again: a replay, answered as such and not taken twice.
    let (status, body) = api
        .post_reads(READER, &first, Some(&sign(&key, READER, &first)))
        .await;
    assert_eq!(
        (status, &body["replay"], &body["accepted"]),
        (200, &json!(true), &json!(0))
    );

    // Missing, malformed and wrong signatures.
    let broken = read_body(minutes_from(now, -4), READER, false);
    let (status, body) = api.post_reads(READER, &broken, None).await;
    assert_eq!(status, 401);
    assert!(detail(&body).contains("missing"), "{body}");
    let (status, body) = api.post_reads(READER, &broken, Some("ed25519=zz")).await;
    assert_eq!(status, 401);
    assert!(detail(&body).contains("64 bytes"), "{body}");
    let (status, body) = api.post_reads(READER, &broken, Some("rsa=00")).await;
    assert_eq!(status, 401);
    assert!(detail(&body).contains("ed25519="), "{body}");
    let intruder = SigningKey::from_bytes(&[9; 32]);
    let (status, body) = api
        .post_reads(READER, &broken, Some(&sign(&intruder, READER, &broken)))
        .await;
    assert_eq!(status, 401);
    assert!(detail(&body).contains("does not verify"), "{body}");
    // A body altered after signing does not verify either.
    let (status, _) = api
        .post_reads(READER, &broken, Some(&sign(&key, READER, &first)))
        .await;
    assert_eq!(status, 401);
    // A signature made for this reader, presented for another path, does not verify.
    let other_path = api
        .post_reads("R-OTHER", &broken, Some(&sign(&key, READER, &broken)))
        .await;
    assert_eq!(other_path.0, 401, "{}", other_path.1);

    // A read naming another reader inside a post signed by this one is refused, the post's
    // other reads are taken: here a broken seal, which raises the alarm.
    let mixed = format!(
        "[{}, {}]",
        String::from_utf8(read_body(minutes_from(now, -3), "R-OTHER", true)).unwrap(),
        String::from_utf8(broken.clone()).unwrap()
    )
    .into_bytes();
    let (status, body) = api
        .post_reads(READER, &mixed, Some(&sign(&key, READER, &mixed)))
        .await;
    assert_eq!((status, &body["accepted"]), (200, &json!(1)), "{body}");
    assert_eq!(body["results"][0]["status"], "rejected", "{body}");
    assert!(
        body["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("signed by R-GATE-1 but the read names R-OTHER"),
        "{body}"
    );
    assert_eq!(body["results"][1]["status"], "accepted", "{body}");
    let (_, alarms) = api.call("GET", "/api/v1/transits/T1/alarms", None).await;
    assert!(
        alarms["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["alarm"]["kind"] == "checkpoint_mismatch"),
        "{alarms}"
    );

    // Rotation: the old key stops working at once, the new one works.
    let rotated = SigningKey::from_bytes(&[8; 32]);
    let rotated_public = sealproto::to_hex(rotated.verifying_key().as_bytes());
    let (status, _) = api
        .call(
            "PUT",
            &key_path,
            Some(json!({"public_key": rotated_public})),
        )
        .await;
    assert_eq!(status, 200);
    let later = read_body(minutes_from(now, -2), READER, true);
    let (status, _) = api
        .post_reads(READER, &later, Some(&sign(&key, READER, &later)))
        .await;
    assert_eq!(status, 401, "the rotated-out key");
    let (status, body) = api
        .post_reads(READER, &later, Some(&sign(&rotated, READER, &later)))
        .await;
    assert_eq!((status, &body["accepted"]), (200, &json!(1)), "{body}");

    // Revocation.
    let (status, body) = api.call("DELETE", &key_path, None).await;
    assert_eq!(status, 200);
    assert!(body["revoked_at"].is_string(), "{body}");
    let last = read_body(minutes_from(now, -1), READER, true);
    let (status, body) = api
        .post_reads(READER, &last, Some(&sign(&rotated, READER, &last)))
        .await;
    assert_eq!(status, 401);
    assert!(detail(&body).contains("revoked"), "{body}");

    // Every kept post verifies with the public key kept beside it, and with nothing else.
    let (status, posts) = api
        .call("GET", &format!("/api/v1/readers/{READER}/posts"), None)
        .await;
    assert_eq!(status, 200, "{posts}");
    let posts = posts["items"].as_array().unwrap();
    assert_eq!(posts.len(), 3, "first, mixed, later: {posts:?}");
    assert_eq!(posts[0]["public_key"], json!(public));
    assert_eq!(posts[2]["public_key"], json!(rotated_public));
    for post in posts {
        let public: [u8; 32] = sealproto::from_hex(post["public_key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let signature: [u8; 64] = sealproto::from_hex(post["signature"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let message =
            server::readers::signed_message(READER, post["body"].as_str().unwrap().as_bytes());
        VerifyingKey::from_bytes(&public)
            .unwrap()
            .verify(&message, &ed25519_dalek::Signature::from_bytes(&signature))
            .expect("a kept post verifies with its public key");
    }

    running.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
