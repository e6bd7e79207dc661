//! PostgreSQL, for deployments that outgrow one file.

use ::postgres::{Client, NoTls, Transaction};
use model::{
    Alarm, AlarmStep, Device, Event, Observation, Reader, Station, Timestamp, TransitState, Zone,
};

use crate::pairings;
use crate::users::{
    SESSION_COLUMNS, Session, SessionRow, USER_COLUMNS, User, UserRow, session_from_row,
    user_from_row, username_key,
};
use crate::{
    AUDIT_COLUMNS, AuditCheckpoint, AuditEntry, AuditRecord, attach_audit, audit_entry, step_audit,
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
    (1, include_str!("../migrations/postgres/001_init.sql")),
    (2, include_str!("../migrations/postgres/002_registry.sql")),
    (3, include_str!("../migrations/postgres/003_tokens.sql")),
    (4, include_str!("../migrations/postgres/004_feed.sql")),
    (
        5,
        include_str!("../migrations/postgres/005_attachments.sql"),
    ),
    (
        6,
        include_str!("../migrations/postgres/006_device_index.sql"),
    ),
    (
        7,
        include_str!("../migrations/postgres/007_device_gateway.sql"),
    ),
    (
        8,
        include_str!("../migrations/postgres/008_device_commands.sql"),
    ),
    (
        9,
        include_str!("../migrations/postgres/009_device_keys.sql"),
    ),
    (
        10,
        include_str!("../migrations/postgres/010_container_pairings.sql"),
    ),
    (
        11,
        include_str!("../migrations/postgres/011_reader_keys.sql"),
    ),
    (12, include_str!("../migrations/postgres/012_audit.sql")),
    (13, include_str!("../migrations/postgres/013_users.sql")),
    (14, include_str!("../migrations/postgres/014_retention.sql")),
    (15, include_str!("../migrations/postgres/015_decisions.sql")),
    (
        16,
        include_str!("../migrations/postgres/016_device_states.sql"),
    ),
    (
        17,
        include_str!("../migrations/postgres/017_transit_devices.sql"),
    ),
];

/// What [`PgStore::with_exported_snapshot`] saw in its snapshot: the row counts, the
/// append-only logs' high-water marks, and what the dump returned.
pub type Snapshot<R> = (
    Vec<(String, i64)>,
    std::collections::BTreeMap<String, i64>,
    R,
);

/// A store in a PostgreSQL database.
pub struct PgStore {
    client: Client,
    /// Devices' latest reports not yet written to `device_telemetry` (see `TELEMETRY_EVERY`).
    telemetry: std::collections::HashMap<String, Telemetry>,
    telemetry_since: std::time::Instant,
    /// Data-encryption keys of the sealed transit fields (`crate::sealed`).
    keys: crate::Keys,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string may hold a password: it is never printed.
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

/// Connects with bounds a service needs: a database that does not answer, or a connection
/// that went half-open, is an error after a while (which the writer recovers from), never a
/// writer blocked for ever. Settings in the URL win.
fn connect(url: &str) -> Result<Client> {
    let mut config: ::postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    config.keepalives(true);
    config.keepalives_idle(std::time::Duration::from_secs(30));
    let mut client = config.connect(NoTls)?;
    // Generous: the per-device index copy is the longest statement, well under this.
    client.batch_execute("SET statement_timeout = '120s'")?;
    Ok(client)
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Best effort: what is lost here is telemetry only, the reports are in the log.
        let _ = self.flush_telemetry();
    }
}

impl PgStore {
    /// The document of the row `id` of a registry table (`stations`, `readers`).
    fn doc_by_id<T: serde::de::DeserializeOwned>(
        &mut self,
        table: &'static str,
        what: &'static str,
        id: &str,
    ) -> Result<T> {
        let row = self
            .client
            .query_opt(&format!("SELECT doc FROM {table} WHERE id = $1"), &[&id])?
            .ok_or_else(|| Error::NotFound {
                what,
                id: id.to_owned(),
            })?;
        Ok(serde_json::from_str(row.get::<_, &str>(0))?)
    }

    /// A page of a registry table's documents in registration order, with their places.
    fn docs_page<T: serde::de::DeserializeOwned>(
        &mut self,
        table: &'static str,
        page: PageRequest,
    ) -> Result<Vec<(i64, T)>> {
        let rows = self.client.query(
            &format!("SELECT n, doc FROM {table} WHERE n > $1 ORDER BY n LIMIT $2"),
            &[&page.after.unwrap_or(0), &i64::from(page.limit)],
        )?;
        rows.iter()
            .map(|r| Ok((r.get(0), serde_json::from_str(r.get::<_, &str>(1))?)))
            .collect()
    }

    /// Writes the devices' latest reports gathered in memory.
    fn flush_telemetry(&mut self) -> Result<()> {
        if !self.telemetry.is_empty() {
            let mut tx = self.client.transaction()?;
            update_devices(&mut tx, &self.telemetry)?;
            tx.commit()?;
            self.telemetry.clear();
        }
        self.telemetry_since = std::time::Instant::now();
        Ok(())
    }

    /// Connects (`postgres://user@host:port/db`) and brings the schema up to date.
    pub fn connect(url: &str) -> Result<PgStore> {
        PgStore::init(connect(url)?, None)
    }

    /// Connects and works inside `schema` (created if missing): isolated databases for tests,
    /// or several sealwatch instances in one database.
    pub fn connect_in_schema(url: &str, schema: &str) -> Result<PgStore> {
        // Unquoted in SQL: only names PostgreSQL keeps as they are.
        let ok = schema.starts_with(|c: char| c.is_ascii_lowercase())
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(Error::Conflict(format!(
                "schema name {schema:?} must be lower-case letters, digits and '_', starting with a letter"
            )));
        }
        PgStore::init(connect(url)?, Some(schema))
    }

    /// The schema the store works in.
    pub fn current_schema(&mut self) -> Result<String> {
        Ok(self
            .client
            .query_one("SELECT current_schema()::text", &[])?
            .get(0))
    }

    /// Runs `dump` while a read-only repeatable-read transaction holds an exported snapshot
    /// (its name is what `dump` gets, for `pg_dump --snapshot`), and counts every table and
    /// reads the append-only logs' high-water marks in that same snapshot: a backup and the counts in its manifest see one moment, however busy the
    /// service is meanwhile.
    pub fn with_exported_snapshot<R>(
        &mut self,
        dump: impl FnOnce(&str) -> R,
    ) -> Result<Snapshot<R>> {
        let mut tx = self
            .client
            .build_transaction()
            .isolation_level(::postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let snapshot: String = tx.query_one("SELECT pg_export_snapshot()", &[])?.get(0);
        let counts = count_tables(&mut tx)?;
        let marks = crate::incremental::pg_high_water(&mut tx)?;
        let r = dump(&snapshot);
        tx.commit()?;
        Ok((counts, marks, r))
    }

    /// How many tables `schema` holds (0 when it does not exist), without creating it or
    /// running migrations: a restore checks its target is empty first.
    pub fn tables_in_schema(url: &str, schema: &str) -> Result<i64> {
        let mut client = connect(url)?;
        Ok(client
            .query_one(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1",
                &[&schema],
            )?
            .get(0))
    }

    /// Drops `schema` with everything in it: a restore with `--replace` only.
    pub fn drop_schema(url: &str, schema: &str) -> Result<()> {
        let mut client = connect(url)?;
        let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
        client.batch_execute(&format!("DROP SCHEMA IF EXISTS {quoted} CASCADE"))?;
        Ok(())
    }

    /// Renames `from` to `to` (a restore sets the schema it replaces aside this way, and puts
    /// it back if the restore fails).
    pub fn rename_schema(url: &str, from: &str, to: &str) -> Result<()> {
        let mut client = connect(url)?;
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        client.batch_execute(&format!("ALTER SCHEMA {} RENAME TO {}", q(from), q(to)))?;
        Ok(())
    }

    /// The connection, for the incremental backup's `COPY` (crate::incremental).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Creates `schema`, empty.
    pub fn create_schema(url: &str, schema: &str) -> Result<()> {
        let mut client = connect(url)?;
        let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
        client.batch_execute(&format!("CREATE SCHEMA {quoted}"))?;
        Ok(())
    }

    fn init(mut client: Client, schema: Option<&str>) -> Result<PgStore> {
        if let Some(schema) = schema {
            client.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}"
            ))?;
        }
        client.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )?;
        let current: i64 = client
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_version",
                &[],
            )?
            .get(0);
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            let mut tx = client.transaction()?;
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[version],
            )?;
            tx.commit()?;
        }
        Ok(PgStore {
            client,
            telemetry: std::collections::HashMap::new(),
            telemetry_since: std::time::Instant::now(),
            keys: crate::Keys::none(),
        })
    }

    fn history(client: &mut Client, id: i64) -> Result<Vec<HandlingStep>> {
        let rows = client.query(
            "SELECT at, actor, step, outcome, note FROM alarm_history WHERE alarm = $1 ORDER BY id",
            &[&id],
        )?;
        Ok(rows
            .iter()
            .map(|r| HandlingStep {
                at: Timestamp::from_unix_ms(r.get(0)),
                actor: r.get(1),
                step: r.get(2),
                outcome: r
                    .get::<_, Option<String>>(3)
                    .as_deref()
                    .and_then(parse_outcome),
                note: r.get(4),
            })
            .collect())
    }

    fn record(
        &mut self,
        id: i64,
        doc: &str,
        state: &str,
        outcome: Option<&str>,
    ) -> Result<AlarmRecord> {
        Ok(AlarmRecord {
            id,
            alarm: serde_json::from_str(doc)?,
            state: parse_state(state, outcome)?,
            history: PgStore::history(&mut self.client, id)?,
        })
    }
}

fn stored(
    ring: Option<&crate::KeyRing>,
    doc: &str,
    state: &str,
    declared: i64,
    updated: i64,
) -> Result<StoredTransit> {
    Ok(StoredTransit {
        transit: crate::sealed::transit_from_doc(ring, doc)?,
        state: parse_transit_state(state)?,
        declared_at: Timestamp::from_unix_ms(declared),
        updated_at: Timestamp::from_unix_ms(updated),
    })
}

/// Updates every registered device heard from in a commit, in one statement: a round trip per
/// device would cost more than the commit's inserts. Devices not registered match no row.
/// Writes devices' latest reports, one per device; devices not registered match no row.
fn update_devices(
    tx: &mut Transaction<'_>,
    reports: &std::collections::HashMap<String, Telemetry>,
) -> Result<()> {
    if reports.is_empty() {
        return Ok(());
    }
    let reports: Vec<(&str, Telemetry)> = reports.iter().map(|(d, r)| (d.as_str(), *r)).collect();
    let ids: Vec<&str> = reports.iter().map(|(d, _)| *d).collect();
    let reports: Vec<Telemetry> = reports.iter().map(|(_, r)| *r).collect();
    let last: Vec<i64> = reports.iter().map(|r| r.last_report_at).collect();
    let battery_at: Vec<Option<i64>> = reports.iter().map(|r| r.battery.map(|(t, _)| t)).collect();
    let battery: Vec<Option<f64>> = reports.iter().map(|r| r.battery.map(|(_, p)| p)).collect();
    let position_at: Vec<Option<i64>> = reports
        .iter()
        .map(|r| r.position.map(|(t, _, _)| t))
        .collect();
    let lat: Vec<Option<f64>> = reports
        .iter()
        .map(|r| r.position.map(|(_, lat, _)| lat))
        .collect();
    let lon: Vec<Option<f64>> = reports
        .iter()
        .map(|r| r.position.map(|(_, _, lon)| lon))
        .collect();
    tx.execute(
        "UPDATE device_telemetry AS d SET
           last_report_at = CASE WHEN d.last_report_at IS NULL OR u.t > d.last_report_at THEN u.t ELSE d.last_report_at END,
           battery_pct = CASE WHEN u.battery_at IS NOT NULL AND (d.battery_at IS NULL OR u.battery_at >= d.battery_at) THEN u.battery ELSE d.battery_pct END,
           battery_at = CASE WHEN u.battery_at IS NOT NULL AND (d.battery_at IS NULL OR u.battery_at >= d.battery_at) THEN u.battery_at ELSE d.battery_at END,
           lat = CASE WHEN u.position_at IS NOT NULL AND (d.position_at IS NULL OR u.position_at >= d.position_at) THEN u.lat ELSE d.lat END,
           lon = CASE WHEN u.position_at IS NOT NULL AND (d.position_at IS NULL OR u.position_at >= d.position_at) THEN u.lon ELSE d.lon END,
           position_at = CASE WHEN u.position_at IS NOT NULL AND (d.position_at IS NULL OR u.position_at >= d.position_at) THEN u.position_at ELSE d.position_at END
         FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::DOUBLE PRECISION[], $5::BIGINT[], $6::DOUBLE PRECISION[], $7::DOUBLE PRECISION[])
           AS u (id, t, battery_at, battery, position_at, lat, lon)
         WHERE d.id = u.id",
        &[&ids, &last, &battery_at, &battery, &position_at, &lat, &lon],
    )?;
    Ok(())
}

fn device_row(r: &::postgres::Row) -> DeviceRow {
    DeviceRow {
        doc: r.get(0),
        registered_at: r.get(1),
        last_report_at: r.get(2),
        battery_pct: r.get(3),
        lat: r.get(4),
        lon: r.get(5),
        position_at: r.get(6),
    }
}

fn insert_outputs(
    tx: &mut Transaction<'_>,
    events: &[Event],
    alarms: &[Alarm],
) -> Result<Vec<i64>> {
    if !events.is_empty() {
        let (mut ts, mut transits, mut kinds, mut docs) = (
            Vec::with_capacity(events.len()),
            Vec::with_capacity(events.len()),
            Vec::with_capacity(events.len()),
            Vec::with_capacity(events.len()),
        );
        for e in events {
            ts.push(e.t.unix_ms());
            transits.push(e.transit.as_str());
            kinds.push(
                serde_json::to_value(e.event)?
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
            docs.push(serde_json::to_string(e)?);
        }
        tx.execute(
            "INSERT INTO events (t, transit, kind, doc)
             SELECT t, transit, kind, doc
             FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[]) WITH ORDINALITY
                 AS e (t, transit, kind, doc, n)
             ORDER BY n",
            &[&ts, &transits, &kinds, &docs],
        )?;
        for e in events {
            if let Some(to) = crate::lifecycle_step(e.event) {
                device_follows_transit(tx, e, to)?;
            }
        }
    }
    if alarms.is_empty() {
        return Ok(Vec::new());
    }
    let al = tx.prepare(
        "INSERT INTO alarms (t, transit, kind, grade, state, updated_at, doc) VALUES ($1, $2, $3, $4, 'open', $1, $5) RETURNING id",
    )?;
    let mut ids = Vec::with_capacity(alarms.len());
    for a in alarms {
        let row = tx.query_one(
            &al,
            &[
                &a.t.unix_ms(),
                &a.transit.as_str(),
                &a.kind.as_str(),
                &i64::from(a.grade),
                &serde_json::to_string(a)?,
            ],
        )?;
        ids.push(row.get(0));
    }
    Ok(ids)
}

/// Chains `records` onto the audit log inside `tx`: the caller's transaction, so that they are
/// durable exactly when what they record is. The table lock makes a second writer (the CLI
/// while the service runs) wait for the head instead of failing on the `seq` key; reads go on.
fn append_audit_tx(tx: &mut Transaction<'_>, records: &[AuditRecord]) -> Result<Vec<AuditEntry>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    tx.batch_execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")?;
    let head = tx.query_opt(
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
        &[],
    )?;
    let head: Option<(i64, String)> = head.map(|r| (r.get(0), r.get(1)));
    let entries = AuditEntry::chain(
        head.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
        records.iter().cloned(),
    );
    let insert = tx.prepare(
        "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )?;
    for e in &entries {
        tx.execute(
            &insert,
            &[
                &e.seq,
                &e.at_ms,
                &e.actor,
                &e.action,
                &e.subject,
                &e.detail,
                &e.prev_hash,
                &e.hash,
            ],
        )?;
    }
    Ok(entries)
}

fn checkpoint_row(r: &::postgres::Row) -> AuditCheckpoint {
    AuditCheckpoint {
        seq: r.get(0),
        hash: r.get(1),
        at_ms: r.get(2),
        public_key: r.get(3),
        signature: r.get(4),
    }
}

fn audit_row(r: &::postgres::Row) -> AuditEntry {
    audit_entry((
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
        r.get(7),
    ))
}

fn attachment_row(r: &::postgres::Row) -> Attachment {
    Attachment {
        id: r.get(0),
        alarm: r.get(1),
        at: Timestamp::from_unix_ms(r.get(2)),
        actor: r.get(3),
        name: r.get(4),
        content_type: r.get(5),
        sha256: r.get(6),
        size_bytes: r.get::<_, i64>(7) as u64,
    }
}

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgresql"
    }

    fn add_attachment(&mut self, meta: &Attachment, bytes: &[u8]) -> Result<Attachment> {
        let mut tx = self.client.transaction()?;
        let row = tx
            .query_opt(
                "SELECT state, outcome, transit, kind, grade::BIGINT FROM alarms WHERE id = $1 FOR UPDATE",
                &[&meta.alarm],
            )?
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)));
        let (ft, transit, fkind, doc) = attach_feed(row, meta)?;
        let size = bytes.len() as i64;
        let id: i64 = tx
            .query_one(
                "INSERT INTO alarm_attachments (alarm, at, actor, name, content_type, sha256, size_bytes, bytes)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[
                    &meta.alarm,
                    &meta.at.unix_ms(),
                    &meta.actor,
                    &meta.name,
                    &meta.content_type,
                    &meta.sha256,
                    &size,
                    &bytes,
                ],
            )?
            .get(0);
        tx.execute(
            "INSERT INTO alarm_history (alarm, at, actor, step, outcome, note) VALUES ($1, $2, $3, 'attach', NULL, $4)",
            &[&meta.alarm, &meta.at.unix_ms(), &meta.actor, &attach_note(meta)],
        )?;
        append_audit_tx(&mut tx, &[attach_audit(meta, &transit, bytes.len())])?;
        tx.execute(
            "INSERT INTO feed (t, transit, kind, doc) VALUES ($1, $2, $3, $4)",
            &[&ft, &transit, &fkind, &doc],
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
        let rows = self.client.query(
            "SELECT id, alarm, at, actor, name, content_type, sha256, size_bytes FROM alarm_attachments WHERE alarm = $1 ORDER BY id",
            &[&alarm],
        )?;
        Ok(rows.iter().map(attachment_row).collect())
    }

    fn attachment(&mut self, alarm: i64, id: i64) -> Result<(Attachment, Vec<u8>)> {
        let row = self.client.query_opt(
            "SELECT id, alarm, at, actor, name, content_type, sha256, size_bytes, bytes FROM alarm_attachments WHERE alarm = $1 AND id = $2",
            &[&alarm, &id],
        )?;
        let r = row.ok_or_else(|| Error::NotFound {
            what: "attachment",
            id: format!("{alarm}/{id}"),
        })?;
        Ok((attachment_row(&r), r.get(8)))
    }

    fn put_device_auth(&mut self, device: &str, code_hash: &str, at: Timestamp) -> Result<()> {
        self.client.execute(
            "INSERT INTO device_auth (device, code_hash, registered_at) VALUES ($1, $2, $3)
             ON CONFLICT (device) DO UPDATE SET code_hash = excluded.code_hash, registered_at = excluded.registered_at",
            &[&device, &code_hash, &at.unix_ms()],
        )?;
        Ok(())
    }

    fn device_auth(&mut self, device: &str) -> Result<String> {
        let row = self.client.query_opt(
            "SELECT code_hash FROM device_auth WHERE device = $1",
            &[&device],
        )?;
        row.map(|r| r.get(0)).ok_or_else(|| Error::NotFound {
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
        self.client.execute(
            "INSERT INTO device_keys (device, signing_public, agreement_public, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, NULL)
             ON CONFLICT (device) DO UPDATE SET signing_public = excluded.signing_public,
               agreement_public = excluded.agreement_public, created_at = excluded.created_at,
               revoked_at = NULL",
            &[&device, &signing_public, &agreement_public, &at.unix_ms()],
        )?;
        self.device_keys(device)
    }

    fn device_keys(&mut self, device: &str) -> Result<DeviceKeysRecord> {
        let row = self.client.query_opt(
            "SELECT device, signing_public, agreement_public, created_at, revoked_at
             FROM device_keys WHERE device = $1",
            &[&device],
        )?;
        let r = row.ok_or_else(|| Error::NotFound {
            what: "device keys",
            id: device.to_owned(),
        })?;
        Ok(DeviceKeysRecord {
            device: r.get(0),
            signing_public: r.get(1),
            agreement_public: r.get(2),
            created_at: Timestamp::from_unix_ms(r.get(3)),
            revoked_at: r.get::<_, Option<i64>>(4).map(Timestamp::from_unix_ms),
        })
    }

    fn revoke_device_keys(&mut self, device: &str, at: Timestamp) -> Result<DeviceKeysRecord> {
        self.client.execute(
            "UPDATE device_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE device = $1",
            &[&device, &at.unix_ms()],
        )?;
        self.device_keys(device)
    }

    fn list_device_keys(&mut self) -> Result<Vec<DeviceKeysRecord>> {
        let rows = self.client.query(
            "SELECT device, signing_public, agreement_public, created_at, revoked_at
             FROM device_keys ORDER BY device",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| DeviceKeysRecord {
                device: r.get(0),
                signing_public: r.get(1),
                agreement_public: r.get(2),
                created_at: Timestamp::from_unix_ms(r.get(3)),
                revoked_at: r.get::<_, Option<i64>>(4).map(Timestamp::from_unix_ms),
            })
            .collect())
    }

    fn insert_container_pairing(
        &mut self,
        container: &str,
        device: &str,
        kind: PairingKind,
        at: Timestamp,
    ) -> Result<ContainerPairing> {
        let row = self.client.query_one(
            "INSERT INTO container_pairings (container, device, kind, paired_at, unpaired_at)
             VALUES ($1, $2, $3, $4, NULL) RETURNING id",
            &[&container, &device, &kind.as_str(), &at.unix_ms()],
        )?;
        self.container_pairing(row.get(0))
    }

    fn end_container_pairing(&mut self, id: i64, at: Timestamp) -> Result<ContainerPairing> {
        self.client.execute(
            "UPDATE container_pairings SET unpaired_at = $2 WHERE id = $1",
            &[&id, &at.unix_ms()],
        )?;
        self.container_pairing(id)
    }

    fn container_pairings(&mut self, container: &str) -> Result<Vec<ContainerPairing>> {
        self.pairings_where("container = $1", &[&container])
    }

    fn device_pairings(&mut self, device: &str) -> Result<Vec<ContainerPairing>> {
        self.pairings_where("device = $1", &[&device])
    }

    fn container_pairings_at(
        &mut self,
        container: &str,
        t: Timestamp,
    ) -> Result<Vec<ContainerPairing>> {
        self.pairings_where(
            "container = $1 AND paired_at <= $2 AND (unpaired_at IS NULL OR $2 < unpaired_at)",
            &[&container, &t.unix_ms()],
        )
    }

    fn add_device_log(&mut self, entry: &DeviceLogEntry) -> Result<DeviceLogEntry> {
        let id: i64 = self
            .client
            .query_one(
                "INSERT INTO device_log (device, at, source, kind, text) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &entry.device,
                    &entry.at.unix_ms(),
                    &entry.source,
                    &entry.kind,
                    &entry.text,
                ],
            )?
            .get(0);
        Ok(DeviceLogEntry {
            id,
            ..entry.clone()
        })
    }

    fn device_log(&mut self, device: &str, page: PageRequest) -> Result<Vec<DeviceLogEntry>> {
        let rows = self.client.query(
            "SELECT id, device, at, source, kind, text FROM device_log
             WHERE device = $1 AND id > $2 ORDER BY id LIMIT $3",
            &[&device, &page.after.unwrap_or(0), &i64::from(page.limit)],
        )?;
        Ok(rows
            .iter()
            .map(|r| DeviceLogEntry {
                id: r.get(0),
                device: r.get(1),
                at: Timestamp::from_unix_ms(r.get(2)),
                source: r.get(3),
                kind: r.get(4),
                text: r.get(5),
            })
            .collect())
    }

    fn table_counts(&mut self) -> Result<Vec<(String, i64)>> {
        count_tables(&mut self.client)
    }

    fn put_reader_key(
        &mut self,
        reader: &str,
        public_key: &str,
        at: Timestamp,
    ) -> Result<ReaderKeyRecord> {
        self.client.execute(
            "INSERT INTO reader_keys (reader, public_key, created_at, revoked_at)
             VALUES ($1, $2, $3, NULL)
             ON CONFLICT (reader) DO UPDATE SET public_key = excluded.public_key,
               created_at = excluded.created_at, revoked_at = NULL",
            &[&reader, &public_key, &at.unix_ms()],
        )?;
        self.reader_key(reader)
    }

    fn reader_key(&mut self, reader: &str) -> Result<ReaderKeyRecord> {
        let row = self.client.query_opt(
            "SELECT reader, public_key, created_at, revoked_at FROM reader_keys WHERE reader = $1",
            &[&reader],
        )?;
        let r = row.ok_or_else(|| Error::NotFound {
            what: "reader key",
            id: reader.to_owned(),
        })?;
        Ok(ReaderKeyRecord {
            reader: r.get(0),
            public_key: r.get(1),
            created_at: Timestamp::from_unix_ms(r.get(2)),
            revoked_at: r.get::<_, Option<i64>>(3).map(Timestamp::from_unix_ms),
        })
    }

    fn revoke_reader_key(&mut self, reader: &str, at: Timestamp) -> Result<ReaderKeyRecord> {
        self.client.execute(
            "UPDATE reader_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE reader = $1",
            &[&reader, &at.unix_ms()],
        )?;
        self.reader_key(reader)
    }

    fn add_signed_read(&mut self, r: &SignedReadRecord) -> Result<Option<SignedReadRecord>> {
        let row = self.client.query_opt(
            "INSERT INTO signed_reads (reader, digest, public_key, signature, body, received_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (reader, digest) DO NOTHING RETURNING id",
            &[
                &r.reader,
                &r.digest,
                &r.public_key,
                &r.signature,
                &r.body,
                &r.received_at.unix_ms(),
            ],
        )?;
        Ok(row.map(|row| SignedReadRecord {
            id: row.get(0),
            ..r.clone()
        }))
    }

    fn signed_read(&mut self, reader: &str, digest: &str) -> Result<SignedReadRecord> {
        let row = self.client.query_opt(
            "SELECT id, reader, digest, public_key, signature, body, received_at FROM signed_reads
             WHERE reader = $1 AND digest = $2",
            &[&reader, &digest],
        )?;
        row.as_ref()
            .map(signed_read_row)
            .ok_or_else(|| Error::NotFound {
                what: "signed read",
                id: format!("{reader}/{digest}"),
            })
    }

    fn signed_reads(&mut self, reader: &str, page: PageRequest) -> Result<Vec<SignedReadRecord>> {
        let rows = self.client.query(
            "SELECT id, reader, digest, public_key, signature, body, received_at FROM signed_reads
             WHERE reader = $1 AND id > $2 ORDER BY id LIMIT $3",
            &[&reader, &page.after.unwrap_or(0), &i64::from(page.limit)],
        )?;
        Ok(rows.iter().map(signed_read_row).collect())
    }

    fn queue_command(&mut self, c: &DeviceCommand) -> Result<DeviceCommand> {
        let id: i64 = self
            .client
            .query_one(
                "INSERT INTO device_commands (device, transit, kind, args, created_at, actor, state)
                 VALUES ($1, $2, $3, $4, $5, $6, 'queued') RETURNING id",
                &[
                    &c.device,
                    &c.transit,
                    &c.kind.as_str(),
                    &serde_json::to_string(&c.args)?,
                    &c.created_at.unix_ms(),
                    &c.actor,
                ],
            )?
            .get(0);
        self.command(id)
    }

    fn command(&mut self, id: i64) -> Result<DeviceCommand> {
        let row = self.client.query_opt(
            &format!("SELECT {COMMAND_COLUMNS} FROM device_commands WHERE id = $1"),
            &[&id],
        )?;
        let row = row.ok_or_else(|| Error::NotFound {
            what: "command",
            id: id.to_string(),
        })?;
        command_row(&row).command()
    }

    fn pending_commands(&mut self, device: &str) -> Result<Vec<DeviceCommand>> {
        let rows = self.client.query(
            &format!(
                "SELECT {COMMAND_COLUMNS} FROM device_commands
                 WHERE device = $1 AND state = 'queued' ORDER BY id"
            ),
            &[&device],
        )?;
        rows.iter().map(|r| command_row(r).command()).collect()
    }

    fn unanswered_commands(&mut self, device: &str) -> Result<Vec<DeviceCommand>> {
        let rows = self.client.query(
            &format!(
                "SELECT {COMMAND_COLUMNS} FROM device_commands
                 WHERE device = $1 AND state IN ('queued', 'sent') ORDER BY id"
            ),
            &[&device],
        )?;
        rows.iter().map(|r| command_row(r).command()).collect()
    }

    fn mark_sent(&mut self, id: i64, at: Timestamp) -> Result<DeviceCommand> {
        let n = self.client.execute(
            "UPDATE device_commands SET state = 'sent', sent_at = $2 WHERE id = $1 AND state = 'queued'",
            &[&id, &at.unix_ms()],
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
        let n = self.client.execute(
            "UPDATE device_commands SET state = $2, result_at = $3, result = $4
             WHERE id = $1 AND state = $5",
            &[
                &id,
                &after.state.as_str(),
                &at.unix_ms(),
                &after.result,
                &from.as_str(),
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
        let rows = self.client.query(
            &format!(
                "SELECT {COMMAND_COLUMNS} FROM device_commands
                 WHERE {column} = $1 AND id > $2 ORDER BY id LIMIT $3"
            ),
            &[&key, &page.after.unwrap_or(0), &i64::from(page.limit)],
        )?;
        rows.iter().map(|r| command_row(r).command()).collect()
    }

    fn last_feed_id(&mut self) -> Result<i64> {
        Ok(self
            .client
            .query_one("SELECT COALESCE(MAX(id), 0)::BIGINT FROM feed", &[])?
            .get(0))
    }

    fn feed_after(&mut self, after: i64, limit: u32) -> Result<Vec<FeedItem>> {
        let rows = self.client.query(
            "SELECT id, t, transit, kind, doc FROM feed WHERE id > $1 ORDER BY id LIMIT $2",
            &[&after, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| feed_item(r.get(0), r.get(1), r.get(2), r.get(3), r.get::<_, &str>(4)))
            .collect()
    }

    fn put_token(&mut self, token: &ApiToken, secret_hash: &str) -> Result<()> {
        let n = self.client.execute(
            "INSERT INTO api_tokens (id, secret_hash, role, label, created_at, expires_at, revoked_at, organisation)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
            &[
                &token.id,
                &secret_hash,
                &token.role.as_str(),
                &token.label,
                &token.created_at.unix_ms(),
                &token.expires_at.map(Timestamp::unix_ms),
                &token.revoked_at.map(Timestamp::unix_ms),
                &token.organisation,
            ],
        )?;
        if n == 0 {
            return Err(Error::Conflict(format!("token {} exists", token.id)));
        }
        Ok(())
    }

    fn token(&mut self, id: &str) -> Result<(ApiToken, String)> {
        let row = self.client.query_opt(
            "SELECT id, role, label, created_at, expires_at, revoked_at, secret_hash, organisation FROM api_tokens WHERE id = $1",
            &[&id],
        )?;
        let Some(r) = row else {
            return Err(Error::NotFound {
                what: "token",
                id: id.to_owned(),
            });
        };
        let token = token_from_row(
            r.get(0),
            r.get::<_, &str>(1),
            r.get(2),
            (r.get(3), r.get(4), r.get(5)),
            r.get(7),
        )?;
        Ok((token, r.get(6)))
    }

    fn tokens(&mut self) -> Result<Vec<ApiToken>> {
        let rows = self.client.query(
            "SELECT id, role, label, created_at, expires_at, revoked_at, organisation FROM api_tokens ORDER BY created_at DESC, id",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                token_from_row(
                    r.get(0),
                    r.get::<_, &str>(1),
                    r.get(2),
                    (r.get(3), r.get(4), r.get(5)),
                    r.get(6),
                )
            })
            .collect()
    }

    fn revoke_token(&mut self, id: &str, at: Timestamp) -> Result<ApiToken> {
        self.client.execute(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
            &[&id, &at.unix_ms()],
        )?;
        Ok(self.token(id)?.0)
    }

    fn create_user(&mut self, user: &User) -> Result<User> {
        let row = self.client.query_opt(
            "INSERT INTO users (username, username_key, role, organisation, password_hash,
                 totp_secret, failed_logins, locked_until, created_at, disabled_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (username_key) DO NOTHING RETURNING id",
            &[
                &user.username,
                &username_key(&user.username),
                &user.role.as_str(),
                &user.organisation,
                &user.password_hash,
                &user.totp_secret,
                &i64::from(user.failed_logins),
                &user.locked_until.map(Timestamp::unix_ms),
                &user.created_at.unix_ms(),
                &user.disabled_at.map(Timestamp::unix_ms),
            ],
        )?;
        let Some(row) = row else {
            return Err(Error::Conflict(format!(
                "username: {:?} is taken",
                user.username
            )));
        };
        self.user(row.get(0))
    }

    fn user(&mut self, id: i64) -> Result<User> {
        let row = self.client.query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
            &[&id],
        )?;
        match row {
            Some(r) => user_from_row(user_row(&r)),
            None => Err(Error::NotFound {
                what: "user",
                id: id.to_string(),
            }),
        }
    }

    fn user_by_name(&mut self, username: &str) -> Result<User> {
        let row = self.client.query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE username_key = $1"),
            &[&username_key(username)],
        )?;
        match row {
            Some(r) => user_from_row(user_row(&r)),
            None => Err(Error::NotFound {
                what: "user",
                id: username.to_owned(),
            }),
        }
    }

    fn users(&mut self) -> Result<Vec<User>> {
        self.client
            .query(
                &format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"),
                &[],
            )?
            .iter()
            .map(|r| user_from_row(user_row(r)))
            .collect()
    }

    fn set_user_password(&mut self, id: i64, password_hash: &str) -> Result<User> {
        self.client.execute(
            "UPDATE users SET password_hash = $2, failed_logins = 0, locked_until = NULL WHERE id = $1",
            &[&id, &password_hash],
        )?;
        self.user(id)
    }

    fn set_user_totp(&mut self, id: i64, secret: Option<&str>) -> Result<User> {
        self.client.execute(
            "UPDATE users SET totp_secret = $2, totp_last_step = NULL WHERE id = $1",
            &[&id, &secret],
        )?;
        self.user(id)
    }

    fn take_totp_step(&mut self, id: i64, step: i64) -> Result<bool> {
        let n = self.client.execute(
            "UPDATE users SET totp_last_step = $2
             WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
            &[&id, &step],
        )?;
        Ok(n == 1)
    }

    fn set_user_lockout(
        &mut self,
        id: i64,
        failed_logins: u32,
        locked_until: Option<Timestamp>,
    ) -> Result<User> {
        self.client.execute(
            "UPDATE users SET failed_logins = $2, locked_until = $3 WHERE id = $1",
            &[
                &id,
                &i64::from(failed_logins),
                &locked_until.map(Timestamp::unix_ms),
            ],
        )?;
        self.user(id)
    }

    fn disable_user(&mut self, id: i64, at: Timestamp) -> Result<User> {
        let mut tx = self.client.transaction()?;
        tx.execute(
            "UPDATE users SET disabled_at = COALESCE(disabled_at, $2) WHERE id = $1",
            &[&id, &at.unix_ms()],
        )?;
        tx.execute(
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2) WHERE user_id = $1",
            &[&id, &at.unix_ms()],
        )?;
        tx.commit()?;
        self.user(id)
    }

    fn revoke_user_sessions(&mut self, user_id: i64, at: Timestamp) -> Result<()> {
        self.client.execute(
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2) WHERE user_id = $1",
            &[&user_id, &at.unix_ms()],
        )?;
        Ok(())
    }

    fn put_session(&mut self, session: &Session) -> Result<()> {
        let n = self.client.execute(
            &format!(
                "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (id_hash) DO NOTHING"
            ),
            &[
                &session.id_hash,
                &session.user_id,
                &session.csrf_hash,
                &session.created_at.unix_ms(),
                &session.last_seen_at.unix_ms(),
                &session.expires_at.unix_ms(),
                &session.revoked_at.map(Timestamp::unix_ms),
            ],
        )?;
        if n == 0 {
            return Err(Error::Conflict("session: the id is taken".into()));
        }
        Ok(())
    }

    fn session(&mut self, id_hash: &str) -> Result<Session> {
        let row = self.client.query_opt(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1"),
            &[&id_hash],
        )?;
        // The hash is not named: it is what stands for the cookie.
        row.map(|r| {
            let row: SessionRow = (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            );
            session_from_row(row)
        })
        .ok_or_else(|| Error::NotFound {
            what: "session",
            id: "(given)".into(),
        })
    }

    fn touch_session(&mut self, id_hash: &str, at: Timestamp) -> Result<()> {
        self.client.execute(
            "UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $2) WHERE id_hash = $1",
            &[&id_hash, &at.unix_ms()],
        )?;
        Ok(())
    }

    fn revoke_session(&mut self, id_hash: &str, at: Timestamp) -> Result<()> {
        self.client.execute(
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2) WHERE id_hash = $1",
            &[&id_hash, &at.unix_ms()],
        )?;
        Ok(())
    }

    fn put_zone(&mut self, zone: &Zone) -> Result<()> {
        self.client.execute(
            "INSERT INTO zones (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            &[&zone.id.as_str(), &serde_json::to_string(zone)?],
        )?;
        Ok(())
    }

    fn zones(&mut self) -> Result<Vec<Zone>> {
        let rows = self
            .client
            .query("SELECT doc FROM zones ORDER BY id", &[])?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(r.get::<_, &str>(0))?))
            .collect()
    }

    fn commit(&mut self, c: &Commit<'_>) -> Result<Vec<i64>> {
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
        let mut tx = self.client.transaction()?;
        // Observations, nearly all of a commit, go in one statement (arrays unnested in order):
        // one round trip for the lot instead of one per row.
        let (mut seqs, mut ts, mut devices, mut docs) = (
            Vec::with_capacity(c.inputs.len()),
            Vec::with_capacity(c.inputs.len()),
            Vec::with_capacity(c.inputs.len()),
            Vec::with_capacity(c.inputs.len()),
        );
        let mut others = None;
        for (seq, i) in c.inputs {
            if let LoggedInput::Observation { observation: o } = i {
                seqs.push(*seq);
                ts.push(o.t.unix_ms());
                devices.push(o.device.as_str());
                docs.push(serde_json::to_string(o)?);
                continue;
            }
            let (input, declare) = match &others {
                Some(statements) => statements,
                None => others.insert((
                    tx.prepare("INSERT INTO inputs (seq, t, kind, doc) VALUES ($1, $2, $3, $4)")?,
                    tx.prepare(
                        "INSERT INTO transits (id, device, state, declared_at, updated_at, doc) VALUES ($1, $2, $3, $4, $4, $5)
                         ON CONFLICT (id) DO NOTHING",
                    )?,
                )),
            };
            if let LoggedInput::Declare { at, transit } = i {
                let n = tx.execute(
                    declare,
                    &[
                        &transit.id.as_str(),
                        &transit.device.as_str(),
                        &transit_state_name(TransitState::Declared),
                        &at.unix_ms(),
                        &crate::sealed::transit_doc(ring, transit)?,
                    ],
                )?;
                if n == 0 {
                    return Err(Error::Conflict(format!(
                        "transit {} is already declared",
                        transit.id
                    )));
                }
                for d in &transit.devices {
                    tx.execute(
                        "INSERT INTO transit_devices (transit, device) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                        &[&transit.id.as_str(), &d.id.as_str()],
                    )?;
                }
            }
            tx.execute(
                input,
                &[
                    seq,
                    &i.t().unix_ms(),
                    &i.kind(),
                    &crate::sealed::input_doc(ring, i)?,
                ],
            )?;
        }
        if !seqs.is_empty() {
            tx.execute(
                "INSERT INTO observations (seq, t, device, doc)
                 SELECT seq, t, device, doc
                 FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[]) WITH ORDINALITY
                     AS o (seq, t, device, doc, n)
                 ORDER BY n",
                &[&seqs, &ts, &devices, &docs],
            )?;
        }
        let ids = insert_outputs(&mut tx, c.events, c.alarms)?;
        let feed = output_feed(c.events, c.alarms, &ids)?;
        if !feed.is_empty() {
            let ins =
                tx.prepare("INSERT INTO feed (t, transit, kind, doc) VALUES ($1, $2, $3, $4)")?;
            for (t, transit, kind, doc) in &feed {
                tx.execute(&ins, &[t, transit, kind, doc])?;
            }
        }
        // Devices' latest reports: gathered in memory, written once a period (see
        // `TELEMETRY_EVERY`), in the commit that ends it.
        let fresh = Telemetry::of(c.inputs);
        let flush = self.telemetry_since.elapsed() >= TELEMETRY_EVERY;
        if flush {
            update_devices(&mut tx, &Telemetry::merged(&self.telemetry, &fresh))?;
        }
        for (transit, device) in pairings(c) {
            tx.execute(
                "UPDATE transits SET device = $2, doc = jsonb_set(doc::jsonb, '{device}', to_jsonb($2::TEXT))::TEXT WHERE id = $1",
                &[&transit, &device],
            )?;
        }
        if !c.states.is_empty() {
            let st = tx.prepare("UPDATE transits SET state = $2, updated_at = $3 WHERE id = $1")?;
            for (id, state, at) in c.states {
                if tx.execute(
                    &st,
                    &[&id.as_str(), &transit_state_name(*state), &at.unix_ms()],
                )? == 0
                {
                    return Err(Error::NotFound {
                        what: "transit",
                        id: id.to_string(),
                    });
                }
            }
        }
        append_audit_tx(&mut tx, c.audit)?;
        tx.commit()?;
        // Only what is committed is kept for later.
        if flush {
            self.telemetry.clear();
            self.telemetry_since = std::time::Instant::now();
        } else {
            Telemetry::keep(&mut self.telemetry, fresh);
        }
        Ok(ids)
    }

    fn last_seq(&mut self) -> Result<i64> {
        Ok(self
            .client
            .query_one(
                "SELECT GREATEST(COALESCE((SELECT MAX(seq) FROM inputs), 0), COALESCE((SELECT MAX(seq) FROM observations), 0))::BIGINT",
                &[],
            )?
            .get(0))
    }

    fn inputs_after(&mut self, seq: i64, limit: u32) -> Result<Vec<(i64, LoggedInput)>> {
        let rows = self.client.query(
            "SELECT seq, 'o', doc FROM observations WHERE seq > $1
             UNION ALL SELECT seq, 'i', doc FROM inputs WHERE seq > $1
             ORDER BY 1 LIMIT $2",
            &[&seq, &i64::from(limit)],
        )?;
        let ring = self.keys.current()?;
        rows.iter()
            .map(|r| {
                let (seq, table, doc): (i64, &str, &str) = (r.get(0), r.get(1), r.get(2));
                let input = if table == "o" {
                    LoggedInput::Observation {
                        observation: serde_json::from_str(doc)?,
                    }
                } else {
                    crate::sealed::input_from_doc(ring, doc)?
                };
                Ok((seq, input))
            })
            .collect()
    }

    fn set_keys(&mut self, keys: crate::Keys) {
        self.keys = keys;
    }

    fn reseal(&mut self, cursor: &mut crate::ResealCursor, limit: u32) -> Result<u64> {
        let ring = self.keys.current()?;
        let mut tx = self.client.transaction()?;
        let mut rewritten = 0;
        let mut seen = 0;
        // FOR UPDATE: the service's writer cannot change a row between its read here and its
        // rewrite (it waits for this one short transaction).
        if cursor.transits_after >= 0 {
            let rows = tx.query(
                "SELECT n, doc FROM transits WHERE n > $1 ORDER BY n LIMIT $2 FOR UPDATE",
                &[&cursor.transits_after, &i64::from(limit)],
            )?;
            for r in &rows {
                let (n, doc): (i64, &str) = (r.get(0), r.get(1));
                if let Some(new) = crate::sealed::reseal_transit_doc(ring, doc)? {
                    tx.execute("UPDATE transits SET doc = $2 WHERE n = $1", &[&n, &new])?;
                    rewritten += 1;
                }
                cursor.transits_after = n;
            }
            seen = rows.len();
            if seen < limit as usize {
                // Transits done: -1 marks the phase over, inputs next.
                cursor.transits_after = -1;
            }
        }
        if cursor.transits_after < 0 && seen < limit as usize {
            let left = limit as usize - seen;
            let rows = tx.query(
                "SELECT seq, doc FROM inputs WHERE kind = 'declare' AND seq > $1 ORDER BY seq LIMIT $2 FOR UPDATE",
                &[&cursor.inputs_after, &(left as i64)],
            )?;
            for r in &rows {
                let (seq, doc): (i64, &str) = (r.get(0), r.get(1));
                if let Some(new) = crate::sealed::reseal_input_doc(ring, doc)? {
                    tx.execute("UPDATE inputs SET doc = $2 WHERE seq = $1", &[&seq, &new])?;
                    rewritten += 1;
                }
                cursor.inputs_after = seq;
            }
            cursor.done = rows.len() < left;
        }
        tx.commit()?;
        Ok(rewritten)
    }

    fn put_station(&mut self, station: &Station) -> Result<()> {
        self.client.execute(
            "INSERT INTO stations (id, zone, doc) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET zone = excluded.zone, doc = excluded.doc",
            &[
                &station.id.as_str(),
                &station.zone.as_str(),
                &serde_json::to_string(station)?,
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
        let mut tx = self.client.transaction()?;
        let before: Option<(String, Option<String>)> = tx
            .query_opt(
                "SELECT state, station FROM devices WHERE id = $1 FOR UPDATE",
                &[&device.id.as_str()],
            )?
            .map(|r| (r.get(0), r.get(1)));
        let station = device.station.as_ref().map(|s| s.as_str().to_owned());
        if before.as_ref() != Some(&(device.state.as_str().to_owned(), station.clone())) {
            tx.execute(
                "INSERT INTO device_states (device, at, from_state, to_state, station, cause)
                 VALUES ($1, $2, $3, $4, $5, 'registry')",
                &[
                    &device.id.as_str(),
                    &registered_at.unix_ms(),
                    &before.map(|(s, _)| s),
                    &device.state.as_str(),
                    &station,
                ],
            )?;
        }
        tx.execute(
            "INSERT INTO devices (id, kind, state, station, registered_at, doc) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, state = excluded.state,
               station = excluded.station, doc = excluded.doc",
            &[
                &device.id.as_str(),
                &device.kind.as_str(),
                &device.state.as_str(),
                &device.station.as_ref().map(|s| s.as_str()),
                &registered_at.unix_ms(),
                &serde_json::to_string(device)?,
            ],
        )?;
        tx.execute(
            "INSERT INTO device_telemetry (id, last_report_at, battery_pct) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET
               last_report_at = COALESCE(device_telemetry.last_report_at, excluded.last_report_at),
               battery_pct = COALESCE(device_telemetry.battery_pct, excluded.battery_pct)",
            &[
                &device.id.as_str(),
                &device.last_report_at.map(Timestamp::unix_ms),
                &device.battery_pct,
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn device(&mut self, id: &str) -> Result<DeviceRecord> {
        self.flush_telemetry()?;
        let row = self
            .client
            .query_opt(
                &format!(
                    "SELECT {} FROM {} WHERE d.id = $1",
                    DeviceRow::COLUMNS,
                    DeviceRow::TABLES
                ),
                &[&id],
            )?
            .ok_or_else(|| Error::NotFound {
                what: "device",
                id: id.to_owned(),
            })?;
        device_row(&row).record()
    }

    fn devices(
        &mut self,
        filter: &DeviceFilter,
        page: PageRequest,
    ) -> Result<Vec<(i64, DeviceRecord)>> {
        self.flush_telemetry()?;
        let rows = self.client.query(
            &format!(
                "SELECT {}, d.n FROM {}
                 WHERE ($1::TEXT IS NULL OR d.station = $1) AND ($2::TEXT IS NULL OR d.state = $2)
                   AND ($3::TEXT IS NULL OR d.kind = $3) AND d.n > $4
                 ORDER BY d.n LIMIT $5",
                DeviceRow::COLUMNS,
                DeviceRow::TABLES
            ),
            &[
                &filter.station.as_ref().map(|s| s.as_str()),
                &filter.state.map(|s| s.as_str()),
                &filter.kind.map(|k| k.as_str()),
                &page.after.unwrap_or(0),
                &i64::from(page.limit),
            ],
        )?;
        rows.iter()
            .map(|r| Ok((r.get(7), device_row(r).record()?)))
            .collect()
    }

    fn put_reader(&mut self, reader: &Reader) -> Result<()> {
        self.client.execute(
            "INSERT INTO readers (id, kind, station, zone, doc) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, station = excluded.station,
               zone = excluded.zone, doc = excluded.doc",
            &[
                &reader.id.as_str(),
                &wire_name(&reader.kind)?,
                &reader.station.as_ref().map(|s| s.as_str()),
                &reader.zone.as_ref().map(|z| z.as_str()),
                &serde_json::to_string(reader)?,
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
        let row = self.client.query_opt(
            "SELECT doc, state, declared_at, updated_at FROM transits WHERE id = $1",
            &[&id],
        )?;
        let r = row.ok_or_else(|| Error::NotFound {
            what: "transit",
            id: id.to_owned(),
        })?;
        stored(self.keys.current()?, r.get(0), r.get(1), r.get(2), r.get(3))
    }

    fn transits(
        &mut self,
        filter: &TransitFilter,
        page: PageRequest,
    ) -> Result<Vec<(i64, StoredTransit)>> {
        let (from, to) = filter.declared.bounds();
        let rows = self.client.query(
            "SELECT n, doc, state, declared_at, updated_at FROM transits
             WHERE ($1::TEXT IS NULL OR state = $1) AND declared_at >= $2 AND declared_at < $3 AND n > $4
             ORDER BY n LIMIT $5",
            &[
                &filter.state.map(transit_state_name),
                &from,
                &to,
                &page.after.unwrap_or(0),
                &i64::from(page.limit),
            ],
        )?;
        let ring = self.keys.current()?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.get(0),
                    stored(ring, r.get(1), r.get(2), r.get(3), r.get(4))?,
                ))
            })
            .collect()
    }

    fn transit_counts(&mut self) -> Result<Vec<(TransitState, u64)>> {
        let rows = self
            .client
            .query("SELECT state, COUNT(*) FROM transits GROUP BY state", &[])?;
        transit_counts(rows.iter().map(|r| (r.get(0), r.get(1))))
    }

    fn observations(
        &mut self,
        device: &str,
        range: TimeRange,
        limit: u32,
    ) -> Result<Vec<Observation>> {
        let (from, to) = range.bounds();
        // The indexed part (by device), then the tail of the log not yet indexed (by id).
        let rows = self.client.query(
            "SELECT doc FROM (
               (SELECT o.t, o.id, o.doc FROM observations_by_device d JOIN observations o ON o.id = d.id
                WHERE d.device = $3 AND d.t >= $1 AND d.t < $2
                ORDER BY d.t, d.id LIMIT $4)
               UNION ALL
               (SELECT t, id, doc FROM observations
                WHERE id > (SELECT indexed_up_to FROM observation_index) AND device = $3 AND t >= $1 AND t < $2)
             ) AS both_parts
             ORDER BY t, id LIMIT $4",
            &[&from, &to, &device, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(r.get::<_, &str>(0))?))
            .collect()
    }

    fn index_observations(&mut self, limit: u32) -> Result<u64> {
        // Called regularly by the writer: the telemetry's regular writing too.
        self.flush_telemetry()?;
        let mut tx = self.client.transaction()?;
        let from: i64 = tx
            .query_one(
                "SELECT indexed_up_to FROM observation_index FOR UPDATE",
                &[],
            )?
            .get(0);
        let last: i64 = tx
            .query_one("SELECT COALESCE(MAX(id), 0)::BIGINT FROM observations", &[])?
            .get(0);
        let to = last.min(from.saturating_add(i64::from(limit)));
        if to <= from {
            return Ok(0);
        }
        // Sorted by the key: each page of the index is written once for all its rows.
        let n = tx.execute(
            "INSERT INTO observations_by_device (device, t, id)
             SELECT device, t, id FROM observations WHERE id > $1 AND id <= $2 ORDER BY device, t, id",
            &[&from, &to],
        )?;
        tx.execute("UPDATE observation_index SET indexed_up_to = $1", &[&to])?;
        tx.commit()?;
        Ok(n)
    }

    fn last_observation_time(&mut self) -> Result<Option<Timestamp>> {
        let t: Option<i64> = self
            .client
            .query_one("SELECT MAX(t) FROM observations", &[])?
            .get(0);
        Ok(t.map(Timestamp::from_unix_ms))
    }

    fn purge_observations(
        &mut self,
        before: Timestamp,
        after: i64,
        span: u32,
    ) -> Result<(u64, Option<i64>)> {
        let mut tx = self.client.transaction()?;
        let row = tx.query_one(
            "SELECT COALESCE(MIN(id), 1)::BIGINT, COALESCE(MAX(id), 0)::BIGINT FROM observations",
            &[],
        )?;
        let (oldest, newest): (i64, i64) = (row.get(0), row.get(1));
        // Ids below the oldest left are gone already: no step is spent on them.
        let after = after.max(oldest - 1);
        let upto = newest.min(after.saturating_add(i64::from(span)));
        // The same rows twice in one transaction: their index entries, then themselves.
        const PURGEABLE: &str = "SELECT o.device, o.t, o.id FROM observations o
                WHERE o.id > $2 AND o.id <= $3 AND o.id < $4 AND o.t < $1
                  AND NOT EXISTS (SELECT 1 FROM transits tr WHERE tr.device = o.device AND tr.state <> 'closed')
                  AND NOT EXISTS (SELECT 1 FROM transit_devices td JOIN transits tr ON tr.id = td.transit
                                  WHERE td.device = o.device AND tr.state <> 'closed')";
        let params: [&(dyn ::postgres::types::ToSql + Sync); 4] =
            [&before.unix_ms(), &after, &upto, &newest];
        tx.execute(
            &format!("DELETE FROM observations_by_device WHERE (device, t, id) IN ({PURGEABLE})"),
            &params,
        )?;
        let deleted: Vec<i64> = tx
            .query(
                &format!(
                    "DELETE FROM observations WHERE id IN (SELECT id FROM ({PURGEABLE}) AS p) RETURNING id"
                ),
                &params,
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let n = deleted.len() as u64;
        log_retention(&mut tx, "observations", crate::retention::DELETED, deleted)?;
        tx.commit()?;
        Ok((n, (upto < newest).then_some(upto)))
    }

    fn put_decision(&mut self, d: &crate::DecisionRecord) -> Result<crate::DecisionRecord> {
        let n = self.client.execute(
            "INSERT INTO decisions (transit, at, actor, proposed, score, decided, overridden, reason, proposal)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (transit) DO NOTHING",
            &[
                &d.transit,
                &d.at.unix_ms(),
                &d.actor,
                &d.proposed.as_str(),
                &i64::from(d.score),
                &d.decided.as_str(),
                &d.overridden,
                &d.reason,
                &d.proposal.to_string(),
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
            .client
            .query_opt(
                &format!(
                    "SELECT {} FROM decisions WHERE transit = $1",
                    crate::DECISION_COLUMNS
                ),
                &[&transit],
            )?
            .ok_or_else(|| Error::NotFound {
                what: "decision of transit",
                id: transit.to_owned(),
            })?;
        crate::decision_from_row((
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
            row.get(6),
            row.get(7),
            row.get(8),
            row.get(9),
            row.get(10),
            row.get(11),
            row.get(12),
        ))
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
        self.client.execute(
            "UPDATE decisions SET inspection_found = $2, inspection_note = $3, inspection_at = $4
             WHERE transit = $1 AND inspection_found IS NULL",
            &[&transit, &result.found, &result.note, &result.at.unix_ms()],
        )?;
        self.decision(transit)
    }

    fn decision_stats(&mut self, range: TimeRange) -> Result<risk::DecisionStats> {
        let (from, to) = range.bounds();
        let row = self.client.query_one(
            "SELECT COUNT(*)::BIGINT,
                    COUNT(*) FILTER (WHERE decided = 'release')::BIGINT,
                    COUNT(*) FILTER (WHERE decided = 'inspect')::BIGINT,
                    COUNT(*) FILTER (WHERE overridden)::BIGINT,
                    COUNT(inspection_found)::BIGINT,
                    COUNT(*) FILTER (WHERE inspection_found)::BIGINT
             FROM decisions WHERE at >= $1 AND at < $2",
            &[&from, &to],
        )?;
        let n = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
        Ok(risk::DecisionStats {
            decisions: n(0),
            released: n(1),
            inspected: n(2),
            overrides: n(3),
            inspections_with_result: n(4),
            inspections_finding: n(5),
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
        let record = |row: ::postgres::Row| risk::Record {
            transits: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
            violations: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
        };
        let by_carrier = match carrier {
            Some(c) => Some(record(self.client.query_one(
                &format!(
                    "SELECT COUNT(*)::BIGINT, COUNT(*) FILTER (WHERE {VIOLATED})::BIGINT FROM transits t
                     WHERE t.declared_at >= $1 AND t.id <> $2
                       AND (t.doc::jsonb #>> '{{declaration,carrier}}') = $3"
                ),
                &[&since.unix_ms(), &except, &c],
            )?)),
            None => None,
        };
        let by_route = match route {
            Some((from, to)) => Some(record(self.client.query_one(
                &format!(
                    "SELECT COUNT(*)::BIGINT, COUNT(*) FILTER (WHERE {VIOLATED})::BIGINT FROM transits t
                     WHERE t.declared_at >= $1 AND t.id <> $2
                       AND (t.doc::jsonb ->> 'departure') = $3
                       AND (t.doc::jsonb ->> 'destination') = $4"
                ),
                &[&since.unix_ms(), &except, &from, &to],
            )?)),
            None => None,
        };
        Ok((by_carrier, by_route))
    }

    fn gate_outcomes(&mut self) -> Result<(u64, u64)> {
        let row = self.client.query_one(
            "WITH gated AS (
               SELECT transit, kind FROM events
               WHERE kind = 'gate_hold'
                  OR (kind = 'unseal_authorized' AND (doc::jsonb ->> 'reader') IS NOT NULL))
             SELECT COUNT(DISTINCT transit) FILTER (WHERE kind = 'unseal_authorized')::BIGINT,
                    COUNT(DISTINCT transit) FILTER (WHERE kind = 'gate_hold' AND transit NOT IN (
                      SELECT transit FROM gated WHERE kind = 'unseal_authorized'))::BIGINT
             FROM gated",
            &[],
        )?;
        Ok((
            u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
            u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
        ))
    }

    fn device_history(
        &mut self,
        device: &str,
        limit: u32,
    ) -> Result<Vec<crate::DeviceStateChange>> {
        let rows = self.client.query(
            "SELECT id, device, at, from_state, to_state, station, cause FROM device_states
             WHERE device = $1 ORDER BY id LIMIT $2",
            &[&device, &i64::from(limit)],
        )?;
        Ok(rows
            .iter()
            .map(|r| crate::DeviceStateChange {
                id: r.get(0),
                device: r.get(1),
                at: Timestamp::from_unix_ms(r.get(2)),
                from_state: r.get(3),
                to_state: r.get(4),
                station: r.get(5),
                cause: r.get(6),
            })
            .collect())
    }

    fn device_state_entries(&mut self, range: TimeRange) -> Result<Vec<(String, u64)>> {
        let (from, to) = range.bounds();
        let rows = self.client.query(
            "SELECT to_state, COUNT(*)::BIGINT FROM device_states WHERE at >= $1 AND at < $2
             GROUP BY to_state ORDER BY to_state",
            &[&from, &to],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), u64::try_from(r.get::<_, i64>(1)).unwrap_or(0)))
            .collect())
    }

    fn zone_flows(&mut self, since: Timestamp) -> Result<Vec<crate::ZoneFlow>> {
        let rows = self.client.query(
            "SELECT z, d, SUM(dep)::BIGINT, SUM(arr)::BIGINT FROM (
               SELECT (doc::jsonb ->> 'departure') AS z, declared_at / 86400000 AS d, 1 AS dep, 0 AS arr
                 FROM transits WHERE declared_at >= $1
               UNION ALL
               SELECT (t.doc::jsonb ->> 'destination'), e.t / 86400000, 0, 1
                 FROM events e JOIN transits t ON t.id = e.transit
                 WHERE e.kind = 'arrived' AND e.t >= $1
             ) f WHERE z IS NOT NULL GROUP BY z, d",
            &[&since.unix_ms()],
        )?;
        Ok(crate::zone_flows(
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))),
        ))
    }

    fn erase_personal_data(
        &mut self,
        closed_before: Timestamp,
        at: Timestamp,
        limit: u32,
    ) -> Result<Vec<String>> {
        let mut tx = self.client.transaction()?;
        // FOR UPDATE: the writer cannot change a row between its read here and its rewrite.
        let rows = tx.query(
            "SELECT id, doc FROM transits
             WHERE state = 'closed' AND personal_erased_at IS NULL AND updated_at < $1
             ORDER BY updated_at LIMIT $2 FOR UPDATE",
            &[&closed_before.unix_ms(), &i64::from(limit)],
        )?;
        let mut ids: Vec<String> = Vec::with_capacity(rows.len());
        for r in &rows {
            let (id, doc): (String, &str) = (r.get(0), r.get(1));
            let erased = crate::retention::erase_transit_doc(doc)?;
            tx.execute(
                "UPDATE transits SET personal_erased_at = $2, doc = COALESCE($3, doc) WHERE id = $1",
                &[&id, &at.unix_ms(), &erased],
            )?;
            ids.push(id);
        }
        if !ids.is_empty() {
            let inputs = tx.query(
                "SELECT seq, doc FROM inputs WHERE kind = 'declare'
                   AND (doc::jsonb -> 'transit' ->> 'id') = ANY($1) FOR UPDATE",
                &[&ids],
            )?;
            let mut erased_seqs = Vec::new();
            for r in &inputs {
                let (seq, doc): (i64, &str) = (r.get(0), r.get(1));
                if let Some(new) = crate::retention::erase_input_doc(doc)? {
                    tx.execute("UPDATE inputs SET doc = $2 WHERE seq = $1", &[&seq, &new])?;
                    erased_seqs.push(seq);
                }
            }
            log_retention(
                &mut tx,
                "inputs",
                crate::retention::ERASED_IN_PLACE,
                erased_seqs,
            )?;
        }
        tx.commit()?;
        Ok(ids)
    }

    fn purge_attachments(&mut self, closed_before: Timestamp, limit: u32) -> Result<u64> {
        let mut tx = self.client.transaction()?;
        let deleted: Vec<i64> = tx
            .query(
                "DELETE FROM alarm_attachments WHERE id IN (
                   SELECT f.id FROM alarm_attachments f JOIN alarms a ON a.id = f.alarm
                   WHERE a.state = 'closed' AND a.updated_at < $1 ORDER BY f.id LIMIT $2)
                 RETURNING id",
                &[&closed_before.unix_ms(), &i64::from(limit)],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let n = deleted.len() as u64;
        log_retention(
            &mut tx,
            "alarm_attachments",
            crate::retention::DELETED,
            deleted,
        )?;
        tx.commit()?;
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
        let rows = self.client.query(
            "SELECT id, doc FROM events WHERE transit = $1 AND t >= $2 AND t < $3
               AND ($4::BIGINT IS NULL OR (t, id) > (SELECT t, id FROM events WHERE id = $4))
             ORDER BY t, id LIMIT $5",
            &[&transit, &from, &to, &page.after, &i64::from(page.limit)],
        )?;
        rows.iter()
            .map(|r| Ok((r.get(0), serde_json::from_str(r.get::<_, &str>(1))?)))
            .collect()
    }

    fn alarm(&mut self, id: i64) -> Result<AlarmRecord> {
        let row = self.client.query_opt(
            "SELECT doc, state, outcome FROM alarms WHERE id = $1",
            &[&id],
        )?;
        let r = row.ok_or_else(|| Error::NotFound {
            what: "alarm",
            id: id.to_string(),
        })?;
        let (doc, state, outcome): (String, String, Option<String>) =
            (r.get(0), r.get(1), r.get(2));
        self.record(id, &doc, &state, outcome.as_deref())
    }

    fn alarms(&mut self, f: &AlarmFilter, page: PageRequest) -> Result<Vec<AlarmRecord>> {
        let (from, to) = f.range.bounds();
        let rows = self.client.query(
            "SELECT id, doc, state, outcome FROM alarms
             WHERE t >= $1 AND t < $2 AND ($3::TEXT IS NULL OR state = $3) AND ($4::TEXT IS NULL OR kind = $4)
               AND grade >= $5 AND ($6::TEXT IS NULL OR transit = $6) AND id > $7
             ORDER BY id LIMIT $8",
            &[
                &from,
                &to,
                &f.state,
                &f.kind.map(|k| k.as_str()),
                &i64::from(f.min_grade.unwrap_or(0)),
                &f.transit,
                &page.after.unwrap_or(0),
                &i64::from(page.limit),
            ],
        )?;
        let rows: Vec<(i64, String, String, Option<String>)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        rows.iter()
            .map(|(id, doc, state, outcome)| self.record(*id, doc, state, outcome.as_deref()))
            .collect()
    }

    fn alarm_counts(&mut self, range: TimeRange) -> Result<Vec<AlarmCount>> {
        let (from, to) = range.bounds();
        let rows = self.client.query(
            &format!(
                "SELECT {SQL_DAY}, kind, grade, COUNT(*) FROM alarms WHERE t >= $1 AND t < $2 GROUP BY 1, 2, 3"
            ),
            &[&from, &to],
        )?;
        alarm_counts(
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))),
        )
    }

    fn append_audit(&mut self, records: &[AuditRecord]) -> Result<Vec<AuditEntry>> {
        let mut tx = self.client.transaction()?;
        let entries = append_audit_tx(&mut tx, records)?;
        tx.commit()?;
        Ok(entries)
    }

    fn audit_entries(&mut self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows = self.client.query(
            &format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"),
            &[&after, &i64::from(limit)],
        )?;
        Ok(rows.iter().map(audit_row).collect())
    }

    fn audit_head(&mut self) -> Result<Option<AuditEntry>> {
        let row = self.client.query_opt(
            &format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT 1"),
            &[],
        )?;
        Ok(row.as_ref().map(audit_row))
    }

    fn add_audit_checkpoint(&mut self, c: &AuditCheckpoint) -> Result<()> {
        self.client.execute(
            "INSERT INTO audit_checkpoints (seq, hash, at, public_key, signature) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (seq) DO NOTHING",
            &[&c.seq, &c.hash, &c.at_ms, &c.public_key, &c.signature],
        )?;
        Ok(())
    }

    fn audit_checkpoints(&mut self) -> Result<Vec<AuditCheckpoint>> {
        let rows = self.client.query(
            "SELECT seq, hash, at, public_key, signature FROM audit_checkpoints ORDER BY seq",
            &[],
        )?;
        Ok(rows.iter().map(checkpoint_row).collect())
    }

    fn last_audit_checkpoint(&mut self) -> Result<Option<AuditCheckpoint>> {
        let row = self.client.query_opt(
            "SELECT seq, hash, at, public_key, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
            &[],
        )?;
        Ok(row.as_ref().map(checkpoint_row))
    }

    fn handle_alarm(
        &mut self,
        id: i64,
        step: AlarmStep,
        actor: &str,
        at: Timestamp,
        note: Option<&str>,
    ) -> Result<AlarmRecord> {
        let mut tx = self.client.transaction()?;
        // FOR UPDATE: two officers acting on one alarm at once take turns.
        let row = tx.query_opt(
            "SELECT state, outcome, transit, kind, grade::BIGINT FROM alarms WHERE id = $1 FOR UPDATE",
            &[&id],
        )?;
        let r = row.ok_or_else(|| Error::NotFound {
            what: "alarm",
            id: id.to_string(),
        })?;
        let (state, outcome): (String, Option<String>) = (r.get(0), r.get(1));
        let t = transition(&state, outcome.as_deref(), step)?;
        tx.execute(
            "UPDATE alarms SET state = $2, outcome = $3, updated_at = $4 WHERE id = $1",
            &[&id, &t.next.as_str(), &t.next_outcome, &at.unix_ms()],
        )?;
        tx.execute(
            "INSERT INTO alarm_history (alarm, at, actor, step, outcome, note) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&id, &at.unix_ms(), &actor, &t.step_text, &t.step_outcome, &note],
        )?;
        let (ft, transit, fkind, doc) = step_feed(
            id,
            r.get(2),
            r.get::<_, &str>(3),
            r.get(4),
            &t,
            actor,
            at,
            note,
        )?;
        append_audit_tx(&mut tx, &[step_audit(id, &transit, &t, actor, at)])?;
        tx.execute(
            "INSERT INTO feed (t, transit, kind, doc) VALUES ($1, $2, $3, $4)",
            &[&ft, &transit, &fkind, &doc],
        )?;
        tx.commit()?;
        self.alarm(id)
    }
}

/// Reads the columns of [`COMMAND_COLUMNS`].
fn command_row(r: &::postgres::Row) -> CommandRow {
    CommandRow {
        id: r.get(0),
        device: r.get(1),
        transit: r.get(2),
        kind: r.get(3),
        args: r.get(4),
        created_at: r.get(5),
        actor: r.get(6),
        state: r.get(7),
        sent_at: r.get(8),
        result_at: r.get(9),
        result: r.get(10),
    }
}

fn signed_read_row(r: &::postgres::Row) -> SignedReadRecord {
    SignedReadRecord {
        id: r.get(0),
        reader: r.get(1),
        digest: r.get(2),
        public_key: r.get(3),
        signature: r.get(4),
        body: r.get(5),
        received_at: Timestamp::from_unix_ms(r.get(6)),
    }
}

impl PgStore {
    fn container_pairing(&mut self, id: i64) -> Result<ContainerPairing> {
        self.pairings_where("id = $1", &[&id])?
            .pop()
            .ok_or_else(|| Error::NotFound {
                what: "container pairing",
                id: id.to_string(),
            })
    }

    fn pairings_where(
        &mut self,
        condition: &str,
        args: &[&(dyn ::postgres::types::ToSql + Sync)],
    ) -> Result<Vec<ContainerPairing>> {
        let rows = self.client.query(
            &format!(
                "SELECT {PAIRING_COLUMNS} FROM container_pairings WHERE {condition} ORDER BY paired_at, id"
            ),
            args,
        )?;
        rows.into_iter()
            .map(|r| pairing_from_row((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))))
            .collect()
    }
}

/// Rows per table of the current schema, by name.
fn count_tables(c: &mut impl ::postgres::GenericClient) -> Result<Vec<(String, i64)>> {
    let names: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
             ORDER BY table_name",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    names
        .into_iter()
        .map(|name| {
            // The name comes from the catalog; quoted all the same.
            let sql = format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\""));
            let n: i64 = c.query_one(&sql, &[])?.get(0);
            Ok((name, n))
        })
        .collect()
}

/// A `users` row, as [`user_from_row`] takes it.
fn user_row(r: &::postgres::Row) -> UserRow {
    (
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
        r.get(7),
        r.get(8),
        r.get(9),
    )
}

/// Records in `retention_log` what retention did to rows of an append-only log, as runs of
/// keys (an incremental backup's restore does the same to its base).
fn log_retention(
    tx: &mut ::postgres::Transaction<'_>,
    table: &str,
    action: &str,
    keys: Vec<i64>,
) -> Result<()> {
    for (lo, hi) in crate::retention::runs(keys) {
        tx.execute(
            "INSERT INTO retention_log (tbl, action, key_lo, key_hi) VALUES ($1, $2, $3, $4)",
            &[&table, &action, &lo, &hi],
        )?;
    }
    Ok(())
}

/// Moves the registered devices of an event's transit along with it; see the SQLite store's
/// function of the same name.
fn device_follows_transit(
    tx: &mut Transaction<'_>,
    e: &Event,
    to: model::DeviceState,
) -> Result<()> {
    let mut devices = vec![e.device.as_str().to_owned()];
    if crate::moves_every_device(e.event) {
        let more: Vec<String> = tx
            .query(
                "SELECT device FROM transit_devices WHERE transit = $1 ORDER BY device",
                &[&e.transit.as_str()],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        devices.extend(more.into_iter().filter(|d| d != e.device.as_str()));
    }
    for device in &devices {
        move_device(tx, e, device, to)?;
    }
    Ok(())
}

/// Moves one registered device with its transit's event.
fn move_device(
    tx: &mut Transaction<'_>,
    e: &Event,
    device: &str,
    to: model::DeviceState,
) -> Result<()> {
    let Some((from, at_station)): Option<(String, Option<String>)> = tx
        .query_opt(
            "SELECT state, station FROM devices WHERE id = $1 FOR UPDATE",
            &[&device],
        )?
        .map(|r| (r.get(0), r.get(1)))
    else {
        return Ok(());
    };
    if !crate::follows_transits(&from) {
        return Ok(());
    }
    let (to, station): (model::DeviceState, Option<String>) = if to == model::DeviceState::InStock {
        let station: Option<String> = tx
            .query_opt(
                "SELECT s.id FROM transits t JOIN stations s ON s.zone = (t.doc::jsonb ->> 'destination')
                 WHERE t.id = $1 ORDER BY s.id LIMIT 1",
                &[&e.transit.as_str()],
            )?
            .map(|r| r.get(0));
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
            "UPDATE devices SET state = $2, station = $3,
               doc = jsonb_set(jsonb_set(doc::jsonb, '{state}', to_jsonb($2::TEXT)), '{station}', to_jsonb($3::TEXT))::TEXT
             WHERE id = $1",
            &[&device, &to.as_str(), s],
        )?,
        None => tx.execute(
            "UPDATE devices SET state = $2, doc = jsonb_set(doc::jsonb, '{state}', to_jsonb($2::TEXT))::TEXT
             WHERE id = $1",
            &[&device, &to.as_str()],
        )?,
    };
    let kind = serde_json::to_value(e.event)?;
    tx.execute(
        "INSERT INTO device_states (device, at, from_state, to_state, station, cause)
         VALUES ($1, $2, $3, $4, (SELECT station FROM devices WHERE id = $1), $5)",
        &[
            &device,
            &e.t.unix_ms(),
            &from,
            &to.as_str(),
            &format!(
                "transit {} {}",
                e.transit.as_str(),
                kind.as_str().unwrap_or_default()
            ),
        ],
    )?;
    Ok(())
}
