//! The embedded default: one SQLite file in WAL mode.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use model::{
    AlarmStep, Device, Event, Observation, Reader, Station, Timestamp, TransitState, Zone,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::pairings;
use crate::users::{
    SESSION_COLUMNS, Session, SessionRow, USER_COLUMNS, User, UserRow, session_from_row,
    user_from_row, username_key,
};
use crate::{
    AUDIT_COLUMNS, AuditCheckpoint, AuditEntry, AuditRecord, AuditRow, attach_audit, audit_entry,
    step_audit,
};
use crate::{
    AlarmCount, AlarmFilter, AlarmRecord, ApiToken, Attachment, COMMAND_COLUMNS, CommandRow,
    CommandState, CommandsOf, Commit, ContainerPairing, DeviceCommand, DeviceFilter,
    DeviceKeysRecord, DeviceLogEntry, DeviceRecord, DeviceRow, Error, FeedItem, HandlingStep,
    LoggedInput, PAIRING_COLUMNS, PageRequest, PairingKind, ReaderKeyRecord, Result, SQL_DAY,
    SignedReadRecord, Store, StoredTransit, TELEMETRY_EVERY, Telemetry, TimeRange, TransitFilter,
    alarm_counts, attach_feed, attach_note, feed_item, output_feed, pairing_from_row,
    parse_outcome, parse_state, parse_transit_state, step_feed, token_from_row, transit_counts,
    transit_state_name, transition, wire_name, with_result,
};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/001_init.sql")),
    (2, include_str!("../migrations/sqlite/002_registry.sql")),
    (3, include_str!("../migrations/sqlite/003_tokens.sql")),
    (4, include_str!("../migrations/sqlite/004_feed.sql")),
    (5, include_str!("../migrations/sqlite/005_attachments.sql")),
    (6, include_str!("../migrations/sqlite/006_device_index.sql")),
    (
        7,
        include_str!("../migrations/sqlite/007_device_gateway.sql"),
    ),
    (
        8,
        include_str!("../migrations/sqlite/008_device_commands.sql"),
    ),
    (9, include_str!("../migrations/sqlite/009_device_keys.sql")),
    (
        10,
        include_str!("../migrations/sqlite/010_container_pairings.sql"),
    ),
    (11, include_str!("../migrations/sqlite/011_reader_keys.sql")),
    (12, include_str!("../migrations/sqlite/012_audit.sql")),
    (13, include_str!("../migrations/sqlite/013_users.sql")),
    (14, include_str!("../migrations/sqlite/014_retention.sql")),
    (15, include_str!("../migrations/sqlite/015_decisions.sql")),
    (
        16,
        include_str!("../migrations/sqlite/016_device_states.sql"),
    ),
    (
        17,
        include_str!("../migrations/sqlite/017_transit_devices.sql"),
    ),
];

/// A store in one SQLite file (or in memory, for tests).
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    /// Copies the WAL back into the database file on its own thread (file stores only).
    checkpointer: Option<Checkpointer>,
    /// Devices' latest reports not yet written to `device_telemetry` (see `TELEMETRY_EVERY`).
    telemetry: HashMap<String, Telemetry>,
    telemetry_since: Instant,
    /// Data-encryption keys of the sealed transit fields (`crate::sealed`).
    keys: crate::Keys,
}

/// Checkpoints the WAL on a thread of its own, with its own connection.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses its threshold: the
/// writer copies pages back and waits on an fsync, and that commit's sources wait with it
/// (about a tenth of the writer's time under load at the default 1,000 pages). A passive
/// checkpoint here, ten times a second, never blocks the writer and does that copying beside
/// it; the automatic one, raised to 10,000 pages, is the backstop that completes a checkpoint
/// in the writer's own time, so that the WAL starts over instead of growing under sustained
/// load.
#[derive(Debug)]
struct Checkpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the checkpointer runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(CHECKPOINT_EVERY);
                    // PASSIVE: copies what it can without waiting for anyone. A failure here
                    // only leaves the WAL longer; the next round tries again.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .map_err(|e| Error::Conflict(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes devices' latest reports; devices not registered match no row.
/// Chains `records` onto the audit log inside `tx`: the caller's transaction, so that they are
/// durable exactly when what they record is. The writer is the only writer; a second one (the
/// CLI on the same file) waits for SQLite's lock, and the `seq` key refuses a fork.
fn append_audit_tx(
    tx: &rusqlite::Transaction<'_>,
    records: &[AuditRecord],
) -> Result<Vec<AuditEntry>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let head: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let entries = AuditEntry::chain(
        head.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
        records.iter().cloned(),
    );
    let mut insert = tx.prepare_cached(
        "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for e in &entries {
        insert.execute(params![
            e.seq,
            e.at_ms,
            e.actor,
            e.action,
            e.subject,
            e.detail,
            e.prev_hash,
            e.hash
        ])?;
    }
    Ok(entries)
}

fn checkpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditCheckpoint> {
    Ok(AuditCheckpoint {
        seq: r.get(0)?,
        hash: r.get(1)?,
        at_ms: r.get(2)?,
        public_key: r.get(3)?,
        signature: r.get(4)?,
    })
}

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn write_telemetry<'a>(
    tx: &rusqlite::Transaction<'_>,
    reports: impl IntoIterator<Item = (&'a str, Telemetry)>,
) -> Result<()> {
    let mut dev = tx.prepare_cached(
        "UPDATE device_telemetry SET
           last_report_at = CASE WHEN last_report_at IS NULL OR ?2 > last_report_at THEN ?2 ELSE last_report_at END,
           battery_pct = CASE WHEN ?3 IS NOT NULL AND (battery_at IS NULL OR ?3 >= battery_at) THEN ?4 ELSE battery_pct END,
           battery_at = CASE WHEN ?3 IS NOT NULL AND (battery_at IS NULL OR ?3 >= battery_at) THEN ?3 ELSE battery_at END,
           lat = CASE WHEN ?5 IS NOT NULL AND (position_at IS NULL OR ?5 >= position_at) THEN ?6 ELSE lat END,
           lon = CASE WHEN ?5 IS NOT NULL AND (position_at IS NULL OR ?5 >= position_at) THEN ?7 ELSE lon END,
           position_at = CASE WHEN ?5 IS NOT NULL AND (position_at IS NULL OR ?5 >= position_at) THEN ?5 ELSE position_at END
         WHERE id = ?1",
    )?;
    for (device, r) in reports {
        dev.execute(params![
            device,
            r.last_report_at,
            r.battery.map(|(t, _)| t),
            r.battery.map(|(_, pct)| pct),
            r.position.map(|(t, _, _)| t),
            r.position.map(|(_, lat, _)| lat),
            r.position.map(|(_, _, lon)| lon),
        ])?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let conn = Connection::open(path)?;
        // WAL: readers do not block the writer. synchronous=FULL: a commit is on disk when it
        // returns, which is what lets ingest acknowledge a device only after its commit.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Statement journals (multi-row statements) in memory, not in temporary files.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // The automatic checkpoint only as a backstop: the checkpointer thread does the
        // copying (see `Checkpointer`); at 40 MB the writer completes it itself.
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
        let mut store = SqliteStore::init(conn)?;
        store.checkpointer = Some(Checkpointer::start(path)?);
        Ok(store)
    }

    /// The document of the row `id` of a registry table (`stations`, `readers`).
    fn doc_by_id<T: serde::de::DeserializeOwned>(
        &mut self,
        table: &'static str,
        what: &'static str,
        id: &str,
    ) -> Result<T> {
        let doc = self
            .conn
            .query_row(
                &format!("SELECT doc FROM {table} WHERE id = ?1"),
                params![id],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .ok_or_else(|| Error::NotFound {
                what,
                id: id.to_owned(),
            })?;
        Ok(serde_json::from_str(&doc)?)
    }

    /// A page of a registry table's documents in registration order, with their places.
    fn docs_page<T: serde::de::DeserializeOwned>(
        &mut self,
        table: &'static str,
        page: PageRequest,
    ) -> Result<Vec<(i64, T)>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT n, doc FROM {table} WHERE n > ?1 ORDER BY n LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![page.after.unwrap_or(0), page.limit], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (n, doc) = row?;
            Ok((n, serde_json::from_str(&doc)?))
        })
        .collect()
    }

    /// Writes the devices' latest reports gathered in memory.
    fn flush_telemetry(&mut self) -> Result<()> {
        if !self.telemetry.is_empty() {
            let tx = self.conn.transaction()?;
            write_telemetry(&tx, self.telemetry.iter().map(|(d, r)| (d.as_str(), *r)))?;
            tx.commit()?;
            self.telemetry.clear();
        }
        self.telemetry_since = Instant::now();
        Ok(())
    }

    /// A private in-memory database.
    /// A consistent copy of the whole database, taken while the service runs, into a new file
    /// at `path` (`VACUUM INTO`: one read transaction, compacted, no WAL to carry along).
    pub fn snapshot_into(&self, path: &Path) -> Result<()> {
        let target = path
            .to_str()
            .ok_or_else(|| Error::Conflict(format!("{}: not a UTF-8 path", path.display())))?;
        self.conn.execute("VACUUM INTO ?1", params![target])?;
        Ok(())
    }

    pub fn open_in_memory() -> Result<SqliteStore> {
        let conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        SqliteStore::init(conn)
    }

    fn init(mut conn: Connection) -> Result<SqliteStore> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )?;
        let current: i64 = conn.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )?;
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?1, strftime('%s','now'))",
                params![version],
            )?;
            tx.commit()?;
        }
        Ok(SqliteStore {
            conn,
            keys: crate::Keys::none(),
            checkpointer: None,
            telemetry: HashMap::new(),
            telemetry_since: Instant::now(),
        })
    }

    fn alarm_history(&self, id: i64) -> Result<Vec<HandlingStep>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, actor, step, outcome, note FROM alarm_history WHERE alarm = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![id], |r| {
            Ok(HandlingStep {
                at: Timestamp::from_unix_ms(r.get(0)?),
                actor: r.get(1)?,
                step: r.get(2)?,
                outcome: r
                    .get::<_, Option<String>>(3)?
                    .as_deref()
                    .and_then(parse_outcome),
                note: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn record(
        &self,
        id: i64,
        doc: &str,
        state: &str,
        outcome: Option<&str>,
    ) -> Result<AlarmRecord> {
        Ok(AlarmRecord {
            id,
            alarm: serde_json::from_str(doc)?,
            state: parse_state(state, outcome)?,
            history: self.alarm_history(id)?,
        })
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Best effort: what is lost here is telemetry only, the reports are in the log.
        let _ = self.flush_telemetry();
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn add_attachment(&mut self, meta: &Attachment, bytes: &[u8]) -> Result<Attachment> {
        let tx = self.conn.transaction()?;
        let row = tx
            .query_row(
                "SELECT state, outcome, transit, kind, grade FROM alarms WHERE id = ?1",
                params![meta.alarm],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let (ft, transit, fkind, doc) = attach_feed(row, meta)?;
        tx.execute(
            "INSERT INTO alarm_attachments (alarm, at, actor, name, content_type, sha256, size_bytes, bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                meta.alarm,
                meta.at.unix_ms(),
                meta.actor,
                meta.name,
                meta.content_type,
                meta.sha256,
                bytes.len() as i64,
                bytes
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO alarm_history (alarm, at, actor, step, outcome, note) VALUES (?1, ?2, ?3, 'attach', NULL, ?4)",
            params![meta.alarm, meta.at.unix_ms(), meta.actor, attach_note(meta)],
        )?;
        append_audit_tx(&tx, &[attach_audit(meta, &transit, bytes.len())])?;
        tx.execute(
            "INSERT INTO feed (t, transit, kind, doc) VALUES (?1, ?2, ?3, ?4)",
            params![ft, transit, fkind, doc],
        )?;
        tx.commit()?;
        Ok(Attachment {
            id,
            size_bytes: bytes.len() as u64,
            ..meta.clone()
        })
    }

    fn attachments(&mut self, alarm: i64) -> Result<Vec<Attachment>> {
        self.alarm(alarm)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, alarm, at, actor, name, content_type, sha256, size_bytes FROM alarm_attachments WHERE alarm = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![alarm], attachment_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn attachment(&mut self, alarm: i64, id: i64) -> Result<(Attachment, Vec<u8>)> {
        let row = self
            .conn
            .query_row(
                "SELECT id, alarm, at, actor, name, content_type, sha256, size_bytes, bytes FROM alarm_attachments WHERE alarm = ?1 AND id = ?2",
                params![alarm, id],
                |r| Ok((attachment_row(r)?, r.get::<_, Vec<u8>>(8)?)),
            )
            .optional()?;
        row.ok_or_else(|| Error::NotFound {
            what: "attachment",
            id: format!("{alarm}/{id}"),
        })
    }

    fn put_device_auth(&mut self, device: &str, code_hash: &str, at: Timestamp) -> Result<()> {
        self.conn.execute(
            "INSERT INTO device_auth (device, code_hash, registered_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (device) DO UPDATE SET code_hash = excluded.code_hash, registered_at = excluded.registered_at",
            params![device, code_hash, at.unix_ms()],
        )?;
        Ok(())
    }

    fn device_auth(&mut self, device: &str) -> Result<String> {
        let hash = self
            .conn
            .query_row(
                "SELECT code_hash FROM device_auth WHERE device = ?1",
                params![device],
                |r| r.get(0),
            )
            .optional()?;
        hash.ok_or_else(|| Error::NotFound {
            what: "device auth code",
            id: device.to_owned(),
        })
    }

    fn put_device_keys(
        &mut self,
        device: &str,
        signing_public: &str,
        agreement_public: &str,
        at: Timestamp,
    ) -> Result<DeviceKeysRecord> {
        self.conn.execute(
            "INSERT INTO device_keys (device, signing_public, agreement_public, created_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4, NULL)
             ON CONFLICT (device) DO UPDATE SET signing_public = excluded.signing_public,
               agreement_public = excluded.agreement_public, created_at = excluded.created_at,
               revoked_at = NULL",
            params![device, signing_public, agreement_public, at.unix_ms()],
        )?;
        self.device_keys(device)
    }

    fn device_keys(&mut self, device: &str) -> Result<DeviceKeysRecord> {
        let row = self
            .conn
            .query_row(
                "SELECT device, signing_public, agreement_public, created_at, revoked_at
                 FROM device_keys WHERE device = ?1",
                params![device],
                |r| {
                    Ok(DeviceKeysRecord {
                        device: r.get(0)?,
                        signing_public: r.get(1)?,
                        agreement_public: r.get(2)?,
                        created_at: Timestamp::from_unix_ms(r.get(3)?),
                        revoked_at: r.get::<_, Option<i64>>(4)?.map(Timestamp::from_unix_ms),
                    })
                },
            )
            .optional()?;
        row.ok_or_else(|| Error::NotFound {
            what: "device keys",
            id: device.to_owned(),
        })
    }

    fn revoke_device_keys(&mut self, device: &str, at: Timestamp) -> Result<DeviceKeysRecord> {
        self.conn.execute(
            "UPDATE device_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE device = ?1",
            params![device, at.unix_ms()],
        )?;
        self.device_keys(device)
    }

    fn list_device_keys(&mut self) -> Result<Vec<DeviceKeysRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT device, signing_public, agreement_public, created_at, revoked_at
             FROM device_keys ORDER BY device",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(DeviceKeysRecord {
                device: r.get(0)?,
                signing_public: r.get(1)?,
                agreement_public: r.get(2)?,
                created_at: Timestamp::from_unix_ms(r.get(3)?),
                revoked_at: r.get::<_, Option<i64>>(4)?.map(Timestamp::from_unix_ms),
            })
        })?;
        rows.map(|r| r.map_err(Error::from)).collect()
    }

    fn insert_container_pairing(
        &mut self,
        container: &str,
        device: &str,
        kind: PairingKind,
        at: Timestamp,
    ) -> Result<ContainerPairing> {
        let id: i64 = self.conn.query_row(
            "INSERT INTO container_pairings (container, device, kind, paired_at, unpaired_at)
             VALUES (?1, ?2, ?3, ?4, NULL) RETURNING id",
            params![container, device, kind.as_str(), at.unix_ms()],
            |r| r.get(0),
        )?;
        self.container_pairing(id)
    }

    fn end_container_pairing(&mut self, id: i64, at: Timestamp) -> Result<ContainerPairing> {
        self.conn.execute(
            "UPDATE container_pairings SET unpaired_at = ?2 WHERE id = ?1",
            params![id, at.unix_ms()],
        )?;
        self.container_pairing(id)
    }

    fn container_pairings(&mut self, container: &str) -> Result<Vec<ContainerPairing>> {
        self.pairings_where("container = ?1", params![container])
    }

    fn device_pairings(&mut self, device: &str) -> Result<Vec<ContainerPairing>> {
        self.pairings_where("device = ?1", params![device])
    }

    fn container_pairings_at(
        &mut self,
        container: &str,
        t: Timestamp,
    ) -> Result<Vec<ContainerPairing>> {
        self.pairings_where(
            "container = ?1 AND paired_at <= ?2 AND (unpaired_at IS NULL OR ?2 < unpaired_at)",
            params![container, t.unix_ms()],
        )
    }

    fn add_device_log(&mut self, entry: &DeviceLogEntry) -> Result<DeviceLogEntry> {
        let id = self.conn.query_row(
            "INSERT INTO device_log (device, at, source, kind, text) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            params![
                entry.device,
                entry.at.unix_ms(),
                entry.source,
                entry.kind,
                entry.text
            ],
            |r| r.get(0),
        )?;
        Ok(DeviceLogEntry {
            id,
            ..entry.clone()
        })
    }

    fn device_log(&mut self, device: &str, page: PageRequest) -> Result<Vec<DeviceLogEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, device, at, source, kind, text FROM device_log
             WHERE device = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![device, page.after.unwrap_or(0), page.limit], |r| {
            Ok(DeviceLogEntry {
                id: r.get(0)?,
                device: r.get(1)?,
                at: Timestamp::from_unix_ms(r.get(2)?),
                source: r.get(3)?,
                kind: r.get(4)?,
                text: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn table_counts(&mut self) -> Result<Vec<(String, i64)>> {
        let names: Vec<String> = {
            let mut stmt = self.conn.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                 ORDER BY name",
            )?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        names
            .into_iter()
            .map(|name| {
                // The name comes from the catalog; quoted all the same.
                let n: i64 = self.conn.query_row(
                    &format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\"")),
                    [],
                    |r| r.get(0),
                )?;
                Ok((name, n))
            })
            .collect()
    }

    fn put_reader_key(
        &mut self,
        reader: &str,
        public_key: &str,
        at: Timestamp,
    ) -> Result<ReaderKeyRecord> {
        self.conn.execute(
            "INSERT INTO reader_keys (reader, public_key, created_at, revoked_at)
             VALUES (?1, ?2, ?3, NULL)
             ON CONFLICT (reader) DO UPDATE SET public_key = excluded.public_key,
               created_at = excluded.created_at, revoked_at = NULL",
            params![reader, public_key, at.unix_ms()],
        )?;
        self.reader_key(reader)
    }

    fn reader_key(&mut self, reader: &str) -> Result<ReaderKeyRecord> {
        let row = self
            .conn
            .query_row(
                "SELECT reader, public_key, created_at, revoked_at FROM reader_keys
                 WHERE reader = ?1",
                params![reader],
                |r| {
                    Ok(ReaderKeyRecord {
                        reader: r.get(0)?,
                        public_key: r.get(1)?,
                        created_at: Timestamp::from_unix_ms(r.get(2)?),
                        revoked_at: r.get::<_, Option<i64>>(3)?.map(Timestamp::from_unix_ms),
                    })
                },
            )
            .optional()?;
        row.ok_or_else(|| Error::NotFound {
            what: "reader key",
            id: reader.to_owned(),
        })
    }

    fn revoke_reader_key(&mut self, reader: &str, at: Timestamp) -> Result<ReaderKeyRecord> {
        self.conn.execute(
            "UPDATE reader_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE reader = ?1",
            params![reader, at.unix_ms()],
        )?;
        self.reader_key(reader)
    }

    fn add_signed_read(&mut self, r: &SignedReadRecord) -> Result<Option<SignedReadRecord>> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "INSERT INTO signed_reads (reader, digest, public_key, signature, body, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (reader, digest) DO NOTHING RETURNING id",
                params![
                    r.reader,
                    r.digest,
                    r.public_key,
                    r.signature,
                    r.body,
                    r.received_at.unix_ms()
                ],
                |row| row.get(0),
            )
            .optional()?;
        Ok(id.map(|id| SignedReadRecord { id, ..r.clone() }))
    }

    fn signed_read(&mut self, reader: &str, digest: &str) -> Result<SignedReadRecord> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, reader, digest, public_key, signature, body, received_at FROM signed_reads
             WHERE reader = ?1 AND digest = ?2",
        )?;
        let row = stmt
            .query_row(params![reader, digest], signed_read_row)
            .optional()?;
        row.ok_or_else(|| Error::NotFound {
            what: "signed read",
            id: format!("{reader}/{digest}"),
        })
    }

    fn signed_reads(&mut self, reader: &str, page: PageRequest) -> Result<Vec<SignedReadRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, reader, digest, public_key, signature, body, received_at FROM signed_reads
             WHERE reader = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![reader, page.after.unwrap_or(0), page.limit],
            signed_read_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn queue_command(&mut self, c: &DeviceCommand) -> Result<DeviceCommand> {
        let id: i64 = self.conn.query_row(
            "INSERT INTO device_commands (device, transit, kind, args, created_at, actor, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued') RETURNING id",
            params![
                c.device,
                c.transit,
                c.kind.as_str(),
                serde_json::to_string(&c.args)?,
                c.created_at.unix_ms(),
                c.actor
            ],
            |r| r.get(0),
        )?;
        self.command(id)
    }

    fn command(&mut self, id: i64) -> Result<DeviceCommand> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {COMMAND_COLUMNS} FROM device_commands WHERE id = ?1"),
                params![id],
                command_row,
            )
            .optional()?;
        row.ok_or_else(|| Error::NotFound {
            what: "command",
            id: id.to_string(),
        })?
        .command()
    }

    fn pending_commands(&mut self, device: &str) -> Result<Vec<DeviceCommand>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COMMAND_COLUMNS} FROM device_commands
             WHERE device = ?1 AND state = 'queued' ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![device], command_row)?;
        rows.map(|r| r?.command()).collect()
    }

    fn unanswered_commands(&mut self, device: &str) -> Result<Vec<DeviceCommand>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COMMAND_COLUMNS} FROM device_commands
             WHERE device = ?1 AND state IN ('queued', 'sent') ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![device], command_row)?;
        rows.map(|r| r?.command()).collect()
    }

    fn mark_sent(&mut self, id: i64, at: Timestamp) -> Result<DeviceCommand> {
        let n = self.conn.execute(
            "UPDATE device_commands SET state = 'sent', sent_at = ?2 WHERE id = ?1 AND state = 'queued'",
            params![id, at.unix_ms()],
        )?;
        let c = self.command(id)?;
        if n == 0 {
            return Err(Error::Conflict(format!(
                "state: command {id} is {}, not queued",
                c.state.as_str()
            )));
        }
        Ok(c)
    }

    fn record_result(
        &mut self,
        id: i64,
        state: CommandState,
        at: Timestamp,
        text: Option<&str>,
    ) -> Result<DeviceCommand> {
        let before = self.command(id)?;
        let from = before.state;
        let after = with_result(before, state, at, text)?;
        let n = self.conn.execute(
            "UPDATE device_commands SET state = ?2, result_at = ?3, result = ?4
             WHERE id = ?1 AND state = ?5",
            params![
                id,
                after.state.as_str(),
                at.unix_ms(),
                after.result,
                from.as_str()
            ],
        )?;
        if n == 0 {
            return Err(Error::Conflict(format!(
                "state: command {id} changed meanwhile"
            )));
        }
        Ok(after)
    }

    fn commands(&mut self, of: CommandsOf<'_>, page: PageRequest) -> Result<Vec<DeviceCommand>> {
        let (column, key) = match of {
            CommandsOf::Device(d) => ("device", d),
            CommandsOf::Transit(t) => ("transit", t),
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COMMAND_COLUMNS} FROM device_commands
             WHERE {column} = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ))?;
        let rows = stmt.query_map(
            params![key, page.after.unwrap_or(0), page.limit],
            command_row,
        )?;
        rows.map(|r| r?.command()).collect()
    }

    fn last_feed_id(&mut self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM feed", [], |r| r.get(0))?)
    }

    fn feed_after(&mut self, after: i64, limit: u32) -> Result<Vec<FeedItem>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, t, transit, kind, doc FROM feed WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (id, t, transit, kind, doc) = row?;
            feed_item(id, t, transit, kind, &doc)
        })
        .collect()
    }

    fn put_token(&mut self, token: &ApiToken, secret_hash: &str) -> Result<()> {
        let n = self.conn.execute(
            "INSERT INTO api_tokens (id, secret_hash, role, label, created_at, expires_at, revoked_at, organisation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
            params![
                token.id,
                secret_hash,
                token.role.as_str(),
                token.label,
                token.created_at.unix_ms(),
                token.expires_at.map(Timestamp::unix_ms),
                token.revoked_at.map(Timestamp::unix_ms),
                token.organisation
            ],
        )?;
        if n == 0 {
            return Err(Error::Conflict(format!("token {} exists", token.id)));
        }
        Ok(())
    }

    fn token(&mut self, id: &str) -> Result<(ApiToken, String)> {
        let row = self
            .conn
            .query_row(
                "SELECT id, role, label, created_at, expires_at, revoked_at, secret_hash, organisation FROM api_tokens WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        (r.get(3)?, r.get(4)?, r.get(5)?),
                        r.get::<_, String>(6)?,
                        r.get::<_, Option<String>>(7)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, role, label, times, hash, organisation)) = row else {
            return Err(Error::NotFound {
                what: "token",
                id: id.to_owned(),
            });
        };
        Ok((token_from_row(id, &role, label, times, organisation)?, hash))
    }

    fn tokens(&mut self) -> Result<Vec<ApiToken>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, role, label, created_at, expires_at, revoked_at, organisation FROM api_tokens ORDER BY created_at DESC, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                (r.get(3)?, r.get(4)?, r.get(5)?),
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        rows.map(|row| {
            let (id, role, label, times, organisation) = row?;
            token_from_row(id, &role, label, times, organisation)
        })
        .collect()
    }

    fn revoke_token(&mut self, id: &str, at: Timestamp) -> Result<ApiToken> {
        self.conn.execute(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
            params![id, at.unix_ms()],
        )?;
        Ok(self.token(id)?.0)
    }

    fn create_user(&mut self, user: &User) -> Result<User> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "INSERT INTO users (username, username_key, role, organisation, password_hash,
                     totp_secret, failed_logins, locked_until, created_at, disabled_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (username_key) DO NOTHING RETURNING id",
                params![
                    user.username,
                    username_key(&user.username),
                    user.role.as_str(),
                    user.organisation,
                    user.password_hash,
                    user.totp_secret,
                    i64::from(user.failed_logins),
                    user.locked_until.map(Timestamp::unix_ms),
                    user.created_at.unix_ms(),
                    user.disabled_at.map(Timestamp::unix_ms),
                ],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else {
            return Err(Error::Conflict(format!(
                "username: {:?} is taken",
                user.username
            )));
        };
        self.user(id)
    }

    fn user(&mut self, id: i64) -> Result<User> {
        self.user_where("id = ?1", &id, || id.to_string())
    }

    fn user_by_name(&mut self, username: &str) -> Result<User> {
        self.user_where("username_key = ?1", &username_key(username), || {
            username.to_owned()
        })
    }

    fn users(&mut self) -> Result<Vec<User>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))?;
        let rows = stmt.query_map([], user_row)?;
        rows.map(|r| user_from_row(r?)).collect()
    }

    fn set_user_password(&mut self, id: i64, password_hash: &str) -> Result<User> {
        self.conn.execute(
            "UPDATE users SET password_hash = ?2, failed_logins = 0, locked_until = NULL WHERE id = ?1",
            params![id, password_hash],
        )?;
        self.user(id)
    }

    fn set_user_totp(&mut self, id: i64, secret: Option<&str>) -> Result<User> {
        self.conn.execute(
            "UPDATE users SET totp_secret = ?2, totp_last_step = NULL WHERE id = ?1",
            params![id, secret],
        )?;
        self.user(id)
    }

    fn take_totp_step(&mut self, id: i64, step: i64) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE users SET totp_last_step = ?2
             WHERE id = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
            params![id, step],
        )?;
        Ok(n == 1)
    }

    fn set_user_lockout(
        &mut self,
        id: i64,
        failed_logins: u32,
        locked_until: Option<Timestamp>,
    ) -> Result<User> {
        self.conn.execute(
            "UPDATE users SET failed_logins = ?2, locked_until = ?3 WHERE id = ?1",
            params![
                id,
                i64::from(failed_logins),
                locked_until.map(Timestamp::unix_ms)
            ],
        )?;
        self.user(id)
    }

    fn disable_user(&mut self, id: i64, at: Timestamp) -> Result<User> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE users SET disabled_at = COALESCE(disabled_at, ?2) WHERE id = ?1",
            params![id, at.unix_ms()],
        )?;
        tx.execute(
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?2) WHERE user_id = ?1",
            params![id, at.unix_ms()],
        )?;
        tx.commit()?;
        self.user(id)
    }

    fn revoke_user_sessions(&mut self, user_id: i64, at: Timestamp) -> Result<()> {
        self.conn.execute(
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?2) WHERE user_id = ?1",
            params![user_id, at.unix_ms()],
        )?;
        Ok(())
    }

    fn put_session(&mut self, session: &Session) -> Result<()> {
        let n = self.conn.execute(
            &format!(
                "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id_hash) DO NOTHING"
            ),
            params![
                session.id_hash,
                session.user_id,
                session.csrf_hash,
                session.created_at.unix_ms(),
                session.last_seen_at.unix_ms(),
                session.expires_at.unix_ms(),
                session.revoked_at.map(Timestamp::unix_ms),
            ],
        )?;
        if n == 0 {
            return Err(Error::Conflict("session: the id is taken".into()));
        }
        Ok(())
    }

    fn session(&mut self, id_hash: &str) -> Result<Session> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = ?1"),
                params![id_hash],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                },
            )
            .optional()?;
        // The hash is not named: it is what stands for the cookie.
        row.map(|r: SessionRow| session_from_row(r))
            .ok_or_else(|| Error::NotFound {
                what: "session",
                id: "(given)".into(),
            })
    }

    fn touch_session(&mut self, id_hash: &str, at: Timestamp) -> Result<()> {
        self.conn.execute(
            "UPDATE sessions SET last_seen_at = MAX(last_seen_at, ?2) WHERE id_hash = ?1",
            params![id_hash, at.unix_ms()],
        )?;
        Ok(())
    }

    fn revoke_session(&mut self, id_hash: &str, at: Timestamp) -> Result<()> {
        self.conn.execute(
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?2) WHERE id_hash = ?1",
            params![id_hash, at.unix_ms()],
        )?;
        Ok(())
    }

    fn put_zone(&mut self, zone: &Zone) -> Result<()> {
        self.conn.execute(
            "INSERT INTO zones (id, doc) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            params![zone.id.as_str(), serde_json::to_string(zone)?],
        )?;
        Ok(())
    }

    fn zones(&mut self) -> Result<Vec<Zone>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc FROM zones ORDER BY id")?;
        let docs = stmt.query_map([], |r| r.get::<_, String>(0))?;
        docs.map(|d| Ok(serde_json::from_str(&d?)?)).collect()
    }

    fn commit(&mut self, c: &Commit<'_>) -> Result<Vec<i64>> {
        let fresh = Telemetry::of(c.inputs);
        let flush = self.telemetry_since.elapsed() >= TELEMETRY_EVERY;
        let tx = self.conn.transaction()?;
        let mut ids = Vec::with_capacity(c.alarms.len());
        {
            let mut obs = tx.prepare_cached(
                "INSERT INTO observations (seq, t, device, doc) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut input = tx
                .prepare_cached("INSERT INTO inputs (seq, t, kind, doc) VALUES (?1, ?2, ?3, ?4)")?;
            let mut declare = tx.prepare_cached(
                "INSERT INTO transits (id, device, state, declared_at, updated_at, doc) VALUES (?1, ?2, ?3, ?4, ?4, ?5)
                 ON CONFLICT (id) DO NOTHING",
            )?;
            // Only a declaration has anything to seal: commits of observations skip the key file's
            // check (a `stat`).
            let ring = if c
                .inputs
                .iter()
                .any(|(_, i)| matches!(i, LoggedInput::Declare { .. }))
            {
                self.keys.current()?
            } else {
                None
            };
            for (seq, i) in c.inputs {
                if let LoggedInput::Observation { observation: o } = i {
                    obs.execute(params![
                        seq,
                        o.t.unix_ms(),
                        o.device.as_str(),
                        serde_json::to_string(o)?
                    ])?;
                    continue;
                }
                if let LoggedInput::Declare { at, transit } = i {
                    let n = declare.execute(params![
                        transit.id.as_str(),
                        transit.device.as_str(),
                        transit_state_name(TransitState::Declared),
                        at.unix_ms(),
                        crate::sealed::transit_doc(ring, transit)?
                    ])?;
                    if n == 0 {
                        return Err(Error::Conflict(format!(
                            "transit {} is already declared",
                            transit.id
                        )));
                    }
                    for d in &transit.devices {
                        tx.prepare_cached(
                            "INSERT INTO transit_devices (transit, device) VALUES (?1, ?2)
                             ON CONFLICT DO NOTHING",
                        )?
                        .execute(params![transit.id.as_str(), d.id.as_str()])?;
                    }
                }
                input.execute(params![
                    seq,
                    i.t().unix_ms(),
                    i.kind(),
                    crate::sealed::input_doc(ring, i)?
                ])?;
            }
            let mut ev = tx.prepare_cached(
                "INSERT INTO events (t, transit, kind, doc) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for e in c.events {
                let kind = serde_json::to_value(e.event)?;
                ev.execute(params![
                    e.t.unix_ms(),
                    e.transit.as_str(),
                    kind.as_str(),
                    serde_json::to_string(e)?
                ])?;
            }
            for e in c.events {
                if let Some(to) = crate::lifecycle_step(e.event) {
                    device_follows_transit(&tx, e, to)?;
                }
            }
            let mut al = tx.prepare_cached(
                "INSERT INTO alarms (t, transit, kind, grade, state, updated_at, doc) VALUES (?1, ?2, ?3, ?4, 'open', ?1, ?5)",
            )?;
            for a in c.alarms {
                al.execute(params![
                    a.t.unix_ms(),
                    a.transit.as_str(),
                    a.kind.as_str(),
                    a.grade,
                    serde_json::to_string(a)?
                ])?;
                ids.push(tx.last_insert_rowid());
            }
            let mut feed = tx.prepare_cached(
                "INSERT INTO feed (t, transit, kind, doc) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (t, transit, kind, doc) in output_feed(c.events, c.alarms, &ids)? {
                feed.execute(params![t, transit, kind, doc])?;
            }
            // Devices' latest reports: gathered in memory, written once a period (see
            // `TELEMETRY_EVERY`), in the commit that ends it.
            if flush {
                let all = Telemetry::merged(&self.telemetry, &fresh);
                write_telemetry(&tx, all.iter().map(|(d, r)| (d.as_str(), *r)))?;
            }
            for (transit, device) in pairings(c) {
                tx.execute(
                    "UPDATE transits SET device = ?2, doc = json_set(doc, '$.device', ?2) WHERE id = ?1",
                    params![transit, device],
                )?;
            }
            let mut st =
                tx.prepare_cached("UPDATE transits SET state = ?2, updated_at = ?3 WHERE id = ?1")?;
            for (id, state, at) in c.states {
                if st.execute(params![
                    id.as_str(),
                    transit_state_name(*state),
                    at.unix_ms()
                ])? == 0
                {
                    return Err(Error::NotFound {
                        what: "transit",
                        id: id.to_string(),
                    });
                }
            }
            append_audit_tx(&tx, c.audit)?;
        }
        tx.commit()?;
        // Only what is committed is kept for later.
        if flush {
            self.telemetry.clear();
            self.telemetry_since = Instant::now();
        } else {
            Telemetry::keep(&mut self.telemetry, fresh);
        }
        Ok(ids)
    }

    fn last_seq(&mut self) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT MAX(COALESCE((SELECT MAX(seq) FROM inputs), 0), COALESCE((SELECT MAX(seq) FROM observations), 0))",
            [],
            |r| r.get(0),
        )?)
    }

    fn inputs_after(&mut self, seq: i64, limit: u32) -> Result<Vec<(i64, LoggedInput)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, 'o', doc FROM observations WHERE seq > ?1
             UNION ALL SELECT seq, 'i', doc FROM inputs WHERE seq > ?1
             ORDER BY 1 LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![seq, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let ring = self.keys.current()?;
        rows.map(|row| {
            let (seq, table, doc) = row?;
            let input = if table == "o" {
                LoggedInput::Observation {
                    observation: serde_json::from_str(&doc)?,
                }
            } else {
                crate::sealed::input_from_doc(ring, &doc)?
            };
            Ok((seq, input))
        })
        .collect()
    }

    fn set_keys(&mut self, keys: crate::Keys) {
        self.keys = keys;
    }

    fn reseal(&mut self, cursor: &mut crate::ResealCursor, limit: u32) -> Result<u64> {
        // The clear (or old-key) text a rewrite replaces is zeroed in the page, not left in
        // its free space; old page images leave the WAL at its next checkpoint.
        self.conn.pragma_update(None, "secure_delete", "ON")?;
        // IMMEDIATE: the batch holds the write lock from its first read, so the service's
        // writer cannot change a row between its read here and its rewrite (it waits for
        // this one short transaction, as for any other writer).
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let ring = self.keys.current()?;
        let mut rewritten = 0;
        let mut seen = 0;
        if cursor.transits_after >= 0 {
            let rows: Vec<(i64, String)> = tx
                .prepare_cached(
                    "SELECT rowid, doc FROM transits WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                )?
                .query_map(params![cursor.transits_after, limit], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            for (rowid, doc) in &rows {
                if let Some(new) = crate::sealed::reseal_transit_doc(ring, doc)? {
                    tx.execute(
                        "UPDATE transits SET doc = ?2 WHERE rowid = ?1",
                        params![rowid, new],
                    )?;
                    rewritten += 1;
                }
                cursor.transits_after = *rowid;
            }
            seen = rows.len();
            if seen < limit as usize {
                // Transits done: -1 marks the phase over, inputs next.
                cursor.transits_after = -1;
            }
        }
        if cursor.transits_after < 0 && seen < limit as usize {
            let left = limit as usize - seen;
            let rows: Vec<(i64, String)> = tx
                .prepare_cached(
                    "SELECT seq, doc FROM inputs WHERE kind = 'declare' AND seq > ?1 ORDER BY seq LIMIT ?2",
                )?
                .query_map(params![cursor.inputs_after, left as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            for (seq, doc) in &rows {
                if let Some(new) = crate::sealed::reseal_input_doc(ring, doc)? {
                    tx.execute(
                        "UPDATE inputs SET doc = ?2 WHERE seq = ?1",
                        params![seq, new],
                    )?;
                    rewritten += 1;
                }
                cursor.inputs_after = *seq;
            }
            cursor.done = rows.len() < left;
        }
        tx.commit()?;
        Ok(rewritten)
    }

    fn put_station(&mut self, station: &Station) -> Result<()> {
        self.conn.execute(
            "INSERT INTO stations (id, zone, doc) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET zone = excluded.zone, doc = excluded.doc",
            params![
                station.id.as_str(),
                station.zone.as_str(),
                serde_json::to_string(station)?
            ],
        )?;
        Ok(())
    }

    fn station(&mut self, id: &str) -> Result<Station> {
        self.doc_by_id("stations", "station", id)
    }

    fn stations(&mut self, page: PageRequest) -> Result<Vec<(i64, Station)>> {
        self.docs_page("stations", page)
    }

    fn put_device(&mut self, device: &Device, registered_at: Timestamp) -> Result<()> {
        let tx = self.conn.transaction()?;
        let before: Option<(String, Option<String>)> = tx
            .query_row(
                "SELECT state, station FROM devices WHERE id = ?1",
                params![device.id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let station = device.station.as_ref().map(|s| s.as_str().to_owned());
        if before.as_ref() != Some(&(device.state.as_str().to_owned(), station.clone())) {
            tx.execute(
                "INSERT INTO device_states (device, at, from_state, to_state, station, cause)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'registry')",
                params![
                    device.id.as_str(),
                    registered_at.unix_ms(),
                    before.map(|(s, _)| s),
                    device.state.as_str(),
                    station
                ],
            )?;
        }
        tx.execute(
            "INSERT INTO devices (id, kind, state, station, registered_at, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, state = excluded.state,
               station = excluded.station, doc = excluded.doc",
            params![
                device.id.as_str(),
                device.kind.as_str(),
                device.state.as_str(),
                device.station.as_ref().map(|s| s.as_str()),
                registered_at.unix_ms(),
                serde_json::to_string(device)?
            ],
        )?;
        tx.execute(
            "INSERT INTO device_telemetry (id, last_report_at, battery_pct) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET
               last_report_at = COALESCE(device_telemetry.last_report_at, excluded.last_report_at),
               battery_pct = COALESCE(device_telemetry.battery_pct, excluded.battery_pct)",
            params![
                device.id.as_str(),
                device.last_report_at.map(Timestamp::unix_ms),
                device.battery_pct
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn device(&mut self, id: &str) -> Result<DeviceRecord> {
        self.flush_telemetry()?;
        let row = self
            .conn
            .query_row(
                &format!(
                    "SELECT {} FROM {} WHERE d.id = ?1",
                    DeviceRow::COLUMNS,
                    DeviceRow::TABLES
                ),
                params![id],
                device_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound {
                what: "device",
                id: id.to_owned(),
            })?;
        row.record()
    }

    fn devices(
        &mut self,
        filter: &DeviceFilter,
        page: PageRequest,
    ) -> Result<Vec<(i64, DeviceRecord)>> {
        self.flush_telemetry()?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {}, d.n FROM {}
             WHERE (?1 IS NULL OR d.station = ?1) AND (?2 IS NULL OR d.state = ?2) AND (?3 IS NULL OR d.kind = ?3)
               AND d.n > ?4
             ORDER BY d.n LIMIT ?5",
            DeviceRow::COLUMNS,
            DeviceRow::TABLES
        ))?;
        let rows = stmt
            .query_map(
                params![
                    filter.station.as_ref().map(|s| s.as_str()),
                    filter.state.map(|s| s.as_str()),
                    filter.kind.map(|k| k.as_str()),
                    page.after.unwrap_or(0),
                    page.limit
                ],
                |r| Ok((r.get::<_, i64>(7)?, device_row(r)?)),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(n, row)| Ok((n, row.record()?)))
            .collect()
    }

    fn put_reader(&mut self, reader: &Reader) -> Result<()> {
        self.conn.execute(
            "INSERT INTO readers (id, kind, station, zone, doc) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, station = excluded.station,
               zone = excluded.zone, doc = excluded.doc",
            params![
                reader.id.as_str(),
                wire_name(&reader.kind)?,
                reader.station.as_ref().map(|s| s.as_str()),
                reader.zone.as_ref().map(|z| z.as_str()),
                serde_json::to_string(reader)?
            ],
        )?;
        Ok(())
    }

    fn reader(&mut self, id: &str) -> Result<Reader> {
        self.doc_by_id("readers", "reader", id)
    }

    fn readers(&mut self, page: PageRequest) -> Result<Vec<(i64, Reader)>> {
        self.docs_page("readers", page)
    }

    fn transit(&mut self, id: &str) -> Result<StoredTransit> {
        let row = self
            .conn
            .query_row(
                "SELECT doc, state, declared_at, updated_at FROM transits WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )
            .optional()?;
        let (doc, state, declared, updated) = row.ok_or_else(|| Error::NotFound {
            what: "transit",
            id: id.to_owned(),
        })?;
        Ok(StoredTransit {
            transit: crate::sealed::transit_from_doc(self.keys.current()?, &doc)?,
            state: parse_transit_state(&state)?,
            declared_at: Timestamp::from_unix_ms(declared),
            updated_at: Timestamp::from_unix_ms(updated),
        })
    }

    fn transits(
        &mut self,
        filter: &TransitFilter,
        page: PageRequest,
    ) -> Result<Vec<(i64, StoredTransit)>> {
        let (from, to) = filter.declared.bounds();
        let mut stmt = self.conn.prepare_cached(
            "SELECT rowid, doc, state, declared_at, updated_at FROM transits
             WHERE (?1 IS NULL OR state = ?1) AND declared_at >= ?2 AND declared_at < ?3 AND rowid > ?4
             ORDER BY rowid LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![
                filter.state.map(transit_state_name),
                from,
                to,
                page.after.unwrap_or(0),
                page.limit
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )?;
        let ring = self.keys.current()?;
        rows.map(|row| {
            let (rowid, doc, state, declared, updated) = row?;
            Ok((
                rowid,
                StoredTransit {
                    transit: crate::sealed::transit_from_doc(ring, &doc)?,
                    state: parse_transit_state(&state)?,
                    declared_at: Timestamp::from_unix_ms(declared),
                    updated_at: Timestamp::from_unix_ms(updated),
                },
            ))
        })
        .collect()
    }

    fn transit_counts(&mut self) -> Result<Vec<(TransitState, u64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, COUNT(*) FROM transits GROUP BY state")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        transit_counts(rows)
    }

    fn observations(
        &mut self,
        device: &str,
        range: TimeRange,
        limit: u32,
    ) -> Result<Vec<Observation>> {
        let (from, to) = range.bounds();
        // The indexed part (by device), then the tail of the log not yet indexed (by id).
        let mut stmt = self.conn.prepare_cached(
            "SELECT doc FROM (
               SELECT * FROM (
                 SELECT o.t, o.id, o.doc FROM observations_by_device d JOIN observations o ON o.id = d.id
                 WHERE d.device = ?3 AND d.t >= ?1 AND d.t < ?2
                 ORDER BY d.t, d.id LIMIT ?4)
               UNION ALL
               SELECT t, id, doc FROM observations
               WHERE id > (SELECT indexed_up_to FROM observation_index) AND device = ?3 AND t >= ?1 AND t < ?2)
             ORDER BY t, id LIMIT ?4",
        )?;
        let docs = stmt.query_map(params![from, to, device, limit], |r| r.get::<_, String>(0))?;
        docs.map(|d| Ok(serde_json::from_str(&d?)?)).collect()
    }

    fn index_observations(&mut self, limit: u32) -> Result<u64> {
        // Called regularly by the writer: the telemetry's regular writing too.
        self.flush_telemetry()?;
        let tx = self.conn.transaction()?;
        let from: i64 = tx.query_row("SELECT indexed_up_to FROM observation_index", [], |r| {
            r.get(0)
        })?;
        let last: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) FROM observations", [], |r| {
            r.get(0)
        })?;
        let to = last.min(from.saturating_add(i64::from(limit)));
        if to <= from {
            return Ok(0);
        }
        // Sorted by the key: each page of the index is written once for all its rows.
        let n = tx.execute(
            "INSERT INTO observations_by_device (device, t, id)
             SELECT device, t, id FROM observations WHERE id > ?1 AND id <= ?2 ORDER BY device, t, id",
            params![from, to],
        )?;
        tx.execute(
            "UPDATE observation_index SET indexed_up_to = ?1",
            params![to],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    fn last_observation_time(&mut self) -> Result<Option<Timestamp>> {
        let t: Option<i64> = self
            .conn
            .query_row("SELECT MAX(t) FROM observations", [], |r| r.get(0))?;
        Ok(t.map(Timestamp::from_unix_ms))
    }

    fn purge_observations(
        &mut self,
        before: Timestamp,
        after: i64,
        span: u32,
    ) -> Result<(u64, Option<i64>)> {
        let tx = self.conn.transaction()?;
        let (oldest, newest): (i64, i64) = tx.query_row(
            "SELECT COALESCE(MIN(id), 1), COALESCE(MAX(id), 0) FROM observations",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        // Ids below the oldest left are gone already: no step is spent on them.
        let after = after.max(oldest - 1);
        let upto = newest.min(after.saturating_add(i64::from(span)));
        // The same rows twice in one transaction: their index entries, then themselves.
        const PURGEABLE: &str = "SELECT o.device, o.t, o.id FROM observations o
                WHERE o.id > ?2 AND o.id <= ?3 AND o.id < ?4 AND o.t < ?1
                  AND NOT EXISTS (SELECT 1 FROM transits tr WHERE tr.device = o.device AND tr.state <> 'closed')
                  AND NOT EXISTS (SELECT 1 FROM transit_devices td JOIN transits tr ON tr.id = td.transit
                                  WHERE td.device = o.device AND tr.state <> 'closed')";
        let args = params![before.unix_ms(), after, upto, newest];
        tx.execute(
            &format!("DELETE FROM observations_by_device WHERE (device, t, id) IN ({PURGEABLE})"),
            args,
        )?;
        let deleted: Vec<i64> = tx
            .prepare(&format!(
                "DELETE FROM observations WHERE id IN (SELECT id FROM ({PURGEABLE})) RETURNING id"
            ))?
            .query_map(args, |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let n = deleted.len() as u64;
        log_retention(&tx, "observations", crate::retention::DELETED, deleted)?;
        tx.commit()?;
        Ok((n, (upto < newest).then_some(upto)))
    }

    fn put_decision(&mut self, d: &crate::DecisionRecord) -> Result<crate::DecisionRecord> {
        let n = self.conn.execute(
            "INSERT INTO decisions (transit, at, actor, proposed, score, decided, overridden, reason, proposal)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (transit) DO NOTHING",
            params![
                d.transit,
                d.at.unix_ms(),
                d.actor,
                d.proposed.as_str(),
                d.score,
                d.decided.as_str(),
                d.overridden,
                d.reason,
                d.proposal.to_string()
            ],
        )?;
        if n == 0 {
            return Err(Error::Conflict(format!(
                "transit {} is decided already",
                d.transit
            )));
        }
        self.decision(&d.transit)
    }

    fn decision(&mut self, transit: &str) -> Result<crate::DecisionRecord> {
        let row = self
            .conn
            .query_row(
                &format!(
                    "SELECT {} FROM decisions WHERE transit = ?1",
                    crate::DECISION_COLUMNS
                ),
                params![transit],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                        r.get(9)?,
                        r.get(10)?,
                        r.get(11)?,
                        r.get(12)?,
                    ))
                },
            )
            .optional()?
            .ok_or_else(|| Error::NotFound {
                what: "decision of transit",
                id: transit.to_owned(),
            })?;
        crate::decision_from_row(row)
    }

    fn record_inspection(
        &mut self,
        transit: &str,
        result: &crate::InspectionResult,
    ) -> Result<crate::DecisionRecord> {
        let current = self.decision(transit)?;
        if current.decided != risk::Decision::Inspect || current.inspection.is_some() {
            return Err(Error::Conflict(format!(
                "transit {transit}: {}",
                if current.inspection.is_some() {
                    "the inspection's result is recorded already"
                } else {
                    "it was released, not inspected"
                }
            )));
        }
        self.conn.execute(
            "UPDATE decisions SET inspection_found = ?2, inspection_note = ?3, inspection_at = ?4
             WHERE transit = ?1 AND inspection_found IS NULL",
            params![transit, result.found, result.note, result.at.unix_ms()],
        )?;
        self.decision(transit)
    }

    fn decision_stats(&mut self, range: TimeRange) -> Result<risk::DecisionStats> {
        let (from, to) = range.bounds();
        let row: (i64, i64, i64, i64, i64, i64) = self.conn.query_row(
            "SELECT COUNT(*),
                    COALESCE(SUM(decided = 'release'), 0),
                    COALESCE(SUM(decided = 'inspect'), 0),
                    COALESCE(SUM(overridden), 0),
                    COALESCE(SUM(inspection_found IS NOT NULL), 0),
                    COALESCE(SUM(inspection_found = 1), 0)
             FROM decisions WHERE at >= ?1 AND at < ?2",
            params![from, to],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(risk::DecisionStats {
            decisions: n(row.0),
            released: n(row.1),
            inspected: n(row.2),
            overrides: n(row.3),
            inspections_with_result: n(row.4),
            inspections_finding: n(row.5),
        })
    }

    fn risk_records(
        &mut self,
        carrier: Option<&str>,
        route: Option<(&str, &str)>,
        since: Timestamp,
        except: &str,
    ) -> Result<(Option<risk::Record>, Option<risk::Record>)> {
        const VIOLATED: &str = "EXISTS (SELECT 1 FROM alarms a WHERE a.transit = t.id AND a.outcome = 'confirmed_violation')";
        let record = |row: (i64, i64)| risk::Record {
            transits: u64::try_from(row.0).unwrap_or(0),
            violations: u64::try_from(row.1).unwrap_or(0),
        };
        let by_carrier = match carrier {
            Some(c) => Some(record(self.conn.query_row(
                &format!(
                    "SELECT COUNT(*), COALESCE(SUM({VIOLATED}), 0) FROM transits t
                     WHERE t.declared_at >= ?1 AND t.id <> ?2
                       AND json_extract(t.doc, '$.declaration.carrier') = ?3"
                ),
                params![since.unix_ms(), except, c],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)),
            None => None,
        };
        let by_route = match route {
            Some((from, to)) => Some(record(self.conn.query_row(
                &format!(
                    "SELECT COUNT(*), COALESCE(SUM({VIOLATED}), 0) FROM transits t
                     WHERE t.declared_at >= ?1 AND t.id <> ?2
                       AND json_extract(t.doc, '$.departure') = ?3
                       AND json_extract(t.doc, '$.destination') = ?4"
                ),
                params![since.unix_ms(), except, from, to],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)),
            None => None,
        };
        Ok((by_carrier, by_route))
    }

    fn gate_outcomes(&mut self) -> Result<(u64, u64)> {
        let (auto, held): (i64, i64) = self.conn.query_row(
            "SELECT COUNT(DISTINCT CASE WHEN kind = 'unseal_authorized' THEN transit END),
                    COUNT(DISTINCT CASE WHEN kind = 'gate_hold' AND transit NOT IN (
                      SELECT transit FROM events WHERE kind = 'unseal_authorized'
                        AND json_extract(doc, '$.reader') IS NOT NULL) THEN transit END)
             FROM events
             WHERE kind = 'gate_hold'
                OR (kind = 'unseal_authorized' AND json_extract(doc, '$.reader') IS NOT NULL)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((
            u64::try_from(auto).unwrap_or(0),
            u64::try_from(held).unwrap_or(0),
        ))
    }

    fn device_history(
        &mut self,
        device: &str,
        limit: u32,
    ) -> Result<Vec<crate::DeviceStateChange>> {
        let rows = self
            .conn
            .prepare_cached(
                "SELECT id, device, at, from_state, to_state, station, cause FROM device_states
                 WHERE device = ?1 ORDER BY id LIMIT ?2",
            )?
            .query_map(params![device, limit], |r| {
                Ok(crate::DeviceStateChange {
                    id: r.get(0)?,
                    device: r.get(1)?,
                    at: Timestamp::from_unix_ms(r.get(2)?),
                    from_state: r.get(3)?,
                    to_state: r.get(4)?,
                    station: r.get(5)?,
                    cause: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn device_state_entries(&mut self, range: TimeRange) -> Result<Vec<(String, u64)>> {
        let (from, to) = range.bounds();
        let rows: Vec<(String, i64)> = self
            .conn
            .prepare_cached(
                "SELECT to_state, COUNT(*) FROM device_states WHERE at >= ?1 AND at < ?2
                 GROUP BY to_state ORDER BY to_state",
            )?
            .query_map(params![from, to], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows
            .into_iter()
            .map(|(s, n)| (s, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    fn zone_flows(&mut self, since: Timestamp) -> Result<Vec<crate::ZoneFlow>> {
        let rows: Vec<(String, i64, i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT json_extract(doc, '$.departure') AS z, declared_at / 86400000 AS d, COUNT(*), 0
                   FROM transits WHERE declared_at >= ?1 AND z IS NOT NULL GROUP BY z, d
                 UNION ALL
                 SELECT json_extract(t.doc, '$.destination') AS z, e.t / 86400000 AS d, 0, COUNT(*)
                   FROM events e JOIN transits t ON t.id = e.transit
                   WHERE e.kind = 'arrived' AND e.t >= ?1 AND z IS NOT NULL GROUP BY z, d",
            )?
            .query_map(params![since.unix_ms()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(crate::zone_flows(rows))
    }

    fn erase_personal_data(
        &mut self,
        closed_before: Timestamp,
        at: Timestamp,
        limit: u32,
    ) -> Result<Vec<String>> {
        // The erased text is zeroed in the page, not left in its free space.
        self.conn.pragma_update(None, "secure_delete", "ON")?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let rows: Vec<(String, String)> = tx
            .prepare_cached(
                "SELECT id, doc FROM transits
                 WHERE state = 'closed' AND personal_erased_at IS NULL AND updated_at < ?1
                 ORDER BY updated_at LIMIT ?2",
            )?
            .query_map(params![closed_before.unix_ms(), limit], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut ids = Vec::with_capacity(rows.len());
        for (id, doc) in rows {
            let erased = crate::retention::erase_transit_doc(&doc)?;
            tx.execute(
                "UPDATE transits SET personal_erased_at = ?2, doc = COALESCE(?3, doc) WHERE id = ?1",
                params![id, at.unix_ms(), erased],
            )?;
            ids.push(id);
        }
        if !ids.is_empty() {
            let wanted = serde_json::to_string(&ids)?;
            let inputs: Vec<(i64, String)> = tx
                .prepare_cached(
                    "SELECT seq, doc FROM inputs WHERE kind = 'declare'
                       AND json_extract(doc, '$.transit.id') IN (SELECT value FROM json_each(?1))",
                )?
                .query_map(params![wanted], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut erased_seqs = Vec::new();
            for (seq, doc) in inputs {
                if let Some(new) = crate::retention::erase_input_doc(&doc)? {
                    tx.execute(
                        "UPDATE inputs SET doc = ?2 WHERE seq = ?1",
                        params![seq, new],
                    )?;
                    erased_seqs.push(seq);
                }
            }
            log_retention(
                &tx,
                "inputs",
                crate::retention::ERASED_IN_PLACE,
                erased_seqs,
            )?;
        }
        tx.commit()?;
        // Ingest's deletes need not pay for zeroing.
        self.conn.pragma_update(None, "secure_delete", "OFF")?;
        Ok(ids)
    }

    fn purge_attachments(&mut self, closed_before: Timestamp, limit: u32) -> Result<u64> {
        // The deleted files are zeroed in the pages, not left in their free space.
        self.conn.pragma_update(None, "secure_delete", "ON")?;
        let tx = self.conn.transaction()?;
        // The newest row stays whatever its age: SQLite gives a new row the highest id plus
        // one, and an id used again at or below an incremental backup's mark would never reach
        // the next increment.
        let deleted: Vec<i64> = tx
            .prepare_cached(
                "DELETE FROM alarm_attachments WHERE id IN (
                   SELECT f.id FROM alarm_attachments f JOIN alarms a ON a.id = f.alarm
                   WHERE a.state = 'closed' AND a.updated_at < ?1
                     AND f.id < (SELECT MAX(id) FROM alarm_attachments)
                   ORDER BY f.id LIMIT ?2)
                 RETURNING id",
            )?
            .query_map(params![closed_before.unix_ms(), limit], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let n = deleted.len() as u64;
        log_retention(&tx, "alarm_attachments", crate::retention::DELETED, deleted)?;
        tx.commit()?;
        self.conn.pragma_update(None, "secure_delete", "OFF")?;
        Ok(n)
    }

    fn events(
        &mut self,
        transit: &str,
        range: TimeRange,
        page: PageRequest,
    ) -> Result<Vec<(i64, Event)>> {
        let (from, to) = range.bounds();
        // Time order, paged by id: the page goes on after the (t, id) of the event named.
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, doc FROM events WHERE transit = ?1 AND t >= ?2 AND t < ?3
               AND (?4 IS NULL OR (t, id) > (SELECT t, id FROM events WHERE id = ?4))
             ORDER BY t, id LIMIT ?5",
        )?;
        let rows = stmt.query_map(params![transit, from, to, page.after, page.limit], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (id, doc) = row?;
            Ok((id, serde_json::from_str(&doc)?))
        })
        .collect()
    }

    fn alarm(&mut self, id: i64) -> Result<AlarmRecord> {
        let row = self
            .conn
            .query_row(
                "SELECT doc, state, outcome FROM alarms WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                },
            )
            .optional()?;
        let (doc, state, outcome) = row.ok_or_else(|| Error::NotFound {
            what: "alarm",
            id: id.to_string(),
        })?;
        self.record(id, &doc, &state, outcome.as_deref())
    }

    fn alarms(&mut self, f: &AlarmFilter, page: PageRequest) -> Result<Vec<AlarmRecord>> {
        let (from, to) = f.range.bounds();
        let rows: Vec<(i64, String, String, Option<String>)> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, doc, state, outcome FROM alarms
                 WHERE t >= ?1 AND t < ?2 AND (?3 IS NULL OR state = ?3) AND (?4 IS NULL OR kind = ?4)
                   AND grade >= ?5 AND (?6 IS NULL OR transit = ?6) AND id > ?7
                 ORDER BY id LIMIT ?8",
            )?;
            let rows = stmt.query_map(
                params![
                    from,
                    to,
                    f.state,
                    f.kind.map(|k| k.as_str()),
                    f.min_grade.unwrap_or(0),
                    f.transit,
                    page.after.unwrap_or(0),
                    page.limit
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            rows.collect::<Result<_, _>>()?
        };
        rows.iter()
            .map(|(id, doc, state, outcome)| self.record(*id, doc, state, outcome.as_deref()))
            .collect()
    }

    fn alarm_counts(&mut self, range: TimeRange) -> Result<Vec<AlarmCount>> {
        let (from, to) = range.bounds();
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SQL_DAY}, kind, grade, COUNT(*) FROM alarms WHERE t >= ?1 AND t < ?2 GROUP BY 1, 2, 3"
        ))?;
        let rows = stmt
            .query_map(params![from, to], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        alarm_counts(rows)
    }

    fn append_audit(&mut self, records: &[AuditRecord]) -> Result<Vec<AuditEntry>> {
        // IMMEDIATE: the head is read and the entries appended under one write lock. A deferred
        // transaction would read first and fail at once with "database is locked" (no busy
        // wait) when another process, such as the running service, wrote in between.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let entries = append_audit_tx(&tx, records)?;
        tx.commit()?;
        Ok(entries)
    }

    fn audit_entries(&mut self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        let mut q = self.conn.prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = q
            .query_map(params![after, limit], audit_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows.into_iter().map(audit_entry).collect())
    }

    fn audit_head(&mut self) -> Result<Option<AuditEntry>> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT 1"),
                [],
                audit_row,
            )
            .optional()?;
        Ok(row.map(audit_entry))
    }

    fn add_audit_checkpoint(&mut self, c: &AuditCheckpoint) -> Result<()> {
        self.conn.execute(
            "INSERT INTO audit_checkpoints (seq, hash, at, public_key, signature) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (seq) DO NOTHING",
            params![c.seq, c.hash, c.at_ms, c.public_key, c.signature],
        )?;
        Ok(())
    }

    fn audit_checkpoints(&mut self) -> Result<Vec<AuditCheckpoint>> {
        let mut q = self.conn.prepare_cached(
            "SELECT seq, hash, at, public_key, signature FROM audit_checkpoints ORDER BY seq",
        )?;
        let rows = q
            .query_map([], checkpoint_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn last_audit_checkpoint(&mut self) -> Result<Option<AuditCheckpoint>> {
        Ok(self
            .conn
            .query_row(
                "SELECT seq, hash, at, public_key, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
                [],
                checkpoint_row,
            )
            .optional()?)
    }

    fn handle_alarm(
        &mut self,
        id: i64,
        step: AlarmStep,
        actor: &str,
        at: Timestamp,
        note: Option<&str>,
    ) -> Result<AlarmRecord> {
        let tx = self.conn.transaction()?;
        let row = tx
            .query_row(
                "SELECT state, outcome, transit, kind, grade FROM alarms WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                },
            )
            .optional()?;
        let (state, outcome, transit, kind, grade) = row.ok_or_else(|| Error::NotFound {
            what: "alarm",
            id: id.to_string(),
        })?;
        let t = transition(&state, outcome.as_deref(), step)?;
        tx.execute(
            "UPDATE alarms SET state = ?2, outcome = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, t.next.as_str(), t.next_outcome, at.unix_ms()],
        )?;
        tx.execute(
            "INSERT INTO alarm_history (alarm, at, actor, step, outcome, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, at.unix_ms(), actor, t.step_text, t.step_outcome, note],
        )?;
        let (ft, transit, fkind, doc) = step_feed(id, transit, &kind, grade, &t, actor, at, note)?;
        append_audit_tx(&tx, &[step_audit(id, &transit, &t, actor, at)])?;
        tx.execute(
            "INSERT INTO feed (t, transit, kind, doc) VALUES (?1, ?2, ?3, ?4)",
            params![ft, transit, fkind, doc],
        )?;
        tx.commit()?;
        self.alarm(id)
    }
}

fn attachment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Attachment> {
    Ok(Attachment {
        id: r.get(0)?,
        alarm: r.get(1)?,
        at: Timestamp::from_unix_ms(r.get(2)?),
        actor: r.get(3)?,
        name: r.get(4)?,
        content_type: r.get(5)?,
        sha256: r.get(6)?,
        size_bytes: r.get::<_, i64>(7)? as u64,
    })
}

/// Reads the columns of [`DeviceRow::COLUMNS`], first in the row.
fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok(DeviceRow {
        doc: r.get(0)?,
        registered_at: r.get(1)?,
        last_report_at: r.get(2)?,
        battery_pct: r.get(3)?,
        lat: r.get(4)?,
        lon: r.get(5)?,
        position_at: r.get(6)?,
    })
}

/// Reads the columns of [`COMMAND_COLUMNS`].
fn command_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CommandRow> {
    Ok(CommandRow {
        id: r.get(0)?,
        device: r.get(1)?,
        transit: r.get(2)?,
        kind: r.get(3)?,
        args: r.get(4)?,
        created_at: r.get(5)?,
        actor: r.get(6)?,
        state: r.get(7)?,
        sent_at: r.get(8)?,
        result_at: r.get(9)?,
        result: r.get(10)?,
    })
}

fn signed_read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SignedReadRecord> {
    Ok(SignedReadRecord {
        id: r.get(0)?,
        reader: r.get(1)?,
        digest: r.get(2)?,
        public_key: r.get(3)?,
        signature: r.get(4)?,
        body: r.get(5)?,
        received_at: Timestamp::from_unix_ms(r.get(6)?),
    })
}

impl SqliteStore {
    fn container_pairing(&mut self, id: i64) -> Result<ContainerPairing> {
        self.pairings_where("id = ?1", params![id])?
            .pop()
            .ok_or_else(|| Error::NotFound {
                what: "container pairing",
                id: id.to_string(),
            })
    }

    fn pairings_where(
        &mut self,
        condition: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<ContainerPairing>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {PAIRING_COLUMNS} FROM container_pairings WHERE {condition} ORDER BY paired_at, id"
        ))?;
        let rows = stmt.query_map(args, |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
        rows.map(|r| pairing_from_row(r?)).collect()
    }
}

/// A `users` row, as [`user_from_row`] takes it.
fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

impl SqliteStore {
    /// The one user matching `condition` (on `?1`), or not found under `name()`.
    fn user_where(
        &mut self,
        condition: &str,
        value: &dyn rusqlite::ToSql,
        name: impl FnOnce() -> String,
    ) -> Result<User> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE {condition}"),
                [value],
                user_row,
            )
            .optional()?;
        match row {
            Some(row) => user_from_row(row),
            None => Err(Error::NotFound {
                what: "user",
                id: name(),
            }),
        }
    }
}

/// Records in `retention_log` what retention did to rows of an append-only log, as runs of
/// keys (an incremental backup's restore does the same to its base).
fn log_retention(tx: &Connection, table: &str, action: &str, keys: Vec<i64>) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO retention_log (tbl, action, key_lo, key_hi) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (lo, hi) in crate::retention::runs(keys) {
        insert.execute(params![table, action, lo, hi])?;
    }
    Ok(())
}

/// Moves the registered devices of an event's transit along with it
/// (`crate::lifecycle_step`): every device of the transit for sealing and departing, the one
/// named otherwise; their state, and at unsealing the station of the transit's destination
/// when there is one, in the registry and in their history. An unregistered device has
/// nothing to follow.
fn device_follows_transit(tx: &Connection, e: &model::Event, to: model::DeviceState) -> Result<()> {
    let mut devices = vec![e.device.as_str().to_owned()];
    if crate::moves_every_device(e.event) {
        let more: Vec<String> = tx
            .prepare_cached(
                "SELECT device FROM transit_devices WHERE transit = ?1 ORDER BY device",
            )?
            .query_map(params![e.transit.as_str()], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        devices.extend(more.into_iter().filter(|d| d != e.device.as_str()));
    }
    for device in &devices {
        move_device(tx, e, device, to)?;
    }
    Ok(())
}

/// Moves one registered device with its transit's event.
fn move_device(
    tx: &Connection,
    e: &model::Event,
    device: &str,
    to: model::DeviceState,
) -> Result<()> {
    let Some((from, at_station)): Option<(String, Option<String>)> = tx
        .query_row(
            "SELECT state, station FROM devices WHERE id = ?1",
            params![device],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
    else {
        return Ok(());
    };
    if !crate::follows_transits(&from) {
        return Ok(());
    }
    let (to, station): (model::DeviceState, Option<String>) = if to == model::DeviceState::InStock {
        let station: Option<String> = tx
            .query_row(
                "SELECT s.id FROM transits t JOIN stations s ON s.zone = json_extract(t.doc, '$.destination')
                 WHERE t.id = ?1 ORDER BY s.id LIMIT 1",
                params![e.transit.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        match station {
            Some(s) => (model::DeviceState::InStock, Some(s)),
            None => (model::DeviceState::AwaitingReturn, None),
        }
    } else {
        (to, None)
    };
    // Nothing changes (a seal's own `device_unsealed`, then the transit's `unsealed`): no new
    // history line.
    if from == to.as_str() && (station.is_none() || station == at_station) {
        return Ok(());
    }
    match &station {
        Some(s) => tx.execute(
            "UPDATE devices SET state = ?2, station = ?3,
               doc = json_set(doc, '$.state', ?2, '$.station', ?3) WHERE id = ?1",
            params![device, to.as_str(), s],
        )?,
        None => tx.execute(
            "UPDATE devices SET state = ?2, doc = json_set(doc, '$.state', ?2) WHERE id = ?1",
            params![device, to.as_str()],
        )?,
    };
    let kind = serde_json::to_value(e.event)?;
    tx.execute(
        "INSERT INTO device_states (device, at, from_state, to_state, station, cause)
         VALUES (?1, ?2, ?3, ?4, (SELECT station FROM devices WHERE id = ?1), ?5)",
        params![
            device,
            e.t.unix_ms(),
            from,
            to.as_str(),
            format!(
                "transit {} {}",
                e.transit.as_str(),
                kind.as_str().unwrap_or_default()
            )
        ],
    )?;
    Ok(())
}
