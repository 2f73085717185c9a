-- The time bank's shop 爱心银行 (SPEC §13): partner shops under a community (the map file's
-- `partners`), their clerks, each person's points as a ledger whose sum is the balance kept in
-- point_accounts (never below zero: the CHECK is the judge), and the one-time codes of
-- /redeem, each reserving its points until a clerk spends it or it expires (points returned).
CREATE TABLE partners (
    code           TEXT PRIMARY KEY,
    community_code TEXT NOT NULL REFERENCES units(code) ON UPDATE CASCADE,
    name           TEXT NOT NULL,
    address        TEXT NOT NULL DEFAULT '',
    chat_id        INTEGER,
    position       INTEGER NOT NULL DEFAULT 0
);

-- A clerk (`partner_clerk`, held on the partner's community in `roles`) of one partner.
CREATE TABLE partner_clerks (
    user_id      INTEGER NOT NULL REFERENCES people(user_id),
    partner_code TEXT NOT NULL REFERENCES partners(code) ON UPDATE CASCADE ON DELETE CASCADE,
    granted_by   INTEGER,
    granted_at   REAL NOT NULL,
    PRIMARY KEY (user_id, partner_code)
);

-- An invite to be a partner's clerk names the partner (its unit_code is the community).
ALTER TABLE invites ADD COLUMN partner_code TEXT;

CREATE TABLE point_accounts (
    user_id INTEGER PRIMARY KEY REFERENCES people(user_id),
    balance INTEGER NOT NULL DEFAULT 0 CHECK (balance >= 0)
);

-- kind: opening (points earned before the ledger), credit (a horn's confirmed hours),
-- reserve (a /redeem code; spent or returned later), return (an expired code's points back)
CREATE TABLE point_ledger (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL,
    at            REAL NOT NULL,
    delta         INTEGER NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('opening','credit','reserve','return')),
    horn_id       INTEGER,
    redemption_id INTEGER
);
CREATE INDEX point_ledger_user ON point_ledger(user_id, id);
CREATE UNIQUE INDEX point_ledger_returned ON point_ledger(redemption_id) WHERE kind = 'return';

-- status: reserved → spent (one clerk's confirming tap) | expired (its points returned).
-- partner_code: the partner whose clerk opened the code first; only its clerks may spend it.
CREATE TABLE redemptions (
    id           INTEGER PRIMARY KEY,
    code         TEXT NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL,
    points       INTEGER NOT NULL CHECK (points > 0),
    created_at   REAL NOT NULL,
    expires_at   REAL NOT NULL,
    status       TEXT NOT NULL DEFAULT 'reserved'
                 CHECK (status IN ('reserved','spent','expired')),
    partner_code TEXT REFERENCES partners(code) ON UPDATE CASCADE,
    opened_by    INTEGER,
    opened_at    REAL,
    spent_by     INTEGER,
    spent_at     REAL
);
CREATE INDEX redemptions_due ON redemptions(expires_at) WHERE status = 'reserved';
CREATE INDEX redemptions_spent ON redemptions(spent_at) WHERE status = 'spent';

-- Wrong codes tried by a clerk: too many in a short time and the next tries wait.
CREATE TABLE redeem_misses (
    clerk_id INTEGER NOT NULL,
    at       REAL NOT NULL
);
CREATE INDEX redeem_misses_clerk ON redeem_misses(clerk_id, at);

INSERT INTO point_accounts (user_id, balance) SELECT user_id, points FROM people WHERE points > 0;
INSERT INTO point_ledger (user_id, at, delta, kind)
    SELECT user_id, 0, points, 'opening' FROM people WHERE points > 0;
