//! Finding frames in a TCP byte stream: delimiters, unescaping, resynchronisation, and the
//! plain-text command results that some e-locks send on the same connection.

use crate::header::Header;
use crate::wire::{self, DELIMITER, ESCAPE};
use crate::{DecodeError, Message, Options};

/// The longest unescaped frame the standard allows: a 2019 header with package counters (21
/// bytes), a body of 1023 bytes and the check code.
pub const MAX_FRAME_LEN: usize = 21 + 1023 + 1;

/// The shortest unescaped content that can hold a header and a check code (a Jointech header
/// is 11 bytes).
const MIN_FRAME_LEN: usize = 12;

/// The longest plain-text command result recognised, parentheses included.
pub const MAX_TEXT_LEN: usize = 512;

/// Why bytes from the stream did not make a frame. None of these closes the connection: the
/// deframer has already resynchronised when it reports one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Bytes outside any frame (noise, a line ending after a frame, an unfinished text) were
    /// skipped. Bytes that looked like a frame until they failed count after unescaping.
    #[error("{len} bytes outside any frame skipped")]
    Garbage { len: usize },
    /// A frame grew past the limit before its closing delimiter; it was dropped.
    #[error("frame longer than {max} bytes dropped ({len} bytes before its closing delimiter)")]
    TooLong { len: usize, max: usize },
    /// `0x7d` followed by something other than `0x01` or `0x02`.
    #[error("invalid escape sequence 0x7d 0x{next:02x}")]
    BadEscape { next: u8 },
    /// Content too short to hold a header and a check code.
    #[error("frame of {len} bytes is too short for a header and a check code")]
    TooShort { len: usize },
    /// `Frame::from_wire` was given bytes that are not one delimited frame.
    #[error("not a single frame between 0x7e delimiters")]
    NotDelimited,
}

/// One frame, unescaped: header, body and check code. The check code is not verified yet:
/// whether a bad one is acceptable depends on the device model, which the caller knows only
/// from the header (see [`Options::accept_bad_check_code`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    bytes: Vec<u8>,
}

impl Frame {
    /// A frame from its unescaped content (header, body and check code).
    pub fn from_unescaped(bytes: Vec<u8>) -> Result<Frame, FrameError> {
        if bytes.len() < MIN_FRAME_LEN {
            return Err(FrameError::TooShort { len: bytes.len() });
        }
        Ok(Frame { bytes })
    }

    /// A frame from exactly one frame as it travels on the wire: `0x7e`, escaped content,
    /// `0x7e`.
    pub fn from_wire(wire: &[u8]) -> Result<Frame, FrameError> {
        let inner = match wire {
            [DELIMITER, inner @ .., DELIMITER] if !inner.contains(&DELIMITER) => inner,
            _ => return Err(FrameError::NotDelimited),
        };
        let mut bytes = Vec::with_capacity(inner.len());
        let mut it = inner.iter();
        while let Some(&b) = it.next() {
            if b == ESCAPE {
                match it.next() {
                    Some(0x01) => bytes.push(ESCAPE),
                    Some(0x02) => bytes.push(DELIMITER),
                    Some(&next) => return Err(FrameError::BadEscape { next }),
                    None => return Err(FrameError::BadEscape { next: DELIMITER }),
                }
            } else {
                bytes.push(b);
            }
        }
        Frame::from_unescaped(bytes)
    }

    /// Header, body and check code, unescaped.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The frame as it travels on the wire (escaped, between delimiters).
    pub fn to_wire(&self) -> Vec<u8> {
        wire::escape(&self.bytes)
    }

    fn content(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - 1]
    }

    /// The check code the frame carries.
    pub fn received_check_code(&self) -> u8 {
        self.bytes[self.bytes.len() - 1]
    }

    /// The XOR of header and body.
    pub fn computed_check_code(&self) -> u8 {
        wire::check_code(self.content())
    }

    pub fn check_code_ok(&self) -> bool {
        self.received_check_code() == self.computed_check_code()
    }

    /// The message id, without decoding anything else.
    pub fn message_id(&self) -> u16 {
        u16::from_be_bytes([self.bytes[0], self.bytes[1]])
    }

    /// The header alone: enough to find the device (and so its model and [`Options`]) before
    /// decoding the body.
    pub fn header(&self) -> Result<Header, DecodeError> {
        Header::parse(self.content()).map(|(h, _)| h)
    }

    /// Verifies the check code (unless `options` accept bad ones), the body length, and
    /// decodes the message.
    pub fn decode(&self, options: &Options) -> Result<Message, DecodeError> {
        if !options.accept_bad_check_code && !self.check_code_ok() {
            return Err(DecodeError::CheckCode {
                computed: self.computed_check_code(),
                received: self.received_check_code(),
            });
        }
        Message::decode_content(self.content())
    }
}

/// A plain-text command result sent on the same connection as the frames, such as
/// `(740190311185,1,001,ELOCK,3,529439)`: printable ASCII between parentheses.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TextResult {
    text: String,
}

impl TextResult {
    /// The whole text, parentheses included.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The comma-separated fields between the parentheses.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        let inner = &self.text[1..self.text.len() - 1];
        inner.split(',')
    }

    /// The first field, when it is a device id (the Jointech device number).
    pub fn device(&self) -> Option<model::DeviceId> {
        self.fields().next()?.parse().ok()
    }

    /// A JSON description of the text, for `sealwatch decode`.
    pub fn describe(&self) -> serde_json::Value {
        let mut v = serde_json::json!({"type": "text_result", "text_result": self.text});
        if let Some(d) = self.device() {
            v["device"] = serde_json::Value::String(d.to_string());
        }
        v
    }
}

/// What the deframer finds in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deframed {
    Frame(Frame),
    Text(TextResult),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between frames: bytes other than a delimiter or `(` are garbage.
    Outside,
    /// A frame has just closed. The next bytes may start another frame that shares the
    /// closing delimiter, or be noise: the next delimiter tells (a frame must hold together,
    /// check code included), or a `(`, which starts a text.
    AfterFrame,
    /// Inside a frame; `explicit` when it began with its own delimiter.
    InFrame { explicit: bool },
    /// Inside a `(...)` text.
    InText,
}

/// A streaming deframer for one TCP connection.
///
/// Push the bytes as they arrive, in chunks of any size; it yields frames, text results and
/// errors as soon as they are complete. Its memory is bounded by `max_frame_len`, whatever
/// the peer sends: a frame that grows past it is dropped (and reported) when its closing
/// delimiter comes, and bytes outside frames are only counted.
///
/// ```
/// let mut deframer = jt808::Deframer::new();
/// let wire = [0x7e, 0x00, 0x02, 0x00, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0x01, 0x00, 0x05, 0x8f, 0x7e];
/// let (first, rest) = wire.split_at(6);
/// assert_eq!(deframer.push(first).count(), 0);
/// let items: Vec<_> = deframer.push(rest).collect();
/// let [Ok(jt808::Deframed::Frame(frame))] = &items[..] else { panic!() };
/// let heartbeat = frame.decode(&jt808::Options::default()).unwrap();
/// assert_eq!(heartbeat.header.phone.as_str(), "012345678901");
/// ```
#[derive(Debug)]
pub struct Deframer {
    state: State,
    buf: Vec<u8>,
    escape: bool,
    bad_escape: Option<u8>,
    /// Bytes of the current frame beyond `max_frame_len`, not kept.
    overflow: usize,
    /// Garbage bytes counted and not yet reported.
    garbage: usize,
    max_frame_len: usize,
}

impl Default for Deframer {
    fn default() -> Deframer {
        Deframer::new()
    }
}

/// One step of the state machine.
enum Step {
    /// The byte was consumed; nothing to report.
    Next,
    /// The byte was consumed and completed an item.
    Yield(Result<Deframed, FrameError>),
    /// The byte was not consumed (the state changed); feed it again.
    Again,
}

impl Deframer {
    pub fn new() -> Deframer {
        Deframer::with_max_frame_len(MAX_FRAME_LEN)
    }

    /// A deframer that drops frames longer than `max_frame_len` unescaped bytes (at least the
    /// length of a header and a check code).
    pub fn with_max_frame_len(max_frame_len: usize) -> Deframer {
        Deframer {
            state: State::Outside,
            buf: Vec::new(),
            escape: false,
            bad_escape: None,
            overflow: 0,
            garbage: 0,
            max_frame_len: max_frame_len.max(MIN_FRAME_LEN),
        }
    }

    /// Bytes held for an incomplete frame or text.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds the next chunk of the stream; the iterator yields what it completes. Items not
    /// taken from the iterator are dropped with it, but the whole chunk is always consumed,
    /// so the stream stays in step.
    pub fn push<'a>(&'a mut self, bytes: &'a [u8]) -> Drain<'a> {
        Drain {
            deframer: self,
            input: bytes,
            pos: 0,
        }
    }

    fn start_frame(&mut self, explicit: bool) {
        self.state = State::InFrame { explicit };
        self.buf.clear();
        self.escape = false;
        self.bad_escape = None;
        self.overflow = 0;
    }

    fn take_garbage(&mut self) -> Option<Result<Deframed, FrameError>> {
        if self.garbage == 0 {
            return None;
        }
        let len = std::mem::take(&mut self.garbage);
        Some(Err(FrameError::Garbage { len }))
    }

    fn step(&mut self, b: u8) -> Step {
        match self.state {
            State::Outside => match b {
                DELIMITER => {
                    self.start_frame(true);
                    self.take_garbage().map_or(Step::Next, Step::Yield)
                }
                b'(' => {
                    self.state = State::InText;
                    self.buf.clear();
                    self.buf.push(b);
                    self.take_garbage().map_or(Step::Next, Step::Yield)
                }
                _ => {
                    self.garbage += 1;
                    Step::Next
                }
            },
            State::AfterFrame => match b {
                DELIMITER => {
                    self.start_frame(true);
                    Step::Next
                }
                b'(' => {
                    self.state = State::InText;
                    self.buf.clear();
                    self.buf.push(b);
                    Step::Next
                }
                _ => {
                    self.start_frame(false);
                    Step::Again
                }
            },
            State::InFrame { explicit } => {
                if b == DELIMITER {
                    if self.buf.is_empty() && !self.escape && self.overflow == 0 {
                        // Back-to-back delimiters: the previous one was not a start.
                        self.state = State::InFrame { explicit: true };
                        return Step::Next;
                    }
                    let item = self.finish_frame(explicit);
                    self.state = State::AfterFrame;
                    return Step::Yield(item);
                }
                if b == b'(' && !explicit {
                    // Bytes after a frame, then a text: the bytes were noise.
                    self.garbage += self.buf.len() + self.overflow + usize::from(self.escape);
                    self.state = State::InText;
                    self.buf.clear();
                    self.buf.push(b);
                    self.escape = false;
                    self.bad_escape = None;
                    self.overflow = 0;
                    return Step::Next;
                }
                let byte = if self.escape {
                    self.escape = false;
                    match b {
                        0x01 => ESCAPE,
                        0x02 => DELIMITER,
                        other => {
                            self.bad_escape.get_or_insert(other);
                            other
                        }
                    }
                } else if b == ESCAPE {
                    self.escape = true;
                    return Step::Next;
                } else {
                    b
                };
                if self.buf.len() < self.max_frame_len {
                    self.buf.push(byte);
                } else {
                    self.overflow += 1;
                }
                Step::Next
            }
            State::InText => {
                let abandon = |d: &mut Deframer| {
                    d.garbage += d.buf.len();
                    d.buf.clear();
                    d.state = State::Outside;
                };
                if b == b')' {
                    self.buf.push(b);
                    let text: String = self.buf.iter().map(|&b| char::from(b)).collect();
                    self.buf.clear();
                    self.state = State::Outside;
                    // Garbage before the text was reported when the text began.
                    return Step::Yield(Ok(Deframed::Text(TextResult { text })));
                }
                if (0x20..0x7e).contains(&b) && self.buf.len() < MAX_TEXT_LEN - 1 {
                    self.buf.push(b);
                    return Step::Next;
                }
                abandon(self);
                Step::Again
            }
        }
    }

    fn finish_frame(&mut self, explicit: bool) -> Result<Deframed, FrameError> {
        let len = self.buf.len() + self.overflow;
        let result = if !explicit {
            // Bytes after a frame, closed by the next delimiter: another frame that shared
            // the delimiter only if it holds together, noise otherwise.
            if self.overflow == 0
                && self.bad_escape.is_none()
                && !self.escape
                && len >= MIN_FRAME_LEN
                && wire::check_code(&self.buf[..len - 1]) == self.buf[len - 1]
            {
                Ok(Deframed::Frame(Frame {
                    bytes: std::mem::take(&mut self.buf),
                }))
            } else {
                Err(FrameError::Garbage { len })
            }
        } else if self.overflow > 0 {
            Err(FrameError::TooLong {
                len,
                max: self.max_frame_len,
            })
        } else if self.escape {
            Err(FrameError::BadEscape { next: DELIMITER })
        } else if let Some(next) = self.bad_escape {
            Err(FrameError::BadEscape { next })
        } else if len < MIN_FRAME_LEN {
            Err(FrameError::TooShort { len })
        } else {
            Ok(Deframed::Frame(Frame {
                bytes: std::mem::take(&mut self.buf),
            }))
        };
        self.buf.clear();
        self.escape = false;
        self.bad_escape = None;
        self.overflow = 0;
        result
    }
}

/// The items completed by one [`Deframer::push`].
#[derive(Debug)]
pub struct Drain<'a> {
    deframer: &'a mut Deframer,
    input: &'a [u8],
    pos: usize,
}

impl Iterator for Drain<'_> {
    type Item = Result<Deframed, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(&b) = self.input.get(self.pos) {
            match self.deframer.step(b) {
                Step::Next => self.pos += 1,
                Step::Yield(item) => {
                    self.pos += 1;
                    return Some(item);
                }
                Step::Again => {}
            }
        }
        // Report garbage at the end of each chunk, so a peer that sends nothing else is
        // still seen.
        if self.deframer.state == State::Outside {
            return self.deframer.take_garbage();
        }
        None
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for _ in self.by_ref() {}
    }
}
