-- Inbox lanes (SPEC §16): the lane of each stored update (its private chat, group or the
-- presser of a button: bot.intake.lane_of). Any replica handles stored updates; one lane's
-- in update_id order: the lowest unprocessed update of a lane is claimed under the lane's
-- advisory lock (storage/inbox.py), found by this index.
ALTER TABLE inbox ADD COLUMN lane BIGINT;
CREATE INDEX inbox_lane_pending ON inbox (lane, update_id) WHERE processed_at IS NULL;
-- updates stored before and not handled yet: their lane, as lane_of finds it
UPDATE inbox SET lane = COALESCE(
        (payload::jsonb #>> '{message,chat,id}')::bigint,
        (payload::jsonb #>> '{edited_message,chat,id}')::bigint,
        (payload::jsonb #>> '{my_chat_member,chat,id}')::bigint,
        (payload::jsonb #>> '{chat_member,chat,id}')::bigint,
        (payload::jsonb #>> '{callback_query,from,id}')::bigint,
        (payload::jsonb #>> '{inline_query,from,id}')::bigint,
        (payload::jsonb #>> '{pre_checkout_query,from,id}')::bigint,
        0)
    WHERE processed_at IS NULL;
