-- A 429's retry_after for a chat (SPEC §7): Telegram takes no call to it before `until`
-- (Unix time). Kept in the store so that a restart within the wait does not earn another 429.
CREATE TABLE chat_blocks (
    chat_id BIGINT PRIMARY KEY,
    until   DOUBLE PRECISION NOT NULL
);
