//! The OpenAPI document against the routes: every route the router declares is documented with
//! its method, every documented route answers (not the fallback 404, not 405), and the service
//! serves the document.

use std::collections::BTreeSet;

use server::openapi::{ROUTES, document};

mod common;

/// (method, path) of every `.route(...)` in the router's sources (lib.rs and the modules whose
/// routes it merges).
fn routed() -> BTreeSet<(String, String)> {
    let sources = [
        include_str!("../src/lib.rs"),
        include_str!("../src/registry.rs"),
        include_str!("../src/decisions.rs"),
        include_str!("../src/device_pool.rs"),
    ];
    let mut found = BTreeSet::new();
    // Whitespace out, so a `.route(...)` that rustfmt spread over lines reads as one.
    let code: String = sources
        .concat()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    for piece in code.split(".route(\"").skip(1) {
        let (path, rest) = piece.split_once('"').unwrap();
        let path = path.to_owned();
        let handlers = rest.split("))").next().unwrap().trim_start_matches(',');
        for method in ["get", "post", "put", "delete", "patch"] {
            let call = format!("{method}(");
            if handlers.trim_start().starts_with(&call) || handlers.contains(&format!(".{call}")) {
                found.insert((method.to_owned(), path.clone()));
            }
        }
    }
    found
}

#[test]
fn every_route_is_documented_and_every_documented_route_is_routed() {
    let documented: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(routed(), documented);
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    for r in ROUTES {
        let op = &doc["paths"][r.path][r.method];
        assert!(op["summary"].is_string(), "{} {}", r.method, r.path);
        if let Some(body) = r.body {
            let name = body.trim_start_matches("array:");
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "schema {name}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_answers_every_documented_route_and_serves_the_document() {
    let dir = std::env::temp_dir().join(format!("sealwatch-openapi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let running = server::start(server::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.clone(),
    ))
    .await
    .unwrap();
    let addr = running.addr;
    let (status, _, body) = common::request(addr, "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        document()
    );
    for r in ROUTES.iter().filter(|r| r.path != "/api/v1/stream") {
        let path = r.path.replace("{id}", "1").replace("{step}", "acknowledge");
        let (status, _, body) = common::request(
            addr,
            &r.method.to_uppercase(),
            &path,
            Some(serde_json::json!({})),
        )
        .await;
        assert!(
            status != 405 && !body.contains("no such route"),
            "{} {path}: {status} {body}",
            r.method
        );
    }
    running.stop().await.unwrap();
}
