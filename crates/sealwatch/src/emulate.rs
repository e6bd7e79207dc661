//! `sealwatch emulate`: be a device. Connects to a running gateway as a JT/T 808 e-lock or a
//! native-protocol device (crate `emulator`), reports readings, waits for each
//! acknowledgement, and carries out the remote commands that come. For integrators checking a
//! deployment end to end without hardware, and for trying commands from the API.
//!
//! Prints one JSON object per line: `{"connected": …}`, `{"acknowledged": …}` per frame,
//! `{"executed": …}` per command carried out, and `{"done": …}` with the totals.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use emulator::{Emulated, Jt808Device, NativeDevice};
use model::{DeviceId, Reading, Timestamp};
use serde_json::json;

/// The protocols a device can speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Jt808,
    Native,
}

/// What `sealwatch emulate` was asked to do.
#[derive(Debug, clap::Args)]
pub struct EmulateArgs {
    /// The protocol the device speaks.
    #[arg(long, value_enum)]
    pub protocol: Protocol,
    /// The gateway's address (`gateway.jt808_listen` or `gateway.native_listen`).
    #[arg(long)]
    pub target: SocketAddr,
    /// The device's id (for JT/T 808, its 12-digit phone number). It must be in the registry.
    #[arg(long)]
    pub device: String,
    /// Native: the device's secret key file (`sealwatch device-key generate --out`).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Native: the platform's Ed25519 signing key, hex, as `sealwatch serve` prints it.
    #[arg(long)]
    pub platform_signing_key: Option<String>,
    /// Native: the platform's X25519 agreement key, hex, as `sealwatch serve` prints it.
    #[arg(long)]
    pub platform_agreement_key: Option<String>,
    /// Readings to report: a scenario file (its observations of this device) or a JSON array
    /// of observations in the contract's shape. Without it the device only connects (and
    /// listens, with `--listen`).
    #[arg(long)]
    pub readings: Option<PathBuf>,
    /// Shift the readings' times so that the last one is now, keeping their spacing (the
    /// service refuses reports dated in the future, and a scenario's times are its own).
    #[arg(long)]
    pub retime: bool,
    /// Readings per frame (JT/T 808: a batch upload 0x0704 when more than one).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Milliseconds to wait between frames.
    #[arg(long, default_value_t = 0)]
    pub interval_ms: u64,
    /// Seconds to stay connected after the last report, carrying out the commands that come.
    #[arg(long, default_value_t = 0.0)]
    pub listen: f64,
}

/// A failure: bad input (exit 2) or the device could not do its job (exit 1).
#[derive(Debug)]
pub enum Failure {
    Input(String),
    Device(String),
}

impl From<emulator::Error> for Failure {
    fn from(e: emulator::Error) -> Failure {
        Failure::Device(e.to_string())
    }
}

fn hex32(what: &str, text: &str) -> Result<[u8; 32], Failure> {
    sealproto::from_hex(text.trim())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| Failure::Input(format!("{what}: must be 32 bytes in hex (64 digits)")))
}

/// The device's readings, in time order.
fn readings(args: &EmulateArgs, device: &DeviceId) -> Result<Vec<Reading>, Failure> {
    let Some(path) = &args.readings else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
    let observations: Vec<model::Observation> = if text.trim_start().starts_with('[') {
        serde_json::from_str(&text)
            .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?
    } else {
        scenario::parse(&text)
            .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?
            .observations
    };
    let mut mine: Vec<Reading> = observations
        .iter()
        .filter(|o| &o.device == device)
        .map(|o| {
            let mut r = o.reading();
            // The device numbers its own reports.
            r.seq = None;
            r
        })
        .collect();
    if mine.is_empty() {
        return Err(Failure::Input(format!(
            "{}: no observations of device {device}",
            path.display()
        )));
    }
    mine.sort_by_key(|r| r.t);
    if args.retime {
        let last = mine.last().map_or(0, |r| r.t.unix_ms());
        // Whole seconds: JT/T 808 times have no milliseconds.
        let shift = emulator::now().unix_ms() / 1000 * 1000 - last;
        for r in &mut mine {
            r.t = Timestamp::from_unix_ms(r.t.unix_ms() + shift);
        }
    }
    Ok(mine)
}

fn line(value: serde_json::Value) {
    println!("{value}");
}

fn print_executed(device: &mut Emulated) {
    for e in device.take_executed() {
        line(json!({"executed": {
            "command": e.command,
            "done": e.done,
            "lock": e.lock,
        }}));
    }
}

/// Runs the emulated device to the end.
pub async fn run(args: EmulateArgs) -> Result<(), Failure> {
    let device: DeviceId = args
        .device
        .parse()
        .map_err(|e| Failure::Input(format!("device: {e}")))?;
    if args.batch == 0 {
        return Err(Failure::Input("batch: must be at least 1".into()));
    }
    if !(args.listen.is_finite() && args.listen >= 0.0) {
        return Err(Failure::Input(
            "listen: must be a number of seconds, 0 or more".into(),
        ));
    }
    let readings = readings(&args, &device)?;
    let mut emulated = match args.protocol {
        Protocol::Jt808 => Emulated::Jt808(Box::new(
            Jt808Device::connect(args.target, device.as_str()).await?,
        )),
        Protocol::Native => {
            let key_file = args
                .key_file
                .as_ref()
                .ok_or_else(|| Failure::Input("key-file: the native protocol needs the device's key file (sealwatch device-key generate --out)".into()))?;
            let text = std::fs::read_to_string(key_file)
                .map_err(|e| Failure::Input(format!("{}: {e}", key_file.display())))?;
            let secrets = sealproto::from_hex(text.trim())
                .and_then(|b| <[u8; 64]>::try_from(b).ok())
                .ok_or_else(|| {
                    Failure::Input(format!(
                        "{}: not a device key file (128 hex digits: the signing secret, then the agreement secret)",
                        key_file.display()
                    ))
                })?;
            let (mut signing, mut agreement) = ([0; 32], [0; 32]);
            signing.copy_from_slice(&secrets[..32]);
            agreement.copy_from_slice(&secrets[32..]);
            let keys = sealproto::DeviceKeys::from_secrets(device.clone(), signing, agreement);
            let need = |v: &Option<String>, what: &str| {
                v.clone().ok_or_else(|| {
                    Failure::Input(format!(
                        "{what}: the native protocol needs the platform's public keys, as `sealwatch serve` prints them"
                    ))
                })
            };
            let platform_signing = hex32(
                "platform-signing-key",
                &need(&args.platform_signing_key, "platform-signing-key")?,
            )?;
            let platform_agreement = hex32(
                "platform-agreement-key",
                &need(&args.platform_agreement_key, "platform-agreement-key")?,
            )?;
            let platform = sealproto::PublicKeys {
                signing: sealproto::VerifyingKey::from_bytes(&platform_signing).map_err(|_| {
                    Failure::Input("platform-signing-key: not an Ed25519 public key".into())
                })?,
                agreement: sealproto::AgreementKey::from_bytes(platform_agreement),
            };
            Emulated::Native(Box::new(
                NativeDevice::connect(args.target, keys, platform).await?,
            ))
        }
    };
    line(json!({"connected": {"device": device, "target": args.target.to_string()}}));

    let (mut accepted, mut refused) = (0, 0);
    for (i, chunk) in readings.chunks(args.batch).enumerate() {
        if i > 0 && args.interval_ms > 0 {
            tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
        }
        let ack = emulated.report(chunk).await?;
        accepted += ack.accepted;
        refused += ack.refused;
        line(json!({"acknowledged": {
            "from": chunk.first().map(|r| r.t),
            "to": chunk.last().map(|r| r.t),
            "accepted": ack.accepted,
            "refused": ack.refused,
        }}));
        print_executed(&mut emulated);
    }
    if args.listen > 0.0 {
        emulated
            .listen(Duration::from_secs_f64(args.listen))
            .await?;
        print_executed(&mut emulated);
    }
    line(json!({"done": {
        "reported": readings.len(),
        "accepted": accepted,
        "refused": refused,
        "lock": emulated.lock(),
    }}));
    Ok(())
}
