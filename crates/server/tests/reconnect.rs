//! The database connection is cut under the running service (PostgreSQL restarted, a network
//! blip): the service says so (`/readyz` fails, submissions get 503 and nothing half-stored),
//! connects again by itself, and goes on with nothing acknowledged lost.
//! Runs when `TEST_DATABASE_URL` names a PostgreSQL database (CI sets it).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::request;

/// Cuts every connection of the service (they carry its application name).
fn cut(url: &str, app: &str) -> u64 {
    let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let row = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .unwrap();
    row.get::<_, i64>(0) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_reconnects_when_postgresql_cuts_its_connection() {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL reconnect test skipped");
        return;
    };
    let app = format!("sealwatch_reconnect_{}", std::process::id());
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), std::env::temp_dir());
    config.database_url = Some(format!("{url}{sep}application_name={app}"));
    config.database_schema = Some(app.clone());
    let running = server::start(config).await.unwrap();
    let addr = running.addr;

    let example: Value =
        serde_json::from_str(include_str!("../../../examples/contract-example.json")).unwrap();
    for z in example["zones"].as_array().unwrap() {
        assert_eq!(
            request(addr, "POST", "/api/v1/zones", Some(z.clone()))
                .await
                .0,
            204
        );
    }
    let now = server::wall_clock().unix_ms();
    let at = |ms: i64| model::Timestamp::from_unix_ms(ms).to_string();
    let mut transit = example["transits"][0].clone();
    transit["id"] = json!(format!("RC{}", std::process::id()));
    transit["device"] = json!(format!("RCD{}", std::process::id()));
    transit["sealed_at"] = json!(at(now - 600_000));
    transit["deadline"] = json!(at(now + 3_600_000));
    let (status, _, text) = request(addr, "POST", "/api/v1/transits", Some(transit.clone())).await;
    assert_eq!(status, 201, "{text}");
    let device = transit["device"].as_str().unwrap().to_owned();
    let obs = |seq: i64| json!([{"device": device, "t": at(now - 300_000 + seq * 1000), "lat": 29.31, "lon": 120.07, "lock": "locked", "seq": seq}]);
    let (status, _, text) = request(addr, "POST", "/api/v1/observations", Some(obs(1))).await;
    assert_eq!(status, 200, "{text}");

    // The blocking PostgreSQL client runs off the async runtime.
    let (u, a) = (url.clone(), app.clone());
    let n = tokio::task::spawn_blocking(move || cut(&u, &a))
        .await
        .unwrap();
    assert!(n >= 1, "the service's connection was found and cut");

    // Until the service has noticed and reconnected, submissions are refused whole (503), never
    // half-stored; then they are taken again.
    let started = Instant::now();
    let mut refused = 0;
    let mut seq = 2;
    loop {
        let (status, content_type, text) =
            request(addr, "POST", "/api/v1/observations", Some(obs(seq))).await;
        match status {
            200 => {
                let body: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(body["accepted"], 1, "{body}");
                break;
            }
            503 => {
                assert_eq!(content_type, "application/problem+json");
                assert!(text.contains("nothing was stored"), "{text}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {text}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the service did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        seq += 1;
    }
    assert_eq!(request(addr, "GET", "/readyz", None).await.0, 200);
    assert_eq!(request(addr, "GET", "/healthz", None).await.0, 200);
    eprintln!("{refused} submissions refused while reconnecting");

    // Everything acknowledged is there: the observation before the cut and the one after.
    let (status, _, text) = request(
        addr,
        "GET",
        &format!("/api/v1/transits/{}", transit["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    running.stop().await.unwrap();

    tokio::task::spawn_blocking(move || {
        let mut check = store::PgStore::connect_in_schema(&url, &app).unwrap();
        use store::Store;
        let stored = check
            .observations(&device, store::TimeRange::default(), 100)
            .unwrap();
        let seqs: Vec<u64> = stored.iter().filter_map(|o| o.seq).collect();
        assert_eq!(seqs.first(), Some(&1), "{seqs:?}");
        assert_eq!(seqs.last(), Some(&(seq as u64)), "{seqs:?}");
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {app} CASCADE"))
            .unwrap();
    })
    .await
    .unwrap();
}
