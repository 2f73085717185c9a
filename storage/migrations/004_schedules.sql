-- Schedules and reports (SPEC §6): monthly themes, what each scheduled run posted, patrols.

-- 每月主题: one per community and month; community_code '' is the city-wide theme that a
-- community without its own theme shows.
CREATE TABLE themes (
    community_code TEXT NOT NULL,
    month          TEXT NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]'),
    text           TEXT NOT NULL,
    set_by         INTEGER,
    set_at         REAL NOT NULL,
    PRIMARY KEY (community_code, month)
);

-- A scheduled job's run for a period ("2026-12", "2026-Q4", "2026-12-01"): written in the
-- transaction that queues its posts, so a run that fires twice, or after a restart, does
-- nothing more. Catch-up at start-up runs a job whose current period has no row here.
CREATE TABLE schedule_runs (
    job     TEXT NOT NULL,
    period  TEXT NOT NULL,
    ran_at  REAL NOT NULL,
    posts   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job, period)
);

-- What a job posted, per period and chat (or person; thread 0 = the whole chat): a chat
-- bound after a run gets the period's post at the next run, and nobody gets it twice.
CREATE TABLE schedule_posts (
    job       TEXT NOT NULL,
    period    TEXT NOT NULL,
    chat_id   INTEGER NOT NULL,
    thread_id INTEGER NOT NULL DEFAULT 0,
    at        REAL NOT NULL,
    PRIMARY KEY (job, period, chat_id, thread_id)
);

-- 巡查: a patrol recorded by grid staff, counted in the monthly report.
CREATE TABLE patrols (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    grid_code        TEXT NOT NULL REFERENCES units(code) ON UPDATE CASCADE,
    user_id          INTEGER NOT NULL,
    at               REAL NOT NULL,
    location         TEXT,
    note             TEXT,
    source_update_id INTEGER UNIQUE
);
CREATE INDEX patrols_grid ON patrols(grid_code, at);
CREATE INDEX ticket_events_kind ON ticket_events(kind, at);
