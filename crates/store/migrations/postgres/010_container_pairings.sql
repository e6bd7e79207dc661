-- Smart containers (docs/containers.md): which device reports for which container, and when.
-- A report names a container; the pairing in force at the report's time names the device, so
-- a late report is attributed to the container it was sent for. An embedded device is bound
-- to its container for life (unpaired_at stays NULL); an affixed one is paired for a window
-- and to one container at a time. Rows are never deleted: the windows are the record.
CREATE TABLE container_pairings (
    id          BIGSERIAL PRIMARY KEY,
    container   TEXT NOT NULL,
    device      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('embedded', 'affixed')),
    paired_at   BIGINT NOT NULL,
    unpaired_at BIGINT
);
CREATE INDEX container_pairings_by_container ON container_pairings (container, paired_at);
CREATE INDEX container_pairings_by_device ON container_pairings (device, paired_at);
