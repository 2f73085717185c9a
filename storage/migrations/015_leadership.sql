-- One leader among the replicas (SPEC §16). The leader holds a PostgreSQL advisory lock on a
-- connection of its own; on winning it increments `epoch` here, and every outbox claim
-- checks that epoch, so a former leader's claims fail. One row. SQLite has one process, the
-- leader for ever (epoch 1 in memory): the table exists so that the schemas stay equal.
CREATE TABLE leadership (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    epoch  INTEGER NOT NULL,
    holder TEXT,            -- the replica: host, pid and a random part
    since  REAL             -- Unix time of the takeover
);
INSERT INTO leadership (id, epoch) VALUES (1, 0);

-- Direct replies made by any replica (SPEC §7, §16): the leader's flood gate counts them
-- in its windows. Written in batches, forgotten after a minute (the longest window).
-- Unused on SQLite: the one process counts its replies in memory.
CREATE TABLE direct_sends (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id INTEGER,        -- NULL: a call that counts only overall
    at      REAL NOT NULL,  -- Unix time
    replica TEXT NOT NULL
);
CREATE INDEX direct_sends_at ON direct_sends(at);
