//! The device gateways: e-locks and trackers connect over TCP, and what they report takes the
//! service's one ingest path ([`server::Ingest`]). This page describes the JT/T 808 gateway;
//! the native-protocol gateway is in [`native`].
//!
//! [`Gateway::start`] listens; every connection gets its own task with a [`jt808::Deframer`]
//! (conn.rs). The protocol is the codec's; this crate owns the sockets, the limits and the
//! order of things:
//!
//! - **Registration** (0x0100) is answered (0x8100) with a fresh random auth code when the
//!   terminal's phone number is a device in the registry (`store.device`), and with "no such
//!   terminal" otherwise. The store keeps only the code's SHA-256 (`put_device_auth`); a new
//!   registration replaces the code.
//! - **Authentication** (0x0102) checks the code. Until a connection has authenticated, and for
//!   any phone number other than the one it authenticated as, everything but registration and
//!   authentication is refused (0x8001 failure) and counted; after
//!   [`Config::max_auth_failures`] refusals the connection is closed.
//! - **Reports** (0x0200, 0x0201, 0x0704, Jointech 0x5501/0x5502) become observations
//!   ([`jt808::observations`], with the device model's [`jt808::Options`]) and are submitted
//!   together, per chunk read from the socket. The answer (0x8001, or 0x4401 when a Jointech
//!   lock asks for it) is sent **only once [`server::Ingest::submit`] has returned**, that is
//!   once what it accepted is committed. A report the pipeline refuses (unknown device, no
//!   transit, dated in the future) is answered with a failure and logged with the reason; when
//!   the submission itself fails (the store is down, the service is stopping) nothing is
//!   answered and the device sends the report again.
//! - **Heartbeats** (0x0002) are answered with success; plain-text command results are logged
//!   and kept in the device log (`add_device_log`) as they came.
//! - **Remote commands** queued through the API (`store.pending_commands`) are sent when the
//!   device authenticates and whenever [`server::Ingest::commands_queued`] names it, as the
//!   frames its model's [`CommandSet`] says (vendors' lock commands differ: the defaults are
//!   placeholders), and marked sent once written. The device's general response (0x0001) to a
//!   command's serial makes it done or failed; a text result is recorded against the latest
//!   command sent on the connection.
//! - **Bad check codes** are counted and logged and the frame dropped; the connection stays.
//!   Device models known to compute them wrongly are listed in
//!   [`Config::accept_bad_check_code_models`] (matched against the registry's `model`).
//!
//! Limits: [`Config::max_connections`] (further connections are closed at once),
//! [`Config::idle_timeout`] (no byte for that long closes a connection: slow senders are fine,
//! silent or vanished ones are released; and a connection must authenticate within that time
//! of connecting, so a peer trickling bytes without authenticating does not keep its slot), [`Config::max_frames_per_s`] per connection (a
//! token bucket; beyond it the gateway stops reading, so TCP pushes back on the device and
//! nothing is lost), and [`Config::max_unframed_bytes`] (a peer sending that much without a
//! single good frame is closed). A connection's memory is bounded by its read buffer, the
//! deframer's longest frame and one chunk's frames.
//!
//! **Invariant**: a report is acknowledged only once it is durable. What the device is told is
//! what the store holds.
//!
//! Stopping ([`Gateway::stop`], or the service stopping: [`server::Ingest::stopping`]) stops
//! accepting, lets every connection finish the chunk it is working on (a submission in flight
//! is answered), then closes them.

mod commands;
mod conn;
pub mod mqtt;
pub mod native;

pub use commands::{CommandSet, Wire};
pub use mqtt::{MqttClient, MqttConfig, MqttStats};
pub use native::{NativeConfig, NativeGateway, NativeStats, load_or_create_platform_keys};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How the gateway listens and what it tolerates.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// A connection from which no byte arrives for this long is closed, and so is one that
    /// has not authenticated this long after connecting. Set it above the devices' heartbeat
    /// interval (JT/T 808 parameter 0x0001).
    pub idle_timeout: Duration,
    /// Frames (and text results) read per second per connection, with bursts of as many;
    /// beyond it the gateway reads more slowly. 0 means no limit.
    pub max_frames_per_s: u32,
    /// Refused messages (failed authentications, reports before authenticating) after which
    /// a connection is closed.
    pub max_auth_failures: u32,
    /// Device models (as in the registry's `model`, compared without case) whose check codes
    /// are known to be wrong: their frames are decoded all the same.
    pub accept_bad_check_code_models: Vec<String>,
    /// Bytes a connection may send without a single good frame before it is closed (a flood).
    pub max_unframed_bytes: usize,
    /// How remote commands go on the wire for each device model (as in the registry's
    /// `model`, compared without case); models not listed use [`Config::default_commands`].
    pub command_sets: Vec<(String, CommandSet)>,
    /// The command set of models not in `command_sets` (placeholders but for
    /// `set_interval`: see [`CommandSet`]).
    pub default_commands: CommandSet,
}

impl Config {
    /// The defaults, listening on `listen`.
    pub fn new(listen: SocketAddr) -> Config {
        Config {
            listen,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(300),
            max_frames_per_s: 50,
            max_auth_failures: 3,
            accept_bad_check_code_models: Vec::new(),
            max_unframed_bytes: 64 * 1024,
            command_sets: Vec::new(),
            default_commands: CommandSet::default(),
        }
    }

    /// The command set of `model`.
    pub fn commands_for(&self, model: Option<&str>) -> &CommandSet {
        model
            .map(str::trim)
            .and_then(|model| {
                self.command_sets
                    .iter()
                    .find(|(m, _)| m.trim().eq_ignore_ascii_case(model))
            })
            .map_or(&self.default_commands, |(_, set)| set)
    }

    /// Whether frames of `model` are decoded despite a bad check code.
    pub fn accepts_bad_check_code(&self, model: &str) -> bool {
        let model = model.trim();
        self.accept_bad_check_code_models
            .iter()
            .any(|m| m.trim().eq_ignore_ascii_case(model))
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}

macro_rules! stats {
    ($($(#[doc = $doc:expr])+ $name:ident,)+) => {
        /// What the gateway has seen since it started (counters, and one gauge:
        /// `connections_open`).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct GatewayStats {
            $($(#[doc = $doc])+ pub $name: u64,)+
        }

        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)+
        }

        impl Counters {
            fn snapshot(&self) -> GatewayStats {
                GatewayStats {
                    $($name: self.$name.load(Ordering::Relaxed),)+
                }
            }
        }

        impl GatewayStats {
            /// Every counter by name.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)+]
            }
        }
    };
}

/// Gateway counters in the Prometheus text format, as `sealwatch_gateway_<name>` with a
/// `protocol` label (`connections_open` is a gauge, the rest counters).
pub fn prometheus(protocol: &str, fields: &[(&'static str, u64)]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (name, value) in fields {
        let kind = if *name == "connections_open" {
            "gauge"
        } else {
            "counter"
        };
        let metric = if kind == "counter" {
            format!("sealwatch_gateway_{name}_total")
        } else {
            format!("sealwatch_gateway_{name}")
        };
        let _ = writeln!(
            out,
            "# TYPE {metric} {kind}\n{metric}{{protocol=\"{protocol}\"}} {value}"
        );
    }
    out
}

stats! {
    /// Connections accepted and served.
    connections_accepted,
    /// Connections being served now.
    connections_open,
    /// Connections closed at once because `max_connections` were open.
    connections_refused,
    /// Connections closed after `idle_timeout` without a byte.
    closed_idle,
    /// Connections closed for not authenticating within `idle_timeout` of connecting.
    closed_unauthenticated,
    /// Connections closed after `max_unframed_bytes` without a good frame.
    closed_flood,
    /// Connections closed after `max_auth_failures` refusals.
    closed_auth_failures,
    /// Frames decoded.
    frames,
    /// Frames dropped for a bad check code.
    bad_check_codes,
    /// Frames dropped for any other reason (too short, too long, bad escape, a body that
    /// does not decode).
    malformed_frames,
    /// Bytes outside any frame, skipped.
    garbage_bytes,
    /// Frames and texts read later than they came, to keep to `max_frames_per_s`.
    throttled,
    /// Plain-text command results received.
    text_results,
    /// Registrations answered with an auth code.
    registrations,
    /// Registrations refused (not in the device registry).
    registrations_refused,
    /// Authentications that succeeded.
    authentications,
    /// Messages refused for want of authentication (wrong code, or not authenticated).
    auth_failures,
    /// Observations the pipeline accepted (committed).
    observations_accepted,
    /// Observations the pipeline had already taken.
    observations_duplicate,
    /// Observations the pipeline refused (answered with a failure).
    observations_rejected,
    /// Report frames left unanswered because their submission failed (nothing stored).
    submit_failures,
    /// Remote commands sent to devices.
    commands_sent,
    /// Remote commands refused (no wire form for the device's model).
    commands_refused,
    /// Devices' answers to commands (0x0001) recorded.
    command_answers,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// How long stopping waits for connections to finish what they are doing.
const STOP_GRACE: Duration = Duration::from_secs(5);

impl Gateway {
    /// Binds `config.listen` and serves connections into `ingest` until stopped, or until the
    /// service stops.
    pub async fn start(config: Config, ingest: server::Ingest) -> Result<Gateway, Error> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::Listen(config.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Listen(config.listen, e))?;
        tracing::info!(%addr, max_connections = config.max_connections, "JT/T 808 gateway listening");
        let counters = Arc::new(Counters::default());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::new(config),
            ingest,
            counters.clone(),
            stop_rx,
        ));
        Ok(Gateway {
            addr,
            counters,
            stop,
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters in the Prometheus text format, readable after the gateway handle moved
    /// (for the service's `/metrics`).
    pub fn metrics_source(&self) -> impl Fn() -> String + Send + Sync + 'static {
        let counters = self.counters.clone();
        move || prometheus("jt808", &counters.snapshot().fields())
    }

    pub fn stats(&self) -> GatewayStats {
        self.counters.snapshot()
    }

    /// Stops accepting, lets connections finish the chunk they are on (answering what was
    /// committed), closes them, and waits.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Resolves when `rx` turns true, or when its sender is gone.
async fn turned_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

async fn accept_loop(
    listener: TcpListener,
    config: Arc<Config>,
    ingest: server::Ingest,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
) {
    let service_stopping = ingest.stopping();
    let counted = {
        let counters = counters.clone();
        move |accepted: bool| {
            let c = if accepted {
                &counters.connections_accepted
            } else {
                &counters.connections_refused
            };
            Counters::add(c, 1);
        }
    };
    serve(
        "JT/T 808",
        listener,
        config.max_connections,
        (stop, service_stopping),
        counted,
        |stream, peer, closing, permit| {
            conn::run(
                stream,
                peer,
                config.clone(),
                ingest.clone(),
                counters.clone(),
                closing,
                permit,
            )
        },
    )
    .await;
}

/// Accepts connections until the gateway (`stop`) or the service stops, at most
/// `max_connections` at once (one more is closed at once, and `counted(false)`); then tells
/// every connection to close and gives them `STOP_GRACE` to finish what they started. Both
/// gateways serve this way; `connection` is what runs one.
pub(crate) async fn serve<F>(
    name: &'static str,
    listener: TcpListener,
    max_connections: usize,
    (mut stop, mut service_stopping): (watch::Receiver<bool>, watch::Receiver<bool>),
    counted: impl Fn(bool),
    mut connection: impl FnMut(
        tokio::net::TcpStream,
        SocketAddr,
        watch::Receiver<bool>,
        tokio::sync::OwnedSemaphorePermit,
    ) -> F,
) where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (close, closing) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(max_connections.max(1)));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = turned_true(&mut stop) => break,
            _ = turned_true(&mut service_stopping) => {
                tracing::info!("the service is stopping; the {name} gateway closes its connections");
                break;
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        counted(false);
                        tracing::debug!(gateway = name, %peer, "connection refused: max_connections reached");
                        drop(stream);
                        continue;
                    };
                    counted(true);
                    conns.spawn(connection(stream, peer, closing.clone(), permit));
                }
                Err(e) => {
                    // Out of file descriptors, most likely: let connections close.
                    tracing::warn!(gateway = name, error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = close.send(true);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(STOP_GRACE, drain).await.is_err() {
        tracing::warn!(
            gateway = name,
            left = conns.len(),
            "connections still busy after the grace period; closing them"
        );
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
    tracing::info!("{name} gateway stopped");
}

#[cfg(test)]
mod metrics_tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_text() {
        let stats = GatewayStats {
            connections_accepted: 7,
            connections_open: 2,
            ..GatewayStats::default()
        };
        let text = prometheus("jt808", &stats.fields());
        assert!(text.contains("# TYPE sealwatch_gateway_connections_accepted_total counter\nsealwatch_gateway_connections_accepted_total{protocol=\"jt808\"} 7\n"), "{text}");
        assert!(text.contains("# TYPE sealwatch_gateway_connections_open gauge\nsealwatch_gateway_connections_open{protocol=\"jt808\"} 2\n"), "{text}");
    }
}
