//! The native-protocol gateway end to end, over real TCP sockets, with the service on a
//! temporary SQLite directory and the reference device (`sealproto::Device`) as the client:
//! keys provisioned over the API; a report acknowledged only once stored, an opened lock
//! raising the alarm, tamper evidence kept; unknown and revoked devices refused; garbage
//! closing its own connection and nothing else; remote commands queued while the device is
//! offline or online delivered after the handshake, their results recorded, an unauthorised
//! unseal never reaching the device, a resent command not executed twice; a live session
//! ended after its keys are revoked or rotated; reports held across a reconnect sent again
//! and stored once; a batch record stored, acknowledged once, its evidence kept per report,
//! its replay refused.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use model::{AlarmKind, LockState, Reading, RopeState, Timestamp};
use sealproto::{Device, DeviceKeys, DeviceOutput, Entropy, PlatformKeys, PublicKeys};
use serde_json::json;
use store::{AlarmFilter, PageRequest, TimeRange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LOCK: &str = "LOCK-7";

struct Native {
    h: common::Harness,
    native: gateway::NativeGateway,
    platform: PublicKeys,
}

impl Native {
    async fn start(name: &str) -> Native {
        Native::start_with(name, |_| {}).await
    }

    async fn start_with(name: &str, configure: impl FnOnce(&mut gateway::NativeConfig)) -> Native {
        let h = common::start(name, |_| {}).await;
        let keys = PlatformKeys::from_secrets([1; 32], [2; 32]);
        let platform = keys.public();
        let mut config = gateway::NativeConfig::new("127.0.0.1:0".parse().unwrap(), keys);
        config.idle_timeout = Duration::from_secs(10);
        configure(&mut config);
        let native = gateway::NativeGateway::start(config, h.running.ingest.clone())
            .await
            .unwrap();
        Native {
            h,
            native,
            platform,
        }
    }

    async fn stop(self) {
        self.native.stop().await;
        self.h.stop().await;
    }

    async fn provision(&self, device: &str, keys: &DeviceKeys) -> u16 {
        let public = keys.public();
        let (status, body) = common::api(
            self.h.api(),
            "PUT",
            &format!("/api/v1/devices/{device}/keys"),
            Some(json!({
                "signing_public": sealproto::to_hex(&public.signing.to_bytes()),
                "agreement_public": sealproto::to_hex(&public.agreement.to_bytes()),
            })),
        )
        .await;
        if status == 200 {
            assert_eq!(body["device"], device, "{body}");
            assert!(body["revoked_at"].is_null(), "{body}");
        }
        status
    }

    /// What the device sent that is not an observation (evidence, text results).
    async fn device_log(&self, device: &str) -> Vec<store::DeviceLogEntry> {
        let device = device.to_owned();
        self.h
            .running
            .ingest
            .query(move |s| s.device_log(&device, PageRequest::default()))
            .await
            .unwrap()
            .unwrap()
    }

    /// Waits until the gateway's command counters say `sent` and `results` (they follow the
    /// store, which the test may read first).
    async fn commands_counted(&self, sent: u64, results: u64) {
        assert!(
            common::eventually(Duration::from_secs(5), || {
                let stats = self.native.stats();
                stats.commands_sent == sent && stats.command_results == results
            })
            .await,
            "{:?}",
            self.native.stats()
        );
    }

    async fn observations(&self, device: &str) -> Vec<model::Observation> {
        let device = device.to_owned();
        self.h
            .running
            .ingest
            .query(move |s| s.observations(&device, TimeRange::default(), 100))
            .await
            .unwrap()
            .unwrap()
    }
}

fn device_keys(id: &str, seed: u8) -> DeviceKeys {
    DeviceKeys::from_secrets(id.parse().unwrap(), [seed; 32], [seed + 1; 32])
}

fn entropy() -> Entropy {
    let mut bytes = [0u8; 64];
    getrandom::fill(&mut bytes).unwrap();
    Entropy::from_bytes(bytes)
}

/// A reference device on a real socket.
struct Client {
    stream: TcpStream,
    device: Device,
}

impl Client {
    async fn connect(addr: SocketAddr, device: Device) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            device,
        }
    }

    async fn send_outgoing(&mut self) {
        let out = self.device.take_outgoing();
        self.stream.write_all(&out).await.unwrap();
    }

    /// Reads once (within `within`); what the device made of it, or None when the
    /// connection closed.
    async fn read(&mut self, within: Duration) -> Option<Vec<DeviceOutput>> {
        let mut buf = [0u8; 4096];
        let n = match tokio::time::timeout(within, self.stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => n,
            Err(_) => return Some(Vec::new()),
        };
        let now = Timestamp::from_unix_ms(server::wall_clock().unix_ms());
        Some(
            self.device
                .receive(now, &buf[..n])
                .into_iter()
                .map(|r| r.unwrap())
                .collect(),
        )
    }

    /// Sends the hello; true once the welcome has verified, false when the gateway closed.
    async fn handshake(&mut self) -> bool {
        self.device.connect(entropy());
        self.send_outgoing().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            match self.read(Duration::from_secs(1)).await {
                None => return false,
                Some(out) if out.contains(&DeviceOutput::Connected) => return true,
                Some(_) => {}
            }
        }
        panic!("no welcome and no close within 5 s");
    }

    /// Waits for the acknowledgement of `seq`.
    async fn acknowledged(&mut self, seq: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            let out = self
                .read(Duration::from_secs(1))
                .await
                .expect("connection open");
            if out
                .iter()
                .any(|o| matches!(o, DeviceOutput::Acknowledged { seq: s, .. } if *s >= seq))
            {
                return;
            }
        }
        panic!("report {seq} not acknowledged within 5 s");
    }

    /// Reads once (within `within`) and writes back what the device answered; what it made of
    /// it, or None when the connection closed.
    async fn pump(&mut self, within: Duration) -> Option<Vec<DeviceOutput>> {
        let out = self.read(within).await?;
        self.send_outgoing().await;
        Some(out)
    }

    /// Handshake, then a first report (a device sends nothing else before it, and the gateway
    /// sends commands only once a record has proven the device), acknowledged; the commands
    /// that came meanwhile are executed, answered and returned.
    async fn establish(&mut self) -> Vec<DeviceOutput> {
        assert!(self.handshake().await, "welcomed");
        let seq = self
            .device
            .report(reading(90, LockState::Locked, RopeState::Intact))
            .unwrap();
        self.send_outgoing().await;
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !seen
            .iter()
            .any(|o| matches!(o, DeviceOutput::Acknowledged { seq: s, .. } if *s >= seq))
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "first report not acknowledged within 5 s"
            );
            seen.extend(self.pump(Duration::from_secs(1)).await.expect("open"));
        }
        seen
    }

    /// Whether the gateway closes the connection within `within`.
    async fn closed_within(&mut self, within: Duration) -> bool {
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    }
}

fn reading(seconds_ago: i64, lock: LockState, rope: RopeState) -> Reading {
    let now = server::wall_clock().unix_ms() / 1000 * 1000;
    let mut r = Reading::empty(Timestamp::from_unix_ms(now - seconds_ago * 1000));
    r.lat = Some(29.32);
    r.lon = Some(120.08);
    r.fix = Some(true);
    r.lock = Some(lock);
    r.rope = Some(rope);
    r.battery_pct = Some(80.0);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlocked_report_is_acknowledged_once_stored_raises_the_alarm_and_keeps_evidence() {
    let n = Native::start("native-e2e").await;
    common::register_device(n.h.api(), LOCK, None).await;
    common::declare_sealed_transit(n.h.api(), "NT1", LOCK).await;
    let keys = device_keys(LOCK, 3);
    let public = keys.public();
    assert_eq!(n.provision(LOCK, &keys).await, 200);

    let mut c = Client::connect(n.native.addr(), Device::new(keys, n.platform)).await;
    assert!(c.handshake().await, "welcomed");

    // Locked: acknowledged, and stored by the time the acknowledgement arrives.
    let seq = c
        .device
        .report(reading(120, LockState::Locked, RopeState::Intact))
        .unwrap();
    c.send_outgoing().await;
    c.acknowledged(seq).await;
    assert_eq!(c.device.unacknowledged(), 0);
    let stored = n.observations(LOCK).await;
    assert_eq!(
        stored.len(),
        1,
        "stored before the acknowledgement: {stored:?}"
    );
    assert_eq!(stored[0].seq, Some(seq));
    assert_eq!(stored[0].lock, Some(LockState::Locked));

    // Unlocked with the rope cut: stored before the acknowledgement, tamper evidence kept.
    let seq = c
        .device
        .report(reading(60, LockState::Unlocked, RopeState::Cut))
        .unwrap();
    c.send_outgoing().await;
    c.acknowledged(seq).await;
    let stored = n.observations(LOCK).await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[1].lock, Some(LockState::Unlocked));
    assert_eq!(stored[1].seq, Some(seq));

    let log = n.device_log(LOCK).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].source, "native");
    assert_eq!(log[0].kind, "evidence");
    let record: sealproto::EvidenceRecord = serde_json::from_str(&log[0].text).unwrap();
    let content = sealproto::verify_evidence(&record, &public.signing).unwrap();
    assert_eq!(content.kind, sealproto::EvidenceKind::Tamper);
    assert_eq!(content.observation.seq, Some(seq));

    // The opening, where no unseal is authorised, is an alarm on the transit.
    let alarms =
        n.h.running
            .ingest
            .query(|s| {
                s.alarms(
                    &AlarmFilter {
                        transit: Some("NT1".into()),
                        kind: Some(AlarmKind::IllegalOpening),
                        ..AlarmFilter::default()
                    },
                    PageRequest::default(),
                )
            })
            .await
            .unwrap()
            .unwrap();
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(alarms[0].alarm.device.as_str(), LOCK);

    let stats = n.native.stats();
    assert_eq!(stats.handshakes, 1);
    assert_eq!(stats.established, 1);
    assert_eq!(stats.observations_accepted, 2);
    assert_eq!(stats.evidence, 1);
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_revoked_devices_are_refused() {
    let n = Native::start("native-refused").await;
    common::register_device(n.h.api(), LOCK, None).await;
    let keys = device_keys(LOCK, 3);

    // No keys provisioned: closed without a welcome.
    let mut c = Client::connect(n.native.addr(), Device::new(keys.clone(), n.platform)).await;
    assert!(!c.handshake().await, "refused");
    assert_eq!(n.native.stats().refused_unknown, 1);

    // Keys for a device not in the registry are refused; bad keys too.
    assert_eq!(n.provision("NOBODY", &keys).await, 404);
    let (status, body) = common::api(
        n.h.api(),
        "PUT",
        &format!("/api/v1/devices/{LOCK}/keys"),
        Some(json!({"signing_public": "abcd", "agreement_public": "00"})),
    )
    .await;
    assert_eq!(status, 422, "{body}");

    // Provisioned: welcomed.
    assert_eq!(n.provision(LOCK, &keys).await, 200);
    let mut c = Client::connect(n.native.addr(), Device::new(keys.clone(), n.platform)).await;
    assert!(c.handshake().await, "welcomed");

    // Revoked: the next connection is refused.
    let (status, body) = common::api(
        n.h.api(),
        "DELETE",
        &format!("/api/v1/devices/{LOCK}/keys"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["revoked_at"].is_string(), "{body}");
    let mut again = Client::connect(n.native.addr(), Device::new(keys.clone(), n.platform)).await;
    assert!(!again.handshake().await, "refused after revocation");
    assert_eq!(n.native.stats().refused_revoked, 1);

    // Rotation: new keys, welcomed again; the old ones are not.
    let rotated = device_keys(LOCK, 9);
    assert_eq!(n.provision(LOCK, &rotated).await, 200);
    let mut old = Client::connect(n.native.addr(), Device::new(keys, n.platform)).await;
    assert!(!old.handshake().await, "old keys refused");
    let mut new = Client::connect(n.native.addr(), Device::new(rotated, n.platform)).await;
    assert!(new.handshake().await, "new keys welcomed");
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_closes_its_connection_without_harming_others() {
    let n = Native::start("native-garbage").await;
    common::register_device(n.h.api(), LOCK, None).await;
    common::declare_sealed_transit(n.h.api(), "NT2", LOCK).await;
    let keys = device_keys(LOCK, 3);
    assert_eq!(n.provision(LOCK, &keys).await, 200);
    let mut good = Client::connect(n.native.addr(), Device::new(keys, n.platform)).await;
    assert!(good.handshake().await);

    // A peer sending garbage: a frame with a valid header but nonsense is a failed
    // handshake; bytes that are not frames at all run into max_unframed_bytes.
    let mut bad = TcpStream::connect(n.native.addr()).await.unwrap();
    let junk: Vec<u8> = (0..70_000u32).map(|i| (i * 7 + 3) as u8).collect();
    let _ = bad.write_all(&junk).await;
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match bad.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(closed, "the garbage connection is closed");
    let stats = n.native.stats();
    assert!(stats.closed_flood + stats.protocol_errors >= 1, "{stats:?}");

    // The good device goes on.
    let seq = good
        .device
        .report(reading(30, LockState::Locked, RopeState::Intact))
        .unwrap();
    good.send_outgoing().await;
    good.acknowledged(seq).await;
    assert_eq!(n.observations(LOCK).await.len(), 1);
    assert!(!good.closed_within(Duration::from_millis(200)).await);
    n.stop().await;
}

#[test]
fn the_platform_key_file_is_created_once_owner_only_and_read_back() {
    let dir = common::temp_dir("native-keyfile");
    let path = dir.join("sub").join("native_platform.key");
    let (first, created) = gateway::load_or_create_platform_keys(&path).unwrap();
    assert!(created);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 128, "{text:?}");
    let (again, created) = gateway::load_or_create_platform_keys(&path).unwrap();
    assert!(!created);
    assert_eq!(
        again.public(),
        first.public(),
        "the same keys on the next start"
    );

    std::fs::write(&path, "not hex\n").unwrap();
    let e = gateway::load_or_create_platform_keys(&path).unwrap_err();
    assert!(e.to_string().contains("128 hex digits"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_forged_records_are_refused_and_counted_and_the_session_goes_on() {
    let n = Native::start("native-replay").await;
    common::register_device(n.h.api(), LOCK, None).await;
    common::declare_sealed_transit(n.h.api(), "NT3", LOCK).await;
    let keys = device_keys(LOCK, 3);
    assert_eq!(n.provision(LOCK, &keys).await, 200);
    let mut c = Client::connect(n.native.addr(), Device::new(keys, n.platform)).await;
    assert!(c.handshake().await);

    let seq = c
        .device
        .report(reading(90, LockState::Locked, RopeState::Intact))
        .unwrap();
    let record = c.device.take_outgoing();
    c.stream.write_all(&record).await.unwrap();
    c.acknowledged(seq).await;

    // The same record again: a replay.
    c.stream.write_all(&record).await.unwrap();
    assert!(
        common::eventually(Duration::from_secs(5), || n.native.stats().replays == 1).await,
        "{:?}",
        n.native.stats()
    );

    // The next record with its ciphertext altered (and a CRC that matches, so it passes the
    // transport): forged. The genuine record after it is taken and acknowledged.
    let seq = c
        .device
        .report(reading(30, LockState::Locked, RopeState::Intact))
        .unwrap();
    let genuine = c.device.take_outgoing();
    let frame = sealproto::Frame::parse(&genuine).unwrap();
    let mut body = frame.body().to_vec();
    let last = body.len() - 1;
    body[last] ^= 0x01;
    let forged = sealproto::Frame::new(frame.kind(), &body).unwrap();
    c.stream.write_all(forged.as_bytes()).await.unwrap();
    assert!(
        common::eventually(Duration::from_secs(5), || n.native.stats().forged == 1).await,
        "{:?}",
        n.native.stats()
    );
    assert_eq!(
        n.observations(LOCK).await.len(),
        1,
        "stored once, nothing forged"
    );
    c.stream.write_all(&genuine).await.unwrap();
    c.acknowledged(seq).await;
    assert_eq!(n.observations(LOCK).await.len(), 2);
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_the_stopping_service_cannot_take_is_not_acknowledged() {
    let n = Native::start("native-stopping").await;
    common::register_device(n.h.api(), LOCK, None).await;
    common::declare_sealed_transit(n.h.api(), "NT4", LOCK).await;
    let keys = device_keys(LOCK, 3);
    assert_eq!(n.provision(LOCK, &keys).await, 200);
    let mut c = Client::connect(n.native.addr(), Device::new(keys, n.platform)).await;
    assert!(c.handshake().await);
    let Native { h, native, .. } = n;
    let common::Harness {
        running,
        gateway,
        dir,
    } = h;

    // The service stops; the native gateway follows it and acknowledges nothing more.
    running.stop().await.unwrap();
    c.device
        .report(reading(30, LockState::Unlocked, RopeState::Intact))
        .unwrap();
    let out = c.device.take_outgoing();
    let _ = c.stream.write_all(&out).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gateway kept the connection of a stopped service"
        );
        match c.read(Duration::from_secs(1)).await {
            None => break,
            Some(out) => assert!(
                !out.iter()
                    .any(|o| matches!(o, DeviceOutput::Acknowledged { .. })),
                "acknowledged although not stored: {out:?}"
            ),
        }
    }
    assert_eq!(c.device.unacknowledged(), 1, "the device keeps the report");
    native.stop().await;
    gateway.stop().await;

    use store::Store;
    let mut store = store::SqliteStore::open(&dir.join("sealwatch.db")).unwrap();
    let stored = store.observations(LOCK, TimeRange::default(), 10).unwrap();
    assert!(stored.is_empty(), "{stored:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Polls the device's commands until command `id` is `state`; that command.
async fn command_becomes(
    h: &common::Harness,
    device: &str,
    id: i64,
    state: &str,
) -> serde_json::Value {
    let path = format!("/api/v1/devices/{device}/commands");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = common::api(h.api(), "GET", &path, None).await;
        assert_eq!(status, 200, "{body}");
        let c = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("command {id} not in {body}"));
        if c["state"] == state {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "command never became {state}: {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn queue(
    h: &common::Harness,
    device: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    common::api(
        h.api(),
        "POST",
        &format!("/api/v1/devices/{device}/commands"),
        Some(body),
    )
    .await
}

/// The ids of the commands the device executed (not those it answered again).
fn executed(outputs: &[DeviceOutput]) -> Vec<u32> {
    outputs
        .iter()
        .filter_map(|o| match o {
            DeviceOutput::Executed { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_queued_while_offline_go_out_after_the_handshake_and_their_results_are_recorded() {
    let n = Native::start("native-cmd-offline").await;
    common::register_device(n.h.api(), LOCK, None).await;
    common::declare_sealed_transit(n.h.api(), "NC1", LOCK).await;
    let keys = device_keys(LOCK, 3);
    let public = keys.public();
    assert_eq!(n.provision(LOCK, &keys).await, 200);
    let (status, body) = common::api(
        n.h.api(),
        "POST",
        "/api/v1/transits/NC1/actions",
        Some(json!({"action": "seal"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");

    // Sealed, not authorised: the API refuses the unseal and queues nothing.
    let unseal = json!({"kind": "unseal", "actor": "officer-1", "transit": "NC1"});
    let (status, problem) = queue(&n.h, LOCK, unseal.clone()).await;
    assert_eq!(status, 409, "{problem}");
    let (_, listed) = common::api(
        n.h.api(),
        "GET",
        &format!("/api/v1/devices/{LOCK}/commands"),
        None,
    )
    .await;
    assert_eq!(listed["items"], json!([]), "{listed}");

    // Queued while the device is offline: an interval, then the unseal once authorised.
    let (status, interval) = queue(
        &n.h,
        LOCK,
        json!({"kind": "set_interval", "actor": "officer-1", "args": {"seconds": 30}}),
    )
    .await;
    assert_eq!(status, 202, "{interval}");
    let (status, body) = common::api(
        n.h.api(),
        "POST",
        "/api/v1/transits/NC1/actions",
        Some(json!({"action": "authorize_unseal", "reason": "release granted"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, unseal) = queue(&n.h, LOCK, unseal).await;
    assert_eq!(status, 202, "{unseal}");
    let interval_id = interval["id"].as_i64().unwrap();
    let unseal_id = unseal["id"].as_i64().unwrap();

    // The device connects and proves itself: both commands come, oldest first, and it
    // executes them (the API's refused unseal never existed for it).
    let mut c = Client::connect(n.native.addr(), Device::new(keys, n.platform)).await;
    let mut outputs = c.establish().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while executed(&outputs).len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "commands not delivered: {outputs:?}"
        );
        outputs.extend(c.pump(Duration::from_secs(1)).await.expect("open"));
    }
    assert_eq!(
        executed(&outputs),
        vec![interval_id as u32, unseal_id as u32]
    );
    assert_eq!(c.device.report_interval_s(), 30);
    assert_eq!(c.device.lock(), Some(LockState::Unlocked));

    // The results make the commands done; the unseal's signed report is acknowledged once
    // stored, its evidence kept.
    let done = command_becomes(&n.h, LOCK, interval_id, "done").await;
    assert_eq!(done["result"], "native command result: done", "{done}");
    let done = command_becomes(&n.h, LOCK, unseal_id, "done").await;
    assert!(
        done["result"]
            .as_str()
            .unwrap()
            .contains("done (report seq"),
        "{done}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while c.device.unacknowledged() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "unseal report not acknowledged"
        );
        c.pump(Duration::from_secs(1)).await.expect("open");
    }
    let log = n.device_log(LOCK).await;
    let record: sealproto::EvidenceRecord = serde_json::from_str(&log[0].text).unwrap();
    let content = sealproto::verify_evidence(&record, &public.signing).unwrap();
    assert_eq!(content.kind, sealproto::EvidenceKind::Unseal);
    assert_eq!(content.command, Some(unseal_id as u32));
    n.commands_counted(2, 2).await;
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_queued_while_online_goes_out_at_once_and_a_resent_one_runs_once() {
    let n = Native::start("native-cmd-online").await;
    common::register_device(n.h.api(), LOCK, None).await;
    common::declare_sealed_transit(n.h.api(), "NC2", LOCK).await;
    let keys = device_keys(LOCK, 3);
    assert_eq!(n.provision(LOCK, &keys).await, 200);
    let mut c = Client::connect(n.native.addr(), Device::new(keys, n.platform)).await;
    let outputs = c.establish().await;
    assert!(executed(&outputs).is_empty(), "{outputs:?}");

    // Queued while connected: it comes without the device sending anything.
    let (status, queued) = queue(
        &n.h,
        LOCK,
        json!({"kind": "query_status", "actor": "officer-1"}),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let status_id = queued["id"].as_i64().unwrap();
    let mut outputs = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while executed(&outputs).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the command did not come: {outputs:?}"
        );
        outputs.extend(c.pump(Duration::from_secs(1)).await.expect("open"));
    }
    assert_eq!(executed(&outputs), vec![status_id as u32]);
    command_becomes(&n.h, LOCK, status_id, "done").await;

    // An interval reaches the device, which executes it but loses the connection before its
    // result goes out: the command stays sent.
    let (status, queued) = queue(
        &n.h,
        LOCK,
        json!({"kind": "set_interval", "actor": "officer-1", "args": {"seconds": 45}}),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let interval_id = queued["id"].as_i64().unwrap();
    let mut outputs = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while executed(&outputs).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the command did not come: {outputs:?}"
        );
        // Read without answering.
        outputs.extend(c.read(Duration::from_secs(1)).await.expect("open"));
    }
    assert_eq!(executed(&outputs), vec![interval_id as u32]);
    assert_eq!(c.device.report_interval_s(), 45);
    command_becomes(&n.h, LOCK, interval_id, "sent").await;
    let Client { stream, mut device } = c;
    device.disconnect();
    drop(stream);

    // On the next connection the gateway sends it again; the device answers without
    // executing it a second time, and the answer makes it done.
    let mut c = Client::connect(n.native.addr(), device).await;
    let mut outputs = c.establish().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, body) = common::api(
            n.h.api(),
            "GET",
            &format!("/api/v1/devices/{LOCK}/commands"),
            None,
        )
        .await;
        let c_ = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == interval_id)
            .cloned()
            .unwrap();
        if c_["state"] == "done" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the resent command was not answered: {c_}"
        );
        outputs.extend(c.pump(Duration::from_millis(200)).await.expect("open"));
    }
    assert!(executed(&outputs).is_empty(), "executed again: {outputs:?}");
    n.commands_counted(3, 2).await;
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_session_ends_once_its_keys_are_rotated_or_revoked() {
    let n = Native::start_with("native-keys-live", |c| {
        c.key_check_interval = Duration::from_millis(200);
    })
    .await;
    common::register_device(n.h.api(), LOCK, None).await;
    common::declare_sealed_transit(n.h.api(), "NC3", LOCK).await;
    let keys = device_keys(LOCK, 3);
    assert_eq!(n.provision(LOCK, &keys).await, 200);
    let mut c = Client::connect(n.native.addr(), Device::new(keys.clone(), n.platform)).await;
    c.establish().await;

    // Rotated (through the store, as `sealwatch device-key rotate` does): the live session
    // ends; the old keys are refused at the next hello, the new ones welcomed.
    let rotated = device_keys(LOCK, 9);
    let public = rotated.public();
    n.h.running
        .ingest
        .query(move |s| {
            s.put_device_keys(
                LOCK,
                &sealproto::to_hex(&public.signing.to_bytes()),
                &sealproto::to_hex(&public.agreement.to_bytes()),
                Timestamp::from_unix_ms(server::wall_clock().unix_ms()),
            )
        })
        .await
        .unwrap()
        .unwrap();
    assert!(
        c.closed_within(Duration::from_secs(5)).await,
        "session ended"
    );
    assert_eq!(n.native.stats().closed_keys_changed, 1);
    let mut old = Client::connect(n.native.addr(), Device::new(keys, n.platform)).await;
    assert!(!old.handshake().await, "old keys refused at the hello");
    let mut new = Client::connect(n.native.addr(), Device::new(rotated.clone(), n.platform)).await;
    new.establish().await;

    // Revoked: the live session ends, and the next hello is refused.
    n.h.running
        .ingest
        .query(|s| {
            s.revoke_device_keys(
                LOCK,
                Timestamp::from_unix_ms(server::wall_clock().unix_ms()),
            )
        })
        .await
        .unwrap()
        .unwrap();
    assert!(
        new.closed_within(Duration::from_secs(5)).await,
        "session ended"
    );
    assert_eq!(n.native.stats().closed_keys_changed, 2);
    let mut again = Client::connect(n.native.addr(), Device::new(rotated, n.platform)).await;
    assert!(
        !again.handshake().await,
        "revoked keys refused at the hello"
    );
    assert_eq!(n.native.stats().refused_revoked, 1);
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_held_across_a_reconnect_are_sent_again_and_stored_once() {
    let n = Native::start("native-reconnect").await;
    common::register_device(n.h.api(), LOCK, None).await;
    common::declare_sealed_transit(n.h.api(), "NT1", LOCK).await;
    let keys = device_keys(LOCK, 3);
    assert_eq!(n.provision(LOCK, &keys).await, 200);
    let device = Device::new(keys, n.platform);

    // A first report, acknowledged.
    let mut c = Client::connect(n.native.addr(), device).await;
    assert!(c.handshake().await, "welcomed");
    let first = c
        .device
        .report(reading(300, LockState::Locked, RopeState::Intact))
        .unwrap();
    c.send_outgoing().await;
    c.acknowledged(first).await;

    // A report sent, then the connection lost before its acknowledgement is read: the
    // gateway may well have stored it; the device cannot know and keeps it.
    let in_flight = c
        .device
        .report(reading(240, LockState::Locked, RopeState::Intact))
        .unwrap();
    c.send_outgoing().await;
    let Client { stream, mut device } = c;
    drop(stream);
    device.disconnect();
    assert_eq!(device.unacknowledged(), 1);

    // Offline: the device goes on reading and holds what it reads.
    let mut held = Vec::new();
    for seconds_ago in [180, 120, 60] {
        held.push(
            device
                .report(reading(seconds_ago, LockState::Locked, RopeState::Intact))
                .unwrap(),
        );
    }
    assert_eq!(device.unacknowledged(), 4);

    // Reconnected: everything unacknowledged goes again, and is acknowledged.
    let mut c = Client::connect(n.native.addr(), device).await;
    assert!(c.handshake().await, "welcomed again");
    c.send_outgoing().await;
    c.acknowledged(*held.last().unwrap()).await;
    assert_eq!(c.device.unacknowledged(), 0);

    // Each report is stored once, in order, whether it arrived once or twice.
    let stored = n.observations(LOCK).await;
    let seqs: Vec<u64> = stored.iter().filter_map(|o| o.seq).collect();
    let mut want = vec![first, in_flight];
    want.extend(&held);
    assert_eq!(seqs, want, "{stored:?}");
    let stats = n.native.stats();
    assert_eq!(stats.handshakes, 2);
    assert_eq!(stats.observations_accepted, 5, "{stats:?}");
    // The in-flight report, if the gateway read it before the connection went, came again
    // as a duplicate: acknowledged, not stored twice.
    assert!(stats.observations_duplicate <= 1, "{stats:?}");
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_record_is_stored_acknowledged_once_keeps_its_evidence_and_cannot_be_replayed() {
    let n = Native::start("native-batch").await;
    common::register_device(n.h.api(), LOCK, None).await;
    common::declare_sealed_transit(n.h.api(), "NT5", LOCK).await;
    let keys = device_keys(LOCK, 3);
    let public = keys.public();
    assert_eq!(n.provision(LOCK, &keys).await, 200);
    let mut c = Client::connect(n.native.addr(), Device::new(keys, n.platform)).await;
    assert!(c.handshake().await, "welcomed");

    // Five stored positions in one record; the rope is cut from the fourth on, so the fourth
    // is signed as tamper evidence inside the batch.
    let readings: Vec<Reading> = (0..5)
        .map(|i| {
            let rope = if i >= 3 {
                RopeState::Cut
            } else {
                RopeState::Intact
            };
            reading(300 - i * 60, LockState::Locked, rope)
        })
        .collect();
    let seqs = c.device.report_many(readings).unwrap();
    let batch = c.device.take_outgoing();
    assert_eq!(
        sealproto::FrameReader::new().push(&batch).len(),
        1,
        "one record"
    );
    c.stream.write_all(&batch).await.unwrap();

    // One acknowledgement, for the whole batch, and the batch stored by the time it arrives.
    let last = seqs.end - 1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let acks = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "batch not acknowledged within 5 s"
        );
        let out = c.read(Duration::from_secs(1)).await.expect("open");
        let acks: Vec<&DeviceOutput> = out
            .iter()
            .filter(|o| matches!(o, DeviceOutput::Acknowledged { .. }))
            .collect();
        if !acks.is_empty() {
            break acks.into_iter().cloned().collect::<Vec<_>>();
        }
    };
    assert_eq!(
        acks,
        [DeviceOutput::Acknowledged {
            seq: last,
            released: 5
        }]
    );
    let stored = n.observations(LOCK).await;
    let stored_seqs: Vec<u64> = stored.iter().filter_map(|o| o.seq).collect();
    assert_eq!(
        stored_seqs,
        seqs.clone().collect::<Vec<u64>>(),
        "{stored:?}"
    );
    assert_eq!(stored[3].rope, Some(RopeState::Cut));

    // The tamper evidence, kept per report, verifies with the device's public key alone
    // and says what was stored.
    let log = n.device_log(LOCK).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (log[0].source.as_str(), log[0].kind.as_str()),
        ("native", "evidence")
    );
    let record: sealproto::EvidenceRecord = serde_json::from_str(&log[0].text).unwrap();
    let content = sealproto::verify_evidence(&record, &public.signing).unwrap();
    assert_eq!(content.kind, sealproto::EvidenceKind::Tamper);
    assert_eq!(content.observation, stored[3]);

    // The batch record again: a replay, refused as a whole, nothing stored twice.
    c.stream.write_all(&batch).await.unwrap();
    assert!(
        common::eventually(Duration::from_secs(5), || n.native.stats().replays == 1).await,
        "{:?}",
        n.native.stats()
    );
    // A report after it is taken, and its acknowledgement is the next thing the device
    // reads: the replay was answered with nothing.
    let seq = c
        .device
        .report(reading(10, LockState::Locked, RopeState::Cut))
        .unwrap();
    c.send_outgoing().await;
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|o| matches!(o, DeviceOutput::Acknowledged { seq: s, .. } if *s >= seq))
    {
        assert!(tokio::time::Instant::now() < deadline + Duration::from_secs(5));
        seen.extend(c.read(Duration::from_secs(1)).await.expect("open"));
    }
    assert_eq!(
        seen,
        [DeviceOutput::Acknowledged { seq, released: 1 }],
        "nothing but the new report's acknowledgement"
    );
    assert_eq!(n.observations(LOCK).await.len(), 6);

    let stats = n.native.stats();
    assert_eq!(stats.observations_accepted, 6, "{stats:?}");
    assert_eq!(stats.observations_duplicate, 0, "{stats:?}");
    assert_eq!(stats.evidence, 1, "{stats:?}");
    assert_eq!(stats.replays, 1, "{stats:?}");
    assert_eq!(stats.protocol_errors, 0, "{stats:?}");
    n.stop().await;
}
