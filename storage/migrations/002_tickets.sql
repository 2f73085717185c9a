-- Voice of the residents (民声e通道): opinions as tickets.
CREATE TABLE tickets (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    reporter_id      INTEGER NOT NULL REFERENCES people(user_id),
    anonymous        INTEGER NOT NULL DEFAULT 0,
    building_code    TEXT NOT NULL REFERENCES units(code) ON UPDATE CASCADE,
    grid_code        TEXT NOT NULL,
    community_code   TEXT NOT NULL,
    domain           TEXT,
    text             TEXT NOT NULL,
    photo_file_id    TEXT,
    status           TEXT NOT NULL DEFAULT 'new' CHECK (status IN
                     ('new','acknowledged','escalated','whistled','accepted','resolved','rated',
                      'rejected','merged')),
    level            TEXT NOT NULL DEFAULT 'building' CHECK (level IN ('building','grid','community')),
    urgency          TEXT NOT NULL DEFAULT 'routine' CHECK (urgency IN ('routine','major','urgent')),
    department_code  TEXT,
    merged_into      INTEGER REFERENCES tickets(id),
    service_request  INTEGER NOT NULL DEFAULT 0,
    assignee_id      INTEGER,
    rating           INTEGER,
    rating_comment   TEXT,
    result_note      TEXT,
    me_too           INTEGER NOT NULL DEFAULT 0,
    due_kind         TEXT,
    due_at           REAL,
    due_from         REAL,
    remind_at        REAL,
    staff_thread_id  INTEGER,
    source_update_id INTEGER UNIQUE,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    resolved_at      REAL
);
CREATE INDEX tickets_reporter ON tickets(reporter_id, created_at);
CREATE INDEX tickets_due ON tickets(due_at) WHERE due_at IS NOT NULL;
CREATE INDEX tickets_building ON tickets(building_code, status);
CREATE INDEX tickets_grid ON tickets(grid_code, status);

-- The timeline: every step with who, when and a note.
CREATE TABLE ticket_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    at        REAL NOT NULL,
    actor_id  INTEGER,
    kind      TEXT NOT NULL,
    note      TEXT,
    data      TEXT
);
CREATE INDEX ticket_events_ticket ON ticket_events(ticket_id, id);

-- Where each copy of a ticket lives, so every copy can be edited when the ticket changes.
CREATE TABLE ticket_cards (
    ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
    chat_id    INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('head','staff','department','building','offer','reporter')),
    PRIMARY KEY (chat_id, message_id)
);
CREATE INDEX ticket_cards_ticket ON ticket_cards(ticket_id);

CREATE TABLE me_too (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    user_id   INTEGER NOT NULL,
    at        REAL NOT NULL,
    PRIMARY KEY (ticket_id, user_id)
);

-- Messages that ask for words (ForceReply) or carry a relayed reply: a reply to one of them
-- is routed by (chat, message) to its ticket and action.
CREATE TABLE prompts (
    chat_id    INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    user_id    INTEGER,
    ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
    action     TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
