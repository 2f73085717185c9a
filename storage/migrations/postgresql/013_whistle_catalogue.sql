-- The whistle catalogue (吹哨清单, SPEC §11): the matters a community may whistle, by
-- category, each to its department, with its points and, optionally, its own time to accept.
CREATE TABLE whistle_items (
    code            TEXT PRIMARY KEY,
    category        TEXT NOT NULL,
    name            TEXT NOT NULL,
    department_code TEXT NOT NULL REFERENCES units(code) ON UPDATE CASCADE,
    points          BIGINT,
    deadline        BIGINT,
    position        BIGINT NOT NULL DEFAULT 0
);

-- The catalogue item a ticket was whistled with (NULL: a department picked freely).
ALTER TABLE tickets ADD COLUMN whistle_item TEXT;

-- 评价: the whistling staff's rating of a department's work, once per whistle (the ticket's
-- `whistled` timeline row), with the item and its points as whistled.
CREATE TABLE whistle_ratings (
    whistle_event   BIGINT PRIMARY KEY REFERENCES ticket_events(id),
    ticket_id       BIGINT NOT NULL REFERENCES tickets(id),
    department_code TEXT NOT NULL,
    item_code       TEXT,
    points          BIGINT,
    rater_id        BIGINT NOT NULL,
    stars           BIGINT NOT NULL CHECK (stars BETWEEN 1 AND 5),
    comment         TEXT,
    at              DOUBLE PRECISION NOT NULL
);
CREATE INDEX whistle_ratings_at ON whistle_ratings(at);
