-- The live feed: every event, alarm and alarm handling step in the order it was committed,
-- as the live stream sends it. Its ids are the stream's event ids, so a client that lost its
-- connection (or the service that restarted) resumes exactly after the last item it saw.
CREATE TABLE feed (
    id      BIGSERIAL PRIMARY KEY,
    t       BIGINT NOT NULL,
    transit TEXT NOT NULL,
    kind    TEXT NOT NULL,
    doc     TEXT NOT NULL
);
