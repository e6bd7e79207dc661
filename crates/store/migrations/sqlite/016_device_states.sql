-- A device's life cycle as it happened (docs/pool.md, "Life cycle"): every change of a
-- registered device's state, from the registry (registration, an operator's update) or from its
-- transit (sealed, departed, unsealed), with the station it was at afterwards. Append-only.
CREATE TABLE device_states (
    id          INTEGER PRIMARY KEY,
    device      TEXT NOT NULL,
    at          INTEGER NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    station     TEXT,
    cause       TEXT NOT NULL
);
CREATE INDEX device_states_device ON device_states (device, id);
CREATE INDEX device_states_at ON device_states (at);
