//! The baseline: plain inserts of the same observation rows (the same JSON documents, the same
//! columns and indexes as the `observations` table) with the same driver and the same statement
//! as the store (SQLite: one prepared `INSERT` per row; PostgreSQL: one `INSERT ... SELECT FROM
//! UNNEST` of the rows as arrays), into a scratch table, in transactions of the size the
//! pipeline committed. What is left between this and the
//! pipeline's figure is what HTTP, validation, supervision and the writer cost.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::fleet::{Device, Fleet};

/// Where the scratch table goes.
#[derive(Debug)]
pub enum Target<'a> {
    /// The service's own SQLite file (the service is stopped by then), WAL, `synchronous=FULL`.
    Sqlite(&'a Path),
    /// The run's PostgreSQL schema.
    Postgres { url: &'a str, schema: &'a str },
}

#[derive(Debug)]
pub struct Figures {
    pub rows: u64,
    pub seconds: f64,
    pub rows_per_tx: usize,
}

impl Figures {
    pub fn rate(&self) -> f64 {
        self.rows as f64 / self.seconds.max(1e-9)
    }
}

struct Row {
    seq: i64,
    t: i64,
    device: String,
    doc: String,
}

/// The rows, a transaction's worth at a time, in the order the devices report (round robin).
struct Rows<'a> {
    fleet: &'a Fleet,
    devices: Vec<Device>,
    next: usize,
    seq: i64,
    text: String,
}

impl Rows<'_> {
    fn fill(&mut self, n: usize, out: &mut Vec<Row>) -> Result<()> {
        out.clear();
        while out.len() < n {
            let len = self.devices.len();
            let d = &mut self.devices[self.next];
            self.next = (self.next + 1) % len;
            self.text.clear();
            if self.fleet.next_report(d, &mut self.text).is_none() {
                break;
            }
            // The document exactly as the store writes it: the parsed report, serialised.
            let o: model::Observation = serde_json::from_str(&self.text)?;
            self.seq += 1;
            out.push(Row {
                seq: self.seq,
                t: o.t.unix_ms(),
                device: o.device.as_str().to_owned(),
                doc: serde_json::to_string(&o)?,
            });
        }
        Ok(())
    }
}

/// Inserts up to `max_rows` rows (for at most `limit` of insert time) in transactions of
/// `rows_per_tx`; only the transactions are timed, not making the rows.
pub fn run(
    target: &Target<'_>,
    fleet: &Fleet,
    max_rows: u64,
    rows_per_tx: usize,
    limit: Duration,
) -> Result<Figures> {
    let mut rows = Rows {
        fleet,
        devices: (0..fleet.shape.transits as u32)
            .map(|i| fleet.device(i))
            .collect(),
        next: 0,
        seq: 0,
        text: String::new(),
    };
    let mut batch = Vec::with_capacity(rows_per_tx);
    let mut done = 0u64;
    let mut spent = Duration::ZERO;
    let mut insert = inserter(target)?;
    while done < max_rows && spent < limit {
        rows.fill(rows_per_tx.min((max_rows - done) as usize), &mut batch)?;
        if batch.is_empty() {
            break;
        }
        let start = Instant::now();
        insert(&batch)?;
        spent += start.elapsed();
        done += batch.len() as u64;
    }
    Ok(Figures {
        rows: done,
        seconds: spent.as_secs_f64(),
        rows_per_tx,
    })
}

type Insert = Box<dyn FnMut(&[Row]) -> Result<()>>;

fn inserter(target: &Target<'_>) -> Result<Insert> {
    Ok(match *target {
        Target::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.execute_batch(
                "DROP TABLE IF EXISTS loadgen_baseline;
                 CREATE TABLE loadgen_baseline (
                     id     INTEGER PRIMARY KEY,
                     seq    INTEGER NOT NULL,
                     t      INTEGER NOT NULL,
                     device TEXT NOT NULL,
                     doc    TEXT NOT NULL
                 );
                 CREATE INDEX loadgen_baseline_t ON loadgen_baseline (t);
                 CREATE INDEX loadgen_baseline_seq ON loadgen_baseline (seq);",
            )?;
            let mut conn = conn;
            Box::new(move |rows: &[Row]| {
                let tx = conn.transaction()?;
                {
                    let mut st = tx.prepare_cached(
                        "INSERT INTO loadgen_baseline (seq, t, device, doc) VALUES (?1, ?2, ?3, ?4)",
                    )?;
                    for r in rows {
                        st.execute(rusqlite::params![r.seq, r.t, r.device, r.doc])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
        }
        Target::Postgres { url, schema } => {
            let mut client = postgres::Client::connect(url, postgres::NoTls)?;
            client.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema};
                 SET search_path TO {schema};
                 DROP TABLE IF EXISTS loadgen_baseline;
                 CREATE TABLE loadgen_baseline (
                     id     BIGSERIAL PRIMARY KEY,
                     seq    BIGINT NOT NULL,
                     t      BIGINT NOT NULL,
                     device TEXT NOT NULL,
                     doc    TEXT NOT NULL
                 );
                 CREATE INDEX loadgen_baseline_t ON loadgen_baseline (t);
                 CREATE INDEX loadgen_baseline_seq ON loadgen_baseline (seq);"
            ))?;
            Box::new(move |rows: &[Row]| {
                // The store's own statement: the rows as arrays, unnested in order.
                let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
                let ts: Vec<i64> = rows.iter().map(|r| r.t).collect();
                let devices: Vec<&str> = rows.iter().map(|r| r.device.as_str()).collect();
                let docs: Vec<&str> = rows.iter().map(|r| r.doc.as_str()).collect();
                let mut tx = client.transaction()?;
                tx.execute(
                    "INSERT INTO loadgen_baseline (seq, t, device, doc)
                     SELECT seq, t, device, doc
                     FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[]) WITH ORDINALITY
                         AS o (seq, t, device, doc, n)
                     ORDER BY n",
                    &[&seqs, &ts, &devices, &docs],
                )?;
                tx.commit()?;
                Ok(())
            })
        }
    })
}
