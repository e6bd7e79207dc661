//! Reference devices on real sockets: a JT/T 808 e-lock ([`Jt808Device`]) and a device of
//! sealwatch's native protocol ([`NativeDevice`], around `sealproto::Device`).
//!
//! What an integrator, a test or the load generator needs to see sealwatch from the device's
//! side: connect and log in the way the device would (JT/T 808 registration, auth code and
//! authentication; the native signed handshake), report readings and wait for the platform's
//! acknowledgement, and carry out the remote commands the platform sends (seal, unseal,
//! reporting interval, status), answering them as the device would. `sealwatch emulate` is the
//! command-line face of this crate.
//!
//! The JT/T 808 e-lock speaks the default command set of the gateway
//! (`gateway::CommandSet::default`: 0x8300 texts `SEAL`, `UNSEAL`, `STATUS`; 0x8103 parameter
//! 0x0029 for the interval). Real locks use their vendor's words; so does the gateway, once
//! configured for the model.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use jt808::{
    Authentication, Body, Deframed, Deframer, DeviceTime, GeneralResponse, Header, Location,
    LocationBatch, LocationItem, LockRecord, Message, Options, Phone, Properties, Registration,
    RegistrationLayout, RopeCover,
};
use model::{DeviceEvent, HousingState, LockState, Reading, RopeState, Timestamp};
use sealproto::{DeviceKeys, DeviceOutput, Entropy, PublicKeys};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a device waits for an answer before it gives up on the connection.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a device could not go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("the gateway closed the connection")]
    Closed,
    #[error("no answer from the gateway within {0:?}")]
    Timeout(Duration),
    #[error("refused: {0}")]
    Refused(String),
    #[error("protocol: {0}")]
    Protocol(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The platform's answer to a batch of reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ack {
    /// Reports the platform acknowledged as taken (stored, or already stored).
    pub accepted: usize,
    /// Reports it answered with a failure (refused by the pipeline: no transit, in the
    /// future, invalid).
    pub refused: usize,
}

/// A remote command the device carried out.
#[derive(Clone, Debug, PartialEq)]
pub struct Executed {
    /// `seal`, `unseal`, `set_interval`, `query_status`, or the text of a command the
    /// device does not know (answered "not supported").
    pub command: String,
    /// Whether the device did it.
    pub done: bool,
    /// The lock's state afterwards, when the device knows it.
    pub lock: Option<LockState>,
}

/// The wall clock as a timestamp.
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp::from_unix_ms(ms)
}

async fn with_timeout<T>(f: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(ANSWER_TIMEOUT, f)
        .await
        .map_err(|_| Error::Timeout(ANSWER_TIMEOUT))?
}

/// A JT/T 808 e-lock (2013 header) on a TCP connection.
#[derive(Debug)]
pub struct Jt808Device {
    stream: TcpStream,
    phone: Phone,
    deframer: Deframer,
    serial: u16,
    inbox: VecDeque<Message>,
    buf: Vec<u8>,
    out: Vec<u8>,
    lock: LockState,
    interval_s: u32,
    executed: Vec<Executed>,
}

impl Jt808Device {
    /// Connects to a JT/T 808 gateway as the terminal with phone number `phone` (12 digits: the
    /// sealwatch device id), registers, and authenticates with the auth code it is given.
    pub async fn connect(target: SocketAddr, phone: &str) -> Result<Jt808Device> {
        let stream = TcpStream::connect(target).await?;
        stream.set_nodelay(true)?;
        Jt808Device::on(stream, phone).await
    }

    /// Registers and authenticates on a connection already made (the load generator makes
    /// its own, to pace them).
    pub async fn on(stream: TcpStream, phone: &str) -> Result<Jt808Device> {
        let phone = Phone::new(phone)
            .map_err(|e| Error::Protocol(format!("phone number {phone:?}: {e}")))?;
        let mut d = Jt808Device {
            stream,
            phone,
            deframer: Deframer::new(),
            serial: 0,
            inbox: VecDeque::new(),
            buf: vec![0; 4096],
            out: Vec::with_capacity(4096),
            lock: LockState::Locked,
            interval_s: 30,
            executed: Vec::new(),
        };
        with_timeout(d.login()).await?;
        Ok(d)
    }

    /// The lock's state as the device knows it (what the last command left it in).
    pub fn lock(&self) -> LockState {
        self.lock
    }

    /// The reporting interval the platform last set, in seconds.
    pub fn interval_s(&self) -> u32 {
        self.interval_s
    }

    /// The commands carried out since the last call.
    pub fn take_executed(&mut self) -> Vec<Executed> {
        std::mem::take(&mut self.executed)
    }

    fn frame(&mut self, message_id: u16, body: Body) -> Result<u16> {
        self.serial = self.serial.wrapping_add(1);
        let header = Header {
            message_id,
            properties: Properties(0),
            version: None,
            phone: self.phone.clone(),
            serial: self.serial,
            subpackage: None,
        };
        let bytes = Message { header, body }
            .encode()
            .map_err(|e| Error::Protocol(format!("encoding 0x{message_id:04x}: {e}")))?;
        self.out.extend_from_slice(&bytes);
        Ok(self.serial)
    }

    async fn flush(&mut self) -> Result<()> {
        self.stream.write_all(&self.out).await?;
        self.out.clear();
        Ok(())
    }

    /// The next message from the platform that is not a command (commands are carried out
    /// and answered on the way).
    async fn next(&mut self) -> Result<Message> {
        loop {
            while let Some(m) = self.inbox.pop_front() {
                if !self.command(&m)? {
                    return Ok(m);
                }
            }
            if !self.out.is_empty() {
                self.flush().await?;
            }
            let n = self.stream.read(&mut self.buf).await?;
            if n == 0 {
                return Err(Error::Closed);
            }
            for item in self.deframer.push(&self.buf[..n]) {
                if let Ok(Deframed::Frame(f)) = item {
                    let m = f
                        .decode(&Options::default())
                        .map_err(|e| Error::Protocol(format!("a frame from the gateway: {e}")))?;
                    self.inbox.push_back(m);
                }
            }
        }
    }

    /// Carries out a platform command and queues the answer (0x0001); false when `m` is not
    /// a command.
    fn command(&mut self, m: &Message) -> Result<bool> {
        let Body::Other { bytes } = &m.body else {
            return Ok(false);
        };
        let (command, done) = match m.header.message_id {
            // Text message: a flags byte, then the text (ASCII for the default command set).
            0x8300 => {
                let text = String::from_utf8_lossy(bytes.get(1..).unwrap_or_default())
                    .trim()
                    .to_owned();
                match text.as_str() {
                    "SEAL" => {
                        self.lock = LockState::Locked;
                        ("seal".to_owned(), true)
                    }
                    "UNSEAL" => {
                        self.lock = LockState::Unlocked;
                        ("unseal".to_owned(), true)
                    }
                    "STATUS" => ("query_status".to_owned(), true),
                    _ => (text, false),
                }
            }
            // Set parameters: a count, then id (u32), length (u8) and value per parameter.
            0x8103 => match bytes.as_slice() {
                [_, 0, 0, 0, 0x29, 4, a, b, c, d, ..] => {
                    self.interval_s = u32::from_be_bytes([*a, *b, *c, *d]);
                    ("set_interval".to_owned(), true)
                }
                _ => ("set_parameters".to_owned(), false),
            },
            0x8105 => (
                format!(
                    "terminal_control {}",
                    bytes.first().copied().unwrap_or_default()
                ),
                false,
            ),
            _ => return Ok(false),
        };
        self.executed.push(Executed {
            command,
            done,
            lock: Some(self.lock),
        });
        // 0 success, 3 not supported.
        let result = if done { 0 } else { 3 };
        self.frame(
            0x0001,
            Body::GeneralResponse(GeneralResponse {
                reply_serial: m.header.serial,
                reply_id: m.header.message_id,
                result,
            }),
        )?;
        Ok(true)
    }

    /// The platform general response (0x8001) to `serial`: its result.
    async fn response_to(&mut self, serial: u16) -> Result<u8> {
        loop {
            let m = self.next().await?;
            if let Body::GeneralResponse(g) = m.body
                && m.header.message_id == 0x8001
                && g.reply_serial == serial
            {
                return Ok(g.result);
            }
        }
    }

    async fn login(&mut self) -> Result<()> {
        let serial = self.frame(
            0x0100,
            Body::Registration(Registration {
                layout: RegistrationLayout::V2013,
                province: 33,
                city: 7,
                manufacturer: b"SWEMU".to_vec(),
                model: b"JT701".to_vec(),
                terminal_id: b"0000001".to_vec(),
                plate_color: 1,
                plate: b"ZJA12345".to_vec(),
            }),
        )?;
        self.flush().await?;
        let code = loop {
            let m = self.next().await?;
            if let Body::RegistrationResponse(r) = m.body
                && r.reply_serial == serial
            {
                if r.result != 0 {
                    return Err(Error::Refused(format!(
                        "registration (result {}): is the device in the registry?",
                        r.result
                    )));
                }
                break r.auth_code;
            }
        };
        let serial = self.frame(
            0x0102,
            Body::Authentication(Authentication {
                auth_code: code,
                imei: None,
                software_version: None,
            }),
        )?;
        self.flush().await?;
        match self.response_to(serial).await? {
            0 => Ok(()),
            result => Err(Error::Refused(format!("authentication (result {result})"))),
        }
    }

    /// Reports `readings` (one location report, or one batch upload 0x0704 for several) and
    /// waits for the platform's answer. A reading without a lock state reports the lock as
    /// the device knows it.
    pub async fn report(&mut self, readings: &[Reading]) -> Result<Ack> {
        if readings.is_empty() {
            return Ok(Ack::default());
        }
        let locations: Vec<Location> = readings.iter().map(|r| self.location(r)).collect();
        let serial = if let [one] = locations.as_slice() {
            self.frame(0x0200, Body::Location(one.clone()))?
        } else {
            self.frame(
                0x0704,
                Body::LocationBatch(LocationBatch { kind: 1, locations }),
            )?
        };
        self.flush().await?;
        // One answer for the whole frame.
        Ok(match with_timeout(self.response_to(serial)).await? {
            0 => Ack {
                accepted: readings.len(),
                refused: 0,
            },
            _ => Ack {
                accepted: 0,
                refused: readings.len(),
            },
        })
    }

    /// Sends a heartbeat (0x0002) and returns the platform's answer (0 when taken).
    pub async fn heartbeat(&mut self) -> Result<u8> {
        let serial = self.frame(0x0002, Body::Heartbeat { bytes: Vec::new() })?;
        self.flush().await?;
        with_timeout(self.response_to(serial)).await
    }

    /// Stays on the line for `within`, carrying out and answering the commands that come.
    pub async fn listen(&mut self, within: Duration) -> Result<()> {
        match tokio::time::timeout(within, self.next()).await {
            // Only commands are expected; anything else is dropped.
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                if !self.out.is_empty() {
                    self.flush().await?;
                }
                Ok(())
            }
        }
    }

    /// A reading as a JT/T 808 location: position, speed, one lock record (0xD5) with the
    /// battery, the rope and cover item (0xDA) when the reading has them, tamper as alarm bit
    /// 16; the time on a device clock at GMT+8 (the codec's default).
    fn location(&self, r: &Reading) -> Location {
        let (lat, lon) = (r.lat.unwrap_or(0.0), r.lon.unwrap_or(0.0));
        let mut status = 0;
        if r.fix.unwrap_or(r.lat.is_some()) {
            status |= Location::STATUS_FIX;
        }
        if lat < 0.0 {
            status |= Location::STATUS_SOUTH;
        }
        if lon < 0.0 {
            status |= Location::STATUS_WEST;
        }
        let lock = r.lock.unwrap_or(self.lock);
        let mut items = vec![LocationItem::Locks(vec![LockRecord {
            id: [0x01, 0x02, 0x03, 0x04, 0x05],
            card: [0; 5],
            battery: r
                .battery_pct
                .map_or(100, |b| b.clamp(0.0, 100.0).round() as u8),
            status: if lock == LockState::Locked { 0 } else { 1 << 5 },
        }])];
        if r.rope.is_some() || r.housing.is_some() {
            let mut status = 0;
            if r.rope == Some(RopeState::Cut) {
                status |= 0x01;
            }
            if r.housing == Some(HousingState::Breached) {
                status |= 0x08;
            }
            items.push(LocationItem::RopeCover(RopeCover {
                cut_count: None,
                status,
            }));
        }
        let alarm = if r.events.contains(DeviceEvent::Tamper) {
            1 << 16
        } else {
            0
        };
        Location {
            alarm,
            status,
            latitude: (lat.abs() * 1e6).round() as u32,
            longitude: (lon.abs() * 1e6).round() as u32,
            altitude_m: 0,
            speed: r
                .speed_kmh
                .map_or(0, |s| (s.max(0.0) * 10.0).round() as u16),
            course: r
                .course_deg
                .map_or(0, |h| (h.rem_euclid(360.0)).round() as u16 % 360),
            time: device_time(r.t),
            items,
            trailing: Vec::new(),
        }
    }
}

/// `t` on a device clock eight hours ahead of UTC, to the second.
fn device_time(t: Timestamp) -> DeviceTime {
    let local = Timestamp::from_unix_ms(t.unix_ms() + 8 * 3_600_000).to_string();
    let n = |r: std::ops::Range<usize>| local.get(r).and_then(|s| s.parse::<u16>().ok());
    DeviceTime {
        year: n(0..4).unwrap_or(2000),
        month: n(5..7).unwrap_or(1) as u8,
        day: n(8..10).unwrap_or(1) as u8,
        hour: n(11..13).unwrap_or(0) as u8,
        minute: n(14..16).unwrap_or(0) as u8,
        second: n(17..19).unwrap_or(0) as u8,
    }
}

/// A native-protocol device on a TCP connection.
#[derive(Debug)]
pub struct NativeDevice {
    stream: TcpStream,
    device: sealproto::Device,
    buf: Vec<u8>,
    executed: Vec<Executed>,
}

impl NativeDevice {
    /// Connects to a native gateway with the device's keys and the platform's public keys, and
    /// completes the signed handshake.
    pub async fn connect(
        target: SocketAddr,
        keys: DeviceKeys,
        platform: PublicKeys,
    ) -> Result<NativeDevice> {
        NativeDevice::reconnect(target, sealproto::Device::new(keys, platform)).await
    }

    /// Connects again with a device that was connected before: what it holds unacknowledged
    /// is sent again once the handshake is done.
    pub async fn reconnect(target: SocketAddr, device: sealproto::Device) -> Result<NativeDevice> {
        let stream = TcpStream::connect(target).await?;
        stream.set_nodelay(true)?;
        let mut d = NativeDevice {
            stream,
            device,
            buf: vec![0; 16 * 1024],
            executed: Vec::new(),
        };
        with_timeout(d.login()).await?;
        Ok(d)
    }

    /// The protocol state machine, for what this wrapper does not show (and to reconnect).
    pub fn into_device(self) -> sealproto::Device {
        self.device
    }

    /// The lock's state as the device knows it.
    pub fn lock(&self) -> Option<LockState> {
        self.device.lock()
    }

    /// The reporting interval the platform last set, in seconds.
    pub fn interval_s(&self) -> u32 {
        self.device.report_interval_s()
    }

    /// The commands carried out since the last call.
    pub fn take_executed(&mut self) -> Vec<Executed> {
        std::mem::take(&mut self.executed)
    }

    async fn flush(&mut self) -> Result<()> {
        let out = self.device.take_outgoing();
        if !out.is_empty() {
            self.stream.write_all(&out).await?;
        }
        Ok(())
    }

    /// Reads once; what the device made of it (commands are carried out and answered).
    async fn read(&mut self) -> Result<Vec<DeviceOutput>> {
        let n = self.stream.read(&mut self.buf).await?;
        if n == 0 {
            return Err(Error::Closed);
        }
        let mut outputs = Vec::new();
        for r in self.device.receive(now(), &self.buf[..n]) {
            let o = r.map_err(|e| Error::Protocol(format!("from the gateway: {e}")))?;
            if let DeviceOutput::Executed {
                command, result, ..
            } = &o
            {
                let command = match command {
                    sealproto::Command::Seal { .. } => "seal",
                    sealproto::Command::Unseal { .. } => "unseal",
                    sealproto::Command::SetReportInterval { .. } => "set_interval",
                    sealproto::Command::QueryStatus => "query_status",
                };
                self.executed.push(Executed {
                    command: command.to_owned(),
                    done: result.status == sealproto::CommandStatus::Done,
                    lock: self.device.lock(),
                });
            }
            outputs.push(o);
        }
        // Command results, and reports a command caused.
        self.flush().await?;
        Ok(outputs)
    }

    async fn login(&mut self) -> Result<()> {
        let mut random = [0u8; 64];
        getrandom::fill(&mut random)
            .map_err(|e| Error::Protocol(format!("no randomness for the handshake: {e}")))?;
        self.device.connect(Entropy::from_bytes(random));
        self.flush().await?;
        while !self.device.is_connected() {
            match self.read().await {
                Err(Error::Closed) => {
                    return Err(Error::Refused(
                        "the gateway closed the connection after the hello: are the device's keys provisioned and the platform's keys right?".into(),
                    ));
                }
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    /// Reports `readings` and waits until the platform has acknowledged them all.
    /// Acknowledgements are cumulative and a report the pipeline refused is acknowledged
    /// too (the refusal is final), so every report counts as accepted here.
    pub async fn report(&mut self, readings: &[Reading]) -> Result<Ack> {
        let mut last = None;
        for r in readings {
            last = Some(
                self.device
                    .report(*r)
                    .map_err(|e| Error::Protocol(format!("report: {e}")))?,
            );
        }
        let Some(last) = last else {
            return Ok(Ack::default());
        };
        self.flush().await?;
        with_timeout(async {
            loop {
                for o in self.read().await? {
                    if let DeviceOutput::Acknowledged { seq, .. } = o
                        && seq >= last
                    {
                        return Ok(Ack {
                            accepted: readings.len(),
                            refused: 0,
                        });
                    }
                }
            }
        })
        .await
    }

    /// Stays on the line for `within`, carrying out and answering the commands that come.
    pub async fn listen(&mut self, within: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.read()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(()),
            }
        }
    }
}

/// Either device, for code that works with both.
#[derive(Debug)]
pub enum Emulated {
    Jt808(Box<Jt808Device>),
    Native(Box<NativeDevice>),
}

impl Emulated {
    pub async fn report(&mut self, readings: &[Reading]) -> Result<Ack> {
        match self {
            Emulated::Jt808(d) => d.report(readings).await,
            Emulated::Native(d) => d.report(readings).await,
        }
    }

    pub async fn listen(&mut self, within: Duration) -> Result<()> {
        match self {
            Emulated::Jt808(d) => d.listen(within).await,
            Emulated::Native(d) => d.listen(within).await,
        }
    }

    pub fn take_executed(&mut self) -> Vec<Executed> {
        match self {
            Emulated::Jt808(d) => d.take_executed(),
            Emulated::Native(d) => d.take_executed(),
        }
    }

    /// The lock's state as the device knows it.
    pub fn lock(&self) -> Option<LockState> {
        match self {
            Emulated::Jt808(d) => Some(d.lock()),
            Emulated::Native(d) => d.lock(),
        }
    }
}
