//! `sealwatch demo`: the service on the embedded default, with a simulated fleet driven through
//! the HTTP API over a real socket, on a clock that runs `speed` times faster than the wall.
//!
//! The fleet is the bundled examples (real corridors: Yiwu → Ningbo, Minsk → Brest, Mombasa →
//! Malaba, Almaty → Khorgos, Hong Kong airport → Lok Ma Chau, Lat Krabang → Laem Chabang), each
//! run three times, staggered, with ids made unique: about sixty transits, with a few violations
//! of each kind.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use model::Timestamp;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const EXAMPLES: &[(&str, &str)] = &[
    (
        "yiwu-ningbo-clean",
        include_str!("../../../examples/yiwu-ningbo-clean.json"),
    ),
    (
        "yiwu-ningbo-smuggling",
        include_str!("../../../examples/yiwu-ningbo-smuggling.json"),
    ),
    (
        "yiwu-ningbo-illegal-opening",
        include_str!("../../../examples/yiwu-ningbo-illegal-opening.json"),
    ),
    (
        "yiwu-ningbo-cloned-seal",
        include_str!("../../../examples/yiwu-ningbo-cloned-seal.json"),
    ),
    (
        "yiwu-ningbo-reefer-temperature",
        include_str!("../../../examples/yiwu-ningbo-reefer-temperature.json"),
    ),
    (
        "yiwu-ningbo-unauthorized-action",
        include_str!("../../../examples/yiwu-ningbo-unauthorized-action.json"),
    ),
    (
        "minsk-brest-deviation",
        include_str!("../../../examples/minsk-brest-deviation.json"),
    ),
    (
        "minsk-brest-jamming",
        include_str!("../../../examples/minsk-brest-jamming.json"),
    ),
    (
        "minsk-brest-overtime-stay",
        include_str!("../../../examples/minsk-brest-overtime-stay.json"),
    ),
    (
        "minsk-brest-tamper",
        include_str!("../../../examples/minsk-brest-tamper.json"),
    ),
    (
        "mombasa-malaba-illegal-stay",
        include_str!("../../../examples/mombasa-malaba-illegal-stay.json"),
    ),
    (
        "mombasa-malaba-fuel-theft",
        include_str!("../../../examples/mombasa-malaba-fuel-theft.json"),
    ),
    (
        "mombasa-nairobi-communication-loss",
        include_str!("../../../examples/mombasa-nairobi-communication-loss.json"),
    ),
    (
        "mombasa-nairobi-journey-timeout",
        include_str!("../../../examples/mombasa-nairobi-journey-timeout.json"),
    ),
    (
        "almaty-khorgos-checkpoint-mismatch",
        include_str!("../../../examples/almaty-khorgos-checkpoint-mismatch.json"),
    ),
    (
        "almaty-khorgos-device-fault",
        include_str!("../../../examples/almaty-khorgos-device-fault.json"),
    ),
    (
        "almaty-khorgos-low-battery",
        include_str!("../../../examples/almaty-khorgos-low-battery.json"),
    ),
    (
        "hkia-lok-ma-chau-clean",
        include_str!("../../../examples/hkia-lok-ma-chau-clean.json"),
    ),
    (
        "hkia-lok-ma-chau-detour-opening",
        include_str!("../../../examples/hkia-lok-ma-chau-detour-opening.json"),
    ),
    (
        "bangkok-laem-chabang-clean",
        include_str!("../../../examples/bangkok-laem-chabang-clean.json"),
    ),
    (
        "bangkok-laem-chabang-illegal-stay",
        include_str!("../../../examples/bangkok-laem-chabang-illegal-stay.json"),
    ),
];

/// Devices in each station's stock besides those the fleet uses.
const SPARES_PER_STATION: usize = 3;

/// How far apart the rounds of examples start (simulated minutes).
const REPEAT_EVERY_MIN: i64 = 25;

#[derive(Debug)]
pub struct Options {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub speed: f64,
    /// About how many transits: whole rounds of the bundled examples, at least one.
    pub transits: usize,
}

impl Options {
    /// Rounds of the bundled examples needed for `transits` transits.
    fn rounds(&self) -> i64 {
        self.transits.div_ceil(EXAMPLES.len()).max(1) as i64
    }
}

/// Something to send at a simulated time.
enum Send {
    Observation(Value),
    Action { transit: String, body: Value },
    Read(Value),
}

/// The demo's user, whose password is printed and known: `sealwatch serve` has none such.
const DEMO_USERNAME: &str = "demo";
const DEMO_PASSWORD: &str = "demo-password-not-secret";

/// The demo's trade organisations: each transit is declared with one carrier, and some with a
/// forwarder and a consignor, so that a trade party's user sees its own transits only.
const CARRIERS: &[&str] = &["CARRIER-A", "CARRIER-B", "CARRIER-C"];
const FORWARDER: &str = "FORWARDER-A";
const CONSIGNOR: &str = "CONSIGNOR-A";
/// The patrol unit the demo's patrol user belongs to: alarms dispatched to it are its.
const PATROL_UNIT: &str = "PATROL-1";

/// One person per role of the people in the brief, all with the demo's known password, bound
/// to organisations and a station of the demo's data so that scoping shows (the web UI's
/// browser tests sign in as each). `station` is the station the site operator runs.
fn demo_people(station: &str) -> Vec<(&'static str, model::Role, Option<String>)> {
    use model::Role;
    vec![
        ("admin", Role::Administrator, None),
        ("supervisor", Role::Supervisor, None),
        ("officer", Role::Officer, None),
        ("patrol", Role::Patrol, Some(PATROL_UNIT.to_owned())),
        ("office", Role::OfficeOfficer, None),
        ("site", Role::SiteOperator, Some(station.to_owned())),
        ("carrier", Role::Carrier, Some(CARRIERS[0].to_owned())),
        ("forwarder", Role::Forwarder, Some(FORWARDER.to_owned())),
        ("consignor", Role::Consignor, Some(CONSIGNOR.to_owned())),
        ("auditor", Role::Auditor, None),
        ("partner", Role::PartnerCustoms, None),
    ]
}

pub async fn run(opts: Options) -> Result<()> {
    // A fresh database each run: the demo's fleet starts now.
    let db = opts.data_dir.join("sealwatch.db");
    for f in [
        db.clone(),
        db.with_extension("db-wal"),
        db.with_extension("db-shm"),
    ] {
        let _ = std::fs::remove_file(f);
    }
    let mut config = server::Config::new(opts.listen, opts.data_dir.clone());
    config.clock = server::Clock::fast(opts.speed);
    config.auth_required = true;
    // Demo only: its administrator signs in with the known password alone (said below).
    config.admin_totp_required = false;
    // The site operator runs the first example's departure station.
    let site_station = fleet(Timestamp::from_unix_ms(0), 1)?
        .transits
        .first()
        .and_then(|t| t["departure"].as_str())
        .map(|d| format!("ST-{d}"))
        .unwrap_or_default();
    // Two tokens: one for the simulated gateway, one for you.
    let (gateway, centre, you) = {
        let mut store = server::open_store(&config).context("opening the demo's database")?;
        let now = server::wall_clock();
        // A person to sign in as, with a password everyone knows: only ever in the demo,
        // whose database is made afresh each run (and said loudly below).
        let hash =
            server::users::hash_password(DEMO_PASSWORD).map_err(|e| anyhow::anyhow!("{e}"))?;
        store.create_user(&server::users::new_user(
            DEMO_USERNAME,
            model::Role::Administrator,
            None,
            hash.clone(),
            now,
        ))?;
        for (username, role, organisation) in demo_people(&site_station) {
            store.create_user(&server::users::new_user(
                username,
                role,
                organisation,
                hash.clone(),
                now,
            ))?;
        }
        let mut make = |role, label| -> Result<String> {
            let t = server::auth::generate(role, label, now, None)
                .context("no randomness from the system")?;
            store.put_token(&t.record, &t.secret_hash)?;
            Ok(t.token)
        };
        (
            make(model::Role::Gateway, "demo: simulated fleet")?,
            // What a gateway may not do (zones, stations, devices, transits, their actions)
            // is the centre's: a token of its own, as the permission matrix wants.
            make(model::Role::Supervisor, "demo: the centre")?,
            make(model::Role::Administrator, "demo: you")?,
        )
    };
    let clock = config.clock;
    let running = server::start(config)
        .await
        .context("starting the service")?;
    let addr = running.addr;
    let client = Client {
        addr,
        gateway,
        centre,
    };

    println!(
        "sealwatch demo — THIS IS A DEMO: simulated devices, data in {}",
        opts.data_dir.display()
    );
    println!(
        "service listening on http://{addr}  (clock running {}x faster than real time)",
        opts.speed
    );
    println!("API reference: http://{addr}/api/v1/docs");
    println!(
        "Sign in to the API with this demo token (administrator, valid for this demo's data):"
    );
    println!("  export SEALWATCH_TOKEN={you}");
    println!(
        "DEMO ONLY — KNOWN PASSWORD: sign in as `{DEMO_USERNAME}` with password `{DEMO_PASSWORD}` \
         (POST /api/v1/session), without the second factor `sealwatch serve` requires of \
         administrators. `sealwatch serve` never has a default password."
    );
    let people: Vec<String> = demo_people(&site_station)
        .into_iter()
        .map(|(u, r, _)| format!("{u} ({})", r.as_str()))
        .collect();
    println!(
        "DEMO ONLY — the same password for one user per role: {}",
        people.join(", ")
    );
    println!(
        "Web UI: http://{addr}/  (build it first: npm --prefix ui ci && npm --prefix ui run build)"
    );
    // Whole seconds, so the fleet's times read cleanly.
    let start = clock.now().unix_ms();
    let Fleet {
        zones,
        transits,
        mut schedule,
    } = fleet(Timestamp::from_unix_ms(start - start % 1000), opts.rounds())?;
    for z in &zones {
        expect(client.post("/api/v1/zones", z).await?, 204, "zone")?;
    }
    // Each departure office is a station holding the devices it seals; each device is
    // registered there, so the registry shows its battery and last report as it travels.
    let mut stations = std::collections::BTreeSet::new();
    for t in &transits {
        let Some(departure) = t["departure"].as_str() else {
            continue;
        };
        let station = format!("ST-{departure}");
        if stations.insert(station.clone()) {
            let body = serde_json::json!({"id": station, "name": format!("{departure} station"), "zone": departure});
            expect(
                client.post("/api/v1/stations", &body).await?,
                200,
                "station",
            )?;
            // Spare devices in the station's stock, for an officer to pair and seal with.
            for k in 1..=SPARES_PER_STATION {
                let spare = serde_json::json!({
                    "id": format!("{departure}.SPARE-{k}"), "kind": "active", "state": "in_stock",
                    "station": station, "model": "demo e-lock", "battery_pct": 100,
                });
                expect(
                    client.post("/api/v1/devices", &spare).await?,
                    200,
                    "spare device",
                )?;
            }
        }
        let device = serde_json::json!({
            "id": t["device"], "kind": "active", "state": "sealed", "station": station,
            "model": "demo e-lock",
        });
        expect(
            client.post("/api/v1/devices", &device).await?,
            200,
            "device",
        )?;
    }
    // Quick mode at every destination office: a fixed gate reader stands there, with its own
    // signing key, and reads a transit's device when it arrives (docs/alarms.md, "Quick
    // mode").
    let mut gates = std::collections::BTreeMap::new();
    for t in &transits {
        if let Some(destination) = t["destination"].as_str()
            && !gates.contains_key(destination)
        {
            let reader = gate_reader(destination);
            let body = serde_json::json!({"id": reader, "kind": "fixed", "zone": destination});
            expect(
                client.post("/api/v1/readers", &body).await?,
                200,
                "gate reader",
            )?;
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let key = ed25519_dalek::SigningKey::from_bytes(&secret);
            let public = sealproto::to_hex(key.verifying_key().as_bytes());
            expect(
                request(
                    client.addr,
                    &you,
                    "PUT",
                    &format!("/api/v1/readers/{reader}/key"),
                    &serde_json::json!({"public_key": public}).to_string(),
                )
                .await?,
                200,
                "gate reader's key",
            )?;
            gates.insert(destination.to_owned(), key);
        }
    }
    for t in &transits {
        expect(client.post("/api/v1/transits", t).await?, 201, "transit")?;
    }
    schedule.sort_by_key(|(t, _)| *t);
    println!(
        "{} zones, {} stations, {} devices and {} transits declared; {} reports to come.",
        zones.len(),
        stations.len(),
        transits.len(),
        transits.len(),
        schedule.len()
    );
    println!();
    println!("Look at:");
    let auth = "-H \"Authorization: Bearer $SEALWATCH_TOKEN\"";
    println!("  curl -s {auth} 'http://{addr}/api/v1/alarms?state=open'    # the alarm queue");
    println!("  curl -sN {auth} 'http://{addr}/api/v1/stream?only=alarms'  # alarms live");
    println!("  curl -s {auth} 'http://{addr}/api/v1/transits?state=in_transit'");
    println!("  curl -s 'http://{addr}/metrics'");
    println!("Alarms appear below as they are raised. Stop with Ctrl-C.");
    println!();

    let mut alarms = running.live.subscribe();
    let printer = tokio::spawn(async move {
        let mut n = 0u64;
        while let Ok(p) = alarms.recv().await {
            if let Some(server::Output::Alarm(a)) = p.output {
                n += 1;
                println!(
                    "  alarm {n:>3}  grade {}  {:<20} {:<28} {}  {}",
                    a.grade,
                    a.kind.as_str(),
                    a.transit.as_str(),
                    a.t,
                    a.detail
                );
            }
        }
    });

    let gate_client = client.clone();
    let gates = tokio::spawn(async move {
        if let Err(e) = arrival_gates(gate_client, gates, clock).await {
            eprintln!("demo: the arrival gates stopped: {e:#}");
        }
    });
    let driver = async {
        let mut next = 0;
        let total = schedule.len();
        let mut last_progress = std::time::Instant::now();
        while next < total {
            let now = clock.now();
            let due = schedule[next..]
                .iter()
                .take_while(|(t, _)| *t <= now)
                .count();
            if due == 0 {
                let wait_ms = (schedule[next].0.unix_ms() - now.unix_ms()) as f64 / clock.speed();
                tokio::time::sleep(Duration::from_millis(wait_ms.clamp(10.0, 1000.0) as u64)).await;
                continue;
            }
            let batch = &schedule[next..next + due];
            let observations: Vec<&Value> = batch
                .iter()
                .filter_map(|(_, s)| match s {
                    Send::Observation(v) => Some(v),
                    _ => None,
                })
                .collect();
            if !observations.is_empty() {
                expect(
                    client
                        .post(
                            "/api/v1/observations",
                            &Value::from(observations.into_iter().cloned().collect::<Vec<_>>()),
                        )
                        .await?,
                    200,
                    "observations",
                )?;
            }
            for (_, s) in batch {
                match s {
                    Send::Action { transit, body } => {
                        client
                            .post(&format!("/api/v1/transits/{transit}/actions"), body)
                            .await?;
                    }
                    Send::Read(v) => {
                        client.post("/api/v1/reads", v).await?;
                    }
                    Send::Observation(_) => {}
                }
            }
            next += due;
            if last_progress.elapsed() > Duration::from_secs(15) {
                last_progress = std::time::Instant::now();
                println!(
                    "  … simulated time {}, {next} of {total} reports sent",
                    clock.now()
                );
            }
        }
        println!(
            "  … all {total} reports sent; the service keeps running (timers still fire). Ctrl-C to stop."
        );
        anyhow::Ok(())
    };
    tokio::select! {
        r = driver => {
            r?;
            tokio::signal::ctrl_c().await.ok();
        }
        _ = tokio::signal::ctrl_c() => {}
    }
    println!("stopping: committing what was accepted…");
    gates.abort();
    running.stop().await?;
    printer.abort();
    Ok(())
}

fn expect((status, body): (u16, String), want: u16, what: &str) -> Result<()> {
    if status != want {
        bail!("declaring the demo's {what} failed ({status}): {body}");
    }
    Ok(())
}

/// The zones, transits and scheduled inputs of the whole fleet, starting a minute after `now`.
/// The demo's fleet: zones and transits to declare, and what to send when.
struct Fleet {
    zones: Vec<Value>,
    transits: Vec<Value>,
    schedule: Vec<(Timestamp, Send)>,
}

fn fleet(now: Timestamp, rounds: i64) -> Result<Fleet> {
    let mut zones = Vec::new();
    let mut transits = Vec::new();
    let mut schedule = Vec::new();
    for (i, (name, text)) in EXAMPLES.iter().enumerate() {
        let s: Value =
            serde_json::from_str(text).with_context(|| format!("bundled example {name}"))?;
        let start =
            scenario_start(&s).with_context(|| format!("bundled example {name} has no start"))?;
        let zone_prefix = format!("e{i}.");
        for z in s["zones"].as_array().into_iter().flatten() {
            let mut z = z.clone();
            prefix(&mut z["id"], &zone_prefix);
            zones.push(z);
        }
        for rep in 0..rounds {
            let shift = now.unix_ms() + 60_000 + (rep * REPEAT_EVERY_MIN + i as i64) * 60_000
                - start.unix_ms();
            let tag = format!("e{i}r{rep}.");
            let mut s = s.clone();
            shift_times(&mut s, shift);
            for t in s["transits"].as_array_mut().into_iter().flatten() {
                prefix(&mut t["id"], &tag);
                prefix(&mut t["device"], &tag);
                declare_parties(t, transits.len());
                for key in ["departure", "destination"] {
                    if let Some(z) = field(t, key) {
                        prefix(z, &zone_prefix);
                    }
                }
                for key in ["stop_zones", "unseal_zones"] {
                    for z in field(t, key)
                        .and_then(Value::as_array_mut)
                        .into_iter()
                        .flatten()
                    {
                        prefix(z, &zone_prefix);
                    }
                }
                transits.push(t.clone());
            }
            for o in s["observations"].as_array().into_iter().flatten() {
                let mut o = o.clone();
                prefix(&mut o["device"], &tag);
                schedule.push((time(&o["t"])?, Send::Observation(o)));
            }
            for a in s["actions"].as_array().into_iter().flatten() {
                let mut a = a.clone();
                prefix(&mut a["transit"], &tag);
                let transit = a["transit"].as_str().unwrap_or_default().to_owned();
                schedule.push((time(&a["t"])?, Send::Action { transit, body: a }));
            }
            for r in s["reads"].as_array().into_iter().flatten() {
                let mut r = r.clone();
                prefix(&mut r["device"], &tag);
                prefix(&mut r["zone"], &zone_prefix);
                schedule.push((time(&r["t"])?, Send::Read(r)));
            }
        }
    }
    Ok(Fleet {
        zones,
        transits,
        schedule,
    })
}

/// Gives the `n`th transit of the fleet a declaration naming its trade parties, a driver, a
/// plate and a container (valid ISO 6346), keeping what the example declares.
fn declare_parties(t: &mut Value, n: usize) {
    let Some(obj) = t.as_object_mut() else {
        return;
    };
    let declaration = obj
        .entry("declaration")
        .or_insert_with(|| serde_json::json!({"number": format!("DEMO{:014}", n + 1)}));
    if let Some(d) = declaration.as_object_mut() {
        d.insert("carrier".into(), CARRIERS[n % CARRIERS.len()].into());
        if n.is_multiple_of(2) {
            d.insert("forwarder".into(), FORWARDER.into());
        }
        if n.is_multiple_of(3) {
            d.insert("consignor".into(), CONSIGNOR.into());
        }
    }
    const NAMES: &[&str] = &[
        "Li Wei",
        "Ivan Petrov",
        "Amina Otieno",
        "Aidos Nurlan",
        "Somchai K.",
    ];
    obj.entry("driver").or_insert_with(|| {
        serde_json::json!({"name": NAMES[n % NAMES.len()], "contact": format!("+00 555 {:04}", n)})
    });
    let vehicle = obj
        .entry("vehicle")
        .or_insert_with(|| serde_json::json!({}));
    if let Some(v) = vehicle.as_object_mut() {
        v.entry("plate")
            .or_insert_with(|| format!("DEMO {:04}", n + 1).into());
        let containers = v
            .entry("containers")
            .or_insert_with(|| serde_json::json!([]));
        if containers.as_array().is_some_and(Vec::is_empty) {
            let first_ten = format!("SWDU{:06}", n + 1);
            let digit = model::iso6346_check_digit(&first_ten).unwrap_or(0);
            *containers = serde_json::json!([format!("{first_ten}{digit}")]);
        }
    }
}

fn prefix(v: &mut Value, p: &str) {
    if let Some(s) = v.as_str() {
        *v = Value::String(format!("{p}{s}"));
    }
}

/// `value[key]`, without inserting a null when it is absent (as `IndexMut` would).
fn field<'a>(value: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    value.as_object_mut()?.get_mut(key)
}

fn time(v: &Value) -> Result<Timestamp> {
    Ok(v.as_str().unwrap_or_default().parse()?)
}

/// The earliest sealing or report in a scenario.
fn scenario_start(s: &Value) -> Option<Timestamp> {
    let sealed = s["transits"]
        .as_array()?
        .iter()
        .filter_map(|t| t["sealed_at"].as_str()?.parse().ok());
    let reports = s["observations"]
        .as_array()?
        .iter()
        .filter_map(|o| o["t"].as_str()?.parse().ok());
    sealed.chain(reports).min()
}

/// Moves every time in a scenario by `shift_ms`.
fn shift_times(v: &mut Value, shift_ms: i64) {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if matches!(k.as_str(), "t" | "sealed_at" | "deadline" | "until" | "at")
                    && let Some(t) = x.as_str().and_then(|s| s.parse::<Timestamp>().ok())
                {
                    *x = Value::String(Timestamp::from_unix_ms(t.unix_ms() + shift_ms).to_string());
                } else {
                    shift_times(x, shift_ms);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|x| shift_times(x, shift_ms)),
        _ => {}
    }
}

/// The fixed gate reader at a destination office.
fn gate_reader(zone: &str) -> String {
    format!("GATE-{zone}")
}

/// The arrival gates: every couple of seconds, each transit that has arrived and was not read
/// yet is read by its destination's gate, which unseals it by itself or holds it for an
/// officer. The automatic unseal rate is then in `GET /api/v1/statistics/transits`.
async fn arrival_gates(
    client: Client,
    keys: std::collections::BTreeMap<String, ed25519_dalek::SigningKey>,
    clock: server::Clock,
) -> Result<()> {
    let mut read = std::collections::HashSet::new();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (status, body) = client
            .get("/api/v1/transits?state=arrived&limit=1000")
            .await?;
        if status != 200 {
            continue;
        }
        let listed: Value = serde_json::from_str(&body)?;
        for item in listed["items"].as_array().into_iter().flatten() {
            let t = &item["transit"];
            let (Some(id), Some(device), Some(zone)) = (
                t["id"].as_str(),
                t["device"].as_str(),
                t["destination"].as_str(),
            ) else {
                continue;
            };
            if !read.insert(id.to_owned()) {
                continue;
            }
            let Some(key) = keys.get(zone) else {
                continue;
            };
            let reader = gate_reader(zone);
            let body = serde_json::json!({
                "t": clock.now(), "reader": reader, "zone": zone, "device": device,
                "intact": true, "gate": "arrival",
            })
            .to_string();
            // Signed by the gate's own key, as a real gate reader does (docs/readers.md).
            let message = server::readers::signed_message(&reader, body.as_bytes());
            let signature = format!(
                "ed25519={}",
                sealproto::to_hex(&ed25519_dalek::Signer::sign(key, &message).to_bytes())
            );
            signed_post(client.addr, &reader, &signature, &body).await?;
        }
    }
}

/// The demo's side of the API: it drives the service as a gateway would, and sets up and
/// acts as the centre would, each with its own token.
#[derive(Clone)]
struct Client {
    addr: SocketAddr,
    /// For what devices report (observations, reads).
    gateway: String,
    /// For everything else.
    centre: String,
}

impl Client {
    /// One HTTP/1.1 POST on a fresh connection, with the token of whoever would send it.
    async fn post(&self, path: &str, body: &Value) -> Result<(u16, String)> {
        let token = if matches!(path, "/api/v1/observations" | "/api/v1/reads") {
            &self.gateway
        } else {
            &self.centre
        };
        request(self.addr, token, "POST", path, &body.to_string()).await
    }

    /// One GET as the centre.
    async fn get(&self, path: &str) -> Result<(u16, String)> {
        request(self.addr, &self.centre, "GET", path, "").await
    }
}

/// A reader's signed post of its reads (no token: the signature is the credential).
async fn signed_post(addr: SocketAddr, reader: &str, signature: &str, body: &str) -> Result<()> {
    let mut conn = TcpStream::connect(addr).await?;
    let head = format!(
        "POST /api/v1/readers/{reader}/reads HTTP/1.1\r\nHost: sealwatch\r\nConnection: close\r\nSealwatch-Reader-Signature: {signature}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await?;
    Ok(())
}

async fn request(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String)> {
    let mut conn = TcpStream::connect(addr).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: sealwatch\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}
