//! The native-protocol gateway (docs/protocol.md): devices connect over TCP and speak
//! [`sealproto`]; what they report takes the same ingest path as everything else.
//!
//! Per connection, one [`sealproto::Session`]:
//!
//! - On the device's **hello**, its public keys are looked up in the store
//!   (`store.device_keys`, provisioned with `PUT /api/v1/devices/{id}/keys`). A device with no
//!   keys, or with revoked keys, is refused: the connection is closed without an answer. The
//!   welcome uses fresh randomness from the operating system (`getrandom`).
//! - **Reports** become observations and are submitted through [`server::Ingest::submit`],
//!   everything read from one chunk together. A report batch record (several reports in one
//!   record) is delivered whole by the session when its last byte arrives, so its reports
//!   always go in one submission, and one acknowledgement covers them. The cumulative
//!   acknowledgement is sent **only once the submission has returned**, that is once what it
//!   accepted is committed. A report
//!   the pipeline refuses (no transit, dated in the future) is logged with the reason and
//!   acknowledged all the same: the refusal is final and the device would only send it again.
//!   When a submission fails (the store is down) the connection is closed without an
//!   acknowledgement, so that a later acknowledgement, being cumulative, cannot cover reports
//!   that were not stored: the device connects again and resends them.
//! - **Evidence** (seal, unseal and tamper reports, signed by the device and verified by the
//!   session, each report of a batch on its own) is kept in the device log (`add_device_log`,
//!   source `native`, kind `evidence`, the record's JSON as text, payload and signature in
//!   hex), one entry per report, before the acknowledgement.
//! - **Remote commands** (queued through `POST /api/v1/devices/{id}/commands`) go out once the
//!   session is established (the device's first record authenticated): every command of the
//!   device with no answer yet, queued or sent on an earlier connection, oldest first, under
//!   its store id as the protocol's command id; and at once when one is queued while the
//!   device is connected ([`server::Ingest::commands_queued`]). A command sent again is
//!   answered by the device without being executed again (it remembers the ids it executed),
//!   so a command sent just before a connection broke is not lost. The device's **command
//!   result** makes the command done or failed, with the result as text; a result for a
//!   command that is not this device's, or already answered, changes nothing. The store calls
//!   and their order are the JT/T 808 gateway's (`crate::commands`).
//! - **Keys** are read again every [`NativeConfig::key_check_interval`] while a session lives:
//!   a device whose keys were revoked or rotated since its hello is disconnected then, so a
//!   live session outlasts a revocation or rotation by at most that long.
//!
//! Limits: [`NativeConfig::max_connections`], [`NativeConfig::idle_timeout`] (no byte for that
//! long closes a connection, and a device must complete the handshake within that time),
//! [`NativeConfig::max_unframed_bytes`] (that many bytes without a single good frame close the
//! connection) and [`NativeConfig::max_errors`] (forged, replayed or unreadable records after
//! the handshake). Errors during the handshake close the connection at once (the session does).
//!
//! **Invariant**: a report is acknowledged only once it is durable.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use model::{DeviceId, Observation};
use sealproto::{
    AgreementKey, Entropy, EvidenceRecord, PlatformKeys, PublicKeys, Received, Session,
    VerifyingKey,
};
use server::{Ingest, IngestError, Submission, Verdict};
use store::{CommandKind, CommandState, DeviceCommand, DeviceKeysRecord, DeviceLogEntry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, broadcast, watch};

use crate::commands::{self, AnswerOf, Which};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 4096;

/// How the native gateway listens and what it tolerates.
#[derive(Clone, Debug)]
pub struct NativeConfig {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The platform's secret keys; devices are provisioned with their public halves.
    pub platform_keys: PlatformKeys,
    /// Connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// A connection from which no byte arrives for this long is closed, and so is one that has
    /// not completed the handshake this long after connecting.
    pub idle_timeout: Duration,
    /// Bytes a connection may send without a single good frame before it is closed.
    pub max_unframed_bytes: usize,
    /// Records refused after the handshake (forged, replayed, unreadable) before the
    /// connection is closed.
    pub max_errors: u32,
    /// How often an established session reads its device's keys again; keys revoked or
    /// rotated since the hello end the session at the next check.
    pub key_check_interval: Duration,
}

impl NativeConfig {
    /// The defaults, listening on `listen` with `platform_keys`.
    pub fn new(listen: SocketAddr, platform_keys: PlatformKeys) -> NativeConfig {
        NativeConfig {
            listen,
            platform_keys,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(300),
            max_unframed_bytes: 64 * 1024,
            max_errors: 16,
            key_check_interval: Duration::from_secs(60),
        }
    }
}

/// Why a platform key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("platform key file {0}: {1}")]
    Io(String, std::io::Error),
    #[error(
        "platform key file {0}: expected the hex of two 32-byte secrets (signing, then agreement; 128 hex digits)"
    )]
    Format(String),
    #[error("no randomness from the system for a new platform key: {0}")]
    Random(String),
}

/// Reads the platform's secret keys from `path`: the hex of the Ed25519 signing secret and
/// then the X25519 agreement secret (128 hex digits; whitespace ignored). When the file does
/// not exist, new secrets are generated and written there, readable by the owner only
/// (0600). Returns the keys and whether they were created.
pub fn load_or_create_platform_keys(path: &Path) -> Result<(PlatformKeys, bool), KeyFileError> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = sealproto::from_hex(text.trim())
                .filter(|b| b.len() == 64)
                .ok_or_else(|| KeyFileError::Format(name.clone()))?;
            let mut signing = [0u8; 32];
            let mut agreement = [0u8; 32];
            signing.copy_from_slice(&bytes[..32]);
            agreement.copy_from_slice(&bytes[32..]);
            Ok((PlatformKeys::from_secrets(signing, agreement), false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secrets = [0u8; 64];
            getrandom::fill(&mut secrets).map_err(|e| KeyFileError::Random(e.to_string()))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| KeyFileError::Io(name.clone(), e))?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options
                .open(path)
                .map_err(|e| KeyFileError::Io(name.clone(), e))?;
            use std::io::Write;
            writeln!(file, "{}", sealproto::to_hex(&secrets))
                .and_then(|()| file.sync_all())
                .map_err(|e| KeyFileError::Io(name.clone(), e))?;
            let mut signing = [0u8; 32];
            let mut agreement = [0u8; 32];
            signing.copy_from_slice(&secrets[..32]);
            agreement.copy_from_slice(&secrets[32..]);
            Ok((PlatformKeys::from_secrets(signing, agreement), true))
        }
        Err(e) => Err(KeyFileError::Io(name, e)),
    }
}

/// What the native gateway has seen since it started (counters, and one gauge:
/// `connections_open`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NativeStats {
    /// Connections accepted and served.
    pub connections_accepted: u64,
    /// Connections being served now.
    pub connections_open: u64,
    /// Connections closed at once because `max_connections` were open.
    pub connections_refused: u64,
    /// Connections closed after `idle_timeout` without a byte, or without a handshake.
    pub closed_idle: u64,
    /// Connections closed after `max_unframed_bytes` without a good frame.
    pub closed_flood: u64,
    /// Connections closed after `max_errors` refused records.
    pub closed_errors: u64,
    /// Hellos answered with a welcome.
    pub handshakes: u64,
    /// Sessions whose device proved itself with its first record.
    pub established: u64,
    /// Hellos refused: no keys provisioned for the device.
    pub refused_unknown: u64,
    /// Hellos refused: the device's keys are revoked.
    pub refused_revoked: u64,
    /// Frames skipped (not a frame, bad CRC, unknown version or kind, too long).
    pub frame_errors: u64,
    /// Records that failed authentication.
    pub forged: u64,
    /// Records replayed or reordered.
    pub replays: u64,
    /// Any other protocol error (bad hello, bad signature, unreadable message, ...).
    pub protocol_errors: u64,
    /// Observations the pipeline accepted (committed).
    pub observations_accepted: u64,
    /// Observations the pipeline had already taken.
    pub observations_duplicate: u64,
    /// Observations the pipeline refused.
    pub observations_rejected: u64,
    /// Evidence records kept.
    pub evidence: u64,
    /// Submissions that failed (nothing acknowledged; the connection closed).
    pub submit_failures: u64,
    /// Commands written to a device (again after a reconnection included).
    pub commands_sent: u64,
    /// Commands refused, never sent (arguments the protocol cannot carry).
    pub commands_refused: u64,
    /// Command results recorded against their command.
    pub command_results: u64,
    /// Sessions ended because the device's keys were revoked or rotated during them.
    pub closed_keys_changed: u64,
}

impl NativeStats {
    /// Every counter by name.
    pub fn fields(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("connections_accepted", self.connections_accepted),
            ("connections_open", self.connections_open),
            ("connections_refused", self.connections_refused),
            ("closed_idle", self.closed_idle),
            ("closed_flood", self.closed_flood),
            ("closed_errors", self.closed_errors),
            ("handshakes", self.handshakes),
            ("established", self.established),
            ("refused_unknown", self.refused_unknown),
            ("refused_revoked", self.refused_revoked),
            ("frame_errors", self.frame_errors),
            ("forged", self.forged),
            ("replays", self.replays),
            ("protocol_errors", self.protocol_errors),
            ("observations_accepted", self.observations_accepted),
            ("observations_duplicate", self.observations_duplicate),
            ("observations_rejected", self.observations_rejected),
            ("evidence", self.evidence),
            ("submit_failures", self.submit_failures),
            ("commands_sent", self.commands_sent),
            ("commands_refused", self.commands_refused),
            ("command_results", self.command_results),
            ("closed_keys_changed", self.closed_keys_changed),
        ]
    }
}

#[derive(Debug, Default)]
struct Counters {
    connections_accepted: AtomicU64,
    connections_open: AtomicU64,
    connections_refused: AtomicU64,
    closed_idle: AtomicU64,
    closed_flood: AtomicU64,
    closed_errors: AtomicU64,
    handshakes: AtomicU64,
    established: AtomicU64,
    refused_unknown: AtomicU64,
    refused_revoked: AtomicU64,
    frame_errors: AtomicU64,
    forged: AtomicU64,
    replays: AtomicU64,
    protocol_errors: AtomicU64,
    observations_accepted: AtomicU64,
    observations_duplicate: AtomicU64,
    observations_rejected: AtomicU64,
    evidence: AtomicU64,
    submit_failures: AtomicU64,
    commands_sent: AtomicU64,
    commands_refused: AtomicU64,
    command_results: AtomicU64,
    closed_keys_changed: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> NativeStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NativeStats {
            connections_accepted: g(&self.connections_accepted),
            connections_open: g(&self.connections_open),
            connections_refused: g(&self.connections_refused),
            closed_idle: g(&self.closed_idle),
            closed_flood: g(&self.closed_flood),
            closed_errors: g(&self.closed_errors),
            handshakes: g(&self.handshakes),
            established: g(&self.established),
            refused_unknown: g(&self.refused_unknown),
            refused_revoked: g(&self.refused_revoked),
            frame_errors: g(&self.frame_errors),
            forged: g(&self.forged),
            replays: g(&self.replays),
            protocol_errors: g(&self.protocol_errors),
            observations_accepted: g(&self.observations_accepted),
            observations_duplicate: g(&self.observations_duplicate),
            observations_rejected: g(&self.observations_rejected),
            evidence: g(&self.evidence),
            submit_failures: g(&self.submit_failures),
            commands_sent: g(&self.commands_sent),
            commands_refused: g(&self.commands_refused),
            command_results: g(&self.command_results),
            closed_keys_changed: g(&self.closed_keys_changed),
        }
    }
}

/// A running native-protocol gateway.
#[derive(Debug)]
pub struct NativeGateway {
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl NativeGateway {
    /// Binds `config.listen` and serves connections into `ingest` until stopped, or until the
    /// service stops.
    pub async fn start(
        config: NativeConfig,
        ingest: Ingest,
    ) -> Result<NativeGateway, crate::Error> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| crate::Error::Listen(config.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| crate::Error::Listen(config.listen, e))?;
        tracing::info!(%addr, max_connections = config.max_connections, "native-protocol gateway listening");
        let counters = Arc::new(Counters::default());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::new(config),
            ingest,
            counters.clone(),
            stop_rx,
        ));
        Ok(NativeGateway {
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
        move || crate::prometheus("native", &counters.snapshot().fields())
    }

    pub fn stats(&self) -> NativeStats {
        self.counters.snapshot()
    }

    /// Stops accepting, lets connections finish the chunk they are on (acknowledging what was
    /// committed), closes them, and waits.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    config: Arc<NativeConfig>,
    ingest: Ingest,
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
            add(c, 1);
        }
    };
    crate::serve(
        "native-protocol",
        listener,
        config.max_connections,
        (stop, service_stopping),
        counted,
        |stream, peer, closing, permit| {
            run(
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

/// Why a connection ended.
#[derive(Debug)]
enum Close {
    Stopping,
    Peer,
    Idle,
    Flood,
    Errors,
    /// The session failed (during the handshake).
    Session,
    Unknown(DeviceId),
    Revoked(DeviceId),
    /// The device's keys were revoked or replaced during the session.
    KeysChanged(DeviceId),
    /// Nothing answered: the store or the randomness failed.
    Unavailable(String),
    Io(std::io::Error),
}

impl std::fmt::Display for Close {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Close::Stopping => f.write_str("the gateway is stopping"),
            Close::Peer => f.write_str("closed by the device"),
            Close::Idle => f.write_str("idle timeout, or no handshake within it"),
            Close::Flood => f.write_str("too many bytes without a frame"),
            Close::Errors => f.write_str("too many refused records"),
            Close::Session => f.write_str("the handshake failed"),
            Close::Unknown(d) => write!(f, "device {d} has no keys provisioned"),
            Close::Revoked(d) => write!(f, "device {d}'s keys are revoked"),
            Close::KeysChanged(d) => write!(
                f,
                "device {d}'s keys were revoked or rotated during the session"
            ),
            Close::Unavailable(why) => write!(f, "{why}"),
            Close::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Counts the connection as open while it lives (and holds its `max_connections` permit).
struct Open {
    counters: Arc<Counters>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.counters
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

async fn run(
    mut stream: TcpStream,
    peer: SocketAddr,
    config: Arc<NativeConfig>,
    ingest: Ingest,
    counters: Arc<Counters>,
    mut closing: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) {
    add(&counters.connections_open, 1);
    let _open = Open {
        counters: counters.clone(),
        _permit: permit,
    };
    let _ = stream.set_nodelay(true);
    let mut conn = Conn {
        peer,
        commands_rx: ingest.commands_queued(),
        check_commands: None,
        keys: None,
        session: Session::new(config.platform_keys.clone()),
        config,
        ingest,
        counters,
        errors: 0,
        unframed: 0,
    };
    let reason = conn.serve(&mut stream, &mut closing).await;
    let device = conn.session.device().map(|d| d.to_string());
    match &reason {
        Close::Peer | Close::Stopping => {
            tracing::debug!(%peer, device, reason = %reason, "native connection closed")
        }
        _ => tracing::warn!(%peer, device, reason = %reason, "native connection closed"),
    }
}

struct Conn {
    peer: SocketAddr,
    config: Arc<NativeConfig>,
    ingest: Ingest,
    counters: Arc<Counters>,
    session: Session,
    /// Records refused since the handshake.
    errors: u32,
    /// Bytes read since the last good frame.
    unframed: usize,
    /// Devices with commands newly queued (from the API).
    commands_rx: broadcast::Receiver<String>,
    /// Which of the device's commands to send before reading on, if any.
    check_commands: Option<Which>,
    /// The keys the session was accepted with, to notice a revocation or a rotation.
    keys: Option<DeviceKeysRecord>,
}

/// A report waiting for its submission's verdict.
struct Pending {
    seq: u64,
    observation: Observation,
    evidence: Option<EvidenceRecord>,
}

impl Conn {
    async fn serve(
        &mut self,
        stream: &mut TcpStream,
        closing: &mut watch::Receiver<bool>,
    ) -> Close {
        let mut buf = vec![0u8; READ_CHUNK];
        let idle = self.config.idle_timeout;
        let handshake_by = Instant::now() + idle;
        let mut last_read = Instant::now();
        let key_check = self
            .config
            .key_check_interval
            .max(Duration::from_millis(10));
        let mut next_key_check = tokio::time::Instant::now() + key_check;
        loop {
            if *closing.borrow() {
                return Close::Stopping;
            }
            if let Some(which) = self.check_commands.take() {
                let sent = self.deliver(which, stream).await;
                if let Err(reason) = sent {
                    return reason;
                }
            }
            // Idle counts from the last byte read (a command sent meanwhile does not reset it).
            let idle = idle.saturating_sub(last_read.elapsed());
            let wait = if self.session.is_established() {
                idle
            } else {
                let left = handshake_by.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    add(&self.counters.closed_idle, 1);
                    return Close::Idle;
                }
                left.min(idle)
            };
            let n = tokio::select! {
                biased;
                _ = crate::turned_true(closing) => return Close::Stopping,
                notice = self.commands_rx.recv(), if self.session.is_established() => {
                    if let Some(device) = self.session.device()
                        && commands::concerns(notice, device.as_str())
                    {
                        self.check_commands = Some(Which::Queued);
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(next_key_check), if self.keys.is_some() => {
                    next_key_check = tokio::time::Instant::now() + key_check;
                    if let Err(reason) = self.keys_unchanged().await {
                        return reason;
                    }
                    continue;
                }
                read = tokio::time::timeout(wait, stream.read(&mut buf)) => match read {
                    Err(_) => {
                        add(&self.counters.closed_idle, 1);
                        return Close::Idle;
                    }
                    Ok(Ok(0)) => return Close::Peer,
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => return Close::Io(e),
                },
            };
            last_read = Instant::now();
            self.unframed += n;
            let result = self.chunk(&buf[..n]).await;
            // What was answered goes out even when the connection is about to close.
            let written = self.flush(stream).await;
            if let Err(reason) = result.and(written) {
                return reason;
            }
            if self.session.is_closed() {
                return Close::Session;
            }
            if self.unframed > self.config.max_unframed_bytes {
                add(&self.counters.closed_flood, 1);
                return Close::Flood;
            }
        }
    }

    async fn chunk(&mut self, bytes: &[u8]) -> Result<(), Close> {
        let mut pending = Vec::new();
        for item in self.session.receive(bytes) {
            match item {
                Ok(Received::Hello { device }) => {
                    self.unframed = 0;
                    self.hello(device).await?;
                }
                Ok(Received::Established { device }) => {
                    self.unframed = 0;
                    add(&self.counters.established, 1);
                    tracing::info!(peer = %self.peer, device = %device, "native session established");
                    // Everything not answered yet goes out now, sent before or not: the
                    // device recognises a command it already executed.
                    self.check_commands = Some(Which::Unanswered);
                }
                Ok(Received::Report {
                    observation,
                    evidence,
                }) => {
                    self.unframed = 0;
                    let Some(seq) = observation.seq else {
                        // Every report carries its seq; nothing to acknowledge it by otherwise.
                        add(&self.counters.protocol_errors, 1);
                        continue;
                    };
                    pending.push(Pending {
                        seq,
                        observation,
                        evidence,
                    });
                }
                Ok(Received::CommandResult(result)) => {
                    self.unframed = 0;
                    self.answered(result).await?;
                }
                Err(e) => self.error(e)?,
            }
        }
        self.submit(pending).await
    }

    fn error(&mut self, e: sealproto::Error) -> Result<(), Close> {
        use sealproto::Error as E;
        match &e {
            E::Frame(_) => {
                add(&self.counters.frame_errors, 1);
                tracing::debug!(peer = %self.peer, error = %e, "frame skipped");
                // Framing errors do not count towards max_errors: max_unframed_bytes bounds them.
                return Ok(());
            }
            E::Forged { .. } => add(&self.counters.forged, 1),
            E::Replay { .. } => add(&self.counters.replays, 1),
            _ => add(&self.counters.protocol_errors, 1),
        }
        tracing::info!(peer = %self.peer, device = ?self.session.device().map(|d| d.to_string()), error = %e, "record refused");
        if self.session.is_established() {
            self.errors += 1;
            if self.errors >= self.config.max_errors.max(1) {
                add(&self.counters.closed_errors, 1);
                return Err(Close::Errors);
            }
        }
        Ok(())
    }

    /// A hello: the device's keys from the store, then the welcome.
    async fn hello(&mut self, device: DeviceId) -> Result<(), Close> {
        let id = device.to_string();
        let looked_up = self.ingest.query(move |s| s.device_keys(&id)).await;
        let record = match looked_up {
            Ok(Ok(r)) => r,
            Ok(Err(e)) if e.is_not_found() => {
                add(&self.counters.refused_unknown, 1);
                return Err(Close::Unknown(device));
            }
            Ok(Err(e)) => return Err(Close::Unavailable(format!("keys not read: {e}"))),
            Err(IngestError::Stopping) => return Err(Close::Stopping),
            Err(e) => return Err(Close::Unavailable(format!("keys not read: {e}"))),
        };
        if record.revoked_at.is_some() {
            add(&self.counters.refused_revoked, 1);
            return Err(Close::Revoked(device));
        }
        let Some(keys) = public_keys(&record.signing_public, &record.agreement_public) else {
            return Err(Close::Unavailable(format!(
                "device {device}'s stored keys are not valid public keys"
            )));
        };
        let mut random = [0u8; 64];
        getrandom::fill(&mut random)
            .map_err(|e| Close::Unavailable(format!("no randomness from the system: {e}")))?;
        match self.session.accept(&keys, Entropy::from_bytes(random)) {
            Ok(()) => {
                self.keys = Some(record);
                add(&self.counters.handshakes, 1);
                tracing::debug!(peer = %self.peer, device = %device, "hello answered");
                Ok(())
            }
            Err(e) => {
                add(&self.counters.protocol_errors, 1);
                tracing::info!(peer = %self.peer, device = %device, error = %e, "handshake refused");
                Err(Close::Session)
            }
        }
    }

    /// Submits the chunk's reports, keeps their evidence, and only then acknowledges.
    async fn submit(&mut self, pending: Vec<Pending>) -> Result<(), Close> {
        if pending.is_empty() {
            return Ok(());
        }
        let items = pending
            .iter()
            .map(|p| Submission::Observation(p.observation.clone()))
            .collect();
        let verdicts = match self.ingest.submit(items).await {
            Ok(v) if v.len() == pending.len() => v,
            Ok(v) => {
                add(&self.counters.submit_failures, 1);
                return Err(Close::Unavailable(format!(
                    "the pipeline gave {} verdicts for {} reports; nothing acknowledged",
                    v.len(),
                    pending.len()
                )));
            }
            Err(IngestError::Stopping) => return Err(Close::Stopping),
            Err(e) => {
                add(&self.counters.submit_failures, 1);
                return Err(Close::Unavailable(format!(
                    "reports not stored, so not acknowledged: {e}"
                )));
            }
        };
        let mut evidence = Vec::new();
        for (p, verdict) in pending.iter().zip(verdicts) {
            match verdict {
                Verdict::Accepted => add(&self.counters.observations_accepted, 1),
                Verdict::Duplicate => add(&self.counters.observations_duplicate, 1),
                Verdict::Rejected(reason) => {
                    add(&self.counters.observations_rejected, 1);
                    tracing::info!(peer = %self.peer, device = %p.observation.device, seq = p.seq, reason = %reason, "report refused by the pipeline; acknowledged, as the refusal is final");
                }
            }
            if let Some(record) = &p.evidence {
                let text = serde_json::to_string(record).unwrap_or_default();
                evidence.push(DeviceLogEntry {
                    id: 0,
                    device: p.observation.device.to_string(),
                    at: self.ingest.now(),
                    source: "native".into(),
                    kind: "evidence".into(),
                    text,
                });
            }
        }
        if !evidence.is_empty() {
            let n = evidence.len() as u64;
            let kept = self
                .ingest
                .query(move |s| -> store::Result<()> {
                    for e in &evidence {
                        s.add_device_log(e)?;
                    }
                    Ok(())
                })
                .await;
            match kept {
                Ok(Ok(())) => add(&self.counters.evidence, n),
                Ok(Err(e)) => {
                    add(&self.counters.submit_failures, 1);
                    return Err(Close::Unavailable(format!(
                        "evidence not kept, so not acknowledged: {e}"
                    )));
                }
                Err(IngestError::Stopping) => return Err(Close::Stopping),
                Err(e) => {
                    add(&self.counters.submit_failures, 1);
                    return Err(Close::Unavailable(format!(
                        "evidence not kept, so not acknowledged: {e}"
                    )));
                }
            }
        }
        let seq = pending.iter().map(|p| p.seq).max().unwrap_or(0);
        if let Err(e) = self.session.acknowledge(seq) {
            tracing::warn!(peer = %self.peer, error = %e, "acknowledgement not sent");
        }
        Ok(())
    }

    /// Sends the device's commands (`which`), oldest first, and marks the queued ones sent once
    /// written. A command the protocol cannot carry is refused, never sent.
    async fn deliver(&mut self, which: Which, stream: &mut TcpStream) -> Result<(), Close> {
        let Some(device) = self.session.device().map(|d| d.to_string()) else {
            return Ok(());
        };
        let found = commands::read(&self.ingest, self.peer, &device, which)
            .await
            .map_err(|_| Close::Stopping)?;
        let mut newly_sent = Vec::new();
        let mut refused = Vec::new();
        let mut written = 0;
        for c in found {
            let (id, command) = match native_command(&c) {
                Ok(carried) => carried,
                Err(why) => {
                    // Only a queued command is refused: one sent before was carried then.
                    tracing::warn!(peer = %self.peer, device, command = c.id, kind = c.kind.as_str(), why, "command refused");
                    if c.state == CommandState::Queued {
                        refused.push((c.id, why));
                    }
                    continue;
                }
            };
            match self.session.send_command(id, command) {
                Ok(()) => {
                    written += 1;
                    tracing::info!(peer = %self.peer, device, command = c.id, kind = c.kind.as_str(), again = c.state == CommandState::Sent, "command sent");
                    if c.state == CommandState::Queued {
                        newly_sent.push(c.id);
                    }
                }
                // The session failed, not the command: it waits for the next connection.
                Err(e) => {
                    tracing::warn!(peer = %self.peer, device, command = c.id, error = %e, "command not sent");
                    break;
                }
            }
        }
        self.flush(stream).await?;
        add(&self.counters.commands_sent, written);
        add(&self.counters.commands_refused, refused.len() as u64);
        commands::mark(&self.ingest, self.peer, newly_sent, refused)
            .await
            .map_err(|_| Close::Stopping)
    }

    /// A command result: recorded against the command, if it is this device's and not
    /// answered yet.
    async fn answered(&mut self, result: sealproto::CommandResult) -> Result<(), Close> {
        let Some(device) = self.session.device().map(|d| d.to_string()) else {
            return Ok(());
        };
        use sealproto::CommandStatus as S;
        let (state, word) = match result.status {
            S::Done => (CommandState::Done, "done"),
            S::Refused => (CommandState::Failed, "refused by the device in its state"),
            S::Failed => (CommandState::Failed, "failed on the device"),
            S::Unsupported => (CommandState::Failed, "not supported by the device"),
        };
        let text = match result.report_seq {
            Some(seq) => format!("native command result: {word} (report seq {seq})"),
            None => format!("native command result: {word}"),
        };
        let recorded = commands::record(
            &self.ingest,
            self.peer,
            i64::from(result.id),
            AnswerOf::Device(&device),
            state,
            text,
        )
        .await
        .map_err(|_| Close::Stopping)?;
        if recorded.is_some() {
            add(&self.counters.command_results, 1);
        }
        Ok(())
    }

    /// Reads the device's keys again: revoked, rotated or gone since the hello ends the
    /// session. A store failure is logged and lets the session go on to the next check.
    async fn keys_unchanged(&mut self) -> Result<(), Close> {
        let (Some(accepted), Some(device)) = (&self.keys, self.session.device()) else {
            return Ok(());
        };
        let device = device.clone();
        let id = device.to_string();
        let now = match self.ingest.query(move |s| s.device_keys(&id)).await {
            Ok(Ok(r)) => Some(r),
            Ok(Err(e)) if e.is_not_found() => None,
            Ok(Err(e)) => {
                tracing::warn!(peer = %self.peer, device = %device, error = %e, "keys not checked: the store failed");
                return Ok(());
            }
            Err(IngestError::Stopping) => return Err(Close::Stopping),
            Err(e) => {
                tracing::warn!(peer = %self.peer, device = %device, error = %e, "keys not checked");
                return Ok(());
            }
        };
        let unchanged = now.is_some_and(|r| {
            r.revoked_at.is_none()
                && r.signing_public == accepted.signing_public
                && r.agreement_public == accepted.agreement_public
        });
        if unchanged {
            return Ok(());
        }
        add(&self.counters.closed_keys_changed, 1);
        Err(Close::KeysChanged(device))
    }

    async fn flush(&mut self, stream: &mut TcpStream) -> Result<(), Close> {
        let out = self.session.take_outgoing();
        if out.is_empty() {
            return Ok(());
        }
        match tokio::time::timeout(self.config.idle_timeout, stream.write_all(&out)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Close::Io(e)),
            Err(_) => {
                add(&self.counters.closed_idle, 1);
                Err(Close::Idle)
            }
        }
    }
}

/// A stored command as the native protocol carries it: its id (the store's) and the message;
/// or why it cannot be carried.
fn native_command(c: &DeviceCommand) -> Result<(u32, sealproto::Command), String> {
    use sealproto::Command;
    let id = u32::try_from(c.id)
        .map_err(|_| format!("command id {} does not fit the protocol's 4 bytes", c.id))?;
    let transit = || -> Result<Option<model::TransitId>, String> {
        c.transit
            .as_deref()
            .map(|t| {
                t.parse()
                    .map_err(|e| format!("transit {t:?} cannot be carried: {e}"))
            })
            .transpose()
    };
    let command = match c.kind {
        CommandKind::Seal => Command::Seal {
            transit: transit()?,
        },
        CommandKind::Unseal => Command::Unseal {
            transit: transit()?,
        },
        CommandKind::SetInterval => {
            let seconds = c
                .args
                .get("seconds")
                .and_then(serde_json::Value::as_u64)
                .ok_or("set_interval needs args.seconds, and there is none")?;
            let seconds = u32::try_from(seconds)
                .ok()
                .filter(|s| (1..=sealproto::MAX_REPORT_INTERVAL_S).contains(s))
                .ok_or_else(|| {
                    format!(
                        "args.seconds {seconds} is outside 1 to {}",
                        sealproto::MAX_REPORT_INTERVAL_S
                    )
                })?;
            Command::SetReportInterval { seconds }
        }
        CommandKind::QueryStatus => Command::QueryStatus,
    };
    Ok((id, command))
}

/// Public keys from their stored hex.
fn public_keys(signing: &str, agreement: &str) -> Option<PublicKeys> {
    let bytes = |s: &str| sealproto::from_hex(s).and_then(|b| <[u8; 32]>::try_from(b).ok());
    Some(PublicKeys {
        signing: VerifyingKey::from_bytes(&bytes(signing)?).ok()?,
        agreement: AgreementKey::from_bytes(bytes(agreement)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealproto::Command;
    use serde_json::json;

    fn stored(
        id: i64,
        kind: CommandKind,
        transit: Option<&str>,
        args: serde_json::Value,
    ) -> DeviceCommand {
        DeviceCommand {
            id,
            device: "LOCK-7".into(),
            transit: transit.map(str::to_owned),
            kind,
            args,
            created_at: model::Timestamp::from_unix_ms(0),
            actor: "officer-1".into(),
            state: CommandState::Queued,
            sent_at: None,
            result_at: None,
            result: None,
        }
    }

    /// Each kind maps to its protocol command under the store id; what the protocol cannot
    /// carry is refused with the reason.
    #[test]
    fn stored_commands_map_to_protocol_commands_or_are_refused() {
        let unseal = stored(7, CommandKind::Unseal, Some("T-1"), json!({}));
        assert_eq!(
            native_command(&unseal).unwrap(),
            (
                7,
                Command::Unseal {
                    transit: Some("T-1".parse().unwrap())
                }
            )
        );
        let seal = stored(8, CommandKind::Seal, None, json!({}));
        assert_eq!(
            native_command(&seal).unwrap(),
            (8, Command::Seal { transit: None })
        );
        let interval = stored(9, CommandKind::SetInterval, None, json!({"seconds": 30}));
        assert_eq!(
            native_command(&interval).unwrap(),
            (9, Command::SetReportInterval { seconds: 30 })
        );
        let status = stored(10, CommandKind::QueryStatus, None, json!({}));
        assert_eq!(native_command(&status).unwrap(), (10, Command::QueryStatus));

        let too_long = stored(
            11,
            CommandKind::SetInterval,
            None,
            json!({"seconds": 86_401}),
        );
        assert!(
            native_command(&too_long)
                .unwrap_err()
                .contains("outside 1 to 86400")
        );
        let missing = stored(12, CommandKind::SetInterval, None, json!({}));
        assert!(
            native_command(&missing)
                .unwrap_err()
                .contains("args.seconds")
        );
        let big_id = stored(1 << 32, CommandKind::QueryStatus, None, json!({}));
        assert!(native_command(&big_id).unwrap_err().contains("4 bytes"));
        let bad_transit = stored(13, CommandKind::Seal, Some("not a transit id!"), json!({}));
        assert!(
            native_command(&bad_transit)
                .unwrap_err()
                .contains("cannot be carried")
        );
    }
}
