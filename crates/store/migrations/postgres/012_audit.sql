-- The audit chain (docs/security.md, "Audit chain"): every security-relevant action, each
-- entry hash-chained to the one before (the `audit` crate says how). Rows are only ever
-- appended; `sealwatch audit verify` catches an edited, deleted, reordered or truncated row.
-- Hashes are lowercase hex; `detail` is JSON text, hashed as stored.
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);

-- Signed heads of the chain: (seq, hash, at) signed with the platform's audit key (Ed25519).
-- They catch a truncated or rebuilt chain; keep copies outside the database too.
CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    hash       TEXT NOT NULL,
    at         BIGINT NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL
);
