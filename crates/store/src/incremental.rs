//! Incremental backups (docs/security.md, "Backup and restore"): the rows the append-only logs
//! gained since a previous backup, and the current rows of the small tables that change in
//! place, taken in one read transaction; and applying them on top of a restored backup.
//!
//! Tables fall in three classes. The append-only logs only ever gain rows with a growing key:
//! an increment carries the rows above the previous backup's high-water mark. The per-device
//! index is derived from the observation log (the writer copies it in batches and catches up
//! by itself), so it is left as it was in the base. Every other table is small and changes in
//! place (transits' states, alarms, the registry, keys, tokens, users): an increment carries
//! all its rows, which replace the base's.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use rusqlite::{Connection, params};

use crate::{Error, Result};

/// The append-only logs and the key that grows with each row.
pub const APPEND_ONLY: &[(&str, &str)] = &[
    ("inputs", "seq"),
    ("observations", "id"),
    ("events", "id"),
    ("feed", "id"),
    ("alarm_history", "id"),
    ("alarm_attachments", "id"),
    ("audit_log", "seq"),
    ("audit_checkpoints", "seq"),
    ("signed_reads", "id"),
    ("device_log", "id"),
    ("retention_log", "id"),
    ("device_states", "id"),
];

/// Tables an increment leaves as the base had them: derived ones, and the schema's version.
pub const AS_IN_BASE: &[&str] = &[
    "observations_by_device",
    "observation_index",
    "schema_version",
];

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A row of `retention_log`: table, action, first and last key.
type Taken = (String, String, i64, i64);

/// The table and key a `retention_log` row names, checked: only an append-only log, and only
/// the `inputs` log is erased in place (a backup is checked against its manifest before it is
/// applied, but a name still never reaches SQL unchecked).
fn retention_target(table: &str, action: &str) -> Result<(String, &'static str)> {
    let key = key_of(table)
        .ok_or_else(|| Error::Conflict(format!("retention_log names {table:?}, not a log")))?;
    match action {
        crate::retention::DELETED => {}
        crate::retention::ERASED_IN_PLACE if table == "inputs" => {}
        _ => {
            return Err(Error::Conflict(format!(
                "retention_log: {action:?} on {table:?} is not something retention does"
            )));
        }
    }
    Ok((quoted(table), key))
}

fn key_of(table: &str) -> Option<&'static str> {
    APPEND_ONLY
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, k)| *k)
}

/// What an increment holds: rows per table after it is applied, and the new high-water marks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Increment {
    pub tables: BTreeMap<String, i64>,
    pub high_water: BTreeMap<String, i64>,
}

/// The high-water marks of the append-only logs, as `c` sees them (PostgreSQL).
pub fn pg_high_water(c: &mut impl postgres::GenericClient) -> Result<BTreeMap<String, i64>> {
    let mut marks = BTreeMap::new();
    for (table, key) in APPEND_ONLY {
        let q = quoted(table);
        let top: i64 = c
            .query_one(
                &format!("SELECT COALESCE(MAX({key}), 0)::BIGINT FROM {q}"),
                &[],
            )?
            .get(0);
        marks.insert((*table).to_owned(), top);
    }
    Ok(marks)
}

/// The high-water marks of the append-only logs of the SQLite database `db`.
pub fn sqlite_high_water(db: &Path) -> Result<BTreeMap<String, i64>> {
    let conn = Connection::open(db)?;
    let mut marks = BTreeMap::new();
    for (table, key) in APPEND_ONLY {
        let q = quoted(table);
        let top: i64 = conn.query_row(
            &format!("SELECT COALESCE(MAX({key}), 0) FROM {q}"),
            [],
            |r| r.get(0),
        )?;
        marks.insert((*table).to_owned(), top);
    }
    Ok(marks)
}

fn sqlite_tables(conn: &Connection, schema: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ))?;
    let names = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(names)
}

/// SQLite: writes into the new file `out` the rows of `db` an increment above `high_water`
/// carries, in one read transaction of `db`, and returns the counts and marks of that moment.
pub fn sqlite_export(
    db: &Path,
    out: &Path,
    high_water: &BTreeMap<String, i64>,
) -> Result<Increment> {
    let target = out
        .to_str()
        .ok_or_else(|| Error::Conflict(format!("{}: not a UTF-8 path", out.display())))?;
    let mut conn = Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.execute("ATTACH DATABASE ?1 AS inc", params![target])?;
    let tx = conn.transaction()?;
    let mut increment = Increment::default();
    for table in sqlite_tables(&tx, "main")? {
        let q = quoted(&table);
        let count: i64 =
            tx.query_row(&format!("SELECT COUNT(*) FROM main.{q}"), [], |r| r.get(0))?;
        increment.tables.insert(table.clone(), count);
        if AS_IN_BASE.contains(&table.as_str()) {
            continue;
        }
        match key_of(&table) {
            Some(key) => {
                let from = high_water.get(&table).copied().unwrap_or(0);
                tx.execute(
                    &format!("CREATE TABLE inc.{q} AS SELECT * FROM main.{q} WHERE {key} > ?1"),
                    params![from],
                )?;
                let top: i64 = tx.query_row(
                    &format!("SELECT COALESCE(MAX({key}), 0) FROM main.{q}"),
                    [],
                    |r| r.get(0),
                )?;
                increment.high_water.insert(table, top.max(from));
            }
            None => {
                tx.execute(
                    &format!("CREATE TABLE inc.{q} AS SELECT * FROM main.{q}"),
                    [],
                )?;
            }
        }
    }
    tx.commit()?;
    conn.execute("DETACH DATABASE inc", [])?;
    Ok(increment)
}

/// SQLite: applies the increment in `inc` to the database `db` in one transaction.
pub fn sqlite_apply(db: &Path, inc: &Path) -> Result<()> {
    let source = inc
        .to_str()
        .ok_or_else(|| Error::Conflict(format!("{}: not a UTF-8 path", inc.display())))?;
    let mut conn = Connection::open(db)?;
    // Rows come back in the order that suits the copy, not the references': checked as a
    // whole by the row counts afterwards.
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    conn.execute("ATTACH DATABASE ?1 AS inc", params![source])?;
    let tx = conn.transaction()?;
    let tables = sqlite_tables(&tx, "inc")?;
    for table in &tables {
        let q = quoted(table);
        if key_of(table).is_none() {
            tx.execute(&format!("DELETE FROM main.{q}"), [])?;
        }
        tx.execute(&format!("INSERT INTO main.{q} SELECT * FROM inc.{q}"), [])?;
    }
    if tables.iter().any(|t| t == "retention_log") {
        let taken: Vec<Taken> = tx
            .prepare("SELECT tbl, action, key_lo, key_hi FROM inc.retention_log ORDER BY id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (table, action, lo, hi) in &taken {
            let (q, key) = retention_target(table, action)?;
            if action == crate::retention::DELETED {
                tx.execute(
                    &format!("DELETE FROM main.{q} WHERE {key} BETWEEN ?1 AND ?2"),
                    params![lo, hi],
                )?;
                continue;
            }
            let rows: Vec<(i64, String)> = tx
                .prepare(&format!(
                    "SELECT {key}, doc FROM main.{q} WHERE {key} BETWEEN ?1 AND ?2"
                ))?
                .query_map(params![lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (k, doc) in rows {
                if let Some(new) = crate::retention::erase_input_doc(&doc)? {
                    tx.execute(
                        &format!("UPDATE main.{q} SET doc = ?2 WHERE {key} = ?1"),
                        params![k, new],
                    )?;
                }
            }
        }
        if taken.iter().any(|(t, ..)| t == "observations") {
            // The per-device index is as the base had it: its entries of deleted reports go.
            tx.execute(
                "DELETE FROM main.observations_by_device WHERE NOT EXISTS
                   (SELECT 1 FROM main.observations o WHERE o.id = observations_by_device.id)",
                [],
            )?;
        }
    }
    tx.commit()?;
    conn.execute("DETACH DATABASE inc", [])?;
    Ok(())
}

/// PostgreSQL: writes one `COPY` text file per table into the directory `out` (named
/// `<table>.copy`), in one repeatable-read transaction; returns the file names beside the
/// counts and marks.
pub fn pg_export(
    client: &mut postgres::Client,
    out: &Path,
    high_water: &BTreeMap<String, i64>,
) -> Result<(Increment, Vec<String>)> {
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let tables: Vec<String> = tx
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
             ORDER BY table_name",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut increment = Increment::default();
    let mut files = Vec::new();
    for table in tables {
        let q = quoted(&table);
        let count: i64 = tx
            .query_one(&format!("SELECT COUNT(*) FROM {q}"), &[])?
            .get(0);
        increment.tables.insert(table.clone(), count);
        if AS_IN_BASE.contains(&table.as_str()) {
            continue;
        }
        let select = match key_of(&table) {
            Some(key) => {
                let from = high_water.get(&table).copied().unwrap_or(0);
                let top: i64 = tx
                    .query_one(
                        &format!("SELECT COALESCE(MAX({key}), 0)::BIGINT FROM {q}"),
                        &[],
                    )?
                    .get(0);
                increment.high_water.insert(table.clone(), top.max(from));
                format!("SELECT * FROM {q} WHERE {key} > {from} ORDER BY {key}")
            }
            None => format!("SELECT * FROM {q}"),
        };
        let name = format!("{table}.copy");
        let mut file = std::fs::File::create(out.join(&name))
            .map_err(|e| Error::Conflict(format!("{}: {e}", out.join(&name).display())))?;
        let mut reader = tx.copy_out(&format!("COPY ({select}) TO STDOUT"))?;
        std::io::copy(&mut reader, &mut file)
            .map_err(|e| Error::Conflict(format!("{name}: {e}")))?;
        file.flush()
            .map_err(|e| Error::Conflict(format!("{name}: {e}")))?;
        files.push(name);
    }
    tx.commit()?;
    Ok((increment, files))
}

/// PostgreSQL: applies the `COPY` files in `dir` (as `pg_export` named them) in one
/// transaction, then sets every sequence past the ids it now holds. Reference checks are off
/// for the transaction (`session_replication_role = replica`, which needs a superuser or the
/// database's owner with that right): the rows come back in the order that suits the copy, and
/// the row counts are checked afterwards.
pub fn pg_apply(client: &mut postgres::Client, dir: &Path, files: &[String]) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.batch_execute("SET LOCAL session_replication_role = replica")?;
    let retention_mark: i64 = if files.iter().any(|f| f == "retention_log.copy") {
        tx.query_one(
            "SELECT COALESCE(MAX(id), 0)::BIGINT FROM retention_log",
            &[],
        )?
        .get(0)
    } else {
        0
    };
    for name in files {
        let table = name
            .strip_suffix(".copy")
            .ok_or_else(|| Error::Conflict(format!("{name}: not a table copy")))?;
        let q = quoted(table);
        if key_of(table).is_none() {
            tx.batch_execute(&format!("DELETE FROM {q}"))?;
        }
        let data = std::fs::read(dir.join(name))
            .map_err(|e| Error::Conflict(format!("{}: {e}", dir.join(name).display())))?;
        let mut writer = tx.copy_in(&format!("COPY {q} FROM STDIN"))?;
        writer
            .write_all(&data)
            .map_err(|e| Error::Conflict(format!("{name}: {e}")))?;
        writer.finish()?;
    }
    if files.iter().any(|f| f == "retention_log.copy") {
        // The increment's rows of the log are those above the base's mark, copied just now.
        let taken: Vec<Taken> = tx
            .query(
                "SELECT tbl, action, key_lo, key_hi FROM retention_log WHERE id > $1 ORDER BY id",
                &[&retention_mark],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        for (table, action, lo, hi) in &taken {
            let (q, key) = retention_target(table, action)?;
            if action == crate::retention::DELETED {
                tx.execute(
                    &format!("DELETE FROM {q} WHERE {key} BETWEEN $1 AND $2"),
                    &[lo, hi],
                )?;
                continue;
            }
            let rows: Vec<(i64, String)> = tx
                .query(
                    &format!("SELECT {key}, doc FROM {q} WHERE {key} BETWEEN $1 AND $2"),
                    &[lo, hi],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            for (k, doc) in rows {
                if let Some(new) = crate::retention::erase_input_doc(&doc)? {
                    tx.execute(
                        &format!("UPDATE {q} SET doc = $2 WHERE {key} = $1"),
                        &[&k, &new],
                    )?;
                }
            }
        }
        if taken.iter().any(|(t, ..)| t == "observations") {
            tx.batch_execute(
                "DELETE FROM observations_by_device d WHERE NOT EXISTS
                   (SELECT 1 FROM observations o WHERE o.id = d.id)",
            )?;
        }
    }
    let serials: Vec<(String, String)> = tx
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%'",
            &[],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (table, column) in serials {
        let q = quoted(&table);
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX({column}) FROM {q}), 0) + 1, false)"
            ),
            &[&table, &column],
        )?;
    }
    tx.commit()?;
    Ok(())
}
