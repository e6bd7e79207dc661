-- A device's observations in time order without a per-row index on the log.
--
-- An index on observations (device, t) made every commit write a page per device in it:
-- 10,000-device commits fell from about 400,000 to about 95,000 rows/s. Instead the writer
-- copies the log into this table in large batches sorted by device (each page then takes many
-- rows at once), and per-device reads join it with the small tail of the log not yet copied
-- (ids above `indexed_up_to`), so they are always complete.
DROP INDEX observations_device;

CREATE TABLE observations_by_device (
    device TEXT NOT NULL,
    t      INTEGER NOT NULL,
    id     INTEGER NOT NULL,
    PRIMARY KEY (device, t, id)
) WITHOUT ROWID;

CREATE TABLE observation_index (
    one           INTEGER PRIMARY KEY CHECK (one = 1),
    indexed_up_to INTEGER NOT NULL
);
INSERT INTO observation_index (one, indexed_up_to) VALUES (1, 0);
