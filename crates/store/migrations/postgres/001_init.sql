-- sealwatch schema, version 1 (PostgreSQL).
-- Documents (zones, transits, alarms) are JSON in `doc`, with the columns queries filter on
-- beside them. Observations are an append-ordered log indexed by time only: per-row indexes on
-- (device, t) cost an order of magnitude of ingest throughput (docs/design notes).

CREATE TABLE zones (
    id   TEXT PRIMARY KEY,
    doc  TEXT NOT NULL
);

CREATE TABLE transits (
    -- Declaration order, for keyset paging (SQLite's rowid plays this part there).
    n           BIGSERIAL UNIQUE,
    id          TEXT PRIMARY KEY,
    device      TEXT NOT NULL,
    state       TEXT NOT NULL,
    declared_at BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    doc         TEXT NOT NULL
);
CREATE INDEX transits_device ON transits (device);
CREATE INDEX transits_state ON transits (state, declared_at);

-- The input log: everything the supervisor was given, in the order it was given (`seq`), so
-- that a restart rebuilds its state by replaying it. Declarations, actions, reads and the clock
-- ticks that fired timers are here; observations, far more numerous, have their own table in
-- the same sequence.
CREATE TABLE inputs (
    seq  BIGINT PRIMARY KEY,
    t    BIGINT NOT NULL,
    kind TEXT NOT NULL,
    doc  TEXT NOT NULL
);

CREATE TABLE observations (
    id     BIGSERIAL PRIMARY KEY,
    seq    BIGINT NOT NULL,
    t      BIGINT NOT NULL,
    device TEXT NOT NULL,
    doc    TEXT NOT NULL
);
CREATE INDEX observations_t ON observations (t);
CREATE INDEX observations_seq ON observations (seq);

CREATE TABLE events (
    id      BIGSERIAL PRIMARY KEY,
    t       BIGINT NOT NULL,
    transit TEXT NOT NULL,
    kind    TEXT NOT NULL,
    doc     TEXT NOT NULL
);
CREATE INDEX events_transit ON events (transit, t);

CREATE TABLE alarms (
    id         BIGSERIAL PRIMARY KEY,
    t          BIGINT NOT NULL,
    transit    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    grade      BIGINT NOT NULL,
    state      TEXT NOT NULL,
    outcome    TEXT,
    updated_at BIGINT NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX alarms_t ON alarms (t);
CREATE INDEX alarms_transit ON alarms (transit, t);
CREATE INDEX alarms_state ON alarms (state, grade, t);

CREATE TABLE alarm_history (
    id       BIGSERIAL PRIMARY KEY,
    alarm    BIGINT NOT NULL REFERENCES alarms (id),
    at       BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    step     TEXT NOT NULL,
    outcome  TEXT,
    note     TEXT
);
CREATE INDEX alarm_history_alarm ON alarm_history (alarm, id);
