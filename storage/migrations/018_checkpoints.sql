-- Patrol checkpoints 专项巡更点 (SPEC §13): places of a grid to visit once per period of their
-- own frequency, each for a matter (food safety, vacant land, key residents, fire, other).
-- `building_code` (optional): the building nearest to it, filled in when a visit reports a
-- problem (the units carry no coordinates).
CREATE TABLE checkpoints (
    code          TEXT PRIMARY KEY,
    grid_code     TEXT NOT NULL REFERENCES units(code) ON UPDATE CASCADE,
    name          TEXT NOT NULL,
    matter        TEXT NOT NULL,
    lat           REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon           REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
    radius_m      INTEGER NOT NULL CHECK (radius_m > 0),
    frequency     TEXT NOT NULL,
    building_code TEXT,
    position      INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL
);
CREATE INDEX checkpoints_grid ON checkpoints(grid_code, position);

-- A visit: a location within the checkpoint's radius, in the period (`period`, the key of
-- the checkpoint's frequency at that moment) it counts for; an optional note and photo.
CREATE TABLE checkpoint_visits (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    checkpoint_code  TEXT NOT NULL REFERENCES checkpoints(code) ON UPDATE CASCADE,
    user_id          INTEGER NOT NULL,
    at               REAL NOT NULL,
    period           TEXT NOT NULL,
    lat              REAL NOT NULL,
    lon              REAL NOT NULL,
    distance_m       REAL NOT NULL,
    note             TEXT,
    photo_file_id    TEXT,
    source_update_id INTEGER UNIQUE
);
CREATE INDEX checkpoint_visits_at ON checkpoint_visits(checkpoint_code, at);
CREATE INDEX checkpoint_visits_period ON checkpoint_visits(checkpoint_code, period);

-- A period that ended without a visit: written once (the key decides, across restarts and
-- replicas) in the transaction that queues the grid workers' reminders.
CREATE TABLE checkpoint_misses (
    checkpoint_code TEXT NOT NULL REFERENCES checkpoints(code) ON UPDATE CASCADE,
    period          TEXT NOT NULL,
    period_start    REAL NOT NULL,
    period_end      REAL NOT NULL,
    noted_at        REAL NOT NULL,
    PRIMARY KEY (checkpoint_code, period)
);
CREATE INDEX checkpoint_misses_end ON checkpoint_misses(period_end);
