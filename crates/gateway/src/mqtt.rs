//! The smart-container MQTT client (docs/containers.md): sealwatch subscribes to an external
//! broker where vendor clouds publish, at QoS 1, on `{prefix}/{vendor}/{container}/{format}`
//! with `format` `dcsa` or `uncefact`.
//!
//! Messages are read with `containers::parse`, attributed to the device paired to their
//! container at their time, and submitted through the ingest path (`server::Ingest`). A
//! message is acknowledged to the broker (PUBACK, manual acknowledgement) only once
//! `submit_container_reports` has returned, that is once what it carried is durable, or is
//! refused for good (unattributed, rejected by the pipeline). A message that cannot be read
//! is logged, counted and acknowledged: it will never become readable, and holding it would
//! only have the broker send it again. While the store is unavailable the same messages are
//! tried again, unacknowledged, so a broker with a persistent session (the default, `clean
//! session` off) keeps everything not yet stored across restarts of either side.
//!
//! Messages are read in arrival order by one worker, batched (what has arrived while the
//! previous batch was committed, up to [`BATCH_MAX_MESSAGES`]), and acknowledged in order, as
//! MQTT 3.1.1 asks. When the broker goes away the event loop reconnects with a growing pause
//! and subscribes again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use containers::{ContainerReport, ParseError};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use server::{Ingest, ReportOutcome, ReportSource};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Messages committed together at most.
pub const BATCH_MAX_MESSAGES: usize = 256;

/// The largest message read, in bytes (a payload carries at most
/// `containers::MAX_REPORTS_PER_PAYLOAD` reports). A larger one breaks the connection and the
/// broker would send it again on the next: set the broker's own limit at or below this
/// (Mosquitto's `message_size_limit`).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Payload bytes read from the broker and not yet acknowledged, at most: beyond it the client
/// stops reading and TCP pushes back on the broker, so memory stays bounded however fast
/// vendors publish.
pub const MAX_QUEUED_BYTES: usize = 32 * 1024 * 1024;

/// A message and its share of [`MAX_QUEUED_BYTES`], given back once it is acknowledged.
type Queued = (Publish, tokio::sync::OwnedSemaphorePermit);

/// Where the broker is and what to subscribe to.
#[derive(Clone)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    /// Must be stable across restarts for the broker to keep the session.
    pub client_id: String,
    pub username: Option<String>,
    /// Never printed (`Debug` leaves it out).
    pub password: Option<String>,
    /// Topics are `{topic_prefix}/{vendor}/{container}/{format}`.
    pub topic_prefix: String,
    pub keep_alive: Duration,
    /// Off by default: the broker keeps the subscription and the unacknowledged messages while
    /// sealwatch is away.
    pub clean_session: bool,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("topic_prefix", &self.topic_prefix)
            .field("clean_session", &self.clean_session)
            .finish_non_exhaustive()
    }
}

impl MqttConfig {
    pub fn new(host: impl Into<String>, port: u16) -> MqttConfig {
        MqttConfig {
            host: host.into(),
            port,
            client_id: "sealwatch".into(),
            username: None,
            password: None,
            topic_prefix: "sealwatch/containers".into(),
            keep_alive: Duration::from_secs(30),
            clean_session: false,
        }
    }

    /// The subscription: every vendor, container and format under the prefix.
    pub fn topic_filter(&self) -> String {
        format!("{}/+/+/+", self.topic_prefix)
    }

    /// Whether the configuration can work: the error names the field.
    pub fn check(&self) -> Result<(), String> {
        if self.client_id.is_empty() || self.client_id.len() > 64 {
            return Err("client_id: 1 to 64 characters".into());
        }
        let p = &self.topic_prefix;
        if p.is_empty() || p.ends_with('/') || p.contains(['+', '#']) {
            return Err(format!(
                "topic_prefix: {p:?} must be a topic without wildcards or a trailing '/'"
            ));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err("password: given without a username".into());
        }
        Ok(())
    }
}

/// What the client has done, for `/metrics`. Reports' outcomes are counted by the service
/// (`sealwatch_container_reports_total{source="mqtt"}`).
#[derive(Debug, Default)]
pub struct MqttStats {
    pub messages: AtomicU64,
    pub malformed: AtomicU64,
    pub acknowledged: AtomicU64,
    /// Submissions that failed (the store unavailable): tried again, nothing acknowledged.
    pub submit_failures: AtomicU64,
    pub connections: AtomicU64,
    pub connection_errors: AtomicU64,
    pub connected: AtomicBool,
    /// Subscriptions the broker has acknowledged (one per connection).
    pub subscribed: AtomicU64,
}

impl MqttStats {
    /// The Prometheus text exposition of these counters.
    pub fn render(&self) -> String {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "# HELP sealwatch_mqtt_messages_total Messages received from the broker, by outcome.\n\
             # TYPE sealwatch_mqtt_messages_total counter\n\
             sealwatch_mqtt_messages_total{{outcome=\"received\"}} {}\n\
             sealwatch_mqtt_messages_total{{outcome=\"malformed\"}} {}\n\
             sealwatch_mqtt_messages_total{{outcome=\"acknowledged\"}} {}\n\
             # HELP sealwatch_mqtt_submit_failures_total Submissions of MQTT reports that failed and were tried again.\n\
             # TYPE sealwatch_mqtt_submit_failures_total counter\n\
             sealwatch_mqtt_submit_failures_total {}\n\
             # HELP sealwatch_mqtt_connections_total Connections made to the broker, and those that failed or broke.\n\
             # TYPE sealwatch_mqtt_connections_total counter\n\
             sealwatch_mqtt_connections_total{{outcome=\"connected\"}} {}\n\
             sealwatch_mqtt_connections_total{{outcome=\"error\"}} {}\n\
             # HELP sealwatch_mqtt_connected Whether the client is connected to the broker.\n\
             # TYPE sealwatch_mqtt_connected gauge\n\
             sealwatch_mqtt_connected {}\n",
            load(&self.messages),
            load(&self.malformed),
            load(&self.acknowledged),
            load(&self.submit_failures),
            load(&self.connections),
            load(&self.connection_errors),
            u8::from(self.connected.load(Ordering::Relaxed)),
        )
    }
}

/// A running MQTT client.
#[derive(Debug)]
pub struct MqttClient {
    client: AsyncClient,
    stats: Arc<MqttStats>,
    poller: JoinHandle<()>,
    worker: JoinHandle<()>,
}

impl MqttClient {
    /// Starts the client: it connects (and keeps reconnecting) in the background, so a broker
    /// that is down at start is not an error. Only a configuration that cannot work is.
    pub fn start(config: MqttConfig, ingest: Ingest) -> Result<MqttClient, String> {
        config.check()?;
        let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
        options
            .set_keep_alive(config.keep_alive)
            .set_clean_session(config.clean_session)
            .set_manual_acks(true)
            .set_max_packet_size(MAX_MESSAGE_BYTES, 64 * 1024);
        if let Some(user) = &config.username {
            options.set_credentials(user, config.password.clone().unwrap_or_default());
        }
        let (client, mut events) = AsyncClient::new(options, 1024);
        let stats = Arc::new(MqttStats::default());
        let (tx, rx) = mpsc::channel::<Queued>(BATCH_MAX_MESSAGES * 4);
        let budget = Arc::new(tokio::sync::Semaphore::new(MAX_QUEUED_BYTES));
        let filter = config.topic_filter();
        let poller = {
            let (client, stats, mut stopping) = (client.clone(), stats.clone(), ingest.stopping());
            let broker = format!("{}:{}", config.host, config.port);
            tokio::spawn(async move {
                let mut pause = Duration::from_millis(250);
                loop {
                    let event = tokio::select! {
                        e = events.poll() => e,
                        _ = stopping.wait_for(|s| *s) => break,
                    };
                    match event {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            pause = Duration::from_millis(250);
                            stats.connections.fetch_add(1, Ordering::Relaxed);
                            stats.connected.store(true, Ordering::Relaxed);
                            tracing::info!(%broker, %filter, "MQTT connected");
                            // Subscribed on every connection: a clean session forgets it.
                            // `try_`: awaiting here would wait on this very loop.
                            if let Err(e) = client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                                tracing::error!(error = %e, "cannot subscribe");
                            }
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            stats.subscribed.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            stats.messages.fetch_add(1, Ordering::Relaxed);
                            // Empty messages still take a permit: the count is bounded too.
                            let bytes = p.payload.len().clamp(1, MAX_QUEUED_BYTES) as u32;
                            let Ok(permit) = budget.clone().acquire_many_owned(bytes).await else {
                                break;
                            };
                            if tx.send((p, permit)).await.is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            stats.connected.store(false, Ordering::Relaxed);
                            stats.connection_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(%broker, error = %e, retry_in_ms = pause.as_millis() as u64, "MQTT connection lost or refused");
                            tokio::select! {
                                _ = tokio::time::sleep(pause) => {}
                                _ = stopping.wait_for(|s| *s) => break,
                            }
                            pause = (pause * 2).min(Duration::from_secs(30));
                        }
                    }
                }
                stats.connected.store(false, Ordering::Relaxed);
            })
        };
        let worker = tokio::spawn(work(
            rx,
            client.clone(),
            ingest,
            stats.clone(),
            config.topic_prefix.clone(),
        ));
        Ok(MqttClient {
            client,
            stats,
            poller,
            worker,
        })
    }

    pub fn stats(&self) -> Arc<MqttStats> {
        self.stats.clone()
    }

    /// Disconnects and waits for the client's tasks. Messages not yet committed are left
    /// unacknowledged: the broker sends them again to the next session.
    pub async fn stop(self) {
        let _ = self.client.try_disconnect();
        // The disconnect goes out on the event loop's next poll; give it a moment.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while self.stats.connected.load(Ordering::Relaxed) && !self.poller.is_finished() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        self.poller.abort();
        self.worker.abort();
        let _ = self.poller.await;
        let _ = self.worker.await;
    }
}

/// A message read: its reports, or why it cannot be.
fn read(prefix: &str, p: &Publish) -> Result<Vec<ContainerReport>, ParseError> {
    let topic = containers::parse_topic(prefix, &p.topic)?;
    let reports = containers::parse(topic.format, &p.payload)?;
    // The topic names the container: a report about another one is a vendor's mistake that
    // would attribute data to the wrong container.
    if let Some(r) = reports.iter().find(|r| r.container != topic.container) {
        return Err(ParseError {
            field: "container".into(),
            reason: format!(
                "the payload reports on {} but was published for {}",
                r.container, topic.container
            ),
        });
    }
    Ok(reports)
}

/// Reads, submits and acknowledges messages in arrival order, a batch at a time.
async fn work(
    mut rx: mpsc::Receiver<Queued>,
    client: AsyncClient,
    ingest: Ingest,
    stats: Arc<MqttStats>,
    prefix: String,
) {
    let mut batch: Vec<Queued> = Vec::with_capacity(BATCH_MAX_MESSAGES);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < BATCH_MAX_MESSAGES {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let mut reports = Vec::new();
        for (p, _) in &batch {
            match read(&prefix, p) {
                Ok(r) => reports.extend(r),
                Err(e) => {
                    stats.malformed.fetch_add(1, Ordering::Relaxed);
                    ingest.container_message_malformed(ReportSource::Mqtt);
                    // The topic is the vendor's and the container's: safe to log; the payload
                    // is not logged (it can be large), the error names the field.
                    tracing::warn!(topic = %p.topic, error = %e, "MQTT message refused");
                }
            }
        }
        if !reports.is_empty() && !submit(&ingest, &stats, reports).await {
            // Stopping: leave the batch unacknowledged for the broker to send again.
            return;
        }
        for (p, _permit) in batch.drain(..) {
            if let Err(e) = client.ack(&p).await {
                tracing::warn!(error = %e, "cannot acknowledge an MQTT message");
                return;
            }
            stats.acknowledged.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Submits until the reports are committed (true) or the service stops (false).
async fn submit(ingest: &Ingest, stats: &MqttStats, reports: Vec<ContainerReport>) -> bool {
    let mut pause = Duration::from_millis(100);
    loop {
        match ingest
            .submit_container_reports(ReportSource::Mqtt, reports.clone())
            .await
        {
            Ok(outcomes) => {
                for o in outcomes {
                    if let ReportOutcome::Rejected { device, error } = o {
                        tracing::info!(%device, %error, "MQTT report refused by the pipeline");
                    }
                }
                return true;
            }
            Err(server::IngestError::Stopping) => return false,
            Err(e) => {
                stats.submit_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "MQTT reports not stored; trying again");
                let mut stopping = ingest.stopping();
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stopping.wait_for(|s| *s) => return false,
                }
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    }
}
