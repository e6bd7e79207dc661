//! `sealwatch`: the command line.

mod audit_cmd;
mod backup;
mod config;
mod data_key;
mod decode;
mod demo;
mod device_key;
mod emulate;
mod pool_cmd;
mod user;
mod verify;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Supervision of goods under customs control with Smart Security Devices.
#[derive(Debug, Parser)]
#[command(name = "sealwatch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// The doc comments are the `--help` text, which clap prints as written: `<SECTION>` is not HTML.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a scenario file and print its alarms as JSON lines, in time order.
    Replay {
        /// The scenario (see docs/scenario.md).
        scenario: PathBuf,
        /// Print events (sealed, departed, arrived, alarm_cleared, ...) beside the alarms.
        #[arg(long)]
        events: bool,
    },
    /// Check a scenario file; exit 2 naming the first error.
    Validate { scenario: PathBuf },
    /// Decode a device's bytes (hex) and print what sealwatch makes of them: per frame, the
    /// observations as a JSON array, or a JSON object for a frame that reports none.
    ///
    /// Native protocol: after the handshake every frame is encrypted. Without keys each frame
    /// is described (hello: device id, ephemeral key, nonce, signature; welcome; record: its
    /// counter and sealed length), with its CRC checked. --session-key opens records (reports
    /// print as observations, other messages as objects); --plaintext reads one message as it
    /// is before encryption. Bad hex, a bad CRC or a truncated frame exits 2, naming it.
    Decode {
        #[arg(long, value_enum)]
        protocol: decode::Protocol,
        /// The bytes in hex (spaces, `0x` and `:` allowed); several frames may follow one
        /// another. `-` reads them from standard input.
        hex: String,
        /// The device model, for its known quirks (e.g. G-360P).
        #[arg(long)]
        model: Option<String>,
        /// The device clock's offset from UTC in minutes [default: 480, GMT+8].
        #[arg(long, allow_hyphen_values = true)]
        utc_offset_minutes: Option<i32>,
        /// Accept frames whose check code is wrong.
        #[arg(long)]
        accept_bad_check_code: bool,
        /// Native: the traffic key of the records' direction (64 hex digits; device to
        /// platform for reports and command results, platform to device for acknowledgements
        /// and commands). Keys exist per session only; a test harness or the test vectors of
        /// docs/protocol.md give them.
        #[arg(long, conflicts_with = "plaintext")]
        session_key: Option<String>,
        /// Native: the bytes are one message before encryption (a firmware log), not frames.
        #[arg(long)]
        plaintext: bool,
        /// Native: the device that sent the reports, when no hello comes before them.
        #[arg(long)]
        device: Option<String>,
    },
    /// Run the service: HTTP API under /api/v1, live stream, metrics.
    ///
    /// Settings come from the defaults, then --config FILE, then SEALWATCH_<SECTION>_<KEY>
    /// variables, then these flags (docs/configuration.md).
    Serve {
        /// A TOML settings file (see docs/sealwatch.example.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on [server.listen; default 127.0.0.1:8480].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Directory of the embedded database, sealwatch.db [store.data_dir; default sealwatch-data].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// A PostgreSQL URL, instead of the embedded database [store.database_url].
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Take a consistent backup of the store while the service runs, into a new directory:
    /// the data and a manifest of hashes and row counts (docs/security.md). PostgreSQL needs
    /// `pg_dump` on the PATH.
    Backup {
        /// The new directory the backup goes into.
        #[arg(long)]
        out: PathBuf,
        /// Take an incremental backup on top of this one (full or incremental): the rows the
        /// logs gained since, and the current rows of the tables that change in place.
        #[arg(long)]
        incremental_from: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Restore a backup into the configured store after checking its manifest; every table's
    /// row count is checked against the manifest afterwards. Stop the service first.
    Restore {
        /// The backup directory (with its manifest.json); repeat it to apply incremental
        /// backups after the full one, in the order they were taken.
        #[arg(long, required = true)]
        from: Vec<PathBuf>,
        /// Set aside (SQLite) or drop (PostgreSQL schema) data already at the target.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Be a device: connect to a running gateway as a JT/T 808 e-lock or a native-protocol
    /// device, report readings (from a scenario or a JSON array of observations), and carry
    /// out the remote commands that come. Prints JSON lines; exit 1 when the device cannot do
    /// its job (refused, connection lost), 2 for bad input.
    Emulate(emulate::EmulateArgs),
    /// Verify signed device evidence (a seal, unseal or tamper record of the native protocol)
    /// with the device's public key alone; prints what the device signed. Exit 1 when the
    /// signature does not hold, 2 when the input is not valid.
    VerifyEvent {
        /// The device's Ed25519 public signing key, 64 hex digits.
        #[arg(long)]
        key: String,
        /// The evidence record (JSON, as sealwatch stores and exports it); `-` for stdin.
        record: PathBuf,
    },
    /// Make, list and revoke API tokens for scripts, gateways and integrations.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Add, list and disable the people who sign in, and reset their passwords
    /// (docs/security.md).
    User {
        #[command(subcommand)]
        command: user::UserCommand,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Provision, rotate, revoke and list devices' native-protocol keys (docs/protocol.md).
    ///
    /// Works on the store directly, beside a running service or not. Secret keys are never
    /// printed: `generate` and `rotate --out` write them only into a new file readable by its
    /// owner alone (0600), to flash onto the device or hand to the emulator; what is printed
    /// is the stored record (public keys, dates). A running native gateway refuses keys that
    /// were replaced or revoked at the next hello, and ends a live session that uses them
    /// within `gateway.native_key_check_s` (default 60 s).
    DeviceKey {
        #[command(subcommand)]
        command: DeviceKeyCommand,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The tamper-evident audit chain (docs/security.md): verify it, print its latest signed
    /// checkpoint to keep elsewhere, list recent entries. Works on the store directly.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The store's data-encryption keys (docs/security.md, "Encryption at rest"): list their
    /// ids, rotate (a new current key, old ones kept for reading), re-encrypt what is stored
    /// under the current key, retire an old key. Works beside a running service, which picks
    /// up a new key at its next write. Keys are never printed.
    DataKey {
        #[command(subcommand)]
        command: data_key::DataKeyCommand,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The device pool (docs/pool.md): `plan` says which devices move from where to where so
    /// that every station holds its dynamic safety stock, at the least transport cost.
    Pool {
        #[command(subcommand)]
        command: pool_cmd::PoolCommand,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Run the service with a simulated fleet on real corridors (THIS IS A DEMO).
    Demo {
        #[arg(long, default_value = "127.0.0.1:8480")]
        listen: std::net::SocketAddr,
        #[arg(long, default_value = "sealwatch-demo")]
        data_dir: PathBuf,
        /// How many times faster than real time the demo's clock runs.
        #[arg(long, default_value_t = 120.0)]
        speed: f64,
        /// About how many transits to run (whole rounds of the 21 bundled scenarios).
        #[arg(long, default_value_t = 50)]
        transits: usize,
    },
}

/// Where a command that works on the store finds it: as `serve` would.
#[derive(Debug, clap::Args)]
struct StoreArgs {
    /// A TOML settings file, as for `serve`.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Directory of the embedded database [store.data_dir].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// A PostgreSQL URL [store.database_url].
    #[arg(long, global = true)]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a token and print it (it is shown this once; only its hash is kept).
    Create {
        /// The role the token acts in (administrator, officer, gateway, ...).
        #[arg(long)]
        role: model::Role,
        /// What the token is for, shown in lists.
        #[arg(long, default_value = "")]
        label: String,
        /// Days until the token expires; never when absent.
        #[arg(long)]
        expires_days: Option<u32>,
        /// The organisation the token acts for (a carrier's integration, a partner customs).
        #[arg(long)]
        organisation: Option<String>,
    },
    /// List tokens (ids, roles, labels, validity; never secrets).
    List,
    /// Revoke a token by its id (effective within ten seconds in a running service).
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the whole chain against its signed checkpoints: exit 0 printing the count and
    /// the head, 1 naming the first altered, missing or reordered entry, or a truncation.
    Verify {
        /// A checkpoint kept outside the database (`sealwatch audit checkpoint`'s output);
        /// repeatable.
        #[arg(long)]
        checkpoint: Vec<PathBuf>,
        /// The audit public key (64 hex digits) checkpoints must be signed with; by default
        /// the public half of `audit.key_file` when it exists.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print the latest signed checkpoint as JSON, to keep outside the database.
    Checkpoint,
    /// Print the newest entries, oldest first, one JSON object a line.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
enum DeviceKeyCommand {
    /// Make a device's Ed25519 signing key and X25519 agreement key, write the secrets into
    /// FILE (created 0600, never overwritten: 128 hex digits, signing then agreement) and
    /// register the public keys. The device must be in the registry and have no valid keys.
    Generate {
        device: String,
        /// The new secret key file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Register public keys made on the device itself (its secrets never leave it). The
    /// device must be in the registry and have no valid keys.
    Set {
        device: String,
        /// The Ed25519 public signing key, 64 hex digits.
        #[arg(long)]
        signing: String,
        /// The X25519 public agreement key, 64 hex digits.
        #[arg(long)]
        agreement: String,
    },
    /// Replace a device's keys, with new ones made here (--out FILE) or on the device
    /// (--signing and --agreement). The old keys stop working at once for new sessions.
    Rotate {
        device: String,
        /// Make the new keys here and write their secrets into this new file (0600).
        #[arg(long, conflicts_with_all = ["signing", "agreement"], required_unless_present_all = ["signing", "agreement"])]
        out: Option<PathBuf>,
        /// The new Ed25519 public signing key, 64 hex digits.
        #[arg(long, requires = "agreement")]
        signing: Option<String>,
        /// The new X25519 public agreement key, 64 hex digits.
        #[arg(long, requires = "signing")]
        agreement: Option<String>,
    },
    /// Revoke a device's keys: the gateway refuses the device until new keys are provisioned.
    /// The keys are kept, so that evidence signed with them can still be verified.
    Revoke { device: String },
    /// Print a device's key record (JSON: public keys, provisioned and revoked times).
    Show { device: String },
    /// List every device's keys: device, state, provisioned, signing key, agreement key.
    List,
}

/// Exit status for input that is not valid (as clap uses for bad arguments).
const EXIT_INVALID: u8 = 2;

fn load(path: &Path) -> Result<scenario::Scenario, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let s = scenario::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for field in scenario::unknown_fields(&text) {
        eprintln!(
            "warning: {}: {field}: unknown field, ignored",
            path.display()
        );
    }
    Ok(s)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Sends structured logs to stderr: text for people, JSON lines for collectors.
fn init_logs(settings: &config::LogSettings) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.level)
        .map_err(|e| format!("log.level: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let done = match settings.format {
        config::LogFormat::Text => builder.try_init(),
        config::LogFormat::Json => builder.json().try_init(),
    };
    done.map_err(|e| format!("cannot set up logging: {e}"))
}

/// Waits for Ctrl-C or, under a service manager, SIGTERM. The SIGTERM handler is installed
/// when this is called, not when the future is first polled: call it before the service
/// announces that it listens, so that a SIGTERM sent as soon as it does stops it cleanly
/// instead of killing the process (the default action).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
        tokio::signal::ctrl_c().await.ok();
    }
}

/// The service's configuration from the settings.
fn service_config(settings: config::Settings) -> server::Config {
    let key_file = settings.store.key_file();
    let mut config = server::Config::new(settings.server.listen, settings.store.data_dir);
    config.encryption = settings.store.encryption;
    config.encryption_key_file = Some(key_file);
    config.database_url = settings.store.database_url;
    config.database_schema = settings.store.database_schema;
    config.retention = (settings.store.retention_days > 0).then(|| {
        std::time::Duration::from_secs(settings.store.retention_days.saturating_mul(86_400))
    });
    let days = |n: u64| (n > 0).then(|| std::time::Duration::from_secs(n.saturating_mul(86_400)));
    config.personal_data_retention = days(settings.store.personal_data_retention_days);
    config.attachment_retention = days(settings.store.attachment_retention_days);
    config.max_body_bytes = settings.server.max_body_bytes;
    config.shutdown_grace = std::time::Duration::from_secs(settings.server.shutdown_grace_s);
    config.auth_required = settings.server.auth_required;
    config.cookie_secure = settings.server.cookie_secure;
    config.admin_totp_required = settings.auth.admin_totp_required;
    config.ui = settings.ui.config();
    config.session_timeouts = server::users::SessionTimeouts {
        idle: std::time::Duration::from_secs(settings.server.session_idle_timeout_s.max(1)),
        absolute: std::time::Duration::from_secs(settings.server.session_absolute_timeout_s.max(1)),
    };
    config.tls = settings.server.tls();
    config.batch_max_items = settings.ingest.batch_max_items.max(1);
    config.tick_interval =
        std::time::Duration::from_millis(settings.ingest.tick_interval_ms.max(10));
    config.audit.checkpoint_every_entries = settings.audit.checkpoint_every_entries.max(1);
    config.audit.checkpoint_every =
        std::time::Duration::from_secs(settings.audit.checkpoint_every_s.max(1));
    config
}

/// `sealwatch audit ...`.
fn audit(command: AuditCommand, args: StoreArgs) -> ExitCode {
    let settings = match config::load(args.config.as_deref(), |n| std::env::var(n).ok()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| settings.store.data_dir.clone());
    let key_file = settings.audit.key_file(&data_dir);
    // Bad input is refused before the store is opened.
    let verify_with = match &command {
        AuditCommand::Verify {
            checkpoint,
            public_key,
        } => {
            let trusted = match audit_cmd::trusted_key(public_key.as_deref(), &key_file) {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let outside: Result<Vec<_>, String> = checkpoint
                .iter()
                .map(|p| audit_cmd::read_checkpoint(p))
                .collect();
            match outside {
                Ok(o) => Some((trusted, o)),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_INVALID);
                }
            }
        }
        _ => None,
    };
    let mut store = match open_store(args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match command {
        AuditCommand::Verify { .. } => {
            let (trusted, outside) = verify_with.unwrap_or_default();
            audit_cmd::verify(&mut *store, trusted, outside)
        }
        AuditCommand::Checkpoint => audit_cmd::checkpoint(&mut *store),
        AuditCommand::List { limit } => audit_cmd::list(&mut *store, limit.clamp(1, 10_000)),
    }
}

/// The service's configuration as `serve` would read it, with the store flags applied, or
/// the exit status that says why not.
fn store_config(args: StoreArgs) -> Result<server::Config, ExitCode> {
    let mut settings = match config::load(args.config.as_deref(), |n| std::env::var(n).ok()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(EXIT_INVALID));
        }
    };
    if let Some(d) = args.data_dir {
        settings.store.data_dir = d;
    }
    if args.database_url.is_some() {
        settings.store.database_url = args.database_url;
    }
    Ok(service_config(settings))
}

/// The store as `serve` would open it, or the exit status that says why not.
fn open_store(args: StoreArgs) -> Result<Box<dyn store::Store>, ExitCode> {
    server::open_store(&store_config(args)?).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}

/// Prints a backup's or a restore's manifest, or says why it failed.
fn report(result: Result<backup::Manifest, backup::Failure>) -> ExitCode {
    match result {
        Ok(manifest) => {
            println!("{}", serde_json::to_string(&manifest).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(backup::Failure::Input(why)) => {
            eprintln!("error: {why}");
            ExitCode::from(EXIT_INVALID)
        }
        Err(backup::Failure::Failed(why)) => {
            eprintln!("error: {why}");
            ExitCode::FAILURE
        }
    }
}

/// `sealwatch device-key ...`: works on the store directly, beside a running service or not.
fn device_key(command: DeviceKeyCommand, args: StoreArgs) -> ExitCode {
    use device_key::{Failure, Replace, Source};
    let mut store = match open_store(args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let now = server::wall_clock();
    let store = &mut *store;
    // What the audit chain records once the command has done it.
    let audited = match &command {
        DeviceKeyCommand::Generate { device, .. } | DeviceKeyCommand::Set { device, .. } => {
            Some(("device_keys.put", device.clone()))
        }
        DeviceKeyCommand::Rotate { device, .. } => Some(("device_keys.rotate", device.clone())),
        DeviceKeyCommand::Revoke { device } => Some(("device_keys.revoke", device.clone())),
        DeviceKeyCommand::Show { .. } | DeviceKeyCommand::List => None,
    };
    let result = match command {
        DeviceKeyCommand::Generate { device, out } => device_key::provision(
            store,
            &device,
            Source::Generate { out: &out },
            Replace::No,
            now,
        )
        .map(|r| {
            println!("{}", device_key::json(&r));
            eprintln!(
                "keys of device {} made; the secrets are in {} (owner-only), nowhere else",
                r.device,
                out.display()
            );
        }),
        DeviceKeyCommand::Set {
            device,
            signing,
            agreement,
        } => device_key::provision(
            store,
            &device,
            Source::Given {
                signing: &signing,
                agreement: &agreement,
            },
            Replace::No,
            now,
        )
        .map(|r| println!("{}", device_key::json(&r))),
        DeviceKeyCommand::Rotate {
            device,
            out,
            signing,
            agreement,
        } => {
            let source = match (&out, &signing, &agreement) {
                (Some(out), _, _) => Source::Generate { out },
                (None, Some(signing), Some(agreement)) => Source::Given { signing, agreement },
                _ => {
                    eprintln!("error: rotate needs --out FILE, or --signing and --agreement");
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            device_key::provision(store, &device, source, Replace::Yes, now).map(|r| {
                println!("{}", device_key::json(&r));
                eprintln!(
                    "keys of device {} replaced: the old ones are refused at the next hello, and a live session using them ends within gateway.native_key_check_s (default 60 s)",
                    r.device
                );
            })
        }
        DeviceKeyCommand::Revoke { device } => store
            .revoke_device_keys(&device, now)
            .map(|r| {
                println!("{}", device_key::json(&r));
                eprintln!(
                    "keys of device {} revoked: the device is refused at its next hello, and a live session ends within gateway.native_key_check_s (default 60 s)",
                    r.device
                );
            })
            .map_err(Failure::from),
        DeviceKeyCommand::Show { device } => store
            .device_keys(&device)
            .map(|r| println!("{}", device_key::json(&r)))
            .map_err(Failure::from),
        DeviceKeyCommand::List => store
            .list_device_keys()
            .map(|all| {
                for r in &all {
                    println!("{}", device_key::line(r));
                }
            })
            .map_err(Failure::from),
    };
    let result = result.and_then(|()| match audited {
        Some((action, device)) => audit_cmd::record(
            store,
            action,
            format!("device:{device}"),
            serde_json::json!({}),
        )
        .map_err(Failure::from),
        None => Ok(()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_INVALID)
        }
        Err(Failure::Failed(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `sealwatch token ...`: works on the store directly, beside a running service or not.
fn token(command: TokenCommand, args: StoreArgs) -> ExitCode {
    let mut store = match open_store(args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let now = server::wall_clock();
    let result = match command {
        TokenCommand::Create {
            role,
            label,
            expires_days,
            organisation,
        } => {
            let expires_at =
                expires_days.map(|d| now.plus(model::Duration::from_hours(i64::from(d) * 24)));
            let mut made = match server::auth::generate(role, &label, now, expires_at) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: no randomness from the system: {e}");
                    return ExitCode::FAILURE;
                }
            };
            made.record.organisation = organisation;
            store
                .put_token(&made.record, &made.secret_hash)
                .and_then(|()| {
                    audit_cmd::record(
                        &mut *store,
                        "token.create",
                        format!("token:{}", made.record.id),
                        serde_json::json!({
                            "role": role.to_string(),
                            "label": label,
                            "expires_at": expires_at.map(|e| e.to_string()),
                        }),
                    )
                })
                .map(|()| {
                println!("{}", made.token);
                eprintln!(
                    "token {} for role {} made{}; it is shown this once. Use it as: Authorization: Bearer <token>",
                    made.record.id,
                    role,
                    expires_at.map(|e| format!(", valid until {e}")).unwrap_or_default()
                );
            })
        }
        TokenCommand::List => store.tokens().map(|tokens| {
            for t in tokens {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(r), _) => format!("revoked {r}"),
                    (None, Some(e)) if !t.is_valid_at(now) => format!("expired {e}"),
                    (None, Some(e)) => format!("valid until {e}"),
                    (None, None) => "valid".to_owned(),
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.role,
                    t.organisation.as_deref().unwrap_or("-"),
                    t.created_at,
                    state,
                    t.label
                );
            }
        }),
        TokenCommand::Revoke { id } => store
            .revoke_token(&id, now)
            .and_then(|t| {
                audit_cmd::record(
                    &mut *store,
                    "token.revoke",
                    format!("token:{}", t.id),
                    serde_json::json!({}),
                )?;
                Ok(t)
            })
            .map(|t| {
                println!("token {} revoked at {}", t.id, t.revoked_at.unwrap_or(now));
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_not_found() => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_INVALID)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    file: Option<&Path>,
    listen: Option<std::net::SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
) -> ExitCode {
    let mut settings = match config::load(file, |name| std::env::var(name).ok()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if let Some(l) = listen {
        settings.server.listen = l;
    }
    if let Some(d) = data_dir {
        settings.store.data_dir = d;
    }
    if database_url.is_some() {
        settings.store.database_url = database_url;
    }
    if let Err(e) = init_logs(&settings.log) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_INVALID);
    }
    let jt808 = settings.gateway.jt808();
    let native_key_file = settings
        .gateway
        .native_listen
        .map(|_| settings.gateway.native_key_file(&settings.store.data_dir));
    let gateway_settings = settings.gateway.clone();
    let mqtt = settings.containers.mqtt();
    if let Some(Err(e)) = mqtt.as_ref().map(gateway::MqttConfig::check) {
        eprintln!("error: containers.mqtt_{e}");
        return ExitCode::from(EXIT_INVALID);
    }
    let webhook_secrets = match settings.containers.webhook_secrets() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if let Err(e) = settings.server.check_tls() {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_INVALID);
    }
    let risk = match settings.risk.config() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let initial_admin_password = settings.auth.initial_admin_password.clone();
    let audit_key_file = settings.audit.key_file(&settings.store.data_dir);
    let mut config = service_config(settings);
    config.webhook_secrets = webhook_secrets;
    config.risk = risk;
    match server::audit_chain::load_or_create_audit_key(&audit_key_file) {
        Ok((key, created)) => {
            if created {
                tracing::info!(path = %audit_key_file.display(), public_key = %key.public_hex(), "audit signing key created (0600)");
            }
            config.audit.key = Some(key);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    // The first start makes the first administrator: never with a fixed password.
    let admin = server::open_store(&config)
        .map_err(|e| e.to_string())
        .and_then(|mut s| {
            server::users::ensure_admin(
                &mut *s,
                initial_admin_password.as_deref(),
                server::wall_clock(),
            )
        });
    match admin {
        Ok(Some(password)) => eprintln!(
            "sealwatch: first start: administrator `admin` created with the password\n\n    {password}\n\nIt is shown this once. Sign in and keep it safe; `sealwatch user reset-password admin` sets a new one."
        ),
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    if !config.auth_required {
        tracing::warn!(
            "server.auth_required is false: anyone who can reach the port can use the API"
        );
    }
    let tls = config.tls.is_some();
    let result = runtime().block_on(async {
        let shutdown = shutdown_signal();
        let running = server::start(config).await?;
        let scheme = if tls { "https" } else { "http" };
        eprintln!("sealwatch: listening on {scheme}://{}", running.addr);
        let gateway = match jt808 {
            Some(c) => match gateway::Gateway::start(c, running.ingest.clone()).await {
                Ok(g) => {
                    eprintln!("sealwatch: JT/T 808 gateway on {}", g.addr());
                    running.add_metrics(g.metrics_source());
                    Some(g)
                }
                Err(e) => {
                    let _ = running.stop().await;
                    return Err(anyhow::Error::new(e));
                }
            },
            None => None,
        };
        let native = match native_key_file {
            Some(path) => {
                let started = match gateway::load_or_create_platform_keys(&path) {
                    Ok((keys, created)) => {
                        if created {
                            tracing::info!(path = %path.display(), "native-protocol platform keys created (0600)");
                        }
                        let public = keys.public();
                        let config = gateway_settings
                            .native(keys)
                            .expect("native_listen is set");
                        gateway::NativeGateway::start(config, running.ingest.clone())
                            .await
                            .map(|g| (g, public))
                            .map_err(anyhow::Error::new)
                    }
                    Err(e) => Err(anyhow::Error::new(e)),
                };
                match started {
                    Ok((g, public)) => {
                        running.add_metrics(g.metrics_source());
                        eprintln!(
                            "sealwatch: native-protocol gateway on {} (platform signing key {}, agreement key {})",
                            g.addr(),
                            sealproto::to_hex(&public.signing.to_bytes()),
                            sealproto::to_hex(&public.agreement.to_bytes()),
                        );
                        Some(g)
                    }
                    Err(e) => {
                        if let Some(g) = gateway {
                            g.stop().await;
                        }
                        let _ = running.stop().await;
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        let mqtt = match mqtt {
            Some(c) => {
                let broker = format!("{}:{}", c.host, c.port);
                match gateway::MqttClient::start(c, running.ingest.clone()) {
                    Ok(client) => {
                        let stats = client.stats();
                        running.add_metrics(move || stats.render());
                        eprintln!("sealwatch: smart-container MQTT client of {broker}");
                        Some(client)
                    }
                    Err(e) => {
                        for g in gateway.into_iter() {
                            g.stop().await;
                        }
                        for g in native.into_iter() {
                            g.stop().await;
                        }
                        let _ = running.stop().await;
                        return Err(anyhow::anyhow!("MQTT client: {e}"));
                    }
                }
            }
            None => None,
        };
        shutdown.await;
        tracing::info!("stopping; committing what was accepted");
        if let Some(m) = mqtt {
            m.stop().await;
        }
        // Devices first: each connection finishes (and answers) what it submitted.
        if let Some(g) = gateway {
            g.stop().await;
        }
        if let Some(g) = native {
            g.stop().await;
        }
        running.stop().await.map_err(anyhow::Error::new)
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "the service failed");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
            database_url,
        } => serve(config.as_deref(), listen, data_dir, database_url),
        Command::Token { command, store } => token(command, store),
        Command::Pool { command, store } => pool_cmd::run(command, || open_store(store)),
        Command::Audit { command, store } => audit(command, store),
        Command::User { command, store } => match open_store(store) {
            Ok(mut s) => user::run(command, &mut *s),
            Err(code) => code,
        },
        Command::DeviceKey { command, store } => device_key(command, store),
        Command::DataKey { command, store } => match store_config(store) {
            Ok(config) => data_key::run(command, &config),
            Err(code) => code,
        },
        Command::Backup {
            out,
            incremental_from,
            store,
        } => match store_config(store) {
            Ok(config) => {
                let target = backup::Target::of(&config);
                report(match incremental_from {
                    Some(base) => backup::backup_incremental(&target, &base, &out),
                    None => backup::backup(&target, &out),
                })
            }
            Err(code) => code,
        },
        Command::Restore {
            from,
            replace,
            store,
        } => match store_config(store) {
            Ok(config) => report(backup::restore(
                &from,
                &backup::Target::of(&config),
                replace,
            )),
            Err(code) => code,
        },
        Command::Emulate(args) => match runtime().block_on(emulate::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(emulate::Failure::Input(why)) => {
                eprintln!("sealwatch emulate: {why}");
                ExitCode::from(2)
            }
            Err(emulate::Failure::Device(why)) => {
                eprintln!("sealwatch emulate: {why}");
                ExitCode::from(1)
            }
        },
        Command::VerifyEvent { key, record } => {
            let text = if record.as_os_str() == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
            } else {
                std::fs::read_to_string(&record)
            };
            let text = match text {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", record.display());
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            match verify::verify(&text, &key) {
                Ok(verify::Verdict::Verified(v)) => {
                    println!("{v}");
                    ExitCode::SUCCESS
                }
                Ok(verify::Verdict::Refused(why)) => {
                    eprintln!("NOT VERIFIED: {why}");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_INVALID)
                }
            }
        }
        Command::Decode {
            protocol,
            hex,
            model,
            utc_offset_minutes,
            accept_bad_check_code,
            session_key,
            plaintext,
            device,
        } => {
            let hex = if hex == "-" {
                let mut text = String::new();
                if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
                    eprintln!("error: cannot read standard input: {e}");
                    return ExitCode::from(EXIT_INVALID);
                }
                text
            } else {
                hex
            };
            let opts = decode::DecodeOptions {
                model,
                utc_offset_minutes,
                accept_bad_check_code,
                session_key,
                plaintext,
                device,
            };
            match decode::decode(protocol, &hex, &opts) {
                Ok(values) => {
                    let mut out = std::io::stdout().lock();
                    for v in values {
                        if writeln!(out, "{v}").is_err() {
                            break;
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_INVALID)
                }
            }
        }
        Command::Demo {
            listen,
            data_dir,
            speed,
            transits,
        } => {
            // The demo's own output is for people on stdout; warnings and errors go to stderr.
            let _ = init_logs(&config::LogSettings {
                level: "warn".into(),
                format: config::LogFormat::Text,
            });
            match runtime().block_on(demo::run(demo::Options {
                listen,
                data_dir,
                speed,
                transits,
            })) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Replay { scenario, events } => {
            let s = match load(&scenario) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let lines = match scenario::replay_lines(&s, events) {
                Ok(lines) => lines,
                Err(e) => {
                    eprintln!("error: {}: {e}", scenario.display());
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let mut out = std::io::stdout().lock();
            for line in lines {
                if writeln!(out, "{line}").is_err() {
                    // The reader went away (a closed pipe): nothing more to say.
                    return ExitCode::SUCCESS;
                }
            }
            ExitCode::SUCCESS
        }
        Command::Validate { scenario } => match load(&scenario) {
            Ok(s) => {
                println!(
                    "{}: valid ({} zones, {} transits, {} observations, {} reads, {} actions)",
                    scenario.display(),
                    s.zones.len(),
                    s.transits.len(),
                    s.observations.len(),
                    s.reads.len(),
                    s.actions.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_INVALID)
            }
        },
    }
}
