-- gridhorn: foreign_keys=off
-- Member units 成员单位 (SPEC §10): a kind of unit attached to a community, with its type;
-- an estate may name the `property` member unit serving it. SQLite cannot widen a CHECK, so
-- the table is rebuilt (the runner turns foreign keys off around this file and checks them
-- before it commits); the map_version triggers and the index are made again.
CREATE TABLE units_new (
    code          TEXT PRIMARY KEY,
    kind          TEXT NOT NULL
                  CHECK (kind IN ('community','grid','estate','building','department','member')),
    name          TEXT NOT NULL,
    parent_code   TEXT REFERENCES units(code) ON UPDATE CASCADE,
    domains       TEXT NOT NULL DEFAULT '',
    patrol        TEXT,
    position      INTEGER NOT NULL DEFAULT 0,
    member_type   TEXT,
    property_code TEXT
);
INSERT INTO units_new (code, kind, name, parent_code, domains, patrol, position)
    SELECT code, kind, name, parent_code, domains, patrol, position FROM units;
DROP TABLE units;
ALTER TABLE units_new RENAME TO units;
CREATE INDEX units_parent ON units(parent_code);
CREATE TRIGGER units_inserted AFTER INSERT ON units
BEGIN UPDATE map_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER units_updated AFTER UPDATE ON units
BEGIN UPDATE map_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER units_deleted AFTER DELETE ON units
BEGIN UPDATE map_version SET version = version + 1 WHERE id = 1; END;

-- 双报到 (SPEC §10): a party member of a `dual_report` unit reported to the community where
-- they live, with the skills they offer there (`/report_in`; again: the newer report).
CREATE TABLE dual_reports (
    user_id        INTEGER PRIMARY KEY REFERENCES people(user_id),
    member_code    TEXT NOT NULL REFERENCES units(code) ON UPDATE CASCADE,
    community_code TEXT NOT NULL REFERENCES units(code) ON UPDATE CASCADE,
    skills         TEXT NOT NULL DEFAULT '',
    reported_at    TEXT NOT NULL
);
CREATE INDEX dual_reports_community ON dual_reports(community_code);

-- Member units answering a horn (响应吹号, SPEC §10): the units a horn calls, each one's
-- pledge of people (counted toward the quota) and, at the close, the number the owner
-- confirmed and the hours each of them served (the unit's people-hours).
ALTER TABLE horns ADD COLUMN units_called INTEGER NOT NULL DEFAULT 0;
ALTER TABLE horns ADD COLUMN units_pledged INTEGER NOT NULL DEFAULT 0;
CREATE TABLE horn_units (
    horn_id    INTEGER NOT NULL REFERENCES horns(id),
    unit_code  TEXT NOT NULL REFERENCES units(code) ON UPDATE CASCADE,
    pledged    INTEGER NOT NULL DEFAULT 0 CHECK (pledged >= 0),
    pledged_by INTEGER,
    pledged_at REAL,
    confirmed  INTEGER,
    hours      REAL,
    PRIMARY KEY (horn_id, unit_code)
);
CREATE INDEX horn_units_unit ON horn_units(unit_code);

-- Posts to claim (认领岗位, SPEC §10): standing posts published over a unit, each with its
-- slots; a holder is a member unit (its contact claimed) or a person. `asked_at`: the
-- monthly "Still serving?" not answered yet (seven days of silence release the slot).
CREATE TABLE posts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    unit_code  TEXT NOT NULL REFERENCES units(code) ON UPDATE CASCADE,
    community_code TEXT NOT NULL,
    title      TEXT NOT NULL,
    slots      INTEGER NOT NULL CHECK (slots > 0),
    created_by INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE post_holders (
    post_id    INTEGER NOT NULL REFERENCES posts(id),
    holder     TEXT NOT NULL,
    person_id  INTEGER NOT NULL,
    unit_code  TEXT,
    state      TEXT NOT NULL CHECK (state IN ('holding','waiting','released')),
    seq        INTEGER NOT NULL,
    claimed_at REAL NOT NULL,
    asked_at   REAL,
    PRIMARY KEY (post_id, holder)
);
CREATE INDEX post_holders_person ON post_holders(person_id, state);

-- Resources 提供资源 (SPEC §10): what a member unit offers, and staff's requests for a ticket
-- or a horn, answered by the unit's contact (a decline with its reason).
CREATE TABLE resources (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    unit_code  TEXT NOT NULL REFERENCES units(code) ON UPDATE CASCADE,
    kind       TEXT NOT NULL
               CHECK (kind IN ('venue','vehicle','equipment','funds','expertise','goods')),
    name       TEXT NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    created_by INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE resource_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_id  INTEGER NOT NULL REFERENCES resources(id),
    ticket_id    INTEGER,
    horn_id      INTEGER,
    requested_by INTEGER NOT NULL,
    state        TEXT NOT NULL DEFAULT 'asked' CHECK (state IN ('asked','accepted','declined')),
    reason       TEXT,
    asked_at     REAL NOT NULL,
    answered_at  REAL
);
