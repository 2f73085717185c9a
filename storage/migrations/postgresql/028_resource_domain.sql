-- A member unit's resource serves a domain (SPEC §10: "kind, name, quantity, when available,
-- domain"); 点将 from a ticket card lists a member unit under the ticket's domain when one of
-- its resources serves it. Empty: not said yet (the unit shows under "All" only).
ALTER TABLE resources ADD COLUMN domain TEXT;
