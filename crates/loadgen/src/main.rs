//! `sealwatch-loadgen`: sustained ingest through the HTTP API with the supervisor running on
//! many active transits, against SQLite or PostgreSQL, beside a baseline of plain inserts of
//! the same rows with the same driver (docs/benchmarks.md).
//!
//! With `--protocol jt808|native`, a fleet of devices instead, each on its own TCP connection
//! to a device gateway (tcp.rs; `run_tcp` below): against a running service (`--target`), or
//! by default with the service and the gateway in this process and the fleet in a child
//! process (this binary again), since both ends of 10,000 connections do not fit in one
//! process's file descriptors.
//!
//! One process: the service runs in it (`server::start`), so the accept-to-alarm latency is
//! read off the service's own live bus (`Running::live`) with one clock, and resident memory
//! is the whole service's. The load generator's own work (making reports, reading answers)
//! runs on the same two cores: the figure is what one machine does, generator included.

mod baseline;
mod fleet;
mod http;
mod tcp;
mod tcp_run;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use serde_json::{Value, json};

use fleet::{Fleet, Ids, Kind, Shape};
use http::Conn;
use tcp::Protocol;

#[derive(Debug, Parser)]
#[command(
    name = "sealwatch-loadgen",
    about = "Sustained HTTP ingest into sealwatch: observations/s, accept-to-alarm latency and memory per active transit, with a plain-insert baseline"
)]
struct Args {
    /// Active transits (each with its own device).
    #[arg(long, default_value_t = 10_000)]
    transits: usize,
    /// Zones (departures, destinations, permitted stops).
    #[arg(long, default_value_t = 300)]
    zones: usize,
    /// Corridors the transits share (200 points, about 300 km each).
    #[arg(long, default_value_t = 100)]
    routes: usize,
    /// Concurrent keep-alive connections posting observations.
    #[arg(long, short = 'c', default_value_t = 8)]
    connections: usize,
    /// Observations per request.
    #[arg(long, short = 'b', default_value_t = 500)]
    batch: usize,
    /// Measured seconds of sustained ingest (after the warm-up).
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Seconds of ingest before measuring (every vehicle departs in them).
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Stop after sending this many observations in all, whatever the time.
    #[arg(long, default_value_t = 6_000_000)]
    max_observations: u64,
    /// Share of reports that start a violation (lock opened, wrong password, corridor left).
    #[arg(long, default_value_t = 0.005)]
    violations: f64,
    /// PostgreSQL instead of SQLite (`postgres://user@host:port/db`).
    #[arg(long)]
    database_url: Option<String>,
    /// With `--database-url`: the schema the run works in, dropped first so runs repeat.
    #[arg(long, default_value = "sealwatch_loadgen")]
    schema: String,
    /// Where the SQLite file goes (a fresh directory under the system's temp dir by default,
    /// removed afterwards). The database in it is replaced.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Concurrent connections declaring transits during setup.
    #[arg(long, default_value_t = 16)]
    setup_connections: usize,
    /// Rows per baseline transaction (default: the pipeline's mean group commit).
    #[arg(long)]
    baseline_tx_rows: Option<usize>,
    /// Skip the baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// `http`: the ingest benchmark above. `jt808` or `native`: a fleet of `--devices`
    /// devices, each on its own TCP connection to the gateway of that protocol.
    #[arg(long, value_enum, default_value = "http")]
    protocol: Protocol,
    /// TCP fleet: devices, each registered, with an active sealed transit (and for `native`
    /// its keys provisioned), on its own connection.
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// TCP fleet: observations per second for the whole fleet, spread evenly over the devices;
    /// 0 sends each device's next batch as soon as the last is acknowledged.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// TCP fleet: reports per batch: locations per 0x0704 frame (a plain 0x0200 when 1), or
    /// reports per native report batch record (a plain report record when 1; above 32, more
    /// than one record). Each device has one batch in flight.
    #[arg(long, default_value_t = 10)]
    batch_reports: usize,
    /// TCP fleet against a running service: its gateway's address. Without it, the service
    /// and the gateway run in this process (SQLite in a temporary directory) and the fleet in
    /// a child process.
    #[arg(long)]
    target: Option<SocketAddr>,
    /// With `--target`: the service's HTTP address, for the setup (zones, devices, transits,
    /// keys). The API must not require a token.
    #[arg(long)]
    api: Option<SocketAddr>,
    /// With `--target` and `native`: the platform's public keys, `SIGNING_HEX:AGREEMENT_HEX`
    /// (`sealwatch serve` prints them).
    #[arg(long)]
    platform_public: Option<String>,
    /// With `--target`: the setup was done by an earlier run.
    #[arg(long)]
    no_setup: bool,
    /// TCP fleet: connections being opened and logged in at once.
    #[arg(long, default_value_t = 256)]
    connecting: usize,
    /// Internal: be the fleet only (the child process of a run with the service in process).
    #[arg(long, hide = true)]
    fleet_child: bool,
    /// Internal: the fleet's first report time (ms), as the parent set it up.
    #[arg(long, hide = true)]
    t0_ms: Option<i64>,
    /// Internal: each device reports once, then all hold their connections until a line
    /// comes on standard input (the connection test).
    #[arg(long, hide = true)]
    hold: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.protocol != Protocol::Http {
        return tcp_run::run_tcp(&args);
    }
    ensure!(args.transits > 0, "--transits must be at least 1");
    ensure!(args.zones >= 2, "--zones must be at least 2");
    ensure!(args.routes > 0, "--routes must be at least 1");
    ensure!(
        args.connections > 0 && args.connections <= args.transits,
        "--connections must be 1 to --transits"
    );
    ensure!(args.batch > 0, "--batch must be at least 1");
    ensure!(
        (0.0..=1.0).contains(&args.violations),
        "--violations is a share, 0 to 1"
    );
    ensure!(
        args.duration > 0.0 && args.warmup >= 0.0,
        "--duration must be positive"
    );
    ensure!(
        args.schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "--schema must be letters, digits and '_'"
    );

    // A fresh store, so that runs repeat.
    let own_dir = args.data_dir.is_none();
    let data_dir = args.data_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("sealwatch-loadgen-{}", std::process::id()))
    });
    match &args.database_url {
        Some(url) => {
            let mut client = postgres::Client::connect(url, postgres::NoTls)
                .context("connecting to PostgreSQL")?;
            client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", args.schema))?;
        }
        None => {
            std::fs::create_dir_all(&data_dir)?;
            for f in ["sealwatch.db", "sealwatch.db-wal", "sealwatch.db-shm"] {
                let _ = std::fs::remove_file(data_dir.join(f));
            }
        }
    }

    let now = server::wall_clock().unix_ms();
    let fleet = Arc::new(Fleet::new(Shape {
        transits: args.transits,
        zones: args.zones,
        routes: args.routes,
        violations: args.violations,
        // Reports from two hours ago on, ten seconds apart per device: a device's 700th report
        // is still in the past.
        t0_ms: now - now % 1000 - 2 * 3_600_000,
        ids: Ids::Letter,
    }));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let run = runtime.block_on(ingest(&args, fleet.clone(), data_dir.clone()))?;
    drop(runtime);

    let baseline = if args.no_baseline || run.accepted == 0 {
        None
    } else {
        let rows_per_tx = args
            .baseline_tx_rows
            .unwrap_or(run.mean_commit.round() as usize)
            .max(1);
        let db = data_dir.join("sealwatch.db");
        let target = match &args.database_url {
            Some(url) => baseline::Target::Postgres {
                url,
                schema: &args.schema,
            },
            None => baseline::Target::Sqlite(&db),
        };
        Some(baseline::run(
            &target,
            &fleet,
            run.accepted,
            rows_per_tx,
            Duration::from_secs_f64(args.duration),
        )?)
    };
    if own_dir && args.database_url.is_none() {
        let _ = std::fs::remove_dir_all(&data_dir);
    }

    let report = report(&args, &run, baseline.as_ref());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// What the ingest phase measured.
#[derive(Debug, Default)]
struct Run {
    backend: &'static str,
    setup_seconds: f64,
    rss_before: u64,
    rss_half: u64,
    rss_setup: u64,
    rss_ingest: u64,
    /// Accepted in the measured window, and the window.
    accepted: u64,
    seconds: f64,
    not_accepted: u64,
    requests: u64,
    commits: u64,
    mean_commit: f64,
    request_latency: Vec<Duration>,
    /// Violating reports sent in the window, alarms received, and those matched to the report
    /// that raised them.
    violations_sent: u64,
    alarms: u64,
    alarms_by_kind: HashMap<String, u64>,
    alarm_latency: Vec<Duration>,
    unmatched_alarms: u64,
    lagged: u64,
    total_sent: u64,
}

/// What every ingest connection shares.
#[derive(Debug, Default)]
struct Shared {
    /// Observations handed out (to stop at `--max-observations`).
    sent: AtomicU64,
    measuring: AtomicBool,
    stop: AtomicBool,
    accepted: AtomicU64,
    not_accepted: AtomicU64,
    requests: AtomicU64,
    violations: AtomicU64,
    /// When each violating report was sent, by (device, report time).
    sent_at: Mutex<HashMap<(u32, i64), Instant>>,
}

async fn ingest(args: &Args, fleet: Arc<Fleet>, data_dir: PathBuf) -> Result<Run> {
    let mut config = server::Config::new(SocketAddr::from(([127, 0, 0, 1], 0)), data_dir);
    config.database_url = args.database_url.clone();
    if args.database_url.is_some() {
        config.database_schema = Some(args.schema.clone());
    }
    let running = server::start(config)
        .await
        .context("starting the service")?;
    let addr = running.addr;
    let mut run = Run {
        backend: if args.database_url.is_some() {
            "postgresql"
        } else {
            "sqlite"
        },
        ..Run::default()
    };

    // Setup: zones, then the transits (one per request, many requests at once).
    let setup = Instant::now();
    let mut conn = Conn::connect(addr).await?;
    for z in 0..args.zones {
        expect(
            conn.request("POST", "/api/v1/zones", fleet.zone_json(z).as_bytes())
                .await?,
            204,
            "zone",
        )?;
    }
    run.rss_before = resident_bytes()?;
    // In two halves: the growth over the second half is the marginal cost of a transit, free
    // of what fills once (caches, buffers, the live bus's ring).
    let half = args.transits / 2;
    declare(
        addr,
        &fleet,
        0..half,
        args.setup_connections,
        &mut conn,
        false,
    )
    .await?;
    run.rss_half = resident_bytes()?;
    declare(
        addr,
        &fleet,
        half..args.transits,
        args.setup_connections,
        &mut conn,
        false,
    )
    .await?;
    run.setup_seconds = setup.elapsed().as_secs_f64();
    run.rss_setup = resident_bytes()?;

    // Alarms, off the live bus.
    let shared = Arc::new(Shared::default());
    let mut live = running.live.subscribe();
    let listener = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut alarms = 0u64;
            let mut by_kind: HashMap<String, u64> = HashMap::new();
            let mut latency = Vec::new();
            let (mut unmatched, mut lagged) = (0u64, 0u64);
            loop {
                // Once the generator has stopped, the bus going quiet ends the listening.
                let p = match tokio::time::timeout(Duration::from_millis(300), live.recv()).await {
                    Ok(Ok(p)) => p,
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => {
                        lagged += n;
                        continue;
                    }
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => break,
                    Err(_) if shared.stop.load(Ordering::Relaxed) => break,
                    Err(_) => continue,
                };
                let received = Instant::now();
                let Some(server::Output::Alarm(a)) = p.output else {
                    continue;
                };
                if !shared.measuring.load(Ordering::Relaxed) {
                    continue;
                }
                alarms += 1;
                *by_kind.entry(a.kind.as_str().to_owned()).or_default() += 1;
                // The report that raised it is the last one sent among its evidence.
                let sent = {
                    let map = shared.sent_at.lock().expect("not poisoned");
                    a.evidence
                        .iter()
                        .filter_map(|e| match e {
                            model::Evidence::Observation(o) => {
                                let i = o.device.as_str().strip_prefix('D')?.parse().ok()?;
                                map.get(&(i, o.t.unix_ms())).copied()
                            }
                            model::Evidence::Read(_) => None,
                        })
                        .max()
                };
                match sent {
                    Some(s) => latency.push(received - s),
                    None => unmatched += 1,
                }
            }
            (alarms, by_kind, latency, unmatched, lagged)
        })
    };

    // Sustained ingest: each connection reports for its own devices, so each device's reports
    // arrive in order.
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..args.connections {
        let devices: Vec<fleet::Device> = (c..args.transits)
            .step_by(args.connections)
            .map(|i| fleet.device(i as u32))
            .collect();
        let (fleet, shared) = (fleet.clone(), shared.clone());
        let (batch, max) = (args.batch, args.max_observations);
        tasks.spawn(async move { drive(addr, &fleet, devices, batch, max, &shared).await });
    }
    let start = Instant::now();
    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);
    let mut window: Option<(Instant, (u64, u64))> = None;
    let mut results = Vec::new();
    let end = loop {
        tokio::select! {
            done = tasks.join_next() => match done {
                Some(r) => results.push(r?),
                None => break Instant::now(),
            },
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        if window.is_none() && start.elapsed() >= warmup {
            let at_start = metrics(&mut conn).await?;
            shared.measuring.store(true, Ordering::Relaxed);
            window = Some((Instant::now(), at_start));
        }
        if let Some((from, _)) = window
            && from.elapsed() >= duration
        {
            break Instant::now();
        }
    };
    shared.measuring.store(false, Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    while let Some(r) = tasks.join_next().await {
        results.push(r?);
    }
    let Some((from, (commits0, accepted0))) = window else {
        bail!("the run ended during the warm-up: raise --max-observations or lower --warmup");
    };
    let (commits1, accepted1) = metrics(&mut conn).await?;
    run.seconds = (end - from).as_secs_f64();
    run.commits = commits1 - commits0;
    run.mean_commit = (accepted1 - accepted0) as f64 / run.commits.max(1) as f64;
    for r in results {
        let latencies = r?;
        run.request_latency.extend(latencies);
    }
    run.accepted = shared.accepted.load(Ordering::Relaxed);
    run.not_accepted = shared.not_accepted.load(Ordering::Relaxed);
    run.requests = shared.requests.load(Ordering::Relaxed);
    run.violations_sent = shared.violations.load(Ordering::Relaxed);
    run.total_sent = shared.sent.load(Ordering::Relaxed);
    run.rss_ingest = resident_bytes()?;

    // Every alarm of an answered request was published before the answer.
    let (alarms, by_kind, latency, unmatched, lagged) = listener.await?;
    drop(conn);
    running.stop().await.context("stopping the service")?;
    run.alarms = alarms;
    run.alarms_by_kind = by_kind;
    run.alarm_latency = latency;
    run.unmatched_alarms = unmatched;
    run.lagged = lagged;
    Ok(run)
}

/// Declares transits `range` over `connections` connections at once, and waits until they are
/// all sealed (on the service's clock, at its next tick).
async fn declare(
    addr: SocketAddr,
    fleet: &Arc<Fleet>,
    range: std::ops::Range<usize>,
    connections: usize,
    conn: &mut Conn,
    native_keys: bool,
) -> Result<()> {
    let mut declaring = tokio::task::JoinSet::new();
    for c in 0..connections.min(range.len()) {
        let (fleet, range) = (fleet.clone(), range.clone());
        declaring.spawn(async move {
            let mut conn = Conn::connect(addr).await?;
            for i in range.skip(c).step_by(connections) {
                // Registered, as a deployment's devices are: each commit then keeps its last
                // report, battery and position.
                let id = fleet.device_id(i);
                let device = format!(r#"{{"id":"{id}","kind":"active","state":"sealed"}}"#);
                expect(
                    conn.request("POST", "/api/v1/devices", device.as_bytes())
                        .await?,
                    200,
                    "device",
                )?;
                if native_keys {
                    let public = tcp::device_keys(&id, i)?.public();
                    let body = json!({
                        "signing_public": sealproto::to_hex(&public.signing.to_bytes()),
                        "agreement_public": sealproto::to_hex(&public.agreement.to_bytes()),
                    })
                    .to_string();
                    let path = format!("/api/v1/devices/{id}/keys");
                    expect(
                        conn.request("PUT", &path, body.as_bytes()).await?,
                        200,
                        "device keys",
                    )?;
                }
                let body = fleet.transit_json(i);
                expect(
                    conn.request("POST", "/api/v1/transits", body.as_bytes())
                        .await?,
                    201,
                    "transit",
                )?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = declaring.join_next().await {
        r??;
    }
    let waiting = Instant::now();
    loop {
        let (status, body) = conn
            .request("GET", "/api/v1/transits?state=declared&limit=1", b"")
            .await?;
        ensure!(status == 200, "listing transits: {status}");
        let v: Value = serde_json::from_slice(&body)?;
        if v["items"].as_array().is_some_and(Vec::is_empty) {
            return Ok(());
        }
        ensure!(
            waiting.elapsed() < Duration::from_secs(60),
            "transits were not sealed within a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One connection's loop: a batch of reports, its answer, again. Returns the round-trip times
/// of the requests in the measured window.
async fn drive(
    addr: SocketAddr,
    fleet: &Fleet,
    mut devices: Vec<fleet::Device>,
    batch: usize,
    max: u64,
    shared: &Shared,
) -> Result<Vec<Duration>> {
    let mut conn = Conn::connect(addr).await?;
    let mut body = String::with_capacity(batch * 260);
    let mut violations = Vec::new();
    let mut latencies = Vec::new();
    let mut next = 0;
    let mut exhausted = false;
    while !exhausted && !shared.stop.load(Ordering::Relaxed) {
        if shared.sent.fetch_add(batch as u64, Ordering::Relaxed) >= max {
            break;
        }
        body.clear();
        body.push('[');
        violations.clear();
        let mut n = 0;
        while n < batch {
            let len = devices.len();
            let d = &mut devices[next];
            next = (next + 1) % len;
            let mark = body.len();
            if n > 0 {
                body.push(',');
            }
            match fleet.next_report(d, &mut body) {
                Some((Kind::Normal, _)) => {}
                Some((_, t)) => violations.push((d.index, t)),
                None => {
                    body.truncate(mark);
                    exhausted = true;
                    break;
                }
            }
            n += 1;
        }
        body.push(']');
        if n == 0 {
            break;
        }
        let sent = Instant::now();
        if !violations.is_empty() {
            let mut map = shared.sent_at.lock().expect("not poisoned");
            for v in &violations {
                map.insert(*v, sent);
            }
        }
        let measuring = shared.measuring.load(Ordering::Relaxed);
        let (status, answer) = conn
            .request("POST", "/api/v1/observations", body.as_bytes())
            .await?;
        let took = sent.elapsed();
        ensure!(
            status == 200,
            "observations: status {status}: {}",
            String::from_utf8_lossy(&answer)
        );
        let accepted = accepted_count(&answer)?;
        // Counted when sent and answered inside the window.
        if measuring && shared.measuring.load(Ordering::Relaxed) {
            shared.accepted.fetch_add(accepted, Ordering::Relaxed);
            shared
                .not_accepted
                .fetch_add(n as u64 - accepted, Ordering::Relaxed);
            shared.requests.fetch_add(1, Ordering::Relaxed);
            shared
                .violations
                .fetch_add(violations.len() as u64, Ordering::Relaxed);
            latencies.push(took);
        }
    }
    Ok(latencies)
}

/// The `accepted` count of an observations answer (`{"accepted": n, "results": [...]}`).
fn accepted_count(answer: &[u8]) -> Result<u64> {
    const KEY: &[u8] = b"\"accepted\":";
    let at = answer
        .windows(KEY.len())
        .position(|w| w == KEY)
        .context("no accepted count in the answer")?;
    let digits: String = answer[at + KEY.len()..]
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .map(|&b| b as char)
        .collect();
    Ok(digits.parse()?)
}

/// Group commits and accepted inputs so far, from `/metrics`.
async fn metrics(conn: &mut Conn) -> Result<(u64, u64)> {
    let (status, body) = conn.request("GET", "/metrics", b"").await?;
    ensure!(status == 200, "metrics: {status}");
    let text = String::from_utf8(body)?;
    let value = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .with_context(|| format!("{name} not in /metrics"))
    };
    Ok((
        value("sealwatch_commits_total ")?,
        value("sealwatch_inputs_total{verdict=\"accepted\"} ")?,
    ))
}

fn expect((status, body): (u16, Vec<u8>), want: u16, what: &str) -> Result<()> {
    if status != want {
        bail!(
            "{what}: status {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

/// Resident set size (`VmRSS` in /proc/self/status), in bytes.
fn resident_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")?;
    Ok(kib * 1024)
}

fn percentile(sorted: &[Duration], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    Some(sorted[i].as_secs_f64() * 1000.0)
}

fn report(args: &Args, run: &Run, baseline: Option<&baseline::Figures>) -> Value {
    let mut requests = run.request_latency.clone();
    requests.sort();
    let mut alarms = run.alarm_latency.clone();
    alarms.sort();
    let rate = run.accepted as f64 / run.seconds.max(1e-9);
    let per_transit = |rss: u64| rss.saturating_sub(run.rss_before) / args.transits as u64;
    let second_half = (args.transits - args.transits / 2).max(1) as u64;
    let marginal = run.rss_setup.saturating_sub(run.rss_half) / second_half;
    json!({
        "backend": run.backend,
        "transits": args.transits,
        "zones": args.zones,
        "routes": args.routes,
        "connections": args.connections,
        "batch": args.batch,
        "violations": args.violations,
        "setup_seconds": run.setup_seconds,
        "memory": {
            "rss_before_transits": run.rss_before,
            "rss_half_the_transits_active": run.rss_half,
            "rss_transits_active": run.rss_setup,
            "rss_after_ingest": run.rss_ingest,
            "bytes_per_transit": per_transit(run.rss_setup),
            "marginal_bytes_per_transit": marginal,
            "bytes_per_transit_after_ingest": per_transit(run.rss_ingest),
        },
        "ingest": {
            "seconds": run.seconds,
            "observations_accepted": run.accepted,
            "observations_not_accepted": run.not_accepted,
            "observations_per_second": rate,
            "requests": run.requests,
            "group_commits": run.commits,
            "mean_group_commit": run.mean_commit,
            "request_ms_p50": percentile(&requests, 0.50),
            "request_ms_p99": percentile(&requests, 0.99),
            "observations_sent_in_all": run.total_sent.min(args.max_observations),
        },
        "alarms": {
            "violating_reports": run.violations_sent,
            "raised": run.alarms,
            "by_kind": run.alarms_by_kind,
            "matched": run.alarm_latency.len(),
            "unmatched": run.unmatched_alarms,
            "live_bus_lagged": run.lagged,
            "accept_to_alarm_ms_p50": percentile(&alarms, 0.50),
            "accept_to_alarm_ms_p99": percentile(&alarms, 0.99),
        },
        "baseline": baseline.map(|b| json!({
            "rows": b.rows,
            "seconds": b.seconds,
            "rows_per_transaction": b.rows_per_tx,
            "rows_per_second": b.rate(),
            "ratio_pipeline_to_baseline": rate / b.rate(),
        })),
    })
}

fn print_table(r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let kib = |v: &Value| f(v) / 1024.0;
    let ms = |v: &Value| {
        v.as_f64()
            .map_or_else(|| "–".to_owned(), |x| format!("{x:.1} ms"))
    };
    let (m, i, a) = (&r["memory"], &r["ingest"], &r["alarms"]);
    println!(
        "sealwatch-loadgen: {} · {} active transits on {} shared corridors, {} zones · {} connections × {} observations per request",
        r["backend"].as_str().unwrap_or("?"),
        r["transits"],
        r["routes"],
        r["zones"],
        r["connections"],
        r["batch"]
    );
    println!();
    println!("| | |");
    println!("|---|---|");
    println!(
        "| setup (declare and seal) | {:.1} s |",
        f(&r["setup_seconds"])
    );
    println!(
        "| resident memory per active transit: growth / transits | {:.0} bytes ({:.2} KiB); {:.0} bytes after ingest |",
        f(&m["bytes_per_transit"]),
        kib(&m["bytes_per_transit"]),
        f(&m["bytes_per_transit_after_ingest"])
    );
    println!(
        "| resident memory per active transit: marginal (second half) | {:.0} bytes ({:.2} KiB) |",
        f(&m["marginal_bytes_per_transit"]),
        kib(&m["marginal_bytes_per_transit"]),
    );
    println!(
        "| pipeline: observations accepted | {} in {:.1} s ({} not accepted) |",
        i["observations_accepted"],
        f(&i["seconds"]),
        i["observations_not_accepted"]
    );
    println!(
        "| **pipeline: observations/s** | **{:.0}** |",
        f(&i["observations_per_second"])
    );
    println!(
        "| group commits | {} (mean {:.0} observations) |",
        i["group_commits"],
        f(&i["mean_group_commit"])
    );
    println!(
        "| request round trip p50 / p99 | {} / {} |",
        ms(&i["request_ms_p50"]),
        ms(&i["request_ms_p99"])
    );
    println!(
        "| alarms raised (matched to their report) | {} ({}) from {} violating reports |",
        a["raised"], a["matched"], a["violating_reports"]
    );
    println!(
        "| **accept → alarm p50 / p99** | **{} / {}** |",
        ms(&a["accept_to_alarm_ms_p50"]),
        ms(&a["accept_to_alarm_ms_p99"])
    );
    if let Some(b) = r["baseline"].as_object() {
        println!(
            "| baseline: plain inserts, same rows and driver | {:.0} rows/s ({} rows, {} per transaction) |",
            b["rows_per_second"].as_f64().unwrap_or(f64::NAN),
            b["rows"],
            b["rows_per_transaction"]
        );
        println!(
            "| **ratio pipeline / baseline** | **{:.2}** |",
            b["ratio_pipeline_to_baseline"].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!();
    println!("alarms by kind: {}", a["by_kind"]);
    if a["live_bus_lagged"].as_u64().unwrap_or(0) > 0 {
        println!(
            "warning: the live bus dropped {} outputs before they were read",
            a["live_bus_lagged"]
        );
    }
}
