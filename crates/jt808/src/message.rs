//! Messages: the header with a typed body, decoding from frame content and encoding back.

use serde::Serialize;

use crate::header::{Header, Properties, has_short_serial};
use crate::jointech::JointechLocation;
use crate::location::{Location, LocationBatch};
use crate::wire::{self, Reader, ser_hex, ser_text};

/// Why a frame's content is not a message this crate can read. The caller counts or logs it
/// and drops the frame; the connection stays.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error(
        "check code 0x{received:02x} does not match the XOR of header and body, 0x{computed:02x}"
    )]
    CheckCode { computed: u8, received: u8 },
    #[error("header declares a body of {declared} bytes but {actual} follow")]
    BodyLength { declared: usize, actual: usize },
    #[error("{field}: needs {needed} bytes, {available} left")]
    Truncated {
        field: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("{field}: 0x{byte:02x} is not BCD")]
    NotBcd { field: &'static str, byte: u8 },
    #[error("time {bcd} is not a valid date and time")]
    BadTime { bcd: String },
    #[error("body is encrypted (method {method}); no key is configured")]
    Encrypted { method: u8 },
    #[error("batch declares {declared} reports but holds {found}")]
    BatchCount { declared: u16, found: usize },
    #[error("{message}: {count} bytes after the last field")]
    TrailingBytes { message: &'static str, count: usize },
}

/// Why a message could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("body of {len} bytes is longer than the 1023 a frame can carry")]
    BodyTooLong { len: usize },
    #[error("additional item 0x{id:02x} is longer than 255 bytes")]
    ItemTooLong { id: u8 },
    #[error("phone number {0:?} must be 12 digits (2013 header) or 20 (2019 header)")]
    Phone(String),
    #[error("a 2019 header needs a 20-digit phone number, a 2013 header a 12-digit one")]
    PhoneVersion,
}

/// A decoded message: its header and its body.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Message {
    pub header: Header,
    pub body: Body,
}

/// Message bodies. Messages this crate does not read are kept as [`Body::Other`], subpackaged
/// ones as [`Body::Fragment`] (reassembly is the caller's, who holds the packages).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Body {
    /// 0x0001 terminal general response, 0x8001 platform general response.
    GeneralResponse(GeneralResponse),
    /// 0x0002.
    Heartbeat {
        /// Usually empty; some devices add battery and signal bytes.
        #[serde(serialize_with = "ser_hex")]
        bytes: Vec<u8>,
    },
    /// 0x0100.
    Registration(Registration),
    /// 0x8100.
    RegistrationResponse(RegistrationResponse),
    /// 0x0102.
    Authentication(Authentication),
    /// 0x0200.
    Location(Location),
    /// 0x0201: a location sent in answer to a query (0x8201).
    LocationQueryResponse {
        reply_serial: u16,
        location: Location,
    },
    /// 0x0704.
    LocationBatch(LocationBatch),
    /// 0x5501 (live) and 0x5502 (stored while offline): Jointech lock messages.
    JointechLocation(JointechLocation),
    /// 0x4401: acknowledgement of a Jointech lock message.
    JointechAck { reply_id: u16, result: u8 },
    /// A package of a subpackaged message.
    Fragment {
        #[serde(serialize_with = "ser_hex")]
        bytes: Vec<u8>,
    },
    /// Any other message, body kept as sent.
    Other {
        #[serde(serialize_with = "ser_hex")]
        bytes: Vec<u8>,
    },
}

/// 0x0001 / 0x8001 body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GeneralResponse {
    pub reply_serial: u16,
    pub reply_id: u16,
    /// 0 success, 1 failure, 2 message error, 3 not supported, 4 alarm confirmed (0x8001).
    pub result: u8,
}

/// Terminal registration (0x0100). The string fields are kept as sent (fixed width, padded;
/// the plate in GBK).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Registration {
    pub layout: RegistrationLayout,
    pub province: u16,
    pub city: u16,
    #[serde(serialize_with = "ser_text")]
    pub manufacturer: Vec<u8>,
    #[serde(serialize_with = "ser_text")]
    pub model: Vec<u8>,
    #[serde(serialize_with = "ser_text")]
    pub terminal_id: Vec<u8>,
    /// 0 when the vehicle is not registered (the plate then holds a VIN).
    pub plate_color: u8,
    #[serde(serialize_with = "ser_text")]
    pub plate: Vec<u8>,
}

/// Field widths of the registration body (manufacturer, model, terminal id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationLayout {
    /// 5, 8, 7 bytes (JT/T 808-2011 terminals).
    V2011,
    /// 5, 20, 7.
    V2013,
    /// 11, 30, 30 (2019 header).
    V2019,
}

impl RegistrationLayout {
    fn widths(self) -> (usize, usize, usize) {
        match self {
            RegistrationLayout::V2011 => (5, 8, 7),
            RegistrationLayout::V2013 => (5, 20, 7),
            RegistrationLayout::V2019 => (11, 30, 30),
        }
    }
}

/// 0x8100 body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegistrationResponse {
    pub reply_serial: u16,
    /// 0 success, 1 vehicle already registered, 2 no such vehicle, 3 terminal already
    /// registered, 4 no such terminal.
    pub result: u8,
    /// Present on success.
    #[serde(serialize_with = "ser_text")]
    pub auth_code: Vec<u8>,
}

/// Terminal authentication (0x0102).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Authentication {
    #[serde(serialize_with = "ser_text")]
    pub auth_code: Vec<u8>,
    /// 2019 layout only (15 bytes).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_text"
    )]
    pub imei: Option<Vec<u8>>,
    /// 2019 layout only (20 bytes).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_text"
    )]
    pub software_version: Option<Vec<u8>>,
}

fn ser_opt_text<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => ser_text(b, s),
        None => s.serialize_none(),
    }
}

impl Registration {
    fn decode(body: &[u8], v2019: bool) -> Result<Registration, DecodeError> {
        let layout = if v2019 {
            RegistrationLayout::V2019
        } else if body.len() >= 37 {
            RegistrationLayout::V2013
        } else {
            RegistrationLayout::V2011
        };
        let (m, md, id) = layout.widths();
        let mut r = Reader::new(body);
        Ok(Registration {
            layout,
            province: r.u16("province")?,
            city: r.u16("city")?,
            manufacturer: r.bytes(m, "manufacturer")?.to_vec(),
            model: r.bytes(md, "terminal model")?.to_vec(),
            terminal_id: r.bytes(id, "terminal id")?.to_vec(),
            plate_color: r.u8("plate colour")?,
            plate: r.rest().to_vec(),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let (m, md, id) = self.layout.widths();
        out.extend_from_slice(&self.province.to_be_bytes());
        out.extend_from_slice(&self.city.to_be_bytes());
        for (field, width) in [
            (&self.manufacturer, m),
            (&self.model, md),
            (&self.terminal_id, id),
        ] {
            let mut f = field.clone();
            f.resize(width, 0);
            out.extend_from_slice(&f);
        }
        out.push(self.plate_color);
        out.extend_from_slice(&self.plate);
    }
}

impl Authentication {
    fn decode(body: &[u8], v2019: bool) -> Result<Authentication, DecodeError> {
        if !v2019 {
            return Ok(Authentication {
                auth_code: body.to_vec(),
                imei: None,
                software_version: None,
            });
        }
        let mut r = Reader::new(body);
        let n = r.u8("auth code length")?;
        let auth = Authentication {
            auth_code: r.bytes(usize::from(n), "auth code")?.to_vec(),
            imei: Some(r.bytes(15, "IMEI")?.to_vec()),
            software_version: Some(r.bytes(20, "software version")?.to_vec()),
        };
        no_trailing(&r, "authentication")?;
        Ok(auth)
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match (&self.imei, &self.software_version) {
            (Some(imei), Some(sw)) => {
                let n =
                    u8::try_from(self.auth_code.len()).map_err(|_| EncodeError::BodyTooLong {
                        len: self.auth_code.len(),
                    })?;
                out.push(n);
                out.extend_from_slice(&self.auth_code);
                for (f, width) in [(imei, 15), (sw, 20)] {
                    let mut f = f.clone();
                    f.resize(width, 0);
                    out.extend_from_slice(&f);
                }
            }
            _ => out.extend_from_slice(&self.auth_code),
        }
        Ok(())
    }
}

fn no_trailing(r: &Reader<'_>, message: &'static str) -> Result<(), DecodeError> {
    match r.remaining() {
        0 => Ok(()),
        count => Err(DecodeError::TrailingBytes { message, count }),
    }
}

impl GeneralResponse {
    fn decode(body: &[u8]) -> Result<GeneralResponse, DecodeError> {
        let mut r = Reader::new(body);
        let g = GeneralResponse {
            reply_serial: r.u16("reply serial")?,
            reply_id: r.u16("reply id")?,
            result: r.u8("result")?,
        };
        no_trailing(&r, "general response")?;
        Ok(g)
    }
}

impl Message {
    /// Decodes unescaped header and body (the check code already removed).
    pub(crate) fn decode_content(content: &[u8]) -> Result<Message, DecodeError> {
        let (header, header_len) = Header::parse(content)?;
        let body = &content[header_len..];
        let declared = header.properties.body_len();
        if body.len() != declared {
            return Err(DecodeError::BodyLength {
                declared,
                actual: body.len(),
            });
        }
        let id = header.message_id;
        // Jointech lock messages use the encryption bits for other purposes.
        if !has_short_serial(id) && header.properties.encryption() != 0 {
            return Err(DecodeError::Encrypted {
                method: header.properties.encryption(),
            });
        }
        let v2019 = header.version.is_some();
        let body = if header.subpackage.is_some() {
            Body::Fragment {
                bytes: body.to_vec(),
            }
        } else {
            match id {
                0x0001 | 0x8001 => Body::GeneralResponse(GeneralResponse::decode(body)?),
                0x0002 => Body::Heartbeat {
                    bytes: body.to_vec(),
                },
                0x0100 => Body::Registration(Registration::decode(body, v2019)?),
                0x8100 => {
                    let mut r = Reader::new(body);
                    Body::RegistrationResponse(RegistrationResponse {
                        reply_serial: r.u16("reply serial")?,
                        result: r.u8("result")?,
                        auth_code: r.rest().to_vec(),
                    })
                }
                0x0102 => Body::Authentication(Authentication::decode(body, v2019)?),
                0x0200 => Body::Location(Location::decode(body)?),
                0x0201 => {
                    let mut r = Reader::new(body);
                    let reply_serial = r.u16("reply serial")?;
                    Body::LocationQueryResponse {
                        reply_serial,
                        location: Location::decode(r.rest())?,
                    }
                }
                0x0704 => Body::LocationBatch(LocationBatch::decode(body)?),
                0x5501 | 0x5502 => Body::JointechLocation(JointechLocation::decode(body)?),
                0x4401 => {
                    let mut r = Reader::new(body);
                    let ack = Body::JointechAck {
                        reply_id: r.u16("reply id")?,
                        result: r.u8("result")?,
                    };
                    no_trailing(&r, "Jointech acknowledgement")?;
                    ack
                }
                _ => Body::Other {
                    bytes: body.to_vec(),
                },
            }
        };
        Ok(Message { header, body })
    }

    /// The body's bytes.
    pub fn encode_body(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        match &self.body {
            Body::GeneralResponse(g) => {
                out.extend_from_slice(&g.reply_serial.to_be_bytes());
                out.extend_from_slice(&g.reply_id.to_be_bytes());
                out.push(g.result);
            }
            Body::Heartbeat { bytes } | Body::Fragment { bytes } | Body::Other { bytes } => {
                out.extend_from_slice(bytes);
            }
            Body::Registration(r) => r.encode(&mut out),
            Body::RegistrationResponse(r) => {
                out.extend_from_slice(&r.reply_serial.to_be_bytes());
                out.push(r.result);
                out.extend_from_slice(&r.auth_code);
            }
            Body::Authentication(a) => a.encode(&mut out)?,
            Body::Location(l) => l.encode(&mut out)?,
            Body::LocationQueryResponse {
                reply_serial,
                location,
            } => {
                out.extend_from_slice(&reply_serial.to_be_bytes());
                location.encode(&mut out)?;
            }
            Body::LocationBatch(b) => b.encode(&mut out)?,
            Body::JointechLocation(j) => j.encode(&mut out)?,
            Body::JointechAck { reply_id, result } => {
                out.extend_from_slice(&reply_id.to_be_bytes());
                out.push(*result);
            }
        }
        Ok(out)
    }

    /// The message as it travels on the wire: the header (with the body length set from the
    /// body), the body, the check code, escaped and delimited.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let body = self.encode_body()?;
        let mut header = self.header.clone();
        let phone_digits = if header.version.is_some() { 20 } else { 12 };
        if header.phone.as_str().len() != phone_digits {
            return Err(EncodeError::PhoneVersion);
        }
        let len = u16::try_from(body.len())
            .ok()
            .filter(|&l| l <= 0x03ff)
            .ok_or(EncodeError::BodyTooLong { len: body.len() })?;
        let mut props = (header.properties.0 & !0x03ff) | len;
        if header.version.is_some() {
            props |= Properties::VERSION_FLAG;
        } else {
            props &= !Properties::VERSION_FLAG;
        }
        if header.subpackage.is_some() && !has_short_serial(header.message_id) {
            props |= Properties::SUBPACKAGE;
        } else if !has_short_serial(header.message_id) {
            props &= !Properties::SUBPACKAGE;
        }
        header.properties = Properties(props);
        let mut content = Vec::with_capacity(21 + body.len() + 1);
        header.write(&mut content);
        content.extend_from_slice(&body);
        content.push(wire::check_code(&content));
        Ok(wire::escape(&content))
    }

    /// The device the message is from (or for): its terminal phone number.
    pub fn device(&self) -> model::DeviceId {
        self.header.phone.device_id()
    }
}
