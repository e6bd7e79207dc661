//! `sealwatch backup` and `sealwatch restore`: consistent online backups with a manifest of
//! hashes and row counts, and a restore that checks the manifest before it touches anything
//! and the row counts after (docs/security.md, "Backup and restore").
//!
//! - SQLite: `VACUUM INTO` takes one read transaction's view of the whole database into a new,
//!   compact file while the service keeps writing.
//! - PostgreSQL: `pg_dump --format=custom` of sealwatch's schema, run inside an exported
//!   snapshot that the manifest's row counts are taken in too, so both see the same moment.
//!   Needs `pg_dump` and `pg_restore` (the PostgreSQL client tools) on the PATH.
//!
//! A backup directory holds the data file and `manifest.json`. The manifest names the format,
//! the backend, when the backup was taken, every file with its size and SHA-256, and the row
//! count of every table. Restore refuses a backup whose files do not match their manifest, and
//! a target that already holds data unless `--replace` is given; after restoring, every
//! table's row count must equal the manifest's.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a manifest says it is.
pub const FORMAT: &str = "sealwatch-backup";
/// The manifest's version.
pub const VERSION: u32 = 1;
const MANIFEST: &str = "manifest.json";
const SQLITE_FILE: &str = "sealwatch.db";
const PG_FILE: &str = "sealwatch.pgdump";
const SQLITE_INCREMENT: &str = "sealwatch.increment.db";

/// A file of the backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub kind: String,
    /// `sqlite` or `postgresql`.
    pub backend: String,
    /// PostgreSQL: the schema the data was in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub created_at: model::Timestamp,
    pub files: Vec<FileEntry>,
    /// Rows per table, at the moment of the backup.
    pub tables: std::collections::BTreeMap<String, i64>,
    /// The highest key of each append-only log at the moment of the backup: where the next
    /// incremental backup starts.
    #[serde(default)]
    pub high_water: std::collections::BTreeMap<String, i64>,
    /// An incremental backup: the SHA-256 of its base's `manifest.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

/// Why a backup or restore failed: bad input (exit 2) or the operation itself (exit 1).
#[derive(Debug)]
pub enum Failure {
    Input(String),
    Failed(String),
}

fn failed(what: impl std::fmt::Display) -> Failure {
    Failure::Failed(what.to_string())
}

/// Where the data is: the embedded database's file, or a PostgreSQL URL and schema.
#[derive(Clone, Debug)]
pub enum Target {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

impl Target {
    pub fn of(config: &server::Config) -> Target {
        match &config.database_url {
            Some(url) => Target::Postgres {
                url: url.clone(),
                schema: config
                    .database_schema
                    .clone()
                    .unwrap_or_else(|| "public".into()),
            },
            None => Target::Sqlite(config.data_dir.join(SQLITE_FILE)),
        }
    }
}

fn sha256_of(path: &Path) -> Result<(u64, String), Failure> {
    let mut file =
        std::fs::File::open(path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| failed(format!("{}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, sealproto::to_hex(&hasher.finalize())))
}

fn run(command: &mut Command, what: &str) -> Result<(), Failure> {
    let out = command.output().map_err(|e| {
        failed(format!(
            "{what}: cannot run it ({e}); are the PostgreSQL client tools installed?"
        ))
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failed(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Takes a full backup of `target` into the new directory `out`.
pub fn backup(target: &Target, out: &Path) -> Result<Manifest, Failure> {
    if out.exists() {
        return Err(Failure::Input(format!(
            "out: {} exists; a backup goes into a new directory",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| failed(format!("{}: {e}", out.display())))?;
    let (backend, schema, file, tables, marks) = match target {
        Target::Sqlite(db) => {
            if !db.exists() {
                return Err(Failure::Input(format!(
                    "data-dir: no database at {}",
                    db.display()
                )));
            }
            let file = out.join(SQLITE_FILE);
            store::SqliteStore::open(db)
                .and_then(|s| s.snapshot_into(&file))
                .map_err(failed)?;
            // Counted in the copy itself: exactly what the backup holds.
            let tables = {
                let mut copy = store::SqliteStore::open(&file).map_err(failed)?;
                store::Store::table_counts(&mut copy).map_err(failed)?
            };
            let marks = store::incremental::sqlite_high_water(&file).map_err(failed)?;
            for extra in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(out.join(format!("{SQLITE_FILE}{extra}")));
            }
            ("sqlite", None, SQLITE_FILE, tables, marks)
        }
        Target::Postgres { url, schema } => {
            let mut pg = store::PgStore::connect_in_schema(url, schema).map_err(failed)?;
            let file = out.join(PG_FILE);
            let (tables, marks, dumped) = pg
                .with_exported_snapshot(|snapshot| {
                    run(
                        Command::new("pg_dump")
                            .arg("--format=custom")
                            .arg("--no-owner")
                            .arg(format!("--schema={schema}"))
                            .arg(format!("--snapshot={snapshot}"))
                            .arg("--file")
                            .arg(&file)
                            .arg(format!("--dbname={url}")),
                        "pg_dump",
                    )
                })
                .map_err(failed)?;
            dumped?;
            ("postgresql", Some(schema.clone()), PG_FILE, tables, marks)
        }
    };
    let (bytes, sha256) = sha256_of(&out.join(file))?;
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        kind: "full".into(),
        backend: backend.into(),
        schema,
        created_at: server::wall_clock(),
        files: vec![FileEntry {
            name: file.into(),
            bytes,
            sha256,
        }],
        tables: tables.into_iter().collect(),
        high_water: marks,
        base: None,
    };
    write_manifest(out, &manifest)?;
    Ok(manifest)
}

fn write_manifest(out: &Path, manifest: &Manifest) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(manifest).map_err(failed)?;
    std::fs::write(out.join(MANIFEST), text + "\n")
        .map_err(|e| failed(format!("{}: {e}", out.display())))
}

/// The SHA-256 of a backup's `manifest.json`, as an increment names its base.
fn manifest_sha256(dir: &Path) -> Result<String, Failure> {
    Ok(sha256_of(&dir.join(MANIFEST))?.1)
}

fn file_entry(dir: &Path, name: &str) -> Result<FileEntry, Failure> {
    let (bytes, sha256) = sha256_of(&dir.join(name))?;
    Ok(FileEntry {
        name: name.to_owned(),
        bytes,
        sha256,
    })
}

/// Takes an incremental backup of `target` into the new directory `out`: the rows the
/// append-only logs gained since the backup in `base` (full or incremental), and the current
/// rows of the tables that change in place.
pub fn backup_incremental(target: &Target, base: &Path, out: &Path) -> Result<Manifest, Failure> {
    let base_manifest = check(base)?;
    let base_sha = manifest_sha256(base)?;
    if out.exists() {
        return Err(Failure::Input(format!(
            "out: {} exists; a backup goes into a new directory",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| failed(format!("{}: {e}", out.display())))?;
    let (backend, schema, increment, files) = match target {
        Target::Sqlite(db) => {
            if base_manifest.backend != "sqlite" {
                return Err(Failure::Input(
                    "incremental-from: not a backup of a SQLite store".into(),
                ));
            }
            let file = out.join(SQLITE_INCREMENT);
            let increment = store::incremental::sqlite_export(db, &file, &base_manifest.high_water)
                .map_err(failed)?;
            ("sqlite", None, increment, vec![SQLITE_INCREMENT.to_owned()])
        }
        Target::Postgres { url, schema } => {
            if base_manifest.backend != "postgresql"
                || base_manifest.schema.as_deref() != Some(schema)
            {
                return Err(Failure::Input(format!(
                    "incremental-from: not a backup of the PostgreSQL schema {schema}"
                )));
            }
            let mut pg = store::PgStore::connect_in_schema(url, schema).map_err(failed)?;
            let (increment, files) =
                store::incremental::pg_export(pg.client(), out, &base_manifest.high_water)
                    .map_err(failed)?;
            ("postgresql", Some(schema.clone()), increment, files)
        }
    };
    let files = files
        .iter()
        .map(|name| file_entry(out, name))
        .collect::<Result<Vec<_>, _>>()?;
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        kind: "incremental".into(),
        backend: backend.into(),
        schema,
        created_at: server::wall_clock(),
        files,
        tables: increment.tables,
        high_water: increment.high_water,
        base: Some(base_sha),
    };
    write_manifest(out, &manifest)?;
    Ok(manifest)
}

/// Reads a backup's manifest and checks every file it names against it.
pub fn check(from: &Path) -> Result<Manifest, Failure> {
    let path = from.join(MANIFEST);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::Input(format!("from: {}: {e}", path.display())))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| Failure::Input(format!("{}: not a backup manifest: {e}", path.display())))?;
    if manifest.format != FORMAT || manifest.version != VERSION {
        return Err(Failure::Input(format!(
            "{}: format {} version {}, expected {FORMAT} version {VERSION}",
            path.display(),
            manifest.format,
            manifest.version
        )));
    }
    for f in &manifest.files {
        if f.name.contains('/') || f.name.contains('\\') || f.name.starts_with('.') {
            return Err(Failure::Input(format!(
                "{}: file name {:?} is not a plain name",
                path.display(),
                f.name
            )));
        }
        let (bytes, sha256) = sha256_of(&from.join(&f.name))?;
        if bytes != f.bytes || sha256 != f.sha256 {
            return Err(failed(format!(
                "{}: does not match the manifest ({bytes} bytes, SHA-256 {sha256}; the manifest says {} bytes, {}): the backup is damaged or altered",
                from.join(&f.name).display(),
                f.bytes,
                f.sha256
            )));
        }
    }
    Ok(manifest)
}

/// Restores the backup in `from` into `target`, checking it first; with `replace`, data
/// already at the target is set aside (SQLite: renamed) or dropped (PostgreSQL schema).
pub fn restore(from: &[PathBuf], target: &Target, replace: bool) -> Result<Manifest, Failure> {
    let (first, increments) = from
        .split_first()
        .ok_or_else(|| Failure::Input("from: no backup given".into()))?;
    // Every backup checked, and the chain of bases, before anything is touched.
    let manifest = check(first)?;
    if manifest.kind != "full" {
        return Err(Failure::Input(format!(
            "from: {} is an incremental backup; the first --from is a full one",
            first.display()
        )));
    }
    let mut previous = (first.clone(), manifest.clone());
    let mut chain = Vec::new();
    for dir in increments {
        let m = check(dir)?;
        let base = manifest_sha256(&previous.0)?;
        if m.kind != "incremental" || m.base.as_deref() != Some(base.as_str()) {
            return Err(Failure::Input(format!(
                "from: {} is not an increment of {} (give the backups in the order they were taken)",
                dir.display(),
                previous.0.display()
            )));
        }
        if m.backend != manifest.backend || m.schema != manifest.schema {
            return Err(Failure::Input(format!(
                "from: {} is of another store than {}",
                dir.display(),
                first.display()
            )));
        }
        chain.push((dir.clone(), m.clone()));
        previous = (dir.clone(), m);
    }
    let from = first.as_path();
    let file = manifest
        .files
        .first()
        .ok_or_else(|| Failure::Input("the manifest names no file".into()))?;
    // Built where the service does not look (SQLite: a file beside the target; PostgreSQL: the
    // target schema, dropped again on failure), applied, counted and its audit chain verified,
    // and only then put in place: a backup whose chain does not verify is never restored.
    // PostgreSQL: the schema the restore replaced, set aside under this name.
    let mut pg_aside: Option<String> = None;
    let staged = match (target, manifest.backend.as_str()) {
        (Target::Sqlite(db), "sqlite") => {
            if db.exists() && !replace {
                return Err(Failure::Input(format!(
                    "{} exists; restore into an empty data directory, or give --replace to set it aside",
                    db.display()
                )));
            }
            if let Some(dir) = db.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| failed(format!("{}: {e}", dir.display())))?;
            }
            let partial = db.with_extension("db.restoring");
            std::fs::copy(from.join(&file.name), &partial)
                .map_err(|e| failed(format!("{}: {e}", partial.display())))?;
            Target::Sqlite(partial)
        }
        (Target::Postgres { url, schema }, "postgresql") => {
            if manifest.schema.as_deref() != Some(schema.as_str()) {
                return Err(Failure::Input(format!(
                    "the backup is of schema {:?}; the target is schema {schema:?} (store.database_schema)",
                    manifest.schema.as_deref().unwrap_or("?")
                )));
            }
            let tables = store::PgStore::tables_in_schema(url, schema).map_err(failed)?;
            if tables > 0 && !replace {
                return Err(Failure::Input(format!(
                    "schema {schema} holds {tables} tables; restore into an empty schema, or give --replace to drop it first"
                )));
            }
            // The schema it replaces is set aside (renamed), not dropped: a restore that fails
            // puts it back, one that succeeds leaves it beside, as SQLite's file is. An empty
            // one left behind is dropped. The dump creates its schema; `public` is the
            // database's own and is made again, empty.
            if tables > 0 {
                let aside = format!(
                    "{}_replaced_{}",
                    &schema[..schema.len().min(30)],
                    server::wall_clock().unix_ms()
                );
                store::PgStore::rename_schema(url, schema, &aside).map_err(failed)?;
                pg_aside = Some(aside);
            } else {
                store::PgStore::drop_schema(url, schema).map_err(failed)?;
            }
            if schema == "public" {
                store::PgStore::create_schema(url, schema).map_err(failed)?;
            }
            let restored = run(
                Command::new("pg_restore")
                    .arg("--no-owner")
                    .arg("--exit-on-error")
                    .arg(format!("--dbname={url}"))
                    .arg(from.join(&file.name)),
                "pg_restore",
            );
            if let Err(e) = restored {
                put_back(url, schema, pg_aside.as_deref());
                return Err(e);
            }
            target.clone()
        }
        (_, backend) => {
            return Err(Failure::Input(format!(
                "the backup is of a {backend} store; the target is not"
            )));
        }
    };
    let checked = apply_and_check(&staged, &chain, &previous.1);
    match (checked, &staged, target) {
        (Ok(()), Target::Sqlite(partial), Target::Sqlite(db)) => {
            std::fs::File::open(partial)
                .and_then(|f| f.sync_all())
                .map_err(|e| failed(format!("{}: {e}", partial.display())))?;
            if db.exists() {
                let aside =
                    db.with_extension(format!("db.replaced-{}", server::wall_clock().unix_ms()));
                std::fs::rename(db, &aside)
                    .map_err(|e| failed(format!("{}: {e}", db.display())))?;
                for extra in ["-wal", "-shm"] {
                    let p = PathBuf::from(format!("{}{extra}", db.display()));
                    if p.exists() {
                        let _ = std::fs::rename(&p, format!("{}{extra}", aside.display()));
                    }
                }
            }
            std::fs::rename(partial, db).map_err(|e| failed(format!("{}: {e}", db.display())))?;
        }
        (Ok(()), _, _) => {}
        (Err(e), Target::Sqlite(partial), _) => {
            let _ = std::fs::remove_file(partial);
            return Err(e);
        }
        (Err(e), Target::Postgres { url, schema }, _) => {
            // Nothing half-restored is left for a service to start on, and what was there is
            // back.
            put_back(url, schema, pg_aside.as_deref());
            return Err(e);
        }
    }
    if let Some(aside) = pg_aside {
        eprintln!("the schema this restore replaced is kept as {aside}; drop it once satisfied");
    }
    Ok(previous.1)
}

/// After a failed PostgreSQL restore: drops what it restored and renames the schema it set
/// aside back (best effort: a failure here is reported, the aside schema stays for an
/// operator).
fn put_back(url: &str, schema: &str, aside: Option<&str>) {
    if let Err(e) = store::PgStore::drop_schema(url, schema) {
        eprintln!("error: cannot drop the failed restore's schema {schema}: {e}");
        return;
    }
    match aside {
        Some(aside) => {
            if let Err(e) = store::PgStore::rename_schema(url, aside, schema) {
                eprintln!(
                    "error: cannot rename {aside} back to {schema}: {e}; it is intact under that name"
                );
            }
        }
        None if schema == "public" => {
            let _ = store::PgStore::create_schema(url, schema);
        }
        None => {}
    }
}

/// Applies the increments to the staged restore, then checks it: every table as many rows as
/// the last manifest says, and the audit chain intact (hash links and signed checkpoints).
fn apply_and_check(
    staged: &Target,
    chain: &[(PathBuf, Manifest)],
    last: &Manifest,
) -> Result<(), Failure> {
    for (dir, m) in chain {
        match staged {
            Target::Sqlite(db) => {
                store::incremental::sqlite_apply(db, &dir.join(SQLITE_INCREMENT)).map_err(failed)?
            }
            Target::Postgres { url, schema } => {
                let mut pg = store::PgStore::connect_in_schema(url, schema).map_err(failed)?;
                let files: Vec<String> = m.files.iter().map(|f| f.name.clone()).collect();
                store::incremental::pg_apply(pg.client(), dir, &files).map_err(failed)?;
            }
        }
    }
    let mut store: Box<dyn store::Store> = match staged {
        Target::Sqlite(db) => Box::new(store::SqliteStore::open(db).map_err(failed)?),
        Target::Postgres { url, schema } => {
            Box::new(store::PgStore::connect_in_schema(url, schema).map_err(failed)?)
        }
    };
    // Every table as many rows as the last manifest says (the per-device index, kept as the
    // full backup had it, catches up by itself).
    let counts: std::collections::BTreeMap<String, i64> =
        store.table_counts().map_err(failed)?.into_iter().collect();
    for (table, want) in &last.tables {
        if !chain.is_empty() && store::incremental::AS_IN_BASE.contains(&table.as_str()) {
            continue;
        }
        let got = counts.get(table).copied().unwrap_or(-1);
        if got != *want {
            return Err(failed(format!(
                "after the restore, table {table} holds {got} rows; the manifest says {want}"
            )));
        }
    }
    match crate::audit_cmd::check_chain(&mut *store, None, Vec::new()) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(failed(format!("cannot read the restored audit chain: {e}"))),
        Err(problem) => Err(Failure::Input(format!(
            "the backup's audit chain is NOT intact ({problem}); nothing was restored"
        ))),
    }
}
