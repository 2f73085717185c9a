-- AB岗 (SPEC §11): each staff holder's backup, and whether they are away (since when, until
-- when: NULL until /back). One row per holder; a holder never away has away_since NULL.
CREATE TABLE stand_ins (
    user_id    BIGINT PRIMARY KEY,
    backup_id  BIGINT,
    away_since DOUBLE PRECISION,
    away_until DOUBLE PRECISION
);
