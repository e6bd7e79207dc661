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

use jt808::Terminal;
use serde_json::Value;
use store::CommandKind;

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
