-- 点将 (SPEC §10): staff assign a ticket from its card to a volunteer, a party member or a
-- member unit's contact. Each person is asked once per ticket (a second ask, even after a
-- decline, is refused by the unique key); the first to accept becomes the ticket's assignee
-- (tickets.assignee_id, as "Take it"), the others' asks are withdrawn. Resolved, the hours
-- they entered (at most 8) go to the time bank: the ledger line names the ticket, once a person.
CREATE TABLE ticket_assignments (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    user_id     INTEGER NOT NULL,
    unit_code   TEXT,                 -- the member unit when asked as its contact
    assigned_by INTEGER,
    state       TEXT NOT NULL DEFAULT 'offered'
                CHECK (state IN ('offered','accepted','declined','withdrawn','resolved')),
    created_at  REAL NOT NULL,
    answered_at REAL,
    resolved_at REAL,
    hours       REAL NOT NULL DEFAULT 0,
    points      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (ticket_id, user_id)
);
CREATE INDEX ticket_assignments_user ON ticket_assignments(user_id, state);

ALTER TABLE point_ledger ADD COLUMN ticket_id INTEGER;
CREATE UNIQUE INDEX point_ledger_ticket ON point_ledger(ticket_id, user_id)
    WHERE ticket_id IS NOT NULL;
