-- The assembly horn (集结号): horns, where each copy of a horn lives, check-ins, attendance.
CREATE TABLE horns (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id       INTEGER NOT NULL REFERENCES people(user_id),
    level          TEXT NOT NULL CHECK (level IN ('service','major','emergency')),
    scope          TEXT NOT NULL,          -- unit codes, comma-separated; widening adds to it
    grid_code      TEXT,                   -- the grid it belongs to (NULL: community-wide)
    community_code TEXT NOT NULL,
    title          TEXT NOT NULL,
    details        TEXT NOT NULL DEFAULT '',
    place          TEXT NOT NULL DEFAULT '',
    starts_at      REAL,
    ends_at        REAL,
    needed         INTEGER NOT NULL CHECK (needed > 0),
    fill_by        REAL,
    widened        INTEGER NOT NULL DEFAULT 0,   -- the fill-by check has run
    skills         TEXT NOT NULL DEFAULT '',
    short_form     INTEGER NOT NULL DEFAULT 0,
    status         TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','closed')),
    resound_at     REAL,                   -- next re-sound of an emergency horn
    resounds       INTEGER NOT NULL DEFAULT 0,
    dirty          INTEGER NOT NULL DEFAULT 0,   -- a tap changed the counter; copies to edit
    created_at     REAL NOT NULL,
    closed_at      REAL,
    closed_by      INTEGER,
    hours          REAL,                   -- hours to credit each person present
    confirmed_at   REAL,
    confirmed_by   INTEGER
);
CREATE INDEX horns_status ON horns(status);
CREATE INDEX horns_created ON horns(created_at);

-- Every message showing a horn (group posts and private call-ups), so each can be edited.
CREATE TABLE horn_copies (
    horn_id    INTEGER NOT NULL REFERENCES horns(id),
    chat_id    INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    thread_id  INTEGER NOT NULL DEFAULT 0,
    kind       TEXT NOT NULL CHECK (kind IN ('group','private')),
    PRIMARY KEY (chat_id, message_id)
);
CREATE INDEX horn_copies_horn ON horn_copies(horn_id);

-- One row per person and horn: the constraint, not the code, decides "once".
-- seq orders the waiting list; present and hours are the confirmed attendance.
CREATE TABLE horn_checkins (
    horn_id    INTEGER NOT NULL REFERENCES horns(id),
    person_id  INTEGER NOT NULL REFERENCES people(user_id),
    state      TEXT NOT NULL CHECK (state IN ('in','waiting','withdrawn','declined')),
    seq        INTEGER NOT NULL,
    at         REAL NOT NULL,
    updated_at REAL NOT NULL,
    present    INTEGER NOT NULL DEFAULT 0,
    hours      REAL NOT NULL DEFAULT 0,
    points     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (horn_id, person_id)
);
CREATE INDEX horn_checkins_state ON horn_checkins(horn_id, state, seq);
