//! Records: the frames after the handshake, each one message encrypted and authenticated with
//! ChaCha20-Poly1305 under a per-direction key and counter.
//!
//! ```text
//! record body: counter (8, big-endian) ‖ ciphertext ‖ tag (16)
//! nonce:       0x00000000 ‖ counter (8, big-endian)
//! aad:         the frame header (6 bytes) ‖ counter
//! ```
//!
//! The receiver accepts a record only if its tag verifies and its counter is above the last
//! one it accepted (strict monotonicity, gaps allowed): see docs/protocol.md for why not a
//! window.

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};

use crate::Error;
use crate::frame::{Frame, FrameKind, HEADER_LEN, MAX_BODY_LEN, header};

/// Counter and tag: what a record adds to its message.
pub const RECORD_OVERHEAD: usize = 8 + 16;
/// The longest message a record can carry.
pub const MAX_MESSAGE_LEN: usize = MAX_BODY_LEN - RECORD_OVERHEAD;

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::from(n)
}

/// The sending half of a session: key and next counter.
pub(crate) struct Sender {
    cipher: ChaCha20Poly1305,
    next: u64,
}

impl Sender {
    pub(crate) fn new(key: &[u8; 32]) -> Sender {
        Sender {
            cipher: ChaCha20Poly1305::new(&(*key).into()),
            next: 0,
        }
    }

    /// The record frame carrying `message`, on the wire.
    pub(crate) fn seal(&mut self, message: &[u8]) -> Result<Vec<u8>, Error> {
        if message.len() > MAX_MESSAGE_LEN {
            return Err(Error::TooLarge { len: message.len() });
        }
        // The last counter value is never used, so `next` cannot wrap.
        if self.next == u64::MAX {
            return Err(Error::CounterExhausted);
        }
        let counter = self.next;
        let body_len = message.len() + RECORD_OVERHEAD;
        let mut aad = [0u8; HEADER_LEN + 8];
        aad[..HEADER_LEN].copy_from_slice(&header(FrameKind::Record, body_len));
        aad[HEADER_LEN..].copy_from_slice(&counter.to_be_bytes());
        let mut sealed = message.to_vec();
        self.cipher
            .encrypt_in_place(&nonce(counter), &aad, &mut sealed)
            .map_err(|_| Error::TooLarge { len: message.len() })?;
        self.next += 1;
        let body = [&counter.to_be_bytes()[..], &sealed].concat();
        Ok(Frame::new(FrameKind::Record, &body)
            .map_err(|_| Error::TooLarge { len: message.len() })?
            .into_bytes())
    }
}

/// The receiving half of a session: key and the last counter accepted.
pub(crate) struct Receiver {
    cipher: ChaCha20Poly1305,
    last: Option<u64>,
}

impl Receiver {
    pub(crate) fn new(key: &[u8; 32]) -> Receiver {
        Receiver {
            cipher: ChaCha20Poly1305::new(&(*key).into()),
            last: None,
        }
    }

    /// The message in a record frame. The counter moves only once the tag has verified, so a
    /// forged record with a huge counter cannot lock the genuine sender out.
    pub(crate) fn open(&mut self, frame: &Frame) -> Result<Vec<u8>, Error> {
        let body = frame.body();
        if body.len() < RECORD_OVERHEAD {
            return Err(Error::ShortRecord { len: body.len() });
        }
        let mut counter = [0u8; 8];
        counter.copy_from_slice(&body[..8]);
        let counter = u64::from_be_bytes(counter);
        if let Some(last) = self.last
            && counter <= last
        {
            return Err(Error::Replay { counter, last });
        }
        let mut aad = [0u8; HEADER_LEN + 8];
        aad[..HEADER_LEN].copy_from_slice(frame.header());
        aad[HEADER_LEN..].copy_from_slice(&body[..8]);
        let mut message = body[8..].to_vec();
        self.cipher
            .decrypt_in_place(&nonce(counter), &aad, &mut message)
            .map_err(|_| Error::Forged { counter })?;
        self.last = Some(counter);
        Ok(message)
    }
}

/// Opens one record frame with a traffic key outside any session, for tools that inspect
/// captured traffic (`sealwatch decode`): its counter and message. There is no session, so
/// no counter order is checked; the tag is, so a wrong key or an altered record is refused.
pub fn open_record(key: &[u8; 32], frame: &Frame) -> Result<(u64, Vec<u8>), Error> {
    let body = frame.body();
    if body.len() < RECORD_OVERHEAD {
        return Err(Error::ShortRecord { len: body.len() });
    }
    let mut counter = [0u8; 8];
    counter.copy_from_slice(&body[..8]);
    let message = Receiver::new(key).open(frame)?;
    Ok((u64::from_be_bytes(counter), message))
}
