-- Release-or-inspect decisions at arrival (docs/decisions.md): one per transit, with the
-- proposal as it was shown (score and reasons, JSON), what the officer decided, whether that
-- went against the proposal and why, and, for an inspection, what it found.
CREATE TABLE decisions (
    id               BIGSERIAL PRIMARY KEY,
    transit          TEXT NOT NULL UNIQUE,
    at               BIGINT NOT NULL,
    actor            TEXT NOT NULL,
    proposed         TEXT NOT NULL,
    score            BIGINT NOT NULL,
    decided          TEXT NOT NULL,
    overridden       BOOLEAN NOT NULL,
    reason           TEXT,
    proposal         TEXT NOT NULL,
    inspection_found BOOLEAN,
    inspection_note  TEXT,
    inspection_at    BIGINT
);
CREATE INDEX decisions_at ON decisions (at);
