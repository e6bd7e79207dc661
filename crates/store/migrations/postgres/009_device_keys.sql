-- The native protocol's device keys (docs/protocol.md): the public halves of a device's
-- Ed25519 signing key and X25519 agreement key, hex. One set per device: provisioning a new
-- set (rotation) replaces the old one and clears any revocation. A revoked set is kept, so
-- that evidence signed before the revocation can still be verified, but the gateway refuses
-- the device until new keys are provisioned.
CREATE TABLE device_keys (
    device           TEXT PRIMARY KEY,
    signing_public   TEXT NOT NULL,
    agreement_public TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    revoked_at       BIGINT
);
