-- Evaluation after each monthly theme (SPEC §12). A round per month, opened by the scheduled
-- job (its time opens the window to rate; the next month's round closes it). Each row is one
-- thing a rater was asked to rate: a grid (subject_id 0) by community staff, or a grid worker
-- on a grid by the grid's leader; score NULL until rated.
CREATE TABLE evaluation_rounds (
    month     TEXT PRIMARY KEY,
    opened_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE evaluations (
    month      TEXT NOT NULL,
    rater_id   BIGINT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('grid','worker')),
    unit_code  TEXT NOT NULL,
    subject_id BIGINT NOT NULL DEFAULT 0,
    position   BIGINT NOT NULL,
    score      BIGINT CHECK (score BETWEEN 1 AND 5),
    note       TEXT,
    rated_at   DOUBLE PRECISION,
    PRIMARY KEY (month, rater_id, unit_code, subject_id)
);
CREATE INDEX evaluations_unit ON evaluations(month, unit_code);
-- The messages that ask a rater (a reply to one carries a note): positions [first, last].
CREATE TABLE evaluation_messages (
    chat_id    BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    month      TEXT NOT NULL,
    rater_id   BIGINT NOT NULL,
    first      BIGINT NOT NULL,
    last       BIGINT NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
