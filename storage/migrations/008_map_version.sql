-- A counter every change to the map's units moves (triggers, so a `gridhorn map import` in
-- another process counts too): the bot keeps each building's chain of units in memory
-- (`MapRepo.ancestors`, read on every Submit) and reads them again when it has moved.
CREATE TABLE map_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO map_version (id, version) VALUES (1, 0);
CREATE TRIGGER units_inserted AFTER INSERT ON units
BEGIN UPDATE map_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER units_updated AFTER UPDATE ON units
BEGIN UPDATE map_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER units_deleted AFTER DELETE ON units
BEGIN UPDATE map_version SET version = version + 1 WHERE id = 1; END;
