//! `sealwatch serve --config FILE`: the service's settings from a TOML file, each key
//! overridable from the environment, then from the command line.
//!
//! Precedence, lowest first: the defaults below, the file, `SEALWATCH_<SECTION>_<KEY>`
//! variables, command-line flags. Every key is documented in `docs/configuration.md`, and a test
//! checks that the document and `docs/sealwatch.example.toml` name every key there is.
//!
//! Unknown keys are errors, not warnings: a misspelt `databse_url` silently ignored would run a
//! centre on the wrong database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything `sealwatch serve` can be told.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub ingest: IngestSettings,
    pub gateway: GatewaySettings,
    pub containers: ContainerSettings,
    pub log: LogSettings,
    pub audit: AuditSettings,
    pub auth: AuthSettings,
    pub risk: RiskSettings,
    pub ui: UiSettings,
}

/// The release-or-inspect proposal (docs/decisions.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskSettings {
    /// The score (0..=100) at or above which the proposal is to inspect.
    pub inspect_at: u32,
    /// Transits selected at random for control whatever their score, per thousand.
    pub random_per_mille: u32,
    /// The share of transits with a violation confirmed that counts as normal, in (0, 1).
    pub base_violation_rate: f64,
    /// Days of history in the carrier's and the route's records.
    pub history_days: u32,
    /// HS code prefixes of sensitive goods.
    pub sensitive_hs_prefixes: Vec<String>,
}

impl Default for RiskSettings {
    fn default() -> RiskSettings {
        let policy = risk::Policy::default();
        RiskSettings {
            inspect_at: policy.inspect_at,
            random_per_mille: policy.random_per_mille,
            base_violation_rate: policy.base_violation_rate,
            history_days: 365,
            sensitive_hs_prefixes: policy.sensitive_hs_prefixes,
        }
    }
}

impl RiskSettings {
    /// The service's risk configuration; a number out of range names its key.
    pub fn config(&self) -> Result<server::decisions::RiskConfig, String> {
        let policy = risk::Policy {
            inspect_at: self.inspect_at,
            random_per_mille: self.random_per_mille,
            base_violation_rate: self.base_violation_rate,
            sensitive_hs_prefixes: self.sensitive_hs_prefixes.clone(),
            ..risk::Policy::default()
        };
        policy.check().map_err(|e| format!("risk.{e}"))?;
        if self.history_days == 0 {
            return Err("risk.history_days: at least 1".into());
        }
        Ok(server::decisions::RiskConfig {
            policy,
            history_days: self.history_days,
        })
    }
}

/// The web UI (docs/configuration.md, "Web UI").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiSettings {
    /// The built UI's directory (`npm --prefix ui run build` writes `ui/dist`); empty means
    /// `ui/dist` of the source tree sealwatch was built from.
    pub dir: String,
    /// A raster tile server for the map (`https://tiles.example/{z}/{x}/{y}.png`), for sites
    /// that are online; empty draws the bundled Natural Earth outline only (offline).
    pub tile_url: String,
}

impl UiSettings {
    /// The server's view of these settings.
    pub fn config(&self) -> server::ui::UiConfig {
        let dir = if self.dir.trim().is_empty() {
            server::ui::default_dir()
        } else {
            PathBuf::from(self.dir.trim())
        };
        let tile_url = self.tile_url.trim();
        server::ui::UiConfig {
            dir: Some(dir),
            tile_url: (!tile_url.is_empty()).then(|| tile_url.to_owned()),
        }
    }
}

/// Signing in (docs/security.md, "Authentication").
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// The password of the administrator `admin` made on the first start (no user yet);
    /// unset, a random one is made and printed once.
    pub initial_admin_password: Option<String>,
    /// Whether an administrator must enrol a TOTP second factor before doing anything else.
    pub admin_totp_required: bool,
}

impl Default for AuthSettings {
    fn default() -> AuthSettings {
        AuthSettings {
            initial_admin_password: None,
            admin_totp_required: true,
        }
    }
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password is never printed.
        f.debug_struct("AuthSettings")
            .field(
                "initial_admin_password",
                &self.initial_admin_password.as_ref().map(|_| "(set)"),
            )
            .field("admin_totp_required", &self.admin_totp_required)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// How long stopping waits for open connections, in seconds.
    pub shutdown_grace_s: u64,
    /// Whether the API needs a bearer token (`sealwatch token create`) or a session.
    pub auth_required: bool,
    /// A PEM certificate chain: with `tls_key_file`, the API is served over HTTPS.
    pub tls_cert_file: Option<PathBuf>,
    /// The PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Mark the session cookie `Secure` without `tls_*` (HTTPS ended by a proxy in front).
    pub cookie_secure: bool,
    /// A session unused this long ends, in seconds.
    pub session_idle_timeout_s: u64,
    /// A session ends this long after sign-in however active, in seconds.
    pub session_absolute_timeout_s: u64,
}

impl ServerSettings {
    /// Both TLS files or neither.
    pub fn check_tls(&self) -> Result<(), String> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(_), None) => {
                Err("server.tls_key_file: required with server.tls_cert_file".into())
            }
            (None, Some(_)) => {
                Err("server.tls_cert_file: required with server.tls_key_file".into())
            }
            _ => Ok(()),
        }
    }

    /// The TLS files, when both are set.
    pub fn tls(&self) -> Option<server::tls::TlsFiles> {
        Some(server::tls::TlsFiles {
            cert_file: self.tls_cert_file.clone()?,
            key_file: self.tls_key_file.clone()?,
        })
    }
}

impl Default for ServerSettings {
    fn default() -> ServerSettings {
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8480)),
            max_body_bytes: server::DEFAULT_MAX_BODY_BYTES,
            shutdown_grace_s: 10,
            auth_required: true,
            tls_cert_file: None,
            tls_key_file: None,
            cookie_secure: false,
            session_idle_timeout_s: 30 * 60,
            session_absolute_timeout_s: 12 * 3600,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Directory of the embedded database (`sealwatch.db`).
    pub data_dir: PathBuf,
    /// A PostgreSQL URL; when set, it is used instead of the embedded database.
    pub database_url: Option<String>,
    /// The PostgreSQL schema to work in, created if missing; `public` when unset.
    pub database_schema: Option<String>,
    /// Days observations are kept; 0 keeps them for ever.
    pub retention_days: u64,
    /// Days after a transit is closed that its driver's name and contact are kept; 0 keeps
    /// them for ever.
    pub personal_data_retention_days: u64,
    /// Days after an alarm is closed that its attached files are kept; 0 keeps them for ever.
    pub attachment_retention_days: u64,
    /// Encrypt transits' personal and confidential fields at rest (docs/security.md,
    /// "Encryption at rest"). The key: `SEALWATCH_STORE_ENCRYPTION_KEY` (64 hex digits) if set,
    /// else `encryption_key_file`.
    pub encryption: bool,
    /// The data-encryption key file, created 0600 with a random key on first start when
    /// missing. Unset: `store.keys` in the data directory.
    pub encryption_key_file: Option<PathBuf>,
}

impl Default for StoreSettings {
    fn default() -> StoreSettings {
        StoreSettings {
            data_dir: PathBuf::from("sealwatch-data"),
            database_url: None,
            database_schema: None,
            retention_days: 0,
            personal_data_retention_days: 0,
            attachment_retention_days: 0,
            encryption: true,
            encryption_key_file: None,
        }
    }
}

impl StoreSettings {
    /// Where the data-encryption keys are: the setting, or `store.keys` in the data directory.
    pub fn key_file(&self) -> PathBuf {
        self.encryption_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("store.keys"))
    }
}

/// The audit chain (docs/security.md, "Audit chain"): its signing key and how often the head
/// of the chain gets a signed checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// The platform's audit signing key (Ed25519 secret, hex); created 0600 on first start when
    /// missing. Unset: `audit.key` in the data directory.
    pub key_file: Option<PathBuf>,
    /// A checkpoint once this many entries were added since the last one (checked every
    /// clock tick).
    pub checkpoint_every_entries: u64,
    /// A checkpoint once this many seconds have passed with entries added.
    pub checkpoint_every_s: u64,
}

impl Default for AuditSettings {
    fn default() -> AuditSettings {
        AuditSettings {
            key_file: None,
            checkpoint_every_entries: 1000,
            checkpoint_every_s: 60,
        }
    }
}

impl AuditSettings {
    /// Where the audit key is: the setting, or `audit.key` in the data directory.
    pub fn key_file(&self, data_dir: &Path) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| data_dir.join("audit.key"))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// Largest number of inputs committed in one transaction (group commit).
    pub batch_max_items: usize,
    /// How often the clock fires due timers (deadline, communication loss), in milliseconds.
    pub tick_interval_ms: u64,
}

impl Default for IngestSettings {
    fn default() -> IngestSettings {
        IngestSettings {
            batch_max_items: 10_000,
            tick_interval_ms: 1_000,
        }
    }
}

/// The device gateways: JT/T 808 and the native protocol, over TCP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// Address the JT/T 808 gateway listens on; unset, there is none.
    pub jt808_listen: Option<SocketAddr>,
    /// Device connections served at once; more are closed when accepted.
    pub max_connections: usize,
    /// A connection silent for this long is closed, in seconds.
    pub idle_timeout_s: u64,
    /// Frames read per second per connection (0: no limit); beyond it reading slows down.
    pub max_frames_per_s: u32,
    /// Refused messages (bad auth code, reports before authenticating) before a connection is
    /// closed.
    pub max_auth_failures: u32,
    /// Device models (the registry's `model`) whose frames are taken despite a bad check code.
    pub accept_bad_check_code_models: Vec<String>,
    /// How remote commands go on the wire, per device model (the registry's `model`): each
    /// kind left out keeps the default (see `gateway::CommandSet`).
    pub jt808_commands: std::collections::BTreeMap<String, CommandSetSettings>,
    /// Address the native-protocol gateway listens on; unset, there is none.
    pub native_listen: Option<SocketAddr>,
    /// The platform's secret keys for the native protocol (hex); created on first start when
    /// missing. Unset: `native_platform.key` in the data directory.
    pub native_platform_key_file: Option<std::path::PathBuf>,
    /// How often a native session's device keys are read again, in seconds: a session whose
    /// keys were rotated or revoked ends at the next reading.
    pub native_key_check_s: u64,
}

/// The wire form of each command kind for one model; unset kinds keep the default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommandSetSettings {
    pub seal: Option<WireSettings>,
    pub unseal: Option<WireSettings>,
    pub set_interval: Option<WireSettings>,
    pub query_status: Option<WireSettings>,
}

/// Which JT/T 808 message carries a command (`{seconds}` in a text or parameter string is
/// replaced by the command's `args.seconds`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "message", rename_all = "snake_case", deny_unknown_fields)]
pub enum WireSettings {
    /// 0x8300 text message.
    Text {
        text: String,
        #[serde(default)]
        flags: u8,
    },
    /// 0x8105 terminal control.
    TerminalControl {
        command: u8,
        #[serde(default)]
        parameters: String,
    },
    /// 0x8103, one DWORD parameter set to `args.seconds`.
    Parameter { id: u32 },
    /// Not sent: refused.
    Unsupported,
}

impl WireSettings {
    fn wire(&self) -> gateway::Wire {
        match self.clone() {
            WireSettings::Text { text, flags } => gateway::Wire::Text { flags, text },
            WireSettings::TerminalControl {
                command,
                parameters,
            } => gateway::Wire::TerminalControl {
                command,
                parameters,
            },
            WireSettings::Parameter { id } => gateway::Wire::Parameter { id },
            WireSettings::Unsupported => gateway::Wire::Unsupported,
        }
    }
}

impl CommandSetSettings {
    fn command_set(&self) -> gateway::CommandSet {
        let d = gateway::CommandSet::default();
        let pick = |s: &Option<WireSettings>, d: gateway::Wire| s.as_ref().map_or(d, |w| w.wire());
        gateway::CommandSet {
            seal: pick(&self.seal, d.seal),
            unseal: pick(&self.unseal, d.unseal),
            set_interval: pick(&self.set_interval, d.set_interval),
            query_status: pick(&self.query_status, d.query_status),
        }
    }
}

impl Default for GatewaySettings {
    fn default() -> GatewaySettings {
        let d = gateway::Config::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        GatewaySettings {
            jt808_listen: None,
            max_connections: d.max_connections,
            idle_timeout_s: d.idle_timeout.as_secs(),
            max_frames_per_s: d.max_frames_per_s,
            max_auth_failures: d.max_auth_failures,
            accept_bad_check_code_models: d.accept_bad_check_code_models,
            jt808_commands: Default::default(),
            native_listen: None,
            native_platform_key_file: None,
            native_key_check_s: gateway::NativeConfig::new(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                sealproto::PlatformKeys::from_secrets([0; 32], [0; 32]),
            )
            .key_check_interval
            .as_secs(),
        }
    }
}

impl GatewaySettings {
    /// The JT/T 808 gateway's configuration, when it is to run.
    pub fn jt808(&self) -> Option<gateway::Config> {
        let mut c = gateway::Config::new(self.jt808_listen?);
        c.max_connections = self.max_connections.max(1);
        c.idle_timeout = std::time::Duration::from_secs(self.idle_timeout_s.max(1));
        c.max_frames_per_s = self.max_frames_per_s;
        c.max_auth_failures = self.max_auth_failures.max(1);
        c.accept_bad_check_code_models = self.accept_bad_check_code_models.clone();
        c.command_sets = self
            .jt808_commands
            .iter()
            .map(|(model, set)| (model.clone(), set.command_set()))
            .collect();
        Some(c)
    }

    /// Where the native gateway's platform key file is, given the data directory.
    pub fn native_key_file(&self, data_dir: &Path) -> std::path::PathBuf {
        self.native_platform_key_file
            .clone()
            .unwrap_or_else(|| data_dir.join("native_platform.key"))
    }

    /// The native gateway's configuration with the platform's keys, when it is to run.
    pub fn native(&self, platform_keys: sealproto::PlatformKeys) -> Option<gateway::NativeConfig> {
        let mut c = gateway::NativeConfig::new(self.native_listen?, platform_keys);
        c.max_connections = self.max_connections.max(1);
        c.idle_timeout = std::time::Duration::from_secs(self.idle_timeout_s.max(1));
        c.key_check_interval = std::time::Duration::from_secs(self.native_key_check_s.max(1));
        Some(c)
    }
}

/// Smart containers (docs/containers.md): the MQTT client of an external broker, and the
/// vendors allowed to post to the webhook.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerSettings {
    /// The broker's host name or address; unset, there is no MQTT client.
    pub mqtt_host: Option<String>,
    pub mqtt_port: u16,
    /// Stable across restarts, so that the broker keeps the session.
    pub mqtt_client_id: String,
    pub mqtt_username: Option<String>,
    pub mqtt_password: Option<String>,
    /// Topics are `{prefix}/{vendor}/{container}/{format}`.
    pub mqtt_topic_prefix: String,
    pub mqtt_keep_alive_s: u64,
    /// Whether the broker forgets the session (and unacknowledged messages) on disconnect.
    pub mqtt_clean_session: bool,
    /// Vendor name to webhook secret.
    pub webhook_secrets: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for ContainerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password and the secrets are never printed.
        f.debug_struct("ContainerSettings")
            .field("mqtt_host", &self.mqtt_host)
            .field("mqtt_port", &self.mqtt_port)
            .field("mqtt_client_id", &self.mqtt_client_id)
            .field("mqtt_topic_prefix", &self.mqtt_topic_prefix)
            .field("webhook_vendors", &self.webhook_secrets.keys())
            .finish_non_exhaustive()
    }
}

impl Default for ContainerSettings {
    fn default() -> ContainerSettings {
        let d = gateway::MqttConfig::new("", 1883);
        ContainerSettings {
            mqtt_host: None,
            mqtt_port: d.port,
            mqtt_client_id: d.client_id,
            mqtt_username: None,
            mqtt_password: None,
            mqtt_topic_prefix: d.topic_prefix,
            mqtt_keep_alive_s: d.keep_alive.as_secs(),
            mqtt_clean_session: d.clean_session,
            webhook_secrets: Default::default(),
        }
    }
}

impl ContainerSettings {
    /// The MQTT client's configuration, when it is to run.
    pub fn mqtt(&self) -> Option<gateway::MqttConfig> {
        let mut c = gateway::MqttConfig::new(self.mqtt_host.clone()?, self.mqtt_port);
        c.client_id = self.mqtt_client_id.clone();
        c.username = self.mqtt_username.clone();
        c.password = self.mqtt_password.clone();
        c.topic_prefix = self.mqtt_topic_prefix.clone();
        c.keep_alive = std::time::Duration::from_secs(self.mqtt_keep_alive_s.max(5));
        c.clean_session = self.mqtt_clean_session;
        Some(c)
    }

    /// The webhook's vendors and secrets, checked.
    pub fn webhook_secrets(&self) -> Result<server::WebhookSecrets, String> {
        server::WebhookSecrets::new(self.webhook_secrets.clone())
            .map_err(|e| format!("containers.webhook_secrets: {e}"))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A filter in `RUST_LOG` syntax: `info`, `debug`, `server=debug,info`.
    pub level: String,
    /// `text` for people, `json` (one object per line) for log collectors.
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> LogSettings {
        LogSettings {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// The prefix of every environment override.
pub const ENV_PREFIX: &str = "SEALWATCH_";

/// Every key as `(section, key)`, from the defaults: the one list the environment overrides
/// and the documentation test walk.
pub fn keys() -> Vec<(String, String)> {
    let defaults = serde_json::to_value(Settings::default()).expect("settings serialise");
    let mut keys = Vec::new();
    for (section, table) in defaults.as_object().into_iter().flatten() {
        for key in table.as_object().into_iter().flatten().map(|(k, _)| k) {
            keys.push((section.clone(), key.clone()));
        }
    }
    keys
}

/// The environment variable that overrides `section.key`.
pub fn env_name(section: &str, key: &str) -> String {
    format!("{ENV_PREFIX}{}_{}", section, key).to_ascii_uppercase()
}

/// Reads settings: the file (when given) over the defaults, then the environment over both.
/// `env` is the process environment in production and a fixed list in tests.
pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
    let mut doc = serde_json::to_value(Settings::default()).expect("settings serialise");
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            // The parser's own message quotes the offending line, which may hold a
            // password (a database URL): only where, and what is wrong.
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            match line {
                Some(line) => format!("{}: line {line}: {}", path.display(), e.message()),
                None => format!("{}: {}", path.display(), e.message()),
            }
        })?;
        let from_file =
            serde_json::to_value(table).map_err(|e| format!("{}: {e}", path.display()))?;
        overlay(&mut doc, from_file, &path.display().to_string())?;
    }
    for (section, key) in keys() {
        let name = env_name(&section, &key);
        let Some(text) = env(&name) else { continue };
        // The default says what type the key has; text from the environment is read as that.
        let value = match &doc[&section][&key] {
            Value::Number(_) => text
                .trim()
                .parse::<u64>()
                .map(Value::from)
                .map_err(|_| format!("{name}: expected a whole number, got {text:?}"))?,
            Value::Bool(_) => text
                .trim()
                .parse::<bool>()
                .map(Value::from)
                .map_err(|_| format!("{name}: expected true or false, got {text:?}"))?,
            // A list from the environment is comma-separated.
            Value::Array(_) => Value::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            ),
            // A table from the environment is JSON.
            Value::Object(_) => serde_json::from_str(&text)
                .map_err(|e| format!("{name}: expected a JSON object: {e}"))?,
            _ if text.is_empty() => Value::Null,
            _ => Value::String(text),
        };
        doc[&section][&key] = value;
    }
    let de = serde_path_to_error::deserialize::<_, Settings>(doc);
    de.map_err(|e| {
        let path = e.path().to_string();
        format!("{path}: {}", e.into_inner())
    })
}

/// Lays a file's sections over the defaults, naming unknown sections and keys.
fn overlay(doc: &mut Value, file: Value, origin: &str) -> Result<(), String> {
    for (section, table) in file.as_object().into_iter().flatten() {
        let Some(target) = doc.get_mut(section).and_then(Value::as_object_mut) else {
            return Err(format!("{origin}: [{section}]: unknown section"));
        };
        let Some(table) = table.as_object() else {
            return Err(format!("{origin}: {section}: expected a [section] table"));
        };
        for (key, value) in table {
            if !target.contains_key(key) {
                return Err(format!("{origin}: {section}.{key}: unknown key"));
            }
            target.insert(key.clone(), value.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn file(text: &str) -> tempfile_path::TempFile {
        tempfile_path::TempFile::new(text)
    }

    /// A file in the system's temporary directory, removed when dropped.
    mod tempfile_path {
        pub struct TempFile(pub std::path::PathBuf);
        impl TempFile {
            pub fn new(text: &str) -> TempFile {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let path = std::env::temp_dir()
                    .join(format!("sealwatch-config-{}-{n}.toml", std::process::id()));
                std::fs::write(&path, text).unwrap();
                TempFile(path)
            }
        }
        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn defaults_without_a_file() {
        assert_eq!(load(None, no_env).unwrap(), Settings::default());
    }

    #[test]
    fn command_sets_from_the_file() {
        let f = file(
            "[gateway]\njt808_listen = \"127.0.0.1:6808\"\n\
             [gateway.jt808_commands.G-360P]\n\
             unseal = { message = \"text\", text = \"UNLOCK,{seconds}\", flags = 1 }\n\
             query_status = { message = \"unsupported\" }\n",
        );
        let gw = load(Some(&f.0), no_env).unwrap().gateway.jt808().unwrap();
        let set = gw.commands_for(Some("G-360P"));
        assert_eq!(
            set.unseal,
            gateway::Wire::Text {
                flags: 1,
                text: "UNLOCK,{seconds}".into()
            }
        );
        assert_eq!(set.query_status, gateway::Wire::Unsupported);
        assert_eq!(
            gw.commands_for(Some("other")),
            &gateway::CommandSet::default()
        );
        let f = file("[gateway.jt808_commands.X]\nseal = { message = \"smoke_signal\" }\n");
        assert!(load(Some(&f.0), no_env).is_err());
    }

    #[test]
    fn file_then_environment() {
        let f = file("[server]\nlisten = \"127.0.0.1:9000\"\n[ingest]\nbatch_max_items = 500\n");
        let s = load(Some(&f.0), no_env).unwrap();
        assert_eq!(s.server.listen.port(), 9000);
        assert_eq!(s.ingest.batch_max_items, 500);
        assert_eq!(s.store, StoreSettings::default());
        let env = |name: &str| match name {
            "SEALWATCH_INGEST_BATCH_MAX_ITEMS" => Some("250".to_owned()),
            "SEALWATCH_STORE_DATABASE_URL" => Some("postgres://db/sealwatch".to_owned()),
            "SEALWATCH_LOG_FORMAT" => Some("json".to_owned()),
            "SEALWATCH_GATEWAY_JT808_LISTEN" => Some("127.0.0.1:6808".to_owned()),
            "SEALWATCH_GATEWAY_ACCEPT_BAD_CHECK_CODE_MODELS" => Some("G-360P, X1 ,".to_owned()),
            "SEALWATCH_GATEWAY_JT808_COMMANDS" => Some(
                r#"{"JT701": {"unseal": {"message": "terminal_control", "command": 101}}}"#
                    .to_owned(),
            ),
            _ => None,
        };
        let s = load(Some(&f.0), env).unwrap();
        assert_eq!(s.server.listen.port(), 9000, "the file's value stays");
        assert_eq!(s.ingest.batch_max_items, 250, "the environment wins");
        assert_eq!(
            s.store.database_url.as_deref(),
            Some("postgres://db/sealwatch")
        );
        assert_eq!(s.log.format, LogFormat::Json);
        let gw = s.gateway.jt808().expect("the gateway is on");
        assert_eq!(gw.listen.port(), 6808);
        assert_eq!(gw.accept_bad_check_code_models, ["G-360P", "X1"]);
        let jt701 = gw.commands_for(Some("jt701"));
        assert_eq!(
            jt701.unseal,
            gateway::Wire::TerminalControl {
                command: 101,
                parameters: String::new()
            }
        );
        assert_eq!(jt701.seal, gateway::CommandSet::default().seal);
        assert!(
            load(None, no_env).unwrap().gateway.jt808().is_none(),
            "off unless a listen address is set"
        );
    }

    #[test]
    fn mistakes_are_named() {
        let f = file("[store]\ndatabse_url = \"postgres://x\"\n");
        let e = load(Some(&f.0), no_env).unwrap_err();
        assert!(e.ends_with("store.databse_url: unknown key"), "{e}");
        let f = file("[stores]\ndata_dir = \"x\"\n");
        let e = load(Some(&f.0), no_env).unwrap_err();
        assert!(e.ends_with("[stores]: unknown section"), "{e}");
        let f = file("[server]\nlisten = \"localhost\"\n");
        let e = load(Some(&f.0), no_env).unwrap_err();
        assert!(e.starts_with("server.listen: "), "{e}");
        let f = file("[server\n");
        assert!(load(Some(&f.0), no_env).is_err());
        // A syntax error names the line, never quotes it: it may hold a password.
        let f = file("[store]\ndatabase_url = \"postgres://u:s3cret@db/x\n");
        let e = load(Some(&f.0), no_env).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        let env = |name: &str| (name == "SEALWATCH_SERVER_MAX_BODY_BYTES").then(|| "8MB".into());
        let e = load(None, env).unwrap_err();
        assert_eq!(
            e,
            "SEALWATCH_SERVER_MAX_BODY_BYTES: expected a whole number, got \"8MB\""
        );
        let e = load(Some(Path::new("/nonexistent/sealwatch.toml")), no_env).unwrap_err();
        assert!(
            e.starts_with("cannot read /nonexistent/sealwatch.toml"),
            "{e}"
        );
    }

    #[test]
    fn the_native_gateway_is_off_until_it_has_an_address() {
        let keys = || sealproto::PlatformKeys::from_secrets([1; 32], [2; 32]);
        let defaults = load(None, no_env).unwrap();
        assert!(defaults.gateway.native(keys()).is_none());
        assert_eq!(
            defaults.gateway.native_key_file(Path::new("/data")),
            Path::new("/data/native_platform.key")
        );
        let f = file(
            "[gateway]\nnative_listen = \"127.0.0.1:6809\"\nidle_timeout_s = 30\n\
             native_platform_key_file = \"/etc/sealwatch/platform.key\"\n",
        );
        let s = load(Some(&f.0), no_env).unwrap();
        let c = s.gateway.native(keys()).expect("on");
        assert_eq!(c.listen.port(), 6809);
        assert_eq!(c.idle_timeout.as_secs(), 30);
        assert_eq!(
            s.gateway.native_key_file(Path::new("/data")),
            Path::new("/etc/sealwatch/platform.key")
        );
        let env = |name: &str| {
            (name == "SEALWATCH_GATEWAY_NATIVE_LISTEN").then(|| "127.0.0.1:7000".to_owned())
        };
        let s = load(None, env).unwrap();
        assert_eq!(s.gateway.native(keys()).unwrap().listen.port(), 7000);
    }

    /// docs/configuration.md documents every key with its variable, and the example file sets
    /// every key and is itself valid.
    #[test]
    fn every_key_is_documented() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let doc = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
        let example_path = root.join("docs/sealwatch.example.toml");
        let example = std::fs::read_to_string(&example_path).unwrap();
        let example_settings = load(Some(&example_path), no_env).unwrap();
        for (section, key) in keys() {
            assert!(
                doc.contains(&format!("`{section}.{key}`")),
                "docs/configuration.md: {section}.{key} is not documented"
            );
            assert!(
                doc.contains(&format!("`{}`", env_name(&section, &key))),
                "docs/configuration.md: {} is not documented",
                env_name(&section, &key)
            );
            let in_section = example
                .split("\n[")
                .find(|s| {
                    s.trim_start_matches('[')
                        .starts_with(&format!("{section}]"))
                })
                .unwrap_or_else(|| panic!("example: no [{section}]"));
            assert!(
                in_section.contains(&format!("\n{key} ="))
                    || in_section.contains(&format!("\n# {key} =")),
                "docs/sealwatch.example.toml: {section}.{key} is missing"
            );
        }
        assert_eq!(example_settings.server.listen.port(), 8480);
    }

    #[test]
    fn containers_from_the_file_and_the_environment() {
        let f = file(
            "[containers]\nmqtt_host = \"broker.example\"\nmqtt_username = \"sw\"\n\
             mqtt_password = \"pw-never-printed\"\n\
             [containers.webhook_secrets]\nacme = \"acme-secret-never-printed\"\n",
        );
        let env =
            |name: &str| (name == "SEALWATCH_CONTAINERS_MQTT_PORT").then(|| "1884".to_owned());
        let s = load(Some(&f.0), env).unwrap();
        let mqtt = s.containers.mqtt().unwrap();
        assert_eq!((mqtt.host.as_str(), mqtt.port), ("broker.example", 1884));
        assert_eq!(mqtt.topic_filter(), "sealwatch/containers/+/+/+");
        assert!(!mqtt.clean_session);
        assert!(s.containers.webhook_secrets().is_ok());
        let printed = format!(
            "{:?} {:?} {mqtt:?}",
            s.containers,
            s.containers.webhook_secrets().unwrap()
        );
        assert!(!printed.contains("never-printed"), "{printed}");
        assert!(printed.contains("acme"), "{printed}");
        assert!(Settings::default().containers.mqtt().is_none());
        let short = file("[containers.webhook_secrets]\nacme = \"short\"\n");
        let e = load(Some(&short.0), no_env)
            .unwrap()
            .containers
            .webhook_secrets()
            .unwrap_err();
        assert!(e.starts_with("containers.webhook_secrets: acme"), "{e}");
    }
}
