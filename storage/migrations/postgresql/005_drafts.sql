-- Opinion drafts get their own row: a guided flow (a horn, a volunteer registration) started
-- while a draft is open must not overwrite it (SPEC §4: drafts are stored and kept).
CREATE TABLE drafts (
    user_id    BIGINT PRIMARY KEY,
    data       TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL
);
INSERT INTO drafts (user_id, data, updated_at)
    SELECT user_id, data, updated_at FROM flows WHERE name = 'draft';
DELETE FROM flows WHERE name = 'draft';
