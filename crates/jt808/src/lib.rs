//! A sans-IO codec for JT/T 808, the protocol most customs e-locks speak, with the lock
//! extensions found on devices in the field.
//!
//! Bytes in, typed messages and contract observations out; responses and commands back to
//! bytes. There are no sockets, no async runtime and no clock here: a gateway owns the
//! connection and the time, and calls this crate for everything about the protocol.
//!
//! # Should I be using this crate?
//!
//! Yes, if you hold a TCP connection (or a hex dump) from a JT/T 808 terminal: a Jointech
//! JT701/JT709A/JT707, a G-series padlock, a Huabao-style e-lock, or a plain vehicle tracker.
//! The device gateways, `sealwatch decode`, the device emulator and the load generator all
//! use it, so that there is one codec, not one per tool.
//!
//! # The path of a frame
//!
//! ```
//! use jt808::{Deframed, Deframer, Options};
//!
//! // A location report from an e-lock (field frame `southern-western-hemisphere`).
//! let wire = [
//!     0x7e, 0x02, 0x00, 0x00, 0x22, 0x00, 0x14, 0x01, 0x24, 0x99, 0x17, 0x00, 0x07, 0x00,
//!     0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x0e, 0x01, 0x2a, 0xf1, 0x6f, 0x02, 0xcb, 0xd2,
//!     0xba, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x15, 0x01, 0x01, 0x19, 0x42, 0x57, 0x01,
//!     0x04, 0x00, 0x00, 0x00, 0x77, 0xa9, 0x7e,
//! ];
//! let mut deframer = Deframer::new(); // one per connection
//! for item in deframer.push(&wire) {
//!     let Ok(Deframed::Frame(frame)) = item else { continue }; // count and log errors
//!     // The header names the device; a gateway picks the options of its model.
//!     let header = frame.header().unwrap();
//!     assert_eq!(header.phone.as_str(), "001401249917");
//!     let options = Options::default();
//!     let message = frame.decode(&options).unwrap();
//!     let observations = jt808::observations(&message, &options);
//!     assert_eq!(observations[0].t.to_string(), "2015-01-01T11:42:57Z");
//!     assert_eq!(observations[0].lat, Some(-19.591535));
//!     // Once the observations are stored: the platform general response.
//!     let reply = jt808::encode_general_response(&header, 1, jt808::ResponseResult::Success);
//!     assert_eq!(reply.unwrap()[..3], [0x7e, 0x80, 0x01]);
//! }
//! ```
//!
//! 1. [`Deframer::push`] takes the connection's bytes in chunks of any size and yields
//!    [`Deframed::Frame`]s (unescaped, not yet checked), [`Deframed::Text`] for the plain-text
//!    command results some e-locks send on the same connection (`(740190311185,1,001,ELOCK,3,529439)`),
//!    and [`FrameError`]s for what it skipped. Its memory is bounded whatever the peer sends.
//! 2. [`Frame::header`] reads the header alone, so the caller can find the device and its
//!    model, and so the [`Options`] to decode with (`Options::for_model`).
//! 3. [`Frame::decode`] verifies the check code (a bad one is a [`DecodeError`], unless the
//!    model is known to get it wrong) and the body length, and returns a [`Message`]: the
//!    [`Header`] and a typed [`Body`].
//! 4. [`observations`] maps a message into the contract's `model::Observation`s (none for a
//!    message that reports no position or state); [`describe`] turns any message into JSON.
//! 5. `encode_*` build the platform's answers: [`encode_general_response`] (0x8001),
//!    [`encode_registration_response`] (0x8100), [`encode_jointech_ack`] (0x4401), and
//!    commands ([`encode_text_message`], [`encode_terminal_control`], [`encode_frame`]).
//!    [`Message::encode`] encodes any decoded message back to the same bytes.
//!
//! # What is read
//!
//! Headers of 2013 (6-byte BCD phone) and 2019 (version flag, protocol version, 10-byte
//! phone), with package counters; registration (0x0100, 2011/2013/2019 layouts),
//! authentication (0x0102, 2013 and 2019), heartbeat (0x0002), general responses, location
//! report (0x0200) and query response (0x0201) with their additional items ([`LocationItem`]:
//! the standard ones and the e-lock ones), batch upload (0x0704), and the Jointech lock
//! messages 0x5501/0x5502 ([`JointechLocation`]). Anything else is kept as bytes.
//!
//! # How reports map to observations
//!
//! | source | observation |
//! |---|---|
//! | `device` | the terminal phone number as sent, leading zeros kept |
//! | BCD time (0x0200) | `t`, the device clock taken as [`Options::utc_offset_minutes`] ahead of UTC (GMT+8 by default) |
//! | status bit 1, bits 2/3 | `fix` (`false` when not positioned), south and west signs of `lat`/`lon` |
//! | speed, course | `speed_kmh` (tenths of km/h), `course_deg`, when positioned |
//! | alarm flags | events per [`AlarmBits`]: `tamper`, `low_battery`, `fault`, `device_removed` |
//! | 0xD5 locks | `lock` (unlocked if any lock is), `battery_pct` of a single lock |
//! | 0x63 LoRa locks | `lock` (locked when every lock is sealed) |
//! | 0x60 padlock events | `lock`, `rope`, `housing` and events from the vendor's event table |
//! | 0xDA | `rope` (bit 0), `housing` and `back_cover_open` (bit 3) |
//! | 0x33 text status | `lock` from its `Open`/`Close` word |
//! | 0xD4, 0xE1, 0xE9, 0xFE (1 byte); 0xEB sub-items 0x00A8/0x00E1 | `battery_pct`; 0xFF `charging` |
//! | 0xEB sub-item 0x0089 bit 12 clear; 0x00C6 = 3 or 4 | `device_removed`; `low_battery` |
//! | Jointech battery byte | `battery_pct`, or `charging` (0xAA/0xAB) |
//!
//! The lock event item 0x0B (command, card or password, unlock result) is decoded but not
//! mapped: what its codes mean is not documented to us. Altitude has no field in the
//! contract's observation; it stays in the message.
//!
//! **Architecture invariant**: nothing here panics on any input. A property test feeds
//! arbitrary bytes, in arbitrary chunks, through the deframer and the decoder in the normal
//! test suite, and `fuzz/` holds cargo-fuzz targets for the same paths.

mod encode;
mod frame;
mod header;
mod jointech;
mod location;
mod message;
mod observe;
mod wire;

pub use encode::{
    RegistrationResult, ResponseResult, encode_frame, encode_general_response, encode_jointech_ack,
    encode_registration_response, encode_set_parameter_dword, encode_terminal_control,
    encode_text_message, frame_content,
};
pub use frame::{
    Deframed, Deframer, Drain, Frame, FrameError, MAX_FRAME_LEN, MAX_TEXT_LEN, TextResult,
};
pub use header::{Header, Phone, Properties, Subpackage, Terminal};
pub use jointech::{JointechItem, JointechLocation};
pub use location::{
    DeviceTime, Location, LocationBatch, LocationItem, LockEvent, LockRecord, LoraLock,
    PadlockEvent, RopeCover, VendorItem,
};
pub use message::{
    Authentication, Body, DecodeError, EncodeError, GeneralResponse, Message, Registration,
    RegistrationLayout, RegistrationResponse,
};
pub use observe::{AlarmBits, Options, describe, observations};
pub use wire::{check_code, escape};
