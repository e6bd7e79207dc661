//! The device fleet over TCP: one connection per device, speaking JT/T 808 or the native
//! protocol as a device in the field does, each with its own socket, login and reports, and
//! the platform's acknowledgements counted and timed.
//!
//! A JT/T 808 device registers (0x0100), authenticates with the code it is given (0x0102),
//! then sends its reports as location batches (0x0704, `batch` locations per frame; a plain
//! 0x0200 when `batch` is 1) and waits for the platform general response (0x8001) to each
//! frame before the next. A native device does the handshake of the reference
//! [`sealproto::Device`] and sends `batch` reports as one report batch record (message type 5,
//! `Device::report_many`; a plain report record when `batch` is 1), then waits for the
//! cumulative acknowledgement that covers the last. So each device has one batch in flight:
//! the send → acknowledgement time is the platform's whole path (decode, group commit,
//! supervision, answer).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use model::{DeviceEvent, LockState, Reading, Timestamp};
use sealproto::{DeviceKeys, DeviceOutput, Entropy, PublicKeys};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};

use crate::fleet::{Fleet, Kind, Point};

/// The device protocol a fleet speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// The HTTP API (`POST /api/v1/observations`), the original benchmark.
    Http,
    /// JT/T 808 over TCP.
    Jt808,
    /// The native secure protocol (sealproto) over TCP.
    Native,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Jt808 => "jt808",
            Protocol::Native => "native",
        }
    }
}

/// What the fleet does.
#[derive(Clone, Debug)]
pub struct Spec {
    pub protocol: Protocol,
    /// The gateway's address.
    pub target: SocketAddr,
    pub devices: usize,
    /// Observations per second for the whole fleet; 0: each device sends its next batch as
    /// soon as the last is acknowledged.
    pub rate_total: f64,
    /// Reports per frame (JT/T 808) or per write (native).
    pub batch: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Connections being opened and logged in at once.
    pub connecting: usize,
    /// The platform's public keys (native).
    pub platform: Option<PublicKeys>,
    /// Instead of reporting on: each device sends one report, and all hold their connection
    /// until told to close (the connection test).
    pub hold: bool,
}

/// The native keys of device `i` (`id`): derived from the index, so the process that
/// provisions them and the one that uses them agree without passing secrets around.
pub fn device_keys(id: &str, i: usize) -> Result<DeviceKeys> {
    let mut rng = crate::fleet::Lcg::new(0x5ea1_0000 + i as u64);
    let mut secret = || {
        let mut s = [0u8; 32];
        for b in &mut s {
            *b = (rng.next() * 256.0) as u8;
        }
        s
    };
    let (signing, agreement) = (secret(), secret());
    Ok(DeviceKeys::from_secrets(
        id.parse().with_context(|| format!("device id {id}"))?,
        signing,
        agreement,
    ))
}

/// The hex of a platform's public keys, signing then agreement (as `--platform-public` takes
/// them).
pub fn public_hex(keys: &PublicKeys) -> String {
    format!(
        "{}:{}",
        sealproto::to_hex(&keys.signing.to_bytes()),
        sealproto::to_hex(&keys.agreement.to_bytes())
    )
}

/// Reads `signing:agreement` hex.
pub fn parse_public_hex(text: &str) -> Result<PublicKeys> {
    let (s, a) = text
        .split_once(':')
        .context("--platform-public is SIGNING_HEX:AGREEMENT_HEX")?;
    let bytes = |h: &str| -> Result<[u8; 32]> {
        sealproto::from_hex(h.trim())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .context("a platform public key is 64 hex digits")
    };
    Ok(PublicKeys {
        signing: sealproto::VerifyingKey::from_bytes(&bytes(s)?)
            .map_err(|e| anyhow::anyhow!("platform signing key: {e}"))?,
        agreement: sealproto::AgreementKey::from_bytes(bytes(a)?),
    })
}

/// What every device task shares.
#[derive(Debug, Default)]
struct Shared {
    logged_in: AtomicU64,
    login_failures: AtomicU64,
    measuring: AtomicBool,
    stop: AtomicBool,
    /// Observations acknowledged with success, sent and answered in the window.
    acknowledged: AtomicU64,
    /// Observations answered with a failure in the window.
    refused: AtomicU64,
    batches: AtomicU64,
    /// Devices that made every report they can.
    exhausted: AtomicU64,
    /// Observations acknowledged in all (warm-up included).
    acknowledged_in_all: AtomicU64,
}

/// What one device did.
#[derive(Debug, Default)]
struct Outcome {
    /// Send → acknowledgement of each batch in the window, µs.
    latencies_us: Vec<u32>,
    error: Option<String>,
}

/// Runs the fleet against `spec.target`: every device connects and logs in, then (after a
/// common start) reports for the warm-up and the measured window. `ready` is called once
/// every device is logged in (in hold mode: once each has had its report acknowledged), and
/// in hold mode the devices close when `release` resolves. Returns the figures as JSON.
pub async fn run(
    spec: Spec,
    fleet: Arc<Fleet>,
    ready: impl FnOnce(&Value),
    release: impl std::future::Future<Output = ()>,
) -> Result<Value> {
    ensure!(spec.devices > 0, "--devices must be at least 1");
    ensure!(spec.batch > 0, "--batch-reports must be at least 1");
    if spec.protocol == Protocol::Native {
        ensure!(
            spec.platform.is_some(),
            "the native protocol needs --platform-public"
        );
    }
    let shared = Arc::new(Shared::default());
    let (go_tx, go_rx) = watch::channel(None::<Instant>);
    let (close_tx, close_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(spec.connecting.max(1)));
    // Each device sends a batch every `interval` (a fleet rate spread evenly over devices).
    let interval = (spec.rate_total > 0.0).then(|| {
        Duration::from_secs_f64(spec.devices as f64 * spec.batch as f64 / spec.rate_total)
    });
    let connect_started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..spec.devices {
        let (spec, fleet, shared) = (spec.clone(), fleet.clone(), shared.clone());
        let (go, close, gate) = (go_rx.clone(), close_rx.clone(), gate.clone());
        tasks.spawn(async move {
            let mut outcome = Outcome::default();
            let run = device(
                &spec,
                &fleet,
                i,
                &shared,
                gate,
                go,
                close,
                interval,
                &mut outcome,
            );
            if let Err(e) = run.await {
                outcome.error = Some(format!("{e:#}"));
            }
            outcome
        });
    }
    // Everyone logged in (or failed to).
    let mut finished = Vec::new();
    loop {
        let done = shared.logged_in.load(Ordering::Relaxed)
            + shared.login_failures.load(Ordering::Relaxed);
        if done >= spec.devices as u64 {
            break;
        }
        tokio::select! {
            Some(r) = tasks.join_next() => finished.push(r?),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    let connect_seconds = connect_started.elapsed().as_secs_f64();
    let logged_in = shared.logged_in.load(Ordering::Relaxed);
    let first_error = |finished: &[Outcome]| {
        finished
            .iter()
            .find_map(|o| o.error.clone())
            .unwrap_or_default()
    };
    if logged_in < spec.devices as u64 {
        shared.stop.store(true, Ordering::Relaxed);
        let _ = go_tx.send(Some(Instant::now()));
        let _ = close_tx.send(true);
        while let Some(r) = tasks.join_next().await {
            finished.push(r?);
        }
        bail!(
            "{} of {} devices logged in; the first error: {}",
            logged_in,
            spec.devices,
            first_error(&finished)
        );
    }
    let start = Instant::now();
    let _ = go_tx.send(Some(start));
    if spec.hold {
        // Each device reports once; wait for every acknowledgement.
        loop {
            let answered = shared.acknowledged_in_all.load(Ordering::Relaxed)
                + shared.refused.load(Ordering::Relaxed);
            if answered >= spec.devices as u64 {
                break;
            }
            tokio::select! {
                Some(r) = tasks.join_next() => {
                    let o = r?;
                    if let Some(e) = o.error {
                        bail!("a device failed before its report was acknowledged: {e}");
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        let figures = json!({
            "protocol": spec.protocol.as_str(),
            "devices": spec.devices,
            "connect_and_login_seconds": connect_seconds,
            "reports_acknowledged": shared.acknowledged_in_all.load(Ordering::Relaxed),
            "reports_refused": shared.refused.load(Ordering::Relaxed),
        });
        ready(&figures);
        release.await;
        let _ = close_tx.send(true);
        while let Some(r) = tasks.join_next().await {
            if let Some(e) = r?.error {
                bail!("a device failed: {e}");
            }
        }
        return Ok(figures);
    }
    ready(&json!({"logged_in": logged_in}));

    tokio::time::sleep(spec.warmup).await;
    shared.measuring.store(true, Ordering::Relaxed);
    let from = Instant::now();
    let cpu_from = cpu_seconds();
    let at_start = shared.acknowledged_in_all.load(Ordering::Relaxed);
    tokio::time::sleep(spec.duration).await;
    shared.measuring.store(false, Ordering::Relaxed);
    let seconds = from.elapsed().as_secs_f64();
    let fleet_cores = (cpu_seconds() - cpu_from) / seconds.max(1e-9);
    let in_window_all = shared.acknowledged_in_all.load(Ordering::Relaxed) - at_start;
    shared.stop.store(true, Ordering::Relaxed);
    let _ = close_tx.send(true);
    let mut latencies = Vec::new();
    let mut errors = 0u64;
    let mut error = String::new();
    while let Some(r) = tasks.join_next().await {
        finished.push(r?);
    }
    for o in finished {
        latencies.extend(o.latencies_us);
        if let Some(e) = o.error {
            errors += 1;
            if error.is_empty() {
                error = e;
            }
        }
    }
    latencies.sort_unstable();
    let pct = |p: f64| -> Option<f64> {
        if latencies.is_empty() {
            return None;
        }
        let i = ((latencies.len() - 1) as f64 * p).round() as usize;
        Some(f64::from(latencies[i]) / 1000.0)
    };
    let acknowledged = shared.acknowledged.load(Ordering::Relaxed);
    Ok(json!({
        "protocol": spec.protocol.as_str(),
        "devices": spec.devices,
        "reports_per_batch": spec.batch,
        "rate_total_requested": spec.rate_total,
        "connect_and_login_seconds": connect_seconds,
        "seconds": seconds,
        "observations_acknowledged": acknowledged,
        "observations_refused": shared.refused.load(Ordering::Relaxed),
        "observations_per_second": acknowledged as f64 / seconds.max(1e-9),
        // Acknowledged during the window whenever sent: the same rate without the edges.
        "observations_per_second_acknowledged_in_window": in_window_all as f64 / seconds.max(1e-9),
        "batches": shared.batches.load(Ordering::Relaxed),
        "ack_ms_p50": pct(0.50),
        "ack_ms_p99": pct(0.99),
        "ack_ms_max": pct(1.0),
        "devices_exhausted": shared.exhausted.load(Ordering::Relaxed),
        // CPU time of this process (the generator) per second of the window.
        "fleet_cpu_cores": fleet_cores,
        "device_errors": errors,
        "first_device_error": error,
    }))
}

/// CPU time (user and system) this process has used, in seconds: fields 14 and 15 of
/// `/proc/self/stat`, in clock ticks of 1/100 s (Linux's `USER_HZ` on every common
/// platform). 0 where there is no /proc.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The command name (field 2) is in parentheses and may hold spaces.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // `rest` starts at field 3, so fields 14 and 15 are at 11 and 12.
    (ticks(11) + ticks(12)) / 100.0
}

#[allow(clippy::too_many_arguments)]
async fn device(
    spec: &Spec,
    fleet: &Fleet,
    i: usize,
    shared: &Shared,
    gate: Arc<Semaphore>,
    mut go: watch::Receiver<Option<Instant>>,
    mut close: watch::Receiver<bool>,
    interval: Option<Duration>,
    outcome: &mut Outcome,
) -> Result<()> {
    let id = fleet.device_id(i);
    let mut link = {
        let _permit = gate.acquire().await?;
        let login = async {
            let stream = TcpStream::connect(spec.target)
                .await
                .with_context(|| format!("connecting to {}", spec.target))?;
            stream.set_nodelay(true)?;
            match spec.protocol {
                Protocol::Jt808 => Link::jt808(stream, &id).await,
                Protocol::Native => {
                    let platform = spec.platform.context("no platform keys")?;
                    Link::native(stream, device_keys(&id, i)?, platform).await
                }
                Protocol::Http => bail!("HTTP has no device fleet"),
            }
        };
        match tokio::time::timeout(Duration::from_secs(120), login).await {
            Ok(Ok(link)) => link,
            Ok(Err(e)) => {
                shared.login_failures.fetch_add(1, Ordering::Relaxed);
                return Err(e.context(format!("device {id}: login")));
            }
            Err(_) => {
                shared.login_failures.fetch_add(1, Ordering::Relaxed);
                bail!("device {id}: no login within two minutes");
            }
        }
    };
    shared.logged_in.fetch_add(1, Ordering::Relaxed);
    let start = loop {
        if let Some(s) = *go.borrow() {
            break s;
        }
        go.changed().await?;
    };
    if shared.stop.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut d = fleet.device(i as u32);
    if spec.hold {
        let p = fleet.next_point(&mut d).context("no report to make")?;
        let (ok, refused) = link.send_and_wait(&[p]).await?;
        shared.refused.fetch_add(refused as u64, Ordering::Relaxed);
        shared
            .acknowledged_in_all
            .fetch_add(ok as u64, Ordering::Relaxed);
        let _ = close.wait_for(|c| *c).await;
        return Ok(());
    }
    // Devices start spread over one interval, not all at once.
    let mut next = interval.map(|iv| start + iv.mul_f64((i % 1000) as f64 / 1000.0));
    let mut points = Vec::with_capacity(spec.batch);
    while !shared.stop.load(Ordering::Relaxed) {
        if let Some(at) = next {
            tokio::time::sleep_until(at.into()).await;
            next = Some(at + interval.unwrap_or_default());
            if shared.stop.load(Ordering::Relaxed) {
                break;
            }
        }
        points.clear();
        while points.len() < spec.batch {
            match fleet.next_point(&mut d) {
                Some(p) => points.push(p),
                None => break,
            }
        }
        if points.is_empty() {
            shared.exhausted.fetch_add(1, Ordering::Relaxed);
            break;
        }
        let measuring = shared.measuring.load(Ordering::Relaxed);
        let sent = Instant::now();
        let answer = tokio::select! {
            a = link.send_and_wait(&points) => a?,
            // Stopped while waiting: what is in flight is not counted.
            _ = close.wait_for(|c| *c) => break,
        };
        let took = sent.elapsed();
        let (ok, refused) = answer;
        shared
            .acknowledged_in_all
            .fetch_add(ok as u64, Ordering::Relaxed);
        if measuring && shared.measuring.load(Ordering::Relaxed) {
            shared.acknowledged.fetch_add(ok as u64, Ordering::Relaxed);
            shared.refused.fetch_add(refused as u64, Ordering::Relaxed);
            shared.batches.fetch_add(1, Ordering::Relaxed);
            outcome
                .latencies_us
                .push(took.as_micros().min(u128::from(u32::MAX)) as u32);
        }
    }
    Ok(())
}

/// A device's logged-in connection.
enum Link {
    Jt808(Box<emulator::Jt808Device>),
    Native(Box<NativeLink>),
}

impl Link {
    async fn jt808(stream: TcpStream, id: &str) -> Result<Link> {
        let d = emulator::Jt808Device::on(stream, id).await?;
        Ok(Link::Jt808(Box::new(d)))
    }

    async fn native(stream: TcpStream, keys: DeviceKeys, platform: PublicKeys) -> Result<Link> {
        let mut l = NativeLink {
            stream,
            device: sealproto::Device::new(keys, platform),
            buf: vec![0; 4096],
        };
        l.login().await?;
        Ok(Link::Native(Box::new(l)))
    }

    /// Sends `points` as one batch and waits for its acknowledgement: how many were accepted
    /// and how many answered with a failure.
    async fn send_and_wait(&mut self, points: &[Point]) -> Result<(usize, usize)> {
        match self {
            Link::Jt808(l) => {
                let readings: Vec<Reading> = points.iter().map(reading).collect();
                let ack = l.report(&readings).await?;
                Ok((ack.accepted, ack.refused))
            }
            Link::Native(l) => l.report(points).await,
        }
    }
}

struct NativeLink {
    stream: TcpStream,
    device: sealproto::Device,
    buf: Vec<u8>,
}

impl NativeLink {
    async fn flush(&mut self) -> Result<()> {
        let out = self.device.take_outgoing();
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// Reads once; what the device made of it.
    async fn read(&mut self) -> Result<Vec<DeviceOutput>> {
        let n = self.stream.read(&mut self.buf).await?;
        if n == 0 {
            bail!("the gateway closed the connection");
        }
        let now = server::wall_clock();
        let mut outputs = Vec::new();
        for r in self.device.receive(now, &self.buf[..n]) {
            outputs.push(r.map_err(|e| anyhow::anyhow!("from the gateway: {e}"))?);
        }
        Ok(outputs)
    }

    async fn login(&mut self) -> Result<()> {
        let mut random = [0u8; 64];
        getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        self.device.connect(Entropy::from_bytes(random));
        self.flush().await?;
        while !self.device.is_connected() {
            self.read().await?;
        }
        Ok(())
    }

    async fn report(&mut self, points: &[Point]) -> Result<(usize, usize)> {
        // One batch record for the lot, as a device sends the positions it stored (up to 64
        // per record; more, or longer reports, take several records).
        let seqs = self
            .device
            .report_many(points.iter().map(reading))
            .map_err(|e| anyhow::anyhow!("report: {e}"))?;
        let last = seqs.end.saturating_sub(1);
        self.flush().await?;
        // Acknowledgements are cumulative; a refusal by the pipeline is acknowledged too (it
        // is final), so every acknowledged report counts.
        loop {
            for o in self.read().await? {
                if let DeviceOutput::Acknowledged { seq, .. } = o
                    && seq >= last
                {
                    return Ok((points.len(), 0));
                }
            }
        }
    }
}

fn reading(p: &Point) -> Reading {
    let mut r = Reading::empty(Timestamp::from_unix_ms(p.t_ms));
    r.lat = Some(p.lat);
    r.lon = Some(p.lon);
    r.fix = Some(true);
    r.accuracy_m = Some(p.accuracy_m);
    r.speed_kmh = Some(p.speed_kmh);
    r.battery_pct = Some(p.battery_pct);
    r.lock = Some(if p.kind == Kind::Opening {
        LockState::Unlocked
    } else {
        LockState::Locked
    });
    if p.kind == Kind::WrongPassword {
        r.events.insert(DeviceEvent::WrongPassword);
    }
    r
}
