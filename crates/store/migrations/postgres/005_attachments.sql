-- Files attached to an alarm's handling (a patrol's photos, a scanned seal certificate). Kept
-- in the database, not in files named by users: a name is only a label, never a path.
CREATE TABLE alarm_attachments (
    id           BIGSERIAL PRIMARY KEY,
    alarm        BIGINT NOT NULL REFERENCES alarms (id),
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    bytes        BYTEA NOT NULL
);
CREATE INDEX alarm_attachments_alarm ON alarm_attachments (alarm, id);
