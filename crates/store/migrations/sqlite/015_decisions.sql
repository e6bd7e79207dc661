-- Release-or-inspect decisions at arrival (docs/decisions.md): one per transit, with the
-- proposal as it was shown (score and reasons, JSON), what the officer decided, whether that
-- went against the proposal and why, and, for an inspection, what it found.
CREATE TABLE decisions (
    id               INTEGER PRIMARY KEY,
    transit          TEXT NOT NULL UNIQUE,
    at               INTEGER NOT NULL,
    actor            TEXT NOT NULL,
    proposed         TEXT NOT NULL,
    score            INTEGER NOT NULL,
    decided          TEXT NOT NULL,
    overridden       INTEGER NOT NULL,
    reason           TEXT,
    proposal         TEXT NOT NULL,
    inspection_found INTEGER,
    inspection_note  TEXT,
    inspection_at    INTEGER
);
CREATE INDEX decisions_at ON decisions (at);
