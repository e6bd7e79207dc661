-- A device's observations in time order without a per-row index on the log.
--
-- An index on observations (device, t) makes every commit write a page per device in it. Instead
-- the writer copies the log into this table in large batches sorted by device (each page then
-- takes many rows at once), and per-device reads join it with the small tail of the log not yet
-- copied (ids above `indexed_up_to`), so they are always complete.
DROP INDEX observations_device;

CREATE TABLE observations_by_device (
    device TEXT NOT NULL,
    t      BIGINT NOT NULL,
    id     BIGINT NOT NULL,
    PRIMARY KEY (device, t, id)
);

CREATE TABLE observation_index (
    one           INTEGER PRIMARY KEY CHECK (one = 1),
    indexed_up_to BIGINT NOT NULL
);
INSERT INTO observation_index (one, indexed_up_to) VALUES (1, 0);
