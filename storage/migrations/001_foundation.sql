-- The map: communities, grids, estates, buildings (a tree) and departments (outside it).
CREATE TABLE units (
    code        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('community','grid','estate','building','department')),
    name        TEXT NOT NULL,
    parent_code TEXT REFERENCES units(code) ON UPDATE CASCADE,
    domains     TEXT NOT NULL DEFAULT '',
    patrol      TEXT,
    position    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX units_parent ON units(parent_code);

-- Chats the bot is in; `active` turns 0 when the bot is removed or blocked there.
CREATE TABLE chats (
    chat_id           INTEGER PRIMARY KEY,
    type              TEXT NOT NULL,
    title             TEXT,
    is_forum          INTEGER NOT NULL DEFAULT 0,
    active            INTEGER NOT NULL DEFAULT 1,
    locale            TEXT,
    bot_is_admin      INTEGER NOT NULL DEFAULT 0,
    can_pin           INTEGER NOT NULL DEFAULT 0,
    can_manage_topics INTEGER NOT NULL DEFAULT 0,
    updated_at        TEXT NOT NULL
);

-- A unit bound to one chat (thread 0 = the whole chat, else its announcement topic).
CREATE TABLE bindings (
    unit_code TEXT PRIMARY KEY REFERENCES units(code) ON UPDATE CASCADE ON DELETE CASCADE,
    chat_id   INTEGER NOT NULL,
    thread_id INTEGER NOT NULL DEFAULT 0,
    bound_by  INTEGER,
    bound_at  TEXT NOT NULL,
    UNIQUE (chat_id, thread_id)
);

CREATE TABLE people (
    user_id       INTEGER PRIMARY KEY,
    first_name    TEXT NOT NULL DEFAULT '',
    last_name     TEXT,
    username      TEXT,
    language_code TEXT,
    locale        TEXT,
    building_code TEXT REFERENCES units(code) ON UPDATE CASCADE,
    started       INTEGER NOT NULL DEFAULT 0,
    blocked       INTEGER NOT NULL DEFAULT 0,
    skills        TEXT NOT NULL DEFAULT '',
    availability  TEXT,
    hours         REAL NOT NULL DEFAULT 0,
    points        INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

-- Roles scoped to a unit; 'party_member' is the party flag, kept with the unit it covers.
CREATE TABLE roles (
    user_id    INTEGER NOT NULL REFERENCES people(user_id),
    role       TEXT NOT NULL,
    unit_code  TEXT NOT NULL REFERENCES units(code) ON UPDATE CASCADE,
    granted_by INTEGER,
    granted_at TEXT NOT NULL,
    PRIMARY KEY (user_id, role, unit_code)
);
CREATE INDEX roles_unit ON roles(unit_code, role);

-- One-time invites and standing building join links; the token is the deep-link secret.
CREATE TABLE invites (
    token      TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('role','join')),
    role       TEXT,
    unit_code  TEXT NOT NULL REFERENCES units(code) ON UPDATE CASCADE ON DELETE CASCADE,
    created_by INTEGER,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    used_by    INTEGER,
    used_at    TEXT
);
CREATE UNIQUE INDEX invites_join ON invites(unit_code) WHERE kind = 'join';

-- Durable intake: every update is stored before its offset is confirmed to Telegram.
CREATE TABLE inbox (
    update_id    INTEGER PRIMARY KEY,
    payload      TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    processed_at TEXT
);
CREATE INDEX inbox_pending ON inbox(update_id) WHERE processed_at IS NULL;

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Guided flows and drafts per person (a restart keeps them).
CREATE TABLE flows (
    user_id    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    step       TEXT NOT NULL,
    data       TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL
);

-- The outbox: everything sent outside a direct reply (SPEC §7).
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id      INTEGER NOT NULL,
    method       TEXT NOT NULL,
    payload      TEXT NOT NULL,
    priority     INTEGER NOT NULL,
    quiet        INTEGER NOT NULL DEFAULT 0,
    not_before   REAL NOT NULL DEFAULT 0,
    dedupe_key   TEXT UNIQUE,
    coalesce_key TEXT,
    ref          TEXT,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending','sent','failed','dropped')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    message_id   INTEGER,
    result       TEXT,
    created_at   REAL NOT NULL,
    sent_at      REAL
);
CREATE INDEX outbox_pending ON outbox(priority, id) WHERE status = 'pending';
CREATE UNIQUE INDEX outbox_coalesce ON outbox(coalesce_key) WHERE status = 'pending';
CREATE INDEX outbox_ref ON outbox(ref);
