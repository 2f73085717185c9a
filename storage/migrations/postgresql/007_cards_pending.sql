-- A new ticket's staff cards are built after the burst that brought it (bot/backlog.py): the
-- flag is set in the Submit's transaction and cleared in the one that queues the cards, so a
-- restart in between posts them then.
ALTER TABLE tickets ADD COLUMN cards_pending BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tickets_cards_pending ON tickets (id) WHERE cards_pending = 1;
