//! How remote commands go on the wire: a [`CommandSet`] per device model says which JT/T 808
//! message carries each command kind.
//!
//! JT/T 808 standardises the messages but not what an e-lock does with them: the standard
//! command words of terminal control (0x8105: 1 upgrade, 2 connect to a server, 3 power off,
//! 4 reset, ...) say nothing of locking, and every vendor has its own command words or
//! command texts (sent as a text message, 0x8300) for sealing, unsealing and status. So the
//! defaults here are **placeholders** except for `set_interval`, which uses the standard's
//! own way (0x8103, parameter 0x0029, the default reporting interval): configure the command
//! set of each model from its vendor's documentation
//! ([`crate::Config::command_sets`]). A kind a model's set marks [`Wire::Unsupported`] is
//! refused (the command becomes `refused`), never sent.

use std::net::SocketAddr;

use jt808::Terminal;
use serde_json::Value;
use server::{Ingest, IngestError};
use store::{CommandKind, CommandState, DeviceCommand};

/// Which message carries a command. Texts and parameter strings may hold `{seconds}`, replaced
/// by the command's `args.seconds`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wire {
    /// 0x8105 terminal control: a command word and its parameter string (`;`-separated).
    TerminalControl { command: u8, parameters: String },
    /// 0x8300 text message carrying the vendor's command text.
    Text { flags: u8, text: String },
    /// 0x8103 set terminal parameters: one DWORD parameter set to `args.seconds`.
    Parameter { id: u32 },
    /// The model takes no such command: refused, not sent.
    Unsupported,
}

/// The wire form of each command kind for one device model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSet {
    pub seal: Wire,
    pub unseal: Wire,
    pub set_interval: Wire,
    pub query_status: Wire,
}

impl Default for CommandSet {
    /// Placeholders for seal, unseal and status (0x8300 texts `SEAL`, `UNSEAL`, `STATUS`);
    /// the standard 0x8103 parameter 0x0029 for the reporting interval.
    fn default() -> CommandSet {
        CommandSet {
            seal: Wire::Text {
                flags: 0,
                text: "SEAL".into(),
            },
            unseal: Wire::Text {
                flags: 0,
                text: "UNSEAL".into(),
            },
            set_interval: Wire::Parameter { id: 0x0029 },
            query_status: Wire::Text {
                flags: 0,
                text: "STATUS".into(),
            },
        }
    }
}

impl CommandSet {
    pub fn wire(&self, kind: CommandKind) -> &Wire {
        match kind {
            CommandKind::Seal => &self.seal,
            CommandKind::Unseal => &self.unseal,
            CommandKind::SetInterval => &self.set_interval,
            CommandKind::QueryStatus => &self.query_status,
        }
    }
}

/// The frame for a command, or why it is not sent.
pub(crate) fn encode(
    wire: &Wire,
    to: &Terminal,
    serial: u16,
    args: &Value,
) -> Result<(u16, Vec<u8>), String> {
    let seconds = args.get("seconds").and_then(Value::as_u64);
    let fill = |s: &str| -> Result<String, String> {
        if !s.contains("{seconds}") {
            return Ok(s.to_owned());
        }
        let n = seconds.ok_or("the command set wants args.seconds, and there is none")?;
        Ok(s.replace("{seconds}", &n.to_string()))
    };
    let (id, bytes) = match wire {
        Wire::TerminalControl {
            command,
            parameters,
        } => (
            0x8105,
            jt808::encode_terminal_control(to, serial, *command, fill(parameters)?.as_bytes()),
        ),
        Wire::Text { flags, text } => (
            0x8300,
            jt808::encode_text_message(to, serial, *flags, fill(text)?.as_bytes()),
        ),
        Wire::Parameter { id } => {
            let n = seconds.ok_or("0x8103 needs args.seconds, and there is none")?;
            let n = u32::try_from(n).map_err(|_| "args.seconds is too large".to_owned())?;
            (
                0x8103,
                jt808::encode_set_parameter_dword(to, serial, *id, n),
            )
        }
        Wire::Unsupported => return Err("the device's model takes no such command".into()),
    };
    bytes.map(|b| (id, b)).map_err(|e| e.to_string())
}

// What both gateways share of a command's life in the store: reading a device's commands,
// recording that they went out (or will not), recording the device's answer, and telling
// whether a notice from the API concerns the device. Only the wire form differs per protocol.

/// The service is stopping: the connection should close.
#[derive(Debug)]
pub(crate) struct Stopping;

/// Which of a device's commands to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    /// Queued ones only: a command once sent is not sent again (JT/T 808, where a device
    /// cannot tell a resent command from a new one).
    Queued,
    /// Queued and sent-but-unanswered ones: for a protocol whose devices answer a resent
    /// command id without acting again (the native protocol), on a new connection.
    Unanswered,
}

/// Whether a notice from [`server::Ingest::commands_queued`] means that `device` should look
/// for its queued commands now. A receiver that lagged missed some notices, so it looks.
pub(crate) fn concerns(
    notice: Result<String, tokio::sync::broadcast::error::RecvError>,
    device: &str,
) -> bool {
    use tokio::sync::broadcast::error::RecvError;
    match notice {
        Ok(d) => d == device,
        Err(RecvError::Lagged(_)) => true,
        Err(RecvError::Closed) => false,
    }
}

/// A device's commands, oldest first. A store failure is logged and reads as none: the device
/// is served on, and its commands go out at the next occasion.
pub(crate) async fn read(
    ingest: &Ingest,
    peer: SocketAddr,
    device: &str,
    which: Which,
) -> Result<Vec<DeviceCommand>, Stopping> {
    let id = device.to_owned();
    let read = ingest
        .query(move |s| match which {
            Which::Queued => s.pending_commands(&id),
            Which::Unanswered => s.unanswered_commands(&id),
        })
        .await;
    match read {
        Ok(Ok(commands)) => Ok(commands),
        Ok(Err(e)) => {
            tracing::warn!(%peer, device, error = %e, "queued commands not read: the store failed");
            Ok(Vec::new())
        }
        Err(IngestError::Stopping) => Err(Stopping),
        Err(e) => {
            tracing::warn!(%peer, device, error = %e, "queued commands not read");
            Ok(Vec::new())
        }
    }
}

/// Records, once they are written to the connection, that the queued commands `sent` went out
/// and that `refused` (id, why) never will. Marking comes after writing, so a failure between
/// the two sends a command again rather than losing it.
pub(crate) async fn mark(
    ingest: &Ingest,
    peer: SocketAddr,
    sent: Vec<i64>,
    refused: Vec<(i64, String)>,
) -> Result<(), Stopping> {
    if sent.is_empty() && refused.is_empty() {
        return Ok(());
    }
    let now = ingest.now();
    let marked = ingest
        .query(move |s| -> Vec<store::Result<DeviceCommand>> {
            let mut done: Vec<_> = sent.iter().map(|id| s.mark_sent(*id, now)).collect();
            for (id, why) in &refused {
                done.push(s.record_result(*id, CommandState::Refused, now, Some(why)));
            }
            done
        })
        .await;
    match marked {
        Ok(results) => {
            for r in results {
                if let Err(e) = r {
                    tracing::warn!(%peer, error = %e, "command state not recorded");
                }
            }
            Ok(())
        }
        Err(IngestError::Stopping) => Err(Stopping),
        Err(e) => {
            tracing::warn!(%peer, error = %e, "commands sent but not marked sent");
            Ok(())
        }
    }
}

/// Whose answer a result is, for [`record`].
pub(crate) enum AnswerOf<'a> {
    /// The connection matched the answer to a command it sent itself.
    Matched,
    /// The answer names a command id; it counts only for a command of this device that is
    /// not answered yet (a device answers a resent command again: that is not news).
    Device(&'a str),
}

/// Records a device's answer to command `id` (`done` or `failed`, `text` appended to its
/// result). `None` when the answer was not for this device or was already recorded. Failures
/// are logged.
pub(crate) async fn record(
    ingest: &Ingest,
    peer: SocketAddr,
    id: i64,
    from: AnswerOf<'_>,
    state: CommandState,
    text: String,
) -> Result<Option<DeviceCommand>, Stopping> {
    let now = ingest.now();
    let device = match from {
        AnswerOf::Matched => None,
        AnswerOf::Device(d) => Some(d.to_owned()),
    };
    let recorded = ingest
        .query(move |s| -> store::Result<Option<DeviceCommand>> {
            if let Some(device) = device {
                let c = match s.command(id) {
                    Ok(c) => c,
                    Err(e) if e.is_not_found() => return Ok(None),
                    Err(e) => return Err(e),
                };
                if c.device != device || c.state != CommandState::Sent {
                    return Ok(None);
                }
            }
            s.record_result(id, state, now, Some(&text)).map(Some)
        })
        .await;
    match recorded {
        Ok(Ok(Some(c))) => {
            tracing::info!(%peer, device = %c.device, command = c.id, state = c.state.as_str(), "command answered");
            Ok(Some(c))
        }
        Ok(Ok(None)) => {
            tracing::debug!(%peer, command = id, "answer to no unanswered command of this device");
            Ok(None)
        }
        Ok(Err(e)) => {
            tracing::warn!(%peer, command = id, error = %e, "command answer not recorded");
            Ok(None)
        }
        Err(IngestError::Stopping) => Err(Stopping),
        Err(e) => {
            tracing::warn!(%peer, command = id, error = %e, "command answer not recorded");
            Ok(None)
        }
    }
}
