-- Remote commands to devices (JT/T 808 e-locks): queued by the API, sent by the gateway when
-- the device is connected and authenticated, answered by the device.
--
-- kind: seal, unseal, set_interval, query_status. args: a JSON object (set_interval:
-- {"seconds": N}). state: queued -> sent -> done | failed; refused when the gateway would not
-- send it (no mapping for the device's model). result: what the device answered (its general
-- response, and any text result that came after), as text.
CREATE TABLE device_commands (
    id         BIGSERIAL PRIMARY KEY,
    device     TEXT NOT NULL,
    transit    TEXT,
    kind       TEXT NOT NULL,
    args       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    state      TEXT NOT NULL,
    sent_at    BIGINT,
    result_at  BIGINT,
    result     TEXT
);
CREATE INDEX device_commands_device ON device_commands (device, id);
CREATE INDEX device_commands_transit ON device_commands (transit, id);
