//! The sealwatch service: the HTTP API under `/api/v1`, the live stream, health and metrics,
//! around the ingest writer (see `writer.rs`).
//!
//! Every write goes through the writer thread and its pipeline, so every source (this API now,
//! device gateways next) takes the same path: validate, drop duplicates, supervise, commit with
//! the outputs, acknowledge. Queries run on the writer thread too, with the store; a read
//! replica is a later step.

pub mod audit_chain;
pub mod auth;
mod commands;
pub mod containers;
pub mod decisions;
pub mod device_pool;
mod export;
mod keys;
mod map;
mod metrics;
pub mod openapi;
pub mod permissions;
pub mod readers;
mod reference;
mod registry;
pub mod tls;
pub mod ui;
pub mod users;
mod writer;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use ingest::Pipeline;
pub use ingest::{Submission, Verdict};
use model::{
    Action, ActionKind, AlarmKind, AlarmStep, Outcome, Timestamp, Transit, TransitState, Zone,
};
use serde::{Deserialize, Serialize};
use store::{AlarmFilter, PageRequest, Store, TimeRange, TransitFilter};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{BroadcastStream, WatchStream};

pub use containers::{ContainerMetrics, ReportOutcome, ReportSource, WebhookSecrets};
use metrics::Metrics;
pub use supervisor::Output;
use writer::Job;
pub use writer::Published;

/// Where the service keeps its data and listens.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// SQLite file `sealwatch.db` in this directory (the embedded default).
    pub data_dir: PathBuf,
    /// A PostgreSQL URL instead of the SQLite file.
    pub database_url: Option<String>,
    /// The PostgreSQL schema to work in (created if missing); `public` when absent.
    pub database_schema: Option<String>,
    /// Largest number of inputs committed in one transaction.
    pub batch_max_items: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long stopping waits for open connections before closing them.
    pub shutdown_grace: Duration,
    /// How often the clock fires due timers.
    pub tick_interval: Duration,
    /// Observations older than this are purged (once their device's transits are all
    /// closed); `None` keeps them for ever.
    pub retention: Option<Duration>,
    /// The driver's name and contact of transits closed longer ago than this are erased;
    /// `None` keeps them for ever.
    pub personal_data_retention: Option<Duration>,
    /// Files attached to alarms closed longer ago than this are deleted; `None` keeps them.
    pub attachment_retention: Option<Duration>,
    /// How often retention looks for what to purge or erase.
    pub purge_every: Duration,
    /// Whether `/api/v1` needs a bearer token. `Config::new` leaves it off, for tests and
    /// embedding; `sealwatch serve` and `sealwatch demo` turn it on (`server.auth_required`).
    pub auth_required: bool,
    /// Vendor clouds allowed to post to the container webhook, with their secrets.
    pub webhook_secrets: WebhookSecrets,
    pub clock: Clock,
    /// The audit chain's checkpoints: the key that signs them and how often.
    pub audit: audit_chain::AuditConfig,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<tls::TlsFiles>,
    /// Mark the session cookie `Secure` even without `tls` (TLS ended by a proxy in front).
    pub cookie_secure: bool,
    /// How long signed-in sessions last.
    pub session_timeouts: users::SessionTimeouts,
    /// Whether an administrator signed in without a second factor may only enrol one (on by
    /// default; only `sealwatch demo` turns it off, and says so).
    pub admin_totp_required: bool,
    /// The release-or-inspect proposal's policy (docs/decisions.md).
    pub risk: decisions::RiskConfig,
    /// Encryption at rest of transits' personal and confidential fields (docs/security.md):
    /// on, the key comes from `SEALWATCH_STORE_ENCRYPTION_KEY` or `encryption_key_file`
    /// (created with a random key when missing); off, they are stored clear.
    pub encryption: bool,
    /// The data-encryption key file (one `ID HEX` line per key, the last one current).
    pub encryption_key_file: Option<PathBuf>,
    /// The web UI served at `/` (`ui.rs`): the built directory and the map's tile server.
    pub ui: ui::UiConfig,
}

/// The default largest request body: 8 MiB, about 25,000 observations in one batch.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

impl Config {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Config {
        Config {
            listen,
            data_dir,
            database_url: None,
            database_schema: None,
            batch_max_items: 10_000,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            shutdown_grace: Duration::from_secs(10),
            tick_interval: Duration::from_secs(1),
            retention: None,
            personal_data_retention: None,
            attachment_retention: None,
            purge_every: Duration::from_secs(60),
            auth_required: false,
            webhook_secrets: WebhookSecrets::default(),
            clock: Clock::real(),
            audit: audit_chain::AuditConfig::default(),
            tls: None,
            cookie_secure: false,
            session_timeouts: users::SessionTimeouts::default(),
            admin_totp_required: true,
            risk: decisions::RiskConfig::default(),
            encryption: false,
            encryption_key_file: None,
            ui: ui::UiConfig {
                dir: Some(ui::default_dir()),
                tile_url: None,
            },
        }
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error("store: {0}")]
    Store(#[from] store::Error),
    #[error("ingest: {0}")]
    Ingest(#[from] ingest::Error),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("server: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    Tls(String),
}

/// Opens the configured store.
pub fn open_store(config: &Config) -> Result<Box<dyn Store>, Error> {
    let keys = if config.encryption {
        store::Keys::configured(config.encryption_key_file.as_deref())?
    } else {
        store::Keys::none()
    };
    let mut store: Box<dyn Store> = match &config.database_url {
        Some(url) => Box::new(match &config.database_schema {
            Some(schema) => store::PgStore::connect_in_schema(url, schema)?,
            None => store::PgStore::connect(url)?,
        }),
        None => {
            std::fs::create_dir_all(&config.data_dir)
                .map_err(|e| Error::DataDir(config.data_dir.clone(), e))?;
            Box::new(store::SqliteStore::open(
                &config.data_dir.join("sealwatch.db"),
            )?)
        }
    };
    store.set_keys(keys);
    Ok(store)
}

/// Functions giving metrics in the Prometheus text format.
type MetricsSources = Arc<std::sync::RwLock<Vec<Box<dyn Fn() -> String + Send + Sync>>>>;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    jobs: mpsc::Sender<Job>,
    live: broadcast::Sender<Published>,
    metrics: Arc<Metrics>,
    /// Other parts' metrics (the device gateways), appended to `/metrics`.
    extra_metrics: MetricsSources,
    /// False while the writer cannot reach the store (it keeps trying).
    store_up: Arc<AtomicBool>,
    max_body_bytes: usize,
    auth_required: bool,
    tokens: Arc<auth::TokenCache>,
    /// Devices that have a command newly queued (for the gateways to send it at once).
    commands: broadcast::Sender<String>,
    /// Turns true when the service stops: live streams end, so shutdown does not wait on them.
    stopping: watch::Receiver<bool>,
    clock: Clock,
    webhook_secrets: WebhookSecrets,
    /// Smart-container reports by source and outcome.
    containers: Arc<ContainerMetrics>,
    /// Sign-in failures per username and client address.
    lockout: Arc<users::Lockout>,
    session_timeouts: users::SessionTimeouts,
    admin_totp_required: bool,
    risk: Arc<decisions::RiskConfig>,
    /// Whether the session cookie is marked `Secure`.
    cookie_secure: bool,
    /// The web UI.
    ui: Arc<ui::UiConfig>,
    /// The live map's last unscoped answer, shared by the consoles for a second (map.rs).
    map_cache: map::MapCache,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// A running service: its address, and a handle to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub live: broadcast::Sender<Published>,
    /// The ingest path, for sources other than the HTTP API (device gateways).
    pub ingest: Ingest,
    extra_metrics: MetricsSources,
    stop: Option<oneshot::Sender<()>>,
    stopping: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
    writer: Option<std::thread::JoinHandle<()>>,
    shutdown_grace: Duration,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Adds metrics of another part (a device gateway) to `/metrics`.
    pub fn add_metrics(&self, source: impl Fn() -> String + Send + Sync + 'static) {
        if let Ok(mut sources) = self.extra_metrics.write() {
            sources.push(Box::new(source));
        }
    }

    /// Stops accepting requests, lets the writer commit what it accepted, and waits for both.
    pub async fn stop(mut self) -> Result<(), Error> {
        let _ = self.stopping.send(true);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Connections get a grace period to finish; one holding a half-sent request does not
        // hold the shutdown for ever.
        let result = match tokio::time::timeout(self.shutdown_grace, &mut self.task).await {
            Ok(joined) => joined.unwrap_or(Ok(())),
            Err(_) => {
                self.task.abort();
                Ok(())
            }
        };
        if let Some(w) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
        result
    }
}

/// Starts the service on `config.listen` (port 0 picks a free one).
pub async fn start(config: Config) -> Result<Running, Error> {
    // The certificate is read before anything starts: a wrong file is said at once.
    let acceptor = match &config.tls {
        Some(files) => Some(tls::acceptor(files).map_err(Error::Tls)?),
        None => None,
    };
    // The PostgreSQL driver is blocking (it runs a runtime of its own): open off the runtime.
    let open_config = config.clone();
    let (pipeline, backend, last_feed) =
        tokio::task::spawn_blocking(move || -> Result<_, Error> {
            let store = open_store(&open_config)?;
            let backend = store.backend();
            let mut pipeline = Pipeline::open(store)?;
            // Where the live stream starts: from the feed's end, never from its beginning.
            let last_feed = pipeline.store().last_feed_id()?;
            Ok((pipeline, backend, last_feed))
        })
        .await
        .expect("opening the pipeline does not panic")?;
    let (jobs, rx) = mpsc::channel::<Job>(1024);
    let (live, _) = broadcast::channel(4096);
    let metrics = Arc::new(Metrics::default());
    let extra_metrics = MetricsSources::default();
    let store_up = Arc::new(AtomicBool::new(true));
    let (commands, _) = broadcast::channel(1024);
    let writer = {
        let (live, metrics, max) = (live.clone(), metrics.clone(), config.batch_max_items);
        let gate_commands = commands.clone();
        let store_up = store_up.clone();
        let open_config = config.clone();
        let audit = config.audit.clone();
        let open: writer::Opener =
            Box::new(move || open_store(&open_config).map_err(|e| e.to_string()));
        std::thread::Builder::new()
            .name("sealwatch-writer".into())
            .spawn(move || {
                writer::run(
                    pipeline,
                    open,
                    rx,
                    live,
                    (metrics, store_up, gate_commands),
                    max,
                    last_feed,
                    audit,
                )
            })
            .expect("a thread can be started")
    };
    let (stopping, stopping_rx) = watch::channel(false);
    let state = AppState {
        jobs: jobs.clone(),
        live: live.clone(),
        metrics,
        extra_metrics: extra_metrics.clone(),
        store_up,
        max_body_bytes: config.max_body_bytes,
        auth_required: config.auth_required,
        tokens: Arc::default(),
        commands: commands.clone(),
        stopping: stopping_rx,
        clock: config.clock,
        webhook_secrets: config.webhook_secrets.clone(),
        containers: Arc::default(),
        lockout: Arc::default(),
        session_timeouts: config.session_timeouts,
        admin_totp_required: config.admin_totp_required,
        risk: Arc::new(config.risk.clone()),
        cookie_secure: config.cookie_secure || config.tls.is_some(),
        ui: Arc::new(config.ui.clone()),
        map_cache: map::MapCache::default(),
    };
    // The clock: timers fire even when no report comes. It stops with the service, so that
    // the writer sees its last sender go and finishes.
    let ticker = jobs.clone();
    let clock = config.clock;
    let mut ticker_stopping = state.stopping.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(config.tick_interval);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = ticker_stopping.changed() => break,
            }
            if ticker.send(Job::Tick(clock.now())).await.is_err() {
                break;
            }
        }
    });
    // The per-device index follows the log a couple of seconds behind (reads are complete
    // regardless; see `writer::INDEX_BATCH` for why not more often).
    let indexer = jobs.clone();
    let mut indexer_stopping = state.stopping.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = indexer_stopping.changed() => break,
            }
            // A full queue means the writer is busy: the next round will do.
            if let Err(mpsc::error::TrySendError::Closed(_)) = indexer.try_send(Job::Index) {
                break;
            }
        }
    });
    // Retention: each data class with a period gets a round every `purge_every`.
    let as_ms = |d: Option<Duration>| d.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let periods = (
        as_ms(config.retention),
        as_ms(config.personal_data_retention),
        as_ms(config.attachment_retention),
    );
    if periods != (None, None, None) {
        let purger = jobs.clone();
        let mut purger_stopping = state.stopping.clone();
        let every = config.purge_every;
        tokio::spawn(async move {
            let mut every = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = purger_stopping.changed() => break,
                }
                let now = clock.now().unix_ms();
                let before = |ms: i64| Timestamp::from_unix_ms(now.saturating_sub(ms));
                let (observations, personal, attachments) = periods;
                let round = [
                    observations.map(|ms| Job::Purge {
                        before: before(ms),
                        after: 0,
                    }),
                    personal.map(|ms| Job::Retain {
                        class: writer::RetainedClass::PersonalData,
                        before: before(ms),
                    }),
                    attachments.map(|ms| Job::Retain {
                        class: writer::RetainedClass::Attachments,
                        before: before(ms),
                    }),
                ];
                for job in round.into_iter().flatten() {
                    if purger.send(job).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
    let ingest = Ingest {
        jobs: jobs.downgrade(),
        clock: config.clock,
        stopping: state.stopping.clone(),
        commands,
        containers: state.containers.clone(),
    };
    drop(jobs);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Listen(config.listen, e))?;
    let addr = listener.local_addr().map_err(Error::Serve)?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    tracing::info!(%addr, scheme, store = backend, "listening");
    let (stop, stopped) = oneshot::channel::<()>();
    // Handlers see the client's address (the sign-in lockout counts per address).
    let app = router(state).into_make_service_with_connect_info::<ClientAddr>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let task = match acceptor {
        Some(acceptor) => {
            let listener = tls::TlsListener::new(listener, acceptor).map_err(Error::Serve)?;
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                    .map_err(Error::Serve)
            })
        }
        None => tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(Error::Serve)
        }),
    };
    Ok(Running {
        addr,
        live,
        ingest,
        extra_metrics,
        stop: Some(stop),
        stopping,
        task,
        writer: Some(writer),
        shutdown_grace: config.shutdown_grace,
    })
}

/// The address a request came from (the TCP peer: a proxy's `X-Forwarded-For` is not trusted).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientAddr(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tls::TlsListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tls::TlsListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// The one ingest path, for sources other than the HTTP API (device gateways): the same
/// validation, deduplication, supervision and group commit, and an answer only once what was
/// accepted is durable.
///
/// It does not keep the writer alive: once the service stops, `submit` fails and
/// [`Ingest::stopping`] says so, and a gateway should close its connections.
#[derive(Clone, Debug)]
pub struct Ingest {
    jobs: mpsc::WeakSender<Job>,
    clock: Clock,
    stopping: watch::Receiver<bool>,
    commands: broadcast::Sender<String>,
    containers: Arc<ContainerMetrics>,
}

/// Why a submission could not be taken; nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the service is stopping")]
    Stopping,
    #[error("{0}")]
    Unavailable(String),
}

/// Hands inputs to the writer and waits for their verdicts: the one way in for the API and
/// the gateways alike. `jobs` is dropped once the job is sent, so a caller holding a weak
/// sender does not keep the writer alive while it waits.
async fn submit_to(
    jobs: mpsc::Sender<Job>,
    clock: &Clock,
    items: Vec<Submission>,
    actor: Option<Arc<str>>,
) -> Result<Vec<Verdict>, IngestError> {
    let (reply, rx) = oneshot::channel();
    let job = Job::Submit {
        items,
        actor,
        now: clock.now(),
        received: Instant::now(),
        reply,
    };
    jobs.send(job).await.map_err(|_| IngestError::Stopping)?;
    drop(jobs);
    rx.await
        .map_err(|_| IngestError::Stopping)?
        .map_err(IngestError::Unavailable)
}

impl Ingest {
    /// Submits inputs together; a verdict per input, once the accepted ones are committed.
    pub async fn submit(&self, items: Vec<Submission>) -> Result<Vec<Verdict>, IngestError> {
        let jobs = self.jobs.upgrade().ok_or(IngestError::Stopping)?;
        submit_to(jobs, &self.clock, items, None).await
    }

    /// Runs `f` with the store on the writer thread (the only place the store is touched) and
    /// returns what it returns: a gateway looks up a device's registration or keeps what a
    /// device sent that is not an input. `f` must be short: ingest waits behind it.
    pub async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> T + Send + 'static,
    ) -> Result<T, IngestError> {
        let jobs = self.jobs.upgrade().ok_or(IngestError::Stopping)?;
        let (tx, rx) = oneshot::channel();
        let job = Job::Query(Box::new(move |s| {
            let _ = tx.send(f(s));
        }));
        jobs.send(job).await.map_err(|_| IngestError::Stopping)?;
        drop(jobs);
        // The writer drops queries while it reconnects to a store that is gone.
        rx.await
            .map_err(|_| IngestError::Unavailable("the store is unavailable".into()))
    }

    /// Submits smart-container reports: each is attributed to the device paired to its
    /// container at its time (`containers`), and the attributed ones are submitted together;
    /// an outcome per report, once what was accepted is committed.
    pub async fn submit_container_reports(
        &self,
        source: ReportSource,
        reports: Vec<::containers::ContainerReport>,
    ) -> Result<Vec<ReportOutcome>, IngestError> {
        let jobs = self.jobs.upgrade().ok_or(IngestError::Stopping)?;
        let now = self.clock.now();
        containers::submit_reports(&jobs, now, &self.containers, source, reports)
            .await
            .map_err(IngestError::Unavailable)
    }

    /// Counts a container message that could not be read (`/metrics`).
    pub fn container_message_malformed(&self, source: ReportSource) {
        self.containers.malformed(source);
    }

    /// The smart-container counters.
    pub fn container_metrics(&self) -> &ContainerMetrics {
        &self.containers
    }

    /// The service's clock (the demo's runs faster).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Turns true when the service stops.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.clone()
    }

    /// The ids of devices as commands are queued for them through the API: a gateway
    /// with the device connected sends them at once (`store.pending_commands`). A receiver
    /// that lags should check every device it serves.
    pub fn commands_queued(&self) -> broadcast::Receiver<String> {
        self.commands.subscribe()
    }
}

/// The service's clock: the wall clock, or for the demo a clock that runs `speed` times faster
/// from `start` (a four-hour journey in four minutes at speed 60). Reports are stamped and
/// timers fire in this time; the supervisor itself never reads a clock.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    wall_start: Timestamp,
    start: Timestamp,
    speed: f64,
}

impl Clock {
    pub fn real() -> Clock {
        Clock::fast(1.0)
    }

    /// A clock starting now and running `speed` times faster than the wall clock.
    pub fn fast(speed: f64) -> Clock {
        let now = wall_clock();
        Clock {
            wall_start: now,
            start: now,
            speed: speed.max(0.001),
        }
    }

    pub fn now(&self) -> Timestamp {
        let elapsed = wall_clock().unix_ms() - self.wall_start.unix_ms();
        Timestamp::from_unix_ms(self.start.unix_ms() + (elapsed as f64 * self.speed) as i64)
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }
}

/// The wall clock.
pub fn wall_clock() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp::from_unix_ms(ms)
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    let max_body_bytes = state.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/v1/docs", get(reference::page))
        .route(
            "/api/v1/session",
            post(users::sign_in).get(users::who).delete(users::sign_out),
        )
        .route("/api/v1/session/totp", post(users::enrol_totp))
        .route("/api/v1/zones", post(put_zone).get(list_zones))
        .route("/api/v1/transits", post(declare).get(list_transits))
        .route("/api/v1/transits/{id}", get(get_transit))
        .route("/api/v1/transits/{id}/actions", post(act))
        .route("/api/v1/transits/{id}/events", get(transit_events))
        .route("/api/v1/transits/{id}/commands", get(commands::of_transit))
        .route(
            "/api/v1/devices/{id}/commands",
            post(commands::queue).get(commands::of_device),
        )
        .route("/api/v1/devices/{id}/log", get(commands::log_of_device))
        .route(
            "/api/v1/devices/{id}/keys",
            put(keys::put).get(keys::get).delete(keys::revoke),
        )
        .route("/api/v1/observations", post(observations))
        .route("/api/v1/reads", post(read))
        .route(
            "/api/v1/readers/{id}/key",
            put(readers::put_key)
                .get(readers::get_key)
                .delete(readers::revoke_key),
        )
        .route("/api/v1/readers/{id}/reads", post(readers::post_reads))
        .route("/api/v1/readers/{id}/posts", get(readers::posts))
        .route("/api/v1/alarms", get(list_alarms))
        .route("/api/v1/alarms/{id}", get(get_alarm))
        .route("/api/v1/alarms/{id}/{step}", post(handle_alarm))
        .route(
            "/api/v1/alarms/{id}/attachments",
            post(attach).get(list_attachments),
        )
        .route("/api/v1/alarms/{id}/attachments/{n}", get(get_attachment))
        .route("/api/v1/stream", get(stream))
        .route("/api/v1/map", get(map::map))
        .route("/api/v1/audit", get(audit_chain::list))
        .route(
            "/api/v1/containers/{number}/pairings",
            post(containers::pair).get(containers::pairings),
        )
        .route(
            "/api/v1/containers/{number}/pairings/{device}/unpair",
            post(containers::unpair),
        )
        .route(
            "/api/v1/webhooks/containers/{vendor}",
            post(containers::webhook),
        )
        .merge(registry::routes())
        .merge(decisions::routes())
        .merge(device_pool::routes())
        // Paths outside the API are the web UI's (ui.rs); inside it, an unknown route.
        .fallback(|State(s): State<AppState>, request: Request| async move {
            let path = request.uri().path();
            if ui::is_ui_path(path) {
                ui::serve(&s.ui, request.method(), path).await
            } else {
                Problem::new(StatusCode::NOT_FOUND, "path: no such route").into_response()
            }
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::map_response_with_state(
            max_body_bytes,
            as_problem,
        ))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(refuse_nul_in_uri))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            log_request,
        ))
        .with_state(state)
}

/// Logs each request (at debug; failures of the service at warn) and counts its response.
async fn log_request(
    State(s): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // The path only: queries may one day carry things that are not for logs.
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    s.metrics.response(status);
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    if status >= 500 {
        tracing::warn!(%method, %path, status, elapsed_ms, "request failed");
    } else {
        tracing::debug!(%method, %path, status, elapsed_ms, "request");
    }
    response
}

/// Turns every error response that is not already a problem (axum's rejections of a path or a
/// query, 405, 413) into `application/problem+json`, keeping its status and text.
async fn as_problem(State(max_body_bytes): State<usize>, response: Response) -> Response {
    let status = response.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return Problem::new(
            status,
            format!("body: larger than the limit of {max_body_bytes} bytes; send smaller batches"),
        )
        .into_response();
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/problem+json")
                || v.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    let text = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    Problem::new(status, text).into_response()
}

/// An RFC 9457 problem: what is wrong, and with which field.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(skip)]
    status: StatusCode,
    title: String,
    status_code: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl Problem {
    fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        let detail = detail.into();
        // Details name the field first (`lat: must be ...`), as everywhere in sealwatch.
        let field = detail
            .split_once(": ")
            .map(|(f, _)| f.to_owned())
            .filter(|f| !f.contains(' '));
        Problem {
            status,
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status_code: status.as_u16(),
            detail,
            field,
        }
    }
    fn unavailable() -> Problem {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store is unavailable or the service is stopping; try again",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = serde_json::to_value(&self).unwrap_or_default();
        if let Some(o) = body.as_object_mut() {
            // `status` is the RFC's name; the field is renamed here to keep `status` the code.
            if let Some(code) = o.remove("status_code") {
                o.insert("status".into(), code);
            }
        }
        let mut r = (self.status, Json(body)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        r
    }
}

fn store_problem(e: store::Error) -> Problem {
    if e.is_not_found() {
        Problem::new(StatusCode::NOT_FOUND, e.to_string())
    } else if e.is_conflict() {
        Problem::new(StatusCode::CONFLICT, e.to_string())
    } else {
        // The database's own words are for the operator's log, not for clients.
        tracing::error!(error = %e, "store error");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store: the request could not be completed; the service log says why",
        )
    }
}

impl AppState {
    async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> T + Send + 'static,
    ) -> Result<T, Problem> {
        self.on_writer(Job::Query, f).await
    }

    /// A query that adds to the live feed (a handling step): the writer publishes what it
    /// added once it has run.
    async fn query_then_publish<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> T + Send + 'static,
    ) -> Result<T, Problem> {
        self.on_writer(Job::QueryThenPublish, f).await
    }

    /// Runs `f` with the store on the writer thread, as the job `kind` makes of it.
    async fn on_writer<T: Send + 'static>(
        &self,
        kind: fn(writer::Query) -> Job,
        f: impl FnOnce(&mut dyn Store) -> T + Send + 'static,
    ) -> Result<T, Problem> {
        let (tx, rx) = oneshot::channel();
        let job = kind(Box::new(move |s| {
            let _ = tx.send(f(s));
        }));
        self.jobs
            .send(job)
            .await
            .map_err(|_| Problem::unavailable())?;
        rx.await.map_err(|_| Problem::unavailable())
    }

    async fn submit(&self, items: Vec<Submission>) -> Result<Vec<Verdict>, Problem> {
        self.submit_as(items, None).await
    }

    /// Submits with who submitted, for the audit chain (declarations and actions).
    async fn submit_as(
        &self,
        items: Vec<Submission>,
        actor: Option<Arc<str>>,
    ) -> Result<Vec<Verdict>, Problem> {
        submit_to(self.jobs.clone(), &self.clock, items, actor)
            .await
            .map_err(|e| match e {
                IngestError::Stopping => Problem::unavailable(),
                IngestError::Unavailable(why) => Problem::new(StatusCode::SERVICE_UNAVAILABLE, why),
            })
    }

    async fn submit_one(&self, item: Submission) -> Result<(), Problem> {
        self.submit_one_as(item, None).await
    }

    async fn submit_one_as(
        &self,
        item: Submission,
        actor: Option<Arc<str>>,
    ) -> Result<(), Problem> {
        match self.submit_as(vec![item], actor).await?.pop() {
            Some(Verdict::Accepted) => Ok(()),
            Some(Verdict::Duplicate) => Err(Problem::new(StatusCode::CONFLICT, "already taken")),
            Some(Verdict::Rejected(why)) => {
                Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, why))
            }
            None => Err(Problem::unavailable()),
        }
    }
}

/// Reads a JSON body, naming the path of what is wrong (`vehicle.containers[0]: ...`)
/// instead of answering with axum's plain-text rejection.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    if has_nul_escape(body) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "body: a string holds a NUL character (\\u0000), which is not accepted",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let why = e.into_inner().to_string();
        let detail = if path == "." {
            why
        } else {
            format!("{path}: {why}")
        };
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    })
}

/// Whether JSON text escapes a NUL character (`\u0000` after an even number of backslashes).
/// PostgreSQL cannot store NUL in text, SQLite truncates at it in places, and no field has a
/// use for it: it is refused at the door on both backends alike, never a 500 deeper down.
/// (A raw NUL byte is not valid JSON at all: the parser refuses it.)
fn has_nul_escape(body: &[u8]) -> bool {
    body.windows(6).enumerate().any(|(i, w)| {
        w.eq_ignore_ascii_case(b"\\u0000")
            && body[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
    })
}

/// Refuses a path or query holding an encoded NUL (`%00`), for the reason above.
async fn refuse_nul_in_uri(request: Request, next: axum::middleware::Next) -> Response {
    let uri = request.uri();
    let raw = format!("{}{}", uri.path(), uri.query().unwrap_or_default());
    if raw
        .as_bytes()
        .windows(3)
        .any(|w| w.eq_ignore_ascii_case(b"%00"))
    {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "path: a NUL character (%00) in the path or the query is not accepted",
        )
        .into_response();
    }
    next.run(request).await
}

async fn openapi_json() -> Json<serde_json::Value> {
    Json(openapi::document())
}

/// Liveness: the process answers and its writer runs (it may be reconnecting to the store).
/// A failure here means restart the process.
async fn healthz(State(s): State<AppState>) -> Result<&'static str, Problem> {
    if s.jobs.is_closed() {
        return Err(Problem::unavailable());
    }
    Ok("ok\n")
}

/// Readiness: the store answers a query now. A failure here means send no traffic for now.
async fn readyz(State(s): State<AppState>) -> Result<&'static str, Problem> {
    if !s.store_up.load(Ordering::Relaxed) {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store: unreachable; the service is connecting again",
        ));
    }
    let answered = s.query(|store| store.last_seq()).await?;
    answered.map_err(|e| Problem::new(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")))?;
    Ok("ready\n")
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let queue_depth = s.jobs.max_capacity() - s.jobs.capacity();
    let mut text = s.metrics.render(queue_depth, s.live.receiver_count());
    text.push_str(&s.containers.render());
    if let Ok(sources) = s.extra_metrics.read() {
        for source in sources.iter() {
            text.push_str(&source());
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn put_zone(
    State(s): State<AppState>,
    caller: Option<axum::Extension<auth::Caller>>,
    body: axum::body::Bytes,
) -> Result<StatusCode, Problem> {
    let zone: Zone = parse(&body)?;
    zone.validate().map_err(|(field, why)| {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, format!("{field}: {why}"))
    })?;
    let actor = audit_chain::caller_actor(caller.as_deref());
    s.query(move |store| {
        store.put_zone(&zone)?;
        audit_chain::record(
            store,
            &actor,
            "zone.put",
            format!("zone:{}", zone.id),
            serde_json::json!({}),
        )
    })
    .await?
    .map_err(store_problem)?;
    // New zones change what the supervisor measures against: it is rebuilt with them.
    s.jobs
        .send(Job::Reopen)
        .await
        .map_err(|_| Problem::unavailable())?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_zones(State(s): State<AppState>) -> Result<Json<Vec<Zone>>, Problem> {
    Ok(Json(
        s.query(|store| store.zones())
            .await?
            .map_err(store_problem)?,
    ))
}

async fn declare(
    State(s): State<AppState>,
    caller: Option<axum::Extension<auth::Caller>>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    let transit: Transit = parse(&body)?;
    let id = transit.id.to_string();
    let actor = audit_chain::caller_actor(caller.as_deref());
    s.submit_one_as(Submission::Declare(Box::new(transit)), Some(actor.into()))
        .await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id }))))
}

#[derive(Debug, Deserialize)]
struct ListParams {
    state: Option<String>,
    kind: Option<String>,
    min_grade: Option<u8>,
    transit: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
    /// `csv` for an export of the whole filtered list (export.rs).
    format: Option<String>,
}

fn page(p: &ListParams) -> Result<PageRequest, Problem> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "limit: must be 1 to 1000",
        ));
    }
    Ok(PageRequest {
        after: p.after,
        limit,
    })
}

fn time(field: &str, v: &Option<String>) -> Result<Option<Timestamp>, Problem> {
    v.as_deref()
        .map(|t| {
            t.parse()
                .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, format!("{field}: {e}")))
        })
        .transpose()
}

async fn list_transits(
    State(s): State<AppState>,
    caller: Option<axum::Extension<auth::Caller>>,
    Query(p): Query<ListParams>,
) -> Result<Response, Problem> {
    let state: Option<TransitState> = p
        .state
        .as_deref()
        .map(|v| {
            serde_json::from_value(serde_json::Value::String(v.to_owned())).map_err(|_| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    format!("state: unknown transit state {v:?}"),
                )
            })
        })
        .transpose()?;
    let filter = TransitFilter {
        state,
        declared: TimeRange {
            from: time("from", &p.from)?,
            to: time("to", &p.to)?,
        },
    };
    if export::wants_csv(p.format.as_deref())? {
        let filters = serde_json::json!({"state": p.state, "from": p.from, "to": p.to});
        return export::transits(&s, caller.as_deref(), filter, filters).await;
    }
    let page = page(&p)?;
    let rows = s
        .query(move |store| store.transits(&filter, page))
        .await?
        .map_err(store_problem)?;
    // The page is cut before scoping, so `next_after` goes on where the store stopped: a
    // scoped caller may get short (even empty) pages before its last one.
    let next = rows.last().map(|(n, _)| *n);
    let caller = caller.as_deref();
    let scope = permissions::scope(caller);
    let items: Vec<_> = rows
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| scope.sees_transit(&t.transit))
        .map(|mut t| {
            permissions::redact(&mut t.transit, caller);
            t
        })
        .collect();
    let personal: Vec<&str> = items
        .iter()
        .filter(|t| t.transit.driver.is_some())
        .map(|t| t.transit.id.as_str())
        .collect();
    audit_personal_read(&s, caller, "transits", &personal).await?;
    Ok(Json(serde_json::json!({ "items": items, "next_after": next })).into_response())
}

/// Records that `caller` was shown personal data (the driver) of `transits`, before the answer
/// goes out: reads of personal data are audited (§9.7), and a read that cannot be recorded is
/// not served (503). Nothing is recorded when the answer holds none.
async fn audit_personal_read(
    s: &AppState,
    caller: Option<&auth::Caller>,
    subject: &str,
    transits: &[&str],
) -> Result<(), Problem> {
    if transits.is_empty() {
        return Ok(());
    }
    let actor = audit_chain::caller_actor(caller);
    let subject = subject.to_owned();
    // The ids, not the data; a long page is summarised by its count and first ids.
    let detail = serde_json::json!({
        "fields": ["driver"],
        "count": transits.len(),
        "transits": transits.iter().take(100).collect::<Vec<_>>(),
    });
    s.query(move |store| {
        audit_chain::record(store, &actor, "personal_data.read", subject, detail)
    })
    .await?
    .map_err(|e| {
        tracing::warn!(error = %e, "cannot record a read of personal data");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit: reads of personal data are recorded and the record cannot be written now; try again",
        )
    })
}

async fn get_transit(
    State(s): State<AppState>,
    caller: Option<axum::Extension<auth::Caller>>,
    Path(id): Path<String>,
) -> Result<Json<store::StoredTransit>, Problem> {
    // Whether the caller may see it at all was checked by the middleware (404 if not).
    let mut t = s
        .query(move |store| store.transit(&id))
        .await?
        .map_err(store_problem)?;
    permissions::redact(&mut t.transit, caller.as_deref());
    if t.transit.driver.is_some() {
        let subject = format!("transit:{}", t.transit.id);
        audit_personal_read(&s, caller.as_deref(), &subject, &[t.transit.id.as_str()]).await?;
    }
    Ok(Json(t))
}

async fn transit_events(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<ListParams>,
) -> Result<Json<serde_json::Value>, Problem> {
    let range = TimeRange {
        from: time("from", &p.from)?,
        to: time("to", &p.to)?,
    };
    let page = page(&p)?;
    let rows = s
        .query(move |store| store.events(&id, range, page))
        .await?
        .map_err(store_problem)?;
    let next = rows.last().map(|(n, _)| *n);
    // Each event carries its id: the `after` of the next page.
    let items = rows
        .into_iter()
        .map(|(n, e)| {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("id".into(), n.into());
            }
            v
        })
        .collect::<Vec<_>>();
    Ok(Json(
        serde_json::json!({ "items": items, "next_after": next }),
    ))
}

#[derive(Debug, Deserialize)]
struct ActionBody {
    action: ActionKind,
    #[serde(default)]
    t: Option<Timestamp>,
    #[serde(default)]
    deadline: Option<Timestamp>,
    #[serde(default)]
    device: Option<model::DeviceId>,
    #[serde(default)]
    reason: Option<String>,
}

/// Takes an action on a transit and answers with the transit's state after it: an action the
/// supervisor had no use for (a `release` before `arrive`) is stored but changes nothing, and
/// the caller sees that at once.
async fn act(
    State(s): State<AppState>,
    caller: Option<axum::Extension<auth::Caller>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    let b: ActionBody = parse(&body)?;
    let transit = id
        .parse()
        .map_err(|e: model::IdError| Problem::new(StatusCode::BAD_REQUEST, format!("id: {e}")))?;
    let action = Action {
        t: b.t.unwrap_or_else(|| s.clock.now()),
        transit,
        action: b.action,
        deadline: b.deadline,
        device: b.device,
        reason: b.reason,
    };
    let kind = action.action;
    let actor = audit_chain::caller_actor(caller.as_deref());
    s.submit_one_as(Submission::Action(action), Some(actor.into()))
        .await?;
    let stored = s
        .query(move |store| store.transit(&id))
        .await?
        .map_err(store_problem)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "transit": stored.transit.id,
            "action": kind,
            "state": stored.state,
            "updated_at": stored.updated_at,
        })),
    ))
}

async fn read(State(s): State<AppState>, body: axum::body::Bytes) -> Result<StatusCode, Problem> {
    let read: model::CheckpointRead = parse(&body)?;
    if read.gate.is_some() {
        // A gate seals and opens devices by itself: its read must be the reader's own, signed
        // with its key (readers.rs), never a token's claim that a gate read something.
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "gate: a gate's read comes signed by its reader (POST /api/v1/readers/{}/reads), \
                 not through this route",
                read.reader
            ),
        ));
    }
    s.submit_one(Submission::Read(read)).await?;
    Ok(StatusCode::ACCEPTED)
}

/// One item's result in a batch of observations.
#[derive(Debug, Serialize)]
pub(crate) struct ItemResult {
    index: usize,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn observations(
    State(s): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, Problem> {
    let items: Vec<serde_json::Value> = parse(&body).map_err(|p| Problem {
        detail: format!("expected a JSON array of observations: {}", p.detail),
        ..p
    })?;
    let (accepted, results) = s
        .submit_items(items, |item| {
            serde_json::from_value::<model::Observation>(item)
                .map(Submission::Observation)
                .map_err(|e| e.to_string())
        })
        .await?;
    Ok(Json(
        serde_json::json!({ "accepted": accepted, "results": results }),
    ))
}

impl AppState {
    /// Submits a batch whose items are read one by one (`read` names what is wrong with an
    /// item): one bad item is reported, the others are taken. Returns how many were accepted
    /// and a result per item, in the order of the batch.
    pub(crate) async fn submit_items(
        &self,
        items: Vec<serde_json::Value>,
        read: impl Fn(serde_json::Value) -> Result<Submission, String>,
    ) -> Result<(usize, Vec<ItemResult>), Problem> {
        let mut rejected = Vec::new();
        let mut indices = Vec::new();
        let mut subs = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            match read(item) {
                Ok(sub) => {
                    indices.push(index);
                    subs.push(sub);
                }
                Err(why) => rejected.push((index, why)),
            }
        }
        let verdicts = if subs.is_empty() {
            Vec::new()
        } else {
            self.submit(subs).await?
        };
        Ok(item_results(indices, verdicts, rejected))
    }
}

/// Each item's result in a batch, in the order of the batch: the submitted ones (`indices`)
/// with their verdicts, the ones refused before submission with why. Returns how many were
/// accepted and the results.
fn item_results(
    indices: Vec<usize>,
    verdicts: Vec<Verdict>,
    rejected: Vec<(usize, String)>,
) -> (usize, Vec<ItemResult>) {
    let mut results: Vec<ItemResult> = indices
        .into_iter()
        .zip(verdicts)
        .map(|(index, v)| match v {
            Verdict::Accepted => ItemResult {
                index,
                status: "accepted",
                error: None,
            },
            Verdict::Duplicate => ItemResult {
                index,
                status: "duplicate",
                error: None,
            },
            Verdict::Rejected(why) => ItemResult {
                index,
                status: "rejected",
                error: Some(why),
            },
        })
        .chain(rejected.into_iter().map(|(index, why)| ItemResult {
            index,
            status: "rejected",
            error: Some(why),
        }))
        .collect();
    results.sort_by_key(|r| r.index);
    let accepted = results.iter().filter(|r| r.status == "accepted").count();
    (accepted, results)
}

async fn list_alarms(
    State(s): State<AppState>,
    caller: Option<axum::Extension<auth::Caller>>,
    Query(p): Query<ListParams>,
) -> Result<Response, Problem> {
    let kind = p
        .kind
        .as_deref()
        .map(|k| {
            AlarmKind::ALL
                .into_iter()
                .find(|x| x.as_str() == k)
                .ok_or_else(|| {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        format!("kind: unknown alarm kind {k:?}"),
                    )
                })
        })
        .transpose()?;
    if let Some(state) = &p.state
        && !["open", "acknowledged", "dispatched", "resolved", "closed"].contains(&state.as_str())
    {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("state: unknown alarm state {state:?}"),
        ));
    }
    let filter = AlarmFilter {
        state: p.state.clone(),
        kind,
        min_grade: p.min_grade,
        transit: p.transit.clone(),
        range: TimeRange {
            from: time("from", &p.from)?,
            to: time("to", &p.to)?,
        },
    };
    if export::wants_csv(p.format.as_deref())? {
        let filters = serde_json::json!({
            "state": p.state, "kind": p.kind, "min_grade": p.min_grade,
            "transit": p.transit, "from": p.from, "to": p.to,
        });
        return export::alarms(&s, caller.as_deref(), filter, filters).await;
    }
    let page = page(&p)?;
    let scope = permissions::scope(caller.as_deref());
    // Scoped after the page is cut: `next_after` is where the store stopped (see transits).
    let (items, next) = s
        .query(move |store| {
            let items = store.alarms(&filter, page)?;
            let next = items.last().map(|a| a.id);
            Ok((scope.filter_alarms(store, items)?, next))
        })
        .await?
        .map_err(store_problem)?;
    Ok(Json(serde_json::json!({ "items": items, "next_after": next })).into_response())
}

async fn get_alarm(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<store::AlarmRecord>, Problem> {
    Ok(Json(
        s.query(move |store| store.alarm(id))
            .await?
            .map_err(store_problem)?,
    ))
}

#[derive(Debug, Deserialize)]
struct StepBody {
    actor: String,
    #[serde(default)]
    note: Option<String>,
    /// For a dispatch: the patrol it goes to (the patrol unit's organisation, or a patrol's
    /// user name); that patrol then sees the alarm.
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    outcome: Option<Outcome>,
}

/// Who a handling step is recorded for: the name given, and the token it came with, so that
/// the history says which credential acted whatever name was typed.
fn actor_of(actor: &str, caller: Option<&auth::Caller>) -> String {
    match caller {
        Some(auth::Caller {
            user: Some(u),
            role,
            ..
        }) => format!("{} (user {}, {role})", actor.trim(), u.username),
        Some(c) => format!("{} (token {}, {})", actor.trim(), c.token_id, c.role),
        None => actor.trim().to_owned(),
    }
}

async fn handle_alarm(
    State(s): State<AppState>,
    caller: Option<axum::Extension<auth::Caller>>,
    Path((id, step)): Path<(i64, String)>,
    body: axum::body::Bytes,
) -> Result<Json<store::AlarmRecord>, Problem> {
    let b: StepBody = parse(&body)?;
    if b.actor.trim().is_empty() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "actor: must not be empty",
        ));
    }
    let step = match (step.as_str(), b.outcome) {
        ("acknowledge", _) => AlarmStep::Acknowledge,
        ("dispatch", _) => AlarmStep::Dispatch,
        ("report", _) if b.note.as_deref().is_none_or(|n| n.trim().is_empty()) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "note: a report needs its comments (photos go to /attachments)",
            ));
        }
        ("report", _) => AlarmStep::Report,
        ("resolve", Some(o)) => AlarmStep::Resolve(o),
        ("resolve", None) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "outcome: required (confirmed_violation, false_alarm, technical_fault, authorised)",
            ));
        }
        ("close", _) => AlarmStep::Close,
        (other, _) => {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                format!("step: no step {other:?}"),
            ));
        }
    };
    // A patrol reports from the scene and resolves; acknowledging, dispatching and closing
    // are the centre's.
    if caller
        .as_deref()
        .is_some_and(|c| c.role == model::Role::Patrol)
        && !matches!(step, AlarmStep::Report | AlarmStep::Resolve(_))
    {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "permission: the role patrol may only report and resolve an alarm dispatched to it",
        ));
    }
    let note = match (&step, b.to.as_deref().map(str::trim)) {
        (AlarmStep::Dispatch, Some(to)) if !to.is_empty() => {
            Some(permissions::dispatch_note(to, b.note.as_deref()))
        }
        (_, Some(_)) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "to: only a dispatch goes to a patrol, and it must not be empty",
            ));
        }
        _ => b.note,
    };
    let now = s.clock.now();
    let actor = actor_of(&b.actor, caller.as_deref());
    let record = s
        .query_then_publish(move |store| store.handle_alarm(id, step, &actor, now, note.as_deref()))
        .await?
        .map_err(store_problem)?;
    Ok(Json(record))
}

/// What may be attached, by the first bytes every such file starts with: a declared type
/// the bytes do not bear out is refused, so nothing else hides behind an image's name.
const ATTACHMENT_TYPES: &[(&str, &[&[u8]])] = &[
    ("image/jpeg", &[b"\xff\xd8\xff"]),
    ("image/png", &[b"\x89PNG\r\n\x1a\n"]),
    ("image/webp", &[b"RIFF"]), // and `WEBP` at byte 8: checked below
    ("application/pdf", &[b"%PDF-"]),
];

#[derive(Debug, Deserialize)]
struct AttachParams {
    name: String,
    actor: String,
}

/// Checks an attachment's name: a label, never a path.
fn attachment_name(name: &str) -> Result<&str, Problem> {
    let ok = (1..=100).contains(&name.len())
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ' '));
    if ok {
        Ok(name)
    } else {
        Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "name: 1 to 100 letters, digits, '.', '_', '-' or spaces, not starting with '.' (a label, not a path)",
        ))
    }
}

/// Attaches a photo or document to an alarm (a patrol's report from the scene).
async fn attach(
    State(s): State<AppState>,
    caller: Option<axum::Extension<auth::Caller>>,
    Path(id): Path<i64>,
    Query(p): Query<AttachParams>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<store::Attachment>), Problem> {
    let name = attachment_name(&p.name)?.to_owned();
    if p.actor.trim().is_empty() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "actor: must not be empty",
        ));
    }
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let Some((content_type, magics)) = ATTACHMENT_TYPES.iter().find(|(t, _)| *t == declared) else {
        let known: Vec<&str> = ATTACHMENT_TYPES.iter().map(|(t, _)| *t).collect();
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content-type: {declared:?} is not taken; one of {}",
                known.join(", ")
            ),
        ));
    };
    let webp_ok = *content_type != "image/webp" || body.get(8..12) == Some(b"WEBP".as_slice());
    if body.is_empty() || !magics.iter().any(|m| body.starts_with(m)) || !webp_ok {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("body: not a {content_type} file"),
        ));
    }
    use sha2::Digest;
    let sha256: String = sha2::Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let meta = store::Attachment {
        id: 0,
        alarm: id,
        at: s.clock.now(),
        actor: actor_of(&p.actor, caller.as_deref()),
        name,
        content_type: (*content_type).to_owned(),
        sha256,
        size_bytes: body.len() as u64,
    };
    let stored = s
        .query_then_publish(move |store| store.add_attachment(&meta, &body))
        .await?
        .map_err(store_problem)?;
    Ok((StatusCode::CREATED, Json(stored)))
}

async fn list_attachments(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<store::Attachment>>, Problem> {
    Ok(Json(
        s.query(move |store| store.attachments(id))
            .await?
            .map_err(store_problem)?,
    ))
}

async fn get_attachment(
    State(s): State<AppState>,
    Path((id, n)): Path<(i64, i64)>,
) -> Result<Response, Problem> {
    let (meta, bytes) = s
        .query(move |store| store.attachment(id, n))
        .await?
        .map_err(store_problem)?;
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&meta.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    // Downloaded, never rendered in the console's origin; the name is checked on upload.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", meta.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(r)
}

/// An item of a live stream, or the service stopping (which ends the stream).
enum Live {
    /// An item of the feed, turned into an event when sent (after the caller's scope).
    Item(Arc<store::FeedItem>),
    Event(SseEvent),
    /// The last item: the stream ends after it (the client reconnects to go on).
    Last(SseEvent),
    Stop,
}

#[derive(Clone, Debug, Deserialize)]
struct StreamParams {
    /// `alarms` (alarms and their handling) or `events`; everything when absent.
    only: Option<String>,
    transit: Option<String>,
    /// Resume after this feed id, for clients that cannot send `Last-Event-ID`.
    after: Option<i64>,
}

impl StreamParams {
    fn wants(&self, item: &store::FeedItem) -> bool {
        let only = match self.only.as_deref() {
            None => true,
            Some("alarms") | Some("alarm") => item.kind.starts_with("alarm"),
            Some("events") | Some("event") => item.kind == "event",
            Some(_) => false,
        };
        only && self.transit.as_deref().is_none_or(|t| t == item.transit)
    }
}

fn sse_event(item: &store::FeedItem) -> SseEvent {
    SseEvent::default()
        .id(item.id.to_string())
        .event(item.kind.as_str())
        .data(item.data.to_string())
}

/// How many items a resuming client is sent from the store before the live stream takes over;
/// one further behind is told so (a `lagged` event) and should reload its lists.
const RESUME_MAX: usize = 50_000;

/// The live stream (SSE). Each item's id is its place in the durable feed: a client that
/// reconnects with `Last-Event-ID` (browsers do it by themselves) gets what it missed from the
/// store, then the live items, without a gap or a repeat, across restarts of the service.
async fn stream(
    State(s): State<AppState>,
    caller: Option<axum::Extension<auth::Caller>>,
    headers: axum::http::HeaderMap,
    Query(p): Query<StreamParams>,
) -> Result<Sse<impl tokio_stream::Stream<Item = Result<SseEvent, Infallible>>>, Problem> {
    if let Some(only) = &p.only
        && !["alarms", "alarm", "events", "event"].contains(&only.as_str())
    {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("only: expected alarms or events, got {only:?}"),
        ));
    }
    let resume = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    Problem::new(
                        StatusCode::BAD_REQUEST,
                        "Last-Event-ID: expected the id of a stream item (a number)",
                    )
                })?,
        ),
        None => p.after,
    };
    // Subscribed before reading the backlog, so nothing committed in between is missed; the
    // overlap is skipped by id.
    let rx = s.live.subscribe();
    let mut backlog = Vec::new();
    // What the live stream repeats of the backlog is dropped by id.
    let mut sent_up_to = 0;
    if let Some(mut after) = resume {
        let newest = s
            .query(|store| store.last_feed_id())
            .await?
            .map_err(store_problem)?;
        if after > newest {
            // An id this feed never gave (a restored or replaced database): the client's place
            // is unknown. It is told so, and goes on from now.
            backlog.push(Live::Event(
                SseEvent::default()
                    .event("reset")
                    .data(format!("{{\"last_event_id\":{after},\"newest\":{newest}}}")),
            ));
            after = newest;
        }
        let mut scanned = 0;
        loop {
            let page = s
                .query(move |store| store.feed_after(after, 5_000))
                .await?
                .map_err(store_problem)?;
            let Some(last) = page.last() else { break };
            after = last.id;
            scanned += page.len();
            backlog.extend(
                page.into_iter()
                    .filter(|i| p.wants(i))
                    .map(|i| Live::Item(Arc::new(i))),
            );
            if scanned >= RESUME_MAX {
                // Far behind: this much now, then the stream ends, and the client (a browser
                // does it by itself) reconnects from the id of the last item below.
                backlog.push(Live::Last(
                    SseEvent::default()
                        .id(after.to_string())
                        .event("resume")
                        .data("{\"more\":true}"),
                ));
                break;
            }
        }
        sent_up_to = after;
    }
    let live = live_items(rx, p, sent_up_to);
    let scope = permissions::scope(caller.as_deref());
    let stopping = s.stopping.clone();
    if scope.is_all() {
        let all: LiveItems = Box::pin(tokio_stream::iter(backlog).chain(live));
        return Ok(finish(stopping, all));
    }
    // A scoped caller gets only the items of what it sees: each is checked before it is sent
    // (control items, which carry no data of a transit, pass).
    let filter = Arc::new(permissions::StreamFilter::new(scope));
    let scoped = tokio_stream::iter(backlog)
        .chain(live)
        .then(move |item| {
            let filter = filter.clone();
            let s = s.clone();
            async move {
                match item {
                    Live::Item(feed) => filter.passes(&s, &feed).await.then_some(Live::Item(feed)),
                    other => Some(other),
                }
            }
        })
        .filter_map(|x| x);
    let scoped: LiveItems = Box::pin(scoped);
    Ok(finish(stopping, scoped))
}

/// The items of a stream, whatever filters they went through.
type LiveItems = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Live> + Send>>;

/// The live items after `sent_up_to`, filtered for the client.
fn live_items(
    rx: broadcast::Receiver<Published>,
    p: StreamParams,
    sent_up_to: i64,
) -> impl tokio_stream::Stream<Item = Live> {
    BroadcastStream::new(rx).filter_map(move |msg| match msg {
        Ok(msg) => (msg.item.id > sent_up_to && p.wants(&msg.item)).then(|| Live::Item(msg.item)),
        // A client too slow for the live stream would miss items: it is told, and the stream
        // ends, so that it reconnects from the last id it has and gets them from the store.
        Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
            Some(Live::Last(
                SseEvent::default()
                    .event("lagged")
                    .data(format!("{{\"missed\":{n}}}")),
            ))
        }
    })
}

/// Ends the stream when the service stops, and keeps idle connections alive.
fn finish(
    stopping: watch::Receiver<bool>,
    items: impl tokio_stream::Stream<Item = Live> + Send + 'static,
) -> Sse<impl tokio_stream::Stream<Item = Result<SseEvent, Infallible>>> {
    let stop = WatchStream::new(stopping).filter_map(|stopping| stopping.then_some(Live::Stop));
    let mut ended = false;
    let stream = items.merge(stop).map_while(move |item| {
        if ended {
            return None;
        }
        match item {
            Live::Item(i) => Some(Ok(sse_event(&i))),
            Live::Event(e) => Some(Ok(e)),
            Live::Last(e) => {
                ended = true;
                Some(Ok(e))
            }
            Live::Stop => None,
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod nul_tests {
    use super::has_nul_escape;

    #[test]
    fn a_nul_escape_is_found_and_an_escaped_backslash_is_not_one() {
        assert!(has_nul_escape(br#"{"a": "x\u0000y"}"#));
        assert!(has_nul_escape(br#"{"a": "\U0000"}"#));
        assert!(has_nul_escape(br#"{"a": "\\\u0000"}"#));
        assert!(!has_nul_escape(br#"{"a": "\\u0000"}"#));
        assert!(!has_nul_escape(br#"{"a": "u0000"}"#));
        assert!(!has_nul_escape(b""));
    }
}
