//! A reference device: the protocol as a device speaks it, for tests, the emulator and the
//! load generator.

use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;

use model::{
    DeviceEvent, DeviceEvents, DeviceId, HousingState, LockState, Reading, RopeState, Timestamp,
    TransitId,
};
use x25519_dalek::StaticSecret;

use crate::Error;
use crate::evidence::{EvidenceKind, attest};
use crate::frame::{Frame, FrameKind, FrameReader};
use crate::handshake::{Hello, SharedSecrets, Welcome, agree, derive_keys, transcript_hash};
use crate::keys::{DeviceKeys, Entropy, PublicKeys};
use crate::message::{
    Command, CommandResult, CommandStatus, MAX_BATCH_REPORTS, Message, Report, encode_report_item,
};
use crate::record::{MAX_MESSAGE_LEN, Receiver, Sender};

/// How many unacknowledged reports a device keeps. A real device has flash for more; the
/// bound keeps the emulator's memory fixed.
pub const MAX_UNACKNOWLEDGED: usize = 4096;
/// How many executed commands a device remembers, to answer a resent one without executing
/// it again.
const REMEMBERED_COMMANDS: usize = 32;

/// What happened on the device side.
#[derive(Clone, Debug, PartialEq)]
pub enum DeviceOutput {
    /// The platform's welcome verified; unacknowledged reports were sent again.
    Connected,
    /// The platform acknowledged every report up to `seq`; `released` of them were held.
    Acknowledged { seq: u64, released: usize },
    /// A command was executed and answered.
    Executed {
        id: u32,
        command: Command,
        result: CommandResult,
    },
}

enum Link {
    Offline,
    AwaitingWelcome {
        ephemeral: StaticSecret,
        hello_body: Vec<u8>,
    },
    Connected {
        send: Sender,
        recv: Receiver,
    },
}

/// A device speaking the protocol: its keys, its link to the platform, its report counter,
/// the reports not yet acknowledged, and its lock. It does no I/O and reads no clock: the
/// caller moves bytes and passes the time.
///
/// [`Device::report`] sends a report in a record of its own; [`Device::report_many`] and the
/// resending after a handshake pack reports into batch records.
///
/// ```
/// use sealproto::{Device, DeviceKeys, Entropy, PlatformKeys, Session, Received};
/// use model::{Reading, Timestamp};
///
/// let platform = PlatformKeys::from_secrets([1; 32], [2; 32]);
/// let keys = DeviceKeys::from_secrets("D1".parse().unwrap(), [3; 32], [4; 32]);
/// let device_public = keys.public();
/// let mut device = Device::new(keys, platform.public());
/// let mut session = Session::new(platform);
///
/// device.connect(Entropy::new([5; 32], [6; 32]));
/// let got = session.receive(&device.take_outgoing());
/// assert!(matches!(&got[0], Ok(Received::Hello { device }) if device.as_str() == "D1"));
/// session.accept(&device_public, Entropy::new([7; 32], [8; 32])).unwrap();
/// let now = Timestamp::from_unix_ms(1_764_057_600_000);
/// device.receive(now, &session.take_outgoing());
/// assert!(device.is_connected());
///
/// let seq = device.report(Reading::empty(now)).unwrap();
/// let got = session.receive(&device.take_outgoing());
/// assert!(matches!(&got[1], Ok(Received::Report { observation, .. }) if observation.seq == Some(seq)));
/// session.acknowledge(seq).unwrap();
/// device.receive(now, &session.take_outgoing());
/// assert_eq!(device.unacknowledged(), 0);
/// ```
pub struct Device {
    keys: DeviceKeys,
    platform: PublicKeys,
    reader: FrameReader,
    outgoing: Vec<u8>,
    link: Link,
    next_seq: u64,
    /// Reports not yet acknowledged, oldest first, each encoded as a report message carries it
    /// after its type byte: the form a batch carries it in too, so packing is copying.
    unacked: VecDeque<(u64, Vec<u8>)>,
    /// The last reading reported; commanded reports start from it.
    last: Option<Reading>,
    lock: Option<LockState>,
    report_interval_s: u32,
    executed: VecDeque<(u32, CommandResult)>,
}

impl Device {
    /// A device that has never reported: its first report has `seq` 1.
    pub fn new(keys: DeviceKeys, platform: PublicKeys) -> Device {
        Device {
            keys,
            platform,
            reader: FrameReader::new(),
            outgoing: Vec::new(),
            link: Link::Offline,
            next_seq: 1,
            unacked: VecDeque::new(),
            last: None,
            lock: None,
            report_interval_s: 60,
            executed: VecDeque::new(),
        }
    }

    pub fn id(&self) -> &DeviceId {
        &self.keys.device
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.link, Link::Connected { .. })
    }

    /// Reports sent (or waiting to be) and not yet acknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.unacked.len()
    }

    pub fn lock(&self) -> Option<LockState> {
        self.lock
    }

    pub fn report_interval_s(&self) -> u32 {
        self.report_interval_s
    }

    /// Bytes to write to the connection. Empties the queue.
    pub fn take_outgoing(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.outgoing)
    }

    /// Starts a handshake on a new connection (dropping any previous one): queues the hello.
    pub fn connect(&mut self, entropy: Entropy) {
        let hello = Hello::signed(
            &self.keys.device,
            &self.keys.pairs,
            &entropy.ephemeral,
            entropy.nonce,
        );
        let hello_body = hello.encode();
        self.reader = FrameReader::new();
        self.outgoing.clear();
        // A device id is at most 64 bytes: a hello is far below the frame limit.
        if let Ok(frame) = Frame::new(FrameKind::Hello, &hello_body) {
            self.outgoing.extend_from_slice(frame.as_bytes());
        }
        self.link = Link::AwaitingWelcome {
            ephemeral: entropy.ephemeral,
            hello_body,
        };
    }

    /// The connection is gone. Unacknowledged reports are kept for the next one.
    pub fn disconnect(&mut self) {
        self.link = Link::Offline;
        self.outgoing.clear();
    }

    /// Takes the next bytes from the connection; `now` dates the reports that commands cause.
    pub fn receive(&mut self, now: Timestamp, bytes: &[u8]) -> Vec<Result<DeviceOutput, Error>> {
        let mut out = Vec::new();
        for item in self.reader.push(bytes) {
            match item {
                Err(e) => out.push(Err(Error::Frame(e))),
                Ok(frame) => self.on_frame(now, &frame, &mut out),
            }
        }
        out
    }

    fn on_frame(
        &mut self,
        now: Timestamp,
        frame: &Frame,
        out: &mut Vec<Result<DeviceOutput, Error>>,
    ) {
        match (&mut self.link, frame.kind()) {
            (Link::AwaitingWelcome { .. }, FrameKind::Welcome) => {
                let Link::AwaitingWelcome {
                    ephemeral,
                    hello_body,
                } = std::mem::replace(&mut self.link, Link::Offline)
                else {
                    return;
                };
                match self.complete(&ephemeral, &hello_body, frame.body()) {
                    Ok(()) => {
                        out.push(Ok(DeviceOutput::Connected));
                        self.resend_unacknowledged(out);
                    }
                    Err(e) => out.push(Err(e)),
                }
            }
            (Link::Connected { recv, .. }, FrameKind::Record) => match recv.open(frame) {
                Ok(plain) => match Message::decode(&plain) {
                    Ok(message) => self.on_message(now, message, out),
                    Err(source) => out.push(Err(Error::Malformed {
                        what: "message",
                        source,
                    })),
                },
                Err(e) => out.push(Err(e)),
            },
            (link, kind) => {
                let state = match link {
                    Link::Offline => "offline",
                    Link::AwaitingWelcome { .. } => "awaiting the welcome",
                    Link::Connected { .. } => "connected",
                };
                out.push(Err(Error::UnexpectedFrame { kind, state }));
                // A device that is not connected has nothing to lose by dropping the attempt.
                if !self.is_connected() {
                    self.link = Link::Offline;
                }
            }
        }
    }

    /// Verifies the welcome and derives the traffic keys.
    fn complete(
        &mut self,
        ephemeral: &StaticSecret,
        hello_body: &[u8],
        welcome_body: &[u8],
    ) -> Result<(), Error> {
        let welcome = Welcome::decode(welcome_body).map_err(|source| Error::Malformed {
            what: "welcome",
            source,
        })?;
        if !welcome.verify(hello_body, &self.platform.signing) {
            return Err(Error::BadSignature {
                what: "welcome",
                signer: "platform",
            });
        }
        let shared = match (
            agree(ephemeral, welcome.ephemeral),
            agree(ephemeral, self.platform.agreement.to_bytes()),
            agree(&self.keys.pairs.agreement, welcome.ephemeral),
        ) {
            (Some(ee), Some(es), Some(se)) => SharedSecrets { ee, es, se },
            _ => return Err(Error::WeakKey),
        };
        let transcript = transcript_hash(
            hello_body,
            welcome_body,
            &self.keys.public().agreement,
            &self.platform.agreement,
        );
        let keys = derive_keys(&shared, &transcript);
        self.link = Link::Connected {
            send: Sender::new(&keys.device_to_platform),
            recv: Receiver::new(&keys.platform_to_device),
        };
        Ok(())
    }

    /// Sends every unacknowledged report again, packed into batch records: after a long time
    /// offline that is many reports, and one record for many costs one tag and one frame.
    fn resend_unacknowledged(&mut self, out: &mut Vec<Result<DeviceOutput, Error>>) {
        let Link::Connected { send, .. } = &mut self.link else {
            return;
        };
        let items = self.unacked.iter().map(|(_, item)| item.as_slice());
        if let Err(e) = seal_reports(send, items, &mut self.outgoing) {
            out.push(Err(e));
        }
    }

    fn on_message(
        &mut self,
        now: Timestamp,
        message: Message,
        out: &mut Vec<Result<DeviceOutput, Error>>,
    ) {
        match message {
            Message::Ack { seq } => {
                let before = self.unacked.len();
                self.unacked.retain(|(s, _)| *s > seq);
                out.push(Ok(DeviceOutput::Acknowledged {
                    seq,
                    released: before - self.unacked.len(),
                }));
            }
            Message::Command { id, command } => {
                if let Some((_, result)) = self.executed.iter().find(|(i, _)| *i == id) {
                    // Resent after a reconnection: answer again, do not act again.
                    let result = *result;
                    if let Err(e) = self.send(&Message::CommandResult(result)) {
                        out.push(Err(e));
                    }
                    return;
                }
                let result = self.execute(now, id, &command);
                if self.executed.len() == REMEMBERED_COMMANDS {
                    self.executed.pop_front();
                }
                self.executed.push_back((id, result));
                match self.send(&Message::CommandResult(result)) {
                    Ok(()) => out.push(Ok(DeviceOutput::Executed {
                        id,
                        command,
                        result,
                    })),
                    Err(e) => out.push(Err(e)),
                }
            }
            Message::Report { .. } => out.push(Err(Error::WrongDirection { message: "report" })),
            Message::Batch(_) => out.push(Err(Error::WrongDirection {
                message: "report batch",
            })),
            Message::CommandResult(_) => out.push(Err(Error::WrongDirection {
                message: "command result",
            })),
        }
    }

    fn execute(&mut self, now: Timestamp, id: u32, command: &Command) -> CommandResult {
        let mut reading = self.last.unwrap_or_else(|| Reading::empty(now));
        reading.t = now;
        reading.events = DeviceEvents::default();
        let (status, report) = match command {
            Command::Seal { transit } => {
                if reading.rope == Some(RopeState::Cut) {
                    (CommandStatus::Refused, None)
                } else {
                    reading.lock = Some(LockState::Locked);
                    let evidence = (EvidenceKind::Seal, Some(id), transit.clone());
                    (CommandStatus::Done, Some((reading, Some(evidence))))
                }
            }
            Command::Unseal { transit } => {
                reading.lock = Some(LockState::Unlocked);
                reading.events.insert(DeviceEvent::UnlockAuthorized);
                let evidence = (EvidenceKind::Unseal, Some(id), transit.clone());
                (CommandStatus::Done, Some((reading, Some(evidence))))
            }
            Command::SetReportInterval { seconds } => {
                self.report_interval_s = *seconds;
                (CommandStatus::Done, None)
            }
            Command::QueryStatus => (CommandStatus::Done, Some((reading, None))),
        };
        let report_seq = match report {
            None => None,
            Some((reading, evidence)) => match self.report_with(reading, evidence) {
                Ok(seq) => Some(seq),
                Err(_) => {
                    return CommandResult {
                        id,
                        status: CommandStatus::Failed,
                        report_seq: None,
                    };
                }
            },
        };
        CommandResult {
            id,
            status,
            report_seq,
        }
    }

    /// Reports a reading (its `seq` is replaced by the device's next one, which is
    /// returned). Sent now when connected, in a record of its own; after the next handshake
    /// otherwise, and again after every reconnection until acknowledged (then packed into
    /// batch records with the other reports held).
    ///
    /// A reading that shows tampering for the first time (a tamper-class event, or the rope
    /// or housing newly cut or breached) is signed as tamper evidence.
    pub fn report(&mut self, reading: Reading) -> Result<u64, Error> {
        let tamper = is_new_tamper(self.last.as_ref(), &reading).then_some((
            EvidenceKind::Tamper,
            None,
            None,
        ));
        self.report_with(reading, tamper)
    }

    /// Reports several readings at once, oldest first, as a device sends the positions it has
    /// stored: each gets the next `seq` (the range is returned) and is signed as tamper
    /// evidence exactly as [`Device::report`] would sign it, and when connected they go out
    /// packed into as few records as fit (batch messages of up to [`MAX_BATCH_REPORTS`]
    /// reports within the record's length; a report left alone goes as a report message).
    /// Held and sent again like any report until acknowledged.
    ///
    /// All or nothing: an invalid reading, or more reports than the device may hold, refuses
    /// the lot and changes nothing.
    pub fn report_many(
        &mut self,
        readings: impl IntoIterator<Item = Reading>,
    ) -> Result<Range<u64>, Error> {
        let readings: Vec<Reading> = readings.into_iter().collect();
        for r in &readings {
            r.validate().map_err(Error::InvalidObservation)?;
        }
        if self.unacked.len() + readings.len() > MAX_UNACKNOWLEDGED {
            return Err(Error::BufferFull {
                held: self.unacked.len(),
            });
        }
        let first = self.next_seq;
        let mut last = self.last;
        let mut lock = self.lock;
        let mut items = Vec::with_capacity(readings.len());
        for (seq, mut reading) in (first..).zip(readings) {
            reading.seq = Some(seq);
            let report = Report { seq, reading };
            let attestation = is_new_tamper(last.as_ref(), &reading).then(|| {
                attest(
                    &self.keys.pairs,
                    &self.keys.device,
                    EvidenceKind::Tamper,
                    None,
                    None,
                    &report,
                )
            });
            let mut item = Vec::with_capacity(64);
            encode_report_item(&report, attestation.as_ref(), &mut item);
            items.push((seq, item));
            if reading.lock.is_some() {
                lock = reading.lock;
            }
            last = Some(reading);
        }
        if let Link::Connected { send, .. } = &mut self.link {
            // Sealed aside, so that a failure leaves nothing half sent and nothing taken.
            let mut frames = Vec::new();
            seal_reports(send, items.iter().map(|(_, i)| i.as_slice()), &mut frames)?;
            self.outgoing.extend_from_slice(&frames);
        }
        self.next_seq = first + items.len() as u64;
        self.unacked.extend(items);
        self.last = last;
        self.lock = lock;
        Ok(first..self.next_seq)
    }

    fn report_with(
        &mut self,
        mut reading: Reading,
        evidence: Option<(EvidenceKind, Option<u32>, Option<TransitId>)>,
    ) -> Result<u64, Error> {
        reading.validate().map_err(Error::InvalidObservation)?;
        if self.unacked.len() >= MAX_UNACKNOWLEDGED {
            return Err(Error::BufferFull {
                held: self.unacked.len(),
            });
        }
        let seq = self.next_seq;
        reading.seq = Some(seq);
        let report = Report { seq, reading };
        let attestation = evidence.map(|(kind, command, transit)| {
            attest(
                &self.keys.pairs,
                &self.keys.device,
                kind,
                command,
                transit,
                &report,
            )
        });
        let mut item = Vec::with_capacity(64);
        encode_report_item(&report, attestation.as_ref(), &mut item);
        if let Link::Connected { send, .. } = &mut self.link {
            seal_reports(send, [item.as_slice()], &mut self.outgoing)?;
        }
        self.next_seq += 1;
        self.unacked.push_back((seq, item));
        if reading.lock.is_some() {
            self.lock = reading.lock;
        }
        self.last = Some(reading);
        Ok(seq)
    }

    fn send(&mut self, message: &Message) -> Result<(), Error> {
        let Link::Connected { send, .. } = &mut self.link else {
            return Err(Error::NotEstablished("the device is not connected"));
        };
        let frame = send.seal(&message.encode())?;
        self.outgoing.extend_from_slice(&frame);
        Ok(())
    }
}

/// Seals encoded reports (oldest first, each as a report message carries it after its type
/// byte) into as few records as fit, appending the frames to `out`: batch messages of up to
/// [`MAX_BATCH_REPORTS`] reports within [`MAX_MESSAGE_LEN`], and a report message for a report
/// left alone, since a batch of one is not an encoding (every message has one).
fn seal_reports<'a>(
    send: &mut Sender,
    items: impl IntoIterator<Item = &'a [u8]>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    // The message being filled: type 5 and a count byte, then the reports.
    let mut group = vec![5u8, 0];
    let mut count = 0;
    for item in items {
        if count > 0 && (count == MAX_BATCH_REPORTS || group.len() + item.len() > MAX_MESSAGE_LEN) {
            seal_group(send, &mut group, count, out)?;
            count = 0;
        }
        group.extend_from_slice(item);
        count += 1;
    }
    if count > 0 {
        seal_group(send, &mut group, count, out)?;
    }
    Ok(())
}

/// Seals the reports gathered in `group` (type 5, a count byte, the reports) and empties it.
fn seal_group(
    send: &mut Sender,
    group: &mut Vec<u8>,
    count: usize,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let frame = if count == 1 {
        // A report message is its type byte, 1, and the report: the count byte becomes the
        // type and the batch's type byte is left out.
        group[1] = 1;
        send.seal(&group[1..])?
    } else {
        // At most MAX_BATCH_REPORTS (64): the count fits its byte.
        group[1] = count as u8;
        send.seal(group)?
    };
    out.extend_from_slice(&frame);
    group.truncate(2);
    Ok(())
}

/// Whether `next` shows a tamper condition that `prev` did not.
fn is_new_tamper(prev: Option<&Reading>, next: &Reading) -> bool {
    let newly = |now: bool, before: bool| now && !before;
    next.events.intersects(DeviceEvents::TAMPER_CLASS)
        || newly(
            next.rope == Some(RopeState::Cut),
            prev.is_some_and(|p| p.rope == Some(RopeState::Cut)),
        )
        || newly(
            next.housing == Some(HousingState::Breached),
            prev.is_some_and(|p| p.housing == Some(HousingState::Breached)),
        )
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let link = match self.link {
            Link::Offline => "offline",
            Link::AwaitingWelcome { .. } => "awaiting the welcome",
            Link::Connected { .. } => "connected",
        };
        f.debug_struct("Device")
            .field("id", &self.keys.device)
            .field("link", &link)
            .field("next_seq", &self.next_seq)
            .field("unacknowledged", &self.unacked.len())
            .field("lock", &self.lock)
            .finish_non_exhaustive()
    }
}
