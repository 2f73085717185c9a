-- Act anywhere (SPEC §11): `/tickets mine` finds the tickets a person acted on through their
-- steps; a community's or grid's open tickets are found by their own columns, not by a list
-- of every building (tickets_grid already leads with grid_code).
CREATE INDEX ticket_events_actor ON ticket_events (actor_id, ticket_id);
CREATE INDEX tickets_community ON tickets (community_code, status);
