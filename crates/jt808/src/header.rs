//! The message header: 2013 and 2019 layouts, and the Jointech variant with a one-byte serial.

use std::fmt;

use serde::Serialize;

use crate::wire::Reader;
use crate::{DecodeError, EncodeError};

/// Message ids whose header carries a one-byte serial number (Jointech lock messages and their
/// acknowledgement) instead of the standard two bytes.
pub(crate) fn has_short_serial(message_id: u16) -> bool {
    matches!(message_id, 0x5501 | 0x5502 | 0x4401)
}

/// The header's "message body properties" word.
///
/// Standard layout: bits 0-9 body length, 10-12 encryption, 13 subpackage, 14 version flag
/// (2019), 15 reserved. Jointech lock messages (0x5501/0x5502) use bits 10-13 for their own
/// purposes and bit 15 to ask for a 0x4401 acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "u16")]
pub struct Properties(pub u16);

impl From<Properties> for u16 {
    fn from(p: Properties) -> u16 {
        p.0
    }
}

impl Properties {
    pub const VERSION_FLAG: u16 = 1 << 14;
    pub const SUBPACKAGE: u16 = 1 << 13;

    /// Body length in bytes (bits 0-9).
    pub fn body_len(self) -> usize {
        usize::from(self.0 & 0x03ff)
    }
    /// Encryption method (bits 10-12): 0 none, 1 RSA; other values are reserved.
    pub fn encryption(self) -> u8 {
        ((self.0 >> 10) & 0x07) as u8
    }
    /// Whether the body is one package of a longer message (bit 13).
    pub fn is_subpackage(self) -> bool {
        self.0 & Self::SUBPACKAGE != 0
    }
    /// Whether the header has the 2019 layout (bit 14).
    pub fn is_2019(self) -> bool {
        self.0 & Self::VERSION_FLAG != 0
    }
    /// Bit 15: reserved in the standard; Jointech devices set it to ask for a 0x4401
    /// acknowledgement of a lock message.
    pub fn bit15(self) -> bool {
        self.0 & 0x8000 != 0
    }
}

/// The terminal phone number: 12 BCD digits (2013) or 20 (2019), kept exactly as sent,
/// leading zeros included. Nibbles above 9 (some devices put an IMEI with a filler here) are
/// kept as upper-case hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    fn from_bcd(bytes: &[u8]) -> Phone {
        const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
        let mut s = String::with_capacity(bytes.len() * 2);
        for &b in bytes {
            s.push(char::from(DIGITS[usize::from(b >> 4)]));
            s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        Phone(s)
    }

    /// A phone number from its digits (12 for 2013 headers, 20 for 2019; hex digits allowed).
    pub fn new(digits: &str) -> Result<Phone, EncodeError> {
        if !(digits.len() == 12 || digits.len() == 20)
            || !digits.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(EncodeError::Phone(digits.to_owned()));
        }
        Ok(Phone(digits.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The sealwatch device id: the phone number as sent (12 digits for a 2013 header, 20 for
    /// a 2019 one), as `model::DeviceId` documents for JT/T 808 terminals.
    pub fn device_id(&self) -> model::DeviceId {
        // Only [0-9A-F], at most 20 characters: always a valid token.
        self.0
            .parse()
            .unwrap_or_else(|_| unreachable!("a phone number is a valid device id"))
    }

    fn write(&self, out: &mut Vec<u8>) {
        let digits = self.0.as_bytes();
        for pair in digits.chunks(2) {
            let nibble = |c: u8| match c {
                b'0'..=b'9' => c - b'0',
                b'A'..=b'F' => c - b'A' + 10,
                _ => 0,
            };
            out.push((nibble(pair[0]) << 4) | nibble(pair.get(1).copied().unwrap_or(b'0')));
        }
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How to address a terminal in a frame sent to it: its phone number and, for a 2019
/// terminal, the protocol version byte it announced.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Terminal {
    pub phone: Phone,
    /// `Some(version)` writes a 2019 header (the phone must have 20 digits); `None` a 2013
    /// header (12 digits).
    pub version: Option<u8>,
}

/// Package counters of a subpackaged message (header bit 13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Subpackage {
    pub total: u16,
    /// 1-based.
    pub index: u16,
}

/// A decoded message header.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Header {
    pub message_id: u16,
    pub properties: Properties,
    /// The protocol version byte of a 2019 header; `None` for a 2013 header.
    pub version: Option<u8>,
    pub phone: Phone,
    /// The sender's message serial number (one byte, widened, for Jointech lock messages).
    pub serial: u16,
    pub subpackage: Option<Subpackage>,
}

impl Header {
    /// Reads a header from the start of unescaped frame content; returns it with its length.
    pub(crate) fn parse(content: &[u8]) -> Result<(Header, usize), DecodeError> {
        let mut r = Reader::new(content);
        let message_id = r.u16("message id")?;
        let properties = Properties(r.u16("message properties")?);
        let version = if properties.is_2019() {
            Some(r.u8("protocol version")?)
        } else {
            None
        };
        let phone_len = if version.is_some() { 10 } else { 6 };
        let phone = Phone::from_bcd(r.bytes(phone_len, "terminal phone number")?);
        let short = has_short_serial(message_id);
        let serial = if short {
            u16::from(r.u8("serial number")?)
        } else {
            r.u16("serial number")?
        };
        // Jointech lock messages use bits 10-13 for their own purposes.
        let subpackage = if properties.is_subpackage() && !short {
            Some(Subpackage {
                total: r.u16("package total")?,
                index: r.u16("package index")?,
            })
        } else {
            None
        };
        let len = content.len() - r.remaining();
        Ok((
            Header {
                message_id,
                properties,
                version,
                phone,
                serial,
                subpackage,
            },
            len,
        ))
    }

    /// The address to answer this terminal with.
    pub fn terminal(&self) -> Terminal {
        Terminal {
            phone: self.phone.clone(),
            version: self.version,
        }
    }

    /// Whether the message is a Jointech lock message whose sender asks for a 0x4401
    /// acknowledgement (bit 15 of the properties).
    pub fn wants_jointech_ack(&self) -> bool {
        matches!(self.message_id, 0x5501 | 0x5502) && self.properties.bit15()
    }

    /// Writes the header. `properties` must already hold the body length.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&self.properties.0.to_be_bytes());
        if let Some(v) = self.version {
            out.push(v);
        }
        self.phone.write(out);
        if has_short_serial(self.message_id) {
            out.push(self.serial as u8);
        } else {
            out.extend_from_slice(&self.serial.to_be_bytes());
        }
        if let Some(p) = self.subpackage
            && !has_short_serial(self.message_id)
        {
            out.extend_from_slice(&p.total.to_be_bytes());
            out.extend_from_slice(&p.index.to_be_bytes());
        }
    }
}
