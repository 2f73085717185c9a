-- Personal data (SPEC §14): when a person agreed to the notice (NULL: not yet; their first
-- Submit asks), and when a person was erased (`/forget`): an erased person's row keeps no
-- name, username or language, only what the boards aggregate (hours, points) under "erased".
ALTER TABLE people ADD COLUMN consented_at REAL;
ALTER TABLE people ADD COLUMN erased_at REAL;
