-- Act anywhere (SPEC §11): `/tickets mine` finds the tickets a person acted on through their
-- steps; a community's or grid's open tickets are found by their own columns, not by a list
-- of every building (tickets_grid already leads with grid_code): the counts seek these.
CREATE INDEX ticket_events_actor ON ticket_events (actor_id, ticket_id);
CREATE INDEX tickets_community ON tickets (community_code, status);
-- The first page of a community's (a grid's) open tickets walks these in `/tickets` order
-- and stops after the page (status is checked in the index), instead of sorting every open
-- ticket: 13 ms → 1 ms for 10,000 (bench/tickets_page.py). The expressions are those of
-- `TicketRepo.open_in`'s ORDER BY, written exactly alike (else the planner cannot use them);
-- FLOOR here: PostgreSQL's CAST to an integer rounds, SQLite's truncates.
CREATE INDEX tickets_community_order ON tickets (
    community_code, (due_at IS NULL), FLOOR(due_at / 60), me_too DESC, due_at, id, status);
CREATE INDEX tickets_grid_order ON tickets (
    grid_code, (due_at IS NULL), FLOOR(due_at / 60), me_too DESC, due_at, id, status);
