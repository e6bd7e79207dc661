//! No acknowledgement without a commit: when the service cannot store a report (it is
//! stopping, or its database is gone), the device gets no success answer, and the report sent
//! again once the store is back is taken once.

mod common;

use std::time::{Duration, Instant};

use common::{Device, Got, device_time};
use jt808::Body;
use store::{Store, TimeRange};

const PHONE: &str = "013912345678";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_the_stopping_service_cannot_take_is_not_acknowledged() {
    let h = common::start("stopping", |_| {}).await;
    common::register_device(h.api(), PHONE, None).await;
    common::declare_sealed_transit(h.api(), "GW1", PHONE).await;
    let mut d = Device::connect(h.jt808(), PHONE).await;
    d.log_in().await;
    let (_, time) = device_time(30);
    let (frame, serial) = d.location(time, true);
    let jt808_addr = h.jt808();
    let common::Harness {
        running,
        gateway,
        dir,
    } = h;

    // The service stops; the gateway, still there, follows it.
    running.stop().await.unwrap();
    // The report may still reach the gateway, or not: either way there is no success answer.
    let _ = tokio::io::AsyncWriteExt::write_all(&mut d.stream, &frame).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match d
            .recv(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            Got::Message(m) => match m.body {
                Body::GeneralResponse(g) if g.reply_serial == serial => {
                    assert_ne!(g.result, 0, "acknowledged although not stored: {m:?}")
                }
                _ => {}
            },
            Got::Closed => break,
            Got::Timeout => panic!("the gateway kept the connection of a stopped service"),
        }
    }
    // It no longer accepts connections.
    let refused = tokio::time::timeout(Duration::from_secs(2), async {
        match tokio::net::TcpStream::connect(jt808_addr).await {
            Err(_) => true,
            Ok(mut s) => {
                let mut b = [0u8; 1];
                matches!(
                    tokio::io::AsyncReadExt::read(&mut s, &mut b).await,
                    Ok(0) | Err(_)
                )
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(refused, "a stopped gateway served a new connection");
    gateway.stop().await;

    // And nothing of the report was stored.
    let mut store = store::SqliteStore::open(&dir.join("sealwatch.db")).unwrap();
    let stored = store.observations(PHONE, TimeRange::default(), 10).unwrap();
    assert!(stored.is_empty(), "{stored:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

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
async fn a_report_sent_while_the_database_is_gone_is_answered_only_once_stored() {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL test skipped");
        return;
    };
    let app = format!("sealwatch_gw_{}", std::process::id());
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), std::env::temp_dir());
    config.database_url = Some(format!("{url}{sep}application_name={app}"));
    config.database_schema = Some(app.clone());
    // No clock ticks: the first thing to meet the cut connection is the report's commit.
    config.tick_interval = Duration::from_secs(3600);
    let running = server::start(config).await.unwrap();
    let gateway = gateway::Gateway::start(
        gateway::Config::new("127.0.0.1:0".parse().unwrap()),
        running.ingest.clone(),
    )
    .await
    .unwrap();
    common::register_device(running.addr, PHONE, None).await;
    common::declare_sealed_transit(running.addr, "GW1", PHONE).await;
    let mut d = Device::connect(gateway.addr(), PHONE).await;
    d.log_in().await;

    let (u, a) = (url.clone(), app.clone());
    let n = tokio::task::spawn_blocking(move || cut(&u, &a))
        .await
        .unwrap();
    assert!(n >= 1, "the service's connection was found and cut");

    // The device sends its report until it is answered, as a device does.
    let (t, time) = device_time(30);
    let (frame, serial) = d.location(time, true);
    let started = Instant::now();
    let mut unanswered = 0;
    loop {
        d.send(&frame).await;
        match d.recv(Duration::from_millis(700)).await {
            Got::Message(m) => match m.body {
                Body::GeneralResponse(g) if g.reply_serial == serial => {
                    assert_eq!(g.result, 0, "{m:?}");
                    break;
                }
                _ => panic!("unexpected {m:?}"),
            },
            Got::Timeout => unanswered += 1,
            Got::Closed => panic!("the gateway closed the connection while the store was away"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never answered"
        );
    }
    assert!(
        unanswered >= 1,
        "the report was answered while the store was gone"
    );
    assert!(
        gateway.stats().submit_failures >= 1,
        "{:?}",
        gateway.stats()
    );
    // Answers to the sends that raced the recovery may still come; all must be successes.
    while let Got::Message(m) = d.recv(Duration::from_millis(300)).await {
        assert!(
            matches!(m.body, Body::GeneralResponse(g) if g.result == 0),
            "{m:?}"
        );
    }
    gateway.stop().await;
    running.stop().await.unwrap();

    tokio::task::spawn_blocking(move || {
        let mut check = store::PgStore::connect_in_schema(&url, &app).unwrap();
        let stored = check
            .observations(PHONE, TimeRange::default(), 100)
            .unwrap();
        assert_eq!(stored.len(), 1, "stored once: {stored:?}");
        assert_eq!(stored[0].t, t);
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {app} CASCADE"))
            .unwrap();
    })
    .await
    .unwrap();
}
