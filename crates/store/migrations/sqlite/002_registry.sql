-- sealwatch schema, version 2 (SQLite): the registry of stations, devices and readers, and
-- observations indexed by device.
-- Each table has a serial key `n` for keyset paging in the order rows were first added (an
-- INTEGER PRIMARY KEY, which unlike a bare rowid survives VACUUM), the id, the document, and
-- the columns queries filter on.

CREATE TABLE stations (
    n    INTEGER PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    zone TEXT NOT NULL,
    doc  TEXT NOT NULL
);

CREATE TABLE devices (
    n             INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    state         TEXT NOT NULL,
    station       TEXT,
    registered_at INTEGER NOT NULL,
    doc           TEXT NOT NULL
);
CREATE INDEX devices_station ON devices (station, n);
CREATE INDEX devices_state ON devices (state, n);

-- What a registered device's reports last said, updated once per device by each commit of
-- observations. A narrow table keyed by id without a rowid, apart from the registration: a
-- commit rewrites a page per device it touches, and the fewer pages the devices span, the
-- fewer a commit writes (with 200,000 registered devices, twice the ingest rate of the same
-- columns in `devices`). Each value keeps its time, so that a report that arrives late does not
-- overwrite a newer one.
CREATE TABLE device_telemetry (
    id             TEXT PRIMARY KEY,
    last_report_at INTEGER,
    battery_pct    REAL,
    battery_at     INTEGER,
    lat            REAL,
    lon            REAL,
    position_at    INTEGER
) WITHOUT ROWID;

CREATE TABLE readers (
    n       INTEGER PRIMARY KEY,
    id      TEXT NOT NULL UNIQUE,
    kind    TEXT NOT NULL,
    station TEXT,
    zone    TEXT,
    doc     TEXT NOT NULL
);

-- A device's observations in time order (tracks, a device's history) without scanning every
-- device's observations of the period. This index costs ingest: in SQLite, a commit writes a
-- page of it per device in the commit, and 10,000-row commits from 10,000 devices went from
-- about 400,000 to about 95,000 rows/s with it (ARCHITECTURE.md, `crates/store`).
CREATE INDEX observations_device ON observations (device, t);
