//! Transport framing: a magic, a version, a kind, a length, the body and a CRC.
//!
//! ```text
//! offset  size  field
//! 0       2     magic "SW" (0x53 0x57)
//! 2       1     version (1)
//! 3       1     kind: 1 hello, 2 welcome, 3 record
//! 4       2     body length n, big-endian, at most MAX_BODY_LEN
//! 6       n     body
//! 6+n     2     CRC-16/CCITT-FALSE of bytes 0 .. 6+n, big-endian
//! ```

use crate::crc::crc16;

/// The first two bytes of every frame: `SW`.
pub const MAGIC: [u8; 2] = *b"SW";
/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Bytes before the body: magic, version, kind and length.
pub const HEADER_LEN: usize = 6;
/// The largest body a frame may carry. A report with every field and its evidence is under
/// 300 bytes; the limit bounds what a reader buffers, whatever a peer sends.
pub const MAX_BODY_LEN: usize = 2048;
/// The longest frame on the wire: header, body and CRC.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_BODY_LEN + 2;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// The device's half of the handshake.
    Hello = 1,
    /// The platform's half of the handshake.
    Welcome = 2,
    /// An encrypted message, after the handshake.
    Record = 3,
}

impl FrameKind {
    fn from_byte(b: u8) -> Option<FrameKind> {
        match b {
            1 => Some(FrameKind::Hello),
            2 => Some(FrameKind::Welcome),
            3 => Some(FrameKind::Record),
            _ => None,
        }
    }
}

/// Why bytes on the wire were not a frame. None of these ends a connection by itself: the
/// reader resynchronises on the next magic.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Bytes that do not start a frame were skipped (line noise, another protocol, or the rest
    /// of a frame that failed its CRC).
    #[error("{len} bytes outside any frame skipped")]
    Garbage { len: usize },
    /// The length field is over [`MAX_BODY_LEN`]; the frame was not read.
    #[error("frame body of {len} bytes announced, more than the {max} allowed")]
    TooLong { len: usize, max: usize },
    /// The CRC does not match: the frame was damaged (or was never one).
    #[error("CRC mismatch: frame says 0x{found:04x}, content gives 0x{computed:04x}")]
    BadCrc { found: u16, computed: u16 },
    /// A magic followed by a version this crate does not speak (or noise that looks like a
    /// magic); the reader looks for the next magic.
    #[error("unsupported protocol version {version}")]
    UnsupportedVersion { version: u8 },
    /// A magic and version followed by a kind this crate does not know.
    #[error("unknown frame kind {kind}")]
    UnknownKind { kind: u8 },
}

/// One frame whose CRC, version and kind have been checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    kind: FrameKind,
    /// The whole frame as it was on the wire, CRC included.
    bytes: Vec<u8>,
}

impl Frame {
    /// A frame of `kind` around `body`, with its CRC. Fails if the body is over
    /// [`MAX_BODY_LEN`].
    pub fn new(kind: FrameKind, body: &[u8]) -> Result<Frame, FrameError> {
        if body.len() > MAX_BODY_LEN {
            return Err(FrameError::TooLong {
                len: body.len(),
                max: MAX_BODY_LEN,
            });
        }
        let mut bytes = Vec::with_capacity(HEADER_LEN + body.len() + 2);
        bytes.extend_from_slice(&header(kind, body.len()));
        bytes.extend_from_slice(body);
        let crc = crc16(&bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());
        Ok(Frame { kind, bytes })
    }

    /// Checks one complete frame (exactly its bytes, no more).
    pub fn parse(bytes: &[u8]) -> Result<Frame, FrameError> {
        let mut reader = FrameReader::new();
        let mut items = reader.push(bytes);
        if items.len() == 1 && reader.buffered() == 0 {
            return items.remove(0);
        }
        // Report the first error, or the bytes that did not make exactly one frame.
        match items.into_iter().find(Result::is_err) {
            Some(e) => e,
            None => Err(FrameError::Garbage { len: bytes.len() }),
        }
    }

    pub fn kind(&self) -> FrameKind {
        self.kind
    }

    /// Magic, version, kind and length: what a record authenticates besides its counter.
    pub fn header(&self) -> &[u8] {
        &self.bytes[..HEADER_LEN]
    }

    pub fn body(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..self.bytes.len() - 2]
    }

    /// The frame as it goes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// The header of a frame of `kind` with a body of `len` bytes (at most [`MAX_BODY_LEN`]).
pub(crate) fn header(kind: FrameKind, len: usize) -> [u8; HEADER_LEN] {
    let len = (len as u16).to_be_bytes();
    [MAGIC[0], MAGIC[1], VERSION, kind as u8, len[0], len[1]]
}

/// Finds frames in a connection's byte stream, delivered in chunks of any size.
///
/// It holds at most one frame's bytes ([`MAX_FRAME_LEN`]) between calls, whatever the peer
/// sends. A header counts only with the magic, version 1, a known kind and a length within
/// the limit; after anything that is not a frame (including a frame whose CRC fails) the
/// reader resynchronises on the next `SW` magic, one byte further on.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Bytes skipped since the last frame or error was reported.
    skipped: usize,
}

impl FrameReader {
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Bytes held for a frame not yet complete.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next chunk of the stream; returns the frames it completed and the errors met,
    /// in stream order. Skipped bytes are reported once per run, when the run ends (at the
    /// next frame or error) or at the end of the chunk.
    pub fn push(&mut self, mut input: &[u8]) -> Vec<Result<Frame, FrameError>> {
        let mut out = Vec::new();
        loop {
            // The buffer always starts like a frame: anything else is dropped and counted.
            if !starts_like_magic(&self.buf) {
                let start = (1..self.buf.len())
                    .find(|&i| starts_like_magic(&self.buf[i..]))
                    .unwrap_or(self.buf.len());
                self.buf.drain(..start);
                self.skipped += start;
            }
            // Bytes needed for the next decision: the header, then the whole frame.
            let need = if self.buf.len() < HEADER_LEN {
                HEADER_LEN
            } else {
                // A length is trusted only behind a plausible header: a false magic in noise
                // must not make the reader wait for kilobytes that hide the next real frame.
                let len = usize::from(u16::from_be_bytes([self.buf[4], self.buf[5]]));
                let refused = if self.buf[2] != VERSION {
                    Some(FrameError::UnsupportedVersion {
                        version: self.buf[2],
                    })
                } else if FrameKind::from_byte(self.buf[3]).is_none() {
                    Some(FrameError::UnknownKind { kind: self.buf[3] })
                } else if len > MAX_BODY_LEN {
                    Some(FrameError::TooLong {
                        len,
                        max: MAX_BODY_LEN,
                    })
                } else {
                    None
                };
                if let Some(e) = refused {
                    self.flush_skipped(&mut out);
                    out.push(Err(e));
                    // The magic may have been noise: look for another after its first byte.
                    self.buf.remove(0);
                    continue;
                }
                HEADER_LEN + len + 2
            };
            if self.buf.len() < need {
                if input.is_empty() {
                    break;
                }
                let take = (need - self.buf.len()).min(input.len());
                self.buf.extend_from_slice(&input[..take]);
                input = &input[take..];
                continue;
            }
            let found = u16::from_be_bytes([self.buf[need - 2], self.buf[need - 1]]);
            let computed = crc16(&self.buf[..need - 2]);
            self.flush_skipped(&mut out);
            if found != computed {
                out.push(Err(FrameError::BadCrc { found, computed }));
                // The length may be what was damaged: resynchronise inside the bad frame.
                self.buf.remove(0);
                continue;
            }
            let bytes: Vec<u8> = self.buf.drain(..need).collect();
            if let Some(kind) = FrameKind::from_byte(bytes[3]) {
                out.push(Ok(Frame { kind, bytes }));
            }
        }
        self.flush_skipped(&mut out);
        out
    }

    fn flush_skipped(&mut self, out: &mut Vec<Result<Frame, FrameError>>) {
        if self.skipped > 0 {
            out.push(Err(FrameError::Garbage { len: self.skipped }));
            self.skipped = 0;
        }
    }
}

/// Whether `bytes` could be the beginning of a frame: the magic, or its first byte at the end.
fn starts_like_magic(bytes: &[u8]) -> bool {
    match bytes {
        [] => true,
        [a] => *a == MAGIC[0],
        [a, b, ..] => [*a, *b] == MAGIC,
    }
}
