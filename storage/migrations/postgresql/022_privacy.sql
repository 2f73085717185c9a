-- Personal data (SPEC §14): see migrations/022_privacy.sql (times as DOUBLE PRECISION here).
ALTER TABLE people ADD COLUMN consented_at DOUBLE PRECISION;
ALTER TABLE people ADD COLUMN erased_at DOUBLE PRECISION;
