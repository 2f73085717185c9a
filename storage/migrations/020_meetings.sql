-- Meetings (SPEC §12): joint meetings (联席会议), face-to-face meetings (面对面), building
-- meetings (楼栋见面会) and councils (恳谈会). Each timed step (the reminder, the organiser's
-- sign-in button, the request for minutes) is a column set once in the transaction that
-- queues its messages: a restart neither drops nor repeats one.
CREATE TABLE meetings (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL CHECK (kind IN ('joint','face_to_face','building','council')),
    unit_code       TEXT NOT NULL,
    grid_code       TEXT,               -- the grid the scope lies in (NULL: a community)
    community_code  TEXT NOT NULL,
    title           TEXT NOT NULL,
    place           TEXT NOT NULL DEFAULT '',
    agenda          TEXT NOT NULL DEFAULT '',
    starts_at       REAL NOT NULL,
    ends_at         REAL NOT NULL,
    organiser_id    INTEGER NOT NULL,
    remind_at       REAL,               -- NULL once reminded (or never owed)
    offer_at        REAL,               -- the organiser's "Open sign-in": NULL once offered
    wrap_at         REAL,               -- after the end, minutes asked: NULL once asked
    signin_opened   INTEGER NOT NULL DEFAULT 0,
    minutes         TEXT,
    source_update_id INTEGER UNIQUE,
    created_at      REAL NOT NULL
);
CREATE INDEX meetings_start ON meetings(starts_at);
CREATE INDEX meetings_grid ON meetings(grid_code, kind, starts_at);

-- The meeting's posts in chats: the invitation (its live count is edited) and the sign-in
-- post; the unit the chat stands for is who signs in or answers there.
CREATE TABLE meeting_posts (
    meeting_id  INTEGER NOT NULL REFERENCES meetings(id),
    kind        TEXT NOT NULL CHECK (kind IN ('invite','signin')),
    chat_id     INTEGER NOT NULL,
    thread_id   INTEGER NOT NULL DEFAULT 0,
    unit_code   TEXT NOT NULL,
    message_id  INTEGER,
    PRIMARY KEY (meeting_id, kind, chat_id)
);

-- Attend / Can't attend, one answer per person (the last one counts).
CREATE TABLE meeting_replies (
    meeting_id  INTEGER NOT NULL REFERENCES meetings(id),
    user_id     INTEGER NOT NULL,
    attend      INTEGER NOT NULL,
    unit_code   TEXT NOT NULL,
    at          REAL NOT NULL,
    PRIMARY KEY (meeting_id, user_id)
);

-- Sign-in (签到): once per person; the store's key decides.
CREATE TABLE meeting_signins (
    meeting_id  INTEGER NOT NULL REFERENCES meetings(id),
    user_id     INTEGER NOT NULL,
    unit_code   TEXT NOT NULL,
    at          REAL NOT NULL,
    late        INTEGER NOT NULL,
    PRIMARY KEY (meeting_id, user_id)
);
CREATE INDEX meeting_signins_at ON meeting_signins(at);

-- Decisions (决议), each a ticket with source `meeting`.
CREATE TABLE meeting_decisions (
    meeting_id  INTEGER NOT NULL REFERENCES meetings(id),
    ticket_id   INTEGER NOT NULL UNIQUE REFERENCES tickets(id),
    assignee_id INTEGER,
    due_at      REAL NOT NULL
);
CREATE INDEX meeting_decisions_meeting ON meeting_decisions(meeting_id);
