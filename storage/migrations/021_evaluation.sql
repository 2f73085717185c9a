-- Evaluation after each monthly theme (SPEC §12). A round per month, opened by the scheduled
-- job (its time opens the window to rate; the next month's round closes it). Each row is one
-- thing a rater was asked to rate: a grid (subject_id 0) by community staff, or a grid worker
-- on a grid by the grid's leader; score NULL until rated.
CREATE TABLE evaluation_rounds (
    month     TEXT PRIMARY KEY,
    opened_at REAL NOT NULL
);
CREATE TABLE evaluations (
    month      TEXT NOT NULL,
    rater_id   INTEGER NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('grid','worker')),
    unit_code  TEXT NOT NULL,
    subject_id INTEGER NOT NULL DEFAULT 0,
    position   INTEGER NOT NULL,
    score      INTEGER CHECK (score BETWEEN 1 AND 5),
    note       TEXT,
    rated_at   REAL,
    PRIMARY KEY (month, rater_id, unit_code, subject_id)
);
CREATE INDEX evaluations_unit ON evaluations(month, unit_code);
-- The messages that ask a rater (a reply to one carries a note): positions [first, last].
CREATE TABLE evaluation_messages (
    chat_id    INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    month      TEXT NOT NULL,
    rater_id   INTEGER NOT NULL,
    first      INTEGER NOT NULL,
    last       INTEGER NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
