//! The smart-container MQTT client against the real Mosquitto on 127.0.0.1:1883 (.ci/run
//! starts it): DCSA and UN/CEFACT messages published by a vendor are attributed to the device
//! paired to their container, stored and supervised (a door opened after sealing raises
//! `illegal_opening`); garbage is counted and does not stop ingestion; messages published
//! while sealwatch is away are delivered to its next session; the client reconnects when the
//! broker comes back (a broker of the test's own, stopped and started again); a message is
//! acknowledged only once stored (the PostgreSQL connection cut under it).
//!
//! Each run uses its own topic prefix and client ids, so runs in parallel do not collide.

use std::sync::atomic::Ordering;
use std::time::Duration;

use gateway::{MqttClient, MqttConfig};
use model::{DoorState, Timestamp};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::{Value, json};
use server::ReportSource;
use store::TimeRange;

mod common;

const BROKER: (&str, u16) = ("127.0.0.1", 1883);
const CONTAINER: &str = "CSQU3054383";

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

async fn broker_is_up() {
    tokio::net::TcpStream::connect(BROKER).await.unwrap_or_else(|e| {
        panic!(
            "the MQTT tests need Mosquitto on {}:{} (.ci/run starts it: mosquitto -d -c /etc/mosquitto/mosquitto.conf): {e}",
            BROKER.0, BROKER.1
        )
    });
}

/// A vendor cloud's publisher: a client of its own, its event loop polled in the background.
struct Publisher {
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    async fn connect(id: &str) -> Publisher {
        Publisher::connect_to(BROKER.1, id).await
    }

    async fn connect_to(port: u16, id: &str) -> Publisher {
        let options = MqttOptions::new(id, BROKER.0, port);
        let (client, mut events) = AsyncClient::new(options, 64);
        let task = tokio::spawn(async move { while events.poll().await.is_ok() {} });
        Publisher { client, task }
    }

    async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .unwrap();
    }

    async fn close(self) {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

fn at(minutes: i64) -> String {
    Timestamp::from_unix_ms(server::wall_clock().unix_ms() + minutes * 60_000).to_string()
}

/// Waits (at most 30 s) until `done` holds, saying what was awaited if it never does.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while !done().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "within 30 s: {what}");
}

async fn stored(running: &server::Running, device: &'static str) -> Vec<model::Observation> {
    running
        .ingest
        .query(move |s| s.observations(device, TimeRange::default(), 100))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_messages_are_attributed_stored_supervised_and_garbage_is_survived() {
    broker_is_up().await;
    let h = common::start("mqtt", |_| {}).await;
    common::declare_sealed_transit(h.api(), "T1", "SC-1").await;
    let (status, body) = common::api(
        h.api(),
        "POST",
        &format!("/api/v1/containers/{CONTAINER}/pairings"),
        Some(json!({"device": "SC-1", "kind": "embedded", "at": at(-60)})),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let prefix = unique("sealwatch-test");
    let client_id = unique("sealwatch");
    let mut config = MqttConfig::new(BROKER.0, BROKER.1);
    config.topic_prefix = prefix.clone();
    config.client_id = client_id.clone();
    let client = MqttClient::start(config.clone(), h.running.ingest.clone()).unwrap();
    let stats = client.stats();
    // A message published before the broker has the subscription would not be routed to us.
    eventually("subscribed at the broker", || {
        let n = stats.subscribed.load(Ordering::Relaxed);
        async move { n >= 1 }
    })
    .await;
    let publisher = Publisher::connect(&unique("vendor")).await;
    let topic = |format: &str| format!("{prefix}/acme/{CONTAINER}/{format}");

    // Garbage first: not JSON, a topic that names no container, a payload about another
    // container than its topic's. Then the good messages.
    publisher.publish(&topic("dcsa"), "not json {").await;
    publisher
        .publish(&format!("{prefix}/acme/NOT-A-CONTAINER/dcsa"), "{}")
        .await;
    let wrong_container = json!({"equipmentId": "MSKU0000011", "eventTime": at(-7)});
    publisher
        .publish(&topic("uncefact"), wrong_container.to_string())
        .await;
    let location = json!({"eventType": "IOT", "eventClassifierCode": "ACT",
        "eventDateTime": at(-6), "iotEventCode": "LOC", "equipmentReference": CONTAINER,
        "eventLocation": {"latitude": "29.31", "longitude": "120.07"}});
    publisher
        .publish(&topic("dcsa"), location.to_string())
        .await;
    let reading = json!({"equipmentId": CONTAINER, "eventTime": at(-5),
        "geoLocation": {"latitude": 29.315, "longitude": 120.075},
        "doorStatus": "CLOSED", "temperature": 5.5});
    publisher
        .publish(&topic("uncefact"), reading.to_string())
        .await;
    let opened = json!([{"eventType": "IOT", "eventClassifierCode": "ACT",
        "eventDateTime": at(-3), "iotEventCode": "DRO", "equipmentReference": CONTAINER}]);
    publisher.publish(&topic("dcsa"), opened.to_string()).await;

    eventually("three reports stored for SC-1", || async {
        stored(&h.running, "SC-1").await.len() == 3
    })
    .await;
    let observations = stored(&h.running, "SC-1").await;
    let doors: Vec<Option<DoorState>> = observations.iter().map(|o| o.door).collect();
    assert_eq!(
        doors,
        [None, Some(DoorState::Closed), Some(DoorState::Open)]
    );
    assert_eq!(observations[0].lat, Some(29.31));
    assert_eq!(observations[1].temperature_c, Some(5.5));
    let (_, alarms) = common::api(
        h.api(),
        "GET",
        "/api/v1/alarms?kind=illegal_opening&transit=T1",
        None,
    )
    .await;
    assert_eq!(
        alarms["items"].as_array().map(Vec::len),
        Some(1),
        "{alarms}"
    );
    let metrics = h.running.ingest.container_metrics();
    assert_eq!(metrics.count(ReportSource::Mqtt, "accepted"), 3);
    assert_eq!(stats.malformed.load(Ordering::Relaxed), 3);
    assert_eq!(metrics.count(ReportSource::Mqtt, "malformed"), 3);
    eventually("every message acknowledged", || {
        let s = stats.clone();
        async move { s.acknowledged.load(Ordering::Relaxed) == s.messages.load(Ordering::Relaxed) }
    })
    .await;

    // Away: what is published meanwhile waits in the broker's session for the next start.
    client.stop().await;
    let closed = json!({"eventType": "IOT", "eventDateTime": at(-1), "iotEventCode": "DRC",
        "equipmentReference": CONTAINER});
    publisher.publish(&topic("dcsa"), closed.to_string()).await;
    publisher.close().await;
    let client = MqttClient::start(config, h.running.ingest.clone()).unwrap();
    eventually("the report published while away is stored", || async {
        stored(&h.running, "SC-1").await.len() == 4
    })
    .await;
    let last: Value = serde_json::to_value(stored(&h.running, "SC-1").await.pop()).unwrap();
    assert_eq!(last["door"], "closed", "{last}");
    client.stop().await;

    // Leave no session behind on the shared broker: a clean connection with the same id
    // discards it.
    let mut options = MqttOptions::new(client_id, BROKER.0, BROKER.1);
    options.set_clean_session(true);
    let (cleaner, mut events) = AsyncClient::new(options, 8);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(e) = events.poll().await {
            if matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) {
                let _ = cleaner.try_disconnect();
            }
        }
    })
    .await;
    h.stop().await;
}

/// A Mosquitto of the test's own, on a port of its own, so that it can be stopped and
/// started again without disturbing the shared one. Killed when dropped.
struct OwnBroker {
    child: std::process::Child,
    port: u16,
}

impl OwnBroker {
    fn start(port: u16) -> OwnBroker {
        let child = std::process::Command::new("mosquitto")
            .args(["-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto is installed (.ci/run installs it)");
        OwnBroker { child, port }
    }

    async fn listening(&self) {
        eventually("the test's own broker listens", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
        })
        .await;
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reconnects_when_the_broker_comes_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let broker = OwnBroker::start(port);
    broker.listening().await;
    let h = common::start("mqtt-reconnect", |_| {}).await;
    common::declare_sealed_transit(h.api(), "T1", "SC-2").await;
    let (status, body) = common::api(
        h.api(),
        "POST",
        &format!("/api/v1/containers/{CONTAINER}/pairings"),
        Some(json!({"device": "SC-2", "kind": "affixed", "at": at(-60)})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let mut config = MqttConfig::new("127.0.0.1", port);
    config.topic_prefix = unique("sealwatch-test");
    let topic = format!("{}/acme/{CONTAINER}/uncefact", config.topic_prefix);
    let client = MqttClient::start(config, h.running.ingest.clone()).unwrap();
    let stats = client.stats();
    let subscribed = |n: u64| {
        let s = stats.clone();
        move || {
            let ok = s.subscribed.load(Ordering::Relaxed) >= n;
            async move { ok }
        }
    };
    eventually("subscribed at the broker", subscribed(1)).await;
    let publish = |minutes: i64| {
        let topic = topic.clone();
        async move {
            let publisher = Publisher::connect_to(port, &unique("vendor")).await;
            let reading =
                json!({"equipmentId": CONTAINER, "eventTime": at(minutes), "temperature": 4});
            publisher.publish(&topic, reading.to_string()).await;
            publisher.close().await;
        }
    };
    publish(-5).await;
    eventually("the first report stored", || async {
        stored(&h.running, "SC-2").await.len() == 1
    })
    .await;

    // The broker goes away, and comes back on the same port.
    drop(broker);
    eventually("the client notices the broker is gone", || {
        let down = !stats.connected.load(Ordering::Relaxed);
        async move { down }
    })
    .await;
    let broker = OwnBroker::start(port);
    broker.listening().await;
    eventually("reconnected and subscribed again", subscribed(2)).await;
    assert!(stats.connection_errors.load(Ordering::Relaxed) >= 1);
    publish(-2).await;
    eventually("the report after the reconnection stored", || async {
        stored(&h.running, "SC-2").await.len() == 2
    })
    .await;
    client.stop().await;
    drop(broker);
    h.stop().await;
}

/// Cuts every connection of the service to PostgreSQL (they carry its application name).
fn cut(url: &str, app: &str) -> i64 {
    let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
    admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_acknowledged_only_once_stored() {
    broker_is_up().await;
    // The local PostgreSQL of .ci/run; a database that is not there fails the test.
    let url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let app = format!("sealwatch_mqtt_{}", std::process::id());
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut config = server::Config::new("127.0.0.1:0".parse().unwrap(), std::env::temp_dir());
    config.database_url = Some(format!("{url}{sep}application_name={app}"));
    config.database_schema = Some(app.clone());
    // No clock ticks: nothing but the test touches the store while it is cut.
    config.tick_interval = Duration::from_secs(3600);
    let running = server::start(config).await.unwrap();
    common::declare_sealed_transit(running.addr, "T1", "SC-3").await;
    let (status, body) = common::api(
        running.addr,
        "POST",
        &format!("/api/v1/containers/{CONTAINER}/pairings"),
        Some(json!({"device": "SC-3", "kind": "affixed", "at": at(-60)})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let mut mqtt = MqttConfig::new(BROKER.0, BROKER.1);
    mqtt.topic_prefix = unique("sealwatch-test");
    mqtt.client_id = unique("sealwatch");
    mqtt.clean_session = true;
    let topic = format!("{}/acme/{CONTAINER}/dcsa", mqtt.topic_prefix);
    let client = MqttClient::start(mqtt, running.ingest.clone()).unwrap();
    let stats = client.stats();
    eventually("subscribed at the broker", || {
        let n = stats.subscribed.load(Ordering::Relaxed);
        async move { n >= 1 }
    })
    .await;

    // The database goes away; a door opening is published meanwhile.
    let (u, a) = (url.clone(), app.clone());
    let n = tokio::task::spawn_blocking(move || cut(&u, &a))
        .await
        .unwrap();
    assert!(n >= 1, "the service's connection was found and cut");
    let publisher = Publisher::connect(&unique("vendor")).await;
    let opened = json!({"eventType": "IOT", "eventDateTime": at(-2), "iotEventCode": "DRO",
        "equipmentReference": CONTAINER});
    publisher.publish(&topic, opened.to_string()).await;
    eventually("the submission fails while the database is gone", || {
        let n = stats.submit_failures.load(Ordering::Relaxed);
        async move { n >= 1 }
    })
    .await;
    assert_eq!(stats.messages.load(Ordering::Relaxed), 1);
    assert_eq!(
        stats.acknowledged.load(Ordering::Relaxed),
        0,
        "acknowledged while nothing was stored"
    );

    // A commit meets the cut connection (503) and the service connects again; the client,
    // still holding the message, stores it and only then acknowledges it.
    let (status, _) = common::api(
        running.addr,
        "POST",
        "/api/v1/observations",
        Some(json!([{"device": "SC-3", "t": at(-8), "lat": 29.31, "lon": 120.07}])),
    )
    .await;
    assert_eq!(status, 503, "the commit met the cut connection");
    eventually("the message acknowledged", || {
        let n = stats.acknowledged.load(Ordering::Relaxed);
        async move { n == 1 }
    })
    .await;
    let observations = stored(&running, "SC-3").await;
    assert_eq!(observations.len(), 1, "stored once: {observations:?}");
    assert_eq!(observations[0].door, Some(DoorState::Open));
    publisher.close().await;
    client.stop().await;
    running.stop().await.unwrap();
    tokio::task::spawn_blocking(move || {
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {app} CASCADE"))
            .unwrap();
    })
    .await
    .unwrap();
}
