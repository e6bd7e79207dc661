//! The one error type of the session and the device.

use model::ObservationError;

use crate::evidence::EvidenceError;
use crate::frame::{FrameError, FrameKind};
use crate::message::DecodeError;

/// What went wrong with a frame, a handshake, a record or a call.
///
/// Until the handshake is complete (on the platform: until the device's first record has
/// authenticated), any error but a framing one closes the session: see
/// [`Session::is_closed`](crate::Session::is_closed). After that, a bad frame or record is
/// dropped and reported, and the session goes on; the gateway counts them and may close the
/// connection by its own policy.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes on the wire that are not a frame, or a frame that failed its CRC.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A frame of a kind that has no place at this point of the protocol.
    #[error("{kind:?} frame while {state}")]
    UnexpectedFrame {
        kind: FrameKind,
        state: &'static str,
    },
    /// A hello, welcome or message that cannot be read.
    #[error("malformed {what}: {source}")]
    Malformed {
        what: &'static str,
        source: DecodeError,
    },
    /// The hello is not signed by the device's key, or the welcome by the platform's.
    #[error("{what} signature does not verify with the {signer}'s public key")]
    BadSignature {
        what: &'static str,
        signer: &'static str,
    },
    /// A peer's X25519 key is of small order, which would make the shared secret public.
    #[error("weak (small-order) X25519 key in the handshake")]
    WeakKey,
    /// A record whose tag does not verify: altered, forged, or under other keys.
    #[error("record {counter} failed authentication")]
    Forged { counter: u64 },
    /// A record whose counter is not above the last accepted one: replayed or reordered.
    #[error(
        "record counter {counter} is not above the last accepted {last}: replayed or reordered"
    )]
    Replay { counter: u64, last: u64 },
    /// A record body too short for a counter and a tag.
    #[error("record of {len} bytes is too short for a counter and a tag")]
    ShortRecord { len: usize },
    /// A message that only the other side may send.
    #[error("{message} received from the wrong side")]
    WrongDirection { message: &'static str },
    /// A report whose evidence signature does not verify. The report itself was authenticated
    /// by the session and is delivered without evidence.
    #[error("evidence of report {seq}: {source}")]
    Evidence { seq: u64, source: EvidenceError },
    /// A reading that is not a valid observation, given to `Device::report`.
    #[error("report: {0}")]
    InvalidObservation(ObservationError),
    /// Sending before the handshake has completed (and, on the platform, before the device
    /// has proved itself with its first record); or `Session::accept` without a hello.
    #[error("no established session: {0}")]
    NotEstablished(&'static str),
    /// The record counter would wrap: connect again for new keys.
    #[error("record counter exhausted; a new handshake is needed")]
    CounterExhausted,
    /// A message longer than a record can carry.
    #[error("message of {len} bytes does not fit in a record")]
    TooLarge { len: usize },
    /// The device holds as many unacknowledged reports as it may.
    #[error("{held} unacknowledged reports held; waiting for acknowledgements")]
    BufferFull { held: usize },
    /// The session failed earlier and takes nothing more.
    #[error("session closed after an earlier error")]
    Closed,
}
