-- A counter every change to the map's units moves (triggers, so a `gridhorn map import` in
-- another process counts too): the bot keeps each building's chain of units in memory
-- (`MapRepo.ancestors`, read on every Submit) and reads them again when it has moved.
CREATE TABLE map_version (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO map_version (id, version) VALUES (1, 0);
CREATE FUNCTION map_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE map_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END $$;
CREATE TRIGGER units_changed AFTER INSERT OR UPDATE OR DELETE ON units
    FOR EACH ROW EXECUTE FUNCTION map_version_bump();
