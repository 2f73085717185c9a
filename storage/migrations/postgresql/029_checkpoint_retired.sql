-- A checkpoint retired (停用, SPEC §13: the place no longer exists, e.g. a closed restaurant):
-- no longer due, reminded, matched by /patrol or counted in current coverage, and left out of
-- the map file's export; its visits and past misses stay, so reports of the periods it was in
-- service still count them. Retiring is once (a second one is refused).
ALTER TABLE checkpoints ADD COLUMN retired_at DOUBLE PRECISION;
ALTER TABLE checkpoints ADD COLUMN retired_by BIGINT;
