//! The platform's side of one connection.

use std::fmt;

use model::{DeviceId, Observation};

use crate::evidence::{Attestation, EvidenceRecord, verify_evidence};
use crate::frame::{Frame, FrameKind, FrameReader};
use crate::handshake::{Hello, SharedSecrets, Welcome, agree, derive_keys, transcript_hash};
use crate::keys::{Entropy, PlatformKeys, PublicKeys};
use crate::message::{Command, CommandResult, Message};
use crate::record::{Receiver, Sender};
use crate::{Error, Report};

/// What a session delivers from the device.
// Reports are most of the traffic and are handled one at a time; boxing them would add an
// allocation per report to save stack space for the rare small variants.
#[expect(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    /// A device says who it is. Look up its public keys and call [`Session::accept`], or
    /// drop the connection for a device you do not know.
    Hello {
        device: DeviceId,
    },
    /// The device's first record authenticated: it holds the keys it claimed. Commands may
    /// be sent from now on.
    Established {
        device: DeviceId,
    },
    /// A report, as the contract's observation (with the device's `seq`). Acknowledge it with
    /// [`Session::acknowledge`] once it is durable. A batch record gives one per report, in
    /// order, all from the same call to [`Session::receive`].
    Report {
        observation: Observation,
        /// The verified evidence, when the report is a seal, unseal or tamper report.
        evidence: Option<EvidenceRecord>,
    },
    CommandResult(CommandResult),
}

enum State {
    AwaitingHello,
    AwaitingKeys {
        hello: Hello,
        hello_body: Vec<u8>,
    },
    Open {
        device: DeviceId,
        device_keys: PublicKeys,
        /// Whether a record from the device has authenticated. Until then the hello could be
        /// a replay by someone without the device's secrets.
        confirmed: bool,
        send: Sender,
        recv: Receiver,
    },
    Closed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::AwaitingHello => "awaiting the hello",
            State::AwaitingKeys { .. } => "awaiting the device's keys",
            State::Open {
                confirmed: false, ..
            } => "awaiting the device's first record",
            State::Open { .. } => "established",
            State::Closed => "closed",
        }
    }
}

/// The platform's state machine for one connection: handshake, records in both directions,
/// evidence verification. One per connection; it does no I/O.
///
/// ```text
/// receive(bytes) → Hello { device }     (look up the device's keys)
/// accept(keys, entropy)                 (queues the welcome)
/// receive(bytes) → Established, Report, CommandResult …
/// acknowledge(seq), send_command(id, command)
/// take_outgoing() → bytes for the connection, after any of the above
/// ```
pub struct Session {
    keys: PlatformKeys,
    reader: FrameReader,
    outgoing: Vec<u8>,
    state: State,
}

impl Session {
    pub fn new(keys: PlatformKeys) -> Session {
        Session {
            keys,
            reader: FrameReader::new(),
            outgoing: Vec::new(),
            state: State::AwaitingHello,
        }
    }

    /// The device, once it has said hello.
    pub fn device(&self) -> Option<&DeviceId> {
        match &self.state {
            State::AwaitingKeys { hello, .. } => Some(&hello.device),
            State::Open { device, .. } => Some(device),
            _ => None,
        }
    }

    /// Whether the device has proved itself (its first record authenticated).
    pub fn is_established(&self) -> bool {
        matches!(
            self.state,
            State::Open {
                confirmed: true,
                ..
            }
        )
    }

    /// Whether the session failed: close the connection.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Bytes to write to the connection. Empties the queue.
    pub fn take_outgoing(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.outgoing)
    }

    /// Takes the next bytes from the connection, in chunks of any size. Returns what the
    /// device sent and the errors met, in order. Memory is bounded by one frame, whatever
    /// the peer sends.
    pub fn receive(&mut self, bytes: &[u8]) -> Vec<Result<Received, Error>> {
        if self.is_closed() {
            return vec![Err(Error::Closed)];
        }
        let mut out = Vec::new();
        for item in self.reader.push(bytes) {
            if self.is_closed() {
                break;
            }
            match item {
                Err(e) => out.push(Err(Error::Frame(e))),
                Ok(frame) => self.on_frame(&frame, &mut out),
            }
        }
        out
    }

    fn on_frame(&mut self, frame: &Frame, out: &mut Vec<Result<Received, Error>>) {
        match (&mut self.state, frame.kind()) {
            (State::AwaitingHello, FrameKind::Hello) => match Hello::decode(frame.body()) {
                Ok(hello) => {
                    out.push(Ok(Received::Hello {
                        device: hello.device.clone(),
                    }));
                    self.state = State::AwaitingKeys {
                        hello,
                        hello_body: frame.body().to_vec(),
                    };
                }
                Err(source) => self.fail(
                    out,
                    Error::Malformed {
                        what: "hello",
                        source,
                    },
                ),
            },
            (
                State::Open {
                    device,
                    device_keys,
                    confirmed,
                    recv,
                    ..
                },
                FrameKind::Record,
            ) => {
                let plain = match recv.open(frame) {
                    Ok(plain) => plain,
                    Err(e) if *confirmed => return out.push(Err(e)),
                    Err(e) => return self.fail(out, e),
                };
                if !*confirmed {
                    *confirmed = true;
                    out.push(Ok(Received::Established {
                        device: device.clone(),
                    }));
                }
                out.extend(deliver(device, device_keys, &plain));
            }
            (state, kind) => {
                let e = Error::UnexpectedFrame {
                    kind,
                    state: state.name(),
                };
                if self.is_established() {
                    out.push(Err(e));
                } else {
                    self.fail(out, e);
                }
            }
        }
    }

    fn fail(&mut self, out: &mut Vec<Result<Received, Error>>, e: Error) {
        out.push(Err(e));
        self.state = State::Closed;
    }

    /// Completes the handshake for the device that said hello, with its public keys as
    /// provisioned and fresh randomness. Verifies the hello's signature and queues the
    /// welcome. A signature that does not verify closes the session.
    pub fn accept(&mut self, device_keys: &PublicKeys, entropy: Entropy) -> Result<(), Error> {
        if !matches!(self.state, State::AwaitingKeys { .. }) {
            return Err(Error::NotEstablished("accept called without a hello"));
        }
        // Closed unless everything below succeeds.
        let State::AwaitingKeys { hello, hello_body } =
            std::mem::replace(&mut self.state, State::Closed)
        else {
            return Err(Error::Closed);
        };
        if !hello.verify(&device_keys.signing) {
            return Err(Error::BadSignature {
                what: "hello",
                signer: "device",
            });
        }
        let welcome = Welcome::signed(
            &hello_body,
            &self.keys.pairs,
            &entropy.ephemeral,
            entropy.nonce,
        );
        let welcome_body = welcome.encode();
        let own = &self.keys.pairs;
        let shared = match (
            agree(&entropy.ephemeral, hello.ephemeral),
            agree(&own.agreement, hello.ephemeral),
            agree(&entropy.ephemeral, device_keys.agreement.to_bytes()),
        ) {
            (Some(ee), Some(es), Some(se)) => SharedSecrets { ee, es, se },
            _ => return Err(Error::WeakKey),
        };
        let transcript = transcript_hash(
            &hello_body,
            &welcome_body,
            &device_keys.agreement,
            &self.keys.public().agreement,
        );
        let keys = derive_keys(&shared, &transcript);
        let frame = Frame::new(FrameKind::Welcome, &welcome_body)
            .map_err(|_| Error::TooLarge {
                len: welcome_body.len(),
            })?
            .into_bytes();
        self.outgoing.extend_from_slice(&frame);
        self.state = State::Open {
            device: hello.device,
            device_keys: *device_keys,
            confirmed: false,
            send: Sender::new(&keys.platform_to_device),
            recv: Receiver::new(&keys.device_to_platform),
        };
        Ok(())
    }

    /// Tells the device that every report up to `seq` is durable. Call it only once they
    /// are (committed to the store): the device forgets them.
    pub fn acknowledge(&mut self, seq: u64) -> Result<(), Error> {
        self.send(&Message::Ack { seq })
    }

    /// Sends a command under an id of the caller's choosing; the device answers with a
    /// [`Received::CommandResult`] of the same id. A device answers an id it has already
    /// executed without executing it again, so a command can be resent after a reconnection.
    pub fn send_command(&mut self, id: u32, command: Command) -> Result<(), Error> {
        self.send(&Message::Command { id, command })
    }

    fn send(&mut self, message: &Message) -> Result<(), Error> {
        match &mut self.state {
            State::Open {
                confirmed: true,
                send,
                ..
            } => {
                let frame = send.seal(&message.encode())?;
                self.outgoing.extend_from_slice(&frame);
                Ok(())
            }
            _ => Err(Error::NotEstablished(
                "the device has not yet sent its first record",
            )),
        }
    }
}

/// What one authenticated message from the device gives.
fn deliver(
    device: &DeviceId,
    device_keys: &PublicKeys,
    plain: &[u8],
) -> Vec<Result<Received, Error>> {
    match Message::decode(plain) {
        Err(source) => vec![Err(Error::Malformed {
            what: "message",
            source,
        })],
        Ok(Message::Report {
            report,
            attestation,
        }) => {
            let mut out = Vec::with_capacity(2);
            deliver_report(device, device_keys, &report, attestation, &mut out);
            out
        }
        Ok(Message::Batch(batch)) => {
            // Each report as if it had come alone: its evidence verified on its own, so that
            // an evidence record never depends on the other reports of its batch.
            let mut out = Vec::with_capacity(batch.reports().len());
            for item in batch.into_reports() {
                deliver_report(
                    device,
                    device_keys,
                    &item.report,
                    item.attestation,
                    &mut out,
                );
            }
            out
        }
        Ok(Message::CommandResult(result)) => vec![Ok(Received::CommandResult(result))],
        Ok(Message::Ack { .. }) => vec![Err(Error::WrongDirection { message: "ack" })],
        Ok(Message::Command { .. }) => vec![Err(Error::WrongDirection { message: "command" })],
    }
}

/// A report with its evidence verified, or without it and the failure reported.
fn deliver_report(
    device: &DeviceId,
    device_keys: &PublicKeys,
    report: &Report,
    attestation: Option<Attestation>,
    out: &mut Vec<Result<Received, Error>>,
) {
    let evidence = attestation.and_then(|att| {
        let record = EvidenceRecord::of_report(device, report, &att);
        match verify_evidence(&record, &device_keys.signing) {
            Ok(_) => Some(record),
            Err(source) => {
                out.push(Err(Error::Evidence {
                    seq: report.seq,
                    source,
                }));
                None
            }
        }
    });
    out.push(Ok(Received::Report {
        observation: report.observation(device.clone()),
        evidence,
    }));
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state.name())
            .field("device", &self.device())
            .field("buffered", &self.reader.buffered())
            .field("outgoing", &self.outgoing.len())
            .finish_non_exhaustive()
    }
}
