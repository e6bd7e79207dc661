-- What the device gateways keep about a terminal beyond its registration.
--
-- JT/T 808 authentication: the code a terminal got in its registration response (0x8100) and
-- presents in every authentication (0x0102). Only its SHA-256 is kept, as for API tokens: a
-- copy of the database does not let anyone pass for a device. A new registration replaces it.
CREATE TABLE device_auth (
    device        TEXT PRIMARY KEY,
    code_hash     TEXT NOT NULL,
    registered_at BIGINT NOT NULL
);

-- Lines a device sent that are not observations but are kept as they came (a plain-text
-- command result such as `(740190311185,1,001,ELOCK,3,529439)`), for officers and
-- integrators to read. No meaning is given to them here.
CREATE TABLE device_log (
    id     BIGSERIAL PRIMARY KEY,
    device TEXT NOT NULL,
    at     BIGINT NOT NULL,
    source TEXT NOT NULL,
    kind   TEXT NOT NULL,
    text   TEXT NOT NULL
);
CREATE INDEX device_log_device ON device_log (device, id);
