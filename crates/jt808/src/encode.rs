//! Frames the platform sends: responses and commands, ready for the wire.
//!
//! Each function takes the platform's own serial number for the frame (a per-connection
//! counter the caller keeps) and returns escaped, delimited bytes.

use crate::header::{Header, Properties, Terminal};
use crate::message::{Body, GeneralResponse, Message, RegistrationResponse};
use crate::{EncodeError, wire};

/// Result codes of a platform general response (0x8001).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ResponseResult {
    Success = 0,
    Failure = 1,
    MessageError = 2,
    NotSupported = 3,
    AlarmConfirmed = 4,
}

/// Result codes of a registration response (0x8100).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RegistrationResult {
    Success = 0,
    VehicleRegistered = 1,
    NoSuchVehicle = 2,
    TerminalRegistered = 3,
    NoSuchTerminal = 4,
}

fn header(message_id: u16, to: &Terminal, serial: u16) -> Header {
    Header {
        message_id,
        properties: Properties(0),
        version: to.version,
        phone: to.phone.clone(),
        serial,
        subpackage: None,
    }
}

/// Any message to a terminal, from its id and body bytes.
pub fn encode_frame(
    message_id: u16,
    to: &Terminal,
    serial: u16,
    body: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    Message {
        header: header(message_id, to, serial),
        body: Body::Other {
            bytes: body.to_vec(),
        },
    }
    .encode()
}

/// 0x8001, the platform general response to the message with header `to`. Send it for a
/// location report only once its observations are durable.
pub fn encode_general_response(
    to: &Header,
    serial: u16,
    result: ResponseResult,
) -> Result<Vec<u8>, EncodeError> {
    Message {
        header: header(0x8001, &to.terminal(), serial),
        body: Body::GeneralResponse(GeneralResponse {
            reply_serial: to.serial,
            reply_id: to.message_id,
            result: result as u8,
        }),
    }
    .encode()
}

/// 0x8100, the answer to a registration (0x0100); on success it carries the auth code the
/// terminal will authenticate with (0x0102).
pub fn encode_registration_response(
    to: &Header,
    serial: u16,
    result: RegistrationResult,
    auth_code: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let auth_code = if result == RegistrationResult::Success {
        auth_code.to_vec()
    } else {
        Vec::new()
    };
    Message {
        header: header(0x8100, &to.terminal(), serial),
        body: Body::RegistrationResponse(RegistrationResponse {
            reply_serial: to.serial,
            result: result as u8,
            auth_code,
        }),
    }
    .encode()
}

/// 0x4401, the acknowledgement a Jointech lock message asks for with bit 15 of its
/// properties ([`Header::wants_jointech_ack`]). Its serial number is one byte.
pub fn encode_jointech_ack(to: &Header, serial: u8) -> Result<Vec<u8>, EncodeError> {
    Message {
        header: header(0x4401, &to.terminal(), u16::from(serial)),
        body: Body::JointechAck {
            reply_id: to.message_id,
            result: 0,
        },
    }
    .encode()
}

/// 0x8300, a text message to the terminal: `flags` per the standard (bit 0 emergency, bit 2
/// display, bit 3 speak, ...), `text` already in the terminal's encoding (GBK in the
/// standard; ASCII is the same in both). A 2019 terminal also gets the text type byte
/// (1, notice).
pub fn encode_text_message(
    to: &Terminal,
    serial: u16,
    flags: u8,
    text: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let mut body = vec![flags];
    if to.version.is_some() {
        body.push(1);
    }
    body.extend_from_slice(text);
    encode_frame(0x8300, to, serial, &body)
}

/// 0x8105, terminal control: a command word and its parameters (a `;`-separated string in the
/// standard; vendors define their own command words, e.g. for locking and unlocking).
pub fn encode_terminal_control(
    to: &Terminal,
    serial: u16,
    command: u8,
    parameters: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let mut body = vec![command];
    body.extend_from_slice(parameters);
    encode_frame(0x8105, to, serial, &body)
}

/// 0x8103, set terminal parameters: one DWORD parameter (`id`, e.g. 0x0029, the default
/// time reporting interval in seconds) set to `value`. The terminal answers with a general
/// response (0x0001).
pub fn encode_set_parameter_dword(
    to: &Terminal,
    serial: u16,
    id: u32,
    value: u32,
) -> Result<Vec<u8>, EncodeError> {
    let mut body = vec![1u8];
    body.extend_from_slice(&id.to_be_bytes());
    body.push(4);
    body.extend_from_slice(&value.to_be_bytes());
    encode_frame(0x8103, to, serial, &body)
}

/// The check code and escaping of an arbitrary content, for tests and emulators that build
/// frames by hand: `content` is header and body, unescaped.
pub fn frame_content(content: &[u8]) -> Vec<u8> {
    let mut c = content.to_vec();
    c.push(wire::check_code(content));
    wire::escape(&c)
}
