//! Encryption at rest (issue 5): the personal and confidential fields of a transit never reach
//! the database in clear once a key is configured, on both backends, checked on the raw bytes.
//! SQLite always; PostgreSQL when `TEST_DATABASE_URL` names a database.

use model::{Timestamp, Transit};
use store::{Commit, KeyRing, Keys, LoggedInput, PgStore, ResealCursor, SqliteStore, Store};

const NAME: &str = "Zhao Xiaoming";
const CONSIGNEE: &str = "Ningbo Confidential Trading Co";
const INVOICE: &str = "INV-2026-77123";
const KEY1: [u8; 32] = [0x11; 32];
const KEY2: [u8; 32] = [0x22; 32];

fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn ring(text: &[(&str, [u8; 32])]) -> Keys {
    let text: String = text
        .iter()
        .map(|(id, key)| format!("{id} {}\n", hex(key)))
        .collect();
    Keys::ring(KeyRing::parse(&text).unwrap())
}

fn transit(id: &str, driver: &str) -> Transit {
    serde_json::from_value(serde_json::json!({
        "id": id, "device": format!("D-{id}"),
        "driver": {"nationality": "CN", "name": driver, "contact": "+86 571 5555 0101"},
        "cargo": [
            {"type": "textiles", "quantity": 10, "unit": "PCE", "consignee": CONSIGNEE},
            {"type": "shoes", "quantity": 5, "unit": "PCE", "consignor": "Yiwu Exporter Ltd"}
        ],
        "declaration": {"number": format!("DEC-{id}"), "documents": [{"kind": "invoice", "reference": INVOICE}]}
    }))
    .unwrap()
}

fn declare(s: &mut dyn Store, seq: i64, tr: &Transit) -> store::Result<Vec<i64>> {
    let inputs = [(
        seq,
        LoggedInput::Declare {
            at: Timestamp::from_unix_ms(1_800_000_000_000 + seq),
            transit: Box::new(tr.clone()),
        },
    )];
    s.commit(&Commit {
        inputs: &inputs,
        ..Commit::default()
    })
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// What a test needs of a backend beyond the store: a fresh store, and the raw stored text.
trait Backend {
    fn open(&self) -> Box<dyn Store>;
    /// Everything the database holds, as bytes: the SQLite files, or PostgreSQL's columns.
    fn raw(&self) -> Vec<u8>;
    fn transit_doc(&self, id: &str) -> String;
    fn set_transit_doc(&self, id: &str, doc: &str);
    /// The `doc` of every transit row and every `declare` input.
    fn docs(&self) -> Vec<String>;
    /// Copies the write-ahead log into the database file and empties it (SQLite).
    fn checkpoint(&self) {}
}

struct Sqlite {
    dir: std::path::PathBuf,
}

impl Sqlite {
    fn new(test: &str) -> Sqlite {
        let dir =
            std::env::temp_dir().join(format!("sealwatch-atrest-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Sqlite { dir }
    }
    fn db(&self) -> std::path::PathBuf {
        self.dir.join("sealwatch.db")
    }
    fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db()).unwrap()
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Backend for Sqlite {
    fn open(&self) -> Box<dyn Store> {
        Box::new(SqliteStore::open(&self.db()).unwrap())
    }
    fn raw(&self) -> Vec<u8> {
        // The database file and its write-ahead log, whatever has not been checkpointed yet.
        let mut bytes = std::fs::read(self.db()).unwrap();
        let wal = self.dir.join("sealwatch.db-wal");
        if wal.exists() {
            bytes.extend(std::fs::read(wal).unwrap());
        }
        bytes
    }
    fn transit_doc(&self, id: &str) -> String {
        self.conn()
            .query_row("SELECT doc FROM transits WHERE id = ?1", [id], |r| r.get(0))
            .unwrap()
    }
    fn set_transit_doc(&self, id: &str, doc: &str) {
        self.conn()
            .execute("UPDATE transits SET doc = ?2 WHERE id = ?1", [id, doc])
            .unwrap();
    }
    fn checkpoint(&self) {
        self.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    fn docs(&self) -> Vec<String> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT doc FROM transits UNION ALL SELECT doc FROM inputs WHERE kind = 'declare'",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }
}

struct Postgres {
    url: String,
    schema: String,
}

impl Postgres {
    fn new(test: &str) -> Option<Postgres> {
        let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!("TEST_DATABASE_URL is not set: PostgreSQL encryption at rest skipped");
            return None;
        };
        let schema = format!("atrest_{test}_{}", std::process::id());
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .unwrap();
        Some(Postgres { url, schema })
    }
    fn client(&self) -> postgres::Client {
        let mut c = postgres::Client::connect(&self.url, postgres::NoTls).unwrap();
        c.batch_execute(&format!("SET search_path TO {}", self.schema))
            .unwrap();
        c
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.url, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

impl Backend for Postgres {
    fn open(&self) -> Box<dyn Store> {
        Box::new(PgStore::connect_in_schema(&self.url, &self.schema).unwrap())
    }
    fn raw(&self) -> Vec<u8> {
        // The raw column text of every table that can hold a transit.
        let mut c = self.client();
        let mut bytes = Vec::new();
        for table in ["transits", "inputs", "audit_log"] {
            for row in c
                .query(&format!("SELECT t::TEXT FROM {table} t"), &[])
                .unwrap()
            {
                bytes.extend(row.get::<_, String>(0).into_bytes());
            }
        }
        bytes
    }
    fn transit_doc(&self, id: &str) -> String {
        self.client()
            .query_one("SELECT doc FROM transits WHERE id = $1", &[&id])
            .unwrap()
            .get(0)
    }
    fn set_transit_doc(&self, id: &str, doc: &str) {
        self.client()
            .execute("UPDATE transits SET doc = $2 WHERE id = $1", &[&id, &doc])
            .unwrap();
    }
    fn docs(&self) -> Vec<String> {
        self.client()
            .query(
                "SELECT doc FROM transits UNION ALL SELECT doc FROM inputs WHERE kind = 'declare'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

fn reseal_all(s: &mut dyn Store) -> u64 {
    let mut cursor = ResealCursor::default();
    let mut rewritten = 0;
    // Batches of 1 to walk the cursor through both tables; bounded by the documents stored.
    for _ in 0..100 {
        rewritten += s.reseal(&mut cursor, 1).unwrap();
        if cursor.done {
            return rewritten;
        }
    }
    panic!("re-encryption did not finish: {cursor:?}");
}

fn assert_clear_values(s: &mut dyn Store, id: &str, driver: &str) {
    let stored = s.transit(id).unwrap().transit;
    assert_eq!(stored, transit(id, driver));
}

/// Without a key the fields are in clear (so the raw check can see them); with one they are
/// not, everything reads back identical, and re-encryption seals the old clear rows too.
fn sealed_on_disk_clear_in_the_api(b: &dyn Backend) {
    let mut s = b.open();
    declare(&mut *s, 1, &transit("T-CLEAR", "Wang Qingfeng")).unwrap();
    s.set_keys(ring(&[("k1", KEY1)]));
    declare(&mut *s, 2, &transit("T-SEALED", NAME)).unwrap();
    drop(s);
    let raw = b.raw();
    assert!(
        contains(&raw, "Wang Qingfeng"),
        "the raw check sees clear text"
    );
    assert!(!contains(&raw, NAME), "driver's name in clear on disk");
    assert!(b.transit_doc("T-SEALED").contains("\"sealed\":\"xc20p:k1:"));
    assert!(!b.transit_doc("T-SEALED").contains(CONSIGNEE));
    assert!(!b.transit_doc("T-SEALED").contains(INVOICE));
    assert!(!b.transit_doc("T-SEALED").contains("Yiwu Exporter Ltd"));
    assert!(!b.transit_doc("T-SEALED").contains("5555 0101"));
    // What stays clear stays searchable.
    assert!(b.transit_doc("T-SEALED").contains("textiles"));

    let mut s = b.open();
    s.set_keys(ring(&[("k1", KEY1)]));
    assert_clear_values(&mut *s, "T-SEALED", NAME);
    assert_clear_values(&mut *s, "T-CLEAR", "Wang Qingfeng");
    let listed = s.transits(&Default::default(), Default::default()).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].1.transit, transit("T-SEALED", NAME));
    // The replay sees the transit as declared.
    let replay = s.inputs_after(0, 10).unwrap();
    assert_eq!(
        replay[1].1,
        LoggedInput::Declare {
            at: Timestamp::from_unix_ms(1_800_000_000_002),
            transit: Box::new(transit("T-SEALED", NAME)),
        }
    );
    // The clear row and its input are sealed by the re-encryption walk.
    assert_eq!(reseal_all(&mut *s), 2);
    assert_eq!(reseal_all(&mut *s), 0, "a second walk has nothing to do");
    assert_clear_values(&mut *s, "T-CLEAR", "Wang Qingfeng");
    for doc in b.docs() {
        assert!(
            !doc.contains("Wang Qingfeng") && !doc.contains(NAME),
            "{doc}"
        );
    }
    // Nor is the clear text left behind in the file once the WAL is checkpointed.
    drop(s);
    b.checkpoint();
    assert!(!contains(&b.raw(), "Wang Qingfeng"));
}

/// A new key encrypts from then on; re-encryption leaves no value under the old one, and then
/// the old key can go.
fn rotation_and_reencryption(b: &dyn Backend) {
    let mut s = b.open();
    s.set_keys(ring(&[("k1", KEY1)]));
    declare(&mut *s, 1, &transit("T-1", NAME)).unwrap();
    s.set_keys(ring(&[("k1", KEY1), ("k2", KEY2)]));
    declare(&mut *s, 2, &transit("T-2", "Sun Li")).unwrap();
    assert!(b.transit_doc("T-1").contains("xc20p:k1:"));
    assert!(b.transit_doc("T-2").contains("xc20p:k2:"));
    assert!(!b.transit_doc("T-2").contains("xc20p:k1:"));
    assert_eq!(reseal_all(&mut *s), 2, "T-1's row and input");
    for doc in b.docs() {
        assert!(!doc.contains("xc20p:k1:"), "left under the old key: {doc}");
        assert!(doc.contains("xc20p:k2:"));
    }
    // The old key retired: everything still opens.
    s.set_keys(ring(&[("k2", KEY2)]));
    assert_clear_values(&mut *s, "T-1", NAME);
    assert_clear_values(&mut *s, "T-2", "Sun Li");
    assert_eq!(s.inputs_after(0, 10).unwrap().len(), 2);
}

/// A missing key, an unknown key id and a wrong key are clear errors naming the key id, never
/// the key.
fn missing_and_wrong_keys(b: &dyn Backend) {
    let mut s = b.open();
    s.set_keys(ring(&[("k1", KEY1)]));
    declare(&mut *s, 1, &transit("T-1", NAME)).unwrap();

    s.set_keys(Keys::none());
    let err = s.transit("T-1").unwrap_err().to_string();
    assert!(
        err.contains("sealed with key k1") && err.contains("no encryption key is configured"),
        "{err}"
    );
    assert!(s.inputs_after(0, 10).is_err());

    s.set_keys(ring(&[("k7", KEY2)]));
    let err = s.transit("T-1").unwrap_err().to_string();
    assert!(
        err.contains("key k1") && err.contains("not in the key ring (known: k7)"),
        "{err}"
    );

    s.set_keys(ring(&[("k1", KEY2)]));
    let err = s.transit("T-1").unwrap_err().to_string();
    assert!(err.contains("does not authenticate under key k1"), "{err}");
    for key in [KEY1, KEY2] {
        assert!(!err.contains(&hex(&key)), "a key in an error: {err}");
    }
}

/// A sealed value altered, or moved to another transit, does not open.
fn tampering_is_detected(b: &dyn Backend) {
    let mut s = b.open();
    s.set_keys(ring(&[("k1", KEY1)]));
    declare(&mut *s, 1, &transit("T-A", NAME)).unwrap();
    declare(&mut *s, 2, &transit("T-B", "Qian Wu")).unwrap();
    let name_of = |doc: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(doc).unwrap()["driver"]["name"].clone()
    };
    // T-A's sealed name moved into T-B.
    let mut b_doc: serde_json::Value = serde_json::from_str(&b.transit_doc("T-B")).unwrap();
    b_doc["driver"]["name"] = name_of(&b.transit_doc("T-A"));
    b.set_transit_doc("T-B", &b_doc.to_string());
    let err = s.transit("T-B").unwrap_err().to_string();
    assert!(err.contains("transit/T-B/driver.name"), "{err}");
    assert!(err.contains("does not authenticate"), "{err}");
    // One digit of T-A's sealed name changed.
    let mut a_doc: serde_json::Value = serde_json::from_str(&b.transit_doc("T-A")).unwrap();
    let sealed = a_doc["driver"]["name"]["sealed"]
        .as_str()
        .unwrap()
        .to_owned();
    let last = sealed.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &sealed[..sealed.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    a_doc["driver"]["name"]["sealed"] = flipped.into();
    b.set_transit_doc("T-A", &a_doc.to_string());
    let err = s.transit("T-A").unwrap_err().to_string();
    assert!(err.contains("does not authenticate under key k1"), "{err}");
    // Swapping the consignee between cargo lines of one transit is caught too.
    declare(&mut *s, 3, &transit("T-C", "Zhou Bo")).unwrap();
    let mut c_doc: serde_json::Value = serde_json::from_str(&b.transit_doc("T-C")).unwrap();
    let consignee = c_doc["cargo"][0]["consignee"].clone();
    c_doc["cargo"][1]["consignee"] = consignee;
    b.set_transit_doc("T-C", &c_doc.to_string());
    let err = s.transit("T-C").unwrap_err().to_string();
    assert!(err.contains("cargo.1.consignee"), "{err}");
}

/// Personal-data retention: the driver's name and contact of a transit closed before the
/// cut-off are erased from its row and its `declare` input, sealed or clear, and are nowhere in
/// the raw database afterwards; newer and open transits keep theirs.
fn retention_erases_personal_data(b: &dyn Backend) {
    let mut s = b.open();
    let day_ms = 86_400_000;
    let t0 = 1_800_000_000_000;
    declare(&mut *s, 1, &transit("T-OLD-CLEAR", "Wang Qingfeng")).unwrap();
    s.set_keys(ring(&[("k1", KEY1)]));
    declare(&mut *s, 2, &transit("T-OLD-SEALED", NAME)).unwrap();
    declare(&mut *s, 3, &transit("T-RECENT", "Liu Recent")).unwrap();
    declare(&mut *s, 4, &transit("T-OPEN", "Chen Stillontheroad")).unwrap();
    let close = |s: &mut dyn Store, id: &str, at_ms: i64| {
        let states = [(
            id.parse().unwrap(),
            model::TransitState::Closed,
            Timestamp::from_unix_ms(at_ms),
        )];
        s.commit(&Commit {
            states: &states,
            ..Commit::default()
        })
        .unwrap();
    };
    close(&mut *s, "T-OLD-CLEAR", t0 + day_ms);
    close(&mut *s, "T-OLD-SEALED", t0 + 2 * day_ms);
    close(&mut *s, "T-RECENT", t0 + 40 * day_ms);
    b.checkpoint();
    assert!(contains(&b.raw(), "Wang Qingfeng"), "stored clear before");

    let cut = Timestamp::from_unix_ms(t0 + 30 * day_ms);
    let now = Timestamp::from_unix_ms(t0 + 60 * day_ms);
    // Batches of one: the step says which transit it did, and nothing is done twice.
    let mut erased = Vec::new();
    for _ in 0..10 {
        let ids = s.erase_personal_data(cut, now, 1).unwrap();
        if ids.is_empty() {
            break;
        }
        erased.extend(ids);
    }
    erased.sort();
    assert_eq!(erased, ["T-OLD-CLEAR", "T-OLD-SEALED"]);
    for id in ["T-OLD-CLEAR", "T-OLD-SEALED"] {
        let stored = s.transit(id).unwrap().transit;
        let driver = stored.driver.expect("the driver's other fields stay");
        assert_eq!(driver.name.0, store::retention::ERASED);
        assert!(driver.contact.is_none());
        assert_eq!(driver.nationality.as_deref(), Some("CN"));
        // Business data is not personal data: it stays.
        assert_eq!(stored.cargo.len(), 2);
    }
    assert_eq!(
        s.transit("T-RECENT").unwrap().transit,
        transit("T-RECENT", "Liu Recent")
    );
    b.checkpoint();
    let raw = b.raw();
    assert!(!contains(&raw, "Wang Qingfeng"), "an erased name is gone");
    // The only contact stored clear was the old clear transit's (the rest are sealed).
    assert!(
        !contains(&raw, "+86 571 5555 0101"),
        "an erased contact is gone"
    );
    for doc in b.docs() {
        assert!(!doc.contains("Wang Qingfeng"), "{doc}");
    }
    let erased_docs = b
        .docs()
        .into_iter()
        .filter(|d| d.contains(store::retention::ERASED))
        .count();
    assert_eq!(erased_docs, 4, "two rows and two declare inputs");
    assert!(s.erase_personal_data(cut, now, 10).unwrap().is_empty());
}

macro_rules! backend_tests {
    ($backend:ident, $new:expr) => {
        mod $backend {
            use super::*;

            #[test]
            fn sealed_on_disk_clear_in_the_api() {
                if let Some(b) = ($new)("sealed") {
                    super::sealed_on_disk_clear_in_the_api(&b);
                }
            }

            #[test]
            fn rotation_and_reencryption() {
                if let Some(b) = ($new)("rotation") {
                    super::rotation_and_reencryption(&b);
                }
            }

            #[test]
            fn missing_and_wrong_keys() {
                if let Some(b) = ($new)("keys") {
                    super::missing_and_wrong_keys(&b);
                }
            }

            #[test]
            fn retention_erases_personal_data() {
                if let Some(b) = ($new)("retain") {
                    super::retention_erases_personal_data(&b);
                }
            }

            #[test]
            fn tampering_is_detected() {
                if let Some(b) = ($new)("tamper") {
                    super::tampering_is_detected(&b);
                }
            }
        }
    };
}

backend_tests!(sqlite, |test: &str| Some(Sqlite::new(test)));
backend_tests!(postgresql, Postgres::new);
