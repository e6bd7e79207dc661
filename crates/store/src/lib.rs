//! Durable storage for sealwatch: one interface, two backends.
//!
//! [`Store`] is what the service needs from a database: zones, stations, devices and readers,
//! transits with their supervision information and state, the observation log, events, alarms
//! with their full handling history, and counts of transits and alarms for statistics.
//! [`SqliteStore`] is the embedded default (one file, WAL); [`PgStore`] is PostgreSQL for scale.
//! Both pass one conformance suite (`tests/conformance.rs`), the PostgreSQL run against the
//! database named by `TEST_DATABASE_URL`.
//!
//! The interface is synchronous: the service gives each store its own thread (the ingest
//! writer commits in batches on one), so no async runtime is involved here.
//!
//! **Architecture invariant**: SQL lives in this crate; migrations are `.sql` files under
//! `migrations/<backend>/`, applied in order and recorded in `schema_version`.

pub mod incremental;
mod postgres;
pub mod retention;
pub mod sealed;
mod sqlite;
mod users;

pub use crate::postgres::PgStore;
pub use crate::sealed::{KeyRing, Keys};
pub use crate::sqlite::SqliteStore;
pub use crate::users::{Session, User, check_username, username_key};
pub use audit::{Checkpoint as AuditCheckpoint, Entry as AuditEntry, Record as AuditRecord};

use std::collections::BTreeMap;

use model::{
    Action, Alarm, AlarmKind, AlarmState, AlarmStep, CheckpointRead, Device, DeviceKind,
    DeviceState, Event, Observation, Outcome, Reader, Role, Station, StationId, Timestamp, Transit,
    TransitId, TransitState, Zone,
};
use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An API token as stored: who it is for, and whether it still works. The secret is not here,
/// only its hash, beside it in the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    /// The public part of the token, shown in lists and logs.
    pub id: String,
    pub role: Role,
    /// What the token is for (`gateway hall 3`, `nightly export`).
    pub label: String,
    /// The organisation the token acts for, if any (migration 013).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

impl ApiToken {
    /// Whether the token may be used at `now`.
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// One item of the live feed, as the live stream sends it: `kind` is `event`, `alarm` or
/// `alarm_update`, `data` the JSON document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeedItem {
    /// The stream's event id: increasing, durable, never reused.
    pub id: i64,
    pub t: Timestamp,
    pub transit: String,
    pub kind: String,
    pub data: serde_json::Value,
}

/// The devices paired with transits in a commit: `(transit, device)` for each `device_paired`
/// event, the device taken from the `pair` action that caused it.
fn pairings<'a>(c: &Commit<'a>) -> Vec<(&'a str, &'a str)> {
    c.events
        .iter()
        .filter(|e| e.event == model::EventKind::DevicePaired)
        .filter_map(|e| {
            c.inputs.iter().rev().find_map(|(_, i)| match i {
                LoggedInput::Action { action }
                    if action.action == model::ActionKind::Pair && action.transit == e.transit =>
                {
                    Some((action.transit.as_str(), action.device.as_ref()?.as_str()))
                }
                _ => None,
            })
        })
        .collect()
}

/// A feed row to insert: time, transit, kind, JSON document.
type FeedRow = (i64, String, &'static str, String);

/// The feed rows of a commit's outputs: events first, then alarms (with their ids), each in
/// the order given. The writer publishes in the same order.
fn output_feed(events: &[Event], alarms: &[Alarm], alarm_ids: &[i64]) -> Result<Vec<FeedRow>> {
    let mut rows = Vec::with_capacity(events.len() + alarms.len());
    for e in events {
        rows.push((
            e.t.unix_ms(),
            e.transit.to_string(),
            "event",
            serde_json::to_string(e)?,
        ));
    }
    for (a, id) in alarms.iter().zip(alarm_ids) {
        let mut doc = serde_json::to_value(a)?;
        if let Some(o) = doc.as_object_mut() {
            o.insert("id".into(), (*id).into());
        }
        rows.push((
            a.t.unix_ms(),
            a.transit.to_string(),
            "alarm",
            doc.to_string(),
        ));
    }
    Ok(rows)
}

/// The feed row of a handling step: the alarm's id, what it is, its new state and the step.
#[allow(clippy::too_many_arguments)]
fn step_feed(
    id: i64,
    transit: String,
    kind: &str,
    grade: i64,
    t: &Transition,
    actor: &str,
    at: Timestamp,
    note: Option<&str>,
) -> Result<FeedRow> {
    let doc = serde_json::json!({
        "id": id,
        "transit": transit,
        "kind": kind,
        "grade": grade,
        "state": t.next,
        "step": HandlingStep {
            at,
            actor: actor.to_owned(),
            step: t.step_text.to_owned(),
            outcome: t.step_outcome.as_deref().and_then(parse_outcome),
            note: note.map(str::to_owned),
        },
    });
    Ok((at.unix_ms(), transit, "alarm_update", doc.to_string()))
}

/// Checks that an alarm may take an attachment (it exists and is not closed), from its stored
/// state, and gives the feed row recording it.
fn attach_feed(
    row: Option<(String, Option<String>, String, String, i64)>,
    meta: &Attachment,
) -> Result<FeedRow> {
    let (state, outcome, transit, kind, grade) = row.ok_or_else(|| Error::NotFound {
        what: "alarm",
        id: meta.alarm.to_string(),
    })?;
    let t = transition(&state, outcome.as_deref(), AlarmStep::Report)?;
    let t = Transition {
        step_text: "attach",
        ..t
    };
    step_feed(
        meta.alarm,
        transit,
        &kind,
        grade,
        &t,
        &meta.actor,
        meta.at,
        Some(&attach_note(meta)),
    )
}

/// The history note of an attachment: what was attached, so the history alone tells.
fn attach_note(meta: &Attachment) -> String {
    format!(
        "{} ({}, {} bytes, sha256 {})",
        meta.name, meta.content_type, meta.size_bytes, meta.sha256
    )
}

fn feed_item(id: i64, t: i64, transit: String, kind: String, doc: &str) -> Result<FeedItem> {
    Ok(FeedItem {
        id,
        t: Timestamp::from_unix_ms(t),
        transit,
        kind,
        data: serde_json::from_str(doc)?,
    })
}

/// A file attached to an alarm, without its bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: i64,
    pub alarm: i64,
    pub at: Timestamp,
    pub actor: String,
    /// A label given by the uploader (checked by the API: no paths).
    pub name: String,
    pub content_type: String,
    /// Hex SHA-256 of the bytes, computed by the caller and kept as evidence.
    pub sha256: String,
    pub size_bytes: u64,
}

/// A line a device sent that is not an observation, kept as it came (a plain-text command
/// result on a JT/T 808 connection). The store gives it no meaning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceLogEntry {
    pub id: i64,
    pub device: String,
    /// When the platform received it.
    pub at: Timestamp,
    /// Which gateway took it (`jt808`).
    pub source: String,
    /// What it is (`text_result`).
    pub kind: String,
    pub text: String,
}

/// A device's native-protocol public keys (hex), as provisioned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceKeysRecord {
    pub device: String,
    /// The Ed25519 signing key (32 bytes, hex).
    pub signing_public: String,
    /// The X25519 agreement key (32 bytes, hex).
    pub agreement_public: String,
    /// When these keys were provisioned.
    pub created_at: Timestamp,
    /// When they were revoked: the gateway refuses the device from then on.
    pub revoked_at: Option<Timestamp>,
}

/// A reader's Ed25519 public key (hex), as provisioned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReaderKeyRecord {
    pub reader: String,
    /// The Ed25519 public key (32 bytes, hex).
    pub public_key: String,
    /// When this key was provisioned.
    pub created_at: Timestamp,
    /// When it was revoked: the service refuses the reader's posts from then on.
    pub revoked_at: Option<Timestamp>,
}

/// A post a reader signed, kept as evidence exactly as it was checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignedReadRecord {
    /// Assigned by the store; ignored when adding.
    pub id: i64,
    pub reader: String,
    /// SHA-256 of the signed message (hex): the same post twice has the same digest.
    pub digest: String,
    /// The key the signature was checked with (hex).
    pub public_key: String,
    /// The Ed25519 signature (64 bytes, hex).
    pub signature: String,
    /// The body as posted (UTF-8 JSON).
    pub body: String,
    pub received_at: Timestamp,
}

/// How a device is fixed to a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairingKind {
    /// Built into the container: bound to that one container number for life.
    Embedded,
    /// Attached for a trip: paired and unpaired, to one container at a time.
    Affixed,
}

impl PairingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PairingKind::Embedded => "embedded",
            PairingKind::Affixed => "affixed",
        }
    }

    fn parse(s: &str) -> Result<PairingKind> {
        match s {
            "embedded" => Ok(PairingKind::Embedded),
            "affixed" => Ok(PairingKind::Affixed),
            other => Err(Error::Conflict(format!(
                "stored pairing kind {other:?} is not valid"
            ))),
        }
    }
}

/// A device paired to a container (ISO 6346 number) from `paired_at` until `unpaired_at`
/// (exclusive; `None` while it lasts, and for ever for an embedded device).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerPairing {
    pub id: i64,
    pub container: String,
    pub device: String,
    pub kind: PairingKind,
    pub paired_at: Timestamp,
    pub unpaired_at: Option<Timestamp>,
}

impl ContainerPairing {
    /// Whether the device was paired to the container at `t`.
    pub fn covers(&self, t: Timestamp) -> bool {
        self.paired_at <= t && self.unpaired_at.is_none_or(|end| t < end)
    }
}

pub(crate) const PAIRING_COLUMNS: &str = "id, container, device, kind, paired_at, unpaired_at";

/// A pairing row as both backends read it: (id, container, device, kind, paired_at,
/// unpaired_at).
pub(crate) type PairingRow = (i64, String, String, String, i64, Option<i64>);

pub(crate) fn pairing_from_row(r: PairingRow) -> Result<ContainerPairing> {
    Ok(ContainerPairing {
        id: r.0,
        container: r.1,
        device: r.2,
        kind: PairingKind::parse(&r.3)?,
        paired_at: Timestamp::from_unix_ms(r.4),
        unpaired_at: r.5.map(Timestamp::from_unix_ms),
    })
}

/// Whether `device` may be paired to `container` at `at`, given every pairing the device has
/// had: an embedded device stays where it is; an affixed one is paired to one container at a
/// time, and its windows do not overlap (a late pairing cannot rewrite history).
pub(crate) fn check_pairing(
    device_pairings: &[ContainerPairing],
    device: &str,
    at: Timestamp,
) -> Result<()> {
    for p in device_pairings {
        if p.kind == PairingKind::Embedded {
            return Err(Error::Conflict(format!(
                "device: {device} is embedded in container {} (since {}) and bound to it for life",
                p.container, p.paired_at
            )));
        }
        match p.unpaired_at {
            None => {
                return Err(Error::Conflict(format!(
                    "device: {device} is paired to container {} since {}; unpair it first",
                    p.container, p.paired_at
                )));
            }
            Some(end) if at < end => {
                return Err(Error::Conflict(format!(
                    "paired_at: {at} falls within the pairing of {device} to container {} from {} to {end}",
                    p.container, p.paired_at
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// What a remote command asks of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    Seal,
    /// Sent only when the API has authorised it (the transit has an `authorize_unseal`).
    Unseal,
    /// `args`: `{"seconds": N}`.
    SetInterval,
    QueryStatus,
}

impl CommandKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Seal => "seal",
            CommandKind::Unseal => "unseal",
            CommandKind::SetInterval => "set_interval",
            CommandKind::QueryStatus => "query_status",
        }
    }

    fn parse(s: &str) -> Result<CommandKind> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(Error::from)
    }
}

/// Where a remote command is in its life: `queued` until the gateway sends it, `sent` until
/// the device answers, then `done` or `failed`; `refused` when the gateway would not send it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandState {
    Queued,
    Sent,
    Done,
    Failed,
    Refused,
}

impl CommandState {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandState::Queued => "queued",
            CommandState::Sent => "sent",
            CommandState::Done => "done",
            CommandState::Failed => "failed",
            CommandState::Refused => "refused",
        }
    }

    fn parse(s: &str) -> Result<CommandState> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(Error::from)
    }

    /// Whether the command has its answer (or will never be sent).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CommandState::Done | CommandState::Failed | CommandState::Refused
        )
    }
}

/// A remote command to a device, as queued by the API and followed by the gateway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceCommand {
    pub id: i64,
    pub device: String,
    /// The transit it is for (required for an unseal).
    pub transit: Option<String>,
    pub kind: CommandKind,
    pub args: serde_json::Value,
    pub created_at: Timestamp,
    pub actor: String,
    pub state: CommandState,
    pub sent_at: Option<Timestamp>,
    pub result_at: Option<Timestamp>,
    /// What the device answered, as text (lines appended as they come).
    pub result: Option<String>,
}

/// Whose commands to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandsOf<'a> {
    Device(&'a str),
    Transit(&'a str),
}

/// The columns a command is read from, in [`CommandRow`]'s order.
pub(crate) const COMMAND_COLUMNS: &str =
    "id, device, transit, kind, args, created_at, actor, state, sent_at, result_at, result";

/// A `device_commands` row as the backends read it.
pub(crate) struct CommandRow {
    pub(crate) id: i64,
    pub(crate) device: String,
    pub(crate) transit: Option<String>,
    pub(crate) kind: String,
    pub(crate) args: String,
    pub(crate) created_at: i64,
    pub(crate) actor: String,
    pub(crate) state: String,
    pub(crate) sent_at: Option<i64>,
    pub(crate) result_at: Option<i64>,
    pub(crate) result: Option<String>,
}

impl CommandRow {
    pub(crate) fn command(self) -> Result<DeviceCommand> {
        Ok(DeviceCommand {
            id: self.id,
            device: self.device,
            transit: self.transit,
            kind: CommandKind::parse(&self.kind)?,
            args: serde_json::from_str(&self.args)?,
            created_at: Timestamp::from_unix_ms(self.created_at),
            actor: self.actor,
            state: CommandState::parse(&self.state)?,
            sent_at: self.sent_at.map(Timestamp::from_unix_ms),
            result_at: self.result_at.map(Timestamp::from_unix_ms),
            result: self.result,
        })
    }
}

/// A command after a result: `state` must be final; a device answers only what was sent (or
/// answers again, a text result after its general response: the text is appended and a final
/// state stays), and only a queued command is refused.
pub(crate) fn with_result(
    mut c: DeviceCommand,
    state: CommandState,
    at: Timestamp,
    text: Option<&str>,
) -> Result<DeviceCommand> {
    let allowed = match (c.state, state) {
        (_, CommandState::Queued | CommandState::Sent) => false,
        (CommandState::Queued, CommandState::Refused) => true,
        (CommandState::Queued, _) => false,
        (CommandState::Sent, _) => true,
        (CommandState::Refused, _) => false,
        // A late answer to a command already answered: it adds to the result.
        (CommandState::Done | CommandState::Failed, _) => state != CommandState::Refused,
    };
    if !allowed {
        return Err(Error::Conflict(format!(
            "state: command {} is {}; it cannot become {}",
            c.id,
            c.state.as_str(),
            state.as_str()
        )));
    }
    c.state = state;
    c.result_at = Some(at);
    if let Some(text) = text {
        c.result = Some(match c.result.take() {
            Some(before) if !before.is_empty() => format!("{before}\n{text}"),
            _ => text.to_owned(),
        });
    }
    Ok(c)
}

/// A device's latest report, as kept for `device_telemetry` until written (see
/// `TELEMETRY_EVERY`): times in ms.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Telemetry {
    last_report_at: i64,
    battery: Option<(i64, f64)>,
    position: Option<(i64, f64, f64)>,
}

impl Telemetry {
    /// A commit's reports, one per device.
    pub(crate) fn of(inputs: &[(i64, LoggedInput)]) -> Vec<(&str, Telemetry)> {
        device_reports(inputs)
            .into_iter()
            .map(|r| {
                (
                    r.device,
                    Telemetry {
                        last_report_at: r.last_report_at,
                        battery: r.battery,
                        position: r.position,
                    },
                )
            })
            .collect()
    }

    /// What is pending with a commit's reports folded in, one entry per device.
    pub(crate) fn merged(
        pending: &HashMap<String, Telemetry>,
        fresh: &[(&str, Telemetry)],
    ) -> HashMap<String, Telemetry> {
        let mut all = pending.clone();
        Telemetry::keep(&mut all, fresh.iter().copied());
        all
    }

    /// Folds reports into what is pending.
    pub(crate) fn keep<'a>(
        pending: &mut HashMap<String, Telemetry>,
        fresh: impl IntoIterator<Item = (&'a str, Telemetry)>,
    ) {
        for (device, r) in fresh {
            match pending.get_mut(device) {
                Some(kept) => kept.merge(r),
                None => {
                    pending.insert(device.to_owned(), r);
                }
            }
        }
    }

    /// The rules of the table's update, in memory: the latest wins, a later equal time too.
    pub(crate) fn merge(&mut self, other: Telemetry) {
        self.last_report_at = self.last_report_at.max(other.last_report_at);
        if let Some(b) = other.battery
            && self.battery.is_none_or(|(at, _)| b.0 >= at)
        {
            self.battery = Some(b);
        }
        if let Some(p) = other.position
            && self.position.is_none_or(|(at, _, _)| p.0 >= at)
        {
            self.position = Some(p);
        }
    }
}

/// How long devices' latest reports may wait in memory before they are written.
///
/// Written with every commit, they cost a page write per device in each commit (10,000
/// devices reporting together rewrite the whole table many times a second); gathered, each
/// device is written once per period. Reads of devices write them first, so nobody reads
/// stale values from this store; a crash loses at most this much telemetry (the reports
/// themselves are in the log).
pub(crate) const TELEMETRY_EVERY: Duration = Duration::from_secs(1);

/// What went wrong in a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("stored document is not valid: {0}")]
    Document(#[from] serde_json::Error),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Step(#[from] model::AlarmStepError),
    /// Encryption at rest: a missing or unknown key, or a sealed value that does not open.
    /// Names the key id and the field, never a key.
    #[error("encryption at rest: {0}")]
    Sealed(String),
}

impl Error {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict(_) | Error::Step(_))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a re-encryption walk ([`Store::reseal`]) stands: the last transit row and the last
/// input done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResealCursor {
    pub transits_after: i64,
    pub inputs_after: i64,
    pub done: bool,
}

/// A transit as stored: its declaration and where it is in its life.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredTransit {
    pub transit: Transit,
    pub state: TransitState,
    pub declared_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An alarm as stored: the alarm, its id, and its handling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmRecord {
    pub id: i64,
    pub alarm: Alarm,
    pub state: AlarmState,
    pub history: Vec<HandlingStep>,
}

/// One step of an alarm's handling: who did what, when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HandlingStep {
    pub at: Timestamp,
    pub actor: String,
    /// acknowledge, dispatch, resolve, close.
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A time range, `from` inclusive and `to` exclusive; either may be open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl TimeRange {
    fn bounds(&self) -> (i64, i64) {
        (
            self.from.map_or(i64::MIN, Timestamp::unix_ms),
            self.to.map_or(i64::MAX, Timestamp::unix_ms),
        )
    }

    /// The instants in both ranges.
    pub fn intersect(self, other: TimeRange) -> TimeRange {
        TimeRange {
            from: self.from.max(other.from),
            to: match (self.to, other.to) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }

    /// True when no instant is in the range.
    pub fn is_empty(&self) -> bool {
        let (from, to) = self.bounds();
        from >= to
    }
}

/// Which transits to list. Every field narrows the list; the defaults list everything.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TransitFilter {
    pub state: Option<TransitState>,
    /// When the transit was declared.
    pub declared: TimeRange,
}

/// A device as stored: its registration, and what its reports last said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// `battery_pct` and `last_report_at` are the latest the device reported; the values given
    /// at registration stand only until its first report.
    pub device: Device,
    /// The last position fix the device reported.
    pub last_position: Option<Position>,
    pub registered_at: Timestamp,
}

/// A release-or-inspect decision as recorded (docs/decisions.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub id: i64,
    pub transit: String,
    pub at: Timestamp,
    /// Who decided (the audit chain's actor text).
    pub actor: String,
    pub proposed: risk::Decision,
    pub score: u32,
    pub decided: risk::Decision,
    /// The decision went against the proposal.
    pub overridden: bool,
    pub reason: Option<String>,
    /// The proposal as it was shown when the decision was taken.
    pub proposal: serde_json::Value,
    pub inspection: Option<InspectionResult>,
}

/// What an inspection found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InspectionResult {
    pub found: bool,
    pub note: Option<String>,
    pub at: Timestamp,
}

/// One change of a registered device's state (docs/pool.md, "Life cycle").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceStateChange {
    pub id: i64,
    pub device: String,
    pub at: Timestamp,
    /// `None` when the device was first registered.
    pub from_state: Option<String>,
    pub to_state: String,
    /// The station the device was at afterwards.
    pub station: Option<String>,
    /// `registry`, or `transit <id> <event>` for a change its transit made.
    pub cause: String,
}

/// What a transit's event does to the state of its registered device: sealed, then in transit
/// once it departs; unsealed, back in stock at the destination's station (or awaiting return
/// where the destination has none).
pub(crate) fn lifecycle_step(event: model::EventKind) -> Option<model::DeviceState> {
    match event {
        model::EventKind::Sealed => Some(model::DeviceState::Sealed),
        model::EventKind::Departed => Some(model::DeviceState::InTransit),
        // One seal of several opened with authorisation, or the transit's last one.
        model::EventKind::Unsealed | model::EventKind::DeviceUnsealed => {
            Some(model::DeviceState::InStock)
        }
        _ => None,
    }
}

/// Whether an event moves every device of its transit (sealing and departing move the whole
/// set of seals of a transit sealed with several), or only the device it names.
pub(crate) fn moves_every_device(event: model::EventKind) -> bool {
    matches!(event, model::EventKind::Sealed | model::EventKind::Departed)
}

/// Whether a device in registry state `state` follows its transit's events: only the states of
/// a device in service do. One the registry says is lost, retired, in repair or not yet
/// delivered keeps that state whatever a transit reports (an operator decided it).
pub(crate) fn follows_transits(state: &str) -> bool {
    matches!(
        state,
        "in_stock"
            | "charging"
            | "assigned"
            | "sealed"
            | "in_transit"
            | "awaiting_return"
            | "in_return"
    )
}

/// Transits leaving and reaching a zone on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneFlow {
    pub zone: String,
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub departures: u32,
    pub arrivals: u32,
}

/// Merges `(zone, day, departures, arrivals)` rows (each row one of the two) into flows
/// sorted by zone and day.
pub(crate) fn zone_flows(rows: impl IntoIterator<Item = (String, i64, i64, i64)>) -> Vec<ZoneFlow> {
    let mut merged: std::collections::BTreeMap<(String, i64), (u32, u32)> = Default::default();
    for (zone, day, dep, arr) in rows {
        let e = merged.entry((zone, day)).or_default();
        e.0 += u32::try_from(dep).unwrap_or(0);
        e.1 += u32::try_from(arr).unwrap_or(0);
    }
    merged
        .into_iter()
        .map(|((zone, day), (departures, arrivals))| ZoneFlow {
            zone,
            day,
            departures,
            arrivals,
        })
        .collect()
}

/// A reported position and when it was reported.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub t: Timestamp,
    pub lat: f64,
    pub lon: f64,
}

/// Which devices to list. Every field narrows the list; the defaults list everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceFilter {
    pub station: Option<StationId>,
    pub state: Option<DeviceState>,
    pub kind: Option<DeviceKind>,
}

/// How many alarms of one kind and grade were raised on one day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmCount {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub kind: AlarmKind,
    pub grade: u8,
    pub count: u64,
}

/// Which alarms to list. Every field narrows the list; the defaults list everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlarmFilter {
    /// `open`, `acknowledged`, `dispatched`, `resolved`, `closed`.
    pub state: Option<String>,
    pub kind: Option<AlarmKind>,
    pub min_grade: Option<u8>,
    pub transit: Option<String>,
    pub range: TimeRange,
}

/// A page of a list: at most `limit` items after the item with id `after` (keyset paging:
/// stable while new items arrive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<i64>,
    pub limit: u32,
}

impl Default for PageRequest {
    fn default() -> PageRequest {
        PageRequest {
            after: None,
            limit: 100,
        }
    }
}

/// One input of the supervisor, as logged: replaying the log in `seq` order rebuilds the
/// supervisor's state exactly (it is deterministic).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LoggedInput {
    Declare {
        at: Timestamp,
        transit: Box<Transit>,
    },
    Action {
        action: Action,
    },
    Read {
        read: CheckpointRead,
    },
    Observation {
        observation: Observation,
    },
    /// A clock tick that fired timers (ticks that changed nothing are not logged).
    Tick {
        at: Timestamp,
    },
}

impl LoggedInput {
    pub fn t(&self) -> Timestamp {
        match self {
            LoggedInput::Declare { at, .. } | LoggedInput::Tick { at } => *at,
            LoggedInput::Action { action } => action.t,
            LoggedInput::Read { read } => read.t,
            LoggedInput::Observation { observation } => observation.t,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            LoggedInput::Declare { .. } => "declare",
            LoggedInput::Action { .. } => "action",
            LoggedInput::Read { .. } => "read",
            LoggedInput::Observation { .. } => "observation",
            LoggedInput::Tick { .. } => "tick",
        }
    }
}

/// What one step of the pipeline makes durable, in one transaction: the inputs it accepted
/// (with their place in the input log), and what the supervisor made of them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Commit<'a> {
    pub inputs: &'a [(i64, LoggedInput)],
    pub events: &'a [Event],
    pub alarms: &'a [Alarm],
    /// New transit states: (transit, state, since).
    pub states: &'a [(TransitId, TransitState, Timestamp)],
    /// Audit records of what the inputs did (officers' actions, declarations), chained in the
    /// same transaction: an action is never stored without its audit entry.
    pub audit: &'a [AuditRecord],
}

/// The storage interface. See the crate documentation.
pub trait Store: Send {
    /// Which backend this is (`sqlite`, `postgresql`), for logs and metrics.
    fn backend(&self) -> &'static str;

    /// Adds or replaces a zone.
    fn put_zone(&mut self, zone: &Zone) -> Result<()>;
    fn zones(&mut self) -> Result<Vec<Zone>>;

    /// Makes a step of the pipeline durable: all of it when this returns `Ok`, none of it
    /// otherwise. A `Declare` of an id already declared is a conflict. Returns the ids given
    /// to the alarms.
    fn commit(&mut self, commit: &Commit<'_>) -> Result<Vec<i64>>;
    /// The highest `seq` in the input log (0 when empty).
    fn last_seq(&mut self) -> Result<i64>;
    /// Up to `limit` logged inputs after `seq`, in `seq` order.
    fn inputs_after(&mut self, seq: i64, limit: u32) -> Result<Vec<(i64, LoggedInput)>>;

    /// The data-encryption keys from now on (encryption at rest, [`sealed`]): the personal and
    /// confidential fields of transits are sealed under the current key when written, opened
    /// with any key of the ring when read. Without keys they are written clear.
    fn set_keys(&mut self, keys: Keys);
    /// Re-seals, under the current key, up to `limit` stored transit documents (rows, then
    /// `declare` inputs) after `cursor`, each batch one short transaction beside a running
    /// service; clear documents written before a key existed are sealed too. Returns how many
    /// documents were rewritten; `cursor.done` once the whole store has been walked.
    fn reseal(&mut self, cursor: &mut ResealCursor, limit: u32) -> Result<u64>;

    /// Adds or replaces a station.
    fn put_station(&mut self, station: &Station) -> Result<()>;
    fn station(&mut self, id: &str) -> Result<Station>;
    /// Stations in the order they were first added, with their paging keys.
    fn stations(&mut self, page: PageRequest) -> Result<Vec<(i64, Station)>>;

    /// Registers a device, or replaces its registration (`registered_at` is kept). The battery
    /// and last report of a device already heard from stay the reported ones.
    fn put_device(&mut self, device: &Device, registered_at: Timestamp) -> Result<()>;
    fn device(&mut self, id: &str) -> Result<DeviceRecord>;
    /// Devices in registration order, with their paging keys.
    fn devices(
        &mut self,
        filter: &DeviceFilter,
        page: PageRequest,
    ) -> Result<Vec<(i64, DeviceRecord)>>;

    /// Adds or replaces a reader.
    fn put_reader(&mut self, reader: &Reader) -> Result<()>;
    fn reader(&mut self, id: &str) -> Result<Reader>;
    /// Readers in the order they were first added, with their paging keys.
    fn readers(&mut self, page: PageRequest) -> Result<Vec<(i64, Reader)>>;

    fn transit(&mut self, id: &str) -> Result<StoredTransit>;
    /// Transits in declaration order, with their paging keys.
    fn transits(
        &mut self,
        filter: &TransitFilter,
        page: PageRequest,
    ) -> Result<Vec<(i64, StoredTransit)>>;
    /// How many transits are in each state (states with none are left out), in lifecycle
    /// order.
    fn transit_counts(&mut self) -> Result<Vec<(TransitState, u64)>>;
    /// A device's observations in a time range, in time order.
    fn observations(
        &mut self,
        device: &str,
        range: TimeRange,
        limit: u32,
    ) -> Result<Vec<Observation>>;
    /// Copies up to `limit` observations not yet in the per-device index into it, in one
    /// transaction, and says how many. The writer calls it between commits: reads are complete
    /// whatever it has copied (they read the rest from the log), only faster for what it has.
    fn index_observations(&mut self, limit: u32) -> Result<u64>;
    /// The latest observation time in the log (for restart).
    fn last_observation_time(&mut self) -> Result<Option<Timestamp>>;
    /// One bounded step of retention: looks at the observations with ids in `(after, after +
    /// span]`, deletes those older than `before`, and says how many it deleted and the id the
    /// next step starts after (`None` once the whole log was looked at). Stepping through ids,
    /// each step costs the same however many old rows are kept, and no transaction holds the
    /// log for long.
    ///
    /// Observations of a device with a transit not yet closed are kept whatever their age:
    /// they are part of the input log a restart replays to rebuild that transit's state. Once
    /// every transit of the device is closed, its reports only ever get refused, so replaying
    /// without them rebuilds the same state (`ingest/tests/restart.rs` checks this). The
    /// newest row is kept too: SQLite gives a new row the highest id plus one, and an id used
    /// again at or below the per-device index's mark would be lost to reads.
    fn purge_observations(
        &mut self,
        before: Timestamp,
        after: i64,
        span: u32,
    ) -> Result<(u64, Option<i64>)>;

    /// One bounded step of the personal-data retention: erases the driver's name and contact
    /// ([`retention::ERASED`]) of up to `limit` transits closed before `closed_before`, in
    /// their rows and their `declare` inputs, in one transaction, and returns the ids of the
    /// transits erased (fewer than `limit`: none is left). Erased log rows are recorded in
    /// `retention_log`. Events, alarms and the audit chain name no driver.
    fn erase_personal_data(
        &mut self,
        closed_before: Timestamp,
        at: Timestamp,
        limit: u32,
    ) -> Result<Vec<String>>;
    /// One bounded step of the attachment retention: deletes up to `limit` files attached to
    /// alarms closed before `closed_before` and says how many (fewer than `limit`: none is
    /// left). Deleted rows are recorded in `retention_log`.
    fn purge_attachments(&mut self, closed_before: Timestamp, limit: u32) -> Result<u64>;

    /// Records a release-or-inspect decision; a transit already decided is a conflict. The
    /// record's `id` and `inspection` are ignored.
    fn put_decision(&mut self, decision: &DecisionRecord) -> Result<DecisionRecord>;
    fn decision(&mut self, transit: &str) -> Result<DecisionRecord>;
    /// Records what the inspection of a transit decided `inspect` found; a transit not decided
    /// so, or whose result is recorded already, is a conflict.
    fn record_inspection(
        &mut self,
        transit: &str,
        result: &InspectionResult,
    ) -> Result<DecisionRecord>;
    /// Decisions taken in a time range, and what their inspections found.
    fn decision_stats(&mut self, range: TimeRange) -> Result<risk::DecisionStats>;
    /// The records the risk score weighs, over transits declared since `since` other than
    /// `except`: the carrier's (transits whose declaration names it) and the route's (same
    /// departure and destination); a transit counts as violated when one of its alarms was
    /// resolved as a confirmed violation.
    fn risk_records(
        &mut self,
        carrier: Option<&str>,
        route: Option<(&str, &str)>,
        since: Timestamp,
        except: &str,
    ) -> Result<(Option<risk::Record>, Option<risk::Record>)>;

    /// Quick mode's arrival gates: how many unseals they authorised (`unseal_authorized` events
    /// with a reader) and how many transits they held for an officer (`gate_hold`).
    fn gate_outcomes(&mut self) -> Result<(u64, u64)>;
    /// A device's state changes, oldest first, at most `limit`.
    fn device_history(&mut self, device: &str, limit: u32) -> Result<Vec<DeviceStateChange>>;
    /// How many devices entered each state in a time range (states none entered are left out).
    fn device_state_entries(&mut self, range: TimeRange) -> Result<Vec<(String, u64)>>;

    /// Transits leaving and reaching each zone per UTC day since `since`: departures counted
    /// on the day a transit was declared from its departure zone, arrivals on the day of its
    /// `arrived` event at its destination. The device pool's history (docs/pool.md).
    fn zone_flows(&mut self, since: Timestamp) -> Result<Vec<ZoneFlow>>;

    /// The transit's track: its device's observations from the declaration until the transit
    /// was closed (to now while it is not), within `range`, in time order.
    fn transit_track(
        &mut self,
        transit: &str,
        range: TimeRange,
        limit: u32,
    ) -> Result<Vec<Observation>> {
        let stored = self.transit(transit)?;
        let closed_at = (stored.state == TransitState::Closed)
            // The report of the closing instant itself belongs to the transit.
            .then(|| Timestamp::from_unix_ms(stored.updated_at.unix_ms().saturating_add(1)));
        let life = TimeRange {
            from: Some(stored.declared_at),
            to: closed_at,
        };
        let window = life.intersect(range);
        if window.is_empty() {
            return Ok(Vec::new());
        }
        self.observations(stored.transit.device.as_str(), window, limit)
    }

    /// A transit's events in a time range, in time order, with their ids; `page.after` is the
    /// id of the last event of the previous page.
    fn events(
        &mut self,
        transit: &str,
        range: TimeRange,
        page: PageRequest,
    ) -> Result<Vec<(i64, Event)>>;
    fn alarm(&mut self, id: i64) -> Result<AlarmRecord>;
    fn alarms(&mut self, filter: &AlarmFilter, page: PageRequest) -> Result<Vec<AlarmRecord>>;
    /// Alarms raised in a time range, counted per UTC day, kind and grade, in that order.
    fn alarm_counts(&mut self, range: TimeRange) -> Result<Vec<AlarmCount>>;
    /// Takes a handling step (checked against the lifecycle) and records who and when, in the
    /// alarm's history and, in the same transaction, in the audit chain (`alarm.<step>`).
    fn handle_alarm(
        &mut self,
        id: i64,
        step: AlarmStep,
        actor: &str,
        at: Timestamp,
        note: Option<&str>,
    ) -> Result<AlarmRecord>;

    /// Records a new API token with the hash of its secret; an id already used is a conflict.
    fn put_token(&mut self, token: &ApiToken, secret_hash: &str) -> Result<()>;
    /// A token and the hash of its secret.
    fn token(&mut self, id: &str) -> Result<(ApiToken, String)>;
    /// Every token, newest first.
    fn tokens(&mut self) -> Result<Vec<ApiToken>>;
    /// Revokes a token from `at` on (revoking twice keeps the first time).
    fn revoke_token(&mut self, id: &str, at: Timestamp) -> Result<ApiToken>;

    /// Records the hash of the JT/T 808 auth code a device was given when it registered,
    /// replacing any earlier one.
    fn put_device_auth(&mut self, device: &str, code_hash: &str, at: Timestamp) -> Result<()>;
    /// The hash of a device's JT/T 808 auth code; not found when it never registered.
    fn device_auth(&mut self, device: &str) -> Result<String>;
    /// Keeps a line a device sent; `entry.id` is ignored; the stored entry is returned.
    fn add_device_log(&mut self, entry: &DeviceLogEntry) -> Result<DeviceLogEntry>;
    /// A device's log lines, oldest first, `page.after` being the id of the last line of the
    /// previous page.
    fn device_log(&mut self, device: &str, page: PageRequest) -> Result<Vec<DeviceLogEntry>>;

    /// Provisions a device's native-protocol public keys (hex), replacing any earlier set and
    /// clearing its revocation (rotation); the stored record is returned.
    fn put_device_keys(
        &mut self,
        device: &str,
        signing_public: &str,
        agreement_public: &str,
        at: Timestamp,
    ) -> Result<DeviceKeysRecord>;
    /// A device's native-protocol keys, revoked or not; not found when none were provisioned.
    fn device_keys(&mut self, device: &str) -> Result<DeviceKeysRecord>;
    /// Revokes a device's keys from `at` on (revoking twice keeps the first time); not found
    /// when none were provisioned.
    fn revoke_device_keys(&mut self, device: &str, at: Timestamp) -> Result<DeviceKeysRecord>;
    /// Every device's native-protocol keys, revoked or not, by device id.
    fn list_device_keys(&mut self) -> Result<Vec<DeviceKeysRecord>>;

    /// How many rows each of sealwatch's tables holds, by table name in name order: what a
    /// backup manifest records and a restore checks.
    fn table_counts(&mut self) -> Result<Vec<(String, i64)>>;

    /// Provisions a reader's Ed25519 public key (hex), replacing any earlier one and clearing
    /// its revocation (rotation); the stored record is returned.
    fn put_reader_key(
        &mut self,
        reader: &str,
        public_key: &str,
        at: Timestamp,
    ) -> Result<ReaderKeyRecord>;
    /// A reader's key, revoked or not; not found when none was provisioned.
    fn reader_key(&mut self, reader: &str) -> Result<ReaderKeyRecord>;
    /// Revokes a reader's key from `at` on (revoking twice keeps the first time); not found
    /// when none was provisioned.
    fn revoke_reader_key(&mut self, reader: &str, at: Timestamp) -> Result<ReaderKeyRecord>;
    /// Keeps a signed post (`record.id` is ignored). `None` when the reader's post with that
    /// digest is already kept (a replay), else the stored record.
    fn add_signed_read(&mut self, record: &SignedReadRecord) -> Result<Option<SignedReadRecord>>;
    /// The reader's kept post with that digest; not found when there is none.
    fn signed_read(&mut self, reader: &str, digest: &str) -> Result<SignedReadRecord>;
    /// A reader's kept posts, oldest first, `page.after` being the id of the last one of the
    /// previous page.
    fn signed_reads(&mut self, reader: &str, page: PageRequest) -> Result<Vec<SignedReadRecord>>;

    /// Pairs `device` to `container` from `at` on; a conflict when the device is embedded in
    /// a container, is paired now, or was paired after `at` (windows never overlap). The
    /// stored pairing is returned.
    fn pair_container(
        &mut self,
        container: &str,
        device: &str,
        kind: PairingKind,
        at: Timestamp,
    ) -> Result<ContainerPairing> {
        let history = self.device_pairings(device)?;
        check_pairing(&history, device, at)?;
        self.insert_container_pairing(container, device, kind, at)
    }
    /// Ends the open pairing of an affixed `device` to `container` at `at`; not found when
    /// there is none, a conflict for an embedded device or a time before the pairing.
    fn unpair_container(
        &mut self,
        container: &str,
        device: &str,
        at: Timestamp,
    ) -> Result<ContainerPairing> {
        let open = self
            .device_pairings(device)?
            .into_iter()
            .find(|p| p.container == container && p.unpaired_at.is_none())
            .ok_or_else(|| Error::NotFound {
                what: "open pairing of device",
                id: format!("{device} to container {container}"),
            })?;
        if open.kind == PairingKind::Embedded {
            return Err(Error::Conflict(format!(
                "device: {device} is embedded in container {container}; embedded devices are bound for life"
            )));
        }
        if at < open.paired_at {
            return Err(Error::Conflict(format!(
                "unpaired_at: {at} is before the pairing began ({})",
                open.paired_at
            )));
        }
        self.end_container_pairing(open.id, at)
    }
    /// Inserts a pairing as it is, unchecked: use [`Store::pair_container`].
    fn insert_container_pairing(
        &mut self,
        container: &str,
        device: &str,
        kind: PairingKind,
        at: Timestamp,
    ) -> Result<ContainerPairing>;
    /// Sets a pairing's end, unchecked: use [`Store::unpair_container`].
    fn end_container_pairing(&mut self, id: i64, at: Timestamp) -> Result<ContainerPairing>;
    /// Every pairing of a container, oldest first.
    fn container_pairings(&mut self, container: &str) -> Result<Vec<ContainerPairing>>;
    /// Every pairing of a device, oldest first.
    fn device_pairings(&mut self, device: &str) -> Result<Vec<ContainerPairing>>;
    /// The pairings of a container in force at `t` (oldest first): who reported for it then.
    fn container_pairings_at(
        &mut self,
        container: &str,
        t: Timestamp,
    ) -> Result<Vec<ContainerPairing>>;

    /// Queues a remote command: `command.id`, `state`, `sent_at`, `result_at` and `result`
    /// are ignored (it is `queued`); the stored command is returned.
    fn queue_command(&mut self, command: &DeviceCommand) -> Result<DeviceCommand>;
    /// One command; not found when there is no such id.
    fn command(&mut self, id: i64) -> Result<DeviceCommand>;
    /// A device's queued commands, oldest first.
    fn pending_commands(&mut self, device: &str) -> Result<Vec<DeviceCommand>>;
    /// A device's commands that have no answer yet (queued or sent), oldest first: what a
    /// gateway whose protocol lets a device recognise a resent command (the native protocol)
    /// sends again on a new connection.
    fn unanswered_commands(&mut self, device: &str) -> Result<Vec<DeviceCommand>>;
    /// A queued command has been sent at `at`; a conflict when it is not queued.
    fn mark_sent(&mut self, id: i64, at: Timestamp) -> Result<DeviceCommand>;
    /// The device's answer to a command (or the gateway's refusal to send it): `state` is
    /// `done`, `failed` or `refused`, `text` appended to the result. A conflict when the
    /// command's state does not allow it (a queued command is only refused; a refused one
    /// takes nothing more).
    fn record_result(
        &mut self,
        id: i64,
        state: CommandState,
        at: Timestamp,
        text: Option<&str>,
    ) -> Result<DeviceCommand>;
    /// A device's or a transit's commands, oldest first, `page.after` being the id of the last
    /// command of the previous page.
    fn commands(&mut self, of: CommandsOf<'_>, page: PageRequest) -> Result<Vec<DeviceCommand>>;

    /// Up to `limit` items of the live feed after `after`, in order. Commits and handling steps
    /// add to it in the same transaction as what they record.
    fn feed_after(&mut self, after: i64, limit: u32) -> Result<Vec<FeedItem>>;
    /// The id of the feed's last item (0 when empty).
    fn last_feed_id(&mut self) -> Result<i64>;

    /// Appends records to the audit chain, in order, in one transaction: each gets the next
    /// `seq` and is hashed onto the entry before it. The stored entries are returned. Commits
    /// ([`Commit::audit`]) and handling steps append their own in their transaction.
    fn append_audit(&mut self, records: &[AuditRecord]) -> Result<Vec<AuditEntry>>;
    /// Up to `limit` audit entries after `seq`, in `seq` order, exactly as stored.
    fn audit_entries(&mut self, after: i64, limit: u32) -> Result<Vec<AuditEntry>>;
    /// The audit entry with the highest `seq`, if any.
    fn audit_head(&mut self) -> Result<Option<AuditEntry>>;
    /// Keeps a signed checkpoint; one already kept for its `seq` is left as it is.
    fn add_audit_checkpoint(&mut self, checkpoint: &AuditCheckpoint) -> Result<()>;
    /// Every checkpoint kept, in `seq` order.
    fn audit_checkpoints(&mut self) -> Result<Vec<AuditCheckpoint>>;
    /// The checkpoint with the highest `seq`, if any (without reading them all).
    fn last_audit_checkpoint(&mut self) -> Result<Option<AuditCheckpoint>>;

    /// Attaches a file to an alarm not yet closed, recorded in its handling history (step
    /// `attach`) and on the feed. `meta.id` is ignored; the stored attachment is returned.
    fn add_attachment(&mut self, meta: &Attachment, bytes: &[u8]) -> Result<Attachment>;
    /// An alarm's attachments, oldest first.
    fn attachments(&mut self, alarm: i64) -> Result<Vec<Attachment>>;
    /// One attachment of an alarm, with its bytes.
    fn attachment(&mut self, alarm: i64, id: i64) -> Result<(Attachment, Vec<u8>)>;

    // Users and sessions (migration 013; docs/security.md, "Authentication").

    /// Adds a user (its `id` is ignored) and returns it as stored; a username already taken,
    /// whatever its case, is a conflict.
    fn create_user(&mut self, user: &User) -> Result<User>;
    fn user(&mut self, id: i64) -> Result<User>;
    /// The user of that username, whatever its case.
    fn user_by_name(&mut self, username: &str) -> Result<User>;
    /// Every user, by id.
    fn users(&mut self) -> Result<Vec<User>>;
    /// Sets a new password hash; failed sign-ins and the lockout are cleared with it.
    fn set_user_password(&mut self, id: i64, password_hash: &str) -> Result<User>;
    /// Enrols (or with `None` removes) the user's TOTP secret.
    fn set_user_totp(&mut self, id: i64, secret: Option<&str>) -> Result<User>;
    /// Takes the TOTP code of time step `step` for the user: true only if no code of this or
    /// a later step was taken before, so a code works once even when two sign-ins race.
    fn take_totp_step(&mut self, id: i64, step: i64) -> Result<bool>;
    /// Records the sign-in failure count and lockout after an attempt.
    fn set_user_lockout(
        &mut self,
        id: i64,
        failed_logins: u32,
        locked_until: Option<Timestamp>,
    ) -> Result<User>;
    /// Disables the user from `at` (disabling twice keeps the first time) and revokes every
    /// session of theirs.
    fn disable_user(&mut self, id: i64, at: Timestamp) -> Result<User>;
    /// Records a new session; an id already used is a conflict.
    fn put_session(&mut self, session: &Session) -> Result<()>;
    /// The session whose id hashes to `id_hash`.
    fn session(&mut self, id_hash: &str) -> Result<Session>;
    /// Marks the session used at `at` (the idle timeout counts from the last use).
    fn touch_session(&mut self, id_hash: &str, at: Timestamp) -> Result<()>;
    /// Ends a session from `at` (revoking twice keeps the first time).
    fn revoke_session(&mut self, id_hash: &str, at: Timestamp) -> Result<()>;
    /// Ends every session of a user from `at` on (a second factor just enrolled: sessions
    /// opened with the password alone must not gain what it guards).
    fn revoke_user_sessions(&mut self, user_id: i64, at: Timestamp) -> Result<()>;
}

/// The audit record of a handling step.
fn step_audit(id: i64, transit: &str, t: &Transition, actor: &str, at: Timestamp) -> AuditRecord {
    AuditRecord::new(
        at.unix_ms(),
        actor,
        format!("alarm.{}", t.step_text),
        format!("alarm:{id}"),
        &serde_json::json!({ "transit": transit, "state": t.next.as_str(), "outcome": t.step_outcome }),
    )
}

/// The audit record of an attachment: what was attached, by its digest (the bytes stay in
/// `alarm_attachments`).
fn attach_audit(meta: &Attachment, transit: &str, size_bytes: usize) -> AuditRecord {
    AuditRecord::new(
        meta.at.unix_ms(),
        meta.actor.as_str(),
        "alarm.attach",
        format!("alarm:{}", meta.alarm),
        &serde_json::json!({
            "transit": transit,
            "name": meta.name,
            "content_type": meta.content_type,
            "size_bytes": size_bytes,
            "sha256": meta.sha256,
        }),
    )
}

/// The columns an audit entry is read from, in [`audit_entry`]'s order.
pub(crate) const AUDIT_COLUMNS: &str = "seq, at, actor, action, subject, detail, prev_hash, hash";

/// An `audit_log` row as both backends read it.
pub(crate) type AuditRow = (i64, i64, String, String, String, String, String, String);

pub(crate) fn audit_entry(r: AuditRow) -> AuditEntry {
    AuditEntry {
        seq: r.0,
        at_ms: r.1,
        actor: r.2,
        action: r.3,
        subject: r.4,
        detail: r.5,
        prev_hash: r.6,
        hash: r.7,
    }
}

fn token_from_row(
    id: String,
    role: &str,
    label: String,
    times: (i64, Option<i64>, Option<i64>),
    organisation: Option<String>,
) -> Result<ApiToken> {
    Ok(ApiToken {
        id,
        role: role.parse().map_err(Error::Conflict)?,
        label,
        organisation,
        created_at: Timestamp::from_unix_ms(times.0),
        expires_at: times.1.map(Timestamp::from_unix_ms),
        revoked_at: times.2.map(Timestamp::from_unix_ms),
    })
}

/// What a handling step changes and records, whichever backend keeps it.
struct Transition {
    next: AlarmState,
    /// The outcome column after the step.
    next_outcome: Option<String>,
    /// The history row: the step's name and, for `resolve`, its outcome.
    step_text: &'static str,
    step_outcome: Option<String>,
}

/// Checks a step against the alarm's stored state (the lifecycle in `model`).
fn transition(state: &str, outcome: Option<&str>, step: AlarmStep) -> Result<Transition> {
    let next = parse_state(state, outcome)?.apply(step)?;
    let (step_text, step_outcome) = step_name(step);
    let next_outcome = match next {
        AlarmState::Resolved(o) | AlarmState::Closed(o) => Some(outcome_name(o)),
        _ => None,
    };
    Ok(Transition {
        next,
        next_outcome,
        step_text,
        step_outcome: step_outcome.map(outcome_name),
    })
}

fn step_name(step: AlarmStep) -> (&'static str, Option<Outcome>) {
    match step {
        AlarmStep::Acknowledge => ("acknowledge", None),
        AlarmStep::Dispatch => ("dispatch", None),
        AlarmStep::Report => ("report", None),
        AlarmStep::Resolve(o) => ("resolve", Some(o)),
        AlarmStep::Close => ("close", None),
    }
}

fn outcome_name(o: Outcome) -> String {
    serde_json::to_value(o)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn parse_outcome(s: &str) -> Option<Outcome> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

fn parse_state(state: &str, outcome: Option<&str>) -> Result<AlarmState> {
    let outcome = outcome.and_then(parse_outcome);
    Ok(match (state, outcome) {
        ("open", _) => AlarmState::Open,
        ("acknowledged", _) => AlarmState::Acknowledged,
        ("dispatched", _) => AlarmState::Dispatched,
        ("resolved", Some(o)) => AlarmState::Resolved(o),
        ("closed", Some(o)) => AlarmState::Closed(o),
        _ => {
            return Err(Error::Conflict(format!(
                "stored alarm state {state:?} is not valid"
            )));
        }
    })
}

/// What one commit's observations say about one device: the latest report time, and the
/// latest battery level and position fix with their times (unix ms).
#[derive(Debug)]
struct DeviceReport<'a> {
    device: &'a str,
    last_report_at: i64,
    battery: Option<(i64, f64)>,
    position: Option<(i64, f64, f64)>,
}

/// Folds a commit's observations into one report per device, so that a commit of thousands of
/// observations updates each device once. The latest observation wins; of two with the same
/// time, the later in the commit. Ordered by device, so both backends update in one order.
fn device_reports(inputs: &[(i64, LoggedInput)]) -> Vec<DeviceReport<'_>> {
    let mut by_device: BTreeMap<&str, DeviceReport<'_>> = BTreeMap::new();
    for (_, input) in inputs {
        let LoggedInput::Observation { observation: o } = input else {
            continue;
        };
        let t = o.t.unix_ms();
        let r = by_device
            .entry(o.device.as_str())
            .or_insert_with(|| DeviceReport {
                device: o.device.as_str(),
                last_report_at: t,
                battery: None,
                position: None,
            });
        r.last_report_at = r.last_report_at.max(t);
        if let Some(pct) = o.battery_pct
            && r.battery.is_none_or(|(at, _)| t >= at)
        {
            r.battery = Some((t, pct));
        }
        if let Some(p) = o.reading().fix_position()
            && r.position.is_none_or(|(at, _, _)| t >= at)
        {
            r.position = Some((t, p.lat, p.lon));
        }
    }
    by_device.into_values().collect()
}

/// A `devices` row as both backends read it.
struct DeviceRow {
    doc: String,
    registered_at: i64,
    last_report_at: Option<i64>,
    battery_pct: Option<f64>,
    lat: Option<f64>,
    lon: Option<f64>,
    position_at: Option<i64>,
}

impl DeviceRow {
    /// The columns `DeviceRow` reads, first in a row, from [`DeviceRow::TABLES`].
    const COLUMNS: &'static str =
        "d.doc, d.registered_at, r.last_report_at, r.battery_pct, r.lat, r.lon, r.position_at";
    /// `d`, the registration, and `r`, what the reports said.
    const TABLES: &'static str = "devices AS d LEFT JOIN device_telemetry AS r ON r.id = d.id";

    fn record(self) -> Result<DeviceRecord> {
        let mut device: Device = serde_json::from_str(&self.doc)?;
        // The columns hold the latest reports; the document holds the registration.
        device.last_report_at = self.last_report_at.map(Timestamp::from_unix_ms);
        device.battery_pct = self.battery_pct;
        let last_position = match (self.position_at, self.lat, self.lon) {
            (Some(t), Some(lat), Some(lon)) => Some(Position {
                t: Timestamp::from_unix_ms(t),
                lat,
                lon,
            }),
            _ => None,
        };
        Ok(DeviceRecord {
            device,
            last_position,
            registered_at: Timestamp::from_unix_ms(self.registered_at),
        })
    }
}

const DAY_MS: i64 = 86_400_000;

/// A decision's row, as both backends read it: id, transit, at, actor, proposed, score,
/// decided, overridden, reason, proposal JSON, inspection found, note and time.
pub(crate) type DecisionRow = (
    i64,
    String,
    i64,
    String,
    String,
    i64,
    String,
    bool,
    Option<String>,
    String,
    Option<bool>,
    Option<String>,
    Option<i64>,
);

pub(crate) fn decision_from_row(row: DecisionRow) -> Result<DecisionRecord> {
    let (
        id,
        transit,
        at,
        actor,
        proposed,
        score,
        decided,
        overridden,
        reason,
        proposal,
        found,
        note,
        inspected_at,
    ) = row;
    let decision = |text: String| -> Result<risk::Decision> {
        Ok(serde_json::from_value(serde_json::Value::String(text))?)
    };
    Ok(DecisionRecord {
        id,
        transit,
        at: Timestamp::from_unix_ms(at),
        actor,
        proposed: decision(proposed)?,
        score: u32::try_from(score).unwrap_or(0),
        decided: decision(decided)?,
        overridden,
        reason,
        proposal: serde_json::from_str(&proposal)?,
        inspection: match (found, inspected_at) {
            (Some(found), Some(at)) => Some(InspectionResult {
                found,
                note,
                at: Timestamp::from_unix_ms(at),
            }),
            _ => None,
        },
    })
}

/// The columns of a decision row, in [`DecisionRow`] order.
pub(crate) const DECISION_COLUMNS: &str = "id, transit, at, actor, proposed, score, decided, \
     overridden, reason, proposal, inspection_found, inspection_note, inspection_at";

/// Alarm counts from `(day number, kind, grade, count)` rows, the day written `YYYY-MM-DD` and
/// the rows in day, kind (declaration order of `AlarmKind`) and grade order.
fn alarm_counts(
    rows: impl IntoIterator<Item = (i64, String, i64, i64)>,
) -> Result<Vec<AlarmCount>> {
    let mut counts = rows
        .into_iter()
        .map(|(day, kind, grade, count)| {
            let midnight = Timestamp::from_unix_ms(day.saturating_mul(DAY_MS)).to_string();
            Ok(AlarmCount {
                day: midnight
                    .split_once('T')
                    .map_or(midnight.as_str(), |(d, _)| d)
                    .to_owned(),
                kind: serde_json::from_value(serde_json::Value::String(kind))?,
                grade: u8::try_from(grade).map_err(|_| {
                    Error::Conflict(format!("stored alarm grade {grade} is not valid"))
                })?,
                count: u64::try_from(count).unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    counts.sort_by(|a, b| (&a.day, a.kind, a.grade).cmp(&(&b.day, b.kind, b.grade)));
    Ok(counts)
}

/// Transit counts from `(state, count)` rows, in lifecycle order.
fn transit_counts(
    rows: impl IntoIterator<Item = (String, i64)>,
) -> Result<Vec<(TransitState, u64)>> {
    let mut counts = rows
        .into_iter()
        .map(|(state, count)| {
            Ok((
                parse_transit_state(&state)?,
                u64::try_from(count).unwrap_or_default(),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    counts.sort();
    Ok(counts)
}

/// The day number of `t` in SQL, rounding down before the epoch too (division truncates
/// towards zero in both backends). The same text for both, so they count the same days.
const SQL_DAY: &str = "(CASE WHEN t >= 0 THEN t / 86400000 ELSE (t - 86399999) / 86400000 END)";

/// The name serde gives a unit variant (`handheld`, ...).
fn wire_name<T: Serialize>(v: &T) -> Result<String> {
    match serde_json::to_value(v)? {
        serde_json::Value::String(s) => Ok(s),
        other => Err(Error::Conflict(format!("{other} has no name"))),
    }
}

fn transit_state_name(s: TransitState) -> &'static str {
    s.as_str()
}

fn parse_transit_state(s: &str) -> Result<TransitState> {
    Ok(serde_json::from_value(serde_json::Value::String(
        s.to_owned(),
    ))?)
}
