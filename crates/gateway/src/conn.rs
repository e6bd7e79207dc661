//! One device connection: bytes in, frames out of the deframer, answers back, reports into
//! the ingest path and acknowledged once committed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jt808::{
    Authentication, Body, DecodeError, Deframed, Deframer, Frame, FrameError, Header, Message,
    Options, Properties, RegistrationResult, ResponseResult, TextResult,
};
use model::{DeviceId, Observation};
use server::{Ingest, IngestError, Submission, Verdict};
use sha2::{Digest, Sha256};
use store::{CommandState, DeviceCommand, DeviceLogEntry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, broadcast, watch};

use crate::{Config, Counters};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 4096;

/// Observations submitted together at most (a chunk rarely holds more).
const MAX_PENDING_OBSERVATIONS: usize = 1_000;

/// Why a connection ended.
#[derive(Debug)]
enum Close {
    Stopping,
    Peer,
    Idle,
    Unauthenticated,
    Flood,
    AuthFailures,
    Io(std::io::Error),
}

impl std::fmt::Display for Close {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Close::Stopping => f.write_str("the gateway is stopping"),
            Close::Peer => f.write_str("closed by the device"),
            Close::Idle => f.write_str("idle timeout"),
            Close::Unauthenticated => f.write_str("not authenticated within the idle timeout"),
            Close::Flood => f.write_str("too many bytes without a frame"),
            Close::AuthFailures => f.write_str("too many refused messages"),
            Close::Io(e) => write!(f, "{e}"),
        }
    }
}

type Flow = Result<(), Close>;

/// Counts the connection as open while it lives (and holds its `max_connections` permit).
struct Open {
    counters: Arc<Counters>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.counters
            .connections_open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The device a connection has authenticated as, with its model's options.
#[derive(Debug)]
struct Authed {
    device: DeviceId,
    options: Options,
    /// The registry's model (it picks the command set).
    model: Option<String>,
    /// How to address frames to it.
    terminal: jt808::Terminal,
}

/// Commands sent on a connection and not yet answered, at most (the oldest are forgotten:
/// their answers, if they ever come, are logged and not recorded).
const MAX_UNANSWERED: usize = 64;

/// A report frame waiting for its submission's verdicts.
#[derive(Debug)]
struct PendingReport {
    header: Header,
    observations: usize,
}

/// A token bucket: `rate` per second, bursts of `rate`.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u32) -> Bucket {
        Bucket {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            last: Instant::now(),
        }
    }

    /// Takes a token; how long to wait first when there is none.
    fn take(&mut self) -> Option<Duration> {
        if self.rate <= 0.0 {
            return None;
        }
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate);
        self.last = now;
        self.tokens -= 1.0;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.rate))
    }
}

pub(crate) async fn run(
    mut stream: TcpStream,
    peer: SocketAddr,
    config: Arc<Config>,
    ingest: Ingest,
    counters: Arc<Counters>,
    mut closing: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) {
    Counters::add(&counters.connections_open, 1);
    let _open = Open {
        counters: counters.clone(),
        _permit: permit,
    };
    let _ = stream.set_nodelay(true);
    tracing::debug!(%peer, "device connected");
    let commands_rx = ingest.commands_queued();
    let mut conn = Conn {
        peer,
        commands_rx,
        check_commands: false,
        sent: HashMap::new(),
        last_sent: None,
        bucket: Bucket::new(config.max_frames_per_s),
        config,
        ingest,
        counters,
        deframer: Deframer::new(),
        serial: 0,
        jointech_serial: 0,
        authed: None,
        model_cache: None,
        failures: 0,
        unframed: 0,
        pending: Vec::new(),
        pending_observations: Vec::new(),
        out: Vec::new(),
    };
    let reason = conn.serve(&mut stream, &mut closing).await;
    let device = conn.authed.as_ref().map(|a| a.device.to_string());
    match &reason {
        Close::Flood | Close::AuthFailures | Close::Unauthenticated => {
            tracing::warn!(%peer, device, reason = %reason, "connection closed")
        }
        _ => tracing::debug!(%peer, device, reason = %reason, "connection closed"),
    }
}

struct Conn {
    peer: SocketAddr,
    config: Arc<Config>,
    ingest: Ingest,
    counters: Arc<Counters>,
    deframer: Deframer,
    /// The platform's serial number for the next frame it sends.
    serial: u16,
    /// The same for Jointech acknowledgements (one byte).
    jointech_serial: u8,
    authed: Option<Authed>,
    /// The options of the last device looked up for a bad check code.
    model_cache: Option<(DeviceId, Options)>,
    /// Refused messages so far.
    failures: u32,
    /// Bytes read since the last good frame or text.
    unframed: usize,
    pending: Vec<PendingReport>,
    pending_observations: Vec<Observation>,
    /// Answers not yet written.
    out: Vec<u8>,
    bucket: Bucket,
    /// Devices with commands newly queued (from the API).
    commands_rx: broadcast::Receiver<String>,
    /// Whether to look for queued commands of the device before reading on.
    check_commands: bool,
    /// Commands sent and not yet answered: the frame's serial number, the command's id.
    sent: HashMap<u16, i64>,
    /// The latest command sent on this connection (text results are recorded against it).
    last_sent: Option<i64>,
}

impl Conn {
    async fn serve(
        &mut self,
        stream: &mut TcpStream,
        closing: &mut watch::Receiver<bool>,
    ) -> Close {
        let mut buf = vec![0u8; READ_CHUNK];
        let idle = self.config.idle_timeout;
        // A connection must also authenticate within the idle timeout: a peer that trickles
        // bytes without ever authenticating does not keep its slot.
        let authenticate_by = Instant::now() + idle;
        let mut last_read = Instant::now();
        loop {
            if *closing.borrow() {
                return Close::Stopping;
            }
            if self.check_commands {
                self.check_commands = false;
                if let Err(reason) = self.deliver(stream).await {
                    return reason;
                }
            }
            // Idle counts from the last byte read (a command sent meanwhile does not reset it).
            let idle = idle.saturating_sub(last_read.elapsed());
            let wait = if self.authed.is_some() {
                idle
            } else {
                let left = authenticate_by.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Counters::add(&self.counters.closed_unauthenticated, 1);
                    return Close::Unauthenticated;
                }
                left.min(idle)
            };
            let n = tokio::select! {
                biased;
                _ = crate::turned_true(closing) => return Close::Stopping,
                notice = self.commands_rx.recv(), if self.authed.is_some() => {
                    self.check_commands = self
                        .authed
                        .as_ref()
                        .is_some_and(|a| crate::commands::concerns(notice, a.device.as_str()));
                    continue;
                }
                read = tokio::time::timeout(wait, stream.read(&mut buf)) => match read {
                    Err(_) if self.authed.is_none() && Instant::now() >= authenticate_by => {
                        Counters::add(&self.counters.closed_unauthenticated, 1);
                        return Close::Unauthenticated;
                    }
                    Err(_) => {
                        Counters::add(&self.counters.closed_idle, 1);
                        return Close::Idle;
                    }
                    Ok(Ok(0)) => return Close::Peer,
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => return Close::Io(e),
                },
            };
            last_read = Instant::now();
            self.unframed += n;
            let items: Vec<_> = self.deframer.push(&buf[..n]).collect();
            let result = self.chunk(items, stream).await;
            // What was answered goes out even when the connection is about to close.
            let written = self.flush(stream).await;
            if let Err(reason) = result.and(written) {
                return reason;
            }
            if self.unframed > self.config.max_unframed_bytes {
                Counters::add(&self.counters.closed_flood, 1);
                return Close::Flood;
            }
        }
    }

    async fn chunk(
        &mut self,
        items: Vec<Result<Deframed, FrameError>>,
        stream: &mut TcpStream,
    ) -> Flow {
        for item in items {
            let frame = match item {
                Ok(Deframed::Frame(frame)) => Some(frame),
                Ok(Deframed::Text(text)) => {
                    self.throttle(stream).await?;
                    self.text(text).await?;
                    None
                }
                Err(e) => {
                    self.frame_error(e);
                    None
                }
            };
            if let Some(frame) = frame {
                self.throttle(stream).await?;
                self.frame(frame).await?;
            }
            if self.pending_observations.len() >= MAX_PENDING_OBSERVATIONS {
                self.submit().await?;
            }
        }
        self.submit().await
    }

    /// Keeps to `max_frames_per_s`: when over, answers what is waiting and then waits, reading
    /// nothing meanwhile (TCP pushes back on the device).
    async fn throttle(&mut self, stream: &mut TcpStream) -> Flow {
        if let Some(wait) = self.bucket.take() {
            Counters::add(&self.counters.throttled, 1);
            self.submit().await?;
            self.flush(stream).await?;
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    fn frame_error(&mut self, e: FrameError) {
        match e {
            FrameError::Garbage { len } => {
                Counters::add(&self.counters.garbage_bytes, len as u64);
                tracing::debug!(peer = %self.peer, bytes = len, "bytes outside any frame skipped");
            }
            e => {
                Counters::add(&self.counters.malformed_frames, 1);
                tracing::debug!(peer = %self.peer, error = %e, "frame dropped");
            }
        }
    }

    /// Writes the answers waiting.
    async fn flush(&mut self, stream: &mut TcpStream) -> Flow {
        if self.out.is_empty() {
            return Ok(());
        }
        // A peer that does not read is as good as gone.
        match tokio::time::timeout(self.config.idle_timeout, stream.write_all(&self.out)).await {
            Ok(Ok(())) => {
                self.out.clear();
                Ok(())
            }
            Ok(Err(e)) => Err(Close::Io(e)),
            Err(_) => {
                Counters::add(&self.counters.closed_idle, 1);
                Err(Close::Idle)
            }
        }
    }

    fn next_serial(&mut self) -> u16 {
        let s = self.serial;
        self.serial = self.serial.wrapping_add(1);
        s
    }

    /// Queues a platform general response (0x8001) to `to`.
    fn respond(&mut self, to: &Header, result: ResponseResult) {
        let serial = self.next_serial();
        match jt808::encode_general_response(to, serial, result) {
            Ok(bytes) => self.out.extend_from_slice(&bytes),
            Err(e) => tracing::warn!(peer = %self.peer, error = %e, "cannot encode an answer"),
        }
    }

    /// Answers a report frame: 0x8001, or for a Jointech lock message the 0x4401 it asks for
    /// (nothing when it does not ask).
    fn answer_report(&mut self, to: &Header, result: ResponseResult) {
        if matches!(to.message_id, 0x5501 | 0x5502) {
            if to.wants_jointech_ack() {
                let serial = self.jointech_serial;
                self.jointech_serial = self.jointech_serial.wrapping_add(1);
                match jointech_ack(to, serial, result) {
                    Ok(bytes) => self.out.extend_from_slice(&bytes),
                    Err(e) => {
                        tracing::warn!(peer = %self.peer, error = %e, "cannot encode an answer")
                    }
                }
            }
        } else {
            self.respond(to, result);
        }
    }

    /// A refused message: answered with a failure and counted; too many close the
    /// connection.
    fn refuse(&mut self, to: &Header, why: &str) -> Flow {
        Counters::add(&self.counters.auth_failures, 1);
        self.failures += 1;
        tracing::info!(
            peer = %self.peer,
            device = %to.phone,
            message_id = format_args!("0x{:04x}", to.message_id),
            failures = self.failures,
            "{why}"
        );
        self.answer_report(to, ResponseResult::Failure);
        if self.failures >= self.config.max_auth_failures.max(1) {
            Counters::add(&self.counters.closed_auth_failures, 1);
            return Err(Close::AuthFailures);
        }
        Ok(())
    }

    fn is_authed_as(&self, device: &DeviceId) -> bool {
        self.authed.as_ref().is_some_and(|a| &a.device == device)
    }

    fn options_for_model(&self, model: Option<&str>) -> Options {
        match model {
            Some(model) => {
                let mut options = Options::for_model(model);
                options.accept_bad_check_code = self.config.accepts_bad_check_code(model);
                options
            }
            None => Options::default(),
        }
    }

    /// The options of `device`'s model, from the registry (cached for the connection).
    async fn options_for(&mut self, device: &DeviceId) -> Options {
        if let Some(a) = self.authed.as_ref().filter(|a| &a.device == device) {
            return a.options.clone();
        }
        if let Some((d, o)) = &self.model_cache
            && d == device
        {
            return o.clone();
        }
        let id = device.to_string();
        let model = self
            .ingest
            .query(move |s| s.device(&id).map(|r| r.device.model))
            .await;
        let options = match model {
            Ok(Ok(model)) => self.options_for_model(model.as_deref()),
            _ => Options::default(),
        };
        self.model_cache = Some((device.clone(), options.clone()));
        options
    }

    async fn frame(&mut self, frame: Frame) -> Flow {
        let header = match frame.header() {
            Ok(h) => h,
            Err(e) => {
                Counters::add(&self.counters.malformed_frames, 1);
                tracing::debug!(peer = %self.peer, error = %e, "frame without a readable header dropped");
                return Ok(());
            }
        };
        let device = header.phone.device_id();
        // Options change decoding only for a bad check code: the registry is asked then.
        let options = if frame.check_code_ok() {
            Options::default()
        } else {
            self.options_for(&device).await
        };
        let message = match frame.decode(&options) {
            Ok(m) => m,
            Err(DecodeError::CheckCode { computed, received }) => {
                Counters::add(&self.counters.bad_check_codes, 1);
                tracing::warn!(
                    peer = %self.peer,
                    device = %device,
                    message_id = format_args!("0x{:04x}", header.message_id),
                    computed = format_args!("0x{computed:02x}"),
                    received = format_args!("0x{received:02x}"),
                    "bad check code; frame dropped"
                );
                return Ok(());
            }
            Err(e) => {
                Counters::add(&self.counters.malformed_frames, 1);
                tracing::warn!(
                    peer = %self.peer,
                    device = %device,
                    message_id = format_args!("0x{:04x}", header.message_id),
                    error = %e,
                    "frame does not decode; answered with a message error"
                );
                self.submit().await?;
                self.respond(&header, ResponseResult::MessageError);
                return Ok(());
            }
        };
        self.unframed = 0;
        Counters::add(&self.counters.frames, 1);
        self.message(message).await
    }

    async fn message(&mut self, message: Message) -> Flow {
        let header = &message.header;
        let device = message.device();
        match &message.body {
            Body::Location(_)
            | Body::LocationQueryResponse { .. }
            | Body::LocationBatch(_)
            | Body::JointechLocation(_) => {
                if !self.is_authed_as(&device) {
                    self.submit().await?;
                    return self.refuse(header, "report refused: not authenticated");
                }
                let options = self.authed.as_ref().map(|a| a.options.clone());
                let observations = jt808::observations(&message, &options.unwrap_or_default());
                self.pending.push(PendingReport {
                    header: message.header.clone(),
                    observations: observations.len(),
                });
                self.pending_observations.extend(observations);
                Ok(())
            }
            Body::Registration(_) => {
                self.submit().await?;
                self.register(header).await
            }
            Body::Authentication(a) => {
                self.submit().await?;
                self.authenticate(header, a).await
            }
            Body::Heartbeat { .. } => {
                self.submit().await?;
                if self.is_authed_as(&device) {
                    self.respond(header, ResponseResult::Success);
                    Ok(())
                } else {
                    self.refuse(header, "heartbeat refused: not authenticated")
                }
            }
            // Logout.
            Body::Other { .. } if header.message_id == 0x0003 => {
                self.submit().await?;
                if self.is_authed_as(&device) {
                    tracing::info!(peer = %self.peer, device = %device, "device logged out");
                    self.authed = None;
                    self.respond(header, ResponseResult::Success);
                    Ok(())
                } else {
                    self.refuse(header, "logout refused: not authenticated")
                }
            }
            // The terminal's answer to a command: recorded against it.
            Body::GeneralResponse(g) if header.message_id == 0x0001 => {
                if !self.is_authed_as(&device) {
                    tracing::debug!(peer = %self.peer, device = %device, "general response from a connection not authenticated as it: ignored");
                    return Ok(());
                }
                let g = *g;
                self.answered(g).await
            }
            // Frames that only the platform sends: nothing to answer.
            Body::GeneralResponse(_) | Body::RegistrationResponse(_) | Body::JointechAck { .. } => {
                tracing::debug!(peer = %self.peer, device = %device, message_id = format_args!("0x{:04x}", header.message_id), "not answered");
                Ok(())
            }
            _ => {
                self.submit().await?;
                if !self.is_authed_as(&device) {
                    return self.refuse(header, "message refused: not authenticated");
                }
                // Subpackaged messages and messages this gateway does not take.
                tracing::info!(
                    peer = %self.peer,
                    device = %device,
                    message_id = format_args!("0x{:04x}", header.message_id),
                    "message not supported; answered so"
                );
                self.respond(header, ResponseResult::NotSupported);
                Ok(())
            }
        }
    }

    /// Submits the reports waiting, and answers each once the verdicts are back (that is,
    /// once what was accepted is committed). When the submission fails nothing is answered:
    /// the device sends the reports again.
    async fn submit(&mut self) -> Flow {
        if self.pending.is_empty() {
            return Ok(());
        }
        let reports = std::mem::take(&mut self.pending);
        let items: Vec<Submission> = std::mem::take(&mut self.pending_observations)
            .into_iter()
            .map(Submission::Observation)
            .collect();
        let verdicts = if items.is_empty() {
            Ok(Vec::new())
        } else {
            self.ingest.submit(items).await
        };
        let verdicts = match verdicts {
            Ok(v) => v,
            Err(e) => {
                Counters::add(&self.counters.submit_failures, reports.len() as u64);
                tracing::warn!(
                    peer = %self.peer,
                    device = ?self.authed.as_ref().map(|a| a.device.to_string()),
                    frames = reports.len(),
                    error = %e,
                    "reports not stored, so not acknowledged; the device will send them again"
                );
                return match e {
                    IngestError::Stopping => Err(Close::Stopping),
                    IngestError::Unavailable(_) => Ok(()),
                };
            }
        };
        let expected: usize = reports.iter().map(|r| r.observations).sum();
        if verdicts.len() != expected {
            // Not the service's contract; answer nothing rather than something untrue.
            tracing::error!(
                peer = %self.peer,
                verdicts = verdicts.len(),
                expected,
                "the pipeline gave a verdict count that does not match; nothing answered"
            );
            return Ok(());
        }
        let mut verdicts = verdicts.into_iter();
        for report in reports {
            let mut result = ResponseResult::Success;
            for verdict in verdicts.by_ref().take(report.observations) {
                match verdict {
                    Verdict::Accepted => Counters::add(&self.counters.observations_accepted, 1),
                    Verdict::Duplicate => Counters::add(&self.counters.observations_duplicate, 1),
                    Verdict::Rejected(reason) => {
                        Counters::add(&self.counters.observations_rejected, 1);
                        result = ResponseResult::Failure;
                        tracing::info!(
                            peer = %self.peer,
                            device = %report.header.phone,
                            serial = report.header.serial,
                            reason = %reason,
                            "observation refused; answered with a failure"
                        );
                    }
                }
            }
            self.answer_report(&report.header, result);
        }
        Ok(())
    }

    /// Sends the device's queued commands, oldest first, and marks them sent once written.
    /// A command its model has no wire form for is refused. A command that could not be
    /// marked sent after it went out is sent again later (at least once, never lost).
    async fn deliver(&mut self, stream: &mut TcpStream) -> Flow {
        let Some(authed) = &self.authed else {
            return Ok(());
        };
        let pending = crate::commands::read(
            &self.ingest,
            self.peer,
            authed.device.as_str(),
            crate::commands::Which::Queued,
        )
        .await
        .map_err(|_| Close::Stopping)?;
        if pending.is_empty() {
            return Ok(());
        }
        let set = self.config.commands_for(authed.model.as_deref()).clone();
        let terminal = authed.terminal.clone();
        let mut sent = Vec::new();
        let mut refused = Vec::new();
        for c in pending {
            let serial = self.next_serial();
            match crate::commands::encode(set.wire(c.kind), &terminal, serial, &c.args) {
                Ok((message_id, bytes)) => {
                    self.out.extend_from_slice(&bytes);
                    tracing::info!(
                        peer = %self.peer,
                        device = %c.device,
                        command = c.id,
                        kind = c.kind.as_str(),
                        message_id = format_args!("0x{message_id:04x}"),
                        serial,
                        "command sent"
                    );
                    sent.push((serial, c.id));
                }
                Err(why) => {
                    tracing::warn!(peer = %self.peer, device = %c.device, command = c.id, kind = c.kind.as_str(), why, "command refused");
                    refused.push((c.id, why));
                }
            }
        }
        self.flush(stream).await?;
        Counters::add(&self.counters.commands_sent, sent.len() as u64);
        Counters::add(&self.counters.commands_refused, refused.len() as u64);
        let ids: Vec<i64> = sent.iter().map(|(_, id)| *id).collect();
        crate::commands::mark(&self.ingest, self.peer, ids, refused)
            .await
            .map_err(|_| Close::Stopping)?;
        for (serial, id) in sent {
            if self.sent.len() >= MAX_UNANSWERED
                && let Some(oldest) = self.sent.iter().min_by_key(|(_, id)| **id).map(|(s, _)| *s)
            {
                self.sent.remove(&oldest);
            }
            self.sent.insert(serial, id);
            self.last_sent = Some(id);
        }
        Ok(())
    }

    /// 0x0001: the device's answer to a frame the platform sent; for a command, its result.
    async fn answered(&mut self, g: jt808::GeneralResponse) -> Flow {
        let Some(id) = self.sent.remove(&g.reply_serial) else {
            tracing::debug!(peer = %self.peer, serial = g.reply_serial, reply_id = format_args!("0x{:04x}", g.reply_id), "general response to no command sent here");
            return Ok(());
        };
        let (state, word) = match g.result {
            0 => (CommandState::Done, "success"),
            1 => (CommandState::Failed, "failure"),
            2 => (CommandState::Failed, "message error"),
            3 => (CommandState::Failed, "not supported"),
            _ => (CommandState::Failed, "unknown result"),
        };
        let text = format!(
            "general response to 0x{:04x}: {word} ({})",
            g.reply_id, g.result
        );
        let recorded = crate::commands::record(
            &self.ingest,
            self.peer,
            id,
            crate::commands::AnswerOf::Matched,
            state,
            text,
        )
        .await
        .map_err(|_| Close::Stopping)?;
        if recorded.is_some() {
            Counters::add(&self.counters.command_answers, 1);
        }
        Ok(())
    }

    /// 0x0100: an auth code for a device in the registry, "no such terminal" otherwise.
    async fn register(&mut self, header: &Header) -> Flow {
        let device = header.phone.device_id();
        let mut raw = [0u8; 8];
        if let Err(e) = getrandom::fill(&mut raw) {
            tracing::error!(error = %e, "no randomness from the system; registration not answered");
            return Ok(());
        }
        let code = hex(&raw).to_ascii_uppercase();
        let hash = hash(code.as_bytes());
        let now = self.ingest.now();
        let id = device.to_string();
        let looked_up = self
            .ingest
            .query(move |s| -> store::Result<Option<Option<String>>> {
                match s.device(&id) {
                    Ok(record) => {
                        s.put_device_auth(&id, &hash, now)?;
                        Ok(Some(record.device.model))
                    }
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await;
        let serial = self.next_serial();
        let (result, code) = match looked_up {
            Ok(Ok(Some(model))) => {
                let options = self.options_for_model(model.as_deref());
                self.model_cache = Some((device.clone(), options));
                Counters::add(&self.counters.registrations, 1);
                tracing::info!(peer = %self.peer, device = %device, "device registered; auth code issued");
                (RegistrationResult::Success, code)
            }
            Ok(Ok(None)) => {
                Counters::add(&self.counters.registrations_refused, 1);
                tracing::warn!(peer = %self.peer, device = %device, "registration refused: the device is not in the registry");
                (RegistrationResult::NoSuchTerminal, String::new())
            }
            Ok(Err(e)) => {
                tracing::warn!(peer = %self.peer, device = %device, error = %e, "registration not answered: the store failed");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, device = %device, error = %e, "registration not answered");
                return match e {
                    IngestError::Stopping => Err(Close::Stopping),
                    IngestError::Unavailable(_) => Ok(()),
                };
            }
        };
        match jt808::encode_registration_response(header, serial, result, code.as_bytes()) {
            Ok(bytes) => self.out.extend_from_slice(&bytes),
            Err(e) => tracing::warn!(peer = %self.peer, error = %e, "cannot encode an answer"),
        }
        Ok(())
    }

    /// 0x0102: the code given at registration, checked against its stored hash.
    async fn authenticate(&mut self, header: &Header, auth: &Authentication) -> Flow {
        let device = header.phone.device_id();
        let presented = hash(&auth.auth_code);
        let id = device.to_string();
        let looked_up = self
            .ingest
            .query(
                move |s| -> store::Result<Option<(String, Option<String>)>> {
                    let code_hash = match s.device_auth(&id) {
                        Ok(h) => h,
                        Err(e) if e.is_not_found() => return Ok(None),
                        Err(e) => return Err(e),
                    };
                    match s.device(&id) {
                        Ok(record) => Ok(Some((code_hash, record.device.model))),
                        Err(e) if e.is_not_found() => Ok(None),
                        Err(e) => Err(e),
                    }
                },
            )
            .await;
        match looked_up {
            Ok(Ok(Some((code_hash, model)))) if equal(&code_hash, &presented) => {
                let options = self.options_for_model(model.as_deref());
                Counters::add(&self.counters.authentications, 1);
                tracing::info!(peer = %self.peer, device = %device, "device authenticated");
                self.authed = Some(Authed {
                    device,
                    options,
                    model,
                    terminal: header.terminal(),
                });
                // Commands queued while it was away go out now.
                self.check_commands = true;
                self.failures = 0;
                self.respond(header, ResponseResult::Success);
                Ok(())
            }
            Ok(Ok(_)) => self.refuse(header, "authentication refused: wrong or unknown auth code"),
            Ok(Err(e)) => {
                tracing::warn!(peer = %self.peer, device = %device, error = %e, "authentication not answered: the store failed");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, device = %device, error = %e, "authentication not answered");
                match e {
                    IngestError::Stopping => Err(Close::Stopping),
                    IngestError::Unavailable(_) => Ok(()),
                }
            }
        }
    }

    /// A plain-text command result: logged, and kept in the device log when the connection
    /// has authenticated (under the device it authenticated as).
    async fn text(&mut self, text: TextResult) -> Flow {
        self.submit().await?;
        self.unframed = 0;
        Counters::add(&self.counters.text_results, 1);
        let Some(authed) = &self.authed else {
            Counters::add(&self.counters.auth_failures, 1);
            self.failures += 1;
            tracing::warn!(peer = %self.peer, text = text.as_str(), "text result from a connection that has not authenticated: logged, not kept");
            if self.failures >= self.config.max_auth_failures.max(1) {
                Counters::add(&self.counters.closed_auth_failures, 1);
                return Err(Close::AuthFailures);
            }
            return Ok(());
        };
        let device = authed.device.to_string();
        tracing::info!(
            peer = %self.peer,
            device = %device,
            named = ?text.device().map(|d| d.to_string()),
            text = text.as_str(),
            "text command result"
        );
        let entry = DeviceLogEntry {
            id: 0,
            device,
            at: self.ingest.now(),
            source: "jt808".into(),
            kind: "text_result".into(),
            text: text.as_str().to_owned(),
        };
        let command = self.last_sent;
        let at = entry.at;
        let kept = self
            .ingest
            .query(move |s| -> store::Result<Option<DeviceCommand>> {
                s.add_device_log(&entry)?;
                let Some(id) = command else {
                    return Ok(None);
                };
                // The device answered: a text after its general response adds to the result
                // and keeps the state; a text alone makes the command done.
                let state = match s.command(id)?.state {
                    CommandState::Done => CommandState::Done,
                    CommandState::Failed => CommandState::Failed,
                    CommandState::Sent => CommandState::Done,
                    // Not this connection's to answer any more.
                    CommandState::Queued | CommandState::Refused => return Ok(None),
                };
                s.record_result(id, state, at, Some(&entry.text)).map(Some)
            })
            .await;
        match kept {
            Ok(Ok(Some(c))) => {
                tracing::info!(peer = %self.peer, command = c.id, state = c.state.as_str(), "text result recorded against the latest command sent");
                Ok(())
            }
            Ok(Ok(None)) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(peer = %self.peer, error = %e, "text result not kept: the store failed");
                Ok(())
            }
            Err(IngestError::Stopping) => Err(Close::Stopping),
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "text result not kept");
                Ok(())
            }
        }
    }
}

/// 0x4401 with a result: 0 as the codec writes it, 1 for a refused report.
fn jointech_ack(
    to: &Header,
    serial: u8,
    result: ResponseResult,
) -> Result<Vec<u8>, jt808::EncodeError> {
    if result == ResponseResult::Success {
        return jt808::encode_jointech_ack(to, serial);
    }
    Message {
        header: Header {
            message_id: 0x4401,
            properties: Properties(0),
            version: to.version,
            phone: to.phone.clone(),
            serial: u16::from(serial),
            subpackage: None,
        },
        body: Body::JointechAck {
            reply_id: to.message_id,
            result: result as u8,
        },
    }
    .encode()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of an auth code, hex: what the store keeps.
fn hash(code: &[u8]) -> String {
    hex(&Sha256::digest(code))
}

/// Compares two hashes without stopping at the first difference.
fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
