//! `--protocol jt808|native`: the runs of a TCP device fleet. Three roles of the one binary:
//!
//! - **In process** (the default): the service and the gateway run here, on SQLite in a
//!   temporary directory; the setup goes through the HTTP API as for the HTTP benchmark; the
//!   fleet is a child process (this binary with `--fleet-child`), whose figures come back as
//!   one JSON line on its standard output. The gateway's own counters and this process's
//!   resident memory are added.
//! - **Against a running service** (`--target`, with `--api` for the setup): the fleet runs
//!   here.
//! - **The child** (`--fleet-child`): the fleet only.

use std::io::{BufRead, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::fleet::{Fleet, Ids, Shape};
use crate::http::Conn;
use crate::tcp::{self, Protocol};
use crate::{Args, declare, expect, resident_bytes};

pub fn run_tcp(args: &Args) -> Result<()> {
    ensure!(args.devices > 0, "--devices must be at least 1");
    ensure!(args.batch_reports > 0, "--batch-reports must be at least 1");
    ensure!(args.rate >= 0.0, "--rate must be 0 or more");
    ensure!(
        args.zones >= 2 && args.routes > 0,
        "--zones 2 or more, --routes 1 or more"
    );
    let now = server::wall_clock().unix_ms();
    let t0_ms = args.t0_ms.unwrap_or(now - now % 1000 - 2 * 3_600_000);
    let fleet = Arc::new(Fleet::new(Shape {
        transits: args.devices,
        zones: args.zones,
        routes: args.routes,
        violations: args.violations,
        t0_ms,
        // A JT/T 808 terminal is named by its phone number.
        ids: match args.protocol {
            Protocol::Jt808 => Ids::Phone,
            _ => Ids::Letter,
        },
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.fleet_child {
        let target = args.target.context("--fleet-child needs --target")?;
        check_fd_limit(args.devices, "the fleet")?;
        let platform = args
            .platform_public
            .as_deref()
            .map(tcp::parse_public_hex)
            .transpose()?;
        let spec = spec(args, target, platform);
        let figures = runtime.block_on(tcp::run(spec, fleet, print_ready, stdin_line()))?;
        println!("result {figures}");
        return Ok(());
    }
    let figures = match args.target {
        Some(target) => {
            check_fd_limit(args.devices, "the fleet")?;
            let platform = args
                .platform_public
                .as_deref()
                .map(tcp::parse_public_hex)
                .transpose()?;
            runtime.block_on(async {
                if !args.no_setup {
                    let api = args.api.context(
                        "--target needs --api (the service's HTTP address) for the setup, or --no-setup",
                    )?;
                    setup(api, &fleet, args).await?;
                }
                // Held connections are released by a line on standard input.
                let hold = args.hold;
                let ready = move |v: &Value| {
                    if hold {
                        print_ready(v)
                    }
                };
                let figures =
                    tcp::run(spec(args, target, platform), fleet, ready, stdin_line()).await?;
                anyhow::Ok(json!({ "fleet": figures }))
            })?
        }
        None => runtime.block_on(in_process(args, t0_ms, fleet))?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print_table(&figures);
    }
    Ok(())
}

/// Says on standard output that the fleet is logged in (held: and reported), with figures.
fn print_ready(ready: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready {ready}");
    let _ = out.flush();
}

/// Resolves on a line on standard input, or its end.
async fn stdin_line() {
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    })
    .await;
}

fn spec(args: &Args, target: SocketAddr, platform: Option<sealproto::PublicKeys>) -> tcp::Spec {
    tcp::Spec {
        protocol: args.protocol,
        target,
        devices: args.devices,
        rate_total: args.rate,
        batch: args.batch_reports,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        connecting: args.connecting,
        platform,
        hold: args.hold,
    }
}

/// Zones, then every device registered with its sealed transit (and native keys).
async fn setup(api: SocketAddr, fleet: &Arc<Fleet>, args: &Args) -> Result<()> {
    let mut conn = Conn::connect(api).await?;
    for z in 0..args.zones {
        expect(
            conn.request("POST", "/api/v1/zones", fleet.zone_json(z).as_bytes())
                .await?,
            204,
            "zone",
        )?;
    }
    declare(
        api,
        fleet,
        0..args.devices,
        args.setup_connections,
        &mut conn,
        args.protocol == Protocol::Native,
    )
    .await
}

/// Raises the soft limit on open files to the hard limit, which must then hold `devices`
/// sockets and some (`ulimit -Hn`; raising the hard limit takes privileges).
fn check_fd_limit(devices: usize, what: &str) -> Result<()> {
    // Where this fails the check below says what is wrong.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return Ok(());
    };
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(soft) = soft
        && soft < devices + 256
    {
        bail!(
            "{what} needs {} open files for {devices} connections, and the limit is {soft} (the hard limit, `ulimit -Hn`, bounds it)",
            devices + 256
        );
    }
    Ok(())
}

/// The service and the gateway here, the fleet in a child process.
async fn in_process(args: &Args, t0_ms: i64, fleet: Arc<Fleet>) -> Result<Value> {
    check_fd_limit(args.devices, "the service")?;
    let own_dir = args.data_dir.is_none();
    let data_dir: PathBuf = args.data_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("sealwatch-loadgen-tcp-{}", std::process::id()))
    });
    std::fs::create_dir_all(&data_dir)?;
    for f in ["sealwatch.db", "sealwatch.db-wal", "sealwatch.db-shm"] {
        let _ = std::fs::remove_file(data_dir.join(f));
    }
    let config = server::Config::new(SocketAddr::from(([127, 0, 0, 1], 0)), data_dir.clone());
    let running = server::start(config)
        .await
        .context("starting the service")?;
    let listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let max_connections = args.devices + 100;
    let (target, platform_public, stats): (SocketAddr, Option<String>, Gateway) =
        match args.protocol {
            Protocol::Jt808 => {
                let mut config = gateway::Config::new(listen);
                config.max_connections = max_connections;
                let g = gateway::Gateway::start(config, running.ingest.clone()).await?;
                (g.addr(), None, Gateway::Jt808(g))
            }
            Protocol::Native => {
                let mut secrets = [0u8; 64];
                getrandom::fill(&mut secrets).map_err(|e| anyhow::anyhow!("randomness: {e}"))?;
                let mut signing = [0u8; 32];
                let mut agreement = [0u8; 32];
                signing.copy_from_slice(&secrets[..32]);
                agreement.copy_from_slice(&secrets[32..]);
                let keys = sealproto::PlatformKeys::from_secrets(signing, agreement);
                let public = tcp::public_hex(&keys.public());
                let mut config = gateway::NativeConfig::new(listen, keys);
                config.max_connections = max_connections;
                let g = gateway::NativeGateway::start(config, running.ingest.clone()).await?;
                (g.addr(), Some(public), Gateway::Native(g))
            }
            Protocol::Http => bail!("not a TCP protocol"),
        };

    let setup_started = Instant::now();
    setup(running.addr, &fleet, args).await?;
    let setup_seconds = setup_started.elapsed().as_secs_f64();
    let rss_before = resident_bytes()?;

    let exe = std::env::current_exe().context("this program's path")?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("--fleet-child")
        .args(["--protocol", args.protocol.as_str()])
        .args(["--target", &target.to_string()])
        .args(["--devices", &args.devices.to_string()])
        .args(["--rate", &args.rate.to_string()])
        .args(["--batch-reports", &args.batch_reports.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--duration", &args.duration.to_string()])
        .args(["--zones", &args.zones.to_string()])
        .args(["--routes", &args.routes.to_string()])
        .args(["--violations", &args.violations.to_string()])
        .args(["--connecting", &args.connecting.to_string()])
        .args(["--t0-ms", &t0_ms.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    if let Some(p) = &platform_public {
        command.args(["--platform-public", p]);
    }
    let mut child = command.spawn().context("starting the fleet process")?;
    let stdout = child.stdout.take().context("the fleet's output")?;
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::task::spawn_blocking(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
        child.wait()
    });
    let before = stats.fields();
    let (mut rss_connected, mut open_connected, mut figures) = (0, 0, None);
    let mut cpu_from = (Instant::now(), tcp::cpu_seconds());
    let mut service_cores = None;
    while let Some(line) = lines.recv().await {
        if line.starts_with("ready ") {
            rss_connected = resident_bytes()?;
            open_connected = stats.open();
            cpu_from = (Instant::now(), tcp::cpu_seconds());
        } else if let Some(json) = line.strip_prefix("result ") {
            figures = Some(serde_json::from_str::<Value>(json)?);
            service_cores = Some(
                (tcp::cpu_seconds() - cpu_from.1) / cpu_from.0.elapsed().as_secs_f64().max(1e-9),
            );
        }
    }
    let status = reader.await??;
    ensure!(status.success(), "the fleet process failed: {status}");
    let figures = figures.context("the fleet process gave no figures")?;
    let after = stats.fields();
    let rss_after = resident_bytes()?;
    let delta: serde_json::Map<String, Value> = after
        .iter()
        .map(|(name, v)| {
            let was = before
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, w)| *w);
            let v = if *name == "connections_open" {
                *v
            } else {
                v - was
            };
            ((*name).to_owned(), json!(v))
        })
        .collect();
    stats.stop().await;
    running.stop().await.context("stopping the service")?;
    if own_dir {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    Ok(json!({
        "setup_seconds": setup_seconds,
        "fleet": figures,
        // CPU time of the service's process per second, from every device logged in to the
        // fleet's end (warm-up included).
        "service_cpu_cores": service_cores,
        "gateway": {
            "connections_open_when_logged_in": open_connected,
            "counters_during_the_run": delta,
        },
        "service_memory": {
            "rss_before_connections": rss_before,
            "rss_all_connected": rss_connected,
            "rss_after": rss_after,
            "bytes_per_connection": rss_connected.saturating_sub(rss_before) / args.devices as u64,
        },
    }))
}

/// Either gateway, for its counters.
enum Gateway {
    Jt808(gateway::Gateway),
    Native(gateway::NativeGateway),
}

impl Gateway {
    fn fields(&self) -> Vec<(&'static str, u64)> {
        match self {
            Gateway::Jt808(g) => g.stats().fields(),
            Gateway::Native(g) => g.stats().fields(),
        }
    }

    fn open(&self) -> u64 {
        self.fields()
            .into_iter()
            .find(|(n, _)| *n == "connections_open")
            .map_or(0, |(_, v)| v)
    }

    async fn stop(self) {
        match self {
            Gateway::Jt808(g) => g.stop().await,
            Gateway::Native(g) => g.stop().await,
        }
    }
}

fn print_table(r: &Value) {
    let f = &r["fleet"];
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    println!(
        "sealwatch-loadgen: {} · {} devices, each its own TCP connection · {} reports per batch, one batch in flight per device",
        f["protocol"].as_str().unwrap_or("?"),
        f["devices"],
        f["reports_per_batch"]
    );
    println!();
    println!("| | |");
    println!("|---|---|");
    if r["setup_seconds"].is_number() {
        println!(
            "| setup (register, declare, seal) | {:.1} s |",
            num(&r["setup_seconds"])
        );
    }
    println!(
        "| connect and log in, all devices | {:.1} s |",
        num(&f["connect_and_login_seconds"])
    );
    println!(
        "| observations acknowledged | {} in {:.1} s ({} refused) |",
        f["observations_acknowledged"],
        num(&f["seconds"]),
        f["observations_refused"]
    );
    println!(
        "| **observations/s** | **{:.0}** |",
        num(&f["observations_per_second"])
    );
    println!(
        "| **send → acknowledgement p50 / p99** | **{:.1} / {:.1} ms** |",
        num(&f["ack_ms_p50"]),
        num(&f["ack_ms_p99"])
    );
    if r["service_cpu_cores"].is_number() {
        println!(
            "| CPU: service / fleet (cores busy, of 2) | {:.2} / {:.2} |",
            num(&r["service_cpu_cores"]),
            num(&f["fleet_cpu_cores"])
        );
    }
    if let Some(m) = r["service_memory"].as_object() {
        println!(
            "| service memory per connection | {:.1} KiB |",
            m["bytes_per_connection"].as_f64().unwrap_or(f64::NAN) / 1024.0
        );
    }
    if f["device_errors"].as_u64().unwrap_or(0) > 0 {
        println!(
            "| device errors | {} (first: {}) |",
            f["device_errors"], f["first_device_error"]
        );
    }
    if f["devices_exhausted"].as_u64().unwrap_or(0) > 0 {
        println!(
            "| devices out of reports before the end | {} |",
            f["devices_exhausted"]
        );
    }
}
