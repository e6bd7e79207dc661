-- The further devices of a transit sealed with several (`Transit::devices`, docs/alarms.md,
-- "Several devices per transit"); the first one stays in `transits.device`. Retention keeps a
-- device's reports while any transit it seals is open, whichever of its devices it is.
CREATE TABLE transit_devices (
    transit TEXT NOT NULL,
    device  TEXT NOT NULL,
    PRIMARY KEY (transit, device)
);
CREATE INDEX transit_devices_device ON transit_devices (device);
