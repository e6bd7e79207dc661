-- Readers' own keys (docs/readers.md): the public half of each fixed or handheld reader's
-- Ed25519 key, hex. A reader signs what it posts; the service checks the signature with this
-- key. One key per reader: provisioning a new one (rotation) replaces the old one and clears
-- any revocation; a revoked key is kept, and every signed post keeps the key it was checked
-- with, so the evidence stays verifiable after a rotation.
CREATE TABLE reader_keys (
    reader      TEXT PRIMARY KEY,
    public_key  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- What readers posted, exactly as signed: the body, the signature and the key that checked it,
-- so anyone with the public key can verify a checkpoint read later. The digest (SHA-256 of
-- the signed message) is unique per reader: a replayed post is recognised and not taken twice.
CREATE TABLE signed_reads (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    reader      TEXT NOT NULL,
    digest      TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    signature   TEXT NOT NULL,
    body        TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (reader, digest)
);
