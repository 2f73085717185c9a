-- The audit log of role changes (SPEC §11): every grant (an invite redeemed), revoke, backup
-- and away, with who did it (NULL: the bot itself), on which unit, to whom, and a detail
-- (the role, a date). Read newest first for a unit and everything below it (/audit CODE).
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         REAL NOT NULL,
    actor_id   INTEGER,
    action     TEXT NOT NULL,
    unit_code  TEXT NOT NULL,
    subject_id INTEGER,
    detail     TEXT
);
CREATE INDEX audit_log_unit ON audit_log(unit_code, id);
