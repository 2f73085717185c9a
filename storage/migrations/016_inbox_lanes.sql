-- Inbox lanes (SPEC §16): the lane of each stored update (its private chat, group or the
-- presser of a button: bot.intake.lane_of). On PostgreSQL several replicas handle the inbox
-- and take one lane's updates in order by this column (migrations/postgresql/016). SQLite
-- runs one process whose lanes live in memory: the column is kept for the same schema, and
-- it has no index here (nothing reads it; an index would cost every stored update).
ALTER TABLE inbox ADD COLUMN lane INTEGER;
