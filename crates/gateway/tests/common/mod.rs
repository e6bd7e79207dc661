//! What the gateway tests share: the service and the gateway on a temporary SQLite directory,
//! a transit to report on, and a device that speaks JT/T 808 over a real TCP socket.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use jt808::{
    Authentication, Body, Deframed, Deframer, DeviceTime, Header, Location, LocationItem,
    LockRecord, Message, Options, Phone, Properties, Registration, RegistrationLayout,
};
use model::Timestamp;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Harness {
    pub running: server::Running,
    pub gateway: gateway::Gateway,
    pub dir: PathBuf,
}

impl Harness {
    pub fn api(&self) -> SocketAddr {
        self.running.addr
    }

    pub fn jt808(&self) -> SocketAddr {
        self.gateway.addr()
    }

    pub async fn stop(self) {
        self.gateway.stop().await;
        self.running.stop().await.unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sealwatch-gw-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The service on a fresh SQLite directory, and the gateway beside it (port 0 for both).
pub async fn start(name: &str, configure: impl FnOnce(&mut gateway::Config)) -> Harness {
    let dir = temp_dir(name);
    let running = server::start(server::Config::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.clone(),
    ))
    .await
    .unwrap();
    let mut config = gateway::Config::new("127.0.0.1:0".parse().unwrap());
    configure(&mut config);
    let gateway = gateway::Gateway::start(config, running.ingest.clone())
        .await
        .unwrap();
    Harness {
        running,
        gateway,
        dir,
    }
}

/// One HTTP/1.1 request on a fresh connection; the status and the JSON body.
pub async fn api(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body.as_bytes()).await.unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
    )
}

/// Registers `device` in the registry (with `model`, when given).
pub async fn register_device(addr: SocketAddr, device: &str, model: Option<&str>) {
    let mut body = json!({"id": device, "kind": "active", "state": "sealed"});
    if let Some(m) = model {
        body["model"] = json!(m);
    }
    let (status, record) = api(addr, "POST", "/api/v1/devices", Some(body)).await;
    assert_eq!(status, 200, "{record}");
}

/// The contract example's zones, and its transit T1 on `device`, sealed ten minutes ago.
pub async fn declare_sealed_transit(addr: SocketAddr, id: &str, device: &str) {
    let example: Value =
        serde_json::from_str(include_str!("../../../../examples/contract-example.json")).unwrap();
    for z in example["zones"].as_array().unwrap() {
        assert_eq!(
            api(addr, "POST", "/api/v1/zones", Some(z.clone())).await.0,
            204
        );
    }
    let now = server::wall_clock().unix_ms();
    let at = |ms: i64| Timestamp::from_unix_ms(ms).to_string();
    let mut transit = example["transits"][0].clone();
    transit["id"] = json!(id);
    transit["device"] = json!(device);
    transit["sealed_at"] = json!(at(now - 600_000));
    transit["deadline"] = json!(at(now + 6 * 3_600_000));
    transit["vehicle"] = json!({"plate": "ZJ-A12345", "containers": ["CSQU3054383"]});
    let (status, body) = api(addr, "POST", "/api/v1/transits", Some(transit)).await;
    assert_eq!(status, 201, "{body}");
}

/// A whole second of the device's clock (GMT+8, the codec's default), `seconds_ago` before now.
pub fn device_time(seconds_ago: i64) -> (Timestamp, DeviceTime) {
    clock_time(seconds_ago, 8)
}

/// A whole second `seconds_ago` before now, and how a clock `offset_hours` ahead of UTC
/// shows it.
pub fn clock_time(seconds_ago: i64, offset_hours: i64) -> (Timestamp, DeviceTime) {
    let now_s = server::wall_clock().unix_ms() / 1000;
    let t = Timestamp::from_unix_ms((now_s - seconds_ago) * 1000);
    let local = Timestamp::from_unix_ms(t.unix_ms() + offset_hours * 3_600_000).to_string();
    let n = |r: std::ops::Range<usize>| local[r].parse::<u16>().unwrap();
    let time = DeviceTime {
        year: n(0..4),
        month: n(5..7) as u8,
        day: n(8..10) as u8,
        hour: n(11..13) as u8,
        minute: n(14..16) as u8,
        second: n(17..19) as u8,
    };
    (t, time)
}

/// What a read from the gateway gave.
#[derive(Debug)]
pub enum Got {
    Message(Message),
    Timeout,
    Closed,
}

/// A JT/T 808 terminal on a real socket.
pub struct Device {
    pub stream: TcpStream,
    pub phone: Phone,
    deframer: Deframer,
    serial: u16,
    inbox: std::collections::VecDeque<Message>,
}

impl Device {
    pub async fn connect(addr: SocketAddr, phone: &str) -> Device {
        Device {
            stream: TcpStream::connect(addr).await.unwrap(),
            phone: Phone::new(phone).unwrap(),
            deframer: Deframer::new(),
            serial: 0,
            inbox: Default::default(),
        }
    }

    pub fn header(&mut self, message_id: u16) -> Header {
        self.serial = self.serial.wrapping_add(1);
        Header {
            message_id,
            properties: Properties(0),
            version: None,
            phone: self.phone.clone(),
            serial: self.serial,
            subpackage: None,
        }
    }

    /// A frame and the serial number it carries.
    pub fn frame(&mut self, message_id: u16, body: Body) -> (Vec<u8>, u16) {
        let header = self.header(message_id);
        let serial = header.serial;
        (Message { header, body }.encode().unwrap(), serial)
    }

    pub fn registration(&mut self) -> (Vec<u8>, u16) {
        self.frame(
            0x0100,
            Body::Registration(Registration {
                layout: RegistrationLayout::V2013,
                province: 33,
                city: 7,
                manufacturer: b"SWTST".to_vec(),
                model: b"JT701".to_vec(),
                terminal_id: b"0000001".to_vec(),
                plate_color: 1,
                plate: b"ZJA12345".to_vec(),
            }),
        )
    }

    pub fn authentication(&mut self, code: &[u8]) -> (Vec<u8>, u16) {
        self.frame(
            0x0102,
            Body::Authentication(Authentication {
                auth_code: code.to_vec(),
                imei: None,
                software_version: None,
            }),
        )
    }

    pub fn heartbeat(&mut self) -> (Vec<u8>, u16) {
        self.frame(0x0002, Body::Heartbeat { bytes: Vec::new() })
    }

    /// A location report inside the Yiwu office zone, with one lock (0xD5).
    pub fn location(&mut self, time: DeviceTime, unlocked: bool) -> (Vec<u8>, u16) {
        self.frame(0x0200, Body::Location(location(time, unlocked)))
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next message from the gateway, within `within`.
    pub async fn recv(&mut self, within: Duration) -> Got {
        let deadline = tokio::time::Instant::now() + within;
        let mut buf = [0u8; 2048];
        loop {
            if let Some(m) = self.inbox.pop_front() {
                return Got::Message(m);
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await;
            let n = match read {
                Err(_) => return Got::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Got::Closed,
                Ok(Ok(n)) => n,
            };
            for item in self.deframer.push(&buf[..n]) {
                if let Ok(Deframed::Frame(f)) = item {
                    self.inbox.push_back(
                        f.decode(&Options::default())
                            .expect("the gateway's frames decode"),
                    );
                }
            }
        }
    }

    /// The next message, which must come within five seconds.
    pub async fn expect(&mut self) -> Message {
        match self.recv(Duration::from_secs(5)).await {
            Got::Message(m) => m,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    /// Waits for the platform general response to `serial`; its result.
    pub async fn general_response(&mut self, serial: u16) -> u8 {
        let m = self.expect().await;
        match m.body {
            Body::GeneralResponse(g) if m.header.message_id == 0x8001 => {
                assert_eq!(g.reply_serial, serial, "{m:?}");
                g.result
            }
            _ => panic!("expected 0x8001 to serial {serial}, got {m:?}"),
        }
    }

    /// Registers; the result code and the auth code.
    pub async fn register(&mut self) -> (u8, Vec<u8>) {
        let (frame, serial) = self.registration();
        self.send(&frame).await;
        let m = self.expect().await;
        match m.body {
            Body::RegistrationResponse(r) => {
                assert_eq!(r.reply_serial, serial);
                (r.result, r.auth_code)
            }
            _ => panic!("expected 0x8100, got {m:?}"),
        }
    }

    pub async fn authenticate(&mut self, code: &[u8]) -> u8 {
        let (frame, serial) = self.authentication(code);
        self.send(&frame).await;
        self.general_response(serial).await
    }

    /// Registers and authenticates, asserting both succeed.
    pub async fn log_in(&mut self) {
        let (result, code) = self.register().await;
        assert_eq!(result, 0, "registration");
        assert_eq!(self.authenticate(&code).await, 0, "authentication");
    }

    /// A heartbeat answered with success: the gateway is serving this connection.
    pub async fn alive(&mut self) {
        let (frame, serial) = self.heartbeat();
        self.send(&frame).await;
        assert_eq!(self.general_response(serial).await, 0, "heartbeat");
    }
}

pub fn location(time: DeviceTime, unlocked: bool) -> Location {
    Location {
        alarm: 0,
        status: Location::STATUS_FIX,
        latitude: 29_320_000,
        longitude: 120_080_000,
        altitude_m: 40,
        speed: 0,
        course: 0,
        time,
        items: vec![LocationItem::Locks(vec![LockRecord {
            id: [0x01, 0x02, 0x03, 0x04, 0x05],
            card: [0; 5],
            battery: 80,
            status: if unlocked { 1 << 5 } else { 0 },
        }])],
        trailing: Vec::new(),
    }
}

/// Polls `f` every 50 ms until it holds, for at most `within`.
pub async fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}
