-- The residents' quarterly vote 群众评单 (SPEC §10): one vote post per building chat per
-- quarter on the estate's property member unit (UNIQUE decides "once"); a ballot per resident
-- (a second tap changes it); `closed_at` set once, in the transaction that posts the result.
CREATE TABLE unit_votes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    period        TEXT NOT NULL,
    building_code TEXT NOT NULL,
    unit_code     TEXT NOT NULL,
    chat_id       INTEGER NOT NULL,
    thread_id     INTEGER NOT NULL DEFAULT 0,
    message_id    INTEGER,
    opened_at     REAL NOT NULL,
    closes_at     REAL NOT NULL,
    closed_at     REAL,
    UNIQUE (period, building_code)
);
CREATE INDEX unit_votes_open ON unit_votes(closes_at) WHERE closed_at IS NULL;
CREATE INDEX unit_votes_unit ON unit_votes(unit_code, closed_at);

CREATE TABLE unit_ballots (
    vote_id  INTEGER NOT NULL REFERENCES unit_votes(id),
    user_id  INTEGER NOT NULL,
    stars    INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
    at       REAL NOT NULL,
    PRIMARY KEY (vote_id, user_id)
);

-- Posts held by member units over time (SPEC §10's score: 2 a slot-month): a span from the
-- moment a unit's claim holds a slot to its release (NULL: still held).
CREATE TABLE post_spans (
    post_id    INTEGER NOT NULL REFERENCES posts(id),
    holder     TEXT NOT NULL,
    unit_code  TEXT NOT NULL,
    held_from  REAL NOT NULL,
    held_until REAL
);
CREATE INDEX post_spans_holder ON post_spans(post_id, holder);
INSERT INTO post_spans (post_id, holder, unit_code, held_from)
    SELECT post_id, holder, unit_code, claimed_at FROM post_holders
    WHERE state = 'holding' AND unit_code IS NOT NULL;
