-- Retention per data class (docs/security.md, "Retention").
--
-- retention_log records what retention took out of the append-only logs, as runs of keys:
-- `delete` (the rows are gone) or `erase` (the rows' personal data was erased in place). An
-- incremental backup carries the rows added since the previous backup, and these with them;
-- applying it does the same to the rows the base backup still holds, so a restore neither
-- brings back what retention took nor disagrees with the backup's row counts.
CREATE TABLE retention_log (
    id      INTEGER PRIMARY KEY,
    tbl     TEXT NOT NULL,
    action  TEXT NOT NULL,
    key_lo  INTEGER NOT NULL,
    key_hi  INTEGER NOT NULL
);

-- When the driver's name and contact of a closed transit were erased (NULL: still kept). The
-- partial index holds only the transits whose personal data is still there, so the retention
-- round never walks the ones already done.
ALTER TABLE transits ADD COLUMN personal_erased_at INTEGER;
CREATE INDEX transits_personal_kept ON transits (updated_at)
    WHERE state = 'closed' AND personal_erased_at IS NULL;
